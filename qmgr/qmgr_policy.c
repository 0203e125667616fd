/* qmgr_policy.c - the queue manager's pure decisions: trigger parsing,
 * NOTIFY flags,
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

/* qmgr_trigger_parse - the requests in one read of public/qmgr */
unsigned qmgr_trigger_parse(const char *buf, size_t len,
			    void (*take)(int kind, const char *id, void *ctx), void *ctx)
{
    unsigned want = 0;
    size_t i = 0;

    if (len == 0)
	return QMGR_WANT_SCAN;
    while (i < len) {
	char c = buf[i];

	if ((c == QMGR_TRIGGER_SCAN[0] || c == QMGR_TRIGGER_GONE[0]) && i + 1 < len
	    && buf[i + 1] != '\n' && buf[i + 1] != QMGR_TRIGGER_SCAN[0]
	    && buf[i + 1] != QMGR_TRIGGER_FLUSH[0] && buf[i + 1] != QMGR_TRIGGER_GONE[0]) {
	    /* "I<ID>\n"; at the very end of a socket request the newline
	     * may be missing. Anything that is no queue ID asks for a scan
	     * (which finds whatever the request meant). */
	    const char *start = buf + i + 1;
	    const char *nl = memchr(start, '\n', len - i - 1);
	    size_t idlen = nl ? (size_t) (nl - start) : len - i - 1;
	    char id[QUEUE_ID_SIZE];

	    if (idlen < sizeof(id) && memchr(start, 0, idlen) == NULL) {
		memcpy(id, start, idlen);
		id[idlen] = 0;
		if (queue_id_valid(id))
		    take(c, id, ctx);
		else if (c == QMGR_TRIGGER_SCAN[0])
		    want |= QMGR_WANT_SCAN;
	    } else if (c == QMGR_TRIGGER_SCAN[0]) {
		want |= QMGR_WANT_SCAN;
	    }
	    i += 1 + idlen + (nl ? 1 : 0);
	    continue;
	}
	if (c == QMGR_TRIGGER_FLUSH[0])
	    want |= QMGR_WANT_SCAN | QMGR_WANT_FLUSH;
	else if (c != '\n')
	    want |= QMGR_WANT_SCAN;	/* "I", master's "W", or noise */
	i++;
    }
    return want;
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
