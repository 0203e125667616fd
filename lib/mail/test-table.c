/* test-table.c - unit tests for table.c, table_cdb.c and table_db.c:
 * building from text, lookups, folding, errors, atomic rebuilds. */

/* System. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

/* Mail. */
#include "table.h"

static char test_dir[PATH_MAX];

/* path_in - a file name inside the test directory */
static const char *path_in(const char *name)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];

    if (!fmt_try_buf(p, PATH_MAX, "%s/%s", test_dir, name))
	msg_fatal("path too long");
    return p;
}

/* write_text - replace a file's contents */
static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd;
    size_t len = strlen(text);

    unlink(path);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) < 0)
	msg_fatal("create %s: %m", path);
    if (write(fd, text, len) != (ssize_t) len)
	msg_fatal("write %s: %m", path);
    fchmod(fd, mode);
    close(fd);
}

/* count_files - entries in the test directory, except . and .. */
static int count_files(void)
{
    DIR *d = opendir(test_dir);
    struct dirent *de;
    int n = 0;

    while ((de = readdir(d)) != NULL)
	if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
	    n++;
    closedir(d);
    return n;
}

/* remove_test_dir - clean up (the directory is flat) */
static void remove_test_dir(void)
{
    DIR *d = opendir(test_dir);
    struct dirent *de;

    while ((de = readdir(d)) != NULL)
	if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
	    unlink(path_in(de->d_name));
    closedir(d);
    rmdir(test_dir);
}

