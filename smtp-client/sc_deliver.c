/* sc_deliver.c - one deliver request of smtp-client: the queue file
 * opened read-only and scanned (what the content needs), the cached
 * session reused after RSET when the next hop is the same, else the
 * next hop's addresses tried in order (smtp_mx_address_limit addresses,
 * smtp_mx_session_limit sessions, dead addresses skipped; a failed TLS
 * handshake under "may" retried once in cleartext) until one
 * session carries the transaction; and the next hop's status for qmgr's
 * destination feedback (dest_status, dest_reason, conn_use). */

/* System library. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "safe_file.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "mail_proto.h"
#include "proto_attr.h"
#include "queue_file.h"
#include "server.h"

/* This program. */
#include "sc.h"
#include "sc_content.h"

/* sc_all - every recipient without a result gets this one */
static void sc_all(const struct deliver_request *req, struct sc_rcpt_result *res,
		   const char *status, const char *dsn, const char *reason)
{
    size_t i;

    for (i = 0; i < req->rcpt_count; i++)
	if (res[i].status == NULL)
	    sc_result_set(res + i, status, dsn, "%s", reason);
}

/* sc_non_ascii - a byte >= 0x80 in text */
static bool sc_non_ascii(const char *text)
{
    for (; *text; text++)
	if ((unsigned char) *text >= 0x80)
	    return true;
    return false;
}

/* sc_has_control - a control character (CR, LF, NUL never reach here:
 * the protocol refuses NUL) in text, which would break a command line */
static bool sc_has_control(const char *text)
{
    for (; *text; text++)
	if ((unsigned char) *text < 32 || *text == 127)
	    return true;
    return false;
}

/* sc_envelope_attrs - the smtputf8 attribute of the envelope; -1 with
 * *error_r on a read error */
static int sc_envelope_attrs(int fd, bool *smtputf8, const char **error_r)
{
    struct qf_reader rd;
    struct stream *s;
    struct str *data = str_new(QF_RECORD_MAX);
    const char *allowed = QF_TYPES_FIRST, *value;
    size_t name_len;
    int type, rc, ret = -1;

    *smtputf8 = false;
    if (lseek(fd, 0, SEEK_SET) < 0) {
	*error_r = "cannot seek the queue file";
	str_free(&data);
	return -1;
    }
    s = stream_open(fd);
    qf_reader_init(&rd, s, 0);
    for (;;) {
	rc = qf_get(&rd, &type, data, QF_RECORD_MAX, allowed, NULL, error_r);
	if (rc <= 0) {
	    if (rc == 0)
		*error_r = "queue file ends before its content";
	    break;
	}
	allowed = QF_TYPES_ENVELOPE;
	if (type == QF_REC_MESSAGE) {
	    ret = 0;
	    break;
	}
	if (type == QF_REC_ATTR
	    && qf_attr_split(str_cstr(data), str_len(data), &name_len, &value)
	    && name_len == strlen(QATTR_SMTPUTF8)
	    && strncmp(str_cstr(data), QATTR_SMTPUTF8, name_len) == 0)
	    *smtputf8 = strcasecmp(value, "yes") == 0;
    }
    stream_free(&s);
    str_free(&data);
    return ret;
}

/* sc_message_open - open and scan the queue file; -1 with every
 * recipient deferred */
static int sc_message_open(const struct deliver_request *req, struct sc_message *m,
			   struct sc_rcpt_result *res)
{
    struct sc_content_info info;
    const char *err = "";
    char reason[1024];
    bool utf8_attr;
    size_t i;

