/* address.c - SMTP envelope address parsing, quoting and the named
 * address/hostname predicates (see address.h, docs/addresses.md). */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "address.h"
#include "xtext.h"

/* The reply table: one row per error, in enum order (checked at run
 * time by address_error_reply). Codes are explained in docs/addresses.md. */
static const struct address_reply_row {
    enum address_error err;
    const char *name;
    int code;
    const char *enh_sender;
    const char *enh_rcpt;
    const char *text;
} address_reply_table[] = {
    {ADDR_OK, "ok", 250, "2.1.0", "2.1.5", "Ok"},
    {ADDR_ERR_SYNTAX, "syntax error", 501, "5.1.7", "5.1.3", "Bad address syntax"},
    {ADDR_ERR_EMPTY, "empty address", 501, "5.5.4", "5.5.4", "Syntax: address missing, use <address>"},
    {ADDR_ERR_NO_BRACKETS, "missing <>", 501, "5.1.7", "5.1.3", "Bad address syntax: address must be enclosed in <>"},
    {ADDR_ERR_NULL_NOT_ALLOWED, "null address not allowed", 501, "5.1.7", "5.1.3", "Null address <> not allowed here"},
    {ADDR_ERR_LOCALPART, "bad local part", 501, "5.1.7", "5.1.3", "Bad address syntax: invalid local part"},
    {ADDR_ERR_NO_DOMAIN, "no domain", 501, "5.1.7", "5.1.3", "Bad address syntax: domain name required"},
    {ADDR_ERR_DOMAIN, "bad domain", 501, "5.1.7", "5.1.3", "Bad address syntax: invalid domain name"},
    {ADDR_ERR_LITERAL, "bad address literal", 501, "5.1.7", "5.1.3", "Bad address syntax: invalid address literal"},
    {ADDR_ERR_ROUTE, "bad source route", 501, "5.1.7", "5.1.3", "Bad address syntax: invalid source route"},
    {ADDR_ERR_LOCALPART_TOO_LONG, "local part too long", 501, "5.1.7", "5.1.3", "Address local part too long"},
    {ADDR_ERR_DOMAIN_TOO_LONG, "domain too long", 501, "5.1.7", "5.1.3", "Address domain too long"},
    {ADDR_ERR_PATH_TOO_LONG, "path too long", 501, "5.1.7", "5.1.3", "Path too long"},
    {ADDR_ERR_8BIT, "non-ASCII without SMTPUTF8", 553, "5.6.7", "5.6.7", "Non-ASCII address requires SMTPUTF8"},
    {ADDR_ERR_UTF8, "invalid UTF-8", 501, "5.1.7", "5.1.3", "Bad address syntax: invalid UTF-8"},
};

/* address_row - the table row of err */
static const struct address_reply_row *address_row(enum address_error err)
{
    size_t n = sizeof(address_reply_table) / sizeof(address_reply_table[0]);

    if (n != ADDR_ERR_COUNT)
	msg_panic("address_reply_table has %zu rows, want %d", n, (int) ADDR_ERR_COUNT);
    if ((unsigned) err >= n || address_reply_table[err].err != err)
	msg_panic("address_row: bad error code %d", (int) err);
    return address_reply_table + err;
}

/* address_error_reply - reply triple for err in role */
struct mail_reply address_error_reply(enum address_error err, enum address_role role)
{
    const struct address_reply_row *r = address_row(err);
    struct mail_reply rep;

    rep.code = r->code;
    rep.enhanced = role == ADDR_ROLE_SENDER ? r->enh_sender : r->enh_rcpt;
    rep.text = r->text;
    return rep;
}

/* address_error_str - internal name of err */
const char *address_error_str(enum address_error err)
{
    return address_row(err)->name;
}

/* ascii_lower - ASCII-only tolower, independent of the locale */
static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char) (c - 'A' + 'a') : c;
}

/* ascii_casecmp_n - equal ignoring ASCII case, over n octets */
static bool ascii_caseeq_n(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
	if (ascii_lower((unsigned char) a[i]) != ascii_lower((unsigned char) b[i]))
	    return false;
    return true;
}

/* is_alpha, is_digit, is_hex - ASCII classes */
static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* is_atext - RFC 5322 atext (ASCII part) */
static bool is_atext(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* is_qtext - RFC 5321 qtextSMTP (ASCII part) */
static bool is_qtext(unsigned char c)
{
    return c == 32 || c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126);
}

