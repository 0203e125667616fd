/* resolve.c - address classes, routing and recipient existence (see
 * resolve.h): one place that reads mydestination, virtual_*_domains,
 * relay_domains, transport_maps, alias_maps and the virtual maps.
 *
 * Cost per lookup: the domain lists are split into lower-case names once
 * (resolve_init), not at every lookup. The class of the last domains
 * asked about is remembered (an SMTP RCPT asks for the same domain
 * several times): the tables are opened once and never reopened, so the
 * answer cannot change while every table of the domain lists is open; a
 * table still missing (optional, treated as empty until built) turns the
 * memory off. System users (getpwnam, which reads the password database
 * each time) are remembered for RS_PW_TTL seconds. */

/* System. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Base. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail. */
#include "address.h"
#include "config.h"
#include "deliver_proto.h"
#include "maps.h"
#include "resolve.h"
#include "table.h"

#define RS_VALUE_MAX	TABLE_ENTRY_MAX
#define RS_KEY_MAX	1024

/* A domain list: plain names plus tables. */
struct rs_domains {
    char **names;		/* lower case; ".parent" matches subdomains */
    size_t n_names;
    struct maps *tables;
};

#define RS_CLASS_MEMO	4	/* domains whose class is remembered */
#define RS_PW_MEMO	8	/* system user names remembered */
#define RS_PW_TTL	10	/* ... for this many seconds */

struct rs_class_memo {
    char domain[RS_KEY_MAX + 1];
    enum resolve_class class;
};

struct rs_pw_memo {
    char name[64];
    bool exists;
    time_t when;
};

/* A local address of this host, for "[literal]" domains. */
struct rs_addr {
    int family;
    unsigned char bytes[16];
};

static bool rs_ready;
static struct rs_domains rs_mydestination, rs_valias_domains, rs_vmbox_domains, rs_relay_domains;
static struct maps *rs_transport_maps, *rs_valias_maps, *rs_vmbox_maps, *rs_alias_maps;
static struct rs_addr *rs_addrs;
static size_t rs_addr_count;
static struct rs_class_memo rs_class_memo[RS_CLASS_MEMO];
static size_t rs_class_memo_n, rs_class_memo_next;
static struct rs_pw_memo rs_pw_memo[RS_PW_MEMO];
static size_t rs_pw_memo_next;
static char rs_errbuf[1024];
static char rs_whybuf[1100];

/* rs_is_table_name - "type:path" (not a domain, not an address literal) */
static bool rs_is_table_name(const char *item)
{
    const char *colon = strchr(item, ':');
    const char *cp;

    if (colon == NULL || colon == item || item[0] == '[')
	return false;
    for (cp = item; cp < colon; cp++)
	if (!isalnum((unsigned char) *cp) && *cp != '_' && *cp != '-')
	    return false;
    return true;
}

struct rs_dom_ctx {
    struct rs_domains *d;
    const char *param;
};

static void rs_domain_item(const char *item, void *ctx);

/* rs_domain_file - "/path" in a domain list: the file's words */
static void rs_domain_file(const char *path, struct rs_dom_ctx *dc)
{
    char buf[TABLE_LINE_MAX];
    FILE *fp;

    if ((fp = fopen(path, "r")) == NULL) {
	msg_warn("%s: cannot open %s: %s", dc->param, path, strerror(errno));
	return;
    }
    while (fgets(buf, sizeof(buf), fp) != NULL) {
	char *hash = strchr(buf, '#');

	if (hash)
	    *hash = 0;
	config_split(buf, rs_domain_item, dc);
    }
    fclose(fp);
}

/* rs_domain_item - one element of a domain list */
static void rs_domain_item(const char *item, void *ctx)
{
    struct rs_dom_ctx *dc = ctx;

    if (item[0] == '/') {
	rs_domain_file(item, dc);
    } else if (rs_is_table_name(item)) {
	maps_add(dc->d->tables, item);
    } else {
	struct rs_domains *d = dc->d;
	char *name = mem_strdup(item);

	for (char *cp = name; *cp; cp++)
	    *cp = (char) tolower((unsigned char) *cp);
	d->names = mem_realloc(d->names, mem_size_mul(d->n_names + 1, sizeof(*d->names)));
	d->names[d->n_names++] = name;
    }
}

