/* stream.c - buffered streams over file descriptors, with deadlines
 * (see stream.h).
 *
 * Buffers: an 8 KiB read buffer, and a write buffer that starts at 8 KiB
 * and grows up to STREAM_WBUF_MAX; data that would pass that bound first
 * flushes what is buffered, and a single write of at least the bound goes
 * straight to the descriptor.
 *
 * Deadlines: each public call gets one deadline, "now + timeout", taken
 * when it starts (timeout < 0: none). Before every read(2)/write(2) the
 * descriptor is polled for at most the time left, so a peer that sends
 * one byte per second cannot stretch a stream_getline() past the timeout.
 * Descriptors may be blocking or not: EINTR is retried and EAGAIN goes
 * back to poll(2).
 *
 * System calls: poll(2) is skipped where it cannot matter. A socket is
 * written with send(MSG_DONTWAIT) at once, and polled only when that
 * would block; a read from a socket whose last read filled the buffer
 * (more is likely waiting) is tried the same way first. A descriptor
 * without a deadline (timeout < 0: queue files, pipes to wait for) is
 * read and written directly, as a poll without a limit adds nothing.
 * A read from a blocking socket with a deadline does not poll either:
 * the socket gets a receive timeout (SO_RCVTIMEO) of half the stream's
 * timeout, set once per stream (again only when the timeout changes),
 * and recv(2) itself waits, for at most that slice, and only while at
 * least the slice is left before the deadline (the tail, a cut deadline
 * and a descriptor found to be non-blocking go back to poll(2)). The
 * wait hook runs before such a recv and after a signal interrupts it,
 * as before a poll (a socket with a receive timeout is never restarted
 * after a signal handler, SA_RESTART or not). One system call per read
 * where there were two; SMTP and IPC servers read one short line per
 * wait. Except after a send on an AF_UNIX stream socket that has not
 * been followed by a read: when the peer takes those bytes, the kernel
 * wakes every waiter on our socket for the freed send space, and a
 * waiting recv(2) (it does not filter wake-ups by event, unlike poll)
 * wakes, finds nothing and sleeps again: two context switches per
 * request and answer, the costliest thing on a busy mail path. So a
 * read that follows a send on a unix socket waits in poll(2) for
 * POLLIN.
 * Whether the descriptor is a socket is learnt from the first send(2)
 * or recv(2) (ENOTSOCK), not from an fstat(2) per stream. A write without
 * a deadline in a process that ignores SIGPIPE needs no answer: there
 * write(2) does what send(MSG_NOSIGNAL) does, so a new stream on a file
 * or pipe is written without a failed send(2) first. (The disposition is
 * looked up once per process; a program that ignores SIGPIPE and later
 * restores it must not write to sockets through new streams without a
 * deadline after that.)
 *
 * Replaceable I/O (stream_set_io): reads and writes go through io->read
 * and io->write. When io->pending() says bytes are buffered inside the
 * I/O layer, a read does not poll first. When an I/O function fails with
 * EAGAIN, the stream polls the descriptor for the events io->want()
 * returns (a TLS read may need the fd writable), or without want() in
 * the direction of the operation, and calls it again. A
 * release function (stream_set_io_release) frees the layer's context
 * with the stream.
 *
 * Sticky errors: reads and writes fail independently. A read that hits
 * EOF, a timeout or an error makes later reads fail at once with the same
 * status; a failed or timed-out write makes later writes fail. So after a
 * read timeout a server can still write its "421 timeout" reply, and a
 * client whose write failed can still read the reply that explains it.
 * stream_error() reports the first failure; stream_clear_error() clears
 * both sides. On failure errno is set (ETIMEDOUT for a timeout, the
 * saved errno for an error) when a call returns.
 *
 * Memory streams (stream_open_memory): no descriptor (fd -1); the input
 * is a private copy read through the replaceable I/O, the output goes to
 * the caller's struct str. Nothing there can block, so a memory stream
 * never polls and its timeout never applies.
 *
 * SIGPIPE: a write to a socket uses send(2) with MSG_NOSIGNAL, so a peer
 * that went away gives EPIPE, not a signal. Other descriptors (pipes)
 * use write(2); a program that writes into pipes must ignore SIGPIPE
 * itself (signal(SIGPIPE, SIG_IGN)); this module never changes signal
 * dispositions. */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

