/* strv.h - a growable vector of owned strings, always NULL-terminated,
 * so that it can be handed to execve(2) as argv or envp.
 *
 *   struct strv args = STRV_INIT;
 *   strv_add(&args, "/usr/libexec/posthorn/smtpd");
 *   strv_addf(&args, "%d", count);
 *   execve(strv_array(&args)[0], strv_array(&args), ...);
 *   strv_fini(&args);
 *
 * Every string is a copy that the vector owns. Growth is amortized
 * (doubling) and size arithmetic is checked (mem.h). Nothing here can
 * fail: running out of memory stops the process (mem.h). */
#ifndef POSTHORN_STRV_H
#define POSTHORN_STRV_H

#include <stddef.h>

struct strv {
    char **items;			/* count strings and a NULL; NULL while empty */
    size_t count;
    size_t cap;				/* slots allocated, the NULL's included */
};

#define STRV_INIT	{NULL, 0, 0}

/* strv_add - append a copy of text */
void strv_add(struct strv *sv, const char *text);
/* strv_addn - append a copy of text[0..len) (a NUL ends it earlier) */
void strv_addn(struct strv *sv, const char *text, size_t len);
/* strv_addf - append a formatted string (any length) */
void strv_addf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* strv_array - the NULL-terminated array (never NULL, even when empty);
 * valid until the next change of the vector */
char **strv_array(struct strv *sv);
/* strv_fini - free every string and the array; the vector is empty */
void strv_fini(struct strv *sv);

#endif
