/* base64.h - RFC 4648 base64 (standard alphabet, "=" padding, no line
 * breaks), for SASL exchanges and stored secrets.
 *
 *   base64_encode(data, len, out)     append the encoding to out
 *   base64_decode(text, len, out)     append the bytes to out; false on
 *       a character outside the alphabet, a bad length or padding, or
 *       out's limit (out then holds a partial result) */
#ifndef POSTHORN_BASE64_H
#define POSTHORN_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

/* base64_encode - append the base64 form of data[0..len) to out; false
 * if out's limit is too small */
bool base64_encode(const void *data, size_t len, struct str *out);
/* base64_decode - append the bytes text[0..len) encodes to out */
bool base64_decode(const char *text, size_t len, struct str *out);

#endif
