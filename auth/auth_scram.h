/* auth_scram.h - the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677)
 * without channel binding, as a state machine on messages (no I/O), so
 * that it can be tested against RFC 7677's example.
 *
 *   scram_client_first(s, msg, user)    parse the client-first message:
 *       GS2 header "n,," or "y,," (no "p=": channel binding is refused;
 *       an authzid "a=" must equal the user), then n=USER,r=NONCE
 *   scram_server_first(s, secret, snonce, out)   the server-first
 *       message, with the nonce client+server, the secret's salt and
 *       iterations (the caller passes a fake secret for an unknown user)
 *   scram_client_final(s, msg, out)      check the channel binding,
 *       nonce and proof of the client-final message: 0 and the
 *       server-final message ("v=...") in out, or -1 (any mismatch) */
#ifndef POSTHORN_AUTH_SCRAM_H
#define POSTHORN_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "str.h"

/* mail */
#include "passwd.h"

#define SCRAM_MSG_MAX	2048

struct scram_server {
    char gs2_header[SCRAM_MSG_MAX];
    char client_first_bare[SCRAM_MSG_MAX];
    char server_first[SCRAM_MSG_MAX];
    char nonce[SCRAM_MSG_MAX];		/* client nonce, then the whole */
    struct passwd_scram secret;
};

int scram_client_first(struct scram_server *s, const char *msg, size_t len, struct str *user);
void scram_server_first(struct scram_server *s, const struct passwd_scram *secret,
			const char *snonce, struct str *out);
int scram_client_final(struct scram_server *s, const char *msg, size_t len, struct str *out);

#endif
