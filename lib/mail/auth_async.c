/* auth_async.c - the pooled, non-blocking auth client (auth_async.h):
 * connections to private/auth on conn.h, one request in flight each,
 * a FIFO of requests waiting for a connection, idle connections closed
 * after AUTH_ASYNC_IDLE_MS, one retry of a first step or redeem that
 * met EOF before any reply byte. */

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"

/* mail */
#include "auth_async.h"
#include "auth_proto.h"
#include "config.h"
#include "mail_proto.h"

#define AA_REPLY_MAX	(64 * 1024)	/* input bound of one connection */
#define AA_CONNECT_MS	5000		/* connect(2) to the local socket */

enum aa_kind { AA_AUTH, AA_CONTINUE, AA_REDEEM };
enum aa_state { AC_HANDSHAKE, AC_IDLE, AC_BUSY, AC_RESERVED };

struct aa_conn {
    struct conn *c;
    enum aa_state state;
    struct auth_async *req;	/* BUSY/RESERVED, or waiting for HANDSHAKE */
    bool got_bytes;		/* a reply byte arrived for req */
    struct ipc_list reply;
    struct aa_conn *prev, *next;
};

struct auth_async {
    enum aa_kind kind;
    struct str msg;		/* the encoded request */
    auth_async_reply_fn cb;
    auth_async_redeem_fn rcb;
    void *ctx;
    struct aa_conn *conn;
    bool retried;
    bool cancelled;
    bool in_callback;
    struct auth_async *qnext;	/* in the wait queue */
    event_timer_id fail_timer;	/* an error to report from the loop */
    char error[256];
};

static char *aa_path;
static int aa_max = AUTH_ASYNC_POOL_DEFAULT;
static struct aa_conn *aa_conns;
static int aa_open, aa_busy;
static struct auth_async *aa_qhead, *aa_qtail;
static int aa_queued;

static void aa_submit(struct auth_async *h);
static void aa_conn_input(struct conn *c, void *ctx);
static void aa_conn_close(struct conn *c, void *ctx);
static const struct conn_handlers aa_handlers = { aa_conn_input, NULL, aa_conn_close };

/* aa_ipc_ms - ipc_timeout in milliseconds, bounded */
static int aa_ipc_ms(void)
{
    return var_ipc_timeout > INT_MAX / 1000 ? INT_MAX : (int) (var_ipc_timeout * 1000);
}

void auth_async_init(const char *path, int max_connections)
{
    mem_free(&aa_path);
    if (path)
	aa_path = mem_strdup(path);
    aa_max = max_connections > 0 ? max_connections : AUTH_ASYNC_POOL_DEFAULT;
}

/* aa_new - a request handle */
static struct auth_async *aa_new(enum aa_kind kind, void *ctx)
{
    struct auth_async *h = mem_zalloc(sizeof(*h));

    h->kind = kind;
    h->ctx = ctx;
    str_init(&h->msg, IPC_MSG_MAX);
    return h;
}

/* aa_free - forget a handle */
static void aa_free(struct auth_async *h)
{
    if (h->fail_timer)
	event_timer_cancel(h->fail_timer);
    str_fini(&h->msg);
    mem_free(&h);
}

/* aa_set_state - state change with the busy count and the deadline */
static void aa_set_state(struct aa_conn *ac, enum aa_state state)
{
    bool was_busy = ac->state == AC_BUSY || ac->state == AC_RESERVED;
    bool busy = state == AC_BUSY || state == AC_RESERVED;

    aa_busy += (int) busy - (int) was_busy;
    ac->state = state;
    switch (state) {
    case AC_HANDSHAKE:
    case AC_BUSY:
	conn_set_idle_timeout(ac->c, aa_ipc_ms());
	break;
    case AC_IDLE:
	conn_set_idle_timeout(ac->c, AUTH_ASYNC_IDLE_MS);
	break;
    case AC_RESERVED:
	conn_set_idle_timeout(ac->c, 0);
	break;
    }
}

