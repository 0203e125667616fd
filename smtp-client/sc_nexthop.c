/* sc_nexthop.c - where smtp-client sends a message: the next-hop
 * string parsed, the MX list (by preference, random among equal ones:
 * dns.c), the implicit MX, null MX and NXDOMAIN answers, the addresses
 * of each exchanger in the order inet_protocols and
 * smtp_address_preference ask, at most smtp_mx_address_limit of them,
 * and the per-process memory of dead addresses (smtp_dead_host_time). */

/* System library. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "dns.h"

/* This program. */
#include "sc.h"

static struct errtext sc_nexthop_error;

/* sc_nexthop_parse - split the next-hop string */
int sc_nexthop_parse(const char *text, struct sc_nexthop *nh, const char **error_r)
{
    const char *host = text, *end, *port = NULL;
    size_t len;

    memset(nh, 0, sizeof(*nh));
    if (*text == '[') {
	if ((end = strchr(text, ']')) == NULL)
	    return errtext_fail(&sc_nexthop_error, error_r, "next hop \"%s\": no \"]\"", text);
	host = text + 1;
	len = (size_t) (end - host);
	nh->no_mx = true;
	if (end[1] == ':')
	    port = end + 2;
	else if (end[1] != 0)
	    return errtext_fail(&sc_nexthop_error, error_r,
				"next hop \"%s\": junk after \"]\"", text);
    } else {
	if ((end = strchr(text, ':')) != NULL) {
	    port = end + 1;
	    len = (size_t) (end - host);
	} else
	    len = strlen(text);
    }
    if (len == 0 || len >= sizeof(nh->domain))
	return errtext_fail(&sc_nexthop_error, error_r, "next hop \"%s\": bad host", text);
    memcpy(nh->domain, host, len);
    nh->domain[len] = 0;
    if (port) {
	char *e;
	long v;

	if (!isdigit((unsigned char) *port)
	    || (v = strtol(port, &e, 10)) < 1 || v > 65535 || *e != 0)
	    return errtext_fail(&sc_nexthop_error, error_r, "next hop \"%s\": bad port", text);
	nh->port = (int) v;
    }
    if (nh->no_mx) {
	struct in6_addr a6;
	struct in_addr a4;
	const char *lit = nh->domain;

	/* "[IPv6:2001:db8::1]" is the RFC 5321 form; accept it too */
	if (strncasecmp(lit, "ipv6:", 5) == 0)
	    lit += 5;
	if (inet_pton(AF_INET, lit, &a4) == 1 || inet_pton(AF_INET6, lit, &a6) == 1) {
	    nh->literal = true;
	    if (lit != nh->domain)
		memmove(nh->domain, lit, strlen(lit) + 1);
	}
    }
    for (const char *p = nh->domain; !nh->literal && *p; p++)
	if (!isalnum((unsigned char) *p) && *p != '-' && *p != '.' && *p != '_')
	    return errtext_fail(&sc_nexthop_error, error_r, "next hop \"%s\": bad host name",
				text);
    return 0;
}

/* sc_family_item - one element of inet_protocols */
static void sc_family_item(const char *item, void *ctx)
{
    int *fam = ctx;

    if (strcasecmp(item, "all") == 0)
	*fam |= DNS_INET4 | DNS_INET6;
    else if (strcasecmp(item, "ipv4") == 0)
	*fam |= DNS_INET4;
    else if (strcasecmp(item, "ipv6") == 0)
	*fam |= DNS_INET6;
}

/* sc_families - the families of inet_protocols */
int sc_families(const char *inet_protocols)
{
    int fam = 0;

    config_split(inet_protocols, sc_family_item, &fam);
    return fam ? fam : DNS_INET4 | DNS_INET6;
}

/* sc_addr_order - within each run of one host, the preferred family
 * first, stable */
void sc_addr_order(struct sc_addr *addrs, size_t n, const char *preference)
{
    int first;
    size_t i, j, k, start;

    if (strcasecmp(preference, "ipv4") == 0)
	first = AF_INET;
    else if (strcasecmp(preference, "ipv6") == 0)
	first = AF_INET6;
    else
	return;
    for (start = 0; start < n; start = i) {
	for (i = start + 1; i < n && strcmp(addrs[i].host, addrs[start].host) == 0; i++)
	    ;
	/* insertion sort, stable: preferred family before the other */
	for (j = start + 1; j < i; j++) {
	    struct sc_addr t = addrs[j];

	    if (t.family != first)
		continue;
	    for (k = j; k > start && addrs[k - 1].family != first; k--)
		addrs[k] = addrs[k - 1];
	    addrs[k] = t;
	}
    }
}

