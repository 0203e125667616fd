/* limits_table.c - the client-limits counters (limits_table.h): entries
 * in a hash table, an idle list in order of last use for expiry and
 * eviction, connects bound to client connections, listing and
 * statistics. */

/* system */
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* base */
#include "htable.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "limits_proto.h"

/* this program */
#include "limits_table.h"

enum { R_CONN, R_MSG, R_RCPT, R_TLS, R_AUTH, R_COUNT };

struct lt_bind;

struct lt_entry {
    const char *key;		/* "service address" (the table's copy) */
    size_t svc_len;
    long count;
    long rate[R_COUNT];
    time_t window_start;	/* 0: no window open */
    time_t last;		/* last use */
    bool idle;			/* in the idle list (count == 0) */
    struct lt_entry *iprev, *inext;
    struct lt_bind *binds;	/* connections holding connects */
};

/* A client connection's connects of one entry. */
struct lt_bind {
    struct lt_entry *e;
    struct lt_conn *c;
    long n;
    struct lt_bind *eprev, *enext;	/* in the entry's list */
    struct lt_bind *cprev, *cnext;	/* in the connection's list */
};

struct lt_conn {
    struct lt_bind *binds;
};

#define LT_KEY_MAX	(LIMITS_SERVICE_MAX + 1 + LIMITS_ADDRESS_MAX + 1)

/* The largest figure of one kind since the last report. */
struct lt_max {
    long value;
    char key[LT_KEY_MAX];	/* "service:address" */
    time_t when;
};

static struct htable *lt_table;
static struct lt_entry *lt_idle_head, *lt_idle_tail;
static long lt_unit = 60;
static long lt_max_entries = 100000;
static struct lt_max lt_max_count, lt_max_rate[R_COUNT], lt_max_size;
static struct lt_row *lt_rows;
static time_t lt_warned_full, lt_warned_evict;

#define LT_WARN_INTERVAL	60

/* idle list */

/* lt_idle_unlink - take e out of the idle list */
static void lt_idle_unlink(struct lt_entry *e)
{
    if (!e->idle)
	return;
    if (e->iprev)
	e->iprev->inext = e->inext;
    else
	lt_idle_head = e->inext;
    if (e->inext)
	e->inext->iprev = e->iprev;
    else
	lt_idle_tail = e->iprev;
    e->iprev = e->inext = NULL;
    e->idle = false;
}

/* lt_idle_append - e (count 0) is the most recently used idle entry */
static void lt_idle_append(struct lt_entry *e)
{
    e->iprev = lt_idle_tail;
    e->inext = NULL;
    if (lt_idle_tail)
	lt_idle_tail->inext = e;
    else
	lt_idle_head = e;
    lt_idle_tail = e;
    e->idle = true;
}

/* lt_touch - e was used now: its place in the idle list follows */
static void lt_touch(struct lt_entry *e, time_t now)
{
    e->last = now;
    lt_idle_unlink(e);
    if (e->count == 0)
	lt_idle_append(e);
}

/* lt_drop - forget an idle entry */
static void lt_drop(struct lt_entry *e)
{
    if (e->count != 0 || e->binds)
	msg_panic("lt_drop: entry %s has connections", e->key);
    lt_idle_unlink(e);
    if (htable_remove(lt_table, e->key) != e)
	msg_panic("lt_drop: entry %s not in the table", e->key);
    mem_free(&e);
}

/* lt_free_entry - htable_free's callback at lt_init */
static void lt_free_entry(void *value)
{
    mem_free(&value);
}

/* lt_init - an empty table */
void lt_init(long rate_time_unit, long max_entries)
{
    htable_free(&lt_table, lt_free_entry);
    lt_table = htable_new(0);
    lt_idle_head = lt_idle_tail = NULL;
    lt_unit = rate_time_unit > 0 ? rate_time_unit : 1;
    lt_max_entries = max_entries > 0 ? max_entries : 1;
    memset(&lt_max_count, 0, sizeof(lt_max_count));
    memset(lt_max_rate, 0, sizeof(lt_max_rate));
    memset(&lt_max_size, 0, sizeof(lt_max_size));
    mem_free(&lt_rows);
    lt_warned_full = lt_warned_evict = 0;
}