#define STREAM_RBUF_SIZE	8192
#define STREAM_WBUF_INIT	8192
#define STREAM_WBUF_MAX		(64 * 1024)
#define STREAM_PRINTF_MAX	STR_MAX_DEFAULT

struct stream {
    int fd;
    int timeout_ms;			/* < 0: wait forever */
    int is_socket;			/* 1 send/recv, 0 write/read, -1 unknown */
    bool read_full;			/* the last read filled the buffer */
    int rcvtimeo_ms;			/* SO_RCVTIMEO we set; 0 none, -1 never */
    int is_unix;			/* 1 AF_UNIX socket, 0 not, -1 unknown */
    bool sent_unread;			/* sent since the last read: the peer
					 * may not have read it yet */
    const struct stream_io *io;		/* NULL: plain read/write */
    void *io_ctx;
    void (*io_release)(void *ctx);	/* stream_set_io_release */
    char *rbuf;				/* STREAM_RBUF_SIZE bytes */
    size_t rpos, rlen;			/* unread bytes: rbuf[rpos..rlen) */
    char *wbuf;
    size_t wlen, wcap;
    enum stream_status rerr;		/* sticky read failure */
    enum stream_status werr;		/* sticky write failure */
    enum stream_status first_err;	/* what stream_error() says */
    int rerrno, werrno;			/* errno saved with the failures */
    struct str *fmt;			/* stream_vprintf scratch */
    struct stream_memory *memory;	/* stream_open_memory, else NULL */
    void (*wait_hook)(struct stream *, void *);	/* stream_set_wait_hook */
    void *wait_hook_ctx;
    long long cut_at;			/* stream_cut_deadline: ms, -1 none */
};

/* The two ends of a memory stream. */
struct stream_memory {
    char *input;			/* a copy of the data to read */
    size_t input_len, input_pos;
    struct str *output;			/* the caller's; NULL: writes fail */
};

/* now_ms - monotonic clock in milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	msg_fatal("clock_gettime(CLOCK_MONOTONIC): %m");
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* stream_deadline - the deadline of an operation starting now; -1: none.
 * A cut of the previous operation ends here. */
static long long stream_deadline(struct stream *s)
{
    s->cut_at = -1;
    return s->timeout_ms < 0 ? -1 : now_ms() + s->timeout_ms;
}

/* stream_wait - poll the fd for events until the deadline (or the cut
 * of stream_cut_deadline, if earlier); the wait hook runs first and after
 * each interruption by a signal */
static enum stream_status stream_wait(struct stream *s, short events, long long deadline)
{
    struct pollfd pfd;
    long long until;
    int wait_ms, n;
    bool run_hook = true;

    if (s->memory)
	return STREAM_OK;			/* memory is always ready */
    for (;;) {
	if (run_hook && s->wait_hook) {
	    run_hook = false;
	    s->wait_hook(s, s->wait_hook_ctx);
	}
	until = deadline;
	if (s->cut_at >= 0 && (until < 0 || s->cut_at < until))
	    until = s->cut_at;
	if (until < 0) {
	    wait_ms = -1;
	} else {
	    long long left = until - now_ms();

	    wait_ms = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
	}
	pfd.fd = s->fd;
	pfd.events = events;
	pfd.revents = 0;
	n = poll(&pfd, 1, wait_ms);
	if (n > 0) {
	    if (pfd.revents & POLLNVAL) {
		errno = EBADF;
		return STREAM_ERROR;
	    }
	    /* readable, writable, or POLLHUP/POLLERR: the I/O call tells */
	    return STREAM_OK;
	}
	if (n == 0) {
	    if (until >= 0 && now_ms() < until)
		continue;			/* woke early (rounding) */
	    errno = ETIMEDOUT;
	    return STREAM_TIMEOUT;
	}
	if (errno != EINTR)
	    return STREAM_ERROR;
	run_hook = true;
    }
}

