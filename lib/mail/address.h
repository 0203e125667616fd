/* address.h - SMTP envelope addresses: parsing, quoting, named predicates.
 *
 * address_parse() parses the path argument of MAIL FROM: and RCPT TO:
 * the way an SMTP server must (RFC 5321 4.1.2, RFC 6531 for SMTPUTF8):
 *
 *   "<local@domain>"          the normal case
 *   "<>"                      null reverse-path; MAIL only
 *   "<postmaster>"            bare postmaster, any case; RCPT only
 *   "<@a,@b:local@domain>"    source route: accepted, the route is
 *                             discarded (RFC 5321 Appendix C) but kept
 *                             in addr->route and flagged, so that policy
 *                             can treat it as a relay attempt
 *   local part                Dot-string or Quoted-string (quoted-pair
 *                             allowed); stored unquoted in addr->localpart
 *   domain                    LDH labels (1..63 octets, 253 in all), or an
 *                             address literal [1.2.3.4], [IPv6:...] or
 *                             [tag:content] (flag ADDR_FLAG_LITERAL)
 *
 * The argument starts right after "FROM:" / "TO:"; leading spaces are
 * skipped. After ">" comes the end, or spaces and the ESMTP parameters:
 * addr->rest points at the first parameter (into the caller's buffer).
 * Non-ASCII octets are accepted only with ADDR_PARSE_SMTPUTF8 and must
 * be strict UTF-8. NUL, controls and DEL are never accepted.
 *
 * Length limits (RFC 5321 4.5.3.1): local part 64 octets as sent, domain
 * 255, whole path 256 including "<" and ">"; struct address_limits
 * overrides them (0 = default). Each limit has its own error code.
 *
 * Every failure is an enum address_error; address_error_reply() maps it,
 * for the sender or the recipient role, to the SMTP reply code, the RFC
 * 3463 enhanced status code and a text, from one table. See
 * docs/addresses.md for what is accepted and why.
 *
 * Predicates (the only gate for these checks in posthorn):
 *   valid_hostname   HELO/EHLO argument: a domain or an address literal
 *   valid_domain     a domain name (LDH labels; U-labels with ADDR_PARSE_SMTPUTF8)
 *   valid_literal    an address literal, with brackets
 *   valid_localpart  a local part as sent (dot-string or quoted-string)
 *   address_is_percent_hack, address_has_bang_path
 *   domain_in_list   list membership, optionally with parent matching
 *   address_split_delimiter   "user+tag" -> "user", "tag"
 *
 * DIAGNOSTICS
 *   None logged; results are returned. Memory comes from mem.h (never
 *   NULL). address_fini() releases a parsed address. */
#ifndef POSTHORN_ADDRESS_H
#define POSTHORN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "str.h"

/* A reply as the smtpd sends it: "code enhanced text". */
struct mail_reply {
    int code;				/* 501, 553, 555, ... */
    const char *enhanced;		/* "5.1.3" */
    const char *text;			/* "Bad recipient address syntax" */
};

enum address_error {
    ADDR_OK = 0,
    ADDR_ERR_SYNTAX,			/* general path syntax, junk after ">" */
    ADDR_ERR_EMPTY,			/* nothing given */
    ADDR_ERR_NO_BRACKETS,		/* "<" missing (strict mode) */
    ADDR_ERR_NULL_NOT_ALLOWED,		/* "<>" where it is not allowed (RCPT) */
    ADDR_ERR_LOCALPART,			/* bad local part */
    ADDR_ERR_NO_DOMAIN,			/* "<user>" (not postmaster) or "user@" */
    ADDR_ERR_DOMAIN,			/* bad domain name */
    ADDR_ERR_LITERAL,			/* bad address literal */
    ADDR_ERR_ROUTE,			/* bad source route */
    ADDR_ERR_LOCALPART_TOO_LONG,
    ADDR_ERR_DOMAIN_TOO_LONG,
    ADDR_ERR_PATH_TOO_LONG,
    ADDR_ERR_8BIT,			/* non-ASCII without SMTPUTF8 */
    ADDR_ERR_UTF8,			/* invalid UTF-8 (with SMTPUTF8) */
    ADDR_ERR_COUNT
};

enum address_role {
    ADDR_ROLE_SENDER,			/* MAIL FROM */
    ADDR_ROLE_RECIPIENT,		/* RCPT TO */
};

/* address_parse() flags */
#define ADDR_PARSE_MAIL		(1u << 0)	/* reverse-path: "<>" allowed */
#define ADDR_PARSE_RCPT		(1u << 1)	/* forward-path: "<postmaster>" */
#define ADDR_PARSE_SMTPUTF8	(1u << 2)	/* UTF-8 allowed (also for predicates) */
#define ADDR_PARSE_NO_BRACKETS	(1u << 3)	/* tolerate a missing "<>" */

