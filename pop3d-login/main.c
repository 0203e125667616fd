/* main.c - pop3d-login: the pre-authentication half of the POP3 server.
 *
 * A SINGLE server on the pop3 port. Each process runs as login_user,
 * chrooted to $queue_directory/login, which holds nothing but hard links
 * to two sockets: auth (to check credentials) and the post-login pop3d
 * service (to hand the client over). It speaks the AUTHORIZATION state
 * of RFC 1939 (greeting, CAPA, USER/PASS, AUTH of RFC 5034, QUIT) and
 * reads no mailbox: when auth accepts a login it answers with a one-time
 * token, and this process passes the client's connection, the token and
 * any pipelined input to pop3d (login_proto.h), closes its copy and
 * takes the next client. pop3d redeems the token with auth and answers
 * the client. The trust argument is docs/login-split.md. */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "base64.h"
#include "msg.h"
#include "privs.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "auth_client.h"
#include "config.h"
#include "login_proto.h"
#include "mail_proto.h"
#include "pop3_cmd.h"
#include "server.h"

#define LOGIN_DIR	"login"		/* under queue_directory: the chroot */
#define LOGIN_AUTH_LINK	"auth"		/* the auth socket, inside it */
#define SASL_LINE_MAX	(AUTH_RESPONSE_MAX + 2)	/* a response and its CRLF */

/* The pop3d socket's name inside the chroot (pop3d_login_service). */
static char login_pop3d_link[NAME_MAX + 1];

/* One client. */
struct login_session {
    struct stream *client;
    struct auth_client *ac;		/* opened at the first attempt */
    char addr[64];
    char port[16];
    struct str *user;			/* from USER, for PASS */
    bool have_user;
    int failures;
    bool done;				/* handed over or told to go */
};

/* ---------------------------------------------------------------- */
/* Start-up: the chroot and its two sockets                         */

/* login_link_socket - (re)make the hard link NAME in the chroot
 * directory dfd to the socket src, atomically (link to a temporary
 * name, rename over); as root also give the socket's group to the login
 * uid's group with mode 0660, so that the login uid can connect through
 * the link. private/ itself stays closed (0700): only this link reaches
 * the socket. Everything happens relative to dfd, and the new link is
 * checked to be a socket before its inode is changed, so a name swapped
 * by a less trusted user (queue_directory belongs to the mail owner)
 * never makes root touch another file. */
static void login_link_socket(int dfd, const char *src, const char *name, gid_t login_gid)
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

/* login_pre_init - make the chroot directory and its links, then drop
 * to login_user inside it (before any byte from a client is read) */
static void login_pre_init(int argc, char **argv)
{
    char src[PATH_MAX];
    const char *err;
    struct stat st;
    uid_t login_uid = (uid_t) -1;
    gid_t login_gid = (gid_t) -1;
    int dfd;

    (void) argc;
    (void) argv;
    if (*var_pop3d_login_service == 0 || strchr(var_pop3d_login_service, '/') != NULL
	|| var_pop3d_login_service[0] == '.'
	|| !str_try_copy_out(login_pop3d_link, sizeof(login_pop3d_link), var_pop3d_login_service))
	msg_fatal("bad pop3d_login_service: \"%.100s\"", var_pop3d_login_service);
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
    login_link_socket(dfd, AUTH_SOCKET, LOGIN_AUTH_LINK, login_gid);
    fmt_buf_or_panic(src, sizeof(src), "private/%s", login_pop3d_link);
    login_link_socket(dfd, src, login_pop3d_link, login_gid);

    /* The drop: chroot to the directory, become login_user (no
     * supplementary group). Not root (the sandbox): just go there, so
     * that the same relative socket names work. */
    if (fchdir(dfd) < 0)
	msg_fatal("chdir %s/%s: %m", var_queue_directory, LOGIN_DIR);
    (void) close(dfd);
    if (priv_is_root() && priv_drop(var_login_user, (gid_t) -1, ".", &err) < 0)
	msg_fatal("privilege drop to %s: %s", var_login_user, err);
}

/* ---------------------------------------------------------------- */
/* Commands                                                         */

