/* test-limits_client.c - unit tests for limits_client.c against a mock
 * client-limits service in a child process (a unix socket in the cwd
 * speaking the real protocol): the blocking calls (connection kept,
 * one retry after the service closed it, error replies, timeout and
 * fail-fast afterwards, service down, the rate-limited warning, the
 * listing), the event-driven calls (pipelined replies in order, never
 * inside the call, cancel, fire and forget, retry, timeout, service
 * down), and limits_client_exempt. */

#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "event.h"
#include "file_read.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* mail */
#include "limits_client.h"
#include "limits_proto.h"
#include "mail_proto.h"

#define SOCK	"test-limits.sock"
#define LOG	"test-limits.log"

static pid_t mock_pid;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mock_serve - one connection: per request, by service name:
 *   ok         count = requests on this connection, conn_rate = the
 *              connection's number (1, 2, ...)
 *   closeonce  the first such request in the run: close unanswered
 *   closeafter answer, then close
 *   error      status=error, then close
 *   silent     no answer, to this or any later request
 *   garbage    a malformed reply
 * and request=list: two entries. */
static void mock_serve(int fd, int serial, bool *closed_once)
{
    struct stream *s = stream_open(fd);
    struct ipc_list req;
    const char *err;
    int n = 0;
    bool silent = false;

    ipc_list_init(&req);
    stream_set_timeout(s, 10000);
    (void) ipc_handshake_server(s, LIMITS_PROTO, LIMITS_VERSION);
    while (ipc_recv_list(s, &req, &err) == 0) {
	const char *request = ipc_list_get(&req, ATTR_REQUEST);
	const char *service = ipc_list_get(&req, ATTR_SERVICE);

	n++;
	if (request && strcmp(request, LIMITS_REQ_LIST) == 0) {
	    (void) ipc_send(s, IPC_STR(ATTR_STATUS, "ok"), IPC_INT(LIMITS_ATTR_ENTRIES, 2),
			    IPC_STR(ATTR_SERVICE, "smtp"), IPC_STR(ATTR_CLIENT_ADDRESS, "192.0.2.1"),
			    IPC_INT("count", 5), IPC_INT("conn_rate", 6), IPC_INT("message_rate", 7),
			    IPC_INT("recipient_rate", 8), IPC_INT("tls_rate", 9), IPC_INT("auth_rate", 10),
			    IPC_STR(ATTR_SERVICE, "pop3"), IPC_STR(ATTR_CLIENT_ADDRESS, "2001:db8::1"),
			    IPC_INT("count", 1), IPC_INT("conn_rate", 0), IPC_INT("message_rate", 0),
			    IPC_INT("recipient_rate", 0), IPC_INT("tls_rate", 0), IPC_INT("auth_rate", 0),
			    IPC_END);
	    continue;
	}
	if (service && strcmp(service, "closeonce") == 0 && !*closed_once) {
	    *closed_once = true;
	    break;
	}
	if (service && strcmp(service, "closeafter") == 0) {
	    (void) ipc_send(s, IPC_STR(ATTR_STATUS, "ok"), IPC_INT("count", n),
			    IPC_INT("conn_rate", serial), IPC_INT("message_rate", 0),
			    IPC_INT("recipient_rate", 0), IPC_INT("tls_rate", 0),
			    IPC_INT("auth_rate", 0), IPC_END);
	    break;
	}
	if (service && strcmp(service, "error") == 0) {
	    (void) ipc_send(s, IPC_STR(ATTR_STATUS, "error"), IPC_STR(ATTR_REASON, "test error"),
			    IPC_END);
	    break;
	}
	if (silent || (service && strcmp(service, "silent") == 0)) {
	    silent = true;			/* then nothing more */
	    continue;
	}
	if (service && strcmp(service, "garbage") == 0) {
	    (void) ipc_send(s, IPC_STR(ATTR_STATUS, "ok"), IPC_STR("count", "x"), IPC_END);
	    continue;
	}
	(void) ipc_send(s, IPC_STR(ATTR_STATUS, "ok"), IPC_INT("count", n),
			IPC_INT("conn_rate", serial), IPC_INT("message_rate", 0),
			IPC_INT("recipient_rate", 0), IPC_INT("tls_rate", 0),
			IPC_INT("auth_rate", strcmp(request ? request : "", "authfail") == 0),
			IPC_END);
    }
    ipc_list_fini(&req);
    (void) stream_close(&s);
}

