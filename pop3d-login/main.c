/* main.c - pop3d-login: the pre-authentication half of the POP3 server.
 *
 * One MULTI process on the pop3 port serves many clients at once on the
 * event loop (login_front.h): it runs as login_user, chrooted to
 * $queue_directory/login, which holds nothing but hard links to two
 * sockets: auth (to check credentials) and the post-login pop3d service
 * (to hand the client over). It speaks the AUTHORIZATION state of RFC
 * 1939 (greeting, CAPA, USER/PASS, AUTH of RFC 5034, QUIT) and reads no
 * mailbox: when auth accepts a login it answers with a one-time token,
 * and this process passes the client's connection, the token and any
 * pipelined input to pop3d (login_proto.h) and forgets the client.
 * pop3d redeems the token with auth and answers the client. The trust
 * argument is docs/login-split.md.
 *
 * TLS (issue 13): STLS (RFC 2595) when a certificate is configured
 * (pop3d_tls_*), or TLS from the first byte with pop3d_tls_wrappermode
 * (POP3S, port 995). USER, PASS and AUTH need TLS unless the client's
 * address is in pop3d_cleartext_login_networks; CAPA says what is
 * possible on this connection now. After a TLS client's login this
 * process relays the session for pop3d (login_front.h).
 *
 * Client limits (issue 14, login_client_*_limit): a client over the
 * connection count or rate gets "-ERR [SYS/TEMP] Too many connections
 * from your address" instead of the greeting; over the new TLS session
 * rate "... Too many TLS sessions ..." after the handshake; over the
 * failed-login rate "... Too many failed logins ..." at its next PASS
 * or AUTH; each then closed (the engine checks, login_front.h). */

/* system */
#include <string.h>

/* base */
#include "base64.h"
#include "conn.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "auth_proto.h"
#include "config.h"
#include "login_front.h"
#include "pop3_cmd.h"

/* One client. */
struct pop3_login {
    struct login_client *lc;
    struct conn *c;
    char user[256];			/* from USER, for PASS */
    bool have_user;
};

/* reply helpers: "+OK text" / "-ERR [CODE] text" */
static void ok(struct pop3_login *pl, const char *text)
{
    conn_printf(pl->c, "+OK %s\r\n", text);
}

static void err(struct pop3_login *pl, const char *code, const char *text)
{
    if (code)
	conn_printf(pl->c, "-ERR [%s] %s\r\n", code, text);
    else
	conn_printf(pl->c, "-ERR %s\r\n", text);
}

/* cleartext_refused - a password command without TLS where the
 * client's network may not send one: say so (RFC 2595 section 4) */
static bool cleartext_refused(struct pop3_login *pl)
{
    if (login_cleartext_ok(pl->lc))
	return false;
    err(pl, POP3_CODE_AUTH, login_tls_offer(pl->lc)
	? "Plaintext authentication disallowed on non-secure connections, use STLS first"
	: "Plaintext authentication disallowed on non-secure connections");
    return true;
}

/* cmd_auth - AUTH [mechanism [initial-response]] (RFC 5034) */
static void cmd_auth(struct pop3_login *pl, const struct pop3_command *cmd)
{
    char mech[32];
    const char *p = cmd->rest, *initial = "";
    size_t n;

    if (cleartext_refused(pl))
	return;

    if (*p == 0) {
	/* no mechanism: list them (as many servers do) */
	ok(pl, "Supported mechanisms follow");
	conn_puts(pl->c, "PLAIN\r\nLOGIN\r\nSCRAM-SHA-256\r\n.\r\n");
	return;
    }
    n = strcspn(p, " ");
    if (n == 0 || n >= sizeof(mech)) {
	err(pl, NULL, "Unsupported authentication mechanism");
	return;
    }
    memcpy(mech, p, n);
    mech[n] = 0;
    for (char *c = mech; *c; c++)
	if (*c >= 'a' && *c <= 'z')
	    *c = (char) (*c - 'a' + 'A');
    if (!auth_mechanism_known(mech)) {
	err(pl, NULL, "Unsupported authentication mechanism");
	return;
    }
    p += n;
    if (*p == ' ') {
	initial = p + 1;
	if (*initial == 0 || strchr(initial, ' ') != NULL) {
	    err(pl, NULL, "Syntax: AUTH mechanism [initial-response]");
	    return;
	}
	if (strcmp(initial, "=") == 0)
	    initial = "";		/* an empty initial response */
	else if (strlen(initial) > AUTH_RESPONSE_MAX) {
	    err(pl, NULL, "Authentication response too long");
	    return;
	}
    }
    login_sasl_start(pl->lc, mech, initial, NULL);
}

