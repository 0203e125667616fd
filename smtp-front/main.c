/* main.c - smtp-front: the port-25 front (the role of Postfix's
 * postscreen).
 *
 * One event-driven process (SERVER_MULTI, spec.multi_accept) holds every
 * SMTP client that has not sent its first command yet, at the cost of a
 * small struct per client (buffers only while bytes are in), so that no
 * smtpd process ever waits on a silent client. Per client:
 *
 *   1. accept: over smtp_front_connection_limit held clients, 421 4.3.2
 *      and close; else CONNECT is logged and the client-limits service
 *      counts the connection (limits_async, without blocking); over
 *      smtp_front_client_connection_count_limit or _rate_limit the
 *      client gets 421 4.7.0 and a log line naming the limit.
 *   2. greeting: clients in smtp_front_access_list or in the cache of
 *      clients that passed recently get "220 $smtpd_banner" at once.
 *      Others get "220-$smtp_front_greet_banner" and then wait
 *      smtp_front_greet_wait: a client that sends anything before the
 *      wait ends is a pregreet violator (PREGREET logged, 521 and
 *      close); after it, "220 $smtpd_banner" ends the greeting and the
 *      client joins the cache (PASS NEW). The cache is an htable, keyed
 *      SipHash: its keys, the client addresses, come from strangers, so
 *      chosen addresses cannot pile into one hash chain; a list oldest
 *      first serves expiry (smtp_front_cache_ttl) and eviction at
 *      smtp_front_cache_limit.
 *   3. the first command (smtp_front_command_timeout): QUIT is answered
 *      here; any other line is handed over with every byte read so far
 *      to an smtpd process of the pass service (pass_proto.h), on the
 *      event loop, within smtp_front_handover_timeout; if none takes
 *      it, 421 4.3.2 and close. The descriptor and its attributes go
 *      out right after the connect (front_ho_send), and the receiver
 *      answers with its announcement and {status=ok} in one write.
 *
 * Deadlines: each state has one fixed timeout, so a FIFO list per state
 * is sorted by deadline; one event timer serves the earliest head.
 * Adding, moving and removing a client are O(1), whatever the number
 * of clients held. */

/* system */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "event.h"
#include "htable.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"

/* mail */
#include "cidr_match.h"
#include "config.h"
#include "limits_client.h"
#include "mail_proto.h"
#include "pass_proto.h"
#include "server.h"

#define FRONT_ADDR_MAX		46	/* INET6_ADDRSTRLEN */
#define FRONT_IN_FIRST		512	/* first input buffer */
#define FRONT_PREGREET_LOG	100	/* bytes of a pregreet shown in the log */
#define FRONT_LIMITS_WAIT_MS	5000	/* longest wait for client-limits */
#define FRONT_RETRY_MS		100	/* pause between hand-over attempts */
#define FRONT_HO_INPUT_MAX	4096	/* bytes of the pass service's replies */
#define FRONT_FD_SPARE		64	/* descriptors kept for other uses: the
					 * listener, a hand-over, client-limits */

enum front_state {
    FS_LIMITS,			/* waiting for client-limits */
    FS_GREET,			/* the greeting pause */
    FS_COMMAND,			/* waiting for the first command */
    FS_HANDOVER,		/* passing the client to smtpd */
    FS_COUNT,
};

#define FF_ALLOWED	(1 << 0)	/* access list or cache: no pause */
#define FF_CACHED	(1 << 1)	/* (in the cache) */
#define FF_COUNTED	(1 << 2)	/* a connect went to client-limits */
#define FF_EXEMPT	(1 << 3)	/* limit exceptions */

struct front_ho;

/* One client: kept small, as thousands may be held. */
struct front_client {
    struct front_client *prev, *next;	/* the list of its state */
    long long deadline;			/* monotonic ms */
    long long start;			/* connect time, monotonic ms */
    struct limits_async *lim;		/* connect request in flight */
    struct front_ho *ho;		/* while handing over */
    char *in;				/* input read (lazy) */
    uint16_t in_len, in_cap;
    uint16_t port;
    uint8_t state;
    uint8_t flags;
    int fd;
    char addr[FRONT_ADDR_MAX];
};

/* The hand-over of one client (pass_proto.h). */
struct front_ho {
    struct conn *c;			/* to the pass service; NULL between tries */
    struct ipc_list reply;
    event_timer_id retry;
    bool hello;				/* the receiver's announcement came */
    int tries;
};

