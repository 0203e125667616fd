/* conn.c - a non-blocking client connection on the event loop.
 *
 * Implements conn.h: bounded input buffer with line splitting, an
 * output queue flushed when the socket is writable, idle and write
 * deadlines, deferred close from inside the connection's own callbacks,
 * and the hand-over of the descriptor (conn_take_fd).
 *
 * Replaceable I/O (conn_set_io, TLS): reads and writes go through the
 * io functions. Each direction remembers the poll events its last
 * EAGAIN asked for (want(): a TLS read may wait for POLLOUT), and the
 * event registration follows them; with an io layer one handler serves
 * both directions (flush, then read). Bytes the layer holds (pending())
 * are read from a zero-delay timer, as the socket may never become
 * readable for them. The io read runs as one of c's callbacks (busy),
 * as the TLS layer calls the owner's handshake-done function from it. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "event.h"
#include "mem.h"
#include "msg.h"

#define CONN_IN_INITIAL		1024	/* first input buffer size */
#define CONN_READ_CHUNK		16384	/* at most this much per read(2) */
#define CONN_READ_MIN		1024	/* grow the buffer when less room is left */
#define CONN_OUT_KEEP		(64 * 1024)	/* free a bigger empty output buffer */
#define CONN_WRITE_TIMEOUT_DEFAULT (60 * 1000)
#define CONN_DISPATCH_MAX	10000	/* on_input calls per readiness, bound */

struct conn {
    int fd;
    bool is_socket;
    struct conn_handlers h;
    void *ctx;

    /* input: bytes in[in_off .. in_len) are unread */
    char *in;
    size_t in_off, in_len, in_cap;
    size_t input_max;
    bool skipping;		/* dropping the rest of a too-long line */
    bool paused;
    bool eof;			/* read(2) gave 0 */
    void (*on_eof)(struct conn *c, void *ctx);	/* conn_set_eof_handler */
    bool eof_told;		/* on_eof ran */

    /* output: out[out_off .. out_len) is queued */
    char *out;
    size_t out_off, out_len, out_cap;

    /* events */
    bool reg_read, reg_write;
    bool write_armed;		/* output was queued at the last update */
    event_timer_id idle_timer, write_timer, offer_timer;
    int idle_ms, write_ms;
    long long last_input_ms, last_write_ms;

    /* life */
    int busy;			/* inside one of our callbacks */
    enum conn_close_reason closed;
    bool close_after_flush;
    enum conn_close_reason flush_reason;	/* the reason once flushed */
    bool taken;			/* conn_take_fd: free without on_close */

    /* replaceable I/O (conn_set_io) */
    const struct conn_io *io;
    void *io_ctx;
    short io_read_want, io_write_want;	/* after EAGAIN; 0: the default */
    size_t io_plain;		/* queued before conn_set_io: sent raw */
    event_timer_id io_timer;	/* read what the layer holds */
};

static void conn_update_events(struct conn *c);
static void conn_finish(struct conn *c);
static void conn_dispatch_input(struct conn *c);
static void conn_read_ready(int fd, void *ctx);

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* conn_gone - closed or handed over: no more I/O */
static bool conn_gone(const struct conn *c)
{
    return c->closed != CONN_CLOSE_NONE || c->taken;
}

/* conn_avail - unread input bytes */
static size_t conn_avail(const struct conn *c)
{
    return c->in_len - c->in_off;
}

/* conn_compact - move unread input to the start of the buffer */
static void conn_compact(struct conn *c)
{
    if (c->in_off == 0)
	return;
    if (c->in_len > c->in_off)
	memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
}

/* conn_in_reserve - room for len more bytes after in_len */
static void conn_in_reserve(struct conn *c, size_t len)
{
    size_t need = mem_size_add(c->in_len, len);
    size_t cap;

    if (need + 1 <= c->in_cap)
	return;
    cap = c->in_cap ? c->in_cap : CONN_IN_INITIAL;
    while (cap < need + 1)
	cap = mem_size_mul(cap, 2);
    c->in = mem_realloc(c->in, cap);
    c->in_cap = cap;
}

