/* login_front.c - the event-driven pre-authentication engine of the
 * login processes (login_front.h): the chroot set-up and privilege drop,
 * the client table with its limits, SASL relaying through auth_async,
 * and the non-blocking hand-over to the post-login service; TLS
 * (STLS/STARTTLS, wrapper mode, the cleartext-login policy) and the TLS
 * proxy that relays a TLS client's session after its login; the client
 * limits (limits_client.h: connections, their rate, new TLS sessions,
 * failed logins, asked on the event loop with limits_async). */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "sock.h"
#include "str.h"

/* mail */
#include "auth_async.h"
#include "auth_proto.h"
#include "cidr_match.h"
#include "config.h"
#include "login_front.h"
#include "limits_client.h"
#include "login_proto.h"
#include "mail_proto.h"
#include "server.h"

/* tls */
#include "tls.h"

#define LOGIN_DIR	"login"		/* under queue_directory: the chroot */
#define LOGIN_AUTH_LINK	"auth"		/* the auth socket, inside it */
#define LOGIN_LIMITS_LINK "client-limits"	/* client-limits, inside it */
#define SASL_LINE_MAX	(AUTH_RESPONSE_MAX + 2)	/* a response and its CRLF */
#define SASL_ROUNDS_MAX	10		/* no mechanism takes more */
#define PROXY_CHUNK	16384		/* input buffer of each proxy side */

enum lc_state {
    LC_COMMAND,			/* the protocol reads commands */
    LC_AUTH,			/* waiting for auth (input paused) */
    LC_SASL,			/* waiting for the client's SASL answer */
    LC_HANDOVER,		/* passing the client on (input paused) */
    LC_QUIT,			/* closing after the output */
    LC_TLS,			/* STLS/STARTTLS or wrapper: the handshake */
    LC_PROXY,			/* logged in over TLS: relaying */
    LC_LIMITS,			/* waiting for client-limits' answer */
};

/* What a client waits for in LC_LIMITS. */
enum lim_what {
    LIM_CONNECT,		/* at accept: then the greeting (or TLS) */
    LIM_NEWTLS,			/* after a full handshake: then go on */
    LIM_AUTH,			/* before a login attempt: then auth */
};

enum ho_state { HO_HELLO, HO_STATUS };

struct login_client {
    struct conn *c;
    void *ctx;
    enum lc_state state;
    char addr[64];
    char port[16];
    long commands;
    long failures;
    int rounds;
    struct auth_async *auth;	/* the exchange in progress */
    char tag[LOGIN_TAG_MAX + 1];
    char token[LOGIN_TOKEN_MAX + 1];
    char user[PROTO_ADDR_MAX + 1];
    event_timer_id timer;	/* the wait for a command */
    struct conn *ho;		/* the hand-over connection */
    enum ho_state ho_state;
    struct ipc_list ho_reply;
    bool ho_waiting_flush;
    /* TLS */
    bool tls;			/* the client speaks TLS */
    bool tls_waiting_flush;	/* the go-ahead is still queued */
    char tls_summary[LOGIN_TLS_MAX + 1];
    /* the proxy (a TLS client after its login) */
    int px_fd, px_peer_fd;	/* our end, the daemon's end (-1: none) */
    size_t ho_input_len;	/* input that travelled with the hand-over */
    struct conn *pc;		/* our end, on the event loop */
    bool proxied;		/* counted in lf_proxies, not lf_clients */
    bool px_client_eof, px_daemon_eof, px_closing;
    /* client limits */
    bool lim_exempt;		/* in login_client_event_limit_exceptions */
    bool lim_connected;		/* counted: a disconnect is owed */
    enum lim_what lim_what;
    struct limits_async *lim_req;	/* the request waited for */
    char *lim_mech;		/* LIM_AUTH: the exchange to start after */
    struct str *lim_initial;
    const char *lim_refusal;	/* wrapper mode: say it once TLS is up */
};

static const struct login_protocol *lf_proto;
static char lf_handover_link[NAME_MAX + 1];
static long lf_clients;			/* before login */
static long lf_proxies;			/* TLS sessions relayed after login */
static struct tls_server *lf_tls;	/* NULL: no certificate, no TLS */
static struct cidr_list *lf_cleartext;	/* may log in without TLS */

static void lf_client_input(struct conn *c, void *ctx);
static void lf_client_drain(struct conn *c, void *ctx);
static void lf_client_close(struct conn *c, void *ctx);
static const struct conn_handlers lf_client_handlers = {
    lf_client_input, lf_client_drain, lf_client_close,
};
static void lf_handover_begin(struct login_client *lc);
static void lf_proxy_start(struct login_client *lc);
static void lf_tls_begin(struct login_client *lc);
static void lf_px_client_input(struct login_client *lc);
static void lf_px_client_drain(struct login_client *lc);
static void lf_px_client_eof(struct conn *c, void *ctx);
static void lf_lim_release(struct login_client *lc);
static void lf_lim_forget_auth(struct login_client *lc);
static void lf_lim_refuse(struct login_client *lc, const char *reply);

/* ---------------------------------------------------------------- */
/* Start-up: the chroot and its two sockets                         */

/* lf_link_socket - (re)make the hard link NAME in the chroot
 * directory dfd to the socket src, atomically (link to a temporary
 * name, rename over); as root also give the socket's group to the login
 * uid's group with mode 0660, so that the login uid can connect through
 * the link. private/ itself stays closed (0700): only this link reaches
 * the socket. Everything happens relative to dfd, and the new link is
 * checked to be a socket before its inode is changed, so a name swapped
 * by a less trusted user (queue_directory belongs to the mail owner)
 * never makes root touch another file. */