/* login_auth_open - the connection to auth, opened once per client */
static bool login_auth_open(struct login_session *ls)
{
    const char *err;

    if (ls->ac)
	return true;
    if ((ls->ac = auth_client_open(LOGIN_AUTH_LINK, &err)) == NULL) {
	msg_warn("auth service: %s", err);
	return false;
    }
    return true;
}

/* login_auth_trouble - auth could not be asked: the client may retry */
static void login_auth_trouble(struct login_session *ls, const char *err)
{
    if (err)
	msg_warn("auth service: %s", err);
    auth_client_close(&ls->ac);
    pop3_err(ls->client, POP3_CODE_SYS_TEMP, "Authentication service unavailable, try again later");
}

/* login_handover - pass the client to pop3d with its token */
static void login_handover(struct login_session *ls, const char *user, const char *token)
{
    struct login_handover h;
    char input[LOGIN_INPUT_MAX];
    size_t n = stream_buffered_here(ls->client);
    const char *err;
    char path[NAME_MAX + 1];
    ssize_t got = 0;

    /* Pipelined commands after the login travel with the connection. */
    if (n > sizeof(input)) {
	pop3_err(ls->client, NULL, "Too much pipelined input");
	ls->done = true;
	return;
    }
    if (n > 0 && (got = stream_read(ls->client, input, n)) != (ssize_t) n) {
	ls->done = true;
	return;
    }
    memset(&h, 0, sizeof(h));
    h.token = token;
    h.client_address = ls->addr;
    h.client_port = ls->port;
    h.input = input;
    h.input_len = (size_t) got;
    str_copy_out_or_panic(path, sizeof(path), login_pop3d_link);
    if (stream_flush(ls->client) < 0) {
	ls->done = true;
	return;
    }
    if (login_handover_send(path, (int) (var_ipc_timeout * 1000), stream_fd(ls->client), &h, &err) < 0) {
	msg_warn("hand-over of %s from [%s] to %s: %s", user, ls->addr, path, err);
	pop3_err(ls->client, POP3_CODE_SYS_TEMP, "Mail service unavailable, try again later");
	ls->done = true;
	return;
    }
    msg_info("login: user=<%s>, client=[%s]:%s", user, ls->addr, ls->port);
    ls->done = true;
}

/* login_finish - act on auth's last answer to an exchange */
static void login_finish(struct login_session *ls, const struct auth_reply *reply)
{
    if (strcmp(reply->status, AUTH_STAT_OK) == 0) {
	login_handover(ls, reply->user, reply->token);
	return;
    }
    if (strcmp(reply->status, AUTH_STAT_TEMPFAIL) == 0) {
	msg_info("authentication refused for now: client=[%s]:%s", ls->addr, ls->port);
	pop3_err(ls->client, POP3_CODE_SYS_TEMP, "Too many failed logins, try again later");
	ls->done = true;
	return;
    }
    ls->failures++;
    msg_info("authentication failed: client=[%s]:%s", ls->addr, ls->port);
    pop3_err(ls->client, POP3_CODE_AUTH, "Authentication failed");
    if (ls->failures >= var_pop3d_login_failure_limit) {
	pop3_err(ls->client, NULL, "Too many failed logins, closing connection");
	ls->done = true;
    }
}

/* login_exchange - run one SASL exchange with auth, relaying challenges
 * to the client ("+ challenge") and its answers back; "*" cancels */
