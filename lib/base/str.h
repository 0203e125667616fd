/* str.h - bounded, growable strings.
 *
 * A struct str owns its bytes, length, capacity and a hard maximum length
 * fixed at creation. Appends that would pass the maximum change nothing
 * and return false: at a network boundary the caller turns that into a
 * protocol error; inside, into msg_panic. The bytes are always followed
 * by a NUL (not counted in len), so str_cstr() is safe to pass to C
 * functions, though the data may itself contain NULs.
 *
 * fmt_buf() is the bounded replacement for sprintf into a fixed array. */
#ifndef POSTHORN_STR_H
#define POSTHORN_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct str {
    char *data;			/* len bytes + NUL */
    size_t len;
    size_t cap;			/* allocated, excluding the NUL */
    size_t max;			/* hard limit on len */
};

#define STR_MAX_DEFAULT	((size_t) 1 << 20)	/* 1 MiB */
#define STR_MAX_HUGE	((size_t) 1 << 30)

struct str *str_new(size_t max);
void str_free(struct str **sp);
/* str_init/str_fini - for a struct str embedded in another struct */
void str_init(struct str *s, size_t max);
void str_fini(struct str *s);

void str_reset(struct str *s);
bool str_truncate(struct str *s, size_t len);
bool str_append(struct str *s, const void *data, size_t len);
bool str_appends(struct str *s, const char *text);
bool str_appendc(struct str *s, char c);
bool str_set(struct str *s, const char *text);
bool str_setn(struct str *s, const void *data, size_t len);
bool str_printf(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool str_appendf(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool str_vappendf(struct str *s, const char *fmt, va_list ap);
/* str_reserve - make room for len more bytes; false if over max */
bool str_reserve(struct str *s, size_t len);
/* str_chomp - remove a trailing "\n" or "\r\n"; returns bytes removed */
size_t str_chomp(struct str *s);
void str_lower(struct str *s);

static inline const char *str_cstr(const struct str *s) { return s->data; }
static inline size_t str_len(const struct str *s) { return s->len; }

/* str_copy_out - copy into a fixed buffer, always NUL-terminated;
 * false if truncated */
bool str_copy_out(char *buf, size_t size, const char *text);
/* fmt_buf - bounded snprintf; false if the result was truncated */
bool fmt_buf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* str_has_nul - true if the data contains a NUL byte */
bool str_has_nul(const struct str *s);

#endif
