/* qmgr_job.c - jobs: one request to a delivery agent (some recipients
 * of one message, for one destination) or to bounce (one notice).
 *
 * A job is built by the message module (routing, notices), queued and
 * handed to a connection by qmgr_transport.c, and sent by qmgr_conn.c.
 * This module makes the request from the job, reads the agent's reply
 * and turns each recipient's result into its outcome:
 *   sent    done in memory (its 'D' mark waits, qmgr_message_flush_marks),
 *           log status=sent; NOTIFY=SUCCESS also asks bounce for a notice
 *   bounce  ask bounce for a failure notice (unless NOTIFY excludes it),
 *           then done in memory and log status=bounced; if bounce fails
 *           the recipient is deferred instead
 *   defer   append the reason to defer/ID (fsync), log status=deferred;
 *           past the queue lifetime a deferral becomes a bounce
 *           (status=expired)
 * An attempt that fails as a whole (no agent, a dead agent, a protocol
 * error: qmgr_job_failed) defers every recipient of the job. A finished
 * job leaves its destination's count and drops its message reference;
 * the last one lets the message finish (qmgr_message_unref). The
 * commit points are in docs/queue.md. */

#include <string.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "bounce_proto.h"
#include "defer_log.h"
#include "deliver_proto.h"
#include "log_delivery.h"
#include "mail_proto.h"

/* qmgr */
#include "qmgr.h"

/* nz - never NULL */
static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---------------------------------------------------------------- */
/* The job                                                          */

/* qmgr_job_new - an empty job for msg */
struct qmgr_job *qmgr_job_new(enum qmgr_job_kind kind, struct qmgr_message *msg)
{
    struct qmgr_job *job = mem_zalloc(sizeof(*job));

    job->kind = kind;
    job->msg = msg;
    msg->refs++;
    return job;
}

/* qmgr_job_add_rcpt - one more recipient (an index into msg->rcpts) */
void qmgr_job_add_rcpt(struct qmgr_job *job, size_t idx)
{
    if (job->count == job->cap) {
	job->cap = job->cap ? job->cap * 2 : 4;
	job->rcpt_idx = mem_realloc(job->rcpt_idx, mem_size_mul(job->cap, sizeof(size_t)));
    }
    job->rcpt_idx[job->count++] = idx;
}

/* job_free - free a job (job_finish drops its message reference) */
static void job_free(struct qmgr_job **jobp)
{
    struct qmgr_job *job = *jobp;

    if (job == NULL)
	return;
    mem_free(&job->nexthop);
    mem_free(&job->rcpt_idx);
    mem_free(jobp);
}

/* job_finish - release a finished job */
static void job_finish(struct qmgr_job *job)
{
    struct qmgr_message *msg = job->msg;

    qmgr_transport_job_finished(job);
    job_free(&job);
    qmgr_message_unref(msg);
}

/* qmgr_job_drop - a queued job of a dropped message: finish it unsent */
void qmgr_job_drop(struct qmgr_job *job)
{
    job_finish(job);
}

/* ---------------------------------------------------------------- */
/* Outcomes                                                         */

/* batch_add - append an index to one of the batch lists */
static void batch_add(size_t **list, size_t *n, size_t idx)
{
    *list = mem_realloc(*list, mem_size_mul(*n + 1, sizeof(size_t)));
    (*list)[(*n)++] = idx;
}

/* batch_fini - free the lists */
static void batch_fini(struct qmgr_outcomes *b)
{
    mem_free(&b->fail);
    mem_free(&b->success);
    mem_free(&b->defers);
}

/* rcpt_set_outcome - remember the latest outcome of a recipient */
static void rcpt_set_outcome(struct qmgr_rcpt *r, const char *dsn, const char *reason,
			     const char *relay, const struct delivery_times *t)
{
    char *new_reason = mem_strdup(nz(reason));	/* the old texts may be the args */
    char *new_relay = mem_strdup(relay && *relay ? relay : "none");

    str_copy_out_or_panic(r->dsn, sizeof(r->dsn), dsn);
    mem_free(&r->reason);
    r->reason = new_reason;
    mem_free(&r->relay);
    r->relay = new_relay;
    r->times = *t;
}

/* rcpt_done - the recipient is finished; its 'D' mark waits
 * (qmgr_message_flush_marks) */
static void rcpt_done(struct qmgr_message *msg, struct qmgr_rcpt *r)
{
    r->state = QMGR_RCPT_DONE;
    if (!r->mark_pending) {
	r->mark_pending = true;
	msg->marks_pending++;
    }
}