/* result flags (addr->flags) */
#define ADDR_FLAG_NULL		(1u << 0)	/* "<>" */
#define ADDR_FLAG_POSTMASTER	(1u << 1)	/* bare "<postmaster>" */
#define ADDR_FLAG_SOURCE_ROUTE	(1u << 2)	/* had "@a,@b:" (now dropped) */
#define ADDR_FLAG_LITERAL	(1u << 3)	/* domain is an address literal */
#define ADDR_FLAG_UTF8		(1u << 4)	/* contains non-ASCII */
#define ADDR_FLAG_QUOTED	(1u << 5)	/* local part was sent quoted */
#define ADDR_FLAG_NO_BRACKETS	(1u << 6)	/* accepted without "<>" */

#define ADDR_LOCALPART_MAX	64
#define ADDR_DOMAIN_MAX		255
#define ADDR_PATH_MAX		256
#define ADDR_HOSTNAME_MAX	253	/* a DNS name in text form */
#define ADDR_LABEL_MAX		63

struct address_limits {
    size_t localpart_max;		/* 0: ADDR_LOCALPART_MAX */
    size_t domain_max;			/* 0: ADDR_DOMAIN_MAX */
    size_t path_max;			/* 0: ADDR_PATH_MAX ("<", ">" count) */
};

struct address {
    char *localpart;			/* unquoted; "" for <> */
    char *domain;			/* as sent, literal with brackets; "" if none */
    char *domain_lc;			/* ASCII-lowercased copy, for comparison */
    char *route;			/* "@a,@b" as sent, or NULL */
    unsigned flags;			/* ADDR_FLAG_* */
    const char *rest;			/* ESMTP parameters (into the input) */
    size_t rest_len;
};

/* address_parse - parse line[0..len); on success fill *addr (release it
 * with address_fini). On failure *addr is left empty (address_fini is
 * still safe). */
enum address_error address_parse(const char *line, size_t len, unsigned flags,
				 const struct address_limits *limits,
				 struct address *addr);
void address_fini(struct address *addr);

/* address_error_reply - the reply for err in role (ADDR_OK: 250 2.1.0/2.1.5) */
struct mail_reply address_error_reply(enum address_error err, enum address_role role);
/* address_error_str - short internal name, e.g. "localpart too long" */
const char *address_error_str(enum address_error err);

/* address_quote - append the external form of an unquoted local part:
 * as is if it is a valid Dot-string, else as a Quoted-string with "\"
 * before '"' and '\'. False if it holds a character that cannot be sent
 * (NUL, control, DEL; non-ASCII unless utf8) or out is full. */
bool address_quote(struct str *out, const char *localpart, size_t len, bool utf8);
/* address_unquote - append the unquoted form of a local part as sent
 * (Dot-string or Quoted-string); false if it is not valid */
bool address_unquote(struct str *out, const char *localpart, size_t len, bool utf8);
/* address_external - append "local@domain" with the local part quoted
 * as needed ("<>" -> "", bare postmaster -> "postmaster") */
bool address_external(struct str *out, const struct address *addr);

/* Predicates. flags: ADDR_PARSE_SMTPUTF8 allows UTF-8. */
bool valid_hostname(const char *name, size_t len, unsigned flags);
bool valid_domain(const char *name, size_t len, unsigned flags);
bool valid_literal(const char *lit, size_t len);
bool valid_localpart(const char *local, size_t len, unsigned flags);
/* address_at - the "@" that separates the local part from the domain in
 * addr[0..len), an address in the internal form (local part unquoted, so
 * it may hold "@"): the last one, since no domain that address_parse
 * accepts holds one (docs/addresses.md); NULL if there is none. The one
 * definition of "the domain of an address" for every program. */
const char *address_at(const char *addr, size_t len);
/* domain_is_fqdn - at least two labels (no check of validity) */
bool domain_is_fqdn(const char *domain);

/* address_is_percent_hack - unquoted local part holds "%" (user%foreign@local) */
bool address_is_percent_hack(const char *localpart);
/* address_has_bang_path - unquoted local part holds "!" (foreign!user@local) */
bool address_has_bang_path(const char *localpart);

#define DOMAIN_MATCH_PARENT	(1u << 0)	/* "example.com" also matches "a.example.com" */
/* domain_in_list - domain (any case) is in list, a string of names
 * separated by commas and/or white space. An entry ".example.com" always
 * matches strict subdomains only; with DOMAIN_MATCH_PARENT an entry
 * "example.com" matches itself and every subdomain. */
bool domain_in_list(const char *domain, const char *list, unsigned flags);

/* address_split_delimiter - find the first of the characters in delims
 * in localpart and split there: *base_len_r = length before it, *ext_r =
 * text after it. False (no split) if none, if it is the first character,
 * or if delims is empty. With "-": "owner-x" and "x-request" are not split. */
bool address_split_delimiter(const char *localpart, const char *delims,
			     size_t *base_len_r, const char **ext_r);

#endif
