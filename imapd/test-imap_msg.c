/* test-imap_msg.c - unit tests of imapd's message layer (imap_msg.h):
 * golden ENVELOPE / BODYSTRUCTURE / BODY / sections of real-world and
 * broken messages (test-imap_msg_golden.h, checked against Dovecot),
 * the wire form (bare LF vs CRLF files give the same answers; every
 * partial range), offsets and sizes that add up, the bounds, section
 * syntax, SEARCH matching (RFC 2047, quoted-printable, base64,
 * charsets, case folding) and dates.
 *
 * Where we differ from Dovecot on purpose (not in the golden data):
 * "Content-Type: text" (no subtype) is text/plain here ("text" "" in
 * Dovecot); RFC 2231 continuations with a gap are joined up to the gap
 * (Dovecot then shows the raw pieces); an empty header field gives ""
 * (Dovecot keeps the spaces after the colon but one). */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "str.h"
#include "unit.h"

/* this program */
#include "imap_msg.h"
#include "imap_msg_int.h"
#include "test-imap_msg_golden.h"

#define NGOLDEN	(sizeof(golden) / sizeof(golden[0]))

/* find - a golden message by name */
static const struct golden *find(const char *name)
{
    for (size_t i = 0; i < NGOLDEN; i++)
	if (strcmp(golden[i].name, name) == 0)
	    return &golden[i];
    return NULL;
}

/* crlf - the message with every bare LF made CRLF (caller frees) */
static char *crlf(const char *msg, size_t len, size_t *len_r)
{
    char *out = mem_alloc(len * 2 + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
	if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
	    out[o++] = '\r';
	out[o++] = msg[i];
    }
    out[o] = 0;
    *len_r = o;
    return out;
}

/* section - BODY[text]<origin.count> of m through struct imap_wire,
 * read in pieces of step bytes; NULL on a section error */
static struct str *section(const struct imap_msg *m, const char *text, uint64_t origin,
			   uint64_t count, size_t step)
{
    struct imap_section sec;
    struct imap_section_data sd;
    struct imap_wire w;
    struct str *out;
    const char *err;
    char buf[4096];
    size_t n;
    uint64_t len;

    if (imap_section_parse(text, strlen(text), &sec, &err) < 0)
	return NULL;
    if (imap_section_get(m, &sec, &sd, &err) < 0) {
	imap_section_fini(&sec);
	return NULL;
    }
    len = imap_partial(sd.wire_size, origin, count);
    out = str_new(STR_MAX_HUGE);
    imap_wire_init(&w, sd.data, sd.start, sd.end, origin, len);
    while ((n = imap_wire_read(&w, buf, step < sizeof(buf) ? step : sizeof(buf))) > 0)
	if (!str_try_append(out, buf, n))
	    abort();
    if (str_len(out) != len || imap_wire_left(&w) != 0)
	unit_fail_at(__FILE__, __LINE__, "section %s: %zu octets read, %llu announced",
		     text, str_len(out), (unsigned long long) len);
    imap_section_data_fini(&sd);
    imap_section_fini(&sec);
    return out;
}

/* test_golden - the FETCH strings of every golden message, for the
 * file as it is and with CRLF line ends */
static void test_golden(void)
{
    unit_begin("golden ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE (LF and CRLF files)");
    for (size_t i = 0; i < NGOLDEN; i++) {
	const struct golden *g = &golden[i];

	for (int pass = 0; pass < 2; pass++) {
	    size_t len = g->len;
	    char *copy = pass ? crlf(g->msg, g->len, &len) : mem_memdup(g->msg, g->len + 1);
	    struct imap_msg *m = imap_msg_parse(copy, len);
	    struct str *out = str_new(1 << 20);

	    if (pass == 1 && strcmp(g->name, "barecr") == 0) {
		/* a bare CR stays: this one changes under conversion */
		imap_msg_free(&m);
		str_free(&out);
		mem_free(&copy);
		continue;
	    }
	    unit_assert_idx(imap_msg_envelope(copy, len, out), i);
	    unit_assert_streq_idx(str_cstr(out), g->envelope, i);
	    str_reset(out);
	    unit_assert_idx(imap_msg_bodystructure(m, out), i);
	    unit_assert_streq_idx(str_cstr(out), g->bodystructure, i);
	    str_reset(out);
	    unit_assert_idx(imap_msg_body(m, out), i);
	    unit_assert_streq_idx(str_cstr(out), g->body, i);
	    unit_assert_idx(imap_msg_wire_size(m) == g->size, i);
	    unit_assert_idx(imap_wire_size(copy, len, false) == g->size, i);
	    str_free(&out);
	    imap_msg_free(&m);
	    mem_free(&copy);
	}
    }
    unit_end();
}

