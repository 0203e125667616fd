/* cleanup_message.c - one message through cleanup: read the client's
 * queue-file records (mail_proto.h), check them against the whitelists,
 * canonicalise and expand recipients, fix up the header block, stream
 * the body, write the queue file, commit it, reply. */

/* System. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Base. */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail. */
#include "cleanup_stat.h"
#include "config.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "queue_id.h"
#include "record_grammar.h"
#include "trigger.h"

/* Cleanup. */
#include "cleanup.h"

/* Every type the format knows: one outside it breaks the framing (the
 * request is refused and the connection closed); the record grammar
 * decides where the known ones may stand. */
#define CLEANUP_ALL_TYPES	"VTSAONRDMLCXE"
#define CLEANUP_KNOWN_FLAGS	(CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_UNTRUSTED | CLEANUP_FLAG_BOUNCE \
				 | CLEANUP_FLAG_EXTRACT | CLEANUP_FLAG_NO_ALIAS)
#define CLEANUP_MSGID_MAX	998
#define CLEANUP_TRIGGER_MS	1000

enum phase { PH_ENVELOPE, PH_HEADERS, PH_BODY, PH_TRAILER };

struct cleanup_state {
    const char *origin;
    unsigned flags;
    unsigned status;			/* CLEANUP_STAT_* */
    char reason[512];
    char id[QUEUE_ID_SIZE];
    struct cleanup_out *out;
    struct stream *qf;			/* the queue file stream */
    enum phase phase;
    struct record_grammar grammar;	/* checks every record first */
    bool started;			/* V, T, A origin written */
    int64_t tsec;
    long tusec;
    bool have_sender;
    struct str sender;
    bool have_orcpt, have_notify, have_orig;
    struct str orcpt, notify, orig;
    struct cleanup_addrs dups;		/* recipients written */
    struct cleanup_addrs expansion;	/* scratch for alias results */
    size_t rcpt_count;
    uint64_t size;			/* content bytes */
    /* header block */
    struct str line;			/* physical line being assembled */
    bool line_raw;			/* ... passed on as it comes */
    struct str hdr;			/* logical header, lines joined by \n */
    size_t *hdr_lens;			/* length of each physical line */
    size_t hdr_nlines, hdr_cap;
    bool hdr_raw;			/* oversized: passed on unparsed */
    bool hdr_drop;			/* ... and dropped (Bcc:) */
    int received;
    bool seen_msgid, seen_date, seen_from, resent;
    struct str msgid;
    struct cleanup_addrs extracted, resent_extracted;
    bool extract_full;
    struct str canon, work;		/* scratch */
};

/* fail - note the first failure; later ones keep the first reason */
static void fail(struct cleanup_state *st, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct cleanup_state *st, unsigned status, const char *fmt, ...)
{
    va_list ap;

    if (st->status == 0) {
	va_start(ap, fmt);
	vsnprintf(st->reason, sizeof(st->reason), fmt, ap);
	va_end(ap);
    }
    st->status |= status;
}

/* put - one record to the queue file (nothing after a failure) */
static void put(struct cleanup_state *st, int type, const void *data, size_t len)
{
    if (st->status)
	return;
    if (qf_put(st->qf, type, data, len) < 0)
	fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s",
	     stream_status_text(stream_error(st->qf)));
}

static void puts_rec(struct cleanup_state *st, int type, const char *text)
{
    put(st, type, text, strlen(text));
}

/* put_line - one content line, split into C records as needed */
static void put_line(struct cleanup_state *st, const char *data, size_t len)
{
    if (st->status)
	return;
    if (qf_put_line(st->qf, data, len, CLEANUP_LINE_REC_MAX) < 0)
	fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s",
	     stream_status_text(stream_error(st->qf)));
}

/* put_cont - a piece of a line that goes on (C records) */
static void put_cont(struct cleanup_state *st, const char *data, size_t len)
{
    while (len > 0 && st->status == 0) {
	size_t n = len > CLEANUP_LINE_REC_MAX ? CLEANUP_LINE_REC_MAX : len;

	put(st, QF_REC_CONT, data, n);
	data += n;
	len -= n;
    }
}

