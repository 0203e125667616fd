/* server_multi.c - the MULTI skeleton loop: many clients per process,
 * event driven (auth; tests/bin/ph-multi-echo).
 *
 * Each client is a struct stream in the event loop (event.h) with a
 * silence timer (client_timeout); multi_input runs when it has input and
 * again while its stream holds buffered input. The process takes clients
 * until max_use, a reload or a table change, then serves the ones it has
 * to their end and exits; with spec.multi_busy, a client idle between
 * requests (nothing buffered, multi_busy false) is closed at once, so a persistent
 * client (a login process's pooled auth connection) cannot hold an old
 * process. A table change is noticed at an accept and, at most once a
 * second, after a request served. */

/* system */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "server.h"
#include "server_internal.h"

/* The clients of this process. With a framing (spec.multi_framing) the
 * skeleton reads a client's bytes itself, without blocking, into
 * `pending`; the client's stream reads from there (srv_frame_io), at most
 * one request per read, so the daemon's stream never holds more than the
 * request at hand and the skeleton always sees whether the next one is
 * whole. */
struct srv_client {
    struct stream *stream;
    void *ctx;
    event_timer_id timer;
    bool gone;
    int fd;
    struct str *pending;		/* framed: read, not yet handed out */
    size_t pending_off;			/* framed: handed out up to here */
    bool eof;				/* framed: the client closed (or failed) */
    int read_errno;			/* framed: why, 0: a clean EOF */
};
static struct srv_client **srv_clients;
static size_t srv_client_count;
static size_t srv_client_cap;
static size_t srv_taken_count;		/* clients run by spec.multi_accept */
static bool srv_not_listening;

/* MULTI                                                            */

static void srv_multi_input_cb(int fd, void *ctx);


/* srv_pending_len - framed bytes not handed out yet */
static size_t srv_pending_len(const struct srv_client *c)
{
    return str_len(c->pending) - c->pending_off;
}

/* srv_frame_read - the stream's read: the pending bytes, at most up to
 * the end of the first whole request; with nothing pending, the
 * descriptor itself (the daemon reads past a request: it may wait) */
static ssize_t srv_frame_read(void *ctx, void *buf, size_t len)
{
    struct srv_client *c = ctx;
    size_t have = srv_pending_len(c), n;
    const char *p = str_cstr(c->pending) + c->pending_off;

    if (have == 0) {
	if (c->eof) {
	    errno = c->read_errno;
	    return c->read_errno ? -1 : 0;
	}
	return read(c->fd, buf, len);
    }
    n = srv_frame_length(srv_spec->multi_framing, p, have);
    if (n == 0 || n > have)
	n = have;				/* a partial request: all of it */
    if (n > len)
	n = len;
    memcpy(buf, p, n);
    c->pending_off += n;
    if (c->pending_off == str_len(c->pending)) {
	str_reset(c->pending);
	c->pending_off = 0;
    }
    return (ssize_t) n;
}

/* srv_frame_write - the stream's write: the descriptor */
static ssize_t srv_frame_write(void *ctx, const void *buf, size_t len)
{
    struct srv_client *c = ctx;
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

    if (n < 0 && errno == ENOTSOCK)
	n = write(c->fd, buf, len);
    return n;
}

/* srv_frame_pending - pending bytes (or an EOF to report): the stream
 * reads them without polling the descriptor */
static size_t srv_frame_pending(void *ctx)
{
    struct srv_client *c = ctx;

    return srv_pending_len(c) + (c->eof ? 1 : 0);
}

static const struct stream_io srv_frame_io = {
    srv_frame_read, srv_frame_write, srv_frame_pending, NULL,
};

/* srv_frame_fill - read what the client sent, without waiting, into
 * pending (at most SERVER_FRAME_MAX bytes held); notes EOF and errors */
