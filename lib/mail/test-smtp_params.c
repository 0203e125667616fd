/* test-smtp_params.c - unit tests for smtp_params.c (ESMTP parameters of
 * MAIL FROM and RCPT TO). */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* base */
#include "mem.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "address.h"
#include "smtp_params.h"

#define ALL	(SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME \
		 | SMTP_EXT_SMTPUTF8 | SMTP_EXT_DSN | SMTP_EXT_AUTH)

#define E(x)	SMTP_PARAM_ERR_##x
#define OKAY	SMTP_PARAM_OK

/* A MAIL case. ext_off: extensions removed from ALL. auth: 0 none,
 * 1 AUTH=<>, 2 the value in auth_value. */
struct mcase {
    const char *in;
    size_t len;				/* 0: strlen */
    unsigned ext_off;
    enum smtp_param_error err;
    int has_size;
    uint64_t size;
    enum smtp_body body;
    int smtputf8;
    enum smtp_ret ret;
    const char *envid;
    int auth;
    const char *auth_value;
    const char *bad;			/* the parameter blamed on error */
};

static const struct mcase mail_cases[] = {
    {.in = "", .err = OKAY},
    {.in = "   ", .err = OKAY},
    {.in = "SIZE=1000", .err = OKAY, .has_size = 1, .size = 1000},
    {.in = "size=0", .err = OKAY, .has_size = 1, .size = 0},
    {.in = "SiZe=007", .err = OKAY, .has_size = 1, .size = 7},
    {.in = "SIZE=18446744073709551615", .err = OKAY, .has_size = 1, .size = UINT64_MAX},
    {.in = "SIZE=18446744073709551614", .err = OKAY, .has_size = 1, .size = UINT64_MAX - 1},
    {.in = "SIZE=18446744073709551616", .err = OKAY, .has_size = 1, .size = UINT64_MAX},
    {.in = "SIZE=99999999999999999999", .err = OKAY, .has_size = 1, .size = UINT64_MAX},
    {.in = "SIZE=100000000000000000000", .err = E(SIZE), .bad = "SIZE=100000000000000000000"},
    {.in = "SIZE=", .err = E(VALUE_MISSING), .bad = "SIZE="},
    {.in = "SIZE", .err = E(VALUE_MISSING), .bad = "SIZE"},
    {.in = "SIZE=-1", .err = E(SIZE)},
    {.in = "SIZE=+1", .err = E(SIZE)},
    {.in = "SIZE=1k", .err = E(SIZE)},
    {.in = "SIZE=0x10", .err = E(SIZE)},
    {.in = "SIZE=1.5", .err = E(SIZE)},
    {.in = "SIZE= 1", .err = E(VALUE_MISSING), .bad = "SIZE="},
    {.in = "SIZE=1 SIZE=2", .err = E(DUPLICATE), .bad = "SIZE=2"},
    {.in = "SIZE=1 size=1", .err = E(DUPLICATE), .bad = "size=1"},
    {.in = "SIZE=1", .ext_off = SMTP_EXT_SIZE, .err = E(NOT_ADVERTISED), .bad = "SIZE=1"},
    {.in = "BODY=8BITMIME", .err = OKAY, .body = SMTP_BODY_8BITMIME},
    {.in = "body=8bitmime", .err = OKAY, .body = SMTP_BODY_8BITMIME},
    {.in = "BODY=7BIT", .err = OKAY, .body = SMTP_BODY_7BIT},
    {.in = "BODY=BINARYMIME", .err = OKAY, .body = SMTP_BODY_BINARYMIME},
    {.in = "BODY=BINARYMIME", .ext_off = SMTP_EXT_BINARYMIME, .err = E(NOT_ADVERTISED)},
    {.in = "BODY=8BITMIME", .ext_off = SMTP_EXT_8BITMIME, .err = E(NOT_ADVERTISED)},
    {.in = "BODY=7BIT", .ext_off = SMTP_EXT_BINARYMIME, .err = OKAY, .body = SMTP_BODY_7BIT},
    {.in = "BODY=7BIT", .ext_off = SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, .err = E(NOT_ADVERTISED)},
    {.in = "BODY=8BIT", .err = E(BODY)},
    {.in = "BODY=8BITMIMEX", .err = E(BODY)},
    {.in = "BODY=", .err = E(VALUE_MISSING)},
    {.in = "BODY=8BITMIME BODY=7BIT", .err = E(DUPLICATE), .bad = "BODY=7BIT"},
    {.in = "SMTPUTF8", .err = OKAY, .smtputf8 = 1},
    {.in = "smtputf8", .err = OKAY, .smtputf8 = 1},
    {.in = "SMTPUTF8=yes", .err = E(VALUE_UNEXPECTED)},
    {.in = "SMTPUTF8=", .err = E(VALUE_UNEXPECTED)},
    {.in = "SMTPUTF8", .ext_off = SMTP_EXT_SMTPUTF8, .err = E(NOT_ADVERTISED)},
    {.in = "SMTPUTF8 SMTPUTF8", .err = E(DUPLICATE)},
    {.in = "RET=FULL", .err = OKAY, .ret = SMTP_RET_FULL},
    {.in = "RET=HDRS", .err = OKAY, .ret = SMTP_RET_HDRS},
    {.in = "ret=hdrs", .err = OKAY, .ret = SMTP_RET_HDRS},
    {.in = "RET=NONE", .err = E(RET)},
    {.in = "RET=", .err = E(VALUE_MISSING)},
    {.in = "RET=FULL", .ext_off = SMTP_EXT_DSN, .err = E(NOT_ADVERTISED)},
    {.in = "RET=FULL RET=HDRS", .err = E(DUPLICATE)},
    {.in = "ENVID=QQ314159", .err = OKAY, .envid = "QQ314159"},
    {.in = "ENVID=a+2Bb+3Dc", .err = OKAY, .envid = "a+b=c"},
    {.in = "ENVID=+20", .err = OKAY, .envid = " "},
    {.in = "ENVID=a+2bb", .err = E(ENVID)},
    {.in = "ENVID=a+", .err = E(ENVID)},
    {.in = "ENVID=+00", .err = E(ENVID)},
    {.in = "ENVID=+0A", .err = E(ENVID)},
    {.in = "ENVID=+7F", .err = E(ENVID)},
    {.in = "ENVID=+E9", .err = E(ENVID)},
    {.in = "ENVID=", .err = E(VALUE_MISSING)},
    {.in = "ENVID=a", .ext_off = SMTP_EXT_DSN, .err = E(NOT_ADVERTISED)},
    {.in = "ENVID=a ENVID=a", .err = E(DUPLICATE)},
    {.in = "AUTH=<>", .err = OKAY, .auth = 1},
    {.in = "AUTH=+3C+3E", .err = OKAY, .auth = 1},
    {.in = "AUTH=user@example.com", .err = OKAY, .auth = 2, .auth_value = "user@example.com"},
    {.in = "auth=user+2Btag@example.com", .err = OKAY, .auth = 2, .auth_value = "user+tag@example.com"},
    {.in = "AUTH=+C3+A9@example.com", .err = OKAY, .auth = 2, .auth_value = "\xc3\xa9@example.com"},
    {.in = "AUTH=+C3+A9@example.com", .ext_off = SMTP_EXT_SMTPUTF8, .err = E(AUTH)},
    {.in = "AUTH=+C3@example.com", .err = E(AUTH)},
    {.in = "AUTH=a+ZZ", .err = E(AUTH)},
    {.in = "AUTH=a+0Db", .err = E(AUTH)},
    {.in = "AUTH=x", .ext_off = SMTP_EXT_AUTH, .err = E(NOT_ADVERTISED)},
    {.in = "AUTH=<> AUTH=<>", .err = E(DUPLICATE)},
    {.in = "FOO=bar", .err = E(UNKNOWN), .bad = "FOO=bar"},
    {.in = "X-FOO", .err = E(UNKNOWN)},
    {.in = "A-B=c", .err = E(UNKNOWN)},
    {.in = "NOTIFY=NEVER", .err = E(UNKNOWN)},
    {.in = "ORCPT=rfc822;a@b", .err = E(UNKNOWN)},
    {.in = "SIZE=1 FOO", .err = E(UNKNOWN), .bad = "FOO"},
    {.in = "FOO SIZE=x", .err = E(UNKNOWN), .bad = "FOO"},
    {.in = "SIZE=x FOO", .err = E(SIZE), .bad = "SIZE=x"},
    {.in = "=1", .err = E(SYNTAX)},
    {.in = "-SIZE=1", .err = E(SYNTAX)},
    {.in = "SI_ZE=1", .err = E(SYNTAX)},
    {.in = "SIZE==1", .err = E(SYNTAX)},
    {.in = "SIZE=1=2", .err = E(SYNTAX)},
    {.in = "SIZE=1\t", .err = E(SYNTAX)},
    {.in = "SIZE=1\tBODY=7BIT", .err = E(SYNTAX)},
    {.in = "BODY=8BITMIME\r", .err = E(SYNTAX)},
    {.in = "SIZE=\xc3\xa9", .err = E(SYNTAX)},
    {.in = "AUTH=\xc3\xa9", .err = E(SYNTAX)},
    {.in = "\xc3\xa9=1", .err = E(SYNTAX)},
    {.in = "SIZE=1\0", .len = 7, .err = E(SYNTAX)},
    {.in = "SI\0ZE=1", .len = 7, .err = E(SYNTAX)},
    {.in = "<a@b>", .err = E(SYNTAX)},
    {.in = "SIZE=1  BODY=8BITMIME ", .err = OKAY, .has_size = 1, .size = 1, .body = SMTP_BODY_8BITMIME},
    {.in = "SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc AUTH=<>", .err = OKAY,
     .has_size = 1, .size = 1000, .body = SMTP_BODY_8BITMIME, .smtputf8 = 1,
     .ret = SMTP_RET_HDRS, .envid = "abc", .auth = 1},
    {.in = "SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc AUTH=<> SIZE=1", .err = E(DUPLICATE)},
};

