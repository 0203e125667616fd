/* tls_openssl.c - posthorn's OpenSSL plugin, built as posthorn-tls.so
 * and loaded with dlopen(3) by lib/tls/tls.c (see tls_plugin.h, and
 * docs/tls.md for why TLS is a plugin).
 *
 * Self-contained on purpose: it uses libc and OpenSSL only, never a
 * symbol of the program that loads it (logging goes through the env
 * callback), so it links with -z defs. Texts are formatted with
 * snprintf into fixed arrays (cut when too long: they are messages);
 * lib/base's str.h is not available here.
 *
 * Server: one SSL_CTX per certificate set (the default one and one per
 * SNI entry); each holds every key type given (RSA, ECDSA, Ed25519) and
 * OpenSSL picks the one the client supports. Session resumption is
 * stateless (tickets only, no server session cache): the ticket keys are
 * derived from a secret shared by every process of the service and from
 * the time slot floor(now / lifetime), and a ticket of the previous slot
 * is still accepted (and renewed), so any process resumes a session that
 * another one started.
 *
 * Client: verification never fails the handshake (SSL_VERIFY_NONE): the
 * result, the matched name and the fingerprints land in tls_info and the
 * caller's policy decides. Sessions are cached in memory per cache_key. */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_plugin.h"

#define DEFAULT_CIPHERS "HIGH:!aNULL:!MD5:!RC4:!3DES:!CAMELLIA:!ARIA:!PSK:!SRP"
#define SNI_MAX 256

static struct tls_plugin_env plugin_env;

struct server_ctx {
    char name[SNI_MAX];			/* SNI name ("" default) */
    SSL_CTX *ctx;
};

struct server {
    struct server_ctx *ctxs;		/* [0] default, then SNI entries */
    size_t nctx;
    unsigned char secret[64];
    size_t secret_len;
    long lifetime;
    char service[64];
};

struct cache_entry {
    char key[256];
    SSL_SESSION *session;
    unsigned long long used;
};

struct client {
    SSL_CTX *ctx;
    struct cache_entry *cache;
    size_t cache_max;
    unsigned long long tick;
};

struct session {
    SSL *ssl;
    int fd;
    bool server;
    short want;
    int sys_errno;			/* errno of the last failed recv/send */
    struct server *srv;
    struct client *cli;
    char sni[SNI_MAX];
    char cache_key[256];
    char match_names[8][256];
    size_t nmatch;
    char err[256];
    bool fatal;				/* a protocol error happened */
};

static int ex_session_index = -1;
static BIO_METHOD *sock_method;

/* ---------- small helpers ---------- */

static void logf_(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (plugin_env.log)
	plugin_env.log(level, buf);
}

/* set_err - "text: openssl reason" into err; clears the error queue */
static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    unsigned long e;
    size_t len;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    len = strlen(err);
    if ((e = ERR_peek_last_error()) != 0 && len + 3 < errlen) {
	const char *r = ERR_reason_error_string(e);
	char tmp[256];

	if (r == NULL) {
	    ERR_error_string_n(e, tmp, sizeof(tmp));
	    r = tmp;
	}
	snprintf(err + len, errlen - len, ": %s", r);
    }
    ERR_clear_error();
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static void colon_hex(char *out, size_t size, const unsigned char *md, unsigned int len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (unsigned int i = 0; i < len && o + 4 <= size; i++) {
	if (i)
	    out[o++] = ':';
	out[o++] = hex[md[i] >> 4];
	out[o++] = hex[md[i] & 15];
    }
    out[o < size ? o : size - 1] = 0;
}

/* next_item - the next item of a comma/space separated list into buf */
static const char *next_item(const char *p, char *buf, size_t size)
{
    size_t n = 0;

    while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n')
	p++;
    if (*p == 0)
	return NULL;
    while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '\n') {
	if (n + 1 < size)
	    buf[n++] = *p;
	p++;
    }
    buf[n] = 0;
    return p;
}

/* ---------- a BIO over the fd that never blocks ---------- */

static int sock_write(BIO *b, const char *data, int len)
{
    struct session *s = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    n = send(s->fd, data, (size_t) len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK)
	n = write(s->fd, data, (size_t) len);
    if (n < 0) {
	s->sys_errno = errno;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
	    BIO_set_retry_write(b);
	return -1;
    }
    return (int) n;
}

