/* test-record_grammar.c - unit tests for record_grammar.c: a table of
 * record sequences per profile (queue file, trusted and untrusted
 * cleanup input, maildrop file), each accepted or refused with a given
 * verdict and error text; then the whole-file reader. */

/* System. */
#include <stdlib.h>
#include <string.h>

/* Base. */
#include "msg.h"
#include "str.h"
#include "unit.h"

/* Mail. */
#include "maildrop.h"
#include "queue_file.h"
#include "record_grammar.h"

#define QF	RECORD_PROFILE_QUEUE_FILE
#define TRUST	RECORD_PROFILE_CLEANUP_TRUSTED
#define PICK	RECORD_PROFILE_CLEANUP_UNTRUSTED
#define DROP	RECORD_PROFILE_MAILDROP

#define READ_ERROR	(-1)		/* qf_get refused the framing */
#define V1		"V:posthorn-queue 1|"
#define T1		"T:1700000000.000000|"

/* Records as "T:data|T:data|..."; in data "~" is a NUL byte and "^" a
 * line feed. */
static const struct grammar_case {
    enum record_profile profile;
    const char *records;
    long long limit;
    int want;				/* enum record_verdict or READ_ERROR */
    const char *want_error;		/* a part of the text; NULL when OK */
} cases[] = {
    /* the queue file that cleanup writes */
    {QF, V1 T1 "S:a@x|A:client_address=192.0.2.1|A:x_future=1|R:b@y|D:c@y|M:|L:hi|C:a|L:b|X:"
     "|A:rcpt_orig=d@y|O:rfc822;d@y|N:never|R:d@y|E:", 0, RECORD_OK, NULL},
    {QF, V1 "T:1700000000|S:|R:b|M:|X:|E:", 0, RECORD_OK, NULL},
    {QF, V1 "T:1700000000.5|S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "bad time record"},
    {QF, V1 "S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "no time record in envelope"},
    {QF, V1 T1 "R:b|M:|X:|E:", 0, RECORD_BAD, "no sender record in envelope"},
    {QF, V1 T1 "S:a|S:b|R:b|M:|X:|E:", 0, RECORD_BAD, "second sender record"},
    {QF, V1 T1 T1 "S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "second time record"},
    {QF, V1 T1 "S:a|M:|X:|E:", 0, RECORD_BAD, "no recipients"},
    {QF, V1 T1 "S:a|N:never|O:rfc822;b|R:b|M:|X:|E:", 0, RECORD_BAD, "orcpt record after the notify"},
    {QF, V1 T1 "S:a|O:x|O:y|R:b|M:|X:|E:", 0, RECORD_BAD, "second orcpt record"},
    {QF, V1 T1 "S:a|A:rcpt_orig=x|A:helo=h|R:b|M:|X:|E:", 0, RECORD_BAD, "between a recipient's"},
    {QF, V1 T1 "S:a|A:rcpt_orig=x|M:|X:|E:", 0, RECORD_BAD, "without a recipient"},
    {QF, V1 T1 "S:a|A:=x|R:b|M:|X:|E:", 0, RECORD_BAD, "bad attribute record"},
    {QF, V1 T1 "S:a|R:|M:|X:|E:", 0, RECORD_BAD, "empty recipient"},
    {QF, V1 T1 "S:a|R:b|M:|C:x|X:|E:", 0, RECORD_BAD, "continued line without its end"},
    {QF, V1 T1 "S:a|R:b|M:|L:a^b|X:|E:", 0, READ_ERROR, "line feed inside content record 'L'"},
    {QF, V1 T1 "S:a|R:b|M:|L:x|X:|E:x", 0, RECORD_BAD, "end record with data"},
    {QF, "V:posthorn-queue 2|" T1 "S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "unsupported queue file version"},
    {QF, T1 "S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'T'"},
    {QF, V1 T1 "S:a|R:b|M:|X:|R:c|M:|E:", 0, RECORD_BAD, "unexpected record type 'M'"},

    /* a request from smtpd, bounce, local-delivery */
    {TRUST, "T:1700000000.5|S:a@x|A:helo=h|A:sasl_username=u|A:rcpt_orig=o@x|O:rfc822;o@x"
     "|N:success|R:b@x|A:bounce_notice=1|M:|L:x|C:y|L:z|X:|A:dsn_ret=FULL|R:c@x|E:", 0, RECORD_OK, NULL},
    {TRUST, "S:a|M:|L:To: b@x|X:|E:", 0, RECORD_OK, NULL},	/* recipients come from -t */
    {TRUST, "S:a|T:1700000000|R:b|M:|X:|E:", 0, RECORD_BAD, "time record after other records"},
    {TRUST, "T:17000000x|S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "bad time record"},
    {TRUST, "S:a|A:origin=smtpd|R:b|M:|X:|E:", 0, RECORD_BAD, "attribute origin not allowed"},
    {TRUST, "S:a|A:submit_uid=0|R:b|M:|X:|E:", 0, RECORD_OK, NULL},
    {TRUST, "S:a|A:x_new=1|R:b|M:|X:|E:", 0, RECORD_OK, NULL},
    {TRUST, "S:a|D:b|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'D'"},
    {TRUST, V1 "S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'V'"},
    {TRUST, "S:a|R:b|E:", 0, RECORD_BAD, "unexpected record type 'E'"},
    {TRUST, "S:a|R:b|M:|L:early|X:|E:", 0, RECORD_OK, NULL},
    {TRUST, "S:a|R:b|L:early|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'L'"},
    {TRUST, "S:a|R:b\tc|M:|X:|E:", 0, RECORD_BAD, "control character in recipient"},
    {TRUST, "S:a^b|R:c|M:|X:|E:", 0, RECORD_BAD, "control character in sender"},
    {TRUST, "S:a|N:success,success|R:b|M:|X:|E:", 0, RECORD_BAD, "bad notify record"},
    {TRUST, "S:a|O:|R:b|M:|X:|E:", 0, RECORD_BAD, "bad orcpt record"},
    {TRUST, "S:a|R:b|M:|C:half|X:|E:", 0, RECORD_BAD, "continued line without its end"},
    {TRUST, "S:a|R:b|M:|L:hello^From evil|X:|E:", 0, READ_ERROR, "line feed inside content record"},
    {TRUST, "S:a|R:b|M:|C:a^b|L:c|X:|E:", 0, READ_ERROR, "line feed inside content record 'C'"},
    {TRUST, "S:a~b|R:b|M:|X:|E:", 0, READ_ERROR, "NUL byte in record 'S'"},
    {TRUST, "S:a|R:b|M:|L:12345|X:|E:", 5, RECORD_TOO_LARGE, "message too large (limit 5 bytes)"},
    {TRUST, "S:a|R:b|M:|L:12345|X:|E:", 6, RECORD_OK, NULL},

    /* a request from pickup: a local user's mail */
    {PICK, "T:1700000000.5|S:a|A:submit_uid=1000|A:dsn_envid=xyz|A:smtputf8=yes|R:b|M:|L:x|X:"
     "|O:rfc822;c|R:c|E:", 0, RECORD_OK, NULL},
    {PICK, "S:a|A:sasl_username=admin|R:b|M:|X:|E:", 0, RECORD_NOPERM, "attribute sasl_username not allowed"},
    {PICK, "S:a|A:client_address=192.0.2.1|R:b|M:|X:|E:", 0, RECORD_NOPERM, "client_address"},
    {PICK, "S:a|A:helo=h|R:b|M:|X:|E:", 0, RECORD_NOPERM, "attribute helo"},
    {PICK, "S:a|A:protocol=ESMTP|R:b|M:|X:|E:", 0, RECORD_NOPERM, "attribute protocol"},
    {PICK, "S:a|A:bounce_notice=1|R:b|M:|X:|E:", 0, RECORD_NOPERM, "attribute bounce_notice"},
    {PICK, "S:a|A:rcpt_orig=x|R:b|M:|X:|E:", 0, RECORD_NOPERM, "attribute rcpt_orig"},
    {PICK, "S:a|A:x_new=1|R:b|M:|X:|E:", 0, RECORD_NOPERM, "attribute x_new"},
    {PICK, "S:a|A:origin=x|R:b|M:|X:|E:", 0, RECORD_BAD, "attribute origin"},
    {PICK, "S:a|R:b|M:|X:|A:dsn_ret=FULL|E:", 0, RECORD_NOPERM, "unexpected record type 'A'"},
    {PICK, "S:a|D:b|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'D'"},
    {PICK, "S:a|R:b|M:|L:a^b|X:|E:", 0, READ_ERROR, "line feed inside content record"},

    /* a maildrop file from sendmail */
    {DROP, V1 "S:a@x|R:b@y|M:|L:hi|X:|E:", 0, RECORD_OK, NULL},
    {DROP, V1 "S:|A:dsn_ret=hdrs|A:dsn_envid=ID1|A:body=8bitmime|O:rfc822;b@y|N:success,delay"
     "|R:b@y|R:c@y|M:|C:ab|L:c|X:|E:", 0, RECORD_OK, NULL},
    {DROP, V1 "S:root|A:flags=extract|M:|L:To: x@y|X:|E:", 0, RECORD_OK, NULL},
    {DROP, V1 "S:a|R:b|M:|L:bin~ary|X:|E:", 0, RECORD_OK, NULL},
    {DROP, "V:posthorn-queue 2|S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "unsupported queue file version"},
    {DROP, "S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'S'"},
    {DROP, V1 "R:b|S:a|M:|X:|E:", 0, RECORD_BAD, "no sender record after the version record"},
    {DROP, V1 T1 "S:a|R:b|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'T'"},
    {DROP, V1 "S:a|A:sasl_username=bob|R:b|M:|X:|E:", 0, RECORD_BAD, "attribute sasl_username not allowed"},
    {DROP, V1 "S:a|A:submit_uid=0|R:b|M:|X:|E:", 0, RECORD_BAD, "attribute submit_uid not allowed"},
    {DROP, V1 "S:a|A:dsn_ret=full|A:dsn_ret=hdrs|R:b|M:|X:|E:", 0, RECORD_BAD, "duplicate attribute dsn_ret"},
    {DROP, V1 "S:a|A:dsn_ret=most|R:b|M:|X:|E:", 0, RECORD_BAD, "bad dsn_ret value"},
    {DROP, V1 "S:a|A:flags=extract,extract|R:b|M:|X:|E:", 0, RECORD_BAD, "bad flags value"},
    {DROP, V1 "S:a|A:flags=fast|R:b|M:|X:|E:", 0, RECORD_BAD, "bad flags value"},
    {DROP, V1 "S:a|A:dsn_envid=a b|R:b|M:|X:|E:", 0, RECORD_BAD, "bad dsn_envid value"},
    {DROP, V1 "S:a|R:b|A:dsn_ret=full|M:|X:|E:", 0, RECORD_BAD, "attribute after a recipient"},
    {DROP, V1 "S:a|R:b|D:c|M:|X:|E:", 0, RECORD_BAD, "unexpected record type 'D'"},
    {DROP, V1 "S:a|S:b|R:b|M:|X:|E:", 0, RECORD_BAD, "second sender record"},
    {DROP, V1 "S:a|R:|M:|X:|E:", 0, RECORD_BAD, "empty recipient"},
    {DROP, V1 "S:a|R:b\tc|M:|X:|E:", 0, RECORD_BAD, "control character in recipient"},
    {DROP, V1 "S:a~b|R:b|M:|X:|E:", 0, READ_ERROR, "NUL byte"},
    {DROP, V1 "S:a|N:sometimes|R:b|M:|X:|E:", 0, RECORD_BAD, "bad notify record"},
    {DROP, V1 "S:a|R:b|N:never|M:|X:|E:", 0, RECORD_BAD, "without a recipient"},
    {DROP, V1 "S:a|O:noseparator|R:b|M:|X:|E:", 0, RECORD_BAD, "bad orcpt record"},
    {DROP, V1 "S:a|M:|L:x|X:|E:", 0, RECORD_BAD, "no recipients"},
    {DROP, V1 "S:a|R:b|M:|C:x|X:|E:", 0, RECORD_BAD, "continued line without its end"},
    {DROP, V1 "S:a|R:b|M:|L:a^b|X:|E:", 0, READ_ERROR, "line feed inside content record"},
    {DROP, V1 "S:a|R:b|M:x|X:|E:", 0, RECORD_BAD, "message record with data"},
    {DROP, V1 "S:a|R:b|M:|L:0123456789|X:|E:", 11, RECORD_TOO_LARGE, "message too large"},
    {DROP, V1 "S:a|R:b|M:|L:012345678|X:|E:", 11, RECORD_OK, NULL},
    {DROP, V1 "S:a|R:b|M:|L:x|X:|R:c|A:body=7bit|E:", 0, RECORD_BAD, "unexpected record type 'A'"},
};

/* encode - a case's records as the bytes of a file */
static void encode(const char *spec, struct str *out)
{
    char *copy = strdup(spec), *save = NULL;

    str_reset(out);
    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
	char data[256];
	size_t len = strlen(tok + 2);

	memcpy(data, tok + 2, len);
	for (size_t i = 0; i < len; i++) {
	    if (data[i] == '~')
		data[i] = 0;
	    else if (data[i] == '^')
		data[i] = '\n';
	}
	qf_encode(out, tok[0], data, len);
    }
    free(copy);
}

/* run_case - read every record as cleanup does (qf_get with every known
 * type, then the grammar) and give the first verdict and its text */
static int run_case(const struct grammar_case *tc, const char **error_r)
{
    struct str *file = str_new(STR_MAX_DEFAULT);
    struct str *data = str_new(QF_RECORD_MAX);
    struct record_grammar g;
    struct qf_reader r;
    int type, ret, verdict = RECORD_OK;

    encode(tc->records, file);
    qf_reader_init_mem(&r, file->data, file->len);
    record_grammar_init(&g, tc->profile, tc->limit);
    while ((ret = qf_get(&r, &type, data, QF_RECORD_MAX, "VTSAONRDMLCXE", NULL, error_r)) > 0)
	if ((verdict = record_grammar_check(&g, type, data, error_r)) != RECORD_OK)
	    break;
    if (ret < 0)
	verdict = READ_ERROR;
    else if (verdict == RECORD_OK && !record_grammar_at_end(&g))
	unit_fail_at(__FILE__, __LINE__, "\"%s\": accepted but not at the end", tc->records);
    str_free(&file);
    str_free(&data);
    return verdict;
}

/* test_profiles - every case of the table */
static void test_profiles(void)
{
    unit_begin("record grammar: accept and refuse, per profile");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	const struct grammar_case *tc = cases + i;
	const char *error = "";
	int verdict = run_case(tc, &error);

	if (verdict != tc->want)
	    unit_fail_at(__FILE__, __LINE__, "case %zu \"%s\": verdict %d, want %d (%s)", i,
			 tc->records, verdict, tc->want, verdict ? error : "accepted");
	else if (tc->want_error && strstr(error, tc->want_error) == NULL)
	    unit_fail_at(__FILE__, __LINE__, "case %zu: got \"%s\", want \"%s\"", i, error,
			 tc->want_error);
    }
    unit_end();
}

/* test_maildrop_flags - the extract flag reaches the caller */
static void test_maildrop_flags(void)
{
    struct record_grammar g;
    struct str *d = str_new(64);
    const char *error;

    unit_begin("record grammar: maildrop flags attribute");
    record_grammar_init(&g, RECORD_PROFILE_MAILDROP, 0);
    str_set_or_panic(d, "posthorn-queue 1");
    unit_assert(record_grammar_check(&g, QF_REC_VERSION, d, &error) == RECORD_OK);
    str_set_or_panic(d, "root");
    unit_assert(record_grammar_check(&g, QF_REC_SENDER, d, &error) == RECORD_OK);
    unit_assert_inteq(g.maildrop_flags, 0);
    str_set_or_panic(d, "flags=extract");
    unit_assert(record_grammar_check(&g, QF_REC_ATTR, d, &error) == RECORD_OK);
    unit_assert_inteq(g.maildrop_flags, MAILDROP_FLAG_EXTRACT);
    unit_assert_streq(record_grammar_allowed(&g), "SAONRM");
    unit_assert_inteq(record_grammar_record_max(&g), MAILDROP_ADDR_MAX);
    unit_end();
    str_free(&d);
}

/* get_all - record_grammar_get over a whole file; the last result */
static int get_all(enum record_profile profile, const char *spec, const char **error_r)
{
    struct str *file = str_new(STR_MAX_DEFAULT);
    struct str *data = str_new(QF_RECORD_MAX);
    struct record_grammar g;
    struct qf_reader r;
    int type, ret;

    encode(spec, file);
    qf_reader_init_mem(&r, file->data, file->len);
    record_grammar_init(&g, profile, 0);
    while ((ret = record_grammar_get(&g, &r, &type, data, NULL, error_r)) > 0)
	 /* void */ ;
    str_free(&file);
    str_free(&data);
    return ret;
}

/* test_get - the file reader: the end of file before and after E */
static void test_get(void)
{
    const char *error = "";

    unit_begin("record_grammar_get: whole files");
    unit_assert_inteq(get_all(DROP, V1 "S:a|R:b|M:|L:x|X:|E:", &error), 0);
    unit_assert_inteq(get_all(DROP, V1 "S:a|R:b|M:|L:x|X:", &error), -1);
    unit_assert_streq(error, "corrupt queue file: premature end of file (no end record) at offset 49");
    unit_assert_inteq(get_all(DROP, V1 "S:a|R:b|M:|L:x|X:|E:|E:", &error), -1);
    unit_assert_streq(error, "corrupt queue file: data after the end record at offset 54");
    unit_assert_inteq(get_all(DROP, V1 T1 "S:a|R:b|M:|X:|E:", &error), -1);
    unit_assert_streq(error, "corrupt queue file: unexpected record type 'T' at offset 21");
    unit_assert_inteq(get_all(QF, V1 T1 "S:a|S:b|R:c|M:|X:|E:", &error), -1);
    unit_assert_streq(error, "corrupt queue file: second sender record at offset 49");
    unit_end();
}

/* test_values - the value checks the profiles share */
static void test_values(void)
{
    int64_t sec;
    long usec;

    unit_begin("record grammar: notify and time values");
    unit_assert(record_grammar_notify_valid("never", 5));
    unit_assert(record_grammar_notify_valid("delay,failure", 13));
    unit_assert(!record_grammar_notify_valid("never,delay", 11));
    unit_assert(!record_grammar_notify_valid("", 0));
    unit_assert(!record_grammar_notify_valid("failure,", 8));
    unit_assert(record_grammar_time_parse("1700000000.5", 12, false, &sec, &usec));
    unit_assert_inteq(sec, 1700000000);
    unit_assert_inteq(usec, 500000);
    unit_assert(!record_grammar_time_parse("1700000000.5", 12, true, &sec, &usec));
    unit_assert(record_grammar_time_parse("1700000000.000001", 17, true, &sec, &usec));
    unit_assert_inteq(usec, 1);
    unit_assert(!record_grammar_time_parse("1700000000.", 11, false, &sec, &usec));
    unit_assert(!record_grammar_time_parse("1234567890123", 13, false, &sec, &usec));
    unit_end();
}

int main(void)
{
    test_profiles();
    test_maildrop_flags();
    test_get();
    test_values();
    return unit_done();
}
