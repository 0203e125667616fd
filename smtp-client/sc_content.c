/* sc_content.c - the message content as smtp-client sends it: the queue
 * file's L/C records joined into lines, every line ended by CR LF,
 * dot-stuffed for DATA, header lines folded to the line length limit,
 * and body parts converted to quoted-printable where the peer or the
 * limit needs it (sc_content.h has the interface, docs/smtp-client-
 * content.md the policy and the smuggling argument). */

/* System library. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "queue_file.h"

/* This program. */
#include "sc_content.h"

#define SC_PREFIX_MAX	256		/* line start looked at before deciding */
#define SC_OBUF_FLUSH	(64 * 1024)	/* hand output to the sink at this size */
#define SC_LIMIT_MIN	20		/* line limits are clamped to ... */
#define SC_LIMIT_MAX	998		/* ... this range (RFC 5321 4.5.3.1.6) */

static struct errtext sc_error;

/* ---------------------------------------------------------------------
 * Reading: M, then L/C records joined into lines, then X. Each line is
 * given to the consumer as a start (its first SC_PREFIX_MAX bytes, to
 * classify it), then all of its bytes in pieces, then its end.
 * --------------------------------------------------------------------- */

/* The passes: what a line is for (the top-level header, the body) and
 * what happens to it. */
enum sc_pass { SC_PASS_SCAN, SC_PASS_WRITE };

struct sc_job {
    enum sc_pass pass;
    size_t limit;			/* longest line sent */
    unsigned flags;			/* SC_OUT_* */
    const char *error;			/* the text of a status that is not OK */
    /* the line being read */
    size_t line_len;			/* bytes so far */
    bool in_header;			/* the top-level header */
    bool header_seen_field;		/* a field started the header */
    /* scan */
    struct sc_content_info *info;
    /* write: the header folder and the wire */
    const struct sc_sink *sink;
    struct str *obuf;			/* output not yet given to the sink */
    size_t col;				/* bytes on the current output line */
    bool hdr_line;			/* the current line goes through fold */
    struct str *fold;			/* a header line not yet out */
};

static int job_line_begin(struct sc_job *job, const char *prefix, size_t plen, bool whole);
static int job_line_data(struct sc_job *job, const char *data, size_t len);
static int job_line_end(struct sc_job *job);

/* sc_walk - read the content at data_offset and feed its lines to job;
 * SC_CONTENT_OK or the first status that is not (*error_r set) */
