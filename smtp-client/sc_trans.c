/* sc_trans.c - one mail transaction of smtp-client on an open session:
 * the checks before MAIL (SIZE, SMTPUTF8, 8BITMIME/BINARYMIME and a dry
 * run of a conversion), MAIL FROM and RCPT TO with their ESMTP
 * parameters, pipelined (RFC 2920) when the peer offers PIPELINING,
 * then DATA (dot-stuffed by sc_content, ended by ".") or BDAT chunks
 * (RFC 3030), and a result for each recipient: 2xx sent, 4xx defer,
 * 5xx bounce, the reply quoted. A 421, a timeout or a lost connection
 * defers every recipient that has no final result yet. */

/* System library. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "mail_proto.h"
#include "server.h"
#include "xtext.h"

/* This program. */
#include "sc.h"
#include "sc_content.h"

#define SC_BDAT_CHUNK	(64 * 1024)	/* bytes per BDAT chunk */
#define SC_PIPELINE_MAX	200		/* more recipients go lock-step: all
					 * commands written before any reply
					 * is read must fit the socket buffers
					 * of both sides, or both would wait */

/* sc_result_set - one recipient's outcome */
void sc_result_set(struct sc_rcpt_result *r, const char *status, const char *dsn,
		   const char *fmt, ...)
{
    va_list ap;
    char buf[sizeof(r->reason)];

    va_start(ap, fmt);
    (void) vsnprintf(buf, sizeof(buf), fmt, ap);	/* a message text: cut */
    va_end(ap);
    r->status = status;
    str_copy_out_or_panic(r->dsn, sizeof(r->dsn), dsn);
    str_copy_out_or_panic(r->reason, sizeof(r->reason), buf);
}

/* sc_all_open - set every recipient without a final result */
static void sc_all_open(const struct sc_message *m, struct sc_rcpt_result *res,
			const char *status, const char *dsn, const char *reason)
{
    size_t i;

    for (i = 0; i < m->req->rcpt_count; i++)
	if (res[i].status == NULL)
	    sc_result_set(res + i, status, dsn, "%s", reason);
}

/* sc_open_count - recipients without a final result */
static size_t sc_open_count(const struct sc_message *m, const struct sc_rcpt_result *res)
{
    size_t i, n = 0;

    for (i = 0; i < m->req->rcpt_count; i++)
	n += res[i].status == NULL;
    return n;
}

/* sc_reply_result - the result a reply gives one recipient */
static void sc_reply_result(const struct sc_session *ss, const struct sc_reply *r,
			    const char *cmd, struct sc_rcpt_result *out)
{
    char dsn[16];

    if (r->dsn[0])
	str_copy_out_or_panic(dsn, sizeof(dsn), r->dsn);
    else
	fmt_buf_or_panic(dsn, sizeof(dsn), "%d.0.0", r->code / 100);
    if (r->code / 100 == 2) {
	char quoted[SC_REPLY_TEXT_MAX];

	sc_reply_quote(r, quoted, sizeof(quoted));
	/* RFC 3461 6.2: with DSN the peer got NOTIFY and reports success
	 * itself; without, a success notice from us says "relayed" */
	sc_result_set(out, ss->ext.flags & SC_EXT_DSN ? RCPT_STAT_RELAYED_DSN : RCPT_STAT_RELAYED,
		      dsn, "%s", quoted);
    } else {
	out->status = r->code / 100 == 5 ? RCPT_STAT_BOUNCE : RCPT_STAT_DEFER;
	if (r->code / 100 != 4 && r->code / 100 != 5) {
	    out->status = RCPT_STAT_DEFER;	/* 3xx where none belongs */
	    str_copy_out_or_panic(dsn, sizeof(dsn), "4.5.0");
	}
	str_copy_out_or_panic(out->dsn, sizeof(out->dsn), dsn);
	sc_session_said(ss, r, cmd, out->reason, sizeof(out->reason));
    }
}

/* sc_broken - the session broke: defer what is open, close it */
static bool sc_broken(struct sc_session *ss, const struct sc_message *m,
		      struct sc_rcpt_result *res, const char *what, const char *why)
{
    char reason[1024];

    sc_session_lost(ss, what, why, reason, sizeof(reason));
    sc_all_open(m, res, RCPT_STAT_DEFER, "4.4.2", reason);
    sc_session_close(ss);
    return false;
}

/* sc_421 - the peer closes: defer what is open with its reply */
static bool sc_421(struct sc_session *ss, const struct sc_message *m,
		   struct sc_rcpt_result *res, const struct sc_reply *r, const char *cmd)
{
    char reason[SC_REPLY_TEXT_MAX + 400];