static void lf_link_socket(int dfd, const char *src, const char *name, gid_t login_gid,
			   const char *until)
{
    char tmp[NAME_MAX + 1];
    struct stat st;

    fmt_buf_or_panic(tmp, sizeof(tmp), ".%s.%ld", name, (long) getpid());
    if (lstat(src, &st) < 0 || !S_ISSOCK(st.st_mode)) {
	msg_warn("%s is not a socket (is its service in master.cf?) -- %s until it is", src,
		 until);
	return;
    }
    (void) unlinkat(dfd, tmp, 0);
    if (linkat(AT_FDCWD, src, dfd, tmp, 0) < 0) {
	msg_warn("link %s to %s/%s: %m", src, LOGIN_DIR, tmp);
	return;
    }
    if (fstatat(dfd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode)) {
	msg_warn("%s was replaced while it was linked -- not using it", src);
	(void) unlinkat(dfd, tmp, 0);
	return;
    }
    if (priv_is_root() && (fchownat(dfd, tmp, (uid_t) -1, login_gid, AT_SYMLINK_NOFOLLOW) < 0
			   || fchmodat(dfd, tmp, 0660, 0) < 0))
	msg_warn("making %s reachable for %s: %m", src, var_login_user);
    if (renameat(dfd, tmp, dfd, name) < 0) {
	msg_warn("rename %s/%s to %s: %m", LOGIN_DIR, tmp, name);
	(void) unlinkat(dfd, tmp, 0);
    }
}

/* lf_tls_init - the cleartext-login networks and the TLS server (its
 * keys are read here, as root, before the chroot) */
static void lf_tls_init(void)
{
    const char *prefix = lf_proto->tls_prefix;
    bool wrapper = lf_proto->tls_wrappermode && *lf_proto->tls_wrappermode;
    const char *nets = lf_proto->cleartext_networks ? *lf_proto->cleartext_networks : "";
    struct tls_server_settings set;
    const char *cerr;
    char *err = NULL;

    if ((lf_cleartext = cidr_list_parse(nets, &cerr)) == NULL)
	msg_fatal("bad %s_cleartext_login_networks: %s", prefix ? prefix : "", cerr);
    if (prefix == NULL)
	return;
    memset(&set, 0, sizeof(set));
    tls_server_settings_from_config(&set, prefix);
    if ((set.chain_files == NULL || *set.chain_files == 0)
	&& (set.cert_file == NULL || *set.cert_file == 0)
	&& (set.eccert_file == NULL || *set.eccert_file == 0)) {
	if (wrapper)
	    msg_fatal("%s_tls_wrappermode = yes needs a certificate (%s_tls_chain_files or "
		      "%s_tls_cert_file)", prefix, prefix, prefix);
	return;					/* no TLS offered */
    }
    if ((lf_tls = tls_server_new(&set, &err)) == NULL) {
	if (wrapper)
	    msg_fatal("TLS: %s", err);
	msg_warn("TLS: %s -- %s offered without STLS/STARTTLS", err, lf_proto->name);
	mem_free(&err);
    }
}

/* lf_pre_init - make the chroot directory and its links, then drop to
 * login_user inside it (before any byte from a client is read) */
