/* imap_search_match.c - the matching SEARCH needs on one message: a
 * string contained in a header field (RFC 2047 decoded) or in the
 * bodies (quoted-printable and base64 decoded, charsets converted to
 * UTF-8), case-insensitively (Unicode simple case folding for the
 * common alphabets); the date of the Date: field; IMAP dates.
 *
 * Bodies go through a chain of small fixed-size stages (transfer
 * decoding -> charset conversion -> case folding -> Knuth-Morris-Pratt
 * matcher), so a 50 MiB attachment is matched without a copy. */

#include <iconv.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* base */
#include "mem.h"
#include "str.h"

/* this program */
#include "imap_msg.h"
#include "imap_msg_int.h"

#define CHUNK	4096		/* bytes a stage hands on at a time */

/* ------------------------------------------------------------------ */
/* Case folding */

/* fold_cp - simple case folding of one code point (the alphabets
 * where it matters most; others unchanged) */
static uint32_t fold_cp(uint32_t c)
{
    if (c < 0x80)
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c < 0x100) {
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
	    return c + 32;
	return c == 0xB5 ? 0x3BC : c;
    }
    if (c <= 0x17F) {
	if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149)
	    return c;
	if (c == 0x178)
	    return 0xFF;
	if (c == 0x17F)
	    return 's';
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
	    return (c & 1) ? c + 1 : c;
	return c | 1;		/* 0x100-0x137, 0x14A-0x177: even upper */
    }
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
	return c + 32;
    if (c == 0x386)
	return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
	return c + 37;
    if (c == 0x38C)
	return 0x3CC;
    if (c == 0x38E || c == 0x38F)
	return c + 63;
    if (c == 0x3C2)
	return 0x3C3;
    if (c >= 0x410 && c <= 0x42F)
	return c + 32;
    if (c >= 0x400 && c <= 0x40F)
	return c + 80;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF))
	return c | 1;
    if (c >= 0x531 && c <= 0x556)
	return c + 48;
    if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF))
	return c | 1;
    if (c == 0x1E9E)
	return 0xDF;
    if (c == 0x212A)
	return 'k';
    if (c == 0x212B)
	return 0xE5;
    if (c >= 0xFF21 && c <= 0xFF3A)
	return c + 32;
    return c;
}

/* utf8_put - encode c at out (4 bytes room); the length */
static size_t utf8_put(uint32_t c, unsigned char *out)
{
    if (c < 0x80) {
	out[0] = (unsigned char) c;
	return 1;
    }
    if (c < 0x800) {
	out[0] = (unsigned char) (0xC0 | (c >> 6));
	out[1] = (unsigned char) (0x80 | (c & 0x3F));
	return 2;
    }
    if (c < 0x10000) {
	out[0] = (unsigned char) (0xE0 | (c >> 12));
	out[1] = (unsigned char) (0x80 | ((c >> 6) & 0x3F));
	out[2] = (unsigned char) (0x80 | (c & 0x3F));
	return 3;
    }
    out[0] = (unsigned char) (0xF0 | (c >> 18));
    out[1] = (unsigned char) (0x80 | ((c >> 12) & 0x3F));
    out[2] = (unsigned char) (0x80 | ((c >> 6) & 0x3F));
    out[3] = (unsigned char) (0x80 | (c & 0x3F));
    return 4;
}

/* utf8_seq_len - the length a lead byte announces (0: not a lead) */
static size_t utf8_seq_len(unsigned char b)
{
    if (b < 0x80)
	return 1;
    if (b >= 0xC2 && b <= 0xDF)
	return 2;
    if (b >= 0xE0 && b <= 0xEF)
	return 3;
    if (b >= 0xF0 && b <= 0xF4)
	return 4;
    return 0;
}

/* utf8_decode - the code point of a complete sequence s[0..n) */
static uint32_t utf8_decode(const unsigned char *s, size_t n)
{
    uint32_t c = n == 1 ? s[0] : n == 2 ? s[0] & 0x1Fu : n == 3 ? s[0] & 0x0Fu : s[0] & 0x07u;

    for (size_t i = 1; i < n; i++)
	c = (c << 6) | (s[i] & 0x3Fu);
    return c;
}

