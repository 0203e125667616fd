/* store_cache.c - the per-mailbox cache file "posthorn-cache": values
 * imapd computes by parsing a message (ENVELOPE, BODYSTRUCTURE ...)
 * kept by UIDVALIDITY and UID, so that FETCH over a big mailbox opens
 * no message file. Append-only records, each with a check sum; read
 * (pread, never mapped) by readers without a lock, appended in batches
 * by writers under a flock of the file, compacted (rewritten and
 * renamed over) when mostly dead or damaged. Everything in it can be computed again:
 * any doubt drops a value. docs/mailstore.md describes the format. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

#define SC_FILE		"posthorn-cache"
#define SC_TMP		"posthorn-cache.tmp"
#define SC_MAGIC	"PHC1"
#define SC_ENDIAN	0x01020304u
#define SC_HEAD		16		/* "PHC1", endian mark, UIDVALIDITY, 0 */
#define SC_REC		16		/* uid, field, 0 0 0, len, check */
#define SC_FILE_MAX	((size_t) 1 << 30)	/* offsets fit 30 bits */
#define SC_PENDING_MAX	((size_t) 64 << 10)	/* unwritten bytes before a
						 * write (a batch) */
#define SC_WINDOW	((size_t) 64 << 10)	/* bytes read at once */
#define SC_COMPACT_MIN	((size_t) 1 << 20)

/* A slot: 0 nothing; SC_PEND|n pending value n; else a record's offset
 * in the file, SC_OK once its check sum was verified. */
#define SC_PEND		0x80000000u
#define SC_OK		0x40000000u
#define SC_OFF		0x3fffffffu

struct sc_pending {
    uint32_t uid;
    unsigned field;
    size_t off;			/* of its record in pbuf */
};

/*
 * The handle's view of the file. Nothing is mapped: the file is read
 * with pread into a bounded window (page cache pages are not the
 * process's memory), so a reader's memory is the slots (4 bytes per
 * message and field in use) and the window, whatever the file's size.
 */
struct store_cache {
    int fd;			/* the file (read-only), or -1 */
    dev_t dev;
    ino_t ino;
    size_t valid_end;		/* where the last good record ends */
    uint32_t uidvalidity;	/* of the open file */
    uint32_t *slots[STORE_CACHE_FIELDS];	/* [snapshot index], per field
						 * (NULL: none of that field) */
    size_t n_slots_msgs;	/* snapshot size the slots are for */
    bool slots_valid;
    size_t live_bytes;		/* records of snapshot messages */
    unsigned char *win;		/* the read window */
    size_t win_cap;
    size_t win_off;		/* file offset of win[0] */
    size_t win_len;
    struct str *pbuf;		/* pending records, formatted */
    struct sc_pending *pend;
    size_t n_pend;
    size_t cap_pend;
    bool damaged;		/* a bad record was seen: compact */
    bool failed;		/* writing failed: memory only */
};

/* sc_hash - a 32-bit check of data (8 bytes at a time) */
static uint32_t sc_hash(const void *p, size_t len, uint64_t seed)
{
    const unsigned char *c = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ seed ^ ((uint64_t) len << 32), w;

    while (len >= 8) {
	memcpy(&w, c, 8);
	h ^= w;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 32;
	c += 8;
	len -= 8;
    }
    w = 0;
    memcpy(&w, c, len);
    h ^= w;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return (uint32_t) h;
}

/* sc_rec_check - the check of a record: its header fields and data */
static uint32_t sc_rec_check(uint32_t uid, unsigned field, uint32_t len, const void *data)
{
    return sc_hash(data, len, ((uint64_t) uid << 8) | field);
}

/* sc_rec_head - the header fields at p */
static void sc_rec_head(const unsigned char *p, uint32_t *uid, unsigned *field, uint32_t *len,
			uint32_t *check)
{
    memcpy(uid, p, 4);
    *field = p[4];
    memcpy(len, p + 8, 4);
    memcpy(check, p + 12, 4);
}

/* sc_rec_make - a record header into p */
static void sc_rec_make(unsigned char *p, uint32_t uid, unsigned field, uint32_t len,
			const void *data)
{
    uint32_t check = sc_rec_check(uid, field, len, data);

    memset(p, 0, SC_REC);
    memcpy(p, &uid, 4);
    p[4] = (unsigned char) field;
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &check, 4);
}

