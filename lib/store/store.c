/* store.c - a Maildir mailbox with stable UIDs (store.h): opening, the
 * synchronisation of the index with cur/ and new/ under the mailbox
 * lock (new mail gets UIDs and moves to cur/), reading, flag changes
 * and expunges. docs/mailstore.md has the design. */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
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

struct store_mailbox {
    char *path;			/* the mailbox directory */
    int mode;			/* STORE_READ_ONLY or STORE_READ_WRITE */
    int dir_fd;
    int cur_fd;
    int new_fd;
    int lock_fd;		/* posthorn-lock, -1 if it cannot be had */
    int session_fd;		/* store_session_lock's file, or -1 */
    bool can_write;		/* the directory takes renames and files */
    uint32_t uidvalidity;
    uint32_t uidnext;
    struct store_msg *msgs;	/* ascending UID; names owned */
    size_t count;
};

/* A file found in cur/ or new/ during a synchronisation. */
struct sm_entry {
    char *name;			/* owned */
    struct store_name parsed;
    bool in_new;
    bool known;			/* sizes and mtime are set */
    bool dupkey;		/* a unique part seen before: renamed to
				 * KEY-UID to make it unique */
    uint32_t uid;		/* 0: none yet */
    off_t size;
    off_t crlf_size;
    time_t mtime;
};

struct sm_list {
    struct sm_entry *v;
    size_t count;
    size_t cap;
};

/* sm_list_free - free the entries */
static void sm_list_free(struct sm_list *l)
{
    size_t i;

    for (i = 0; i < l->count; i++)
	mem_free(&l->v[i].name);
    mem_free(&l->v);
    l->count = l->cap = 0;
}

/* sm_scan - add the message files of directory fd (cur/ or new/) */
static int sm_scan(int fd, bool in_new, struct sm_list *l, const char **error_r)
{
    struct sm_entry *e;
    struct dirent *d;
    DIR *dir;
    int dfd;

    if ((dfd = dup(fd)) < 0 || (dir = fdopendir(dfd)) == NULL) {
	if (dfd >= 0)
	    (void) close(dfd);
	return errtext_fail(&store_error, error_r, "open %s/: %s", in_new ? "new" : "cur",
			    strerror(errno));
    }
    rewinddir(dir);
    errno = 0;
    while ((d = readdir(dir)) != NULL) {
	if (d->d_name[0] == '.'
	    || (d->d_type != DT_REG && d->d_type != DT_UNKNOWN))
	    continue;
	if (l->count == l->cap) {
	    l->cap = l->cap ? mem_size_mul(l->cap, 2) : 256;
	    l->v = mem_realloc(l->v, mem_size_mul(l->cap, sizeof(*l->v)));
	}
	e = &l->v[l->count];
	memset(e, 0, sizeof(*e));
	if (!store_name_parse(d->d_name, &e->parsed))
	    continue;
	e->name = mem_strdup(d->d_name);
	e->in_new = in_new;
	l->count++;
	errno = 0;
    }
    if (errno != 0) {
	int err = errno;

	(void) closedir(dir);
	return errtext_fail(&store_error, error_r, "read %s/: %s", in_new ? "new" : "cur",
			    strerror(err));
    }
    (void) closedir(dir);
    return 0;
}

/* sm_from_index - the entries of cur/ as the index lists them */
static void sm_from_index(const struct store_index *idx, struct sm_list *l)
{
    struct sm_entry *e;
    size_t i;

    l->cap = idx->count + 16;
    l->v = mem_alloc_array(l->cap, sizeof(*l->v));
    for (i = 0; i < idx->count; i++) {
	e = &l->v[l->count];
	memset(e, 0, sizeof(*e));
	if (!store_name_parse(idx->recs[i].name, &e->parsed))
	    continue;
	e->name = mem_strdup(idx->recs[i].name);
	l->count++;
    }
}

/* sm_find_name - the current name in cur/ of the message with key; NULL
 * if there is none (the result is owned by the caller) */
static char *sm_find_name(struct store_mailbox *mb, const char *key, size_t keylen)
{
    struct dirent *d;
    char *found = NULL;
    DIR *dir;
    int dfd;

    if ((dfd = dup(mb->cur_fd)) < 0)
	return NULL;
    if ((dir = fdopendir(dfd)) == NULL) {
	(void) close(dfd);
	return NULL;
    }
    rewinddir(dir);
    while ((d = readdir(dir)) != NULL)
	if (d->d_name[0] != '.' && store_name_key_is(d->d_name, key, keylen)) {
	    found = mem_strdup(d->d_name);
	    break;
	}
    (void) closedir(dir);
    return found;
}