/* rs_domains_init - parse a domain list parameter */
static void rs_domains_init(struct rs_domains *d, const char *param, const char *value)
{
    struct rs_dom_ctx dc = {d, param};

    d->names = NULL;
    d->n_names = 0;
    d->tables = maps_new(param, 0);
    config_split(value ? value : "", rs_domain_item, &dc);
}

static void rs_domains_fini(struct rs_domains *d)
{
    for (size_t i = 0; i < d->n_names; i++)
	mem_free(&d->names[i]);
    mem_free(&d->names);
    d->n_names = 0;
    maps_free(&d->tables);
}

/* rs_names_match - domain (lower case) is one of the names, or a strict
 * subdomain of a ".parent" name (as domain_in_list) */
static bool rs_names_match(const struct rs_domains *d, const char *domain, size_t dlen)
{
    for (size_t i = 0; i < d->n_names; i++) {
	const char *e = d->names[i];
	size_t elen = strlen(e);

	if (e[0] == '.') {
	    if (elen > 1 && dlen > elen && memcmp(domain + dlen - elen, e, elen) == 0)
		return true;
	} else if (elen == dlen && memcmp(domain, e, elen) == 0) {
	    return true;
	}
    }
    return false;
}

/* rs_norm_domain - lower-cased domain without one trailing dot */
static bool rs_norm_domain(const char *domain, struct str *out)
{
    size_t len = strlen(domain);

    if (len > 0 && domain[len - 1] == '.')
	len--;
    if (!str_try_setn(out, domain, len))
	return false;
    str_lower(out);
    return true;
}

/* rs_domains_match - 1 if domain is in the list, 0 if not, -1 on a
 * table error. Tables: the domain is a key, or ".parent" for a parent. */
static int rs_domains_match(struct rs_domains *d, const char *domain, const char **error_r)
{
    struct str *dom = str_new(RS_KEY_MAX);
    struct str *value = str_new(RS_VALUE_MAX);
    const char *cp;
    int rc = 0;

    if (!rs_norm_domain(domain, dom) || str_len(dom) == 0)
	goto out;
    if (rs_names_match(d, str_cstr(dom), str_len(dom))) {
	rc = 1;
	goto out;
    }
    if (maps_count(d->tables) == 0)
	goto out;
    if ((rc = maps_lookup(d->tables, str_cstr(dom), value, NULL, error_r)) != 0)
	goto out;
    for (cp = strchr(str_cstr(dom), '.'); cp && str_cstr(dom)[0] != '['; cp = strchr(cp + 1, '.'))
	if ((rc = maps_lookup(d->tables, cp, value, NULL, error_r)) != 0)
	    goto out;
  out:
    str_free(&dom);
    str_free(&value);
    return rc;
}

/* rs_addrs_init - the addresses of this host's interfaces */
static void rs_addrs_init(void)
{
    struct ifaddrs *ifa, *p;

    if (getifaddrs(&ifa) < 0) {
	msg_warn("getifaddrs: %s", strerror(errno));
	return;
    }
    for (p = ifa; p; p = p->ifa_next) {
	struct rs_addr *a;

	if (p->ifa_addr == NULL)
	    continue;
	if (p->ifa_addr->sa_family != AF_INET && p->ifa_addr->sa_family != AF_INET6)
	    continue;
	rs_addrs = mem_realloc(rs_addrs, mem_size_mul(rs_addr_count + 1, sizeof(*rs_addrs)));
	a = &rs_addrs[rs_addr_count++];
	memset(a, 0, sizeof(*a));
	a->family = p->ifa_addr->sa_family;
	if (a->family == AF_INET)
	    memcpy(a->bytes, &((struct sockaddr_in *) (void *) p->ifa_addr)->sin_addr, 4);
	else
	    memcpy(a->bytes, &((struct sockaddr_in6 *) (void *) p->ifa_addr)->sin6_addr, 16);
    }
    freeifaddrs(ifa);
}

