/* cmd_route.c - posthorn route: how each address routes, for an operator
 * (Postfix's postmap -q on transport_maps plus dig, in one command).
 *
 *   posthorn route [-j] ADDRESS...
 *
 * For each address: the address class, transport and next hop exactly as
 * resolve_address gives them to qmgr, whether the recipient exists
 * (resolve_recipient), a virtual_alias_maps rewrite if cleanup would do
 * one, and what happens next:
 *   - transport error: the bounce, with its DSN code and text (as qmgr
 *     splits "5.x.x text");
 *   - transport discard: the text qmgr logs;
 *   - a transport whose master.cf unix service runs smtp-client (or,
 *     without a readable master.cf, the transport named "smtp"): the DNS
 *     view smtp-client takes: the next hop parsed ("[host]" no MX lookup,
 *     ":port", address literals), the MX list or implicit MX / null MX /
 *     NXDOMAIN / temporary failure, and the A/AAAA addresses of each host
 *     in the families of inet_protocols, ordered by
 *     smtp_address_preference, with the port (smtp_tcp_port when the next
 *     hop names none) and the smtp_mx_address_limit cut (after the
 *     order). The parsing, the order and both cuts (the limit, and an
 *     exchanger named $myhostname) are lib/mail/nexthop.c's, the very
 *     code smtp-client uses. The -o options of that master.cf service
 *     are applied for this part.
 *   - other transports: the service that delivers.
 * A last line "result" says deliver, bounce, defer, discard or rewrite.
 *
 * -j prints one JSON object per address and line instead.
 *
 * Exit status: 0 every address resolved (whatever the answer, a bounce
 * included); 2 a DNS lookup failed temporarily; 1 a usage or
 * configuration error, a table that could not be read, or an address
 * that could not be resolved (1 wins over 2). Runs as any user: it
 * needs read access to main.cf, master.cf and the tables. */

/* System library. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "dns.h"
#include "mastercf.h"
#include "nexthop.h"
#include "resolve.h"
#include "table.h"

/* This program. */
#include "posthorn.h"

#define RT_TEXT_MAX	1024
#define RT_SMTP_COMMAND	"smtp-client"

/* One host whose addresses smtp-client would try. */
struct rt_host {
    int pref;			/* MX preference; -1: not from an MX record */
    char name[256];
    enum dns_status status;
    char error[RT_TEXT_MAX];
    bool self;			/* MX host is $myhostname: it and the
				 * worse ones are not tried */
    struct dns_addr_reply addrs;
};

/* The DNS view of an smtp next hop. */
struct rt_smtp {
    char host[256];		/* domain, host or address literal */
    long port;
    bool mx_lookup;		/* false: [host] or a literal */
    bool literal;		/* [192.0.2.1], [2001:db8::1] */
    const char *dns;		/* "mx", "implicit", "null", "nxdomain", "fail",
				 * "none" (no MX lookup), "literal" */
    enum dns_status status;
    char error[RT_TEXT_MAX];	/* MX lookup or next hop error */
    struct rt_host *hosts;
    size_t nhosts;
    size_t naddrs;		/* addresses found over all hosts */
    size_t ntry;		/* of those, within smtp_mx_address_limit */
    long address_limit;		/* smtp_mx_address_limit in effect */
    size_t usable;		/* hosts before the one that is this host */
    long port_default;		/* smtp_tcp_port in effect */
    int families;		/* DNS_INET4 | DNS_INET6 from inet_protocols */
};

/* What route found for one address. */
struct rt_route {
    const char *address;
    bool resolved;
    struct resolve_result res;
    enum resolve_known known;
    char known_why[RT_TEXT_MAX];
    struct str *valias;		/* virtual_alias_maps value, or NULL */
    const char *service;	/* master.cf command of the transport, or NULL */
    bool is_smtp;
    struct rt_smtp smtp;
    const char *result;		/* deliver, bounce, defer, discard, rewrite, error */
    char dsn[16];		/* bounce of the error transport */
    char reason[RT_TEXT_MAX];
};

static bool rt_config_error;	/* exit 1 */
static bool rt_protocols_reported;	/* inet_protocols errors said once */
static bool rt_dns_temporary;	/* exit 2 */
static struct mastercf *rt_cf;	/* NULL: master.cf not read */