static void login_exchange(struct login_session *ls, const char *mech, const char *initial)
{
    struct auth_request req;
    struct auth_reply reply;
    struct str *line;
    const char *err;

    if (!login_auth_open(ls)) {
	login_auth_trouble(ls, NULL);
	return;
    }
    memset(&req, 0, sizeof(req));
    req.service = AUTH_SERVICE_POP3;
    req.mechanism = mech;
    req.client_address = ls->addr;
    req.response = initial;
    if (auth_client_start(ls->ac, &req, &reply, &err) < 0) {
	login_auth_trouble(ls, err);
	return;
    }
    line = str_new(SASL_LINE_MAX);
    for (int round = 0; strcmp(reply.status, AUTH_STAT_CONTINUE) == 0; round++) {
	enum pop3_read r;

	if (round >= 10) {			/* no mechanism takes more */
	    pop3_err(ls->client, NULL, "Too many authentication rounds");
	    ls->done = true;
	    goto out;
	}
	(void) stream_printf(ls->client, "+ %s\r\n", reply.challenge ? reply.challenge : "");
	if (stream_flush(ls->client) < 0) {
	    ls->done = true;
	    goto out;
	}
	r = pop3_read_line(ls->client, line, SASL_LINE_MAX);
	if (r == POP3_READ_END) {
	    ls->done = true;
	    goto out;
	}
	if (r == POP3_READ_TOOLONG) {
	    pop3_err(ls->client, NULL, "Authentication response too long");
	    goto out;
	}
	if (strcmp(str_cstr(line), "*") == 0) {
	    pop3_err(ls->client, NULL, "Authentication cancelled");
	    goto out;
	}
	if (auth_client_continue(ls->ac, str_cstr(line), &reply, &err) < 0) {
	    login_auth_trouble(ls, err);
	    goto out;
	}
    }
    login_finish(ls, &reply);
  out:
    str_free(&line);
}

/* login_cmd_auth - AUTH [mechanism [initial-response]] (RFC 5034) */
static void login_cmd_auth(struct login_session *ls, const struct pop3_command *cmd)
{
    char mech[32];
    const char *p = cmd->rest, *initial = "";
    size_t n;

    if (*p == 0) {
	/* no mechanism: list them (as many servers do) */
	pop3_ok(ls->client, "Supported mechanisms follow");
	(void) stream_puts(ls->client, "PLAIN\r\nLOGIN\r\nSCRAM-SHA-256\r\n.\r\n");
	return;
    }
    n = strcspn(p, " ");
    if (n == 0 || n >= sizeof(mech)) {
	pop3_err(ls->client, NULL, "Unsupported authentication mechanism");
	return;
    }
    memcpy(mech, p, n);
    mech[n] = 0;
    for (char *c = mech; *c; c++)
	if (*c >= 'a' && *c <= 'z')
	    *c = (char) (*c - 'a' + 'A');
    if (!auth_mechanism_known(mech)) {
	pop3_err(ls->client, NULL, "Unsupported authentication mechanism");
	return;
    }
    p += n;
    if (*p == ' ') {
	initial = p + 1;
	if (*initial == 0 || strchr(initial, ' ') != NULL) {
	    pop3_err(ls->client, NULL, "Syntax: AUTH mechanism [initial-response]");
	    return;
	}
	if (strcmp(initial, "=") == 0)
	    initial = "";		/* an empty initial response */
	else if (strlen(initial) > AUTH_RESPONSE_MAX) {
	    pop3_err(ls->client, NULL, "Authentication response too long");
	    return;
	}
    }
    login_exchange(ls, mech, initial);
}

/* login_cmd_user - USER name */
static void login_cmd_user(struct login_session *ls, const struct pop3_command *cmd)
{
    if (cmd->bad_args || cmd->argc != 1) {
	pop3_err(ls->client, NULL, "Syntax: USER name");
	return;
    }
    if (!str_try_set(ls->user, cmd->argv[0])) {
	pop3_err(ls->client, NULL, "User name too long");
	return;
    }
    ls->have_user = true;
    pop3_ok(ls->client, "Send your password");
}

/* login_cmd_pass - PASS password: a PLAIN exchange on the client's
 * behalf (authzid empty, authcid the USER name) */
static void login_cmd_pass(struct login_session *ls, const struct pop3_command *cmd)
{
    struct str *plain, *b64;

    if (!ls->have_user) {
	pop3_err(ls->client, NULL, "Send USER first");
	return;
    }
    ls->have_user = false;
    if (*cmd->rest == 0) {
	pop3_err(ls->client, NULL, "Syntax: PASS password");
	return;
    }
    plain = str_new(2 * var_pop3d_line_limit + 2);
    b64 = str_new(AUTH_RESPONSE_MAX);
    if (!str_try_appendc(plain, 0) || !str_try_append(plain, str_cstr(ls->user), str_len(ls->user))
	|| !str_try_appendc(plain, 0) || !str_try_appends(plain, cmd->rest)
	|| !base64_encode(str_cstr(plain), str_len(plain), b64)) {
	pop3_err(ls->client, NULL, "Password too long");
    } else {
	login_exchange(ls, AUTH_MECH_PLAIN, str_cstr(b64));
    }
    /* the password does not outlive the command */
    memset(plain->data, 0, plain->len);
    str_free(&plain);
    str_free(&b64);
}

