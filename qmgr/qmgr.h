/* qmgr.h - the queue manager's shared structures and module interfaces.
 *
 * Modules (each with its prefix):
 *   main.c            main(): the server_spec
 *   qmgr_daemon.c     start-up, triggers, timers, kicks
 *   qmgr_scan.c       directory scans and moves between queue states
 *   qmgr_message.c    loading a queue file (in recipient slices),
 *                     routing, done marks, finishing a message (remove
 *                     or defer)
 *   qmgr_job.c        jobs (one request to an agent or to bounce): the
 *                     request, the reply, each recipient's outcome
 *   qmgr_transport.c  transports, destinations, job queues, concurrency
 *   qmgr_conn.c       non-blocking connections to delivery agents and to
 *                     bounce (handshake, request, reply)
 *   qmgr_policy.c     pure decisions: backoff, NOTIFY flags, lifetimes,
 *                     trigger parsing
 *   qmgr_resolve.c    routing (resolve_address) with a per-domain cache
 *
 * Everything runs in one thread on the skeleton's event loop (event.h);
 * nothing blocks on an agent. Work that follows a state change (start
 * deliveries, scan for more messages) is requested with qmgr_kick_*()
 * and runs from a zero-delay timer, or for deliveries already at the end
 * of the trigger or reply callback (qmgr_run_pending), so callbacks never
 * recurse into the scheduler. The queue states and commit points are in
 * docs/queue.md. */
#ifndef POSTHORN_QMGR_H
#define POSTHORN_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* base */
#include "event.h"
#include "str.h"

/* mail */
#include "log_delivery.h"
#include "queue_id.h"

/* Recipient states within one pass through active/. */
enum qmgr_rcpt_state {
    QMGR_RCPT_DONE = 0,		/* 'D' in the file (or just marked) */
    QMGR_RCPT_TODO,		/* waiting in a job */
    QMGR_RCPT_BUSY,		/* with an agent */
    QMGR_RCPT_BOUNCING,		/* waiting for bounce to take the notice */
    QMGR_RCPT_DEFERRED,		/* will be retried later */
};

/* NOTIFY flags (RFC 3461); no N record = failure and delay */
#define QMGR_NOTIFY_SUCCESS	(1 << 0)
#define QMGR_NOTIFY_FAILURE	(1 << 1)
#define QMGR_NOTIFY_DELAY	(1 << 2)
#define QMGR_NOTIFY_NEVER	(1 << 3)
#define QMGR_NOTIFY_DEFAULT	(QMGR_NOTIFY_FAILURE | QMGR_NOTIFY_DELAY)

struct qmgr_rcpt {
    char *address;
    char *orig;			/* A rcpt_orig before the R, or "" */
    char *orcpt;		/* O record, or "" */
    char *notify;		/* N record text, or "" */
    unsigned notify_flags;
    long offset;		/* of its R record */
    enum qmgr_rcpt_state state;
    bool mark_pending;		/* DONE, but its 'D' is not on disk yet */
    /* the latest outcome, for logs and notices */
    char dsn[16];
    char *reason;
    char *relay;
    bool expired;		/* a deferral turned into a bounce */
    long conn_use;		/* the agent's session count (log) */
    char *tls;			/* the agent's session's TLS (log), or NULL */
    const char *success_action;	/* a success notice's action: "delivered",
				 * "relayed", or NULL: the next MTA took
				 * the DSN request and reports itself */
    struct delivery_times times;
};

struct qmgr_message {
    char id[QUEUE_ID_SIZE];
    char *sender;
    double arrival;		/* T record */
    double active_time;		/* taken into active/ (this pass) */
    long data_offset;		/* M record */
    long rcpt_next;		/* where the recipients not yet read begin
				 * (the first record of the next one's group;
				 * 0: all read): qmgr holds at most
				 * qmgr_message_recipient_limit at a time */
    long trailer_offset;	/* the record after X, or 0 */
    bool some_deferred;		/* a recipient of an earlier slice waits */
    long size;			/* content bytes, LF line ends */
    char *dsn_envid;
    char *dsn_ret;
    struct qmgr_rcpt *rcpts;
    size_t rcpt_count;
    size_t rcpt_cap;
    int refs;			/* jobs not yet finished */
    size_t marks_pending;	/* recipients with mark_pending */
    bool expired;		/* older than its queue lifetime */
    bool expired_logged;
    bool warn_checked;		/* delay warning considered this pass */
    bool file_gone;		/* active/ID vanished under us */
    bool dropped;		/* deleted (or moved away) by the operator:
				 * jobs are finished without a word, no log
				 * or notice is written for it any more */
    struct qmgr_message *prev, *next;
};

/* A unit of work for one connection: deliver some recipients of one
 * message, or ask bounce for one notice. */
enum qmgr_job_kind { QMGR_JOB_DELIVER, QMGR_JOB_BOUNCE };

