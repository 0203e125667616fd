/* cleanup_state.c - the state of one message in cleanup: set up for a
 * request (the text buffers are kept from one request to the next),
 * the first failure and its reason, and the records written to the
 * queue file, of which nothing more is written after a failure. */

/* System. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
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
				 | CLEANUP_FLAG_EXTRACT | CLEANUP_FLAG_NO_ALIAS \
				 | CLEANUP_FLAG_CLIENT_TRIGGER)
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

/* cleanup_write_failed - a write to the queue file failed just now:
 * note it with its real cause (errno as the stream left it: ENOSPC is
 * "No space left on device", not a generic I/O error) */
void cleanup_write_failed(struct cleanup_state *st)
{
    int err = errno;

    if (stream_error(st->qf) == STREAM_ERROR && err != 0)
	cleanup_fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s", strerror(err));
    else
	cleanup_write_failed(st);
}

/* cleanup_put - one record to the queue file (nothing after a failure) */
void cleanup_put(struct cleanup_state *st, int type, const void *data, size_t len)
{
    if (st->status)
	return;
    if (qf_put(st->qf, type, data, len) < 0)
	cleanup_write_failed(st);
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
	cleanup_write_failed(st);
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
	cleanup_write_failed(st);
}

/* The text buffers of a request, kept from one request to the next so
 * that each message does not allocate and grow them anew; one that grew
 * beyond STATE_KEEP_MAX is released instead. One row per buffer: where
 * it is in the state, and its size limit. */
#define STATE_KEEP_MAX	(64 * 1024)

static const struct state_buf_row {
    size_t offset;			/* of the struct str in the state */
    size_t max;
} state_buf_rows[] = {
    {offsetof(struct cleanup_state, sender), CLEANUP_ADDR_MAX},
    {offsetof(struct cleanup_state, orcpt), CLEANUP_ADDR_MAX + 16},
    {offsetof(struct cleanup_state, notify), 64},
    {offsetof(struct cleanup_state, orig), CLEANUP_ADDR_MAX},
    {offsetof(struct cleanup_state, line), STR_MAX_HUGE},
    {offsetof(struct cleanup_state, hdr), STR_MAX_HUGE},
    {offsetof(struct cleanup_state, msgid), CLEANUP_MSGID_MAX},
    {offsetof(struct cleanup_state, canon), CLEANUP_ADDR_MAX + 256},
    {offsetof(struct cleanup_state, work), STR_MAX_HUGE},
};

#define STATE_BUF_COUNT	(sizeof(state_buf_rows) / sizeof(state_buf_rows[0]))

static struct str state_bufs_kept[STATE_BUF_COUNT];
static bool state_bufs_ready;

/* state_buf - the buffer of a row in a state */
static struct str *state_buf(struct cleanup_state *st, size_t row)
{
    return (struct str *) ((char *) st + state_buf_rows[row].offset);
}

/* state_bufs_take - give the state the kept buffers, emptied */
static void state_bufs_take(struct cleanup_state *st)
{
    for (size_t i = 0; i < STATE_BUF_COUNT; i++) {
	if (!state_bufs_ready)
	    str_init(&state_bufs_kept[i], state_buf_rows[i].max);
	*state_buf(st, i) = state_bufs_kept[i];
	str_reset(state_buf(st, i));
    }
    state_bufs_ready = true;
}

/* state_bufs_keep - keep the state's buffers for the next request */
static void state_bufs_keep(struct cleanup_state *st)
{
    for (size_t i = 0; i < STATE_BUF_COUNT; i++) {
	struct str *from = state_buf(st, i);

	if (from->cap > STATE_KEEP_MAX) {
	    str_fini(from);
	    str_init(from, state_buf_rows[i].max);
	}
	state_bufs_kept[i] = *from;
	memset(from, 0, sizeof(*from));
    }
}

/* cleanup_state_init - a fresh state for one request */
void cleanup_state_init(struct cleanup_state *st, long flags, const char *origin)
{
    struct timespec ts;

    memset(st, 0, sizeof(*st));
    st->flags = (unsigned) flags;
    st->origin = origin;
    state_bufs_take(st);
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
    cleanup_out_abandon(&st->out);
    state_bufs_keep(st);
    mem_free(&st->hdr_lens);
    cleanup_addrs_fini(&st->dups);
    cleanup_addrs_fini(&st->expansion);
    cleanup_addrs_fini(&st->extracted);
    cleanup_addrs_fini(&st->resent_extracted);
}
