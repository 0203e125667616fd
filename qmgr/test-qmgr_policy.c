/* test-qmgr_policy.c - unit tests for qmgr's backoff, NOTIFY and
 * lifetime decisions and its trigger parsing. */

#include <string.h>

/* base */
#include "str.h"
#include "unit.h"

/* qmgr */
#include "qmgr.h"

/* collect_id - the take callback: append "ID," ("-ID," for a "D") */
static void collect_id(int kind, const char *id, void *ctx)
{
    char *ids = ctx;
    size_t used = strlen(ids);

    fmt_buf_or_panic(ids + used, 256 - used, "%s%s,", kind == 'D' ? "-" : "", id);
}

int main(void)
{
    static const struct {
	const char *notify;
	unsigned want;
    } notifies[] = {
	{"", QMGR_NOTIFY_FAILURE | QMGR_NOTIFY_DELAY},
	{NULL, QMGR_NOTIFY_FAILURE | QMGR_NOTIFY_DELAY},
	{"never", QMGR_NOTIFY_NEVER},
	{"success", QMGR_NOTIFY_SUCCESS},
	{"failure", QMGR_NOTIFY_FAILURE},
	{"success,failure,delay", QMGR_NOTIFY_SUCCESS | QMGR_NOTIFY_FAILURE | QMGR_NOTIFY_DELAY},
	{"delay,success", QMGR_NOTIFY_SUCCESS | QMGR_NOTIFY_DELAY},
    };
    static const struct {
	double age;
	long min, max, want;
    } backoffs[] = {
	{0, 300, 4000, 300},		/* first deferral: the minimum */
	{-50, 300, 4000, 300},		/* clock stepped back */
	{299.9, 300, 4000, 300},
	{600, 300, 4000, 600},		/* then the age: waits double */
	{1200.5, 300, 4000, 1200},
	{2400, 300, 4000, 2400},
	{4800, 300, 4000, 4000},	/* capped */
	{86400 * 4.0, 300, 4000, 4000},
	{10, 1, 2, 2},
	{10, 5, 1, 5},			/* max below min: min wins */
    };
    static const struct {
	double age;
	bool null_sender;
	long lifetime, bounce_lifetime;
	bool want;
    } lifetimes[] = {
	{100, false, 432000, 432000, false},
	{432000, false, 432000, 432000, true},
	{432001, false, 432000, 86400, true},
	{90000, true, 432000, 86400, true},	/* bounces expire sooner */
	{90000, false, 432000, 86400, false},
	{0, false, 0, 0, true},			/* 0: one attempt only */
	{500, true, 432000, 0, true},
    };

    static const struct {
	const char *buf;
	size_t len;
	const char *want_ids;		/* taken IDs, each followed by ',' */
	unsigned want;
    } triggers[] = {
	{"I1xVWka3HNbk1or\n", 16, "1xVWka3HNbk1or,", 0},
	{"I1xVWka3HNbk1or", 15, "1xVWka3HNbk1or,", 0},	/* a socket's last one */
	{"I1xVWka3HNbk1or\nI1xVWka3HNbk1os\n", 32, "1xVWka3HNbk1or,1xVWka3HNbk1os,", 0},
	{"I", 1, "", QMGR_WANT_SCAN},
	{"F", 1, "", QMGR_WANT_SCAN | QMGR_WANT_FLUSH},
	{"W", 1, "", QMGR_WANT_SCAN},	/* master's wake-up */
	{"", 0, "", QMGR_WANT_SCAN},
	{"II1xVWka3HNbk1or\n", 17, "1xVWka3HNbk1or,", QMGR_WANT_SCAN},
	{"FI1xVWka3HNbk1or\n", 17, "1xVWka3HNbk1or,", QMGR_WANT_SCAN | QMGR_WANT_FLUSH},
	{"I1xVWka3HNbk1or\nF", 17, "1xVWka3HNbk1or,", QMGR_WANT_SCAN | QMGR_WANT_FLUSH},
	{"I1xVWka3HNbk1\0r\n", 16, "", QMGR_WANT_SCAN},	/* no NUL inside */
	{"Itmp.12.345.0\n", 14, "", QMGR_WANT_SCAN},	/* a temp name is no ID */
	{"I../active/1xVWka3HNbk1or\n", 26, "", QMGR_WANT_SCAN},
	{"I1xVWka3HNbk1orAAAAAAAAAAAAAAAAAAAAAAA\n", 39, "", QMGR_WANT_SCAN},
	{"I1xVWka3H", 9, "", QMGR_WANT_SCAN},	/* cut by a full read */
	{"\n\n", 2, "", 0},
	/* "D<ID>": the operator deleted active/ID */
	{"D1xVWka3HNbk1or\n", 16, "-1xVWka3HNbk1or,", 0},
	{"D1xVWka3HNbk1or\nI1xVWka3HNbk1os\n", 32, "-1xVWka3HNbk1or,1xVWka3HNbk1os,", 0},
	{"D../active/1xVWka3HNbk1or\n", 26, "", 0},	/* no ID: ignored */
	{"D", 1, "", QMGR_WANT_SCAN},
    };

    unit_begin("qmgr_trigger_parse");
    for (size_t i = 0; i < sizeof(triggers) / sizeof(triggers[0]); i++) {
	char ids[256] = "";
	unsigned got = qmgr_trigger_parse(triggers[i].buf, triggers[i].len, collect_id, ids);

	unit_assert_idx(got == triggers[i].want, i);
	unit_assert_idx(strcmp(ids, triggers[i].want_ids) == 0, i);
    }
    unit_end();

    unit_begin("qmgr_notify_flags");
    for (size_t i = 0; i < sizeof(notifies) / sizeof(notifies[0]); i++)
	unit_assert_idx(qmgr_notify_flags(notifies[i].notify) == notifies[i].want, i);
    unit_end();

    unit_begin("qmgr_backoff");
    for (size_t i = 0; i < sizeof(backoffs) / sizeof(backoffs[0]); i++)
	unit_assert_idx(qmgr_backoff(1e9 + backoffs[i].age, 1e9, backoffs[i].min,
				     backoffs[i].max) == backoffs[i].want, i);
    unit_end();

    unit_begin("qmgr_expired");
    for (size_t i = 0; i < sizeof(lifetimes) / sizeof(lifetimes[0]); i++)
	unit_assert_idx(qmgr_expired(1e9 + lifetimes[i].age, 1e9, lifetimes[i].null_sender,
				     lifetimes[i].lifetime, lifetimes[i].bounce_lifetime)
			== lifetimes[i].want, i);
    unit_end();

    unit_begin("qmgr_delay_warning_due");
    unit_assert(!qmgr_delay_warning_due(1e9 + 1e6, 1e9, 0));
    unit_assert(!qmgr_delay_warning_due(1e9 + 3599, 1e9, 3600));
    unit_assert(qmgr_delay_warning_due(1e9 + 3600, 1e9, 3600));
    unit_end();

    return unit_done();
}