/* sm_entry_cmp_key - qsort by unique part (then whole name) */
static int sm_entry_cmp_key(const void *a, const void *b)
{
    const struct sm_entry *x = a, *y = b;
    size_t n = x->parsed.keylen < y->parsed.keylen ? x->parsed.keylen : y->parsed.keylen;
    int c = memcmp(x->name, y->name, n);

    if (c != 0)
	return c;
    if (x->parsed.keylen != y->parsed.keylen)
	return x->parsed.keylen < y->parsed.keylen ? -1 : 1;
    /* the same message twice (cur/ and new/ after a crash?): cur/ first */
    if (x->in_new != y->in_new)
	return x->in_new ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* sm_entry_cmp_arrival - qsort pointers by (mtime, name): the order in
 * which fresh UIDs are given */
static int sm_entry_cmp_arrival(const void *a, const void *b)
{
    const struct sm_entry *x = *(const struct sm_entry *const *) a;
    const struct sm_entry *y = *(const struct sm_entry *const *) b;

    if (x->mtime != y->mtime)
	return x->mtime < y->mtime ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* sm_entry_cmp_uid - qsort pointers by UID */
static int sm_entry_cmp_uid(const void *a, const void *b)
{
    uint32_t x = (*(const struct sm_entry *const *) a)->uid;
    uint32_t y = (*(const struct sm_entry *const *) b)->uid;

    return x < y ? -1 : x > y;
}

/*
 * sm_measure - fill in size, CRLF size and mtime of e from the file
 * (the CRLF size from the name's W= when its S= matches the file).
 * 0; 1 if the file is gone; -1 on error.
 */
static int sm_measure(struct store_mailbox *mb, struct sm_entry *e, const char **error_r)
{
    struct stat st;
    off_t size, crlf;
    int fd, ret;

    fd = openat(e->in_new ? mb->new_fd : mb->cur_fd, e->name,
		O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && errno == ENOENT)
	return 1;
    if (fd < 0)
	return errtext_fail(&store_error, error_r, "open %s/%s/%s: %s", mb->path,
			    e->in_new ? "new" : "cur", e->name, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	(void) close(fd);
	return 1;			/* not a message: leave it alone */
    }
    e->mtime = st.st_mtime;
    if (e->parsed.size == (long long) st.st_size && e->parsed.crlf_size >= e->parsed.size) {
	e->size = st.st_size;
	e->crlf_size = (off_t) e->parsed.crlf_size;
	ret = 0;
    } else if ((ret = store_crlf_size(fd, &size, &crlf, error_r)) == 0) {
	e->size = size;
	e->crlf_size = crlf;
    }
    (void) close(fd);
    if (ret == 0)
	e->known = true;
    return ret;
}

/* sm_rename - renameat, never replacing a file when noreplace (where
 * the file system cannot, link and unlink, as local-delivery does) */
static int sm_rename(int from_fd, const char *from, int to_fd, const char *to, bool noreplace)
{
    if (!noreplace)
	return renameat(from_fd, from, to_fd, to);
    if (renameat2(from_fd, from, to_fd, to, RENAME_NOREPLACE) == 0)
	return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
	return -1;
    if (linkat(from_fd, from, to_fd, to, 0) < 0)
	return -1;
    (void) unlinkat(from_fd, from, 0);
    return 0;
}

/* sm_lock - take the mailbox lock (if there is one) */
static void sm_lock(struct store_mailbox *mb)
{
    if (mb->lock_fd >= 0)
	while (flock(mb->lock_fd, LOCK_EX) < 0 && errno == EINTR)
	    continue;
}

/* sm_unlock - release it */
static void sm_unlock(struct store_mailbox *mb)
{
    if (mb->lock_fd >= 0)
	(void) flock(mb->lock_fd, LOCK_UN);
}

/* sm_new_uidvalidity - a fresh UIDVALIDITY: the time, above old */
static uint32_t sm_new_uidvalidity(uint32_t old)
{
    uint32_t uv = (uint32_t) time(NULL);

    if (uv <= old)
	uv = old + 1;
    return uv ? uv : 1;
}

/* sm_free_msgs - free a snapshot */
static void sm_free_msgs(struct store_msg *msgs, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++) {
	char *name = (char *) msgs[i].name;

	mem_free(&name);
    }
    mem_free(&msgs);
}

/*
 * sm_sync - bring index and snapshot up to date, under the lock:
 * 1. read the index and the anchor; scan cur/ and new/;
 * 2. decide UIDVALIDITY and the UIDNEXT floor (see docs/mailstore.md:
 *    a valid index is the truth; without one, UIDs are kept from the
 *    names' U= when the anchor or the readable header says which
 *    UIDVALIDITY they belong to and how far UIDs went);
 * 3. give each cur/ file its UID (index, else its U=, else fresh), new/
 *    files fresh UIDs in arrival order;
 * 4. move new/ files to cur/ (and fix cur/ names whose U=, S= or W=
 *    are missing or wrong), fsync cur/ and new/;
 * 5. write index (and anchor) if anything changed; the snapshot.
 */
static int sm_sync(struct store_mailbox *mb, const char **error_r)
{
    struct store_index idx;
    struct sm_list l = {NULL, 0, 0};
    struct sm_entry *e, **order = NULL;
    struct store_rec *rec, *recs = NULL;
    struct store_msg *msgs;
    uint32_t a_uv = 0, a_next = 0, uv, next, maxuid = 0;
    bool have_anchor, trusted, changed = false, moved_new = false, renamed = false;
    size_t from_index = 0;
    struct timespec now;
    struct stat st;
    long long cur_sec = 0;
    long cur_nsec = 0;
    char newname[NAME_MAX + 1], keybuf[NAME_MAX + 1];
    const char *err, *key;
    size_t i, n, nfresh, keylen;
    int ret = -1, r;

    sm_lock(mb);
    store_index_read(mb->dir_fd, &idx);
    have_anchor = store_anchor_read(mb->dir_fd, &a_uv, &a_next) == 0;
    trusted = idx.state == STORE_INDEX_VALID && (!have_anchor || a_uv == idx.uidvalidity);
    /* cur/ unchanged since a valid index saw it (its mtime then was
     * old enough that no later change can share it): the index's list
     * is cur/'s, without reading the directory */
    if (trusted && idx.cur_sec != 0 && fstat(mb->cur_fd, &st) == 0
	&& (long long) st.st_mtim.tv_sec == idx.cur_sec && st.st_mtim.tv_nsec == idx.cur_nsec)
	sm_from_index(&idx, &l);
    else if (sm_scan(mb->cur_fd, false, &l, error_r) < 0)
	goto out;
    if (sm_scan(mb->new_fd, true, &l, error_r) < 0)
	goto out;

    /* 2. UIDVALIDITY and the floor for new UIDs */
    if (trusted) {
	uv = idx.uidvalidity;
	next = idx.uidnext;
	if (have_anchor && a_next > next)
	    next = a_next;
    } else if (have_anchor && (idx.uidvalidity == 0 || idx.uidvalidity == a_uv)) {
	uv = a_uv;
	next = idx.uidnext > a_next ? idx.uidnext : a_next;
    } else if (!have_anchor && idx.uidvalidity != 0) {
	uv = idx.uidvalidity;
	next = idx.uidnext;
    } else {
	uv = sm_new_uidvalidity(have_anchor ? a_uv : idx.uidvalidity);
	for (i = 0; i < l.count; i++)
	    if (l.v[i].parsed.uid != 0) {
		/* names with U=: an index existed, made this very second
		 * perhaps; its UIDVALIDITY was the time then, so go past */
		uv = sm_new_uidvalidity(uv);
		break;
	    }
	next = 1;
    }
    if (idx.state != STORE_INDEX_MISSING && !trusted)
	msg_warn("%s: the mailbox index is damaged; rebuilt from the Maildir%s", mb->path,
		 uv == idx.uidvalidity || uv == a_uv ? " (UIDs kept)" : " (new UIDVALIDITY)");
    if (!trusted || !have_anchor || a_uv != uv)
	changed = true;

    /* 3. UIDs for cur/, in key order (a key twice: the first keeps it) */
    if (l.count > 1)
	qsort(l.v, l.count, sizeof(*l.v), sm_entry_cmp_key);
    for (i = 0; i < l.count; i++) {
	e = &l.v[i];
	if (i > 0 && e->parsed.keylen == l.v[i - 1].parsed.keylen
	    && memcmp(e->name, l.v[i - 1].name, e->parsed.keylen) == 0) {
	    /* the same unique name twice: a copy from outside, or new/
	     * and cur/ after a crash; the later one is another message */
	    e->parsed.uid = 0;
	    e->dupkey = true;
	}
	rec = e->dupkey ? NULL : store_index_find(&idx, e->name, e->parsed.keylen);
	if (e->in_new || e->dupkey)
	    continue;
	if (trusted && rec && rec->uid) {
	    from_index++;
	    if (strcmp(rec->name, e->name) != 0)
		changed = true;		/* (flags changed: keep the names current) */
	    e->uid = rec->uid;
	    e->size = rec->size;
	    e->crlf_size = rec->crlf_size;
	    e->mtime = rec->mtime;
	    e->known = true;
	} else if (trusted) {
	    /* not in a valid index: keep a U= only above every UID used */
	    if (e->parsed.uid >= next && e->parsed.uid < next + (1u << 24))
		e->uid = e->parsed.uid;
	    changed = true;
	} else {
	    e->uid = e->parsed.uid ? e->parsed.uid : (rec ? rec->uid : 0);
	}
    }
    /* no UID twice: sort by UID, later duplicates get fresh ones */
    order = mem_alloc_array(l.count ? l.count : 1, sizeof(*order));
    for (i = n = 0; i < l.count; i++)
	if (l.v[i].uid)
	    order[n++] = &l.v[i];
    qsort(order, n, sizeof(*order), sm_entry_cmp_uid);
    for (i = 1; i < n; i++)
	if (order[i]->uid == order[i - 1]->uid) {
	    order[i]->uid = 0;
	    order[i]->known = false;
	    changed = true;
	}
    for (i = 0; i < n; i++)
	if (order[i]->uid > maxuid)
	    maxuid = order[i]->uid;
    if (maxuid >= next)
	next = maxuid + 1;

    /* sizes of what the index did not have; files gone are dropped */
    for (i = 0; i < l.count; i++) {
	e = &l.v[i];
	if (e->known)
	    continue;
	if ((r = sm_measure(mb, e, error_r)) < 0)
	    goto out;
	if (r > 0) {
	    mem_free(&e->name);
	    e->uid = 0;
	}
    }
    /* fresh UIDs in arrival order */
    for (i = nfresh = 0; i < l.count; i++)
	if (l.v[i].name && l.v[i].uid == 0)
	    order[nfresh++] = &l.v[i];
    qsort(order, nfresh, sizeof(*order), sm_entry_cmp_arrival);
    for (i = 0; i < nfresh; i++) {
	if (next == UINT32_MAX) {
	    /* 2^32 - 1 UIDs used: the operator renames the index away
	     * and the anchor too (a new UIDVALIDITY) */
	    errtext_fail(&store_error, error_r, "%s: UIDs exhausted", mb->path);
	    goto out;
	}
	order[i]->uid = next++;
	changed = true;
    }

    /* 4. names that carry the UID and sizes; new/ to cur/ */
    for (i = 0; mb->can_write && i < l.count; i++) {
	e = &l.v[i];
	if (e->name == NULL)
	    continue;
	if (!e->in_new && !e->dupkey && e->parsed.uid == e->uid
	    && e->parsed.size == (long long) e->size
	    && e->parsed.crlf_size == (long long) e->crlf_size)
	    continue;
	if (e->dupkey) {
	    if (!fmt_try_buf(keybuf, sizeof(keybuf), "%.*s-%lu", (int) e->parsed.keylen,
			     e->name, (unsigned long) e->uid))
		continue;
	    key = keybuf;
	    keylen = strlen(keybuf);
	} else {
	    key = e->name;
	    keylen = e->parsed.keylen;
	}
	if (!store_name_make(newname, sizeof(newname), key, keylen, e->size,
			     e->crlf_size, e->uid, e->parsed.flags)) {
	    if (!e->in_new || e->dupkey)
		continue;		/* keeps its name (and its UID in the index) */
	    if (!e->in_new)
		continue;		/* keeps its name (and its UID in the index) */
	    fmt_buf_cut(newname, sizeof(newname), "%.*s:2,", (int) e->parsed.keylen, e->name);
	}
	if (sm_rename(e->in_new ? mb->new_fd : mb->cur_fd, e->name, mb->cur_fd, newname,
		      e->in_new) < 0) {
	    if (errno == ENOENT && !e->in_new) {
		/* renamed behind our back (a tool without the lock) */
		char *found = sm_find_name(mb, e->name, e->parsed.keylen);

		if (found) {
		    mem_free(&e->name);
		    e->name = found;
		    continue;
		}
	    }
	    if (errno == ENOENT) {
		mem_free(&e->name);
		continue;
	    }
	    msg_warn("%s: cannot rename %s/%s to cur/%s: %s", mb->path,
		     e->in_new ? "new" : "cur", e->name, newname, strerror(errno));
	    if (e->in_new) {
		mem_free(&e->name);	/* stays in new/ for the next time */
		continue;
	    }
	    continue;
	}
	if (e->in_new)
	    moved_new = true;
	renamed = true;
	mem_free(&e->name);
	e->name = mem_strdup(newname);
	(void) store_name_parse(e->name, &e->parsed);
	e->in_new = false;
	e->dupkey = false;
    }
    if (renamed && fsync(mb->cur_fd) < 0) {
	errtext_fail(&store_error, error_r, "fsync %s/cur: %s", mb->path, strerror(errno));
	goto out;
    }
    if (moved_new)
	(void) fsync(mb->new_fd);
    /* cur/'s mtime goes into the index only when it is 2 s old: a
     * change within the same clock tick would not change it */
    (void) clock_gettime(CLOCK_REALTIME, &now);
    if (fstat(mb->cur_fd, &st) == 0 && st.st_mtim.tv_sec + 2 <= now.tv_sec) {
	cur_sec = (long long) st.st_mtim.tv_sec;
	cur_nsec = st.st_mtim.tv_nsec;
    }
    if (cur_sec != idx.cur_sec || cur_nsec != idx.cur_nsec)
	changed = true;

    /* 5. the index; the snapshot (messages still in new/ are left out) */
    recs = mem_alloc_array(l.count ? l.count : 1, sizeof(*recs));
    msgs = mem_alloc_array(l.count ? l.count : 1, sizeof(*msgs));
    memset(msgs, 0, (l.count ? l.count : 1) * sizeof(*msgs));
    for (i = n = 0; i < l.count; i++) {
	e = &l.v[i];
	if (e->name == NULL || e->in_new || e->uid == 0 || e->dupkey)
	    continue;		/* (a duplicate we could not rename: left out) */
	order[n] = e;
	recs[n].name = e->name;		/* (borrowed until the write) */
	recs[n].keylen = e->parsed.keylen;
	recs[n].uid = e->uid;
	recs[n].size = e->size;
	recs[n].crlf_size = e->crlf_size;
	recs[n].mtime = e->mtime;
	n++;
    }
    if (n != idx.count)
	changed = true;
    if (changed && mb->can_write) {
	if (store_index_write(mb->dir_fd, uv, next, cur_sec, cur_nsec, recs, n, &err) < 0)
	    msg_warn("%s: %s", mb->path, err);
	else if ((!have_anchor || a_uv != uv || (from_index < idx.count && a_next < next))
		 && store_anchor_write(mb->dir_fd, uv, next, &err) < 0)
	    /* (messages gone without store_expunge, by another tool:
	     * the anchor covers their UIDs as an expunge would) */
	    msg_warn("%s: %s", mb->path, err);
    }
    qsort(order, n, sizeof(*order), sm_entry_cmp_uid);
    for (i = 0; i < n; i++) {
	e = order[i];
	msgs[i].uid = e->uid;
	msgs[i].flags = store_flags_parse(e->name);
	msgs[i].size = e->size;
	msgs[i].crlf_size = e->crlf_size;
	msgs[i].mtime = e->mtime;
	msgs[i].name = e->name;
	e->name = NULL;
    }
    sm_free_msgs(mb->msgs, mb->count);
    mb->msgs = msgs;
    mb->count = n;
    mb->uidvalidity = uv;
    mb->uidnext = next;
    ret = 0;

  out:
    sm_unlock(mb);
    store_index_free(&idx);
    sm_list_free(&l);
    mem_free(&order);
    mem_free(&recs);
    return ret;
}

/* sm_is_inbox - NULL, "" or "INBOX" in any case */
static bool sm_is_inbox(const char *folder)
{
    return folder == NULL || *folder == 0 || strcasecmp(folder, "INBOX") == 0;
}

/* store_open - open (and synchronise) a mailbox */
struct store_mailbox *store_open(const char *root, const char *folder, int mode,
				 const char **error_r)
{
    struct store_mailbox *mb;
    bool create = (mode & STORE_CREATE) != 0;
    const char *err;
    char sub[256];
    int root_fd, fd, e = 0;

    if (!sm_is_inbox(folder) && !store_folder_valid(folder)) {
	errno = EINVAL;
	errtext_fail(&store_error, error_r, "invalid folder name \"%s\"", folder);
	return NULL;
    }
    if ((root_fd = safe_open_dir(root, create, 0700, &err)) < 0) {
	e = errno;
	errtext_fail(&store_error, error_r, "%s", err);
	errno = e;
	return NULL;
    }
    mb = mem_zalloc(sizeof(*mb));
    mb->mode = mode & STORE_READ_WRITE;
    mb->cur_fd = mb->new_fd = mb->lock_fd = mb->session_fd = -1;
    if (sm_is_inbox(folder)) {
	mb->dir_fd = root_fd;
	mb->path = mem_strdup(root);
    } else {
	fmt_buf_or_panic(sub, sizeof(sub), ".%s", folder);
	mb->dir_fd = safe_openat_dir(root_fd, sub, create, 0700, &err);
	e = errno;
	(void) close(root_fd);
	mb->path = mem_alloc(strlen(root) + strlen(sub) + 2);
	fmt_buf_or_panic(mb->path, strlen(root) + strlen(sub) + 2, "%s/%s", root, sub);
	if (mb->dir_fd < 0) {
	    errtext_fail(&store_error, error_r, "%s: %s", root, err);
	    goto fail;
	}
	if (create && (fd = openat(mb->dir_fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW
				   | O_CLOEXEC, 0600)) >= 0)
	    (void) close(fd);
    }
    if ((mb->cur_fd = safe_openat_dir(mb->dir_fd, "cur", create, 0700, &err)) < 0
	|| (mb->new_fd = safe_openat_dir(mb->dir_fd, "new", create, 0700, &err)) < 0
	|| (fd = safe_openat_dir(mb->dir_fd, "tmp", create, 0700, &err)) < 0) {
	e = errno;
	errtext_fail(&store_error, error_r, "%s: %s", mb->path, err);
	goto fail;
    }
    (void) close(fd);
    mb->lock_fd = openat(mb->dir_fd, STORE_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			 0600);
    mb->can_write = mb->lock_fd >= 0;
    if (mb->lock_fd < 0)
	mb->lock_fd = openat(mb->dir_fd, STORE_LOCK_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (!mb->can_write && mb->mode == STORE_READ_WRITE) {
	e = errno == 0 ? EACCES : errno;
	errtext_fail(&store_error, error_r, "%s: cannot write the mailbox: %s", mb->path,
		     strerror(e));
	goto fail;
    }
    if (sm_sync(mb, &err) < 0) {
	e = EIO;
	errtext_fail(&store_error, error_r, "%s", err);
	goto fail;
    }
    return mb;

  fail:
    store_close(&mb);
    errno = e;
    return NULL;
}

/* store_close - release everything */
void store_close(struct store_mailbox **mbp)
{
    struct store_mailbox *mb = *mbp;

    if (mb == NULL)
	return;
    if (mb->dir_fd >= 0)
	(void) close(mb->dir_fd);
    if (mb->cur_fd >= 0)
	(void) close(mb->cur_fd);
    if (mb->new_fd >= 0)
	(void) close(mb->new_fd);
    if (mb->lock_fd >= 0)
	(void) close(mb->lock_fd);
    if (mb->session_fd >= 0)
	(void) close(mb->session_fd);
    sm_free_msgs(mb->msgs, mb->count);
    mem_free(&mb->path);
    mem_free(mbp);
}

uint32_t store_uidvalidity(const struct store_mailbox *mb)
{
    return mb->uidvalidity;
}

uint32_t store_uidnext(const struct store_mailbox *mb)
{
    return mb->uidnext;
}

size_t store_count(const struct store_mailbox *mb)
{
    return mb->count;
}

const char *store_path(const struct store_mailbox *mb)
{
    return mb->path;
}

/* store_msg - message i of the snapshot */
const struct store_msg *store_msg(const struct store_mailbox *mb, size_t i)
{
    return i < mb->count ? &mb->msgs[i] : NULL;
}

/* store_find_uid - binary search */
long store_find_uid(const struct store_mailbox *mb, uint32_t uid)
{
    size_t lo = 0, hi = mb->count, mid;

    while (lo < hi) {
	mid = lo + (hi - lo) / 2;
	if (mb->msgs[mid].uid == uid)
	    return (long) mid;
	if (mb->msgs[mid].uid < uid)
	    lo = mid + 1;
	else
	    hi = mid;
    }
    return -1;
}

/* store_refresh - synchronise again; count what came and went */
int store_refresh(struct store_mailbox *mb, size_t *added_r, size_t *removed_r,
		  const char **error_r)
{
    uint32_t *old;
    size_t n_old = mb->count, i, j, added = 0, removed = 0;

    old = mem_alloc_array(n_old ? n_old : 1, sizeof(*old));
    for (i = 0; i < n_old; i++)
	old[i] = mb->msgs[i].uid;
    if (sm_sync(mb, error_r) < 0) {
	mem_free(&old);
	return -1;
    }
    for (i = j = 0; i < n_old || j < mb->count; ) {
	if (j >= mb->count || (i < n_old && old[i] < mb->msgs[j].uid))
	    removed++, i++;
	else if (i >= n_old || mb->msgs[j].uid < old[i])
	    added++, j++;
	else
	    i++, j++;
    }
    mem_free(&old);
    if (added_r)
	*added_r = added;
    if (removed_r)
	*removed_r = removed;
    return 0;
}

/* sm_relocate - message i was renamed by another session: find it again */
static int sm_relocate(struct store_mailbox *mb, size_t i)
{
    struct store_msg *m = &mb->msgs[i];
    char *now = sm_find_name(mb, m->name, strcspn(m->name, ",:"));
    char *old = (char *) m->name;

    if (now == NULL) {
	errno = ENOENT;
	return -1;
    }
    mem_free(&old);
    m->name = now;
    m->flags = store_flags_parse(now);
    return 0;
}

/* store_open_msg - a read descriptor for message i */
int store_open_msg(struct store_mailbox *mb, size_t i, const char **error_r)
{
    int fd, tries;

    if (i >= mb->count) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "no message %zu", i + 1);
    }
    for (tries = 0; tries < 3; tries++) {
	fd = openat(mb->cur_fd, mb->msgs[i].name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY
		    | O_NONBLOCK);
	if (fd >= 0) {
	    struct stat st;

	    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		return fd;		/* (O_NONBLOCK means nothing for a file) */
	    (void) close(fd);
	    errno = EINVAL;
	    return errtext_fail(&store_error, error_r, "%s/cur/%s: not a regular file",
				mb->path, mb->msgs[i].name);
	}
	if (errno != ENOENT || sm_relocate(mb, i) < 0)
	    break;
    }
    return errtext_fail(&store_error, error_r, "open %s/cur/%s: %s", mb->path,
			mb->msgs[i].name, strerror(errno));
}