struct front_list {
    struct front_client *head, *tail;
    int timeout_ms;
};

static struct front_list front_lists[FS_COUNT];
static long front_held;			/* clients held now */
static long front_limit;		/* smtp_front_connection_limit, or less
					 * if the descriptors are fewer */
static struct cidr_list *front_access;	/* smtp_front_access_list */
static char front_pass_path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
static event_timer_id front_timer;
static long long front_timer_due;

static void front_read(int fd, void *ctx);
static void front_handover_start(struct front_client *fc);

/* ---------------------------------------------------------------- */
/* Small helpers                                                    */

/* now_ms - monotonic milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* secs_ms - seconds of a TIME parameter as milliseconds, bounded */
static int secs_ms(long secs)
{
    return secs > INT_MAX / 1000 ? INT_MAX : (int) (secs * 1000);
}

/* front_elapsed - seconds since the client connected */
static double front_elapsed(const struct front_client *fc)
{
    return (double) (now_ms() - fc->start) / 1000.0;
}

/* front_send - a short reply; false if the socket did not take it all
 * (a client whose receive window cannot hold one reply line is not
 * worth a buffer: it is closed) */
static bool front_send(struct front_client *fc, const char *text)
{
    size_t len = strlen(text);
    ssize_t n = send(fc->fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);

    if (n == (ssize_t) len)
	return true;
    if (msg_verbose)
	msg_info("write to [%s]:%u: %s", fc->addr, fc->port,
		 n < 0 ? strerror(errno) : "short write");
    return false;
}

/* front_reply - format and send a reply line (CRLF added) */
static bool front_reply(struct front_client *fc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool front_reply(struct front_client *fc, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
	msg_panic("front_reply: bad format \"%s\"", fmt);
    if ((size_t) n > sizeof(buf) - 3)
	n = (int) sizeof(buf) - 3;			/* a banner too long: cut */
    buf[n] = '\r';
    buf[n + 1] = '\n';
    buf[n + 2] = 0;
    return front_send(fc, buf);
}

/* front_escape - printable form of client bytes for the log */
static void front_escape(char *out, size_t size, const char *in, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < size; i++) {
	unsigned char ch = (unsigned char) in[i];

	if (ch == '\r') {
	    out[o++] = '\\';
	    out[o++] = 'r';
	} else if (ch == '\n') {
	    out[o++] = '\\';
	    out[o++] = 'n';
	} else if (ch == '\\') {
	    out[o++] = '\\';
	    out[o++] = '\\';
	} else if (ch < 0x20 || ch > 0x7e) {
	    static const char hex[] = "0123456789abcdef";

	    out[o++] = '\\';
	    out[o++] = 'x';
	    out[o++] = hex[ch >> 4];
	    out[o++] = hex[ch & 15];
	} else
	    out[o++] = (char) ch;
    }
    out[o] = 0;
}

/* ---------------------------------------------------------------- */
/* The cache of clients that passed the greeting pause              */

/* An htable by client address (keyed SipHash with a random key: the
 * addresses come from strangers) plus a list oldest first for expiry
 * and for eviction at smtp_front_cache_limit. */
struct front_cache_entry {
    struct front_cache_entry *prev, *next;	/* oldest first */
    long long expires;			/* monotonic ms */
    const char *addr;			/* htable's copy of the key */
};

static struct htable *front_cache_table;	/* NULL: no cache */
static struct front_cache_entry *front_cache_old, *front_cache_new;

/* front_cache_drop - remove an entry */
static void front_cache_drop(struct front_cache_entry *e)
{
    if (e->prev)
	e->prev->next = e->next;
    else
	front_cache_old = e->next;
    if (e->next)
	e->next->prev = e->prev;
    else
	front_cache_new = e->prev;
    if (htable_remove(front_cache_table, e->addr) != e)	/* frees e->addr */
	msg_panic("front_cache_drop: entry not in the table");
    mem_free(&e);
}

/* front_cache_expire - drop entries past their time */
static void front_cache_expire(long long now)
{
    while (front_cache_old && front_cache_old->expires <= now)
	front_cache_drop(front_cache_old);
}

