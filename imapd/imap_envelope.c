/* imap_envelope.c - FETCH ENVELOPE (RFC 3501 7.4.2): the date, subject,
 * address lists (RFC 5322 mailboxes and groups, parsed tolerantly, as
 * Dovecot does: a mailbox without a domain gets "MISSING_DOMAIN") and
 * message ids of a message header; and the IMAP string writer the
 * message layer uses for every nstring it sends. */

#include <string.h>

/* base */
#include "mem.h"
#include "str.h"

/* this program */
#include "imap_msg.h"
#include "imap_msg_int.h"

#define QUOTED_MAX	1024	/* longer strings go as literals */
#define ADDR_MAX	10000	/* addresses (and group marks) in a list */

/* imap_msg_append_nstring - an IMAP string or NIL */
bool imap_msg_append_nstring(struct str *out, const char *s, size_t len)
{
    bool quote = len < QUOTED_MAX;
    size_t start;

    if (s == NULL)
	return str_try_appends(out, "NIL");
    for (size_t i = 0; i < len && quote; i++) {
	unsigned char c = (unsigned char) s[i];

	if (c >= 0x80 || c == '\r' || c == '\n' || c == 0 || c == '"' || c == '\\')
	    quote = false;
    }
    if (quote)
	return str_try_appendc(out, '"') && str_try_append(out, s, len) && str_try_appendc(out, '"');
    if (!str_try_appendf(out, "{%zu}\r\n", len))
	return false;
    start = str_len(out);
    if (!str_try_append(out, s, len))
	return false;
    for (size_t i = start; i < str_len(out); i++)
	if (out->data[i] == 0)
	    out->data[i] = ' ';
    return true;
}

/* ------------------------------------------------------------------ */
/* Address lists */

struct aparse {
    const char *v;
    size_t len, i;
    struct str *comment;	/* the last comment's text */
};

/* ap_skip - white space and comments (the last one's text kept) */
static void ap_skip(struct aparse *ap)
{
    while (ap->i < ap->len) {
	char c = ap->v[ap->i];

	if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
	    ap->i++;
	} else if (c == '(') {
	    int depth = 1;

	    str_reset(ap->comment);
	    ap->i++;
	    while (ap->i < ap->len && depth > 0) {
		c = ap->v[ap->i++];
		if (c == '\\' && ap->i < ap->len)
		    c = ap->v[ap->i++];
		else if (c == '(')
		    depth++;
		else if (c == ')' && --depth == 0)
		    break;
		if (!str_try_appendc(ap->comment, c))
		    break;
	    }
	} else {
	    return;
	}
    }
}

/* is_special - RFC 5322 specials that end an atom (not "." here: an
 * obsolete phrase may hold dots, and a local part is words and dots) */
static bool is_special(char c)
{
    return c == '(' || c == ')' || c == '<' || c == '>' || c == '@' || c == ','
	|| c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' || c == ']'
	|| c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ap_word - an atom (dots included) or a quoted string, appended to
 * out; false at a special */
static bool ap_word(struct aparse *ap, struct str *out)
{
    size_t s = ap->i;

    if (ap->i < ap->len && ap->v[ap->i] == '"') {
	ap->i++;
	while (ap->i < ap->len && ap->v[ap->i] != '"') {
	    if (ap->v[ap->i] == '\\' && ap->i + 1 < ap->len)
		ap->i++;
	    if (!str_try_appendc(out, ap->v[ap->i]))
		return false;
	    ap->i++;
	}
	if (ap->i < ap->len)
	    ap->i++;
	return true;
    }
    while (ap->i < ap->len && !is_special(ap->v[ap->i]))
	ap->i++;
    if (ap->i == s)
	return false;
    return str_try_append(out, ap->v + s, ap->i - s);
}

/* ap_phrase - words up to a special, joined by single spaces */
static bool ap_phrase(struct aparse *ap, struct str *out)
{
    bool any = false;

    str_reset(out);
    for (;;) {
	size_t mark;

	ap_skip(ap);
	mark = str_len(out);
	if (any && !str_try_appendc(out, ' '))
	    return any;
	if (!ap_word(ap, out)) {
	    (void) str_truncate(out, mark);
	    return any;
	}
	any = true;
    }
}

