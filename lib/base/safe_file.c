/* safe_file.c - opening, writing and renaming files safely and durably
 * (see safe_file.h).
 *
 * Every open uses O_NOFOLLOW and O_CLOEXEC: a symlink planted in the last
 * component is refused, never followed. safe_open_dir() goes further for
 * paths a user may control: no component may be a symlink unless root
 * owns it. Readers check after open (fstat
 * on the descriptor, not the name) that they got a regular file. Writers
 * that replace a file go through a temporary name in the same directory,
 * fsync it, rename it and fsync the directory. Error texts name the path
 * and the system error and live in one static buffer, valid until the
 * next call into this module. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

/* Base library. */
#include "errtext.h"
#include "file_read.h"
#include "mem.h"
#include "safe_file.h"
#include "str.h"

static struct errtext safe_error;	/* the text behind error_r */

/* safe_strerror - strerror, with a clearer text for a refused symlink */
static const char *safe_strerror(int err)
{
    if (err == ELOOP)
	return "is a symbolic link (refusing to follow it)";
    return strerror(err);
}

/* safe_create_excl - create a new file, failing if the name exists */
int safe_create_excl(const char *path, mode_t mode, const char **error_r)
{
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
	return errtext_fail(&safe_error, error_r, "create %s: %s", path, safe_strerror(errno));
    return fd;
}

/* safe_open_read - open an existing regular file for reading */
int safe_open_read(const char *path, uid_t owner, const char **error_r)
{
    struct stat st;
    int fd;

    /* O_NONBLOCK so that a FIFO in the file's place cannot hang us. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
	return errtext_fail(&safe_error, error_r, "open %s: %s", path, safe_strerror(errno));
    if (fstat(fd, &st) < 0) {
	errtext_fail(&safe_error, error_r, "fstat %s: %s", path, strerror(errno));
	goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
	errtext_fail(&safe_error, error_r, "open %s: not a regular file", path);
	goto fail;
    }
    if (owner != (uid_t) -1 && st.st_uid != owner) {
	errtext_fail(&safe_error, error_r, "open %s: owned by uid %lu, not uid %lu", path,
		   (unsigned long) st.st_uid, (unsigned long) owner);
	goto fail;
    }
    /* O_NONBLOCK stays: on a regular file Linux ignores it (reads block
     * as usual), and clearing it cost two system calls per file */
    return fd;

fail:
    (void) close(fd);
    return -1;
}

/* sf_open_dir_at - openat a directory: O_DIRECTORY, and O_NOFOLLOW
 * unless follow */
static int sf_open_dir_at(int dfd, const char *name, bool follow)
{
    int fd;

    do {
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY
		    | (follow ? 0 : O_NOFOLLOW));
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/*
 * safe_openat_dir - one directory component without following a symlink
 * that anyone but root owns. A symlink can only be made by someone who
 * may write the directory that holds it and belongs to its maker, so a
 * root-owned one (/home -> /srv/home) is the administrator's, while one
 * in a user's tree may point wherever that user likes.
 */
int safe_openat_dir(int dfd, const char *name, bool create, mode_t mode, const char **error_r)
{
    struct stat st;
    int fd, err;

    fd = sf_open_dir_at(dfd, name, false);
    if (fd < 0 && errno == ENOENT && create) {
	if (mkdirat(dfd, name, mode) < 0 && errno != EEXIST) {
	    err = errno;
	    errtext_fail(&safe_error, error_r, "%s: cannot create directory: %s", name, strerror(err));
	    errno = err;
	    return -1;
	}
	fd = sf_open_dir_at(dfd, name, false);
    }
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
	err = errno;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
	    if (st.st_uid != 0) {
		errtext_fail(&safe_error, error_r, "%s: is a symbolic link owned by uid %lu (refusing to "
			   "follow it)", name, (unsigned long) st.st_uid);
		errno = ELOOP;
		return -1;
	    }
	    fd = sf_open_dir_at(dfd, name, true);
	} else {
	    errno = err;
	}
    }
    if (fd < 0) {
	err = errno;
	errtext_fail(&safe_error, error_r, "%s: cannot open directory: %s", name, strerror(err));
	errno = err;
    }
    return fd;
}

/* sf_open_dir_no_symlinks - the whole path in one openat2(2) that
 * refuses every symlink on the way; -1 (ENOSYS on old kernels) when
 * that cannot be done, whatever the reason */
