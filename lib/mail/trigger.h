/* trigger.h - wake-up requests to a daemon's public fifo or unix socket */
#ifndef POSTHORN_TRIGGER_H
#define POSTHORN_TRIGGER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * trigger_send - write the request msg (at most PIPE_BUF bytes, so that a
 * fifo write is atomic) to the daemon endpoint at path, which master made
 * a fifo or a unix stream socket; the daemon is never waited for beyond
 * timeout_ms (a socket's connect). With keep_fd (start it at -1), a fifo
 * stays open in *keep_fd and later calls cost one write(2). A full fifo
 * (the daemon is behind) fails with errno EAGAIN: the daemon's own
 * periodic scan covers a lost request. false with *why (and errno) on
 * failure; *why is a static buffer, valid until the next trigger_send.
 */
bool trigger_send(const char *path, const char *msg, size_t len, int timeout_ms,
		  int *keep_fd, const char **why);

/*
 * trigger_qmgr_incoming - tell qmgr "take incoming/ID now" (mail_proto.h:
 * QMGR_TRIGGER_SCAN, the queue ID and a newline) on QMGR_SOCKET, with the
 * fifo kept open for the life of the process (one write(2) per message).
 * Whoever sends it last before the mail's submitter hears its answer
 * should send it: cleanup, or smtpd after its 250 (docs/architecture.md,
 * the decision on the one-CPU latency). A failure only delays the mail:
 * qmgr scans incoming/ on its timer too. false with *why as trigger_send.
 */
bool trigger_qmgr_incoming(const char *queue_id, const char **why);

#endif
