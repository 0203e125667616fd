/* store_int.h - what the files of the mail store share and nobody else
 * uses: Maildir file-name parsing, the index and anchor files. */
#ifndef POSTHORN_STORE_INT_H
#define POSTHORN_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "errtext.h"
#include "store.h"

extern struct errtext store_error;	/* store.h's error text */
extern unsigned long store_cur_scans;	/* readdirs of cur/ (for the tests) */

/* File names in the mailbox directory. */
#define STORE_INDEX_FILE	"posthorn-index"
#define STORE_INDEX_TMP		"posthorn-index.tmp"
#define STORE_NEWLIST_FILE	"posthorn-newlist"
#define STORE_NEWLIST_TMP	"posthorn-newlist.tmp"
#define STORE_ANCHOR_FILE	"posthorn-uidvalidity"
#define STORE_ANCHOR_TMP	"posthorn-uidvalidity.tmp"
#define STORE_LOCK_FILE		"posthorn-lock"
#define STORE_INDEX_MAGIC	"posthorn-index 2"
#define STORE_INDEX_MAGIC1	"posthorn-index 1"
#define STORE_ANCHOR_MAGIC	"posthorn-uidvalidity 1"
#define STORE_INDEX_MAX		((size_t) 1 << 30)

/* The parts of a Maildir file name "KEY[,X=V...][:2,FLAGS]" we use. */
struct store_name {
    size_t keylen;		/* the unique part: up to the first ',' or ':' */
    long long size;		/* S=, -1 if absent */
    long long crlf_size;	/* W=, -1 if absent */
    uint32_t uid;		/* U=, 0 if absent */
    uint32_t flags;		/* from ":2," */
};

/* store_name_parse - split name; false if it cannot be a message (empty
 * key, starts with '.', has a newline) */
bool store_name_parse(const char *name, struct store_name *out);
/* store_name_key_is - whether name's unique part is key[0..keylen) */
bool store_name_key_is(const char *name, const char *key, size_t keylen);
/* store_key_hash - a hash of key[0..len) (sort order: hash, then key) */
uint64_t store_key_hash(const char *key, size_t len);
/* store_flags_parse_n - the flags of the letters info[0..len) */
uint32_t store_flags_parse_n(const char *info, size_t len);
/* store_name_make - KEY,S=size,W=crlf,U=uid:2,FLAGS into buf; false
 * if it does not fit (or would pass NAME_MAX) */
bool store_name_make(char *buf, size_t size, const char *key, size_t keylen, off_t msize,
		     off_t crlf, uint32_t uid, uint32_t flags);

/* One message of the index file. */
struct store_rec {			/* (64 bytes: one per message in memory) */
    char *name;			/* its name in cur/ (into the index's data
				 * when read) */
    off_t size;
    off_t crlf_size;
    time_t mtime;
    uint64_t modseq;		/* 0 in a version 1 index */
    uint64_t khash;		/* (store_index_sort: of the key) */
    uint32_t keylen;		/* its unique part: name[0..keylen) (a
				 * name is at most NAME_MAX bytes) */
    uint32_t uid;
    uint32_t flags;		/* (read: from the name) */
    bool in_new;		/* the file is new/NAME (written "new/NAME") */
};

#define STORE_INDEX_MISSING	0
#define STORE_INDEX_VALID	1
#define STORE_INDEX_DAMAGED	2	/* header and recs: what was readable */

/* A directory's state when the index was written (all 0: unknown or
 * too recent to trust): mtime, ctime and inode (docs/mailstore.md). */
struct store_dirstamp {
    long long msec;
    long mnsec;
    long long csec;
    long cnsec;
    unsigned long long ino;
};

/* The header of the index. */
struct store_index_head {
    uint32_t uidvalidity;	/* 0: unknown */
    uint32_t uidnext;		/* 0: unknown */
    uint64_t highestmodseq;	/* 0: unknown (version 1) */
    uint32_t recent;		/* lowest UID no session claimed; 0 unknown */
    struct store_dirstamp cur;	/* cur/ when the index was written */
    struct store_dirstamp newd;	/* new/ likewise (all 0: not recorded) */
};

