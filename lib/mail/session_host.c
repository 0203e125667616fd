/* session_host.c - the post-login framework of pop3d and imapd
 * (session_host.h): a root dispatcher that takes the login processes'
 * hand-overs on its event loop, redeems each token with auth and passes
 * the session to a per-uid worker process, and the workers, which run
 * many sessions of one uid on one event loop.
 *
 * Dispatcher <-> worker: a SOCK_SEQPACKET socketpair per worker.
 *   dispatcher -> worker: one datagram per session, carrying the
 *       client's descriptor (SCM_RIGHTS) and one ipc.h attribute list
 *       {user, mail_root, quota, client_address, client_port, input,
 *       login_tag, tls (only for a session the login process proxies)}
 *       (the worker's uid and gid are fixed at its fork).
 *   worker -> dispatcher: one byte per datagram: SH_MSG_END (a session
 *       ended), SH_MSG_IDLE (no session for the linger time: may I go?).
 *       The dispatcher answers SH_MSG_IDLE by closing its end when it
 *       has given the worker nothing since (no session can be lost in
 *       flight); the worker exits at that EOF. An EOF while sessions run
 *       (reload, the dispatcher's exit) retires the worker: its
 *       sessions finish, then it exits.
 * The dispatcher trusts a worker for nothing: a byte it does not know
 * is logged and ignored, and counts are never taken below zero. */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "auth_async.h"
#include "auth_proto.h"
#include "config.h"
#include "login_proto.h"
#include "mail_proto.h"
#include "master_proto.h"
#include "server.h"
#include "session_host.h"

#define SH_MSG_END		'E'	/* worker: a session ended */
#define SH_MSG_IDLE		'I'	/* worker: idle for the linger time */

#define SH_ATTR_USER		"user"
#define SH_ATTR_ROOT		"mail_root"
#define SH_ATTR_QUOTA		"quota"
#define SH_ATTR_ADDR		"client_address"
#define SH_ATTR_PORT		"client_port"
#define SH_ATTR_INPUT		"input"
#define SH_ATTR_TAG		"login_tag"
#define SH_ATTR_TLS		"tls"

/* one datagram: the attributes and their framing, with room to spare */
#define SH_DGRAM_MAX		(LOGIN_INPUT_MAX + 16384)
/* the hand-over's attribute list: input plus token and addresses */
#define SH_HANDOVER_MAX		(LOGIN_INPUT_MAX + 4096)

/* defaults when main.cf knows no $<name>_worker_* (a service whose
 * parameters are not in params.def yet) */
#define SH_DEF_LINGER		10
#define SH_DEF_SESSION_LIMIT	100
#define SH_DEF_WORKER_LIMIT	100

static const struct session_host_spec *sh_spec;

static long sh_linger;			/* seconds */
static long sh_session_limit;		/* per worker */
static long sh_worker_limit;		/* per dispatcher */
static uid_t sh_mail_owner_uid = (uid_t) -1;	/* never a worker's uid */

/* ------------------------------------------------------------------ */
/* Dispatcher state                                                   */

/* A session on its way to a worker (send would have blocked). */
struct sh_queued {
    struct sh_queued *next;
    int client_fd;
    struct str *msg;
};

struct sh_worker {
    pid_t pid;			/* 0: reaped (free slot) */
    uid_t uid;
    gid_t gid;
    int fd;			/* -1: closed (retiring or gone) */
    long sessions;		/* given and not reported ended */
    struct sh_queued *queue, **queue_tail;
};

static struct sh_worker *sh_workers;
static size_t sh_worker_count, sh_worker_cap;
static event_timer_id sh_reap_timer;

/* A hand-over connection from a login process (the skeleton's client). */
struct sh_handover {
    int fd;			/* the login connection (the skeleton's) */
    int client_fd;		/* -1 until received */
    struct str *buf;		/* the attribute list, as it arrives */
    bool done;
};

/* A session whose token is being redeemed. */
struct sh_pending {
    struct sh_pending *next, *prev;
    int client_fd;
    struct str *token;
    char addr[64];
    char port[16];
    char tag[LOGIN_TAG_MAX + 1];
    char tls[LOGIN_TLS_MAX + 1];	/* "" plaintext, else the TLS summary */
    struct str *input;
    struct auth_async *req;	/* the redeem in flight */
};
static struct sh_pending *sh_pendings;
static size_t sh_pending_count;

/* ------------------------------------------------------------------ */
/* Worker state                                                       */

static bool sh_in_worker;
static int sh_worker_sock = -1;
static long sh_worker_sessions;
static bool sh_worker_retiring;
static event_timer_id sh_linger_timer;