/* A folder turns UTF-8 (possibly cut anywhere, possibly invalid) into
 * folded UTF-8 for a byte sink; invalid bytes pass as they are. */
typedef void byte_sink(void *ctx, const unsigned char *s, size_t n);

struct folder {
    unsigned char pend[4];
    size_t npend, need;
    byte_sink *out;
    void *ctx;
};

/* fold_put - append one complete sequence s[0..n), folded, at out */
static size_t fold_put(const unsigned char *s, size_t n, unsigned char *out)
{
    if (n == 1 && s[0] < 0x80) {
	out[0] = (unsigned char) (s[0] >= 'A' && s[0] <= 'Z' ? s[0] + 32 : s[0]);
	return 1;
    }
    return utf8_put(fold_cp(utf8_decode(s, n)), out);
}

/* fold_feed - fold s[0..n), handing on output in chunks */
static void fold_feed(struct folder *f, const unsigned char *s, size_t n)
{
    unsigned char buf[CHUNK + 8];
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
	unsigned char b = s[i];

	if (o >= CHUNK) {
	    f->out(f->ctx, buf, o);
	    o = 0;
	}
	if (f->npend > 0) {
	    if ((b & 0xC0) == 0x80) {
		f->pend[f->npend++] = b;
		if (f->npend == f->need) {
		    o += fold_put(f->pend, f->npend, buf + o);
		    f->npend = 0;
		}
		continue;
	    }
	    memcpy(buf + o, f->pend, f->npend);	/* cut short: as bytes */
	    o += f->npend;
	    f->npend = 0;
	}
	if (b < 0x80) {
	    buf[o++] = (unsigned char) (b >= 'A' && b <= 'Z' ? b + 32 : b);
	    continue;
	}
	f->need = utf8_seq_len(b);
	if (f->need == 0) {
	    buf[o++] = b;
	} else {
	    f->pend[0] = b;
	    f->npend = 1;
	}
    }
    if (o)
	f->out(f->ctx, buf, o);
}

/* fold_sink - a byte_sink that feeds a folder */
static void fold_sink(void *ctx, const unsigned char *s, size_t n)
{
    fold_feed(ctx, s, n);
}

/* fold_flush - pass on an incomplete sequence */
static void fold_flush(struct folder *f)
{
    if (f->npend)
	f->out(f->ctx, f->pend, f->npend);
    f->npend = 0;
}

/* ------------------------------------------------------------------ */
/* The key and the matcher */

/* str_sink - append to a struct str (what does not fit is dropped) */
static void str_sink(void *ctx, const unsigned char *s, size_t n)
{
    if (!str_try_append((struct str *) ctx, s, n))
	return;
}

/* imap_search_key_init - fold a key and build its KMP table */
void imap_search_key_init(struct imap_search_key *k, const char *key, size_t len)
{
    struct str *f = str_new(mem_size_add(mem_size_mul(len, 2), 8));
    struct folder fo = {.out = str_sink, .ctx = f};

    fold_feed(&fo, (const unsigned char *) key, len);
    fold_flush(&fo);
    k->len = str_len(f);
    k->folded = mem_memdup(str_cstr(f), k->len + 1);
    str_free(&f);
    k->fail = mem_alloc_array(k->len + 1, sizeof(size_t));
    k->fail[0] = 0;
    for (size_t i = 1, q = 0; i < k->len; i++) {
	while (q > 0 && k->folded[i] != k->folded[q])
	    q = k->fail[q - 1];
	if (k->folded[i] == k->folded[q])
	    q++;
	k->fail[i] = q;
    }
}

/* imap_search_key_fini - free a key */
void imap_search_key_fini(struct imap_search_key *k)
{
    mem_free(&k->folded);
    mem_free(&k->fail);
    k->len = 0;
}

struct matcher {
    const struct imap_search_key *k;
    size_t q;
    bool found;
};