    memset(m, 0, sizeof(*m));
    m->req = req;
    m->fd = -1;
    if (!proto_queue_file_ok(&req->env)) {
	msg_warn("%s: bad queue file name \"%s\"", req->env.queue_id, req->env.queue_file);
	sc_all(req, res, RCPT_STAT_DEFER, "4.3.0", "bad queue file name");
	return -1;
    }
    if ((m->fd = safe_open_read(req->env.queue_file, (uid_t) -1, &err)) < 0) {
	msg_warn("%s: cannot use the queue file: %s", req->env.queue_id, err);
	fmt_buf_cut(reason, sizeof(reason), "cannot use the queue file: %s", err);
	sc_all(req, res, RCPT_STAT_DEFER, "4.3.0", reason);
	return -1;
    }
    if (sc_envelope_attrs(m->fd, &utf8_attr, &err) < 0
	|| sc_content_scan(m->fd, req->data_offset, var_smtp_line_length_limit, &info,
			   &err) < 0) {
	msg_warn("%s: %s", req->env.queue_id, err);
	fmt_buf_cut(reason, sizeof(reason), "cannot read the queue file: %s", err);
	sc_all(req, res, RCPT_STAT_DEFER, "4.3.0", reason);
	(void) close(m->fd);
	m->fd = -1;
	return -1;
    }
    /* an address that cannot be written on a command line is refused
     * here, never sent (it could smuggle a command) */
    if (sc_has_control(req->env.sender)) {
	msg_warn("%s: sender address with a control character", req->env.queue_id);
	sc_all(req, res, RCPT_STAT_BOUNCE, "5.1.7", "bad sender address syntax "
	       "(a control character)");
	(void) close(m->fd);
	m->fd = -1;
	return -1;
    }
    for (i = 0; i < req->rcpt_count; i++)
	if (sc_has_control(req->rcpts[i].address))
	    sc_result_set(res + i, RCPT_STAT_BOUNCE, "5.1.3", "bad recipient address syntax "
			  "(a control character)");
    m->body_8bit = info.body_8bit || info.header_8bit;
    m->binary = info.binary;
    m->size = info.size;
    /* SMTPUTF8 is needed for non-ASCII envelope addresses, or when the
     * sender asked for it and the header is not ASCII */
    m->smtputf8 = sc_non_ascii(req->env.sender) || (utf8_attr && info.header_8bit);
    for (i = 0; i < req->rcpt_count; i++)
	if (sc_non_ascii(req->rcpts[i].address))
	    m->smtputf8 = true;
    return 0;
}

/* sc_try_cached - reuse the cached session for this next hop */
static bool sc_try_cached(struct sc_session *ss, const char *nexthop)
{
    if (!sc_session_is_open(ss))
	return false;
    if (strcmp(ss->nexthop, nexthop) != 0 || ss->uses >= var_smtp_connection_reuse_count_limit) {
	sc_session_quit(ss);
	return false;
    }
    return sc_session_rset(ss);		/* closes it when it fails */
}

/* sc_new_session - open a session to one of the next hop's addresses;
 * false with every recipient final */
static bool sc_new_session(struct sc_session *ss, const struct deliver_request *req,
			   struct sc_rcpt_result *res, struct sc_dest_status *dest)
{
    struct nexthop nh;
    struct sc_route route;
    const char *err = "";
    char dsn[16] = "4.4.1", reason[1024] = "";
    size_t i;
    long sessions = 0;
    bool all_dead = true;
    time_t now = time(NULL);