/* test_golden_sections - BODY[section] bytes, read in odd pieces */
static void test_golden_sections(void)
{
    size_t n = sizeof(golden_sections) / sizeof(golden_sections[0]);

    unit_begin("golden BODY[section] (LF and CRLF files, pieces of 1, 7 and 4096)");
    for (size_t i = 0; i < n; i++) {
	const struct golden_section *gs = &golden_sections[i];
	const struct golden *g = find(gs->name);

	unit_assert_idx(g != NULL, i);
	if (!g)
	    continue;
	for (int pass = 0; pass < 2; pass++) {
	    size_t len = g->len;
	    char *copy = pass ? crlf(g->msg, g->len, &len) : mem_memdup(g->msg, g->len + 1);
	    struct imap_msg *m = imap_msg_parse(copy, len);
	    static const size_t steps[] = {1, 7, 4096};

	    for (size_t s = 0; s < 3; s++) {
		struct str *got = section(m, gs->section, 0, UINT64_MAX, steps[s]);

		unit_assert_idx(got != NULL, i);
		if (!got)
		    continue;
		if (str_len(got) != gs->len || memcmp(str_cstr(got), gs->data, gs->len) != 0)
		    unit_fail_at(__FILE__, __LINE__, "case %zu (%s [%s], pass %d): got %zu octets "
				 "\"%.60s\", want %zu", i, gs->name, gs->section, pass,
				 str_len(got), str_cstr(got), gs->len);
		str_free(&got);
	    }
	    imap_msg_free(&m);
	    mem_free(&copy);
	}
    }
    unit_end();
}

/* test_partials - every <origin.count> of some sections is the slice
 * of the whole section */
static void test_partials(void)
{
    static const char msg[] = "Subject: x\n\nab\r\ncd\n\nef\ngh\r\n\n";
    static const char *const secs[] = {"", "TEXT", "HEADER", "1", "HEADER.FIELDS (Subject)"};
    struct imap_msg *m = imap_msg_parse(msg, sizeof(msg) - 1);

    unit_begin("partial ranges are slices of the wire form");
    for (size_t s = 0; s < sizeof(secs) / sizeof(secs[0]); s++) {
	struct str *whole = section(m, secs[s], 0, UINT64_MAX, 4096);

	unit_assert(whole != NULL);
	if (!whole)
	    continue;
	for (uint64_t o = 0; o <= str_len(whole) + 1; o++)
	    for (uint64_t c = 0; c <= str_len(whole) + 1; c++) {
		struct str *part = section(m, secs[s], o, c, 1 + (size_t) (o + c) % 3);
		size_t want = o >= str_len(whole) ? 0 : (str_len(whole) - o < c ? str_len(whole) - o : c);

		unit_assert(part && str_len(part) == want
			    && memcmp(str_cstr(part), str_cstr(whole) + (o < str_len(whole) ? o : 0),
				      want) == 0);
		str_free(&part);
	    }
	str_free(&whole);
    }
    /* the whole message: every bare LF became CRLF, nothing else */
    {
	struct str *all = section(m, "", 0, UINT64_MAX, 5);

	unit_assert_streq(str_cstr(all), "Subject: x\r\n\r\nab\r\ncd\r\n\r\nef\r\ngh\r\n\r\n");
	unit_assert_inteq(imap_msg_wire_size(m), str_len(all));
	str_free(&all);
    }
    imap_msg_free(&m);
    unit_end();
}