/* match_sink - KMP over folded bytes */
static void match_sink(void *ctx, const unsigned char *s, size_t n)
{
    struct matcher *mt = ctx;
    const struct imap_search_key *k = mt->k;

    if (mt->found)
	return;
    if (k->len == 0) {
	mt->found = true;
	return;
    }
    for (size_t i = 0; i < n; i++) {
	if (mt->q == 0) {	/* skip to the key's first byte */
	    const unsigned char *c = memchr(s + i, (unsigned char) k->folded[0], n - i);

	    if (!c)
		return;
	    i = (size_t) (c - s);
	}
	while (mt->q > 0 && (unsigned char) k->folded[mt->q] != s[i])
	    mt->q = k->fail[mt->q - 1];
	if ((unsigned char) k->folded[mt->q] == s[i])
	    mt->q++;
	if (mt->q == k->len) {
	    mt->found = true;
	    return;
	}
    }
}

/* ------------------------------------------------------------------ */
/* Charsets to UTF-8 */

enum cs_kind { CS_UTF8, CS_LATIN1, CS_LATIN9, CS_ICONV };

/* windows-1252 0x80-0x9F (0: undefined, kept as U+0080 + n) */
static const uint16_t cp1252[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

struct conv {
    enum cs_kind kind;
    iconv_t cd;
    char in[16];		/* an incomplete multibyte sequence */
    size_t nin;
    byte_sink *out;
    void *ctx;
};

/* conv_init - a converter from charset (NULL: UTF-8) to UTF-8 */
static void conv_init(struct conv *c, const char *charset, byte_sink *out, void *ctx)
{
    char name[64];
    size_t n = 0;

    memset(c, 0, sizeof(*c));
    c->out = out;
    c->ctx = ctx;
    c->kind = CS_UTF8;
    c->cd = (iconv_t) -1;
    if (charset == NULL)
	return;
    for (; charset[n] && n < sizeof(name) - 1; n++)
	name[n] = (char) (charset[n] >= 'A' && charset[n] <= 'Z' ? charset[n] + 32 : charset[n]);
    name[n] = 0;
    if (strchr(name, '*'))	/* RFC 2231 "charset*lang" */
	*strchr(name, '*') = 0;
    if (!strcmp(name, "utf-8") || !strcmp(name, "utf8") || !strcmp(name, "us-ascii")
	|| !strcmp(name, "ascii") || !strcmp(name, "") || !strcmp(name, "unknown-8bit")
	|| !strcmp(name, "x-unknown"))
	return;
    if (!strcmp(name, "iso-8859-1") || !strcmp(name, "iso8859-1") || !strcmp(name, "latin1")
	|| !strcmp(name, "windows-1252") || !strcmp(name, "cp1252") || !strcmp(name, "iso_8859-1")
	|| !strcmp(name, "l1")) {
	c->kind = CS_LATIN1;	/* as WHATWG: iso-8859-1 read as windows-1252 */
	return;
    }
    if (!strcmp(name, "iso-8859-15") || !strcmp(name, "iso8859-15") || !strcmp(name, "latin9")
	|| !strcmp(name, "latin-9")) {
	c->kind = CS_LATIN9;
	return;
    }
    c->cd = iconv_open("UTF-8", name);
    if (c->cd != (iconv_t) -1)
	c->kind = CS_ICONV;
}

/* latin9 - ISO-8859-15's differences from Latin-1 */
static uint32_t latin9(unsigned char b)
{
    switch (b) {
    case 0xA4: return 0x20AC;
    case 0xA6: return 0x160;
    case 0xA8: return 0x161;
    case 0xB4: return 0x17D;
    case 0xB8: return 0x17E;
    case 0xBC: return 0x152;
    case 0xBD: return 0x153;
    case 0xBE: return 0x178;
    default: return b;
    }
}

/* conv_feed - convert s[0..n) */
static void conv_feed(struct conv *c, const unsigned char *s, size_t n)
{
    unsigned char buf[CHUNK + 8];
    size_t o = 0;

    if (c->kind == CS_UTF8) {
	c->out(c->ctx, s, n);
	return;
    }
    if (c->kind != CS_ICONV) {
	for (size_t i = 0; i < n; i++) {
	    uint32_t cp = s[i];

	    if (c->kind == CS_LATIN9)
		cp = latin9(s[i]);
	    else if (cp >= 0x80 && cp < 0xA0 && cp1252[cp - 0x80])
		cp = cp1252[cp - 0x80];
	    o += utf8_put(cp, buf + o);
	    if (o >= CHUNK) {
		c->out(c->ctx, buf, o);
		o = 0;
	    }
	}
	if (o)
	    c->out(c->ctx, buf, o);
	return;
    }
    while (n > 0 || c->nin > 0) {
	char *in, *outp = (char *) buf;
	size_t inleft, outleft = CHUNK, take = 0, r;

	if (c->nin > 0) {
	    /* complete the pending sequence byte by byte */
	    if (n == 0)
		return;
	    c->in[c->nin++] = (char) s[0];
	    s++;
	    n--;
	    in = c->in;
	    inleft = c->nin;
	    r = iconv(c->cd, &in, &inleft, &outp, &outleft);
	    if (r == (size_t) -1 && errno == EINVAL && c->nin < sizeof(c->in)) {
		continue;	/* still incomplete */
	    }
	    if (r == (size_t) -1 && errno != E2BIG) {
		c->out(c->ctx, (const unsigned char *) c->in, 1);	/* bad: as a byte */
		memmove(c->in, c->in + 1, --c->nin);
		continue;
	    }
	    c->nin = inleft;
	    if (inleft)
		memmove(c->in, in, inleft);
	    c->out(c->ctx, buf, CHUNK - outleft);
	    continue;
	}
	in = (char *) s;
	inleft = n;
	r = iconv(c->cd, &in, &inleft, &outp, &outleft);
	take = n - inleft;
	if (CHUNK - outleft)
	    c->out(c->ctx, buf, CHUNK - outleft);
	s += take;
	n -= take;
	if (r == (size_t) -1) {
	    if (errno == EINVAL) {	/* incomplete at the end: keep */
		if (n < sizeof(c->in)) {
		    memcpy(c->in, s, n);
		    c->nin = n;
		    return;
		}
	    }
	    if (errno != E2BIG && n > 0) {	/* invalid: pass one byte */
		c->out(c->ctx, s, 1);
		s++;
		n--;
	    }
	}
    }
}

/* conv_fini - end of input */
static void conv_fini(struct conv *c)
{
    if (c->nin)
	c->out(c->ctx, (const unsigned char *) c->in, c->nin);
    c->nin = 0;
    if (c->cd != (iconv_t) -1)
	iconv_close(c->cd);
    c->cd = (iconv_t) -1;
}

/* conv_sink - a byte_sink that feeds a converter */
static void conv_sink(void *ctx, const unsigned char *s, size_t n)
{
    conv_feed(ctx, s, n);
}

/* ------------------------------------------------------------------ */
/* Transfer encodings */

enum enc_kind { ENC_NONE, ENC_QP, ENC_B64 };

struct decoder {
    enum enc_kind kind;
    int qp;			/* 0, 1: after "=", 2: after "=X" */
    unsigned char qp_hi;
    uint32_t acc;
    int nacc;
    byte_sink *out;
    void *ctx;
    unsigned char buf[CHUNK];
    size_t o;
};

/* b64val - a base64 digit's value or -1 */
static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
	return c - 'A';
    if (c >= 'a' && c <= 'z')
	return c - 'a' + 26;
    if (c >= '0' && c <= '9')
	return c - '0' + 52;
    if (c == '+')
	return 62;
    if (c == '/')
	return 63;
    return -1;
}

