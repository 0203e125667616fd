/* test-smtpd_message.c - unit tests for smtpd_message.c: the Received:
 * header, the NOTIFY text for cleanup and which reply refuses a message
 * (the cleanup conversation itself is covered by tests/test_smtpd.py). */

#include <string.h>

#include "config.h"
#include "mail_date.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

#include "smtpd.h"

/* test_received_header - one recipient (quoted), then a known name,
 * IPv6 and two recipients */
static void test_received_header(void)
{
    struct smtpd_state st;
    struct smtpd_rcpt r = {.address = (char *) "john doe@example.test"};
    struct str *lines[SMTPD_RECEIVED_LINES];
    char date[MAIL_DATE_SIZE];
    const char *err;
    size_t n;

    unit_begin("Received: header lines and their date");
    unit_assert(config_override("myhostname=mx.example.test", &err) == 0);
    unit_assert(config_apply(&err) == 0);
    unit_assert(mail_date_local(date, sizeof(date), 1700000000));
    for (int i = 0; i < SMTPD_RECEIVED_LINES; i++)
	lines[i] = str_new(2048);
    memset(&st, 0, sizeof(st));
    str_copy_out_or_panic(st.name, sizeof(st.name), "unknown");
    str_copy_out_or_panic(st.addr, sizeof(st.addr), "192.0.2.1");
    st.helo = (char *) "client.example";
    st.esmtp = true;
    st.rcpts = &r;
    st.rcpt_count = 1;
    n = smtpd_received_header(&st, 1700000000, lines);
    unit_assert_inteq(n, 3);
    unit_assert_streq(str_cstr(lines[0]), "Received: from client.example ([192.0.2.1])");
    unit_assert_streq(str_cstr(lines[1]), "\tby mx.example.test (posthorn) with ESMTP");
    unit_assert(strncmp(str_cstr(lines[2]), "\tfor <\"john doe\"@example.test>; ", 32) == 0);
    unit_assert_streq(str_cstr(lines[2]) + 32, date);
    str_copy_out_or_panic(st.name, sizeof(st.name), "host.example");
    str_copy_out_or_panic(st.addr, sizeof(st.addr), "2001:db8::1");
    st.addr_is_v6 = true;
    st.helo = NULL;
    st.esmtp = false;
    st.rcpt_count = 2;
    n = smtpd_received_header(&st, 1700000000, lines);
    unit_assert_inteq(n, 2);
    unit_assert_streq(str_cstr(lines[0]), "Received: from host.example (host.example [IPv6:2001:db8::1])");
    unit_assert(strncmp(str_cstr(lines[1]), "\tby mx.example.test (posthorn) with SMTP; ", 42) == 0);
    unit_assert_streq(str_cstr(lines[1]) + 42, date);
    /* TLS and AUTH: the using line always (smtpd_tls_received_header
     * = yes), the login only with smtpd_sasl_authenticated_header */
    st.tls = true;
    str_copy_out_or_panic(st.tls_summary, sizeof(st.tls_summary),
			  "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)");
    st.authenticated = true;
    st.sasl_username = (char *) "alice@example.test";
    st.esmtp = true;
    st.rcpt_count = 1;
    n = smtpd_received_header(&st, 1700000000, lines);
    unit_assert_inteq(n, 4);
    unit_assert_streq(str_cstr(lines[1]),
		      "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))");
    unit_assert_streq(str_cstr(lines[2]), "\tby mx.example.test (posthorn) with ESMTPSA");
    unit_assert(config_override("smtpd_sasl_authenticated_header=yes", &err) == 0);
    unit_assert(config_apply(&err) == 0);
    n = smtpd_received_header(&st, 1700000000, lines);
    unit_assert_inteq(n, 5);
    unit_assert_streq(str_cstr(lines[2]), "\t(Authenticated sender: alice@example.test)");
    unit_assert(strncmp(str_cstr(lines[4]), "\tfor <\"john doe\"@example.test>; ", 32) == 0);
    unit_assert(config_override("smtpd_sasl_authenticated_header=no", &err) == 0);
    unit_assert(config_apply(&err) == 0);
    for (int i = 0; i < SMTPD_RECEIVED_LINES; i++)
	str_free(&lines[i]);
    unit_end();
}