/* sh_param - $<spec name>_<suffix> as a number (or a time), or def */
static long sh_param(const char *suffix, bool is_time, long def, long min)
{
    char name[128];
    const char *val;
    long n;

    fmt_buf_or_panic(name, sizeof(name), "%s_%s", sh_spec->name, suffix);
    if ((val = config_value(name)) == NULL)
	return def;
    if (!(is_time ? parse_time(val, &n) : parse_long(val, &n)) || n < min) {
	msg_warn("bad %s value \"%.100s\" -- using %ld", name, val, def);
	return def;
    }
    return n;
}

/* sh_reply - a last line to the client, then close it */
static void sh_reply_close(int fd, const char *reply)
{
    if (reply != NULL && *reply)
	(void) send(fd, reply, strlen(reply), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void) close(fd);
}

/* ------------------------------------------------------------------ */
/* Worker                                                             */

/* Reports the socket did not take yet (the dispatcher is busy): sent
 * when it is writable again, in order, so that no "ended" is lost and
 * the dispatcher's count stays right. */
static char sh_report_queue[256];
static size_t sh_report_len;

/* sh_worker_flush_reports - send what is queued; true when all went */
static bool sh_worker_flush_reports(void)
{
    while (sh_report_len > 0 && sh_worker_sock >= 0) {
	ssize_t n = send(sh_worker_sock, sh_report_queue, 1, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
	    return false;
	if (n < 0) {
	    sh_report_len = 0;			/* gone: its EOF retires us */
	    break;
	}
	memmove(sh_report_queue, sh_report_queue + 1, --sh_report_len);
    }
    return true;
}

/* sh_worker_report_writable - the dispatcher takes reports again */
static void sh_worker_report_writable(int fd, void *ctx)
{
    (void) ctx;
    if (sh_worker_flush_reports())
	event_remove_write(fd);
}

/* sh_worker_send_byte - tell the dispatcher something (a gone
 * dispatcher shows as EOF anyway) */
static void sh_worker_send_byte(char b)
{
    if (sh_worker_sock < 0)
	return;
    if (sh_report_len == sizeof(sh_report_queue)) {
	/* the dispatcher has not read 256 reports: wait for it (an
	 * "ended" must not be lost, or it counts a session forever) */
	(void) sock_set_nonblock(sh_worker_sock, false);
	(void) sh_worker_flush_reports();
	(void) sock_set_nonblock(sh_worker_sock, true);
    }
    sh_report_queue[sh_report_len++] = b;
    if (!sh_worker_flush_reports())
	event_add_write(sh_worker_sock, sh_worker_report_writable, NULL);
}

/* sh_worker_linger_cb - no session for $name_worker_linger: ask to go */
static void sh_worker_linger_cb(void *ctx)
{
    (void) ctx;
    sh_linger_timer = 0;
    if (sh_worker_sessions == 0)
	sh_worker_send_byte(SH_MSG_IDLE);
}

/* sh_worker_idle - arm the linger timer */
static void sh_worker_idle(void)
{
    if (sh_linger_timer)
	event_timer_cancel(sh_linger_timer);
    sh_linger_timer = event_timer_add((int) (sh_linger > INT_MAX / 1000 ? INT_MAX : sh_linger * 1000),
				      sh_worker_linger_cb, NULL);
}

/* sh_worker_retire - stop taking sessions; exit when the last one ends */
static void sh_worker_retire(void)
{
    if (sh_worker_retiring)
	return;
    sh_worker_retiring = true;
    if (sh_worker_sock >= 0) {
	event_remove(sh_worker_sock);
	(void) close(sh_worker_sock);
	sh_worker_sock = -1;
    }
    if (sh_worker_sessions > 0 && sh_spec->worker_retire)
	sh_spec->worker_retire();
}

/* sh_worker_input - a session (or EOF) from the dispatcher */
static void sh_worker_input(int fd, void *ctx)
{
    static char buf[SH_DGRAM_MAX];
    struct ipc_list list;
    struct session_info info;
    const char *err, *quota;
    int client_fd = -1;
    ssize_t n;
    long q;

    (void) ctx;
    n = sock_recv_fd(fd, &client_fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	return;
    if (n <= 0) {
	if (client_fd >= 0)
	    (void) close(client_fd);
	sh_worker_retire();
	return;
    }
    if (client_fd < 0) {
	msg_warn("dispatcher message without a client descriptor");
	return;
    }
    ipc_list_init(&list);
    if (ipc_decode_list(buf, (size_t) n, &list, &err) != n
	|| ipc_list_get(&list, SH_ATTR_USER) == NULL || ipc_list_get(&list, SH_ATTR_ROOT) == NULL
	|| (quota = ipc_list_get(&list, SH_ATTR_QUOTA)) == NULL || !parse_long(quota, &q)) {
	msg_warn("bad message from the dispatcher");
	(void) close(client_fd);
	ipc_list_fini(&list);
	return;
    }
    memset(&info, 0, sizeof(info));
    info.service = sh_spec->auth_service;
    info.user = ipc_list_get(&list, SH_ATTR_USER);
    info.mail_root = ipc_list_get(&list, SH_ATTR_ROOT);
    info.uid = getuid();
    info.gid = getgid();
    info.quota_bytes = q > 0 ? (uint64_t) q : 0;
    info.client_address = ipc_list_get(&list, SH_ATTR_ADDR);
    info.client_port = ipc_list_get(&list, SH_ATTR_PORT);
    if (info.client_address == NULL)
	info.client_address = "";
    if (info.client_port == NULL)
	info.client_port = "";
    if ((info.login_tag = ipc_list_get(&list, SH_ATTR_TAG)) == NULL)
	info.login_tag = "";
    if ((info.tls = ipc_list_get(&list, SH_ATTR_TLS)) == NULL)
	info.tls = "";
    for (size_t i = 0; i < list.count; i++) {
	if (strcmp(list.attrs[i].name, SH_ATTR_INPUT) == 0) {
	    info.input = list.attrs[i].value;
	    info.input_len = list.attrs[i].len;
	}
    }
    if (sh_linger_timer) {
	event_timer_cancel(sh_linger_timer);
	sh_linger_timer = 0;
    }
    sh_worker_sessions++;
    (void) sock_set_nonblock(client_fd, true);
    sh_spec->session_start(client_fd, &info);
    ipc_list_fini(&list);
}

/* session_host_session_end - a session of this worker ended */
/* sh_worker_trim - give the heap pages a finished session freed back to
 * the system (a worker lives long and serves sessions of very different
 * sizes: one big mailbox's snapshot would otherwise stay resident for
 * good); at most once a second while other sessions run: a trim asked
 * for sooner runs from a timer */
static event_timer_id sh_trim_timer;

static void sh_worker_trim_now(void *ctx)
{
    (void) ctx;
    sh_trim_timer = 0;
    (void) malloc_trim(0);
}

static void sh_worker_trim(void)
{
    static struct timespec last;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (sh_worker_sessions > 0 && now.tv_sec == last.tv_sec) {
	if (sh_trim_timer == 0)
	    sh_trim_timer = event_timer_add(1000, sh_worker_trim_now, NULL);
	return;
    }
    last = now;
    if (sh_trim_timer != 0) {
	(void) event_timer_cancel(sh_trim_timer);
	sh_trim_timer = 0;
    }
    (void) malloc_trim(0);
}

void session_host_session_end(void)
{
    if (!sh_in_worker)
	msg_panic("session_host_session_end: not in a worker");
    if (sh_worker_sessions <= 0)
	msg_panic("session_host_session_end: no session");
    sh_worker_sessions--;
    sh_worker_send_byte(SH_MSG_END);
    sh_worker_trim();
    if (sh_worker_sessions == 0 && !sh_worker_retiring)
	sh_worker_idle();
}

/* session_host_retiring - the worker takes no new sessions */
bool session_host_retiring(void)
{
    return sh_worker_retiring;
}

/* sh_close_all_but - close every descriptor >= 3 but keep[0..n-1] */
static void sh_close_all_but(const int *keep, size_t n)
{
    int lo = 3;

    for (;;) {
	int next = INT_MAX;

	for (size_t i = 0; i < n; i++)
	    if (keep[i] >= lo && keep[i] < next)
		next = keep[i];
	if (next > lo)
	    (void) close_range((unsigned) lo, next == INT_MAX ? ~0U : (unsigned) next - 1, 0);
	if (next == INT_MAX)
	    break;
	lo = next + 1;
    }
}

/* sh_scrub - wipe and free, in a new worker, what belongs to other
 * sessions: the tokens and input of the redeems in flight, and the
 * sessions queued for other workers (their descriptors are closed by
 * sh_close_all_but; the auth requests stay with auth_async's pool,
 * which the worker never uses) */
static void sh_scrub(void)
{
    struct sh_pending *p, *next_p;
    struct sh_queued *q, *next_q;

    for (p = sh_pendings; p; p = next_p) {
	next_p = p->next;
	if (p->token)
	    memset(p->token->data, 0, str_len(p->token));
	if (p->input)
	    memset(p->input->data, 0, str_len(p->input));
	str_free(&p->token);
	str_free(&p->input);
	mem_free(&p);
    }
    sh_pendings = NULL;
    sh_pending_count = 0;
    for (size_t i = 0; i < sh_worker_count; i++)
	for (q = sh_workers[i].queue; q; q = next_q) {
	    next_q = q->next;
	    memset(q->msg->data, 0, str_len(q->msg));
	    str_free(&q->msg);
	    mem_free(&q);
	}
    mem_free(&sh_workers);
    sh_worker_count = sh_worker_cap = 0;
}

/* sh_worker_main - the new worker: become uid/gid, serve, exit */
static _Noreturn void sh_worker_main(int sock, uid_t uid, gid_t gid, pid_t parent)
{
    struct sigaction sa;
    const char *err;
    int keep[2];
    long half;

    sh_in_worker = true;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);	/* a reload: the dispatcher's EOF */
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);	/* a stop: go now */
    sigaction(SIGCHLD, &sa, NULL);
    (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
	_exit(0);

    /* Nothing of the dispatcher's: no listener, no status pipe, no
     * other worker's socket, no other client, no auth connection. */
    event_reset_after_fork();
    closelog();				/* syslog(3) reconnects if it is used */
    keep[0] = sock;
    keep[1] = msg_file_descriptor();
    sh_close_all_but(keep, keep[1] >= 0 ? 2 : 1);
    sh_scrub();

    if (priv_drop_ids(uid, gid, (gid_t) -1, NULL, &err) < 0)
	msg_fatal("worker for uid %ld gid %ld: %s", (long) uid, (long) gid, err);
    if (chdir("/") < 0)
	msg_warn("chdir /: %m");
    sh_worker_sock = sock;
    (void) sock_set_nonblock(sock, true);
    /* Fixed thresholds: glibc raises its mmap threshold after a big
     * block is freed, and the next mailbox snapshot would then come from
     * the heap and fragment it; below 64 KiB blocks come from the heap,
     * bigger ones are mapped and go back at free(). */
    (void) mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    (void) mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    if (sh_spec->worker_init)
	sh_spec->worker_init();
    event_add_read(sock, sh_worker_input, NULL);
    if (msg_verbose)
	msg_info("worker for uid %ld started", (long) uid);

    half = var_daemon_timeout > 1 ? var_daemon_timeout / 2 : 1;
    while (!sh_worker_retiring || sh_worker_sessions > 0) {
	server_watchdog_reset();
	(void) event_loop_once((int) (half > INT_MAX / 1000 ? INT_MAX : half * 1000));
    }
    if (msg_verbose)
	msg_info("worker for uid %ld done", (long) uid);
    exit(0);
}

/* ------------------------------------------------------------------ */
/* Dispatcher: workers                                                */

static void sh_worker_readable(int fd, void *ctx);
static void sh_worker_writable(int fd, void *ctx);

/* sh_live_workers - processes not reaped yet */
static size_t sh_live_workers(void)
{
    size_t n = 0;

    for (size_t i = 0; i < sh_worker_count; i++)
	if (sh_workers[i].pid > 0)
	    n++;
    return n;
}

/* sh_reap - collect exited workers */
static void sh_reap(bool block)
{
    int status;
    pid_t pid;

    while (sh_live_workers() > 0 && (pid = waitpid(-1, &status, block ? 0 : WNOHANG)) != 0) {
	if (pid < 0) {
	    if (errno == EINTR)
		continue;
	    break;
	}
	for (size_t i = 0; i < sh_worker_count; i++) {
	    struct sh_worker *w = sh_workers + i;

	    if (w->pid != pid)
		continue;
	    if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
		msg_warn("worker %ld (uid %ld) killed by signal %d", (long) pid, (long) w->uid,
			 WTERMSIG(status));
	    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		msg_warn("worker %ld (uid %ld) exit status %d", (long) pid, (long) w->uid,
			 WEXITSTATUS(status));
	    w->pid = 0;
	    break;
	}
    }
}

/* sh_reap_cb - now and then, while workers are winding down */
static void sh_reap_cb(void *ctx)
{
    bool closing = false;

    (void) ctx;
    sh_reap_timer = 0;
    sh_reap(false);
    for (size_t i = 0; i < sh_worker_count; i++)
	if (sh_workers[i].pid > 0 && sh_workers[i].fd < 0)
	    closing = true;
    if (closing)
	sh_reap_timer = event_timer_add(200, sh_reap_cb, NULL);
}

/* sh_worker_close - close the dispatcher's end: the worker retires */
static void sh_worker_close(struct sh_worker *w)
{
    struct sh_queued *q;

    if (w->fd >= 0) {
	event_remove(w->fd);
	(void) close(w->fd);
	w->fd = -1;
    }
    while ((q = w->queue) != NULL) {
	w->queue = q->next;
	sh_reply_close(q->client_fd, sh_spec->reply_temp_failure);
	str_free(&q->msg);
	mem_free(&q);
    }
    w->queue_tail = &w->queue;
    if (sh_reap_timer == 0)
	sh_reap_timer = event_timer_add(50, sh_reap_cb, NULL);
}

/* sh_worker_flush - send the queued sessions while the socket takes them */
static void sh_worker_flush(struct sh_worker *w)
{
    struct sh_queued *q;

    while ((q = w->queue) != NULL) {
	if (sock_send_fd(w->fd, q->client_fd, str_cstr(q->msg), str_len(q->msg)) < 0) {
	    if (errno == EAGAIN || errno == EWOULDBLOCK) {
		event_add_write(w->fd, sh_worker_writable, w);
		return;
	    }
	    msg_warn("passing a session to worker %ld: %m", (long) w->pid);
	    sh_worker_close(w);
	    return;
	}
	(void) close(q->client_fd);
	w->queue = q->next;
	str_free(&q->msg);
	mem_free(&q);
    }
    w->queue_tail = &w->queue;
    event_remove_write(w->fd);
}

/* sh_worker_writable - a blocked worker socket takes datagrams again */
static void sh_worker_writable(int fd, void *ctx)
{
    size_t i = (size_t) ctx;

    (void) fd;
    sh_worker_flush(sh_workers + i);
}

/* sh_worker_readable - a worker reports (or exits) */
static void sh_worker_readable(int fd, void *ctx)
{
    size_t i = (size_t) ctx;
    struct sh_worker *w = sh_workers + i;
    char buf[64];
    ssize_t n;

    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
	for (ssize_t k = 0; k < n; k++) {
	    if (buf[k] == SH_MSG_END) {
		if (w->sessions > 0)
		    w->sessions--;
	    } else if (buf[k] == SH_MSG_IDLE) {
		if (w->sessions == 0 && w->queue == NULL) {
		    sh_worker_close(w);
		    return;
		}
	    } else {
		msg_warn("worker %ld (uid %ld) sent an unknown message", (long) w->pid, (long) w->uid);
	    }
	}
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
	if (w->sessions > 0)
	    msg_warn("worker %ld (uid %ld) went away with %ld session%s", (long) w->pid,
		     (long) w->uid, w->sessions, w->sessions == 1 ? "" : "s");
	w->sessions = 0;
	sh_worker_close(w);
    }
}

