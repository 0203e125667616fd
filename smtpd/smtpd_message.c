/* smtpd_message.c - the message of a transaction, once its bytes are
 * parsed: the cleanup conversation, the Received: header, the end of
 * the message (queued or refused, and the reply), and forgetting the
 * transaction (smtpd_reset).
 *
 * The message goes to cleanup as it arrives (cleanup_client.h): the
 * envelope when DATA (or the first BDAT) comes, then a Received: header,
 * then the content records that the parser (lib/mail/smtp_data.c, fed
 * by smtpd_data.c) emits; nothing larger than one line piece is held in
 * memory. Past message_size_limit the rest is read and discarded and
 * the answer is 552 5.3.4; cleanup's connection is then dropped before
 * the end record, so nothing is queued. "250 Ok: queued as ID" is sent
 * only after cleanup's reply says the file is on disk.
 *
 * After a message was queued the cleanup connection is kept for the
 * next message of the session (cleanup serves any number of messages
 * per connection), which saves a connect and a handshake per message.
 * It is used again only if it was idle for less than ipc_timeout / 2
 * (cleanup's read deadline) and cleanup has not closed it (a poll
 * shows no input); else a new one is opened. */

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "address.h"
#include "cleanup_client.h"
#include "cleanup_stat.h"
#include "config.h"
#include "mail_date.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "smtp_params.h"
#include "trigger.h"

/* smtpd */
#include "smtpd.h"

/* ---------------------------------------------------------------- */
/* Received: header.                                                */

/* is_ascii - no byte above 127 */
static bool is_ascii(const char *s)
{
    for (; *s; s++)
	if ((unsigned char) *s > 127)
	    return false;
    return true;
}

/* smtpd_received_header - RFC 5321 4.4 trace header lines; 0 if they
 * do not fit (see smtpd.h) */
size_t smtpd_received_header(const struct smtpd_state *st, long now,
			     struct str *lines[SMTPD_RECEIVED_LINES])
{
    char date[MAIL_DATE_SIZE], literal[SMTPD_ADDR_MAX + 8];
    bool known_name = strcmp(st->name, "unknown") != 0;
    bool utf8 = st->in_mail && st->mail.smtputf8;
    const char *from;
    struct str *by;
    size_t n = 1;
    bool ok;

    smtpd_join(literal, sizeof(literal), "[", st->addr_is_v6 ? "IPv6:" : "", st->addr, "]",
	       (char *) NULL);
    if (st->helo && (utf8 || is_ascii(st->helo)))
	from = st->helo;
    else if (known_name)
	from = st->name;
    else
	from = literal;
    (void) mail_date_local(date, sizeof(date), (time_t) now);	/* the epoch if it fails */
    str_reset(lines[0]);
    ok = str_try_appends(lines[0], "Received: from ") && str_try_appends(lines[0], from)
	&& str_try_appends(lines[0], " (")
	&& (!known_name || (str_try_appends(lines[0], st->name) && str_try_appendc(lines[0], ' ')))
	&& str_try_appends(lines[0], literal) && str_try_appendc(lines[0], ')');
    if (ok && st->tls && var_smtpd_tls_received_header && st->tls_summary[0]) {
	str_reset(lines[n]);
	ok = str_try_appends(lines[n], "\t(using ") && str_try_appends(lines[n], st->tls_summary)
	    && str_try_appendc(lines[n], ')');
	n++;
    }
    if (ok && st->authenticated && st->sasl_username && var_smtpd_sasl_authenticated_header
	&& (utf8 || is_ascii(st->sasl_username))) {
	str_reset(lines[n]);
	ok = str_try_appends(lines[n], "\t(Authenticated sender: ")
	    && str_try_appends(lines[n], st->sasl_username) && str_try_appendc(lines[n], ')');
	n++;
    }
    by = lines[n++];
    str_reset(by);
    ok = ok && str_try_appends(by, "\tby ") && str_try_appends(by, var_myhostname)
	&& str_try_appends(by, " (posthorn) with ")
	&& str_try_appends(by, smtpd_protocol_name(st));
    if (!ok)
	return 0;
    if (st->rcpt_count == 1) {
	const char *rcpt = st->rcpts[0].address;
	const char *at = address_at(rcpt, strlen(rcpt));
	struct str *ext = lines[n];

	/* the quoted recipient is built in lines[n] and then framed; if
	 * it does not fit, the header goes without it */
	str_reset(ext);
	if (str_try_appends(ext, "\tfor <")
	    && address_quote(ext, rcpt, at ? (size_t) (at - rcpt) : strlen(rcpt), utf8)
	    && (at == NULL || str_try_appends(ext, at))
	    && (utf8 || is_ascii(str_cstr(ext)))
	    && str_try_appends(ext, ">; ") && str_try_appends(ext, date))
	    return n + 1;
	str_reset(ext);
    }
    if (!str_try_appends(by, "; ") || !str_try_appends(by, date))
	return 0;
    return n;
}

