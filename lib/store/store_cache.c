/* store_cache.c - the per-mailbox cache file "posthorn-cache": values
 * imapd computes by parsing a message (ENVELOPE, BODYSTRUCTURE ...)
 * kept by UIDVALIDITY and UID, so that FETCH over a big mailbox opens
 * no message file. Append-only records, each with a check sum; mapped
 * read-only by readers (no lock), appended in batches by writers under
 * a flock of the file, compacted (rewritten and renamed over) when
 * mostly dead or damaged. Everything in it can be computed again:
 * any doubt drops a value. docs/mailstore.md describes the format. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
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
#define SC_PENDING_MAX	((size_t) 64 << 20)	/* in memory, unwritten */
#define SC_COMPACT_MIN	((size_t) 1 << 20)

/* A slot: 0 nothing; SC_PEND|n pending value n; else a record's offset
 * in the map, SC_OK once its check sum was verified. */
#define SC_PEND		0x80000000u
#define SC_OK		0x40000000u
#define SC_OFF		0x3fffffffu

struct sc_pending {
    uint32_t uid;
    unsigned field;
    size_t len;
    char *data;
};

struct store_cache {
    int fd;			/* the mapped file, or -1 */
    dev_t dev;
    ino_t ino;
    const unsigned char *map;	/* read-only mapping, or NULL */
    size_t map_len;
    size_t valid_end;		/* where the last good record ends */
    uint32_t uidvalidity;	/* of the mapped file */
    uint32_t *slots;		/* [snapshot index][field] */
    size_t n_slots_msgs;	/* snapshot size the slots are for */
    bool slots_valid;
    size_t live_bytes;		/* records of snapshot messages */
    struct sc_pending *pend;
    size_t n_pend;
    size_t cap_pend;
    size_t pend_bytes;
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

/* sc_unmap - drop the mapping and the slots that point into it */
static void sc_unmap(struct store_cache *c)
{
    if (c->map)
	(void) munmap((void *) c->map, c->map_len);
    c->map = NULL;
    c->map_len = 0;
    c->valid_end = 0;
    if (c->fd >= 0)
	(void) close(c->fd);
    c->fd = -1;
    c->slots_valid = false;
}

/* sc_map - map the current file (if any, if it is ours); true if mapped */
static bool sc_map(struct store_mailbox *mb, struct store_cache *c)
{
    struct stat st;
    uint32_t endian, uv;
    void *p;
    int fd;

    fd = openat(mb->dir_fd, SC_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
	return false;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < SC_HEAD
	|| (size_t) st.st_size > SC_FILE_MAX) {
	c->damaged = true;
	(void) close(fd);
	return false;
    }
    p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
	(void) close(fd);
	return false;
    }
    c->fd = fd;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->map = p;
    c->map_len = (size_t) st.st_size;
    memcpy(&endian, c->map + 4, 4);
    memcpy(&uv, c->map + 8, 4);
    c->uidvalidity = uv;
    if (memcmp(c->map, SC_MAGIC, 4) != 0 || endian != SC_ENDIAN || uv != mb->uidvalidity) {
	c->damaged = true;		/* another UIDVALIDITY or not ours */
	sc_unmap(c);
	return false;
    }
    return true;
}

/* sc_index - fill the slots from the mapping (one pass over the record
 * headers; the data is checked when a value is read) */
static void sc_index(struct store_mailbox *mb, struct store_cache *c)
{
    size_t n = mb->snap.count, off, i;
    uint32_t uid, len, check;
    unsigned field;
    long idx;

    mem_free(&c->slots);
    c->slots = mem_alloc_array(n ? n : 1, STORE_CACHE_FIELDS * sizeof(*c->slots));
    memset(c->slots, 0, (n ? n : 1) * STORE_CACHE_FIELDS * sizeof(*c->slots));
    c->n_slots_msgs = n;
    c->live_bytes = 0;
    off = SC_HEAD;
    if (c->map) {
	while (off + SC_REC <= c->map_len) {
	    sc_rec_head(c->map + off, &uid, &field, &len, &check);
	    if (uid == 0 || field >= STORE_CACHE_FIELDS || len > STORE_CACHE_VALUE_MAX
		|| len > c->map_len - off - SC_REC) {
		c->damaged = true;
		break;
	    }
	    idx = store_find_uid(mb, uid);
	    if (idx >= 0) {
		c->slots[(size_t) idx * STORE_CACHE_FIELDS + field] = (uint32_t) off;
		c->live_bytes += SC_REC + len;
	    }
	    off += SC_REC + len;
	}
	c->valid_end = off;
    }
    /* pending values (not written yet) win over nothing only */
    for (i = 0; i < c->n_pend; i++) {
	idx = store_find_uid(mb, c->pend[i].uid);
	if (idx >= 0 && c->slots[(size_t) idx * STORE_CACHE_FIELDS + c->pend[i].field] == 0)
	    c->slots[(size_t) idx * STORE_CACHE_FIELDS + c->pend[i].field] =
		SC_PEND | (uint32_t) i;
    }
    c->slots_valid = true;
}