/* build_capture - table_build_count with stderr captured into warnings */
static int build_capture(const char *name, int flags, size_t *count, struct str *warnings,
			 const char **error_r)
{
    const char *cap = path_in("stderr.capture");
    int saved, fd, ret;

    fflush(stderr);
    saved = dup(2);
    if ((fd = open(cap, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
	msg_fatal("open %s: %m", cap);
    dup2(fd, 2);
    close(fd);
    ret = table_build_count(name, "cdb", flags, count, error_r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    str_reset(warnings);
    if ((fd = open(cap, O_RDONLY)) >= 0) {
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
	    str_append_or_panic(warnings, buf, (size_t) n);
	close(fd);
    }
    unlink(cap);
    return ret;
}

/* lookup_is - true if key maps to want (want NULL: absent) */
static bool lookup_is(struct table *t, const char *key, const char *want)
{
    struct str *v = str_new(TABLE_ENTRY_MAX);
    const char *err = NULL;
    int ret = table_lookup(t, key, v, &err);
    bool ok;

    if (want == NULL)
	ok = (ret == 0);
    else
	ok = (ret == 1 && strcmp(str_cstr(v), want) == 0);
    if (!ok)
	fprintf(stderr, "lookup %s: ret %d value \"%s\" err %s, want \"%s\"\n", key, ret,
		str_cstr(v), err ? err : "-", want ? want : "(absent)");
    str_free(&v);
    return ok;
}

static const char sample[] =
    "# sample table\n"
    "\n"
    "Postmaster@Example.TEST   root, admin\n"
    "   # a comment inside an entry is skipped\n"
    "list@example.test  alice,\n"
    "\tbob,\n"
    "    carol   \n"
    "crlf@example.test value with spaces\r\n"
    "  \n"
    "MiXed\tValue Keeps CASE\n";

/* test_type - build, look up and rebuild one table type */
static void test_type(const char *type)
{
    char name[PATH_MAX], label[100], want[PATH_MAX + 100], srcbuf[PATH_MAX];
    const char *src, *err = NULL;
    struct str *warn = str_new(STR_MAX_DEFAULT);
    struct str *built_path = str_new(PATH_MAX);
    struct str *source_path = str_new(PATH_MAX);
    char typebuf[16];
    struct table *t, *old;
    struct stat st;
    size_t count = 0;

    fmt_buf_or_panic(label, sizeof(label), "%s: build from text and look up", type);
    unit_begin(label);
    str_copy_out_or_panic(srcbuf, sizeof(srcbuf), path_in(type));
    src = srcbuf;
    write_text(src, sample, 0640);
    fmt_buf_or_panic(name, sizeof(name), "%s:%s", type, src);
    unit_assert(table_stale(name, NULL));
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    unit_assert_inteq(count, 4);
    unit_assert_streq(str_cstr(warn), "");
    unit_assert_inteq(table_paths(name, NULL, typebuf, sizeof(typebuf), source_path,
				  built_path, &err), 0);
    unit_assert_streq(typebuf, type);
    unit_assert_streq(str_cstr(source_path), src);
    unit_assert(stat(str_cstr(built_path), &st) == 0);
    unit_assert_inteq(st.st_mode & 07777, 0640);
    unit_assert(!table_stale(name, NULL));
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL);
    if (t) {
	unit_assert(lookup_is(t, "postmaster@example.test", "root, admin"));
	unit_assert(lookup_is(t, "POSTMASTER@EXAMPLE.TEST", "root, admin"));
	unit_assert(lookup_is(t, "list@example.test", "alice, bob, carol"));
	unit_assert(lookup_is(t, "crlf@example.test", "value with spaces"));
	unit_assert(lookup_is(t, "mixed", "Value Keeps CASE"));
	unit_assert(lookup_is(t, "nobody@example.test", NULL));
	unit_assert(lookup_is(t, "", NULL));
	unit_assert(lookup_is(t, "#", NULL));
	unit_assert(lookup_is(t, "postmaster", NULL));
	fmt_buf_or_panic(want, sizeof(want), "%s:%s", type, src);
	unit_assert_streq(table_name(t), want);
	table_close(&t);
	unit_assert(t == NULL);
    }
    unit_end();

    fmt_buf_or_panic(label, sizeof(label), "%s: no folding with TABLE_FLAG_NO_FOLD", type);
    unit_begin(label);
    unit_assert_inteq(build_capture(name, TABLE_FLAG_NO_FOLD, &count, warn, &err), 0);
    t = table_open(name, NULL, TABLE_FLAG_NO_FOLD, &err);
    unit_assert(t != NULL);
    if (t) {
	unit_assert(lookup_is(t, "Postmaster@Example.TEST", "root, admin"));
	unit_assert(lookup_is(t, "postmaster@example.test", NULL));
	unit_assert(lookup_is(t, "MiXed", "Value Keeps CASE"));
	unit_assert(lookup_is(t, "mixed", NULL));
	table_close(&t);
    }
    unit_end();

    fmt_buf_or_panic(label, sizeof(label), "%s: duplicate keys warn and keep the first", type);
    unit_begin(label);
    write_text(src, "a first\nb x\nA second\n", 0644);
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    unit_assert_inteq(count, 2);
    fmt_buf_or_panic(want, sizeof(want), "%s:3: duplicate entry a", src);
    unit_assert(strstr(str_cstr(warn), want) != NULL);
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL);
    if (t) {
	unit_assert(lookup_is(t, "a", "first"));
	table_close(&t);
    }
    unit_end();

    fmt_buf_or_panic(label, sizeof(label), "%s: atomic rebuild, old handle keeps old data", type);
    unit_begin(label);
    write_text(src, "key old-value\n", 0644);
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    old = table_open(name, NULL, 0, &err);
    unit_assert(old != NULL);
    write_text(src, "key new-value\nother x\n", 0644);
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL);
    if (old && t) {
	unit_assert(lookup_is(old, "key", "old-value"));
	unit_assert(lookup_is(old, "other", NULL));
	unit_assert(lookup_is(t, "key", "new-value"));
	unit_assert(lookup_is(t, "other", "x"));
    }
    table_close(&old);
    table_close(&t);
    unit_end();

    fmt_buf_or_panic(label, sizeof(label), "%s: a failed build leaves the old table and no temp", type);
    unit_begin(label);
    {
	int files = count_files();

	write_text(src, "good 1\nbad\ngood2 2\n", 0644);
	unit_assert_inteq(build_capture(name, 0, &count, warn, &err), -1);
	fmt_buf_or_panic(want, sizeof(want), "%s:2: missing value for key bad", src);
	unit_assert(err && strstr(err, want) != NULL);
	unit_assert_inteq(count_files(), files);
	t = table_open(name, NULL, 0, &err);
	unit_assert(t != NULL);
	if (t) {
	    unit_assert(lookup_is(t, "key", "new-value"));
	    unit_assert(lookup_is(t, "good", NULL));
	    table_close(&t);
	}
    }
    unit_end();

    fmt_buf_or_panic(label, sizeof(label), "%s: value longer than the caller's buffer", type);
    unit_begin(label);
    write_text(src, "k 0123456789\n", 0644);
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL);
    if (t) {
	struct str *small = str_new(5);

	err = NULL;
	unit_assert_inteq(table_lookup(t, "k", small, &err), -1);
	unit_assert(err && strstr(err, "too long") != NULL);
	table_close(&t);
	str_free(&small);
    }
    unit_end();

    str_free(&warn);
    str_free(&built_path);
    str_free(&source_path);
}

