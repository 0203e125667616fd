/* test-imap_mailbox.c - unit tests for imap_mailbox.c's pure parts:
 * LIST pattern matching (* and %, no blow-up on hostile patterns) and
 * the wire <-> store mailbox names (modified UTF-7, INBOX's case).
 * (The commands themselves: tests/test_imap_mailbox.py.) */

#include <string.h>
#include <time.h>

#include "str.h"
#include "unit.h"

#include "imap_mailbox.h"

/* test_match - RFC 3501 6.3.8 wildcards */
static void test_match(void)
{
    static const struct {
	const char *pattern, *name;
	bool want;
    } cases[] = {
	{"*", "INBOX", true},
	{"*", "a.b.c", true},
	{"%", "a", true},
	{"%", "a.b", false},
	{"a.%", "a.b", true},
	{"a.%", "a.b.c", false},
	{"a.*", "a.b.c", true},
	{"a.*", "a", false},
	{"a*", "a", true},
	{"a*", "ab.c", true},
	{"a%", "ab.c", false},
	{"%.%", "a.b", true},
	{"%.b", "x.b", true},
	{"*b", "a.b", true},
	{"*.b", "b", false},
	{"INBOX", "INBOX", true},
	{"INBOX", "INBOXX", false},
	{"inbox", "INBOX", true},
	{"in%", "INBOX", true},
	{"Inbox.%", "INBOX.kid", true},
	{"inbox.KID", "INBOX.kid", false},
	{"inboxx", "INBOXX", false},
	{"", "", true},
	{"", "a", false},
	{"S*t", "Sent", true},
	{"S*t", "Sen", false},
	{"&AOQ-*", "&AOQ-x", true},
	{"%&AOQ-", "Entw&AOQ-", true},
	{"**%%**", "a.b", true},
    };
    size_t i;

    unit_begin("LIST patterns: * and %");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	unit_assert_idx(imap_list_match(cases[i].pattern, cases[i].name) == cases[i].want, i);
    unit_end();
}

/* test_match_hostile - many wildcards against a long name stays fast */
static void test_match_hostile(void)
{
    char pattern[4001], name[601];
    clock_t t0;
    int i;

    unit_begin("LIST patterns: a hostile pattern is linear, not exponential");
    for (i = 0; i < 4000; i++)
	pattern[i] = (i % 2) ? '*' : 'a';
    pattern[4000] = 0;
    memset(name, 'a', 600);
    name[600] = 0;
    t0 = clock();
    unit_assert(!imap_list_match(pattern, name));
    pattern[3] = '%';
    unit_assert(!imap_list_match(pattern, name));
    unit_assert(imap_list_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*", name));
    unit_assert(clock() - t0 < 2 * CLOCKS_PER_SEC);
    unit_end();
}

/* name - the store name of a wire name, "!" when refused */
static const char *name(struct str *s, const char *wire)
{
    const char *why;

    str_reset(s);
    if (!imap_mailbox_name(wire, strlen(wire), s, &why))
	return "!";
    return str_cstr(s);
}

/* test_names - wire to store and back */
static void test_names(void)
{
    struct str *s = str_new(4096);

    unit_begin("mailbox names: modified UTF-7 decoded, INBOX folded, bad ones refused");
    unit_assert_streq(name(s, "inbox"), "INBOX");
    unit_assert_streq(name(s, "InBoX.Kid"), "INBOX.Kid");
    unit_assert_streq(name(s, "INBOXES"), "INBOXES");
    unit_assert_streq(name(s, "Entw&APw-rfe"), "Entw\xc3\xbc" "rfe");
    unit_assert_streq(name(s, "a.b"), "a.b");
    unit_assert_streq(name(s, "a/b"), "!");
    unit_assert_streq(name(s, "a..b"), "!");
    unit_assert_streq(name(s, ".a"), "!");
    unit_assert_streq(name(s, ""), "!");
    unit_assert_streq(name(s, "&AGE-"), "!");	/* non-canonical */
    unit_assert_streq(name(s, "a\xc3\xa4"), "!");	/* raw 8-bit */
    unit_assert_streq(name(s, "&AAk-"), "!");	/* a TAB, encoded */
    str_reset(s);
    unit_assert(imap_mailbox_wire("Gel\xc3\xb6scht", s));
    unit_assert_streq(str_cstr(s), "Gel&APY-scht");
    str_free(&s);
    unit_end();
}

int main(void)
{
    test_match();
    test_match_hostile();
    test_names();
    return unit_done();
}
