/* imap_section.c - BODY[section]<origin.count> (RFC 3501 6.4.5): parse
 * and format a section text, and find its bytes in a parsed message
 * as a raw range (streamed through struct imap_wire) or, for
 * HEADER.FIELDS(.NOT), a header built in wire form. Where RFC 3501
 * leaves a choice we do what Dovecot does (tests compare the two). */

#include <ctype.h>
#include <string.h>

/* base */
#include "errtext.h"
#include "mem.h"
#include "str.h"

/* this program */
#include "imap_msg.h"
#include "imap_msg_int.h"

/* kw - the keyword kw (any case) at t[*i..len), then *i moves past it */
static bool kw(const char *t, size_t len, size_t *i, const char *word)
{
    size_t n = strlen(word);

    if (len - *i < n || strncasecmp(t + *i, word, n) != 0)
	return false;
    *i += n;
    return true;
}

/* is_atom_char - ATOM-CHAR of RFC 3501 (plus "]" excluded: we are in a section) */
static bool is_atom_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

/* field_list - "(" name *(SP name) ")" into sec->fields */
static int field_list(const char *t, size_t len, size_t *i, struct imap_section *sec,
		      const char **error_r)
{
    struct str *name = str_new(1024);
    int ret = -1;

    if (*i >= len || t[*i] != ' ') {
	*error_r = errtext_set(&imap_msg_errtext, "HEADER.FIELDS needs a list of field names");
	goto out;
    }
    (*i)++;
    if (*i >= len || t[*i] != '(') {
	*error_r = errtext_set(&imap_msg_errtext, "HEADER.FIELDS needs a list of field names");
	goto out;
    }
    (*i)++;
    for (;;) {
	str_reset(name);
	if (*i < len && t[*i] == '"') {
	    (*i)++;
	    while (*i < len && t[*i] != '"') {
		if (t[*i] == '\\' && *i + 1 < len)
		    (*i)++;
		if (!str_try_appendc(name, t[*i]))
		    break;
		(*i)++;
	    }
	    if (*i >= len) {
		*error_r = errtext_set(&imap_msg_errtext, "unterminated quoted field name");
		goto out;
	    }
	    (*i)++;
	} else {
	    size_t s = *i;

	    while (*i < len && is_atom_char((unsigned char) t[*i]) && t[*i] != ')')
		(*i)++;
	    if (*i == s || !str_try_append(name, t + s, *i - s)) {
		*error_r = errtext_set(&imap_msg_errtext, "bad field name in HEADER.FIELDS");
		goto out;
	    }
	}
	if (sec->n_fields >= IMAP_SECTION_MAX_FIELDS) {
	    *error_r = errtext_set(&imap_msg_errtext, "too many field names");
	    goto out;
	}
	sec->fields = mem_realloc(sec->fields, (sec->n_fields + 1) * sizeof(char *));
	sec->fields[sec->n_fields++] = mem_strndup(str_cstr(name), str_len(name));
	if (*i < len && t[*i] == ')') {
	    (*i)++;
	    break;
	}
	if (*i >= len || t[*i] != ' ') {
	    *error_r = errtext_set(&imap_msg_errtext, "bad HEADER.FIELDS list");
	    goto out;
	}
	(*i)++;
    }
    ret = 0;
  out:
    str_free(&name);
    return ret;
}