/* test_parse_errors - errors with file:line */
static void test_parse_errors(void)
{
    char src[PATH_MAX], name[PATH_MAX], want[PATH_MAX + 100];
    struct str *warn = str_new(STR_MAX_DEFAULT);
    struct str *text = str_new(STR_MAX_DEFAULT);
    const char *err;
    size_t count;

    str_copy_out_or_panic(src, sizeof(src), path_in("errors"));
    fmt_buf_or_panic(name, sizeof(name), "cdb:%s", src);

    unit_begin("missing value is an error with file:line");
    write_text(src, "# c\na b\n\nlonely   \nc d\n", 0644);
    err = NULL;
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), -1);
    fmt_buf_or_panic(want, sizeof(want), "%s:4: missing value for key lonely", src);
    unit_assert(err && strstr(err, want) != NULL);
    unit_end();

    unit_begin("over-long line is an error with file:line");
    str_set_or_panic(text, "a b\nc d\n");
    for (int i = 0; i < TABLE_LINE_MAX + 10; i++)
	str_appendc_or_panic(text, 'x');
    str_appends_or_panic(text, " value\n");
    write_text(src, str_cstr(text), 0644);
    err = NULL;
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), -1);
    fmt_buf_or_panic(want, sizeof(want), "%s:3: line longer than %d bytes", src, TABLE_LINE_MAX);
    unit_assert(err && strstr(err, want) != NULL);
    unit_end();

    unit_begin("a line of exactly the maximum is fine");
    str_reset(text);
    str_appends_or_panic(text, "k ");
    for (int i = 2; i < TABLE_LINE_MAX; i++)
	str_appendc_or_panic(text, 'v');
    str_appends_or_panic(text, "\n");
    write_text(src, str_cstr(text), 0644);
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    unit_assert_inteq(count, 1);
    unit_end();

    unit_begin("continuation without an entry, NUL byte");
    write_text(src, "# first\n  orphan\n", 0644);
    err = NULL;
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), -1);
    fmt_buf_or_panic(want, sizeof(want), "%s:2: continuation line without a preceding entry", src);
    unit_assert(err && strstr(err, want) != NULL);
    {
	int fd = open(src, O_WRONLY | O_TRUNC);

	unit_assert(write(fd, "a b\nc d\0e\n", 10) == 10);
	close(fd);
    }
    err = NULL;
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), -1);
    fmt_buf_or_panic(want, sizeof(want), "%s:2: NUL byte", src);
    unit_assert(err && strstr(err, want) != NULL);
    unit_end();

    unlink(src);
    str_free(&warn);
    str_free(&text);
}

