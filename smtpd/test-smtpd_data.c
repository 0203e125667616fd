/* test-smtpd_data.c - unit tests for smtpd_data.c: the BDAT argument
 * parser (reading DATA and BDAT from a client is covered by
 * tests/test_smtpd.py; the content parser by lib/mail/test-smtp_data.c). */

#include <stdint.h>
#include <string.h>

#include "unit.h"

#include "smtpd.h"

static const struct {
    const char *args;
    bool ok;
    unsigned long long count;
    bool last;
} bdat_cases[] = {
    {"0", true, 0, false},
    {"0 LAST", true, 0, true},
    {"123 last", true, 123, true},
    {"10  LAST", true, 10, true},
    {"9999999999999999999", true, 9999999999999999999ull, false},
    {"99999999999999999999", false, 0, false},	/* above 2^64 - 1 */
    {"18446744073709551615", true, 18446744073709551615ull, false},
    {"18446744073709551616", false, 0, false},
    {"0000000000000000000014 LAST", true, 14, true},	/* RFC 3030 allows zeros */
    {"00000000000000000000000000000000000000000000000000000000000000007", true, 7, false},
    {"00", true, 0, false},
    {"", false, 0, false},
    {"LAST", false, 0, false},
    {"-1", false, 0, false},
    {"12x", false, 0, false},
    {"12 LASTX", false, 0, false},
    {"12 LAS", false, 0, false},
    {"12 LAST x", false, 0, false},
    {" 12", false, 0, false},
};

/* test_bdat_parse - "count [LAST]": digits, 2^64 - 1, LAST in any case */
static void test_bdat_parse(void)
{
    unit_begin("smtpd_bdat_parse");
    for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
	uint64_t n = 0;
	bool last = false;
	bool ok = smtpd_bdat_parse(bdat_cases[i].args, strlen(bdat_cases[i].args), &n, &last);

	unit_assert_idx(ok == bdat_cases[i].ok, i);
	if (ok && bdat_cases[i].ok) {
	    unit_assert_idx(n == bdat_cases[i].count, i);
	    unit_assert_idx(last == bdat_cases[i].last, i);
	}
    }
    unit_end();
}

int main(void)
{
    test_bdat_parse();
    return unit_done();
}
