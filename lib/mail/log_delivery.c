/* log_delivery.c - one formatter for every delivery outcome and queue
 * event, so that the mail log has one shape (see log_delivery.h). */

#include <string.h>

/* base */
#include "msg.h"
#include "str.h"

/* mail */
#include "log_delivery.h"

#define LOG_DELIVERY_MAX	4000	/* msg truncates longer lines anyway */

/* log_delay_format - one duration: "0", "0.12", "3.4", "250" */
void log_delay_format(char *buf, size_t size, double seconds)
{
    char *dot;
    size_t len;

    if (!(seconds >= 0.005)) {		/* also NaN and negative clock steps */
	(void) str_copy_out(buf, size, "0");
	return;
    }
    if (seconds >= 100) {
	(void) fmt_buf(buf, size, "%.0f", seconds);
	return;
    }
    (void) fmt_buf(buf, size, "%.2f", seconds);
    /* drop trailing zeros and a bare point: "3.40" -> "3.4", "2.00" -> "2" */
    if ((dot = strchr(buf, '.')) != NULL) {
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == '0')
	    buf[--len] = 0;
	if (len > 0 && buf[len - 1] == '.')
	    buf[--len] = 0;
    }
}

/* stage - the length of a stage from start to end; 0 if either is unset */
static double stage(double start, double end)
{
    if (start <= 0 || end <= 0 || end < start)
	return 0;
    return end - start;
}

/* log_delivery_format - the text after "ID: " */
void log_delivery_format(struct str *out, const struct delivery_outcome *o,
			 const struct delivery_times *t)
{
    char total[32], a[32], b[32], c[32], d[32];
    double active, handed, sent;

    /* A stage that did not happen takes no time: the next one starts
     * where the last one that did happen ended. */
    active = t->active > 0 ? t->active : t->arrival;
    handed = t->conn_start > 0 ? t->conn_start : (t->xmit_start > 0 ? t->xmit_start : t->finish);
    sent = t->xmit_start > 0 ? t->xmit_start : t->finish;
    log_delay_format(total, sizeof(total), stage(t->arrival, t->finish));
    log_delay_format(a, sizeof(a), stage(t->arrival, active));
    log_delay_format(b, sizeof(b), stage(active, handed));
    log_delay_format(c, sizeof(c), t->conn_start > 0 ? stage(t->conn_start, sent) : 0);
    log_delay_format(d, sizeof(d), stage(sent, t->finish));

    str_reset(out);
    (void) str_appendf(out, "to=<%s>", o->to ? o->to : "");
    if (o->orig_to && *o->orig_to && (o->to == NULL || strcmp(o->orig_to, o->to) != 0))
	(void) str_appendf(out, ", orig_to=<%s>", o->orig_to);
    (void) str_appendf(out, ", relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
		       o->relay && *o->relay ? o->relay : "none", total, a, b, c, d,
		       o->dsn && *o->dsn ? o->dsn : "4.0.0", o->status,
		       o->reason ? o->reason : "");
}

/* log_delivery - log one recipient's outcome */
void log_delivery(const char *queue_id, const struct delivery_outcome *o,
		  const struct delivery_times *t)
{
    struct str text;

    str_init(&text, LOG_DELIVERY_MAX);
    log_delivery_format(&text, o, t);
    msg_info("%s: %s", queue_id, str_cstr(&text));
    str_fini(&text);
}

/* log_queue_active - a message entered active/ */
void log_queue_active(const char *queue_id, const char *sender, long size, long nrcpt)
{
    msg_info("%s: from=<%s>, size=%ld, nrcpt=%ld (queue active)", queue_id, sender, size, nrcpt);
}

/* log_queue_removed - a message left the queue */
void log_queue_removed(const char *queue_id)
{
    msg_info("%s: removed", queue_id);
}

/* log_queue_expired - a message passed its queue lifetime */
void log_queue_expired(const char *queue_id, const char *sender)
{
    msg_info("%s: from=<%s>, status=expired, returned to sender", queue_id, sender);
}
