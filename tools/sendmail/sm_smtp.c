/* sm_smtp.c - sendmail -bs: SMTP on stdin/stdout for programs that
 * submit that way. Not smtpd: the invoking user cannot reach cleanup, so
 * this small dialogue collects MAIL, RCPT and DATA and submits each
 * message through postdrop like any other sendmail run. It supports
 * EHLO/HELO, MAIL (SIZE, BODY, RET, ENVID), RCPT (NOTIFY, ORCPT), DATA,
 * RSET, NOOP, VRFY (252), HELP and QUIT; PIPELINING works because
 * replies are flushed only before a read would block. Addresses go
 * through the same parser as smtpd (address.h), but an unqualified local
 * name is accepted (cleanup qualifies it with $myorigin). The DATA text
 * goes through smtpd's content parser (smtp_data.h): the same end of
 * data (CR LF . CR LF only), unstuffing and smtpd_forbid_bare_newline. */

/* System library. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "address.h"
#include "config.h"
#include "maildrop.h"
#include "queue_file.h"
#include "smtp_data.h"
#include "smtp_params.h"

/* This program. */
#include "sendmail.h"

#define SM_SMTP_LINE_MAX	2048	/* command line */
#define SM_SMTP_ERROR_LIMIT	20	/* then 421 */
#define SM_SMTP_RCPT_LIMIT	1000	/* then 452 4.5.3 */
#define SM_SMTP_TIMEOUT_MS	(300 * 1000)
#define SM_SMTP_DATA_LINE_MAX	(MAILDROP_LINE_CHUNK + 2)	/* read at once */
#define SM_SMTP_EXT		(SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN)

struct sm_session {
    struct stream *in;
    struct stream *out;
    long long size_limit;
    bool have_mail;
    struct sm_envelope env;
    char *envid;
    int errors;
    bool quit;
    bool reject_bare;		/* smtpd_forbid_bare_newline = reject */
};

/* sm_reply - one reply line (flushed before the next read blocks) */
static void sm_reply(struct sm_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sm_reply(struct sm_session *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) stream_vprintf(s->out, fmt, ap);
    va_end(ap);
    (void) stream_write(s->out, "\r\n", 2);
}

/* sm_error_reply - a 4xx/5xx reply that counts as a client error */
static void sm_error_reply(struct sm_session *s, const struct mail_reply *r)
{
    s->errors++;
    sm_reply(s, "%d %s %s", r->code, r->enhanced, r->text);
}

/* sm_reset - forget the transaction */
static void sm_reset(struct sm_session *s)
{
    sm_envelope_fini(&s->env);
    sm_envelope_init(&s->env);
    mem_free(&s->envid);
    s->have_mail = false;
}

/* sm_path - parse "<addr> params": the address (external form) and where
 * the parameters start; false with *reply on error */
static bool sm_path(const char *arg, unsigned flags, enum address_role role, char **addr_r,
		    const char **rest_r, struct mail_reply *reply)
{
    struct address addr;
    enum address_error err;
    size_t len = strlen(arg);

    err = address_parse(arg, len, flags | ADDR_PARSE_NO_BRACKETS, NULL, &addr);
    if (err == ADDR_OK) {
	struct str *ext = str_new(ADDR_PATH_MAX * 2);

	(void) address_external(ext, &addr);
	*addr_r = mem_strdup(ext->data);
	*rest_r = addr.rest ? addr.rest : "";
	str_free(&ext);
	address_fini(&addr);
	return true;
    }
    address_fini(&addr);
    if (err == ADDR_ERR_NO_DOMAIN) {
	/* A local name without a domain: fine for local submission. */
	const char *p = arg, *end;

	while (*p == ' ')
	    p++;
	if (*p == '<') {
	    p++;
	    end = strchr(p, '>');
	} else {
	    end = p + strcspn(p, " ");
	}
	/* an "@" in a quoted local name would be read as a domain later
	 * (address_at: the domain follows the last "@"): not unqualified */
	if (end && end > p && valid_localpart(p, (size_t) (end - p), 0)
	    && memchr(p, '@', (size_t) (end - p)) == NULL) {
	    *addr_r = mem_strndup(p, (size_t) (end - p));
	    if (*end == '>')
		end++;
	    while (*end == ' ')
		end++;
	    *rest_r = end;
	    return true;
	}
    }
    *reply = address_error_reply(err, role);
    return false;
}