/* sc_route_fail - set a DEFER or BOUNCE */
static void sc_route_fail(struct sc_route *route, enum sc_route_status st, const char *dsn,
			  const char *fmt, const char *a, const char *b)
{
    route->status = st;
    str_copy_out_or_panic(route->dsn, sizeof(route->dsn), dsn);
    fmt_buf_cut(route->reason, sizeof(route->reason), fmt, a, b);
}

/* sc_route_add - append the addresses of one host */
static void sc_route_add(struct sc_route *route, size_t *cap, const char *host, int port,
			 const struct dns_addr *da, size_t n)
{
    size_t i;

    for (i = 0; i < n && route->count < (size_t) var_smtp_mx_address_limit; i++) {
	struct sc_addr *a;

	if (route->count == *cap) {
	    *cap = *cap ? *cap * 2 : 8;
	    route->addrs = mem_realloc(route->addrs, *cap * sizeof(*route->addrs));
	}
	a = route->addrs + route->count++;
	memset(a, 0, sizeof(*a));
	str_copy_out_or_panic(a->host, sizeof(a->host), host);
	a->family = da[i].family;
	a->port = port;
	if (a->family == AF_INET)
	    a->a.v4 = da[i].a.v4;
	else
	    a->a.v6 = da[i].a.v6;
	if (inet_ntop(a->family, &a->a, a->text, sizeof(a->text)) == NULL)
	    str_copy_out_or_panic(a->text, sizeof(a->text), "?");
    }
}

/* sc_host_addrs - the A/AAAA of one host; status of the lookup */
static enum dns_status sc_host_addrs(struct sc_route *route, size_t *cap, const char *host,
				     int port, int fam, const char **err)
{
    struct dns_addr_reply rep;
    enum dns_status st;
    size_t before = route->count;

    st = dns_addrs(host, fam, &rep, err);
    if (st != DNS_OK)
	return st;
    sc_route_add(route, cap, host, port, rep.addr, rep.count);
    dns_addr_reply_free(&rep);
    sc_addr_order(route->addrs + before, route->count - before, var_smtp_address_preference);
    return DNS_OK;
}

