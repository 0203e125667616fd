/* master_stress.c - stress mode (master_proto.h): a service whose every
 * process is busy, at its process limit, while a client waits on a
 * listener. master logs it, starts the service's new children with
 * "-o stress=yes" and tells the running ones with MASTER_STRESS_SIGNAL,
 * so that ${stress?{10}:{300}}s defaults (smtpd_timeout and the like)
 * take their short values everywhere at once; it leaves stress mode when
 * the service has had an idle child (or room for one: with max_use 1 the
 * children exit rather than idle) for MASTER_STRESS_CALM_S seconds.
 * Only inet and pass services (those that face clients from outside)
 * enter stress mode.
 *
 * master watches a full service's listeners only while it is not in
 * stress yet (the waiting client keeps the listener readable: once in
 * stress, there is nothing more to learn from it), so a full service
 * costs no busy loop. */

#include <errno.h>
#include <signal.h>
#include <string.h>

/* base */
#include "msg.h"

/* mail */
#include "master_proto.h"

/* master */
#include "master.h"

#define MASTER_STRESS_RECHECK_MS	1000

/* master_stress_wants_watch - a full service not in stress: watch its
 * listeners for a waiting client */
bool master_stress_wants_watch(const struct master_service *serv)
{
    long maxproc = serv->ent->maxproc;

    /* Only services that face clients: an internal service (cleanup,
     * qmgr, auth) that is busy for a moment while a request waits is
     * not under attack, and its callers have their own deadlines. */
    if (serv->type != MASTERCF_INET && serv->type != MASTERCF_PASS)
	return false;
    return !serv->stress && !master_stopping && !serv->throttled && !serv->listen_pending
	&& serv->listen_count > 0 && serv->avail_proc == 0 && maxproc > 0
	&& serv->total_proc >= maxproc;
}

/* master_stress_on - listener i of a full service is readable: stress
 * mode starts; signal the children that are past their start-up (they
 * reported work, so their skeleton handles the signal) */
void master_stress_on(struct master_service *serv, int i)
{
    int told = 0;

    if (!master_stress_wants_watch(serv))
	return;
    serv->stress = true;
    serv->stress_calm_since = 0;
    msg_warn("service %s (%s): all %ld processes busy -- stress mode on", serv->name,
	     serv->listen[i].addr, serv->ent->maxproc);
    for (struct master_child *child = master_children; child; child = child->next) {
	if (child->serv != serv || child->use_count == 0)
	    continue;
	if (kill(child->pid, MASTER_STRESS_SIGNAL) < 0) {
	    if (errno != ESRCH)
		msg_warn("kill -%d %ld: %m", MASTER_STRESS_SIGNAL, (long) child->pid);
	    continue;
	}
	told++;
    }
    if (msg_verbose)
	msg_info("service %s: stress signal to %d running processes", serv->name, told);
}

/* master_stress_avail - serv's idle or total count changed: spare
 * capacity (an idle child, or room for one more) starts the calm period,
 * none ends it. With max_use 1 the children exit instead of going idle:
 * an empty service is calm too. */
void master_stress_avail(struct master_service *serv)
{
    long maxproc = serv->ent ? serv->ent->maxproc : 0;

    if (!serv->stress)
	return;
    if (serv->avail_proc <= 0 && maxproc > 0 && serv->total_proc >= maxproc)
	serv->stress_calm_since = 0;
    else if (serv->stress_calm_since == 0)
	serv->stress_calm_since = master_now_ms();
}

/* master_stress_timer - stress ends after the calm period; returns the
 * ms time when it is due (or -1: nothing to wait for). A service with a
 * scoreboard is looked at every MASTER_STRESS_RECHECK_MS while in stress
 * and not calm: two children that go idle at once may both skip the
 * AVAIL record (scoreboard.c), and master, which no longer watches the
 * listeners of a service in stress, would not see the calm begin. */
long long master_stress_timer(struct master_service *serv, long long now)
{
    if (!serv->stress)
	return -1;
    if (serv->stress_calm_since == 0)
	return serv->sb != NULL ? now + MASTER_STRESS_RECHECK_MS : -1;
    if (now - serv->stress_calm_since >= MASTER_STRESS_CALM_S * 1000LL) {
	serv->stress = false;
	serv->stress_calm_since = 0;
	msg_info("service %s: stress mode off", serv->name);
	return -1;
    }
    return serv->stress_calm_since + MASTER_STRESS_CALM_S * 1000LL;
}
