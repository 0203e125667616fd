/* auth_proto.c - both halves of the auth protocol: the SASL exchange
 * (auth, continue), its reply, and the token redeem, each encoded and
 * strictly decoded here and nowhere else (auth_proto.h). */

#include <string.h>
#include <strings.h>

/* base */
#include "ipc.h"
#include "str.h"

/* mail */
#include "auth_proto.h"
#include "mail_proto.h"
#include "proto_attr.h"

/* auth_request_kind - auth, continue or redeem, from the first attribute */
int auth_request_kind(const struct ipc_list *list, const char **error_r)
{
    static char error[128];
    const char *req;

    *error_r = error;
    if (list->count == 0 || strcmp(list->attrs[0].name, ATTR_REQUEST) != 0) {
	fmt_buf_cut(error, sizeof(error),
		    "auth protocol: request without \"request\" as its first attribute");
	return -1;
    }
    req = list->attrs[0].value;
    if (strcmp(req, AUTH_REQ_AUTH) == 0)
	return AUTH_KIND_AUTH;
    if (strcmp(req, AUTH_REQ_CONTINUE) == 0)
	return AUTH_KIND_CONTINUE;
    if (strcmp(req, AUTH_REQ_REDEEM) == 0)
	return AUTH_KIND_REDEEM;
    fmt_buf_cut(error, sizeof(error), "auth protocol: unknown request \"%.40s\"", req);
    return -1;
}

/* auth_service_valid - smtp, pop3 or imap */
bool auth_service_valid(const char *service)
{
    return strcmp(service, AUTH_SERVICE_SMTP) == 0 || strcmp(service, AUTH_SERVICE_POP3) == 0
	|| strcmp(service, AUTH_SERVICE_IMAP) == 0;
}

/* auth_mechanism_known - PLAIN, LOGIN or SCRAM-SHA-256, any case */
bool auth_mechanism_known(const char *mechanism)
{
    return strcasecmp(mechanism, AUTH_MECH_PLAIN) == 0
	|| strcasecmp(mechanism, AUTH_MECH_LOGIN) == 0
	|| strcasecmp(mechanism, AUTH_MECH_SCRAM_SHA_256) == 0;
}

/* auth_request_encode - request=auth */
void auth_request_encode(struct str *out, const struct auth_request *req)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, AUTH_REQ_AUTH);
    ipc_encode_str(out, ATTR_SERVICE, req->service);
    ipc_encode_str(out, ATTR_MECHANISM, req->mechanism);
    ipc_encode_str(out, ATTR_CLIENT_ADDRESS, req->client_address);
    ipc_encode_str(out, ATTR_RESPONSE, req->response);
    ipc_encode_end(out);
}

/* auth_request_decode - request=auth, in order; the service must be
 * known (an unknown mechanism is the server's "fail", not a protocol
 * error) */
int auth_request_decode(const struct ipc_list *list, struct auth_request *req,
			const char **error_r)
{
    struct proto_cursor c;

    proto_cursor_init(&c, list, "auth request", error_r);
    if (!proto_take_value(&c, ATTR_REQUEST, AUTH_REQ_AUTH)
	|| !proto_take_str(&c, ATTR_SERVICE, PROTO_TEXT_MAX, &req->service)
	|| !proto_take_str(&c, ATTR_MECHANISM, PROTO_TEXT_MAX, &req->mechanism)
	|| !proto_take_str(&c, ATTR_CLIENT_ADDRESS, PROTO_TEXT_MAX, &req->client_address)
	|| !proto_take_str(&c, ATTR_RESPONSE, AUTH_RESPONSE_MAX, &req->response)
	|| !proto_end(&c))
	return -1;
    if (!auth_service_valid(req->service))
	return proto_fail(&c, "bad service \"%.32s\"", req->service), -1;
    return 0;
}

/* auth_continue_encode - request=continue */
void auth_continue_encode(struct str *out, const char *response)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, AUTH_REQ_CONTINUE);
    ipc_encode_str(out, ATTR_RESPONSE, response);
    ipc_encode_end(out);
}

/* auth_continue_decode - request=continue, in order */
int auth_continue_decode(const struct ipc_list *list, const char **response,
			 const char **error_r)
{
    struct proto_cursor c;

    proto_cursor_init(&c, list, "auth continue", error_r);
    if (!proto_take_value(&c, ATTR_REQUEST, AUTH_REQ_CONTINUE)
	|| !proto_take_str(&c, ATTR_RESPONSE, AUTH_RESPONSE_MAX, response)
	|| !proto_end(&c))
	return -1;
    return 0;
}

/* auth_reply_encode - the attributes of reply->status */
void auth_reply_encode(struct str *out, const struct auth_reply *reply)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_STATUS, reply->status);
    if (strcmp(reply->status, AUTH_STAT_CONTINUE) == 0) {
	ipc_encode_str(out, ATTR_CHALLENGE, reply->challenge);
    } else if (strcmp(reply->status, AUTH_STAT_OK) == 0) {
	ipc_encode_str(out, ATTR_USER, reply->user);
	ipc_encode_str(out, ATTR_TOKEN, reply->token);
    } else {
	ipc_encode_str(out, ATTR_REASON, reply->reason);
    }
    ipc_encode_end(out);
}

