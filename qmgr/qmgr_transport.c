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
 * one more transport with a single destination.
 *
 * Destination feedback (docs/qmgr-scheduling.md): a destination may run
 * at most its window of deliveries at once. The window starts at
 * <transport>_initial_destination_concurrency (else
 * initial_destination_concurrency), capped by the concurrency limit; an
 * agent's reply says whether the next hop answered (dest_status "ok":
 * credit +1, and a window's worth of credit grows the window by one) or
 * not ("dead": the window shrinks by one, the failure streak grows). At
 * window 1, destination_concurrency_failed_cohort_limit failures in a
 * row make the destination dead: its queued jobs are deferred at once
 * without an agent, new ones on arrival, until minimal_backoff_time has
 * passed or a flush ("F") revives it (window back to the initial one).
 * A dead destination stays in the table until it is revived and idle.
 * An agent that fails a job as a whole (crash, protocol error) says
 * nothing about the destination. The bounce transport has no feedback. */

#include <errno.h>
#include <string.h>

/* base */
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "deliver_proto.h"
#include "mail_proto.h"

/* qmgr */
#include "qmgr.h"

#define QMGR_DEST_TABLE_SIZE	1024
#define QMGR_REVIVE_SLACK	1.0	/* seconds, at most half the dead time;
					 * see qmgr_transport_enqueue */
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
    tr->init_window = is_bounce ? tr->dest_limit
	: (int) transport_param(name, "initial_destination_concurrency",
				var_initial_destination_concurrency);
    if (tr->init_window > tr->dest_limit)
	tr->init_window = tr->dest_limit;
    tr->table_size = QMGR_DEST_TABLE_SIZE;
    tr->table = mem_zalloc(tr->table_size * sizeof(*tr->table));
    if (msg_verbose)
	msg_info("transport %s: %d connections, %d per destination (%d at first), "
		 "%d recipients per request", name, tr->conn_limit, tr->dest_limit,
		 tr->init_window, tr->rcpt_limit);
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
    d->window = tr->init_window;
    d->hash_next = tr->table[h];
    tr->table[h] = d;
    return d;
}

static void dest_free(struct qmgr_dest *d);

/* dest_idle - no job waits or runs, and it is not dead */
static bool dest_idle(const struct qmgr_dest *d)
{
    return d->busy == 0 && d->head == NULL && !d->ready && !d->dead;
}

/* dest_linger_fire - an idle destination's feedback is forgotten */
static void dest_linger_fire(void *ctx)
{
    struct qmgr_dest *d = ctx;

    d->linger_timer = 0;
    if (dest_idle(d))
	dest_free(d);
}

/* dest_maybe_free - forget a destination with no work (a dead one
 * stays; one with feedback to keep lingers) */
static void dest_maybe_free(struct qmgr_dest *d)
{
    if (!dest_idle(d))
	return;
    if (d->window != d->tr->init_window || d->fail_streak > 0) {
	if (d->linger_timer == 0)
	    d->linger_timer = event_timer_add(qmgr_timer_ms(var_minimal_backoff_time),
					      dest_linger_fire, d);
	return;
    }
    dest_free(d);
}

/* dest_free - unlink and free a destination */
static void dest_free(struct qmgr_dest *d)
{
    struct qmgr_transport *tr = d->tr;
    struct qmgr_dest **pp;

    if (d->linger_timer)
	(void) event_timer_cancel(d->linger_timer);
    if (d->dead_timer)
	(void) event_timer_cancel(d->dead_timer);
    for (pp = &tr->table[dest_hash(d->key, tr->table_size)]; *pp; pp = &(*pp)->hash_next) {
	if (*pp == d) {
	    *pp = d->hash_next;
	    break;
	}
    }
    mem_free(&d->key);
    mem_free(&d->dead_reason);
    mem_free(&d);
}

/* qmgr_transport_dest - the destination of key, NULL if none */
struct qmgr_dest *qmgr_transport_dest(struct qmgr_transport *tr, const char *key)
{
    struct qmgr_dest *d;

    for (d = tr->table[dest_hash(key, tr->table_size)]; d; d = d->hash_next)
	if (strcmp(d->key, key) == 0)
	    return d;
    return NULL;
}

/* dest_make_ready - put d at the end of the round-robin list if it can
 * take another job */
