/* test-limits_table.c - unit tests for limits_table.c with the clock in
 * the test's hand: counts and rates, the window rolling over exactly at
 * the time unit, connects bound to their connection, expiry of idle
 * entries, eviction oldest first at max_entries, a table full of busy
 * entries (answered as if new, not stored), the listing's order, and the
 * statistics. */

#include <stdio.h>
#include <string.h>

/* base */
#include "msg.h"
#include "unit.h"

/* mail */
#include "limits_proto.h"

/* this program */
#include "limits_table.h"

#define T0	1000

static struct limits_counts k;

/* ev - one event at time t on connection c; the figures */
static const struct limits_counts *ev(struct lt_conn *c, enum lt_event e, const char *addr, time_t t)
{
    (void) lt_event(c, e, "smtp", addr, t, &k);
    return &k;
}

static void test_counts_and_window(void)
{
    struct lt_conn *c = lt_conn_new();

    unit_begin("lt_event: counts, rates, and the window of one time unit");
    lt_init(60, 1000);
    unit_assert_inteq(ev(c, LT_LOOKUP, "192.0.2.1", T0)->count, 0);
    unit_assert_inteq(lt_entries(), 0);			/* a lookup stores nothing */
    unit_assert_inteq(ev(c, LT_CONNECT, "192.0.2.1", T0)->count, 1);
    unit_assert_inteq(k.conn_rate, 1);
    ev(c, LT_MESSAGE, "192.0.2.1", T0 + 10);
    ev(c, LT_RECIPIENT, "192.0.2.1", T0 + 20);
    ev(c, LT_RECIPIENT, "192.0.2.1", T0 + 30);
    ev(c, LT_NEWTLS, "192.0.2.1", T0 + 40);
    ev(c, LT_AUTHFAIL, "192.0.2.1", T0 + 59);
    unit_assert_inteq(k.message_rate, 1);
    unit_assert_inteq(k.recipient_rate, 2);
    unit_assert_inteq(k.tls_rate, 1);
    unit_assert_inteq(k.auth_rate, 1);
    /* the window started at T0: at T0 + 60 it has ended */
    ev(c, LT_LOOKUP, "192.0.2.1", T0 + 60);
    unit_assert_inteq(k.count, 1);
    unit_assert_inteq(k.conn_rate + k.message_rate + k.recipient_rate + k.tls_rate + k.auth_rate, 0);
    /* the next event opens a new window */
    ev(c, LT_MESSAGE, "192.0.2.1", T0 + 100);
    unit_assert_inteq(k.message_rate, 1);
    ev(c, LT_MESSAGE, "192.0.2.1", T0 + 159);
    unit_assert_inteq(k.message_rate, 2);
    ev(c, LT_MESSAGE, "192.0.2.1", T0 + 160);
    unit_assert_inteq(k.message_rate, 1);
    /* other services and addresses are other keys */
    (void) lt_event(c, LT_CONNECT, "submission", "192.0.2.1", T0 + 160, &k);
    unit_assert_inteq(k.count, 1);
    unit_assert_inteq(ev(c, LT_CONNECT, "192.0.2.2", T0 + 160)->count, 1);
    unit_assert_inteq(lt_entries(), 3);
    lt_conn_free(&c, T0 + 200);
    unit_assert(c == NULL);
    unit_end();
}

static void test_binding(void)
{
    struct lt_conn *a = lt_conn_new(), *b = lt_conn_new();

    unit_begin("lt_conn: connects bound to their connection, released with it");
    lt_init(60, 1000);
    ev(a, LT_CONNECT, "192.0.2.1", T0);
    ev(a, LT_CONNECT, "192.0.2.1", T0);
    ev(b, LT_CONNECT, "192.0.2.1", T0);
    unit_assert_inteq(k.count, 3);
    /* b takes back its own, then nothing more */
    unit_assert_inteq(ev(b, LT_DISCONNECT, "192.0.2.1", T0)->count, 2);
    unit_assert_inteq(ev(b, LT_DISCONNECT, "192.0.2.1", T0)->count, 2);
    /* a disconnect of an unknown key stores nothing */
    unit_assert_inteq(ev(b, LT_DISCONNECT, "192.0.2.9", T0)->count, 0);
    unit_assert_inteq(lt_entries(), 1);
    unit_assert_inteq(ev(a, LT_DISCONNECT, "192.0.2.1", T0)->count, 1);
    lt_conn_free(&a, T0 + 1);
    unit_assert_inteq(ev(b, LT_LOOKUP, "192.0.2.1", T0 + 1)->count, 0);
    unit_assert_inteq(k.conn_rate, 3);
    lt_conn_free(&b, T0 + 1);
    unit_end();
}

