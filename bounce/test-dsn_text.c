/* test-dsn_text.c - unit tests for dsn_text.c: RFC 5322 dates, folding,
 * wrapping, status codes, diagnostic codes, address types. */

#include <string.h>

#include "str.h"
#include "unit.h"

/* mail */
#include "bounce_proto.h"
#include "deliver_proto.h"

#include "bounce.h"

/* unfold - remove the "\n" before each continuation and the last one */
static void unfold(struct str *out, const char *text)
{
    str_reset(out);
    for (const char *cp = text; *cp; cp++)
	if (*cp != '\n')
	    str_appendc_or_panic(out, *cp);
}

/* max_line - the longest line of text */
static size_t max_line(const char *text)
{
    size_t best = 0, cur = 0;

    for (const char *cp = text; *cp; cp++) {
	if (*cp == '\n') {
	    best = cur > best ? cur : best;
	    cur = 0;
	} else {
	    cur++;
	}
    }
    return cur > best ? cur : best;
}

int main(void)
{
    struct str *s = str_new(STR_MAX_DEFAULT);
    struct str *u = str_new(STR_MAX_DEFAULT);

    unit_begin("dsn_fold: short fields stay on one line, white space collapsed");
    str_reset(s);
    unit_assert(dsn_fold(s, "Action", "failed"));
    unit_assert_streq(str_cstr(s), "Action: failed\n");
    str_reset(s);
    unit_assert(dsn_fold(s, "Subject", "  two   words  "));
    unit_assert_streq(str_cstr(s), "Subject: two words\n");
    unit_end();

    unit_begin("dsn_fold: long diagnostics fold at white space within 78 columns");
    {
	static const char *const values[] = {
	    "smtp; 550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in "
	    "virtual mailbox table; please check the address and try again later, thank you",
	    "x-posthorn; a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k "
	    "l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z",
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
	    str_reset(s);
	    unit_assert_idx(dsn_fold(s, "Diagnostic-Code", values[i]), i);
	    unit_assert_idx(max_line(str_cstr(s)) <= DSN_LINE_WIDTH, i);
	    unit_assert_idx(strchr(str_cstr(s), '\n') != str_cstr(s) + str_len(s) - 1, i);
	    /* each continuation starts with white space, and unfolding
	     * gives the field back */
	    for (const char *cp = strchr(str_cstr(s), '\n'); cp && cp[1]; cp = strchr(cp + 1, '\n'))
		unit_assert_idx(cp[1] == ' ', i);
	    unfold(u, str_cstr(s));
	    unit_assert_idx(strncmp(str_cstr(u), "Diagnostic-Code: ", 17) == 0, i);
	    unit_assert_streq_idx(str_cstr(u) + 17, values[i], i);
	}
    }
    unit_end();

    unit_begin("dsn_fold: a long word stays whole below 998, is broken above");
    {
	char word[1500];

	memset(word, 'x', sizeof(word) - 1);
	word[sizeof(word) - 1] = 0;
	word[200] = 0;
	str_reset(s);
	unit_assert(dsn_fold(s, "Diagnostic-Code", word));
	unit_assert_inteq(max_line(str_cstr(s)), strlen("Diagnostic-Code: ") + 200);
	word[200] = 'x';
	str_reset(s);
	unit_assert(dsn_fold(s, "Diagnostic-Code", word));
	unit_assert(max_line(str_cstr(s)) <= DSN_LINE_HARD);
	unit_assert(str_len(s) > 1499);
    }
    unit_end();

    unit_begin("dsn_wrap: word wrap with indented continuation lines");
    str_reset(s);
    unit_assert(dsn_wrap(s, "<a@example.test>: one two three four five six seven eight nine", 30, 4));
    unit_assert_streq(str_cstr(s), "<a@example.test>: one two\n    three four five six seven\n"
		      "    eight nine\n");
    str_reset(s);
    unit_assert(dsn_wrap(s, "averyveryverylongword short", 10, 2));
    unit_assert_streq(str_cstr(s), "averyveryverylongword\n  short\n");
    unit_end();

    unit_begin("dsn_clean: controls become spaces, UTF-8 kept only when allowed");
    str_reset(s);
    unit_assert(dsn_clean(s, "a\r\nb\tc\x7f", 7, false));
    unit_assert_streq(str_cstr(s), "a  b c ");
    str_reset(s);
    unit_assert(dsn_clean(s, "j\xc3\xb6rg", 5, true));
    unit_assert_streq(str_cstr(s), "j\xc3\xb6rg");
    str_reset(s);
    unit_assert(dsn_clean(s, "j\xc3\xb6rg", 5, false));
    unit_assert_streq(str_cstr(s), "j??rg");
    str_reset(s);
    unit_assert(dsn_clean(s, "bad\xc3(", 5, true));
    unit_assert_streq(str_cstr(s), "bad?(");
    unit_end();

    unit_begin("deliver_dsn_valid, bounce_action_valid and dsn_status_for");
    {
	static const struct {
	    const char *status;
	    bool valid;
	} cases[] = {
	    {"5.1.1", true}, {"4.4.1", true}, {"2.0.0", true}, {"5.7.999", true},
	    {"3.1.1", false}, {"5.1", false}, {"5.01.1", false}, {"5.1.1000", false},
	    {"5.1.1 ", false}, {"", false}, {"5..1", false}, {"x.1.1", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	    unit_assert_idx(deliver_dsn_valid(cases[i].status) == cases[i].valid, i);
	unit_assert_streq(dsn_status_for("5.1.1", "failed"), "5.1.1");
	unit_assert_streq(dsn_status_for("4.4.1", "failed"), "5.0.0");
	unit_assert_streq(dsn_status_for("", "delayed"), "4.0.0");
	unit_assert_streq(dsn_status_for("4.2.2", "delayed"), "4.2.2");
	unit_assert_streq(dsn_status_for("junk", "delivered"), "2.0.0");
	unit_assert_streq(dsn_status_for("2.1.5", "relayed"), "2.1.5");
	unit_assert(bounce_action_valid("expanded"));
	unit_assert(!bounce_action_valid("bounced"));
    }
    unit_end();

    unit_begin("dsn_diagnostic: smtp for remote replies, x-posthorn otherwise");
    {
	static const struct {
	    const char *reason, *want;
	} cases[] = {
	    {"host mx.example.net[192.0.2.1] said: 550 5.1.1 <x@example.net>: User unknown "
	     "(in reply to RCPT TO command)", "smtp; 550 5.1.1 <x@example.net>: User unknown"},
	    {"550 5.7.1 Relaying denied", "smtp; 550 5.7.1 Relaying denied"},
	    {"unknown user: \"nobody\"", "x-posthorn; unknown user: \"nobody\""},
	    {"said: hello", "x-posthorn; said: hello"},
	    {"line\r\nbreak", "x-posthorn; line  break"},
	    {"", "x-posthorn; no reason given"},
	    {"9999 not a reply", "x-posthorn; 9999 not a reply"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    str_reset(s);
	    unit_assert_idx(dsn_diagnostic(s, cases[i].reason, false), i);
	    unit_assert_streq_idx(str_cstr(s), cases[i].want, i);
	}
    }
    unit_end();

    unit_begin("dsn_remote_mta: network relays only");
    {
	static const struct {
	    const char *relay, *want;
	} cases[] = {
	    {"mx.example.net[192.0.2.1]:25", "dns; mx.example.net"},
	    {"mx.example.net", "dns; mx.example.net"},
	    {"[192.0.2.1]:25", "dns; [192.0.2.1]"},
	    {"local", NULL},
	    {"none", NULL},
	    {"", NULL},
	    {"[unterminated", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    str_reset(s);
	    unit_assert_idx(dsn_remote_mta(s, cases[i].relay) == (cases[i].want != NULL), i);
	    unit_assert_streq_idx(str_cstr(s), cases[i].want ? cases[i].want : "", i);
	}
    }
    unit_end();

    unit_begin("dsn_address and dsn_orcpt: rfc822, utf-8 (RFC 6533)");
    {
	static const struct {
	    const char *in;
	    bool orcpt, utf8;
	    const char *want;		/* NULL: false */
	} cases[] = {
	    {"bob@example.test", false, false, "rfc822; bob@example.test"},
	    {"j\xc3\xb6rg@example.test", false, true, "utf-8; j\xc3\xb6rg@example.test"},
	    {"j\xc3\xb6rg@example.test", false, false, "utf-8; j\\x{F6}rg@example.test"},
	    {"rfc822;bob@example.test", true, false, "rfc822; bob@example.test"},
	    {"RFC822; bob@example.test", true, false, "rfc822; bob@example.test"},
	    {"utf-8;j\xc3\xb6rg@example.test", true, true, "utf-8; j\xc3\xb6rg@example.test"},
	    {"x400;c=de;a=x", true, false, "x400; c=de;a=x"},
	    {"noseparator", true, false, NULL},
	    {";bob@example.test", true, false, NULL},
	    {"rfc822;", true, false, NULL},
	    {"bad type;x", true, false, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    bool ok;

	    str_reset(s);
	    ok = cases[i].orcpt ? dsn_orcpt(s, cases[i].in, cases[i].utf8)
		: dsn_address(s, cases[i].in, cases[i].utf8);
	    unit_assert_idx(ok == (cases[i].want != NULL), i);
	    if (cases[i].want)
		unit_assert_streq_idx(str_cstr(s), cases[i].want, i);
	}
    }
    unit_end();

    str_free(&s);
    str_free(&u);
    return unit_done();
}