/* check_tree - offsets nest, sizes are the wire sizes of the ranges */
static void check_tree(const char *data, const struct imap_part *p, size_t end, int *bad)
{
    size_t from = p && p->parent ? p->parent->body_off : 0;

    for (; p; p = p->next) {
	uint64_t lf = 0;

	if (p->hdr_off < from || p->hdr_off + p->hdr_len > p->body_off
	    || p->body_off + p->body_len > end)
	    (*bad)++;
	from = p->body_off + p->body_len;
	if (p->body_len && imap_wire_size(data + p->body_off, p->body_len,
					  p->body_off > 0 && data[p->body_off - 1] == '\r')
	    != p->body_size)
	    (*bad)++;
	if (p->hdr_len && imap_wire_size(data + p->hdr_off, p->hdr_len,
					 p->hdr_off > 0 && data[p->hdr_off - 1] == '\r')
	    != p->hdr_size)
	    (*bad)++;
	for (size_t i = 0; i < p->body_len; i++)
	    lf += data[p->body_off + i] == '\n';
	if (lf != p->body_lines)
	    (*bad)++;
	check_tree(data, p->children, p->body_off + p->body_len, bad);
    }
}

/* test_tree - the parse's offsets and counts on every golden message
 * and on parts cut short by delimiters (found by fuzz_imap_mime) */
static void test_tree(void)
{
    static const char *const cut[] = {
	/* a header ended by a delimiter line, no empty line */
	"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed;"
	" boundary=i\n\n--i\nContent-Type: text/plain\n--o--\n",
	/* an empty part at an outer delimiter */
	"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed;"
	" boundary=i\n\n--i\n--o\n\nz\n--o--\n",
	"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822"
	"\r\n\r\n--o--\r\n",
    };

    unit_begin("part offsets nest; sizes and line counts match the bytes");
    for (size_t i = 0; i < NGOLDEN + sizeof(cut) / sizeof(cut[0]); i++) {
	const char *msg = i < NGOLDEN ? golden[i].msg : cut[i - NGOLDEN];
	size_t len = i < NGOLDEN ? golden[i].len : strlen(msg);
	struct imap_msg *m = imap_msg_parse(msg, len);
	int bad = 0;

	check_tree(msg, imap_msg_root(m), len, &bad);
	unit_assert_idx(bad == 0, i);
	imap_msg_free(&m);
    }
    unit_end();
}

/* test_part_numbers - imap_msg_part on the nested message */
static void test_part_numbers(void)
{
    const struct golden *g = find("nested");
    struct imap_msg *m = imap_msg_parse(g->msg, g->len);
    static const unsigned p21[] = {2, 1}, p3[] = {3}, p5[] = {5}, p0[] = {0}, p111[] = {1, 1, 1},
	p1111[] = {1, 1, 1, 1};
    const struct imap_part *p;

    unit_begin("part numbers: multiparts, message/rfc822, leaves");
    p = imap_msg_part(m, p21, 2);
    unit_assert(p && strcmp(p->type, "text") == 0 && p->charset
		&& strcmp(p->charset, "windows-1252") == 0);
    p = imap_msg_part(m, p3, 1);
    unit_assert(p && strcmp(p->subtype, "octet-stream") == 0 && strcmp(p->encoding, "base64") == 0);
    unit_assert(imap_msg_part(m, p5, 1) == NULL);
    unit_assert(imap_msg_part(m, p0, 1) == NULL);
    unit_assert(imap_msg_part(m, p111, 3) != NULL);	/* 1.1 is a leaf: "1" once */
    unit_assert(imap_msg_part(m, p1111, 4) == NULL);
    unit_assert(imap_msg_part(m, p0, 0) == imap_msg_root(m));
    imap_msg_free(&m);
    unit_end();
}

