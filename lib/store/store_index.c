/* store_index.c - the per-mailbox index file (UIDVALIDITY, UIDNEXT, and
 * per message its unique name part, UID, MODSEQ, sizes and mtime) and the
 * anchor file (UIDVALIDITY and a UIDNEXT floor), both text, both
 * replaced atomically (temporary file, fsync, rename, fsync of the
 * directory); docs/mailstore.md describes the format. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "file_read.h"
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

/* store_map_release - drop the page table entries of base's whole
 * pages in [*from, cp), once they are SI_STEP or more (each madvise is
 * a TLB flush, hundreds of microseconds on a busy VM: 64 KiB steps made
 * 52 of a warm SELECT of 10,000 messages two thirds of its CPU) */
#define SI_STEP		((size_t) 256 << 10)

void store_map_release(const char *base, size_t len, const char **from, const char *cp)
{
    static size_t page;
    const char *lo, *hi;

    if (page == 0) {
	long ps = sysconf(_SC_PAGESIZE);

	page = ps > 0 ? (size_t) ps : 4096;
    }
    if (len == 0 || cp < base || *from == NULL || *from < base)
	return;
    if (cp > base + len)
	cp = base + len;
    lo = base + ((size_t) (*from - base) & ~(page - 1));
    hi = base + ((size_t) (cp - base) & ~(page - 1));
    if (hi <= lo || (size_t) (hi - lo) < SI_STEP)
	return;
    (void) madvise((void *) lo, (size_t) (hi - lo), MADV_DONTNEED);
    *from = hi;
}

/* store_index_walk_begin - a walk of idx's lines starts again */
void store_index_walk_begin(struct store_index *idx)
{
    idx->released = idx->data;
}

/* store_index_release - the walk of a mapped idx is at cp */
void store_index_release(struct store_index *idx, const char *cp)
{
    if (idx->map_len)
	store_map_release(idx->data, idx->map_len, &idx->released, cp);
}

/* si_release_all - drop every page of a mapped idx (a walk ended) */
static void si_release_all(struct store_index *idx)
{
    if (idx->map_len)
	(void) madvise(idx->data, idx->map_len, MADV_DONTNEED);
    idx->released = idx->data;
}

/* si_hash2 - the check sum of a version 2 index: 64 bits, eight bytes
 * at a time (FNV-1a's byte at a time cost 1.5 ms for 10,000 messages);
 * a mapped idx's pages are released as the sum goes */