/* rt_class_name - the class as the man page names it */
static const char *rt_class_name(enum resolve_class class)
{
    switch (class) {
    case RESOLVE_CLASS_LOCAL:
	return "local";
    case RESOLVE_CLASS_VIRTUAL:
	return "virtual mailbox";
    case RESOLVE_CLASS_ALIAS:
	return "virtual alias";
    case RESOLVE_CLASS_RELAY:
	return "relay";
    case RESOLVE_CLASS_DEFAULT:
	return "default";
    }
    return "unknown";
}

/* rt_known_name - known, unknown, tempfail */
static const char *rt_known_name(enum resolve_known known)
{
    return known == RESOLVE_KNOWN ? "known" : known == RESOLVE_UNKNOWN ? "unknown" : "tempfail";
}

/* rt_families - inet_protocols as DNS_INET4 | DNS_INET6 (all on error);
 * an error is reported once */
static int rt_families(void)
{
    const char *value = var_inet_protocols ? var_inet_protocols : "all";
    const char *error;
    int families;

    if (nexthop_families(value, &families, &error) < 0) {
	if (!rt_protocols_reported)
	    ph_error("inet_protocols: %s", error);
	rt_protocols_reported = true;
	rt_config_error = true;
    }
    return families;
}

/* rt_parse_nexthop - the next hop as smtp-client parses it (nexthop.h);
 * a literal becomes the one host; 0, or -1 with smtp->error */
static int rt_parse_nexthop(const char *text, struct rt_smtp *smtp)
{
    struct nexthop nh;
    const char *error;
    struct rt_host *h;

    if (nexthop_parse(text, &nh, &error) < 0) {
	fmt_buf_cut(smtp->error, sizeof(smtp->error), "%s", error);
	return -1;
    }
    str_copy_out_or_panic(smtp->host, sizeof(smtp->host), nh.host);
    smtp->port = nh.port ? nh.port : smtp->port_default;
    smtp->mx_lookup = !nh.no_mx;
    smtp->literal = nh.literal;
    if (!nh.literal)
	return 0;
    smtp->dns = "literal";
    smtp->hosts = mem_zalloc(sizeof(*smtp->hosts));
    smtp->nhosts = smtp->usable = 1;
    h = smtp->hosts;
    h->pref = -1;
    str_copy_out_or_panic(h->name, sizeof(h->name), nh.host);
    if (!nexthop_family_allowed(smtp->families, nh.addr.family)) {
	h->status = DNS_PERMANENT;
	fmt_buf_cut(h->error, sizeof(h->error), "an IPv%c address, but inet_protocols = %s",
		    nh.addr.family == AF_INET ? '4' : '6', var_inet_protocols);
	return 0;
    }
    h->addrs.addr = mem_zalloc(sizeof(*h->addrs.addr));
    h->addrs.count = 1;
    h->addrs.addr[0] = nh.addr;
    h->status = DNS_OK;
    return 0;
}

/* rt_host_lookup - the addresses of one host */
static void rt_host_lookup(struct rt_smtp *smtp, struct rt_host *h)
{
    const char *error = "";

    h->status = dns_addrs(h->name, smtp->families, &h->addrs, &error);
    if (h->status != DNS_OK) {
	fmt_buf_cut(h->error, sizeof(h->error), "%s", error);
	if (h->status == DNS_TEMPORARY)
	    rt_dns_temporary = true;
	return;
    }
    nexthop_order(h->addrs.addr, h->addrs.count, var_smtp_address_preference);
}