/* test_names - types, defaults, missing files, staleness */
static void test_names(void)
{
    char name[PATH_MAX], want[PATH_MAX + 100], src[PATH_MAX];
    const char *err, *why;
    const char *const *types;
    struct table *t;
    struct timespec times[2];

    str_copy_out_or_panic(src, sizeof(src), path_in("names"));
    unit_begin("unknown type");
    err = NULL;
    unit_assert(table_open("nosuch:/etc/x", NULL, 0, &err) == NULL);
    unit_assert(err && strstr(err, "unknown table type \"nosuch\"") != NULL);
    err = NULL;
    unit_assert_inteq(table_build("nosuch:/etc/x", NULL, 0, &err), -1);
    unit_assert(err && strstr(err, "unknown table type") != NULL);
    err = NULL;
    unit_assert(table_open("/etc/x", "bogus", 0, &err) == NULL);
    unit_assert(err && strstr(err, "unknown table type \"bogus\"") != NULL);
    err = NULL;
    unit_assert(table_open("cdb:", NULL, 0, &err) == NULL);
    unit_assert(err && strstr(err, "empty file name") != NULL);
    unit_end();

    unit_begin("table_types");
    types = table_types();
    unit_assert_streq(types[0], "cdb");
    unit_assert(table_type_supported("cdb"));
    unit_assert(!table_type_supported("nosuch"));
#ifdef HAVE_BDB
    unit_assert_streq(types[1], "hash");
    unit_assert_streq(types[2], "btree");
    unit_assert(types[3] == NULL);
    unit_assert(table_type_supported("hash"));
#else
    unit_assert(types[1] == NULL);
    unit_assert(!table_type_supported("hash"));
#endif
    unit_end();

    unit_begin("missing source, missing built file");
    fmt_buf_or_panic(name, sizeof(name), "cdb:%s", src);
    err = NULL;
    unit_assert_inteq(table_build(name, NULL, 0, &err), -1);
    unit_assert(err && strstr(err, "open source file") != NULL);
    unit_assert(err && strstr(err, "No such file") != NULL);
    err = NULL;
    unit_assert(table_open(name, NULL, 0, &err) == NULL);
    unit_assert(err && strstr(err, "neither the source file") != NULL);
    unit_assert_inteq(table_stale_why(name, NULL, &why), -1);
    write_text(src, "k v\n", 0644);
    err = NULL;
    unit_assert(table_open(name, NULL, 0, &err) == NULL);
    fmt_buf_or_panic(want, sizeof(want), "built file %s.cdb does not exist", src);
    unit_assert(err && strstr(err, want) != NULL);
    unit_end();

    unit_begin("a name without type: uses the default type; stale detection");
    unit_assert_inteq(table_build(src, NULL, 0, &err), 0);	/* default cdb */
    fmt_buf_or_panic(want, sizeof(want), "%s.cdb", src);
    unit_assert(access(want, F_OK) == 0);
    unit_assert_inteq(table_stale_why(src, "cdb", &why), 0);
    unit_assert(why == NULL);
    /* A source edited after the build makes the table stale. */
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec += 10;
    times[1] = times[0];
    unit_assert(utimensat(AT_FDCWD, src, times, 0) == 0);
    unit_assert_inteq(table_stale_why(src, "cdb", &why), 1);
    unit_assert(why && strstr(why, "is older than its source") != NULL);
    unit_assert(table_stale(name, NULL));
    t = table_open(src, "cdb", TABLE_FLAG_WARN_STALE, &err);	/* warns, works */
    unit_assert(t != NULL);
    if (t) {
	unit_assert(lookup_is(t, "k", "v"));
	table_close(&t);
    }
    unlink(want);
    unit_end();

    unit_begin("a file that is not a cdb");
    fmt_buf_or_panic(want, sizeof(want), "%s.cdb", src);
    write_text(want, "short", 0644);
    err = NULL;
    unit_assert(table_open(name, NULL, 0, &err) == NULL);
    unit_assert(err && strstr(err, "not a cdb file") != NULL);
    unlink(want);
    unlink(src);
    unit_end();

#ifdef HAVE_BDB
    unit_begin("hash and btree files are told apart");
    fmt_buf_or_panic(name, sizeof(name), "hash:%s", src);
    write_text(src, "k v\n", 0644);
    unit_assert_inteq(table_build(name, NULL, 0, &err), 0);
    fmt_buf_or_panic(name, sizeof(name), "btree:%s", src);
    err = NULL;
    unit_assert(table_open(name, NULL, 0, &err) == NULL);
    unit_assert(err != NULL);
    fmt_buf_or_panic(want, sizeof(want), "%s.db", src);
    unlink(want);
    unlink(src);
    unit_end();

    unit_begin("DB_CONFIG in the current directory is never read");
    {
	char cwd[PATH_MAX];

	/* A DB_CONFIG that libdb rejects if it ever reads it (checked:
	 * an environment opened with home "." fails on this file). */
	write_text(path_in("DB_CONFIG"), "set_cachesize 0 notanumber 1\nbogus_directive x\n", 0644);
	write_text(src, "k v\n", 0644);
	unit_assert(getcwd(cwd, sizeof(cwd)) != NULL);
	unit_assert(chdir(test_dir) == 0);
	err = NULL;
	unit_assert_inteq(table_build("hash:names", NULL, 0, &err), 0);
	t = table_open("hash:names", NULL, 0, &err);
	unit_assert(t != NULL);
	if (t) {
	    unit_assert(lookup_is(t, "k", "v"));
	    table_close(&t);
	}
	unit_assert_inteq(table_build("btree:names", NULL, 0, &err), 0);
	t = table_open("btree:names", NULL, 0, &err);
	unit_assert(t != NULL);
	table_close(&t);
	unit_assert(chdir(cwd) == 0);
	unlink(path_in("DB_CONFIG"));
	unlink(path_in("names.db"));
	unlink(src);
    }
    unit_end();
#else
    unit_begin("hash: and btree: without Berkeley DB");
    fmt_buf_or_panic(name, sizeof(name), "hash:%s", src);
    err = NULL;
    unit_assert(table_open(name, NULL, 0, &err) == NULL);
    unit_assert_streq(err, "table type hash: not supported: posthorn was built "
		      "without Berkeley DB (BDB=no)");
    err = NULL;
    unit_assert_inteq(table_build("btree:/x", NULL, 0, &err), -1);
    unit_assert_streq(err, "table type btree: not supported: posthorn was built "
		      "without Berkeley DB (BDB=no)");
    err = NULL;
    unit_assert(table_open("/x", "hash", 0, &err) == NULL);
    unit_assert(err && strstr(err, "not supported") != NULL);
    unit_end();
#endif
}