/* rs_literal_is_ours - "[192.0.2.1]" or "[IPv6:...]" naming this host */
static bool rs_literal_is_ours(const char *domain)
{
    char buf[64];
    const char *inner;
    size_t len = strlen(domain);
    unsigned char bytes[16];
    int family;
    size_t i;

    if (len < 3 || domain[0] != '[' || domain[len - 1] != ']' || len - 2 >= sizeof(buf))
	return false;
    memcpy(buf, domain + 1, len - 2);
    buf[len - 2] = 0;
    inner = buf;
    if (strncasecmp(inner, "IPv6:", 5) == 0) {
	family = AF_INET6;
	inner += 5;
    } else {
	family = AF_INET;
    }
    if (inet_pton(family, inner, bytes) != 1)
	return false;
    for (i = 0; i < rs_addr_count; i++)
	if (rs_addrs[i].family == family
	    && memcmp(rs_addrs[i].bytes, bytes, family == AF_INET ? 4 : 16) == 0)
	    return true;
    return false;
}

/* resolve_init - read the parameters, open the tables */
int resolve_init(const char **error_r)
{
    (void) error_r;
    if (rs_ready)
	resolve_fini();
    rs_domains_init(&rs_mydestination, "mydestination", var_mydestination);
    rs_domains_init(&rs_valias_domains, "virtual_alias_domains", var_virtual_alias_domains);
    rs_domains_init(&rs_vmbox_domains, "virtual_mailbox_domains", var_virtual_mailbox_domains);
    rs_domains_init(&rs_relay_domains, "relay_domains", var_relay_domains);
    rs_transport_maps = maps_from_param("transport_maps", var_transport_maps, 0);
    rs_valias_maps = maps_from_param("virtual_alias_maps", var_virtual_alias_maps, 0);
    rs_vmbox_maps = maps_from_param("virtual_mailbox_maps", var_virtual_mailbox_maps, 0);
    rs_alias_maps = maps_from_param("alias_maps", var_alias_maps, 0);
    rs_addrs_init();
    rs_ready = true;
    return 0;
}

/* resolve_fini - close the tables, forget the lists */
void resolve_fini(void)
{
    if (!rs_ready)
	return;
    rs_domains_fini(&rs_mydestination);
    rs_domains_fini(&rs_valias_domains);
    rs_domains_fini(&rs_vmbox_domains);
    rs_domains_fini(&rs_relay_domains);
    maps_free(&rs_transport_maps);
    maps_free(&rs_valias_maps);
    maps_free(&rs_vmbox_maps);
    maps_free(&rs_alias_maps);
    mem_free(&rs_addrs);
    rs_addr_count = 0;
    rs_class_memo_n = rs_class_memo_next = 0;
    memset(rs_pw_memo, 0, sizeof(rs_pw_memo));
    rs_ready = false;
}

/* rs_check_ready - the module must be initialised */
static void rs_check_ready(void)
{
    if (!rs_ready)
	msg_panic("resolve: called before resolve_init");
}

/* rs_domain_is_local - mydestination or a literal of ours: 1/0/-1 */
static int rs_domain_is_local(const char *domain, const char **error_r)
{
    if (*domain == 0)
	return 1;
    if (domain[0] == '[' && rs_literal_is_ours(domain))
	return 1;
    return rs_domains_match(&rs_mydestination, domain, error_r);
}

/* rs_bool - a domain predicate without an error channel */
static bool rs_bool(int rc, const char *what, const char *domain, const char *error)
{
    if (rc < 0) {
	msg_warn("%s: lookup of %s failed: %s", what, domain, error);
	return false;
    }
    return rc > 0;
}

bool resolve_domain_is_local(const char *domain)
{
    const char *error = "";

    rs_check_ready();
    if (*domain == 0)
	return false;
    return rs_bool(rs_domain_is_local(domain, &error), "mydestination", domain, error);
}

bool resolve_domain_is_virtual_mailbox(const char *domain)
{
    const char *error = "";

    rs_check_ready();
    return rs_bool(rs_domains_match(&rs_vmbox_domains, domain, &error),
		   "virtual_mailbox_domains", domain, error);
}

