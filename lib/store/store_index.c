/* store_index.c - the per-mailbox index file (UIDVALIDITY, UIDNEXT, and
 * per message its unique name part, UID, sizes and mtime) and the
 * anchor file (UIDVALIDITY and a UIDNEXT floor), both text, both
 * replaced atomically (temporary file, fsync, rename, fsync of the
 * directory); docs/mailstore.md describes the format. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "safe_file.h"
#include "str.h"

/* This library. */
#include "store.h"
#include "store_int.h"

/* si_hash - FNV-1a, 64 bits: the index's check sum */
static uint64_t si_hash(const char *data, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < len; i++) {
	h ^= (unsigned char) data[i];
	h *= 0x100000001b3ULL;
    }
    return h;
}

/* si_ulong - a decimal number at *cp (no sign), ending at stop; false
 * if not that or over max */
static bool si_ulong(const char **cp, char stop, unsigned long long max,
		     unsigned long long *v_r)
{
    unsigned long long v = 0;
    const char *p = *cp;

    if (*p < '0' || *p > '9')
	return false;
    for (; *p >= '0' && *p <= '9'; p++) {
	if (v > (max - (unsigned long long) (*p - '0')) / 10)
	    return false;
	v = v * 10 + (unsigned long long) (*p - '0');
    }
    if (*p != stop)
	return false;
    *cp = p + 1;
    *v_r = v;
    return true;
}

/* si_key_cmp - order of two unique parts */
static int si_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
	return c;
    return alen < blen ? -1 : alen > blen;
}

/* si_rec_cmp - qsort by key */
static int si_rec_cmp(const void *a, const void *b)
{
    const struct store_rec *x = a, *y = b;

    return si_key_cmp(x->name, x->keylen, y->name, y->keylen);
}

/* si_rec_uid_cmp - qsort by UID */
static int si_rec_uid_cmp(const void *a, const void *b)
{
    uint32_t x = (*(const struct store_rec *const *) a)->uid;
    uint32_t y = (*(const struct store_rec *const *) b)->uid;

    return x < y ? -1 : x > y;
}

/* si_add - append a record */
static void si_add(struct store_index *idx, const char *name, size_t len, uint32_t uid,
		   off_t size, off_t crlf, time_t mtime)
{
    struct store_rec *r;

    if (idx->count == idx->cap) {
	idx->cap = idx->cap ? mem_size_mul(idx->cap, 2) : 64;
	idx->recs = mem_realloc(idx->recs, mem_size_mul(idx->cap, sizeof(*idx->recs)));
    }
    r = &idx->recs[idx->count++];
    r->name = mem_strndup(name, len);
    r->keylen = strcspn(r->name, ",:");
    r->uid = uid;
    r->size = size;
    r->crlf_size = crlf;
    r->mtime = mtime;
}

/*
 * store_index_parse - the index in data[0..len): header lines, one line
 * per message ("UID SIZE CRLFSIZE MTIME NAME", UIDs ascending, all below
 * UIDNEXT, unique parts of names unique), and "end COUNT HASH" over
 * everything before it.
 * Whatever fails leaves DAMAGED with the lines read before it.
 */
