/* test-cleanup_client.c - unit tests for cleanup_client.c against a fake
 * cleanup server in a child process: the records as sent, several
 * messages per connection, the reply, a server that drops the
 * connection, a wrong handshake, abandoning a message. */

/* System. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Base. */
#include "ipc.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* Mail. */
#include "cleanup_client.h"
#include "cleanup_stat.h"
#include "config.h"
#include "mail_proto.h"
#include "queue_file.h"

static char test_dir[PATH_MAX];
static char sock_path[PATH_MAX];

enum fake_mode {
    FAKE_ECHO,				/* reply with the records as text */
    FAKE_DROP,				/* close after {flags, origin} */
    FAKE_WRONG_PROTO,			/* announce "bounce" */
    FAKE_EXPECT_ABANDON,		/* report whether E ever came */
};

/* fake_serve - one client: handshake, then messages until EOF */
static void fake_serve(int fd, enum fake_mode mode, int report_fd)
{
    struct stream *s = stream_open(fd);
    struct str *origin = str_new(100), *data = str_new(QF_RECORD_MAX), *text = str_new(65536);
    struct qf_reader r;
    const char *err, *allowed;
    long flags;
    int type, n = 0;

    stream_set_timeout(s, 5000);
    ipc_handshake_server(s, mode == FAKE_WRONG_PROTO ? "bounce" : CLEANUP_PROTO, CLEANUP_VERSION);
    while (ipc_recv(s, &err, IPC_RECV_INT(ATTR_FLAGS, &flags),
		    IPC_RECV_STR(ATTR_ORIGIN, origin), IPC_END) == 0) {
	if (mode == FAKE_DROP)
	    break;
	str_printf_or_panic(text, "flags=%ld origin=%s", flags, str_cstr(origin));
	qf_reader_init(&r, s, 0);
	allowed = QF_TYPES_ENVELOPE;
	for (;;) {
	    if (qf_get(&r, &type, data, QF_RECORD_MAX, allowed, NULL, &err) <= 0) {
		if (mode == FAKE_EXPECT_ABANDON)
		    (void) write(report_fd, "A", 1);
		goto done;
	    }
	    if (str_len(data) > 40)
		str_appendf_or_panic(text, " %c#%zu", type, str_len(data));
	    else
		str_appendf_or_panic(text, " %c:%s", type, str_cstr(data));
	    if (type == QF_REC_MESSAGE)
		allowed = QF_TYPES_CONTENT;
	    else if (type == QF_REC_XEND)
		allowed = QF_TYPES_TRAILER;
	    else if (type == QF_REC_END)
		break;
	}
	if (mode == FAKE_EXPECT_ABANDON)
	    (void) write(report_fd, "E", 1);
	n++;
	ipc_send(s, IPC_INT(ATTR_STATUS, n == 2 ? CLEANUP_STAT_SIZE : 0),
		 IPC_STR(ATTR_QUEUE_ID, n == 2 ? "" : "1r31eq0W7E5BAN"),
		 IPC_STR(ATTR_REASON, str_cstr(text)), IPC_END);
    }
  done:
    stream_close(&s);
    str_free(&origin);
    str_free(&data);
    str_free(&text);
}

/* fake_server - fork a server for one connection; returns its pid */
static pid_t fake_server(enum fake_mode mode, int report_fd)
{
    const char *err;
    int lfd, fd;
    pid_t pid;

    if ((lfd = sock_listen_unix(sock_path, 0600, 5, &err)) < 0)
	msg_fatal("listen: %s", err);
    if ((pid = fork()) < 0)
	msg_fatal("fork: %m");
    if (pid == 0) {
	sock_set_nonblock(lfd, false);
	alarm(10);
	if ((fd = sock_accept(lfd)) < 0)
	    _exit(1);
	fake_serve(fd, mode, report_fd);
	_exit(0);
    }
    close(lfd);
    return pid;
}

static void reap(pid_t pid)
{
    int status;

    waitpid(pid, &status, 0);
}

