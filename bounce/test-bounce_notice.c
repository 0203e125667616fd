/* test-bounce_notice.c - unit tests for bounce_notice.c and
 * bounce_original.c: the MIME structure of composed notices, the
 * delivery-status fields, what is quoted of the original (RET, size
 * limit), the boundary check, SMTPUTF8 notices. (The request decoder
 * is lib/mail/bounce_proto.c, tested in lib/mail/test-bounce_proto.c.) */

#include <string.h>

#include "ipc.h"
#include "str.h"
#include "unit.h"

#include "mail_proto.h"

#include "bounce.h"

static const char *const original[] = {
    "Received: from client.example (client.example [192.0.2.7])",
    "From: alice@example.test",
    "To: nobody@example.net",
    "Subject: lunch",
    "",
    "Shall we have lunch?",
    "--not-a-boundary",
};
#define ORIGINAL_COUNT	(sizeof(original) / sizeof(original[0]))

/* load - an original from the table, with limits */
static void load(struct bounce_orig *orig, size_t header_max, size_t body_max)
{
    bounce_orig_init(orig);
    for (size_t i = 0; i < ORIGINAL_COUNT; i++)
	bounce_orig_add_line(orig, original[i], strlen(original[i]), header_max, body_max);
}

/* count - occurrences of needle in hay */
static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *cp = strstr(hay, needle); cp; cp = strstr(cp + 1, needle))
	n++;
    return n;
}

/* has_line - text has needle as a whole line */
static bool has_line(const char *text, const char *line)
{
    size_t len = strlen(line);

    for (const char *cp = strstr(text, line); cp; cp = strstr(cp + 1, line))
	if ((cp == text || cp[-1] == '\n') && cp[len] == '\n')
	    return true;
    return false;
}

/* part - the body of MIME part n (1-based) of the notice, into out */
static bool part(const char *text, const char *boundary, int n, struct str *out)
{
    char delim[256];
    const char *cp = text, *end;

    fmt_buf_or_panic(delim, sizeof(delim), "\n--%s\n", boundary);
    for (int i = 0; i < n; i++) {
	cp = strstr(cp, delim);
	if (cp == NULL)
	    return false;
	cp += strlen(delim);
    }
    end = strstr(cp, "\n--");
    while (end && strncmp(end + 3, boundary, strlen(boundary)) != 0)
	end = strstr(end + 1, "\n--");
    if (end == NULL)
	return false;
    return str_try_setn(out, cp, (size_t) (end - cp + 1));
}