/* sc_close_file - drop the file and the slots that point into it */
static void sc_close_file(struct store_cache *c)
{
    if (c->fd >= 0)
	(void) close(c->fd);
    c->fd = -1;
    c->valid_end = 0;
    c->win_len = 0;
    c->slots_valid = false;
}

/* sc_read - file bytes [off, off+len) into the window; a pointer to
 * them, or NULL (short file, read error) */
static const unsigned char *sc_read(struct store_cache *c, size_t off, size_t len)
{
    size_t want = len > SC_WINDOW ? len : SC_WINDOW, got = 0;
    ssize_t n;

    if (c->fd < 0)
	return NULL;
    if (off >= c->win_off && off + len <= c->win_off + c->win_len)
	return c->win + (off - c->win_off);
    if (want > c->win_cap || (c->win_cap > SC_WINDOW && want == SC_WINDOW)) {
	/* (a big value grows it; the next ordinary read shrinks it) */
	mem_free(&c->win);
	c->win_cap = want;
	c->win = mem_alloc(c->win_cap);
    }
    c->win_len = 0;
    c->win_off = off;
    while (got < want) {
	n = pread(c->fd, c->win + got, want - got, (off_t) (off + got));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    break;
	got += (size_t) n;
    }
    c->win_len = got;
    return got >= len ? c->win : NULL;
}

/* sc_open_file - open the current file (if any, if it is ours); true
 * if open */
static bool sc_open_file(struct store_mailbox *mb, struct store_cache *c)
{
    unsigned char head[SC_HEAD];
    struct stat st;
    uint32_t endian, uv;
    int fd;

    fd = openat(mb->dir_fd, SC_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
	return false;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < SC_HEAD
	|| (size_t) st.st_size > SC_FILE_MAX || pread(fd, head, SC_HEAD, 0) != SC_HEAD) {
	c->damaged = true;
	(void) close(fd);
	return false;
    }
    memcpy(&endian, head + 4, 4);
    memcpy(&uv, head + 8, 4);
    if (memcmp(head, SC_MAGIC, 4) != 0 || endian != SC_ENDIAN || uv != mb->uidvalidity) {
	c->damaged = true;		/* another UIDVALIDITY or not ours */
	(void) close(fd);
	return false;
    }
    c->fd = fd;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->uidvalidity = uv;
    c->valid_end = SC_HEAD;
    c->win_len = 0;
    return true;
}

/* sc_slot - the slot of message i, field f (allocating that field's
 * slots when alloc) or NULL */
static uint32_t *sc_slot(struct store_cache *c, size_t i, unsigned f, bool alloc)
{
    if (i >= c->n_slots_msgs)
	return NULL;
    if (c->slots[f] == NULL) {
	if (!alloc)
	    return NULL;
	c->slots[f] = mem_alloc_array(c->n_slots_msgs ? c->n_slots_msgs : 1,
				      sizeof(*c->slots[f]));
	memset(c->slots[f], 0, (c->n_slots_msgs ? c->n_slots_msgs : 1) * sizeof(*c->slots[f]));
    }
    return &c->slots[f][i];
}

/* sc_index_from - read the record headers from offset from to the end
 * of the file into the slots (the data is checked when a value is read) */
static void sc_index_from(struct store_mailbox *mb, struct store_cache *c, size_t from)
{
    const unsigned char *p;
    struct stat st;
    size_t off = from, end;
    uint32_t uid, len, check, *slot;
    unsigned field;
    long idx;

    if (c->fd < 0 || fstat(c->fd, &st) < 0)
	return;
    end = (size_t) st.st_size;
    while (off + SC_REC <= end) {
	if ((p = sc_read(c, off, SC_REC)) == NULL)
	    break;
	sc_rec_head(p, &uid, &field, &len, &check);
	if (uid == 0 || field >= STORE_CACHE_FIELDS || len > STORE_CACHE_VALUE_MAX
	    || len > end - off - SC_REC) {
	    c->damaged = true;
	    break;
	}
	idx = store_find_uid(mb, uid);
	if (idx >= 0 && (slot = sc_slot(c, (size_t) idx, field, true)) != NULL) {
	    *slot = (uint32_t) off;
	    c->live_bytes += SC_REC + len;
	}
	off += SC_REC + len;
    }
    c->valid_end = off;
}

