/* imap_bodystructure.c - FETCH BODY and BODYSTRUCTURE (RFC 3501 7.4.2)
 * from a parsed MIME tree: types, parameters (RFC 2231 continuations
 * joined, an encoded value sent as "name*"), id, description,
 * encoding, wire sizes, line counts, the envelope and structure of
 * message/rfc822 parts, and the extension data (md5, disposition,
 * language, location). Output follows Dovecot's where RFC 3501 leaves
 * a choice (type and parameter names as written; text parts without
 * parameters get ("charset" "us-ascii")). */

#include <string.h>

/* base */
#include "str.h"

/* this program */
#include "imap_msg.h"
#include "imap_msg_int.h"

/* nstr - append a C string (or NIL) */
static bool nstr(struct str *out, const char *s)
{
    return imap_msg_append_nstring(out, s, s ? strlen(s) : 0);
}

/* params - ("name" "value" ...) or NIL */
static bool params(struct str *out, const struct imap_ctype *ct)
{
    struct str *name;
    bool ok = true;

    if (ct->n == 0)
	return str_try_appends(out, "NIL");
    name = str_new(IMAP_MSG_FIELD_MAX);
    ok = str_try_appendc(out, '(');
    for (size_t i = 0; ok && i < ct->n; i++) {
	str_reset(name);
	ok = str_try_appends(name, ct->params[i].name)
	    && (!ct->params[i].extended || str_try_appendc(name, '*'))
	    && (i == 0 || str_try_appendc(out, ' '))
	    && imap_msg_append_nstring(out, str_cstr(name), str_len(name))
	    && str_try_appendc(out, ' ')
	    && nstr(out, ct->params[i].value);
    }
    str_free(&name);
    return ok && str_try_appendc(out, ')');
}

/* field - the unfolded value of a field of the part header, or NIL */
static bool field(struct str *out, const char *h, size_t hlen, const char *name)
{
    struct imap_field f;
    struct str *v;
    bool ok;

    if (!imap_hdr_find(h, hlen, name, &f))
	return str_try_appends(out, "NIL");
    v = str_new(IMAP_MSG_FIELD_MAX);
    imap_hdr_unfold(f.value, f.value_len, IMAP_MSG_FIELD_MAX, v);
    ok = imap_msg_append_nstring(out, str_cstr(v), str_len(v));
    str_free(&v);
    return ok;
}

/* disposition - ("type" params) or NIL */
static bool disposition(struct str *out, const char *h, size_t hlen)
{
    struct imap_field f;
    struct imap_ctype ct;
    bool ok;

    if (!imap_hdr_find(h, hlen, "Content-Disposition", &f))
	return str_try_appends(out, "NIL");
    imap_ctype_parse(f.value, f.value_len, false, &ct);
    if (ct.type == NULL)
	ok = str_try_appends(out, "NIL");
    else
	ok = str_try_appendc(out, '(') && nstr(out, ct.type) && str_try_appendc(out, ' ')
	    && params(out, &ct) && str_try_appendc(out, ')');
    imap_ctype_fini(&ct);
    return ok;
}