/* front_cache_find - the live entry of addr, or NULL */
static struct front_cache_entry *front_cache_find(const char *addr)
{
    if (front_cache_table == NULL)
	return NULL;
    front_cache_expire(now_ms());
    return htable_find(front_cache_table, addr);
}

/* front_cache_add - addr passed: remember it for smtp_front_cache_ttl */
static void front_cache_add(const char *addr)
{
    struct front_cache_entry *e;

    if (front_cache_table == NULL || var_smtp_front_cache_ttl <= 0)
	return;
    if ((e = front_cache_find(addr)) != NULL)
	front_cache_drop(e);			/* renewed below */
    while (htable_count(front_cache_table) >= (size_t) var_smtp_front_cache_limit
	   && front_cache_old)
	front_cache_drop(front_cache_old);	/* full: the oldest go */
    e = mem_zalloc(sizeof(*e));
    e->expires = now_ms() + (long long) var_smtp_front_cache_ttl * 1000;
    e->addr = htable_enter(front_cache_table, addr, e);
    e->prev = front_cache_new;
    if (front_cache_new)
	front_cache_new->next = e;
    else
	front_cache_old = e;
    front_cache_new = e;
}

/* front_cache_init - the table, if smtp_front_cache_limit allows entries */
static void front_cache_init(void)
{
    if (var_smtp_front_cache_limit <= 0)
	return;
    front_cache_table = htable_new(0);
}

/* ---------------------------------------------------------------- */
/* Deadlines: one FIFO list per state, one timer                    */

static void front_timer_cb(void *ctx);

/* front_timer_arm - the timer runs at the earliest deadline */
static void front_timer_arm(void)
{
    long long due = 0;
    long long now;

    for (int s = 0; s < FS_COUNT; s++)
	if (front_lists[s].head && (due == 0 || front_lists[s].head->deadline < due))
	    due = front_lists[s].head->deadline;
    if (front_timer && (due == 0 || due != front_timer_due)) {
	event_timer_cancel(front_timer);
	front_timer = 0;
    }
    if (due == 0 || front_timer)
	return;
    now = now_ms();
    front_timer_due = due;
    front_timer = event_timer_add(due > now ? (int) (due - now > INT_MAX ? INT_MAX : due - now) : 0,
				  front_timer_cb, NULL);
}

/* front_unlink - take fc out of the list of its state */
static void front_unlink(struct front_client *fc)
{
    struct front_list *l = front_lists + fc->state;

    if (fc->prev)
	fc->prev->next = fc->next;
    else if (l->head == fc)
	l->head = fc->next;
    if (fc->next)
	fc->next->prev = fc->prev;
    else if (l->tail == fc)
	l->tail = fc->prev;
    fc->prev = fc->next = NULL;
}

/* front_append - put fc (unlinked) at the tail of the list of state s */
static void front_append(struct front_client *fc, enum front_state s)
{
    struct front_list *l = front_lists + s;

    fc->state = (uint8_t) s;
    fc->prev = l->tail;
    fc->next = NULL;
    if (l->tail)
	l->tail->next = fc;
    else
	l->head = fc;
    l->tail = fc;
}

/* front_enter - fc moves to state s; its deadline starts now */
static void front_enter(struct front_client *fc, enum front_state s)
{
    front_unlink(fc);
    front_append(fc, s);
    fc->deadline = now_ms() + front_lists[s].timeout_ms;
    front_timer_arm();
}

/* ---------------------------------------------------------------- */
/* The end of a client                                              */

/* front_ho_free - end a hand-over attempt (our side only) */
static void front_ho_free(struct front_client *fc)
{
    struct front_ho *ho = fc->ho;

    if (ho == NULL)
	return;
    if (ho->c) {
	conn_set_ctx(ho->c, NULL);
	conn_close(ho->c, CONN_CLOSE_LOCAL);
    }
    if (ho->retry)
	event_timer_cancel(ho->retry);
    ipc_list_fini(&ho->reply);
    mem_free(&fc->ho);
}

/* front_done - forget the client (close_fd: false after a hand-over,
 * when the smtpd process owns the socket: our copy is closed all the
 * same, but quietly) */