/* sc_index - the slots for the current snapshot: the file's records,
 * then the pending values where the file has none */
static void sc_index(struct store_mailbox *mb, struct store_cache *c)
{
    uint32_t *slot;
    unsigned f;
    size_t i;
    long idx;

    for (f = 0; f < STORE_CACHE_FIELDS; f++)
	mem_free(&c->slots[f]);
    c->n_slots_msgs = mb->snap.count;
    c->live_bytes = 0;
    if (c->fd >= 0)
	sc_index_from(mb, c, SC_HEAD);
    for (i = 0; i < c->n_pend; i++) {
	idx = store_find_uid(mb, c->pend[i].uid);
	if (idx >= 0 && (slot = sc_slot(c, (size_t) idx, c->pend[i].field, true)) != NULL
	    && *slot == 0)
	    *slot = SC_PEND | (uint32_t) i;
    }
    c->slots_valid = true;
}

static int sc_flush(struct store_mailbox *mb, bool keep, const char **error_r);

/* sc_get_cache - the handle's cache state, indexed for its snapshot */
static struct store_cache *sc_get_cache(struct store_mailbox *mb)
{
    struct store_cache *c = mb->cache;

    if (c == NULL) {
	c = mb->cache = mem_zalloc(sizeof(*c));
	c->fd = -1;
    }
    if (!c->slots_valid) {
	if (c->fd < 0)
	    (void) sc_open_file(mb, c);
	sc_index(mb, c);
    }
    return c;
}

/* store_cache_get - message i's field */
int store_cache_get(struct store_mailbox *mb, size_t i, unsigned field, const void **val_r,
		    size_t *len_r)
{
    struct store_cache *c;
    const unsigned char *p;
    uint32_t *slot, uid, len, check;
    unsigned f;
    size_t off;

    if (i >= mb->snap.count || field >= STORE_CACHE_FIELDS)
	return 0;
    c = sc_get_cache(mb);
    if ((slot = sc_slot(c, i, field, false)) == NULL || *slot == 0)
	return 0;
    if (*slot & SC_PEND) {
	p = (const unsigned char *) str_cstr(c->pbuf) + c->pend[*slot & ~SC_PEND].off;
	sc_rec_head(p, &uid, &f, &len, &check);
	*val_r = p + SC_REC;
	*len_r = len;
	return 1;
    }
    off = *slot & SC_OFF;
    if ((p = sc_read(c, off, SC_REC)) == NULL)
	goto bad;
    sc_rec_head(p, &uid, &f, &len, &check);
    if (uid != mb->snap.msgs[i].uid || f != field || (p = sc_read(c, off, SC_REC + len)) == NULL)
	goto bad;
    if (!(*slot & SC_OK)) {
	if (sc_rec_check(uid, f, len, p + SC_REC) != check)
	    goto bad;			/* torn or damaged: computed again */
	*slot |= SC_OK;
    }
    *val_r = p + SC_REC;
    *len_r = len;
    return 1;
  bad:
    *slot = 0;
    c->damaged = true;
    return 0;
}

/* store_cache_put - keep a value for the next write (a batch is
 * written as soon as it is SC_PENDING_MAX bytes) */
