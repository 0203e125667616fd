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

/* The table grows (doubling from TH_INITIAL) up to size entries as keys
 * fail, so that an idle auth does not keep size * 24 bytes of counters
 * resident (two tables of 4096 by default: 192 KiB). */
#define TH_INITIAL	64

struct throttle {
    struct throttle_entry *e;
    size_t cap;			/* entries allocated, <= size */
    size_t size;		/* the most it may hold */
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

    t->e = NULL;
    t->cap = 0;
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
    for (size_t i = 0; i < t->cap; i++)
	if (t->e[i].hash == h)
	    return t->e + i;
    return NULL;
}

/* th_grow - room for more entries: the first new one, or NULL at size */
static struct throttle_entry *th_grow(struct throttle *t)
{
    size_t cap = t->cap ? t->cap * 2 : TH_INITIAL, old = t->cap;

    if (old >= t->size)
	return NULL;
    if (cap > t->size)
	cap = t->size;
    t->e = mem_realloc(t->e, cap * sizeof(*t->e));
    memset(t->e + old, 0, (cap - old) * sizeof(*t->e));
    t->cap = cap;
    return t->e + old;
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
	struct throttle_entry *oldest = t->e;

	for (size_t i = 0; i < t->cap; i++) {
	    if (t->e[i].hash == 0) {
		e = t->e + i;
		break;
	    }
	    if (t->e[i].last < oldest->last)
		oldest = t->e + i;
	}
	if (e == NULL && (e = th_grow(t)) == NULL)
	    e = oldest;
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

    for (size_t i = 0; i < t->cap; i++)
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