void store_index_parse(const char *data, size_t len, struct store_index *idx)
{
    const char *cp = data, *end = data + len, *nl, *name;
    unsigned long long uv, next, uid, size, crlf, mtime, count, csec, cnsec;
    uint32_t last_uid = 0;
    size_t i;

    memset(idx, 0, sizeof(*idx));
    idx->state = STORE_INDEX_DAMAGED;
    if (memchr(data, 0, len) != NULL)
	len = (size_t) ((const char *) memchr(data, 0, len) - data), end = data + len;

#define SI_LINE() ((nl = memchr(cp, '\n', (size_t) (end - cp))) != NULL)
    if (!SI_LINE() || (size_t) (nl - cp) != strlen(STORE_INDEX_MAGIC)
	|| memcmp(cp, STORE_INDEX_MAGIC, (size_t) (nl - cp)) != 0)
	return;
    cp = nl + 1;
    if (!SI_LINE() || strncmp(cp, "uidvalidity ", 12) != 0)
	return;
    cp += 12;
    if (!si_ulong(&cp, '\n', UINT32_MAX, &uv) || uv == 0)
	return;
    if (!SI_LINE() || strncmp(cp, "uidnext ", 8) != 0)
	return;
    cp += 8;
    if (!si_ulong(&cp, '\n', UINT32_MAX, &next) || next == 0)
	return;
    idx->uidvalidity = (uint32_t) uv;
    idx->uidnext = (uint32_t) next;
    if (!SI_LINE() || strncmp(cp, "cur ", 4) != 0)
	return;
    cp += 4;
    if (!si_ulong(&cp, ' ', INT64_MAX, &csec) || !si_ulong(&cp, '\n', 999999999, &cnsec))
	return;
    while (SI_LINE() && strncmp(cp, "end ", 4) != 0) {
	if (!si_ulong(&cp, ' ', UINT32_MAX, &uid) || uid <= last_uid || uid >= next
	    || !si_ulong(&cp, ' ', (unsigned long long) INT64_MAX, &size)
	    || !si_ulong(&cp, ' ', (unsigned long long) INT64_MAX, &crlf)
	    || !si_ulong(&cp, ' ', (unsigned long long) INT64_MAX, &mtime)
	    || crlf < size || cp >= nl || *cp == '.' || *cp == ',' || *cp == ':'
	    || memchr(cp, '/', (size_t) (nl - cp)))
	    goto sort;
	name = cp;
	si_add(idx, name, (size_t) (nl - name), (uint32_t) uid, (off_t) size, (off_t) crlf,
	       (time_t) mtime);
	last_uid = (uint32_t) uid;
	cp = nl + 1;
    }
    if (SI_LINE()) {
	const char *tail = cp + 4;
	uint64_t want = si_hash(data, (size_t) (cp - data));

	if (si_ulong(&tail, ' ', UINT64_MAX, &count) && count == idx->count
	    && strtoull(tail, NULL, 16) == want && tail + 16 == nl && nl + 1 == end) {
	    idx->state = STORE_INDEX_VALID;
	    idx->cur_sec = (long long) csec;
	    idx->cur_nsec = (long) cnsec;
	}
    }
#undef SI_LINE
  sort:
    if (idx->count > 1)
	qsort(idx->recs, idx->count, sizeof(*idx->recs), si_rec_cmp);
    for (i = 1; i < idx->count; i++) {
	if (si_rec_cmp(&idx->recs[i - 1], &idx->recs[i]) == 0) {
	    /* a key twice cannot be written by us: not valid, and neither
	     * copy's UID can be trusted */
	    idx->state = STORE_INDEX_DAMAGED;
	    idx->recs[i - 1].uid = 0;
	    idx->recs[i].uid = 0;
	}
    }
}

/* store_index_read - read dir_fd's index file */
void store_index_read(int dir_fd, struct store_index *idx)
{
    struct str *buf;
    struct stat st;
    char chunk[65536];
    ssize_t n;
    int fd;

    memset(idx, 0, sizeof(*idx));
    fd = openat(dir_fd, STORE_INDEX_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
	idx->state = errno == ENOENT ? STORE_INDEX_MISSING : STORE_INDEX_DAMAGED;
	return;
    }
    buf = str_new(STORE_INDEX_MAX);
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (size_t) st.st_size < STORE_INDEX_MAX
	&& !str_reserve(buf, (size_t) st.st_size + 1))
	st.st_size = 0;			/* (cannot be: below the maximum) */
    for (;;) {
	n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0 || !str_try_append(buf, chunk, (size_t) n))
	    break;
    }
    (void) close(fd);
    if (n != 0) {
	/* unreadable or too big: what was read is a damaged index */
	store_index_parse(str_cstr(buf), str_len(buf), idx);
	idx->state = STORE_INDEX_DAMAGED;
    } else {
	store_index_parse(str_cstr(buf), str_len(buf), idx);
    }
    str_free(&buf);
}

/* store_index_free - free the records */
void store_index_free(struct store_index *idx)
{
    size_t i;

    for (i = 0; i < idx->count; i++)
	mem_free(&idx->recs[i].name);
    mem_free(&idx->recs);
    memset(idx, 0, sizeof(*idx));
}

/* store_index_find - binary search by key */
struct store_rec *store_index_find(struct store_index *idx, const char *key, size_t keylen)
{
    size_t lo = 0, hi = idx->count, mid;
    int c;

    while (lo < hi) {
	mid = lo + (hi - lo) / 2;
	c = si_key_cmp(idx->recs[mid].name, idx->recs[mid].keylen, key, keylen);
	if (c == 0)
	    return &idx->recs[mid];
	if (c < 0)
	    lo = mid + 1;
	else
	    hi = mid;
    }
    return NULL;
}