/* rcpt_log - log a recipient's latest outcome with this status */
static void rcpt_log(const struct qmgr_message *msg, const struct qmgr_rcpt *r, const char *status)
{
    struct delivery_outcome o = {r->address, r->orig, r->relay, r->dsn, status, r->reason,
				 r->conn_use, r->tls};

    log_delivery(msg->id, &o, &r->times);
}

/* qmgr_outcome - apply one recipient's result: 's'ent, 'b'ounce or
 * 'd'efer (collected in b until qmgr_outcomes_apply) */
void qmgr_outcome(struct qmgr_message *msg, size_t idx, int what, const char *dsn,
		    const char *reason, const char *relay, const struct delivery_times *t,
		    struct qmgr_outcomes *b)
{
    struct qmgr_rcpt *r = msg->rcpts + idx;

    rcpt_set_outcome(r, dsn, reason, relay, t);
    r->conn_use = b->conn_use;
    mem_free(&r->tls);
    if (b->tls && *b->tls)
	r->tls = mem_strdup(b->tls);
    if (what == 'd' && msg->expired) {
	r->expired = true;
	what = 'b';
    }
    switch (what) {
    case 's':
	rcpt_done(msg, r);
	rcpt_log(msg, r, "sent");
	if ((r->notify_flags & QMGR_NOTIFY_SUCCESS) && r->success_action)
	    batch_add(&b->success, &b->nsuccess, idx);
	break;
    case 'b':
	if (r->notify_flags & QMGR_NOTIFY_FAILURE) {
	    r->state = QMGR_RCPT_BOUNCING;	/* logged when bounce has it */
	    batch_add(&b->fail, &b->nfail, idx);
	} else {
	    rcpt_done(msg, r);
	    rcpt_log(msg, r, r->expired ? "expired" : "bounced");
	    if (r->expired && !msg->expired_logged) {
		msg->expired_logged = true;
		log_queue_expired(msg->id, msg->sender);
	    }
	}
	break;
    default:
	r->state = QMGR_RCPT_DEFERRED;
	b->defers = mem_realloc(b->defers, mem_size_mul(b->ndefer + 1, sizeof(*b->defers)));
	b->defers[b->ndefer].rcpt = r->address;
	b->defers[b->ndefer].dsn = r->dsn;
	b->defers[b->ndefer].reason = r->reason;
	b->ndefer++;
	rcpt_log(msg, r, "deferred");
	break;
    }
}

/* qmgr_job_notice - queue a bounce request for some recipients */
void qmgr_job_notice(struct qmgr_message *msg, const char *request, const size_t *idx, size_t n)
{
    struct qmgr_job *job;

    if (n == 0)
	return;
    job = qmgr_job_new(QMGR_JOB_BOUNCE, msg);
    job->request = request;
    for (size_t i = 0; i < n; i++)
	qmgr_job_add_rcpt(job, idx[i]);
    qmgr_transport_enqueue(qmgr_transport_bounce(), "bounce", job);
}

/* qmgr_outcomes_apply - the durable part of a reply, in commit order:
 * done marks (only if bounce is to be asked), defer reasons, then the
 * notices that bounce will write */
void qmgr_outcomes_apply(struct qmgr_message *msg, struct qmgr_outcomes *b)
{
    const char *err;

    if (b->nfail || b->nsuccess)
	qmgr_message_flush_marks(msg);
    if (b->ndefer && !msg->file_gone
	&& defer_log_append(msg->id, b->defers, b->ndefer, &err) < 0)
	msg_warn("%s: defer log: %s", msg->id, err);
    qmgr_job_notice(msg, BOUNCE_REQ_FAILURE, b->fail, b->nfail);
    qmgr_job_notice(msg, BOUNCE_REQ_SUCCESS, b->success, b->nsuccess);
    batch_fini(b);
}

/* ---------------------------------------------------------------- */
/* Requests and replies                                             */

/* job_times - the stage times of a job that just finished */
static void job_times(const struct qmgr_job *job, struct delivery_times *t)
{
    t->arrival = job->msg->arrival;
    t->active = job->msg->active_time;
    t->conn_start = job->conn_start;
    t->xmit_start = job->xmit_start;
    t->finish = qmgr_now();
}

