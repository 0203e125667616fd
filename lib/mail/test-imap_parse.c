/* test-imap_parse.c - unit tests for imap_parse.c: tags and names,
 * atoms with [...] sections, quoted strings, lists, literals (memory,
 * streamed, refused, non-synchronising), bounds, sequence sets and the
 * output quoting. */

#include <string.h>

#include "mem.h"
#include "str.h"
#include "unit.h"

#include "imap_parse.h"

/* feed - feed a whole line (C string) */
static enum imap_parse_result feed(struct imap_parser *p, const char *line)
{
    return imap_parser_feed_line(p, line, strlen(line));
}

static void test_simple(void)
{
    struct imap_parser *p = imap_parser_new(NULL);
    const struct imap_arg *a;
    size_t n;
    const char *s;
    size_t len;

    unit_begin("tag, upper-cased name, atoms, quoted, NIL");
    unit_assert_inteq(feed(p, "a1 login joe \"se\\\"cr\\\\et\""), IMAP_PARSE_DONE);
    unit_assert_streq(imap_parser_tag(p), "a1");
    unit_assert_streq(imap_parser_name(p), "LOGIN");
    a = imap_parser_args(p, &n);
    unit_assert_inteq(n, 2);
    unit_assert(imap_arg_astring(&a[0], &s, &len));
    unit_assert_streq(s, "joe");
    unit_assert(!imap_arg_string(&a[0], &s, &len));
    unit_assert(imap_arg_string(&a[1], &s, &len));
    unit_assert_streq(s, "se\"cr\\et");
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "x NOOP"), IMAP_PARSE_DONE);
    a = imap_parser_args(p, &n);
    unit_assert_inteq(n, 0);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "x ID nil"), IMAP_PARSE_DONE);
    a = imap_parser_args(p, &n);
    unit_assert_inteq(a[0].type, IMAP_ARG_NIL);
    unit_assert(imap_arg_nstring(&a[0], &s, &len));
    unit_assert(s == NULL);
    imap_parser_free(&p);
    unit_end();
}

static void test_fetch_atoms(void)
{
    struct imap_parser *p = imap_parser_new(NULL);
    const struct imap_arg *a, *l;
    size_t n, ln;
    uint64_t v;

    unit_begin("FETCH items: [...] sections with spaces and parens in one atom");
    unit_assert_inteq(feed(p, "7 UID FETCH 1:*,3 (FLAGS BODY.PEEK[HEADER.FIELDS (To From)]<0.100> BODY[])"),
		      IMAP_PARSE_DONE);
    a = imap_parser_args(p, &n);
    unit_assert_inteq(n, 3);
    unit_assert(imap_arg_atom_is(&a[0], "fetch"));
    unit_assert_streq(a[1].str, "1:*,3");
    unit_assert(imap_arg_list(&a[2], &l, &ln));
    unit_assert_inteq(ln, 3);
    unit_assert_streq(l[1].str, "BODY.PEEK[HEADER.FIELDS (To From)]<0.100>");
    unit_assert_streq(l[2].str, "BODY[]");
    unit_assert(!imap_arg_number(&a[1], UINT32_MAX, &v));
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "7 FETCH 1 (BODY[HEADER.FIELDS (To)"), IMAP_PARSE_ERROR);
    unit_assert_streq(imap_parser_tag(p), "7");
    imap_parser_free(&p);
    unit_end();
}

static void test_lists(void)
{
    struct imap_parser *p = imap_parser_new(&(struct imap_parse_limits) { .depth_max = 3, .args_max = 8 });
    const struct imap_arg *a, *l, *l2;
    size_t n, ln, ln2;

    unit_begin("nested lists, depth and argument bounds");
    unit_assert_inteq(feed(p, "t STORE 1 +FLAGS (\\Seen (a b) ())"), IMAP_PARSE_DONE);
    a = imap_parser_args(p, &n);
    unit_assert_inteq(n, 3);
    unit_assert(imap_arg_list(&a[2], &l, &ln));
    unit_assert_inteq(ln, 3);
    unit_assert_streq(l[0].str, "\\Seen");
    unit_assert(imap_arg_list(&l[1], &l2, &ln2));
    unit_assert_inteq(ln2, 2);
    unit_assert_streq(l2[1].str, "b");
    unit_assert(imap_arg_list(&l[2], &l2, &ln2));
    unit_assert_inteq(ln2, 0);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "t X ((((a))))"), IMAP_PARSE_ERROR);
    unit_assert(strstr(imap_parser_error(p), "nested") != NULL);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "t X 1 2 3 4 5 6 7 8 9"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "t X (a"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "t X a)"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "t X (a)b"), IMAP_PARSE_ERROR);
    imap_parser_free(&p);
    unit_end();
}