/* check_8bit - ADDR_ERR_8BIT if p holds non-ASCII and UTF-8 is not allowed */
static enum address_error check_8bit(const char *p, size_t len, unsigned flags)
{
    size_t i;

    if (flags & ADDR_PARSE_SMTPUTF8)
	return ADDR_OK;
    for (i = 0; i < len; i++)
	if ((unsigned char) p[i] >= 0x80)
	    return ADDR_ERR_8BIT;
    return ADDR_OK;
}

/* localpart_check - validate a local part as sent (no length limit);
 * append the unquoted form to unq if not NULL */
static enum address_error localpart_check(const char *p, size_t len, unsigned flags,
					  struct str *unq)
{
    const unsigned char *u = (const unsigned char *) p;
    enum address_error err;
    size_t i, n;

    if ((err = check_8bit(p, len, flags)) != ADDR_OK)
	return err;
    if (len == 0)
	return ADDR_ERR_LOCALPART;
    if (u[0] == '"') {
	/* Quoted-string: DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE */
	if (len < 2 || u[len - 1] != '"')
	    return ADDR_ERR_LOCALPART;
	for (i = 1; i < len - 1; i++) {
	    if (u[i] == '\\') {
		if (i + 1 >= len - 1 || u[i + 1] < 32 || u[i + 1] > 126)
		    return ADDR_ERR_LOCALPART;
		i++;
		n = 1;
	    } else if (u[i] >= 0x80) {
		if ((n = utf8_seqlen(u + i, len - 1 - i)) < 2)
		    return ADDR_ERR_UTF8;
	    } else if (is_qtext(u[i])) {
		n = 1;
	    } else {
		return ADDR_ERR_LOCALPART;	/* '"', control, DEL, NUL */
	    }
	    if (unq && !str_try_append(unq, p + i, n))
		return ADDR_ERR_LOCALPART_TOO_LONG;
	    i += n - 1;
	}
	return ADDR_OK;
    }
    /* Dot-string: Atom *("." Atom) */
    for (i = 0; i < len; i += n) {
	if (u[i] == '.') {
	    if (i == 0 || i == len - 1 || u[i - 1] == '.')
		return ADDR_ERR_LOCALPART;
	    n = 1;
	} else if (u[i] >= 0x80) {
	    if ((n = utf8_seqlen(u + i, len - i)) < 2)
		return ADDR_ERR_UTF8;
	} else if (is_atext(u[i])) {
	    n = 1;
	} else {
	    return ADDR_ERR_LOCALPART;
	}
    }
    if (unq && !str_try_append(unq, p, len))
	return ADDR_ERR_LOCALPART_TOO_LONG;
    return ADDR_OK;
}

/* domain_check - validate a domain name (not a literal) */
static enum address_error domain_check(const char *p, size_t len, unsigned flags)
{
    const unsigned char *u = (const unsigned char *) p;
    enum address_error err;
    size_t i, n, label_start = 0;
    bool numeric = true;

    if ((err = check_8bit(p, len, flags)) != ADDR_OK)
	return err;
    if (len == 0)
	return ADDR_ERR_DOMAIN;
    if (len > ADDR_HOSTNAME_MAX)
	return ADDR_ERR_DOMAIN_TOO_LONG;
    for (i = 0; i <= len; i += n) {
	if (i == len || u[i] == '.') {
	    /* End of a label: 1..63 octets, no hyphen at either end. */
	    if (i == label_start || i - label_start > ADDR_LABEL_MAX
		|| u[label_start] == '-' || u[i - 1] == '-')
		return ADDR_ERR_DOMAIN;
	    if (i == len)
		break;
	    label_start = i + 1;
	    numeric = true;
	    n = 1;
	} else if (u[i] >= 0x80) {
	    if ((n = utf8_seqlen(u + i, len - i)) < 2)
		return ADDR_ERR_UTF8;
	    numeric = false;
	} else if (is_alpha(u[i]) || u[i] == '-') {
	    numeric = false;
	    n = 1;
	} else if (is_digit(u[i])) {
	    n = 1;
	} else {
	    return ADDR_ERR_DOMAIN;
	}
    }
    if (numeric)
	return ADDR_ERR_DOMAIN;			/* "1.2.3.4": no top-level is numeric */
    return ADDR_OK;
}

