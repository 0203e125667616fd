/* fuzz_smtp_data.c - libFuzzer target for the SMTP content parser
 * (lib/mail/smtp_data.c: smtpd's end-of-data and line parser, also used
 * by sendmail -bs).
 *
 * Input: byte 0 the flags (bit 0 SMTP_DATA_DOT, bit 1 SMTP_DATA_BINARY,
 * bit 2 SMTP_DATA_REJECT_BARE, bit 3: the emit callback fails at the
 * record counted by byte 2); byte 1 the piece limit (1..64, or 998 when
 * bit 7 is set); byte 2 the size limit (0 = none, else byte * 16 bytes);
 * byte 3 the size of the pieces the data is fed in (1..32); the rest is
 * the data as it comes from the client. Properties (a failure aborts):
 *  - the records and every result field are the same whether the data
 *    is fed at once or in small pieces (the end of data must not depend
 *    on how TCP cut the stream: SMTP smuggling);
 *  - no record holds CR or LF, and none is longer than the piece limit;
 *  - with DOT the data ends exactly after ".\r\n" that starts the data
 *    or follows "\r\n"; without DOT it never ends;
 *  - the bytes consumed are all of them unless the data ended. */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "str.h"

/* mail */
#include "queue_file.h"
#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

/* What one parse produced. */
struct parse_log {
    uint64_t digest;
    long records;
    long fail_at;			/* emit fails at this record, <0: never */
    size_t piece_max;
};

/* emit - note and check one record */
static int emit(void *ctx, int type, const char *data, size_t len)
{
    struct parse_log *log = ctx;
    const unsigned char *b = (const unsigned char *) data;

    check(type == QF_REC_LINE || type == QF_REC_CONT);
    check(len <= log->piece_max);
    check(memchr(data, '\n', len) == NULL && memchr(data, '\r', len) == NULL);
    log->digest = (log->digest ^ (uint64_t) type) * 0x100000001b3ULL;
    for (size_t i = 0; i < len; i++)
	log->digest = (log->digest ^ b[i]) * 0x100000001b3ULL;
    log->digest = (log->digest ^ 0x100) * 0x100000001b3ULL;
    if (log->records++ == log->fail_at)
	return -1;
    return 0;
}

/* parse - run the parser over text in pieces of step bytes, then
 * smtp_data_finish unless the data ended; returns the bytes consumed,
 * *ended: the data ended by itself (before the finish) */
static size_t parse(struct smtp_data *c, struct parse_log *log, int flags, uint64_t limit,
		    const char *text, size_t len, size_t step, bool *ended)
{
    size_t pos = 0, n, used;

    smtp_data_init(c, flags, log->piece_max, limit, emit, log);
    while (pos < len && !c->done) {
	n = len - pos < step ? len - pos : step;
	used = smtp_data_feed(c, text + pos, n);
	check(used <= n);
	check(used == n || c->done);
	pos += used;
    }
    *ended = c->done;
    if (!c->done)
	smtp_data_finish(c);
    return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_data whole, pieces;
    struct parse_log log_whole = {0xcbf29ce484222325ULL, 0, -1, 0}, log_pieces;
    const char *text;
    size_t len, step, used_whole, used_pieces;
    bool ended_whole, ended_pieces;
    uint64_t limit;
    int flags = 0;

    if (size < 4)
	return 0;
    if (data[0] & 1)
	flags |= SMTP_DATA_DOT;
    if (data[0] & 2)
	flags |= SMTP_DATA_BINARY;
    if (data[0] & 4)
	flags |= SMTP_DATA_REJECT_BARE;
    if (data[0] & 8)
	log_whole.fail_at = data[2];
    log_whole.piece_max = data[1] & 0x80 ? 998 : 1 + (size_t) (data[1] & 0x3f);
    limit = (uint64_t) data[2] * 16;
    step = 1 + (size_t) (data[3] & 31);
    text = (const char *) data + 4;
    len = size - 4;
    log_pieces = log_whole;

    used_whole = parse(&whole, &log_whole, flags, limit, text, len, len ? len : 1,
		       &ended_whole);
    used_pieces = parse(&pieces, &log_pieces, flags, limit, text, len, step, &ended_pieces);

    check(used_whole == used_pieces && ended_whole == ended_pieces);
    check(log_whole.records == log_pieces.records);
    check(log_whole.digest == log_pieces.digest);
    check(whole.done == pieces.done && whole.too_big == pieces.too_big);
    check(whole.bare_lf == pieces.bare_lf && whole.bare_cr == pieces.bare_cr);
    check(whole.stray_dot == pieces.stray_dot && whole.write_error == pieces.write_error);
    check(whole.size == pieces.size && whole.lines == pieces.lines);
    check(smtp_data_failed(&whole) == smtp_data_failed(&pieces));

    if (!(flags & SMTP_DATA_DOT))
	check(!ended_whole);
    if (ended_whole) {
	check(used_whole >= 3 && memcmp(text + used_whole - 3, ".\r\n", 3) == 0);
	check(used_whole == 3 || (used_whole >= 5
				  && memcmp(text + used_whole - 5, "\r\n", 2) == 0));
    } else {
	check(used_whole == len);
    }
    smtp_data_fini(&whole);
    smtp_data_fini(&pieces);
    return 0;
}
