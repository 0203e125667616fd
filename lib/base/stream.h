/* stream.h - buffered streams over file descriptors, with deadlines.
 *
 * A stream wraps one descriptor with a read buffer and a write buffer.
 * Every blocking operation waits with poll(2) for at most the stream's
 * timeout (milliseconds; <0 = forever), so a silent peer cannot hold a
 * process. Lines are read with an explicit maximum length. The I/O
 * functions can be replaced (stream_set_io) so that TLS slots in under
 * the same interface.
 *
 * Errors are sticky: once a read or write fails, times out or hits EOF,
 * stream_error() says which and later operations fail fast. */
#ifndef POSTHORN_STREAM_H
#define POSTHORN_STREAM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

struct stream;

/* Status of a read operation. */
enum stream_status {
    STREAM_OK = 0,		/* got data (a line: see stream_getline) */
    STREAM_EOF,			/* clean end of input */
    STREAM_TIMEOUT,		/* the deadline passed */
    STREAM_TOOLONG,		/* line longer than the limit (see below) */
    STREAM_ERROR,		/* read/write error; see errno at the time */
};

/* Replaceable I/O: return bytes moved, 0 at EOF, -1 with errno
 * (EAGAIN means "poll for want_read/want_write and retry"). */
struct stream_io {
    ssize_t (*read)(void *ctx, void *buf, size_t len);
    ssize_t (*write)(void *ctx, const void *buf, size_t len);
    /* pending - bytes buffered inside the I/O layer (e.g. TLS records) */
    size_t (*pending)(void *ctx);
    /* want - after -1/EAGAIN: the poll events to wait for before the
     * retry (a TLS read may need POLLOUT). NULL: POLLIN for a read,
     * POLLOUT for a write. */
    short (*want)(void *ctx);
};

struct stream *stream_open(int fd);
/* stream_open_memory - a stream without a descriptor, for tests and for
 * parsers of text already in memory: reads return a private copy of
 * data[0..len) and then EOF; writes land in output (the caller's, which
 * must outlive the stream) when they are flushed, as they would reach a
 * descriptor, and fail as a write error (ENOSPC) past output->max or
 * with output NULL. stream_fd is -1, timeouts never apply (nothing can
 * block), stream_close flushes and frees. */
struct stream *stream_open_memory(const void *data, size_t len, struct str *output);
/* stream_close - flush (within the timeout), close the fd, free, NULL *sp */
int stream_close(struct stream **sp);
/* stream_free - free without closing the fd */
void stream_free(struct stream **sp);
int stream_fd(const struct stream *s);
void stream_set_timeout(struct stream *s, int timeout_ms);
void stream_set_unix(struct stream *s, bool is_unix);	/* known socket family */
int stream_get_timeout(const struct stream *s);
void stream_set_io(struct stream *s, const struct stream_io *io, void *ctx);
/* stream_set_io_release - call release(ctx) of the current I/O layer
 * when the stream is freed (or its I/O layer replaced) */
void stream_set_io_release(struct stream *s, void (*release)(void *ctx));
/* stream_get_io - the I/O layer (NULL: plain fd) and its ctx */
const struct stream_io *stream_get_io(const struct stream *s, void **ctx_r);
/* stream_discard_input - drop what the stream's own buffer holds (the
 * plaintext before a TLS handshake: STARTTLS injection); returns bytes */
size_t stream_discard_input(struct stream *s);
/* stream_set_wait_hook - fn(s, ctx) runs before each wait of s for I/O
 * and again after a signal interrupted one (in the normal flow of the
 * program, not in the signal handler). It may change the stream's
 * timeout and cut the operation in progress (stream_cut_deadline): a
 * daemon that learns from a signal that its deadlines are shorter now
 * (stress mode) applies that to a wait already running. NULL: none. */
void stream_set_wait_hook(struct stream *s, void (*fn)(struct stream *s, void *ctx), void *ctx);
/* stream_cut_deadline - the operation in progress (only it) ends at
 * most ms from now; it never gets longer. The next operation has the
 * stream's timeout again. */
void stream_cut_deadline(struct stream *s, int ms);
/* stream_preload_input - put data[0..len) in front of whatever the read
 * buffer holds, to be read before anything from the descriptor (the
 * bytes another process read from a client before it handed the client
 * over); 0, or -1 if the buffer cannot hold them (more than
 * STREAM_PRELOAD_MAX bytes in all) */
#define STREAM_PRELOAD_MAX	8192
int stream_preload_input(struct stream *s, const void *data, size_t len);
enum stream_status stream_error(const struct stream *s);
void stream_clear_error(struct stream *s);
const char *stream_status_text(enum stream_status status);

/* stream_getline - read one line, terminator ("\n") included in line,
 * into line (reset first). Returns STREAM_OK with a full line, or with a
 * final unterminated line at EOF; STREAM_EOF when nothing was read.
 * STREAM_TOOLONG when max bytes came without a "\n": line holds the first
 * max bytes, and the rest of the line stays unread (stream_skip_line). */
enum stream_status stream_getline(struct stream *s, struct str *line, size_t max);
/* stream_skip_line - discard input up to and including the next "\n" */
enum stream_status stream_skip_line(struct stream *s);
/* stream_read - read up to len bytes (at least 1 unless EOF/error);
 * returns bytes read, 0 at EOF, -1 on error/timeout */
ssize_t stream_read(struct stream *s, void *buf, size_t len);
/* stream_read_exact - exactly len bytes, or an error status */
enum stream_status stream_read_exact(struct stream *s, void *buf, size_t len);
/* stream_getc - one byte (0..255), or -1 at EOF/error */
int stream_getc(struct stream *s);
/* stream_buffered - bytes already read from the fd but not consumed
 * (used e.g. to refuse pipelined input before STARTTLS) */
size_t stream_buffered(const struct stream *s);
/* stream_buffered_here - only what sits in the stream's own buffer: a
 * read of at most that many bytes never blocks, whatever the I/O layer */
size_t stream_buffered_here(const struct stream *s);

/* Writes are buffered; stream_flush writes everything out. All return 0
 * on success and -1 on error or timeout. */
int stream_write(struct stream *s, const void *data, size_t len);
int stream_puts(struct stream *s, const char *text);
int stream_printf(struct stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int stream_vprintf(struct stream *s, const char *fmt, va_list ap);
int stream_flush(struct stream *s);

#endif
