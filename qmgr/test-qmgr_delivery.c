/* test-qmgr_delivery.c - unit tests for qmgr's message, job, transport
 * and connection modules against a mock delivery agent.
 *
 * The test makes a queue directory in its working directory, writes
 * queue files into incoming/ with the queue_file.h writers, and hands
 * them to qmgr as cleanup's "I<ID>" trigger does. The mock agent
 * listens on private/smtp (where remote mail is routed) and a mock
 * bounce service on private/bounce; both run on qmgr's own event loop,
 * in this process, and speak the deliver and bounce protocols of
 * mail_proto.h with ipc.h framing. The agent answers each recipient by
 * its local part ("sent-*", "defer-*", "bounce-*"), or misbehaves as a
 * case asks (closes mid-request, answers garbage), and counts what it
 * saw: connections, requests, recipients, deliveries in flight per
 * destination. A case then runs the loop until no message is in memory
 * and looks at the queue: which files are where, which recipients are
 * marked done in the file, what defer/ID says, and what qmgr logged.
 *
 * The agent's word about the next hop (dest_status) is "ok", or "dead"
 * for the one destination named in mock.dead_dest; conn_use counts the
 * requests of its connection. The scheduling cases (window, dead
 * destinations, flush, connection preference) change the smtp
 * transport's limits in place and put them back. */

#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
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
#include "bounce_proto.h"
#include "config.h"
#include "defer_log.h"
#include "deliver_proto.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "queue_id.h"
#include "resolve.h"

/* qmgr */
#include "qmgr.h"

#define DEST_LIMIT	2		/* smtp_destination_concurrency_limit */
#define IDLE_WAIT_MS	5000		/* a case that takes longer has failed */
#define MAX_DESTS	8
#define MAX_SEEN	64

/* ---------------------------------------------------------------- */
/* The mock agent                                                   */

enum mock_mode {
    MOCK_ANSWER,			/* by local part */
    MOCK_CLOSE_MID_REQUEST,		/* close after the first bytes */
    MOCK_GARBAGE,			/* answer bytes that are no IPC */
};

struct mock_conn {
    int fd;
    bool bounce;			/* the bounce service's side */
    struct str in;
    int pending;			/* delayed answers not yet written */
    long requests;			/* its conn_use */
    char last_nexthop[64];		/* of its last request */
    struct mock_conn *next;
};

#define MAX_ARRIVALS	64

struct mock_dest {
    char name[64];
    int in_flight;
    int max_in_flight;
};

struct mock_seen {
    char address[128];
    int count;
};

/* What the agent and the bounce service saw since mock_reset. */
static struct {
    int listen_fd, bounce_listen_fd;
    enum mock_mode mode;
    int delay_ms;			/* hold each answer this long */
    struct mock_conn *conns;
    int accepts;
    int requests;
    int max_rcpts_per_request;
    int in_flight, max_in_flight;	/* all destinations */
    struct mock_dest dests[MAX_DESTS];
    struct mock_seen seen[MAX_SEEN];
    int bounce_requests;
    char bounce_kind[16];		/* request of the last notice */
    char bounce_rcpt[128];		/* its first recipient */
    char dead_dest[64];			/* this next hop is "dead" */
    char hang_dest[64];			/* requests for this one hang */
    int arrivals[MAX_ARRIVALS];		/* in flight to its destination as each
					 * request arrived (itself included) */
    int narrivals;
    int switches;			/* requests on a connection whose last
					 * one was for another next hop */
} mock;

#define DEAD_REASON	"connect to mx.dead[127.0.0.9]:25: Connection refused"

/* A delayed answer. */
struct mock_answer {
    struct mock_conn *conn;
    struct str out;
    char dest[64];
};

/* mock_dest - the counters of a destination (next hop) */
static struct mock_dest *mock_dest(const char *name)
{
    for (int i = 0; i < MAX_DESTS; i++) {
	if (mock.dests[i].name[0] == 0)
	    str_copy_out_or_panic(mock.dests[i].name, sizeof(mock.dests[i].name), name);
	if (strcmp(mock.dests[i].name, name) == 0)
	    return mock.dests + i;
    }
    msg_panic("mock: too many destinations");
}

/* mock_seen_count - how often the agent was asked for address */
static int mock_seen_count(const char *address)
{
    for (int i = 0; i < MAX_SEEN; i++)
	if (strcmp(mock.seen[i].address, address) == 0)
	    return mock.seen[i].count;
    return 0;
}

/* mock_see - count one request for address */
static void mock_see(const char *address)
{
    for (int i = 0; i < MAX_SEEN; i++) {
	if (mock.seen[i].address[0] == 0)
	    str_copy_out_or_panic(mock.seen[i].address, sizeof(mock.seen[i].address), address);
	if (strcmp(mock.seen[i].address, address) == 0) {
	    mock.seen[i].count++;
	    return;
	}
    }
    msg_panic("mock: too many addresses");
}

/* mock_write - the whole buffer to a blocking socket */
static void mock_write(int fd, const struct str *out)
{
    size_t done = 0;

    while (done < str_len(out)) {
	ssize_t n = write(fd, str_cstr(out) + done, str_len(out) - done);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    return;			/* qmgr went away: its business */
	done += (size_t) n;
    }
}

/* mock_close - the agent ends a connection */
static void mock_close(struct mock_conn *conn)
{
    struct mock_conn **pp;

    for (pp = &mock.conns; *pp; pp = &(*pp)->next) {
	if (*pp == conn) {
	    *pp = conn->next;
	    break;
	}
    }
    event_remove(conn->fd);
    close(conn->fd);
    conn->fd = -1;
    str_fini(&conn->in);
    if (conn->pending == 0)
	mem_free(&conn);
}

