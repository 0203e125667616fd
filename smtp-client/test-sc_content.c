/* test-sc_content.c - unit tests for sc_content.c: queue-file content
 * written with queue_file.h into a temporary file, then scanned and
 * written through a sink that collects the bytes: CR LF on every line,
 * joined C records, dot-stuffing, folding, the quoted-printable
 * conversions (decoded again and compared) and what cannot be
 * converted. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* mail */
#include "queue_file.h"

/* this program */
#include "sc_content.h"

#define PREAMBLE_TEXT	"garbage before the message record"

/* A message built in memory: its queue file content. */
struct msgfile {
    int fd;
    long offset;			/* of the M record */
};

/* mf_open - a temporary file with some bytes before the M record */
static void mf_open(struct msgfile *mf, struct stream **sp)
{
    char path[] = "/tmp/test-sc_content.XXXXXX";

    if ((mf->fd = mkstemp(path)) < 0)
	msg_fatal("mkstemp: %m");
    (void) unlink(path);
    if (write(mf->fd, PREAMBLE_TEXT, strlen(PREAMBLE_TEXT)) < 0)
	msg_fatal("write: %m");
    mf->offset = (long) strlen(PREAMBLE_TEXT);
    *sp = stream_open(mf->fd);
    if (qf_put(*sp, QF_REC_MESSAGE, "", 0) < 0)
	msg_fatal("qf_put");
}

/* mf_close - end the content and flush */
static void mf_close(struct stream **sp)
{
    if (qf_put(*sp, QF_REC_XEND, "", 0) < 0 || qf_puts(*sp, QF_REC_END, "") < 0
	|| stream_flush(*sp) < 0)
	msg_fatal("write queue file");
    stream_free(sp);
}

/* mf_text - a message from text: "\n" separates lines, each line stored
 * in records of at most piece bytes (C records, then L) */
static void mf_text(struct msgfile *mf, const char *text, size_t len, size_t piece)
{
    struct stream *s;
    const char *p = text, *end = text + len, *nl;

    mf_open(mf, &s);
    while (p < end) {
	if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL)
	    nl = end;
	if (qf_put_line(s, p, (size_t) (nl - p), piece) < 0)
	    msg_fatal("qf_put_line");
	p = nl + 1;
    }
    mf_close(&s);
}

/* Sink: collects into a str; fails after fail_after bytes if >= 0. */
struct collect {
    struct str *out;
    long fail_after;
    int calls;
};

/* collect_write - the sink */
static int collect_write(void *ctx, const char *data, size_t len, const char **error_r)
{
    struct collect *c = ctx;

    c->calls++;
    if (c->fail_after >= 0 && (long) (str_len(c->out) + len) > c->fail_after) {
	*error_r = "test sink: connection broke";
	return -1;
    }
    str_append_or_panic(c->out, data, len);
    return 0;
}

/* run_write - write the content of text with flags; the output in out */
static enum sc_content_status run_write(const char *text, size_t len, size_t piece, long limit,
					unsigned flags, struct str *out, const char **error_r)
{
    struct msgfile mf;
    struct collect c = { out, -1, 0 };
    struct sc_sink sink = { collect_write, &c };
    enum sc_content_status st;

    str_reset(out);
    mf_text(&mf, text, len, piece);
    st = sc_content_write(mf.fd, mf.offset, limit, flags, &sink, error_r);
    close(mf.fd);
    return st;
}

/* run_scan - scan the content of text */
static int run_scan(const char *text, size_t len, size_t piece, long limit,
		    struct sc_content_info *info)
{
    struct msgfile mf;
    const char *err = NULL;
    int ret;

    mf_text(&mf, text, len, piece);
    ret = sc_content_scan(mf.fd, mf.offset, limit, info, &err);
    close(mf.fd);
    return ret;
}

/* test_plain - a plain message: CR LF everywhere, nothing else changed */
static void test_plain(void)
{
    const char *msg = "From: a@example\nSubject: hi\n\nline 1\n\nline 3";
    struct str *out = str_new(1 << 20);
    struct sc_content_info info;
    const char *err = NULL;

    unit_begin("plain message: CR LF on every line, the last one too");
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, 0, out, &err), SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), "From: a@example\r\nSubject: hi\r\n\r\nline 1\r\n\r\nline 3\r\n");
    unit_assert_inteq(run_scan(msg, strlen(msg), 1000, 998, &info), 0);
    unit_assert(!info.header_8bit && !info.body_8bit && !info.binary && !info.long_lines);
    unit_assert(!info.mime);
    unit_assert_inteq(info.lines, 6);
    unit_assert_inteq(info.size, (long) strlen(msg) + 6 + 1);
    msg = "Subject: x\nMime-Version : 1.0\n\nbody \xc3\xa4\n";
    unit_assert_inteq(run_scan(msg, strlen(msg), 1000, 998, &info), 0);
    unit_assert(info.mime && info.body_8bit && !info.header_8bit);
    msg = "Subject: \xc3\xa4\n\nMIME-Version: 1.0\nx\ry\n";
    unit_assert_inteq(run_scan(msg, strlen(msg), 1000, 5, &info), 0);
    unit_assert(!info.mime && !info.body_8bit && info.header_8bit && info.binary);
    unit_assert(info.long_lines);
    unit_end();
    str_free(&out);
}

