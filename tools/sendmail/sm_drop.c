/* sm_drop.c - hand one message to postdrop: start it with a pipe on its
 * stdin, write the maildrop records (maildrop.h) and wait for its exit
 * status. postdrop exits 0 only after the file is on disk. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "maildrop.h"
#include "queue_file.h"

/* This program. */
#include "sendmail.h"

extern char **environ;

struct sm_drop {
    pid_t pid;
    struct stream *out;
};

/* sm_envelope_init - an empty envelope */
void sm_envelope_init(struct sm_envelope *env)
{
    memset(env, 0, sizeof(*env));
}

/* sm_envelope_fini - release the recipients and the sender */
void sm_envelope_fini(struct sm_envelope *env)
{
    for (size_t i = 0; i < env->rcpt_count; i++) {
	mem_free(&env->rcpts[i].address);
	mem_free(&env->rcpts[i].notify);
	mem_free(&env->rcpts[i].orcpt);
    }
    mem_free(&env->rcpts);
    mem_free(&env->sender);
    env->rcpt_count = env->rcpt_cap = 0;
}

/* sm_envelope_add - one more recipient */
void sm_envelope_add(struct sm_envelope *env, const char *address, const char *notify,
		     const char *orcpt)
{
    struct sm_rcpt *r;

    if (env->rcpt_count == env->rcpt_cap) {
	env->rcpt_cap = env->rcpt_cap ? mem_size_mul(env->rcpt_cap, 2) : 8;
	env->rcpts = mem_realloc(env->rcpts, mem_size_mul(env->rcpt_cap, sizeof(*r)));
    }
    r = env->rcpts + env->rcpt_count++;
    r->address = mem_strdup(address);
    r->notify = notify ? mem_strdup(notify) : NULL;
    r->orcpt = orcpt ? mem_strdup(orcpt) : NULL;
}

/* sm_spawn - run path with argv (environment unchanged) in a child,
 * with stdin_fd as its stdin if >= 0. vfork: the child shares our
 * memory until execve, so it only moves one descriptor and executes
 * (posix_spawn would reset all 64 signal dispositions first: 126 system
 * calls per message). sendmail installs no signal handlers, so none can
 * run in the child. Returns the pid, or -1 with errno (execve failed). */
pid_t sm_spawn(const char *path, char *const *argv, int stdin_fd)
{
    static volatile int exec_errno;
    pid_t pid;

    exec_errno = 0;
    pid = vfork();
    if (pid == 0) {
	if (stdin_fd >= 0 && dup2(stdin_fd, STDIN_FILENO) < 0) {
	    exec_errno = errno;
	    _exit(EX_OSERR);
	}
	(void) execve(path, argv, environ);
	exec_errno = errno;
	_exit(EX_OSERR);
    }
    if (pid < 0)
	return -1;
    if (exec_errno != 0) {		/* the child has exited already */
	int saved = exec_errno;

	(void) waitpid(pid, NULL, 0);
	errno = saved;
	return -1;
    }
    return pid;
}

/* sm_drop_open - start postdrop */
struct sm_drop *sm_drop_open(void)
{
    char path[4096];
    char *argv[6];
    int argc = 0, pipefd[2];
    struct sm_drop *drop;
    pid_t pid;

    if (!fmt_try_buf(path, sizeof(path), "%s/postdrop", sm_config("daemon_directory")))
	msg_fatal_status(EX_CONFIG, "daemon_directory too long");
    if (pipe2(pipefd, O_CLOEXEC) < 0)
	msg_fatal_status(EX_OSERR, "pipe: %m");
    argv[argc++] = (char *) "postdrop";
    argv[argc++] = (char *) "-c";
    argv[argc++] = (char *) sm_config_dir;
    if (msg_verbose)
	argv[argc++] = (char *) "-v";
    argv[argc] = NULL;
    pid = sm_spawn(path, argv, pipefd[0]);
    (void) close(pipefd[0]);
    if (pid < 0) {
	int err = errno;

	(void) close(pipefd[1]);
	errno = err;
	msg_fatal_status(err == ENOENT ? EX_CONFIG : EX_OSERR, "execute %s: %m", path);
    }
    drop = mem_zalloc(sizeof(*drop));
    drop->pid = pid;
    drop->out = stream_open(pipefd[1]);
    stream_set_timeout(drop->out, -1);
    return drop;
}

