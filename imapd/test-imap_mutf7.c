/* test-imap_mutf7.c - unit tests for imap_mutf7.c: the RFC 3501
 * examples, round trips through every kind of code point, and every
 * kind of non-canonical or broken input refused. */

#include <string.h>

#include "str.h"
#include "unit.h"

#include "imap_mutf7.h"

/* dec - decode text, "!" when refused */
static const char *dec(struct str *s, const char *text)
{
    str_reset(s);
    if (!imap_mutf7_to_utf8(text, strlen(text), s))
	return "!";
    return str_cstr(s);
}

/* enc - encode text, "!" when refused */
static const char *enc(struct str *s, const char *text)
{
    str_reset(s);
    if (!imap_utf8_to_mutf7(text, strlen(text), s))
	return "!";
    return str_cstr(s);
}

/* test_examples - RFC 3501's and some more, both ways */
static void test_examples(void)
{
    static const char *const pairs[][2] = {
	{"INBOX", "INBOX"},
	{"", ""},
	{"&-", "&"},
	{"a&-b&-", "a&b&"},
	/* RFC 3501 5.1.3: ~peter/mail/台北/日本語 */
	{"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	 "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	{"Entw&APw-rfe", "Entw\xc3\xbc" "rfe"},
	{"&AOQA9gD8-", "\xc3\xa4\xc3\xb6\xc3\xbc"},
	{"Gel&APY-schte Elemente", "Gel\xc3\xb6schte Elemente"},
	{"&BBoEPgRABDcEOAQ9BDA-", "\xd0\x9a\xd0\xbe\xd1\x80\xd0\xb7\xd0\xb8\xd0\xbd\xd0\xb0"},
	/* U+1F600 (a surrogate pair) */
	{"&2D3eAA-", "\xf0\x9f\x98\x80"},
	{"x&2D3eAA-y&AOk-", "x\xf0\x9f\x98\x80y\xc3\xa9"},
	/* a control character and DEL are encoded */
	{"&AAk-", "\t"},
	{"&AH8-", "\x7f"},
    };
    struct str *s = str_new(1024);
    size_t i;

    unit_begin("modified UTF-7: examples decode and encode both ways");
    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
	unit_assert_streq_idx(dec(s, pairs[i][0]), pairs[i][1], i);
	unit_assert_streq_idx(enc(s, pairs[i][1]), pairs[i][0], i);
    }
    str_free(&s);
    unit_end();
}

/* test_refused - non-canonical and broken input */
static void test_refused(void)
{
    static const char *const bad_mutf7[] = {
	"&",			/* no "-" */
	"&AOQ",			/* no "-" */
	"a&AOQ-&AOQ-",		/* two runs side by side */
	"&AGE-",		/* "a" encoded */
	"&ACY-",		/* "&" encoded */
	"&AOQ=-",		/* not modified base64 */
	"&AO/-",		/* "/" is not in the alphabet */
	"&AOR-",		/* stray bits set */
	"&AOQA-",		/* 6 spare bits: a letter too many */
	"&2D0-",		/* a lone high surrogate */
	"&3gA-",		/* a lone low surrogate */
	"&2D3YPQ-",		/* high surrogate followed by a high one */
	"&AAA-",		/* NUL */
	"\xc3\xa4",		/* 8-bit */
	"a\tb",			/* a control character */
	"a\x7f",		/* DEL */
	"&A-",			/* too short for a unit */
    };
    static const char *const bad_utf8[] = {
	"\xc3",			/* cut */
	"\xc0\xaf",		/* overlong "/" */
	"\xe0\x80\xaf",		/* overlong */
	"\xed\xa0\x80",		/* a surrogate */
	"\xf4\x90\x80\x80",	/* past U+10FFFF */
	"\xff",
	"a\x80",		/* a lone continuation byte */
    };
    struct str *s = str_new(1024);
    size_t i;

    unit_begin("modified UTF-7: non-canonical or broken input is refused");
    for (i = 0; i < sizeof(bad_mutf7) / sizeof(bad_mutf7[0]); i++)
	unit_assert_streq_idx(dec(s, bad_mutf7[i]), "!", i);
    for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
	unit_assert_streq_idx(enc(s, bad_utf8[i]), "!", i);
	unit_assert_idx(!imap_utf8_valid(bad_utf8[i], strlen(bad_utf8[i])), i);
    }
    unit_assert(!imap_utf8_valid("a\0b", 3));
    unit_assert(!imap_utf8_to_mutf7("a\0b", 3, s));
    unit_assert(imap_utf8_valid("\xc3\xa4\xf0\x9f\x98\x80", 6));
    /* a refusal leaves what was there */
    str_reset(s);
    unit_assert(str_try_appends(s, "keep"));
    unit_assert(!imap_mutf7_to_utf8("x&AGE-", 6, s));
    unit_assert_streq(str_cstr(s), "keep");
    unit_assert(!imap_utf8_to_mutf7("x\xc3", 2, s));
    unit_assert_streq(str_cstr(s), "keep");
    str_free(&s);
    unit_end();
}