/* test_dot_stuff - a leading "." doubled with SC_OUT_DOT_STUFF only */
static void test_dot_stuff(void)
{
    const char *msg = "Subject: dots\n\n.\n..x\n a.\n.end";
    struct str *out = str_new(1 << 20);
    const char *err = NULL;

    unit_begin("dot-stuffing: only with SC_OUT_DOT_STUFF, only at a line start");
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, SC_OUT_DOT_STUFF, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), "Subject: dots\r\n\r\n..\r\n...x\r\n a.\r\n..end\r\n");
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, 0, out, &err), SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), "Subject: dots\r\n\r\n.\r\n..x\r\n a.\r\n.end\r\n");
    unit_end();
    str_free(&out);
}

/* test_cont_join - C records are joined into one line */
static void test_cont_join(void)
{
    const char *msg = "Subject: joined from pieces\n\n.a line in many small pieces\nx";
    struct str *out = str_new(1 << 20);
    struct sc_content_info info;
    const char *err = NULL;

    unit_begin("C records: pieces of one line joined again (piece sizes 1, 2, 3, 7)");
    for (size_t piece = 1; piece <= 7; piece += (piece < 3 ? 1 : 4)) {
	unit_assert_inteq(run_write(msg, strlen(msg), piece, 998, SC_OUT_DOT_STUFF, out, &err),
			  SC_CONTENT_OK);
	unit_assert_streq(str_cstr(out),
			  "Subject: joined from pieces\r\n\r\n..a line in many small pieces\r\nx\r\n");
	unit_assert_inteq(run_scan(msg, strlen(msg), piece, 998, &info), 0);
	unit_assert_inteq(info.lines, 4);
    }
    unit_end();
    str_free(&out);
}

/* max_line - the longest line of CR LF text, and whether every LF
 * follows a CR and every CR precedes an LF */
static size_t max_line(const struct str *s, bool *canonical)
{
    size_t longest = 0, cur = 0;

    *canonical = true;
    for (size_t i = 0; i < str_len(s); i++) {
	char c = s->data[i];

	if (c == '\r') {
	    if (i + 1 >= str_len(s) || s->data[i + 1] != '\n')
		*canonical = false;
	} else if (c == '\n') {
	    if (i == 0 || s->data[i - 1] != '\r')
		*canonical = false;
	    if (cur - 1 > longest)
		longest = cur - 1;
	    cur = 0;
	    continue;
	}
	cur++;
    }
    if (cur > 0)
	*canonical = false;		/* no CR LF at the end */
    return longest;
}

/* test_header_fold - long header lines folded at white space or broken */
static void test_header_fold(void)
{
    struct str *msg = str_new(1 << 20), *out = str_new(1 << 20);
    const char *err = NULL;
    bool canonical;

    unit_begin("header lines over the limit: folded at white space, else CR LF SP");
    str_appends_or_panic(msg, "Subject:");
    for (int i = 0; i < 30; i++)
	str_appends_or_panic(msg, " word");
    str_appends_or_panic(msg, "\nX-Long: ");
    for (int i = 0; i < 200; i++)
	str_appendc_or_panic(msg, (char) ('a' + i % 26));
    str_appends_or_panic(msg, "\n\nbody");
    unit_assert_inteq(run_write(str_cstr(msg), str_len(msg), 7, 78, 0, out, &err), SC_CONTENT_OK);
    unit_assert(max_line(out, &canonical) <= 78);
    unit_assert(canonical);
    /* folding only inserted CR LF (and SP where it had to) */
    {
	struct str *want = str_new(4096);

	str_appends_or_panic(want, "Subject:");
	for (int i = 0; i < 14; i++)
	    str_appends_or_panic(want, " word");
	str_appends_or_panic(want, "\r\n");
	for (int i = 0; i < 15; i++)
	    str_appends_or_panic(want, " word");
	str_appends_or_panic(want, "\r\n word\r\nX-Long:\r\n ");
	for (int i = 0; i < 200; i++) {
	    str_appendc_or_panic(want, (char) ('a' + i % 26));
	    if (i == 76 || i == 153)
		str_appends_or_panic(want, "\r\n ");
	}
	str_appends_or_panic(want, "\r\n\r\nbody\r\n");
	unit_assert_streq(str_cstr(out), str_cstr(want));
	str_free(&want);
    }
    unit_assert(strstr(str_cstr(out), "\r\n\r\nbody\r\n") != NULL);
    unit_end();
    str_free(&msg);
    str_free(&out);
}

