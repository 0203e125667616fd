/* nexthop.h - the smtp next hop, the pure part: the next-hop string
 * parsed, the address families of inet_protocols, the order of one
 * host's addresses (smtp_address_preference), the smtp_mx_address_limit
 * cut and the loop cut at an exchanger named $myhostname. No lookups and
 * no parameters are read here: the callers pass the values. smtp-client
 * (which tries the addresses) and posthorn route (which shows them) both
 * use these, so route shows exactly what smtp-client tries.
 *
 * Next-hop strings (lib/mail/resolve.c makes them):
 *   "example.com"          MX lookup of example.com
 *   "example.com:587"      MX lookup, port 587
 *   "[mx.example.com]"     no MX lookup: the A/AAAA of mx.example.com
 *   "[192.0.2.1]:2525"     an address literal: no DNS at all
 *   "[2001:db8::1]:25"     an IPv6 literal ("[IPv6:2001:db8::1]" too)
 *
 * The addresses smtp-client tries, in order: the exchangers by MX
 * preference (dns.h), those before the first one named $myhostname
 * (nexthop_mx_usable); within each host its addresses ordered by
 * nexthop_order; of the whole list the first smtp_mx_address_limit
 * (nexthop_take): the order comes first, then the cut.
 *
 * Errors: -1 and a text in *error_r, valid until the next error of this
 * module. */
#ifndef POSTHORN_NEXTHOP_H
#define POSTHORN_NEXTHOP_H

#include <stdbool.h>
#include <stddef.h>

/* Mail library. */
#include "dns.h"

#define NEXTHOP_HOST_MAX	256

struct nexthop {
    char host[NEXTHOP_HOST_MAX];	/* domain or host, without brackets;
					 * a literal's address (no "IPv6:") */
    int port;			/* 0: none given (smtp_tcp_port) */
    bool no_mx;			/* [brackets]: no MX lookup */
    bool literal;		/* [IPv4] or [IPv6]: no DNS at all */
    struct dns_addr addr;	/* literal: the address */
};

/* nexthop_parse - "domain", "domain:port", "[host]", "[host]:port",
 * "[192.0.2.1]", "[2001:db8::1]:25", "[IPv6:2001:db8::1]" into nh; -1
 * with *error_r ("next hop \"TEXT\": ...") if malformed */
int nexthop_parse(const char *text, struct nexthop *nh, const char **error_r);

/* nexthop_families - inet_protocols ("all", "ipv4", "ipv6", a list) as
 * DNS_INET4 | DNS_INET6 in *families_r. -1 with *error_r for an unknown
 * item (the others still count) or no usable item (then both families):
 * *families_r is always usable. */
int nexthop_families(const char *inet_protocols, int *families_r, const char **error_r);

/* nexthop_family_allowed - is the address family (AF_INET, AF_INET6)
 * one of families */
bool nexthop_family_allowed(int families, int family);

/* nexthop_order - smtp_address_preference ("ipv4", "ipv6"; anything
 * else, "any", keeps the order) on the addresses of ONE host: the
 * preferred family first, each family in its DNS order (stable) */
void nexthop_order(struct dns_addr *addrs, size_t count, const char *preference);

/* nexthop_mx_usable - how many exchangers come before the first one
 * named myhostname (case-insensitively): it and the worse ones would
 * loop back and are not tried; mx->count if none is */
size_t nexthop_mx_usable(const struct dns_mx_reply *mx, const char *myhostname);

/* nexthop_mx_loops - the loop rule: an exchanger is this host (usable <
 * count) and the better ones gave no address, none of them failing
 * temporarily: the mail bounces (5.4.6, "loops back to myself") */
bool nexthop_mx_loops(size_t usable, size_t count, size_t addresses, bool temporary);

/* nexthop_take - smtp_mx_address_limit: of found more addresses (in
 * order), after taken already, how many are tried; limit <= 0: all */
size_t nexthop_take(size_t taken, size_t found, long limit);

#endif
