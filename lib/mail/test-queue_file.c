/* test-queue_file.c - unit tests for queue_file.c: write a queue file,
 * read it back, mark a recipient done in place, dump it, and reject
 * every kind of damage (truncation, missing end, foreign types, lengths
 * past the end or over the limit, grammar violations). */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* mail */
#include "queue_file.h"

static char tmpdir[] = "/tmp/test-queue_file.XXXXXX";

struct seen {
    int types[64];
    char data[64][128];
    off_t offsets[64];
    int count;
};

/* collect - qf_scan visitor that remembers every record */
static int collect(int type, const struct str *data, off_t offset, void *ctx)
{
    struct seen *s = ctx;

    if (s->count < 64) {
	s->types[s->count] = type;
	str_copy_out_or_panic(s->data[s->count], sizeof(s->data[0]), data->data);
	s->offsets[s->count] = offset;
	s->count++;
    }
    return 0;
}

/* stop_at_message - visitor that stops the scan at 'M' */
static int stop_at_message(int type, const struct str *data, off_t offset, void *ctx)
{
    (void) data;
    (void) offset;
    (void) ctx;
    return type == QF_REC_MESSAGE ? 7 : 0;
}

/* tmp_path - a path in the test directory */
static const char *tmp_path(const char *name)
{
    static char path[256];

    fmt_buf_or_panic(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

/* scan_mem_same - qf_scan_mem over the file's bytes must give the same
 * result, error text and records as the stream scan did */
static void scan_mem_same(const char *path, int rc, const struct seen *seen, const char *error)
{
    static char buf[1 << 16];
    char stream_error[512];
    struct seen mem_seen;
    const char *mem_error = NULL;
    ssize_t n;
    int fd, mem_rc;

    if ((fd = open(path, O_RDONLY)) < 0)
	msg_fatal("open %s: %m", path);
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0 || (size_t) n == sizeof(buf))
	return;				/* too big for this check */
    str_copy_out_or_panic(stream_error, sizeof(stream_error), rc < 0 && error ? error : "");
    memset(&mem_seen, 0, sizeof(mem_seen));
    mem_rc = qf_scan_mem(buf, (size_t) n, QF_RECORD_MAX, seen ? collect : NULL,
			 seen ? &mem_seen : NULL, &mem_error);
    if (mem_rc != rc || (rc < 0 && strcmp(stream_error, mem_error) != 0))
	msg_fatal("qf_scan_mem differs on %s: rc %d vs %d, \"%s\" vs \"%s\"", path,
		  mem_rc, rc, mem_rc < 0 ? mem_error : "", stream_error);
    if (seen && memcmp(seen, &mem_seen, sizeof(mem_seen)) != 0)
	msg_fatal("qf_scan_mem records differ on %s", path);
}

/* scan_file - scan the file at path; rc, error text and records */
static int scan_file(const char *path, struct seen *seen, const char **error)
{
    struct qf_reader r;
    struct stream *s;
    int fd, rc;

    if ((fd = open(path, O_RDONLY)) < 0)
	msg_fatal("open %s: %m", path);
    s = stream_open(fd);
    qf_reader_init(&r, s, 0);
    if (seen)
	memset(seen, 0, sizeof(*seen));
    rc = qf_scan(&r, QF_RECORD_MAX, seen ? collect : NULL, seen, error);
    stream_close(&s);
    scan_mem_same(path, rc, seen, rc < 0 ? *error : NULL);
    return rc;
}

/* scan_bytes - write bytes to a file and scan it */
static int scan_bytes(const char *bytes, size_t len, const char **error)
{
    const char *path = tmp_path("bytes");
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

    if (fd < 0 || write(fd, bytes, len) != (ssize_t) len || close(fd) != 0)
	msg_fatal("write %s: %m", path);
    return scan_file(path, NULL, error);
}

/* contains - text contains want */
static bool contains(const char *text, const char *want)
{
    return text != NULL && strstr(text, want) != NULL;
}

/* envelope - a minimal valid envelope into out */
static void envelope(struct str *out)
{
    qf_encode(out, 'V', "posthorn-queue 1", 16);
    qf_encode(out, 'T', "1700000000.000001", 17);
    qf_encode(out, 'S', "s@example.test", 14);
    qf_encode(out, 'R', "r@example.test", 14);
}

static void put_unknown_type(void *arg)
{
    struct stream *s = stream_open(-1);

    (void) arg;
    (void) qf_put(s, 'Q', "x", 1);
}

static void put_too_long(void *arg)
{
    struct stream *s = stream_open(-1);

    (void) arg;
    (void) qf_put(s, 'L', "", QF_RECORD_MAX + 1);
}

int main(void)
{
    const char *path;
    const char *error;
    struct stream *s;
    struct seen seen;
    struct str *bytes;
    off_t rcpt_b = -1, sender_at = -1;
    char longline[100];
    int fd;

    msg_init("test-queue_file", MSG_TO_STDERR);
    if (mkdtemp(tmpdir) == NULL)
	msg_fatal("mkdtemp: %m");
    path = mem_strdup(tmp_path("qf"));
    memset(longline, 'x', sizeof(longline));

    unit_begin("write a queue file");
    fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    unit_assert(fd >= 0);
    s = stream_open(fd);
    unit_assert(qf_put_version(s) == 0);
    unit_assert(qf_put_time(s, 1700000000, 123456) == 0);
    unit_assert(qf_puts(s, QF_REC_SENDER, "") == 0);
    unit_assert(qf_put_attr(s, "client_address", "192.0.2.1") == 0);
    unit_assert(qf_put_attr(s, "helo", "") == 0);
    unit_assert(qf_puts(s, QF_REC_ORCPT, "rfc822;a@example.test") == 0);
    unit_assert(qf_puts(s, QF_REC_NOTIFY, "success,failure") == 0);
    unit_assert(qf_puts(s, QF_REC_RCPT, "a@example.test") == 0);
    unit_assert(qf_puts(s, QF_REC_RCPT, "b@example.test") == 0);
    unit_assert(qf_put(s, QF_REC_MESSAGE, "", 0) == 0);
    unit_assert(qf_put_line(s, "Subject: hi", 11, 1000) == 0);
    unit_assert(qf_put_line(s, "", 0, 1000) == 0);
    unit_assert(qf_put_line(s, longline, sizeof(longline), 40) == 0);	/* C C L */
    unit_assert(qf_put_line(s, "bin\0\\\x7f", 6, 1000) == 0);
    unit_assert(qf_put(s, QF_REC_XEND, "", 0) == 0);
    unit_assert(qf_puts(s, QF_REC_RCPT, "c@example.test") == 0);
    unit_assert(qf_put(s, QF_REC_END, "", 0) == 0);
    unit_assert(stream_flush(s) == 0);
    unit_assert(fsync(fd) == 0);
    stream_free(&s);
    unit_end();

    unit_begin("read it back: every record, type, data and offset");
    {
	static const struct {
	    int type;
	    const char *data;
	} want[] = {
	    {'V', "posthorn-queue 1"}, {'T', "1700000000.123456"}, {'S', ""},
	    {'A', "client_address=192.0.2.1"}, {'A', "helo="}, {'O', "rfc822;a@example.test"},
	    {'N', "success,failure"}, {'R', "a@example.test"}, {'R', "b@example.test"},
	    {'M', ""}, {'L', "Subject: hi"}, {'L', ""},
	    {'C', "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
	    {'C', "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
	    {'L', "xxxxxxxxxxxxxxxxxxxx"}, {'L', "bin"}, {'X', ""},
	    {'R', "c@example.test"}, {'E', ""},
	};
	off_t expect_off = 0;

	unit_assert(scan_file(path, &seen, &error) == 0);
	unit_assert_inteq(seen.count, sizeof(want) / sizeof(want[0]));
	for (int i = 0; i < seen.count && i < (int) (sizeof(want) / sizeof(want[0])); i++) {
	    unit_assert_idx(seen.types[i] == want[i].type, i);
	    unit_assert_streq_idx(seen.data[i], want[i].data, i);
	    unit_assert_idx(seen.offsets[i] == expect_off, i);
	    expect_off += QF_HEADER_SIZE + (off_t) (i == 15 ? 6 : strlen(want[i].data));
	}
	rcpt_b = seen.offsets[8];
	sender_at = seen.offsets[2];
	{
	    struct stat st;

	    unit_assert(stat(path, &st) == 0 && st.st_size == expect_off);
	}
    }
    unit_end();

    unit_begin("a visitor can stop the scan early");
    {
	struct qf_reader r;

	fd = open(path, O_RDONLY);
	s = stream_open(fd);
	qf_reader_init(&r, s, 0);
	unit_assert(qf_scan(&r, QF_RECORD_MAX, stop_at_message, NULL, &error) == 7);
	stream_close(&s);
    }
    unit_end();

    unit_begin("mark a recipient done in place; reread shows it done");
    fd = open(path, O_RDWR);
    unit_assert(fd >= 0);
    unit_assert(qf_mark_done(fd, rcpt_b, &error) == 0);
    unit_assert(qf_mark_done(fd, rcpt_b, &error) == 0);		/* idempotent */
    unit_assert(qf_mark_done(fd, sender_at, &error) < 0);
    unit_assert_streq(error, "mark done: no recipient record at offset 43 (found 'S')");
    unit_assert(qf_mark_done(fd, 1000000, &error) < 0);
    unit_assert(contains(error, "past the end of the file"));
    close(fd);
    unit_assert(scan_file(path, &seen, &error) == 0);
    unit_assert(seen.types[7] == 'R');
    unit_assert(seen.types[8] == 'D');
    unit_assert_streq(seen.data[8], "b@example.test");
    unit_assert(seen.types[17] == 'R');
    unit_end();

    unit_begin("dump prints every record readably");
    {
	const char *out_path = tmp_path("dump");
	struct qf_reader r;
	struct stream *out;
	char got[4096];
	ssize_t n;
	int ofd;
	static const char want[] =
	    "         0 version: posthorn-queue 1\n"
	    "        21 time: 1700000000.123456 (2023-11-14 22:13:20 UTC)\n"
	    "        43 sender: <>\n"
	    "        48 attribute: client_address=192.0.2.1\n"
	    "        77 attribute: helo=\n"
	    "        87 orcpt: rfc822;a@example.test\n"
	    "       113 notify: success,failure\n"
	    "       133 recipient: a@example.test\n"
	    "       152 done: b@example.test\n"
	    "       171 message:\n"
	    "       176 line: Subject: hi\n"
	    "       192 line:\n"
	    "       197 continued: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
	    "       242 continued: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
	    "       287 line: xxxxxxxxxxxxxxxxxxxx\n"
	    "       312 line: bin\\x00\\\\\\x7f\n"
	    "       323 end-of-content:\n"
	    "       328 recipient: c@example.test\n"
	    "       347 end:\n";

	fd = open(path, O_RDONLY);
	ofd = open(out_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	s = stream_open(fd);
	out = stream_open(ofd);
	qf_reader_init(&r, s, 0);
	unit_assert(qf_dump(&r, out, QF_DUMP_OFFSETS, &error) == 0);
	n = pread(ofd, got, sizeof(got) - 1, 0);
	got[n > 0 ? n : 0] = 0;
	unit_assert_streq(got, want);
	stream_close(&s);
	stream_close(&out);
    }
    unit_end();

    unit_begin("every truncation of a valid file is rejected");
    {
	char all[4096];
	ssize_t len;
	bool all_rejected = true;

	fd = open(path, O_RDONLY);
	len = read(fd, all, sizeof(all));
	close(fd);
	unit_assert(len > 300);
	unit_assert(scan_bytes(all, (size_t) len, &error) == 0);
	for (ssize_t cut = 0; cut < len; cut++) {
	    error = NULL;
	    if (scan_bytes(all, (size_t) cut, &error) != -1 || !contains(error, "corrupt queue file")) {
		all_rejected = false;
		printf("  cut at %zd: %s\n", cut, error ? error : "(accepted)");
	    }
	}
	unit_assert(all_rejected);
	unit_assert(scan_bytes(all, 20, &error) < 0);
	unit_assert_streq(error, "corrupt queue file: record 'V' length 16 runs past end of file at offset 0");
	unit_assert(scan_bytes(all, 23, &error) < 0);
	unit_assert_streq(error, "corrupt queue file: truncated record header at offset 21");
	unit_assert(scan_bytes(all, 21, &error) < 0);
	unit_assert_streq(error, "corrupt queue file: premature end of file (no end record) at offset 21");
	unit_assert(scan_bytes(all, (size_t) len - 5, &error) < 0);	/* no 'E' */
	unit_assert_streq(error, "corrupt queue file: premature end of file (no end record) at offset 347");
	/* one extra byte after 'E' */
	all[len] = 'E';
	unit_assert(scan_bytes(all, (size_t) len + 1, &error) < 0);
	unit_assert_streq(error, "corrupt queue file: data after the end record at offset 352");
    }
    unit_end();

    unit_begin("damaged files are rejected with the offset");
    bytes = str_new(4 << 20);
    {
	enum { ENV_END = 21 + 22 + 19 + 19 };	/* offset after envelope() */
	static const struct {
	    const char *name;
	    const char *want;
	} cases[] = {
	    {"unknown type in envelope", "unexpected record type 'Q' at offset 81"},
	    {"content type in envelope", "unexpected record type 'L' at offset 81"},
	    {"envelope type in content", "unexpected record type 'R' at offset 86"},
	    {"binary type byte", "unexpected record type \\x00 at offset 81"},
	    {"length past EOF", "record 'L' length 100 runs past end of file at offset 86"},
	    {"length over the limit", "record 'L' of 2097152 bytes exceeds the limit of 1048576 at offset 86"},
	    {"no version first", "unexpected record type 'T' at offset 0"},
	    {"future version", "unsupported queue file version at offset 0"},
	    {"not ours", "not a posthorn queue file"},
	    {"two senders", "second sender record at offset 81"},
	    {"no time", "no time record in envelope at offset"},
	    {"no recipients", "no recipients at offset"},
	    {"orcpt without recipient", "orcpt or notify record without a recipient at offset 94"},
	    {"bad notify", "bad notify record at offset 81"},
	    {"NUL in sender", "NUL byte in record 'S' at offset 43"},
	    {"continued line at xend", "continued line without its end at offset 91"},
	    {"bad attribute", "bad attribute record at offset 81"},
	    {"empty recipient", "empty recipient at offset 81"},
	    {"end with data", "end record with data"},
	    {"second version", "unexpected record type 'V' at offset 81"},
	    {"line feed in a line", "line feed inside content record 'L' at offset 86"},
	    {"line feed in a piece", "line feed inside content record 'C' at offset 86"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    const char *name = cases[i].name;
	    bool tail = true;

	    str_reset(bytes);
	    if (strcmp(name, "no version first") == 0) {
		qf_encode(bytes, 'T', "1", 1);
		tail = false;
	    } else if (strcmp(name, "future version") == 0) {
		qf_encode(bytes, 'V', "posthorn-queue 2", 16);
		tail = false;
	    } else if (strcmp(name, "not ours") == 0) {
		qf_encode(bytes, 'V', "postfix 1", 9);
		tail = false;
	    } else if (strcmp(name, "no time") == 0) {
		qf_encode(bytes, 'V', "posthorn-queue 1", 16);
		qf_encode(bytes, 'S', "", 0);
		qf_encode(bytes, 'R', "r", 1);
	    } else if (strcmp(name, "NUL in sender") == 0) {
		qf_encode(bytes, 'V', "posthorn-queue 1", 16);
		qf_encode(bytes, 'T', "1700000000.000001", 17);
		qf_encode(bytes, 'S', "a\0b", 3);
		tail = false;
	    } else if (strcmp(name, "no recipients") == 0) {
		qf_encode(bytes, 'V', "posthorn-queue 1", 16);
		qf_encode(bytes, 'T', "1700000000", 10);
		qf_encode(bytes, 'S', "", 0);
	    } else {
		envelope(bytes);
		unit_assert_idx(bytes->len == ENV_END, i);
	    }
	    if (strcmp(name, "unknown type in envelope") == 0)
		str_append_or_panic(bytes, "Q\0\0\0\0", 5);
	    else if (strcmp(name, "content type in envelope") == 0)
		qf_encode(bytes, 'L', "x", 1);
	    else if (strcmp(name, "binary type byte") == 0)
		str_append_or_panic(bytes, "\0\0\0\0\0", 5);
	    else if (strcmp(name, "two senders") == 0)
		qf_encode(bytes, 'S', "x", 1);
	    else if (strcmp(name, "orcpt without recipient") == 0)
		qf_encode(bytes, 'O', "rfc822;x", 8);
	    else if (strcmp(name, "bad notify") == 0)
		qf_encode(bytes, 'N', "success,success", 15);
	    else if (strcmp(name, "bad attribute") == 0)
		qf_encode(bytes, 'A', "Bad=1", 5);
	    else if (strcmp(name, "empty recipient") == 0)
		qf_encode(bytes, 'R', "", 0);
	    else if (strcmp(name, "second version") == 0)
		qf_encode(bytes, 'V', "posthorn-queue 1", 16);
	    if (tail) {
		qf_encode(bytes, 'M', "", 0);
		if (strcmp(name, "envelope type in content") == 0)
		    qf_encode(bytes, 'R', "x", 1);
		else if (strcmp(name, "length past EOF") == 0)
		    str_append_or_panic(bytes, "L\0\0\0\144abc", 8);
		else if (strcmp(name, "length over the limit") == 0)
		    str_append_or_panic(bytes, "L\0\040\0\0abc", 8);
		else if (strcmp(name, "continued line at xend") == 0)
		    qf_encode(bytes, 'C', "", 0);
		else if (strcmp(name, "line feed in a line") == 0)
		    qf_encode(bytes, 'L', "x\nFrom y", 8);
		else if (strcmp(name, "line feed in a piece") == 0) {
		    qf_encode(bytes, 'C', "x\n", 2);
		    qf_encode(bytes, 'L', "y", 1);
		}
		qf_encode(bytes, 'X', "", 0);
		qf_encode(bytes, 'E', strcmp(name, "end with data") == 0 ? "x" : "", strcmp(name, "end with data") == 0);
	    }
	    error = NULL;
	    unit_assert_idx(scan_bytes(bytes->data, bytes->len, &error) == -1, i);
	    if (!contains(error, cases[i].want))
		printf("  case %zu (%s): got \"%s\"\n", i, name, error ? error : "(null)");
	    unit_assert_idx(contains(error, cases[i].want), i);
	    unit_assert_idx(contains(error, "corrupt queue file: "), i);
	}
    }
    unit_end();

    unit_begin("qf_get: whitelist, limit and clean EOF, record by record");
    {
	struct qf_reader r;
	struct str *data = str_new(QF_RECORD_MAX);
	int type;
	off_t at;

	str_reset(bytes);
	envelope(bytes);
	qf_encode(bytes, 'A', "k=v", 3);
	unit_assert(scan_bytes(bytes->data, bytes->len, &error) < 0);	/* no M/X/E */
	fd = open(tmp_path("bytes"), O_RDONLY);
	s = stream_open(fd);
	qf_reader_init(&r, s, 0);
	unit_assert(qf_get(&r, &type, data, 100, QF_TYPES_FIRST, &at, &error) == 1);
	unit_assert(type == 'V' && at == 0 && r.offset == 21);
	unit_assert(qf_get(&r, &type, data, 100, "SONRM", &at, &error) < 0);
	unit_assert_streq(error, "corrupt queue file: unexpected record type 'T' at offset 21");
	stream_close(&s);

	fd = open(tmp_path("bytes"), O_RDONLY);
	s = stream_open(fd);
	qf_reader_init(&r, s, 0);
	unit_assert(qf_get(&r, &type, data, 10, QF_TYPES_FIRST, &at, &error) < 0);
	unit_assert_streq(error, "corrupt queue file: record 'V' of 16 bytes exceeds the limit of 10 at offset 0");
	stream_close(&s);

	fd = open(tmp_path("bytes"), O_RDONLY);
	s = stream_open(fd);
	qf_reader_init(&r, s, 0);
	for (int i = 0; i < 5; i++)
	    unit_assert_idx(qf_get(&r, &type, data, 100, "VTSRA", NULL, &error) == 1, i);
	unit_assert(type == 'A' && strcmp(data->data, "k=v") == 0);
	unit_assert(qf_get(&r, &type, data, 100, "VTSRA", NULL, &error) == 0);
	stream_close(&s);
	str_free(&data);
    }
    unit_end();

    unit_begin("random damage never crashes the reader");
    {
	char all[4096];
	ssize_t len;
	uint64_t seed = 42;
	int accepted = 0, rejected = 0;

	fd = open(path, O_RDONLY);
	len = read(fd, all, sizeof(all));
	close(fd);
	for (int i = 0; i < 3000; i++) {
	    char copy[4096];
	    int flips;

	    memcpy(copy, all, (size_t) len);
	    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	    flips = 1 + (int) ((seed >> 60) & 3);
	    for (int f = 0; f < flips; f++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		copy[(seed >> 33) % (uint64_t) len] = (char) (seed >> 20);
	    }
	    if (scan_bytes(copy, (size_t) len, &error) == 0)
		accepted++;
	    else if (contains(error, "corrupt queue file"))
		rejected++;
	}
	unit_assert_inteq(accepted + rejected, 3000);
	unit_assert(rejected > 1000);
    }
    unit_end();

    unit_begin("attribute split");
    {
	size_t nlen;
	const char *value;

	unit_assert(qf_attr_split("helo=mx=1", 9, &nlen, &value));
	unit_assert(nlen == 4 && strcmp(value, "mx=1") == 0);
	unit_assert(!qf_attr_split("=x", 2, &nlen, &value));
	unit_assert(!qf_attr_split("noequals", 8, &nlen, &value));
	unit_assert(!qf_attr_split("Helo=x", 6, &nlen, &value));
    }
    unit_end();

    unit_begin("writer misuse panics");
    unit_assert(unit_expect_exit(put_unknown_type, NULL, UNIT_EXIT_SIGNAL, 6, "unknown record type"));
    unit_assert(unit_expect_exit(put_too_long, NULL, UNIT_EXIT_SIGNAL, 6, "exceeds"));
    unit_end();

    str_free(&bytes);
    {
	char cmd[300];

	fmt_buf_or_panic(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
	    msg_warn("could not remove %s", tmpdir);
    }
    mem_free(&path);
    return unit_done();
}