/* sc_get_cache - the handle's cache state, indexed for its snapshot */
static struct store_cache *sc_get_cache(struct store_mailbox *mb)
{
    struct store_cache *c = mb->cache;

    if (c == NULL) {
	c = mb->cache = mem_zalloc(sizeof(*c));
	c->fd = -1;
    }
    if (!c->slots_valid) {
	if (c->map == NULL)
	    (void) sc_map(mb, c);
	sc_index(mb, c);
    }
    return c;
}

/* store_cache_get - message i's field */
int store_cache_get(struct store_mailbox *mb, size_t i, unsigned field, const void **val_r,
		    size_t *len_r)
{
    struct store_cache *c;
    uint32_t *slot, uid, len, check;
    unsigned f;

    if (i >= mb->snap.count || field >= STORE_CACHE_FIELDS)
	return 0;
    c = sc_get_cache(mb);
    slot = &c->slots[i * STORE_CACHE_FIELDS + field];
    if (*slot == 0)
	return 0;
    if (*slot & SC_PEND) {
	*val_r = c->pend[*slot & ~SC_PEND].data;
	*len_r = c->pend[*slot & ~SC_PEND].len;
	return 1;
    }
    sc_rec_head(c->map + (*slot & SC_OFF), &uid, &f, &len, &check);
    if (!(*slot & SC_OK)) {
	if (sc_rec_check(uid, f, len, c->map + (*slot & SC_OFF) + SC_REC) != check) {
	    *slot = 0;			/* torn or damaged: computed again */
	    c->damaged = true;
	    return 0;
	}
	*slot |= SC_OK;
    }
    *val_r = c->map + (*slot & SC_OFF) + SC_REC;
    *len_r = len;
    return 1;
}

/* store_cache_put - keep a value for the next flush */
int store_cache_put(struct store_mailbox *mb, size_t i, unsigned field, const void *val,
		    size_t len, const char **error_r)
{
    struct store_cache *c;
    struct sc_pending *p;
    uint32_t *slot;

    if (i >= mb->snap.count || field >= STORE_CACHE_FIELDS || len > STORE_CACHE_VALUE_MAX) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "bad cache value (message %zu field %u)",
			    i + 1, field);
    }
    c = sc_get_cache(mb);
    slot = &c->slots[i * STORE_CACHE_FIELDS + field];
    if (*slot != 0 && !(*slot & (SC_PEND | SC_OK))) {
	const void *v;
	size_t l;

	(void) store_cache_get(mb, i, field, &v, &l);	/* (checks it; bad: 0) */
    }
    if (*slot != 0 || c->pend_bytes + len > SC_PENDING_MAX)
	return 0;
    if (c->n_pend == c->cap_pend) {
	c->cap_pend = c->cap_pend ? mem_size_mul(c->cap_pend, 2) : 64;
	c->pend = mem_realloc(c->pend, mem_size_mul(c->cap_pend, sizeof(*c->pend)));
    }
    p = &c->pend[c->n_pend];
    p->uid = mb->snap.msgs[i].uid;
    p->field = field;
    p->len = len;
    p->data = mem_alloc(len ? len : 1);
    memcpy(p->data, val, len);
    *slot = SC_PEND | (uint32_t) c->n_pend++;
    c->pend_bytes += len;
    return 0;
}

/* sc_free_pending - forget the pending values */
static void sc_free_pending(struct store_cache *c)
{
    size_t i;

    for (i = 0; i < c->n_pend; i++)
	mem_free(&c->pend[i].data);
    c->n_pend = 0;
    c->pend_bytes = 0;
}

/* sc_append_pending - pending records to buf */
static void sc_append_pending(struct store_cache *c, struct str *buf)
{
    unsigned char head[SC_REC];
    size_t i;

    for (i = 0; i < c->n_pend; i++) {
	sc_rec_make(head, c->pend[i].uid, c->pend[i].field, (uint32_t) c->pend[i].len,
		    c->pend[i].data);
	str_append_or_panic(buf, head, SC_REC);
	str_append_or_panic(buf, c->pend[i].data, c->pend[i].len);
    }
}

/* sc_compact - a new file: the header, the live records of the
 * mapping (checked), the pending ones; renamed over the old */
