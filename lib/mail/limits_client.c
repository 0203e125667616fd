/* limits_client.c - the clients of the client-limits service
 * (limits_client.h): the blocking calls on one kept stream, the
 * event-driven calls pipelined on one conn (conn.h), the reply decoder
 * both share, the operator's listing, the exception-list check, and the
 * rate-limited fail-open warning. */

/* system */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "errtext.h"
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "cidr_match.h"
#include "limits_client.h"
#include "limits_proto.h"
#include "mail_proto.h"

#define LC_REQUEST_MAX	512		/* bytes of one encoded request */
#define LC_RETRY_MS	1000		/* after a failure to connect or a
					 * timeout: fail at once this long */
#define LA_CONNECT_MS	100		/* event-driven: connect(2) wait */
#define LA_INPUT_MAX	(64 * 1024)	/* event-driven: reply bound */
#define LC_EXEMPT_CACHE	8		/* exception lists kept parsed */

static char *lc_path;
static struct errtext lc_err;
static time_t lc_warned;
static long lc_suppressed;

/* lc_now_ms - monotonic milliseconds */
static long long lc_now_ms(void)
{
    struct timespec ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* lc_socket - the socket path */
static const char *lc_socket(void)
{
    return lc_path ? lc_path : LIMITS_SOCKET;
}

/* lc_warn - a fail-open warning, at most once per LIMITS_WARN_INTERVAL_S */
static void lc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void lc_warn(const char *fmt, ...)
{
    time_t now = time(NULL);
    char text[512];
    va_list ap;

    if (lc_warned != 0 && now - lc_warned < LIMITS_WARN_INTERVAL_S && now >= lc_warned) {
	lc_suppressed++;
	return;
    }
    va_start(ap, fmt);
    if (vsnprintf(text, sizeof(text), fmt, ap) < 0)	/* a message: cut to fit */
	text[0] = 0;
    va_end(ap);
    if (lc_suppressed)
	msg_warn("%s; client limits not enforced (fail open; %ld more such warnings in the last %ds)",
		 text, lc_suppressed, LIMITS_WARN_INTERVAL_S);
    else
	msg_warn("%s; client limits not enforced (fail open)", text);
    lc_warned = now;
    lc_suppressed = 0;
}

void limits_client_init(const char *path)
{
    limits_client_close();
    mem_free(&lc_path);
    if (path)
	lc_path = mem_strdup(path);
}

/* lc_number - a figure: decimal digits, no sign, no leading zero */
static bool lc_number(const struct ipc_attr *a, long *out)
{
    long v = 0;

    if (a->len == 0 || a->len > 18 || (a->len > 1 && a->value[0] == '0'))
	return false;
    for (size_t i = 0; i < a->len; i++) {
	if (a->value[i] < '0' || a->value[i] > '9')
	    return false;
	v = v * 10 + (a->value[i] - '0');
    }
    *out = v;
    return true;
}

static const char *const lc_figures[6] = {
    LIMITS_ATTR_COUNT, LIMITS_ATTR_CONN_RATE, LIMITS_ATTR_MSG_RATE,
    LIMITS_ATTR_RCPT_RATE, LIMITS_ATTR_TLS_RATE, LIMITS_ATTR_AUTH_RATE,
};

/* lc_figures_decode - the six figures at list[at..at+6) in order */
static int lc_figures_decode(const struct ipc_list *list, size_t at, struct limits_counts *k,
			     const char **error_r)
{
    long *dst[6] = { &k->count, &k->conn_rate, &k->message_rate, &k->recipient_rate,
		     &k->tls_rate, &k->auth_rate };

    for (int i = 0; i < 6; i++) {
	const struct ipc_attr *a;

	if (at + (size_t) i >= list->count)
	    return errtext_fail(&lc_err, error_r, "reply: missing attribute \"%s\"", lc_figures[i]);
	a = list->attrs + at + i;
	if (strcmp(a->name, lc_figures[i]) != 0)
	    return errtext_fail(&lc_err, error_r, "reply: attribute \"%.64s\" where \"%s\" belongs",
				a->name, lc_figures[i]);
	if (!lc_number(a, dst[i]))
	    return errtext_fail(&lc_err, error_r, "reply: bad number in \"%s\"", lc_figures[i]);
    }
    return 0;
}

/* lc_status - the reply's status: 0 ok, -1 with *error_r (an error
 * reply or a malformed one) */
static int lc_status(const struct ipc_list *list, const char **error_r)
{
    const struct ipc_attr *a = list->count ? list->attrs : NULL;

    if (a == NULL || strcmp(a->name, ATTR_STATUS) != 0)
	return errtext_fail(&lc_err, error_r, "reply: missing attribute \"status\"");
    if (strcmp(a->value, LIMITS_STAT_OK) == 0)
	return 0;
    if (strcmp(a->value, LIMITS_STAT_ERROR) == 0 && list->count == 2
	&& strcmp(list->attrs[1].name, ATTR_REASON) == 0)
	return errtext_fail(&lc_err, error_r, "service error: %.200s", list->attrs[1].value);
    return errtext_fail(&lc_err, error_r, "reply: bad status");
}

/* lc_reply_decode - {status=ok, six figures} */
static int lc_reply_decode(const struct ipc_list *list, struct limits_counts *k,
			   const char **error_r)
{
    if (lc_status(list, error_r) < 0 || lc_figures_decode(list, 1, k, error_r) < 0)
	return -1;
    if (list->count != 7)
	return errtext_fail(&lc_err, error_r, "reply: unexpected attribute \"%.64s\"",
			    list->attrs[7].name);
    return 0;
}

/* lc_encode - a request */
static void lc_encode(struct str *out, const char *request, const char *service,
		      const char *client_address)
{
    if (strlen(service) > LIMITS_SERVICE_MAX || strlen(client_address) > LIMITS_ADDRESS_MAX)
	msg_panic("limits_client: service or address too long");
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, request);
    ipc_encode_str(out, ATTR_SERVICE, service);
    ipc_encode_str(out, ATTR_CLIENT_ADDRESS, client_address);
    ipc_encode_end(out);
}

