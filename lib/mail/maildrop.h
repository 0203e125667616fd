/* maildrop.h - the maildrop file: what sendmail writes, postdrop checks
 * and stores in maildrop/, and pickup checks again before cleanup sees it.
 *
 * A maildrop file is a queue file (queue_file.h) in the smaller form an
 * untrusted local user may produce:
 *
 *     V            "posthorn-queue 1"
 *     S            the envelope sender (empty: the null sender), once
 *     A*           only the names below, each at most once, before any R
 *     ([O] [N] R)* recipients with their DSN ORCPT and NOTIFY
 *     M
 *     (C* L)*      content lines (no terminators)
 *     X
 *     ([O] [N] R)* trailer recipients (sendmail writes none)
 *     E
 *
 * Record types are checked with the untrusted sets of queue_file.h
 * (QF_TYPES_UNTRUSTED_ENVELOPE, QF_TYPES_UNTRUSTED_TRAILER) plus 'A',
 * and every 'A' by name and value against this whitelist:
 *
 *     dsn_envid=TEXT   sendmail -V: 1..100 printable ASCII characters
 *     dsn_ret=full|hdrs  sendmail -R
 *     body=7bit|8bitmime sendmail -B
 *     flags=WORD,...   MAILDROP_FLAG_* words: "extract" (sendmail -t:
 *                      pickup asks cleanup for CLEANUP_FLAG_EXTRACT)
 *
 * so a user can never set the arrival time, client attributes such as
 * sasl_username, submit_uid (pickup takes it from the file owner) or
 * done marks. Addresses (S, R, O) are at most MAILDROP_ADDR_MAX bytes
 * without control characters; a recipient is never empty; a file needs
 * a recipient unless it has the extract flag. Content bytes (plus two
 * per line for CRLF) count against the caller's size limit; envelope
 * records (recipients) against the same limit, but at least 1 MiB.
 *
 * Interface: maildrop_check_init() then, for each record,
 * maildrop_allowed() (the types allowed next: pass it to qf_get) and
 * maildrop_check_record(). maildrop_get() does both for one record from
 * a qf_reader; it returns 0 only at end of file after E.
 *
 * Diagnostics: -1 with *error_r, a text in a static buffer that lives
 * until the next call ("maildrop file: ..."); no logging. */
#ifndef POSTHORN_MAILDROP_H
#define POSTHORN_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* base */
#include "str.h"

/* mail */
#include "queue_file.h"

#define MAILDROP_ATTR_DSN_ENVID	"dsn_envid"
#define MAILDROP_ATTR_DSN_RET	"dsn_ret"
#define MAILDROP_ATTR_BODY	"body"
#define MAILDROP_ATTR_FLAGS	"flags"

#define MAILDROP_FLAG_EXTRACT	(1 << 0)	/* "extract": sendmail -t */
#define MAILDROP_FLAG_EXTRACT_NAME "extract"

#define MAILDROP_ADDR_MAX	2048	/* bytes of S, R, O data */
#define MAILDROP_ATTR_MAX	256	/* bytes of one A record */
#define MAILDROP_LINE_CHUNK	4096	/* writers split lines into C records of this */
#define MAILDROP_RECORD_MAX	65536	/* largest record a reader accepts */
#define MAILDROP_ENVID_MAX	100
#define MAILDROP_ENVELOPE_MIN	((long long) 1 << 20)	/* envelope bytes always allowed */

enum maildrop_state {
    MAILDROP_START,		/* want V */
    MAILDROP_SENDER,		/* want S */
    MAILDROP_ATTRS,		/* A, or the first O/N/R, or M */
    MAILDROP_RCPTS,		/* O/N/R or M */
    MAILDROP_CONTENT,		/* L/C/X */
    MAILDROP_TRAILER,		/* O/N/R/E */
    MAILDROP_DONE,		/* after E: end of file only */
};

struct maildrop_check {
    enum maildrop_state state;
    long long size_limit;	/* content bytes; <= 0: no limit */
    long long content_size;	/* content bytes so far (L/C data + 2 per L) */
    long long envelope_size;	/* bytes of envelope and trailer records */
    size_t rcpt_count;
    unsigned attrs_seen;	/* bit per whitelisted attribute */
    int flags;			/* MAILDROP_FLAG_* from the flags attribute */
    bool have_orcpt;		/* O waiting for its R */
    bool have_notify;		/* N waiting for its R */
    bool in_cont;		/* C waiting for its L */
};

/* maildrop_check_init - start checking a file; size_limit as above */
void maildrop_check_init(struct maildrop_check *c, long long size_limit);
/* maildrop_allowed - the record types allowed next ("" after E) */
const char *maildrop_allowed(const struct maildrop_check *c);
/* maildrop_check_record - check one record (already read with the types
 * of maildrop_allowed); 0 or -1 with *error_r */
int maildrop_check_record(struct maildrop_check *c, int type, const struct str *data,
			  const char **error_r);
/* maildrop_get - read and check one record: 1 with *type and data, 0 at
 * the end of file after E, -1 with *error_r (also for an end of file
 * before E, or any byte after it) */
int maildrop_get(struct maildrop_check *c, struct qf_reader *r, int *type, struct str *data,
		 const char **error_r);
/* maildrop_notify_valid - "never" or a duplicate-free comma list of
 * success, failure, delay */
bool maildrop_notify_valid(const char *text, size_t len);
/* maildrop_flags_parse - "extract,..." into MAILDROP_FLAG_* bits; false
 * on an unknown or repeated word */
bool maildrop_flags_parse(const char *text, int *flags);

#endif