/* test_section_syntax - imap_section_parse and _format */
static void test_section_syntax(void)
{
    static const struct {
	const char *in, *canon;	/* canon NULL: an error */
    } cases[] = {
	{"", ""},
	{"header", "HEADER"},
	{"1.2.3", "1.2.3"},
	{"1.MIME", "1.MIME"},
	{"2.header.fields (from \"X-A b\" to)", "2.HEADER.FIELDS (FROM \"X-A B\" TO)"},
	{"HEADER.FIELDS.NOT (Received)", "HEADER.FIELDS.NOT (RECEIVED)"},
	{"3.TEXT", "3.TEXT"},
	{"MIME", NULL},
	{"0", NULL},
	{"1.0", NULL},
	{"1.", NULL},
	{".1", NULL},
	{"HEADER.FIELDS", NULL},
	{"HEADER.FIELDS ()", NULL},
	{"HEADER.FIELDS (a", NULL},
	{"HEADER.FIELDS (a) x", NULL},
	{"TEXT.1", NULL},
	{"BOGUS", NULL},
	{"99999999999", NULL},
    };

    unit_begin("section syntax and canonical form");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	struct imap_section sec;
	const char *err = NULL;
	int r = imap_section_parse(cases[i].in, strlen(cases[i].in), &sec, &err);

	if (cases[i].canon == NULL) {
	    unit_assert_idx(r < 0 && err != NULL, i);
	    continue;
	}
	unit_assert_idx(r == 0, i);
	if (r == 0) {
	    struct str *out = str_new(1000);

	    unit_assert_idx(imap_section_format(&sec, out), i);
	    unit_assert_streq_idx(str_cstr(out), cases[i].canon, i);
	    str_free(&out);
	    imap_section_fini(&sec);
	}
    }
    unit_end();
}

/* balanced - parentheses of an IMAP string balance (outside strings
 * and literals) */
static bool balanced(const char *s, size_t len)
{
    long depth = 0;

    for (size_t i = 0; i < len; i++) {
	if (s[i] == '"') {
	    for (i++; i < len && s[i] != '"'; i++)
		if (s[i] == '\\')
		    i++;
	} else if (s[i] == '{') {
	    unsigned long n = strtoul(s + i + 1, NULL, 10);

	    i = (size_t) (strchr(s + i, '}') - s) + 2 + n;
	} else if (s[i] == '(') {
	    depth++;
	} else if (s[i] == ')' && --depth < 0) {
	    return false;
	}
    }
    return depth == 0;
}

/* test_bounds - deep nesting and many parts stay bounded and exact */
static void test_bounds(void)
{
    struct str *msg = str_new(STR_MAX_HUGE), *out = str_new(STR_MAX_HUGE);
    struct imap_msg *m;
    int bad = 0;

    unit_begin("bounds: 300 nested multiparts, 300 nested messages, 8000 parts");
    for (int i = 0; i < 300; i++)
	str_appendf_or_panic(msg, "Content-Type: multipart/mixed; boundary=\"b%d.\"\n\n--b%d.\n", i, i);
    str_appends_or_panic(msg, "\nleaf\n");
    for (int i = 299; i >= 0; i--)
	str_appendf_or_panic(msg, "--b%d.--\n", i);
    m = imap_msg_parse(str_cstr(msg), str_len(msg));
    unit_assert(imap_msg_bodystructure(m, out) && balanced(str_cstr(out), str_len(out)));
    unit_assert(strstr(str_cstr(out), "\"application\" \"octet-stream\"") != NULL);
    unit_assert(imap_msg_wire_size(m) == str_len(msg) + 3 * 300 + 2 + 300);	/* all LFs bare */
    check_tree(str_cstr(msg), imap_msg_root(m), str_len(msg), &bad);
    unit_assert(bad == 0);
    imap_msg_free(&m);

    str_reset(msg);
    str_reset(out);
    for (int i = 0; i < 300; i++)
	str_appends_or_panic(msg, "Content-Type: message/rfc822\n\n");
    str_appends_or_panic(msg, "Subject: bottom\n\nbody\n");
    m = imap_msg_parse(str_cstr(msg), str_len(msg));
    unit_assert(imap_msg_bodystructure(m, out) && balanced(str_cstr(out), str_len(out)));
    imap_msg_free(&m);

    str_reset(msg);
    str_reset(out);
    str_appends_or_panic(msg, "Content-Type: multipart/mixed; boundary=x\n\n");
    for (int i = 0; i < 8000; i++)
	str_appends_or_panic(msg, "--x\n\np\n");
    str_appends_or_panic(msg, "--x--\n");
    m = imap_msg_parse(str_cstr(msg), str_len(msg));
    unit_assert(imap_msg_bodystructure(m, out) && balanced(str_cstr(out), str_len(out)));
    {
	size_t parts = 0;

	for (const struct imap_part *p = imap_msg_root(m)->children; p; p = p->next)
	    parts++;
	unit_assert(parts < IMAP_MSG_MAX_PARTS);
	unit_assert(imap_msg_root(m)->body_size == imap_wire_size(str_cstr(msg) + imap_msg_root(m)->body_off,
							       imap_msg_root(m)->body_len, false));
    }
    imap_msg_free(&m);
    str_free(&msg);
    str_free(&out);
    unit_end();
}

