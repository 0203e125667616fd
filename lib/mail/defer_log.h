/* defer_log.h - the per-message log of deferred recipients, defer/ID.
 *
 * While a message waits in deferred/, defer/ID says why: one text line
 * per deferred recipient and attempt, appended by qmgr and read back by
 * `posthorn queue list` (mailq) and by qmgr itself:
 *
 *     rcpt=ADDRESS, dsn=X.Y.Z, reason=TEXT
 *     delay_warning=sent
 *
 * ADDRESS is xtext (RFC 3461) so it contains no space, comma or '=';
 * DSN is a status code; TEXT is the rest of the line (line breaks and
 * control characters become spaces). A recipient may appear several
 * times (one line per attempt); the last line is its current reason.
 * "delay_warning=sent" records that the one delay notice for the
 * message went out. Lines that do not parse are skipped by the reader
 * (a crash can leave a torn last line; it is never an error).
 *
 * Appends are durable: all records of one call go out in one write(2),
 * then fsync; if the write or fsync fails the file is truncated back to
 * its old size and -1 is returned. A newly created log also gets its
 * directory fsynced. Paths are relative to the queue directory.
 *
 * Interface:
 *   defer_log_append()   append records for one message
 *   defer_log_warned()   append the delay-warning mark
 *   defer_log_read()     call fn for each record (missing file: 0 records)
 *   defer_log_remove()   unlink (missing is fine)
 * Diagnostics: -1 and an error text in a static buffer, valid until the
 * next defer_log_* call. */
#ifndef POSTHORN_DEFER_LOG_H
#define POSTHORN_DEFER_LOG_H

#include <stdbool.h>
#include <stddef.h>

#define DEFER_LOG_DIR	"defer"
#define DEFER_LOG_LINE_MAX 4096		/* longer lines are cut */

struct defer_log_record {
    const char *rcpt;		/* recipient (internal form) */
    const char *dsn;		/* "4.3.0" */
    const char *reason;		/* free text */
};

/* defer_log_append - append count records to defer/ID durably */
int defer_log_append(const char *queue_id, const struct defer_log_record *recs,
		     size_t count, const char **error_r);
/* defer_log_warned - append "delay_warning=sent" durably */
int defer_log_warned(const char *queue_id, const char **error_r);

/* defer_log_read - for each record in defer/ID call fn (rcpt, dsn and
 * reason valid during the call); *warned_r (may be NULL) tells whether a
 * delay warning was recorded. A missing file is 0 records. */
typedef void (*defer_log_fn)(const struct defer_log_record *rec, void *ctx);
int defer_log_read(const char *queue_id, defer_log_fn fn, void *ctx, bool *warned_r,
		   const char **error_r);

/* defer_log_remove - unlink defer/ID; a missing file is success */
int defer_log_remove(const char *queue_id, const char **error_r);

#endif
