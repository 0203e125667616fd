/* main.c - local-delivery: the delivery agent for local and virtual
 * mailboxes, serving the "deliver" protocol (mail_proto.h) on
 * private/local.
 *
 * One qmgr connection per process (SERVER_SINGLE), any number of
 * requests on it:
 *   request=deliver  a queue file and its recipients for this transport;
 *                    the answer gives each recipient's status (sent,
 *                    defer, bounce), enhanced status code and reason.
 *                    The queue file is opened read-only; qmgr alone
 *                    marks recipients done.
 *   request=verify   smtpd's RCPT-time question: does the recipient
 *                    exist, is its mailbox over quota?
 * master.cf runs this program with unpriv=n: it stays root so that each
 * delivery can switch fully to the recipient's uid in a child (runas.c).
 * When master is not root everything runs as the invoking user. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Base library. */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "safe_file.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "mail_proto.h"
#include "queue_id.h"
#include "resolve.h"
#include "server.h"

/* This program. */
#include "local.h"

#define LD_RELAY	"local"

/* A deliver request, decoded. */
struct ld_request {
    const char *queue_id;
    const char *queue_file;
    long data_offset;
    long data_size;
    const char *sender;
    long arrival_time;
    const char *dsn_envid;
    const char *dsn_ret;
    struct ld_rcpt *rcpts;
    size_t rcpt_count;
};

/* ld_parse_long - a strict decimal attribute value */
static bool ld_parse_long(const char *text, long *value)
{
    return parse_long(text, value);
}

/* ld_parse_time - "SECONDS" or "SECONDS.FRACTION" */
static bool ld_parse_time(const char *text, long *value)
{
    char buf[32];
    const char *dot = strchr(text, '.');
    size_t n = dot ? (size_t) (dot - text) : strlen(text);

    if (n == 0 || n >= sizeof(buf))
	return false;
    memcpy(buf, text, n);
    buf[n] = 0;
    return parse_long(buf, value);
}

/*
 * ld_decode - check and decode a deliver request: the envelope
 * attributes (each at most once, in any order), then one group per
 * recipient that starts with rcpt_address. -1 with *error_r on anything
 * unexpected (the connection is then closed).
 */
static int ld_decode(const struct ipc_list *list, struct ld_request *req, const char **error_r)
{
    static char errbuf[256];
    size_t i;
    struct ld_rcpt *r = NULL;
    bool have_offset = false;

    memset(req, 0, sizeof(*req));
    req->data_offset = -1;
    req->dsn_envid = req->dsn_ret = "";
    req->rcpts = mem_alloc_array(list->count ? list->count : 1, sizeof(req->rcpts[0]));
    for (i = 1; i < list->count; i++) {
	const char *name = list->attrs[i].name, *value = list->attrs[i].value;

	if (strlen(value) != list->attrs[i].len) {
	    (void) fmt_buf(errbuf, sizeof(errbuf), "NUL byte in attribute \"%s\"", name);
	    goto bad;
	}
	if (strcmp(name, ATTR_RCPT_ADDRESS) == 0) {
	    if (r != NULL && !have_offset)
		goto missing_offset;
	    r = &req->rcpts[req->rcpt_count++];
	    memset(r, 0, sizeof(*r));
	    r->address = value;
	    r->orig = r->orcpt = r->notify = "";
	    r->offset = -1;
	    have_offset = false;
	    continue;
	}
	if (r != NULL) {
	    if (strcmp(name, ATTR_RCPT_ORIG) == 0)
		r->orig = value;
	    else if (strcmp(name, ATTR_RCPT_ORCPT) == 0)
		r->orcpt = value;
	    else if (strcmp(name, ATTR_RCPT_NOTIFY) == 0)
		r->notify = value;
	    else if (strcmp(name, ATTR_RCPT_OFFSET) == 0 && !have_offset) {
		if (!ld_parse_long(value, &r->offset) || r->offset < 0) {
		    (void) fmt_buf(errbuf, sizeof(errbuf), "bad rcpt_offset \"%.40s\"", value);
		    goto bad;
		}
		have_offset = true;
	    } else {
		(void) fmt_buf(errbuf, sizeof(errbuf), "unexpected attribute \"%s\" in a "
			       "recipient", name);
		goto bad;
	    }
	    continue;
	}
	if (strcmp(name, ATTR_QUEUE_ID) == 0 && !req->queue_id)
	    req->queue_id = value;
	else if (strcmp(name, ATTR_QUEUE_FILE) == 0 && !req->queue_file)
	    req->queue_file = value;
	else if (strcmp(name, ATTR_DATA_OFFSET) == 0 && req->data_offset < 0) {
	    if (!ld_parse_long(value, &req->data_offset) || req->data_offset < 0) {
		(void) fmt_buf(errbuf, sizeof(errbuf), "bad data_offset \"%.40s\"", value);
		goto bad;
	    }
	} else if (strcmp(name, ATTR_DATA_SIZE) == 0) {
	    if (!ld_parse_long(value, &req->data_size)) {
		(void) fmt_buf(errbuf, sizeof(errbuf), "bad data_size \"%.40s\"", value);
		goto bad;
	    }
	} else if (strcmp(name, ATTR_SENDER) == 0 && !req->sender)
	    req->sender = value;
	else if (strcmp(name, ATTR_ARRIVAL_TIME) == 0) {
	    if (!ld_parse_time(value, &req->arrival_time)) {
		(void) fmt_buf(errbuf, sizeof(errbuf), "bad arrival_time \"%.40s\"", value);
		goto bad;
	    }
	} else if (strcmp(name, ATTR_DSN_ENVID) == 0)
	    req->dsn_envid = value;
	else if (strcmp(name, ATTR_DSN_RET) == 0)
	    req->dsn_ret = value;
	else if (strcmp(name, ATTR_NEXTHOP) == 0)
	    continue;
	else {
	    (void) fmt_buf(errbuf, sizeof(errbuf), "unexpected or duplicate attribute \"%s\"",
			   name);
	    goto bad;
	}
    }
    if (r != NULL && !have_offset)
	goto missing_offset;
    if (!req->queue_id || !req->queue_file || req->data_offset < 0 || !req->sender) {
	*error_r = "missing queue_id, queue_file, data_offset or sender";
	return -1;
    }
    if (req->rcpt_count == 0) {
	*error_r = "no recipients";
	return -1;
    }
    return 0;

  missing_offset:
    (void) fmt_buf(errbuf, sizeof(errbuf), "recipient without rcpt_offset");
  bad:
    *error_r = errbuf;
    return -1;
}

