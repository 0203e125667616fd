/* smtp_data.c - the SMTP message content parser, shared by smtpd (DATA
 * and BDAT) and sendmail -bs (DATA): bytes in, queue-file content records
 * out. One implementation, so that the two programs cannot disagree about
 * where a message ends (SMTP smuggling) or what a line is.
 *
 * It emits one L record per line (without its terminator), with C records
 * for the pieces of a line longer than piece_max (nothing is cut). Rules:
 *   - DATA ends only at "." on a line of its own that ends in CR LF and
 *     follows a line that ended in CR LF ("\r\n.\r\n"). "\n.\n",
 *     "\r.\r", "\n.\r\n" and "\r\n.\n" never end the data.
 *   - a bare LF or a bare CR (one not part of CR LF) is a line end
 *     (smtpd_forbid_bare_newline = normalize), so the message as queued
 *     (and as sent on later, always with CR LF) has the lines this parser
 *     saw; with SMTP_DATA_REJECT_BARE the message fails once its data has
 *     ended (the caller answers 550 5.5.2 and disconnects).
 *   - a "." line that did not end the data (after a bare line end) is
 *     kept as content, not unstuffed, and reported (stray_dot).
 *   - a content record never holds CR or LF. With BODY=BINARYMIME (BDAT)
 *     bare CR and LF are data, not errors, but they still end a line:
 *     the queue stores lines, and an LF inside a record would hide lines
 *     from every reader that works on records (cleanup's header checks,
 *     the mbox writer's "From " quoting).
 * BDAT content is counted by the caller, not scanned for an end. */

#include <string.h>
#include <strings.h>

/* base */
#include "msg.h"
#include "str.h"

/* mail */
#include "queue_file.h"
#include "smtp_data.h"

/* smtp_data_bare_policy - smtpd_forbid_bare_newline's value: 1 reject,
 * 0 normalize (also yes and no), -1 not a valid value */
int smtp_data_bare_policy(const char *value)
{
    if (strcasecmp(value, "reject") == 0)
	return 1;
    if (strcasecmp(value, "normalize") == 0 || strcasecmp(value, "yes") == 0
	|| strcasecmp(value, "no") == 0)
	return 0;
    return -1;
}

/* smtp_data_init - set up the parser */
void smtp_data_init(struct smtp_data *c, int flags, size_t piece_max, uint64_t size_limit,
		    int (*emit)(void *ctx, int type, const char *data, size_t len), void *ctx)
{
    memset(c, 0, sizeof(*c));
    c->dot = (flags & SMTP_DATA_DOT) != 0;
    c->binary = (flags & SMTP_DATA_BINARY) != 0;
    /* BINARYMIME: bare CR and LF are data, never an error */
    c->reject_bare = (flags & SMTP_DATA_REJECT_BARE) && !c->binary;
    c->piece_max = piece_max ? piece_max : 2048;
    c->size_limit = size_limit;
    c->emit = emit;
    c->ctx = ctx;
    c->line = str_new(c->piece_max);
    c->at_bol = true;
    c->prev_crlf = true;		/* DATA's own line ended in CR LF */
}

/* smtp_data_fini - release */
void smtp_data_fini(struct smtp_data *c)
{
    str_free(&c->line);
}

/* smtp_data_failed - the message cannot be queued */
bool smtp_data_failed(const struct smtp_data *c)
{
    return c->too_big || c->write_error || (c->reject_bare && (c->bare_lf || c->bare_cr));
}

/* content_count - bytes of content (line bytes as they arrive, 2 for
 * each line end), checked against the limit at once */
static void content_count(struct smtp_data *c, size_t n)
{
    c->size += n;
    if (c->size_limit && c->size > c->size_limit)
	c->too_big = true;
}

/* content_emit - one record; nothing once the message failed */
static void content_emit(struct smtp_data *c, int type, const char *data, size_t len)
{
    if (type == QF_REC_LINE)
	content_count(c, 2);
    if (smtp_data_failed(c))
	return;
    if (c->emit(c->ctx, type, data, len) < 0)
	c->write_error = true;
}