/* mock_answer_fire - write a delayed answer */
static void mock_answer_fire(void *ctx)
{
    struct mock_answer *a = ctx;
    struct mock_conn *conn = a->conn;

    mock_dest(a->dest)->in_flight--;
    mock.in_flight--;
    conn->pending--;
    if (conn->fd >= 0)
	mock_write(conn->fd, &a->out);
    else if (conn->pending == 0)
	mem_free(&conn);
    str_fini(&a->out);
    mem_free(&a);
}

/* mock_status - the result the agent gives an address */
static void mock_status(const char *address, const char **status, const char **dsn)
{
    if (strncmp(address, "defer", 5) == 0) {
	*status = "defer";
	*dsn = "4.2.0";
    } else if (strncmp(address, "bounce", 6) == 0) {
	*status = "bounce";
	*dsn = "5.1.1";
    } else {
	*status = "sent";
	*dsn = "2.0.0";
    }
}

/* mock_deliver - one whole delivery request, read with the agents' own
 * decoder (so qmgr's requests are checked as strictly as they are) */
static void mock_deliver(struct mock_conn *conn, const struct ipc_list *list)
{
    struct mock_answer *a = mem_zalloc(sizeof(*a));
    struct deliver_reply_status st = {DEST_STAT_OK, "", 0, ""};
    struct deliver_request req;
    struct deliver_result *res;
    struct mock_dest *d;
    const char *err;
    bool dead;
    int nrcpt;

    unit_assert(deliver_request_kind(list, &err) == DELIVER_KIND_DELIVER);
    if (deliver_request_decode(list, &req, &err) < 0)
	unit_fail_at(__FILE__, __LINE__, "qmgr sent a bad request: %s", err);
    str_init(&a->out, IPC_MSG_MAX);
    a->conn = conn;
    str_copy_out_or_panic(a->dest, sizeof(a->dest), req.nexthop ? req.nexthop : "");
    dead = *mock.dead_dest && strcmp(a->dest, mock.dead_dest) == 0;
    if (conn->last_nexthop[0] && strcmp(conn->last_nexthop, a->dest) != 0)
	mock.switches++;
    str_copy_out_or_panic(conn->last_nexthop, sizeof(conn->last_nexthop), a->dest);
    res = mem_alloc_array(req.rcpt_count ? req.rcpt_count : 1, sizeof(*res));
    for (size_t i = 0; i < req.rcpt_count; i++) {
	mock_see(req.rcpts[i].address);
	mock_status(req.rcpts[i].address, &res[i].status, &res[i].dsn);
	res[i].offset = req.rcpts[i].offset;
	res[i].reason = "mock agent says so";
	res[i].relay = "mock";
	if (dead) {			/* as smtp-client for a dead next hop */
	    res[i].status = RCPT_STAT_DEFER;
	    res[i].dsn = "4.4.1";
	    res[i].reason = DEAD_REASON;
	    res[i].relay = "none";
	}
    }
    if (dead) {
	st.dest_status = DEST_STAT_DEAD;
	st.dest_reason = DEAD_REASON;
    } else {
	st.conn_use = ++conn->requests;
    }
    nrcpt = (int) req.rcpt_count;
    deliver_reply_encode(&a->out, res, req.rcpt_count, &st);
    mem_free(&res);
    deliver_request_free(&req);
    mock.requests++;
    if (nrcpt > mock.max_rcpts_per_request)
	mock.max_rcpts_per_request = nrcpt;
    d = mock_dest(a->dest);
    if (++d->in_flight > d->max_in_flight)
	d->max_in_flight = d->in_flight;
    if (mock.narrivals < MAX_ARRIVALS)
	mock.arrivals[mock.narrivals++] = d->in_flight;
    if (++mock.in_flight > mock.max_in_flight)
	mock.max_in_flight = mock.in_flight;
    conn->pending++;
    if (mock.mode == MOCK_GARBAGE)
	str_set_or_panic(&a->out, "this is no IPC message\n");
    if (*mock.hang_dest && strcmp(a->dest, mock.hang_dest) == 0)
	(void) event_timer_add(600000, mock_answer_fire, a);	/* not in this test */
    else if (mock.delay_ms > 0)
	(void) event_timer_add(mock.delay_ms, mock_answer_fire, a);
    else
	mock_answer_fire(a);
}

/* mock_notice - one whole bounce request: always taken (read with
 * bounce's own decoder) */
static void mock_notice(struct mock_conn *conn, const struct ipc_list *list)
{
    struct bounce_request req;
    struct bounce_reply rep = {0, "", ""};
    const char *err;
    struct str out;

    if (bounce_request_decode(list, &req, &err) < 0)
	unit_fail_at(__FILE__, __LINE__, "qmgr sent a bad bounce request: %s", err);
    mock.bounce_requests++;
    str_copy_out_or_panic(mock.bounce_kind, sizeof(mock.bounce_kind),
			req.rcpt_count ? bounce_type_name(req.type) : "");
    str_copy_out_or_panic(mock.bounce_rcpt, sizeof(mock.bounce_rcpt),
			req.rcpt_count ? req.rcpts[0].address : "");
    bounce_request_free(&req);
    str_init(&out, 1024);
    bounce_reply_encode(&out, &rep);
    mock_write(conn->fd, &out);
    str_fini(&out);
}

