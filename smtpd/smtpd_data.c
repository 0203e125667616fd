/* smtpd_data.c - message content: DATA and BDAT (RFC 5321, RFC 3030).
 *
 * The content parser is lib/mail/smtp_data.c (shared with sendmail -bs):
 * it turns the bytes of a DATA or a series of BDAT chunks into content
 * records and holds the rules against SMTP smuggling (DATA ends only at
 * CR LF . CR LF; bare CR/LF per smtpd_forbid_bare_newline) and the rule
 * that no content record holds a line break (BINARYMIME included).
 *
 * The message goes to cleanup as it arrives (cleanup_client.h): the
 * envelope when DATA (or the first BDAT) comes, then a Received: header,
 * then the content records; nothing larger than one line piece is held
 * in memory. Past message_size_limit the rest is read and discarded and
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

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "cleanup_client.h"
#include "cleanup_stat.h"
#include "config.h"
#include "mail_date.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "server.h"
#include "smtp_params.h"

/* smtpd */
#include "smtpd.h"

#define DATA_READ_CHUNK	8192

/* ---------------------------------------------------------------- */
/* The content parser.                                              */

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

/* smtpd_received_header - RFC 5321 4.4 trace header lines */
size_t smtpd_received_header(const struct smtpd_state *st, long now, struct str *lines[3])
{
    char date[MAIL_DATE_SIZE], literal[SMTPD_ADDR_MAX + 8];
    bool known_name = strcmp(st->name, "unknown") != 0;
    bool utf8 = st->in_mail && st->mail.smtputf8;
    const char *from;

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
    str_appends(lines[0], "Received: from ");
    str_appends(lines[0], from);
    str_appends(lines[0], " (");
    if (known_name) {
	str_appends(lines[0], st->name);
	str_appendc(lines[0], ' ');
    }
    str_appends(lines[0], literal);
    str_appendc(lines[0], ')');
    str_reset(lines[1]);
    str_appends(lines[1], "\tby ");
    str_appends(lines[1], var_myhostname);
    str_appends(lines[1], " (posthorn) with ");
    str_appends(lines[1], smtpd_protocol_name(st));
    if (st->rcpt_count == 1) {
	const char *rcpt = st->rcpts[0].address;
	const char *at = address_at(rcpt, strlen(rcpt));
	struct str *ext = lines[2];
	bool ok;

	/* the quoted recipient is built in lines[2] and then framed */
	str_reset(ext);
	str_appends(ext, "\tfor <");
	ok = address_quote(ext, rcpt, at ? (size_t) (at - rcpt) : strlen(rcpt), utf8)
	    && (at == NULL || str_appends(ext, at));
	if (ok && (utf8 || is_ascii(str_cstr(ext)))) {
	    str_appends(ext, ">; ");
	    str_appends(ext, date);
	    return 3;
	}
	str_reset(ext);
    }
    str_appends(lines[1], "; ");
    str_appends(lines[1], date);
    return 2;
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

/* notify_text - the N record */
static const char *notify_text(unsigned notify, char *buf, size_t size)
{
    if (notify == 0)
	return NULL;
    if (notify & SMTP_NOTIFY_NEVER)
	return "never";
    fmt_buf(buf, size, "%s%s%s%s%s",
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
 * (smtpd_data_idle), so that idle smtpd processes do not hold cleanup
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

/* smtpd_data_idle - no session came for a while: give the cleanup
 * process back (cleanup's maxproc may be smaller than smtpd's) */
void smtpd_data_idle(void)
{
    cleanup_client_close(&data_cleanup_between);
}

/* smtpd_data_fini - keep the session's idle cleanup connection for the
 * next session of this process (data_cleanup_kept checks it is alive) */
void smtpd_data_fini(struct smtpd_state *st)
{
    if (st->cleanup_idle == NULL)
	return;
    cleanup_client_close(&data_cleanup_between);
    data_cleanup_between = st->cleanup_idle;
    data_cleanup_between_at = st->cleanup_idle_at;
    st->cleanup_idle = NULL;
}

/* data_open - connect to cleanup, send the envelope and the Received:
 * header, set up the content parser; false (451 sent by caller) on error */
static bool data_open(struct smtpd_state *st, bool dot, bool binary)
{
    static const char *const bodies[] = {NULL, "7BIT", "8BITMIME", "BINARYMIME"};
    struct cleanup_client *c;
    static struct str *lines[3];	/* reused by every message */
    const char *err = "";
    char buf[64];
    size_t n;
    int rc = 0;

    st->arrival = (long) time(NULL);
    if ((c = data_cleanup_kept(st)) != NULL && cleanup_client_begin(c, 0, "smtpd", &err) < 0)
	cleanup_client_close(&c);		/* gone meanwhile: a new one */
    if (c == NULL && ((c = cleanup_client_open(NULL, &err)) == NULL
		      || cleanup_client_begin(c, 0, "smtpd", &err) < 0)) {
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
	fmt_buf(buf, sizeof(buf), "%llu", (unsigned long long) st->mail.size);
	rc |= cleanup_client_attr(c, QATTR_SIZE, buf);
    }
    for (size_t i = 0; i < st->rcpt_count; i++)
	rc |= cleanup_client_rcpt(c, st->rcpts[i].address, st->rcpts[i].orcpt,
				  notify_text(st->rcpts[i].notify, buf, sizeof(buf)));
    rc |= cleanup_client_message(c);
    for (size_t i = 0; i < 3; i++)
	if (lines[i] == NULL)
	    lines[i] = str_new(2048);
    n = smtpd_received_header(st, st->arrival, lines);
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

/* smtpd_data_abort - drop the message in progress */
void smtpd_data_abort(struct smtpd_state *st)
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

/* data_end - the content is complete: have it queued and reply */
static void data_end(struct smtpd_state *st)
{
    struct smtp_data *c = &st->content;
    struct smtpd_reply_buf r;
    struct cleanup_result res;
    const char *err = "";

    content_notes(st);
    if (c->reject_bare && (c->bare_lf || c->bare_cr)) {
	smtpd_reply_id_buf(c->bare_lf ? SR_BARE_LF : SR_BARE_CR, &r);
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, st->where, &r, NULL);
	st->hangup = true;		/* a client that sends this is broken or hostile */
	smtpd_reset(st);
	return;
    }
    if (c->too_big) {
	smtpd_reply_id_buf(SR_TOO_BIG, &r);
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "END-OF-MESSAGE", &r, NULL);
	smtpd_reset(st);
	return;
    }
    if (c->write_error || st->cleanup == NULL || cleanup_client_xend(st->cleanup) < 0) {
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
	/* cleanup waits for the next message: keep the connection */
	st->cleanup_idle = st->cleanup;
	st->cleanup = NULL;
	st->cleanup_idle_at = (long) time(NULL);
    } else {
	struct mail_reply mr = cleanup_stat_reply(res.status);

	smtpd_reply_set(&r, mr.code, mr.enhanced, "%s", mr.text);
	smtpd_reply_buf_send(st, &r);
	if (res.reason[0])
	    msg_info("%s: cleanup: %s", st->namaddr, res.reason);
	smtpd_log_reject(st, "END-OF-MESSAGE", &r, NULL);
    }
    cleanup_client_close(&st->cleanup);
    smtpd_reset(st);
}

/* data_lost - the client went away or timed out in the middle */
static void data_lost(struct smtpd_state *st, enum stream_status status, uint64_t bytes)
{
    if (status == STREAM_TIMEOUT) {
	smtpd_reply_id(st, SR_TIMEOUT);
	msg_info("timeout after %s (%llu bytes) from %s", st->where,
		 (unsigned long long) bytes, st->namaddr);
    } else {
	msg_info("lost connection after %s (%llu bytes) from %s", st->where,
		 (unsigned long long) bytes, st->namaddr);
    }
    smtpd_reset(st);
    st->hangup = true;
}

/* smtpd_cmd_data - DATA */
void smtpd_cmd_data(struct smtpd_state *st, const char *args, size_t len)
{
    struct str *line;
    enum stream_status status = STREAM_OK;
    unsigned long nlines = 0;
    uint64_t bytes = 0;

    (void) args;
    if (len) {
	smtpd_reply_id(st, SR_SYNTAX_DATA);
	return;
    }
    if (st->bdat) {
	smtpd_reply_id(st, SR_DATA_AFTER_BDAT);
	return;
    }
    if (!st->in_mail) {
	smtpd_reply_id(st, SR_NEED_MAIL);
	return;
    }
    if (st->rcpt_count == 0) {
	smtpd_reply_id(st, st->rcpt_attempts ? SR_NO_VALID_RCPT : SR_NEED_RCPT);
	return;
    }
    if (st->mail.body == SMTP_BODY_BINARYMIME) {
	smtpd_reply_id(st, SR_BINARYMIME_DATA);
	return;
    }
    if (stream_buffered(st->client) > 0 && !server_stdin_mode())
	msg_info("improper command pipelining after DATA from %s", st->namaddr);
    if (!data_open(st, true, false)) {
	smtpd_reply_id(st, SR_QUEUE_WRITE);
	return;
    }
    smtpd_reply_id(st, SR_DATA_GO);
    if (!smtpd_flush(st)) {
	data_lost(st, STREAM_ERROR, 0);
	return;
    }
    line = str_new((size_t) var_line_length_limit + 2);
    while (!st->content.done) {
	status = stream_getline(st->client, line, (size_t) var_line_length_limit + 2);
	if (status != STREAM_OK && status != STREAM_TOOLONG)
	    break;
	/* a final unterminated line at EOF is not the end of data */
	if (status == STREAM_OK && (str_len(line) == 0 || line->data[str_len(line) - 1] != '\n')) {
	    status = STREAM_EOF;
	    break;
	}
	bytes += str_len(line);
	smtp_data_feed(&st->content, str_cstr(line), str_len(line));
	if ((++nlines & 4095) == 0)
	    server_watchdog_reset();
    }
    str_free(&line);
    if (!st->content.done) {
	data_lost(st, status, bytes);
	return;
    }
    data_end(st);
}

/* bdat_discard - read and drop count bytes; false if the client is gone */
static bool bdat_discard(struct smtpd_state *st, uint64_t count)
{
    char buf[DATA_READ_CHUNK];

    while (count > 0) {
	ssize_t n = stream_read(st->client, buf, count < sizeof(buf) ? (size_t) count : sizeof(buf));

	if (n <= 0) {
	    data_lost(st, stream_error(st->client), st->bdat_bytes);
	    return false;
	}
	count -= (uint64_t) n;
	st->bdat_bytes += (uint64_t) n;
    }
    return true;
}

/* bdat_fail - remember the reply for the rest of this transaction */
static void bdat_fail(struct smtpd_state *st, enum smtpd_reply_id id)
{
    smtpd_data_abort(st);
    st->bdat_failed = true;
    smtpd_reply_id_buf(id, &st->bdat_error);
}

/* smtpd_bdat_unfollowable - the chunk size is unknown, so the input
 * cannot be followed: whatever comes next would be read as commands */
void smtpd_bdat_unfollowable(struct smtpd_state *st)
{
    struct smtpd_reply_buf r;

    smtpd_reply_id_buf(SR_BDAT_UNFOLLOWABLE, &r);
    smtpd_reply_buf_send(st, &r);
    smtpd_log_reject(st, "BDAT", &r, NULL);
    smtpd_reset(st);
    st->hangup = true;
}

/* smtpd_cmd_bdat - BDAT count [LAST] */
void smtpd_cmd_bdat(struct smtpd_state *st, const char *args, size_t len)
{
    uint64_t count, left;
    bool last;
    char buf[DATA_READ_CHUNK];

    if (!smtpd_bdat_parse(args, len, &count, &last)) {
	smtpd_bdat_unfollowable(st);
	return;
    }
    if (!st->in_mail || st->rcpt_count == 0) {
	enum smtpd_reply_id id = !st->in_mail ? SR_NEED_MAIL :
	    st->rcpt_attempts ? SR_NO_VALID_RCPT : SR_NEED_RCPT;

	if (bdat_discard(st, count))
	    smtpd_reply_id(st, id);
	return;
    }
    if (!st->bdat) {
	st->bdat = true;
	st->bdat_bytes = 0;
	if (!data_open(st, false, st->mail.body == SMTP_BODY_BINARYMIME))
	    bdat_fail(st, SR_QUEUE_WRITE);
    }
    if (st->bdat_failed) {
	if (!bdat_discard(st, count))
	    return;
	smtpd_reply_buf_send(st, &st->bdat_error);
	if (last)
	    smtpd_reset(st);
	return;
    }
    for (left = count; left > 0;) {
	ssize_t n = stream_read(st->client, buf, left < sizeof(buf) ? (size_t) left : sizeof(buf));

	if (n <= 0) {
	    data_lost(st, stream_error(st->client), st->bdat_bytes);
	    return;
	}
	left -= (uint64_t) n;
	st->bdat_bytes += (uint64_t) n;
	smtp_data_feed(&st->content, buf, (size_t) n);
    }
    server_watchdog_reset();
    if (last)
	smtp_data_finish(&st->content);
    if (st->content.reject_bare && (st->content.bare_lf || st->content.bare_cr)) {
	data_end(st);			/* 550 and disconnect */
	return;
    }
    if (smtp_data_failed(&st->content)) {
	struct smtpd_reply_buf r;

	bdat_fail(st, st->content.too_big ? SR_TOO_BIG : SR_QUEUE_WRITE);
	r = st->bdat_error;
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "BDAT", &r, NULL);
	if (last)
	    smtpd_reset(st);
	return;
    }
    if (!last) {
	smtpd_reply(st, 250, "2.0.0", "Ok: %llu octets", (unsigned long long) count);
	return;
    }
    data_end(st);
}
