/* sc_nexthop.c - where smtp-client sends a message: the MX list (by
 * preference, random among equal ones: dns.c), the implicit MX, null MX
 * and NXDOMAIN answers, the addresses of each exchanger in the families
 * of inet_protocols, and the per-process memory of dead addresses
 * (smtp_dead_host_time). The next-hop string, the address order
 * (smtp_address_preference), the smtp_mx_address_limit cut and the
 * $myhostname loop cut are lib/mail/nexthop.c's, shared with posthorn
 * route. */

/* System library. */
#include <arpa/inet.h>
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
#include "nexthop.h"

/* This program. */
#include "sc.h"

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

    for (i = 0; i < n; i++) {
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

/* sc_host_addrs - the A/AAAA of one host, ordered, then cut at
 * smtp_mx_address_limit; status of the lookup */
static enum dns_status sc_host_addrs(struct sc_route *route, size_t *cap, const char *host,
				     int port, int fam, const char **err)
{
    struct dns_addr_reply rep;
    enum dns_status st;

    st = dns_addrs(host, fam, &rep, err);
    if (st != DNS_OK)
	return st;
    nexthop_order(rep.addr, rep.count, var_smtp_address_preference);
    sc_route_add(route, cap, host, port, rep.addr,
		 nexthop_take(route->count, rep.count, var_smtp_mx_address_limit));
    dns_addr_reply_free(&rep);
    return DNS_OK;
}

/* sc_route_find - addresses for the next hop */
void sc_route_find(const struct nexthop *nh, struct sc_route *route)
{
    int port = nh->port ? nh->port : (int) var_smtp_tcp_port;
    int fam;
    size_t cap = 0, i, usable;
    const char *err = "", *ignored;
    enum dns_status st;
    bool temp = false;
    char temp_reason[512] = "";

    memset(route, 0, sizeof(*route));
    route->status = SC_ROUTE_OK;
    /* an unknown inet_protocols item is the config check's to report */
    (void) nexthop_families(var_inet_protocols, &fam, &ignored);
    if (nh->literal) {
	if (!nexthop_family_allowed(fam, nh->addr.family)) {
	    sc_route_fail(route, SC_ROUTE_BOUNCE, "5.4.4",
			  "address %s%s is of a protocol family not enabled by inet_protocols",
			  nh->host, "");
	    return;
	}
	sc_route_add(route, &cap, nh->host, port, &nh->addr,
		     nexthop_take(0, 1, var_smtp_mx_address_limit));
	return;
    }
    if (nh->no_mx) {
	st = sc_host_addrs(route, &cap, nh->host, port, fam, &err);
	if (st == DNS_TEMPORARY)
	    sc_route_fail(route, SC_ROUTE_DEFER, "4.4.3", "Host or domain name not found. "
			  "Name service error for name=%s: %s", nh->host, err);
	else if (st == DNS_PERMANENT)
	    sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.2", "Host or domain name not found. "
			  "Name service error for name=%s: %s", nh->host, err);
	return;
    }
    struct dns_mx_reply mx;

    st = dns_mx(nh->host, &mx, &err);
    switch (mx.kind) {
    case DNS_MX_NULL:
	sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.10",
		      "Domain %s does not accept mail (nullMX)%s", nh->host, "");
	return;
    case DNS_MX_NXDOMAIN:
	sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.2",
		      "Host or domain name not found. Name service error for name=%s "
		      "type=MX: %s", nh->host, "Host not found");
	return;
    case DNS_MX_FAIL:
	sc_route_fail(route, st == DNS_PERMANENT ? SC_ROUTE_BOUNCE : SC_ROUTE_DEFER,
		      st == DNS_PERMANENT ? "5.1.2" : "4.4.3",
		      "Host or domain name not found. Name service error for name=%s "
		      "type=MX: %s", nh->host, err);
	return;
    case DNS_MX_NONE:
	/* implicit MX: the domain's own addresses */
	st = sc_host_addrs(route, &cap, nh->host, port, fam, &err);
	if (st == DNS_TEMPORARY)
	    sc_route_fail(route, SC_ROUTE_DEFER, "4.4.3", "Host or domain name not found. "
			  "Name service error for name=%s type=A: %s", nh->host, err);
	else if (st == DNS_PERMANENT)
	    sc_route_fail(route, SC_ROUTE_BOUNCE, "5.1.2", "Host or domain name not found. "
			  "Name service error for name=%s type=A: %s", nh->host, err);
	return;
    case DNS_MX_LIST:
	break;
    }
    /* an exchanger that is this host, and the worse ones, would loop */
    usable = nexthop_mx_usable(&mx, var_myhostname);
    for (i = 0; i < usable && nexthop_take(route->count, 1, var_smtp_mx_address_limit); i++) {
	st = sc_host_addrs(route, &cap, mx.mx[i].host, port, fam, &err);
	if (st == DNS_TEMPORARY) {
	    temp = true;
	    fmt_buf_cut(temp_reason, sizeof(temp_reason), "Name service error for name=%s "
			"type=A: %s", mx.mx[i].host, err);
	} else if (st == DNS_PERMANENT && temp_reason[0] == 0)
	    fmt_buf_cut(temp_reason, sizeof(temp_reason), "Name service error for name=%s "
			"type=A: %s", mx.mx[i].host, err);
    }
    if (nexthop_mx_loops(usable, mx.count, route->count, temp)) {
	sc_route_fail(route, SC_ROUTE_BOUNCE, "5.4.6",
		      "mail for %s loops back to myself (MX host %s)", nh->host,
		      mx.mx[usable].host);
	dns_mx_reply_free(&mx);
	return;
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
    char reason[256];
} sc_dead[SC_DEAD_MAX];

/* sc_dead_check - the reason a is remembered dead, or NULL */
const char *sc_dead_check(const struct sc_addr *a, time_t now)
{
    size_t i;

    for (i = 0; i < SC_DEAD_MAX; i++)
	if (sc_dead[i].until > now && sc_dead[i].port == a->port
	    && strcmp(sc_dead[i].text, a->text) == 0)
	    return sc_dead[i].reason;
    return NULL;
}

/* sc_dead_mark - remember a as dead for smtp_dead_host_time */
void sc_dead_mark(const struct sc_addr *a, time_t now, const char *reason)
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
    fmt_buf_cut(sc_dead[slot].reason, sizeof(sc_dead[slot].reason), "%s", reason);
}
