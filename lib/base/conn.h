/* conn.h - a non-blocking client connection on the event loop.
 *
 * Purpose: processes that serve many clients at once (the login
 * processes, the post-login pop3d/imapd workers) keep each client in a
 * struct conn: a non-blocking socket with an input buffer of bounded
 * size, an output queue flushed when the socket is writable, an idle
 * deadline, and callbacks. No call ever blocks, so a slow or silent
 * client never stalls the others.
 *
 *   struct conn *c = conn_new(fd, &handlers, ctx, 8192);
 *   on_input:  while ((r = conn_read_line(c, &line, &len)) == CONN_LINE)
 *                  ... conn_printf(c, "+OK\r\n");
 *   on_drain:  (optional) the output queue fell below CONN_LOW_WATER:
 *              produce more of a long reply (RETR, FETCH) here
 *   on_close:  the connection is going away (EOF, error, deadline, or
 *              conn_close): free ctx; the conn is freed after it returns
 *
 * Input: bytes are read only while input is not paused and the buffer
 * holds less than input_max; conn_read_line hands out one line at a time
 * (CR LF or LF ended; the returned line excludes the end, is NUL
 * terminated, and stays valid until the next input call on c). A line
 * longer than input_max - 2 is reported once as CONN_TOOLONG and its
 * bytes are skipped up to the next LF. conn_read_bytes takes raw bytes
 * (IMAP literals; n above input_max is a bug: raise the limit first,
 * or stream with conn_input_avail/peek/consume). Input already buffered
 * when a callback returns is offered again (on_input is called again
 * while it consumes input, input remains and input is not paused; after
 * conn_pause_input(c, false) buffered input is offered from the event
 * loop), so pipelined commands are served in order. on_input must
 * therefore cope with "no complete line yet" (CONN_NONE).
 * End of input: when the client shuts down its side, the buffered
 * commands are still offered (after an unpause if paused), their
 * answers flushed, then the conn closes with CONN_CLOSE_EOF.
 *
 * Output: conn_write/conn_printf queue bytes (unbounded by design: the
 * caller checks conn_output_pending() against its own limit and pauses
 * producing; CONN_LOW_WATER drives on_drain). conn_close_after_flush
 * closes once the queue is empty (QUIT, LOGOUT); conn_close closes at
 * once (on_close runs before it returns, unless the caller is inside
 * one of c's own callbacks, in which case it runs right after that
 * callback returns: a callback may always touch c until it returns;
 * writes to a closed conn are dropped). After conn_close_after_flush no
 * more input is handed out (conn_read_line gives CONN_NONE).
 *
 * Deadline: conn_set_idle_timeout(c, ms): the connection is closed
 * (on_close with conn_close_reason CONN_CLOSE_TIMEOUT) when no input
 * arrives for ms milliseconds while nothing is queued for output; 0 or
 * less: none. A client that does not read its output is closed after
 * conn_set_write_timeout(c, ms) without progress (default 60 s).
 *
 * Hand-over: conn_take_fd(c) detaches the descriptor (output must be
 * flushed: returns -1 otherwise), frees c WITHOUT calling on_close (inside
 * c's own callback: when it returns), and returns the fd in blocking mode
 * (the login process passes it on); the unread input is
 * first copied out with conn_input_peek/conn_input_avail. conn_unread
 * puts bytes back in front of the input (pipelined input received with
 * a hand-over).
 *
 * TLS (issue 13) slots in under the same interface: conn_set_io replaces
 * the read/write calls (see struct conn_io).
 *
 * Diagnostics: msg_panic on misuse (a closed conn used again);
 * everything that a peer can cause is a close reason, never fatal. */
#ifndef POSTHORN_CONN_H
#define POSTHORN_CONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CONN_LOW_WATER	(64 * 1024)	/* on_drain below this many queued bytes */

struct conn;

struct conn_handlers {
    void (*on_input)(struct conn *c, void *ctx);	/* input buffered */
    void (*on_drain)(struct conn *c, void *ctx);	/* optional */
    void (*on_close)(struct conn *c, void *ctx);	/* required */
};

enum conn_read_status {
    CONN_NONE = 0,		/* no complete line (or not n bytes) yet */
    CONN_LINE,			/* a line in *line_r */
    CONN_TOOLONG,		/* a line over the limit was skipped */
    CONN_BYTES,			/* conn_read_bytes: n bytes in *data_r */
};

