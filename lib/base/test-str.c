/* test-str.c - unit tests for str.c (bounded strings: the checked and
 * the panicking halves) and mem.c. */

#include <string.h>

#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

/* overflow_mul - mem_size_mul past SIZE_MAX (expected to panic) */
static void overflow_mul(void *arg)
{
    (void) arg;
    (void) mem_size_mul((size_t) -1, 2);
}

/* test_try_append_within_and_past_max - false and unchanged past max */
static void test_try_append_within_and_past_max(void)
{
    struct str *s;

    unit_begin("str_try_*: within the maximum, and refused past it");
    s = str_new(10);
    unit_assert(str_try_appends(s, "hello"));
    unit_assert(str_try_appends(s, "world"));
    unit_assert_inteq(str_len(s), 10);
    unit_assert(!str_try_appends(s, "!"));
    unit_assert(!str_try_appendc(s, '!'));
    unit_assert(!str_try_append(s, "!", 1));
    unit_assert_streq(str_cstr(s), "helloworld");
    unit_assert(!str_try_set(s, "01234567890"));
    unit_assert(!str_try_setn(s, "01234567890", 11));
    unit_assert_streq(str_cstr(s), "helloworld");
    unit_assert(str_try_setn(s, "ab\0c", 4));
    unit_assert_inteq(str_len(s), 4);
    str_free(&s);
    unit_assert(s == NULL);
    unit_end();
}

/* test_try_printf_and_appendf - formatting, long output, refusal */
static void test_try_printf_and_appendf(void)
{
    struct str *s;

    unit_begin("str_try_printf and str_try_appendf");
    s = str_new(STR_MAX_DEFAULT);
    unit_assert(str_try_printf(s, "%d-%s", 42, "x"));
    unit_assert_streq(str_cstr(s), "42-x");
    unit_assert(str_try_appendf(s, "/%0300d", 7));
    unit_assert_inteq(str_len(s), 4 + 1 + 300);
    unit_assert(str_try_printf(s, "%s", "short"));
    unit_assert_streq(str_cstr(s), "short");
    /* an argument may point into s itself */
    unit_assert(str_try_printf(s, "<%s>", str_cstr(s)));
    unit_assert_streq(str_cstr(s), "<short>");
    str_free(&s);
    s = str_new(5);
    unit_assert(str_try_set(s, "abc"));
    unit_assert(!str_try_printf(s, "%s", "toolong"));
    unit_assert(!str_try_appendf(s, "%s", "xyz"));
    unit_assert_streq(str_cstr(s), "abc");
    str_free(&s);
    unit_end();
}

/* test_chomp_lower_binary - the other operations */
static void test_chomp_lower_binary(void)
{
    struct str *s;

    unit_begin("str chomp, lower, binary data");
    s = str_new(100);
    str_set_or_panic(s, "ABC\r\n");
    unit_assert_inteq(str_chomp(s), 2);
    str_lower(s);
    unit_assert_streq(str_cstr(s), "abc");
    str_append_or_panic(s, "\0x", 2);
    unit_assert(str_has_nul(s));
    unit_assert_inteq(str_len(s), 5);
    str_free(&s);
    unit_end();
}

/* test_or_panic_within_max - the panicking half, used within bounds */
static void test_or_panic_within_max(void)
{
    struct str *s = str_new(16);
    char buf[8];

    unit_begin("str_*_or_panic within the maximum behave as the try forms");
    str_appends_or_panic(s, "ab");
    str_appendc_or_panic(s, 'c');
    str_append_or_panic(s, "de", 2);
    str_appendf_or_panic(s, "%d", 12);
    unit_assert_streq(str_cstr(s), "abcde12");
    str_printf_or_panic(s, "[%s]", str_cstr(s));
    unit_assert_streq(str_cstr(s), "[abcde12]");
    str_setn_or_panic(s, "0123456789abcdef", 16);
    unit_assert_inteq(str_len(s), 16);
    fmt_buf_or_panic(buf, sizeof(buf), "%s", "1234567");
    unit_assert_streq(buf, "1234567");
    str_copy_out_or_panic(buf, sizeof(buf), "abc");
    unit_assert_streq(buf, "abc");
    str_free(&s);
    unit_end();
}

/* The panicking half past the maximum: each is expected to abort. */
static void appends_past_max(void *arg)
{
    struct str *s = str_new(4);

    (void) arg;
    str_appends_or_panic(s, "12345");
}