static void dest_make_ready(struct qmgr_dest *d)
{
    struct qmgr_transport *tr = d->tr;

    if (d->ready || d->head == NULL || d->dead || d->busy >= d->window)
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

/* dest_unready - take d off the round-robin list */
static void dest_unready(struct qmgr_dest *d)
{
    struct qmgr_transport *tr = d->tr;
    struct qmgr_dest *prev = NULL;

    if (!d->ready)
	return;
    for (struct qmgr_dest *p = tr->ready_head; p; prev = p, p = p->ready_next) {
	if (p != d)
	    continue;
	if (prev)
	    prev->ready_next = d->ready_next;
	else
	    tr->ready_head = d->ready_next;
	if (tr->ready_tail == d)
	    tr->ready_tail = prev;
	break;
    }
    d->ready = false;
    d->ready_next = NULL;
}

/* dest_defer_job - a job of a dead destination: deferred without an
 * agent, with the reason the destination died */
static void dest_defer_job(struct qmgr_dest *d, struct qmgr_job *job)
{
    char why[512];

    fmt_buf_cut(why, sizeof(why), "delivery temporarily suspended: %s",
		d->dead_reason ? d->dead_reason : "destination is dead");
    job->dest = NULL;
    job->next = NULL;
    qmgr_job_failed(job, d->dead_dsn, why);
}

/* dest_revive - d is alive again: the initial window, no history */
static void dest_revive(struct qmgr_dest *d, const char *why)
{
    struct qmgr_transport *tr = d->tr;

    if (!d->dead)
	return;
    if (d->dead_timer)
	(void) event_timer_cancel(d->dead_timer);
    d->dead_timer = 0;
    d->dead = false;
    d->window = tr->init_window;
    d->credit = 0;
    d->fail_streak = 0;
    mem_free(&d->dead_reason);
    msg_info("%s destination %s: alive again (%s)", tr->name, d->key, why);
    dest_make_ready(d);
    dest_maybe_free(d);
    qmgr_kick_dispatch();
}

/* dest_revive_fire - the dead time of a destination is over */
static void dest_revive_fire(void *ctx)
{
    struct qmgr_dest *d = ctx;

    d->dead_timer = 0;
    dest_revive(d, "backoff time passed");
    qmgr_run_pending();
}

/* dest_kill - d is dead: log it, defer what waits for it, and arm the
 * revival after minimal_backoff_time */
static void dest_kill(struct qmgr_dest *d, const char *dsn, const char *reason)
{
    struct qmgr_transport *tr = d->tr;
    struct qmgr_job *job;
    long secs = var_minimal_backoff_time;

    d->dead = true;
    d->credit = 0;
    if (!deliver_dsn_valid(dsn) || dsn[0] != '4')
	dsn = "4.4.1";
    str_copy_out_or_panic(d->dead_dsn, sizeof(d->dead_dsn), dsn);
    mem_free(&d->dead_reason);
    d->dead_reason = mem_strdup(*reason ? reason : "destination not reachable");
    msg_info("%s destination %s: dead for %lds: %s", tr->name, d->key, secs, d->dead_reason);
    d->dead_until = qmgr_now() + (double) secs;
    d->revive_slack = secs >= 2 ? QMGR_REVIVE_SLACK : (double) secs / 2;
    d->dead_timer = event_timer_add(qmgr_timer_ms(secs), dest_revive_fire, d);
    dest_unready(d);
    while ((job = d->head) != NULL) {
	d->head = job->next;
	if (d->head == NULL)
	    d->tail = NULL;
	dest_defer_job(d, job);
    }
}

/* qmgr_transport_feedback - the next hop answered, or was dead */
void qmgr_transport_feedback(struct qmgr_job *job, bool dead, const char *dsn,
			     const char *reason)
{
    struct qmgr_dest *d = job->dest;

    if (d == NULL || d->tr->is_bounce || d->dead)
	return;
    if (!dead) {
	d->fail_streak = 0;
	if (++d->credit >= d->window) {
	    d->credit = 0;
	    if (d->window < d->tr->dest_limit)
		d->window++;
	}
	return;				/* made ready when the job finishes */
    }
    if (d->window > 1)
	d->window--;
    d->fail_streak++;
    if (d->window == 1 && d->fail_streak >= var_destination_concurrency_failed_cohort_limit)
	dest_kill(d, dsn, reason);
}

/* qmgr_transport_revive_all - a flush: every dead destination is alive */
void qmgr_transport_revive_all(void)
{
    for (struct qmgr_transport *tr = transports; tr; tr = tr->next) {
	for (size_t h = 0; h < tr->table_size; h++) {
	    struct qmgr_dest *d = tr->table[h], *next;

	    for (; d; d = next) {
		next = d->hash_next;	/* d may be freed */
		dest_revive(d, "queue flush");
	    }
	}
    }
}

/* qmgr_transport_enqueue - queue a job for a destination of tr (a dead
 * destination defers it at once) */
void qmgr_transport_enqueue(struct qmgr_transport *tr, const char *dest_key, struct qmgr_job *job)
{
    struct qmgr_dest *d = dest_find(tr, dest_key);

    /* Mail deferred when the destination died comes back when its dead
     * time ends, give or take the queue file's whole-second retry time
     * and the order of timers: then it is tried, not deferred again. */
    if (d->dead && qmgr_now() >= d->dead_until - d->revive_slack) {
	dest_revive(d, "backoff time passed");	/* may free d */
	d = dest_find(tr, dest_key);
    }
    if (d->dead) {
	dest_defer_job(d, job);
	return;
    }
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
	    /* one whose last job went there (an agent may keep its session
	     * open), else the least recently used; assign takes it off */
	    conn = qmgr_conn_pick_idle(tr, tr->ready_head->key);
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
