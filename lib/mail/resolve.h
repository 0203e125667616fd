/* resolve.h - address classes and routing: which domains are ours, how a
 * recipient is delivered, and whether a recipient exists.
 *
 * One module answers these for every daemon, from the same parameters,
 * so smtpd's RCPT check, cleanup's alias expansion, qmgr's routing and
 * local-delivery agree (Postfix's address classes):
 *   local           domain in mydestination (or a literal of our own
 *                   address): system users (getpwnam) and alias_maps;
 *                   transport "local"
 *   virtual mailbox domain in virtual_mailbox_domains: recipients in
 *                   virtual_mailbox_maps; transport "local" (the
 *                   local-delivery agent also serves virtual mailboxes)
 *   virtual alias   domain in virtual_alias_domains: every recipient
 *                   must be rewritten by virtual_alias_maps (cleanup)
 *   relay           domain in relay_domains: transport "smtp", nexthop
 *                   relayhost if set, else the domain
 *   default         anything else: default_transport ("transport" or
 *                   "transport:nexthop", default "smtp"); without a
 *                   nexthop there, relayhost if set, else the domain
 *                   (relaying is a policy question for smtpd)
 * transport_maps (domain or address -> "transport:nexthop") overrides the
 * routing of any class, as Postfix's transport(5): "smtp:[host]:port"
 * sets both; "smtp:" or "local" (a transport, no nexthop) resets the
 * nexthop to the recipient domain; ":[host]" keeps the transport; ":"
 * changes nothing. The values qmgr knows itself: "error:5.x.x text"
 * (bounce with that text) and "discard:text" (done as delivered).
 * Nexthop strings for smtp: "example.com" (MX lookup), "example.com:587",
 * "[mx.example.com]" (no MX lookup), "[192.0.2.1]:2525".
 *
 * Addresses here are internal form: "localpart@domain" with the local
 * part unquoted; the domain is compared case-insensitively. An address
 * without "@" is local. The recipient delimiter ("user+ext@dom") is
 * understood: lookups try the full local part first, then without the
 * extension (as Postfix).
 *
 * Lifecycle: resolve_init() after config_apply and before a privilege
 * drop or chroot (it opens the tables); resolve_fini() closes them.
 * Errors: -1 and a text in *error_r (table lookup failures are
 * temporary: the caller defers, never rejects). The text is a constant
 * or a static buffer of this module or of table.h, valid until the next
 * resolve_* call; *why_r of resolve_recipient likewise. */
#ifndef POSTHORN_RESOLVE_H
#define POSTHORN_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

enum resolve_class {
    RESOLVE_CLASS_LOCAL = 1,
    RESOLVE_CLASS_VIRTUAL,		/* virtual mailbox */
    RESOLVE_CLASS_ALIAS,		/* virtual alias domain */
    RESOLVE_CLASS_RELAY,
    RESOLVE_CLASS_DEFAULT,
};

struct resolve_result {
    enum resolve_class class;
    char transport[64];		/* "local", "smtp", "error", ... */
    char nexthop[256];		/* domain, relayhost, or from default_transport
				 * or transport_maps; error/discard: text */
};

/* Recipient existence (for RCPT TO and for cleanup/local decisions). */
enum resolve_known {
    RESOLVE_KNOWN = 1,		/* deliverable here (or to be relayed) */
    RESOLVE_UNKNOWN,		/* 550 5.1.1 */
    RESOLVE_TEMPFAIL,		/* lookup failed: 451 4.3.0 */
};

int resolve_init(const char **error_r);
void resolve_fini(void);

/* resolve_address - class, transport and nexthop of a recipient */
int resolve_address(const char *address, struct resolve_result *result, const char **error_r);
/* resolve_recipient - does this recipient exist? For local: a system
 * user (after the delimiter) or an alias_maps key; virtual mailbox: a
 * virtual_mailbox_maps or virtual_alias_maps key; alias domain: a
 * virtual_alias_maps key; relay/default: RESOLVE_KNOWN (not ours to
 * judge). why_r gets a short text for logs. */
enum resolve_known resolve_recipient(const char *address, const char **why_r);

/* Domain classes. */
bool resolve_domain_is_local(const char *domain);
bool resolve_domain_is_virtual_mailbox(const char *domain);
bool resolve_domain_is_virtual_alias(const char *domain);
bool resolve_domain_is_relay(const char *domain);
/* resolve_domain_is_ours - local, virtual mailbox or virtual alias */
bool resolve_domain_is_ours(const char *domain);

/* resolve_split_extension - split "user+ext" at the first character of
 * recipient_delimiter; false if none (user/ext untouched) */
bool resolve_split_extension(const char *localpart, struct str *user, struct str *ext);

/* Table lookups used by several daemons (1 found, 0 not found, -1 error).
 * The key is an address or a domain; value gets the table's value. */
int resolve_lookup_virtual_alias(const char *address, struct str *value, const char **error_r);
int resolve_lookup_virtual_mailbox(const char *address, struct str *value, const char **error_r);
int resolve_lookup_alias(const char *localpart, struct str *value, const char **error_r);

/* resolve_error_text - the bounce of an "error" transport: its nexthop
 * "5.x.x text" split into dsn (a valid 5.x.x code) and *text_r (points
 * into nexthop); otherwise dsn "5.0.0" and the whole nexthop as text
 * (a fixed text when it is empty). qmgr bounces with it; posthorn route
 * shows it. */
void resolve_error_text(const char *nexthop, char *dsn, size_t dsn_size, const char **text_r);

#endif