static void front_done(struct front_client *fc)
{
    front_unlink(fc);
    front_timer_arm();
    event_remove(fc->fd);
    if (fc->lim)
	limits_async_cancel(fc->lim);
    if (fc->flags & FF_COUNTED)
	limits_async_send(LIMITS_REQ_DISCONNECT, server_service_name(), fc->addr);
    front_ho_free(fc);
    if (close(fc->fd) < 0 && errno != EINTR)
	msg_warn("close: %m");
    mem_free(&fc->in);
    mem_free(&fc);
    front_held--;
    server_multi_client_end();
}

/* front_reply_close - a last reply, then close */
static void front_reply_close(struct front_client *fc, const char *text)
{
    (void) front_send(fc, text);
    front_done(fc);
}

/* ---------------------------------------------------------------- */
/* The greeting                                                     */

/* front_first_line - a whole line is in: QUIT here, else hand over */
static void front_first_line(struct front_client *fc)
{
    const char *lf = memchr(fc->in, '\n', fc->in_len);
    size_t len;

    if (lf == NULL)
	return;
    len = (size_t) (lf - fc->in);
    while (len > 0 && (fc->in[len - 1] == '\r' || fc->in[len - 1] == ' '))
	len--;
    if (len == 4 && strncasecmp(fc->in, "QUIT", 4) == 0) {
	if (msg_verbose)
	    msg_info("QUIT from [%s]:%u", fc->addr, fc->port);
	front_reply_close(fc, "221 2.0.0 Bye\r\n");
	return;
    }
    event_remove_read(fc->fd);			/* the rest stays in the socket */
    front_handover_start(fc);
}

/* front_greet_full - the whole greeting; now the first command */
static void front_greet_full(struct front_client *fc)
{
    if (!front_reply(fc, "220 %s", var_smtpd_banner)) {
	front_done(fc);
	return;
    }
    front_enter(fc, FS_COMMAND);
    if (fc->in_len > 0)
	front_first_line(fc);			/* it did not wait for us */
}

/* front_greet - limits are settled: greet as the client deserves */
static void front_greet(struct front_client *fc)
{
    if (fc->flags & FF_ALLOWED) {
	if (fc->flags & FF_CACHED)
	    msg_info("PASS OLD [%s]:%u", fc->addr, fc->port);
	else if (msg_verbose)
	    msg_info("ALLOWLISTED [%s]:%u", fc->addr, fc->port);
	front_greet_full(fc);
	return;
    }
    if (*var_smtp_front_greet_banner && !front_reply(fc, "220-%s", var_smtp_front_greet_banner)) {
	front_done(fc);
	return;
    }
    front_enter(fc, FS_GREET);
}

/* front_greet_passed - the pause is over and the client kept quiet */
static void front_greet_passed(struct front_client *fc)
{
    msg_info("PASS NEW [%s]:%u", fc->addr, fc->port);
    front_cache_add(fc->addr);
    front_greet_full(fc);
}

/* front_limits_got - client-limits counted the connection */
static void front_limits_got(const struct limits_counts *counts, const char *error, void *ctx)
{
    struct front_client *fc = ctx;

    fc->lim = NULL;
    if (error == NULL && !(fc->flags & FF_EXEMPT)) {
	const char *what = NULL, *param = NULL;
	long n = 0, limit = 0;

	if (var_smtp_front_client_connection_count_limit > 0
	    && counts->count > var_smtp_front_client_connection_count_limit) {
	    what = "count";
	    param = "smtp_front_client_connection_count_limit";
	    n = counts->count;
	    limit = var_smtp_front_client_connection_count_limit;
	} else if (var_smtp_front_client_connection_rate_limit > 0
		   && counts->conn_rate > var_smtp_front_client_connection_rate_limit) {
	    what = "rate";
	    param = "smtp_front_client_connection_rate_limit";
	    n = counts->conn_rate;
	    limit = var_smtp_front_client_connection_rate_limit;
	}
	if (what) {
	    char reply[512];

	    msg_warn("Connection %s limit exceeded: %ld from [%s]:%u for service %s (%s = %ld)",
		     what, n, fc->addr, fc->port, server_service_name(), param, limit);
	    fmt_buf_cut(reply, sizeof(reply), "421 4.7.0 %s Error: too many connections from %s\r\n",
			var_myhostname, fc->addr);
	    front_reply_close(fc, reply);
	    return;
	}
    }
    front_greet(fc);
}

/* ---------------------------------------------------------------- */
/* Client input                                                     */