/* ipv4_check - RFC 5321 IPv4-address-literal (no brackets) */
static bool ipv4_check(const char *p, size_t len)
{
    size_t i = 0, digits;
    int part, value;

    for (part = 0; part < 4; part++) {
	if (part > 0) {
	    if (i >= len || p[i] != '.')
		return false;
	    i++;
	}
	for (digits = 0, value = 0; i < len && is_digit((unsigned char) p[i]); i++, digits++) {
	    if (digits == 3)
		return false;
	    value = value * 10 + (p[i] - '0');
	}
	if (digits == 0 || value > 255)
	    return false;
    }
    return i == len;
}

/* ipv6_groups - "h(:h)*" with an optional IPv4 tail (if v4_ok); counts
 * the hex groups. An empty string is zero groups. */
static bool ipv6_groups(const char *p, size_t len, bool v4_ok, size_t *count, bool *v4)
{
    size_t i = 0, start, j;

    *count = 0;
    *v4 = false;
    if (len == 0)
	return true;
    for (;;) {
	start = i;
	while (i < len && p[i] != ':')
	    i++;
	/* The last element may be an IPv4 address. */
	if (i == len && v4_ok && memchr(p + start, '.', i - start) != NULL) {
	    *v4 = true;
	    return ipv4_check(p + start, i - start);
	}
	if (i == start || i - start > 4)
	    return false;
	for (j = start; j < i; j++)
	    if (!is_hex((unsigned char) p[j]))
		return false;
	(*count)++;
	if (i == len)
	    return true;
	i++;					/* the ':' */
	if (i == len)
	    return false;			/* trailing ':' */
    }
}

/* ipv6_check - RFC 5321 IPv6-addr (after "IPv6:") */
static bool ipv6_check(const char *p, size_t len)
{
    const char *dc = NULL;
    size_t i, left, right;
    bool v4l, v4r;

    for (i = 0; i + 1 < len; i++) {
	if (p[i] == ':' && p[i + 1] == ':') {
	    if (dc)
		return false;			/* two "::" */
	    dc = p + i;
	    i++;
	}
    }
    if (dc == NULL) {
	if (!ipv6_groups(p, len, true, &left, &v4l))
	    return false;
	return v4l ? left == 6 : left == 8;
    }
    if (!ipv6_groups(p, (size_t) (dc - p), false, &left, &v4l)
	|| !ipv6_groups(dc + 2, len - (size_t) (dc - p) - 2, true, &right, &v4r))
	return false;
    /* "::" stands for at least two groups of zeros. */
    return left + right <= (v4r ? 4 : 6);
}

/* literal_check - an address literal including the brackets */
static enum address_error literal_check(const char *p, size_t len)
{
    const char *colon;
    size_t i, tag_len;

    if (len < 3 || p[0] != '[' || p[len - 1] != ']')
	return ADDR_ERR_LITERAL;
    p++, len -= 2;
    if ((colon = memchr(p, ':', len)) == NULL)
	return ipv4_check(p, len) ? ADDR_OK : ADDR_ERR_LITERAL;
    tag_len = (size_t) (colon - p);
    if (tag_len == 4 && ascii_caseeq_n(p, "IPv6", 4))
	return ipv6_check(colon + 1, len - 5) ? ADDR_OK : ADDR_ERR_LITERAL;
    /* General-address-literal: Ldh-str ":" 1*dcontent */
    if (tag_len == 0 || p[tag_len - 1] == '-')
	return ADDR_ERR_LITERAL;
    for (i = 0; i < tag_len; i++)
	if (!is_alpha((unsigned char) p[i]) && !is_digit((unsigned char) p[i]) && p[i] != '-')
	    return ADDR_ERR_LITERAL;
    if (tag_len + 1 == len)
	return ADDR_ERR_LITERAL;
    for (i = tag_len + 1; i < len; i++) {
	unsigned char c = (unsigned char) p[i];

	/* dcontent (RFC 5321 4.1.3) would allow "@"; refused, so that the
	 * domain of every address is what follows its last "@" */
	if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']' || c == '@')
	    return ADDR_ERR_LITERAL;
    }
    return ADDR_OK;
}

/* address_fini - release a parsed address */
void address_fini(struct address *addr)
{
    mem_free(&addr->localpart);
    mem_free(&addr->domain);
    mem_free(&addr->domain_lc);
    mem_free(&addr->route);
    addr->flags = 0;
    addr->rest = NULL;
    addr->rest_len = 0;
}