/* hexv - a hex digit's value or -1 */
static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
	return c - '0';
    if (c >= 'A' && c <= 'F')
	return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
	return c - 'a' + 10;
    return -1;
}

/* dec_put - one decoded byte */
static void dec_put(struct decoder *d, unsigned char b)
{
    d->buf[d->o++] = b;
    if (d->o == sizeof(d->buf)) {
	d->out(d->ctx, d->buf, d->o);
	d->o = 0;
    }
}

/* dec_b64 - the base64 case of dec_feed, with a table */
static void dec_b64(struct decoder *d, const unsigned char *s, size_t n)
{
    static signed char tab[256];
    static bool ready;

    if (!ready) {
	for (int c = 0; c < 256; c++)
	    tab[c] = (signed char) b64val((unsigned char) c);
	ready = true;
    }
    for (size_t i = 0; i < n; i++) {
	int v = tab[s[i]];

	if (v < 0)
	    continue;		/* line ends, "=", junk */
	d->acc = (d->acc << 6) | (uint32_t) v;
	if (++d->nacc == 4) {
	    if (d->o + 3 > sizeof(d->buf)) {
		d->out(d->ctx, d->buf, d->o);
		d->o = 0;
	    }
	    d->buf[d->o++] = (unsigned char) (d->acc >> 16);
	    d->buf[d->o++] = (unsigned char) (d->acc >> 8);
	    d->buf[d->o++] = (unsigned char) d->acc;
	    d->nacc = 0;
	    d->acc = 0;
	}
    }
}