/* sm_cmd_helo - HELO and EHLO */
static void sm_cmd_helo(struct sm_session *s, const char *cmd, const char *arg)
{
    static const struct mail_reply bad = {501, "5.5.4", "Syntax: EHLO hostname"};

    if (*arg == 0) {
	sm_error_reply(s, &bad);
	return;
    }
    sm_reset(s);
    if (strcasecmp(cmd, "HELO") == 0) {
	sm_reply(s, "250 %s", var_myhostname);
	return;
    }
    sm_reply(s, "250-%s", var_myhostname);
    sm_reply(s, "250-PIPELINING");
    if (s->size_limit > 0)
	sm_reply(s, "250-SIZE %lld", s->size_limit);
    else
	sm_reply(s, "250-SIZE");
    sm_reply(s, "250-8BITMIME");
    sm_reply(s, "250-DSN");
    sm_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* sm_cmd_mail - MAIL FROM: */
static void sm_cmd_mail(struct sm_session *s, const char *cmd, const char *arg)
{
    static const struct mail_reply nested = {503, "5.5.1", "Error: nested MAIL command"};
    static const struct mail_reply syntax = {501, "5.5.4", "Syntax: MAIL FROM:<address>"};
    static const struct mail_reply too_big = {552, "5.3.4", "Message size exceeds fixed limit"};
    struct smtp_mail_params p;
    struct mail_reply reply;
    enum smtp_param_error perr;
    const char *rest;
    char *sender;

    (void) cmd;
    if (s->have_mail) {
	sm_error_reply(s, &nested);
	return;
    }
    if (strncasecmp(arg, "FROM:", 5) != 0) {
	sm_error_reply(s, &syntax);
	return;
    }
    if (!sm_path(arg + 5, ADDR_PARSE_MAIL, ADDR_ROLE_SENDER, &sender, &rest, &reply)) {
	sm_error_reply(s, &reply);
	return;
    }
    memset(&p, 0, sizeof(p));
    if ((perr = smtp_mail_params_parse(rest, strlen(rest), SM_SMTP_EXT, &p)) != SMTP_PARAM_OK) {
	reply = smtp_param_error_reply(perr);
	sm_error_reply(s, &reply);
	mem_free(&sender);
	return;
    }
    if (p.has_size && s->size_limit > 0 && p.size > (uint64_t) s->size_limit) {
	sm_error_reply(s, &too_big);
	smtp_mail_params_fini(&p);
	mem_free(&sender);
	return;
    }
    sm_reset(s);
    s->env.sender = sender;
    s->env.dsn_ret = p.ret == SMTP_RET_FULL ? "full" : p.ret == SMTP_RET_HDRS ? "hdrs" : NULL;
    s->env.body = p.body == SMTP_BODY_7BIT ? "7bit" : p.body == SMTP_BODY_8BITMIME ? "8bitmime" : NULL;
    if (p.envid)
	s->env.dsn_envid = s->envid = mem_strdup(p.envid);
    s->have_mail = true;
    smtp_mail_params_fini(&p);
    sm_reply(s, "250 2.1.0 Ok");
}

/* sm_notify_text - NOTIFY bits in the record form */
static void sm_notify_text(unsigned bits, char *buf, size_t size)
{
    buf[0] = 0;
    if (bits & SMTP_NOTIFY_NEVER) {
	str_copy_out_or_panic(buf, size, "never");
	return;
    }
    fmt_buf_or_panic(buf, size, "%s%s%s%s%s",
		   bits & SMTP_NOTIFY_SUCCESS ? "success" : "",
		   (bits & SMTP_NOTIFY_SUCCESS) && (bits & (SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY)) ? "," : "",
		   bits & SMTP_NOTIFY_FAILURE ? "failure" : "",
		   (bits & SMTP_NOTIFY_FAILURE) && (bits & SMTP_NOTIFY_DELAY) ? "," : "",
		   bits & SMTP_NOTIFY_DELAY ? "delay" : "");
}

/* sm_cmd_rcpt - RCPT TO: */
static void sm_cmd_rcpt(struct sm_session *s, const char *cmd, const char *arg)
{
    static const struct mail_reply no_mail = {503, "5.5.1", "Error: need MAIL command"};
    static const struct mail_reply syntax = {501, "5.5.4", "Syntax: RCPT TO:<address>"};
    static const struct mail_reply too_many = {452, "4.5.3", "Error: too many recipients"};
    struct smtp_rcpt_params p;
    struct mail_reply reply;
    enum smtp_param_error perr;
    char notify[32];
    const char *rest;
    char *rcpt, *orcpt = NULL;

    (void) cmd;
    if (!s->have_mail) {
	sm_error_reply(s, &no_mail);
	return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0) {
	sm_error_reply(s, &syntax);
	return;
    }
    if (s->env.rcpt_count >= SM_SMTP_RCPT_LIMIT) {
	sm_reply(s, "%d %s %s", too_many.code, too_many.enhanced, too_many.text);
	return;
    }
    if (!sm_path(arg + 3, ADDR_PARSE_RCPT, ADDR_ROLE_RECIPIENT, &rcpt, &rest, &reply)) {
	sm_error_reply(s, &reply);
	return;
    }
    memset(&p, 0, sizeof(p));
    if ((perr = smtp_rcpt_params_parse(rest, strlen(rest), SM_SMTP_EXT, false, &p)) != SMTP_PARAM_OK) {
	reply = smtp_param_error_reply(perr);
	sm_error_reply(s, &reply);
	mem_free(&rcpt);
	return;
    }
    sm_notify_text(p.notify, notify, sizeof(notify));
    if (p.orcpt_type && p.orcpt) {
	struct str *o = str_new(SMTP_ORCPT_MAX * 2);

	str_appends_or_panic(o, p.orcpt_type);
	str_appendc_or_panic(o, ';');
	str_appends_or_panic(o, p.orcpt);
	orcpt = mem_strdup(o->data);
	str_free(&o);
    }
    sm_envelope_add(&s->env, rcpt, notify[0] ? notify : NULL, orcpt);
    mem_free(&rcpt);
    mem_free(&orcpt);
    smtp_rcpt_params_fini(&p);
    sm_reply(s, "250 2.1.5 Ok");
}

/* sm_data_emit - a content record to postdrop (nothing if it failed) */
static int sm_data_emit(void *ctx, int type, const char *data, size_t len)
{
    struct stream *out = ctx;

    return out ? qf_put(out, type, data, len) : 0;
}

/* sm_data_read - the DATA lines through smtpd's content parser
 * (smtp_data.c: the same end of data, unstuffing and bare CR/LF rules);
 * false if the input ended or failed before the end of data */
static bool sm_data_read(struct sm_session *s, struct smtp_data *c)
{
    struct str *line = str_new(SM_SMTP_DATA_LINE_MAX);

    while (!c->done) {
	enum stream_status st = stream_getline(s->in, line, SM_SMTP_DATA_LINE_MAX);

	if (st != STREAM_OK && st != STREAM_TOOLONG)
	    break;
	/* a final unterminated line at EOF is not the end of data */
	if (st == STREAM_OK && (line->len == 0 || line->data[line->len - 1] != '\n'))
	    break;
	(void) smtp_data_feed(c, line->data, line->len);
    }
    str_free(&line);
    return c->done;
}

/* sm_cmd_data - DATA: the message, then postdrop's verdict */
static void sm_cmd_data(struct sm_session *s, const char *cmd, const char *arg)
{
    static const struct mail_reply no_rcpt = {503, "5.5.1", "Error: need RCPT command"};
    static const struct mail_reply syntax = {501, "5.5.4", "Syntax: DATA"};
    struct smtp_data c;
    struct sm_drop *drop;
    int status;

    (void) cmd;
    if (*arg) {
	sm_error_reply(s, &syntax);
	return;
    }
    if (!s->have_mail || s->env.rcpt_count == 0) {
	sm_error_reply(s, &no_rcpt);
	return;
    }
    sm_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    (void) stream_flush(s->out);
    drop = sm_drop_open();
    if (sm_drop_envelope(drop, &s->env) < 0) {
	sm_drop_abort(&drop);
	drop = NULL;
    }
    smtp_data_init(&c, SMTP_DATA_DOT | (s->reject_bare ? SMTP_DATA_REJECT_BARE : 0),
		   MAILDROP_LINE_CHUNK, s->size_limit > 0 ? (uint64_t) s->size_limit : 0,
		   sm_data_emit, drop ? sm_drop_stream(drop) : NULL);
    if (!sm_data_read(s, &c)) {
	if (drop)
	    sm_drop_abort(&drop);
	smtp_data_fini(&c);
	s->quit = true;
	return;
    }
    if (c.stray_dot)
	msg_warn("possible SMTP smuggling attempt: a \".\" line next to a bare line end "
		 "in DATA (kept as content)");
    if (c.reject_bare && (c.bare_lf || c.bare_cr)) {
	if (drop)
	    sm_drop_abort(&drop);
	sm_reply(s, "550 5.5.2 Error: bare <%s> received", c.bare_lf ? "LF" : "CR");
	s->quit = true;			/* as smtpd: broken or hostile */
    } else if (c.too_big) {
	if (drop)
	    sm_drop_abort(&drop);
	sm_reply(s, "552 5.3.4 Message size exceeds fixed limit");
    } else if (drop == NULL || c.write_error) {
	if (drop)
	    sm_drop_abort(&drop);
	sm_reply(s, "451 4.3.0 Error: queue file write error");
    } else if ((status = sm_drop_finish(&drop)) != 0) {
	if (status == EX_DATAERR)
	    sm_reply(s, "554 5.6.0 Error: message rejected by postdrop");
	else
	    sm_reply(s, "451 4.3.0 Error: queue file write error (postdrop status %d)", status);
    } else {
	sm_reply(s, "250 2.0.0 Ok: queued");
    }
    smtp_data_fini(&c);
    sm_reset(s);
}

/* sm_cmd_simple - RSET NOOP VRFY HELP QUIT */
static void sm_cmd_simple(struct sm_session *s, const char *cmd, const char *arg)
{
    (void) arg;
    if (strcasecmp(cmd, "RSET") == 0) {
	sm_reset(s);
	sm_reply(s, "250 2.0.0 Ok");
    } else if (strcasecmp(cmd, "NOOP") == 0) {
	sm_reply(s, "250 2.0.0 Ok");
    } else if (strcasecmp(cmd, "VRFY") == 0) {
	sm_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
    } else if (strcasecmp(cmd, "HELP") == 0) {
	sm_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
    } else {
	sm_reply(s, "221 2.0.0 Bye");
	s->quit = true;
    }
}

static const struct sm_command {
    const char *name;
    void (*fn)(struct sm_session *s, const char *cmd, const char *arg);
} sm_commands[] = {
    {"EHLO", sm_cmd_helo}, {"HELO", sm_cmd_helo}, {"MAIL", sm_cmd_mail},
    {"RCPT", sm_cmd_rcpt}, {"DATA", sm_cmd_data}, {"RSET", sm_cmd_simple},
    {"NOOP", sm_cmd_simple}, {"VRFY", sm_cmd_simple}, {"HELP", sm_cmd_simple},
    {"QUIT", sm_cmd_simple},
};

/* sm_smtp_session - the whole dialogue; the exit status */
int sm_smtp_session(struct stream *in, struct stream *out, long long size_limit)
{
    static const struct mail_reply unknown = {502, "5.5.2", "Error: command not recognized"};
    static const struct mail_reply too_long = {500, "5.5.2", "Error: line too long"};
    struct sm_session s;
    struct str *line = str_new(SM_SMTP_LINE_MAX + 2);

    memset(&s, 0, sizeof(s));
    s.in = in;
    s.out = out;
    s.size_limit = size_limit;
    /* smtpd's policy; its exclusions are client networks, and this
     * dialogue has no client address, so they never apply */
    switch (smtp_data_bare_policy(var_smtpd_forbid_bare_newline)) {
    case 1:
	s.reject_bare = true;
	break;
    case 0:
	break;
    default:
	msg_fatal_status(EX_CONFIG, "smtpd_forbid_bare_newline: bad value \"%s\" "
			 "(use normalize or reject)", var_smtpd_forbid_bare_newline);
    }
    sm_envelope_init(&s.env);
    stream_set_timeout(in, SM_SMTP_TIMEOUT_MS);
    stream_set_timeout(out, SM_SMTP_TIMEOUT_MS);
    sm_reply(&s, "220 %s ESMTP posthorn (sendmail -bs)", var_myhostname);
    while (!s.quit) {
	enum stream_status st;
	char cmd[8];
	const char *arg;
	size_t i, n;

	if (stream_buffered(in) == 0 && stream_flush(out) < 0)
	    break;
	st = stream_getline(in, line, SM_SMTP_LINE_MAX);
	if (st == STREAM_TOOLONG) {
	    (void) stream_skip_line(in);
	    sm_error_reply(&s, &too_long);
	    continue;
	}
	if (st == STREAM_TIMEOUT) {
	    sm_reply(&s, "421 4.4.2 %s Error: timeout exceeded", var_myhostname);
	    break;
	}
	if (st != STREAM_OK)
	    break;
	(void) str_chomp(line);
	n = strcspn(line->data, " ");
	fmt_buf_or_panic(cmd, sizeof(cmd), "%.*s", n < sizeof(cmd) ? (int) n : 0, line->data);
	arg = line->data + n;
	while (*arg == ' ')
	    arg++;
	for (i = 0; i < sizeof(sm_commands) / sizeof(sm_commands[0]); i++)
	    if (n == strlen(sm_commands[i].name) && strcasecmp(cmd, sm_commands[i].name) == 0)
		break;
	if (i == sizeof(sm_commands) / sizeof(sm_commands[0]))
	    sm_error_reply(&s, &unknown);
	else
	    sm_commands[i].fn(&s, cmd, arg);
	if (s.errors >= SM_SMTP_ERROR_LIMIT) {
	    sm_reply(&s, "421 4.7.0 %s Error: too many errors", var_myhostname);
	    break;
	}
    }
    (void) stream_flush(out);
    sm_reset(&s);
    str_free(&line);
    return 0;
}
