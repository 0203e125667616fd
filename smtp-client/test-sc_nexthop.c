/* test-sc_nexthop.c - unit tests for sc_nexthop.c: literal routes and
 * the dead-address memory (next-hop strings, inet_protocols, the address
 * order and the cuts are lib/mail/test-nexthop.c's; the DNS cases are
 * pytest's, with dnsmasq). */

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* base */
#include "msg.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "config.h"
#include "dns.h"

/* this program */
#include "sc.h"

/* mk - an address of host */
static struct sc_addr mk(const char *host, const char *text)
{
    struct sc_addr a;

    memset(&a, 0, sizeof(a));
    str_copy_out_or_panic(a.host, sizeof(a.host), host);
    str_copy_out_or_panic(a.text, sizeof(a.text), text);
    a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
    a.port = 25;
    return a;
}

/* test_literal_route - no DNS for a literal; the port; a disabled family */
static void test_literal_route(void)
{
    struct nexthop nh;
    struct sc_route route;
    const char *err;

    unit_begin("sc_route_find: literal next hops, smtp_tcp_port, inet_protocols");
    config_set("smtp_tcp_port", "2525");
    config_set("inet_protocols", "ipv4");
    unit_assert(config_apply(&err) == 0);
    unit_assert(nexthop_parse("[192.0.2.7]", &nh, &err) == 0);
    sc_route_find(&nh, &route);
    unit_assert(route.status == SC_ROUTE_OK);
    unit_assert_inteq(route.count, 1);
    unit_assert_streq(route.addrs[0].text, "192.0.2.7");
    unit_assert_inteq(route.addrs[0].port, 2525);
    sc_route_free(&route);
    unit_assert(nexthop_parse("[192.0.2.7]:26", &nh, &err) == 0);
    sc_route_find(&nh, &route);
    unit_assert_inteq(route.addrs[0].port, 26);
    sc_route_free(&route);
    unit_assert(nexthop_parse("[2001:db8::1]", &nh, &err) == 0);
    sc_route_find(&nh, &route);
    unit_assert(route.status == SC_ROUTE_BOUNCE);
    unit_assert_streq(route.dsn, "5.4.4");
    sc_route_free(&route);
    unit_end();
}

/* test_dead - remembered for smtp_dead_host_time, per address and port */
static void test_dead(void)
{
    struct sc_addr a = mk("mx", "192.0.2.9"), b = mk("mx", "192.0.2.10");
    struct sc_addr c = mk("mx", "192.0.2.9");
    const char *err;
    int i;

    unit_begin("sc_dead_mark, sc_dead_check: smtp_dead_host_time");
    config_set("smtp_dead_host_time", "100s");
    unit_assert(config_apply(&err) == 0);
    c.port = 26;
    unit_assert(!sc_dead_check(&a, 1000));
    sc_dead_mark(&a, 1000, "connect to x: Connection refused");
    unit_assert_streq(sc_dead_check(&a, 1000), "connect to x: Connection refused");
    unit_assert(sc_dead_check(&a, 1099));
    unit_assert(!sc_dead_check(&a, 1100));
    unit_assert(!sc_dead_check(&b, 1000));
    unit_assert(!sc_dead_check(&c, 1000));
    /* the table is bounded: many more addresses replace the oldest */
    for (i = 0; i < 200; i++) {
	struct sc_addr x = mk("mx", "198.51.100.1");

	fmt_buf_or_panic(x.text, sizeof(x.text), "198.51.100.%d", i);
	sc_dead_mark(&x, 2000 + i, "connect to x: Connection refused");
    }
    unit_assert(sc_dead_check(&(struct sc_addr) {.text = "198.51.100.199", .port = 25}, 2199));
    config_set("smtp_dead_host_time", "0");
    unit_assert(config_apply(&err) == 0);
    sc_dead_mark(&b, 3000, "connect to x: Connection refused");
    unit_assert(!sc_dead_check(&b, 3000));
    unit_end();
}

int main(void)
{
    const char *err;

    config_init();
    if (config_apply(&err) < 0)
	msg_fatal("config_apply: %s", err);
    test_literal_route();
    test_dead();
    return unit_done();
}