static int sock_read(BIO *b, char *buf, int len)
{
    struct session *s = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    n = recv(s->fd, buf, (size_t) len, MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK)
	n = read(s->fd, buf, (size_t) len);
    if (n < 0) {
	s->sys_errno = errno;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
	    BIO_set_retry_read(b);
	return -1;
    }
    if (n == 0)
	BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return (int) n;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void) num;
    (void) ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
	return 1;
    case BIO_CTRL_EOF:
	return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
	return 0;
    }
}

static int sock_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---------- protocols ---------- */

static const struct {
    const char *name;
    int version;
} protos[] = {
    {"SSLv2", 0x0200}, {"SSLv3", SSL3_VERSION}, {"TLSv1", TLS1_VERSION},
    {"TLSv1.1", TLS1_1_VERSION}, {"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION},
};
#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

static int proto_index(const char *name)
{
    for (size_t i = 0; i < NPROTOS; i++)
	if (strcasecmp(protos[i].name, name) == 0)
	    return (int) i;
    return -1;
}

/* apply_protocols - Postfix syntax: ">=TLSv1.2", "<=TLSv1.3", "!SSLv3,
 * !TLSv1" (all but those), "TLSv1.2, TLSv1.3" (only those); "" is
 * ">=TLSv1.2". SSLv2/SSLv3 are never enabled. */
static int apply_protocols(SSL_CTX *ctx, const char *spec, char *err, size_t errlen)
{
    bool on[NPROTOS];
    bool any_plain = false, any = false;
    char item[32];
    const char *p;
    int lo = -1, hi = -1;

    if (spec == NULL || *spec == 0)
	spec = ">=TLSv1.2";
    for (size_t i = 0; i < NPROTOS; i++)
	on[i] = false;
    for (p = spec; (p = next_item(p, item, sizeof(item))) != NULL;)
	if (item[0] != '!' && item[0] != '>' && item[0] != '<')
	    any_plain = true;
    /* start: the named ones only, or all */
    for (size_t i = 2; i < NPROTOS; i++)
	on[i] = !any_plain;
    for (p = spec; (p = next_item(p, item, sizeof(item))) != NULL;) {
	const char *name = item;
	int idx;

	if (strncmp(item, ">=", 2) == 0 || strncmp(item, "<=", 2) == 0)
	    name = item + 2;
	else if (item[0] == '!')
	    name = item + 1;
	if ((idx = proto_index(name)) < 0) {
	    snprintf(err, errlen, "unknown TLS protocol \"%s\" in \"%s\"", name, spec);
	    return -1;
	}
	if (strncmp(item, ">=", 2) == 0) {
	    for (int i = 0; i < idx; i++)
		on[i] = false;
	} else if (strncmp(item, "<=", 2) == 0) {
	    for (size_t i = (size_t) idx + 1; i < NPROTOS; i++)
		on[i] = false;
	} else if (item[0] == '!') {
	    on[idx] = false;
	} else {
	    on[idx] = true;
	}
    }
    on[0] = on[1] = false;		/* SSLv2, SSLv3: never */
    for (size_t i = 0; i < NPROTOS; i++) {
	if (!on[i])
	    continue;
	any = true;
	if (lo < 0)
	    lo = (int) i;
	hi = (int) i;
    }
    if (!any) {
	snprintf(err, errlen, "no TLS protocol left in \"%s\"", spec);
	return -1;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, protos[lo].version)
	|| !SSL_CTX_set_max_proto_version(ctx, protos[hi].version)) {
	set_err(err, errlen, "cannot set TLS protocols \"%s\"", spec);
	return -1;
    }
    /* holes inside [lo, hi] */
    for (int i = lo; i <= hi; i++) {
	if (on[i])
	    continue;
	switch (protos[i].version) {
	case TLS1_VERSION: SSL_CTX_set_options(ctx, SSL_OP_NO_TLSv1); break;
	case TLS1_1_VERSION: SSL_CTX_set_options(ctx, SSL_OP_NO_TLSv1_1); break;
	case TLS1_2_VERSION: SSL_CTX_set_options(ctx, SSL_OP_NO_TLSv1_2); break;
	case TLS1_3_VERSION: SSL_CTX_set_options(ctx, SSL_OP_NO_TLSv1_3); break;
	default: break;
	}
    }
    /* TLS 1.0/1.1 need SHA-1 signatures: only at security level 0 */
    if (protos[lo].version < TLS1_2_VERSION)
	SSL_CTX_set_security_level(ctx, 0);
    return 0;
}

