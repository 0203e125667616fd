/* test-mail_date.c - unit tests for mail_date.c: RFC 5322 dates at
 * fixed and local offsets (TZ set by the test: negative, positive,
 * half- and quarter-hour zones) and the mbox From_ date. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail_date.h"
#include "unit.h"

/* set_zone - the local zone for what follows (POSIX TZ: no tzdata) */
static void set_zone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* test_fixed_offsets - the date at a given offset, leap day, year end */
static void test_fixed_offsets(void)
{
    static const struct {
	long t, off;
	const char *want;
    } cases[] = {
	{0, 0, "Thu, 1 Jan 1970 00:00:00 +0000"},
	{1700000000, 0, "Tue, 14 Nov 2023 22:13:20 +0000"},
	{1700000000, 3600, "Tue, 14 Nov 2023 23:13:20 +0100"},
	{1700000000, -5 * 3600 - 1800, "Tue, 14 Nov 2023 16:43:20 -0530"},
	{1709164800, 0, "Thu, 29 Feb 2024 00:00:00 +0000"},
	{1704067199, 0, "Sun, 31 Dec 2023 23:59:59 +0000"},
	{1704067199, 20700, "Mon, 1 Jan 2024 05:44:59 +0545"},
	{1704067199, -12 * 3600, "Sun, 31 Dec 2023 11:59:59 -1200"},
    };
    char buf[MAIL_DATE_SIZE];

    unit_begin("mail_date_format: fixed offsets, leap day, year end");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	unit_assert_idx(mail_date_format(buf, sizeof(buf), (time_t) cases[i].t, cases[i].off), i);
	unit_assert_streq_idx(buf, cases[i].want, i);
    }
    unit_end();
}

/* test_local_zones - the local offset, from TZ, in the text */
static void test_local_zones(void)
{
    static const struct {
	const char *tz;
	long offset;
	const char *want;
    } cases[] = {
	{"UTC0", 0, "Tue, 14 Nov 2023 22:13:20 +0000"},
	{"EST5", -5 * 3600, "Tue, 14 Nov 2023 17:13:20 -0500"},
	{"CET-1", 3600, "Tue, 14 Nov 2023 23:13:20 +0100"},
	{"IST-5:30", 5 * 3600 + 1800, "Wed, 15 Nov 2023 03:43:20 +0530"},
	{"NST3:30", -3 * 3600 - 1800, "Tue, 14 Nov 2023 18:43:20 -0330"},
	{"NPT-5:45", 5 * 3600 + 2700, "Wed, 15 Nov 2023 03:58:20 +0545"},
    };
    char buf[MAIL_DATE_SIZE];

    unit_begin("mail_date_local: negative, positive, half- and quarter-hour zones");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	set_zone(cases[i].tz);
	unit_assert_inteq(mail_date_local_offset(1700000000), cases[i].offset);
	unit_assert_idx(mail_date_local(buf, sizeof(buf), 1700000000), i);
	unit_assert_streq_idx(buf, cases[i].want, i);
    }
    set_zone("UTC0");
    unit_end();
}

/* test_agrees_with_strftime - a spread of times, as strftime says */
static void test_agrees_with_strftime(void)
{
    static const char *const zones[] = {"UTC0", "EST5EDT,M3.2.0,M11.1.0", "IST-5:30", "NST3:30"};
    char got[MAIL_DATE_SIZE], want[64];
    long mismatches = 0;

    unit_begin("mail_date_local and mail_date_mbox agree with strftime");
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
	set_zone(zones[z]);
	for (time_t t = 0; t < (time_t) 4102444800; t += 86400 * 37 + 3671) {
	    struct tm tm;

	    localtime_r(&t, &tm);
	    strftime(want, sizeof(want), "%a, %-d %b %Y %H:%M:%S %z", &tm);
	    if (!mail_date_local(got, sizeof(got), t) || strcmp(got, want) != 0)
		mismatches++;
	    strftime(want, sizeof(want), "%a %b %e %H:%M:%S %Y", &tm);
	    if (!mail_date_mbox(got, sizeof(got), t) || strcmp(got, want) != 0)
		mismatches++;
	}
    }
    unit_assert_inteq(mismatches, 0);
    set_zone("UTC0");
    unit_end();
}

/* test_mbox_dates - the From_ line's date */
static void test_mbox_dates(void)
{
    char buf[MAIL_DATE_SIZE];

    unit_begin("mail_date_mbox: asctime shape, day padded with a space");
    set_zone("UTC0");
    unit_assert(mail_date_mbox(buf, sizeof(buf), 0));
    unit_assert_streq(buf, "Thu Jan  1 00:00:00 1970");
    unit_assert(mail_date_mbox(buf, sizeof(buf), 1700000000));
    unit_assert_streq(buf, "Tue Nov 14 22:13:20 2023");
    set_zone("IST-5:30");
    unit_assert(mail_date_mbox(buf, sizeof(buf), 1700000000));
    unit_assert_streq(buf, "Wed Nov 15 03:43:20 2023");
    set_zone("UTC0");
    unit_end();
}

/* test_small_buffer - false and "", never a cut date */
static void test_small_buffer(void)
{
    char buf[MAIL_DATE_SIZE];

    unit_begin("mail_date: a buffer too small gives false and an empty text");
    memcpy(buf, "junk", 5);
    unit_assert(!mail_date_format(buf, 10, 1700000000, 0));
    unit_assert_streq(buf, "");
    unit_assert(!mail_date_local(buf, 31, 1700000000));
    unit_assert(mail_date_local(buf, 32, 1700000000));
    unit_assert(!mail_date_mbox(buf, 24, 1700000000));
    unit_assert(mail_date_mbox(buf, 25, 1700000000));
    unit_end();
}

int main(void)
{
    test_fixed_offsets();
    test_local_zones();
    test_agrees_with_strftime();
    test_mbox_dates();
    test_small_buffer();
    return unit_done();
}