/* stream_set_wait_hook - run fn before each wait and after a signal */
void stream_set_wait_hook(struct stream *s, void (*fn)(struct stream *s, void *ctx), void *ctx)
{
    s->wait_hook = fn;
    s->wait_hook_ctx = ctx;
}

/* stream_cut_deadline - end the operation in progress within ms */
void stream_cut_deadline(struct stream *s, int ms)
{
    long long at = now_ms() + (ms > 0 ? ms : 0);

    if (s->cut_at < 0 || at < s->cut_at)
	s->cut_at = at;
}

/* set_rerr - record a sticky read failure */
static void set_rerr(struct stream *s, enum stream_status status)
{
    int saved = errno;

    s->rerr = status;
    s->rerrno = status == STREAM_TIMEOUT ? ETIMEDOUT : saved;
    if (s->first_err == STREAM_OK)
	s->first_err = status;
    errno = saved;
}

/* set_werr - record a sticky write failure */
static void set_werr(struct stream *s, enum stream_status status)
{
    int saved = errno;

    s->werr = status;
    s->werrno = status == STREAM_TIMEOUT ? ETIMEDOUT : saved;
    if (s->first_err == STREAM_OK)
	s->first_err = status;
    errno = saved;
}

/* io_pending - bytes buffered inside the replaceable I/O layer */
static size_t io_pending(const struct stream *s)
{
    if (s->io && s->io->pending)
	return s->io->pending(s->io_ctx);
    return 0;
}

/* io_want - the events to poll for after the I/O layer said EAGAIN */
static short io_want(const struct stream *s, short dflt)
{
    short ev;

    if (s->io && s->io->want && (ev = s->io->want(s->io_ctx)) != 0)
	return ev;
    return dflt;
}

/* sock_recv_now - a read that does not wait, on a socket (or a
 * descriptor not yet known not to be one); ENOTSOCK learns otherwise */
static ssize_t sock_recv_now(struct stream *s)
{
    ssize_t n = recv(s->fd, s->rbuf, STREAM_RBUF_SIZE, MSG_DONTWAIT);

    if (n >= 0)
	s->is_socket = 1;
    else if (errno == ENOTSOCK)
	s->is_socket = 0;
    return n;
}

/* recv_slice_ms - the receive timeout slice for s's timeout; 0: none */
static int recv_slice_ms(const struct stream *s)
{
    return s->timeout_ms >= 20 ? s->timeout_ms / 2 : 0;
}

/* sent_on_unix_socket - did s send bytes to an AF_UNIX peer that may
 * not have read them yet (see the top of this file)? */
static bool sent_on_unix_socket(struct stream *s)
{
    if (!s->sent_unread)
	return false;
    if (s->is_unix < 0) {
	int domain;
	socklen_t len = sizeof(domain);

	s->is_unix = getsockopt(s->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0
	    && domain == AF_UNIX;
    }
    return s->is_unix == 1;
}

/* recv_timed_ready - may this read wait in recv(2) under SO_RCVTIMEO
 * instead of poll(2)? Runs the wait hook first and sets the socket's
 * receive timeout when the slice changed. */
static bool recv_timed_ready(struct stream *s, long long deadline)
{
    int slice;

    if (s->io != NULL || s->memory != NULL || deadline < 0 || s->is_socket == 0
	|| s->rcvtimeo_ms < 0 || (slice = recv_slice_ms(s)) == 0 || sent_on_unix_socket(s))
	return false;
    if (s->wait_hook)
	s->wait_hook(s, s->wait_hook_ctx);
    if (s->cut_at >= 0 || (slice = recv_slice_ms(s)) == 0 || deadline - now_ms() < slice)
	return false;
    if (slice != s->rcvtimeo_ms) {
	struct timeval tv = {.tv_sec = slice / 1000, .tv_usec = (slice % 1000) * 1000};

	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
	    if (errno == ENOTSOCK)
		s->is_socket = 0;
	    s->rcvtimeo_ms = -1;
	    return false;
	}
	s->rcvtimeo_ms = slice;
    }
    return true;
}

