/* sc_content.c - the message content as smtp-client sends it: the queue
 * file's L/C records joined into lines, every line ended by CR LF,
 * dot-stuffed for DATA, header lines folded to the line length limit,
 * and body parts converted to quoted-printable where the peer or the
 * limit needs it (sc_content.h has the interface, docs/smtp-client-
 * content.md the policy and the smuggling argument). */

/* System library. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "queue_file.h"

/* This program. */
#include "sc_content.h"

#define SC_PREFIX_MAX	256		/* line start looked at before deciding */
#define SC_OBUF_FLUSH	(64 * 1024)	/* hand output to the sink at this size */
#define SC_LIMIT_MIN	78		/* line limits are clamped to ... */
#define SC_LIMIT_MAX	998		/* ... this range (RFC 5321 4.5.3.1.6) */

static struct errtext sc_error;

/* ---------------------------------------------------------------------
 * The job: two passes over the content share one MIME parser, which
 * numbers the entities (the message, its parts, nested messages) in the
 * order they appear. The scan pass records what each entity needs; the
 * write pass looks up what was decided for it before writing its
 * header, so nothing is sent when the content cannot be converted.
 * --------------------------------------------------------------------- */

#define SC_PARTS_MAX	1024		/* entities with a decision of their own */
#define SC_BOUNDARY_MAX	200		/* RFC 2046 allows 70 */
#define SC_FIELD_MAX	4096		/* of a Content-Type value looked at */

/* Content-Transfer-Encoding values. */
enum sc_cte { CTE_NONE, CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_QP, CTE_BASE64, CTE_OTHER };

/* How an entity was parsed. */
enum sc_kind { K_LEAF, K_MULTIPART, K_MESSAGE };

/* What an entity's own lines hold (scan pass). */
#define NEED_8BIT	(1U << 0)	/* body (or preamble/epilogue) byte >= 0x80 */
#define NEED_BIN	(1U << 1)	/* body NUL or bare CR */
#define NEED_LONG	(1U << 2)	/* body line over the limit */
#define NEED_HDR8	(1U << 3)	/* header byte >= 0x80 */
#define NEED_HDRBIN	(1U << 4)	/* header NUL or bare CR */

/* Facts about an entity. */
#define P_NONMIME	(1U << 0)	/* the message, without MIME-Version */
#define P_TOODEEP	(1U << 1)	/* composite nested too deep: opaque */
#define P_COMPOSITE	(1U << 2)	/* multipart or message/rfc822 type, opaque */

/* What the write pass does with an entity. */
enum sc_action {
    ACT_NONE,				/* as it is (long base64 lines broken) */
    ACT_QP,				/* body re-encoded quoted-printable */
    ACT_SOFTBREAK,			/* quoted-printable: long lines get "=" breaks */
    ACT_RELABEL_7BIT,			/* composite: Content-Transfer-Encoding: 7bit */
    ACT_RELABEL_8BIT,			/* composite: Content-Transfer-Encoding: 8bit */
};

struct sc_part {
    unsigned char kind;			/* enum sc_kind */
    unsigned char cte;			/* enum sc_cte */
    unsigned char needs;		/* NEED_* */
    unsigned char facts;		/* P_* */
    unsigned char action;		/* enum sc_action */
};

/* A multipart whose body is being read. */
struct sc_level {
    char boundary[SC_BOUNDARY_MAX];
    size_t blen;
    int part;				/* its entity */
    int depth;				/* its depth */
    bool digest;			/* parts default to message/rfc822 */
};

/* Parser states. */
enum sc_state { M_HEADER, M_BODY, M_MULTI };

/* What the current line is. */
enum sc_role {
    R_FIELD,				/* a header field starts */
    R_CONT,				/* a header field goes on */
    R_SEP,				/* the empty line after a header */
    R_BODY,				/* body, preamble or epilogue of m.part */
    R_BOUNDARY,				/* a multipart delimiter (sent canonical) */
};

/* Header fields the parser reads. */
enum sc_field { F_NONE, F_OTHER, F_CTYPE, F_CTE, F_MIMEVER };

/* How a header ended. */
enum sc_hdr_end { END_EMPTY, END_NONHEADER, END_BOUNDARY, END_EOF };

enum sc_pass { SC_PASS_SCAN, SC_PASS_WRITE };

struct sc_job {
    enum sc_pass pass;
    size_t limit;			/* longest line sent */
    unsigned flags;			/* SC_OUT_* */
    const char *error;			/* the text of a status that is not OK */
    struct sc_content_info *info;	/* scan: what sc_content_scan reports */

    /* the entities: parts[SC_PARTS_MAX] (NULL for sc_content_scan) */
    struct sc_part *parts;
    int nparts;				/* entities seen */
    bool overflow;			/* scan: an entity past SC_PARTS_MAX needs work */

    /* the MIME parser */
    enum sc_state state;
    int part;				/* the entity whose header or body this is */
    int depth;				/* its depth (the message: 0) */
    bool top;				/* its header is the message header */
    bool default_rfc822;		/* its default type is message/rfc822 */
    struct sc_level level[SC_CONTENT_MIME_DEPTH];
    int nlevels;
    enum sc_field field;		/* the header field being read */
    bool mime_version;			/* the header had MIME-Version */
    bool have_ctype, have_cte;
    struct str *ctype, *cte;		/* their (first) values, unfolded */
    struct str *collect;		/* the value being collected, or NULL */
    size_t value_from;			/* where the value starts in the line */

    /* the line being read */
    enum sc_role role;
    size_t line_len;			/* bytes so far */
    int boundary_level;			/* R_BOUNDARY: which */
    bool boundary_close;		/* R_BOUNDARY: "--" after it */
    bool boundary_long;			/* R_BOUNDARY: over the limit */

    /* write */
    const struct sc_sink *sink;
    struct str *obuf;			/* output not yet given to the sink */
    size_t col;				/* bytes on the current output line */
    struct str *fold;			/* a header line not yet out */
    bool dropping;			/* the current header field is replaced */
    int act;				/* the action of the body being written */
    struct str *lbuf;			/* an encoded output line being built */
    char pending_wsp;			/* QP: white space not yet known to be inner */
    bool soft;				/* the output line follows a soft break */
    char tok[3];			/* soft breaks: an "=XX" being read */
    size_t tok_len;
    size_t last_tok;			/* where the last token in lbuf starts */
};