static void test_expiry(void)
{
    struct lt_conn *c = lt_conn_new();

    unit_begin("lt_expire: idle entries go a time unit after their last use");
    lt_init(60, 1000);
    ev(c, LT_AUTHFAIL, "192.0.2.1", T0);
    ev(c, LT_AUTHFAIL, "192.0.2.2", T0 + 30);
    ev(c, LT_CONNECT, "192.0.2.3", T0);			/* busy: stays */
    lt_expire(T0 + 59);
    unit_assert_inteq(lt_entries(), 3);
    lt_expire(T0 + 60);
    unit_assert_inteq(lt_entries(), 2);
    lt_expire(T0 + 1000);
    unit_assert_inteq(lt_entries(), 1);
    /* released: idle from then on */
    lt_conn_free(&c, T0 + 1000);
    lt_expire(T0 + 1059);
    unit_assert_inteq(lt_entries(), 1);
    lt_expire(T0 + 1060);
    unit_assert_inteq(lt_entries(), 0);
    unit_end();
}

static void test_bound(void)
{
    struct lt_conn *c = lt_conn_new(), *busy = lt_conn_new();
    char addr[32];
    const struct lt_row *rows;

    unit_begin("max_entries: idle entries evicted oldest first; busy ones never");
    lt_init(60, 100);
    ev(busy, LT_CONNECT, "192.0.2.55", T0);
    for (int i = 0; i < 20000; i++) {
	snprintf(addr, sizeof(addr), "10.0.%d.%d", i >> 8, i & 255);
	(void) lt_event(c, LT_MESSAGE, "smtp", addr, T0 + 1 + i / 1000, &k);
	unit_assert_idx(k.message_rate == 1, i);
    }
    unit_assert_inteq(lt_entries(), 100);
    unit_assert_inteq(ev(c, LT_LOOKUP, "192.0.2.55", T0 + 30)->count, 1);
    /* the newest 99 flood entries are the ones kept */
    unit_assert_inteq(ev(c, LT_LOOKUP, "10.0.78.31", T0 + 30)->message_rate, 1);	/* 19999 */
    unit_assert_inteq(ev(c, LT_LOOKUP, "10.0.77.189", T0 + 30)->message_rate, 1);	/* 19901 */
    unit_assert_inteq(ev(c, LT_LOOKUP, "10.0.77.188", T0 + 30)->message_rate, 0);	/* 19900 */
    unit_end();

    unit_begin("max_entries: a table of busy entries answers as if new");
    for (int i = 0; i < 200; i++) {
	snprintf(addr, sizeof(addr), "10.1.0.%d", i);
	(void) lt_event(busy, LT_CONNECT, "smtp", addr, T0 + 40, &k);
	unit_assert_idx(k.count == 1 && k.conn_rate == 1, i);
    }
    unit_assert_inteq(lt_entries(), 100);
    unit_assert(lt_event(c, LT_CONNECT, "smtp", "198.51.100.1", T0 + 40, &k) == LT_NOT_STORED);
    unit_assert_inteq(k.count, 1);
    unit_assert(lt_event(c, LT_CONNECT, "smtp", "198.51.100.1", T0 + 40, &k) == LT_NOT_STORED);
    unit_assert_inteq(k.count, 1);
    unit_assert(lt_event(c, LT_AUTHFAIL, "smtp", "198.51.100.1", T0 + 40, &k) == LT_NOT_STORED);
    unit_assert_inteq(k.auth_rate, 1);
    unit_assert_inteq(k.count, 0);
    unit_assert_inteq(ev(c, LT_CONNECT, "192.0.2.55", T0 + 40)->count, 2);
    unit_end();

    unit_begin("lt_list: by count, then connection rate, at most max");
    unit_assert_inteq(lt_list(T0 + 40, 5, &rows), 5);
    unit_assert_streq(rows[0].address, "192.0.2.55");
    unit_assert_streq(rows[0].service, "smtp");
    unit_assert_inteq(rows[0].counts.count, 2);
    unit_assert_inteq(rows[1].counts.count, 1);
    unit_assert_inteq(lt_list(T0 + 40, 10000, &rows), 100);
    lt_conn_free(&busy, T0 + 41);
    unit_assert_inteq(lt_list(T0 + 41, 10000, &rows), 100);
    unit_assert_streq(rows[0].address, "192.0.2.55");	/* c's connect */
    unit_assert_inteq(rows[0].counts.count, 1);
    unit_assert_inteq(rows[0].counts.conn_rate, 2);
    unit_assert_inteq(rows[1].counts.count, 0);
    lt_expire(T0 + 200);
    unit_assert_inteq(lt_entries(), 1);
    lt_conn_free(&c, T0 + 200);
    lt_expire(T0 + 260);
    unit_assert_inteq(lt_entries(), 0);
    unit_end();
}

int main(void)
{
    msg_init("test-limits_table", MSG_TO_STDERR);
    test_counts_and_window();
    test_binding();
    test_expiry();
    test_bound();
    return unit_done();
}
