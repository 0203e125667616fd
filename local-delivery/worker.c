/* worker.c - long-lived delivery workers, one per set of user ids.
 *
 * When root, local-delivery does not fork a child for every mailbox
 * delivery. For each (uid, gid, supplementary gid) it needs, it forks
 * ONE worker process that, before it reads a single job:
 *   - closes what it must not keep (the client connection, master's
 *     listeners and status pipe, the tables, other workers' sockets,
 *     queue files; only stderr and the log file stay),
 *   - drops privileges fully and irrevocably with priv_drop_ids()
 *     (setgroups, setgid, setuid: real, effective and saved ids, checked
 *     that 0 cannot be regained) and checks the result once more,
 *   - reports "ready" with its ids; the parent compares them.
 * After that the worker serves jobs (job.c) over an AF_UNIX
 * SOCK_SEQPACKET socketpair, one datagram per message, strictly
 * alternating: the parent sends one job (ipc.h attribute framing, at
 * most WK_MSG_MAX bytes, plus, for jobs that read the message, the
 * read-only queue file descriptor as SCM_RIGHTS) and waits for one
 * result. The parent never opens a path a recipient controls; the
 * worker never sees a job for other ids.
 *
 * Lifetime: the parent retires a worker (closes the socket; the worker
 * reads EOF and exits) after WK_MAX_JOBS jobs, when it has been unused
 * for WK_IDLE_RETIRE seconds, when the table is full and another user
 * needs a slot (least recently used), and at exit. A worker also exits
 * by itself when its parent goes away (EOF) or after WK_IDLE_EXIT idle
 * seconds, which is longer than the parent's limit, so that the parent
 * never hands a job to a worker that is about to leave.
 *
 * Failures: a worker that cannot be started or dropped, dies during a
 * job, gives no answer within local_delivery_timeout, answers something
 * that does not parse or carries descriptors, makes the job a defer
 * (4.3.0), and is killed and reaped: never "sent"
 * without the worker's own report that the fsyncs were done. A job that
 * could not even be handed over (the worker was gone) is retried once
 * with a new worker, as nothing of it can have happened.
 *
 * When not root (the sandbox), jobs run in this process. */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "sock.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "resolve.h"
#include "table.h"

/* This program. */
#include "local.h"

#define WK_MAX			8		/* workers per process */
#define WK_MAX_JOBS		1000		/* jobs per worker */
#define WK_IDLE_RETIRE		60		/* seconds: the parent retires it */
#define WK_IDLE_EXIT		(2 * WK_IDLE_RETIRE + 10)	/* it leaves itself */
#define WK_MSG_MAX		(160 * 1024)	/* one datagram, either way */
#define WK_PAYLOAD_MAX		(TABLE_ENTRY_MAX + 64)	/* .forward, :include: */
#define WK_FD_SCAN_MAX		4096
#define WK_REAP_WAIT_MS		1000	/* a retired worker that stays: SIGKILL */

struct wk {
    pid_t pid;			/* 0: a free slot */
    int fd;			/* our end of the socketpair */
    uid_t uid;
    gid_t gid;
    gid_t extra;
    unsigned jobs;
    long long last_ms;		/* CLOCK_MONOTONIC of the last use */
};

static struct wk wk_table[WK_MAX];
static int wk_root = -1;		/* running as root: 1, not: 0, unknown: -1 */

/* The parent's message buffers, kept for the process's life. */
static struct str *wk_out;
static char *wk_buf;
static struct ipc_list wk_list;

/*
 * The job message, attributes in this order:
 *   job           "KIND DATA_OFFSET COPY_FLAGS NOW QUOTA MBOX_FLAGS
 *                  SIZE_LIMIT MBOX_QUOTA UID": nine decimal numbers
 *                  without signs, separated by single spaces
 *   path          the mailbox or file (for a .forward: the candidate
 *                 paths of forward_path, one per line)
 *   sender        the envelope sender, for Return-Path: and From_
 *   delivered_to  for Delivered-To:
 * The result: "result" ("STATUS SENT_COUNT"), "dsn", "reason", "payload"
 * (bytes). Few attributes and no printf: this runs for every delivery.
 */