/* login_cmd_capa - CAPA (RFC 2449), before authentication */
static void login_cmd_capa(struct login_session *ls)
{
    pop3_ok(ls->client, "Capability list follows");
    pop3_capa_common(ls->client);
    (void) stream_puts(ls->client, "USER\r\nSASL PLAIN LOGIN SCRAM-SHA-256\r\n.\r\n");
}

/* login_service - one client, until it logs in, quits or fails */
static void login_service(struct stream *client)
{
    struct login_session ls;
    struct pop3_command cmd;
    struct str *line = str_new(var_pop3d_line_limit);
    long commands = 0;

    memset(&ls, 0, sizeof(ls));
    ls.client = client;
    ls.user = str_new(255);
    stream_set_timeout(client, (int) (var_pop3d_login_timeout * 1000));
    if (!sock_peer_name(stream_fd(client), ls.addr, sizeof(ls.addr), ls.port, sizeof(ls.port)))
	str_copy_out_or_panic(ls.addr, sizeof(ls.addr), "unknown");
    if (msg_verbose)
	msg_info("connect from [%s]:%s", ls.addr, ls.port);
    /* No <timestamp> in the greeting: APOP is not offered. */
    pop3_ok(client, "POP3 server ready");
    if (stream_flush(client) < 0)
	goto out;

    while (!ls.done) {
	if (!pop3_next_command(client, line, var_pop3d_line_limit, &cmd, &commands,
			       var_pop3d_login_command_limit))
	    break;
	if (cmd.answered) {
	    /* refused by pop3_next_command */
	} else if (strcmp(cmd.verb, "CAPA") == 0) {
	    login_cmd_capa(&ls);
	} else if (strcmp(cmd.verb, "USER") == 0) {
	    login_cmd_user(&ls, &cmd);
	} else if (strcmp(cmd.verb, "PASS") == 0) {
	    login_cmd_pass(&ls, &cmd);
	} else if (strcmp(cmd.verb, "AUTH") == 0) {
	    login_cmd_auth(&ls, &cmd);
	} else if (strcmp(cmd.verb, "QUIT") == 0) {
	    pop3_ok(client, "Bye");
	    break;
	} else if (strcmp(cmd.verb, "APOP") == 0) {
	    pop3_err(client, NULL, "APOP is not supported, use USER/PASS or AUTH");
	} else if (strcmp(cmd.verb, "STLS") == 0) {
	    pop3_err(client, NULL, "STLS is not available");
	} else if (strcmp(cmd.verb, "STAT") == 0 || strcmp(cmd.verb, "LIST") == 0
		   || strcmp(cmd.verb, "RETR") == 0 || strcmp(cmd.verb, "DELE") == 0
		   || strcmp(cmd.verb, "NOOP") == 0 || strcmp(cmd.verb, "RSET") == 0
		   || strcmp(cmd.verb, "TOP") == 0 || strcmp(cmd.verb, "UIDL") == 0) {
	    pop3_err(client, NULL, "Log in first (USER/PASS or AUTH)");
	} else {
	    pop3_err(client, NULL, "Unknown command");
	}
	if (ls.done)
	    break;
	if (pop3_flush_if_idle(client) < 0)
	    break;
    }
  out:
    if (!ls.done || stream_error(client) == STREAM_OK)
	(void) stream_flush(client);
    auth_client_close(&ls.ac);
    str_free(&ls.user);
    str_free(&line);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "pop3d-login",
	.pre_init = login_pre_init,
	.single_service = login_service,
    };

    return server_main(argc, argv, &spec);
}