/* bounce_done - bounce answered (status 0) or failed (-1) */
static void bounce_done(struct qmgr_job *job, long status, const char *why)
{
    struct qmgr_message *msg = job->msg;
    struct qmgr_outcomes b;
    const char *err;

    memset(&b, 0, sizeof(b));
    if (strcmp(job->request, BOUNCE_REQ_FAILURE) == 0) {
	for (size_t i = 0; i < job->count; i++) {
	    struct qmgr_rcpt *r = msg->rcpts + job->rcpt_idx[i];

	    if (status == 0) {
		rcpt_done(msg, r);
		rcpt_log(msg, r, r->expired ? "expired" : "bounced");
		if (r->expired && !msg->expired_logged) {
		    msg->expired_logged = true;
		    log_queue_expired(msg->id, msg->sender);
		}
	    } else {
		struct delivery_times t = r->times;
		char *orig_reason = mem_strdup(nz(r->reason));
		char reason[512];

		fmt_buf_cut(reason, sizeof(reason), "bounce or notification service failure (%s)",
			       orig_reason);
		mem_free(&orig_reason);
		t.finish = qmgr_now();
		r->expired = false;
		rcpt_set_outcome(r, "4.3.0", reason, r->relay, &t);
		r->conn_use = 0;
		mem_free(&r->tls);
		r->state = QMGR_RCPT_DEFERRED;
		b.defers = mem_realloc(b.defers, mem_size_mul(b.ndefer + 1, sizeof(*b.defers)));
		b.defers[b.ndefer].rcpt = r->address;
		b.defers[b.ndefer].dsn = r->dsn;
		b.defers[b.ndefer].reason = r->reason;
		b.ndefer++;
		rcpt_log(msg, r, "deferred");
	    }
	}
	if (status != 0)
	    msg_warn("%s: failure notice not sent: %s", msg->id, nz(why));
	qmgr_outcomes_apply(msg, &b);
    } else if (strcmp(job->request, BOUNCE_REQ_DELAY) == 0) {
	if (status == 0) {
	    msg_info("%s: sender delay notification sent", msg->id);
	    if (defer_log_warned(msg->id, &err) < 0)
		msg_warn("%s: defer log: %s", msg->id, err);
	} else {
	    msg_warn("%s: delay notice not sent: %s", msg->id, nz(why));
	}
    } else if (status != 0) {
	msg_warn("%s: success notice not sent: %s", msg->id, nz(why));
    } else {
	msg_info("%s: sender delivery status notification sent", msg->id);
    }
    job_finish(job);
}

/* qmgr_job_failed - the attempt failed as a whole */
void qmgr_job_failed(struct qmgr_job *job, const char *dsn, const char *reason)
{
    struct qmgr_message *msg = job->msg;
    struct qmgr_outcomes b;
    struct delivery_times t;

    if (msg->dropped || qmgr_message_drop_if_vanished(msg)) {
	job_finish(job);
	return;
    }
    if (job->kind == QMGR_JOB_BOUNCE) {
	bounce_done(job, -1, reason);
	return;
    }
    memset(&b, 0, sizeof(b));
    job_times(job, &t);
    for (size_t i = 0; i < job->count; i++)
	qmgr_outcome(msg, job->rcpt_idx[i], 'd', dsn, reason, "none", &t, &b);
    qmgr_outcomes_apply(msg, &b);
    job_finish(job);
}

/* job_envelope - the envelope group of a job's message */
static void job_envelope(const struct qmgr_job *job, struct proto_envelope *env, char *qfile,
			 size_t qfile_size)
{
    const struct qmgr_message *msg = job->msg;

    fmt_buf_or_panic(qfile, qfile_size, "active/%s", msg->id);
    env->queue_id = msg->id;
    env->queue_file = qfile;
    env->sender = msg->sender;
    env->arrival_time = (long) msg->arrival;
    env->dsn_envid = nz(msg->dsn_envid);
    env->dsn_ret = nz(msg->dsn_ret);
}

/* job_request - the deliver_request of a job (rcpts allocated) */
static void job_request(const struct qmgr_job *job, struct deliver_request *req, char *qfile,
			size_t qfile_size)
{
    const struct qmgr_message *msg = job->msg;
    struct deliver_rcpt *rcpts = mem_alloc_array(job->count ? job->count : 1, sizeof(*rcpts));

    for (size_t i = 0; i < job->count; i++) {
	const struct qmgr_rcpt *r = msg->rcpts + job->rcpt_idx[i];

	rcpts[i].address = r->address;
	rcpts[i].orig = r->orig;
	rcpts[i].orcpt = r->orcpt;
	rcpts[i].notify = r->notify;
	rcpts[i].offset = r->offset;
    }
    memset(req, 0, sizeof(*req));
    job_envelope(job, &req->env, qfile, qfile_size);
    req->data_offset = msg->data_offset;
    req->data_size = msg->size;
    req->nexthop = nz(job->nexthop);
    req->rcpts = rcpts;
    req->rcpt_count = job->count;
}