/* stream_fill - read more input into the (empty) read buffer; returns
 * STREAM_OK with data, or a failure that is made sticky */
static enum stream_status stream_fill(struct stream *s, long long deadline)
{
    enum stream_status status;
    bool need_poll, try_now;
    short events = POLLIN;
    ssize_t n;

    if (s->rerr != STREAM_OK) {
	errno = s->rerrno;
	return s->rerr;
    }
    if (s->rpos < s->rlen)
	return STREAM_OK;
    s->rpos = s->rlen = 0;
    /* without a deadline a blocking read is the wait; after a full
     * buffer more input is likely there: try before polling */
    need_poll = s->io != NULL || deadline >= 0;
    try_now = s->io == NULL && deadline >= 0 && s->read_full && s->is_socket != 0;
    for (;;) {
	if (try_now) {
	    try_now = false;
	    n = sock_recv_now(s);
	    if (n < 0 && errno == ENOTSOCK)
		continue;			/* poll, then read(2) */
	} else if (need_poll && events == POLLIN && recv_timed_ready(s, deadline)) {
	    long long started = now_ms();

	    n = recv(s->fd, s->rbuf, STREAM_RBUF_SIZE, 0);
	    if (n >= 0)
		s->is_socket = 1;
	    else if (errno == EAGAIN || errno == EWOULDBLOCK) {
		/* at once: the descriptor is non-blocking, poll from now on;
		 * else the slice ran out: the loop looks at the deadline */
		if (now_ms() - started < s->rcvtimeo_ms / 2)
		    s->rcvtimeo_ms = -1;
		continue;
	    } else if (errno == EINTR)
		continue;			/* the hook runs again */
	    else if (errno == ENOTSOCK) {
		s->is_socket = 0;
		s->rcvtimeo_ms = -1;
		continue;
	    }
	} else {
	    if (need_poll && io_pending(s) == 0) {
		if ((status = stream_wait(s, events, deadline)) != STREAM_OK) {
		    set_rerr(s, status);
		    return status;
		}
	    }
	    if (s->io)
		n = s->io->read(s->io_ctx, s->rbuf, STREAM_RBUF_SIZE);
	    else
		n = read(s->fd, s->rbuf, STREAM_RBUF_SIZE);
	}
	if (n > 0) {
	    s->rlen = (size_t) n;
	    s->read_full = (size_t) n == STREAM_RBUF_SIZE;
	    s->sent_unread = false;
	    return STREAM_OK;
	}
	if (n == 0) {
	    set_rerr(s, STREAM_EOF);
	    return STREAM_EOF;
	}
	if (errno == EINTR) {
	    need_poll = false;
	    continue;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
	    need_poll = true;		/* spurious wakeup or io layer wants more */
	    events = io_want(s, POLLIN);
	    continue;
	}
	set_rerr(s, STREAM_ERROR);
	return STREAM_ERROR;
    }
}

/* sigpipe_ignored - this process ignores SIGPIPE (looked up once) */
static bool sigpipe_ignored(void)
{
    static int ignored = -1;

    if (ignored < 0) {
	struct sigaction sa;

	ignored = sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO)
	    && sa.sa_handler == SIG_IGN;
    }
    return ignored > 0;
}

/* fd_write_once - one write(2) or send(2); learns whether fd is a
 * socket. now: do not block (a socket gets MSG_DONTWAIT) */
static ssize_t fd_write_once(struct stream *s, const char *data, size_t len, bool now)
{
    ssize_t n;

    /* unknown kind, blocking write, no SIGPIPE: write(2) serves both */
    if (s->is_socket < 0 && !now && sigpipe_ignored())
	return write(s->fd, data, len);
    if (s->is_socket != 0) {
	n = send(s->fd, data, len, MSG_NOSIGNAL | (now ? MSG_DONTWAIT : 0));
	if (n >= 0 || errno != ENOTSOCK) {
	    s->is_socket = 1;
	    return n;
	}
	s->is_socket = 0;
	if (now) {
	    errno = EAGAIN;		/* poll before the first write(2) */
	    return -1;
	}
    }
    return write(s->fd, data, len);
}

