/* smtpd.h - the SMTP server's shared state and the interfaces between
 * its modules.
 *
 *   main.c          server skeleton glue (SERVER_SINGLE), start-up checks
 *   smtpd_proto.c   the session: greeting, command loop, pipelining
 *                   flushes, error limits, timeouts, session logging
 *   smtpd_cmd.c     the command table (flags) and the command handlers
 *                   EHLO HELO MAIL RCPT RSET NOOP QUIT VRFY HELP ...
 *   smtpd_data.c    DATA and BDAT: reading the message's bytes from the
 *                   client into the content parser (lib/mail/smtp_data.c)
 *   smtpd_message.c the message once parsed: the cleanup conversation,
 *                   the Received: header, queued-or-refused at the end,
 *                   and forgetting the transaction (smtpd_reset)
 *   smtpd_check.c   policy: client trust (mynetworks), relay control,
 *                   recipient existence and quota
 *   smtpd_reply.c   replies: the table of fixed replies, formatting and
 *                   writing them, error counting, reject log lines
 *   smtpd_text.c    printable client text, printf-free joins,
 *                   the protocol name
 *   smtpd_peer.c    who the client is (address, optional name lookup)
 *   smtpd_auth.c    AUTH (RFC 4954) through the auth service
 *   smtpd_tls.c     STARTTLS (RFC 3207) and wrapper mode (RFC 8314)
 *   smtpd_limits.c  the client limits (client-limits service): counts
 *                   reported, figures compared with the limits, refusals
 *
 * The modules stand in layers (no two include each other's functions
 * both ways): proto over cmd over data over message over reply over
 * text; check and peer beside them.
 *
 * One process serves one session at a time; the state lives in one
 * struct smtpd_state that the handlers get. */
#ifndef POSTHORN_SMTPD_H
#define POSTHORN_SMTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base */
#include "str.h"
#include "stream.h"

/* mail */
#include "address.h"
#include "cleanup_client.h"
#include "smtp_data.h"
#include "smtp_params.h"

/* Limits that are RFC facts, not configuration. */
#define SMTPD_CMD_LINE_RFC	512	/* RFC 5321 4.5.3.1.4, CRLF included */
#define SMTPD_CMD_LINE_EXT	2048	/* MAIL/RCPT with ESMTP parameters
					 * (SIZE, BODY, SMTPUTF8, RET, ENVID,
					 * NOTIFY, ORCPT may lengthen them) */
#define SMTPD_NAME_MAX		256	/* client host name */
#define SMTPD_ADDR_MAX		64	/* numeric address text */
#define SMTPD_ARG_SHOW		100	/* client text quoted in replies/logs */

/* A reply that is not sent yet (policy results). */
struct smtpd_reply_buf {
    int code;
    char enhanced[16];
    char text[512];
};

struct smtpd_rcpt {
    char *address;			/* internal form: unquoted local@domain */
    char *orcpt;			/* "type;address" or NULL */
    unsigned notify;			/* SMTP_NOTIFY_* or 0 */
};

/* The session. */
struct auth_client;

struct smtpd_state {
    struct stream *client;

    /* who (smtpd_peer.c) */
    char name[SMTPD_NAME_MAX];		/* "unknown" unless looked up */
    char addr[SMTPD_ADDR_MAX];		/* numeric */
    char port[16];
    char namaddr[SMTPD_NAME_MAX + SMTPD_ADDR_MAX + 4];	/* name[addr] */
    bool addr_is_v6;
    bool peer_inet;			/* an inet client (not -S, not unix) */
    bool trusted;			/* in mynetworks */
    bool reject_bare;			/* smtpd_forbid_bare_newline = reject applies */
    bool authenticated;			/* AUTH succeeded */
    char *sasl_username;		/* the login auth confirmed */
    char *sasl_method;			/* its mechanism */
    struct auth_client *auth;		/* connection to auth (kept for retries) */
    bool tls;				/* TLS runs (STARTTLS or wrapper mode) */
    char tls_summary[192];		/* "TLSv1.3 with cipher ... (256/256 bits)" */
    bool limits_connected;		/* client-limits counted our connect */
    bool limits_exempt;			/* in smtpd_client_event_limit_exceptions */

