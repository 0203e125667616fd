/* limits_table.h - the counters of the client-limits service: one entry
 * per (service, client address) with its concurrent connections and
 * its rates in the current time unit, the binding of connects to the
 * client connection that made them, expiry of idle entries, the bound
 * on the number of entries, the operator's listing and the periodic
 * statistics. No I/O except logging: main.c speaks the protocol.
 *
 * Time is passed in (now, seconds), so tests can move it.
 *
 * Entries: found in O(1) (htable.h). An entry whose count is 0 is
 * "idle" and sits in a list in the order of its last use; it is dropped
 * once client_limits_rate_time_unit passed since that use (its rate
 * window has ended by then), or earlier, oldest first, when a new key
 * needs room at max_entries. An entry with open connections is never
 * dropped; when every entry has open connections a new key is answered
 * as if new (figures 1 or 0) and not stored (lt_event's result says so).
 *
 * Connection binding: every connect is recorded against the struct
 * lt_conn of the client connection it came on; a disconnect only takes
 * back a connect of the same client connection, and lt_conn_free gives
 * back all that remain, so a crashed client never leaks counts. */
#ifndef POSTHORN_LIMITS_TABLE_H
#define POSTHORN_LIMITS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "limits_proto.h"

enum lt_event {
    LT_CONNECT,
    LT_DISCONNECT,
    LT_MESSAGE,
    LT_RECIPIENT,
    LT_NEWTLS,
    LT_AUTHFAIL,
    LT_LOOKUP,
};

enum lt_result {
    LT_STORED,			/* counted in the table */
    LT_NOT_STORED,		/* table full of busy entries: as if new */
};

struct lt_conn;

/* lt_init - (re)start with an empty table */
void lt_init(long rate_time_unit, long max_entries);
/* lt_conn_new / lt_conn_free - a client connection; free releases the
 * connects it still holds */
struct lt_conn *lt_conn_new(void);
void lt_conn_free(struct lt_conn **cp, time_t now);
/* lt_event - count ev for (service, address) on connection c; the
 * figures after it in *out */
enum lt_result lt_event(struct lt_conn *c, enum lt_event ev, const char *service,
			const char *address, time_t now, struct limits_counts *out);
/* lt_expire - drop idle entries whose time is up */
void lt_expire(time_t now);
/* lt_entries - entries stored */
size_t lt_entries(void);

/* One row of the listing. */
struct lt_row {
    char service[LIMITS_SERVICE_MAX + 1];
    char address[LIMITS_ADDRESS_MAX + 1];
    struct limits_counts counts;
};
/* lt_list - at most max rows by descending count, then conn_rate; the
 * array is valid until the next lt_* call */
size_t lt_list(time_t now, size_t max, const struct lt_row **rows_r);

/* lt_stats_log - log the largest figures since the last report (as
 * anvil's "statistics: max ..." lines) and start over */
void lt_stats_log(time_t now);

#endif
