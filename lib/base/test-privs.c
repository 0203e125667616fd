/* test-privs.c - unit tests for privs.c. Every privilege change happens
 * in a forked child, so the test process itself never changes. As root
 * the real drop is tested (to user "nobody", with chroot and an extra
 * group, and from a process that inherited supplementary groups
 * including gid 0, checked in /proc/self/status) and the not-root branch is simulated in a child that first
 * becomes nobody; when not run as root only the not-root branch runs
 * (the root cases are reported with unit_skip).
 * Test names say which branch ran. */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privs.h"
#include "str.h"
#include "unit.h"

#define EXTRA_GID	((gid_t) 4242)

static char tmpdir[64];
static uid_t nobody_uid;
static gid_t nobody_gid;

/* rm_entry - nftw callback that removes one entry */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

/*
 * run_child - run fn(arg) in a child with stderr captured into out;
 * returns the exit status (or -1 if the child did not exit normally).
 */
static int run_child(void (*fn)(void *), void *arg, char *out, size_t size)
{
    int pipefd[2], status;
    size_t used = 0;
    ssize_t n;
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    out[0] = 0;
    if (pipe(pipefd) < 0 || (pid = fork()) < 0)
	return -1;
    if (pid == 0) {
	dup2(pipefd[1], STDERR_FILENO);
	close(pipefd[0]);
	close(pipefd[1]);
	fn(arg);
	_exit(0);
    }
    close(pipefd[1]);
    while (used < size - 1 && (n = read(pipefd[0], out + used, size - 1 - used)) > 0)
	used += (size_t) n;
    out[used] = 0;
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
	printf("  child did not exit normally (status 0x%x): %s\n", status, out);
	return -1;
    }
    if (WEXITSTATUS(status) != 0)
	printf("  child exit %d, stderr: %s\n", WEXITSTATUS(status), out);
    return WEXITSTATUS(status);
}

/* count_text - occurrences of needle in hay */
static int count_text(const char *hay, const char *needle)
{
    int n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
	n++;
	hay += strlen(needle);
    }
    return n;
}

/* child_drop_full - as root: drop to nobody with chroot and extra gid */
static void child_drop_full(void *arg)
{
    const char *dir = arg;
    const char *err = NULL;
    gid_t groups[16];
    char cwd[256];

    if (priv_drop("nobody", EXTRA_GID, dir, &err) != 0) {
	fprintf(stderr, "priv_drop: %s\n", err);
	_exit(11);
    }
    if (getuid() != nobody_uid || geteuid() != nobody_uid)
	_exit(12);
    if (getgid() != nobody_gid || getegid() != nobody_gid)
	_exit(13);
    if (getgroups(16, groups) != 1 || groups[0] != EXTRA_GID)
	_exit(14);
    if (setuid(0) == 0 || seteuid(0) == 0)
	_exit(15);
    if (setgid(0) == 0 || setegid(0) == 0)
	_exit(16);
    if (priv_is_root())
	_exit(17);
    if (access("/marker", F_OK) != 0)	/* we are inside the chroot */
	_exit(18);
    if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
	_exit(19);
    _exit(0);
}

/* child_drop_plain - as root: drop to nobody, no chroot, no extra group */
static void child_drop_plain(void *arg)
{
    const char *err = NULL;
    gid_t groups[16];
    char before[256], after[256];

    (void) arg;
    if (getcwd(before, sizeof(before)) == NULL)
	_exit(20);
    if (priv_drop("nobody", (gid_t) -1, NULL, &err) != 0) {
	fprintf(stderr, "priv_drop: %s\n", err);
	_exit(21);
    }
    if (getuid() != nobody_uid || geteuid() != nobody_uid || getgid() != nobody_gid)
	_exit(22);
    if (getgroups(16, groups) != 0)
	_exit(23);
    if (setuid(0) == 0 || setgid(0) == 0)
	_exit(24);
    if (getcwd(after, sizeof(after)) == NULL || strcmp(before, after) != 0)
	_exit(25);
    _exit(0);
}

/* proc_groups - the "Groups:" line of /proc/self/status, trimmed, into
 * buf (what the kernel says, not what getgroups(2) was asked); false if
 * there is none */
