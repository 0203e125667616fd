/* cleanup_header_block.c - the header block of one message in cleanup,
 * one logical header (a field and its continuation lines) at a time:
 * the hop count, Message-ID for the log, Bcc: removal from local
 * submissions, the recipients for sendmail -t, headers too long to parse
 * passed on as they come, and at its end the Message-Id:, Date: and
 * From: that are missing (docs/cleanup.md, "Header rules"). */

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
#include "mail_date.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "record_grammar.h"

/* Cleanup. */
#include "cleanup.h"

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
    if ((st->hdr_nlines > 0 && !str_try_appendc(&st->hdr, '\n')) || !str_try_append(&st->hdr, data, len))
	msg_panic("header buffer overflow");
    st->hdr_lens[st->hdr_nlines++] = len;
}

/* hdr_write_lines - write the pending header's lines as they came */
static void hdr_write_lines(struct cleanup_state *st)
{
    const char *cp = str_cstr(&st->hdr);
    size_t i;

    for (i = 0; i < st->hdr_nlines; i++) {
	cleanup_put_line(st, cp, st->hdr_lens[i]);
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
	cleanup_fail(st, CLEANUP_STAT_HOPS, "too many hops: %d Received: headers (hopcount_limit %ld)",
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

/* cleanup_header_block_end - the header block is over: add what is missing */
void cleanup_header_block_end(struct cleanup_state *st)
{
    char date[MAIL_DATE_SIZE];

    hdr_flush(st);
    st->hdr_raw = st->hdr_drop = false;
    if (!st->seen_msgid) {
	if (str_try_printf(&st->msgid, "<%s.%lld@%s>", st->id, (long long) st->tsec,
			   var_myhostname)) {
	    str_printf_or_panic(&st->work, "Message-Id: %s", str_cstr(&st->msgid));
	    cleanup_put_line(st, str_cstr(&st->work), str_len(&st->work));
	} else {
	    msg_warn("%s: myhostname is too long for a Message-Id: header; none added", st->id);
	}
    }
    if (!st->seen_date) {
	(void) mail_date_local(date, sizeof(date), (time_t) st->tsec);	/* epoch on error */
	str_printf_or_panic(&st->work, "Date: %s", date);
	cleanup_put_line(st, str_cstr(&st->work), str_len(&st->work));
    }
    if ((st->flags & CLEANUP_FLAG_LOCAL) && !st->seen_from) {
	if (str_len(&st->sender))
	    str_printf_or_panic(&st->work, "From: %s", str_cstr(&st->sender));
	else
	    str_printf_or_panic(&st->work, "From: MAILER-DAEMON@%s", var_myhostname);
	cleanup_put_line(st, str_cstr(&st->work), str_len(&st->work));
    }
}

/* cleanup_header_block_line - one complete physical line of the header block */
void cleanup_header_block_line(struct cleanup_state *st, const char *data, size_t len)
{
    if (len > 0 && (data[0] == ' ' || data[0] == '\t') && (st->hdr_nlines > 0 || st->hdr_raw)) {
	if (st->hdr_raw) {
	    if (!st->hdr_drop)
		cleanup_put_line(st, data, len);
	} else {
	    hdr_add_line(st, data, len);
	}
	return;
    }
    hdr_flush(st);
    st->hdr_raw = st->hdr_drop = false;
    if (len == 0) {
	cleanup_header_block_end(st);
	cleanup_put_line(st, "", 0);
	st->phase = CLEANUP_PH_BODY;
    } else if (cleanup_header_name_len(data, len) > 0) {
	hdr_add_line(st, data, len);
    } else {
	/* The body starts without an empty line: add one. */
	cleanup_header_block_end(st);
	cleanup_put_line(st, "", 0);
	cleanup_put_line(st, data, len);
	st->phase = CLEANUP_PH_BODY;
    }
}

/* cleanup_header_block_overflow - the physical line in st->line would make the
 * pending header longer than header_size_limit: decide what it is from
 * what is buffered, write it as C records, pass the rest on raw */
void cleanup_header_block_overflow(struct cleanup_state *st)
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
	cleanup_header_block_end(st);
	cleanup_put_line(st, "", 0);
	st->phase = CLEANUP_PH_BODY;
    }
    if (!st->hdr_drop)
	cleanup_put_cont(st, data, len);
    str_reset(&st->line);
    st->line_raw = true;
}
