/* deliver_proto.c - both halves of the deliver protocol: request and
 * reply, deliver and verify, each encoded and strictly decoded here and
 * nowhere else (deliver_proto.h). */

#include <ctype.h>
#include <string.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "str.h"

/* mail */
#include "deliver_proto.h"
#include "mail_proto.h"
#include "proto_attr.h"

/* deliver_request_kind - deliver or verify, from the first attribute */
int deliver_request_kind(const struct ipc_list *list, const char **error_r)
{
    static char error[128];
    const char *req;

    *error_r = error;
    if (list->count == 0 || strcmp(list->attrs[0].name, ATTR_REQUEST) != 0) {
	fmt_buf_cut(error, sizeof(error),
		       "deliver protocol: request without \"request\" as its first attribute");
	return -1;
    }
    req = list->attrs[0].value;
    if (strcmp(req, DELIVER_REQ_DELIVER) == 0)
	return DELIVER_KIND_DELIVER;
    if (strcmp(req, DELIVER_REQ_VERIFY) == 0)
	return DELIVER_KIND_VERIFY;
    fmt_buf_cut(error, sizeof(error), "deliver protocol: unknown request \"%.40s\"", req);
    return -1;
}

/* deliver_request_encode - the request message */
void deliver_request_encode(struct str *out, const struct deliver_request *req)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, DELIVER_REQ_DELIVER);
    proto_envelope_encode(out, &req->env);
    ipc_encode_long(out, ATTR_DATA_OFFSET, req->data_offset);
    ipc_encode_long(out, ATTR_DATA_SIZE, req->data_size);
    ipc_encode_str(out, ATTR_NEXTHOP, req->nexthop);
    for (size_t i = 0; i < req->rcpt_count; i++) {
	const struct deliver_rcpt *r = req->rcpts + i;

	ipc_encode_str(out, ATTR_RCPT_ADDRESS, r->address);
	ipc_encode_str(out, ATTR_RCPT_ORIG, r->orig);
	ipc_encode_str(out, ATTR_RCPT_ORCPT, r->orcpt);
	ipc_encode_str(out, ATTR_RCPT_NOTIFY, r->notify);
	ipc_encode_long(out, ATTR_RCPT_OFFSET, r->offset);
    }
    ipc_encode_end(out);
}

/* deliver_request_decode - the request, in protocol order */
int deliver_request_decode(const struct ipc_list *list, struct deliver_request *req,
			   const char **error_r)
{
    struct proto_cursor c;
    size_t cap;

    memset(req, 0, sizeof(*req));
    proto_cursor_init(&c, list, "deliver request", error_r);
    if (!proto_take_value(&c, ATTR_REQUEST, DELIVER_REQ_DELIVER)
	|| !proto_envelope_decode(&c, &req->env)
	|| !proto_take_long(&c, ATTR_DATA_OFFSET, &req->data_offset)
	|| !proto_take_long(&c, ATTR_DATA_SIZE, &req->data_size)
	|| !proto_take_str(&c, ATTR_NEXTHOP, PROTO_TEXT_MAX, &req->nexthop))
	return -1;
    if (!proto_more(&c))
	return proto_fail(&c, "no recipients"), -1;
    cap = (list->count - c.pos) / 5 + 1;
    if (cap > PROTO_RCPT_MAX)
	return proto_fail(&c, "too many recipients (%zu)", cap), -1;
    req->rcpts = mem_alloc_array(cap, sizeof(*req->rcpts));
    while (proto_more(&c)) {
	struct deliver_rcpt *r = req->rcpts + req->rcpt_count;

	if (!proto_take_str(&c, ATTR_RCPT_ADDRESS, PROTO_ADDR_MAX, &r->address)
	    || !proto_take_str(&c, ATTR_RCPT_ORIG, PROTO_ADDR_MAX, &r->orig)
	    || !proto_take_str(&c, ATTR_RCPT_ORCPT, PROTO_ADDR_MAX, &r->orcpt)
	    || !proto_take_str(&c, ATTR_RCPT_NOTIFY, PROTO_TEXT_MAX, &r->notify)
	    || !proto_take_long(&c, ATTR_RCPT_OFFSET, &r->offset))
	    return -1;
	if (*r->address == 0)
	    return proto_fail(&c, "empty recipient address"), -1;
	req->rcpt_count++;
    }
    return 0;
}

