/* store.c - a Maildir mailbox with stable UIDs (store.h): opening, the
 * synchronisation of the index with cur/ and new/ under the mailbox
 * lock (new mail gets UIDs and moves to cur/), reading, flag changes
 * and expunges. docs/mailstore.md has the design. */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
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

/* A file found in cur/ or new/ during a synchronisation. */
struct sm_entry {			/* (64 bytes: one per message while a
				 * synchronisation runs) */
    char *name;			/* owned */
    union {
	uint64_t khash;		/* store_key_hash of the unique part
				 * (step 3: UIDs in key order) */
	uint64_t modseq;	/* (from step 5 on, when khash is done
				 * with) */
    };
    off_t size;
    off_t crlf_size;
    time_t mtime;
    uint32_t uid;		/* 0: none yet */
    uint32_t name_uid;		/* the name's U= (0: none, or not kept) */
    uint32_t rec;		/* 1 + the index of the valid index's
				 * record for it in idx.recs; 0: none */
    uint32_t flags;		/* the name's ":2," flags */
    uint16_t keylen;		/* the unique part: name[0..keylen) */
    bool in_new:1;
    bool known:1;		/* sizes and mtime are set */
    bool name_sizes:1;		/* (known) the name's S= and W= say so */
    bool dupkey:1;		/* a unique part seen before: renamed to
				 * KEY-UID to make it unique */
    bool name_heap:1;		/* name is its own allocation (else in the
				 * list's name blocks) */
};

/* sm_entry_parsed - e's name-derived fields from a parsed name */
static void sm_entry_parsed(struct sm_entry *e, const struct store_name *pn)
{
    e->name_uid = pn->uid;
    e->keylen = (uint16_t) pn->keylen;
    e->flags = pn->flags;
}

/* sm_known - e's size and CRLF size are now size and crlf: the name's
 * W= stands for an uncounted CRLF size when its S= is the size; whether
 * the name says both (else the synchronisation renames the file) */
static void sm_known(struct sm_entry *e, off_t size, off_t crlf)
{
    struct store_name pn;

    if (!store_name_parse(e->name, &pn))
	pn.size = pn.crlf_size = -1;
    if (crlf < 0 && pn.size == (long long) size && pn.crlf_size >= pn.size)
	crlf = (off_t) pn.crlf_size;
    e->size = size;
    e->crlf_size = crlf;
    e->name_sizes = pn.size == (long long) size
	&& (pn.crlf_size == (long long) crlf || pn.crlf_size < 0);
    e->known = true;
}

/* Scanned names, packed one after another (no allocation per name). */
struct sm_block {
    struct sm_block *next;
    size_t used;
    size_t size;
    char data[];
};

#define SM_BLOCK_SIZE	((size_t) 65536 - sizeof(struct sm_block) - 32)
#define SM_NAMEWIN	((size_t) 8192)	/* bytes of the index read at once for
					 * message names (sm_name_cold) */

struct sm_list {
    struct sm_entry *v;
    size_t count;
    size_t cap;
    struct sm_block *blocks;	/* the newest first */
};

/* sm_name_dup - a copy of name in the list's blocks */
static char *sm_name_dup(struct sm_list *l, const char *name)
{
    size_t len = strlen(name) + 1;
    struct sm_block *b = l->blocks;
    char *p;

    if (b == NULL || b->size - b->used < len) {
	size_t size = len > SM_BLOCK_SIZE ? len : SM_BLOCK_SIZE;

	b = mem_alloc(sizeof(*b) + size);
	b->next = l->blocks;
	b->used = 0;
	b->size = size;
	l->blocks = b;
    }
    p = b->data + b->used;
    memcpy(p, name, len);
    b->used += len;
    return p;
}

/* sm_name_drop - the entry has no name any more */
static void sm_name_drop(struct sm_entry *e)
{
    if (e->name_heap)
	mem_free(&e->name);
    e->name = NULL;
    e->name_heap = false;
}

/* sm_list_free - free the entries */
static void sm_list_free(struct sm_list *l)
{
    struct sm_block *b;
    size_t i;

    for (i = 0; i < l->count; i++)
	sm_name_drop(&l->v[i]);
    mem_free(&l->v);
    l->count = l->cap = 0;
    while ((b = l->blocks) != NULL) {
	l->blocks = b->next;
	mem_free(&b);
    }
}

unsigned long store_cur_scans;