/* route_check - "@dom(,@dom)*" (without the ':') */
static enum address_error route_check(const char *p, size_t len, unsigned flags)
{
    size_t i = 0, start;

    for (;;) {
	if (i >= len || p[i] != '@')
	    return ADDR_ERR_ROUTE;
	start = ++i;
	while (i < len && p[i] != ',')
	    i++;
	if (domain_check(p + start, i - start, flags) != ADDR_OK)
	    return ADDR_ERR_ROUTE;
	if (i == len)
	    return ADDR_OK;
	i++;					/* the ',' */
    }
}

/* address_parse - parse a MAIL FROM/RCPT TO path (see address.h) */
enum address_error address_parse(const char *line, size_t len, unsigned flags,
				 const struct address_limits *limits,
				 struct address *addr)
{
    size_t local_max = ADDR_LOCALPART_MAX, domain_max = ADDR_DOMAIN_MAX, path_max = ADDR_PATH_MAX;
    size_t i = 0, path_start, lp_start, lp_end, dom_start, dom_end, route_start = 0, route_end = 0;
    bool bracket, have_route = false;
    enum address_error err;
    struct str unq;

    memset(addr, 0, sizeof(*addr));
    if (limits) {
	if (limits->localpart_max)
	    local_max = limits->localpart_max;
	if (limits->domain_max)
	    domain_max = limits->domain_max;
	if (limits->path_max)
	    path_max = limits->path_max;
    }

    /* Leading spaces ("MAIL FROM: <a@b>") are common and harmless. */
    while (i < len && line[i] == ' ')
	i++;
    if (i == len)
	return ADDR_ERR_EMPTY;
    path_start = i;
    bracket = line[i] == '<';
    if (bracket) {
	i++;
    } else if (!(flags & ADDR_PARSE_NO_BRACKETS)) {
	return ADDR_ERR_NO_BRACKETS;
    }

/* at_end - the path ends at i */
#define at_end(i) (bracket ? ((i) < len && line[i] == '>') : ((i) == len || line[i] == ' '))

    /* "<>" */
    if (bracket && at_end(i)) {
	if (!(flags & ADDR_PARSE_MAIL))
	    return ADDR_ERR_NULL_NOT_ALLOWED;
	addr->flags |= ADDR_FLAG_NULL;
	addr->localpart = mem_strdup("");
	addr->domain = mem_strdup("");
	addr->domain_lc = mem_strdup("");
	i++;
	goto rest;
    }

    /* Source route: A-d-l ":" */
    if (i < len && line[i] == '@') {
	route_start = i;
	while (i < len && line[i] != ':' && !at_end(i))
	    i++;
	if (i >= len || line[i] != ':')
	    return ADDR_ERR_ROUTE;
	route_end = i;
	if ((err = route_check(line + route_start, route_end - route_start, flags)) != ADDR_OK)
	    return err;
	have_route = true;
	i++;
    }

    /* Local part: a quoted string, or up to "@" or the end of the path. */
    lp_start = i;
    if (i < len && line[i] == '"') {
	for (i++; i < len && line[i] != '"'; i++)
	    if (line[i] == '\\' && i + 1 < len)
		i++;
	if (i >= len)
	    return ADDR_ERR_LOCALPART;		/* no closing quote */
	i++;
    } else {
	while (i < len && line[i] != '@' && !at_end(i))
	    i++;
    }
    lp_end = i;
    if (lp_end - lp_start > local_max)
	return ADDR_ERR_LOCALPART_TOO_LONG;

