/* xtext.h - RFC 3461 xtext and RFC 6533 utf-8-addr-xtext/unitext.
 *
 * xtext is the 7-bit transfer form of the DSN parameters ENVID and ORCPT
 * and of the AUTH parameter of MAIL (RFC 4954):
 *
 *   xtext   = *( xchar / hexchar )
 *   xchar   = any octet 33..126 except "+" and "="
 *   hexchar = "+" two UPPER-case hexadecimal digits
 *
 * Decoding is strict: a lower-case hex digit, a lone "+", an "=", a
 * space, a control or an 8-bit octet make the whole text invalid. The
 * decoded octets may be anything (also NUL); callers check what they
 * allow. Encoding writes every octet outside 33..126, and "+" and "=",
 * as a hexchar.
 *
 * RFC 6533 (ORCPT=utf-8;...) uses another escape, "\x{HEX}" with the
 * Unicode code point in hexadecimal:
 *
 *   utf-8-addr-xtext   = 1*( QCHAR / "\x{" HEXPOINT "}" )       7-bit
 *   utf-8-addr-unitext = 1*( QCHAR / UTF-8 non-ASCII / "\x{" HEXPOINT "}" )
 *   QCHAR              = 33..126 except "+", "=" and "\"
 *
 * xtext_utf8_decode() decodes either form (unitext only when asked) to
 * UTF-8. HEXPOINT must be canonical: no leading zero except in the
 * two-digit forms, not a surrogate, at most U+10FFFF, and a code point
 * below U+0080 may be escaped only if it is not a QCHAR (those must be
 * written as themselves). NUL (\x{0}, \x{00}) is never accepted.
 *
 * The strict UTF-8 checks (utf8_seqlen, utf8_valid) live here too
 * because every SMTPUTF8 parser in lib/mail needs them: they reject
 * overlong forms, surrogates (U+D800..U+DFFF), code points above
 * U+10FFFF and truncated sequences.
 *
 * DIAGNOSTICS
 *   Decoders return false and set *error_r to a constant text (valid
 *   for the life of the process); output
 *   appended before the error is left in *out (callers discard it).
 *   All output goes through struct str, so a result longer than the
 *   str's maximum is an error ("too long"), never an overflow. */
#ifndef POSTHORN_XTEXT_H
#define POSTHORN_XTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

/* xtext_valid - true if in[0..len) is well-formed xtext */
bool xtext_valid(const char *in, size_t len);
/* xtext_decode - append the decoded form of in[0..len) to out */
bool xtext_decode(struct str *out, const char *in, size_t len, const char **error_r);
/* xtext_encode - append the xtext form of in[0..len) to out; false if
 * out's maximum would be passed */
bool xtext_encode(struct str *out, const void *in, size_t len);

/* xtext_utf8_decode - decode RFC 6533 utf-8-addr-xtext (allow_unitext
 * false: 7-bit only) or utf-8-addr-unitext (allow_unitext true: raw
 * UTF-8 allowed too) into UTF-8 appended to out. Empty input is an error. */
bool xtext_utf8_decode(struct str *out, const char *in, size_t len,
		       bool allow_unitext, const char **error_r);
/* xtext_utf8_encode - append the utf-8-addr-xtext form (7-bit, every
 * non-ASCII character and every non-QCHAR escaped) of UTF-8 text;
 * false if in is not valid UTF-8 or out is full */
bool xtext_utf8_encode(struct str *out, const char *in, size_t len);

/* utf8_seqlen - length (1..4) of the valid UTF-8 sequence at s[0..len),
 * or 0 if it is not one; an ASCII octet (also NUL) counts as 1 */
size_t utf8_seqlen(const unsigned char *s, size_t len);
/* utf8_decode_one - like utf8_seqlen, also storing the code point */
size_t utf8_decode_one(const unsigned char *s, size_t len, unsigned long *cp_r);
/* utf8_valid - true if s[0..len) is entirely valid UTF-8 */
bool utf8_valid(const void *s, size_t len);
/* utf8_append - append code point cp (not a surrogate, <= 0x10FFFF) */
bool utf8_append(struct str *out, unsigned long cp);

#endif
