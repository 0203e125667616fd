/* tls_plugin.h - the interface between libposthorn's TLS glue (tls.c)
 * and the OpenSSL plugin (plugin/tls_openssl.c, built as posthorn-tls.so).
 *
 * Internal to lib/tls: programs use tls.h. The plugin exports one symbol,
 * TLS_PLUGIN_SYMBOL, a function returning its ops table. The plugin uses
 * nothing of the program that loads it (only libc and OpenSSL): what it
 * needs from the program (logging) comes through struct tls_plugin_env.
 * TLS_PLUGIN_ABI changes whenever a struct here changes; tls_load refuses
 * a plugin built for another one (an old posthorn-tls.so next to new
 * daemons after a partial upgrade).
 *
 * Errors: functions that can fail write a text into err (size errlen,
 * always terminated). Sessions use a non-blocking BIO over the fd
 * (recv/send with MSG_DONTWAIT|MSG_NOSIGNAL), whatever the fd's mode:
 * read/write/handshake return -1 with errno EAGAIN and want() tells the
 * poll events to wait for. */
#ifndef POSTHORN_TLS_PLUGIN_H
#define POSTHORN_TLS_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tls.h"

#define TLS_PLUGIN_ABI		3
#define TLS_PLUGIN_SYMBOL	"posthorn_tls_plugin_ops"

struct tls_plugin_env {
    int abi;
    /* log - level: 0 info, 1 warning */
    void (*log)(int level, const char *text);
};

/* One SNI entry: a server name ("mail.example.com", or ".example.com"
 * for every name below it) and its chain files (a list as chain_files). */
struct tls_plugin_sni {
    const char *name;
    const char *chain_files;
};

struct tls_plugin_ops {
    int abi;
    const char *version;	/* OpenSSL's version text */
    int (*init)(const struct tls_plugin_env *env, char *err, size_t errlen);

    /* secret: ticket key secret (32..64 bytes; NULL: no tickets) */
    void *(*server_new)(const struct tls_server_settings *set,
			const struct tls_plugin_sni *sni, size_t sni_count,
			const unsigned char *secret, size_t secret_len,
			char *err, size_t errlen);
    void (*server_free)(void *srv);
    void *(*client_new)(const struct tls_client_settings *set, char *err, size_t errlen);
    void (*client_free)(void *cli);

    void *(*session_server)(void *srv, int fd, char *err, size_t errlen);
    void *(*session_client)(void *cli, int fd, const struct tls_client_peer *peer,
			    char *err, size_t errlen);
    /* handshake - 1 done, -1 with errno EAGAIN (see want), -1 other:
     * failed (err says why) */
    int (*handshake)(void *sess, char *err, size_t errlen);
    bool (*handshake_done)(void *sess);
    ssize_t (*read)(void *sess, void *buf, size_t len);
    ssize_t (*write)(void *sess, const void *buf, size_t len);
    size_t (*pending)(void *sess);
    short (*want)(void *sess);
    /* shutdown - send close_notify: 1 sent, -1/EAGAIN again, -1 error */
    int (*shutdown)(void *sess);
    void (*info)(void *sess, struct tls_info *info);
    /* last_error - text of the last read/write failure ("" none) */
    const char *(*last_error)(void *sess);
    void (*session_free)(void *sess);
};

typedef const struct tls_plugin_ops *tls_plugin_ops_fn(void);

#endif