    if (i < len && line[i] == '@') {
	/* Domain or address literal. */
	dom_start = ++i;
	if (i < len && line[i] == '[') {
	    while (i < len && line[i] != ']')
		i++;
	    if (i < len)
		i++;
	} else {
	    while (i < len && !at_end(i))
		i++;
	}
	dom_end = i;
	if (dom_end == dom_start) {
	    if ((err = localpart_check(line + lp_start, lp_end - lp_start, flags, NULL)) != ADDR_OK)
		return err;
	    return ADDR_ERR_NO_DOMAIN;
	}
	if (dom_end - dom_start > domain_max)
	    return ADDR_ERR_DOMAIN_TOO_LONG;
	str_init(&unq, local_max);
	if ((err = localpart_check(line + lp_start, lp_end - lp_start, flags, &unq)) != ADDR_OK) {
	    str_fini(&unq);
	    return err;
	}
	if (line[dom_start] == '[') {
	    err = literal_check(line + dom_start, dom_end - dom_start);
	    if (err == ADDR_OK)
		addr->flags |= ADDR_FLAG_LITERAL;
	} else {
	    err = domain_check(line + dom_start, dom_end - dom_start, flags);
	}
	if (err != ADDR_OK) {
	    str_fini(&unq);
	    return err;
	}
	if (!at_end(i)) {
	    str_fini(&unq);
	    return ADDR_ERR_SYNTAX;
	}
	addr->localpart = mem_strndup(str_cstr(&unq), str_len(&unq));
	str_fini(&unq);
	addr->domain = mem_strndup(line + dom_start, dom_end - dom_start);
	addr->domain_lc = mem_strdup(addr->domain);
	for (char *cp = addr->domain_lc; *cp; cp++)
	    *cp = (char) ascii_lower((unsigned char) *cp);
    } else if (at_end(i)) {
	/* No domain: only "<postmaster>" (RFC 5321 4.5.1), RCPT only. */
	if ((err = localpart_check(line + lp_start, lp_end - lp_start, flags, NULL)) != ADDR_OK)
	    return err;
	if (!have_route && (flags & ADDR_PARSE_RCPT) && lp_end - lp_start == 10
	    && ascii_caseeq_n(line + lp_start, "postmaster", 10)) {
	    addr->flags |= ADDR_FLAG_POSTMASTER;
	    addr->localpart = mem_strndup(line + lp_start, 10);
	    addr->domain = mem_strdup("");
	    addr->domain_lc = mem_strdup("");
	} else {
	    return ADDR_ERR_NO_DOMAIN;
	}
    } else if (i >= len) {
	/* "<user" - the path never ends. */
	if (lp_end > lp_start
	    && (err = localpart_check(line + lp_start, lp_end - lp_start, flags, NULL)) != ADDR_OK)
	    return err;
	return ADDR_ERR_SYNTAX;
    } else {
	return ADDR_ERR_LOCALPART;		/* e.g. junk after a quoted string */
    }
    if (line[lp_start] == '"')
	addr->flags |= ADDR_FLAG_QUOTED;
    if (have_route) {
	addr->flags |= ADDR_FLAG_SOURCE_ROUTE;
	addr->route = mem_strndup(line + route_start, route_end - route_start);
    }
    if (bracket)
	i++;					/* the ">" */

rest:
    /* Path length, counting "<" and ">" even when they were missing. */
    if (i - path_start + (bracket ? 0 : 2) > path_max) {
	address_fini(addr);
	return ADDR_ERR_PATH_TOO_LONG;
    }
    /* After the path: the end, or SP and parameters. */
    if (i < len && line[i] != ' ') {
	address_fini(addr);
	return ADDR_ERR_SYNTAX;
    }
    while (i < len && line[i] == ' ')
	i++;
    if (!bracket)
	addr->flags |= ADDR_FLAG_NO_BRACKETS;
    if (check_8bit(line + path_start, i - path_start, 0) != ADDR_OK)
	addr->flags |= ADDR_FLAG_UTF8;
    addr->rest = line + i;
    addr->rest_len = len - i;
    return ADDR_OK;
#undef at_end
}

/* address_quote - external form of an unquoted local part */
bool address_quote(struct str *out, const char *localpart, size_t len, bool utf8)
{
    const unsigned char *u = (const unsigned char *) localpart;
    size_t i, n;

    if (localpart_check(localpart, len, utf8 ? ADDR_PARSE_SMTPUTF8 : 0, NULL) == ADDR_OK
	&& u[0] != '"')
	return str_try_append(out, localpart, len);
    if (!str_try_appendc(out, '"'))
	return false;
    for (i = 0; i < len; i += n) {
	if (u[i] >= 0x80) {
	    if (!utf8 || (n = utf8_seqlen(u + i, len - i)) < 2)
		return false;
	    if (!str_try_append(out, localpart + i, n))
		return false;
	    continue;
	}
	n = 1;
	if (u[i] < 32 || u[i] > 126)
	    return false;
	if ((u[i] == '"' || u[i] == '\\') && !str_try_appendc(out, '\\'))
	    return false;
	if (!str_try_appendc(out, localpart[i]))
	    return false;
    }
    return str_try_appendc(out, '"');
}

