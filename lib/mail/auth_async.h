/* auth_async.h - the non-blocking client of the auth protocol
 * (auth_proto.h), for processes that serve many clients on the event
 * loop (pop3d-login, imapd-login, the pop3d/imapd dispatchers).
 *
 * A pool of persistent connections to private/auth: one request in
 * flight per connection; a request takes an idle connection, else a new
 * one is opened (up to the pool limit), else it waits in a FIFO queue.
 * A connection idle for AUTH_ASYNC_IDLE_MS is closed, so an auth process
 * that wants to retire (table changed, reload) is not held.
 *
 *   h = auth_async_start(&req, got_reply, client);
 *   got_reply(h, reply, error, client):
 *       error != NULL: auth unreachable / timed out / protocol error
 *                      (answer the client "temporary failure")
 *       reply->status "continue": send reply->challenge to the client;
 *                      later auth_async_continue(h, response, ...)
 *                      (same connection: the SASL state lives in auth),
 *                      or auth_async_cancel(h) if the client cancels
 *       "ok" / "fail" / "tempfail": the exchange is over; h is freed
 *                      when the callback returns
 *   auth_async_redeem(token, service, got_redeem, ctx): one step; h is
 *       freed when the callback returns.
 *
 * Callbacks never run inside the call that starts a request (always
 * from the event loop), exactly once per step, unless the request was
 * cancelled. The reply's strings are valid only during the callback.
 * Every step is bounded by ipc_timeout (auth answers a failure only
 * after its failure delay, which is kept far below).
 *
 * Retry: a request=auth or redeem whose connection reached EOF before
 * any reply byte was certainly not processed (an auth process retiring
 * between requests): it is sent again once on a fresh connection. A
 * continue step is never retried (its state was in the lost process).
 *
 * auth_async_cancel(h): the client went away or cancelled; no callback
 * follows, h is freed. A reply still in flight is read and dropped, and
 * the connection goes back to the pool.
 *
 * DIAGNOSTICS: transport and protocol errors are given to the callback
 * as text (also logged with msg_warn once per connection failure);
 * misuse (continue on a handle that is not waiting for it) is msg_panic. */
#ifndef POSTHORN_AUTH_ASYNC_H
#define POSTHORN_AUTH_ASYNC_H

#include "auth_proto.h"

#define AUTH_ASYNC_IDLE_MS	2000	/* close a connection idle this long */
#define AUTH_ASYNC_POOL_DEFAULT	16	/* connections at most, by default */

struct auth_async;

typedef void (*auth_async_reply_fn)(struct auth_async *h, const struct auth_reply *reply,
				    const char *error, void *ctx);
typedef void (*auth_async_redeem_fn)(struct auth_async *h, const struct auth_redeem_reply *reply,
				     const char *error, void *ctx);

/* auth_async_init - optional: the socket path (NULL: AUTH_SOCKET,
 * relative to the cwd) and the pool limit (<= 0: the default). Call
 * before the first request (a process in a chroot: the path as seen
 * from inside it). */
void auth_async_init(const char *path, int max_connections);

/* auth_async_start - request=auth; the reply goes to cb */
struct auth_async *auth_async_start(const struct auth_request *req, auth_async_reply_fn cb,
				    void *ctx);

/* auth_async_continue - request=continue on h, whose last reply was
 * status=continue; the reply goes to cb */
void auth_async_continue(struct auth_async *h, const char *response_b64,
			 auth_async_reply_fn cb, void *ctx);

/* auth_async_redeem - request=redeem */
struct auth_async *auth_async_redeem(const char *token, const char *service,
				     auth_async_redeem_fn cb, void *ctx);

/* auth_async_cancel - forget h: no callback; frees it (NULL is fine) */
void auth_async_cancel(struct auth_async *h);

/* auth_async_shutdown - close idle connections now (a process about to
 * exit, or tests); requests in flight continue */
void auth_async_shutdown(void);

/* auth_async_stats - for tests and logging: connections open, busy
 * (in flight or reserved for a SASL exchange), requests queued */
void auth_async_stats(int *open_r, int *busy_r, int *queued_r);

#endif
