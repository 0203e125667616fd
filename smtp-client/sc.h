/* sc.h - smtp-client's modules and what they share: replies, the SMTP
 * session, next-hop addresses, recipient results.
 *
 *   sc_reply.c    reading and parsing SMTP replies, EHLO keywords
 *   sc_nexthop.c  next-hop strings, MX/address lists, dead addresses
 *   sc_session.c  connect, greeting, EHLO/HELO, RSET, QUIT
 *   sc_sasl.c     AUTH PLAIN/LOGIN to the next hop
 *   sc_tls.c      STARTTLS: the TLS policy of a next hop, the handshake,
 *                 the certificate checks, the TLS log texts
 *   sc_trans.c    one mail transaction: MAIL, RCPT, DATA or BDAT
 *   sc_deliver.c  one deliver request: addresses, sessions, results
 *   main.c        the qmgr conversation and the connection cache
 */
#ifndef POSTHORN_SC_H
#define POSTHORN_SC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <netinet/in.h>

/* base */
#include "str.h"
#include "stream.h"

/* mail */
#include "deliver_proto.h"
#include "nexthop.h"

/* ---- replies (sc_reply.c) ---- */

#define SC_REPLY_LINE_MAX	2048	/* bytes of one reply line we keep */
#define SC_REPLY_LINES_MAX	100	/* lines of one reply */
#define SC_REPLY_TEXT_MAX	3000	/* the quoted reply, all lines */

struct sc_reply {
    int code;			/* 3 digits; 0 when none was read */
    char dsn[16];		/* "5.1.1", or "" without an enhanced code */
    struct str *lines;		/* the text after "NNN-"/"NNN ", each line
				 * ending in "\n" */
};

void sc_reply_init(struct sc_reply *r);
void sc_reply_fini(struct sc_reply *r);
/* sc_reply_read - read one (multi-line) reply within timeout_s seconds
 * in all; 0, or -1 with *error_r ("timeout", "lost connection",
 * "malformed reply") */
int sc_reply_read(struct stream *s, long timeout_s, struct sc_reply *r, const char **error_r);
/* sc_reply_parse_line - one reply line (no CR LF): its code and whether
 * it is the last; false if malformed */
bool sc_reply_parse_line(const char *line, size_t len, int *code, bool *last,
			 const char **text);
/* sc_reply_dsn - the enhanced status code at the start of text, if its
 * class matches code's first digit: copied to dsn; true if there */
bool sc_reply_dsn(const char *text, int code, char *dsn, size_t dsn_size);
/* sc_reply_quote - "550 5.1.1 text text2" (lines joined by a space) */
void sc_reply_quote(const struct sc_reply *r, char *buf, size_t size);

/* EHLO extensions */
#define SC_EXT_PIPELINING	(1U << 0)
#define SC_EXT_SIZE		(1U << 1)
#define SC_EXT_8BITMIME		(1U << 2)
#define SC_EXT_BINARYMIME	(1U << 3)
#define SC_EXT_CHUNKING		(1U << 4)
#define SC_EXT_SMTPUTF8		(1U << 5)
#define SC_EXT_DSN		(1U << 6)
#define SC_EXT_ENHANCED		(1U << 7)
#define SC_EXT_AUTH		(1U << 8)
#define SC_EXT_AUTH_PLAIN	(1U << 9)
#define SC_EXT_AUTH_LOGIN	(1U << 10)
#define SC_EXT_STARTTLS		(1U << 11)

struct sc_ext {
    unsigned flags;
    long size_limit;		/* SIZE n; 0 = none given */
};

/* sc_ext_parse - the keywords of an EHLO reply's lines (the first line
 * is the greeting, skipped) */
void sc_ext_parse(const char *lines, struct sc_ext *ext);

/* ---- next hop (sc_nexthop.c) ---- */

#define SC_HOST_MAX	NEXTHOP_HOST_MAX

struct sc_addr {
    char host[SC_HOST_MAX];	/* the exchanger's name (or the literal) */
    int family;
    union {
	struct in_addr v4;
	struct in6_addr v6;
    } a;
    char text[64];		/* numeric address */
    int port;
};

enum sc_route_status { SC_ROUTE_OK, SC_ROUTE_DEFER, SC_ROUTE_BOUNCE };

struct sc_route {
    enum sc_route_status status;
    char dsn[16];		/* on DEFER, BOUNCE */
    char reason[1024];
    struct sc_addr *addrs;	/* on OK */
    size_t count;
};

/* sc_route_find - the addresses to try for nh, in order, at most
 * smtp_mx_address_limit */
