/* cleanup_stat.h - cleanup status bits and the ONE table that maps them
 * to SMTP replies, RFC 3463 enhanced status codes and sysexits(3) codes.
 *
 * cleanup answers each message with {status, queue_id, reason}
 * (mail_proto.h); status is 0 (queued) or a mask of CLEANUP_STAT_* bits.
 * Its clients turn the mask into what they speak:
 *   smtpd     cleanup_stat_reply()  -> "451 4.3.0 text" / "552 5.3.4 text"
 *   logs      cleanup_stat_names()  -> "size,hops"
 * and cleanup_stat_exit() gives the sysexits(3) code for a command that
 * would report a status as its exit code. No program does today:
 * sendmail and postdrop never talk to cleanup (postdrop's exit status
 * says whether the maildrop file is on disk), and pickup moves a file
 * cleanup refuses for good to corrupt/ and retries a temporary refusal.
 * When several bits are set, the entry that wins is chosen in table
 * order, and every temporary entry comes before every permanent one, so
 * a mask with any temporary bit ALWAYS maps to a 4xx reply and
 * EX_TEMPFAIL (a message must never be rejected for good because of a
 * passing problem). Unknown bits map to a temporary internal error.
 *
 *   bit     meaning                          SMTP       exit
 *   WRITE   queue file write error (temp)    451 4.3.0  EX_TEMPFAIL
 *   DEFER   temporary lookup failure (temp)  451 4.3.0  EX_TEMPFAIL
 *   PROXY   temporary failure upstream       451 4.3.0  EX_TEMPFAIL
 *   BAD     malformed input/protocol error   554 5.5.0  EX_SOFTWARE
 *   NOPERM  record not permitted (untrusted) 554 5.7.1  EX_NOPERM
 *   SIZE    message too big                  552 5.3.4  EX_DATAERR
 *   HOPS    too many hops (mail loop)        554 5.4.6  EX_DATAERR
 *   CONT    content rejected                 550 5.7.1  EX_DATAERR
 *   RCPT    no recipients                    554 5.5.1  EX_NOUSER
 *
 * DIAGNOSTICS: none; pure functions over a static table. */
#ifndef POSTHORN_CLEANUP_STAT_H
#define POSTHORN_CLEANUP_STAT_H

#include <stdbool.h>
#include <stddef.h>

/* mail */
#include "address.h"		/* struct mail_reply */

#define CLEANUP_STAT_OK		0
#define CLEANUP_STAT_BAD	(1u << 0)	/* malformed input, protocol error */
#define CLEANUP_STAT_WRITE	(1u << 1)	/* queue file write error */
#define CLEANUP_STAT_SIZE	(1u << 2)	/* message too big */
#define CLEANUP_STAT_CONT	(1u << 3)	/* content rejected */
#define CLEANUP_STAT_HOPS	(1u << 4)	/* too many hops / mail loop */
#define CLEANUP_STAT_RCPT	(1u << 5)	/* no recipients */
#define CLEANUP_STAT_PROXY	(1u << 6)	/* temporary failure upstream */
#define CLEANUP_STAT_DEFER	(1u << 7)	/* temporary lookup failure */
#define CLEANUP_STAT_NOPERM	(1u << 8)	/* record not permitted */
#define CLEANUP_STAT_ALL	((1u << 9) - 1)

/* One row of the table. */
struct cleanup_stat_info {
    unsigned bit;			/* CLEANUP_STAT_* (0 for ok/unknown) */
    const char *name;			/* "size": for logs */
    int smtp_code;			/* 552 */
    const char *dsn;			/* "5.3.4" */
    const char *text;			/* "Message too big" */
    int exit_code;			/* EX_DATAERR */
    bool temporary;
};

/* cleanup_stat_info - the row that decides for status (status 0: the
 * "ok" row, 250 2.0.0, EX_OK) */
const struct cleanup_stat_info *cleanup_stat_info(unsigned status);
/* cleanup_stat_reply - the SMTP reply for status */
struct mail_reply cleanup_stat_reply(unsigned status);
/* cleanup_stat_exit - the sysexits code for status (EX_OK for 0) */
int cleanup_stat_exit(unsigned status);
/* cleanup_stat_temporary - true if status is a temporary failure */
bool cleanup_stat_temporary(unsigned status);
/* cleanup_stat_names - "size,hops" (or "ok", or "0x200" for unknown
 * bits) into buf; always NUL-terminated */
const char *cleanup_stat_names(unsigned status, char *buf, size_t size);

#endif