/* conn_make - the conn around fd, whose modes are already right */
static struct conn *conn_make(int fd, const struct conn_handlers *h, void *ctx,
			      size_t input_max, bool is_socket)
{
    struct conn *c;

    if (fd < 0 || h == NULL || h->on_close == NULL || input_max < 3)
	msg_panic("conn_new: bad arguments");
    c = mem_zalloc(sizeof(*c));
    c->fd = fd;
    c->is_socket = is_socket;
    c->h = *h;
    c->ctx = ctx;
    c->input_max = input_max;
    c->write_ms = CONN_WRITE_TIMEOUT_DEFAULT;
    c->last_input_ms = c->last_write_ms = now_ms();
    conn_update_events(c);
    return c;
}

/* conn_new_socket - take a socket made with SOCK_NONBLOCK | SOCK_CLOEXEC:
 * no fcntl(2) or fstat(2) (see conn.h) */
struct conn *conn_new_socket(int fd, const struct conn_handlers *h, void *ctx, size_t input_max)
{
    return conn_make(fd, h, ctx, input_max, true);
}

/* conn_new - take fd (made non-blocking and close-on-exec here) */
struct conn *conn_new(int fd, const struct conn_handlers *h, void *ctx, size_t input_max)
{
    struct stat st;
    int fl;

    if (fd < 0)
	msg_panic("conn_new: bad arguments");
    if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0
	|| fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
	msg_panic("conn_new: fcntl fd %d: %m", fd);
    return conn_make(fd, h, ctx, input_max, fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode));
}

int conn_fd(const struct conn *c)
{
    return c->fd;
}

/* conn_set_io - route reads and writes through io (NULL: the fd) */
void conn_set_io(struct conn *c, const struct conn_io *io, void *io_ctx)
{
    if (conn_gone(c))
	msg_panic("conn_set_io: connection closed");
    if (io && (io->read == NULL || io->write == NULL))
	msg_panic("conn_set_io: read and write functions are required");
    if (c->io && c->io->release && (c->io != io || c->io_ctx != io_ctx))
	c->io->release(c->io_ctx);
    if (c->reg_read || c->reg_write) {
	event_remove(c->fd);			/* the handlers change */
	c->reg_read = c->reg_write = false;
    }
    if (c->io_timer) {
	event_timer_cancel(c->io_timer);
	c->io_timer = 0;
    }
    c->io = io;
    c->io_ctx = io ? io_ctx : NULL;
    c->io_read_want = c->io_write_want = 0;
    c->io_plain = io ? c->out_len - c->out_off : 0;
    conn_update_events(c);
}

const struct conn_io *conn_get_io(const struct conn *c, void **io_ctx_r)
{
    if (io_ctx_r)
	*io_ctx_r = c->io_ctx;
    return c->io;
}

void conn_set_ctx(struct conn *c, void *ctx)
{
    c->ctx = ctx;
}

/* conn_after_callback - leave a callback; finish a close or hand-over
 * that was asked for inside it. true if c is gone (freed). */
static bool conn_after_callback(struct conn *c)
{
    if (--c->busy > 0)
	return false;
    if (conn_gone(c)) {
	conn_finish(c);
	return true;
    }
    return false;
}

/* conn_do_close - close for why; deferred while inside a callback */
static void conn_do_close(struct conn *c, enum conn_close_reason why)
{
    if (conn_gone(c))
	return;
    c->closed = why;
    conn_update_events(c);
    if (c->busy == 0)
	conn_finish(c);
}

/* conn_release - drop events and timers, free the memory */
static void conn_release(struct conn *c)
{
    if (c->reg_read || c->reg_write)
	event_remove(c->fd);
    if (c->idle_timer)
	event_timer_cancel(c->idle_timer);
    if (c->write_timer)
	event_timer_cancel(c->write_timer);
    if (c->offer_timer)
	event_timer_cancel(c->offer_timer);
    if (c->io_timer)
	event_timer_cancel(c->io_timer);
    if (c->io && c->io->release)
	c->io->release(c->io_ctx);
    mem_free(&c->in);
    mem_free(&c->out);
    mem_free(&c);
}

