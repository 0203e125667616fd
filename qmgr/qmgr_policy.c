/* qmgr_policy.c - the queue manager's pure decisions: NOTIFY flags,
 * retry backoff, queue lifetimes, delay warnings. No I/O, so that the
 * unit test can check them with a table. */

#include <string.h>

/* base */
#include "str.h"

/* mail */
#include "mail_proto.h"
#include "queue_id.h"

/* qmgr */
#include "qmgr.h"

/* qmgr_trigger_id - a trigger that names the message to take */
bool qmgr_trigger_id(const char *buf, size_t len, char *id, size_t size)
{
    size_t idlen;

    if (len < 2 || buf[0] != QMGR_TRIGGER_SCAN[0])
	return false;
    idlen = len - 1;
    if (idlen >= size || memchr(buf + 1, 0, idlen) != NULL)
	return false;
    memcpy(id, buf + 1, idlen);
    id[idlen] = 0;
    return queue_id_valid(id);
}

/* qmgr_notify_flags - flags of an N record ("" = the default) */
unsigned qmgr_notify_flags(const char *notify)
{
    unsigned flags = 0;
    const char *p = notify, *end;

    if (notify == NULL || *notify == 0)
	return QMGR_NOTIFY_DEFAULT;
    while (*p) {
	size_t len;

	end = strchr(p, ',');
	len = end ? (size_t) (end - p) : strlen(p);
	if (len == 5 && strncmp(p, "never", 5) == 0)
	    flags |= QMGR_NOTIFY_NEVER;
	else if (len == 7 && strncmp(p, "success", 7) == 0)
	    flags |= QMGR_NOTIFY_SUCCESS;
	else if (len == 7 && strncmp(p, "failure", 7) == 0)
	    flags |= QMGR_NOTIFY_FAILURE;
	else if (len == 5 && strncmp(p, "delay", 5) == 0)
	    flags |= QMGR_NOTIFY_DELAY;
	if (end == NULL)
	    break;
	p = end + 1;
    }
    /* NEVER excludes the others (qf_scan already enforces the grammar) */
    return (flags & QMGR_NOTIFY_NEVER) ? QMGR_NOTIFY_NEVER : flags;
}

/* qmgr_backoff - seconds until the next attempt: the message's age,
 * kept between the minimal and maximal backoff time, so the waits
 * double from one attempt to the next until they reach the maximum */
long qmgr_backoff(double now, double arrival, long min_backoff, long max_backoff)
{
    double age = now - arrival;
    long delay;

    if (max_backoff < min_backoff)
	max_backoff = min_backoff;
    if (!(age > min_backoff))
	delay = min_backoff;
    else if (age > max_backoff)
	delay = max_backoff;
    else
	delay = (long) age;
    return delay;
}

/* qmgr_expired - the message has been queued longer than its lifetime
 * (bounce_queue_lifetime for the null sender) */
bool qmgr_expired(double now, double arrival, bool null_sender, long lifetime,
		  long bounce_lifetime)
{
    long limit = null_sender && bounce_lifetime < lifetime ? bounce_lifetime : lifetime;

    return now - arrival >= (double) limit;
}

/* qmgr_delay_warning_due - a delay notice is due (0 = never) */
bool qmgr_delay_warning_due(double now, double arrival, long warning_time)
{
    return warning_time > 0 && now - arrival >= (double) warning_time;
}
