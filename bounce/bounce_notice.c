/* bounce_notice.c - compose one delivery status notification (RFC 3464,
 * RFC 6522 multipart/report; RFC 6533 for UTF-8 addresses): the message
 * header, a human-readable part, the machine-readable delivery-status
 * part and the original message (or its headers). Pure: every input is
 * an argument, the output is text lines joined with "\n". */

#include <string.h>
#include <strings.h>

/* base */
#include "str.h"

/* mail */
#include "address.h"
#include "mail_date.h"
#include "xtext.h"

#include "bounce.h"

#define TEXT_WIDTH	72		/* human-readable part */

/* bounce_notice_quote - what a notice quotes of the original */
enum bounce_quote bounce_notice_quote(enum bounce_type type, bool copy, const char *dsn_ret,
				      const struct bounce_orig *orig)
{
    /* RET applies to failures only (RFC 3461 4.3); delay and success
     * notices and postmaster copies carry the headers only. */
    if (type != BOUNCE_TYPE_FAILURE || copy)
	return BOUNCE_QUOTE_HEADERS;
    if (dsn_ret && strcasecmp(dsn_ret, "hdrs") == 0)
	return BOUNCE_QUOTE_HEADERS;
    return orig->body_complete ? BOUNCE_QUOTE_FULL : BOUNCE_QUOTE_HEADERS;
}

/* line_has_boundary - the line starts with "--" boundary */
static bool line_has_boundary(const struct bounce_line *line, const char *boundary, size_t blen)
{
    return line->len >= blen + 2 && line->data[0] == '-' && line->data[1] == '-'
	&& memcmp(line->data + 2, boundary, blen) == 0;
}

/* bounce_notice_boundary_ok - the boundary occurs in no quoted line */
bool bounce_notice_boundary_ok(const struct bounce_orig *orig, const char *boundary)
{
    size_t blen = strlen(boundary);

    for (size_t i = 0; i < orig->header_count; i++)
	if (line_has_boundary(orig->headers + i, boundary, blen))
	    return false;
    for (size_t i = 0; i < orig->body_count; i++)
	if (line_has_boundary(orig->body + i, boundary, blen))
	    return false;
    return true;
}

/* lines_8bit - a byte >= 0x80 in any line */
static bool lines_8bit(const struct bounce_line *lines, size_t count)
{
    for (size_t i = 0; i < count; i++)
	if (!dsn_is_ascii(lines[i].data, lines[i].len))
	    return true;
    return false;
}

/* notice_utf8 - does any address need RFC 6533 treatment */
static bool notice_utf8(const struct bounce_request *req, const struct bounce_orig *orig,
			const struct bounce_notice *n)
{
    if (orig->smtputf8 || !dsn_is_ascii(req->env.sender, strlen(req->env.sender))
	|| !dsn_is_ascii(n->to, strlen(n->to)))
	return true;
    for (size_t i = 0; i < req->rcpt_count; i++) {
	const struct bounce_rcpt *r = req->rcpts + i;

	if (!dsn_is_ascii(r->address, strlen(r->address))
	    || !dsn_is_ascii(r->orig, strlen(r->orig)) || !dsn_is_ascii(r->orcpt, strlen(r->orcpt)))
	    return true;
    }
    return false;
}

/* is_atext - RFC 5322 atext, plus "." for a dot-atom */
static bool is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	|| c >= 0x80 || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* add_addr_spec - an address for a header: the local part quoted when
 * it is not a dot-atom */
static bool add_addr_spec(struct str *out, const char *addr, bool utf8)
{
    const char *at = address_at(addr, strlen(addr));
    size_t llen = at ? (size_t) (at - addr) : strlen(addr);
    bool atom = llen > 0 && addr[0] != '.' && addr[llen - 1] != '.';
    bool ok = true;

    for (size_t i = 0; atom && i < llen; i++)
	if (!is_atext((unsigned char) addr[i]) || (addr[i] == '.' && addr[i + 1] == '.'))
	    atom = false;
    if (atom)
	return dsn_clean(out, addr, strlen(addr), utf8);
    ok = str_try_appendc(out, '"');
    for (size_t i = 0; ok && i < llen; i++) {
	if (addr[i] == '"' || addr[i] == '\\')
	    ok = str_try_appendc(out, '\\');
	ok = ok && dsn_clean(out, addr + i, 1, false);
    }
    ok = ok && str_try_appendc(out, '"');
    if (ok && at)
	ok = dsn_clean(out, at, strlen(at), utf8);
    return ok;
}

