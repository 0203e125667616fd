/* queue_file_scan.c - whole queue files: qf_scan and qf_scan_mem read
 * every record under the queue-file profile of the record grammar
 * (record_grammar.h), and qf_dump prints them readably (posthorn queue
 * cat). Declared in queue_file.h with the record format itself; kept in
 * a file of its own so that the format (queue_file.c) stays below the
 * grammar that uses it. */

/* System. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Base. */
#include "str.h"
#include "stream.h"

/* Mail. */
#include "queue_file.h"
#include "record_grammar.h"

/* qf_scan - a whole file from a reader, checked against the grammar */
int qf_scan(struct qf_reader *r, size_t max, qf_visit_fn visit, void *ctx, const char **error_r)
{
    struct record_grammar grammar;
    struct str data;
    off_t at;
    int type, rc;

    record_grammar_init(&grammar, RECORD_PROFILE_QUEUE_FILE, 0);
    str_init(&data, max > QF_RECORD_MAX ? QF_RECORD_MAX : max);
    while ((rc = record_grammar_get(&grammar, r, &type, &data, &at, error_r)) > 0)
	if (visit && (rc = visit(type, &data, at, ctx)) != 0)
	    break;
    str_fini(&data);
    return rc;
}

/* qf_scan_mem - the same over a whole file in memory (offsets from 0) */
int qf_scan_mem(const void *buf, size_t len, size_t max, qf_visit_fn visit, void *ctx,
		const char **error_r)
{
    struct qf_reader r;

    qf_reader_init_mem(&r, buf, len);
    return qf_scan(&r, max, visit, ctx, error_r);
}

/*
 * Dump.
 */

struct qf_dump_ctx {
    struct stream *out;
    int flags;
    bool failed;
};

/* qf_dump_escape - data with \\ and \xNN for non-printable bytes */
static void qf_dump_escape(struct stream *out, const char *data, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
	unsigned char c = (unsigned char) data[i];

	if (c >= 0x20 && c < 0x7f && c != '\\')
	    continue;
	(void) stream_write(out, data + start, i - start);
	if (c == '\\')
	    (void) stream_puts(out, "\\\\");
	else
	    (void) stream_printf(out, "\\x%02x", c);
	start = i + 1;
    }
    (void) stream_write(out, data + start, len - start);
}

/* qf_dump_visit - print one record */
static int qf_dump_visit(int type, const struct str *data, off_t offset, void *ctx)
{
    struct qf_dump_ctx *d = ctx;

    if (d->flags & QF_DUMP_OFFSETS)
	(void) stream_printf(d->out, "%10lld ", (long long) offset);
    (void) stream_printf(d->out, "%s:", qf_type_name(type));
    if (data->len > 0 || type == QF_REC_SENDER)
	(void) stream_puts(d->out, " ");
    if (type == QF_REC_SENDER && data->len == 0)
	(void) stream_puts(d->out, "<>");
    qf_dump_escape(d->out, data->data, data->len);
    if (type == QF_REC_TIME) {
	long long sec = 0;
	char when[64];
	struct tm tm;
	time_t t;

	for (size_t i = 0; i < data->len && data->data[i] != '.'; i++)
	    sec = sec * 10 + (data->data[i] - '0');
	t = (time_t) sec;
	if (gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) > 0)
	    (void) stream_printf(d->out, " (%s)", when);
    }
    if (stream_puts(d->out, "\n") < 0)
	d->failed = true;
    return 0;
}

/* qf_dump - print every record readably */
int qf_dump(struct qf_reader *r, struct stream *out, int flags, const char **error_r)
{
    struct qf_dump_ctx d = {.out = out, .flags = flags};
    int rc;

    rc = qf_scan(r, QF_RECORD_MAX, qf_dump_visit, &d, error_r);
    if (stream_flush(out) < 0 || d.failed) {
	if (rc == 0 && error_r)
	    *error_r = "write error on output";
	rc = -1;
    }
    return rc;
}