static void srv_frame_fill(struct srv_client *c)
{
    char buf[16384];
    size_t room;
    ssize_t n;

    if (c->pending_off > 0) {			/* compact: keep what is left */
	size_t rest = srv_pending_len(c);

	memmove(c->pending->data, c->pending->data + c->pending_off, rest);
	(void) str_truncate(c->pending, rest);
	c->pending_off = 0;
    }
    while (!c->eof && (room = SERVER_FRAME_MAX - str_len(c->pending)) > 0) {
	n = recv(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && errno == ENOTSOCK)
	    n = read(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf));
	if (n > 0) {
	    if (!str_try_append(c->pending, buf, (size_t) n))
		msg_panic("srv_frame_fill: pending buffer overflow");
	    if ((size_t) n < sizeof(buf))
		break;				/* drained, most likely */
	    continue;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
	    break;
	if (n < 0 && errno == EINTR)
	    continue;
	c->eof = true;
	c->read_errno = n < 0 ? errno : 0;
    }
}

/* srv_client_timeout_ms - the silence limit of a MULTI client, <0: none */
static int srv_client_timeout_ms(void)
{
    long t = srv_spec->client_timeout;

    if (t == 0)
	t = var_ipc_timeout;
    if (t < 0)
	return -1;
    return (int) (t > INT_MAX / 1000 ? INT_MAX : t * 1000);
}

/* srv_client_drop - disconnect one client */
static void srv_client_drop(struct srv_client *c)
{
    if (c->gone)
	return;
    c->gone = true;
    event_remove(stream_fd(c->stream));
    if (c->timer)
	event_timer_cancel(c->timer);
    c->timer = 0;
    if (srv_spec->multi_disconnect)
	srv_spec->multi_disconnect(c->stream, c->ctx);
    (void) stream_close(&c->stream);
    str_free(&c->pending);
}

/* srv_trim_soon - a client left: give the heap pages freed since back
 * to the system a second later (malloc_trim), at most once a second.
 * A burst of clients (a login process's, auth's connections with their
 * 8 KiB stream buffers) otherwise leaves its high-water mark resident
 * for the life of the process (docs/bench.md, POP3 memory). */
static event_timer_id srv_trim_timer;

static void srv_trim_now(void *ctx)
{
    (void) ctx;
    srv_trim_timer = 0;
    (void) malloc_trim(0);
}

static void srv_trim_soon(void)
{
    if (srv_trim_timer == 0)
	srv_trim_timer = event_timer_add(1000, srv_trim_now, NULL);
}

/* srv_client_reap - forget dropped clients; re-arm idle when none left */
static void srv_client_reap(void)
{
    size_t j = 0;

    for (size_t i = 0; i < srv_client_count; i++) {
	if (srv_clients[i]->gone) {
	    mem_free(&srv_clients[i]);
	    srv_trim_soon();
	} else
	    srv_clients[j++] = srv_clients[i];
    }
    if (j == 0 && srv_client_count > 0 && srv_taken_count == 0)
	srv_idle_arm();
    srv_client_count = j;
}

/* srv_client_timeout - a MULTI client was silent too long */
static void srv_client_timeout(void *ctx)
{
    struct srv_client *c = ctx;

    c->timer = 0;
    if (msg_verbose)
	msg_info("client timeout -- disconnecting");
    srv_client_drop(c);
}

/* srv_client_rearm - restart a client's silence timer */
static void srv_client_rearm(struct srv_client *c)
{
    int ms = srv_client_timeout_ms();

    if (c->timer)
	event_timer_cancel(c->timer);
    c->timer = ms < 0 ? 0 : event_timer_add(ms, srv_client_timeout, c);
}

/* srv_multi_add - register a new client */
static struct srv_client *srv_multi_add(int fd)
{
    struct srv_client *c = mem_zalloc(sizeof(*c));

    if (srv_client_count == srv_client_cap) {
	srv_client_cap = srv_client_cap ? srv_client_cap * 2 : 16;
	srv_clients = mem_realloc(srv_clients, mem_size_mul(srv_client_cap, sizeof(*srv_clients)));
    }
    srv_clients[srv_client_count++] = c;
    srv_idle_disarm();
    c->fd = fd;
    c->stream = srv_open_client(fd);
    if (srv_spec->multi_framing != SERVER_FRAME_NONE) {
	c->pending = str_new(SERVER_FRAME_MAX);
	stream_set_io(c->stream, &srv_frame_io, c);
    }
    c->ctx = srv_spec->multi_connect ? srv_spec->multi_connect(c->stream) : NULL;
    srv_client_rearm(c);
    event_add_read(fd, srv_multi_input_cb, c);
    return c;
}

