/* store_folder.c - Maildir++ folders under a mailbox root: which names
 * are valid, listing, creating and deleting them (the minimum pop3d and
 * local-delivery need; imapd will add RENAME and subscriptions). */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "safe_file.h"
#include "str.h"
#include "strv.h"

/* This library. */
#include "store.h"
#include "store_int.h"

#define SF_NAME_MAX	200

/* store_folder_valid - see store.h */
bool store_folder_valid(const char *name)
{
    size_t len = strlen(name), i;

    if (len == 0 || len > SF_NAME_MAX || strcasecmp(name, "INBOX") == 0)
	return false;
    if (name[0] == '.' || name[len - 1] == '.' || strstr(name, "..") != NULL)
	return false;
    for (i = 0; i < len; i++)
	if (name[i] == '/' || (unsigned char) name[i] < 0x20 || name[i] == 0x7f)
	    return false;
    return true;
}

/* sf_cmp - qsort strings */
static int sf_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* store_folder_list - the ".Name" directories of root, sorted */
int store_folder_list(const char *root, struct strv *out, const char **error_r)
{
    struct strv found = STRV_INIT;
    struct dirent *d;
    struct stat st;
    const char *err;
    DIR *dir;
    size_t i;
    int fd;

    if ((fd = safe_open_dir(root, false, 0700, &err)) < 0)
	return errtext_fail(&store_error, error_r, "%s", err);
    if ((dir = fdopendir(fd)) == NULL) {
	(void) close(fd);
	return errtext_fail(&store_error, error_r, "read %s: %s", root, strerror(errno));
    }
    while ((d = readdir(dir)) != NULL) {
	if (d->d_name[0] != '.' || !store_folder_valid(d->d_name + 1))
	    continue;
	if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
	    continue;
	strv_add(&found, d->d_name + 1);
    }
    (void) closedir(dir);
    if (found.count > 0)
	qsort(found.items, found.count, sizeof(*found.items), sf_cmp);
    for (i = 0; i < found.count; i++)
	strv_add(out, found.items[i]);
    strv_fini(&found);
    return 0;
}

/* sf_open_root - check folder name, open root, ".name" into sub:
 * root's descriptor, or -1 with *error_r */
static int sf_open_root(const char *root, const char *name, char *sub, size_t size,
			const char **error_r)
{
    const char *err;
    int fd;

    if (!store_folder_valid(name)) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "invalid folder name \"%s\"", name);
    }
    if ((fd = safe_open_dir(root, false, 0700, &err)) < 0)
	return errtext_fail(&store_error, error_r, "%s", err);
    fmt_buf_or_panic(sub, size, ".%s", name);
    return fd;
}

/* store_folder_create - a new Maildir ".name" under root */
int store_folder_create(const char *root, const char *name, const char **error_r)
{
    static const char *const subs[] = {"cur", "new", "tmp"};
    char sub[SF_NAME_MAX + 2];
    const char *err;
    int root_fd, fd, sfd, e;
    size_t i;

    if ((root_fd = sf_open_root(root, name, sub, sizeof(sub), error_r)) < 0)
	return -1;
    if (mkdirat(root_fd, sub, 0700) < 0) {
	e = errno;
	(void) close(root_fd);
	errno = e;
	return errtext_fail(&store_error, error_r, "create folder %s: %s", name, strerror(e));
    }
    if ((fd = safe_openat_dir(root_fd, sub, false, 0700, &err)) < 0) {
	e = errno;
	(void) close(root_fd);
	errno = e;
	return errtext_fail(&store_error, error_r, "%s", err);
    }
    for (i = 0; i < 3; i++) {
	if (mkdirat(fd, subs[i], 0700) < 0 && errno != EEXIST)
	    goto fail;
    }
    if ((sfd = openat(fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		      0600)) < 0)
	goto fail;
    (void) close(sfd);
    if (fsync(fd) < 0 || fsync(root_fd) < 0)
	goto fail;
    (void) close(fd);
    (void) close(root_fd);
    return 0;

  fail:
    e = errno;
    (void) close(fd);
    (void) close(root_fd);
    errno = e;
    return errtext_fail(&store_error, error_r, "create folder %s: %s", name, strerror(e));
}

/* sf_remove_tree - remove directory name under dfd and what it holds
 * (two levels: the files of cur/ new/ tmp/ and the folder's own) */
static int sf_remove_tree(int dfd, const char *name, int depth)
{
    struct dirent *d;
    DIR *dir;
    int fd, ret = 0;

    if ((fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
	return -1;
    if ((dir = fdopendir(fd)) == NULL) {
	(void) close(fd);
	return -1;
    }
    while ((d = readdir(dir)) != NULL) {
	if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
	    continue;
	if (unlinkat(dirfd(dir), d->d_name, 0) == 0)
	    continue;
	if ((errno == EISDIR || errno == EPERM) && depth < 2
	    && sf_remove_tree(dirfd(dir), d->d_name, depth + 1) == 0)
	    continue;
	ret = -1;
    }
    (void) closedir(dir);
    if (ret == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0)
	ret = -1;
    return ret;
}

/* store_folder_delete - rename ".name" away at once, then remove it */
int store_folder_delete(const char *root, const char *name, const char **error_r)
{
    char sub[SF_NAME_MAX + 2], gone[SF_NAME_MAX + 64];
    int root_fd, e;

    if ((root_fd = sf_open_root(root, name, sub, sizeof(sub), error_r)) < 0)
	return -1;
    /* no leading dot: the remains are never listed as a folder */
    fmt_buf_or_panic(gone, sizeof(gone), "posthorn-deleted.%ld.%s", (long) getpid(), name);
    if (renameat(root_fd, sub, root_fd, gone) < 0) {
	e = errno;
	(void) close(root_fd);
	errno = e;
	return errtext_fail(&store_error, error_r, "delete folder %s: %s", name, strerror(e));
    }
    (void) fsync(root_fd);
    if (sf_remove_tree(root_fd, gone, 0) < 0) {
	e = errno;
	(void) close(root_fd);
	errno = e;
	return errtext_fail(&store_error, error_r, "delete folder %s: removing %s: %s", name,
			    gone, strerror(e));
    }
    (void) fsync(root_fd);
    (void) close(root_fd);
    return 0;
}