/* auth_token_valid - AUTH_TOKEN_LEN lower-case hex digits */
static bool auth_token_valid(const char *token)
{
    size_t i;

    for (i = 0; token[i]; i++)
	if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f')))
	    return false;
    return i == AUTH_TOKEN_LEN;
}

/* auth_reply_decode - status, then its attributes */
int auth_reply_decode(const struct ipc_list *list, struct auth_reply *reply,
		      const char **error_r)
{
    struct proto_cursor c;

    memset(reply, 0, sizeof(*reply));
    proto_cursor_init(&c, list, "auth reply", error_r);
    if (!proto_take_str(&c, ATTR_STATUS, PROTO_TEXT_MAX, &reply->status))
	return -1;
    if (strcmp(reply->status, AUTH_STAT_CONTINUE) == 0) {
	if (!proto_take_str(&c, ATTR_CHALLENGE, AUTH_CHALLENGE_MAX, &reply->challenge))
	    return -1;
    } else if (strcmp(reply->status, AUTH_STAT_OK) == 0) {
	if (!proto_take_str(&c, ATTR_USER, PROTO_ADDR_MAX, &reply->user)
	    || !proto_take_str(&c, ATTR_TOKEN, PROTO_TEXT_MAX, &reply->token))
	    return -1;
	if (*reply->user == 0)
	    return proto_fail(&c, "empty user"), -1;
	if (!auth_token_valid(reply->token))
	    return proto_fail(&c, "bad token"), -1;
    } else if (strcmp(reply->status, AUTH_STAT_FAIL) == 0
	       || strcmp(reply->status, AUTH_STAT_TEMPFAIL) == 0) {
	if (!proto_take_str(&c, ATTR_REASON, PROTO_TEXT_MAX, &reply->reason))
	    return -1;
    } else {
	return proto_fail(&c, "bad status \"%.32s\"", reply->status), -1;
    }
    return proto_end(&c) ? 0 : -1;
}

/* auth_redeem_encode - request=redeem */
void auth_redeem_encode(struct str *out, const struct auth_redeem *req)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, AUTH_REQ_REDEEM);
    ipc_encode_str(out, ATTR_TOKEN, req->token);
    ipc_encode_str(out, ATTR_SERVICE, req->service);
    ipc_encode_end(out);
}

/* auth_redeem_decode - request=redeem, in order (a malformed token is
 * the server's "fail", not a protocol error) */
int auth_redeem_decode(const struct ipc_list *list, struct auth_redeem *req,
		       const char **error_r)
{
    struct proto_cursor c;

    proto_cursor_init(&c, list, "redeem request", error_r);
    if (!proto_take_value(&c, ATTR_REQUEST, AUTH_REQ_REDEEM)
	|| !proto_take_str(&c, ATTR_TOKEN, PROTO_TEXT_MAX, &req->token)
	|| !proto_take_str(&c, ATTR_SERVICE, PROTO_TEXT_MAX, &req->service)
	|| !proto_end(&c))
	return -1;
    if (!auth_service_valid(req->service))
	return proto_fail(&c, "bad service \"%.32s\"", req->service), -1;
    return 0;
}

/* auth_redeem_reply_encode - the answer to a redeem */
void auth_redeem_reply_encode(struct str *out, const struct auth_redeem_reply *reply)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_STATUS, reply->status);
    if (strcmp(reply->status, AUTH_STAT_OK) == 0) {
	ipc_encode_str(out, ATTR_USER, reply->user);
	ipc_encode_str(out, ATTR_MAIL_LOCATION, reply->mail_location);
	ipc_encode_long(out, ATTR_UID, reply->uid);
	ipc_encode_long(out, ATTR_GID, reply->gid);
	ipc_encode_long(out, ATTR_QUOTA, reply->quota);
    } else {
	ipc_encode_str(out, ATTR_REASON, reply->reason);
    }
    ipc_encode_end(out);
}

/* auth_redeem_reply_decode - status, then its attributes */
int auth_redeem_reply_decode(const struct ipc_list *list, struct auth_redeem_reply *reply,
			     const char **error_r)
{
    struct proto_cursor c;

    memset(reply, 0, sizeof(*reply));
    proto_cursor_init(&c, list, "redeem reply", error_r);
    if (!proto_take_str(&c, ATTR_STATUS, PROTO_TEXT_MAX, &reply->status))
	return -1;
    if (strcmp(reply->status, AUTH_STAT_OK) == 0) {
	if (!proto_take_str(&c, ATTR_USER, PROTO_ADDR_MAX, &reply->user)
	    || !proto_take_str(&c, ATTR_MAIL_LOCATION, PROTO_TEXT_MAX, &reply->mail_location)
	    || !proto_take_long(&c, ATTR_UID, &reply->uid)
	    || !proto_take_long(&c, ATTR_GID, &reply->gid)
	    || !proto_take_long(&c, ATTR_QUOTA, &reply->quota))
	    return -1;
	if (*reply->user == 0)
	    return proto_fail(&c, "empty user"), -1;
	if (reply->mail_location[0] != '/')
	    return proto_fail(&c, "mail_location is not an absolute path"), -1;
    } else if (strcmp(reply->status, AUTH_STAT_FAIL) == 0) {
	if (!proto_take_str(&c, ATTR_REASON, PROTO_TEXT_MAX, &reply->reason))
	    return -1;
    } else {
	return proto_fail(&c, "bad status \"%.32s\"", reply->status), -1;
    }
    return proto_end(&c) ? 0 : -1;
}
