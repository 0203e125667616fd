/* server_multi.c - the MULTI skeleton loop: many clients per process,
 * event driven (auth; tests/bin/ph-multi-echo).
 *
 * Each client is a struct stream in the event loop (event.h) with a
 * silence timer (client_timeout); multi_input runs when it has input and
 * again while its stream holds buffered input. The process takes clients
 * until max_use, a reload or a table change, then serves the ones it has
 * to their end and exits. */

/* system */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

/* base */
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "server.h"
#include "server_internal.h"

/* The clients of this process. */
struct srv_client {
    struct stream *stream;
    void *ctx;
    event_timer_id timer;
    bool gone;
};
static struct srv_client **srv_clients;
static size_t srv_client_count;
static size_t srv_client_cap;

/* MULTI                                                            */

static void srv_multi_input_cb(int fd, void *ctx);


/* srv_client_timeout_ms - the silence limit of a MULTI client, <0: none */
static int srv_client_timeout_ms(void)
{
    long t = srv_spec->client_timeout;

    if (t == 0)
	t = var_ipc_timeout;
    if (t < 0)
	return -1;
    return (int) (t > INT_MAX / 1000 ? INT_MAX : t * 1000);
}

/* srv_client_drop - disconnect one client */
static void srv_client_drop(struct srv_client *c)
{
    if (c->gone)
	return;
    c->gone = true;
    event_remove(stream_fd(c->stream));
    if (c->timer)
	event_timer_cancel(c->timer);
    c->timer = 0;
    if (srv_spec->multi_disconnect)
	srv_spec->multi_disconnect(c->stream, c->ctx);
    (void) stream_close(&c->stream);
}

/* srv_client_reap - forget dropped clients; re-arm idle when none left */
static void srv_client_reap(void)
{
    size_t j = 0;

    for (size_t i = 0; i < srv_client_count; i++) {
	if (srv_clients[i]->gone)
	    mem_free(&srv_clients[i]);
	else
	    srv_clients[j++] = srv_clients[i];
    }
    if (j == 0 && srv_client_count > 0)
	srv_idle_arm();
    srv_client_count = j;
}

/* srv_client_timeout - a MULTI client was silent too long */
static void srv_client_timeout(void *ctx)
{
    struct srv_client *c = ctx;

    c->timer = 0;
    if (msg_verbose)
	msg_info("client timeout -- disconnecting");
    srv_client_drop(c);
}

/* srv_client_rearm - restart a client's silence timer */
static void srv_client_rearm(struct srv_client *c)
{
    int ms = srv_client_timeout_ms();

    if (c->timer)
	event_timer_cancel(c->timer);
    c->timer = ms < 0 ? 0 : event_timer_add(ms, srv_client_timeout, c);
}

/* srv_multi_add - register a new client */
static struct srv_client *srv_multi_add(int fd)
{
    struct srv_client *c = mem_zalloc(sizeof(*c));

    if (srv_client_count == srv_client_cap) {
	srv_client_cap = srv_client_cap ? srv_client_cap * 2 : 16;
	srv_clients = mem_realloc(srv_clients, mem_size_mul(srv_client_cap, sizeof(*srv_clients)));
    }
    srv_clients[srv_client_count++] = c;
    srv_idle_disarm();
    c->stream = srv_open_client(fd);
    c->ctx = srv_spec->multi_connect ? srv_spec->multi_connect(c->stream) : NULL;
    srv_client_rearm(c);
    event_add_read(fd, srv_multi_input_cb, c);
    return c;
}

/* srv_multi_input_cb - a client has input */
static void srv_multi_input_cb(int fd, void *ctx)
{
    struct srv_client *c = ctx;

    (void) fd;
    if (c->gone)
	return;
    server_watchdog_reset();
    for (;;) {
	size_t before = stream_buffered(c->stream);

	if (!srv_spec->multi_input(c->stream, c->ctx) || stream_error(c->stream) != STREAM_OK) {
	    srv_client_drop(c);
	    return;
	}
	/* more buffered input: serve it, unless the daemon took none */
	if (stream_buffered(c->stream) == 0 || stream_buffered(c->stream) >= before)
	    break;
    }
    srv_client_rearm(c);
}

/* srv_multi_accept_cb - a listener is readable */
static void srv_multi_accept_cb(int lfd, void *ctx)
{
    int fd;

    (void) ctx;
    if (srv_exit_requested || srv_limit_reached() || srv_tables_changed())
	return;
    if ((fd = sock_accept(lfd)) < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
	    && errno != ECONNABORTED && errno != EPROTO)
	    msg_warn("accept: %m");
	return;
    }
    /* A MULTI process stays available for more clients. */
    srv_notify(MASTER_STAT_TAKEN);
    srv_use_count++;
    if (!srv_limit_reached())
	srv_notify(MASTER_STAT_AVAIL);
    srv_multi_add(fd);
}


/* srv_multi_loop - run the event loop until there is nothing left to do */
_Noreturn void srv_multi_loop(void)
{
    bool listening = true;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    for (int i = 0; i < srv_listen_count; i++)
	event_add_read(MASTER_LISTEN_FD + i, srv_multi_accept_cb, NULL);
    srv_idle_arm();
    for (;;) {
	srv_client_reap();
	if (listening && (srv_exit_requested || srv_limit_reached() || srv_master_gone())) {
	    srv_stop_listening();
	    listening = false;
	}
	if (!listening && srv_client_count == 0)
	    break;
	if (srv_idle_expired && srv_client_count == 0) {
	    if (msg_verbose)
		msg_info("idle timeout -- exiting");
	    break;
	}
	srv_idle_expired = false;
	srv_loop_once();
    }
    srv_done();
}

/* srv_multi_stdin - -S for MULTI: one client on stdin/stdout */
_Noreturn void srv_multi_stdin(void)
{
    struct srv_client *c;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    c = srv_multi_add(srv_stdio_fd());
    srv_use_count++;
    while (!c->gone) {
	srv_loop_once();
    }
    srv_client_reap();
    srv_stdio_end();
    srv_done();
}
