/* record_grammar.h - the one checker of queue-record sequences: which
 * record types may stand where, in which order, how large, and which
 * attributes a producer may set. One table-driven state machine serves
 * every reader of records, each through a profile:
 *
 *   RECORD_PROFILE_QUEUE_FILE        a queue file: what qmgr, bounce,
 *                                    local-delivery and posthorn queue
 *                                    read (qf_scan); cleanup wrote it
 *   RECORD_PROFILE_CLEANUP_TRUSTED   a request to cleanup from a trusted
 *                                    local daemon: smtpd, bounce,
 *                                    local-delivery (forwarding)
 *   RECORD_PROFILE_CLEANUP_UNTRUSTED a request to cleanup from pickup
 *                                    (CLEANUP_FLAG_UNTRUSTED): a local
 *                                    user's mail, re-framed by pickup
 *   RECORD_PROFILE_MAILDROP          a maildrop file: what sendmail
 *                                    writes, postdrop and pickup read
 *
 * The grammar (docs/queue-file.md has the tables per profile):
 *
 *   [V] envelope M content X trailer E      nothing after E
 *   envelope  T S A (rcpt)*                 T at most once, S once
 *   rcpt      [A rcpt_orig] [O] [N] (R|D)   in this order
 *   content   (C* L)*                       no C right before X
 *   trailer   A (rcpt)*
 *
 * A profile says which types each segment allows (QF_TYPES_* for the
 * queue file), whether V leads and T is required or only allowed first,
 * the size limits of records, addresses and content, and which
 * attribute names its producer may set (a table: one column per
 * profile). The untrusted profiles are narrower than the trusted ones;
 * a record or attribute that the trusted profile would take is
 * RECORD_NOPERM there, anything else RECORD_BAD.
 *
 * Interface: record_grammar_init(), then record_grammar_allowed() and
 * record_grammar_record_max() for qf_get, then record_grammar_check()
 * for each record it returned (qf_get has checked the framing, the
 * type against the allowed set, NUL bytes outside content records and
 * line feeds inside them). record_grammar_get() does both for one
 * record of a qf_reader and also refuses an end of file before E and
 * any byte after it. record_grammar_at_end() is true after E.
 *
 * Diagnostics: a verdict and an error text without a prefix ("second
 * sender record"); each caller adds its own ("corrupt queue file: ...
 * at offset N", "maildrop file: ..."). The text lives in a static
 * buffer until the next call into this module. */
#ifndef POSTHORN_RECORD_GRAMMAR_H
#define POSTHORN_RECORD_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base */
#include "str.h"

/* mail */
#include "queue_file.h"

enum record_profile {
    RECORD_PROFILE_QUEUE_FILE,
    RECORD_PROFILE_CLEANUP_TRUSTED,
    RECORD_PROFILE_CLEANUP_UNTRUSTED,
    RECORD_PROFILE_MAILDROP,
    RECORD_PROFILE_COUNT,
};

/* The longest sender or recipient a cleanup client may send (bytes;
 * ORCPT 16 more); cleanup's CLEANUP_ADDR_MAX. */
#define RECORD_CLEANUP_ADDR_MAX	1024

enum record_verdict {
    RECORD_OK = 0,
    RECORD_BAD,			/* breaks the grammar */
    RECORD_NOPERM,		/* allowed to a trusted producer only */
    RECORD_TOO_LARGE,		/* over the content or envelope size limit */
};

enum record_segment {
    RECORD_SEG_START,		/* before the first record */
    RECORD_SEG_ENVELOPE,
    RECORD_SEG_CONTENT,
    RECORD_SEG_TRAILER,
    RECORD_SEG_END,		/* after E: nothing */
    RECORD_SEG_COUNT,
};

struct record_rules;

struct record_grammar {
    const struct record_rules *rules;
    enum record_segment segment;
    long long size_limit;	/* content bytes; <= 0: none */
    long long content_size;	/* L/C data plus the profile's bytes per line end */
    long long envelope_size;	/* bytes of the other records (maildrop) */
    long rcpt_count;		/* R and D records */
    unsigned attrs_seen;	/* per attribute table row, for "once" rows */
    int maildrop_flags;		/* MAILDROP_FLAG_* (maildrop.h) from A flags= */
    int time_count, sender_count;
    bool started;		/* a record other than V and T came */
    bool rcpt_started;		/* an O, N, R or D came */
    bool have_orig, have_orcpt, have_notify;	/* waiting for their R */
    bool in_cont;		/* a C waits for its L */
};

/* record_grammar_init - start checking a sequence under profile;
 * size_limit bounds the content (and, for the maildrop profile, the
 * envelope, but never below 1 MiB); <= 0: no limit */
void record_grammar_init(struct record_grammar *g, enum record_profile profile,
			 long long size_limit);
/* record_grammar_allowed - the types allowed next ("" after E) */
const char *record_grammar_allowed(const struct record_grammar *g);
/* record_grammar_record_max - the largest record data allowed next */
size_t record_grammar_record_max(const struct record_grammar *g);
/* record_grammar_check - advance by one record; RECORD_OK, or another
 * verdict with *error_r. After a verdict other than OK the state is
 * undefined: stop checking. */
enum record_verdict record_grammar_check(struct record_grammar *g, int type, const struct str *data,
					 const char **error_r);
/* record_grammar_at_end - true after E */
bool record_grammar_at_end(const struct record_grammar *g);
/* record_grammar_get - qf_get one record with the allowed types and the
 * limit, then check it: 1 with *type, data and *offset (may be NULL); 0
 * at the end of the file after E; -1 with *error_r (qf_get's text, or
 * the grammar's) for anything else, including an end of file before E
 * and any byte after it. */
int record_grammar_get(struct record_grammar *g, struct qf_reader *r, int *type, struct str *data,
		       off_t *offset, const char **error_r);

/* record_grammar_notify_valid - DSN NOTIFY: "never", or a duplicate-free
 * comma list of success, failure, delay */
bool record_grammar_notify_valid(const char *text, size_t len);
/* record_grammar_time_parse - a 'T' record: SECONDS (1..12 digits),
 * optionally ".FRACTION"; with exact_usec the fraction has exactly six
 * digits (what cleanup writes), else 1..6 (what a client may send) */
bool record_grammar_time_parse(const char *text, size_t len, bool exact_usec, int64_t *sec,
			       long *usec);

#endif