/* cmd_user - USER name */
static void cmd_user(struct pop3_login *pl, const struct pop3_command *cmd)
{
    if (cleartext_refused(pl))
	return;
    if (cmd->bad_args || cmd->argc != 1) {
	err(pl, NULL, "Syntax: USER name");
	return;
    }
    if (!str_try_copy_out(pl->user, sizeof(pl->user), cmd->argv[0])) {
	err(pl, NULL, "User name too long");
	return;
    }
    pl->have_user = true;
    ok(pl, "Send your password");
}

/* cmd_pass - PASS password: a PLAIN exchange on the client's behalf
 * (authzid empty, authcid the USER name) */
static void cmd_pass(struct pop3_login *pl, const struct pop3_command *cmd)
{
    struct str *plain, *b64;

    if (cleartext_refused(pl))
	return;
    if (!pl->have_user) {
	err(pl, NULL, "Send USER first");
	return;
    }
    pl->have_user = false;
    if (*cmd->rest == 0) {
	err(pl, NULL, "Syntax: PASS password");
	return;
    }
    plain = str_new(2 * (size_t) var_pop3d_line_limit + 2);
    b64 = str_new(AUTH_RESPONSE_MAX);
    if (!str_try_appendc(plain, 0) || !str_try_appends(plain, pl->user)
	|| !str_try_appendc(plain, 0) || !str_try_appends(plain, cmd->rest)
	|| !base64_encode(str_cstr(plain), str_len(plain), b64)) {
	err(pl, NULL, "Password too long");
    } else {
	login_sasl_start(pl->lc, AUTH_MECH_PLAIN, str_cstr(b64), NULL);
    }
    /* the password does not outlive the command */
    explicit_bzero(plain->data, plain->len);
    explicit_bzero(b64->data, b64->len);
    str_free(&plain);
    str_free(&b64);
}

/* cmd_capa - CAPA (RFC 2449), before authentication: STLS while it is
 * possible, USER and SASL only where a password may be sent now */
static void cmd_capa(struct pop3_login *pl)
{
    ok(pl, "Capability list follows");
    conn_puts(pl->c, POP3_CAPA_COMMON);
    if (login_tls_offer(pl->lc))
	conn_puts(pl->c, "STLS\r\n");
    if (login_cleartext_ok(pl->lc))
	conn_puts(pl->c, "USER\r\nSASL PLAIN LOGIN SCRAM-SHA-256\r\n");
    conn_puts(pl->c, ".\r\n");
}

/* cmd_stls - STLS (RFC 2595 section 4) */
static void cmd_stls(struct pop3_login *pl, const struct pop3_command *cmd)
{
    if (login_client_tls(pl->lc)) {
	err(pl, NULL, "Command not permitted when TLS active");
    } else if (!login_tls_offer(pl->lc)) {
	err(pl, NULL, "STLS is not available");
    } else if (cmd->argc != 0 || *cmd->rest != 0) {
	err(pl, NULL, "Syntax: STLS");
    } else {
	pl->have_user = false;
	explicit_bzero(pl->user, sizeof(pl->user));
	ok(pl, "Begin TLS negotiation");
	login_starttls(pl->lc);
    }
}

/* pl_command - one command line */
static void pl_command(struct pop3_login *pl, char *line, size_t len)
{
    struct pop3_command cmd;

    pop3_parse_command(line, len, &cmd);
    if (cmd.bad_verb) {
	err(pl, NULL, "Bad command");
    } else if (strcmp(cmd.verb, "CAPA") == 0) {
	cmd_capa(pl);
    } else if (strcmp(cmd.verb, "USER") == 0) {
	cmd_user(pl, &cmd);
    } else if (strcmp(cmd.verb, "PASS") == 0) {
	cmd_pass(pl, &cmd);
	explicit_bzero(line, len);
    } else if (strcmp(cmd.verb, "AUTH") == 0) {
	cmd_auth(pl, &cmd);
    } else if (strcmp(cmd.verb, "QUIT") == 0) {
	ok(pl, "Bye");
	login_client_quit(pl->lc);
    } else if (strcmp(cmd.verb, "APOP") == 0) {
	err(pl, NULL, "APOP is not supported, use USER/PASS or AUTH");
    } else if (strcmp(cmd.verb, "STLS") == 0) {
	cmd_stls(pl, &cmd);
    } else if (strcmp(cmd.verb, "STAT") == 0 || strcmp(cmd.verb, "LIST") == 0
	       || strcmp(cmd.verb, "RETR") == 0 || strcmp(cmd.verb, "DELE") == 0
	       || strcmp(cmd.verb, "NOOP") == 0 || strcmp(cmd.verb, "RSET") == 0
	       || strcmp(cmd.verb, "TOP") == 0 || strcmp(cmd.verb, "UIDL") == 0) {
	err(pl, NULL, "Log in first (USER/PASS or AUTH)");
    } else {
	err(pl, NULL, "Unknown command");
    }
}