/* mock_read - input from qmgr on one connection */
static void mock_read(int fd, void *ctx)
{
    struct mock_conn *conn = ctx;
    struct ipc_list list;
    const char *err;
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof(buf));
    long used;

    if (n <= 0) {
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
	    return;
	mock_close(conn);		/* qmgr closed it */
	return;
    }
    if (!conn->bounce && mock.mode == MOCK_CLOSE_MID_REQUEST) {
	mock_close(conn);
	return;
    }
    unit_assert(str_try_append(&conn->in, buf, (size_t) n));
    ipc_list_init(&list);
    while ((used = ipc_decode_list(str_cstr(&conn->in), str_len(&conn->in), &list, &err)) > 0) {
	memmove(conn->in.data, conn->in.data + used, str_len(&conn->in) - (size_t) used);
	(void) str_truncate(&conn->in, str_len(&conn->in) - (size_t) used);
	if (conn->bounce)
	    mock_notice(conn, &list);
	else
	    mock_deliver(conn, &list);
    }
    unit_assert(used == 0);		/* qmgr's requests are well-formed */
    ipc_list_fini(&list);
}

/* mock_accept - a connection from qmgr: the handshake first */
static void mock_accept(int fd, void *ctx)
{
    bool bounce = ctx != NULL;
    struct mock_conn *conn;
    struct str hello;
    int cfd = sock_accept(fd);

    if (cfd < 0)
	return;
    conn = mem_zalloc(sizeof(*conn));
    conn->fd = cfd;
    conn->bounce = bounce;
    str_init(&conn->in, IPC_MSG_MAX);
    conn->next = mock.conns;
    mock.conns = conn;
    if (!bounce)
	mock.accepts++;
    str_init(&hello, 256);
    ipc_handshake_encode(&hello, bounce ? BOUNCE_PROTO : DELIVER_PROTO,
			 bounce ? BOUNCE_VERSION : DELIVER_VERSION);
    mock_write(cfd, &hello);
    str_fini(&hello);
    event_add_read(cfd, mock_read, conn);
}

/* mock_start - listen on private/smtp and private/bounce */
static void mock_start(void)
{
    const char *err;
    char path[64];

    unit_assert(fmt_try_buf(path, sizeof(path), "%s/smtp", DELIVER_SOCKET_DIR));
    mock.listen_fd = sock_listen_unix(path, 0600, 64, &err);
    mock.bounce_listen_fd = sock_listen_unix(BOUNCE_SOCKET, 0600, 64, &err);
    unit_assert(mock.listen_fd >= 0 && mock.bounce_listen_fd >= 0);
    event_add_read(mock.listen_fd, mock_accept, NULL);
    event_add_read(mock.bounce_listen_fd, mock_accept, &mock);
}

/* ---------------------------------------------------------------- */
/* Driving qmgr                                                     */

/* ms_since - milliseconds since start */
static long ms_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* open_connections - qmgr's connections to the agent and to bounce */
static int open_connections(void)
{
    return qmgr_transport_find("smtp")->conn_count + qmgr_transport_bounce()->conn_count;
}

/* run_until_idle - run the event loop until no message is in memory
 * (every pass through active/ finished); false after the deadline */
static bool run_until_idle(void)
{
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (qmgr_active_count > 0) {
	if (ms_since(&start) > IDLE_WAIT_MS)
	    return false;
	(void) event_loop_once(20);
    }
    return true;
}

/* mock_reset - a fresh agent for the next case: its connections are
 * closed (qmgr's idle ones see the end and go), its counters zeroed */
static void mock_reset(enum mock_mode mode, int delay_ms)
{
    struct timespec start;

    while (mock.conns)
	mock_close(mock.conns);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (open_connections() > 0 && ms_since(&start) < IDLE_WAIT_MS)
	(void) event_loop_once(20);
    unit_assert_inteq(open_connections(), 0);
    memset(mock.dests, 0, sizeof(mock.dests));
    memset(mock.seen, 0, sizeof(mock.seen));
    mock.accepts = mock.requests = mock.max_rcpts_per_request = 0;
    mock.in_flight = mock.max_in_flight = 0;
    mock.bounce_requests = 0;
    mock.bounce_kind[0] = mock.bounce_rcpt[0] = 0;
    mock.dead_dest[0] = mock.hang_dest[0] = 0;
    mock.narrivals = mock.switches = 0;
    mock.mode = mode;
    mock.delay_ms = delay_ms;
}

/* queue_message - a complete queue file in incoming/ with these
 * recipients (NULL-terminated); its queue ID into id */
static void queue_message(char *id, size_t id_size, const char *const *rcpts)
{
    char tmp[64], path[64];
    struct timeval tv;
    struct stream *s;
    struct stat st;
    int fd;

    queue_temp_name(tmp, sizeof(tmp));
    unit_assert(fmt_try_buf(path, sizeof(path), "incoming/%s", tmp));
    unit_assert((fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600)) >= 0);
    s = stream_open(fd);
    gettimeofday(&tv, NULL);
    unit_assert(qf_put_version(s) == 0);
    unit_assert(qf_put_time(s, tv.tv_sec, (long) tv.tv_usec) == 0);
    unit_assert(qf_puts(s, QF_REC_SENDER, "sender@example.org") == 0);
    for (size_t i = 0; rcpts[i]; i++)
	unit_assert(qf_puts(s, QF_REC_RCPT, rcpts[i]) == 0);
    unit_assert(qf_put(s, QF_REC_MESSAGE, "", 0) == 0);
    unit_assert(qf_puts(s, QF_REC_LINE, "Subject: test") == 0);
    unit_assert(qf_puts(s, QF_REC_LINE, "") == 0);
    unit_assert(qf_puts(s, QF_REC_LINE, "body") == 0);
    unit_assert(qf_put(s, QF_REC_XEND, "", 0) == 0);
    unit_assert(qf_put(s, QF_REC_END, "", 0) == 0);
    unit_assert(stream_flush(s) == 0);
    unit_assert(fstat(fd, &st) == 0);
    (void) stream_close(&s);
    unit_assert(queue_id_new(id, id_size, (uint64_t) st.st_ino));
    {
	char to[64];

	unit_assert(fmt_try_buf(to, sizeof(to), "incoming/%s", id));
	unit_assert(rename(path, to) == 0);
    }
}

