/* test-xtext.c - unit tests for xtext.c (RFC 3461 xtext, RFC 6533
 * utf-8-addr-xtext/unitext, strict UTF-8). */

#include <stdio.h>
#include <string.h>

/* base */
#include "str.h"
#include "unit.h"

/* mail */
#include "xtext.h"

/* An input, and the decoded output (NULL: must be rejected). Inputs and
 * outputs are C strings; "\0" cases are done separately. */
struct xcase {
    const char *in;
    const char *out;
};

static const struct xcase xtext_cases[] = {
    {"", ""},
    {"abc", "abc"},
    {"user@example.com", "user@example.com"},
    {"+2B", "+"},
    {"+3D", "="},
    {"+20", " "},
    {"a+2Bb", "a+b"},
    {"+41+42", "AB"},
    {"!~\"#$%&'()*,-./:;<>?[\\]^_`{|}", "!~\"#$%&'()*,-./:;<>?[\\]^_`{|}"},
    {"+7F", "\x7f"},
    {"+FF", "\xff"},
    {"+C3+A9", "\xc3\xa9"},
    {"+0A", "\n"},
    {"+2b", NULL},				/* lower-case hex */
    {"+2", NULL},
    {"+", NULL},
    {"a+", NULL},
    {"+G0", NULL},
    {"+0G", NULL},
    {"a=b", NULL},
    {"a b", NULL},
    {"a\tb", NULL},
    {"\x7f", NULL},
    {"\xc3\xa9", NULL},			/* 8-bit */
    {"\r\n", NULL},
    {"++2B", NULL},
    {"+2B+", NULL},
};

static const struct xcase utf8_cases[] = {
    {"user@example.com", "user@example.com"},
    {"\\x{E9}t\\x{E9}@example.com", "\xc3\xa9t\xc3\xa9@example.com"},
    {"\\x{e9}", "\xc3\xa9"},			/* ABNF hex is case-insensitive */
    {"\\x{2B}", "+"},
    {"\\x{3D}", "="},
    {"\\x{5C}", "\\"},
    {"\\x{20}", " "},
    {"\\x{7F}", "\x7f"},
    {"\\x{01}", "\x01"},
    {"\\x{0A}", "\n"},
    {"\\x{100}", "\xc4\x80"},
    {"\\x{20AC}", "\xe2\x82\xac"},
    {"\\x{FFFF}", "\xef\xbf\xbf"},
    {"\\x{1F600}", "\xf0\x9f\x98\x80"},
    {"\\x{10FFFF}", "\xf4\x8f\xbf\xbf"},
    {"\\x{110000}", NULL},			/* above Unicode */
    {"\\x{D800}", NULL},			/* surrogate */
    {"\\x{DFFF}", NULL},
    {"\\x{41}", NULL},				/* QCHAR must be literal */
    {"\\x{0041}", NULL},			/* leading zero */
    {"\\x{0E9}", NULL},
    {"\\x{00}", NULL},				/* NUL */
    {"\\x{0}", NULL},
    {"\\x{E}", NULL},				/* one digit */
    {"\\x{}", NULL},
    {"\\x{1234567}", NULL},
    {"\\x{E9", NULL},
    {"\\xE9", NULL},
    {"\\X{E9}", NULL},
    {"\\", NULL},
    {"a\\b", NULL},
    {"a+b", NULL},				/* "+" is not a QCHAR */
    {"a=b", NULL},
    {"a b", NULL},
    {"", NULL},
    {"\xc3\xa9", NULL},				/* raw UTF-8 only in unitext */
};

static const struct xcase unitext_cases[] = {
    {"\xc3\xa9t\xc3\xa9@example.com", "\xc3\xa9t\xc3\xa9@example.com"},
    {"\xe2\x82\xac\\x{2B}x", "\xe2\x82\xac+x"},
    {"\xc0\xaf", NULL},				/* overlong "/" */
    {"\xe0\x80\xaf", NULL},			/* overlong */
    {"\xed\xa0\x80", NULL},			/* surrogate */
    {"\xf4\x90\x80\x80", NULL},			/* > U+10FFFF */
    {"\xc3", NULL},				/* truncated */
    {"\x80", NULL},				/* lone continuation */
    {"\xff", NULL},
};

/* UTF-8 validity: input (with explicit length) and verdict. */
struct ucase {
    const char *in;
    size_t len;
    int valid;
};

static const struct ucase utf8_valid_cases[] = {
    {"", 0, 1},
    {"abc", 3, 1},
    {"\0", 1, 1},
    {"\xc2\x80", 2, 1},
    {"\xdf\xbf", 2, 1},
    {"\xe0\xa0\x80", 3, 1},
    {"\xef\xbf\xbd", 3, 1},
    {"\xf0\x90\x80\x80", 4, 1},
    {"\xf4\x8f\xbf\xbf", 4, 1},
    {"\xc0\x80", 2, 0},				/* overlong NUL */
    {"\xc1\xbf", 2, 0},
    {"\xe0\x9f\xbf", 3, 0},
    {"\xf0\x8f\xbf\xbf", 4, 0},
    {"\xed\xa0\x80", 3, 0},
    {"\xed\xbf\xbf", 3, 0},
    {"\xf4\x90\x80\x80", 4, 0},
    {"\xf5\x80\x80\x80", 4, 0},
    {"\xc2", 1, 0},
    {"\xe2\x82", 2, 0},
    {"\xc2\x41", 2, 0},
    {"\x80", 1, 0},
    {"\xfe", 1, 0},
};