/* mock_start - the mock service in a child, one connection at a time */
static void mock_start(void)
{
    const char *err;
    int lfd, fd, serial = 0;
    bool closed_once = false;

    (void) unlink(SOCK);
    if ((lfd = sock_listen_unix(SOCK, 0600, 16, &err)) < 0)
	msg_fatal("%s", err);
    if ((mock_pid = fork()) < 0)
	msg_fatal("fork: %m");
    if (mock_pid > 0) {
	close(lfd);
	return;
    }
    (void) sock_set_nonblock(lfd, false);
    for (;;) {
	if ((fd = accept(lfd, NULL, NULL)) < 0)
	    _exit(1);
	mock_serve(fd, ++serial, &closed_once);
    }
}

/* mock_stop - end the mock service */
static void mock_stop(void)
{
    limits_client_close();
    if (mock_pid > 0) {
	kill(mock_pid, SIGKILL);
	(void) waitpid(mock_pid, NULL, 0);
	mock_pid = 0;
    }
    (void) unlink(SOCK);
}

/* log_count - occurrences of text in the log file */
static int log_count(const char *text)
{
    struct str *buf = str_new(1 << 20);
    const char *err, *p;
    int n = 0;

    if (file_read_path(LOG, buf, 1 << 20, &err) == 0)
	for (p = str_cstr(buf); (p = strstr(p, text)) != NULL; p++)
	    n++;
    str_free(&buf);
    return n;
}

struct row {
    char svc[16], addr[64];
    struct limits_counts k;
};
static int list_rows;

/* got - limits_client_list's callback: fill the test's rows */
static void got(const char *svc, const char *addr, const struct limits_counts *kk, void *ctx)
{
    struct row *rows = ctx;

    if (rows == NULL || list_rows >= 4)
	return;
    snprintf(rows[list_rows].svc, sizeof(rows[0].svc), "%s", svc);
    snprintf(rows[list_rows].addr, sizeof(rows[0].addr), "%s", addr);
    rows[list_rows].k = *kk;
    list_rows++;
}