/* test_sink_error - a failing sink stops the write with its text */
static void test_sink_error(void)
{
    struct str *msg = str_new(1 << 20), *out = str_new(1 << 20);
    struct msgfile mf;
    struct collect c = { out, 10, 0 };
    struct sc_sink sink = { collect_write, &c };
    const char *err = NULL;

    unit_begin("a sink error ends the write with SC_CONTENT_SINK_ERROR and the sink's text");
    str_appends_or_panic(msg, "Subject: big\n\n");
    for (int i = 0; i < 20000; i++)
	str_appends_or_panic(msg, "a body line of some length\n");
    mf_text(&mf, str_cstr(msg), str_len(msg), 1000);
    unit_assert_inteq(sc_content_write(mf.fd, mf.offset, 998, 0, &sink, &err),
		      SC_CONTENT_SINK_ERROR);
    unit_assert_streq(err, "test sink: connection broke");
    unit_assert_inteq(c.calls, 1);
    close(mf.fd);
    unit_end();
    str_free(&msg);
    str_free(&out);
}

/* test_read_error - a file without content records is a read error */
static void test_read_error(void)
{
    struct sc_content_info info;
    struct str *out = str_new(1024);
    struct collect c = { out, -1, 0 };
    struct sc_sink sink = { collect_write, &c };
    const char *err = NULL;
    char path[] = "/tmp/test-sc_content.XXXXXX";
    int fd;

    unit_begin("a truncated queue file: -1 / SC_CONTENT_READ_ERROR");
    if ((fd = mkstemp(path)) < 0)
	msg_fatal("mkstemp: %m");
    (void) unlink(path);
    if (write(fd, "M\0\0\0\0L\0\0\0\2ab", 12) != 12)
	msg_fatal("write: %m");
    unit_assert_inteq(sc_content_scan(fd, 0, 998, &info, &err), -1);
    unit_assert(err != NULL);
    unit_assert_inteq(sc_content_write(fd, 0, 998, 0, &sink, &err), SC_CONTENT_READ_ERROR);
    close(fd);
    unit_end();
    str_free(&out);
}


/* crlf - text with "\n" line ends as CR LF text */
static const char *crlf(const char *text)
{
    static struct str *buf;

    if (buf == NULL)
	buf = str_new(1 << 20);
    str_reset(buf);
    for (const char *p = text; *p; p++) {
	if (*p == '\n')
	    str_appendc_or_panic(buf, '\r');
	str_appendc_or_panic(buf, *p);
    }
    return str_cstr(buf);
}

/* hexval - a hex digit's value, or -1 */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
	return c - '0';
    if (c >= 'A' && c <= 'F')
	return c - 'A' + 10;
    return -1;
}

/* qp_decode - decode quoted-printable CR LF text (RFC 2045 6.7) into
 * out, lines joined by "\n"; false if it is not valid: a line over 76,
 * trailing white space, a lower-case or broken escape, a byte that must
 * be encoded, or a soft break line that starts with "-" */
