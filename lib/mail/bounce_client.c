/* bounce_client.c - client side of the bounce protocol: request
 * encoding and strict reply checking (bounce_client.h). */

#include <string.h>

/* base */
#include "ipc.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "bounce_client.h"
#include "mail_proto.h"

static char bounce_error[512];

/* bounce_request_encode - the request message */
void bounce_request_encode(struct str *out, const struct bounce_request *req)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, req->request);
    ipc_encode_str(out, ATTR_QUEUE_ID, req->queue_id);
    ipc_encode_str(out, ATTR_QUEUE_FILE, req->queue_file);
    ipc_encode_str(out, ATTR_SENDER, req->sender);
    ipc_encode_long(out, ATTR_ARRIVAL_TIME, req->arrival_time);
    ipc_encode_str(out, ATTR_DSN_ENVID, req->dsn_envid);
    ipc_encode_str(out, ATTR_DSN_RET, req->dsn_ret);
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

/* bounce_reply_parse - exactly {status, queue_id, reason} in any order */
int bounce_reply_parse(const struct ipc_list *reply, long *status_r, struct str *notice_id,
		       struct str *reason, const char **error_r)
{
    static const char *const names[] = {ATTR_STATUS, ATTR_QUEUE_ID, ATTR_REASON};
    const char *vals[3] = {NULL, NULL, NULL};

    *error_r = bounce_error;
    for (size_t i = 0; i < reply->count; i++) {
	size_t k;

	for (k = 0; k < 3 && strcmp(reply->attrs[i].name, names[k]) != 0; k++)
	     /* void */ ;
	if (k == 3 || vals[k] != NULL || strlen(reply->attrs[i].value) != reply->attrs[i].len) {
	    (void) fmt_buf(bounce_error, sizeof(bounce_error),
			   "bounce reply: unexpected, duplicate or binary attribute \"%.64s\"",
			   reply->attrs[i].name);
	    return -1;
	}
	vals[k] = reply->attrs[i].value;
    }
    for (size_t k = 0; k < 3; k++) {
	if (vals[k] == NULL) {
	    (void) fmt_buf(bounce_error, sizeof(bounce_error),
			   "bounce reply: missing attribute \"%s\"", names[k]);
	    return -1;
	}
    }
    if (strcmp(vals[0], "0") == 0)
	*status_r = 0;
    else if (strcmp(vals[0], "-1") == 0)
	*status_r = -1;
    else {
	(void) fmt_buf(bounce_error, sizeof(bounce_error), "bounce reply: bad status \"%.32s\"",
		       vals[0]);
	return -1;
    }
    if (notice_id && !str_set(notice_id, vals[1]))
	str_reset(notice_id);
    if (reason && !str_set(reason, vals[2]))
	(void) str_setn(reason, vals[2], reason->max);
    return 0;
}

/* bounce_client_call - blocking request and reply */
int bounce_client_call(struct stream *s, const struct bounce_request *req, long *status_r,
		       struct str *notice_id, struct str *reason, const char **error_r)
{
    struct str msg;
    struct ipc_list reply;
    int ret = -1;

    *error_r = bounce_error;
    str_init(&msg, IPC_MSG_MAX);
    bounce_request_encode(&msg, req);
    ipc_list_init(&reply);
    if (ipc_call(s, &msg, &reply, error_r) == 0)
	ret = bounce_reply_parse(&reply, status_r, notice_id, reason, error_r);
    ipc_list_fini(&reply);
    str_fini(&msg);
    return ret;
}