/* Blocking                                                          */

static struct stream *lc_stream;
static pid_t lc_pid;
static long long lc_down_until;

/* limits_client_close - drop the connection (the service releases its
 * connects) */
void limits_client_close(void)
{
    if (lc_stream == NULL)
	return;
    if (lc_pid == getpid())
	(void) stream_close(&lc_stream);
    else
	stream_free(&lc_stream);	/* a forked child: leave the parent's */
}

/* lc_open - connect and check the handshake */
static int lc_open(const char **error_r)
{
    const char *error;
    int fd;

    if (lc_now_ms() < lc_down_until)
	return errtext_fail(&lc_err, error_r, "service unavailable (recently failed)");
    if ((fd = sock_connect_unix(lc_socket(), LIMITS_CLIENT_TIMEOUT_MS, &error)) < 0) {
	lc_down_until = lc_now_ms() + LC_RETRY_MS;
	return errtext_fail(&lc_err, error_r, "%s", error);
    }
    lc_stream = stream_open(fd);
    lc_pid = getpid();
    stream_set_timeout(lc_stream, LIMITS_CLIENT_TIMEOUT_MS);
    if (ipc_handshake_client(lc_stream, LIMITS_PROTO, LIMITS_VERSION, &error) < 0) {
	(void) stream_close(&lc_stream);
	lc_down_until = lc_now_ms() + LC_RETRY_MS;
	return errtext_fail(&lc_err, error_r, "%s", error);
    }
    return 0;
}

/* lc_stale - the kept connection has input between requests: the
 * service closed it (an exiting process) */
static bool lc_stale(void)
{
    struct pollfd p = { stream_fd(lc_stream), POLLIN, 0 };

    return stream_buffered(lc_stream) > 0 || poll(&p, 1, 0) != 0;
}

/* lc_exchange - one request and its reply on the kept connection; once
 * more on a fresh one if the old one had ended (the request was not read) */