/* dec_feed - decode s[0..n) (qp_underscore: RFC 2047 Q) */
static void dec_feed(struct decoder *d, const unsigned char *s, size_t n, bool q_underscore)
{
    if (d->kind == ENC_B64) {
	dec_b64(d, s, n);
	return;
    }
    if (d->kind == ENC_NONE) {	/* straight through, in big pieces */
	if (d->o) {
	    d->out(d->ctx, d->buf, d->o);
	    d->o = 0;
	}
	d->out(d->ctx, s, n);
	return;
    }
    for (size_t i = 0; i < n; i++) {
	unsigned char c = s[i];

	switch (d->kind) {
	case ENC_NONE:
	    dec_put(d, c);
	    break;
	case ENC_B64: {
	    int v = b64val(c);

	    if (v < 0)
		break;		/* line ends, "=", junk */
	    d->acc = (d->acc << 6) | (uint32_t) v;
	    if (++d->nacc == 4) {
		dec_put(d, (unsigned char) (d->acc >> 16));
		dec_put(d, (unsigned char) (d->acc >> 8));
		dec_put(d, (unsigned char) d->acc);
		d->nacc = 0;
		d->acc = 0;
	    }
	    break;
	}
	case ENC_QP:
	    if (d->qp == 0) {
		if (c == '=')
		    d->qp = 1;
		else
		    dec_put(d, q_underscore && c == '_' ? ' ' : c);
	    } else if (d->qp == 1) {
		if (c == '\r')
		    break;	/* "=\r\n": a soft line break */
		if (c == '\n') {
		    d->qp = 0;
		    break;
		}
		if (hexv(c) < 0) {	/* not an escape: keep it */
		    dec_put(d, '=');
		    d->qp = 0;
		    dec_put(d, c);
		    break;
		}
		d->qp_hi = c;
		d->qp = 2;
	    } else {
		d->qp = 0;
		if (hexv(c) < 0) {
		    dec_put(d, '=');
		    dec_put(d, d->qp_hi);
		    dec_put(d, c);
		} else {
		    dec_put(d, (unsigned char) (hexv(d->qp_hi) * 16 + hexv(c)));
		}
	    }
	    break;
	}
    }
}

/* dec_flush - end of input: the rest of a base64 quantum */
static void dec_flush(struct decoder *d)
{
    if (d->kind == ENC_B64) {
	if (d->nacc == 2)
	    dec_put(d, (unsigned char) (d->acc >> 4));
	else if (d->nacc == 3) {
	    dec_put(d, (unsigned char) (d->acc >> 10));
	    dec_put(d, (unsigned char) (d->acc >> 2));
	}
	d->nacc = 0;
	d->acc = 0;
    }
    if (d->o)
	d->out(d->ctx, d->buf, d->o);
    d->o = 0;
    d->qp = 0;
}

