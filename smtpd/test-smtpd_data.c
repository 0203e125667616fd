/* test-smtpd_data.c - unit tests for smtpd_data.c: the Received: header
 * (its date is mail_date_local; the content parser is lib/mail/test-smtp_data.c). */

#include <string.h>

#include "config.h"
#include "mail_date.h"
#include "mem.h"
#include "str.h"
#include "unit.h"

#include "smtpd.h"

int main(void)
{
    config_init();

    unit_begin("Received: header and date");
    {
	struct smtpd_state st;
	struct smtpd_rcpt r = {.address = (char *) "john doe@example.test"};
	struct str *lines[3];
	char date[64];
	const char *err;
	size_t n;

	unit_assert(config_override("myhostname=mx.example.test", &err) == 0);
	unit_assert(config_apply(&err) == 0);
	unit_assert(mail_date_local(date, sizeof(date), 1700000000));
	for (int i = 0; i < 3; i++)
	    lines[i] = str_new(2048);
	memset(&st, 0, sizeof(st));
	str_copy_out(st.name, sizeof(st.name), "unknown");
	str_copy_out(st.addr, sizeof(st.addr), "192.0.2.1");
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
	/* known name, IPv6, two recipients, no HELO */
	str_copy_out(st.name, sizeof(st.name), "host.example");
	str_copy_out(st.addr, sizeof(st.addr), "2001:db8::1");
	st.addr_is_v6 = true;
	st.helo = NULL;
	st.esmtp = false;
	st.rcpt_count = 2;
	n = smtpd_received_header(&st, 1700000000, lines);
	unit_assert_inteq(n, 2);
	unit_assert_streq(str_cstr(lines[0]), "Received: from host.example (host.example [IPv6:2001:db8::1])");
	unit_assert(strncmp(str_cstr(lines[1]), "\tby mx.example.test (posthorn) with SMTP; ", 42) == 0);
	for (int i = 0; i < 3; i++)
	    str_free(&lines[i]);
    }
    unit_end();

    return unit_done();
}
