/* cleanup_stat.c - the one table from cleanup status bits to SMTP
 * replies, enhanced status codes and exit codes (see cleanup_stat.h). */

/* System. */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

/* Base. */
#include "str.h"

/* Mail. */
#include "cleanup_stat.h"

/* Temporary rows first: any temporary bit decides before a permanent
 * one, so a temporary failure never becomes a permanent reply. The
 * Status table of man/cleanup.8 repeats the rows, bits and replies
 * (tests/test_manpages.py compares them). */
static const struct cleanup_stat_info cleanup_stat_table[] = {
    {CLEANUP_STAT_WRITE, "write", 451, "4.3.0", "Queue file write error", EX_TEMPFAIL, true},
    {CLEANUP_STAT_DEFER, "defer", 451, "4.3.0", "Temporary lookup failure", EX_TEMPFAIL, true},
    {CLEANUP_STAT_PROXY, "proxy", 451, "4.3.0", "Temporary failure, try again later", EX_TEMPFAIL, true},
    {CLEANUP_STAT_BAD, "bad", 554, "5.5.0", "Malformed input or protocol error", EX_SOFTWARE, false},
    {CLEANUP_STAT_NOPERM, "noperm", 554, "5.7.1", "Record type not permitted", EX_NOPERM, false},
    {CLEANUP_STAT_SIZE, "size", 552, "5.3.4", "Message too big", EX_DATAERR, false},
    {CLEANUP_STAT_HOPS, "hops", 554, "5.4.6", "Too many hops: mail forwarding loop", EX_DATAERR, false},
    {CLEANUP_STAT_CONT, "content", 550, "5.7.1", "Message content rejected", EX_DATAERR, false},
    {CLEANUP_STAT_RCPT, "rcpt", 554, "5.5.1", "No recipients", EX_NOUSER, false},
};

static const struct cleanup_stat_info cleanup_stat_ok = {
    0, "ok", 250, "2.0.0", "Ok", EX_OK, false,
};

static const struct cleanup_stat_info cleanup_stat_unknown = {
    0, "unknown", 451, "4.3.0", "Internal error, try again later", EX_TEMPFAIL, true,
};

#define CLEANUP_STAT_ROWS (sizeof(cleanup_stat_table) / sizeof(cleanup_stat_table[0]))

/* cleanup_stat_info - the row that decides for status */
const struct cleanup_stat_info *cleanup_stat_info(unsigned status)
{
    size_t i;

    if (status == 0)
	return &cleanup_stat_ok;
    if (status & ~CLEANUP_STAT_ALL)
	return &cleanup_stat_unknown;
    for (i = 0; i < CLEANUP_STAT_ROWS; i++)
	if (status & cleanup_stat_table[i].bit)
	    return &cleanup_stat_table[i];
    return &cleanup_stat_unknown;
}

/* cleanup_stat_reply - the SMTP reply for status */
struct mail_reply cleanup_stat_reply(unsigned status)
{
    const struct cleanup_stat_info *info = cleanup_stat_info(status);
    struct mail_reply reply;

    reply.code = info->smtp_code;
    reply.enhanced = info->dsn;
    reply.text = info->text;
    return reply;
}

/* cleanup_stat_exit - the sysexits code for status */
int cleanup_stat_exit(unsigned status)
{
    return cleanup_stat_info(status)->exit_code;
}

/* cleanup_stat_temporary - true for a temporary failure */
bool cleanup_stat_temporary(unsigned status)
{
    return cleanup_stat_info(status)->temporary;
}

/* cleanup_stat_names - "size,hops" for logs */
const char *cleanup_stat_names(unsigned status, char *buf, size_t size)
{
    struct str *s = str_new(256);
    size_t i;

    if (status == 0)
	str_set_or_panic(s, "ok");
    for (i = 0; i < CLEANUP_STAT_ROWS; i++) {
	if (status & cleanup_stat_table[i].bit) {
	    if (str_len(s) && !str_try_appendc(s, ','))
		break;
	    if (!str_try_appends(s, cleanup_stat_table[i].name))
		break;
	}
    }
    if (status & ~CLEANUP_STAT_ALL)
	str_appendf_or_panic(s, "%s0x%x", str_len(s) ? "," : "", status & ~CLEANUP_STAT_ALL);
    fmt_buf_cut(buf, size, "%s", str_cstr(s));
    str_free(&s);
    return buf;
}
