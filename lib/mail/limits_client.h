/* limits_client.h - clients of the client-limits service (limits_proto.h).
 *
 * Two flavours, both on one persistent connection per process:
 *
 * Blocking (smtpd: one client per process). The connection is opened on
 * first use and kept across the process's clients (a connect stays
 * bound to it until the matching disconnect, or until the process
 * exits). Each call waits at most LIMITS_CLIENT_TIMEOUT_MS.
 *   limits_client_call(LIMITS_REQ_CONNECT, service, addr, &counts)
 *     0: counts filled; -1: service unreachable or an error (logged as a
 *     warning at most once per LIMITS_WARN_INTERVAL_S): fail open.
 *
 * Event-driven (smtp-front, pop3d-login, imapd-login: many clients on
 * the event loop, event.h). Requests are pipelined on the connection and
 * their callbacks run in order, always from the event loop, never inside
 * the call that made the request.
 *   h = limits_async_call(LIMITS_REQ_CONNECT, service, addr, got, ctx);
 *   got(counts, error, ctx): error != NULL: unreachable / timeout /
 *       protocol error (fail open); counts valid during the call.
 *   limits_async_cancel(h): the client left; no callback. The request
 *       itself may still be counted: a caller that sent a connect sends
 *       its disconnect anyway (limits_async_send).
 *   limits_async_send(LIMITS_REQ_DISCONNECT, service, addr): fire and
 *       forget (no reply wanted by the caller; the reply is read and
 *       dropped).
 * If the connection breaks, pending requests get their callback with an
 * error, and the next request opens a new connection (connects made on
 * the old one were released by the service when it closed).
 *
 * limits_client_exempt(list, addr): true if addr matches the network
 * list text (cidr_match.h syntax, e.g. the value of
 * smtpd_client_event_limit_exceptions); parsed once per list text and
 * cached.
 *
 * DIAGNOSTICS: warnings as above; misuse is msg_panic. */
#ifndef POSTHORN_LIMITS_CLIENT_H
#define POSTHORN_LIMITS_CLIENT_H

#include <stdbool.h>

#include "limits_proto.h"

#define LIMITS_CLIENT_TIMEOUT_MS	2000	/* per blocking call */
#define LIMITS_WARN_INTERVAL_S		60	/* at most one warning per */

/* limits_client_init - optional: socket path (NULL: LIMITS_SOCKET,
 * relative to the cwd; in a chroot the path as seen from inside). */
void limits_client_init(const char *path);

/* Blocking. */
int limits_client_call(const char *request, const char *service, const char *client_address,
		       struct limits_counts *counts);
/* limits_client_list - operator listing (request=list); calls fn once
 * per entry; -1 (with *error_r) if unreachable */
int limits_client_list(long max,
		       void (*fn)(const char *service, const char *client_address,
				  const struct limits_counts *counts, void *ctx),
		       void *ctx, const char **error_r);
/* limits_client_close - close the connection (releases its connects) */
void limits_client_close(void);

/* Event-driven. */
struct limits_async;
typedef void (*limits_async_fn)(const struct limits_counts *counts, const char *error, void *ctx);
struct limits_async *limits_async_call(const char *request, const char *service,
				       const char *client_address, limits_async_fn cb, void *ctx);
void limits_async_cancel(struct limits_async *h);
void limits_async_send(const char *request, const char *service, const char *client_address);

/* limits_client_exempt - addr is in the network list text */
bool limits_client_exempt(const char *network_list, const char *client_address);

#endif
