/* auth_throttle.c - bounded failure counters and the growing failure
 * delay of the auth service (auth_throttle.h). */

#include <stdint.h>
#include <string.h>
#include <time.h>

/* base */
#include "mem.h"

/* this program */
#include "auth_throttle.h"

struct throttle_entry {
    uint64_t hash;		/* 0: free */
    long count;
    time_t last;
};

struct throttle {
    struct throttle_entry *e;
    size_t size;
    long window;
};

/* th_hash - FNV-1a, never 0 */
static uint64_t th_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *key; key++) {
	h ^= (unsigned char) *key;
	h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

/* throttle_new - an empty table */
struct throttle *throttle_new(size_t size, long window)
{
    struct throttle *t = mem_zalloc(sizeof(*t));

    t->e = mem_alloc_array(size, sizeof(*t->e));
    memset(t->e, 0, size * sizeof(*t->e));
    t->size = size;
    t->window = window;
    return t;
}

/* throttle_free - release */
void throttle_free(struct throttle **tp)
{
    if (*tp) {
	mem_free(&(*tp)->e);
	mem_free(tp);
    }
}

/* th_find - key's entry, or NULL */
static struct throttle_entry *th_find(struct throttle *t, uint64_t h)
{
    for (size_t i = 0; i < t->size; i++)
	if (t->e[i].hash == h)
	    return t->e + i;
    return NULL;
}

/* throttle_count - failures within the window */
long throttle_count(struct throttle *t, const char *key, time_t now)
{
    struct throttle_entry *e = th_find(t, th_hash(key));

    if (e == NULL || now - e->last >= t->window)
	return 0;
    return e->count;
}

/* throttle_fail - one more failure; takes a free, expired or the least
 * recently failed entry for a new key */
long throttle_fail(struct throttle *t, const char *key, time_t now)
{
    uint64_t h = th_hash(key);
    struct throttle_entry *e = th_find(t, h);

    if (e == NULL) {
	e = t->e;
	for (size_t i = 0; i < t->size; i++) {
	    if (t->e[i].hash == 0) {
		e = t->e + i;
		break;
	    }
	    if (t->e[i].last < e->last)
		e = t->e + i;
	}
	e->hash = h;
	e->count = 0;
    } else if (now - e->last >= t->window) {
	e->count = 0;
    }
    if (e->count < 1000000)
	e->count++;
    e->last = now;
    return e->count;
}

/* throttle_reset - forget a key */
void throttle_reset(struct throttle *t, const char *key)
{
    struct throttle_entry *e = th_find(t, th_hash(key));

    if (e)
	memset(e, 0, sizeof(*e));
}

/* throttle_used - entries in use */
size_t throttle_used(const struct throttle *t)
{
    size_t n = 0;

    for (size_t i = 0; i < t->size; i++)
	n += t->e[i].hash != 0;
    return n;
}

/* throttle_delay_ms - base doubled per earlier failure, capped */
long throttle_delay_ms(long failures, long base, long max)
{
    long d = base;

    if (base <= 0)
	return 0;
    for (long i = 1; i < failures && d < max; i++)
	d *= 2;
    return d > max ? max : d;
}