/* add_line - append text and "\n" */
static bool add_line(struct str *out, const char *text)
{
    return str_try_appends(out, text) && str_try_appendc(out, '\n');
}

/* add_field - append a folded "name: value" field */
static bool add_field(struct str *out, const char *name, const char *value)
{
    return dsn_fold(out, name, value);
}

/* notice_subject - the Subject text */
static const char *notice_subject(const struct bounce_notice *n)
{
    if (n->double_bounce)
	return "Postmaster Warning: Undeliverable Delivery Status Notification";
    switch (n->type) {
    case BOUNCE_TYPE_FAILURE:
	return n->to_postmaster ? "Postmaster Copy: Undelivered Mail"
	    : "Undelivered Mail Returned to Sender";
    case BOUNCE_TYPE_DELAY:
	return n->to_postmaster ? "Postmaster Copy: Delayed Mail"
	    : "Delayed Mail (still being retried)";
    case BOUNCE_TYPE_SUCCESS:
	break;
    }
    return "Successful Mail Delivery Report";
}

/* add_para - one wrapped paragraph and an empty line */
static bool add_para(struct str *out, const char *text)
{
    return dsn_wrap(out, text, TEXT_WIDTH, 0) && str_try_appendc(out, '\n');
}

/* add_text_part - the human-readable explanation */
static bool add_text_part(struct str *out, const struct bounce_request *req,
			  const struct bounce_notice *n, enum bounce_quote quoted, bool cut,
			  bool utf8)
{
    struct str *t = str_new(STR_MAX_DEFAULT);
    char date[64];
    bool ok;

    ok = str_try_printf(t, "This is the mail delivery system at host %s.", n->myhostname)
	&& add_para(out, str_cstr(t));
    if (ok && n->double_bounce) {
	ok = add_para(out, "A delivery status notification that this system sent could not "
		      "be delivered. To avoid a mail loop it is not returned to its sender "
		      "(the null sender); it is reported to you instead. The reasons are "
		      "listed below, and the undeliverable notification is attached.");
    } else if (ok && n->to_postmaster) {
	ok = str_try_printf(t, "This is a copy for the postmaster of a notification sent to <%s>. "
			"The headers of the original message are attached.",
			*req->env.sender ? req->env.sender : "") && add_para(out, str_cstr(t));
    }
    if (ok && !n->double_bounce) {
	switch (n->type) {
	case BOUNCE_TYPE_FAILURE:
	    ok = add_para(out, "Your message could not be delivered to one or more of its "
			  "recipients. Delivery to them has been given up; no further "
			  "attempts will be made. The reasons are listed below.")
		&& add_para(out, quoted == BOUNCE_QUOTE_FULL
			    ? "Your message is attached after the delivery report."
			    : "The headers of your message are attached after the delivery report.");
	    break;
	case BOUNCE_TYPE_DELAY:
	    ok = add_para(out, "This is a warning only: you do not need to send your message "
			  "again.");
	    if (ok && n->retry_until > 0 && mail_date_format(date, sizeof(date), n->retry_until, n->gmtoff))
		ok = str_try_printf(t, "Your message has not been delivered yet to the recipients "
				"listed below. The system will keep trying until %s. If it "
				"still fails then, you will receive a notice of non-delivery.",
				date) && add_para(out, str_cstr(t));
	    else if (ok)
		ok = add_para(out, "Your message has not been delivered yet to the recipients "
			      "listed below. The system will keep trying for a while.");
	    break;
	case BOUNCE_TYPE_SUCCESS:
	    ok = add_para(out, "Your message was delivered to the recipients listed below, "
			  "as you asked with a delivery status request (NOTIFY=SUCCESS).")
		&& add_para(out, "A message that was relayed to a system that does not "
			    "report delivery status, or expanded into other addresses, gets "
			    "no further report from here.");
	    break;
	}
	if (ok && n->type != BOUNCE_TYPE_SUCCESS && !n->to_postmaster)
	    ok = str_try_printf(t, "If you need help, send mail to <%s> and include this report.",
			    n->postmaster) && add_para(out, str_cstr(t));
    }
    if (ok && cut)
	ok = add_para(out, "The attached headers are incomplete: they were cut at a line "
		      "boundary to keep this notice within the size limit for quoted "
		      "messages (bounce_size_limit).");
    ok = ok && add_line(out, "                   The mail delivery system") && add_line(out, "");
    for (size_t i = 0; ok && i < req->rcpt_count; i++) {
	const struct bounce_rcpt *r = req->rcpts + i;

	str_reset(t);
	ok = str_try_appendc(t, '<') && dsn_clean(t, r->address, strlen(r->address), utf8)
	    && str_try_appendc(t, '>');
	if (ok && *r->orig && strcmp(r->orig, r->address) != 0)
	    ok = str_try_appends(t, " (expanded from <") && dsn_clean(t, r->orig, strlen(r->orig), utf8)
		&& str_try_appends(t, ">)");
	ok = ok && str_try_appends(t, ": ");
	ok = ok && dsn_clean(t, *r->reason ? r->reason : "no reason given", *r->reason
			     ? strlen(r->reason) : strlen("no reason given"), utf8);
	ok = ok && dsn_wrap(out, str_cstr(t), TEXT_WIDTH, 4) && add_line(out, "");
    }
    str_free(&t);
    return ok;
}

