/* passwd.c - crypt(3) hashes and SCRAM-SHA-256 secrets: make and check
 * (passwd.h). libcrypt does the hashing; SHA-256, HMAC and PBKDF2 are
 * lib/base's sha256.c (no crypto library mapped into auth for three
 * functions: docs/architecture.md, decisions 28 and 35). */

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* base */
#include "base64.h"
#include "errtext.h"
#include "mem.h"
#include "sha256.h"
#include "str.h"

/* mail */
#include "passwd.h"

static struct errtext passwd_error;

/* passwd_scheme_prefix - the crypt prefix of a scheme name */
const char *passwd_scheme_prefix(const char *scheme)
{
    if (strcmp(scheme, "yescrypt") == 0)
	return "$y$";
    if (strcmp(scheme, "sha512-crypt") == 0)
	return "$6$";
    if (strcmp(scheme, "bcrypt") == 0)
	return "$2b$";
    return NULL;
}

/* passwd_hash_make - crypt_gensalt_rn + crypt_rn */
int passwd_hash_make(const char *scheme, const char *password, struct str *out,
		     const char **error_r)
{
    const char *prefix = passwd_scheme_prefix(scheme);
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *data;
    const char *hash;
    int rc = -1;

    if (prefix == NULL)
	return errtext_fail(&passwd_error, error_r,
			    "unknown hash scheme \"%.32s\" (yescrypt, sha512-crypt, bcrypt)", scheme);
    if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)) == NULL)
	return errtext_fail(&passwd_error, error_r, "crypt_gensalt %s: %m", scheme);
    data = mem_zalloc(sizeof(*data));
    hash = crypt_rn(password, setting, data, (int) sizeof(*data));
    if (hash == NULL || *hash == '*')
	errtext_fail(&passwd_error, error_r, "crypt %s: %m", scheme);
    else if (!str_try_set(out, hash))
	errtext_fail(&passwd_error, error_r, "hash too long");
    else
	rc = 0;
    explicit_bzero(data, sizeof(*data));
    mem_free(&data);
    return rc;
}

/* passwd_equal - constant-time comparison */
bool passwd_equal(const void *a, const void *b, size_t len)
{
    return mem_equal_secret(a, b, len) != 0;
}

/* passwd_hash_usable - a hash of a kind libcrypt knows */
bool passwd_hash_usable(const char *hash)
{
    return hash[0] == '$' || (hash[0] && hash[0] != '!' && hash[0] != '*'
			      && strlen(hash) == 13);
}

/* passwd_hash_check - crypt_rn with the hash as setting, then compare
 * the whole output in constant time (static buffer: crypt_data is big) */
bool passwd_hash_check(const char *password, const char *hash)
{
    static struct crypt_data *data;
    const char *res;
    size_t len = strlen(hash);
    bool ok;

    if (data == NULL)
	data = mem_zalloc(sizeof(*data));
    if (!passwd_hash_usable(hash))
	return false;
    res = crypt_rn(password, hash, data, (int) sizeof(*data));
    ok = res != NULL && *res != '*' && strlen(res) == len && passwd_equal(res, hash, len);
    explicit_bzero(data->output, sizeof(data->output));
    explicit_bzero(data->input, sizeof(data->input));
    return ok;
}

/* passwd_hmac_sha256 - HMAC-SHA-256 */
void passwd_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
			unsigned char out[PASSWD_SHA256_LEN])
{
    struct hmac_sha256 ctx;

    hmac_sha256_start(&ctx, key, key_len);
    hmac_sha256_add(&ctx, data, len);
    hmac_sha256_finish(&ctx, out);
    explicit_bzero(&ctx, sizeof(ctx));
}

/* passwd_sha256 - SHA-256 */
void passwd_sha256(const void *data, size_t len, unsigned char out[PASSWD_SHA256_LEN])
{
    sha256_once(data, len, out);
}