/* cipher_list - Postfix grade names map to lists; anything else is an
 * OpenSSL cipher list */
static const char *cipher_list(const char *ciphers)
{
    if (ciphers == NULL || *ciphers == 0 || strcasecmp(ciphers, "high") == 0)
	return DEFAULT_CIPHERS;
    if (strcasecmp(ciphers, "medium") == 0)
	return "HIGH:MEDIUM:!aNULL:!MD5:!RC4:!3DES";
    return ciphers;
}

static int apply_common(SSL_CTX *ctx, const char *protocols, const char *ciphers,
			const char *suites, char *err, size_t errlen)
{
    if (apply_protocols(ctx, protocols, err, errlen) < 0)
	return -1;
    if (!SSL_CTX_set_cipher_list(ctx, cipher_list(ciphers))) {
	set_err(err, errlen, "bad cipher list \"%s\"", cipher_list(ciphers));
	return -1;
    }
    if (suites && *suites && !SSL_CTX_set_ciphersuites(ctx, suites)) {
	set_err(err, errlen, "bad TLS 1.3 cipher suites \"%s\"", suites);
	return -1;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
			| SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 0;
}

/* ---------- keys and certificates ---------- */

/* load_pair - the key from key_path, the chain from cert_path (the
 * same file for a chain file); check that they match, then install */
static int load_pair(SSL_CTX *ctx, const char *cert_path, const char *key_path,
		     char *err, size_t errlen)
{
    BIO *b;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int ret = -1;

    if ((b = BIO_new_file(key_path, "r")) == NULL) {
	set_err(err, errlen, "cannot open %s: %s", key_path, strerror(errno));
	return -1;
    }
    key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (key == NULL) {
	set_err(err, errlen, "%s: no private key", key_path);
	return -1;
    }
    if ((b = BIO_new_file(cert_path, "r")) == NULL) {
	set_err(err, errlen, "cannot open %s: %s", cert_path, strerror(errno));
	goto out;
    }
    cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (cert == NULL) {
	set_err(err, errlen, "%s: no certificate", cert_path);
	goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
	ERR_clear_error();
	if (strcmp(cert_path, key_path) == 0)
	    snprintf(err, errlen, "%s: the private key does not match the certificate", cert_path);
	else
	    snprintf(err, errlen, "the private key in %s does not match the certificate in %s",
		     key_path, cert_path);
	goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
	set_err(err, errlen, "%s: cannot use the certificate chain", cert_path);
	goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
	set_err(err, errlen, "%s: cannot use the private key", key_path);
	goto out;
    }
    ret = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return ret;
}

/* ---------- session tickets ---------- */

/* ticket_derive - 16 name bytes, 32 cipher key bytes, 32 MAC key bytes
 * for slot: HMAC-SHA256(secret, label | service | slot) */
static int ticket_derive(const struct server *srv, unsigned long long slot,
			 unsigned char name[16], unsigned char aes[32], unsigned char mac[32])
{
    static const char *labels[3] = {"posthorn ticket name", "posthorn ticket aes",
				     "posthorn ticket hmac"};
    unsigned char *outs[3] = {NULL, aes, mac};
    unsigned char full[32];

    for (int i = 0; i < 3; i++) {
	unsigned char data[160];
	size_t dlen, outlen = 0;
	int n = snprintf((char *) data, sizeof(data) - 8, "%s|%s|", labels[i], srv->service);

	if (n < 0 || (size_t) n >= sizeof(data) - 8)
	    return -1;
	dlen = (size_t) n;
	for (int b = 7; b >= 0; b--)
	    data[dlen++] = (unsigned char) (slot >> (b * 8));
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, srv->secret, srv->secret_len,
		      data, dlen, full, sizeof(full), &outlen) == NULL || outlen != 32)
	    return -1;
	if (i == 0)
	    memcpy(name, full, 16);
	else
	    memcpy(outs[i], full, 32);
    }
    return 0;
}

