/* imap_mime.c - the MIME tree of a message for imapd: one pass over the
 * bytes finds every part's header and body with byte offsets, wire
 * sizes and line counts (imap_msg.h explains the wire form); also the
 * header field reader, Content-* parameters with RFC 2231, the wire
 * form reader for sending sections, and mapping a message file. */

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "errtext.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* this program */
#include "imap_msg.h"
#include "imap_msg_int.h"

struct errtext imap_msg_errtext;

/* ------------------------------------------------------------------ */
/* Mapping */

/* imap_msg_map - map a message file read-only */
int imap_msg_map(int fd, struct imap_msg_data *d, const char **error_r)
{
    struct stat st;
    void *p;

    memset(d, 0, sizeof(*d));
    d->data = "";
    if (fstat(fd, &st) < 0) {
	*error_r = errtext_set(&imap_msg_errtext, "fstat: %s", strerror(errno));
	return -1;
    }
    if (!S_ISREG(st.st_mode)) {
	*error_r = errtext_set(&imap_msg_errtext, "not a regular file");
	return -1;
    }
    if (st.st_size == 0)
	return 0;
    if ((uintmax_t) st.st_size > (uintmax_t) SIZE_MAX) {
	*error_r = errtext_set(&imap_msg_errtext, "message too large to map");
	return -1;
    }
    if (st.st_size <= IMAP_MSG_READ_MAX) {
	char *buf = mem_alloc((size_t) st.st_size);
	size_t got = 0;

	/* (a message file never changes, but a shorter read is what was
	 * there: no SIGBUS as from a mapping of a truncated file) */
	while (got < (size_t) st.st_size) {
	    ssize_t n = pread(fd, buf + got, (size_t) st.st_size - got, (off_t) got);

	    if (n < 0 && errno == EINTR)
		continue;
	    if (n < 0) {
		*error_r = errtext_set(&imap_msg_errtext, "pread: %s", strerror(errno));
		mem_free(&buf);
		return -1;
	    }
	    if (n == 0)
		break;
	    got += (size_t) n;
	}
	if (got == 0) {
	    mem_free(&buf);
	    return 0;
	}
	d->data = buf;
	d->len = got;
	d->allocated = true;
	return 0;
    }
    p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
	*error_r = errtext_set(&imap_msg_errtext, "mmap: %s", strerror(errno));
	return -1;
    }
    d->data = p;
    d->len = (size_t) st.st_size;
    d->mapped = true;
    return 0;
}

/* imap_msg_unmap - undo imap_msg_map */
void imap_msg_unmap(struct imap_msg_data *d)
{
    if (d->mapped && d->len > 0)
	munmap((void *) d->data, d->len);
    if (d->allocated)
	free((void *) d->data);
    d->data = "";
    d->len = 0;
    d->mapped = false;
    d->allocated = false;
}

/* ------------------------------------------------------------------ */
/* Header fields */

/* line_end - index after the line starting at pos (past its LF) */
static size_t line_end(const char *d, size_t len, size_t pos)
{
    const char *nl = memchr(d + pos, '\n', len - pos);

    return nl ? (size_t) (nl - d) + 1 : len;
}

/* is_empty_line - d[pos..next) is "\n" or "\r\n" */
static bool is_empty_line(const char *d, size_t pos, size_t next)
{
    size_t n = next - pos;

    return (n == 1 && d[pos] == '\n') || (n == 2 && d[pos] == '\r' && d[pos + 1] == '\n');
}

/* imap_hdr_len - the header's length, empty line included */
size_t imap_hdr_len(const char *data, size_t len)
{
    size_t pos = 0, next;

    while (pos < len) {
	next = line_end(data, len, pos);
	if (is_empty_line(data, pos, next))
	    return next;
	pos = next;
    }
    return len;
}

/* imap_name_eq - a field name equals name, any case */
bool imap_name_eq(const char *a, size_t alen, const char *name)
{
    return strlen(name) == alen && strncasecmp(a, name, alen) == 0;
}