/* ---------------------------------------------------------------- */
/* The cleanup conversation.                                        */

/* data_emit - content record to cleanup */
static int data_emit(void *ctx, int type, const char *data, size_t len)
{
    struct smtpd_state *st = ctx;

    if (st->cleanup == NULL)
	return -1;
    return qf_put(cleanup_client_stream(st->cleanup), type, data, len);
}

/* smtpd_message_notify - the N record text of a NOTIFY mask */
const char *smtpd_message_notify(unsigned notify, char *buf, size_t size)
{
    if (notify == 0)
	return NULL;
    if (notify & SMTP_NOTIFY_NEVER)
	return "never";
    fmt_buf_or_panic(buf, size, "%s%s%s%s%s",
	    (notify & SMTP_NOTIFY_SUCCESS) ? "success" : "",
	    (notify & SMTP_NOTIFY_SUCCESS) && (notify & (SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY)) ? "," : "",
	    (notify & SMTP_NOTIFY_FAILURE) ? "failure" : "",
	    (notify & SMTP_NOTIFY_FAILURE) && (notify & SMTP_NOTIFY_DELAY) ? "," : "",
	    (notify & SMTP_NOTIFY_DELAY) ? "delay" : "");
    return buf;
}

/* The cleanup connection of an earlier session of this process: cleanup
 * serves any number of messages per connection, so the next session
 * uses it too (no connect, handshake, accept and master status updates
 * per message). After a second without a session it is closed
 * (smtpd_message_idle), so that idle smtpd processes do not hold cleanup
 * processes that a busy one may need. */
static struct cleanup_client *data_cleanup_between;
static long data_cleanup_between_at;

/* data_cleanup_kept - the kept cleanup connection, if still usable */
static struct cleanup_client *data_cleanup_kept(struct smtpd_state *st)
{
    struct cleanup_client *c = st->cleanup_idle;
    struct pollfd p;

    if (c == NULL && data_cleanup_between != NULL) {
	c = data_cleanup_between;
	st->cleanup_idle_at = data_cleanup_between_at;
	data_cleanup_between = NULL;
    }
    if (c == NULL)
	return NULL;
    st->cleanup_idle = NULL;
    p.fd = stream_fd(cleanup_client_stream(c));
    p.events = POLLIN;
    p.revents = 0;
    if (st->arrival - st->cleanup_idle_at < var_ipc_timeout / 2 && poll(&p, 1, 0) == 0)
	return c;
    cleanup_client_close(&c);			/* closed, or about to be */
    return NULL;
}

/* smtpd_message_idle - no session came for a while: give the cleanup
 * process back (cleanup's maxproc may be smaller than smtpd's) */
void smtpd_message_idle(void)
{
    cleanup_client_close(&data_cleanup_between);
}

/* smtpd_message_fini - keep the session's idle cleanup connection for the
 * next session of this process (data_cleanup_kept checks it is alive) */
void smtpd_message_fini(struct smtpd_state *st)
{
    if (st->cleanup_idle == NULL)
	return;
    cleanup_client_close(&data_cleanup_between);
    data_cleanup_between = st->cleanup_idle;
    data_cleanup_between_at = st->cleanup_idle_at;
    st->cleanup_idle = NULL;
}

/* smtpd_message_open - connect to cleanup, send the envelope and the Received:
 * header, set up the content parser; false (451 sent by caller) on error */
