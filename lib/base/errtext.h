/* errtext.h - the text behind a "const char **error_r", with a stated
 * lifetime.
 *
 * A recoverable error in lib/ is a return value (-1, false or NULL) plus
 * a text through error_r. Each module that reports errors that way owns
 * one struct errtext (a static of the module) and formats every text
 * with errtext_fail (returns -1 for the caller to pass on) or
 * errtext_set (returns the text).
 *
 * LIFETIME: a text stays valid and unchanged until the next error of
 * the same module (the next errtext_set on the same struct errtext),
 * in practice until the next call into that module. A caller that keeps
 * a text longer copies it. Modules never share a buffer, so a module
 * may build its text from another module's ("open %s: %s", path,
 * other_error), and the arguments may even point into the module's own
 * previous text: the text is formatted into a temporary first.
 *
 * Bounds: a text longer than ERRTEXT_SIZE - 1 bytes is cut there (it
 * is a message for a person, never data). Not thread-safe: posthorn's
 * processes have one thread. */
#ifndef POSTHORN_ERRTEXT_H
#define POSTHORN_ERRTEXT_H

#include <stdarg.h>

#define ERRTEXT_SIZE	(4096 + 256)	/* a PATH_MAX path and a sentence */

struct errtext {
    char text[ERRTEXT_SIZE];
};

/* errtext_set - format the module's error text; returns it */
const char *errtext_set(struct errtext *et, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* errtext_vset - errtext_set with a va_list */
const char *errtext_vset(struct errtext *et, const char *fmt, va_list ap);
/* errtext_fail - format the text, point *error_r at it (if error_r is
 * not NULL) and return -1: "return errtext_fail(&mod_error, error_r, ...)" */
int errtext_fail(struct errtext *et, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
