/* ph-echo - a SINGLE test daemon on the server skeleton.
 *
 * On connect it greets "ph-echo ready pid=N uid=N gid=N" (the ids it runs
 * with after the skeleton's privilege drop). Commands, one per line:
 *   echo TEXT   answers TEXT
 *   sleep N     sleeps N seconds (whole, even across signals), answers
 *               "slept N"
 *   crash       abort()s (a crash while serving a client)
 *   passinfo    answers "pass ADDR PORT greeted=0|1" (server_pass_info)
 *               or "pass none"
 *   param NAME  answers "NAME=VALUE" (the process's expanded main.cf
 *               value) and "stress=yes|no" (server_stress)
 *   exhaust     answers "exhausting"; once idle after the session (the
 *               skeleton's single_idle hook), the process uses up its
 *               descriptors, so that its next accept(2) fails with EMFILE
 *   quit        answers "bye" and ends the session
 * Anything else answers "error: unknown command". Used by the master and
 * skeleton tests (tests/test_master.py, tests/test_skeleton.py). */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "server.h"

#define LINE_MAX_LEN	1024
#define EXHAUST_LIMIT	64		/* descriptors left to an exhausted process */

static bool exhaust_when_idle;

/* sleep_whole - sleep seconds, resuming after signal interruptions */
static void sleep_whole(long seconds)
{
    struct timespec left = {.tv_sec = seconds, .tv_nsec = 0};

    while (nanosleep(&left, &left) < 0 && errno == EINTR)
	 /* void */ ;
}

/* echo_service - one client session */
static void echo_service(struct stream *client)
{
    struct str *line = str_new(LINE_MAX_LEN);

    msg_info("connect pid=%ld", (long) getpid());
    stream_printf(client, "ph-echo ready pid=%ld uid=%ld gid=%ld\n",
		  (long) getpid(), (long) getuid(), (long) getgid());
    stream_flush(client);
    for (;;) {
	enum stream_status st = stream_getline(client, line, LINE_MAX_LEN);
	const char *cmd;

	if (st == STREAM_TOOLONG) {
	    stream_skip_line(client);
	    stream_puts(client, "error: line too long\n");
	    stream_flush(client);
	    continue;
	}
	if (st != STREAM_OK)
	    break;
	str_chomp(line);
	cmd = str_cstr(line);
	if (strncmp(cmd, "echo ", 5) == 0) {
	    stream_printf(client, "%s\n", cmd + 5);
	} else if (strncmp(cmd, "sleep ", 6) == 0) {
	    long n = strtol(cmd + 6, NULL, 10);

	    if (n < 0 || n > 3600)
		n = 0;
	    sleep_whole(n);
	    stream_printf(client, "slept %ld\n", n);
	} else if (strcmp(cmd, "crash") == 0) {
	    msg_info("crashing on request");
	    abort();
	} else if (strcmp(cmd, "passinfo") == 0) {
	    const struct server_pass_info *pi = server_pass_info();

	    if (pi)
		stream_printf(client, "pass %s %s greeted=%d\n", pi->client_address,
			      pi->client_port, (int) pi->greeted);
	    else
		stream_puts(client, "pass none\n");
	} else if (strncmp(cmd, "param ", 6) == 0) {
	    const char *v = config_value(cmd + 6);

	    stream_printf(client, "%s=%s stress=%s\n", cmd + 6, v ? v : "(unknown)",
			  server_stress() ? "yes" : "no");
	} else if (strcmp(cmd, "exhaust") == 0) {
	    exhaust_when_idle = true;
	    stream_puts(client, "exhausting\n");
	} else if (strcmp(cmd, "quit") == 0) {
	    stream_puts(client, "bye\n");
	    break;
	} else {
	    stream_puts(client, "error: unknown command\n");
	}
	if (stream_flush(client) < 0)
	    break;
    }
    stream_flush(client);
    msg_info("disconnect pid=%ld", (long) getpid());
    str_free(&line);
}

/* echo_idle - after an "exhaust" session: lower the descriptor limit and
 * fill every slot below it */
static void echo_idle(void)
{
    struct rlimit rl;
    int count = 0;

    if (!exhaust_when_idle)
	return;
    exhaust_when_idle = false;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
	msg_fatal("getrlimit: %m");
    rl.rlim_cur = EXHAUST_LIMIT;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
	msg_fatal("setrlimit: %m");
    while (dup(2) >= 0)
	count++;
    if (errno != EMFILE)
	msg_fatal("dup: %m");
    msg_info("out of descriptors pid=%ld (%d more used)", (long) getpid(), count);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "ph-echo",
	.single_service = echo_service,
	.single_idle = echo_idle,
    };

    return server_main(argc, argv, &spec);
}
