/* test-strv.c - unit tests for strv.c (NULL-terminated string vectors). */

#include <string.h>

#include "strv.h"
#include "unit.h"

/* test_empty_vector_is_an_empty_array - execve needs { NULL }, not NULL */
static void test_empty_vector_is_an_empty_array(void)
{
    struct strv sv = STRV_INIT;
    char **array;

    unit_begin("strv: an empty vector gives an array holding only NULL");
    array = strv_array(&sv);
    unit_assert(array != NULL);
    unit_assert(array[0] == NULL);
    unit_assert_inteq(sv.count, 0);
    strv_fini(&sv);
    unit_assert(sv.items == NULL && sv.count == 0);
    unit_end();
}

/* test_add_copies_in_order - copies, order, the NULL after the last */
static void test_add_copies_in_order(void)
{
    struct strv sv = STRV_INIT;
    char text[] = "changed later";

    unit_begin("strv_add/addn/addf: copies in order, NULL-terminated");
    strv_add(&sv, text);
    strv_addn(&sv, "abcdef", 3);
    strv_addn(&sv, "ab\0cd", 5);
    strv_addf(&sv, "%s=%d", "fd", 7);
    text[0] = 'X';
    unit_assert_inteq(sv.count, 4);
    unit_assert_streq(strv_array(&sv)[0], "changed later");
    unit_assert_streq(sv.items[1], "abc");
    unit_assert_streq(sv.items[2], "ab");
    unit_assert_streq(sv.items[3], "fd=7");
    unit_assert(sv.items[4] == NULL);
    strv_fini(&sv);
    unit_end();
}

/* test_growth_keeps_everything - many adds, long formatted strings */
static void test_growth_keeps_everything(void)
{
    struct strv sv = STRV_INIT;
    bool all_there = true;

    unit_begin("strv: growth past the first allocation keeps every string");
    for (int i = 0; i < 1000; i++)
	strv_addf(&sv, "item-%d-%0300d", i, i);
    unit_assert_inteq(sv.count, 1000);
    for (int i = 0; i < 1000; i++) {
	char want[16];
	int n = 0;

	for (int v = i; v > 0 || n == 0; v /= 10)
	    n++;
	memcpy(want, "item-", 5);
	for (int k = n - 1, v = i; k >= 0; k--, v /= 10)
	    want[5 + k] = (char) ('0' + v % 10);
	want[5 + n] = '-';
	if (strncmp(sv.items[i], want, (size_t) n + 6) != 0 || strlen(sv.items[i]) != (size_t) (n + 6 + 300))
	    all_there = false;
    }
    unit_assert(all_there);
    unit_assert(sv.items[1000] == NULL);
    strv_fini(&sv);
    unit_end();
}

int main(void)
{
    test_empty_vector_is_an_empty_array();
    test_add_copies_in_order();
    test_growth_keeps_everything();
    return unit_done();
}
