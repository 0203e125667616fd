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
#include "deliver_proto.h"
#include "deliver_server.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "resolve.h"
#include "server.h"

/* This program. */
#include "local.h"

#define LD_RELAY	"local"

/* ld_result_out - one recipient's result for the reply */
static void ld_result_out(struct deliver_result *out, const struct deliver_rcpt *r,
			  const struct ld_result *res)
{
    out->offset = r->offset;
    out->status = ld_status_name(res->status);
    out->dsn = res->dsn;
    out->reason = res->reason;
    out->relay = LD_RELAY;
}

/* ld_deliver - serve one deliver request; false ends the connection */
static bool ld_deliver(struct stream *client, const struct ipc_list *list)
{
    struct deliver_request req;
    static const struct deliver_reply_status local_status = {DEST_STAT_OK, "", 0, ""};
    struct deliver_result *out;
    struct ld_result *one;
    struct ld_msg msg;
    struct ld_result res;
    struct str reply;
    const char *err = "";
    size_t i;
    int fd = -1;
    bool ok;

    if (deliver_request_decode(list, &req, &err) < 0) {
	msg_warn("%s", err);
	deliver_request_free(&req);
	return false;
    }
    memset(&msg, 0, sizeof(msg));
    msg.queue_id = req.env.queue_id;
    msg.data_offset = req.data_offset;
    msg.data_size = req.data_size;
    msg.sender = req.env.sender;
    msg.arrival_time = req.env.arrival_time;
    msg.dsn_envid = req.env.dsn_envid;
    msg.dsn_ret = req.env.dsn_ret;
    ld_result_init(&res);
    if (!proto_queue_file_ok(&req.env)) {
	msg_warn("%s: bad queue file name \"%s\"", msg.queue_id, req.env.queue_file);
	ld_result_set(&res, LD_DEFER, "4.3.0", "bad queue file name");
    } else if ((fd = safe_open_read(req.env.queue_file, (uid_t) -1, &err)) < 0) {
	/* O_NONBLOCK|O_NOFOLLOW, then a regular file or nothing: a FIFO
	 * put in the queue's place never blocks us */
	msg_warn("%s: cannot use the queue file: %s", msg.queue_id, err);
	ld_result_set(&res, LD_DEFER, "4.3.0", "cannot use the queue file: %s", err);
    } else {
	msg.fd = fd;
	if (content_scan_headers(&msg, &err) < 0) {
	    msg_warn("%s: %s", msg.queue_id, err);
	    ld_result_set(&res, LD_DEFER, "4.3.0", "%s", err);
	}
    }
    out = mem_alloc_array(req.rcpt_count, sizeof(*out));
    one = mem_alloc_array(req.rcpt_count, sizeof(*one));
    for (i = 0; i < req.rcpt_count; i++) {
	const struct deliver_rcpt *r = req.rcpts + i;

	if (res.status != LD_NONE) {
	    ld_result_out(out + i, r, &res);	/* the whole request failed */
	    continue;
	}
	if (i > 0)
	    server_watchdog_reset();	/* ld_service did it for the first */
	ld_deliver_recipient(&msg, r, one + i);
	if (msg_verbose)
	    msg_info("%s: to=<%s>, status=%s, dsn=%s (%s)", msg.queue_id, r->address,
		     ld_status_name(one[i].status), one[i].dsn, one[i].reason);
	ld_result_out(out + i, r, one + i);
    }
    str_init(&reply, IPC_MSG_MAX);
    deliver_reply_encode(&reply, out, req.rcpt_count, &local_status);
    ok = ipc_send_encoded(client, &reply) == 0;
    if (!ok)
	msg_warn("%s: cannot send the delivery results: %s", msg.queue_id,
		 stream_status_text(stream_error(client)));
    if (fd >= 0)
	(void) close(fd);
    str_fini(&reply);
    str_free(&msg.delivered);
    mem_free(&one);
    mem_free(&out);
    deliver_request_free(&req);
    return ok;
}

/* ld_verify - serve one verify request; false ends the connection */
static bool ld_verify(struct stream *client, const struct ipc_list *list)
{
    struct deliver_verify req;
    struct deliver_verify_reply rep;
    struct ld_result res;
    struct str reply;
    const char *err, *status = RCPT_STAT_DEFER;
    bool ok;

    if (deliver_verify_decode(list, &req, &err) < 0) {
	msg_warn("%s", err);
	return false;
    }
    ld_deliver_verify(req.address, req.size, &status, &res);
    if (msg_verbose)
	msg_info("verify <%s> size=%ld: %s %s %s", req.address, req.size, status, res.dsn,
		 res.reason);
    rep.status = status;
    rep.dsn = res.dsn;
    rep.reason = res.reason;
    str_init(&reply, 4 * PROTO_TEXT_MAX);
    deliver_verify_reply_encode(&reply, &rep);
    ok = ipc_send_encoded(client, &reply) == 0;
    str_fini(&reply);
    return ok;
}

/* ld_service - one qmgr (or smtpd) connection: requests until EOF */
static void ld_service(struct stream *client)
{
    static const struct deliver_server server = {
	.deliver = ld_deliver,
	.verify = ld_verify,
    };

    deliver_server_run(client, &server);
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