#define WK_JOB_NUMS	9
static const char *const wk_job_names[] = {"job", "path", "sender", "delivered_to"};
static const char *const wk_result_names[] = {"result", "dsn", "reason", "payload"};

/* The worker's greeting. */
#define WA_READY	"ready"
#define WA_ERROR	"error"

#define MB_CREATE		(1 << 0)
#define MB_CREATE_PARENT	(1 << 1)
#define MB_DOTLOCK_REQUIRED	(1 << 2)
#define MB_CHECK_OWNER		(1 << 3)
#define MB_ALL			((1 << 4) - 1)
#define COPY_ALL	(COPY_FROM_LINE | COPY_QUOTE | COPY_BLANK | COPY_RETURN_PATH \
			 | COPY_DELIVERED_TO)

/* wk_now_ms - monotonic milliseconds */
static long long wk_now_ms(void)
{
    struct timespec ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the messages */

/* wk_put_nums - n non-negative numbers as "N N N" (negative ones as 0) */
static void wk_put_nums(struct str *out, const char *name, const long *v, size_t n)
{
    char buf[WK_JOB_NUMS * 21], digits[21];
    size_t len = 0, i, k;
    unsigned long u;

    for (i = 0; i < n && i < WK_JOB_NUMS; i++) {
	if (i > 0)
	    buf[len++] = ' ';
	u = v[i] > 0 ? (unsigned long) v[i] : 0;
	k = 0;
	do {
	    digits[k++] = (char) ('0' + u % 10);
	    u /= 10;
	} while (u > 0);
	while (k > 0)
	    buf[len++] = digits[--k];
    }
    ipc_encode_attr(out, name, buf, len);
}

/* wk_get_nums - exactly n numbers in [0, LONG_MAX] as wk_put_nums wrote them */
static bool wk_get_nums(const char *text, long *v, size_t n)
{
    size_t i, digits;
    long val;

    for (i = 0; i < n; i++) {
	if (i > 0 && *text++ != ' ')
	    return false;
	for (val = 0, digits = 0; *text >= '0' && *text <= '9'; text++, digits++) {
	    if (digits > 0 && val == 0)
		return false;		/* no leading zeros */
	    if (val > (LONG_MAX - (*text - '0')) / 10)
		return false;
	    val = val * 10 + (*text - '0');
	}
	if (digits == 0)
	    return false;
	v[i] = val;
    }
    return *text == 0;
}

/* ld_worker_encode_job - the job message */
void ld_worker_encode_job(struct str *out, const struct ld_job *job)
{
    const struct ld_msg *msg = job->msg;
    long v[WK_JOB_NUMS];

    v[0] = (long) job->kind;
    v[1] = msg ? (long) msg->data_offset : 0;
    v[2] = (long) job->spec.flags;
    v[3] = (long) job->spec.now;
    v[4] = job->quota;
    v[5] = (job->mbox.create ? MB_CREATE : 0) | (job->mbox.create_parent ? MB_CREATE_PARENT : 0)
	| (job->mbox.dotlock_required ? MB_DOTLOCK_REQUIRED : 0)
	| (job->mbox.check_owner ? MB_CHECK_OWNER : 0);
    v[6] = job->mbox.size_limit;
    v[7] = job->mbox.quota;
    v[8] = (long) job->uid;
    str_reset(out);
    wk_put_nums(out, wk_job_names[0], v, WK_JOB_NUMS);
    ipc_encode_str(out, wk_job_names[1], job->path);
    ipc_encode_str(out, wk_job_names[2], job->spec.sender);
    ipc_encode_str(out, wk_job_names[3], job->spec.delivered_to);
    ipc_encode_end(out);
}

/* wk_check_names - exactly these attributes, in this order, no NULs
 * unless the last one may have them */
static int wk_check_names(const struct ipc_list *list, const char *const *names, size_t n,
			  bool last_binary, const char **error_r)
{
    static char errbuf[128];
    size_t i;

    if (list->count != n) {
	fmt_buf_cut(errbuf, sizeof(errbuf), "%zu attributes, expected %zu", list->count, n);
	*error_r = errbuf;
	return -1;
    }
    for (i = 0; i < n; i++) {
	if (strcmp(list->attrs[i].name, names[i]) != 0) {
	    fmt_buf_cut(errbuf, sizeof(errbuf), "attribute %zu is \"%.64s\", expected \"%s\"",
			   i, list->attrs[i].name, names[i]);
	    *error_r = errbuf;
	    return -1;
	}
	if (!(last_binary && i == n - 1) && strlen(list->attrs[i].value) != list->attrs[i].len) {
	    fmt_buf_cut(errbuf, sizeof(errbuf), "NUL byte in attribute \"%s\"", names[i]);
	    *error_r = errbuf;
	    return -1;
	}
    }
    return 0;
}

/* ld_worker_decode_job - the job message, strictly */
int ld_worker_decode_job(const struct ipc_list *list, struct ld_job *job, struct ld_msg *msg,
			 const char **error_r)
{
    long v[WK_JOB_NUMS];

    if (wk_check_names(list, wk_job_names, sizeof(wk_job_names) / sizeof(wk_job_names[0]),
		       false, error_r) < 0)
	return -1;
    if (!wk_get_nums(list->attrs[0].value, v, WK_JOB_NUMS)) {
	*error_r = "malformed job numbers";
	return -1;
    }
    if (v[0] < LD_JOB_MAILDIR || v[0] > LD_JOB_KIND_MAX || v[0] == LD_JOB_COMMAND
	|| v[2] > COPY_ALL || v[5] > MB_ALL || v[8] > 0x7fffffffL) {
	*error_r = "job number out of range";
	return -1;
    }
    if (list->attrs[1].len == 0) {
	*error_r = "job without a path";
	return -1;
    }
    memset(job, 0, sizeof(*job));
    memset(msg, 0, sizeof(*msg));
    msg->fd = -1;
    msg->queue_id = "";
    msg->data_offset = (off_t) v[1];
    msg->sender = list->attrs[2].value;
    msg->dsn_envid = msg->dsn_ret = "";
    job->kind = (enum ld_job_kind) v[0];
    job->msg = ld_job_needs_msg(job->kind) ? msg : NULL;
    job->spec.flags = (int) v[2];
    job->spec.now = (time_t) v[3];
    job->quota = v[4];
    job->mbox.create = (v[5] & MB_CREATE) != 0;
    job->mbox.create_parent = (v[5] & MB_CREATE_PARENT) != 0;
    job->mbox.dotlock_required = (v[5] & MB_DOTLOCK_REQUIRED) != 0;
    job->mbox.check_owner = (v[5] & MB_CHECK_OWNER) != 0;
    job->mbox.size_limit = v[6];
    job->mbox.quota = v[7];
    job->uid = (uid_t) v[8];
    job->path = list->attrs[1].value;
    job->spec.sender = list->attrs[2].value;
    job->spec.delivered_to = list->attrs[3].value;
    return 0;
}

/* ld_worker_encode_result - the answer */
void ld_worker_encode_result(struct str *out, const struct ld_result *res,
			     const struct str *payload)
{
    long v[2];

    v[0] = (long) res->status;
    v[1] = (long) res->sent_count;
    str_reset(out);
    wk_put_nums(out, wk_result_names[0], v, 2);
    ipc_encode_str(out, wk_result_names[1], res->dsn);
    ipc_encode_str(out, wk_result_names[2], res->reason);
    if (payload)
	ipc_encode_attr(out, wk_result_names[3], str_cstr(payload), str_len(payload));
    else
	ipc_encode_attr(out, wk_result_names[3], "", 0);
    ipc_encode_end(out);
}

/* ld_worker_decode_result - the answer, strictly */
int ld_worker_decode_result(const struct ipc_list *list, struct ld_result *res,
			    struct str *payload, const char **error_r)
{
    long v[2];

    if (wk_check_names(list, wk_result_names, 4, true, error_r) < 0)
	return -1;
    if (!wk_get_nums(list->attrs[0].value, v, 2) || v[0] > LD_DEFER || v[1] > 1000000) {
	*error_r = "bad numbers in a result";
	return -1;
    }
    if (list->attrs[1].len == 0 || list->attrs[1].len >= sizeof(res->dsn)
	|| list->attrs[2].len >= sizeof(res->reason)) {
	*error_r = "bad dsn or reason in a result";
	return -1;
    }
    if (list->attrs[3].len > 0 && (payload == NULL
				   || !str_try_setn(payload, list->attrs[3].value, list->attrs[3].len))) {
	*error_r = "unexpected or oversized payload in a result";
	return -1;
    }
    res->status = (int) v[0];
    memcpy(res->dsn, list->attrs[1].value, list->attrs[1].len + 1);
    memcpy(res->reason, list->attrs[2].value, list->attrs[2].len + 1);
    res->sent_count = (unsigned) v[1];
    return 0;
}

/* ---- datagrams with an optional descriptor (sock_send_fd/sock_recv_fd:
 * on a SOCK_SEQPACKET pair each call is one whole datagram) */

/*
 * wk_recv - one datagram of at most size - 1 bytes. With fd_r, at most
 * one descriptor may come along (*fd_r, else -1); without, none may.
 * Returns the length, 0 at EOF, -1 with *error_r (any descriptor that
 * came is closed).
 */
static ssize_t wk_recv(int sock, char *buf, size_t size, int *fd_r, const char **error_r)
{
    ssize_t n;
    int fd;

    if (fd_r)
	*fd_r = -1;
    if ((n = sock_recv_fd(sock, &fd, buf, size)) < 0) {
	/* EMSGSIZE: more descriptors than room for them (all closed) */
	*error_r = errno == EMSGSIZE ? "message too long" : strerror(errno);
	return -1;
    }
    if ((size_t) n >= size || (fd >= 0 && fd_r == NULL)) {
	*error_r = (size_t) n >= size ? "message too long" : "unexpected descriptors";
	if (fd >= 0)
	    (void) close(fd);
	errno = EPROTO;			/* not a timeout */
	return -1;
    }
    if (fd_r)
	*fd_r = fd;
    buf[n] = 0;
    return n;
}

/* wk_set_recv_timeout - a receive on sock waits at most seconds
 * (SO_RCVTIMEO: the recvmsg(2) itself is the wait, no poll(2) before
 * it; a SOCK_SEQPACKET receiver is not woken when its own sent
 * datagram is read, and EAGAIN is the timeout); false if it cannot be
 * set, which ends the worker before its first job */
static bool wk_set_recv_timeout(int sock, long seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};

    return setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
}

