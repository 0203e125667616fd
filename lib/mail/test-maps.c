/* test-maps.c - unit tests for maps.c: a *_maps list looked up in order,
 * the table that answered, missing tables (default vs set parameter),
 * errors naming the parameter, reopening a rebuilt table. */

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "config.h"
#include "maps.h"
#include "table.h"

static char dir[PATH_MAX];

/* table_at - "cdb:DIR/name" */
static const char *table_at(const char *name)
{
    static char buf[4][PATH_MAX + 8];
    static int next;
    char *p = buf[next++ % 4];

    if (!fmt_try_buf(p, PATH_MAX + 8, "cdb:%s/%s", dir, name))
	msg_fatal("path too long");
    return p;
}

/* build - write DIR/name with text and build its cdb */
static void build(const char *name, const char *text)
{
    char path[PATH_MAX];
    const char *err;
    FILE *fp;

    if (!fmt_try_buf(path, sizeof(path), "%s/%s", dir, name) || (fp = fopen(path, "w")) == NULL)
	msg_fatal("create %s: %m", path);
    fputs(text, fp);
    fclose(fp);
    if (table_build(table_at(name), "cdb", 0, &err) < 0)
	msg_fatal("build: %s", err);
}

/* lookup - maps_lookup's result, with the value in *out (or "") */
static int lookup(struct maps *m, const char *key, char *out, size_t size, const char **err)
{
    struct str *v = str_new(1024);
    int rc = maps_lookup(m, key, v, NULL, err);

    str_copy_out_or_panic(out, size, rc > 0 ? str_cstr(v) : "");
    str_free(&v);
    return rc;
}

static void test_lookup_in_order(void)
{
    char list[2 * PATH_MAX + 32], out[256];
    const char *err = NULL;
    struct maps *m;
    struct str *v = str_new(1024);
    uid_t owner = (uid_t) -2;

    unit_begin("the first table that has the key answers; its owner is given");
    build("one", "alice a1\nboth from-one\n");
    build("two", "bob b2\nboth from-two\n");
    fmt_buf_or_panic(list, sizeof(list), "%s, %s", table_at("one"), table_at("two"));
    m = maps_from_param("transport_maps", list, 0);
    unit_assert_inteq(maps_count(m), 2);
    unit_assert(maps_all_open(m));
    unit_assert_inteq(lookup(m, "alice", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "a1");
    unit_assert_inteq(lookup(m, "bob", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "b2");
    unit_assert_inteq(lookup(m, "both", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "from-one");
    unit_assert_inteq(lookup(m, "nobody", out, sizeof(out), &err), 0);
    unit_assert_inteq(maps_lookup(m, "bob", v, &owner, &err), 1);
    unit_assert_inteq(owner, geteuid());
    maps_free(&m);
    unit_assert(m == NULL);
    str_free(&v);
    unit_end();

    unit_begin("an empty list finds nothing");
    m = maps_from_param("transport_maps", "", 0);
    unit_assert_inteq(maps_count(m), 0);
    unit_assert_inteq(lookup(m, "alice", out, sizeof(out), &err), 0);
    maps_free(&m);
    unit_end();
}

static void test_missing_tables(void)
{
    char list[2 * PATH_MAX + 32], out[256];
    const char *err = NULL;
    struct maps *m;

    unit_begin("a missing table of a default-valued parameter counts as empty");
    config_init();
    fmt_buf_or_panic(list, sizeof(list), "%s %s", table_at("absent"), table_at("one"));
    m = maps_from_param("alias_maps", list, 0);
    unit_assert(!maps_all_open(m));
    unit_assert_inteq(lookup(m, "alice", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "a1");
    maps_free(&m);
    unit_end();

    unit_begin("a missing table of a parameter set in main.cf is an error naming it");
    config_set("alias_maps", list);
    m = maps_from_param("alias_maps", list, 0);
    err = NULL;
    unit_assert_inteq(lookup(m, "alice", out, sizeof(out), &err), -1);
    unit_assert(err != NULL && strncmp(err, "alias_maps: ", 12) == 0);
    unit_assert(err != NULL && strstr(err, "absent") != NULL);
    unit_assert(err != NULL && strstr(err, "(run newaliases)") != NULL);
    /* built later: the next lookup opens it */
    build("absent", "alice from-absent\n");
    unit_assert_inteq(lookup(m, "alice", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "from-absent");
    unit_assert(maps_all_open(m));
    maps_free(&m);
    config_init();
    unit_end();
}

static void test_reopen_changed(void)
{
    char out[256];
    const char *err = NULL;
    struct maps *plain, *reopen;

    unit_begin("MAPS_REOPEN_CHANGED reads a rebuilt table; without it the old one stays");
    build("re", "key old\n");
    plain = maps_from_param("alias_maps", table_at("re"), 0);
    reopen = maps_from_param("alias_maps", table_at("re"), MAPS_REOPEN_CHANGED);
    unit_assert_inteq(lookup(reopen, "key", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "old");
    build("re", "key new\n");
    unit_assert_inteq(lookup(reopen, "key", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "new");
    unit_assert_inteq(lookup(plain, "key", out, sizeof(out), &err), 1);
    unit_assert_streq(out, "old");
    maps_free(&plain);
    maps_free(&reopen);
    unit_end();
}

int main(void)
{
    char cwd[PATH_MAX];

    if (getcwd(cwd, sizeof(cwd)) == NULL
	|| !fmt_try_buf(dir, sizeof(dir), "%s/test-maps.XXXXXX", cwd) || mkdtemp(dir) == NULL)
	msg_fatal("mkdtemp: %m");
    config_init();
    test_lookup_in_order();
    test_missing_tables();
    test_reopen_changed();
    {
	char cmd[PATH_MAX + 16];

	if (fmt_try_buf(cmd, sizeof(cmd), "rm -rf %s", dir))
	    (void) !system(cmd);
    }
    return unit_done();
}