static uint64_t si_hash2(struct store_index *idx, const char *data, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ len, w;
    size_t chunk;

    while (len >= 8) {
	chunk = len & ~(size_t) 7;
	if (chunk > SI_STEP)
	    chunk = SI_STEP;
	for (; chunk > 0; chunk -= 8) {
	    memcpy(&w, data, 8);
	    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	    h ^= h >> 31;
	    data += 8;
	    len -= 8;
	}
	if (idx)
	    store_index_release(idx, data);
    }
    w = 0;
    memcpy(&w, data, len);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
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

/* si_rec_uid_cmp - qsort by UID */
static int si_rec_uid_cmp(const void *a, const void *b)
{
    uint32_t x = (*(const struct store_rec *const *) a)->uid;
    uint32_t y = (*(const struct store_rec *const *) b)->uid;

    return x < y ? -1 : x > y;
}

/* si_add - append a record (name points into the index's data) */
static struct store_rec *si_add(struct store_index *idx)
{
    if (idx->no_recs) {
	idx->count++;
	return &idx->one;
    }
    if (idx->count == idx->cap) {
	idx->cap = idx->cap ? mem_size_mul(idx->cap, 2) : 64;
	idx->recs = mem_realloc(idx->recs, mem_size_mul(idx->cap, sizeof(*idx->recs)));
    }
    return &idx->recs[idx->count++];
}

/* si_header - "NAME VALUE\n" at *cp (NAME with its space in word) */
static bool si_header(const char **cp, const char *end, const char *word, unsigned long long max,
		      unsigned long long *v_r)
{
    size_t n = strlen(word);

    if ((size_t) (end - *cp) < n + 2 || memcmp(*cp, word, n) != 0)
	return false;
    *cp += n;
    return si_ulong(cp, '\n', max, v_r);
}

/*
 * si_parse - the index in idx->data[0..len) (NUL-terminated, owned):
 * header lines, one line per message ("UID MODSEQ SIZE CRLFSIZE MTIME
 * NAME"; version 1 without MODSEQ; UIDs ascending, all below UIDNEXT),
 * and "end COUNT HASH" over everything before it. Lines are cut at
 * their newline (names become strings in place). Whatever fails leaves
 * DAMAGED with the lines read before it.
 */
static void si_parse_1(struct store_index *idx, size_t len)
{
    char *data = idx->data, *cp = data, *end = data + len, *nl;
    unsigned long long uv, next, uid, size, crlf, mtime, count, modseq = 0;
    unsigned long long hms = 0, recent = 0, csec = 0, cnsec = 0, ino = 0, msec, mnsec;
    unsigned long long nv[5] = {0, 0, 0, 0, 0};
    bool in_new;
    uint32_t last_uid = 0;
    struct store_rec *r;
    const char *ccp;
    int version;
    bool hash_ok = false;

    idx->state = STORE_INDEX_DAMAGED;
    {
	/* the records' array at its size (lines bound it), not doubled:
	 * 10,000 records are 0.8 MB */
	size_t lines = 0;
	const char *q = data;

	store_index_walk_begin(idx);
	while (q < end && (q = memchr(q, '\n', (size_t) (end - q))) != NULL) {
	    q++, lines++;
	    if ((lines & 63) == 0)
		store_index_release(idx, q);
	}
	si_release_all(idx);
	if (lines > 7 && idx->cap == 0 && !idx->no_recs) {
	    idx->cap = lines - 7;
	    idx->recs = mem_alloc_array(idx->cap, sizeof(*idx->recs));
	}
    }
#define SI_LINE() ((nl = memchr(cp, '\n', (size_t) (end - cp))) != NULL)
    if (!SI_LINE())
	return;
    if ((size_t) (nl - cp) == strlen(STORE_INDEX_MAGIC)
	&& memcmp(cp, STORE_INDEX_MAGIC, (size_t) (nl - cp)) == 0)
	version = 2;
    else if ((size_t) (nl - cp) == strlen(STORE_INDEX_MAGIC1)
	     && memcmp(cp, STORE_INDEX_MAGIC1, (size_t) (nl - cp)) == 0)
	version = 1;
    else
	return;
    idx->version = version;
    if (version == 1 && memchr(data, 0, len) != NULL)
	len = (size_t) ((char *) memchr(data, 0, len) - data), end = data + len;
    if (version == 2) {
	/* the check sum first (over everything before the last line,
	 * "end COUNT HASH"), so that lines can be cut while parsed */
	const char *last = end, *sp;

	if (last > data && last[-1] == '\n')
	    last--;
	while (last > data && last[-1] != '\n')
	    last--;
	if ((size_t) (end - last) > 4 && memcmp(last, "end ", 4) == 0
	    && (sp = memchr(last + 4, ' ', (size_t) (end - last - 4))) != NULL)
	    hash_ok = si_hash2(idx, data, (size_t) (last - data)) == strtoull(sp + 1, NULL, 16);
	si_release_all(idx);
    }
    ccp = nl + 1;
    if (!si_header(&ccp, end, "uidvalidity ", UINT32_MAX, &uv) || uv == 0
	|| !si_header(&ccp, end, "uidnext ", UINT32_MAX, &next) || next == 0)
	return;
    idx->h.uidvalidity = (uint32_t) uv;
    idx->h.uidnext = (uint32_t) next;
    if (version == 2) {
	if (!si_header(&ccp, end, "highestmodseq ", STORE_MODSEQ_MAX, &hms) || hms == 0
	    || !si_header(&ccp, end, "recent ", UINT32_MAX, &recent) || recent > next)
	    return;
	idx->h.highestmodseq = hms;
	idx->h.recent = (uint32_t) recent;
    }
    if ((size_t) (end - ccp) < 4 || memcmp(ccp, "cur ", 4) != 0)
	return;
    ccp += 4;
    if (!si_ulong(&ccp, ' ', INT64_MAX, &msec)
	|| !si_ulong(&ccp, version == 1 ? '\n' : ' ', 999999999, &mnsec))
	return;
    if (version == 2 && (!si_ulong(&ccp, ' ', INT64_MAX, &csec)
			 || !si_ulong(&ccp, ' ', 999999999, &cnsec)
			 || !si_ulong(&ccp, '\n', UINT64_MAX, &ino)))
	return;
    /* (version 2, optional: "new MSEC MNSEC CSEC CNSEC INO", new/'s stamp) */
    if (version == 2 && (size_t) (end - ccp) > 4 && memcmp(ccp, "new ", 4) == 0) {
	ccp += 4;
	if (!si_ulong(&ccp, ' ', INT64_MAX, &nv[0]) || !si_ulong(&ccp, ' ', 999999999, &nv[1])
	    || !si_ulong(&ccp, ' ', INT64_MAX, &nv[2]) || !si_ulong(&ccp, ' ', 999999999, &nv[3])
	    || !si_ulong(&ccp, '\n', UINT64_MAX, &nv[4]))
	    return;
    }
    cp = (char *) ccp;
    idx->first_line = cp;
    while (SI_LINE() && strncmp(cp, "end ", 4) != 0) {
	ccp = cp;
	if (!si_ulong(&ccp, ' ', UINT32_MAX, &uid) || uid <= last_uid || uid >= next
	    || (version == 2 && (!si_ulong(&ccp, ' ', INT64_MAX, &modseq) || modseq == 0
				 || modseq > hms))
	    || !si_ulong(&ccp, ' ', (unsigned long long) INT64_MAX, &size)
	    || !si_ulong(&ccp, ' ', (unsigned long long) INT64_MAX, &crlf)
	    || !si_ulong(&ccp, ' ', (unsigned long long) INT64_MAX, &mtime))
	    return;
	/* (version 2: "new/NAME", a message left in new/) */
	in_new = version == 2 && nl - ccp > 4 && memcmp(ccp, "new/", 4) == 0;
	if (in_new)
	    ccp += 4;
	if ((crlf < size && crlf != 0) || ccp >= nl || *ccp == '.' || *ccp == ',' || *ccp == ':'
	    || memchr(ccp, '/', (size_t) (nl - ccp))
	    || (version == 2 && (nl - ccp < 2 || memchr(ccp, 0, (size_t) (nl - ccp)) != nl - 1))
	    || (version == 1 && memchr(ccp, 0, (size_t) (nl - ccp)) != NULL))
	    return;
	/* (version 2: "NAME\0\n", the name a string in place) */
	r = si_add(idx);
	r->name = (char *) ccp;
	r->keylen = strcspn(r->name, ",:\n");
	r->uid = (uint32_t) uid;
	r->modseq = modseq;
	r->size = (off_t) size;
	/* (0: not counted yet, unless the message is empty) */
	r->crlf_size = crlf == 0 && size > 0 ? -1 : (off_t) crlf;
	r->mtime = (time_t) mtime;
	r->flags = 0;
	r->in_new = in_new;
	idx->n_new += in_new;
	{
	    const char *info = memrchr(ccp, ':', (size_t) (nl - ccp));

	    if (info && nl - info >= 3 && info[1] == '2' && info[2] == ',')
		r->flags = store_flags_parse_n(info + 3, (size_t) (nl - info - 3));
	}
	last_uid = (uint32_t) uid;
	cp = nl + 1;
	if ((idx->count & 63) == 0)
	    store_index_release(idx, cp);
    }
    if (SI_LINE()) {
	const char *tail = cp + 4;
	bool sum_ok = version == 2 ? hash_ok
	    : strtoull(cp + 4 + strcspn(cp + 4, " \n"), NULL, 16) == si_hash(data, (size_t) (cp - data));

	if (si_ulong(&tail, ' ', UINT64_MAX, &count) && count == idx->count
	    && sum_ok && tail + 16 == nl && nl + 1 == end) {
	    idx->state = STORE_INDEX_VALID;
	    if (version == 2) {
		idx->h.cur.msec = (long long) msec;
		idx->h.cur.mnsec = (long) mnsec;
		idx->h.cur.csec = (long long) csec;
		idx->h.cur.cnsec = (long) cnsec;
		idx->h.cur.ino = ino;
		idx->h.newd.msec = (long long) nv[0];
		idx->h.newd.mnsec = (long) nv[1];
		idx->h.newd.csec = (long long) nv[2];
		idx->h.newd.cnsec = (long) nv[3];
		idx->h.newd.ino = nv[4];
	    }
	}
    }
#undef SI_LINE
}

/* si_parse - si_parse_1, then no page of a mapped file stays mapped
 * into the process (the walks released them as they went) */
static void si_parse(struct store_index *idx, size_t len)
{
    si_parse_1(idx, len);
    si_release_all(idx);
}

/* si_cut_lines - the records' names become strings (after si_parse,
 * whose hash needs the newlines) */
static void si_cut_lines(struct store_index *idx)
{
    size_t i;
    char *nl;

    for (i = 0; i < idx->count && idx->recs; i++)
	if ((nl = strchr(idx->recs[i].name, '\n')) != NULL)
	    *nl = 0;
}

/* store_index_parse - parse a copy of data[0..len) */
void store_index_parse(const char *data, size_t len, struct store_index *idx)
{
    memset(idx, 0, sizeof(*idx));
    idx->data = mem_alloc(len + 1);
    memcpy(idx->data, data, len);
    idx->data[len] = 0;
    si_parse(idx, len);
    if (idx->version == 1)
	si_cut_lines(idx);
}

/* store_index_read - dir_fd's index file: mapped (a version 2 index
 * is never written to in place: replaced by rename, so the mapping
 * stays valid as long as it lives; its names are strings in it), or
 * read into memory (version 1, whose lines must be cut) */
static void si_read(int dir_fd, struct store_index *idx, bool no_recs)
{
    struct stat st;
    size_t have = 0, cap;
    ssize_t n;
    int fd;
    bool bad = false;
    void *map;

    memset(idx, 0, sizeof(*idx));
    idx->no_recs = no_recs;
    fd = openat(dir_fd, STORE_INDEX_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
	idx->state = errno == ENOENT ? STORE_INDEX_MISSING : STORE_INDEX_DAMAGED;
	return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	(void) close(fd);
	idx->state = STORE_INDEX_DAMAGED;
	return;
    }
    if (st.st_size > (off_t) strlen(STORE_INDEX_MAGIC) && (size_t) st.st_size < STORE_INDEX_MAX
	&& (map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd,
		       0)) != MAP_FAILED) {
	if (memcmp(map, STORE_INDEX_MAGIC "\n", strlen(STORE_INDEX_MAGIC) + 1) == 0) {
	    idx->map_fd = fd;		/* (kept: store.c reads single names) */
	    idx->data = map;
	    idx->map_len = (size_t) st.st_size;
	    si_parse(idx, idx->map_len);
	    return;
	}
	(void) munmap(map, (size_t) st.st_size);
    }
    cap = st.st_size > 0 && (size_t) st.st_size < STORE_INDEX_MAX ? (size_t) st.st_size + 1
	: 65536;
    idx->data = mem_alloc(cap + 1);
    for (;;) {
	if (have == cap) {
	    if (cap >= STORE_INDEX_MAX) {
		bad = true;		/* too big: what was read is damaged */
		break;
	    }
	    cap = mem_size_mul(cap, 2);
	    idx->data = mem_realloc(idx->data, cap + 1);
	}
	n = read(fd, idx->data + have, cap - have);
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    bad = true;
	if (n <= 0)
	    break;
	have += (size_t) n;
    }
    (void) close(fd);
    idx->data[have] = 0;
    si_parse(idx, have);
    if (idx->version == 1)
	si_cut_lines(idx);
    if (bad)
	idx->state = STORE_INDEX_DAMAGED;
}

