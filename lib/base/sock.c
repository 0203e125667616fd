/* sock.c - sockets: unix, FIFO and inet listeners, connects with a
 * timeout, accept, peer names and descriptor passing (see sock.h).
 *
 * Every descriptor made here is close-on-exec. Listeners are
 * non-blocking (the caller multiplexes them); connected sockets handed
 * back to the caller are blocking. Error texts name the address and the
 * system error and live in one static buffer, valid until the next call
 * into this module. A timeout_ms <= 0 means "no limit". */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "msg.h"
#include "str.h"
#include "sock.h"

static struct errtext sock_error;	/* the text behind error_r */

#define SOCK_FD_MAX_RECV	16	/* descriptors we make room for */

/* sock_close_keep_errno - close fd without disturbing errno */
static void sock_close_keep_errno(int fd)
{
    int saved = errno;

    (void) close(fd);
    errno = saved;
}

/* sock_set_nonblock - set or clear O_NONBLOCK (no F_SETFL when the
 * flag is already as asked) */
int sock_set_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    int want;

    if (flags < 0)
	return -1;
    want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (want == flags)
	return 0;
    return fcntl(fd, F_SETFL, want) < 0 ? -1 : 0;
}

/* sock_set_cloexec - set or clear FD_CLOEXEC: one F_SETFD, as it is the
 * only descriptor flag there is (no F_GETFD first) */
int sock_set_cloexec(int fd, bool on)
{
    return fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0) < 0 ? -1 : 0;
}

/* sock_unix_addr - fill a sockaddr_un; false if the path does not fit */
static bool sock_unix_addr(struct sockaddr_un *sun, const char *path)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    return path[0] != 0 && str_try_copy_out(sun->sun_path, sizeof(sun->sun_path), path);
}

/* sock_listen_unix - bind a stream socket at path and listen */
int sock_listen_unix(const char *path, int mode, int backlog, const char **error_r)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd;

    if (!sock_unix_addr(&sun, path))
	return errtext_fail(&sock_error, error_r, "unix socket path too long or empty: %s", path);
    if (lstat(path, &st) == 0) {
	if (!S_ISSOCK(st.st_mode))
	    return errtext_fail(&sock_error, error_r, "%s exists and is not a socket; not removing it", path);
	if (unlink(path) < 0 && errno != ENOENT)
	    return errtext_fail(&sock_error, error_r, "remove old socket %s: %s", path, strerror(errno));
    } else if (errno != ENOENT) {
	return errtext_fail(&sock_error, error_r, "lstat %s: %s", path, strerror(errno));
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
	return errtext_fail(&sock_error, error_r, "socket for %s: %s", path, strerror(errno));
    if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
	errtext_fail(&sock_error, error_r, "bind unix socket %s: %s", path, strerror(errno));
	(void) close(fd);
	return -1;
    }
    /* Before listen(), so no client connects while the mode is wrong. */
    if (chmod(path, (mode_t) mode) < 0) {
	errtext_fail(&sock_error, error_r, "chmod %s: %s", path, strerror(errno));
	(void) unlink(path);
	(void) close(fd);
	return -1;
    }
    if (listen(fd, backlog) < 0) {
	errtext_fail(&sock_error, error_r, "listen on %s: %s", path, strerror(errno));
	(void) unlink(path);
	(void) close(fd);
	return -1;
    }
    return fd;
}

/* sock_listen_fifo - create (if missing) and open a FIFO read-write */
int sock_listen_fifo(const char *path, int mode, const char **error_r)
{
    struct stat st;
    int fd;

    if (lstat(path, &st) == 0) {
	if (!S_ISFIFO(st.st_mode))
	    return errtext_fail(&sock_error, error_r, "%s exists and is not a FIFO", path);
    } else if (errno != ENOENT) {
	return errtext_fail(&sock_error, error_r, "lstat %s: %s", path, strerror(errno));
    } else if (mkfifo(path, (mode_t) mode) < 0 && errno != EEXIST) {
	return errtext_fail(&sock_error, error_r, "mkfifo %s: %s", path, strerror(errno));
    }

    /*
     * Read-write, so that we are a writer ourselves and never see EOF when
     * the last client closes; non-blocking so the open does not wait.
     */
    fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
	return errtext_fail(&sock_error, error_r, "open FIFO %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
	errtext_fail(&sock_error, error_r, "%s is not a FIFO", path);
	(void) close(fd);
	return -1;
    }
    if (fchmod(fd, (mode_t) mode) < 0) {
	errtext_fail(&sock_error, error_r, "chmod FIFO %s: %s", path, strerror(errno));
	(void) close(fd);
	return -1;
    }
    return fd;
}

