/* test-sc_nexthop.c - unit tests for sc_nexthop.c: next-hop strings,
 * inet_protocols, the address preference order, literal routes and the
 * dead-address memory (the DNS cases are pytest's, with dnsmasq). */

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

/* test_parse - every next-hop form, and the malformed ones */
static void test_parse(void)
{
    static const struct {
	const char *text;
	bool ok;
	const char *domain;
	int port;
	bool no_mx, literal;
    } cases[] = {
	{"example.com", true, "example.com", 0, false, false},
	{"example.com:587", true, "example.com", 587, false, false},
	{"[mx.example.com]", true, "mx.example.com", 0, true, false},
	{"[mx.example.com]:2525", true, "mx.example.com", 2525, true, false},
	{"[192.0.2.1]:2525", true, "192.0.2.1", 2525, true, true},
	{"[192.0.2.1]", true, "192.0.2.1", 0, true, true},
	{"[2001:db8::1]:25", true, "2001:db8::1", 25, true, true},
	{"[IPv6:2001:db8::1]", true, "2001:db8::1", 0, true, true},
	{"", false, "", 0, false, false},
	{"[mx.example.com", false, "", 0, false, false},
	{"[mx.example.com]x", false, "", 0, false, false},
	{"example.com:0", false, "", 0, false, false},
	{"example.com:65536", false, "", 0, false, false},
	{"example.com:25x", false, "", 0, false, false},
	{"example.com:", false, "", 0, false, false},
	{"[]:25", false, "", 0, false, false},
	{"bad host", false, "", 0, false, false},
	{"a/b", false, "", 0, false, false},
    };
    size_t i;

    unit_begin("sc_nexthop_parse: domain, [host], [literal], port");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	struct sc_nexthop nh;
	const char *err = "";
	int rc = sc_nexthop_parse(cases[i].text, &nh, &err);

	unit_assert_idx((rc == 0) == cases[i].ok, i);
	if (rc == 0 && cases[i].ok) {
	    unit_assert_streq_idx(nh.domain, cases[i].domain, i);
	    unit_assert_idx(nh.port == cases[i].port, i);
	    unit_assert_idx(nh.no_mx == cases[i].no_mx, i);
	    unit_assert_idx(nh.literal == cases[i].literal, i);
	} else if (rc < 0)
	    unit_assert_idx(strstr(err, "next hop") != NULL, i);
    }
    unit_end();
}

/* test_families - inet_protocols */
static void test_families(void)
{
    unit_begin("sc_families: inet_protocols");
    unit_assert_inteq(sc_families("all"), DNS_INET4 | DNS_INET6);
    unit_assert_inteq(sc_families("ipv4"), DNS_INET4);
    unit_assert_inteq(sc_families("ipv6"), DNS_INET6);
    unit_assert_inteq(sc_families("ipv4, ipv6"), DNS_INET4 | DNS_INET6);
    unit_assert_inteq(sc_families("IPv6"), DNS_INET6);
    unit_end();
}

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

/* order - the texts of addrs joined with " " */
static const char *order(const struct sc_addr *addrs, size_t n)
{
    static struct str *buf;
    size_t i;

    if (buf == NULL)
	buf = str_new(512);
    str_reset(buf);
    for (i = 0; i < n; i++)
	str_appendf_or_panic(buf, "%s%s", i ? " " : "", addrs[i].text);
    return str_cstr(buf);
}

/* test_order - the preferred family first within each host, stable */
static void test_order(void)
{
    struct sc_addr base[6], a[6];

    unit_begin("sc_addr_order: smtp_address_preference within each host");
    base[0] = mk("mx1", "192.0.2.1");
    base[1] = mk("mx1", "2001:db8::1");
    base[2] = mk("mx1", "192.0.2.2");
    base[3] = mk("mx1", "2001:db8::2");
    base[4] = mk("mx2", "2001:db8::3");
    base[5] = mk("mx2", "192.0.2.3");
    memcpy(a, base, sizeof(a));
    sc_addr_order(a, 6, "ipv6");
    unit_assert_streq(order(a, 6),
		      "2001:db8::1 2001:db8::2 192.0.2.1 192.0.2.2 2001:db8::3 192.0.2.3");
    memcpy(a, base, sizeof(a));
    sc_addr_order(a, 6, "ipv4");
    unit_assert_streq(order(a, 6),
		      "192.0.2.1 192.0.2.2 2001:db8::1 2001:db8::2 192.0.2.3 2001:db8::3");
    memcpy(a, base, sizeof(a));
    sc_addr_order(a, 6, "any");
    unit_assert_streq(order(a, 6),
		      "192.0.2.1 2001:db8::1 192.0.2.2 2001:db8::2 2001:db8::3 192.0.2.3");
    unit_end();
}

/* test_literal_route - no DNS for a literal; the port; a disabled family */
static void test_literal_route(void)
{
    struct sc_nexthop nh;
    struct sc_route route;
    const char *err;

    unit_begin("sc_route_find: literal next hops, smtp_tcp_port, inet_protocols");
    config_set("smtp_tcp_port", "2525");
    config_set("inet_protocols", "ipv4");
    unit_assert(config_apply(&err) == 0);
    unit_assert(sc_nexthop_parse("[192.0.2.7]", &nh, &err) == 0);
    sc_route_find(&nh, &route);
    unit_assert(route.status == SC_ROUTE_OK);
    unit_assert_inteq(route.count, 1);
    unit_assert_streq(route.addrs[0].text, "192.0.2.7");
    unit_assert_inteq(route.addrs[0].port, 2525);
    sc_route_free(&route);
    unit_assert(sc_nexthop_parse("[192.0.2.7]:26", &nh, &err) == 0);
    sc_route_find(&nh, &route);
    unit_assert_inteq(route.addrs[0].port, 26);
    sc_route_free(&route);
    unit_assert(sc_nexthop_parse("[2001:db8::1]", &nh, &err) == 0);
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
    sc_dead_mark(&a, 1000);
    unit_assert(sc_dead_check(&a, 1000));
    unit_assert(sc_dead_check(&a, 1099));
    unit_assert(!sc_dead_check(&a, 1100));
    unit_assert(!sc_dead_check(&b, 1000));
    unit_assert(!sc_dead_check(&c, 1000));
    /* the table is bounded: many more addresses replace the oldest */
    for (i = 0; i < 200; i++) {
	struct sc_addr x = mk("mx", "198.51.100.1");

	fmt_buf_or_panic(x.text, sizeof(x.text), "198.51.100.%d", i);
	sc_dead_mark(&x, 2000 + i);
    }
    unit_assert(sc_dead_check(&(struct sc_addr) {.text = "198.51.100.199", .port = 25}, 2199));
    config_set("smtp_dead_host_time", "0");
    unit_assert(config_apply(&err) == 0);
    sc_dead_mark(&b, 3000);
    unit_assert(!sc_dead_check(&b, 3000));
    unit_end();
}

int main(void)
{
    const char *err;

    config_init();
    if (config_apply(&err) < 0)
	msg_fatal("config_apply: %s", err);
    test_parse();
    test_families();
    test_order();
    test_literal_route();
    test_dead();
    return unit_done();
}
