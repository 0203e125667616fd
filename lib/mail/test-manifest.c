/* test-manifest.c - unit tests for manifest.c (queue layout check/repair). */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

#include "manifest.h"

struct findings {
    int errors;
    int fixed;
    struct str *text;		/* all lines, "E: ..." / "F: ..." */
};

/* collect - report function that remembers every line */
static void collect(enum manifest_level level, const char *text, void *ctx)
{
    struct findings *f = ctx;

    if (level == MANIFEST_ERROR)
	f->errors++;
    else
	f->fixed++;
    str_appendf_or_panic(f->text, "%s: %s\n", level == MANIFEST_ERROR ? "E" : "F", text);
}

/* reset - forget earlier findings */
static void reset(struct findings *f)
{
    f->errors = f->fixed = 0;
    str_reset(f->text);
}

/* has - true if some finding contains text */
static bool has(const struct findings *f, const char *text)
{
    return strstr(str_cstr(f->text), text) != NULL;
}

/* mode_of - permission bits of path, or -1 */
static long mode_of(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 ? (long) (st.st_mode & 07777) : -1;
}

/* rm_rf - remove the test tree (test code only) */
static void rm_rf(const char *dir)
{
    char cmd[4200];

    if (fmt_try_buf(cmd, sizeof(cmd), "rm -rf '%s'", dir))
	(void) system(cmd);
}

