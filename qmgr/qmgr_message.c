/* qmgr_message.c - one message in active/: load and check the queue
 * file (a slice of qmgr_message_recipient_limit recipients at a time),
 * route each recipient into jobs, write the recipients' done marks, and
 * finish the message when its last job is finished (remove it, or defer
 * it with its next retry time as the file's mtime). What an agent's
 * answer means for a recipient is qmgr_job.c's part.
 *
 * A message whose recipients are all done is removed: defer/ID first,
 * then active/ID, without marking anything in the file (a crash before
 * the unlink delivers again: at-least-once). The 'D' marks are written
 * (one pwrite each, one fdatasync per file) only when the file will
 * outlive this pass or a notice is asked for: before bounce is asked for
 * a notice, and before the file moves to deferred/. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "defer_log.h"
#include "deliver_proto.h"
#include "log_delivery.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "resolve.h"

/* qmgr */
#include "qmgr.h"

static struct qmgr_message *messages;
long qmgr_active_count;
static long dropped_count;	/* dropped messages still in memory */

/* A recipient without an original address, ORCPT or NOTIFY points here
 * rather than at a string of its own: three allocations fewer per
 * recipient of every message held in memory (never written to, never
 * freed: rcpt_text_free) */
static char rcpt_none[] = "";

static void message_route(struct qmgr_message *msg);
static void slice_free(struct qmgr_message *msg);
static int slice_read(struct qmgr_message *msg, const char **error_r);

/* ---------------------------------------------------------------- */
/* Loading                                                          */

struct load_ctx {
    struct qmgr_message *msg;
    char *orig, *orcpt, *notify;	/* for the next recipient */
    long nrcpt;
    long group_start;		/* first record of the next recipient's group, or -1 */
    bool full;			/* the slice has its limit of recipients */
};