static void lf_pre_init(int argc, char **argv)
{
    const char *service = *lf_proto->handover_service;
    char src[PATH_MAX];
    const char *err;
    struct stat st;
    uid_t login_uid = (uid_t) -1;
    gid_t login_gid = (gid_t) -1;
    int dfd;

    (void) argc;
    (void) argv;
    if (*service == 0 || strchr(service, '/') != NULL || service[0] == '.'
	|| !str_try_copy_out(lf_handover_link, sizeof(lf_handover_link), service))
	msg_fatal("bad %s: \"%.100s\"", lf_proto->handover_param, service);
    if (priv_is_root() && !priv_lookup(var_login_user, &login_uid, &login_gid))
	msg_fatal("login_user %s: unknown user", var_login_user);
    if (priv_is_root() && login_uid == 0)
	msg_fatal("login_user %s must not be root", var_login_user);
    lf_tls_init();

    /* The directory: root-owned, mode 0750, group of the login uid, so
     * that the login uid can use it but change nothing in it. Opened
     * once, without following a symbolic link; every later step uses
     * the descriptor, never the name. */
    if (mkdir(LOGIN_DIR, 0750) < 0 && errno != EEXIST)
	msg_fatal("mkdir %s/%s: %m", var_queue_directory, LOGIN_DIR);
    if ((dfd = open(LOGIN_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0
	|| fstat(dfd, &st) < 0 || !S_ISDIR(st.st_mode))
	msg_fatal("%s/%s: not a directory: %m", var_queue_directory, LOGIN_DIR);
    if (priv_is_root() && (fchown(dfd, 0, login_gid) < 0 || fchmod(dfd, 0750) < 0))
	msg_fatal("chown/chmod %s/%s: %m", var_queue_directory, LOGIN_DIR);
    lf_link_socket(dfd, AUTH_SOCKET, LOGIN_AUTH_LINK, login_gid, "logins will fail");
    fmt_buf_or_panic(src, sizeof(src), "private/%s", lf_handover_link);
    lf_link_socket(dfd, src, lf_handover_link, login_gid, "logins will fail");
    lf_link_socket(dfd, LIMITS_SOCKET, LOGIN_LIMITS_LINK, login_gid,
		   "client limits are not enforced");

    /* The drop: chroot to the directory, become login_user (no
     * supplementary group). Not root (the sandbox): just go there, so
     * that the same relative socket names work. */
    if (fchdir(dfd) < 0)
	msg_fatal("chdir %s/%s: %m", var_queue_directory, LOGIN_DIR);
    (void) close(dfd);
    if (priv_is_root() && priv_drop(var_login_user, (gid_t) -1, ".", &err) < 0)
	msg_fatal("privilege drop to %s: %s", var_login_user, err);
    auth_async_init(LOGIN_AUTH_LINK, (int) var_login_auth_connections);
    limits_client_init(LOGIN_LIMITS_LINK);
}

/* ---------------------------------------------------------------- */
/* The client                                                       */

struct conn *login_client_conn(struct login_client *lc)
{
    return lc->c;
}

const char *login_client_addr(const struct login_client *lc)
{
    return lc->addr;
}

const char *login_client_port(const struct login_client *lc)
{
    return lc->port;
}

bool login_tls_offer(const struct login_client *lc)
{
    return lf_tls != NULL && !lc->tls;
}

bool login_client_tls(const struct login_client *lc)
{
    return lc->tls;
}

bool login_cleartext_ok(const struct login_client *lc)
{
    return lc->tls || (lf_cleartext != NULL && cidr_list_match(lf_cleartext, lc->addr));
}

bool login_failures_exhausted(const struct login_client *lc)
{
    return lc->failures >= *lf_proto->failure_limit;
}

/* lf_timeout_ms - login_timeout in milliseconds */
static int lf_timeout_ms(void)
{
    long t = *lf_proto->login_timeout;

    return t > INT_MAX / 1000 ? INT_MAX : (int) (t * 1000);
}

/* lf_timer_cb - no command for login_timeout: say so and close */
static void lf_timer_cb(void *ctx)
{
    struct login_client *lc = ctx;

    lc->timer = 0;
    if (lc->state == LC_TLS) {
	msg_info("timeout in the TLS handshake: client=[%s]:%s", lc->addr, lc->port);
	lc->state = LC_QUIT;
	conn_close(lc->c, CONN_CLOSE_TIMEOUT);
	return;
    }
    if (lc->state == LC_PROXY)
	return;
    if (lc->state == LC_AUTH || lc->state == LC_HANDOVER || lc->state == LC_LIMITS) {
	/* auth and the hand-over have deadlines of their own */
	lc->timer = event_timer_add(lf_timeout_ms(), lf_timer_cb, lc);
	return;
    }
    if (lc->state != LC_QUIT && lf_proto->reply_timeout)
	conn_puts(lc->c, lf_proto->reply_timeout);
    lc->state = LC_QUIT;
    msg_info("timeout before login: client=[%s]:%s", lc->addr, lc->port);
    conn_close_after_flush(lc->c);
}

/* lf_timer_restart - a command came: the wait starts again */
static void lf_timer_restart(struct login_client *lc)
{
    if (lc->timer)
	event_timer_cancel(lc->timer);
    lc->timer = event_timer_add(lf_timeout_ms(), lf_timer_cb, lc);
}

void login_client_quit(struct login_client *lc)
{
    if (lc->state == LC_QUIT)
	return;
    lc->state = LC_QUIT;
    if (lc->auth) {
	auth_async_cancel(lc->auth);
	lc->auth = NULL;
    }
    conn_close_after_flush(lc->c);
}

enum conn_read_status login_read_line(struct login_client *lc, const char **line, size_t *len)
{
    enum conn_read_status r;

    if (lc->state != LC_COMMAND)
	return CONN_NONE;
    r = conn_read_line(lc->c, line, len);
    if (r != CONN_LINE && r != CONN_TOOLONG)
	return r;
    lf_timer_restart(lc);
    server_watchdog_reset();
    if (++lc->commands > *lf_proto->command_limit) {
	if (lf_proto->reply_too_many_commands)
	    conn_puts(lc->c, lf_proto->reply_too_many_commands);
	msg_info("too many commands before login: client=[%s]:%s", lc->addr, lc->port);
	login_client_quit(lc);
	return CONN_NONE;
    }
    return r;
}

enum conn_read_status login_read_continuation(struct login_client *lc, const char **line,
					      size_t *len)
{
    enum conn_read_status r;

    if (lc->state != LC_COMMAND)
	return CONN_NONE;
    r = conn_read_line(lc->c, line, len);
    if (r == CONN_LINE || r == CONN_TOOLONG) {
	lf_timer_restart(lc);
	server_watchdog_reset();
    }
    return r;
}

/* lf_back_to_commands - an exchange ended without a login */
static void lf_back_to_commands(struct login_client *lc)
{
    lc->auth = NULL;
    lc->state = LC_COMMAND;
    conn_set_input_max(lc->c, (size_t) *lf_proto->line_limit);
    conn_pause_input(lc->c, false);
    lf_timer_restart(lc);
}

/* lf_result - tell the protocol how the exchange ended */
static void lf_result(struct login_client *lc, enum login_auth_result r)
{
    lf_back_to_commands(lc);
    if (r == LOGIN_AUTH_FAIL) {
	lc->failures++;
	/* counted for every client, exempt or not (the operator's figures) */
	limits_async_send(LIMITS_REQ_AUTHFAIL, server_service_name(), lc->addr);
    }
    lf_proto->auth_result(lc, lc->ctx, r);
    if (r == LOGIN_AUTH_FAIL && login_failures_exhausted(lc))
	login_client_quit(lc);
}

/* lf_auth_reply - auth answered a step of the exchange */
static void lf_auth_reply(struct auth_async *h, const struct auth_reply *reply, const char *error,
			  void *ctx)
{
    struct login_client *lc = ctx;

    (void) h;
    if (error != NULL) {
	lf_result(lc, LOGIN_AUTH_UNAVAILABLE);
	return;
    }
    if (strcmp(reply->status, AUTH_STAT_CONTINUE) == 0) {
	if (++lc->rounds > SASL_ROUNDS_MAX) {
	    auth_async_cancel(lc->auth);
	    lf_result(lc, LOGIN_AUTH_ROUNDS);
	    return;
	}
	lc->state = LC_SASL;
	conn_set_input_max(lc->c, SASL_LINE_MAX);
	lf_proto->sasl_challenge(lc, lc->ctx, reply->challenge ? reply->challenge : "");
	conn_pause_input(lc->c, false);
	lf_timer_restart(lc);
	return;
    }
    if (strcmp(reply->status, AUTH_STAT_OK) == 0) {
	lc->auth = NULL;
	if (!str_try_copy_out(lc->token, sizeof(lc->token), reply->token)) {
	    lf_result(lc, LOGIN_AUTH_UNAVAILABLE);
	    return;
	}
	str_copy_out_or_panic(lc->user, sizeof(lc->user), reply->user);
	lc->state = LC_HANDOVER;
	if (conn_output_pending(lc->c) > 0)
	    lc->ho_waiting_flush = true;	/* lf_client_drain goes on */
	else
	    lf_handover_begin(lc);
	return;
    }
    if (strcmp(reply->status, AUTH_STAT_TEMPFAIL) == 0) {
	msg_info("authentication refused for now: client=[%s]:%s", lc->addr, lc->port);
	lf_result(lc, LOGIN_AUTH_TEMPFAIL);
	return;
    }
    msg_info("authentication failed: client=[%s]:%s", lc->addr, lc->port);
    lf_result(lc, LOGIN_AUTH_FAIL);
}

/* lf_sasl_begin - ask auth: the first step of the exchange */
static void lf_sasl_begin(struct login_client *lc, const char *mechanism, const char *initial)
{
    struct auth_request req;

    memset(&req, 0, sizeof(req));
    req.service = lf_proto->auth_service;
    req.mechanism = mechanism;
    req.client_address = lc->addr;
    req.response = initial;
    lc->rounds = 0;
    lc->state = LC_AUTH;
    conn_pause_input(lc->c, true);
    lc->auth = auth_async_start(&req, lf_auth_reply, lc);
}

static void lf_lim_wait(struct login_client *lc, enum lim_what what, const char *request);

void login_sasl_start(struct login_client *lc, const char *mechanism, const char *initial,
		      const char *tag)
{
    if (lc->state != LC_COMMAND)
	msg_panic("login_sasl_start: not reading commands");
    if (!str_try_copy_out(lc->tag, sizeof(lc->tag), tag ? tag : ""))
	msg_panic("login_sasl_start: tag over %d bytes", LOGIN_TAG_MAX);
    if (lc->lim_exempt || var_login_client_auth_rate_limit <= 0) {
	lf_sasl_begin(lc, mechanism, initial);
	return;
    }
    /* login_client_auth_rate_limit: the failed logins of this address
     * (on any connection) in this time unit, before auth is asked; the
     * exchange waits in memory meanwhile (wiped when done) */
    lc->lim_mech = mem_strdup(mechanism);
    lc->lim_initial = str_new(strlen(initial) + 1);
    if (!str_try_appends(lc->lim_initial, initial))
	msg_panic("login_sasl_start: initial response does not fit");
    conn_pause_input(lc->c, true);
    lf_lim_wait(lc, LIM_AUTH, LIMITS_REQ_LOOKUP);
}

/* ---------------------------------------------------------------- */
/* TLS: STLS/STARTTLS and wrapper mode                              */

static void lf_tls_go_on(struct login_client *lc);
static void lf_lim_wait(struct login_client *lc, enum lim_what what, const char *request);

/* lf_tls_done - the handshake ended */
static void lf_tls_done(struct conn *c, void *ctx, bool ok, const struct tls_info *info,
			const char *error)
{
    struct login_client *lc = ctx;

    if (!ok) {
	msg_info("TLS handshake failed: client=[%s]:%s: %s", lc->addr, lc->port,
		 error ? error : "unknown error");
	lc->state = LC_QUIT;
	conn_close(c, CONN_CLOSE_ERROR);
	return;
    }
    lc->tls = true;
    tls_info_summary(info, lc->tls_summary, sizeof(lc->tls_summary));
    for (char *p = lc->tls_summary; *p; p++)	/* it travels as text */
	if ((unsigned char) *p < 0x20 || (unsigned char) *p > 0x7e)
	    *p = '?';
    msg_info("TLS: client=[%s]:%s, %s%s", lc->addr, lc->port, lc->tls_summary,
	     info->resumed ? ", resumed" : "");
    if (lc->lim_refusal != NULL) {
	/* wrapper mode, refused at connect: the answer goes over TLS */
	if (!info->resumed)
	    limits_async_send(LIMITS_REQ_NEWTLS, server_service_name(), lc->addr);
	lc->state = LC_COMMAND;
	lf_lim_refuse(lc, lc->lim_refusal);
	return;
    }
    if (!info->resumed) {
	/* a full handshake: login_client_new_tls_session_rate_limit */
	if (lc->lim_exempt || var_login_client_new_tls_session_rate_limit <= 0) {
	    limits_async_send(LIMITS_REQ_NEWTLS, server_service_name(), lc->addr);
	} else {
	    conn_pause_input(lc->c, true);
	    lf_lim_wait(lc, LIM_NEWTLS, LIMITS_REQ_NEWTLS);
	    return;
	}
    }
    lf_tls_go_on(lc);
}

/* lf_tls_go_on - TLS is up (and allowed): greet, or go on reading */
static void lf_tls_go_on(struct login_client *lc)
{
    lc->state = LC_COMMAND;
    lf_timer_restart(lc);
    if (lc->ctx == NULL)			/* wrapper mode: now greet */
	lc->ctx = lf_proto->client_new(lc);
    else if (lf_proto->tls_started)
	lf_proto->tls_started(lc, lc->ctx);
}

/* lf_tls_begin - the plaintext phase is over: discard whatever the
 * client sent after STLS/STARTTLS (it is not part of the TLS session:
 * a man in the middle may have put it there) and run the handshake */
static void lf_tls_begin(struct login_client *lc)
{
    size_t junk = conn_input_avail(lc->c);

    if (junk > 0) {
	msg_info("discarding %zu bytes sent before the TLS handshake: client=[%s]:%s", junk,
		 lc->addr, lc->port);
	conn_input_consume(lc->c, junk);
    }
    conn_set_input_max(lc->c, (size_t) *lf_proto->line_limit);
    conn_pause_input(lc->c, false);
    tls_conn_server_start(lc->c, lf_tls, lf_tls_done, lc);
}

void login_starttls(struct login_client *lc)
{
    if (lc->state != LC_COMMAND || lf_tls == NULL || lc->tls)
	msg_panic("login_starttls: not now");
    lc->state = LC_TLS;
    conn_pause_input(lc->c, true);
    lf_timer_restart(lc);
    if (conn_output_pending(lc->c) > 0)
	lc->tls_waiting_flush = true;		/* lf_client_drain goes on */
    else
	lf_tls_begin(lc);
}

/* lf_sasl_input - the client's answer to a challenge */
static void lf_sasl_input(struct login_client *lc)
{
    const char *line;
    size_t len;

    switch (conn_read_line(lc->c, &line, &len)) {
    case CONN_NONE:
    case CONN_BYTES:
	return;
    case CONN_TOOLONG:
	auth_async_cancel(lc->auth);
	lf_result(lc, LOGIN_AUTH_TOOLONG);
	return;
    case CONN_LINE:
	break;
    }
    server_watchdog_reset();
    if (strcmp(line, "*") == 0) {
	auth_async_cancel(lc->auth);
	lf_result(lc, LOGIN_AUTH_CANCELLED);
	return;
    }
    lc->state = LC_AUTH;
    conn_pause_input(lc->c, true);
    auth_async_continue(lc->auth, line, lf_auth_reply, lc);
}

/* lf_client_input - input from a client: the protocol's, or a SASL answer */
static void lf_client_input(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    (void) c;
    switch (lc->state) {
    case LC_COMMAND:
	lf_proto->input(lc, lc->ctx);
	return;
    case LC_SASL:
	lf_sasl_input(lc);
	return;
    case LC_PROXY:
	lf_px_client_input(lc);
	return;
    default:
	return;
    }
}

/* lf_client_drain - output went out: a hand-over may wait for it */
static void lf_client_drain(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    if (lc->state == LC_PROXY) {
	lf_px_client_drain(lc);
	return;
    }
    if (lc->tls_waiting_flush && conn_output_pending(c) == 0) {
	lc->tls_waiting_flush = false;
	lf_tls_begin(lc);
	return;
    }
    if (lc->ho_waiting_flush && conn_output_pending(c) == 0) {
	lc->ho_waiting_flush = false;
	lf_handover_begin(lc);
    }
}

/* lf_trim - give the heap pages that relayed sessions freed back to the
 * system (a TLS session with its buffers is ~60 KiB: a burst of them
 * would otherwise stay resident); at most once a second, from a timer */
static event_timer_id lf_trim_timer;

static void lf_trim_now(void *ctx)
{
    (void) ctx;
    lf_trim_timer = 0;
    (void) malloc_trim(0);
}

/* lf_client_close - the client is gone: forget everything */
static void lf_client_close(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    (void) c;
    if (lc->auth)
	auth_async_cancel(lc->auth);
    lf_lim_release(lc);				/* cancel, disconnect */
    lf_lim_forget_auth(lc);
    if (lc->ho) {
	conn_set_ctx(lc->ho, NULL);
	conn_close(lc->ho, CONN_CLOSE_LOCAL);
    }
    if (lc->pc) {
	conn_set_ctx(lc->pc, NULL);
	conn_close(lc->pc, CONN_CLOSE_LOCAL);
    }
    if (lc->px_fd >= 0)
	(void) close(lc->px_fd);
    if (lc->px_peer_fd >= 0)
	(void) close(lc->px_peer_fd);
    if (lc->timer)
	event_timer_cancel(lc->timer);
    if (lf_proto->client_free && lc->ctx)
	lf_proto->client_free(lc, lc->ctx);
    ipc_list_fini(&lc->ho_reply);
    explicit_bzero(lc->token, sizeof(lc->token));
    if (lc->proxied) {
	if (msg_verbose)
	    msg_info("TLS proxy ended: user=<%s>, client=[%s]:%s", lc->user, lc->addr, lc->port);
	lf_proxies--;
	if (lf_trim_timer == 0)
	    lf_trim_timer = event_timer_add(1000, lf_trim_now, NULL);
    } else {
	lf_clients--;
    }
    mem_free(&lc);
    server_multi_client_end();
}

/* ---------------------------------------------------------------- */
/* The hand-over (login_proto.h), on its own connection              */

static void lf_ho_input(struct conn *c, void *ctx);
static void lf_ho_close(struct conn *c, void *ctx);
static const struct conn_handlers lf_ho_handlers = { lf_ho_input, NULL, lf_ho_close };

/* lf_set_nonblock - the client's descriptor's mode */
static void lf_set_nonblock(int fd, bool on)
{
    (void) sock_set_nonblock(fd, on);
}

/* lf_handover_failed - the client stays here and is told to come back */
static void lf_handover_failed(struct login_client *lc, const char *why)
{
    msg_warn("hand-over of %s from [%s] to %s: %s", lc->user, lc->addr, lf_handover_link, why);
    if (lc->ho) {
	conn_set_ctx(lc->ho, NULL);
	conn_close(lc->ho, CONN_CLOSE_LOCAL);
	lc->ho = NULL;
    }
    if (lc->px_fd >= 0)
	(void) close(lc->px_fd);
    if (lc->px_peer_fd >= 0)
	(void) close(lc->px_peer_fd);
    lc->px_fd = lc->px_peer_fd = -1;
    if (!lc->tls)
	lf_set_nonblock(conn_fd(lc->c), true);
    explicit_bzero(lc->token, sizeof(lc->token));
    lf_result(lc, LOGIN_AUTH_HANDOVER);
    login_client_quit(lc);
}

/* lf_handover_begin - connect to the post-login service */
static void lf_handover_begin(struct login_client *lc)
{
    const char *err;
    int fd;

    if (conn_input_avail(lc->c) > LOGIN_INPUT_MAX) {
	lf_handover_failed(lc, "too much pipelined input");
	return;
    }
    if (lc->tls) {
	int sp[2];

	/* the session's plaintext goes over a socketpair; we stay */
	if (lf_proxies >= var_login_proxy_limit) {
	    msg_warn("%ld TLS sessions relayed: login_proxy_limit reached", lf_proxies);
	    lf_handover_failed(lc, "login_proxy_limit reached");
	    return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
	    lf_handover_failed(lc, strerror(errno));
	    return;
	}
	lc->px_fd = sp[0];
	lc->px_peer_fd = sp[1];
    }
    if ((fd = sock_connect_unix(lf_handover_link, 1000, &err)) < 0) {
	lf_handover_failed(lc, err);
	return;
    }
    ipc_list_init(&lc->ho_reply);
    lc->ho = conn_new(fd, &lf_ho_handlers, lc, 4096);
    lc->ho_state = HO_HELLO;
    conn_set_idle_timeout(lc->ho, (int) (var_login_handover_timeout * 1000));
}

/* ---------------------------------------------------------------- */
/* The TLS proxy: a TLS client's session after its login             */

/* The relay: lc->c (the client, TLS) <-> lc->pc (our end of the
 * socketpair whose other end the post-login daemon got). Bytes read
 * from one side are queued on the other; when that queue passes
 * login_proxy_buffer, reading from the first side stops until the
 * queue drained below CONN_LOW_WATER (conn.h on_drain). The end of one
 * side's input is passed on as a half-close (shutdown SHUT_WR towards
 * the daemon; towards the client, close_notify and close, because a
 * daemon closes its end only when the session is over). */

static void lf_px_input(struct conn *c, void *ctx);
static void lf_px_drain(struct conn *c, void *ctx);
static void lf_px_close(struct conn *c, void *ctx);
static void lf_px_daemon_eof(struct conn *c, void *ctx);
static const struct conn_handlers lf_px_handlers = { lf_px_input, lf_px_drain, lf_px_close };

/* lf_px_relay - move what from holds to to, and push back */
static void lf_px_relay(struct conn *from, struct conn *to)
{
    size_t n = conn_input_avail(from);

    if (n == 0)
	return;
    conn_write(to, conn_input_peek(from), n);
    conn_input_consume(from, n);
    if (conn_output_pending(to) >= (size_t) var_login_proxy_buffer)
	conn_pause_input(from, true);
}

/* lf_px_finish - the session is over: the client gets what is queued,
 * then close_notify, then the close */
static void lf_px_finish(struct login_client *lc)
{
    struct tls_session *t;

    lc->px_closing = true;
    if (conn_output_pending(lc->c) > 0)
	return;					/* lf_px_client_drain goes on */
    if ((t = tls_conn_session(lc->c)) != NULL)
	tls_session_close_notify(t);
    conn_close(lc->c, CONN_CLOSE_LOCAL);
}

/* lf_px_shut_daemon - the client's input ended: once the daemon got all of
 * it, tell the daemon (EOF on its end) */
static void lf_px_shut_daemon(struct login_client *lc)
{
    if (lc->pc != NULL && conn_output_pending(lc->pc) == 0)
	(void) shutdown(conn_fd(lc->pc), SHUT_WR);
}

/* lf_px_client_input - the client's plaintext: to the daemon */
static void lf_px_client_input(struct login_client *lc)
{
    if (lc->pc != NULL)
	lf_px_relay(lc->c, lc->pc);
    else
	conn_input_consume(lc->c, conn_input_avail(lc->c));
}

/* lf_px_client_drain - the client took output: the daemon may send on */
static void lf_px_client_drain(struct login_client *lc)
{
    if (lc->px_closing) {
	if (conn_output_pending(lc->c) == 0)
	    lf_px_finish(lc);
	return;
    }
    if (lc->pc != NULL && !lc->px_daemon_eof)
	conn_pause_input(lc->pc, false);
}

/* lf_px_client_eof - the client sent all it will send (close_notify or
 * a TCP FIN): pass the half-close on, go on relaying the answers */
static void lf_px_client_eof(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    (void) c;
    lc->px_client_eof = true;
    if (lc->px_daemon_eof || lc->pc == NULL) {
	lf_px_finish(lc);
	return;
    }
    lf_px_shut_daemon(lc);
}

/* lf_px_input - the daemon's output: to the client */
static void lf_px_input(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    if (lc == NULL || lc->px_closing) {
	conn_input_consume(c, conn_input_avail(c));
	return;
    }
    lf_px_relay(c, lc->c);
}

/* lf_px_drain - the daemon took input: the client may send on */
static void lf_px_drain(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    if (lc == NULL)
	return;
    if (lc->px_client_eof) {
	if (conn_output_pending(c) == 0)
	    lf_px_shut_daemon(lc);
	return;
    }
    conn_pause_input(lc->c, false);
}

/* lf_px_daemon_eof - the daemon ended the session */
static void lf_px_daemon_eof(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    (void) c;
    if (lc == NULL)
	return;
    lc->px_daemon_eof = true;
    lf_px_finish(lc);
}

/* lf_px_close - our end of the socketpair is gone (error, or the daemon
 * did not read for the write deadline): end the client's session */
static void lf_px_close(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    (void) c;
    if (lc == NULL)
	return;
    lc->pc = NULL;
    lc->px_daemon_eof = true;
    if (!lc->px_closing)
	lf_px_finish(lc);
}

/* lf_proxy_start - the daemon took the session: relay from now on. The
 * client is no longer a client before login (login_client_limit) but a
 * relayed session (login_proxy_limit); the skeleton still counts it, so
 * a reload or max_use lets this process exit only after it ended. */
static void lf_proxy_start(struct login_client *lc)
{
    conn_input_consume(lc->c, lc->ho_input_len);	/* the daemon got those */
    lc->ho_input_len = 0;
    if (lc->timer) {
	event_timer_cancel(lc->timer);
	lc->timer = 0;
    }
    if (lf_proto->client_free && lc->ctx)
	lf_proto->client_free(lc, lc->ctx);
    lc->ctx = NULL;
    explicit_bzero(lc->token, sizeof(lc->token));
    lc->state = LC_PROXY;
    lc->proxied = true;
    lf_clients--;
    lf_proxies++;
    lc->pc = conn_new(lc->px_fd, &lf_px_handlers, lc, PROXY_CHUNK);
    lc->px_fd = -1;
    conn_set_eof_handler(lc->pc, lf_px_daemon_eof);
    conn_set_eof_handler(lc->c, lf_px_client_eof);
    conn_set_idle_timeout(lc->c, 0);		/* the daemon's deadlines rule */
    conn_set_input_max(lc->c, PROXY_CHUNK);
    conn_pause_input(lc->c, false);
}

/* lf_ho_input - the service's announcement, then its answer */
static void lf_ho_input(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;
    const char *err = "";
    char fd_byte = LOGIN_FD_BYTE;
    struct str *msg;
    ssize_t sent;
    long used;

    if (lc == NULL)
	return;
    used = ipc_decode_list(conn_input_peek(c), conn_input_avail(c), &lc->ho_reply, &err);
    if (used < 0) {
	lf_handover_failed(lc, err);
	return;
    }
    if (used == 0)
	return;
    conn_input_consume(c, (size_t) used);
    if (lc->ho_state == HO_HELLO) {
	if (ipc_handshake_check(&lc->ho_reply, LOGIN_PROTO, LOGIN_VERSION, &err) < 0) {
	    lf_handover_failed(lc, err);
	    return;
	}
	/* the receiver may use blocking I/O on it: the file description
	 * is shared, so hand it over in blocking mode (the socketpair's
	 * end of a TLS client is blocking from its creation) */
	if (!lc->tls)
	    lf_set_nonblock(conn_fd(lc->c), false);
	/* the descriptor and the attributes in one sendmsg(2), so that
	 * the daemon never waits between the two */
	lc->ho_input_len = conn_input_avail(lc->c);
	msg = str_new(IPC_MSG_MAX);
	str_appendc_or_panic(msg, fd_byte);	/* carries the descriptor */
	ipc_encode_str(msg, LOGIN_ATTR_TOKEN, lc->token);
	ipc_encode_str(msg, LOGIN_ATTR_CLIENT_ADDR, lc->addr);
	ipc_encode_str(msg, LOGIN_ATTR_CLIENT_PORT, lc->port);
	ipc_encode_attr(msg, LOGIN_ATTR_INPUT, conn_input_peek(lc->c), conn_input_avail(lc->c));
	if (lc->tag[0])
	    ipc_encode_str(msg, LOGIN_ATTR_LOGIN_TAG, lc->tag);
	if (lc->tls)
	    ipc_encode_str(msg, LOGIN_ATTR_TLS, lc->tls_summary);
	ipc_encode_end(msg);
	sent = sock_send_fd_once(conn_fd(c), lc->tls ? lc->px_peer_fd : conn_fd(lc->c),
				 str_cstr(msg), str_len(msg), MSG_DONTWAIT);
	if (sent < 0) {
	    int saved = errno;

	    explicit_bzero(msg->data, msg->len);
	    str_free(&msg);
	    lf_handover_failed(lc, strerror(saved));
	    return;
	}
	if (lc->px_peer_fd >= 0) {
	    (void) close(lc->px_peer_fd);	/* in flight: the daemon's now */
	    lc->px_peer_fd = -1;
	}
	if ((size_t) sent < str_len(msg))
	    conn_write(c, str_cstr(msg) + sent, str_len(msg) - (size_t) sent);
	explicit_bzero(msg->data, msg->len);
	str_free(&msg);
	lc->ho_state = HO_STATUS;
	return;
    }
    {
	const char *status = ipc_list_get(&lc->ho_reply, LOGIN_ATTR_STATUS);

	if (status == NULL || strcmp(status, LOGIN_STAT_OK) != 0) {
	    lf_handover_failed(lc, "hand-over refused");
	    return;
	}
    }
    conn_set_ctx(c, NULL);
    conn_close(c, CONN_CLOSE_LOCAL);
    lc->ho = NULL;
    /* pop3d/imapd has the session now: no longer a connection of this
     * login service (relayed TLS sessions included: docs/login-split.md) */
    lf_lim_release(lc);
    if (lc->tls) {
	msg_info("login: user=<%s>, client=[%s]:%s, TLS proxy", lc->user, lc->addr, lc->port);
	lf_proxy_start(lc);
	return;
    }
    msg_info("login: user=<%s>, client=[%s]:%s", lc->user, lc->addr, lc->port);
    /* the service owns the client now: close our copy quietly */
    lc->state = LC_QUIT;
    conn_close(lc->c, CONN_CLOSE_LOCAL);
}

/* lf_ho_close - the hand-over connection ended before the answer */
static void lf_ho_close(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;
    enum conn_close_reason why = conn_close_reason(c);

    if (lc == NULL)
	return;
    lc->ho = NULL;
    lf_handover_failed(lc, why == CONN_CLOSE_TIMEOUT ? "timeout"
		       : why == CONN_CLOSE_EOF ? "connection closed" : "connection error");
}

/* ---------------------------------------------------------------- */
/* Accepting                                                        */

/* lf_greet - the client may stay: greet it (or, in wrapper mode, run
 * the handshake, after which it is greeted) */
static void lf_greet(struct login_client *lc)
{
    if (lf_proto->tls_wrappermode && *lf_proto->tls_wrappermode) {
	/* implicit TLS: the greeting comes after the handshake */
	lc->state = LC_TLS;
	conn_pause_input(lc->c, false);
	tls_conn_server_start(lc->c, lf_tls, lf_tls_done, lc);
	return;
    }
    lc->state = LC_COMMAND;
    lc->ctx = lf_proto->client_new(lc);
    /* what the client sent before the greeting is offered now */
    conn_pause_input(lc->c, true);
    conn_pause_input(lc->c, false);
}

/* ---------------------------------------------------------------- */
/* Client limits (limits_client.h, limits_proto.h): client-limits
 * counts, this process compares with its own parameters (so master.cf
 * -o gives each service its limits) and exempts
 * login_client_event_limit_exceptions (counted, never refused). If
 * client-limits cannot answer, the client is served (fail open; the
 * limits client logs a rate-limited warning). */

/* lf_lim_release - the client is not (or no longer) a connection of
 * this process: drop a pending request and send the disconnect owed */
static void lf_lim_release(struct login_client *lc)
{
    if (lc->lim_req != NULL) {
	limits_async_cancel(lc->lim_req);
	lc->lim_req = NULL;
    }
    if (lc->lim_connected) {
	lc->lim_connected = false;
	limits_async_send(LIMITS_REQ_DISCONNECT, server_service_name(), lc->addr);
    }
}

/* lf_lim_forget_auth - the login attempt that waited for the check */
static void lf_lim_forget_auth(struct login_client *lc)
{
    if (lc->lim_initial != NULL) {
	explicit_bzero(lc->lim_initial->data, lc->lim_initial->len);
	str_free(&lc->lim_initial);
    }
    mem_free(&lc->lim_mech);
}

/* lf_lim_log - one line per refusal, naming the limit */
static void lf_lim_log(const struct login_client *lc, const char *what, long value,
		       const char *param, long limit)
{
    msg_warn("%s limit exceeded: %ld from [%s] for service %s (%s = %ld)", what, value,
	     lc->addr, server_service_name(), param, limit);
}

/* lf_lim_refuse - over a connection or TLS limit: reply, close. In
 * wrapper mode a client refused at connect speaks TLS: the handshake
 * runs first (as Postfix's smtpd answers over TLS on port 465), and
 * the reply follows it (lf_tls_done). */
static void lf_lim_refuse(struct login_client *lc, const char *reply)
{
    if (!lc->tls && lf_proto->tls_wrappermode && *lf_proto->tls_wrappermode) {
	lc->lim_refusal = reply ? reply : "";
	lf_greet(lc);
	return;
    }
    if (reply != NULL)
	conn_puts(lc->c, reply);
    login_client_quit(lc);
}

/* lf_lim_answer - client-limits answered (or could not) */
static void lf_lim_answer(const struct limits_counts *n, const char *error, void *ctx)
{
    struct login_client *lc = ctx;
    enum lim_what what = lc->lim_what;
    long lim;

    lc->lim_req = NULL;
    if (error != NULL && what == LIM_CONNECT) {
	/* the connect failed: never sent, or its connection to
	 * client-limits closed, which released it: nothing to take back */
	lc->lim_connected = false;
    }
    if (error == NULL) {
	switch (what) {
	case LIM_CONNECT:
	    if ((lim = var_login_client_connection_count_limit) > 0 && n->count > lim) {
		lf_lim_log(lc, "Connection count", n->count,
			   "login_client_connection_count_limit", lim);
		lf_lim_refuse(lc, lf_proto->reply_too_many_connections);
		return;
	    }
	    if ((lim = var_login_client_connection_rate_limit) > 0 && n->conn_rate > lim) {
		lf_lim_log(lc, "Connection rate", n->conn_rate,
			   "login_client_connection_rate_limit", lim);
		lf_lim_refuse(lc, lf_proto->reply_too_many_connections);
		return;
	    }
	    break;
	case LIM_NEWTLS:
	    if ((lim = var_login_client_new_tls_session_rate_limit) > 0 && n->tls_rate > lim) {
		lf_lim_log(lc, "New TLS session rate", n->tls_rate,
			   "login_client_new_tls_session_rate_limit", lim);
		lf_lim_refuse(lc, lf_proto->reply_too_many_tls_sessions);
		return;
	    }
	    break;
	case LIM_AUTH:
	    /* lim failed logins in this time unit: no further attempt */
	    if ((lim = var_login_client_auth_rate_limit) > 0 && n->auth_rate >= lim) {
		lf_lim_log(lc, "Failed login rate", n->auth_rate,
			   "login_client_auth_rate_limit", lim);
		lf_lim_forget_auth(lc);
		lf_back_to_commands(lc);
		lf_proto->auth_result(lc, lc->ctx, LOGIN_AUTH_LIMIT);
		login_client_quit(lc);
		return;
	    }
	    break;
	}
    }
    switch (what) {
    case LIM_CONNECT:
	lf_greet(lc);
	return;
    case LIM_NEWTLS:
	conn_pause_input(lc->c, false);
	lf_tls_go_on(lc);
	return;
    case LIM_AUTH:
	lf_sasl_begin(lc, lc->lim_mech, str_cstr(lc->lim_initial));
	lf_lim_forget_auth(lc);
	return;
    }
}

/* lf_lim_wait - ask client-limits; the client waits for the answer */
static void lf_lim_wait(struct login_client *lc, enum lim_what what, const char *request)
{
    lc->state = LC_LIMITS;
    lc->lim_what = what;
    if (strcmp(request, LIMITS_REQ_CONNECT) == 0)
	lc->lim_connected = true;	/* counted even if we never hear */
    lc->lim_req = limits_async_call(request, server_service_name(), lc->addr, lf_lim_answer, lc);
}

/* lf_accept - a new client from the skeleton */
static void lf_accept(int fd)
{
    struct login_client *lc;

    if (lf_clients >= var_login_client_limit) {
	if (lf_proto->reply_busy)
	    (void) send(fd, lf_proto->reply_busy, strlen(lf_proto->reply_busy),
			MSG_DONTWAIT | MSG_NOSIGNAL);
	msg_warn("%ld clients before login: login_client_limit reached -- refusing a client",
		 lf_clients);
	(void) close(fd);
	server_multi_client_end();
	return;
    }
    lc = mem_zalloc(sizeof(*lc));
    lf_clients++;
    if (!server_multi_client_name(lc->addr, sizeof(lc->addr), lc->port, sizeof(lc->port)))
	str_copy_out_or_panic(lc->addr, sizeof(lc->addr), "unknown");
    if (msg_verbose)
	msg_info("connect from [%s]:%s", lc->addr, lc->port);
    lc->px_fd = lc->px_peer_fd = -1;
    lc->c = conn_new(fd, &lf_client_handlers, lc, (size_t) *lf_proto->line_limit);
    lf_timer_restart(lc);
    /* the client limits: count the connection; when a limit applies to
     * this client, it gets nothing (no greeting, no handshake) before
     * client-limits answered */
    lc->lim_exempt = limits_client_exempt(var_login_client_event_limit_exceptions, lc->addr);
    if (lc->lim_exempt || (var_login_client_connection_count_limit <= 0
			   && var_login_client_connection_rate_limit <= 0)) {
	limits_async_send(LIMITS_REQ_CONNECT, server_service_name(), lc->addr);
	lc->lim_connected = true;
	lf_greet(lc);
	return;
    }
    /* wait with input paused in wrapper mode (the ClientHello must stay
     * unread for the handshake); otherwise read on, so that a client
     * that leaves meanwhile is noticed and cleaned up at once */
    if (lf_proto->tls_wrappermode && *lf_proto->tls_wrappermode)
	conn_pause_input(lc->c, true);
    lf_lim_wait(lc, LIM_CONNECT, LIMITS_REQ_CONNECT);
}

int login_front_main(int argc, char **argv, const struct login_protocol *proto)
{
    static struct server_spec spec;

    if (proto == NULL || proto->input == NULL || proto->client_new == NULL
	|| proto->sasl_challenge == NULL || proto->auth_result == NULL)
	msg_panic("login_front_main: incomplete protocol");
    lf_proto = proto;
    spec.kind = SERVER_MULTI;
    spec.name = proto->name;
    spec.pre_init = lf_pre_init;
    spec.multi_accept = lf_accept;
    /* login_max_use, not max_use: a process serving many clients at
     * once would reach 100 several times a second under load */
    spec.max_use = &var_login_max_use;
    return server_main(argc, argv, &spec);
}