/* imap_hdr_next - the next field of a header */
bool imap_hdr_next(const char *h, size_t len, size_t *pos, struct imap_field *f)
{
    size_t p = *pos, next, colon, nend, vend;

    while (p < len) {
	next = line_end(h, len, p);
	if (is_empty_line(h, p, next))
	    return false;
	/* the field name runs to the colon on this line */
	colon = p;
	while (colon < next && h[colon] != ':' && h[colon] != '\n')
	    colon++;
	if (colon >= next || h[colon] != ':' || colon == p
	    || h[p] == ' ' || h[p] == '\t') {
	    p = next;		/* no field (or a stray continuation) */
	    continue;
	}
	nend = colon;
	while (nend > p && (h[nend - 1] == ' ' || h[nend - 1] == '\t'))
	    nend--;		/* obsolete "Name :" */
	/* continuation lines */
	while (next < len && (h[next] == ' ' || h[next] == '\t'))
	    next = line_end(h, len, next);
	vend = next;
	if (vend > colon + 1 && h[vend - 1] == '\n')
	    vend--;
	if (vend > colon + 1 && h[vend - 1] == '\r')
	    vend--;
	f->name = h + p;
	f->name_len = nend - p;
	f->value = h + colon + 1;
	f->value_len = vend - (colon + 1);
	*pos = next;
	return true;
    }
    *pos = p;
    return false;
}

/* imap_hdr_find - the first field with that name */
bool imap_hdr_find(const char *h, size_t len, const char *name, struct imap_field *f)
{
    size_t pos = 0;

    while (imap_hdr_next(h, len, &pos, f))
	if (imap_name_eq(f->name, f->name_len, name))
	    return true;
    return false;
}

