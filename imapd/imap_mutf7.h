/* imap_mutf7.h - IMAP's modified UTF-7 mailbox names (RFC 3501 5.1.3)
 * to and from UTF-8, the form the mail store keeps.
 *
 * Decoding is strict: only the canonical encoding a conforming client
 * sends is accepted (printable US-ASCII other than "&" as itself, "&"
 * as "&-", everything else in one "&...-" run of modified base64 of
 * UTF-16BE with no padding bits set and no stray bits, properly paired
 * surrogates, no run that encodes printable US-ASCII, no two runs
 * side by side, no NUL). So every mailbox name has exactly one
 * spelling on the wire and one in the store, and encoding the decoded
 * name gives back the input byte for byte.
 */
#ifndef POSTHORN_IMAP_MUTF7_H
#define POSTHORN_IMAP_MUTF7_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

/* imap_mutf7_to_utf8 - decode in[0..len) and append the UTF-8 to out:
 * true, or false (out as it was) when in is not canonical modified
 * UTF-7 or the result passes out's maximum */
bool imap_mutf7_to_utf8(const char *in, size_t len, struct str *out);

/* imap_utf8_to_mutf7 - encode the UTF-8 in[0..len) and append it to
 * out: true, or false (out as it was) when in is not valid UTF-8
 * (overlong forms, surrogates, past U+10FFFF, NUL) or the result
 * passes out's maximum */
bool imap_utf8_to_mutf7(const char *in, size_t len, struct str *out);

/* imap_utf8_valid - whether in[0..len) is valid UTF-8 without NUL */
bool imap_utf8_valid(const char *in, size_t len);

#endif