/* passwd_scram_keys - SaltedPassword, then StoredKey and ServerKey */
int passwd_scram_keys(const char *password, const unsigned char *salt, size_t salt_len,
		      long iterations, unsigned char stored[PASSWD_SHA256_LEN],
		      unsigned char server[PASSWD_SHA256_LEN], const char **error_r)
{
    unsigned char salted[PASSWD_SHA256_LEN], client[PASSWD_SHA256_LEN];

    if (iterations < 1 || iterations > 100000000)
	return errtext_fail(&passwd_error, error_r, "bad iteration count %ld", iterations);
    pbkdf2_sha256(password, strlen(password), salt, salt_len, (unsigned long) iterations,
		  salted, sizeof(salted));
    passwd_hmac_sha256(salted, sizeof(salted), "Client Key", 10, client);
    passwd_sha256(client, sizeof(client), stored);
    passwd_hmac_sha256(salted, sizeof(salted), "Server Key", 10, server);
    explicit_bzero(salted, sizeof(salted));
    explicit_bzero(client, sizeof(client));
    return 0;
}

/* passwd_scram_make - random salt, the keys, the text form */
int passwd_scram_make(const char *password, long iterations, struct str *out,
		      const char **error_r)
{
    unsigned char salt[16], stored[PASSWD_SHA256_LEN], server[PASSWD_SHA256_LEN];

    if (getrandom(salt, sizeof(salt), 0) != (ssize_t) sizeof(salt))
	return errtext_fail(&passwd_error, error_r, "getrandom: %m");
    if (passwd_scram_keys(password, salt, sizeof(salt), iterations, stored, server, error_r) < 0)
	return -1;
    str_reset(out);
    if (!str_try_printf(out, "%ld,", iterations) || !base64_encode(salt, sizeof(salt), out)
	|| !str_try_appendc(out, ',') || !base64_encode(stored, sizeof(stored), out)
	|| !str_try_appendc(out, ',') || !base64_encode(server, sizeof(server), out))
	return errtext_fail(&passwd_error, error_r, "SCRAM secret too long");
    return 0;
}

/* scram_part - decode one base64 part of exactly want bytes (0: 1..max) */
static bool scram_part(const char *text, size_t len, unsigned char *buf, size_t want, size_t max,
		       size_t *got)
{
    struct str *s = str_new(256);
    bool ok = base64_decode(text, len, s) && (want ? str_len(s) == want
					      : str_len(s) >= 1 && str_len(s) <= max);

    if (ok) {
	memcpy(buf, str_cstr(s), str_len(s));
	if (got)
	    *got = str_len(s);
    }
    str_free(&s);
    return ok;
}

/* passwd_scram_parse - the four parts of a stored secret */
int passwd_scram_parse(const char *secret, struct passwd_scram *scram, const char **error_r)
{
    const char *p[4], *end;
    char *num_end;
    int n = 0;

    p[n++] = secret;
    for (const char *cp = secret; *cp && n < 4; cp++)
	if (*cp == ',')
	    p[n++] = cp + 1;
    if (n != 4 || strchr(p[3], ',') != NULL)
	return errtext_fail(&passwd_error, error_r, "SCRAM secret: expected 4 parts");
    errno = 0;
    scram->iterations = strtol(secret, &num_end, 10);
    if (errno || num_end != p[1] - 1 || !isdigit((unsigned char) *secret)
	|| scram->iterations < 1)
	return errtext_fail(&passwd_error, error_r, "SCRAM secret: bad iteration count");
    end = p[3] + strlen(p[3]);
    if (!scram_part(p[1], (size_t) (p[2] - 1 - p[1]), scram->salt, 0, PASSWD_SALT_MAX,
		    &scram->salt_len)
	|| !scram_part(p[2], (size_t) (p[3] - 1 - p[2]), scram->stored_key, PASSWD_SHA256_LEN, 0,
		       NULL)
	|| !scram_part(p[3], (size_t) (end - p[3]), scram->server_key, PASSWD_SHA256_LEN, 0,
		       NULL))
	return errtext_fail(&passwd_error, error_r, "SCRAM secret: bad base64 part");
    return 0;
}