/* imap_hdr_unfold - a value on one line, trimmed */
void imap_hdr_unfold(const char *v, size_t len, size_t max, struct str *out)
{
    size_t i = 0;

    str_reset(out);
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
	i++;
    for (; i < len && str_len(out) < max; i++) {
	char c = v[i];
	bool ok;

	if (c != '\r' && c != '\n' && c != 0) {
	    /* a run of plain bytes in one append (as many as the byte at a
	     * time below would have taken) */
	    size_t e = i + 1, n;

	    while (e < len && v[e] != '\r' && v[e] != '\n' && v[e] != 0)
		e++;
	    n = e - i;
	    if (n > max - str_len(out))
		n = max - str_len(out);
	    if (!str_try_append(out, v + i, n))
		break;
	    i += n - 1;
	    continue;
	}
	if (c == '\r' && i + 1 < len && v[i + 1] == '\n')
	    continue;
	if (c == '\n') {
	    /* a fold: the line end and the white space after it */
	    while (i + 1 < len && (v[i + 1] == ' ' || v[i + 1] == '\t'))
		i++;
	    ok = str_try_appendc(out, ' ');
	} else if (c == 0) {
	    ok = str_try_append(out, "\xef\xbf\xbd", 3);	/* U+FFFD */
	} else {
	    ok = str_try_appendc(out, c == '\r' ? ' ' : c);
	}
	if (!ok)
	    break;
    }
    while (str_len(out) > 0 && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
	(void) str_truncate(out, out->len - 1);
}

/* ------------------------------------------------------------------ */
/* Content-Type and Content-Disposition (RFC 2045, RFC 2231) */

/* is_token_char - not an RFC 2045 tspecial, space or control */
static bool is_token_char(unsigned char c)
{
    if (c <= ' ' || c == 0x7f)
	return false;
    return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* skip_cfws - white space and (nested (comments)) */
static void skip_cfws(const char *v, size_t len, size_t *i)
{
    int depth = 0;

    while (*i < len) {
	char c = v[*i];

	if (depth > 0) {
	    if (c == '\\' && *i + 1 < len)
		(*i)++;
	    else if (c == '(')
		depth++;
	    else if (c == ')')
		depth--;
	} else if (c == '(') {
	    depth = 1;
	} else if (!(c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
	    return;
	}
	(*i)++;
    }
}

/* get_token - a token at *i into out */
static bool get_token(const char *v, size_t len, size_t *i, struct str *out)
{
    size_t s = *i;

    while (*i < len && is_token_char((unsigned char) v[*i]))
	(*i)++;
    str_reset(out);
    if (*i == s)
	return false;
    return str_try_append(out, v + s, *i - s);
}

/* get_value - a token or a quoted string at *i into out */
static bool get_value(const char *v, size_t len, size_t *i, struct str *out)
{
    if (*i < len && v[*i] == '"') {
	str_reset(out);
	(*i)++;
	while (*i < len && v[*i] != '"') {
	    if (v[*i] == '\\' && *i + 1 < len)
		(*i)++;
	    if (v[*i] != '\r' && v[*i] != '\n' && !str_try_appendc(out, v[*i] ? v[*i] : ' '))
		return false;
	    (*i)++;
	}
	if (*i < len)
	    (*i)++;		/* the closing quote (a missing one: the end) */
	return true;
    }
    return get_token(v, len, i, out);
}

/* One raw parameter before RFC 2231 joining. */
struct raw_param {
    char *base;			/* name without the "*..." */
    char *value;
    int section;		/* -1: none */
    bool extended;
};

/* pct_append - append value to out, %-encoding "%", controls and 8-bit
 * bytes (Dovecot %-encodes nothing; a space stays as it does there) */
static void pct_append(struct str *out, const char *value, bool already_encoded)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *s = (const unsigned char *) value; *s; s++) {
	if (already_encoded || (*s > ' ' && *s < 0x7f && *s != '%') || *s == ' ') {
	    if (!str_try_appendc(out, (char) *s))
		return;
	} else {
	    if (!str_try_appendc(out, '%') || !str_try_appendc(out, hex[*s >> 4])
		|| !str_try_appendc(out, hex[*s & 15]))
		return;
	}
    }
}

/* join_params - RFC 2231: join continuations, keep the first of
 * duplicates */
static void join_params(struct raw_param *raw, size_t nraw, struct imap_ctype *ct)
{
    struct str *val = str_new(IMAP_MSG_FIELD_MAX);

    for (size_t i = 0; i < nraw && ct->n < IMAP_MSG_MAX_PARAMS; i++) {
	bool seen = false, any_ext = false, sec0_ext = false;
	int max_sec = -1;

	if (raw[i].base == NULL)
	    continue;
	for (size_t j = 0; j < ct->n; j++)
	    if (strcasecmp(ct->params[j].name, raw[i].base) == 0)
		seen = true;
	if (seen)
	    continue;
	if (raw[i].section < 0) {
	    /* plain "name=" or extended "name*=", no continuations: an
	     * extended value wins over a plain one (RFC 2231 readers
	     * prefer it), else the first */
	    for (size_t j = 0; j < nraw; j++)
		if (raw[j].base && raw[j].section < 0 && raw[j].extended
		    && strcasecmp(raw[j].base, raw[i].base) == 0) {
		    ct->params[ct->n].name = mem_strdup(raw[i].base);
		    ct->params[ct->n].value = mem_strdup(raw[j].value);
		    ct->params[ct->n].extended = true;
		    ct->n++;
		    goto next;
		}
	    ct->params[ct->n].name = mem_strdup(raw[i].base);
	    ct->params[ct->n].value = mem_strdup(raw[i].value);
	    ct->params[ct->n].extended = false;
	    ct->n++;
	    continue;
	}
	/* continuations: sections 0..N, in order, stopping at a gap */
	for (size_t j = 0; j < nraw; j++)
	    if (raw[j].base && raw[j].section >= 0 && strcasecmp(raw[j].base, raw[i].base) == 0
		&& raw[j].section > max_sec)
		max_sec = raw[j].section;
	for (int s = 0; s <= max_sec; s++)
	    for (size_t j = 0; j < nraw; j++)
		if (raw[j].base && raw[j].section == s && strcasecmp(raw[j].base, raw[i].base) == 0) {
		    if (raw[j].extended) {
			any_ext = true;
			if (s == 0)
			    sec0_ext = true;
		    }
		    break;
		}
	str_reset(val);
	if (any_ext && !sec0_ext)
	    str_append_or_panic(val, "''", 2);
	for (int s = 0; s <= max_sec; s++) {
	    size_t j;

	    for (j = 0; j < nraw; j++)
		if (raw[j].base && raw[j].section == s && strcasecmp(raw[j].base, raw[i].base) == 0)
		    break;
	    if (j == nraw)
		break;		/* a gap: what follows is lost (RFC 2231) */
	    if (any_ext)
		pct_append(val, raw[j].value, raw[j].extended);
	    else if (!str_try_appends(val, raw[j].value))
		break;
	}
	ct->params[ct->n].name = mem_strdup(raw[i].base);
	ct->params[ct->n].value = mem_strndup(str_cstr(val), str_len(val));
	ct->params[ct->n].extended = any_ext;
	ct->n++;
      next:
	;
    }
    str_free(&val);
}

/* imap_ctype_parse - parse a Content-Type or Content-Disposition value */
void imap_ctype_parse(const char *v, size_t len, bool with_type, struct imap_ctype *ct)
{
    struct str *tok = str_new(IMAP_MSG_FIELD_MAX), *val = str_new(IMAP_MSG_FIELD_MAX);
    struct raw_param raw[IMAP_MSG_MAX_PARAMS * 2];
    size_t nraw = 0, i = 0;

    memset(ct, 0, sizeof(*ct));
    if (len > IMAP_MSG_FIELD_MAX)
	len = IMAP_MSG_FIELD_MAX;
    skip_cfws(v, len, &i);
    if (get_token(v, len, &i, tok)) {
	if (with_type) {
	    size_t t = i;

	    skip_cfws(v, len, &t);
	    if (t < len && v[t] == '/') {
		t++;
		skip_cfws(v, len, &t);
		if (get_token(v, len, &t, val)) {
		    ct->type = mem_strndup(str_cstr(tok), str_len(tok));
		    ct->subtype = mem_strndup(str_cstr(val), str_len(val));
		    i = t;
		}
	    }
	} else {
	    ct->type = mem_strndup(str_cstr(tok), str_len(tok));
	}
    }
    /* parameters: skip to each ";" */
    while (i < len && nraw < sizeof(raw) / sizeof(raw[0])) {
	char *star;

	if (v[i] == '"') {	/* junk with a quoted string: skip it whole */
	    (void) get_value(v, len, &i, val);
	    continue;
	}
	if (v[i] != ';') {
	    i++;
	    continue;
	}
	i++;
	skip_cfws(v, len, &i);
	if (!get_token(v, len, &i, tok))
	    continue;
	skip_cfws(v, len, &i);
	if (i >= len || v[i] != '=')
	    continue;
	i++;
	skip_cfws(v, len, &i);
	if (!get_value(v, len, &i, val))
	    continue;
	raw[nraw].section = -1;
	raw[nraw].extended = false;
	star = memchr(str_cstr(tok), '*', str_len(tok));
	if (star) {
	    char *s = star + 1;

	    if (*s >= '0' && *s <= '9') {
		long n = 0;

		while (*s >= '0' && *s <= '9' && n < 100000)
		    n = n * 10 + (*s++ - '0');
		raw[nraw].section = n < IMAP_MSG_MAX_PARAMS ? (int) n : IMAP_MSG_MAX_PARAMS;
	    } else {
		raw[nraw].extended = true;	/* "name*" */
	    }
	    if (raw[nraw].section >= 0 && *s == '*') {
		raw[nraw].extended = true;
		s++;
	    }
	    if (*s != 0 || raw[nraw].section >= IMAP_MSG_MAX_PARAMS)
		continue;	/* "a*b", too many sections: dropped */
	    raw[nraw].base = mem_strndup(str_cstr(tok), (size_t) (star - str_cstr(tok)));
	} else {
	    raw[nraw].base = mem_strndup(str_cstr(tok), str_len(tok));
	}
	raw[nraw].value = mem_strndup(str_cstr(val), str_len(val));
	nraw++;
    }
    join_params(raw, nraw, ct);
    for (size_t j = 0; j < nraw; j++) {
	mem_free(&raw[j].base);
	mem_free(&raw[j].value);
    }
    str_free(&tok);
    str_free(&val);
}

/* imap_ctype_fini - free a parsed value */
void imap_ctype_fini(struct imap_ctype *ct)
{
    mem_free(&ct->type);
    mem_free(&ct->subtype);
    for (size_t i = 0; i < ct->n; i++) {
	mem_free(&ct->params[i].name);
	mem_free(&ct->params[i].value);
    }
    ct->n = 0;
}

/* imap_ctype_param - a parameter by name */
const struct imap_param *imap_ctype_param(const struct imap_ctype *ct, const char *name)
{
    for (size_t i = 0; i < ct->n; i++)
	if (strcasecmp(ct->params[i].name, name) == 0)
	    return &ct->params[i];
    return NULL;
}

/* hexval - a hex digit's value, or -1 */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
	return c - '0';
    if (c >= 'a' && c <= 'f')
	return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
	return c - 'A' + 10;
    return -1;
}