/* test_strings - nstring output */
static void test_strings(void)
{
    struct str *out = str_new(10000);
    char big[1500];

    unit_begin("nstrings: quoted, literal, NIL");
    unit_assert(imap_msg_append_nstring(out, "plain text", 10));
    unit_assert(imap_msg_append_nstring(out, NULL, 0));
    unit_assert(imap_msg_append_nstring(out, "a\"b", 3));
    unit_assert(imap_msg_append_nstring(out, "\xc3\xa9", 2));
    unit_assert(imap_msg_append_nstring(out, "a\0b", 3));
    unit_assert_streq(str_cstr(out), "\"plain text\"NIL{3}\r\na\"b{2}\r\n\xc3\xa9{3}\r\na b");
    memset(big, 'x', sizeof(big));
    str_reset(out);
    unit_assert(imap_msg_append_nstring(out, big, sizeof(big)));
    unit_assert(strncmp(str_cstr(out), "{1500}\r\n", 8) == 0);
    str_free(&out);
    unit_end();
}

/* search - does key occur (header field name, or body/text) */
static bool search(const char *msg, const char *field, int body, const char *key)
{
    struct imap_search_key k;
    bool r;

    imap_search_key_init(&k, key, strlen(key));
    if (field) {
	r = imap_search_header(msg, strlen(msg), field, &k);
    } else {
	struct imap_msg *m = imap_msg_parse(msg, strlen(msg));

	r = imap_search_body(m, body == 2, &k);
	imap_msg_free(&m);
    }
    imap_search_key_fini(&k);
    return r;
}

/* test_search - SEARCH matching */
static void test_search(void)
{
    const struct golden *g = find("nested");
    static const char koi8[] =
	"Subject: =?koi8-r?B?8NLJ18XU?=\nContent-Type: text/plain; charset=koi8-r\n\n"
	"\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2\n";
    static const char latin9[] =
	"Content-Type: text/plain; charset=iso-8859-15\nContent-Transfer-Encoding: quoted-printable\n\n"
	"Price: 5 =A4 =\n(euro)\n";

    unit_begin("SEARCH: header fields with RFC 2047, bodies decoded, case folded");
    unit_assert(search(g->msg, "From", 0, "jörg müller"));
    unit_assert(search(g->msg, "from", 0, "JÖRG"));
    unit_assert(search(g->msg, "FROM", 0, "joerg@EXAMPLE.org"));
    unit_assert(!search(g->msg, "To", 0, "joerg"));
    unit_assert(search(g->msg, "Subject", 0, "GRÜSSE") == false);	/* ß is not ss (simple folding) */
    unit_assert(search(g->msg, "Subject", 0, "grüße and café"));	/* words decoded, joined */
    unit_assert(search(g->msg, "Subject", 0, "CAFÉ NEWS"));
    unit_assert(search(g->msg, "Cc", 0, "friends"));
    unit_assert(search(g->msg, "X-Missing", 0, "") == false);
    unit_assert(search(g->msg, "Message-ID", 0, ""));
    /* BODY: the QP text part (soft line break joined) */
    unit_assert(search(g->msg, NULL, 1, "long enough to be SOFT-broken"));
    unit_assert(search(g->msg, NULL, 1, "grüße aus köln"));
    /* base64 + iso-8859-1 html part */
    unit_assert(search(g->msg, NULL, 1, "<b>GRÜßE</b> aus KÖLN"));
    /* windows-1252 smart quotes and euro, 8bit */
    unit_assert(search(g->msg, NULL, 1, "\xe2\x80\x9csmart quotes\xe2\x80\x9d and \xe2\x82\xacuro"));
    /* as Dovecot: no attachments of other types, no headers inside
     * for BODY; TEXT has them */
    unit_assert(!search(g->msg, NULL, 1, "%PDF-1.4"));
    unit_assert(!search(g->msg, NULL, 2, "übersicht"));
    unit_assert(!search(g->msg, NULL, 1, "subject: inner"));
    unit_assert(search(g->msg, NULL, 2, "subject: inner"));
    unit_assert(search(g->msg, NULL, 2, "content-description: forwarded"));
    unit_assert(!search(g->msg, NULL, 2, "multi-part message in MIME"));	/* preamble */
    /* the top header is TEXT, not BODY */
    unit_assert(!search(g->msg, NULL, 1, "nested.1@example.org"));
    unit_assert(search(g->msg, NULL, 2, "nested.1@example.org"));
    unit_assert(search(g->msg, NULL, 2, "JÖRG MÜLLER"));
    unit_assert(!search(g->msg, NULL, 2, "not in there"));
    unit_assert(search(g->msg, NULL, 1, ""));
    /* iconv: KOI8-R, Cyrillic case folding */
    unit_assert(search(koi8, "Subject", 0, "ПРИВЕТ"));
    unit_assert(search(koi8, NULL, 1, "привет, МИР"));
    /* ISO-8859-15 euro sign, QP soft break */
    unit_assert(search(latin9, NULL, 1, "5 € (EURO)"));
    unit_assert(!search(latin9, NULL, 1, "5 \xc2\xa4"));
    /* a key cut inside a base64 quantum and a UTF-8 sequence still
     * matches (streaming) */
    unit_assert(search("Content-Transfer-Encoding: base64\n\nw6nDqcOpw6nDqcOpw6nDqQ==\n", NULL, 1,
		       "ÉÉÉÉÉÉÉÉ"));
    unit_end();
}

