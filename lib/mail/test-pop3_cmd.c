/* test-pop3_cmd.c - unit tests for pop3_cmd.c: command splitting, line
 * limits, replies with response codes, number parsing. */

#include <string.h>

#include "pop3_cmd.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* test_split - verb upper-cased, arguments split, rest kept raw */
static void test_split(void)
{
    const char *in = "pass my secret pw\r\nlist 3\nTOP 1 2 3 4\r\n\r\n";
    struct stream *s = stream_open_memory(in, strlen(in), NULL);
    struct str *line = str_new(1024);
    struct pop3_command cmd;

    unit_begin("pop3_read_command: verb, argv and the raw rest");
    unit_assert_inteq(pop3_read_command(s, line, 1024, &cmd), POP3_READ_OK);
    unit_assert_streq(cmd.verb, "PASS");
    unit_assert_streq(cmd.rest, "my secret pw");
    unit_assert_inteq(cmd.argc, 3);
    unit_assert_inteq(pop3_read_command(s, line, 1024, &cmd), POP3_READ_OK);
    unit_assert_streq(cmd.verb, "LIST");
    unit_assert_inteq(cmd.argc, 1);
    unit_assert_streq(cmd.argv[0], "3");
    unit_assert(!cmd.bad_args);
    unit_assert_inteq(pop3_read_command(s, line, 1024, &cmd), POP3_READ_OK);
    unit_assert(cmd.bad_args);		/* four arguments */
    unit_assert_inteq(pop3_read_command(s, line, 1024, &cmd), POP3_READ_OK);
    unit_assert(cmd.bad_verb);		/* empty line */
    unit_assert_inteq(pop3_read_command(s, line, 1024, &cmd), POP3_READ_END);
    stream_free(&s);
    str_free(&line);
    unit_end();
}

/* test_too_long - a long line is skipped whole, the next one read */
static void test_too_long(void)
{
    char in[300];
    struct stream *s;
    struct str *line = str_new(64);
    struct pop3_command cmd;

    unit_begin("pop3_read_command: a line past the limit is refused and skipped");
    memset(in, 'x', 200);
    memcpy(in + 200, "\r\nNOOP\r\n", 9);
    s = stream_open_memory(in, strlen(in), NULL);
    unit_assert_inteq(pop3_read_command(s, line, 64, &cmd), POP3_READ_TOOLONG);
    unit_assert_inteq(pop3_read_command(s, line, 64, &cmd), POP3_READ_OK);
    unit_assert_streq(cmd.verb, "NOOP");
    stream_free(&s);
    str_free(&line);
    unit_end();
}

/* test_replies - +OK / -ERR [CODE] lines */
static void test_replies(void)
{
    struct str *out = str_new(1024);
    struct stream *s = stream_open_memory("", 0, out);

    unit_begin("pop3_ok, pop3_err: the status line with its code");
    pop3_ok(s, "%d messages", 2);
    pop3_err(s, POP3_CODE_IN_USE, "locked");
    pop3_err(s, NULL, "no");
    unit_assert_inteq(stream_flush(s), 0);
    unit_assert_streq(str_cstr(out), "+OK 2 messages\r\n-ERR [IN-USE] locked\r\n-ERR no\r\n");
    (void) stream_close(&s);
    str_free(&out);
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
    test_too_long();
    test_replies();
    test_numbers();
    return unit_done();
}
