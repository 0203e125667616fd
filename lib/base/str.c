/* str.c - bounded, growable strings (see str.h). */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "msg.h"
#include "str.h"

void str_init(struct str *s, size_t max)
{
    s->cap = 32;
    if (s->cap > max)
	s->cap = max;
    s->data = mem_alloc(s->cap + 1);
    s->data[0] = 0;
    s->len = 0;
    s->max = max;
}

void str_fini(struct str *s)
{
    mem_free(&s->data);
    s->len = s->cap = 0;
}

struct str *str_new(size_t max)
{
    struct str *s = mem_alloc(sizeof(*s));

    str_init(s, max);
    return s;
}

void str_free(struct str **sp)
{
    if (sp && *sp) {
	str_fini(*sp);
	mem_free(sp);
    }
}

void str_reset(struct str *s)
{
    s->len = 0;
    s->data[0] = 0;
}

bool str_reserve(struct str *s, size_t len)
{
    size_t need;

    if (len > s->max || s->len > s->max - len)
	return false;
    need = s->len + len;
    if (need > s->cap) {
	size_t cap = s->cap ? s->cap : 32;

	while (cap < need)
	    cap = (cap > s->max / 2) ? s->max : cap * 2;
	s->data = mem_realloc(s->data, mem_size_add(cap, 1));
	s->cap = cap;
    }
    return true;
}

bool str_truncate(struct str *s, size_t len)
{
    if (len > s->len)
	return false;
    s->len = len;
    s->data[len] = 0;
    return true;
}

bool str_append(struct str *s, const void *data, size_t len)
{
    if (!str_reserve(s, len))
	return false;
    if (len)
	memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = 0;
    return true;
}

bool str_appends(struct str *s, const char *text)
{
    return str_append(s, text, strlen(text));
}

bool str_appendc(struct str *s, char c)
{
    return str_append(s, &c, 1);
}

bool str_setn(struct str *s, const void *data, size_t len)
{
    if (len > s->max)
	return false;
    str_reset(s);
    return str_append(s, data, len);
}

bool str_set(struct str *s, const char *text)
{
    return str_setn(s, text, strlen(text));
}

bool str_vappendf(struct str *s, const char *fmt, va_list ap)
{
    va_list ap2;
    char small[256];
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
	return false;
    if ((size_t) n < sizeof(small))
	return str_append(s, small, (size_t) n);
    if (!str_reserve(s, (size_t) n))
	return false;
    vsnprintf(s->data + s->len, (size_t) n + 1, fmt, ap);
    s->len += (size_t) n;
    return true;
}

bool str_appendf(struct str *s, const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = str_vappendf(s, fmt, ap);
    va_end(ap);
    return ok;
}

bool str_printf(struct str *s, const char *fmt, ...)
{
    va_list ap;
    bool ok;
    size_t old = s->len;

    /* Format after the old contents so that arguments pointing into s
     * stay valid, then move the result down. */
    va_start(ap, fmt);
    ok = str_vappendf(s, fmt, ap);
    va_end(ap);
    if (!ok)
	return false;
    memmove(s->data, s->data + old, s->len - old);
    s->len -= old;
    s->data[s->len] = 0;
    return true;
}

size_t str_chomp(struct str *s)
{
    size_t removed = 0;

    if (s->len > 0 && s->data[s->len - 1] == '\n') {
	s->len--;
	removed++;
	if (s->len > 0 && s->data[s->len - 1] == '\r') {
	    s->len--;
	    removed++;
	}
	s->data[s->len] = 0;
    }
    return removed;
}

void str_lower(struct str *s)
{
    for (size_t i = 0; i < s->len; i++)
	s->data[i] = (char) tolower((unsigned char) s->data[i]);
}

bool str_has_nul(const struct str *s)
{
    return memchr(s->data, 0, s->len) != NULL;
}

bool str_copy_out(char *buf, size_t size, const char *text)
{
    size_t len = strlen(text);

    if (size == 0)
	msg_panic("str_copy_out: zero-size buffer");
    if (len >= size) {
	memcpy(buf, text, size - 1);
	buf[size - 1] = 0;
	return false;
    }
    memcpy(buf, text, len + 1);
    return true;
}

bool fmt_buf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (size == 0)
	msg_panic("fmt_buf: zero-size buffer");
    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t) n < size;
}
