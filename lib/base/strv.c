/* strv.c - a growable, NULL-terminated vector of owned strings (see
 * strv.h): argv and envp for children, lists built from configuration. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "strv.h"

/* strv_room - make room for one more string and the NULL after it */
static void strv_room(struct strv *sv)
{
    if (sv->count + 2 > sv->cap) {
	sv->cap = sv->cap ? mem_size_mul(sv->cap, 2) : 16;
	sv->items = mem_realloc(sv->items, mem_size_mul(sv->cap, sizeof(char *)));
    }
}

/* strv_take - append a string the vector now owns */
static void strv_take(struct strv *sv, char *owned)
{
    strv_room(sv);
    sv->items[sv->count++] = owned;
    sv->items[sv->count] = NULL;
}

/* strv_add - append a copy of text */
void strv_add(struct strv *sv, const char *text)
{
    strv_take(sv, mem_strdup(text));
}

/* strv_addn - append a copy of at most len bytes of text */
void strv_addn(struct strv *sv, const char *text, size_t len)
{
    strv_take(sv, mem_strndup(text, len));
}

/* strv_addf - append a formatted string */
void strv_addf(struct strv *sv, const char *fmt, ...)
{
    va_list ap, ap2;
    char *text;
    int n;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
	msg_panic("strv_addf: bad format \"%s\"", fmt);
    text = mem_alloc(mem_size_add((size_t) n, 1));
    (void) vsnprintf(text, (size_t) n + 1, fmt, ap);
    va_end(ap);
    strv_take(sv, text);
}

/* strv_array - the NULL-terminated array, never NULL */
char **strv_array(struct strv *sv)
{
    if (sv->items == NULL) {
	strv_room(sv);
	sv->items[0] = NULL;
    }
    return sv->items;
}

/* strv_fini - free everything */
void strv_fini(struct strv *sv)
{
    for (size_t i = 0; i < sv->count; i++)
	mem_free(&sv->items[i]);
    mem_free(&sv->items);
    sv->count = sv->cap = 0;
}
