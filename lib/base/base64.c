/* base64.c - RFC 4648 base64 encoding and strict decoding (base64.h). */

#include <stdbool.h>
#include <stddef.h>

#include "base64.h"
#include "str.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64_encode - three bytes to four characters, padded */
bool base64_encode(const void *data, size_t len, struct str *out)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i += 3) {
	unsigned v = (unsigned) p[i] << 16;
	char q[4];

	if (i + 1 < len)
	    v |= (unsigned) p[i + 1] << 8;
	if (i + 2 < len)
	    v |= p[i + 2];
	q[0] = b64_alphabet[(v >> 18) & 63];
	q[1] = b64_alphabet[(v >> 12) & 63];
	q[2] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
	q[3] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	if (!str_try_append(out, q, 4))
	    return false;
    }
    return true;
}

/* b64_value - the 6-bit value of c, -1 if not in the alphabet */
static int b64_value(char c)
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

/* base64_decode - four characters to up to three bytes, strictly */
bool base64_decode(const char *text, size_t len, struct str *out)
{
    if (len % 4 != 0)
	return false;
    for (size_t i = 0; i < len; i += 4) {
	int v[4], pad = 0;
	unsigned char b[3];
	bool last = i + 4 == len;

	for (int k = 0; k < 4; k++) {
	    char c = text[i + k];

	    if (c == '=' && last && k >= 2) {
		v[k] = 0;
		pad++;
	    } else if (pad > 0 || (v[k] = b64_value(c)) < 0) {
		return false;
	    }
	}
	b[0] = (unsigned char) (v[0] << 2 | v[1] >> 4);
	b[1] = (unsigned char) ((v[1] & 15) << 4 | v[2] >> 2);
	b[2] = (unsigned char) ((v[2] & 3) << 6 | v[3]);
	if (!str_try_append(out, b, (size_t) (3 - pad)))
	    return false;
    }
    return true;
}