static int job_line_begin(struct sc_job *job, const char *prefix, size_t plen, bool whole);
static int job_line_data(struct sc_job *job, const char *data, size_t len);
static int job_line_end(struct sc_job *job);
static int job_finish(struct sc_job *job);
static int boundary_out(struct sc_job *job);

/* sc_walk - read the content at data_offset and feed its lines to job;
 * SC_CONTENT_OK or the first status that is not (*error_r set) */
static int sc_walk(int fd, long data_offset, struct sc_job *job, const char **error_r)
{
    struct stream *s;
    struct qf_reader r;
    struct str *rec;
    char prefix[SC_PREFIX_MAX];
    size_t plen = 0;
    bool in_line = false;		/* a C record started the current line */
    bool begun = false;			/* its start was given to the job */
    int type, got, ret = SC_CONTENT_OK;
    const char *err;

    if (data_offset < 0 || lseek(fd, (off_t) data_offset, SEEK_SET) < 0) {
	errtext_fail(&sc_error, error_r, "seek queue file to %ld: %s", data_offset,
		     strerror(errno));
	return SC_CONTENT_READ_ERROR;
    }
    s = stream_open(fd);
    rec = str_new(QF_RECORD_MAX);
    qf_reader_init(&r, s, (off_t) data_offset);
    if ((got = qf_get(&r, &type, rec, QF_RECORD_MAX, "M", NULL, &err)) <= 0) {
	errtext_fail(&sc_error, error_r, "%s", got < 0 ? err :
		     "queue file: content missing (no message record)");
	ret = SC_CONTENT_READ_ERROR;
	goto out;
    }
    for (;;) {
	if ((got = qf_get(&r, &type, rec, QF_RECORD_MAX, QF_TYPES_CONTENT, NULL, &err)) <= 0) {
	    errtext_fail(&sc_error, error_r, "%s", got < 0 ? err :
			 "queue file: content ends without its end record");
	    ret = SC_CONTENT_READ_ERROR;
	    break;
	}
	if (type == QF_REC_XEND) {
	    if (in_line) {
		errtext_fail(&sc_error, error_r,
			     "corrupt queue file: continued line at the end of the content");
		ret = SC_CONTENT_READ_ERROR;
	    } else {
		ret = job_finish(job);
	    }
	    break;
	}
	const char *data = str_cstr(rec);
	size_t len = str_len(rec);
	bool last = type == QF_REC_LINE;

	if (!begun) {
	    size_t take = len < SC_PREFIX_MAX - plen ? len : SC_PREFIX_MAX - plen;

	    memcpy(prefix + plen, data, take);
	    plen += take;
	    if (plen < SC_PREFIX_MAX && !last) {
		in_line = true;		/* all of it went into the prefix */
		continue;
	    }
	    begun = true;
	    if ((ret = job_line_begin(job, prefix, plen, last && take == len)) != SC_CONTENT_OK
		|| (ret = job_line_data(job, prefix, plen)) != SC_CONTENT_OK)
		break;
	    data += take;
	    len -= take;
	}
	if (len > 0 && (ret = job_line_data(job, data, len)) != SC_CONTENT_OK)
	    break;
	if (last) {
	    if ((ret = job_line_end(job)) != SC_CONTENT_OK)
		break;
	    plen = 0;
	    begun = in_line = false;
	} else {
	    in_line = true;
	}
    }
    if (ret != SC_CONTENT_OK && ret != SC_CONTENT_READ_ERROR)
	*error_r = job->error;
  out:
    str_free(&rec);
    stream_free(&s);
    return ret;
}

/* ---------------------------------------------------------------------
 * Classifying lines.
 * --------------------------------------------------------------------- */

/* is_wsp - SP or HTAB */
static inline bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* field_name_len - the length of the field name when the line starts a
 * header field ("Name:" or the obsolete "Name :"), 0 otherwise */
static size_t field_name_len(const char *p, size_t len)
{
    size_t n = 0, i;

    while (n < len && (unsigned char) p[n] > 32 && (unsigned char) p[n] < 127 && p[n] != ':')
	n++;
    if (n == 0)
	return 0;
    for (i = n; i < len && is_wsp((unsigned char) p[i]); i++)
	;
    return i < len && p[i] == ':' ? n : 0;
}

/* ---------------------------------------------------------------------
 * The wire: every line ends in CR LF, a "." that starts a line is
 * doubled for DATA, no line is longer than the limit (a longer one is
 * broken there: CR LF, and a SP when the rest starts with "-", so that
 * the break never makes a MIME boundary), and with SC_OUT_ENCODE_BINARY
 * no NUL or CR goes out at all. Whatever the MIME layer above does,
 * these hold for every byte given to the sink.
 * --------------------------------------------------------------------- */

/* out_flush - give the buffered output to the sink */
static int out_flush(struct sc_job *job)
{
    const char *err = NULL;

    if (str_len(job->obuf) == 0)
	return SC_CONTENT_OK;
    if (job->sink->write(job->sink->ctx, str_cstr(job->obuf), str_len(job->obuf), &err) < 0) {
	job->error = err ? err : "write error";
	return SC_CONTENT_SINK_ERROR;
    }
    str_reset(job->obuf);
    return SC_CONTENT_OK;
}

