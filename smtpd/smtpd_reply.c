/* smtpd_reply.c - the SMTP server's replies: the table of fixed replies,
 * how a reply line is formatted and written, the error accounting that
 * comes with it, and the log line of a rejection.
 *
 * Every fixed reply is one row: code, RFC 3463 enhanced status code and
 * text. Replies that depend on an address come from lib/mail
 * (address.h, smtp_params.h, cleanup_stat.h) or from smtpd_check.c; the
 * rest are here, so the codes can be reviewed (and tested) in one place.
 *
 * Output: a reply line is "code[-| ]enhanced text\r\n", the text made
 * printable (no CR or LF can split a reply, no byte above 0x7e is
 * echoed), at most 900 bytes of it. Replies go into the stream's write
 * buffer; smtpd_flush writes them out (smtpd_proto.c decides when, for
 * pipelining). Each 4xx/5xx reply except 421 counts as an error: after
 * smtpd_soft_error_limit errors each further one waits
 * smtpd_error_sleep_time first. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* base */
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"

/* smtpd */
#include "smtpd.h"

static const struct smtpd_reply_def smtpd_replies[SR_COUNT] = {
    {SR_OK, 250, "2.0.0", "Ok", false},
    {SR_MAIL_OK, 250, "2.1.0", "Ok", false},
    {SR_RCPT_OK, 250, "2.1.5", "Ok", false},
    {SR_DATA_GO, 354, NULL, "End data with <CR><LF>.<CR><LF>", false},
    {SR_BYE, 221, "2.0.0", "Bye", false},
    {SR_HELP, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH", false},
    {SR_UNKNOWN_CMD, 500, "5.5.2", "Error: command not recognized", false},
    {SR_LINE_TOO_LONG, 500, "5.5.2", "Error: line too long", false},
    {SR_BAD_SYNTAX, 500, "5.5.2", "Error: bad syntax", false},
    {SR_NOT_IMPLEMENTED, 502, "5.5.1", "Error: command not implemented", false},
    {SR_VRFY_DISABLED, 502, "5.5.1", "VRFY command is disabled", false},
    {SR_NEED_HELO, 503, "5.5.1", "Error: send HELO/EHLO first", false},
    {SR_NESTED_MAIL, 503, "5.5.1", "Error: nested MAIL command", false},
    {SR_NEED_MAIL, 503, "5.5.1", "Error: need MAIL command", false},
    {SR_NEED_RCPT, 503, "5.5.1", "Error: need RCPT command", false},
    {SR_NO_VALID_RCPT, 554, "5.5.1", "Error: no valid recipients", false},
    {SR_DATA_AFTER_BDAT, 503, "5.5.1", "Error: DATA after BDAT in one transaction", false},
    {SR_BINARYMIME_DATA, 503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT", false},
    {SR_SYNTAX_EHLO, 501, "5.5.4", "Syntax: EHLO hostname", false},
    {SR_SYNTAX_HELO, 501, "5.5.4", "Syntax: HELO hostname", false},
    {SR_SYNTAX_MAIL, 501, "5.5.4", "Syntax: MAIL FROM:<address>", false},
    {SR_SYNTAX_RCPT, 501, "5.5.4", "Syntax: RCPT TO:<address>", false},
    {SR_SYNTAX_DATA, 501, "5.5.4", "Syntax: DATA", false},
    {SR_SYNTAX_RSET, 501, "5.5.4", "Syntax: RSET", false},
    {SR_SYNTAX_QUIT, 501, "5.5.4", "Syntax: QUIT", false},
    {SR_SYNTAX_VRFY, 501, "5.5.4", "Syntax: VRFY address", false},
    {SR_SIZE_AT_MAIL, 552, "5.3.4", "Message size exceeds fixed limit", false},
    {SR_TOO_BIG, 552, "5.3.4", "Error: message file too big", false},
    {SR_TOO_MANY_RCPTS, 452, "4.5.3", "Error: too many recipients", false},
    {SR_TOO_MANY_ERRORS, 421, "4.7.0", "%s Error: too many errors", true},
    {SR_TIMEOUT, 421, "4.4.2", "%s Error: timeout exceeded", true},
    {SR_BARE_LF, 550, "5.5.2", "Error: bare <LF> received", false},
    {SR_BARE_CR, 550, "5.5.2", "Error: bare <CR> received", false},
    {SR_QUEUE_WRITE, 451, "4.3.0", "Error: queue file write error", false},
    {SR_NO_SPACE, 452, "4.3.1", "Insufficient system storage", false},
    {SR_NON_SMTP, 221, "2.7.0", "Error: non-SMTP command", false},
    {SR_BDAT_UNFOLLOWABLE, 421, "4.5.4", "%s Error: invalid BDAT chunk size, closing connection", true},
};

/* smtpd_reply_def - the row for id (the table is indexed by id) */
const struct smtpd_reply_def *smtpd_reply_def(enum smtpd_reply_id id)
{
    if ((unsigned) id >= SR_COUNT || smtpd_replies[id].id != id)
	msg_panic("smtpd_reply_def: bad reply id %d", (int) id);
    return &smtpd_replies[id];
}

/* smtpd_reply_set - fill a reply buffer */
void smtpd_reply_set(struct smtpd_reply_buf *r, int code, const char *enhanced, const char *fmt, ...)
{
    va_list ap;

    r->code = code;
    /* an RFC 3463 code ("x.yyy.zzz") fits; a reply text is cut at 511
     * bytes (a reply line shows at most 900 bytes of text anyway) */
    str_copy_out_or_panic(r->enhanced, sizeof(r->enhanced), enhanced ? enhanced : "");
    va_start(ap, fmt);
    if (fmt[0] == '%' && fmt[1] == 's' && fmt[2] == 0) {
	if (!str_try_copy_out(r->text, sizeof(r->text), va_arg(ap, const char *))) {
	    /* cut, as said above */
	}
    } else {
	(void) vsnprintf(r->text, sizeof(r->text), fmt, ap);
    }
    va_end(ap);
}

/* smtpd_reply_id_buf - a fixed reply into a buffer */
void smtpd_reply_id_buf(enum smtpd_reply_id id, struct smtpd_reply_buf *r)
{
    const struct smtpd_reply_def *d = smtpd_reply_def(id);

    if (d->hostname)
	smtpd_reply_set(r, d->code, d->enhanced, d->text, var_myhostname);
    else
	smtpd_reply_set(r, d->code, d->enhanced, "%s", d->text);
}

/* smtpd_reply_id - send a fixed reply */
void smtpd_reply_id(struct smtpd_state *st, enum smtpd_reply_id id)
{
    const struct smtpd_reply_def *d = smtpd_reply_def(id);
    struct smtpd_reply_buf r;

    if (!d->hostname) {
	smtpd_reply_text(st, d->code, d->enhanced, d->text);
	return;
    }
    smtpd_reply_id_buf(id, &r);
    smtpd_reply_buf_send(st, &r);
}

/* smtpd_flush - write out pending replies */
bool smtpd_flush(struct smtpd_state *st)
{
    if (stream_flush(st->client) < 0) {
	st->hangup = true;
	return false;
    }
    return true;
}

/* sleep_whole - sleep seconds, resuming after signal interruptions */
static void sleep_whole(long seconds)
{
    struct timespec left = {.tv_sec = seconds, .tv_nsec = 0};

    while (nanosleep(&left, &left) < 0 && errno == EINTR)
	 /* void */ ;
}

/* reply_line - the reply line buffer, emptied; reused by every reply */
static struct str *reply_line(void)
{
    static struct str *line;

    if (line == NULL)
	line = str_new(1024);
    else
	str_reset(line);
    return line;
}

/* reply_write - one reply line (or the last line of several) */
static void reply_write(struct smtpd_state *st, int code, char sep, const char *enhanced,
			const char *text)
{
    struct str *line = reply_line();

    if (code >= 0 && code <= 999) {
	char head[4] = {(char) ('0' + code / 100), (char) ('0' + code / 10 % 10),
	(char) ('0' + code % 10), sep};

	str_append_or_panic(line, head, sizeof(head));
    } else {
	str_printf_or_panic(line, "%03d%c", code, sep);
    }
    if (enhanced && *enhanced) {
	str_appends_or_panic(line, enhanced);
	str_appendc_or_panic(line, ' ');
    }
    /* replies are built from our texts and printable client text; make
     * sure no CR or LF can split one */
    smtpd_printable(line, text, strlen(text), 900, false);
    if (msg_verbose)
	msg_info("> %s: %s", st->namaddr, str_cstr(line));
    str_append_or_panic(line, "\r\n", 2);	/* 4 + 16 + 903 + 2 < 1024 */
    if (stream_write(st->client, str_cstr(line), str_len(line)) < 0)
	st->hangup = true;
}

/* error_delay - count an error reply; slow down a client that makes many */
static void error_delay(struct smtpd_state *st, int code)
{
    if (code < 400 || code == 421)
	return;
    if (st->error_count >= var_smtpd_soft_error_limit && var_smtpd_error_sleep_time > 0) {
	smtpd_flush(st);
	sleep_whole(var_smtpd_error_sleep_time);
    }
    st->error_count++;
}

/* smtpd_reply_text - one reply with a ready text */
void smtpd_reply_text(struct smtpd_state *st, int code, const char *enhanced, const char *text)
{
    error_delay(st, code);
    reply_write(st, code, ' ', enhanced, text);
}

/* smtpd_reply - one reply */
void smtpd_reply(struct smtpd_state *st, int code, const char *enhanced, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    if (fmt[0] == '%' && fmt[1] == 's' && fmt[2] == 0) {
	/* a ready text: reply_write shows at most 900 bytes of it, fewer
	 * than text[] would have held */
	const char *arg = va_arg(ap, const char *);

	va_end(ap);
	smtpd_reply_text(st, code, enhanced, arg);
	return;
    }
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    smtpd_reply_text(st, code, enhanced, text);
}

/* smtpd_reply_buf_send_uncounted - a prepared reply, not counted as an
 * error (no error sleep either) */
void smtpd_reply_buf_send_uncounted(struct smtpd_state *st, const struct smtpd_reply_buf *r)
{
    reply_write(st, r->code, ' ', r->enhanced[0] ? r->enhanced : NULL, r->text);
}

/* smtpd_reply_buf_send - a prepared reply */
void smtpd_reply_buf_send(struct smtpd_state *st, const struct smtpd_reply_buf *r)
{
    smtpd_reply_text(st, r->code, r->enhanced[0] ? r->enhanced : NULL, r->text);
}

/* smtpd_reply_multi - a multi-line reply */
void smtpd_reply_multi(struct smtpd_state *st, int code, const char *const *lines, size_t n)
{
    error_delay(st, code);
    for (size_t i = 0; i < n; i++)
	reply_write(st, code, i + 1 < n ? '-' : ' ', NULL, lines[i]);
}

/* smtpd_log_reject - the Postfix-shaped reject line (bounded: every
 * piece of client text is shown through smtpd_printable with a maximum,
 * under 1800 bytes in all) */
void smtpd_log_reject(struct smtpd_state *st, const char *cmd, const struct smtpd_reply_buf *r,
		      const char *rcpt)
{
    struct str *text = str_new(2048);

    str_printf_or_panic(text, "NOQUEUE: reject: %s from %s: %d ", cmd, st->namaddr, r->code);
    if (r->enhanced[0])
	str_appendf_or_panic(text, "%s ", r->enhanced);
    smtpd_printable(text, r->text, strlen(r->text), 600, true);
    str_appends_or_panic(text, ";");
    if (st->sender) {
	str_appends_or_panic(text, " from=<");
	smtpd_printable(text, st->sender, strlen(st->sender), 300, true);
	str_appends_or_panic(text, ">");
    }
    if (rcpt) {
	str_appends_or_panic(text, " to=<");
	smtpd_printable(text, rcpt, strlen(rcpt), 300, true);
	str_appends_or_panic(text, ">");
    }
    str_appendf_or_panic(text, " proto=%s", smtpd_protocol_name(st));
    if (st->helo) {
	str_appends_or_panic(text, " helo=<");
	smtpd_printable(text, st->helo, strlen(st->helo), SMTPD_ARG_SHOW, true);
	str_appends_or_panic(text, ">");
    }
    msg_info("%s", str_cstr(text));
    str_free(&text);
}
