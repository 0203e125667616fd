/* bounce_service.c - the bounce protocol server: one qmgr connection,
 * any number of requests on it. For each request: read the original,
 * decide who gets which notice (sender, postmaster for a double bounce,
 * nobody for a failed postmaster notice), write it through cleanup and
 * answer only after cleanup queued it. */

#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "ipc.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "address.h"
#include "cleanup_client.h"
#include "config.h"
#include "bounce_proto.h"
#include "mail_date.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "server.h"

#include "bounce.h"

#define NOTICE_MAX	((size_t) 256 << 20)	/* composed notice, bytes */

struct bounce_config bounce_cfg;

static unsigned bounce_counter;		/* per-process, for unique names */

/* notify_class - one word of notify_classes */
static void notify_class(const char *item, void *ctx)
{
    (void) ctx;
    if (strcasecmp(item, "bounce") == 0)
	bounce_cfg.notify_bounce = true;
    else if (strcasecmp(item, "2bounce") == 0)
	bounce_cfg.notify_2bounce = true;
    else if (strcasecmp(item, "delay") == 0)
	bounce_cfg.notify_delay = true;
    else if (strcasecmp(item, "resource") != 0 && strcasecmp(item, "software") != 0
	     && strcasecmp(item, "policy") != 0 && strcasecmp(item, "protocol") != 0
	     && strcasecmp(item, "data") != 0)
	msg_warn("notify_classes: unknown class \"%s\" ignored", item);
}

/* bounce_notify_classes - parse notify_classes */
void bounce_notify_classes(const char *value)
{
    bounce_cfg.notify_bounce = bounce_cfg.notify_2bounce = bounce_cfg.notify_delay = false;
    config_split(value, notify_class, NULL);
}

/* qualify - addr, or addr@$myorigin when it has no domain */
static void qualify(struct str *out, const char *addr)
{
    if (!str_try_set(out, addr))
	msg_panic("qualify: address too long");
    if (address_at(addr, strlen(addr)) == NULL
	&& !(str_try_appendc(out, '@') && str_try_appends(out, bounce_cfg.myorigin)))
	msg_panic("qualify: address too long");
}

/* notice_submit - compose one notice and have cleanup queue it */
static int notice_submit(const struct bounce_request *req, const struct bounce_orig *orig,
			 struct bounce_notice *n, const char *marker, struct str *notice_id,
			 struct str *reason)
{
    struct bounce_notice_info info;
    struct cleanup_result res;
    struct cleanup_client *c;
    struct str *text;
    struct tm tm;
    char boundary[200];
    char message_id[300];
    const char *error;
    const char *cp, *end, *nl;
    int ret = -1;

    n->now = time(NULL);
    n->gmtoff = mail_date_local_offset(n->now);
    n->myhostname = bounce_cfg.myhostname;
    for (int attempt = 0;; attempt++) {
	if (!fmt_try_buf(boundary, sizeof(boundary), "%s.%lld.%ld.%u/%s", req->env.queue_id,
			 (long long) n->now, (long) getpid(), ++bounce_counter,
			 bounce_cfg.myhostname)) {
	    str_set_or_panic(reason, "myhostname too long for a MIME boundary");
	    return -1;
	}
	if (bounce_notice_boundary_ok(orig, boundary))
	    break;
	if (attempt > 100)
	    msg_panic("notice_submit: no unique boundary");
    }
    if (gmtime_r(&n->now, &tm) == NULL)
	memset(&tm, 0, sizeof(tm));
    if (!fmt_try_buf(message_id, sizeof(message_id), "<%04d%02d%02d%02d%02d%02d.%s.%ld.%u@%s>",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, req->env.queue_id, (long) getpid(), bounce_counter,
		     bounce_cfg.myhostname)) {
	str_set_or_panic(reason, "myhostname too long for a Message-ID");
	return -1;
    }
    n->boundary = boundary;
    n->message_id = message_id;