/* out_bytes - line content to the wire */
static int out_bytes(struct sc_job *job, const char *p, size_t n)
{
    int ret;

    if ((job->flags & SC_OUT_ENCODE_BINARY) && (memchr(p, '\r', n) || memchr(p, 0, n))) {
	job->error = "NUL or bare CR in content that was not converted";
	return SC_CONTENT_CANNOT_CONVERT;
    }
    while (n > 0) {
	size_t room, take;

	if (job->col >= job->limit) {
	    str_append_or_panic(job->obuf, "\r\n", 2);
	    job->col = 0;
	    if (*p == '-') {
		str_appendc_or_panic(job->obuf, ' ');
		job->col = 1;
	    }
	}
	if (job->col == 0 && *p == '.' && (job->flags & SC_OUT_DOT_STUFF))
	    str_appendc_or_panic(job->obuf, '.');
	room = job->limit - job->col;
	take = n < room ? n : room;
	str_append_or_panic(job->obuf, p, take);
	job->col += take;
	p += take;
	n -= take;
	if (str_len(job->obuf) >= SC_OBUF_FLUSH && (ret = out_flush(job)) != SC_CONTENT_OK)
	    return ret;
    }
    return SC_CONTENT_OK;
}

/* out_eol - end the output line */
static int out_eol(struct sc_job *job)
{
    str_append_or_panic(job->obuf, "\r\n", 2);
    job->col = 0;
    return str_len(job->obuf) >= SC_OBUF_FLUSH ? out_flush(job) : SC_CONTENT_OK;
}

/* ---------------------------------------------------------------------
 * Header lines: folded at the last white space before the limit that
 * follows some other character, or, with none, broken at the limit with
 * CR LF SP. The fold buffer holds at most limit + 1 bytes of the line.
 * --------------------------------------------------------------------- */

/* fold_break - the fold buffer passed the limit: send one folded line */
static int fold_break(struct sc_job *job)
{
    const char *b = str_cstr(job->fold);
    size_t len = str_len(job->fold), first = 0, cut = 0, i;
    int ret;

    while (first < len && is_wsp((unsigned char) b[first]))
	first++;
    for (i = job->limit; i > first; i--) {
	if (is_wsp((unsigned char) b[i])) {
	    cut = i;
	    break;
	}
    }
    if (cut > 0) {
	if ((ret = out_bytes(job, b, cut)) != SC_CONTENT_OK || (ret = out_eol(job)) != SC_CONTENT_OK)
	    return ret;
	memmove(job->fold->data, b + cut, len - cut);
	if (!str_truncate(job->fold, len - cut))
	    msg_panic("fold_break: truncate");
    } else {
	if ((ret = out_bytes(job, b, job->limit)) != SC_CONTENT_OK
	    || (ret = out_eol(job)) != SC_CONTENT_OK)
	    return ret;
	memmove(job->fold->data + 1, b + job->limit, len - job->limit);
	job->fold->data[0] = ' ';
	if (!str_truncate(job->fold, len - job->limit + 1))
	    msg_panic("fold_break: truncate");
    }
    return SC_CONTENT_OK;
}

/* fold_bytes - header line content */
static int fold_bytes(struct sc_job *job, const char *p, size_t n)
{
    int ret;

    while (n > 0) {
	size_t room = job->limit + 1 - str_len(job->fold);
	size_t take = n < room ? n : room;

	str_append_or_panic(job->fold, p, take);
	p += take;
	n -= take;
	if (str_len(job->fold) > job->limit && (ret = fold_break(job)) != SC_CONTENT_OK)
	    return ret;
    }
    return SC_CONTENT_OK;
}

/* fold_eol - the end of a header line */
static int fold_eol(struct sc_job *job)
{
    int ret;

    ret = out_bytes(job, str_cstr(job->fold), str_len(job->fold));
    str_reset(job->fold);
    return ret != SC_CONTENT_OK ? ret : out_eol(job);
}

/* ---------------------------------------------------------------------
 * Encoded body lines, built in lbuf and broken with a soft line break
 * ("=" at the end) before they pass max: quoted-printable from raw
 * bytes (RFC 2045 6.7), or an existing quoted-printable line that is
 * too long. A line that follows a soft break never starts with a
 * literal "-" ("=2D" instead: the same decoded byte), so a break never
 * makes a MIME boundary.
 * --------------------------------------------------------------------- */

static const char hexdigits[] = "0123456789ABCDEF";

/* lbuf_out - the encoded line to the wire */
static int lbuf_out(struct sc_job *job)
{
    int ret = out_bytes(job, str_cstr(job->lbuf), str_len(job->lbuf));

    str_reset(job->lbuf);
    return ret;
}

/* enc_append - one token at the end of the encoded line */
static void enc_append(struct sc_job *job, const char *tok, size_t tlen)
{
    if (str_len(job->lbuf) == 0 && job->soft && tlen == 1 && tok[0] == '-') {
	tok = "=2D";
	tlen = 3;
    }
    str_append_or_panic(job->lbuf, tok, tlen);
}

/* enc_put - one token (a byte, or "=XX"); the line is broken first when
 * it would pass max (the "=" must fit too: the last token may move) */
static int enc_put(struct sc_job *job, const char *tok, size_t tlen, size_t max, size_t *last)
{
    char carry[3];
    size_t clen = 0;
    int ret;

    if (str_len(job->lbuf) + tlen > max) {
	if (str_len(job->lbuf) + 1 > max) {
	    clen = str_len(job->lbuf) - *last;
	    memcpy(carry, str_cstr(job->lbuf) + *last, clen);
	    if (!str_truncate(job->lbuf, *last))
		msg_panic("enc_put: truncate");
	}
	str_appendc_or_panic(job->lbuf, '=');
	if ((ret = lbuf_out(job)) != SC_CONTENT_OK || (ret = out_eol(job)) != SC_CONTENT_OK)
	    return ret;
	job->soft = true;
	if (clen > 0)
	    enc_append(job, carry, clen);
    }
    *last = str_len(job->lbuf);
    enc_append(job, tok, tlen);
    return SC_CONTENT_OK;
}

/* qp_max - the longest quoted-printable line */
static size_t qp_max(const struct sc_job *job)
{
    return job->limit < 76 ? job->limit : 76;
}

