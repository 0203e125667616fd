/* passwd.h - password hashes and SCRAM-SHA-256 secrets: made by
 * `posthorn pw`, checked by auth and `posthorn auth test`.
 *
 *   passwd_hash_make(scheme, password, out)   a crypt(3) hash with the
 *       scheme ("yescrypt", "sha512-crypt", "bcrypt") and a fresh salt
 *   passwd_hash_check(password, hash)    true if password matches hash,
 *       compared in constant time; a hash libcrypt cannot use is false
 *   passwd_scram_make(password, iterations, out)   the stored secret
 *       "ITERATIONS,SALT,STOREDKEY,SERVERKEY" (base64) of RFC 5802/7677
 *   passwd_scram_parse(secret, ...)   its parts
 *   passwd_scram_keys(password, salt, iterations, stored, server) the
 *       RFC 5802 computation (SaltedPassword = PBKDF2-HMAC-SHA-256;
 *       ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey =
 *       SHA-256(ClientKey); ServerKey = HMAC(SaltedPassword, "Server Key")).
 * Passwords are used as given (no SASLprep: non-ASCII passwords must be
 * sent in the same normalization they were hashed in).
 *
 * DIAGNOSTICS: -1 and *error_r (this module's errtext). */
#ifndef POSTHORN_PASSWD_H
#define POSTHORN_PASSWD_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define PASSWD_SHA256_LEN	32
#define PASSWD_SALT_MAX		64

struct passwd_scram {
    long iterations;
    unsigned char salt[PASSWD_SALT_MAX];
    size_t salt_len;
    unsigned char stored_key[PASSWD_SHA256_LEN];
    unsigned char server_key[PASSWD_SHA256_LEN];
};

/* passwd_scheme_prefix - "$y$", "$6$", "$2b$" for a scheme name, or NULL */
const char *passwd_scheme_prefix(const char *scheme);
/* passwd_hash_make - hash password with scheme into out (reset first) */
int passwd_hash_make(const char *scheme, const char *password, struct str *out,
		     const char **error_r);
/* passwd_hash_check - constant-time verification of password against hash */
bool passwd_hash_check(const char *password, const char *hash);
/* passwd_hash_usable - libcrypt can verify this hash (its prefix is known) */
bool passwd_hash_usable(const char *hash);

/* passwd_scram_keys - the RFC 5802 keys of a password */
int passwd_scram_keys(const char *password, const unsigned char *salt, size_t salt_len,
		      long iterations, unsigned char stored[PASSWD_SHA256_LEN],
		      unsigned char server[PASSWD_SHA256_LEN], const char **error_r);
/* passwd_scram_make - a fresh secret (random 16-byte salt) into out (reset) */
int passwd_scram_make(const char *password, long iterations, struct str *out,
		      const char **error_r);
/* passwd_scram_parse - "ITERATIONS,SALT,STOREDKEY,SERVERKEY" */
int passwd_scram_parse(const char *secret, struct passwd_scram *scram, const char **error_r);

/* passwd_crypto_load - load Nettle (dlopen libnettle.so.8) now, for
 * SHA-256, HMAC and PBKDF2; 0, or -1 and *error_r. passwd_scram_keys
 * and passwd_scram_make call it; the two void primitives below load
 * on first use and exit (msg_fatal) if Nettle cannot be loaded, so a
 * caller that must not die calls this first. Call it before a chroot
 * that hides the library. */
int passwd_crypto_load(const char **error_r);
/* passwd_hmac_sha256, passwd_sha256 - the primitives SCRAM uses */
void passwd_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
			unsigned char out[PASSWD_SHA256_LEN]);
void passwd_sha256(const void *data, size_t len, unsigned char out[PASSWD_SHA256_LEN]);
/* passwd_equal - constant-time comparison of two equal-length buffers
 * (a plain loop: needs no library) */
bool passwd_equal(const void *a, const void *b, size_t len);

#endif