/* sh_worker_new - fork a worker for uid/gid; NULL on failure */
static struct sh_worker *sh_worker_new(uid_t uid, gid_t gid)
{
    struct sh_worker *w = NULL;
    int sv[2];
    pid_t pid, parent = getpid();
    size_t i;

    for (i = 0; i < sh_worker_count; i++)
	if (sh_workers[i].pid == 0 && sh_workers[i].fd < 0)
	    break;
    if (i == sh_worker_count) {
	if (sh_worker_count == sh_worker_cap) {
	    sh_worker_cap = sh_worker_cap ? sh_worker_cap * 2 : 16;
	    sh_workers = mem_realloc(sh_workers, mem_size_mul(sh_worker_cap, sizeof(*sh_workers)));
	}
	sh_worker_count++;
	memset(sh_workers + i, 0, sizeof(*sh_workers));
	sh_workers[i].fd = -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
	msg_warn("socketpair: %m");
	return NULL;
    }
    switch ((pid = fork())) {
    case -1:
	msg_warn("fork: %m");
	(void) close(sv[0]);
	(void) close(sv[1]);
	return NULL;
    case 0:
	sh_worker_main(sv[1], uid, gid, parent);
    default:
	break;
    }
    (void) close(sv[1]);
    (void) sock_set_nonblock(sv[0], true);
    w = sh_workers + i;
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->uid = uid;
    w->gid = gid;
    w->fd = sv[0];
    w->queue_tail = &w->queue;
    event_add_read(w->fd, sh_worker_readable, (void *) i);
    if (msg_verbose)
	msg_info("worker %ld for uid %ld", (long) pid, (long) uid);
    return w;
}

