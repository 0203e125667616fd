/* test-pop3d_send.c - unit tests for pop3d_send.c: CRLF line ends
 * whatever the file has, dot-stuffing, the terminator, TOP's cut. */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "unit.h"

#include "pop3d.h"

/* send_text - what pop3d_send_next gives, chunk by chunk, for a file
 * holding text */
static void send_text_size(const char *text, long lines, off_t size, struct str *out)
{
    static char chunk[POP3D_SEND_OUT_MAX];
    FILE *fp = tmpfile();
    struct pop3d_send st;
    bool done = false;
    int rounds = 0;
    ssize_t n;

    str_reset(out);
    fputs(text, fp);
    fflush(fp);
    rewind(fp);
    pop3d_send_begin(&st, fileno(fp), lines, size);
    while (!done && rounds++ < 1000) {
	n = pop3d_send_next(&st, chunk, &done);
	unit_assert(n >= 0 && (size_t) n <= sizeof(chunk));
	if (n > 0)
	    unit_assert(str_try_append(out, chunk, (size_t) n));
    }
    unit_assert(done);
    fclose(fp);
}

/* send_text - the same, the size unknown, and known: the same bytes */
static void send_text(const char *text, long lines, struct str *out)
{
    struct str *known = str_new(1 << 20);

    send_text_size(text, lines, (off_t) strlen(text), known);
    send_text_size(text, lines, -1, out);
    unit_assert(str_len(known) == str_len(out)
		&& memcmp(str_cstr(known), str_cstr(out), str_len(out)) == 0);
    str_free(&known);
}

/* test_crlf_and_dots - bare LF becomes CRLF, CRLF stays, "." doubled */
static void test_crlf_and_dots(void)
{
    struct str *out = str_new(65536);

    unit_begin("pop3d_send_next: CRLF line ends and dot-stuffing");
    send_text("Subject: x\n\n.line\r\nbody\n..two\nend", -1, out);
    unit_assert_streq(str_cstr(out),
		      "Subject: x\r\n\r\n..line\r\nbody\r\n...two\r\nend\r\n.\r\n");
    send_text("", -1, out);
    unit_assert_streq(str_cstr(out), ".\r\n");
    str_free(&out);
    unit_end();
}

/* test_top - the header, the empty line and n body lines */
static void test_top(void)
{
    struct str *out = str_new(65536);
    const char *msg = "A: 1\nB: 2\n\none\ntwo\nthree\n";

    unit_begin("pop3d_send_next: TOP sends the header and n body lines");
    send_text(msg, 0, out);
    unit_assert_streq(str_cstr(out), "A: 1\r\nB: 2\r\n\r\n.\r\n");
    send_text(msg, 2, out);
    unit_assert_streq(str_cstr(out), "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n.\r\n");
    send_text(msg, 10, out);
    unit_assert_streq(str_cstr(out), "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n.\r\n");
    str_free(&out);
    unit_end();
}

/* test_big - a line across the read size keeps its bytes */
static void test_big(void)
{
    static char big[200001];
    struct str *out = str_new(1 << 20);

    unit_begin("pop3d_send_next: lines across read chunks");
    memset(big, 'a', sizeof(big) - 1);
    big[70000] = '\n';
    big[70001] = '.';
    big[131072] = '\n';
    send_text(big, -1, out);
    unit_assert_inteq(str_len(out), sizeof(big) - 1 + 2 + 1 + 2 + 3);
    unit_assert(memcmp(str_cstr(out) + 70000, "\r\n..", 4) == 0);
    str_free(&out);
    unit_end();
}

/* test_worst_case - every byte doubled: a chunk of ".\n" lines, and of
 * bare LFs, stays within POP3D_SEND_OUT_MAX */
static void test_worst_case(void)
{
    static char text[3 * POP3D_SEND_CHUNK + 1];
    struct str *out = str_new(1 << 20);

    unit_begin("pop3d_send_next: worst-case growth");
    for (size_t i = 0; i + 1 < sizeof(text); i += 2)
	memcpy(text + i, ".\n", 2);
    text[sizeof(text) - 1] = 0;
    send_text(text, -1, out);
    unit_assert_inteq(str_len(out), (sizeof(text) - 1) * 2 + 3);
    memset(text, '\n', sizeof(text) - 1);
    send_text(text, -1, out);
    unit_assert_inteq(str_len(out), (sizeof(text) - 1) * 2 + 3);
    str_free(&out);
    unit_end();
}

int main(void)
{
    test_worst_case();
    test_crlf_and_dots();
    test_top();
    test_big();
    return unit_done();
}
