/* sc_reply.c - SMTP replies as smtp-client reads them: multi-line
 * replies within one deadline, bounded in line length and line count,
 * the enhanced status code (RFC 3463) parsed, and the EHLO keywords. */

/* System library. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Base library. */
#include "errtext.h"
#include "str.h"
#include "stream.h"

/* This program. */
#include "sc.h"

static struct errtext sc_reply_error;

/* sc_reply_init - an empty reply */
void sc_reply_init(struct sc_reply *r)
{
    r->code = 0;
    r->dsn[0] = 0;
    r->lines = str_new(SC_REPLY_TEXT_MAX);
}

/* sc_reply_fini - free its text */
void sc_reply_fini(struct sc_reply *r)
{
    str_free(&r->lines);
}

/* sc_reply_parse_line - "NNN-text", "NNN text", "NNN" */
bool sc_reply_parse_line(const char *line, size_t len, int *code, bool *last, const char **text)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || !isdigit((unsigned char) line[1])
	|| !isdigit((unsigned char) line[2]))
	return false;
    *code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (len == 3) {
	*last = true;
	*text = line + 3;
	return true;
    }
    if (line[3] != ' ' && line[3] != '-')
	return false;
    *last = line[3] == ' ';
    *text = line + 4;
    return true;
}

/* sc_reply_dsn - "C.S.D" at the start of text, class as code's */
bool sc_reply_dsn(const char *text, int code, char *dsn, size_t dsn_size)
{
    const char *p = text;
    size_t n;
    int part;

    if (*p - '0' != code / 100 || p[1] != '.')
	return false;
    p += 2;
    for (part = 0; part < 2; part++) {
	for (n = 0; isdigit((unsigned char) p[n]); n++)
	    ;
	if (n < 1 || n > 3)
	    return false;
	p += n;
	if (part == 0) {
	    if (*p != '.')
		return false;
	    p++;
	}
    }
    if (*p != 0 && *p != ' ' && *p != '\t')
	return false;
    n = (size_t) (p - text);
    if (n + 1 > dsn_size)
	return false;
    memcpy(dsn, text, n);
    dsn[n] = 0;
    return true;
}

/* sc_ms_left - milliseconds until deadline (at least 1) */
static int sc_ms_left(const struct timespec *deadline)
{
    struct timespec now;
    long ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 1 ? 1 : (int) (ms > 86400000L ? 86400000L : ms);
}

/* sc_reply_read - one whole reply */
int sc_reply_read(struct stream *s, long timeout_s, struct sc_reply *r, const char **error_r)
{
    struct str *line = str_new(SC_REPLY_LINE_MAX);
    struct timespec deadline;
    enum stream_status st;
    const char *text;
    int code, first = 0, n;
    bool last = false;
    int ret = -1;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_s;
    r->code = 0;
    r->dsn[0] = 0;
    str_reset(r->lines);
    for (n = 0; !last; n++) {
	if (n >= SC_REPLY_LINES_MAX) {
	    *error_r = errtext_set(&sc_reply_error, "reply has more than %d lines",
				   SC_REPLY_LINES_MAX);
	    goto out;
	}
	stream_set_timeout(s, sc_ms_left(&deadline));
	st = stream_getline(s, line, SC_REPLY_LINE_MAX);
	if (st == STREAM_TOOLONG) {
	    /* keep the start of an over-long line, like Postfix */
	    if (stream_skip_line(s) != STREAM_OK)
		st = stream_error(s);
	    else
		st = STREAM_OK;
	}
	if (st != STREAM_OK) {
	    *error_r = errtext_set(&sc_reply_error, "%s",
				   st == STREAM_TIMEOUT ? "timeout" :
				   st == STREAM_EOF ? "lost connection" :
				   stream_status_text(st));
	    goto out;
	}
	(void) str_chomp(line);
	if (!sc_reply_parse_line(str_cstr(line), str_len(line), &code, &last, &text)) {
	    *error_r = errtext_set(&sc_reply_error, "malformed reply line");
	    goto out;
	}
	if (n == 0)
	    first = code;
	else if (code != first) {
	    *error_r = errtext_set(&sc_reply_error, "reply lines with different codes");
	    goto out;
	}
	if (str_len(r->lines) + strlen(text) + 1 <= r->lines->max) {
	    size_t i;

	    /* control characters and 8-bit bytes (none should come) shown
	     * as "?": the text goes into logs and bounces */
	    for (i = 0; text[i]; i++)
		str_appendc_or_panic(r->lines, (unsigned char) text[i] < 32
				     || (unsigned char) text[i] >= 127 ? '?' : text[i]);
	    str_appendc_or_panic(r->lines, '\n');
	}
    }
    r->code = first;
    if (!sc_reply_dsn(str_cstr(r->lines), first, r->dsn, sizeof(r->dsn)))
	r->dsn[0] = 0;
    ret = 0;
  out:
    str_free(&line);
    return ret;
}

