/* test-sock.c - unit tests for sock.c: unix, FIFO and inet listeners,
 * connect errors and timeouts, and descriptor passing. Only loopback
 * addresses are used; alarm() bounds the whole run. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sock.h"
#include "str.h"
#include "unit.h"

static char tmpdir[64];

/* rm_entry - nftw callback that removes one entry */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path);
}

/* tmp_path - a name inside the test's temporary directory */
static const char *tmp_path(char *buf, size_t size, const char *name)
{
    unit_assert(fmt_try_buf(buf, size, "%s/%s", tmpdir, name));
    return buf;
}

/* is_blocking / is_cloexec - descriptor flags */
static bool is_blocking(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) == 0;
}

static bool is_cloexec(int fd)
{
    return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

/* wait_readable - poll one descriptor for input, bounded */
static bool wait_readable(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    return poll(&pfd, 1, ms) == 1;
}

/* local_port - the port a socket is bound to, as text */
static void local_port(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int port = 0;

    if (getsockname(fd, (struct sockaddr *) &ss, &len) == 0) {
	if (ss.ss_family == AF_INET)
	    port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
	    port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
    }
    fmt_buf_or_panic(buf, size, "%d", port);
}

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* round_trip - send text each way between a client and its accepted peer */
static void round_trip(int client, int server)
{
    char buf[16];

    unit_assert(write(client, "ping", 4) == 4);
    unit_assert(wait_readable(server, 2000));
    unit_assert(read(server, buf, sizeof(buf)) == 4);
    unit_assert(memcmp(buf, "ping", 4) == 0);
    unit_assert(write(server, "pong", 4) == 4);
    unit_assert(wait_readable(client, 2000));
    unit_assert(read(client, buf, sizeof(buf)) == 4);
    unit_assert(memcmp(buf, "pong", 4) == 0);
}

static void test_unix(void)
{
    char path[128], file[128], addr[64], port[16];
    const char *err = NULL;
    struct stat st;
    int lfd, cfd, sfd;

    unit_begin("unix listen, connect, accept round trip");
    tmp_path(path, sizeof(path), "sock");
    lfd = sock_listen_unix(path, 0660, 16, &err);
    unit_assert(lfd >= 0);
    unit_assert(!is_blocking(lfd));
    unit_assert(is_cloexec(lfd));
    unit_assert(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    unit_assert_inteq(st.st_mode & 07777, 0660);
    cfd = sock_connect_unix(path, 2000, &err);
    unit_assert(cfd >= 0);
    unit_assert(is_blocking(cfd) && is_cloexec(cfd));
    unit_assert(wait_readable(lfd, 2000));
    sfd = sock_accept(lfd);
    unit_assert(sfd >= 0);
    unit_assert(is_blocking(sfd) && is_cloexec(sfd));
    round_trip(cfd, sfd);
    unit_assert(sock_peer_name(sfd, addr, sizeof(addr), port, sizeof(port)));
    unit_assert_streq(addr, "unix");
    /* Nothing more is pending: accept fails at once, errno kept. */
    errno = 0;
    unit_assert(sock_accept(lfd) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    close(cfd);
    close(sfd);
    close(lfd);
    unit_end();

    unit_begin("unix listen replaces a stale socket file");
    unit_assert(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    cfd = sock_connect_unix(path, 500, &err);
    unit_assert(cfd < 0);
    unit_assert(strstr(err, path) != NULL);
    unit_assert(strstr(err, strerror(ECONNREFUSED)) != NULL);
    lfd = sock_listen_unix(path, 0600, 16, &err);
    unit_assert(lfd >= 0);
    cfd = sock_connect_unix(path, 2000, &err);
    unit_assert(cfd >= 0);
    unit_assert(wait_readable(lfd, 2000));
    sfd = sock_accept(lfd);
    unit_assert(sfd >= 0);
    round_trip(cfd, sfd);
    close(cfd);
    close(sfd);
    close(lfd);
    unit_end();

    unit_begin("unix listen refuses to remove a non-socket");
    tmp_path(file, sizeof(file), "plain");
    {
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);

	unit_assert(fd >= 0 && write(fd, "keep", 4) == 4);
	close(fd);
    }
    err = NULL;
    unit_assert(sock_listen_unix(file, 0600, 16, &err) < 0);
    unit_assert(err != NULL && strstr(err, file) != NULL);
    unit_assert(err != NULL && strstr(err, "not a socket") != NULL);
    unit_assert(lstat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);
    /* A path that does not fit sun_path is an error, not a truncation. */
    {
	char longpath[300];

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	unit_assert(sock_listen_unix(longpath, 0600, 1, &err) < 0);
	unit_assert(strstr(err, "too long") != NULL);
	unit_assert(sock_connect_unix(longpath, 100, &err) < 0);
    }
    unit_end();
}

static void test_fifo(void)
{
    char path[128], file[128], buf[16];
    const char *err = NULL;
    struct stat st;
    int fd, fd2, wfd;

    unit_begin("fifo listener: created, read-write, never EOF");
    tmp_path(path, sizeof(path), "fifo");
    fd = sock_listen_fifo(path, 0622, &err);
    unit_assert(fd >= 0);
    unit_assert(lstat(path, &st) == 0 && S_ISFIFO(st.st_mode));
    unit_assert_inteq(st.st_mode & 07777, 0622);
    unit_assert(!is_blocking(fd) && is_cloexec(fd));
    unit_assert_inteq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
    wfd = open(path, O_WRONLY | O_NONBLOCK);
    unit_assert(wfd >= 0);
    unit_assert(write(wfd, "wake", 4) == 4);
    close(wfd);
    unit_assert(wait_readable(fd, 2000));
    unit_assert(read(fd, buf, sizeof(buf)) == 4 && memcmp(buf, "wake", 4) == 0);
    /* The writer is gone, but we hold a write end: no EOF, just nothing. */
    errno = 0;
    unit_assert(read(fd, buf, sizeof(buf)) < 0 && errno == EAGAIN);
    unit_assert(!wait_readable(fd, 50));
    /* Opening an existing FIFO again works. */
    fd2 = sock_listen_fifo(path, 0622, &err);
    unit_assert(fd2 >= 0);
    close(fd2);
    close(fd);
    unit_end();

    unit_begin("fifo listener refuses a non-FIFO");
    tmp_path(file, sizeof(file), "notfifo");
    fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
    unit_assert(fd >= 0);
    close(fd);
    unit_assert(sock_listen_fifo(file, 0622, &err) < 0);
    unit_assert(strstr(err, file) != NULL && strstr(err, "not a FIFO") != NULL);
    unit_assert(lstat(file, &st) == 0 && S_ISREG(st.st_mode));
    unit_end();
}

/* inet_pair - listen on family/host, connect to connect_host, accept */
static void inet_round_trip(int family, const char *host, const char *connect_host, const char *want_peer)
{
    char port[16], peer_addr[64], peer_port[16], cport[16];
    const char *err = NULL;
    int lfd, cfd, sfd, on = 0;
    socklen_t len = sizeof(on);

    lfd = sock_listen_inet(family, host, "0", 16, &err);
    unit_assert(lfd >= 0);
    if (lfd < 0) {
	printf("  %s\n", err);
	return;
    }
    unit_assert(!is_blocking(lfd) && is_cloexec(lfd));
    unit_assert(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, &len) == 0 && on);
    if (family == AF_INET6) {
	on = 0;
	len = sizeof(on);
	unit_assert(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len) == 0 && on);
    }
    local_port(lfd, port, sizeof(port));
    unit_assert(strcmp(port, "0") != 0);
    cfd = sock_connect_inet(connect_host, port, 2000, &err);
    unit_assert(cfd >= 0);
    if (cfd < 0) {
	printf("  %s\n", err);
	close(lfd);
	return;
    }
    unit_assert(is_blocking(cfd) && is_cloexec(cfd));
    unit_assert(wait_readable(lfd, 2000));
    sfd = sock_accept(lfd);
    unit_assert(sfd >= 0);
    unit_assert(is_blocking(sfd) && is_cloexec(sfd));
    round_trip(cfd, sfd);
    unit_assert(sock_peer_name(sfd, peer_addr, sizeof(peer_addr), peer_port, sizeof(peer_port)));
    unit_assert_streq(peer_addr, want_peer);
    local_port(cfd, cport, sizeof(cport));
    unit_assert_streq(peer_port, cport);
    unit_assert(sock_peer_name(cfd, peer_addr, sizeof(peer_addr), peer_port, sizeof(peer_port)));
    unit_assert_streq(peer_port, port);
    close(cfd);
    close(sfd);
    close(lfd);
}

static void test_inet(void)
{
    const char *err = NULL;
    char port[16];
    int fd;

    unit_begin("inet listen on 127.0.0.1 port 0, connect, accept, peer name");
    inet_round_trip(AF_INET, "127.0.0.1", "127.0.0.1", "127.0.0.1");
    unit_end();

    unit_begin("inet listen on any (\"*\" and NULL), connect by name localhost");
    fd = sock_listen_inet(AF_INET, "*", "0", 4, &err);
    unit_assert(fd >= 0);
    close(fd);
    inet_round_trip(AF_INET, NULL, "localhost", "127.0.0.1");
    unit_end();

    unit_begin("inet listen errors name the address");
    unit_assert(sock_listen_inet(AF_INET, "127.0.0.1", "no-such-service-ph", 4, &err) < 0);
    unit_assert(strstr(err, "127.0.0.1:no-such-service-ph") != NULL);
    unit_assert(sock_listen_inet(AF_INET, "not.numeric.example", "25", 4, &err) < 0);
    unit_assert(strstr(err, "not.numeric.example") != NULL);
    unit_assert(sock_listen_inet(AF_UNIX, "127.0.0.1", "25", 4, &err) < 0);
    /* The same port twice: EADDRINUSE, with address and system text. */
    fd = sock_listen_inet(AF_INET, "127.0.0.1", "0", 4, &err);
    unit_assert(fd >= 0);
    local_port(fd, port, sizeof(port));
    {
	char want[64];
	int fd2 = sock_listen_inet(AF_INET, "127.0.0.1", port, 4, &err);

	unit_assert(fd2 < 0);
	fmt_buf_or_panic(want, sizeof(want), "127.0.0.1:%s", port);
	unit_assert(strstr(err, want) != NULL);
	unit_assert(strstr(err, strerror(EADDRINUSE)) != NULL);
    }
    close(fd);
    unit_end();

    /* A service name resolves (if /etc/services knows it). */
    unit_begin("inet connect accepts a service name for the port");
    fd = sock_connect_inet("127.0.0.1", "tcpmux", 500, &err);
    if (fd >= 0)
	close(fd);
    else if (getservbyname("tcpmux", "tcp") != NULL)
	unit_assert(strstr(err, "127.0.0.1:tcpmux") != NULL
		    && strstr(err, strerror(ECONNREFUSED)) != NULL);
    fd = sock_connect_inet("127.0.0.1", "no-such-service-ph", 500, &err);
    unit_assert(fd < 0 && strstr(err, "127.0.0.1:no-such-service-ph") != NULL);
    unit_end();
}

static void test_inet6(void)
{
    const char *err = NULL;
    int fd;

    fd = sock_listen_inet(AF_INET6, "::1", "0", 4, &err);
    if (fd < 0) {
	char why[512];

	(void) snprintf(why, sizeof(why), "no IPv6 loopback here (%s)", err);
	unit_skip("inet6 on ::1", why);
	return;
    }
    close(fd);
    unit_begin("inet6 listen on ::1 (V6ONLY), connect to [::1], peer name");
    inet_round_trip(AF_INET6, "::1", "[::1]", "::1");
    inet_round_trip(AF_INET6, "[::1]", "::1", "::1");
    unit_end();

    unit_begin("inet6 any and inet any share a port (V6ONLY)");
    {
	char port[16];
	int fd6, fd4;

	fd6 = sock_listen_inet(AF_INET6, "*", "0", 4, &err);
	unit_assert(fd6 >= 0);
	local_port(fd6, port, sizeof(port));
	fd4 = sock_listen_inet(AF_INET, "*", port, 4, &err);
	unit_assert(fd4 >= 0);
	if (fd4 >= 0)
	    close(fd4);
	close(fd6);
    }
    unit_end();
}

static void test_connect_errors(void)
{
    const char *err = NULL;
    char port[16], want[64], path[128];
    long long start, took;
    int lfd, fds[16], n, i, fd = -1;

    unit_begin("inet connect refused: error names address and reason");
    lfd = sock_listen_inet(AF_INET, "127.0.0.1", "0", 4, &err);
    unit_assert(lfd >= 0);
    local_port(lfd, port, sizeof(port));
    close(lfd);
    unit_assert(sock_connect_inet("127.0.0.1", port, 2000, &err) < 0);
    fmt_buf_or_panic(want, sizeof(want), "127.0.0.1:%s", port);
    unit_assert(strstr(err, want) != NULL);
    unit_assert(strstr(err, strerror(ECONNREFUSED)) != NULL);
    unit_end();

    /*
     * A listener with backlog 0 that never accepts: once its queue is
     * full, the kernel drops further SYNs and a connect must time out.
     */
    unit_begin("inet connect times out against a full listen queue");
    lfd = sock_listen_inet(AF_INET, "127.0.0.1", "0", 0, &err);
    unit_assert(lfd >= 0);
    local_port(lfd, port, sizeof(port));
    took = -1;
    for (n = 0; n < 16; n++) {
	start = now_ms();
	fds[n] = sock_connect_inet("127.0.0.1", port, 300, &err);
	if (fds[n] < 0) {
	    took = now_ms() - start;
	    break;
	}
    }
    unit_assert(n < 16);
    unit_assert(took >= 250 && took < 3000);
    unit_assert(strstr(err, strerror(ETIMEDOUT)) != NULL);
    fmt_buf_or_panic(want, sizeof(want), "127.0.0.1:%s", port);
    unit_assert(strstr(err, want) != NULL);
    for (i = 0; i < n; i++)
	close(fds[i]);
    close(lfd);
    unit_end();

    unit_begin("unix connect times out against a full listen queue");
    tmp_path(path, sizeof(path), "full");
    lfd = sock_listen_unix(path, 0600, 0, &err);
    unit_assert(lfd >= 0);
    took = -1;
    for (n = 0; n < 16; n++) {
	start = now_ms();
	fds[n] = sock_connect_unix(path, 200, &err);
	if (fds[n] < 0) {
	    took = now_ms() - start;
	    break;
	}
    }
    unit_assert(n < 16);
    unit_assert(took >= 150 && took < 3000);
    unit_assert(strstr(err, strerror(ETIMEDOUT)) != NULL);
    unit_assert(strstr(err, path) != NULL);
    for (i = 0; i < n; i++)
	close(fds[i]);
    close(lfd);
    unit_end();

    unit_begin("unix connect to a missing socket names the path");
    tmp_path(path, sizeof(path), "missing");
    fd = sock_connect_unix(path, 200, &err);
    unit_assert(fd < 0);
    unit_assert(strstr(err, path) != NULL && strstr(err, strerror(ENOENT)) != NULL);
    unit_end();
}

/* send_fds - sendmsg one byte with count descriptors */
static bool send_fds(int sock, const int *fds, int count)
{
    char control[CMSG_SPACE(sizeof(int) * 64)] __attribute__((aligned(8)));
    struct msghdr msg;
    struct iovec iov;
    struct cmsghdr *cmsg;
    char byte = 'm';

    memset(&msg, 0, sizeof(msg));
    memset(control, 0, sizeof(control));
    iov.iov_base = &byte;
    iov.iov_len = 1;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t) count);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t) count);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t) count);
    return sendmsg(sock, &msg, 0) == 1;
}

