/* cidr_match.c - network lists (mynetworks and friends): parse entries
 * such as 192.0.2.0/24 and [2001:db8::]/32 and match numeric client
 * addresses against them (see cidr_match.h). */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* base */
#include "mem.h"
#include "str.h"

/* mail */
#include "cidr_match.h"

struct cidr_list {
    struct cidr *items;
    size_t count;
    size_t cap;
};

static char cidr_errbuf[320];

/* cidr_error - format an error text about entry into the static buffer */
static const char *cidr_error(const char *what, const char *entry, size_t len)
{
    int n = len > 200 ? 200 : (int) len;

    fmt_buf_cut(cidr_errbuf, sizeof(cidr_errbuf), "%s in \"%.*s\"", what, n, entry);
    return cidr_errbuf;
}

/* cidr_addr_parse - numeric address text to a host entry */
bool cidr_addr_parse(const char *addr, struct cidr *out)
{
    struct in_addr a4;
    struct in6_addr a6;
    char buf[INET6_ADDRSTRLEN + 1];
    const char *pct;

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, addr, &a4) == 1) {
	out->family = AF_INET;
	memcpy(out->net, &a4, 4);
	out->bits = 32;
	return true;
    }
    /* drop a zone index ("fe80::1%eth0") */
    if ((pct = strchr(addr, '%')) != NULL) {
	size_t n = (size_t) (pct - addr);

	if (n >= sizeof(buf))
	    return false;
	memcpy(buf, addr, n);
	buf[n] = 0;
	addr = buf;
    }
    if (inet_pton(AF_INET6, addr, &a6) != 1)
	return false;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
	out->family = AF_INET;
	memcpy(out->net, a6.s6_addr + 12, 4);
	out->bits = 32;
	return true;
    }
    out->family = AF_INET6;
    memcpy(out->net, &a6, 16);
    out->bits = 128;
    return true;
}

/* cidr_parse - one list entry */
bool cidr_parse(const char *entry, size_t len, struct cidr *out, const char **error_r)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *p = entry, *end = entry + len, *slash;
    size_t alen;
    bool bracket = false;
    unsigned long bits;
    unsigned maxbits;

    memset(out, 0, sizeof(*out));
    if (len == 0) {
	*error_r = cidr_error("empty network", entry, len);
	return false;
    }
    if (*p == '!') {
	*error_r = cidr_error("negation is not supported", entry, len);
	return false;
    }
    if (*p == '[') {
	const char *close = memchr(p, ']', len);

	if (close == NULL) {
	    *error_r = cidr_error("missing \"]\"", entry, len);
	    return false;
	}
	bracket = true;
	p++;
	alen = (size_t) (close - p);
	slash = close + 1;
	if (slash < end && *slash != '/') {
	    *error_r = cidr_error("junk after \"]\"", entry, len);
	    return false;
	}
	if (slash == end)
	    slash = NULL;
    } else {
	slash = memchr(p, '/', len);
	alen = slash ? (size_t) (slash - p) : len;
    }
    if (alen == 0 || alen >= sizeof(addr)) {
	*error_r = cidr_error("bad network address", entry, len);
	return false;
    }
    memcpy(addr, p, alen);
    addr[alen] = 0;
    if (inet_pton(AF_INET, addr, out->net) == 1 && !bracket) {
	out->family = AF_INET;
	maxbits = 32;
    } else if (strchr(addr, ':') && inet_pton(AF_INET6, addr, out->net) == 1) {
	out->family = AF_INET6;
	maxbits = 128;
    } else {
	*error_r = cidr_error("not a numeric network address", entry, len);
	return false;
    }
    bits = maxbits;
    if (slash) {
	const char *d = slash + 1;

	if (d >= end || (size_t) (end - d) > 3) {
	    *error_r = cidr_error("bad prefix length", entry, len);
	    return false;
	}
	bits = 0;
	for (; d < end; d++) {
	    if (*d < '0' || *d > '9') {
		*error_r = cidr_error("bad prefix length", entry, len);
		return false;
	    }
	    bits = bits * 10 + (unsigned long) (*d - '0');
	}
	if (bits > maxbits) {
	    *error_r = cidr_error("prefix length too large", entry, len);
	    return false;
	}
    }
    out->bits = (unsigned) bits;
    /* host bits must be zero */
    for (unsigned i = out->bits; i < maxbits; i++) {
	if (out->net[i / 8] & (0x80u >> (i % 8))) {
	    *error_r = cidr_error("non-zero host bits (use the network address)", entry, len);
	    return false;
	}
    }
    /* an IPv4-mapped IPv6 network is matched as IPv4 */
    if (out->family == AF_INET6 && out->bits >= 96
	&& IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) out->net)) {
	memmove(out->net, out->net + 12, 4);
	memset(out->net + 4, 0, 12);
	out->family = AF_INET;
	out->bits -= 96;
    }
    return true;
}

/* cidr_contains - prefix comparison */
bool cidr_contains(const struct cidr *net, const struct cidr *host)
{
    unsigned full, rest;

    if (net->family != host->family)
	return false;
    full = net->bits / 8;
    rest = net->bits % 8;
    if (memcmp(net->net, host->net, full) != 0)
	return false;
    if (rest) {
	unsigned mask = (0xffu << (8 - rest)) & 0xffu;

	if ((net->net[full] & mask) != (host->net[full] & mask))
	    return false;
    }
    return true;
}

/* cidr_list_parse - split on white space and commas, parse each entry */
struct cidr_list *cidr_list_parse(const char *text, const char **error_r)
{
    struct cidr_list *list = mem_zalloc(sizeof(*list));
    const char *p = text;

    for (;;) {
	const char *start;
	struct cidr c;

	while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n' || *p == '\r')
	    p++;
	if (*p == 0)
	    break;
	start = p;
	while (*p && *p != ' ' && *p != '\t' && *p != ',' && *p != '\n' && *p != '\r')
	    p++;
	if (!cidr_parse(start, (size_t) (p - start), &c, error_r)) {
	    cidr_list_free(&list);
	    return NULL;
	}
	if (list->count == list->cap) {
	    list->cap = list->cap ? mem_size_mul(list->cap, 2) : 8;
	    list->items = mem_realloc(list->items, mem_size_mul(list->cap, sizeof(*list->items)));
	}
	list->items[list->count++] = c;
    }
    return list;
}

/* cidr_list_match - linear scan (lists are short) */
bool cidr_list_match(const struct cidr_list *list, const char *addr)
{
    struct cidr host;

    if (list == NULL || !cidr_addr_parse(addr, &host))
	return false;
    for (size_t i = 0; i < list->count; i++)
	if (cidr_contains(&list->items[i], &host))
	    return true;
    return false;
}

/* cidr_list_count - number of entries */
size_t cidr_list_count(const struct cidr_list *list)
{
    return list ? list->count : 0;
}

/* cidr_list_free - release and NULL */
void cidr_list_free(struct cidr_list **listp)
{
    if (*listp == NULL)
	return;
    mem_free(&(*listp)->items);
    mem_free(listp);
}
