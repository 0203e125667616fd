/* main.c - smtp-client: the delivery agent that sends mail to other
 * hosts over SMTP, serving the "deliver" protocol (mail_proto.h) on
 * private/smtp.
 *
 * One qmgr connection per process (SERVER_SINGLE), any number of
 * requests on it:
 *   request=deliver  a queue file, its recipients for one next hop; the
 *                    answer gives each recipient's status, enhanced code,
 *                    reason (the remote reply quoted) and relay, then the
 *                    next hop's status (ok or dead, with a reason) and
 *                    how many deliveries the SMTP session has carried
 *                    and its TLS (for qmgr's delivery log line)
 *   request=verify   not done by this agent: answered "defer" (4.3.0)
 * Between requests the SMTP session of the last delivery stays open for
 * smtp_connection_cache_time_limit seconds (the connection cache): the
 * process waits on both qmgr's socket and the SMTP socket, and a request
 * for the same next hop reuses the session after RSET. docs/smtp-client.md
 * has the rules. */

/* System library. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

/* Base library. */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "deliver_proto.h"
#include "deliver_server.h"
#include "dns.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "server.h"

/* This program. */
#include "sc.h"

static struct sc_session sc_cache;	/* the SMTP session kept between requests */
static struct timespec sc_cache_since;	/* when its last delivery ended */

/* sc_send_reply - the deliver reply, the one place that encodes it */
static int sc_send_reply(struct stream *client, const struct deliver_result *out, size_t count,
			 const struct sc_dest_status *dest)
{
    struct deliver_reply_status status;
    struct str reply;
    int rc;

    status.dest_status = dest->dead ? DEST_STAT_DEAD : DEST_STAT_OK;
    status.dest_reason = dest->dead ? dest->reason : "";
    status.conn_use = dest->conn_use;
    status.tls = dest->tls;
    str_init(&reply, IPC_MSG_MAX);
    deliver_reply_encode(&reply, out, count, &status);
    rc = ipc_send_encoded(client, &reply);
    str_fini(&reply);
    return rc;
}

/* sc_deliver_request - serve one deliver request; false ends the
 * connection */
static bool sc_deliver_request(struct stream *client, const struct ipc_list *list)
{
    struct deliver_request req;
    struct deliver_result *out;
    struct sc_rcpt_result *res;
    struct sc_dest_status dest;
    const char *err = "";
    size_t i;
    bool ok;

    if (deliver_request_decode(list, &req, &err) < 0) {
	msg_warn("%s", err);
	deliver_request_free(&req);
	return false;
    }
    out = mem_alloc_array(req.rcpt_count, sizeof(*out));
    res = mem_alloc_array(req.rcpt_count, sizeof(*res));
    sc_deliver(&sc_cache, &req, res, &dest);
    for (i = 0; i < req.rcpt_count; i++) {
	struct sc_rcpt_result *r = res + i;

	/* a peer's odd enhanced code must not break the reply */
	if (!deliver_dsn_valid(r->dsn) || r->dsn[0] != deliver_status_class(r->status))
	    fmt_buf_or_panic(r->dsn, sizeof(r->dsn), "%c.0.0", deliver_status_class(r->status));
	out[i].offset = req.rcpts[i].offset;
	out[i].status = r->status;
	out[i].dsn = r->dsn;
	out[i].reason = r->reason;
	out[i].relay = dest.relay;
	if (msg_verbose)
	    msg_info("%s: to=<%s>, relay=%s, tls=%s, status=%s, dsn=%s (%s)", req.env.queue_id,
		     req.rcpts[i].address, dest.relay, dest.tls[0] ? dest.tls : "-", r->status,
		     r->dsn, r->reason);
    }
    ok = sc_send_reply(client, out, req.rcpt_count, &dest) == 0;
    if (!ok)
	msg_warn("%s: cannot send the delivery results: %s", req.env.queue_id,
		 stream_status_text(stream_error(client)));
    if (sc_session_is_open(&sc_cache))
	clock_gettime(CLOCK_MONOTONIC, &sc_cache_since);
    mem_free(&res);
    mem_free(&out);
    deliver_request_free(&req);
    return ok;
}

/* sc_verify - this agent does not verify: defer */
static bool sc_verify(struct stream *client, const struct ipc_list *list)
{
    struct deliver_verify req;
    struct deliver_verify_reply rep;
    struct str reply;
    const char *err;
    bool ok;

    if (deliver_verify_decode(list, &req, &err) < 0) {
	msg_warn("%s", err);
	return false;
    }
    rep.status = RCPT_STAT_DEFER;
    rep.dsn = "4.3.0";
    rep.reason = "smtp-client does not verify recipients";
    str_init(&reply, 4 * PROTO_TEXT_MAX);
    deliver_verify_reply_encode(&reply, &rep);
    ok = ipc_send_encoded(client, &reply) == 0;
    str_fini(&reply);
    return ok;
}

/* sc_cache_wait - with a cached session, wait for qmgr's next request
 * while watching the session: it ends at the time limit or when the
 * peer speaks or closes. Returns when qmgr has input or the session is
 * gone. */
static void sc_cache_wait(struct stream *client)
{
    struct pollfd pfd[2];
    struct timespec now;
    long left;
    int rc;

    while (sc_session_is_open(&sc_cache) && stream_buffered(client) == 0) {
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = var_smtp_connection_cache_time_limit * 1000
	    - ((now.tv_sec - sc_cache_since.tv_sec) * 1000
	       + (now.tv_nsec - sc_cache_since.tv_nsec) / 1000000);
	if (left <= 0) {
	    sc_session_quit(&sc_cache);
	    return;
	}
	pfd[0].fd = stream_fd(client);
	pfd[0].events = POLLIN;
	pfd[1].fd = stream_fd(sc_cache.stream);
	pfd[1].events = POLLIN;
	pfd[0].revents = pfd[1].revents = 0;
	rc = poll(pfd, 2, (int) left);
	if (rc < 0 && errno != EINTR) {
	    msg_warn("poll: %s", strerror(errno));
	    sc_session_close(&sc_cache);
	    return;
	}
	if (rc > 0 && pfd[1].revents) {
	    /* the peer spoke out of turn (421) or closed: drop the session */
	    if (msg_verbose)
		msg_info("cached session with %s ended by the peer", sc_cache.namaddr);
	    sc_session_close(&sc_cache);
	    return;
	}
	if (rc > 0 && pfd[0].revents)
	    return;
    }
}

/* sc_service - one qmgr connection: requests until EOF */
static void sc_service(struct stream *client)
{
    static const struct deliver_server server = {
	.deliver = sc_deliver_request,
	.verify = sc_verify,
	.wait = sc_cache_wait,
    };

    deliver_server_run(client, &server);
    sc_session_quit(&sc_cache);
}

/* sc_pre_init - open the password and TLS policy tables, load the TLS
 * module and its trust anchors while privileged */
static void sc_pre_init(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    sc_sasl_init();
    sc_tls_init();
}

/* sc_on_exit - end the cached session, close the tables */
static void sc_on_exit(void)
{
    sc_session_quit(&sc_cache);
    sc_sasl_fini();
    sc_tls_fini();
    dns_close();
}

int main(int argc, char **argv)
{
    struct server_spec spec;

    memset(&spec, 0, sizeof(spec));
    spec.kind = SERVER_SINGLE;
    spec.name = "smtp-client";
    spec.pre_init = sc_pre_init;
    spec.on_exit = sc_on_exit;
    spec.single_service = sc_service;
    return server_main(argc, argv, &spec);
}