static void test_fd_passing(void)
{
    char buf[64];
    int sp[2], p[2], p2[2], p3[2], got = -2, extra[3];
    int many[20], i;
    ssize_t n;

    unit_begin("fd passing: a pipe end travels and data flows through it");
    unit_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    unit_assert(pipe2(p, O_CLOEXEC) == 0);
    unit_assert(sock_send_fd(sp[0], p[1], "hello fd", 8) == 0);
    close(p[1]);			/* only the passed copy keeps it open */
    n = sock_recv_fd(sp[1], &got, buf, sizeof(buf));
    unit_assert_inteq(n, 8);
    unit_assert(memcmp(buf, "hello fd", 8) == 0);
    unit_assert(got >= 0);
    unit_assert(is_cloexec(got));
    unit_assert(write(got, "through", 7) == 7);
    close(got);
    unit_assert(read(p[0], buf, sizeof(buf)) == 7 && memcmp(buf, "through", 7) == 0);
    unit_assert(read(p[0], buf, sizeof(buf)) == 0);	/* all write ends gone */
    close(p[0]);
    unit_end();

    unit_begin("fd passing: plain data gives fd -1; EOF gives 0");
    unit_assert(write(sp[0], "xy", 2) == 2);
    got = -2;
    unit_assert_inteq(sock_recv_fd(sp[1], &got, buf, sizeof(buf)), 2);
    unit_assert_inteq(got, -1);
    unit_end();

    unit_begin("fd passing: extra descriptors are closed, not leaked");
    /* Non-blocking read ends: a leaked write end shows as EAGAIN, not a hang. */
    unit_assert(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0 && pipe2(p2, O_CLOEXEC | O_NONBLOCK) == 0
		&& pipe2(p3, O_CLOEXEC | O_NONBLOCK) == 0);
    extra[0] = p[1];
    extra[1] = p2[1];
    extra[2] = p3[1];
    unit_assert(send_fds(sp[0], extra, 3));
    close(p[1]);
    close(p2[1]);
    close(p3[1]);
    got = -2;
    unit_assert_inteq(sock_recv_fd(sp[1], &got, buf, sizeof(buf)), 1);
    unit_assert(got >= 0);
    /* The received extras were closed: those pipes now read EOF. */
    unit_assert(read(p2[0], buf, sizeof(buf)) == 0);
    unit_assert(read(p3[0], buf, sizeof(buf)) == 0);
    unit_assert(write(got, "1", 1) == 1);
    close(got);
    unit_assert(read(p[0], buf, sizeof(buf)) == 1);
    unit_assert(read(p[0], buf, sizeof(buf)) == 0);
    close(p[0]);
    close(p2[0]);
    close(p3[0]);
    unit_end();

    unit_begin("fd passing: truncated control data is rejected, nothing leaks");
    unit_assert(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    for (i = 0; i < 20; i++)
	many[i] = p[1];
    unit_assert(send_fds(sp[0], many, 20));
    close(p[1]);
    got = -2;
    errno = 0;
    unit_assert(sock_recv_fd(sp[1], &got, buf, sizeof(buf)) < 0);
    unit_assert_inteq(errno, EMSGSIZE);
    unit_assert_inteq(got, -1);
    unit_assert(read(p[0], buf, sizeof(buf)) == 0);
    close(p[0]);
    close(sp[0]);
    got = -2;
    unit_assert_inteq(sock_recv_fd(sp[1], &got, buf, sizeof(buf)), 0);
    unit_assert_inteq(got, -1);
    close(sp[1]);
    unit_end();

    unit_begin("fd passing: datagrams on SOCK_SEQPACKET, with and without a descriptor");
    unit_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == 0);
    unit_assert(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    unit_assert(sock_send_fd(sp[0], -1, "first", 5) == 0);
    unit_assert(sock_send_fd(sp[0], p[1], "second", 6) == 0);
    close(p[1]);
    got = -2;
    unit_assert_inteq(sock_recv_fd(sp[1], &got, buf, sizeof(buf)), 5);	/* not "firstsecond" */
    unit_assert(memcmp(buf, "first", 5) == 0);
    unit_assert_inteq(got, -1);
    unit_assert_inteq(sock_recv_fd(sp[1], &got, buf, sizeof(buf)), 6);
    unit_assert(memcmp(buf, "second", 6) == 0);
    unit_assert(got >= 0);
    close(got);
    unit_assert(read(p[0], buf, sizeof(buf)) == 0);
    close(p[0]);
    close(sp[0]);
    close(sp[1]);
    unit_end();

    unit_begin("fd passing over a listener connection (sock_connect_unix)");
    {
	char path[128];
	const char *err = NULL;
	int lfd, cfd, sfd;

	tmp_path(path, sizeof(path), "pass");
	lfd = sock_listen_unix(path, 0600, 4, &err);
	cfd = sock_connect_unix(path, 2000, &err);
	unit_assert(lfd >= 0 && cfd >= 0 && wait_readable(lfd, 2000));
	sfd = sock_accept(lfd);
	unit_assert(sfd >= 0);
	unit_assert(pipe2(p, O_CLOEXEC) == 0);
	unit_assert(sock_send_fd(cfd, p[0], "r", 1) == 0);
	close(p[0]);
	got = -2;
	unit_assert_inteq(sock_recv_fd(sfd, &got, buf, sizeof(buf)), 1);
	unit_assert(got >= 0);
	unit_assert(write(p[1], "abc", 3) == 3);
	unit_assert(read(got, buf, sizeof(buf)) == 3 && memcmp(buf, "abc", 3) == 0);
	close(got);
	close(p[1]);
	close(cfd);
	close(sfd);
	close(lfd);
    }
    unit_end();
}

/* test_wait_readable - sock_wait_readable: timeout kept, data and EOF */
static void test_wait_readable(void)
{
    struct timespec t0, t1;
    long ms;
    int sv[2];

    unit_begin("sock_wait_readable: times out, sees data and EOF");
    unit_assert(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unit_assert_inteq(sock_wait_readable(sv[0], 150), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    unit_assert(ms >= 140 && ms < 2000);
    unit_assert_inteq(sock_wait_readable(sv[0], 0), 0);
    unit_assert(write(sv[1], "x", 1) == 1);
    unit_assert_inteq(sock_wait_readable(sv[0], 1000), 1);
    close(sv[1]);
    unit_assert(read(sv[0], &ms, 1) == 1);
    unit_assert_inteq(sock_wait_readable(sv[0], 1000), 1);	/* EOF */
    close(sv[0]);
    unit_end();
}

int main(void)
{
    int ret;

    alarm(60);
    unit_assert(fmt_try_buf(tmpdir, sizeof(tmpdir), "/tmp/ph-sock-XXXXXX"));
    if (mkdtemp(tmpdir) == NULL) {
	perror("mkdtemp");
	return 1;
    }
    test_unix();
    test_fifo();
    test_inet();
    test_inet6();
    test_connect_errors();
    test_fd_passing();
    test_wait_readable();
    ret = unit_done();
    (void) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ret;
}