bool resolve_domain_is_virtual_alias(const char *domain)
{
    const char *error = "";

    rs_check_ready();
    return rs_bool(rs_domains_match(&rs_valias_domains, domain, &error),
		   "virtual_alias_domains", domain, error);
}

bool resolve_domain_is_relay(const char *domain)
{
    const char *error = "";

    rs_check_ready();
    return rs_bool(rs_domains_match(&rs_relay_domains, domain, &error),
		   "relay_domains", domain, error);
}

/* resolve_domain_is_ours - local, virtual mailbox or virtual alias */
bool resolve_domain_is_ours(const char *domain)
{
    return resolve_domain_is_local(domain) || resolve_domain_is_virtual_alias(domain)
	|| resolve_domain_is_virtual_mailbox(domain);
}

/* rs_class - the class of a domain (Postfix order: local, virtual alias,
 * virtual mailbox, relay, default); -1 on a lookup error */
static int rs_class_lookup(const char *domain, enum resolve_class *class, const char **error_r);

/* rs_tables_all_open - no table of a domain list is still missing */
static bool rs_tables_all_open(void)
{
    const struct rs_domains *lists[] = {
	&rs_mydestination, &rs_valias_domains, &rs_vmbox_domains, &rs_relay_domains,
    };

    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++)
	if (!maps_all_open(lists[l]->tables))
	    return false;
    return true;
}

static int rs_class(const char *domain, enum resolve_class *class, const char **error_r)
{
    size_t len = strlen(domain), i;
    int rc;

    for (i = 0; i < rs_class_memo_n; i++) {
	if (strcmp(rs_class_memo[i].domain, domain) == 0) {
	    *class = rs_class_memo[i].class;
	    return 0;
	}
    }
    if ((rc = rs_class_lookup(domain, class, error_r)) < 0 || len > RS_KEY_MAX
	|| !rs_tables_all_open())
	return rc;
    i = rs_class_memo_next++ % RS_CLASS_MEMO;
    memcpy(rs_class_memo[i].domain, domain, len + 1);
    rs_class_memo[i].class = *class;
    if (rs_class_memo_n < RS_CLASS_MEMO)
	rs_class_memo_n++;
    return 0;
}

/* rs_class_lookup - rs_class without the memory */
static int rs_class_lookup(const char *domain, enum resolve_class *class, const char **error_r)
{
    int rc;

    if ((rc = rs_domain_is_local(domain, error_r)) != 0) {
	*class = RESOLVE_CLASS_LOCAL;
	return rc < 0 ? -1 : 0;
    }
    if ((rc = rs_domains_match(&rs_valias_domains, domain, error_r)) != 0) {
	*class = RESOLVE_CLASS_ALIAS;
	return rc < 0 ? -1 : 0;
    }
    if ((rc = rs_domains_match(&rs_vmbox_domains, domain, error_r)) != 0) {
	*class = RESOLVE_CLASS_VIRTUAL;
	return rc < 0 ? -1 : 0;
    }
    if ((rc = rs_domains_match(&rs_relay_domains, domain, error_r)) != 0) {
	*class = RESOLVE_CLASS_RELAY;
	return rc < 0 ? -1 : 0;
    }
    *class = RESOLVE_CLASS_DEFAULT;
    return 0;
}

/* An address split into its parts. */
struct rs_parts {
    struct str local;		/* full local part */
    struct str domain;		/* lower case, no trailing dot; "" if none */
    struct str user;		/* local part without extension */
    struct str ext;
    bool has_ext;
};

static void rs_parts_init(struct rs_parts *p)
{
    str_init(&p->local, RS_KEY_MAX);
    str_init(&p->domain, RS_KEY_MAX);
    str_init(&p->user, RS_KEY_MAX);
    str_init(&p->ext, RS_KEY_MAX);
    p->has_ext = false;
}

static void rs_parts_fini(struct rs_parts *p)
{
    str_fini(&p->local);
    str_fini(&p->domain);
    str_fini(&p->user);
    str_fini(&p->ext);
}

