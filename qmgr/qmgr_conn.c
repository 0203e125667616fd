/* qmgr_conn.c - non-blocking connections to delivery agents
 * (private/<transport>) and to bounce (private/bounce).
 *
 * A connection is CONNECTING until the agent's handshake arrives, then
 * BUSY with one job or IDLE. Everything is driven by the event loop:
 * requests are written as the socket takes them, replies are collected
 * until ipc_decode_list finds a whole message, so a slow agent holds up
 * only its own job. Idle connections are kept for the next job and
 * closed after qmgr_connection_idle_time. Each connection remembers the
 * destination of its last job: a job goes to an idle connection whose
 * last job had its destination (the agent may still hold that SMTP
 * session open: smtp-client's connection cache), else to the least
 * recently used idle one. Any failure (connect refused,
 * no socket, EOF, a protocol error, a timeout) fails the job at hand,
 * which defers its recipients: mail is never lost to a broken agent. */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* base */
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "mail_proto.h"

/* qmgr */
#include "qmgr.h"

enum conn_state { CONN_CONNECTING, CONN_IDLE, CONN_BUSY };

struct qmgr_conn {
    struct qmgr_transport *tr;
    int fd;
    enum conn_state state;
    struct str out;
    size_t out_pos;
    bool writing;
    struct str in;
    struct qmgr_job *job;
    double opened;
    event_timer_id timer;
    struct qmgr_conn *idle_prev, *idle_next;	/* most recently idle first */
    bool in_idle;
    struct qmgr_conn *open_prev, *open_next;	/* tr->opening, while CONNECTING */
    char *last_key;		/* destination of the last job, or NULL */
};

static void conn_read_cb(int fd, void *ctx);
static void conn_fail(struct qmgr_conn *conn, const char *why);

/* conn_timer_set - (re)arm the one timer of a connection */
static void conn_timer_set(struct qmgr_conn *conn, long seconds, event_timer_fn fn)
{
    if (conn->timer)
	event_timer_cancel(conn->timer);
    conn->timer = event_timer_add(qmgr_timer_ms(seconds), fn, conn);
}

/* conn_timeout - the agent did not answer in time */
static void conn_timeout(void *ctx)
{
    struct qmgr_conn *conn = ctx;

    conn->timer = 0;
    conn_fail(conn, conn->state == CONN_CONNECTING ? "timeout waiting for the handshake"
	      : "timeout waiting for the delivery result");
}

/* conn_idle_timeout - an unused connection is closed */
static void conn_idle_timeout(void *ctx)
{
    struct qmgr_conn *conn = ctx;

    conn->timer = 0;
    qmgr_conn_close(&conn);
}

/* idle_unlink - take conn off its transport's idle list */
static void idle_unlink(struct qmgr_conn *conn)
{
    struct qmgr_transport *tr = conn->tr;

    if (!conn->in_idle)
	return;
    if (conn->idle_prev)
	conn->idle_prev->idle_next = conn->idle_next;
    else
	tr->idle = conn->idle_next;
    if (conn->idle_next)
	conn->idle_next->idle_prev = conn->idle_prev;
    conn->idle_prev = conn->idle_next = NULL;
    conn->in_idle = false;
}

/* opening_link, opening_unlink - the transport's list of connections
 * that wait for an agent's handshake (the first is the newest) */
static void opening_link(struct qmgr_conn *conn)
{
    struct qmgr_transport *tr = conn->tr;

    conn->open_prev = NULL;
    conn->open_next = tr->opening;
    if (tr->opening)
	tr->opening->open_prev = conn;
    tr->opening = conn;
    tr->connecting++;
}

static void opening_unlink(struct qmgr_conn *conn)
{
    struct qmgr_transport *tr = conn->tr;

    if (conn->open_prev)
	conn->open_prev->open_next = conn->open_next;
    else
	tr->opening = conn->open_next;
    if (conn->open_next)
	conn->open_next->open_prev = conn->open_prev;
    conn->open_prev = conn->open_next = NULL;
    tr->connecting--;
}

/* qmgr_conn_open - start a connection to tr's agent */
enum qmgr_conn_start qmgr_conn_open(struct qmgr_transport *tr, struct qmgr_conn **connp,
				    const char **error_r)
{
    static char errbuf[256];
    struct sockaddr_un sun;
    struct qmgr_conn *conn;
    int fd;

    *error_r = errbuf;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (tr->is_bounce)
	str_copy_out_or_panic(sun.sun_path, sizeof(sun.sun_path), BOUNCE_SOCKET);
    else if (!fmt_try_buf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", DELIVER_SOCKET_DIR, tr->name))
	msg_panic("qmgr_conn_open: transport name too long");
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
	fmt_buf_cut(errbuf, sizeof(errbuf), "socket: %s", strerror(errno));
	return QMGR_CONN_BUSY_RETRY;		/* out of descriptors: later */
    }
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
	int err = errno;

	close(fd);
	fmt_buf_cut(errbuf, sizeof(errbuf), "%s", strerror(err));
	return err == EAGAIN || err == EINTR ? QMGR_CONN_BUSY_RETRY : QMGR_CONN_UNAVAILABLE;
    }
    conn = mem_zalloc(sizeof(*conn));
    conn->tr = tr;
    conn->fd = fd;
    conn->state = CONN_CONNECTING;
    conn->opened = qmgr_now();
    str_init(&conn->out, IPC_MSG_MAX);
    str_init(&conn->in, IPC_MSG_MAX);
    tr->conn_count++;
    opening_link(conn);
    event_add_read(fd, conn_read_cb, conn);
    conn_timer_set(conn, var_ipc_timeout, conn_timeout);
    *connp = conn;
    return QMGR_CONN_OK;
}