/* imap_param_decode - the bytes of a parameter value */
void imap_param_decode(const struct imap_param *p, struct str *out)
{
    const char *s = p->value, *q;

    str_reset(out);
    if (!p->extended) {
	if (!str_try_appends(out, s))
	    return;
	return;
    }
    /* charset'language'encoded */
    if ((q = strchr(s, '\'')) != NULL && strchr(q + 1, '\'') != NULL)
	s = strchr(q + 1, '\'') + 1;
    for (; *s; s++) {
	char c = *s;

	if (c == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
	    c = (char) (hexval(s[1]) * 16 + hexval(s[2]));
	    s += 2;
	}
	if (!str_try_appendc(out, c))
	    return;
    }
}

/* ------------------------------------------------------------------ */
/* The wire form */

/* imap_wire_count - LFs and bare LFs in buf[off..end) */
void imap_wire_count(const char *buf, size_t off, size_t end, uint64_t *lf_r, uint64_t *bare_r)
{
    uint64_t lf = 0, bare = 0;
    const char *p = buf + off, *e = buf + end, *nl;

    while (p < e && (nl = memchr(p, '\n', (size_t) (e - p))) != NULL) {
	lf++;
	if (nl == buf || nl[-1] != '\r')
	    bare++;
	p = nl + 1;
    }
    *lf_r = lf;
    *bare_r = bare;
}