static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
		     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct session *s = SSL_get_ex_data(ssl, ex_session_index);
    struct server *srv = s ? s->srv : NULL;
    unsigned char name[16], aes[32], mac[32];
    unsigned long long slot;
    OSSL_PARAM params[2];
    int ret = 1;

    if (srv == NULL || srv->secret_len == 0)
	return enc ? -1 : 0;
    slot = (unsigned long long) time(NULL) / (unsigned long long) srv->lifetime;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (enc) {
	if (ticket_derive(srv, slot, name, aes, mac) < 0 || RAND_bytes(iv, 16) != 1)
	    return -1;
	memcpy(key_name, name, 16);
    } else {
	if (ticket_derive(srv, slot, name, aes, mac) < 0)
	    return 0;
	if (memcmp(key_name, name, 16) != 0) {
	    if (slot == 0 || ticket_derive(srv, slot - 1, name, aes, mac) < 0
		|| memcmp(key_name, name, 16) != 0)
		return 0;			/* unknown key: full handshake */
	    ret = 2;				/* good, but issue a new one */
	}
    }
    if (!EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv, enc)
	|| !EVP_MAC_init(hctx, mac, sizeof(mac), params))
	ret = -1;
    OPENSSL_cleanse(aes, sizeof(aes));
    OPENSSL_cleanse(mac, sizeof(mac));
    return ret;
}

/* ---------- server ---------- */

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    struct server *srv = arg;
    struct session *s = SSL_get_ex_data(ssl, ex_session_index);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void) alert;
    if (name == NULL || s == NULL)
	return SSL_TLSEXT_ERR_OK;
    copy(s->sni, sizeof(s->sni), name);
    for (const char *n = name; n != NULL; n = strchr(n + 1, '.')) {
	for (size_t i = 1; i < srv->nctx; i++) {
	    if (strcasecmp(srv->ctxs[i].name, n) == 0) {
		SSL_set_SSL_CTX(ssl, srv->ctxs[i].ctx);
		return SSL_TLSEXT_ERR_OK;
	    }
	}
	if (n != name && n[1] == 0)
	    break;
    }
    return SSL_TLSEXT_ERR_OK;			/* unknown name: default certificate */
}

static void server_free(void *p)
{
    struct server *srv = p;

    if (srv == NULL)
	return;
    for (size_t i = 0; i < srv->nctx; i++)
	SSL_CTX_free(srv->ctxs[i].ctx);
    free(srv->ctxs);
    OPENSSL_cleanse(srv->secret, sizeof(srv->secret));
    free(srv);
}

/* server_ctx - one SSL_CTX with the certificates of chain_files (and,
 * for the default one, the legacy pairs) */
static SSL_CTX *server_ctx(struct server *srv, const struct tls_server_settings *set,
			   const char *chain_files, bool legacy, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char file[1024];
    const char *p;
    int certs = 0;

    if (ctx == NULL) {
	set_err(err, errlen, "SSL_CTX_new");
	return NULL;
    }
    if (apply_common(ctx, set->protocols, set->ciphers, set->ciphersuites, err, errlen) < 0)
	goto bad;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *) srv->service,
				   (unsigned int) strlen(srv->service));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (srv->secret_len > 0) {
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
	SSL_CTX_set_timeout(ctx, srv->lifetime);
	SSL_CTX_set_num_tickets(ctx, 1);
    } else {
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
    }
    for (p = chain_files ? chain_files : ""; (p = next_item(p, file, sizeof(file))) != NULL;) {
	if (load_pair(ctx, file, file, err, errlen) < 0)
	    goto bad;
	certs++;
    }
    if (legacy && set->cert_file && *set->cert_file) {
	const char *key = set->key_file && *set->key_file ? set->key_file : set->cert_file;

	if (load_pair(ctx, set->cert_file, key, err, errlen) < 0)
	    goto bad;
	certs++;
    }
    if (legacy && set->eccert_file && *set->eccert_file) {
	const char *key = set->eckey_file && *set->eckey_file ? set->eckey_file : set->eccert_file;

	if (load_pair(ctx, set->eccert_file, key, err, errlen) < 0)
	    goto bad;
	certs++;
    }
    if (certs == 0) {
	snprintf(err, errlen, "no server certificate configured (chain_files or cert_file)");
	goto bad;
    }
    if (set->ca_file && *set->ca_file) {
	STACK_OF(X509_NAME) *names;

	if (SSL_CTX_load_verify_locations(ctx, set->ca_file, NULL) != 1) {
	    set_err(err, errlen, "%s: cannot load CA certificates", set->ca_file);
	    goto bad;
	}
	if ((names = SSL_load_client_CA_file(set->ca_file)) != NULL)
	    SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (set->ask_client_cert)
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, NULL);
    ERR_clear_error();
    return ctx;