/* conn_finish - run on_close (not for a hand-over), close, free */
static void conn_finish(struct conn *c)
{
    if (c->reg_read || c->reg_write) {
	event_remove(c->fd);
	c->reg_read = c->reg_write = false;
    }
    if (!c->taken) {
	c->busy++;			/* conn_close inside on_close: no-op */
	c->h.on_close(c, c->ctx);
	if (close(c->fd) < 0 && errno != EINTR)
	    msg_warn("conn: close fd %d: %m", c->fd);
    }
    conn_release(c);
}

/* conn_flush - write what the socket takes; false if c was closed for
 * an error (deferred when inside a callback) */
static void conn_flush(struct conn *c)
{
    size_t before = c->out_len - c->out_off;
    ssize_t n = 0;

    while (c->out_off < c->out_len) {
	size_t len = c->out_len - c->out_off;

	if (c->io && c->io_plain > 0) {
	    n = send(c->fd, c->out + c->out_off, len < c->io_plain ? len : c->io_plain,
		     MSG_NOSIGNAL | MSG_DONTWAIT);
	    if (n < 0 && errno == ENOTSOCK)
		n = write(c->fd, c->out + c->out_off, len < c->io_plain ? len : c->io_plain);
	    if (n > 0)
		c->io_plain -= (size_t) n;
	} else if (c->io) {
	    n = c->io->write(c->io_ctx, c->out + c->out_off, len);
	    c->io_write_want = 0;
	    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		c->io_write_want = c->io->want ? c->io->want(c->io_ctx) : POLLOUT;
	    else if (n == 0) {
		errno = EIO;
		n = -1;
	    }
	} else if (c->is_socket)
	    n = send(c->fd, c->out + c->out_off, len, MSG_NOSIGNAL);
	else
	    n = write(c->fd, c->out + c->out_off, len);
	if (n < 0) {
	    if (errno == EINTR)
		continue;
	    if (errno == EAGAIN || errno == EWOULDBLOCK)
		break;
	    conn_do_close(c, CONN_CLOSE_ERROR);
	    return;
	}
	c->out_off += (size_t) n;
	c->last_write_ms = now_ms();
    }
    if (c->out_off == c->out_len) {
	c->out_off = c->out_len = 0;
	if (c->out_cap > CONN_OUT_KEEP) {
	    mem_free(&c->out);
	    c->out_cap = 0;
	}
	if (before > 0)
	    c->last_input_ms = now_ms();	/* the idle clock starts now */
	if (c->write_timer) {
	    event_timer_cancel(c->write_timer);
	    c->write_timer = 0;
	}
	if (c->close_after_flush) {
	    conn_do_close(c, c->flush_reason);
	    return;
	}
    }
    conn_update_events(c);
    /* on_drain: bytes went out and fewer than the low water remain */
    if (before > c->out_len - c->out_off && c->out_len - c->out_off < CONN_LOW_WATER
	&& c->h.on_drain != NULL && !conn_gone(c) && !c->close_after_flush) {
	c->busy++;
	c->h.on_drain(c, c->ctx);
	if (conn_after_callback(c))
	    return;
	if (!conn_gone(c))
	    conn_update_events(c);
    }
}

/* conn_write_ready - the event loop says the socket takes output */
static void conn_write_ready(int fd, void *ctx)
{
    struct conn *c = ctx;

    (void) fd;
    c->busy++;
    conn_flush(c);
    conn_after_callback(c);
}