/* front_pregreet - the client talked before the greeting ended */
static void front_pregreet(struct front_client *fc)
{
    char buf[FRONT_PREGREET_LOG], esc[4 * FRONT_PREGREET_LOG + 1];
    ssize_t n = recv(fc->fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	return;
    if (n <= 0) {
	msg_info("HANGUP after %.1f from [%s]:%u in the greeting pause", front_elapsed(fc),
		 fc->addr, fc->port);
	front_done(fc);
	return;
    }
    front_escape(esc, sizeof(esc), buf, (size_t) n);
    msg_info("PREGREET %zd after %.1f from [%s]:%u: %s", n, front_elapsed(fc), fc->addr,
	     fc->port, esc);
    front_reply_close(fc, "521 5.5.1 Protocol error\r\n");
}

/* front_read - input (or EOF) from a client */
static void front_read(int fd, void *ctx)
{
    struct front_client *fc = ctx;
    size_t room;
    ssize_t n;

    if (fc->state == FS_GREET || (fc->state == FS_LIMITS && !(fc->flags & FF_ALLOWED))) {
	front_pregreet(fc);
	return;
    }
    if (fc->state == FS_HANDOVER) {
	event_remove_read(fd);
	return;
    }
    if (fc->in_len >= PASS_INPUT_MAX) {
	msg_info("COMMAND LENGTH LIMIT from [%s]:%u", fc->addr, fc->port);
	front_reply_close(fc, "500 5.5.2 Error: line too long\r\n");
	return;
    }
    if (fc->in_len >= fc->in_cap) {
	size_t cap = fc->in_cap ? (size_t) fc->in_cap * 2 : FRONT_IN_FIRST;

	if (cap > PASS_INPUT_MAX)
	    cap = PASS_INPUT_MAX;
	fc->in = mem_realloc(fc->in, cap);
	fc->in_cap = (uint16_t) cap;
    }
    room = (size_t) fc->in_cap - fc->in_len;
    n = recv(fd, fc->in + fc->in_len, room, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	return;
    if (n <= 0) {
	msg_info("HANGUP after %.1f from [%s]:%u before its first command", front_elapsed(fc),
		 fc->addr, fc->port);
	front_done(fc);
	return;
    }
    fc->in_len = (uint16_t) (fc->in_len + n);
    if (fc->state != FS_COMMAND)
	return;					/* allowed: before our greeting */
    if (memchr(fc->in + fc->in_len - n, '\n', (size_t) n) != NULL) {
	front_first_line(fc);
	return;
    }
    if (fc->in_len >= PASS_INPUT_MAX) {
	msg_info("COMMAND LENGTH LIMIT from [%s]:%u", fc->addr, fc->port);
	front_reply_close(fc, "500 5.5.2 Error: line too long\r\n");
    }
}

/* ---------------------------------------------------------------- */
/* The hand-over (pass_proto.h)                                     */

static void front_ho_input(struct conn *c, void *ctx);
static void front_ho_close(struct conn *c, void *ctx);
static const struct conn_handlers front_ho_handlers = { front_ho_input, NULL, front_ho_close };
static void front_ho_try(struct front_client *fc);
static void front_ho_retry(void *ctx);
static void front_ho_send(struct front_client *fc);

/* front_ho_retry - timer: the next attempt */
static void front_ho_retry(void *ctx)
{
    front_ho_try(ctx);
}

/* front_ho_failed - this attempt failed: try again while time is left,
 * else tell the client to come back later */
static void front_ho_failed(struct front_client *fc, const char *why, bool retry)
{
    struct front_ho *ho = fc->ho;

    if (ho->c) {
	conn_set_ctx(ho->c, NULL);
	conn_close(ho->c, CONN_CLOSE_LOCAL);
	ho->c = NULL;
    }
    if (retry && now_ms() + FRONT_RETRY_MS < fc->deadline) {
	if (msg_verbose)
	    msg_info("hand-over of [%s]:%u to %s: %s -- trying again", fc->addr, fc->port,
		     front_pass_path, why);
	ho->retry = event_timer_add(FRONT_RETRY_MS, front_ho_retry, fc);
	return;
    }
    msg_warn("hand-over of [%s]:%u to %s failed: %s", fc->addr, fc->port, front_pass_path, why);
    front_reply_close(fc, "421 4.3.2 Service currently unavailable\r\n");
}

/* front_ho_try - connect to the pass service (never blocks) */
static void front_ho_try(struct front_client *fc)
{
    struct front_ho *ho = fc->ho;
    struct sockaddr_un sun;
    int fd;

    ho->retry = 0;
    ho->tries++;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    str_copy_out_or_panic(sun.sun_path, sizeof(sun.sun_path), front_pass_path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
	front_ho_failed(fc, strerror(errno), true);
	return;
    }
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
	int saved = errno;

	(void) close(fd);
	/* EAGAIN: the listener's queue is full (every smtpd busy) */
	front_ho_failed(fc, strerror(saved), true);
	return;
    }
    ipc_list_reset(&ho->reply);
    ho->hello = false;
    ho->c = conn_new_socket(fd, &front_ho_handlers, fc, FRONT_HO_INPUT_MAX);
    front_ho_send(fc);
}

/* front_handover_start - the first command is in: pass the client on */
static void front_handover_start(struct front_client *fc)
{
    fc->ho = mem_zalloc(sizeof(*fc->ho));
    ipc_list_init(&fc->ho->reply);
    front_enter(fc, FS_HANDOVER);
    front_ho_try(fc);
}

/* front_ho_send - the descriptor and its attributes, at once after the
 * connect, in one sendmsg(2): they wait in the socket until a process
 * accepts it, which takes them in one recvmsg(2) and answers with its
 * announcement and {status=ok} in one write, so the hand-over costs one
 * wake-up here. Until the announcement came, the receiver has not
 * touched the client: a connection that ends before it is tried again
 * elsewhere. */
static void front_ho_send(struct front_client *fc)
{
    struct front_ho *ho = fc->ho;
    char port[16];
    struct str *msg;
    ssize_t sent;

    fmt_buf_or_panic(port, sizeof(port), "%u", fc->port);
    msg = str_new(IPC_MSG_MAX);
    str_appendc_or_panic(msg, PASS_FD_BYTE);	/* carries the descriptor */
    ipc_encode_str(msg, PASS_ATTR_CLIENT_ADDR, fc->addr);
    ipc_encode_str(msg, PASS_ATTR_CLIENT_PORT, port);
    ipc_encode_str(msg, PASS_ATTR_GREETED, "1");
    ipc_encode_attr(msg, PASS_ATTR_INPUT, fc->in ? fc->in : "", fc->in_len);
    ipc_encode_end(msg);
    /* the new socket's buffer is empty: one call takes it all, with no
     * write interest to register and drop (conn_write outside a
     * callback would); the rest, if any, goes the usual way */
    sent = sock_send_fd_once(conn_fd(ho->c), fc->fd, str_cstr(msg), str_len(msg), MSG_DONTWAIT);
    if (sent < 0) {
	str_free(&msg);
	front_ho_failed(fc, strerror(errno), true);
	return;
    }
    if ((size_t) sent < str_len(msg))
	conn_write(ho->c, str_cstr(msg) + sent, str_len(msg) - (size_t) sent);
    str_free(&msg);
}

/* front_ho_input - the pass service's announcement and its answer
 * (they come together; a refusal is the announcement alone) */
static void front_ho_input(struct conn *c, void *ctx)
{
    struct front_client *fc = ctx;
    struct front_ho *ho;
    const char *err = "";
    long used;

    if (fc == NULL)
	return;
    ho = fc->ho;
    for (;;) {
	used = ipc_decode_list(conn_input_peek(c), conn_input_avail(c), &ho->reply, &err);
	if (used < 0) {
	    front_ho_failed(fc, err, false);
	    return;
	}
	if (used == 0)
	    return;
	conn_input_consume(c, (size_t) used);
	if (ho->hello)
	    break;
	if (ipc_handshake_check(&ho->reply, PASS_PROTO, PASS_VERSION, &err) < 0) {
	    front_ho_failed(fc, err, false);
	    return;
	}
	ho->hello = true;
	ipc_list_reset(&ho->reply);
    }
    {
	const char *status = ipc_list_get(&ho->reply, ATTR_STATUS);

	if (status == NULL || strcmp(status, PASS_STAT_OK) != 0) {
	    front_ho_failed(fc, "hand-over refused", false);
	    return;
	}
    }
    if (msg_verbose)
	msg_info("handed over [%s]:%u to %s (%u bytes of input)", fc->addr, fc->port,
		 front_pass_path, fc->in_len);
    front_done(fc);				/* the smtpd process owns it now */
}

/* front_ho_close - the pass service closed before it took the client */
static void front_ho_close(struct conn *c, void *ctx)
{
    struct front_client *fc = ctx;
    enum conn_close_reason why = conn_close_reason(c);

    if (fc == NULL)
	return;
    fc->ho->c = NULL;
    /* a process that accepted and went away (exiting) before it
     * answered never touched the client: try another one; after the
     * announcement the receiver has it or refused it: no */
    front_ho_failed(fc, why == CONN_CLOSE_EOF ? "connection closed" : "connection error",
		    !fc->ho->hello);
}

/* ---------------------------------------------------------------- */
/* Deadlines                                                        */

/* front_expired - fc's deadline in its state passed */
static void front_expired(struct front_client *fc)
{
    char reply[512];

    switch (fc->state) {
    case FS_LIMITS:
	msg_warn("client-limits did not answer for [%s] in time -- going on", fc->addr);
	if (fc->lim) {
	    limits_async_cancel(fc->lim);
	    fc->lim = NULL;
	}
	front_greet(fc);
	return;
    case FS_GREET:
	front_greet_passed(fc);
	return;
    case FS_COMMAND:
	msg_info("COMMAND TIME LIMIT after %.1f from [%s]:%u", front_elapsed(fc), fc->addr,
		 fc->port);
	fmt_buf_cut(reply, sizeof(reply), "421 4.4.2 %s Error: timeout exceeded\r\n",
		    var_myhostname);
	front_reply_close(fc, reply);
	return;
    case FS_HANDOVER:
	if (fc->ho->retry) {
	    event_timer_cancel(fc->ho->retry);
	    fc->ho->retry = 0;
	}
	front_ho_failed(fc, "timeout: no smtpd process took the client", false);
	return;
    default:
	msg_panic("front_expired: state %d", fc->state);
    }
}

/* front_timer_cb - run the deadlines that passed */
static void front_timer_cb(void *ctx)
{
    long long now = now_ms();
    int rounds = 0;

    (void) ctx;
    front_timer = 0;
    for (int s = 0; s < FS_COUNT; s++) {
	struct front_client *fc;

	/* bounded: a burst of expiries is spread over iterations */
	while ((fc = front_lists[s].head) != NULL && fc->deadline <= now && rounds++ < 10000) {
	    front_unlink(fc);
	    fc->deadline = LLONG_MAX;
	    /* re-listed at the tail only if it changes state; a client
	     * whose deadline ends it is freed */
	    front_append(fc, (enum front_state) s);
	    front_expired(fc);
	}
    }
    front_timer_arm();
}

/* ---------------------------------------------------------------- */
/* Accepting                                                        */

/* front_accept - a new client from the skeleton */
static void front_accept(int fd)
{
    struct front_client *fc;
    char addr[LIMITS_ADDRESS_MAX], port[16];
    const char *a = addr;

    if (front_held >= front_limit) {
	static const char busy[] = "421 4.3.2 All server ports are busy\r\n";

	(void) send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	msg_warn("%ld clients held: smtp_front_connection_limit reached -- refusing a client",
		 front_held);
	(void) close(fd);
	server_multi_client_end();
	return;
    }
    if (!server_multi_client_name(addr, sizeof(addr), port, sizeof(port)) || addr[0] == 0)
	str_copy_out_or_panic(addr, sizeof(addr), "unknown");
    if (strncasecmp(a, "::ffff:", 7) == 0 && strchr(a, '.') != NULL)
	a += 7;					/* IPv4-mapped: as IPv4 */
    /* The client socket stays blocking: smtpd, which gets it, reads it
     * with blocking I/O (the file description is shared), and every call
     * here that touches it passes MSG_DONTWAIT (send, recv, the
     * descriptor's sendmsg), so nothing here can wait on it; no fcntl to
     * set O_NONBLOCK, none to clear it before the hand-over. */
    fc = mem_zalloc(sizeof(*fc));
    fc->fd = fd;
    fc->start = now_ms();
    fc->port = (uint16_t) strtoul(port, NULL, 10);
    if (!str_try_copy_out(fc->addr, sizeof(fc->addr), a))
	str_copy_out_or_panic(fc->addr, sizeof(fc->addr), "unknown");
    front_held++;
    msg_info("CONNECT from [%s]:%u", fc->addr, fc->port);
    if (front_access && cidr_list_match(front_access, fc->addr))
	fc->flags |= FF_ALLOWED;
    else if (front_cache_find(fc->addr) != NULL)
	fc->flags |= FF_ALLOWED | FF_CACHED;
    if (limits_client_exempt(var_smtpd_client_event_limit_exceptions, fc->addr))
	fc->flags |= FF_EXEMPT;
    event_add_read(fd, front_read, fc);
    /* client-limits counts only what a limit can refuse (as Postfix's
     * anvil): not an exempt client, not with both limits off */
    if ((fc->flags & FF_EXEMPT) || (var_smtp_front_client_connection_count_limit <= 0
				    && var_smtp_front_client_connection_rate_limit <= 0)) {
	front_enter(fc, FS_LIMITS);		/* as if the answer came */
	front_greet(fc);
	return;
    }
    front_enter(fc, FS_LIMITS);
    fc->flags |= FF_COUNTED;
    fc->lim = limits_async_call(LIMITS_REQ_CONNECT, server_service_name(), fc->addr,
				front_limits_got, fc);
}

/* ---------------------------------------------------------------- */
/* Start-up                                                         */

/* front_pre_init - as root: room for many descriptors */
static void front_pre_init(int argc, char **argv)
{
    struct rlimit rl;

    (void) argc;
    (void) argv;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
	rlim_t was = rl.rlim_cur;

	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
	    msg_warn("setrlimit RLIMIT_NOFILE to %llu: %m", (unsigned long long) rl.rlim_max);
	else if (msg_verbose)
	    msg_info("descriptor limit raised from %llu to %llu", (unsigned long long) was,
		     (unsigned long long) rl.rlim_max);
    }
}