/* wk_decode - one datagram as one whole attribute list */
static int wk_decode(const char *buf, size_t len, struct ipc_list *list, const char **error_r)
{
    long used = ipc_decode_list(buf, len, list, error_r);

    if (used < 0)
	return -1;
    if ((size_t) used != len) {
	*error_r = used == 0 ? "incomplete message" : "data after the message";
	return -1;
    }
    return 0;
}

/* ---- the worker process */

/* wk_keep_fd - the descriptors a worker keeps: stdio, its socket and
 * the log file (a regular file open for appending) */
static bool wk_keep_fd(int fd, int sock)
{
    struct stat st;
    int fl;

    if (fd <= STDERR_FILENO || fd == sock)
	return true;
    if (fstat(fd, &st) < 0)
	return true;			/* not open */
    if (!S_ISREG(st.st_mode))
	return false;
    fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_ACCMODE) == O_WRONLY && (fl & O_APPEND) != 0;
}

/* wk_close_fds - close every descriptor the worker must not keep */
static void wk_close_fds(int sock)
{
    int fds[WK_FD_SCAN_MAX];
    size_t n = 0, i;
    struct dirent *de;
    long fd;
    DIR *dir;

    if ((dir = opendir("/proc/self/fd")) != NULL) {
	int dfd = dirfd(dir);

	while ((de = readdir(dir)) != NULL && n < WK_FD_SCAN_MAX) {
	    if (parse_long(de->d_name, &fd) && fd >= 0 && fd != dfd && fd <= 0x7fffffffL)
		fds[n++] = (int) fd;
	}
	(void) closedir(dir);
    }
    if (dir == NULL || n == WK_FD_SCAN_MAX) {
	for (n = 0; n < WK_FD_SCAN_MAX; n++)
	    fds[n] = (int) n;
    }
    for (i = 0; i < n; i++)
	if (!wk_keep_fd(fds[i], sock))
	    (void) close(fds[i]);
}

