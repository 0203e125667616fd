/* fuzz_address.c - libFuzzer target for lib/mail/address.c.
 *
 * The first input byte selects the address_parse() flags, the rest is
 * the path argument. Beyond "no crash, no leak, no out-of-bounds read"
 * it checks properties: an accepted address has sane fields, and its
 * external form (address_external) parses back to the same local part
 * and domain. The predicates and list/delimiter helpers run on the same
 * bytes. A violated property aborts. Build: see README.md. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "mem.h"
#include "str.h"

/* mail */
#include "address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

/* roundtrip - the external form parses back to the same address */
static void roundtrip(const struct address *a, unsigned flags)
{
    struct str *ext = str_new(4096);
    struct address b;

    check(str_try_appendc(ext, '<'));
    check(address_external(ext, a));
    check(str_try_appendc(ext, '>'));
    check(address_parse(str_cstr(ext), str_len(ext), flags & ~ADDR_PARSE_NO_BRACKETS,
			NULL, &b) == ADDR_OK);
    check(strcmp(a->localpart, b.localpart) == 0);
    check(strcmp(a->domain_lc, b.domain_lc) == 0);
    check((a->flags & (ADDR_FLAG_NULL | ADDR_FLAG_POSTMASTER | ADDR_FLAG_LITERAL))
	  == (b.flags & (ADDR_FLAG_NULL | ADDR_FLAG_POSTMASTER | ADDR_FLAG_LITERAL)));
    address_fini(&b);
    str_free(&ext);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in;
    unsigned flags;
    struct address a;
    enum address_error err;
    size_t base_len;
    const char *ext;
    char *copy;

    if (size < 1)
	return 0;
    flags = data[0] & (ADDR_PARSE_MAIL | ADDR_PARSE_RCPT | ADDR_PARSE_SMTPUTF8
		       | ADDR_PARSE_NO_BRACKETS);
    /* An exact-size heap copy, so that ASan sees any read past the end. */
    copy = mem_memdup(data + 1, size - 1);
    in = copy;
    size--;

    err = address_parse(in, size, flags, NULL, &a);
    check(err >= ADDR_OK && err < ADDR_ERR_COUNT);
    (void) address_error_reply(err, ADDR_ROLE_SENDER);
    (void) address_error_str(err);
    if (err == ADDR_OK) {
	check(a.localpart && a.domain && a.domain_lc);
	check(strlen(a.localpart) <= ADDR_LOCALPART_MAX);
	check(strlen(a.domain) <= ADDR_DOMAIN_MAX);
	check(strlen(a.domain) == strlen(a.domain_lc));
	check(a.rest >= in && a.rest + a.rest_len == in + size);
	check(!(flags & ADDR_PARSE_SMTPUTF8) ? !(a.flags & ADDR_FLAG_UTF8) : 1);
	if (!(a.flags & (ADDR_FLAG_NULL | ADDR_FLAG_POSTMASTER)))
	    check(a.domain[0] != 0);
	roundtrip(&a, flags);
	(void) address_is_percent_hack(a.localpart);
	(void) address_has_bang_path(a.localpart);
	if (address_split_delimiter(a.localpart, "+-", &base_len, &ext))
	    check(base_len > 0 && base_len < strlen(a.localpart));
	(void) domain_in_list(a.domain, "example.com, .example.org", DOMAIN_MATCH_PARENT);
	(void) domain_is_fqdn(a.domain);
    }
    address_fini(&a);

    /* The predicates must agree with each other on the raw bytes. */
    if (valid_domain(in, size, flags))
	check(valid_hostname(in, size, flags));
    if (valid_literal(in, size) && size <= ADDR_DOMAIN_MAX)
	check(valid_hostname(in, size, flags));
    if (valid_localpart(in, size, flags)) {
	struct str *unq = str_new(1000), *q = str_new(1000);

	check(address_unquote(unq, in, size, (flags & ADDR_PARSE_SMTPUTF8) != 0));
	check(address_quote(q, str_cstr(unq), str_len(unq), (flags & ADDR_PARSE_SMTPUTF8) != 0));
	check(valid_localpart(str_cstr(q), str_len(q), flags));
	str_free(&unq);
	str_free(&q);
    }
    mem_free(&copy);
    return 0;
}