/* lt_conn_new - a client connection without connects */
struct lt_conn *lt_conn_new(void)
{
    return mem_zalloc(sizeof(struct lt_conn));
}

/* lt_bind_free - unlink a binding from both lists and free it */
static void lt_bind_free(struct lt_bind *b)
{
    if (b->eprev)
	b->eprev->enext = b->enext;
    else
	b->e->binds = b->enext;
    if (b->enext)
	b->enext->eprev = b->eprev;
    if (b->cprev)
	b->cprev->cnext = b->cnext;
    else
	b->c->binds = b->cnext;
    if (b->cnext)
	b->cnext->cprev = b->cprev;
    mem_free(&b);
}

/* lt_conn_free - release the connection's connects */
void lt_conn_free(struct lt_conn **cp, time_t now)
{
    struct lt_conn *c = *cp;

    if (c == NULL)
	return;
    while (c->binds) {
	struct lt_bind *b = c->binds;
	struct lt_entry *e = b->e;

	e->count -= b->n;
	if (e->count < 0)
	    msg_panic("lt_conn_free: %s: count below 0", e->key);
	if (msg_verbose)
	    msg_info("released %ld connection%s of %s: count %ld", b->n, b->n == 1 ? "" : "s",
		     e->key, e->count);
	lt_bind_free(b);
	lt_touch(e, now);
    }
    mem_free(cp);
}

/* lt_window - close e's rate window if its time unit is over */
static void lt_window(struct lt_entry *e, time_t now)
{
    if (e->window_start != 0 && now - e->window_start >= lt_unit) {
	memset(e->rate, 0, sizeof(e->rate));
	e->window_start = 0;
    }
}

/* lt_note_max - remember a figure if it is the largest so far */
static void lt_note_max(struct lt_max *m, long value, const char *service, size_t svc_len,
			const char *address, time_t now)
{
    if (value > m->value) {
	m->value = value;
	fmt_buf_cut(m->key, sizeof(m->key), "%.*s:%s", (int) svc_len, service, address);
	m->when = now;
    }
}

/* lt_make_room - at max_entries: drop the oldest idle entry; false if
 * every entry has open connections */
static bool lt_make_room(time_t now)
{
    if (htable_count(lt_table) < (size_t) lt_max_entries)
	return true;
    if (lt_idle_head == NULL)
	return false;
    if (now - lt_warned_evict >= LT_WARN_INTERVAL) {
	lt_warned_evict = now;
	msg_warn("client-limits: %zu entries (client_limits_max_entries = %ld): forgetting idle clients before their time unit ended",
		 htable_count(lt_table), lt_max_entries);
    }
    lt_drop(lt_idle_head);
    return true;
}

/* lt_counts - e's figures */
static void lt_counts(const struct lt_entry *e, struct limits_counts *out)
{
    out->count = e->count;
    out->conn_rate = e->rate[R_CONN];
    out->message_rate = e->rate[R_MSG];
    out->recipient_rate = e->rate[R_RCPT];
    out->tls_rate = e->rate[R_TLS];
    out->auth_rate = e->rate[R_AUTH];
}

/* lt_as_new - the figures of a key that is not stored, after ev */
static void lt_as_new(enum lt_event ev, struct limits_counts *out)
{
    memset(out, 0, sizeof(*out));
    switch (ev) {
    case LT_CONNECT:
	out->count = out->conn_rate = 1;
	break;
    case LT_MESSAGE:
	out->message_rate = 1;
	break;
    case LT_RECIPIENT:
	out->recipient_rate = 1;
	break;
    case LT_NEWTLS:
	out->tls_rate = 1;
	break;
    case LT_AUTHFAIL:
	out->auth_rate = 1;
	break;
    case LT_DISCONNECT:
    case LT_LOOKUP:
	break;
    }
}