/* rs_split - split at the last "@"; false if too long */
static bool rs_split(const char *address, struct rs_parts *p)
{
    const char *at = address_at(address, strlen(address));

    if (at) {
	if (!str_try_setn(&p->local, address, (size_t) (at - address))
	    || !rs_norm_domain(at + 1, &p->domain))
	    return false;
    } else {
	if (!str_try_set(&p->local, address))
	    return false;
	str_reset(&p->domain);
    }
    p->has_ext = resolve_split_extension(str_cstr(&p->local), &p->user, &p->ext);
    if (!p->has_ext && !str_try_set(&p->user, str_cstr(&p->local)))
	return false;
    return true;
}

/* resolve_split_extension - "user+ext" -> "user", "ext" */
bool resolve_split_extension(const char *localpart, struct str *user, struct str *ext)
{
    size_t base_len;
    const char *ext_start;

    if (!address_split_delimiter(localpart, var_recipient_delimiter, &base_len, &ext_start))
	return false;
    if (!str_try_setn(user, localpart, base_len) || !str_try_set(ext, ext_start))
	return false;
    return true;
}

/* rs_key_lookup - build "a" "b" into key, look it up */
static int rs_key_lookup(struct maps *ts, struct str *key, const char *a, const char *at,
			 const char *b, struct str *value, const char **error_r)
{
    if (!str_try_set(key, a) || !str_try_appends(key, at) || !str_try_appends(key, b))
	return 0;			/* too long to be a key */
    return maps_lookup(ts, str_cstr(key), value, NULL, error_r);
}

/* rs_lookup_address - user+ext@domain, user@domain, [user+ext, user if
 * bare_local], @domain */
static int rs_lookup_address(struct maps *ts, const char *address, bool catchall,
			     int bare_local, struct str *value, const char **error_r)
{
    struct rs_parts p;
    struct str *key;
    int rc = 0;

    if (maps_count(ts) == 0)
	return 0;
    rs_parts_init(&p);
    key = str_new(RS_KEY_MAX * 2);
    if (!rs_split(address, &p))
	goto out;
    if (str_len(&p.domain) > 0) {
	if ((rc = rs_key_lookup(ts, key, str_cstr(&p.local), "@", str_cstr(&p.domain),
				value, error_r)) != 0)
	    goto out;
	if (p.has_ext && (rc = rs_key_lookup(ts, key, str_cstr(&p.user), "@",
					     str_cstr(&p.domain), value, error_r)) != 0)
	    goto out;
    }
    if (bare_local < 0) {
	rc = -1;
	goto out;
    }
    if (bare_local > 0 || str_len(&p.domain) == 0) {
	if ((rc = rs_key_lookup(ts, key, str_cstr(&p.local), "", "", value, error_r)) != 0)
	    goto out;
	if (p.has_ext && (rc = rs_key_lookup(ts, key, str_cstr(&p.user), "", "",
					     value, error_r)) != 0)
	    goto out;
    }
    if (catchall && str_len(&p.domain) > 0)
	rc = rs_key_lookup(ts, key, "@", "", str_cstr(&p.domain), value, error_r);
  out:
    str_free(&key);
    rs_parts_fini(&p);
    return rc;
}

/* resolve_lookup_virtual_alias - virtual_alias_maps: user+ext@domain,
 * user@domain, then (local domains only) user+ext and user, then @domain */
int resolve_lookup_virtual_alias(const char *address, struct str *value, const char **error_r)
{
    const char *at = address_at(address, strlen(address));
    int bare;

    rs_check_ready();
    if (maps_count(rs_valias_maps) == 0)
	return 0;
    bare = at ? rs_domain_is_local(at + 1, error_r) : 1;
    return rs_lookup_address(rs_valias_maps, address, true, bare, value, error_r);
}

/* resolve_lookup_virtual_mailbox - virtual_mailbox_maps: user+ext@domain,
 * user@domain, @domain */
int resolve_lookup_virtual_mailbox(const char *address, struct str *value, const char **error_r)
{
    rs_check_ready();
    return rs_lookup_address(rs_vmbox_maps, address, true, 0, value, error_r);
}

