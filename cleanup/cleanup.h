/* cleanup.h - the modules of the cleanup daemon.
 *
 *   cleanup_addr.c     RFC 5322 address lists (To:, Cc:, Bcc:, alias
 *                      values), canonical internal form, address sets
 *   cleanup_header.c   header names and types, unfolding
 *   cleanup_alias.c    virtual_alias_maps expansion (recursion and
 *                      expansion limits, self-reference, loop cutting)
 *   cleanup_out.c      the queue file: create, write, commit, abandon
 *   cleanup_message.c  one message: read the client's records, check
 *                      them, rewrite, write the queue file, reply
 *   main.c             the server skeleton glue and the connection loop
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

#define CLEANUP_ADDR_MAX	1024	/* bytes in one internal address */
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

/* cleanup_out_open - create incoming/<temp> (O_EXCL, 0600) below dirfd;
 * the queue ID it will most likely get is in id (queue_id_new of its
 * inode). NULL with *error_r on failure. */
struct cleanup_out *cleanup_out_open(int dirfd, char *id, size_t id_size, const char **error_r);
struct stream *cleanup_out_stream(struct cleanup_out *o);
/* cleanup_out_commit - flush, fsync the file, rename it without
 * replacing to its queue ID (a new ID on EEXIST; id is updated), fsync
 * the directory. 0, or -1 with *error_r (the file is then removed). */
int cleanup_out_commit(struct cleanup_out **op, char *id, size_t id_size, const char **error_r);
/* cleanup_out_group_sync - the directory fsyncs of later commits go
 * through gs (group commit with the other cleanup processes; NULL: each
 * commit fsyncs incoming/ itself) */
struct group_sync;
void cleanup_out_group_sync(struct group_sync *gs);
/* cleanup_out_abandon - close and unlink the temp file */
void cleanup_out_abandon(struct cleanup_out **op);

/* ---- cleanup_message.c */

enum cleanup_conn {
    CLEANUP_CONN_NEXT = 1,		/* replied; the client may send more */
    CLEANUP_CONN_CLOSE,			/* client gone or protocol broken */
};

/* cleanup_message - serve one message whose {flags, origin} was read */
enum cleanup_conn cleanup_message(struct stream *client, int incoming_fd, long flags,
				  const char *origin);

#endif