/* ap_domain - a domain: words and dots, or a [literal] */
static void ap_domain(struct aparse *ap, struct str *out)
{
    str_reset(out);
    for (;;) {
	ap_skip(ap);
	if (ap->i < ap->len && ap->v[ap->i] == '[') {
	    size_t s = ap->i;

	    while (ap->i < ap->len && ap->v[ap->i] != ']')
		ap->i++;
	    if (ap->i < ap->len)
		ap->i++;
	    if (!str_try_append(out, ap->v + s, ap->i - s))
		return;
	} else if (!ap_word(ap, out)) {
	    return;
	}
	ap_skip(ap);
	if (ap->i < ap->len && ap->v[ap->i] == '.') {
	    ap->i++;
	    if (!str_try_appendc(out, '.'))
		return;
	}
    }
}

/* emit - one address (name adl mailbox host) */
static bool emit(struct str *out, const char *name, const char *adl, const char *mbox,
		 const char *host)
{
    return str_try_appendc(out, '(')
	&& imap_msg_append_nstring(out, name, name ? strlen(name) : 0)
	&& str_try_appendc(out, ' ')
	&& imap_msg_append_nstring(out, adl, adl ? strlen(adl) : 0)
	&& str_try_appendc(out, ' ')
	&& imap_msg_append_nstring(out, mbox, mbox ? strlen(mbox) : 0)
	&& str_try_appendc(out, ' ')
	&& imap_msg_append_nstring(out, host, host ? strlen(host) : 0)
	&& str_try_appendc(out, ')');
}

/* Scratch strings of one envelope's list parses (made once per
 * envelope: six lists of five strings each were 60 allocations) */
struct abuf {
    struct str *phrase, *route, *local, *domain, *comment;
};

/* ap_mailbox - one mailbox at ap->i (after the phrase was read into
 * b->phrase); appends it; false on output overflow */
static bool ap_mailbox(struct aparse *ap, struct abuf *b, size_t mark, struct str *out,
		       size_t *count)
{
    const char *name = str_len(b->phrase) ? str_cstr(b->phrase) : NULL;
    bool ok, angle = ap->i < ap->len && ap->v[ap->i] == '<';

    str_reset(b->route);
    str_reset(b->local);
    str_reset(b->domain);
    if (ap->i < ap->len && ap->v[ap->i] == '<') {
	/* name-addr: [route:] local@domain > */
	ap->i++;
	ap_skip(ap);
	if (ap->i < ap->len && ap->v[ap->i] == '@') {
	    size_t s = ap->i;

	    while (ap->i < ap->len && ap->v[ap->i] != ':' && ap->v[ap->i] != '>')
		ap->i++;
	    if (ap->i < ap->len && ap->v[ap->i] == ':') {
		if (!str_try_append(b->route, ap->v + s, ap->i - s))
		    return false;
		ap->i++;
	    } else {
		ap->i = s;
	    }
	}
	for (;;) {		/* local part: words and dots */
	    ap_skip(ap);
	    if (ap->i < ap->len && ap->v[ap->i] == '.') {
		ap->i++;
		if (!str_try_appendc(b->local, '.'))
		    return false;
	    } else if (!ap_word(ap, b->local)) {
		break;
	    }
	}
	if (ap->i < ap->len && ap->v[ap->i] == '@') {
	    ap->i++;
	    ap_domain(ap, b->domain);
	}
	while (ap->i < ap->len && ap->v[ap->i] != '>' && ap->v[ap->i] != ','
	       && ap->v[ap->i] != ';')
	    ap->i++;
	if (ap->i < ap->len && ap->v[ap->i] == '>')
	    ap->i++;
	str_reset(ap->comment);
	ap_skip(ap);		/* a comment after ">" is not the name */
    } else {
	/* addr-spec: read again from mark, as a local part */
	ap->i = mark;
	for (;;) {
	    ap_skip(ap);
	    if (ap->i < ap->len && ap->v[ap->i] == '.') {
		ap->i++;
		if (!str_try_appendc(b->local, '.'))
		    return false;
	    } else if (!ap_word(ap, b->local)) {
		break;
	    }
	}
	str_reset(ap->comment);
	if (ap->i < ap->len && ap->v[ap->i] == '@') {
	    ap->i++;
	    ap_domain(ap, b->domain);
	}
	ap_skip(ap);
	name = str_len(ap->comment) ? str_cstr(ap->comment) : NULL;
    }
    if (!angle && str_len(b->local) == 0 && str_len(b->domain) == 0 && name == NULL)
	return true;		/* nothing there */
    (*count)++;
    ok = emit(out, name, str_len(b->route) ? str_cstr(b->route) : NULL,
	      str_len(b->local) ? str_cstr(b->local) : "MISSING_MAILBOX",
	      str_len(b->domain) ? str_cstr(b->domain) : "MISSING_DOMAIN");
    return ok;
}