struct qmgr_dest;
struct qmgr_job {
    enum qmgr_job_kind kind;
    struct qmgr_message *msg;
    struct qmgr_dest *dest;
    char *nexthop;		/* deliver */
    const char *request;	/* bounce: BOUNCE_REQ_* */
    size_t *rcpt_idx;		/* indexes into msg->rcpts */
    size_t count;
    size_t cap;
    double queued;		/* when it entered its queue */
    double conn_start;		/* connection set-up began (0: reused) */
    double xmit_start;		/* request sent */
    struct qmgr_job *next;
};

struct qmgr_conn;
struct qmgr_transport {
    char name[64];
    bool is_bounce;
    int dest_limit;		/* parallel deliveries per destination */
    int init_window;		/* a new destination's window (<= dest_limit) */
    int rcpt_limit;		/* recipients per request */
    int conn_limit;		/* connections per transport */
    int conn_count;		/* open or opening */
    int connecting;		/* awaiting handshake */
    struct qmgr_conn *idle;	/* idle connections (a stack) */
    struct qmgr_conn *opening;	/* connections awaiting the handshake,
				 * newest first */
    struct qmgr_dest *ready_head, *ready_tail;	/* dests with work, below limit */
    struct qmgr_dest **table;	/* destinations by key */
    size_t table_size;
    bool retry_armed;		/* a later dispatch is scheduled */
    struct qmgr_transport *next;
};

/* A destination: its job queue and its feedback state
 * (docs/qmgr-scheduling.md). window is how many deliveries may run at
 * once (1..dest_limit): it grows by one after a window's worth of "ok"
 * replies in a row (credit) and shrinks by one on each "dead" one; after
 * fail_streak "dead" replies at window 1 reach the cohort limit, the
 * destination is dead until dead_timer fires (minimal_backoff_time) or
 * a flush: its jobs are deferred without an agent. An idle destination
 * whose window or streak is not the initial one lingers for
 * minimal_backoff_time before it is forgotten, so that the feedback of
 * one burst carries over to the next. */
struct qmgr_dest {
    char *key;
    struct qmgr_transport *tr;
    int busy;
    int window;
    int credit;			/* "ok" replies since the window last grew */
    int fail_streak;		/* "dead" replies in a row */
    bool dead;
    char dead_dsn[16];		/* for the jobs deferred while dead */
    char *dead_reason;
    event_timer_id dead_timer;
    double dead_until;		/* when the dead time is over */
    double revive_slack;	/* mail coming back this much earlier
				 * (whole-second retry times) revives it */
    event_timer_id linger_timer;	/* idle, but its feedback is kept */
    struct qmgr_job *head, *tail;
    bool ready;
    struct qmgr_dest *ready_next;
    struct qmgr_dest *hash_next;
};

/* qmgr_daemon.c */
extern long qmgr_active_count;	/* messages in memory */
void qmgr_pre_init(int argc, char **argv);
void qmgr_post_init(int argc, char **argv);
void qmgr_trigger(const char *buf, size_t len);
bool qmgr_drain(void);

/* qmgr_remove.c: removals of finished files by a helper thread */
void qmgr_remove_init(void);
void qmgr_remove_file(const char *path);	/* relative to queue_directory */
void qmgr_remove_finish(void);			/* normal exit: wait for it */
void qmgr_remove_terminate(void);		/* SIGTERM: async-signal-safe */
void qmgr_remove_hold(int hold);		/* tests: the thread waits */
void qmgr_kick_dispatch(void);	/* start deliveries soon */
void qmgr_kick_scan(void);	/* look for more messages soon */
void qmgr_run_pending(void);	/* run kicked work now (end of a callback) */
double qmgr_now(void);
int qmgr_timer_ms(long seconds);	/* seconds to an event timer delay */

/* qmgr_scan.c */
void qmgr_scan_recover(void);	/* active/ at start-up */
void qmgr_scan_incoming(void);
void qmgr_scan_take_incoming(const char *id);	/* incoming/ID, no scan */
void qmgr_scan_deferred(bool all);
bool qmgr_scan_blocked(void);	/* a scan stopped at the active limit */
void qmgr_move_corrupt(const char *queue, const char *id, const char *why);
struct stat;
int qmgr_open_queue_file(const char *queue, const char *id, int flags, struct stat *st,
			 bool *corrupt);

/* qmgr_message.c */
void qmgr_message_load(const char *id);	/* from active/ID */
/* qmgr_message_gone - the trigger "D<ID>": the operator deleted
 * active/ID (or moved it away); drop the message if the file is gone */
void qmgr_message_gone(const char *id);
/* qmgr_message_busy - a dropped message with this ID still waits for
 * answers in flight: do not load the ID again yet */
bool qmgr_message_busy(const char *id);
/* qmgr_message_unref - one job fewer; the last finishes the message */
void qmgr_message_unref(struct qmgr_message *msg);
/* qmgr_message_flush_marks - write the waiting 'D' marks (one fdatasync) */
void qmgr_message_flush_marks(struct qmgr_message *msg);
/* qmgr_message_drop_if_vanished - active/ID is gone: drop the message */
bool qmgr_message_drop_if_vanished(struct qmgr_message *msg);

/* qmgr_job.c */
struct qmgr_job *qmgr_job_new(enum qmgr_job_kind kind, struct qmgr_message *msg);
void qmgr_job_add_rcpt(struct qmgr_job *job, size_t idx);
/* qmgr_job_notice - queue a bounce request (BOUNCE_REQ_*) for some
 * recipients; nothing if n is 0 */
