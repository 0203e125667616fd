/* cleanup.h - the modules of the cleanup daemon, from the top down.
 *
 *   main.c             the server skeleton glue and the connection loop
 *   cleanup_message.c  one request: read the client's records, let the
 *                      record grammar check each, hand it on by where
 *                      it stands; at E commit, reply, trigger qmgr
 *   cleanup_content.c  the content state machine: header block lines,
 *                      then the body copied record by record
 *   cleanup_header_block.c  the header block, one logical header at a
 *                      time: hop count, Bcc:, sendmail -t recipients,
 *                      missing Message-Id:/Date:/From:
 *   cleanup_envelope.c time, sender, attributes, recipients
 *                      (canonical, alias-expanded, de-duplicated)
 *   cleanup_state.c    one message's state, its first failure, the
 *                      records it writes
 *   cleanup_out.c      the queue file: create, commit, abandon
 *   cleanup_alias.c    virtual_alias_maps expansion (recursion and
 *                      expansion limits, self-reference, loop cutting)
 *   cleanup_header.c   header names and types, unfolding
 *   cleanup_addr.c     RFC 5322 address lists (To:, Cc:, Bcc:, alias
 *                      values), canonical internal form, address sets
 *
 * DIAGNOSTICS: see man/cleanup.8 for every log line. */
#ifndef POSTHORN_CLEANUP_H
#define POSTHORN_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* base */
#include "str.h"
#include "stream.h"

/* mail */
#include "queue_id.h"
#include "record_grammar.h"

#define CLEANUP_ADDR_MAX	RECORD_CLEANUP_ADDR_MAX	/* bytes in one address */
#define CLEANUP_LINE_REC_MAX	8192	/* bytes per content record written */

/* ---- cleanup_addr.c */

/* A list of addresses with optional duplicate detection. */
struct cleanup_addrs {
    char **v;
    size_t n;
    size_t cap;
};

void cleanup_addrs_init(struct cleanup_addrs *a);
void cleanup_addrs_reset(struct cleanup_addrs *a);
void cleanup_addrs_fini(struct cleanup_addrs *a);
void cleanup_addrs_add(struct cleanup_addrs *a, const char *addr);
/* cleanup_addrs_find - index of addr (exact, or ASCII case-insensitive
 * with nocase), or -1 */
long cleanup_addrs_find(const struct cleanup_addrs *a, const char *addr, bool nocase);

/* cleanup_addr_list - parse an RFC 5322 address-list (header value, or a
 * virtual alias value): mailboxes, name-addrs with display names,
 * quoted strings, comments, groups ("x: a, b;"), obsolete routes
 * ("<@a,@b:u@d>"), domain literals. fn gets each address in internal
 * form (local part unquoted, "@", domain). Returns the number of
 * addresses, or -1 if more than token_limit tokens (nothing after the
 * limit is passed to fn). Junk is skipped, never fatal. */
long cleanup_addr_list(const char *text, size_t len, size_t token_limit,
		       void (*fn)(const char *addr, void *ctx), void *ctx);

/* cleanup_addr_canon - canonical form: surrounding "<>" and white space
 * removed, an unqualified address (no "@", or nothing after it) gets
 * "@origin" (if origin is not empty), the domain in lower case without
 * a trailing dot. "" stays "" (the null sender). False if too long. */
bool cleanup_addr_canon(const char *in, const char *origin, struct str *out);

/* cleanup_addr_bad - true if an envelope address holds a control byte */
bool cleanup_addr_bad(const char *addr, size_t len);

/* ---- cleanup_header.c */