bool smtpd_message_open(struct smtpd_state *st, bool dot, bool binary)
{
    static const char *const bodies[] = {NULL, "7BIT", "8BITMIME", "BINARYMIME"};
    struct cleanup_client *c;
    static struct str *lines[SMTPD_RECEIVED_LINES];	/* reused by every message */
    const char *err = "";
    char buf[64];
    size_t n;
    int rc = 0;

    st->arrival = (long) time(NULL);
    if ((c = data_cleanup_kept(st)) != NULL
	&& cleanup_client_begin(c, CLEANUP_FLAG_CLIENT_TRIGGER, "smtpd", &err) < 0)
	cleanup_client_close(&c);		/* gone meanwhile: a new one */
    if (c == NULL && ((c = cleanup_client_open(NULL, &err)) == NULL
		      || cleanup_client_begin(c, CLEANUP_FLAG_CLIENT_TRIGGER, "smtpd", &err) < 0)) {
	msg_warn("%s: cannot talk to the cleanup service: %s", st->namaddr, err);
	if (c)
	    cleanup_client_abandon(&c);
	return false;
    }
    rc |= cleanup_client_sender(c, st->sender);
    rc |= cleanup_client_attr(c, QATTR_CLIENT_NAME, st->name);
    rc |= cleanup_client_attr(c, QATTR_CLIENT_ADDRESS, st->addr);
    if (st->helo)
	rc |= cleanup_client_attr(c, QATTR_HELO, st->helo);
    rc |= cleanup_client_attr(c, QATTR_PROTOCOL, smtpd_protocol_name(st));
    if (st->sasl_username)
	rc |= cleanup_client_attr(c, QATTR_SASL_USERNAME, st->sasl_username);
    if (st->mail.body != SMTP_BODY_NONE && (unsigned) st->mail.body < 4)
	rc |= cleanup_client_attr(c, QATTR_BODY, bodies[st->mail.body]);
    if (st->mail.smtputf8)
	rc |= cleanup_client_attr(c, QATTR_SMTPUTF8, "yes");
    if (st->mail.ret != SMTP_RET_NONE)
	rc |= cleanup_client_attr(c, QATTR_DSN_RET, st->mail.ret == SMTP_RET_FULL ? "FULL" : "HDRS");
    if (st->mail.envid)
	rc |= cleanup_client_attr(c, QATTR_DSN_ENVID, st->mail.envid);
    if (st->mail.has_size) {
	fmt_buf_or_panic(buf, sizeof(buf), "%llu", (unsigned long long) st->mail.size);
	rc |= cleanup_client_attr(c, QATTR_SIZE, buf);
    }
    for (size_t i = 0; i < st->rcpt_count; i++)
	rc |= cleanup_client_rcpt(c, st->rcpts[i].address, st->rcpts[i].orcpt,
				  smtpd_message_notify(st->rcpts[i].notify, buf, sizeof(buf)));
    rc |= cleanup_client_message(c);
    for (size_t i = 0; i < SMTPD_RECEIVED_LINES; i++)
	if (lines[i] == NULL)
	    lines[i] = str_new(2048);
    if ((n = smtpd_received_header(st, st->arrival, lines)) == 0)
	msg_warn("%s: Received: header longer than %zu bytes: not added",
		 st->namaddr, lines[0]->max);
    for (size_t i = 0; i < n; i++)
	rc |= qf_put(cleanup_client_stream(c), QF_REC_LINE, str_cstr(lines[i]), str_len(lines[i]));
    if (rc != 0) {
	msg_warn("%s: write to the cleanup service failed", st->namaddr);
	cleanup_client_abandon(&c);
	return false;
    }
    st->cleanup = c;
    smtp_data_init(&st->content, (dot ? SMTP_DATA_DOT : 0) | (binary ? SMTP_DATA_BINARY : 0)
		   | (st->reject_bare ? SMTP_DATA_REJECT_BARE : 0),
		   (size_t) var_line_length_limit,
		   var_message_size_limit > 0 ? (uint64_t) var_message_size_limit : 0,
		   data_emit, st);
    st->content_open = true;
    return true;
}

/* smtpd_message_abort - drop the message in progress */
void smtpd_message_abort(struct smtpd_state *st)
{
    if (st->cleanup)
	cleanup_client_abandon(&st->cleanup);
    if (st->content_open) {
	smtp_data_fini(&st->content);
	st->content_open = false;
    }
}

/* content_notes - log what the parser saw that an operator should know */
static void content_notes(struct smtpd_state *st)
{
    struct smtp_data *c = &st->content;

    if (c->stray_dot)
	msg_warn("possible SMTP smuggling attempt from %s: a \".\" line next to a bare line end "
		 "in %s (kept as content)", st->namaddr, st->where);
    if (!c->reject_bare && !c->binary && (c->bare_lf || c->bare_cr))
	msg_info("bare %s received from %s in %s (normalized to CR LF)",
		 c->bare_lf ? "<LF>" : "<CR>", st->namaddr, st->where);
}

/* smtpd_message_refusal - the reply for content that cannot be queued,
 * SR_COUNT if it can go to cleanup */