/* skip_junk - move to the next "," or ";" (or the end) */
static void skip_junk(struct aparse *ap)
{
    while (ap->i < ap->len && ap->v[ap->i] != ',' && ap->v[ap->i] != ';')
	ap->i++;
}

/* address_list - append "(addr addr ...)" or NIL for the value v */
static bool address_list(const char *v, size_t len, struct abuf *bp, struct str *out,
			 size_t *count_r)
{
    struct aparse ap = {.v = v, .len = len, .i = 0};
    struct abuf b = *bp;
    size_t start = str_len(out), count = 0, guard = 0, mark;
    bool in_group = false, ok = true;

    ap.comment = b.comment;
    str_reset(ap.comment);
    str_reset(b.phrase);
    str_reset(b.route);
    str_reset(b.local);
    str_reset(b.domain);
    ok = str_try_appendc(out, '(');
    while (ok && ap.i < ap.len && count < ADDR_MAX && guard++ < len + 1) {
	size_t before = ap.i;

	ap_skip(&ap);
	if (ap.i >= ap.len)
	    break;
	if (ap.v[ap.i] == ',') {
	    ap.i++;
	    continue;
	}
	if (ap.v[ap.i] == ';') {
	    ap.i++;
	    if (in_group) {
		ok = emit(out, NULL, NULL, NULL, NULL);
		count++;
		in_group = false;
	    }
	    continue;
	}
	mark = ap.i;
	(void) ap_phrase(&ap, b.phrase);
	ap_skip(&ap);
	if (ap.i < ap.len && ap.v[ap.i] == ':' && !in_group) {
	    ap.i++;
	    ok = emit(out, NULL, NULL, str_cstr(b.phrase), NULL);
	    count++;
	    in_group = true;
	    continue;
	}
	ok = ap_mailbox(&ap, &b, mark, out, &count);
	ap_skip(&ap);
	if (ap.i < ap.len && ap.v[ap.i] != ',' && ap.v[ap.i] != ';')
	    skip_junk(&ap);
	if (ap.i == before)
	    ap.i++;		/* never stand still */
    }
    if (ok && in_group) {
	ok = emit(out, NULL, NULL, NULL, NULL);
	count++;
    }
    ok = ok && str_try_appendc(out, ')');
    if (ok && count == 0) {
	(void) str_truncate(out, start);
	ok = str_try_appends(out, "NIL");
    }
    *count_r = count;
    return ok;
}

/* ------------------------------------------------------------------ */
/* The envelope */

/* The fields of an envelope, in its order. */
enum { E_DATE, E_SUBJECT, E_FROM, E_SENDER, E_REPLY_TO, E_TO, E_CC, E_BCC, E_IN_REPLY_TO,
       E_MESSAGE_ID, E_COUNT };
static const char *const env_names[E_COUNT] = {
    "Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "In-Reply-To",
    "Message-ID",
};

