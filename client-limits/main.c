/* main.c - client-limits, the counting service (the role of Postfix's
 * anvil): smtpd, smtp-front and the login processes report connections,
 * messages, recipients, new TLS sessions and failed logins per (service,
 * client address) over private/client-limits and get the figures back;
 * they compare them with their own limits. One event-driven process
 * (MULTI, IPC framing, maxproc 1): the counters live in its memory,
 * bounded by client_limits_max_entries. Protocol: limits_proto.h; see
 * man/client-limits.8. */

/* system */
#include <string.h>
#include <time.h>

/* base */
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "limits_proto.h"
#include "mail_proto.h"
#include "server.h"

/* client-limits */
#include "limits_table.h"

#define CL_TICK_MS	1000		/* expiry and status timer */
#define CL_WRITE_MS	1000		/* a reply must leave within this: a
					 * client that does not read its
					 * replies stalls everyone meanwhile,
					 * then is disconnected */

struct cl_client {
    struct lt_conn *lc;
};

static struct str *cl_reply;
static time_t cl_next_status;

/* cl_now - seconds on the monotonic clock (never 0): rate windows do not
 * jump with the wall clock */
static time_t cl_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	msg_fatal("clock_gettime: %m");
    return ts.tv_sec + 1;
}

/* cl_connect - a new client: announce the protocol */
static void *cl_connect(struct stream *client)
{
    struct cl_client *c = mem_zalloc(sizeof(*c));

    c->lc = lt_conn_new();
    stream_set_timeout(client, CL_WRITE_MS);
    if (ipc_handshake_server(client, LIMITS_PROTO, LIMITS_VERSION) < 0)
	msg_warn("client-limits: handshake write error");
    return c;
}

/* cl_disconnect - the client's connection closed: release its connects */
static void cl_disconnect(struct stream *client, void *ctx)
{
    struct cl_client *c = ctx;

    (void) client;
    lt_conn_free(&c->lc, cl_now());
    mem_free(&c);
}

/* cl_busy - every answer is given at once: a client between requests
 * owes nothing and may be closed when the process must exit */
static bool cl_busy(struct stream *client, void *ctx)
{
    (void) client;
    (void) ctx;
    return false;
}

/* cl_error - answer status=error with a reason, log it; false (the
 * skeleton then closes the connection) */
static bool cl_error(struct stream *client, const char *reason)
{
    msg_warn("client-limits: bad request: %s", reason);
    str_reset(cl_reply);
    ipc_encode_str(cl_reply, ATTR_STATUS, LIMITS_STAT_ERROR);
    ipc_encode_str(cl_reply, ATTR_REASON, reason);
    ipc_encode_end(cl_reply);
    (void) ipc_send_encoded(client, cl_reply);
    return false;
}

/* cl_token_ok - a service name or client address: 1..max printable
 * bytes, no space */
static bool cl_token_ok(const struct ipc_attr *a, size_t max)
{
    if (a->len == 0 || a->len > max)
	return false;
    for (size_t i = 0; i < a->len; i++)
	if ((unsigned char) a->value[i] <= ' ' || (unsigned char) a->value[i] > '~')
	    return false;
    return true;
}

static const struct {
    const char *name;
    enum lt_event ev;
} cl_requests[] = {
    {LIMITS_REQ_CONNECT, LT_CONNECT},
    {LIMITS_REQ_DISCONNECT, LT_DISCONNECT},
    {LIMITS_REQ_MESSAGE, LT_MESSAGE},
    {LIMITS_REQ_RECIPIENT, LT_RECIPIENT},
    {LIMITS_REQ_NEWTLS, LT_NEWTLS},
    {LIMITS_REQ_AUTHFAIL, LT_AUTHFAIL},
    {LIMITS_REQ_LOOKUP, LT_LOOKUP},
};

/* cl_encode_counts - the six figures */
static void cl_encode_counts(struct str *out, const struct limits_counts *k)
{
    ipc_encode_long(out, LIMITS_ATTR_COUNT, k->count);
    ipc_encode_long(out, LIMITS_ATTR_CONN_RATE, k->conn_rate);
    ipc_encode_long(out, LIMITS_ATTR_MSG_RATE, k->message_rate);
    ipc_encode_long(out, LIMITS_ATTR_RCPT_RATE, k->recipient_rate);
    ipc_encode_long(out, LIMITS_ATTR_TLS_RATE, k->tls_rate);
    ipc_encode_long(out, LIMITS_ATTR_AUTH_RATE, k->auth_rate);
}

/* cl_list - request=list: the largest entries */
static bool cl_list(struct stream *client, const struct ipc_attr *max_attr)
{
    long max = LIMITS_LIST_MAX;
    const struct lt_row *rows;
    size_t n;

    if (max_attr) {
	max = 0;
	if (max_attr->len == 0 || max_attr->len > 6 || max_attr->value[0] == '0')
	    return cl_error(client, "bad max value");
	for (size_t i = 0; i < max_attr->len; i++) {
	    if (max_attr->value[i] < '0' || max_attr->value[i] > '9')
		return cl_error(client, "bad max value");
	    max = max * 10 + (max_attr->value[i] - '0');
	}
	if (max > LIMITS_LIST_MAX)
	    return cl_error(client, "max value above " "10000");
    }
    n = lt_list(cl_now(), (size_t) max, &rows);
    str_reset(cl_reply);
    ipc_encode_str(cl_reply, ATTR_STATUS, LIMITS_STAT_OK);
    ipc_encode_long(cl_reply, LIMITS_ATTR_ENTRIES, (long) n);
    for (size_t i = 0; i < n; i++) {
	ipc_encode_str(cl_reply, ATTR_SERVICE, rows[i].service);
	ipc_encode_str(cl_reply, ATTR_CLIENT_ADDRESS, rows[i].address);
	cl_encode_counts(cl_reply, &rows[i].counts);
    }
    ipc_encode_end(cl_reply);
    return ipc_send_encoded(client, cl_reply) == 0;
}

