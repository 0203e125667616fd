/* qmgr_daemon.c - the queue manager's life on the server skeleton:
 * start-up recovery, wake-up triggers, timers, and the kicks that run
 * deferred work from the event loop.
 *
 * Triggers (public/qmgr, a fifo by default, so one read may hold many
 * requests): "I<queue ID>\n" take incoming/<ID> now, without a directory
 * scan (cleanup knows the ID it just committed); "D<queue ID>\n" the
 * operator deleted active/<ID>: drop it; "I" scan incoming/ now;
 * "F" flush: every deferred message now (and incoming/), and every dead
 * destination is alive again (qmgr_transport.c); master's
 * wake-up "W" and any other byte: scan incoming/. Timers:
 * incoming/ every qmgr_incoming_scan_delay (a lost trigger only delays),
 * deferred/ every queue_run_delay.
 *
 * Kicks: work that follows a state change is flagged and backed by a
 * zero-delay timer. Dispatch also runs at the end of the event callbacks
 * that do the hot work (a trigger, an agent's reply: qmgr_run_pending),
 * so "I<ID>" leads to a delivery request within the same callback, not
 * an event-loop turn later. Directory scans always wait for their timer:
 * the triggers that arrive in one loop turn share one scan. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

/* base */
#include "event.h"
#include "msg.h"

/* mail */
#include "config.h"
#include "mail_proto.h"
#include "resolve.h"
#include "server.h"

/* qmgr */
#include "qmgr.h"

static bool dispatch_pending;
static bool scan_pending;
static event_timer_id dispatch_timer, scan_timer;
static bool scan_incoming_wanted, scan_deferred_wanted, scan_flush_wanted;
static bool qmgr_draining;		/* asked to exit: no new work */

/* qmgr_now - wall-clock seconds (the queue file's time base) */
double qmgr_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* dispatch_run - start deliveries */
static void dispatch_run(void)
{
    if (dispatch_timer)
	(void) event_timer_cancel(dispatch_timer);
    dispatch_timer = 0;
    dispatch_pending = false;
    if (!qmgr_draining)
	qmgr_transport_dispatch_all();
}

/* dispatch_fire - the kick's timer */
static void dispatch_fire(void *ctx)
{
    (void) ctx;
    dispatch_timer = 0;
    dispatch_run();
    qmgr_run_pending();
}

/* qmgr_kick_dispatch - start deliveries soon (once per loop turn) */
void qmgr_kick_dispatch(void)
{
    if (!dispatch_pending) {
	dispatch_pending = true;
	dispatch_timer = event_timer_add(0, dispatch_fire, NULL);
    }
}

/* scan_run - run the scans that were asked for */
static void scan_run(void)
{
    if (scan_timer)
	(void) event_timer_cancel(scan_timer);
    scan_timer = 0;
    scan_pending = false;
    if (qmgr_draining)
	return;
    if (scan_incoming_wanted || qmgr_scan_blocked()) {
	scan_incoming_wanted = false;
	qmgr_scan_incoming();
    }
    if (scan_deferred_wanted || scan_flush_wanted || qmgr_scan_blocked()) {
	bool all = scan_flush_wanted;

	scan_deferred_wanted = scan_flush_wanted = false;
	qmgr_scan_deferred(all);
    }
}

/* scan_fire - the kick's timer */
static void scan_fire(void *ctx)
{
    (void) ctx;
    scan_timer = 0;
    scan_run();
    qmgr_run_pending();
}

/* qmgr_kick_scan - look for more messages soon */
void qmgr_kick_scan(void)
{
    if (!scan_pending) {
	scan_pending = true;
	scan_timer = event_timer_add(0, scan_fire, NULL);
    }
}

/* qmgr_run_pending - start kicked deliveries now; called at the end of
 * an event callback, never from inside the scheduler. Bounded: what is
 * still pending after a few rounds stays with its timer. Scans are left
 * to their timer (see above). */
void qmgr_run_pending(void)
{
    static bool running;

    if (running)
	return;
    running = true;
    for (int round = 0; round < 8 && dispatch_pending; round++)
	dispatch_run();
    running = false;
}

/* qmgr_timer_ms - seconds to a timer delay (capped) */
int qmgr_timer_ms(long seconds)
{
    return seconds > INT_MAX / 1000 ? INT_MAX : (int) seconds * 1000;
}

