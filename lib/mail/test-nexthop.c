/* test-nexthop.c - unit tests for nexthop.c: next-hop strings,
 * inet_protocols, the address order within a host, the MX loop cut and
 * the smtp_mx_address_limit cut (what smtp-client tries and posthorn
 * route shows). */

/* System library. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Base library. */
#include "msg.h"
#include "str.h"
#include "unit.h"

/* Mail library. */
#include "config.h"
#include "dns.h"
#include "nexthop.h"

/* test_parse - every next-hop form, and the malformed ones */
static void test_parse(void)
{
    static const struct {
	const char *text;
	bool ok;
	const char *host;
	int port;
	bool no_mx, literal;
	int family;
	const char *error;	/* a part of the error text */
    } cases[] = {
	{"example.com", true, "example.com", 0, false, false, 0, NULL},
	{"example.com:587", true, "example.com", 587, false, false, 0, NULL},
	{"[mx.example.com]", true, "mx.example.com", 0, true, false, 0, NULL},
	{"[mx.example.com]:2525", true, "mx.example.com", 2525, true, false, 0, NULL},
	{"[192.0.2.1]:2525", true, "192.0.2.1", 2525, true, true, AF_INET, NULL},
	{"[192.0.2.1]", true, "192.0.2.1", 0, true, true, AF_INET, NULL},
	{"[2001:db8::1]:25", true, "2001:db8::1", 25, true, true, AF_INET6, NULL},
	{"[IPv6:2001:db8::1]", true, "2001:db8::1", 0, true, true, AF_INET6, NULL},
	{"[ipv6:2001:db8::2]:26", true, "2001:db8::2", 26, true, true, AF_INET6, NULL},
	{"", false, "", 0, false, false, 0, "empty host name"},
	{"[mx.example.com", false, "", 0, false, false, 0, "no closing"},
	{"[mx.example.com]x", false, "", 0, false, false, 0, "is not \":port\""},
	{"example.com:0", false, "", 0, false, false, 0, "bad port \"0\""},
	{"example.com:65536", false, "", 0, false, false, 0, "bad port"},
	{"[gw.phtest]:99999", false, "", 0, false, false, 0,
	"next hop \"[gw.phtest]:99999\": bad port \"99999\""},
	{"example.com:25x", false, "", 0, false, false, 0, "bad port"},
	{"example.com:", false, "", 0, false, false, 0, "bad port"},
	{"[]:25", false, "", 0, false, false, 0, "empty host name"},
	{"bad host", false, "", 0, false, false, 0, "bad host name"},
	{"a/b", false, "", 0, false, false, 0, "bad host name"},
	{"[bad host]", false, "", 0, false, false, 0, "bad host name"},
	{"[IPv6:192.0.2.1]", false, "", 0, false, false, 0, "bad host name"},
    };

    unit_begin("nexthop_parse: domain, [host], [literal], port");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	struct nexthop nh;
	const char *err = "";
	int rc = nexthop_parse(cases[i].text, &nh, &err);

	unit_assert_idx((rc == 0) == cases[i].ok, i);
	if (rc == 0 && cases[i].ok) {
	    unit_assert_streq_idx(nh.host, cases[i].host, i);
	    unit_assert_idx(nh.port == cases[i].port, i);
	    unit_assert_idx(nh.no_mx == cases[i].no_mx, i);
	    unit_assert_idx(nh.literal == cases[i].literal, i);
	    unit_assert_idx(nh.addr.family == cases[i].family, i);
	} else if (rc < 0) {
	    unit_assert_idx(strstr(err, "next hop \"") == err, i);
	    unit_assert_idx(strstr(err, cases[i].error) != NULL, i);
	}
    }
    {
	struct nexthop nh;
	const char *err;
	struct in_addr v4;

	unit_assert(nexthop_parse("[192.0.2.9]", &nh, &err) == 0);
	unit_assert(inet_pton(AF_INET, "192.0.2.9", &v4) == 1);
	unit_assert(memcmp(&nh.addr.a.v4, &v4, sizeof(v4)) == 0);
    }
    unit_end();
}

/* test_families - inet_protocols */
static void test_families(void)
{
    static const struct {
	const char *text;
	int families;
	bool ok;
    } cases[] = {
	{"all", DNS_INET4 | DNS_INET6, true},
	{"ipv4", DNS_INET4, true},
	{"ipv6", DNS_INET6, true},
	{"ipv4, ipv6", DNS_INET4 | DNS_INET6, true},
	{"IPv6", DNS_INET6, true},
	{"ipv4 ipv5", DNS_INET4, false},
	{"ipv5", DNS_INET4 | DNS_INET6, false},
	{"", DNS_INET4 | DNS_INET6, false},
    };

    unit_begin("nexthop_families: inet_protocols");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	int fam = -1;
	const char *err = "";
	int rc = nexthop_families(cases[i].text, &fam, &err);

	unit_assert_idx((rc == 0) == cases[i].ok, i);
	unit_assert_idx(fam == cases[i].families, i);
    }
    {
	int fam;
	const char *err = "";

	unit_assert(nexthop_families("ipv5", &fam, &err) < 0);
	unit_assert_streq(err, "unknown protocol \"ipv5\" (use all, ipv4, ipv6)");
    }
    unit_assert(nexthop_family_allowed(DNS_INET4, AF_INET));
    unit_assert(!nexthop_family_allowed(DNS_INET4, AF_INET6));
    unit_assert(nexthop_family_allowed(DNS_INET4 | DNS_INET6, AF_INET6));
    unit_assert(!nexthop_family_allowed(DNS_INET6, AF_INET));
    unit_end();
}

