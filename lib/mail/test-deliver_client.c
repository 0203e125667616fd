/* test-deliver_client.c - unit tests for the deliver and bounce protocol
 * clients: request encoding, strict reply checks, a blocking call
 * against a scripted agent on a socketpair. */

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

static const struct deliver_rcpt rcpts[] = {
    {"bob@example.test", "", "rfc822;bob@example.test", "failure,delay", 120},
    {"eve@example.test", "alias@example.test", "", "", 160},
};
static const struct deliver_request req = {
    "1r31eq0W7E5BAN", "active/1r31eq0W7E5BAN", 200, 1234, "alice@example.org",
    1700000000, "env-1", "HDRS", "example.test", rcpts, 2,
};

/* reply - a reply message from "|"-separated name=value pairs */
static void reply(struct ipc_list *list, const char *spec)
{
    char *copy = mem_strdup(spec), *save = NULL;

    ipc_list_reset(list);
    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
	char *eq = strchr(tok, '=');

	*eq = 0;
	ipc_list_add(list, tok, eq + 1, strlen(eq + 1));
    }
    mem_free(&copy);
}

/* agent - a scripted deliver server on fd: handshake, check, answer */
static void agent(int fd)
{
    struct stream *s = stream_open(fd);
    struct ipc_list in;
    const char *err;
    int ok;

    stream_set_timeout(s, 5000);
    ipc_list_init(&in);
    (void) ipc_handshake_server(s, DELIVER_PROTO, DELIVER_VERSION);
    ok = ipc_recv_list(s, &in, &err) == 0 && in.count == 10 + 2 * 5
	&& strcmp(ipc_list_get(&in, ATTR_NEXTHOP), "example.test") == 0;
    (void) ipc_send(s, IPC_STR(ATTR_RCPT_OFFSET, "120"), IPC_STR(ATTR_RCPT_STATUS, ok ? "sent" : "defer"),
		    IPC_STR(ATTR_RCPT_DSN, ok ? "2.0.0" : "4.0.0"),
		    IPC_STR(ATTR_RCPT_REASON, "delivered to maildir"), IPC_STR(ATTR_RELAY, "local"),
		    IPC_STR(ATTR_RCPT_OFFSET, "160"), IPC_STR(ATTR_RCPT_STATUS, "bounce"),
		    IPC_STR(ATTR_RCPT_DSN, "5.1.1"), IPC_STR(ATTR_RCPT_REASON, "unknown user"),
		    IPC_STR(ATTR_RELAY, "local"), IPC_END);
    /* a verify request next */
    if (ipc_recv_list(s, &in, &err) == 0 && strcmp(ipc_list_get(&in, ATTR_REQUEST), "verify") == 0)
	(void) ipc_send(s, IPC_STR(ATTR_RCPT_STATUS, "over_quota"), IPC_STR(ATTR_RCPT_DSN, "5.2.2"),
			IPC_STR(ATTR_RCPT_REASON, "mailbox full"), IPC_END);
    /* a bounce request last */
    if (ipc_recv_list(s, &in, &err) == 0 && in.count == 7 + 7)
	(void) ipc_send(s, IPC_INT(ATTR_STATUS, 0), IPC_STR(ATTR_QUEUE_ID, "1r31eq0W7E5BAO"),
			IPC_STR(ATTR_REASON, ""), IPC_END);
    ipc_list_fini(&in);
    (void) stream_close(&s);
}

