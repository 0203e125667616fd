/* shim_maildir.c - an LD_PRELOAD shim that tests/test_local_delivery.py
 * compiles and loads into local-delivery to watch and break Maildir
 * deliveries (real fault injection, no change to the program):
 *
 *   SHIM_FAIL_NEW_FSYNC=N  every fsync(2) of a directory named ".../new"
 *                          whose running count (per process) is 1 mod N
 *                          fails with EIO, after doing nothing
 *   SHIM_LOG=DIR           events go to DIR/events, one line each:
 *                          "fsync_file INODE", "fsync_new OK|EIO", and at
 *                          every move into a directory (renameat2 of a
 *                          tmp/ name, or linkat of an unnamed O_TMPFILE
 *                          file through /proc/self/fd/N) "move NEWNAME
 *                          how=rename|link new_entries=N target_exists=0|1
 *                          synced=0|1 size=N"; a copy of the file as it
 *                          is at that moment goes to DIR/NEWNAME
 *
 *   SHIM_NO_TMPFILE=1      openat(2) with O_TMPFILE fails with EOPNOTSUPP,
 *                          as on a file system without unnamed files
 *
 * Not part of posthorn; only the tests build it. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNCED_MAX 256

static int (*real_fsync)(int);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned int);
static int (*real_linkat)(int, const char *, int, const char *, int);
static int (*real_openat)(int, const char *, int, ...);
static unsigned long new_fsyncs;
static ino_t synced[SYNCED_MAX];
static size_t synced_n;

static void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void shim_log(const char *fmt, ...)
{
    const char *dir = getenv("SHIM_LOG");
    char path[4096], line[1024];
    va_list ap;
    int fd, n;

    if (dir == NULL)
	return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t) n >= sizeof(line))
	return;
    (void) snprintf(path, sizeof(path), "%s/events", dir);
    if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666)) >= 0) {
	(void) write(fd, line, (size_t) n);
	(void) close(fd);
    }
}

/* is_new_dir - fd is a directory whose path ends in "/new" */
static int is_new_dir(int fd)
{
    char link[64], target[4096];
    struct stat st;
    ssize_t n;

    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))
	return 0;
    (void) snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 4)
	return 0;
    target[n] = 0;
    return strcmp(target + n - 4, "/new") == 0;
}

int fsync(int fd)
{
    const char *every = getenv("SHIM_FAIL_NEW_FSYNC");
    struct stat st;
    long n;

    if (real_fsync == NULL)
	real_fsync = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
    if (is_new_dir(fd)) {
	new_fsyncs++;
	n = every ? atol(every) : 0;
	if (n > 0 && new_fsyncs % (unsigned long) n == 1 % (unsigned long) n) {
	    shim_log("fsync_new EIO\n");
	    errno = EIO;
	    return -1;
	}
	shim_log("fsync_new OK\n");
    } else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
	if (synced_n < SYNCED_MAX)
	    synced[synced_n++] = st.st_ino;
	shim_log("fsync_file %lu\n", (unsigned long) st.st_ino);
    }
    return real_fsync(fd);
}

/* log_move - the "move" event: the file (opened through olddirfd and
 * oldpath) as it is just before it gets newpath in newdirfd */
static void log_move(const char *how, int olddirfd, const char *oldpath, int newdirfd,
		     const char *newpath)
{
    const char *dir = getenv("SHIM_LOG");
    const char *slash = strrchr(newpath, '/');
    const char *base = slash ? slash + 1 : newpath;
    char buf[65536], path[4096];
    struct dirent *de;
    struct stat st;
    long entries = 0;
    int fd, out, dfd, is_synced = 0, exists;
    size_t i;
    ssize_t n;
    DIR *d;

    if (dir == NULL)
	return;
    memset(&st, 0, sizeof(st));
    /* the directory the name goes into: newdirfd, or newpath's own */
    (void) snprintf(path, sizeof(path), "%.*s", slash ? (int) (slash - newpath) : 1,
		    slash ? newpath : ".");
    if ((dfd = openat(newdirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0
	&& (d = fdopendir(dfd)) != NULL) {
	while ((de = readdir(d)) != NULL)
	    if (de->d_name[0] != '.')
		entries++;
	(void) closedir(d);
    }
    exists = faccessat(newdirfd, newpath, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
    if ((fd = openat(olddirfd, oldpath, O_RDONLY | O_CLOEXEC)) >= 0) {
	if (fstat(fd, &st) == 0)
	    for (i = 0; i < synced_n; i++)
		if (synced[i] == st.st_ino)
		    is_synced = 1;
	(void) snprintf(path, sizeof(path), "%s/%s", dir, base);
	if ((out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) >= 0) {
	    while ((n = read(fd, buf, sizeof(buf))) > 0)
		(void) write(out, buf, (size_t) n);
	    (void) close(out);
	}
	shim_log("move %s how=%s new_entries=%ld target_exists=%d synced=%d size=%lld\n",
		 base, how, entries, exists, is_synced, (long long) st.st_size);
	(void) close(fd);
    }
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
	      unsigned int flags)
{
    if (real_renameat2 == NULL)
	real_renameat2 = (int (*)(int, const char *, int, const char *, unsigned int))
	    dlsym(RTLD_NEXT, "renameat2");
    log_move("rename", olddirfd, oldpath, newdirfd, newpath);
    return real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
    if (real_linkat == NULL)
	real_linkat = (int (*)(int, const char *, int, const char *, int))
	    dlsym(RTLD_NEXT, "linkat");
    /* only the unnamed file's link (a fallback link of a tmp/ name
     * follows a rename that failed, and was logged there) */
    if (strncmp(oldpath, "/proc/self/fd/", 14) == 0)
	log_move("link", olddirfd, oldpath, newdirfd, newpath);
    return real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    va_list ap;

    if (real_openat == NULL)
	real_openat = (int (*)(int, const char *, int, ...)) dlsym(RTLD_NEXT, "openat");
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
	va_start(ap, flags);
	mode = (mode_t) va_arg(ap, int);
	va_end(ap);
    }
    if ((flags & O_TMPFILE) == O_TMPFILE && getenv("SHIM_NO_TMPFILE") != NULL) {
	errno = EOPNOTSUPP;
	return -1;
    }
    return real_openat(dirfd, path, flags, mode);
}