/* imap_wire_size - the wire size of data[0..len) */
uint64_t imap_wire_size(const char *data, size_t len, bool prev_cr)
{
    uint64_t lf, bare;

    if (len == 0)
	return 0;
    imap_wire_count(data, 1, len, &lf, &bare);
    if (data[0] == '\n' && !prev_cr)
	bare++;
    return len + bare;
}

/* imap_wire_init - a reader positioned at a wire offset */
void imap_wire_init(struct imap_wire *w, const char *data, size_t start, size_t end,
		    uint64_t origin, uint64_t length)
{
    w->data = data;
    w->pos = start;
    w->end = end;
    w->lf_owed = false;
    w->left = length;
    /* skip origin wire octets */
    while (origin > 0 && w->pos < w->end) {
	const char *nl = memchr(data + w->pos, '\n', w->end - w->pos);
	size_t upto = nl ? (size_t) (nl - data) : w->end;
	bool bare;

	if ((uint64_t) (upto - w->pos) >= origin) {
	    w->pos += (size_t) origin;
	    return;
	}
	origin -= upto - w->pos;
	w->pos = upto;
	if (!nl)
	    break;
	bare = w->pos == 0 || data[w->pos - 1] != '\r';
	if (bare) {
	    /* "\r\n" in wire form: two octets */
	    if (origin == 1) {
		w->lf_owed = true;
		return;
	    }
	    origin -= 2;
	} else {
	    origin -= 1;
	}
	w->pos++;
    }
    if (w->pos >= w->end && !w->lf_owed)
	w->left = 0;
}

/* imap_wire_read - the next wire octets */
size_t imap_wire_read(struct imap_wire *w, char *buf, size_t size)
{
    size_t n = 0;

    if ((uint64_t) size > w->left)
	size = (size_t) w->left;
    if (n < size && w->lf_owed) {
	buf[n++] = '\n';
	w->lf_owed = false;
	w->pos++;		/* the LF itself */
    }
    while (n < size && w->pos < w->end) {
	const char *src = w->data + w->pos;
	size_t avail = w->end - w->pos, room = size - n;
	size_t chunk = avail < room ? avail : room;
	const char *nl = memchr(src, '\n', chunk);

	if (!nl) {
	    memcpy(buf + n, src, chunk);
	    n += chunk;
	    w->pos += chunk;
	    break;
	}
	chunk = (size_t) (nl - src);
	memcpy(buf + n, src, chunk);
	n += chunk;
	w->pos += chunk;
	if (w->pos == 0 || w->data[w->pos - 1] != '\r') {
	    buf[n++] = '\r';
	    if (n == size) {
		w->lf_owed = true;
		break;
	    }
	}
	buf[n++] = '\n';
	w->pos++;
    }
    for (char *z = memchr(buf, 0, n); z; z = memchr(z + 1, 0, n - (size_t) (z + 1 - buf)))
	*z = (char) 0x80;	/* no NUL in an IMAP literal */
    w->left -= n;
    return n;
}

/* imap_partial - octets of <origin.count> */
uint64_t imap_partial(uint64_t wire_size, uint64_t origin, uint64_t count)
{
    if (origin >= wire_size)
	return 0;
    return wire_size - origin < count ? wire_size - origin : count;
}

/* ------------------------------------------------------------------ */
/* The MIME parse */

/* The scanner: a position at a line start (or the end), with the
 * number of LFs and bare LFs before it; and the stack of the
 * boundaries of the open multiparts (innermost last). */
struct scan {
    const char *d;
    size_t len;
    size_t pos;
    uint64_t lf, bare;
    const char *bound[IMAP_MSG_MAX_DEPTH + 2];
    size_t blen[IMAP_MSG_MAX_DEPTH + 2];
    size_t nb;
    size_t close_end;		/* a delimiter line whose preceding line
				 * end is no part's to give (after a
				 * close delimiter line, ...) */
    struct imap_msg *m;
};

/* advance - move past the current line */
static void advance(struct scan *s)
{
    const char *nl = memchr(s->d + s->pos, '\n', s->len - s->pos);

    if (!nl) {
	s->pos = s->len;
	return;
    }
    s->lf++;
    if (nl == s->d || nl[-1] != '\r')
	s->bare++;
    s->pos = (size_t) (nl - s->d) + 1;
}

/* delimiter - the open boundary whose delimiter line starts at s->pos
 * (-1 if none); *close for a "--boundary--" line. As Dovecot: the line
 * need only start with "--" and the boundary; when several boundaries
 * match, the longest wins, and an exact match of the whole line (less
 * "--" and white space) ends the search, innermost first. */
