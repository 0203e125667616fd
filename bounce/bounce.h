/* bounce.h - the bounce daemon's shared structures and module interfaces.
 *
 * bounce(8) is the server of the bounce protocol (mail_proto.h,
 * conversation 3) on private/bounce. For each request from qmgr it
 * reads the original message from the queue, writes one RFC 3464
 * delivery status notification (multipart/report) through cleanup with
 * the null sender, and answers {status, queue_id, reason} only after
 * cleanup said the notice is queued.
 *
 * Modules (each with its prefix):
 *   main.c              main(): the server_spec, parameters
 *   bounce_service.c    bounce_service_*: the conversation, the policy
 *                       (who gets which notice, double bounces), the
 *                       submission to cleanup, the log lines
 *   bounce_original.c   bounce_orig_*: reading the original queue file
 *                       (envelope attributes, headers, bounded body)
 *   bounce_notice.c     bounce_notice_compose: the whole notice (pure)
 *   dsn_text.c          dsn_*: field formatting (dates, folding, address
 *                       types, status codes, diagnostic codes) (pure)
 *
 * The pure modules (bounce_notice.c, dsn_text.c) take every input as an
 * argument (time, host name, boundary), so the unit tests check the
 * exact output.
 *
 * DIAGNOSTICS: the pure modules log nothing; the service logs one line
 * per notice (see bounce(8)). */
#ifndef POSTHORN_BOUNCE_H
#define POSTHORN_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* base */
#include "ipc.h"
#include "str.h"

/* mail */
#include "bounce_proto.h"	/* the request: struct bounce_request, its
				 * decoder and enum bounce_type */

/* The queue-file attribute ('A' record) that marks a notice written by
 * bounce: "bounce_notice=sender" for a notice to the original sender,
 * "bounce_notice=postmaster" for every notice to postmaster (double
 * bounces and copies). A failed postmaster notice is never reported
 * again: it is discarded (logged). */
#define BOUNCE_ATTR_NOTICE		"bounce_notice"
#define BOUNCE_NOTICE_SENDER		"sender"
#define BOUNCE_NOTICE_POSTMASTER	"postmaster"
/* The same mark for postmaster notices as a header field of the notice
 * itself: the envelope attribute is lost when the notice is forwarded
 * (postmaster is an alias of root, root's mail goes elsewhere), the
 * content is not. A stranger's null-sender message that forges it only
 * saves postmaster one double bounce. */
#define BOUNCE_HEADER_NOTICE		"X-Posthorn-Notice"

/* ---- bounce_original.c ------------------------------------------------- */

/* A line of the original content (may contain NUL bytes). */
struct bounce_line {
    char *data;
    size_t len;
};

struct bounce_orig {
    struct bounce_line *headers;	/* the primary header block */
    size_t header_count;
    struct bounce_line *body;		/* the empty line and what follows,
					 * while the whole fits the limit */
    size_t body_count;
    size_t size;			/* content bytes, one per line end */
    bool body_complete;			/* body holds the whole rest */
    bool headers_complete;		/* no header line was left out */
    bool smtputf8;			/* the message came with SMTPUTF8 */
    char notice[16];			/* BOUNCE_ATTR_NOTICE value, or "" */
    bool notice_header;			/* BOUNCE_HEADER_NOTICE: postmaster */
    /* reading state */
    bool in_body;			/* the empty line was seen */
    size_t header_bytes;
    size_t headers_cap, body_cap;
};

/* bounce_orig_read - read path (relative to the working directory:
 * queue_directory). Keeps at most header_max bytes of headers and the
 * body while the whole content stays within body_max (bounce_size_limit).
 * 0, or -1 with *error_r (static text: open error or corrupt file). */
int bounce_orig_read(const char *path, size_t header_max, size_t body_max,
		     struct bounce_orig *orig, const char **error_r);
void bounce_orig_fini(struct bounce_orig *orig);
/* bounce_orig_add_line - append a content line (also for tests) */
void bounce_orig_add_line(struct bounce_orig *orig, const char *data, size_t len,
			  size_t header_max, size_t body_max);
void bounce_orig_init(struct bounce_orig *orig);

/* ---- bounce_notice.c --------------------------------------------------- */

/* What to quote of the original. */
enum bounce_quote { BOUNCE_QUOTE_NONE, BOUNCE_QUOTE_HEADERS, BOUNCE_QUOTE_FULL };

struct bounce_notice {
    enum bounce_type type;
    bool to_postmaster;		/* a double bounce or a postmaster copy */
    bool double_bounce;		/* the original was itself a notice */
    const char *to;		/* the notice's recipient */
    const char *myhostname;
    const char *postmaster;	/* address named in the text */
    time_t now;
    long gmtoff;		/* seconds east of UTC, for dates */
    time_t retry_until;		/* delay notices: Will-Retry-Until */
    const char *boundary;	/* unique; checked against the content */
    const char *message_id;	/* "<...>" */
    enum bounce_quote quote;	/* wanted; FULL falls back to HEADERS */
};