/* test_dates - Date: and IMAP dates */
static void test_dates(void)
{
    static const struct {
	const char *date;
	long day;		/* -1: no date */
    } cases[] = {
	{"Tue, 03 Dec 2024 09:59:58 +0100", 20060},
	{"3 Dec 2024 23:59 -1200", 20060},
	{"Tue,3 Dec 2024 01:00:00 +1400 (X)", 20060},
	{"03-Dec-2024", 20060},
	{"Thu, 1 Jan 70 00:00:00 GMT", 0},
	{"Sat, 1 Jan 49 00:00:00 GMT", 28855},
	{"29 Feb 2023 10:00 +0000", -1},
	{"29 Feb 2024 10:00 +0000", 19782},
	{"garbage", -1},
	{"", -1},
    };
    char buf[IMAP_DATE_SIZE];
    long day;

    unit_begin("Date: for SENTBEFORE etc.; IMAP search dates; INTERNALDATE");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	char msg[200];
	bool ok;

	fmt_buf_or_panic(msg, sizeof(msg), "Subject: x\nDate: %s\n\nbody\n", cases[i].date);
	ok = imap_msg_sent_date(msg, strlen(msg), &day);
	unit_assert_idx(ok == (cases[i].day >= 0), i);
	if (ok)
	    unit_assert_idx(day == cases[i].day, i);
    }
    unit_assert(!imap_msg_sent_date("Subject: no date\n\n", 18, &day));
    unit_assert(imap_search_date_parse("3-Dec-2024", 10, &day) && day == 20060);
    unit_assert(imap_search_date_parse("03-dec-2024", 11, &day) && day == 20060);
    unit_assert(!imap_search_date_parse("32-Dec-2024", 11, &day));
    unit_assert(!imap_search_date_parse("3-Dez-2024", 10, &day));
    unit_assert(!imap_search_date_parse("3-Dec-24", 8, &day));
    unit_assert(imap_day_of_time(86399, 0) == 0 && imap_day_of_time(86399, 1) == 1);
    unit_assert(imap_day_of_time(0, -1) == -1);
    unit_assert(imap_internaldate_format(buf, sizeof(buf), 1733216398, 3600));
    unit_assert_streq(buf, "03-Dec-2024 09:59:58 +0100");
    unit_assert(imap_internaldate_format(buf, sizeof(buf), 1733216398, -(5 * 3600 + 30 * 60)));
    unit_assert_streq(buf, "03-Dec-2024 03:29:58 -0530");
    unit_end();
}

/* test_map_read - small files are read, big ones mapped: the same bytes;
 * the whole message's wire size (FETCH BODY[] without a MIME tree)
 * equals the parsed one, bare LFs and CRLFs alike */