/* trigger_message - queue a message and tell qmgr, as cleanup does */
static void trigger_message(char *id, size_t id_size, const char *const *rcpts)
{
    char req[64];

    queue_message(id, id_size, rcpts);
    unit_assert(fmt_try_buf(req, sizeof(req), "%s%s\n", QMGR_TRIGGER_SCAN, id));
    qmgr_trigger(req, strlen(req));
}

/* deliver_message - a fresh agent in this mode, one message with these
 * recipients through qmgr until it is out of memory; its ID into id */
static void deliver_message(enum mock_mode mode, int delay_ms, const char *const *rcpts,
			    char *id, size_t id_size)
{
    mock_reset(mode, delay_ms);
    trigger_message(id, id_size, rcpts);
    unit_assert(run_until_idle());
}

/* file_exists - queue/ID is there */
static bool file_exists(const char *queue, const char *id)
{
    char path[64];
    struct stat st;

    return fmt_try_buf(path, sizeof(path), "%s/%s", queue, id) && stat(path, &st) == 0;
}

/* marks_visit - one record: 'R' or 'D' of each recipient, in order */
static int marks_visit(int type, const struct str *data, off_t offset, void *ctx)
{
    (void) data;
    (void) offset;
    if (type == QF_REC_RCPT || type == QF_REC_DONE) {
	str_appendc_or_panic(ctx, (char) type);
    }
    return 0;
}

/* recipient_marks - "DRD...": each recipient's record type in queue/ID */
static const char *recipient_marks(const char *queue, const char *id)
{
    static struct str *marks;
    struct qf_reader rd;
    struct stream *s;
    const char *err;
    char path[64];
    int fd;

    if (marks == NULL)
	marks = str_new(256);
    str_reset(marks);
    unit_assert(fmt_try_buf(path, sizeof(path), "%s/%s", queue, id));
    if ((fd = open(path, O_RDONLY)) < 0)
	return "(no file)";
    s = stream_open(fd);
    qf_reader_init(&rd, s, 0);
    unit_assert(qf_scan(&rd, QF_RECORD_MAX, marks_visit, marks, &err) == 0);
    (void) stream_close(&s);
    return str_cstr(marks);
}

struct defer_seen {
    int count;
    char rcpt[128];
    char dsn[16];
    char reason[128];
};

/* defer_visit - remember the records of defer/ID */
static void defer_visit(const struct defer_log_record *rec, void *ctx)
{
    struct defer_seen *ds = ctx;

    ds->count++;
    str_copy_out_or_panic(ds->rcpt, sizeof(ds->rcpt), rec->rcpt);
    str_copy_out_or_panic(ds->dsn, sizeof(ds->dsn), rec->dsn);
    str_copy_out_or_panic(ds->reason, sizeof(ds->reason), rec->reason);
}

/* defer_log - the records of defer/ID (count 0 if there is none) */
static void defer_log(const char *id, struct defer_seen *ds)
{
    const char *err;
    bool warned;

    memset(ds, 0, sizeof(*ds));
    if (!file_exists(DEFER_LOG_DIR, id))
	return;
    unit_assert(defer_log_read(id, defer_visit, ds, &warned, &err) == 0);
}

/* log_count - how many times text is in qmgr's log so far */
static int log_count(const char *text)
{
    struct str *log = str_new(16 * 1024 * 1024);
    const char *err, *p;
    int n = 0;

    unit_assert(file_read_path("../qmgr.log", log, log->max, &err) == 0);
    for (p = str_cstr(log); (p = strstr(p, text)) != NULL; p += strlen(text))
	n++;
    str_free(&log);
    return n;
}

/* run_until - run the event loop until done() or the deadline */
static bool run_until(bool (*done)(void *), void *ctx, int max_ms)
{
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!done(ctx)) {
	if (ms_since(&start) > max_ms)
	    return false;
	(void) event_loop_once(20);
    }
    return true;
}

/* dest_alive - the smtp destination ctx is not dead (or not there) */
static bool dest_alive(void *ctx)
{
    struct qmgr_dest *d = qmgr_transport_dest(qmgr_transport_find("smtp"), ctx);

    return d == NULL || !d->dead;
}

/* left_deferred - deferred/ID is gone and nothing is in memory */
static bool left_deferred(void *ctx)
{
    return !file_exists("deferred", ctx) && qmgr_active_count == 0;
}

/* Saved smtp transport limits of a scheduling case. */
static struct {
    int dest_limit, init_window;
    long cohort, backoff;
} saved_limits;

/* limits_set - the smtp transport's limit and initial window, the
 * cohort limit and the dead time of a scheduling case */
static void limits_set(int dest_limit, int init_window, long cohort, long backoff)
{
    struct qmgr_transport *tr = qmgr_transport_find("smtp");

    saved_limits.dest_limit = tr->dest_limit;
    saved_limits.init_window = tr->init_window;
    saved_limits.cohort = var_destination_concurrency_failed_cohort_limit;
    saved_limits.backoff = var_minimal_backoff_time;
    tr->dest_limit = dest_limit;
    tr->init_window = init_window;
    var_destination_concurrency_failed_cohort_limit = cohort;
    var_minimal_backoff_time = backoff;
}