/* sc_route_find - addresses for the next hop */
void sc_route_find(const struct sc_nexthop *nh, struct sc_route *route)
{
    int port = nh->port ? nh->port : (int) var_smtp_tcp_port;
    int fam = sc_families(var_inet_protocols);
    size_t cap = 0, i;
    const char *err = "";
    enum dns_status st;
    bool temp = false;
    char temp_reason[512] = "";

    memset(route, 0, sizeof(*route));
    route->status = SC_ROUTE_OK;
    if (nh->literal) {
	struct dns_addr da;

	memset(&da, 0, sizeof(da));
	if (inet_pton(AF_INET, nh->domain, &da.a.v4) == 1)
	    da.family = AF_INET;
	else if (inet_pton(AF_INET6, nh->domain, &da.a.v6) == 1)
	    da.family = AF_INET6;
	if (da.family == 0 || !(fam & (da.family == AF_INET ? DNS_INET4 : DNS_INET6))) {
	    sc_route_fail(route, SC_ROUTE_BOUNCE, "5.4.4",
			  "address %s%s is of a protocol family not enabled by inet_protocols",
			  nh->domain, "");
	    return;
	}
	sc_route_add(route, &cap, nh->domain, port, &da, 1);
	return;
    }
    if (nh->no_mx) {
	st = sc_host_addrs(route, &cap, nh->domain, port, fam, &err);
	if (st == DNS_TEMPORARY)
	    sc_route_fail(route, SC_ROUTE_DEFER, "4.4.3", "Host or domain name not found. "
			  "Name service error for name=%s: %s", nh->domain, err);
	else if (st == DNS_PERMANENT)
	    sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.2", "Host or domain name not found. "
			  "Name service error for name=%s: %s", nh->domain, err);
	return;
    }
    struct dns_mx_reply mx;

    st = dns_mx(nh->domain, &mx, &err);
    switch (mx.kind) {
    case DNS_MX_NULL:
	sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.10",
		      "Domain %s does not accept mail (nullMX)%s", nh->domain, "");
	return;
    case DNS_MX_NXDOMAIN:
	sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.2",
		      "Host or domain name not found. Name service error for name=%s "
		      "type=MX: %s", nh->domain, "Host not found");
	return;
    case DNS_MX_FAIL:
	sc_route_fail(route, st == DNS_PERMANENT ? SC_ROUTE_BOUNCE : SC_ROUTE_DEFER,
		      st == DNS_PERMANENT ? "5.1.2" : "4.4.3",
		      "Host or domain name not found. Name service error for name=%s "
		      "type=MX: %s", nh->domain, err);
	return;
    case DNS_MX_NONE:
	/* implicit MX: the domain's own addresses */
	st = sc_host_addrs(route, &cap, nh->domain, port, fam, &err);
	if (st == DNS_TEMPORARY)
	    sc_route_fail(route, SC_ROUTE_DEFER, "4.4.3", "Host or domain name not found. "
			  "Name service error for name=%s type=A: %s", nh->domain, err);
	else if (st == DNS_PERMANENT)
	    sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.2", "Host or domain name not found. "
			  "Name service error for name=%s type=A: %s", nh->domain, err);
	return;
    case DNS_MX_LIST:
	break;
    }
    for (i = 0; i < mx.count && route->count < (size_t) var_smtp_mx_address_limit; i++) {
	/* a MX host that is ourselves would be a mail loop */
	if (strcasecmp(mx.mx[i].host, var_myhostname) == 0) {
	    if (route->count == 0 && !temp) {
		sc_route_fail(route, SC_ROUTE_BOUNCE, "5.4.6",
			      "mail for %s loops back to myself (MX host %s)", nh->domain,
			      mx.mx[i].host);
		dns_mx_reply_free(&mx);
		return;
	    }
	    break;			/* only the better ones are tried */
	}
	st = sc_host_addrs(route, &cap, mx.mx[i].host, port, fam, &err);
	if (st == DNS_TEMPORARY) {
	    temp = true;
	    fmt_buf_cut(temp_reason, sizeof(temp_reason), "Name service error for name=%s "
			"type=A: %s", mx.mx[i].host, err);
	} else if (st == DNS_PERMANENT && temp_reason[0] == 0)
	    fmt_buf_cut(temp_reason, sizeof(temp_reason), "Name service error for name=%s "
			"type=A: %s", mx.mx[i].host, err);
    }
    dns_mx_reply_free(&mx);
    if (route->count == 0) {
	route->status = SC_ROUTE_OK;
	sc_route_fail(route, temp ? SC_ROUTE_DEFER : SC_ROUTE_BOUNCE, temp ? "4.4.3" : "5.4.4",
		      "Host or domain name not found. %s%s", temp_reason, "");
    }
}

/* sc_route_free - free the address list */
void sc_route_free(struct sc_route *route)
{
    mem_free(&route->addrs);
    route->count = 0;
}

/* The dead addresses: a small table, the oldest entry replaced. */
#define SC_DEAD_MAX	64

static struct sc_dead {
    char text[64];
    int port;
    time_t until;
} sc_dead[SC_DEAD_MAX];

/* sc_dead_check - is a remembered dead */
bool sc_dead_check(const struct sc_addr *a, time_t now)
{
    size_t i;

    for (i = 0; i < SC_DEAD_MAX; i++)
	if (sc_dead[i].until > now && sc_dead[i].port == a->port
	    && strcmp(sc_dead[i].text, a->text) == 0)
	    return true;
    return false;
}

/* sc_dead_mark - remember a as dead for smtp_dead_host_time */
void sc_dead_mark(const struct sc_addr *a, time_t now)
{
    size_t i, slot = 0;

    if (var_smtp_dead_host_time <= 0)
	return;
    for (i = 0; i < SC_DEAD_MAX; i++) {
	if (sc_dead[i].port == a->port && strcmp(sc_dead[i].text, a->text) == 0) {
	    slot = i;
	    break;
	}
	if (sc_dead[i].until < sc_dead[slot].until)
	    slot = i;
    }
    str_copy_out_or_panic(sc_dead[slot].text, sizeof(sc_dead[slot].text), a->text);
    sc_dead[slot].port = a->port;
    sc_dead[slot].until = now + var_smtp_dead_host_time;
}
