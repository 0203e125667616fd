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
    for (int i = 0; i < 100; i++)
	str_appendc_or_panic(msg, 'a' + i % 26);
    str_appends_or_panic(msg, "\n\nbody");
    unit_assert_inteq(run_write(str_cstr(msg), str_len(msg), 7, 40, 0, out, &err), SC_CONTENT_OK);
    unit_assert(max_line(out, &canonical) <= 40);
    unit_assert(canonical);
    /* folding only inserted CR LF (and SP where it had to) */
    unit_assert(strncmp(str_cstr(out), "Subject: word word word word word word\r\n word ", 46) == 0);
    unit_assert(strstr(str_cstr(out), "\r\nX-Long:\r\n abcdefghijklmnopqrstuvwxyzabcdefghijklm\r\n nopq") != NULL);
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

int main(void)
{
    test_plain();
    test_dot_stuff();
    test_cont_join();
    test_header_fold();
    test_sink_error();
    test_read_error();
    return unit_done();
}