/* rt_smtp_dns - the lookups smtp-client makes for a next hop */
static void rt_smtp_dns(struct rt_smtp *smtp)
{
    struct dns_mx_reply mx;
    const char *error = "";

    if (smtp->literal)
	return;
    if (!smtp->mx_lookup) {
	smtp->dns = "none";
	smtp->status = DNS_OK;
	smtp->hosts = mem_zalloc(sizeof(*smtp->hosts));
	smtp->nhosts = smtp->usable = 1;
	smtp->hosts[0].pref = -1;
	str_copy_out_or_panic(smtp->hosts[0].name, sizeof(smtp->hosts[0].name), smtp->host);
	rt_host_lookup(smtp, smtp->hosts);
	return;
    }
    smtp->status = dns_mx(smtp->host, &mx, &error);
    if (smtp->status != DNS_OK)
	fmt_buf_cut(smtp->error, sizeof(smtp->error), "%s", error);
    switch (mx.kind) {
    case DNS_MX_LIST:
	smtp->dns = "mx";
	smtp->hosts = mem_zalloc(mem_size_mul(mx.count, sizeof(*smtp->hosts)));
	smtp->nhosts = mx.count;
	/* an exchanger that is this host: only better ones are tried */
	smtp->usable = nexthop_mx_usable(&mx, var_myhostname);
	for (size_t i = 0; i < mx.count; i++) {
	    struct rt_host *h = smtp->hosts + i;

	    h->pref = mx.mx[i].pref;
	    str_copy_out_or_panic(h->name, sizeof(h->name), mx.mx[i].host);
	    h->self = i >= smtp->usable;
	}
	break;
    case DNS_MX_NONE:
	smtp->dns = "implicit";
	smtp->hosts = mem_zalloc(sizeof(*smtp->hosts));
	smtp->nhosts = smtp->usable = 1;
	smtp->hosts[0].pref = -1;
	str_copy_out_or_panic(smtp->hosts[0].name, sizeof(smtp->hosts[0].name), smtp->host);
	break;
    case DNS_MX_NULL:
	smtp->dns = "null";
	break;
    case DNS_MX_NXDOMAIN:
	smtp->dns = "nxdomain";
	break;
    case DNS_MX_FAIL:
	smtp->dns = "fail";
	break;
    }
    dns_mx_reply_free(&mx);
    if (smtp->status == DNS_TEMPORARY)
	rt_dns_temporary = true;
    for (size_t i = 0; i < smtp->nhosts; i++)
	if (!smtp->hosts[i].self)
	    rt_host_lookup(smtp, smtp->hosts + i);
}

/* rt_smtp_result - deliver, bounce or defer from the DNS view */
static void rt_smtp_result(struct rt_route *r)
{
    struct rt_smtp *smtp = &r->smtp;
    bool temporary = false;
    const char *last_error = NULL;

    smtp->address_limit = var_smtp_mx_address_limit;
    if (smtp->status != DNS_OK) {
	r->result = smtp->status == DNS_TEMPORARY ? "defer" : "bounce";
	fmt_buf_cut(r->reason, sizeof(r->reason), "%s", smtp->error);
	return;
    }
    for (size_t i = 0; i < smtp->nhosts; i++) {
	struct rt_host *h = smtp->hosts + i;

	smtp->naddrs += h->addrs.count;
	if (h->status == DNS_TEMPORARY)
	    temporary = true;
	if (h->status != DNS_OK)
	    last_error = h->error;
    }
    if (nexthop_mx_loops(smtp->usable, smtp->nhosts, smtp->naddrs, temporary)) {
	r->result = "bounce";
	fmt_buf_cut(r->reason, sizeof(r->reason), "mail for %s loops back to myself (MX host %s)",
		    smtp->host, smtp->hosts[smtp->usable].name);
	return;
    }
    /* the addresses in order (each host's ordered), then the cut */
    smtp->ntry = nexthop_take(0, smtp->naddrs, smtp->address_limit);
    if (smtp->naddrs > 0) {
	r->result = "deliver";
	fmt_buf_cut(r->reason, sizeof(r->reason), "%zu address%s to try, port %ld", smtp->ntry,
		    smtp->ntry == 1 ? "" : "es", smtp->port);
    } else {
	r->result = temporary ? "defer" : "bounce";
	fmt_buf_cut(r->reason, sizeof(r->reason), "no address for next hop %s%s%s",
		    smtp->host, last_error ? ": " : "", last_error ? last_error : "");
    }
}

/* rt_with_overrides - apply (or, with NULL, undo) the -o options of a
 * master.cf service to var_*; the DNS context follows */
static void rt_with_overrides(const struct mastercf_entry *e)
{
    const char *error;

    if (e == NULL || e->overrides.count == 0)
	return;
    (void) ph_load_config(true);	/* errors were reported at the start */
    for (size_t i = 0; i < e->overrides.count; i++) {
	if (config_override(e->overrides.items[i], &error) < 0) {
	    ph_error("%s:%d: service %s: -o %s: %s", e->file, e->line, e->service,
		     e->overrides.items[i], error);
	    rt_config_error = true;
	}
    }
    if (config_apply(&error) < 0) {
	ph_error("%s:%d: service %s: %s", e->file, e->line, e->service, error);
	rt_config_error = true;
    }
    dns_close();
}

/* rt_undo_overrides - back to main.cf alone */
static void rt_undo_overrides(const struct mastercf_entry *e)
{
    if (e == NULL || e->overrides.count == 0)
	return;
    (void) ph_load_config(true);
    dns_close();
}