/* load_visit - one record of the queue file */
static int load_visit(int type, const struct str *data, off_t offset, void *ctx)
{
    struct load_ctx *lc = ctx;
    struct qmgr_message *msg = lc->msg;
    size_t nlen;
    const char *value;

    if (lc->group_start < 0 && (type == QF_REC_ORCPT || type == QF_REC_NOTIFY
				|| type == QF_REC_RCPT || type == QF_REC_DONE
				|| (type == QF_REC_ATTR && data->len > strlen(QATTR_RCPT_ORIG)
				    && strncmp(data->data, QATTR_RCPT_ORIG "=",
					       strlen(QATTR_RCPT_ORIG) + 1) == 0)))
	lc->group_start = (long) offset;
    switch (type) {
    case QF_REC_TIME:
	msg->arrival = strtod(str_cstr(data), NULL);
	break;
    case QF_REC_SENDER:
	msg->sender = mem_strdup(str_cstr(data));
	break;
    case QF_REC_ATTR:
	if (!qf_attr_split(data->data, data->len, &nlen, &value))
	    break;
	if (nlen == strlen(QATTR_DSN_ENVID) && strncmp(data->data, QATTR_DSN_ENVID, nlen) == 0) {
	    mem_free(&msg->dsn_envid);
	    msg->dsn_envid = mem_strdup(value);
	} else if (nlen == strlen(QATTR_DSN_RET) && strncmp(data->data, QATTR_DSN_RET, nlen) == 0) {
	    mem_free(&msg->dsn_ret);
	    msg->dsn_ret = mem_strdup(value);
	} else if (nlen == strlen(QATTR_RCPT_ORIG)
		   && strncmp(data->data, QATTR_RCPT_ORIG, nlen) == 0) {
	    mem_free(&lc->orig);
	    lc->orig = mem_strdup(value);
	}
	break;
    case QF_REC_ORCPT:
	mem_free(&lc->orcpt);
	lc->orcpt = mem_strdup(str_cstr(data));
	break;
    case QF_REC_NOTIFY:
	mem_free(&lc->notify);
	lc->notify = mem_strdup(str_cstr(data));
	break;
    case QF_REC_RCPT: {
	struct qmgr_rcpt *r;

	if (lc->full || msg->rcpt_count >= (size_t) var_qmgr_message_recipient_limit) {
	    /* the slice is full: the rest is read when it is done */
	    if (!lc->full)
		msg->rcpt_next = lc->group_start;
	    lc->full = true;
	    mem_free(&lc->orig);
	    mem_free(&lc->orcpt);
	    mem_free(&lc->notify);
	    lc->group_start = -1;
	    lc->nrcpt++;
	    break;
	}
	if (msg->rcpt_count == msg->rcpt_cap) {
	    /* most messages have one recipient: room for one first (a
	     * backlog of thousands of messages is held in memory) */
	    msg->rcpt_cap = msg->rcpt_cap ? msg->rcpt_cap * 2 : 1;
	    msg->rcpts = mem_realloc(msg->rcpts, mem_size_mul(msg->rcpt_cap, sizeof(*msg->rcpts)));
	}
	r = msg->rcpts + msg->rcpt_count++;
	memset(r, 0, sizeof(*r));
	r->address = mem_strdup(str_cstr(data));
	r->orig = lc->orig ? lc->orig : rcpt_none;
	r->orcpt = lc->orcpt ? lc->orcpt : rcpt_none;
	r->notify = lc->notify ? lc->notify : rcpt_none;
	lc->orig = lc->orcpt = lc->notify = NULL;
	r->notify_flags = qmgr_notify_flags(r->notify);
	r->success_action = "delivered";
	r->offset = (long) offset;
	r->state = QMGR_RCPT_TODO;
	lc->nrcpt++;
	lc->group_start = -1;
	break;
    }
    case QF_REC_DONE:
	mem_free(&lc->orig);
	mem_free(&lc->orcpt);
	mem_free(&lc->notify);
	lc->nrcpt++;
	lc->group_start = -1;
	break;
    case QF_REC_XEND:
	msg->trailer_offset = (long) offset + QF_HEADER_SIZE;
	break;
    case QF_REC_MESSAGE:
	msg->data_offset = (long) offset;
	break;
    case QF_REC_LINE:
	msg->size += (long) data->len + 1;
	break;
    case QF_REC_CONT:
	msg->size += (long) data->len;
	break;
    }
    return 0;
}

/* message_free - forget a message (its files are handled by the caller) */
static void message_free(struct qmgr_message *msg)
{
    if (msg->prev)
	msg->prev->next = msg->next;
    else if (messages == msg)
	messages = msg->next;
    if (msg->next)
	msg->next->prev = msg->prev;
    slice_free(msg);
    mem_free(&msg->rcpts);
    mem_free(&msg->sender);
    mem_free(&msg->dsn_envid);
    mem_free(&msg->dsn_ret);
    mem_free(&msg);
    qmgr_active_count--;
    if (qmgr_scan_blocked())
	qmgr_kick_scan();
}

/* message_path - "active/ID" */
static void message_path(char *buf, size_t size, const struct qmgr_message *msg)
{
    fmt_buf_or_panic(buf, size, "active/%s", msg->id);
}

/* ---------------------------------------------------------------- */
/* Dropping: the operator deleted the file, or it vanished          */

/* message_find - the message in memory with this ID (not a dropped one
 * unless dropped is true), or NULL; a linear search, for the rare
 * operator request */
static struct qmgr_message *message_find(const char *id, bool dropped)
{
    for (struct qmgr_message *m = messages; m; m = m->next)
	if (m->dropped == dropped && strcmp(m->id, id) == 0)
	    return m;
    return NULL;
}

/* qmgr_message_busy - a dropped message with this ID is still here */
bool qmgr_message_busy(const char *id)
{
    return dropped_count > 0 && message_find(id, true) != NULL;
}

