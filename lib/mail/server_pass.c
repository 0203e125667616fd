/* server_pass.c - the receiving half of the hand-over of a client socket
 * (pass_proto.h), for SINGLE servers run with -t pass: on a connection
 * accepted from a pass listener, take the client's socket (one byte with
 * SCM_RIGHTS) and, usually in the same recvmsg(2), the front's
 * attributes; check them strictly; answer the announcement and
 * {status=ok} in one write; and give server_single.c a stream on the
 * client whose read buffer already holds the bytes the front read. A
 * refused hand-over gets the announcement alone. Every step is bounded
 * by ipc_timeout; a sender that breaks the protocol gets its connection
 * closed and a warning, and the process goes on. */

/* system */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* base */
#include "ipc.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "mail_proto.h"
#include "pass_proto.h"
#include "server.h"
#include "server_internal.h"

#define PASS_ADDR_MAX	128		/* client_address, client_port values */

/* What the front said about the client at hand. */
static struct server_pass_info srv_pass_info;
static bool srv_pass_valid;
static char srv_pass_addr[PASS_ADDR_MAX + 1];
static char srv_pass_port[PASS_ADDR_MAX + 1];
static char srv_pass_peer_addr[PASS_ADDR_MAX];
static char srv_pass_peer_port[32];

/* server_pass_info - the client at hand came through a pass listener */
const struct server_pass_info *server_pass_info(void)
{
    return srv_pass_valid ? &srv_pass_info : NULL;
}

/* srv_pass_done - single_service returned: the information is gone */
void srv_pass_done(void)
{
    srv_pass_valid = false;
    srv_pass_addr[0] = srv_pass_port[0] = 0;
    srv_pass_peer_addr[0] = srv_pass_peer_port[0] = 0;
}

/* srv_pass_timeout_ms - ipc_timeout in milliseconds, for int use */
static int srv_pass_timeout_ms(void)
{
    return var_ipc_timeout > INT_MAX / 1000 ? INT_MAX : (int) var_ipc_timeout * 1000;
}

/* srv_pass_printable - a value fit for a log line and an address field */
static bool srv_pass_printable(const struct str *v)
{
    for (size_t i = 0; i < str_len(v); i++) {
	unsigned char c = (unsigned char) str_cstr(v)[i];

	if (c <= ' ' || c >= 127)
	    return false;
    }
    return str_len(v) > 0;
}

/* srv_pass_fail - log why a hand-over was refused; -1 */
static int srv_pass_fail(const char *why)
{
    msg_warn("pass service %s: bad hand-over: %s -- connection closed", srv_service_name, why);
    return -1;
}

/* srv_pass_check_peer - the passed descriptor is a connected stream
 * socket; for TCP, its peer is the address the front named (kept in
 * srv_pass_peer_addr and srv_pass_peer_port). *is_unix: whether it is a
 * unix-domain socket (a test's socketpair). */
static int srv_pass_check_peer(int fd, const char *addr, const char *port, bool *is_unix)
{
    int type = 0;
    socklen_t len = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
	return srv_pass_fail("the passed descriptor is not a socket");
    if (type != SOCK_STREAM)
	return srv_pass_fail("the passed socket is not a stream socket");
    if (!sock_peer_name(fd, srv_pass_peer_addr, sizeof(srv_pass_peer_addr),
			srv_pass_peer_port, sizeof(srv_pass_peer_port)))
	return srv_pass_fail("the passed socket has no peer");
    /* A unix-domain peer is a test's socketpair: nothing to compare. */
    if ((*is_unix = strcmp(srv_pass_peer_addr, "unix") == 0))
	return 0;
    if (strcmp(srv_pass_peer_addr, addr) != 0 || strcmp(srv_pass_peer_port, port) != 0) {
	char why[PASS_ADDR_MAX * 2 + 100];

	fmt_buf_cut(why, sizeof(why), "client %s port %s, but the socket's peer is %s port %s",
		    addr, port, srv_pass_peer_addr, srv_pass_peer_port);
	return srv_pass_fail(why);
    }
    return 0;
}

/* srv_pass_recv_fd - the PASS_FD_BYTE with the client socket, within the
 * deadline; the fd or -1 (logged). The bytes that came after the byte in
 * the same sendmsg(2) (smtp-front sends the attributes with it) go into
 * ipc's read buffer: one recvmsg(2) takes the whole request, without a
 * poll(2) when it is already there, as it is when the front connected
 * and sent before this process accepted. Nothing may have been read
 * from conn through ipc before. */
static int srv_pass_recv_fd(int conn, struct stream *ipc)
{
    char buf[STREAM_PRELOAD_MAX];
    char why[200];
    ssize_t n;
    int fd = -1, rc;

    n = sock_recv_fd_flags(conn, &fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
	if ((rc = sock_wait_readable(conn, srv_pass_timeout_ms())) == 0)
	    return srv_pass_fail("timeout waiting for the client socket");
	if (rc < 0) {
	    fmt_buf_cut(why, sizeof(why), "poll: %s", strerror(errno));
	    return srv_pass_fail(why);
	}
	n = sock_recv_fd_flags(conn, &fd, buf, sizeof(buf), MSG_DONTWAIT);
    }
    if (n < 0) {
	fmt_buf_cut(why, sizeof(why), "receiving the client socket: %s", strerror(errno));
	return srv_pass_fail(why);
    }
    if (n == 0)
	return srv_pass_fail("the sender closed the connection before the client socket");
    if (fd < 0)
	return srv_pass_fail("no descriptor came with the first byte");
    if (buf[0] != PASS_FD_BYTE) {
	(void) close(fd);
	return srv_pass_fail("the descriptor came with a wrong byte");
    }
    if (stream_preload_input(ipc, buf + 1, (size_t) n - 1) < 0)
	msg_panic("srv_pass_recv_fd: %zd bytes do not fit the read buffer", n - 1);
    return fd;
}

