/* sha256.c - SHA-256, HMAC-SHA-256, PBKDF2-HMAC-SHA-256 and a
 * constant-time comparison (sha256.h); the algorithms as FIPS 180-4,
 * RFC 2104 and RFC 8018 give them, checked against their test vectors
 * (lib/base/test-sha256.c). */

#include <string.h>

#include "sha256.h"

static const uint32_t k256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

#define ROR(x, n)	(((x) >> (n)) | ((x) << (32 - (n))))

/* sha_block - one 64-byte block into the state */
static void sha_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    int i;

    for (i = 0; i < 16; i++)
	w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16
	    | (uint32_t) p[4 * i + 2] << 8 | (uint32_t) p[4 * i + 3];
    for (i = 16; i < 64; i++) {
	uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
	uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);

	w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (i = 0; i < 64; i++) {
	t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + k256[i] + w[i];
	t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
	hh = g;
	g = f;
	f = e;
	e = d + t1;
	d = c;
	c = b;
	b = a;
	a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void sha256_start(struct sha256 *c)
{
    static const uint32_t iv[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
	0x5be0cd19,
    };

    memcpy(c->h, iv, sizeof(iv));
    c->total = 0;
    c->fill = 0;
}

void sha256_add(struct sha256 *c, const void *data, size_t len)
{
    const unsigned char *p = data;

    c->total += len;
    if (c->fill > 0) {
	size_t n = SHA256_BLOCK - c->fill < len ? SHA256_BLOCK - c->fill : len;

	memcpy(c->buf + c->fill, p, n);
	c->fill += n;
	p += n;
	len -= n;
	if (c->fill < SHA256_BLOCK)
	    return;
	sha_block(c->h, c->buf);
	c->fill = 0;
    }
    for (; len >= SHA256_BLOCK; p += SHA256_BLOCK, len -= SHA256_BLOCK)
	sha_block(c->h, p);
    memcpy(c->buf, p, len);
    c->fill = len;
}

void sha256_finish(struct sha256 *c, unsigned char out[SHA256_LEN])
{
    uint64_t bits = c->total * 8;
    int i;

    c->buf[c->fill++] = 0x80;
    if (c->fill > SHA256_BLOCK - 8) {
	memset(c->buf + c->fill, 0, SHA256_BLOCK - c->fill);
	sha_block(c->h, c->buf);
	c->fill = 0;
    }
    memset(c->buf + c->fill, 0, SHA256_BLOCK - 8 - c->fill);
    for (i = 0; i < 8; i++)
	c->buf[SHA256_BLOCK - 1 - i] = (unsigned char) (bits >> (8 * i));
    sha_block(c->h, c->buf);
    for (i = 0; i < 8; i++) {
	out[4 * i] = (unsigned char) (c->h[i] >> 24);
	out[4 * i + 1] = (unsigned char) (c->h[i] >> 16);
	out[4 * i + 2] = (unsigned char) (c->h[i] >> 8);
	out[4 * i + 3] = (unsigned char) c->h[i];
    }
    explicit_bzero(c, sizeof(*c));
}

void sha256_once(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    struct sha256 c;

    sha256_start(&c);
    sha256_add(&c, data, len);
    sha256_finish(&c, out);
}

void hmac_sha256_start(struct hmac_sha256 *c, const void *key, size_t key_len)
{
    unsigned char k[SHA256_BLOCK], pad[SHA256_BLOCK];
    size_t i;

    explicit_bzero(k, sizeof(k));
    if (key_len > SHA256_BLOCK)
	sha256_once(key, key_len, k);
    else
	memcpy(k, key, key_len);
    for (i = 0; i < SHA256_BLOCK; i++)
	pad[i] = k[i] ^ 0x36;
    sha256_start(&c->inner);
    sha256_add(&c->inner, pad, sizeof(pad));
    for (i = 0; i < SHA256_BLOCK; i++)
	pad[i] = k[i] ^ 0x5c;
    sha256_start(&c->outer);
    sha256_add(&c->outer, pad, sizeof(pad));
    explicit_bzero(k, sizeof(k));
    explicit_bzero(pad, sizeof(pad));
}

void hmac_sha256_add(struct hmac_sha256 *c, const void *data, size_t len)
{
    sha256_add(&c->inner, data, len);
}

void hmac_sha256_finish(struct hmac_sha256 *c, unsigned char out[SHA256_LEN])
{
    unsigned char ih[SHA256_LEN];

    sha256_finish(&c->inner, ih);
    sha256_add(&c->outer, ih, sizeof(ih));
    sha256_finish(&c->outer, out);
    explicit_bzero(ih, sizeof(ih));
}

void pbkdf2_sha256(const void *password, size_t password_len, const void *salt,
		   size_t salt_len, unsigned long iterations, unsigned char *out, size_t out_len)
{
    struct hmac_sha256 keyed, c;
    unsigned char u[SHA256_LEN], t[SHA256_LEN], be[4];
    uint32_t block;
    unsigned long it;
    size_t i, n;

    /* the keyed state once; each HMAC starts from a copy of it */
    hmac_sha256_start(&keyed, password, password_len);
    for (block = 1; out_len > 0; block++) {
	be[0] = (unsigned char) (block >> 24), be[1] = (unsigned char) (block >> 16);
	be[2] = (unsigned char) (block >> 8), be[3] = (unsigned char) block;
	c = keyed;
	hmac_sha256_add(&c, salt, salt_len);
	hmac_sha256_add(&c, be, sizeof(be));
	hmac_sha256_finish(&c, u);
	memcpy(t, u, sizeof(t));
	for (it = 1; it < iterations; it++) {
	    c = keyed;
	    hmac_sha256_add(&c, u, sizeof(u));
	    hmac_sha256_finish(&c, u);
	    for (i = 0; i < SHA256_LEN; i++)
		t[i] ^= u[i];
	}
	n = out_len < SHA256_LEN ? out_len : SHA256_LEN;
	memcpy(out, t, n);
	out += n;
	out_len -= n;
    }
    explicit_bzero(&keyed, sizeof(keyed));
    explicit_bzero(&c, sizeof(c));
    explicit_bzero(u, sizeof(u));
    explicit_bzero(t, sizeof(t));
}

int mem_equal_secret(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    size_t i;

    for (i = 0; i < len; i++)
	diff |= x[i] ^ y[i];
    return diff == 0;
}
