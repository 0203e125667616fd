/* login_proto.c - both halves of the login hand-over (login_proto.h): a
 * login process passes an authenticated client connection, its auth
 * token and its unconsumed input to the post-login daemon. */

/* system */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "errtext.h"
#include "ipc.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "login_proto.h"

static struct errtext login_error;	/* the text behind error_r */

/* login_handover_send - the login process's half */
int login_handover_send(const char *path, int timeout_ms, int client_fd,
			const struct login_handover *h, const char **error_r)
{
    struct stream *s;
    struct str *status;
    const char *err;
    char fd_byte = LOGIN_FD_BYTE;
    int fd, ret = -1;

    if ((fd = sock_connect_unix(path, timeout_ms, &err)) < 0)
	return errtext_fail(&login_error, error_r, "connect %s: %s", path, err);
    s = stream_open(fd);
    stream_set_timeout(s, timeout_ms);
    status = str_new(64);
    if (ipc_handshake_client(s, LOGIN_PROTO, LOGIN_VERSION, &err) < 0) {
	errtext_fail(&login_error, error_r, "%s: %s", path, err);
    } else if (sock_send_fd(fd, client_fd, &fd_byte, 1) < 0) {
	errtext_fail(&login_error, error_r, "%s: passing the descriptor: %s", path, strerror(errno));
    } else if ((h->login_tag && *h->login_tag
		? ipc_send(s, IPC_STR(LOGIN_ATTR_TOKEN, h->token),
			   IPC_STR(LOGIN_ATTR_CLIENT_ADDR, h->client_address ? h->client_address : ""),
			   IPC_STR(LOGIN_ATTR_CLIENT_PORT, h->client_port ? h->client_port : ""),
			   IPC_DATA(LOGIN_ATTR_INPUT, h->input, h->input_len),
			   IPC_STR(LOGIN_ATTR_LOGIN_TAG, h->login_tag), IPC_END)
		: ipc_send(s, IPC_STR(LOGIN_ATTR_TOKEN, h->token),
			   IPC_STR(LOGIN_ATTR_CLIENT_ADDR, h->client_address ? h->client_address : ""),
			   IPC_STR(LOGIN_ATTR_CLIENT_PORT, h->client_port ? h->client_port : ""),
			   IPC_DATA(LOGIN_ATTR_INPUT, h->input, h->input_len), IPC_END)) < 0) {
	errtext_fail(&login_error, error_r, "%s: sending the hand-over: %s", path,
		     stream_status_text(stream_error(s)));
    } else if (ipc_recv(s, &err, IPC_RECV_STR(LOGIN_ATTR_STATUS, status), IPC_END) < 0) {
	errtext_fail(&login_error, error_r, "%s: no answer to the hand-over: %s", path, err);
    } else if (strcmp(str_cstr(status), LOGIN_STAT_OK) != 0) {
	errtext_fail(&login_error, error_r, "%s: hand-over refused: %.100s", path, str_cstr(status));
    } else {
	ret = 0;
    }
    str_free(&status);
    (void) stream_close(&s);
    return ret;
}

/* login_handover_recv - the post-login daemon's half */
int login_handover_recv(struct stream *s, int *fd_r, struct str *token, struct str *addr,
			struct str *port, struct str *input, const char **error_r)
{
    struct stat st;
    const char *err;
    char byte = 0;
    ssize_t n;
    int fd = -1, timeout = stream_get_timeout(s);

    *fd_r = -1;
    if (ipc_handshake_server(s, LOGIN_PROTO, LOGIN_VERSION) < 0)
	return errtext_fail(&login_error, error_r, "sending the announcement: %s",
			    stream_status_text(stream_error(s)));
    /* The descriptor rides on the first byte; nothing was read through
     * the stream yet, so its buffer cannot have swallowed it. */
    if (stream_buffered_here(s) != 0)
	return errtext_fail(&login_error, error_r, "input before the descriptor");
    switch (sock_wait_readable(stream_fd(s), timeout)) {
    case 0:
	return errtext_fail(&login_error, error_r, "timeout waiting for the descriptor");
    case -1:
	return errtext_fail(&login_error, error_r, "waiting for the descriptor: %s", strerror(errno));
    }
    if ((n = sock_recv_fd(stream_fd(s), &fd, &byte, 1)) <= 0)
	return errtext_fail(&login_error, error_r, "receiving the descriptor: %s",
			    n == 0 ? "EOF" : strerror(errno));
    if (fd < 0 || byte != LOGIN_FD_BYTE) {
	if (fd >= 0)
	    (void) close(fd);
	return errtext_fail(&login_error, error_r, "no descriptor in the hand-over");
    }
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
	(void) close(fd);
	return errtext_fail(&login_error, error_r, "the descriptor passed is not a socket");
    }
    if (ipc_recv(s, &err, IPC_RECV_STR(LOGIN_ATTR_TOKEN, token),
		 IPC_RECV_STR(LOGIN_ATTR_CLIENT_ADDR, addr),
		 IPC_RECV_STR(LOGIN_ATTR_CLIENT_PORT, port),
		 IPC_RECV_DATA(LOGIN_ATTR_INPUT, input), IPC_END) < 0) {
	(void) close(fd);
	return errtext_fail(&login_error, error_r, "hand-over: %s", err);
    }
    if (ipc_send(s, IPC_STR(LOGIN_ATTR_STATUS, LOGIN_STAT_OK), IPC_END) < 0) {
	(void) close(fd);
	return errtext_fail(&login_error, error_r, "answering the hand-over: %s",
			    stream_status_text(stream_error(s)));
    }
    *fd_r = fd;
    return 0;
}
