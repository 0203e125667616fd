/* test-htable.c - unit tests for htable.c: SipHash-2-4 against the
 * reference vectors, and the table's find/enter/remove/walk with growth
 * and shrinking. */

#include <stdio.h>
#include <string.h>

#include "htable.h"
#include "mem.h"
#include "msg.h"
#include "unit.h"

/* test_siphash_vectors - the reference implementation's outputs */
static void test_siphash_vectors(void)
{
    unsigned char key[16], msg[64];
    static const struct {
	size_t len;
	uint64_t want;
    } cases[] = {
	{0, 0x726fdb47dd0e0e31ULL},
	{1, 0x74f839c593dc67fdULL},
	{7, 0xab0200f58b01d137ULL},
	{8, 0x93f5f5799a932462ULL},
	{15, 0xa129ca6149be45e5ULL},
	{63, 0x958a324ceb064572ULL},
    };

    unit_begin("siphash24: reference vectors (key 00..0f, message 00..len-1)");
    for (int i = 0; i < 16; i++)
	key[i] = (unsigned char) i;
    for (int i = 0; i < 64; i++)
	msg[i] = (unsigned char) i;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	unit_assert_idx(siphash24(key, msg, cases[i].len) == cases[i].want, i);
    unit_end();
}

static void count_cb(const char *key, void *value, void *ctx)
{
    size_t *n = ctx;

    if (strcmp(key, (const char *) value) == 0)
	(*n)++;
}

/* test_table_many - 100000 keys in, found, walked, removed; the bucket
 * array grows with them and shrinks back */
static void test_table_many(void)
{
    enum { N = 100000 };
    struct htable *t = htable_new(0);
    char key[64];
    size_t small = htable_buckets(t), walked = 0, found = 0;
    char **vals = mem_alloc_array(N, sizeof(*vals));

    unit_begin("htable: 100000 keys: enter, find, walk, remove, shrink");
    for (int i = 0; i < N; i++) {
	snprintf(key, sizeof(key), "smtp 10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
	vals[i] = mem_strdup(key);
	unit_assert(htable_find(t, key) == NULL);
	unit_assert_streq(htable_enter(t, key, vals[i]), key);
    }
    unit_assert_inteq(htable_count(t), N);
    unit_assert(htable_buckets(t) >= N);
    for (int i = 0; i < N; i++) {
	snprintf(key, sizeof(key), "smtp 10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
	found += htable_find(t, key) == vals[i];
    }
    unit_assert_inteq(found, N);
    unit_assert(htable_find(t, "smtp 10.9.9.9") == NULL);
    htable_walk(t, count_cb, &walked);
    unit_assert_inteq(walked, N);
    for (int i = 0; i < N; i++) {
	snprintf(key, sizeof(key), "smtp 10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
	unit_assert(htable_remove(t, key) == vals[i]);
	unit_assert(htable_remove(t, key) == NULL);
	mem_free(&vals[i]);
    }
    unit_assert_inteq(htable_count(t), 0);
    unit_assert_inteq(htable_buckets(t), small);
    mem_free(&vals);
    htable_free(&t, NULL);
    unit_assert(t == NULL);
    unit_end();
}

static int freed;

static void free_cb(void *value)
{
    freed++;
    mem_free(&value);
}

/* test_free_values - htable_free frees every value */
static void test_free_values(void)
{
    struct htable *t = htable_new(1000);

    unit_begin("htable_free: calls free_value per entry; size hint");
    unit_assert(htable_buckets(t) >= 1000);
    htable_enter(t, "a", mem_strdup("1"));
    htable_enter(t, "b", mem_strdup("2"));
    htable_enter(t, "", mem_strdup("3"));
    unit_assert_streq(htable_find(t, ""), "3");
    htable_free(&t, free_cb);
    unit_assert_inteq(freed, 3);
    unit_end();
}

/* dup_enter - entering a present key (expected to panic) */
static void dup_enter(void *arg)
{
    struct htable *t = htable_new(0);

    (void) arg;
    htable_enter(t, "x", t);
    htable_enter(t, "x", t);
}

static void test_duplicate_panics(void)
{
    unit_begin("htable_enter: a duplicate key is a bug (panic)");
    unit_assert(unit_expect_exit(dup_enter, NULL, UNIT_EXIT_SIGNAL, 6, "duplicate key"));
    unit_end();
}

int main(void)
{
    msg_init("test-htable", MSG_TO_STDERR);
    test_siphash_vectors();
    test_table_many();
    test_free_values();
    test_duplicate_panics();
    return unit_done();
}