/* sh_worker_for - a worker of uid/gid with room, or a new one */
static struct sh_worker *sh_worker_for(uid_t uid, gid_t gid)
{
    for (size_t i = 0; i < sh_worker_count; i++) {
	struct sh_worker *w = sh_workers + i;

	if (w->pid > 0 && w->fd >= 0 && w->uid == uid && w->gid == gid
	    && w->sessions < sh_session_limit)
	    return w;
    }
    sh_reap(false);
    if ((long) sh_live_workers() >= sh_worker_limit)
	return NULL;
    return sh_worker_new(uid, gid);
}

/* ------------------------------------------------------------------ */
/* Dispatcher: sessions                                               */

/* sh_pending_free - unlink and free */
static void sh_pending_free(struct sh_pending *p)
{
    if (p->prev)
	p->prev->next = p->next;
    else
	sh_pendings = p->next;
    if (p->next)
	p->next->prev = p->prev;
    sh_pending_count--;
    if (p->token)
	memset(p->token->data, 0, str_len(p->token));
    str_free(&p->token);
    str_free(&p->input);
    mem_free(&p);
}

/* sh_pass - give an authenticated session to a worker */
static void sh_pass(struct sh_pending *p, const char *user, const char *root, long uid, long gid,
		    long quota)
{
    struct sh_worker *w;
    struct sh_queued *q;
    struct str *msg;

    if (uid <= 0 || gid <= 0) {
	msg_warn("user=<%s>: refusing a privileged id (uid %ld gid %ld)", user, uid, gid);
	sh_reply_close(p->client_fd, sh_spec->reply_perm_failure);
	return;
    }
    if (priv_is_root() && (uid_t) uid == sh_mail_owner_uid) {
	/* the mail owner reaches the queue and private/ (auth's socket) */
	msg_warn("user=<%s>: refusing the mail owner's uid %ld for a mailbox", user, uid);
	sh_reply_close(p->client_fd, sh_spec->reply_perm_failure);
	return;
    }
    if (!priv_is_root() && (uid_t) uid != getuid()) {
	/* started without root (master.cf unpriv y, or by hand): no
	 * worker could become the mailbox's owner, and none may serve it
	 * as somebody else */
	msg_warn("user=<%s>: mailbox uid %ld, but %s runs as uid %ld, not root "
		 "(master.cf: %s unix - n n ...)", user, uid, sh_spec->name, (long) getuid(),
		 sh_spec->name);
	sh_reply_close(p->client_fd, sh_spec->reply_perm_failure);
	return;
    }
    if ((w = sh_worker_for((uid_t) uid, (gid_t) gid)) == NULL) {
	msg_warn("user=<%s>, client=[%s]: %s_worker_limit (%ld) reached, all full", user, p->addr,
		 sh_spec->name, sh_worker_limit);
	sh_reply_close(p->client_fd, sh_spec->reply_temp_failure);
	return;
    }
    msg = str_new(SH_DGRAM_MAX);
    ipc_encode_str(msg, SH_ATTR_USER, user);
    ipc_encode_str(msg, SH_ATTR_ROOT, root);
    ipc_encode_long(msg, SH_ATTR_QUOTA, quota);
    ipc_encode_str(msg, SH_ATTR_ADDR, p->addr);
    ipc_encode_str(msg, SH_ATTR_PORT, p->port);
    ipc_encode_attr(msg, SH_ATTR_INPUT, str_cstr(p->input), str_len(p->input));
    ipc_encode_str(msg, SH_ATTR_TAG, p->tag);
    if (p->tls[0])
	ipc_encode_str(msg, SH_ATTR_TLS, p->tls);
    ipc_encode_end(msg);
    q = mem_zalloc(sizeof(*q));
    q->client_fd = p->client_fd;
    q->msg = msg;
    *w->queue_tail = q;
    w->queue_tail = &q->next;
    w->sessions++;
    p->client_fd = -1;
    sh_worker_flush(w);
}