enum conn_close_reason {
    CONN_CLOSE_NONE = 0,	/* still open */
    CONN_CLOSE_EOF,		/* the client closed */
    CONN_CLOSE_ERROR,		/* read or write error (errno logged by caller) */
    CONN_CLOSE_TIMEOUT,		/* idle or write deadline */
    CONN_CLOSE_LOCAL,		/* conn_close / conn_close_after_flush */
};

/* Replaceable I/O (TLS). read/write return bytes moved, 0 at EOF (read),
 * or -1 with errno; EAGAIN means "wait for the poll events want()
 * returns (POLLIN and/or POLLOUT), then retry the same call" - a TLS
 * read may need the socket writable and a write readable. pending():
 * bytes the layer holds that a read returns without touching the
 * socket. release(): the conn is freed or its fd taken (free ctx). */
struct conn_io {
    ssize_t (*read)(void *ctx, void *buf, size_t len);
    ssize_t (*write)(void *ctx, const void *buf, size_t len);
    size_t (*pending)(void *ctx);
    short (*want)(void *ctx);
    void (*release)(void *ctx);
};

/* conn_new - take fd (made non-blocking and close-on-exec here) */
struct conn *conn_new(int fd, const struct conn_handlers *h, void *ctx, size_t input_max);
/* conn_new_socket - the same for a socket the caller made with
 * SOCK_NONBLOCK | SOCK_CLOEXEC (socket(2), accept4(2)): it trusts those
 * modes and makes no system call to set or check them */
struct conn *conn_new_socket(int fd, const struct conn_handlers *h, void *ctx, size_t input_max);
int conn_fd(const struct conn *c);
void conn_set_ctx(struct conn *c, void *ctx);
/* conn_set_io - route c's reads and writes through io from now on.
 * Output queued before the call still leaves as it was queued, before
 * anything written through io (a STARTTLS reply goes out in plaintext);
 * input already buffered stays (tls_conn_server_start discards it). The
 * previous io's release() runs. */
void conn_set_io(struct conn *c, const struct conn_io *io, void *io_ctx);
const struct conn_io *conn_get_io(const struct conn *c, void **io_ctx_r);

/* input */
enum conn_read_status conn_read_line(struct conn *c, const char **line_r, size_t *len_r);
enum conn_read_status conn_read_bytes(struct conn *c, size_t n, const void **data_r);
size_t conn_input_avail(const struct conn *c);
const void *conn_input_peek(const struct conn *c);
void conn_input_consume(struct conn *c, size_t n);
void conn_unread(struct conn *c, const void *buf, size_t len);
void conn_pause_input(struct conn *c, bool paused);
/* conn_set_eof_handler - half-close (the login processes' TLS proxy):
 * at the peer's end of input, once the buffered input was offered,
 * call on_eof(c, ctx) once instead of closing c; c stays open for
 * output until its owner closes it. conn_input_eof: the peer's input
 * ended. */
void conn_set_eof_handler(struct conn *c, void (*on_eof)(struct conn *c, void *ctx));
bool conn_input_eof(const struct conn *c);
/* conn_set_input_max - change the limit (IMAP: a literal may be bigger
 * than a command line); never below what is buffered */
void conn_set_input_max(struct conn *c, size_t input_max);

/* output */
void conn_write(struct conn *c, const void *buf, size_t len);
/* conn_write_space - room for len more output bytes, to be filled by the
 * caller (e.g. straight from a converter, without a buffer of its own)
 * and queued with conn_write_done(c, n <= len); NULL when the
 * connection takes no more output */
char *conn_write_space(struct conn *c, size_t len);
void conn_write_done(struct conn *c, size_t n);
void conn_puts(struct conn *c, const char *s);
void conn_printf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_vprintf(struct conn *c, const char *fmt, va_list ap);
size_t conn_output_pending(const struct conn *c);

/* deadlines */
void conn_set_idle_timeout(struct conn *c, int ms);
void conn_set_write_timeout(struct conn *c, int ms);

/* end */
void conn_close_after_flush(struct conn *c);
void conn_close(struct conn *c, enum conn_close_reason why);
enum conn_close_reason conn_close_reason(const struct conn *c);
int conn_take_fd(struct conn *c);

#endif