/* mk - an address from its text */
static struct dns_addr mk(const char *text)
{
    struct dns_addr a;

    memset(&a, 0, sizeof(a));
    a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(a.family, text, &a.a) != 1)
	msg_panic("mk: %s", text);
    return a;
}

/* order - the texts of addrs joined with " " */
static const char *order(const struct dns_addr *addrs, size_t n)
{
    static struct str *buf;

    if (buf == NULL)
	buf = str_new(512);
    str_reset(buf);
    for (size_t i = 0; i < n; i++) {
	char text[INET6_ADDRSTRLEN];

	if (inet_ntop(addrs[i].family, &addrs[i].a, text, sizeof(text)) == NULL)
	    msg_panic("inet_ntop");
	str_appendf_or_panic(buf, "%s%s", i ? " " : "", text);
    }
    return str_cstr(buf);
}

/* test_order - the preferred family first, stable */
static void test_order(void)
{
    struct dns_addr base[5], a[5];

    unit_begin("nexthop_order: smtp_address_preference within one host");
    base[0] = mk("192.0.2.1");
    base[1] = mk("2001:db8::1");
    base[2] = mk("192.0.2.2");
    base[3] = mk("2001:db8::2");
    base[4] = mk("192.0.2.3");
    memcpy(a, base, sizeof(a));
    nexthop_order(a, 5, "ipv6");
    unit_assert_streq(order(a, 5), "2001:db8::1 2001:db8::2 192.0.2.1 192.0.2.2 192.0.2.3");
    memcpy(a, base, sizeof(a));
    nexthop_order(a, 5, "IPv4");
    unit_assert_streq(order(a, 5), "192.0.2.1 192.0.2.2 192.0.2.3 2001:db8::1 2001:db8::2");
    memcpy(a, base, sizeof(a));
    nexthop_order(a, 5, "any");
    unit_assert_streq(order(a, 5), "192.0.2.1 2001:db8::1 192.0.2.2 2001:db8::2 192.0.2.3");
    nexthop_order(a, 0, "ipv6");
    unit_end();
}

/* test_cuts - the order comes first, then smtp_mx_address_limit; the
 * exchangers before $myhostname; the loop rule */
static void test_cuts(void)
{
    struct dns_mx mx[4] = {{10, "mx1.example"}, {20, "MX2.example"}, {20, "mx3.example"},
    {30, "mx4.example"}};
    struct dns_mx_reply reply = {DNS_MX_LIST, 4, mx};
    /* one host, A records first (as dns_addrs gives them), limit 1 */
    struct dns_addr a[2] = {mk("192.0.2.1"), mk("2001:db8::1")};

    unit_begin("nexthop_take, nexthop_mx_usable, nexthop_mx_loops");
    nexthop_order(a, 2, "ipv6");
    unit_assert_inteq(nexthop_take(0, 2, 1), 1);
    unit_assert_streq(order(a, nexthop_take(0, 2, 1)), "2001:db8::1");
    unit_assert_inteq(nexthop_take(0, 3, 5), 3);
    unit_assert_inteq(nexthop_take(3, 4, 5), 2);
    unit_assert_inteq(nexthop_take(5, 4, 5), 0);
    unit_assert_inteq(nexthop_take(7, 4, 5), 0);
    unit_assert_inteq(nexthop_take(7, 4, 0), 4);

    unit_assert_inteq(nexthop_mx_usable(&reply, "mx2.example"), 1);
    unit_assert_inteq(nexthop_mx_usable(&reply, "mx1.EXAMPLE"), 0);
    unit_assert_inteq(nexthop_mx_usable(&reply, "mx4.example"), 3);
    unit_assert_inteq(nexthop_mx_usable(&reply, "other.example"), 4);
    unit_assert_inteq(nexthop_mx_usable(&reply, NULL), 4);

    unit_assert(nexthop_mx_loops(0, 4, 0, false));
    unit_assert(nexthop_mx_loops(2, 4, 0, false));
    unit_assert(!nexthop_mx_loops(2, 4, 0, true));
    unit_assert(!nexthop_mx_loops(2, 4, 3, false));
    unit_assert(!nexthop_mx_loops(4, 4, 0, false));
    unit_end();
}

int main(void)
{
    test_parse();
    test_families();
    test_order();
    test_cuts();
    return unit_done();
}
