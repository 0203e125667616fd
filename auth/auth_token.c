/* auth_token.c - one-time login tokens (auth_token.h). */

#include <string.h>
#include <sys/random.h>
#include <time.h>

/* base */
#include "mem.h"
#include "str.h"

/* mail */
#include "passwd.h"

/* this program */
#include "auth_token.h"

/* A slot is small (~100 bytes): the user and mail location are copies
 * of their length, not a struct token_info's 6 KiB of arrays, which a
 * slot's clearing wrote whole (docs/bench.md, POP3 memory: auth kept
 * ~100 KiB resident for the slots of 10 parallel logins). */
struct token_slot {
    bool used;
    char token[AUTH_TOKEN_LEN + 1];
    char service[sizeof(((struct token_info *) 0)->service)];
    long long issued;
    long long expires;
    long uid;
    long gid;
    long quota;
    char *user;				/* copies, NULL in a free slot */
    char *mail_location;
};

static struct token_slot token_table[TOKEN_TABLE_MAX];
/* Slots [0, token_high) have been used; the scans stop there, so that a
 * redeem reads (and the process keeps resident) only as many slots as
 * tokens ever waited at once, not all TOKEN_TABLE_MAX. */
static size_t token_high;

/* slot_clear - a free slot, its copies freed */
static void slot_clear(struct token_slot *t)
{
    mem_free(&t->user);
    mem_free(&t->mail_location);
    memset(t, 0, sizeof(*t));
}

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
    slot_clear(slot);
    slot->used = true;
    memcpy(slot->token, token, sizeof(slot->token));
    memcpy(slot->service, info->service, sizeof(slot->service));
    slot->service[sizeof(slot->service) - 1] = 0;
    slot->issued = now;
    slot->expires = now + lifetime * 1000LL;
    slot->uid = info->uid;
    slot->gid = info->gid;
    slot->quota = info->quota;
    slot->user = mem_strdup(info->user);
    slot->mail_location = mem_strdup(info->mail_location);
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
	ok = t->expires > now && strcmp(t->service, service) == 0;
	if (ok) {
	    /* the copies came from a struct token_info: they fit */
	    str_copy_out_or_panic(info->user, sizeof(info->user), t->user);
	    str_copy_out_or_panic(info->service, sizeof(info->service), t->service);
	    str_copy_out_or_panic(info->mail_location, sizeof(info->mail_location),
				  t->mail_location);
	    info->uid = t->uid;
	    info->gid = t->gid;
	    info->quota = t->quota;
	}
	slot_clear(t);
	return ok;
    }
    return false;
}