/* store_index_read - with the records */
void store_index_read(int dir_fd, struct store_index *idx)
{
    si_read(dir_fd, idx, false);
}

/* store_index_read_lean - store_index_read keeping no records */
void store_index_read_lean(int dir_fd, struct store_index *idx)
{
    si_read(dir_fd, idx, true);
}

/* store_index_line - one line of a checked version 2 index (si_parse
 * has validated every number and name) */
void store_index_line(const char **cp, struct store_rec *r)
{
    char *ep;
    unsigned long long crlf;

    memset(r, 0, sizeof(*r));
    r->uid = (uint32_t) strtoull(*cp, &ep, 10);
    r->modseq = strtoull(ep + 1, &ep, 10);
    r->size = (off_t) strtoull(ep + 1, &ep, 10);
    crlf = strtoull(ep + 1, &ep, 10);
    r->crlf_size = crlf == 0 && r->size > 0 ? -1 : (off_t) crlf;
    r->mtime = (time_t) strtoull(ep + 1, &ep, 10);
    ep++;
    r->in_new = strncmp(ep, "new/", 4) == 0;
    if (r->in_new)
	ep += 4;
    r->name = ep;
    r->keylen = (uint32_t) strcspn(ep, ",:");
    {
	const char *info = strrchr(ep, ':');

	if (info && info[1] == '2' && info[2] == ',')
	    r->flags = store_flags_parse_n(info + 3, strlen(info + 3));
    }
    *cp = ep + strlen(ep) + 2;		/* ("NAME\0\n") */
}