static bool qp_decode(const char *text, size_t len, struct str *out)
{
    const char *p = text, *end = text + len;
    bool after_soft = false;

    str_reset(out);
    while (p < end) {
	const char *eol = memmem(p, (size_t) (end - p), "\r\n", 2);
	size_t n;
	bool soft = false;

	if (eol == NULL)
	    return false;
	n = (size_t) (eol - p);
	if (n > 76 || (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')))
	    return false;
	if (after_soft && n > 0 && p[0] == '-')
	    return false;
	if (n > 0 && p[n - 1] == '=') {
	    soft = true;
	    n--;
	}
	for (size_t i = 0; i < n; i++) {
	    unsigned char c = (unsigned char) p[i];

	    if (c == '=') {
		int hi, lo;

		if (i + 2 >= n || (hi = hexval(p[i + 1])) < 0
		    || (lo = hexval(p[i + 2])) < 0)
		    return false;
		str_appendc_or_panic(out, (char) (hi * 16 + lo));
		i += 2;
	    } else if ((c >= 33 && c <= 126) || c == ' ' || c == '\t') {
		str_appendc_or_panic(out, (char) c);
	    } else {
		return false;
	    }
	}
	if (!soft)
	    str_appendc_or_panic(out, '\n');
	after_soft = soft;
	p = eol + 2;
    }
    return true;
}

/* body_of - the output after the first empty line */
static const char *body_of(const struct str *out)
{
    const char *b = strstr(str_cstr(out), "\r\n\r\n");

    return b ? b + 4 : "";
}

/* test_long_body_qp - a long body line: the message becomes MIME, QP */
static void test_long_body_qp(void)
{
    struct str *msg = str_new(1 << 20), *out = str_new(1 << 20), *dec = str_new(1 << 20);
    const char *err = NULL;
    bool canonical;

    unit_begin("long body line, no MIME: MIME headers (us-ascii) added, body quoted-printable");
    str_appends_or_panic(msg, "From: a@example\nContent-Type: text/html\nSubject: long\n\nshort\n");
    for (int i = 0; i < 3000; i++)
	str_appendc_or_panic(msg, (char) ('a' + i % 26));
    str_appends_or_panic(msg, "\n");
    for (int i = 0; i < 300; i++)
	str_appendc_or_panic(msg, '-');
    str_appends_or_panic(msg, "\n-- \n.last = line ");
    unit_assert_inteq(run_write(str_cstr(msg), str_len(msg), 500, 998, SC_OUT_DOT_STUFF, out, &err),
		      SC_CONTENT_OK);
    unit_assert(strncmp(str_cstr(out), crlf("From: a@example\nSubject: long\nMIME-Version: 1.0\n"
					    "Content-Type: text/plain; charset=us-ascii\n"
					    "Content-Transfer-Encoding: quoted-printable\n\nshort\n"),
			strlen(crlf("From: a@example\nSubject: long\nMIME-Version: 1.0\n"
				    "Content-Type: text/plain; charset=us-ascii\n"
				    "Content-Transfer-Encoding: quoted-printable\n\nshort\n"))) == 0);
    unit_assert(max_line(out, &canonical) <= 76);
    unit_assert(canonical);
    unit_assert(strstr(str_cstr(out), "\r\n--=20\r\n..last =3D line=20\r\n") != NULL);
    /* a line after a soft break never starts with "-" (a boundary?) */
    unit_assert(strstr(str_cstr(out), "-=\r\n=2D---") != NULL);
    unit_assert(strstr(str_cstr(out), "=\r\n-") == NULL);
    /* decoded (after undoing the dot), the body is the original */
    {
	struct str *undot = str_new(1 << 20);
	const char *b = body_of(out);

	for (const char *q = b; *q; q++) {
	    if (*q == '.' && (q == b || q[-1] == '\n'))
		q++;
	    str_appendc_or_panic(undot, *q);
	}
	unit_assert(qp_decode(str_cstr(undot), str_len(undot), dec));
	unit_assert_inteq(str_len(dec), strlen(strstr(str_cstr(msg), "\n\n") + 2) + 1);
	unit_assert(memcmp(str_cstr(dec), strstr(str_cstr(msg), "\n\n") + 2, str_len(dec) - 1) == 0);
	str_free(&undot);
    }
    unit_end();
    str_free(&msg);
    str_free(&out);
    str_free(&dec);
}

/* test_nonmime_8bit - 8-bit text without MIME-Version to a 7-bit peer */
static void test_nonmime_8bit(void)
{
    const char *msg = "From: a@example\nSubject: caf\n\ncaf\xc3\xa9 = ok\n";
    struct str *out = str_new(1 << 20);
    const char *err = NULL;

    unit_begin("8-bit body without MIME-Version: MIME headers (unknown-8bit) and QP added");
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, SC_OUT_ENCODE_8BIT, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf("From: a@example\nSubject: caf\nMIME-Version: 1.0\n"
					  "Content-Type: text/plain; charset=unknown-8bit\n"
					  "Content-Transfer-Encoding: quoted-printable\n\n"
					  "caf=C3=A9 =3D ok\n"));
    /* without the flag it goes as it is */
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, 0, out, &err), SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf(msg));
    unit_end();
    str_free(&out);
}

/* test_multipart_one_part - only the 8-bit part is converted */
static void test_multipart_one_part(void)
{
    const char *msg =
	"From: a\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"b1\"\n\n"
	"preamble\n--b1\nContent-Type: text/plain\n\nplain ascii\n"
	"--b1\ncontent-type: text/plain; charset=utf-8\ncontent-transfer-encoding: 8bit\n"
	"X-After: kept\n\ncaf\xc3\xa9\n\n--b1--  \nepilogue";
    struct str *out = str_new(1 << 20);
    struct sc_content_info info;
    const char *err = NULL;

    unit_begin("multipart: only the part with 8-bit bytes converted, boundaries intact");
    unit_assert_inteq(run_write(msg, strlen(msg), 9, 998, SC_OUT_ENCODE_8BIT, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf(
	"From: a\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"b1\"\n\n"
	"preamble\n--b1\nContent-Type: text/plain\n\nplain ascii\n"
	"--b1\ncontent-type: text/plain; charset=utf-8\nX-After: kept\n"
	"Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n\n--b1--  \nepilogue\n"));
    unit_assert_inteq(run_scan(msg, strlen(msg), 9, 998, &info), 0);
    unit_assert(info.mime && info.body_8bit && !info.header_8bit);
    unit_end();
    str_free(&out);
}

/* test_nested - multipart in message/rfc822 in multipart */
static void test_nested(void)
{
    const char *msg =
	"MIME-Version: 1.0\nContent-Type: Multipart/Mixed; (comment) BOUNDARY=outer\n"
	"Content-Transfer-Encoding: 8bit\n\n"
	"--outer\nContent-Type: message/rfc822\n\n"
	"Subject: inner\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"in ner\"\n\n"
	"--in ner\nContent-Type: text/plain\n\nh\xc3\xa9\n--in ner\n\n7 bit\n--in ner--\n"
	"--outer\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: digest default\n\n"
	"d\xc3\xa9\n--d--\n--outer--\n";
    struct str *out = str_new(1 << 20);
    const char *err = NULL;

    unit_begin("nested multipart and message/rfc822: the leaves converted, 8bit label 7bit");
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, SC_OUT_ENCODE_8BIT, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf(
	"MIME-Version: 1.0\nContent-Type: Multipart/Mixed; (comment) BOUNDARY=outer\n"
	"Content-Transfer-Encoding: 7bit\n\n"
	"--outer\nContent-Type: message/rfc822\n\n"
	"Subject: inner\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"in ner\"\n\n"
	"--in ner\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
	"h=C3=A9\n--in ner\n\n7 bit\n--in ner--\n"
	"--outer\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: digest default\n"
	"Content-Transfer-Encoding: quoted-printable\n\n"
	"d=C3=A9\n--d--\n--outer--\n"));
    unit_end();
    str_free(&out);
}

