/* test-cidr_match.c - unit tests for cidr_match.c (network lists). */

#include <string.h>
#include <sys/socket.h>

#include "cidr_match.h"
#include "unit.h"

/* Entries: parse result and what it became. */
static const struct {
    const char *in;
    bool ok;
    int family;
    unsigned bits;
} parse_cases[] = {
    {"127.0.0.0/8", true, AF_INET, 8},
    {"192.0.2.1", true, AF_INET, 32},
    {"0.0.0.0/0", true, AF_INET, 0},
    {"[::1]/128", true, AF_INET6, 128},
    {"[::1]", true, AF_INET6, 128},
    {"::1/128", true, AF_INET6, 128},
    {"2001:db8::/32", true, AF_INET6, 32},
    {"[2001:db8::]/32", true, AF_INET6, 32},
    {"::/0", true, AF_INET6, 0},
    {"::ffff:10.0.0.0/104", true, AF_INET, 8},	/* mapped: matched as IPv4 */
    {"127.0.0.1/8", false, 0, 0},		/* host bits */
    {"2001:db8::1/32", false, 0, 0},
    {"192.0.2.0/33", false, 0, 0},
    {"[::1]/129", false, 0, 0},
    {"192.0.2.0/", false, 0, 0},
    {"192.0.2.0/x", false, 0, 0},
    {"192.0.2.0/0008", false, 0, 0},
    {"[192.0.2.1]", false, 0, 0},		/* brackets are for IPv6 */
    {"[::1", false, 0, 0},
    {"[::1]x", false, 0, 0},
    {"example.com", false, 0, 0},
    {"!192.0.2.0/24", false, 0, 0},
    {"hash:/etc/mynetworks", false, 0, 0},
    {"300.1.1.1", false, 0, 0},
    {"1.2.3", false, 0, 0},
};

static const struct {
    const char *list;
    const char *addr;
    bool match;
} match_cases[] = {
    {"127.0.0.0/8 [::1]/128", "127.0.0.1", true},
    {"127.0.0.0/8 [::1]/128", "127.255.3.4", true},
    {"127.0.0.0/8 [::1]/128", "::1", true},
    {"127.0.0.0/8 [::1]/128", "::2", false},
    {"127.0.0.0/8 [::1]/128", "128.0.0.1", false},
    {"127.0.0.0/8 [::1]/128", "::ffff:127.0.0.1", true},	/* mapped */
    {"127.0.0.0/8", "unknown", false},
    {"127.0.0.0/8", "", false},
    {"192.0.2.0/24", "127.0.0.1", false},
    {"192.0.2.0/24", "192.0.2.255", true},
    {"192.0.2.0/25", "192.0.2.128", false},
    {"192.0.2.128/25", "192.0.2.128", true},
    {"10.0.0.0/9", "10.127.255.255", true},
    {"10.0.0.0/9", "10.128.0.0", false},
    {"2001:db8::/32", "2001:db8:ffff::1", true},
    {"2001:db8::/33", "2001:db8:8000::1", false},
    {"2001:db8::/33", "2001:db8:7fff::1", true},
    {"0.0.0.0/0", "203.0.113.9", true},
    {"0.0.0.0/0", "2001:db8::1", false},	/* families stay apart */
    {"::/0", "2001:db8::1", true},
    {"::/0", "192.0.2.1", false},
    {"fe80::/10", "fe80::1%eth0", true},	/* zone dropped */
    {"", "127.0.0.1", false},
    {"192.0.2.1, 192.0.2.2,,\t192.0.2.3", "192.0.2.3", true},
    {"192.0.2.1, 192.0.2.2", "192.0.2.4", false},
};

int main(void)
{
    unit_begin("cidr_parse entries");
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
	struct cidr c;
	const char *err = NULL;
	bool ok = cidr_parse(parse_cases[i].in, strlen(parse_cases[i].in), &c, &err);

	unit_assert_idx(ok == parse_cases[i].ok, i);
	if (ok && parse_cases[i].ok) {
	    unit_assert_idx(c.family == parse_cases[i].family, i);
	    unit_assert_idx(c.bits == parse_cases[i].bits, i);
	}
	if (!ok)
	    unit_assert_idx(err != NULL && strstr(err, parse_cases[i].in) != NULL, i);
    }
    unit_end();

    unit_begin("cidr_list_match");
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
	const char *err = NULL;
	struct cidr_list *l = cidr_list_parse(match_cases[i].list, &err);

	unit_assert_idx(l != NULL, i);
	if (l) {
	    unit_assert_idx(cidr_list_match(l, match_cases[i].addr) == match_cases[i].match, i);
	    cidr_list_free(&l);
	    unit_assert_idx(l == NULL, i);
	}
    }
    unit_end();

    unit_begin("cidr_list_parse counts and errors");
    {
	const char *err = NULL;
	struct cidr_list *l = cidr_list_parse("127.0.0.0/8 [::1]/128, 10.0.0.0/8", &err);

	unit_assert(l != NULL);
	unit_assert_inteq(cidr_list_count(l), 3);
	cidr_list_free(&l);
	l = cidr_list_parse("127.0.0.0/8 127.0.0.1/8", &err);
	unit_assert(l == NULL);
	unit_assert(strstr(err, "127.0.0.1/8") != NULL);
	unit_assert(strstr(err, "host bits") != NULL);
	unit_assert(!cidr_list_match(NULL, "127.0.0.1"));
	unit_assert_inteq(cidr_list_count(NULL), 0);
    }
    unit_end();

    return unit_done();
}