/* ld_queue_file_ok - a relative path under the queue, ending in the ID */
static bool ld_queue_file_ok(const char *path, const char *queue_id)
{
    const char *base = strrchr(path, '/');

    if (path[0] == '/' || strstr(path, "..") != NULL || base == NULL)
	return false;
    return queue_id_valid(queue_id) && strcmp(base + 1, queue_id) == 0;
}

/* ld_reply_add - one recipient's result */
static void ld_reply_add(struct ipc_list *out, const struct ld_rcpt *r, const struct ld_result *res)
{
    char num[32];
    size_t k = sizeof(num);
    unsigned long v = r->offset > 0 ? (unsigned long) r->offset : 0;

    do {				/* decimal without printf: once per recipient */
	num[--k] = (char) ('0' + v % 10);
	v /= 10;
    } while (v > 0);
    ipc_list_add(out, ATTR_RCPT_OFFSET, num + k, sizeof(num) - k);
    ipc_list_add(out, ATTR_RCPT_STATUS, ld_status_name(res->status),
		 strlen(ld_status_name(res->status)));
    ipc_list_add(out, ATTR_RCPT_DSN, res->dsn, strlen(res->dsn));
    ipc_list_add(out, ATTR_RCPT_REASON, res->reason, strlen(res->reason));
    ipc_list_add(out, ATTR_RELAY, LD_RELAY, strlen(LD_RELAY));
}

/* ld_deliver - serve one deliver request; false ends the connection */
static bool ld_deliver(struct stream *client, const struct ipc_list *list)
{
    struct ld_request req;
    struct ld_msg msg;
    struct ld_result res;
    struct ipc_list out;
    const char *err = "";
    size_t i;
    int fd = -1;
    bool ok;

    if (ld_decode(list, &req, &err) < 0) {
	msg_warn("deliver request: %s", err);
	mem_free(&req.rcpts);
	return false;
    }
    ipc_list_init(&out);
    memset(&msg, 0, sizeof(msg));
    msg.queue_id = req.queue_id;
    msg.data_offset = req.data_offset;
    msg.data_size = req.data_size;
    msg.sender = req.sender;
    msg.arrival_time = req.arrival_time;
    msg.dsn_envid = req.dsn_envid;
    msg.dsn_ret = req.dsn_ret;
    ld_result_init(&res);
    if (!ld_queue_file_ok(req.queue_file, req.queue_id)) {
	msg_warn("%s: bad queue file name \"%s\"", req.queue_id, req.queue_file);
	ld_result_set(&res, LD_DEFER, "4.3.0", "bad queue file name");
    } else if ((fd = safe_open_read(req.queue_file, (uid_t) -1, &err)) < 0) {
	/* O_NONBLOCK|O_NOFOLLOW, then a regular file or nothing: a FIFO
	 * put in the queue's place never blocks us */
	msg_warn("%s: cannot use the queue file: %s", req.queue_id, err);
	ld_result_set(&res, LD_DEFER, "4.3.0", "cannot use the queue file: %s", err);
    } else {
	msg.fd = fd;
	if (content_scan_headers(&msg, &err) < 0) {
	    msg_warn("%s: %s", req.queue_id, err);
	    ld_result_set(&res, LD_DEFER, "4.3.0", "%s", err);
	}
    }
    for (i = 0; i < req.rcpt_count; i++) {
	struct ld_result one;

	if (res.status != LD_NONE) {
	    ld_reply_add(&out, &req.rcpts[i], &res);	/* the whole request failed */
	    continue;
	}
	if (i > 0)
	    server_watchdog_reset();	/* ld_service did it for the first */
	ld_deliver_recipient(&msg, &req.rcpts[i], &one);
	if (msg_verbose)
	    msg_info("%s: to=<%s>, status=%s, dsn=%s (%s)", req.queue_id, req.rcpts[i].address,
		     ld_status_name(one.status), one.dsn, one.reason);
	ld_reply_add(&out, &req.rcpts[i], &one);
    }
    ok = ipc_send_list(client, &out) == 0;
    if (!ok)
	msg_warn("%s: cannot send the delivery results: %s", req.queue_id,
		 stream_status_text(stream_error(client)));
    if (fd >= 0)
	(void) close(fd);
    str_free(&msg.delivered);
    ipc_list_fini(&out);
    mem_free(&req.rcpts);
    return ok;
}