/* file_nowhere - the ID is in no queue directory: it was deleted */
static bool file_nowhere(const char *id)
{
    static const char *const dirs[] = {"active", "incoming", "deferred", "hold", "corrupt"};
    char path[64];
    struct stat st;

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
	fmt_buf_or_panic(path, sizeof(path), "%s/%s", dirs[i], id);
	if (lstat(path, &st) == 0 || errno != ENOENT)
	    return false;
    }
    return true;
}

/* active_file_gone - has active/ID vanished? */
static bool active_file_gone(const struct qmgr_message *msg)
{
    char path[64];
    struct stat st;

    message_path(path, sizeof(path), msg);
    return lstat(path, &st) < 0 && errno == ENOENT;
}

/* message_drop - forget a message whose queue file left active/ behind
 * qmgr's back: told (the operator) or found out (vanished). Its jobs
 * are finished without a word (answers in flight are ignored, queued
 * jobs are never sent), nothing more is written for it, and when the
 * file is in no queue directory its defer/ and bounce/ logs go too.
 * "ID: removed" once (after a warning if nobody told us). */
static void message_drop(struct qmgr_message *msg, bool told)
{
    char path[64];

    if (msg->dropped)
	return;
    msg->dropped = true;
    msg->file_gone = true;
    dropped_count++;
    if (!file_nowhere(msg->id)) {
	msg_info("%s: moved out of active/ by the operator; dropped from the active queue",
		 msg->id);
	return;
    }
    if (fmt_try_buf(path, sizeof(path), "%s/%s", DEFER_LOG_DIR, msg->id))
	qmgr_remove_file(path);
    if (fmt_try_buf(path, sizeof(path), "bounce/%s", msg->id))
	qmgr_remove_file(path);
    if (!told)
	msg_warn("%s: queue file vanished from active/: taken as deleted", msg->id);
    log_queue_removed(msg->id);
}

/* message_forget - free a message that is done after a drop */
static void message_forget(struct qmgr_message *msg)
{
    if (!msg->dropped)
	message_drop(msg, false);
    dropped_count--;
    message_free(msg);
}

/* qmgr_message_gone - "D<ID>": the operator deleted active/ID */
void qmgr_message_gone(const char *id)
{
    struct qmgr_message *msg = message_find(id, false);

    if (msg == NULL)
	return;				/* not in memory: nothing to forget */
    if (!active_file_gone(msg)) {
	msg_info("%s: told that active/%s is gone, but it is there: ignored", id, id);
	return;
    }
    message_drop(msg, true);
    if (msg->refs == 0)
	message_forget(msg);
}

/* qmgr_message_drop_if_vanished - an attempt failed: if active/ID has
 * vanished (deleted behind qmgr's back) the message is dropped; true
 * then */
bool qmgr_message_drop_if_vanished(struct qmgr_message *msg)
{
    if (!active_file_gone(msg))
	return false;
    message_drop(msg, false);
    return true;
}

/* ---------------------------------------------------------------- */
/* Done marks                                                       */

/* qmgr_message_flush_marks - write the waiting 'D' marks: one pwrite
 * each, one fdatasync for the file. Needed only when the file outlives this pass
 * (or a notice is asked for); a lost mark only repeats a delivery. */
void qmgr_message_flush_marks(struct qmgr_message *msg)
{
    char path[64];
    const char *err;
    struct stat st;
    bool corrupt;
    int fd;

    if (msg->marks_pending == 0 || msg->file_gone)
	return;
    message_path(path, sizeof(path), msg);
    if ((fd = qmgr_open_queue_file("active", msg->id, O_RDWR, &st, &corrupt)) < 0) {
	if (errno == ENOENT || corrupt)
	    msg->file_gone = true;
	if (!corrupt)
	    msg_warn("%s: open %s to mark recipients done: %m", msg->id, path);
	return;
    }
    for (size_t i = 0; i < msg->rcpt_count && msg->marks_pending > 0; i++) {
	struct qmgr_rcpt *r = msg->rcpts + i;

	if (!r->mark_pending)
	    continue;
	r->mark_pending = false;
	msg->marks_pending--;
	if (qf_mark_done_nosync(fd, (off_t) r->offset, &err) < 0)
	    msg_warn("%s: %s", msg->id, err);
    }
    if (fdatasync(fd) < 0)
	msg_warn("%s: fdatasync %s: %m", msg->id, path);
    close(fd);
}