/* qp_byte - one raw byte, encoded */
static int qp_byte(struct sc_job *job, unsigned char c)
{
    char t[3];
    int ret;

    if (job->pending_wsp) {		/* not at the end of the line: literal */
	t[0] = job->pending_wsp;
	job->pending_wsp = 0;
	if ((ret = enc_put(job, t, 1, qp_max(job), &job->last_tok)) != SC_CONTENT_OK)
	    return ret;
    }
    if (c == ' ' || c == '\t') {
	job->pending_wsp = (char) c;
	return SC_CONTENT_OK;
    }
    if (c >= 33 && c <= 126 && c != '=') {
	t[0] = (char) c;
	return enc_put(job, t, 1, qp_max(job), &job->last_tok);
    }
    t[0] = '=';
    t[1] = hexdigits[c >> 4];
    t[2] = hexdigits[c & 15];
    return enc_put(job, t, 3, qp_max(job), &job->last_tok);
}

/* qp_bytes - raw bytes of a line, encoded */
static int qp_bytes(struct sc_job *job, const char *p, size_t n)
{
    int ret;

    for (size_t i = 0; i < n; i++)
	if ((ret = qp_byte(job, (unsigned char) p[i])) != SC_CONTENT_OK)
	    return ret;
    return SC_CONTENT_OK;
}

/* qp_eol - the end of a raw line: white space at the end is encoded */
static int qp_eol(struct sc_job *job)
{
    char t[3];
    int ret;

    if (job->pending_wsp) {
	t[0] = '=';
	t[1] = hexdigits[(unsigned char) job->pending_wsp >> 4];
	t[2] = hexdigits[(unsigned char) job->pending_wsp & 15];
	job->pending_wsp = 0;
	if ((ret = enc_put(job, t, 3, qp_max(job), &job->last_tok)) != SC_CONTENT_OK)
	    return ret;
    }
    job->soft = false;
    if ((ret = lbuf_out(job)) != SC_CONTENT_OK)
	return ret;
    return out_eol(job);
}

/* sb_bytes - bytes of an existing quoted-printable line: "=XX" is kept
 * in one piece */
static int sb_bytes(struct sc_job *job, const char *p, size_t n)
{
    int ret;

    for (size_t i = 0; i < n; i++) {
	if (job->tok_len > 0) {
	    job->tok[job->tok_len++] = p[i];
	    if (job->tok_len < 3)
		continue;
	    job->tok_len = 0;
	    ret = enc_put(job, job->tok, 3, qp_max(job), &job->last_tok);
	} else if (p[i] == '=') {
	    job->tok[0] = '=';
	    job->tok_len = 1;
	    continue;
	} else {
	    ret = enc_put(job, p + i, 1, qp_max(job), &job->last_tok);
	}
	if (ret != SC_CONTENT_OK)
	    return ret;
    }
    return SC_CONTENT_OK;
}

/* sb_eol - the end of an existing quoted-printable line */
static int sb_eol(struct sc_job *job)
{
    int ret;

    if (job->tok_len > 0) {
	char t[3];
	size_t tlen = job->tok_len;

	memcpy(t, job->tok, tlen);
	job->tok_len = 0;
	if ((ret = enc_put(job, t, tlen, qp_max(job), &job->last_tok)) != SC_CONTENT_OK)
	    return ret;
    }
    job->soft = false;
    if ((ret = lbuf_out(job)) != SC_CONTENT_OK)
	return ret;
    return out_eol(job);
}

/* ---------------------------------------------------------------------
 * MIME header values: Content-Type (type, subtype, boundary) and
 * Content-Transfer-Encoding, with comments and quoted strings.
 * --------------------------------------------------------------------- */

/* skip_cfws - past white space and (nested) comments */
static const char *skip_cfws(const char *p, const char *end)
{
    int depth = 0;

    while (p < end) {
	if (depth > 0) {
	    if (*p == '\\' && p + 1 < end)
		p++;
	    else if (*p == '(')
		depth++;
	    else if (*p == ')')
		depth--;
	    p++;
	} else if (is_wsp((unsigned char) *p)) {
	    p++;
	} else if (*p == '(') {
	    depth = 1;
	    p++;
	} else {
	    break;
	}
    }
    return p;
}

/* token_end - the end of an RFC 2045 token at p */
static const char *token_end(const char *p, const char *end)
{
    while (p < end && (unsigned char) *p > 32 && (unsigned char) *p < 127
	   && strchr("()<>@,;:\\\"/[]?=", *p) == NULL)
	p++;
    return p;
}

/* token_is - the token [p, e) is word, ignoring case */
static bool token_is(const char *p, const char *e, const char *word)
{
    size_t n = strlen(word);

    return (size_t) (e - p) == n && strncasecmp(p, word, n) == 0;
}

/* What a Content-Type says, as far as the walk cares. */
struct sc_ctype {
    bool multipart, rfc822, digest;
    char boundary[SC_BOUNDARY_MAX];
    size_t blen;			/* 0: none (or unusable) */
};

/* parse_ctype - the type, subtype and boundary of a Content-Type value */
static void parse_ctype(const struct str *value, struct sc_ctype *ct)
{
    const char *p = str_cstr(value), *end = p + str_len(value), *t, *te, *s, *se;
    bool have_boundary = false;

    memset(ct, 0, sizeof(*ct));
    p = skip_cfws(p, end);
    te = token_end(t = p, end);
    p = skip_cfws(te, end);
    if (p >= end || *p != '/')
	return;
    p = skip_cfws(p + 1, end);
    se = token_end(s = p, end);
    p = se;
    ct->multipart = token_is(t, te, "multipart") && se > s;
    ct->rfc822 = token_is(t, te, "message") && token_is(s, se, "rfc822");
    ct->digest = ct->multipart && token_is(s, se, "digest");
    for (;;) {				/* ; name = value */
	const char *n, *ne;
	char val[SC_BOUNDARY_MAX];
	size_t vlen = 0;
	bool fits = true;

	p = skip_cfws(p, end);
	if (p >= end || *p != ';')
	    break;
	p = skip_cfws(p + 1, end);
	ne = token_end(n = p, end);
	p = skip_cfws(ne, end);
	if (ne == n || p >= end || *p != '=')
	    break;
	p = skip_cfws(p + 1, end);
	if (p < end && *p == '"') {
	    for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\' && p + 1 < end)
		    p++;
		if (vlen < sizeof(val))
		    val[vlen++] = *p;
		else
		    fits = false;
	    }
	    if (p >= end)
		break;			/* no closing quote */
	    p++;
	} else {
	    const char *ve = token_end(p, end);

	    if ((size_t) (ve - p) > sizeof(val))
		fits = false;
	    else
		memcpy(val, p, vlen = (size_t) (ve - p));
	    p = ve;
	}
	if (!have_boundary && token_is(n, ne, "boundary")) {
	    have_boundary = true;	/* the first one counts */
	    bool ok = fits && vlen > 0;

	    for (size_t i = 0; ok && i < vlen; i++)
		if ((unsigned char) val[i] < 32 || (unsigned char) val[i] > 126)
		    ok = false;
	    if (ok) {
		memcpy(ct->boundary, val, vlen);
		ct->blen = vlen;
	    }
	}
    }
}

