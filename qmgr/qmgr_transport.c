/* qmgr_transport.c - transports, destinations and job queues: who gets
 * the next connection.
 *
 * A transport (a master.cf service under private/) has a connection
 * limit (default_process_limit) and, per destination, a concurrency
 * limit (<transport>_destination_concurrency_limit, else
 * default_destination_concurrency_limit). A destination is the next hop,
 * or the recipient itself when <transport>_destination_recipient_limit
 * is 1 (as Postfix's local transport: parallel deliveries per mailbox).
 * Each destination holds a FIFO of jobs; the transport keeps a round-
 * robin list of destinations that have jobs and are below their limit,
 * so one busy destination never starves another. The bounce service is
 * one more transport with a single destination. */

#include <errno.h>
#include <string.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "mail_proto.h"

/* qmgr */
#include "qmgr.h"

#define QMGR_DEST_TABLE_SIZE	1024
#define QMGR_RETRY_MS		1000	/* agent backlog full: try again */

static struct qmgr_transport *transports;
static struct qmgr_transport *bounce_transport;

/* qmgr_transport_name_valid - [a-z0-9_-]{1,63}: safe as a socket name */
bool qmgr_transport_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len >= sizeof(((struct qmgr_transport *) 0)->name))
	return false;
    for (const char *p = name; *p; p++)
	if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
	    return false;
    return true;
}

/* transport_param - <transport>_<suffix> from main.cf, else def */
static long transport_param(const char *name, const char *suffix, long def)
{
    char pname[128];
    const char *value;
    long n;

    if (!fmt_try_buf(pname, sizeof(pname), "%s_%s", name, suffix)
	|| (value = config_value(pname)) == NULL || *value == 0)
	return def;
    if (!parse_long(value, &n) || n < 1) {
	msg_warn("bad %s value \"%s\" -- using %ld", pname, value, def);
	return def;
    }
    return n;
}

/* transport_new - set up a transport with its limits */
static struct qmgr_transport *transport_new(const char *name, bool is_bounce)
{
    struct qmgr_transport *tr = mem_zalloc(sizeof(*tr));

    str_copy_out_or_panic(tr->name, sizeof(tr->name), name);
    tr->is_bounce = is_bounce;
    tr->conn_limit = (int) var_default_process_limit;
    if (is_bounce) {
	tr->dest_limit = tr->conn_limit;
	tr->rcpt_limit = 0;
    } else {
	tr->dest_limit = (int) transport_param(name, "destination_concurrency_limit",
					       var_default_destination_concurrency_limit);
	tr->rcpt_limit = (int) transport_param(name, "destination_recipient_limit",
					       var_default_destination_recipient_limit);
    }
    tr->table_size = QMGR_DEST_TABLE_SIZE;
    tr->table = mem_zalloc(tr->table_size * sizeof(*tr->table));
    if (msg_verbose)
	msg_info("transport %s: %d connections, %d per destination, %d recipients per request",
		 name, tr->conn_limit, tr->dest_limit, tr->rcpt_limit);
    return tr;
}

/* qmgr_transport_find - the transport of this name (created on demand) */
struct qmgr_transport *qmgr_transport_find(const char *name)
{
    struct qmgr_transport *tr;

    for (tr = transports; tr; tr = tr->next)
	if (strcmp(tr->name, name) == 0)
	    return tr;
    tr = transport_new(name, false);
    tr->next = transports;
    transports = tr;
    return tr;
}

/* qmgr_transport_bounce - the bounce service as a transport */
struct qmgr_transport *qmgr_transport_bounce(void)
{
    if (bounce_transport == NULL)
	bounce_transport = transport_new("bounce", true);
    return bounce_transport;
}

/* dest_hash - string hash for the destination table */
static size_t dest_hash(const char *key, size_t size)
{
    size_t h = 5381;

    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
	h = h * 33 + *p;
    return h % size;
}

/* dest_find - the destination for key, created if needed */
static struct qmgr_dest *dest_find(struct qmgr_transport *tr, const char *key)
{
    size_t h = dest_hash(key, tr->table_size);
    struct qmgr_dest *d;

    for (d = tr->table[h]; d; d = d->hash_next)
	if (strcmp(d->key, key) == 0)
	    return d;
    d = mem_zalloc(sizeof(*d));
    d->key = mem_strdup(key);
    d->tr = tr;
    d->hash_next = tr->table[h];
    tr->table[h] = d;
    return d;
}

/* dest_maybe_free - forget a destination with no work */
static void dest_maybe_free(struct qmgr_dest *d)
{
    struct qmgr_transport *tr = d->tr;
    struct qmgr_dest **pp;

    if (d->busy > 0 || d->head != NULL || d->ready)
	return;
    for (pp = &tr->table[dest_hash(d->key, tr->table_size)]; *pp; pp = &(*pp)->hash_next) {
	if (*pp == d) {
	    *pp = d->hash_next;
	    break;
	}
    }
    mem_free(&d->key);
    mem_free(&d);
}

/* dest_make_ready - put d at the end of the round-robin list if it can
 * take another job */