/* language - Content-Language as a list of tags, or NIL */
static bool language(struct str *out, const char *h, size_t hlen)
{
    struct imap_field f;
    struct str *v;
    size_t start = str_len(out), n = 0, i = 0;
    bool ok;

    if (!imap_hdr_find(h, hlen, "Content-Language", &f))
	return str_try_appends(out, "NIL");
    v = str_new(IMAP_MSG_FIELD_MAX);
    imap_hdr_unfold(f.value, f.value_len, IMAP_MSG_FIELD_MAX, v);
    ok = str_try_appendc(out, '(');
    while (ok && i < str_len(v)) {
	const char *s = str_cstr(v);
	size_t b;

	while (i < str_len(v) && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
	    i++;
	if (i < str_len(v) && s[i] == '(') {	/* a comment */
	    while (i < str_len(v) && s[i] != ')')
		i++;
	    i++;
	    continue;
	}
	b = i;
	while (i < str_len(v) && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != '(')
	    i++;
	if (i > b) {
	    ok = (n == 0 || str_try_appendc(out, ' '))
		&& imap_msg_append_nstring(out, s + b, i - b);
	    n++;
	}
    }
    ok = ok && str_try_appendc(out, ')');
    if (ok && n == 0) {
	(void) str_truncate(out, start);
	ok = str_try_appends(out, "NIL");
    }
    str_free(&v);
    return ok;
}

/* extension - disposition language location (both kinds of part) */
static bool extension(struct str *out, const char *h, size_t hlen)
{
    return str_try_appendc(out, ' ') && disposition(out, h, hlen)
	&& str_try_appendc(out, ' ') && language(out, h, hlen)
	&& str_try_appendc(out, ' ') && field(out, h, hlen, "Content-Location");
}

/* content_type - the part's parsed Content-Type (empty when absent,
 * invalid or overridden by the bounds) */
static void content_type(const struct imap_msg *m, const struct imap_mpart *mp,
			 struct imap_ctype *ct)
{
    struct imap_field f;

    memset(ct, 0, sizeof(*ct));
    if (mp->synthetic || mp->forced)
	return;
    if (imap_hdr_find(m->data + mp->p.hdr_off, mp->p.hdr_len, "Content-Type", &f)) {
	imap_ctype_parse(f.value, f.value_len, true, ct);
	if (ct->type == NULL || ct->subtype == NULL)
	    imap_ctype_fini(ct);
    }
}

static bool structure(const struct imap_msg *m, const struct imap_part *p, bool ext,
		      struct str *out);

/* multipart - (part)(part) "subtype" [params disposition language location] */
static bool multipart(const struct imap_msg *m, const struct imap_mpart *mp, bool ext,
		      struct str *out)
{
    const char *h = m->data + mp->p.hdr_off;
    struct imap_ctype ct;
    bool ok = str_try_appendc(out, '(');

    for (const struct imap_part *c = mp->p.children; ok && c; c = c->next)
	ok = structure(m, c, ext, out);
    ok = ok && str_try_appendc(out, ' ')
	&& nstr(out, mp->subtype_raw ? mp->subtype_raw : mp->subtype_lc);
    if (ok && ext) {
	content_type(m, mp, &ct);
	ok = str_try_appendc(out, ' ') && params(out, &ct)
	    && extension(out, h, mp->p.hdr_len);
	imap_ctype_fini(&ct);
    }
    return ok && str_try_appendc(out, ')');
}

/* leaf - a non-multipart body */
static bool leaf(const struct imap_msg *m, const struct imap_mpart *mp, bool ext, struct str *out)
{
    const char *h = m->data + mp->p.hdr_off;
    size_t hlen = mp->synthetic ? 0 : mp->p.hdr_len;
    struct imap_ctype ct;
    bool ok, text = strcmp(mp->type_lc, "text") == 0;

    content_type(m, mp, &ct);
    ok = str_try_appendc(out, '(')
	&& nstr(out, mp->type_raw ? mp->type_raw : mp->type_lc) && str_try_appendc(out, ' ')
	&& nstr(out, mp->subtype_raw ? mp->subtype_raw : mp->subtype_lc)
	&& str_try_appendc(out, ' ');
    if (ok && ct.n == 0 && text)
	ok = str_try_appends(out, "(\"charset\" \"us-ascii\")");
    else if (ok)
	ok = params(out, &ct);
    imap_ctype_fini(&ct);
    ok = ok && str_try_appendc(out, ' ') && field(out, h, hlen, "Content-ID")
	&& str_try_appendc(out, ' ') && field(out, h, hlen, "Content-Description")
	&& str_try_appendc(out, ' ') && nstr(out, mp->enc_raw ? mp->enc_raw : "7bit")
	&& str_try_appendf(out, " %llu", (unsigned long long) mp->p.body_size);
    if (ok && mp->p.is_message) {
	ok = str_try_appendc(out, ' ') && imap_part_envelope(m, &mp->p, out)
	    && str_try_appendc(out, ' ') && structure(m, mp->p.children, ext, out)
	    && str_try_appendf(out, " %llu", (unsigned long long) mp->p.body_lines);
    } else if (ok && text) {
	ok = str_try_appendf(out, " %llu", (unsigned long long) mp->p.body_lines);
    }
    if (ok && ext)
	ok = str_try_appendc(out, ' ') && field(out, h, hlen, "Content-MD5")
	    && extension(out, h, hlen);
    return ok && str_try_appendc(out, ')');
}

/* structure - one part, recursively */
static bool structure(const struct imap_msg *m, const struct imap_part *p, bool ext,
		      struct str *out)
{
    const struct imap_mpart *mp = imap_mpart_of(p);

    if (p->is_multipart)
	return multipart(m, mp, ext, out);
    return leaf(m, mp, ext, out);
}

/* imap_msg_bodystructure - BODYSTRUCTURE */
bool imap_msg_bodystructure(const struct imap_msg *m, struct str *out)
{
    return structure(m, &m->root->p, true, out);
}

/* imap_msg_body - BODY */
bool imap_msg_body(const struct imap_msg *m, struct str *out)
{
    return structure(m, &m->root->p, false, out);
}