static int lc_exchange(const struct str *req, struct ipc_list *reply, const char **error_r)
{
    const char *error;

    if (lc_stream && lc_pid != getpid())
	limits_client_close();
    for (int attempt = 0; attempt < 2; attempt++) {
	if (lc_stream && lc_stale())
	    limits_client_close();
	if (lc_stream == NULL && lc_open(error_r) < 0)
	    return -1;
	if (ipc_call(lc_stream, req, reply, &error) == 0)
	    return 0;
	if (stream_error(lc_stream) == STREAM_TIMEOUT)
	    lc_down_until = lc_now_ms() + LC_RETRY_MS;
	/* EOF or a reset: the service closed the connection (it does so
	 * only with nothing unread) or died; a timeout is not retried */
	if ((stream_error(lc_stream) != STREAM_EOF && stream_error(lc_stream) != STREAM_ERROR)
	    || attempt > 0) {
	    limits_client_close();
	    return errtext_fail(&lc_err, error_r, "%s", error);
	}
	limits_client_close();
    }
    return errtext_fail(&lc_err, error_r, "connection closed");
}

int limits_client_call(const char *request, const char *service, const char *client_address,
		       struct limits_counts *counts)
{
    struct str req;
    struct ipc_list reply;
    const char *error;
    int ret;

    str_init(&req, LC_REQUEST_MAX);
    ipc_list_init(&reply);
    lc_encode(&req, request, service, client_address);
    ret = lc_exchange(&req, &reply, &error);
    if (ret == 0 && (ret = lc_reply_decode(&reply, counts, &error)) < 0)
	limits_client_close();			/* the service closes too */
    if (ret < 0)
	lc_warn("client-limits %s: %s %s %s: %s", lc_socket(), request, service,
		client_address, error);
    ipc_list_fini(&reply);
    str_fini(&req);
    return ret;
}

int limits_client_list(long max,
		       void (*fn)(const char *service, const char *client_address,
				  const struct limits_counts *counts, void *ctx),
		       void *ctx, const char **error_r)
{
    struct str req;
    struct ipc_list reply;
    struct limits_counts k;
    long n = 0;
    int ret = -1;

    if (max < 1 || max > LIMITS_LIST_MAX)
	max = LIMITS_LIST_MAX;
    str_init(&req, LC_REQUEST_MAX);
    ipc_list_init(&reply);
    ipc_encode_str(&req, ATTR_REQUEST, LIMITS_REQ_LIST);
    ipc_encode_long(&req, LIMITS_ATTR_MAX, max);
    ipc_encode_end(&req);
    lc_down_until = 0;				/* an operator asks: try */
    if (lc_exchange(&req, &reply, error_r) < 0 || lc_status(&reply, error_r) < 0)
	goto out;
    if (reply.count < 2 || strcmp(reply.attrs[1].name, LIMITS_ATTR_ENTRIES) != 0
	|| !lc_number(reply.attrs + 1, &n) || n > max
	|| reply.count != 2 + (size_t) n * 8) {
	errtext_fail(&lc_err, error_r, "list reply: bad entries");
	goto out;
    }
    for (long i = 0; i < n; i++) {
	const struct ipc_attr *a = reply.attrs + 2 + i * 8;

	if (strcmp(a[0].name, ATTR_SERVICE) != 0 || strcmp(a[1].name, ATTR_CLIENT_ADDRESS) != 0
	    || lc_figures_decode(&reply, 2 + (size_t) i * 8 + 2, &k, error_r) < 0) {
	    errtext_fail(&lc_err, error_r, "list reply: bad entry %ld", i + 1);
	    goto out;
	}
	fn(a[0].value, a[1].value, &k, ctx);
    }
    ret = 0;
  out:
    if (ret < 0)
	limits_client_close();
    ipc_list_fini(&reply);
    str_fini(&req);
    return ret;
}

/* Event-driven                                                      */

struct limits_async {
    limits_async_fn cb;			/* NULL: fire and forget */
    void *ctx;
    bool cancelled;
    bool retried;
    char *request;			/* for the warning */
    struct str msg;
    struct limits_async *next;
};

static struct conn *la_conn;
static bool la_greeted;			/* the handshake arrived */
static struct ipc_list la_reply;
static struct limits_async *la_head, *la_tail;	/* sent, in order */
static struct limits_async *la_fhead, *la_ftail;	/* failed, to report */
static event_timer_id la_fail_timer;
static long long la_down_until;
static char la_error[256];
static bool la_protocol_error;		/* la_input closed the connection */

static void la_input(struct conn *c, void *ctx);
static void la_close(struct conn *c, void *ctx);
static const struct conn_handlers la_handlers = { la_input, NULL, la_close };

