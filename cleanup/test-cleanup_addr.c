/* test-cleanup_addr.c - unit tests for cleanup_addr.c and
 * cleanup_header.c: RFC 5322 address lists (groups, quoted names,
 * comments, routes, literals), canonical addresses, header names,
 * types and unfolding. */

/* System. */
#include <string.h>

/* Base. */
#include "mem.h"
#include "str.h"
#include "unit.h"

/* Cleanup. */
#include "cleanup.h"

struct list_case {
    const char *text;
    const char *want;			/* addresses joined by " | " */
    long count;
};

static const struct list_case list_cases[] = {
    {"a@example.com", "a@example.com", 1},
    {"a@example.com, b@example.org", "a@example.com | b@example.org", 2},
    {"  A@Example.COM  ", "A@Example.COM", 1},
    {"John Doe <jd@example.com>", "jd@example.com", 1},
    {"\"Doe, John\" <jd@example.com>, x@y", "jd@example.com | x@y", 2},
    {"\"a<b>c\" <q@example.com>", "q@example.com", 1},
    {"jd@example.com (John Doe)", "jd@example.com", 1},
    {"jd(comment)@(another)example.com", "jd@example.com", 1},
    {"(nested (comment) here) jd@example.com", "jd@example.com", 1},
    {"(comment with \\) escaped) jd@example.com", "jd@example.com", 1},
    {"\"john doe\"@example.com", "john doe@example.com", 1},
    {"\"quoted\\\"quote\"@example.com", "quoted\"quote@example.com", 1},
    {"first.last@example.com", "first.last@example.com", 1},
    {"first . last @ example . com", "first.last@example.com", 1},
    {"undisclosed-recipients:;", "", 0},
    {"Friends: a@x, b@y;, c@z", "a@x | b@y | c@z", 3},
    {"Friends: Ann <a@x>, \"B, B\" <b@y>; Other: c@z;", "a@x | b@y | c@z", 3},
    {"<@r1.example,@r2.example:u@d.example>", "u@d.example", 1},
    {"Name <@r1:u@d>, v@e", "u@d | v@e", 2},
    {"user@[192.0.2.1]", "user@[192.0.2.1]", 1},
    {"user@[IPv6:2001:db8::1]", "user@[IPv6:2001:db8::1]", 1},
    {"localuser", "localuser", 1},
    {"a@x,,, ,b@y", "a@x | b@y", 2},
    {"", "", 0},
    {"   ", "", 0},
    {"<>", "", 0},
    {"@", "", 0},
    {"Broken <a@x", "a@x", 1},
    {"\"unterminated quote", "unterminated quote", 1},
    {"(unterminated comment a@x", "", 0},
    {"a@x\r\n\tb@y", "a@xb@y", 1},
    {"a@x,\r\n b@y", "a@x | b@y", 2},
    {"caf\xc3\xa9@exampl\xc3\xa9.com", "caf\xc3\xa9@exampl\xc3\xa9.com", 1},
};

struct canon_case {
    const char *in;
    const char *origin;
    const char *want;
};

static const struct canon_case canon_cases[] = {
    {"user@Example.COM", "o.example", "user@example.com"},
    {"User@Example.COM.", "o.example", "User@example.com"},
    {"<user@example.com>", "o.example", "user@example.com"},
    {"  user@example.com ", "o.example", "user@example.com"},
    {"user", "O.Example", "user@o.example"},
    {"user@", "o.example", "user@o.example"},
    {"user", "", "user"},
    {"", "o.example", ""},
    {"<>", "o.example", ""},
    {"a@b@C.example", "o.example", "a@b@c.example"},
    {"x@[IPv6:2001:DB8::1]", "o", "x@[ipv6:2001:db8::1]"},
};

struct hdr_case {
    const char *line;
    size_t name_len;
    enum cleanup_hdr type;
};

