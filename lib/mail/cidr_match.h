/* cidr_match.h - match client addresses against network lists such as
 * mynetworks.
 *
 * A list is text with entries separated by white space and/or commas:
 *
 *   192.0.2.1            one IPv4 address (a /32)
 *   192.0.2.0/24         an IPv4 network
 *   2001:db8::1          one IPv6 address (a /128)
 *   2001:db8::/32        an IPv6 network
 *   [2001:db8::]/32      the same, with Postfix's brackets ([::1]/128)
 *   [::1]                one IPv6 address in brackets
 *
 * Host bits beyond the prefix must be zero ("192.0.2.1/24" is an error:
 * the operator probably meant something else). Names, tables and "!"
 * negation are not supported and are errors, so a typo never silently
 * matches nothing.
 *
 * Matching takes a numeric client address as text ("192.0.2.7",
 * "2001:db8::7", "::ffff:192.0.2.7"). An IPv4-mapped IPv6 address
 * matches IPv4 entries as the IPv4 address it carries. A text that is
 * not a numeric address matches nothing.
 *
 * DIAGNOSTICS
 *   cidr_list_parse returns NULL and an error text (valid until the next
 *   call into this module) for a bad entry. Nothing is logged. */
#ifndef POSTHORN_CIDR_MATCH_H
#define POSTHORN_CIDR_MATCH_H

#include <stdbool.h>
#include <stddef.h>

/* One network. */
struct cidr {
    int family;				/* AF_INET or AF_INET6 */
    unsigned char net[16];		/* network bytes (4 used for IPv4) */
    unsigned bits;			/* prefix length */
};

struct cidr_list;

/* cidr_parse - parse one entry (see above) into *out; false and a text */
bool cidr_parse(const char *entry, size_t len, struct cidr *out, const char **error_r);
/* cidr_addr_parse - a numeric address (no prefix) as a host cidr;
 * IPv4-mapped IPv6 becomes IPv4 */
bool cidr_addr_parse(const char *addr, struct cidr *out);
/* cidr_contains - true if the host address host lies in net */
bool cidr_contains(const struct cidr *net, const struct cidr *host);

/* cidr_list_parse - a whole list; NULL and *error_r on a bad entry */
struct cidr_list *cidr_list_parse(const char *text, const char **error_r);
/* cidr_list_match - true if addr (numeric text) is in one of the networks */
bool cidr_list_match(const struct cidr_list *list, const char *addr);
/* cidr_list_count - number of entries */
size_t cidr_list_count(const struct cidr_list *list);
void cidr_list_free(struct cidr_list **listp);

#endif
