/* xtext.c - RFC 3461 xtext, RFC 6533 utf-8-addr-xtext/unitext, and the
 * strict UTF-8 checks shared by the SMTPUTF8 parsers (see xtext.h). */

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "str.h"

/* mail */
#include "xtext.h"

/* utf8_decode_one - decode one strict UTF-8 sequence */
size_t utf8_decode_one(const unsigned char *s, size_t len, unsigned long *cp_r)
{
    unsigned long cp;
    size_t n, i;
    unsigned long min;

    if (len == 0)
	return 0;
    if (s[0] < 0x80) {
	*cp_r = s[0];
	return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
	n = 2, cp = s[0] & 0x1F, min = 0x80;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
	n = 3, cp = s[0] & 0x0F, min = 0x800;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
	n = 4, cp = s[0] & 0x07, min = 0x10000;
    } else {
	return 0;				/* continuation, C0, C1, F5.. */
    }
    if (len < n)
	return 0;
    for (i = 1; i < n; i++) {
	if ((s[i] & 0xC0) != 0x80)
	    return 0;
	cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
	return 0;				/* overlong, too big, surrogate */
    *cp_r = cp;
    return n;
}

/* utf8_seqlen - length of the valid sequence at s, or 0 */
size_t utf8_seqlen(const unsigned char *s, size_t len)
{
    unsigned long cp;

    return utf8_decode_one(s, len, &cp);
}

/* utf8_valid - whole buffer is valid UTF-8 */
bool utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t i = 0, n;

    while (i < len) {
	if ((n = utf8_seqlen(p + i, len - i)) == 0)
	    return false;
	i += n;
    }
    return true;
}