/* limits_restore - put them back */
static void limits_restore(void)
{
    struct qmgr_transport *tr = qmgr_transport_find("smtp");

    tr->dest_limit = saved_limits.dest_limit;
    tr->init_window = saved_limits.init_window;
    var_destination_concurrency_failed_cohort_limit = saved_limits.cohort;
    var_minimal_backoff_time = saved_limits.backoff;
}

/* trigger_n - n one-recipient messages, "sent-<i>@domain"; the ID of
 * each into ids (ids may be NULL) */
static void trigger_n(const char *domain, int n, char (*ids)[QUEUE_ID_SIZE])
{
    char id[QUEUE_ID_SIZE], rcpt[128];
    const char *rcpts[] = {rcpt, NULL};

    for (int i = 0; i < n; i++) {
	unit_assert(fmt_try_buf(rcpt, sizeof(rcpt), "sent-%d@%s", i, domain));
	trigger_message(id, sizeof(id), rcpts);
	if (ids)
	    memcpy(ids[i], id, sizeof(id));
    }
}

/* ---------------------------------------------------------------- */
/* The cases                                                        */

/* test_all_sent_removed - every recipient sent: the file and its defer
 * log go, nothing is marked, each recipient was asked for once */
static void test_all_sent_removed(void)
{
    static const char *const rcpts[] = {"sent-1@one.example", "sent-2@one.example", NULL};
    char id[QUEUE_ID_SIZE];

    unit_begin("all sent: active/ID removed, no defer/ID, each recipient once");
    deliver_message(MOCK_ANSWER, 0, rcpts, id, sizeof(id));
    unit_assert(!file_exists("active", id));
    unit_assert(!file_exists("deferred", id));
    unit_assert(!file_exists(DEFER_LOG_DIR, id));
    unit_assert_inteq(mock_seen_count("sent-1@one.example"), 1);
    unit_assert_inteq(mock_seen_count("sent-2@one.example"), 1);
    unit_assert_inteq(mock.requests, 1);	/* one destination: one request */
    unit_assert_inteq(mock.bounce_requests, 0);
    unit_end();
}

/* test_outcomes_mark_defer_and_move - sent, deferred and bounced in one
 * message: done marks for the sent and the bounced (after bounce took
 * the notice), the deferral in defer/ID, the file in deferred/ with its
 * next attempt as mtime */
static void test_outcomes_mark_defer_and_move(void)
{
    static const char *const rcpts[] = {"sent-1@mix.example", "defer-1@mix.example",
					"bounce-1@mix.example", NULL};
    char id[QUEUE_ID_SIZE], path[64];
    struct defer_seen ds;
    struct stat st;

    unit_begin("sent/defer/bounce: D marks, defer/ID, deferred/ID with a later mtime");
    deliver_message(MOCK_ANSWER, 0, rcpts, id, sizeof(id));
    unit_assert(!file_exists("active", id));
    unit_assert(file_exists("deferred", id));
    unit_assert_streq(recipient_marks("deferred", id), "DRD");
    defer_log(id, &ds);
    unit_assert_inteq(ds.count, 1);
    unit_assert_streq(ds.rcpt, "defer-1@mix.example");
    unit_assert_streq(ds.dsn, "4.2.0");
    unit_assert_streq(ds.reason, "mock agent says so");
    unit_assert_inteq(mock.bounce_requests, 1);
    unit_assert_streq(mock.bounce_kind, BOUNCE_REQ_FAILURE);
    unit_assert_streq(mock.bounce_rcpt, "bounce-1@mix.example");
    unit_assert(fmt_try_buf(path, sizeof(path), "deferred/%s", id));
    unit_assert(stat(path, &st) == 0);
    unit_assert(st.st_mtime >= time(NULL) + var_minimal_backoff_time - 5);
    unit_end();
}

/* test_concurrency_per_destination - never more than the limit in
 * flight to one destination, while two destinations run side by side */
static void test_concurrency_per_destination(void)
{
    char id[QUEUE_ID_SIZE], rcpt[64];

    unit_begin("concurrency: at most the limit per destination, destinations in parallel");
    mock_reset(MOCK_ANSWER, 30);
    for (int i = 0; i < 6; i++) {
	const char *rcpts[] = {rcpt, NULL};

	unit_assert(fmt_try_buf(rcpt, sizeof(rcpt), "sent-%d@conc-a.example", i));
	trigger_message(id, sizeof(id), rcpts);
	unit_assert(fmt_try_buf(rcpt, sizeof(rcpt), "sent-%d@conc-b.example", i));
	trigger_message(id, sizeof(id), rcpts);
    }
    unit_assert(run_until_idle());
    unit_assert_inteq(mock.requests, 12);
    unit_assert_inteq(mock_dest("conc-a.example")->max_in_flight, DEST_LIMIT);
    unit_assert_inteq(mock_dest("conc-b.example")->max_in_flight, DEST_LIMIT);
    unit_assert_inteq(mock.max_in_flight, 2 * DEST_LIMIT);
    unit_end();
}

/* test_connection_reuse - one message after another: one connection */
static void test_connection_reuse(void)
{
    static const char *const rcpts[] = {"sent-1@reuse.example", NULL};
    char id[QUEUE_ID_SIZE];

    unit_begin("connection reuse: five messages in turn over one connection");
    mock_reset(MOCK_ANSWER, 0);
    for (int i = 0; i < 5; i++) {
	trigger_message(id, sizeof(id), rcpts);
	unit_assert(run_until_idle());
	unit_assert(!file_exists("active", id));
    }
    unit_assert_inteq(mock.requests, 5);
    unit_assert_inteq(mock.accepts, 1);
    unit_assert_inteq(qmgr_transport_find("smtp")->conn_count, 1);	/* idle, kept */
    /* the agent's session count is logged from the second use on */
    unit_assert_inteq(log_count("to=<sent-1@reuse.example>, relay=mock, delay="), 1);
    unit_assert_inteq(log_count("to=<sent-1@reuse.example>, relay=mock, conn_use="), 4);
    unit_assert_inteq(log_count("to=<sent-1@reuse.example>, relay=mock, conn_use=5, delay="), 1);
    unit_end();
}

