/* test-str.c - unit tests for str.c (bounded strings) and mem.c. */

#include <string.h>

#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

static void overflow_mul(void *arg)
{
    (void) arg;
    (void) mem_size_mul((size_t) -1, 2);
}

int main(void)
{
    struct str *s;
    char buf[8];

    unit_begin("str append within and past the maximum");
    s = str_new(10);
    unit_assert(str_appends(s, "hello"));
    unit_assert(str_appends(s, "world"));
    unit_assert_inteq(str_len(s), 10);
    unit_assert(!str_appends(s, "!"));
    unit_assert_streq(str_cstr(s), "helloworld");
    unit_assert(!str_set(s, "01234567890"));
    unit_assert_streq(str_cstr(s), "helloworld");
    str_free(&s);
    unit_assert(s == NULL);
    unit_end();

    unit_begin("str printf and appendf");
    s = str_new(STR_MAX_DEFAULT);
    unit_assert(str_printf(s, "%d-%s", 42, "x"));
    unit_assert_streq(str_cstr(s), "42-x");
    unit_assert(str_appendf(s, "/%0300d", 7));
    unit_assert_inteq(str_len(s), 4 + 1 + 300);
    unit_assert(str_printf(s, "%s", "short"));
    unit_assert_streq(str_cstr(s), "short");
    str_free(&s);
    s = str_new(5);
    unit_assert(!str_printf(s, "%s", "toolong"));
    str_free(&s);
    unit_end();

    unit_begin("str chomp, lower, binary data");
    s = str_new(100);
    unit_assert(str_set(s, "ABC\r\n"));
    unit_assert_inteq(str_chomp(s), 2);
    str_lower(s);
    unit_assert_streq(str_cstr(s), "abc");
    unit_assert(str_append(s, "\0x", 2));
    unit_assert(str_has_nul(s));
    unit_assert_inteq(str_len(s), 5);
    str_free(&s);
    unit_end();

    unit_begin("fmt_buf and str_copy_out truncate safely");
    unit_assert(fmt_buf(buf, sizeof(buf), "%s", "1234567"));
    unit_assert(!fmt_buf(buf, sizeof(buf), "%s", "12345678"));
    unit_assert_streq(buf, "1234567");
    unit_assert(!str_copy_out(buf, sizeof(buf), "abcdefghij"));
    unit_assert_streq(buf, "abcdefg");
    unit_end();

    unit_begin("size arithmetic overflow panics");
    unit_assert(unit_expect_exit(overflow_mul, NULL, UNIT_EXIT_SIGNAL, 6, "size overflow"));
    unit_end();

    return unit_done();
}