/* pl_input - commands as they come; one per call (the engine offers
 * the rest again, and stops while auth is asked) */
static void pl_input(struct login_client *lc, void *ctx)
{
    struct pop3_login *pl = ctx;
    const char *line;
    size_t len;

    switch (login_read_line(lc, &line, &len)) {
    case CONN_LINE:
	pl_command(pl, (char *) line, len);
	return;
    case CONN_TOOLONG:
	err(pl, NULL, "Line too long");
	return;
    default:
	return;
    }
}

/* pl_new - a client: greet it. No <timestamp> in the greeting: APOP is
 * not offered. */
static void *pl_new(struct login_client *lc)
{
    struct pop3_login *pl = mem_zalloc(sizeof(*pl));

    pl->lc = lc;
    pl->c = login_client_conn(lc);
    ok(pl, "POP3 server ready");
    return pl;
}

/* pl_challenge - "+ challenge" */
static void pl_challenge(struct login_client *lc, void *ctx, const char *challenge)
{
    struct pop3_login *pl = ctx;

    (void) lc;
    conn_printf(pl->c, "+ %s\r\n", challenge);
}

/* pl_result - an exchange ended without a login */
static void pl_result(struct login_client *lc, void *ctx, enum login_auth_result r)
{
    struct pop3_login *pl = ctx;

    switch (r) {
    case LOGIN_AUTH_FAIL:
	err(pl, POP3_CODE_AUTH, "Authentication failed");
	if (login_failures_exhausted(lc))
	    err(pl, NULL, "Too many failed logins, closing connection");
	return;
    case LOGIN_AUTH_TEMPFAIL:
	err(pl, POP3_CODE_SYS_TEMP, "Too many failed logins, try again later");
	login_client_quit(lc);
	return;
    case LOGIN_AUTH_UNAVAILABLE:
	err(pl, POP3_CODE_SYS_TEMP, "Authentication service unavailable, try again later");
	return;
    case LOGIN_AUTH_HANDOVER:
	err(pl, POP3_CODE_SYS_TEMP, "Mail service unavailable, try again later");
	return;
    case LOGIN_AUTH_CANCELLED:
	err(pl, NULL, "Authentication cancelled");
	return;
    case LOGIN_AUTH_TOOLONG:
	err(pl, NULL, "Authentication response too long");
	return;
    case LOGIN_AUTH_ROUNDS:
	err(pl, NULL, "Too many authentication rounds");
	login_client_quit(lc);
	return;
    case LOGIN_AUTH_LIMIT:
	err(pl, POP3_CODE_SYS_TEMP, "Too many failed logins from your address");
	return;				/* the engine closes */
    }
}

/* pl_tls_started - TLS is up: nothing of the plaintext phase counts */
static void pl_tls_started(struct login_client *lc, void *ctx)
{
    struct pop3_login *pl = ctx;

    (void) lc;
    pl->have_user = false;
    explicit_bzero(pl->user, sizeof(pl->user));
}

/* pl_free - the client is gone */
static void pl_free(struct login_client *lc, void *ctx)
{
    struct pop3_login *pl = ctx;

    (void) lc;
    explicit_bzero(pl->user, sizeof(pl->user));
    mem_free(&pl);
}

int main(int argc, char **argv)
{
    static const struct login_protocol pop3 = {
	.name = "pop3d-login",
	.auth_service = AUTH_SERVICE_POP3,
	.handover_param = "pop3d_login_service",
	.handover_service = &var_pop3d_login_service,
	.line_limit = &var_pop3d_line_limit,
	.command_limit = &var_pop3d_login_command_limit,
	.failure_limit = &var_pop3d_login_failure_limit,
	.login_timeout = &var_pop3d_login_timeout,
	.client_new = pl_new,
	.input = pl_input,
	.sasl_challenge = pl_challenge,
	.auth_result = pl_result,
	.client_free = pl_free,
	.reply_too_many_commands = "-ERR Too many commands, closing connection\r\n",
	.reply_timeout = "-ERR Timeout, closing connection\r\n",
	.reply_busy = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
	.reply_too_many_connections = "-ERR [SYS/TEMP] Too many connections from your address\r\n",
	.reply_too_many_tls_sessions = "-ERR [SYS/TEMP] Too many TLS sessions from your address\r\n",
	.tls_prefix = "pop3d",
	.tls_wrappermode = &var_pop3d_tls_wrappermode,
	.cleartext_networks = &var_pop3d_cleartext_login_networks,
	.tls_started = pl_tls_started,
    };

    return login_front_main(argc, argv, &pop3);
}
