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

extern struct errtext store_error;	/* store.h's error text */

/* File names in the mailbox directory. */
#define STORE_INDEX_FILE	"posthorn-index"
#define STORE_INDEX_TMP		"posthorn-index.tmp"
#define STORE_ANCHOR_FILE	"posthorn-uidvalidity"
#define STORE_ANCHOR_TMP	"posthorn-uidvalidity.tmp"
#define STORE_LOCK_FILE		"posthorn-lock"
#define STORE_INDEX_MAGIC	"posthorn-index 1"
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
/* store_name_make - KEY,S=size,W=crlf,U=uid:2,FLAGS into buf; false
 * if it does not fit (or would pass NAME_MAX) */
bool store_name_make(char *buf, size_t size, const char *key, size_t keylen, off_t msize,
		     off_t crlf, uint32_t uid, uint32_t flags);

/* One message of the index file. */
struct store_rec {
    char *name;			/* its name in cur/ (owned when read) */
    size_t keylen;		/* its unique part: name[0..keylen) */
    uint32_t uid;
    off_t size;
    off_t crlf_size;
    time_t mtime;
};

#define STORE_INDEX_MISSING	0
#define STORE_INDEX_VALID	1
#define STORE_INDEX_DAMAGED	2	/* header and recs: what was readable */

struct store_index {
    int state;
    uint32_t uidvalidity;	/* 0: unknown */
    uint32_t uidnext;		/* 0: unknown */
    long long cur_sec;		/* cur/'s mtime when it was written, if */
    long cur_nsec;		/* stable then (else 0 0): see sm_sync */
    struct store_rec *recs;	/* sorted by key once loaded */
    size_t count;
    size_t cap;
};

/* store_index_read - read and check dir_fd's index; never fails: a
 * missing file is MISSING, anything wrong DAMAGED (with what could be
 * read before the damage) */
void store_index_read(int dir_fd, struct store_index *idx);
/* store_index_parse - the same from a buffer (for tests) */
void store_index_parse(const char *data, size_t len, struct store_index *idx);
/* store_index_free - free the records; the index is MISSING again */
void store_index_free(struct store_index *idx);
/* store_index_find - the record for key, or NULL (recs sorted) */
struct store_rec *store_index_find(struct store_index *idx, const char *key, size_t keylen);
/* store_index_write - write recs (any order; written in UID order)
 * atomically (temp, fsync, rename, fsync dir_fd). 0, or -1 + error */
int store_index_write(int dir_fd, uint32_t uidvalidity, uint32_t uidnext, long long cur_sec,
		      long cur_nsec, const struct store_rec *recs, size_t count,
		      const char **error_r);

/* store_anchor_read - the anchor file: 0 with both values, -1 if
 * missing or unreadable */
int store_anchor_read(int dir_fd, uint32_t *uidvalidity_r, uint32_t *uidnext_r);
/* store_anchor_write - write it atomically; 0, or -1 + error */
int store_anchor_write(int dir_fd, uint32_t uidvalidity, uint32_t uidnext, const char **error_r);

/* store_write_atomic - data into dir_fd/tmp, fsync, rename to name,
 * fsync dir_fd */
int store_write_atomic(int dir_fd, const char *tmp, const char *name, const void *data,
		       size_t len, const char **error_r);

#endif
