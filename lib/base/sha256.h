/* sha256.h - SHA-256 (FIPS 180-4), HMAC-SHA-256 (RFC 2104) and
 * PBKDF2-HMAC-SHA-256 (RFC 8018): what SCRAM-SHA-256 needs, in ~200
 * lines of our own instead of a crypto library mapped into auth
 * (docs/architecture.md). Not for bulk hashing: plain C, no SIMD. */

#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32
#define SHA256_BLOCK	64

struct sha256 {
    uint32_t h[8];
    uint64_t total;		/* bytes hashed */
    unsigned char buf[SHA256_BLOCK];
    size_t fill;
};

void sha256_start(struct sha256 *c);
void sha256_add(struct sha256 *c, const void *data, size_t len);
void sha256_finish(struct sha256 *c, unsigned char out[SHA256_LEN]);
/* sha256_once - the digest of data[0..len) */
void sha256_once(const void *data, size_t len, unsigned char out[SHA256_LEN]);

struct hmac_sha256 {
    struct sha256 inner, outer;
};

void hmac_sha256_start(struct hmac_sha256 *c, const void *key, size_t key_len);
void hmac_sha256_add(struct hmac_sha256 *c, const void *data, size_t len);
void hmac_sha256_finish(struct hmac_sha256 *c, unsigned char out[SHA256_LEN]);

/* pbkdf2_sha256 - PBKDF2 with HMAC-SHA-256, out_len bytes (any) */
void pbkdf2_sha256(const void *password, size_t password_len, const void *salt,
		   size_t salt_len, unsigned long iterations, unsigned char *out, size_t out_len);

/* mem_equal_secret - a[0..len) == b[0..len), in time independent of
 * where they differ */
int mem_equal_secret(const void *a, const void *b, size_t len);

#endif