/* ---------------------------------------------------------------- */
/* Finishing                                                        */

/* message_remove - every recipient is done: the defer log and the queue
 * file go (in that order, by qmgr_remove.c's thread: nobody waits for
 * it, and a lost removal only means a duplicate after a crash) */
static void message_remove(struct qmgr_message *msg)
{
    char path[64];

    if (fmt_try_buf(path, sizeof(path), "%s/%s", DEFER_LOG_DIR, msg->id))
	qmgr_remove_file(path);
    message_path(path, sizeof(path), msg);
    qmgr_remove_file(path);
    log_queue_removed(msg->id);
    message_free(msg);
}

/* message_delay_warning - send the one delay notice if it is due; true
 * if a notice job was queued (the message waits for it) */
static bool message_delay_warning(struct qmgr_message *msg, double now)
{
    size_t *idx, n = 0;
    const char *err;
    bool warned;

    if (msg->warn_checked || msg->expired
	|| !qmgr_delay_warning_due(now, msg->arrival, var_delay_warning_time))
	return false;
    msg->warn_checked = true;
    if (defer_log_read(msg->id, NULL, NULL, &warned, &err) < 0) {
	msg_warn("%s: defer log: %s", msg->id, err);
	return false;
    }
    if (warned)
	return false;
    idx = mem_alloc_array(msg->rcpt_count ? msg->rcpt_count : 1, sizeof(*idx));
    for (size_t i = 0; i < msg->rcpt_count; i++)
	if (msg->rcpts[i].state == QMGR_RCPT_DEFERRED
	    && (msg->rcpts[i].notify_flags & QMGR_NOTIFY_DELAY))
	    idx[n++] = i;
    if (n > 0)
	qmgr_message_flush_marks(msg);	/* the file outlives this pass */
    msg->refs++;			/* keep msg while queueing */
    qmgr_job_notice(msg, BOUNCE_REQ_DELAY, idx, n);
    msg->refs--;
    mem_free(&idx);
    return n > 0;
}

/* message_defer - some recipients wait: deferred/ with mtime = next try */
static void message_defer(struct qmgr_message *msg, double now)
{
    char from[64], to[64];
    struct timeval tv[2];
    long delay = qmgr_backoff(now, msg->arrival, var_minimal_backoff_time,
			      var_maximal_backoff_time);

    message_path(from, sizeof(from), msg);
    fmt_buf_or_panic(to, sizeof(to), "deferred/%s", msg->id);
    tv[0].tv_sec = (time_t) now;
    tv[0].tv_usec = 0;
    tv[1].tv_sec = (time_t) now + delay;
    tv[1].tv_usec = 0;
    if (utimes(from, tv) < 0 && errno != ENOENT)
	msg_warn("%s: set retry time on %s: %m", msg->id, from);
    if (rename(from, to) < 0) {
	if (errno == ENOENT) {
	    message_forget(msg);	/* deleted behind our back */
	    return;
	}
	msg_warn("%s: move %s to %s: %m", msg->id, from, to);
    } else if (msg_verbose)
	msg_info("%s: deferred, next attempt in %lds", msg->id, delay);
    message_free(msg);
}

/* message_next_slice - the recipients in memory are finished and the
 * file has more: make this slice's outcomes durable (its 'D' marks; a
 * deferred recipient stays 'R' and is remembered only as "some were
 * deferred"), forget it, read the next one and route it. true if jobs
 * now hold the message (message_done is called again when they are
 * done); false if the caller goes on (all of the new slice finished at
 * once, or the message was forgotten: *gone). */
