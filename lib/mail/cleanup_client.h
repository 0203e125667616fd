/* cleanup_client.h - the client side of the cleanup protocol
 * (mail_proto.h, conversation 1), for smtpd, pickup and bounce.
 *
 * A conversation:
 *     c = cleanup_client_open(NULL, &err);          connect + handshake
 *     for each message:
 *         cleanup_client_begin(c, flags, origin, &err)   {flags, origin}
 *         cleanup_client_time(c, sec, usec)          optional 'T'
 *         cleanup_client_sender(c, "a@b")            'S'
 *         cleanup_client_attr(c, "helo", "x")        'A' ...
 *         cleanup_client_rcpt(c, rcpt, orcpt, notify) [O] [N] R ...
 *         cleanup_client_message(c)                  'M'
 *         cleanup_client_line(c, data, len) ...      'C'* 'L' per line
 *         cleanup_client_xend(c)                     'X'
 *         cleanup_client_rcpt(c, ...) ...            optional trailer
 *         cleanup_client_finish(c, &result, &err)    'E', read the reply
 *     cleanup_client_close(&c);
 * The record helpers return 0, or -1 after a stream error; errors are
 * sticky, so a caller may check only the result of finish. To abandon a
 * message (client gone, DATA aborted), call cleanup_client_abandon():
 * it closes the connection before 'E', and cleanup then removes the
 * half-written file (nothing is queued). cleanup_client_stream() gives
 * the stream for callers that copy records with qf_put() themselves
 * (pickup).
 *
 * cleanup_client_finish() returns 0 when a reply arrived: result->status
 * is 0 (queued: the file and its directory entry are on disk, and
 * result->queue_id names it) or a CLEANUP_STAT_* mask with a reason
 * (map it with cleanup_stat.h). It returns -1 when the conversation
 * failed (connection lost, timeout, malformed reply): result->status is
 * then CLEANUP_STAT_WRITE (temporary) and result->reason says why. After
 * a non-zero status or -1 the connection must be closed: cleanup may
 * have dropped it.
 *
 * Every read and write is bounded by ipc_timeout. Lines are written in
 * records of at most CLEANUP_CLIENT_LINE_MAX bytes (longer lines become
 * C records and a final L, never cut).
 *
 * DIAGNOSTICS: none logged; -1 with *error_r (a static buffer valid until
 * the next call into this module). */
#ifndef POSTHORN_CLEANUP_CLIENT_H
#define POSTHORN_CLEANUP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base */
#include "stream.h"

/* mail */
#include "queue_id.h"

#define CLEANUP_CLIENT_LINE_MAX	8192	/* bytes per content record */
#define CLEANUP_REASON_MAX	1024

struct cleanup_client;

struct cleanup_result {
    unsigned status;			/* 0 or CLEANUP_STAT_* bits */
    char queue_id[QUEUE_ID_SIZE];	/* "" unless queued */
    char reason[CLEANUP_REASON_MAX];	/* text for logs and replies */
};

/* cleanup_client_open - connect to path (NULL: CLEANUP_SOCKET relative
 * to the current directory, which in every daemon is queue_directory,
 * chrooted or not) and check the handshake. NULL and *error_r on failure. */
struct cleanup_client *cleanup_client_open(const char *path, const char **error_r);
/* cleanup_client_begin - start a message: {flags, origin}, buffered with
 * the records that follow (a dead connection shows at the next flush or
 * at cleanup_client_finish, not here) */
int cleanup_client_begin(struct cleanup_client *c, unsigned flags, const char *origin,
			 const char **error_r);

/* Records (0, or -1 on a stream error). */
int cleanup_client_time(struct cleanup_client *c, int64_t sec, long usec);
int cleanup_client_sender(struct cleanup_client *c, const char *sender);
int cleanup_client_attr(struct cleanup_client *c, const char *name, const char *value);
/* cleanup_client_rcpt - [O orcpt] [N notify] R rcpt (NULL: leave out) */
int cleanup_client_rcpt(struct cleanup_client *c, const char *rcpt, const char *orcpt,
			const char *notify);
int cleanup_client_message(struct cleanup_client *c);
int cleanup_client_line(struct cleanup_client *c, const void *data, size_t len);
int cleanup_client_xend(struct cleanup_client *c);

/* cleanup_client_finish - send E, read {status, queue_id, reason} */
int cleanup_client_finish(struct cleanup_client *c, struct cleanup_result *result,
			  const char **error_r);
/* cleanup_client_abandon - drop the message at hand: close without E */
void cleanup_client_abandon(struct cleanup_client **cp);
/* cleanup_client_close - end the conversation (after finish) */
void cleanup_client_close(struct cleanup_client **cp);

/* cleanup_client_stream - the connection, for qf_put() */
struct stream *cleanup_client_stream(struct cleanup_client *c);
/* cleanup_client_bytes - content bytes sent for this message (lines
 * plus one per line for the terminator), as a size estimate */
uint64_t cleanup_client_bytes(const struct cleanup_client *c);

#endif
