/* auth_token.h - the one-time login tokens of the auth service: made on
 * a successful login (128 random bits from getrandom, in hex), bound to
 * a user and a service, redeemable once before they expire. At most
 * TOKEN_TABLE_MAX wait at a time; a new one pushes out the oldest. */
#ifndef POSTHORN_AUTH_TOKEN_H
#define POSTHORN_AUTH_TOKEN_H

#include <stdbool.h>
#include <time.h>

/* mail */
#include "auth_proto.h"

#define TOKEN_TABLE_MAX	1024

struct token_info {
    char user[PROTO_ADDR_MAX + 1];
    char service[8];
    char mail_location[PROTO_TEXT_MAX + 1];
    long uid;
    long gid;
    long quota;
};

/* Times are milliseconds of a monotonic clock (token_now_ms); lifetime
 * is in seconds. */
long long token_now_ms(void);

/* token_issue - a new token for info, valid until now + lifetime; the
 * token text (AUTH_TOKEN_LEN hex digits) into token; false if no
 * randomness could be had */
bool token_issue(const struct token_info *info, long long now_ms, long lifetime,
		 char token[AUTH_TOKEN_LEN + 1]);
/* token_redeem - consume token (whatever the outcome): true and *info if
 * it was valid, unexpired and issued for service */
bool token_redeem(const char *token, const char *service, long long now_ms,
		  struct token_info *info);

#endif
