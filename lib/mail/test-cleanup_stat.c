/* test-cleanup_stat.c - unit tests for cleanup_stat.c: each bit's reply
 * and exit code, precedence, and "temporary never becomes permanent"
 * over every combination of bits. */

/* System. */
#include <string.h>
#include <sysexits.h>

/* Base. */
#include "str.h"
#include "unit.h"

/* Mail. */
#include "cleanup_stat.h"

struct stat_case {
    unsigned status;
    int code;
    const char *dsn;
    int exit_code;
    bool temporary;
    const char *names;
};

static const struct stat_case cases[] = {
    {0, 250, "2.0.0", EX_OK, false, "ok"},
    {CLEANUP_STAT_WRITE, 451, "4.3.0", EX_TEMPFAIL, true, "write"},
    {CLEANUP_STAT_DEFER, 451, "4.3.0", EX_TEMPFAIL, true, "defer"},
    {CLEANUP_STAT_PROXY, 451, "4.3.0", EX_TEMPFAIL, true, "proxy"},
    {CLEANUP_STAT_BAD, 554, "5.5.0", EX_SOFTWARE, false, "bad"},
    {CLEANUP_STAT_NOPERM, 554, "5.7.1", EX_NOPERM, false, "noperm"},
    {CLEANUP_STAT_SIZE, 552, "5.3.4", EX_DATAERR, false, "size"},
    {CLEANUP_STAT_HOPS, 554, "5.4.6", EX_DATAERR, false, "hops"},
    {CLEANUP_STAT_CONT, 550, "5.7.1", EX_DATAERR, false, "content"},
    {CLEANUP_STAT_RCPT, 554, "5.5.1", EX_NOUSER, false, "rcpt"},
    /* precedence: temporary first, then the table order */
    {CLEANUP_STAT_SIZE | CLEANUP_STAT_WRITE, 451, "4.3.0", EX_TEMPFAIL, true, "write,size"},
    {CLEANUP_STAT_HOPS | CLEANUP_STAT_DEFER, 451, "4.3.0", EX_TEMPFAIL, true, "defer,hops"},
    {CLEANUP_STAT_RCPT | CLEANUP_STAT_SIZE, 552, "5.3.4", EX_DATAERR, false, "size,rcpt"},
    {CLEANUP_STAT_BAD | CLEANUP_STAT_SIZE, 554, "5.5.0", EX_SOFTWARE, false, "bad,size"},
    /* unknown bits: a temporary internal error */
    {1u << 20, 451, "4.3.0", EX_TEMPFAIL, true, "0x100000"},
    {CLEANUP_STAT_SIZE | (1u << 20), 451, "4.3.0", EX_TEMPFAIL, true, "size,0x100000"},
};

int main(void)
{
    char buf[128];
    size_t i;
    unsigned mask;

    unit_begin("each status: reply, enhanced code, exit code, names");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	const struct stat_case *c = &cases[i];
	struct mail_reply r = cleanup_stat_reply(c->status);

	unit_assert_idx(r.code == c->code, i);
	unit_assert_streq_idx(r.enhanced, c->dsn, i);
	unit_assert_idx(r.text != NULL && *r.text, i);
	unit_assert_idx(cleanup_stat_exit(c->status) == c->exit_code, i);
	unit_assert_idx(cleanup_stat_temporary(c->status) == c->temporary, i);
	unit_assert_streq_idx(cleanup_stat_names(c->status, buf, sizeof(buf)), c->names, i);
    }
    unit_end();

    unit_begin("a temporary bit never maps to a permanent reply (all masks)");
    for (mask = 1; mask <= CLEANUP_STAT_ALL; mask++) {
	bool temp = (mask & (CLEANUP_STAT_WRITE | CLEANUP_STAT_DEFER | CLEANUP_STAT_PROXY)) != 0;
	struct mail_reply r = cleanup_stat_reply(mask);

	unit_assert_idx(cleanup_stat_temporary(mask) == temp, mask);
	unit_assert_idx((r.code / 100 == 4) == temp, mask);
	unit_assert_idx((r.code / 100 == 5) == !temp, mask);
	unit_assert_idx(r.enhanced[0] == (temp ? '4' : '5'), mask);
	unit_assert_idx((cleanup_stat_exit(mask) == EX_TEMPFAIL) == temp, mask);
	unit_assert_idx(cleanup_stat_info(mask)->bit & mask, mask);
    }
    unit_end();

    unit_begin("names are bounded by the buffer");
    unit_assert_streq(cleanup_stat_names(CLEANUP_STAT_ALL, buf, 6), "write");
    unit_assert_streq(cleanup_stat_names(CLEANUP_STAT_ALL, buf, sizeof(buf)),
		      "write,defer,proxy,bad,noperm,size,hops,content,rcpt");
    unit_end();

    return unit_done();
}