struct store_index {
    int state;
    int version;		/* 1 or 2 */
    struct store_index_head h;
    char *data;			/* the file's bytes (names NUL-terminated);
				 * the recs' names point into it */
    size_t map_len;		/* data is a read-only mapping of the file */
    int map_fd;			/* and this the file (when map_len) */
    struct store_rec *recs;	/* in the file's (UID) order */
    size_t count;
    size_t cap;
    size_t n_new;		/* records of messages in new/ */
    size_t *bykey;		/* store_index_sort: recs by key */
    bool no_recs;		/* store_index_read_lean: count, keep none */
    struct store_rec one;	/* (no_recs: the scratch record) */
    const char *first_line;	/* the first message line in data */
    const char *released;	/* (mapped: pages below dropped, walk) */
};

/* store_index_read - read and check dir_fd's index; never fails: a
 * missing file is MISSING, anything wrong DAMAGED (with what could be
 * read before the damage) */
void store_index_read(int dir_fd, struct store_index *idx);
/* store_index_read_lean - the same, checked and counted, but no
 * records kept (recs NULL): store_index_line reads them back */
void store_index_read_lean(int dir_fd, struct store_index *idx);
/* store_index_line - the message line at *cp of a VALID version 2
 * index into r (name into the data); *cp moves to the next line */
void store_index_line(const char **cp, struct store_rec *r);
/* store_index_release - a walk of a mapped index passed cp: drop this
 * process's page table entries for the pages below it (they stay in
 * the page cache), a step at a time, so that walking a big index maps
 * no more than a window of it (PSS); store_index_walk_begin - a walk
 * starts at data again */
void store_index_release(struct store_index *idx, const char *cp);
void store_index_walk_begin(struct store_index *idx);
/* store_map_release - the same for any read-only file mapping
 * base[0..len): pages of [*from, cp) when a step's worth; *from moves */
void store_map_release(const char *base, size_t len, const char **from, const char *cp);
/* store_index_parse - the same from a buffer (copied) */
void store_index_parse(const char *data, size_t len, struct store_index *idx);
/* store_index_free - free data and records; the index is MISSING again */
void store_index_free(struct store_index *idx);
/* store_index_sort - sort by key for store_index_find; a key twice
 * makes the index DAMAGED and neither copy's UID trusted (uid 0) */
void store_index_sort(struct store_index *idx);
/* store_index_find - the record for key, or NULL (after store_index_sort) */
struct store_rec *store_index_find(struct store_index *idx, const char *key, size_t keylen);
/* store_index_write - write recs (any order; written in UID order)
 * atomically (temp, fsync, rename, fsync dir_fd; without durable, no
 * fsync), format version 2 (a crlf_size below 0 is written as 0: not
 * counted). 0, or -1 + error */
int store_index_write(int dir_fd, const struct store_index_head *h, const struct store_rec *recs,
		      size_t count, bool durable, const char **error_r);
/* store_newlist_write - posthorn-newlist: UID and key of the records
 * in_new (no fsync; a hint for rebuilding the index). 0, or -1 + error
 * store_newlist_read - into idx (records: in_new, uid, name = key);
 * its UIDVALIDITY, 0 if there is no readable list */
int store_newlist_write(int dir_fd, uint32_t uidvalidity, size_t count,
			const struct store_rec *(*get) (size_t, void *, struct store_rec *),
			void *ctx, const char **error_r);
uint32_t store_newlist_read(int dir_fd, struct store_index *idx);
/* store_index_write_fn - the same, record i (ascending UID) from get
 * (which may fill tmp and return it) */
typedef const struct store_rec *(*store_index_get_fn) (size_t i, void *ctx,
						       struct store_rec *tmp);
