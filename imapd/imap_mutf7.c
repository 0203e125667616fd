/* imap_mutf7.c - modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8 for IMAP
 * mailbox names: strict decoding (canonical input only) and encoding
 * (imap_mutf7.h). */

/* System library. */
#include <stdint.h>
#include <string.h>

/* Base library. */
#include "str.h"

/* This program. */
#include "imap_mutf7.h"

static const char mu_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* mu_b64_value - the 6-bit value of a modified base64 letter, or -1 */
static int mu_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
	return c - 'A';
    if (c >= 'a' && c <= 'z')
	return c - 'a' + 26;
    if (c >= '0' && c <= '9')
	return c - '0' + 52;
    if (c == '+')
	return 62;
    if (c == ',')
	return 63;
    return -1;
}

/* mu_put_utf8 - code point cp as UTF-8 into out: false past max */
static bool mu_put_utf8(struct str *out, uint32_t cp)
{
    char b[4];
    size_t n;

    if (cp < 0x80) {
	b[0] = (char) cp;
	n = 1;
    } else if (cp < 0x800) {
	b[0] = (char) (0xc0 | (cp >> 6));
	b[1] = (char) (0x80 | (cp & 0x3f));
	n = 2;
    } else if (cp < 0x10000) {
	b[0] = (char) (0xe0 | (cp >> 12));
	b[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
	b[2] = (char) (0x80 | (cp & 0x3f));
	n = 3;
    } else {
	b[0] = (char) (0xf0 | (cp >> 18));
	b[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	b[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	b[3] = (char) (0x80 | (cp & 0x3f));
	n = 4;
    }
    return str_try_append(out, b, n);
}

/* mu_decode_run - the base64 run in[0..len) (between "&" and "-") as
 * UTF-8 onto out: false if it is not canonical */
static bool mu_decode_run(const char *in, size_t len, struct str *out)
{
    uint32_t bits = 0, hi = 0, unit, cp;
    int nbits = 0, v;
    size_t i;

    if (len == 0)
	return false;
    for (i = 0; i < len; i++) {
	if ((v = mu_b64_value((unsigned char) in[i])) < 0)
	    return false;
	bits = (bits << 6) | (uint32_t) v;
	nbits += 6;
	if (nbits < 16)
	    continue;
	nbits -= 16;
	unit = (bits >> nbits) & 0xffff;
	bits &= (1u << nbits) - 1;
	if (hi != 0) {
	    if (unit < 0xdc00 || unit > 0xdfff)
		return false;	/* a high surrogate needs a low one */
	    cp = 0x10000 + ((hi - 0xd800) << 10) + (unit - 0xdc00);
	    hi = 0;
	} else if (unit >= 0xd800 && unit <= 0xdbff) {
	    hi = unit;
	    continue;
	} else if (unit >= 0xdc00 && unit <= 0xdfff) {
	    return false;	/* a lone low surrogate */
	} else {
	    cp = unit;
	}
	if (cp == 0 || (cp >= 0x20 && cp <= 0x7e))
	    return false;	/* NUL, or ASCII that must be itself */
	if (!mu_put_utf8(out, cp))
	    return false;
    }
    /* at most 5 bits left over (6 would be a whole letter too many),
     * all zero, and no half surrogate pair */
    return hi == 0 && nbits < 6 && bits == 0;
}

/* imap_mutf7_to_utf8 - see imap_mutf7.h */
bool imap_mutf7_to_utf8(const char *in, size_t len, struct str *out)
{
    size_t start = str_len(out), i = 0, j;
    bool after_run = false;
    unsigned char c;

    while (i < len) {
	c = (unsigned char) in[i];
	if (c != '&') {
	    if (c < 0x20 || c > 0x7e || !str_try_appendc(out, (char) c))
		goto fail;
	    after_run = false;
	    i++;
	    continue;
	}
	for (j = i + 1; j < len && in[j] != '-'; j++)
	    ;
	if (j >= len)
	    goto fail;		/* no "-" ends the run */
	if (j == i + 1) {
	    if (!str_try_appendc(out, '&'))
		goto fail;
	    after_run = false;
	} else {
	    /* "&..-&..-": one run would have done */
	    if (after_run || !mu_decode_run(in + i + 1, j - i - 1, out))
		goto fail;
	    after_run = true;
	}
	i = j + 1;
    }
    return true;

  fail:
    (void) str_truncate(out, start);
    return false;
}

/* mu_next_cp - the code point of the UTF-8 at in[*i..len), advancing
 * *i; -1 when invalid (overlong, surrogate, too large, cut, NUL) */
static long mu_next_cp(const unsigned char *in, size_t len, size_t *i)
{
    unsigned char c = in[*i];
    uint32_t cp, min;
    size_t n, k;

    if (c == 0)
	return -1;
    if (c < 0x80) {
	(*i)++;
	return c;
    }
    if (c >= 0xc2 && c <= 0xdf) {
	n = 1;
	cp = c & 0x1f;
	min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
	n = 2;
	cp = c & 0x0f;
	min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
	n = 3;
	cp = c & 0x07;
	min = 0x10000;
    } else {
	return -1;
    }
    if (len - *i <= n)
	return -1;
    for (k = 1; k <= n; k++) {
	if ((in[*i + k] & 0xc0) != 0x80)
	    return -1;
	cp = (cp << 6) | (in[*i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
	return -1;
    *i += n + 1;
    return (long) cp;
}

/* imap_utf8_valid - see imap_mutf7.h */
bool imap_utf8_valid(const char *in, size_t len)
{
    size_t i = 0;

    while (i < len)
	if (mu_next_cp((const unsigned char *) in, len, &i) < 0)
	    return false;
    return true;
}

/* mu_flush - end a base64 run: the bits left, then "-" */
static bool mu_flush(struct str *out, uint32_t bits, int nbits)
{
    if (nbits > 0 && !str_try_appendc(out, mu_b64[(bits << (6 - nbits)) & 0x3f]))
	return false;
    return str_try_appendc(out, '-');
}

/* imap_utf8_to_mutf7 - see imap_mutf7.h */
bool imap_utf8_to_mutf7(const char *in, size_t len, struct str *out)
{
    const unsigned char *u = (const unsigned char *) in;
    size_t start = str_len(out), i = 0, n, k;
    uint32_t bits = 0, units[2];
    bool in_run = false;
    int nbits = 0;
    long cp;

    while (i < len) {
	if ((cp = mu_next_cp(u, len, &i)) < 0)
	    goto fail;
	if (cp >= 0x20 && cp <= 0x7e) {
	    if (in_run && !mu_flush(out, bits, nbits))
		goto fail;
	    in_run = false;
	    bits = 0;
	    nbits = 0;
	    if (!str_try_appendc(out, (char) cp)
		|| (cp == '&' && !str_try_appendc(out, '-')))
		goto fail;
	    continue;
	}
	if (!in_run && !str_try_appendc(out, '&'))
	    goto fail;
	in_run = true;
	if (cp >= 0x10000) {
	    units[0] = 0xd800 + (((uint32_t) cp - 0x10000) >> 10);
	    units[1] = 0xdc00 + (((uint32_t) cp - 0x10000) & 0x3ff);
	    n = 2;
	} else {
	    units[0] = (uint32_t) cp;
	    n = 1;
	}
	for (k = 0; k < n; k++) {
	    bits = (bits << 16) | units[k];
	    nbits += 16;
	    while (nbits >= 6) {
		nbits -= 6;
		if (!str_try_appendc(out, mu_b64[(bits >> nbits) & 0x3f]))
		    goto fail;
	    }
	    bits &= (1u << nbits) - 1;
	}
    }
    if (in_run && !mu_flush(out, bits, nbits))
	goto fail;
    return true;

  fail:
    (void) str_truncate(out, start);
    return false;
}
