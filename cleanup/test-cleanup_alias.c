/* test-cleanup_alias.c - unit tests for cleanup_alias.c: virtual alias
 * expansion through a real cdb table (resolve.c): lists, nesting,
 * self-reference, loops, duplicates, the recursion and expansion
 * limits, lookup failure. */

/* System. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Base. */
#include "msg.h"
#include "str.h"
#include "unit.h"

/* Mail. */
#include "cleanup_stat.h"
#include "config.h"
#include "resolve.h"
#include "table.h"

/* Cleanup. */
#include "cleanup.h"

static char test_dir[PATH_MAX];

struct alias_case {
    const char *addr;
    const char *want;			/* results joined by " " */
    unsigned status;
};

static const struct alias_case cases[] = {
    {"plain@other.test", "plain@other.test", 0},
    {"info@example.test", "alice@example.test", 0},
    {"team@example.test", "alice@example.test bob@example.test Carol@remote.test", 0},
    /* nested: list -> team -> members, duplicates removed */
    {"all@example.test", "alice@example.test bob@example.test Carol@remote.test dave@example.test", 0},
    /* self-reference: kept, and the others added */
    {"self@example.test", "self@example.test copy@example.test", 0},
    /* a loop a -> b -> a is cut where it closes */
    {"loop1@example.test", "", 0},
    {"loopx@example.test", "x@example.test", 0},
    /* unqualified targets get $myorigin; domains are lower-cased */
    {"short@example.test", "localuser@origin.test upper@example.test", 0},
    /* catch-all of a virtual alias domain */
    {"anything@alias.test", "alice@example.test", 0},
    /* display names and comments in values */
    {"named@example.test", "alice@example.test bob@example.test", 0},
    /* depth 5 > recursion limit 4 */
    {"deep0@example.test", "", CLEANUP_STAT_DEFER},
    {"deep2@example.test", "end@example.test", 0},
    /* 6 results > expansion limit 5 */
    {"wide@example.test", "", CLEANUP_STAT_DEFER},
};

/* make_table - write and build cdb:DIR/name */
static void make_table(const char *name, const char *text, char *tname, size_t size)
{
    char path[PATH_MAX];
    const char *err;
    FILE *fp;

    fmt_buf_or_panic(path, sizeof(path), "%s/%s", test_dir, name);
    if ((fp = fopen(path, "w")) == NULL)
	msg_fatal("create %s: %m", path);
    fputs(text, fp);
    fclose(fp);
    fmt_buf_or_panic(tname, size, "cdb:%s", path);
    if (table_build(tname, NULL, 0, &err) < 0)
	msg_fatal("build: %s", err);
}

int main(void)
{
    char tname[PATH_MAX + 8], cmd[PATH_MAX + 16];
    struct cleanup_addrs out;
    struct str *got = str_new(10000);
    const char *err, *why;
    unsigned status;
    size_t i, j;

    fmt_buf_or_panic(test_dir, sizeof(test_dir), "/tmp/test-cleanup_alias.XXXXXX");
    if (mkdtemp(test_dir) == NULL)
	msg_fatal("mkdtemp: %m");
    make_table("virtual",
	       "info@example.test alice@example.test\n"
	       "team@example.test alice@example.test, bob@example.test, Carol@REMOTE.test\n"
	       "all@example.test team@example.test, dave@example.test, info@example.test\n"
	       "self@example.test self@example.test, copy@example.test\n"
	       "loop1@example.test loop2@example.test\n"
	       "loop2@example.test loop1@example.test\n"
	       "loopx@example.test loopy@example.test\n"
	       "loopy@example.test loopx@example.test, x@example.test\n"
	       "short@example.test localuser, upper@EXAMPLE.TEST.\n"
	       "@alias.test alice@example.test\n"
	       "named@example.test Alice <alice@example.test>, bob@example.test (Bob)\n"
	       "deep0@example.test deep1@example.test\n"
	       "deep1@example.test deep2@example.test\n"
	       "deep2@example.test deep3@example.test\n"
	       "deep3@example.test deep4@example.test\n"
	       "deep4@example.test deep5@example.test\n"
	       "deep5@example.test end@example.test\n"
	       "wide@example.test w1@x, w2@x, w3@x, w4@x, w5@x, w6@x\n",
	       tname, sizeof(tname));
    config_init();
    config_set("virtual_alias_maps", tname);
    config_set("virtual_alias_domains", "alias.test");
    config_set("myorigin", "origin.test");
    config_set("virtual_alias_recursion_limit", "4");
    config_set("virtual_alias_expansion_limit", "5");
    if (config_apply(&err) < 0 || resolve_init(&err) < 0)
	msg_fatal("%s", err);

    unit_begin("virtual alias expansion");
    cleanup_addrs_init(&out);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	cleanup_addrs_reset(&out);
	status = cleanup_alias_expand("TESTID", cases[i].addr, &out, &why);
	unit_assert_idx(status == cases[i].status, i);
	if (status)
	    continue;
	str_reset(got);
	for (j = 0; j < out.n; j++)
	    str_appendf_or_panic(got, "%s%s", j ? " " : "", out.v[j]);
	unit_assert_streq_idx(str_cstr(got), cases[i].want, i);
    }
    unit_end();

    unit_begin("why texts name the limit");
    cleanup_addrs_reset(&out);
    unit_assert(cleanup_alias_expand("ID", "deep0@example.test", &out, &why) == CLEANUP_STAT_DEFER);
    unit_assert(strstr(why, "virtual_alias_recursion_limit") != NULL);
    cleanup_addrs_reset(&out);
    unit_assert(cleanup_alias_expand("ID", "wide@example.test", &out, &why) == CLEANUP_STAT_DEFER);
    unit_assert(strstr(why, "virtual_alias_expansion_limit") != NULL);
    unit_end();

    unit_begin("a table that cannot be read defers");
    resolve_fini();
    fmt_buf_or_panic(tname, sizeof(tname), "cdb:%s/absent", test_dir);
    config_set("virtual_alias_maps", tname);
    if (config_apply(&err) < 0 || resolve_init(&err) < 0)
	msg_fatal("%s", err);
    cleanup_addrs_reset(&out);
    unit_assert(cleanup_alias_expand("ID", "a@example.test", &out, &why) == CLEANUP_STAT_DEFER);
    unit_assert(strstr(why, "temporary") != NULL);
    unit_end();

    resolve_fini();
    cleanup_addrs_fini(&out);
    str_free(&got);
    fmt_buf_or_panic(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
    if (system(cmd) != 0)
	msg_warn("cannot remove %s", test_dir);
    return unit_done();
}