/* store_set_flags - rename message i with its new flags */
int store_set_flags(struct store_mailbox *mb, size_t i, uint32_t add, uint32_t remove,
		    const char **error_r)
{
    struct store_msg *m;
    struct store_name parsed;
    char newname[NAME_MAX + 1];
    uint32_t flags;
    int tries, err = 0;

    if (mb->mode != STORE_READ_WRITE) {
	errno = EROFS;
	return errtext_fail(&store_error, error_r, "%s: opened read-only", mb->path);
    }
    if (i >= mb->count) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "no message %zu", i + 1);
    }
    m = &mb->msgs[i];
    sm_lock(mb);
    for (tries = 0; tries < 3; tries++) {
	(void) store_name_parse(m->name, &parsed);
	flags = (parsed.flags | add) & ~remove;
	if (flags == parsed.flags && strstr(m->name, ":2,") != NULL) {
	    m->flags = flags;
	    sm_unlock(mb);
	    return 0;
	}
	if (!store_name_make(newname, sizeof(newname), m->name, parsed.keylen, m->size,
			     m->crlf_size, m->uid, flags)) {
	    sm_unlock(mb);
	    errno = ENAMETOOLONG;
	    return errtext_fail(&store_error, error_r, "%s: file name too long", m->name);
	}
	if (renameat(mb->cur_fd, m->name, mb->cur_fd, newname) == 0) {
	    char *old = (char *) m->name;

	    mem_free(&old);
	    m->name = mem_strdup(newname);
	    m->flags = flags;
	    err = fsync(mb->cur_fd) < 0 ? errno : 0;
	    sm_unlock(mb);
	    if (err) {
		errno = err;
		return errtext_fail(&store_error, error_r, "fsync %s/cur: %s", mb->path,
				    strerror(err));
	    }
	    return 0;
	}
	err = errno;
	if (err != ENOENT || sm_relocate(mb, i) < 0)
	    break;
    }
    sm_unlock(mb);
    errno = err ? err : ENOENT;
    return errtext_fail(&store_error, error_r, "rename %s/cur/%s: %s", mb->path, m->name,
			strerror(errno));
}