static int sc_compact(struct store_mailbox *mb, struct store_cache *c, const char **error_r)
{
    struct str *buf = str_new(SC_FILE_MAX);
    unsigned char head[SC_HEAD];
    uint32_t endian = SC_ENDIAN, uv = mb->uidvalidity, uid, len, check;
    size_t i, off;
    unsigned f;
    int ret;

    memcpy(head, SC_MAGIC, 4);
    memcpy(head + 4, &endian, 4);
    memcpy(head + 8, &uv, 4);
    memset(head + 12, 0, 4);
    str_append_or_panic(buf, head, SC_HEAD);
    for (i = 0; c->map && i < c->n_slots_msgs * STORE_CACHE_FIELDS; i++) {
	if (c->slots[i] == 0 || (c->slots[i] & SC_PEND))
	    continue;
	off = c->slots[i] & SC_OFF;
	sc_rec_head(c->map + off, &uid, &f, &len, &check);
	if (sc_rec_check(uid, f, len, c->map + off + SC_REC) != check)
	    continue;
	if (str_len(buf) + SC_REC + len + c->pend_bytes + SC_REC * c->n_pend > SC_FILE_MAX / 2)
	    break;
	str_append_or_panic(buf, c->map + off, SC_REC + len);
    }
    if (str_len(buf) + c->pend_bytes + SC_REC * c->n_pend <= SC_FILE_MAX / 2)
	sc_append_pending(c, buf);
    ret = store_write_atomic(mb->dir_fd, SC_TMP, SC_FILE, str_cstr(buf), str_len(buf), error_r);
    str_free(&buf);
    return ret;
}

/* store_cache_flush - write the pending values: appended (one write
 * under the file's flock) when the file is the one this handle mapped
 * and ends well after its last good record, else by compaction */
int store_cache_flush(struct store_mailbox *mb, const char **error_r)
{
    struct store_cache *c = mb->cache;
    struct str *buf;
    struct stat st;
    size_t dead;
    int fd, ret = 0;
    bool append = false;

    store_save_crlf(mb);
    if (c == NULL || c->n_pend == 0 || !mb->can_write || c->failed)
	return 0;
    if (!c->slots_valid)
	sc_index(mb, c);
    fd = openat(mb->dir_fd, SC_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0)
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
	    continue;
    if (fd >= 0 && c->map && !c->damaged && fstat(fd, &st) == 0 && st.st_ino == c->ino
	&& st.st_dev == c->dev) {
	if ((size_t) st.st_size != c->map_len) {
	    /* others appended since this handle mapped it: see theirs */
	    sc_unmap(c);
	    if (sc_map(mb, c))
		sc_index(mb, c);
	}
	dead = c->map ? c->valid_end - SC_HEAD - c->live_bytes : 0;
	append = c->map && !c->damaged && c->ino == st.st_ino && c->valid_end == c->map_len
	    && !(c->valid_end > SC_COMPACT_MIN && dead > c->live_bytes)
	    && c->valid_end + c->pend_bytes + SC_REC * c->n_pend <= SC_FILE_MAX / 2;
    }
    if (append) {
	buf = str_new(SC_FILE_MAX);
	sc_append_pending(c, buf);
	errno = 0;
	if (pwrite(fd, str_cstr(buf), str_len(buf), (off_t) c->valid_end)
	    != (ssize_t) str_len(buf))
	    ret = errtext_fail(&store_error, error_r, "write %s/%s: %s", mb->path, SC_FILE,
			       strerror(errno ? errno : EIO));
	str_free(&buf);
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
    /* the values are in the file now: map it again when next used */
    sc_free_pending(c);
    sc_unmap(c);
    c->damaged = false;
    return 0;
}

/* store_cache_resync - the snapshot changed: index again when used
 * (mapping again if the file grew or was replaced) */
void store_cache_resync(struct store_mailbox *mb)
{
    struct store_cache *c = mb->cache;
    const char *err;
    struct stat st;

    if (c == NULL)
	return;
    if (c->n_pend > 0 && store_cache_flush(mb, &err) < 0)
	msg_warn("%s", err);
    if (c->map && (fstatat(mb->dir_fd, SC_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0
		   || st.st_ino != c->ino || (size_t) st.st_size != c->map_len
		   || c->uidvalidity != mb->uidvalidity))
	sc_unmap(c);
    c->slots_valid = false;
}

/* store_cache_close - flush and free */
void store_cache_close(struct store_mailbox *mb)
{
    struct store_cache *c = mb->cache;
    const char *err;

    if (c == NULL)
	return;
    if (store_cache_flush(mb, &err) < 0)
	msg_warn("%s", err);
    sc_free_pending(c);
    mem_free(&c->pend);
    sc_unmap(c);
    mem_free(&c->slots);
    mem_free(&mb->cache);
}