static void test_map_read(void)
{
    static const char *texts[] = {
	"", "\n", "a", "Subject: x\n\nbody\n", "Subject: x\r\n\r\nbody\r\n",
	"\nSubject: x\r\n\nmixed\r\nlines\n\n", "no newline at all",
    };
    size_t sizes[] = {10, IMAP_MSG_READ_MAX, IMAP_MSG_READ_MAX + 1, 3 * IMAP_MSG_READ_MAX};
    size_t i;

    unit_begin("imap_msg_map: read or mapped, same bytes; wire size without parse");
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
	struct imap_msg *m = imap_msg_parse(texts[i], strlen(texts[i]));

	unit_assert_idx(imap_wire_size(texts[i], strlen(texts[i]), false)
			== imap_msg_wire_size(m), i);
	imap_msg_free(&m);
    }
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
	char *buf = mem_alloc(sizes[i]);
	struct imap_msg_data d;
	const char *err;
	FILE *fp = tmpfile();
	int fd;

	for (size_t k = 0; k < sizes[i]; k++)
	    buf[k] = k % 61 == 60 ? '\n' : (char) ('a' + k % 26);
	fwrite(buf, 1, sizes[i], fp);
	fflush(fp);
	fd = fileno(fp);
	unit_assert_idx(imap_msg_map(fd, &d, &err) == 0, i);
	unit_assert_idx(d.len == sizes[i] && memcmp(d.data, buf, sizes[i]) == 0, i);
	unit_assert_idx(d.allocated == (sizes[i] <= IMAP_MSG_READ_MAX), i);
	unit_assert_idx(d.mapped == (sizes[i] > IMAP_MSG_READ_MAX), i);
	imap_msg_unmap(&d);
	unit_assert_idx(!d.allocated && !d.mapped && d.len == 0, i);
	fclose(fp);
	mem_free(&buf);
    }
    unit_end();
}

/* fetch - "--fetch FILE ITEM...": print the FETCH items of the message
 * in FILE as imapd would send them (sections always as literals), for
 * tests/test_imap_msg.py's comparison with Dovecot */
static int fetch(int argc, char **argv)
{
    struct imap_msg_data d;
    struct imap_msg *m;
    struct str *o = str_new(STR_MAX_HUGE);
    const char *err;
    int fd = open(argv[0], O_RDONLY);

    if (fd < 0 || imap_msg_map(fd, &d, &err) < 0)
	return 2;
    close(fd);
    m = imap_msg_parse(d.data, d.len);
    for (int i = 1; i < argc; i++) {
	const char *it = argv[i], *rb, *lb = strchr(it, '[');
	bool ok = i == 1 || str_try_appendc(o, ' ');

	if (!strcasecmp(it, "ENVELOPE"))
	    ok = ok && str_try_appends(o, "ENVELOPE ") && imap_msg_envelope(d.data, d.len, o);
	else if (!strcasecmp(it, "BODYSTRUCTURE"))
	    ok = ok && str_try_appends(o, "BODYSTRUCTURE ") && imap_msg_bodystructure(m, o);
	else if (!strcasecmp(it, "BODY"))
	    ok = ok && str_try_appends(o, "BODY ") && imap_msg_body(m, o);
	else if (!strcasecmp(it, "RFC822.SIZE"))
	    ok = ok && str_try_appendf(o, "RFC822.SIZE %llu",
				       (unsigned long long) imap_msg_wire_size(m));
	else if (lb && !strncasecmp(it, "BODY", 4) && (rb = strrchr(lb, ']')) != NULL) {
	    unsigned long long origin = 0, count = UINT64_MAX;
	    char *text = mem_strndup(lb + 1, (size_t) (rb - lb - 1));
	    struct str *sec;

	    if (rb[1] == '<' && sscanf(rb + 2, "%llu.%llu", &origin, &count) != 2)
		return 2;
	    sec = section(m, text, origin, count, 4096);
	    mem_free(&text);
	    if (!sec)
		return 3;
	    ok = ok && str_try_appends(o, "BODY") && str_try_append(o, lb, (size_t) (rb - lb + 1))
		&& (rb[1] != '<' || str_try_appendf(o, "<%llu>", origin))
		&& str_try_appendf(o, " {%zu}\r\n", str_len(sec))
		&& str_try_append(o, str_cstr(sec), str_len(sec));
	    str_free(&sec);
	} else {
	    return 2;
	}
	if (!ok)
	    return 4;
    }
    fwrite(str_cstr(o), 1, str_len(o), stdout);
    imap_msg_free(&m);
    imap_msg_unmap(&d);
    str_free(&o);
    return 0;
}

