/* login_front.c - the event-driven pre-authentication engine of the
 * login processes (login_front.h): the chroot set-up and privilege drop,
 * the client table with its limits, SASL relaying through auth_async,
 * and the non-blocking hand-over to the post-login service. */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "config.h"
#include "login_front.h"
#include "login_proto.h"
#include "mail_proto.h"
#include "server.h"

#define LOGIN_DIR	"login"		/* under queue_directory: the chroot */
#define LOGIN_AUTH_LINK	"auth"		/* the auth socket, inside it */
#define SASL_LINE_MAX	(AUTH_RESPONSE_MAX + 2)	/* a response and its CRLF */
#define SASL_ROUNDS_MAX	10		/* no mechanism takes more */

enum lc_state {
    LC_COMMAND,			/* the protocol reads commands */
    LC_AUTH,			/* waiting for auth (input paused) */
    LC_SASL,			/* waiting for the client's SASL answer */
    LC_HANDOVER,		/* passing the client on (input paused) */
    LC_QUIT,			/* closing after the output */
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
};

static const struct login_protocol *lf_proto;
static char lf_handover_link[NAME_MAX + 1];
static long lf_clients;

static void lf_client_input(struct conn *c, void *ctx);
static void lf_client_drain(struct conn *c, void *ctx);
static void lf_client_close(struct conn *c, void *ctx);
static const struct conn_handlers lf_client_handlers = {
    lf_client_input, lf_client_drain, lf_client_close,
};
static void lf_handover_begin(struct login_client *lc);

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
static void lf_link_socket(int dfd, const char *src, const char *name, gid_t login_gid)
{
    char tmp[NAME_MAX + 1];
    struct stat st;

    fmt_buf_or_panic(tmp, sizeof(tmp), ".%s.%ld", name, (long) getpid());
    if (lstat(src, &st) < 0 || !S_ISSOCK(st.st_mode)) {
	msg_warn("%s is not a socket (is its service in master.cf?) -- "
		 "logins will fail until it is", src);
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
    lf_link_socket(dfd, AUTH_SOCKET, LOGIN_AUTH_LINK, login_gid);
    fmt_buf_or_panic(src, sizeof(src), "private/%s", lf_handover_link);
    lf_link_socket(dfd, src, lf_handover_link, login_gid);

    /* The drop: chroot to the directory, become login_user (no
     * supplementary group). Not root (the sandbox): just go there, so
     * that the same relative socket names work. */
    if (fchdir(dfd) < 0)
	msg_fatal("chdir %s/%s: %m", var_queue_directory, LOGIN_DIR);
    (void) close(dfd);
    if (priv_is_root() && priv_drop(var_login_user, (gid_t) -1, ".", &err) < 0)
	msg_fatal("privilege drop to %s: %s", var_login_user, err);
    auth_async_init(LOGIN_AUTH_LINK, (int) var_login_auth_connections);
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
    if (lc->state == LC_AUTH || lc->state == LC_HANDOVER) {
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
    if (r == LOGIN_AUTH_FAIL)
	lc->failures++;
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

void login_sasl_start(struct login_client *lc, const char *mechanism, const char *initial,
		      const char *tag)
{
    struct auth_request req;

    if (lc->state != LC_COMMAND)
	msg_panic("login_sasl_start: not reading commands");
    if (!str_try_copy_out(lc->tag, sizeof(lc->tag), tag ? tag : ""))
	msg_panic("login_sasl_start: tag over %d bytes", LOGIN_TAG_MAX);
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
    default:
	return;
    }
}

/* lf_client_drain - output went out: a hand-over may wait for it */
static void lf_client_drain(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    if (lc->ho_waiting_flush && conn_output_pending(c) == 0) {
	lc->ho_waiting_flush = false;
	lf_handover_begin(lc);
    }
}

/* lf_client_close - the client is gone: forget everything */
static void lf_client_close(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;

    (void) c;
    if (lc->auth)
	auth_async_cancel(lc->auth);
    if (lc->ho) {
	conn_set_ctx(lc->ho, NULL);
	conn_close(lc->ho, CONN_CLOSE_LOCAL);
    }
    if (lc->timer)
	event_timer_cancel(lc->timer);
    if (lf_proto->client_free)
	lf_proto->client_free(lc, lc->ctx);
    ipc_list_fini(&lc->ho_reply);
    explicit_bzero(lc->token, sizeof(lc->token));
    mem_free(&lc);
    lf_clients--;
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
    if ((fd = sock_connect_unix(lf_handover_link, 1000, &err)) < 0) {
	lf_handover_failed(lc, err);
	return;
    }
    ipc_list_init(&lc->ho_reply);
    lc->ho = conn_new(fd, &lf_ho_handlers, lc, 4096);
    lc->ho_state = HO_HELLO;
    conn_set_idle_timeout(lc->ho, (int) (var_login_handover_timeout * 1000));
}

/* lf_ho_input - the service's announcement, then its answer */
static void lf_ho_input(struct conn *c, void *ctx)
{
    struct login_client *lc = ctx;
    const char *err = "";
    char fd_byte = LOGIN_FD_BYTE;
    struct str *msg;
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
	 * is shared, so hand it over in blocking mode */
	lf_set_nonblock(conn_fd(lc->c), false);
	if (sock_send_fd(conn_fd(c), conn_fd(lc->c), &fd_byte, 1) < 0) {
	    lf_handover_failed(lc, strerror(errno));
	    return;
	}
	msg = str_new(IPC_MSG_MAX);
	ipc_encode_str(msg, LOGIN_ATTR_TOKEN, lc->token);
	ipc_encode_str(msg, LOGIN_ATTR_CLIENT_ADDR, lc->addr);
	ipc_encode_str(msg, LOGIN_ATTR_CLIENT_PORT, lc->port);
	ipc_encode_attr(msg, LOGIN_ATTR_INPUT, conn_input_peek(lc->c), conn_input_avail(lc->c));
	if (lc->tag[0])
	    ipc_encode_str(msg, LOGIN_ATTR_LOGIN_TAG, lc->tag);
	ipc_encode_end(msg);
	conn_write(c, str_cstr(msg), str_len(msg));
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
    msg_info("login: user=<%s>, client=[%s]:%s", lc->user, lc->addr, lc->port);
    /* the service owns the client now: close our copy quietly */
    conn_set_ctx(c, NULL);
    conn_close(c, CONN_CLOSE_LOCAL);
    lc->ho = NULL;
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
    if (!sock_peer_name(fd, lc->addr, sizeof(lc->addr), lc->port, sizeof(lc->port)))
	str_copy_out_or_panic(lc->addr, sizeof(lc->addr), "unknown");
    if (msg_verbose)
	msg_info("connect from [%s]:%s", lc->addr, lc->port);
    lc->c = conn_new(fd, &lf_client_handlers, lc, (size_t) *lf_proto->line_limit);
    lc->state = LC_COMMAND;
    lf_timer_restart(lc);
    lc->ctx = lf_proto->client_new(lc);
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
    return server_main(argc, argv, &spec);
}
