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
 * (pop3d_session.c). A process that dropped to a user cannot become
 * anybody else: it exits after its session and master starts a fresh
 * one. */

/* system */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
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

/* pop3d_login - redeem, drop, open, lock, serve */
static void pop3d_login(struct stream *client, const char *token, const char *addr)
{
    struct auth_client *ac;
    struct auth_redeem_reply rr;
    struct store_mailbox *mb = NULL;
    struct str *user = NULL, *location = NULL;
    const char *err;
    long uid, gid;

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

    /* From here on this process belongs to the user: it serves nobody
     * else afterwards. */
    server_request_exit();
    if (!priv_is_root() && (uid_t) uid != getuid()) {
	/* started without root (master.cf unpriv y, or by hand): this
	 * process cannot become the mailbox's owner, and must not serve
	 * it as somebody else */
	msg_warn("user=<%s>: mailbox uid %ld, but pop3d runs as uid %ld, not root "
		 "(master.cf: pop3d unix - n n ...)", str_cstr(user), uid, (long) getuid());
	pop3d_refuse(client, POP3_CODE_SYS_PERM, "Mailbox not available");
	goto out;
    }
    if (uid <= 0 || gid <= 0 || priv_drop_ids((uid_t) uid, (gid_t) gid, (gid_t) -1, NULL, &err) < 0) {
	msg_warn("user=<%s>: cannot switch to uid %ld gid %ld: %s", str_cstr(user), uid, gid,
		 uid <= 0 || gid <= 0 ? "refusing a privileged id" : err);
	pop3d_refuse(client, POP3_CODE_SYS_PERM, "Mailbox not available");
	goto out;
    }
    if (chdir("/") < 0)
	msg_warn("chdir /: %m");

    if ((mb = store_open(str_cstr(location), NULL, STORE_READ_WRITE | STORE_CREATE, &err)) == NULL) {
	msg_warn("user=<%s>: %s", str_cstr(user), err);
	pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Cannot open the mailbox");
	goto out;
    }
    if (store_session_lock(mb, "pop3", &err) < 0) {
	if (errno == EWOULDBLOCK) {
	    msg_info("user=<%s>, client=[%s]: mailbox in use by another POP3 session",
		     str_cstr(user), addr);
	    pop3d_refuse(client, POP3_CODE_IN_USE, "Mailbox is in use by another POP3 session");
	} else {
	    msg_warn("user=<%s>: %s", str_cstr(user), err);
	    pop3d_refuse(client, POP3_CODE_SYS_TEMP, "Cannot lock the mailbox");
	}
	goto out;
    }
    msg_info("session: user=<%s>, client=[%s], %zu messages", str_cstr(user), addr, store_count(mb));
    pop3d_session(client, mb, str_cstr(user), addr);

  out:
    store_close(&mb);
    str_free(&user);
    str_free(&location);
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
    pop3d_login(client, str_cstr(token), str_cstr(addr));
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
    };

    return server_main(argc, argv, &spec);
}
