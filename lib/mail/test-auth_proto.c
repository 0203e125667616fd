/* test-auth_proto.c - unit tests for both halves of the auth protocol
 * (auth_proto.c): encode -> bytes -> decode -> equal for every request
 * and reply, and the refusals with their error texts. */

#include <stdio.h>
#include <string.h>

/* base */
#include "ipc.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "auth_proto.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "test-proto.h"

#define TOKEN	"0123456789abcdef0123456789abcdef"

static const char *const good_auth[] = {
    ATTR_REQUEST, "auth", ATTR_SERVICE, "pop3", ATTR_MECHANISM, "PLAIN",
    ATTR_CLIENT_ADDRESS, "127.0.0.1", ATTR_RESPONSE, "AGRlbW8Ac2VjcmV0",
};
#define AUTH_PAIRS	(sizeof(good_auth) / sizeof(good_auth[0]) / 2)

static const char *const good_redeem_reply[] = {
    ATTR_STATUS, "ok", ATTR_USER, "demo@example.test", ATTR_MAIL_LOCATION, "/srv/mail/demo/",
    ATTR_UID, "1000", ATTR_GID, "1000", ATTR_QUOTA, "0",
};
#define RR_PAIRS	(sizeof(good_redeem_reply) / sizeof(good_redeem_reply[0]) / 2)

static const char *const good_reply[] = {
    ATTR_STATUS, "ok", ATTR_USER, "demo@example.test", ATTR_TOKEN, TOKEN,
};
#define REPLY_PAIRS	(sizeof(good_reply) / sizeof(good_reply[0]) / 2)

/* decode_auth, decode_reply, decode_rr - decoders for proto_test_refusals */
static int decode_auth(const struct ipc_list *list, const char **error_r)
{
    struct auth_request req;

    return auth_request_decode(list, &req, error_r);
}

static int decode_reply(const struct ipc_list *list, const char **error_r)
{
    struct auth_reply reply;

    return auth_reply_decode(list, &reply, error_r);
}

static int decode_rr(const struct ipc_list *list, const char **error_r)
{
    struct auth_redeem_reply reply;

    return auth_redeem_reply_decode(list, &reply, error_r);
}