    text = str_new(NOTICE_MAX);
    if (!bounce_notice_compose(text, req, orig, n, &info)) {
	str_set_or_panic(reason, "notice too large");
	str_free(&text);
	return -1;
    }
    if ((c = cleanup_client_open(NULL, &error)) == NULL) {
	str_printf_cut(reason, "cleanup service unavailable: %s", error);
	str_free(&text);
	return -1;
    }
    if (cleanup_client_begin(c, CLEANUP_FLAG_BOUNCE, "bounce", &error) < 0) {
	str_printf_cut(reason, "cleanup service: %s", error);
	cleanup_client_abandon(&c);
	str_free(&text);
	return -1;
    }
    (void) cleanup_client_sender(c, "");
    (void) cleanup_client_attr(c, BOUNCE_ATTR_NOTICE, marker);
    if (info.eight_bit)
	(void) cleanup_client_attr(c, QATTR_BODY, "8bitmime");
    if (info.smtputf8)
	(void) cleanup_client_attr(c, QATTR_SMTPUTF8, "yes");
    (void) cleanup_client_rcpt(c, n->to, NULL, NULL);
    (void) cleanup_client_message(c);
    cp = str_cstr(text);
    end = cp + str_len(text);
    while (cp < end) {
	nl = memchr(cp, '\n', (size_t) (end - cp));
	if (nl == NULL)
	    nl = end;
	(void) cleanup_client_line(c, cp, (size_t) (nl - cp));
	cp = nl + 1;
    }
    (void) cleanup_client_xend(c);
    str_free(&text);
    if (cleanup_client_finish(c, &res, &error) < 0) {
	str_printf_cut(reason, "cleanup service: %s", res.reason[0] ? res.reason : error);
    } else if (res.status != 0) {
	str_printf_cut(reason, "cleanup refused the notice: %s", res.reason);
    } else {
	str_set_or_panic(notice_id, res.queue_id);
	ret = 0;
    }
    cleanup_client_close(&c);
    return ret;
}

/* is_postmaster_address - addr is (qualified) the 2bounce recipient */
static bool is_postmaster_address(const char *addr, const struct str *pm)
{
    return strcasecmp(addr, str_cstr(pm)) == 0;
}

/* notice_kind - "non-delivery", "delay", "delivery status" for logs */
static const char *notice_kind(enum bounce_type type)
{
    return type == BOUNCE_TYPE_FAILURE ? "non-delivery"
	: type == BOUNCE_TYPE_DELAY ? "delay" : "delivery status";
}