static bool message_next_slice(struct qmgr_message *msg, bool slice_deferred, bool *gone)
{
    const char *err;

    *gone = false;
    qmgr_message_flush_marks(msg);
    if (msg->file_gone)
	return false;
    msg->some_deferred = msg->some_deferred || slice_deferred;
    slice_free(msg);
    if (slice_read(msg, &err) < 0) {
	char why[300], id[QUEUE_ID_SIZE];

	if (msg->file_gone)
	    return false;		/* the caller forgets it */
	/* damaged since it was loaded: set aside, like at the load */
	fmt_buf_cut(why, sizeof(why), "%s", err);
	str_copy_out_or_panic(id, sizeof(id), msg->id);
	*gone = true;
	message_free(msg);
	qmgr_move_corrupt("active", id, why);
	return false;
    }
    msg->refs++;			/* held while routing */
    message_route(msg);
    return --msg->refs > 0;
}

/* message_done - no job of the message is left */
static void message_done(struct qmgr_message *msg)
{
    double now = qmgr_now();
    bool deferred;

    for (;;) {
	bool slice_deferred = false, gone;

	if (msg->file_gone) {
	    message_forget(msg);
	    return;
	}
	for (size_t i = 0; i < msg->rcpt_count; i++) {
	    if (msg->rcpts[i].state == QMGR_RCPT_DEFERRED)
		slice_deferred = true;
	    else if (msg->rcpts[i].state != QMGR_RCPT_DONE)
		msg_panic("%s: recipient %zu in state %d without a job", msg->id, i,
			  (int) msg->rcpts[i].state);
	}
	deferred = slice_deferred || msg->some_deferred;
	if (msg->rcpt_next == 0)
	    break;
	/* a delay notice names the deferred recipients in memory: ask for
	 * it before they are forgotten (once per pass, see warn_checked) */
	if (slice_deferred && message_delay_warning(msg, now))
	    return;
	if (message_next_slice(msg, slice_deferred, &gone) || gone)
	    return;
    }
    if (!deferred) {
	message_remove(msg);		/* no marks needed: see qmgr_message_flush_marks */
	return;
    }
    qmgr_message_flush_marks(msg);	/* the file outlives this pass */
    if (msg->file_gone) {
	message_forget(msg);
	return;
    }
    if (message_delay_warning(msg, now))
	return;
    message_defer(msg, now);
}

/* qmgr_message_unref - one job fewer: the last one finishes the message */
void qmgr_message_unref(struct qmgr_message *msg)
{
    if (msg->refs <= 0)
	msg_panic("%s: message reference count %d", msg->id, msg->refs);
    if (--msg->refs == 0)
	message_done(msg);
}

/* ---------------------------------------------------------------- */
/* Routing                                                          */

struct route_group {
    struct qmgr_transport *tr;
    char *key;
    struct qmgr_job *job;
};