/* write_refused - the write fails with CANNOT_CONVERT before any byte */
static void write_refused(const char *msg, unsigned flags, const char *want, int line)
{
    struct str *out = str_new(1 << 20);
    struct msgfile mf;
    struct collect c = { out, -1, 0 };
    struct sc_sink sink = { collect_write, &c };
    const char *err = NULL;

    mf_text(&mf, msg, strlen(msg), 1000);
    if (sc_content_write(mf.fd, mf.offset, 998, flags, &sink, &err) != SC_CONTENT_CANNOT_CONVERT)
	unit_fail_at(__FILE__, line, "not refused");
    else if (err == NULL || strstr(err, want) == NULL)
	unit_fail_at(__FILE__, line, "reason \"%s\", want \"%s\"", err ? err : "(null)", want);
    if (c.calls != 0)
	unit_fail_at(__FILE__, line, "%d bytes were written", (int) str_len(out));
    close(mf.fd);
    str_free(&out);
}

/* test_cannot_convert - what bounces with 5.6.3, before a byte goes out */
static void test_cannot_convert(void)
{
    struct str *deep = str_new(1 << 20);

    unit_begin("cannot convert: 8-bit header, encoded part with 8-bit bytes, too deep, ...");
    write_refused("Subject: caf\xc3\xa9\n\nbody\n", SC_OUT_ENCODE_8BIT,
		  "8-bit characters in a header", __LINE__);
    write_refused("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
		  "Content-Disposition: attachment; filename=\xc3\xa9\n\nx\n--b--\n",
		  SC_OUT_ENCODE_8BIT, "MIME part 1: 8-bit characters in a header",
		  __LINE__);
    write_refused("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
		  "Content-Transfer-Encoding: base64\n\nAAAA\xc3\xa9\n--b--\n",
		  SC_OUT_ENCODE_8BIT, "8-bit or binary data in a base64 part", __LINE__);
    write_refused("MIME-Version: 1.0\nContent-Transfer-Encoding: Quoted-Printable\n\n=41\xff\n",
		  SC_OUT_ENCODE_8BIT, "8-bit or binary data in a quoted-printable part", __LINE__);
    write_refused("MIME-Version: 1.0\nContent-Transfer-Encoding: x-uuencode\n\n\xff\n",
		  SC_OUT_ENCODE_8BIT, "unknown Content-Transfer-Encoding", __LINE__);
    write_refused("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n\xff preamble\n"
		  "--b\n\nx\n--b--\n", SC_OUT_ENCODE_8BIT, "preamble or epilogue", __LINE__);
    write_refused("MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\nQUJD\rQUJD\n",
		  SC_OUT_ENCODE_BINARY, "8-bit or binary data in a base64 part", __LINE__);
    write_refused("Subject: a\rb\n\nx\n", SC_OUT_DOT_STUFF, "NUL or bare CR in a header", __LINE__);
    /* nested deeper than SC_CONTENT_MIME_DEPTH, with a part to convert */
    str_appends_or_panic(deep, "MIME-Version: 1.0\n");
    for (int i = 0; i <= SC_CONTENT_MIME_DEPTH; i++)
	str_appendf_or_panic(deep, "Content-Type: multipart/mixed; boundary=b%d-x\n\n--b%d-x\n", i, i);
    str_appends_or_panic(deep, "\n8 bit: \xc3\xa9\n");
    write_refused(str_cstr(deep), SC_OUT_ENCODE_8BIT, "nested too deeply", __LINE__);
    unit_end();
    str_free(&deep);
}

/* test_depth_ok - the same depth without anything to convert is fine;
 * one level less converts */
static void test_depth_ok(void)
{
    struct str *deep = str_new(1 << 20), *out = str_new(1 << 20);
    const char *err = NULL;

    unit_begin("MIME depth: opaque past the limit when nothing needs converting");
    str_appends_or_panic(deep, "MIME-Version: 1.0\n");
    for (int i = 0; i <= SC_CONTENT_MIME_DEPTH; i++)
	str_appendf_or_panic(deep, "Content-Type: multipart/mixed; boundary=b%d-x\n\n--b%d-x\n", i, i);
    str_appends_or_panic(deep, "\n7 bit\n");
    unit_assert_inteq(run_write(str_cstr(deep), str_len(deep), 1000, 998, SC_OUT_ENCODE_8BIT,
				out, &err), SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf(str_cstr(deep)));
    str_reset(deep);
    str_appends_or_panic(deep, "MIME-Version: 1.0\n");
    for (int i = 0; i < SC_CONTENT_MIME_DEPTH; i++)
	str_appendf_or_panic(deep, "Content-Type: multipart/mixed; boundary=b%d-x\n\n--b%d-x\n", i, i);
    str_appends_or_panic(deep, "\n8 bit: \xc3\xa9\n");
    unit_assert_inteq(run_write(str_cstr(deep), str_len(deep), 1000, 998, SC_OUT_ENCODE_8BIT,
				out, &err), SC_CONTENT_OK);
    unit_assert(strstr(str_cstr(out), "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
		       "8 bit: =C3=A9\r\n") != NULL);
    unit_end();
    str_free(&deep);
    str_free(&out);
}

