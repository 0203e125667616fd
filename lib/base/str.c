/* str.c - bounded, growable strings (see str.h). */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "msg.h"
#include "str.h"

/* str_init - set up an embedded struct str */
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

/* str_fini - free the bytes of an embedded struct str */
void str_fini(struct str *s)
{
    mem_free(&s->data);
    s->len = s->cap = 0;
}

/* str_new - a new empty string of at most max bytes */
struct str *str_new(size_t max)
{
    struct str *s = mem_alloc(sizeof(*s));

    str_init(s, max);
    return s;
}

/* str_free - free a string and clear the pointer */
void str_free(struct str **sp)
{
    if (sp && *sp) {
	str_fini(*sp);
	mem_free(sp);
    }
}

/* str_reset - empty the string */
void str_reset(struct str *s)
{
    s->len = 0;
    s->data[0] = 0;
}

/* str_reserve - room for len more bytes; false past max */
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

/* str_truncate - cut to len (not longer than now) */
bool str_truncate(struct str *s, size_t len)
{
    if (len > s->len)
	return false;
    s->len = len;
    s->data[len] = 0;
    return true;
}

/* ---------------------------------------------------------------- */
/* Checked: false, and s unchanged, past s->max.                    */

/* str_try_append - append len bytes */
bool str_try_append(struct str *s, const void *data, size_t len)
{
    if (!str_reserve(s, len))
	return false;
    if (len)
	memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = 0;
    return true;
}

/* str_try_appends - append a C string */
bool str_try_appends(struct str *s, const char *text)
{
    return str_try_append(s, text, strlen(text));
}

/* str_try_appendc - append one byte */
bool str_try_appendc(struct str *s, char c)
{
    return str_try_append(s, &c, 1);
}

/* str_try_setn - replace the content with len bytes */
bool str_try_setn(struct str *s, const void *data, size_t len)
{
    if (len > s->max)
	return false;
    str_reset(s);
    return str_try_append(s, data, len);
}

/* str_try_set - replace the content with a C string */
bool str_try_set(struct str *s, const char *text)
{
    return str_try_setn(s, text, strlen(text));
}

/* str_try_vappendf - formatted append */
bool str_try_vappendf(struct str *s, const char *fmt, va_list ap)
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
	return str_try_append(s, small, (size_t) n);
    if (!str_reserve(s, (size_t) n))
	return false;
    vsnprintf(s->data + s->len, (size_t) n + 1, fmt, ap);
    s->len += (size_t) n;
    return true;
}

/* str_try_appendf - formatted append */
bool str_try_appendf(struct str *s, const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = str_try_vappendf(s, fmt, ap);
    va_end(ap);
    return ok;
}

/* str_vprintf - formatted replace; arguments may point into s */
static bool str_vprintf(struct str *s, const char *fmt, va_list ap)
{
    size_t old = s->len;

    /* Format after the old contents so that arguments pointing into s
     * stay valid, then move the result down. */
    if (!str_try_vappendf(s, fmt, ap))
	return false;
    memmove(s->data, s->data + old, s->len - old);
    s->len -= old;
    s->data[s->len] = 0;
    return true;
}

/* str_try_printf - formatted replace */
bool str_try_printf(struct str *s, const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = str_vprintf(s, fmt, ap);
    va_end(ap);
    return ok;
}

/* ---------------------------------------------------------------- */
/* Bounded by the program: past s->max is a bug.                    */

/* str_overflow - the panic of the _or_panic half */
static _Noreturn void str_overflow(const char *func, const struct str *s, size_t more)
{
    msg_panic("%s: %zu + %zu bytes pass the maximum of %zu", func, s->len, more, s->max);
}

/* str_append_or_panic - append len bytes */
void str_append_or_panic(struct str *s, const void *data, size_t len)
{
    if (!str_try_append(s, data, len))
	str_overflow(__func__, s, len);
}

/* str_appends_or_panic - append a C string */
void str_appends_or_panic(struct str *s, const char *text)
{
    size_t len = strlen(text);

    if (!str_try_append(s, text, len))
	str_overflow(__func__, s, len);
}

/* str_appendc_or_panic - append one byte */
void str_appendc_or_panic(struct str *s, char c)
{
    if (!str_try_append(s, &c, 1))
	str_overflow(__func__, s, 1);
}

/* str_setn_or_panic - replace the content with len bytes */
void str_setn_or_panic(struct str *s, const void *data, size_t len)
{
    if (!str_try_setn(s, data, len))
	str_overflow(__func__, s, len);
}