/* test_aliases - aliases(5) syntax: the name ends at the colon */
static void test_aliases(void)
{
    char src[PATH_MAX], name[PATH_MAX];
    struct str *warn = str_new(STR_MAX_DEFAULT);
    struct table *t;
    const char *err = NULL;
    size_t count = 0;

    str_copy_out_or_panic(src, sizeof(src), path_in("aliases"));
    fmt_buf_or_panic(name, sizeof(name), "cdb:%s", src);

    unit_begin("aliases syntax: name: value, continuation, no colon is an error");
    write_text(src, "# aliases\nPostmaster: root\nlist:alice,\n  bob\nspaced  :  x y\n", 0644);
    unit_assert_inteq(build_capture(name, TABLE_FLAG_ALIASES, &count, warn, &err), 0);
    unit_assert_inteq(count, 3);
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL);
    if (t) {
	unit_assert(lookup_is(t, "postmaster", "root"));
	unit_assert(lookup_is(t, "list", "alice, bob"));
	unit_assert(lookup_is(t, "spaced", "x y"));
	unit_assert(lookup_is(t, "postmaster:", NULL));
	table_close(&t);
    }
    write_text(src, "root\nfine: x\n", 0644);
    err = NULL;
    unit_assert_inteq(build_capture(name, TABLE_FLAG_ALIASES, &count, warn, &err), -1);
    unit_assert(err && strstr(err, ":1: missing ':' after alias name") != NULL);
    unit_end();
    str_free(&warn);
}

/* test_changed - table_changed notices a rebuilt or rewritten built file,
 * and only that */
