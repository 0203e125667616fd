/* htable.h - a hash table of string keys with O(1) lookups.
 *
 * Purpose: a daemon that keeps state per key (client-limits: one entry
 * per service and client address) finds, adds and removes entries in
 * constant time however many there are. Keys come from strangers (a
 * client address), so the hash is keyed SipHash-2-4 with a random key
 * per table: a flood of chosen keys cannot be made to collide into one
 * chain.
 *
 *   struct htable *t = htable_new(0);
 *   htable_enter(t, "smtp 192.0.2.1", entry);   key copied; panics if present
 *   entry = htable_find(t, "smtp 192.0.2.1");    NULL if absent
 *   entry = htable_remove(t, "smtp 192.0.2.1");  the value, or NULL
 *   htable_walk(t, fn, ctx);                     every key/value, any order
 *   htable_free(&t, free_value);                 free_value may be NULL
 *
 * The bucket array doubles when the table holds more entries than
 * buckets and halves when it holds fewer than an eighth (never below
 * the initial size), so memory follows the number of entries both ways.
 * The table must not be changed from inside htable_walk's callback.
 *
 * siphash24(key16, data, len) is the hash itself (exposed for tests).
 *
 * DIAGNOSTICS: msg_panic on misuse (a duplicate key); allocation
 * failure is msg_fatal (mem.h). */
#ifndef POSTHORN_HTABLE_H
#define POSTHORN_HTABLE_H

#include <stddef.h>
#include <stdint.h>

struct htable;

/* htable_new - an empty table sized for about size_hint entries (0: small) */
struct htable *htable_new(size_t size_hint);
/* htable_free - free the table, calling free_value (if not NULL) per value */
void htable_free(struct htable **tp, void (*free_value)(void *value));
/* htable_find - the value stored under key, or NULL */
void *htable_find(const struct htable *t, const char *key);
/* htable_enter - store value under a copy of key; returns the stored
 * copy (valid until the key is removed); key must not be present */
const char *htable_enter(struct htable *t, const char *key, void *value);
/* htable_remove - take key out; its value, or NULL if absent */
void *htable_remove(struct htable *t, const char *key);
/* htable_count - entries stored */
size_t htable_count(const struct htable *t);
/* htable_buckets - size of the bucket array (for tests) */
size_t htable_buckets(const struct htable *t);
/* htable_walk - call fn once per entry, in no particular order */
void htable_walk(const struct htable *t, void (*fn)(const char *key, void *value, void *ctx),
		 void *ctx);

/* siphash24 - SipHash-2-4 of data under the 16-byte key */
uint64_t siphash24(const unsigned char key[16], const void *data, size_t len);

#endif