enum smtpd_reply_id smtpd_message_refusal(const struct smtp_data *c)
{
    if (c->reject_bare && (c->bare_lf || c->bare_cr))
	return c->bare_lf ? SR_BARE_LF : SR_BARE_CR;
    if (c->too_big)
	return SR_TOO_BIG;
    if (c->write_error)
	return SR_QUEUE_WRITE;
    return SR_COUNT;
}

/* smtpd_message_end - the content is complete: have it queued and reply */
void smtpd_message_end(struct smtpd_state *st)
{
    struct smtp_data *c = &st->content;
    enum smtpd_reply_id refusal;
    struct smtpd_reply_buf r;
    struct cleanup_result res;
    const char *err = "";

    content_notes(st);
    refusal = smtpd_message_refusal(c);
    if (refusal == SR_BARE_LF || refusal == SR_BARE_CR) {
	smtpd_reply_id_buf(refusal, &r);
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, st->where, &r, NULL);
	st->hangup = true;		/* a client that sends this is broken or hostile */
	smtpd_reset(st);
	return;
    }
    if (refusal == SR_TOO_BIG) {
	smtpd_reply_id_buf(SR_TOO_BIG, &r);
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "END-OF-MESSAGE", &r, NULL);
	smtpd_reset(st);
	return;
    }
    if (refusal == SR_QUEUE_WRITE || st->cleanup == NULL || cleanup_client_xend(st->cleanup) < 0) {
	msg_warn("%s: write to the cleanup service failed", st->namaddr);
	smtpd_reply_id(st, SR_QUEUE_WRITE);
	smtpd_reset(st);
	return;
    }
    memset(&res, 0, sizeof(res));
    if (cleanup_client_finish(st->cleanup, &res, &err) < 0) {
	msg_warn("%s: cleanup service: %s", st->namaddr, err);
	smtpd_reply_id(st, SR_QUEUE_WRITE);
    } else if (res.status == 0) {
	msg_info("%s: client=%s", res.queue_id, st->namaddr);
	char text[1024];

	smtpd_join(text, sizeof(text), "Ok: queued as ", res.queue_id, (char *) NULL);
	smtpd_reply_text(st, 250, "2.0.0", text);
	st->error_count = 0;		/* errors count "without delivering mail" */
	/* The 250 first, then qmgr (CLEANUP_FLAG_CLIENT_TRIGGER): qmgr
	 * runs at a higher priority, and on one CPU it and the delivery
	 * it starts would run before this reply went out. */
	(void) smtpd_flush(st);
	if (!trigger_qmgr_incoming(res.queue_id, &err) && (errno != EAGAIN || msg_verbose))
	    msg_warn("%s: cannot trigger qmgr: %s", res.queue_id, err);
	/* cleanup waits for the next message: keep the connection */
	st->cleanup_idle = st->cleanup;
	st->cleanup = NULL;
	st->cleanup_idle_at = (long) time(NULL);
    } else {
	struct mail_reply mr = cleanup_stat_reply(res.status);

	const char *cause = strrchr(res.reason, ':');

	/* a write error names its cause (the strerror text after the last
	 * colon, e.g. "No space left on device"; never a file name) */
	if (res.status == CLEANUP_STAT_WRITE && cause && cause[1] == ' ' && cause[2])
	    smtpd_reply_set(&r, mr.code, mr.enhanced, "%s: %s", mr.text, cause + 2);
	else
	    smtpd_reply_set(&r, mr.code, mr.enhanced, "%s", mr.text);
	smtpd_reply_buf_send(st, &r);
	if (res.reason[0])
	    msg_info("%s: cleanup: %s", st->namaddr, res.reason);
	smtpd_log_reject(st, "END-OF-MESSAGE", &r, NULL);
    }
    cleanup_client_close(&st->cleanup);
    smtpd_reset(st);
}

/* smtpd_reset - forget the mail transaction */
void smtpd_reset(struct smtpd_state *st)
{
    smtpd_message_abort(st);
    mem_free(&st->sender);
    smtp_mail_params_fini(&st->mail);
    memset(&st->mail, 0, sizeof(st->mail));
    for (size_t i = 0; i < st->rcpt_count; i++) {
	mem_free(&st->rcpts[i].address);
	mem_free(&st->rcpts[i].orcpt);
    }
    st->rcpt_count = 0;
    st->rcpt_attempts = 0;
    st->rcpt_overshoot = 0;
    st->in_mail = false;
    st->bdat = false;
    st->bdat_failed = false;
    st->bdat_bytes = 0;
}