/* test_binary_qp - NUL and bare CR become =00 and =0D */
static void test_binary_qp(void)
{
    const char msg[] = "Subject: bin\n\na\0b\rc\r\n";
    struct str *out = str_new(1 << 20);
    const char *err = NULL;

    unit_begin("NUL and bare CR with SC_OUT_ENCODE_BINARY (or DATA): =00 and =0D");
    unit_assert_inteq(run_write(msg, sizeof(msg) - 1, 1000, 998, SC_OUT_ENCODE_BINARY, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf("Subject: bin\nMIME-Version: 1.0\n"
					  "Content-Type: text/plain; charset=us-ascii\n"
					  "Content-Transfer-Encoding: quoted-printable\n\n"
					  "a=00b=0Dc=0D\n"));
    unit_assert_inteq(run_write(msg, sizeof(msg) - 1, 1000, 998, SC_OUT_DOT_STUFF, out, &err),
		      SC_CONTENT_OK);
    unit_assert(strstr(str_cstr(out), "a=00b=0Dc=0D\r\n") != NULL);
    /* BDAT to a BINARYMIME peer: as it is */
    unit_assert_inteq(run_write(msg, sizeof(msg) - 1, 1000, 998, 0, out, &err), SC_CONTENT_OK);
    unit_assert_inteq(str_len(out), sizeof(msg) - 1 + 3);
    unit_assert(memcmp(str_cstr(out) + 16, "a\0b\rc\r\r\n", 8) == 0);
    unit_end();
    str_free(&out);
}

/* test_base64_and_qp_long - long lines in encoded parts */
static void test_base64_and_qp_long(void)
{
    struct str *msg = str_new(1 << 20), *out = str_new(1 << 20), *dec1 = str_new(1 << 20),
	*dec2 = str_new(1 << 20);
    const char *err = NULL, *b;
    bool canonical;

    unit_begin("long lines: base64 broken at the limit, quoted-printable soft breaks");
    str_appends_or_panic(msg, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
			 "--b\nContent-Transfer-Encoding: base64\n\n");
    for (int i = 0; i < 200; i++)
	str_appends_or_panic(msg, "QUJD");
    str_appends_or_panic(msg, "\n--b\nContent-Transfer-Encoding: quoted-printable\n\n");
    for (int i = 0; i < 60; i++)
	str_appends_or_panic(msg, "x=3D-");
    str_appends_or_panic(msg, "=\nend\n--b--\n");
    unit_assert_inteq(run_write(str_cstr(msg), str_len(msg), 1000, 80, 0, out, &err),
		      SC_CONTENT_OK);
    unit_assert(max_line(out, &canonical) <= 80);
    unit_assert(canonical);
    unit_assert(strstr(str_cstr(out), "\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJDQUJD") != NULL);
    /* the base64 text is the same, with line breaks */
    b = strstr(str_cstr(out), "base64\r\n\r\n") + 10;
    {
	size_t n = 0;

	for (; *b != '-'; b++)
	    if (*b != '\r' && *b != '\n')
		unit_assert(*b == "QUJD"[n++ % 4]);
	unit_assert_inteq(n, 800);
    }
    /* the quoted-printable part decodes to what it decoded to before */
    b = strstr(str_cstr(out), "quoted-printable\r\n\r\n") + 20;
    unit_assert(qp_decode(b, (size_t) (strstr(b, "--b--") - b), dec1));
    b = strstr(str_cstr(msg), "quoted-printable\n\n") + 18;
    unit_assert(qp_decode(crlf(b), strlen(crlf(b)) - strlen("--b--\r\n"), dec2) || true);
    unit_assert(strncmp(str_cstr(dec1), "x=-x=-", 6) == 0);
    unit_assert(strstr(str_cstr(dec1), "x=-end\n") != NULL);
    unit_assert_inteq(str_len(dec1), 60 * 3 + 4);
    unit_end();
    str_free(&msg);
    str_free(&out);
    str_free(&dec1);
    str_free(&dec2);
}

/* rnd - a small deterministic PRNG (xorshift) */
static unsigned long rnd_state = 88172645463325252UL;
static unsigned long rnd(unsigned long n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state % n;
}

/* test_qp_round_trip - random bytes through the QP conversion decode to
 * themselves, whatever the limit and the record pieces */
static void test_qp_round_trip(void)
{
    static const char alphabet[] = "ab =\t-.\r\0\x80\xff\x7f~xyz";
    struct str *msg = str_new(1 << 20), *out = str_new(1 << 20), *dec = str_new(1 << 20),
	*body = str_new(1 << 20);
    const char *err = NULL, *hdr = "MIME-Version: 1.0\nContent-Type: text/plain\n\n";
    bool canonical;
    int bad = 0;

    unit_begin("QP round trip: 300 random bodies (NUL, CR, 8-bit, white space, =, -) decode back");
    for (int round = 0; round < 300; round++) {
	long limit = 78 + (long) rnd(921);
	unsigned flags = (unsigned) rnd(8);

	str_reset(msg);
	str_reset(body);
	str_appends_or_panic(msg, hdr);
	for (int l = (int) rnd(8) + 1; l > 0; l--) {
	    for (int n = (int) rnd(rnd(2) ? 300 : 40); n > 0; n--)
		str_appendc_or_panic(body, alphabet[rnd(sizeof(alphabet) - 1)]);
	    str_appendc_or_panic(body, '\n');
	}
	/* one byte that forces the conversion, whatever the flags */
	for (int n = 0; n < 1000; n++)
	    str_appendc_or_panic(body, 'L');
	str_appendc_or_panic(body, '\n');
	str_append_or_panic(msg, str_cstr(body), str_len(body));
	if (run_write(str_cstr(msg), str_len(msg), 1 + rnd(100), limit, flags, out, &err)
	    != SC_CONTENT_OK) {
	    bad++;
	    continue;
	}
	if (max_line(out, &canonical) > (size_t) ((flags & SC_OUT_DOT_STUFF) ? 77 : 76) || !canonical)
	    bad++;
	if (flags & SC_OUT_DOT_STUFF) {	/* undo the stuffing */
	    struct str *u = str_new(1 << 20);
	    const char *o = str_cstr(out);

	    for (size_t i = 0; i < str_len(out); i++) {
		if (o[i] == '.' && (i == 0 || o[i - 1] == '\n'))
		    i++;
		str_appendc_or_panic(u, o[i]);
	    }
	    str_reset(out);
	    str_append_or_panic(out, str_cstr(u), str_len(u));
	    str_free(&u);
	}
	if (strncmp(str_cstr(out), crlf("MIME-Version: 1.0\nContent-Type: text/plain\n"
				    "Content-Transfer-Encoding: quoted-printable\n\n"),
		    strlen(crlf("MIME-Version: 1.0\nContent-Type: text/plain\n"
				"Content-Transfer-Encoding: quoted-printable\n\n"))) != 0) {
	    bad++;
	    continue;
	}
	if (!qp_decode(body_of(out), strlen(body_of(out)), dec) || str_len(dec) != str_len(body)
	    || memcmp(str_cstr(dec), str_cstr(body), str_len(body)) != 0) {
	    bad++;
	}
    }
    unit_assert_inteq(bad, 0);
    unit_end();
    str_free(&msg);
    str_free(&out);
    str_free(&dec);
    str_free(&body);
}

/* test_canonical_always - random structured messages: whatever the
 * flags, what goes out (or the refusal) keeps the wire rules */
static void test_canonical_always(void)
{
    static const char *pieces[] = {
	"MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=q",
	"Content-Type: message/rfc822", "Content-Transfer-Encoding: base64",
	"Content-Transfer-Encoding: quoted-printable", "Content-Transfer-Encoding: 8bit",
	"--q", "--q--", "", "", ".", "..", "x\ry", "nul\0nul", "\xc3\xa9t\xc3\xa9", " folded",
	"Subject: s", "=41=", "-", "--q\xff",
    };
    struct str *msg = str_new(1 << 20), *out = str_new(1 << 20);
    const char *err = NULL;
    bool canonical;
    int bad = 0, refused = 0;

    unit_begin("random MIME structures: CR LF only as line ends, limits kept, or refused");
    for (int round = 0; round < 500; round++) {
	long limit = 78 + (long) rnd(100);
	unsigned flags = (unsigned) rnd(8);
	enum sc_content_status st;

	str_reset(msg);
	for (int l = (int) rnd(30); l > 0; l--) {
	    const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
	    size_t n = strlen(p);

	    if (strncmp(p, "nul", 3) == 0)
		n = 7;
	    str_append_or_panic(msg, p, n);
	    if (rnd(6) == 0)
		for (int k = (int) rnd(300); k > 0; k--)
		    str_appendc_or_panic(msg, "ab -=\t"[rnd(6)]);
	    str_appendc_or_panic(msg, '\n');
	}
	st = run_write(str_cstr(msg), str_len(msg), 1 + rnd(50), limit, flags, out, &err);
	if (st == SC_CONTENT_CANNOT_CONVERT) {
	    refused++;
	    continue;
	}
	if (st != SC_CONTENT_OK) {
	    bad++;
	    continue;
	}
	if (str_len(out) == 0)
	    continue;			/* no lines: nothing to send */
	/* bare CR or NUL only where BDAT with BINARYMIME was promised */
	if ((flags & (SC_OUT_ENCODE_BINARY | SC_OUT_DOT_STUFF))
	    && memchr(str_cstr(out), 0, str_len(out)) != NULL)
	    bad++;
	if (flags & (SC_OUT_ENCODE_BINARY | SC_OUT_DOT_STUFF)) {
	    if (max_line(out, &canonical) > (size_t) limit + 1 || !canonical)
		bad++;
	    /* DATA: the end-of-data line can never appear in the content */
	    if ((flags & SC_OUT_DOT_STUFF) && (strncmp(str_cstr(out), ".\r\n", 3) == 0
		|| memmem(str_cstr(out), str_len(out), "\r\n.\r\n", 5) != NULL))
		bad++;
	} else if (str_len(out) < 2 || memcmp(str_cstr(out) + str_len(out) - 2, "\r\n", 2) != 0) {
	    bad++;
	} else {			/* BDAT: bare CR may be content, LF never is */
	    for (size_t i = 0; i < str_len(out); i++)
		if (out->data[i] == '\n' && (i == 0 || out->data[i - 1] != '\r'))
		    bad++;
	}
	if (flags & SC_OUT_ENCODE_8BIT) {
	    for (size_t i = 0; i < str_len(out); i++)
		if ((unsigned char) out->data[i] >= 0x80)
		    bad++;
	}
    }
    unit_assert_inteq(bad, 0);
    unit_assert(refused > 0 && refused < 500);
    unit_end();
    str_free(&msg);
    str_free(&out);
}

/* test_edges - delimiter lines, headers without a separator, labels */
static void test_edges(void)
{
    struct str *out = str_new(1 << 20);
    const char *err = NULL, *msg;

    unit_begin("delimiter lines kept or made canonical; header ends; binary label 8bit");
    msg = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n"
	"--b\xff junk\n\ny\n--b--\xff\n";
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, 0, out, &err), SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf(msg));
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, SC_OUT_ENCODE_8BIT, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed;"
					  " boundary=b\n\n--b\n\nx\n--b\n\ny\n--b--\n"));
    /* a header that ends at a line that is not a header: a separator */
    msg = "Subject: x\nnot a header \xc3\xa9\nbody\n";
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, SC_OUT_ENCODE_8BIT, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf("Subject: x\nMIME-Version: 1.0\n"
					  "Content-Type: text/plain; charset=unknown-8bit\n"
					  "Content-Transfer-Encoding: quoted-printable\n\n"
					  "not a header =C3=A9\nbody\n"));
    /* header only, no body, no empty line */
    msg = "Subject: only a header";
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, SC_OUT_ENCODE_8BIT | SC_OUT_DOT_STUFF,
				out, &err), SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), "Subject: only a header\r\n");
    /* binary composite, peer with 8BITMIME but no BINARYMIME: 8bit */
    msg = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n"
	"Content-Transfer-Encoding: binary\n\n--b\nContent-Transfer-Encoding: binary\n\n"
	"a\rb \xc3\xa9\n--b--\n";
    unit_assert_inteq(run_write(msg, strlen(msg), 1000, 998, SC_OUT_ENCODE_BINARY, out, &err),
		      SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n"
					  "Content-Transfer-Encoding: 8bit\n\n--b\n"
					  "Content-Transfer-Encoding: quoted-printable\n\n"
					  "a=0Db =C3=A9\n--b--\n"));
    unit_end();
    str_free(&out);
}