void sc_route_find(const struct nexthop *nh, struct sc_route *route);
void sc_route_free(struct sc_route *route);

/* dead addresses of this process (smtp_dead_host_time): sc_dead_check
 * gives the reason it was marked with (the failed attempt's own text,
 * e.g. "connect to ...: Connection refused"), or NULL if a is not dead */
const char *sc_dead_check(const struct sc_addr *a, time_t now);
void sc_dead_mark(const struct sc_addr *a, time_t now, const char *reason);

/* ---- the session (sc_session.c) ---- */

struct sc_session {
    struct stream *stream;
    char nexthop[1100];		/* the request's nexthop string */
    char host[SC_HOST_MAX];
    char addr[64];
    int port;
    char relay[SC_HOST_MAX + 80];	/* "host[addr]:port" */
    char namaddr[SC_HOST_MAX + 70];	/* "host[addr]" */
    struct sc_ext ext;
    bool esmtp;
    long uses;			/* transactions carried */
    bool healthy;		/* may be reused */
    bool tls;			/* the session runs over TLS */
    char tls_log[160];		/* for the delivery log: "Verified:TLSv1.3:
				 * TLS_AES_256_GCM_SHA384", "none" */
};

enum sc_open_status {
    SC_OPEN_OK,
    SC_OPEN_CONNECT,		/* no connection or no/4xx greeting: dead */
    SC_OPEN_REPLY,		/* greeting 5xx, EHLO/HELO, TLS policy or
				 * AUTH failed */
    SC_OPEN_TLS_RETRY,		/* the TLS handshake failed under "may":
				 * the caller may retry this address
				 * without TLS */
};

/* sc_session_open - connect to a, read the greeting, EHLO (HELO),
 * STARTTLS and EHLO again as the TLS policy says (no STARTTLS at all
 * with plain: the cleartext retry after SC_OPEN_TLS_RETRY), AUTH if
 * configured; on failure *dsn_r and reason (for the recipients), the
 * session is closed */
enum sc_open_status sc_session_open(struct sc_session *ss, const char *nexthop,
				    const struct sc_addr *a, bool plain, char *dsn,
				    size_t dsn_size, char *reason, size_t reason_size);
/* sc_helo - EHLO, or HELO after a 5xx to EHLO; 0 or -1 with reason */
int sc_helo(struct sc_session *ss, struct sc_reply *r, char *dsn, size_t dsn_size,
	    char *reason, size_t reason_size);