/* deliver_request_free - release what decoding allocated */
void deliver_request_free(struct deliver_request *req)
{
    mem_free(&req->rcpts);
    req->rcpt_count = 0;
}

/* deliver_reply_encode - one result per recipient, then the status */
void deliver_reply_encode(struct str *out, const struct deliver_result *results, size_t count,
			  const struct deliver_reply_status *status)
{
    str_reset(out);
    for (size_t i = 0; i < count; i++) {
	const struct deliver_result *r = results + i;

	ipc_encode_long(out, ATTR_RCPT_OFFSET, r->offset);
	ipc_encode_str(out, ATTR_RCPT_STATUS, r->status);
	ipc_encode_str(out, ATTR_RCPT_DSN, r->dsn);
	ipc_encode_str(out, ATTR_RCPT_REASON, r->reason);
	ipc_encode_str(out, ATTR_RELAY, r->relay);
    }
    ipc_encode_str(out, ATTR_DEST_STATUS, status->dest_status);
    ipc_encode_str(out, ATTR_DEST_REASON, status->dest_reason);
    ipc_encode_long(out, ATTR_CONN_USE, status->conn_use);
    ipc_encode_str(out, ATTR_TLS, status->tls ? status->tls : "");
    ipc_encode_end(out);
}

/* deliver_dsn_valid - "C.SSS.DDD", class 2, 4 or 5 */
bool deliver_dsn_valid(const char *dsn)
{
    const char *p = dsn;
    int n;

    if (dsn == NULL || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
	return false;
    p += 2;
    for (n = 0; isdigit((unsigned char) p[n]); n++)
	 /* void */ ;
    if (n < 1 || n > 3 || p[n] != '.' || (n > 1 && p[0] == '0'))
	return false;
    p += n + 1;
    for (n = 0; isdigit((unsigned char) p[n]); n++)
	 /* void */ ;
    return n >= 1 && n <= 3 && p[n] == 0 && !(n > 1 && p[0] == '0');
}

/* deliver_status_class - the DSN class a result status needs, 0 if none */
char deliver_status_class(const char *status)
{
    if (strcmp(status, RCPT_STAT_SENT) == 0 || strcmp(status, RCPT_STAT_RELAYED) == 0
	|| strcmp(status, RCPT_STAT_RELAYED_DSN) == 0)
	return '2';
    if (strcmp(status, RCPT_STAT_DEFER) == 0)
	return '4';
    if (strcmp(status, RCPT_STAT_BOUNCE) == 0)
	return '5';
    return 0;
}

/* deliver_reply_decode - one result per recipient of req, in order,
 * then the next hop's status */
int deliver_reply_decode(const struct ipc_list *reply, const struct deliver_request *req,
			 struct deliver_result *results, struct deliver_reply_status *status,
			 const char **error_r)
{
    struct proto_cursor c;
    bool dead;

    proto_cursor_init(&c, reply, "deliver reply", error_r);
    for (size_t i = 0; i < req->rcpt_count; i++) {
	struct deliver_result *r = results + i;
	char class;

	if (!proto_take_long(&c, ATTR_RCPT_OFFSET, &r->offset)
	    || !proto_take_str(&c, ATTR_RCPT_STATUS, PROTO_TEXT_MAX, &r->status)
	    || !proto_take_str(&c, ATTR_RCPT_DSN, PROTO_TEXT_MAX, &r->dsn)
	    || !proto_take_str(&c, ATTR_RCPT_REASON, PROTO_TEXT_MAX, &r->reason)
	    || !proto_take_str(&c, ATTR_RELAY, PROTO_TEXT_MAX, &r->relay))
	    return -1;
	if (r->offset != req->rcpts[i].offset)
	    return proto_fail(&c, "result %zu is for offset %ld, expected %ld", i + 1, r->offset,
			      req->rcpts[i].offset), -1;
	if ((class = deliver_status_class(r->status)) == 0)
	    return proto_fail(&c, "bad rcpt_status \"%.32s\"", r->status), -1;
	if (!deliver_dsn_valid(r->dsn) || r->dsn[0] != class)
	    return proto_fail(&c, "bad rcpt_dsn \"%.32s\" for status %s", r->dsn, r->status), -1;
    }
    if (!proto_take_str(&c, ATTR_DEST_STATUS, PROTO_TEXT_MAX, &status->dest_status)
	|| !proto_take_str(&c, ATTR_DEST_REASON, PROTO_TEXT_MAX, &status->dest_reason)
	|| !proto_take_long(&c, ATTR_CONN_USE, &status->conn_use)
	|| !proto_take_str(&c, ATTR_TLS, PROTO_TEXT_MAX, &status->tls) || !proto_end(&c))
	return -1;
    if (strcmp(status->dest_status, DEST_STAT_OK) == 0)
	dead = false;
    else if (strcmp(status->dest_status, DEST_STAT_DEAD) == 0)
	dead = true;
    else
	return proto_fail(&c, "bad dest_status \"%.32s\"", status->dest_status), -1;
    if (dead && *status->dest_reason == 0)
	return proto_fail(&c, "dest_status dead without a dest_reason"), -1;
    if (!dead && *status->dest_reason != 0)
	return proto_fail(&c, "dest_status ok with a dest_reason"), -1;
    for (size_t i = 0; dead && i < req->rcpt_count; i++)
	if (strcmp(results[i].status, RCPT_STAT_DEFER) != 0)
	    return proto_fail(&c, "result %zu is %s, but the next hop is dead", i + 1,
			      results[i].status), -1;
    return 0;
}

/* deliver_verify_encode - the verify request */
void deliver_verify_encode(struct str *out, const struct deliver_verify *req)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, DELIVER_REQ_VERIFY);
    ipc_encode_str(out, ATTR_RCPT_ADDRESS, req->address);
    ipc_encode_long(out, ATTR_SIZE, req->size);
    ipc_encode_end(out);
}