/* Facts about the composed notice that cleanup must be told. */
struct bounce_notice_info {
    bool eight_bit;		/* body needs BODY=8BITMIME */
    bool smtputf8;		/* UTF-8 in addresses: SMTPUTF8, RFC 6533 */
    enum bounce_quote quoted;	/* what was actually included */
};

/* bounce_notice_quote - the part of the original a notice of this type
 * includes, from the request's RET and the limits (pure): failures as RET
 * says (FULL, the default, falls back to HEADERS when the message is over
 * bounce_size_limit); delay and success notices and postmaster copies
 * (copy) the headers only */
enum bounce_quote bounce_notice_quote(enum bounce_type type, bool copy,
				      const char *dsn_ret, const struct bounce_orig *orig);
/* bounce_notice_boundary_ok - true if no content line starts with
 * "--" boundary */
bool bounce_notice_boundary_ok(const struct bounce_orig *orig, const char *boundary);
/* bounce_notice_compose - the whole notice, header and body, lines
 * joined with "\n", into out (reset first). false if out's maximum was
 * reached (the caller fails the request). */
bool bounce_notice_compose(struct str *out, const struct bounce_request *req,
			   const struct bounce_orig *orig, const struct bounce_notice *n,
			   struct bounce_notice_info *info);

/* ---- bounce_service.c -------------------------------------------------- */

/* Parameter values the service uses (set by main.c after config). */
struct bounce_config {
    const char *myhostname;
    const char *myorigin;
    long size_limit;		/* bounce_size_limit */
    long header_limit;		/* header_size_limit */
    long queue_lifetime;	/* maximal_queue_lifetime */
    const char *notice_recipient;	/* bounce_notice_recipient */
    const char *double_recipient;	/* double_bounce_notice_recipient */
    const char *delay_recipient;	/* delay_notice_recipient */
    bool notify_bounce;		/* notify_classes has bounce */
    bool notify_2bounce;	/* ... 2bounce */
    bool notify_delay;		/* ... delay */
};
extern struct bounce_config bounce_cfg;

/* bounce_notify_classes - parse notify_classes into bounce_cfg */
void bounce_notify_classes(const char *value);
/* bounce_service - serve one qmgr connection (SERVER_SINGLE) */
struct stream;
void bounce_service(struct stream *client);
/* bounce_handle - one decoded request: returns 0 with notice_id ("" if
 * no notice was needed) or -1 with reason (exposed for tests) */
int bounce_handle(const struct bounce_request *req, struct str *notice_id, struct str *reason);

/* ---- dsn_text.c -------------------------------------------------------- */

#define DSN_LINE_WIDTH	78	/* fold header fields before this column */
#define DSN_LINE_HARD	998	/* RFC 5322 line limit */

/* dsn_fold - append "name: value" folded at white space before
 * DSN_LINE_WIDTH where possible (continuation lines start with white
 * space), every line ending in "\n"; a word too long for a line stays
 * whole up to DSN_LINE_HARD and is then broken */
bool dsn_fold(struct str *out, const char *name, const char *value);
/* dsn_wrap - append text word-wrapped at width (a word longer than the
 * width gets a line of its own), continuation lines indented by indent
 * spaces, a final "\n" */
bool dsn_wrap(struct str *out, const char *text, size_t width, size_t indent);
/* dsn_clean - append text with every control character (CR, LF, TAB,
 * NUL, DEL, ...) as a space; with allow_utf8 valid UTF-8 is kept,
 * otherwise each non-ASCII byte becomes "?" */
bool dsn_clean(struct str *out, const char *text, size_t len, bool allow_utf8);
/* dsn_is_ascii - no byte >= 0x80 */
bool dsn_is_ascii(const char *text, size_t len);
/* dsn_status_for - the status to report: status if valid (lib/mail
 * deliver_dsn_valid) and of the action's class, else the action's
 * default (5.0.0, 4.0.0, 2.0.0) */
const char *dsn_status_for(const char *status, const char *action);
/* dsn_diagnostic - the Diagnostic-Code value for a reason: "smtp; 550
 * 5.1.1 ..." when the reason quotes a remote SMTP reply, else
 * "x-posthorn; reason" (cleaned) */
bool dsn_diagnostic(struct str *out, const char *reason, bool allow_utf8);
/* dsn_remote_mta - the Remote-MTA value ("dns; mx.example.com") for a
 * relay "host[addr]:port" or "host"; false (nothing appended) for a
 * local transport name such as "local" or an empty relay */
bool dsn_remote_mta(struct str *out, const char *relay);
/* dsn_address - "rfc822; addr" for ASCII, "utf-8; addr" for UTF-8 */
bool dsn_address(struct str *out, const char *addr, bool allow_utf8);
/* dsn_orcpt - Original-Recipient value from an ORCPT "type;address"
 * (the address decoded); false if orcpt is empty or malformed */
bool dsn_orcpt(struct str *out, const char *orcpt, bool allow_utf8);

#endif