/* incoming_timer - the safety-net scan of incoming/ */
static void incoming_timer(void *ctx)
{
    (void) ctx;
    scan_incoming_wanted = true;
    qmgr_kick_scan();
    (void) event_timer_add(qmgr_timer_ms(var_qmgr_incoming_scan_delay), incoming_timer, NULL);
}

/* deferred_timer - the periodic queue run over deferred/ */
static void deferred_timer(void *ctx)
{
    (void) ctx;
    scan_deferred_wanted = true;
    qmgr_kick_scan();
    (void) event_timer_add(qmgr_timer_ms(var_queue_run_delay), deferred_timer, NULL);
}

/* qmgr_trigger_take - one "I<ID>\n": take incoming/ID without a scan;
 * one "D<ID>\n": the operator deleted active/ID */
static void qmgr_trigger_take(int kind, const char *id, void *ctx)
{
    (void) ctx;
    if (kind == QMGR_TRIGGER_GONE[0])
	qmgr_message_gone(id);
    else
	qmgr_scan_take_incoming(id);
}

/* qmgr_trigger - wake-up requests on public/qmgr. A fifo read within
 * PIPE_BUF of the pipe's capacity may mean that the fifo was full and a
 * sender's request was refused: scan incoming/ too, so that nothing
 * waits for the timer. */
void qmgr_trigger(const char *buf, size_t len)
{
    unsigned want = qmgr_trigger_parse(buf, len, qmgr_trigger_take, NULL);

    if (len > SERVER_FIFO_READ_MAX - PIPE_BUF)
	want |= QMGR_WANT_SCAN;
    if (want & QMGR_WANT_FLUSH) {
	scan_flush_wanted = true;
	qmgr_transport_revive_all();	/* retry dead destinations now too */
    }
    if (want & QMGR_WANT_SCAN) {
	scan_incoming_wanted = true;
	qmgr_kick_scan();
    }
    qmgr_run_pending();
}

/* qmgr_drain - master asked us to exit (reload): start nothing new, but
 * let the deliveries in flight finish and record their results, so that
 * a reload does not deliver them twice; true while some are left */
bool qmgr_drain(void)
{
    int running = qmgr_transport_running();

    if (!qmgr_draining) {
	qmgr_draining = true;
	if (running > 0)
	    msg_info("finishing %d deliver%s in progress before exit", running,
		     running == 1 ? "y" : "ies");
    }
    return running > 0;
}

/* qmgr_pre_init - open the routing tables while still privileged */
void qmgr_pre_init(int argc, char **argv)
{
    const char *err;

    (void) argc;
    (void) argv;
    if (resolve_init(&err) < 0)
	msg_fatal("%s", err);
    /* Under load every delivery waits for qmgr: let it run first. */
    errno = 0;
    if (var_qmgr_scheduling_priority != 0
	&& setpriority(PRIO_PROCESS, 0, (int) var_qmgr_scheduling_priority) < 0
	&& (geteuid() == 0 || (errno != EACCES && errno != EPERM)))
	msg_warn("qmgr_scheduling_priority = %ld: setpriority: %m",
		 (long) var_qmgr_scheduling_priority);
}

/* qmgr_lock_active - one qmgr per queue: hold an exclusive flock on
 * active/ for the life of the process. A reload can start a successor
 * while the old qmgr still finishes its deliveries (master does not
 * count the old one against the new service if the service changed, say
 * from unix to fifo); the successor must not recover active/ before the
 * old one is gone, or both would deliver the same messages. */
static void qmgr_lock_active(void)
{
    int fd;

    if ((fd = open("active", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
	msg_fatal("open %s/active: %m", var_queue_directory);
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
	return;				/* kept open (and locked) until exit */
    if (errno != EWOULDBLOCK)
	msg_fatal("lock %s/active: %m", var_queue_directory);
    msg_info("waiting for the previous qmgr to finish its deliveries");
    while (flock(fd, LOCK_EX) < 0)
	if (errno != EINTR)
	    msg_fatal("lock %s/active: %m", var_queue_directory);
}

/* qmgr_post_init - recover active/, start the timers */
void qmgr_post_init(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    qmgr_lock_active();
    qmgr_remove_init();
    qmgr_scan_recover();
    scan_incoming_wanted = true;
    scan_deferred_wanted = true;
    qmgr_kick_scan();
    (void) event_timer_add(qmgr_timer_ms(var_qmgr_incoming_scan_delay), incoming_timer, NULL);
    (void) event_timer_add(qmgr_timer_ms(var_queue_run_delay), deferred_timer, NULL);
}