/* sh_redeemed - auth's answer to a redeem */
static void sh_redeemed(struct auth_async *h, const struct auth_redeem_reply *rr,
			const char *error, void *ctx)
{
    struct sh_pending *p = ctx;

    (void) h;
    p->req = NULL;
    if (rr == NULL || error != NULL) {
	msg_warn("auth service: %s", error ? error : "no answer");
	sh_reply_close(p->client_fd, sh_spec->reply_temp_failure);
    } else if (strcmp(rr->status, AUTH_STAT_OK) != 0) {
	msg_warn("client=[%s]: token refused by auth (forged, replayed or expired)", p->addr);
	sh_reply_close(p->client_fd, sh_spec->reply_auth_failed);
    } else if (rr->user == NULL || rr->mail_location == NULL || *rr->mail_location != '/'
	       || strlen(rr->user) > 1024 || strlen(rr->mail_location) > 4096) {
	msg_warn("client=[%s]: bad redeem reply for user <%.100s>", p->addr,
		 rr->user ? rr->user : "");
	sh_reply_close(p->client_fd, sh_spec->reply_perm_failure);
    } else {
	sh_pass(p, rr->user, rr->mail_location, rr->uid, rr->gid, rr->quota);
    }
    p->client_fd = -1;
    sh_pending_free(p);
}

