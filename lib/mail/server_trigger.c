/* server_trigger.c - the TRIGGER skeleton loop: wake-up requests on a
 * fifo or a unix socket (pickup, qmgr).
 *
 * A fifo is read all at once (every waiting request, each whole); a
 * socket connection is accepted non-blocking and read at once (its byte
 * is usually there already), else it waits in the event loop, so a silent
 * sender never blocks the others. An optional drain lets the daemon end
 * the work it started before the process exits. */

/* system */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

/* base */
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "server.h"
#include "server_internal.h"

/* srv_trigger_run - pass one request to the daemon */
static void srv_trigger_run(const char *buf, size_t len)
{
    static bool notified;

    if (srv_spec->trigger_notify_once) {
	srv_use_count++;
	srv_idle_disarm();
	server_watchdog_reset();
	srv_spec->trigger(buf, len);
	if (!notified && !srv_exit_requested) {
	    srv_notify_used();
	    notified = true;
	}
	srv_idle_arm();
	return;
    }
    srv_notify(MASTER_STAT_TAKEN);
    srv_use_count++;
    srv_idle_disarm();
    server_watchdog_reset();
    srv_spec->trigger(buf, len);
    if (!srv_limit_reached() && !srv_exit_requested)
	srv_notify(MASTER_STAT_AVAIL);
    srv_idle_arm();
}

/* srv_trigger_fifo_cb - bytes in the FIFO: all that is there, in one go */
static void srv_trigger_fifo_cb(int fd, void *ctx)
{
    static char buf[SERVER_FIFO_READ_MAX];
    ssize_t n;

    (void) ctx;
    if (srv_exit_requested || srv_limit_reached() || srv_tables_changed())
	return;
    n = read(fd, buf, sizeof(buf));
    if (n < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
	    msg_fatal("read trigger fifo: %m");
	return;
    }
    if (n == 0)
	return;
    srv_trigger_run(buf, (size_t) n);
}

/* A trigger connection waiting for its bytes: never blocks the loop. */
struct srv_trigger_conn {
    int fd;
    event_timer_id timer;
};

#define SRV_TRIGGER_WAIT_MS	5000	/* a sender writes at once */
#define SRV_TRIGGER_PENDING_MAX	64	/* connections waiting for bytes */

static int srv_trigger_pending;

/* srv_trigger_conn_end - forget a trigger connection */
static void srv_trigger_conn_end(struct srv_trigger_conn *tc)
{
    event_remove(tc->fd);
    if (tc->timer)
	event_timer_cancel(tc->timer);
    close(tc->fd);
    srv_trigger_pending--;
    mem_free(&tc);
}

/* srv_trigger_conn_timeout - the sender wrote nothing in time */
static void srv_trigger_conn_timeout(void *ctx)
{
    struct srv_trigger_conn *tc = ctx;

    tc->timer = 0;
    msg_warn("trigger connection: timeout");
    srv_trigger_conn_end(tc);
}

/* srv_trigger_conn_cb - the bytes of one trigger connection */
static void srv_trigger_conn_cb(int fd, void *ctx)
{
    struct srv_trigger_conn *tc = ctx;
    char buf[SERVER_TRIGGER_MAX];
    ssize_t n = read(fd, buf, sizeof(buf));

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	return;
    if (n < 0)
	msg_warn("trigger connection: %m");
    srv_trigger_conn_end(tc);
    if (n >= 0)
	srv_trigger_run(buf, (size_t) n);
}

/* srv_trigger_stream_cb - a connection on a trigger socket */
static void srv_trigger_stream_cb(int lfd, void *ctx)
{
    struct srv_trigger_conn *tc;
    int fd;

    (void) ctx;
    if (srv_exit_requested || srv_limit_reached() || srv_tables_changed())
	return;
    if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
	    && errno != ECONNABORTED && errno != EPROTO)
	    msg_warn("accept: %m");
	return;
    }
    /* The sender writes at once: its bytes are usually there already. */
    {
	char buf[SERVER_TRIGGER_MAX];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
	    if (n < 0)
		msg_warn("trigger connection: %m");
	    close(fd);
	    if (n >= 0)
		srv_trigger_run(buf, (size_t) n);
	    return;
	}
    }
    if (srv_trigger_pending >= SRV_TRIGGER_PENDING_MAX) {
	msg_warn("trigger connection: too many pending -- dropped");
	close(fd);
	return;
    }
    tc = mem_zalloc(sizeof(*tc));
    tc->fd = fd;
    tc->timer = event_timer_add(SRV_TRIGGER_WAIT_MS, srv_trigger_conn_timeout, tc);
    srv_trigger_pending++;
    event_add_read(fd, srv_trigger_conn_cb, tc);
}

/* srv_drain - let a TRIGGER daemon finish the work it started (spec's
 * drain) before it exits; at most ipc_timeout, and not without master */
static void srv_drain(void)
{
    time_t deadline = srv_now_sec() + (time_t) var_ipc_timeout;

    while (srv_spec->drain()) {
	if (srv_master_gone() || srv_now_sec() >= deadline) {
	    msg_warn("exiting with work still in progress");
	    return;
	}
	srv_loop_once();
    }
}

/* srv_trigger_loop - wait for triggers until a limit or a signal */
_Noreturn void srv_trigger_loop(void)
{
    bool fifo = strcmp(server_service_type(), "fifo") == 0;

    event_add_read(srv_wake_pipe[0], srv_wake_cb, NULL);
    for (int i = 0; i < srv_listen_count; i++)
	event_add_read(MASTER_LISTEN_FD + i,
		       fifo ? srv_trigger_fifo_cb : srv_trigger_stream_cb, NULL);
    srv_idle_arm();
    for (;;) {
	if (srv_exit_requested || srv_limit_reached() || srv_master_gone()) {
	    srv_stop_listening();
	    break;
	}
	if (srv_idle_expired) {
	    if (msg_verbose)
		msg_info("idle timeout -- exiting");
	    break;
	}
	srv_loop_once();
    }
    if (srv_spec->drain)
	srv_drain();
    srv_done();
}

/* srv_trigger_stdin - -S for TRIGGER: read stdin, one trigger */
_Noreturn void srv_trigger_stdin(void)
{
    char buf[SERVER_TRIGGER_MAX];
    size_t len = 0;

    while (len < sizeof(buf)) {
	ssize_t n = read(STDIN_FILENO, buf + len, sizeof(buf) - len);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    msg_fatal("read stdin: %m");
	if (n == 0)
	    break;
	len += (size_t) n;
    }
    srv_use_count++;
    server_watchdog_reset();
    srv_spec->trigger(buf, len);
    srv_done();
}
