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
	str_copy_out_or_panic(buf, size, "0");
	return;
    }
    if (seconds < 100 && size >= 8) {
	/* the common case without printf: whole hundredths, unless the
	 * value is so near a rounding tie that only "%.2f" knows */
	double cents = seconds * 100;
	long c = (long) cents;
	double frac = cents - (double) c;

	if (frac > 0.5 + 1e-6)
	    c++;
	if ((frac < 0.5 - 1e-6 || frac > 0.5 + 1e-6) && c < 10000) {
	    char *p = buf;

	    if (c >= 1000)
		*p++ = (char) ('0' + c / 1000);
	    *p++ = (char) ('0' + c / 100 % 10);
	    if (c % 100) {
		*p++ = '.';
		*p++ = (char) ('0' + c / 10 % 10);
		if (c % 10)
		    *p++ = (char) ('0' + c % 10);
	    }
	    *p = 0;
	    return;
	}
    }
    if (seconds >= 100) {
	fmt_buf_cut(buf, size, "%.0f", seconds);
	return;
    }
    fmt_buf_or_panic(buf, size, "%.2f", seconds);
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

/* put - append text, as much as fits: a long line is cut, not lost */
static void put(struct str *out, const char *text)
{
    size_t len = strlen(text), room = out->max - str_len(out);

    str_append_or_panic(out, text, len < room ? len : room);
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

    /* "to=<T>[, orig_to=<O>], relay=R[, conn_use=N][, tls=T], delay=D,
     * delays=a/b/c/d, dsn=N, status=S (REASON)", built by appends (one
     * small printf for a reused session only) */
    str_reset(out);
    put(out, "to=<");
    put(out, o->to ? o->to : "");
    put(out, ">");
    if (o->orig_to && *o->orig_to && (o->to == NULL || strcmp(o->orig_to, o->to) != 0)) {
	put(out, ", orig_to=<");
	put(out, o->orig_to);
	put(out, ">");
    }
    put(out, ", relay=");
    put(out, o->relay && *o->relay ? o->relay : "none");
    if (o->conn_use > 1) {
	char n[32];

	fmt_buf_or_panic(n, sizeof(n), ", conn_use=%ld", o->conn_use);
	put(out, n);
    }
    if (o->tls && *o->tls) {
	put(out, ", tls=");
	put(out, o->tls);
    }
    put(out, ", delay=");
    put(out, total);
    put(out, ", delays=");
    put(out, a);
    put(out, "/");
    put(out, b);
    put(out, "/");
    put(out, c);
    put(out, "/");
    put(out, d);
    put(out, ", dsn=");
    put(out, o->dsn && *o->dsn ? o->dsn : "4.0.0");
    put(out, ", status=");
    put(out, o->status);
    put(out, " (");
    put(out, o->reason ? o->reason : "");
    put(out, ")");
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