/* store_index_free - free the records and the data */
void store_index_free(struct store_index *idx)
{
    mem_free(&idx->recs);
    if (idx->map_len) {
	(void) munmap(idx->data, idx->map_len);
	(void) close(idx->map_fd);
    } else
	mem_free(&idx->data);
    mem_free(&idx->bykey);
    memset(idx, 0, sizeof(*idx));
}

static const struct store_rec *si_sort_recs;	/* (for the qsort below) */

/* si_bykey_cmp - qsort record numbers by key hash, then key */
static int si_bykey_cmp(const void *a, const void *b)
{
    const struct store_rec *x = &si_sort_recs[*(const size_t *) a];
    const struct store_rec *y = &si_sort_recs[*(const size_t *) b];

    if (x->khash != y->khash)
	return x->khash < y->khash ? -1 : 1;
    return si_key_cmp(x->name, x->keylen, y->name, y->keylen);
}

/* store_index_sort - the key order, and no key twice */
void store_index_sort(struct store_index *idx)
{
    struct store_rec *x, *y;
    size_t i;

    mem_free(&idx->bykey);
    idx->bykey = mem_alloc_array(idx->count ? idx->count : 1, sizeof(*idx->bykey));
    for (i = 0; i < idx->count; i++) {
	idx->bykey[i] = i;
	idx->recs[i].khash = store_key_hash(idx->recs[i].name, idx->recs[i].keylen);
    }
    si_sort_recs = idx->recs;
    if (idx->count > 1)
	qsort(idx->bykey, idx->count, sizeof(*idx->bykey), si_bykey_cmp);
    for (i = 1; i < idx->count; i++) {
	x = &idx->recs[idx->bykey[i - 1]];
	y = &idx->recs[idx->bykey[i]];
	if (x->khash == y->khash && si_key_cmp(x->name, x->keylen, y->name, y->keylen) == 0) {
	    /* a key twice cannot be written by us: not valid, and neither
	     * copy's UID can be trusted */
	    idx->state = STORE_INDEX_DAMAGED;
	    x->uid = 0;
	    y->uid = 0;
	}
    }
}