/* fd_write - fd_write_once, noting that bytes went out unread */
static ssize_t fd_write(struct stream *s, const char *data, size_t len, bool now)
{
    ssize_t n = fd_write_once(s, data, len, now);

    if (n > 0)
	s->sent_unread = true;
    return n;
}

/* stream_write_fd - write all of data to the fd (or io) by the deadline.
 * A socket is tried without waiting first; a descriptor without a
 * deadline is written directly; anything else is polled first. */
static enum stream_status stream_write_fd(struct stream *s, const char *data, size_t len,
					  long long deadline, size_t *done)
{
    enum stream_status status;
    bool need_poll = s->io != NULL || (deadline >= 0 && s->is_socket == 0);
    short events = POLLOUT;
    bool now = deadline >= 0;		/* a socket must not block past it */
    ssize_t n;

    *done = 0;
    while (*done < len) {
	if (need_poll && (status = stream_wait(s, events, deadline)) != STREAM_OK)
	    return status;
	if (s->io) {
	    n = s->io->write(s->io_ctx, data + *done, len - *done);
	} else {
	    n = fd_write(s, data + *done, len - *done, now);
	}
	if (n > 0) {
	    *done += (size_t) n;
	    /* short: the socket buffer is full; wait before the next try
	     * (without a deadline a blocking write(2) does the waiting) */
	    need_poll = s->io != NULL || deadline >= 0;
	    events = POLLOUT;
	    continue;
	}
	if (n == 0) {
	    errno = EIO;			/* no progress and no error */
	    return STREAM_ERROR;
	}
	if (errno == EINTR) {
	    need_poll = false;
	    continue;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
	    need_poll = true;
	    events = io_want(s, POLLOUT);
	    continue;
	}
	return STREAM_ERROR;
    }
    return STREAM_OK;
}

/* stream_flush_by - write the whole write buffer by the deadline */
static int stream_flush_by(struct stream *s, long long deadline)
{
    enum stream_status status;
    size_t done;

    if (s->werr != STREAM_OK) {
	errno = s->werrno;
	return -1;
    }
    if (s->wlen == 0)
	return 0;
    status = stream_write_fd(s, s->wbuf, s->wlen, deadline, &done);
    /* keep what was not written, so clear_error + flush can retry */
    memmove(s->wbuf, s->wbuf + done, s->wlen - done);
    s->wlen -= done;
    if (status != STREAM_OK) {
	set_werr(s, status);
	return -1;
    }
    return 0;
}

/* stream_open - wrap fd in a new stream (timeout: none) */
struct stream *stream_open(int fd)
{
    struct stream *s = mem_zalloc(sizeof(*s));

    s->fd = fd;
    s->timeout_ms = -1;
    s->is_socket = -1;			/* learnt at the first send/recv */
    s->is_unix = -1;			/* learnt at the first read after a send */
    s->rbuf = mem_alloc(STREAM_RBUF_SIZE);
    s->wcap = STREAM_WBUF_INIT;
    s->wbuf = mem_alloc(s->wcap);
    s->rerr = s->werr = s->first_err = STREAM_OK;
    s->cut_at = -1;
    return s;
}

/* stream_free - free the stream; the fd stays open, unflushed output is
 * discarded (call stream_flush first if it matters) */
void stream_free(struct stream **sp)
{
    struct stream *s;

    if (sp == NULL || (s = *sp) == NULL)
	return;
    if (s->io_release)
	s->io_release(s->io_ctx);
    mem_free(&s->rbuf);
    mem_free(&s->wbuf);
    str_free(&s->fmt);
    if (s->memory) {
	mem_free(&s->memory->input);
	mem_free(&s->memory);
    }
    mem_free(sp);
}