/* search_cmd - "--search FILE body|text|HEADER-NAME KEY": print 1 if
 * the message matches SEARCH BODY / TEXT / HEADER name, else 0 */
static int search_cmd(char **argv)
{
    struct imap_msg_data d;
    const char *err;
    int fd = open(argv[0], O_RDONLY);
    int r;

    if (fd < 0 || imap_msg_map(fd, &d, &err) < 0)
	return 2;
    close(fd);
    {
	struct imap_msg *m = imap_msg_parse(d.data, d.len);
	struct imap_search_key k;

	imap_search_key_init(&k, argv[2], strlen(argv[2]));
	if (strcmp(argv[1], "body") == 0 || strcmp(argv[1], "text") == 0)
	    r = imap_search_body(m, strcmp(argv[1], "text") == 0, &k);
	else
	    r = imap_search_header(d.data, d.len, argv[1], &k);
	imap_search_key_fini(&k);
	imap_msg_free(&m);
    }
    imap_msg_unmap(&d);
    printf("%d\n", r);
    return 0;
}

/* unfold_ref - imap_hdr_unfold as it was, a byte at a time (the
 * reference the faster one must equal) */
static void unfold_ref(const char *v, size_t len, size_t max, struct str *out)
{
    size_t i = 0;

    str_reset(out);
    while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
	i++;
    for (; i < len && str_len(out) < max; i++) {
	char c = v[i];
	bool ok;

	if (c == '\r' && i + 1 < len && v[i + 1] == '\n')
	    continue;
	if (c == '\n') {
	    while (i + 1 < len && (v[i + 1] == ' ' || v[i + 1] == '\t'))
		i++;
	    ok = str_try_appendc(out, ' ');
	} else if (c == 0) {
	    ok = str_try_append(out, "\xef\xbf\xbd", 3);
	} else {
	    ok = str_try_appendc(out, c == '\r' ? ' ' : c);
	}
	if (!ok)
	    break;
    }
    while (str_len(out) > 0 && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
	(void) str_truncate(out, out->len - 1);
}

static void test_unfold(void)
{
    static const char alphabet[] = "ab \t\r\n\0:x";
    struct str *a = str_new(4096), *b = str_new(4096);
    char v[64];
    unsigned seed = 12345;
    size_t k, i, len, max;

    unit_begin("imap_hdr_unfold: runs copied whole, the same as a byte at a time");
    {
	static const char h[] = " Re: a\r\n\tfolded\n  subject\0!\r ";

	imap_hdr_unfold(h, sizeof(h) - 1, 1000, a);
	unit_assert_streq(str_cstr(a), "Re: a folded subject\xef\xbf\xbd!");
    }
    imap_hdr_unfold("abcdefgh", 8, 5, a);
    unit_assert_streq(str_cstr(a), "abcde");
    for (k = 0; k < 20000; k++) {
	seed = seed * 1103515245 + 12345;
	len = (seed >> 16) % sizeof(v);
	for (i = 0; i < len; i++) {
	    seed = seed * 1103515245 + 12345;
	    v[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
	}
	max = k % 3 == 0 ? 1000 : (seed >> 8) % 40;
	imap_hdr_unfold(v, len, max, a);
	unfold_ref(v, len, max, b);
	unit_assert_idx(str_len(a) == str_len(b)
			&& memcmp(str_cstr(a), str_cstr(b), str_len(a)) == 0, k);
    }
    str_free(&a);
    str_free(&b);
    unit_end();
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--fetch") == 0)
	return fetch(argc - 2, argv + 2);
    if (argc == 5 && strcmp(argv[1], "--search") == 0)
	return search_cmd(argv + 2);
    test_golden();
    test_golden_sections();
    test_partials();
    test_tree();
    test_part_numbers();
    test_section_syntax();
    test_bounds();
    test_strings();
    test_search();
    test_dates();
    test_map_read();
    test_unfold();
    return unit_done();
}
