/* cleanup_envelope.c - the envelope of one message in cleanup: the
 * arrival time, the sender, the attributes, and each recipient
 * canonicalised, expanded through virtual_alias_maps, de-duplicated and
 * written with its rcpt_orig, ORCPT and NOTIFY; in the envelope, in the
 * trailer and for the recipients sendmail -t extracted. The record
 * grammar has checked every record before it comes here. */

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
	cleanup_write_failed(st);
    if (st->have_orcpt)
	cleanup_put_text(st, QF_REC_ORCPT, str_cstr(&st->orcpt));
    if (st->have_notify)
	cleanup_put_text(st, QF_REC_NOTIFY, str_cstr(&st->notify));
    cleanup_put_text(st, QF_REC_RCPT, addr);
    st->rcpt_count++;
}

/* cleanup_envelope_recipient - canonicalise, expand, write one recipient */
void cleanup_envelope_recipient(struct cleanup_state *st, const char *addr)
{
    const char *why, *orig;
    unsigned status;
    size_t i;

    if (!cleanup_addr_canon(addr, var_myorigin, &st->canon) || str_len(&st->canon) == 0) {
	cleanup_fail(st, CLEANUP_STAT_BAD, "bad recipient address");
	return;
    }
    orig = st->have_orig ? str_cstr(&st->orig) : str_cstr(&st->canon);
    cleanup_addrs_reset(&st->expansion);
    if (st->flags & CLEANUP_FLAG_NO_ALIAS) {
	cleanup_addrs_add(&st->expansion, str_cstr(&st->canon));
    } else if ((status = cleanup_alias_expand(st->id, str_cstr(&st->canon), &st->expansion,
					      &why)) != 0) {
	cleanup_fail(st, status, "%s", why);
	return;
    }
    if (st->expansion.n == 1 && !st->have_orig
	&& strcmp(st->expansion.v[0], str_cstr(&st->canon)) == 0)
	orig = NULL;				/* not rewritten */
    for (i = 0; i < st->expansion.n; i++)
	write_rcpt(st, st->expansion.v[i], orig);
    st->have_orcpt = st->have_notify = st->have_orig = false;
}

/* cleanup_envelope_rcpt_record - A/O/N/R in the envelope or the trailer (the grammar
 * has checked them: a rcpt_orig, O and N wait for their R) */
void cleanup_envelope_rcpt_record(struct cleanup_state *st, int type, const struct str *data)
{
    size_t name_len;
    const char *value;

    switch (type) {
    case QF_REC_ATTR:
	(void) qf_attr_split(str_cstr(data), str_len(data), &name_len, &value);
	if (name_len == strlen(QATTR_RCPT_ORIG)
	    && strncmp(str_cstr(data), QATTR_RCPT_ORIG, name_len) == 0) {
	    if (!str_try_set(&st->orig, value))
		cleanup_fail(st, CLEANUP_STAT_BAD, "malformed %s attribute", QATTR_RCPT_ORIG);
	    st->have_orig = true;
	} else {
	    cleanup_put(st, QF_REC_ATTR, str_cstr(data), str_len(data));
	}
	break;
    case QF_REC_ORCPT:
	if (!str_try_set(&st->orcpt, str_cstr(data)))
	    cleanup_fail(st, CLEANUP_STAT_BAD, "malformed orcpt record");
	st->have_orcpt = true;
	break;
    case QF_REC_NOTIFY:
	if (!str_try_set(&st->notify, str_cstr(data)))
	    cleanup_fail(st, CLEANUP_STAT_BAD, "malformed notify record");
	st->have_notify = true;
	break;
    case QF_REC_RCPT:
	cleanup_envelope_recipient(st, str_cstr(data));
	break;
    }
}

/* cleanup_envelope_record - T, S, A, O, N, R, M */
void cleanup_envelope_record(struct cleanup_state *st, int type, const struct str *data)
{
    if (type == QF_REC_TIME) {
	(void) record_grammar_time_parse(str_cstr(data), str_len(data), false, &st->tsec,
					 &st->tusec);
	return;
    }
    cleanup_put_start(st);
    switch (type) {
    case QF_REC_SENDER:
	if (!cleanup_addr_canon(str_cstr(data), var_myorigin, &st->canon)
	    || !str_try_set(&st->sender, str_cstr(&st->canon)))
	    cleanup_fail(st, CLEANUP_STAT_BAD, "malformed sender address");
	cleanup_put_text(st, QF_REC_SENDER, str_cstr(&st->sender));
	break;
    case QF_REC_MESSAGE:
	cleanup_put(st, QF_REC_MESSAGE, "", 0);
	st->phase = CLEANUP_PH_HEADERS;
	break;
    default:
	cleanup_envelope_rcpt_record(st, type, data);
	break;
    }
}

/* cleanup_envelope_extracted - the recipients sendmail -t found in the
 * headers (the Resent- ones if there were any), for the trailer */
void cleanup_envelope_extracted(struct cleanup_state *st)
{
    struct cleanup_addrs *list;
    size_t i;

    list = st->resent && st->resent_extracted.n > 0 ? &st->resent_extracted : &st->extracted;
    for (i = 0; i < list->n && st->status == 0; i++)
	cleanup_envelope_recipient(st, list->v[i]);
}