enum cleanup_hdr {
    CLEANUP_HDR_OTHER = 0,
    CLEANUP_HDR_RECEIVED,
    CLEANUP_HDR_MESSAGE_ID,
    CLEANUP_HDR_DATE,
    CLEANUP_HDR_FROM,
    CLEANUP_HDR_SENDER,
    CLEANUP_HDR_TO,
    CLEANUP_HDR_CC,
    CLEANUP_HDR_BCC,
    CLEANUP_HDR_RESENT_FROM,
    CLEANUP_HDR_RESENT_TO,
    CLEANUP_HDR_RESENT_CC,
    CLEANUP_HDR_RESENT_BCC,
    CLEANUP_HDR_RESENT_MESSAGE_ID,
    CLEANUP_HDR_RESENT_DATE,
};

/* cleanup_header_name_len - if line starts a header field ("Name:",
 * name of printable ASCII except ":", obsolete white space before the
 * colon allowed), the length of the name; else 0 */
size_t cleanup_header_name_len(const char *line, size_t len);
/* cleanup_header_type - the type of a header name (any case) */
enum cleanup_hdr cleanup_header_type(const char *name, size_t len);
/* cleanup_header_value - the unfolded value of a logical header (its
 * physical lines joined with "\n"): the text after the colon, line
 * breaks removed, leading and trailing white space trimmed. False if
 * out is too small. */
bool cleanup_header_value(const char *header, size_t len, struct str *out);

/* ---- cleanup_alias.c */

/* cleanup_alias_expand - expand addr (canonical) through
 * virtual_alias_maps; the resulting addresses (canonical, duplicates
 * removed) are appended to out. An address that lists itself is kept;
 * an address met again on the way down (a loop) is dropped there, with
 * a warning. Returns 0, or a CLEANUP_STAT_* (DEFER: lookup failure,
 * recursion or expansion limit) with *why_r. id is for log lines. */
unsigned cleanup_alias_expand(const char *id, const char *addr, struct cleanup_addrs *out,
			      const char **why_r);

/* ---- cleanup_out.c */

struct cleanup_out;

/* cleanup_out_open - create incoming/<temp> (O_EXCL, mode 0200: in
 * progress, qmgr leaves it alone) below dirfd and rename it at once,
 * without replacing, to incoming/ID; the ID (queue_id_new of its inode,
 * final from now on) is in id. NULL with *error_r on failure. */
struct cleanup_out *cleanup_out_open(int dirfd, char *id, size_t id_size, const char **error_r);
struct stream *cleanup_out_stream(struct cleanup_out *o);
/* cleanup_out_commit - flush, fchmod 0600 (ready), fsync the file,
 * fsync the directory. 0, or -1 with *error_r (the file is then
 * removed). */
int cleanup_out_commit(struct cleanup_out **op, const char **error_r);
/* cleanup_out_group_sync - the directory fsyncs of later commits go
 * through gs (group commit with the other cleanup processes; NULL: each
 * commit fsyncs incoming/ itself) */
struct group_sync;
void cleanup_out_group_sync(struct group_sync *gs);
/* cleanup_out_abandon - close and unlink incoming/ID */
void cleanup_out_abandon(struct cleanup_out **op);

/* ---- the state of one message (cleanup_state.c) */

enum cleanup_phase { CLEANUP_PH_ENVELOPE, CLEANUP_PH_HEADERS, CLEANUP_PH_BODY, CLEANUP_PH_TRAILER };

struct cleanup_state {
    const char *origin;
    unsigned flags;
    unsigned status;			/* CLEANUP_STAT_* */
    char reason[512];
    char id[QUEUE_ID_SIZE];
    struct cleanup_out *out;
    struct stream *qf;			/* the queue file stream */
    enum cleanup_phase phase;
    struct record_grammar grammar;	/* checks every record first */
    bool started;			/* V, T, A origin written */
    int64_t tsec;
    long tusec;
    struct str sender;
    bool have_orcpt, have_notify, have_orig;
    struct str orcpt, notify, orig;
    struct cleanup_addrs dups;		/* recipients written */
    struct cleanup_addrs expansion;	/* scratch for alias results */
    size_t rcpt_count;
    /* header block */
    struct str line;			/* physical line being assembled */
    bool line_raw;			/* ... passed on as it comes */
    struct str hdr;			/* logical header, lines joined by \n */
    size_t *hdr_lens;			/* length of each physical line */
    size_t hdr_nlines, hdr_cap;
    bool hdr_raw;			/* oversized: passed on unparsed */
    bool hdr_drop;			/* ... and dropped (Bcc:) */
    int received;
    bool seen_msgid, seen_date, seen_from, resent;
    struct str msgid;
    struct cleanup_addrs extracted, resent_extracted;
    bool extract_full;
    struct str canon, work;		/* scratch */
};