/* rt_error_transport - "5.x.x text" as qmgr splits it */
static void rt_error_transport(struct rt_route *r)
{
    const char *text;

    r->result = "bounce";
    resolve_error_text(r->res.nexthop, r->dsn, sizeof(r->dsn), &text);
    fmt_buf_cut(r->reason, sizeof(r->reason), "%s", text);
}

/* rt_route - everything about one address */
static void rt_route(struct rt_route *r)
{
    const struct mastercf_entry *e = NULL;
    const char *error = "", *why = "";
    char *domain;
    int rc;

    if (resolve_address(r->address, &r->res, &error) < 0) {
	r->result = "error";
	fmt_buf_cut(r->reason, sizeof(r->reason), "%s", error);
	ph_error("%s: %s", r->address, error);
	rt_config_error = true;
	return;
    }
    r->resolved = true;
    r->known = resolve_recipient(r->address, &why);
    fmt_buf_cut(r->known_why, sizeof(r->known_why), "%s", why);
    if (r->known == RESOLVE_TEMPFAIL) {
	ph_error("%s: %s", r->address, why);
	rt_config_error = true;
    }

    /* cleanup rewrites the address before qmgr routes it */
    r->valias = str_new(TABLE_ENTRY_MAX);
    if ((rc = resolve_lookup_virtual_alias(r->address, r->valias, &error)) < 0) {
	ph_error("%s: %s", r->address, error);
	rt_config_error = true;
    }
    if (rc <= 0)
	str_free(&r->valias);
    else {
	r->result = "rewrite";
	fmt_buf_cut(r->reason, sizeof(r->reason), "to %s", str_cstr(r->valias));
	return;
    }

    if (strcmp(r->res.transport, "error") == 0) {
	rt_error_transport(r);
	return;
    }
    if (strcmp(r->res.transport, "discard") == 0) {
	r->result = "discard";
	fmt_buf_cut(r->reason, sizeof(r->reason), "%s", r->res.nexthop);
	return;
    }
    if (rt_cf) {
	e = mastercf_find(rt_cf, r->res.transport, MASTERCF_UNIX);
	if (e == NULL) {
	    r->result = "defer";
	    fmt_buf_cut(r->reason, sizeof(r->reason),
			"master.cf has no unix service \"%s\": mail transport unavailable",
			r->res.transport);
	    ph_error("%s: %s", r->address, r->reason);
	    rt_config_error = true;
	    return;
	}
	r->service = e->command;
	r->is_smtp = strcmp(e->command, RT_SMTP_COMMAND) == 0;
    } else {
	r->is_smtp = strcmp(r->res.transport, "smtp") == 0;
    }
    if (!r->is_smtp) {
	if (r->known == RESOLVE_UNKNOWN) {
	    r->result = "bounce";
	    fmt_buf_cut(r->reason, sizeof(r->reason), "unknown recipient: %s", r->known_why);
	} else if (r->known == RESOLVE_TEMPFAIL) {
	    r->result = "defer";
	    fmt_buf_cut(r->reason, sizeof(r->reason), "%s", r->known_why);
	} else {
	    r->result = "deliver";
	    fmt_buf_cut(r->reason, sizeof(r->reason), "by the %s service%s%s",
			r->res.transport, r->service ? " of " : "", r->service ? r->service : "");
	}
	return;
    }

    /* The smtp view: an empty next hop is the recipient domain. */
    rt_with_overrides(e);
    r->smtp.families = rt_families();
    r->smtp.port_default = var_smtp_tcp_port;
    domain = strrchr(r->address, '@');
    if (rt_parse_nexthop(r->res.nexthop[0] ? r->res.nexthop : domain ? domain + 1 : "",
			 &r->smtp) < 0) {
	r->result = "error";
	fmt_buf_cut(r->reason, sizeof(r->reason), "%s", r->smtp.error);
	ph_error("%s: %s", r->address, r->smtp.error);
	rt_config_error = true;
    } else {
	rt_smtp_dns(&r->smtp);
	rt_smtp_result(r);
    }
    rt_undo_overrides(e);
}

/* rt_free - what rt_route allocated */
static void rt_free(struct rt_route *r)
{
    for (size_t i = 0; i < r->smtp.nhosts; i++)
	dns_addr_reply_free(&r->smtp.hosts[i].addrs);
    mem_free(&r->smtp.hosts);
    if (r->valias)
	str_free(&r->valias);
}