static void test_errors(void)
{
    struct imap_parser *p = imap_parser_new(&(struct imap_parse_limits) { .command_max = 100 });
    char big[200];

    unit_begin("bad syntax: no tag, no name, NUL, CTL, bad quotes, too long");
    unit_assert_inteq(feed(p, ""), IMAP_PARSE_ERROR);
    unit_assert(imap_parser_tag(p) == NULL);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "abc"), IMAP_PARSE_ERROR);
    unit_assert_streq(imap_parser_tag(p), "abc");
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "+ x"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(imap_parser_feed_line(p, "a X b\0c", 7), IMAP_PARSE_ERROR);
    unit_assert(strstr(imap_parser_error(p), "NUL") != NULL);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "a X b\tc"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "a X \"abc"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "a X \"a\\bc\""), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "a X {12"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "a X {12} b"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    memset(big, 'x', sizeof(big));
    memcpy(big, "tg X ", 5);
    unit_assert_inteq(imap_parser_feed_line(p, big, sizeof(big)), IMAP_PARSE_ERROR);
    unit_assert_streq(imap_parser_tag(p), "tg");
    unit_assert(strstr(imap_parser_error(p), "too long") != NULL);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "a X \"\xc3\xa4\" \xc3\xa4"), IMAP_PARSE_DONE);
    imap_parser_free(&p);
    unit_end();
}

static void test_literals(void)
{
    struct imap_parser *p = imap_parser_new(&(struct imap_parse_limits) {
	.literal_mem_max = 10, .literal_max = 1000 });
    const struct imap_literal_info *li;
    const struct imap_arg *a;
    size_t n;

    unit_begin("literals: memory in chunks, streamed, non-sync, literal8, too big");
    unit_assert_inteq(feed(p, "a LOGIN {3}"), IMAP_PARSE_LITERAL);
    li = imap_parser_literal(p);
    unit_assert_inteq(li->size, 3);
    unit_assert(li->sync);
    unit_assert(li->mem_ok);
    unit_assert_inteq(imap_parser_feed_literal(p, "j", 1), 2);
    unit_assert_inteq(imap_parser_feed_literal(p, "\0e", 2), 0);
    unit_assert_inteq(feed(p, " {2+}"), IMAP_PARSE_LITERAL);
    unit_assert(!imap_parser_literal(p)->sync);
    unit_assert_inteq(imap_parser_feed_literal(p, "pw", 2), 0);
    unit_assert_inteq(feed(p, ""), IMAP_PARSE_DONE);
    a = imap_parser_args(p, &n);
    unit_assert_inteq(n, 2);
    unit_assert_inteq(a[0].type, IMAP_ARG_LITERAL);
    unit_assert_inteq(a[0].len, 3);
    unit_assert(memcmp(a[0].str, "j\0e", 3) == 0);
    unit_assert_streq(a[1].str, "pw");
    imap_parser_reset(p);

    unit_assert_inteq(feed(p, "b APPEND inbox (\\Seen) ~{500}"), IMAP_PARSE_LITERAL);
    li = imap_parser_literal(p);
    unit_assert(!li->mem_ok);
    unit_assert(li->literal8);
    a = imap_parser_args(p, &n);
    unit_assert_inteq(n, 2);
    imap_parser_literal_streamed(p, 42);
    unit_assert_inteq(feed(p, ""), IMAP_PARSE_DONE);
    a = imap_parser_args(p, &n);
    unit_assert_inteq(n, 3);
    unit_assert_inteq(a[2].type, IMAP_ARG_LITERAL_STREAM);
    unit_assert_inteq(a[2].size, 500);
    unit_assert_inteq(a[2].cookie, 42);
    imap_parser_reset(p);

    unit_assert_inteq(feed(p, "c APPEND inbox {2000+}"), IMAP_PARSE_ERROR);
    unit_assert_inteq(imap_parser_skip(p), 2000);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "c APPEND inbox {2000}"), IMAP_PARSE_ERROR);
    unit_assert_inteq(imap_parser_skip(p), 0);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "c APPEND inbox {20+}"), IMAP_PARSE_LITERAL);
    unit_assert_inteq(imap_parser_literal_refuse(p), 20);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "d X ({1}"), IMAP_PARSE_LITERAL);
    unit_assert_inteq(imap_parser_feed_literal(p, "z", 1), 0);
    unit_assert_inteq(feed(p, "x)"), IMAP_PARSE_ERROR);
    imap_parser_reset(p);
    unit_assert_inteq(feed(p, "d X ({1}"), IMAP_PARSE_LITERAL);
    unit_assert_inteq(imap_parser_feed_literal(p, "z", 1), 0);
    unit_assert_inteq(feed(p, " y)"), IMAP_PARSE_DONE);
    imap_parser_free(&p);
    unit_end();
}