/* stream_close - flush within the timeout, close the fd, free */
int stream_close(struct stream **sp)
{
    struct stream *s;
    int ret, saved = 0;

    if (sp == NULL || (s = *sp) == NULL)
	return 0;
    ret = stream_flush(s);
    if (ret < 0)
	saved = errno;
    if (s->fd >= 0 && close(s->fd) < 0 && ret == 0) {
	ret = -1;
	saved = errno;
    }
    stream_free(sp);
    if (ret < 0)
	errno = saved;
    return ret;
}

/* memory_read - the next bytes of a memory stream's input; 0 at its end */
static ssize_t memory_read(void *ctx, void *buf, size_t len)
{
    struct stream_memory *m = ctx;
    size_t left = m->input_len - m->input_pos;

    if (len > left)
	len = left;
    memcpy(buf, m->input + m->input_pos, len);
    m->input_pos += len;
    return (ssize_t) len;
}

/* memory_write - append to the caller's str; past its maximum (or
 * without one) a write error, ENOSPC */
static ssize_t memory_write(void *ctx, const void *buf, size_t len)
{
    struct stream_memory *m = ctx;

    if (m->output == NULL || !str_try_append(m->output, buf, len)) {
	errno = ENOSPC;
	return -1;
    }
    return (ssize_t) len;
}

static const struct stream_io memory_io = {memory_read, memory_write, NULL, NULL};

/* stream_open_memory - a stream over memory (see stream.h) */
struct stream *stream_open_memory(const void *data, size_t len, struct str *output)
{
    struct stream *s = stream_open(-1);
    struct stream_memory *m = mem_zalloc(sizeof(*m));

    m->input = mem_alloc(mem_size_add(len, 1));
    if (len)
	memcpy(m->input, data, len);
    m->input_len = len;
    m->output = output;
    s->memory = m;
    s->io = &memory_io;
    s->io_ctx = m;
    return s;
}

/* stream_fd - the descriptor */
int stream_fd(const struct stream *s)
{
    return s->fd;
}

/* stream_set_timeout - per-operation timeout in ms; < 0: none */
void stream_set_timeout(struct stream *s, int timeout_ms)
{
    s->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
}

/* stream_set_unix - the caller knows whether s is an AF_UNIX socket
 * (it made or accepted it), so the first read after a send need not ask
 * the kernel (sent_on_unix_socket) */
void stream_set_unix(struct stream *s, bool is_unix)
{
    s->is_unix = is_unix ? 1 : 0;
}

/* stream_get_timeout - the timeout in ms, -1 for none */
int stream_get_timeout(const struct stream *s)
{
    return s->timeout_ms;
}

/* stream_set_io - route I/O through io (NULL: back to the plain fd).
 * Buffered output must have been flushed: it belongs to the old layer. */
void stream_set_io(struct stream *s, const struct stream_io *io, void *ctx)
{
    if (s->wlen > 0)
	msg_panic("stream_set_io: %zu bytes of unflushed output", s->wlen);
    if (s->memory)
	msg_panic("stream_set_io: a memory stream has no descriptor to put I/O on");
    if (io && (io->read == NULL || io->write == NULL))
	msg_panic("stream_set_io: read and write functions are required");
    if (s->io_release) {
	s->io_release(s->io_ctx);
	s->io_release = NULL;
    }
    s->io = io;
    s->io_ctx = io ? ctx : NULL;
}

/* stream_set_io_release - free the I/O layer's ctx with the stream */
void stream_set_io_release(struct stream *s, void (*release)(void *ctx))
{
    s->io_release = release;
}

/* stream_get_io - the I/O layer and its context */
const struct stream_io *stream_get_io(const struct stream *s, void **ctx_r)
{
    if (ctx_r)
	*ctx_r = s->io_ctx;
    return s->memory ? NULL : s->io;
}

/* stream_discard_input - drop the unread bytes of the read buffer */
size_t stream_discard_input(struct stream *s)
{
    size_t n = s->rlen - s->rpos;

    s->rpos = s->rlen = 0;
    s->read_full = false;
    return n;
}