int main(void)
{
    char tmpl[] = "/tmp/test-manifest.XXXXXX";
    char queue[256], data[256], path[512], want[600];
    struct manifest_ids ids;
    struct findings f = {0, 0, NULL};
    const char *error;
    int n;

    if (mkdtemp(tmpl) == NULL)
	msg_fatal("mkdtemp: %m");
    fmt_buf_or_panic(queue, sizeof(queue), "%s/spool/queue", tmpl);
    fmt_buf_or_panic(data, sizeof(data), "%s/lib/data", tmpl);
    f.text = str_new(STR_MAX_DEFAULT);
    manifest_ids_self(&ids, geteuid(), getegid());
    umask(022);

    unit_begin("manifest table: the modes Postfix operators expect");
    {
	static const struct {
	    const char *name;
	    long mode;
	    enum manifest_user owner;
	    enum manifest_group group;
	} want_rows[] = {
	    {"maildrop", 01730, MANIFEST_MAIL_OWNER, MANIFEST_SETGID_GROUP},
	    {"public", 0710, MANIFEST_MAIL_OWNER, MANIFEST_SETGID_GROUP},
	    {"submit", 0711, MANIFEST_MAIL_OWNER, MANIFEST_ANY_GROUP},
	    {"private", 0700, MANIFEST_MAIL_OWNER, MANIFEST_ANY_GROUP},
	    {"incoming", 0700, MANIFEST_MAIL_OWNER, MANIFEST_ANY_GROUP},
	    {"corrupt", 0700, MANIFEST_MAIL_OWNER, MANIFEST_ANY_GROUP},
	    {"pid", 0755, MANIFEST_ROOT, MANIFEST_ANY_GROUP},
	};
	for (size_t i = 0; i < sizeof(want_rows) / sizeof(want_rows[0]); i++) {
	    const struct manifest_entry *e = NULL;

	    for (size_t j = 0; j < manifest_count; j++)
		if (manifest_table[j].base == MANIFEST_QUEUE
		    && strcmp(manifest_table[j].name, want_rows[i].name) == 0)
		    e = &manifest_table[j];
	    unit_assert_idx(e != NULL, i);
	    if (e) {
		unit_assert_idx((long) e->mode == want_rows[i].mode, i);
		unit_assert_idx(e->owner == want_rows[i].owner, i);
		unit_assert_idx(e->group == want_rows[i].group, i);
	    }
	}
	/* Every queue subdirectory of the brief is in the table. */
	unit_assert_inteq(manifest_count, 14);
    }
    unit_end();

    unit_begin("missing directories are reported, not created, without repair");
    reset(&f);
    n = manifest_check(queue, data, &ids, 0, collect, &f);
    unit_assert_inteq(n, 2);
    unit_assert_inteq(f.errors, 2);
    fmt_buf_or_panic(want, sizeof(want), "%s: does not exist (directory, mode 0755)", queue);
    unit_assert(has(&f, want));
    unit_assert(mode_of(queue) == -1);
    unit_end();

    unit_begin("repair creates everything with exact modes");
    reset(&f);
    n = manifest_check(queue, data, &ids, MANIFEST_REPAIR, collect, &f);
    unit_assert_inteq(n, 0);
    unit_assert_inteq(f.errors, 0);
    unit_assert_inteq(f.fixed, 14);
    for (size_t i = 0; i < manifest_count; i++) {
	unit_assert_idx(manifest_entry_path(&manifest_table[i], queue, data, path, sizeof(path)), i);
	unit_assert_idx(mode_of(path) == (long) manifest_table[i].mode, i);
    }
    fmt_buf_or_panic(want, sizeof(want), "%s/maildrop: created (mode 1730)", queue);
    unit_assert(has(&f, want));
    unit_end();

    unit_begin("a correct tree gives no findings (idempotent)");
    reset(&f);
    unit_assert_inteq(manifest_check(queue, data, &ids, 0, collect, &f), 0);
    unit_assert_inteq(manifest_check(queue, data, &ids, MANIFEST_REPAIR, collect, &f), 0);
    unit_assert_inteq(f.errors + f.fixed, 0);
    unit_end();

    unit_begin("a wrong mode is reported, then repaired");
    fmt_buf_or_panic(path, sizeof(path), "%s/maildrop", queue);
    unit_assert(chmod(path, 0755) == 0);
    reset(&f);
    unit_assert_inteq(manifest_check(queue, data, &ids, 0, collect, &f), 1);
    fmt_buf_or_panic(want, sizeof(want), "E: %s: mode is 0755, should be 1730", path);
    unit_assert(has(&f, want));
    reset(&f);
    unit_assert_inteq(manifest_check(queue, data, &ids, MANIFEST_REPAIR, collect, &f), 0);
    fmt_buf_or_panic(want, sizeof(want), "F: %s: mode was 0755, now 1730", path);
    unit_assert(has(&f, want));
    unit_assert(mode_of(path) == 01730);
    unit_end();

    unit_begin("a file or symlink in place of a directory is never removed");
    fmt_buf_or_panic(path, sizeof(path), "%s/hold", queue);
    unit_assert(rmdir(path) == 0);
    {
	int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, 0600);

	unit_assert(fd >= 0);
	if (fd >= 0)
	    close(fd);
    }
    fmt_buf_or_panic(want, sizeof(want), "%s/active", queue);
    unit_assert(rmdir(want) == 0);
    unit_assert(symlink("/tmp", want) == 0);
    reset(&f);
    unit_assert_inteq(manifest_check(queue, data, &ids, MANIFEST_REPAIR, collect, &f), 2);
    unit_assert(has(&f, "/hold: is not a directory (not changed)"));
    unit_assert(has(&f, "/active: is a symbolic link, should be a directory (not changed)"));
    {
	struct stat st;

	unit_assert(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	unit_assert(lstat(want, &st) == 0 && S_ISLNK(st.st_mode));
    }
    unit_assert(unlink(path) == 0 && unlink(want) == 0);
    reset(&f);
    unit_assert_inteq(manifest_check(queue, data, &ids, MANIFEST_REPAIR, collect, &f), 0);
    unit_assert_inteq(f.fixed, 2);
    unit_end();

    unit_begin("a wrong owner or group: repaired as root, reported otherwise");
    fmt_buf_or_panic(path, sizeof(path), "%s/public", queue);
    if (geteuid() == 0) {
	struct manifest_ids other = ids;
	struct stat st;

	unit_assert(chown(path, 4242, 4343) == 0);
	reset(&f);
	unit_assert_inteq(manifest_check(queue, data, &ids, 0, collect, &f), 2);
	unit_assert(has(&f, "/public: owner is uid 4242, should be "));
	unit_assert(has(&f, "/public: group is gid 4343, should be "));
	reset(&f);
	unit_assert_inteq(manifest_check(queue, data, &ids, MANIFEST_REPAIR, collect, &f), 0);
	unit_assert(has(&f, "/public: owner was uid 4242, now "));
	unit_assert(lstat(path, &st) == 0 && st.st_uid == ids.owner_uid
		    && st.st_gid == ids.setgid_gid && (st.st_mode & 07777) == 0710);
	/* A different setgid group moves maildrop and public, nothing else. */
	other.setgid_gid = 4545;
	reset(&f);
	unit_assert_inteq(manifest_check(queue, data, &other, MANIFEST_REPAIR, collect, &f), 0);
	unit_assert_inteq(f.fixed, 2);
	unit_assert(lstat(path, &st) == 0 && st.st_gid == 4545);
	/* An unprivileged view of the same tree cannot chown. */
	other.can_chown = false;
	other.owner_uid = 4646;
	reset(&f);
	unit_assert(manifest_check(queue, data, &other, MANIFEST_REPAIR, collect, &f) > 0);
	unit_assert(has(&f, "should be uid 4646 (only root can change it)"));
    } else {
	struct manifest_ids other = ids;

	other.owner_uid = ids.owner_uid + 1;
	reset(&f);
	unit_assert(manifest_check(queue, data, &other, MANIFEST_REPAIR, collect, &f) > 0);
	unit_assert(has(&f, "(only root can change it)"));
    }
    unit_end();

    unit_begin("identity lookup");
    if (geteuid() == 0) {
	unit_assert(manifest_ids_resolve("no-such-user-xyz", "root", &ids, &error) < 0);
	unit_assert_streq(error, "mail_owner: unknown user: no-such-user-xyz");
	unit_assert(manifest_ids_resolve("root", "root", &ids, &error) < 0);
	unit_assert(strstr(error, "has uid 0") != NULL);
    } else {
	unit_assert(manifest_ids_resolve("no-such-user-xyz", "nogroup", &ids, &error) == 0);
	unit_assert(ids.owner_uid == geteuid() && ids.root_uid == geteuid());
	unit_assert(ids.setgid_gid == getegid() && !ids.can_chown);
	/* A real installation seen by a normal user: root stays root. */
	unit_assert(manifest_ids_resolve("root", "root", &ids, &error) < 0);
	unit_assert(strstr(error, "has uid 0") != NULL);
    }
    unit_end();

    str_free(&f.text);
    rm_rf(tmpl);
    return unit_done();
}