/* expect_transport_failure - the agent failed the request: the message
 * is deferred whole, nothing marked, the reason in defer/ID */
static void expect_transport_failure(const char *id)
{
    struct defer_seen ds;

    unit_assert(!file_exists("active", id));
    unit_assert(file_exists("deferred", id));
    unit_assert_streq(recipient_marks("deferred", id), "RR");
    defer_log(id, &ds);
    unit_assert_inteq(ds.count, 2);
    unit_assert_streq(ds.dsn, "4.3.0");
    unit_assert_streq(ds.reason, "mail transport unavailable");
}

/* test_agent_closes_mid_request - the agent hangs up: defer, no loss */
static void test_agent_closes_mid_request(void)
{
    static const char *const rcpts[] = {"sent-1@close.example", "sent-2@close.example", NULL};
    char id[QUEUE_ID_SIZE];

    unit_begin("agent closes mid-request: recipients deferred, file kept");
    deliver_message(MOCK_CLOSE_MID_REQUEST, 0, rcpts, id, sizeof(id));
    expect_transport_failure(id);
    unit_assert_inteq(open_connections(), 0);
    unit_end();
}

/* test_agent_answers_garbage - a reply that is no IPC: defer, no loss */
static void test_agent_answers_garbage(void)
{
    static const char *const rcpts[] = {"sent-1@junk.example", "sent-2@junk.example", NULL};
    char id[QUEUE_ID_SIZE];

    unit_begin("agent answers garbage: recipients deferred, connection closed");
    deliver_message(MOCK_GARBAGE, 0, rcpts, id, sizeof(id));
    expect_transport_failure(id);
    unit_assert_inteq(mock.requests, 1);
    unit_assert_inteq(open_connections(), 0);
    unit_end();
}

/* test_recipient_slices - qmgr_message_recipient_limit bounds what is
 * in memory (and so in flight); every recipient is tried once; a slice's
 * done marks are on disk before the next slice is read */
static void test_recipient_slices(void)
{
    static const char *const rcpts[] = {"sent-1@slice.example", "defer-2@slice.example",
					"sent-3@slice.example", "sent-4@slice.example",
					"sent-5@slice.example", NULL};
    long saved = var_qmgr_message_recipient_limit;
    char id[QUEUE_ID_SIZE];
    struct defer_seen ds;

    unit_begin("recipient slices: at most the limit at a time, each once, marks kept");
    mock_reset(MOCK_ANSWER, 10);
    var_qmgr_message_recipient_limit = 2;
    trigger_message(id, sizeof(id), rcpts);
    unit_assert(run_until_idle());
    var_qmgr_message_recipient_limit = saved;
    unit_assert_inteq(mock.requests, 3);		/* 2 + 2 + 1 */
    unit_assert_inteq(mock.max_rcpts_per_request, 2);
    for (int i = 0; rcpts[i]; i++)
	unit_assert_inteq(mock_seen_count(rcpts[i]), 1);
    unit_assert(file_exists("deferred", id));
    unit_assert_streq(recipient_marks("deferred", id), "DRDDD");
    defer_log(id, &ds);
    unit_assert_inteq(ds.count, 1);
    unit_assert_streq(ds.rcpt, "defer-2@slice.example");
    unit_end();
}

/* test_window_grows - a destination starts at its initial window and
 * gains one after each window's worth of "ok" replies, up to the limit */
static void test_window_grows(void)
{
    struct qmgr_dest *d;

    unit_begin("window: starts at the initial concurrency, grows on ok replies to the limit");
    mock_reset(MOCK_ANSWER, 30);
    limits_set(4, 1, 1, 300);
    trigger_n("grow.example", 14, NULL);
    unit_assert(run_until_idle());
    unit_assert_inteq(mock.requests, 14);
    unit_assert(mock.narrivals == 14);
    /* window 1: one request; its ok reply makes it 2 */
    unit_assert_inteq(mock.arrivals[0], 1);
    unit_assert_inteq(mock.arrivals[1], 1);
    unit_assert_inteq(mock.arrivals[2], 2);
    unit_assert_inteq(mock_dest("grow.example")->max_in_flight, 4);
    /* idle now, but the grown window is kept for the next burst */
    d = qmgr_transport_dest(qmgr_transport_find("smtp"), "grow.example");
    unit_assert(d != NULL && d->window == 4 && d->busy == 0);
    mock_reset(MOCK_ANSWER, 30);
    trigger_n("grow.example", 4, NULL);
    unit_assert(run_until_idle());
    unit_assert(mock.narrivals == 4 && mock.arrivals[3] == 4);
    limits_restore();
    unit_end();
}

/* test_window_shrinks - each "dead" reply takes one off the window
 * (below the cohort limit the destination stays alive) */