/* start - the records that come first: V, T, A origin */
static void start(struct cleanup_state *st)
{
    if (st->started)
	return;
    st->started = true;
    if (st->status)
	return;
    if (qf_put_version(st->qf) < 0 || qf_put_time(st->qf, st->tsec, st->tusec) < 0
	|| (*st->origin && qf_put_attr(st->qf, QATTR_ORIGIN, st->origin) < 0))
	fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s",
	     stream_status_text(stream_error(st->qf)));
}

/* write_rcpt - one final recipient: [A rcpt_orig] [O] [N] R, unless it
 * was written before */
static void write_rcpt(struct cleanup_state *st, const char *addr, const char *orig)
{
    if (var_duplicate_filter_limit > 0) {
	if (cleanup_addrs_find(&st->dups, addr, false) >= 0)
	    return;
	if ((long) st->dups.n < var_duplicate_filter_limit)
	    cleanup_addrs_add(&st->dups, addr);
    }
    if (orig && st->status == 0 && qf_put_attr(st->qf, QATTR_RCPT_ORIG, orig) < 0)
	fail(st, CLEANUP_STAT_WRITE, "queue file write error");
    if (st->have_orcpt)
	puts_rec(st, QF_REC_ORCPT, str_cstr(&st->orcpt));
    if (st->have_notify)
	puts_rec(st, QF_REC_NOTIFY, str_cstr(&st->notify));
    puts_rec(st, QF_REC_RCPT, addr);
    st->rcpt_count++;
}

/* recipient - canonicalise, expand, write one recipient */
static void recipient(struct cleanup_state *st, const char *addr)
{
    const char *why, *orig;
    unsigned status;
    size_t i;

    if (!cleanup_addr_canon(addr, var_myorigin, &st->canon) || str_len(&st->canon) == 0) {
	fail(st, CLEANUP_STAT_BAD, "bad recipient address");
	return;
    }
    orig = st->have_orig ? str_cstr(&st->orig) : str_cstr(&st->canon);
    cleanup_addrs_reset(&st->expansion);
    if (st->flags & CLEANUP_FLAG_NO_ALIAS) {
	cleanup_addrs_add(&st->expansion, str_cstr(&st->canon));
    } else if ((status = cleanup_alias_expand(st->id, str_cstr(&st->canon), &st->expansion,
					      &why)) != 0) {
	fail(st, status, "%s", why);
	return;
    }
    if (st->expansion.n == 1 && !st->have_orig
	&& strcmp(st->expansion.v[0], str_cstr(&st->canon)) == 0)
	orig = NULL;				/* not rewritten */
    for (i = 0; i < st->expansion.n; i++)
	write_rcpt(st, st->expansion.v[i], orig);
    st->have_orcpt = st->have_notify = st->have_orig = false;
}

/* rcpt_record - A/O/N/R in the envelope or the trailer (the grammar
 * has checked them: a rcpt_orig, O and N wait for their R) */
static void rcpt_record(struct cleanup_state *st, int type, const struct str *data)
{
    size_t name_len;
    const char *value;

    switch (type) {
    case QF_REC_ATTR:
	(void) qf_attr_split(str_cstr(data), str_len(data), &name_len, &value);
	if (name_len == strlen(QATTR_RCPT_ORIG)
	    && strncmp(str_cstr(data), QATTR_RCPT_ORIG, name_len) == 0) {
	    if (!str_set(&st->orig, value))
		fail(st, CLEANUP_STAT_BAD, "malformed %s attribute", QATTR_RCPT_ORIG);
	    st->have_orig = true;
	} else {
	    put(st, QF_REC_ATTR, str_cstr(data), str_len(data));
	}
	break;
    case QF_REC_ORCPT:
	if (!str_set(&st->orcpt, str_cstr(data)))
	    fail(st, CLEANUP_STAT_BAD, "malformed orcpt record");
	st->have_orcpt = true;
	break;
    case QF_REC_NOTIFY:
	if (!str_set(&st->notify, str_cstr(data)))
	    fail(st, CLEANUP_STAT_BAD, "malformed notify record");
	st->have_notify = true;
	break;
    case QF_REC_RCPT:
	recipient(st, str_cstr(data));
	break;
    }
}