/* wk_hello - the greeting: ready with the ids, or an error */
static void wk_hello(int sock, const char *error)
{
    struct str *out = str_new(4096);
    char ids[128];

    if (error) {
	ipc_encode_attr(out, WA_ERROR, error, strlen(error));
    } else {
	fmt_buf_or_panic(ids, sizeof(ids), "%ld %ld", (long) getuid(), (long) getgid());
	ipc_encode_attr(out, WA_READY, ids, strlen(ids));
    }
    ipc_encode_end(out);
    (void) sock_send_fd(sock, -1, str_cstr(out), str_len(out));
    str_free(&out);
}

/* wk_serve - the worker's job loop; returns when it should exit */
static void wk_serve(int sock)
{
    char *buf = mem_alloc(WK_MSG_MAX + 1);
    struct str *out = str_new(WK_MSG_MAX), *payload = str_new(WK_PAYLOAD_MAX);
    struct ipc_list list;
    struct ld_result res;
    struct ld_job job;
    struct ld_msg msg;
    const char *err = "";
    unsigned jobs = 0;
    ssize_t n;
    int fd;

    ipc_list_init(&list);
    while (jobs < WK_MAX_JOBS) {
	if ((n = wk_recv(sock, buf, WK_MSG_MAX + 1, &fd, &err)) <= 0) {
	    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		msg_warn("delivery worker: bad job: %s", err);
	    break;			/* 0: the parent went away; EAGAIN: idle */
	}
	if (wk_decode(buf, (size_t) n, &list, &err) < 0
	    || ld_worker_decode_job(&list, &job, &msg, &err) < 0
	    || ((fd >= 0) != ld_job_needs_msg(job.kind)
		&& (err = fd >= 0 ? "unexpected descriptor" : "descriptor missing") != NULL)) {
	    msg_warn("delivery worker: bad job: %s", err);
	    if (fd >= 0)
		(void) close(fd);
	    break;
	}
	msg.fd = fd;
	ld_result_init(&res);
	str_reset(payload);
	ld_job_run(&job, &res, payload);
	if (res.status == LD_NONE)
	    ld_result_set(&res, LD_DEFER, "4.3.0", "internal error: no delivery result");
	if (fd >= 0)
	    (void) close(fd);
	ld_worker_encode_result(out, &res, payload);
	if (sock_send_fd(sock, -1, str_cstr(out), str_len(out)) < 0)
	    break;
	jobs++;
    }
    ipc_list_fini(&list);
    str_free(&out);
    str_free(&payload);
    mem_free(&buf);
}

