/* bounce_proto.c - both halves of the bounce protocol: request and reply,
 * each encoded and strictly decoded here and nowhere else
 * (bounce_proto.h). */

#include <string.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "str.h"

/* mail */
#include "bounce_proto.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "queue_id.h"

#define BOUNCE_RCPT_FIELDS	7	/* attributes per recipient */

/* bounce_type_name - the request name of a type */
const char *bounce_type_name(enum bounce_type type)
{
    switch (type) {
    case BOUNCE_TYPE_FAILURE:
	return BOUNCE_REQ_FAILURE;
    case BOUNCE_TYPE_DELAY:
	return BOUNCE_REQ_DELAY;
    case BOUNCE_TYPE_SUCCESS:
	return BOUNCE_REQ_SUCCESS;
    }
    return "unknown";
}

/* bounce_type_parse - the type of a request name */
bool bounce_type_parse(const char *name, enum bounce_type *type)
{
    static const enum bounce_type types[] = {BOUNCE_TYPE_FAILURE, BOUNCE_TYPE_DELAY,
					     BOUNCE_TYPE_SUCCESS};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
	if (strcmp(name, bounce_type_name(types[i])) == 0) {
	    *type = types[i];
	    return true;
	}
    }
    return false;
}

/* bounce_action_valid - one of the five RFC 3464 actions */
bool bounce_action_valid(const char *action)
{
    static const char *const actions[] = {"failed", "delayed", "delivered", "relayed",
					  "expanded"};

    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
	if (strcmp(action, actions[i]) == 0)
	    return true;
    return false;
}

/* bounce_request_encode - the request message */
void bounce_request_encode(struct str *out, const struct bounce_request *req)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, bounce_type_name(req->type));
    proto_envelope_encode(out, &req->env);
    for (size_t i = 0; i < req->rcpt_count; i++) {
	const struct bounce_rcpt *r = req->rcpts + i;

	ipc_encode_str(out, ATTR_RCPT_ADDRESS, r->address);
	ipc_encode_str(out, ATTR_RCPT_ORIG, r->orig);
	ipc_encode_str(out, ATTR_RCPT_ORCPT, r->orcpt);
	ipc_encode_str(out, ATTR_RCPT_DSN, r->dsn);
	ipc_encode_str(out, ATTR_RCPT_ACTION, r->action);
	ipc_encode_str(out, ATTR_RCPT_REASON, r->reason);
	ipc_encode_str(out, ATTR_RELAY, r->relay);
    }
    ipc_encode_end(out);
}

/* bounce_request_decode - the request, in protocol order */
int bounce_request_decode(const struct ipc_list *list, struct bounce_request *req,
			  const char **error_r)
{
    struct proto_cursor c;
    const char *name;
    size_t cap;

    memset(req, 0, sizeof(*req));
    proto_cursor_init(&c, list, "bounce request", error_r);
    if (!proto_take_str(&c, ATTR_REQUEST, PROTO_TEXT_MAX, &name))
	return -1;
    if (!bounce_type_parse(name, &req->type))
	return proto_fail(&c, "unknown request \"%.32s\"", name), -1;
    if (!proto_envelope_decode(&c, &req->env))
	return -1;
    if (!proto_queue_file_ok(&req->env))
	return proto_fail(&c, "bad queue_file \"%.64s\"", req->env.queue_file), -1;
    if (!proto_more(&c))
	return proto_fail(&c, "no recipients"), -1;
    cap = (list->count - c.pos) / BOUNCE_RCPT_FIELDS + 1;
    if (cap > PROTO_RCPT_MAX)
	return proto_fail(&c, "too many recipients (%zu)", cap), -1;
    req->rcpts = mem_alloc_array(cap, sizeof(*req->rcpts));
    while (proto_more(&c)) {
	struct bounce_rcpt *r = req->rcpts + req->rcpt_count;

	if (!proto_take_str(&c, ATTR_RCPT_ADDRESS, PROTO_ADDR_MAX, &r->address)
	    || !proto_take_str(&c, ATTR_RCPT_ORIG, PROTO_ADDR_MAX, &r->orig)
	    || !proto_take_str(&c, ATTR_RCPT_ORCPT, PROTO_ADDR_MAX, &r->orcpt)
	    || !proto_take_str(&c, ATTR_RCPT_DSN, PROTO_TEXT_MAX, &r->dsn)
	    || !proto_take_str(&c, ATTR_RCPT_ACTION, PROTO_TEXT_MAX, &r->action)
	    || !proto_take_str(&c, ATTR_RCPT_REASON, PROTO_TEXT_MAX, &r->reason)
	    || !proto_take_str(&c, ATTR_RELAY, PROTO_TEXT_MAX, &r->relay))
	    return -1;
	if (*r->address == 0)
	    return proto_fail(&c, "empty recipient address"), -1;
	if (!bounce_action_valid(r->action))
	    return proto_fail(&c, "bad rcpt_action \"%.32s\"", r->action), -1;
	req->rcpt_count++;
    }
    return 0;
}

/* bounce_request_free - release what decoding allocated */
void bounce_request_free(struct bounce_request *req)
{
    mem_free(&req->rcpts);
    req->rcpt_count = 0;
}

/* bounce_reply_encode - {status, queue_id, reason} */
void bounce_reply_encode(struct str *out, const struct bounce_reply *reply)
{
    str_reset(out);
    ipc_encode_long(out, ATTR_STATUS, reply->status);
    ipc_encode_str(out, ATTR_QUEUE_ID, reply->queue_id);
    ipc_encode_str(out, ATTR_REASON, reply->reason);
    ipc_encode_end(out);
}

/* bounce_reply_decode - {status, queue_id, reason}, in order */
int bounce_reply_decode(const struct ipc_list *list, struct bounce_reply *reply,
			const char **error_r)
{
    struct proto_cursor c;
    const char *status;

    proto_cursor_init(&c, list, "bounce reply", error_r);
    if (!proto_take_str(&c, ATTR_STATUS, PROTO_TEXT_MAX, &status)
	|| !proto_take_str(&c, ATTR_QUEUE_ID, PROTO_TEXT_MAX, &reply->queue_id)
	|| !proto_take_str(&c, ATTR_REASON, PROTO_TEXT_MAX, &reply->reason)
	|| !proto_end(&c))
	return -1;
    if (strcmp(status, "0") == 0)
	reply->status = 0;
    else if (strcmp(status, "-1") == 0)
	reply->status = -1;
    else
	return proto_fail(&c, "bad status \"%.32s\"", status), -1;
    if (*reply->queue_id && !queue_id_valid(reply->queue_id))
	return proto_fail(&c, "bad queue_id \"%.32s\"", reply->queue_id), -1;
    return 0;
}