static void test_blocking(void)
{
    struct limits_counts k;
    long long t0;

    unit_begin("limits_client_call: counts, one kept connection, retry after a close");
    mock_start();
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "ok", "192.0.2.1", &k), 0);
    unit_assert_inteq(k.count, 1);
    unit_assert_inteq(k.conn_rate, 1);
    unit_assert_inteq(limits_client_call(LIMITS_REQ_AUTHFAIL, "ok", "192.0.2.1", &k), 0);
    unit_assert_inteq(k.count, 2);			/* same connection */
    unit_assert_inteq(k.conn_rate, 1);
    unit_assert_inteq(k.auth_rate, 1);
    /* the service closes the connection unanswered: once more, anew */
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "closeonce", "192.0.2.1", &k), 0);
    unit_assert_inteq(k.count, 1);
    unit_assert_inteq(k.conn_rate, 2);
    /* answered, then the connection closed while idle: the next call
     * notices before it sends and opens a new one, without a warning */
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "closeafter", "192.0.2.1", &k), 0);
    unit_assert_inteq(k.conn_rate, 2);
    usleep(100 * 1000);
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "ok", "192.0.2.1", &k), 0);
    unit_assert_inteq(k.conn_rate, 3);
    unit_assert_inteq(log_count("warning"), 0);
    /* an error reply: -1, a warning, the connection dropped */
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "error", "192.0.2.1", &k), -1);
    unit_assert_inteq(log_count("service error: test error; client limits not enforced (fail open)"), 1);
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "ok", "192.0.2.1", &k), 0);
    unit_assert_inteq(k.conn_rate, 4);
    /* a malformed reply */
    unit_assert_inteq(limits_client_call(LIMITS_REQ_LOOKUP, "garbage", "192.0.2.1", &k), -1);
    unit_assert_inteq(limits_client_call(LIMITS_REQ_LOOKUP, "ok", "192.0.2.1", &k), 0);
    unit_assert_inteq(k.conn_rate, 5);
    /* warnings are rate-limited: only the first of these was logged */
    unit_assert_inteq(log_count("client limits not enforced"), 1);
    unit_end();

    unit_begin("limits_client_call: a silent service times out, then fails at once");
    t0 = now_ms();
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "silent", "192.0.2.1", &k), -1);
    unit_assert(now_ms() - t0 >= LIMITS_CLIENT_TIMEOUT_MS - 50);
    unit_assert(now_ms() - t0 < LIMITS_CLIENT_TIMEOUT_MS + 1500);
    t0 = now_ms();
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "ok", "192.0.2.1", &k), -1);
    unit_assert(now_ms() - t0 < 100);
    usleep(1100 * 1000);
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "ok", "192.0.2.1", &k), 0);
    unit_end();

    unit_begin("limits_client_list: every entry in order");
    {
	struct row rows[4];
	const char *err;

	memset(rows, 0, sizeof(rows));
	unit_assert_inteq(limits_client_list(100, got, rows, &err), 0);
	unit_assert_inteq(list_rows, 2);
	unit_assert_streq(rows[0].svc, "smtp");
	unit_assert_streq(rows[0].addr, "192.0.2.1");
	unit_assert_inteq(rows[0].k.count, 5);
	unit_assert_inteq(rows[0].k.conn_rate, 6);
	unit_assert_inteq(rows[0].k.auth_rate, 10);
	unit_assert_streq(rows[1].svc, "pop3");
	unit_assert_streq(rows[1].addr, "2001:db8::1");
	unit_assert_inteq(rows[1].k.count, 1);
    }
    unit_end();
    mock_stop();

    unit_begin("limits_client_call: service down: -1 at once");
    t0 = now_ms();
    unit_assert_inteq(limits_client_call(LIMITS_REQ_CONNECT, "ok", "192.0.2.1", &k), -1);
    unit_assert(now_ms() - t0 < 500);
    {
	const char *err = NULL;

	unit_assert_inteq(limits_client_list(10, got, NULL, &err), -1);
	unit_assert(err != NULL && strstr(err, SOCK) != NULL);
    }
    unit_end();
}

/* The event-driven flavour. */
static int cb_order[16];
static long cb_count[16];
static bool cb_error[16];
static int cb_n;
static bool in_call;

static void async_cb(const struct limits_counts *k, const char *error, void *ctx)
{
    int id = (int) (long) ctx;

    unit_assert(!in_call);
    if (cb_n < 16) {
	cb_order[cb_n] = id;
	cb_count[cb_n] = k ? k->count : -1;
	cb_error[cb_n] = error != NULL;
	if (error && getenv("TEST_DEBUG"))
	    fprintf(stderr, "cb %d: %s\n", id, error);
	cb_n++;
    }
}

/* run_until - the event loop until n callbacks ran (bounded) */
static void run_until(int n, int max_ms)
{
    long long end = now_ms() + max_ms;

    while (cb_n < n && now_ms() < end)
	event_loop_once(50);
}

static struct limits_async *call(const char *req, const char *svc, int id)
{
    struct limits_async *h;

    in_call = true;
    h = limits_async_call(req, svc, "192.0.2.1", async_cb, (void *) (long) id);
    in_call = false;
    return h;
}

