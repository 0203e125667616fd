/* test-smtp_data.c - unit tests for the SMTP content parser (smtp_data.c)
 * that smtpd and sendmail -bs share: end of data only at CR LF . CR LF,
 * dot-unstuffing, bare CR/LF policy, line pieces, size limit, BDAT binary
 * mode (no line break ever inside a record). */

#include <string.h>

#include "mem.h"
#include "queue_file.h"
#include "str.h"
#include "unit.h"

#include "smtp_data.h"

/* collect - emit callback: "L:text|C:text|" */
static int collect(void *ctx, int type, const char *data, size_t len)
{
    struct str *out = ctx;

    str_appendc_or_panic(out, (char) type);
    str_appendc_or_panic(out, ':');
    for (size_t i = 0; i < len; i++) {
	if (data[i] == '\r')
	    str_appends_or_panic(out, "\\r");
	else if (data[i] == '\n')
	    str_appends_or_panic(out, "\\n");
	else
	    str_appendc_or_panic(out, data[i]);
    }
    str_appendc_or_panic(out, '|');
    return 0;
}

static int failing(void *ctx, int type, const char *data, size_t len)
{
    (void) ctx;
    (void) type;
    (void) data;
    (void) len;
    return -1;
}

#define M_DATA		1	/* dot mode */
#define M_BINARY	2
#define M_REJECT	4

static const struct {
    int mode;
    const char *in;
    size_t split;		/* feed in pieces of this size (0: at once) */
    const char *want;		/* emitted records */
    int done;			/* end of data seen */
    size_t rest;		/* bytes not consumed */
    int bare_lf, bare_cr, stray_dot;
    size_t inlen;		/* 0: strlen(in) */
} cases[] = {
    /* the normal case; what follows the end is not consumed */
    {M_DATA, "a\r\nb\r\n.\r\nQUIT\r\n", 0, "L:a|L:b|", 1, 6, 0, 0, 0, 0},
    {M_DATA, ".\r\n", 0, "", 1, 0, 0, 0, 0, 0},			/* empty message */
    {M_DATA, "a\r\n.\r\n", 1, "L:a|", 1, 0, 0, 0, 0, 0},		/* byte by byte */
    /* dot-unstuffing */
    {M_DATA, "..\r\n...x\r\n.y\r\n.\r\n", 0, "L:.|L:..x|L:y|", 1, 0, 0, 0, 0, 0},
    /* smuggling shapes never end the data */
    {M_DATA, "a\n.\nb\r\n.\r\n", 0, "L:a|L:.|L:b|", 1, 0, 1, 0, 1, 0},
    {M_DATA, "a\r.\rb\r\n.\r\n", 0, "L:a|L:.|L:b|", 1, 0, 0, 1, 1, 0},
    {M_DATA, "a\n.\r\nRSET\r\n.\r\n", 0, "L:a|L:.|L:RSET|", 1, 0, 1, 0, 1, 0},
    {M_DATA, "a\r\n.\nb\r\n.\r\n", 0, "L:a|L:.|L:b|", 1, 0, 1, 0, 1, 0},
    {M_DATA, "a\r\n.\r.\r\n", 0, "L:a|L:.|L:.|", 0, 0, 0, 1, 1, 0},
    /* bare LF/CR become line ends (normalize) */
    {M_DATA, "x\ny\rz\r\n.\r\n", 0, "L:x|L:y|L:z|", 1, 0, 1, 1, 0, 0},
    {M_DATA, "x\r\r\n.\r\n", 0, "L:x|L:|", 1, 0, 0, 1, 0, 0},
    /* reject mode: same parsing, nothing emitted after the first bare end */
    {M_DATA | M_REJECT, "x\r\ny\nz\r\n.\r\n", 0, "L:x|", 1, 0, 1, 0, 0, 0},
    /* long lines become C pieces of at most 8 bytes */
    {M_DATA, "0123456789abcdefXY\r\n.\r\n", 0, "C:01234567|C:89abcdef|L:XY|", 1, 0, 0, 0, 0, 0},
    {M_DATA, "01234567\r\n.\r\n", 0, "L:01234567|", 1, 0, 0, 0, 0, 0},
    {M_DATA, "012345678\r\n.\r\n", 3, "C:01234567|L:8|", 1, 0, 0, 0, 0, 0},
    /* a dot line made of pieces is not the end */
    {M_DATA, ".01234567\r\n.\r\n", 0, "L:01234567|", 1, 0, 0, 0, 0, 0},
    /* CR LF split across feeds */
    {M_DATA, "ab\r\n.\r\n", 3, "L:ab|", 1, 0, 0, 0, 0, 0},
    /* NUL bytes are data */
    {M_DATA, "a\0b\r\n.\r\n", 0, "L:a", 1, 0, 0, 0, 0, 8},	/* (printed up to NUL) */
    /* BDAT: no dot handling, no end */
    {0, ".\r\n..x\r\nlast", 0, "L:.|L:..x|L:last|", 0, 0, 0, 0, 0, 0},
    {0, "a\nb\r\n", 0, "L:a|L:b|", 0, 0, 1, 0, 0, 0},
    /* BINARYMIME: bare CR and LF are no error, but still end a line: a
     * record never holds a line break (no forged mbox "From " line, no
     * header hidden from cleanup) */
    {M_BINARY, "a\nb\rc\r\nd", 0, "L:a|L:b|L:c|L:d|", 0, 0, 1, 1, 0, 0},
    {M_BINARY, "a\r", 0, "L:a|", 0, 0, 0, 1, 0, 0},
    {M_BINARY | M_REJECT, "h\r\n\r\nx\nFrom e\nBcc: f\r\n", 0,
     "L:h|L:|L:x|L:From e|L:Bcc: f|", 0, 0, 1, 0, 0, 0},
};

