/* errtext.c - the one way lib/ modules format the text behind error_r
 * (see errtext.h for its lifetime). */

#include <stdio.h>
#include <string.h>

/* Base library. */
#include "errtext.h"

/* errtext_vset - format through a temporary (the arguments may point
 * into et's previous text), then copy; a long text is cut */
const char *errtext_vset(struct errtext *et, const char *fmt, va_list ap)
{
    char tmp[ERRTEXT_SIZE];
    int n;

    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    if (n < 0)
	tmp[0] = 0;
    memcpy(et->text, tmp, strlen(tmp) + 1);
    return et->text;
}

/* errtext_set - see errtext.h */
const char *errtext_set(struct errtext *et, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) errtext_vset(et, fmt, ap);
    va_end(ap);
    return et->text;
}

/* errtext_fail - see errtext.h */
int errtext_fail(struct errtext *et, const char **error_r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) errtext_vset(et, fmt, ap);
    va_end(ap);
    if (error_r)
	*error_r = et->text;
    return -1;
}