/* bounce_handle - one request */
int bounce_handle(const struct bounce_request *req, struct str *notice_id, struct str *reason)
{
    struct bounce_orig orig;
    struct bounce_notice n;
    struct str *to = str_new(PROTO_ADDR_MAX + 512);
    struct str *copy_id = str_new(100);
    struct str *copy_why = str_new(1024);
    const char *error;
    int ret = -1;

    str_reset(notice_id);
    str_reset(reason);
    /* whatever is quoted, headers too, stays within bounce_size_limit */
    if (bounce_orig_read(req->env.queue_file, (size_t) (bounce_cfg.header_limit < bounce_cfg.size_limit
						    ? bounce_cfg.header_limit
						    : bounce_cfg.size_limit),
			 (size_t) bounce_cfg.size_limit, &orig, &error) < 0) {
	msg_warn("%s: cannot read the original message: %s", req->env.queue_id, error);
	str_printf_cut(reason, "cannot read the original message: %s", error);
	goto out_nofree;
    }
    memset(&n, 0, sizeof(n));
    n.type = req->type;
    if (req->type == BOUNCE_TYPE_DELAY)
	n.retry_until = (time_t) (req->env.arrival_time + bounce_cfg.queue_lifetime);

    if (*req->env.sender == 0) {
	bool double_bounce;
	struct str *pm = str_new(PROTO_ADDR_MAX + 512);

	/* No notice about a notice goes to the null sender. */
	if (req->type != BOUNCE_TYPE_FAILURE) {
	    msg_info("%s: null sender: no %s notification", req->env.queue_id,
		     notice_kind(req->type));
	    str_free(&pm);
	    ret = 0;
	    goto out;
	}
	qualify(pm, bounce_cfg.double_recipient);
	double_bounce = strcmp(orig.notice, BOUNCE_NOTICE_POSTMASTER) == 0 || orig.notice_header;
	for (size_t i = 0; !double_bounce && i < req->rcpt_count; i++) {
	    if (!is_postmaster_address(req->rcpts[i].address, pm))
		break;
	    if (i + 1 == req->rcpt_count)
		double_bounce = true;
	}
	if (double_bounce) {
	    msg_info("%s: discarded double bounce", req->env.queue_id);
	    str_free(&pm);
	    ret = 0;
	    goto out;
	}
	if (!bounce_cfg.notify_2bounce) {
	    msg_info("%s: discarded undeliverable notification (2bounce not in notify_classes)",
		     req->env.queue_id);
	    str_free(&pm);
	    ret = 0;
	    goto out;
	}
	n.to = str_cstr(pm);
	n.to_postmaster = true;
	n.double_bounce = true;
	n.postmaster = str_cstr(pm);
	n.quote = bounce_notice_quote(req->type, false, req->env.dsn_ret, &orig);
	ret = notice_submit(req, &orig, &n, BOUNCE_NOTICE_POSTMASTER, notice_id, reason);
	if (ret == 0)
	    msg_info("%s: postmaster non-delivery notification: %s", req->env.queue_id,
		     str_cstr(notice_id));
	str_free(&pm);
	goto out;
    }

    /* The notice to the sender. */
    qualify(to, bounce_cfg.notice_recipient);
    n.to = req->env.sender;
    n.postmaster = str_cstr(to);
    n.quote = bounce_notice_quote(req->type, false, req->env.dsn_ret, &orig);
    if ((ret = notice_submit(req, &orig, &n, BOUNCE_NOTICE_SENDER, notice_id, reason)) < 0)
	goto out;
    msg_info("%s: sender %s notification: %s", req->env.queue_id, notice_kind(req->type),
	     str_cstr(notice_id));

    /* An optional copy to postmaster (notify_classes); the sender's
     * notice is queued, so a failed copy only costs a warning. */
    if ((req->type == BOUNCE_TYPE_FAILURE && bounce_cfg.notify_bounce)
	|| (req->type == BOUNCE_TYPE_DELAY && bounce_cfg.notify_delay)) {
	qualify(to, req->type == BOUNCE_TYPE_FAILURE ? bounce_cfg.notice_recipient
		: bounce_cfg.delay_recipient);
	n.to = str_cstr(to);
	n.to_postmaster = true;
	n.quote = bounce_notice_quote(req->type, true, req->env.dsn_ret, &orig);
	if (notice_submit(req, &orig, &n, BOUNCE_NOTICE_POSTMASTER, copy_id, copy_why) == 0)
	    msg_info("%s: postmaster %s notification: %s", req->env.queue_id,
		     notice_kind(req->type), str_cstr(copy_id));
	else
	    msg_warn("%s: postmaster copy not sent: %s", req->env.queue_id, str_cstr(copy_why));
    }

out:
    bounce_orig_fini(&orig);
out_nofree:
    if (ret < 0 && str_len(reason) > 0 && strncmp(str_cstr(reason), "cannot read", 11) != 0)
	msg_warn("%s: %s notification not queued: %s", req->env.queue_id, notice_kind(req->type),
		 str_cstr(reason));
    str_free(&to);
    str_free(&copy_id);
    str_free(&copy_why);
    return ret;
}

/* bounce_service - serve one qmgr connection */
void bounce_service(struct stream *client)
{
    struct ipc_list list;
    struct bounce_request req;
    struct str *notice_id = str_new(100);
    struct str *reason = str_new(2048);
    struct str *out = str_new(4 * PROTO_TEXT_MAX);
    const char *error;

    if (ipc_handshake_server(client, BOUNCE_PROTO, BOUNCE_VERSION) < 0) {
	msg_warn("handshake: %s", stream_status_text(stream_error(client)));
	str_free(&notice_id);
	str_free(&reason);
	str_free(&out);
	return;
    }
    ipc_list_init(&list);
    for (;;) {
	struct bounce_reply rep;

	if (ipc_recv_list(client, &list, &error) < 0) {
	    enum stream_status st = stream_error(client);

	    if (st != STREAM_EOF && st != STREAM_TIMEOUT)
		msg_warn("bounce request: %s", error);
	    break;
	}
	server_watchdog_reset();
	if (bounce_request_decode(&list, &req, &error) < 0) {
	    msg_warn("%s", error);
	    bounce_request_free(&req);
	    rep.status = -1;
	    rep.queue_id = "";
	    rep.reason = error;
	} else {
	    rep.status = bounce_handle(&req, notice_id, reason) == 0 ? 0 : -1;
	    bounce_request_free(&req);
	    rep.queue_id = rep.status == 0 ? str_cstr(notice_id) : "";
	    rep.reason = str_cstr(reason);
	}
	bounce_reply_encode(out, &rep);
	if (ipc_send_encoded(client, out) < 0) {
	    msg_warn("reply to qmgr: %s", stream_status_text(stream_error(client)));
	    break;
	}
    }
    ipc_list_fini(&list);
    str_free(&notice_id);
    str_free(&reason);
    str_free(&out);
}