int main(void)
{
    static struct bounce_rcpt rcpts[] = {
	{"nobody@example.net", "info@example.test", "rfc822;info@example.test", "5.1.1", "failed",
	 "host mx.example.net[192.0.2.1] said: 550 5.1.1 <nobody@example.net>: Recipient address "
	 "rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)",
	 "mx.example.net[192.0.2.1]:25"},
	{"carol@example.test", "", "", "5.2.2", "failed", "mailbox full", "local"},
    };
    struct bounce_request req = {
	.type = BOUNCE_TYPE_FAILURE,
	.env = {.queue_id = "1r31eq0W7E5BAN", .queue_file = "active/1r31eq0W7E5BAN",
		.sender = "alice@example.test", .arrival_time = 1700000000,
		.dsn_envid = "ENV-42", .dsn_ret = ""},
	.rcpts = rcpts, .rcpt_count = 2,
    };
    struct bounce_notice n = {
	.type = BOUNCE_TYPE_FAILURE, .to = "alice@example.test", .myhostname = "mail.example.test",
	.postmaster = "postmaster@example.test", .now = 1700003600, .gmtoff = 0,
	.boundary = "1r31eq0W7E5BAN.1700003600/mail.example.test",
	.message_id = "<20231114.1r31eq0W7E5BAN@mail.example.test>",
	.quote = BOUNCE_QUOTE_FULL,
    };
    struct bounce_orig orig;
    struct bounce_notice_info info;
    struct str *out = str_new(STR_MAX_DEFAULT);
    struct str *p = str_new(STR_MAX_DEFAULT);

    unit_begin("failure notice: header fields and multipart/report structure");
    load(&orig, 102400, 50000);
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(!info.eight_bit && !info.smtputf8);
    unit_assert_inteq(info.quoted, BOUNCE_QUOTE_FULL);
    {
	const char *t = str_cstr(out);

	unit_assert(strncmp(t, "From: MAILER-DAEMON@mail.example.test (Mail Delivery System)\n",
			    61) == 0);
	unit_assert(has_line(t, "To: alice@example.test"));
	unit_assert(has_line(t, "Subject: Undelivered Mail Returned to Sender"));
	unit_assert(has_line(t, "Date: Tue, 14 Nov 2023 23:13:20 +0000"));
	unit_assert(has_line(t, "Message-ID: <20231114.1r31eq0W7E5BAN@mail.example.test>"));
	unit_assert(has_line(t, "Auto-Submitted: auto-replied"));
	unit_assert(strstr(t, "X-Posthorn-Notice") == NULL);	/* sender notices: none */
	unit_assert(has_line(t, "MIME-Version: 1.0"));
	unit_assert(strstr(t, "Content-Type: multipart/report; report-type=delivery-status;\n"
			   " boundary=\"1r31eq0W7E5BAN.1700003600/mail.example.test\"\n") != NULL);
	unit_assert(has_line(t, "Content-Transfer-Encoding: 7bit"));
	/* three parts and the closing delimiter, each once */
	unit_assert_inteq(count(t, "\n--1r31eq0W7E5BAN.1700003600/mail.example.test\n"), 3);
	unit_assert(strstr(t, "\n--1r31eq0W7E5BAN.1700003600/mail.example.test--\n") != NULL);
	unit_assert(t[str_len(out) - 1] == '\n');
	for (const char *cp = t; *cp; cp++)
	    unit_assert((unsigned char) *cp < 0x80);
    }
    unit_end();

    unit_begin("failure notice: the human-readable part names each recipient");
    unit_assert(part(str_cstr(out), n.boundary, 1, p));
    unit_assert(strncmp(str_cstr(p), "Content-Description: Notification\n"
			"Content-Type: text/plain; charset=us-ascii\n\n", 78) == 0);
    unit_assert(strstr(str_cstr(p), "mail.example.test") != NULL);
    unit_assert(strstr(str_cstr(p), "<nobody@example.net> (expanded from <info@example.test>): host\n"
		       "    mx.example.net[192.0.2.1] said: 550 5.1.1") != NULL);
    unit_assert(strstr(str_cstr(p), "<carol@example.test>: mailbox full") != NULL);
    unit_assert(strstr(str_cstr(p), "<postmaster@example.test>") != NULL);
    unit_end();

    unit_begin("failure notice: message/delivery-status fields");
    unit_assert(part(str_cstr(out), n.boundary, 2, p));
    {
	const char *t = str_cstr(p);

	unit_assert(has_line(t, "Content-Type: message/delivery-status"));
	unit_assert(has_line(t, "Reporting-MTA: dns; mail.example.test"));
	unit_assert(has_line(t, "X-Posthorn-Queue-ID: 1r31eq0W7E5BAN"));
	unit_assert(has_line(t, "X-Posthorn-Sender: rfc822; alice@example.test"));
	unit_assert(has_line(t, "Original-Envelope-Id: ENV-42"));
	unit_assert(has_line(t, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000"));
	unit_assert(has_line(t, "Final-Recipient: rfc822; nobody@example.net"));
	unit_assert(has_line(t, "Original-Recipient: rfc822; info@example.test"));
	unit_assert_inteq(count(t, "\nAction: failed\n"), 2);
	unit_assert(has_line(t, "Status: 5.1.1"));
	unit_assert(has_line(t, "Status: 5.2.2"));
	unit_assert(has_line(t, "Remote-MTA: dns; mx.example.net"));
	unit_assert_inteq(count(t, "Remote-MTA:"), 1);
	unit_assert(strstr(t, "Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient "
			   "address\n rejected: User unknown in virtual mailbox table\n") != NULL);
	unit_assert(has_line(t, "Diagnostic-Code: x-posthorn; mailbox full"));
	unit_assert_inteq(count(t, "Last-Attempt-Date: Tue, 14 Nov 2023 23:13:20 +0000\n"), 2);
	unit_assert_inteq(count(t, "Will-Retry-Until"), 0);
	/* per-message block, then one block per recipient, separated by
	 * empty lines */
	unit_assert(strstr(t, "+0000\n\nFinal-Recipient: rfc822; nobody@example.net\n") != NULL);
	unit_assert(strstr(t, "+0000\n\nFinal-Recipient: rfc822; carol@example.test\n") != NULL);
    }
    unit_end();

    unit_begin("failure notice: the whole original as message/rfc822");
    unit_assert(part(str_cstr(out), n.boundary, 3, p));
    unit_assert(strncmp(str_cstr(p), "Content-Description: Undelivered Message\n"
			"Content-Type: message/rfc822\n\nReceived: from client.example", 99) == 0);
    unit_assert(strstr(str_cstr(p), "Subject: lunch\n\nShall we have lunch?\n--not-a-boundary\n")
		!= NULL);
    bounce_orig_fini(&orig);
    unit_end();

    unit_begin("RET=HDRS, size limit and header limit choose text/rfc822-headers");
    load(&orig, 102400, 50000);
    unit_assert_inteq(bounce_notice_quote(BOUNCE_TYPE_FAILURE, false, "hdrs", &orig),
		      BOUNCE_QUOTE_HEADERS);
    unit_assert_inteq(bounce_notice_quote(BOUNCE_TYPE_FAILURE, false, "FULL", &orig),
		      BOUNCE_QUOTE_FULL);
    unit_assert_inteq(bounce_notice_quote(BOUNCE_TYPE_FAILURE, false, "", &orig),
		      BOUNCE_QUOTE_FULL);
    unit_assert_inteq(bounce_notice_quote(BOUNCE_TYPE_FAILURE, true, "", &orig),
		      BOUNCE_QUOTE_HEADERS);
    unit_assert_inteq(bounce_notice_quote(BOUNCE_TYPE_DELAY, false, "full", &orig),
		      BOUNCE_QUOTE_HEADERS);
    unit_assert_inteq(bounce_notice_quote(BOUNCE_TYPE_SUCCESS, false, "full", &orig),
		      BOUNCE_QUOTE_HEADERS);
    bounce_orig_fini(&orig);
    /* a message over the limit: body dropped, headers kept */
    load(&orig, 102400, 100);
    unit_assert(!orig.body_complete && orig.headers_complete);
    unit_assert_inteq(orig.header_count, 4);
    unit_assert_inteq(orig.body_count, 0);
    unit_assert_inteq(orig.size, 161);
    unit_assert_inteq(bounce_notice_quote(BOUNCE_TYPE_FAILURE, false, "full", &orig),
		      BOUNCE_QUOTE_HEADERS);
    n.quote = BOUNCE_QUOTE_FULL;	/* compose falls back by itself */
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert_inteq(info.quoted, BOUNCE_QUOTE_HEADERS);
    unit_assert(part(str_cstr(out), n.boundary, 3, p));
    unit_assert(strstr(str_cstr(p), "Content-Type: text/rfc822-headers\n") != NULL);
    unit_assert(strstr(str_cstr(p), "Subject: lunch\n\n") != NULL);
    unit_assert(strstr(str_cstr(p), "Shall we") == NULL);
    unit_assert(strstr(str_cstr(out), "The headers of your message are attached") != NULL);
    bounce_orig_fini(&orig);
    /* headers over header_size_limit: the rest is left out */
    load(&orig, 60, 50000);
    unit_assert(!orig.headers_complete && !orig.body_complete);
    unit_assert_inteq(orig.header_count, 1);
    bounce_orig_fini(&orig);
    unit_end();

    unit_begin("delay notice: Will-Retry-Until, headers only, subject");
    load(&orig, 102400, 50000);
    rcpts[0].action = "delayed";
    rcpts[0].dsn = "4.4.1";
    rcpts[0].reason = "connect to mx.example.net[192.0.2.1]:25: Connection timed out";
    req.type = n.type = BOUNCE_TYPE_DELAY;
    req.rcpt_count = 1;
    n.retry_until = 1700000000 + 5 * 86400;
    n.quote = bounce_notice_quote(BOUNCE_TYPE_DELAY, false, "", &orig);
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(has_line(str_cstr(out), "Subject: Delayed Mail (still being retried)"));
    unit_assert(has_line(str_cstr(out), "Action: delayed"));
    unit_assert(has_line(str_cstr(out), "Status: 4.4.1"));
    unit_assert(has_line(str_cstr(out), "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000"));
    unit_assert(strstr(str_cstr(out), "\nDiagnostic-Code: x-posthorn; connect to "
		       "mx.example.net[192.0.2.1]:25:\n Connection timed out\n") != NULL);
    unit_assert(strstr(str_cstr(out), "Sun, 19 Nov 2023 22:13:20") != NULL);
    unit_assert(has_line(str_cstr(out), "Content-Type: text/rfc822-headers"));
    unit_assert(strstr(str_cstr(out), "Shall we") == NULL);
    unit_end();

    unit_begin("success notice");
    rcpts[0].action = "delivered";
    rcpts[0].dsn = "2.0.0";
    rcpts[0].reason = "delivered to maildir";
    rcpts[0].relay = "local";
    req.type = n.type = BOUNCE_TYPE_SUCCESS;
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(has_line(str_cstr(out), "Subject: Successful Mail Delivery Report"));
    unit_assert(has_line(str_cstr(out), "Action: delivered"));
    unit_assert(has_line(str_cstr(out), "Status: 2.0.0"));
    unit_assert(strstr(str_cstr(out), "Will-Retry-Until") == NULL);
    unit_assert(strstr(str_cstr(out), "Remote-MTA") == NULL);
    unit_end();

    unit_begin("double bounce to postmaster");
    rcpts[0].action = "failed";
    rcpts[0].dsn = "5.1.1";
    req.type = n.type = BOUNCE_TYPE_FAILURE;
    req.env.sender = "";
    n.to = "postmaster@mail.example.test";
    n.to_postmaster = n.double_bounce = true;
    n.quote = BOUNCE_QUOTE_FULL;
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(has_line(str_cstr(out), "To: postmaster@mail.example.test"));
    unit_assert(has_line(str_cstr(out), "X-Posthorn-Notice: postmaster"));
    unit_assert(strstr(str_cstr(out), "Subject: Postmaster Warning:") != NULL);
    unit_assert(strstr(str_cstr(out), "X-Posthorn-Sender") == NULL);
    unit_assert(has_line(str_cstr(out), "Content-Description: Undelivered Notification"));
    n.to_postmaster = n.double_bounce = false;
    req.env.sender = "alice@example.test";
    n.to = "alice@example.test";
    unit_end();

    unit_begin("boundary check: a content line starting with --boundary");
    unit_assert(bounce_notice_boundary_ok(&orig, "1r31eq0W7E5BAN.1700003600/mail.example.test"));
    unit_assert(!bounce_notice_boundary_ok(&orig, "not-a"));
    bounce_orig_fini(&orig);
    unit_end();

    unit_begin("headers cut at a line boundary: quoted as kept, and said so");
    load(&orig, 70, 50000);		/* room for the first line only */
    unit_assert(!orig.headers_complete);
    unit_assert_inteq(orig.header_count, 1);
    n.quote = BOUNCE_QUOTE_HEADERS;
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(strstr(str_cstr(out), "(bounce_size_limit)") != NULL);
    unit_assert(has_line(str_cstr(out), original[0]));
    unit_assert(strstr(str_cstr(out), "From: alice@example.test") == NULL);
    bounce_orig_fini(&orig);
    load(&orig, 102400, 50000);		/* complete: nothing said */
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(strstr(str_cstr(out), "bounce_size_limit") == NULL);
    bounce_orig_fini(&orig);
    n.quote = BOUNCE_QUOTE_FULL;
    unit_end();

    unit_begin("SMTPUTF8: message/global-delivery-status, 8bit, utf-8 addresses");
    load(&orig, 102400, 50000);
    orig.smtputf8 = true;
    rcpts[0].address = "j\xc3\xb6rg@example.net";
    rcpts[0].orcpt = "utf-8;j\xc3\xb6rg@example.net";
    req.rcpt_count = 1;
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(info.smtputf8 && info.eight_bit);
    unit_assert(strstr(str_cstr(out), "report-type=global-delivery-status") != NULL);
    unit_assert(has_line(str_cstr(out), "Content-Type: message/global-delivery-status"));
    unit_assert(has_line(str_cstr(out), "Content-Type: text/plain; charset=utf-8"));
    unit_assert(has_line(str_cstr(out), "Final-Recipient: utf-8; j\xc3\xb6rg@example.net"));
    unit_assert(has_line(str_cstr(out), "Original-Recipient: utf-8; j\xc3\xb6rg@example.net"));
    unit_assert(has_line(str_cstr(out), "Content-Type: message/global"));
    unit_assert(has_line(str_cstr(out), "Content-Transfer-Encoding: 8bit"));
    bounce_orig_fini(&orig);
    /* 8-bit content alone: 8bit transfer encoding, no SMTPUTF8 */
    bounce_orig_init(&orig);
    bounce_orig_add_line(&orig, "Subject: caf\xc3\xa9", 14, 102400, 50000);
    rcpts[0].address = "nobody@example.net";
    rcpts[0].orcpt = "";
    unit_assert(bounce_notice_compose(out, &req, &orig, &n, &info));
    unit_assert(info.eight_bit && !info.smtputf8);
    unit_assert(has_line(str_cstr(out), "Content-Type: message/rfc822"));
    unit_assert(has_line(str_cstr(out), "Content-Transfer-Encoding: 8bit"));
    bounce_orig_fini(&orig);
    unit_end();

    str_free(&out);
    str_free(&p);
    return unit_done();
}