/* aa_fail_cb - timer: report a stored error to the request's callback */
static void aa_fail_cb(void *ctx)
{
    struct auth_async *h = ctx;

    h->fail_timer = 0;
    h->conn = NULL;
    h->in_callback = true;
    if (h->kind == AA_REDEEM)
	h->rcb(h, NULL, h->error, h->ctx);
    else
	h->cb(h, NULL, h->error, h->ctx);
    aa_free(h);
}

/* aa_fail_later - the step fails with text; reported from the loop */
static void aa_fail_later(struct auth_async *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void aa_fail_later(struct auth_async *h, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(h->error, sizeof(h->error), fmt, ap) < 0)	/* text: cut to fit */
	h->error[0] = 0;
    va_end(ap);
    h->conn = NULL;
    if (h->cancelled) {
	aa_free(h);
	return;
    }
    if (h->fail_timer == 0)
	h->fail_timer = event_timer_add(0, aa_fail_cb, h);
}

/* aa_send - put h's request on ac */
static void aa_send(struct aa_conn *ac, struct auth_async *h)
{
    ac->req = h;
    h->conn = ac;
    ac->got_bytes = false;
    aa_set_state(ac, AC_BUSY);
    conn_write(ac->c, str_cstr(&h->msg), str_len(&h->msg));
}

/* aa_idle - ac is free: the next queued request, or wait idle */
static void aa_idle(struct aa_conn *ac)
{
    struct auth_async *h;

    ac->req = NULL;
    while ((h = aa_qhead) != NULL) {
	aa_qhead = h->qnext;
	if (aa_qhead == NULL)
	    aa_qtail = NULL;
	aa_queued--;
	h->qnext = NULL;
	if (h->cancelled) {
	    aa_free(h);
	    continue;
	}
	aa_send(ac, h);
	return;
    }
    aa_set_state(ac, AC_IDLE);
}

/* aa_connect - a new connection to auth for h; false with h failed */
static bool aa_connect(struct auth_async *h)
{
    const char *path = aa_path ? aa_path : AUTH_SOCKET;
    const char *error;
    struct aa_conn *ac;
    int fd;

    if ((fd = sock_connect_unix(path, AA_CONNECT_MS, &error)) < 0) {
	msg_warn("connect to auth service %s: %s", path, error);
	aa_fail_later(h, "connect to auth service %s: %s", path, error);
	return false;
    }
    ac = mem_zalloc(sizeof(*ac));
    ipc_list_init(&ac->reply);
    ac->c = conn_new(fd, &aa_handlers, ac, AA_REPLY_MAX);
    ac->state = AC_IDLE;
    aa_set_state(ac, AC_HANDSHAKE);
    ac->req = h;
    h->conn = ac;
    ac->next = aa_conns;
    if (aa_conns)
	aa_conns->prev = ac;
    aa_conns = ac;
    aa_open++;
    return true;
}

/* aa_submit - a first step or redeem: an idle connection, a new one,
 * or the queue */
static void aa_submit(struct auth_async *h)
{
    struct aa_conn *ac;

    for (ac = aa_conns; ac; ac = ac->next)
	if (ac->state == AC_IDLE) {
	    aa_send(ac, h);
	    return;
	}
    if (aa_open < aa_max) {
	aa_connect(h);
	return;
    }
    h->qnext = NULL;
    if (aa_qtail)
	aa_qtail->qnext = h;
    else
	aa_qhead = h;
    aa_qtail = h;
    aa_queued++;
}

struct auth_async *auth_async_start(const struct auth_request *req, auth_async_reply_fn cb,
				    void *ctx)
{
    struct auth_async *h = aa_new(AA_AUTH, ctx);

    h->cb = cb;
    auth_request_encode(&h->msg, req);
    aa_submit(h);
    return h;
}