/* qmgr_conn_close - close and forget a connection (a job must be gone) */
void qmgr_conn_close(struct qmgr_conn **connp)
{
    struct qmgr_conn *conn = *connp;

    if (conn == NULL)
	return;
    if (conn->job)
	msg_panic("qmgr_conn_close: connection still has a job");
    idle_unlink(conn);
    if (conn->timer)
	event_timer_cancel(conn->timer);
    event_remove(conn->fd);
    close(conn->fd);
    conn->tr->conn_count--;
    if (conn->state == CONN_CONNECTING)
	opening_unlink(conn);
    str_fini(&conn->out);
    str_fini(&conn->in);
    mem_free(&conn->last_key);
    mem_free(connp);
    qmgr_kick_dispatch();
}

/* conn_fail - the connection broke: defer its job, close it */
static void conn_fail(struct qmgr_conn *conn, const char *why)
{
    struct qmgr_job *job = conn->job;

    conn->job = NULL;
    if (job) {
	msg_warn("%s: %s %s: %s", job->msg->id, conn->tr->is_bounce ? "service" : "transport",
		 conn->tr->name, why);
	qmgr_job_failed(job, "4.3.0", conn->tr->is_bounce ? "bounce service unavailable"
			: "mail transport unavailable");
    } else if (conn->state != CONN_IDLE) {
	msg_warn("%s %s: %s", conn->tr->is_bounce ? "service" : "transport", conn->tr->name, why);
    }
    qmgr_conn_close(&conn);
}

/* conn_write_cb - push the request out as the socket takes it */
static void conn_write_cb(int fd, void *ctx)
{
    struct qmgr_conn *conn = ctx;

    while (conn->out_pos < str_len(&conn->out)) {
	ssize_t n = write(fd, str_cstr(&conn->out) + conn->out_pos,
			  str_len(&conn->out) - conn->out_pos);

	if (n < 0) {
	    if (errno == EINTR)
		continue;
	    if (errno == EAGAIN || errno == EWOULDBLOCK) {
		if (!conn->writing) {
		    conn->writing = true;
		    event_add_write(fd, conn_write_cb, conn);
		}
		return;
	    }
	    conn_fail(conn, strerror(errno));
	    return;
	}
	conn->out_pos += (size_t) n;
    }
    if (conn->writing) {
	conn->writing = false;
	event_remove_write(fd);
    }
    str_reset(&conn->out);
    conn->out_pos = 0;
}

/* conn_send_job - the connection is ready: send the job's request */
static void conn_send_job(struct qmgr_conn *conn)
{
    conn->state = CONN_BUSY;
    conn->job->xmit_start = qmgr_now();
    conn_timer_set(conn, var_daemon_timeout, conn_timeout);
    qmgr_job_encode(conn->job, &conn->out);
    conn->out_pos = 0;
    conn_write_cb(conn->fd, conn);
}

/* qmgr_conn_assign - give a job to an open (idle or connecting) conn */
void qmgr_conn_assign(struct qmgr_conn *conn, struct qmgr_job *job)
{
    if (conn->job)
	msg_panic("qmgr_conn_assign: connection is busy");
    idle_unlink(conn);
    conn->job = job;
    if (job->dest && (conn->last_key == NULL || strcmp(conn->last_key, job->dest->key) != 0)) {
	mem_free(&conn->last_key);
	conn->last_key = mem_strdup(job->dest->key);
    }
    if (conn->state == CONN_IDLE) {
	job->conn_start = 0;
	conn_send_job(conn);
    } else {
	job->conn_start = conn->opened;	/* sent after the handshake */
    }
}

/* qmgr_conn_pick_idle - an idle connection for a job of destination
 * key: the first (most recently idle) whose last job went there, else
 * the last of the list (idle the longest) */
struct qmgr_conn *qmgr_conn_pick_idle(struct qmgr_transport *tr, const char *key)
{
    struct qmgr_conn *conn, *lru = NULL;

    for (conn = tr->idle; conn; conn = conn->idle_next) {
	if (conn->last_key && strcmp(conn->last_key, key) == 0)
	    return conn;
	lru = conn;
    }
    return lru;
}

/* opening_oldest_with_job - the connection that has waited longest
 * for an agent with a job in hand, or NULL */