static void test_async(void)
{
    struct limits_async *h;
    long long t0;

    mock_start();
    unit_begin("limits_async_call: pipelined, answered in order from the loop");
    cb_n = 0;
    call(LIMITS_REQ_CONNECT, "ok", 1);
    call(LIMITS_REQ_MESSAGE, "ok", 2);
    h = call(LIMITS_REQ_RECIPIENT, "ok", 3);
    limits_async_cancel(h);				/* no callback */
    limits_async_send(LIMITS_REQ_DISCONNECT, "ok", "192.0.2.1");
    call(LIMITS_REQ_LOOKUP, "ok", 4);
    unit_assert_inteq(cb_n, 0);
    run_until(3, 3000);
    unit_assert_inteq(cb_n, 3);
    unit_assert_inteq(cb_order[0], 1);
    unit_assert_inteq(cb_count[0], 1);
    unit_assert_inteq(cb_order[1], 2);
    unit_assert_inteq(cb_count[1], 2);
    unit_assert_inteq(cb_order[2], 4);
    unit_assert_inteq(cb_count[2], 5);		/* the cancelled and the sent
						 * ones were counted too */
    unit_end();

    unit_begin("limits_async_call: the service closes unanswered: sent again");
    cb_n = 0;
    call(LIMITS_REQ_CONNECT, "closeonce", 5);
    run_until(1, 3000);
    unit_assert_inteq(cb_n, 1);
    unit_assert(!cb_error[0]);
    unit_assert_inteq(cb_count[0], 1);		/* first on the new connection */
    unit_end();

    unit_begin("limits_async_call: an error reply, then a new connection");
    cb_n = 0;
    call(LIMITS_REQ_CONNECT, "error", 6);
    call(LIMITS_REQ_CONNECT, "ok", 7);
    run_until(2, 3000);
    unit_assert_inteq(cb_n, 2);
    unit_assert(cb_error[0]);
    unit_assert(!cb_error[1]);
    unit_assert_inteq(cb_count[1], 1);
    unit_end();

    unit_begin("limits_async_call: a silent service: error after the timeout");
    cb_n = 0;
    t0 = now_ms();
    call(LIMITS_REQ_CONNECT, "silent", 8);
    call(LIMITS_REQ_CONNECT, "ok", 9);		/* queued behind it */
    run_until(2, LIMITS_CLIENT_TIMEOUT_MS + 2000);
    unit_assert_inteq(cb_n, 2);
    unit_assert(cb_error[0] && cb_error[1]);
    unit_assert(now_ms() - t0 >= LIMITS_CLIENT_TIMEOUT_MS - 50);
    unit_end();
    mock_stop();

    unit_begin("limits_async_call: service down: error from the loop");
    usleep(1100 * 1000);				/* past the retry pause */
    cb_n = 0;
    call(LIMITS_REQ_CONNECT, "ok", 10);
    unit_assert_inteq(cb_n, 0);
    run_until(1, 1000);
    unit_assert_inteq(cb_n, 1);
    unit_assert(cb_error[0]);
    unit_end();
}

static void test_exempt(void)
{
    unit_begin("limits_client_exempt: network lists, cached, bad list exempts nobody");
    unit_assert(limits_client_exempt("127.0.0.0/8 [::1]/128", "127.0.0.5"));
    unit_assert(limits_client_exempt("127.0.0.0/8 [::1]/128", "::1"));
    unit_assert(limits_client_exempt("127.0.0.0/8 [::1]/128", "::ffff:127.0.0.9"));
    unit_assert(!limits_client_exempt("127.0.0.0/8 [::1]/128", "192.0.2.1"));
    unit_assert(limits_client_exempt("192.0.2.0/24, 2001:db8::/32", "2001:db8::5"));
    unit_assert(!limits_client_exempt("", "127.0.0.1"));
    unit_assert(!limits_client_exempt("127.0.0.1/8", "127.0.0.1"));
    unit_assert(!limits_client_exempt("127.0.0.1/8", "127.0.0.1"));
    unit_assert_inteq(log_count("client limit exceptions \"127.0.0.1/8\""), 1);
    for (int i = 0; i < 20; i++) {
	char list[64];

	snprintf(list, sizeof(list), "10.%d.0.0/16", i);
	unit_assert_idx(!limits_client_exempt(list, "127.0.0.1"), i);
    }
    unit_assert(limits_client_exempt("127.0.0.0/8 [::1]/128", "127.0.0.5"));
    unit_end();
}

int main(void)
{
    const char *err;

    (void) unlink(LOG);
    msg_init("test-limits_client", MSG_TO_FILE);
    if (!msg_set_file(LOG, &err))
	msg_fatal("%s", err);
    signal(SIGPIPE, SIG_IGN);
    limits_client_init(SOCK);
    test_blocking();
    test_async();
    test_exempt();
    return unit_done();
}