int main(void)
{
    static const struct {
	const char *reply;
	const char *want_error;		/* NULL: accepted */
    } cases[] = {
	{"rcpt_offset=120|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local|"
	 "rcpt_offset=160|rcpt_status=defer|rcpt_dsn=4.2.2|rcpt_reason=full|relay=local", NULL},
	{"rcpt_offset=120|rcpt_status=bounce|rcpt_dsn=5.1.1|rcpt_reason=|relay=|"
	 "rcpt_offset=160|rcpt_status=sent|rcpt_dsn=2.1.5|rcpt_reason=x|relay=y", NULL},
	/* one recipient missing */
	{"rcpt_offset=120|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local",
	 "5 attributes for 2 recipients"},
	/* results in the wrong order */
	{"rcpt_offset=160|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local|"
	 "rcpt_offset=120|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local",
	 "expected 120"},
	/* attributes in the wrong order */
	{"rcpt_status=sent|rcpt_offset=120|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local|"
	 "rcpt_offset=160|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local",
	 "expected \"rcpt_offset\""},
	{"rcpt_offset=120|rcpt_status=delivered|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local|"
	 "rcpt_offset=160|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local",
	 "bad rcpt_status"},
	/* a DSN of the wrong class: a bounce must be 5.x.x */
	{"rcpt_offset=120|rcpt_status=bounce|rcpt_dsn=4.0.0|rcpt_reason=ok|relay=local|"
	 "rcpt_offset=160|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local",
	 "bad rcpt_dsn"},
	{"rcpt_offset=120|rcpt_status=sent|rcpt_dsn=2.00.0|rcpt_reason=ok|relay=local|"
	 "rcpt_offset=160|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local",
	 "bad rcpt_dsn"},
	{"rcpt_offset=+120|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local|"
	 "rcpt_offset=160|rcpt_status=sent|rcpt_dsn=2.0.0|rcpt_reason=ok|relay=local",
	 "expected 120"},
    };
    static const struct {
	const char *dsn;
	bool valid;
    } dsns[] = {
	{"2.0.0", true}, {"5.1.1", true}, {"4.999.999", true}, {"4.3.0", true},
	{"3.0.0", false}, {"2.0", false}, {"2.0.0.0", false}, {"2..0", false},
	{"2.1000.0", false}, {"2.01.0", false}, {"", false}, {"x.0.0", false},
    };
    struct ipc_list list;
    struct deliver_result res[2];
    struct str *out;
    const char *err;

    unit_begin("deliver request encoding round-trips in order");
    out = str_new(IPC_MSG_MAX);
    ipc_list_init(&list);
    deliver_request_encode(out, &req);
    unit_assert(ipc_decode_list(str_cstr(out), str_len(out), &list, &err) == (long) str_len(out));
    unit_assert_inteq(list.count, 10 + 2 * 5);
    unit_assert_streq(list.attrs[0].name, ATTR_REQUEST);
    unit_assert_streq(list.attrs[0].value, "deliver");
    unit_assert_streq(ipc_list_get(&list, ATTR_QUEUE_FILE), "active/1r31eq0W7E5BAN");
    unit_assert_streq(ipc_list_get(&list, ATTR_ARRIVAL_TIME), "1700000000");
    unit_assert_streq(ipc_list_get(&list, ATTR_DATA_OFFSET), "200");
    unit_assert_streq(list.attrs[10].name, ATTR_RCPT_ADDRESS);
    unit_assert_streq(list.attrs[10].value, "bob@example.test");
    unit_assert_streq(list.attrs[14].name, ATTR_RCPT_OFFSET);
    unit_assert_streq(list.attrs[14].value, "120");
    {
	struct deliver_request r2 = req;

	r2.data_offset = 0;			/* integers are written by hand */
	r2.data_size = __LONG_MAX__;
	r2.arrival_time = -1;
	deliver_request_encode(out, &r2);
	unit_assert(ipc_decode_list(str_cstr(out), str_len(out), &list, &err) == (long) str_len(out));
	unit_assert_streq(ipc_list_get(&list, ATTR_DATA_OFFSET), "0");
	unit_assert_streq(ipc_list_get(&list, ATTR_DATA_SIZE), "9223372036854775807");
	unit_assert_streq(ipc_list_get(&list, ATTR_ARRIVAL_TIME), "-1");
	deliver_request_encode(out, &req);	/* as before, for the checks below */
	unit_assert(ipc_decode_list(str_cstr(out), str_len(out), &list, &err) == (long) str_len(out));
    }
    unit_assert_streq(list.attrs[16].value, "alias@example.test");
    unit_end();

    unit_begin("deliver reply checks");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	int r;

	reply(&list, cases[i].reply);
	r = deliver_reply_parse(&list, &req, res, &err);
	if (cases[i].want_error == NULL) {
	    unit_assert_idx(r == 0, i);
	    if (r == 0)
		deliver_results_free(res, 2);
	} else {
	    unit_assert_idx(r == -1, i);
	    unit_assert_idx(strstr(err, cases[i].want_error) != NULL, i);
	    unit_assert_idx(res[0].reason == NULL, i);
	}
    }
    reply(&list, cases[0].reply);
    unit_assert(deliver_reply_parse(&list, &req, res, &err) == 0);
    unit_assert_streq(res[1].status, "defer");
    unit_assert_streq(res[1].dsn, "4.2.2");
    unit_assert_streq(res[1].reason, "full");
    unit_assert_inteq(res[1].offset, 160);
    deliver_results_free(res, 2);
    unit_end();

    unit_begin("deliver_dsn_valid");
    for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++)
	unit_assert_idx(deliver_dsn_valid(dsns[i].dsn) == dsns[i].valid, i);
    unit_end();

    unit_begin("bounce request and reply");
    {
	static const struct bounce_rcpt brcpt = {"eve@example.test", "", "", "5.1.1", "failed",
						 "unknown user", "local"};
	static const struct bounce_request breq = {BOUNCE_REQ_FAILURE, "1r31eq0W7E5BAN",
						   "active/1r31eq0W7E5BAN", "", 1700000000, "",
						   "", &brcpt, 1};
	struct str *id = str_new(64), *why = str_new(256);
	long status = 7;

	bounce_request_encode(out, &breq);
	unit_assert(ipc_decode_list(str_cstr(out), str_len(out), &list, &err) > 0);
	unit_assert_inteq(list.count, 14);
	unit_assert_streq(list.attrs[0].value, "failure");
	unit_assert_streq(ipc_list_get(&list, ATTR_SENDER), "");
	unit_assert_streq(ipc_list_get(&list, ATTR_RCPT_ACTION), "failed");
	reply(&list, "queue_id=X1|status=0|reason=");
	unit_assert(bounce_reply_parse(&list, &status, id, why, &err) == 0);
	unit_assert_inteq(status, 0);
	unit_assert_streq(str_cstr(id), "X1");
	reply(&list, "status=-1|queue_id=|reason=cleanup unavailable");
	unit_assert(bounce_reply_parse(&list, &status, id, why, &err) == 0);
	unit_assert_inteq(status, -1);
	unit_assert_streq(str_cstr(why), "cleanup unavailable");
	reply(&list, "status=1|queue_id=|reason=");
	unit_assert(bounce_reply_parse(&list, &status, NULL, NULL, &err) == -1);
	reply(&list, "status=0|queue_id=");
	unit_assert(bounce_reply_parse(&list, &status, NULL, NULL, &err) == -1);
	unit_assert(strstr(err, "missing attribute \"reason\"") != NULL);
	reply(&list, "status=0|queue_id=|reason=|status=0");
	unit_assert(bounce_reply_parse(&list, &status, NULL, NULL, &err) == -1);
	str_free(&id);
	str_free(&why);
    }
    unit_end();

    unit_begin("blocking calls against a scripted agent");
    {
	int sv[2], wstatus;
	pid_t pid;
	struct stream *s;
	struct str *st = str_new(64), *dsn = str_new(64), *why = str_new(256);
	static const struct bounce_rcpt drcpt = {"x@y", "", "", "4.4.1", "delayed", "timeout", "mx"};
	static const struct bounce_request breq = {BOUNCE_REQ_DELAY, "1r31eq0W7E5BAN",
						   "active/1r31eq0W7E5BAN", "a@b", 1, "", "",
						   &drcpt, 1};
	long status = 5;

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
	unit_assert(deliver_client_call(s, &req, res, &err) == 0);
	unit_assert_streq(res[0].status, "sent");
	unit_assert_streq(res[0].reason, "delivered to maildir");
	unit_assert_streq(res[1].status, "bounce");
	unit_assert_streq(res[1].relay, "local");
	deliver_results_free(res, 2);
	unit_assert(deliver_verify(s, "bob@example.test", 100, st, dsn, why, &err) == 0);
	unit_assert_streq(str_cstr(st), "over_quota");
	unit_assert_streq(str_cstr(dsn), "5.2.2");
	unit_assert(bounce_client_call(s, &breq, &status, st, why, &err) == 0);
	unit_assert_inteq(status, 0);
	unit_assert_streq(str_cstr(st), "1r31eq0W7E5BAO");
	(void) stream_close(&s);
	unit_assert(waitpid(pid, &wstatus, 0) == pid && WIFEXITED(wstatus));
	str_free(&st);
	str_free(&dsn);
	str_free(&why);
    }
    unit_end();

    ipc_list_fini(&list);
    str_free(&out);
    return unit_done();
}