static struct qmgr_conn *opening_oldest_with_job(struct qmgr_transport *tr)
{
    struct qmgr_conn *found = NULL;

    for (struct qmgr_conn *c = tr->opening; c; c = c->open_next)
	if (c->job)
	    found = c;
    return found;
}

/* qmgr_conn_make_idle - the job is done; keep the connection for the
 * next one. When connections of this transport still wait for an agent
 * process (all agents were busy when they were opened) and no other job
 * is ready, this agent takes over the job of the one that has waited
 * longest, which is closed: the job starts now, without a new process,
 * and the agent keeps what it holds (smtp-client: its SMTP session).
 * (Before, this connection was closed to free its agent for a waiting
 * one: each such switch ended a cached SMTP session.) */
void qmgr_conn_make_idle(struct qmgr_conn *conn)
{
    struct qmgr_transport *tr = conn->tr;
    struct qmgr_conn *waiting;

    conn->state = CONN_IDLE;
    if (tr->connecting > 0 && tr->ready_head == NULL) {
	if ((waiting = opening_oldest_with_job(tr)) != NULL) {
	    struct qmgr_job *job = waiting->job;

	    waiting->job = NULL;
	    qmgr_conn_close(&waiting);
	    qmgr_conn_assign(conn, job);	/* may fail and close conn */
	} else {
	    qmgr_conn_close(&conn);
	}
	return;
    }
    conn->in_idle = true;
    conn->idle_prev = NULL;
    conn->idle_next = tr->idle;
    if (tr->idle)
	tr->idle->idle_prev = conn;
    tr->idle = conn;
    conn_timer_set(conn, var_qmgr_connection_idle_time, conn_idle_timeout);
    qmgr_kick_dispatch();
}

/* conn_handshake - check {proto, version} of the right protocol */
static bool conn_handshake(struct qmgr_conn *conn, const struct ipc_list *list)
{
    const char *err;
    char why[256];

    if (ipc_handshake_check(list, conn->tr->is_bounce ? BOUNCE_PROTO : DELIVER_PROTO,
			    conn->tr->is_bounce ? BOUNCE_VERSION : DELIVER_VERSION, &err) == 0)
	return true;
    fmt_buf_cut(why, sizeof(why), "%s", err);	/* the text is a static buffer */
    conn_fail(conn, why);
    return false;
}

/* conn_message - one whole message arrived; false if conn is gone */
static bool conn_message(struct qmgr_conn *conn, const struct ipc_list *list)
{
    struct qmgr_job *job;
    const char *err;

    switch (conn->state) {
    case CONN_CONNECTING:
	if (!conn_handshake(conn, list))
	    return false;
	opening_unlink(conn);
	if (conn->job)
	    conn_send_job(conn);		/* may fail and close conn */
	else
	    qmgr_conn_make_idle(conn);		/* may close conn */
	return false;
    case CONN_BUSY:
	if (conn->out_pos < str_len(&conn->out)) {
	    conn_fail(conn, "reply before the request was sent");
	    return false;
	}
	job = conn->job;
	if (qmgr_job_reply(job, list, &err) < 0) {
	    conn_fail(conn, err);
	    return false;
	}
	conn->job = NULL;			/* finished and freed */
	if (conn->timer)
	    event_timer_cancel(conn->timer);
	conn->timer = 0;
	qmgr_conn_make_idle(conn);
	return false;				/* may be closed: stop reading */
    case CONN_IDLE:
	conn_fail(conn, "unexpected data on an idle connection");
	return false;
    }
    return false;
}

/* conn_read - input from an agent */
static void conn_read(int fd, void *ctx)
{
    struct qmgr_conn *conn = ctx;
    struct ipc_list list;
    char buf[65536];
    const char *err;
    ssize_t n;
    long used;

    n = read(fd, buf, sizeof(buf));
    if (n < 0) {
	if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
	    return;
	conn_fail(conn, strerror(errno));
	return;
    }
    if (n == 0) {
	if (conn->state == CONN_IDLE)
	    qmgr_conn_close(&conn);		/* the agent retired */
	else
	    conn_fail(conn, "connection closed by the agent");
	return;
    }
    if (!str_try_append(&conn->in, buf, (size_t) n)) {
	conn_fail(conn, "reply too large");
	return;
    }
    ipc_list_init(&list);
    for (;;) {
	used = ipc_decode_list(str_cstr(&conn->in), str_len(&conn->in), &list, &err);
	if (used < 0) {
	    conn_fail(conn, err);
	    break;
	}
	if (used == 0)
	    break;
	memmove(conn->in.data, conn->in.data + used, str_len(&conn->in) - (size_t) used);
	(void) str_truncate(&conn->in, str_len(&conn->in) - (size_t) used);
	if (!conn_message(conn, &list))
	    break;
    }
    ipc_list_fini(&list);
}

/* conn_read_cb - input from an agent; then the work it made possible
 * (the next request on this connection) at once */
static void conn_read_cb(int fd, void *ctx)
{
    conn_read(fd, ctx);
    qmgr_run_pending();
}