    /* session */
    char *helo;				/* HELO/EHLO argument, NULL before */
    bool esmtp;				/* EHLO (not HELO) */
    unsigned ext;			/* SMTP_EXT_* advertised */
    int error_count;
    bool hangup;			/* end the session after this command */
    const char *where;			/* last command, for log lines */
    long commands_total, commands_ok;
    long *cmd_total, *cmd_ok;		/* per row of the command table */
    long unknown_total;

    /* transaction */
    bool in_mail;
    char *sender;			/* internal form; "" for <> */
    struct smtp_mail_params mail;	/* MAIL parameters */
    struct smtpd_rcpt *rcpts;
    size_t rcpt_count, rcpt_cap;
    long rcpt_attempts;			/* RCPT commands in this transaction */
    long rcpt_overshoot;		/* of them past smtpd_recipient_limit */

    /* DATA/BDAT in progress */
    struct cleanup_client *cleanup;	/* connection to cleanup */
    struct cleanup_client *cleanup_idle;	/* kept for the next message */
    long cleanup_idle_at;		/* time it was last used */
    struct smtp_data content;
    bool content_open;			/* st->content is initialised */
    long arrival;			/* time of DATA / first BDAT */
    bool bdat;				/* this transaction uses BDAT */
    bool bdat_failed;			/* discard chunks until LAST/RSET */
    struct smtpd_reply_buf bdat_error;	/* the reply for them */
    uint64_t bdat_bytes;		/* chunk bytes read in this transaction */
};

/* smtpd_proto.c */
void smtpd_session(struct stream *client);

/* smtpd_text.c */
/* smtpd_join - the strings of the NULL-ended list concatenated into buf
 * (size > 0); truncated as fmt_try_buf would, then false */
bool smtpd_join(char *buf, size_t size, ...) __attribute__((sentinel));
/* smtpd_printable - append text[0..len) with non-printable bytes as '?',
 * at most max bytes; bytes >= 0x80 are '?' too unless utf8 (log lines)
 * and they form valid UTF-8 */
void smtpd_printable(struct str *out, const char *text, size_t len, size_t max, bool utf8);
/* smtpd_protocol_name - "SMTP", "ESMTP", "ESMTPS", "ESMTPA", "UTF8SMTP", ... */
const char *smtpd_protocol_name(const struct smtpd_state *st);

/* smtpd_reply.c: sending replies */
/* smtpd_reply - send "code enhanced text" (enhanced may be NULL); counts
 * errors (4xx/5xx) and applies the error delay. Client text in the
 * arguments is made printable. */
