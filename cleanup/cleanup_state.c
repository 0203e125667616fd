/* cleanup_state.c - the state of one message in cleanup: set up for a
 * request (the text buffers are kept from one request to the next),
 * the first failure and its reason, and the records written to the
 * queue file, of which nothing more is written after a failure. */

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

#define CLEANUP_KNOWN_FLAGS	(CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_UNTRUSTED | CLEANUP_FLAG_BOUNCE \
				 | CLEANUP_FLAG_EXTRACT | CLEANUP_FLAG_NO_ALIAS)
#define CLEANUP_MSGID_MAX	998

/* cleanup_fail - note the first failure; later ones keep the first reason */
void cleanup_fail(struct cleanup_state *st, unsigned status, const char *fmt, ...)
{
    va_list ap;

    if (st->status == 0) {
	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
    }
    st->status |= status;
}

/* cleanup_put - one record to the queue file (nothing after a failure) */
void cleanup_put(struct cleanup_state *st, int type, const void *data, size_t len)
{
    if (st->status)
	return;
    if (qf_put(st->qf, type, data, len) < 0)
	cleanup_fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s",
		     stream_status_text(stream_error(st->qf)));
}

/* cleanup_put_text - a record with text data */
void cleanup_put_text(struct cleanup_state *st, int type, const char *text)
{
    cleanup_put(st, type, text, strlen(text));
}

/* cleanup_put_line - one content line, split into C records as needed */
void cleanup_put_line(struct cleanup_state *st, const char *data, size_t len)
{
    if (st->status)
	return;
    if (qf_put_line(st->qf, data, len, CLEANUP_LINE_REC_MAX) < 0)
	cleanup_fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s",
		     stream_status_text(stream_error(st->qf)));
}

/* cleanup_put_cont - a piece of a line that goes on (C records) */
void cleanup_put_cont(struct cleanup_state *st, const char *data, size_t len)
{
    while (len > 0 && st->status == 0) {
	size_t n = len > CLEANUP_LINE_REC_MAX ? CLEANUP_LINE_REC_MAX : len;

	cleanup_put(st, QF_REC_CONT, data, n);
	data += n;
	len -= n;
    }
}

/* cleanup_put_start - the records that come first: V, T, A origin */
void cleanup_put_start(struct cleanup_state *st)
{
    if (st->started)
	return;
    st->started = true;
    if (st->status)
	return;
    if (qf_put_version(st->qf) < 0 || qf_put_time(st->qf, st->tsec, st->tusec) < 0
	|| (*st->origin && qf_put_attr(st->qf, QATTR_ORIGIN, st->origin) < 0))
	cleanup_fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s",
		     stream_status_text(stream_error(st->qf)));
}

/* The text buffers of a request, kept from one request to the next so
 * that each message does not allocate and grow them anew; one that grew
 * beyond STATE_KEEP_MAX is released instead. */
#define STATE_KEEP_MAX	(64 * 1024)

static struct state_bufs {
    bool ready;
    struct str sender, orcpt, notify, orig, line, hdr, msgid, canon, work;
} state_bufs;

/* buf_take - a kept buffer, emptied */
static void buf_take(struct str *to, struct str *kept)
{
    *to = *kept;
    str_reset(to);
}

/* buf_keep - keep a request's buffer for the next one */
static void buf_keep(struct str *kept, struct str *from)
{
    if (from->cap > STATE_KEEP_MAX) {
	size_t max = from->max;

	str_fini(from);
	str_init(from, max);
    }
    *kept = *from;
    memset(from, 0, sizeof(*from));
}

/* cleanup_state_init - a fresh state for one request */
void cleanup_state_init(struct cleanup_state *st, long flags, const char *origin)
{
    struct state_bufs *b = &state_bufs;
    struct timespec ts;

    memset(st, 0, sizeof(*st));
    st->flags = (unsigned) flags;
    st->origin = origin;
    if (!b->ready) {
	str_init(&b->sender, CLEANUP_ADDR_MAX);
	str_init(&b->orcpt, CLEANUP_ADDR_MAX + 16);
	str_init(&b->notify, 64);
	str_init(&b->orig, CLEANUP_ADDR_MAX);
	str_init(&b->line, STR_MAX_HUGE);
	str_init(&b->hdr, STR_MAX_HUGE);
	str_init(&b->msgid, CLEANUP_MSGID_MAX);
	str_init(&b->canon, CLEANUP_ADDR_MAX + 256);
	str_init(&b->work, STR_MAX_HUGE);
	b->ready = true;
    }
    buf_take(&st->sender, &b->sender);
    buf_take(&st->orcpt, &b->orcpt);
    buf_take(&st->notify, &b->notify);
    buf_take(&st->orig, &b->orig);
    buf_take(&st->line, &b->line);
    buf_take(&st->hdr, &b->hdr);
    buf_take(&st->msgid, &b->msgid);
    buf_take(&st->canon, &b->canon);
    buf_take(&st->work, &b->work);
    cleanup_addrs_init(&st->dups);
    cleanup_addrs_init(&st->expansion);
    cleanup_addrs_init(&st->extracted);
    cleanup_addrs_init(&st->resent_extracted);
    clock_gettime(CLOCK_REALTIME, &ts);
    st->tsec = ts.tv_sec;
    st->tusec = ts.tv_nsec / 1000;
    st->phase = CLEANUP_PH_ENVELOPE;
    record_grammar_init(&st->grammar, (flags & CLEANUP_FLAG_UNTRUSTED)
			? RECORD_PROFILE_CLEANUP_UNTRUSTED : RECORD_PROFILE_CLEANUP_TRUSTED,
			var_message_size_limit);
    if (flags & ~CLEANUP_KNOWN_FLAGS)
	cleanup_fail(st, CLEANUP_STAT_BAD, "unknown request flags 0x%lx", (unsigned long) flags);
}

/* cleanup_state_fini - release a request's state, keep its buffers */
void cleanup_state_fini(struct cleanup_state *st)
{
    struct state_bufs *b = &state_bufs;

    cleanup_out_abandon(&st->out);
    buf_keep(&b->sender, &st->sender);
    buf_keep(&b->orcpt, &st->orcpt);
    buf_keep(&b->notify, &st->notify);
    buf_keep(&b->orig, &st->orig);
    buf_keep(&b->line, &st->line);
    buf_keep(&b->hdr, &st->hdr);
    buf_keep(&b->msgid, &st->msgid);
    buf_keep(&b->canon, &st->canon);
    buf_keep(&b->work, &st->work);
    mem_free(&st->hdr_lens);
    cleanup_addrs_fini(&st->dups);
    cleanup_addrs_fini(&st->expansion);
    cleanup_addrs_fini(&st->extracted);
    cleanup_addrs_fini(&st->resent_extracted);
}