/* parse_cte - a Content-Transfer-Encoding value */
static enum sc_cte parse_cte(const struct str *value)
{
    const char *p = str_cstr(value), *end = p + str_len(value), *e;

    p = skip_cfws(p, end);
    e = token_end(p, end);
    if (token_is(p, e, "7bit"))
	return CTE_7BIT;
    if (token_is(p, e, "8bit"))
	return CTE_8BIT;
    if (token_is(p, e, "binary"))
	return CTE_BINARY;
    if (token_is(p, e, "quoted-printable"))
	return CTE_QP;
    if (token_is(p, e, "base64"))
	return CTE_BASE64;
    return CTE_OTHER;
}

/* ---------------------------------------------------------------------
 * Decisions.
 * --------------------------------------------------------------------- */

/* relabel - a composite's Content-Transfer-Encoding after conversion */
static enum sc_action relabel(int cte, unsigned flags)
{
    if (cte == CTE_BINARY && (flags & SC_OUT_ENCODE_BINARY))
	return (flags & SC_OUT_ENCODE_8BIT) ? ACT_RELABEL_7BIT : ACT_RELABEL_8BIT;
    if (cte == CTE_8BIT && (flags & SC_OUT_ENCODE_8BIT))
	return ACT_RELABEL_7BIT;
    return ACT_NONE;
}

/* needs_conversion - the needs that the flags turn into work */
static bool needs_conversion(unsigned needs, unsigned flags)
{
    return ((needs & NEED_8BIT) && (flags & SC_OUT_ENCODE_8BIT))
	|| ((needs & NEED_BIN) && (flags & SC_OUT_ENCODE_BINARY));
}

/* part_need - the scan pass saw something in entity e */
static void part_need(struct sc_job *job, int e, unsigned need)
{
    if (job->parts == NULL)
	return;
    if (e < SC_PARTS_MAX) {
	job->parts[e].needs |= (unsigned char) need;
    } else if (needs_conversion(need, job->flags) || (need & NEED_LONG)
	       || ((need & NEED_HDR8) && (job->flags & SC_OUT_ENCODE_8BIT))
	       || ((need & NEED_HDRBIN) && (job->flags & SC_OUT_ENCODE_BINARY))) {
	job->overflow = true;
    }
}

/* cannot - SC_CONTENT_CANNOT_CONVERT with a reason about entity e (the
 * caller puts "cannot convert the message..." in front) */
static int cannot(struct sc_job *job, int e, const char *what)
{
    if (e == 0)
	job->error = errtext_set(&sc_error, "%s", what);
    else
	job->error = errtext_set(&sc_error, "MIME part %d: %s", e, what);
    return SC_CONTENT_CANNOT_CONVERT;
}

/* decide_part - what the write pass does with entity e */
static int decide_part(struct sc_job *job, int e)
{
    struct sc_part *p = job->parts + e;
    unsigned f = job->flags, n = p->needs;
    bool conv = needs_conversion(n, f);

    p->action = ACT_NONE;
    if ((n & NEED_HDR8) && (f & SC_OUT_ENCODE_8BIT))
	return cannot(job, e, "8-bit characters in a header (no 8BITMIME)");
    if ((n & NEED_HDRBIN) && (f & SC_OUT_ENCODE_BINARY))
	return cannot(job, e, "NUL or bare CR in a header");
    if (p->kind != K_LEAF) {
	if (conv)
	    return cannot(job, e, "8-bit or binary data in a multipart preamble or epilogue");
	p->action = (unsigned char) relabel(p->cte, f);
	return SC_CONTENT_OK;
    }
    if (!conv && !(n & NEED_LONG))
	return SC_CONTENT_OK;
    if (p->facts & P_TOODEEP)
	return cannot(job, e, "MIME structure nested too deeply to convert");
    switch (p->cte) {
    case CTE_NONE:
    case CTE_7BIT:
    case CTE_8BIT:
    case CTE_BINARY:
	if (p->facts & P_COMPOSITE)
	    return cannot(job, e, "a multipart or message part without a usable structure"
			  " needs conversion");
	p->action = ACT_QP;
	return SC_CONTENT_OK;
    case CTE_BASE64:
	if (conv)
	    return cannot(job, e, "8-bit or binary data in a base64 part");
	return SC_CONTENT_OK;		/* long lines: broken on the wire */
    case CTE_QP:
	if (conv)
	    return cannot(job, e, "8-bit or binary data in a quoted-printable part");
	p->action = ACT_SOFTBREAK;
	return SC_CONTENT_OK;
    default:
	return cannot(job, e, "a part with an unknown Content-Transfer-Encoding needs conversion");
    }
}

/* decide - after the scan pass: an action for every entity, or why not */
static int decide(struct sc_job *job)
{
    int ret, n = job->nparts < SC_PARTS_MAX ? job->nparts : SC_PARTS_MAX;

    for (int e = 0; e < n; e++)
	if ((ret = decide_part(job, e)) != SC_CONTENT_OK)
	    return ret;
    if (job->overflow) {
	job->error = errtext_set(&sc_error, "more than %d MIME parts", SC_PARTS_MAX);
	return SC_CONTENT_CANNOT_CONVERT;
    }
    return SC_CONTENT_OK;
}

/* action_of - the write pass: what was decided for entity e */
static int action_of(const struct sc_job *job, int e)
{
    return job->parts && e < SC_PARTS_MAX ? job->parts[e].action : ACT_NONE;
}