/* ---------------------------------------------------------------- */
/* Output                                                           */

/* rt_addr_text - an address as text */
static const char *rt_addr_text(const struct dns_addr *a, char *buf, size_t size)
{
    char text[INET6_ADDRSTRLEN];

    if (inet_ntop(a->family, &a->a, text, sizeof(text)) == NULL)
	str_copy_out_or_panic(text, sizeof(text), "?");
    fmt_buf_or_panic(buf, size, "%s", text);
    return buf;
}

/* rt_field - "  name: text" */
static void rt_field(const char *name, const char *text)
{
    printf("  %s: ", name);
    ph_print_text(text);
    putchar('\n');
}

/* rt_print_text - the human form */
static void rt_print_text(const struct rt_route *r)
{
    const struct rt_smtp *smtp = &r->smtp;
    size_t n = 0;

    printf("address: ");
    ph_print_text(r->address);
    putchar('\n');
    if (r->resolved) {
	rt_field("class", rt_class_name(r->res.class));
	rt_field("transport", r->res.transport);
	rt_field("nexthop", r->res.nexthop);
	printf("  recipient: %s (", rt_known_name(r->known));
	ph_print_text(r->known_why);
	printf(")\n");
    }
    if (r->valias)
	rt_field("virtual_alias", str_cstr(r->valias));
    if (r->service)
	rt_field("service", r->service);
    if (r->is_smtp && smtp->host[0]) {
	printf("  smtp: ");
	ph_print_text(smtp->host);
	printf(" port %ld, %s\n", smtp->port, smtp->literal ? "address literal, no DNS" :
	       smtp->mx_lookup ? "MX lookup" : "no MX lookup");
	if (smtp->mx_lookup) {
	    printf("  mx: ");
	    if (strcmp(smtp->dns, "mx") == 0)
		printf("%zu record%s\n", smtp->nhosts, smtp->nhosts == 1 ? "" : "s");
	    else if (strcmp(smtp->dns, "implicit") == 0)
		printf("none, implicit MX: the domain's own addresses\n");
	    else {
		printf("%s: ", smtp->dns);
		ph_print_text(smtp->error);
		putchar('\n');
	    }
	}
	for (size_t i = 0; i < smtp->nhosts; i++) {
	    const struct rt_host *h = smtp->hosts + i;

	    if (h->pref >= 0)
		printf("  host: %d ", h->pref);
	    else
		printf("  host: ");
	    ph_print_text(h->name);
	    putchar('\n');
	    if (h->self) {
		printf("    not tried: this host (myhostname); only better MX hosts are\n");
		continue;
	    }
	    if (h->status != DNS_OK) {
		printf("    %s: ", dns_status_name(h->status));
		ph_print_text(h->error);
		putchar('\n');
	    }
	    for (size_t k = 0; k < h->addrs.count; k++, n++) {
		char text[INET6_ADDRSTRLEN];
		const struct dns_addr *a = h->addrs.addr + k;

		rt_addr_text(a, text, sizeof(text));
		printf(a->family == AF_INET6 ? "    addr: [%s]:%ld%s\n" : "    addr: %s:%ld%s\n",
		       text, smtp->port,
		       n >= smtp->ntry ? " (not tried: smtp_mx_address_limit)" : "");
	    }
	}
    }
    printf("  result: %s", r->result);
    if (r->dsn[0])
	printf(" %s", r->dsn);
    if (r->reason[0]) {
	printf(" (");
	ph_print_text(r->reason);
	putchar(')');
    }
    putchar('\n');
}

/* rt_json_kv - ,"name":"value" */
static void rt_json_kv(const char *name, const char *value)
{
    printf(",\"%s\":", name);
    if (value)
	ph_json_string(value);
    else
	printf("null");
}