/* store_write_atomic - temp file, fsync, rename, fsync the directory */
int store_write_atomic(int dir_fd, const char *tmp, const char *name, const void *data,
		       size_t len, const char **error_r)
{
    int fd, err;

    (void) unlinkat(dir_fd, tmp, 0);
    fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
	return errtext_fail(&store_error, error_r, "create %s: %s", tmp, strerror(errno));
    if (write_all_fd(fd, data, len) < 0 || fsync(fd) < 0) {
	err = errno;
	(void) close(fd);
	(void) unlinkat(dir_fd, tmp, 0);
	return errtext_fail(&store_error, error_r, "write %s: %s", tmp, strerror(err));
    }
    if (close(fd) < 0 || renameat(dir_fd, tmp, dir_fd, name) < 0) {
	err = errno;
	(void) unlinkat(dir_fd, tmp, 0);
	return errtext_fail(&store_error, error_r, "replace %s: %s", name, strerror(err));
    }
    if (fsync(dir_fd) < 0)
	return errtext_fail(&store_error, error_r, "fsync after replacing %s: %s", name,
			    strerror(errno));
    return 0;
}

/* store_index_write - the whole index, in UID order, atomically */
int store_index_write(int dir_fd, uint32_t uidvalidity, uint32_t uidnext, long long cur_sec,
		      long cur_nsec, const struct store_rec *recs, size_t count,
		      const char **error_r)
{
    struct str *buf = str_new(STORE_INDEX_MAX);
    const struct store_rec **order;
    size_t i;
    int ret = -1;

    order = mem_alloc_array(count ? count : 1, sizeof(*order));
    for (i = 0; i < count; i++)
	order[i] = &recs[i];
    qsort(order, count, sizeof(*order), si_rec_uid_cmp);
    if (!str_try_printf(buf, "%s\nuidvalidity %lu\nuidnext %lu\ncur %lld %ld\n",
			STORE_INDEX_MAGIC, (unsigned long) uidvalidity, (unsigned long) uidnext,
			cur_sec, cur_nsec))
	goto too_big;
    for (i = 0; i < count; i++)
	if (!str_try_appendf(buf, "%lu %lld %lld %lld %s\n", (unsigned long) order[i]->uid,
			     (long long) order[i]->size, (long long) order[i]->crlf_size,
			     (long long) (order[i]->mtime > 0 ? order[i]->mtime : 0),
			     order[i]->name))
	    goto too_big;
    if (!str_try_appendf(buf, "end %zu %016llx\n", count,
			 (unsigned long long) si_hash(str_cstr(buf), str_len(buf))))
	goto too_big;
    ret = store_write_atomic(dir_fd, STORE_INDEX_TMP, STORE_INDEX_FILE, str_cstr(buf),
			     str_len(buf), error_r);
    goto out;
  too_big:
    ret = errtext_fail(&store_error, error_r, "index too big (%zu messages)", count);
  out:
    mem_free(&order);
    str_free(&buf);
    return ret;
}

/* store_anchor_read - "posthorn-uidvalidity 1\nUIDVALIDITY UIDNEXT\n" */
int store_anchor_read(int dir_fd, uint32_t *uidvalidity_r, uint32_t *uidnext_r)
{
    char buf[128];
    const char *cp;
    unsigned long long uv, next;
    ssize_t n;
    int fd;

    fd = openat(dir_fd, STORE_ANCHOR_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
	return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    (void) close(fd);
    if (n <= 0)
	return -1;
    buf[n] = 0;
    if (strncmp(buf, STORE_ANCHOR_MAGIC "\n", strlen(STORE_ANCHOR_MAGIC) + 1) != 0)
	return -1;
    cp = buf + strlen(STORE_ANCHOR_MAGIC) + 1;
    if (!si_ulong(&cp, ' ', UINT32_MAX, &uv) || uv == 0
	|| !si_ulong(&cp, '\n', UINT32_MAX, &next) || next == 0 || *cp != 0)
	return -1;
    *uidvalidity_r = (uint32_t) uv;
    *uidnext_r = (uint32_t) next;
    return 0;
}

/* store_anchor_write - replace the anchor file */
int store_anchor_write(int dir_fd, uint32_t uidvalidity, uint32_t uidnext, const char **error_r)
{
    char buf[128];

    fmt_buf_or_panic(buf, sizeof(buf), "%s\n%lu %lu\n", STORE_ANCHOR_MAGIC,
		     (unsigned long) uidvalidity, (unsigned long) uidnext);
    return store_write_atomic(dir_fd, STORE_ANCHOR_TMP, STORE_ANCHOR_FILE, buf, strlen(buf),
			      error_r);
}