static int delimiter(const struct scan *s, bool *close)
{
    const char *l = s->d + s->pos, *nl;
    size_t avail = s->len - s->pos, n, best_len = 0;
    int best = -1;
    bool dashes;

    if (s->nb == 0 || avail < 2 || l[0] != '-' || l[1] != '-')
	return -1;
    nl = memchr(l, '\n', avail);
    n = (nl ? (size_t) (nl - l) : avail) - 2;	/* the line after "--" */
    while (n > 0 && (l[2 + n - 1] == '\r' || l[2 + n - 1] == ' ' || l[2 + n - 1] == '\t'))
	n--;
    dashes = n >= 2 && l[2 + n - 1] == '-' && l[2 + n - 2] == '-';
    for (size_t i = s->nb; i-- > 0;) {
	if (s->bound[i] && n >= s->blen[i] && memcmp(l + 2, s->bound[i], s->blen[i]) == 0
	    && (best < 0 || s->blen[i] > best_len)) {
	    best = (int) i;
	    best_len = s->blen[i];
	    if (best_len == n || (dashes && best_len + 2 == n))
		break;
	}
    }
    if (best >= 0)
	*close = n >= best_len + 2 && l[2 + best_len] == '-' && l[3 + best_len] == '-';
    return best;
}

/* skip_to_delimiter - advance to the next delimiter line of any open
 * boundary (or the end) */
static int skip_to_delimiter(struct scan *s, bool *close)
{
    int r;

    while (s->pos < s->len) {
	if ((r = delimiter(s, close)) >= 0)
	    return r;
	advance(s);
    }
    return -1;
}

/* new_part - a zeroed part, counted */
static struct imap_mpart *new_part(struct scan *s, struct imap_mpart *parent)
{
    struct imap_mpart *mp = mem_zalloc(sizeof(*mp));

    s->m->nparts++;
    mp->p.parent = parent ? &parent->p : NULL;
    mp->p.depth = parent ? parent->p.depth + 1 : 0;
    if (parent) {
	struct imap_part **pp = &parent->p.children;

	while (*pp)
	    pp = &(*pp)->next;
	*pp = &mp->p;
    }
    return mp;
}

/* lc_dup - a lower-cased copy */
static char *lc_dup(const char *s)
{
    char *r = mem_strdup(s);

    for (char *p = r; *p; p++)
	*p = (char) tolower((unsigned char) *p);
    return r;
}

/* set_type - fill type fields from the header of mp */
static const char *set_type(struct scan *s, struct imap_mpart *mp, bool in_digest,
			    struct str *boundary)
{
    struct imap_field f;
    struct imap_ctype ct;
    const char *h = s->d + mp->p.hdr_off;
    const struct imap_param *bp;
    bool have = false;

    str_reset(boundary);
    if (imap_hdr_find(h, mp->p.hdr_len, "Content-Type", &f)) {
	imap_ctype_parse(f.value, f.value_len, true, &ct);
	if (ct.type && ct.subtype) {
	    have = true;
	    mp->type_raw = mem_strdup(ct.type);
	    mp->subtype_raw = mem_strdup(ct.subtype);
	    mp->type_lc = lc_dup(ct.type);
	    mp->subtype_lc = lc_dup(ct.subtype);
	    if ((bp = imap_ctype_param(&ct, "charset")) != NULL) {
		struct str *cs = str_new(256);

		imap_param_decode(bp, cs);
		mp->charset = mem_strndup(str_cstr(cs), str_len(cs));
		str_free(&cs);
	    }
	    if ((bp = imap_ctype_param(&ct, "boundary")) != NULL)
		imap_param_decode(bp, boundary);
	}
	imap_ctype_fini(&ct);
    }
    if (!have) {
	mp->type_lc = mem_strdup(in_digest ? "message" : "text");
	mp->subtype_lc = mem_strdup(in_digest ? "rfc822" : "plain");
    }
    if (imap_hdr_find(h, mp->p.hdr_len, "Content-Transfer-Encoding", &f)) {
	struct str *v = str_new(IMAP_MSG_FIELD_MAX);
	size_t i = 0;

	skip_cfws(f.value, f.value_len, &i);
	if (get_token(f.value, f.value_len, &i, v) && str_len(v) > 0) {
	    mp->enc_raw = mem_strndup(str_cstr(v), str_len(v));
	    mp->enc_lc = lc_dup(mp->enc_raw);
	}
	str_free(&v);
    }
    if (!mp->enc_lc)
	mp->enc_lc = mem_strdup("7bit");
    mp->p.type = mp->type_lc;
    mp->p.subtype = mp->subtype_lc;
    mp->p.encoding = mp->enc_lc;
    mp->p.charset = mp->charset;
    return str_cstr(boundary);
}

