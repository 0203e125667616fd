/* unit.c - the C unit-test framework (see unit.h). */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

static const char *unit_name;
static int unit_failures_this;
static int unit_passed, unit_failed, unit_skipped;

void unit_begin(const char *name)
{
    unit_name = name;
    unit_failures_this = 0;
}

void unit_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stdout, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    unit_failures_this++;
}

void unit_end(void)
{
    if (unit_failures_this == 0) {
	unit_passed++;
	printf("ok - %s\n", unit_name ? unit_name : "(unnamed)");
    } else {
	unit_failed++;
	printf("FAIL - %s\n", unit_name ? unit_name : "(unnamed)");
    }
    fflush(stdout);
    unit_name = NULL;
}

void unit_skip(const char *name, const char *why)
{
    unit_skipped++;
    printf("skip - %s: %s\n", name, why);
    fflush(stdout);
}

int unit_done(void)
{
    if (unit_skipped)
	printf("%d passed, %d failed, %d skipped\n", unit_passed, unit_failed, unit_skipped);
    else
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
    fflush(stdout);
    return unit_failed ? 1 : 0;
}

bool unit_expect_exit(void (*fn)(void *), void *arg, int how, int code, const char *want_text)
{
    int pipefd[2];
    char buf[8192];
    size_t used = 0;
    ssize_t n;
    int status;
    pid_t pid;
    bool ok;

    fflush(stdout);
    fflush(stderr);
    if (pipe(pipefd) != 0)
	return false;
    if ((pid = fork()) < 0)
	return false;
    if (pid == 0) {
	int devnull = open("/dev/null", O_RDONLY);

	dup2(pipefd[1], STDERR_FILENO);
	close(pipefd[0]);
	close(pipefd[1]);
	if (devnull >= 0)
	    dup2(devnull, STDIN_FILENO);
	/* abort() in the child must not leave a core file or ASan noise */
	setenv("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=0", 1);
	fn(arg);
	_exit(0);
    }
    close(pipefd[1]);
    while ((n = read(pipefd[0], buf + used, sizeof(buf) - 1 - used)) > 0)
	used += (size_t) n;
    buf[used] = 0;
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) != pid)
	return false;
    if (how == UNIT_EXIT_STATUS)
	ok = WIFEXITED(status) && WEXITSTATUS(status) == code;
    else
	ok = WIFSIGNALED(status) && WTERMSIG(status) == code;
    if (ok && want_text && strstr(buf, want_text) == NULL)
	ok = false;
    if (!ok)
	printf("  child ended with status 0x%x, stderr: %s\n", status, buf);
    return ok;
}
