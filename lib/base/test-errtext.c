/* test-errtext.c - unit tests for errtext.c (error texts behind error_r). */

#include <string.h>

#include "errtext.h"
#include "unit.h"

static struct errtext first_module, second_module;

/* test_fail_sets_text_and_returns_minus_one - the usual "return" form */
static void test_fail_sets_text_and_returns_minus_one(void)
{
    const char *error = NULL;

    unit_begin("errtext_fail: -1, and *error_r is the formatted text");
    unit_assert_inteq(errtext_fail(&first_module, &error, "open %s: %s", "/x", "denied"), -1);
    unit_assert_streq(error, "open /x: denied");
    unit_assert(error == first_module.text);
    /* a NULL error_r is allowed: the text is still kept */
    unit_assert_inteq(errtext_fail(&first_module, NULL, "n=%d", 7), -1);
    unit_assert_streq(first_module.text, "n=7");
    unit_end();
}

/* test_modules_keep_their_own_text - one module's error does not
 * overwrite another's, so texts can be nested */
static void test_modules_keep_their_own_text(void)
{
    const char *inner = NULL, *outer = NULL;

    unit_begin("errtext: modules keep their own texts; nesting works");
    (void) errtext_fail(&first_module, &inner, "read: %s", "I/O error");
    (void) errtext_fail(&second_module, &outer, "main.cf: %s", inner);
    unit_assert_streq(inner, "read: I/O error");
    unit_assert_streq(outer, "main.cf: read: I/O error");
    unit_end();
}

/* test_arguments_may_point_into_the_old_text - "x: %s" of its own text */
static void test_arguments_may_point_into_the_old_text(void)
{
    const char *error = NULL;

    unit_begin("errtext: the previous text may be an argument");
    (void) errtext_fail(&first_module, &error, "%s", "inner");
    (void) errtext_fail(&first_module, &error, "outer: %s (%s)", error, error);
    unit_assert_streq(error, "outer: inner (inner)");
    unit_assert_streq(errtext_set(&first_module, "%.3s!", first_module.text), "out!");
    unit_end();
}

/* test_long_text_is_cut - never past ERRTEXT_SIZE */
static void test_long_text_is_cut(void)
{
    static char big[2 * ERRTEXT_SIZE];
    const char *text;

    unit_begin("errtext: a long text is cut at ERRTEXT_SIZE - 1");
    memset(big, 'a', sizeof(big) - 1);
    text = errtext_set(&second_module, "%s", big);
    unit_assert_inteq(strlen(text), ERRTEXT_SIZE - 1);
    unit_assert(text[0] == 'a' && text[ERRTEXT_SIZE - 2] == 'a');
    unit_end();
}

int main(void)
{
    test_fail_sets_text_and_returns_minus_one();
    test_modules_keep_their_own_text();
    test_arguments_may_point_into_the_old_text();
    test_long_text_is_cut();
    return unit_done();
}
