/* test-log_delivery.c - unit tests for the delivery log formatter. */

#include <stdio.h>
#include <string.h>

/* base */
#include "str.h"
#include "unit.h"

/* mail */
#include "log_delivery.h"

/* reference - what log_delay_format promises: "%.2f" without trailing
 * zeros below 100 s, "%.0f" from 100 s, "0" below 0.005 s */
static void reference(char *buf, size_t size, double seconds)
{
    size_t len;

    if (!(seconds >= 0.005)) {
	snprintf(buf, size, "0");
	return;
    }
    if (seconds >= 100) {
	snprintf(buf, size, "%.0f", seconds);
	return;
    }
    snprintf(buf, size, "%.2f", seconds);
    len = strlen(buf);
    while (buf[len - 1] == '0')
	buf[--len] = 0;
    if (buf[len - 1] == '.')
	buf[--len] = 0;
}

int main(void)
{
    static const struct {
	double sec;
	const char *want;
    } delays[] = {
	{0, "0"}, {-1, "0"}, {0.004, "0"}, {0.005, "0.01"}, {0.12, "0.12"},
	{0.1, "0.1"}, {1.0, "1"}, {3.4, "3.4"}, {3.456, "3.46"}, {99.99, "99.99"},
	{100, "100"}, {250.4, "250"}, {86400 * 5.0, "432000"},
    };
    static const struct {
	struct delivery_outcome o;
	struct delivery_times t;
	const char *want;
    } lines[] = {
	/* a normal local delivery, new connection */
	{{"bob@example.test", NULL, "local", "2.0.0", "sent", "delivered to maildir", 0, NULL},
	 {1000.0, 1000.5, 1000.6, 1000.8, 1001.7},
	 "to=<bob@example.test>, relay=local, delay=1.7, delays=0.5/0.1/0.2/0.9, "
	 "dsn=2.0.0, status=sent (delivered to maildir)"},
	/* reused connection: c is 0, b runs until the request went out */
	{{"bob@example.test", "bob@example.test", "local", "2.0.0", "sent", "ok", 0, NULL},
	 {1000.0, 1000.25, 0, 1000.5, 1001.0},
	 "to=<bob@example.test>, relay=local, delay=1, delays=0.25/0.25/0/0.5, "
	 "dsn=2.0.0, status=sent (ok)"},
	/* orig_to differs; deferred without any agent (all in qmgr) */
	{{"u@x.test", "alias@x.test", NULL, "4.3.0", "deferred", "mail transport unavailable", 0, NULL},
	 {1000.0, 1002.0, 0, 0, 1002.5},
	 "to=<u@x.test>, orig_to=<alias@x.test>, relay=none, delay=2.5, "
	 "delays=2/0.5/0/0, dsn=4.3.0, status=deferred (mail transport unavailable)"},
	/* expired: a long wait before qmgr */
	{{"r@remote.test", "", "none", "4.4.1", "expired", "connection refused", 0, NULL},
	 {1000.0, 433000.0, 0, 0, 433000.0},
	 "to=<r@remote.test>, relay=none, delay=432000, delays=432000/0/0/0, "
	 "dsn=4.4.1, status=expired (connection refused)"},
	/* the third delivery of an SMTP session; a new session (1) and no
	 * session (0) print nothing */
	{{"r@remote.test", NULL, "mx.remote.test[192.0.2.1]:25", "2.0.0", "sent", "250 ok", 3, NULL},
	 {1000.0, 1000.0, 0, 1000.0, 1000.5},
	 "to=<r@remote.test>, relay=mx.remote.test[192.0.2.1]:25, conn_use=3, delay=0.5, "
	 "delays=0/0/0/0.5, dsn=2.0.0, status=sent (250 ok)"},
	{{"r@remote.test", NULL, "mx.remote.test[192.0.2.1]:25", "2.0.0", "sent", "250 ok", 1, NULL},
	 {1000.0, 1000.0, 0, 1000.0, 1000.5},
	 "to=<r@remote.test>, relay=mx.remote.test[192.0.2.1]:25, delay=0.5, "
	 "delays=0/0/0/0.5, dsn=2.0.0, status=sent (250 ok)"},
	/* an SMTP session's TLS: after conn_use */
	{{"r@remote.test", NULL, "mx.remote.test[192.0.2.1]:25", "2.0.0", "sent", "250 ok", 2,
	  "Verified:TLSv1.3:TLS_AES_256_GCM_SHA384"},
	 {1000.0, 1000.0, 0, 1000.0, 1000.5},
	 "to=<r@remote.test>, relay=mx.remote.test[192.0.2.1]:25, conn_use=2, "
	 "tls=Verified:TLSv1.3:TLS_AES_256_GCM_SHA384, delay=0.5, "
	 "delays=0/0/0/0.5, dsn=2.0.0, status=sent (250 ok)"},
	{{"r@remote.test", NULL, "mx.remote.test[192.0.2.1]:25", "2.0.0", "sent", "250 ok", 1,
	  "none"},
	 {1000.0, 1000.0, 0, 1000.0, 1000.5},
	 "to=<r@remote.test>, relay=mx.remote.test[192.0.2.1]:25, tls=none, delay=0.5, "
	 "delays=0/0/0/0.5, dsn=2.0.0, status=sent (250 ok)"},
	/* a clock step backwards never prints a negative time */
	{{"a@b", NULL, "local", "5.1.1", "bounced", "unknown user", 0, NULL},
	 {2000.0, 1999.0, 0, 1999.5, 1999.75},
	 "to=<a@b>, relay=local, delay=0, delays=0/0.5/0/0.25, dsn=5.1.1, status=bounced (unknown user)"},
    };
    char buf[64];
    struct str *s;

    unit_begin("log_delay_format");
    for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
	log_delay_format(buf, sizeof(buf), delays[i].sec);
	unit_assert_streq_idx(buf, delays[i].want, i);
    }
    unit_end();

    unit_begin("log_delay_format agrees with printf's rounding everywhere");
    {
	char want[64];
	size_t bad = 0;

	/* every thousandth and its neighbours up to 101 s, where ties and
	 * near-ties of the hundredths live */
	for (long m = 0; m <= 101000; m++) {
	    double base = (double) m / 1000.0;
	    double probes[] = {base, base * (1 + 1e-15), base * (1 - 1e-15), base + 1e-7,
			       base - 1e-7};

	    for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
		log_delay_format(buf, sizeof(buf), probes[k]);
		reference(want, sizeof(want), probes[k]);
		if (strcmp(buf, want) != 0 && bad++ < 5)
		    unit_assert_streq(buf, want);
	    }
	}
	unit_assert(bad == 0);
    }
    unit_end();

    unit_begin("log_delivery_format");
    s = str_new(4000);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
	log_delivery_format(s, &lines[i].o, &lines[i].t);
	unit_assert_streq_idx(str_cstr(s), lines[i].want, i);
    }
    str_free(&s);
    unit_end();

    unit_begin("log_delivery_format truncates at the string maximum");
    s = str_new(20);
    log_delivery_format(s, &lines[0].o, &lines[0].t);
    unit_assert(str_len(s) <= 20);
    unit_assert(strncmp(str_cstr(s), "to=<bob@example.test>", str_len(s)) == 0);
    str_free(&s);
    unit_end();

    return unit_done();
}