static int sf_open_dir_no_symlinks(const char *path)
{
#ifdef SYS_openat2
    struct open_how how;

    memset(&how, 0, sizeof(how));
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return (int) syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
#else
    (void) path;
    errno = ENOSYS;
    return -1;
#endif
}

/*
 * safe_open_dir - every component through safe_openat_dir(). The usual
 * case, a path without any symlink, costs one openat2(2); anything else
 * (a symlink root owns, a missing directory to make, an error to name,
 * an old kernel) takes the walk, one openat per component.
 */
int safe_open_dir(const char *path, bool create, mode_t mode, const char **error_r)
{
    struct str *comp;
    const char *cp = path, *start, *end, *err = "";
    int dfd, fd, e;

    if ((fd = sf_open_dir_no_symlinks(path)) >= 0)
	return fd;
    comp = str_new(STR_MAX_DEFAULT);
    dfd = sf_open_dir_at(AT_FDCWD, *path == '/' ? "/" : ".", true);
    while (dfd >= 0 && *cp) {
	while (*cp == '/')
	    cp++;
	if (*cp == 0)
	    break;
	end = strchr(cp, '/');
	if (end == NULL)
	    end = cp + strlen(cp);
	start = cp;
	if (!str_try_setn(comp, cp, (size_t) (end - cp))) {
	    (void) close(dfd);
	    str_free(&comp);
	    errno = ENAMETOOLONG;
	    return errtext_fail(&safe_error, error_r, "open directory %s: %s", path, strerror(errno));
	}
	cp = end;
	if (strcmp(str_cstr(comp), ".") == 0)
	    continue;
	fd = safe_openat_dir(dfd, str_cstr(comp), create, mode, &err);
	e = errno;
	(void) close(dfd);
	if (fd < 0) {
	    /* the component's own text (errtext formats through a
	     * temporary), with the path up to it in front */
	    errtext_fail(&safe_error, error_r, "%.*s%s", (int) (start - path), path, err);
	    str_free(&comp);
	    errno = e;
	    return -1;
	}
	dfd = fd;
    }
    str_free(&comp);
    if (dfd < 0)
	return errtext_fail(&safe_error, error_r, "open directory %s: %s", path, strerror(errno));
    return dfd;
}

/* fsync_dir - open a directory and fsync it */
int fsync_dir(const char *dir, const char **error_r)
{
    int fd;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
	return errtext_fail(&safe_error, error_r, "open directory %s: %s", dir, safe_strerror(errno));
    if (fsync(fd) < 0) {
	errtext_fail(&safe_error, error_r, "fsync directory %s: %s", dir, strerror(errno));
	(void) close(fd);
	return -1;
    }
    (void) close(fd);
    return 0;
}

/* safe_parent_dir - the directory part of path, into a new string */
static char *safe_parent_dir(const char *path)
{
    size_t len = strlen(path);

    /* Trailing slashes do not name another component. */
    while (len > 1 && path[len - 1] == '/')
	len--;
    while (len > 0 && path[len - 1] != '/')
	len--;
    if (len == 0)
	return mem_strdup(".");
    while (len > 1 && path[len - 1] == '/')
	len--;
    return mem_strndup(path, len);
}

/* fsync_parent_dir - fsync the directory that holds path */
int fsync_parent_dir(const char *path, const char **error_r)
{
    char *dir = safe_parent_dir(path);
    int ret = fsync_dir(dir, error_r);

    mem_free(&dir);
    return ret;
}

/* durable_rename - rename(2), then fsync both parent directories */
int durable_rename(const char *from, const char *to, const char **error_r)
{
    char *from_dir, *to_dir;
    int ret;

    if (rename(from, to) < 0)
	return errtext_fail(&safe_error, error_r, "rename %s to %s: %s", from, to, strerror(errno));
    from_dir = safe_parent_dir(from);
    to_dir = safe_parent_dir(to);
    ret = fsync_dir(to_dir, error_r);
    if (ret == 0 && strcmp(from_dir, to_dir) != 0)
	ret = fsync_dir(from_dir, error_r);
    mem_free(&from_dir);
    mem_free(&to_dir);
    return ret;
}

