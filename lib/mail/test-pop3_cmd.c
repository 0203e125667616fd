/* test-pop3_cmd.c - unit tests for pop3_cmd.c: command splitting and
 * number parsing. */

#include <string.h>

#include "pop3_cmd.h"
#include "str.h"
#include "unit.h"

/* parse - pop3_parse_command on a literal line */
static void parse(const char *text, struct str *line, struct pop3_command *cmd)
{
    str_reset(line);
    str_appends_or_panic(line, text);
    pop3_parse_command(str_cstr(line), str_len(line), cmd);
}

/* test_split - verb upper-cased, arguments split, rest kept raw */
static void test_split(void)
{
    struct str *line = str_new(1024);
    struct pop3_command cmd;

    unit_begin("pop3_parse_command: verb, argv and the raw rest");
    parse("pass my secret pw", line, &cmd);
    unit_assert_streq(cmd.verb, "PASS");
    unit_assert_streq(cmd.rest, "my secret pw");
    unit_assert_inteq(cmd.argc, 3);
    parse("list 3", line, &cmd);
    unit_assert_streq(cmd.verb, "LIST");
    unit_assert_inteq(cmd.argc, 1);
    unit_assert_streq(cmd.argv[0], "3");
    unit_assert(!cmd.bad_args);
    parse("TOP 1 2 3 4", line, &cmd);
    unit_assert(cmd.bad_args);		/* four arguments */
    parse("", line, &cmd);
    unit_assert(cmd.bad_verb);		/* empty line */
    str_free(&line);
    unit_end();
}

/* test_numbers - digits only, bounded */
static void test_numbers(void)
{
    long v = -1;

    unit_begin("pop3_parse_number: digits only, within the bound");
    unit_assert(pop3_parse_number("42", 100, &v) && v == 42);
    unit_assert(pop3_parse_number("0", 100, &v) && v == 0);
    unit_assert(!pop3_parse_number("101", 100, &v));
    unit_assert(!pop3_parse_number("-1", 100, &v));
    unit_assert(!pop3_parse_number("1x", 100, &v));
    unit_assert(!pop3_parse_number("", 100, &v));
    unit_assert(!pop3_parse_number("99999999999", 2147483647L, &v));
    unit_end();
}

int main(void)
{
    test_split();
    test_numbers();
    return unit_done();
}
