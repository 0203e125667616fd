/* main.c - pop3d: the post-login half of the POP3 server.
 *
 * A SINGLE server on a unix socket (master.cf "pop3d unix - n n"), which
 * starts as root. pop3d-login connects after a successful login and
 * passes the client's connection, auth's one-time token and any
 * pipelined input (login_proto.h). pop3d learns who the user is only by
 * redeeming the token with auth (a forged, replayed or expired token
 * gets "-ERR [AUTH]" and nothing else), drops fully to the mailbox's
 * uid/gid (privs.h: real and effective ids, no supplementary groups),
 * opens the Maildir with the store library, takes the one-POP3-session
 * lock ([IN-USE] when another session holds it) and serves the session
 * (pop3d_session.c).
 *
 * The privilege drop happens in a child: the root process redeems the
 * token, forks, and takes the next hand-over at once, while the child
 * becomes the user for good and serves the session (no exec per login;
 * local-delivery's per-recipient child is the model). The parent keeps
 * at most pop3d_session_limit children, waits for them before it exits
 * (max_use, max_idle, reload) and passes SIGTERM on to them; a child
 * dies with its parent (PR_SET_PDEATHSIG). */

/* system */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "privs.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "auth_client.h"
#include "config.h"
#include "login_proto.h"
#include "mail_proto.h"
#include "master_proto.h"
#include "pop3_cmd.h"
#include "server.h"
#include "store.h"

/* pop3d */
#include "pop3d.h"

/* Pipelined input that pop3-login read before the hand-over: the client
 * stream reads it before the socket. */
struct pre_input {
    int fd;
    const char *data;
    size_t len, off;
};

/* pre_read - the handed-over bytes first, then the socket */
static ssize_t pre_read(void *ctx, void *buf, size_t len)
{
    struct pre_input *pi = ctx;

    if (pi->off < pi->len) {
	size_t n = pi->len - pi->off < len ? pi->len - pi->off : len;

	memcpy(buf, pi->data + pi->off, n);
	pi->off += n;
	return (ssize_t) n;
    }
    return recv(pi->fd, buf, len, MSG_DONTWAIT);
}