/* conn_read_ready - the event loop says input (or EOF) is there */
static void conn_read_ready(int fd, void *ctx)
{
    struct conn *c = ctx;
    size_t room;
    ssize_t n;

    (void) fd;
    if (conn_gone(c) || c->paused || c->eof)
	return;
    conn_compact(c);
    if (c->in_len >= c->input_max) {
	conn_update_events(c);
	return;
    }
    room = c->input_max - c->in_len;
    if (room > CONN_READ_CHUNK)
	room = CONN_READ_CHUNK;
    /* read into the room the buffer has; grow it (doubling) only when
     * little is left: a client that sends a few short commands keeps a
     * small buffer, not CONN_READ_CHUNK rounded up to 32 KiB */
    {
	size_t have = c->in_cap > c->in_len + 1 ? c->in_cap - c->in_len - 1 : 0;

	if (have < CONN_READ_MIN && have < room) {
	    size_t grow = c->in_cap > CONN_READ_MIN ? c->in_cap : CONN_READ_MIN;

	    conn_in_reserve(c, grow < room ? grow : room);
	    have = c->in_cap - c->in_len - 1;
	}
	if (room > have)
	    room = have;
    }
    if (c->io) {
	int saved;

	c->busy++;				/* the layer may call its owner */
	n = c->io->read(c->io_ctx, c->in + c->in_len, room);
	saved = errno;
	c->io_read_want = 0;
	if (n < 0 && (saved == EAGAIN || saved == EWOULDBLOCK))
	    c->io_read_want = c->io->want ? c->io->want(c->io_ctx) : POLLIN;
	if (conn_after_callback(c) || conn_gone(c))
	    return;
	errno = saved;
    } else
	n = read(c->fd, c->in + c->in_len, room);
    if (n < 0) {
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
	    if (c->io)
		conn_update_events(c);
	    return;
	}
	c->busy++;
	conn_do_close(c, CONN_CLOSE_ERROR);
	conn_after_callback(c);
	return;
    }
    if (n == 0)
	c->eof = true;
    else {
	c->in_len += (size_t) n;
	c->last_input_ms = now_ms();
    }
    conn_update_events(c);
    conn_dispatch_input(c);
}

/* conn_dispatch_input - call on_input while it consumes input; then
 * handle EOF and flush what the callbacks queued */
static void conn_dispatch_input(struct conn *c)
{
    int rounds = 0;

    c->busy++;
    while (!conn_gone(c) && !c->paused && !c->close_after_flush
	   && conn_avail(c) > 0 && rounds++ < CONN_DISPATCH_MAX) {
	size_t before = conn_avail(c);
	bool skip_before = c->skipping;

	c->h.on_input(c, c->ctx);
	if (conn_gone(c) || (conn_avail(c) == before && c->skipping == skip_before))
	    break;
    }
    if (!conn_gone(c) && c->eof && !c->paused && !c->close_after_flush && c->on_eof != NULL) {
	/* half-close: the owner decides (once) */
	if (!c->eof_told) {
	    c->eof_told = true;
	    c->on_eof(c, c->ctx);
	}
    } else if (!conn_gone(c) && c->eof && !c->paused && !c->close_after_flush) {
	/* the client is done: answer what it asked, then close */
	if (c->out_len > c->out_off) {
	    c->close_after_flush = true;
	    c->flush_reason = CONN_CLOSE_EOF;
	} else
	    conn_do_close(c, CONN_CLOSE_EOF);
    }
    if (!conn_gone(c) && c->out_len > c->out_off)
	conn_flush(c);
    if (!conn_gone(c))
	conn_update_events(c);
    conn_after_callback(c);
}

/* conn_offer - timer: offer buffered input after an unpause */
static void conn_offer(void *ctx)
{
    struct conn *c = ctx;

    c->offer_timer = 0;
    if (conn_gone(c) || c->paused)
	return;
    conn_dispatch_input(c);
}

/* conn_idle_expired - timer: close a client that said nothing too long */
static void conn_idle_expired(void *ctx)
{
    struct conn *c = ctx;
    long long left;

    c->idle_timer = 0;
    if (conn_gone(c) || c->idle_ms <= 0)
	return;
    left = c->last_input_ms + c->idle_ms - now_ms();
    if (c->out_len > c->out_off)
	left = c->idle_ms;		/* the write deadline rules now */
    if (left > 0) {
	c->idle_timer = event_timer_add((int) left, conn_idle_expired, c);
	return;
    }
    conn_do_close(c, CONN_CLOSE_TIMEOUT);
}

