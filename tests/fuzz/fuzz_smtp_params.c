/* fuzz_smtp_params.c - libFuzzer target for lib/mail/smtp_params.c and
 * lib/mail/xtext.c.
 *
 * The first input byte selects the advertised extensions (low 6 bits)
 * and the SMTPUTF8 transaction flag (bit 6); the rest is parsed as MAIL
 * parameters, as RCPT parameters, as xtext and as RFC 6533 utf-8 xtext.
 * Properties checked: decoded values respect their limits; xtext and
 * utf-8-addr-xtext round-trip through their encoders; decoded
 * utf-8-addr-xtext is valid UTF-8. A violated property aborts. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "mem.h"
#include "str.h"

/* mail */
#include "smtp_params.h"
#include "xtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_mail_params mp;
    struct smtp_rcpt_params rp;
    enum smtp_param_error err;
    struct str *dec, *enc, *back;
    const char *in, *why;
    unsigned ext;
    bool utf8;
    char *copy;

    if (size < 1)
	return 0;
    ext = data[0] & 0x3f;
    utf8 = (data[0] & 0x40) != 0;
    copy = mem_memdup(data + 1, size - 1);
    in = copy;
    size--;

    err = smtp_mail_params_parse(in, size, ext, &mp);
    check(err >= SMTP_PARAM_OK && err < SMTP_PARAM_ERR_COUNT);
    (void) smtp_param_error_reply(err);
    if (err == SMTP_PARAM_OK) {
	check(mp.bad == NULL);
	check(mp.envid == NULL || strlen(mp.envid) <= SMTP_ENVID_MAX);
	check(mp.auth == NULL || strlen(mp.auth) <= SMTP_AUTH_MAX);
	check(!mp.has_size || (ext & SMTP_EXT_SIZE));
	check(!mp.smtputf8 || (ext & SMTP_EXT_SMTPUTF8));
    } else {
	check(mp.bad >= in && mp.bad + mp.bad_len <= in + size);
    }
    smtp_mail_params_fini(&mp);

    err = smtp_rcpt_params_parse(in, size, ext, utf8, &rp);
    check(err >= SMTP_PARAM_OK && err < SMTP_PARAM_ERR_COUNT);
    if (err == SMTP_PARAM_OK) {
	check(rp.orcpt == NULL || (strlen(rp.orcpt) <= SMTP_ORCPT_MAX && rp.orcpt_type && rp.orcpt_raw));
	check((rp.notify & SMTP_NOTIFY_NEVER) == 0 || rp.notify == SMTP_NOTIFY_NEVER);
	check(rp.orcpt == NULL || utf8_valid(rp.orcpt, strlen(rp.orcpt)));
    }
    smtp_rcpt_params_fini(&rp);

    /* xtext: decode, encode, decode again gives the same octets. */
    dec = str_new(size + 1);
    enc = str_new(3 * size + 1);
    back = str_new(size + 1);
    if (xtext_decode(dec, in, size, &why)) {
	check(xtext_valid(in, size));
	check(xtext_encode(enc, str_cstr(dec), str_len(dec)));
	check(xtext_valid(str_cstr(enc), str_len(enc)));
	check(xtext_decode(back, str_cstr(enc), str_len(enc), &why));
	check(str_len(back) == str_len(dec) && memcmp(str_cstr(back), str_cstr(dec), str_len(dec)) == 0);
    } else {
	check(!xtext_valid(in, size));
    }

    /* utf-8-addr-xtext/unitext: output is UTF-8 and round-trips. */
    str_free(&dec);
    str_free(&enc);
    str_free(&back);
    dec = str_new(4 * size + 1);
    enc = str_new(12 * size + 1);
    back = str_new(4 * size + 1);
    if (xtext_utf8_decode(dec, in, size, utf8, &why)) {
	check(utf8_valid(str_cstr(dec), str_len(dec)));
	if (memchr(str_cstr(dec), 0, str_len(dec)) == NULL) {
	    check(xtext_utf8_encode(enc, str_cstr(dec), str_len(dec)));
	    check(xtext_utf8_decode(back, str_cstr(enc), str_len(enc), false, &why));
	    check(str_len(back) == str_len(dec)
		  && memcmp(str_cstr(back), str_cstr(dec), str_len(dec)) == 0);
	}
    }
    str_free(&dec);
    str_free(&enc);
    str_free(&back);
    mem_free(&copy);
    return 0;
}