/* la_free - forget a handle */
static void la_free(struct limits_async *h)
{
    str_fini(&h->msg);
    mem_free(&h->request);
    mem_free(&h);
}

/* la_fail_cb - timer: report the failed requests, in order */
static void la_fail_cb(void *unused)
{
    struct limits_async *h;

    (void) unused;
    la_fail_timer = 0;
    while ((h = la_fhead) != NULL) {
	la_fhead = h->next;
	if (la_fhead == NULL)
	    la_ftail = NULL;
	if (!h->cancelled && h->cb)
	    h->cb(NULL, la_error, h->ctx);
	la_free(h);
    }
}

/* la_fail - h fails with la_error, reported from the event loop */
static void la_fail(struct limits_async *h)
{
    h->next = NULL;
    if (la_ftail)
	la_ftail->next = h;
    else
	la_fhead = h;
    la_ftail = h;
    if (la_fail_timer == 0)
	la_fail_timer = event_timer_add(0, la_fail_cb, NULL);
}

/* la_deadline - a reply is owed: bound the wait; else wait forever
 * (the connection holds connects: it must stay) */
static void la_deadline(void)
{
    if (la_conn)
	conn_set_idle_timeout(la_conn, la_head || !la_greeted ? LIMITS_CLIENT_TIMEOUT_MS : 0);
}

/* la_open - a connection, or false */
static bool la_open(void)
{
    const char *error;
    int fd;

    if (lc_now_ms() < la_down_until) {
	fmt_buf_cut(la_error, sizeof(la_error), "client-limits %s: service unavailable (recently failed)",
		    lc_socket());
	return false;
    }
    if ((fd = sock_connect_unix(lc_socket(), LA_CONNECT_MS, &error)) < 0) {
	la_down_until = lc_now_ms() + LC_RETRY_MS;
	fmt_buf_cut(la_error, sizeof(la_error), "client-limits %s: %s", lc_socket(), error);
	lc_warn("%s", la_error);
	return false;
    }
    la_conn = conn_new(fd, &la_handlers, NULL, LA_INPUT_MAX);
    conn_set_write_timeout(la_conn, LIMITS_CLIENT_TIMEOUT_MS);
    la_greeted = false;
    la_deadline();
    return true;
}

/* la_submit - send h, or fail it */
static void la_submit(struct limits_async *h)
{
    if (la_conn == NULL && !la_open()) {
	la_fail(h);
	return;
    }
    h->next = NULL;
    if (la_tail)
	la_tail->next = h;
    else
	la_head = h;
    la_tail = h;
    conn_write(la_conn, str_cstr(&h->msg), str_len(&h->msg));
    la_deadline();
}

/* la_new - a request handle */
static struct limits_async *la_new(const char *request, const char *service,
				   const char *client_address, limits_async_fn cb, void *ctx)
{
    struct limits_async *h = mem_zalloc(sizeof(*h));

    h->cb = cb;
    h->ctx = ctx;
    h->request = mem_strdup(request);
    str_init(&h->msg, LC_REQUEST_MAX);
    lc_encode(&h->msg, request, service, client_address);
    return h;
}

struct limits_async *limits_async_call(const char *request, const char *service,
				       const char *client_address, limits_async_fn cb, void *ctx)
{
    struct limits_async *h;

    if (cb == NULL)
	msg_panic("limits_async_call: no callback");
    h = la_new(request, service, client_address, cb, ctx);
    la_submit(h);
    return h;
}

void limits_async_send(const char *request, const char *service, const char *client_address)
{
    la_submit(la_new(request, service, client_address, NULL, NULL));
}

void limits_async_cancel(struct limits_async *h)
{
    if (h)
	h->cancelled = true;		/* freed when its reply or error comes */
}