/* sock_strip_brackets - copy host without surrounding [ ] into buf */
static bool sock_strip_brackets(const char *host, char *buf, size_t size)
{
    size_t len = strlen(host);

    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
	if (len - 2 >= size)
	    return false;
	memcpy(buf, host + 1, len - 2);
	buf[len - 2] = 0;
	return true;
    }
    return str_try_copy_out(buf, size, host);
}

/* sock_fmt_addr - "host:port" or "[host]:port" for error texts (a long
 * name is cut: the text is for a person) */
static const char *sock_fmt_addr(char *buf, size_t size, const char *host, const char *port)
{
    bool whole;

    if (host != NULL && strchr(host, ':') != NULL && host[0] != '[')
	whole = fmt_try_buf(buf, size, "[%s]:%s", host, port);
    else
	whole = fmt_try_buf(buf, size, "%s:%s", host ? host : "*", port);
    (void) whole;
    return buf;
}

/* sock_listen_inet - bind one AF_INET or AF_INET6 socket and listen */
int sock_listen_inet(int family, const char *host, const char *port, int backlog, const char **error_r)
{
    struct addrinfo hints, *res = NULL;
    char hostbuf[NI_MAXHOST];
    char label[NI_MAXHOST + 64];
    const char *node = NULL;
    int fd, err, on = 1;

    if (family != AF_INET && family != AF_INET6)
	return errtext_fail(&sock_error, error_r, "sock_listen_inet: unsupported address family %d", family);
    if (port == NULL || *port == 0)
	return errtext_fail(&sock_error, error_r, "sock_listen_inet: no port given");
    if (host != NULL && *host != 0 && strcmp(host, "*") != 0) {
	if (!sock_strip_brackets(host, hostbuf, sizeof(hostbuf)))
	    return errtext_fail(&sock_error, error_r, "host address too long: %s", host);
	node = hostbuf;
    }
    sock_fmt_addr(label, sizeof(label), node ? node : "*", port);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    if ((err = getaddrinfo(node, port, &hints, &res)) != 0)
	return errtext_fail(&sock_error, error_r, "bad listen address %s: %s", label,
			  err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));

    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
	errtext_fail(&sock_error, error_r, "socket for %s: %s", label, strerror(errno));
	freeaddrinfo(res);
	return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0) {
	errtext_fail(&sock_error, error_r, "setsockopt SO_REUSEADDR for %s: %s", label, strerror(errno));
	goto fail;
    }
    if (family == AF_INET6
	&& setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) {
	errtext_fail(&sock_error, error_r, "setsockopt IPV6_V6ONLY for %s: %s", label, strerror(errno));
	goto fail;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
	errtext_fail(&sock_error, error_r, "bind %s: %s", label, strerror(errno));
	goto fail;
    }
    if (listen(fd, backlog) < 0) {
	errtext_fail(&sock_error, error_r, "listen on %s: %s", label, strerror(errno));
	goto fail;
    }
    freeaddrinfo(res);
    return fd;

fail:
    freeaddrinfo(res);
    (void) close(fd);
    return -1;
}

