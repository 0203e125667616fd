/* nexthop.c - the pure part of the smtp next hop (nexthop.h): next-hop
 * strings, inet_protocols families, the address order within a host,
 * the MX loop cut and the smtp_mx_address_limit cut, shared by
 * smtp-client and posthorn route. */

/* System library. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* Base library. */
#include "errtext.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "dns.h"
#include "nexthop.h"

static struct errtext nexthop_error;

/* nexthop_port - "25" -> 25; -1 if not a port number */
static long nexthop_port(const char *text)
{
    size_t len = strlen(text);
    long port;

    if (len == 0 || len > 5 || strspn(text, "0123456789") != len)
	return -1;
    port = strtol(text, NULL, 10);
    return port >= 1 && port <= 65535 ? port : -1;
}

/* nexthop_literal - "192.0.2.1", "2001:db8::1", "IPv6:2001:db8::1" into
 * addr; false if host is no address */
static bool nexthop_literal(const char *host, struct dns_addr *addr)
{
    memset(addr, 0, sizeof(*addr));
    if (strncasecmp(host, "IPv6:", 5) == 0) {
	if (inet_pton(AF_INET6, host + 5, &addr->a.v6) != 1)
	    return false;
	addr->family = AF_INET6;
    } else if (inet_pton(AF_INET, host, &addr->a.v4) == 1)
	addr->family = AF_INET;
    else if (inet_pton(AF_INET6, host, &addr->a.v6) == 1)
	addr->family = AF_INET6;
    return addr->family != 0;
}

/* nexthop_parse - split a next-hop string */
int nexthop_parse(const char *text, struct nexthop *nh, const char **error_r)
{
    const char *host = text, *port = NULL, *end;
    size_t len;

    memset(nh, 0, sizeof(*nh));
    if (*text == '[') {
	if ((end = strchr(text, ']')) == NULL)
	    return errtext_fail(&nexthop_error, error_r, "next hop \"%s\": no closing \"]\"",
				text);
	if (end[1] == ':')
	    port = end + 2;
	else if (end[1] != 0)
	    return errtext_fail(&nexthop_error, error_r,
				"next hop \"%s\": text after \"]\" is not \":port\"", text);
	host = text + 1;
	len = (size_t) (end - host);
	nh->no_mx = true;
    } else if ((end = strchr(text, ':')) != NULL) {
	port = end + 1;
	len = (size_t) (end - text);
    } else
	len = strlen(text);
    if (len == 0 || len >= sizeof(nh->host))
	return errtext_fail(&nexthop_error, error_r, "next hop \"%s\": %s host name", text,
			    len == 0 ? "empty" : "too long a");
    memcpy(nh->host, host, len);
    nh->host[len] = 0;
    if (port) {
	long v = nexthop_port(port);

	if (v < 0)
	    return errtext_fail(&nexthop_error, error_r, "next hop \"%s\": bad port \"%s\"",
				text, port);
	nh->port = (int) v;
    }
    if (nh->no_mx && nexthop_literal(nh->host, &nh->addr)) {
	nh->literal = true;
	/* the address alone, without "IPv6:" */
	if (strncasecmp(nh->host, "IPv6:", 5) == 0)
	    memmove(nh->host, nh->host + 5, strlen(nh->host + 5) + 1);
	return 0;
    }
    for (const char *p = nh->host; *p; p++)
	if (!isalnum((unsigned char) *p) && *p != '-' && *p != '.' && *p != '_')
	    return errtext_fail(&nexthop_error, error_r, "next hop \"%s\": bad host name", text);
    return 0;
}

struct nexthop_fam {
    int families;
    bool unknown;
    char item[65];		/* the first unknown item, cut */
};

/* nexthop_family_item - one element of inet_protocols */
static void nexthop_family_item(const char *item, void *ctx)
{
    struct nexthop_fam *f = ctx;

    if (strcasecmp(item, "all") == 0)
	f->families |= DNS_INET4 | DNS_INET6;
    else if (strcasecmp(item, "ipv4") == 0)
	f->families |= DNS_INET4;
    else if (strcasecmp(item, "ipv6") == 0)
	f->families |= DNS_INET6;
    else if (!f->unknown) {
	f->unknown = true;
	fmt_buf_cut(f->item, sizeof(f->item), "%s", item);
    }
}

/* nexthop_families - the families of inet_protocols */
int nexthop_families(const char *inet_protocols, int *families_r, const char **error_r)
{
    struct nexthop_fam f = {0, false, ""};

    config_split(inet_protocols, nexthop_family_item, &f);
    *families_r = f.families ? f.families : DNS_INET4 | DNS_INET6;
    if (f.unknown)
	return errtext_fail(&nexthop_error, error_r,
			    "unknown protocol \"%s\" (use all, ipv4, ipv6)", f.item);
    if (f.families == 0)
	return errtext_fail(&nexthop_error, error_r, "no usable protocol in \"%s\"",
			    inet_protocols);
    return 0;
}

/* nexthop_family_allowed - AF_INET/AF_INET6 against DNS_INET4/DNS_INET6 */
bool nexthop_family_allowed(int families, int family)
{
    return (family == AF_INET && (families & DNS_INET4))
	|| (family == AF_INET6 && (families & DNS_INET6));
}

/* nexthop_order - the preferred family first, stable */
void nexthop_order(struct dns_addr *addrs, size_t count, const char *preference)
{
    int first;

    if (preference == NULL)
	return;
    if (strcasecmp(preference, "ipv4") == 0)
	first = AF_INET;
    else if (strcasecmp(preference, "ipv6") == 0)
	first = AF_INET6;
    else
	return;
    /* insertion sort, stable: the preferred family before the other */
    for (size_t j = 1; j < count; j++) {
	struct dns_addr t = addrs[j];
	size_t k;

	if (t.family != first)
	    continue;
	for (k = j; k > 0 && addrs[k - 1].family != first; k--)
	    addrs[k] = addrs[k - 1];
	addrs[k] = t;
    }
}

/* nexthop_mx_usable - the exchangers before the first that is this host */
size_t nexthop_mx_usable(const struct dns_mx_reply *mx, const char *myhostname)
{
    size_t i;

    for (i = 0; i < mx->count; i++)
	if (myhostname && strcasecmp(mx->mx[i].host, myhostname) == 0)
	    break;
    return i;
}

/* nexthop_mx_loops - the mail would loop back to this host */
bool nexthop_mx_loops(size_t usable, size_t count, size_t addresses, bool temporary)
{
    return usable < count && addresses == 0 && !temporary;
}

/* nexthop_take - the smtp_mx_address_limit cut */
size_t nexthop_take(size_t taken, size_t found, long limit)
{
    if (limit <= 0)
	return found;
    if (taken >= (size_t) limit)
	return 0;
    return found < (size_t) limit - taken ? found : (size_t) limit - taken;
}