/* rt_print_json - one JSON object on one line */
static void rt_print_json(const struct rt_route *r)
{
    const struct rt_smtp *smtp = &r->smtp;

    printf("{\"address\":");
    ph_json_string(r->address);
    rt_json_kv("class", r->resolved ? rt_class_name(r->res.class) : NULL);
    rt_json_kv("transport", r->resolved ? r->res.transport : NULL);
    rt_json_kv("nexthop", r->resolved ? r->res.nexthop : NULL);
    rt_json_kv("recipient", r->resolved ? rt_known_name(r->known) : NULL);
    rt_json_kv("recipient_why", r->resolved ? r->known_why : NULL);
    rt_json_kv("virtual_alias", r->valias ? str_cstr(r->valias) : NULL);
    rt_json_kv("service", r->service);
    printf(",\"smtp\":");
    if (r->is_smtp && smtp->host[0]) {
	size_t n = 0;

	printf("{\"host\":");
	ph_json_string(smtp->host);
	printf(",\"port\":%ld,\"mx_lookup\":%s,\"literal\":%s", smtp->port,
	       smtp->mx_lookup ? "true" : "false", smtp->literal ? "true" : "false");
	rt_json_kv("dns", smtp->dns);
	rt_json_kv("status", smtp->dns ? dns_status_name(smtp->status) : NULL);
	rt_json_kv("error", smtp->error[0] ? smtp->error : NULL);
	printf(",\"address_limit\":%ld,\"hosts\":[", smtp->address_limit);
	for (size_t i = 0; i < smtp->nhosts; i++) {
	    const struct rt_host *h = smtp->hosts + i;

	    printf("%s{\"pref\":", i ? "," : "");
	    if (h->pref >= 0)
		printf("%d", h->pref);
	    else
		printf("null");
	    rt_json_kv("name", h->name);
	    rt_json_kv("status", h->self ? "self" : dns_status_name(h->status));
	    rt_json_kv("error", h->self ? NULL : h->status != DNS_OK ? h->error : NULL);
	    printf(",\"addresses\":[");
	    for (size_t k = 0; k < h->addrs.count; k++, n++) {
		char text[INET6_ADDRSTRLEN];

		printf("%s{\"addr\":", k ? "," : "");
		ph_json_string(rt_addr_text(h->addrs.addr + k, text, sizeof(text)));
		printf(",\"tried\":%s}", n < smtp->ntry ? "true" : "false");
	    }
	    printf("]}");
	}
	printf("]}");
    } else {
	printf("null");
    }
    rt_json_kv("result", r->result);
    rt_json_kv("dsn", r->dsn[0] ? r->dsn : NULL);
    rt_json_kv("reason", r->reason);
    printf("}\n");
}

/* rt_load_master_cf - master.cf for the transport -> program map; a
 * missing file is not an error (transports are then judged by name) */
static void rt_load_master_cf(void)
{
    char path[4096];
    const char *error;

    fmt_buf_cut(path, sizeof(path), "%s/master.cf", ph_config_dir);
    if (access(path, F_OK) < 0 && errno == ENOENT) {
	msg_warn("%s: not found; only the transport named smtp is shown as smtp-client", path);
	return;
    }
    if (mastercf_load(path, var_default_process_limit, &rt_cf, &error) < 0) {
	ph_error("%s", error);
	rt_config_error = true;
	rt_cf = NULL;
    }
}

/* cmd_route - posthorn route [-j] address... */
int cmd_route(int argc, char **argv)
{
    const char *error;
    bool json = false;
    int ch;

    while ((ch = getopt(argc, argv, "+j")) != -1) {
	switch (ch) {
	case 'j':
	    json = true;
	    break;
	default:
	    (void) ph_usage("route");
	    return 1;
	}
    }
    if (optind >= argc) {
	(void) ph_usage("route");
	return 1;
    }
    if (ph_load_config(false) < 0)
	rt_config_error = true;
    rt_load_master_cf();
    if (resolve_init(&error) < 0) {
	ph_error("%s", error);
	mastercf_free(&rt_cf);
	return 1;
    }
    for (int i = optind; i < argc; i++) {
	struct rt_route r;
	size_t len = strlen(argv[i]);

	memset(&r, 0, sizeof(r));
	r.address = argv[i];
	/* "<user@domain>" as an operator may paste it */
	if (len >= 2 && argv[i][0] == '<' && argv[i][len - 1] == '>') {
	    argv[i][len - 1] = 0;
	    r.address = argv[i] + 1;
	}
	if (*r.address == 0) {
	    ph_error("empty address");
	    rt_config_error = true;
	    continue;
	}
	rt_route(&r);
	if (json)
	    rt_print_json(&r);
	else {
	    if (i > optind)
		putchar('\n');
	    rt_print_text(&r);
	}
	fflush(stdout);
	rt_free(&r);
    }
    resolve_fini();
    dns_close();
    mastercf_free(&rt_cf);
    return rt_config_error ? 1 : rt_dns_temporary ? 2 : 0;
}