/* conn_write_expired - timer: close a client that does not read */
static void conn_write_expired(void *ctx)
{
    struct conn *c = ctx;
    long long left;

    c->write_timer = 0;
    if (conn_gone(c) || c->out_len == c->out_off || c->write_ms <= 0)
	return;
    left = c->last_write_ms + c->write_ms - now_ms();
    if (left > 0) {
	c->write_timer = event_timer_add((int) left, conn_write_expired, c);
	return;
    }
    conn_do_close(c, CONN_CLOSE_TIMEOUT);
}

/* conn_io_ready - with an io layer: the fd is ready for what one of the
 * directions waits for; retry both */
static void conn_io_ready(int fd, void *ctx)
{
    struct conn *c = ctx;

    c->busy++;
    if (!conn_gone(c) && c->out_len > c->out_off)
	conn_flush(c);
    if (conn_after_callback(c) || conn_gone(c))
	return;
    conn_read_ready(fd, c);
}

/* conn_io_pending - timer: the io layer holds input the socket will not
 * announce */
static void conn_io_pending(void *ctx)
{
    struct conn *c = ctx;

    c->io_timer = 0;
    if (conn_gone(c))
	return;
    conn_read_ready(c->fd, c);
}

/* conn_update_events - poll interest and timers from the state */
static void conn_update_events(struct conn *c)
{
    bool gone = conn_gone(c);
    bool want_read = !gone && !c->paused && !c->eof && !c->close_after_flush
	&& conn_avail(c) < c->input_max;
    bool want_write = !gone && c->out_len > c->out_off;
    bool reg_read = want_read, reg_write = want_write;

    if (c->io && !gone) {
	short ev = 0;

	if (want_read)
	    ev |= c->io_read_want ? c->io_read_want : POLLIN;
	if (want_write)
	    ev |= c->io_write_want && c->io_plain == 0 ? c->io_write_want : POLLOUT;
	reg_read = (ev & POLLIN) != 0;
	reg_write = (ev & POLLOUT) != 0;
	if (want_read && c->io_timer == 0 && c->io->pending && c->io->pending(c->io_ctx) > 0)
	    c->io_timer = event_timer_add(0, conn_io_pending, c);
    }
    if (reg_read != c->reg_read) {
	if (reg_read)
	    event_add_read(c->fd, c->io ? conn_io_ready : conn_read_ready, c);
	else
	    event_remove_read(c->fd);
	c->reg_read = reg_read;
    }
    if (reg_write != c->reg_write) {
	if (reg_write)
	    event_add_write(c->fd, c->io ? conn_io_ready : conn_write_ready, c);
	else
	    event_remove_write(c->fd);
	c->reg_write = reg_write;
    }
    if (want_write && !c->write_armed) {
	c->last_write_ms = now_ms();
    }
    c->write_armed = want_write;
    if (gone)
	return;
    if (want_write && c->write_ms > 0 && c->write_timer == 0)
	c->write_timer = event_timer_add(c->write_ms, conn_write_expired, c);
    if (c->idle_ms > 0 && c->idle_timer == 0)
	c->idle_timer = event_timer_add(c->idle_ms, conn_idle_expired, c);
}

/* conn_read_line - one line; see conn.h */
enum conn_read_status conn_read_line(struct conn *c, const char **line_r, size_t *len_r)
{
    char *start, *lf;
    size_t len;

    if (conn_gone(c) || c->close_after_flush)
	return CONN_NONE;
    while (c->skipping) {
	start = c->in + c->in_off;
	lf = memchr(start, '\n', conn_avail(c));
	if (lf == NULL) {
	    c->in_off = c->in_len = 0;
	    conn_update_events(c);
	    return CONN_NONE;
	}
	c->in_off += (size_t) (lf - start) + 1;
	c->skipping = false;
    }
    start = c->in + c->in_off;
    lf = conn_avail(c) ? memchr(start, '\n', conn_avail(c)) : NULL;
    if (lf == NULL) {
	if (conn_avail(c) >= c->input_max) {
	    /* a full buffer without a line end: too long */
	    c->in_off = c->in_len = 0;
	    c->skipping = true;
	    conn_update_events(c);
	    return CONN_TOOLONG;
	}
	return CONN_NONE;
    }
    len = (size_t) (lf - start);
    c->in_off += len + 1;
    if (len > 0 && start[len - 1] == '\r')
	len--;
    if (len > c->input_max - 2) {
	conn_update_events(c);
	return CONN_TOOLONG;
    }
    start[len] = 0;
    *line_r = start;
    if (len_r)
	*len_r = len;
    conn_update_events(c);
    return CONN_LINE;
}

