/* command.c - delivery to a |command from an alias, a .forward or an
 * :include: file.
 *
 * The command line comes only from those files (written by the
 * administrator or the user); it runs as "/bin/sh -c COMMAND" with an
 * environment built from scratch: SENDER, RECIPIENT, LOCAL, DOMAIN,
 * EXTENSION, HOME, USER, LOGNAME, SHELL and PATH. Text from the SMTP
 * client (sender, recipient) travels only in those variables, never in
 * the command string, so no client text is ever parsed by a shell.
 *
 * The message goes to the command's stdin (From_ line, Return-Path:,
 * Delivered-To:); its stdout and stderr are read at the same time (the
 * first bytes are kept for the bounce reason), so a chatty command cannot
 * deadlock us. After command_time_limit the command's process group is
 * killed and the recipient deferred. The exit status is read as in
 * sysexits.h: 0 delivered, EX_TEMPFAIL (75) deferred, anything else
 * bounced with a matching enhanced status code. The caller has already
 * dropped to the right uid (runas.c). */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "local.h"

#define CMD_OUTPUT_KEEP		512	/* bytes of output kept for the reason */
#define CMD_SHOW_MAX		100	/* bytes of the command shown in reasons */

/* sysexits.h codes and what they mean for the recipient. */
static const struct cmd_exit {
    int code;
    const char *name;
    const char *dsn;
} cmd_exits[] = {
    {64, "EX_USAGE", "5.3.0"},
    {65, "EX_DATAERR", "5.6.0"},
    {66, "EX_NOINPUT", "5.3.0"},
    {67, "EX_NOUSER", "5.1.1"},
    {68, "EX_NOHOST", "5.1.2"},
    {69, "EX_UNAVAILABLE", "5.3.0"},
    {70, "EX_SOFTWARE", "5.3.0"},
    {71, "EX_OSERR", "5.3.0"},
    {72, "EX_OSFILE", "5.3.0"},
    {73, "EX_CANTCREAT", "5.2.0"},
    {74, "EX_IOERR", "5.3.0"},
    {75, "EX_TEMPFAIL", "4.3.0"},
    {76, "EX_PROTOCOL", "5.5.0"},
    {77, "EX_NOPERM", "5.7.0"},
    {78, "EX_CONFIG", "5.3.5"},
};

#define EX_TEMPFAIL_CODE	75

/* cmd_show - the command, shortened for a reason text */
static void cmd_show(char *buf, size_t size, const char *command)
{
    size_t max = size - 1 < CMD_SHOW_MAX ? size - 1 : CMD_SHOW_MAX;
    size_t i;

    for (i = 0; i < max && command[i]; i++)
	buf[i] = (command[i] < 0x20 || command[i] == 0x7f) ? ' ' : command[i];
    buf[i] = 0;
    if (command[i] && i >= 3)
	memcpy(buf + i - 3, "...", 3);
}

/* command_exit_result - map a wait(2) status to a result */
void command_exit_result(int status, const char *command, const char *output,
			 struct ld_result *res)
{
    char show[CMD_SHOW_MAX + 1];
    const char *name = "", *dsn = "5.3.0";
    const char *sep = (output && *output) ? ": " : "";
    size_t i;
    int code;

    cmd_show(show, sizeof(show), command);
    if (output == NULL)
	output = "";
    if (WIFSIGNALED(status)) {
	ld_result_set(res, LD_DEFER, "4.3.0", "command \"%s\" killed by signal %d%s%s",
		      show, WTERMSIG(status), sep, output);
	return;
    }
    if (!WIFEXITED(status)) {
	ld_result_set(res, LD_DEFER, "4.3.0", "command \"%s\" ended abnormally", show);
	return;
    }
    code = WEXITSTATUS(status);
    if (code == 0) {
	ld_result_set(res, LD_SENT, "2.0.0", "delivered to command: %s", show);
	return;
    }
    for (i = 0; i < sizeof(cmd_exits) / sizeof(cmd_exits[0]); i++) {
	if (cmd_exits[i].code == code) {
	    name = cmd_exits[i].name;
	    dsn = cmd_exits[i].dsn;
	}
    }
    ld_result_set(res, code == EX_TEMPFAIL_CODE ? LD_DEFER : LD_BOUNCE, dsn,
		  "command \"%s\" exited with status %d%s%s%s%s", show, code,
		  *name ? " " : "", name, sep, output);
}

/* State of one running command. */
struct cmd_run {
    int in_fd;			/* its stdin (ours to write), -1 when closed */
    int out_fd;			/* its stdout+stderr, -1 at EOF */
    struct str *output;		/* the first CMD_OUTPUT_KEEP bytes */
    struct timespec deadline;
    bool timed_out;
    bool in_closed_early;	/* the command stopped reading */
    int err;
};