/* sock_now_ms - monotonic milliseconds */
static int64_t sock_now_ms(void)
{
    struct timespec ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sock_remaining - milliseconds left before deadline (-1: no limit) */
static int sock_remaining(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
	return -1;
    left = deadline - sock_now_ms();
    if (left < 0)
	return 0;
    return left > INT32_MAX ? INT32_MAX : (int) left;
}

/* sock_wait_readable - poll for input until a deadline */
int sock_wait_readable(int fd, int timeout_ms)
{
    int64_t deadline = sock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    struct pollfd pfd;
    int rc;

    for (;;) {
	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	rc = poll(&pfd, 1, sock_remaining(deadline));
	if (rc > 0)
	    return 1;
	if (rc == 0)
	    return 0;
	if (errno != EINTR)
	    return -1;
    }
}

/*
 * sock_connect_fd - connect the non-blocking fd to addr before deadline,
 * then make it blocking. fd must have been made by socket(2) with
 * SOCK_NONBLOCK and no other status flag. Returns 0, or -1 with errno set.
 */
static int sock_connect_fd(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
    struct pollfd pfd;
    socklen_t len;
    int err, n;

    for (;;) {
	if (connect(fd, addr, addrlen) == 0)
	    break;
	if (errno == EINTR)
	    continue;
	if (errno == EAGAIN && addr->sa_family == AF_UNIX) {
	    /* The listener's backlog is full: retry until the deadline. */
	    struct timespec pause = {0, 10 * 1000 * 1000};

	    if (sock_remaining(deadline) == 0) {
		errno = ETIMEDOUT;
		return -1;
	    }
	    (void) nanosleep(&pause, NULL);
	    continue;
	}
	if (errno != EINPROGRESS)
	    return -1;
	pfd.fd = fd;
	pfd.events = POLLOUT;
	for (;;) {
	    pfd.revents = 0;
	    n = poll(&pfd, 1, sock_remaining(deadline));
	    if (n > 0)
		break;
	    if (n == 0) {
		errno = ETIMEDOUT;
		return -1;
	    }
	    if (errno != EINTR)
		return -1;
	}
	err = 0;
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
	    return -1;
	if (err != 0) {
	    errno = err;
	    return -1;
	}
	break;
    }
    /* The socket was made with SOCK_NONBLOCK as its only status flag:
     * one F_SETFL clears it, no F_GETFL needed. */
    return fcntl(fd, F_SETFL, 0) < 0 ? -1 : 0;
}

/* sock_deadline - absolute deadline for timeout_ms, -1 for none */
static int64_t sock_deadline(int timeout_ms)
{
    return timeout_ms > 0 ? sock_now_ms() + timeout_ms : -1;
}

/* sock_connect_unix - connect to a unix socket, waiting at most timeout_ms */
int sock_connect_unix(const char *path, int timeout_ms, const char **error_r)
{
    struct sockaddr_un sun;
    int fd;

    if (!sock_unix_addr(&sun, path))
	return errtext_fail(&sock_error, error_r, "unix socket path too long or empty: %s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
	return errtext_fail(&sock_error, error_r, "socket for %s: %s", path, strerror(errno));
    if (sock_connect_fd(fd, (struct sockaddr *) &sun, sizeof(sun), sock_deadline(timeout_ms)) < 0) {
	errtext_fail(&sock_error, error_r, "connect to %s: %s", path, strerror(errno));
	(void) close(fd);
	return -1;
    }
    return fd;
}

/* sock_connect_inet - connect to host:port, trying each address in turn */
int sock_connect_inet(const char *host, const char *port, int timeout_ms, const char **error_r)
{
    struct addrinfo hints, *res = NULL, *ai;
    char hostbuf[NI_MAXHOST];
    char label[NI_MAXHOST + 64];
    char numeric[NI_MAXHOST];
    int64_t deadline = sock_deadline(timeout_ms);
    int fd = -1, err;

    if (host == NULL || *host == 0 || port == NULL || *port == 0)
	return errtext_fail(&sock_error, error_r, "sock_connect_inet: host and port are required");
    if (!sock_strip_brackets(host, hostbuf, sizeof(hostbuf)))
	return errtext_fail(&sock_error, error_r, "host name too long: %s", host);
    sock_fmt_addr(label, sizeof(label), hostbuf, port);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((err = getaddrinfo(hostbuf, port, &hints, &res)) != 0)
	return errtext_fail(&sock_error, error_r, "connect to %s: %s", label,
			  err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));

    errtext_fail(&sock_error, error_r, "connect to %s: no usable address", label);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
	    errtext_fail(&sock_error, error_r, "socket for %s: %s", label, strerror(errno));
	    continue;
	}
	if (sock_connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline) == 0)
	    break;
	err = errno;
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric, sizeof(numeric),
			NULL, 0, NI_NUMERICHOST) == 0 && strcmp(numeric, hostbuf) != 0)
	    errtext_fail(&sock_error, error_r, "connect to %s (%s): %s", label, numeric, strerror(err));
	else
	    errtext_fail(&sock_error, error_r, "connect to %s: %s", label, strerror(err));
	(void) close(fd);
	fd = -1;
	if (err == ETIMEDOUT && sock_remaining(deadline) == 0)
	    break;
    }
    freeaddrinfo(res);
    return fd;
}

/* sock_accept - accept one connection: blocking, close-on-exec */
int sock_accept(int listen_fd)
{
    int fd;

    /* Linux accept4() never copies O_NONBLOCK from the listener. */
    fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    return fd;
}

/* sock_accept_peer - sock_accept that also keeps the peer's address */
int sock_accept_peer(int listen_fd, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = sizeof(*ss);
    return accept4(listen_fd, (struct sockaddr *) ss, len, SOCK_CLOEXEC);
}

