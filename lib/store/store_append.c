/* store_append.c - adding messages to a mailbox with their UIDs known
 * before returning (IMAP APPEND, COPY, MOVE; UIDPLUS): the file is made
 * durable in tmp/ (or hard-linked from the source mailbox), then under
 * the destination's lock it takes the next UID and goes straight into
 * cur/ under its final name, cur/ is fsynced and the index rewritten. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "msg.h"
#include "safe_file.h"
#include "str.h"

/* This library. */
#include "store.h"
#include "store_int.h"

/* store_unique - "SEC.M<usec>P<pid>R<random>.<host>" (local-delivery's
 * form; "/", ":" and "," in the host name escaped) */
void store_unique(char *buf, size_t size)
{
    static unsigned counter;
    struct timespec ts;
    uint64_t rnd = 0;
    char host[256], esc[256 * 4 + 1], *p = esc;
    size_t i;

    (void) clock_gettime(CLOCK_REALTIME, &ts);
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd))
	rnd = ((uint64_t) ts.tv_nsec << 20) ^ (uint64_t) getpid() ^ ++counter;
    if (gethostname(host, sizeof(host)) < 0)
	host[0] = 0;
    host[sizeof(host) - 1] = 0;
    for (i = 0; host[i] && i < 64; i++) {
	const char *rep = host[i] == '/' ? "\\057" : host[i] == ':' ? "\\072"
	    : host[i] == ',' ? "\\054" : NULL;

	if (rep) {
	    memcpy(p, rep, 4);
	    p += 4;
	} else if ((unsigned char) host[i] > ' ' && (unsigned char) host[i] < 0x7f) {
	    *p++ = host[i];
	}
    }
    *p = 0;
    fmt_buf_cut(buf, size, "%lld.M%06ldP%ldR%016llx.%s", (long long) ts.tv_sec,
		ts.tv_nsec / 1000, (long) getpid(), (unsigned long long) rnd,
		*esc ? esc : "localhost");
}

/* sa_write_tmp - data (from fd, or data[0..len)) into tmp/key: fsynced,
 * with its mtime; the sizes. 0, or -1 (nothing left) */
static int sa_write_tmp(int tmp_fd, const char *key, int in_fd, const void *data, size_t len,
			time_t mtime, off_t *size_r, off_t *crlf_r, const char **error_r)
{
    char buf[65536], prev = 0;
    const char *chunk;
    off_t size = 0, crlf = 0;
    ssize_t n;
    size_t i, done = 0;
    int fd, e;

    fd = openat(tmp_fd, key, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
	return errtext_fail(&store_error, error_r, "create tmp/%s: %s", key, strerror(errno));
    for (;;) {
	if (in_fd >= 0) {
	    n = read(in_fd, buf, sizeof(buf));
	    if (n < 0 && errno == EINTR)
		continue;
	    if (n < 0)
		goto fail;
	    chunk = buf;
	} else {
	    n = (ssize_t) (len - done > sizeof(buf) ? sizeof(buf) : len - done);
	    chunk = (const char *) data + done;
	    done += (size_t) n;
	}
	if (n == 0)
	    break;
	for (i = 0; i < (size_t) n; i++) {
	    if (chunk[i] == '\n' && prev != '\r')
		crlf++;
	    prev = chunk[i];
	}
	if (write_all_fd(fd, chunk, (size_t) n) < 0)
	    goto fail;
	size += n;
    }
    if (fsync(fd) < 0)
	goto fail;
    if (mtime > 0) {
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};

	if (futimens(fd, ts) < 0)
	    goto fail;
    }
    if (close(fd) < 0) {
	fd = -1;
	goto fail;
    }
    *size_r = size;
    *crlf_r = size + crlf;
    return 0;
  fail:
    e = errno;
    if (fd >= 0)
	(void) close(fd);
    (void) unlinkat(tmp_fd, key, 0);
    errno = e;
    return errtext_fail(&store_error, error_r, "write tmp/%s: %s", key, strerror(e));
}

/* sa_tmp_dir - the mailbox's tmp/ */
static int sa_tmp_dir(struct store_mailbox *mb, const char **error_r)
{
    const char *err;
    int fd;

    if ((fd = safe_openat_dir(mb->dir_fd, "tmp", true, 0700, &err)) < 0)
	return errtext_fail(&store_error, error_r, "%s: %s", mb->path, err);
    return fd;
}

/* sa_finish - fsync cur/ and record the new files in the index (the
 * lock is held); 0 or -1 */
