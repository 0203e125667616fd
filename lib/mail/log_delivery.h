/* log_delivery.h - the one formatter for delivery outcomes and queue
 * events in the mail log (Postfix's log shape).
 *
 * Every recipient's outcome is logged by log_delivery(), whoever decides
 * it, so the lines always have the same shape:
 *
 *   ID: to=<r>, orig_to=<o>, relay=R, conn_use=N, tls=T, delay=D,
 *       delays=a/b/c/d, dsn=X.Y.Z, status=sent|deferred|bounced|expired
 *       (reason)
 *
 * orig_to appears only when it is known and differs from to; conn_use
 * only when the delivery went over an SMTP session that carried earlier
 * ones (N > 1: the N-th delivery of the session, as Postfix); tls only
 * for an SMTP session: "none" (cleartext) or "Trust:protocol:cipher"
 * (Trust: Verified, Trusted, Untrusted, Anonymous). delay is
 * the total time since the message arrived; delays splits it into
 *   a  before the queue manager (arrival until qmgr took the file into
 *      active/ for this attempt)
 *   b  in the queue manager (until the delivery was handed to an agent
 *      or, for a new connection, until the connection was started)
 *   c  connection set-up (connect and handshake; 0 on a reused
 *      connection)
 *   d  transmission (request sent until the agent's answer)
 * Times are seconds as doubles (CLOCK_REALTIME, as the arrival time in
 * the queue file); a zero stage time means "did not happen" and counts
 * as no time. Durations print with at most two decimals ("0.12", "3.4",
 * "0") and whole seconds from 100 on.
 *
 * The other queue events:
 *   ID: from=<s>, size=N, nrcpt=N (queue active)     log_queue_active
 *   ID: removed                                     log_queue_removed
 *   ID: from=<s>, status=expired, returned to sender log_queue_expired
 *
 * log_delivery_format() builds the text without logging it (for tests).
 * Diagnostics: none; text that does not fit is truncated by msg. */
#ifndef POSTHORN_LOG_DELIVERY_H
#define POSTHORN_LOG_DELIVERY_H

#include <stddef.h>

#include "str.h"

/* Stage times of one delivery attempt (seconds since the epoch). */
struct delivery_times {
    double arrival;		/* the T record */
    double active;		/* qmgr took the file into active/ */
    double conn_start;		/* connection set-up began (0: reused) */
    double xmit_start;		/* the request was sent */
    double finish;		/* the outcome became known */
};

/* One recipient's outcome. */
struct delivery_outcome {
    const char *to;		/* recipient (internal form) */
    const char *orig_to;	/* before rewriting; NULL or "" if none */
    const char *relay;		/* "local", "host[addr]:port", "none" */
    const char *dsn;		/* "2.0.0" */
    const char *status;		/* "sent", "deferred", "bounced", "expired" */
    const char *reason;		/* free text (without parentheses) */
    long conn_use;		/* deliveries on the session, this one
				 * included (printed when > 1) */
    const char *tls;		/* the session's TLS; NULL or "": not printed */
};

/* log_delivery_format - the text after "ID: " into out (reset first) */
void log_delivery_format(struct str *out, const struct delivery_outcome *o,
			 const struct delivery_times *t);
/* log_delivery - log one recipient's outcome */
void log_delivery(const char *queue_id, const struct delivery_outcome *o,
		  const struct delivery_times *t);
/* log_delay_format - one duration as logged ("0", "0.12", "3.4", "250") */
void log_delay_format(char *buf, size_t size, double seconds);

/* log_queue_active - "ID: from=<s>, size=N, nrcpt=N (queue active)" */
void log_queue_active(const char *queue_id, const char *sender, long size, long nrcpt);
/* log_queue_removed - "ID: removed" */
void log_queue_removed(const char *queue_id);
/* log_queue_expired - "ID: from=<s>, status=expired, returned to sender" */
void log_queue_expired(const char *queue_id, const char *sender);

#endif