/* sm_uid_cmp - qsort/bsearch for uint32_t */
static int sm_uid_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}

/* store_expunge - unlink, fsync, record the UIDs as used */
int store_expunge(struct store_mailbox *mb, const uint32_t *uids, size_t n,
		  size_t *removed_r, const char **error_r)
{
    uint32_t *want, a_uv, a_next;
    size_t i, j, removed = 0;
    int err = 0, tries;
    bool gone;
    const char *aerr;

    if (removed_r)
	*removed_r = 0;
    if (mb->mode != STORE_READ_WRITE) {
	errno = EROFS;
	return errtext_fail(&store_error, error_r, "%s: opened read-only", mb->path);
    }
    want = mem_alloc_array(n ? n : 1, sizeof(*want));
    if (n > 0) {
	memcpy(want, uids, n * sizeof(*want));
	qsort(want, n, sizeof(*want), sm_uid_cmp);
    }
    sm_lock(mb);
    for (i = 0; i < mb->count && err == 0; i++) {
	if (bsearch(&mb->msgs[i].uid, want, n, sizeof(*want), sm_uid_cmp) == NULL)
	    continue;
	for (tries = 0; tries < 3; tries++) {
	    if (unlinkat(mb->cur_fd, mb->msgs[i].name, 0) == 0) {
		removed++;
		break;
	    }
	    if (errno != ENOENT) {
		err = errno;
		break;
	    }
	    if (sm_relocate(mb, i) < 0)
		break;			/* already gone */
	}
    }
    if (err == 0 && removed > 0 && fsync(mb->cur_fd) < 0)
	err = errno;
    if (err == 0 && removed > 0) {
	/* the anchor keeps the UIDs used even if the index is lost */
	if (store_anchor_read(mb->dir_fd, &a_uv, &a_next) < 0 || a_uv != mb->uidvalidity
	    || a_next < mb->uidnext) {
	    if (store_anchor_write(mb->dir_fd, mb->uidvalidity, mb->uidnext, &aerr) < 0) {
		sm_unlock(mb);
		mem_free(&want);
		return errtext_fail(&store_error, error_r, "%s: %s", mb->path, aerr);
	    }
	}
    }
    sm_unlock(mb);
    /* the snapshot loses the expunged messages (and any found gone) */
    for (i = j = 0; i < mb->count; i++) {
	gone = bsearch(&mb->msgs[i].uid, want, n, sizeof(*want), sm_uid_cmp) != NULL
	    && err == 0;
	if (gone) {
	    char *name = (char *) mb->msgs[i].name;

	    mem_free(&name);
	} else {
	    mb->msgs[j++] = mb->msgs[i];
	}
    }
    mb->count = j;
    mem_free(&want);
    if (removed_r)
	*removed_r = removed;
    if (err) {
	errno = err;
	return errtext_fail(&store_error, error_r, "expunge in %s/cur: %s", mb->path,
			    strerror(err));
    }
    return 0;
}

/* store_session_lock - a named exclusive lock held until close */
int store_session_lock(struct store_mailbox *mb, const char *name, const char **error_r)
{
    char file[64];
    size_t i, len = strlen(name);
    int fd, e;

    for (i = 0; i < len; i++)
	if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
	    break;
    if (len == 0 || len > 32 || i < len) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "bad session lock name");
    }
    if (mb->session_fd >= 0) {
	errno = EBUSY;
	return errtext_fail(&store_error, error_r, "a session lock is held already");
    }
    fmt_buf_or_panic(file, sizeof(file), "posthorn-%s.lock", name);
    fd = openat(mb->dir_fd, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
	return errtext_fail(&store_error, error_r, "open %s/%s: %s", mb->path, file,
			    strerror(errno));
    while ((e = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
	continue;
    if (e < 0) {
	e = errno;
	(void) close(fd);
	errno = e;
	return errtext_fail(&store_error, error_r, "%s: %s", mb->path,
			    e == EWOULDBLOCK ? "in use by another session" : strerror(e));
    }
    mb->session_fd = fd;
    return 0;
}