/* resolve_lookup_alias - alias_maps: user+ext, then user */
int resolve_lookup_alias(const char *localpart, struct str *value, const char **error_r)
{
    struct str *user, *ext;
    int rc;

    rs_check_ready();
    if (maps_count(rs_alias_maps) == 0)
	return 0;
    if ((rc = maps_lookup(rs_alias_maps, localpart, value, NULL, error_r)) != 0)
	return rc;
    user = str_new(RS_KEY_MAX);
    ext = str_new(RS_KEY_MAX);
    if (resolve_split_extension(localpart, user, ext))
	rc = maps_lookup(rs_alias_maps, str_cstr(user), value, NULL, error_r);
    str_free(&user);
    str_free(&ext);
    return rc;
}

/* rs_transport_value - apply "transport:nexthop" (from param) to result,
 * as Postfix's transport(5): an empty transport keeps the one result
 * has; a transport without a nexthop resets the nexthop to domain (the
 * recipient's, or $myhostname without one), an empty one leaves it */
static int rs_transport_value(const char *param, const char *value, const char *domain,
			      struct resolve_result *result, const char **error_r)
{
    const char *colon = strchr(value, ':');
    size_t tlen = colon ? (size_t) (colon - value) : strlen(value);
    const char *nexthop = colon ? colon + 1 : "";

    while (tlen > 0 && isspace((unsigned char) value[tlen - 1]))
	tlen--;
    if (tlen >= sizeof(result->transport) || strlen(nexthop) >= sizeof(result->nexthop)) {
	fmt_buf_cut(rs_errbuf, sizeof(rs_errbuf), "%s: value too long: \"%.100s\"", param, value);
	*error_r = rs_errbuf;
	return -1;
    }
    if (tlen > 0) {
	memcpy(result->transport, value, tlen);
	result->transport[tlen] = 0;
	if (*nexthop == 0 && !str_try_copy_out(result->nexthop, sizeof(result->nexthop),
					       *domain ? domain : var_myhostname)) {
	    *error_r = "domain too long";
	    return -1;
	}
    }
    if (*nexthop)
	str_copy_out_or_panic(result->nexthop, sizeof(result->nexthop), nexthop);
    return 0;
}

/* rs_transport - transport_maps: address, user@domain, domain, .parents */
static int rs_transport(const struct rs_parts *p, struct resolve_result *result,
			const char **error_r)
{
    struct str *key = str_new(RS_KEY_MAX * 2), *value = str_new(RS_VALUE_MAX);
    const char *cp;
    int rc = 0;

    if (maps_count(rs_transport_maps) == 0)
	goto out;
    if (str_len(&p->domain) == 0)
	goto out;
    if ((rc = rs_key_lookup(rs_transport_maps, key, str_cstr(&p->local), "@",
			    str_cstr(&p->domain), value, error_r)) != 0)
	goto found;
    if (p->has_ext && (rc = rs_key_lookup(rs_transport_maps, key, str_cstr(&p->user), "@",
					  str_cstr(&p->domain), value, error_r)) != 0)
	goto found;
    if ((rc = maps_lookup(rs_transport_maps, str_cstr(&p->domain), value, NULL, error_r)) != 0)
	goto found;
    if (str_cstr(&p->domain)[0] != '[')
	for (cp = strchr(str_cstr(&p->domain), '.'); cp; cp = strchr(cp + 1, '.'))
	    if ((rc = maps_lookup(rs_transport_maps, cp, value, NULL, error_r)) != 0)
		goto found;
    goto out;
  found:
    if (rc > 0)
	rc = rs_transport_value("transport_maps", str_cstr(value), str_cstr(&p->domain), result,
				error_r);
  out:
    str_free(&key);
    str_free(&value);
    return rc < 0 ? -1 : 0;
}

/* rs_relayhost - relayhost without surrounding white space ("" if none) */
static const char *rs_relayhost(void)
{
    static char buf[sizeof(((struct resolve_result *) 0)->nexthop) + 1];
    const char *v = var_relayhost ? var_relayhost : "";
    size_t len;

    while (isspace((unsigned char) *v))
	v++;
    len = strlen(v);
    while (len > 0 && isspace((unsigned char) v[len - 1]))
	len--;
    if (len >= sizeof(buf))
	len = sizeof(buf) - 1;		/* too long for a nexthop: refused */
    memcpy(buf, v, len);
    buf[len] = 0;
    return buf;
}

