/* test-ipc.c - unit tests for ipc.c (attribute-list codec, strict
 * receive, limits, timeouts, handshake). Stream tests run over a
 * socketpair inside one process; messages stay small enough to fit in
 * the socket buffer. */

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

struct pair {
    int fd[2];
    struct stream *w;			/* writer end (fd[0]) */
    struct stream *r;			/* reader end (fd[1]) */
};

/* pair_open - a connected socketpair wrapped in two streams */
static void pair_open(struct pair *p)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd) != 0)
	msg_fatal("socketpair: %m");
    p->w = stream_open(p->fd[0]);
    p->r = stream_open(p->fd[1]);
    stream_set_timeout(p->r, 2000);
    stream_set_timeout(p->w, 2000);
}

/* pair_close - close both ends */
static void pair_close(struct pair *p)
{
    if (p->w)
	stream_close(&p->w);
    stream_close(&p->r);
}

/* raw - write bytes straight to the writer's descriptor */
static void raw(struct pair *p, const char *bytes)
{
    size_t len = strlen(bytes);

    if (write(p->fd[0], bytes, len) != (ssize_t) len)
	msg_fatal("write: %m");
}

/* contains - true if text contains want */
static bool contains(const char *text, const char *want)
{
    return text != NULL && strstr(text, want) != NULL;
}

/* recv_raw_strict - feed bytes, run the standard strict receive */
static int recv_raw_strict(const char *bytes, struct str *sender, long *size, const char **error)
{
    struct pair p;
    int rc;

    pair_open(&p);
    raw(&p, bytes);
    stream_close(&p.w);			/* EOF after the bytes */
    rc = ipc_recv(p.r, error, IPC_RECV_STR("sender", sender), IPC_RECV_INT("size", size),
		  IPC_OPT, IPC_RECV_STR("helo", sender), IPC_END);
    pair_close(&p);
    return rc;
}

static void send_bad_name(void *arg)
{
    struct pair *p = arg;

    (void) ipc_send(p->w, IPC_STR("Bad-Name", "x"), IPC_END);
}

static void recv_bad_opt(void *arg)
{
    struct pair *p = arg;
    const char *error;

    (void) ipc_recv(p->r, &error, IPC_OPT, IPC_END);
}

/* test_encode_helpers - ipc_encode_str and ipc_encode_long, byte for byte */
static void test_encode_helpers(void)
{
    static const struct {
	long value;
	const char *want;
    } longs[] = {
	{0, "1:n,1:0,"}, {7, "1:n,1:7,"}, {-42, "1:n,3:-42,"},
	{1234567890L, "1:n,10:1234567890,"},
	{LONG_MAX, "1:n,19:9223372036854775807,"},
	{LONG_MIN, "1:n,20:-9223372036854775808,"},
    };
    struct str *out = str_new(1024);

    unit_begin("ipc_encode_long and ipc_encode_str");
    for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
	str_reset(out);
	ipc_encode_long(out, "n", longs[i].value);
	unit_assert_streq_idx(str_cstr(out), longs[i].want, i);
    }
    str_reset(out);
    ipc_encode_str(out, "a", NULL);
    ipc_encode_str(out, "b", "xy");
    unit_assert_streq(str_cstr(out), "1:a,0:,1:b,2:xy,");
    str_free(&out);
    unit_end();
}