int main(void)
{
    unit_begin("content parser cases");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	struct smtp_data c;
	struct str *out = str_new(4096);
	size_t len = cases[i].inlen ? cases[i].inlen : strlen(cases[i].in), used = 0;
	const char *in = cases[i].in;

	smtp_data_init(&c, ((cases[i].mode & M_DATA) ? SMTP_DATA_DOT : 0)
		       | ((cases[i].mode & M_BINARY) ? SMTP_DATA_BINARY : 0)
		       | ((cases[i].mode & M_REJECT) ? SMTP_DATA_REJECT_BARE : 0), 8, 0, collect, out);
	while (used < len && !c.done) {
	    size_t n = cases[i].split ? cases[i].split : len;

	    if (n > len - used)
		n = len - used;
	    used += smtp_data_feed(&c, in + used, n);
	}
	if (!(cases[i].mode & M_DATA))
	    smtp_data_finish(&c);
	unit_assert_streq_idx(str_cstr(out), cases[i].want, i);
	unit_assert_idx(c.done == (cases[i].done || !(cases[i].mode & M_DATA)), i);
	if (cases[i].mode & M_DATA)
	    unit_assert_idx(len - used == cases[i].rest, i);
	unit_assert_idx(c.bare_lf == (cases[i].bare_lf != 0), i);
	unit_assert_idx(c.bare_cr == (cases[i].bare_cr != 0), i);
	unit_assert_idx(c.stray_dot == (cases[i].stray_dot != 0), i);
	unit_assert_idx(smtp_data_failed(&c) == ((cases[i].mode & M_REJECT) && !(cases[i].mode & M_BINARY)
						  && (c.bare_lf || c.bare_cr)), i);
	smtp_data_fini(&c);
	str_free(&out);
    }
    unit_end();

    unit_begin("content size limit: counted with CR LF, nothing emitted past it");
    {
	struct smtp_data c;
	struct str *out = str_new(4096);
	const char *in = "12345\r\n12345\r\n12345\r\n.\r\n";

	smtp_data_init(&c, SMTP_DATA_DOT, 2048, 15, collect, out);
	unit_assert_inteq(smtp_data_feed(&c, in, strlen(in)), strlen(in));
	unit_assert(c.done);
	unit_assert(c.too_big);
	unit_assert(smtp_data_failed(&c));
	unit_assert_streq(str_cstr(out), "L:12345|L:12345|");
	unit_assert_inteq(c.size, 21);
	smtp_data_fini(&c);
	in = "12345\r\n12345\r\n.\r\n";
	smtp_data_init(&c, SMTP_DATA_DOT, 2048, 14, collect, out);
	str_reset(out);
	smtp_data_feed(&c, in, strlen(in));
	unit_assert(c.done);
	unit_assert(!c.too_big);
	unit_assert_inteq(c.size, 14);
	unit_assert_streq(str_cstr(out), "L:12345|L:12345|");
	smtp_data_fini(&c);
	smtp_data_init(&c, SMTP_DATA_DOT, 2048, 13, collect, out);
	str_reset(out);
	smtp_data_feed(&c, in, strlen(in));
	unit_assert(c.too_big);
	unit_assert_streq(str_cstr(out), "L:12345|");
	smtp_data_fini(&c);
	str_free(&out);
    }
    unit_end();

    unit_begin("content write error is sticky");
    {
	struct smtp_data c;
	const char *in = "a\r\nb\r\n.\r\n";

	smtp_data_init(&c, SMTP_DATA_DOT, 2048, 0, failing, NULL);
	smtp_data_feed(&c, in, strlen(in));
	unit_assert(c.done);
	unit_assert(c.write_error);
	unit_assert(smtp_data_failed(&c));
	smtp_data_fini(&c);
    }
    unit_end();

    unit_begin("a large message in random pieces gives the same records");
    {
	struct str *msg = str_new(1 << 20), *a = str_new(1 << 21), *b = str_new(1 << 21);
	struct smtp_data c;
	unsigned seed = 7;

	for (int i = 0; i < 2000; i++) {
	    int n = (int) ((seed = seed * 1103515245u + 12345u) >> 16) % 40;

	    if (i % 97 == 0)
		str_appends_or_panic(msg, ".");
	    for (int k = 0; k < n; k++)
		str_appendc_or_panic(msg, (char) ('a' + k % 26));
	    str_appends_or_panic(msg, "\r\n");
	}
	str_appends_or_panic(msg, ".\r\n");
	smtp_data_init(&c, SMTP_DATA_DOT, 16, 0, collect, a);
	unit_assert_inteq(smtp_data_feed(&c, str_cstr(msg), str_len(msg)), str_len(msg));
	unit_assert(c.done);
	smtp_data_fini(&c);
	smtp_data_init(&c, SMTP_DATA_DOT, 16, 0, collect, b);
	for (size_t used = 0; used < str_len(msg) && !c.done;) {
	    size_t n = 1 + ((seed = seed * 1103515245u + 12345u) >> 16) % 50;

	    if (n > str_len(msg) - used)
		n = str_len(msg) - used;
	    used += smtp_data_feed(&c, str_cstr(msg) + used, n);
	}
	unit_assert(c.done);
	unit_assert_inteq(c.lines, 2000);
	unit_assert(strcmp(str_cstr(a), str_cstr(b)) == 0);
	smtp_data_fini(&c);
	str_free(&msg);
	str_free(&a);
	str_free(&b);
    }
    unit_end();

    unit_begin("whole lines at once and byte by byte give the same records and size");
    {
	static const char *const inputs[] = {
	    "abcd\r\n..\r\n.x\r\n\r\n.\r\n",
	    "12345678\r\n.12345678\r\n123456789\r\n.123456789\r\n.\r\n",
	    "a\nb\r\n.\r\nc\r\r\n.\r\n",
	    "..\r\n.\nx\r\n.\r\nREST\r\n",
	};

	for (size_t t = 0; t < sizeof(inputs) / sizeof(inputs[0]); t++) {
	    for (int dot = 0; dot < 2; dot++) {
		const char *in = inputs[t];
		struct str *a = str_new(4096), *b = str_new(4096);
		struct smtp_data c1, c2;
		size_t used1, used2 = 0;

		smtp_data_init(&c1, dot ? SMTP_DATA_DOT : 0, 8, 0, collect, a);
		used1 = smtp_data_feed(&c1, in, strlen(in));
		smtp_data_init(&c2, dot ? SMTP_DATA_DOT : 0, 8, 0, collect, b);
		while (used2 < strlen(in) && !c2.done)
		    used2 += smtp_data_feed(&c2, in + used2, 1);
		unit_assert_streq(str_cstr(a), str_cstr(b));
		unit_assert_inteq(used1, used2);
		unit_assert_inteq(c1.size, c2.size);
		unit_assert_inteq(c1.lines, c2.lines);
		unit_assert_inteq(c1.done, c2.done);
		unit_assert_inteq(c1.stray_dot, c2.stray_dot);
		unit_assert_inteq(c1.bare_lf, c2.bare_lf);
		unit_assert_inteq(c1.bare_cr, c2.bare_cr);
		smtp_data_fini(&c1);
		smtp_data_fini(&c2);
		str_free(&a);
		str_free(&b);
	    }
	}
    }
    unit_end();

    unit_begin("smtpd_forbid_bare_newline values");
    unit_assert_inteq(smtp_data_bare_policy("reject"), 1);
    unit_assert_inteq(smtp_data_bare_policy("REJECT"), 1);
    unit_assert_inteq(smtp_data_bare_policy("normalize"), 0);
    unit_assert_inteq(smtp_data_bare_policy("yes"), 0);
    unit_assert_inteq(smtp_data_bare_policy("no"), 0);
    unit_assert_inteq(smtp_data_bare_policy("maybe"), -1);
    unit_assert_inteq(smtp_data_bare_policy(""), -1);
    unit_end();

    return unit_done();
}