/* store_index_find - binary search by key hash, then key */
struct store_rec *store_index_find(struct store_index *idx, const char *key, size_t keylen)
{
    size_t lo = 0, hi = idx->count, mid;
    uint64_t h = store_key_hash(key, keylen);
    struct store_rec *r;
    int c;

    if (idx->bykey == NULL)
	store_index_sort(idx);
    while (lo < hi) {
	mid = lo + (hi - lo) / 2;
	r = &idx->recs[idx->bykey[mid]];
	c = r->khash != h ? (r->khash < h ? -1 : 1) : si_key_cmp(r->name, r->keylen, key, keylen);
	if (c == 0)
	    return r;
	if (c < 0)
	    lo = mid + 1;
	else
	    hi = mid;
    }
    return NULL;
}

/* store_dirstamp_get - the directory's mtime, ctime and inode */
bool store_dirstamp_get(int fd, struct store_dirstamp *st_r, bool only_if_old)
{
    struct timespec now;
    struct stat st;

    memset(st_r, 0, sizeof(*st_r));
    if (fstat(fd, &st) < 0)
	return false;
    if (only_if_old) {
	(void) clock_gettime(CLOCK_REALTIME, &now);
	if (st.st_mtim.tv_sec + 2 > now.tv_sec || st.st_ctim.tv_sec + 2 > now.tv_sec)
	    return true;		/* too young: unknown */
    }
    return store_dirstamp_get_before(fd, st_r, NULL);
}

/* sd_before - whether t is more than STORE_STAMP_MARGIN_MS before limit */
static bool sd_before(const struct timespec *t, const struct timespec *limit)
{
    long long ms = ((long long) limit->tv_sec - (long long) t->tv_sec) * 1000
	+ (limit->tv_nsec - t->tv_nsec) / 1000000;

    return ms > STORE_STAMP_MARGIN_MS;
}

/* store_dirstamp_get_before - the stamp, all 0 unless both times are
 * well before limit (NULL: no condition) */
bool store_dirstamp_get_before(int fd, struct store_dirstamp *st_r, const struct timespec *limit)
{
    struct stat st;

    memset(st_r, 0, sizeof(*st_r));
    if (fstat(fd, &st) < 0)
	return false;
    if (limit && (!sd_before(&st.st_mtim, limit) || !sd_before(&st.st_ctim, limit)))
	return true;			/* too young: unknown */
    st_r->msec = (long long) st.st_mtim.tv_sec;
    st_r->mnsec = st.st_mtim.tv_nsec;
    st_r->csec = (long long) st.st_ctim.tv_sec;
    st_r->cnsec = st.st_ctim.tv_nsec;
    st_r->ino = (unsigned long long) st.st_ino;
    return true;
}