int store_index_write_fn(int dir_fd, const struct store_index_head *h, size_t count,
			 store_index_get_fn get, void *ctx, bool durable, const char **error_r);
/* store_dirstamp_get - fd's stamp; with only_if_old, all 0 unless its
 * mtime and ctime are at least 2 seconds old (a change within the same
 * clock tick would not show); false if fstat fails */
bool store_dirstamp_get(int fd, struct store_dirstamp *st_r, bool only_if_old);
/* store_dirstamp_get_before - fd's stamp, all 0 unless its mtime and
 * ctime are more than STORE_STAMP_MARGIN_MS before limit (the moment a
 * synchronisation began reading the directory: any change after that
 * moment gets a later time, whatever the clock tick); limit NULL: no
 * condition. false if fstat fails */
#define STORE_STAMP_MARGIN_MS	250
bool store_dirstamp_get_before(int fd, struct store_dirstamp *st_r,
			       const struct timespec *limit);
/* store_dirstamp_same - equal and known */
bool store_dirstamp_same(const struct store_dirstamp *a, const struct store_dirstamp *b);

/* A snapshot: the messages and where their names live. */
struct sm_snap {
    struct store_msg *msgs;	/* ascending UID */
    size_t count;
    char *arena;		/* one block holding the names */
    size_t arena_map_len;	/* arena is a mapping (the index) */
    int arena_fd;		/* of that file (when arena_map_len): names
				 * are read with pread where only one is
				 * needed, so that the mapping's pages stay
				 * out of the process's memory */
    struct store_index_head arena_h;	/* (arena_map_len) that index's header, */
    const char *arena_first;	/* its first message line, */
    size_t arena_count;		/* its message count: store_save_crlf
				 * rewrites it from the snapshot's mapping
				 * while it is still the index */
    char *namewin;		/* a window of the index file's bytes read
				 * with one pread (SM_NAMEWIN), so that a walk
				 * over many messages reads their names a few
				 * KiB at a time, not one pread each */
    size_t namewin_off;
    size_t namewin_len;
    char **extra;		/* names allocated one by one since */
    size_t n_extra;
    size_t cap_extra;
};

/* A range of UIDs [lo, hi) this handle claimed as \Recent. */
struct sm_claim {
    uint32_t lo;
    uint32_t hi;
};

struct store_mailbox {
    char *path;			/* the mailbox directory */
    int mode;			/* STORE_READ_ONLY or STORE_READ_WRITE */
    bool claim_recent;		/* STORE_RECENT with STORE_READ_WRITE */
    int dir_fd;
    int cur_fd;
    int new_fd;
    int lock_fd;		/* posthorn-lock, -1 if it cannot be had */
    int session_fd;		/* store_session_lock's file, or -1 */
    bool can_write;		/* the directory takes renames and files */
    int lock_depth;		/* sm_lock nesting */
    bool in_batch;		/* between store_begin and store_commit */
    bool batch_cur;		/* the batch changed cur/ (fsync due) */
    bool batch_dirty;		/* the batch changed something (index due) */
    bool batch_anchor;		/* the batch expunged (anchor due) */
    uint64_t *batch_modseq;	/* store_modseq_now: [snapshot index] */
    bool have_snapshot;
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint64_t highestmodseq;
    uint32_t recent_floor;	/* the lowest UID nobody claimed (last sync) */
    struct sm_claim *claims;	/* what this handle claimed, ascending */
    size_t n_claims;
    uint32_t disk_uidnext;	/* UIDNEXT on disk after the last sync */
    uint32_t disk_uidvalidity;	/* and UIDVALIDITY */
    struct sm_snap snap;
    bool cur_stamp_recorded;	/* the index as last synchronised has
				 * cur/'s stamp */
    size_t crlf_learned;	/* CRLF sizes counted since the index was
				 * written (store_save_crlf) */
    /* keywords (store_keyword.c) */
    char *keywords[STORE_KEYWORDS_MAX];
    bool keywords_loaded;
    bool keywords_recheck;	/* a sync ran since the file was last looked at */
    struct store_dirstamp keywords_stamp;	/* the file's, when read */
    /* store_generation: bumped by everything that may change the snapshot */
    uint64_t generation;
    /* change notification (store_watch.c): the descriptor, the mailbox
     * directory's watch, and this handle's own replacements of files in
     * that directory since the last drain (store_watch_own) */
    int watch_fd;
    int watch_dir_wd;
    struct {
	const char *name;	/* a file name constant, NULL: free */
	unsigned count;
    } watch_own[6];
    /* the cache (store_cache.c), NULL until used */
    struct store_cache *cache;
};