static void appendf_past_max(void *arg)
{
    struct str *s = str_new(4);

    (void) arg;
    str_appendf_or_panic(s, "%s", "12345");
}

static void set_past_max(void *arg)
{
    struct str *s = str_new(4);

    (void) arg;
    str_set_or_panic(s, "12345");
}

static void fmt_buf_past_size(void *arg)
{
    char buf[4];

    (void) arg;
    fmt_buf_or_panic(buf, sizeof(buf), "%d", 12345);
}

static void copy_out_past_size(void *arg)
{
    char buf[4];

    (void) arg;
    str_copy_out_or_panic(buf, sizeof(buf), "12345");
}

/* test_or_panic_past_max - a bug says so instead of cutting the text */
static void test_or_panic_past_max(void)
{
    unit_begin("str_*_or_panic past the maximum panic (no silent cut)");
    unit_assert(unit_expect_exit(appends_past_max, NULL, UNIT_EXIT_SIGNAL, 6,
				 "str_appends_or_panic: 0 + 5 bytes pass the maximum of 4"));
    unit_assert(unit_expect_exit(appendf_past_max, NULL, UNIT_EXIT_SIGNAL, 6, "str_vappendf_or_panic"));
    unit_assert(unit_expect_exit(set_past_max, NULL, UNIT_EXIT_SIGNAL, 6, "str_set_or_panic"));
    unit_assert(unit_expect_exit(fmt_buf_past_size, NULL, UNIT_EXIT_SIGNAL, 6, "fmt_buf_or_panic"));
    unit_assert(unit_expect_exit(copy_out_past_size, NULL, UNIT_EXIT_SIGNAL, 6,
				 "str_copy_out_or_panic"));
    unit_end();
}

/* test_fixed_buffers_checked - fmt_try_buf and str_try_copy_out cut
 * safely and say so */
static void test_fixed_buffers_checked(void)
{
    char buf[8];

    unit_begin("fmt_try_buf and str_try_copy_out cut safely and return false");
    unit_assert(fmt_try_buf(buf, sizeof(buf), "%s", "1234567"));
    unit_assert(!fmt_try_buf(buf, sizeof(buf), "%s", "12345678"));
    unit_assert_streq(buf, "1234567");
    unit_assert(!str_try_copy_out(buf, sizeof(buf), "abcdefghij"));
    unit_assert_streq(buf, "abcdefg");
    unit_end();
}

/* test_fmt_long - as printf's "%ld" says, extremes included */
static void test_fmt_long(void)
{
    static const long nums[] = {0, 7, -7, 42, 1000000, -2147483648L, 9223372036854775807L,
				-9223372036854775807L - 1};
    char got[FMT_LONG_SIZE + 1], want[64];

    unit_begin("fmt_long: decimal as printf's %ld, without printf");
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
	size_t n = fmt_long(got, nums[i]);

	got[n] = 0;
	fmt_buf_or_panic(want, sizeof(want), "%ld", nums[i]);
	unit_assert_streq_idx(got, want, i);
    }
    unit_end();
}

/* test_cut_message_texts - fmt_buf_cut / str_printf_cut keep what fits */
static void test_cut_message_texts(void)
{
    struct str *s = str_new(8);
    char buf[6];

    unit_begin("message texts are cut, never refused");
    fmt_buf_cut(buf, sizeof(buf), "%s", "abc");
    unit_assert_streq(buf, "abc");
    fmt_buf_cut(buf, sizeof(buf), "%s: %d", "error", 42);
    unit_assert_streq(buf, "error");
    str_printf_cut(s, "%s", "short");
    unit_assert_streq(str_cstr(s), "short");
    str_printf_cut(s, "cannot %s: %s", "open", str_cstr(s));
    unit_assert_streq(str_cstr(s), "cannot o");
    unit_assert_inteq(str_len(s), 8);
    str_free(&s);
    unit_end();
}

/* test_size_overflow_panics - mem.c's checked arithmetic */
static void test_size_overflow_panics(void)
{
    unit_begin("size arithmetic overflow panics");
    unit_assert(unit_expect_exit(overflow_mul, NULL, UNIT_EXIT_SIGNAL, 6, "size overflow"));
    unit_end();
}

int main(void)
{
    test_try_append_within_and_past_max();
    test_try_printf_and_appendf();
    test_chomp_lower_binary();
    test_or_panic_within_max();
    test_or_panic_past_max();
    test_fixed_buffers_checked();
    test_fmt_long();
    test_cut_message_texts();
    test_size_overflow_panics();
    return unit_done();
}