/* write_all_fd - write everything, retrying on EINTR and short writes */
int write_all_fd(int fd, const void *data, size_t len)
{
    const char *p = data;
    ssize_t n;

    while (len > 0) {
	n = write(fd, p, len);
	if (n < 0) {
	    if (errno == EINTR)
		continue;
	    return -1;
	}
	if (n == 0) {
	    errno = EIO;
	    return -1;
	}
	p += n;
	len -= (size_t) n;
    }
    return 0;
}

/* atomic_write_file - replace path with data, whole or not at all */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode, const char **error_r)
{
    struct str *tmp = str_new(STR_MAX_DEFAULT);
    int fd = -1, ret = -1;

    if (!str_try_printf(tmp, "%s.tmp.%ld", path, (long) getpid())) {
	errtext_fail(&safe_error, error_r, "atomic write %s: path too long", path);
	str_free(&tmp);
	return -1;
    }
    fd = open(str_cstr(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
	/* Left over by an earlier process with our pid; nobody else uses it. */
	if (unlink(str_cstr(tmp)) == 0)
	    fd = open(str_cstr(tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	else
	    errno = EEXIST;
    }
    if (fd < 0) {
	errtext_fail(&safe_error, error_r, "create %s: %s", str_cstr(tmp), safe_strerror(errno));
	str_free(&tmp);
	return -1;
    }
    /* The requested mode exactly, whatever the umask. */
    if (fchmod(fd, mode) < 0) {
	errtext_fail(&safe_error, error_r, "chmod %s: %s", str_cstr(tmp), strerror(errno));
	goto done;
    }
    if (write_all_fd(fd, data, len) < 0) {
	errtext_fail(&safe_error, error_r, "write %s: %s", str_cstr(tmp), strerror(errno));
	goto done;
    }
    if (fsync(fd) < 0) {
	errtext_fail(&safe_error, error_r, "fsync %s: %s", str_cstr(tmp), strerror(errno));
	goto done;
    }
    if (close(fd) < 0) {
	fd = -1;
	errtext_fail(&safe_error, error_r, "close %s: %s", str_cstr(tmp), strerror(errno));
	goto done;
    }
    fd = -1;
    if (rename(str_cstr(tmp), path) < 0) {
	errtext_fail(&safe_error, error_r, "rename %s to %s: %s", str_cstr(tmp), path, strerror(errno));
	goto done;
    }
    /* From here the temporary name is gone; only durability is left. */
    str_free(&tmp);
    return fsync_parent_dir(path, error_r);

done:
    if (fd >= 0)
	(void) close(fd);
    (void) unlink(str_cstr(tmp));
    str_free(&tmp);
    return ret;
}

/* read_file - read a whole regular file of at most max bytes into out
 * (no symlink: safe_open_read; the reading is file_read.h's) */
int read_file(const char *path, struct str *out, size_t max, const char **error_r)
{
    const char *why;
    int fd, ret;

    if ((fd = safe_open_read(path, (uid_t) -1, error_r)) < 0)
	return -1;
    if ((ret = file_read_fd(fd, path, out, max, &why)) < 0)
	errtext_fail(&safe_error, error_r, "%s", why);
    (void) close(fd);
    return ret;
}

/* mkdir_p - make dir and any missing parents (new ones get mode) */
int mkdir_p(const char *dir, mode_t mode, const char **error_r)
{
    char *copy = mem_strdup(dir);
    struct stat st;
    char *p;
    int ret = -1;

    if (*copy == 0) {
	errtext_fail(&safe_error, error_r, "mkdir: empty path");
	goto done;
    }
    /* Walk the components: cut at each slash, make the prefix, restore. */
    for (p = copy + 1;; p++) {
	if (*p != '/' && *p != 0)
	    continue;
	if (p[-1] != '/') {
	    char saved = *p;

	    *p = 0;
	    if (mkdir(copy, mode) < 0) {
		if (errno != EEXIST) {
		    errtext_fail(&safe_error, error_r, "mkdir %s: %s", copy, strerror(errno));
		    goto done;
		}
		if (stat(copy, &st) < 0) {
		    errtext_fail(&safe_error, error_r, "stat %s: %s", copy, strerror(errno));
		    goto done;
		}
		if (!S_ISDIR(st.st_mode)) {
		    errtext_fail(&safe_error, error_r, "mkdir %s: exists and is not a directory", copy);
		    goto done;
		}
	    }
	    *p = saved;
	}
	if (*p == 0)
	    break;
    }
    ret = 0;

done:
    mem_free(&copy);
    return ret;
}