/* ---- the header block */

/* hdr_reset - forget the pending logical header */
static void hdr_reset(struct cleanup_state *st)
{
    str_reset(&st->hdr);
    st->hdr_nlines = 0;
}

/* hdr_add_line - append a physical line to the pending logical header */
static void hdr_add_line(struct cleanup_state *st, const char *data, size_t len)
{
    if (st->hdr_nlines == st->hdr_cap) {
	st->hdr_cap = st->hdr_cap ? mem_size_mul(st->hdr_cap, 2) : 8;
	st->hdr_lens = mem_realloc(st->hdr_lens, mem_size_mul(st->hdr_cap, sizeof(size_t)));
    }
    if ((st->hdr_nlines > 0 && !str_appendc(&st->hdr, '\n')) || !str_append(&st->hdr, data, len))
	msg_panic("header buffer overflow");
    st->hdr_lens[st->hdr_nlines++] = len;
}

/* hdr_write_lines - write the pending header's lines as they came */
static void hdr_write_lines(struct cleanup_state *st)
{
    const char *cp = str_cstr(&st->hdr);
    size_t i;

    for (i = 0; i < st->hdr_nlines; i++) {
	put_line(st, cp, st->hdr_lens[i]);
	cp += st->hdr_lens[i] + 1;
    }
}

struct extract_ctx {
    struct cleanup_state *st;
    struct cleanup_addrs *list;
};

/* extract_one - cleanup_addr_list callback for sendmail -t */
static void extract_one(const char *addr, void *ctx)
{
    struct extract_ctx *ec = ctx;

    if ((long) ec->list->n >= var_extract_recipient_limit) {
	if (!ec->st->extract_full)
	    msg_warn("%s: more than extract_recipient_limit (%ld) recipients in the headers; "
		     "the rest is ignored", ec->st->id, var_extract_recipient_limit);
	ec->st->extract_full = true;
	return;
    }
    if (cleanup_addr_canon(addr, var_myorigin, &ec->st->work) && str_len(&ec->st->work) > 0
	&& !cleanup_addr_bad(str_cstr(&ec->st->work), str_len(&ec->st->work)))
	cleanup_addrs_add(ec->list, str_cstr(&ec->st->work));
}

/* hdr_type - the type of the pending header */
static enum cleanup_hdr hdr_type(const struct cleanup_state *st)
{
    size_t name_len = cleanup_header_name_len(str_cstr(&st->hdr), str_len(&st->hdr));

    return cleanup_header_type(str_cstr(&st->hdr), name_len);
}

/* hdr_dropped - headers that local submissions lose (Bcc:) */
static bool hdr_dropped(const struct cleanup_state *st, enum cleanup_hdr type)
{
    return (type == CLEANUP_HDR_BCC || type == CLEANUP_HDR_RESENT_BCC)
	&& (st->flags & (CLEANUP_FLAG_EXTRACT | CLEANUP_FLAG_LOCAL));
}

/* count_received - the hop count */
static void count_received(struct cleanup_state *st)
{
    if (++st->received > var_hopcount_limit)
	fail(st, CLEANUP_STAT_HOPS, "too many hops: %d Received: headers (hopcount_limit %ld)",
	     st->received, var_hopcount_limit);
}

