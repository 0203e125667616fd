/* test-cleanup_message.c - unit tests for cleanup's message state
 * machine (cleanup_message.c and the modules under it): a table of
 * requests, each fed as records over a socket pair to cleanup_message(),
 * with the reply, the connection verdict and the records of the queue
 * file it wrote (read back with qf_scan, so each one also passes the
 * queue-file grammar) compared to what is wanted. The queue file goes
 * to a real incoming/ in a scratch directory. */

/* System. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base. */
#include "ipc.h"
#include "msg.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* Mail. */
#include "cleanup_stat.h"
#include "config.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "queue_id.h"
#include "resolve.h"

/* Cleanup. */
#include "cleanup.h"

#define LOCAL	CLEANUP_FLAG_LOCAL
#define PICKUP	(CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_UNTRUSTED)
#define NOALIAS	CLEANUP_FLAG_NO_ALIAS
#define EXTRACT	(CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_EXTRACT | CLEANUP_FLAG_NO_ALIAS)

#define X10	"xxxxxxxxxx"
#define HDRS	"L:Message-ID: <m@x.test>|L:Date: d|"	/* nothing to add */
#define START	"V:posthorn-queue 1|T:1700000000.000000|A:origin=test|"

static int incoming_fd = -1;

/* Requests and queue files as "T:data|T:data|..."; "^" in data is a line
 * feed. want_file "" when nothing may be queued; a want_file that
 * starts with "~" is a part of the file instead of all of it. */