/* message_route - put every pending recipient into a job */
static void message_route(struct qmgr_message *msg)
{
    struct route_group *groups = NULL;
    size_t ngroups = 0;
    struct qmgr_outcomes b;
    struct delivery_times t = {msg->arrival, msg->active_time, 0, 0, 0};

    memset(&b, 0, sizeof(b));
    for (size_t i = 0; i < msg->rcpt_count; i++) {
	struct qmgr_rcpt *r = msg->rcpts + i;
	struct resolve_result res;
	struct qmgr_transport *tr;
	const char *err, *key;
	struct route_group *g = NULL;

	if (r->state != QMGR_RCPT_TODO)
	    continue;
	t.finish = qmgr_now();
	if (qmgr_resolve(r->address, &res, &err) < 0) {
	    char why[512];

	    fmt_buf_cut(why, sizeof(why), "address resolver failure: %s", err);
	    qmgr_outcome(msg, i, 'd', "4.3.0", why, "none", &t, &b);
	    continue;
	}
	if (strcmp(res.transport, "error") == 0) {
	    char dsn[16];
	    const char *reason;

	    resolve_error_text(res.nexthop, dsn, sizeof(dsn), &reason);
	    qmgr_outcome(msg, i, 'b', dsn, reason, "none", &t, &b);
	    continue;
	}
	if (strcmp(res.transport, "discard") == 0) {
	    char reason[300];

	    /* "discard:TEXT": done as delivered, no agent (Postfix's discard) */
	    fmt_buf_cut(reason, sizeof(reason), "discarded%s%s", *res.nexthop ? ": " : "",
			res.nexthop);
	    qmgr_outcome(msg, i, 's', "2.0.0", reason, "none", &t, &b);
	    continue;
	}
	if (!qmgr_transport_name_valid(res.transport)) {
	    msg_warn("%s: bad transport name \"%.64s\" for %s", msg->id, res.transport, r->address);
	    qmgr_outcome(msg, i, 'd', "4.3.5", "mail transport unavailable (bad transport name)",
		    "none", &t, &b);
	    continue;
	}
	tr = qmgr_transport_find(res.transport);
	key = tr->rcpt_limit == 1 ? r->address : res.nexthop;
	for (size_t k = 0; k < ngroups; k++) {
	    if (groups[k].tr == tr && strcmp(groups[k].key, key) == 0) {
		g = groups + k;
		break;
	    }
	}
	if (g == NULL) {
	    groups = mem_realloc(groups, mem_size_mul(ngroups + 1, sizeof(*groups)));
	    g = groups + ngroups++;
	    g->tr = tr;
	    g->key = mem_strdup(key);
	    g->job = NULL;
	}
	if (g->job == NULL) {
	    g->job = qmgr_job_new(QMGR_JOB_DELIVER, msg);
	    g->job->nexthop = mem_strdup(res.nexthop);
	}
	r->state = QMGR_RCPT_BUSY;
	qmgr_job_add_rcpt(g->job, i);
	if (g->job->count >= (size_t) tr->rcpt_limit) {
	    qmgr_transport_enqueue(tr, g->key, g->job);
	    g->job = NULL;
	}
    }
    for (size_t k = 0; k < ngroups; k++) {
	if (groups[k].job)
	    qmgr_transport_enqueue(groups[k].tr, groups[k].key, groups[k].job);
	mem_free(&groups[k].key);
    }
    mem_free(&groups);
    qmgr_outcomes_apply(msg, &b);
}

/* The queue file is read with large reads and no polls: the first
 * QMGR_LOAD_CHUNK bytes (a whole file, usually) with one read(2) into a
 * buffer that the stream's I/O layer hands out, the rest (big messages)
 * by plain reads of the file. */
#define QMGR_LOAD_CHUNK	65536

struct load_source {
    int fd;
    char *buf;
    size_t len;			/* bytes in buf */
    size_t pos;			/* handed out */
    bool at_end;		/* buf holds the whole file */
};

/* load_read - the next bytes of the file; 0 at its end */
static ssize_t load_read(void *ctx, void *out, size_t len)
{
    struct load_source *src = ctx;
    size_t n;

    if (src->pos == src->len) {
	if (src->at_end)
	    return 0;
	return read(src->fd, out, len);
    }
    n = src->len - src->pos < len ? src->len - src->pos : len;
    memcpy(out, src->buf + src->pos, n);
    src->pos += n;
    return (ssize_t) n;
}

/* load_write - never used: the load stream is read-only */
static ssize_t load_write(void *ctx, const void *buf, size_t len)
{
    (void) ctx;
    (void) buf;
    (void) len;
    errno = EBADF;
    return -1;
}

/* load_pending - never poll: a regular file (or the buffer) is ready */
static size_t load_pending(void *ctx)
{
    (void) ctx;
    return 1;
}

