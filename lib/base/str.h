/* str.h - bounded, growable strings.
 *
 * A struct str owns its bytes, length, capacity and a hard maximum length
 * fixed at creation. The bytes are always followed by a NUL (not counted
 * in len), so str_cstr() is safe to pass to C functions, though the data
 * may itself contain NULs.
 *
 * Every write that can pass a bound comes in two halves, and each call
 * says which one it means:
 *   str_try_X(...)       checked: false, and s unchanged, when the result
 *                        would pass s->max. The result must be used (the
 *                        compiler refuses to drop it): for data from
 *                        outside (a client, a file), where "too long" is
 *                        an answer to give, never a bug.
 *   str_X_or_panic(...)  for text the program bounds itself (a fixed
 *                        format, a value already checked): passing the
 *                        maximum is a bug, and msg_panic says so rather
 *                        than a line silently losing its end.
 * The same for fixed arrays: fmt_try_buf / fmt_buf_or_panic (bounded
 * snprintf) and str_try_copy_out / str_copy_out_or_panic.
 *
 * Message texts are the one exception: an error reason, a warning or a
 * log line formatted into a fixed array or a struct str, where a cut end
 * loses nothing a program acts on. They use fmt_buf_cut / str_printf_cut,
 * which keep what fits and say so at the call; never for a path, an
 * address, a header, a record or a reply a peer parses. A text that is
 * sent or stored as data takes a checked call and handles "too long".
 */
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

#define STR_CHECKED	__attribute__((warn_unused_result))

void str_reset(struct str *s);
/* str_truncate - cut to len (<= the current length; false if longer) */
bool str_truncate(struct str *s, size_t len);
/* str_reserve - make room for len more bytes; false if over max */
STR_CHECKED bool str_reserve(struct str *s, size_t len);
/* str_chomp - remove a trailing "\n" or "\r\n"; returns bytes removed */
size_t str_chomp(struct str *s);
void str_lower(struct str *s);

static inline const char *str_cstr(const struct str *s) { return s->data; }
static inline size_t str_len(const struct str *s) { return s->len; }
/* str_has_nul - true if the data contains a NUL byte */
bool str_has_nul(const struct str *s);

/* Checked: false (s unchanged) if the result would pass s->max. */
STR_CHECKED bool str_try_append(struct str *s, const void *data, size_t len);
STR_CHECKED bool str_try_appends(struct str *s, const char *text);
STR_CHECKED bool str_try_appendc(struct str *s, char c);
STR_CHECKED bool str_try_set(struct str *s, const char *text);
STR_CHECKED bool str_try_setn(struct str *s, const void *data, size_t len);
STR_CHECKED bool str_try_printf(struct str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
STR_CHECKED bool str_try_appendf(struct str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
STR_CHECKED bool str_try_vappendf(struct str *s, const char *fmt, va_list ap);

/* Bounded by the program: passing s->max is a bug (msg_panic). */
void str_append_or_panic(struct str *s, const void *data, size_t len);
void str_appends_or_panic(struct str *s, const char *text);
void str_appendc_or_panic(struct str *s, char c);
void str_set_or_panic(struct str *s, const char *text);
void str_setn_or_panic(struct str *s, const void *data, size_t len);
void str_printf_or_panic(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void str_appendf_or_panic(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void str_vappendf_or_panic(struct str *s, const char *fmt, va_list ap);

/* Fixed arrays (size > 0), always NUL-terminated. The checked forms
 * leave the text cut at size - 1 bytes and return false. */
STR_CHECKED bool str_try_copy_out(char *buf, size_t size, const char *text);
void str_copy_out_or_panic(char *buf, size_t size, const char *text);
STR_CHECKED bool fmt_try_buf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fmt_buf_or_panic(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Message texts only (see the top): cut to fit, no result to check. */
void fmt_buf_cut(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void str_printf_cut(struct str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fmt_long - v in decimal at buf, not NUL-terminated, without printf
 * (for per-message paths); buf has FMT_LONG_SIZE bytes; the length */
#define FMT_LONG_SIZE	24
size_t fmt_long(char *buf, long v);

#endif
