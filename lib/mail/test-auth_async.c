/* test-auth_async.c - unit tests for auth_async.c against a mock auth
 * service on the same event loop (a unix socket in the cwd speaking
 * the real protocol): SASL steps, redeem, the pool limit and queue,
 * idle close, retry after EOF, cancel, and an unreachable service. */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "auth_async.h"
#include "auth_proto.h"
#include "config.h"
#include "mail_proto.h"

#define SOCK	"test-auth.sock"
#define TOKEN	"0123456789abcdef0123456789abcdef"

/* The mock service. */
static int mock_listen = -1;
static int mock_accepted;		/* connections accepted */
static int mock_requests;		/* requests read */
static int mock_max_conc;		/* most connections open at once */
static int mock_open;
static int mock_drop_first;		/* close this many connections at
					 * their first request, unanswered */
static int mock_delay_ms = 0;		/* answer after this long */
static bool mock_close_after_continue;

struct mock_conn {
    struct conn *c;
    struct ipc_list req;
    int nreq;
    bool sasl;			/* a LOGIN exchange is in progress */
    struct str pending;
    event_timer_id timer;
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mock_send - the reply, now or after the delay */
static void mock_flush(void *ctx)
{
    struct mock_conn *m = ctx;

    m->timer = 0;
    conn_write(m->c, str_cstr(&m->pending), str_len(&m->pending));
    str_reset(&m->pending);
    if (mock_close_after_continue && m->sasl)
	conn_close_after_flush(m->c);
}

static void mock_reply(struct mock_conn *m, const struct auth_reply *r)
{
    auth_reply_encode(&m->pending, r);
    if (mock_delay_ms > 0)
	m->timer = event_timer_add(mock_delay_ms, mock_flush, m);
    else
	mock_flush(m);
}

static void mock_input(struct conn *c, void *ctx)
{
    struct mock_conn *m = ctx;
    const char *error;
    long used = ipc_decode_list(conn_input_peek(c), conn_input_avail(c), &m->req, &error);
    struct auth_reply r = { 0 };

    if (used <= 0) {
	if (used < 0)
	    conn_close(c, CONN_CLOSE_ERROR);
	return;
    }
    conn_input_consume(c, (size_t) used);
    mock_requests++;
    if (m->nreq++ == 0 && mock_drop_first > 0) {
	mock_drop_first--;
	conn_close(c, CONN_CLOSE_LOCAL);
	return;
    }
    switch (auth_request_kind(&m->req, &error)) {
    case AUTH_KIND_AUTH:{
	    struct auth_request q;

	    unit_assert(auth_request_decode(&m->req, &q, &error) == 0);
	    if (strcmp(q.mechanism, "LOGIN") == 0) {
		m->sasl = true;
		r.status = AUTH_STAT_CONTINUE;
		r.challenge = "VXNlcm5hbWU6";
	    } else if (strcmp(q.response, "good") == 0) {
		r.status = AUTH_STAT_OK;
		r.user = "u@example.test";
		r.token = TOKEN;
	    } else {
		r.status = AUTH_STAT_FAIL;
		r.reason = AUTH_FAIL_TEXT;
	    }
	    mock_reply(m, &r);
	    return;
	}
    case AUTH_KIND_CONTINUE:{
	    const char *resp;

	    unit_assert(auth_continue_decode(&m->req, &resp, &error) == 0);
	    if (!m->sasl) {
		r.status = AUTH_STAT_FAIL;
		r.reason = AUTH_FAIL_TEXT;
	    } else if (strcmp(resp, "good") == 0) {
		r.status = AUTH_STAT_OK;
		r.user = "u@example.test";
		r.token = TOKEN;
	    } else {
		r.status = AUTH_STAT_FAIL;
		r.reason = AUTH_FAIL_TEXT;
	    }
	    m->sasl = false;
	    mock_reply(m, &r);
	    return;
	}
    case AUTH_KIND_REDEEM:{
	    struct auth_redeem q;
	    struct auth_redeem_reply rr = { 0 };

	    unit_assert(auth_redeem_decode(&m->req, &q, &error) == 0);
	    if (strcmp(q.token, TOKEN) == 0) {
		rr.status = AUTH_STAT_OK;
		rr.user = "u@example.test";
		rr.mail_location = "/var/mail/u";
		rr.uid = 1001;
		rr.gid = 1002;
	    } else {
		rr.status = AUTH_STAT_FAIL;
		rr.reason = AUTH_FAIL_TEXT;
	    }
	    auth_redeem_reply_encode(&m->pending, &rr);
	    mock_flush(m);
	    return;
	}
    default:
	conn_close(c, CONN_CLOSE_ERROR);
    }
}

static void mock_close(struct conn *c, void *ctx)
{
    struct mock_conn *m = ctx;

    (void) c;
    if (m->timer)
	event_timer_cancel(m->timer);
    ipc_list_fini(&m->req);
    str_fini(&m->pending);
    mem_free(&m);
    mock_open--;
}

static const struct conn_handlers mock_handlers = { mock_input, NULL, mock_close };

static void mock_accept(int fd, void *ctx)
{
    struct mock_conn *m;
    struct str hello;
    int cfd = sock_accept(fd);

    (void) ctx;
    if (cfd < 0)
	return;
    m = mem_zalloc(sizeof(*m));
    ipc_list_init(&m->req);
    str_init(&m->pending, IPC_MSG_MAX);
    m->c = conn_new(cfd, &mock_handlers, m, 65536);
    str_init(&hello, 1024);
    ipc_handshake_encode(&hello, AUTH_PROTO, AUTH_VERSION);
    conn_write(m->c, str_cstr(&hello), str_len(&hello));
    str_fini(&hello);
    mock_accepted++;
    if (++mock_open > mock_max_conc)
	mock_max_conc = mock_open;
}

static void mock_start(void)
{
    const char *error;

    unlink(SOCK);
    if ((mock_listen = sock_listen_unix(SOCK, 0600, 100, &error)) < 0)
	msg_fatal("listen: %s", error);
    event_add_read(mock_listen, mock_accept, NULL);
    mock_accepted = mock_requests = mock_max_conc = 0;
}

static void mock_stop(void)
{
    event_remove(mock_listen);
    close(mock_listen);
    mock_listen = -1;
    unlink(SOCK);
}

/* The client side: what the callbacks saw. */
struct result {
    int calls;
    char status[32];
    char detail[128];
    bool error;
};

static void got_reply(struct auth_async *h, const struct auth_reply *r, const char *error, void *ctx)
{
    struct result *res = ctx;

    (void) h;
    res->calls++;
    if (error) {
	res->error = true;
	fmt_buf_cut(res->detail, sizeof(res->detail), "%s", error);
	return;
    }
    fmt_buf_cut(res->status, sizeof(res->status), "%s", r->status);
    fmt_buf_cut(res->detail, sizeof(res->detail), "%s",
		r->challenge ? r->challenge : r->user ? r->user : r->reason ? r->reason : "");
}

static void got_redeem(struct auth_async *h, const struct auth_redeem_reply *r, const char *error,
		       void *ctx)
{
    struct result *res = ctx;

    (void) h;
    res->calls++;
    if (error) {
	res->error = true;
	return;
    }
    fmt_buf_cut(res->status, sizeof(res->status), "%s", r->status);
    fmt_buf_cut(res->detail, sizeof(res->detail), "%s:%ld", r->user ? r->user : "", r->uid);
}

/* run_until - loop until *n reaches want or ms pass */
static void run_until(const int *n, int want, int ms)
{
    long long end = now_ms() + ms;

    while (*n < want && now_ms() < end)
	event_loop_once(20);
}

static const struct auth_request plain_good = { "pop3", "PLAIN", "127.0.0.1", "good" };
static const struct auth_request plain_bad = { "pop3", "PLAIN", "127.0.0.1", "bad" };
static const struct auth_request login = { "imap", "LOGIN", "127.0.0.1", "" };

static void test_steps(void)
{
    struct result a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
    struct auth_async *h;

    unit_begin("start, continue, fail, redeem; never synchronous");
    mock_start();
    auth_async_start(&plain_good, got_reply, &a);
    unit_assert_inteq(a.calls, 0);
    run_until(&a.calls, 1, 3000);
    unit_assert_streq(a.status, "ok");
    unit_assert_streq(a.detail, "u@example.test");

    h = auth_async_start(&login, got_reply, &b);
    run_until(&b.calls, 1, 3000);
    unit_assert_streq(b.status, "continue");
    unit_assert_streq(b.detail, "VXNlcm5hbWU6");
    auth_async_continue(h, "good", got_reply, &b);
    unit_assert_inteq(b.calls, 1);
    run_until(&b.calls, 2, 3000);
    unit_assert_streq(b.status, "ok");

    auth_async_start(&plain_bad, got_reply, &c);
    run_until(&c.calls, 1, 3000);
    unit_assert_streq(c.status, "fail");
    unit_assert_streq(c.detail, AUTH_FAIL_TEXT);

    auth_async_redeem(TOKEN, "pop3", got_redeem, &d);
    run_until(&d.calls, 1, 3000);
    unit_assert_streq(d.status, "ok");
    unit_assert_streq(d.detail, "u@example.test:1001");
    /* all on one persistent connection */
    unit_assert_inteq(mock_accepted, 1);
    auth_async_shutdown();
    mock_stop();
    unit_end();
}

static void test_pool(void)
{
    struct result r[20];
    int i, done = 0, open, busy, queued;
    long long end;

    unit_begin("pool limit: 20 concurrent requests over 4 connections");
    memset(r, 0, sizeof(r));
    mock_start();
    mock_delay_ms = 50;
    auth_async_init(SOCK, 4);
    for (i = 0; i < 20; i++)
	auth_async_start(&plain_good, got_reply, &r[i]);
    auth_async_stats(&open, &busy, &queued);
    unit_assert_inteq(open, 4);
    unit_assert_inteq(queued, 16);
    end = now_ms() + 5000;
    while (done < 20 && now_ms() < end) {
	event_loop_once(20);
	for (done = 0, i = 0; i < 20; i++)
	    done += r[i].calls;
    }
    unit_assert_inteq(done, 20);
    for (i = 0; i < 20; i++)
	unit_assert_streq_idx(r[i].status, "ok", i);
    unit_assert_inteq(mock_accepted, 4);
    unit_assert_inteq(mock_max_conc, 4);
    auth_async_stats(&open, &busy, &queued);
    unit_assert_inteq(busy, 0);
    unit_assert_inteq(queued, 0);
    mock_delay_ms = 0;
    unit_end();

    unit_begin("idle connections close after AUTH_ASYNC_IDLE_MS");
    end = now_ms() + AUTH_ASYNC_IDLE_MS + 1500;
    while (mock_open > 0 && now_ms() < end)
	event_loop_once(50);
    auth_async_stats(&open, NULL, NULL);
    unit_assert_inteq(open, 0);
    unit_assert_inteq(mock_open, 0);
    mock_stop();
    unit_end();
}

static void test_retry(void)
{
    struct result a = { 0 }, b = { 0 }, c = { 0 };
    struct auth_async *h;

    unit_begin("EOF before any reply byte: one retry, then an error");
    mock_start();
    mock_drop_first = 1;
    auth_async_start(&plain_good, got_reply, &a);
    run_until(&a.calls, 1, 3000);
    unit_assert_streq(a.status, "ok");
    unit_assert_inteq(mock_accepted, 2);
    mock_drop_first = 5;
    auth_async_shutdown();
    event_loop_once(50);
    auth_async_redeem(TOKEN, "pop3", got_redeem, &b);
    run_until(&b.calls, 1, 3000);
    unit_assert(b.error);
    unit_assert_inteq(b.calls, 1);
    unit_assert_inteq(mock_drop_first, 3);	/* tried twice */
    mock_drop_first = 0;
    unit_end();

    unit_begin("connection lost between SASL steps: continue fails");
    mock_close_after_continue = true;
    h = auth_async_start(&login, got_reply, &c);
    run_until(&c.calls, 1, 3000);
    unit_assert_streq(c.status, "continue");
    event_loop_once(50);
    event_loop_once(50);
    auth_async_continue(h, "good", got_reply, &c);
    run_until(&c.calls, 2, 3000);
    unit_assert_inteq(c.calls, 2);
    unit_assert(c.error);
    mock_close_after_continue = false;
    auth_async_shutdown();
    mock_stop();
    unit_end();
}

static void test_cancel(void)
{
    struct result a = { 0 }, b = { 0 }, c = { 0 };
    struct auth_async *h;

    unit_begin("cancel: no callback; the connection is reused");
    mock_start();
    auth_async_init(SOCK, 1);
    mock_delay_ms = 100;
    h = auth_async_start(&plain_good, got_reply, &a);
    auth_async_start(&plain_bad, got_reply, &b);	/* queued */
    auth_async_cancel(h);
    run_until(&b.calls, 1, 3000);
    unit_assert_inteq(a.calls, 0);
    unit_assert_streq(b.status, "fail");
    mock_delay_ms = 0;
    h = auth_async_start(&login, got_reply, &c);
    run_until(&c.calls, 1, 3000);
    auth_async_cancel(h);	/* the client went away mid-exchange */
    c.calls = 0;
    auth_async_start(&plain_good, got_reply, &c);
    run_until(&c.calls, 1, 3000);
    unit_assert_streq(c.status, "ok");
    unit_assert_inteq(mock_accepted, 1);
    auth_async_shutdown();
    mock_stop();
    unit_end();

    unit_begin("auth unreachable: an error from the loop, not inside the call");
    memset(&a, 0, sizeof(a));
    auth_async_start(&plain_good, got_reply, &a);
    unit_assert_inteq(a.calls, 0);
    run_until(&a.calls, 1, 3000);
    unit_assert(a.error);
    unit_assert(strstr(a.detail, "connect") != NULL);
    unit_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    config_init();
    var_ipc_timeout = 10;
    auth_async_init(SOCK, 0);
    test_steps();
    test_pool();
    test_retry();
    test_cancel();
    return unit_done();
}
