/* auth_throttle.h - failure counters per client address and per user
 * name, in fixed-size tables (the least recently failed entry is
 * forgotten when a table is full), and the growing delay they give.
 *
 * A key is hashed (64-bit FNV-1a): a collision only shares a counter. A
 * counter older than the window (since its last failure) counts as 0. */
#ifndef POSTHORN_AUTH_THROTTLE_H
#define POSTHORN_AUTH_THROTTLE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct throttle;

/* throttle_new - a table of size entries; failures expire after window s */
struct throttle *throttle_new(size_t size, long window);
void throttle_free(struct throttle **tp);
/* throttle_count - failures of key within the window */
long throttle_count(struct throttle *t, const char *key, time_t now);
/* throttle_fail - count one more failure of key; the new count */
long throttle_fail(struct throttle *t, const char *key, time_t now);
/* throttle_reset - forget key's failures */
void throttle_reset(struct throttle *t, const char *key);
/* throttle_used - entries in use (for tests) */
size_t throttle_used(const struct throttle *t);

/* throttle_delay_ms - the delay after a failure when failures (>= 1,
 * this one included) have happened: base * 2^(failures - 1), at most max */
long throttle_delay_ms(long failures, long base, long max);

#endif