void auth_async_continue(struct auth_async *h, const char *response_b64,
			 auth_async_reply_fn cb, void *ctx)
{
    struct aa_conn *ac = h->conn;

    if (h->kind == AA_REDEEM || h->cancelled || h->fail_timer
	|| (ac != NULL && (ac->state != AC_RESERVED || ac->req != h)))
	msg_panic("auth_async_continue: no SASL exchange waits on this handle");
    h->kind = AA_CONTINUE;
    h->cb = cb;
    h->ctx = ctx;
    auth_continue_encode(&h->msg, response_b64);
    if (ac == NULL) {
	aa_fail_later(h, "auth service: connection lost during the SASL exchange");
	return;
    }
    aa_send(ac, h);
}

struct auth_async *auth_async_redeem(const char *token, const char *service,
				     auth_async_redeem_fn cb, void *ctx)
{
    struct auth_async *h = aa_new(AA_REDEEM, ctx);
    struct auth_redeem req = { token, service };

    h->rcb = cb;
    auth_redeem_encode(&h->msg, &req);
    aa_submit(h);
    return h;
}

void auth_async_cancel(struct auth_async *h)
{
    struct auth_async **pp, *prev = NULL;

    if (h == NULL)
	return;
    if (h->in_callback) {
	h->cancelled = true;
	return;
    }
    if (h->fail_timer) {
	aa_free(h);
	return;
    }
    /* queued: unlink */
    for (pp = &aa_qhead; *pp; prev = *pp, pp = &(*pp)->qnext)
	if (*pp == h) {
	    *pp = h->qnext;
	    if (aa_qtail == h)
		aa_qtail = prev;
	    aa_queued--;
	    aa_free(h);
	    return;
	}
    if (h->conn == NULL) {
	aa_free(h);
	return;
    }
    /* on a connection: in flight (the reply is dropped when it comes),
     * waiting for the handshake, or reserved between SASL steps */
    if (h->conn->state == AC_RESERVED) {
	struct aa_conn *ac = h->conn;

	aa_free(h);
	aa_idle(ac);
	return;
    }
    h->cancelled = true;
}

/* aa_unlink - take ac out of the pool and free it (its conn is gone) */
static void aa_unlink(struct aa_conn *ac)
{
    if (ac->prev)
	ac->prev->next = ac->next;
    else
	aa_conns = ac->next;
    if (ac->next)
	ac->next->prev = ac->prev;
    if (ac->state == AC_BUSY || ac->state == AC_RESERVED)
	aa_busy--;
    aa_open--;
    ipc_list_fini(&ac->reply);
    mem_free(&ac);
}

/* aa_deliver - give the decoded reply of ac to its request */
static void aa_deliver(struct aa_conn *ac, const char **error_r)
{
    struct auth_async *h = ac->req;
    struct auth_reply reply;
    struct auth_redeem_reply rr;
    bool more = false;

    if (h->kind == AA_REDEEM) {
	if (auth_redeem_reply_decode(&ac->reply, &rr, error_r) < 0) {
	    conn_close(ac->c, CONN_CLOSE_ERROR);
	    return;
	}
	if (!h->cancelled) {
	    h->in_callback = true;
	    h->rcb(h, &rr, NULL, h->ctx);
	}
    } else {
	if (auth_reply_decode(&ac->reply, &reply, error_r) < 0) {
	    conn_close(ac->c, CONN_CLOSE_ERROR);
	    return;
	}
	more = strcmp(reply.status, AUTH_STAT_CONTINUE) == 0;
	if (more)
	    aa_set_state(ac, AC_RESERVED);
	if (!h->cancelled) {
	    h->in_callback = true;
	    h->cb(h, &reply, NULL, h->ctx);
	}
    }
    h->in_callback = false;
    if (more && !h->cancelled) {
	/* waiting for the client's answer, or already sent (continue
	 * called inside the callback) */
	return;
    }
    ac->req = NULL;
    aa_free(h);
    aa_idle(ac);
}