struct rcase {
    const char *in;
    size_t len;
    unsigned ext_off;
    int smtputf8;
    enum smtp_param_error err;
    unsigned notify;
    const char *orcpt_type;
    const char *orcpt;
    const char *bad;
};

#define N_NEVER		SMTP_NOTIFY_NEVER
#define N_SUCC		SMTP_NOTIFY_SUCCESS
#define N_FAIL		SMTP_NOTIFY_FAILURE
#define N_DELAY		SMTP_NOTIFY_DELAY

static const struct rcase rcpt_cases[] = {
    {.in = "", .err = OKAY},
    {.in = "NOTIFY=NEVER", .err = OKAY, .notify = N_NEVER},
    {.in = "NOTIFY=SUCCESS", .err = OKAY, .notify = N_SUCC},
    {.in = "NOTIFY=SUCCESS,FAILURE,DELAY", .err = OKAY, .notify = N_SUCC | N_FAIL | N_DELAY},
    {.in = "notify=failure,delay", .err = OKAY, .notify = N_FAIL | N_DELAY},
    {.in = "NOTIFY=DELAY,SUCCESS", .err = OKAY, .notify = N_DELAY | N_SUCC},
    {.in = "NOTIFY=Never", .err = OKAY, .notify = N_NEVER},
    {.in = "NOTIFY=NEVER,SUCCESS", .err = E(NOTIFY)},
    {.in = "NOTIFY=SUCCESS,NEVER", .err = E(NOTIFY)},
    {.in = "NOTIFY=NEVER,NEVER", .err = E(NOTIFY)},
    {.in = "NOTIFY=SUCCESS,SUCCESS", .err = E(NOTIFY)},
    {.in = "NOTIFY=", .err = E(VALUE_MISSING)},
    {.in = "NOTIFY", .err = E(VALUE_MISSING)},
    {.in = "NOTIFY=SUCCESS,", .err = E(NOTIFY)},
    {.in = "NOTIFY=,SUCCESS", .err = E(NOTIFY)},
    {.in = "NOTIFY=SUCCESS,,FAILURE", .err = E(NOTIFY)},
    {.in = "NOTIFY=ALWAYS", .err = E(NOTIFY)},
    {.in = "NOTIFY=SUCCESS;FAILURE", .err = E(NOTIFY)},
    {.in = "NOTIFY=NEVER NOTIFY=NEVER", .err = E(DUPLICATE), .bad = "NOTIFY=NEVER"},
    {.in = "NOTIFY=NEVER", .ext_off = SMTP_EXT_DSN, .err = E(NOT_ADVERTISED)},
    {.in = "ORCPT=rfc822;user@example.com", .err = OKAY, .orcpt_type = "rfc822", .orcpt = "user@example.com"},
    {.in = "ORCPT=RFC822;user+2Btag@example.com", .err = OKAY, .orcpt_type = "rfc822", .orcpt = "user+tag@example.com"},
    {.in = "orcpt=Rfc822;x@y", .err = OKAY, .orcpt_type = "rfc822", .orcpt = "x@y"},
    {.in = "ORCPT=rfc822;a;b", .err = OKAY, .orcpt_type = "rfc822", .orcpt = "a;b"},
    {.in = "ORCPT=rfc822;John+20Doe+20<j@x>", .err = OKAY, .orcpt_type = "rfc822", .orcpt = "John Doe <j@x>"},
    {.in = "ORCPT=rfc822;", .err = E(ORCPT)},
    {.in = "ORCPT=rfc822", .err = E(ORCPT)},
    {.in = "ORCPT=;user@x", .err = E(ORCPT)},
    {.in = "ORCPT=x400;foo", .err = E(ORCPT)},
    {.in = "ORCPT=rfc822;a+2", .err = E(ORCPT)},
    {.in = "ORCPT=rfc822;a+2b", .err = E(ORCPT)},
    {.in = "ORCPT=rfc822;a+0Ab", .err = E(ORCPT)},
    {.in = "ORCPT=rfc822;a+00b", .err = E(ORCPT)},
    {.in = "ORCPT=rfc822;+E9", .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;user@example.com", .err = OKAY, .orcpt_type = "utf-8", .orcpt = "user@example.com"},
    {.in = "ORCPT=UTF-8;\\x{E9}@example.com", .err = OKAY, .orcpt_type = "utf-8", .orcpt = "\xc3\xa9@example.com"},
    {.in = "ORCPT=utf-8;\\x{2B}x@y", .err = OKAY, .orcpt_type = "utf-8", .orcpt = "+x@y"},
    {.in = "ORCPT=utf-8;\xc3\xa9@example.com", .err = E(SYNTAX)},
    {.in = "ORCPT=utf-8;\xc3\xa9@example.com", .smtputf8 = 1, .err = OKAY, .orcpt_type = "utf-8", .orcpt = "\xc3\xa9@example.com"},
    {.in = "ORCPT=utf-8;\xc3\xa9@example.com", .smtputf8 = 1, .ext_off = SMTP_EXT_SMTPUTF8, .err = E(SYNTAX)},
    {.in = "ORCPT=utf-8;\xc0\xa9@example.com", .smtputf8 = 1, .err = E(SYNTAX)},
    {.in = "ORCPT=rfc822;\xc3\xa9@example.com", .smtputf8 = 1, .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;a\\x{41}", .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;a+2Bb", .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;\\x{D800}", .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;\\x{0A}", .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;\\x{7F}", .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;\\x{E9", .err = E(ORCPT)},
    {.in = "ORCPT=utf-8;", .err = E(ORCPT)},
    {.in = "ORCPT=rfc822;a@b ORCPT=rfc822;a@b", .err = E(DUPLICATE)},
    {.in = "ORCPT=rfc822;a@b", .ext_off = SMTP_EXT_DSN, .err = E(NOT_ADVERTISED)},
    {.in = "NOTIFY=NEVER ORCPT=rfc822;a@b", .err = OKAY, .notify = N_NEVER, .orcpt_type = "rfc822", .orcpt = "a@b"},
    {.in = "ORCPT=rfc822;a@b NOTIFY=SUCCESS,DELAY ", .err = OKAY, .notify = N_SUCC | N_DELAY, .orcpt_type = "rfc822", .orcpt = "a@b"},
    {.in = "ORCPT=rfc822;a@b NOTIFY=BAD", .err = E(NOTIFY), .bad = "NOTIFY=BAD"},
    {.in = "SIZE=1", .err = E(UNKNOWN)},
    {.in = "BODY=8BITMIME", .err = E(UNKNOWN)},
    {.in = "FOO", .err = E(UNKNOWN)},
    {.in = "NOTIFY=NEVER\0", .len = 13, .err = E(SYNTAX)},
    {.in = "NOTIFY=NEVER\r\n", .err = E(SYNTAX)},
};

/* nz - a printable stand-in for NULL */
static const char *nz(const char *s)
{
    return s ? s : "(none)";
}

/* check_mail - run one MAIL case */
static void check_mail(const struct mcase *c, long idx)
{
    struct smtp_mail_params p;
    size_t len = c->len ? c->len : strlen(c->in);
    enum smtp_param_error err = smtp_mail_params_parse(c->in, len, ALL & ~c->ext_off, &p);

    unit_assert_streq_idx(smtp_param_error_str(err), smtp_param_error_str(c->err), idx);
    if (err == OKAY && c->err == OKAY) {
	unit_assert_idx(p.has_size == (c->has_size != 0), idx);
	unit_assert_idx(p.size == c->size, idx);
	unit_assert_idx(p.body == c->body, idx);
	unit_assert_idx(p.smtputf8 == (c->smtputf8 != 0), idx);
	unit_assert_idx(p.ret == c->ret, idx);
	unit_assert_streq_idx(nz(p.envid), nz(c->envid), idx);
	unit_assert_idx(p.has_auth == (c->auth != 0), idx);
	unit_assert_streq_idx(nz(p.auth), nz(c->auth == 2 ? c->auth_value : NULL), idx);
	unit_assert_idx(p.bad == NULL, idx);
    }
    if (err != OKAY) {
	unit_assert_idx(p.bad != NULL && p.bad >= c->in && p.bad + p.bad_len <= c->in + len, idx);
	unit_assert_idx(p.envid == NULL && p.auth == NULL, idx);
	if (c->bad && p.bad) {
	    char got[200];

	    fmt_buf_or_panic(got, sizeof(got), "%.*s", (int) p.bad_len, p.bad);
	    unit_assert_streq_idx(got, c->bad, idx);
	}
    }
    smtp_mail_params_fini(&p);
}

/* check_rcpt - run one RCPT case */
static void check_rcpt(const struct rcase *c, long idx)
{
    struct smtp_rcpt_params p;
    size_t len = c->len ? c->len : strlen(c->in);
    enum smtp_param_error err = smtp_rcpt_params_parse(c->in, len, ALL & ~c->ext_off,
						       c->smtputf8 != 0, &p);

    unit_assert_streq_idx(smtp_param_error_str(err), smtp_param_error_str(c->err), idx);
    if (err == OKAY && c->err == OKAY) {
	unit_assert_idx(p.notify == c->notify, idx);
	unit_assert_streq_idx(nz(p.orcpt_type), nz(c->orcpt_type), idx);
	unit_assert_streq_idx(nz(p.orcpt), nz(c->orcpt), idx);
	if (c->orcpt)
	    unit_assert_idx(p.orcpt_raw && strstr(c->in, p.orcpt_raw) != NULL, idx);
    }
    if (err != OKAY) {
	unit_assert_idx(p.bad != NULL && p.orcpt == NULL && p.orcpt_type == NULL, idx);
	if (c->bad && p.bad) {
	    char got[200];

	    fmt_buf_or_panic(got, sizeof(got), "%.*s", (int) p.bad_len, p.bad);
	    unit_assert_streq_idx(got, c->bad, idx);
	}
    }
    smtp_rcpt_params_fini(&p);
}

/* long_value - parse "KEY=" + n copies of unit; return the error */
static enum smtp_param_error long_value(const char *key, const char *unit, size_t n, bool rcpt)
{
    struct str *s = str_new(100000);
    enum smtp_param_error err;
    size_t i;

    str_appends_or_panic(s, key);
    for (i = 0; i < n; i++)
	str_appends_or_panic(s, unit);
    if (rcpt) {
	struct smtp_rcpt_params p;

	err = smtp_rcpt_params_parse(str_cstr(s), str_len(s), ALL, false, &p);
	smtp_rcpt_params_fini(&p);
    } else {
	struct smtp_mail_params p;

	err = smtp_mail_params_parse(str_cstr(s), str_len(s), ALL, &p);
	smtp_mail_params_fini(&p);
    }
    str_free(&s);
    return err;
}

int main(void)
{
    size_t i, n;

    unit_begin("MAIL parameters table");
    n = sizeof(mail_cases) / sizeof(mail_cases[0]);
    for (i = 0; i < n; i++)
	check_mail(mail_cases + i, (long) i);
    printf("  (%zu MAIL cases)\n", n);
    unit_end();

    unit_begin("RCPT parameters table");
    n = sizeof(rcpt_cases) / sizeof(rcpt_cases[0]);
    for (i = 0; i < n; i++)
	check_rcpt(rcpt_cases + i, (long) i);
    printf("  (%zu RCPT cases)\n", n);
    unit_end();

    unit_begin("length limits: ENVID 100, AUTH 500, ORCPT 500 decoded octets");
    unit_assert_inteq(long_value("ENVID=", "a", 100, false), OKAY);
    unit_assert_inteq(long_value("ENVID=", "a", 101, false), E(ENVID));
    unit_assert_inteq(long_value("ENVID=", "+41", 100, false), OKAY);
    unit_assert_inteq(long_value("ENVID=", "+41", 101, false), E(ENVID));
    unit_assert_inteq(long_value("AUTH=", "a", 500, false), OKAY);
    unit_assert_inteq(long_value("AUTH=", "a", 501, false), E(AUTH));
    unit_assert_inteq(long_value("ORCPT=rfc822;", "a", 500, true), OKAY);
    unit_assert_inteq(long_value("ORCPT=rfc822;", "a", 501, true), E(ORCPT));
    unit_assert_inteq(long_value("ORCPT=utf-8;", "\\x{E9}", 250, true), OKAY);
    unit_assert_inteq(long_value("ORCPT=utf-8;", "\\x{E9}", 251, true), E(ORCPT));
    unit_assert_inteq(long_value("SIZE=", "1", 20, false), OKAY);
    unit_assert_inteq(long_value("SIZE=", "1", 21, false), E(SIZE));
    unit_assert_inteq(long_value("SIZE=", "0", 20, false), OKAY);
    unit_end();

    unit_begin("parameters after address_parse");
    {
	const char *line = "<a@example.com> SIZE=42 BODY=8BITMIME";
	struct address a;
	struct smtp_mail_params p;

	unit_assert_inteq(address_parse(line, strlen(line), ADDR_PARSE_MAIL, NULL, &a), ADDR_OK);
	unit_assert_inteq(smtp_mail_params_parse(a.rest, a.rest_len, ALL, &p), OKAY);
	unit_assert(p.has_size && p.size == 42 && p.body == SMTP_BODY_8BITMIME);
	smtp_mail_params_fini(&p);
	unit_assert(p.envid == NULL);
	smtp_mail_params_fini(&p);		/* twice is fine */
	address_fini(&a);
    }
    unit_end();

    unit_begin("reply table: 555 5.5.4 unknown/not offered, 501 5.5.4 bad values");
    for (i = 0; i < SMTP_PARAM_ERR_COUNT; i++) {
	struct mail_reply r = smtp_param_error_reply((enum smtp_param_error) i);

	unit_assert_idx(r.enhanced[0] == '0' + r.code / 100, i);
	unit_assert_idx(r.text && r.text[0], i);
	if (i == OKAY)
	    unit_assert_idx(r.code == 250, i);
	else if (i == E(UNKNOWN) || i == E(NOT_ADVERTISED))
	    unit_assert_idx(r.code == 555 && strcmp(r.enhanced, "5.5.4") == 0, i);
	else
	    unit_assert_idx(r.code == 501 && strcmp(r.enhanced, "5.5.4") == 0, i);
    }
    unit_assert_streq(smtp_param_error_reply(E(UNKNOWN)).text, "Unsupported option");
    unit_end();

    return unit_done();
}