/* la_input - the handshake, then replies in request order */
static void la_input(struct conn *c, void *ctx)
{
    const char *error = "", *rerror;
    long used;

    (void) ctx;
    while ((used = ipc_decode_list(conn_input_peek(c), conn_input_avail(c), &la_reply,
				   &error)) > 0) {
	struct limits_async *h;
	struct limits_counts k;

	conn_input_consume(c, (size_t) used);
	if (!la_greeted) {
	    if (ipc_handshake_check(&la_reply, LIMITS_PROTO, LIMITS_VERSION, &error) < 0) {
		used = -1;
		break;
	    }
	    la_greeted = true;
	    la_deadline();
	    continue;
	}
	if ((h = la_head) == NULL) {
	    error = "reply without a request";
	    used = -1;
	    break;
	}
	la_head = h->next;
	if (la_head == NULL)
	    la_tail = NULL;
	la_deadline();
	if (lc_reply_decode(&la_reply, &k, &rerror) < 0) {
	    /* an error reply: the service closes the connection next */
	    fmt_buf_cut(la_error, sizeof(la_error), "client-limits %s: %s: %s", lc_socket(),
			h->request, rerror);
	    lc_warn("%s", la_error);
	    if (!h->cancelled && h->cb)
		h->cb(NULL, la_error, h->ctx);
	} else if (!h->cancelled && h->cb) {
	    h->cb(&k, NULL, h->ctx);
	}
	la_free(h);
	if (la_conn != c)
	    return;
    }
    if (used < 0) {
	fmt_buf_cut(la_error, sizeof(la_error), "client-limits %s: %s", lc_socket(), error);
	lc_warn("%s", la_error);
	la_protocol_error = true;
	conn_close(c, CONN_CLOSE_ERROR);
    } else if (conn_input_avail(c) >= LA_INPUT_MAX) {
	fmt_buf_cut(la_error, sizeof(la_error), "client-limits %s: reply too long", lc_socket());
	lc_warn("%s", la_error);
	la_protocol_error = true;
	conn_close(c, CONN_CLOSE_ERROR);
    }
}

/* la_close - the connection ended: the service released its connects;
 * requests it never answered go once more on a new connection (it
 * closes only clients that have nothing unread: they were not read),
 * or fail */
static void la_close(struct conn *c, void *ctx)
{
    enum conn_close_reason why = conn_close_reason(c);
    struct limits_async *h, *list = la_head;

    (void) ctx;
    la_conn = NULL;
    la_head = la_tail = NULL;
    if (la_protocol_error) {
	la_protocol_error = false;		/* la_error says what */
    } else if (why == CONN_CLOSE_TIMEOUT) {
	la_down_until = lc_now_ms() + LC_RETRY_MS;
	fmt_buf_cut(la_error, sizeof(la_error), "client-limits %s: timeout", lc_socket());
	lc_warn("%s", la_error);
    } else {
	fmt_buf_cut(la_error, sizeof(la_error), "client-limits %s: %s", lc_socket(),
		    why == CONN_CLOSE_ERROR ? "connection error" : "connection closed");
    }
    while ((h = list) != NULL) {
	list = h->next;
	if (h->cancelled || strcmp(h->request, LIMITS_REQ_DISCONNECT) == 0) {
	    /* a disconnect has nothing to take back on a new connection:
	     * the service released this one's connects */
	    la_free(h);
	} else if (!h->retried && (why == CONN_CLOSE_EOF || why == CONN_CLOSE_ERROR)) {
	    h->retried = true;
	    la_submit(h);
	} else {
	    if (h->retried)
		lc_warn("%s", la_error);
	    la_fail(h);
	}
    }
}

/* Exceptions                                                        */

static struct {
    char *text;
    struct cidr_list *list;		/* NULL: the text did not parse */
} lc_exempt[LC_EXEMPT_CACHE];
static int lc_exempt_next;

bool limits_client_exempt(const char *network_list, const char *client_address)
{
    int i;
    const char *error;

    for (i = 0; i < LC_EXEMPT_CACHE; i++)
	if (lc_exempt[i].text && strcmp(lc_exempt[i].text, network_list) == 0)
	    break;
    if (i == LC_EXEMPT_CACHE) {
	i = lc_exempt_next;
	lc_exempt_next = (lc_exempt_next + 1) % LC_EXEMPT_CACHE;
	mem_free(&lc_exempt[i].text);
	cidr_list_free(&lc_exempt[i].list);
	lc_exempt[i].text = mem_strdup(network_list);
	if ((lc_exempt[i].list = cidr_list_parse(network_list, &error)) == NULL)
	    msg_warn("client limit exceptions \"%.200s\": %s; no client is exempt",
		     network_list, error);
    }
    return lc_exempt[i].list != NULL && cidr_list_match(lc_exempt[i].list, client_address);
}