int main(void)
{
    static const struct proto_refusal auth_refusals[] = {
	{E_NONE, 0, NULL, NULL},
	{E_VALUE, 0, "redeem", "auth request: request is \"redeem\", expected \"auth\""},
	{E_NAME, 1, ATTR_MECHANISM, "auth request: attribute 2 is \"mechanism\", expected \"service\""},
	{E_VALUE, 1, "ftp", "auth request: bad service \"ftp\""},
	{E_VALUE, 2, "CRAM-MD5", NULL},		/* the server's fail, not ours */
	{E_DROP, 4, NULL, "auth request: missing attribute \"response\""},
	{E_ADD, 0, "extra", "auth request: unexpected attribute \"extra\""},
    };
    static const struct proto_refusal reply_refusals[] = {
	{E_NONE, 0, NULL, NULL},
	{E_VALUE, 0, "maybe", "auth reply: bad status \"maybe\""},
	{E_VALUE, 1, "", "auth reply: empty user"},
	{E_VALUE, 2, "0123", "auth reply: bad token"},
	{E_VALUE, 2, "0123456789ABCDEF0123456789ABCDEF", "auth reply: bad token"},
	{E_DROP, 2, NULL, "auth reply: missing attribute \"token\""},
	{E_ADD, 0, "reason", "auth reply: unexpected attribute \"reason\""},
    };
    static const struct proto_refusal rr_refusals[] = {
	{E_NONE, 0, NULL, NULL},
	{E_VALUE, 2, "relative/", "redeem reply: mail_location is not an absolute path"},
	{E_VALUE, 3, "-1", "redeem reply: bad uid"},
	{E_VALUE, 0, "continue", "redeem reply: bad status \"continue\""},
	{E_DROP, 5, NULL, "redeem reply: missing attribute \"quota\""},
    };
    struct ipc_list list;
    struct str *out = str_new(IPC_MSG_MAX);
    const char *err = "";

    ipc_list_init(&list);

    unit_begin("auth request round trip and kind");
    {
	struct auth_request req = {"imap", "SCRAM-SHA-256", "::1", "biwsbj11c2VyLHI9eHl6"}, got;

	auth_request_encode(out, &req);
	proto_test_wire(out, &list);
	unit_assert_inteq(auth_request_kind(&list, &err), AUTH_KIND_AUTH);
	unit_assert(auth_request_decode(&list, &got, &err) == 0);
	unit_assert_streq(got.service, "imap");
	unit_assert_streq(got.mechanism, "SCRAM-SHA-256");
	unit_assert_streq(got.client_address, "::1");
	unit_assert_streq(got.response, req.response);
    }
    unit_end();

    unit_begin("continue and redeem round trips");
    {
	const char *resp = NULL;
	struct auth_redeem rq = {TOKEN, "pop3"}, rgot;

	auth_continue_encode(out, "");
	proto_test_wire(out, &list);
	unit_assert_inteq(auth_request_kind(&list, &err), AUTH_KIND_CONTINUE);
	unit_assert(auth_continue_decode(&list, &resp, &err) == 0);
	unit_assert_streq(resp, "");
	unit_assert(auth_request_decode(&list, &(struct auth_request) {0}, &err) == -1);
	unit_assert_streq(err, "auth request: request is \"continue\", expected \"auth\"");

	auth_redeem_encode(out, &rq);
	proto_test_wire(out, &list);
	unit_assert_inteq(auth_request_kind(&list, &err), AUTH_KIND_REDEEM);
	unit_assert(auth_redeem_decode(&list, &rgot, &err) == 0);
	unit_assert_streq(rgot.token, TOKEN);
	unit_assert_streq(rgot.service, "pop3");
    }
    unit_end();

    unit_begin("unknown and missing request");
    ipc_list_reset(&list);
    ipc_list_add(&list, ATTR_REQUEST, "frob", 4);
    unit_assert(auth_request_kind(&list, &err) == -1);
    unit_assert_streq(err, "auth protocol: unknown request \"frob\"");
    ipc_list_reset(&list);
    ipc_list_add(&list, ATTR_TOKEN, "x", 1);
    unit_assert(auth_request_kind(&list, &err) == -1);
    unit_end();

    unit_begin("auth replies round trip, each status");
    {
	struct auth_reply r, got;

	r = (struct auth_reply) {.status = AUTH_STAT_CONTINUE, .challenge = "VXNlcm5hbWU6"};
	auth_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(auth_reply_decode(&list, &got, &err) == 0);
	unit_assert_streq(got.status, "continue");
	unit_assert_streq(got.challenge, "VXNlcm5hbWU6");
	unit_assert(got.token == NULL && got.user == NULL);

	r = (struct auth_reply) {.status = AUTH_STAT_OK, .user = "a@b", .token = TOKEN};
	auth_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(auth_reply_decode(&list, &got, &err) == 0);
	unit_assert_streq(got.user, "a@b");
	unit_assert_streq(got.token, TOKEN);

	r = (struct auth_reply) {.status = AUTH_STAT_FAIL, .reason = AUTH_FAIL_TEXT};
	auth_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(auth_reply_decode(&list, &got, &err) == 0);
	unit_assert_streq(got.reason, AUTH_FAIL_TEXT);
	unit_assert_inteq(list.count, 2);

	r = (struct auth_reply) {.status = AUTH_STAT_TEMPFAIL, .reason = "too many failures"};
	auth_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(auth_reply_decode(&list, &got, &err) == 0);
	unit_assert_streq(got.status, "tempfail");
    }
    unit_end();

    unit_begin("redeem replies round trip");
    {
	struct auth_redeem_reply r = {AUTH_STAT_OK, "a@b", "/m/a/", 5000, 5001, 1024, NULL}, got;

	auth_redeem_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(auth_redeem_reply_decode(&list, &got, &err) == 0);
	unit_assert_streq(got.mail_location, "/m/a/");
	unit_assert(got.uid == 5000 && got.gid == 5001 && got.quota == 1024);
	r = (struct auth_redeem_reply) {.status = AUTH_STAT_FAIL, .reason = "no"};
	auth_redeem_reply_encode(out, &r);
	proto_test_wire(out, &list);
	unit_assert(auth_redeem_reply_decode(&list, &got, &err) == 0);
	unit_assert_streq(got.status, "fail");
	unit_assert(got.user == NULL);
    }
    unit_end();

    unit_begin("refusals, with their error texts");
    proto_test_refusals(auth_refusals, sizeof(auth_refusals) / sizeof(auth_refusals[0]),
			good_auth, AUTH_PAIRS, decode_auth);
    proto_test_refusals(reply_refusals, sizeof(reply_refusals) / sizeof(reply_refusals[0]),
			good_reply, REPLY_PAIRS, decode_reply);
    proto_test_refusals(rr_refusals, sizeof(rr_refusals) / sizeof(rr_refusals[0]),
			good_redeem_reply, RR_PAIRS, decode_rr);
    unit_end();

    unit_begin("names");
    unit_assert(auth_mechanism_known("plain") && auth_mechanism_known("scram-sha-256"));
    unit_assert(!auth_mechanism_known("CRAM-MD5"));
    unit_assert(auth_service_valid("smtp") && !auth_service_valid("POP3"));
    unit_end();

    ipc_list_fini(&list);
    str_free(&out);
    return unit_done();
}
