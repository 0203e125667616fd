/* tls.h - TLS for posthorn's servers and clients (contract, issue 13).
 *
 * One module, shared by smtpd, smtp-client, pop3d-login, imapd-login and
 * the post-login daemons. OpenSSL is NOT linked into the programs: the
 * OpenSSL code is a plugin, posthorn-tls.so in daemon_directory, loaded
 * with dlopen(3) by tls_load() the first time a process needs TLS (the
 * way Dovecot loads its ssl-iostream plugin). A process that never uses
 * TLS never maps libssl/libcrypto, whose relocated data alone is about
 * 400 KiB of private memory per process. tls_load() must run before
 * chroot(2) and before privileges are dropped (it also reads the keys:
 * see tls_server_new).
 *
 * Server:
 *   struct tls_server_settings set;
 *   tls_server_settings_from_config(&set, "smtpd");   // smtpd_tls_* params
 *   struct tls_server *srv = tls_server_new(&set, &error);  // as root
 *   ... drop privileges, chroot ...
 *   blocking (smtpd):   tls_stream_server_start(stream, srv, &info, &err)
 *   event loop (login): tls_conn_server_start(conn, srv, done_cb, ctx)
 *
 * Client (smtp-client):
 *   struct tls_client *cli = tls_client_new(&client_settings, &error);
 *   tls_stream_client_start(stream, cli, &peer, &info, &err)
 *   then the caller applies its policy to info (verified, name match,
 *   fingerprints) and may refuse to go on.
 *
 * Every error is returned as text (mem_free it); nothing here exits the
 * process for a peer's doing. */
#ifndef POSTHORN_TLS_H
#define POSTHORN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct stream;
struct conn;
struct tls_server;
struct tls_client;
struct tls_session;

/* tls_load - dlopen the plugin once (path: daemon_directory/posthorn-tls.so,
 * or $POSTHORN_TLS_PLUGIN in tests); 0, or -1 with *error_r. Safe to call
 * again. tls_available() says whether it is loaded. */
int tls_load(char **error_r);
bool tls_available(void);

/* What the handshake produced, for logs, Received headers and policy. */
struct tls_info {
    char protocol[16];		/* "TLSv1.3" */
    char cipher[64];		/* "TLS_AES_256_GCM_SHA384" */
    int cipher_bits;
    bool resumed;		/* session resumption (ticket or cache) */
    char sni[256];		/* server: name the client asked for ("" none) */
    bool peer_cert;		/* the peer presented a certificate */
    char peer_subject_cn[256];	/* its subject CN ("" none) */
    char peer_issuer_cn[256];
    char peer_fingerprint[96];	/* SHA-256 of the DER certificate, hex with ':' */
    char peer_pkey_fingerprint[96];	/* SHA-256 of the DER public key */
    bool verified;		/* chain verified against the trust anchors */
    char verify_error[128];	/* why not ("" when verified) */
    bool name_matched;		/* client: a peer name from tls_client_peer matched */
    char matched_name[256];
    /* added by the implementation (issue 13) */
    int cipher_alg_bits;	/* the algorithm's bits: "(256/256 bits)" */
};

/* tls_info_summary - "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
 * for logs and the Received header; buf of size len, always terminated. */
void tls_info_summary(const struct tls_info *info, char *buf, size_t len);
/* tls_info_log - (added) log the session as Postfix does: "Verified TLS
 * connection established to mx.example[192.0.2.1]:25: TLSv1.3 with cipher
 * ..." (Anonymous/Untrusted/Trusted/Verified) and, when the peer sent a
 * certificate, a second line with its CNs, fingerprints and the verify
 * error. direction: "from" (servers) or "to" (clients). */
void tls_info_log(const char *direction, const char *peer, const struct tls_info *info);

/* ---------- server ---------- */

struct tls_server_settings {
    /* Each entry of chain_files names one PEM file holding a private key
     * followed by its certificate chain; one per key type (RSA, ECDSA,
     * Ed25519): the handshake picks the one the client supports. The
     * legacy pairs (cert_file+key_file, eccert_file+eckey_file) add to it. */
    const char *chain_files;	/* list, comma/space separated; may be "" */
    const char *cert_file, *key_file;
    const char *eccert_file, *eckey_file;
    const char *protocols;	/* Postfix syntax: ">=TLSv1.2" or "!SSLv3, !TLSv1" */
    const char *ciphers;	/* OpenSSL list for TLS <= 1.2 ("" = built-in strong default) */
    const char *ciphersuites;	/* TLS 1.3 suites ("" = OpenSSL default) */
    const char *sni_maps;	/* table: server name -> chain files ("" none) */
    const char *ticket_key_file;/* secret the ticket keys derive from ("" = no tickets) */
    int ticket_lifetime;	/* seconds a ticket key is used for new tickets */
    const char *ca_file;	/* to ask for / verify client certificates ("" none) */
    bool ask_client_cert;
    /* added by the implementation (issue 13) */
    const char *service;	/* "smtpd", "imapd"...: ticket keys and session
				 * context differ per service (NULL: "posthorn") */
};