/* address_unquote - unquoted form of a local part as sent */
bool address_unquote(struct str *out, const char *localpart, size_t len, bool utf8)
{
    return localpart_check(localpart, len, utf8 ? ADDR_PARSE_SMTPUTF8 : 0, out) == ADDR_OK;
}

/* address_external - "local@domain", local part quoted as needed */
bool address_external(struct str *out, const struct address *addr)
{
    bool utf8 = (addr->flags & ADDR_FLAG_UTF8) != 0;

    if (addr->flags & ADDR_FLAG_NULL)
	return true;
    if (addr->flags & ADDR_FLAG_POSTMASTER)
	return str_try_appends(out, addr->localpart);
    return address_quote(out, addr->localpart, strlen(addr->localpart), utf8)
	&& str_try_appendc(out, '@') && str_try_appends(out, addr->domain);
}

/* valid_domain - a domain name */
bool valid_domain(const char *name, size_t len, unsigned flags)
{
    return domain_check(name, len, flags) == ADDR_OK;
}

/* address_at - the separating "@" of an internal-form address */
const char *address_at(const char *addr, size_t len)
{
    return memrchr(addr, '@', len);
}

/* valid_literal - an address literal with brackets */
bool valid_literal(const char *lit, size_t len)
{
    return literal_check(lit, len) == ADDR_OK;
}

/* valid_hostname - HELO/EHLO argument: domain or address literal */
bool valid_hostname(const char *name, size_t len, unsigned flags)
{
    if (len > 0 && name[0] == '[')
	return len <= ADDR_DOMAIN_MAX && valid_literal(name, len);
    return valid_domain(name, len, flags);
}

/* valid_localpart - a local part as sent, at most 64 octets */
bool valid_localpart(const char *local, size_t len, unsigned flags)
{
    return len <= ADDR_LOCALPART_MAX && localpart_check(local, len, flags, NULL) == ADDR_OK;
}

/* domain_is_fqdn - has a dot that separates two non-empty labels */
bool domain_is_fqdn(const char *domain)
{
    const char *dot = strchr(domain, '.');

    return dot != NULL && dot != domain && dot[1] != 0;
}

/* address_is_percent_hack - local part holds "%" */
bool address_is_percent_hack(const char *localpart)
{
    return strchr(localpart, '%') != NULL;
}

/* address_has_bang_path - local part holds "!" */
bool address_has_bang_path(const char *localpart)
{
    return strchr(localpart, '!') != NULL;
}

/* domain_in_list - list membership (see address.h) */
bool domain_in_list(const char *domain, const char *list, unsigned flags)
{
    static const char sep[] = ", \t\r\n";
    size_t dlen = strlen(domain), elen;
    const char *e;

    if (dlen == 0)
	return false;
    for (e = list; *e; e += elen) {
	e += strspn(e, sep);
	if ((elen = strcspn(e, sep)) == 0)
	    break;
	if (e[0] == '.') {
	    /* ".example.com": strict subdomains */
	    if (elen > 1 && dlen > elen && ascii_caseeq_n(domain + dlen - elen, e, elen))
		return true;
	    continue;
	}
	if (elen == dlen && ascii_caseeq_n(domain, e, elen))
	    return true;
	if ((flags & DOMAIN_MATCH_PARENT) && dlen > elen + 1
	    && domain[dlen - elen - 1] == '.'
	    && ascii_caseeq_n(domain + dlen - elen, e, elen))
	    return true;
    }
    return false;
}

/* address_split_delimiter - "user+tag" -> "user", "tag" */
bool address_split_delimiter(const char *localpart, const char *delims,
			     size_t *base_len_r, const char **ext_r)
{
    size_t pos, len;

    if (delims == NULL || *delims == 0 || *localpart == 0)
	return false;
    pos = strcspn(localpart, delims);
    len = strlen(localpart);
    if (pos == len || pos == 0)
	return false;
    if (localpart[pos] == '-'
	&& ((pos == 5 && ascii_caseeq_n(localpart, "owner", 5))
	    || (len - pos == 8 && ascii_caseeq_n(localpart + pos, "-request", 8))))
	return false;
    *base_len_r = pos;
    *ext_r = localpart + pos + 1;
    return true;
}
