/* mail_date.h - the dates of mail headers, in one place.
 *
 *   mail_date_format(buf, size, t, gmtoff)  "Tue, 14 Nov 2023 22:13:20 +0000"
 *                                           (RFC 5322 date-time) at a
 *                                           fixed offset, seconds east of UTC
 *   mail_date_local(buf, size, t)           the same at the local zone's
 *                                           offset at t (Date:, Received:)
 *   mail_date_local_offset(t)               that offset
 *   mail_date_mbox(buf, size, t)            "Tue Nov 14 22:13:20 2023", the
 *                                           date of an mbox "From " line, in
 *                                           local time (asctime's shape: the
 *                                           day is space-padded to 2)
 *
 * The day of the month has no leading zero, the year has four digits,
 * the offset is +hhmm/-hhmm (half and quarter hours included). Names of
 * days and months are English whatever the locale, and no printf is
 * involved (smtpd formats one per message). MAIL_DATE_SIZE bytes always
 * suffice.
 *
 * DIAGNOSTICS
 *   false if size is too small (buf then holds "" when size > 0) or the
 *   time cannot be broken down; in the latter case buf holds the epoch,
 *   "Thu, 1 Jan 1970 00:00:00 +0000" (or the mbox form of it), so a
 *   header is never left without a date. */
#ifndef POSTHORN_MAIL_DATE_H
#define POSTHORN_MAIL_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define MAIL_DATE_SIZE	40

/* mail_date_format - RFC 5322 date-time of t at gmtoff seconds east */
bool mail_date_format(char *buf, size_t size, time_t t, long gmtoff);
/* mail_date_local - RFC 5322 date-time of t in the local zone */
bool mail_date_local(char *buf, size_t size, time_t t);
/* mail_date_local_offset - the local zone's offset at t (0 if unknown) */
long mail_date_local_offset(time_t t);
/* mail_date_mbox - "Www Mmm dd hh:mm:ss yyyy" of t in local time */
bool mail_date_mbox(char *buf, size_t size, time_t t);

#endif
