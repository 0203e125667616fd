/* test-sc_reply.c - unit tests for sc_reply.c: reply lines, enhanced
 * status codes, whole (multi-line) replies read from a stream, the
 * quoted form, and the EHLO keywords. */

#include <string.h>

/* base */
#include "str.h"
#include "stream.h"
#include "unit.h"

/* this program */
#include "sc.h"

/* test_parse_line - code, last-line flag, text; malformed lines */
static void test_parse_line(void)
{
    static const struct {
	const char *line;
	bool ok;
	int code;
	bool last;
	const char *text;
    } cases[] = {
	{"250 Ok", true, 250, true, "Ok"},
	{"250-PIPELINING", true, 250, false, "PIPELINING"},
	{"354", true, 354, true, ""},
	{"550 5.1.1 <a@b>: unknown", true, 550, true, "5.1.1 <a@b>: unknown"},
	{"25 short", false, 0, false, ""},
	{"250_x", false, 0, false, ""},
	{"650 bad class", false, 0, false, ""},
	{"1xx no", false, 0, false, ""},
	{"", false, 0, false, ""},
    };
    size_t i;

    unit_begin("sc_reply_parse_line: codes, continuation, malformed lines");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	int code = 0;
	bool last = false;
	const char *text = "";
	bool ok = sc_reply_parse_line(cases[i].line, strlen(cases[i].line), &code, &last, &text);

	unit_assert_idx(ok == cases[i].ok, i);
	if (ok && cases[i].ok) {
	    unit_assert_idx(code == cases[i].code, i);
	    unit_assert_idx(last == cases[i].last, i);
	    unit_assert_streq_idx(text, cases[i].text, i);
	}
    }
    unit_end();
}

/* test_dsn - the enhanced code is taken only with a matching class */
static void test_dsn(void)
{
    char dsn[16];

    unit_begin("sc_reply_dsn: the enhanced status code of a reply");
    unit_assert(sc_reply_dsn("5.1.1 <a@b>: unknown", 550, dsn, sizeof(dsn)));
    unit_assert_streq(dsn, "5.1.1");
    unit_assert(sc_reply_dsn("4.7.0", 421, dsn, sizeof(dsn)));
    unit_assert_streq(dsn, "4.7.0");
    unit_assert(sc_reply_dsn("5.1.10 null MX", 556, dsn, sizeof(dsn)));
    unit_assert_streq(dsn, "5.1.10");
    unit_assert(!sc_reply_dsn("4.1.1 wrong class", 550, dsn, sizeof(dsn)));
    unit_assert(!sc_reply_dsn("Ok", 250, dsn, sizeof(dsn)));
    unit_assert(!sc_reply_dsn("2.0 short", 250, dsn, sizeof(dsn)));
    unit_assert(!sc_reply_dsn("2.0.0000 long", 250, dsn, sizeof(dsn)));
    unit_assert(!sc_reply_dsn("2.0.0x", 250, dsn, sizeof(dsn)));
    unit_end();
}

/* read_one - read one reply from text; 0/-1 as sc_reply_read */
static int read_one(const char *text, struct sc_reply *r, const char **err)
{
    struct stream *s = stream_open_memory(text, strlen(text), NULL);
    int rc = sc_reply_read(s, 5, r, err);

    stream_free(&s);
    return rc;
}

