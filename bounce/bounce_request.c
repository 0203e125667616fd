/* bounce_request.c - strict decoding of one bounce request (mail_proto.h,
 * conversation 3): the fixed attributes in protocol order, then one group
 * of seven attributes per recipient. Anything else is a protocol error,
 * so a confused client never gets a notice written on its behalf. */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "str.h"

/* mail */
#include "mail_proto.h"
#include "queue_id.h"

#include "bounce.h"

static char bounce_req_error[256];

static const char *const req_head[] = {
    ATTR_REQUEST, ATTR_QUEUE_ID, ATTR_QUEUE_FILE, ATTR_SENDER, ATTR_ARRIVAL_TIME,
    ATTR_DSN_ENVID, ATTR_DSN_RET,
};
#define REQ_HEAD_COUNT	(sizeof(req_head) / sizeof(req_head[0]))

static const char *const req_rcpt[] = {
    ATTR_RCPT_ADDRESS, ATTR_RCPT_ORIG, ATTR_RCPT_ORCPT, ATTR_RCPT_DSN, ATTR_RCPT_ACTION,
    ATTR_RCPT_REASON, ATTR_RELAY,
};
#define REQ_RCPT_COUNT	(sizeof(req_rcpt) / sizeof(req_rcpt[0]))

/* req_fail - format the error, return -1 */
static int req_fail(const char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int req_fail(const char **error_r, const char *fmt, ...)
{
    struct str *s = str_new(sizeof(bounce_req_error) - 1);
    va_list ap;

    va_start(ap, fmt);
    (void) str_vappendf(s, fmt, ap);
    va_end(ap);
    (void) str_copy_out(bounce_req_error, sizeof(bounce_req_error), str_cstr(s));
    str_free(&s);
    *error_r = bounce_req_error;
    return -1;
}

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

/* queue_file_ok - "DIR/ID" with a queue state DIR and ID == queue_id */
static bool queue_file_ok(const char *path, const char *queue_id)
{
    static const char *const dirs[] = {"active/", "deferred/", "incoming/", "hold/"};

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
	size_t n = strlen(dirs[i]);

	if (strncmp(path, dirs[i], n) == 0)
	    return strcmp(path + n, queue_id) == 0;
    }
    return false;
}

/* bounce_req_decode - check and decode a request */
int bounce_req_decode(const struct ipc_list *list, struct bounce_req *req, const char **error_r)
{
    const char *head[REQ_HEAD_COUNT];
    char *end;
    size_t limit;

    memset(req, 0, sizeof(*req));
    for (size_t i = 0; i < list->count; i++) {
	const struct ipc_attr *a = list->attrs + i;
	const char *want = i < REQ_HEAD_COUNT ? req_head[i]
	    : req_rcpt[(i - REQ_HEAD_COUNT) % REQ_RCPT_COUNT];

	if (strcmp(a->name, want) != 0)
	    return req_fail(error_r, "bounce request: attribute %zu is \"%.64s\", expected \"%s\"",
			    i + 1, a->name, want);
	if (strlen(a->value) != a->len)
	    return req_fail(error_r, "bounce request: NUL byte in attribute \"%s\"", want);
	limit = strcmp(want, ATTR_SENDER) == 0 || strcmp(want, ATTR_RCPT_ADDRESS) == 0
	    || strcmp(want, ATTR_RCPT_ORIG) == 0 || strcmp(want, ATTR_RCPT_ORCPT) == 0
	    ? BOUNCE_ADDR_MAX : BOUNCE_TEXT_MAX;
	if (a->len > limit)
	    return req_fail(error_r, "bounce request: attribute \"%s\" too long (%zu bytes)",
			    want, a->len);
    }
    if (list->count < REQ_HEAD_COUNT)
	return req_fail(error_r, "bounce request: incomplete");
    if (list->count == REQ_HEAD_COUNT)
	return req_fail(error_r, "bounce request: no recipients");
    if ((list->count - REQ_HEAD_COUNT) % REQ_RCPT_COUNT != 0)
	return req_fail(error_r, "bounce request: incomplete recipient");
    for (size_t i = 0; i < REQ_HEAD_COUNT; i++)
	head[i] = list->attrs[i].value;

    if (strcmp(head[0], BOUNCE_REQ_FAILURE) == 0)
	req->type = BOUNCE_TYPE_FAILURE;
    else if (strcmp(head[0], BOUNCE_REQ_DELAY) == 0)
	req->type = BOUNCE_TYPE_DELAY;
    else if (strcmp(head[0], BOUNCE_REQ_SUCCESS) == 0)
	req->type = BOUNCE_TYPE_SUCCESS;
    else
	return req_fail(error_r, "bounce request: unknown request \"%.32s\"", head[0]);
    req->queue_id = head[1];
    if (!queue_id_valid(req->queue_id))
	return req_fail(error_r, "bounce request: bad queue_id \"%.32s\"", req->queue_id);
    req->queue_file = head[2];
    if (!queue_file_ok(req->queue_file, req->queue_id))
	return req_fail(error_r, "bounce request: bad queue_file \"%.64s\"", req->queue_file);
    req->sender = head[3];
    errno = 0;
    req->arrival_time = strtol(head[4], &end, 10);
    if (*head[4] == 0 || *end != 0 || errno != 0 || req->arrival_time < 0)
	return req_fail(error_r, "bounce request: bad arrival_time \"%.32s\"", head[4]);
    req->dsn_envid = head[5];
    req->dsn_ret = head[6];
    if (*req->dsn_ret && strcasecmp(req->dsn_ret, "full") != 0
	&& strcasecmp(req->dsn_ret, "hdrs") != 0)
	return req_fail(error_r, "bounce request: bad dsn_ret \"%.32s\"", req->dsn_ret);

    req->rcpt_count = (list->count - REQ_HEAD_COUNT) / REQ_RCPT_COUNT;
    if (req->rcpt_count > BOUNCE_RCPT_MAX)
	return req_fail(error_r, "bounce request: too many recipients (%zu)", req->rcpt_count);
    req->rcpts = mem_alloc_array(req->rcpt_count, sizeof(*req->rcpts));
    for (size_t r = 0; r < req->rcpt_count; r++) {
	const struct ipc_attr *a = list->attrs + REQ_HEAD_COUNT + r * REQ_RCPT_COUNT;
	struct bounce_req_rcpt *rc = req->rcpts + r;

	rc->address = a[0].value;
	rc->orig = a[1].value;
	rc->orcpt = a[2].value;
	rc->dsn = a[3].value;
	rc->action = a[4].value;
	rc->reason = a[5].value;
	rc->relay = a[6].value;
	if (*rc->address == 0) {
	    bounce_req_fini(req);
	    return req_fail(error_r, "bounce request: empty recipient address");
	}
	if (!dsn_action_valid(a[4].value)) {
	    bounce_req_fini(req);
	    return req_fail(error_r, "bounce request: bad rcpt_action \"%.32s\"", a[4].value);
	}
    }
    return 0;
}

/* bounce_req_fini - release a decoded request */
void bounce_req_fini(struct bounce_req *req)
{
    mem_free(&req->rcpts);
    req->rcpt_count = 0;
}