static int sc_walk(int fd, long data_offset, struct sc_job *job, const char **error_r)
{
    struct stream *s;
    struct qf_reader r;
    struct str *rec;
    char prefix[SC_PREFIX_MAX];
    size_t plen = 0;
    bool in_line = false;		/* a C record started the current line */
    bool begun = false;			/* its start was given to the job */
    int type, got, ret = SC_CONTENT_OK;
    const char *err;

    if (data_offset < 0 || lseek(fd, (off_t) data_offset, SEEK_SET) < 0) {
	errtext_fail(&sc_error, error_r, "seek queue file to %ld: %s", data_offset,
		     strerror(errno));
	return SC_CONTENT_READ_ERROR;
    }
    s = stream_open(fd);
    rec = str_new(QF_RECORD_MAX);
    qf_reader_init(&r, s, (off_t) data_offset);
    if ((got = qf_get(&r, &type, rec, QF_RECORD_MAX, "M", NULL, &err)) <= 0) {
	errtext_fail(&sc_error, error_r, "%s", got < 0 ? err :
		     "queue file: content missing (no message record)");
	ret = SC_CONTENT_READ_ERROR;
	goto out;
    }
    for (;;) {
	if ((got = qf_get(&r, &type, rec, QF_RECORD_MAX, QF_TYPES_CONTENT, NULL, &err)) <= 0) {
	    errtext_fail(&sc_error, error_r, "%s", got < 0 ? err :
			 "queue file: content ends without its end record");
	    ret = SC_CONTENT_READ_ERROR;
	    break;
	}
	if (type == QF_REC_XEND) {
	    if (in_line) {
		errtext_fail(&sc_error, error_r,
			     "corrupt queue file: continued line at the end of the content");
		ret = SC_CONTENT_READ_ERROR;
	    }
	    break;
	}
	const char *data = str_cstr(rec);
	size_t len = str_len(rec);
	bool last = type == QF_REC_LINE;

	if (!begun) {
	    size_t take = len < SC_PREFIX_MAX - plen ? len : SC_PREFIX_MAX - plen;

	    memcpy(prefix + plen, data, take);
	    plen += take;
	    if (plen < SC_PREFIX_MAX && !last) {
		in_line = true;		/* all of it went into the prefix */
		continue;
	    }
	    begun = true;
	    if ((ret = job_line_begin(job, prefix, plen, last && take == len)) != SC_CONTENT_OK
		|| (ret = job_line_data(job, prefix, plen)) != SC_CONTENT_OK)
		break;
	    data += take;
	    len -= take;
	}
	if (len > 0 && (ret = job_line_data(job, data, len)) != SC_CONTENT_OK)
	    break;
	if (last) {
	    if ((ret = job_line_end(job)) != SC_CONTENT_OK)
		break;
	    plen = 0;
	    begun = in_line = false;
	} else {
	    in_line = true;
	}
    }
    if (ret != SC_CONTENT_OK && ret != SC_CONTENT_READ_ERROR)
	*error_r = job->error;
  out:
    str_free(&rec);
    stream_free(&s);
    return ret;
}

/* ---------------------------------------------------------------------
 * Classifying lines.
 * --------------------------------------------------------------------- */

/* is_wsp - SP or HTAB */
static inline bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* field_name_len - the length of the field name when the line starts a
 * header field ("Name:" or the obsolete "Name :"), 0 otherwise */
static size_t field_name_len(const char *p, size_t len)
{
    size_t n = 0, i;

    while (n < len && (unsigned char) p[n] > 32 && (unsigned char) p[n] < 127 && p[n] != ':')
	n++;
    if (n == 0)
	return 0;
    for (i = n; i < len && is_wsp((unsigned char) p[i]); i++)
	;
    return i < len && p[i] == ':' ? n : 0;
}

/* ---------------------------------------------------------------------
 * The wire: every line ends in CR LF, a "." that starts a line is
 * doubled for DATA, no line is longer than the limit (a longer one is
 * broken there: CR LF, and a SP when the rest starts with "-", so that
 * the break never makes a MIME boundary), and with SC_OUT_ENCODE_BINARY
 * no NUL or CR goes out at all. Whatever the MIME layer above does,
 * these hold for every byte given to the sink.
 * --------------------------------------------------------------------- */

/* out_flush - give the buffered output to the sink */
static int out_flush(struct sc_job *job)
{
    const char *err = NULL;

    if (str_len(job->obuf) == 0)
	return SC_CONTENT_OK;
    if (job->sink->write(job->sink->ctx, str_cstr(job->obuf), str_len(job->obuf), &err) < 0) {
	job->error = err ? err : "write error";
	return SC_CONTENT_SINK_ERROR;
    }
    str_reset(job->obuf);
    return SC_CONTENT_OK;
}