static void test_changed(const char *type)
{
    char name[PATH_MAX], label[100], srcbuf[PATH_MAX], copy[PATH_MAX + 8];
    struct str *warn = str_new(STR_MAX_DEFAULT);
    struct str *built = str_new(PATH_MAX), *source = str_new(PATH_MAX);
    const char *err = NULL;
    char typebuf[16];
    struct table *t, *other;
    size_t count;

    fmt_buf_or_panic(label, sizeof(label), "%s: table_changed after a rebuild", type);
    unit_begin(label);
    fmt_buf_or_panic(srcbuf, sizeof(srcbuf), "%s", path_in("changed"));
    fmt_buf_or_panic(name, sizeof(name), "%s:%s", type, srcbuf);
    write_text(srcbuf, "a 1\n", 0644);
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    unit_assert_inteq(table_paths(name, NULL, typebuf, sizeof(typebuf), source, built, &err), 0);
    unit_assert(table_changed() == NULL);
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL);
    /* A second table that does not change is never named. */
    write_text(path_in("steady"), "x y\n", 0644);
    fmt_buf_or_panic(copy, sizeof(copy), "%s:%s", type, path_in("steady"));
    unit_assert_inteq(build_capture(copy, 0, &count, warn, &err), 0);
    other = table_open(copy, NULL, 0, &err);
    unit_assert(other != NULL);
    unit_assert(table_changed() == NULL);
    unit_assert(table_changed() == NULL);	/* asking does not change it */
    write_text(srcbuf, "a 1\nb 2\n", 0644);
    unit_assert(table_changed() == NULL);	/* the source alone: not yet */
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    unit_assert(table_changed() != NULL && strcmp(table_changed(), table_name(t)) == 0);
    table_close(&t);
    unit_assert(table_changed() == NULL);	/* closed tables are forgotten */
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL && table_changed() == NULL);
    unit_assert(lookup_is(t, "b", "2"));
    unit_end();

    fmt_buf_or_panic(label, sizeof(label), "%s: table_changed after a copy over the file", type);
    unit_begin(label);
    /* cp(1) over the built file writes the same inode: mtime and size. */
    {
	char cmd[3 * PATH_MAX];

	fmt_buf_or_panic(copy, sizeof(copy), "%s.bak", str_cstr(built));
	fmt_buf_or_panic(cmd, sizeof(cmd), "cp '%s' '%s'", str_cstr(built), copy);
	unit_assert(system(cmd) == 0);
	write_text(srcbuf, "a 1\nb 2\nc 3\n", 0644);
	unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
	table_close(&t);
	t = table_open(name, NULL, 0, &err);
	unit_assert(t != NULL && table_changed() == NULL);
	fmt_buf_or_panic(cmd, sizeof(cmd), "cp '%s' '%s'", copy, str_cstr(built));
	unit_assert(system(cmd) == 0);
	unit_assert(table_changed() != NULL);
	unlink(copy);
    }
    table_close(&t);
    unit_end();

    fmt_buf_or_panic(label, sizeof(label), "%s: table_changed when the path is gone", type);
    unit_begin(label);
    /* the path cannot be stat'ed: the open file is asked (unlinked) */
    t = table_open(name, NULL, 0, &err);
    unit_assert(t != NULL && table_changed() == NULL);
    unit_assert(unlink(str_cstr(built)) == 0);
    unit_assert(table_changed() != NULL && strcmp(table_changed(), table_name(t)) == 0);
    table_close(&t);
    unit_assert_inteq(build_capture(name, 0, &count, warn, &err), 0);
    table_close(&other);
    unit_assert(table_changed() == NULL);
    unit_end();
    str_free(&warn);
    str_free(&built);
    str_free(&source);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    if (!fmt_try_buf(test_dir, sizeof(test_dir), "%s/test-table.XXXXXX", tmp && *tmp ? tmp : "/tmp")
	|| mkdtemp(test_dir) == NULL)
	msg_fatal("mkdtemp: %m");

    test_type("cdb");
    test_changed("cdb");
#ifdef HAVE_BDB
    test_type("hash");
    test_type("btree");
    test_changed("hash");
    test_changed("btree");
#endif
    test_parse_errors();
    test_names();
    test_aliases();

    remove_test_dir();
    return unit_done();
}