/* ld_verify - serve one verify request; false ends the connection */
static bool ld_verify(struct stream *client, const struct ipc_list *list)
{
    const char *address = NULL, *status = RCPT_STAT_DEFER;
    struct ld_result res;
    long size = 0;
    size_t i;

    for (i = 1; i < list->count; i++) {
	const char *name = list->attrs[i].name, *value = list->attrs[i].value;

	if (strlen(value) != list->attrs[i].len) {
	    msg_warn("verify request: NUL byte in attribute \"%s\"", name);
	    return false;
	}
	if (strcmp(name, ATTR_RCPT_ADDRESS) == 0 && address == NULL)
	    address = value;
	else if (strcmp(name, ATTR_SIZE) == 0 && ld_parse_long(value, &size) && size >= 0)
	    continue;
	else {
	    msg_warn("verify request: unexpected attribute \"%s\"", name);
	    return false;
	}
    }
    if (address == NULL) {
	msg_warn("verify request: missing rcpt_address");
	return false;
    }
    ld_deliver_verify(address, size, &status, &res);
    if (msg_verbose)
	msg_info("verify <%s> size=%ld: %s %s %s", address, size, status, res.dsn, res.reason);
    return ipc_send(client, IPC_STR(ATTR_RCPT_STATUS, status), IPC_STR(ATTR_RCPT_DSN, res.dsn),
		    IPC_STR(ATTR_RCPT_REASON, res.reason), IPC_END) == 0;
}

/* ld_service - one qmgr (or smtpd) connection: requests until EOF */
static void ld_service(struct stream *client)
{
    struct ipc_list list;
    const char *err = "", *req;

    stream_set_timeout(client, (int) var_ipc_timeout * 1000);
    if (ipc_handshake_server(client, DELIVER_PROTO, DELIVER_VERSION) < 0)
	return;
    ipc_list_init(&list);
    for (;;) {
	if (ipc_recv_list(client, &list, &err) < 0) {
	    if (stream_error(client) != STREAM_EOF && strcmp(err, "connection closed by peer") != 0)
		msg_warn("deliver protocol: %s", err);
	    break;
	}
	server_watchdog_reset();
	if (list.count == 0 || strcmp(list.attrs[0].name, ATTR_REQUEST) != 0) {
	    msg_warn("deliver protocol: request without \"request\" as its first attribute");
	    break;
	}
	req = list.attrs[0].value;
	if (strcmp(req, DELIVER_REQ_DELIVER) == 0) {
	    if (!ld_deliver(client, &list))
		break;
	} else if (strcmp(req, DELIVER_REQ_VERIFY) == 0) {
	    if (!ld_verify(client, &list))
		break;
	} else {
	    msg_warn("deliver protocol: unknown request \"%.40s\"", req);
	    break;
	}
    }
    ipc_list_fini(&list);
}

/* ld_pre_init - open the tables while privileged */
static void ld_pre_init(int argc, char **argv)
{
    const char *err = "";

    (void) argc;
    (void) argv;
    if (resolve_init(&err) < 0)
	msg_fatal("%s", err);
    ld_deliver_init();
}

/* ld_on_exit - close the tables */
static void ld_on_exit(void)
{
    ld_worker_shutdown();
    alias_fini();
    resolve_fini();
}

int main(int argc, char **argv)
{
    struct server_spec spec;

    memset(&spec, 0, sizeof(spec));
    spec.kind = SERVER_SINGLE;
    spec.name = "local-delivery";
    spec.pre_init = ld_pre_init;
    spec.on_exit = ld_on_exit;
    spec.single_service = ld_service;
    return server_main(argc, argv, &spec);
}