/* utf8_append - append one code point as UTF-8 */
bool utf8_append(struct str *out, unsigned long cp)
{
    char b[4];
    size_t n;

    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
	return false;
    if (cp < 0x80) {
	b[0] = (char) cp, n = 1;
    } else if (cp < 0x800) {
	b[0] = (char) (0xC0 | (cp >> 6));
	b[1] = (char) (0x80 | (cp & 0x3F));
	n = 2;
    } else if (cp < 0x10000) {
	b[0] = (char) (0xE0 | (cp >> 12));
	b[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
	b[2] = (char) (0x80 | (cp & 0x3F));
	n = 3;
    } else {
	b[0] = (char) (0xF0 | (cp >> 18));
	b[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	b[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	b[3] = (char) (0x80 | (cp & 0x3F));
	n = 4;
    }
    return str_try_append(out, b, n);
}

/* xtext_upper_hex - value of an upper-case hex digit, or -1 */
static int xtext_upper_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
	return c - '0';
    if (c >= 'A' && c <= 'F')
	return c - 'A' + 10;
    return -1;
}

/* xtext_any_hex - value of a hex digit of either case, or -1 */
static int xtext_any_hex(unsigned char c)
{
    if (c >= 'a' && c <= 'f')
	return c - 'a' + 10;
    return xtext_upper_hex(c);
}

/* xtext_is_xchar - octet that xtext writes as itself */
static bool xtext_is_xchar(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* xtext_scan - validate, and append the decoded octets if out != NULL */
static bool xtext_scan(struct str *out, const char *in, size_t len, const char **error_r)
{
    const unsigned char *p = (const unsigned char *) in;
    size_t i;
    int hi, lo;
    char c;

    for (i = 0; i < len; i++) {
	if (p[i] == '+') {
	    if (len - i < 3 || (hi = xtext_upper_hex(p[i + 1])) < 0
		|| (lo = xtext_upper_hex(p[i + 2])) < 0) {
		*error_r = "\"+\" not followed by two upper-case hex digits";
		return false;
	    }
	    c = (char) (hi * 16 + lo);
	    i += 2;
	} else if (xtext_is_xchar(p[i])) {
	    c = (char) p[i];
	} else {
	    *error_r = "invalid character in xtext";
	    return false;
	}
	if (out && !str_try_appendc(out, c)) {
	    *error_r = "decoded xtext too long";
	    return false;
	}
    }
    return true;
}

/* xtext_valid - well-formed xtext */
bool xtext_valid(const char *in, size_t len)
{
    const char *err;

    return xtext_scan(NULL, in, len, &err);
}

/* xtext_decode - decode xtext */
bool xtext_decode(struct str *out, const char *in, size_t len, const char **error_r)
{
    return xtext_scan(out, in, len, error_r);
}

/* xtext_encode - encode octets as xtext */
bool xtext_encode(struct str *out, const void *in, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = in;
    char b[3];
    size_t i;

    for (i = 0; i < len; i++) {
	if (xtext_is_xchar(p[i])) {
	    if (!str_try_appendc(out, (char) p[i]))
		return false;
	} else {
	    b[0] = '+';
	    b[1] = hex[p[i] >> 4];
	    b[2] = hex[p[i] & 15];
	    if (!str_try_append(out, b, 3))
		return false;
	}
    }
    return true;
}

/* xtext_is_qchar - RFC 6533 QCHAR: printable ASCII but "+", "=", "\" */
static bool xtext_is_qchar(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '+' && c != '=' && c != '\\';
}

/* xtext_hexpoint - parse a canonical HEXPOINT; 0 if invalid */
static unsigned long xtext_hexpoint(const unsigned char *p, size_t n)
{
    unsigned long cp = 0;
    size_t i;
    int v;

    if (n < 2 || n > 6)
	return 0;
    for (i = 0; i < n; i++) {
	if ((v = xtext_any_hex(p[i])) < 0)
	    return 0;
	cp = cp * 16 + (unsigned long) v;
    }
    if (n == 2) {
	/* Two-digit forms: only what may not be written as itself. */
	if (cp >= 0x80 || (cp >= 0x01 && cp <= 0x20)
	    || cp == 0x2B || cp == 0x3D || cp == 0x5C || cp == 0x7F)
	    return cp;
	return 0;
    }
    if (p[0] == '0')
	return 0;				/* leading zero */
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
	return 0;
    return cp;
}

/* xtext_utf8_decode - decode RFC 6533 utf-8-addr-xtext/unitext */
bool xtext_utf8_decode(struct str *out, const char *in, size_t len,
		       bool allow_unitext, const char **error_r)
{
    const unsigned char *p = (const unsigned char *) in;
    size_t i = 0, j, n;
    unsigned long cp;

    if (len == 0) {
	*error_r = "empty utf-8 address";
	return false;
    }
    while (i < len) {
	if (p[i] == '\\') {
	    if (len - i < 5 || p[i + 1] != 'x' || p[i + 2] != '{') {
		*error_r = "\"\\\" not followed by \"x{\"";
		return false;
	    }
	    for (j = i + 3; j < len && p[j] != '}'; j++)
		 /* void */ ;
	    if (j >= len || (cp = xtext_hexpoint(p + i + 3, j - i - 3)) == 0) {
		*error_r = "invalid \\x{HEXPOINT} escape";
		return false;
	    }
	    if (!utf8_append(out, cp)) {
		*error_r = "decoded utf-8 address too long";
		return false;
	    }
	    i = j + 1;
	} else if (xtext_is_qchar(p[i])) {
	    if (!str_try_appendc(out, (char) p[i])) {
		*error_r = "decoded utf-8 address too long";
		return false;
	    }
	    i++;
	} else if (p[i] >= 0x80) {
	    if (!allow_unitext) {
		*error_r = "8-bit character in utf-8-addr-xtext";
		return false;
	    }
	    if ((n = utf8_seqlen(p + i, len - i)) == 0) {
		*error_r = "invalid UTF-8 in utf-8-addr-unitext";
		return false;
	    }
	    if (!str_try_append(out, p + i, n)) {
		*error_r = "decoded utf-8 address too long";
		return false;
	    }
	    i += n;
	} else {
	    *error_r = "invalid character in utf-8 address";
	    return false;
	}
    }
    return true;
}

/* xtext_utf8_encode - encode UTF-8 text as utf-8-addr-xtext */
bool xtext_utf8_encode(struct str *out, const char *in, size_t len)
{
    const unsigned char *p = (const unsigned char *) in;
    unsigned long cp;
    size_t i = 0, n;

    while (i < len) {
	if ((n = utf8_decode_one(p + i, len - i, &cp)) == 0 || cp == 0)
	    return false;
	if (cp < 0x80 && xtext_is_qchar((unsigned char) cp)) {
	    if (!str_try_appendc(out, (char) cp))
		return false;
	} else if (!str_try_appendf(out, "\\x{%02lX}", cp)) {
	    return false;
	}
	i += n;
    }
    return true;
}