/* dec_init - a decoder for a Content-Transfer-Encoding */
static void dec_init(struct decoder *d, const char *enc, byte_sink *out, void *ctx)
{
    memset(d, 0, sizeof(*d));
    d->out = out;
    d->ctx = ctx;
    d->kind = ENC_NONE;
    if (enc && !strcasecmp(enc, "quoted-printable"))
	d->kind = ENC_QP;
    else if (enc && !strcasecmp(enc, "base64"))
	d->kind = ENC_B64;
}

/* ------------------------------------------------------------------ */
/* RFC 2047 */

/* rfc2047_decode - v[0..len) with its encoded-words decoded to UTF-8
 * (other bytes as they are) into out (appended; cut at its max) */
static void rfc2047_decode(const char *v, size_t len, struct str *out)
{
    size_t i = 0, pending_ws = 0, ws_start = 0;
    bool after_word = false;

    while (i < len) {
	/* an encoded word: =?charset?X?text?= */
	if (v[i] == '=' && i + 1 < len && v[i + 1] == '?') {
	    size_t cs = i + 2, q1, q2, e;

	    for (q1 = cs; q1 < len && v[q1] != '?' && v[q1] != ' '; q1++)
		;
	    if (q1 + 2 < len && v[q1] == '?' && v[q1 + 2] == '?'
		&& (v[q1 + 1] == 'Q' || v[q1 + 1] == 'q' || v[q1 + 1] == 'B' || v[q1 + 1] == 'b')) {
		q2 = q1 + 3;
		for (e = q2; e + 1 < len && !(v[e] == '?' && v[e + 1] == '='); e++)
		    if (v[e] == ' ' || v[e] == '\t' || v[e] == '\n')
			break;
		if (e + 1 < len && v[e] == '?' && v[e + 1] == '=') {
		    char charset[64];
		    struct conv c;
		    struct decoder d;
		    size_t cl = q1 - cs < sizeof(charset) - 1 ? q1 - cs : sizeof(charset) - 1;

		    if (!after_word && pending_ws > 0 && !str_try_append(out, v + ws_start, pending_ws))
			return;
		    pending_ws = 0;
		    memcpy(charset, v + cs, cl);
		    charset[cl] = 0;
		    conv_init(&c, charset, str_sink, out);
		    dec_init(&d, v[q1 + 1] == 'Q' || v[q1 + 1] == 'q' ? "quoted-printable" : "base64",
			     conv_sink, &c);
		    dec_feed(&d, (const unsigned char *) v + q2, e - q2,
			     v[q1 + 1] == 'Q' || v[q1 + 1] == 'q');
		    dec_flush(&d);
		    conv_fini(&c);
		    i = e + 2;
		    after_word = true;
		    continue;
		}
	    }
	}
	if (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n') {
	    /* white space between two encoded words disappears */
	    if (pending_ws == 0)
		ws_start = i;
	    pending_ws++;
	    i++;
	    continue;
	}
	if (pending_ws > 0 && !str_try_append(out, v + ws_start, pending_ws))
	    return;
	pending_ws = 0;
	after_word = false;
	if (!str_try_appendc(out, v[i]))
	    return;
	i++;
    }
    if (pending_ws > 0 && !str_try_append(out, v + ws_start, pending_ws))
	return;
}

/* match_text - does the key occur in UTF-8 text s[0..n) */
static bool match_text(const struct imap_search_key *k, const char *s, size_t n)
{
    struct matcher mt = {.k = k};
    struct folder fo = {.out = match_sink, .ctx = &mt};

    fold_feed(&fo, (const unsigned char *) s, n);
    fold_flush(&fo);
    return mt.found;
}