bad:
    SSL_CTX_free(ctx);
    return NULL;
}

/* verify_peer_ok - server asking for client certificates: never fail
 * the handshake for them (the result goes into tls_info) */
static int verify_peer_ok(int ok, X509_STORE_CTX *x)
{
    (void) ok;
    (void) x;
    return 1;
}

static void *server_new(const struct tls_server_settings *set, const struct tls_plugin_sni *sni,
			size_t sni_count, const unsigned char *secret, size_t secret_len,
			char *err, size_t errlen)
{
    struct server *srv = calloc(1, sizeof(*srv));

    if (srv == NULL) {
	snprintf(err, errlen, "out of memory");
	return NULL;
    }
    if (secret && secret_len > 0) {
	if (secret_len > sizeof(srv->secret))
	    secret_len = sizeof(srv->secret);
	memcpy(srv->secret, secret, secret_len);
	srv->secret_len = secret_len;
    }
    srv->lifetime = set->ticket_lifetime > 0 ? set->ticket_lifetime : 3600;
    copy(srv->service, sizeof(srv->service), set->service && *set->service ? set->service : "posthorn");
    srv->ctxs = calloc(sni_count + 1, sizeof(*srv->ctxs));
    if (srv->ctxs == NULL) {
	snprintf(err, errlen, "out of memory");
	free(srv);
	return NULL;
    }
    if ((srv->ctxs[0].ctx = server_ctx(srv, set, set->chain_files, true, err, errlen)) == NULL) {
	server_free(srv);
	return NULL;
    }
    srv->nctx = 1;
    for (size_t i = 0; i < sni_count; i++) {
	char e2[512];
	SSL_CTX *ctx = server_ctx(srv, set, sni[i].chain_files, false, e2, sizeof(e2));

	if (ctx == NULL) {
	    snprintf(err, errlen, "SNI name %s: %s", sni[i].name, e2);
	    server_free(srv);
	    return NULL;
	}
	copy(srv->ctxs[srv->nctx].name, SNI_MAX, sni[i].name);
	srv->ctxs[srv->nctx++].ctx = ctx;
    }
    for (size_t i = 0; i < srv->nctx; i++) {
	SSL_CTX_set_tlsext_servername_callback(srv->ctxs[i].ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(srv->ctxs[i].ctx, srv);
	if (set->ask_client_cert)
	    SSL_CTX_set_verify(srv->ctxs[i].ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
			       verify_peer_ok);
    }
    return srv;
}

/* ---------- client ---------- */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct session *s = SSL_get_ex_data(ssl, ex_session_index);
    struct client *cli;
    struct cache_entry *slot = NULL;

    if (s == NULL || (cli = s->cli) == NULL || s->cache_key[0] == 0 || cli->cache_max == 0)
	return 0;
    for (size_t i = 0; i < cli->cache_max; i++) {
	struct cache_entry *e = &cli->cache[i];

	if (e->session && strcmp(e->key, s->cache_key) == 0) {
	    slot = e;
	    break;
	}
	if (slot == NULL || (slot->session && (e->session == NULL || e->used < slot->used)))
	    slot = e;
    }
    if (slot->session)
	SSL_SESSION_free(slot->session);
    copy(slot->key, sizeof(slot->key), s->cache_key);
    slot->session = sess;			/* the reference is ours */
    slot->used = ++cli->tick;
    return 1;
}

static void client_free(void *p)
{
    struct client *cli = p;

    if (cli == NULL)
	return;
    for (size_t i = 0; i < cli->cache_max; i++)
	if (cli->cache[i].session)
	    SSL_SESSION_free(cli->cache[i].session);
    free(cli->cache);
    SSL_CTX_free(cli->ctx);
    free(cli);
}