static const struct message_case {
    long flags;
    const char *request;
    unsigned want_status;
    const char *want_reason;		/* part of the reason; NULL: "queued" */
    enum cleanup_conn want_conn;
    const char *want_file;
} cases[] = {
    /* the envelope and content as they come, V T A origin first */
    {NOALIAS, "T:1700000000|S:a@x.test|A:helo=h|R:b@y.test|M:|" HDRS "L:Subject: hi|L:|L:body|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT,
     START "S:a@x.test|A:helo=h|R:b@y.test|M:|" HDRS "L:Subject: hi|L:|L:body|X:|E:"},
    /* a long line stays in pieces in the body */
    {NOALIAS, "T:1700000000|S:|R:b@y.test|M:|" HDRS "L:|C:ab|C:cd|L:ef|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT, START "S:|R:b@y.test|M:|" HDRS "L:|C:ab|C:cd|L:ef|X:|E:"},
    /* a header line in pieces is joined, continuation lines kept */
    {NOALIAS, "T:1700000000|S:a|R:b@y.test|M:|" HDRS "C:To: a|L:@x.test,|L: b@y.test|L:|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT,
     START "S:a@origin.test|R:b@y.test|M:|" HDRS "L:To: a@x.test,|L: b@y.test|L:|X:|E:"},
    /* the body starts without an empty line: one is added */
    {NOALIAS, "T:1700000000|S:a@x.test|R:b@y.test|M:|" HDRS "L:no header here|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT,
     START "S:a@x.test|R:b@y.test|M:|" HDRS "L:|L:no header here|X:|E:"},
    /* missing Message-Id: and Date: are added (TZ=UTC) */
    {NOALIAS, "T:1700000000|S:a@x.test|R:b@y.test|M:|L:Subject: s|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT, "~L:Subject: s|L:Message-Id: <"},
    {NOALIAS, "T:1700000000|S:a@x.test|R:b@y.test|M:|L:Subject: s|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT, "~@mx.example.test>|L:Date: Tue, 14 Nov 2023 22:13:20 +0000|X:|E:"},
    /* local: unqualified addresses get $myorigin, From: is added, Bcc: goes */
    {LOCAL | NOALIAS, "T:1700000000|S:user|R:b|M:|" HDRS "L:Bcc: secret@z.test|L: more@z.test|L:|L:b|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT,
     START "S:user@origin.test|R:b@origin.test|M:|" HDRS "L:From: user@origin.test|L:|L:b|X:|E:"},
    /* sendmail -t: recipients from To: and Cc: into the trailer */
    {EXTRACT, "T:1700000000|S:a@x.test|M:|" HDRS "L:To: c@z.test, \"D, d\" <d@z.test>|L:Cc: c@z.test|L:|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT,
     "~L:|X:|R:c@z.test|R:d@z.test|E:"},
    /* a client's rcpt_orig, O and N stay with their recipient */
    {NOALIAS, "T:1700000000|S:a@x.test|A:rcpt_orig=o@x.test|O:rfc822;o@x.test|N:never|R:b@y.test|M:|"
     HDRS "L:|X:|E:", 0, NULL, CLEANUP_CONN_NEXT,
     START "S:a@x.test|A:rcpt_orig=o@x.test|O:rfc822;o@x.test|N:never|R:b@y.test|M:|" HDRS "L:|X:|E:"},
    /* trailer recipients of a trusted client */
    {NOALIAS, "T:1700000000|S:a@x.test|M:|" HDRS "L:|X:|A:dsn_ret=FULL|R:t@y.test|E:",
     0, NULL, CLEANUP_CONN_NEXT, "~L:|X:|A:dsn_ret=FULL|R:t@y.test|E:"},
    /* identical recipients are written once */
    {NOALIAS, "T:1700000000|S:a@x.test|R:b@y.test|R:b@Y.TEST.|M:|" HDRS "L:|X:|E:",
     0, NULL, CLEANUP_CONN_NEXT, START "S:a@x.test|R:b@y.test|M:|" HDRS "L:|X:|E:"},

    /* refusals: nothing is queued, the rest is read up to E */
    {NOALIAS, "S:a|S:b|R:c|M:|X:|E:", CLEANUP_STAT_BAD, "second sender record", CLEANUP_CONN_CLOSE, ""},
    {NOALIAS, "S:a|R:b|M:|L:x|X:|E:|", 0, NULL, CLEANUP_CONN_NEXT, "~L:x|X:|E:"},
    {NOALIAS, "S:a|M:|X:|E:", CLEANUP_STAT_RCPT, "no recipients", CLEANUP_CONN_NEXT, ""},
    {NOALIAS, "S:a|R:b|M:|C:half|X:|E:", CLEANUP_STAT_BAD, "continued line without its end",
     CLEANUP_CONN_CLOSE, ""},
    {PICKUP, "T:1700000000|S:a|A:submit_uid=7|A:sasl_username=admin|R:b|M:|X:|E:",
     CLEANUP_STAT_NOPERM, "attribute sasl_username not allowed", CLEANUP_CONN_CLOSE, ""},
    {PICKUP, "T:1700000000|S:a|A:submit_uid=7|R:b|M:|X:|A:dsn_ret=FULL|E:",
     CLEANUP_STAT_NOPERM, "unexpected record type 'A'", CLEANUP_CONN_CLOSE, ""},
    {PICKUP | NOALIAS, "T:1700000000.5|S:a|A:submit_uid=7|R:b|M:|" HDRS "L:|X:|E:", 0, NULL,
     CLEANUP_CONN_NEXT, "V:posthorn-queue 1|T:1700000000.500000|A:origin=test|S:a@origin.test"
     "|A:submit_uid=7|R:b@origin.test|M:|" HDRS "L:From: a@origin.test|L:|X:|E:"},
    {NOALIAS, "S:a|R:b|M:|" HDRS "L:Received: 1|L:Received: 2|L:Received: 3|L:|X:|E:",
     CLEANUP_STAT_HOPS, "too many hops: 3", CLEANUP_CONN_NEXT, ""},
    {NOALIAS, "S:a|R:b|M:|L:" X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 "|X:|E:",
     CLEANUP_STAT_SIZE, "message too large (limit 100 bytes)", CLEANUP_CONN_NEXT, ""},
    /* a line feed inside a content record breaks the framing */
    {NOALIAS, "S:a|R:b|M:|L:X-A: 1^Bcc: hidden@z.test|X:|E:", CLEANUP_STAT_BAD, "malformed request",
     CLEANUP_CONN_CLOSE, ""},
    {NOALIAS, "S:a|R:b|M:|" HDRS "L:|L:hi^From evil|X:|E:", CLEANUP_STAT_BAD, "malformed request",
     CLEANUP_CONN_CLOSE, ""},
};

/* encode - records from a spec */
static void encode(const char *spec, struct str *out)
{
    char *copy = strdup(spec), *save = NULL;

    str_reset(out);
    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
	for (char *p = tok + 2; *p; p++)
	    if (*p == '^')
		*p = '\n';
	qf_encode(out, tok[0], tok + 2, strlen(tok + 2));
    }
    free(copy);
}

/* collect - qf_scan visitor: the records as a spec */
static int collect(int type, const struct str *data, off_t offset, void *ctx)
{
    struct str *out = ctx;

    (void) offset;
    if (str_len(out) > 0)
	str_appendc_or_panic(out, '|');
    str_appendf_or_panic(out, "%c:%s", type, str_cstr(data));
    return 0;
}

/* queued_file - the records of incoming/id, or an error text */
static void queued_file(const char *id, struct str *out)
{
    struct qf_reader r;
    struct stream *s;
    const char *error;
    int fd;

    str_reset(out);
    if ((fd = openat(incoming_fd, id, O_RDONLY)) < 0) {
	str_printf_or_panic(out, "(no file %s)", id);
	return;
    }
    s = stream_open(fd);
    qf_reader_init(&r, s, 0);
    if (qf_scan(&r, QF_RECORD_MAX, collect, out, &error) < 0)
	str_printf_or_panic(out, "(corrupt: %s)", error);
    (void) stream_close(&s);
    (void) unlinkat(incoming_fd, id, 0);
}

/* incoming_count - the files in incoming/ */
static int incoming_count(void)
{
    int fd = dup(incoming_fd), n = 0;
    DIR *dir = fdopendir(fd);
    struct dirent *de;

    if (dir == NULL)
	msg_fatal("fdopendir: %m");
    rewinddir(dir);
    while ((de = readdir(dir)) != NULL)
	n += de->d_name[0] != '.';
    (void) closedir(dir);
    return n;
}

/* run_case - one request through cleanup_message */
static void run_case(size_t i, const struct message_case *tc)
{
    struct str *request = str_new(STR_MAX_HUGE), *id = str_new(64);
    struct str *reason = str_new(1024), *file = str_new(STR_MAX_HUGE);
    struct stream *server, *client;
    enum cleanup_conn conn;
    const char *error;
    long status = -1;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
	msg_fatal("socketpair: %m");
    encode(tc->request, request);
    if (write(sv[1], request->data, request->len) != (ssize_t) request->len)
	msg_fatal("write request: %m");
    server = stream_open(sv[0]);
    client = stream_open(sv[1]);
    conn = cleanup_message(server, incoming_fd, tc->flags, "test");
    (void) stream_close(&server);
    if (ipc_recv(client, &error, IPC_RECV_INT(ATTR_STATUS, &status),
		 IPC_RECV_STR(ATTR_QUEUE_ID, id), IPC_RECV_STR(ATTR_REASON, reason), IPC_END) < 0)
	unit_fail_at(__FILE__, __LINE__, "case %zu: no reply: %s", i, error);
    (void) stream_close(&client);
    unit_assert_idx(status == (long) tc->want_status, i);
    unit_assert_idx(conn == tc->want_conn, i);
    if (strstr(str_cstr(reason), tc->want_reason ? tc->want_reason : "queued") == NULL)
	unit_fail_at(__FILE__, __LINE__, "case %zu: reason \"%s\", want \"%s\"", i,
		     str_cstr(reason), tc->want_reason ? tc->want_reason : "queued");
    if (*tc->want_file == 0) {
	unit_assert_idx(str_len(id) == 0 && incoming_count() == 0, i);
    } else {
	struct stat st;

	/* committed: ready (0600), not in progress (0200) */
	unit_assert_idx(fstatat(incoming_fd, str_cstr(id), &st, AT_SYMLINK_NOFOLLOW) == 0
			&& (st.st_mode & 07777) == 0600, i);
	queued_file(str_cstr(id), file);
	if (tc->want_file[0] == '~' ? strstr(str_cstr(file), tc->want_file + 1) == NULL
	    : strcmp(str_cstr(file), tc->want_file) != 0)
	    unit_fail_at(__FILE__, __LINE__, "case %zu: queued\n    %s\n  want\n    %s", i,
			 str_cstr(file), tc->want_file);
    }
    str_free(&request);
    str_free(&id);
    str_free(&reason);
    str_free(&file);
}

/* test_requests - every case of the table */
static void test_requests(void)
{
    unit_begin("cleanup_message: requests in, queue files and replies out");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	run_case(i, cases + i);
    unit_end();
}

/* test_abandoned - a client gone before E leaves nothing */
static void test_abandoned(void)
{
    struct str *request = str_new(4096);
    struct stream *server;
    int sv[2];

    unit_begin("cleanup_message: a client gone before E queues nothing");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
	msg_fatal("socketpair: %m");
    encode("S:a|R:b|M:|L:x", request);
    if (write(sv[1], request->data, request->len) != (ssize_t) request->len)
	msg_fatal("write request: %m");
    (void) close(sv[1]);
    server = stream_open(sv[0]);
    unit_assert(cleanup_message(server, incoming_fd, NOALIAS, "test") == CLEANUP_CONN_CLOSE);
    (void) stream_close(&server);
    unit_assert_inteq(incoming_count(), 0);
    str_free(&request);
    unit_end();
}

/* only_entry - the one file in incoming/ is name */
static bool only_entry(const char *name)
{
    int fd = dup(incoming_fd), n = 0;
    DIR *dir = fdopendir(fd);
    struct dirent *de;
    bool found = false;

    if (dir == NULL)
	msg_fatal("fdopendir: %m");
    rewinddir(dir);
    while ((de = readdir(dir)) != NULL) {
	if (de->d_name[0] == '.')
	    continue;
	n++;
	found = found || strcmp(de->d_name, name) == 0;
    }
    (void) closedir(dir);
    return n == 1 && found;
}

/* file_mode - the permission bits of incoming/name, -1 if none */
static int file_mode(const char *name)
{
    struct stat st;

    return fstatat(incoming_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -1
	: (int) (st.st_mode & 07777);
}

/* test_out_in_progress - the file is named incoming/ID from the open,
 * mode 0200 while it is written, 0600 once committed; abandoned, it
 * goes (architecture.md decision 51) */
static void test_out_in_progress(void)
{
    struct cleanup_out *o;
    char id[QUEUE_ID_SIZE];
    const char *error;

    unit_begin("cleanup_out: incoming/ID at once, 0200 while written, 0600 when ready");
    o = cleanup_out_open(incoming_fd, id, sizeof(id), &error);
    unit_assert(o != NULL);
    unit_assert(queue_id_valid(id));
    unit_assert(only_entry(id));		/* no temp name left */
    unit_assert_inteq(file_mode(id), 0200);
    unit_assert(stream_write(cleanup_out_stream(o), "data", 4) == 0);
    unit_assert_inteq(file_mode(id), 0200);
    unit_assert(cleanup_out_commit(&o, &error) == 0);
    unit_assert(o == NULL);
    unit_assert(only_entry(id));
    unit_assert_inteq(file_mode(id), 0600);
    unit_assert(unlinkat(incoming_fd, id, 0) == 0);

    o = cleanup_out_open(incoming_fd, id, sizeof(id), &error);
    unit_assert(o != NULL && file_mode(id) == 0200);
    cleanup_out_abandon(&o);
    unit_assert(o == NULL);
    unit_assert_inteq(incoming_count(), 0);
    unit_end();
}

int main(void)
{
    char dir[PATH_MAX];
    const char *err;

    fmt_buf_or_panic(dir, sizeof(dir), "%s/test-cleanup_message.XXXXXX",
		   getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL || chdir(dir) < 0 || mkdir("incoming", 0700) < 0)
	msg_fatal("scratch directory %s: %m", dir);
    if ((incoming_fd = open("incoming", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
	msg_fatal("open incoming: %m");
    (void) setenv("TZ", "UTC", 1);
    tzset();
    config_init();
    config_set("myhostname", "mx.example.test");
    config_set("myorigin", "origin.test");
    config_set("hopcount_limit", "2");
    config_set("message_size_limit", "100");
    if (config_apply(&err) < 0 || resolve_init(&err) < 0)
	msg_fatal("config: %s", err);

    test_requests();
    test_abandoned();
    test_out_in_progress();

    resolve_fini();
    (void) close(incoming_fd);
    (void) rmdir("incoming");
    (void) chdir("/");
    (void) rmdir(dir);
    return unit_done();
}
