/* login_proto.c - the login process's half of the hand-over
 * (login_proto.h): it passes an authenticated client connection, its
 * auth token and its unconsumed input to the post-login daemon. The
 * daemon's half reads the hand-over on its event loop, in
 * session_host.c. */

/* system */
#include <errno.h>
#include <string.h>
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
