/* test-safe_file.c - unit tests for safe_file.c: exclusive create,
 * symlink refusal, regular-file and owner checks, atomic replacement,
 * bounded reads, directory fsync and mkdir_p. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "safe_file.h"
#include "str.h"
#include "unit.h"

static char tmpdir[64];

/* rm_entry - nftw callback that removes one entry */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

/* tmp_path - a name inside the test's temporary directory */
static const char *tmp_path(char *buf, size_t size, const char *name)
{
    unit_assert(fmt_try_buf(buf, size, "%s/%s", tmpdir, name));
    return buf;
}

/* put_file - create a file with the given text (test setup) */
static void put_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    unit_assert(fd >= 0);
    unit_assert(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
    close(fd);
}

/* file_text - a file's contents (test check), "" if unreadable */
static const char *file_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = 0;

    buf[0] = 0;
    if (fd >= 0) {
	n = read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
    }
    return buf;
}

/* count_entries - entries in dir (without . and ..); those containing
 * part are counted in *matching */
static int count_entries(const char *dir, const char *part, int *matching)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    *matching = 0;
    if (d == NULL)
	return -1;
    while ((de = readdir(d)) != NULL) {
	if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
	    continue;
	n++;
	if (strstr(de->d_name, part) != NULL)
	    (*matching)++;
    }
    closedir(d);
    return n;
}