/* sm_scan - add the message files of directory fd (cur/ or new/) */
static int sm_scan(int fd, bool in_new, struct sm_list *l, const char **error_r)
{
    struct store_name pn;
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
    if (!in_new)
	store_cur_scans++;
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
	if (!store_name_parse(d->d_name, &pn))
	    continue;
	sm_entry_parsed(e, &pn);
	e->name = sm_name_dup(l, d->d_name);
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

/* sm_from_index - the entries of cur/ (or of new/: want_new) as the
 * index lists them */
static void sm_from_index(const struct store_index *idx, struct sm_list *l, bool want_new)
{
    struct store_name pn;
    struct sm_entry *e;
    size_t i;

    l->cap = l->count + idx->count + 16;
    l->v = mem_realloc(l->v, mem_size_mul(l->cap, sizeof(*l->v)));
    for (i = 0; i < idx->count; i++) {
	if (idx->recs[i].in_new != want_new)
	    continue;
	e = &l->v[l->count];
	memset(e, 0, sizeof(*e));
	if (!store_name_parse(idx->recs[i].name, &pn))
	    continue;
	sm_entry_parsed(e, &pn);
	e->name = sm_name_dup(l, idx->recs[i].name);
	e->in_new = want_new;
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

/* sm_entry_cmp_key - qsort pointers by unique part (its hash first),
 * then cur/ before new/, then the whole name */
static int sm_entry_cmp_key(const void *a, const void *b)
{
    const struct sm_entry *x = *(const struct sm_entry *const *) a;
    const struct sm_entry *y = *(const struct sm_entry *const *) b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c;

    if (x->khash != y->khash)
	return x->khash < y->khash ? -1 : 1;
    if ((c = memcmp(x->name, y->name, n)) != 0)
	return c;
    if (x->keylen != y->keylen)
	return x->keylen < y->keylen ? -1 : 1;
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
 * sm_measure - fill in size and mtime of e from the file's inode (one
 * fstatat: no message is opened or read); the CRLF size from the name's
 * W= when its S= matches the file, else not counted yet (-1: counted
 * when first asked for, store_msg_crlf_size). 0; 1 if the file is gone
 * or not a regular file; -1 on error.
 */
static int sm_measure(struct store_mailbox *mb, struct sm_entry *e, const char **error_r)
{
    struct stat st;

    if (fstatat(e->in_new ? mb->new_fd : mb->cur_fd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
	if (errno == ENOENT)
	    return 1;
	return errtext_fail(&store_error, error_r, "stat %s/%s/%s: %s", mb->path,
			    e->in_new ? "new" : "cur", e->name, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
	return 1;			/* not a message: leave it alone */
    e->mtime = st.st_mtime;
    sm_known(e, st.st_size, -1);
    return 0;
}

/* store_rename - renameat, never replacing a file when noreplace (where
 * the file system cannot, link and unlink, as local-delivery does) */
int store_rename(int from_fd, const char *from, int to_fd, const char *to, bool noreplace)
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

/* store_lock - take the mailbox lock (if there is one; nested calls
 * count) */
void store_lock(struct store_mailbox *mb)
{
    if (mb->lock_depth++ > 0)
	return;
    if (mb->lock_fd >= 0)
	while (flock(mb->lock_fd, LOCK_EX) < 0 && errno == EINTR)
	    continue;
}

/* store_unlock - release it (at the outermost level) */
void store_unlock(struct store_mailbox *mb)
{
    if (mb->lock_depth == 0 || --mb->lock_depth > 0)
	return;
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

/* store_snap_free - free a snapshot */
void store_snap_free(struct sm_snap *snap)
{
    size_t i;

    for (i = 0; i < snap->n_extra; i++)
	mem_free(&snap->extra[i]);
    mem_free(&snap->extra);
    mem_free(&snap->msgs);
    mem_free(&snap->namewin);
    if (snap->arena_map_len) {
	(void) munmap(snap->arena, snap->arena_map_len);
	(void) close(snap->arena_fd);
    } else
	mem_free(&snap->arena);
    memset(snap, 0, sizeof(*snap));
}

/* sm_set_name - message i's name is now name (copied) */
static void sm_set_name(struct store_mailbox *mb, size_t i, const char *name)
{
    struct sm_snap *snap = &mb->snap;

    if (snap->n_extra == snap->cap_extra) {
	snap->cap_extra = snap->cap_extra ? mem_size_mul(snap->cap_extra, 2) : 16;
	snap->extra = mem_realloc(snap->extra, mem_size_mul(snap->cap_extra,
							    sizeof(*snap->extra)));
    }
    snap->extra[snap->n_extra] = mem_strdup(name);
    snap->msgs[i].name = snap->extra[snap->n_extra++];
}

/* sm_claimed - whether this handle claimed uid as \Recent */
static bool sm_claimed(const struct store_mailbox *mb, uint32_t uid)
{
    size_t lo = 0, hi = mb->n_claims, mid;

    while (lo < hi) {
	mid = lo + (hi - lo) / 2;
	if (uid < mb->claims[mid].lo)
	    hi = mid;
	else if (uid >= mb->claims[mid].hi)
	    lo = mid + 1;
	else
	    return true;
    }
    return false;
}

/* sm_claim - claim [lo, hi) (above every earlier claim) */
static void sm_claim(struct store_mailbox *mb, uint32_t lo, uint32_t hi)
{
    if (lo >= hi)
	return;
    if (mb->n_claims > 0 && mb->claims[mb->n_claims - 1].hi == lo) {
	mb->claims[mb->n_claims - 1].hi = hi;
	return;
    }
    mb->claims = mem_realloc(mb->claims, mem_size_mul(mb->n_claims + 1, sizeof(*mb->claims)));
    mb->claims[mb->n_claims].lo = lo;
    mb->claims[mb->n_claims++].hi = hi;
}

/* sm_msg_recent - the recent bit of uid for this handle */
static bool sm_msg_recent(const struct store_mailbox *mb, uint32_t uid)
{
    return mb->claim_recent ? sm_claimed(mb, uid) : uid >= mb->recent_floor;
}

/* sm_msg_from_rec - the snapshot entry of an index record */
static void sm_msg_from_rec(const struct store_mailbox *mb, struct store_msg *m,
			    const struct store_rec *r)
{
    m->name = r->name;
    m->uid = r->uid;
    m->flags = r->flags;
    m->size = r->size;
    m->crlf_size = r->crlf_size;
    m->mtime = r->mtime;
    m->modseq = r->modseq;
    m->recent = sm_msg_recent(mb, r->uid);
    m->in_new = r->in_new;
}

/* sm_modseq_jump - a MODSEQ above any given before under this
 * UIDVALIDITY when the index that knew them is lost: modseqs count up
 * by one per change, far slower than microseconds since 1970 */
static uint64_t sm_modseq_jump(uint64_t hint)
{
    struct timespec now;
    uint64_t us;

    (void) clock_gettime(CLOCK_REALTIME, &now);
    us = (uint64_t) now.tv_sec * 1000000u + (uint64_t) now.tv_nsec / 1000u;
    return us > hint ? us : hint + 1;
}

/* sm_names_release - drop this process's page table entries for the
 * snapshot's names when they live in a mapping of the index: the
 * pages stay in the page cache and come back as names are used, so a
 * big mailbox's names do not stay in the process's memory (PSS). Done
 * after each store_open_msg too: one name's fault maps a whole page
 * cache folio (up to hundreds of KiB) */
static void sm_names_release(struct store_mailbox *mb)
{
    if (mb->snap.arena_map_len)
	(void) madvise(mb->snap.arena, mb->snap.arena_map_len, MADV_DONTNEED);
}

/* sm_index_names - whether the mapped, valid index idx lists exactly
 * order[0..n) (UIDs and names), so that its names can be used */
static bool sm_index_names(const struct store_index *idx, struct sm_entry **order, size_t n)
{
    size_t i;

    if (idx->state != STORE_INDEX_VALID || idx->version != 2 || idx->map_len == 0
	|| idx->count != n)
	return false;
    for (i = 0; i < n; i++)
	if (idx->recs[i].uid != order[i]->uid || idx->recs[i].in_new != order[i]->in_new
	    || strcmp(idx->recs[i].name, order[i]->name) != 0)
	    return false;
    return true;
}

/* sm_install - make msgs[0..count) (names in arena) the snapshot; the
 * old one into *old_r, or freed */
static void sm_install(struct store_mailbox *mb, struct store_msg *msgs, size_t count,
		       char *arena, size_t arena_map_len, int arena_fd, struct sm_snap *old_r)
{
    if (old_r)
	*old_r = mb->snap;
    else
	store_snap_free(&mb->snap);
    memset(&mb->snap, 0, sizeof(mb->snap));
    mb->snap.msgs = msgs;
    mb->snap.count = count;
    mb->snap.arena = arena;
    mb->snap.arena_map_len = arena_map_len;
    mb->snap.arena_fd = arena_fd;
    mb->have_snapshot = true;
}

/* sm_arena_note - the snapshot's names are in idx's mapping (a valid
 * version 2 index): note what store_save_crlf needs to rewrite that
 * index from the mapping without reading and checking it again */
static void sm_arena_note(struct store_mailbox *mb, const struct store_index *idx)
{
    if (idx->map_len == 0 || idx->state != STORE_INDEX_VALID || idx->version != 2)
	return;
    mb->snap.arena_h = idx->h;
    mb->snap.arena_first = idx->first_line;
    mb->snap.arena_count = idx->count;
}

/* sm_key_in_snapshot - whether the snapshot has uid with this key */
static bool sm_key_in_snapshot(const struct store_mailbox *mb, uint32_t uid, const char *name,
			       size_t keylen)
{
    long i = store_find_uid(mb, uid);

    return i >= 0 && store_name_key_is(mb->snap.msgs[i].name, name, keylen);
}

/* sm_below_floor - whether uid cannot be new to this handle: below its
 * UIDNEXT but not its (a rebuilt index or a name's U= from elsewhere:
 * it gets a fresh UID, so that new messages always come at the end) */
static bool sm_below_floor(const struct store_mailbox *mb, uint32_t uv, uint32_t uid,
			   const char *name, size_t keylen)
{
    return mb->have_snapshot && mb->can_write && uv == mb->uidvalidity && uid != 0
	&& uid < mb->uidnext && !sm_key_in_snapshot(mb, uid, name, keylen);
}

/*
 * sm_fast - the common case, without reading cur/ and without writing:
 * a valid version 2 index whose anchor agrees, cur/ unchanged since the
 * index was written (docs/mailstore.md: "Not reading cur/"), new/
 * empty, nothing to claim. 1 if done, 0 if the full path must run.
 */
static int sm_fast(struct store_mailbox *mb, int how, struct store_index *idx,
		   bool have_anchor, uint32_t a_uv, uint32_t a_next, struct sm_snap *old_r)
{
    struct store_dirstamp now;
    struct store_msg *msgs;
    struct store_rec tmp;
    const char *cp;
    uint32_t next;
    size_t i;

    if (idx->state != STORE_INDEX_VALID || idx->version != 2 || !have_anchor
	|| a_uv != idx->h.uidvalidity || a_next > idx->h.uidnext || idx->first_line == NULL)
	return 0;
    if (!store_dirstamp_get(mb->cur_fd, &now, false) || !store_dirstamp_same(&idx->h.cur, &now))
	return 0;
    next = idx->h.uidnext;
    mb->cur_stamp_recorded = true;
    if (how == STORE_SYNC_COMMIT) {
	/* (this handle's own changes would have moved cur/'s stamp) */
	mb->disk_uidnext = next;
	mb->disk_uidvalidity = idx->h.uidvalidity;
	return 1;
    }
    if (mb->claim_recent && mb->can_write && idx->h.recent < next)
	return 0;			/* claiming is a write */
    /* (the index's lines, walked: no records; a mapped file's pages
     * released behind the walk) */
    if (mb->have_snapshot && idx->h.uidvalidity == mb->uidvalidity) {
	store_index_walk_begin(idx);
	for (i = 0, cp = idx->first_line; i < idx->count; i++) {
	    store_index_line(&cp, &tmp);
	    store_index_release(idx, cp);
	    if (sm_below_floor(mb, idx->h.uidvalidity, tmp.uid, tmp.name, tmp.keylen))
		return 0;
	}
    }
    msgs = mem_alloc_array(idx->count ? idx->count : 1, sizeof(*msgs));
    mb->recent_floor = idx->h.recent;
    store_index_walk_begin(idx);
    for (i = 0, cp = idx->first_line; i < idx->count; i++) {
	store_index_line(&cp, &tmp);
	store_index_release(idx, cp);
	sm_msg_from_rec(mb, &msgs[i], &tmp);
    }
    sm_install(mb, msgs, idx->count, idx->data, idx->map_len, idx->map_fd, old_r);
    sm_arena_note(mb, idx);
    idx->data = NULL;
    idx->map_len = 0;			/* (the names live on in the snapshot) */
    sm_names_release(mb);
    mb->uidvalidity = idx->h.uidvalidity;
    mb->uidnext = next;
    mb->disk_uidnext = next;
    mb->disk_uidvalidity = idx->h.uidvalidity;
    mb->highestmodseq = idx->h.highestmodseq;
    return 1;
}

/* sm_commit_patch - STORE_SYNC_COMMIT: snapshot messages whose name is
 * the one now on disk (order[0..n), ascending UID) take its MODSEQ */
static void sm_commit_patch(struct store_mailbox *mb, struct sm_entry **order, size_t n)
{
    struct store_msg *m;
    size_t i, j;

    for (i = j = 0; i < mb->snap.count && j < n; ) {
	m = &mb->snap.msgs[i];
	if (m->uid < order[j]->uid) {
	    i++;
	} else if (m->uid > order[j]->uid) {
	    j++;
	} else {
	    if (m->in_new == order[j]->in_new && strcmp(m->name, order[j]->name) == 0
		&& m->modseq != order[j]->modseq) {
		m->modseq = order[j]->modseq;
		if (m->modseq > mb->highestmodseq)
		    mb->highestmodseq = m->modseq;
	    }
	    i++, j++;
	}
    }
}

/* sm_entry_rec - the index record of ((struct sm_entry **) ctx)[i] (the
 * index is written from the entries: no array of records) */
static const struct store_rec *sm_entry_rec(size_t i, void *ctx, struct store_rec *r)
{
    const struct sm_entry *e = ((struct sm_entry **) ctx)[i];

    r->name = e->name;
    r->keylen = e->keylen;
    r->uid = e->uid;
    r->size = e->size;
    r->crlf_size = e->crlf_size;
    r->mtime = e->mtime;
    r->modseq = e->modseq;
    r->in_new = e->in_new;
    return r;
}

/*
 * sm_sync - bring index and snapshot up to date, under the lock:
 * 1. read the index and the anchor; scan new/, and cur/ unless the
 *    index is known to list it (sm_fast is the case where nothing else
 *    is to be done);
 * 2. decide UIDVALIDITY and the UIDNEXT floor (see docs/mailstore.md:
 *    a valid index is the truth; without one, UIDs are kept from the
 *    names' U= when the anchor or the readable header says which
 *    UIDVALIDITY they belong to and how far UIDs went);
 * 3. give each cur/ file its UID (index, else its U=, else fresh), new/
 *    files fresh UIDs in arrival order;
 * 4. move new/ files to cur/ (and fix cur/ names whose U=, S= or W=
 *    are missing or wrong), fsync cur/ and new/;
 * 5. MODSEQs (new messages and changed flags get the next ones; an
 *    expunge raises HIGHESTMODSEQ), \Recent claims;
 * 6. write index (and anchor) if anything changed; the snapshot.
 */
#define SM_AGAIN	2

static int sm_sync(struct store_mailbox *mb, int how, struct sm_snap *old_r, bool early_free,
		   const char **error_r)
{
    struct store_index idx;
    struct store_index_head head;
    struct sm_list l = {NULL, 0, 0, NULL};
    struct sm_entry *e, **order = NULL;
    struct store_rec *rec;
    struct store_msg *msgs = NULL;
    struct store_dirstamp stamp, nstamp;
    struct timespec t_scan;
    uint32_t a_uv = 0, a_next = 0, uv, next, maxuid = 0, recent;
    uint64_t highest;
    bool have_anchor, trusted, changed = false, moved_new = false, renamed = false;
    bool jumped = false, cur_listed = false, new_listed, wrote = false, in_index, from_idx;
    bool filled = false;
    size_t from_index = 0, arena_len, off;
    char newname[NAME_MAX + 1], keybuf[NAME_MAX + 1];
    const char *err, *key;
    char *arena;
    size_t i, n = 0, nfresh, keylen, n_in_new, fresh_new = 0;
    int ret = -1, r;

    if (old_r)
	memset(old_r, 0, sizeof(*old_r));
    mb->generation++;
    mb->keywords_recheck = true;
    store_lock(mb);
    store_save_crlf(mb);
    (void) clock_gettime(CLOCK_REALTIME, &t_scan);	/* (before any read) */
    /* (first without records: the common case, sm_fast, walks the
     * lines; the full path reads it again with them, under the same
     * lock, so the same file) */
    store_index_read_lean(mb->dir_fd, &idx);
    have_anchor = store_anchor_read(mb->dir_fd, &a_uv, &a_next) == 0;
    trusted = idx.state == STORE_INDEX_VALID && (!have_anchor || a_uv == idx.h.uidvalidity);
    /* new/ unchanged since a valid index saw it: its list is new/'s
     * (messages are left in new/ until their flags change) */
    new_listed = trusted && idx.version == 2 && store_dirstamp_get(mb->new_fd, &nstamp, false)
	&& store_dirstamp_same(&idx.h.newd, &nstamp);
    if (!new_listed && sm_scan(mb->new_fd, true, &l, error_r) < 0)
	goto out;
    if ((new_listed || (l.count == 0 && idx.n_new == 0))
	&& sm_fast(mb, how, &idx, have_anchor, a_uv, a_next, old_r)) {
	ret = 0;
	goto out;
    }
    if (idx.no_recs && idx.state != STORE_INDEX_MISSING) {
	store_index_free(&idx);
	store_index_read(mb->dir_fd, &idx);
    }
    if (new_listed)
	sm_from_index(&idx, &l, true);
    /* cur/ unchanged since a valid index saw it (its stamp then was old
     * enough that no later change can share it): the index's list is
     * cur/'s, without reading the directory */
    if (trusted && idx.version == 2 && store_dirstamp_get(mb->cur_fd, &stamp, false)
	&& store_dirstamp_same(&idx.h.cur, &stamp)) {
	sm_from_index(&idx, &l, false);
	cur_listed = true;
    } else if (sm_scan(mb->cur_fd, false, &l, error_r) < 0) {
	goto out;
    }
    if (l.count > 0 && l.cap > l.count + l.count / 8) {
	/* (the scan doubled its array: give back the slack) */
	l.v = mem_realloc(l.v, mem_size_mul(l.count, sizeof(*l.v)));
	l.cap = l.count;
    }
    store_index_sort(&idx);
    if (idx.state != STORE_INDEX_VALID)
	trusted = false;
    /* an index lost or damaged: new/'s UIDs from posthorn-newlist, as
     * cur/'s come from the names' U= */
    if (!trusted) {
	struct store_index nli;
	struct store_rec *nr;
	uint32_t nl_uv;

	memset(&nli, 0, sizeof(nli));
	nl_uv = store_newlist_read(mb->dir_fd, &nli);
	if (nl_uv != 0 && (!have_anchor || nl_uv == a_uv)) {
	    store_index_sort(&nli);
	    for (i = 0; i < l.count; i++)
		if (l.v[i].in_new && l.v[i].name_uid == 0
		    && (nr = store_index_find(&nli, l.v[i].name, l.v[i].keylen)) != NULL)
		    l.v[i].name_uid = nr->uid;
	}
	store_index_free(&nli);
    }

    /* 2. UIDVALIDITY and the floor for new UIDs */
    if (trusted) {
	uv = idx.h.uidvalidity;
	next = idx.h.uidnext;
	if (have_anchor && a_next > next)
	    next = a_next;
    } else if (have_anchor && (idx.h.uidvalidity == 0 || idx.h.uidvalidity == a_uv)) {
	uv = a_uv;
	next = idx.h.uidnext > a_next ? idx.h.uidnext : a_next;
    } else if (!have_anchor && idx.h.uidvalidity != 0) {
	uv = idx.h.uidvalidity;
	next = idx.h.uidnext;
    } else {
	uv = sm_new_uidvalidity(have_anchor ? a_uv : idx.h.uidvalidity);
	for (i = 0; i < l.count; i++)
	    if (l.v[i].name_uid != 0) {
		/* names with U=: an index existed, made this very second
		 * perhaps; its UIDVALIDITY was the time then, so go past */
		uv = sm_new_uidvalidity(uv);
		break;
	    }
	next = 1;
    }
    if (idx.state != STORE_INDEX_MISSING && !trusted)
	msg_warn("%s: the mailbox index is damaged; rebuilt from the Maildir%s", mb->path,
		 uv == idx.h.uidvalidity || uv == a_uv ? " (UIDs kept)" : " (new UIDVALIDITY)");
    if (!trusted || !have_anchor || a_uv != uv || (trusted && a_next > idx.h.uidnext))
	changed = true;
    /* MODSEQs: a valid index's; a version 1 index had none (no client
     * can have seen one); a lost or damaged index: above any given */
    if (trusted)
	highest = idx.version == 2 ? idx.h.highestmodseq : 1;
    else if (idx.state == STORE_INDEX_MISSING && !have_anchor)
	highest = 1;			/* (a new mailbox, unless U= says not) */
    else
	highest = sm_modseq_jump(idx.h.highestmodseq), jumped = true;

    /* 3. UIDs for cur/, in key order (a key twice: the first keeps it) */
    order = mem_alloc_array(l.count ? l.count : 1, sizeof(*order));
    for (i = 0; i < l.count; i++) {
	order[i] = &l.v[i];
	l.v[i].khash = store_key_hash(l.v[i].name, l.v[i].keylen);
    }
    if (l.count > 1)
	qsort(order, l.count, sizeof(*order), sm_entry_cmp_key);
    for (i = 0; i < l.count; i++) {
	e = order[i];
	if (i > 0 && e->khash == order[i - 1]->khash
	    && e->keylen == order[i - 1]->keylen
	    && memcmp(e->name, order[i - 1]->name, e->keylen) == 0) {
	    /* the same unique name twice: a copy from outside, or new/
	     * and cur/ after a crash; the later one is another message */
	    e->name_uid = 0;
	    e->dupkey = true;
	}
	rec = e->dupkey ? NULL : store_index_find(&idx, e->name, e->keylen);
	if (e->dupkey || (e->in_new && (rec == NULL || rec->uid == 0)
			  && (trusted || e->name_uid == 0)))
	    continue;			/* (fresh UIDs, in arrival order) */
	if (trusted && rec && rec->uid) {
	    from_index++;
	    from_idx = e->in_new ? new_listed : cur_listed;
	    if (!from_idx && (rec->in_new != e->in_new || strcmp(rec->name, e->name) != 0))
		changed = true;		/* (flags changed, or moved to cur/ by
					 * another reader: keep names current) */
	    e->uid = rec->uid;
	    sm_known(e, rec->size, rec->crlf_size);
	    e->mtime = rec->mtime;
	    e->rec = (uint32_t) (rec - idx.recs) + 1;
	} else if (trusted) {
	    /* not in a valid index: keep a U= only above every UID used */
	    if (e->name_uid >= next && e->name_uid < next + (1u << 24))
		e->uid = e->name_uid;
	    changed = true;
	} else {
	    e->uid = e->name_uid ? e->name_uid : (rec ? rec->uid : 0);
	}
	if (sm_below_floor(mb, uv, e->uid, e->name, e->keylen)) {
	    e->uid = 0;
	    e->rec = 0;
	    changed = true;
	}
    }
    if (!jumped && trusted && from_index < idx.count)
	highest++;			/* messages gone: an expunge */
    /* no UID twice: sort by UID, later duplicates get fresh ones */
    for (i = n = 0; i < l.count; i++)
	if (l.v[i].uid)
	    order[n++] = &l.v[i];
    qsort(order, n, sizeof(*order), sm_entry_cmp_uid);
    for (i = 1; i < n; i++)
	if (order[i]->uid == order[i - 1]->uid) {
	    order[i]->uid = 0;
	    order[i]->known = false;
	    order[i]->rec = 0;
	    changed = true;
	}
    for (i = 0; i < n; i++)
	if (order[i]->uid > maxuid)
	    maxuid = order[i]->uid;
    if (maxuid >= next)
	next = maxuid + 1;
    /* \Recent: what nobody claimed yet; after a rebuild, the new mail */
    if (trusted && idx.version == 2)
	recent = idx.h.recent;
    else if (idx.state == STORE_INDEX_MISSING && !have_anchor)
	recent = 1;
    else
	recent = next;

    /* sizes of what the index did not have; files gone are dropped */
    for (i = 0; i < l.count; i++) {
	e = &l.v[i];
	if (e->known)
	    continue;
	if ((r = sm_measure(mb, e, error_r)) < 0)
	    goto out;
	if (r > 0) {
	    sm_name_drop(e);
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
	fresh_new += order[i]->in_new;
	changed = true;
    }

    /* 4. names that carry the UID and sizes; new/ to cur/ */
    for (i = 0; mb->can_write && i < l.count; i++) {
	e = &l.v[i];
	if (e->name == NULL || (e->in_new && !e->dupkey))
	    continue;			/* (new/: left there, docs/mailstore.md) */
	if (!e->in_new && !e->dupkey && e->name_uid == e->uid && e->name_sizes)
	    continue;			/* (a W= missing: not counted yet) */
	if (e->dupkey) {
	    if (!fmt_try_buf(keybuf, sizeof(keybuf), "%.*s-%lu", (int) e->keylen,
			     e->name, (unsigned long) e->uid))
		continue;
	    key = keybuf;
	    keylen = strlen(keybuf);
	} else {
	    key = e->name;
	    keylen = e->keylen;
	}
	if (!store_name_make(newname, sizeof(newname), key, keylen, e->size,
			     e->crlf_size, e->uid, e->flags)) {
	    if (!e->in_new || e->dupkey)
		continue;		/* keeps its name (and its UID in the index) */
	    fmt_buf_cut(newname, sizeof(newname), "%.*s:2,", (int) e->keylen, e->name);
	}
	if (store_rename(e->in_new ? mb->new_fd : mb->cur_fd, e->name, mb->cur_fd, newname,
		      e->in_new) < 0) {
	    if (errno == ENOENT && !e->in_new) {
		/* renamed behind our back (a tool without the lock) */
		char *found = sm_find_name(mb, e->name, e->keylen);

		if (found) {
		    sm_name_drop(e);
		    e->name = found;
		    e->name_heap = true;
		    continue;
		}
	    }
	    if (errno == ENOENT) {
		sm_name_drop(e);
		continue;
	    }
	    msg_warn("%s: cannot rename %s/%s to cur/%s: %s", mb->path,
		     e->in_new ? "new" : "cur", e->name, newname, strerror(errno));
	    if (e->in_new)
		sm_name_drop(e);	/* stays in new/ for the next time */
	    continue;
	}
	if (e->in_new)
	    moved_new = true;
	renamed = true;
	sm_name_drop(e);
	e->name = mem_strdup(newname);
	e->name_heap = true;
	{
	    struct store_name pn;

	    if (store_name_parse(e->name, &pn))
		sm_entry_parsed(e, &pn);
	}
	e->in_new = false;
	e->dupkey = false;
    }
    /* (no fsync of cur/ and new/: a rename lost in a crash leaves the
     * message in new/, or under its old name, where the next
     * synchronisation gives it a UID from the anchor's UIDNEXT on,
     * which is durable before the index below: no UID is given twice) */
    (void) renamed;
    (void) moved_new;

    /* 5. the final list in UID order; MODSEQs; \Recent */
    for (i = n = n_in_new = 0; i < l.count; i++) {
	e = &l.v[i];
	if (e->name == NULL || e->uid == 0 || e->dupkey)
	    continue;		/* (a duplicate we could not rename: left out) */
	n_in_new += e->in_new;
	order[n++] = e;
    }
    qsort(order, n, sizeof(*order), sm_entry_cmp_uid);
    for (i = 0; i < n; i++) {
	e = order[i];
	if (jumped) {
	    e->modseq = highest;
	} else if (e->rec && idx.recs[e->rec - 1].uid == e->uid
		   && idx.recs[e->rec - 1].modseq > 0) {
	    e->modseq = idx.recs[e->rec - 1].modseq;
	    if (store_flags_parse(idx.recs[e->rec - 1].name) != store_flags_parse(e->name))
		e->modseq = ++highest;
	} else if (e->rec && idx.recs[e->rec - 1].uid == e->uid) {
	    e->modseq = 1;		/* (version 1 index) */
	} else {
	    e->modseq = ++highest;
	}
    }
    if (idx.version != 2 || highest != idx.h.highestmodseq)
	changed = true;			/* (a version 1 index is rewritten) */
    if (how == STORE_SYNC_REPLACE && mb->have_snapshot && uv != mb->uidvalidity) {
	mem_free(&mb->claims);		/* (claims of another UIDVALIDITY) */
	mb->n_claims = 0;
    }
    if (how == STORE_SYNC_REPLACE && mb->claim_recent && mb->can_write && recent < next) {
	sm_claim(mb, recent, next);
	recent = next;
	changed = true;
    }
    /* cur/'s stamp goes into the index only when its last change was
     * well before this synchronisation began reading (a change within
     * the same clock tick as the stamp would not move it; one after the
     * reading began gets a later time) */
    (void) store_dirstamp_get_before(mb->cur_fd, &stamp, &t_scan);
    (void) store_dirstamp_get_before(mb->new_fd, &nstamp, &t_scan);
    mb->cur_stamp_recorded = stamp.msec != 0 && (nstamp.msec != 0 || n_in_new == 0);
    if (!store_dirstamp_same(&stamp, &idx.h.cur) && (stamp.msec != 0 || idx.h.cur.msec != 0))
	changed = true;
    if (!store_dirstamp_same(&nstamp, &idx.h.newd) && (nstamp.msec != 0 || idx.h.newd.msec != 0))
	changed = true;
    if (n != idx.count)
	changed = true;

    /* 6. the index; the snapshot */
    if (changed && mb->can_write) {
	/* (the old index is done with: the entries hold what they took
	 * from it; it goes before the records are built) */
	store_index_free(&idx);
	memset(&head, 0, sizeof(head));
	head.uidvalidity = uv;
	head.uidnext = next;
	head.highestmodseq = highest;
	head.recent = recent;
	head.cur = stamp;
	head.newd = nstamp;
	/* the anchor first, durably, whenever UIDNEXT passed it: then no
	 * UID a client may see can be given again, whatever a crash does
	 * to the index (written without fsyncing its data: a damaged
	 * index is rebuilt, MODSEQs jump) and to the renames above. It
	 * also covers UIDs of messages gone without store_expunge (by
	 * another tool), as an expunge would. */
	if ((!have_anchor || a_uv != uv || a_next < next)
	    && store_anchor_write(mb->dir_fd, uv, next, &err) < 0)
	    msg_warn("%s: %s", mb->path, err);
	else if (store_index_write_fn(mb->dir_fd, &head, n, sm_entry_rec, order, false, &err) < 0)
	    msg_warn("%s: %s", mb->path, err);
	else
	    wrote = true;
	if (wrote && (!have_anchor || a_uv != uv || a_next < next))
	    store_watch_own(mb, STORE_ANCHOR_FILE);
	if (wrote)
	    store_watch_own(mb, STORE_INDEX_FILE);
	if (wrote && n_in_new > 0 && (fresh_new > 0 || !trusted)) {
	    if (store_newlist_write(mb->dir_fd, uv, n, sm_entry_rec, order, &err) < 0)
		msg_warn("%s: %s", mb->path, err);
	    else
		store_watch_own(mb, STORE_NEWLIST_FILE);
	}
    }
    mb->disk_uidnext = next;
    mb->disk_uidvalidity = uv;
    if (how == STORE_SYNC_COMMIT) {
	sm_commit_patch(mb, order, n);
	ret = 0;
	goto out;
    }
    /* the names: where the index (as now on disk, mapped) has them all,
     * from there (page cache, not this process's memory once
     * sm_names_release dropped the mapping's pages), else copied */
    if (wrote) {
	/* the scan's memory goes before the index is read back: what was
	 * just written under the lock is order[0..n) (UIDs compared only,
	 * kept as UID * 2 + in_new, 8 bytes a message, where the scan
	 * took about 170) */
	uint64_t *want = NULL;

	store_index_free(&idx);
	if (early_free && n > 1000) {
	    want = mem_alloc_array(n, sizeof(*want));
	    for (i = 0; i < n; i++)
		want[i] = (uint64_t) order[i]->uid << 1 | order[i]->in_new;
	    sm_list_free(&l);
	    mem_free(&order);
	    (void) malloc_trim(0);
	}
	store_index_read_lean(mb->dir_fd, &idx);
	in_index = idx.state == STORE_INDEX_VALID && idx.version == 2 && idx.map_len != 0
	    && idx.count == n;
	/* (the messages straight from the index's lines: no records; the
	 * mapping's pages released behind the walk) */
	msgs = mem_alloc_array(n ? n : 1, sizeof(*msgs));
	mb->recent_floor = recent;
	if (in_index) {
	    struct store_rec tmp;
	    const char *cp = idx.first_line;

	    store_index_walk_begin(&idx);
	    for (i = 0; in_index && i < n; i++) {
		store_index_line(&cp, &tmp);
		store_index_release(&idx, cp);
		in_index = want ? want[i] == ((uint64_t) tmp.uid << 1 | tmp.in_new)
		    : tmp.uid == order[i]->uid && tmp.in_new == order[i]->in_new;
		msgs[i].name = tmp.name;
		msgs[i].uid = tmp.uid;
		msgs[i].flags = tmp.flags;
		msgs[i].size = tmp.size;
		msgs[i].crlf_size = tmp.crlf_size;
		msgs[i].mtime = tmp.mtime;
		msgs[i].modseq = tmp.modseq;
		msgs[i].recent = sm_msg_recent(mb, tmp.uid);
		msgs[i].in_new = tmp.in_new;
	    }
	    filled = in_index;
	}
	mem_free(&want);
	if (!in_index && order == NULL) {
	    /* (the index just written does not read back as written: the
	     * scan is gone, so the caller runs the synchronisation again,
	     * keeping the scan this time) */
	    mem_free(&msgs);
	    ret = SM_AGAIN;
	    goto out;
	}
	if (in_index) {
	    sm_list_free(&l);
	    mem_free(&order);
	    if (n > 1000)
		(void) malloc_trim(0);
	}
    } else {
	in_index = sm_index_names(&idx, order, n);
    }
    arena = NULL;
    if (!in_index) {
	for (i = arena_len = 0; i < n; i++)
	    arena_len += strlen(order[i]->name) + 1;
	arena = mem_alloc(arena_len ? arena_len : 1);
    }
    if (msgs == NULL)
	msgs = mem_alloc_array(n ? n : 1, sizeof(*msgs));
    mb->recent_floor = recent;
    for (i = off = 0; i < n; i++) {
	if (in_index && filled)
	    break;
	if (in_index) {
	    rec = &idx.recs[i];
	    sm_msg_from_rec(mb, &msgs[i], rec);
	    continue;
	}
	e = order[i];
	{
	    keylen = strlen(e->name) + 1;
	    memcpy(arena + off, e->name, keylen);
	    msgs[i].name = arena + off;
	    off += keylen;
	}
	msgs[i].uid = e->uid;
	msgs[i].flags = store_flags_parse(e->name);
	msgs[i].size = e->size;
	msgs[i].crlf_size = e->crlf_size;
	msgs[i].mtime = e->mtime;
	msgs[i].modseq = e->modseq;
	msgs[i].recent = sm_msg_recent(mb, e->uid);
	msgs[i].in_new = e->in_new;
    }
    if (in_index) {
	sm_install(mb, msgs, n, idx.data, idx.map_len, idx.map_fd, old_r);
	sm_arena_note(mb, &idx);
	idx.data = NULL;
	idx.map_len = 0;		/* (the names live on in the snapshot) */
    } else {
	sm_install(mb, msgs, n, arena, 0, -1, old_r);
    }
    sm_names_release(mb);
    mb->uidvalidity = uv;
    mb->uidnext = next;
    mb->highestmodseq = highest;
    ret = 0;

  out:
    store_unlock(mb);
    store_index_free(&idx);
    if (l.count > 1000 || n > 1000) {
	sm_list_free(&l);
	mem_free(&order);
	(void) malloc_trim(0);		/* (the scan's memory back to the system) */
    }
    sm_list_free(&l);
    mem_free(&order);
    return ret;
}

/* store_sync_int - sm_sync, freeing the scan early (big mailboxes)
 * unless the index it wrote could not be read back */
int store_sync_int(struct store_mailbox *mb, int how, struct sm_snap *old_r,
		   const char **error_r)
{
    int ret = sm_sync(mb, how, old_r, true, error_r);

    if (ret == SM_AGAIN)
	ret = sm_sync(mb, how, old_r, false, error_r);
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
    mb->claim_recent = (mode & STORE_RECENT) != 0 && mb->mode == STORE_READ_WRITE;
    mb->cur_fd = mb->new_fd = mb->lock_fd = mb->session_fd = mb->watch_fd = -1;
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
    if (store_sync_int(mb, STORE_SYNC_REPLACE, NULL, &err) < 0) {
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

/* store_close - release everything (committing a batch) */
void store_close(struct store_mailbox **mbp)
{
    struct store_mailbox *mb = *mbp;
    const char *err;

    if (mb == NULL)
	return;
    if (mb->in_batch && store_commit(mb, &err) < 0)
	msg_warn("%s", err);
    store_save_crlf(mb);
    store_cache_close(mb);
    store_stamp_at_close(mb);
    store_watch_close(mb);
    store_keywords_free(mb);
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
    store_snap_free(&mb->snap);
    mem_free(&mb->batch_modseq);
    mem_free(&mb->claims);
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
    return mb->snap.count;
}

const char *store_path(const struct store_mailbox *mb)
{
    return mb->path;
}

/* store_msg - message i of the snapshot */
const struct store_msg *store_msg(const struct store_mailbox *mb, size_t i)
{
    return i < mb->snap.count ? &mb->snap.msgs[i] : NULL;
}

/* store_find_uid - binary search */
long store_find_uid(const struct store_mailbox *mb, uint32_t uid)
{
    size_t lo = 0, hi = mb->snap.count, mid;

    while (lo < hi) {
	mid = lo + (hi - lo) / 2;
	if (mb->snap.msgs[mid].uid == uid)
	    return (long) mid;
	if (mb->snap.msgs[mid].uid < uid)
	    lo = mid + 1;
	else
	    hi = mid;
    }
    return -1;
}

/* store_recent_count - messages with recent set */
size_t store_recent_count(const struct store_mailbox *mb)
{
    size_t i, n = 0;

    for (i = 0; i < mb->snap.count; i++)
	n += mb->snap.msgs[i].recent;
    return n;
}

uint64_t store_highestmodseq(const struct store_mailbox *mb)
{
    return mb->highestmodseq;
}

/* store_generation - a number that changes whenever the snapshot may have */
uint64_t store_generation(const struct store_mailbox *mb)
{
    return mb->generation;
}

/* sc_push - append uid to a changes array */
static void sc_push(uint32_t **v, size_t *n, size_t *cap, uint32_t uid)
{
    if (*n == *cap) {
	*cap = *cap ? mem_size_mul(*cap, 2) : 64;
	*v = mem_realloc(*v, mem_size_mul(*cap, sizeof(**v)));
    }
    (*v)[(*n)++] = uid;
}

/* store_sync - synchronise; what changed against the old snapshot */
int store_sync(struct store_mailbox *mb, struct store_changes *ch, const char **error_r)
{
    struct sm_snap old;
    const struct store_msg *o, *m;
    uint32_t old_uv = mb->uidvalidity;
    size_t i, j;

    ch->n_expunged = ch->n_changed = ch->added = ch->recent_added = 0;
    ch->uidvalidity_changed = false;
    if (mb->in_batch) {
	errno = EBUSY;
	return errtext_fail(&store_error, error_r, "%s: store_sync inside a batch", mb->path);
    }
    if (store_sync_int(mb, STORE_SYNC_REPLACE, &old, error_r) < 0)
	return -1;
    if (mb->uidvalidity != old_uv) {
	ch->uidvalidity_changed = true;
	store_snap_free(&old);
	store_cache_resync(mb);
	return 0;
    }
    for (i = j = 0; i < old.count || j < mb->snap.count; ) {
	o = i < old.count ? &old.msgs[i] : NULL;
	m = j < mb->snap.count ? &mb->snap.msgs[j] : NULL;
	if (m == NULL || (o && o->uid < m->uid)) {
	    sc_push(&ch->expunged, &ch->n_expunged, &ch->cap_expunged, o->uid);
	    i++;
	} else if (o == NULL || m->uid < o->uid) {
	    ch->added++;
	    ch->recent_added += m->recent;
	    j++;
	} else {
	    if (o->flags != m->flags || o->modseq != m->modseq)
		sc_push(&ch->changed, &ch->n_changed, &ch->cap_changed, m->uid);
	    i++, j++;
	}
    }
    store_snap_free(&old);
    store_cache_resync(mb);
    return 0;
}

/* store_changes_free - free the arrays */
void store_changes_free(struct store_changes *ch)
{
    mem_free(&ch->expunged);
    mem_free(&ch->changed);
    memset(ch, 0, sizeof(*ch));
}

/* store_refresh - synchronise again; count what came and went */
int store_refresh(struct store_mailbox *mb, size_t *added_r, size_t *removed_r,
		  const char **error_r)
{
    struct store_changes ch;
    int ret;

    memset(&ch, 0, sizeof(ch));
    ret = store_sync(mb, &ch, error_r);
    if (ret == 0 && ch.uidvalidity_changed) {
	/* (every message is another now) */
	ch.added = mb->snap.count;
	ch.n_expunged = 0;
    }
    if (added_r)
	*added_r = ret == 0 ? ch.added : 0;
    if (removed_r)
	*removed_r = ret == 0 ? ch.n_expunged : 0;
    store_changes_free(&ch);
    return ret;
}

/* store_relocate - message i was renamed by another session: find it again */
int store_relocate(struct store_mailbox *mb, size_t i)
{
    struct store_msg *m = &mb->snap.msgs[i];
    char *now = sm_find_name(mb, m->name, strcspn(m->name, ",:"));

    if (now == NULL) {
	errno = ENOENT;
	return -1;
    }
    sm_set_name(mb, i, now);
    m->flags = store_flags_parse(now);
    m->in_new = false;			/* (another reader moved it to cur/) */
    mb->generation++;
    mem_free(&now);
    return 0;
}

/* sm_name_cold - message i's name, read from the index file when it
 * lives in the mapping (touching the mapping would map a whole
 * page-cache folio of it into this process): from the snapshot's
 * window of the file when it is there whole, else the window is read
 * again at the name (one pread of SM_NAMEWIN bytes: the names of the
 * next hundred or so messages, which a FETCH over many asks for next) */
static const char *sm_name_cold(struct store_mailbox *mb, size_t i)
{
    struct sm_snap *sn = &mb->snap;
    const char *name = sn->msgs[i].name;
    size_t off;
    ssize_t n;

    if (sn->arena_map_len == 0 || name < sn->arena || name >= sn->arena + sn->arena_map_len)
	return name;
    off = (size_t) (name - sn->arena);
    if (sn->namewin && off >= sn->namewin_off && off < sn->namewin_off + sn->namewin_len
	&& memchr(sn->namewin + (off - sn->namewin_off), 0,
		  sn->namewin_off + sn->namewin_len - off) != NULL)
	return sn->namewin + (off - sn->namewin_off);
    if (sn->namewin == NULL)
	sn->namewin = mem_alloc(SM_NAMEWIN);
    sn->namewin_len = 0;
    n = pread(sn->arena_fd, sn->namewin, SM_NAMEWIN, (off_t) off);
    if (n > 0 && memchr(sn->namewin, 0, (size_t) n) != NULL) {
	sn->namewin_off = off;
	sn->namewin_len = (size_t) n;
	return sn->namewin;
    }
    return name;
}

/* sm_open_msg - open message i (a name gone stale is looked up again);
 * stat: check that it is a regular file */
static int sm_open_msg(struct store_mailbox *mb, size_t i, bool stat, const char **error_r)
{
    int fd, tries;

    if (i >= mb->snap.count) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "no message %zu", i + 1);
    }
    for (tries = 0; tries < 3; tries++) {
	fd = openat(mb->snap.msgs[i].in_new ? mb->new_fd : mb->cur_fd,
		    sm_name_cold(mb, i), O_RDONLY | O_NOFOLLOW
		    | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd >= 0) {
	    struct stat st;

	    if (!stat || (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)))
		return fd;		/* (O_NONBLOCK means nothing for a file) */
	    (void) close(fd);
	    errno = EINVAL;
	    return errtext_fail(&store_error, error_r, "%s/%s/%s: not a regular file",
				mb->path, mb->snap.msgs[i].in_new ? "new" : "cur",
				mb->snap.msgs[i].name);
	}
	if (errno != ENOENT || store_relocate(mb, i) < 0)
	    break;
    }
    return errtext_fail(&store_error, error_r, "open %s/%s/%s: %s", mb->path,
			mb->snap.msgs[i].in_new ? "new" : "cur", mb->snap.msgs[i].name,
			strerror(errno));
}

/* store_open_msg - a read descriptor for message i */
int store_open_msg(struct store_mailbox *mb, size_t i, const char **error_r)
{
    return sm_open_msg(mb, i, true, error_r);
}

/* store_open_msg_pread - the same without the fstat, for pread only */
int store_open_msg_pread(struct store_mailbox *mb, size_t i, const char **error_r)
{
    return sm_open_msg(mb, i, false, error_r);
}

/* store_msg_crlf_size - the CRLF size, counted now if unknown */
off_t store_msg_crlf_size(struct store_mailbox *mb, size_t i)
{
    struct store_msg *m;
    off_t size, crlf;
    const char *err;
    int fd;

    if (i >= mb->snap.count)
	return 0;
    m = &mb->snap.msgs[i];
    if (m->crlf_size >= 0)
	return m->crlf_size;
    if ((fd = store_open_msg(mb, i, &err)) < 0)
	return m->size;			/* (gone: the count no longer matters) */
    if (store_crlf_size(fd, &size, &crlf, &err) < 0 || size != m->size) {
	(void) close(fd);
	return m->size;
    }
    (void) close(fd);
    store_msg_set_crlf_size(mb, i, crlf);
    return crlf;
}

/* store_msg_set_crlf_size - remember a CRLF size counted by the caller */
void store_msg_set_crlf_size(struct store_mailbox *mb, size_t i, off_t crlf_size)
{
    struct store_msg *m;

    if (i >= mb->snap.count || crlf_size < mb->snap.msgs[i].size)
	return;
    m = &mb->snap.msgs[i];
    if (m->crlf_size < 0) {
	m->crlf_size = crlf_size;
	mb->crlf_learned++;
    }
}

/* What store_save_crlf's getter walks: the index's lines again, and
 * the snapshot beside them (both in UID order). */
struct sc_walk {
    const struct store_mailbox *mb;
    struct store_index *idx;	/* (its mapping's pages released behind) */
    const char *first, *cp;
    size_t j;
    size_t changed;
    /* sc_get_pread: the lines read from the mapped file with pread into
     * a window, not through the mapping */
    char *win;
    size_t win_off, win_len, off;
};

#define SC_WIN		((size_t) 32 << 10)	/* (under the worker's
						 * mmap threshold: heap) */

static const struct store_rec *sc_merge(struct sc_walk *w, struct store_rec *tmp);

/* sc_get - line i of the index, with the snapshot's counted CRLF size
 * (i runs from 0 up, once per pass of the write) */
static const struct store_rec *sc_get(size_t i, void *ctx, struct store_rec *tmp)
{
    struct sc_walk *w = ctx;

    if (i == 0) {
	w->cp = w->first, w->j = 0;
	store_index_walk_begin(w->idx);
    }
    store_index_line(&w->cp, tmp);
    /* (tmp's name is read by the writer before the next call: the page
     * it is on is at or after w->cp's page less one step) */
    store_index_release(w->idx, tmp->name);
    return sc_merge(w, tmp);
}

/* sc_get_pread - sc_get reading the lines with pread into a window:
 * no page of the mapping is touched, so none must be dropped again
 * (each madvise is a TLB flush; on this machine's VMs hundreds of
 * microseconds) */
static const struct store_rec *sc_get_pread(size_t i, void *ctx, struct store_rec *tmp)
{
    struct sc_walk *w = ctx;
    const char *start = NULL, *cp;
    ssize_t n;

    if (i == 0) {
	w->off = (size_t) (w->first - w->idx->data);
	w->j = 0;
    }
    if (w->off >= w->win_off && w->off < w->win_off + w->win_len
	&& memchr(w->win + (w->off - w->win_off), '\n', w->win_off + w->win_len - w->off))
	start = w->win + (w->off - w->win_off);
    else if (w->off < w->idx->map_len) {
	n = pread(w->idx->map_fd, w->win, SC_WIN, (off_t) w->off);
	w->win_off = w->off;
	w->win_len = n > 0 ? (size_t) n : 0;
	w->win[w->win_len] = 0;
	if (memchr(w->win, '\n', w->win_len) != NULL)
	    start = w->win;
    }
    if (start == NULL)
	start = w->idx->data + w->off;	/* (a read failed: the mapping) */
    cp = start;
    store_index_line(&cp, tmp);
    w->off += (size_t) (cp - start);
    return sc_merge(w, tmp);
}

/* sc_merge - the snapshot's counted CRLF size into the line's tmp */
static const struct store_rec *sc_merge(struct sc_walk *w, struct store_rec *tmp)
{
    const struct store_msg *m;

    while (w->j < w->mb->snap.count && w->mb->snap.msgs[w->j].uid < tmp->uid)
	w->j++;
    /* (the same UID under the same UIDVALIDITY is the same message: its
     * name is not compared, which would touch the snapshot's names) */
    if (w->j < w->mb->snap.count) {
	m = &w->mb->snap.msgs[w->j];
	if (m->uid == tmp->uid && tmp->crlf_size < 0 && m->crlf_size >= 0
	    && tmp->size == m->size) {
	    tmp->crlf_size = m->crlf_size;
	    w->changed++;
	}
    }
    return tmp;
}

/* sm_crlf_fast - whether the index file is still the one mapped as
 * the snapshot's arena (the same inode and size; a version 2 index is
 * replaced, never written in place), and then *idx borrowing that
 * mapping (not to be freed) */
static bool sm_crlf_fast(struct store_mailbox *mb, struct store_index *idx)
{
    const struct sm_snap *sn = &mb->snap;
    struct stat a, b;

    if (sn->arena_map_len == 0 || sn->arena_first == NULL
	|| sn->arena_h.uidvalidity != mb->uidvalidity || fstat(sn->arena_fd, &a) < 0
	|| fstatat(mb->dir_fd, STORE_INDEX_FILE, &b, AT_SYMLINK_NOFOLLOW) < 0
	|| a.st_ino != b.st_ino || a.st_dev != b.st_dev || a.st_size != b.st_size
	|| (size_t) b.st_size != sn->arena_map_len)
	return false;
    memset(idx, 0, sizeof(*idx));
    idx->state = STORE_INDEX_VALID;
    idx->version = 2;
    idx->h = sn->arena_h;
    idx->data = sn->arena;
    idx->map_len = sn->arena_map_len;
    idx->map_fd = sn->arena_fd;
    idx->count = sn->arena_count;
    idx->first_line = sn->arena_first;
    idx->no_recs = true;
    return true;
}

/* store_save_crlf - the index learns the counted CRLF sizes: rewritten
 * line by line from the file's mapping (no records in memory) */
void store_save_crlf(struct store_mailbox *mb)
{
    struct store_index idx;
    struct store_rec tmp;
    struct sc_walk w;
    const char *err;
    size_t i;

    if (mb->crlf_learned == 0 || !mb->can_write)
	return;
    mb->crlf_learned = 0;
    store_lock(mb);
    if (sm_crlf_fast(mb, &idx)) {
	/* the index is still the one the snapshot's names are in: it was
	 * checked when read, and is never changed in place; rewritten
	 * from that mapping (no read and check of a copy: three walks of
	 * the file, and no counting walk first) */
	memset(&w, 0, sizeof(w));
	w.mb = mb;
	w.idx = &idx;
	w.first = idx.first_line;
	w.win = mem_alloc(SC_WIN + 1);
	if (store_index_write_fn(mb->dir_fd, &idx.h, idx.count, sc_get_pread, &w, false,
				 &err) < 0)
	    msg_warn("%s: %s", mb->path, err);
	else
	    store_watch_own(mb, STORE_INDEX_FILE);
	mem_free(&w.win);
	store_unlock(mb);
	return;
    }
    store_index_read_lean(mb->dir_fd, &idx);
    if (idx.state == STORE_INDEX_VALID && idx.version == 2 && idx.map_len > 0
	&& idx.h.uidvalidity == mb->uidvalidity) {
	w.mb = mb;
	w.idx = &idx;
	w.first = idx.first_line;
	w.changed = 0;
	for (i = 0; i < idx.count; i++)
	    (void) sc_get(i, &w, &tmp);
	/* (nothing else changes: no fsync, the sizes can be counted again) */
	if (w.changed > 0
	    && store_index_write_fn(mb->dir_fd, &idx.h, idx.count, sc_get, &w, false, &err) < 0)
	    msg_warn("%s: %s", mb->path, err);
	else if (w.changed > 0)
	    store_watch_own(mb, STORE_INDEX_FILE);
    }
    store_index_free(&idx);
    store_unlock(mb);
}

/* store_stamp_at_close - record cur/'s stamp now if it could not be
 * at the last synchronisation (cur/ had just changed, by this handle's
 * moves of new mail most likely) and is old enough now: the next open
 * of the mailbox then does not read cur/. Big mailboxes only, where
 * that read costs (10,000 messages: tens of ms), and nobody waits here.
 * Called by store_close only, last of what needs the snapshot. */
void store_stamp_at_close(struct store_mailbox *mb)
{
    struct store_dirstamp st;
    struct timespec now;
    const char *err;

    if (mb->cur_stamp_recorded || !mb->can_write || mb->mode != STORE_READ_WRITE
	|| !mb->have_snapshot || mb->snap.count < 1000 || mb->in_batch)
	return;
    (void) clock_gettime(CLOCK_REALTIME, &now);
    if (!store_dirstamp_get_before(mb->cur_fd, &st, &now) || st.msec == 0
	|| !store_dirstamp_get_before(mb->new_fd, &st, &now) || st.msec == 0)
	return;				/* (still too young) */
    /* the snapshot goes first (the handle is closing; the CRLF sizes
     * and the cache were saved): the synchronisation's scan and records
     * are then the only big memory of the process */
    store_snap_free(&mb->snap);
    mb->have_snapshot = false;
    if (store_sync_int(mb, STORE_SYNC_COMMIT, NULL, &err) < 0)
	msg_warn("%s", err);
}

/* sm_done - the end of one change outside a batch: fsync cur/ (if
 * fsync_cur), the anchor (if anchor: expunged UIDs stay used even if
 * the index is lost), the index with the new MODSEQs; then unlock.
 * Inside a batch: remember what store_commit must do. */
static int sm_done(struct store_mailbox *mb, bool fsync_cur, bool anchor, const char **error_r)
{
    uint32_t a_uv, a_next;
    const char *err;
    int ret = 0;

    if (mb->in_batch) {
	mb->batch_cur |= fsync_cur;
	mb->batch_anchor |= anchor;
	mb->batch_dirty |= fsync_cur || anchor;
	store_unlock(mb);
	return 0;
    }
    if (fsync_cur && fsync(mb->cur_fd) < 0)
	ret = errtext_fail(&store_error, error_r, "fsync %s/cur: %s", mb->path,
			   strerror(errno));
    if (ret == 0 && anchor
	&& (store_anchor_read(mb->dir_fd, &a_uv, &a_next) < 0 || a_uv != mb->uidvalidity
	    || a_next < mb->uidnext)) {
	if (store_anchor_write(mb->dir_fd, mb->uidvalidity, mb->uidnext, &err) < 0)
	    ret = errtext_fail(&store_error, error_r, "%s: %s", mb->path, err);
	else
	    store_watch_own(mb, STORE_ANCHOR_FILE);
    }
    if (ret == 0 && (fsync_cur || anchor)
	&& store_sync_int(mb, STORE_SYNC_COMMIT, NULL, &err) < 0)
	msg_warn("%s", err);		/* (done; the MODSEQ comes at the next sync) */
    store_unlock(mb);
    return ret;
}

/* sm_batch_modseqs - the index's MODSEQs for the snapshot's messages
 * (0: gone), for store_modseq_now; the lock is held */
static void sm_batch_modseqs(struct store_mailbox *mb)
{
    struct store_index idx;
    size_t i, j;

    mem_free(&mb->batch_modseq);
    store_index_read(mb->dir_fd, &idx);
    if (idx.state == STORE_INDEX_VALID && idx.version == 2
	&& idx.h.uidvalidity == mb->uidvalidity) {
	mb->batch_modseq = mem_alloc_array(mb->snap.count ? mb->snap.count : 1,
					   sizeof(*mb->batch_modseq));
	for (i = j = 0; i < mb->snap.count; i++) {
	    while (j < idx.count && idx.recs[j].uid < mb->snap.msgs[i].uid)
		j++;
	    if (j < idx.count && idx.recs[j].uid == mb->snap.msgs[i].uid)
		mb->batch_modseq[i] = idx.recs[j].modseq > mb->snap.msgs[i].modseq
		    ? idx.recs[j].modseq : mb->snap.msgs[i].modseq;
	    else
		mb->batch_modseq[i] = 0;
	}
    }
    store_index_free(&idx);
}

/* store_begin - a batch: the lock until store_commit */
int store_begin(struct store_mailbox *mb, const char **error_r)
{
    if (mb->in_batch) {
	errno = EBUSY;
	return errtext_fail(&store_error, error_r, "%s: a batch is open already", mb->path);
    }
    store_lock(mb);
    mb->in_batch = true;
    mb->batch_cur = mb->batch_anchor = mb->batch_dirty = false;
    sm_batch_modseqs(mb);
    return 0;
}

/* store_modseq_now - the disk's MODSEQ (in a batch) */
uint64_t store_modseq_now(const struct store_mailbox *mb, size_t i)
{
    if (i >= mb->snap.count)
	return 0;
    if (mb->in_batch && mb->batch_modseq)
	return mb->batch_modseq[i];
    return mb->snap.msgs[i].modseq;
}

/* store_commit - the batch's fsync, anchor and index; unlock */
int store_commit(struct store_mailbox *mb, const char **error_r)
{
    const char *err;
    int ret;

    mb->generation++;
    if (!mb->in_batch) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "%s: no batch is open", mb->path);
    }
    mb->in_batch = false;
    mem_free(&mb->batch_modseq);
    ret = sm_done(mb, mb->batch_cur, mb->batch_anchor, error_r);
    if (store_cache_flush(mb, &err) < 0)
	msg_warn("%s", err);
    return ret;
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

    mb->generation++;
    if (mb->mode != STORE_READ_WRITE) {
	errno = EROFS;
	return errtext_fail(&store_error, error_r, "%s: opened read-only", mb->path);
    }
    if (i >= mb->snap.count) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "no message %zu", i + 1);
    }
    m = &mb->snap.msgs[i];
    store_lock(mb);
    for (tries = 0; tries < 3; tries++) {
	(void) store_name_parse(m->name, &parsed);
	flags = (parsed.flags | add) & ~remove;
	if (flags == parsed.flags && (m->in_new || strstr(m->name, ":2,") != NULL)) {
	    m->flags = flags;
	    return sm_done(mb, false, false, error_r);
	}
	if (!store_name_make(newname, sizeof(newname), m->name, parsed.keylen, m->size,
			     m->crlf_size, m->uid, flags)) {
	    store_unlock(mb);
	    errno = ENAMETOOLONG;
	    return errtext_fail(&store_error, error_r, "%s: file name too long", m->name);
	}
	/* (a message in new/ moves to cur/ with its first flags) */
	if (renameat(m->in_new ? mb->new_fd : mb->cur_fd, m->name, mb->cur_fd, newname) == 0) {
	    sm_set_name(mb, i, newname);
	    m->flags = flags;
	    m->in_new = false;
	    return sm_done(mb, true, false, error_r);
	}
	err = errno;
	if (err != ENOENT || store_relocate(mb, i) < 0)
	    break;
    }
    store_unlock(mb);
    errno = err ? err : ENOENT;
    return errtext_fail(&store_error, error_r, "rename %s/%s/%s: %s", mb->path,
			m->in_new ? "new" : "cur", m->name, strerror(errno));
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
    uint32_t *want;
    size_t i, j, removed = 0;
    int err = 0, tries, ret;
    const char *derr = NULL;

    mb->generation++;
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
    store_lock(mb);
    for (i = 0; i < mb->snap.count && err == 0; i++) {
	if (bsearch(&mb->snap.msgs[i].uid, want, n, sizeof(*want), sm_uid_cmp) == NULL)
	    continue;
	for (tries = 0; tries < 3; tries++) {
	    if (unlinkat(mb->snap.msgs[i].in_new ? mb->new_fd : mb->cur_fd,
			 mb->snap.msgs[i].name, 0) == 0) {
		removed++;
		break;
	    }
	    if (errno != ENOENT) {
		err = errno;
		break;
	    }
	    if (store_relocate(mb, i) < 0)
		break;			/* already gone */
	}
    }
    ret = sm_done(mb, removed > 0 && err == 0, removed > 0 && err == 0, &derr);
    /* the snapshot loses the expunged messages (and any found gone) */
    if (err == 0) {
	for (i = j = 0; i < mb->snap.count; i++)
	    if (bsearch(&mb->snap.msgs[i].uid, want, n, sizeof(*want), sm_uid_cmp) == NULL) {
		if (mb->batch_modseq)
		    mb->batch_modseq[j] = mb->batch_modseq[i];
		mb->snap.msgs[j++] = mb->snap.msgs[i];
	    }
	mb->snap.count = j;
	store_cache_resync(mb);
    }
    mem_free(&want);
    if (removed_r)
	*removed_r = removed;
    if (err) {
	errno = err;
	return errtext_fail(&store_error, error_r, "expunge in %s/cur: %s", mb->path,
			    strerror(err));
    }
    if (ret < 0 && error_r)
	*error_r = derr;		/* (store_error's text already) */
    return ret;
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
