/* test-bounce_proto.c - unit tests for both halves of the bounce protocol
 * (bounce_proto.c): encode -> bytes -> decode -> equal over varied
 * requests and replies, and every refusal with its error text. */

#include <string.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "bounce_proto.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "test-proto.h"

#define QID	"1r31eq0W7E5BAN"

/* same - two requests are equal */
static bool same(const struct bounce_request *a, const struct bounce_request *b)
{
    if (a->type != b->type || a->rcpt_count != b->rcpt_count
	|| strcmp(a->env.queue_id, b->env.queue_id) != 0
	|| strcmp(a->env.queue_file, b->env.queue_file) != 0
	|| strcmp(a->env.sender, b->env.sender) != 0 || a->env.arrival_time != b->env.arrival_time
	|| strcmp(a->env.dsn_envid, b->env.dsn_envid) != 0
	|| strcmp(a->env.dsn_ret, b->env.dsn_ret) != 0)
	return false;
    for (size_t i = 0; i < a->rcpt_count; i++) {
	const struct bounce_rcpt *x = a->rcpts + i, *y = b->rcpts + i;

	if (strcmp(x->address, y->address) != 0 || strcmp(x->orig, y->orig) != 0
	    || strcmp(x->orcpt, y->orcpt) != 0 || strcmp(x->dsn, y->dsn) != 0
	    || strcmp(x->action, y->action) != 0 || strcmp(x->reason, y->reason) != 0
	    || strcmp(x->relay, y->relay) != 0)
	    return false;
    }
    return true;
}

static const char *const good[] = {
    ATTR_REQUEST, "failure", ATTR_QUEUE_ID, QID, ATTR_QUEUE_FILE, "active/" QID,
    ATTR_SENDER, "a@example.test", ATTR_ARRIVAL_TIME, "1700000000", ATTR_DSN_ENVID, "",
    ATTR_DSN_RET, "hdrs",
    ATTR_RCPT_ADDRESS, "b@example.test", ATTR_RCPT_ORIG, "", ATTR_RCPT_ORCPT, "",
    ATTR_RCPT_DSN, "5.1.1", ATTR_RCPT_ACTION, "failed", ATTR_RCPT_REASON, "unknown",
    ATTR_RELAY, "local",
};
#define GOOD_PAIRS	(sizeof(good) / sizeof(good[0]) / 2)

/* decode_free - the decoder as proto_test_refusals wants it */
static int decode_free(const struct ipc_list *list, const char **error_r)
{
    struct bounce_request req;
    int rc = bounce_request_decode(list, &req, error_r);

    bounce_request_free(&req);
    return rc;
}