static void test_create_and_open(void)
{
    char path[128], link[128], dangling[128], dir[128], fifo[128], buf[64];
    const char *err = NULL;
    struct stat st;
    int fd;

    unit_begin("safe_create_excl creates a new file and fails on an existing name");
    tmp_path(path, sizeof(path), "excl");
    fd = safe_create_excl(path, 0600, &err);
    unit_assert(fd >= 0);
    unit_assert(fstat(fd, &st) == 0 && S_ISREG(st.st_mode));
    unit_assert_inteq(st.st_mode & 07777, 0600);
    unit_assert((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    unit_assert_inteq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
    unit_assert(write(fd, "data", 4) == 4);
    close(fd);
    err = NULL;
    unit_assert(safe_create_excl(path, 0600, &err) < 0);
    unit_assert(err != NULL && strstr(err, path) != NULL);
    unit_assert(err != NULL && strstr(err, strerror(EEXIST)) != NULL);
    unit_assert_streq(file_text(path, buf, sizeof(buf)), "data");	/* not truncated */
    unit_end();

    unit_begin("symlinks are refused, never followed");
    tmp_path(link, sizeof(link), "link");
    unit_assert(symlink(path, link) == 0);
    unit_assert(safe_open_read(link, (uid_t) -1, &err) < 0);
    unit_assert(strstr(err, link) != NULL && strstr(err, "symbolic link") != NULL);
    unit_assert(safe_create_excl(link, 0600, &err) < 0);
    tmp_path(dangling, sizeof(dangling), "dangling");
    unit_assert(symlink("excl-target-new", dangling) == 0);
    unit_assert(safe_create_excl(dangling, 0600, &err) < 0);
    tmp_path(buf, sizeof(buf), "excl-target-new");
    unit_assert(lstat(buf, &st) < 0 && errno == ENOENT);	/* not created */
    unit_assert(fsync_dir(link, &err) < 0);
    unit_end();

    unit_begin("safe_open_read: regular file only, owner checked");
    fd = safe_open_read(path, (uid_t) -1, &err);
    unit_assert(fd >= 0);
    unit_assert((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    unit_assert(read(fd, buf, sizeof(buf)) == 4);	/* O_NONBLOCK left on: no matter */
    close(fd);
    fd = safe_open_read(path, getuid(), &err);
    unit_assert(fd >= 0);
    close(fd);
    unit_assert(safe_open_read(path, getuid() + 1, &err) < 0);
    unit_assert(strstr(err, path) != NULL && strstr(err, "owned by") != NULL);
    tmp_path(dir, sizeof(dir), "adir");
    unit_assert(mkdir(dir, 0700) == 0);
    unit_assert(safe_open_read(dir, (uid_t) -1, &err) < 0);
    unit_assert(strstr(err, "not a regular file") != NULL);
    tmp_path(fifo, sizeof(fifo), "afifo");
    unit_assert(mkfifo(fifo, 0600) == 0);
    unit_assert(safe_open_read(fifo, (uid_t) -1, &err) < 0);	/* no hang */
    unit_assert(strstr(err, "not a regular file") != NULL);
    tmp_path(buf, sizeof(buf), "nonexistent");
    unit_assert(safe_open_read(buf, (uid_t) -1, &err) < 0);
    unit_assert(strstr(err, buf) != NULL && strstr(err, strerror(ENOENT)) != NULL);
    unit_end();
}

static void test_atomic(void)
{
    char dir[128], path[128], buf[256], tmpname[160], victim[128];
    const char *err = NULL;
    struct str *s = str_new(1024);
    struct stat st;
    int n, matching;

    unit_begin("atomic_write_file writes, replaces, sets mode, leaves no temp");
    tmp_path(dir, sizeof(dir), "atomic");
    unit_assert(mkdir(dir, 0700) == 0);
    fmt_buf_or_panic(path, sizeof(path), "%s/config", dir);
    unit_assert(atomic_write_file(path, "one\n", 4, 0640, &err) == 0);
    unit_assert_streq(file_text(path, buf, sizeof(buf)), "one\n");
    unit_assert(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    unit_assert_inteq(st.st_mode & 07777, 0640);
    unit_assert(atomic_write_file(path, "version two\n", 12, 0600, &err) == 0);
    unit_assert_streq(file_text(path, buf, sizeof(buf)), "version two\n");
    unit_assert(lstat(path, &st) == 0);
    unit_assert_inteq(st.st_mode & 07777, 0600);
    n = count_entries(dir, ".tmp.", &matching);
    unit_assert_inteq(n, 1);
    unit_assert_inteq(matching, 0);
    /* Empty content is a valid file. */
    unit_assert(atomic_write_file(path, "", 0, 0600, &err) == 0);
    unit_assert(lstat(path, &st) == 0 && st.st_size == 0);
    unit_end();

    unit_begin("atomic_write_file failure removes the temp file");
    /* rename(file, directory) fails: the target is a directory. */
    fmt_buf_or_panic(buf, sizeof(buf), "%s/isdir", dir);
    unit_assert(mkdir(buf, 0700) == 0);
    err = NULL;
    unit_assert(atomic_write_file(buf, "x", 1, 0600, &err) < 0);
    unit_assert(err != NULL && strstr(err, "rename") != NULL && strstr(err, buf) != NULL);
    n = count_entries(dir, ".tmp.", &matching);
    unit_assert_inteq(n, 2);
    unit_assert_inteq(matching, 0);
    /* A missing directory: nothing can be created. */
    fmt_buf_or_panic(buf, sizeof(buf), "%s/nodir/file", dir);
    unit_assert(atomic_write_file(buf, "x", 1, 0600, &err) < 0);
    unit_assert(strstr(err, buf) != NULL);
    unit_end();

    unit_begin("atomic_write_file does not write through a planted temp symlink");
    tmp_path(victim, sizeof(victim), "victim");
    put_file(victim, "victim");
    fmt_buf_or_panic(tmpname, sizeof(tmpname), "%s.tmp.%ld", path, (long) getpid());
    unit_assert(symlink(victim, tmpname) == 0);
    unit_assert(atomic_write_file(path, "new", 3, 0600, &err) == 0);
    unit_assert_streq(file_text(victim, buf, sizeof(buf)), "victim");
    unit_assert_streq(file_text(path, buf, sizeof(buf)), "new");
    unit_assert(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    unit_assert(lstat(tmpname, &st) < 0 && errno == ENOENT);
    unit_end();

    unit_begin("read_file: whole file up to max, binary safe, fails past max");
    fmt_buf_or_panic(path, sizeof(path), "%s/hundred", dir);
    {
	char data[100];
	int i;

	for (i = 0; i < 100; i++)
	    data[i] = (char) (i % 7 == 0 ? 0 : 'a' + i % 26);
	unit_assert(atomic_write_file(path, data, sizeof(data), 0600, &err) == 0);
	unit_assert(read_file(path, s, 100, &err) == 0);
	unit_assert_inteq(str_len(s), 100);
	unit_assert(memcmp(str_cstr(s), data, 100) == 0);
	unit_assert(str_has_nul(s));
	/* Read again into the same string: replaced, not appended. */
	unit_assert(read_file(path, s, 1000, &err) == 0);
	unit_assert_inteq(str_len(s), 100);
	unit_assert(read_file(path, s, 99, &err) < 0);
	unit_assert(strstr(err, path) != NULL && strstr(err, "larger than 99") != NULL);
	unit_assert_inteq(str_len(s), 0);
    }
    /* The string's own maximum is also respected. */
    {
	struct str *small = str_new(10);

	unit_assert(read_file(path, small, 1000, &err) < 0);
	str_free(&small);
    }
    fmt_buf_or_panic(path, sizeof(path), "%s/empty", dir);
    put_file(path, "");
    unit_assert(read_file(path, s, 10, &err) == 0);
    unit_assert_inteq(str_len(s), 0);
    fmt_buf_or_panic(path, sizeof(path), "%s/missing", dir);
    unit_assert(read_file(path, s, 10, &err) < 0);
    unit_assert(strstr(err, path) != NULL);
    unit_end();

    unit_begin("write_all_fd writes large buffers whole");
    {
	size_t big = 300000;
	char *data = mem_alloc(big);
	int fd;

	memset(data, 'z', big);
	fmt_buf_or_panic(path, sizeof(path), "%s/big", dir);
	fd = safe_create_excl(path, 0600, &err);
	unit_assert(fd >= 0);
	unit_assert(write_all_fd(fd, data, big) == 0);
	close(fd);
	unit_assert(lstat(path, &st) == 0 && (size_t) st.st_size == big);
	unit_assert(write_all_fd(-1, data, 1) < 0 && errno == EBADF);
	mem_free(&data);
    }
    unit_end();
    str_free(&s);
}

static void test_dirs(void)
{
    char dir[128], path[128], to[128], cwd[4096];
    const char *err = NULL;
    struct stat st;

    unit_begin("fsync_dir and fsync_parent_dir on real directories");
    unit_assert(fsync_dir(tmpdir, &err) == 0);
    tmp_path(path, sizeof(path), "plainfile");
    put_file(path, "x");
    unit_assert(fsync_dir(path, &err) < 0);
    unit_assert(strstr(err, path) != NULL);
    tmp_path(dir, sizeof(dir), "nosuchdir");
    unit_assert(fsync_dir(dir, &err) < 0);
    unit_assert(strstr(err, strerror(ENOENT)) != NULL);
    unit_assert(fsync_parent_dir(path, &err) == 0);
    unit_assert(fsync_parent_dir("/", &err) == 0);
    unit_assert(fsync_parent_dir("/etc", &err) == 0);
    unit_assert(getcwd(cwd, sizeof(cwd)) != NULL);
    unit_assert(chdir(tmpdir) == 0);
    unit_assert(fsync_parent_dir("plainfile", &err) == 0);	/* "." */
    unit_assert(chdir(cwd) == 0);
    /* The parent of "nosuchdir/x" does not exist. */
    fmt_buf_or_panic(path, sizeof(path), "%s/nosuchdir/x", tmpdir);
    unit_assert(fsync_parent_dir(path, &err) < 0);
    unit_end();

    unit_begin("durable_rename moves a file across directories");
    tmp_path(dir, sizeof(dir), "dest");
    unit_assert(mkdir(dir, 0700) == 0);
    tmp_path(path, sizeof(path), "plainfile");
    fmt_buf_or_panic(to, sizeof(to), "%s/moved", dir);
    unit_assert(durable_rename(path, to, &err) == 0);
    unit_assert(lstat(path, &st) < 0 && errno == ENOENT);
    unit_assert(lstat(to, &st) == 0 && S_ISREG(st.st_mode));
    unit_assert(durable_rename(path, to, &err) < 0);
    unit_assert(strstr(err, path) != NULL && strstr(err, strerror(ENOENT)) != NULL);
    unit_end();

    unit_begin("mkdir_p makes parents, is idempotent, stops at a non-directory");
    fmt_buf_or_panic(dir, sizeof(dir), "%s/a/b//c/", tmpdir);
    unit_assert(mkdir_p(dir, 0750, &err) == 0);
    fmt_buf_or_panic(path, sizeof(path), "%s/a/b/c", tmpdir);
    unit_assert(lstat(path, &st) == 0 && S_ISDIR(st.st_mode));
    unit_assert(mkdir_p(path, 0750, &err) == 0);
    unit_assert(mkdir_p(tmpdir, 0700, &err) == 0);
    unit_assert(mkdir_p("/", 0700, &err) == 0);
    fmt_buf_or_panic(path, sizeof(path), "%s/a/file", tmpdir);
    put_file(path, "x");
    fmt_buf_or_panic(dir, sizeof(dir), "%s/a/file/sub", tmpdir);
    unit_assert(mkdir_p(dir, 0750, &err) < 0);
    unit_assert(strstr(err, path) != NULL && strstr(err, "not a directory") != NULL);
    unit_assert(mkdir_p("", 0750, &err) < 0);
    /* Relative paths work from the current directory. */
    unit_assert(chdir(tmpdir) == 0);
    unit_assert(mkdir_p("rel/x", 0700, &err) == 0);
    unit_assert(lstat("rel/x", &st) == 0 && S_ISDIR(st.st_mode));
    unit_assert(chdir(cwd) == 0);
    unit_end();

    unit_begin("safe_open_dir: walks every component, makes missing ones");
    {
	char target[256], link[256];
	int fd;

	fmt_buf_or_panic(dir, sizeof(dir), "%s/od/x//y/", tmpdir);
	unit_assert(safe_open_dir(dir, false, 0700, &err) < 0 && errno == ENOENT);
	unit_assert(strstr(err, "/od: cannot open directory") != NULL);
	fd = safe_open_dir(dir, true, 0750, &err);
	unit_assert(fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)
		    && (st.st_mode & 07777) == 0750);
	unit_assert(fsync(fd) == 0);
	(void) close(fd);
	fd = safe_open_dir(dir, false, 0700, &err);
	unit_assert(fd >= 0);
	(void) close(fd);
	fmt_buf_or_panic(path, sizeof(path), "%s/od/x/file", tmpdir);
	put_file(path, "x");
	fmt_buf_or_panic(dir, sizeof(dir), "%s/od/x/file/sub", tmpdir);
	unit_assert(safe_open_dir(dir, true, 0700, &err) < 0 && errno == ENOTDIR);

	/* a symlink on the way that a user owns is refused, with or
	 * without create, and nothing is made behind it */
	fmt_buf_or_panic(target, sizeof(target), "%s/elsewhere", tmpdir);
	unit_assert(mkdir(target, 0700) == 0);
	fmt_buf_or_panic(link, sizeof(link), "%s/od/x/lnk", tmpdir);
	unit_assert(symlink(target, link) == 0);
	if (geteuid() == 0)
	    unit_assert(lchown(link, 65534, 65534) == 0);
	fmt_buf_or_panic(dir, sizeof(dir), "%s/od/x/lnk/new", tmpdir);
	unit_assert(safe_open_dir(dir, true, 0700, &err) < 0 && errno == ELOOP);
	unit_assert(strstr(err, "/od/x/lnk: is a symbolic link owned by uid") != NULL);
	fmt_buf_or_panic(path, sizeof(path), "%s/new", target);
	unit_assert(lstat(path, &st) < 0 && errno == ENOENT);
	unit_assert(safe_open_dir(link, false, 0700, &err) < 0 && errno == ELOOP);
	fmt_buf_or_panic(dir, sizeof(dir), "%s/od/x", tmpdir);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	unit_assert(safe_openat_dir(fd, "lnk", false, 0700, &err) < 0 && errno == ELOOP);
	unit_assert(strncmp(err, "lnk: is a symbolic link", 23) == 0);
	fmt_buf_or_panic(dir, sizeof(dir), "%s/od/x/lnk/new", tmpdir);
	(void) close(fd);

	/* one root owns is the administrator's and is followed */
	if (geteuid() == 0) {
	    unit_assert(lchown(link, 0, 0) == 0);
	    fd = safe_open_dir(dir, true, 0700, &err);
	    unit_assert(fd >= 0);
	    (void) close(fd);
	    unit_assert(lstat(path, &st) == 0 && S_ISDIR(st.st_mode));
	}
    }
    unit_end();
}

int main(void)
{
    int ret;

    alarm(60);
    umask(022);
    unit_assert(fmt_try_buf(tmpdir, sizeof(tmpdir), "/tmp/ph-safe-XXXXXX"));
    if (mkdtemp(tmpdir) == NULL) {
	perror("mkdtemp");
	return 1;
    }
    test_create_and_open();
    test_atomic();
    test_dirs();
    ret = unit_done();
    (void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ret;
}