/* qmgr_job_encode - the request message of a job */
void qmgr_job_encode(const struct qmgr_job *job, struct str *out)
{
    const struct qmgr_message *msg = job->msg;
    char qfile[64];

    if (job->kind == QMGR_JOB_DELIVER) {
	struct deliver_request req;

	job_request(job, &req, qfile, sizeof(qfile));
	deliver_request_encode(out, &req);
	mem_free(&req.rcpts);
    } else {
	struct bounce_rcpt *rcpts = mem_alloc_array(job->count ? job->count : 1, sizeof(*rcpts));
	struct bounce_request req;
	const char *action;

	memset(&req, 0, sizeof(req));
	if (!bounce_type_parse(job->request, &req.type))
	    msg_panic("qmgr_job_encode: bad bounce request \"%s\"", job->request);
	action = req.type == BOUNCE_TYPE_FAILURE ? "failed"
	    : req.type == BOUNCE_TYPE_DELAY ? "delayed" : "delivered";
	job_envelope(job, &req.env, qfile, sizeof(qfile));
	for (size_t i = 0; i < job->count; i++) {
	    const struct qmgr_rcpt *r = msg->rcpts + job->rcpt_idx[i];

	    rcpts[i].address = r->address;
	    rcpts[i].orig = r->orig;
	    rcpts[i].orcpt = r->orcpt;
	    rcpts[i].dsn = r->dsn;
	    rcpts[i].action = req.type == BOUNCE_TYPE_SUCCESS ? r->success_action : action;
	    rcpts[i].reason = nz(r->reason);
	    rcpts[i].relay = nz(r->relay);
	}
	req.rcpts = rcpts;
	req.rcpt_count = job->count;
	bounce_request_encode(out, &req);
	mem_free(&rcpts);
    }
}

/* qmgr_job_reply - apply an agent's (or bounce's) answer */
int qmgr_job_reply(struct qmgr_job *job, const struct ipc_list *reply, const char **error_r)
{
    struct qmgr_message *msg = job->msg;

    if (msg->dropped) {
	job_finish(job);		/* the operator deleted it: no word more */
	return 0;
    }
    if (job->kind == QMGR_JOB_DELIVER) {
	struct deliver_request req;
	struct deliver_reply_status st;
	struct deliver_result *res;
	struct delivery_times t;
	struct qmgr_outcomes b;
	char qfile[64];
	bool all_sent = true;

	job_request(job, &req, qfile, sizeof(qfile));
	res = mem_alloc_array(job->count ? job->count : 1, sizeof(*res));
	if (deliver_reply_decode(reply, &req, res, &st, error_r) < 0) {
	    mem_free(&res);
	    mem_free(&req.rcpts);
	    return -1;
	}
	mem_free(&req.rcpts);
	for (size_t i = 0; i < job->count; i++)
	    all_sent = all_sent && deliver_status_class(res[i].status) == '2';
	/* an agent that could not do its job may not have found the file:
	 * a file deleted behind qmgr's back is not retried */
	if (!all_sent && qmgr_message_drop_if_vanished(msg)) {
	    mem_free(&res);
	    job_finish(job);
	    return 0;
	}
	memset(&b, 0, sizeof(b));
	b.conn_use = st.conn_use;
	b.tls = st.tls;
	job_times(job, &t);
	for (size_t i = 0; i < job->count; i++) {
	    struct qmgr_rcpt *r = msg->rcpts + job->rcpt_idx[i];
	    char class = deliver_status_class(res[i].status);

	    /* RFC 3461 6.2: which success notice, if any, is ours to send */
	    r->success_action = strcmp(res[i].status, RCPT_STAT_RELAYED_DSN) == 0 ? NULL
		: strcmp(res[i].status, RCPT_STAT_RELAYED) == 0 ? "relayed" : "delivered";
	    qmgr_outcome(msg, job->rcpt_idx[i], class == '2' ? 's' : class == '4' ? 'd' : 'b',
			 res[i].dsn, res[i].reason, res[i].relay, &t, &b);
	}
	qmgr_outcomes_apply(msg, &b);
	/* the agent's word about the next hop (not a failed attempt as a
	 * whole: that is no word about the destination) */
	qmgr_transport_feedback(job, strcmp(st.dest_status, DEST_STAT_DEAD) == 0,
				job->count ? res[0].dsn : "4.4.1", st.dest_reason);
	mem_free(&res);
	job_finish(job);
    } else {
	struct bounce_reply rep;

	if (bounce_reply_decode(reply, &rep, error_r) < 0)
	    return -1;
	bounce_done(job, rep.status, rep.reason);
    }
    return 0;
}
