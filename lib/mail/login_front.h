/* login_front.h - the event-driven pre-authentication engine shared by
 * the login processes (pop3d-login, imapd-login).
 *
 * One MULTI process serves many clients that have not logged in yet,
 * each a struct conn (conn.h) on the event loop; nothing blocks. The
 * engine does what is common to every protocol:
 *   - start-up: the chroot $queue_directory/login with hard links to the
 *     auth socket and to the post-login service's socket, then the drop
 *     to login_user (no supplementary group) before any client byte is
 *     read (docs/login-split.md);
 *   - the client table and its limits: line length, commands before
 *     login, failed logins per connection, the wait for a command
 *     (idle deadline), clients per process;
 *   - SASL relaying: login_sasl_start runs an exchange with auth over
 *     the pooled connections of auth_async.h; challenges go to the
 *     protocol's sasl_challenge, the client's next line is the answer
 *     ("*" cancels), until auth says ok / fail / tempfail;
 *   - the hand-over (login_proto.h) of a client that logged in: on its
 *     own event-driven connection to the post-login service, bounded by
 *     login_handover_timeout, carrying the token, the client's address,
 *     its pipelined input and the protocol's tag (IMAP);
 *   - TLS (issue 13): STLS/STARTTLS and wrapper mode through lib/tls
 *     (tls_conn_server_start), the cleartext-login policy, and after a
 *     TLS client's login the PROXY: the client's TLS connection stays
 *     here, the post-login daemon gets one end of a socketpair (and the
 *     TLS protocol and cipher in the hand-over), and this process relays
 *     plaintext between the two, with bounded buffers (docs/login-split.md);
 *   - the client limits (issue 14, limits_client.h, on the event loop
 *     with limits_async): a connect at accept (count and rate; the
 *     client is greeted only once client-limits answered), a newtls
 *     after each full handshake, an authfail after each failed login
 *     and a check of the failed-login rate before each attempt; the
 *     disconnect when the client leaves or is handed over. Exempt
 *     clients (login_client_event_limit_exceptions) are counted, never
 *     refused; if client-limits is down the client is served.
 * The protocol module parses commands and words the replies.
 *
 *   static const struct login_protocol pop3 = { ... };
 *   int main(int argc, char **argv) { return login_front_main(argc, argv, &pop3); }
 *
 * Input while no exchange runs goes to proto->input: the module reads
 * lines with login_read_line (which counts commands and enforces the
 * limits) or, for IMAP literals, raw bytes from login_client_conn. While
 * auth is asked, the client's input is paused (pipelined commands wait
 * and travel with the hand-over).
 *
 * DIAGNOSTICS: configuration errors at start-up are fatal; everything a
 * client or auth can cause ends that client (logged), never the
 * process. */
#ifndef POSTHORN_LOGIN_FRONT_H
#define POSTHORN_LOGIN_FRONT_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "conn.h"

struct login_client;

/* How an exchange ended, for proto->auth_result. */
enum login_auth_result {
    LOGIN_AUTH_FAIL,		/* auth said fail (wrong credentials) */
    LOGIN_AUTH_TEMPFAIL,	/* auth said tempfail (too many failures) */
    LOGIN_AUTH_UNAVAILABLE,	/* auth could not be asked */
    LOGIN_AUTH_HANDOVER,	/* auth said ok, the hand-over failed: the
				 * engine closes after the reply */
    LOGIN_AUTH_CANCELLED,	/* the client answered "*" */
    LOGIN_AUTH_TOOLONG,		/* the client's SASL answer passed the limit */
    LOGIN_AUTH_ROUNDS,		/* more challenges than any mechanism needs */
    LOGIN_AUTH_LIMIT,		/* login_client_auth_rate_limit: the client's
				 * address had too many failed logins; auth
				 * was not asked; the engine closes after the
				 * reply (issue 14) */
};

