/* mail_date.c - RFC 5322 and mbox dates (see mail_date.h): the one
 * formatter behind smtpd's Received:, bounce's DSN dates and (to come)
 * cleanup's Date: and local delivery's From_ line. */

#include <string.h>
#include <time.h>

/* base */
#include "str.h"

/* mail */
#include "mail_date.h"

static const char mail_date_days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char mail_date_months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* put_digits - v (>= 0) in decimal, at least width digits, pad in front */
static size_t put_digits(char *out, long v, size_t width, char pad)
{
    char digits[FMT_LONG_SIZE];
    size_t n = fmt_long(digits, v), len = 0;

    while (n + len < width)
	out[len++] = pad;
    memcpy(out + len, digits, n);
    return len + n;
}

/* put_text - three-letter names and separators */
static size_t put_text(char *out, const char *text)
{
    size_t len = strlen(text);

    memcpy(out, text, len);
    return len;
}

/* put_time - "hh:mm:ss" */
static size_t put_time(char *out, const struct tm *tm)
{
    size_t len = put_digits(out, tm->tm_hour, 2, '0');

    out[len++] = ':';
    len += put_digits(out + len, tm->tm_min, 2, '0');
    out[len++] = ':';
    len += put_digits(out + len, tm->tm_sec, 2, '0');
    return len;
}

/* tm_sane - the fields that index the name tables are in range */
static bool tm_sane(const struct tm *tm)
{
    return tm->tm_wday >= 0 && tm->tm_wday <= 6 && tm->tm_mon >= 0 && tm->tm_mon <= 11
	&& tm->tm_year >= -1900 && tm->tm_year <= 9999 - 1900;
}

/* copy_result - the text into buf if it fits; else "" and false */
static bool copy_result(char *buf, size_t size, const char *text, size_t len)
{
    if (len >= size) {
	if (size > 0)
	    buf[0] = 0;
	return false;
    }
    memcpy(buf, text, len);
    buf[len] = 0;
    return true;
}

/* rfc5322_text - "Www, d Mmm yyyy hh:mm:ss +hhmm" of tm at gmtoff */
static size_t rfc5322_text(char *out, const struct tm *tm, long gmtoff)
{
    long off = gmtoff < 0 ? -gmtoff : gmtoff;
    size_t len = put_text(out, mail_date_days[tm->tm_wday]);

    len += put_text(out + len, ", ");
    len += put_digits(out + len, tm->tm_mday, 1, '0');
    out[len++] = ' ';
    len += put_text(out + len, mail_date_months[tm->tm_mon]);
    out[len++] = ' ';
    len += put_digits(out + len, (long) tm->tm_year + 1900, 4, '0');
    out[len++] = ' ';
    len += put_time(out + len, tm);
    out[len++] = ' ';
    out[len++] = gmtoff < 0 ? '-' : '+';
    len += put_digits(out + len, (off / 3600) % 100, 2, '0');
    len += put_digits(out + len, (off / 60) % 60, 2, '0');
    return len;
}

/* mail_date_format - see mail_date.h */
bool mail_date_format(char *buf, size_t size, time_t t, long gmtoff)
{
    static const char epoch[] = "Thu, 1 Jan 1970 00:00:00 +0000";
    char text[MAIL_DATE_SIZE];
    time_t shifted = t + (time_t) gmtoff;
    struct tm tm;

    if (gmtime_r(&shifted, &tm) == NULL || !tm_sane(&tm)) {
	(void) copy_result(buf, size, epoch, sizeof(epoch) - 1);
	return false;
    }
    return copy_result(buf, size, text, rfc5322_text(text, &tm, gmtoff));
}

/* mail_date_local_offset - see mail_date.h */
long mail_date_local_offset(time_t t)
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL)
	return 0;
    return (long) tm.tm_gmtoff;
}

/* mail_date_local - see mail_date.h (one localtime_r, not two) */
bool mail_date_local(char *buf, size_t size, time_t t)
{
    char text[MAIL_DATE_SIZE];
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || !tm_sane(&tm))
	return mail_date_format(buf, size, t, 0);
    return copy_result(buf, size, text, rfc5322_text(text, &tm, (long) tm.tm_gmtoff));
}

/* mail_date_mbox - see mail_date.h */
bool mail_date_mbox(char *buf, size_t size, time_t t)
{
    static const char epoch[] = "Thu Jan  1 00:00:00 1970";
    char text[MAIL_DATE_SIZE];
    struct tm tm;
    size_t len;

    if (localtime_r(&t, &tm) == NULL || !tm_sane(&tm)) {
	(void) copy_result(buf, size, epoch, sizeof(epoch) - 1);
	return false;
    }
    len = put_text(text, mail_date_days[tm.tm_wday]);
    text[len++] = ' ';
    len += put_text(text + len, mail_date_months[tm.tm_mon]);
    text[len++] = ' ';
    len += put_digits(text + len, tm.tm_mday, 2, ' ');
    text[len++] = ' ';
    len += put_time(text + len, &tm);
    text[len++] = ' ';
    len += put_digits(text + len, (long) tm.tm_year + 1900, 4, '0');
    return copy_result(buf, size, text, len);
}