/* conn_read_bytes - exactly n raw bytes, or CONN_NONE until they are in */
enum conn_read_status conn_read_bytes(struct conn *c, size_t n, const void **data_r)
{
    if (conn_gone(c) || c->close_after_flush)
	return CONN_NONE;
    if (n > c->input_max && n > conn_avail(c))
	msg_panic("conn_read_bytes: %zu bytes over the input limit %zu", n, c->input_max);
    if (conn_avail(c) < n)
	return CONN_NONE;
    *data_r = c->in + c->in_off;
    c->in_off += n;
    conn_update_events(c);
    return CONN_BYTES;
}

size_t conn_input_avail(const struct conn *c)
{
    return conn_avail(c);
}

const void *conn_input_peek(const struct conn *c)
{
    return c->in ? c->in + c->in_off : "";
}

void conn_input_consume(struct conn *c, size_t n)
{
    if (n > conn_avail(c))
	msg_panic("conn_input_consume: %zu > %zu buffered", n, conn_avail(c));
    c->in_off += n;
    if (!conn_gone(c))
	conn_update_events(c);
}

/* conn_unread - put bytes back in front of the input */
void conn_unread(struct conn *c, const void *buf, size_t len)
{
    if (len == 0 || conn_gone(c))
	return;
    if (c->in_off >= len) {
	c->in_off -= len;
    } else {
	conn_compact(c);
	conn_in_reserve(c, len);
	memmove(c->in + len, c->in, c->in_len);
	c->in_len += len;
    }
    memcpy(c->in + c->in_off, buf, len);
    conn_update_events(c);
    if (!c->paused && c->busy == 0 && c->offer_timer == 0)
	c->offer_timer = event_timer_add(0, conn_offer, c);
}

/* conn_pause_input - stop or resume reading and offering input */
/* conn_set_eof_handler - half-close (conn.h) */
void conn_set_eof_handler(struct conn *c, void (*on_eof)(struct conn *c, void *ctx))
{
    c->on_eof = on_eof;
}

bool conn_input_eof(const struct conn *c)
{
    return c->eof;
}

void conn_pause_input(struct conn *c, bool paused)
{
    if (conn_gone(c) || c->paused == paused)
	return;
    c->paused = paused;
    conn_update_events(c);
    if (!paused && (conn_avail(c) > 0 || c->eof) && c->offer_timer == 0)
	c->offer_timer = event_timer_add(0, conn_offer, c);
}

void conn_set_input_max(struct conn *c, size_t input_max)
{
    if (input_max < conn_avail(c))
	input_max = conn_avail(c);
    if (input_max < 3)
	input_max = 3;
    c->input_max = input_max;
    if (!conn_gone(c))
	conn_update_events(c);
}

/* conn_out_reserve - room for len more output bytes */
static void conn_out_reserve(struct conn *c, size_t len)
{
    size_t need;
    size_t cap;

    if (c->out_off > 0 && c->out_off == c->out_len)
	c->out_off = c->out_len = 0;
    need = mem_size_add(c->out_len, len);
    if (need + 1 <= c->out_cap)
	return;
    if (c->out_off > 0) {
	memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
	c->out_len -= c->out_off;
	c->out_off = 0;
	need = mem_size_add(c->out_len, len);
	if (need + 1 <= c->out_cap)
	    return;
    }
    cap = c->out_cap ? c->out_cap : 512;
    while (cap < need + 1)
	cap = mem_size_mul(cap, 2);
    c->out = mem_realloc(c->out, cap);
    c->out_cap = cap;
}