static void test_seqset(void)
{
    struct imap_seqset set;

    unit_begin("sequence sets");
    unit_assert(imap_seqset_parse("1:3,7,9:*", 10, &set));
    unit_assert_inteq(set.n, 3);
    unit_assert(imap_seqset_contains(&set, 2, 20));
    unit_assert(!imap_seqset_contains(&set, 5, 20));
    unit_assert(imap_seqset_contains(&set, 15, 20));
    unit_assert(!imap_seqset_contains(&set, 21, 20));
    imap_seqset_fini(&set);
    unit_assert(imap_seqset_parse("*:4", 10, &set));
    unit_assert(imap_seqset_contains(&set, 3, 3));
    unit_assert(!imap_seqset_contains(&set, 5, 3));
    imap_seqset_fini(&set);
    unit_assert(!imap_seqset_parse("0", 10, &set));
    unit_assert(!imap_seqset_parse("1,", 10, &set));
    unit_assert(!imap_seqset_parse("1::2", 10, &set));
    unit_assert(!imap_seqset_parse("a", 10, &set));
    unit_assert(!imap_seqset_parse("", 10, &set));
    unit_assert(!imap_seqset_parse("99999999999", 10, &set));
    unit_assert(!imap_seqset_parse("1,2,3", 2, &set));
    unit_end();
}

static void test_output(void)
{
    struct str *s = str_new(1000);

    unit_begin("output quoting: atom, quoted, literal, NIL");
    unit_assert(imap_append_astring(s, "INBOX", 5));
    unit_assert(str_try_appendc(s, ' '));
    unit_assert(imap_append_astring(s, "a b", 3));
    unit_assert(str_try_appendc(s, ' '));
    unit_assert(imap_append_astring(s, "nil", 3));
    unit_assert(str_try_appendc(s, ' '));
    unit_assert(imap_append_string(s, "q\"\\", 3));
    unit_assert(str_try_appendc(s, ' '));
    unit_assert(imap_append_nstring(s, NULL, 0));
    unit_assert(str_try_appendc(s, ' '));
    unit_assert(imap_append_string(s, "a\r\nb", 4));
    unit_assert_streq(str_cstr(s), "INBOX \"a b\" \"nil\" \"q\\\"\\\\\" NIL {4}\r\na\r\nb");
    unit_assert(!imap_append_quoted(s, "a\nb", 3));
    str_reset(s);
    /* '[' is an atom character, but the parser reads "[...]" whole:
     * found by the fuzzer */
    unit_assert(imap_append_astring(s, "secret[", 7));
    unit_assert_streq(str_cstr(s), "\"secret[\"");
    str_free(&s);
    unit_end();
}

int main(void)
{
    test_simple();
    test_fetch_atoms();
    test_lists();
    test_errors();
    test_literals();
    test_seqset();
    test_output();
    return unit_done();
}