/* cl_input - one request, one reply */
static bool cl_input(struct stream *client, void *ctx)
{
    struct cl_client *c = ctx;
    struct ipc_list list;
    const struct ipc_attr *req = NULL, *svc = NULL, *addr = NULL, *max = NULL;
    const char *err;
    struct limits_counts k;
    bool ok;

    ipc_list_init(&list);
    if (ipc_recv_list(client, &list, &err) < 0) {
	if (stream_error(client) != STREAM_EOF)
	    msg_warn("client-limits: request: %s", err);
	ipc_list_fini(&list);
	return false;
    }
    for (size_t i = 0; i < list.count; i++) {
	const struct ipc_attr *a = list.attrs + i;
	const struct ipc_attr **slot = strcmp(a->name, ATTR_REQUEST) == 0 ? &req
	    : strcmp(a->name, ATTR_SERVICE) == 0 ? &svc
	    : strcmp(a->name, ATTR_CLIENT_ADDRESS) == 0 ? &addr
	    : strcmp(a->name, LIMITS_ATTR_MAX) == 0 ? &max : NULL;

	if (slot == NULL || *slot != NULL) {
	    char why[128];

	    fmt_buf_cut(why, sizeof(why), "%s attribute \"%s\"",
			slot ? "duplicate" : "unexpected", a->name);
	    ok = cl_error(client, why);
	    ipc_list_fini(&list);
	    return ok;
	}
	*slot = a;
    }
    if (req == NULL) {
	ok = cl_error(client, "missing attribute \"request\"");
    } else if (strcmp(req->value, LIMITS_REQ_LIST) == 0) {
	ok = svc || addr ? cl_error(client, "unexpected attribute in a list request")
	    : cl_list(client, max);
    } else {
	size_t r;

	for (r = 0; r < sizeof(cl_requests) / sizeof(cl_requests[0]); r++)
	    if (strcmp(req->value, cl_requests[r].name) == 0 && strlen(req->value) == req->len)
		break;
	if (r == sizeof(cl_requests) / sizeof(cl_requests[0]))
	    ok = cl_error(client, "unknown request");
	else if (max)
	    ok = cl_error(client, "unexpected attribute \"max\"");
	else if (svc == NULL || addr == NULL)
	    ok = cl_error(client, svc ? "missing attribute \"client_address\""
			  : "missing attribute \"service\"");
	else if (!cl_token_ok(svc, LIMITS_SERVICE_MAX))
	    ok = cl_error(client, "bad service name");
	else if (!cl_token_ok(addr, LIMITS_ADDRESS_MAX))
	    ok = cl_error(client, "bad client address");
	else {
	    (void) lt_event(c->lc, cl_requests[r].ev, svc->value, addr->value, cl_now(), &k);
	    if (msg_verbose)
		msg_info("%s service=%s client=%s: count=%ld conn_rate=%ld message_rate=%ld recipient_rate=%ld tls_rate=%ld auth_rate=%ld",
			 req->value, svc->value, addr->value, k.count, k.conn_rate,
			 k.message_rate, k.recipient_rate, k.tls_rate, k.auth_rate);
	    str_reset(cl_reply);
	    ipc_encode_str(cl_reply, ATTR_STATUS, LIMITS_STAT_OK);
	    cl_encode_counts(cl_reply, &k);
	    ipc_encode_end(cl_reply);
	    ok = ipc_send_encoded(client, cl_reply) == 0;
	}
    }
    ipc_list_fini(&list);
    return ok;
}

/* cl_timer - every second: expire idle entries; the periodic report
 * (an event timer of its own: the skeleton's spec.timer is not run for
 * MULTI daemons) */
static void cl_timer(void *unused)
{
    time_t now = cl_now();

    (void) unused;
    (void) event_timer_add(CL_TICK_MS, cl_timer, NULL);

    lt_expire(now);
    if (now >= cl_next_status) {
	lt_stats_log(now);
	cl_next_status = now + var_client_limits_status_update_time;
    }
}

/* cl_post_init - the empty table */
static void cl_post_init(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    cl_reply = str_new(IPC_MSG_MAX);
    lt_init(var_client_limits_rate_time_unit, var_client_limits_max_entries);
    cl_next_status = cl_now() + var_client_limits_status_update_time;
    (void) event_timer_add(CL_TICK_MS, cl_timer, NULL);
}

/* cl_on_exit - the last report */
static void cl_on_exit(void)
{
    lt_stats_log(cl_now());
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_MULTI,
	.name = "client-limits",
	.flags = SERVER_FLAG_NO_IDLE_EXIT | SERVER_FLAG_NO_MAX_USE,
	.post_init = cl_post_init,
	.on_exit = cl_on_exit,
	.multi_connect = cl_connect,
	.multi_input = cl_input,
	.multi_disconnect = cl_disconnect,
	.multi_busy = cl_busy,
	.multi_framing = SERVER_FRAME_IPC,
	.client_timeout = -1,
    };

    return server_main(argc, argv, &spec);
}
