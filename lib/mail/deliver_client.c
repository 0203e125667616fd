/* deliver_client.c - client side of the deliver protocol: request
 * encoding, strict reply checking, blocking calls (deliver_client.h). */

#include <ctype.h>
#include <string.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "deliver_client.h"
#include "mail_proto.h"

#define DELIVER_REPLY_FIELDS	5	/* attributes per recipient */

static char deliver_error[512];

/* parse_offset - a non-negative decimal without sign or leading zeros */
static bool parse_offset(const char *text, long *value)
{
    long v = 0;

    if (*text == 0 || (text[0] == '0' && text[1] != 0))
	return false;
    for (const char *p = text; *p; p++) {
	if (!isdigit((unsigned char) *p) || v > (__LONG_MAX__ - 9) / 10)
	    return false;
	v = v * 10 + (*p - '0');
    }
    *value = v;
    return true;
}

/* deliver_request_encode - the request message */
void deliver_request_encode(struct str *out, const struct deliver_request *req)
{
    str_reset(out);
    ipc_encode_str(out, ATTR_REQUEST, DELIVER_REQ_DELIVER);
    ipc_encode_str(out, ATTR_QUEUE_ID, req->queue_id);
    ipc_encode_str(out, ATTR_QUEUE_FILE, req->queue_file);
    ipc_encode_long(out, ATTR_DATA_OFFSET, req->data_offset);
    ipc_encode_long(out, ATTR_DATA_SIZE, req->data_size);
    ipc_encode_str(out, ATTR_SENDER, req->sender);
    ipc_encode_long(out, ATTR_ARRIVAL_TIME, req->arrival_time);
    ipc_encode_str(out, ATTR_DSN_ENVID, req->dsn_envid);
    ipc_encode_str(out, ATTR_DSN_RET, req->dsn_ret);
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

/* expect - the attribute at index i has this name */
static bool expect(const struct ipc_list *reply, size_t i, const char *name)
{
    if (strcmp(reply->attrs[i].name, name) == 0 && strlen(reply->attrs[i].value) == reply->attrs[i].len)
	return true;
    (void) fmt_buf(deliver_error, sizeof(deliver_error),
		   "deliver reply: attribute %zu is \"%.64s\", expected \"%s\"", i,
		   reply->attrs[i].name, name);
    return false;
}

/* deliver_reply_parse - check and convert a decoded reply */
int deliver_reply_parse(const struct ipc_list *reply, const struct deliver_request *req,
			struct deliver_result *results, const char **error_r)
{
    size_t n = req->rcpt_count;

    *error_r = deliver_error;
    memset(results, 0, n * sizeof(*results));
    if (reply->count != n * DELIVER_REPLY_FIELDS) {
	(void) fmt_buf(deliver_error, sizeof(deliver_error),
		       "deliver reply: %zu attributes for %zu recipients", reply->count, n);
	return -1;
    }
    for (size_t i = 0; i < n; i++) {
	size_t a = i * DELIVER_REPLY_FIELDS;
	struct deliver_result *res = results + i;
	const char *status, *dsn;
	long offset;

	if (!expect(reply, a, ATTR_RCPT_OFFSET) || !expect(reply, a + 1, ATTR_RCPT_STATUS)
	    || !expect(reply, a + 2, ATTR_RCPT_DSN) || !expect(reply, a + 3, ATTR_RCPT_REASON)
	    || !expect(reply, a + 4, ATTR_RELAY))
	    goto fail;
	if (!parse_offset(reply->attrs[a].value, &offset) || offset != req->rcpts[i].offset) {
	    (void) fmt_buf(deliver_error, sizeof(deliver_error),
			   "deliver reply: result %zu is for offset \"%.32s\", expected %ld",
			   i, reply->attrs[a].value, req->rcpts[i].offset);
	    goto fail;
	}
	status = reply->attrs[a + 1].value;
	dsn = reply->attrs[a + 2].value;
	if (strcmp(status, RCPT_STAT_SENT) != 0 && strcmp(status, RCPT_STAT_DEFER) != 0
	    && strcmp(status, RCPT_STAT_BOUNCE) != 0) {
	    (void) fmt_buf(deliver_error, sizeof(deliver_error),
			   "deliver reply: bad rcpt_status \"%.32s\"", status);
	    goto fail;
	}
	if (!deliver_dsn_valid(dsn)
	    || dsn[0] != (status[0] == 's' ? '2' : status[0] == 'd' ? '4' : '5')) {
	    (void) fmt_buf(deliver_error, sizeof(deliver_error),
			   "deliver reply: bad rcpt_dsn \"%.32s\" for status %s", dsn, status);
	    goto fail;
	}
	res->offset = offset;
	(void) str_copy_out(res->status, sizeof(res->status), status);
	(void) str_copy_out(res->dsn, sizeof(res->dsn), dsn);
	res->reason = mem_strdup(reply->attrs[a + 3].value);
	res->relay = mem_strdup(reply->attrs[a + 4].value);
    }
    return 0;

  fail:
    deliver_results_free(results, n);
    return -1;
}

/* deliver_results_free - free the allocated result texts */
void deliver_results_free(struct deliver_result *results, size_t count)
{
    for (size_t i = 0; i < count; i++) {
	mem_free(&results[i].reason);
	mem_free(&results[i].relay);
    }
}

/* deliver_client_call - blocking request and reply */
int deliver_client_call(struct stream *s, const struct deliver_request *req,
			struct deliver_result *results, const char **error_r)
{
    struct str msg;
    struct ipc_list reply;
    int ret = -1;

    *error_r = deliver_error;
    str_init(&msg, IPC_MSG_MAX);
    deliver_request_encode(&msg, req);
    ipc_list_init(&reply);
    if (ipc_call(s, &msg, &reply, error_r) == 0)
	ret = deliver_reply_parse(&reply, req, results, error_r);
    ipc_list_fini(&reply);
    str_fini(&msg);
    return ret;
}

/* deliver_verify - blocking RCPT-time recipient check */
int deliver_verify(struct stream *s, const char *address, long size, struct str *status,
		   struct str *dsn, struct str *reason, const char **error_r)
{
    struct str junk;
    int ret;

    if (ipc_send(s, IPC_STR(ATTR_REQUEST, DELIVER_REQ_VERIFY),
		 IPC_STR(ATTR_RCPT_ADDRESS, address), IPC_INT(ATTR_SIZE, size), IPC_END) < 0) {
	*error_r = "verify request: write failed";
	return -1;
    }
    str_init(&junk, 4096);
    ret = ipc_recv(s, error_r, IPC_RECV_STR(ATTR_RCPT_STATUS, status),
		   IPC_RECV_STR(ATTR_RCPT_DSN, dsn ? dsn : &junk),
		   IPC_RECV_STR(ATTR_RCPT_REASON, reason ? reason : &junk), IPC_END);
    str_fini(&junk);
    return ret;
}