static void *client_new(const struct tls_client_settings *set, char *err, size_t errlen)
{
    struct client *cli = calloc(1, sizeof(*cli));
    bool have_ca = false;

    if (cli == NULL || (cli->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
	set_err(err, errlen, "cannot create the TLS client context");
	free(cli);
	return NULL;
    }
    if (apply_common(cli->ctx, set->protocols, set->ciphers, set->ciphersuites, err, errlen) < 0)
	goto bad;
    if ((set->ca_file && *set->ca_file) || (set->ca_path && *set->ca_path)) {
	const char *f = set->ca_file && *set->ca_file ? set->ca_file : NULL;
	const char *d = set->ca_path && *set->ca_path ? set->ca_path : NULL;

	if (SSL_CTX_load_verify_locations(cli->ctx, f, d) != 1) {
	    set_err(err, errlen, "cannot load CA certificates from %s", f ? f : d);
	    goto bad;
	}
	have_ca = true;
    }
    if (set->system_ca || !have_ca) {
	if (SSL_CTX_set_default_verify_paths(cli->ctx) != 1 && set->system_ca) {
	    set_err(err, errlen, "cannot load the system CA store");
	    goto bad;
	}
    }
    if (set->cert_file && *set->cert_file) {
	const char *key = set->key_file && *set->key_file ? set->key_file : set->cert_file;

	if (load_pair(cli->ctx, set->cert_file, key, err, errlen) < 0)
	    goto bad;
    }
    SSL_CTX_set_verify(cli->ctx, SSL_VERIFY_NONE, NULL);
    cli->cache_max = set->session_cache_max > 0 ? (size_t) set->session_cache_max : 0;
    if (cli->cache_max > 0) {
	if ((cli->cache = calloc(cli->cache_max, sizeof(*cli->cache))) == NULL) {
	    snprintf(err, errlen, "out of memory");
	    goto bad;
	}
	SSL_CTX_set_session_cache_mode(cli->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(cli->ctx, new_session_cb);
    } else {
	SSL_CTX_set_session_cache_mode(cli->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(cli->ctx, SSL_OP_NO_TICKET);
    }
    ERR_clear_error();
    return cli;
bad:
    client_free(cli);
    return NULL;
}

/* ---------- sessions ---------- */

static struct session *session_new(SSL_CTX *ctx, int fd, char *err, size_t errlen)
{
    struct session *s = calloc(1, sizeof(*s));
    BIO *b;

    if (s == NULL || (s->ssl = SSL_new(ctx)) == NULL || (b = BIO_new(sock_method)) == NULL) {
	set_err(err, errlen, "cannot create a TLS session");
	if (s)
	    SSL_free(s->ssl);
	free(s);
	return NULL;
    }
    s->fd = fd;
    s->want = POLLIN;
    BIO_set_data(b, s);
    SSL_set_bio(s->ssl, b, b);
    SSL_set_ex_data(s->ssl, ex_session_index, s);
    return s;
}

static void *session_server(void *srvp, int fd, char *err, size_t errlen)
{
    struct server *srv = srvp;
    struct session *s = session_new(srv->ctxs[0].ctx, fd, err, errlen);

    if (s == NULL)
	return NULL;
    s->server = true;
    s->srv = srv;
    SSL_set_accept_state(s->ssl);
    return s;
}

static void *session_client(void *clip, int fd, const struct tls_client_peer *peer,
			    char *err, size_t errlen)
{
    struct client *cli = clip;
    struct session *s = session_new(cli->ctx, fd, err, errlen);

    if (s == NULL)
	return NULL;
    s->cli = cli;
    SSL_set_connect_state(s->ssl);
    if (peer && peer->sni && *peer->sni) {
	copy(s->sni, sizeof(s->sni), peer->sni);
	if (SSL_set_tlsext_host_name(s->ssl, peer->sni) != 1)
	    ERR_clear_error();			/* an IP address: no SNI */
    }
    if (peer && peer->match_names)
	for (size_t i = 0; peer->match_names[i] && s->nmatch < 8; i++)
	    copy(s->match_names[s->nmatch++], 256, peer->match_names[i]);
    if (peer && peer->cache_key && *peer->cache_key && cli->cache_max > 0) {
	copy(s->cache_key, sizeof(s->cache_key), peer->cache_key);
	for (size_t i = 0; i < cli->cache_max; i++) {
	    struct cache_entry *e = &cli->cache[i];

	    if (e->session && strcmp(e->key, s->cache_key) == 0) {
		if (SSL_SESSION_is_resumable(e->session))
		    SSL_set_session(s->ssl, e->session);
		e->used = ++cli->tick;
		break;
	    }
	}
    }
    return s;
}

/* result - map an SSL call's result: -1/EAGAIN with want set, 0 for a
 * read at EOF, -1 with errno and s->err */
static int result(struct session *s, int r, const char *what)
{
    int e = SSL_get_error(s->ssl, r);

    switch (e) {
    case SSL_ERROR_WANT_READ:
	s->want = POLLIN;
	ERR_clear_error();
	errno = EAGAIN;
	return -1;
    case SSL_ERROR_WANT_WRITE:
	s->want = POLLOUT;
	ERR_clear_error();
	errno = EAGAIN;
	return -1;
    case SSL_ERROR_ZERO_RETURN:
	ERR_clear_error();
	return 0;
    case SSL_ERROR_SYSCALL:
	if (ERR_peek_error() == 0) {
	    if (s->sys_errno == 0 || r == 0) {
		snprintf(s->err, sizeof(s->err), "%s: connection closed by the peer", what);
		ERR_clear_error();
		errno = ECONNRESET;
		return r == 0 ? 0 : -1;
	    }
	    snprintf(s->err, sizeof(s->err), "%s: %s", what, strerror(s->sys_errno));
	    errno = s->sys_errno;
	    return -1;
	}
	/* FALLTHROUGH */
    default:
	s->fatal = true;
	set_err(s->err, sizeof(s->err), "%s failed", what);
	errno = EPROTO;
	return -1;
    }
}

static int handshake(void *p, char *err, size_t errlen)
{
    struct session *s = p;
    int r;

    ERR_clear_error();
    s->sys_errno = 0;
    if ((r = SSL_do_handshake(s->ssl)) == 1)
	return 1;
    r = result(s, r, "TLS handshake");
    if (r < 0 && errno == EAGAIN)
	return -1;
    if (r == 0 || s->err[0] == 0)
	snprintf(s->err, sizeof(s->err), "TLS handshake: connection closed by the peer");
    copy(err, errlen, s->err);
    errno = EPROTO;
    return -1;
}

static bool handshake_done(void *p)
{
    struct session *s = p;

    return SSL_is_init_finished(s->ssl);
}

static ssize_t sess_read(void *p, void *buf, size_t len)
{
    struct session *s = p;
    size_t got = 0;
    int r;

    ERR_clear_error();
    s->sys_errno = 0;
    r = SSL_read_ex(s->ssl, buf, len, &got);
    if (r == 1)
	return (ssize_t) got;
    return result(s, r, "TLS read");
}

static ssize_t sess_write(void *p, const void *buf, size_t len)
{
    struct session *s = p;
    size_t done = 0;
    int r;

    ERR_clear_error();
    s->sys_errno = 0;
    r = SSL_write_ex(s->ssl, buf, len, &done);
    if (r == 1)
	return (ssize_t) done;
    r = result(s, r, "TLS write");
    if (r == 0) {
	errno = EPIPE;
	return -1;
    }
    return r;
}

static size_t sess_pending(void *p)
{
    struct session *s = p;
    int n = SSL_pending(s->ssl);

    return n > 0 ? (size_t) n : 0;
}

static short sess_want(void *p)
{
    struct session *s = p;

    return s->want;
}

static int sess_shutdown(void *p)
{
    struct session *s = p;
    int r;

    ERR_clear_error();
    r = SSL_shutdown(s->ssl);
    if (r >= 0)
	return 1;				/* sent (0: peer's not yet seen) */
    r = result(s, r, "TLS shutdown");
    return r < 0 ? -1 : 1;
}

static const char *sess_last_error(void *p)
{
    struct session *s = p;

    return s->err;
}

static void name_cn(X509_NAME *n, char *buf, size_t size)
{
    buf[0] = 0;
    if (n && X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int) size) < 0)
	buf[0] = 0;
}

static void sess_info(void *p, struct tls_info *info)
{
    struct session *s = p;
    const SSL_CIPHER *c = SSL_get_current_cipher(s->ssl);
    X509 *cert = SSL_get1_peer_certificate(s->ssl);

    memset(info, 0, sizeof(*info));
    copy(info->protocol, sizeof(info->protocol), SSL_get_version(s->ssl));
    if (c) {
	copy(info->cipher, sizeof(info->cipher), SSL_CIPHER_get_name(c));
	info->cipher_bits = SSL_CIPHER_get_bits(c, &info->cipher_alg_bits);
    }
    info->resumed = SSL_session_reused(s->ssl) == 1;
    copy(info->sni, sizeof(info->sni), s->sni);
    if (cert) {
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char *der = NULL;
	int derlen;
	long vr = SSL_get_verify_result(s->ssl);

	info->peer_cert = true;
	name_cn(X509_get_subject_name(cert), info->peer_subject_cn, sizeof(info->peer_subject_cn));
	name_cn(X509_get_issuer_name(cert), info->peer_issuer_cn, sizeof(info->peer_issuer_cn));
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1)
	    colon_hex(info->peer_fingerprint, sizeof(info->peer_fingerprint), md, mdlen);
	if ((derlen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der)) > 0) {
	    if (EVP_Digest(der, (size_t) derlen, md, &mdlen, EVP_sha256(), NULL) == 1)
		colon_hex(info->peer_pkey_fingerprint, sizeof(info->peer_pkey_fingerprint), md, mdlen);
	    OPENSSL_free(der);
	}
	info->verified = vr == X509_V_OK;
	if (!info->verified)
	    copy(info->verify_error, sizeof(info->verify_error), X509_verify_cert_error_string(vr));
	for (size_t i = 0; i < s->nmatch && !info->name_matched; i++) {
	    const char *n = s->match_names[i];
	    char *peername = NULL;
	    int r;

	    if (X509_check_ip_asc(cert, n, 0) == 1) {
		r = 1;
	    } else {
		r = X509_check_host(cert, n, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, &peername);
	    }
	    if (r == 1) {
		info->name_matched = true;
		copy(info->matched_name, sizeof(info->matched_name), peername ? peername : n);
	    }
	    OPENSSL_free(peername);
	}
	X509_free(cert);
    } else if (!s->server) {
	copy(info->verify_error, sizeof(info->verify_error), "no peer certificate");
    }
    ERR_clear_error();
}