static void test_window_shrinks(void)
{
    unit_begin("window: shrinks by one on each dead reply, down to 1");
    mock_reset(MOCK_ANSWER, 30);
    str_copy_out_or_panic(mock.dead_dest, sizeof(mock.dead_dest), "shrink.example");
    limits_set(4, 4, 100, 300);
    trigger_n("shrink.example", 7, NULL);
    unit_assert(run_until_idle());
    limits_restore();
    unit_assert_inteq(mock.requests, 7);	/* never dead: every one tried */
    unit_assert(mock.narrivals == 7);
    /* four at once; then the window is 1 and stays there */
    unit_assert_inteq(mock.arrivals[3], 4);
    unit_assert_inteq(mock.arrivals[4], 1);
    unit_assert_inteq(mock.arrivals[5], 1);
    unit_assert_inteq(mock.arrivals[6], 1);
    unit_assert_inteq(log_count("smtp destination shrink.example: dead"), 0);
    unit_end();
}

/* test_dead_destination - at window 1 the cohort limit of failures
 * makes the destination dead: queued and new jobs are deferred with its
 * reason without an agent, until the backoff time passes */
static void test_dead_destination(void)
{
    char ids[8][QUEUE_ID_SIZE], id[QUEUE_ID_SIZE];
    struct qmgr_transport *tr = qmgr_transport_find("smtp");
    struct qmgr_dest *d;
    struct defer_seen ds;
    int suspended = 0;

    unit_begin("dead destination: queued jobs deferred without an agent, new ones too");
    mock_reset(MOCK_ANSWER, 30);
    str_copy_out_or_panic(mock.dead_dest, sizeof(mock.dead_dest), "dead.example");
    limits_set(4, 4, 1, 1);
    trigger_n("dead.example", 8, ids);
    unit_assert(run_until_idle());
    /* 4 at once; the third dead reply brings the window to 1: dead */
    unit_assert_inteq(mock.requests, 4);
    unit_assert_inteq(log_count("smtp destination dead.example: dead for 1s: " DEAD_REASON), 1);
    unit_assert((d = qmgr_transport_dest(tr, "dead.example")) != NULL);
    unit_assert(d != NULL && d->dead && d->window == 1);
    for (int i = 0; i < 8; i++) {
	unit_assert_idx(file_exists("deferred", ids[i]), i);
	defer_log(ids[i], &ds);
	unit_assert_idx(ds.count == 1, i);
	unit_assert_streq_idx(ds.dsn, "4.4.1", i);
	if (strcmp(ds.reason, "delivery temporarily suspended: " DEAD_REASON) == 0)
	    suspended++;
	else
	    unit_assert_streq_idx(ds.reason, DEAD_REASON, i);
    }
    unit_assert_inteq(suspended, 4);
    unit_assert_inteq(open_connections() <= 4, 1);
    unit_end();

    unit_begin("dead destination: a new message is deferred on arrival");
    trigger_n("dead.example", 1, &id);
    unit_assert(run_until_idle());
    unit_assert_inteq(mock.requests, 4);
    unit_assert(file_exists("deferred", id));
    defer_log(id, &ds);
    unit_assert_streq(ds.reason, "delivery temporarily suspended: " DEAD_REASON);
    unit_end();

    unit_begin("dead destination: alive again after minimal_backoff_time");
    mock.dead_dest[0] = 0;
    unit_assert(run_until(dest_alive, "dead.example", 3000));
    unit_assert_inteq(log_count("smtp destination dead.example: alive again "
				"(backoff time passed)"), 1);
    unit_assert(qmgr_transport_dest(tr, "dead.example") == NULL);	/* idle: freed */
    trigger_n("dead.example", 1, &id);
    unit_assert(run_until_idle());
    unit_assert_inteq(mock.requests, 5);
    unit_assert(!file_exists("deferred", id) && !file_exists("active", id));
    limits_restore();
    unit_end();
}

/* test_flush_revives - a flush ("F") makes a dead destination alive at
 * once, and its deferred mail is tried again */
static void test_flush_revives(void)
{
    char id[QUEUE_ID_SIZE];

    unit_begin("flush: a dead destination is alive again at once");
    mock_reset(MOCK_ANSWER, 0);
    str_copy_out_or_panic(mock.dead_dest, sizeof(mock.dead_dest), "flush.example");
    limits_set(2, 1, 1, 300);
    trigger_n("flush.example", 1, &id);
    unit_assert(run_until_idle());
    unit_assert_inteq(log_count("smtp destination flush.example: dead for 300s"), 1);
    unit_assert(!dest_alive("flush.example"));
    unit_assert(file_exists("deferred", id));
    mock.dead_dest[0] = 0;
    qmgr_trigger(QMGR_TRIGGER_FLUSH, strlen(QMGR_TRIGGER_FLUSH));
    unit_assert(dest_alive("flush.example"));
    unit_assert_inteq(log_count("smtp destination flush.example: alive again (queue flush)"), 1);
    unit_assert(run_until(left_deferred, id, IDLE_WAIT_MS));
    unit_assert(!file_exists("active", id));	/* delivered */
    unit_assert_inteq(mock_seen_count("sent-0@flush.example"), 2);
    limits_restore();
    unit_end();
}

/* test_connection_preference - a job goes to the idle connection whose
 * last job had its destination */
static void test_connection_preference(void)
{
    unit_begin("connections: a job goes to the idle one its destination used last");
    mock_reset(MOCK_ANSWER, 50);
    trigger_n("pref-a.example", 1, NULL);	/* both at once: two connections */
    trigger_n("pref-b.example", 1, NULL);
    unit_assert(run_until_idle());
    unit_assert_inteq(mock.accepts, 2);
    mock.delay_ms = 0;
    for (int i = 0; i < 6; i++) {
	trigger_n(i % 2 ? "pref-b.example" : "pref-a.example", 1, NULL);
	unit_assert(run_until_idle());
    }
    unit_assert_inteq(mock.requests, 8);
    unit_assert_inteq(mock.accepts, 2);
    unit_assert_inteq(mock.switches, 0);
    /* a third destination takes the least recently used: pref-a's */
    trigger_n("pref-c.example", 1, NULL);
    unit_assert(run_until_idle());
    unit_assert_inteq(mock.switches, 1);
    trigger_n("pref-b.example", 1, NULL);
    unit_assert(run_until_idle());
    unit_assert_inteq(mock.switches, 1);
    unit_assert_inteq(mock.accepts, 2);
    unit_end();
}

