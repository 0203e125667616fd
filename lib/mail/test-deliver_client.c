/* test-deliver_client.c - unit tests for the blocking client calls of
 * the deliver and bounce protocols (deliver_client.c, bounce_client.c)
 * against a scripted agent on a socketpair that serves them with the
 * server half of the same codecs, and for the one handshake check
 * (ipc_handshake_check) every client uses. */

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* mail */
#include "bounce_client.h"
#include "deliver_client.h"
#include "mail_proto.h"

#define QID	"1r31eq0W7E5BAN"

static struct deliver_rcpt rcpts[] = {
    {"bob@example.test", "", "rfc822;bob@example.test", "failure,delay", 120},
    {"eve@example.test", "alias@example.test", "", "", 160},
};
static const struct deliver_request req = {
    {QID, "active/" QID, "alice@example.org", 1700000000, "env-1", "HDRS"}, 200, 1234,
    "example.test", rcpts, 2,
};

/* agent_send - an encoded reply */
static void agent_send(struct stream *s, struct str *out)
{
    (void) ipc_send_encoded(s, out);
}

/* agent - a scripted agent on fd: handshake, then a deliver request, a
 * verify request and a bounce request, each decoded strictly */
static void agent(int fd)
{
    struct stream *s = stream_open(fd);
    struct str *out = str_new(IPC_MSG_MAX);
    struct ipc_list in;
    struct deliver_request dreq;
    struct deliver_verify vreq;
    struct bounce_request breq;
    const char *err;

    memset(&dreq, 0, sizeof(dreq));
    memset(&breq, 0, sizeof(breq));
    stream_set_timeout(s, 5000);
    ipc_list_init(&in);
    (void) ipc_handshake_server(s, DELIVER_PROTO, DELIVER_VERSION);
    if (ipc_recv_list(s, &in, &err) == 0 && deliver_request_kind(&in, &err) == DELIVER_KIND_DELIVER
	&& deliver_request_decode(&in, &dreq, &err) == 0 && dreq.rcpt_count == 2
	&& strcmp(dreq.nexthop, "example.test") == 0) {
	struct deliver_result res[] = {
	    {dreq.rcpts[0].offset, RCPT_STAT_SENT, "2.0.0", "delivered to maildir", "local"},
	    {dreq.rcpts[1].offset, RCPT_STAT_BOUNCE, "5.1.1", "unknown user", "local"},
	};

	struct deliver_reply_status st = {DEST_STAT_OK, "", 3, "none"};

	deliver_reply_encode(out, res, 2, &st);
	agent_send(s, out);
    }
    deliver_request_free(&dreq);
    if (ipc_recv_list(s, &in, &err) == 0 && deliver_request_kind(&in, &err) == DELIVER_KIND_VERIFY
	&& deliver_verify_decode(&in, &vreq, &err) == 0 && vreq.size == 100) {
	struct deliver_verify_reply rep = {RCPT_STAT_OVER_QUOTA, "5.2.2", "mailbox full"};

	deliver_verify_reply_encode(out, &rep);
	agent_send(s, out);
    }
    if (ipc_recv_list(s, &in, &err) == 0 && bounce_request_decode(&in, &breq, &err) == 0
	&& breq.type == BOUNCE_TYPE_DELAY) {
	struct bounce_reply rep = {0, "1r31eq0W7E5BAO", ""};

	bounce_reply_encode(out, &rep);
	agent_send(s, out);
    }
    bounce_request_free(&breq);
    ipc_list_fini(&in);
    str_free(&out);
    (void) stream_close(&s);
}

/* hello - a handshake list from "name=value" pairs */
static void hello(struct ipc_list *list, const char *a, const char *b, const char *c)
{
    const char *pairs[] = {a, b, c};

    ipc_list_reset(list);
    for (size_t i = 0; i < 3 && pairs[i]; i++) {
	const char *eq = strchr(pairs[i], '=');
	char name[32];

	fmt_buf_or_panic(name, sizeof(name), "%.*s", (int) (eq - pairs[i]), pairs[i]);
	ipc_list_add(list, name, eq + 1, strlen(eq + 1));
    }
}