static const struct hdr_case hdr_cases[] = {
    {"Subject: hi", 7, CLEANUP_HDR_OTHER},
    {"To: a@b", 2, CLEANUP_HDR_TO},
    {"to:a@b", 2, CLEANUP_HDR_TO},
    {"CC : a@b", 2, CLEANUP_HDR_CC},
    {"Bcc:", 3, CLEANUP_HDR_BCC},
    {"RECEIVED: from x", 8, CLEANUP_HDR_RECEIVED},
    {"Message-ID: <x@y>", 10, CLEANUP_HDR_MESSAGE_ID},
    {"Resent-To: a@b", 9, CLEANUP_HDR_RESENT_TO},
    {"Resent-Bcc: a@b", 10, CLEANUP_HDR_RESENT_BCC},
    {"Date: now", 4, CLEANUP_HDR_DATE},
    {"From: a@b", 4, CLEANUP_HDR_FROM},
    {"X-Very-Long-Name-With-Digits-123: v", 32, CLEANUP_HDR_OTHER},
    {"From a@b Mon Jan 1", 0, CLEANUP_HDR_OTHER},
    {": no name", 0, CLEANUP_HDR_OTHER},
    {" Subject: folded", 0, CLEANUP_HDR_OTHER},
    {"No colon here", 0, CLEANUP_HDR_OTHER},
    {"Caf\xc3\xa9: x", 0, CLEANUP_HDR_OTHER},
    {"", 0, CLEANUP_HDR_OTHER},
};

static void collect(const char *addr, void *ctx)
{
    struct str *s = ctx;

    if (str_len(s))
	str_appends_or_panic(s, " | ");
    str_appends_or_panic(s, addr);
}

int main(void)
{
    struct str *got = str_new(STR_MAX_DEFAULT);
    struct cleanup_addrs a;
    size_t i;
    long n;

    unit_begin("address lists");
    for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
	const struct list_case *c = &list_cases[i];

	str_reset(got);
	n = cleanup_addr_list(c->text, strlen(c->text), 1000, collect, got);
	unit_assert_streq_idx(str_cstr(got), c->want, i);
	unit_assert_idx(n == c->count, i);
    }
    unit_end();

    unit_begin("address lists: token limit");
    str_reset(got);
    n = cleanup_addr_list("a@x, b@y, c@z", 13, 5, collect, got);
    unit_assert(n == -1);
    unit_assert_streq(str_cstr(got), "a@x");
    str_reset(got);
    n = cleanup_addr_list("a@x, b@y, c@z", 13, 11, collect, got);
    unit_assert(n == 3);
    unit_end();

    unit_begin("canonical addresses");
    for (i = 0; i < sizeof(canon_cases) / sizeof(canon_cases[0]); i++) {
	unit_assert_idx(cleanup_addr_canon(canon_cases[i].in, canon_cases[i].origin, got), i);
	unit_assert_streq_idx(str_cstr(got), canon_cases[i].want, i);
    }
    {
	struct str *small = str_new(8);

	unit_assert(!cleanup_addr_canon("longer@example.com", "o", small));
	str_free(&small);
    }
    unit_assert(cleanup_addr_bad("a\nb", 3));
    unit_assert(cleanup_addr_bad("a\x7f", 2));
    unit_assert(!cleanup_addr_bad("caf\xc3\xa9@x", 7));
    unit_end();

    unit_begin("address sets");
    cleanup_addrs_init(&a);
    cleanup_addrs_add(&a, "A@x");
    cleanup_addrs_add(&a, "b@y");
    unit_assert(cleanup_addrs_find(&a, "A@x", false) == 0);
    unit_assert(cleanup_addrs_find(&a, "a@x", false) == -1);
    unit_assert(cleanup_addrs_find(&a, "a@X", true) == 0);
    unit_assert(cleanup_addrs_find(&a, "b@y", false) == 1);
    cleanup_addrs_reset(&a);
    unit_assert(a.n == 0 && cleanup_addrs_find(&a, "b@y", false) == -1);
    cleanup_addrs_fini(&a);
    unit_end();

    unit_begin("header names and types");
    for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
	const struct hdr_case *c = &hdr_cases[i];
	size_t len = cleanup_header_name_len(c->line, strlen(c->line));

	unit_assert_idx(len == c->name_len, i);
	if (len)
	    unit_assert_idx(cleanup_header_type(c->line, len) == c->type, i);
    }
    unit_end();

    unit_begin("header values are unfolded and trimmed");
    unit_assert(cleanup_header_value("To: a@b,\n\tc@d ", 14, got));
    unit_assert_streq(str_cstr(got), "a@b,\tc@d");
    unit_assert(cleanup_header_value("Subject:", 8, got));
    unit_assert_streq(str_cstr(got), "");
    unit_assert(cleanup_header_value("Message-Id:\n <x@y>", 18, got));
    unit_assert_streq(str_cstr(got), "<x@y>");
    unit_end();

    str_free(&got);
    return unit_done();
}