/* cleanup_state_init - a fresh state for one request: flags, origin,
 * the arrival time now, the grammar profile the flags call for */
void cleanup_state_init(struct cleanup_state *st, long flags, const char *origin);
/* cleanup_state_fini - abandon an uncommitted file, keep the buffers */
void cleanup_state_fini(struct cleanup_state *st);
/* cleanup_write_failed - a queue file write failed just now: note its
 * real cause (the errno the stream left, e.g. "No space left on device") */
void cleanup_write_failed(struct cleanup_state *st);
/* cleanup_fail - note a failure (CLEANUP_STAT_* bits); the first reason
 * is kept */
void cleanup_fail(struct cleanup_state *st, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* cleanup_put* - write records to the queue file; nothing after a
 * failure, and a write error is one (CLEANUP_STAT_WRITE) */
void cleanup_put(struct cleanup_state *st, int type, const void *data, size_t len);
void cleanup_put_text(struct cleanup_state *st, int type, const char *text);
/* cleanup_put_line - one content line, in C records as needed */
void cleanup_put_line(struct cleanup_state *st, const char *data, size_t len);
/* cleanup_put_cont - a piece of a line that goes on (C records) */
void cleanup_put_cont(struct cleanup_state *st, const char *data, size_t len);
/* cleanup_put_start - once: the V, T and A origin records */
void cleanup_put_start(struct cleanup_state *st);

/* ---- cleanup_envelope.c */

/* cleanup_envelope_record - T, S, A, O, N, R or M in the envelope */
void cleanup_envelope_record(struct cleanup_state *st, int type, const struct str *data);
/* cleanup_envelope_rcpt_record - A, O, N or R (envelope or trailer) */
void cleanup_envelope_rcpt_record(struct cleanup_state *st, int type, const struct str *data);
/* cleanup_envelope_recipient - canonicalise, expand, write one */
void cleanup_envelope_recipient(struct cleanup_state *st, const char *addr);
/* cleanup_envelope_extracted - write the sendmail -t recipients */
void cleanup_envelope_extracted(struct cleanup_state *st);

/* ---- cleanup_header_block.c */

/* cleanup_header_block_line - one complete physical line of the header
 * block (the empty line, or a line that is no header, ends it) */
void cleanup_header_block_line(struct cleanup_state *st, const char *data, size_t len);
/* cleanup_header_block_overflow - st->line would make the pending
 * header longer than header_size_limit: pass it on unparsed */
void cleanup_header_block_overflow(struct cleanup_state *st);
/* cleanup_header_block_end - the block is over: add what is missing */
void cleanup_header_block_end(struct cleanup_state *st);

/* ---- cleanup_content.c */

/* cleanup_content_record - an L or C record after M */
void cleanup_content_record(struct cleanup_state *st, int type, const struct str *data);
/* cleanup_content_end - the X record */
void cleanup_content_end(struct cleanup_state *st);

/* ---- cleanup_message.c */

enum cleanup_conn {
    CLEANUP_CONN_NEXT = 1,		/* replied; the client may send more */
    CLEANUP_CONN_CLOSE,			/* client gone or protocol broken */
};

/* cleanup_message - serve one message whose {flags, origin} was read */
enum cleanup_conn cleanup_message(struct stream *client, int incoming_fd, long flags,
				  const char *origin);

#endif