/* store_dirstamp_same - both known and equal */
bool store_dirstamp_same(const struct store_dirstamp *a, const struct store_dirstamp *b)
{
    return a->msec != 0 && a->msec == b->msec && a->mnsec == b->mnsec && a->csec == b->csec
	&& a->cnsec == b->cnsec && a->ino == b->ino;
}

/* store_write_atomic - temp file, fsync, rename, fsync the directory */
int store_write_atomic(int dir_fd, const char *tmp, const char *name, const void *data,
		       size_t len, const char **error_r)
{
    return store_write_atomic2(dir_fd, tmp, name, data, len, true, error_r);
}

/* store_write_atomic2 - the same; without durable the file's data is
 * not fsynced (a crash may leave it damaged: only for files whose
 * damage is detected and repaired, the index), but the directory is:
 * the old version never comes back */
int store_write_atomic2(int dir_fd, const char *tmp, const char *name, const void *data,
			size_t len, bool durable, const char **error_r)
{
    int fd, err;

    (void) unlinkat(dir_fd, tmp, 0);
    fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
	return errtext_fail(&store_error, error_r, "create %s: %s", tmp, strerror(errno));
    if (write_all_fd(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
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

/* si_put_num - v in decimal and a space, without printf */
static char *si_put_num(char *p, unsigned long long v, char after)
{
    char tmp[24];
    int n = 0;

    do
	tmp[n++] = (char) ('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
	*p++ = tmp[--n];
    *p++ = after;
    return p;
}

/* si_line - record r's line into line (at least 6 * 24 + NAME_MAX + 7
 * bytes); its length, 0 if the name cannot be a file name */
static size_t si_line(const struct store_rec *r, char *line)
{
    size_t nlen = strlen(r->name);
    char *p;

    if (nlen > NAME_MAX)
	return 0;
    p = si_put_num(line, r->uid, ' ');
    p = si_put_num(p, r->modseq, ' ');
    p = si_put_num(p, (unsigned long long) r->size, ' ');
    p = si_put_num(p, (unsigned long long) (r->crlf_size > 0 ? r->crlf_size : 0), ' ');
    p = si_put_num(p, (unsigned long long) (r->mtime > 0 ? r->mtime : 0), ' ');
    if (r->in_new) {
	memcpy(p, "new/", 4);
	p += 4;
    }
    memcpy(p, r->name, nlen);
    p += nlen;
    *p++ = 0;
    *p++ = '\n';
    return (size_t) (p - line);
}

/* A streamed write: a bounded buffer, flushed in multiples of 8 bytes so
 * that si_hash2's words can be taken as the bytes go out. */
struct si_out {
    int fd;
    uint64_t h;
    size_t len;
    char buf[65536];
    bool failed;
};

/* si_out_flush - hash and write the whole words of the buffer (all of
 * it when last, the tail as si_hash2's last word) */
static void si_out_flush(struct si_out *o, bool last)
{
    size_t whole = o->len & ~(size_t) 7, i;
    uint64_t w;

    for (i = 0; i < whole; i += 8) {
	memcpy(&w, o->buf + i, 8);
	o->h = (o->h ^ w) * 0x9e3779b97f4a7c15ULL;
	o->h ^= o->h >> 31;
    }
    if (last) {
	w = 0;
	memcpy(&w, o->buf + whole, o->len - whole);
	o->h = (o->h ^ w) * 0xff51afd7ed558ccdULL;
	o->h ^= o->h >> 33;
	whole = o->len;
    }
    if (!o->failed && whole > 0 && write_all_fd(o->fd, o->buf, whole) < 0)
	o->failed = true;
    memmove(o->buf, o->buf + whole, o->len - whole);
    o->len -= whole;
}

/* si_out_put - append data[0..n) (n well under the buffer) */
static void si_out_put(struct si_out *o, const char *data, size_t n)
{
    if (sizeof(o->buf) - o->len < n)
	si_out_flush(o, false);
    memcpy(o->buf + o->len, data, n);
    o->len += n;
}

/* si_get_sorted - store_index_write's getter over its sorted pointers */
static const struct store_rec *si_get_sorted(size_t i, void *ctx, struct store_rec *tmp)
{
    (void) tmp;
    return ((const struct store_rec **) ctx)[i];
}

/* store_index_write - the whole index, in UID order, atomically */
int store_index_write(int dir_fd, const struct store_index_head *h, const struct store_rec *recs,
		      size_t count, bool durable, const char **error_r)
{
    const struct store_rec **order;
    size_t i, sorted = 1;
    int ret;

    order = mem_alloc_array(count ? count : 1, sizeof(*order));
    for (i = 0; i < count; i++) {
	order[i] = &recs[i];
	if (i > 0 && recs[i].uid < recs[i - 1].uid)
	    sorted = 0;
    }
    if (!sorted)
	qsort(order, count, sizeof(*order), si_rec_uid_cmp);
    ret = store_index_write_fn(dir_fd, h, count, si_get_sorted, order, durable, error_r);
    mem_free(&order);
    return ret;
}

/* store_index_write_fn - written through a 64 KiB buffer (two passes
 * over the records: the check sum begins with the length), never whole
 * in memory */
int store_index_write_fn(int dir_fd, const struct store_index_head *h, size_t count,
			 store_index_get_fn get, void *ctx, bool durable, const char **error_r)
{
    struct store_rec tmp;
    struct si_out *o;
    size_t i, n, total, written = 0;
    char head[512], line[6 * 24 + NAME_MAX + 7], tail[64];
    int ret = -1, err;

    fmt_buf_or_panic(head, sizeof(head), "%s\nuidvalidity %lu\nuidnext %lu\nhighestmodseq %llu\n"
		     "recent %lu\ncur %lld %ld %lld %ld %llu\nnew %lld %ld %lld %ld %llu\n",
		     STORE_INDEX_MAGIC, (unsigned long) h->uidvalidity,
		     (unsigned long) h->uidnext, (unsigned long long) h->highestmodseq,
		     (unsigned long) h->recent, h->cur.msec, h->cur.mnsec, h->cur.csec,
		     h->cur.cnsec, h->cur.ino, h->newd.msec, h->newd.mnsec, h->newd.csec,
		     h->newd.cnsec, h->newd.ino);
    total = strlen(head);
    for (i = 0; i < count; i++)
	total += si_line(get(i, ctx, &tmp), line);
    if (total >= STORE_INDEX_MAX)
	return errtext_fail(&store_error, error_r, "index too big (%zu messages)", count);
    o = mem_alloc(sizeof(*o));
    o->len = 0;
    o->failed = false;
    o->h = 0xcbf29ce484222325ULL ^ total;
    (void) unlinkat(dir_fd, STORE_INDEX_TMP, 0);
    o->fd = openat(dir_fd, STORE_INDEX_TMP, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   0600);
    if (o->fd < 0) {
	ret = errtext_fail(&store_error, error_r, "create %s: %s", STORE_INDEX_TMP,
			   strerror(errno));
	goto out;
    }
    si_out_put(o, head, strlen(head));
    for (i = 0; i < count; i++)
	if ((n = si_line(get(i, ctx, &tmp), line)) > 0) {
	    si_out_put(o, line, n);
	    written++;
	}
    si_out_flush(o, true);
    fmt_buf_or_panic(tail, sizeof(tail), "end %zu %016llx\n", written, (unsigned long long) o->h);
    if (o->failed || write_all_fd(o->fd, tail, strlen(tail)) < 0 || (durable && fsync(o->fd) < 0)) {
	err = errno;
	(void) close(o->fd);
	(void) unlinkat(dir_fd, STORE_INDEX_TMP, 0);
	ret = errtext_fail(&store_error, error_r, "write %s: %s", STORE_INDEX_TMP, strerror(err));
	goto out;
    }
    if (close(o->fd) < 0 || renameat(dir_fd, STORE_INDEX_TMP, dir_fd, STORE_INDEX_FILE) < 0) {
	err = errno;
	(void) unlinkat(dir_fd, STORE_INDEX_TMP, 0);
	ret = errtext_fail(&store_error, error_r, "replace %s: %s", STORE_INDEX_FILE,
			   strerror(err));
	goto out;
    }
    if (fsync(dir_fd) < 0) {
	ret = errtext_fail(&store_error, error_r, "fsync after replacing %s: %s",
			   STORE_INDEX_FILE, strerror(errno));
	goto out;
    }
    ret = 0;
  out:
    mem_free(&o);
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

/*
 * The new/ list, posthorn-newlist: "posthorn-newlist 1 UIDVALIDITY\n"
 * then "UID KEY\n" for each message left in new/ (whose name carries
 * no U=), so that a lost or damaged index is rebuilt with their UIDs
 * as cur/'s are from their names. A hint only, like U=: written
 * without fsync, read only when the index is not trusted.
 */

/* store_newlist_write - the list of recs[0..count) that are in_new */
#define SI_NL_BUF	((size_t) 64 << 10)

int store_newlist_write(int dir_fd, uint32_t uidvalidity, size_t count, store_index_get_fn get,
			void *ctx, const char **error_r)
{
    const struct store_rec *r;
    struct store_rec tmp;
    char *buf, *p;			/* (not on the stack: a page touched
					 * there stays the process's) */
    size_t i, nlen;
    int fd, err;

    (void) unlinkat(dir_fd, STORE_NEWLIST_TMP, 0);
    fd = openat(dir_fd, STORE_NEWLIST_TMP, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		0600);
    if (fd < 0)
	return errtext_fail(&store_error, error_r, "create %s: %s", STORE_NEWLIST_TMP,
			    strerror(errno));
    p = buf = mem_alloc(SI_NL_BUF);
    memcpy(p, "posthorn-newlist 1 ", 19);
    p = si_put_num(p + 19, uidvalidity, '\n');
    for (i = 0; i < count; i++) {
	r = get(i, ctx, &tmp);
	if (!r->in_new || (nlen = r->keylen) > NAME_MAX)
	    continue;
	if ((size_t) (buf + SI_NL_BUF - p) < nlen + 32) {
	    if (write_all_fd(fd, buf, (size_t) (p - buf)) < 0)
		goto fail;
	    p = buf;
	}
	p = si_put_num(p, r->uid, ' ');
	memcpy(p, r->name, nlen);
	p += nlen;
	*p++ = '\n';
    }
    if (write_all_fd(fd, buf, (size_t) (p - buf)) < 0)
	goto fail;
    mem_free(&buf);
    if (close(fd) < 0 || renameat(dir_fd, STORE_NEWLIST_TMP, dir_fd, STORE_NEWLIST_FILE) < 0) {
	err = errno;
	(void) unlinkat(dir_fd, STORE_NEWLIST_TMP, 0);
	return errtext_fail(&store_error, error_r, "replace %s: %s", STORE_NEWLIST_FILE,
			    strerror(err));
    }
    return 0;
  fail:
    err = errno;
    mem_free(&buf);
    (void) close(fd);
    (void) unlinkat(dir_fd, STORE_NEWLIST_TMP, 0);
    return errtext_fail(&store_error, error_r, "write %s: %s", STORE_NEWLIST_TMP, strerror(err));
}

/* store_newlist_read - read the list into idx's records (as a damaged
 * index's hint: in_new, uid and name only; idx must be MISSING or
 * DAMAGED, its old records are dropped); the list's UIDVALIDITY, 0 if
 * there is none */
uint32_t store_newlist_read(int dir_fd, struct store_index *idx)
{
    struct str *s = str_new(STORE_INDEX_MAX);
    unsigned long long uv = 0, uid;
    struct store_rec *r;
    const char *err, *cp, *end, *nl, *p;
    int fd;

    fd = openat(dir_fd, STORE_NEWLIST_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || file_read_fd(fd, STORE_NEWLIST_FILE, s, STORE_INDEX_MAX, &err) < 0) {
	if (fd >= 0)
	    (void) close(fd);
	str_free(&s);
	return 0;
    }
    (void) close(fd);
    cp = str_cstr(s);
    end = cp + str_len(s);
    if ((size_t) (end - cp) < 19 || memcmp(cp, "posthorn-newlist 1 ", 19) != 0
	|| (cp += 19, !si_ulong(&cp, '\n', UINT32_MAX, &uv))) {
	str_free(&s);
	return 0;
    }
    store_index_free(idx);
    idx->state = STORE_INDEX_DAMAGED;
    idx->data = mem_alloc((size_t) (end - cp) + 1);
    memcpy(idx->data, cp, (size_t) (end - cp));
    idx->data[end - cp] = 0;
    cp = idx->data;
    end = cp + strlen(cp);
    for (; cp < end && (nl = memchr(cp, '\n', (size_t) (end - cp))) != NULL; cp = nl + 1) {
	p = cp;
	if (!si_ulong(&p, ' ', UINT32_MAX, &uid) || uid == 0 || p >= nl
	    || memchr(p, '/', (size_t) (nl - p)) || *p == '.')
	    continue;
	*(char *) nl = 0;
	r = si_add(idx);
	memset(r, 0, sizeof(*r));
	r->name = (char *) p;
	r->keylen = (size_t) (nl - p);
	r->uid = (uint32_t) uid;
	r->in_new = true;
	idx->n_new++;
    }
    str_free(&s);
    return (uint32_t) uv;
}