/* tls_server_settings_from_config - fill set from PREFIX_tls_* parameters
 * of the loaded configuration (PREFIX: "smtpd", "pop3d", "imapd"); the
 * strings stay owned by the configuration. */
void tls_server_settings_from_config(struct tls_server_settings *set, const char *prefix);

/* tls_server_new - load the plugin if needed, read keys and certificates
 * (call as root, before chroot: the key files are root-only), check that
 * each key matches its certificate. NULL with *error_r naming the file. */
struct tls_server *tls_server_new(const struct tls_server_settings *set, char **error_r);
void tls_server_free(struct tls_server **srvp);

/* ---------- client ---------- */

struct tls_client_settings {
    const char *ca_file;	/* trust anchors ("" none) */
    const char *ca_path;	/* hashed directory ("" none) */
    bool system_ca;		/* also the system store (/etc/ssl/certs) */
    const char *protocols, *ciphers, *ciphersuites;
    const char *cert_file, *key_file;	/* client certificate ("" none) */
    int session_cache_max;	/* sessions kept in memory per process for resumption */
};

/* tls_client_settings_from_config - (added) fill set from PREFIX_tls_*
 * ("smtp": smtp_tls_CAfile, smtp_tls_CApath, smtp_tls_protocols,
 * smtp_tls_ciphers, smtp_tls_ciphersuites, smtp_tls_cert_file,
 * smtp_tls_key_file, smtp_tls_session_cache_size); system_ca is set
 * when neither CAfile nor CApath is. Strings owned by the configuration. */
void tls_client_settings_from_config(struct tls_client_settings *set, const char *prefix);

struct tls_client *tls_client_new(const struct tls_client_settings *set, char **error_r);
void tls_client_free(struct tls_client **clip);

/* The peer the client connects to: names to match (X509 host check,
 * wildcards as RFC 6125 says), the SNI to send and a cache key for
 * session resumption (e.g. "example.com:25"). */
struct tls_client_peer {
    const char *sni;		/* NULL: none */
    const char *const *match_names;	/* NULL-terminated, may be NULL */
    const char *cache_key;	/* NULL: no resumption */
};

/* ---------- sessions over a blocking stream (smtpd, smtp-client) ---------- */

/* tls_stream_server_start / tls_stream_client_start - the handshake
 * within the stream's timeout, then stream_set_io so that reads and
 * writes go through TLS. Whatever the stream had buffered from the
 * plaintext phase is DISCARDED first (STARTTLS injection: CVE-2011-0411);
 * the caller may check stream_buffered() before to log it. 0 with *info
 * filled, or -1 with *error_r (the stream is then unusable). */
int tls_stream_server_start(struct stream *s, struct tls_server *srv,
			    struct tls_info *info, char **error_r);
int tls_stream_client_start(struct stream *s, struct tls_client *cli,
			    const struct tls_client_peer *peer,
			    struct tls_info *info, char **error_r);
/* tls_stream_session - the session under s (NULL: not TLS). It is freed
 * with the stream (stream_close/stream_free release the I/O layer). */
struct tls_session *tls_stream_session(struct stream *s);
/* tls_stream_close_notify - (added) flush, then send close_notify within
 * the stream's timeout; nothing if s is not TLS */
void tls_stream_close_notify(struct stream *s);

/* ---------- sessions on the event loop (login processes) ---------- */

/* tls_conn_server_start - start a server handshake on c: input already
 * buffered in c is discarded (injection), then c's I/O goes through TLS
 * (conn_set_io) and done(c, ctx, ok, info, error) runs once the
 * handshake finished or failed (on failure the caller closes c). The
 * conn's idle deadline bounds the handshake. */
typedef void tls_conn_done_fn(struct conn *c, void *ctx, bool ok,
			      const struct tls_info *info, const char *error);
void tls_conn_server_start(struct conn *c, struct tls_server *srv,
			   tls_conn_done_fn *done, void *ctx);
struct tls_session *tls_conn_session(struct conn *c);

/* ---------- session-level calls ---------- */

/* tls_session_close_notify - send close_notify (best effort, never blocks
 * longer than the owner's deadline) */
void tls_session_close_notify(struct tls_session *t);
const struct tls_info *tls_session_info(const struct tls_session *t);

#endif
