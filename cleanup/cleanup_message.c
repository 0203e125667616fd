/* cleanup_message.c - one request to cleanup: read the client's
 * queue-file records (mail_proto.h), let the record grammar check each
 * one, hand it to the envelope or the content module by where it
 * stands, then at E commit the queue file and reply, and trigger qmgr. */

/* System. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Base. */
#include "ipc.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail. */
#include "cleanup_stat.h"
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

/* check_record - the record grammar's verdict on one record; false
 * (and the message failed) if it breaks a rule */
static bool check_record(struct cleanup_state *st, int type, const struct str *data)
{
    const char *why;

    switch (record_grammar_check(&st->grammar, type, data, &why)) {
    case RECORD_OK:
	return true;
    case RECORD_NOPERM:
	cleanup_fail(st, CLEANUP_STAT_NOPERM, "%s", why);
	return false;
    case RECORD_TOO_LARGE:
	cleanup_fail(st, CLEANUP_STAT_SIZE, "%s", why);
	return false;
    default:
	cleanup_fail(st, CLEANUP_STAT_BAD, "%s", why);
	return false;
    }
}

/* reply - tell the client; false if that failed */
static bool reply(struct stream *client, struct cleanup_state *st)
{
    return ipc_send(client, IPC_INT(ATTR_STATUS, (long) st->status),
		    IPC_STR(ATTR_QUEUE_ID, st->status ? "" : st->id),
		    IPC_STR(ATTR_REASON, st->status ? st->reason : "queued"), IPC_END) == 0;
}

/* trigger_qmgr - "take incoming/ID now" (so qmgr needs no directory
 * scan); a failure only delays (qmgr scans incoming/ on a timer too).
 * Sent AFTER the reply, so that the client runs first: on one CPU, qmgr
 * (which runs at a higher priority) and the delivery it starts would
 * otherwise run before the client's answer to its own client. */
static void trigger_qmgr(const char *id)
{
    const char *why;

    if (!trigger_qmgr_incoming(id, &why) && (errno != EAGAIN || msg_verbose))
	msg_warn("%s: cannot trigger qmgr: %s", id, why);
}

/* finish - E arrived: commit or refuse, then reply */
static enum cleanup_conn finish(struct stream *client, struct cleanup_state *st)
{
    const char *error;
    char names[128];

    if (st->status == 0 && st->rcpt_count == 0)
	cleanup_fail(st, CLEANUP_STAT_RCPT, "no recipients");
    cleanup_put(st, QF_REC_END, "", 0);
    if (st->status == 0 && cleanup_out_commit(&st->out, &error) < 0) {
	msg_warn("%s: %s", st->id, error);
	cleanup_fail(st, CLEANUP_STAT_WRITE, "queue file write error: %s", error);
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
    /* A client that answers a client of its own (smtpd) wakes qmgr
     * after that answer (CLEANUP_FLAG_CLIENT_TRIGGER). */
    if (st->status == 0 && !(st->flags & CLEANUP_FLAG_CLIENT_TRIGGER))
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

    cleanup_state_init(&st, flags, origin);
    if ((st.out = cleanup_out_open(incoming_fd, st.id, sizeof(st.id), &error)) == NULL) {
	msg_warn("%s", error);
	str_copy_out_or_panic(st.id, sizeof(st.id), "NOQUEUE");
	cleanup_fail(&st, CLEANUP_STAT_WRITE, "queue file write error: %s", error);
    } else {
	st.qf = cleanup_out_stream(st.out);
    }
    qf_reader_init(&r, client, 0);
    for (;;) {
	if ((rc = qf_get(&r, &type, data, QF_RECORD_MAX, CLEANUP_ALL_TYPES, NULL, &error)) <= 0) {
	    enum stream_status ss = stream_error(client);

	    if (rc == 0 || ss == STREAM_EOF || ss == STREAM_TIMEOUT || ss == STREAM_ERROR) {
		/* the file goes first, so that the log line is true when read */
		cleanup_out_abandon(&st.out);
		msg_info("%s: %s before the end of the message: nothing queued", st.id,
			 ss == STREAM_TIMEOUT ? "timeout" : "lost connection");
		result = CLEANUP_CONN_CLOSE;
		goto out;
	    }
	    msg_warn("%s: malformed request: %s", st.id, error);
	    cleanup_fail(&st, CLEANUP_STAT_BAD, "malformed request");
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
	case CLEANUP_PH_ENVELOPE:
	    cleanup_envelope_record(&st, type, data);
	    break;
	case CLEANUP_PH_HEADERS:
	case CLEANUP_PH_BODY:
	    if (type == QF_REC_XEND)
		cleanup_content_end(&st);
	    else
		cleanup_content_record(&st, type, data);
	    break;
	case CLEANUP_PH_TRAILER:
	    cleanup_envelope_rcpt_record(&st, type, data);
	    break;
	}
    }
  out:
    cleanup_state_fini(&st);
    str_free(&data);
    return result;
}