/* content_text - ordinary bytes of the current line */
static void content_text(struct smtp_data *c, const char *p, size_t n)
{
    if (n == 0)
	return;
    if (c->at_bol) {
	c->at_bol = false;
	if (c->dot && p[0] == '.') {
	    c->dot_seen = true;		/* unstuff: drop the first dot */
	    p++;
	    n--;
	}
    }
    while (n > 0) {
	size_t room, take;

	if (str_len(c->line) == c->piece_max) {
	    content_emit(c, QF_REC_CONT, str_cstr(c->line), str_len(c->line));
	    str_reset(c->line);
	    c->in_cont = true;
	}
	room = c->piece_max - str_len(c->line);
	take = n < room ? n : room;
	if (!str_try_append(c->line, p, take))
	    msg_panic("smtp_data: append within the piece size failed");
	content_count(c, take);
	p += take;
	n -= take;
    }
}

/* content_eol - the current line ended (crlf: with CR LF) */
static void content_eol(struct smtp_data *c, bool crlf)
{
    if (c->dot && c->dot_seen && !c->in_cont && str_len(c->line) == 0) {
	if (crlf && c->prev_crlf) {
	    c->done = true;		/* CR LF . CR LF */
	    return;
	}
	/* a "." alone after or before a bare line end: content, not the end */
	c->stray_dot = true;
	str_appendc_or_panic(c->line, '.');
	content_count(c, 1);
    }
    c->lines++;
    content_emit(c, QF_REC_LINE, str_cstr(c->line), str_len(c->line));
    str_reset(c->line);
    c->at_bol = true;
    c->dot_seen = false;
    c->in_cont = false;
    c->prev_crlf = crlf;
}

/* content_whole_line - fast path for a complete line "text CR LF" at
 * the start of a line, text at most one piece: emitted straight from
 * the input, as content_text + content_eol would. False (nothing done)
 * if the line does not qualify. */
static bool content_whole_line(struct smtp_data *c, const char *p, size_t run,
			       size_t avail)
{
    size_t n = run;

    if (!c->at_bol || c->in_cont || str_len(c->line) != 0 || run + 2 > avail
	|| p[run] != '\r' || p[run + 1] != '\n')
	return false;
    if (c->dot && p[0] == '.') {
	if (run == 1)
	    return false;		/* "." alone: the end (or a stray dot) */
	p++;				/* unstuff: drop the first dot */
	n--;
    }
    if (n > c->piece_max)
	return false;
    content_count(c, n);
    c->lines++;
    content_emit(c, QF_REC_LINE, p, n);
    c->dot_seen = false;
    c->prev_crlf = true;
    return true;
}

/* content_bare - a CR or LF that is not part of CR LF: a line end. With
 * BINARYMIME too: a content record never holds a line break (see the
 * header comment), so the bytes between two such ends are a line. */
static void content_bare(struct smtp_data *c, char ch)
{
    if (ch == '\n')
	c->bare_lf = true;
    else
	c->bare_cr = true;
    content_eol(c, false);
}

/* smtp_data_feed - parse bytes */
size_t smtp_data_feed(struct smtp_data *c, const char *data, size_t len)
{
    size_t i = 0;

    while (i < len && !c->done) {
	char ch = data[i];

	if (c->cr_pending) {
	    c->cr_pending = false;
	    if (ch == '\n') {
		i++;
		content_eol(c, true);
		continue;
	    }
	    content_bare(c, '\r');
	    continue;				/* ch again, as a new byte */
	}
	if (ch == '\r') {
	    c->cr_pending = true;
	    i++;
	} else if (ch == '\n') {
	    i++;
	    content_bare(c, '\n');
	} else {
	    /* the run of ordinary bytes up to the next CR or LF */
	    const char *start = data + i;
	    const char *cr = memchr(start, '\r', len - i);
	    size_t upto = cr ? (size_t) (cr - start) : len - i;
	    const char *lf = memchr(start, '\n', upto);
	    size_t run = lf ? (size_t) (lf - start) : upto;

	    if (content_whole_line(c, start, run, len - i)) {
		i += run + 2;
		continue;
	    }
	    content_text(c, start, run);
	    i += run;
	}
    }
    return i;
}

/* smtp_data_finish - end of BDAT input: flush the last line */
void smtp_data_finish(struct smtp_data *c)
{
    if (c->done)
	return;
    if (c->cr_pending) {
	c->cr_pending = false;
	content_bare(c, '\r');
    }
    if (str_len(c->line) > 0 || c->in_cont || !c->at_bol) {
	/* a last line without terminator: stored as a line */
	c->lines++;
	content_emit(c, QF_REC_LINE, str_cstr(c->line), str_len(c->line));
	str_reset(c->line);
    }
    c->done = true;
}