/* clamp_empty - move the (empty) parts below p to offset at */
static void clamp_empty(struct imap_part *p, size_t at)
{
    for (; p; p = p->next) {
	if (p->hdr_off > at)
	    p->hdr_off = at;
	if (p->body_off > at)
	    p->body_off = at;
	clamp_empty(p->children, at);
    }
}

/* body_end - end the body of mp where the scanner stopped: before the
 * line end preceding a delimiter line (r >= 0), or at the end */
static void body_end(struct scan *s, struct imap_mpart *mp, int r, uint64_t lf0, uint64_t bare0)
{
    size_t end = s->pos;
    uint64_t lf = s->lf, bare = s->bare;

    if (r >= 0 && s->pos > mp->p.hdr_off && s->pos != s->close_end
	&& s->pos == mp->p.body_off && mp->p.parent && mp->p.parent->is_message) {
	/* an encapsulated message's header right before the delimiter:
	 * the header gives up its line end (below), but the parts that
	 * end with it keep it (Dovecot's sizes) */
	s->close_end = s->pos;
    }
    /* (as Dovecot: right after a close delimiter line, with no
     * epilogue, that line's end stays in the part) */
    if (r >= 0 && s->pos > mp->p.hdr_off
	&& (s->pos != s->close_end || s->pos == mp->p.body_off)) {
	end = s->pos - 1;	/* the LF before the delimiter line */
	lf--;
	if (end == 0 || s->d[end - 1] != '\r')
	    bare--;
	else if (end - 1 >= mp->p.hdr_off)
	    end--;		/* and its CR */
    }
    if (end < mp->p.body_off) {
	/* the delimiter follows the header at once: that line end
	 * belongs to the delimiter, not to the header (as in Dovecot) */
	mp->p.hdr_len = end - mp->p.hdr_off;
	mp->p.hdr_size -= 2;
	mp->p.body_off = end;
	lf0 = lf;
	bare0 = bare;
    }
    clamp_empty(mp->p.children, end);	/* empty parts at the delimiter */
    mp->p.body_len = end - mp->p.body_off;
    mp->p.body_lines = lf - lf0;
    mp->p.body_size = mp->p.body_len + (bare - bare0);
}

/* synthetic_child - the empty text/plain part of an empty multipart */
static void synthetic_child(struct scan *s, struct imap_mpart *parent)
{
    struct imap_mpart *c = new_part(s, parent);

    c->synthetic = true;
    c->p.hdr_off = c->p.body_off = parent->p.body_off;
    c->type_lc = mem_strdup("text");
    c->subtype_lc = mem_strdup("plain");
    c->enc_lc = mem_strdup("7bit");
    c->p.type = c->type_lc;
    c->p.subtype = c->subtype_lc;
    c->p.encoding = c->enc_lc;
}

/* over_limit - a multipart or message beyond the bounds becomes an
 * application/octet-stream leaf */
static void over_limit(struct imap_mpart *mp)
{
    mem_free(&mp->type_lc);
    mem_free(&mp->subtype_lc);
    mem_free(&mp->type_raw);
    mem_free(&mp->subtype_raw);
    mp->type_lc = mem_strdup("application");
    mp->subtype_lc = mem_strdup("octet-stream");
    mp->p.type = mp->type_lc;
    mp->p.subtype = mp->subtype_lc;
    mp->forced = true;
}

/* parse_part - parse the part starting at s->pos; returns the index of
 * the open boundary whose delimiter line ends it (the scanner stands
 * at that line), or -1 at the end of the data */
