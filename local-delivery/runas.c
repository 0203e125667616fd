/* runas.c - run one piece of delivery work with a recipient's rights in
 * a child of its own (used for |command targets; mailbox and file work
 * goes to the long-lived workers of worker.c).
 *
 * As root, ld_run_as() forks a child that drops privileges FULLY and
 * irrevocably (setgroups, setgid, setuid: real, effective and saved ids,
 * checked by priv_drop_ids) before it calls the work function, the way
 * qmail-lspawn runs qmail-local, not Postfix's effective-uid switch. The
 * child opens every path the recipient controls; the parent, still root,
 * never does. The child sends its struct ld_result and an optional
 * payload (e.g. the text of a .forward file) back through a pipe and
 * exits; a child that dies without a complete answer, or gives none
 * within command_time_limit + local_delivery_timeout (then it is
 * killed), makes the delivery defer. When not root (the sandbox), the
 * work runs in this process with the invoking user's rights. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "privs.h"
#include "safe_file.h"
#include "sock.h"
#include "str.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "local.h"

#define RUNAS_PAYLOAD_MAX	((size_t) 1 << 20)

/* ra_read_all - read the pipe to EOF, at most max bytes, for at most
 * timeout_ms in all (*timed_out set when that ran out) */
static bool ra_read_all(int fd, struct str *out, size_t max, long long timeout_ms,
			bool *timed_out)
{
    char buf[8192];
    struct timespec ts;
    long long deadline, left;
    ssize_t n;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
    *timed_out = false;
    for (;;) {
	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	left = deadline - ((long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (left <= 0 || sock_wait_readable(fd, left > INT_MAX ? INT_MAX : (int) left) == 0) {
	    *timed_out = true;
	    return false;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    return false;
	if (n == 0)
	    return true;
	if (str_len(out) + (size_t) n > max || !str_try_append(out, buf, (size_t) n))
	    return false;
    }
}

/* ld_run_as - run fn as uid/gid in a child when root */
void ld_run_as(uid_t uid, gid_t gid, gid_t extra_gid, runas_fn fn, void *ctx,
	       struct ld_result *res, struct str *payload)
{
    struct ld_result child_res;
    struct str *buf;
    uint64_t plen;
    const char *err;
    int pfd[2], status = 0;
    pid_t pid;
    bool ok, timed_out;

    ld_result_init(res);
    if (payload)
	str_reset(payload);
    if (!priv_is_root()) {
	fn(ctx, res, payload);
	if (res->status == LD_NONE)
	    ld_result_set(res, LD_DEFER, "4.3.0", "internal error: no delivery result");
	return;
    }
    if (pipe2(pfd, O_CLOEXEC) < 0) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot create a pipe: %s", strerror(errno));
	return;
    }
    if ((pid = fork()) < 0) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot fork: %s", strerror(errno));
	(void) close(pfd[0]);
	(void) close(pfd[1]);
	return;
    }
    if (pid == 0) {
	/* The child: become the user for good, do the work, report. */
	struct str *pl = str_new(RUNAS_PAYLOAD_MAX);

	(void) close(pfd[0]);
	ld_worker_forget();
	(void) signal(SIGHUP, SIG_DFL);
	(void) signal(SIGTERM, SIG_DFL);
	ld_result_init(&child_res);
	if (priv_drop_ids(uid, gid, extra_gid, NULL, &err) < 0)
	    ld_result_set(&child_res, LD_DEFER, "4.3.0", "cannot switch to uid %ld gid %ld: %s",
			  (long) uid, (long) gid, err);
	else
	    fn(ctx, &child_res, pl);
	if (child_res.status == LD_NONE)
	    ld_result_set(&child_res, LD_DEFER, "4.3.0", "internal error: no delivery result");
	plen = str_len(pl);
	if (write_all_fd(pfd[1], &child_res, sizeof(child_res)) < 0
	    || write_all_fd(pfd[1], &plen, sizeof(plen)) < 0
	    || write_all_fd(pfd[1], str_cstr(pl), str_len(pl)) < 0)
	    _exit(1);
	_exit(0);
    }

    /*
     * The parent: collect the answer, then the child. The child runs as
     * the user, who can stop it ("|kill -STOP $PPID"): it gets the
     * command's own limit plus local_delivery_timeout to report, then it
     * is killed, so that no user can hold this process.
     */
    (void) close(pfd[1]);
    buf = str_new(sizeof(child_res) + sizeof(plen) + RUNAS_PAYLOAD_MAX);
    ok = ra_read_all(pfd[0], buf, buf->max,
		     (var_command_time_limit + var_local_delivery_timeout) * 1000LL, &timed_out);
    (void) close(pfd[0]);
    if (timed_out)
	(void) kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
	 /* void */ ;
    if (ok && str_len(buf) >= sizeof(child_res) + sizeof(plen)) {
	memcpy(&child_res, str_cstr(buf), sizeof(child_res));
	memcpy(&plen, str_cstr(buf) + sizeof(child_res), sizeof(plen));
	if (plen != str_len(buf) - sizeof(child_res) - sizeof(plen)
	    || child_res.status < LD_SENT || child_res.status > LD_DEFER)
	    ok = false;
    } else {
	ok = false;
    }
    if (timed_out) {
	ld_result_set(res, LD_DEFER, "4.3.0", "delivery process for uid %ld gave no result "
		      "within %ld seconds (command_time_limit + local_delivery_timeout): killed",
		      (long) uid, var_command_time_limit + var_local_delivery_timeout);
	msg_warn("%s", res->reason);
    } else if (!ok) {
	if (WIFSIGNALED(status))
	    ld_result_set(res, LD_DEFER, "4.3.0", "delivery process killed by signal %d",
			  WTERMSIG(status));
	else
	    ld_result_set(res, LD_DEFER, "4.3.0", "delivery process ended without a result");
	msg_warn("%s", res->reason);
    } else {
	child_res.reason[sizeof(child_res.reason) - 1] = 0;
	child_res.dsn[sizeof(child_res.dsn) - 1] = 0;
	*res = child_res;
	if (payload && !str_try_append(payload, str_cstr(buf) + sizeof(child_res) + sizeof(plen),
				       (size_t) plen))
	    ld_result_set(res, LD_DEFER, "4.3.0", "delivery process result longer than %zu bytes",
			  payload->max);
    }
    str_free(&buf);
}