/* srv_multi_serve_raw - SERVER_FRAME_NONE: multi_input at any input,
 * again while the stream holds buffered input it takes from */
static void srv_multi_serve_raw(struct srv_client *c)
{
    for (;;) {
	size_t before = stream_buffered(c->stream);

	if (!srv_spec->multi_input(c->stream, c->ctx) || stream_error(c->stream) != STREAM_OK) {
	    srv_client_drop(c);
	    return;
	}
	/* more buffered input: serve it, unless the daemon took none */
	if (stream_buffered(c->stream) == 0 || stream_buffered(c->stream) >= before)
	    break;
    }
    srv_client_rearm(c);
}

/* srv_multi_serve_framed - a framing: read what is there, then
 * multi_input once per whole request (or for the EOF, or for a full
 * buffer without a request in it: the daemon's reader decides). The
 * read deadline restarts with each request served. */
static void srv_multi_serve_framed(struct srv_client *c)
{
    srv_frame_fill(c);
    for (;;) {
	size_t have = srv_pending_len(c) + stream_buffered_here(c->stream);
	size_t whole = srv_frame_length(srv_spec->multi_framing,
					str_cstr(c->pending) + c->pending_off,
					srv_pending_len(c));

	if (stream_buffered_here(c->stream) == 0 && whole == 0 && !c->eof
	    && str_len(c->pending) < SERVER_FRAME_MAX)
	    return;				/* wait for the rest */
	if (!srv_spec->multi_input(c->stream, c->ctx) || stream_error(c->stream) != STREAM_OK) {
	    srv_client_drop(c);
	    return;
	}
	srv_client_rearm(c);
	if (srv_pending_len(c) + stream_buffered_here(c->stream) >= have) {
	    /* the daemon took nothing: at the end, or stuck on a request
	     * that cannot complete, the client is done */
	    if (c->eof || str_len(c->pending) >= SERVER_FRAME_MAX)
		srv_client_drop(c);
	    return;
	}
	if (srv_pending_len(c) == 0 && stream_buffered_here(c->stream) == 0 && !c->eof)
	    return;
    }
}

/* srv_multi_check_tables - at most once a second: a table changed?
 * (persistent clients make accepts rare) */
static void srv_multi_check_tables(void)
{
    static time_t last;
    time_t now = time(NULL);

    if (now == last || srv_exit_requested)
	return;
    last = now;
    (void) srv_tables_changed();
}

/* srv_multi_input_cb - a client has input */
static void srv_multi_input_cb(int fd, void *ctx)
{
    struct srv_client *c = ctx;

    (void) fd;
    if (c->gone)
	return;
    server_watchdog_reset();
    if (srv_spec->multi_framing == SERVER_FRAME_NONE)
	srv_multi_serve_raw(c);
    else
	srv_multi_serve_framed(c);
    srv_multi_check_tables();
}

/* srv_client_idle - between requests: nothing read and not handed out,
 * nothing unread in the socket, the daemon owes nothing */
static bool srv_client_idle(struct srv_client *c)
{
    if (c->pending != NULL) {
	srv_frame_fill(c);
	if (srv_pending_len(c) > 0 || c->eof)
	    return c->eof && srv_pending_len(c) == 0;
    } else {
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n > 0)
	    return false;
    }
    if (stream_buffered_here(c->stream) > 0)
	return false;
    return !srv_spec->multi_busy(c->stream, c->ctx);
}

/* srv_multi_close_idle - exiting: close the clients idle between requests */
static void srv_multi_close_idle(void)
{
    for (size_t i = 0; i < srv_client_count; i++) {
	struct srv_client *c = srv_clients[i];

	if (!c->gone && srv_client_idle(c)) {
	    if (msg_verbose)
		msg_info("exiting: closing a client idle between requests");
	    srv_client_drop(c);
	}
    }
}

/* The address accept(2) gave for the client that multi_accept takes. */
static struct sockaddr_storage srv_multi_peer;
static socklen_t srv_multi_peer_len;