    sc_session_said(ss, r, cmd, reason, sizeof(reason));
    sc_all_open(m, res, RCPT_STAT_DEFER, r->dsn[0] == '4' ? r->dsn : "4.4.2", reason);
    sc_session_close(ss);
    return false;
}

/* sc_discard_write - the dry run's sink */
static int sc_discard_write(void *ctx, const char *data, size_t len, const char **error_r)
{
    (void) ctx;
    (void) data;
    (void) len;
    (void) error_r;
    return 0;
}

/* sc_stream_write - DATA's sink: straight to the socket */
static int sc_stream_write(void *ctx, const char *data, size_t len, const char **error_r)
{
    struct stream *s = ctx;
    static time_t last;
    time_t now = time(NULL);

    if (now != last) {
	last = now;
	server_watchdog_reset();	/* a long body makes progress */
    }
    if (stream_write(s, data, len) < 0) {
	*error_r = stream_error(s) == STREAM_TIMEOUT ? "timeout" : "lost connection";
	return -1;
    }
    return 0;
}

struct sc_bdat {
    struct sc_session *ss;
    struct str *buf;
    struct sc_reply *reply;	/* a refused chunk's reply */
    bool refused;
};

/* sc_bdat_send - one chunk; 0, -1 when broken or refused */
static int sc_bdat_send(struct sc_bdat *b, bool last, const char **error_r)
{
    struct stream *s = b->ss->stream;
    long timeout = last ? var_smtp_data_done_timeout : var_smtp_data_xfer_timeout;

    stream_set_timeout(s, (int) var_smtp_data_xfer_timeout * 1000);
    if (stream_printf(s, "BDAT %zu%s\r\n", str_len(b->buf), last ? " LAST" : "") < 0
	|| stream_write(s, str_cstr(b->buf), str_len(b->buf)) < 0 || stream_flush(s) < 0) {
	*error_r = stream_error(s) == STREAM_TIMEOUT ? "timeout" : "lost connection";
	return -1;
    }
    str_reset(b->buf);
    server_watchdog_reset();		/* progress: one chunk out */
    if (sc_reply_read(s, timeout, b->reply, error_r) < 0)
	return -1;
    if (b->reply->code / 100 != 2) {
	b->refused = true;
	*error_r = "chunk refused";
	return -1;
    }
    return 0;
}

/* sc_bdat_write - BDAT's sink: fill chunks */
static int sc_bdat_write(void *ctx, const char *data, size_t len, const char **error_r)
{
    struct sc_bdat *b = ctx;
    size_t n;

    while (len > 0) {
	n = b->buf->max - str_len(b->buf);
	if (n > len)
	    n = len;
	str_append_or_panic(b->buf, data, n);
	data += n;
	len -= n;
	if (str_len(b->buf) == b->buf->max && sc_bdat_send(b, false, error_r) < 0)
	    return -1;
    }
    return 0;
}

/* sc_precheck - what the peer cannot take, before MAIL: false with every
 * recipient final; *flags the content conversion */
static bool sc_precheck(struct sc_session *ss, const struct sc_message *m,
			struct sc_rcpt_result *res, unsigned *flags)
{
    const struct sc_ext *e = &ss->ext;
    struct sc_sink sink = {sc_discard_write, NULL};
    const char *err = "";
    char reason[1024];
    enum sc_content_status cs;