static int parse_part(struct scan *s, struct imap_mpart *mp, bool in_digest, bool *close)
{
    uint64_t lf0, bare0;
    int r = -1;
    struct str *boundary = str_new(IMAP_MSG_FIELD_MAX);
    const char *b;
    bool deep, cut = false;

    *close = false;
    /* the header: to the empty line, a delimiter line or the end */
    mp->p.hdr_off = s->pos;
    bare0 = s->bare;
    while (s->pos < s->len) {
	size_t start = s->pos, next;

	if (delimiter(s, close) >= 0) {
	    cut = true;		/* no empty line: the body is empty */
	    break;
	}
	next = line_end(s->d, s->len, start);
	advance(s);
	if (is_empty_line(s->d, start, next))
	    break;
    }
    mp->p.hdr_len = s->pos - mp->p.hdr_off;
    mp->p.hdr_size = mp->p.hdr_len + (s->bare - bare0);
    mp->p.body_off = s->pos;
    lf0 = s->lf;
    bare0 = s->bare;
    b = set_type(s, mp, in_digest, boundary);
    deep = mp->p.depth >= IMAP_MSG_MAX_DEPTH || s->m->nparts >= IMAP_MSG_MAX_PARTS;

    if (strcmp(mp->type_lc, "multipart") == 0 && !deep) {
	bool digest = strcmp(mp->subtype_lc, "digest") == 0;
	size_t my = s->nb;

	mp->p.is_multipart = true;
	if (cut || *b == 0 || s->nb >= sizeof(s->bound) / sizeof(s->bound[0])) {
	    r = skip_to_delimiter(s, close);
	} else {
	    s->bound[my] = b;
	    s->blen[my] = str_len(boundary);
	    s->nb++;
	    r = skip_to_delimiter(s, close);	/* the preamble */
	    while (r == (int) my && !*close) {
		advance(s);	/* the delimiter line */
		if (s->m->nparts >= IMAP_MSG_MAX_PARTS) {
		    /* no more parts: the rest up to the close delimiter
		     * stays in the multipart's body, in no part */
		    while ((r = skip_to_delimiter(s, close)) == (int) my && !*close)
			advance(s);
		    break;
		}
		r = parse_part(s, new_part(s, mp), digest, close);
	    }
	    s->nb--;
	    if (r == (int) my) {	/* the close delimiter, then the epilogue */
		advance(s);
		s->close_end = s->pos;
		r = skip_to_delimiter(s, close);
	    }
	}
	if (mp->p.children == NULL)
	    synthetic_child(s, mp);
    } else if (strcmp(mp->type_lc, "message") == 0 && strcmp(mp->subtype_lc, "rfc822") == 0
	       && !deep) {
	mp->p.is_message = true;
	r = parse_part(s, new_part(s, mp), false, close);
    } else {
	if (deep && (strcmp(mp->type_lc, "multipart") == 0
		     || (strcmp(mp->type_lc, "message") == 0 && strcmp(mp->subtype_lc, "rfc822") == 0)))
	    over_limit(mp);
	r = skip_to_delimiter(s, close);
    }
    body_end(s, mp, r, lf0, bare0);
    str_free(&boundary);
    return r;
}

/* free_part - free a part and everything below it */
static void free_part(struct imap_part *p)
{
    while (p) {
	struct imap_part *next = p->next;
	struct imap_mpart *mp = imap_mpart_of(p);

	free_part(p->children);
	mem_free(&mp->type_lc);
	mem_free(&mp->subtype_lc);
	mem_free(&mp->enc_lc);
	mem_free(&mp->charset);
	mem_free(&mp->type_raw);
	mem_free(&mp->subtype_raw);
	mem_free(&mp->enc_raw);
	mem_free(&mp);
	p = next;
    }
}

/* imap_msg_parse - the MIME tree of data[0..len) */
struct imap_msg *imap_msg_parse(const char *data, size_t len)
{
    struct imap_msg *m = mem_zalloc(sizeof(*m));
    struct scan *s = mem_zalloc(sizeof(*s));
    bool close;

    m->data = data;
    m->len = len;
    s->d = data;
    s->len = len;
    s->m = m;
    s->close_end = SIZE_MAX;
    m->root = new_part(s, NULL);
    (void) parse_part(s, m->root, false, &close);
    m->wire_size = len + s->bare;
    mem_free(&s);
    return m;
}

/* imap_msg_free - free a parse */
void imap_msg_free(struct imap_msg **mp)
{
    if (*mp == NULL)
	return;
    free_part(&(*mp)->root->p);
    mem_free(mp);
}

/* imap_msg_root - the message as a part */
const struct imap_part *imap_msg_root(const struct imap_msg *m)
{
    return &m->root->p;
}

/* imap_msg_wire_size - RFC822.SIZE */
uint64_t imap_msg_wire_size(const struct imap_msg *m)
{
    return m->wire_size;
}

/* imap_msg_part - a part by its number */
const struct imap_part *imap_msg_part(const struct imap_msg *m, const unsigned *path, size_t n)
{
    const struct imap_part *p = &m->root->p;
    bool virt = false;		/* the last step was a leaf's "1" */

    for (size_t i = 0; i < n; i++) {
	unsigned k = path[i];

	if (k == 0)
	    return NULL;
	/* a message/rfc822 part: numbers go into its message */
	if (p->is_message && i > 0) {
	    p = p->children;
	    virt = false;
	}
	if (p->is_multipart) {
	    p = p->children;
	    while (p && --k > 0)
		p = p->next;
	    if (!p)
		return NULL;
	    virt = false;
	} else {
	    /* part 1 of a non-multipart message is its body; Dovecot
	     * takes "1" below any leaf as the leaf, once */
	    if (k != 1 || virt)
		return NULL;
	    virt = true;
	}
    }
    return p;
}