/* sc_reply_quote - the reply as one line of text */
void sc_reply_quote(const struct sc_reply *r, char *buf, size_t size)
{
    const char *p = str_cstr(r->lines);
    size_t o, n = str_len(r->lines);

    fmt_buf_cut(buf, size, "%03d ", r->code);
    o = strlen(buf);
    for (; n > 0 && o + 1 < size; p++, n--) {
	if (*p == '\n') {
	    if (n == 1)
		break;
	    buf[o++] = ' ';
	} else
	    buf[o++] = *p;
    }
    buf[o] = 0;
    while (o > 0 && buf[o - 1] == ' ')
	buf[--o] = 0;
}

/* sc_word_is - the keyword at p (len n) equals kw, case-insensitively */
static bool sc_word_is(const char *p, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(p, kw, n) == 0;
}

/* sc_ext_parse - EHLO keywords, one per line after the first */
void sc_ext_parse(const char *lines, struct sc_ext *ext)
{
    const char *p = strchr(lines, '\n');
    const char *eol, *w, *a;
    size_t n;

    ext->flags = 0;
    ext->size_limit = 0;
    if (p == NULL)
	return;
    for (p++; *p; p = eol + (*eol == '\n')) {
	eol = strchr(p, '\n');
	if (eol == NULL)
	    eol = p + strlen(p);
	w = p;
	for (n = 0; w + n < eol && w[n] != ' ' && w[n] != '='; n++)
	    ;
	a = w + n;
	if (sc_word_is(w, n, "PIPELINING"))
	    ext->flags |= SC_EXT_PIPELINING;
	else if (sc_word_is(w, n, "8BITMIME"))
	    ext->flags |= SC_EXT_8BITMIME;
	else if (sc_word_is(w, n, "BINARYMIME"))
	    ext->flags |= SC_EXT_BINARYMIME;
	else if (sc_word_is(w, n, "CHUNKING"))
	    ext->flags |= SC_EXT_CHUNKING;
	else if (sc_word_is(w, n, "SMTPUTF8"))
	    ext->flags |= SC_EXT_SMTPUTF8;
	else if (sc_word_is(w, n, "DSN"))
	    ext->flags |= SC_EXT_DSN;
	else if (sc_word_is(w, n, "ENHANCEDSTATUSCODES"))
	    ext->flags |= SC_EXT_ENHANCED;
	else if (sc_word_is(w, n, "STARTTLS"))
	    ext->flags |= SC_EXT_STARTTLS;
	else if (sc_word_is(w, n, "SIZE")) {
	    ext->flags |= SC_EXT_SIZE;
	    if (a < eol && *a == ' ') {
		char *end;
		long v = strtol(a + 1, &end, 10);

		if (end != a + 1 && (end == eol || *end == ' ') && v > 0)
		    ext->size_limit = v;
	    }
	} else if (sc_word_is(w, n, "AUTH")) {
	    /* "AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN" */
	    ext->flags |= SC_EXT_AUTH;
	    while (a < eol) {
		const char *m = a + 1;

		for (n = 0; m + n < eol && m[n] != ' '; n++)
		    ;
		if (sc_word_is(m, n, "PLAIN"))
		    ext->flags |= SC_EXT_AUTH_PLAIN;
		else if (sc_word_is(m, n, "LOGIN"))
		    ext->flags |= SC_EXT_AUTH_LOGIN;
		a = m + n;
	    }
	}
    }
}
