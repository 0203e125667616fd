/* auth_token.c - one-time login tokens (auth_token.h). */

#include <string.h>
#include <sys/random.h>
#include <time.h>

/* base */
#include "str.h"

/* mail */
#include "passwd.h"

/* this program */
#include "auth_token.h"

struct token_slot {
    bool used;
    char token[AUTH_TOKEN_LEN + 1];
    long long issued;
    long long expires;
    struct token_info info;
};

static struct token_slot token_table[TOKEN_TABLE_MAX];
/* Slots [0, token_high) have been used; the scans stop there, so that a
 * redeem reads (and the process keeps resident) only as many slots as
 * tokens ever waited at once, not all TOKEN_TABLE_MAX (~6 MiB). */
static size_t token_high;

/* token_now_ms - CLOCK_MONOTONIC in milliseconds */
long long token_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* token_issue - take a free, expired or the oldest slot */
bool token_issue(const struct token_info *info, long long now, long lifetime,
		 char token[AUTH_TOKEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[AUTH_TOKEN_LEN / 2];
    struct token_slot *slot = token_table;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd))
	return false;
    for (size_t i = 0; i < sizeof(rnd); i++) {
	token[2 * i] = hex[rnd[i] >> 4];
	token[2 * i + 1] = hex[rnd[i] & 15];
    }
    token[AUTH_TOKEN_LEN] = 0;
    for (size_t i = 0; i < TOKEN_TABLE_MAX; i++) {
	struct token_slot *t = token_table + i;

	if (i == token_high) {
	    token_high++;
	    slot = t;
	    break;
	}
	if (!t->used || t->expires <= now) {
	    slot = t;
	    break;
	}
	if (t->issued < slot->issued)
	    slot = t;
    }
    memset(slot, 0, sizeof(*slot));
    slot->used = true;
    memcpy(slot->token, token, sizeof(slot->token));
    slot->issued = now;
    slot->expires = now + lifetime * 1000LL;
    slot->info = *info;
    return true;
}

/* token_redeem - find (constant-time per slot), consume, check */
bool token_redeem(const char *token, const char *service, long long now,
		  struct token_info *info)
{
    if (strlen(token) != AUTH_TOKEN_LEN)
	return false;
    for (size_t i = 0; i < token_high; i++) {
	struct token_slot *t = token_table + i;
	bool ok;

	if (!t->used || !passwd_equal(t->token, token, AUTH_TOKEN_LEN))
	    continue;
	ok = t->expires > now && strcmp(t->info.service, service) == 0;
	if (ok)
	    *info = t->info;
	memset(t, 0, sizeof(*t));
	return ok;
    }
    return false;
}