/* rs_default_has_nexthop - default_transport names a nexthop */
static bool rs_default_has_nexthop(void)
{
    const char *colon = var_default_transport ? strchr(var_default_transport, ':') : NULL;

    return colon != NULL && colon[1] != 0;
}

/* rs_default_transport - default_transport (transport[:nexthop]) for the
 * default class */
static int rs_default_transport(const char *domain, struct resolve_result *result,
				const char **error_r)
{
    const char *v = var_default_transport;

    while (isspace((unsigned char) *v))
	v++;
    return rs_transport_value("default_transport", v, domain, result, error_r);
}

/* resolve_address - class, transport and nexthop of a recipient */
int resolve_address(const char *address, struct resolve_result *result, const char **error_r)
{
    struct rs_parts p;
    enum resolve_class class = RESOLVE_CLASS_DEFAULT;
    int rc = -1;

    rs_check_ready();
    rs_parts_init(&p);
    memset(result, 0, sizeof(*result));
    if (!rs_split(address, &p)) {
	*error_r = "address too long";
	goto out;
    }
    if (rs_class(str_cstr(&p.domain), &class, error_r) < 0)
	goto out;
    result->class = class;
    switch (class) {
    case RESOLVE_CLASS_LOCAL:
    case RESOLVE_CLASS_VIRTUAL:
	str_copy_out_or_panic(result->transport, sizeof(result->transport), "local");
	if (!str_try_copy_out(result->nexthop, sizeof(result->nexthop),
			      str_len(&p.domain) ? str_cstr(&p.domain) : var_myhostname))
	    goto too_long;
	break;
    case RESOLVE_CLASS_ALIAS:
	str_copy_out_or_panic(result->transport, sizeof(result->transport), "error");
	str_copy_out_or_panic(result->nexthop, sizeof(result->nexthop),
		     "5.1.1 User unknown in virtual alias table");
	break;
    case RESOLVE_CLASS_RELAY:
    case RESOLVE_CLASS_DEFAULT:
	str_copy_out_or_panic(result->transport, sizeof(result->transport), "smtp");
	if (!str_try_copy_out(result->nexthop, sizeof(result->nexthop), str_cstr(&p.domain)))
	    goto too_long;
	if (class == RESOLVE_CLASS_DEFAULT && var_default_transport && *var_default_transport
	    && rs_default_transport(str_cstr(&p.domain), result, error_r) < 0)
	    goto out;
	if (*rs_relayhost() && (class == RESOLVE_CLASS_RELAY || !rs_default_has_nexthop())) {
	    if (!str_try_copy_out(result->nexthop, sizeof(result->nexthop), rs_relayhost())) {
		*error_r = "relayhost: value too long";
		goto out;
	    }
	}
	break;
    }
    rc = rs_transport(&p, result, error_r);
    goto out;
  too_long:
    *error_r = "domain too long";
  out:
    rs_parts_fini(&p);
    return rc;
}

/* rs_system_user - getpwnam on the lower-cased name: 1 exists, 0 not
 * (remembered for RS_PW_TTL seconds) */
static int rs_system_user(const char *name)
{
    struct str *lc = str_new(RS_KEY_MAX);
    struct rs_pw_memo *m;
    struct passwd *pw;
    time_t now;
    int rc = 0;
    size_t i;

    if (*name && str_try_set(lc, name)) {
	str_lower(lc);
	now = time(NULL);
	for (i = 0; i < RS_PW_MEMO; i++) {
	    m = &rs_pw_memo[i];
	    if (m->when && now - m->when < RS_PW_TTL && now >= m->when
		&& strcmp(m->name, str_cstr(lc)) == 0) {
		str_free(&lc);
		return m->exists;
	    }
	}
	errno = 0;
	pw = getpwnam(str_cstr(lc));
	rc = pw != NULL;
	if (str_len(lc) < sizeof(m->name)) {
	    m = &rs_pw_memo[rs_pw_memo_next++ % RS_PW_MEMO];
	    memcpy(m->name, str_cstr(lc), str_len(lc) + 1);
	    m->exists = rc;
	    m->when = now;
	}
    }
    str_free(&lc);
    return rc;
}

