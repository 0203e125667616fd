/* sock.h - sockets: listeners, connections and descriptor passing.
 *
 * Addresses for inet sockets are "host:port", "[v6addr]:port" or ":port".
 * All descriptors are created close-on-exec; listeners are non-blocking.
 * Functions return -1 and set *error_r on failure: the module's errtext
 * (errtext.h), valid until the next sock_* error. */
#ifndef POSTHORN_SOCK_H
#define POSTHORN_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* sock_listen_unix - bind a stream socket at path (an old socket file is
 * removed first), chmod to mode, listen with backlog */
int sock_listen_unix(const char *path, int mode, int backlog, const char **error_r);
/* sock_listen_fifo - create (if missing) and open a FIFO read-write,
 * non-blocking, with the given mode */
int sock_listen_fifo(const char *path, int mode, const char **error_r);
/* sock_listen_inet - bind one socket to host (numeric address, "*" for
 * any, NULL for any) and port; family AF_INET or AF_INET6 (IPv6 sockets
 * are IPV6_V6ONLY); SO_REUSEADDR is set */
int sock_listen_inet(int family, const char *host, const char *port, int backlog, const char **error_r);
/* sock_connect_unix - connect to a unix socket, waiting at most timeout_ms */
int sock_connect_unix(const char *path, int timeout_ms, const char **error_r);
/* sock_connect_inet - connect to host:port (numeric or name) */
int sock_connect_inet(const char *host, const char *port, int timeout_ms, const char **error_r);
/* sock_accept - accept, returning a blocking close-on-exec fd or -1 (errno kept) */
int sock_accept(int listen_fd);
/* sock_accept_peer - the same, and the peer's address in *ss, *len
 * (accept4's own answer: no getpeername(2) later) */
int sock_accept_peer(int listen_fd, struct sockaddr_storage *ss, socklen_t *len);
/* sock_addr_name - numeric address and port of ss as sock_peer_name
 * gives them ("unix" for AF_UNIX); false if neither IPv4 nor IPv6 */
bool sock_addr_name(const struct sockaddr_storage *ss, socklen_t len, char *addr,
		    size_t addr_size, char *port, size_t port_size);
/* sock_set_nonblock / sock_set_cloexec */
int sock_set_nonblock(int fd, bool on);
/* sock_wait_readable - wait at most timeout_ms (EINTR does not restart
 * the clock) until fd is readable or at EOF/error: 1, 0 on timeout, -1
 * with errno */
int sock_wait_readable(int fd, int timeout_ms);
int sock_set_cloexec(int fd, bool on);
/* sock_peer_name - numeric address and port of the peer ("unix" for
 * AF_UNIX); false if unknown */
bool sock_peer_name(int fd, char *addr, size_t addr_size, char *port, size_t port_size);

/* sock_send_fd - send fd (none if fd < 0) and the bytes data,len (at
 * least 1) over a unix socket; one datagram on SOCK_SEQPACKET */
int sock_send_fd(int sock, int fd, const void *data, size_t len);
/* sock_send_fd_once - the same in ONE sendmsg(2) with MSG_NOSIGNAL |
 * flags (e.g. MSG_DONTWAIT): the bytes sent (the descriptor went with
 * the first one), or -1; the caller sends the rest */
ssize_t sock_send_fd_once(int sock, int fd, const void *data, size_t len, int flags);
/* sock_recv_fd - receive up to len bytes and one descriptor (-1 in
 * *fd_r if none came); returns bytes received, 0 at EOF, -1 on error.
 * Extra descriptors are closed, never leaked. */
ssize_t sock_recv_fd(int sock, int *fd_r, void *data, size_t len);
/* sock_recv_fd_flags - the same with recvmsg(2) flags (MSG_DONTWAIT:
 * -1 with EAGAIN when nothing is waiting). On a unix stream socket a
 * call that receives a descriptor returns none of the bytes sent after
 * the sendmsg(2) that carried it. */
ssize_t sock_recv_fd_flags(int sock, int *fd_r, void *data, size_t len, int flags);

#endif
