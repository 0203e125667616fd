/* auth_scram.c - SCRAM-SHA-256 server messages and proof check
 * (auth_scram.h). */

#include <string.h>

/* base */
#include "base64.h"
#include "str.h"

/* mail */
#include "passwd.h"

/* this program */
#include "auth_scram.h"

/* scram_unescape - a saslname: "=2C" is ",", "=3D" is "="; false on a
 * bad escape */
static bool scram_unescape(const char *p, size_t len, struct str *out)
{
    str_reset(out);
    for (size_t i = 0; i < len; i++) {
	char c = p[i];

	if (c == '=') {
	    if (i + 2 < len + 0 && p[i + 1] == '2' && p[i + 2] == 'C')
		c = ',';
	    else if (i + 2 < len + 0 && p[i + 1] == '3' && p[i + 2] == 'D')
		c = '=';
	    else
		return false;
	    i += 2;
	} else if (c == ',' || c == 0) {
	    return false;
	}
	if (!str_try_appendc(out, c))
	    return false;
    }
    return str_len(out) > 0;
}

/* scram_copy - a bounded copy of len bytes */
static bool scram_copy(char *dst, const char *src, size_t len)
{
    if (len >= SCRAM_MSG_MAX)
	return false;
    memcpy(dst, src, len);
    dst[len] = 0;
    return true;
}

/* scram_client_first - gs2-header client-first-message-bare */
int scram_client_first(struct scram_server *s, const char *msg, size_t len, struct str *user)
{
    const char *end = msg + len, *p, *comma, *bare, *authzid = NULL;
    size_t authzid_len = 0;

    memset(s, 0, sizeof(*s));
    if (memchr(msg, 0, len) || len < 3 || (msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
	return -1;
    p = msg + 2;
    if ((comma = memchr(p, ',', (size_t) (end - p))) == NULL)
	return -1;
    if (comma > p) {
	if (p[0] != 'a' || p[1] != '=')
	    return -1;
	authzid = p + 2;
	authzid_len = (size_t) (comma - authzid);
    }
    bare = comma + 1;
    if (!scram_copy(s->gs2_header, msg, (size_t) (bare - msg))
	|| !scram_copy(s->client_first_bare, bare, (size_t) (end - bare)))
	return -1;
    /* n=user,r=nonce[,extensions]; "m=" (mandatory extension) is refused */
    if (end - bare < 2 || bare[0] != 'n' || bare[1] != '=')
	return -1;
    p = bare + 2;
    if ((comma = memchr(p, ',', (size_t) (end - p))) == NULL || !scram_unescape(p, (size_t) (comma - p), user))
	return -1;
    if (authzid) {
	struct str *az = str_new(SCRAM_MSG_MAX);
	bool same = scram_unescape(authzid, authzid_len, az) && strcmp(str_cstr(az), str_cstr(user)) == 0;

	str_free(&az);
	if (!same)
	    return -1;
    }
    p = comma + 1;
    if (end - p < 3 || p[0] != 'r' || p[1] != '=')
	return -1;
    p += 2;
    comma = memchr(p, ',', (size_t) (end - p));
    if (!scram_copy(s->nonce, p, (size_t) ((comma ? comma : end) - p)) || !*s->nonce)
	return -1;
    for (const char *q = s->nonce; *q; q++)
	if (*q < 0x21 || *q > 0x7e)
	    return -1;
    return 0;
}

/* scram_server_first - r=cnonce+snonce,s=salt,i=iterations */
void scram_server_first(struct scram_server *s, const struct passwd_scram *secret,
			const char *snonce, struct str *out)
{
    struct str *msg = str_new(SCRAM_MSG_MAX - 1);

    s->secret = *secret;
    str_printf_or_panic(msg, "r=%s%s,s=", s->nonce, snonce);
    if (!base64_encode(secret->salt, secret->salt_len, msg)
	|| !str_try_appendf(msg, ",i=%ld", secret->iterations))
	str_reset(msg);			/* cannot happen: bounded parts */
    str_copy_out_or_panic(s->server_first, sizeof(s->server_first), str_cstr(msg));
    /* the whole nonce, for the client-final check */
    {
	struct str *n = str_new(SCRAM_MSG_MAX - 1);

	str_printf_or_panic(n, "%s%s", s->nonce, snonce);
	str_copy_out_or_panic(s->nonce, sizeof(s->nonce), str_cstr(n));
	str_free(&n);
    }
    str_reset(out);
    str_appends_or_panic(out, s->server_first);
    str_free(&msg);
}

/* scram_client_final - c=...,r=...[,ext],p=proof */
int scram_client_final(struct scram_server *s, const char *msg, size_t len, struct str *out)
{
    const char *end = msg + len, *p, *comma, *proof_attr;
    struct str *cb = str_new(SCRAM_MSG_MAX), *tmp = str_new(SCRAM_MSG_MAX * 4);
    unsigned char sig[PASSWD_SHA256_LEN], key[PASSWD_SHA256_LEN], stored[PASSWD_SHA256_LEN];
    int rc = -1;

    if (memchr(msg, 0, len) || len < 3 || msg[0] != 'c' || msg[1] != '=')
	goto out;
    /* channel binding: the base64 of the GS2 header, as sent */
    if (!base64_encode(s->gs2_header, strlen(s->gs2_header), cb))
	goto out;
    p = msg + 2;
    if ((comma = memchr(p, ',', (size_t) (end - p))) == NULL
	|| (size_t) (comma - p) != str_len(cb) || memcmp(p, str_cstr(cb), str_len(cb)) != 0)
	goto out;
    p = comma + 1;
    if (end - p < 2 || p[0] != 'r' || p[1] != '=')
	goto out;
    p += 2;
    if ((comma = memchr(p, ',', (size_t) (end - p))) == NULL
	|| (size_t) (comma - p) != strlen(s->nonce) || memcmp(p, s->nonce, strlen(s->nonce)) != 0)
	goto out;
    /* the proof is the last attribute */
    for (proof_attr = NULL, p = comma; p && p < end; p = memchr(p + 1, ',', (size_t) (end - p - 1)))
	if (end - p > 3 && p[1] == 'p' && p[2] == '=')
	    proof_attr = p;
    if (proof_attr == NULL || memchr(proof_attr + 1, ',', (size_t) (end - proof_attr - 1)))
	goto out;
    str_reset(cb);
    if (!base64_decode(proof_attr + 3, (size_t) (end - proof_attr - 3), cb)
	|| str_len(cb) != PASSWD_SHA256_LEN)
	goto out;
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    str_reset(tmp);
    if (!str_try_appendf(tmp, "%s,%s,", s->client_first_bare, s->server_first)
	|| !str_try_append(tmp, msg, (size_t) (proof_attr - msg)))
	goto out;
    passwd_hmac_sha256(s->secret.stored_key, PASSWD_SHA256_LEN, str_cstr(tmp), str_len(tmp), sig);
    for (int i = 0; i < PASSWD_SHA256_LEN; i++)
	key[i] = (unsigned char) str_cstr(cb)[i] ^ sig[i];
    passwd_sha256(key, sizeof(key), stored);
    if (!passwd_equal(stored, s->secret.stored_key, PASSWD_SHA256_LEN))
	goto out;
    passwd_hmac_sha256(s->secret.server_key, PASSWD_SHA256_LEN, str_cstr(tmp), str_len(tmp), sig);
    str_reset(out);
    str_appends_or_panic(out, "v=");
    if (!base64_encode(sig, sizeof(sig), out))
	goto out;
    rc = 0;
  out:
    str_free(&cb);
    str_free(&tmp);
    return rc;
}