/* aa_conn_input - a handshake or a reply, decoded when complete */
static void aa_conn_input(struct conn *c, void *ctx)
{
    struct aa_conn *ac = ctx;
    const char *error = "";
    long used;

    if (conn_input_avail(c) > 0)
	ac->got_bytes = true;
    used = ipc_decode_list(conn_input_peek(c), conn_input_avail(c), &ac->reply, &error);
    if (used < 0) {
	msg_warn("auth service: %s", error);
	conn_close(c, CONN_CLOSE_ERROR);
	return;
    }
    if (used == 0) {
	if (conn_input_avail(c) >= AA_REPLY_MAX) {
	    msg_warn("auth service: reply larger than %d bytes", AA_REPLY_MAX);
	    conn_close(c, CONN_CLOSE_ERROR);
	}
	return;
    }
    conn_input_consume(c, (size_t) used);
    switch (ac->state) {
    case AC_HANDSHAKE:
	if (ipc_handshake_check(&ac->reply, AUTH_PROTO, AUTH_VERSION, &error) < 0) {
	    msg_warn("auth service: %s", error);
	    conn_close(c, CONN_CLOSE_ERROR);
	    return;
	}
	if (ac->req && !ac->req->cancelled)
	    aa_send(ac, ac->req);
	else {
	    if (ac->req)
		aa_free(ac->req);
	    aa_idle(ac);
	}
	return;
    case AC_BUSY:
	aa_deliver(ac, &error);
	if (*error)
	    msg_warn("auth service: %s", error);
	return;
    case AC_IDLE:
    case AC_RESERVED:
	msg_warn("auth service: unexpected message");
	conn_close(c, CONN_CLOSE_ERROR);
	return;
    }
}

/* aa_conn_close - the connection ended: fail or retry its request */
static void aa_conn_close(struct conn *c, void *ctx)
{
    struct aa_conn *ac = ctx;
    struct auth_async *h = ac->req;
    enum conn_close_reason why = conn_close_reason(c);
    bool was_handshake = ac->state == AC_HANDSHAKE;
    bool unprocessed = !ac->got_bytes && (ac->state == AC_BUSY || was_handshake);
    bool reserved = ac->state == AC_RESERVED;

    ac->req = NULL;
    aa_unlink(ac);
    if (h != NULL) {
	h->conn = NULL;
	if (h->cancelled) {
	    aa_free(h);
	} else if (reserved) {
	    /* waits for the client's answer: auth_async_continue fails */
	} else if (unprocessed && (why == CONN_CLOSE_EOF || why == CONN_CLOSE_ERROR) && h->kind != AA_CONTINUE && !h->retried) {
	    h->retried = true;
	    aa_submit(h);
	} else {
	    const char *what = why == CONN_CLOSE_TIMEOUT ? "timeout"
		: why == CONN_CLOSE_EOF ? "connection closed" : "connection error";

	    msg_warn("auth service: %s", what);
	    aa_fail_later(h, "auth service: %s", what);
	}
    }
    /* a slot is free: start a queued request */
    if (aa_qhead != NULL && aa_open < aa_max) {
	struct auth_async *q = aa_qhead;

	aa_qhead = q->qnext;
	if (aa_qhead == NULL)
	    aa_qtail = NULL;
	aa_queued--;
	q->qnext = NULL;
	aa_submit(q);
    }
}

void auth_async_shutdown(void)
{
    struct aa_conn *ac, *next;

    for (ac = aa_conns; ac; ac = next) {
	next = ac->next;
	if (ac->state == AC_IDLE)
	    conn_close(ac->c, CONN_CLOSE_LOCAL);
    }
}

void auth_async_stats(int *open_r, int *busy_r, int *queued_r)
{
    if (open_r)
	*open_r = aa_open;
    if (busy_r)
	*busy_r = aa_busy;
    if (queued_r)
	*queued_r = aa_queued;
}