/* rs_known - 1 -> KNOWN, 0 -> UNKNOWN with why, -1 -> TEMPFAIL */
static enum resolve_known rs_known(int rc, const char *unknown_why, const char *error,
				   const char **why_r)
{
    if (rc < 0) {
	fmt_buf_cut(rs_whybuf, sizeof(rs_whybuf), "temporary lookup failure: %s", error);
	*why_r = rs_whybuf;
	return RESOLVE_TEMPFAIL;
    }
    if (rc > 0) {
	*why_r = "recipient found";
	return RESOLVE_KNOWN;
    }
    *why_r = unknown_why;
    return RESOLVE_UNKNOWN;
}

/* resolve_recipient - does this recipient exist? */
enum resolve_known resolve_recipient(const char *address, const char **why_r)
{
    struct str *value = str_new(RS_VALUE_MAX);
    enum resolve_class class = RESOLVE_CLASS_DEFAULT;
    enum resolve_known known;
    struct rs_parts p;
    const char *error = "";
    int rc;

    rs_check_ready();
    rs_parts_init(&p);
    if (!rs_split(address, &p)) {
	*why_r = "address too long";
	known = RESOLVE_UNKNOWN;
	goto out;
    }
    if (rs_class(str_cstr(&p.domain), &class, &error) < 0) {
	known = rs_known(-1, "", error, why_r);
	goto out;
    }
    if (class == RESOLVE_CLASS_RELAY || class == RESOLVE_CLASS_DEFAULT) {
	*why_r = "not a local domain";
	known = RESOLVE_KNOWN;
	goto out;
    }
    /* A virtual alias makes any address of ours exist. */
    if ((rc = resolve_lookup_virtual_alias(address, value, &error)) != 0) {
	known = rs_known(rc, "", error, why_r);
	goto out;
    }
    switch (class) {
    case RESOLVE_CLASS_LOCAL:
	/* RFC 5321 4.5.1: postmaster must always be accepted. */
	if (strcasecmp(str_cstr(&p.local), "postmaster") == 0
	    || rs_system_user(str_cstr(&p.local))
	    || (p.has_ext && rs_system_user(str_cstr(&p.user)))) {
	    rc = 1;
	} else {
	    struct str *lc = str_new(RS_KEY_MAX);

	    str_set_or_panic(lc, str_cstr(&p.local));
	    str_lower(lc);
	    rc = resolve_lookup_alias(str_cstr(lc), value, &error);
	    str_free(&lc);
	}
	known = rs_known(rc, "User unknown in local recipient table", error, why_r);
	break;
    case RESOLVE_CLASS_VIRTUAL:
	rc = resolve_lookup_virtual_mailbox(address, value, &error);
	known = rs_known(rc, "User unknown in virtual mailbox table", error, why_r);
	break;
    default:
	known = rs_known(0, "User unknown in virtual alias table", error, why_r);
	break;
    }
  out:
    rs_parts_fini(&p);
    str_free(&value);
    return known;
}

/* resolve_error_text - "5.1.1 text" of the error transport: DSN and text */
void resolve_error_text(const char *nexthop, char *dsn, size_t dsn_size, const char **text_r)
{
    const char *sp = strchr(nexthop, ' ');
    char code[16];

    str_copy_out_or_panic(dsn, dsn_size, "5.0.0");
    *text_r = *nexthop ? nexthop : "mail for this destination is not deliverable";
    if (sp && (size_t) (sp - nexthop) < sizeof(code)) {
	memcpy(code, nexthop, (size_t) (sp - nexthop));
	code[sp - nexthop] = 0;
	if (deliver_dsn_valid(code) && code[0] == '5') {
	    str_copy_out_or_panic(dsn, dsn_size, code);
	    *text_r = sp + 1;
	}
    }
}