/* field_nstring - the unfolded value of a field, or NIL */
static bool field_nstring(const struct imap_field *f, struct str *tmp, struct str *out)
{
    if (f->name == NULL)
	return str_try_appends(out, "NIL");
    imap_hdr_unfold(f->value, f->value_len, IMAP_MSG_FIELD_MAX, tmp);
    return imap_msg_append_nstring(out, str_cstr(tmp), str_len(tmp));
}

/* field_addresses - the address list of a field; when it is absent or
 * empty, fallback's (if not NULL) */
static bool field_addresses(const struct imap_field *f, const struct imap_field *fallback,
			    struct abuf *b, struct str *tmp, struct str *out)
{
    size_t count = 0, start = str_len(out);

    if (f->name != NULL) {
	imap_hdr_unfold(f->value, f->value_len, IMAP_MSG_FIELD_MAX, tmp);
	if (!address_list(str_cstr(tmp), str_len(tmp), b, out, &count))
	    return false;
	if (count > 0 || !fallback)
	    return true;
	(void) str_truncate(out, start);
    }
    if (fallback)
	return field_addresses(fallback, NULL, b, tmp, out);
    return str_try_appends(out, "NIL");
}

/* envelope - the ENVELOPE of the header h[0..hlen): one pass finds the
 * first instance of each field */
static bool envelope(const char *h, size_t hlen, struct str *out)
{
    struct imap_field fields[E_COUNT], f;
    struct str *tmp = str_new(IMAP_MSG_FIELD_MAX);
    struct abuf b;
    size_t pos = 0;
    bool ok;

    b.comment = str_new(IMAP_MSG_FIELD_MAX);
    b.phrase = str_new(IMAP_MSG_FIELD_MAX);
    b.route = str_new(IMAP_MSG_FIELD_MAX);
    b.local = str_new(IMAP_MSG_FIELD_MAX);
    b.domain = str_new(IMAP_MSG_FIELD_MAX);

    memset(fields, 0, sizeof(fields));
    while (imap_hdr_next(h, hlen, &pos, &f))
	for (int i = 0; i < E_COUNT; i++)
	    if (fields[i].name == NULL && imap_name_eq(f.name, f.name_len, env_names[i])) {
		fields[i] = f;
		break;
	    }
    ok = str_try_appendc(out, '(')
	&& field_nstring(&fields[E_DATE], tmp, out) && str_try_appendc(out, ' ')
	&& field_nstring(&fields[E_SUBJECT], tmp, out) && str_try_appendc(out, ' ')
	&& field_addresses(&fields[E_FROM], NULL, &b, tmp, out) && str_try_appendc(out, ' ')
	&& field_addresses(&fields[E_SENDER], &fields[E_FROM], &b, tmp, out) && str_try_appendc(out, ' ')
	&& field_addresses(&fields[E_REPLY_TO], &fields[E_FROM], &b, tmp, out) && str_try_appendc(out, ' ')
	&& field_addresses(&fields[E_TO], NULL, &b, tmp, out) && str_try_appendc(out, ' ')
	&& field_addresses(&fields[E_CC], NULL, &b, tmp, out) && str_try_appendc(out, ' ')
	&& field_addresses(&fields[E_BCC], NULL, &b, tmp, out) && str_try_appendc(out, ' ')
	&& field_nstring(&fields[E_IN_REPLY_TO], tmp, out) && str_try_appendc(out, ' ')
	&& field_nstring(&fields[E_MESSAGE_ID], tmp, out) && str_try_appendc(out, ')');
    str_free(&tmp);
    str_free(&b.comment);
    str_free(&b.phrase);
    str_free(&b.route);
    str_free(&b.local);
    str_free(&b.domain);
    return ok;
}

/* imap_msg_envelope - ENVELOPE of a message buffer */
bool imap_msg_envelope(const char *data, size_t len, struct str *out)
{
    return envelope(data, imap_hdr_len(data, len), out);
}

/* imap_part_envelope - ENVELOPE of a message/rfc822 part */
bool imap_part_envelope(const struct imap_msg *m, const struct imap_part *p, struct str *out)
{
    const struct imap_part *mp = p->is_message ? p->children : p;

    return envelope(m->data + mp->hdr_off, mp->hdr_len, out);
}