/* test_read - multi-line replies, quoted, and the refusals */
static void test_read(void)
{
    struct sc_reply r;
    const char *err = "";
    char q[SC_REPLY_TEXT_MAX];
    struct str *big = str_new(1 << 20);
    int i;

    unit_begin("sc_reply_read: multi-line replies, quoting, refusals");
    sc_reply_init(&r);
    unit_assert(read_one("250-first\r\n250-second\r\n250 last\r\n", &r, &err) == 0);
    unit_assert_inteq(r.code, 250);
    unit_assert_streq(str_cstr(r.lines), "first\nsecond\nlast\n");
    sc_reply_quote(&r, q, sizeof(q));
    unit_assert_streq(q, "250 first second last");
    unit_assert(read_one("550 5.1.1 <bob@x>: unknown\r\n", &r, &err) == 0);
    unit_assert_streq(r.dsn, "5.1.1");
    sc_reply_quote(&r, q, sizeof(q));
    unit_assert_streq(q, "550 5.1.1 <bob@x>: unknown");
    /* a bare LF ends a line too; a control or 8-bit byte is shown as "?" */
    unit_assert(read_one("421 4.3.2 bye\x01now\xc3\xa9\n", &r, &err) == 0);
    unit_assert_streq(str_cstr(r.lines), "4.3.2 bye?now??\n");
    /* refusals */
    unit_assert(read_one("250-first\r\n251 other\r\n", &r, &err) < 0);
    unit_assert_streq(err, "reply lines with different codes");
    unit_assert(read_one("hello\r\n", &r, &err) < 0);
    unit_assert_streq(err, "malformed reply line");
    unit_assert(read_one("250-first\r\n", &r, &err) < 0);
    unit_assert_streq(err, "lost connection");
    unit_assert(read_one("", &r, &err) < 0);
    for (i = 0; i < SC_REPLY_LINES_MAX + 1; i++)
	str_append_or_panic(big, "250-x\r\n", 7);
    str_append_or_panic(big, "250 end\r\n", 9);
    unit_assert(read_one(str_cstr(big), &r, &err) < 0);
    unit_assert(strstr(err, "more than") != NULL);
    /* an over-long line: its start is kept, the rest skipped */
    str_reset(big);
    str_append_or_panic(big, "550 ", 4);
    for (i = 0; i < 3 * SC_REPLY_LINE_MAX; i++)
	str_appendc_or_panic(big, 'a');
    str_append_or_panic(big, "\r\n", 2);
    unit_assert(read_one(str_cstr(big), &r, &err) == 0);
    unit_assert_inteq(r.code, 550);
    unit_assert(str_len(r.lines) < SC_REPLY_LINE_MAX + 2);
    sc_reply_fini(&r);
    str_free(&big);
    unit_end();
}

/* test_ext - the EHLO keywords and their arguments */
static void test_ext(void)
{
    struct sc_ext e;

    unit_begin("sc_ext_parse: EHLO keywords");
    sc_ext_parse("mx.example greets you\nPIPELINING\nSIZE 10240000\n8BITMIME\n"
		 "binarymime\nCHUNKING\nSMTPUTF8\nDSN\nENHANCEDSTATUSCODES\n"
		 "AUTH LOGIN PLAIN\n", &e);
    unit_assert(e.flags & SC_EXT_PIPELINING);
    unit_assert(e.flags & SC_EXT_SIZE);
    unit_assert_inteq(e.size_limit, 10240000);
    unit_assert(e.flags & SC_EXT_8BITMIME);
    unit_assert(e.flags & SC_EXT_BINARYMIME);
    unit_assert(e.flags & SC_EXT_CHUNKING);
    unit_assert(e.flags & SC_EXT_SMTPUTF8);
    unit_assert(e.flags & SC_EXT_DSN);
    unit_assert(e.flags & SC_EXT_ENHANCED);
    unit_assert(e.flags & SC_EXT_AUTH);
    unit_assert(e.flags & SC_EXT_AUTH_PLAIN);
    unit_assert(e.flags & SC_EXT_AUTH_LOGIN);
    /* the greeting line is no keyword; SIZE without a number; AUTH= */
    sc_ext_parse("PIPELINING\nSIZE\nAUTH=LOGIN\nXPIPELINING\n8BITMIMEX\n", &e);
    unit_assert(!(e.flags & SC_EXT_PIPELINING));
    unit_assert(!(e.flags & SC_EXT_8BITMIME));
    unit_assert(e.flags & SC_EXT_SIZE);
    unit_assert_inteq(e.size_limit, 0);
    unit_assert(e.flags & SC_EXT_AUTH_LOGIN);
    unit_assert(!(e.flags & SC_EXT_AUTH_PLAIN));
    sc_ext_parse("only a greeting\n", &e);
    unit_assert_inteq(e.flags, 0);
    unit_end();
}

int main(void)
{
    test_parse_line();
    test_dsn();
    test_read();
    test_ext();
    return unit_done();
}
