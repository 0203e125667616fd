/* qmgr_daemon.c - the queue manager's life on the server skeleton:
 * start-up recovery, wake-up triggers, timers, and the kicks that run
 * deferred work from the event loop.
 *
 * Triggers (public/qmgr): "I" scan incoming/ now; "F" flush: every
 * deferred message now (and incoming/); master's wake-up "W" and any
 * other byte: scan incoming/. Timers: incoming/ every
 * qmgr_incoming_scan_delay (a lost trigger only delays), deferred/
 * every queue_run_delay. */

#include <limits.h>
#include <string.h>
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
static bool scan_incoming_wanted, scan_deferred_wanted, scan_flush_wanted;

/* qmgr_now - wall-clock seconds (the queue file's time base) */
double qmgr_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* dispatch_fire - start deliveries */
static void dispatch_fire(void *ctx)
{
    (void) ctx;
    dispatch_pending = false;
    qmgr_transport_dispatch_all();
}

/* qmgr_kick_dispatch - start deliveries soon (once per loop turn) */
void qmgr_kick_dispatch(void)
{
    if (!dispatch_pending) {
	dispatch_pending = true;
	(void) event_timer_add(0, dispatch_fire, NULL);
    }
}

/* scan_fire - run the scans that were asked for */
static void scan_fire(void *ctx)
{
    (void) ctx;
    scan_pending = false;
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

/* qmgr_kick_scan - look for more messages soon */
void qmgr_kick_scan(void)
{
    if (!scan_pending) {
	scan_pending = true;
	(void) event_timer_add(0, scan_fire, NULL);
    }
}

/* timer_ms - seconds to a timer delay */
static int timer_ms(long seconds)
{
    return seconds > INT_MAX / 1000 ? INT_MAX : (int) seconds * 1000;
}

/* incoming_timer - the safety-net scan of incoming/ */
static void incoming_timer(void *ctx)
{
    (void) ctx;
    scan_incoming_wanted = true;
    qmgr_kick_scan();
    (void) event_timer_add(timer_ms(var_qmgr_incoming_scan_delay), incoming_timer, NULL);
}

/* deferred_timer - the periodic queue run over deferred/ */
static void deferred_timer(void *ctx)
{
    (void) ctx;
    scan_deferred_wanted = true;
    qmgr_kick_scan();
    (void) event_timer_add(timer_ms(var_queue_run_delay), deferred_timer, NULL);
}

/* qmgr_trigger - a wake-up request on public/qmgr */
void qmgr_trigger(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
	if (buf[i] == QMGR_TRIGGER_FLUSH[0])
	    scan_flush_wanted = true;
	scan_incoming_wanted = true;
    }
    if (len == 0)
	scan_incoming_wanted = true;
    qmgr_kick_scan();
}

/* qmgr_pre_init - open the routing tables while still privileged */
void qmgr_pre_init(int argc, char **argv)
{
    const char *err;

    (void) argc;
    (void) argv;
    if (resolve_init(&err) < 0)
	msg_fatal("%s", err);
}

/* qmgr_post_init - recover active/, start the timers */
void qmgr_post_init(int argc, char **argv)
{
    (void) argc;
    (void) argv;
    qmgr_scan_recover();
    scan_incoming_wanted = true;
    scan_deferred_wanted = true;
    qmgr_kick_scan();
    (void) event_timer_add(timer_ms(var_qmgr_incoming_scan_delay), incoming_timer, NULL);
    (void) event_timer_add(timer_ms(var_queue_run_delay), deferred_timer, NULL);
}