/* test_round_trip - every BMP character outside ASCII and a sample of
 * the planes above, alone and after ASCII, encode then decode */
static void test_round_trip(void)
{
    struct str *u = str_new(64), *m = str_new(64), *back = str_new(64);
    unsigned long cp, fails = 0;
    char b[8];
    size_t n;

    unit_begin("modified UTF-7: round trip of every code point");
    for (cp = 1; cp <= 0x10ffff; cp += (cp < 0x10000 ? 1 : 97)) {
	if (cp >= 0xd800 && cp <= 0xdfff)
	    continue;
	if (cp < 0x80) {
	    b[0] = (char) cp;
	    n = 1;
	} else if (cp < 0x800) {
	    b[0] = (char) (0xc0 | (cp >> 6));
	    b[1] = (char) (0x80 | (cp & 0x3f));
	    n = 2;
	} else if (cp < 0x10000) {
	    b[0] = (char) (0xe0 | (cp >> 12));
	    b[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
	    b[2] = (char) (0x80 | (cp & 0x3f));
	    n = 3;
	} else {
	    b[0] = (char) (0xf0 | (cp >> 18));
	    b[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	    b[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	    b[3] = (char) (0x80 | (cp & 0x3f));
	    n = 4;
	}
	str_reset(u);
	unit_assert(str_try_appends(u, "a"));
	unit_assert(str_try_append(u, b, n));
	unit_assert(str_try_append(u, b, n));	/* two: other bit offsets */
	unit_assert(str_try_append(u, b, n));
	str_reset(m);
	str_reset(back);
	if (!imap_utf8_to_mutf7(str_cstr(u), str_len(u), m)
	    || !imap_mutf7_to_utf8(str_cstr(m), str_len(m), back)
	    || str_len(back) != str_len(u) || memcmp(str_cstr(back), str_cstr(u), str_len(u)) != 0)
	    fails++;
    }
    unit_assert_inteq(fails, 0);
    str_free(&u);
    str_free(&m);
    str_free(&back);
    unit_end();
}

/* test_bounds - a result past the string's maximum is refused */
static void test_bounds(void)
{
    struct str *s = str_new(4);

    unit_begin("modified UTF-7: a result past the maximum is refused");
    unit_assert(!imap_utf8_to_mutf7("\xc3\xa4\xc3\xa4", 4, s));
    unit_assert_inteq(str_len(s), 0);
    unit_assert(imap_mutf7_to_utf8("&AOQ-", 5, s));
    unit_assert_inteq(str_len(s), 2);
    unit_assert(!imap_mutf7_to_utf8("&AOQA5A-", 8, s));
    unit_assert_inteq(str_len(s), 2);
    str_free(&s);
    unit_end();
}

int main(void)
{
    test_examples();
    test_refused();
    test_round_trip();
    test_bounds();
    return unit_done();
}