static void session_free(void *p)
{
    struct session *s = p;

    if (s == NULL)
	return;
    /* a session that ended without close_notify (most SMTP servers just
     * close after QUIT) stays resumable unless it failed */
    if (!s->fatal && SSL_is_init_finished(s->ssl))
	SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(s->ssl);
    free(s);
}

static int init(const struct tls_plugin_env *env, char *err, size_t errlen)
{
    if (env->abi != TLS_PLUGIN_ABI) {
	snprintf(err, errlen, "plugin ABI %d, program ABI %d", TLS_PLUGIN_ABI, env->abi);
	return -1;
    }
    plugin_env = *env;
    if (sock_method != NULL)
	return 0;
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL) != 1) {
	set_err(err, errlen, "OpenSSL initialisation failed");
	return -1;
    }
    ex_session_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    sock_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "posthorn socket");
    if (sock_method == NULL || ex_session_index < 0) {
	set_err(err, errlen, "OpenSSL initialisation failed");
	return -1;
    }
    BIO_meth_set_write(sock_method, sock_write);
    BIO_meth_set_read(sock_method, sock_read);
    BIO_meth_set_ctrl(sock_method, sock_ctrl);
    BIO_meth_set_create(sock_method, sock_create);
    (void) logf_;
    return 0;
}

static const struct tls_plugin_ops ops = {
    .abi = TLS_PLUGIN_ABI,
    .version = OPENSSL_VERSION_TEXT,
    .init = init,
    .server_new = server_new,
    .server_free = server_free,
    .client_new = client_new,
    .client_free = client_free,
    .session_server = session_server,
    .session_client = session_client,
    .handshake = handshake,
    .handshake_done = handshake_done,
    .read = sess_read,
    .write = sess_write,
    .pending = sess_pending,
    .want = sess_want,
    .shutdown = sess_shutdown,
    .info = sess_info,
    .last_error = sess_last_error,
    .session_free = session_free,
};

const struct tls_plugin_ops *posthorn_tls_plugin_ops(void);

const struct tls_plugin_ops *posthorn_tls_plugin_ops(void)
{
    return &ops;
}