    if (nexthop_parse(req->nexthop, &nh, &err) < 0) {
	msg_warn("%s: %s", req->env.queue_id, err);
	sc_all(req, res, RCPT_STAT_DEFER, "4.3.5", err);
	return false;
    }
    sc_route_find(&nh, &route);
    if (route.status != SC_ROUTE_OK) {
	if (route.status == SC_ROUTE_DEFER) {
	    dest->dead = true;
	    str_copy_out_or_panic(dest->reason, sizeof(dest->reason), route.reason);
	}
	sc_all(req, res, route.status == SC_ROUTE_DEFER ? RCPT_STAT_DEFER : RCPT_STAT_BOUNCE,
	       route.dsn, route.reason);
	sc_route_free(&route);
	return false;
    }
    for (i = 0; i < route.count; i++) {
	const struct sc_addr *a = route.addrs + i;
	enum sc_open_status st;
	const char *dead_why;

	if ((dead_why = sc_dead_check(a, now)) != NULL) {
	    /* the reason of the attempt that failed, not "skipped" */
	    if (reason[0] == 0)
		fmt_buf_cut(reason, sizeof(reason), "%s", dead_why);
	    continue;
	}
	server_watchdog_reset();	/* each address has its own deadlines */
	st = sc_session_open(ss, req->nexthop, a, false, dsn, sizeof(dsn), reason,
			     sizeof(reason));
	if (st == SC_OPEN_TLS_RETRY) {
	    /* opportunistic TLS whose handshake failed: this host once more,
	     * in cleartext (as Postfix does); the policy allows it */
	    server_watchdog_reset();
	    st = sc_session_open(ss, req->nexthop, a, true, dsn, sizeof(dsn), reason,
				 sizeof(reason));
	}
	fmt_buf_or_panic(dest->relay, sizeof(dest->relay), "%s[%s]:%d", a->host, a->text,
			 a->port);
	if (st == SC_OPEN_OK) {
	    sc_route_free(&route);
	    return true;
	}
	if (st == SC_OPEN_CONNECT) {
	    msg_warn("%s", reason);
	    sc_dead_mark(a, now, reason);
	} else {
	    all_dead = false;
	    if (++sessions >= var_smtp_mx_session_limit)
		break;
	}
    }
    sc_route_free(&route);
    if (reason[0] == 0)
	fmt_buf_cut(reason, sizeof(reason), "no address to try for %s", req->nexthop);
    if (all_dead) {
	dest->dead = true;
	str_copy_out_or_panic(dest->reason, sizeof(dest->reason), reason);
	str_copy_out_or_panic(dsn, sizeof(dsn), "4.4.1");
    }
    if (dsn[0] != '4') {
	/* failures before the transaction defer: another time, another host */
	dsn[0] = '4';
    }
    sc_all(req, res, RCPT_STAT_DEFER, dsn, reason);
    return false;
}

/* sc_deliver - one request */
void sc_deliver(struct sc_session *ss, const struct deliver_request *req,
		struct sc_rcpt_result *res, struct sc_dest_status *dest)
{
    struct sc_message m;
    size_t i, open;

    for (i = 0; i < req->rcpt_count; i++) {
	res[i].status = NULL;
	res[i].dsn[0] = 0;
	res[i].reason[0] = 0;
    }
    dest->dead = false;
    dest->reason[0] = 0;
    dest->conn_use = 0;
    str_copy_out_or_panic(dest->relay, sizeof(dest->relay), "none");
    dest->tls[0] = 0;
    if (sc_message_open(req, &m, res) < 0)
	return;
    for (open = 0, i = 0; i < req->rcpt_count; i++)
	open += res[i].status == NULL;
    if (open > 0 && (sc_try_cached(ss, req->nexthop) || sc_new_session(ss, req, res, dest))) {
	str_copy_out_or_panic(dest->relay, sizeof(dest->relay), ss->relay);
	dest->conn_use = ss->uses + 1;	/* this delivery included */
	str_copy_out_or_panic(dest->tls, sizeof(dest->tls), ss->tls_log);
	(void) sc_trans_run(ss, &m, res);	/* a broken session is closed */
    }
    (void) close(m.fd);
    /* anything left open (a bug): defer rather than lose it */
    for (i = 0; i < req->rcpt_count; i++)
	if (res[i].status == NULL) {
	    msg_warn("%s: no result for <%s>", req->env.queue_id, req->rcpts[i].address);
	    sc_result_set(res + i, RCPT_STAT_DEFER, "4.3.0", "internal error: no result");
	}
    if (sc_session_is_open(ss) && (!ss->healthy || var_smtp_connection_cache_time_limit <= 0
				   || ss->uses >= var_smtp_connection_reuse_count_limit))
	sc_session_quit(ss);
}
