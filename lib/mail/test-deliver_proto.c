/* test-deliver_proto.c - unit tests for both halves of the deliver
 * protocol (deliver_proto.c) and the shared attribute rules and envelope
 * group (proto_attr.c): encode -> bytes -> decode -> equal over varied
 * requests and replies, and every refusal with its error text. */

#include <stdio.h>
#include <string.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "deliver_proto.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "test-proto.h"

#define QID	"1r31eq0W7E5BAN"

/* rcpts_equal - two recipient lists are the same */
static bool rcpts_equal(const struct deliver_rcpt *a, const struct deliver_rcpt *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
	if (strcmp(a[i].address, b[i].address) != 0 || strcmp(a[i].orig, b[i].orig) != 0
	    || strcmp(a[i].orcpt, b[i].orcpt) != 0 || strcmp(a[i].notify, b[i].notify) != 0
	    || a[i].offset != b[i].offset)
	    return false;
    return true;
}

/* env_equal - two envelope groups are the same */
static bool env_equal(const struct proto_envelope *a, const struct proto_envelope *b)
{
    return strcmp(a->queue_id, b->queue_id) == 0 && strcmp(a->queue_file, b->queue_file) == 0
	&& strcmp(a->sender, b->sender) == 0 && a->arrival_time == b->arrival_time
	&& strcmp(a->dsn_envid, b->dsn_envid) == 0 && strcmp(a->dsn_ret, b->dsn_ret) == 0;
}

/* A good request as name/value pairs, for the refusal cases. */
static const char *const good[] = {
    ATTR_REQUEST, "deliver", ATTR_QUEUE_ID, QID, ATTR_QUEUE_FILE, "active/" QID,
    ATTR_SENDER, "alice@example.org", ATTR_ARRIVAL_TIME, "1700000000", ATTR_DSN_ENVID, "env-1",
    ATTR_DSN_RET, "HDRS", ATTR_DATA_OFFSET, "200", ATTR_DATA_SIZE, "1234",
    ATTR_NEXTHOP, "example.test",
    ATTR_RCPT_ADDRESS, "bob@example.test", ATTR_RCPT_ORIG, "", ATTR_RCPT_ORCPT, "",
    ATTR_RCPT_NOTIFY, "", ATTR_RCPT_OFFSET, "120",
};
#define GOOD_PAIRS	(sizeof(good) / sizeof(good[0]) / 2)

/* decode_free - the decoder as proto_test_refusals wants it */
static int decode_free(const struct ipc_list *list, const char **error_r)
{
    struct deliver_request req;
    int rc = deliver_request_decode(list, &req, error_r);

    deliver_request_free(&req);
    return rc;
}