/* imap_section_parse - the text between "[" and "]" */
int imap_section_parse(const char *t, size_t len, struct imap_section *sec, const char **error_r)
{
    size_t i = 0;

    memset(sec, 0, sizeof(*sec));
    sec->kind = IMAP_SECTION_ALL;
    while (i < len && t[i] >= '0' && t[i] <= '9') {
	unsigned long n = 0;

	while (i < len && t[i] >= '0' && t[i] <= '9') {
	    n = n * 10 + (unsigned long) (t[i++] - '0');
	    if (n > 1000000000UL)
		goto bad;
	}
	if (n == 0) {
	    *error_r = errtext_set(&imap_msg_errtext, "section part number 0");
	    goto fail;
	}
	if (sec->path_len >= IMAP_SECTION_MAX_PATH) {
	    *error_r = errtext_set(&imap_msg_errtext, "section part number too deep");
	    goto fail;
	}
	sec->path[sec->path_len++] = (unsigned) n;
	if (i == len)
	    return 0;
	if (t[i] != '.')
	    goto bad;
	i++;
	if (i == len)
	    goto bad;		/* "1." */
    }
    if (i == len)
	return 0;		/* "" */
    if (kw(t, len, &i, "HEADER.FIELDS.NOT")) {
	sec->kind = IMAP_SECTION_HEADER_FIELDS_NOT;
	if (field_list(t, len, &i, sec, error_r) < 0)
	    goto fail;
    } else if (kw(t, len, &i, "HEADER.FIELDS")) {
	sec->kind = IMAP_SECTION_HEADER_FIELDS;
	if (field_list(t, len, &i, sec, error_r) < 0)
	    goto fail;
    } else if (kw(t, len, &i, "HEADER")) {
	sec->kind = IMAP_SECTION_HEADER;
    } else if (kw(t, len, &i, "TEXT")) {
	sec->kind = IMAP_SECTION_TEXT;
    } else if (kw(t, len, &i, "MIME")) {
	if (sec->path_len == 0) {
	    *error_r = errtext_set(&imap_msg_errtext, "MIME needs a part number");
	    goto fail;
	}
	sec->kind = IMAP_SECTION_MIME;
    } else {
	goto bad;
    }
    if (i != len)
	goto bad;
    return 0;
  bad:
    *error_r = errtext_set(&imap_msg_errtext, "bad section");
  fail:
    imap_section_fini(sec);
    return -1;
}

/* imap_section_fini - free the field names */
void imap_section_fini(struct imap_section *sec)
{
    for (size_t i = 0; i < sec->n_fields; i++)
	mem_free(&sec->fields[i]);
    mem_free(&sec->fields);
    sec->n_fields = 0;
}

