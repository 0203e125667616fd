/* store_folder.c - Maildir++ folders under a mailbox root: which names
 * are valid, listing (with the parents, children and subscriptions IMAP
 * LIST shows), creating, deleting and renaming them (INBOX's rename
 * included), subscriptions, the special-use folders every user gets,
 * and a folder's STATUS counts (store.h, folder sections). */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "file_read.h"
#include "mem.h"
#include "safe_file.h"
#include "str.h"
#include "strv.h"

/* This library. */
#include "store.h"
#include "store_int.h"

#define SF_NAME_MAX	200

/* sf_utf8_valid - whether s is valid UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF) */
static bool sf_utf8_valid(const unsigned char *s)
{
    unsigned long cp, min;
    int n, k;

    while (*s) {
	if (*s < 0x80) {
	    s++;
	    continue;
	}
	if (*s >= 0xc2 && *s <= 0xdf) {
	    n = 1;
	    cp = *s & 0x1f;
	    min = 0x80;
	} else if (*s >= 0xe0 && *s <= 0xef) {
	    n = 2;
	    cp = *s & 0x0f;
	    min = 0x800;
	} else if (*s >= 0xf0 && *s <= 0xf4) {
	    n = 3;
	    cp = *s & 0x07;
	    min = 0x10000;
	} else {
	    return false;
	}
	for (k = 1; k <= n; k++) {
	    if ((s[k] & 0xc0) != 0x80)
		return false;
	    cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
	    return false;
	s += n + 1;
    }
    return true;
}

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
    return sf_utf8_valid((const unsigned char *) name);
}

