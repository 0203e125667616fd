/* test-qmgr_policy.c - unit tests for qmgr's backoff, NOTIFY and
 * lifetime decisions and its trigger parsing. */

#include <string.h>

/* base */
#include "unit.h"

/* qmgr */
#include "qmgr.h"

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
	const char *want;		/* the ID, or NULL: not an ID trigger */
    } triggers[] = {
	{"I1xVWka3HNbk1or", 15, "1xVWka3HNbk1or"},
	{"I", 1, NULL},			/* plain scan */
	{"F", 1, NULL},
	{"W", 1, NULL},
	{"", 0, NULL},
	{"F1xVWka3HNbk1or", 15, NULL},	/* only I carries an ID */
	{"I1xVWka3HNbk1or\n", 16, NULL},	/* nothing after the ID */
	{"I1xVWka3HNbk1\0r", 15, NULL},	/* no NUL inside */
	{"Itmp.12.345.0", 13, NULL},	/* a temp name is no ID */
	{"I../active/1xVWka3HNbk1or", 25, NULL},
	{"I1xVWka3HNbk1orAAAAAAAAAAAAAAAAAAAAAAA", 38, NULL},	/* too long */
	{"II", 2, NULL},
    };

    unit_begin("qmgr_trigger_id");
    for (size_t i = 0; i < sizeof(triggers) / sizeof(triggers[0]); i++) {
	char id[QUEUE_ID_SIZE];
	bool got = qmgr_trigger_id(triggers[i].buf, triggers[i].len, id, sizeof(id));

	unit_assert_idx(got == (triggers[i].want != NULL), i);
	if (got && triggers[i].want)
	    unit_assert_idx(strcmp(id, triggers[i].want) == 0, i);
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