    *flags = 0;
    if ((e->flags & SC_EXT_SIZE) && e->size_limit > 0 && m->size > e->size_limit) {
	fmt_buf_cut(reason, sizeof(reason), "message size %ld exceeds size limit %ld of server %s",
		    m->size, e->size_limit, ss->namaddr);
	sc_all_open(m, res, RCPT_STAT_BOUNCE, "5.3.4", reason);
	return false;
    }
    if (m->smtputf8 && !(e->flags & SC_EXT_SMTPUTF8)) {
	fmt_buf_cut(reason, sizeof(reason), "SMTPUTF8 is required, but was not offered by host %s",
		    ss->namaddr);
	sc_all_open(m, res, RCPT_STAT_BOUNCE, "5.6.7", reason);
	return false;
    }
    if (m->body_8bit && !(e->flags & SC_EXT_8BITMIME))
	*flags |= SC_OUT_ENCODE_8BIT;
    if (m->binary && !((e->flags & SC_EXT_BINARYMIME) && (e->flags & SC_EXT_CHUNKING)))
	*flags |= SC_OUT_ENCODE_BINARY;
    if (*flags == 0)
	return true;
    /* a conversion that would fail bounces now, before any command */
    cs = sc_content_write(m->fd, m->req->data_offset, var_smtp_line_length_limit, *flags, &sink,
			  &err);
    if (cs == SC_CONTENT_CANNOT_CONVERT) {
	fmt_buf_cut(reason, sizeof(reason), "host %s does not offer %s, and %s", ss->namaddr,
		    (*flags & SC_OUT_ENCODE_8BIT) ? "8BITMIME" : "BINARYMIME", err);
	sc_all_open(m, res, RCPT_STAT_BOUNCE, "5.6.3", reason);
	return false;
    }
    if (cs != SC_CONTENT_OK) {
	msg_warn("%s: %s", m->req->env.queue_id, err);
	fmt_buf_cut(reason, sizeof(reason), "cannot read the message: %s", err);
	sc_all_open(m, res, RCPT_STAT_DEFER, "4.3.0", reason);
	return false;
    }
    return true;
}

/* sc_mail_cmd - MAIL FROM with its parameters into cmd */
static void sc_mail_cmd(const struct sc_session *ss, const struct sc_message *m, unsigned flags,
			struct str *cmd)
{
    const struct proto_envelope *env = &m->req->env;

    str_printf_or_panic(cmd, "MAIL FROM:<%s>", env->sender);
    if (ss->ext.flags & SC_EXT_SIZE)
	str_appendf_or_panic(cmd, " SIZE=%ld", m->size);
    if (m->binary && !(flags & SC_OUT_ENCODE_BINARY))
	str_appends_or_panic(cmd, " BODY=BINARYMIME");
    else if (m->body_8bit && !(flags & SC_OUT_ENCODE_8BIT) && (ss->ext.flags & SC_EXT_8BITMIME))
	str_appends_or_panic(cmd, " BODY=8BITMIME");
    if (m->smtputf8 && (ss->ext.flags & SC_EXT_SMTPUTF8))
	str_appends_or_panic(cmd, " SMTPUTF8");
    if (ss->ext.flags & SC_EXT_DSN) {
	if (env->dsn_ret && env->dsn_ret[0])
	    str_appendf_or_panic(cmd, " RET=%s",
				 strcasecmp(env->dsn_ret, "full") == 0 ? "FULL" : "HDRS");
	if (env->dsn_envid && env->dsn_envid[0]) {
	    str_appends_or_panic(cmd, " ENVID=");
	    if (!xtext_encode(cmd, env->dsn_envid, strlen(env->dsn_envid)))
		msg_panic("sc_mail_cmd: ENVID too long");
	}
    }
}

/* sc_rcpt_cmd - RCPT TO with its parameters into cmd */
static void sc_rcpt_cmd(const struct sc_session *ss, const struct deliver_rcpt *r,
			struct str *cmd)
{
    str_printf_or_panic(cmd, "RCPT TO:<%s>", r->address);
    if (!(ss->ext.flags & SC_EXT_DSN))
	return;
    if (r->notify && r->notify[0]) {
	struct str *n = str_new(64);

	if (str_try_set(n, r->notify)) {
	    for (size_t i = 0; i < str_len(n); i++)
		if (n->data[i] >= 'a' && n->data[i] <= 'z')
		    n->data[i] = (char) (n->data[i] - 'a' + 'A');
	    str_appendf_or_panic(cmd, " NOTIFY=%s", str_cstr(n));
	}
	str_free(&n);
    }
    if (r->orcpt && r->orcpt[0]) {
	const char *semi = strchr(r->orcpt, ';');
	size_t before = str_len(cmd);
	bool ok;

	if (semi == NULL)
	    return;
	if (strncasecmp(r->orcpt, "utf-8;", 6) == 0) {
	    str_appends_or_panic(cmd, " ORCPT=utf-8;");
	    ok = xtext_utf8_encode(cmd, semi + 1, strlen(semi + 1));
	} else {
	    str_appends_or_panic(cmd, " ORCPT=rfc822;");
	    ok = xtext_encode(cmd, semi + 1, strlen(semi + 1));
	}
	if (!ok)
	    (void) str_truncate(cmd, before);	/* not representable: none */
    }
}

/* sc_send_content - DATA after 354, or the BDAT chunks: false if the
 * session broke (results set); *final the end reply */