static bool proc_groups(char *buf, size_t size)
{
    char line[512];
    bool found = false;
    FILE *fp;

    if ((fp = fopen("/proc/self/status", "r")) == NULL)
	return false;
    while (!found && fgets(line, sizeof(line), fp) != NULL) {
	if (strncmp(line, "Groups:", 7) == 0) {
	    char *cp = line + 7, *end;

	    while (*cp == ' ' || *cp == '\t')
		cp++;
	    end = cp + strlen(cp);
	    while (end > cp && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		*--end = 0;
	    found = str_try_copy_out(buf, size, cp);
	}
    }
    fclose(fp);
    return found;
}

/* child_drop_inherited - as root, starting with supplementary groups
 * (gid 0 among them, as a process started from a root shell or by a
 * service manager may have): the drop must leave only the target's */
static void child_drop_inherited(void *arg)
{
    const gid_t inherited[] = {0, 4243, 27};
    gid_t extra = *(const gid_t *) arg;
    const char *err = NULL;
    char groups[256], want[32];

    if (setgroups(sizeof(inherited) / sizeof(inherited[0]), inherited) < 0)
	_exit(50);
    if (!proc_groups(groups, sizeof(groups)) || strcmp(groups, "0 27 4243") != 0) {
	fprintf(stderr, "before the drop: Groups: %s\n", groups);
	_exit(51);
    }
    if (priv_drop("nobody", extra, NULL, &err) != 0) {
	fprintf(stderr, "priv_drop: %s\n", err);
	_exit(52);
    }
    if (extra == (gid_t) -1)
	want[0] = 0;
    else
	fmt_buf_or_panic(want, sizeof(want), "%ld", (long) extra);
    if (!proc_groups(groups, sizeof(groups)) || strcmp(groups, want) != 0) {
	fprintf(stderr, "after the drop: Groups: \"%s\", want \"%s\"\n", groups, want);
	_exit(53);
    }
    if (getuid() != nobody_uid || getgid() != nobody_gid)
	_exit(54);
    _exit(0);
}

/* child_drop_refused - as root: bad requests fail and change nothing */
static void child_drop_refused(void *arg)
{
    const char *err = NULL;

    (void) arg;
    if (priv_drop("no-such-user-posthorn", (gid_t) -1, NULL, &err) == 0)
	_exit(30);
    if (strstr(err, "unknown user") == NULL || strstr(err, "no-such-user-posthorn") == NULL)
	_exit(31);
    if (priv_drop_ids(0, 0, (gid_t) -1, NULL, &err) == 0 || strstr(err, "refusing") == NULL)
	_exit(32);
    if (priv_drop_ids(nobody_uid, 0, (gid_t) -1, NULL, &err) == 0)
	_exit(33);
    if (priv_drop_ids(nobody_uid, nobody_gid, 0, NULL, &err) == 0)
	_exit(34);
    if (priv_drop("nobody", (gid_t) -1, "/nonexistent-posthorn-chroot", &err) == 0)
	_exit(35);
    if (strstr(err, "chroot") == NULL || strstr(err, strerror(ENOENT)) == NULL)
	_exit(36);
    if (getuid() != 0 || geteuid() != 0)
	_exit(37);
    _exit(0);
}

/*
 * child_not_root - the not-root branch: nothing changes, the chroot is
 * skipped with one warning however often it is asked for. As root the
 * child first becomes nobody by hand.
 */
static void child_not_root(void *arg)
{
    const char *err = NULL;
    char before[256], after[256];
    uid_t uid;
    gid_t gid;

    (void) arg;
    if (geteuid() == 0) {
	if (setgroups(0, NULL) < 0 || setgid(nobody_gid) < 0 || setuid(nobody_uid) < 0)
	    _exit(40);
    }
    uid = getuid();
    gid = getgid();
    if (getcwd(before, sizeof(before)) == NULL)
	_exit(41);
    if (priv_is_root())
	_exit(42);
    if (priv_drop("nobody", EXTRA_GID, "/nonexistent-posthorn-chroot", &err) != 0)
	_exit(43);
    if (priv_drop("no-such-user-posthorn", (gid_t) -1, "/nonexistent-posthorn-chroot", &err) != 0)
	_exit(44);
    if (priv_drop_ids(12345, 12345, (gid_t) -1, "/tmp", &err) != 0)
	_exit(45);
    if (priv_drop("nobody", (gid_t) -1, NULL, &err) != 0)
	_exit(46);
    if (getuid() != uid || geteuid() != uid || getgid() != gid)
	_exit(47);
    if (getcwd(after, sizeof(after)) == NULL || strcmp(before, after) != 0)
	_exit(48);
    _exit(0);
}

static void test_lookup(void)
{
    struct passwd *pw;
    uid_t uid = 7;
    gid_t gid = 7;

    unit_begin("priv_lookup and priv_lookup_group: names and numeric ids");
    unit_assert(priv_lookup("root", &uid, &gid));
    unit_assert_inteq(uid, 0);
    unit_assert_inteq(gid, 0);
    uid = gid = 7;
    unit_assert(priv_lookup("0", &uid, &gid));
    unit_assert_inteq(uid, 0);
    unit_assert_inteq(gid, 0);
    unit_assert(priv_lookup("nobody", &uid, &gid));
    unit_assert_inteq(uid, nobody_uid);
    unit_assert_inteq(gid, nobody_gid);
    if ((pw = getpwuid(3999999)) == NULL) {
	unit_assert(priv_lookup("3999999", &uid, &gid));
	unit_assert_inteq(uid, 3999999);
	unit_assert_inteq(gid, 3999999);
    }
    unit_assert(!priv_lookup("no-such-user-posthorn", &uid, &gid));
    unit_assert(!priv_lookup("", &uid, &gid));
    unit_assert(!priv_lookup(NULL, &uid, &gid));
    unit_assert(!priv_lookup("-1", &uid, &gid));
    unit_assert(!priv_lookup("4294967295", &uid, &gid));
    unit_assert(!priv_lookup("99999999999999999999999", &uid, &gid));
    unit_assert(!priv_lookup("12abc", &uid, &gid));
    unit_assert(!priv_lookup(" 12", &uid, &gid));
    unit_assert(priv_lookup_group("root", &gid));
    unit_assert_inteq(gid, 0);
    unit_assert(priv_lookup_group("4242", &gid));
    unit_assert_inteq(gid, 4242);
    unit_assert(!priv_lookup_group("no-such-group-posthorn", &gid));
    unit_assert(!priv_lookup_group("", &gid));
    unit_assert(!priv_lookup_group("+5", &gid));
    unit_assert(priv_is_root() == (geteuid() == 0));
    unit_end();
}

int main(void)
{
    char out[4096], marker[128];
    struct passwd *pw;
    int fd, ret;

    alarm(60);
    if ((pw = getpwnam("nobody")) == NULL) {
	printf("no user \"nobody\" on this system\n");
	return 1;
    }
    nobody_uid = pw->pw_uid;
    nobody_gid = pw->pw_gid;
    test_lookup();

    if (priv_is_root()) {
	unit_assert(fmt_try_buf(tmpdir, sizeof(tmpdir), "/tmp/ph-privs-XXXXXX"));
	if (mkdtemp(tmpdir) == NULL || chmod(tmpdir, 0755) < 0) {
	    perror(tmpdir);
	    return 1;
	}
	fmt_buf_or_panic(marker, sizeof(marker), "%s/marker", tmpdir);
	fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd >= 0)
	    close(fd);

	unit_begin("priv_drop as root: child becomes nobody in a chroot with one extra group [root branch]");
	unit_assert(run_child(child_drop_full, tmpdir, out, sizeof(out)) == 0);
	unit_end();

	unit_begin("priv_drop as root without chroot or extra group: no supplementary groups [root branch]");
	unit_assert(run_child(child_drop_plain, NULL, out, sizeof(out)) == 0);
	unit_end();

	unit_begin("priv_drop as root clears inherited supplementary groups (0 4243 27) [root branch]");
	{
	    gid_t none = (gid_t) -1, extra = EXTRA_GID;

	    unit_assert(run_child(child_drop_inherited, &none, out, sizeof(out)) == 0);
	    unit_assert(run_child(child_drop_inherited, &extra, out, sizeof(out)) == 0);
	}
	unit_end();

	unit_begin("priv_drop as root refuses unknown users, uid/gid 0 and a bad chroot [root branch]");
	unit_assert(run_child(child_drop_refused, NULL, out, sizeof(out)) == 0);
	unit_end();

	unit_begin("priv_drop when not root is a no-op success, chroot skipped with one warning [not-root branch, simulated as nobody]");
    } else {
	unit_skip("priv_drop as root: chroot, extra group, inherited groups, refusals [root branch]",
		  "needs root");
	unit_begin("priv_drop when not root is a no-op success, chroot skipped with one warning [not-root branch]");
    }
    unit_assert(run_child(child_not_root, NULL, out, sizeof(out)) == 0);
    unit_assert_inteq(count_text(out, "skipping chroot"), 1);
    unit_assert(strstr(out, "/nonexistent-posthorn-chroot") != NULL);
    unit_end();

    ret = unit_done();
    if (tmpdir[0])
	(void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ret;
}