/* deliver_verify_decode - the verify request, in order */
int deliver_verify_decode(const struct ipc_list *list, struct deliver_verify *req,
			  const char **error_r)
{
    struct proto_cursor c;

    proto_cursor_init(&c, list, "verify request", error_r);
    if (!proto_take_value(&c, ATTR_REQUEST, DELIVER_REQ_VERIFY)
	|| !proto_take_str(&c, ATTR_RCPT_ADDRESS, PROTO_ADDR_MAX, &req->address)
	|| !proto_take_long(&c, ATTR_SIZE, &req->size) || !proto_end(&c))
	return -1;
    return 0;
}

/* deliver_verify_reply_encode - the answer to a verify request */
void deliver_verify_reply_encode(struct str *out, const struct deliver_verify_reply *reply)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_RCPT_STATUS, reply->status);
    ipc_encode_str(out, ATTR_RCPT_DSN, reply->dsn);
    ipc_encode_str(out, ATTR_RCPT_REASON, reply->reason);
    ipc_encode_end(out);
}

/* deliver_verify_reply_decode - the answer, in order */
int deliver_verify_reply_decode(const struct ipc_list *list, struct deliver_verify_reply *reply,
				const char **error_r)
{
    static const char *const stats[] = {RCPT_STAT_OK, RCPT_STAT_UNKNOWN, RCPT_STAT_OVER_QUOTA,
					RCPT_STAT_DEFER};
    struct proto_cursor c;
    size_t i;

    proto_cursor_init(&c, list, "verify reply", error_r);
    if (!proto_take_str(&c, ATTR_RCPT_STATUS, PROTO_TEXT_MAX, &reply->status)
	|| !proto_take_str(&c, ATTR_RCPT_DSN, PROTO_TEXT_MAX, &reply->dsn)
	|| !proto_take_str(&c, ATTR_RCPT_REASON, PROTO_TEXT_MAX, &reply->reason)
	|| !proto_end(&c))
	return -1;
    for (i = 0; i < sizeof(stats) / sizeof(stats[0]) && strcmp(reply->status, stats[i]) != 0; i++)
	 /* void */ ;
    if (i == sizeof(stats) / sizeof(stats[0]))
	return proto_fail(&c, "bad rcpt_status \"%.32s\"", reply->status), -1;
    if (!deliver_dsn_valid(reply->dsn))
	return proto_fail(&c, "bad rcpt_dsn \"%.32s\"", reply->dsn), -1;
    return 0;
}
