/* safe_file.h - file operations with explicit durability.
 *
 * Opening never follows a symlink in the last component (safe_open_dir:
 * in any component, unless root owns it) and never
 * truncates by surprise; exclusive create fails if the name exists.
 * fsync_dir() makes a rename or create durable: posthorn syncs the
 * directory after every commit-point rename (Postfix and qmail leave
 * that to the file system; we do not). All return 0/-1 and set *error_r
 * on failure: the module's errtext (errtext.h), valid until the next
 * error of a function of this header. */
#ifndef POSTHORN_SAFE_FILE_H
#define POSTHORN_SAFE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

/* safe_create_excl - O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, read-write */
int safe_create_excl(const char *path, mode_t mode, const char **error_r);
/* safe_open_read - open an existing regular file, no symlinks, and check
 * (if owner != (uid_t)-1) that it is owned by owner; the descriptor keeps
 * O_NONBLOCK (opened so that a FIFO cannot hang the open), which Linux
 * ignores on a regular file */
int safe_open_read(const char *path, uid_t owner, const char **error_r);
/* safe_openat_dir - open directory name (one component, no "/")
 * relative to dfd, O_DIRECTORY|O_NOFOLLOW: a symlink is followed only
 * when root owns it (the administrator's), any other is refused; with
 * create, a missing directory is made (mode). The descriptor, or -1
 * with errno (ELOOP for a refused symlink) and *error_r. */
int safe_openat_dir(int dfd, const char *name, bool create, mode_t mode, const char **error_r);
/* safe_open_dir - open directory path with safe_openat_dir() for each
 * component, from "/" (absolute) or the working directory: no symlink
 * that a user owns is followed anywhere on the way */
int safe_open_dir(const char *path, bool create, mode_t mode, const char **error_r);
/* fsync_dir - open a directory and fsync it */
int fsync_dir(const char *dir, const char **error_r);
/* fsync_parent_dir - fsync the directory that holds path */
int fsync_parent_dir(const char *path, const char **error_r);
/* durable_rename - rename(2), then fsync both parent directories */
int durable_rename(const char *from, const char *to, const char **error_r);
/* write_all_fd - write everything, retrying on EINTR/short writes */
int write_all_fd(int fd, const void *data, size_t len);
/* atomic_write_file - write data to path.tmp.PID, fsync it, rename to
 * path, fsync the directory: readers see the old or the new file whole */
int atomic_write_file(const char *path, const void *data, size_t len, mode_t mode, const char **error_r);
/* read_file - read a whole file (at most max bytes) into out */
int read_file(const char *path, struct str *out, size_t max, const char **error_r);
/* mkdir_p - make dir and its parents (mode for new ones) */
int mkdir_p(const char *dir, mode_t mode, const char **error_r);

#endif