int main(void)
{
    struct str *s = str_new(1000);
    const char *err;
    size_t i;

    unit_begin("xtext decode table");
    for (i = 0; i < sizeof(xtext_cases) / sizeof(xtext_cases[0]); i++) {
	const struct xcase *c = xtext_cases + i;
	bool ok;

	str_reset(s);
	err = NULL;
	ok = xtext_decode(s, c->in, strlen(c->in), &err);
	unit_assert_streq_idx(ok ? "accept" : "reject", c->out ? "accept" : "reject", i);
	unit_assert_idx(ok == xtext_valid(c->in, strlen(c->in)), i);
	if (ok && c->out)
	    unit_assert_streq_idx(str_cstr(s), c->out, i);
	if (!ok)
	    unit_assert_idx(err != NULL, i);
    }
    unit_end();

    unit_begin("xtext decodes +00 to a NUL octet");
    str_reset(s);
    unit_assert(xtext_decode(s, "a+00b", 5, &err));
    unit_assert_inteq(str_len(s), 3);
    unit_assert(memcmp(str_cstr(s), "a\0b", 3) == 0);
    unit_assert(!xtext_valid("a\0b", 3));
    unit_end();

    unit_begin("xtext encode, and round trip of all 256 octets");
    str_reset(s);
    unit_assert(xtext_encode(s, "a+b=c d\xe9", 8));
    unit_assert_streq(str_cstr(s), "a+2Bb+3Dc+20d+E9");
    {
	unsigned char all[256];
	struct str *back = str_new(256);

	for (i = 0; i < 256; i++)
	    all[i] = (unsigned char) i;
	str_reset(s);
	unit_assert(xtext_encode(s, all, 256));
	unit_assert(xtext_valid(str_cstr(s), str_len(s)));
	unit_assert(xtext_decode(back, str_cstr(s), str_len(s), &err));
	unit_assert_inteq(str_len(back), 256);
	unit_assert(memcmp(str_cstr(back), all, 256) == 0);
	str_free(&back);
    }
    unit_end();

    unit_begin("xtext respects the output maximum");
    {
	struct str *small = str_new(3);

	unit_assert(!xtext_decode(small, "abcd", 4, &err));
	unit_assert_streq(err, "decoded xtext too long");
	str_reset(small);
	unit_assert(!xtext_encode(small, "a b", 3));
	str_free(&small);
    }
    unit_end();

    unit_begin("utf-8-addr-xtext decode table");
    for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
	const struct xcase *c = utf8_cases + i;
	bool ok;

	str_reset(s);
	ok = xtext_utf8_decode(s, c->in, strlen(c->in), false, &err);
	unit_assert_streq_idx(ok ? "accept" : "reject", c->out ? "accept" : "reject", i);
	if (ok && c->out)
	    unit_assert_streq_idx(str_cstr(s), c->out, i);
    }
    unit_end();

    unit_begin("utf-8-addr-unitext decode table");
    for (i = 0; i < sizeof(unitext_cases) / sizeof(unitext_cases[0]); i++) {
	const struct xcase *c = unitext_cases + i;
	bool ok;

	str_reset(s);
	ok = xtext_utf8_decode(s, c->in, strlen(c->in), true, &err);
	unit_assert_streq_idx(ok ? "accept" : "reject", c->out ? "accept" : "reject", i);
	if (ok && c->out)
	    unit_assert_streq_idx(str_cstr(s), c->out, i);
    }
    /* Every 7-bit case behaves the same in unitext mode. */
    for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
	const struct xcase *c = utf8_cases + i;
	bool ok;

	if (c->in[0] == '\xc3')
	    continue;
	str_reset(s);
	ok = xtext_utf8_decode(s, c->in, strlen(c->in), true, &err);
	unit_assert_idx(ok == (c->out != NULL), i);
    }
    unit_end();

    unit_begin("utf-8-addr-xtext encode and round trip");
    str_reset(s);
    unit_assert(xtext_utf8_encode(s, "\xc3\xa9+= \\a@b\xf0\x9f\x98\x80", 13));
    unit_assert_streq(str_cstr(s), "\\x{E9}\\x{2B}\\x{3D}\\x{20}\\x{5C}a@b\\x{1F600}");
    {
	struct str *back = str_new(100);

	unit_assert(xtext_utf8_decode(back, str_cstr(s), str_len(s), false, &err));
	unit_assert_streq(str_cstr(back), "\xc3\xa9+= \\a@b\xf0\x9f\x98\x80");
	str_free(&back);
    }
    str_reset(s);
    unit_assert(!xtext_utf8_encode(s, "\xc0\x80", 2));
    str_reset(s);
    unit_assert(!xtext_utf8_encode(s, "a\0b", 3));
    unit_end();

    unit_begin("strict UTF-8 validity table");
    for (i = 0; i < sizeof(utf8_valid_cases) / sizeof(utf8_valid_cases[0]); i++) {
	const struct ucase *c = utf8_valid_cases + i;

	unit_assert_streq_idx(utf8_valid(c->in, c->len) ? "valid" : "invalid",
			      c->valid ? "valid" : "invalid", i);
    }
    unit_end();

    unit_begin("utf8_append writes what utf8_decode_one reads");
    {
	static const unsigned long cps[] = {0x1, 0x7F, 0x80, 0x7FF, 0x800, 0xD7FF,
	0xE000, 0xFFFF, 0x10000, 0x10FFFF};
	unsigned long cp;

	for (i = 0; i < sizeof(cps) / sizeof(cps[0]); i++) {
	    str_reset(s);
	    unit_assert_idx(utf8_append(s, cps[i]), i);
	    unit_assert_idx(utf8_decode_one((const unsigned char *) str_cstr(s),
				       str_len(s), &cp) == str_len(s), i);
	    unit_assert_idx(cp == cps[i], i);
	}
	unit_assert(!utf8_append(s, 0xD800));
	unit_assert(!utf8_append(s, 0x110000));
    }
    unit_end();

    str_free(&s);
    return unit_done();
}