void qmgr_job_notice(struct qmgr_message *msg, const char *request, const size_t *idx, size_t n);
/* qmgr_job_drop - a queued job of a dropped message: finish it unsent */
void qmgr_job_drop(struct qmgr_job *job);
/* qmgr_job_encode - the request message for a job */
void qmgr_job_encode(const struct qmgr_job *job, struct str *out);
/* qmgr_job_reply - apply the agent's reply; on 0 the job is finished
 * and freed; -1 (protocol error) leaves it to the caller */
struct ipc_list;
int qmgr_job_reply(struct qmgr_job *job, const struct ipc_list *reply, const char **error_r);
/* qmgr_job_failed - the attempt failed as a whole (agent unavailable,
 * died, protocol error): defer its recipients; the job is freed */
void qmgr_job_failed(struct qmgr_job *job, const char *dsn, const char *reason);
/* Recipient outcomes known without an agent (routing) or from a reply:
 * qmgr_outcome for each, then qmgr_outcomes_apply once (the defer log,
 * the marks and notices it needs; b is emptied). b starts zeroed. */
struct defer_log_record;
struct qmgr_outcomes {
    size_t *fail;		/* recipients for a failure notice */
    size_t nfail;
    size_t *success;		/* recipients for a success notice */
    size_t nsuccess;
    struct defer_log_record *defers;
    size_t ndefer;
    long conn_use;		/* of the agent's session (reply), else 0 */
    const char *tls;		/* of the agent's session (reply), else NULL */
};
void qmgr_outcome(struct qmgr_message *msg, size_t idx, int what, const char *dsn,
		  const char *reason, const char *relay, const struct delivery_times *t,
		  struct qmgr_outcomes *b);
void qmgr_outcomes_apply(struct qmgr_message *msg, struct qmgr_outcomes *b);

/* qmgr_transport.c */
struct qmgr_transport *qmgr_transport_find(const char *name);
struct qmgr_transport *qmgr_transport_bounce(void);
void qmgr_transport_enqueue(struct qmgr_transport *tr, const char *dest_key, struct qmgr_job *job);
void qmgr_transport_job_finished(struct qmgr_job *job);
void qmgr_transport_dispatch_all(void);
int qmgr_transport_running(void);	/* jobs with an agent now */
bool qmgr_transport_name_valid(const char *name);
/* qmgr_transport_feedback - the agent's word about a finished job's next
 * hop (a reply's dest_status): dead or not, with the dsn and reason for
 * the jobs deferred while it is dead; call before the job finishes */
void qmgr_transport_feedback(struct qmgr_job *job, bool dead, const char *dsn,
			     const char *reason);
/* qmgr_transport_revive_all - a flush: every dead destination is alive */
void qmgr_transport_revive_all(void);
/* qmgr_transport_dest - the destination of key, NULL if none (tests) */
struct qmgr_dest *qmgr_transport_dest(struct qmgr_transport *tr, const char *key);

/* qmgr_conn.c */
enum qmgr_conn_start { QMGR_CONN_OK, QMGR_CONN_BUSY_RETRY, QMGR_CONN_UNAVAILABLE };
enum qmgr_conn_start qmgr_conn_open(struct qmgr_transport *tr, struct qmgr_conn **connp,
				    const char **error_r);
void qmgr_conn_assign(struct qmgr_conn *conn, struct qmgr_job *job);
void qmgr_conn_close(struct qmgr_conn **connp);
void qmgr_conn_make_idle(struct qmgr_conn *conn);
/* qmgr_conn_pick_idle - the idle connection for a job of destination
 * key: one whose last job went there, else the least recently used;
 * NULL if none is idle */
struct qmgr_conn *qmgr_conn_pick_idle(struct qmgr_transport *tr, const char *key);

/* qmgr_resolve.c */
struct resolve_result;
int qmgr_resolve(const char *address, struct resolve_result *result, const char **error_r);

/* qmgr_policy.c */
/* qmgr_trigger_parse - the requests in one read of public/qmgr (a fifo
 * read may hold many): take(kind, id, ctx) for each "I<queue ID>\n"
 * (kind 'I') and "D<queue ID>\n" (kind 'D': the operator deleted
 * active/ID or moved it away); returns
 * QMGR_WANT_SCAN for "I", "W" (master's wake-up), an empty request, or
 * anything that is not a queue ID, and QMGR_WANT_FLUSH too for "F" */
#define QMGR_WANT_SCAN		(1U << 0)
#define QMGR_WANT_FLUSH		(1U << 1)
unsigned qmgr_trigger_parse(const char *buf, size_t len,
			    void (*take)(int kind, const char *id, void *ctx), void *ctx);
unsigned qmgr_notify_flags(const char *notify);
long qmgr_backoff(double now, double arrival, long min_backoff, long max_backoff);
bool qmgr_expired(double now, double arrival, bool null_sender, long lifetime,
		  long bounce_lifetime);
bool qmgr_delay_warning_due(double now, double arrival, long warning_time);

#endif