/* imap_search_header - a header field contains the key */
bool imap_search_header(const char *data, size_t len, const char *name,
			const struct imap_search_key *k)
{
    size_t hlen = imap_hdr_len(data, len), pos = 0;
    struct imap_field f;
    struct str *v, *dec;
    bool found = false;

    v = str_new(IMAP_MSG_FIELD_MAX);
    dec = str_new(IMAP_MSG_FIELD_MAX * 2);
    while (!found && imap_hdr_next(data, hlen, &pos, &f)) {
	if (!imap_name_eq(f.name, f.name_len, name))
	    continue;
	if (k->len == 0) {
	    found = true;
	    break;
	}
	imap_hdr_unfold(f.value, f.value_len, IMAP_MSG_FIELD_MAX, v);
	str_reset(dec);
	rfc2047_decode(str_cstr(v), str_len(v), dec);
	found = match_text(k, str_cstr(dec), str_len(dec));
    }
    str_free(&v);
    str_free(&dec);
    return found;
}

/* match_header - a whole header, decoded, contains the key */
static bool match_header(const struct imap_search_key *k, const char *h, size_t len)
{
    struct str *dec;
    bool found;

    if (len > IMAP_MSG_HEADER_MAX)
	len = IMAP_MSG_HEADER_MAX;
    dec = str_new(IMAP_MSG_HEADER_MAX * 2);
    rfc2047_decode(h, len, dec);
    found = match_text(k, str_cstr(dec), str_len(dec));
    str_free(&dec);
    return found;
}

/* match_leaf - a leaf part's body, decoded and converted */
static bool match_leaf(const struct imap_msg *m, const struct imap_part *p,
		       const struct imap_search_key *k)
{
    struct matcher mt = {.k = k};
    struct folder fo = {.out = match_sink, .ctx = &mt};
    struct conv c;
    struct decoder d;
    const unsigned char *s = (const unsigned char *) m->data + p->body_off;
    size_t left = p->body_len;
    bool text = strcmp(p->type, "text") == 0;

    conv_init(&c, text ? p->charset : NULL, fold_sink, &fo);
    dec_init(&d, p->encoding, conv_sink, &c);
    while (left > 0 && !mt.found) {
	size_t n = left < 65536 ? left : 65536;

	dec_feed(&d, s, n, false);
	s += n;
	left -= n;
    }
    dec_flush(&d);
    conv_fini(&c);
    fold_flush(&fo);
    return mt.found;
}

/* match_part - a part's content: the bodies of text leaves, and with
 * headers the MIME and encapsulated headers inside */
static bool match_part(const struct imap_msg *m, const struct imap_part *p,
		       const struct imap_search_key *k, bool headers)
{
    if (imap_mpart_of(p)->synthetic)
	return false;
    if (p->is_multipart) {
	for (const struct imap_part *c = p->children; c; c = c->next)
	    if ((headers && !imap_mpart_of(c)->synthetic
		 && match_header(k, m->data + c->hdr_off, c->hdr_len))
		|| match_part(m, c, k, headers))
		return true;
	return false;
    }
    if (p->is_message)
	return (headers && match_header(k, m->data + p->children->hdr_off, p->children->hdr_len))
	    || match_part(m, p->children, k, headers);
    /* as Dovecot: only text/... and message/... content is text */
    if (strcmp(p->type, "text") != 0 && strcmp(p->type, "message") != 0)
	return false;
    return match_leaf(m, p, k);
}

/* imap_search_body - SEARCH BODY / TEXT */
bool imap_search_body(const struct imap_msg *m, bool text_too, const struct imap_search_key *k)
{
    const struct imap_part *root = &m->root->p;

    if (k->len == 0)
	return true;
    if (text_too && match_header(k, m->data + root->hdr_off, root->hdr_len))
	return true;
    return match_part(m, root, k, text_too);
}

/* ------------------------------------------------------------------ */
/* Dates */

static const char months[12][4] = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
};

/* days_from_civil - days since 1970-01-01 of y-m-d (proleptic Gregorian) */
static long days_from_civil(long y, unsigned mon, unsigned d)
{
    long era;
    unsigned yoe, doy, doe;

    y -= mon <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long) doe - 719468;
}

