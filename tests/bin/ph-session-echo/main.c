/* ph-session-echo - a fake protocol module on session_host.h, for
 * tests/test_session_host.py: the dispatcher and per-uid workers of
 * pop3d/imapd with a trivial line protocol instead of POP3.
 *
 * A session greets "+OK user=U uid=N gid=N groups=N pid=N sessions=N
 * root=R tag=T" (sessions: of this worker, this one included; T: the
 * hand-over's login_tag, empty without one), then answers
 * one command per line:
 *   echo TEXT   "+OK TEXT"
 *   info        "+OK pid=N sessions=N retiring=yes|no"
 *   quit        "+OK bye", and the session ends
 * A line the client pipelined before the hand-over (session_info.input)
 * is served like any other. It runs under imapd's name (log, and the
 * imapd_worker_* parameters). */

/* system */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "mem.h"
#include "msg.h"

/* mail */
#include "session_host.h"

static long sessions;

/* echo_on_input - the commands that are here */
static void echo_on_input(struct conn *c, void *ctx)
{
    const char *line;
    size_t len;
    enum conn_read_status r;

    (void) ctx;
    while ((r = conn_read_line(c, &line, &len)) != CONN_NONE) {
	if (r == CONN_TOOLONG) {
	    conn_puts(c, "-ERR too long\r\n");
	} else if (strncmp(line, "echo ", 5) == 0) {
	    conn_printf(c, "+OK %s\r\n", line + 5);
	} else if (strcmp(line, "info") == 0) {
	    conn_printf(c, "+OK pid=%ld sessions=%ld retiring=%s\r\n", (long) getpid(), sessions,
			session_host_retiring() ? "yes" : "no");
	} else if (strcmp(line, "quit") == 0) {
	    conn_puts(c, "+OK bye\r\n");
	    conn_pause_input(c, true);
	    conn_close_after_flush(c);
	    return;
	} else {
	    conn_puts(c, "-ERR unknown\r\n");
	}
    }
}

/* echo_on_close - the session ends */
static void echo_on_close(struct conn *c, void *ctx)
{
    (void) c;
    (void) ctx;
    sessions--;
    session_host_session_end();
}

static const struct conn_handlers echo_handlers = {
    .on_input = echo_on_input,
    .on_close = echo_on_close,
};

/* echo_start - a new session */
static void echo_start(int fd, const struct session_info *info)
{
    struct conn *c = conn_new(fd, &echo_handlers, NULL, 1024);

    sessions++;
    conn_printf(c, "+OK user=%s uid=%ld gid=%ld groups=%d pid=%ld sessions=%ld root=%s tag=%s\r\n",
		info->user, (long) info->uid, (long) info->gid, getgroups(0, NULL),
		(long) getpid(), sessions, info->mail_root, info->login_tag);
    msg_info("session: user=<%s>, client=[%s]", info->user, info->client_address);
    if (info->input_len > 0)
	conn_unread(c, info->input, info->input_len);
    echo_on_input(c, NULL);
}

/* echo_retire - the worker retires: say so in the log */
static void echo_retire(void)
{
    msg_info("worker %ld retiring with %ld sessions", (long) getpid(), sessions);
}

int main(int argc, char **argv)
{
    static const struct session_host_spec spec = {
	/* imapd's name, for its $imapd_worker_* parameters (master.cf
	 * refuses -o for names main.cf does not know) */
	.name = "imapd",
	.auth_service = "pop3",
	.reply_auth_failed = "-ERR [AUTH] Authentication failed\r\n",
	.reply_temp_failure = "-ERR [SYS/TEMP] try again later\r\n",
	.session_start = echo_start,
	.worker_retire = echo_retire,
    };

    return session_host_main(argc, argv, &spec);
}