int store_cache_put(struct store_mailbox *mb, size_t i, unsigned field, const void *val,
		    size_t len, const char **error_r)
{
    unsigned char head[SC_REC];
    struct store_cache *c;
    struct sc_pending *p;
    uint32_t *slot;
    const char *err;

    if (i >= mb->snap.count || field >= STORE_CACHE_FIELDS || len > STORE_CACHE_VALUE_MAX) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "bad cache value (message %zu field %u)",
			    i + 1, field);
    }
    c = sc_get_cache(mb);
    if ((slot = sc_slot(c, i, field, true)) == NULL)
	return 0;
    if (*slot != 0 && !(*slot & (SC_PEND | SC_OK))) {
	const void *v;
	size_t l;

	(void) store_cache_get(mb, i, field, &v, &l);	/* (checks it; bad: 0) */
    }
    if (*slot != 0)
	return 0;
    if (c->failed && c->pbuf && str_len(c->pbuf) + SC_REC + len > SC_PENDING_MAX * 4)
	return 0;			/* (cannot write: keep a bounded few) */
    if (c->pbuf == NULL)
	c->pbuf = str_new(SC_FILE_MAX);
    if (c->n_pend == c->cap_pend) {
	c->cap_pend = c->cap_pend ? mem_size_mul(c->cap_pend, 2) : 64;
	c->pend = mem_realloc(c->pend, mem_size_mul(c->cap_pend, sizeof(*c->pend)));
    }
    p = &c->pend[c->n_pend];
    p->uid = mb->snap.msgs[i].uid;
    p->field = field;
    p->off = str_len(c->pbuf);
    sc_rec_make(head, p->uid, field, (uint32_t) len, val);
    if (!str_try_append(c->pbuf, head, SC_REC) || !str_try_append(c->pbuf, val, len)) {
	str_truncate(c->pbuf, p->off);
	return 0;
    }
    *slot = SC_PEND | (uint32_t) c->n_pend++;
    if (str_len(c->pbuf) >= SC_PENDING_MAX && !c->failed && sc_flush(mb, true, &err) < 0)
	msg_warn("%s", err);
    return 0;
}

/* sc_free_pending - forget the pending values; keep: keep the buffers
 * for the next batch (a batch written because it was full: more are
 * coming, and a buffer of SC_PENDING_MAX is a mapping whose every
 * allocation costs page faults and whose every free a TLB flush) */
static void sc_free_pending(struct store_cache *c, bool keep)
{
    c->n_pend = 0;
    if (keep && c->pbuf) {
	str_reset(c->pbuf);
	return;
    }
    str_free(&c->pbuf);			/* (made again for the next batch) */
    if (c->cap_pend > 64) {
	mem_free(&c->pend);
	c->cap_pend = 0;
    }
}

/* sc_compact - a new file: the header, the live records of the old
 * one (checked), the pending ones; renamed over the old (no fsync:
 * everything in it can be computed again) */
static int sc_compact(struct store_mailbox *mb, struct store_cache *c, const char **error_r)
{
    struct str *buf = str_new(SC_FILE_MAX);
    unsigned char head[SC_HEAD];
    const unsigned char *p;
    uint32_t endian = SC_ENDIAN, uv = mb->uidvalidity, uid, len, check;
    size_t i, off, pend = c->pbuf ? str_len(c->pbuf) : 0;
    unsigned f, fi;
    int ret;

    memcpy(head, SC_MAGIC, 4);
    memcpy(head + 4, &endian, 4);
    memcpy(head + 8, &uv, 4);
    memset(head + 12, 0, 4);
    str_append_or_panic(buf, head, SC_HEAD);
    for (fi = 0; c->fd >= 0 && fi < STORE_CACHE_FIELDS; fi++)
	for (i = 0; c->slots[fi] && i < c->n_slots_msgs; i++) {
	    if (c->slots[fi][i] == 0 || (c->slots[fi][i] & SC_PEND))
		continue;
	    off = c->slots[fi][i] & SC_OFF;
	    if ((p = sc_read(c, off, SC_REC)) == NULL)
		continue;
	    sc_rec_head(p, &uid, &f, &len, &check);
	    if ((p = sc_read(c, off, SC_REC + len)) == NULL
		|| sc_rec_check(uid, f, len, p + SC_REC) != check)
		continue;
	    if (str_len(buf) + SC_REC + len + pend > SC_FILE_MAX / 2)
		break;
	    str_append_or_panic(buf, p, SC_REC + len);
	}
    if (pend > 0 && str_len(buf) + pend <= SC_FILE_MAX / 2)
	str_append_or_panic(buf, str_cstr(c->pbuf), pend);
    ret = store_write_atomic2(mb->dir_fd, SC_TMP, SC_FILE, str_cstr(buf), str_len(buf), false,
			      error_r);
    if (ret == 0)
	store_watch_own(mb, SC_FILE);
    str_free(&buf);
    return ret;
}

/* store_cache_flush - write the pending values (and the CRLF sizes the
 * index is to learn) */