/* str_set_or_panic - replace the content with a C string */
void str_set_or_panic(struct str *s, const char *text)
{
    size_t len = strlen(text);

    if (!str_try_setn(s, text, len))
	str_overflow(__func__, s, len);
}

/* str_vappendf_or_panic - formatted append */
void str_vappendf_or_panic(struct str *s, const char *fmt, va_list ap)
{
    if (!str_try_vappendf(s, fmt, ap))
	msg_panic("%s: formatted text passes the maximum of %zu (\"%.40s\")", __func__, s->max, fmt);
}

/* str_appendf_or_panic - formatted append */
void str_appendf_or_panic(struct str *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    str_vappendf_or_panic(s, fmt, ap);
    va_end(ap);
}

/* str_printf_or_panic - formatted replace */
void str_printf_or_panic(struct str *s, const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = str_vprintf(s, fmt, ap);
    va_end(ap);
    if (!ok)
	msg_panic("%s: formatted text passes the maximum of %zu (\"%.40s\")", __func__, s->max, fmt);
}

/* ---------------------------------------------------------------- */
/* Other operations.                                                */

/* str_chomp - remove a trailing "
" or "
" */
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

/* str_lower - lower-case in place */
void str_lower(struct str *s)
{
    for (size_t i = 0; i < s->len; i++)
	s->data[i] = (char) tolower((unsigned char) s->data[i]);
}

/* str_has_nul - the data holds a NUL byte */
bool str_has_nul(const struct str *s)
{
    return memchr(s->data, 0, s->len) != NULL;
}

/* ---------------------------------------------------------------- */
/* Fixed arrays.                                                    */

/* str_try_copy_out - copy text, cut at size - 1 bytes (then false) */
bool str_try_copy_out(char *buf, size_t size, const char *text)
{
    size_t len = strlen(text);

    if (size == 0)
	msg_panic("%s: zero-size buffer", __func__);
    if (len >= size) {
	memcpy(buf, text, size - 1);
	buf[size - 1] = 0;
	return false;
    }
    memcpy(buf, text, len + 1);
    return true;
}

/* str_copy_out_or_panic - copy text that must fit */
void str_copy_out_or_panic(char *buf, size_t size, const char *text)
{
    if (!str_try_copy_out(buf, size, text))
	msg_panic("%s: %zu bytes do not fit in %zu", __func__, strlen(text), size);
}

/* fmt_long - v in decimal at buf, without printf (see str.h) */
size_t fmt_long(char *buf, long v)
{
    char tmp[FMT_LONG_SIZE];
    unsigned long u = v < 0 ? 0UL - (unsigned long) v : (unsigned long) v;
    size_t n = 0, len = 0;

    do {
	tmp[n++] = (char) ('0' + u % 10);
	u /= 10;
    } while (u);
    if (v < 0)
	buf[len++] = '-';
    while (n)
	buf[len++] = tmp[--n];
    return len;
}

/* fmt_vbuf - bounded vsnprintf; false if cut */
static bool fmt_vbuf(char *buf, size_t size, const char *fmt, va_list ap)
{
    int n;

    if (size == 0)
	msg_panic("%s: zero-size buffer", __func__);
    n = vsnprintf(buf, size, fmt, ap);
    return n >= 0 && (size_t) n < size;
}

/* fmt_try_buf - bounded snprintf; false if cut */
bool fmt_try_buf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = fmt_vbuf(buf, size, fmt, ap);
    va_end(ap);
    return ok;
}

/* fmt_buf_or_panic - bounded snprintf that must fit */
void fmt_buf_or_panic(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = fmt_vbuf(buf, size, fmt, ap);
    va_end(ap);
    if (!ok)
	msg_panic("%s: formatted text does not fit in %zu (\"%.40s\")", __func__, size, fmt);
}

/* fmt_buf_cut - bounded snprintf of a message text; a cut end is fine */
void fmt_buf_cut(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (size == 0)
	msg_panic("%s: zero-size buffer", __func__);
    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0)
	buf[0] = 0;
}

/* str_printf_cut - set s to a message text; when it does not fit, its
 * first min(s->max, 1023) bytes */
void str_printf_cut(struct str *s, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    ok = str_vprintf(s, fmt, ap);
    va_end(ap);
    if (ok)
	return;
    va_start(ap, fmt);
    (void) fmt_vbuf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    str_reset(s);
    if (!str_try_append(s, buf, strlen(buf) < s->max ? strlen(buf) : s->max))
	msg_panic("%s: cannot keep %zu bytes", __func__, s->max);
}