/* sc_session_rset - RSET for reuse; false if the session is not usable */
bool sc_session_rset(struct sc_session *ss);
/* sc_session_quit - QUIT (no wait beyond smtp_quit_timeout), close */
void sc_session_quit(struct sc_session *ss);
/* sc_session_close - close without a word */
void sc_session_close(struct sc_session *ss);
bool sc_session_is_open(const struct sc_session *ss);
/* sc_command - write one command line (CR LF added), flushing if flush */
int sc_command(struct sc_session *ss, bool flush, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* sc_session_said - "host X[addr] said: REPLY (in reply to CMD command)" */
void sc_session_said(const struct sc_session *ss, const struct sc_reply *r, const char *cmd,
		     char *reason, size_t size);
/* sc_session_lost - "lost connection with X[addr] while CMD: why" */
void sc_session_lost(const struct sc_session *ss, const char *what, const char *why,
		     char *reason, size_t size);

/* ---- AUTH (sc_sasl.c) ---- */

void sc_sasl_init(void);		/* pre_init: open the tables */
void sc_sasl_fini(void);
/* sc_sasl_auth - log in if configured: 0 (done or not needed), or -1
 * with dsn/reason (defer) */
int sc_sasl_auth(struct sc_session *ss, const char *nexthop, char *dsn, size_t dsn_size,
		 char *reason, size_t reason_size);

/* ---- TLS (sc_tls.c) ---- */

/* security levels, weakest first (Postfix's names) */
enum sc_tls_level {
    SC_TLS_NONE,		/* never STARTTLS */
    SC_TLS_MAY,			/* STARTTLS when offered; cleartext otherwise */
    SC_TLS_ENCRYPT,		/* TLS required, the certificate not checked */
    SC_TLS_FINGERPRINT,		/* TLS, a certificate or key fingerprint listed */
    SC_TLS_VERIFY,		/* TLS, a trusted chain, a name matching */
    SC_TLS_SECURE,		/* verify, the names by default the next hop's */
};

#define SC_TLS_MATCH_MAX	1024

/* the policy for one next hop */
struct sc_tls_policy {
    enum sc_tls_level level;
    bool match_given;		/* match= in the table (else the level's
				 * parameter: smtp_tls_verify_cert_match ...) */
    char match[SC_TLS_MATCH_MAX];	/* the match= values, space separated */
    char ciphers[128];		/* ciphers= ("": the parameter's) */
    char protocols[128];	/* protocols= ("": the parameter's) */
    char tafile[512];		/* tafile= ("": smtp_tls_CAfile) */
    char origin[160];		/* where it came from, for logs */
};

/* sc_tls_level_parse - a level name; false if unknown */
bool sc_tls_level_parse(const char *word, size_t len, enum sc_tls_level *level);
const char *sc_tls_level_name(enum sc_tls_level level);
/* sc_tls_policy_parse - a policy table value ("verify match=a:b
 * protocols=>=TLSv1.3"); 0, or -1 with err */
int sc_tls_policy_parse(const char *value, struct sc_tls_policy *p, char *err,
			size_t err_size);
/* sc_tls_policy_keys - the table keys for nexthop, in lookup order: the
 * next-hop string as given, then for a domain ".parent" forms of its
 * parents (".example.com" for "mx.example.com"); each as
 * NUL-terminated string into keys (max entries of key_size); the count */
size_t sc_tls_policy_keys(const char *nexthop, char keys[][SC_HOST_MAX + 16], size_t max);
/* sc_tls_fingerprint_match - fp (hex, ':' or not, any case) is one of
 * list (separated by '|', ',' or white space) */
bool sc_tls_fingerprint_match(const char *list, const char *fp);
/* sc_tls_match_names - the names a certificate may carry for this
 * policy, "hostname", "nexthop" and "dot-nexthop" replaced; into buf as
 * NUL-separated strings, pointers in names (NULL-terminated); count */
size_t sc_tls_match_names(const struct sc_tls_policy *p, const char *host,
			  const char *nexthop, char *buf, size_t buf_size,
			  const char **names, size_t max);

void sc_tls_init(void);		/* pre_init: tables, plugin, trust anchors */
void sc_tls_fini(void);
/* sc_tls_policy_find - the policy for nexthop: 0, or -1 with dsn/reason
 * (a table lookup error or a bad entry: defer) */
int sc_tls_policy_find(const char *nexthop, struct sc_tls_policy *p, char *dsn,
		       size_t dsn_size, char *reason, size_t reason_size);
/* sc_tls_start - after EHLO: STARTTLS as the policy says, the
 * certificate checks, EHLO again; SC_OPEN_OK (TLS or, where allowed,
 * cleartext), SC_OPEN_REPLY with dsn/reason (policy failure: defer),
 * SC_OPEN_TLS_RETRY (handshake failed under may), SC_OPEN_CONNECT (the
 * session broke) */
enum sc_open_status sc_tls_start(struct sc_session *ss, const char *nexthop,
				 struct sc_reply *r, char *dsn, size_t dsn_size,
				 char *reason, size_t reason_size);
/* sc_tls_close - close_notify on a TLS session (before close) */
void sc_tls_close(struct sc_session *ss);

/* ---- one message (sc_trans.c) ---- */

/* per-recipient outcome */
struct sc_rcpt_result {
    const char *status;		/* NULL = not final yet; RCPT_STAT_* */
    char dsn[16];
    char reason[SC_REPLY_TEXT_MAX + 400];
};

struct sc_message {
    const struct deliver_request *req;
    int fd;			/* the queue file */
    bool body_8bit;		/* body=8bitmime or 8-bit content */
    bool binary;		/* NUL or bare CR in the content */
    bool smtputf8;		/* needs SMTPUTF8 */
    long size;			/* content size as sent unconverted */
};

/* sc_trans_run - one transaction on an open session: fills res[] for
 * every recipient not yet final; false if the session broke (it is
 * closed then) */
bool sc_trans_run(struct sc_session *ss, const struct sc_message *m, struct sc_rcpt_result *res);

/* sc_result_set - a result with a formatted reason */
void sc_result_set(struct sc_rcpt_result *r, const char *status, const char *dsn,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- one request (sc_deliver.c) ---- */

struct sc_dest_status {
    bool dead;
    char reason[1024];
    long conn_use;
    char relay[SC_HOST_MAX + 80];	/* "host[addr]:port" or "none" */
    char tls[160];		/* the session's tls_log ("" no session) */
};

/* sc_deliver - serve req with the cached session ss (may be closed,
 * is left open for reuse when healthy); res[i] for every recipient */
void sc_deliver(struct sc_session *ss, const struct deliver_request *req,
		struct sc_rcpt_result *res, struct sc_dest_status *dest);

#endif