/* facts_of - the write pass: what the scan learned about entity e */
static unsigned facts_of(const struct sc_job *job, int e)
{
    return job->parts && e < SC_PARTS_MAX ? job->parts[e].facts : 0;
}

/* ---------------------------------------------------------------------
 * The MIME walk, shared by both passes.
 * --------------------------------------------------------------------- */

/* header_start - a new entity's header begins */
static void header_start(struct sc_job *job, int depth, bool default_rfc822)
{
    job->part = job->nparts;
    if (job->nparts <= SC_PARTS_MAX)	/* past it they share one number */
	job->nparts++;
    job->depth = depth;
    job->top = job->part == 0;
    job->default_rfc822 = default_rfc822;
    job->state = M_HEADER;
    job->field = F_NONE;
    job->mime_version = job->have_ctype = job->have_cte = false;
    job->collect = NULL;
    job->dropping = false;
    str_reset(job->ctype);
    str_reset(job->cte);
}

/* out_text - a line of our own */
static int out_text(struct sc_job *job, const char *text)
{
    int ret;

    if ((ret = out_bytes(job, text, strlen(text))) != SC_CONTENT_OK)
	return ret;
    return out_eol(job);
}

/* write_additions - the write pass, at the end of entity e's header:
 * the fields that replace the dropped ones */
static int write_additions(struct sc_job *job, int e, enum sc_hdr_end how)
{
    int act = action_of(job, e), ret, added = 0;

    if (act == ACT_QP && (facts_of(job, e) & P_NONMIME)) {
	if ((ret = out_text(job, "MIME-Version: 1.0")) != SC_CONTENT_OK
	    || (ret = out_text(job, (job->parts[e].needs & NEED_8BIT)
			       ? "Content-Type: text/plain; charset=unknown-8bit"
			       : "Content-Type: text/plain; charset=us-ascii")) != SC_CONTENT_OK)
	    return ret;
	added++;
    }
    if (act == ACT_QP || act == ACT_RELABEL_7BIT || act == ACT_RELABEL_8BIT) {
	if ((ret = out_text(job, act == ACT_QP ? "Content-Transfer-Encoding: quoted-printable"
			    : act == ACT_RELABEL_7BIT ? "Content-Transfer-Encoding: 7bit"
			    : "Content-Transfer-Encoding: 8bit")) != SC_CONTENT_OK)
	    return ret;
	added++;
    }
    if (added > 0 && how == END_NONHEADER)	/* the header ended without one */
	return out_eol(job);
    return SC_CONTENT_OK;
}

/* header_done - the header of the current entity ended: what follows */
static int header_done(struct sc_job *job, enum sc_hdr_end how)
{
    int e = job->part, ret;
    enum sc_kind kind = K_LEAF;
    enum sc_cte cte = CTE_NONE;
    unsigned facts = 0;
    struct sc_ctype ct;

    memset(&ct, 0, sizeof(ct));
    if (job->top && !job->mime_version) {
	facts |= P_NONMIME;
    } else {
	if (job->have_cte)
	    cte = parse_cte(job->cte);
	if (job->have_ctype)
	    parse_ctype(job->ctype, &ct);
	else
	    ct.rfc822 = job->default_rfc822;
	bool identity = cte == CTE_NONE || cte == CTE_7BIT || cte == CTE_8BIT
	    || cte == CTE_BINARY;

	if (ct.multipart || ct.rfc822) {
	    if (!identity || (ct.multipart && ct.blen == 0))
		facts |= P_COMPOSITE;
	    else if (job->depth >= SC_CONTENT_MIME_DEPTH)
		facts |= P_COMPOSITE | P_TOODEEP;
	    else
		kind = ct.multipart ? K_MULTIPART : K_MESSAGE;
	}
    }
    if (job->pass == SC_PASS_SCAN && job->parts) {
	if (e < SC_PARTS_MAX) {
	    job->parts[e].kind = (unsigned char) kind;
	    job->parts[e].cte = (unsigned char) cte;
	    job->parts[e].facts = (unsigned char) facts;
	} else if (kind != K_LEAF && relabel(cte, job->flags) != ACT_NONE) {
	    job->overflow = true;
	}
    }
    if (job->pass == SC_PASS_WRITE && (ret = write_additions(job, e, how)) != SC_CONTENT_OK)
	return ret;
    job->collect = NULL;
    job->dropping = false;
    if (kind == K_MULTIPART) {
	struct sc_level *lv = job->level + job->nlevels++;

	memcpy(lv->boundary, ct.boundary, ct.blen);
	lv->blen = ct.blen;
	lv->part = e;
	lv->depth = job->depth;
	lv->digest = ct.digest;
	job->state = M_MULTI;
    } else if (kind == K_MESSAGE) {
	header_start(job, job->depth + 1, false);
    } else {
	job->state = M_BODY;
    }
    return SC_CONTENT_OK;
}

/* boundary_match - the innermost multipart whose delimiter starts the
 * line, or -1 */
static int boundary_match(const struct sc_job *job, const char *prefix, size_t plen, bool *close)
{
    if (job->nlevels == 0 || plen < 2 || prefix[0] != '-' || prefix[1] != '-')
	return -1;
    for (int k = job->nlevels - 1; k >= 0; k--) {
	const struct sc_level *lv = job->level + k;

	if (plen >= 2 + lv->blen && memcmp(prefix + 2, lv->boundary, lv->blen) == 0) {
	    *close = plen >= 4 + lv->blen && prefix[2 + lv->blen] == '-'
		&& prefix[3 + lv->blen] == '-';
	    return k;
	}
    }
    return -1;
}

/* field_kind - which header field starts with the name at p */
static enum sc_field field_kind(const char *p, size_t n)
{
    if (n == 12 && strncasecmp(p, "Content-Type", 12) == 0)
	return F_CTYPE;
    if (n == 25 && strncasecmp(p, "Content-Transfer-Encoding", 25) == 0)
	return F_CTE;
    if (n == 12 && strncasecmp(p, "MIME-Version", 12) == 0)
	return F_MIMEVER;
    return F_OTHER;
}

