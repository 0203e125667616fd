/* cleanup_content.c - the content of one message in cleanup, as a
 * state machine over its L and C records: in the header block, pieces
 * are joined into physical lines for cleanup_header_block.c (or passed
 * on as they come once a header outgrew header_size_limit); after the
 * empty line, the body is copied record by record, never held; X ends
 * it, with the header block closed if it was still open. */

/* System. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Base. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail. */
#include "cleanup_stat.h"
#include "config.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "record_grammar.h"

/* Cleanup. */
#include "cleanup.h"

/* cleanup_content_record - L or C in the header block or the body */
void cleanup_content_record(struct cleanup_state *st, int type, const struct str *data)
{
    if (st->phase == CLEANUP_PH_BODY) {
	cleanup_put(st, type, str_cstr(data), str_len(data));
	return;
    }
    if (st->line_raw) {
	if (!st->hdr_drop)
	    cleanup_put(st, type, str_cstr(data), str_len(data));
	if (type == QF_REC_LINE)
	    st->line_raw = false;
	return;
    }
    if (!str_try_append(&st->line, str_cstr(data), str_len(data)))
	msg_panic("line buffer overflow");
    if (str_len(&st->hdr) + str_len(&st->line) > (size_t) var_header_size_limit) {
	cleanup_header_block_overflow(st);
	if (type == QF_REC_LINE) {
	    if (!st->hdr_drop || st->phase == CLEANUP_PH_BODY)
		cleanup_put(st, QF_REC_LINE, "", 0);
	    st->line_raw = false;
	}
	return;
    }
    if (type == QF_REC_LINE) {
	cleanup_header_block_line(st, str_cstr(&st->line), str_len(&st->line));
	str_reset(&st->line);
    }
}

/* cleanup_content_end - X: the header block may still be open */
void cleanup_content_end(struct cleanup_state *st)
{
    if (st->phase == CLEANUP_PH_HEADERS)
	cleanup_header_block_end(st);
    cleanup_put(st, QF_REC_XEND, "", 0);
    st->phase = CLEANUP_PH_TRAILER;
    if (st->flags & CLEANUP_FLAG_EXTRACT)
	cleanup_envelope_extracted(st);
}