struct login_protocol {
    const char *name;		/* program name: "pop3d-login" */
    const char *auth_service;	/* AUTH_SERVICE_POP3, AUTH_SERVICE_IMAP */
    /* the post-login service (master.cf name, a socket in private/):
     * the parameter's name and value, e.g. "pop3d_login_service", var */
    const char *handover_param;
    char *const *handover_service;
    /* limits: the parameters' values (pointers: read after config load) */
    const long *line_limit;	/* bytes of a command line, CRLF included */
    const long *command_limit;	/* commands before login */
    const long *failure_limit;	/* failed logins per connection */
    const long *login_timeout;	/* seconds to wait for a command */
    /* a new client: write the greeting; returns the module's context */
    void *(*client_new)(struct login_client *lc);
    /* input is there (no exchange running) */
    void (*input)(struct login_client *lc, void *ctx);
    /* auth sent a challenge (base64, "" for an empty one): write it */
    void (*sasl_challenge)(struct login_client *lc, void *ctx, const char *challenge);
    /* the exchange ended without a login (after a fail, the engine
     * counts the failure; login_failures_exhausted says whether this was
     * the last one allowed: then say so, the engine closes) */
    void (*auth_result)(struct login_client *lc, void *ctx, enum login_auth_result r);
    /* the client is gone (closed, handed over, timed out): free ctx */
    void (*client_free)(struct login_client *lc, void *ctx);
    /* lines written before closing: the command limit was passed, the
     * client was silent for login_timeout, the process is full */
    const char *reply_too_many_commands;
    const char *reply_timeout;
    const char *reply_busy;
    /* client limits (issue 14): written before closing a client over
     * login_client_connection_count_limit or ..._rate_limit (at
     * connect, before any greeting), or over
     * login_client_new_tls_session_rate_limit (after the handshake,
     * over TLS) */
    const char *reply_too_many_connections;
    const char *reply_too_many_tls_sessions;
    /* TLS (issue 13): the prefix of the protocol's TLS parameters
     * ("pop3d": pop3d_tls_*, tls.h), its wrapper-mode switch (TLS from
     * the first byte) and its list of networks that may log in without
     * TLS (cidr_match.h syntax) */
    const char *tls_prefix;
    const bool *tls_wrappermode;
    char *const *cleartext_networks;
    /* optional: TLS is up after STLS/STARTTLS (forget the plaintext
     * phase's state: RFC 2595 section 4); in wrapper mode client_new
     * runs once the handshake is done instead */
    void (*tls_started)(struct login_client *lc, void *ctx);
};

/* login_front_main - run the login process (never returns an error) */
int login_front_main(int argc, char **argv, const struct login_protocol *proto);

/* The client. */
struct conn *login_client_conn(struct login_client *lc);
const char *login_client_addr(const struct login_client *lc);
const char *login_client_port(const struct login_client *lc);

/* login_read_line - the next command line, counted against the command
 * limit: CONN_LINE (in *line, without CRLF, valid until the next input
 * call), CONN_TOOLONG (skipped; the module answers), CONN_NONE (wait:
 * also when the client is being closed for the command limit, whose
 * reply the engine wrote). */
enum conn_read_status login_read_line(struct login_client *lc, const char **line, size_t *len);

/* login_read_continuation - the next line of a command already counted
 * (after an IMAP literal): like login_read_line, not counted */
enum conn_read_status login_read_continuation(struct login_client *lc, const char **line,
					      size_t *len);

/* login_sasl_start - run an exchange: mechanism (upper case, known to
 * auth_mechanism_known), initial response in base64 ("" = none; the
 * protocol's "=" for an empty one is passed as ""); tag: what the
 * post-login daemon answers (IMAP tag), NULL for none. */
void login_sasl_start(struct login_client *lc, const char *mechanism, const char *initial,
		      const char *tag);

/* TLS (issue 13).
 * login_tls_offer - true when STLS/STARTTLS can be offered: a
 *   certificate is configured and the client is not using TLS yet.
 * login_client_tls - the client speaks TLS (STLS/STARTTLS done, or
 *   wrapper mode).
 * login_cleartext_ok - the client may send a password (USER/PASS,
 *   LOGIN, AUTH/AUTHENTICATE): it uses TLS, or its address is in the
 *   protocol's cleartext_networks.
 * login_starttls - the module wrote its "go ahead" reply: the engine
 *   flushes it, discards whatever the client sent after the command
 *   (injection: RFC 2595 section 4, CVE-2011-0411 class) and runs the
 *   handshake; on success proto->tls_started runs, on failure the
 *   client is closed (logged). */
bool login_tls_offer(const struct login_client *lc);
bool login_client_tls(const struct login_client *lc);
bool login_cleartext_ok(const struct login_client *lc);
void login_starttls(struct login_client *lc);

/* login_failures_exhausted - the failure limit is reached */
bool login_failures_exhausted(const struct login_client *lc);

/* login_client_quit - write nothing more; close once the output is out */
void login_client_quit(struct login_client *lc);

#endif