/* header_field - a header field starts (or goes on: cont) */
static void header_field(struct sc_job *job, const char *prefix, size_t plen, size_t nlen)
{
    const char *colon = memchr(prefix, ':', plen);
    int act;
    unsigned facts;

    job->field = field_kind(prefix, nlen);
    job->value_from = (size_t) (colon - prefix) + 1;
    job->collect = NULL;
    if (job->field == F_CTYPE && !job->have_ctype) {
	job->have_ctype = true;
	job->collect = job->ctype;
    } else if (job->field == F_CTE && !job->have_cte) {
	job->have_cte = true;
	job->collect = job->cte;
    } else if (job->field == F_MIMEVER) {
	job->mime_version = true;
	if (job->top && job->info)
	    job->info->mime = true;
    }
    if (job->pass == SC_PASS_WRITE) {
	act = action_of(job, job->part);
	facts = facts_of(job, job->part);
	job->dropping = (job->field == F_CTE && act != ACT_NONE && act != ACT_SOFTBREAK)
	    || ((job->field == F_CTYPE || job->field == F_MIMEVER) && act == ACT_QP
		&& (facts & P_NONMIME));
    }
}

/* job_line_begin - a line starts: what it is, from its first bytes */
static int job_line_begin(struct sc_job *job, const char *prefix, size_t plen, bool whole)
{
    size_t nlen;
    bool close = false;
    int k, ret;

    job->line_len = 0;
    for (int round = 0;; round++) {
	if (round > 2 * SC_CONTENT_MIME_DEPTH + 8)
	    msg_panic("sc_content: line classification does not end");
	k = boundary_match(job, prefix, plen, &close);
	if (job->state == M_HEADER) {
	    if (k >= 0) {
		if ((ret = header_done(job, END_BOUNDARY)) != SC_CONTENT_OK)
		    return ret;
		continue;
	    }
	    if (plen == 0 && whole) {
		job->role = R_SEP;
		return header_done(job, END_EMPTY);
	    }
	    if (is_wsp((unsigned char) prefix[0]) && job->field != F_NONE) {
		job->role = R_CONT;
		job->value_from = 0;
		return SC_CONTENT_OK;
	    }
	    if ((nlen = field_name_len(prefix, plen)) > 0) {
		job->role = R_FIELD;
		header_field(job, prefix, plen, nlen);
		return SC_CONTENT_OK;
	    }
	    if ((ret = header_done(job, END_NONHEADER)) != SC_CONTENT_OK)
		return ret;
	    continue;
	}
	if (k < 0) {
	    job->role = R_BODY;
	    job->act = job->state == M_BODY ? action_of(job, job->part) : ACT_NONE;
	    return SC_CONTENT_OK;
	}
	job->role = R_BOUNDARY;
	job->boundary_level = k;
	job->boundary_close = close;
	job->boundary_long = false;
	if (close) {			/* the epilogue: the multipart's lines */
	    job->part = job->level[k].part;
	    job->depth = job->level[k].depth;
	    job->nlevels = k;
	    job->state = M_MULTI;
	} else {
	    job->nlevels = k + 1;
	    header_start(job, job->level[k].depth + 1, job->level[k].digest);
	}
	return SC_CONTENT_OK;
    }
}

/* scan_bytes - the scan pass: what the bytes of the line hold */
static void scan_bytes(struct sc_job *job, const char *data, size_t len)
{
    const unsigned char *u = (const unsigned char *) data;
    unsigned char any = 0;
    bool high, bin;

    for (size_t i = 0; i < len; i++)	/* vectorizes */
	any |= u[i];
    high = (any & 0x80) != 0;
    bin = memchr(data, 0, len) != NULL || memchr(data, '\r', len) != NULL;
    if (!high && !bin)
	return;
    if (job->info) {
	if (high) {
	    if (job->top && (job->role == R_FIELD || job->role == R_CONT))
		job->info->header_8bit = true;
	    else
		job->info->body_8bit = true;
	}
	if (bin)
	    job->info->binary = true;
    }
    if (job->role == R_FIELD || job->role == R_CONT)
	part_need(job, job->part, (high ? NEED_HDR8 : 0) | (bin ? NEED_HDRBIN : 0));
    else if (job->role == R_BODY)
	part_need(job, job->part, (high ? NEED_8BIT : 0) | (bin ? NEED_BIN : 0));
}

/* job_line_data - bytes of the line */
static int job_line_data(struct sc_job *job, const char *data, size_t len)
{
    size_t at = job->line_len;

    if (len == 0)
	return SC_CONTENT_OK;
    job->line_len += len;
    if (job->collect && at + len > job->value_from) {
	size_t skip = at < job->value_from ? job->value_from - at : 0;
	size_t n = len - skip, room = job->collect->max - str_len(job->collect);

	str_append_or_panic(job->collect, data + skip, n < room ? n : room);
    }
    if (job->pass == SC_PASS_SCAN) {
	scan_bytes(job, data, len);
	return SC_CONTENT_OK;
    }
    switch (job->role) {
    case R_FIELD:
    case R_CONT:
	return job->dropping ? SC_CONTENT_OK : fold_bytes(job, data, len);
    case R_BODY:
	return job->act == ACT_QP ? qp_bytes(job, data, len)
	    : job->act == ACT_SOFTBREAK ? sb_bytes(job, data, len)
	    : out_bytes(job, data, len);
    case R_BOUNDARY:			/* kept until its end */
	if (job->boundary_long || str_len(job->lbuf) + len > job->limit)
	    job->boundary_long = true;
	else
	    str_append_or_panic(job->lbuf, data, len);
	return SC_CONTENT_OK;
    default:
	return SC_CONTENT_OK;		/* R_SEP is empty */
    }
}