/* stream_preload_input - data to be read before the buffered input */
int stream_preload_input(struct stream *s, const void *data, size_t len)
{
    size_t unread = s->rlen - s->rpos;

    _Static_assert(STREAM_PRELOAD_MAX <= STREAM_RBUF_SIZE, "preload must fit the read buffer");
    if (len > STREAM_PRELOAD_MAX || unread > STREAM_RBUF_SIZE - len) {
	errno = EMSGSIZE;
	return -1;
    }
    if (len == 0)
	return 0;
    memmove(s->rbuf + len, s->rbuf + s->rpos, unread);
    memcpy(s->rbuf, data, len);
    s->rpos = 0;
    s->rlen = len + unread;
    return 0;
}

/* stream_error - the first failure (STREAM_OK if none) */
enum stream_status stream_error(const struct stream *s)
{
    return s->first_err;
}

/* stream_clear_error - forget sticky read and write failures */
void stream_clear_error(struct stream *s)
{
    s->rerr = s->werr = s->first_err = STREAM_OK;
    s->rerrno = s->werrno = 0;
}

/* stream_status_text - a short description of a status */
const char *stream_status_text(enum stream_status status)
{
    switch (status) {
    case STREAM_OK:
	return "ok";
    case STREAM_EOF:
	return "end of input";
    case STREAM_TIMEOUT:
	return "timeout";
    case STREAM_TOOLONG:
	return "line too long";
    case STREAM_ERROR:
	return "I/O error";
    }
    return "unknown stream status";
}

/* stream_getline - read one line of at most max bytes (see stream.h).
 * The limit is also capped at line->max. On a timeout or error the part
 * of the line read so far is left in line. */
enum stream_status stream_getline(struct stream *s, struct str *line, size_t max)
{
    long long deadline = stream_deadline(s);
    enum stream_status status;

    if (max == 0)
	msg_panic("stream_getline: zero maximum length");
    if (max > line->max)
	max = line->max;
    str_reset(line);
    for (;;) {
	size_t room = max - line->len;
	size_t avail = s->rlen - s->rpos;
	size_t take = avail < room ? avail : room;
	const char *start = s->rbuf + s->rpos;
	const char *nl = take ? memchr(start, '\n', take) : NULL;

	if (nl)
	    take = (size_t) (nl - start) + 1;
	if (take > 0) {
	    str_append_or_panic(line, start, take);	/* take <= max - len */
	    s->rpos += take;
	}
	if (nl)
	    return STREAM_OK;
	if (line->len >= max)
	    return STREAM_TOOLONG;
	if ((status = stream_fill(s, deadline)) != STREAM_OK) {
	    if (status == STREAM_EOF && line->len > 0)
		return STREAM_OK;		/* final unterminated line */
	    return status;
	}
    }
}

/* stream_skip_line - discard input through the next "\n"; STREAM_OK if
 * found, or if EOF ended a non-empty remainder */
enum stream_status stream_skip_line(struct stream *s)
{
    long long deadline = stream_deadline(s);
    enum stream_status status;
    bool any = false;

    for (;;) {
	size_t avail = s->rlen - s->rpos;
	const char *start = s->rbuf + s->rpos;
	const char *nl = avail ? memchr(start, '\n', avail) : NULL;

	if (nl) {
	    s->rpos += (size_t) (nl - start) + 1;
	    return STREAM_OK;
	}
	if (avail > 0)
	    any = true;
	s->rpos = s->rlen;
	if ((status = stream_fill(s, deadline)) != STREAM_OK)
	    return status == STREAM_EOF && any ? STREAM_OK : status;
    }
}

/* stream_read - up to len bytes: buffered ones first, else one read */
ssize_t stream_read(struct stream *s, void *buf, size_t len)
{
    enum stream_status status;
    size_t avail;

    if (len == 0)
	return 0;
    if ((status = stream_fill(s, stream_deadline(s))) != STREAM_OK)
	return status == STREAM_EOF ? 0 : -1;
    avail = s->rlen - s->rpos;
    if (len > avail)
	len = avail;
    memcpy(buf, s->rbuf + s->rpos, len);
    s->rpos += len;
    return (ssize_t) len;
}

/* stream_read_exact - exactly len bytes within one deadline */
enum stream_status stream_read_exact(struct stream *s, void *buf, size_t len)
{
    long long deadline = stream_deadline(s);
    enum stream_status status;
    char *out = buf;