static void dest_make_ready(struct qmgr_dest *d)
{
    struct qmgr_transport *tr = d->tr;

    if (d->ready || d->head == NULL || d->busy >= tr->dest_limit)
	return;
    d->ready = true;
    d->ready_next = NULL;
    if (tr->ready_tail)
	tr->ready_tail->ready_next = d;
    else
	tr->ready_head = d;
    tr->ready_tail = d;
}

/* dest_pop_ready - the next destination in turn, or NULL */
static struct qmgr_dest *dest_pop_ready(struct qmgr_transport *tr)
{
    struct qmgr_dest *d = tr->ready_head;

    if (d == NULL)
	return NULL;
    tr->ready_head = d->ready_next;
    if (tr->ready_head == NULL)
	tr->ready_tail = NULL;
    d->ready = false;
    d->ready_next = NULL;
    return d;
}

/* qmgr_transport_enqueue - queue a job for a destination of tr */
void qmgr_transport_enqueue(struct qmgr_transport *tr, const char *dest_key, struct qmgr_job *job)
{
    struct qmgr_dest *d = dest_find(tr, dest_key);

    job->dest = d;
    job->next = NULL;
    job->queued = qmgr_now();
    if (d->tail)
	d->tail->next = job;
    else
	d->head = job;
    d->tail = job;
    dest_make_ready(d);
    qmgr_kick_dispatch();
}

static int transport_running;	/* jobs handed to a connection */

/* qmgr_transport_running - jobs handed to an agent and not finished */
int qmgr_transport_running(void)
{
    return transport_running;
}

/* qmgr_transport_job_finished - a job left its connection */
void qmgr_transport_job_finished(struct qmgr_job *job)
{
    struct qmgr_dest *d = job->dest;

    if (d == NULL)
	return;
    job->dest = NULL;
    if (d->busy <= 0)
	msg_panic("qmgr_transport_job_finished: destination %s not busy", d->key);
    d->busy--;
    transport_running--;
    dest_make_ready(d);
    dest_maybe_free(d);
    qmgr_kick_dispatch();
}

/* retry_fire - the retry delay after a full agent backlog passed */
static void retry_fire(void *ctx)
{
    struct qmgr_transport *tr = ctx;

    tr->retry_armed = false;
    qmgr_kick_dispatch();
}

/* fail_queued - the agent is unavailable: every queued job of the
 * transport is deferred now (it would fail the same way) */
static void fail_queued(struct qmgr_transport *tr, const char *why)
{
    struct qmgr_dest *d;

    while ((d = dest_pop_ready(tr)) != NULL) {
	struct qmgr_job *job;

	while ((job = d->head) != NULL) {
	    d->head = job->next;
	    if (d->head == NULL)
		d->tail = NULL;
	    job->dest = NULL;
	    qmgr_job_failed(job, "4.3.0", why);
	}
	dest_maybe_free(d);
    }
}

/* dest_take_job - the first job of the first ready destination, off its
 * queue (the destination is ready again if it has more, within limits,
 * once the caller counted the job as busy or not) */
static struct qmgr_job *dest_take_job(struct qmgr_transport *tr, struct qmgr_dest **dp)
{
    struct qmgr_dest *d = dest_pop_ready(tr);
    struct qmgr_job *job = d->head;

    d->head = job->next;
    if (d->head == NULL)
	d->tail = NULL;
    job->next = NULL;
    *dp = d;
    return job;
}

/* transport_dispatch - hand queued jobs to connections within limits */
static void transport_dispatch(struct qmgr_transport *tr)
{
    while (tr->ready_head) {
	struct qmgr_conn *conn = NULL;
	struct qmgr_dest *d;
	struct qmgr_job *job;
	const char *err;

	if (tr->ready_head->head->msg->dropped) {
	    /* the operator deleted its message: never sent */
	    job = dest_take_job(tr, &d);
	    job->dest = NULL;
	    dest_make_ready(d);
	    qmgr_job_drop(job);
	    dest_maybe_free(d);
	    continue;
	}
	if (tr->idle == NULL) {
	    /* a full agent backlog holds back new connections only: idle
	     * ones keep taking jobs meanwhile */
	    if (tr->retry_armed || tr->conn_count >= tr->conn_limit)
		return;
	    switch (qmgr_conn_open(tr, &conn, &err)) {
	    case QMGR_CONN_OK:
		break;
	    case QMGR_CONN_BUSY_RETRY:
		tr->retry_armed = true;
		(void) event_timer_add(QMGR_RETRY_MS, retry_fire, tr);
		return;
	    case QMGR_CONN_UNAVAILABLE:
		msg_warn("connect to %s/%s: %s", DELIVER_SOCKET_DIR, tr->name, err);
		fail_queued(tr, "mail transport unavailable");
		return;
	    }
	} else {
	    conn = tr->idle;		/* qmgr_conn_assign takes it off */
	}
	job = dest_take_job(tr, &d);
	d->busy++;
	transport_running++;
	dest_make_ready(d);
	qmgr_conn_assign(conn, job);
    }
}

/* qmgr_transport_dispatch_all - start what can start, everywhere */
void qmgr_transport_dispatch_all(void)
{
    for (struct qmgr_transport *tr = transports; tr; tr = tr->next)
	transport_dispatch(tr);
    if (bounce_transport)
	transport_dispatch(bounce_transport);
}