/* lt_event - count one event */
enum lt_result lt_event(struct lt_conn *c, enum lt_event ev, const char *service,
			const char *address, time_t now, struct limits_counts *out)
{
    char key[LT_KEY_MAX];
    size_t svc_len = strlen(service);
    struct lt_entry *e;
    int r = -1;

    if (svc_len > LIMITS_SERVICE_MAX || strlen(address) > LIMITS_ADDRESS_MAX)
	msg_panic("lt_event: key too long");
    fmt_buf_or_panic(key, sizeof(key), "%s %s", service, address);
    e = htable_find(lt_table, key);
    if (e == NULL) {
	if (ev == LT_DISCONNECT || ev == LT_LOOKUP) {
	    lt_as_new(ev, out);
	    return LT_STORED;		/* nothing to store */
	}
	if (!lt_make_room(now)) {
	    if (now - lt_warned_full >= LT_WARN_INTERVAL) {
		lt_warned_full = now;
		msg_warn("client-limits: all %zu entries have open connections (client_limits_max_entries = %ld): not counting service %s client %s and others",
			 htable_count(lt_table), lt_max_entries, service, address);
	    }
	    lt_as_new(ev, out);
	    return LT_NOT_STORED;
	}
	e = mem_zalloc(sizeof(*e));
	e->svc_len = svc_len;
	e->key = htable_enter(lt_table, key, e);
	lt_note_max(&lt_max_size, (long) htable_count(lt_table), "", 0, "", now);
    }
    lt_window(e, now);
    switch (ev) {
    case LT_CONNECT:{
	    struct lt_bind *b;

	    for (b = e->binds; b && b->c != c; b = b->enext)
		 /* the connection's binding */ ;
	    if (b == NULL) {
		b = mem_zalloc(sizeof(*b));
		b->e = e;
		b->c = c;
		b->enext = e->binds;
		if (e->binds)
		    e->binds->eprev = b;
		e->binds = b;
		b->cnext = c->binds;
		if (c->binds)
		    c->binds->cprev = b;
		c->binds = b;
	    }
	    b->n++;
	    e->count++;
	    r = R_CONN;
	    break;
	}
    case LT_DISCONNECT:{
	    struct lt_bind *b;

	    for (b = e->binds; b && b->c != c; b = b->enext)
		 /* the connection's binding */ ;
	    /* a connect of another (or an earlier) connection is not
	     * this one's to take back */
	    if (b != NULL) {
		e->count--;
		if (--b->n == 0)
		    lt_bind_free(b);
	    } else if (msg_verbose) {
		msg_info("disconnect of %s without a connect on this connection", key);
	    }
	    break;
	}
    case LT_MESSAGE:
	r = R_MSG;
	break;
    case LT_RECIPIENT:
	r = R_RCPT;
	break;
    case LT_NEWTLS:
	r = R_TLS;
	break;
    case LT_AUTHFAIL:
	r = R_AUTH;
	break;
    case LT_LOOKUP:
	break;
    }
    if (r >= 0) {
	if (e->window_start == 0)
	    e->window_start = now;
	e->rate[r]++;
	lt_note_max(&lt_max_rate[r], e->rate[r], service, svc_len, address, now);
    }
    if (ev == LT_CONNECT)
	lt_note_max(&lt_max_count, e->count, service, svc_len, address, now);
    lt_touch(e, now);
    lt_counts(e, out);
    return LT_STORED;
}

/* lt_expire - drop idle entries unused for a time unit (their window
 * ended too: it started at or before their last use) */
void lt_expire(time_t now)
{
    while (lt_idle_head && now - lt_idle_head->last >= lt_unit) {
	if (msg_verbose > 1)
	    msg_info("expired %s", lt_idle_head->key);
	lt_drop(lt_idle_head);
    }
}