    while (len > 0) {
	size_t avail, take;

	if ((status = stream_fill(s, deadline)) != STREAM_OK)
	    return status;
	avail = s->rlen - s->rpos;
	take = len < avail ? len : avail;
	memcpy(out, s->rbuf + s->rpos, take);
	s->rpos += take;
	out += take;
	len -= take;
    }
    return STREAM_OK;
}

/* stream_getc - one byte, or -1 at EOF or on failure */
int stream_getc(struct stream *s)
{
    if (stream_fill(s, stream_deadline(s)) != STREAM_OK)
	return -1;
    return (unsigned char) s->rbuf[s->rpos++];
}

/* stream_buffered - input read from the fd but not yet consumed, here or
 * inside the I/O layer */
size_t stream_buffered(const struct stream *s)
{
    return (s->rlen - s->rpos) + io_pending(s);
}

/* stream_buffered_here - input in this stream's own buffer: reading that
 * much can never block (unlike bytes an I/O layer says it holds) */
size_t stream_buffered_here(const struct stream *s)
{
    return s->rlen - s->rpos;
}

/* stream_write - buffer data; flush first when the buffer would pass its
 * bound; write large blocks directly */
int stream_write(struct stream *s, const void *data, size_t len)
{
    long long deadline;
    enum stream_status status;
    size_t done;

    if (s->werr != STREAM_OK) {
	errno = s->werrno;
	return -1;
    }
    if (len == 0)
	return 0;
    if (len <= STREAM_WBUF_MAX - s->wlen) {
	if (len > s->wcap - s->wlen) {
	    size_t cap = s->wcap;

	    while (cap - s->wlen < len)
		cap = cap > STREAM_WBUF_MAX / 2 ? STREAM_WBUF_MAX : cap * 2;
	    s->wbuf = mem_realloc(s->wbuf, cap);
	    s->wcap = cap;
	}
	memcpy(s->wbuf + s->wlen, data, len);
	s->wlen += len;
	return 0;
    }
    deadline = stream_deadline(s);
    if (stream_flush_by(s, deadline) < 0)
	return -1;
    if (len < STREAM_WBUF_MAX) {
	if (len > s->wcap) {
	    s->wbuf = mem_realloc(s->wbuf, STREAM_WBUF_MAX);
	    s->wcap = STREAM_WBUF_MAX;
	}
	memcpy(s->wbuf, data, len);
	s->wlen = len;
	return 0;
    }
    status = stream_write_fd(s, data, len, deadline, &done);
    if (status != STREAM_OK) {
	set_werr(s, status);
	return -1;
    }
    return 0;
}

/* stream_puts - write a C string (no newline is added) */
int stream_puts(struct stream *s, const char *text)
{
    return stream_write(s, text, strlen(text));
}

/* stream_vprintf - formatted output; output longer than
 * STREAM_PRINTF_MAX is a bug and panics */
int stream_vprintf(struct stream *s, const char *fmt, va_list ap)
{
    int ret;

    if (s->werr != STREAM_OK) {
	errno = s->werrno;
	return -1;
    }
    if (s->fmt == NULL)
	s->fmt = str_new(STREAM_PRINTF_MAX);
    str_reset(s->fmt);
    if (!str_try_vappendf(s->fmt, fmt, ap))
	msg_panic("stream_printf: output longer than %zu bytes", (size_t) STREAM_PRINTF_MAX);
    ret = stream_write(s, str_cstr(s->fmt), str_len(s->fmt));
    if (s->fmt->cap > STREAM_WBUF_MAX)
	str_free(&s->fmt);			/* do not keep a huge scratch */
    return ret;
}

/* stream_printf - formatted output */
int stream_printf(struct stream *s, const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = stream_vprintf(s, fmt, ap);
    va_end(ap);
    return ret;
}

/* stream_flush - write out all buffered output within one deadline */
int stream_flush(struct stream *s)
{
    return stream_flush_by(s, stream_deadline(s));
}
