/* fuzz_sc_content.c - libFuzzer target for smtp-client's content writer
 * (smtp-client/sc_content.c: the MIME walk, the quoted-printable
 * conversions and the wire rules). The module is not in the library, so
 * this file compiles it in.
 *
 * Input: byte 0 the SC_OUT_* flags (bits 0-2), bit 3: the sink fails
 * after 64 bytes; byte 1 the record piece size (1..64, or 1000 when bit
 * 7 is set); byte 2 the line limit (78 + 4 * (byte % 231)); the rest is
 * the content, one line per "\n" (stored with qf_put_line into a memfd
 * queue file). Properties (a failure aborts):
 *  - sc_content_scan counts the lines and the size as stored;
 *  - the write ends OK, with the sink's error, or CANNOT_CONVERT with a
 *    reason and nothing written;
 *  - the output ends in CR LF, every LF follows a CR, no line (between
 *    CR LFs) is over the limit (one more for a stuffed dot);
 *  - with ENCODE_BINARY or DOT_STUFF no CR but in CR LF and no NUL;
 *    with ENCODE_8BIT no byte >= 0x80; with DOT_STUFF no line is ".";
 *  - without flags and without long lines the output is the input,
 *    byte for byte, with CR LF line ends. */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* base */
#include "str.h"
#include "stream.h"

/* mail */
#include "queue_file.h"

/* the module under test */
#include "../../smtp-client/sc_content.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

struct fuzz_sink {
    struct str *out;
    long fail_after;			/* -1: never */
    int calls;
};

/* fuzz_write - collect, or fail past fail_after bytes */
static int fuzz_write(void *ctx, const char *buf, size_t len, const char **error_r)
{
    struct fuzz_sink *fs = ctx;

    fs->calls++;
    if ((fs->fail_after >= 0 && (long) (str_len(fs->out) + len) > fs->fail_after)
	|| !str_try_append(fs->out, buf, len)) {
	*error_r = "fuzz sink failed";
	return -1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sc_content_info info;
    struct fuzz_sink fs;
    struct sc_sink sink;
    struct stream *s;
    const char *err = NULL, *text, *end, *p, *nl;
    unsigned flags;
    size_t piece, limit, lines = 0, bytes = 0;
    enum sc_content_status st;
    bool long_line = false;
    int fd;

    if (size < 3)
	return 0;
    flags = data[0] & 7;
    piece = (data[1] & 0x80) ? 1000 : (size_t) (data[1] & 63) + 1;
    limit = 78 + 4 * (size_t) (data[2] % 231);
    text = (const char *) data + 3;
    end = (const char *) data + size;

    if ((fd = memfd_create("fuzz_sc_content", 0)) < 0)
	abort();
    s = stream_open(fd);
    check(qf_put(s, QF_REC_MESSAGE, "", 0) == 0);
    for (p = text; p < end; p = nl + 1) {
	if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL)
	    nl = end;
	check(qf_put_line(s, p, (size_t) (nl - p), piece) == 0);
	lines++;
	bytes += (size_t) (nl - p);
	if ((size_t) (nl - p) > limit)
	    long_line = true;
    }
    check(qf_put(s, QF_REC_XEND, "", 0) == 0 && qf_put(s, QF_REC_END, "", 0) == 0);
    check(stream_flush(s) == 0);
    stream_free(&s);

    check(sc_content_scan(fd, 0, (long) limit, &info, &err) == 0);
    check(info.lines == (long) lines && info.size == (long) (bytes + 2 * lines));
    check(info.long_lines == long_line);

    fs.out = str_new((size_t) 1 << 26);
    fs.fail_after = (data[0] & 8) ? 64 : -1;
    fs.calls = 0;
    sink.write = fuzz_write;
    sink.ctx = &fs;
    st = sc_content_write(fd, 0, (long) limit, flags, &sink, &err);
    check(st == SC_CONTENT_OK || st == SC_CONTENT_CANNOT_CONVERT || st == SC_CONTENT_SINK_ERROR);
    check(err != NULL || st == SC_CONTENT_OK);
    if (st == SC_CONTENT_CANNOT_CONVERT)
	check(fs.calls == 0 || (data[0] & 8) == 0);
    if (st == SC_CONTENT_SINK_ERROR)
	check(fs.fail_after >= 0 && strcmp(err, "fuzz sink failed") == 0);
    if (st == SC_CONTENT_CANNOT_CONVERT)
	check(str_len(fs.out) == 0);
    if (st == SC_CONTENT_OK) {
	const char *o = str_cstr(fs.out);
	size_t n = str_len(fs.out), col = 0;
	bool strict = (flags & (SC_OUT_ENCODE_BINARY | SC_OUT_DOT_STUFF)) != 0;

	check((n == 0) == (lines == 0));
	check(n == 0 || (n >= 2 && o[n - 2] == '\r' && o[n - 1] == '\n'));
	for (size_t i = 0; i < n; i++) {
	    unsigned char c = (unsigned char) o[i];

	    if (c == '\n') {
		check(i > 0 && o[i - 1] == '\r');
		continue;
	    }
	    if (c == '\r' && i + 1 < n && o[i + 1] == '\n') {
		size_t start = i - col;
		bool stuffed = (flags & SC_OUT_DOT_STUFF) && col > 0 && o[start] == '.';

		check(col <= limit + (stuffed ? 1 : 0));
		if (flags & SC_OUT_DOT_STUFF)
		    check(!(col == 1 && o[start] == '.'));
		col = 0;
		continue;
	    }
	    if (strict)
		check(c != '\r' && c != 0);
	    if (flags & SC_OUT_ENCODE_8BIT)
		check(c < 0x80);
	    col++;
	}
	if (flags == 0 && !long_line) {	/* nothing to change: identity */
	    size_t k = 0;

	    for (p = text; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL)
		    nl = end;
		check(k + (size_t) (nl - p) + 2 <= n && memcmp(o + k, p, (size_t) (nl - p)) == 0);
		k += (size_t) (nl - p);
		check(o[k] == '\r' && o[k + 1] == '\n');
		k += 2;
	    }
	    check(k == n);
	}
    }
    str_free(&fs.out);
    close(fd);
    return 0;
}