/* cmd_left_ms - milliseconds to the deadline (0 when passed) */
static int cmd_left_ms(const struct timespec *deadline)
{
    struct timespec now;
    long long ms;

    (void) clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (long long) (deadline->tv_sec - now.tv_sec) * 1000
	+ (deadline->tv_nsec - now.tv_nsec) / 1000000;
    if (ms <= 0)
	return 0;
    return ms > 60000 ? 60000 : (int) ms;
}

/* cmd_drain - read what the command said (keep the start) */
static void cmd_drain(struct cmd_run *cr)
{
    char buf[4096];
    ssize_t n;

    while (cr->out_fd >= 0) {
	n = read(cr->out_fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0 && errno == EAGAIN)
	    return;
	if (n <= 0) {
	    (void) close(cr->out_fd);
	    cr->out_fd = -1;
	    return;
	}
	if (str_len(cr->output) < CMD_OUTPUT_KEEP) {
	    size_t room = CMD_OUTPUT_KEEP - str_len(cr->output);

	    str_append_or_panic(cr->output, buf, (size_t) n < room ? (size_t) n : room);
	}
    }
}

/* cmd_sink - copy sink: write to stdin, read output meanwhile */
static int cmd_sink(void *ctx, const char *buf, size_t len)
{
    struct cmd_run *cr = ctx;
    struct pollfd pfd[2];
    ssize_t n;
    int left;

    while (len > 0) {
	n = write(cr->in_fd, buf, len);
	if (n > 0) {
	    buf += n;
	    len -= (size_t) n;
	    continue;
	}
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0 && errno == EPIPE) {
	    cr->in_closed_early = true;
	    return -1;
	}
	if (n < 0 && errno != EAGAIN) {
	    cr->err = errno;
	    return -1;
	}
	if ((left = cmd_left_ms(&cr->deadline)) == 0) {
	    cr->timed_out = true;
	    return -1;
	}
	pfd[0].fd = cr->in_fd;
	pfd[0].events = POLLOUT;
	pfd[1].fd = cr->out_fd;
	pfd[1].events = POLLIN;
	if (poll(pfd, cr->out_fd >= 0 ? 2 : 1, left) < 0 && errno != EINTR) {
	    cr->err = errno;
	    return -1;
	}
	if (cr->out_fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
	    cmd_drain(cr);
    }
    return 0;
}

/* cmd_env_add - one "NAME=value" */
static void cmd_env_add(char **envp, size_t *n, const char *name, const char *value)
{
    struct str *s = str_new(STR_MAX_DEFAULT);

    str_printf_or_panic(s, "%s=%s", name, value ? value : "");
    envp[(*n)++] = mem_strdup(str_cstr(s));
    str_free(&s);
}

/* cmd_exec - in the forked child: become the command */
static _Noreturn void cmd_exec(const char *command, const struct cmd_env *env, int in_fd,
			       int out_fd)
{
    char *envp[16];
    char *argv[4];
    const char *tz = getenv("TZ");
    size_t n = 0;
    sigset_t none;

    (void) setsid();			/* its own process group: killable as one */
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
	_exit(EX_TEMPFAIL_CODE);
    (void) close_range(3, ~0U, 0);
    (void) signal(SIGPIPE, SIG_DFL);
    (void) signal(SIGHUP, SIG_DFL);
    (void) signal(SIGTERM, SIG_DFL);
    (void) signal(SIGALRM, SIG_DFL);
    (void) signal(SIGCHLD, SIG_DFL);
    sigemptyset(&none);
    (void) sigprocmask(SIG_SETMASK, &none, NULL);
    (void) umask(077);
    if (env->home == NULL || *env->home == 0 || chdir(env->home) < 0)
	(void) chdir("/");
    cmd_env_add(envp, &n, "SENDER", env->sender);
    cmd_env_add(envp, &n, "RECIPIENT", env->recipient);
    cmd_env_add(envp, &n, "LOCAL", env->local);
    cmd_env_add(envp, &n, "DOMAIN", env->domain);
    cmd_env_add(envp, &n, "EXTENSION", env->extension);
    cmd_env_add(envp, &n, "HOME", env->home);
    cmd_env_add(envp, &n, "USER", env->user);
    cmd_env_add(envp, &n, "LOGNAME", env->user);
    cmd_env_add(envp, &n, "SHELL", env->shell && *env->shell ? env->shell : "/bin/sh");
    cmd_env_add(envp, &n, "PATH", "/usr/bin:/bin");
    if (tz != NULL)
	cmd_env_add(envp, &n, "TZ", tz);
    envp[n] = NULL;
    argv[0] = (char *) "sh";
    argv[1] = (char *) "-c";
    argv[2] = (char *) command;
    argv[3] = NULL;
    execve("/bin/sh", argv, envp);
    _exit(EX_TEMPFAIL_CODE);		/* cannot run the shell: try later */
}

