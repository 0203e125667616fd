/* maildrop_cleanup.h - copy one maildrop file (maildrop.h) from a stream
 * to cleanup, checking every record with the maildrop rules: the part
 * that pickup (maildrop/ files) and submit (sendmail's socket) share.
 *
 *     res = maildrop_to_cleanup(&cleanup, in, &sub, sender, &result, &why);
 *
 * The stream holds V, S, A*, recipients, M, content, X, trailer, E, as
 * an untrusted local user wrote them. The submitter's uid, the arrival
 * time and the origin come from the caller (sub), never from the file:
 * the maildrop profile of the record grammar refuses every attribute
 * but dsn_envid, dsn_ret, body and flags. The message goes to cleanup
 * with CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_UNTRUSTED (plus
 * CLEANUP_FLAG_EXTRACT for the "extract" flag) and submit_uid=UID.
 *
 * *cp is the cleanup conversation: opened here if NULL, kept open after
 * MAILDROP_QUEUED so that the caller can send the next message on it,
 * closed (NULL) after any failure that may have broken it.
 *
 * Results:
 *   MAILDROP_QUEUED  the file and its directory entry are on disk
 *                    (cleanup said so); result->queue_id names it
 *   MAILDROP_BAD     permanent: the records break the rules, or cleanup
 *                    refused the message for good; *why says why
 *   MAILDROP_TEMP    temporary: cleanup is unreachable or failed to
 *                    commit (*why); *cleanup_down is set when cleanup
 *                    itself is the problem
 *   MAILDROP_NO_CLEANUP  temporary: no cleanup conversation could be
 *                    opened (connect or handshake failed; *why), so
 *                    nothing was sent and nothing stored; *cleanup_down
 *                    is set
 * A read error on in also gives MAILDROP_BAD (stream_error(in) tells
 * the caller it was the input). *why points to a static buffer. */
#ifndef POSTHORN_MAILDROP_CLEANUP_H
#define POSTHORN_MAILDROP_CLEANUP_H

#include <stdbool.h>
#include <stdint.h>

/* base */
#include "str.h"
#include "stream.h"

/* mail */
#include "cleanup_client.h"

enum maildrop_result { MAILDROP_QUEUED, MAILDROP_BAD, MAILDROP_TEMP, MAILDROP_NO_CLEANUP };

struct maildrop_submission {
    unsigned long uid;		/* the submitter, from the OS */
    int64_t sec;		/* arrival time */
    long usec;
    const char *origin;		/* cleanup's origin: "pickup", "submit" */
    long long size_limit;	/* message_size_limit */
};

enum maildrop_result maildrop_to_cleanup(struct cleanup_client **cp, struct stream *in,
					 const struct maildrop_submission *sub,
					 struct str *sender, struct cleanup_result *result,
					 const char **why, bool *cleanup_down);

#endif