int main(void)
{
    static const struct {
	const char *a, *b, *c;
	const char *error;		/* NULL: accepted */
    } hellos[] = {
	{"proto=deliver", "version=2", NULL, NULL},
	{"version=2", "proto=deliver", NULL, NULL},
	{"proto=bounce", "version=1", NULL, "protocol mismatch: expected deliver version 2, got bounce version 1"},
	{"proto=deliver", "version=1", NULL, "protocol mismatch: expected deliver version 2, got deliver version 1"},
	{"proto=deliver", NULL, NULL, "handshake: missing attribute \"version\""},
	{"proto=deliver", "version=2", "extra=1", "handshake: unexpected attribute \"extra\""},
	{"proto=deliver", "proto=deliver", "version=2", "handshake: duplicate attribute \"proto\""},
	{"proto=deliver", "version=2x", NULL, "handshake: attribute \"version\": bad integer value \"2x\""},
    };
    struct ipc_list list;
    const char *err;

    ipc_list_init(&list);

    unit_begin("ipc_handshake_check: the one check of a server's announcement");
    for (size_t i = 0; i < sizeof(hellos) / sizeof(hellos[0]); i++) {
	int rc;

	hello(&list, hellos[i].a, hellos[i].b, hellos[i].c);
	rc = ipc_handshake_check(&list, DELIVER_PROTO, 2, &err);
	if (hellos[i].error == NULL)
	    unit_assert_idx(rc == 0, i);
	else {
	    unit_assert_idx(rc == -1, i);
	    if (rc == -1)
		unit_assert_streq_idx(err, hellos[i].error, i);
	}
    }
    unit_end();

    unit_begin("blocking calls against a scripted agent");
    {
	int sv[2], wstatus;
	pid_t pid;
	struct stream *s;
	struct str *st = str_new(64), *dsn = str_new(64), *why = str_new(256);
	static struct bounce_rcpt drcpt = {"x@y", "", "", "4.4.1", "delayed", "timeout", "mx"};
	static const struct bounce_request breq = {
	    BOUNCE_TYPE_DELAY, {QID, "active/" QID, "a@b", 1, "", ""}, &drcpt, 1,
	};
	struct deliver_result res[2];
	struct deliver_reply_status dst;
	struct bounce_reply brep;

	unit_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	if ((pid = fork()) == 0) {
	    close(sv[0]);
	    agent(sv[1]);
	    _exit(0);
	}
	close(sv[1]);
	s = stream_open(sv[0]);
	stream_set_timeout(s, 5000);
	unit_assert(ipc_handshake_client(s, DELIVER_PROTO, DELIVER_VERSION, &err) == 0);
	unit_assert(deliver_client_call(s, &req, &list, res, &dst, &err) == 0);
	unit_assert_streq(dst.dest_status, "ok");
	unit_assert_streq(dst.dest_reason, "");
	unit_assert_inteq(dst.conn_use, 3);
	unit_assert_streq(res[0].status, "sent");
	unit_assert_streq(res[0].reason, "delivered to maildir");
	unit_assert_streq(res[1].status, "bounce");
	unit_assert_streq(res[1].relay, "local");
	unit_assert(deliver_verify(s, "bob@example.test", 100, st, dsn, why, &err) == 0);
	unit_assert_streq(str_cstr(st), "over_quota");
	unit_assert_streq(str_cstr(dsn), "5.2.2");
	unit_assert_streq(str_cstr(why), "mailbox full");
	unit_assert(bounce_client_call(s, &breq, &list, &brep, &err) == 0);
	unit_assert_inteq(brep.status, 0);
	unit_assert_streq(brep.queue_id, "1r31eq0W7E5BAO");
	(void) stream_close(&s);
	unit_assert(waitpid(pid, &wstatus, 0) == pid && WIFEXITED(wstatus));
	str_free(&st);
	str_free(&dsn);
	str_free(&why);
    }
    unit_end();

    ipc_list_fini(&list);
    return unit_done();
}