static bool sc_send_content(struct sc_session *ss, const struct sc_message *m, unsigned flags,
			    struct sc_rcpt_result *res, struct sc_reply *final, const char **cmd)
{
    struct stream *s = ss->stream;
    struct sc_sink sink;
    struct sc_bdat b;
    const char *err = "";
    enum sc_content_status cs;

    if (ss->ext.flags & SC_EXT_CHUNKING) {
	*cmd = "end of DATA";
	b.ss = ss;
	b.buf = str_new(SC_BDAT_CHUNK);
	b.reply = final;
	b.refused = false;
	sink.write = sc_bdat_write;
	sink.ctx = &b;
	cs = sc_content_write(m->fd, m->req->data_offset, var_smtp_line_length_limit, flags,
			      &sink, &err);
	if (cs == SC_CONTENT_OK && sc_bdat_send(&b, true, &err) < 0 && !b.refused)
	    cs = SC_CONTENT_SINK_ERROR;
	str_free(&b.buf);
	if (b.refused) {
	    *cmd = "BDAT";
	    return true;		/* final holds the refusal */
	}
    } else {
	*cmd = "end of DATA";
	stream_set_timeout(s, (int) var_smtp_data_xfer_timeout * 1000);
	sink.write = sc_stream_write;
	sink.ctx = s;
	cs = sc_content_write(m->fd, m->req->data_offset, var_smtp_line_length_limit,
			      flags | SC_OUT_DOT_STUFF, &sink, &err);
	if (cs == SC_CONTENT_OK && (stream_puts(s, ".\r\n") < 0 || stream_flush(s) < 0)) {
	    cs = SC_CONTENT_SINK_ERROR;
	    err = stream_error(s) == STREAM_TIMEOUT ? "timeout" : "lost connection";
	}
	if (cs == SC_CONTENT_OK
	    && sc_reply_read(s, var_smtp_data_done_timeout, final, &err) < 0)
	    return sc_broken(ss, m, res, "sending end of data -- message may be sent more "
			     "than once", err);
    }
    switch (cs) {
    case SC_CONTENT_OK:
	return true;
    case SC_CONTENT_SINK_ERROR:
	return sc_broken(ss, m, res, "sending message body", err);
    case SC_CONTENT_CANNOT_CONVERT:
	{
	    char reason[1024];

	    fmt_buf_cut(reason, sizeof(reason), "cannot convert the message: %s", err);
	    sc_all_open(m, res, RCPT_STAT_BOUNCE, "5.6.3", reason);
	}
	sc_session_close(ss);		/* never the final dot */
	return false;
    case SC_CONTENT_READ_ERROR:
    default:
	{
	    char reason[1024];

	    msg_warn("%s: %s", m->req->env.queue_id, err);
	    fmt_buf_cut(reason, sizeof(reason), "cannot read the message: %s", err);
	    sc_all_open(m, res, RCPT_STAT_DEFER, "4.3.0", reason);
	}
	sc_session_close(ss);
	return false;
    }
}