/* lt_entries - entries stored */
size_t lt_entries(void)
{
    return htable_count(lt_table);
}

struct lt_collect {
    struct lt_entry **v;
    size_t n;
};

/* lt_collect_cb - htable_walk: gather the entries */
static void lt_collect_cb(const char *key, void *value, void *ctx)
{
    struct lt_collect *col = ctx;

    (void) key;
    col->v[col->n++] = value;
}

/* lt_row_cmp - descending count, then conn_rate, then key */
static int lt_row_cmp(const void *a, const void *b)
{
    const struct lt_entry *x = *(struct lt_entry *const *) a;
    const struct lt_entry *y = *(struct lt_entry *const *) b;

    if (x->count != y->count)
	return x->count > y->count ? -1 : 1;
    if (x->rate[R_CONN] != y->rate[R_CONN])
	return x->rate[R_CONN] > y->rate[R_CONN] ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* lt_list - the listing */
size_t lt_list(time_t now, size_t max, const struct lt_row **rows_r)
{
    size_t n = htable_count(lt_table);
    struct lt_collect col = { mem_alloc_array(n ? n : 1, sizeof(struct lt_entry *)), 0 };

    htable_walk(lt_table, lt_collect_cb, &col);
    for (size_t i = 0; i < col.n; i++)
	lt_window(col.v[i], now);
    qsort(col.v, col.n, sizeof(*col.v), lt_row_cmp);
    if (n > max)
	n = max;
    mem_free(&lt_rows);
    lt_rows = mem_alloc_array(n ? n : 1, sizeof(*lt_rows));
    for (size_t i = 0; i < n; i++) {
	struct lt_entry *e = col.v[i];

	fmt_buf_or_panic(lt_rows[i].service, sizeof(lt_rows[i].service), "%.*s",
			 (int) e->svc_len, e->key);
	str_copy_out_or_panic(lt_rows[i].address, sizeof(lt_rows[i].address),
			      e->key + e->svc_len + 1);
	lt_counts(e, &lt_rows[i].counts);
    }
    mem_free(&col.v);
    *rows_r = lt_rows;
    return n;
}

/* lt_when - a report's time stamp: t and now are on the table's clock
 * (monotonic seconds), so the wall-clock time is now's minus the age */
static const char *lt_when(time_t t, time_t now, char *buf, size_t size)
{
    struct tm tm;

    t = time(NULL) - (now > t ? now - t : 0);
    if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%b %e %H:%M:%S", &tm) == 0)
	fmt_buf_or_panic(buf, size, "%ld", (long) t);
    return buf;
}

/* lt_stats_log - the anvil-style report */
void lt_stats_log(time_t now)
{
    static const char *const names[R_COUNT] = {
	"connection", "message", "recipient", "newtls", "auth",
    };
    char when[64];

    for (int r = 0; r < R_COUNT; r++)
	if (lt_max_rate[r].value > 0)
	    msg_info("statistics: max %s rate %ld/%lds for (%s) at %s", names[r],
		     lt_max_rate[r].value, lt_unit, lt_max_rate[r].key,
		     lt_when(lt_max_rate[r].when, now, when, sizeof(when)));
    if (lt_max_count.value > 0)
	msg_info("statistics: max connection count %ld for (%s) at %s", lt_max_count.value,
		 lt_max_count.key, lt_when(lt_max_count.when, now, when, sizeof(when)));
    if (lt_max_size.value > 0)
	msg_info("statistics: max cache size %ld at %s", lt_max_size.value,
		 lt_when(lt_max_size.when, now, when, sizeof(when)));
    memset(&lt_max_count, 0, sizeof(lt_max_count));
    memset(lt_max_rate, 0, sizeof(lt_max_rate));
    memset(&lt_max_size, 0, sizeof(lt_max_size));
}