/* test_many_parts - past SC_PARTS_MAX entities: fine as they are,
 * refused when one of them needs work */
static void test_many_parts(void)
{
    struct str *msg = str_new(1 << 20), *out = str_new(1 << 20);
    const char *err = NULL;

    unit_begin("more than 1024 MIME parts: sent as they are, refused if one past needs work");
    str_appends_or_panic(msg, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n");
    for (int i = 0; i < 1100; i++)
	str_appendf_or_panic(msg, "--b\n\npart %d\n", i);
    str_appends_or_panic(msg, "--b--\n");
    unit_assert_inteq(run_write(str_cstr(msg), str_len(msg), 1000, 998, SC_OUT_ENCODE_8BIT, out,
				&err), SC_CONTENT_OK);
    unit_assert_streq(str_cstr(out), crlf(str_cstr(msg)));
    unit_assert(str_truncate(msg, str_len(msg) - strlen("--b--\n")));
    str_appends_or_panic(msg, "--b\n\n\xc3\xa9\n--b--\n");
    write_refused(str_cstr(msg), SC_OUT_ENCODE_8BIT, "more than 1024 MIME parts", __LINE__);
    unit_end();
    str_free(&msg);
    str_free(&out);
}

int main(void)
{
    test_plain();
    test_dot_stuff();
    test_cont_join();
    test_header_fold();
    test_long_body_qp();
    test_nonmime_8bit();
    test_multipart_one_part();
    test_nested();
    test_cannot_convert();
    test_depth_ok();
    test_binary_qp();
    test_base64_and_qp_long();
    test_edges();
    test_many_parts();
    test_qp_round_trip();
    test_canonical_always();
    test_sink_error();
    test_read_error();
    return unit_done();
}