static int sa_finish(struct store_mailbox *mb, const char **error_r)
{
    const char *err;

    if (fsync(mb->cur_fd) < 0)
	return errtext_fail(&store_error, error_r, "fsync %s/cur: %s", mb->path,
			    strerror(errno));
    if (store_sync_int(mb, STORE_SYNC_COMMIT, NULL, &err) < 0)
	msg_warn("%s", err);		/* (the names carry the UIDs) */
    return 0;
}

/* store_append - a new message with its UID */
int store_append(struct store_mailbox *mb, int fd, const void *data, size_t len,
		 uint32_t flags, time_t internaldate, uint32_t *uidvalidity_r, uint32_t *uid_r,
		 const char **error_r)
{
    char key[256], name[NAME_MAX + 1];
    off_t size, crlf;
    uint32_t uid;
    int tmp_fd, e;

    if (!mb->can_write || mb->in_batch) {
	errno = mb->in_batch ? EBUSY : EROFS;
	return errtext_fail(&store_error, error_r, "%s: cannot add mail %s", mb->path,
			    mb->in_batch ? "inside a batch" : "(read-only)");
    }
    if ((tmp_fd = sa_tmp_dir(mb, error_r)) < 0)
	return -1;
    store_unique(key, sizeof(key));
    if (sa_write_tmp(tmp_fd, key, fd, data, len, internaldate, &size, &crlf, error_r) < 0) {
	e = errno;
	(void) close(tmp_fd);
	errno = e;
	return -1;
    }
    store_lock(mb);
    if (store_sync_int(mb, STORE_SYNC_COMMIT, NULL, error_r) < 0)
	goto fail;
    uid = mb->disk_uidnext;
    if (uid == 0 || uid == UINT32_MAX) {
	errno = ENOSPC;
	errtext_fail(&store_error, error_r, "%s: UIDs exhausted", mb->path);
	goto fail;
    }
    if (!store_name_make(name, sizeof(name), key, strlen(key), size, crlf, uid, flags)) {
	errno = ENAMETOOLONG;
	errtext_fail(&store_error, error_r, "%s: file name too long", mb->path);
	goto fail;
    }
    if (store_rename(tmp_fd, key, mb->cur_fd, name, true) < 0) {
	errtext_fail(&store_error, error_r, "rename tmp/%s to cur/: %s", key, strerror(errno));
	goto fail;
    }
    if (sa_finish(mb, error_r) < 0) {
	e = errno;
	(void) unlinkat(mb->cur_fd, name, 0);
	store_unlock(mb);
	(void) close(tmp_fd);
	errno = e;
	return -1;
    }
    if (uidvalidity_r)
	*uidvalidity_r = mb->disk_uidvalidity;
    if (uid_r)
	*uid_r = uid;
    store_unlock(mb);
    (void) close(tmp_fd);
    return 0;
  fail:
    e = errno;
    store_unlock(mb);
    (void) unlinkat(tmp_fd, key, 0);
    (void) close(tmp_fd);
    errno = e ? e : EIO;
    return -1;
}

/* sa_flags_for - src's flags as dest's: keyword letters by name */
static uint32_t sa_flags_for(struct store_mailbox *src, struct store_mailbox *dest,
			     uint32_t flags)
{
    const char *name, *err;
    uint32_t out = flags & (STORE_FLAG_KEYWORD(0) - 1);
    unsigned n;
    int k;

    if (src == dest || strcmp(src->path, dest->path) == 0)
	return flags;
    for (n = 0; n < STORE_KEYWORDS_MAX; n++) {
	if (!(flags & STORE_FLAG_KEYWORD(n)))
	    continue;
	if ((name = store_keyword_name(src, n)) == NULL)
	    continue;			/* (a letter without a name: dropped) */
	if ((k = store_keyword_index(dest, name, true, &err)) >= 0)
	    out |= STORE_FLAG_KEYWORD(k);
    }
    return out;
}

/* sa_copy_file - message i of src copied (not linked) into dest's cur/
 * as name: through tmp/, fsynced, with the source's mtime */
static int sa_copy_file(struct store_mailbox *src, size_t i, struct store_mailbox *dest,
			const char *key, const char *name, const char **error_r)
{
    const struct store_msg *m = store_msg(src, i);
    off_t size, crlf;
    int in, tmp_fd, ret;

    if ((in = store_open_msg(src, i, error_r)) < 0)
	return -1;
    if ((tmp_fd = sa_tmp_dir(dest, error_r)) < 0) {
	(void) close(in);
	return -1;
    }
    ret = sa_write_tmp(tmp_fd, key, in, NULL, 0, m->mtime, &size, &crlf, error_r);
    (void) close(in);
    if (ret == 0 && store_rename(tmp_fd, key, dest->cur_fd, name, true) < 0) {
	ret = errtext_fail(&store_error, error_r, "rename tmp/%s to cur/: %s", key,
			   strerror(errno));
	(void) unlinkat(tmp_fd, key, 0);
    }
    (void) close(tmp_fd);
    return ret;
}