/* out_bytes - line content to the wire */
static int out_bytes(struct sc_job *job, const char *p, size_t n)
{
    int ret;

    if ((job->flags & SC_OUT_ENCODE_BINARY) && (memchr(p, '\r', n) || memchr(p, 0, n))) {
	job->error = "NUL or bare CR in content that was not converted";
	return SC_CONTENT_CANNOT_CONVERT;
    }
    while (n > 0) {
	size_t room, take;

	if (job->col >= job->limit) {
	    str_append_or_panic(job->obuf, "\r\n", 2);
	    job->col = 0;
	    if (*p == '-') {
		str_appendc_or_panic(job->obuf, ' ');
		job->col = 1;
	    }
	}
	if (job->col == 0 && *p == '.' && (job->flags & SC_OUT_DOT_STUFF))
	    str_appendc_or_panic(job->obuf, '.');
	room = job->limit - job->col;
	take = n < room ? n : room;
	str_append_or_panic(job->obuf, p, take);
	job->col += take;
	p += take;
	n -= take;
	if (str_len(job->obuf) >= SC_OBUF_FLUSH && (ret = out_flush(job)) != SC_CONTENT_OK)
	    return ret;
    }
    return SC_CONTENT_OK;
}

/* out_eol - end the output line */
static int out_eol(struct sc_job *job)
{
    str_append_or_panic(job->obuf, "\r\n", 2);
    job->col = 0;
    return str_len(job->obuf) >= SC_OBUF_FLUSH ? out_flush(job) : SC_CONTENT_OK;
}

/* ---------------------------------------------------------------------
 * Header lines: folded at the last white space before the limit that
 * follows some other character, or, with none, broken at the limit with
 * CR LF SP. The fold buffer holds at most limit + 1 bytes of the line.
 * --------------------------------------------------------------------- */

/* fold_break - the fold buffer passed the limit: send one folded line */
static int fold_break(struct sc_job *job)
{
    const char *b = str_cstr(job->fold);
    size_t len = str_len(job->fold), first = 0, cut = 0, i;
    int ret;

    while (first < len && is_wsp((unsigned char) b[first]))
	first++;
    for (i = job->limit; i > first; i--) {
	if (is_wsp((unsigned char) b[i])) {
	    cut = i;
	    break;
	}
    }
    if (cut > 0) {
	if ((ret = out_bytes(job, b, cut)) != SC_CONTENT_OK || (ret = out_eol(job)) != SC_CONTENT_OK)
	    return ret;
	memmove(job->fold->data, b + cut, len - cut);
	if (!str_truncate(job->fold, len - cut))
	    msg_panic("fold_break: truncate");
    } else {
	if ((ret = out_bytes(job, b, job->limit)) != SC_CONTENT_OK
	    || (ret = out_eol(job)) != SC_CONTENT_OK)
	    return ret;
	memmove(job->fold->data + 1, b + job->limit, len - job->limit);
	job->fold->data[0] = ' ';
	if (!str_truncate(job->fold, len - job->limit + 1))
	    msg_panic("fold_break: truncate");
    }
    return SC_CONTENT_OK;
}

/* fold_bytes - header line content */
static int fold_bytes(struct sc_job *job, const char *p, size_t n)
{
    int ret;

    while (n > 0) {
	size_t room = job->limit + 1 - str_len(job->fold);
	size_t take = n < room ? n : room;

	str_append_or_panic(job->fold, p, take);
	p += take;
	n -= take;
	if (str_len(job->fold) > job->limit && (ret = fold_break(job)) != SC_CONTENT_OK)
	    return ret;
    }
    return SC_CONTENT_OK;
}

/* fold_eol - the end of a header line */
static int fold_eol(struct sc_job *job)
{
    int ret;

    ret = out_bytes(job, str_cstr(job->fold), str_len(job->fold));
    str_reset(job->fold);
    return ret != SC_CONTENT_OK ? ret : out_eol(job);
}

/* ---------------------------------------------------------------------
 * The passes.
 * --------------------------------------------------------------------- */

/* job_line_begin - a line starts: decide what it is */
static int job_line_begin(struct sc_job *job, const char *prefix, size_t plen, bool whole)
{
    size_t nlen = 0;

    job->line_len = 0;
    if (job->in_header) {
	if (whole && plen == 0) {
	    job->in_header = false;	/* the empty line ends the header */
	    job->hdr_line = false;
	} else if (is_wsp((unsigned char) prefix[0])
		   || (nlen = field_name_len(prefix, plen)) > 0) {
	    job->hdr_line = true;
	    if (nlen == 12 && strncasecmp(prefix, "MIME-Version", 12) == 0 && job->info)
		job->info->mime = true;
	} else {
	    job->in_header = false;	/* not a header line: the body starts */
	    job->hdr_line = false;
	}
    }
    return SC_CONTENT_OK;
}