/* srv_pass_answer - the announcement, and {status=ok} when ok, in one
 * write: the front wakes once for both. 0, or -1 (logged when ok) */
static int srv_pass_answer(struct stream *ipc, bool ok)
{
    struct str *msg = str_new(256);
    char why[200];
    int ret = 0;

    ipc_handshake_encode(msg, PASS_PROTO, PASS_VERSION);
    if (ok) {
	ipc_encode_str(msg, ATTR_STATUS, PASS_STAT_OK);
	ipc_encode_end(msg);
    }
    if (stream_write(ipc, str_cstr(msg), str_len(msg)) < 0 || stream_flush(ipc) < 0) {
	if (ok) {
	    fmt_buf_cut(why, sizeof(why), "sending status=ok: %s",
			stream_status_text(stream_error(ipc)));
	    (void) srv_pass_fail(why);
	}
	ret = -1;
    }
    str_free(&msg);
    return ret;
}

/* srv_pass_take - run the conversation on the accepted conn (which it
 * closes); a stream on the client socket with the front's input
 * preloaded and server_pass_info() set, or NULL (logged) */
struct stream *srv_pass_take(int conn)
{
    struct stream *ipc = stream_open(conn);		/* accepted on a unix socket */
    struct str *addr = str_new(PASS_ADDR_MAX);
    struct str *port = str_new(PASS_ADDR_MAX);
    struct str *greeted = str_new(1);
    struct str *input = str_new(PASS_INPUT_MAX);
    struct stream *client = NULL;
    const char *err;
    bool client_unix = false, answered = false;
    int fd = -1;

    stream_set_unix(ipc, true);
    stream_set_timeout(ipc, srv_pass_timeout_ms());
    if ((fd = srv_pass_recv_fd(conn, ipc)) < 0)
	goto out;
    if (ipc_recv(ipc, &err, IPC_RECV_STR(PASS_ATTR_CLIENT_ADDR, addr),
		 IPC_RECV_STR(PASS_ATTR_CLIENT_PORT, port),
		 IPC_RECV_STR(PASS_ATTR_GREETED, greeted),
		 IPC_RECV_DATA(PASS_ATTR_INPUT, input), IPC_END) < 0) {
	(void) srv_pass_fail(err);
	goto out;
    }
    if (!srv_pass_printable(addr) || !srv_pass_printable(port)) {
	(void) srv_pass_fail("bad client_address or client_port");
	goto out;
    }
    if (strcmp(str_cstr(greeted), "0") != 0 && strcmp(str_cstr(greeted), "1") != 0) {
	(void) srv_pass_fail("greeted is neither 0 nor 1");
	goto out;
    }
    if (srv_pass_check_peer(fd, str_cstr(addr), str_cstr(port), &client_unix) < 0)
	goto out;
    answered = true;
    if (srv_pass_answer(ipc, true) < 0)
	goto out;
    /* The client is ours now; the front closes its copy. Like an accepted
     * socket, it is blocking (the stream's deadlines bound every wait). */
    (void) sock_set_nonblock(fd, false);
    client = srv_open_client(fd);
    stream_set_unix(client, client_unix);
    fd = -1;
    /* at most PASS_INPUT_MAX (the str bound) <= STREAM_PRELOAD_MAX */
    _Static_assert(PASS_INPUT_MAX <= STREAM_PRELOAD_MAX, "input must fit the read buffer");
    if (stream_preload_input(client, str_cstr(input), str_len(input)) < 0)
	msg_panic("srv_pass_take: %zu bytes of input do not fit", str_len(input));
    str_copy_out_or_panic(srv_pass_addr, sizeof(srv_pass_addr), str_cstr(addr));
    str_copy_out_or_panic(srv_pass_port, sizeof(srv_pass_port), str_cstr(port));
    srv_pass_info.client_address = srv_pass_addr;
    srv_pass_info.client_port = srv_pass_port;
    srv_pass_info.peer_address = client_unix ? NULL : srv_pass_peer_addr;
    srv_pass_info.peer_port = client_unix ? NULL : srv_pass_peer_port;
    srv_pass_info.greeted = strcmp(str_cstr(greeted), "1") == 0;
    srv_pass_valid = true;
    if (msg_verbose)
	msg_info("pass: took client %s port %s (greeted %d, %zu bytes of input)",
		 srv_pass_addr, srv_pass_port, (int) srv_pass_info.greeted, str_len(input));

  out:
    if (!answered)
	(void) srv_pass_answer(ipc, false);	/* refused: the front keeps it */
    if (fd >= 0)
	(void) close(fd);
    (void) stream_close(&ipc);
    str_free(&addr);
    str_free(&port);
    str_free(&greeted);
    str_free(&input);
    return client;
}