/* add_status_part - the message/delivery-status fields */
static bool add_status_part(struct str *out, const struct bounce_request *req,
			    const struct bounce_notice *n, bool utf8)
{
    struct str *v = str_new(STR_MAX_DEFAULT);
    char date[64];
    bool ok;

    ok = str_try_printf(v, "dns; %s", n->myhostname) && add_field(out, "Reporting-MTA", str_cstr(v));
    ok = ok && add_field(out, "X-Posthorn-Queue-ID", req->env.queue_id);
    if (ok && *req->env.sender) {
	str_reset(v);
	ok = dsn_address(v, req->env.sender, utf8) && add_field(out, "X-Posthorn-Sender", str_cstr(v));
    }
    if (ok && *req->env.dsn_envid) {
	str_reset(v);
	ok = dsn_clean(v, req->env.dsn_envid, strlen(req->env.dsn_envid), false)
	    && add_field(out, "Original-Envelope-Id", str_cstr(v));
    }
    if (ok && req->env.arrival_time > 0
	&& mail_date_format(date, sizeof(date), req->env.arrival_time, n->gmtoff))
	ok = add_field(out, "Arrival-Date", date);
    for (size_t i = 0; ok && i < req->rcpt_count; i++) {
	const struct bounce_rcpt *r = req->rcpts + i;

	ok = add_line(out, "");
	str_reset(v);
	ok = ok && dsn_address(v, r->address, utf8) && add_field(out, "Final-Recipient", str_cstr(v));
	str_reset(v);
	if (ok && *r->orcpt && dsn_orcpt(v, r->orcpt, utf8))
	    ok = add_field(out, "Original-Recipient", str_cstr(v));
	else if (ok && *r->orig && strcmp(r->orig, r->address) != 0) {
	    str_reset(v);
	    ok = dsn_address(v, r->orig, utf8) && add_field(out, "Original-Recipient", str_cstr(v));
	}
	ok = ok && add_field(out, "Action", r->action);
	ok = ok && add_field(out, "Status", dsn_status_for(r->dsn, r->action));
	str_reset(v);
	if (ok && dsn_remote_mta(v, r->relay))
	    ok = add_field(out, "Remote-MTA", str_cstr(v));
	str_reset(v);
	ok = ok && dsn_diagnostic(v, r->reason, utf8) && add_field(out, "Diagnostic-Code", str_cstr(v));
	if (ok && mail_date_format(date, sizeof(date), n->now, n->gmtoff))
	    ok = add_field(out, "Last-Attempt-Date", date);
	if (ok && n->type == BOUNCE_TYPE_DELAY && strcmp(r->action, "delayed") == 0
	    && n->retry_until > 0 && mail_date_format(date, sizeof(date), n->retry_until, n->gmtoff))
	    ok = add_field(out, "Will-Retry-Until", date);
    }
    str_free(&v);
    return ok;
}

/* add_lines - quoted content lines */
static bool add_lines(struct str *out, const struct bounce_line *lines, size_t count)
{
    bool ok = true;

    for (size_t i = 0; ok && i < count; i++)
	ok = str_try_append(out, lines[i].data, lines[i].len) && str_try_appendc(out, '\n');
    return ok;
}

/* bounce_notice_compose - the whole notice */
bool bounce_notice_compose(struct str *out, const struct bounce_request *req,
			   const struct bounce_orig *orig, const struct bounce_notice *n,
			   struct bounce_notice_info *info)
{
    struct str *v = str_new(STR_MAX_DEFAULT);
    char date[64];
    bool utf8 = notice_utf8(req, orig, n);
    enum bounce_quote quoted = n->quote;
    bool quote8;
    bool ok;

