/* dns.h - MX and address lookups over libunbound, synchronous.
 *
 * One ub_ctx per process, made at the first lookup from main.cf:
 * dns_servers (empty: the resolvers of /etc/resolv.conf; else forward
 * every query to the listed "ADDR" or "ADDR@PORT" servers) and
 * dns_timeout (the longest one call here waits for its answers). The
 * lookups run in libunbound's asynchronous mode, in the background
 * process libunbound forks at the first lookup (no thread: posthorn's
 * daemons stay single-threaded), so that a call ends at its deadline
 * whatever the servers do. That helper is a copy of the caller; it
 * exits when dns_close is called or the caller exits. A child forked
 * after a lookup leaves its parent's context alone (it is noticed by
 * the process id) and makes its own at its first lookup.
 * No DNSSEC validation yet (docs/dns.md says how it will be enabled).
 *
 * Every call returns a status: DNS_OK, DNS_TEMPORARY (try again later:
 * SERVFAIL, REFUSED, a timeout, a bad configuration) or DNS_PERMANENT
 * (NXDOMAIN, a null MX, no address, a malformed name). On anything but
 * DNS_OK, *error_r is the module's errtext (errtext.h): valid until the
 * next dns_* error. */
#ifndef POSTHORN_DNS_H
#define POSTHORN_DNS_H

#include <netinet/in.h>
#include <stddef.h>

enum dns_status { DNS_OK, DNS_TEMPORARY, DNS_PERMANENT };

/* dns_status_name - "ok", "temporary", "permanent" */
const char *dns_status_name(enum dns_status status);

/* What an MX lookup found. */
enum dns_mx_kind {
    DNS_MX_LIST,		/* DNS_OK: count >= 1 exchangers in mx */
    DNS_MX_NONE,		/* DNS_OK: the domain exists without MX
				 * records: deliver to the domain itself
				 * (RFC 5321 5.1, "implicit MX") */
    DNS_MX_NULL,		/* DNS_PERMANENT: a null MX, "0 ." (RFC 7505):
				 * the domain accepts no mail */
    DNS_MX_NXDOMAIN,		/* DNS_PERMANENT: the domain does not exist */
    DNS_MX_FAIL,		/* DNS_TEMPORARY or DNS_PERMANENT otherwise */
};

struct dns_mx {
    int pref;			/* preference, 0..65535 */
    char host[256];		/* exchanger name, no trailing dot */
};

struct dns_mx_reply {
    enum dns_mx_kind kind;
    size_t count;
    struct dns_mx *mx;		/* sorted by preference, random order
				 * among equal ones; free with
				 * dns_mx_reply_free */
};

/* dns_mx - the MX records of domain */
enum dns_status dns_mx(const char *domain, struct dns_mx_reply *reply, const char **error_r);
void dns_mx_reply_free(struct dns_mx_reply *reply);
/* dns_mx_kind_name - "list", "none", "null", "nxdomain", "fail" */
const char *dns_mx_kind_name(enum dns_mx_kind kind);

/* Families for dns_addrs. */
#define DNS_INET4	1
#define DNS_INET6	2

struct dns_addr {
    int family;			/* AF_INET or AF_INET6 */
    union {
	struct in_addr v4;
	struct in6_addr v6;
    } a;
};

struct dns_addr_reply {
    size_t count;
    struct dns_addr *addr;	/* the A records first, then the AAAA
				 * ones, in the server's order; free with
				 * dns_addr_reply_free */
};

/* dns_addrs - the A (DNS_INET4) and/or AAAA (DNS_INET6) addresses of
 * host, CNAMEs followed, both asked at once. DNS_OK with count >= 1 if
 * any family gave an address; otherwise DNS_TEMPORARY if a lookup
 * failed temporarily, else DNS_PERMANENT (NXDOMAIN, or no address). */
enum dns_status dns_addrs(const char *host, int families, struct dns_addr_reply *reply,
			  const char **error_r);
void dns_addr_reply_free(struct dns_addr_reply *reply);

/* dns_close - delete the context (and its helper process); the next
 * lookup makes a new one from the then current main.cf values */
void dns_close(void);

#endif