/* store_folder_is_inbox - see store.h */
bool store_folder_is_inbox(const char *name)
{
    return strcasecmp(name, "INBOX") == 0;
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
/* sf_make_folder - the directory sub (".Name") of root_fd with cur/
 * new/ tmp/ and maildirfolder, its own entries synced; the caller
 * syncs root_fd (once for several folders): 0, or -1 with errno and
 * *error_r */
static int sf_make_folder(int root_fd, const char *sub, const char *name, const char **error_r)
{
    static const char *const subs[] = {"cur", "new", "tmp"};
    const char *err;
    int fd, sfd, e;
    size_t i;

    if (mkdirat(root_fd, sub, 0700) < 0) {
	e = errno;
	errno = e;
	return errtext_fail(&store_error, error_r, "create folder %s: %s", name, strerror(e));
    }
    if ((fd = safe_openat_dir(root_fd, sub, false, 0700, &err)) < 0) {
	e = errno;
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
    if (fsync(fd) < 0)
	goto fail;
    (void) close(fd);
    return 0;

  fail:
    e = errno;
    (void) close(fd);
    errno = e;
    return errtext_fail(&store_error, error_r, "create folder %s: %s", name, strerror(e));
}

int store_folder_create(const char *root, const char *name, const char **error_r)
{
    char sub[SF_NAME_MAX + 2];
    int root_fd, e;

    if ((root_fd = sf_open_root(root, name, sub, sizeof(sub), error_r)) < 0)
	return -1;
    if (sf_make_folder(root_fd, sub, name, error_r) < 0) {
	e = errno;
	(void) close(root_fd);
	errno = e;
	return -1;
    }
    if (fsync(root_fd) < 0) {
	e = errno;
	(void) close(root_fd);
	errno = e;
	return errtext_fail(&store_error, error_r, "create folder %s: %s", name, strerror(e));
    }
    (void) close(root_fd);
    return 0;
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

static int sf_forget_use(int root_fd, const char *name);

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
    (void) sf_forget_use(root_fd, name);
    (void) close(root_fd);
    return 0;
}

/*
 * Part 2: what IMAP needs. The root holds, besides the folders:
 *   posthorn-folders.lock   flock(2)ed around every change of the
 *                           folder set and of the two files below
 *   posthorn-subscriptions  "posthorn-subscriptions 1", then a name a line
 *   posthorn-special-use    "posthorn-special-use 1", then "\Attr NAME"
 * Both files are replaced whole (temp, fsync, rename, fsync).
 */

#define SF_LOCK_FILE	"posthorn-folders.lock"
#define SF_SUBS_FILE	"posthorn-subscriptions"
#define SF_SUBS_TMP	"posthorn-subscriptions.tmp"
#define SF_SUBS_MAGIC	"posthorn-subscriptions 1"
#define SF_USE_FILE	"posthorn-special-use"
#define SF_USE_TMP	"posthorn-special-use.tmp"
#define SF_USE_MAGIC	"posthorn-special-use 1"
#define SF_FILE_MAX	((size_t) 4 << 20)

static const char *const sf_use_names[STORE_USE_COUNT] = {
    "\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash",
};

/* store_use_name - see store.h */
const char *store_use_name(unsigned n)
{
    return n < STORE_USE_COUNT ? sf_use_names[n] : NULL;
}

/* store_use_parse - see store.h */
unsigned store_use_parse(const char *attr, size_t len)
{
    unsigned n;

    for (n = 0; n < STORE_USE_COUNT; n++)
	if (strlen(sf_use_names[n]) == len && strncasecmp(sf_use_names[n], attr, len) == 0)
	    return 1u << n;
    return 0;
}

/* sf_name_ok - a folder name or INBOX (any case) */
static bool sf_name_ok(const char *name)
{
    return store_folder_is_inbox(name) || store_folder_valid(name);
}

/* sf_canon - name with INBOX spelled "INBOX" */
static const char *sf_canon(const char *name)
{
    return store_folder_is_inbox(name) ? "INBOX" : name;
}

/* sf_lock - open root's folder lock and flock it: the descriptor, or
 * -1 with *error_r */
static int sf_lock(int root_fd, const char **error_r)
{
    int fd;

    fd = openat(root_fd, SF_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
	return errtext_fail(&store_error, error_r, "open %s: %s", SF_LOCK_FILE, strerror(errno));
    while (flock(fd, LOCK_EX) < 0) {
	if (errno != EINTR) {
	    (void) close(fd);
	    return errtext_fail(&store_error, error_r, "lock %s: %s", SF_LOCK_FILE,
				strerror(errno));
	}
    }
    return fd;
}

/* sf_unlock - release and close the folder lock */
static void sf_unlock(int *fdp)
{
    if (*fdp >= 0) {
	(void) flock(*fdp, LOCK_UN);
	(void) close(*fdp);
    }
    *fdp = -1;
}

/* sf_read_lines - the lines after the magic first line of file in
 * root_fd into out (a missing file, or one with another first line,
 * has none): 0, or -1 with *error_r */
static int sf_read_lines(int root_fd, const char *file, const char *magic, struct strv *out,
			 const char **error_r)
{
    struct str *buf = str_new(SF_FILE_MAX);
    const char *cp, *nl, *err;
    size_t mlen = strlen(magic);
    int fd;

    if ((fd = openat(root_fd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
	str_free(&buf);
	if (errno == ENOENT)
	    return 0;
	return errtext_fail(&store_error, error_r, "open %s: %s", file, strerror(errno));
    }
    if (file_read_fd(fd, file, buf, SF_FILE_MAX, &err) < 0) {
	(void) close(fd);
	str_free(&buf);
	return errtext_fail(&store_error, error_r, "%s", err);
    }
    (void) close(fd);
    cp = str_cstr(buf);
    if (str_len(buf) > mlen && strncmp(cp, magic, mlen) == 0 && cp[mlen] == '\n') {
	for (cp += mlen + 1; *cp; cp = nl + 1) {
	    if ((nl = strchr(cp, '\n')) == NULL)
		break;		/* a cut last line: not written by us */
	    if (nl > cp)
		strv_addn(out, cp, (size_t) (nl - cp));
	}
    }
    str_free(&buf);
    return 0;
}

/* sf_lines_text - magic and the lines, one per line, into a new
 * string; NULL (and *error_r) when too big */
static struct str *sf_lines_text(const char *file, const char *magic, const struct strv *lines,
				 const char **error_r)
{
    struct str *buf = str_new(SF_FILE_MAX);
    bool ok;
    size_t i;

    ok = str_try_appends(buf, magic) && str_try_appendc(buf, '\n');
    for (i = 0; ok && i < lines->count; i++)
	ok = str_try_appends(buf, lines->items[i]) && str_try_appendc(buf, '\n');
    if (!ok) {
	str_free(&buf);
	(void) errtext_fail(&store_error, error_r, "%s: too big", file);
	return NULL;
    }
    return buf;
}

/* sf_write_lines - replace file with magic and the lines */
static int sf_write_lines(int root_fd, const char *tmp, const char *file, const char *magic,
			  const struct strv *lines, const char **error_r)
{
    struct str *buf = sf_lines_text(file, magic, lines, error_r);
    int ret;

    if (buf == NULL)
	return -1;
    ret = store_write_atomic(root_fd, tmp, file, str_cstr(buf), str_len(buf), error_r);
    str_free(&buf);
    return ret;
}

/* sf_write_tmp - magic and the lines into the new file tmp, synced, not
 * renamed (nor root_fd synced): 0, or -1 with *error_r */
static int sf_write_tmp(int root_fd, const char *tmp, const char *file, const char *magic,
			const struct strv *lines, const char **error_r)
{
    struct str *buf = sf_lines_text(file, magic, lines, error_r);
    int fd, err;

    if (buf == NULL)
	return -1;
    (void) unlinkat(root_fd, tmp, 0);
    fd = openat(root_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
	str_free(&buf);
	return errtext_fail(&store_error, error_r, "create %s: %s", tmp, strerror(errno));
    }
    if (write_all_fd(fd, str_cstr(buf), str_len(buf)) < 0 || fsync(fd) < 0 || close(fd) < 0) {
	err = errno;
	(void) close(fd);
	(void) unlinkat(root_fd, tmp, 0);
	str_free(&buf);
	return errtext_fail(&store_error, error_r, "write %s: %s", tmp, strerror(err));
    }
    str_free(&buf);
    return 0;
}

/* sf_strv_find - the index of text in sv, or -1 */
static long sf_strv_find(const struct strv *sv, const char *text)
{
    size_t i;

    for (i = 0; i < sv->count; i++)
	if (strcmp(sv->items[i], text) == 0)
	    return (long) i;
    return -1;
}

/* sf_strv_remove - drop item i of sv */
static void sf_strv_remove(struct strv *sv, size_t i)
{
    mem_free(&sv->items[i]);
    memmove(&sv->items[i], &sv->items[i + 1], (sv->count - i) * sizeof(*sv->items));
    sv->count--;
}

/* sf_strv_sort - sort sv */
static void sf_strv_sort(struct strv *sv)
{
    if (sv->count > 1)
	qsort(sv->items, sv->count, sizeof(*sv->items), sf_cmp);
}

/* sf_under - whether name is prefix itself (self) or below it */
static bool sf_under(const char *name, const char *prefix, bool self)
{
    size_t n = strlen(prefix);

    if (strncmp(name, prefix, n) != 0)
	return false;
    return (self && name[n] == 0) || name[n] == '.';
}

/* sf_open_root_plain - root's descriptor (made when create), or -1 */
static int sf_open_root_plain(const char *root, bool create, const char **error_r)
{
    const char *err;
    int fd;

    if ((fd = safe_open_dir(root, create, 0700, &err)) < 0)
	return errtext_fail(&store_error, error_r, "%s", err);
    return fd;
}

/* store_subscriptions - see store.h */
int store_subscriptions(const char *root, struct strv *out, const char **error_r)
{
    struct strv lines = STRV_INIT;
    int root_fd;
    size_t i;

    if ((root_fd = sf_open_root_plain(root, false, error_r)) < 0)
	return errno == ENOENT ? 0 : -1;
    if (sf_read_lines(root_fd, SF_SUBS_FILE, SF_SUBS_MAGIC, &lines, error_r) < 0) {
	(void) close(root_fd);
	return -1;
    }
    (void) close(root_fd);
    sf_strv_sort(&lines);
    for (i = 0; i < lines.count; i++)
	if (sf_name_ok(lines.items[i])
	    && (i == 0 || strcmp(lines.items[i], lines.items[i - 1]) != 0))
	    strv_add(out, lines.items[i]);
    strv_fini(&lines);
    return 0;
}

/* sf_subscribe_locked - store_subscribe with the folder lock held */
static int sf_subscribe_locked(int root_fd, const char *name, bool on, const char **error_r)
{
    struct strv lines = STRV_INIT;
    bool changed = false;
    long at;
    int ret = 0;

    if (sf_read_lines(root_fd, SF_SUBS_FILE, SF_SUBS_MAGIC, &lines, error_r) < 0)
	return -1;
    while ((at = sf_strv_find(&lines, name)) >= 0 && !on) {
	sf_strv_remove(&lines, (size_t) at);
	changed = true;
    }
    if (on && at < 0) {
	strv_add(&lines, name);
	changed = true;
    }
    if (changed) {
	sf_strv_sort(&lines);
	ret = sf_write_lines(root_fd, SF_SUBS_TMP, SF_SUBS_FILE, SF_SUBS_MAGIC, &lines, error_r);
    }
    strv_fini(&lines);
    return ret;
}

/* store_subscribe - see store.h */
int store_subscribe(const char *root, const char *name, bool on, const char **error_r)
{
    int root_fd, lock_fd, ret;

    if (!sf_name_ok(name)) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "invalid folder name \"%s\"", name);
    }
    if ((root_fd = sf_open_root_plain(root, true, error_r)) < 0)
	return -1;
    if ((lock_fd = sf_lock(root_fd, error_r)) < 0) {
	(void) close(root_fd);
	return -1;
    }
    ret = sf_subscribe_locked(root_fd, sf_canon(name), on, error_r);
    sf_unlock(&lock_fd);
    (void) close(root_fd);
    return ret;
}

/* sf_use_split - "\Attr NAME" into its bit and name; false if not */
static bool sf_use_split(const char *line, unsigned *bit_r, const char **name_r)
{
    const char *sp = strchr(line, ' ');

    if (sp == NULL || (*bit_r = store_use_parse(line, (size_t) (sp - line))) == 0)
	return false;
    *name_r = sp + 1;
    return sf_name_ok(*name_r);
}

/* sf_use_set_locked - give name the uses (removing its old ones) */
static int sf_use_set_locked(int root_fd, const char *name, unsigned uses,
			     const char **error_r)
{
    struct strv lines = STRV_INIT;
    const char *lname;
    unsigned bit, n;
    bool changed = false;
    size_t i;
    int ret = 0;

    if (sf_read_lines(root_fd, SF_USE_FILE, SF_USE_MAGIC, &lines, error_r) < 0)
	return -1;
    for (i = 0; i < lines.count; ) {
	if (sf_use_split(lines.items[i], &bit, &lname) && strcmp(lname, name) == 0) {
	    if (uses & bit) {
		uses &= ~bit;	/* already there */
		i++;
		continue;
	    }
	} else if (sf_use_split(lines.items[i], &bit, &lname)) {
	    i++;
	    continue;
	}
	sf_strv_remove(&lines, i);	/* not wanted any more, or garbage */
	changed = true;
    }
    for (n = 0; n < STORE_USE_COUNT; n++) {
	if (uses & (1u << n)) {
	    strv_addf(&lines, "%s %s", sf_use_names[n], name);
	    changed = true;
	}
    }
    if (changed)
	ret = sf_write_lines(root_fd, SF_USE_TMP, SF_USE_FILE, SF_USE_MAGIC, &lines, error_r);
    strv_fini(&lines);
    return ret;
}

/* store_folder_set_use - see store.h */
int store_folder_set_use(const char *root, const char *name, unsigned uses,
			 const char **error_r)
{
    int root_fd, lock_fd, ret;

    if (!store_folder_valid(name)) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "invalid folder name \"%s\"", name);
    }
    if ((root_fd = sf_open_root_plain(root, false, error_r)) < 0)
	return -1;
    if ((lock_fd = sf_lock(root_fd, error_r)) < 0) {
	(void) close(root_fd);
	return -1;
    }
    ret = sf_use_set_locked(root_fd, name, uses, error_r);
    sf_unlock(&lock_fd);
    (void) close(root_fd);
    return ret;
}

/* sf_is_folder_dir - whether ".name" under root_fd is a directory */
static bool sf_is_folder_dir(int root_fd, const char *name)
{
    char sub[SF_NAME_MAX + 2];
    struct stat st;

    if (!fmt_try_buf(sub, sizeof(sub), ".%s", name))
	return false;
    return fstatat(root_fd, sub, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* store_folder_exists - see store.h */
int store_folder_exists(const char *root, const char *name, const char **error_r)
{
    int root_fd, ret;

    if (store_folder_is_inbox(name))
	return 1;
    if (!store_folder_valid(name))
	return 0;
    if ((root_fd = sf_open_root_plain(root, false, error_r)) < 0)
	return errno == ENOENT ? 0 : -1;
    ret = sf_is_folder_dir(root_fd, name) ? 1 : 0;
    (void) close(root_fd);
    return ret;
}

/* store_folders_ensure_special - see store.h */
int store_folders_ensure_special(const char *root, const char **error_r)
{
    static const struct {
	const char *name;
	unsigned use;
    } specials[] = {
	{"Drafts", STORE_USE_DRAFTS},
	{"Sent", STORE_USE_SENT},
	{"Trash", STORE_USE_TRASH},
	{"Junk", STORE_USE_JUNK},
    };
    struct strv lines = STRV_INIT, subs = STRV_INIT;
    struct stat st;
    int root_fd, lock_fd = -1, ret = -1;
    bool subs_changed = false;
    size_t i;

    if ((root_fd = sf_open_root_plain(root, true, error_r)) < 0)
	return -1;
    if (fstatat(root_fd, SF_USE_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0) {
	(void) close(root_fd);
	return 0;
    }
    if ((lock_fd = sf_lock(root_fd, error_r)) < 0)
	goto out;
    if (fstatat(root_fd, SF_USE_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0) {
	ret = 0;		/* another session did it meanwhile */
	goto out;
    }
    /* Crash safety with few syncs (a user's first login waits for
     * them): each new folder syncs its own entries (cur/ new/ tmp/),
     * the subscriptions and the use table are written to synced
     * temporary files; one sync of the root then makes the folders and
     * the subscriptions durable, and only after it is the use table
     * (the "done" mark: its presence skips all this) renamed into
     * place and synced. A crash at any point leaves either no use
     * table (the next login does the rest) or everything. */
    for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
	char sub[SF_NAME_MAX + 2];

	fmt_buf_or_panic(sub, sizeof(sub), ".%s", specials[i].name);
	if (!sf_is_folder_dir(root_fd, specials[i].name)
	    && sf_make_folder(root_fd, sub, specials[i].name, error_r) < 0 && errno != EEXIST)
	    goto out;
    }
    if (sf_read_lines(root_fd, SF_SUBS_FILE, SF_SUBS_MAGIC, &subs, error_r) < 0)
	goto out;
    for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
	if (sf_strv_find(&subs, specials[i].name) < 0) {
	    strv_add(&subs, specials[i].name);
	    subs_changed = true;
	}
    if (subs_changed) {
	sf_strv_sort(&subs);
	if (sf_write_tmp(root_fd, SF_SUBS_TMP, SF_SUBS_FILE, SF_SUBS_MAGIC, &subs, error_r) < 0)
	    goto out;
	if (renameat(root_fd, SF_SUBS_TMP, root_fd, SF_SUBS_FILE) < 0) {
	    (void) errtext_fail(&store_error, error_r, "replace %s: %s", SF_SUBS_FILE,
				strerror(errno));
	    (void) unlinkat(root_fd, SF_SUBS_TMP, 0);
	    goto out;
	}
    }
    /* the table, kept with whatever uses another program gave others */
    if (sf_read_lines(root_fd, SF_USE_FILE, SF_USE_MAGIC, &lines, error_r) < 0)
	goto out;
    for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
	strv_addf(&lines, "%s %s", sf_use_names[__builtin_ctz(specials[i].use)],
		  specials[i].name);
    if (sf_write_tmp(root_fd, SF_USE_TMP, SF_USE_FILE, SF_USE_MAGIC, &lines, error_r) < 0)
	goto out;
    if (fsync(root_fd) < 0) {
	(void) errtext_fail(&store_error, error_r, "fsync %s: %s", root, strerror(errno));
	(void) unlinkat(root_fd, SF_USE_TMP, 0);
	goto out;
    }
    if (renameat(root_fd, SF_USE_TMP, root_fd, SF_USE_FILE) < 0) {
	(void) errtext_fail(&store_error, error_r, "replace %s: %s", SF_USE_FILE, strerror(errno));
	(void) unlinkat(root_fd, SF_USE_TMP, 0);
	goto out;
    }
    if (fsync(root_fd) < 0) {
	(void) errtext_fail(&store_error, error_r, "fsync after replacing %s: %s", SF_USE_FILE,
			    strerror(errno));
	goto out;
    }
    ret = 0;
  out:
    strv_fini(&subs);
    strv_fini(&lines);
    sf_unlock(&lock_fd);
    (void) close(root_fd);
    return ret;
}

/* sf_info_cmp - qsort tree entries by name */
static int sf_info_cmp(const void *a, const void *b)
{
    return strcmp(((const struct store_folder_info *) a)->name,
		  ((const struct store_folder_info *) b)->name);
}

/* sf_tree_add - an entry for name (duplicates are merged later) */
static struct store_folder_info *sf_tree_add(struct store_folder_tree *t, size_t *cap,
					     const char *name, size_t len)
{
    struct store_folder_info *fi;

    if (t->count == *cap) {
	*cap = *cap ? mem_size_mul(*cap, 2) : 32;
	t->items = mem_realloc(t->items, mem_size_mul(*cap, sizeof(*t->items)));
    }
    fi = &t->items[t->count++];
    memset(fi, 0, sizeof(*fi));
    fi->name = mem_strndup(name, len);
    return fi;
}

/* store_folder_tree_find - see store.h */
const struct store_folder_info *store_folder_tree_find(const struct store_folder_tree *tree,
						       const char *name)
{
    struct store_folder_info key;

    if (tree->count == 0)
	return NULL;
    key.name = (char *) sf_canon(name);
    return bsearch(&key, tree->items, tree->count, sizeof(*tree->items), sf_info_cmp);
}

/* store_folder_tree_free - see store.h */
void store_folder_tree_free(struct store_folder_tree *tree)
{
    size_t i;

    for (i = 0; i < tree->count; i++)
	mem_free(&tree->items[i].name);
    mem_free(&tree->items);
    tree->count = 0;
}

/* store_folder_tree - see store.h */
int store_folder_tree(const char *root, struct store_folder_tree *out, const char **error_r)
{
    struct strv folders = STRV_INIT, subs = STRV_INIT, uses = STRV_INIT;
    struct store_folder_info *fi, *parent;
    const char *cp, *lname;
    size_t cap = 0, i, j, n;
    unsigned bit;
    int root_fd;

    out->items = NULL;
    out->count = 0;
    if ((root_fd = sf_open_root_plain(root, false, error_r)) >= 0) {
	if (sf_read_lines(root_fd, SF_USE_FILE, SF_USE_MAGIC, &uses, error_r) < 0
	    || store_folder_list(root, &folders, error_r) < 0
	    || store_subscriptions(root, &subs, error_r) < 0) {
	    (void) close(root_fd);
	    strv_fini(&folders);
	    strv_fini(&subs);
	    strv_fini(&uses);
	    return -1;
	}
	(void) close(root_fd);
    } else if (errno != ENOENT) {
	return -1;
    }
    fi = sf_tree_add(out, &cap, "INBOX", 5);
    fi->exists = true;
    for (i = 0; i < folders.count; i++) {
	fi = sf_tree_add(out, &cap, folders.items[i], strlen(folders.items[i]));
	fi->exists = true;
	/* every parent, existing or not */
	for (cp = folders.items[i]; (cp = strchr(cp, '.')) != NULL; cp++)
	    (void) sf_tree_add(out, &cap, folders.items[i], (size_t) (cp - folders.items[i]));
    }
    for (i = 0; i < subs.count; i++) {
	(void) sf_tree_add(out, &cap, subs.items[i], strlen(subs.items[i]));
	/* and their parents (LSUB "%" shows them) */
	for (cp = subs.items[i]; (cp = strchr(cp, '.')) != NULL; cp++)
	    (void) sf_tree_add(out, &cap, subs.items[i], (size_t) (cp - subs.items[i]));
    }
    /* normalise the case of an "inbox." first component */
    for (i = 0; i < out->count; i++)
	if (strncasecmp(out->items[i].name, "INBOX", 5) == 0
	    && (out->items[i].name[5] == 0 || out->items[i].name[5] == '.'))
	    memcpy(out->items[i].name, "INBOX", 5);
    qsort(out->items, out->count, sizeof(*out->items), sf_info_cmp);
    /* merge duplicates */
    for (i = 0, n = 0; i < out->count; i++) {
	if (n > 0 && strcmp(out->items[n - 1].name, out->items[i].name) == 0) {
	    out->items[n - 1].exists |= out->items[i].exists;
	    mem_free(&out->items[i].name);
	    continue;
	}
	out->items[n++] = out->items[i];
    }
    out->count = n;
    for (i = 0; i < out->count; i++) {
	fi = &out->items[i];
	if (!fi->exists)
	    continue;
	for (cp = fi->name; (cp = strchr(cp, '.')) != NULL; cp++) {
	    struct store_folder_info key;
	    char *pname = mem_strndup(fi->name, (size_t) (cp - fi->name));

	    key.name = pname;
	    parent = bsearch(&key, out->items, out->count, sizeof(*out->items), sf_info_cmp);
	    if (parent != NULL)
		parent->has_children = true;
	    mem_free(&pname);
	}
    }
    for (i = 0; i < subs.count; i++)
	if ((fi = (struct store_folder_info *) store_folder_tree_find(out, subs.items[i])) != NULL)
	    fi->subscribed = true;
    for (j = 0; j < uses.count; j++)
	if (sf_use_split(uses.items[j], &bit, &lname)
	    && (fi = (struct store_folder_info *) store_folder_tree_find(out, lname)) != NULL
	    && fi->exists)
	    fi->special_use |= bit;
    strv_fini(&folders);
    strv_fini(&subs);
    strv_fini(&uses);
    return 0;
}

/* sf_rename_lines - in lines ("[PREFIX ]NAME", prefix when with_attr),
 * rename names from (and below it) to to; true if anything changed */
static bool sf_rename_lines(struct strv *lines, const char *from, const char *to,
			    bool with_attr)
{
    struct strv out = STRV_INIT;
    const char *name, *sp;
    bool changed = false;
    size_t i, plen;

    for (i = 0; i < lines->count; i++) {
	name = lines->items[i];
	plen = 0;
	if (with_attr && (sp = strchr(name, ' ')) != NULL) {
	    plen = (size_t) (sp - name) + 1;
	    name += plen;
	}
	if (sf_under(name, from, true)) {
	    strv_addf(&out, "%.*s%s%s", (int) plen, lines->items[i], to, name + strlen(from));
	    changed = true;
	} else {
	    strv_add(&out, lines->items[i]);
	}
    }
    strv_fini(lines);
    *lines = out;
    return changed;
}

/* sf_rename_meta - move the special uses along (an attribute of the
 * mailbox); subscriptions stay, as RFC 3501 6.3.6 wants a server never
 * to drop a subscribed name by itself (Dovecot does the same) */
static int sf_rename_meta(int root_fd, const char *from, const char *to, const char **error_r)
{
    struct strv lines = STRV_INIT;
    int ret = 0;

    if (sf_read_lines(root_fd, SF_USE_FILE, SF_USE_MAGIC, &lines, error_r) < 0)
	return -1;
    if (sf_rename_lines(&lines, from, to, true))
	ret = sf_write_lines(root_fd, SF_USE_TMP, SF_USE_FILE, SF_USE_MAGIC, &lines, error_r);
    strv_fini(&lines);
    return ret;
}

/* sf_move_all - rename every message file of directory sub ("cur" or
 * "new") of from_fd into the same directory of to_fd; 0, or -1 */
static int sf_move_all(int from_fd, int to_fd, const char *sub, const char **error_r)
{
    int sfd, dfd, e, ret = 0;
    struct dirent *d;
    const char *err;
    DIR *dir;

    if ((sfd = safe_openat_dir(from_fd, sub, false, 0700, &err)) < 0)
	return errno == ENOENT ? 0 : errtext_fail(&store_error, error_r, "%s", err);
    if ((dfd = safe_openat_dir(to_fd, sub, true, 0700, &err)) < 0) {
	e = errno;
	(void) close(sfd);
	errno = e;
	return errtext_fail(&store_error, error_r, "%s", err);
    }
    if ((dir = fdopendir(sfd)) == NULL) {
	e = errno;
	(void) close(sfd);
	(void) close(dfd);
	errno = e;
	return errtext_fail(&store_error, error_r, "read %s: %s", sub, strerror(e));
    }
    while ((d = readdir(dir)) != NULL) {
	if (d->d_name[0] == '.')
	    continue;
	if (renameat2(dirfd(dir), d->d_name, dfd, d->d_name, RENAME_NOREPLACE) < 0
	    && errno != ENOENT) {
	    e = errno;
	    ret = errtext_fail(&store_error, error_r, "move %s/%s: %s", sub, d->d_name,
			       strerror(e));
	    errno = e;
	    break;
	}
    }
    if (ret == 0 && (fsync(dfd) < 0 || fsync(dirfd(dir)) < 0))
	ret = errtext_fail(&store_error, error_r, "fsync %s: %s", sub, strerror(errno));
    (void) closedir(dir);
    (void) close(dfd);
    return ret;
}

/* sf_rename_inbox - INBOX's messages into the new folder to */
static int sf_rename_inbox(const char *root, int root_fd, const char *to, const char **error_r)
{
    char sub[SF_NAME_MAX + 2];
    struct str *buf;
    const char *err;
    int to_fd, box_lock, kfd, ret = -1;

    if (store_folder_create(root, to, error_r) < 0)
	return -1;
    fmt_buf_or_panic(sub, sizeof(sub), ".%s", to);
    if ((to_fd = safe_openat_dir(root_fd, sub, false, 0700, &err)) < 0)
	return errtext_fail(&store_error, error_r, "%s", err);
    /* INBOX's own lock: no synchronisation runs while its files move */
    box_lock = openat(root_fd, STORE_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (box_lock < 0) {
	(void) close(to_fd);
	return errtext_fail(&store_error, error_r, "open %s: %s", STORE_LOCK_FILE,
			    strerror(errno));
    }
    while (flock(box_lock, LOCK_EX) < 0 && errno == EINTR)
	;
    /* the keyword names go along, or the letters would mean nothing */
    if ((kfd = openat(root_fd, "posthorn-keywords", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
	buf = str_new(SF_FILE_MAX);
	if (file_read_fd(kfd, "posthorn-keywords", buf, SF_FILE_MAX, &err) == 0)
	    (void) store_write_atomic(to_fd, "posthorn-keywords.tmp", "posthorn-keywords",
				      str_cstr(buf), str_len(buf), &err);
	str_free(&buf);
	(void) close(kfd);
    }
    if (sf_move_all(root_fd, to_fd, "cur", error_r) == 0
	&& sf_move_all(root_fd, to_fd, "new", error_r) == 0)
	ret = 0;
    (void) flock(box_lock, LOCK_UN);
    (void) close(box_lock);
    (void) close(to_fd);
    return ret;
}

/* store_folder_rename - see store.h */
int store_folder_rename(const char *root, const char *from, const char *to,
			const char **error_r)
{
    char src[SF_NAME_MAX + 2], dst[SF_NAME_MAX + 2];
    struct strv folders = STRV_INIT, moving = STRV_INIT;
    int root_fd, lock_fd = -1, ret = -1, e;
    size_t i, flen = strlen(from);

    if (!sf_name_ok(from) || !store_folder_valid(to)) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "invalid folder name \"%s\"",
			    sf_name_ok(from) ? to : from);
    }
    if (!store_folder_is_inbox(from) && sf_under(to, from, true)) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "cannot rename %s into itself", from);
    }
    if ((root_fd = sf_open_root_plain(root, store_folder_is_inbox(from), error_r)) < 0)
	return -1;
    if ((lock_fd = sf_lock(root_fd, error_r)) < 0)
	goto out;
    if (store_folder_is_inbox(from)) {
	if (sf_is_folder_dir(root_fd, to)) {
	    errno = EEXIST;
	    errtext_fail(&store_error, error_r, "folder %s exists", to);
	    goto out;
	}
	ret = sf_rename_inbox(root, root_fd, to, error_r);
	goto out;
    }
    if (store_folder_list(root, &folders, error_r) < 0)
	goto out;
    for (i = 0; i < folders.count; i++)
	if (sf_under(folders.items[i], from, true))
	    strv_add(&moving, folders.items[i]);
    if (moving.count == 0) {
	errno = ENOENT;
	errtext_fail(&store_error, error_r, "no folder %s", from);
	goto out;
    }
    /* every new name must be valid and free before anything moves */
    for (i = 0; i < moving.count; i++) {
	if (!fmt_try_buf(dst, sizeof(dst), "%s%s", to, moving.items[i] + flen)
	    || !store_folder_valid(dst)) {
	    errno = EINVAL;
	    errtext_fail(&store_error, error_r, "the new name of %s would be too long",
			 moving.items[i]);
	    goto out;
	}
	if (sf_is_folder_dir(root_fd, dst)) {
	    errno = EEXIST;
	    errtext_fail(&store_error, error_r, "folder %s exists", dst);
	    goto out;
	}
    }
    for (i = 0; i < moving.count; i++) {
	fmt_buf_or_panic(src, sizeof(src), ".%s", moving.items[i]);
	fmt_buf_or_panic(dst, sizeof(dst), ".%s%s", to, moving.items[i] + flen);
	if (renameat2(root_fd, src, root_fd, dst, RENAME_NOREPLACE) < 0) {
	    e = errno;
	    errtext_fail(&store_error, error_r, "rename %s: %s", moving.items[i], strerror(e));
	    (void) fsync(root_fd);
	    errno = e;
	    goto out;
	}
    }
    if (fsync(root_fd) < 0) {
	errtext_fail(&store_error, error_r, "fsync %s: %s", root, strerror(errno));
	goto out;
    }
    ret = sf_rename_meta(root_fd, from, to, error_r);
  out:
    e = errno;
    strv_fini(&folders);
    strv_fini(&moving);
    sf_unlock(&lock_fd);
    (void) close(root_fd);
    errno = e;
    return ret;
}

/* sf_forget_use - drop a deleted folder's special uses (best effort:
 * an entry left behind is ignored while the folder does not exist) */
static int sf_forget_use(int root_fd, const char *name)
{
    const char *err;
    int lock_fd, ret;

    if ((lock_fd = sf_lock(root_fd, &err)) < 0)
	return -1;
    ret = sf_use_set_locked(root_fd, name, 0, &err);
    sf_unlock(&lock_fd);
    return ret;
}

/* store_folder_status - see store.h. A read-only open without
 * STORE_RECENT: it synchronises (new mail gets its UIDs, so UIDNEXT is
 * exact) but claims no \Recent, so a later SELECT still gets them. */
int store_folder_status(const char *root, const char *name, unsigned items,
			struct store_folder_status *st, const char **error_r)
{
    struct store_mailbox *mb;
    const struct store_msg *m;
    size_t i, n;

    memset(st, 0, sizeof(*st));
    if (!store_folder_is_inbox(name) && !store_folder_valid(name)) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "invalid folder name \"%s\"", name);
    }
    /* INBOX exists even before its first message: make it */
    mb = store_open(root, store_folder_is_inbox(name) ? NULL : name,
		    STORE_READ_ONLY | (store_folder_is_inbox(name) ? STORE_CREATE : 0), error_r);
    if (mb == NULL)
	return -1;
    n = store_count(mb);
    st->messages = (uint32_t) n;
    st->uidnext = store_uidnext(mb);
    st->uidvalidity = store_uidvalidity(mb);
    st->recent = (uint32_t) store_recent_count(mb);
    st->highestmodseq = store_highestmodseq(mb);
    if (items & STORE_STATUS_UNSEEN) {
	for (i = 0; i < n; i++) {
	    m = store_msg(mb, i);
	    if (!(m->flags & STORE_FLAG_SEEN))
		st->unseen++;
	}
    }
    store_close(&mb);
    return 0;
}