/* sock_addr_name - numeric address and port of a socket address */
bool sock_addr_name(const struct sockaddr_storage *ss, socklen_t len, char *addr,
		    size_t addr_size, char *port, size_t port_size)
{
    if (addr_size == 0 || port_size == 0)
	msg_panic("sock_addr_name: zero-size buffer");
    addr[0] = port[0] = 0;
    if (ss->ss_family == AF_UNIX) {
	str_copy_out_or_panic(addr, addr_size, "unix");
	return true;
    }
    if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
	return false;
    if (getnameinfo((const struct sockaddr *) ss, len, addr, (socklen_t) addr_size,
		    port, (socklen_t) port_size, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
	addr[0] = port[0] = 0;
	return false;
    }
    return true;
}

/* sock_peer_name - numeric address and port of the peer */
bool sock_peer_name(int fd, char *addr, size_t addr_size, char *port, size_t port_size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (addr_size == 0 || port_size == 0)
	msg_panic("sock_peer_name: zero-size buffer");
    addr[0] = port[0] = 0;
    if (getpeername(fd, (struct sockaddr *) &ss, &len) < 0)
	return false;
    return sock_addr_name(&ss, len, addr, addr_size, port, port_size);
}

/* sock_send_fd_once - ONE sendmsg(2) of fd (none if fd < 0) with the
 * bytes data,len (len >= 1), flags added to MSG_NOSIGNAL; returns the
 * bytes sent (the descriptor went with the first), or -1 */
ssize_t sock_send_fd_once(int sock, int fd, const void *data, size_t len, int flags)
{
    union {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg;
    struct iovec iov;
    struct cmsghdr *cmsg;
    ssize_t n;

    if (len == 0)
	msg_panic("sock_send_fd: at least one data byte is required");
    memset(&control, 0, sizeof(control));
    memset(&msg, 0, sizeof(msg));
    iov.iov_base = (void *) data;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags)) < 0) {
	if (errno != EINTR)
	    return -1;
    }
    return n;
}

/* sock_send_fd - send fd (none if fd < 0) with the bytes data,len
 * (len >= 1); on a SOCK_SEQPACKET socket one call is one datagram */
int sock_send_fd(int sock, int fd, const void *data, size_t len)
{
    const char *p = data;
    ssize_t n;

    if ((n = sock_send_fd_once(sock, fd, data, len, 0)) < 0)
	return -1;
    /* The descriptor went with the first byte; send any rest plainly
     * (a stream socket; a datagram is sent whole or not at all). */
    p += n;
    len -= (size_t) n;
    while (len > 0) {
	n = send(sock, p, len, MSG_NOSIGNAL);
	if (n < 0) {
	    if (errno == EINTR)
		continue;
	    return -1;
	}
	p += n;
	len -= (size_t) n;
    }
    return 0;
}

/* sock_recv_fd - receive up to len bytes and at most one descriptor */
ssize_t sock_recv_fd(int sock, int *fd_r, void *data, size_t len)
{
    return sock_recv_fd_flags(sock, fd_r, data, len, 0);
}

/* sock_recv_fd_flags - the same with recvmsg flags (MSG_DONTWAIT) */
ssize_t sock_recv_fd_flags(int sock, int *fd_r, void *data, size_t len, int flags)
{
    union {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * SOCK_FD_MAX_RECV)];
    } control;
    struct msghdr msg;
    struct iovec iov;
    struct cmsghdr *cmsg;
    ssize_t n;
    int fd = -1;

    *fd_r = -1;
    memset(&msg, 0, sizeof(msg));
    iov.iov_base = data;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);

    while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags)) < 0) {
	if (errno != EINTR)
	    return -1;
    }

    /* Keep the first descriptor; close every other one that arrived. */
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
	const unsigned char *p;
	size_t count, i;

	if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
	    continue;
	if (cmsg->cmsg_len < CMSG_LEN(0))
	    continue;
	count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	p = CMSG_DATA(cmsg);
	for (i = 0; i < count; i++) {
	    int got;

	    memcpy(&got, p + i * sizeof(int), sizeof(int));
	    if (fd < 0)
		fd = got;
	    else
		(void) close(got);
	}
    }
    if (msg.msg_flags & MSG_CTRUNC) {
	/* Some descriptors were lost: fail rather than half-deliver. */
	if (fd >= 0)
	    sock_close_keep_errno(fd);
	errno = EMSGSIZE;
	return -1;
    }
    if (n == 0 && fd >= 0) {
	(void) close(fd);
	fd = -1;
    }
    *fd_r = fd;
    return n;
}