static const struct stream_io load_io = {load_read, load_write, load_pending, NULL};

/* One stream serves every load: its I/O layer reads load_src. */
static struct stream *load_stream;
static struct load_source load_src;

/* load_stream_reset - drop what a load left in the stream (a scan that
 * stopped early) and its sticky end-of-file, for the next load */
static void load_stream_reset(void)
{
    char junk[4096];

    load_src.pos = load_src.len;
    load_src.at_end = true;
    while (stream_read(load_stream, junk, sizeof(junk)) > 0)
	 /* void */ ;
    stream_clear_error(load_stream);
}

/* load_fill - the first chunk of the file */
static void load_fill(struct load_source *src, off_t size)
{
    size_t want = size >= 0 && (size_t) size < QMGR_LOAD_CHUNK ? (size_t) size + 1
	: QMGR_LOAD_CHUNK;
    ssize_t n;

    while ((n = read(src->fd, src->buf, want)) < 0 && errno == EINTR)
	 /* void */ ;
    if (n < 0) {
	src->len = src->pos = 0;	/* load_read fails again: qf_scan says why */
	src->at_end = false;
	return;
    }
    src->len = (size_t) n;
    src->pos = 0;
    src->at_end = (size_t) n < want;	/* a short read of a file: its end */
}

/* rcpt_text_free - free an optional recipient text (not rcpt_none) */
static void rcpt_text_free(char **text)
{
    if (*text != rcpt_none)
	mem_free(text);
    *text = NULL;
}

/* slice_free - forget the recipients of a finished slice */
static void slice_free(struct qmgr_message *msg)
{
    for (size_t i = 0; i < msg->rcpt_count; i++) {
	struct qmgr_rcpt *r = msg->rcpts + i;

	mem_free(&r->address);
	rcpt_text_free(&r->orig);
	rcpt_text_free(&r->orcpt);
	rcpt_text_free(&r->notify);
	mem_free(&r->reason);
	mem_free(&r->relay);
	mem_free(&r->tls);
    }
    msg->rcpt_count = 0;
}

/* slice_read - the next qmgr_message_recipient_limit recipients, from
 * msg->rcpt_next on (the file is authoritative: the earlier slices'
 * marks are on disk, and every recipient after rcpt_next is still
 * untouched). Reads only envelope records; at the content it jumps to
 * the trailer. 0, or -1 with *error_r (the file is gone or damaged). */
static int slice_read(struct qmgr_message *msg, const char **error_r)
{
    static char error[256];
    struct load_ctx lc;
    struct qf_reader rd;
    struct stream *s;
    struct str *data;
    struct stat st;
    off_t at = (off_t) msg->rcpt_next;
    bool corrupt;
    int fd, type, rc = 0;

    *error_r = error;
    if ((fd = qmgr_open_queue_file("active", msg->id, O_RDONLY, &st, &corrupt)) < 0) {
	if (errno == ENOENT || corrupt)
	    msg->file_gone = true;
	fmt_buf_cut(error, sizeof(error), "open active/%s: %s", msg->id,
		       corrupt ? "not a regular file" : strerror(errno));
	return -1;
    }
    memset(&lc, 0, sizeof(lc));
    lc.msg = msg;
    lc.group_start = -1;
    msg->rcpt_next = 0;
    data = str_new(QF_RECORD_MAX + 1);
    for (bool again = true; again;) {
	int sfd;

	/* a stream of its own per position: no read-ahead of the last */
	again = false;
	if (lseek(fd, at, SEEK_SET) < 0 || (sfd = dup(fd)) < 0) {
	    fmt_buf_cut(error, sizeof(error), "seek active/%s: %s", msg->id, strerror(errno));
	    rc = -1;
	    break;
	}
	s = stream_open(sfd);
	qf_reader_init(&rd, s, at);
	while (!lc.full) {
	    const char *err;
	    off_t off;
	    int got = qf_get(&rd, &type, data, QF_RECORD_MAX, "AONRDMLCXE", &off, &err);

	    if (got <= 0) {
		fmt_buf_cut(error, sizeof(error), "active/%s: %s", msg->id,
			       got == 0 ? "no end record" : err);
		rc = -1;
		break;
	    }
	    if (type == QF_REC_END)
		break;
	    if (type == QF_REC_MESSAGE) {
		/* the content: go on in the trailer (recipients may be there) */
		if (msg->trailer_offset > 0 && msg->trailer_offset > (long) off) {
		    at = (off_t) msg->trailer_offset;
		    again = true;
		}
		break;
	    }
	    if (type == QF_REC_LINE || type == QF_REC_CONT || type == QF_REC_XEND)
		continue;		/* not reached: the content is jumped over */
	    (void) load_visit(type, data, off, &lc);
	}
	(void) stream_close(&s);
	if (rc < 0)
	    break;
    }
    close(fd);
    mem_free(&lc.orig);
    mem_free(&lc.orcpt);
    mem_free(&lc.notify);
    str_free(&data);
    return rc;
}

