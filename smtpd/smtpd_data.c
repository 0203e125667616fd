/* smtpd_data.c - the DATA and BDAT commands (RFC 5321, RFC 3030): the
 * bytes of a message from the client.
 *
 * DATA reads lines (each at most line_length_limit + CR LF; a longer
 * one is fed in pieces) until the content parser, lib/mail/smtp_data.c
 * (shared with sendmail -bs), sees the end of data. It holds the rules
 * against SMTP smuggling (DATA ends only at CR LF . CR LF; bare CR/LF
 * per smtpd_forbid_bare_newline) and that no content record holds a
 * line break (BINARYMIME included). BDAT reads exactly the announced
 * chunk; a chunk size that cannot be honoured ends the session, since
 * its bytes would otherwise run as commands. What becomes of the
 * message (cleanup, the Received: header, the reply at the end) is
 * smtpd_message.c's.
 *
 * A client that goes away or times out in the middle leaves nothing
 * queued (the cleanup connection is dropped before the end record). */

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* base */
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "server.h"

/* smtpd */
#include "smtpd.h"

#define DATA_READ_CHUNK	8192

/* smtpd_bdat_parse - "count [LAST]" */
bool smtpd_bdat_parse(const char *args, size_t len, uint64_t *count, bool *last)
{
    size_t i = 0;
    uint64_t n = 0;

    *last = false;
    if (len == 0 || !isdigit((unsigned char) args[0]))
	return false;
    /* leading zeros are allowed (RFC 3030: 1*DIGIT); the command line
     * bounds their number */
    for (; i < len && isdigit((unsigned char) args[i]); i++) {
	unsigned d = (unsigned) (args[i] - '0');

	if (n > (UINT64_MAX - d) / 10)
	    return false;			/* above 2^64 - 1 */
	n = n * 10 + d;
    }
    if (i < len) {
	if (args[i] != ' ')
	    return false;
	while (i < len && args[i] == ' ')
	    i++;
	if (len - i != 4 || strncasecmp(args + i, "LAST", 4) != 0)
	    return false;
	*last = true;
    }
    *count = n;
    return true;
}

/* data_lost - the client went away or timed out in the middle */
static void data_lost(struct smtpd_state *st, enum stream_status status, uint64_t bytes)
{
    if (status == STREAM_TIMEOUT) {
	smtpd_reply_id(st, SR_TIMEOUT);
	msg_info("timeout after %s (%llu bytes) from %s", st->where,
		 (unsigned long long) bytes, st->namaddr);
    } else {
	msg_info("lost connection after %s (%llu bytes) from %s", st->where,
		 (unsigned long long) bytes, st->namaddr);
    }
    smtpd_reset(st);
    st->hangup = true;
}

/* smtpd_cmd_data - DATA */
void smtpd_cmd_data(struct smtpd_state *st, const char *args, size_t len)
{
    struct str *line;
    enum stream_status status = STREAM_OK;
    unsigned long nlines = 0;
    uint64_t bytes = 0;

    (void) args;
    if (len) {
	smtpd_reply_id(st, SR_SYNTAX_DATA);
	return;
    }
    if (st->bdat) {
	smtpd_reply_id(st, SR_DATA_AFTER_BDAT);
	return;
    }
    if (!st->in_mail) {
	smtpd_reply_id(st, SR_NEED_MAIL);
	return;
    }
    if (st->rcpt_count == 0) {
	smtpd_reply_id(st, st->rcpt_attempts ? SR_NO_VALID_RCPT : SR_NEED_RCPT);
	return;
    }
    if (st->mail.body == SMTP_BODY_BINARYMIME) {
	smtpd_reply_id(st, SR_BINARYMIME_DATA);
	return;
    }
    if (stream_buffered(st->client) > 0 && !server_stdin_mode())
	msg_info("improper command pipelining after DATA from %s", st->namaddr);
    if (!smtpd_message_open(st, true, false)) {
	smtpd_reply_id(st, SR_QUEUE_WRITE);
	return;
    }
    smtpd_reply_id(st, SR_DATA_GO);
    if (!smtpd_flush(st)) {
	data_lost(st, STREAM_ERROR, 0);
	return;
    }
    line = str_new((size_t) var_line_length_limit + 2);
    while (!st->content.done) {
	status = stream_getline(st->client, line, (size_t) var_line_length_limit + 2);
	if (status != STREAM_OK && status != STREAM_TOOLONG)
	    break;
	/* a final unterminated line at EOF is not the end of data */
	if (status == STREAM_OK && (str_len(line) == 0 || line->data[str_len(line) - 1] != '\n')) {
	    status = STREAM_EOF;
	    break;
	}
	bytes += str_len(line);
	smtp_data_feed(&st->content, str_cstr(line), str_len(line));
	if ((++nlines & 4095) == 0)
	    server_watchdog_reset();
    }
    str_free(&line);
    if (!st->content.done) {
	data_lost(st, status, bytes);
	return;
    }
    smtpd_message_end(st);
}