/* wk_child - the new worker: clean up, drop, greet, serve, exit */
static void wk_child(int sock, uid_t uid, gid_t gid, gid_t extra) __attribute__((noreturn));

static void wk_child(int sock, uid_t uid, gid_t gid, gid_t extra)
{
    char name[64];
    const char *err;
    int null_fd;

    (void) signal(SIGHUP, SIG_IGN);	/* the parent's exit ends us */
    (void) signal(SIGTERM, SIG_DFL);
    (void) signal(SIGALRM, SIG_DFL);
    (void) alarm(0);
    ld_worker_forget();
    alias_fini();
    resolve_fini();
    fmt_buf_cut(name, sizeof(name), "%s", msg_progname());
    msg_init(name, msg_get_sinks());	/* closes syslog; it reopens itself */
    wk_close_fds(sock);
    if ((null_fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
	(void) dup2(null_fd, STDIN_FILENO);
	(void) dup2(null_fd, STDOUT_FILENO);
	if (null_fd > STDERR_FILENO)
	    (void) close(null_fd);
    }
    if (priv_drop_ids(uid, gid, extra, NULL, &err) < 0) {
	wk_hello(sock, err);
	_exit(1);
    }
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid
	|| uid == 0 || gid == 0) {
	wk_hello(sock, "the ids did not change as requested");
	_exit(1);
    }
    if (!wk_set_recv_timeout(sock, WK_IDLE_EXIT)) {
	wk_hello(sock, "cannot set the receive timeout");
	_exit(1);
    }
    wk_hello(sock, NULL);
    wk_serve(sock);
    _exit(0);
}

