/* smtpd_reply.c - every fixed reply of the SMTP server in one table:
 * code, RFC 3463 enhanced status code and text. Replies that depend on
 * an address come from lib/mail (address.h, smtp_params.h,
 * cleanup_stat.h) or from smtpd_check.c; the rest are here, so the
 * codes can be reviewed (and tested) in one place. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* base */
#include "msg.h"
#include "str.h"

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
    {SR_HELP, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP", false},
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
    str_copy_out(r->enhanced, sizeof(r->enhanced), enhanced ? enhanced : "");
    va_start(ap, fmt);
    if (fmt[0] == '%' && fmt[1] == 's' && fmt[2] == 0)
	str_copy_out(r->text, sizeof(r->text), va_arg(ap, const char *));
    else
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
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