/* store_copy - new copies (hard links where possible) with new UIDs */
int store_copy(struct store_mailbox *src, const size_t *idx, size_t n,
	       struct store_mailbox *dest, uint32_t *uids_r, uint32_t *uidvalidity_r,
	       const char **error_r)
{
    char key[256], (*names)[NAME_MAX + 1];
    uint32_t *flags, uid;
    const struct store_msg *m;
    size_t k, made = 0;
    int tries, e = 0;

    if (!dest->can_write || dest->in_batch || src->in_batch) {
	errno = dest->can_write ? EBUSY : EROFS;
	return errtext_fail(&store_error, error_r, "%s: cannot add mail %s", dest->path,
			    dest->can_write ? "inside a batch" : "(read-only)");
    }
    for (k = 0; k < n; k++)
	if (idx[k] >= store_count(src)) {
	    errno = EINVAL;
	    return errtext_fail(&store_error, error_r, "no message %zu", idx[k] + 1);
	}
    names = mem_alloc_array(n ? n : 1, sizeof(*names));
    flags = mem_alloc_array(n ? n : 1, sizeof(*flags));
    for (k = 0; k < n; k++)
	flags[k] = sa_flags_for(src, dest, store_msg(src, idx[k])->flags);
    store_lock(dest);
    if (store_sync_int(dest, STORE_SYNC_COMMIT, NULL, error_r) < 0) {
	e = errno;
	goto fail;
    }
    uid = dest->disk_uidnext;
    for (k = 0; k < n; k++) {
	if (uids_r)
	    uids_r[k] = 0;
	names[k][0] = 0;
	m = store_msg(src, idx[k]);
	if (uid == 0 || uid == UINT32_MAX) {
	    e = ENOSPC;
	    errtext_fail(&store_error, error_r, "%s: UIDs exhausted", dest->path);
	    goto fail;
	}
	store_unique(key, sizeof(key));
	if (!store_name_make(names[k], sizeof(names[k]), key, strlen(key), m->size,
			     m->crlf_size, uid, flags[k])) {
	    e = ENAMETOOLONG;
	    errtext_fail(&store_error, error_r, "%s: file name too long", dest->path);
	    goto fail;
	}
	for (tries = 0; tries < 3; tries++) {
	    if (linkat(m->in_new ? src->new_fd : src->cur_fd, m->name, dest->cur_fd, names[k], 0)
		== 0)
		break;
	    if (errno == ENOENT && store_relocate(src, idx[k]) == 0) {
		m = store_msg(src, idx[k]);
		continue;
	    }
	    if (errno == ENOENT) {
		tries = -1;		/* expunged meanwhile: not copied */
		break;
	    }
	    if (errno == EXDEV || errno == EMLINK || errno == EPERM || errno == EACCES) {
		if (sa_copy_file(src, idx[k], dest, key, names[k], error_r) < 0) {
		    if (errno == ENOENT) {
			tries = -1;
			break;
		    }
		    e = errno;
		    goto fail;
		}
		break;
	    }
	    e = errno;
	    errtext_fail(&store_error, error_r, "link %s/cur/%s: %s", dest->path, names[k],
			 strerror(e));
	    goto fail;
	}
	if (tries < 0 || tries == 3) {
	    names[k][0] = 0;
	    continue;
	}
	made = k + 1;
	if (uids_r)
	    uids_r[k] = uid;
	uid++;
    }
    if (sa_finish(dest, error_r) < 0) {
	e = errno;
	made = n;
	goto fail;
    }
    if (uidvalidity_r)
	*uidvalidity_r = dest->disk_uidvalidity;
    store_unlock(dest);
    mem_free(&names);
    mem_free(&flags);
    return 0;
  fail:
    /* nothing copied: remove what was made (made: up to there) */
    for (k = 0; k < made && k < n; k++)
	if (names[k][0])
	    (void) unlinkat(dest->cur_fd, names[k], 0);
    if (made > 0)
	(void) fsync(dest->cur_fd);
    store_unlock(dest);
    mem_free(&names);
    mem_free(&flags);
    errno = e ? e : EIO;
    return -1;
}