int main(void)
{
    static const struct proto_refusal refusals[] = {
	{E_NONE, 0, NULL, NULL},
	{E_VALUE, 0, "verify", "deliver request: request is \"verify\", expected \"deliver\""},
	{E_NAME, 1, ATTR_QUEUE_FILE, "deliver request: attribute 2 is \"queue_file\", expected \"queue_id\""},
	{E_NAME, 3, ATTR_DATA_OFFSET, "attribute 4 is \"data_offset\", expected \"sender\""},
	{E_NAME, 14, "rcpt_frob", "attribute 15 is \"rcpt_frob\", expected \"rcpt_offset\""},
	{E_DROP, 9, NULL, "attribute 10 is \"rcpt_address\", expected \"nexthop\""},
	{E_DROP, 14, NULL, "deliver request: missing attribute \"rcpt_offset\""},
	{E_DROP, 10, NULL, "attribute 11 is \"rcpt_orig\", expected \"rcpt_address\""},
	{E_ADD, 0, "frob", "deliver request: attribute 16 is \"frob\", expected \"rcpt_address\""},
	{E_ADD, 0, ATTR_RCPT_ADDRESS, "deliver request: missing attribute \"rcpt_orig\""},
	{E_VALUE, 1, "../../etc", "deliver request: bad queue_id \"../../etc\""},
	{E_VALUE, 4, "12x", "deliver request: bad arrival_time \"12x\""},
	{E_VALUE, 4, "-1", "bad arrival_time \"-1\""},
	{E_VALUE, 4, "1700000000.5", "bad arrival_time"},
	{E_VALUE, 7, "+200", "deliver request: bad data_offset \"+200\""},
	{E_VALUE, 7, "0200", "bad data_offset \"0200\""},
	{E_VALUE, 8, "99999999999999999999", "bad data_size"},
	{E_VALUE, 8, "", "bad data_size \"\""},
	{E_VALUE, 14, "-5", "bad rcpt_offset \"-5\""},
	{E_VALUE, 6, "maybe", "deliver request: bad dsn_ret \"maybe\""},
	{E_VALUE, 6, "full", NULL},
	{E_VALUE, 6, "", NULL},
	{E_VALUE, 10, "", "deliver request: empty recipient address"},
	/* the agent judges queue_file (proto_queue_file_ok), not the decoder */
	{E_VALUE, 2, "../../etc/passwd", NULL},
    };
    static const struct {
	const char *text;
	bool valid;
	long value;
    } numbers[] = {
	{"0", true, 0}, {"7", true, 7}, {"9223372036854775807", true, __LONG_MAX__},
	{"9223372036854775808", false, 0}, {"", false, 0}, {"-1", false, 0}, {"+1", false, 0},
	{"01", false, 0}, {" 1", false, 0}, {"1 ", false, 0}, {"0x10", false, 0},
	{"1.5", false, 0},
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
    struct str *out = str_new(IPC_MSG_MAX);
    struct deliver_request got;
    const char *err;

    ipc_list_init(&list);

    unit_begin("request round trip: one, many recipients, empty optional fields, DSN values");
    {
	struct deliver_rcpt many[300];
	char addr[300][64], orcpt[300][80];
	struct deliver_rcpt one = {"bob@example.test", "", "", "", 120};
	struct deliver_rcpt dsn[] = {
	    {"bob@example.test", "list@example.test", "rfc822;bob@example.test",
	     "success,failure,delay", 120},
	    {"eve@example.test", "", "utf-8;\xc3\xa9ve@example.test", "never", 160},
	};
	struct deliver_request reqs[] = {
	    {{QID, "active/" QID, "alice@example.org", 1700000000, "env-1", "HDRS"}, 200, 1234,
	     "example.test", &one, 1},
	    {{QID, "active/" QID, "", 0, "", ""}, 0, 0, "", &one, 1},
	    {{QID, "deferred/" QID, "a@b", __LONG_MAX__, "x+2Bid", "full"}, __LONG_MAX__,
	     __LONG_MAX__, "[192.0.2.1]:25", dsn, 2},
	    {{QID, "active/" QID, "bounces+x=y@example.org", 1, "", "hdrs"}, 55, 66, "local",
	     many, 300},
	};

	for (size_t i = 0; i < 300; i++) {
	    fmt_buf_or_panic(addr[i], sizeof(addr[i]), "user%zu@example.test", i);
	    fmt_buf_or_panic(orcpt[i], sizeof(orcpt[i]), "rfc822;user%zu@example.test", i);
	    many[i] = (struct deliver_rcpt) {addr[i], i % 2 ? addr[i] : "", orcpt[i],
					     i % 3 ? "" : "failure", (long) (100 + i * 40)};
	}
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
	    deliver_request_encode(out, &reqs[i]);
	    proto_test_wire(out, &list);
	    unit_assert_inteq(deliver_request_kind(&list, &err), DELIVER_KIND_DELIVER);
	    unit_assert_idx(deliver_request_decode(&list, &got, &err) == 0, i);
	    unit_assert_idx(env_equal(&got.env, &reqs[i].env), i);
	    unit_assert_idx(got.data_offset == reqs[i].data_offset, i);
	    unit_assert_idx(got.data_size == reqs[i].data_size, i);
	    unit_assert_idx(strcmp(got.nexthop, reqs[i].nexthop) == 0, i);
	    unit_assert_idx(got.rcpt_count == reqs[i].rcpt_count, i);
	    unit_assert_idx(rcpts_equal(got.rcpts, reqs[i].rcpts, reqs[i].rcpt_count), i);
	    deliver_request_free(&got);
	}
	/* the wire order: request, the envelope group, then the rest */
	deliver_request_encode(out, &reqs[0]);
	proto_test_wire(out, &list);
	for (size_t i = 0; i < GOOD_PAIRS; i++)
	    unit_assert_streq_idx(list.attrs[i].name, good[2 * i], i);
    }
    unit_end();

    unit_begin("request refusals, with their error texts");
    proto_test_refusals(refusals, sizeof(refusals) / sizeof(refusals[0]), good, GOOD_PAIRS,
			decode_free);
    /* NUL bytes, sizes, no recipients, an unknown request */
    proto_test_edited(&list, good, GOOD_PAIRS, E_VALUE, 3, "a\0b", 3);
    unit_assert(deliver_request_decode(&list, &got, &err) == -1);
    unit_assert_streq(err, "deliver request: NUL byte in attribute \"sender\"");
    deliver_request_free(&got);
    {
	char *big = mem_alloc(PROTO_ADDR_MAX + 2);

	memset(big, 'a', PROTO_ADDR_MAX + 1);
	big[PROTO_ADDR_MAX + 1] = 0;
	proto_test_edited(&list, good, GOOD_PAIRS, E_VALUE, 10, big, PROTO_ADDR_MAX + 1);
	unit_assert(deliver_request_decode(&list, &got, &err) == -1);
	unit_assert_streq(err, "deliver request: attribute \"rcpt_address\" too long (2049 bytes, limit 2048)");
	deliver_request_free(&got);
	proto_test_edited(&list, good, GOOD_PAIRS, E_VALUE, 10, big, PROTO_ADDR_MAX);
	unit_assert(deliver_request_decode(&list, &got, &err) == 0);
	deliver_request_free(&got);
	mem_free(&big);
    }
    ipc_list_reset(&list);
    for (size_t i = 0; i < 10; i++)
	ipc_list_add(&list, good[2 * i], good[2 * i + 1], strlen(good[2 * i + 1]));
    unit_assert(deliver_request_decode(&list, &got, &err) == -1);
    unit_assert_streq(err, "deliver request: no recipients");
    deliver_request_free(&got);
    ipc_list_reset(&list);
    unit_assert(deliver_request_kind(&list, &err) == -1);
    unit_assert(strstr(err, "without \"request\"") != NULL);
    ipc_list_add(&list, ATTR_REQUEST, "frobnicate", 10);
    unit_assert(deliver_request_kind(&list, &err) == -1);
    unit_assert_streq(err, "deliver protocol: unknown request \"frobnicate\"");
    unit_end();

    unit_begin("proto_number and deliver_dsn_valid");
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
	long v = -42;

	unit_assert_idx(proto_number(numbers[i].text, &v) == numbers[i].valid, i);
	if (numbers[i].valid)
	    unit_assert_idx(v == numbers[i].value, i);
    }
    for (size_t i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++)
	unit_assert_idx(deliver_dsn_valid(dsns[i].dsn) == dsns[i].valid, i);
    unit_end();

    unit_begin("proto_queue_file_ok");
    {
	static const struct {
	    const char *file;
	    bool ok;
	} files[] = {
	    {"active/" QID, true}, {"deferred/" QID, true}, {"incoming/" QID, true},
	    {"hold/" QID, true}, {"corrupt/" QID, false}, {"active/1r31eq0W7E5BAM", false},
	    {"../active/" QID, false}, {"/var/spool/active/" QID, false}, {QID, false},
	    {"active/" QID "/x", false}, {"", false},
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
	    struct proto_envelope env = {QID, files[i].file, "", 0, "", ""};

	    unit_assert_idx(proto_queue_file_ok(&env) == files[i].ok, i);
	}
    }
    unit_end();

    unit_begin("reply round trip and refusals");
    {
	struct deliver_rcpt two[] = {{"a@x", "", "", "", 120}, {"b@x", "", "", "", 160}};
	struct deliver_request req = {{QID, "active/" QID, "", 0, "", ""}, 1, 1, "", two, 2};
	struct deliver_result res[] = {
	    {120, RCPT_STAT_SENT, "2.0.0", "delivered to maildir", "local"},
	    {160, RCPT_STAT_BOUNCE, "5.1.1", "", ""},
	};
	struct deliver_result defers[] = {
	    {120, RCPT_STAT_DEFER, "4.4.1", "connect to mx[192.0.2.1]:25: refused", "none"},
	    {160, RCPT_STAT_DEFER, "4.4.1", "connect to mx[192.0.2.1]:25: refused", "none"},
	};
	struct deliver_reply_status st = {DEST_STAT_OK, "", 2, "Verified:TLSv1.3:TLS_AES_256_GCM_SHA384"}, stback;
	struct deliver_reply_status dead = {DEST_STAT_DEAD, "connect to mx[192.0.2.1]:25: refused", 0, ""};
	struct deliver_result back[2];
	static const struct {
	    size_t attr;		/* 0..12: which attribute to change */
	    const char *value;
	    const char *name;		/* or rename it */
	    const char *error;
	} bad[] = {
	    {0, "160", NULL, "deliver reply: result 1 is for offset 160, expected 120"},
	    {0, "+120", NULL, "deliver reply: bad rcpt_offset \"+120\""},
	    {1, "delivered", NULL, "deliver reply: bad rcpt_status \"delivered\""},
	    {2, "4.0.0", NULL, "deliver reply: bad rcpt_dsn \"4.0.0\" for status sent"},
	    {1, "relayed_later", NULL, "deliver reply: bad rcpt_status \"relayed_later\""},
	    {7, "5.01.1", NULL, "bad rcpt_dsn \"5.01.1\" for status bounce"},
	    {1, NULL, ATTR_RCPT_DSN, "deliver reply: attribute 2 is \"rcpt_dsn\", expected \"rcpt_status\""},
	    {9, NULL, "frob", "attribute 10 is \"frob\", expected \"relay\""},
	    {10, "alive", NULL, "deliver reply: bad dest_status \"alive\""},
	    {10, "", NULL, "deliver reply: bad dest_status \"\""},
	    {10, "dead", NULL, "deliver reply: dest_status dead without a dest_reason"},
	    {11, "refused", NULL, "deliver reply: dest_status ok with a dest_reason"},
	    {12, "-1", NULL, "deliver reply: bad conn_use \"-1\""},
	    {12, "x", NULL, "deliver reply: bad conn_use \"x\""},
	    {10, NULL, ATTR_CONN_USE, "attribute 11 is \"conn_use\", expected \"dest_status\""},
	    {12, NULL, ATTR_DEST_REASON, "attribute 13 is \"dest_reason\", expected \"conn_use\""},
	    {13, NULL, "frob", "attribute 14 is \"frob\", expected \"tls\""},
	};

	deliver_reply_encode(out, res, 2, &st);
	proto_test_wire(out, &list);
	unit_assert_inteq(list.count, 14);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == 0);
	for (size_t i = 0; i < 2; i++) {
	    unit_assert_idx(back[i].offset == res[i].offset, i);
	    unit_assert_streq_idx(back[i].status, res[i].status, i);
	    unit_assert_streq_idx(back[i].dsn, res[i].dsn, i);
	    unit_assert_streq_idx(back[i].reason, res[i].reason, i);
	    unit_assert_streq_idx(back[i].relay, res[i].relay, i);
	}
	unit_assert_streq(stback.dest_status, "ok");
	unit_assert_streq(stback.dest_reason, "");
	unit_assert_inteq(stback.conn_use, 2);
	unit_assert_streq(stback.tls, "Verified:TLSv1.3:TLS_AES_256_GCM_SHA384");
	/* the relayed statuses (version 4) are class 2 like sent */
	res[0].status = RCPT_STAT_RELAYED_DSN;
	deliver_reply_encode(out, res, 2, &st);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == 0);
	unit_assert_streq(back[0].status, "relayed_dsn");
	res[0].status = RCPT_STAT_RELAYED;
	res[0].dsn = "4.0.0";
	deliver_reply_encode(out, res, 2, &st);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == -1);
	res[0].status = RCPT_STAT_SENT;
	res[0].dsn = "2.0.0";
	unit_assert(deliver_status_class("relayed") == '2' && deliver_status_class("defer") == '4'
		    && deliver_status_class("bounce") == '5' && deliver_status_class("ok") == 0);
	deliver_reply_encode(out, res, 2, &st);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
	    proto_test_wire(out, &list);
	    if (bad[i].value) {
		mem_free(&list.attrs[bad[i].attr].value);
		list.attrs[bad[i].attr].value = mem_strdup(bad[i].value);
		list.attrs[bad[i].attr].len = strlen(bad[i].value);
	    } else {
		mem_free(&list.attrs[bad[i].attr].name);
		list.attrs[bad[i].attr].name = mem_strdup(bad[i].name);
	    }
	    unit_assert_idx(deliver_reply_decode(&list, &req, back, &stback, &err) == -1, i);
	    if (strstr(err, bad[i].error) == NULL)
		unit_fail_at(__FILE__, __LINE__, "case %zu: got \"%s\", want \"%s\"", i, err,
			     bad[i].error);
	}
	/* a dead next hop: every result a defer, with a reason */
	deliver_reply_encode(out, defers, 2, &dead);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == 0);
	unit_assert_streq(stback.dest_status, "dead");
	unit_assert_streq(stback.dest_reason, dead.dest_reason);
	unit_assert_inteq(stback.conn_use, 0);
	deliver_reply_encode(out, res, 2, &dead);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == -1);
	unit_assert_streq(err, "deliver reply: result 1 is sent, but the next hop is dead");
	defers[1].status = RCPT_STAT_BOUNCE;
	defers[1].dsn = "5.1.1";
	deliver_reply_encode(out, defers, 2, &dead);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == -1);
	unit_assert_streq(err, "deliver reply: result 2 is bounce, but the next hop is dead");
	/* one result missing; one too many; a version 2 reply (no status) */
	deliver_reply_encode(out, res, 1, &st);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == -1);
	unit_assert_streq(err, "deliver reply: attribute 6 is \"dest_status\", expected \"rcpt_offset\"");
	str_reset(out);			/* as version 2 sent it */
	for (size_t i = 0; i < 2; i++) {
	    ipc_encode_long(out, ATTR_RCPT_OFFSET, res[i].offset);
	    ipc_encode_str(out, ATTR_RCPT_STATUS, res[i].status);
	    ipc_encode_str(out, ATTR_RCPT_DSN, res[i].dsn);
	    ipc_encode_str(out, ATTR_RCPT_REASON, res[i].reason);
	    ipc_encode_str(out, ATTR_RELAY, res[i].relay);
	}
	ipc_encode_end(out);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == -1);
	unit_assert_streq(err, "deliver reply: missing attribute \"dest_status\"");
	req.rcpt_count = 1;
	deliver_reply_encode(out, res, 2, &st);
	proto_test_wire(out, &list);
	unit_assert(deliver_reply_decode(&list, &req, back, &stback, &err) == -1);
	unit_assert_streq(err, "deliver reply: attribute 6 is \"rcpt_offset\", expected \"dest_status\"");
    }
    unit_end();

    unit_begin("verify request and reply: round trip and refusals");
    {
	struct deliver_verify v = {"bob@example.test", 5000}, vb;
	struct deliver_verify_reply r = {RCPT_STAT_OVER_QUOTA, "5.2.2", "mailbox full"}, rb;

	deliver_verify_encode(out, &v);
	proto_test_wire(out, &list);
	unit_assert_inteq(deliver_request_kind(&list, &err), DELIVER_KIND_VERIFY);
	unit_assert(deliver_verify_decode(&list, &vb, &err) == 0);
	unit_assert_streq(vb.address, v.address);
	unit_assert_inteq(vb.size, 5000);
	ipc_list_add(&list, ATTR_SIZE, "1", 1);
	unit_assert(deliver_verify_decode(&list, &vb, &err) == -1);
	unit_assert_streq(err, "verify request: unexpected attribute \"size\" after the last one");
	while (list.count > 2) {	/* drop the last attributes, freed */
	    list.count--;
	    mem_free(&list.attrs[list.count].name);
	    mem_free(&list.attrs[list.count].value);
	}
	unit_assert(deliver_verify_decode(&list, &vb, &err) == -1);
	unit_assert_streq(err, "verify request: missing attribute \"size\"");

	deliver_verify_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(deliver_verify_reply_decode(&list, &rb, &err) == 0);
	unit_assert_streq(rb.status, "over_quota");
	unit_assert_streq(rb.dsn, "5.2.2");
	unit_assert_streq(rb.reason, "mailbox full");
	r.status = "sent";
	deliver_verify_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(deliver_verify_reply_decode(&list, &rb, &err) == -1);
	unit_assert_streq(err, "verify reply: bad rcpt_status \"sent\"");
	r.status = RCPT_STAT_OK;
	r.dsn = "2.1";
	deliver_verify_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(deliver_verify_reply_decode(&list, &rb, &err) == -1);
	unit_assert_streq(err, "verify reply: bad rcpt_dsn \"2.1\"");
    }
    unit_end();

    ipc_list_fini(&list);
    str_free(&out);
    return unit_done();
}