void smtpd_reply(struct smtpd_state *st, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* smtpd_reply_buf_send_uncounted - a 4xx/5xx reply that is not a client
 * error (a recipient within the overshoot allowance) */
void smtpd_reply_buf_send_uncounted(struct smtpd_state *st, const struct smtpd_reply_buf *r);
void smtpd_reply_buf_send(struct smtpd_state *st, const struct smtpd_reply_buf *r);
/* smtpd_reply_text - smtpd_reply with a ready text (no formatting) */
void smtpd_reply_text(struct smtpd_state *st, int code, const char *enhanced, const char *text);
/* smtpd_reply_multi - a multi-line reply: lines[0..n) with one code */
void smtpd_reply_multi(struct smtpd_state *st, int code, const char *const *lines, size_t n);
/* smtpd_log_reject - "NOQUEUE: reject: CMD from name[addr]: reply; from=<> to=<> proto= helo=<>" */
void smtpd_log_reject(struct smtpd_state *st, const char *cmd, const struct smtpd_reply_buf *r,
		      const char *rcpt);
/* smtpd_flush - write out pending replies; false (and hangup) on error */
bool smtpd_flush(struct smtpd_state *st);

/* smtpd_cmd.c */
#define SMTPD_CMD_PRE_TLS	(1u << 0)	/* allowed before STARTTLS when TLS is required */
#define SMTPD_CMD_PRE_AUTH	(1u << 1)	/* allowed before AUTH when AUTH is required */
#define SMTPD_CMD_GROUP_END	(1u << 2)	/* last command of a pipelining group (RFC 2920) */
#define SMTPD_CMD_NEED_HELO	(1u << 3)	/* needs HELO/EHLO if smtpd_helo_required */
#define SMTPD_CMD_UNIMPL	(1u << 4)	/* recognised, answered 502 5.5.1 */
#define SMTPD_CMD_FORBIDDEN	(1u << 5)	/* not SMTP (HTTP, ...): disconnect */
#define SMTPD_CMD_LONG		(1u << 6)	/* may be longer than 512 (parameters) */

struct smtpd_cmd {
    const char *name;
    void (*action)(struct smtpd_state *st, const char *args, size_t len);
    unsigned flags;
};

/* smtpd_cmd_split - the verb of line[0..len): its length, and where the
 * arguments start (after one space; *args_len 0 if none). False if the
 * line is empty or starts with a space. */
bool smtpd_cmd_split(const char *line, size_t len, size_t *verb_len,
		     const char **args, size_t *args_len);
/* smtpd_cmd_find - the row for a verb (case-insensitive), or NULL */
const struct smtpd_cmd *smtpd_cmd_find(const char *verb, size_t len);
/* smtpd_cmd_table - the rows and their number (for counters and tests) */
const struct smtpd_cmd *smtpd_cmd_table(size_t *count);
/* smtpd_cmd_prefix - if args start with word (e.g. "FROM:", any case),
 * the rest; else NULL */
const char *smtpd_cmd_prefix(const char *args, size_t len, const char *word, size_t *rest_len);
/* smtpd_ehlo_lines - the EHLO reply lines for the current state into
 * lines (at most max); returns their number; *ext_r the SMTP_EXT_* mask */
size_t smtpd_ehlo_lines(const struct smtpd_state *st, char lines[][64], size_t max, unsigned *ext_r);
/* smtpd_parse_vrfy_reply - check smtpd_vrfy_reply: false with a text */
bool smtpd_parse_vrfy_reply(const char *text, struct smtpd_reply_buf *r, const char **error_r);

/* smtpd_data.c */
void smtpd_cmd_data(struct smtpd_state *st, const char *args, size_t len);
void smtpd_cmd_bdat(struct smtpd_state *st, const char *args, size_t len);
/* smtpd_bdat_parse - "count [LAST]": false if malformed */
bool smtpd_bdat_parse(const char *args, size_t len, uint64_t *count, bool *last);

/* smtpd_message.c */
/* smtpd_message_open - connect to cleanup (or reuse the kept connection),
 * send the envelope and the Received: header, set up the content parser
 * (dot: DATA; binary: BDAT BODY=BINARYMIME); false on error (the caller
 * replies 451) */
bool smtpd_message_open(struct smtpd_state *st, bool dot, bool binary);
/* smtpd_message_end - the content is complete: have it queued (or
 * refused) and reply; the transaction is over */
void smtpd_message_end(struct smtpd_state *st);
/* smtpd_message_refusal - the reply for content that cannot be queued
 * (bare CR/LF under reject, too big, a write error), SR_COUNT if none */
enum smtpd_reply_id smtpd_message_refusal(const struct smtp_data *c);
/* smtpd_message_abort - drop a DATA/BDAT in progress (nothing queued) */
void smtpd_message_abort(struct smtpd_state *st);
/* smtpd_message_idle - the process waited a second for a session: close
 * the cleanup connection kept for it */
void smtpd_message_idle(void);
/* smtpd_message_fini - end of session: the idle cleanup connection is
 * kept for the next session of this process (until smtpd_message_idle) */
void smtpd_message_fini(struct smtpd_state *st);
/* smtpd_received_header - the Received: header lines for the current
 * transaction at time now (each line without terminator): "from", then
 * "(using TLS...)" under TLS with smtpd_tls_received_header, then
 * "(Authenticated sender: login)" with smtpd_sasl_authenticated_header,
 * then "by ... with", then "for <recipient>; date" (one recipient, and
 * it fits; else the date ends the "by" line). Returns the number of
 * lines, 0 if they do not fit in lines[] (a huge myhostname or HELO) */
#define SMTPD_RECEIVED_LINES	5
size_t smtpd_received_header(const struct smtpd_state *st, long now, struct str *lines[SMTPD_RECEIVED_LINES]);
/* smtpd_message_notify - the text of a NOTIFY mask for cleanup's N
 * record ("success,delay", "never"), NULL for none; buf holds it */
const char *smtpd_message_notify(unsigned notify, char *buf, size_t size);
/* smtpd_reset - forget the transaction (RSET, EHLO, after a message) */
void smtpd_reset(struct smtpd_state *st);

/* smtpd_check.c */
void smtpd_check_init(void);
/* smtpd_check_client - set st->trusted and st->reject_bare */
void smtpd_check_client(struct smtpd_state *st);
/* smtpd_check_rcpt - policy for one recipient; true = accept, else *r */
bool smtpd_check_rcpt(struct smtpd_state *st, const struct address *addr, const char *internal,
		      struct smtpd_reply_buf *r);

/* smtpd_quota_value - a virtual_mailbox_maps value has a quota= word */
bool smtpd_quota_value(const char *value);

/* smtpd_check_init_restrictions - parse smtpd_client_restrictions,
 * smtpd_sender_restrictions, open smtpd_sender_login_maps (fatal on a
 * bad value) */
void smtpd_check_init_restrictions(void);
/* smtpd_check_mail - client and sender restrictions at MAIL FROM, with
 * st->sender set; true = go on, else *r */
bool smtpd_check_mail(struct smtpd_state *st, struct smtpd_reply_buf *r);
/* smtpd_sender_login_ok - may login use sender (smtpd_sender_login_maps);
 * 1 yes, 0 no, -1 lookup error */
int smtpd_sender_login_ok(const char *sender, const char *login, const char **error_r);

/* smtpd_peer.c */
/* smtpd_peer_addr - the client's numeric address and port (no lookup);
 * namaddr is "unknown[addr]" until smtpd_peer_name */
void smtpd_peer_addr(struct smtpd_state *st);
/* smtpd_peer_name - the name (smtpd_peername_lookup) and namaddr */
void smtpd_peer_name(struct smtpd_state *st);

/* smtpd_auth.c */
/* smtpd_auth_offered - AUTH may be used now (EHLO advertises it) */
bool smtpd_auth_offered(const struct smtpd_state *st);
/* smtpd_auth_mechanisms - "PLAIN LOGIN SCRAM-SHA-256" */
const char *smtpd_auth_mechanisms(void);
void smtpd_cmd_auth(struct smtpd_state *st, const char *args, size_t len);
/* smtpd_auth_reset - forget the identity, close the auth connection */
void smtpd_auth_reset(struct smtpd_state *st);

/* smtpd_limits.c (see there for what is counted when) */
void smtpd_limits_init(void);
/* smtpd_limits_connect - count the connection: false = refused (421
 * sent, hangup) */
bool smtpd_limits_connect(struct smtpd_state *st);
/* smtpd_limits_disconnect - release the connect (end of every session) */
void smtpd_limits_disconnect(struct smtpd_state *st);
/* smtpd_limits_message - at MAIL FROM: false = 450 4.7.1 sent */
bool smtpd_limits_message(struct smtpd_state *st);
/* smtpd_limits_recipient - at RCPT TO: false = 450 4.7.1 sent */
bool smtpd_limits_recipient(struct smtpd_state *st);
/* smtpd_limits_starttls - before STARTTLS: false = 454 4.7.0 sent */
bool smtpd_limits_starttls(struct smtpd_state *st);
/* smtpd_limits_newtls - after a full handshake: false = 421 sent, hangup */
bool smtpd_limits_newtls(struct smtpd_state *st);
/* smtpd_limits_auth - before AUTH: false = 450 4.7.1 sent */
bool smtpd_limits_auth(struct smtpd_state *st);
/* smtpd_limits_authfail - an AUTH failed (535) */
void smtpd_limits_authfail(struct smtpd_state *st);

/* smtpd_tls.c */
/* smtpd_tls_init - read smtpd_tls_*: make the TLS server (keys read
 * now: call while privileged); a failure is logged, TLS then stays off */
void smtpd_tls_init(void);
/* smtpd_tls_offered - EHLO advertises STARTTLS */
bool smtpd_tls_offered(const struct smtpd_state *st);
/* smtpd_tls_required - smtpd_tls_security_level = encrypt, not yet TLS */
bool smtpd_tls_required(const struct smtpd_state *st);
/* smtpd_tls_wrapper - wrapper mode: handshake before the greeting;
 * false: the session is over (logged) */
bool smtpd_tls_wrapper(struct smtpd_state *st);
void smtpd_cmd_starttls(struct smtpd_state *st, const char *args, size_t len);
/* smtpd_tls_end - close_notify at the end of a TLS session */
void smtpd_tls_end(struct smtpd_state *st);

/* smtpd_reply.c: the fixed replies */
enum smtpd_reply_id {
    SR_OK,				/* 250 2.0.0 Ok */
    SR_MAIL_OK,				/* 250 2.1.0 Ok */
    SR_RCPT_OK,				/* 250 2.1.5 Ok */
    SR_DATA_GO,				/* 354 */
    SR_BYE,				/* 221 2.0.0 Bye */
    SR_HELP,				/* 214 2.0.0 */
    SR_UNKNOWN_CMD,			/* 500 5.5.2 */
    SR_LINE_TOO_LONG,			/* 500 5.5.2 */
    SR_BAD_SYNTAX,			/* 500 5.5.2 */
    SR_NOT_IMPLEMENTED,			/* 502 5.5.1 */
    SR_VRFY_DISABLED,			/* 502 5.5.1 */
    SR_NEED_HELO,			/* 503 5.5.1 */
    SR_NESTED_MAIL,			/* 503 5.5.1 */
    SR_NEED_MAIL,			/* 503 5.5.1 */
    SR_NEED_RCPT,			/* 503 5.5.1 */
    SR_NO_VALID_RCPT,			/* 554 5.5.1 */
    SR_DATA_AFTER_BDAT,			/* 503 5.5.1 */
    SR_BINARYMIME_DATA,			/* 503 5.5.1 */
    SR_SYNTAX_EHLO,			/* 501 5.5.4 */
    SR_SYNTAX_HELO,			/* 501 5.5.4 */
    SR_SYNTAX_MAIL,			/* 501 5.5.4 */
    SR_SYNTAX_RCPT,			/* 501 5.5.4 */
    SR_SYNTAX_DATA,			/* 501 5.5.4 */
    SR_SYNTAX_RSET,			/* 501 5.5.4 */
    SR_SYNTAX_QUIT,			/* 501 5.5.4 */
    SR_SYNTAX_VRFY,			/* 501 5.5.4 */
    SR_SIZE_AT_MAIL,			/* 552 5.3.4 */
    SR_TOO_BIG,				/* 552 5.3.4 */
    SR_TOO_MANY_RCPTS,			/* 452 4.5.3 */
    SR_TOO_MANY_ERRORS,			/* 421 4.7.0 */
    SR_TIMEOUT,				/* 421 4.4.2 */
    SR_BARE_LF,				/* 550 5.5.2 */
    SR_BARE_CR,				/* 550 5.5.2 */
    SR_QUEUE_WRITE,			/* 451 4.3.0 */
    SR_NO_SPACE,			/* 452 4.3.1 */
    SR_NON_SMTP,			/* 221 2.7.0 */
    SR_BDAT_UNFOLLOWABLE,		/* 421 4.5.4 */
    SR_COUNT
};

/* smtpd_bdat_unfollowable - a BDAT whose chunk size cannot be honoured
 * (its bytes would run as commands): 421 4.5.4 and end the session */
void smtpd_bdat_unfollowable(struct smtpd_state *st);

struct smtpd_reply_def {
    enum smtpd_reply_id id;
    int code;
    const char *enhanced;		/* NULL: none */
    const char *text;			/* may hold one %s: $myhostname */
    bool hostname;			/* text starts with "%s " = $myhostname */
};

const struct smtpd_reply_def *smtpd_reply_def(enum smtpd_reply_id id);
/* smtpd_reply_id - send a fixed reply */
void smtpd_reply_id(struct smtpd_state *st, enum smtpd_reply_id id);
/* smtpd_reply_id_buf - a fixed reply into a reply buffer */
void smtpd_reply_id_buf(enum smtpd_reply_id id, struct smtpd_reply_buf *r);
/* smtpd_reply_set - fill a reply buffer */
void smtpd_reply_set(struct smtpd_reply_buf *r, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