int store_cache_flush(struct store_mailbox *mb, const char **error_r)
{
    int ret;

    store_save_crlf(mb);
    ret = sc_flush(mb, false, error_r);
    if (mb->cache && mb->cache->n_pend == 0)
	sc_free_pending(mb->cache, false);	/* (the buffers kept between
						 * batches) */
    return ret;
}

/* sc_flush - write the pending values: appended (one write under the
 * file's flock) when the file is the one this handle reads and ends
 * where its last good record does, else by compaction */
static int sc_flush(struct store_mailbox *mb, bool keep, const char **error_r)
{
    struct store_cache *c = mb->cache;
    struct stat st;
    size_t dead, len, i;
    uint32_t *slot;
    int fd, ret = 0;
    bool append = false;
    long idx;

    if (c == NULL || c->n_pend == 0 || !mb->can_write || c->failed)
	return 0;
    if (!c->slots_valid)
	sc_index(mb, c);
    len = str_len(c->pbuf);
    fd = openat(mb->dir_fd, SC_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0)
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
	    continue;
    if (fd >= 0 && c->fd >= 0 && !c->damaged && fstat(fd, &st) == 0 && st.st_ino == c->ino
	&& st.st_dev == c->dev) {
	if ((size_t) st.st_size != c->valid_end)
	    sc_index_from(mb, c, c->valid_end);	/* others appended: see theirs */
	dead = c->valid_end - SC_HEAD - c->live_bytes;
	append = !c->damaged && c->valid_end == (size_t) st.st_size
	    && !(c->valid_end > SC_COMPACT_MIN && dead > c->live_bytes)
	    && c->valid_end + len <= SC_FILE_MAX / 2;
    }
    if (append) {
	errno = 0;
	if (pwrite(fd, str_cstr(c->pbuf), len, (off_t) c->valid_end) != (ssize_t) len)
	    ret = errtext_fail(&store_error, error_r, "write %s/%s: %s", mb->path, SC_FILE,
			       strerror(errno ? errno : EIO));
    } else {
	/* none yet, replaced by another session, damaged, mostly dead
	 * or too big: rewrite it */
	ret = sc_compact(mb, c, error_r);
    }
    if (fd >= 0)
	(void) close(fd);		/* (releases the flock) */
    if (ret < 0) {
	c->failed = true;		/* values stay in memory */
	return ret;
    }
    if (append) {
	/* the values are in the file now, where this handle reads them */
	for (i = 0; i < c->n_pend; i++) {
	    idx = store_find_uid(mb, c->pend[i].uid);
	    if (idx >= 0 && (slot = sc_slot(c, (size_t) idx, c->pend[i].field, false)) != NULL
		&& *slot == (SC_PEND | (uint32_t) i))
		*slot = (uint32_t) (c->valid_end + c->pend[i].off) | SC_OK;
	}
	c->valid_end += len;
	c->live_bytes += len;
	c->win_len = 0;
	sc_free_pending(c, keep);
    } else {
	sc_free_pending(c, keep);
	sc_close_file(c);		/* (the new file is read when next used) */
    }
    c->damaged = false;
    return 0;
}

/* store_cache_resync - the snapshot changed: index again when used
 * (opening the file again if it was replaced) */
void store_cache_resync(struct store_mailbox *mb)
{
    struct store_cache *c = mb->cache;
    const char *err;
    struct stat st;

    if (c == NULL)
	return;
    if (c->n_pend > 0 && store_cache_flush(mb, &err) < 0)
	msg_warn("%s", err);
    if (c->fd >= 0 && (fstatat(mb->dir_fd, SC_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0
		       || st.st_ino != c->ino || c->uidvalidity != mb->uidvalidity))
	sc_close_file(c);
    c->slots_valid = false;
}

/* store_cache_close - flush and free */
void store_cache_close(struct store_mailbox *mb)
{
    struct store_cache *c = mb->cache;
    const char *err;
    unsigned f;

    if (c == NULL)
	return;
    if (store_cache_flush(mb, &err) < 0)
	msg_warn("%s", err);
    sc_close_file(c);
    str_free(&c->pbuf);
    mem_free(&c->pend);
    mem_free(&c->win);
    for (f = 0; f < STORE_CACHE_FIELDS; f++)
	mem_free(&c->slots[f]);
    mem_free(&mb->cache);
}