int main(void)
{
    struct cleanup_client *c;
    struct cleanup_result res;
    const char *err;
    char buf[CLEANUP_CLIENT_LINE_MAX * 2 + 10];
    int pfd[2];
    pid_t pid;

    signal(SIGPIPE, SIG_IGN);
    config_init();
    fmt_buf_or_panic(test_dir, sizeof(test_dir), "/tmp/test-cleanup_client.XXXXXX");
    if (mkdtemp(test_dir) == NULL)
	msg_fatal("mkdtemp: %m");
    fmt_buf_or_panic(sock_path, sizeof(sock_path), "%s/cleanup", test_dir);

    unit_begin("records as sent, two messages on one connection, replies");
    pid = fake_server(FAKE_ECHO, -1);
    c = cleanup_client_open(sock_path, &err);
    unit_assert(c != NULL);
    unit_assert(cleanup_client_begin(c, CLEANUP_FLAG_LOCAL, "smtpd", &err) == 0);
    unit_assert(cleanup_client_time(c, 1700000000, 5) == 0);
    unit_assert(cleanup_client_sender(c, "a@example.test") == 0);
    unit_assert(cleanup_client_attr(c, "helo", "h.example") == 0);
    unit_assert(cleanup_client_rcpt(c, "b@example.test", "rfc822;b@example.test", "never") == 0);
    unit_assert(cleanup_client_rcpt(c, "c@example.test", NULL, "") == 0);
    unit_assert(cleanup_client_message(c) == 0);
    unit_assert(cleanup_client_line(c, "Subject: x", 10) == 0);
    unit_assert(cleanup_client_line(c, "", 0) == 0);
    unit_assert(cleanup_client_line(c, "body", 4) == 0);
    unit_assert(cleanup_client_xend(c) == 0);
    unit_assert(cleanup_client_rcpt(c, "t@example.test", NULL, NULL) == 0);
    unit_assert_inteq(cleanup_client_bytes(c), 11 + 1 + 5);
    unit_assert(cleanup_client_finish(c, &res, &err) == 0);
    unit_assert_inteq(res.status, 0);
    unit_assert_streq(res.queue_id, "1r31eq0W7E5BAN");
    unit_assert_streq(res.reason, "flags=1 origin=smtpd T:1700000000.000005 S:a@example.test"
		      " A:helo=h.example O:rfc822;b@example.test N:never R:b@example.test"
		      " R:c@example.test M: L:Subject: x L: L:body X: R:t@example.test E:");
    /* second message: a long line is split into C records, never cut */
    memset(buf, 'x', sizeof(buf));
    unit_assert(cleanup_client_begin(c, 0, "", &err) == 0);
    unit_assert(cleanup_client_sender(c, "") == 0);
    unit_assert(cleanup_client_rcpt(c, "b@example.test", NULL, NULL) == 0);
    unit_assert(cleanup_client_message(c) == 0);
    unit_assert(cleanup_client_line(c, buf, sizeof(buf)) == 0);
    unit_assert(cleanup_client_xend(c) == 0);
    unit_assert(cleanup_client_finish(c, &res, &err) == 0);
    unit_assert_inteq(res.status, CLEANUP_STAT_SIZE);
    unit_assert_streq(res.queue_id, "");
    unit_assert_streq(res.reason, "flags=0 origin= S: R:b@example.test M: C#8192 C#8192 L:xxxxxxxxxx X: E:");
    cleanup_client_close(&c);
    unit_assert(c == NULL);
    reap(pid);
    unit_end();

    unit_begin("server drops the connection: -1, temporary status");
    pid = fake_server(FAKE_DROP, -1);
    c = cleanup_client_open(sock_path, &err);
    unit_assert(c != NULL);
    unit_assert(cleanup_client_begin(c, 0, "", &err) == 0);
    (void) cleanup_client_sender(c, "a@b");
    (void) cleanup_client_rcpt(c, "b@c", NULL, NULL);
    (void) cleanup_client_message(c);
    (void) cleanup_client_xend(c);
    unit_assert(cleanup_client_finish(c, &res, &err) < 0);
    unit_assert_inteq(res.status, CLEANUP_STAT_WRITE);
    unit_assert(cleanup_stat_temporary(res.status));
    unit_assert(strstr(res.reason, "cleanup service") != NULL);
    cleanup_client_close(&c);
    reap(pid);
    unit_end();

    unit_begin("wrong protocol and no server");
    pid = fake_server(FAKE_WRONG_PROTO, -1);
    c = cleanup_client_open(sock_path, &err);
    unit_assert(c == NULL);
    unit_assert(strstr(err, "protocol mismatch") != NULL);
    reap(pid);
    unlink(sock_path);
    c = cleanup_client_open(sock_path, &err);
    unit_assert(c == NULL);
    unit_assert(strstr(err, "connect to cleanup service") != NULL);
    unit_end();

    unit_begin("abandon: the server sees end of input before E");
    if (pipe(pfd) < 0)
	msg_fatal("pipe: %m");
    pid = fake_server(FAKE_EXPECT_ABANDON, pfd[1]);
    close(pfd[1]);
    c = cleanup_client_open(sock_path, &err);
    unit_assert(c != NULL);
    unit_assert(cleanup_client_begin(c, 0, "", &err) == 0);
    (void) cleanup_client_sender(c, "a@b");
    (void) cleanup_client_rcpt(c, "b@c", NULL, NULL);
    (void) cleanup_client_message(c);
    (void) cleanup_client_line(c, "half", 4);
    cleanup_client_abandon(&c);
    unit_assert(c == NULL);
    unit_assert(read(pfd[0], buf, 1) == 1 && buf[0] == 'A');
    close(pfd[0]);
    reap(pid);
    unit_end();

    unlink(sock_path);
    rmdir(test_dir);
    return unit_done();
}
