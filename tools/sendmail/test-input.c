/* test-input.c - unit tests of sendmail's message input (sm_input.c):
 * stdin read in large blocks (sm_source_fd) must turn a message into
 * exactly the L/C records the stream reader (sm_source_stream, -bs)
 * gives, with dot handling, CR/LF forms, long lines and -F's From:. */

/* System library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* Mail library. */
#include "queue_file.h"

/* This program. */
#include "sendmail.h"

/* main.c's definitions, which the modules under test refer to. */
const char *sm_config_dir = "/nonexistent";
const char *sm_progname = "sendmail";

/* sm_config - not used by the input code */
const char *sm_config(const char *name)
{
    msg_panic("sm_config(%s) called in a unit test", name);
}

/* t_memfd - a memory file holding data, positioned at the start */
static int t_memfd(const char *data, size_t len)
{
    int fd = memfd_create("t", 0);

    if (fd < 0)
	msg_fatal("memfd_create: %m");
    if (len > 0 && write(fd, data, len) != (ssize_t) len)
	msg_fatal("write: %m");
    (void) lseek(fd, 0, SEEK_SET);
    return fd;
}

/* t_render - the records in fd as "L:text|C:text|", bytes < 0x20 as \xNN */
static void t_render(int fd, struct str *out)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = mem_alloc((size_t) size + 1);
    size_t pos = 0;

    (void) lseek(fd, 0, SEEK_SET);
    if (size > 0 && read(fd, buf, (size_t) size) != size)
	msg_fatal("read: %m");
    str_reset(out);
    while (pos + QF_HEADER_SIZE <= (size_t) size) {
	size_t len = ((size_t) (unsigned char) buf[pos + 1] << 24)
	    | ((size_t) (unsigned char) buf[pos + 2] << 16)
	    | ((size_t) (unsigned char) buf[pos + 3] << 8) | (size_t) (unsigned char) buf[pos + 4];

	str_appendc_or_panic(out, buf[pos]);
	str_appendc_or_panic(out, ':');
	for (size_t i = 0; i < len; i++) {
	    unsigned char ch = (unsigned char) buf[pos + QF_HEADER_SIZE + i];
	    char hex[8];

	    if (ch < 0x20) {
		fmt_buf_or_panic(hex, sizeof(hex), "\\x%02x", ch);
		str_appends_or_panic(out, hex);
	    } else {
		str_appendc_or_panic(out, (char) ch);
	    }
	}
	str_appendc_or_panic(out, '|');
	pos += QF_HEADER_SIZE + len;
    }
    mem_free(&buf);
}

/* t_copy - run sm_copy_message over data with an fd or a stream source */
static enum sm_copy_status t_copy(const char *data, size_t len, int flags, long long limit,
				  const char *from, bool use_stream, struct str *rendered,
				  long long *size)
{
    int in_fd = t_memfd(data, len), out_fd = t_memfd("", 0);
    struct stream *in_stream = NULL, *out = stream_open(out_fd);
    struct sm_source src;
    enum sm_copy_status st;

    if (use_stream) {
	in_stream = stream_open(in_fd);
	sm_source_stream(&src, in_stream);
    } else {
	sm_source_fd(&src, in_fd);
    }
    st = sm_copy_message(&src, out, flags, limit, from, size);
    if (stream_flush(out) < 0)
	msg_fatal("flush: %m");
    t_render(out_fd, rendered);
    sm_source_fini(&src);
    if (in_stream)
	stream_free(&in_stream);
    stream_free(&out);
    (void) close(in_fd);
    (void) close(out_fd);
    return st;
}

/* The cases: input, flags, -F value, the records. */
static const struct {
    const char *in;
    int flags;
    const char *from;
    const char *want;
    size_t len;			/* 0: strlen(in) */
} cases[] = {
    {"a\r\nb\n..c\n.\nafter\n", SM_COPY_DOT, NULL, "L:a|L:b|L:..c|", 0},
    {"a\r\nb\n..c\n.\nafter\n", 0, NULL, "L:a|L:b|L:..c|L:.|L:after|", 0},
    {"x\n\x00y\r\nlast", SM_COPY_DOT, NULL, "L:x|L:\\x00y|L:last|", 10},
    {"", SM_COPY_DOT, NULL, "", 0},
    {"bare\rcr\n", 0, NULL, "L:bare\\x0dcr|", 0},
    {".\r\n", SM_COPY_DOT, NULL, "", 0},
    {"Subject: s\n\nbody\n", 0, "Joe <joe@x>", "L:From: Joe <joe@x>|L:Subject: s|L:|L:body|", 0},
    {"from: me@x\n\nb\n", 0, "Joe <joe@x>", "L:from: me@x|L:|L:b|", 0},
    {"Subject: s\n\nFrom: in body\n", 0, "J <j@x>", "L:From: J <j@x>|L:Subject: s|L:|L:From: in body|", 0},
};