/* hdr_flush - process and write the pending logical header */
static void hdr_flush(struct cleanup_state *st)
{
    struct extract_ctx ec;
    enum cleanup_hdr type;
    size_t i;

    if (st->hdr_nlines == 0)
	return;
    type = hdr_type(st);
    switch (type) {
    case CLEANUP_HDR_RECEIVED:
	count_received(st);
	break;
    case CLEANUP_HDR_MESSAGE_ID:
	if (!st->seen_msgid) {
	    st->seen_msgid = true;
	    if (!cleanup_header_value(str_cstr(&st->hdr), str_len(&st->hdr), &st->msgid))
		str_reset(&st->msgid);
	    for (i = 0; i < str_len(&st->msgid); i++)
		if ((unsigned char) st->msgid.data[i] < 0x20 || st->msgid.data[i] == 0x7f)
		    st->msgid.data[i] = '?';
	}
	break;
    case CLEANUP_HDR_DATE:
	st->seen_date = true;
	break;
    case CLEANUP_HDR_FROM:
	st->seen_from = true;
	break;
    case CLEANUP_HDR_RESENT_FROM:
    case CLEANUP_HDR_RESENT_MESSAGE_ID:
    case CLEANUP_HDR_RESENT_DATE:
	st->resent = true;
	break;
    case CLEANUP_HDR_TO:
    case CLEANUP_HDR_CC:
    case CLEANUP_HDR_BCC:
    case CLEANUP_HDR_RESENT_TO:
    case CLEANUP_HDR_RESENT_CC:
    case CLEANUP_HDR_RESENT_BCC:
	if (type >= CLEANUP_HDR_RESENT_FROM)
	    st->resent = true;
	if (st->flags & CLEANUP_FLAG_EXTRACT) {
	    ec.st = st;
	    ec.list = type >= CLEANUP_HDR_RESENT_FROM ? &st->resent_extracted : &st->extracted;
	    if (!cleanup_header_value(str_cstr(&st->hdr), str_len(&st->hdr), &st->work)
		|| cleanup_addr_list(str_cstr(&st->work), str_len(&st->work),
				     (size_t) var_header_address_token_limit,
				     extract_one, &ec) < 0)
		msg_warn("%s: too many address tokens in a header; the rest is ignored", st->id);
	}
	break;
    default:
	break;
    }
    if (!hdr_dropped(st, type))
	hdr_write_lines(st);
    hdr_reset(st);
}

/* raw_start - a header of this type outgrew header_size_limit: from
 * now on it is passed on unparsed (or dropped, for Bcc:) */
static void raw_start(struct cleanup_state *st, enum cleanup_hdr type)
{
    msg_warn("%s: header longer than header_size_limit (%ld bytes): passed on unparsed",
	     st->id, var_header_size_limit);
    if (type == CLEANUP_HDR_RECEIVED)
	count_received(st);
    st->hdr_raw = true;
    st->hdr_drop = hdr_dropped(st, type);
}

/* hdr_go_raw - the pending header outgrew the limit: write what is
 * buffered unparsed */
static void hdr_go_raw(struct cleanup_state *st)
{
    raw_start(st, hdr_type(st));
    if (!st->hdr_drop)
	hdr_write_lines(st);
    hdr_reset(st);
}