/* ---- the parent's side */

/*
 * wk_reap - close a worker's socket (it exits), optionally kill it;
 * returns its wait status. A worker is only ever retired between jobs,
 * so one that does not leave at once (its user can SIGSTOP it: it runs
 * with the user's ids) loses nothing by SIGKILL after WK_REAP_WAIT_MS.
 */
static int wk_reap(struct wk *w, bool kill_it)
{
    int status = 0, waited = 0;
    pid_t r;

    if (w->pid == 0)
	return 0;
    (void) close(w->fd);
    if (kill_it)
	(void) kill(w->pid, SIGKILL);
    while (!kill_it) {
	if ((r = waitpid(w->pid, &status, WNOHANG)) == w->pid || (r < 0 && errno != EINTR))
	    goto done;
	if (waited >= WK_REAP_WAIT_MS) {
	    (void) kill(w->pid, SIGKILL);
	    break;
	}
	(void) poll(NULL, 0, 5);
	waited += 5;
    }
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
	 /* void */ ;
  done:
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    return status;
}

/* wk_set_buffers - room for the largest datagram */
static void wk_set_buffers(int fd)
{
    int size = WK_MSG_MAX * 2;

    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
	(void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* wk_spawn - start a worker for these ids in slot w; 0 or -1 */
static int wk_spawn(struct wk *w, uid_t uid, gid_t gid, gid_t extra, const char **error_r)
{
    static char errbuf[LD_REASON_MAX];
    char buf[4096];
    struct ipc_list list;
    long ruid, rgid;
    char *end;
    const char *err = "";
    ssize_t n;
    int sv[2], rc;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
	fmt_buf_cut(errbuf, sizeof(errbuf), "socketpair: %s", strerror(errno));
	*error_r = errbuf;
	return -1;
    }
    wk_set_buffers(sv[0]);
    wk_set_buffers(sv[1]);
    if ((pid = fork()) < 0) {
	fmt_buf_cut(errbuf, sizeof(errbuf), "fork: %s", strerror(errno));
	(void) close(sv[0]);
	(void) close(sv[1]);
	*error_r = errbuf;
	return -1;
    }
    if (pid == 0) {
	(void) close(sv[0]);
	wk_child(sv[1], uid, gid, extra);
    }
    (void) close(sv[1]);
    w->pid = pid;
    w->fd = sv[0];
    w->uid = uid;
    w->gid = gid;
    w->extra = extra;
    w->jobs = 0;
    w->last_ms = wk_now_ms();

    /* The greeting proves that the ids were dropped (within the same
     * deadline as a job: once dropped, the user can stop the worker). */
    if ((rc = sock_wait_readable(w->fd, (int) var_local_delivery_timeout * 1000)) <= 0) {
	err = rc == 0 ? "timeout" : strerror(errno);
	goto bad;
    }
    if ((n = wk_recv(w->fd, buf, sizeof(buf), NULL, &err)) <= 0) {
	if (n == 0)
	    err = "it ended at once";
	goto bad;
    }
    ipc_list_init(&list);
    if (wk_decode(buf, (size_t) n, &list, &err) < 0
	|| (list.count != 1 && (err = "bad greeting") != NULL)) {
	ipc_list_fini(&list);
	goto bad;
    }
    if (strcmp(list.attrs[0].name, WA_ERROR) == 0) {
	fmt_buf_cut(errbuf, sizeof(errbuf), "%s", list.attrs[0].value);
	ipc_list_fini(&list);
	(void) wk_reap(w, true);
	*error_r = errbuf;
	return -1;
    }
    ruid = strtol(list.attrs[0].value, &end, 10);
    rgid = (*end == ' ') ? strtol(end + 1, &end, 10) : -1;
    if (strcmp(list.attrs[0].name, WA_READY) != 0 || *end != 0 || ruid != (long) uid
	|| rgid != (long) gid) {
	ipc_list_fini(&list);
	err = "bad greeting";
	goto bad;
    }
    ipc_list_fini(&list);
    if (!wk_set_recv_timeout(w->fd, var_local_delivery_timeout)) {
	err = strerror(errno);
	goto bad;
    }
    if (msg_verbose)
	msg_info("delivery worker %ld started for uid %ld gid %ld", (long) pid, (long) uid,
		 (long) gid);
    return 0;

  bad:
    fmt_buf_cut(errbuf, sizeof(errbuf), "no greeting from the worker: %s", err);
    (void) wk_reap(w, true);
    *error_r = errbuf;
    return -1;
}

/* wk_get - a live worker for these ids, started if need be */
static struct wk *wk_get(uid_t uid, gid_t gid, gid_t extra, const char **error_r)
{
    struct wk *w, *lru = NULL, *free_slot = NULL;
    long long now = wk_now_ms();

    for (w = wk_table; w < wk_table + WK_MAX; w++) {
	if (w->pid == 0) {
	    if (free_slot == NULL)
		free_slot = w;
	    continue;
	}
	if (w->uid == uid && w->gid == gid && w->extra == extra) {
	    /* one that has been idle long is replaced (one that died is
	     * noticed when the job cannot be handed over) */
	    if (now - w->last_ms < (long long) WK_IDLE_RETIRE * 1000)
		return w;
	    (void) wk_reap(w, false);
	    if (free_slot == NULL)
		free_slot = w;
	    continue;
	}
	if (lru == NULL || w->last_ms < lru->last_ms)
	    lru = w;
    }
    if (free_slot == NULL) {
	(void) wk_reap(lru, false);
	free_slot = lru;
    }
    if (wk_spawn(free_slot, uid, gid, extra, error_r) < 0)
	return NULL;
    return free_slot;
}

/* wk_failed - a worker broke during a job: defer, and say why */
static void wk_failed(struct wk *w, struct ld_result *res, const char *why)
{
    long pid = (long) w->pid;
    int status = wk_reap(w, true);

    if (WIFSIGNALED(status))
	ld_result_set(res, LD_DEFER, "4.3.0", "delivery process killed by signal %d",
		      WTERMSIG(status));
    else
	ld_result_set(res, LD_DEFER, "4.3.0", "delivery process ended without a result");
    msg_warn("delivery worker %ld: %s: %s", pid, why, res->reason);
}

/* ld_worker_run - run job as uid/gid in that user's worker */
void ld_worker_run(uid_t uid, gid_t gid, gid_t extra_gid, const struct ld_job *job,
		   struct ld_result *res, struct str *payload)
{
    struct str *out;
    struct wk *w;
    const char *err = "";
    ssize_t n;
    int attempt, fd = -1;

    ld_result_init(res);
    if (payload)
	str_reset(payload);
    if (job->kind == LD_JOB_COMMAND)
	msg_panic("ld_worker_run: command jobs run in a child of their own");
    if (wk_root < 0)
	wk_root = priv_is_root();	/* the parent's ids never change */
    if (!wk_root) {
	ld_job_run(job, res, payload);
	if (res->status == LD_NONE)
	    ld_result_set(res, LD_DEFER, "4.3.0", "internal error: no delivery result");
	return;
    }
    if (ld_job_needs_msg(job->kind)) {
	if (job->msg == NULL || job->msg->fd < 0)
	    msg_panic("ld_worker_run: job without the queue file");
	fd = job->msg->fd;
    }
    if (wk_out == NULL) {
	wk_out = str_new(WK_MSG_MAX + 1024);
	wk_buf = mem_alloc(WK_MSG_MAX + 1);
	ipc_list_init(&wk_list);
    }
    out = wk_out;
    ld_worker_encode_job(out, job);
    if (str_len(out) > WK_MSG_MAX) {
	ld_result_set(res, LD_DEFER, "4.3.0", "delivery job too large");
	return;
    }

    /* Hand the job over; a worker found gone gets one successor. */
    for (attempt = 0;; attempt++) {
	if ((w = wk_get(uid, gid, extra_gid, &err)) == NULL) {
	    ld_result_set(res, LD_DEFER, "4.3.0", "cannot start a delivery process for uid %ld: "
			  "%s", (long) uid, err);
	    msg_warn("%s", res->reason);
	    return;
	}
	if (sock_send_fd(w->fd, fd, str_cstr(out), str_len(out)) == 0)
	    break;
	if (attempt == 0 && (errno == EPIPE || errno == ECONNRESET || errno == ECONNREFUSED)) {
	    (void) wk_reap(w, true);
	    continue;
	}
	wk_failed(w, res, strerror(errno));
	return;
    }

    /*
     * The answer, within local_delivery_timeout: the worker runs with the
     * user's ids, so the user can stop it, and a job may meet a file or
     * file system that never answers. Past the deadline it is killed and
     * the recipient deferred; the next job gets a new worker.
     */
    n = wk_recv(w->fd, wk_buf, WK_MSG_MAX + 1, NULL, &err);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
	long pid = (long) w->pid;

	(void) wk_reap(w, true);
	ld_result_set(res, LD_DEFER, "4.3.0", "delivery process for uid %ld gave no result "
		      "within %ld seconds (local_delivery_timeout): killed", (long) uid,
		      var_local_delivery_timeout);
	msg_warn("delivery worker %ld: %s", pid, res->reason);
	return;
    }
    if (n <= 0) {
	wk_failed(w, res, n == 0 ? "connection closed" : err);
    } else if (wk_decode(wk_buf, (size_t) n, &wk_list, &err) < 0
	       || ld_worker_decode_result(&wk_list, res, payload, &err) < 0) {
	ld_result_init(res);
	if (payload)
	    str_reset(payload);
	wk_failed(w, res, err);
    } else {
	w->last_ms = wk_now_ms();
	if (++w->jobs >= WK_MAX_JOBS)
	    (void) wk_reap(w, false);
    }
}

/* ld_worker_shutdown - close every worker and reap it */
void ld_worker_shutdown(void)
{
    struct wk *w;

    for (w = wk_table; w < wk_table + WK_MAX; w++)
	if (w->pid != 0)
	    (void) wk_reap(w, false);
    if (wk_out != NULL) {
	str_free(&wk_out);
	mem_free(&wk_buf);
	ipc_list_fini(&wk_list);
    }
}

/* ld_worker_forget - in a child: drop the parent's workers */
void ld_worker_forget(void)
{
    struct wk *w;

    for (w = wk_table; w < wk_table + WK_MAX; w++) {
	if (w->pid != 0)
	    (void) close(w->fd);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
    }
}

/* ld_worker_count - workers alive now */
size_t ld_worker_count(void)
{
    size_t n = 0;
    struct wk *w;

    for (w = wk_table; w < wk_table + WK_MAX; w++)
	if (w->pid != 0)
	    n++;
    return n;
}