/* sm_drop_stream - the pipe to postdrop */
struct stream *sm_drop_stream(struct sm_drop *drop)
{
    return drop->out;
}

/* sm_drop_envelope - the envelope records and M */
int sm_drop_envelope(struct sm_drop *drop, const struct sm_envelope *env)
{
    return sm_drop_put_envelope(drop->out, env);
}

/* sm_drop_put_envelope - the envelope records and M */
int sm_drop_put_envelope(struct stream *s, const struct sm_envelope *env)
{

    if (qf_put_version(s) < 0 || qf_puts(s, QF_REC_SENDER, env->sender) < 0)
	return -1;
    if (env->extract && qf_put_attr(s, MAILDROP_ATTR_FLAGS, MAILDROP_FLAG_EXTRACT_NAME) < 0)
	return -1;
    if (env->dsn_ret && qf_put_attr(s, MAILDROP_ATTR_DSN_RET, env->dsn_ret) < 0)
	return -1;
    if (env->dsn_envid && qf_put_attr(s, MAILDROP_ATTR_DSN_ENVID, env->dsn_envid) < 0)
	return -1;
    if (env->body && qf_put_attr(s, MAILDROP_ATTR_BODY, env->body) < 0)
	return -1;
    for (size_t i = 0; i < env->rcpt_count; i++) {
	const struct sm_rcpt *r = env->rcpts + i;

	if (r->orcpt && qf_puts(s, QF_REC_ORCPT, r->orcpt) < 0)
	    return -1;
	if (r->notify && qf_puts(s, QF_REC_NOTIFY, r->notify) < 0)
	    return -1;
	if (qf_puts(s, QF_REC_RCPT, r->address) < 0)
	    return -1;
    }
    return qf_put(s, QF_REC_MESSAGE, "", 0);
}

/* sm_drop_wait - reap postdrop; its exit status */
static int sm_drop_wait(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0) {
	if (errno != EINTR)
	    msg_fatal_status(EX_OSERR, "waitpid: %m");
    }
    if (WIFEXITED(status))
	return WEXITSTATUS(status);
    msg_warn("postdrop was killed by signal %d", WTERMSIG(status));
    return EX_TEMPFAIL;
}

/* sm_drop_finish - X, E, and postdrop's verdict */
int sm_drop_finish(struct sm_drop **dropp)
{
    struct sm_drop *drop = *dropp;
    bool ok;
    int status;

    ok = qf_put(drop->out, QF_REC_XEND, "", 0) == 0 && qf_put(drop->out, QF_REC_END, "", 0) == 0
	&& stream_flush(drop->out) == 0;
    (void) stream_close(&drop->out);
    status = sm_drop_wait(drop->pid);
    if (status == 0 && !ok)
	status = EX_TEMPFAIL;		/* cannot happen: postdrop needs E */
    mem_free(dropp);
    return status;
}

/* sm_drop_finish_raw - the caller wrote E: flush, close, wait */
int sm_drop_finish_raw(struct sm_drop **dropp)
{
    struct sm_drop *drop = *dropp;
    bool ok;
    int status;

    ok = stream_flush(drop->out) == 0;
    (void) stream_close(&drop->out);
    status = sm_drop_wait(drop->pid);
    if (status == 0 && !ok)
	status = EX_TEMPFAIL;
    mem_free(dropp);
    return status;
}

/* sm_drop_abort - close the pipe without E and stop postdrop, which
 * removes its temp file either way */
void sm_drop_abort(struct sm_drop **dropp)
{
    struct sm_drop *drop = *dropp;
    int fd = stream_fd(drop->out);

    stream_free(&drop->out);
    (void) close(fd);
    (void) kill(drop->pid, SIGTERM);
    (void) sm_drop_wait(drop->pid);
    mem_free(dropp);
}