/* rfc5322_date - "Tue, 14 Nov 2023 22:13:20 +0000" for t */
static void rfc5322_date(time_t t, char *buf, size_t size)
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
	(void) str_copy_out(buf, size, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* end_headers - the header block is over: add what is missing */
static void end_headers(struct cleanup_state *st)
{
    char date[64];

    hdr_flush(st);
    st->hdr_raw = st->hdr_drop = false;
    if (!st->seen_msgid) {
	(void) str_printf(&st->msgid, "<%s.%lld@%s>", st->id, (long long) st->tsec, var_myhostname);
	(void) str_printf(&st->work, "Message-Id: %s", str_cstr(&st->msgid));
	put_line(st, str_cstr(&st->work), str_len(&st->work));
    }
    if (!st->seen_date) {
	rfc5322_date((time_t) st->tsec, date, sizeof(date));
	(void) str_printf(&st->work, "Date: %s", date);
	put_line(st, str_cstr(&st->work), str_len(&st->work));
    }
    if ((st->flags & CLEANUP_FLAG_LOCAL) && !st->seen_from) {
	if (str_len(&st->sender))
	    (void) str_printf(&st->work, "From: %s", str_cstr(&st->sender));
	else
	    (void) str_printf(&st->work, "From: MAILER-DAEMON@%s", var_myhostname);
	put_line(st, str_cstr(&st->work), str_len(&st->work));
    }
}

/* header_line - one complete physical line of the header block */
static void header_line(struct cleanup_state *st, const char *data, size_t len)
{
    if (len > 0 && (data[0] == ' ' || data[0] == '\t') && (st->hdr_nlines > 0 || st->hdr_raw)) {
	if (st->hdr_raw) {
	    if (!st->hdr_drop)
		put_line(st, data, len);
	} else {
	    hdr_add_line(st, data, len);
	}
	return;
    }
    hdr_flush(st);
    st->hdr_raw = st->hdr_drop = false;
    if (len == 0) {
	end_headers(st);
	put_line(st, "", 0);
	st->phase = PH_BODY;
    } else if (cleanup_header_name_len(data, len) > 0) {
	hdr_add_line(st, data, len);
    } else {
	/* The body starts without an empty line: add one. */
	end_headers(st);
	put_line(st, "", 0);
	put_line(st, data, len);
	st->phase = PH_BODY;
    }
}

/* header_overflow - the physical line in st->line would make the
 * pending header longer than header_size_limit: decide what it is from
 * what is buffered, write it as C records, pass the rest on raw */
static void header_overflow(struct cleanup_state *st)
{
    const char *data = str_cstr(&st->line);
    size_t len = str_len(&st->line), name_len;

    if ((data[0] == ' ' || data[0] == '\t') && (st->hdr_nlines > 0 || st->hdr_raw)) {
	if (!st->hdr_raw)
	    hdr_go_raw(st);
    } else if ((name_len = cleanup_header_name_len(data, len)) > 0) {
	hdr_flush(st);
	raw_start(st, cleanup_header_type(data, name_len));
    } else {
	hdr_flush(st);
	st->hdr_raw = st->hdr_drop = false;
	end_headers(st);
	put_line(st, "", 0);
	st->phase = PH_BODY;
    }
    if (!st->hdr_drop)
	put_cont(st, data, len);
    str_reset(&st->line);
    st->line_raw = true;
}

/* content_record - L or C in the header block or the body */
static void content_record(struct cleanup_state *st, int type, const struct str *data)
{
    if (st->phase == PH_BODY) {
	put(st, type, str_cstr(data), str_len(data));
	return;
    }
    if (st->line_raw) {
	if (!st->hdr_drop)
	    put(st, type, str_cstr(data), str_len(data));
	if (type == QF_REC_LINE)
	    st->line_raw = false;
	return;
    }
    if (!str_append(&st->line, str_cstr(data), str_len(data)))
	msg_panic("line buffer overflow");
    if (str_len(&st->hdr) + str_len(&st->line) > (size_t) var_header_size_limit) {
	header_overflow(st);
	if (type == QF_REC_LINE) {
	    if (!st->hdr_drop || st->phase == PH_BODY)
		put(st, QF_REC_LINE, "", 0);
	    st->line_raw = false;
	}
	return;
    }
    if (type == QF_REC_LINE) {
	header_line(st, str_cstr(&st->line), str_len(&st->line));
	str_reset(&st->line);
    }
}

/* end_content - X: the header block may still be open */
static void end_content(struct cleanup_state *st)
{
    struct cleanup_addrs *list;
    size_t i;

    if (st->phase == PH_HEADERS)
	end_headers(st);
    put(st, QF_REC_XEND, "", 0);
    st->phase = PH_TRAILER;
    if (st->flags & CLEANUP_FLAG_EXTRACT) {
	list = st->resent && st->resent_extracted.n > 0 ? &st->resent_extracted : &st->extracted;
	for (i = 0; i < list->n && st->status == 0; i++)
	    recipient(st, list->v[i]);
    }
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

/* state_init / state_fini */
static void state_init(struct cleanup_state *st, long flags, const char *origin)
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
    st->phase = PH_ENVELOPE;
    record_grammar_init(&st->grammar, (flags & CLEANUP_FLAG_UNTRUSTED)
			? RECORD_PROFILE_CLEANUP_UNTRUSTED : RECORD_PROFILE_CLEANUP_TRUSTED,
			var_message_size_limit);
    if (flags & ~CLEANUP_KNOWN_FLAGS)
	fail(st, CLEANUP_STAT_BAD, "unknown request flags 0x%lx", (unsigned long) flags);
}

static void state_fini(struct cleanup_state *st)
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

/* check_record - the record grammar's verdict on one record; false
 * (and the message failed) if it breaks a rule */
static bool check_record(struct cleanup_state *st, int type, const struct str *data)
{
    const char *why;

    switch (record_grammar_check(&st->grammar, type, data, &why)) {
    case RECORD_OK:
	return true;
    case RECORD_NOPERM:
	fail(st, CLEANUP_STAT_NOPERM, "%s", why);
	return false;
    case RECORD_TOO_LARGE:
	fail(st, CLEANUP_STAT_SIZE, "%s", why);
	return false;
    default:
	fail(st, CLEANUP_STAT_BAD, "%s", why);
	return false;
    }
}

/* envelope_record - T, S, A, O, N, R, M */
static void envelope_record(struct cleanup_state *st, int type, const struct str *data)
{
    if (type == QF_REC_TIME) {
	(void) record_grammar_time_parse(str_cstr(data), str_len(data), false, &st->tsec,
					 &st->tusec);
	return;
    }
    start(st);
    switch (type) {
    case QF_REC_SENDER:
	if (!cleanup_addr_canon(str_cstr(data), var_myorigin, &st->canon)
	    || !str_set(&st->sender, str_cstr(&st->canon)))
	    fail(st, CLEANUP_STAT_BAD, "malformed sender address");
	puts_rec(st, QF_REC_SENDER, str_cstr(&st->sender));
	break;
    case QF_REC_MESSAGE:
	put(st, QF_REC_MESSAGE, "", 0);
	st->phase = PH_HEADERS;
	break;
    default:
	rcpt_record(st, type, data);
	break;
    }
}

/* reply - tell the client; false if that failed */
static bool reply(struct stream *client, struct cleanup_state *st)
{
    return ipc_send(client, IPC_INT(ATTR_STATUS, (long) st->status),
		    IPC_STR(ATTR_QUEUE_ID, st->status ? "" : st->id),
		    IPC_STR(ATTR_REASON, st->status ? st->reason : "queued"), IPC_END) == 0;
}

/* trigger_qmgr - "take incoming/ID now" (mail_proto.h: "I", the queue
 * ID and a newline, so qmgr needs no directory scan); a failure only
 * delays (qmgr scans incoming/ on a timer too). On a fifo (the default
 * master.cf) the descriptor stays open: one write(2) per message. */
static void trigger_qmgr(const char *id)
{
    static int qmgr_fifo = -1;
    char msg[QUEUE_ID_SIZE + 8];
    const char *why;

    if (!fmt_buf(msg, sizeof(msg), "%s%s\n", QMGR_TRIGGER_SCAN, id))
	(void) str_copy_out(msg, sizeof(msg), QMGR_TRIGGER_SCAN);
    if (!trigger_send(QMGR_SOCKET, msg, strlen(msg), CLEANUP_TRIGGER_MS, &qmgr_fifo, &why)
	&& (errno != EAGAIN || msg_verbose))
	msg_warn("%s: cannot trigger qmgr: %s", id, why);
}

/* finish - E arrived: commit or refuse, then reply */
static enum cleanup_conn finish(struct stream *client, struct cleanup_state *st)
{
    const char *error;
    char names[128];

    if (st->status == 0 && st->rcpt_count == 0)
	fail(st, CLEANUP_STAT_RCPT, "no recipients");
    put(st, QF_REC_END, "", 0);
    if (st->status == 0 && cleanup_out_commit(&st->out, st->id, sizeof(st->id), &error) < 0) {
	msg_warn("%s: %s", st->id, error);
	fail(st, CLEANUP_STAT_WRITE, "queue file write error");
    }
    if (st->status == 0) {
	msg_info("%s: message-id=%s", st->id, str_cstr(&st->msgid));
    } else {
	cleanup_out_abandon(&st->out);
	msg_info("%s: %s: %s (%s); from=<%s>", st->id,
		 cleanup_stat_temporary(st->status) ? "defer" : "reject", st->reason,
		 cleanup_stat_names(st->status, names, sizeof(names)), str_cstr(&st->sender));
    }
    if (!reply(client, st)) {
	/* The client is gone. A committed message stays queued: it is on
	 * disk, and the client will retry (at least once, never lost). */
	msg_warn("%s: cannot send the reply to the client", st->id);
	if (st->status == 0)
	    trigger_qmgr(st->id);
	return CLEANUP_CONN_CLOSE;
    }
    if (st->status == 0)
	trigger_qmgr(st->id);
    return st->status & (CLEANUP_STAT_BAD | CLEANUP_STAT_NOPERM) ? CLEANUP_CONN_CLOSE
	: CLEANUP_CONN_NEXT;
}

/* cleanup_message - serve one message whose {flags, origin} was read */
enum cleanup_conn cleanup_message(struct stream *client, int incoming_fd, long flags,
				  const char *origin)
{
    struct cleanup_state st;
    struct qf_reader r;
    struct str *data = str_new(QF_RECORD_MAX);
    const char *error;
    enum cleanup_conn result;
    int type, rc;

    state_init(&st, flags, origin);
    if ((st.out = cleanup_out_open(incoming_fd, st.id, sizeof(st.id), &error)) == NULL) {
	msg_warn("%s", error);
	(void) str_copy_out(st.id, sizeof(st.id), "NOQUEUE");
	fail(&st, CLEANUP_STAT_WRITE, "queue file write error");
    } else {
	st.qf = cleanup_out_stream(st.out);
    }
    qf_reader_init(&r, client, 0);
    for (;;) {
	if ((rc = qf_get(&r, &type, data, QF_RECORD_MAX, CLEANUP_ALL_TYPES, NULL, &error)) <= 0) {
	    enum stream_status ss = stream_error(client);

	    if (rc == 0 || ss == STREAM_EOF || ss == STREAM_TIMEOUT || ss == STREAM_ERROR) {
		msg_info("%s: %s before the end of the message: nothing queued", st.id,
			 ss == STREAM_TIMEOUT ? "timeout" : "lost connection");
		result = CLEANUP_CONN_CLOSE;
		goto out;
	    }
	    msg_warn("%s: malformed request: %s", st.id, error);
	    fail(&st, CLEANUP_STAT_BAD, "malformed request");
	    st.status = CLEANUP_STAT_BAD;
	    cleanup_out_abandon(&st.out);
	    (void) reply(client, &st);
	    result = CLEANUP_CONN_CLOSE;
	    goto out;
	}
	if (type == QF_REC_END) {
	    if (st.status == 0)
		(void) check_record(&st, type, data);
	    result = finish(client, &st);
	    goto out;
	}
	if (st.status)
	    continue;				/* read on to E, write nothing */
	if (!check_record(&st, type, data))
	    continue;
	switch (st.phase) {
	case PH_ENVELOPE:
	    envelope_record(&st, type, data);
	    break;
	case PH_HEADERS:
	case PH_BODY:
	    if (type == QF_REC_XEND)
		end_content(&st);
	    else
		content_record(&st, type, data);
	    break;
	case PH_TRAILER:
	    rcpt_record(&st, type, data);
	    break;
	}
    }
  out:
    state_fini(&st);
    str_free(&data);
    return result;
}