/* sh_redeem - a complete hand-over: ask auth who it is */
static void sh_redeem(struct sh_handover *h, const struct ipc_list *list)
{
    struct sh_pending *p = mem_zalloc(sizeof(*p));
    const char *addr = ipc_list_get(list, LOGIN_ATTR_CLIENT_ADDR);
    const char *port = ipc_list_get(list, LOGIN_ATTR_CLIENT_PORT);

    p->client_fd = h->client_fd;
    h->client_fd = -1;
    p->token = str_new(LOGIN_TOKEN_MAX);
    p->input = str_new(LOGIN_INPUT_MAX);
    fmt_buf_cut(p->addr, sizeof(p->addr), "%s", addr ? addr : "");
    fmt_buf_cut(p->port, sizeof(p->port), "%s", port ? port : "");
    for (size_t i = 0; i < list->count; i++) {
	const struct ipc_attr *a = list->attrs + i;

	if (strcmp(a->name, LOGIN_ATTR_TOKEN) == 0)
	    str_setn_or_panic(p->token, a->value, a->len);
	else if (strcmp(a->name, LOGIN_ATTR_INPUT) == 0)
	    str_setn_or_panic(p->input, a->value, a->len);
	else if (strcmp(a->name, LOGIN_ATTR_LOGIN_TAG) == 0)
	    str_copy_out_or_panic(p->tag, sizeof(p->tag), a->value);
	else if (strcmp(a->name, LOGIN_ATTR_TLS) == 0)
	    str_copy_out_or_panic(p->tls, sizeof(p->tls), a->value);
    }
    p->next = sh_pendings;
    if (sh_pendings)
	sh_pendings->prev = p;
    sh_pendings = p;
    sh_pending_count++;
    p->req = auth_async_redeem(str_cstr(p->token), sh_spec->auth_service, sh_redeemed, p);
}