/* fast_done - the 20 messages of ctx (char[20][QUEUE_ID_SIZE]) left
 * the queue */
static bool fast_done(void *ctx)
{
    char (*ids)[QUEUE_ID_SIZE] = ctx;

    for (int i = 0; i < 20; i++)
	if (file_exists("incoming", ids[i]) || file_exists("active", ids[i])
	    || file_exists("deferred", ids[i]))
	    return false;
    return true;
}

/* test_hung_destination - a destination whose agent never answers holds
 * its window of connections, no more; another destination flows; the
 * hung requests failing as a whole (agent gone) are no feedback */
static void test_hung_destination(void)
{
    char hung[6][QUEUE_ID_SIZE], fast[20][QUEUE_ID_SIZE];
    struct qmgr_transport *tr = qmgr_transport_find("smtp");
    struct qmgr_dest *d;
    int gone = 0, deferred = 0;

    unit_begin("a hung destination holds its window only; another one flows meanwhile");
    mock_reset(MOCK_ANSWER, 0);
    str_copy_out_or_panic(mock.hang_dest, sizeof(mock.hang_dest), "hang.example");
    limits_set(2, 2, 1, 300);
    trigger_n("hang.example", 6, hung);
    trigger_n("fast.example", 20, fast);
    unit_assert(run_until(fast_done, fast, IDLE_WAIT_MS));
    unit_assert_inteq(mock.requests, 22);
    unit_assert_inteq(mock_dest("hang.example")->in_flight, 2);
    unit_assert_inteq(mock_dest("hang.example")->max_in_flight, 2);
    unit_assert(tr->conn_count <= 4);
    /* the hung agent processes die: their two jobs are deferred, the
     * destination is not judged for it, the other four go through */
    mock.hang_dest[0] = 0;
    for (struct mock_conn *c = mock.conns, *next; c; c = next) {
	next = c->next;
	if (c->pending > 0)
	    mock_close(c);
    }
    unit_assert(run_until_idle());
    for (int i = 0; i < 6; i++) {
	gone += !file_exists("active", hung[i]) && !file_exists("deferred", hung[i]);
	deferred += file_exists("deferred", hung[i]);
    }
    unit_assert_inteq(gone, 4);
    unit_assert_inteq(deferred, 2);
    d = qmgr_transport_dest(tr, "hang.example");
    unit_assert(d == NULL || (!d->dead && d->window == 2));
    limits_restore();
    unit_end();
}

/* test_discard_transport - "discard:TEXT": done as delivered without an
 * agent, logged as sent with the text */
static void test_discard_transport(void)
{
    static const char *const rcpts[] = {"sent-1@discard.example", NULL};
    char id[QUEUE_ID_SIZE];
    const char *err;

    unit_begin("discard transport: sent without an agent, dsn 2.0.0, \"discarded\" and the text");
    config_set("default_transport", "discard:outbound mail is off");
    unit_assert(config_apply(&err) == 0);
    unit_assert(resolve_init(&err) == 0);
    deliver_message(MOCK_ANSWER, 0, rcpts, id, sizeof(id));
    config_set("default_transport", "smtp");
    unit_assert(config_apply(&err) == 0);
    unit_assert(resolve_init(&err) == 0);
    unit_assert_inteq(mock.requests, 0);
    unit_assert(!file_exists("active", id) && !file_exists("deferred", id));
    unit_assert(!file_exists(DEFER_LOG_DIR, id));
    unit_assert_inteq(log_count("to=<sent-1@discard.example>, relay=none, delay="), 1);
    unit_assert_inteq(log_count("dsn=2.0.0, status=sent (discarded: outbound mail is off)"), 1);
    unit_end();
}

/* setup - a queue directory in the working directory, the parameters,
 * logs to a file, the routing tables, the mock agent */
static void setup(void)
{
    static const char *const dirs[] = {"queue", "queue/incoming", "queue/active",
				       "queue/deferred", "queue/defer", "queue/corrupt",
				       "queue/hold", "queue/bounce", "queue/private"};
    const char *err;

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
	unit_assert(mkdir(dirs[i], 0700) == 0 || errno == EEXIST);
    unit_assert(chdir("queue") == 0);
    msg_init("test-qmgr_delivery", MSG_TO_FILE);
    unit_assert(msg_set_file("../qmgr.log", &err));
    config_init();
    config_set("queue_directory", ".");
    config_set("alias_maps", "");
    config_set("smtp_destination_concurrency_limit", "2");
    unit_assert(config_apply(&err) == 0);
    unit_assert(resolve_init(&err) == 0);
    mock_start();
}

int main(void)
{
    /* as in the daemons (the skeleton ignores it): the mock agents
     * write to connections qmgr may have dropped already, which epoll's
     * readiness order (not poll's fd order) can make happen */
    signal(SIGPIPE, SIG_IGN);
    setup();
    test_all_sent_removed();
    test_outcomes_mark_defer_and_move();
    test_concurrency_per_destination();
    test_connection_reuse();
    test_agent_closes_mid_request();
    test_agent_answers_garbage();
    test_recipient_slices();
    test_window_grows();
    test_window_shrinks();
    test_dead_destination();
    test_flush_revives();
    test_connection_preference();
    test_hung_destination();
    test_discard_transport();
    return unit_done();
}