/* test_received_header_too_long - a header that does not fit is not
 * sent cut: 0 lines (the caller logs it) */
static void test_received_header_too_long(void)
{
    static char assignment[3100];
    struct smtpd_state st;
    struct str *lines[SMTPD_RECEIVED_LINES];
    const char *err;

    unit_begin("Received: lines that do not fit give 0, never a cut header");
    memcpy(assignment, "myhostname=", 11);
    memset(assignment + 11, 'h', 3000);
    unit_assert(config_override(assignment, &err) == 0);
    unit_assert(config_apply(&err) == 0);
    for (int i = 0; i < SMTPD_RECEIVED_LINES; i++)
	lines[i] = str_new(2048);
    memset(&st, 0, sizeof(st));
    str_copy_out_or_panic(st.name, sizeof(st.name), "unknown");
    str_copy_out_or_panic(st.addr, sizeof(st.addr), "192.0.2.1");
    unit_assert_inteq(smtpd_received_header(&st, 1700000000, lines), 0);
    unit_assert(config_override("myhostname=mx.example.test", &err) == 0);
    unit_assert(config_apply(&err) == 0);
    unit_assert_inteq(smtpd_received_header(&st, 1700000000, lines), 2);
    for (int i = 0; i < SMTPD_RECEIVED_LINES; i++)
	str_free(&lines[i]);
    unit_end();
}

/* test_notify_text - RFC 3461 NOTIFY as cleanup's N record text */
static void test_notify_text(void)
{
    static const struct {
	unsigned notify;
	const char *want;		/* NULL: no record */
    } cases[] = {
	{0, NULL},
	{SMTP_NOTIFY_NEVER, "never"},
	{SMTP_NOTIFY_SUCCESS, "success"},
	{SMTP_NOTIFY_FAILURE, "failure"},
	{SMTP_NOTIFY_DELAY, "delay"},
	{SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY, "success,delay"},
	{SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, "failure,delay"},
	{SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, "success,failure,delay"},
    };
    char buf[64];

    unit_begin("smtpd_message_notify: the N record text");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	const char *got = smtpd_message_notify(cases[i].notify, buf, sizeof(buf));

	if (cases[i].want == NULL)
	    unit_assert_idx(got == NULL, i);
	else
	    unit_assert_streq_idx(got, cases[i].want, i);
    }
    unit_end();
}

/* test_refusal - which content is refused, with which reply, in which
 * order (a bare line end under reject wins over size) */
static void test_refusal(void)
{
    static const struct {
	bool reject_bare, bare_lf, bare_cr, too_big, write_error;
	enum smtpd_reply_id want;
    } cases[] = {
	{false, false, false, false, false, SR_COUNT},
	{false, true, true, false, false, SR_COUNT},	/* normalized */
	{true, true, false, false, false, SR_BARE_LF},
	{true, false, true, false, false, SR_BARE_CR},
	{true, true, true, true, false, SR_BARE_LF},
	{false, false, false, true, false, SR_TOO_BIG},
	{false, false, false, true, true, SR_TOO_BIG},
	{false, false, false, false, true, SR_QUEUE_WRITE},
    };

    unit_begin("smtpd_message_refusal: bare CR/LF, too big, write error, none");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	struct smtp_data c;

	memset(&c, 0, sizeof(c));
	c.reject_bare = cases[i].reject_bare;
	c.bare_lf = cases[i].bare_lf;
	c.bare_cr = cases[i].bare_cr;
	c.too_big = cases[i].too_big;
	c.write_error = cases[i].write_error;
	unit_assert_idx(smtpd_message_refusal(&c) == cases[i].want, i);
    }
    unit_end();
}

int main(void)
{
    config_init();
    test_received_header();
    test_received_header_too_long();
    test_notify_text();
    test_refusal();
    return unit_done();
}
