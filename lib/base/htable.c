/* htable.c - string-keyed hash table with chaining and a keyed hash
 * (SipHash-2-4, random key per table), growing and shrinking with its
 * contents (htable.h). */

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "htable.h"
#include "mem.h"
#include "msg.h"

#define HT_MIN_BUCKETS	16

struct ht_node {
    struct ht_node *next;
    uint64_t hash;
    void *value;
    char key[];			/* NUL-terminated copy */
};

struct htable {
    struct ht_node **bucket;
    size_t nbuckets;		/* a power of two */
    size_t count;
    size_t min_buckets;
    unsigned char seed[16];
};

#define ROTL(x, b)	(uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

/* load64 - 8 little-endian bytes */
static uint64_t load64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
	v = (v << 8) | p[i];
    return v;
}

/* siphash24 - the reference algorithm (Aumasson, Bernstein 2012) */
uint64_t siphash24(const unsigned char key[16], const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t k0 = load64(key), k1 = load64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t) len << 56, m;
    size_t left = len & 7, i;
    const unsigned char *end = in + len - left;

    for (; in != end; in += 8) {
	m = load64(in);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
    }
    for (i = 0; i < left; i++)
	b |= (uint64_t) in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ht_hash - the table's keyed hash of a key */
static uint64_t ht_hash(const struct htable *t, const char *key)
{
    return siphash24(t->seed, key, strlen(key));
}

/* ht_resize - rehash into n buckets */
static void ht_resize(struct htable *t, size_t n)
{
    struct ht_node **nb = mem_alloc_array(n, sizeof(*nb));

    memset(nb, 0, n * sizeof(*nb));
    for (size_t i = 0; i < t->nbuckets; i++) {
	struct ht_node *p = t->bucket[i], *next;

	for (; p; p = next) {
	    next = p->next;
	    p->next = nb[p->hash & (n - 1)];
	    nb[p->hash & (n - 1)] = p;
	}
    }
    mem_free(&t->bucket);
    t->bucket = nb;
    t->nbuckets = n;
}

/* htable_new - empty table with a random hash key */
struct htable *htable_new(size_t size_hint)
{
    struct htable *t = mem_zalloc(sizeof(*t));
    size_t n = HT_MIN_BUCKETS;

    while (n < size_hint && n < ((size_t) 1 << 30))
	n *= 2;
    t->min_buckets = n;
    t->nbuckets = 0;
    ht_resize(t, n);
    if (getrandom(t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t) sizeof(t->seed)) {
	/* no entropy yet (early boot): a weaker, still per-process key */
	uint64_t x = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) t;

	for (size_t i = 0; i < sizeof(t->seed); i++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
	    t->seed[i] = (unsigned char) (x >> 56);
    }
    return t;
}

/* htable_free - free nodes, values and the table */
void htable_free(struct htable **tp, void (*free_value)(void *value))
{
    struct htable *t = *tp;

    if (t == NULL)
	return;
    for (size_t i = 0; i < t->nbuckets; i++) {
	struct ht_node *p = t->bucket[i], *next;

	for (; p; p = next) {
	    next = p->next;
	    if (free_value)
		free_value(p->value);
	    mem_free(&p);
	}
    }
    mem_free(&t->bucket);
    mem_free(tp);
}

/* ht_slot - the link that points at key's node (or the chain's end) */
static struct ht_node **ht_slot(const struct htable *t, const char *key, uint64_t h)
{
    struct ht_node **pp = &t->bucket[h & (t->nbuckets - 1)];

    for (; *pp; pp = &(*pp)->next)
	if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
	    break;
    return pp;
}

/* htable_find - lookup */
void *htable_find(const struct htable *t, const char *key)
{
    struct ht_node *p = *ht_slot(t, key, ht_hash(t, key));

    return p ? p->value : NULL;
}

/* htable_enter - insert a new key */
const char *htable_enter(struct htable *t, const char *key, void *value)
{
    uint64_t h = ht_hash(t, key);
    struct ht_node **pp = ht_slot(t, key, h), *p;
    size_t len = strlen(key);

    if (*pp)
	msg_panic("htable_enter: duplicate key \"%.100s\"", key);
    p = mem_alloc(mem_size_add(sizeof(*p), mem_size_add(len, 1)));
    p->hash = h;
    p->value = value;
    memcpy(p->key, key, len + 1);
    p->next = t->bucket[h & (t->nbuckets - 1)];
    t->bucket[h & (t->nbuckets - 1)] = p;
    if (++t->count > t->nbuckets && t->nbuckets < ((size_t) 1 << 30))
	ht_resize(t, t->nbuckets * 2);
    return p->key;
}

/* htable_remove - unlink and free key's node */
void *htable_remove(struct htable *t, const char *key)
{
    struct ht_node **pp = ht_slot(t, key, ht_hash(t, key)), *p = *pp;
    void *value;

    if (p == NULL)
	return NULL;
    *pp = p->next;
    value = p->value;
    mem_free(&p);
    if (--t->count < t->nbuckets / 8 && t->nbuckets > t->min_buckets)
	ht_resize(t, t->nbuckets / 2);
    return value;
}

/* htable_count - entries */
size_t htable_count(const struct htable *t)
{
    return t->count;
}

/* htable_buckets - bucket array size */
size_t htable_buckets(const struct htable *t)
{
    return t->nbuckets;
}

/* htable_walk - visit every entry */
void htable_walk(const struct htable *t, void (*fn)(const char *key, void *value, void *ctx),
		 void *ctx)
{
    for (size_t i = 0; i < t->nbuckets; i++)
	for (struct ht_node *p = t->bucket[i]; p; p = p->next)
	    fn(p->key, p->value, ctx);
}