/* server_multi_client_name - the numeric address and port of the client
 * that spec.multi_accept is taking, as sock_peer_name gives them */
bool server_multi_client_name(char *addr, size_t addr_size, char *port, size_t port_size)
{
    return sock_addr_name(&srv_multi_peer, srv_multi_peer_len, addr, addr_size, port,
			  port_size);
}

/* srv_multi_accept_cb - a listener is readable */
static void srv_multi_accept_cb(int lfd, void *ctx)
{
    int fd;

    (void) ctx;
    if (srv_exit_requested || srv_limit_reached() || srv_tables_changed())
	return;
    if ((fd = sock_accept_peer(lfd, &srv_multi_peer, &srv_multi_peer_len)) < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
	    && errno != ECONNABORTED && errno != EPROTO)
	    msg_warn("accept: %m");
	return;
    }
    /* A MULTI process stays available for more clients. */
    srv_use_count++;
    if (!srv_limit_reached())
	srv_notify_used();
    else
	srv_notify(MASTER_STAT_TAKEN);
    if (srv_spec->multi_accept) {
	srv_taken_count++;
	srv_idle_disarm();			/* close-on-exec: sock_accept */
	srv_spec->multi_accept(fd);
	return;
    }
    srv_multi_add(fd);
}

/* server_multi_client_end - a client of spec.multi_accept ended */
void server_multi_client_end(void)
{
    if (srv_taken_count == 0)
	msg_panic("server_multi_client_end: no client");
    srv_trim_soon();
    if (--srv_taken_count == 0 && srv_client_count == 0)
	srv_idle_arm();
}

/* server_multi_exiting - taking no new clients */
bool server_multi_exiting(void)
{
    return srv_not_listening || srv_exit_requested;
}


/* srv_multi_loop - run the event loop until there is nothing left to do */
_Noreturn void srv_multi_loop(void)
{
    bool listening = true;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    for (int i = 0; i < srv_listen_count; i++)
	event_add_read(MASTER_LISTEN_FD + i, srv_multi_accept_cb, NULL);
    srv_idle_arm();
    for (;;) {
	srv_client_reap();
	if (listening && (srv_exit_requested || srv_limit_reached() || srv_master_gone())) {
	    /* Still serving clients, but taking no new ones: master must not
	     * count this process as available, or new clients would wait
	     * in the listen queue until the last old one leaves (at
	     * max_use the last accept already said TAKEN). */
	    if (!srv_limit_reached() && srv_client_count + srv_taken_count > 0)
		srv_notify(MASTER_STAT_TAKEN);
	    srv_stop_listening();
	    listening = false;
	    srv_not_listening = true;
	}
	if (!listening && srv_client_count > 0 && srv_spec->multi_busy != NULL) {
	    srv_multi_close_idle();
	    srv_client_reap();
	}
	if (!listening && srv_client_count + srv_taken_count == 0)
	    break;
	if (srv_idle_expired && srv_client_count + srv_taken_count == 0) {
	    if (msg_verbose)
		msg_info("idle timeout -- exiting");
	    break;
	}
	srv_idle_expired = false;
	srv_loop_once();
    }
    srv_done();
}

/* srv_multi_stdin - -S for MULTI: one client on stdin/stdout */
_Noreturn void srv_multi_stdin(void)
{
    struct srv_client *c;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    srv_use_count++;
    if (srv_spec->multi_accept) {
	srv_taken_count++;
	srv_multi_peer_len = sizeof(srv_multi_peer);
	if (getpeername(srv_stdio_fd(), (struct sockaddr *) &srv_multi_peer,
			&srv_multi_peer_len) < 0)
	    srv_multi_peer.ss_family = AF_UNSPEC;	/* a pipe: unknown */
	srv_spec->multi_accept(srv_stdio_fd());
	while (srv_taken_count > 0)
	    srv_loop_once();
	srv_stdio_end();
	srv_done();
    }
    c = srv_multi_add(srv_stdio_fd());
    while (!c->gone) {
	srv_loop_once();
    }
    srv_client_reap();
    srv_stdio_end();
    srv_done();
}