int main(void)
{
    static const struct proto_refusal refusals[] = {
	{E_NONE, 0, NULL, NULL},
	{E_VALUE, 0, "delay", NULL},
	{E_VALUE, 0, "bogus", "bounce request: unknown request \"bogus\""},
	{E_VALUE, 1, "../../etc", "bounce request: bad queue_id \"../../etc\""},
	{E_VALUE, 2, "active/1r31eq0W7E5BAM", "bounce request: bad queue_file \"active/1r31eq0W7E5BAM\""},
	{E_VALUE, 2, "../active/" QID, "bad queue_file"},
	{E_VALUE, 2, "corrupt/" QID, "bad queue_file"},
	{E_VALUE, 2, "hold/" QID, NULL},
	{E_VALUE, 4, "-1", "bounce request: bad arrival_time \"-1\""},
	{E_VALUE, 4, "12x", "bad arrival_time \"12x\""},
	{E_VALUE, 4, " 12", "bad arrival_time \" 12\""},
	{E_VALUE, 6, "maybe", "bounce request: bad dsn_ret \"maybe\""},
	{E_VALUE, 6, "FULL", NULL},
	{E_VALUE, 7, "", "bounce request: empty recipient address"},
	{E_VALUE, 11, "bounced", "bounce request: bad rcpt_action \"bounced\""},
	{E_VALUE, 11, "expanded", NULL},
	{E_NAME, 1, ATTR_QUEUE_FILE, "bounce request: attribute 2 is \"queue_file\", expected \"queue_id\""},
	{E_NAME, 12, ATTR_REASON, "attribute 13 is \"reason\", expected \"rcpt_reason\""},
	{E_DROP, 13, NULL, "bounce request: missing attribute \"relay\""},
	{E_DROP, 0, NULL, "bounce request: attribute 1 is \"queue_id\", expected \"request\""},
	{E_ADD, 0, "frob", "bounce request: attribute 15 is \"frob\", expected \"rcpt_address\""},
	{E_ADD, 0, ATTR_RCPT_ADDRESS, "bounce request: missing attribute \"rcpt_orig\""},
    };
    struct ipc_list list;
    struct str *out = str_new(IPC_MSG_MAX);
    struct bounce_request got;
    const char *err;

    ipc_list_init(&list);

    unit_begin("request round trip: every type, many recipients, empty fields, DSN values");
    {
	static struct bounce_rcpt one = {"eve@example.test", "", "", "5.1.1", "failed",
					 "unknown user", "local"};
	static struct bounce_rcpt mixed[] = {
	    {"x@y", "alias@y", "rfc822;x@y", "4.4.1", "delayed", "connection timed out",
	     "mx.y[192.0.2.1]:25"},
	    {"z@y", "", "utf-8;z\xc3\xa9@y", "2.0.0", "delivered", "", ""},
	    {"w@y", "", "", "2.0.0", "relayed", "relayed to a non-DSN host", "mx"},
	};
	struct bounce_rcpt many[500];
	char addr[500][64];
	struct bounce_request reqs[] = {
	    {BOUNCE_TYPE_FAILURE, {QID, "active/" QID, "", 1700000000, "", ""}, &one, 1},
	    {BOUNCE_TYPE_DELAY, {QID, "deferred/" QID, "a@b", 1, "ENV+2D42", "FULL"}, mixed, 3},
	    {BOUNCE_TYPE_SUCCESS, {QID, "incoming/" QID, "a@b", 0, "", "hdrs"}, mixed + 1, 1},
	    {BOUNCE_TYPE_FAILURE, {QID, "hold/" QID, "s@example.test", __LONG_MAX__, "e", ""},
	     many, 500},
	};

	for (size_t i = 0; i < 500; i++) {
	    fmt_buf_or_panic(addr[i], sizeof(addr[i]), "u%zu@example.test", i);
	    many[i] = (struct bounce_rcpt) {addr[i], i % 2 ? addr[i] : "", "", "5.0.0", "failed",
					    i % 3 ? "" : "too many hops", "none"};
	}
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
	    bounce_request_encode(out, &reqs[i]);
	    proto_test_wire(out, &list);
	    unit_assert_idx(bounce_request_decode(&list, &got, &err) == 0, i);
	    unit_assert_idx(same(&got, &reqs[i]), i);
	    bounce_request_free(&got);
	}
	bounce_request_encode(out, &reqs[0]);
	proto_test_wire(out, &list);
	unit_assert_inteq(list.count, GOOD_PAIRS);
	for (size_t i = 0; i < GOOD_PAIRS; i++)
	    unit_assert_streq_idx(list.attrs[i].name, good[2 * i], i);
	unit_assert_streq(bounce_type_name(BOUNCE_TYPE_SUCCESS), "success");
    }
    unit_end();

    unit_begin("request refusals, with their error texts");
    proto_test_refusals(refusals, sizeof(refusals) / sizeof(refusals[0]), good, GOOD_PAIRS,
			decode_free);
    proto_test_edited(&list, good, GOOD_PAIRS, E_VALUE, 3, "a\0b", 3);
    unit_assert(bounce_request_decode(&list, &got, &err) == -1);
    unit_assert_streq(err, "bounce request: NUL byte in attribute \"sender\"");
    bounce_request_free(&got);
    {
	char *big = mem_alloc(PROTO_TEXT_MAX + 2);

	memset(big, 'r', PROTO_TEXT_MAX + 1);
	big[PROTO_TEXT_MAX + 1] = 0;
	proto_test_edited(&list, good, GOOD_PAIRS, E_VALUE, 12, big, PROTO_TEXT_MAX + 1);
	unit_assert(bounce_request_decode(&list, &got, &err) == -1);
	unit_assert_streq(err, "bounce request: attribute \"rcpt_reason\" too long (4097 bytes, limit 4096)");
	bounce_request_free(&got);
	proto_test_edited(&list, good, GOOD_PAIRS, E_VALUE, 3, big, PROTO_ADDR_MAX + 1);
	unit_assert(bounce_request_decode(&list, &got, &err) == -1);
	unit_assert_streq(err, "bounce request: attribute \"sender\" too long (2049 bytes, limit 2048)");
	bounce_request_free(&got);
	mem_free(&big);
    }
    ipc_list_reset(&list);
    for (size_t i = 0; i < 7; i++)
	ipc_list_add(&list, good[2 * i], good[2 * i + 1], strlen(good[2 * i + 1]));
    unit_assert(bounce_request_decode(&list, &got, &err) == -1);
    unit_assert_streq(err, "bounce request: no recipients");
    bounce_request_free(&got);
    unit_end();

    unit_begin("reply round trip and refusals");
    {
	struct bounce_reply reps[] = {{0, "1r31eq0W7E5BAO", ""}, {-1, "", "cleanup unavailable"},
				      {0, "", "no notice needed"}};
	struct bounce_reply back;
	static const struct {
	    const char *spec[4][2];
	    const char *error;
	} bad[] = {
	    {{{"status", "1"}, {"queue_id", ""}, {"reason", ""}}, "bounce reply: bad status \"1\""},
	    {{{"status", "0"}, {"queue_id", ""}}, "bounce reply: missing attribute \"reason\""},
	    {{{"queue_id", ""}, {"status", "0"}, {"reason", ""}},
	     "bounce reply: attribute 1 is \"queue_id\", expected \"status\""},
	    {{{"status", "0"}, {"queue_id", ""}, {"reason", ""}, {"status", "0"}},
	     "bounce reply: unexpected attribute \"status\" after the last one"},
	    {{{"status", "0"}, {"queue_id", "../x"}, {"reason", ""}},
	     "bounce reply: bad queue_id \"../x\""},
	};

	for (size_t i = 0; i < sizeof(reps) / sizeof(reps[0]); i++) {
	    bounce_reply_encode(out, &reps[i]);
	    proto_test_wire(out, &list);
	    unit_assert_idx(bounce_reply_decode(&list, &back, &err) == 0, i);
	    unit_assert_idx(back.status == reps[i].status, i);
	    unit_assert_streq_idx(back.queue_id, reps[i].queue_id, i);
	    unit_assert_streq_idx(back.reason, reps[i].reason, i);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
	    ipc_list_reset(&list);
	    for (size_t k = 0; k < 4 && bad[i].spec[k][0]; k++)
		ipc_list_add(&list, bad[i].spec[k][0], bad[i].spec[k][1], strlen(bad[i].spec[k][1]));
	    unit_assert_idx(bounce_reply_decode(&list, &back, &err) == -1, i);
	    if (strstr(err, bad[i].error) == NULL)
		unit_fail_at(__FILE__, __LINE__, "case %zu: got \"%s\", want \"%s\"", i, err,
			     bad[i].error);
	}
    }
    unit_end();

    ipc_list_fini(&list);
    str_free(&out);
    return unit_done();
}
