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

#endif