int main(void)
{
    struct ipc_list list;
    struct str *out, *s1, *s2;
    const char *error;
    long n;
    struct pair p;

    test_encode_helpers();

    msg_init("test-ipc", MSG_TO_STDERR);
    ipc_list_init(&list);

    unit_begin("encode gives the documented bytes");
    out = str_new(1024);
    ipc_encode_attr(out, "size", "1234", 4);
    ipc_encode_attr(out, "sender", "", 0);
    ipc_encode_end(out);
    unit_assert_streq(str_cstr(out), "4:size,4:1234,6:sender,0:,0:,");
    unit_end();

    unit_begin("memory decode: round trip, binary value, bytes consumed");
    str_reset(out);
    ipc_encode_attr(out, "rcpt", "a@example.test", 14);
    ipc_encode_attr(out, "rcpt", "b@example.test", 14);
    ipc_encode_attr(out, "data", "x\0y", 3);
    ipc_encode_end(out);
    str_append_or_panic(out, "junk", 4);		/* start of the next message */
    unit_assert_inteq(ipc_decode_list(out->data, out->len, &list, &error), (long) out->len - 4);
    unit_assert_inteq(list.count, 3);
    unit_assert_streq(list.attrs[0].name, "rcpt");
    unit_assert_streq(list.attrs[1].value, "b@example.test");
    unit_assert_streq(ipc_list_get(&list, "rcpt"), "a@example.test");
    unit_assert_inteq(list.attrs[2].len, 3);
    unit_assert(memcmp(list.attrs[2].value, "x\0y", 4) == 0);
    unit_assert(ipc_list_get(&list, "nothere") == NULL);
    unit_end();

    unit_begin("memory decode: every proper prefix is incomplete (0)");
    {
	size_t full = out->len - 4;
	bool all = true;

	for (size_t i = 0; i < full; i++)
	    if (ipc_decode_list(out->data, i, &list, &error) != 0)
		all = false;
	unit_assert(all);
	unit_assert_inteq(list.count, 0);
    }
    unit_end();

    unit_begin("memory decode: syntax errors name the problem");
    {
	static const struct {
	    const char *in;
	    const char *want;
	} cases[] = {
	    {"x:a,", "malformed netstring length in attribute name"},
	    {":a,", "empty netstring length"},
	    {"01:a,1:b,0:,", "leading zero"},
	    {"1:a;1:b,0:,", "missing ',' after attribute name"},
	    {"1:a,1:b;0:,", "missing ',' after attribute \"a\""},
	    {"4:Size,1:1,0:,", "invalid attribute name \"Size\""},
	    {"3:a-b,1:1,0:,", "invalid attribute name \"a-b\""},
	    {"3:a\001b,1:1,0:,", "invalid attribute name \"a?b\""},
	    {"65:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,", "longer than 64"},
	    {"1:a,1048577:", "attribute \"a\": value too long (1048577 bytes, limit 1048576)"},
	    {"1:a,99999999999:", "exceeds the message limit"},
	    {"1:a,1x:", "malformed netstring length in attribute \"a\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    error = NULL;
	    unit_assert_idx(ipc_decode_list(cases[i].in, strlen(cases[i].in), &list, &error) == -1, i);
	    unit_assert_idx(contains(error, cases[i].want), i);
	    if (!contains(error, cases[i].want))
		printf("  case %zu: got \"%s\"\n", i, error ? error : "(null)");
	    unit_assert_idx(list.count == 0, i);
	}
    }
    unit_end();

    unit_begin("memory decode: random damage gives a result or an error, never a crash");
    {
	uint64_t seed = 7;
	int ok = 0, incomplete = 0, bad = 0;

	str_reset(out);
	ipc_encode_attr(out, "sender", "a@example.test", 14);
	ipc_encode_attr(out, "size", "12345", 5);
	ipc_encode_attr(out, "blob", "x\0y", 3);
	ipc_encode_end(out);
	for (int i = 0; i < 20000; i++) {
	    char copy[128];
	    long rc;

	    memcpy(copy, out->data, out->len);
	    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	    copy[(seed >> 33) % out->len] = (char) (seed >> 20);
	    rc = ipc_decode_list(copy, out->len, &list, &error);
	    if (rc > 0 && (size_t) rc <= out->len)
		ok++;
	    else if (rc == 0)
		incomplete++;
	    else if (rc == -1 && error != NULL)
		bad++;
	}
	unit_assert_inteq(ok + incomplete + bad, 20000);
	unit_assert(bad > 5000);
    }
    unit_end();

    unit_begin("memory decode: a 64-byte name is fine");
    str_reset(out);
    ipc_encode_attr(out, "a123456789b123456789c123456789d123456789e123456789f123456789_xyz", "v", 1);
    ipc_encode_end(out);
    unit_assert_inteq(ipc_decode_list(out->data, out->len, &list, &error), (long) out->len);
    unit_end();

    unit_begin("stream: send and strict receive of str, int, data");
    pair_open(&p);
    s1 = str_new(256);
    s2 = str_new(256);
    unit_assert(ipc_send(p.w, IPC_STR("sender", "me@example.test"), IPC_INT("size", -42),
			 IPC_DATA("blob", "a\0b", 3), IPC_END) == 0);
    unit_assert(ipc_recv(p.r, &error, IPC_RECV_INT("size", &n), IPC_RECV_STR("sender", s1),
			 IPC_TYPE_DATA, "blob", s2, IPC_END) == 0);
    unit_assert_streq(str_cstr(s1), "me@example.test");
    unit_assert_inteq(n, -42);
    unit_assert_inteq(str_len(s2), 3);
    unit_assert(memcmp(str_cstr(s2), "a\0b", 3) == 0);
    unit_assert_inteq(stream_get_timeout(p.r), 2000);	/* restored */
    unit_end();

    unit_begin("stream: optional attribute absent leaves the target, present fills it");
    str_set_or_panic(s2, "default");
    unit_assert(ipc_send(p.w, IPC_STR("sender", "x"), IPC_END) == 0);
    unit_assert(ipc_recv(p.r, &error, IPC_RECV_STR("sender", s1), IPC_OPT,
			 IPC_RECV_STR("helo", s2), IPC_END) == 0);
    unit_assert_streq(str_cstr(s2), "default");
    unit_assert(ipc_send(p.w, IPC_STR("helo", "mx.example.test"), IPC_STR("sender", "y"), IPC_END) == 0);
    unit_assert(ipc_recv(p.r, &error, IPC_RECV_STR("sender", s1), IPC_OPT,
			 IPC_RECV_STR("helo", s2), IPC_END) == 0);
    unit_assert_streq(str_cstr(s2), "mx.example.test");
    unit_assert_streq(str_cstr(s1), "y");
    pair_close(&p);
    unit_end();

    unit_begin("stream: strictness errors name the attribute");
    {
	static const struct {
	    const char *in;
	    const char *want;
	} cases[] = {
	    {"6:sender,1:a,0:,", "missing attribute \"size\""},
	    {"6:sender,1:a,4:size,1:1,5:extra,1:x,0:,", "unexpected attribute \"extra\""},
	    {"6:sender,1:a,4:size,1:1,4:size,1:2,0:,", "duplicate attribute \"size\""},
	    {"6:sender,1:a,4:size,2:1x,0:,", "attribute \"size\": bad integer value \"1x\""},
	    {"6:sender,1:a,4:size,0:,0:,", "attribute \"size\": bad integer value \"\""},
	    {"6:sender,1:a,4:size,1:-,0:,", "bad integer value \"-\""},
	    {"6:sender,1:a,4:size,2: 1,0:,", "bad integer value \" 1\""},
	    {"6:sender,1:a,4:size,2:1 ,0:,", "bad integer value \"1 \""},
	    {"6:sender,1:a,4:size,3:0x1,0:,", "bad integer value \"0x1\""},
	    {"6:sender,1:a,4:size,20:99999999999999999999,0:,", "bad integer value"},
	    {"6:sender,1:a,4:size,25:1234567890123456789012345,0:,", "attribute \"size\": value too long"},
	    {"6:sender,300:", "attribute \"sender\": value too long (300 bytes, limit 256)"},
	    {"6:sender,3:a\000b,", "attribute \"sender\": NUL byte"},
	    {"4:helo,1:h,4:helo,1:h,", "duplicate attribute \"helo\""},
	    {"6:sender,1:a,4:size,1:1,", "unexpected end of input while reading attribute name"},
	    {"6:sender,5:ab", "unexpected end of input while reading attribute \"sender\""},
	    {"6:sen", "unexpected end of input while reading attribute name"},
	    {"", "connection closed by peer"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    /* the NUL case: strlen stops early, so write it by hand */
	    if (strstr(cases[i].want, "NUL")) {
		pair_open(&p);
		if (write(p.fd[0], "6:sender,3:a\0b,0:,", 18) != 18)
		    msg_fatal("write: %m");
		stream_close(&p.w);
		error = NULL;
		unit_assert_idx(ipc_recv(p.r, &error, IPC_RECV_STR("sender", s1), IPC_OPT,
					 IPC_RECV_INT("size", &n), IPC_END) < 0, i);
		unit_assert_idx(contains(error, cases[i].want), i);
		pair_close(&p);
		continue;
	    }
	    error = NULL;
	    unit_assert_idx(recv_raw_strict(cases[i].in, s1, &n, &error) < 0, i);
	    if (!contains(error, cases[i].want))
		printf("  case %zu: got \"%s\", want \"%s\"\n", i, error ? error : "(null)", cases[i].want);
	    unit_assert_idx(contains(error, cases[i].want), i);
	}
    }
    unit_end();

    unit_begin("stream: integer edge values are accepted");
    {
	static const struct {
	    const char *text;
	    long want;
	} cases[] = {
	    {"0", 0}, {"+7", 7}, {"-9223372036854775808", -9223372036854775807L - 1},
	    {"9223372036854775807", 9223372036854775807L}, {"007", 7},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    char msg[128];

	    fmt_buf_or_panic(msg, sizeof(msg), "6:sender,1:a,4:size,%zu:%s,0:,", strlen(cases[i].text), cases[i].text);
	    n = 12345;
	    unit_assert_idx(recv_raw_strict(msg, s1, &n, &error) == 0, i);
	    unit_assert_idx(n == cases[i].want, i);
	}
    }
    unit_end();

    unit_begin("stream: a stalled peer times out mid-message");
    pair_open(&p);
    stream_set_timeout(p.r, 150);
    raw(&p, "6:sender,1:a,4:si");
    unit_assert(ipc_recv(p.r, &error, IPC_RECV_STR("sender", s1), IPC_RECV_INT("size", &n), IPC_END) < 0);
    unit_assert(contains(error, "timeout while reading attribute name"));
    unit_assert(stream_error(p.r) == STREAM_TIMEOUT);
    unit_assert_inteq(stream_get_timeout(p.r), 150);
    pair_close(&p);
    unit_end();

    unit_begin("stream: the timeout bounds the whole message, not each byte");
    pair_open(&p);
    stream_set_timeout(p.r, 300);
    {
	pid_t pid = fork();

	if (pid == 0) {
	    /* drip one byte every 100 ms: each read is quick, the
	     * message is not */
	    const char *msg = "6:sender,1:a,4:size,1:1,0:,";

	    for (const char *c = msg; *c; c++) {
		if (write(p.fd[0], c, 1) != 1)
		    _exit(1);
		usleep(100 * 1000);
	    }
	    _exit(0);
	}
	unit_assert(ipc_recv(p.r, &error, IPC_RECV_STR("sender", s1), IPC_RECV_INT("size", &n), IPC_END) < 0);
	unit_assert(contains(error, "timeout"));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
    }
    pair_close(&p);
    unit_end();

    unit_begin("stream: list send/receive with repeated attributes");
    pair_open(&p);
    ipc_list_reset(&list);
    ipc_list_add(&list, "sender", "s@example.test", 14);
    ipc_list_add(&list, "rcpt", "a@example.test", 14);
    ipc_list_add(&list, "rcpt", "b@example.test", 14);
    unit_assert(ipc_send_list(p.w, &list) == 0);
    ipc_list_add(&list, "junk", "j", 1);	/* must disappear on receive */
    unit_assert(ipc_recv_list(p.r, &list, &error) == 0);
    unit_assert_inteq(list.count, 3);
    unit_assert_streq(list.attrs[2].value, "b@example.test");
    unit_assert(ipc_list_get(&list, "junk") == NULL);
    raw(&p, "4:rcpt,1:a,4:RCPT,1:b,0:,");
    unit_assert(ipc_recv_list(p.r, &list, &error) < 0);
    unit_assert(contains(error, "invalid attribute name \"RCPT\""));
    unit_assert_inteq(list.count, 0);
    pair_close(&p);
    unit_end();

    unit_begin("ipc_send refuses a message over IPC_MSG_MAX");
    pair_open(&p);
    {
	size_t big = IPC_MSG_MAX;
	char *data = mem_zalloc(big);

	unit_assert(ipc_send(p.w, IPC_DATA("big", data, big), IPC_END) < 0);
	unit_assert(ipc_send(p.w, IPC_DATA("big", data, 100), IPC_END) == 0);	/* nothing sent before */
	mem_free(&data);
	unit_assert(ipc_recv(p.r, &error, IPC_TYPE_DATA, "big", s1, IPC_END) == 0);
	unit_assert_inteq(str_len(s1), 100);
    }
    pair_close(&p);
    unit_end();

    unit_begin("handshake: match, name mismatch, version mismatch");
    pair_open(&p);
    unit_assert(ipc_handshake_server(p.w, "cleanup", 1) == 0);
    unit_assert(ipc_handshake_client(p.r, "cleanup", 1, &error) == 0);
    unit_assert(ipc_handshake_server(p.w, "bounce", 1) == 0);
    unit_assert(ipc_handshake_client(p.r, "cleanup", 1, &error) < 0);
    unit_assert_streq(error, "protocol mismatch: expected cleanup version 1, got bounce version 1");
    unit_assert(ipc_handshake_server(p.w, "cleanup", 2) == 0);
    unit_assert(ipc_handshake_client(p.r, "cleanup", 1, &error) < 0);
    unit_assert_streq(error, "protocol mismatch: expected cleanup version 1, got cleanup version 2");
    unit_assert(ipc_send(p.w, IPC_STR("proto", "cleanup"), IPC_END) == 0);
    unit_assert(ipc_handshake_client(p.r, "cleanup", 1, &error) < 0);
    unit_assert_streq(error, "handshake: missing attribute \"version\"");
    pair_close(&p);
    unit_end();

    unit_begin("a peer gone before the first byte: closed, by EOF or by reset");
    pair_open(&p);
    stream_close(&p.w);				/* EOF */
    unit_assert(ipc_recv_list(p.r, &list, &error) < 0);
    unit_assert_streq(error, "connection closed by peer");
    pair_close(&p);
    pair_open(&p);
    /* the reader's own announcement is still unread when the peer
     * closes: the reader gets ECONNRESET, not EOF (qmgr closes a
     * connection it no longer needs before the agent's handshake) */
    unit_assert(ipc_handshake_server(p.r, "deliver", 5) == 0);
    stream_close(&p.w);
    unit_assert(ipc_recv_list(p.r, &list, &error) < 0);
    unit_assert_inteq(stream_error(p.r), STREAM_ERROR);
    unit_assert_streq(error, "connection closed by peer");
    pair_close(&p);
    pair_open(&p);
    raw(&p, "4:name,");				/* started, then reset */
    unit_assert(ipc_handshake_server(p.r, "deliver", 5) == 0);
    stream_close(&p.w);
    unit_assert(ipc_recv_list(p.r, &list, &error) < 0);
    unit_assert(contains(error, "read error while reading"));
    pair_close(&p);
    unit_end();

    unit_begin("programming errors panic");
    pair_open(&p);
    unit_assert(unit_expect_exit(send_bad_name, &p, UNIT_EXIT_SIGNAL, 6, "invalid attribute name"));
    unit_assert(unit_expect_exit(recv_bad_opt, &p, UNIT_EXIT_SIGNAL, 6, "IPC_OPT without"));
    pair_close(&p);
    unit_end();

    str_free(&s1);
    str_free(&s2);
    str_free(&out);
    ipc_list_fini(&list);
    return unit_done();
}