/* qmgr_message_load - take active/ID into memory and start delivery */
void qmgr_message_load(const char *id)
{
    struct qmgr_message *msg;
    struct load_ctx lc;
    struct qf_reader rd;
    struct stat st;
    char buf[QMGR_LOAD_CHUNK];
    const char *err;
    bool corrupt;
    int fd, rc;

    if ((fd = qmgr_open_queue_file("active", id, O_RDONLY, &st, &corrupt)) < 0) {
	if (errno != ENOENT && !corrupt)
	    msg_warn("%s: open active/%s: %m", id, id);
	return;
    }
    msg = mem_zalloc(sizeof(*msg));
    str_copy_out_or_panic(msg->id, sizeof(msg->id), id);
    memset(&lc, 0, sizeof(lc));
    lc.msg = msg;
    lc.group_start = -1;
    if (load_stream == NULL) {
	load_stream = stream_open(fd);	/* its fd is never used */
	stream_set_io(load_stream, &load_io, &load_src);
    }
    load_src.fd = fd;
    load_src.buf = buf;
    load_fill(&load_src, st.st_size);
    if (load_src.at_end) {
	/* the whole file is in buf: scan it there, no stream call per record */
	rc = qf_scan_mem(buf, load_src.len, QF_RECORD_MAX, load_visit, &lc, &err);
    } else {
	qf_reader_init(&rd, load_stream, 0);
	rc = qf_scan(&rd, QF_RECORD_MAX, load_visit, &lc, &err);
	load_stream_reset();
    }
    load_src.fd = -1;
    load_src.buf = NULL;
    close(fd);
    mem_free(&lc.orig);
    mem_free(&lc.orcpt);
    mem_free(&lc.notify);
    /* link it in so that message_free can unlink it */
    msg->next = messages;
    if (messages)
	messages->prev = msg;
    messages = msg;
    qmgr_active_count++;
    if (rc < 0) {
	char why[512];

	fmt_buf_cut(why, sizeof(why), "%s", err);
	message_free(msg);
	qmgr_move_corrupt("active", id, why);
	return;
    }
    if (msg->sender == NULL)
	msg->sender = mem_strdup("");
    msg->active_time = qmgr_now();
    if (msg->rcpt_count == 0) {
	/* every recipient was done: a crash came before the unlink */
	message_remove(msg);
	return;
    }
    log_queue_active(msg->id, msg->sender, msg->size, lc.nrcpt);
    msg->expired = qmgr_expired(msg->active_time, msg->arrival, *msg->sender == 0,
				var_maximal_queue_lifetime, var_bounce_queue_lifetime);
    msg->refs++;			/* held while routing */
    message_route(msg);
    qmgr_message_unref(msg);
}
