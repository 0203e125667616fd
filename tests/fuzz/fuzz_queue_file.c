/* fuzz_queue_file.c - libFuzzer target for the queue-file reader
 * (lib/mail/queue_file.c): qf_scan_mem on memory, qf_scan and qf_get
 * through a stream that hands the bytes out in short reads.
 *
 * Input: byte 0 picks the stream's read size (1..64, or 4096 when its top
 * bit is set); byte 1 the record limit (max) passed to the readers
 * (16 << (byte & 15), at most QF_RECORD_MAX); the rest is the file.
 * Properties (a failure aborts):
 *  - qf_scan_mem and qf_scan over a stream agree: the same result, the
 *    same error text, the same records (type, offset, data) in the same
 *    order;
 *  - qf_get returns records at increasing offsets, each no longer than
 *    max, of an allowed type, and L and C records never hold an LF;
 *    'A' records that qf_attr_split accepts have a valid name. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "mem.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "queue_file.h"

/* fuzz */
#include "mem_stream.h"

#define ALL_TYPES	"VTSAONRDMLCXE"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

/* What a scan saw: a running digest of every record. */
struct scan_log {
    uint64_t digest;
    long records;
};

/* mix - fold bytes into a digest (FNV-1a) */
static uint64_t mix(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < len; i++)
	h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* visit - note one record */
static int visit(int type, const struct str *data, off_t offset, void *ctx)
{
    struct scan_log *log = ctx;
    int64_t off = (int64_t) offset;

    log->records++;
    log->digest = mix(log->digest, &type, sizeof(type));
    log->digest = mix(log->digest, &off, sizeof(off));
    log->digest = mix(log->digest, str_cstr(data), str_len(data));
    return 0;
}

/* get_all - read every record with qf_get and check each */
static void get_all(const uint8_t *file, size_t len, size_t chunk, size_t max)
{
    struct mem_stream m;
    struct stream *s = mem_stream_open(&m, file, len, chunk);
    struct qf_reader r;
    struct str *rec = str_new(QF_RECORD_MAX);
    off_t at, last = -1;
    const char *err;
    int type;

    qf_reader_init(&r, s, 0);
    while (qf_get(&r, &type, rec, max, ALL_TYPES, &at, &err) == 1) {
	check(at > last);
	last = at;
	check(str_len(rec) <= max);
	check(type != 0 && strchr(ALL_TYPES, type) != NULL);
	if (type == QF_REC_LINE || type == QF_REC_CONT)
	    check(memchr(str_cstr(rec), '\n', str_len(rec)) == NULL);
	if (type == QF_REC_ATTR) {
	    size_t name_len;
	    const char *value;

	    if (qf_attr_split(str_cstr(rec), str_len(rec), &name_len, &value)) {
		check(name_len >= 1 && name_len <= QF_ATTR_NAME_MAX);
		check(value >= str_cstr(rec) + name_len);
	    }
	}
    }
    str_free(&rec);
    stream_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scan_log mem_log = {0xcbf29ce484222325ULL, 0}, stream_log = mem_log;
    char mem_err[512];
    const uint8_t *file;
    struct mem_stream m;
    struct stream *s;
    struct qf_reader r;
    size_t len, chunk, max;
    const char *err = NULL;
    int mem_rc, stream_rc;

    if (size < 2)
	return 0;
    chunk = data[0] & 0x80 ? 4096 : 1 + (size_t) (data[0] & 0x3f);
    max = (size_t) 16 << (data[1] & 15);
    if (max > QF_RECORD_MAX)
	max = QF_RECORD_MAX;
    file = data + 2;
    len = size - 2;

    mem_rc = qf_scan_mem(file, len, max, visit, &mem_log, &err);
    fmt_buf_cut(mem_err, sizeof(mem_err), "%s", mem_rc < 0 && err ? err : "");

    s = mem_stream_open(&m, file, len, chunk);
    qf_reader_init(&r, s, 0);
    err = NULL;
    stream_rc = qf_scan(&r, max, visit, &stream_log, &err);
    check(mem_rc == stream_rc);
    if (stream_rc < 0)
	check(err != NULL && strcmp(mem_err, err) == 0);
    check(mem_log.records == stream_log.records);
    check(mem_log.digest == stream_log.digest);
    stream_free(&s);

    get_all(file, len, chunk, max);
    return 0;
}