/* ------------------------------------------------------------------ */
/* Dispatcher: the hand-over, on the event loop                        */

/* sh_handover_check - exactly token, client_address, client_port and
 * input, and maybe login_tag and tls, each once, within bounds */
static bool sh_handover_check(const struct ipc_list *list, const char **why)
{
    static const char *const names[] = {
	LOGIN_ATTR_TOKEN, LOGIN_ATTR_CLIENT_ADDR, LOGIN_ATTR_CLIENT_PORT, LOGIN_ATTR_INPUT,
	LOGIN_ATTR_LOGIN_TAG, LOGIN_ATTR_TLS,
    };
    static const size_t limits[] = {
	LOGIN_TOKEN_MAX, 63, 15, LOGIN_INPUT_MAX, LOGIN_TAG_MAX, LOGIN_TLS_MAX,
    };
    enum { N_REQUIRED = 4, N_NAMES = 6, K_INPUT = 3, K_TAG = 4, K_TLS = 5 };
    int seen[N_NAMES] = {0};

    for (size_t i = 0; i < list->count; i++) {
	const struct ipc_attr *a = list->attrs + i;
	size_t k;

	for (k = 0; k < N_NAMES; k++)
	    if (strcmp(a->name, names[k]) == 0)
		break;
	if (k == N_NAMES) {
	    *why = "unexpected attribute";
	    return false;
	}
	if (seen[k]++) {
	    *why = "repeated attribute";
	    return false;
	}
	if (a->len > limits[k]) {
	    *why = "attribute too long";
	    return false;
	}
	if (k != K_INPUT && memchr(a->value, 0, a->len)) {
	    *why = "NUL in a text attribute";
	    return false;
	}
	for (size_t j = 0; k == K_TAG && j < a->len; j++) {
	    if ((unsigned char) a->value[j] < 0x21 || (unsigned char) a->value[j] > 0x7e) {
		*why = "bad login_tag";
		return false;
	    }
	}
	for (size_t j = 0; k == K_TLS && j < a->len; j++) {
	    if ((unsigned char) a->value[j] < 0x20 || (unsigned char) a->value[j] > 0x7e) {
		*why = "bad tls";
		return false;
	    }
	}
    }
    for (size_t k = 0; k < N_REQUIRED; k++) {
	if (!seen[k]) {
	    *why = "missing attribute";
	    return false;
	}
    }
    return true;
}

/* sh_handover_connect - a login process connects: announce */
static void *sh_handover_connect(struct stream *s)
{
    struct sh_handover *h = mem_zalloc(sizeof(*h));
    struct str *hello = str_new(256);

    h->fd = stream_fd(s);
    h->client_fd = -1;
    h->buf = str_new(SH_HANDOVER_MAX);
    ipc_handshake_encode(hello, LOGIN_PROTO, LOGIN_VERSION);
    /* a fresh socket's buffer takes these few bytes at once */
    if (send(h->fd, str_cstr(hello), str_len(hello), MSG_DONTWAIT | MSG_NOSIGNAL)
	!= (ssize_t) str_len(hello)) {
	msg_warn("hand-over: sending the announcement: %m");
	h->done = true;
    }
    str_free(&hello);
    return h;
}

/* sh_handover_input - the descriptor, then the attribute list, as they
 * come: never waits */