/* job_line_end - the line is complete */
static int job_line_end(struct sc_job *job)
{
    if (job->pass == SC_PASS_SCAN) {
	if (job->info) {
	    job->info->lines++;
	    job->info->size += (long) job->line_len + 2;
	    if (job->line_len > job->limit)
		job->info->long_lines = true;
	}
	if (job->role == R_BODY && job->line_len > job->limit)
	    part_need(job, job->part, NEED_LONG);
	return SC_CONTENT_OK;
    }
    switch (job->role) {
    case R_FIELD:
    case R_CONT:
	return job->dropping ? SC_CONTENT_OK : fold_eol(job);
    case R_SEP:
	return out_eol(job);
    case R_BOUNDARY:
	return boundary_out(job);
    case R_BODY:
	return job->act == ACT_QP ? qp_eol(job)
	    : job->act == ACT_SOFTBREAK ? sb_eol(job)
	    : out_eol(job);
    default:
	return SC_CONTENT_OK;
    }
}

/* boundary_out - a delimiter line goes out as it is when that is safe,
 * else as the delimiter alone (what follows it is transport padding,
 * which RFC 2046 tells readers to ignore) */
static int boundary_out(struct sc_job *job)
{
    const struct sc_level *lv = job->level + job->boundary_level;
    const char *p = str_cstr(job->lbuf);
    size_t n = str_len(job->lbuf);
    bool clean = !job->boundary_long;
    int ret;

    for (size_t i = 0; clean && i < n; i++) {
	unsigned char c = (unsigned char) p[i];

	if ((c >= 0x80 && (job->flags & SC_OUT_ENCODE_8BIT))
	    || ((c == 0 || c == '\r') && (job->flags & SC_OUT_ENCODE_BINARY)))
	    clean = false;
    }
    if (clean) {
	ret = lbuf_out(job);
    } else {
	str_reset(job->lbuf);
	if ((ret = out_bytes(job, "--", 2)) == SC_CONTENT_OK
	    && (ret = out_bytes(job, lv->boundary, lv->blen)) == SC_CONTENT_OK
	    && job->boundary_close)
	    ret = out_bytes(job, "--", 2);
    }
    return ret != SC_CONTENT_OK ? ret : out_eol(job);
}

/* job_finish - the end of the content: a header still open ends */
static int job_finish(struct sc_job *job)
{
    int ret;

    for (int round = 0; job->state == M_HEADER; round++) {
	if (round > SC_CONTENT_MIME_DEPTH + 2)
	    msg_panic("sc_content: header end does not end");
	if ((ret = header_done(job, END_EOF)) != SC_CONTENT_OK)
	    return ret;
    }
    return SC_CONTENT_OK;
}

/* ---------------------------------------------------------------------
 * The interface.
 * --------------------------------------------------------------------- */

/* job_init - a job at the start of the content */
static void job_init(struct sc_job *job, enum sc_pass pass, size_t limit, unsigned flags)
{
    job->pass = pass;
    job->limit = limit;
    job->flags = flags;
    job->nparts = 0;
    job->nlevels = 0;
    job->overflow = false;
    job->col = 0;
    job->pending_wsp = 0;
    job->soft = false;
    job->tok_len = 0;
    header_start(job, 0, false);
}

/* job_alloc - the buffers of a job */
static void job_alloc(struct sc_job *job)
{
    memset(job, 0, sizeof(*job));
    job->ctype = str_new(SC_FIELD_MAX);
    job->cte = str_new(SC_FIELD_MAX);
}

/* job_free - release the buffers */
static void job_free(struct sc_job *job)
{
    str_free(&job->ctype);
    str_free(&job->cte);
    if (job->obuf)
	str_free(&job->obuf);
    if (job->fold)
	str_free(&job->fold);
    if (job->lbuf)
	str_free(&job->lbuf);
    mem_free(&job->parts);
}

/* clamp_limit - the line limit actually used */
static size_t clamp_limit(long line_limit)
{
    if (line_limit < SC_LIMIT_MIN)
	return SC_LIMIT_MIN;
    if (line_limit > SC_LIMIT_MAX)
	return SC_LIMIT_MAX;
    return (size_t) line_limit;
}

/* sc_content_scan - what the content needs */
int sc_content_scan(int fd, long data_offset, long line_limit, struct sc_content_info *info,
		    const char **error_r)
{
    struct sc_job job;
    int ret;

    memset(info, 0, sizeof(*info));
    job_alloc(&job);
    job.info = info;
    job_init(&job, SC_PASS_SCAN, line_limit < 1 ? 1 : (size_t) line_limit, 0);
    ret = sc_walk(fd, data_offset, &job, error_r);
    job_free(&job);
    return ret == SC_CONTENT_OK ? 0 : -1;
}

/* sc_content_write - the content to the sink */
enum sc_content_status sc_content_write(int fd, long data_offset, long line_limit,
					unsigned flags, const struct sc_sink *sink,
					const char **error_r)
{
    struct sc_job job;
    size_t limit = clamp_limit(line_limit);
    int ret;

    /* DATA has no way to carry a bare CR safely: never unconverted */
    if (flags & SC_OUT_DOT_STUFF)
	flags |= SC_OUT_ENCODE_BINARY;
    job_alloc(&job);
    job.parts = mem_zalloc(sizeof(struct sc_part) * SC_PARTS_MAX);
    job_init(&job, SC_PASS_SCAN, limit, flags);
    if ((ret = sc_walk(fd, data_offset, &job, error_r)) == SC_CONTENT_OK
	&& (ret = decide(&job)) == SC_CONTENT_OK) {
	job.sink = sink;
	job.obuf = str_new(SC_OBUF_FLUSH + SC_LIMIT_MAX + 16);
	job.fold = str_new(SC_LIMIT_MAX + 1);
	job.lbuf = str_new(SC_LIMIT_MAX + 8);
	job_init(&job, SC_PASS_WRITE, limit, flags);
	ret = sc_walk(fd, data_offset, &job, error_r);
	if (ret == SC_CONTENT_OK && (str_len(job.fold) > 0 || str_len(job.lbuf) > 0))
	    msg_panic("sc_content_write: a line was left unsent");
	if (ret == SC_CONTENT_OK)
	    ret = out_flush(&job);
    }
    if (ret != SC_CONTENT_OK && ret != SC_CONTENT_READ_ERROR)
	*error_r = job.error;
    job_free(&job);
    return (enum sc_content_status) ret;
}
