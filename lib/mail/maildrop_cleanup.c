/* maildrop_cleanup.c - check a maildrop file record by record and copy
 * it to cleanup with the submitter's uid (see maildrop_cleanup.h); used
 * by pickup and submit. */

/* System library. */
#include <stdio.h>
#include <string.h>

/* Base library. */
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "cleanup_client.h"
#include "cleanup_stat.h"
#include "mail_proto.h"
#include "maildrop.h"
#include "maildrop_cleanup.h"
#include "queue_file.h"
#include "record_grammar.h"

/* put_attrs - send the A records kept in attrs (as qf_encode wrote
 * them), except flags, which became request flags */
static void put_attrs(struct stream *out, const struct str *attrs)
{
    static const char flags_prefix[] = MAILDROP_ATTR_FLAGS "=";
    struct str *attr = str_new(MAILDROP_ATTR_MAX);
    struct qf_reader kept;
    const char *error;
    int type;

    qf_reader_init_mem(&kept, attrs->data, attrs->len);
    while (qf_get(&kept, &type, attr, MAILDROP_ATTR_MAX, "A", NULL, &error) > 0)
	if (strncmp(attr->data, flags_prefix, sizeof(flags_prefix) - 1) != 0)
	    (void) qf_put(out, QF_REC_ATTR, attr->data, attr->len);
    str_free(&attr);
}

/* maildrop_to_cleanup - see maildrop_cleanup.h */
enum maildrop_result maildrop_to_cleanup(struct cleanup_client **cp, struct stream *in,
					 const struct maildrop_submission *sub,
					 struct str *sender, struct cleanup_result *result,
					 const char **why, bool *cleanup_down)
{
    static char why_buf[CLEANUP_REASON_MAX + 64];
    struct record_grammar grammar;
    struct qf_reader reader;
    struct str *data = str_new(MAILDROP_RECORD_MAX);
    struct str *attrs = str_new(4 * MAILDROP_ATTR_MAX);	/* encoded A records */
    struct stream *out;
    const char *error;
    char uid[32];
    int type, ret;
    enum maildrop_result res;

    qf_reader_init(&reader, in, 0);
    record_grammar_init(&grammar, RECORD_PROFILE_MAILDROP, sub->size_limit);
    str_reset(sender);

    /* V, S, A*: everything needed before the request flags. */
    while ((ret = record_grammar_get(&grammar, &reader, &type, data, NULL, &error)) > 0) {
	if (type == QF_REC_SENDER) {
	    if (!str_try_set(sender, data->data)) {
		ret = -1;
		error = "sender address too long";
		break;
	    }
	} else if (type == QF_REC_ATTR)
	    qf_encode(attrs, type, data->data, data->len);
	else if (type != QF_REC_VERSION)
	    break;
    }
    if (ret <= 0) {
	fmt_buf_cut(why_buf, sizeof(why_buf), "maildrop file: %s",
		    ret < 0 ? error : "premature end");
	*why = why_buf;
	res = MAILDROP_BAD;
	goto done;
    }
    if (*cp == NULL && (*cp = cleanup_client_open(NULL, &error)) == NULL) {
	fmt_buf_cut(why_buf, sizeof(why_buf), "%s", error);
	*why = why_buf;
	*cleanup_down = true;
	res = MAILDROP_NO_CLEANUP;
	goto done;
    }
    if (cleanup_client_begin(*cp, CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_UNTRUSTED
			     | ((grammar.maildrop_flags & MAILDROP_FLAG_EXTRACT) ? CLEANUP_FLAG_EXTRACT : 0),
			     sub->origin, &error) < 0) {
	fmt_buf_cut(why_buf, sizeof(why_buf), "%s", error);
	*why = why_buf;
	cleanup_client_close(cp);
	*cleanup_down = true;
	res = MAILDROP_TEMP;
	goto done;
    }
    fmt_buf_or_panic(uid, sizeof(uid), "%lu", sub->uid);
    (void) cleanup_client_time(*cp, sub->sec, sub->usec);
    (void) cleanup_client_sender(*cp, sender->data);
    (void) cleanup_client_attr(*cp, QATTR_SUBMIT_UID, uid);
    out = cleanup_client_stream(*cp);
    /* The whitelisted attributes carry the names cleanup knows
     * (dsn_envid, dsn_ret, body); "flags" became request flags. */
    put_attrs(out, attrs);
    /* The rest as it comes: recipients, M, content, X, trailer. E is
     * sent by cleanup_client_finish. */
    do {
	if (type == QF_REC_END)
	    break;
	(void) qf_put(out, type, data->data, data->len);
    } while ((ret = record_grammar_get(&grammar, &reader, &type, data, NULL, &error)) > 0);
    if (ret < 0) {
	cleanup_client_abandon(cp);
	fmt_buf_cut(why_buf, sizeof(why_buf), "maildrop file: %s", error);
	*why = why_buf;
	res = MAILDROP_BAD;
	goto done;
    }
    /* The file must end right after E. */
    if ((ret = record_grammar_get(&grammar, &reader, &type, data, NULL, &error)) != 0) {
	cleanup_client_abandon(cp);
	fmt_buf_cut(why_buf, sizeof(why_buf), "maildrop file: %s",
		    ret < 0 ? error : "data after the end record");
	*why = why_buf;
	res = MAILDROP_BAD;
	goto done;
    }
    if (cleanup_client_finish(*cp, result, &error) < 0) {
	cleanup_client_close(cp);
	fmt_buf_cut(why_buf, sizeof(why_buf), "%s", error);
	*why = why_buf;
	*cleanup_down = true;
	res = MAILDROP_TEMP;
	goto done;
    }
    if (result->status == 0) {
	res = MAILDROP_QUEUED;
	goto done;
    }
    cleanup_client_close(cp);		/* cleanup may have dropped it */
    {
	char names[128];

	fmt_buf_cut(why_buf, sizeof(why_buf), "cleanup: %s (%s)", result->reason,
		    cleanup_stat_names(result->status, names, sizeof(names)));
    }
    *why = why_buf;
    res = cleanup_stat_temporary(result->status) ? MAILDROP_TEMP : MAILDROP_BAD;
    if (res == MAILDROP_TEMP)
	*cleanup_down = true;		/* try again later */
done:
    str_free(&data);
    str_free(&attrs);
    return res;
}