static bool sh_handover_input(struct stream *s, void *ctx)
{
    struct sh_handover *h = ctx;
    struct ipc_list list;
    struct stat st;
    struct str *ok;
    const char *err;
    char buf[16384], byte = 0;
    ssize_t n;
    long used;

    (void) s;
    if (h->done)
	return false;
    if (h->client_fd < 0) {
	n = sock_recv_fd(h->fd, &h->client_fd, &byte, 1);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
	    return true;
	if (n <= 0 || h->client_fd < 0 || byte != LOGIN_FD_BYTE) {
	    msg_warn("hand-over from the login process: %s",
		     n < 0 ? strerror(errno) : n == 0 ? "EOF before the descriptor"
		     : "no descriptor in the hand-over");
	    return false;
	}
	if (fstat(h->client_fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
	    msg_warn("hand-over from the login process: the descriptor passed is not a socket");
	    return false;
	}
    }
    for (;;) {
	n = recv(h->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
	    break;
	if (n <= 0) {
	    msg_warn("hand-over from the login process: %s",
		     n == 0 ? "EOF in the attributes" : strerror(errno));
	    return false;
	}
	if (!str_try_append(h->buf, buf, (size_t) n)) {
	    msg_warn("hand-over from the login process: too long");
	    return false;
	}
    }
    ipc_list_init(&list);
    used = ipc_decode_list(str_cstr(h->buf), str_len(h->buf), &list, &err);
    if (used == 0) {
	ipc_list_fini(&list);
	return true;				/* the rest is on its way */
    }
    if (used < 0 || (size_t) used != str_len(h->buf) || !sh_handover_check(&list, &err)) {
	msg_warn("hand-over from the login process: %s",
		 used < 0 ? err : (size_t) used != str_len(h->buf) ? "data after the attributes" : err);
	ipc_list_fini(&list);
	return false;
    }
    ok = str_new(64);
    ipc_encode_str(ok, LOGIN_ATTR_STATUS, LOGIN_STAT_OK);
    ipc_encode_end(ok);
    if (send(h->fd, str_cstr(ok), str_len(ok), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t) str_len(ok)) {
	msg_warn("hand-over: answering: %m");
    } else {
	sh_redeem(h, &list);
    }
    str_free(&ok);
    ipc_list_fini(&list);
    return false;				/* done with the login process */
}

/* sh_handover_disconnect - the login connection ends */
static void sh_handover_disconnect(struct stream *s, void *ctx)
{
    struct sh_handover *h = ctx;

    (void) s;
    if (h == NULL)
	return;
    if (h->client_fd >= 0)
	(void) close(h->client_fd);
    str_free(&h->buf);
    mem_free(&h);
}

/* ------------------------------------------------------------------ */
/* Dispatcher: life cycle                                             */

/* sh_post_init - parameters */
static void sh_post_init(int argc, char **argv)
{
    gid_t gid;

    (void) argc;
    (void) argv;
    if (!priv_lookup(var_mail_owner, &sh_mail_owner_uid, &gid))
	sh_mail_owner_uid = (uid_t) -1;
    sh_linger = sh_param("worker_linger", true, SH_DEF_LINGER, 0);
    sh_session_limit = sh_param("worker_session_limit", false, SH_DEF_SESSION_LIMIT, 1);
    sh_worker_limit = sh_param("worker_limit", false, SH_DEF_WORKER_LIMIT, 1);
}

/* sh_on_exit - finish the redeems in flight, retire every worker and
 * wait for them: a reload lets their sessions finish, and master's stop
 * (SIGTERM) still reaches them through sh_on_terminate */
static void sh_on_exit(void)
{
    long long deadline_ms = (long long) var_ipc_timeout * 1000;

    if (sh_in_worker)
	return;
    while (sh_pending_count > 0 && deadline_ms > 0) {
	(void) event_loop_once(100);
	deadline_ms -= 100;
    }
    auth_async_shutdown();
    for (size_t i = 0; i < sh_worker_count; i++)
	sh_worker_close(sh_workers + i);
    sh_reap(true);
}

/* sh_on_terminate - SIGTERM: the workers too (async-signal-safe) */
static void sh_on_terminate(void)
{
    if (sh_in_worker)
	return;
    for (size_t i = 0; i < sh_worker_count; i++)
	if (sh_workers[i].pid > 0)
	    (void) kill(sh_workers[i].pid, SIGTERM);
}

/* session_host_main - the dispatcher on the MULTI skeleton */
int session_host_main(int argc, char **argv, const struct session_host_spec *spec)
{
    static struct server_spec sspec;

    if (spec == NULL || spec->name == NULL || spec->session_start == NULL
	|| spec->auth_service == NULL || spec->reply_auth_failed == NULL
	|| spec->reply_temp_failure == NULL)
	msg_panic("session_host_main: incomplete spec");
    sh_spec = spec;
    if (spec->reply_perm_failure == NULL) {
	static struct session_host_spec copy;

	copy = *spec;
	copy.reply_perm_failure = spec->reply_temp_failure;
	sh_spec = &copy;
    }
    sspec.kind = SERVER_MULTI;
    sspec.name = spec->name;
    /* one long-lived root process: its workers hold the sessions, and
     * it exits only on a reload or a stop (or a changed table) */
    sspec.flags = SERVER_FLAG_NO_IDLE_EXIT | SERVER_FLAG_NO_MAX_USE;
    sspec.post_init = sh_post_init;
    sspec.on_exit = sh_on_exit;
    sspec.on_terminate = sh_on_terminate;
    sspec.multi_connect = sh_handover_connect;
    sspec.multi_input = sh_handover_input;
    sspec.multi_disconnect = sh_handover_disconnect;
    sspec.client_timeout = 0;			/* ipc_timeout */
    sspec.multi_framing = SERVER_FRAME_NONE;
    return server_main(argc, argv, &sspec);
}