/* imap_section_format - the canonical section text */
bool imap_section_format(const struct imap_section *sec, struct str *out)
{
    static const char *const names[] = {
	[IMAP_SECTION_ALL] = "", [IMAP_SECTION_HEADER] = "HEADER",
	[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
	[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
	[IMAP_SECTION_TEXT] = "TEXT", [IMAP_SECTION_MIME] = "MIME",
    };
    bool ok = true;

    for (size_t i = 0; ok && i < sec->path_len; i++)
	ok = str_try_appendf(out, "%s%u", i ? "." : "", sec->path[i]);
    if (ok && sec->kind != IMAP_SECTION_ALL)
	ok = (sec->path_len == 0 || str_try_appendc(out, '.'))
	    && str_try_appends(out, names[sec->kind]);
    if (ok && (sec->kind == IMAP_SECTION_HEADER_FIELDS
	       || sec->kind == IMAP_SECTION_HEADER_FIELDS_NOT)) {
	ok = str_try_appends(out, " (");
	for (size_t i = 0; ok && i < sec->n_fields; i++) {
	    const char *f = sec->fields[i];
	    bool atom = *f != 0;
	    size_t at;

	    for (const char *c = f; *c && atom; c++)
		atom = is_atom_char((unsigned char) *c);
	    ok = (i == 0 || str_try_appendc(out, ' '));
	    at = str_len(out);

	    if (ok && atom)
		ok = str_try_appends(out, f);
	    else if (ok)
		ok = imap_msg_append_nstring(out, f, strlen(f));
	    for (size_t k = at; ok && k < str_len(out); k++)	/* as Dovecot */
		if (out->data[k] >= 'a' && out->data[k] <= 'z')
		    out->data[k] = (char) (out->data[k] - 32);
	}
	ok = ok && str_try_appendc(out, ')');
    }
    return ok;
}

/* set_raw - the section is the raw range [off, off + len) */
static void set_raw(struct imap_section_data *sd, const struct imap_msg *m, size_t off,
		    size_t len, uint64_t wire_size)
{
    sd->data = m->data;
    sd->start = off;
    sd->end = off + len;
    sd->wire_size = wire_size;
}

/* wanted - is the field name[0..n) in the section's list */
static bool wanted(const struct imap_section *sec, const char *name, size_t n)
{
    for (size_t i = 0; i < sec->n_fields; i++)
	if (imap_name_eq(name, n, sec->fields[i]))
	    return true;
    return false;
}

/* build_fields - HEADER.FIELDS(.NOT) of the header h[0..hlen) */
static int build_fields(const char *h, size_t hlen, const struct imap_section *sec,
			struct imap_section_data *sd, const char **error_r)
{
    bool not = sec->kind == IMAP_SECTION_HEADER_FIELDS_NOT;
    struct str *b = str_new(IMAP_MSG_HEADER_MAX);
    size_t pos = 0;
    bool ended = false;		/* the header has its empty line */

    while (pos < hlen) {
	size_t start = pos, next, colon, nend;
	const char *nl;

	nl = memchr(h + pos, '\n', hlen - pos);
	next = nl ? (size_t) (nl - h) + 1 : hlen;
	if ((next - pos == 1 && h[pos] == '\n') || (next - pos == 2 && h[pos] == '\r')) {
	    ended = true;	/* the empty line */
	    break;
	}
	while (next < hlen && (h[next] == ' ' || h[next] == '\t')) {
	    nl = memchr(h + next, '\n', hlen - next);
	    next = nl ? (size_t) (nl - h) + 1 : hlen;
	}
	pos = next;
	colon = start;
	while (colon < next && h[colon] != ':' && h[colon] != '\n')
	    colon++;
	if (colon >= next || h[colon] != ':' || h[start] == ' ' || h[start] == '\t')
	    continue;
	nend = colon;
	while (nend > start && (h[nend - 1] == ' ' || h[nend - 1] == '\t'))
	    nend--;
	if (wanted(sec, h + start, nend - start) == not)
	    continue;
	/* copy the field in wire form; a last line without its line end
	 * gets one in HEADER.FIELDS, and stays as stored in .NOT (which
	 * copies the header as it is, as Dovecot does) */
	for (size_t k = start; k < next; k++) {
	    if (h[k] == '\n' && (k == start || h[k - 1] != '\r') && !str_try_appendc(b, '\r'))
		goto big;
	    if (!str_try_appendc(b, h[k]))
		goto big;
	}
	if (h[next - 1] != '\n' && !not && !str_try_append(b, "\r\n", 2))
	    goto big;
    }
    /* (Dovecot's: .NOT copies the header's end, FIELDS always ends
     * with an empty line) */
    if ((ended || !not) && !str_try_append(b, "\r\n", 2))
	goto big;
    sd->built = b;
    sd->data = str_cstr(b);
    sd->start = 0;
    sd->end = str_len(b);
    sd->wire_size = str_len(b);
    return 0;
  big:
    str_free(&b);
    *error_r = errtext_set(&imap_msg_errtext, "header too large");
    return -1;
}

/* imap_section_get - a section's bytes */
int imap_section_get(const struct imap_msg *m, const struct imap_section *sec,
		     struct imap_section_data *sd, const char **error_r)
{
    const struct imap_part *p, *q;

    memset(sd, 0, sizeof(*sd));
    sd->data = m->data;
    if (sec->path_len == 0) {
	p = &m->root->p;
	if (sec->kind == IMAP_SECTION_ALL) {
	    set_raw(sd, m, 0, m->len, m->wire_size);
	    return 0;
	}
	q = p;
    } else {
	p = imap_msg_part(m, sec->path, sec->path_len);
	if (p == NULL || imap_mpart_of(p)->synthetic)
	    return 0;		/* empty */
	if (sec->kind == IMAP_SECTION_ALL) {
	    set_raw(sd, m, p->body_off, p->body_len, p->body_size);
	    return 0;
	}
	if (sec->kind == IMAP_SECTION_MIME) {
	    set_raw(sd, m, p->hdr_off, p->hdr_len, p->hdr_size);
	    return 0;
	}
	if (!p->is_message)
	    return 0;		/* HEADER/TEXT of a part that is no message */
	q = p->children;
    }
    switch (sec->kind) {
    case IMAP_SECTION_HEADER:
	set_raw(sd, m, q->hdr_off, q->hdr_len, q->hdr_size);
	return 0;
    case IMAP_SECTION_TEXT:
	set_raw(sd, m, q->body_off, q->body_len, q->body_size);
	return 0;
    case IMAP_SECTION_HEADER_FIELDS:
    case IMAP_SECTION_HEADER_FIELDS_NOT:
	return build_fields(m->data + q->hdr_off, q->hdr_len, sec, sd, error_r);
    default:
	return 0;
    }
}

/* imap_section_data_fini - free a built header */
void imap_section_data_fini(struct imap_section_data *sd)
{
    str_free(&sd->built);
    sd->data = NULL;
}