/* sc_trans_run - MAIL, RCPT..., DATA/BDAT */
bool sc_trans_run(struct sc_session *ss, const struct sc_message *m, struct sc_rcpt_result *res)
{
    const struct deliver_request *req = m->req;
    bool pipe = (ss->ext.flags & SC_EXT_PIPELINING) != 0
	&& sc_open_count(m, res) <= SC_PIPELINE_MAX;
    bool chunking = (ss->ext.flags & SC_EXT_CHUNKING) != 0;
    struct str *cmd = str_new(2 * PROTO_ADDR_MAX + 2 * PROTO_TEXT_MAX);
    struct sc_reply r;
    const char *err = "", *endcmd = "end of DATA";
    size_t i, accepted = 0;
    bool *rcpt_sent, mail_ok, ok = true;
    unsigned flags;

    if (!sc_precheck(ss, m, res, &flags)) {
	str_free(&cmd);
	return true;			/* nothing sent: the session is fine */
    }
    rcpt_sent = mem_alloc_array(req->rcpt_count, sizeof(*rcpt_sent));
    for (i = 0; i < req->rcpt_count; i++)
	rcpt_sent[i] = false;
    sc_reply_init(&r);
    stream_set_timeout(ss->stream, (int) var_smtp_mail_timeout * 1000);
    ss->uses++;

    /* MAIL FROM: with PIPELINING the RCPTs (and DATA) follow unread */
    sc_mail_cmd(ss, m, flags, cmd);
    if (sc_command(ss, !pipe, "%s", str_cstr(cmd)) < 0)
	goto lost_mail;
    if (pipe) {
	for (i = 0; i < req->rcpt_count; i++) {
	    rcpt_sent[i] = res[i].status == NULL;
	    if (!rcpt_sent[i])
		continue;
	    sc_rcpt_cmd(ss, req->rcpts + i, cmd);
	    if (sc_command(ss, false, "%s", str_cstr(cmd)) < 0)
		goto lost_mail;
	}
	if (chunking ? stream_flush(ss->stream) < 0 : sc_command(ss, true, "DATA") < 0)
	    goto lost_mail;
    }
    if (sc_reply_read(ss->stream, var_smtp_mail_timeout, &r, &err) < 0)
	goto lost_mail;
    if (r.code == 421) {
	ok = sc_421(ss, m, res, &r, "MAIL FROM");
	goto out;
    }
    mail_ok = r.code / 100 == 2;
    if (!mail_ok)
	for (i = 0; i < req->rcpt_count; i++)
	    if (res[i].status == NULL)
		sc_reply_result(ss, &r, "MAIL FROM", res + i);

    /* RCPT TO: the replies in order */
    for (i = 0; i < req->rcpt_count; i++) {
	if (pipe ? !rcpt_sent[i] : (!mail_ok || res[i].status != NULL))
	    continue;
	if (!pipe) {
	    stream_set_timeout(ss->stream, (int) var_smtp_rcpt_timeout * 1000);
	    sc_rcpt_cmd(ss, req->rcpts + i, cmd);
	    if (sc_command(ss, true, "%s", str_cstr(cmd)) < 0)
		goto lost_rcpt;
	}
	if (sc_reply_read(ss->stream, var_smtp_rcpt_timeout, &r, &err) < 0)
	    goto lost_rcpt;
	if (!mail_ok)
	    continue;			/* already final with MAIL's reply */
	if (r.code == 421) {
	    ok = sc_421(ss, m, res, &r, "RCPT TO");
	    goto out;
	}
	if (r.code / 100 == 2) {
	    rcpt_sent[i] = true;	/* from here: accepted */
	    accepted++;
	} else {
	    rcpt_sent[i] = false;
	    sc_reply_result(ss, &r, "RCPT TO", res + i);
	}
    }
    /* DATA (already sent when pipelined without CHUNKING) */
    if (!mail_ok || accepted == 0) {
	if (pipe && !chunking) {
	    if (sc_reply_read(ss->stream, var_smtp_data_init_timeout, &r, &err) < 0)
		goto lost_data;
	    if (r.code == 354) {
		/* a server that opened DATA with nobody to deliver to */
		stream_set_timeout(ss->stream, (int) var_smtp_data_done_timeout * 1000);
		if (sc_command(ss, true, ".") < 0
		    || sc_reply_read(ss->stream, var_smtp_data_done_timeout, &r, &err) < 0)
		    goto lost_data;
	    }
	}
	goto out;
    }
    if (!chunking) {
	stream_set_timeout(ss->stream, (int) var_smtp_data_init_timeout * 1000);
	if (!pipe && sc_command(ss, true, "DATA") < 0)
	    goto lost_data;
	if (sc_reply_read(ss->stream, var_smtp_data_init_timeout, &r, &err) < 0)
	    goto lost_data;
	if (r.code == 421) {
	    ok = sc_421(ss, m, res, &r, "DATA");
	    goto out;
	}
	if (r.code != 354) {
	    for (i = 0; i < req->rcpt_count; i++)
		if (rcpt_sent[i] && res[i].status == NULL)
		    sc_reply_result(ss, &r, "DATA", res + i);
	    goto out;
	}
    }

    /* the content, and the reply that counts for the accepted ones */
    if (!sc_send_content(ss, m, flags, res, &r, &endcmd)) {
	ok = false;
	goto out;
    }
    if (r.code == 421) {
	ok = sc_421(ss, m, res, &r, endcmd);
	goto out;
    }
    for (i = 0; i < req->rcpt_count; i++)
	if (rcpt_sent[i] && res[i].status == NULL)
	    sc_reply_result(ss, &r, endcmd, res + i);
    goto out;

  lost_mail:
    ok = sc_broken(ss, m, res, "sending MAIL FROM", err);
    goto out;
  lost_rcpt:
    ok = sc_broken(ss, m, res, "sending RCPT TO", err);
    goto out;
  lost_data:
    ok = sc_broken(ss, m, res, "sending DATA command", err);
  out:
    sc_reply_fini(&r);
    mem_free(&rcpt_sent);
    str_free(&cmd);
    return ok;
}