    if (quoted == BOUNCE_QUOTE_FULL && !orig->body_complete)
	quoted = BOUNCE_QUOTE_HEADERS;
    quote8 = quoted != BOUNCE_QUOTE_NONE && (lines_8bit(orig->headers, orig->header_count)
		|| (quoted == BOUNCE_QUOTE_FULL && lines_8bit(orig->body, orig->body_count)));
    info->smtputf8 = utf8;
    info->eight_bit = utf8 || quote8;
    info->quoted = quoted;

    str_reset(out);
    ok = str_try_printf(v, "MAILER-DAEMON@%s (Mail Delivery System)", n->myhostname)
	&& add_field(out, "From", str_cstr(v));
    str_reset(v);
    ok = ok && add_addr_spec(v, n->to, utf8) && add_field(out, "To", str_cstr(v));
    ok = ok && add_field(out, "Subject", notice_subject(n));
    ok = ok && mail_date_format(date, sizeof(date), n->now, n->gmtoff) && add_field(out, "Date", date);
    ok = ok && add_field(out, "Message-ID", n->message_id);
    ok = ok && add_field(out, "Auto-Submitted", "auto-replied");
    if (ok && n->to_postmaster)
	ok = add_field(out, BOUNCE_HEADER_NOTICE, BOUNCE_NOTICE_POSTMASTER);
    ok = ok && add_field(out, "MIME-Version", "1.0");
    ok = ok && str_try_printf(v, "multipart/report; report-type=%s; boundary=\"%s\"",
			  utf8 ? "global-delivery-status" : "delivery-status", n->boundary)
	&& add_field(out, "Content-Type", str_cstr(v));
    ok = ok && add_field(out, "Content-Transfer-Encoding", info->eight_bit ? "8bit" : "7bit");
    ok = ok && add_line(out, "") && add_line(out, "This is a MIME-encapsulated message.")
	&& add_line(out, "");

    /* 1. human-readable */
    ok = ok && str_try_printf(v, "--%s", n->boundary) && add_line(out, str_cstr(v));
    ok = ok && add_field(out, "Content-Description", "Notification");
    ok = ok && add_field(out, "Content-Type", utf8 ? "text/plain; charset=utf-8"
			 : "text/plain; charset=us-ascii");
    if (ok && utf8)
	ok = add_field(out, "Content-Transfer-Encoding", "8bit");
    ok = ok && add_line(out, "")
	&& add_text_part(out, req, n, quoted,
			 quoted != BOUNCE_QUOTE_NONE && !orig->headers_complete, utf8);

    /* 2. machine-readable */
    ok = ok && str_try_printf(v, "--%s", n->boundary) && add_line(out, str_cstr(v));
    ok = ok && add_field(out, "Content-Description", n->type == BOUNCE_TYPE_FAILURE
			 ? "Delivery report" : n->type == BOUNCE_TYPE_DELAY
			 ? "Delay report" : "Delivery report (success)");
    ok = ok && add_field(out, "Content-Type", utf8 ? "message/global-delivery-status"
			 : "message/delivery-status");
    if (ok && utf8)
	ok = add_field(out, "Content-Transfer-Encoding", "8bit");
    ok = ok && add_line(out, "") && add_status_part(out, req, n, utf8) && add_line(out, "");

    /* 3. the original */
    if (ok && quoted != BOUNCE_QUOTE_NONE) {
	bool full = quoted == BOUNCE_QUOTE_FULL;

	ok = str_try_printf(v, "--%s", n->boundary) && add_line(out, str_cstr(v));
	ok = ok && add_field(out, "Content-Description", n->double_bounce
			     ? (full ? "Undelivered Notification" : "Undelivered Notification Headers")
			     : n->type != BOUNCE_TYPE_FAILURE
			     ? "Message Headers" : full ? "Undelivered Message"
			     : "Undelivered Message Headers");
	ok = ok && add_field(out, "Content-Type", full ? (utf8 ? "message/global" : "message/rfc822")
			     : (utf8 ? "message/global-headers" : "text/rfc822-headers"));
	if (ok && quote8)
	    ok = add_field(out, "Content-Transfer-Encoding", "8bit");
	ok = ok && add_line(out, "") && add_lines(out, orig->headers, orig->header_count);
	if (ok && full)
	    ok = add_lines(out, orig->body, orig->body_count);
	/* the line end before a delimiter belongs to the delimiter (RFC
	 * 2046 5.1.1): one more keeps the quoted text's last line end */
	ok = ok && add_line(out, "");
    }
    ok = ok && str_try_printf(v, "--%s--", n->boundary) && add_line(out, str_cstr(v));
    str_free(&v);
    return ok;
}