/* cmd_clean_output - one line of printable text for a reason */
static void cmd_clean_output(struct str *out)
{
    size_t i, j = 0;
    bool space = false;

    for (i = 0; i < str_len(out); i++) {
	unsigned char c = (unsigned char) out->data[i];

	if (c < 0x20 || c == 0x7f || c == ' ') {
	    space = j > 0;
	    continue;
	}
	if (space)
	    out->data[j++] = ' ';
	space = false;
	out->data[j++] = (char) c;
    }
    (void) str_truncate(out, j);
}

/* command_deliver - run "/bin/sh -c command" with the message on stdin */
void command_deliver(const char *command, const struct cmd_env *env, const struct ld_msg *msg,
		     const struct copy_spec *spec, struct ld_result *res)
{
    struct cmd_run cr;
    struct pollfd pfd;
    int in[2], out[2], status = 0, left;
    const char *err = NULL;
    off_t size;
    pid_t pid, w;

    if (pipe2(in, O_CLOEXEC) < 0) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot create a pipe: %s", strerror(errno));
	return;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot create a pipe: %s", strerror(errno));
	(void) close(in[0]);
	(void) close(in[1]);
	return;
    }
    if ((pid = fork()) < 0) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot fork: %s", strerror(errno));
	(void) close(in[0]);
	(void) close(in[1]);
	(void) close(out[0]);
	(void) close(out[1]);
	return;
    }
    if (pid == 0)
	cmd_exec(command, env, in[0], out[1]);

    (void) close(in[0]);
    (void) close(out[1]);
    cr.in_fd = in[1];
    cr.out_fd = out[0];
    cr.output = str_new(CMD_OUTPUT_KEEP);
    cr.timed_out = false;
    cr.in_closed_early = false;
    cr.err = 0;
    (void) clock_gettime(CLOCK_MONOTONIC, &cr.deadline);
    cr.deadline.tv_sec += var_command_time_limit;
    (void) fcntl(cr.in_fd, F_SETFL, fcntl(cr.in_fd, F_GETFL) | O_NONBLOCK);
    (void) fcntl(cr.out_fd, F_SETFL, fcntl(cr.out_fd, F_GETFL) | O_NONBLOCK);

    /* Feed it the message; a command that stops reading is its business. */
    if (content_copy(msg, spec, cmd_sink, &cr, &size, &err) < 0 && err != NULL) {
	ld_result_set(res, LD_DEFER, "4.3.0", "%s", err);
	(void) kill(-pid, SIGKILL);
	(void) kill(pid, SIGKILL);
	goto reap;
    }
    (void) close(cr.in_fd);
    cr.in_fd = -1;

    /* Wait for it to finish (output EOF and exit), within the limit. */
    for (;;) {
	w = waitpid(pid, &status, WNOHANG);
	if (w == pid)
	    break;
	if (w < 0 && errno != EINTR) {
	    ld_result_set(res, LD_DEFER, "4.3.0", "waitpid: %s", strerror(errno));
	    goto done;
	}
	if (cr.timed_out || (left = cmd_left_ms(&cr.deadline)) == 0) {
	    cr.timed_out = true;
	    (void) kill(-pid, SIGKILL);
	    (void) kill(pid, SIGKILL);
	    break;
	}
	pfd.fd = cr.out_fd;
	pfd.events = POLLIN;
	if (cr.out_fd >= 0) {
	    if (poll(&pfd, 1, left < 50 ? left : 50) > 0)
		cmd_drain(&cr);
	} else {
	    (void) poll(NULL, 0, left < 5 ? left : 5);
	}
    }
    cmd_drain(&cr);
  reap:
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
	 /* void */ ;
    if (res->status != LD_NONE)
	goto done;
    cmd_clean_output(cr.output);
    if (cr.timed_out) {
	char show[CMD_SHOW_MAX + 1];

	cmd_show(show, sizeof(show), command);
	ld_result_set(res, LD_DEFER, "4.3.0", "command \"%s\" exceeded the time limit "
		      "of %ld seconds (command_time_limit)", show, var_command_time_limit);
    } else if (cr.err != 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
	ld_result_set(res, LD_DEFER, "4.3.0", "cannot write to command: %s", strerror(cr.err));
    } else {
	command_exit_result(status, command, str_cstr(cr.output), res);
    }
  done:
    if (cr.in_fd >= 0)
	(void) close(cr.in_fd);
    if (cr.out_fd >= 0)
	(void) close(cr.out_fd);
    str_free(&cr.output);
}