/* days_in_month - with leap years */
static unsigned days_in_month(long y, unsigned mon)
{
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (mon == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
	return 29;
    return dm[mon - 1];
}

/* month_of - 1..12 for a 3-letter English name at s, else 0 */
static unsigned month_of(const char *s, size_t n)
{
    if (n < 3)
	return 0;
    for (unsigned i = 0; i < 12; i++)
	if (strncasecmp(s, months[i], 3) == 0)
	    return i + 1;
    return 0;
}

/* imap_search_date_parse - "1-Feb-1994" */
bool imap_search_date_parse(const char *t, size_t len, long *day_r)
{
    size_t i = 0;
    unsigned d = 0, mon;
    long y = 0;

    while (i < len && i < 2 && t[i] >= '0' && t[i] <= '9')
	d = d * 10 + (unsigned) (t[i++] - '0');
    if (i == 0 || i >= len || t[i] != '-')
	return false;
    i++;
    if (len - i < 4 || (mon = month_of(t + i, 3)) == 0 || t[i + 3] != '-')
	return false;
    i += 4;
    if (len - i != 4)
	return false;
    for (; i < len; i++) {
	if (t[i] < '0' || t[i] > '9')
	    return false;
	y = y * 10 + (t[i] - '0');
    }
    if (d < 1 || d > days_in_month(y, mon))
	return false;
    *day_r = days_from_civil(y, mon, d);
    return true;
}

/* imap_msg_sent_date - the day of the Date: field */
bool imap_msg_sent_date(const char *data, size_t len, long *day_r)
{
    struct imap_field f;
    struct str *v;
    const char *s;
    size_t i = 0, n, b;
    unsigned d = 0, mon;
    long y = 0;
    bool ok = false;

    if (!imap_hdr_find(data, imap_hdr_len(data, len), "Date", &f))
	return false;
    v = str_new(1024);
    imap_hdr_unfold(f.value, f.value_len, 1000, v);
    s = str_cstr(v);
    n = str_len(v);
    /* [day-name ","] (comments are rare before the date: skipped) */
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
	i++;
    if (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) {
	while (i < n && s[i] != ',' && !(s[i] >= '0' && s[i] <= '9'))
	    i++;
	if (i < n && s[i] == ',')
	    i++;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
	i++;
    b = i;
    while (i < n && i - b < 2 && s[i] >= '0' && s[i] <= '9')
	d = d * 10 + (unsigned) (s[i++] - '0');
    if (i == b)
	goto out;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '-'))
	i++;
    if ((mon = month_of(s + i, n - i)) == 0)
	goto out;
    while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '-')
	i++;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '-'))
	i++;
    b = i;
    while (i < n && i - b < 4 && s[i] >= '0' && s[i] <= '9')
	y = y * 10 + (s[i++] - '0');
    if (i - b == 2)
	y += y < 50 ? 2000 : 1900;	/* RFC 5322 4.3 */
    else if (i - b == 3)
	y += 1900;
    else if (i - b != 4)
	goto out;
    if (d < 1 || d > days_in_month(y, mon))
	goto out;
    *day_r = days_from_civil(y, mon, d);
    ok = true;
  out:
    str_free(&v);
    return ok;
}

/* imap_day_of_time - the day of t at an offset */
long imap_day_of_time(time_t t, long gmtoff)
{
    long long s = (long long) t + gmtoff;

    return (long) (s >= 0 ? s / 86400 : -((-s + 86399) / 86400));
}

/* imap_internaldate_format - "17-Jul-1996 02:44:25 -0700" */
bool imap_internaldate_format(char *buf, size_t size, time_t t, long gmtoff)
{
    static const char mname[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    time_t lt = t + gmtoff;
    struct tm tm;
    long off = gmtoff < 0 ? -gmtoff : gmtoff;

    if (gmtime_r(&lt, &tm) == NULL)
	return fmt_try_buf(buf, size, "01-Jan-1970 00:00:00 +0000");
    return fmt_try_buf(buf, size, "%02d-%s-%04d %02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
		       mname[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       gmtoff < 0 ? '-' : '+', off / 3600, off / 60 % 60);
}