/* t_big - a message that crosses the 64 KiB read blocks and the 4 KiB
 * record chunks: long lines, CR at a chunk edge, a final line without
 * a newline */
static char *t_big(size_t *len_r)
{
    struct str *s = str_new((size_t) 4 << 20);

    for (int i = 0; i < 300; i++) {
	size_t n = (size_t) (i * 97) % 9000;

	for (size_t j = 0; j < n; j++)
	    str_appendc_or_panic(s, (char) ('a' + (char) ((i + j) % 26)));
	str_appends_or_panic(s, i % 3 ? "\n" : "\r\n");
    }
    for (int j = 0; j < 4095; j++)
	str_appendc_or_panic(s, 'z');
    str_appends_or_panic(s, "\r\r\ntail");
    *len_r = s->len;
    {
	char *copy = mem_alloc(s->len + 1);

	memcpy(copy, s->data, s->len + 1);
	str_free(&s);
	return copy;
    }
}

int main(void)
{
    struct str *a = str_new((size_t) 8 << 20);
    struct str *b = str_new((size_t) 8 << 20);
    long long size_a, size_b;

    msg_init("test-input", MSG_TO_STDERR);

    unit_begin("sendmail input: records for each case, fd and stream alike");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
	enum sm_copy_status sa, sb;

	sa = t_copy(cases[i].in, len, cases[i].flags, 0, cases[i].from, false, a, &size_a);
	sb = t_copy(cases[i].in, len, cases[i].flags, 0, cases[i].from, true, b, &size_b);
	unit_assert_idx(sa == SM_COPY_OK && sb == SM_COPY_OK, i);
	unit_assert_streq_idx(a->data, cases[i].want, i);
	unit_assert_streq_idx(b->data, cases[i].want, i);
	unit_assert_idx(size_a == size_b, i);
    }
    unit_end();

    unit_begin("sendmail input: a large message, fd (64 KiB reads) = stream (8 KiB)");
    {
	size_t len;
	char *big = t_big(&len);

	unit_assert(len > 3 * 65536);
	unit_assert(t_copy(big, len, SM_COPY_DOT, 0, NULL, false, a, &size_a) == SM_COPY_OK);
	unit_assert(t_copy(big, len, SM_COPY_DOT, 0, NULL, true, b, &size_b) == SM_COPY_OK);
	unit_assert(a->len > len);
	unit_assert(a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
	unit_assert_inteq(size_a, size_b);
	unit_assert(strstr(a->data, "C:") != NULL);	/* long lines were split */
	unit_assert(strstr(a->data, "L:tail|") != NULL);
	mem_free(&big);
    }
    unit_end();

    unit_begin("sendmail input: size limit reads on and reports too big");
    {
	const char *msg = "0123456789\n0123456789\n0123456789\n";

	unit_assert(t_copy(msg, strlen(msg), 0, 20, NULL, false, a, &size_a) == SM_COPY_TOO_BIG);
	unit_assert_inteq(size_a, 36);
	unit_assert(t_copy(msg, strlen(msg), 0, 36, NULL, false, a, &size_a) == SM_COPY_OK);
    }
    unit_end();

    unit_begin("sendmail input: a read error is reported");
    {
	struct sm_source src;
	int out_fd = t_memfd("", 0);
	struct stream *out = stream_open(out_fd);
	int pipefd[2];

	if (pipe(pipefd) < 0)
	    msg_fatal("pipe: %m");
	/* reading the write end of a pipe fails with EBADF */
	sm_source_fd(&src, pipefd[1]);
	unit_assert(sm_copy_message(&src, out, 0, 0, NULL, NULL) == SM_COPY_READ_ERROR);
	sm_source_fini(&src);
	stream_free(&out);
	(void) close(pipefd[0]);
	(void) close(pipefd[1]);
	(void) close(out_fd);
    }
    unit_end();

    str_free(&a);
    str_free(&b);
    return unit_done();
}
