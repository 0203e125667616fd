/* fuzz_config.c - libFuzzer target for the configuration reader and
 * expander (lib/mail/config.c): config_load_fd on a memfd (strict, then
 * lenient as `posthorn check` reads), config_expand, config_value, and
 * config_expand_with with names of the input's own.
 *
 * Input: byte 0: bits 0-3 the conditional depth limit of
 * config_expand_with (0 = the default), bit 4: its insert callback
 * refuses names that start with "x"; then the text to expand, a NUL, and
 * main.cf text (which also gives config_expand_with its names: each
 * "name = value" line). Properties (a failure aborts):
 *  - text without "$" expands to itself, with both expanders;
 *  - an expansion gives the same result and the same output when run
 *    twice (no state leaks from one expansion into the next);
 *  - a lenient load fails only for a file with a NUL byte (refused as
 *    a whole); any other mistake is reported and skipped. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

/* The caller's names for config_expand_with: the main.cf part. */
struct names {
    const char *text;
    size_t len;
    bool refuse_x;
};

/* names_lookup - the value of "name = value" in the main.cf part, or "" */
static int names_lookup(void *ctx, const char *name, size_t len, const char **value_r,
			const char **error_r)
{
    static char value[256];
    const struct names *n = ctx;
    const char *p = n->text, *end = n->text + n->len;

    if (len == 4 && memcmp(name, "fail", 4) == 0) {
	*error_r = "lookup failed";
	return -1;
    }
    *value_r = "";
    while (p < end) {
	const char *eol = memchr(p, '\n', (size_t) (end - p));
	const char *line_end = eol ? eol : end;
	const char *eq = memchr(p, '=', (size_t) (line_end - p));

	if (eq) {
	    const char *k = p, *ke = eq, *v = eq + 1;

	    while (k < ke && (*k == ' ' || *k == '\t'))
		k++;
	    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
		ke--;
	    while (v < line_end && (*v == ' ' || *v == '\t'))
		v++;
	    if ((size_t) (ke - k) == len && memcmp(k, name, len) == 0) {
		size_t vl = (size_t) (line_end - v);

		if (vl >= sizeof(value))
		    vl = sizeof(value) - 1;
		memcpy(value, v, vl);
		value[vl] = 0;
		*value_r = value;
		return 0;
	    }
	}
	p = eol ? eol + 1 : end;
    }
    return 0;
}

/* names_insert - append a value; refuses names that start with "x" when
 * the input asks for it */
static int names_insert(void *ctx, struct str *out, const char *name, size_t len,
			const char *value, const char **error_r)
{
    const struct names *n = ctx;

    if (n->refuse_x && len > 0 && name[0] == 'x') {
	*error_r = "refused";
	return -1;
    }
    if (!str_try_append(out, value, strlen(value))) {
	*error_r = "too long";
	return -1;
    }
    return 0;
}

/* lenient - the reporter of `posthorn check`: note and go on */
static void lenient(const char *error, void *ctx)
{
    (void) error;
    (*(long *) ctx)++;
}

/* expand_twice - config_expand (x == NULL) or config_expand_with, twice:
 * the same result both times */
static void expand_twice(const char *text, const struct config_expander *x)
{
    struct str *a = str_new(STR_MAX_DEFAULT), *b = str_new(STR_MAX_DEFAULT);
    const char *err;
    int ra, rb;

    ra = x ? config_expand_with(text, a, x, &err) : config_expand(text, a, &err);
    rb = x ? config_expand_with(text, b, x, &err) : config_expand(text, b, &err);
    check(ra == rb);
    if (ra == 0)
	check(str_len(a) == str_len(b) && memcmp(str_cstr(a), str_cstr(b), str_len(a)) == 0);
    if (strchr(text, '$') == NULL) {
	check(ra == 0);
	check(strcmp(str_cstr(a), text) == 0);
    }
    str_free(&a);
    str_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    struct config_expander x;
    struct names names;
    const char *text, *cf, *nul, *err;
    size_t text_len, cf_len;
    char *text_copy;
    long reported = 0;

    if (size < 1)
	return 0;
    if (fd < 0) {
	msg_init("fuzz_config", 0);		/* no log output */
	if ((fd = memfd_create("main.cf", MFD_CLOEXEC)) < 0)
	    abort();
    }
    text = (const char *) data + 1;
    nul = memchr(text, 0, size - 1);
    text_len = nul ? (size_t) (nul - text) : size - 1;
    cf = nul ? nul + 1 : text + text_len;
    cf_len = (size_t) ((const char *) data + size - cf);
    text_copy = mem_strndup(text, text_len);

    if (ftruncate(fd, 0) < 0 || pwrite(fd, cf, cf_len, 0) != (ssize_t) cf_len)
	abort();

    /* strict, as a daemon loads master's snapshot */
    config_init();
    config_set("myhostname", "fuzz.example.org");	/* no name look-up */
    config_set("mydomain", "example.org");
    config_set_reporter(NULL, NULL);
    if (config_load_fd(fd, "fuzz/main.cf", &err) == 0) {
	expand_twice(text_copy, NULL);
	(void) config_value("myorigin");
	(void) config_apply(&err);
    }

    /* lenient, as `posthorn check` does: never fails */
    config_init();
    config_set("myhostname", "fuzz.example.org");
    config_set("mydomain", "example.org");
    config_set_reporter(lenient, &reported);
    if (config_load_fd(fd, "fuzz/main.cf", &err) < 0)
	check(memchr(cf, 0, cf_len) != NULL);
    expand_twice(text_copy, NULL);
    (void) config_apply(&err);
    config_set_reporter(NULL, NULL);

    /* the caller's names */
    names.text = cf;
    names.len = cf_len;
    names.refuse_x = (data[0] & 0x10) != 0;
    memset(&x, 0, sizeof(x));
    x.lookup = names_lookup;
    x.insert = data[0] & 0x10 ? names_insert : NULL;
    x.ctx = &names;
    x.max_depth = data[0] & 0x0f;
    expand_twice(text_copy, &x);

    mem_free(&text_copy);
    return 0;
}