/* bdat_discard - read and drop count bytes; false if the client is gone */
static bool bdat_discard(struct smtpd_state *st, uint64_t count)
{
    char buf[DATA_READ_CHUNK];

    while (count > 0) {
	ssize_t n = stream_read(st->client, buf, count < sizeof(buf) ? (size_t) count : sizeof(buf));

	if (n <= 0) {
	    data_lost(st, stream_error(st->client), st->bdat_bytes);
	    return false;
	}
	count -= (uint64_t) n;
	st->bdat_bytes += (uint64_t) n;
    }
    return true;
}

/* bdat_fail - remember the reply for the rest of this transaction */
static void bdat_fail(struct smtpd_state *st, enum smtpd_reply_id id)
{
    smtpd_message_abort(st);
    st->bdat_failed = true;
    smtpd_reply_id_buf(id, &st->bdat_error);
}

/* smtpd_bdat_unfollowable - the chunk size is unknown, so the input
 * cannot be followed: whatever comes next would be read as commands */
void smtpd_bdat_unfollowable(struct smtpd_state *st)
{
    struct smtpd_reply_buf r;

    smtpd_reply_id_buf(SR_BDAT_UNFOLLOWABLE, &r);
    smtpd_reply_buf_send(st, &r);
    smtpd_log_reject(st, "BDAT", &r, NULL);
    smtpd_reset(st);
    st->hangup = true;
}

/* smtpd_cmd_bdat - BDAT count [LAST] */
void smtpd_cmd_bdat(struct smtpd_state *st, const char *args, size_t len)
{
    uint64_t count, left;
    bool last;
    char buf[DATA_READ_CHUNK];

    if (!smtpd_bdat_parse(args, len, &count, &last)) {
	smtpd_bdat_unfollowable(st);
	return;
    }
    if (!st->in_mail || st->rcpt_count == 0) {
	enum smtpd_reply_id id = !st->in_mail ? SR_NEED_MAIL :
	    st->rcpt_attempts ? SR_NO_VALID_RCPT : SR_NEED_RCPT;

	if (bdat_discard(st, count))
	    smtpd_reply_id(st, id);
	return;
    }
    if (!st->bdat) {
	st->bdat = true;
	st->bdat_bytes = 0;
	if (!smtpd_message_open(st, false, st->mail.body == SMTP_BODY_BINARYMIME))
	    bdat_fail(st, SR_QUEUE_WRITE);
    }
    if (st->bdat_failed) {
	if (!bdat_discard(st, count))
	    return;
	smtpd_reply_buf_send(st, &st->bdat_error);
	if (last)
	    smtpd_reset(st);
	return;
    }
    for (left = count; left > 0;) {
	ssize_t n = stream_read(st->client, buf, left < sizeof(buf) ? (size_t) left : sizeof(buf));

	if (n <= 0) {
	    data_lost(st, stream_error(st->client), st->bdat_bytes);
	    return;
	}
	left -= (uint64_t) n;
	st->bdat_bytes += (uint64_t) n;
	smtp_data_feed(&st->content, buf, (size_t) n);
    }
    server_watchdog_reset();
    if (last)
	smtp_data_finish(&st->content);
    if (st->content.reject_bare && (st->content.bare_lf || st->content.bare_cr)) {
	smtpd_message_end(st);			/* 550 and disconnect */
	return;
    }
    if (smtp_data_failed(&st->content)) {
	struct smtpd_reply_buf r;

	bdat_fail(st, st->content.too_big ? SR_TOO_BIG : SR_QUEUE_WRITE);
	r = st->bdat_error;
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "BDAT", &r, NULL);
	if (last)
	    smtpd_reset(st);
	return;
    }
    if (!last) {
	smtpd_reply(st, 250, "2.0.0", "Ok: %llu octets", (unsigned long long) count);
	return;
    }
    smtpd_message_end(st);
}