/* How store_sync_int treats the handle's snapshot. */
#define STORE_SYNC_REPLACE	0	/* a new snapshot (the old one into
					 * *old_r, for the caller to compare
					 * and free with store_snap_free) */
#define STORE_SYNC_COMMIT	1	/* the disk only: the snapshot stays,
					 * but messages whose name is the one
					 * on disk take their MODSEQ */

/* store_sync_int - the synchronisation (store.c; docs/mailstore.md),
 * under the mailbox lock (taken here if not held) */
int store_sync_int(struct store_mailbox *mb, int how, struct sm_snap *old_r,
		   const char **error_r);
/* store_save_crlf - write the CRLF sizes counted since into the index
 * (no fsync: they can always be counted again); quiet on failure */
void store_save_crlf(struct store_mailbox *mb);
/* store_snap_free - free a snapshot */
void store_snap_free(struct sm_snap *snap);
/* store_lock, store_unlock - the mailbox lock (nested: counted) */
void store_lock(struct store_mailbox *mb);
void store_unlock(struct store_mailbox *mb);
/* store_unique - a new unique Maildir name part into buf (at least
 * 256 bytes) */
void store_unique(char *buf, size_t size);
/* store_watch_own - this handle replaced dir/name (an event its watch
 * should not take for another process's change) */
void store_watch_own(struct store_mailbox *mb, const char *name);

/* store_rename - renameat; with noreplace never over an existing file */
int store_rename(int from_fd, const char *from, int to_fd, const char *to, bool noreplace);
/* store_relocate - find message i's current name in cur/ again (another
 * session renamed it): 0, or -1 with errno ENOENT when it is gone */
int store_relocate(struct store_mailbox *mb, size_t i);
/* store_keywords_free - (store_keyword.c) at close */
void store_keywords_free(struct store_mailbox *mb);
/* store_watch_close - (store_watch.c) at close */
void store_watch_close(struct store_mailbox *mb);
/* store_stamp_at_close - (store.c) record cur/'s stamp in the index of
 * a big mailbox when it was too young at the last synchronisation and
 * is old enough now (a COMMIT synchronisation: one read of cur/) */
void store_stamp_at_close(struct store_mailbox *mb);
/* store_cache_close - (store_cache.c) flush and free at close;
 * store_cache_resync - after a snapshot change */
void store_cache_close(struct store_mailbox *mb);
void store_cache_resync(struct store_mailbox *mb);

/* store_anchor_read - the anchor file: 0 with both values, -1 if
 * missing or unreadable */
int store_anchor_read(int dir_fd, uint32_t *uidvalidity_r, uint32_t *uidnext_r);
/* store_anchor_write - write it atomically; 0, or -1 + error */
int store_anchor_write(int dir_fd, uint32_t uidvalidity, uint32_t uidnext, const char **error_r);

/* store_write_atomic - data into dir_fd/tmp, fsync, rename to name,
 * fsync dir_fd */
int store_write_atomic(int dir_fd, const char *tmp, const char *name, const void *data,
		       size_t len, const char **error_r);
/* store_write_atomic2 - the same, without any fsync unless durable */
int store_write_atomic2(int dir_fd, const char *tmp, const char *name, const void *data,
			size_t len, bool durable, const char **error_r);

#endif