/* job_line_data - bytes of the line */
static int job_line_data(struct sc_job *job, const char *data, size_t len)
{
    struct sc_content_info *info;
    size_t i;

    if (len == 0)
	return SC_CONTENT_OK;
    job->line_len += len;
    if (job->pass == SC_PASS_SCAN) {
	info = job->info;
	for (i = 0; i < len; i++) {
	    unsigned char c = (unsigned char) data[i];

	    if (c >= 0x80) {
		if (job->hdr_line || job->in_header)
		    info->header_8bit = true;
		else
		    info->body_8bit = true;
	    } else if (c == 0 || c == '\r') {
		info->binary = true;
	    }
	}
	return SC_CONTENT_OK;
    }
    return job->hdr_line ? fold_bytes(job, data, len) : out_bytes(job, data, len);
}

/* job_line_end - the line is complete */
static int job_line_end(struct sc_job *job)
{
    if (job->pass == SC_PASS_SCAN) {
	job->info->lines++;
	job->info->size += (long) job->line_len + 2;
	if ((long) job->line_len > (long) job->limit)
	    job->info->long_lines = true;
	return SC_CONTENT_OK;
    }
    return job->hdr_line ? fold_eol(job) : out_eol(job);
}

/* clamp_limit - the line limit actually used */
static size_t clamp_limit(long line_limit)
{
    if (line_limit < SC_LIMIT_MIN)
	return SC_LIMIT_MIN;
    if (line_limit > SC_LIMIT_MAX)
	return SC_LIMIT_MAX;
    return (size_t) line_limit;
}

/* sc_content_scan - what the content needs */
int sc_content_scan(int fd, long data_offset, long line_limit, struct sc_content_info *info,
		    const char **error_r)
{
    struct sc_job job;
    int ret;

    memset(info, 0, sizeof(*info));
    memset(&job, 0, sizeof(job));
    job.pass = SC_PASS_SCAN;
    job.limit = line_limit < 1 ? 1 : (size_t) line_limit;
    job.info = info;
    job.in_header = true;
    ret = sc_walk(fd, data_offset, &job, error_r);
    return ret == SC_CONTENT_OK ? 0 : -1;
}

/* sc_content_write - the content to the sink */
enum sc_content_status sc_content_write(int fd, long data_offset, long line_limit,
					unsigned flags, const struct sc_sink *sink,
					const char **error_r)
{
    struct sc_job job;
    int ret;

    /* DATA has no way to carry a bare CR or a NUL safely */
    if (flags & SC_OUT_DOT_STUFF)
	flags |= SC_OUT_ENCODE_BINARY;
    memset(&job, 0, sizeof(job));
    job.pass = SC_PASS_WRITE;
    job.limit = clamp_limit(line_limit);
    job.flags = flags;
    job.sink = sink;
    job.in_header = true;
    job.obuf = str_new(SC_OBUF_FLUSH + SC_LIMIT_MAX + 16);
    job.fold = str_new(SC_LIMIT_MAX + 1);
    ret = sc_walk(fd, data_offset, &job, error_r);
    if (ret == SC_CONTENT_OK && str_len(job.fold) > 0)
	msg_panic("sc_content_write: header line left in the fold buffer");
    if (ret == SC_CONTENT_OK)
	ret = out_flush(&job);
    if (ret != SC_CONTENT_OK && ret != SC_CONTENT_READ_ERROR)
	*error_r = job.error;
    str_free(&job.obuf);
    str_free(&job.fold);
    return (enum sc_content_status) ret;
}