/* pre_write - straight to the socket */
static ssize_t pre_write(void *ctx, const void *buf, size_t len)
{
    struct pre_input *pi = ctx;

    return send(pi->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* pre_pending - handed-over bytes not read yet */
static size_t pre_pending(void *ctx)
{
    struct pre_input *pi = ctx;

    return pi->len - pi->off;
}

static const struct stream_io pre_io = {
    .read = pre_read,
    .write = pre_write,
    .pending = pre_pending,
};

/* pop3d_refuse - a last "-ERR" to the client */
static void pop3d_refuse(struct stream *client, const char *code, const char *text)
{
    pop3_err(client, code, "%s", text);
    (void) stream_flush(client);
}

#define POP3D_SESSIONS_MAX	1000	/* bound of pop3d_session_limit */

/* The session children of this process. */
static pid_t pop3d_children[POP3D_SESSIONS_MAX];
static volatile int pop3d_nchildren;

/* pop3d_reap - forget the children that have exited (block: wait for
 * all of them) */
static void pop3d_reap(bool block)
{
    pid_t pid;

    while (pop3d_nchildren > 0 && (pid = waitpid(-1, NULL, block ? 0 : WNOHANG)) != 0) {
	if (pid < 0) {
	    if (errno == EINTR)
		continue;
	    pop3d_nchildren = 0;		/* ECHILD: none left */
	    break;
	}
	for (int i = 0; i < pop3d_nchildren; i++) {
	    if (pop3d_children[i] == pid) {
		pop3d_children[i] = pop3d_children[pop3d_nchildren - 1];
		pop3d_nchildren--;
		break;
	    }
	}
    }
}

/* pop3d_on_exit - the sessions end before the process does */
static void pop3d_on_exit(void)
{
    pop3d_reap(true);
}

/* pop3d_on_terminate - SIGTERM (master stops): the sessions too
 * (async-signal-safe: kill only) */
static void pop3d_on_terminate(void)
{
    for (int i = 0; i < pop3d_nchildren; i++)
	(void) kill(pop3d_children[i], SIGTERM);
}

/* pop3d_user - the session child: become the user for good, open and
 * lock the mailbox, serve; never returns */
static _Noreturn void pop3d_user(struct stream *client, const char *user, const char *location,
				 long uid, long gid, const char *addr);

/* pop3d_login - redeem, then serve the session in a child */
static void pop3d_login(struct stream *client, int login_fd, const char *token, const char *addr)
{
    struct auth_client *ac;
    struct auth_redeem_reply rr;
    struct str *user = NULL, *location = NULL;
    const char *err;
    long uid, gid;
    pid_t pid, parent = getpid();

    /* Who is it? Only auth can say. */
    if ((ac = auth_client_open(AUTH_SOCKET, &err)) == NULL) {
	msg_warn("auth service: %s", err);
	pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Authentication service unavailable, try again later");
	return;
    }
    if (auth_client_redeem(ac, token, AUTH_SERVICE_POP3, &rr, &err) < 0) {
	msg_warn("auth service: %s", err);
	auth_client_close(&ac);
	pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Authentication service unavailable, try again later");
	return;
    }
    if (strcmp(rr.status, AUTH_STAT_OK) != 0) {
	msg_warn("client=[%s]: token refused by auth (forged, replayed or expired)", addr);
	auth_client_close(&ac);
	pop3d_refuse(client, POP3_CODE_AUTH, "Authentication failed");
	return;
    }
    user = str_new(1024);
    location = str_new(4096);
    if (!str_try_set(user, rr.user) || !str_try_set(location, rr.mail_location)
	|| *rr.mail_location != '/') {
	msg_warn("client=[%s]: bad redeem reply for user <%.100s>", addr, rr.user);
	auth_client_close(&ac);
	pop3d_refuse(client, POP3_CODE_SYS_PERM, "Mailbox not available");
	goto out;
    }
    uid = rr.uid;
    gid = rr.gid;
    auth_client_close(&ac);

    pop3d_reap(false);
    if (server_stdin_mode()) {
	/* -S (tests by hand): no child, this process becomes the user */
	pop3d_user(client, str_cstr(user), str_cstr(location), uid, gid, addr);
    }
    if (pop3d_nchildren >= var_pop3d_session_limit) {
	msg_warn("user=<%s>, client=[%s]: pop3d_session_limit (%ld) reached",
		 str_cstr(user), addr, var_pop3d_session_limit);
	pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Too many sessions, try again later");
	goto out;
    }
    switch ((pid = fork())) {
    case -1:
	msg_warn("fork: %m");
	pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Mail service unavailable, try again later");
	goto out;
    case 0:
	/* The child: nothing of the skeleton's but the log. */
	pop3d_nchildren = 0;
	(void) signal(SIGHUP, SIG_IGN);	/* a reload lets sessions finish */
	(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
	    _exit(0);
	(void) close(MASTER_STATUS_FD);
	(void) close(MASTER_LISTEN_FD);
	(void) close(login_fd);
	pop3d_user(client, str_cstr(user), str_cstr(location), uid, gid, addr);
    default:
	pop3d_children[pop3d_nchildren++] = pid;
	break;
    }
  out:
    str_free(&user);
    str_free(&location);
}

/* pop3d_user - the session child (see above) */
static _Noreturn void pop3d_user(struct stream *client, const char *user, const char *location,
				 long uid, long gid, const char *addr)
{
    struct store_mailbox *mb = NULL;
    const char *err;

    if (!priv_is_root() && (uid_t) uid != getuid()) {
	/* started without root (master.cf unpriv y, or by hand): this
	 * process cannot become the mailbox's owner, and must not serve
	 * it as somebody else */
	msg_warn("user=<%s>: mailbox uid %ld, but pop3d runs as uid %ld, not root "
		 "(master.cf: pop3d unix - n n ...)", user, uid, (long) getuid());
	pop3d_refuse(client, POP3_CODE_SYS_PERM, "Mailbox not available");
	goto done;
    }
    if (uid <= 0 || gid <= 0 || priv_drop_ids((uid_t) uid, (gid_t) gid, (gid_t) -1, NULL, &err) < 0) {
	msg_warn("user=<%s>: cannot switch to uid %ld gid %ld: %s", user, uid, gid,
		 uid <= 0 || gid <= 0 ? "refusing a privileged id" : err);
	pop3d_refuse(client, POP3_CODE_SYS_PERM, "Mailbox not available");
	goto done;
    }
    if (chdir("/") < 0)
	msg_warn("chdir /: %m");

    if ((mb = store_open(location, NULL, STORE_READ_WRITE | STORE_CREATE, &err)) == NULL) {
	msg_warn("user=<%s>: %s", user, err);
	pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Cannot open the mailbox");
	goto done;
    }
    if (store_session_lock(mb, "pop3", &err) < 0) {
	if (errno == EWOULDBLOCK) {
	    msg_info("user=<%s>, client=[%s]: mailbox in use by another POP3 session",
		     user, addr);
	    pop3d_refuse(client, POP3_CODE_IN_USE, "Mailbox is in use by another POP3 session");
	} else {
	    msg_warn("user=<%s>: %s", user, err);
	    pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Cannot lock the mailbox");
	}
	goto done;
    }
    msg_info("session: user=<%s>, client=[%s], %zu messages", user, addr, store_count(mb));
    pop3d_session(client, mb, user, addr);

  done:
    store_close(&mb);
    (void) stream_close(&client);
    _exit(0);
}

/* pop3d_service - one hand-over from pop3d-login */
static void pop3d_service(struct stream *login)
{
    struct str *token = str_new(LOGIN_TOKEN_MAX);
    struct str *addr = str_new(64);
    struct str *port = str_new(16);
    struct str *input = str_new(LOGIN_INPUT_MAX);
    struct pre_input pi;
    struct stream *client;
    const char *err;
    int fd;

    if (login_handover_recv(login, &fd, token, addr, port, input, &err) < 0) {
	msg_warn("hand-over from the login process: %s", err);
	goto out;
    }
    client = stream_open(fd);
    if (str_len(input) > 0) {
	pi.fd = fd;
	pi.data = str_cstr(input);
	pi.len = str_len(input);
	pi.off = 0;
	stream_set_io(client, &pre_io, &pi);
    }
    stream_set_timeout(client, (int) (var_ipc_timeout * 1000));
    pop3d_login(client, stream_fd(login), str_cstr(token), str_cstr(addr));
    (void) stream_close(&client);
  out:
    str_free(&token);
    str_free(&addr);
    str_free(&port);
    str_free(&input);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "pop3d",
	.single_service = pop3d_service,
	.on_exit = pop3d_on_exit,
	.on_terminate = pop3d_on_terminate,
    };

    return server_main(argc, argv, &spec);
}