/* conn_queued - bytes were queued: make sure they go out. Inside one
 * of c's callbacks the dispatcher flushes when the callback returns (most
 * replies leave at once, without write interest or a write deadline). */
static void conn_queued(struct conn *c)
{
    if (c->busy == 0)
	conn_update_events(c);
}

void conn_write(struct conn *c, const void *buf, size_t len)
{
    if (conn_gone(c) || c->close_after_flush || len == 0)
	return;
    conn_out_reserve(c, len);
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
    conn_queued(c);
}

char *conn_write_space(struct conn *c, size_t len)
{
    if (conn_gone(c) || c->close_after_flush)
	return NULL;
    conn_out_reserve(c, len);
    return c->out + c->out_len;
}

void conn_write_done(struct conn *c, size_t n)
{
    if (n == 0 || conn_gone(c) || c->close_after_flush)
	return;
    if (n > c->out_cap - c->out_len)
	msg_panic("conn_write_done: %zu bytes beyond the space given", n);
    c->out_len += n;
    conn_queued(c);
}

void conn_puts(struct conn *c, const char *s)
{
    conn_write(c, s, strlen(s));
}

void conn_vprintf(struct conn *c, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    if (conn_gone(c) || c->close_after_flush)
	return;
    conn_out_reserve(c, 256);
    va_copy(ap2, ap);
    n = vsnprintf(c->out + c->out_len, c->out_cap - c->out_len, fmt, ap2);
    va_end(ap2);
    if (n < 0)
	msg_panic("conn_vprintf: bad format \"%s\"", fmt);
    if ((size_t) n >= c->out_cap - c->out_len) {
	conn_out_reserve(c, (size_t) n + 1);
	if (vsnprintf(c->out + c->out_len, c->out_cap - c->out_len, fmt, ap) != n)
	    msg_panic("conn_vprintf: format length changed");
    }
    c->out_len += (size_t) n;
    conn_queued(c);
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    conn_vprintf(c, fmt, ap);
    va_end(ap);
}

size_t conn_output_pending(const struct conn *c)
{
    return c->out_len - c->out_off;
}

void conn_set_idle_timeout(struct conn *c, int ms)
{
    c->idle_ms = ms > 0 ? ms : 0;
    c->last_input_ms = now_ms();
    if (c->idle_timer) {
	event_timer_cancel(c->idle_timer);
	c->idle_timer = 0;
    }
    if (!conn_gone(c))
	conn_update_events(c);
}

void conn_set_write_timeout(struct conn *c, int ms)
{
    c->write_ms = ms > 0 ? ms : 0;
    if (c->write_timer) {
	event_timer_cancel(c->write_timer);
	c->write_timer = 0;
    }
    if (!conn_gone(c))
	conn_update_events(c);
}

/* conn_close_after_flush - stop reading; close when the output is out */
void conn_close_after_flush(struct conn *c)
{
    if (conn_gone(c))
	return;
    c->close_after_flush = true;
    c->flush_reason = CONN_CLOSE_LOCAL;
    if (c->out_len == c->out_off)
	conn_do_close(c, CONN_CLOSE_LOCAL);
    else
	conn_update_events(c);
}

void conn_close(struct conn *c, enum conn_close_reason why)
{
    conn_do_close(c, why == CONN_CLOSE_NONE ? CONN_CLOSE_LOCAL : why);
}

enum conn_close_reason conn_close_reason(const struct conn *c)
{
    return c->closed;
}

/* conn_take_fd - detach the descriptor for a hand-over; see conn.h */
int conn_take_fd(struct conn *c)
{
    int fd = c->fd;
    int fl;

    if (conn_gone(c))
	msg_panic("conn_take_fd: connection already closed");
    if (c->out_len > c->out_off)
	return -1;
    if ((fl = fcntl(fd, F_GETFL)) >= 0)
	(void) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    c->taken = true;
    if (c->reg_read || c->reg_write) {
	event_remove(fd);
	c->reg_read = c->reg_write = false;
    }
    if (c->busy == 0)
	conn_release(c);
    return fd;
}