/* front_post_init - parameters, after the privilege drop */
static void front_post_init(int argc, char **argv)
{
    const char *err;
    const char *svc = var_smtp_front_pass_service;
    struct rlimit rl;

    (void) argc;
    (void) argv;
    if (*svc == 0 || strchr(svc, '/') != NULL || svc[0] == '.'
	|| !fmt_try_buf(front_pass_path, sizeof(front_pass_path), "private/%s", svc))
	msg_fatal("bad smtp_front_pass_service: \"%.100s\"", svc);
    if ((front_access = cidr_list_parse(var_smtp_front_access_list, &err)) == NULL)
	msg_fatal("bad smtp_front_access_list: %s", err);
    front_lists[FS_LIMITS].timeout_ms = FRONT_LIMITS_WAIT_MS;
    front_lists[FS_GREET].timeout_ms = secs_ms(var_smtp_front_greet_wait);
    front_lists[FS_COMMAND].timeout_ms = secs_ms(var_smtp_front_command_timeout);
    front_lists[FS_HANDOVER].timeout_ms = secs_ms(var_smtp_front_handover_timeout);
    front_cache_init();
    limits_client_init(NULL);
    front_limit = var_smtp_front_connection_limit;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	&& (rlim_t) front_limit + FRONT_FD_SPARE > rl.rlim_cur) {
	front_limit = rl.rlim_cur > 2 * FRONT_FD_SPARE ? (long) (rl.rlim_cur - FRONT_FD_SPARE)
	    : FRONT_FD_SPARE;
	msg_info("smtp_front_connection_limit = %ld, but the descriptor limit is %llu: "
		 "holding at most %ld clients", var_smtp_front_connection_limit,
		 (unsigned long long) rl.rlim_cur, front_limit);
    }
    if (server_stress())
	msg_info("started in stress mode: smtp_front_greet_wait = %lds, "
		 "smtp_front_command_timeout = %lds", var_smtp_front_greet_wait,
		 var_smtp_front_command_timeout);
}

int main(int argc, char **argv)
{
    static struct server_spec spec;

    spec.kind = SERVER_MULTI;
    spec.name = "smtp-front";
    /* the cache lives in this process: it stays */
    spec.flags = SERVER_FLAG_NO_IDLE_EXIT | SERVER_FLAG_NO_MAX_USE;
    spec.pre_init = front_pre_init;
    spec.post_init = front_post_init;
    spec.multi_accept = front_accept;
    return server_main(argc, argv, &spec);
}
