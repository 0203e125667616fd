/* test-address.c - unit tests for address.c: the MAIL FROM/RCPT TO path
 * parser, quoting, the reply table and the named predicates. */

#include <stdio.h>
#include <string.h>

/* base */
#include "mem.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "address.h"

#define M	ADDR_PARSE_MAIL
#define R	ADDR_PARSE_RCPT
#define U	ADDR_PARSE_SMTPUTF8
#define NB	ADDR_PARSE_NO_BRACKETS

#define F_NULL	ADDR_FLAG_NULL
#define F_PM	ADDR_FLAG_POSTMASTER
#define F_SR	ADDR_FLAG_SOURCE_ROUTE
#define F_LIT	ADDR_FLAG_LITERAL
#define F_UTF8	ADDR_FLAG_UTF8
#define F_Q	ADDR_FLAG_QUOTED
#define F_NB	ADDR_FLAG_NO_BRACKETS

struct acase {
    const char *in;
    size_t len;				/* 0: strlen(in) */
    unsigned pflags;
    enum address_error err;
    const char *local;			/* expected results when err == ADDR_OK */
    const char *domain;
    unsigned rflags;
    const char *rest;
};

#define OK(in, pf, lp, dom, rf, rest)	{in, 0, pf, ADDR_OK, lp, dom, rf, rest}
#define BAD(in, pf, e)			{in, 0, pf, ADDR_ERR_##e, NULL, NULL, 0, NULL}
#define BADN(in, pf, e)			{in, sizeof(in) - 1, pf, ADDR_ERR_##e, NULL, NULL, 0, NULL}
#define OKN(in, pf, lp, dom, rf, rest)	{in, sizeof(in) - 1, pf, ADDR_OK, lp, dom, rf, rest}

static const struct acase cases[] = {
    /* plain addresses */
    OK("<user@example.com>", R, "user", "example.com", 0, ""),
    OK("<User.Name@Example.COM>", R, "User.Name", "Example.COM", 0, ""),
    OK("<a@b.c>", R, "a", "b.c", 0, ""),
    OK("<x@localhost>", R, "x", "localhost", 0, ""),
    OK("<a@b>", M, "a", "b", 0, ""),
    OK("<a@b-c>", M, "a", "b-c", 0, ""),
    OK("<first.last+tag@sub.example.co.uk>", R, "first.last+tag", "sub.example.co.uk", 0, ""),
    OK("<!#$%&'*+-/=?^_`{|}~@example.com>", R, "!#$%&'*+-/=?^_`{|}~", "example.com", 0, ""),
    OK("<user@xn--bcher-kva.example>", R, "user", "xn--bcher-kva.example", 0, ""),
    OK("<user@a-b.c-d.e>", R, "user", "a-b.c-d.e", 0, ""),
    OK("<user@123.example>", R, "user", "123.example", 0, ""),
    OK("<user@3com.com>", R, "user", "3com.com", 0, ""),
    OK("<user@example.c0m>", R, "user", "example.c0m", 0, ""),
    OK("<user@EXAMPLE.com>", M, "user", "EXAMPLE.com", 0, ""),
    OK("<a-@b.c>", M, "a-", "b.c", 0, ""),
    OK("<0@0.a>", M, "0", "0.a", 0, ""),
    OK("<user@example.com>", M | R, "user", "example.com", 0, ""),
    OK("<user@example.com>", 0, "user", "example.com", 0, ""),
    /* leading and trailing space, parameters */
    OK(" <user@example.com>", R, "user", "example.com", 0, ""),
    OK("   <user@example.com>", R, "user", "example.com", 0, ""),
    OK("<user@example.com> ", R, "user", "example.com", 0, ""),
    OK("<user@example.com>   SIZE=1", M, "user", "example.com", 0, "SIZE=1"),
    OK("<user@example.com> SIZE=1 BODY=8BITMIME", M, "user", "example.com", 0, "SIZE=1 BODY=8BITMIME"),
    OK("<user@example.com> <other@example.com>", R, "user", "example.com", 0, "<other@example.com>"),
    OK("<user@example.com> NOTIFY=NEVER ", R, "user", "example.com", 0, "NOTIFY=NEVER "),
    BAD("<user@example.com>SIZE=1", M, SYNTAX),
    BAD("<user@example.com>\t", M, SYNTAX),
    BAD("<user@example.com>>", M, SYNTAX),
    BAD("<user@example.com>\r\n", M, SYNTAX),
    BAD("<user@example.com >", R, DOMAIN),
    BAD("< user@example.com>", R, LOCALPART),
    BAD("<user @example.com>", R, LOCALPART),
    BAD("<user@ example.com>", R, DOMAIN),
    BAD("\t<user@example.com>", R, NO_BRACKETS),
    BAD("<user@example.com SIZE=1", M, DOMAIN),
    /* null sender */
    OK("<>", M, "", "", F_NULL, ""),
    OK("<> SIZE=100", M, "", "", F_NULL, "SIZE=100"),
    OK(" <>", M, "", "", F_NULL, ""),
    OK("<>  ", M, "", "", F_NULL, ""),
    BAD("<>", R, NULL_NOT_ALLOWED),
    BAD("<>", 0, NULL_NOT_ALLOWED),
    BAD("<>x", M, SYNTAX),
    BAD("<>>", M, SYNTAX),
    BAD("<<>>", M, LOCALPART),
    BAD("<<>>", R, LOCALPART),
    BAD("<<user@example.com>>", R, LOCALPART),
    BAD("<", M, SYNTAX),
    BAD(">", M, NO_BRACKETS),
    OK("<> <>", M, "", "", F_NULL, "<>"),
    /* empty, missing brackets */
    BAD("", M, EMPTY),
    BAD("   ", M, EMPTY),
    BAD("", R | NB, EMPTY),
    BAD("user@example.com", R, NO_BRACKETS),
    BAD("user@example.com", M, NO_BRACKETS),
    OK("user@example.com", R | NB, "user", "example.com", F_NB, ""),
    OK("user@example.com SIZE=10", M | NB, "user", "example.com", F_NB, "SIZE=10"),
    OK("\"a b\"@example.com BODY=8BITMIME", M | NB, "a b", "example.com", F_NB | F_Q, "BODY=8BITMIME"),
    OK(" user@example.com", M | NB, "user", "example.com", F_NB, ""),
    OK("<user@example.com>", R | NB, "user", "example.com", 0, ""),
    OK("<>", M | NB, "", "", F_NULL, ""),
    OK("postmaster", R | NB, "postmaster", "", F_PM | F_NB, ""),
    BAD("<user@example.com", R, SYNTAX),
    BAD("<user@example.com", R | NB, SYNTAX),
    BAD("<user", R, SYNTAX),
    BAD("<user@", R, NO_DOMAIN),
    BAD("user@example.com>", R | NB, DOMAIN),
    BAD("user", M | NB, NO_DOMAIN),
    BAD("user@", M | NB, NO_DOMAIN),
    /* quoted local parts */
    OK("<\"john doe\"@example.com>", R, "john doe", "example.com", F_Q, ""),
    OK("<\"a\\\"b\"@example.com>", R, "a\"b", "example.com", F_Q, ""),
    OK("<\"a\\\\b\"@example.com>", R, "a\\b", "example.com", F_Q, ""),
    OK("<\"\"@example.com>", R, "", "example.com", F_Q, ""),
    OK("<\"a@b\"@example.com>", R, "a@b", "example.com", F_Q, ""),
    OK("<\"a>b\"@example.com>", R, "a>b", "example.com", F_Q, ""),
    OK("<\"a b\"@[192.0.2.1]>", R, "a b", "[192.0.2.1]", F_Q | F_LIT, ""),
    OK("<\"a\\b\"@example.com>", R, "ab", "example.com", F_Q, ""),
    OK("<\"first.last\"@example.com>", R, "first.last", "example.com", F_Q, ""),
    OK("<\"a..b\"@example.com>", R, "a..b", "example.com", F_Q, ""),
    OK("<\".a\"@example.com>", R, ".a", "example.com", F_Q, ""),
    OK("<\"(comment)\"@example.com>", R, "(comment)", "example.com", F_Q, ""),
    OK("<\" \"@example.com>", R, " ", "example.com", F_Q, ""),
    OK("<\"a\\ b\"@example.com>", R, "a b", "example.com", F_Q, ""),
    OK("<\"a,b:c;d\"@example.com>", R, "a,b:c;d", "example.com", F_Q, ""),
    BAD("<\"unterminated@example.com>", R, LOCALPART),
    BAD("<\"a\"b@example.com>", R, LOCALPART),
    BAD("<\"a\\\"@example.com>", R, LOCALPART),
    BAD("<\"a\tb\"@example.com>", R, LOCALPART),
    BAD("<\"a\\\tb\"@example.com>", R, LOCALPART),
    BAD("<\"\x01\"@x.com>", R, LOCALPART),
    BAD("<\"a\x7f\"@x.com>", R, LOCALPART),
    BAD("<\"a\\\x7f\"@x.com>", R, LOCALPART),
    BAD("<a\"b\"@example.com>", R, LOCALPART),
    BAD("<\"a\".b@example.com>", R, LOCALPART),
    BAD("<\"a\">", R, NO_DOMAIN),
    BAD("<\"a\"@>", R, NO_DOMAIN),
    BAD("<\"\\", R, LOCALPART),
    /* dot-string errors */
    BAD("<.user@example.com>", R, LOCALPART),
    BAD("<user.@example.com>", R, LOCALPART),
    BAD("<us..er@example.com>", R, LOCALPART),
    BAD("<.@example.com>", R, LOCALPART),
    BAD("<us er@example.com>", R, LOCALPART),
    BAD("<us(er@example.com>", R, LOCALPART),
    BAD("<us)er@example.com>", R, LOCALPART),
    BAD("<us,er@example.com>", R, LOCALPART),
    BAD("<us;er@example.com>", R, LOCALPART),
    BAD("<us:er@example.com>", R, LOCALPART),
    BAD("<us\\er@example.com>", R, LOCALPART),
    BAD("<us[er@example.com>", R, LOCALPART),
    BAD("<us]er@example.com>", R, LOCALPART),
    BAD("<us<er@example.com>", R, LOCALPART),
    BAD("<us\x01er@example.com>", R, LOCALPART),
    BAD("<us\x7f""er@example.com>", R, LOCALPART),
    BAD("<a\"b@example.com>", R, LOCALPART),
    /* domain errors */
    BAD("<user@@example.com>", R, DOMAIN),
    BAD("<user@foreign@example.com>", R, DOMAIN),
    BAD("<user@exa mple.com>", R, DOMAIN),
    BAD("<user@example..com>", R, DOMAIN),
    BAD("<user@.example.com>", R, DOMAIN),
    BAD("<user@example.com.>", R, DOMAIN),
    BAD("<user@.>", R, DOMAIN),
    BAD("<user@-example.com>", R, DOMAIN),
    BAD("<user@example-.com>", R, DOMAIN),
    BAD("<user@a.-b.com>", R, DOMAIN),
    BAD("<user@exa_mple.com>", R, DOMAIN),
    BAD("<user@exa/mple.com>", R, DOMAIN),
    BAD("<user@1.2.3.4>", R, DOMAIN),
    BAD("<user@example.123>", R, DOMAIN),
    BAD("<user@123>", R, DOMAIN),
    BAD("<a@-->", R, DOMAIN),
    BAD("<user@exam\x7fple.com>", R, DOMAIN),
    BAD("<user@example.com\x01>", R, DOMAIN),
    BAD("<user@>", R, NO_DOMAIN),
    BAD("<user>", R, NO_DOMAIN),
    BAD("<user>", M, NO_DOMAIN),
    /* postmaster */
    OK("<postmaster>", R, "postmaster", "", F_PM, ""),
    OK("<PostMaster>", R, "PostMaster", "", F_PM, ""),
    OK("<POSTMASTER> NOTIFY=NEVER", R, "POSTMASTER", "", F_PM, "NOTIFY=NEVER"),
    OK("<postmaster@example.com>", R, "postmaster", "example.com", 0, ""),
    BAD("<postmaster>", M, NO_DOMAIN),
    BAD("<postmasters>", R, NO_DOMAIN),
    BAD("<\"postmaster\">", R, NO_DOMAIN),
    BAD("<@a.example:postmaster>", R, NO_DOMAIN),
    BAD("<postmaster@>", R, NO_DOMAIN),
    /* source routes */
    OK("<@a.example:user@example.com>", R, "user", "example.com", F_SR, ""),
    OK("<@a.example,@b.example:user@example.com>", R, "user", "example.com", F_SR, ""),
    OK("<@a.example,@b.example:\"q u\"@example.com>", R, "q u", "example.com", F_SR | F_Q, ""),
    OK("<@a.example:user@[10.0.0.1]> SIZE=5", M, "user", "[10.0.0.1]", F_SR | F_LIT, "SIZE=5"),
    BAD("<@a.example,b.example:user@example.com>", R, ROUTE),
    BAD("<@a.example:>", R, LOCALPART),
    BAD("<@:user@example.com>", R, ROUTE),
    BAD("<@a..b:user@example.com>", R, ROUTE),
    BAD("<@[1.2.3.4]:user@example.com>", R, ROUTE),
    BAD("<@a.example;user@example.com>", R, ROUTE),
    BAD("<@a.example,:user@example.com>", R, ROUTE),
    BAD("<@a_b.example:user@example.com>", R, ROUTE),
    BAD("<@a.example:@b.example:user@x.com>", R, LOCALPART),
    BAD("<@example.com>", R, ROUTE),
    BAD("<@>", R, ROUTE),
    BAD("<@", R, ROUTE),
    /* percent hack and bang path parse as plain addresses */
    OK("<user%foreign@example.com>", R, "user%foreign", "example.com", 0, ""),
    OK("<foreign!user@example.com>", R, "foreign!user", "example.com", 0, ""),
    OK("<\"user%foreign\"@example.com>", R, "user%foreign", "example.com", F_Q, ""),
    /* IPv4 literals */
    OK("<user@[192.0.2.1]>", R, "user", "[192.0.2.1]", F_LIT, ""),
    OK("<user@[0.0.0.0]>", R, "user", "[0.0.0.0]", F_LIT, ""),
    OK("<user@[255.255.255.255]>", R, "user", "[255.255.255.255]", F_LIT, ""),
    OK("<user@[001.002.003.004]>", R, "user", "[001.002.003.004]", F_LIT, ""),
    BAD("<user@[1.2.3]>", R, LITERAL),
    BAD("<user@[1.2.3.4.5]>", R, LITERAL),
    BAD("<user@[256.1.1.1]>", R, LITERAL),
    BAD("<user@[1.2.3.0004]>", R, LITERAL),
    BAD("<user@[1.2.3.-4]>", R, LITERAL),
    BAD("<user@[ 1.2.3.4]>", R, LITERAL),
    BAD("<user@[1.2.3.4 ]>", R, LITERAL),
    BAD("<user@[1..3.4]>", R, LITERAL),
    BAD("<user@[1.2.3.4.]>", R, LITERAL),
    BAD("<user@[]>", R, LITERAL),
    BAD("<user@[1.2.3.4>", R, LITERAL),
    BAD("<user@[1.2.3.4]x>", R, SYNTAX),
    BAD("<user@[1.2.3.4].com>", R, SYNTAX),
    BAD("<user@[1.2.3.4]", R, SYNTAX),
    BAD("<user@1.2.3.4]>", R, DOMAIN),
    /* IPv6 literals */
    OK("<user@[IPv6:2001:db8::1]>", R, "user", "[IPv6:2001:db8::1]", F_LIT, ""),
    OK("<user@[IPv6:::1]>", R, "user", "[IPv6:::1]", F_LIT, ""),
    OK("<user@[IPv6:::]>", R, "user", "[IPv6:::]", F_LIT, ""),
    OK("<user@[IPv6:1:2:3:4:5:6:7:8]>", R, "user", "[IPv6:1:2:3:4:5:6:7:8]", F_LIT, ""),
    OK("<user@[IPv6:1:2:3:4:5:6::]>", R, "user", "[IPv6:1:2:3:4:5:6::]", F_LIT, ""),
    OK("<user@[IPv6:::1:2:3:4:5:6]>", R, "user", "[IPv6:::1:2:3:4:5:6]", F_LIT, ""),
    OK("<user@[IPv6:1:2:3::4:5:6]>", R, "user", "[IPv6:1:2:3::4:5:6]", F_LIT, ""),
    OK("<user@[IPv6:2001:DB8:0:0:8:800:200C:417A]>", R, "user", "[IPv6:2001:DB8:0:0:8:800:200C:417A]", F_LIT, ""),
    OK("<user@[IPv6:FF01::101]>", R, "user", "[IPv6:FF01::101]", F_LIT, ""),
    OK("<user@[ipv6:2001:DB8::1]>", R, "user", "[ipv6:2001:DB8::1]", F_LIT, ""),
    OK("<user@[IPv6:::ffff:192.0.2.1]>", R, "user", "[IPv6:::ffff:192.0.2.1]", F_LIT, ""),
    OK("<user@[IPv6:::13.1.68.3]>", R, "user", "[IPv6:::13.1.68.3]", F_LIT, ""),
    OK("<user@[IPv6:0:0:0:0:0:0:13.1.68.3]>", R, "user", "[IPv6:0:0:0:0:0:0:13.1.68.3]", F_LIT, ""),
    OK("<user@[IPv6:1:2:3:4::1.2.3.4]>", R, "user", "[IPv6:1:2:3:4::1.2.3.4]", F_LIT, ""),
    OK("<user@[IPv6:1::2:1.2.3.4]>", R, "user", "[IPv6:1::2:1.2.3.4]", F_LIT, ""),
    OK("<user@[IPv6:0000:ffff::0]>", R, "user", "[IPv6:0000:ffff::0]", F_LIT, ""),
    BAD("<user@[IPv6:1:2:3:4:5:6:7::]>", R, LITERAL),
    BAD("<user@[IPv6:::1:2:3:4:5:6:7]>", R, LITERAL),
    BAD("<user@[IPv6:1:2:3:4:5:6:7:8::]>", R, LITERAL),
    BAD("<user@[IPv6:1:2:3:4:5:1.2.3.4]>", R, LITERAL),
    BAD("<user@[IPv6:1:2:3:4:5::1.2.3.4]>", R, LITERAL),
    BAD("<user@[IPv6:1:2:3:4:5:6:7:1.2.3.4]>", R, LITERAL),
    BAD("<user@[IPv6:12345::1]>", R, LITERAL),
    BAD("<user@[IPv6:1::2::3]>", R, LITERAL),
    BAD("<user@[IPv6:::::1]>", R, LITERAL),
    BAD("<user@[IPv6::::1]>", R, LITERAL),
    BAD("<user@[IPv6:1:2:3:4:5:6:7]>", R, LITERAL),
    BAD("<user@[IPv6:1:2:3:4:5:6:7:8:9]>", R, LITERAL),
    BAD("<user@[IPv6:g::1]>", R, LITERAL),
    BAD("<user@[IPv6:]>", R, LITERAL),
    BAD("<user@[IPv6::1]>", R, LITERAL),
    BAD("<user@[IPv6:1:]>", R, LITERAL),
    OK("<user@[IPv6:1::]>", R, "user", "[IPv6:1::]", F_LIT, ""),
    BAD("<user@[IPv6:::1.2.3.256]>", R, LITERAL),
    BAD("<user@[IPv6:1.2.3.4::1]>", R, LITERAL),
    BAD("<user@[IPv6:1.2.3.4]>", R, LITERAL),
    BAD("<user@[IPv6:::1 ]>", R, LITERAL),
    BAD("<user@[IPv6:1:2:3:4:5:6:7:8]x>", R, SYNTAX),
    BAD("<user@[IPv6:::1]", R, SYNTAX),
    BAD("<user@[IPv6:::1>", R, LITERAL),
    /* general address literals */
    OK("<user@[x-tag:content]>", R, "user", "[x-tag:content]", F_LIT, ""),
    OK("<user@[a:!~>]>", R, "user", "[a:!~>]", F_LIT, ""),
    OK("<user@[tag:a:b:c]>", R, "user", "[tag:a:b:c]", F_LIT, ""),
    BAD("<user@[x-:content]>", R, LITERAL),
    BAD("<user@[:content]>", R, LITERAL),
    BAD("<user@[tag:]>", R, LITERAL),
    BAD("<user@[tag:a[b]>", R, LITERAL),
    BAD("<user@[tag:a b]>", R, LITERAL),
    BAD("<user@[tag:a\\b]>", R, LITERAL),
    BAD("<user@[t_g:ab]>", R, LITERAL),
    /* "@" in a literal: RFC 5321 dcontent allows it, but then "the domain
     * is after the last @" would not hold (docs/addresses.md) */
    BAD("<x@[t:y@localhost]>", R, LITERAL),
    BAD("<x@[t:@]>", R, LITERAL),
    BAD("<\"a@b\"@[t:y@z]>", R, LITERAL),
    OK("<\"a@b\"@[t:yz]>", R, "a@b", "[t:yz]", F_LIT | F_Q, ""),
    /* 8-bit and SMTPUTF8 */
    BAD("<j\xc3\xb6rg@example.com>", R, 8BIT),
    BAD("<j\xc3\xb6rg@example.com>", M, 8BIT),
    OK("<j\xc3\xb6rg@example.com>", R | U, "j\xc3\xb6rg", "example.com", F_UTF8, ""),
    BAD("<user@b\xc3\xbc""cher.example>", R, 8BIT),
    OK("<user@b\xc3\xbc""cher.example>", R | U, "user", "b\xc3\xbc""cher.example", F_UTF8, ""),
    OK("<\"j\xc3\xb6rg\"@example.com>", R | U, "j\xc3\xb6rg", "example.com", F_UTF8 | F_Q, ""),
    BAD("<\"j\xc3\xb6rg\"@example.com>", R, 8BIT),
    OK("<\xe2\x82\xac@\xe2\x82\xac.example>", M | U, "\xe2\x82\xac", "\xe2\x82\xac.example", F_UTF8, ""),
    OK("<user@\xc3\xa9>", M | U, "user", "\xc3\xa9", F_UTF8, ""),
    OK("<user@example.com>", R | U, "user", "example.com", 0, ""),
    OK("<@\xc3\xa9.example:u@x.com>", R | U, "u", "x.com", F_SR | F_UTF8, ""),
    BAD("<@\xc3\xa9.example:u@x.com>", R, ROUTE),
    BAD("<j\xc0\xb6rg@example.com>", R | U, UTF8),
    BAD("<j\xc1\x81rg@example.com>", R | U, UTF8),
    BAD("<j\xe0\x80\xafrg@example.com>", R | U, UTF8),
    BAD("<j\xed\xa0\x80rg@example.com>", R | U, UTF8),
    BAD("<\xf4\x90\x80\x80@x.com>", R | U, UTF8),
    BAD("<\xc3@example.com>", R | U, UTF8),
    BAD("<\x80@example.com>", R | U, UTF8),
    BAD("<\xff@example.com>", R | U, UTF8),
    BAD("<user@ex\xe2\x82""ample.com>", R | U, UTF8),
    BAD("<\"\xc3\"@example.com>", R | U, UTF8),
    BAD("<user@[IPv6:\xc3\xb6::1]>", R | U, LITERAL),
    BAD("<user@[\xc3\xb6:x]>", R | U, LITERAL),
    BAD("<\xc3\xb6@example.com>", R, 8BIT),
    BAD("<user@\xc3\xb6>", M, 8BIT),
    /* NUL bytes */
    BADN("<us\0er@example.com>", R, LOCALPART),
    BADN("<user@exa\0mple.com>", R, DOMAIN),
    BADN("<user@example.com>\0", R, SYNTAX),
    BADN("<\"us\0er\"@example.com>", R, LOCALPART),
    BADN("\0<user@example.com>", R, NO_BRACKETS),
    BADN("<\0>", M, LOCALPART),
    BADN("<user@[1.2.3.4\0]>", R, LITERAL),
    BADN("<@a\0b:user@example.com>", R, ROUTE),
    OKN("<user@example.com> SIZE=1\0", M, "user", "example.com", 0, "SIZE=1"),
};

/* check_case - run one table case */
static void check_case(const struct acase *c, long idx)
{
    struct address a;
    enum address_error err;
    size_t len = c->len ? c->len : strlen(c->in);

    err = address_parse(c->in, len, c->pflags, NULL, &a);
    unit_assert_streq_idx(address_error_str(err), address_error_str(c->err), idx);
    if (err == ADDR_OK && c->err == ADDR_OK) {
	unit_assert_streq_idx(a.localpart, c->local, idx);
	unit_assert_streq_idx(a.domain, c->domain, idx);
	if (a.flags != c->rflags)
	    unit_fail_at(__FILE__, __LINE__, "case %ld: flags: got 0x%x, want 0x%x",
			 idx, a.flags, c->rflags);
	/* rest: compare as C text (the NUL case compares the prefix) */
	unit_assert_idx(a.rest >= c->in && a.rest + a.rest_len == c->in + len, idx);
	if (strlen(c->rest) == a.rest_len || memchr(a.rest, 0, a.rest_len))
	    unit_assert_streq_idx(a.rest, c->rest, idx);
	else
	    unit_fail_at(__FILE__, __LINE__, "case %ld: rest: got \"%.*s\", want \"%s\"",
			 idx, (int) a.rest_len, a.rest, c->rest);
    }
    if (err != ADDR_OK)
	unit_assert_idx(a.localpart == NULL && a.domain == NULL && a.route == NULL, idx);
    address_fini(&a);
}

/* repeat - a string of n copies of c */
static char *repeat(char c, size_t n)
{
    char *s = mem_alloc(n + 1);

    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* domain_of - a valid domain name of exactly n octets (n >= 3) */
static char *domain_of(size_t n)
{
    char *s = repeat('a', n);
    size_t i;

    /* labels of 50 "a" separated by dots, ending in a letter */
    for (i = 50; i < n - 1; i += 51)
	s[i] = '.';
    return s;
}

struct lcase {
    size_t local_len;			/* "a" repeated (quoted: len includes quotes) */
    bool quoted;
    size_t domain_len;
    bool literal;			/* general literal of domain_len octets */
    struct address_limits lim;
    unsigned pflags;
    enum address_error err;
};

static const struct lcase length_cases[] = {
    {64, false, 10, false, {0, 0, 0}, R, ADDR_OK},
    {65, false, 10, false, {0, 0, 0}, R, ADDR_ERR_LOCALPART_TOO_LONG},
    {64, true, 10, false, {0, 0, 0}, R, ADDR_OK},
    {65, true, 10, false, {0, 0, 0}, R, ADDR_ERR_LOCALPART_TOO_LONG},
    {1000, false, 10, false, {0, 0, 0}, R, ADDR_ERR_LOCALPART_TOO_LONG},
    {10, false, 10, false, {10, 0, 0}, R, ADDR_OK},
    {11, false, 10, false, {10, 0, 0}, R, ADDR_ERR_LOCALPART_TOO_LONG},
    {100, false, 10, false, {200, 0, 0}, R, ADDR_OK},
    /* path: "<" local "@" domain ">" */
    {64, false, 189, false, {0, 0, 0}, R, ADDR_OK},		/* 256 */
    {64, false, 190, false, {0, 0, 0}, R, ADDR_ERR_PATH_TOO_LONG},	/* 257 */
    {1, false, 252, false, {0, 0, 0}, R, ADDR_OK},		/* 256 */
    {1, false, 253, false, {0, 0, 0}, R, ADDR_ERR_PATH_TOO_LONG},
    {64, false, 189, false, {0, 0, 0}, R | NB, ADDR_OK},	/* 254 + 2 */
    {64, false, 190, false, {0, 0, 0}, R | NB, ADDR_ERR_PATH_TOO_LONG},
    {10, false, 11, false, {0, 0, 24}, R, ADDR_OK},		/* 24 */
    {10, false, 12, false, {0, 0, 24}, R, ADDR_ERR_PATH_TOO_LONG},
    /* domain names: 253 octets in text form at most */
    {1, false, 253, false, {0, 0, 1000}, R, ADDR_OK},
    {1, false, 254, false, {0, 0, 1000}, R, ADDR_ERR_DOMAIN_TOO_LONG},
    {1, false, 255, false, {0, 0, 1000}, R, ADDR_ERR_DOMAIN_TOO_LONG},
    {1, false, 256, false, {0, 0, 1000}, R, ADDR_ERR_DOMAIN_TOO_LONG},
    {1, false, 300, false, {0, 400, 1000}, R, ADDR_ERR_DOMAIN_TOO_LONG},
    {1, false, 20, false, {0, 20, 0}, R, ADDR_OK},
    {1, false, 21, false, {0, 20, 0}, R, ADDR_ERR_DOMAIN_TOO_LONG},
    /* general literals: up to domain_max (255) */
    {1, false, 255, true, {0, 0, 1000}, R, ADDR_OK},
    {1, false, 256, true, {0, 0, 1000}, R, ADDR_ERR_DOMAIN_TOO_LONG},
    {1, false, 252, true, {0, 0, 0}, R, ADDR_OK},
    {1, false, 253, true, {0, 0, 0}, R, ADDR_ERR_PATH_TOO_LONG},
};

/* check_length_case - build and parse one length case */
static void check_length_case(const struct lcase *c, long idx)
{
    struct str *in = str_new(100000);
    struct address a;
    enum address_error err;
    char *p;

    str_appendc_or_panic(in, '<');
    if (c->quoted) {
	str_appendc_or_panic(in, '"');
	p = repeat('q', c->local_len - 2);
	str_appends_or_panic(in, p);
	str_appendc_or_panic(in, '"');
    } else {
	p = repeat('a', c->local_len);
	str_appends_or_panic(in, p);
    }
    mem_free(&p);
    str_appendc_or_panic(in, '@');
    if (c->literal) {
	p = repeat('x', c->domain_len);
	memcpy(p, "[t:", 3);
	p[c->domain_len - 1] = ']';
    } else {
	p = domain_of(c->domain_len);
    }
    str_appends_or_panic(in, p);
    mem_free(&p);
    str_appendc_or_panic(in, '>');
    if (c->pflags & NB) {
	/* strip the brackets */
	memmove(in->data, in->data + 1, in->len - 2);
	str_truncate(in, in->len - 2);
    }
    err = address_parse(str_cstr(in), str_len(in), c->pflags, &c->lim, &a);
    unit_assert_streq_idx(address_error_str(err), address_error_str(c->err), idx);
    if (err == ADDR_OK)
	unit_assert_idx(strlen(a.domain) == c->domain_len, idx);
    address_fini(&a);
    str_free(&in);
}

struct pcase {
    const char *in;
    unsigned flags;
    int valid;
};

static const struct pcase hostname_cases[] = {
    {"mail.example.com", 0, 1},
    {"localhost", 0, 1},
    {"MAIL.Example.COM", 0, 1},
    {"a", 0, 1},
    {"xn--bcher-kva.de", 0, 1},
    {"[192.0.2.1]", 0, 1},
    {"[IPv6:::1]", 0, 1},
    {"[IPv6:2001:db8::25]", 0, 1},
    {"[tag:x]", 0, 1},
    {"1.2.3.4", 0, 0},
    {"192.0.2.1", 0, 0},
    {"", 0, 0},
    {".", 0, 0},
    {"exa_mple.com", 0, 0},
    {"-a.com", 0, 0},
    {"a-.com", 0, 0},
    {"a..com", 0, 0},
    {"a.com.", 0, 0},
    {".a.com", 0, 0},
    {"mail example", 0, 0},
    {"[1.2.3.4", 0, 0},
    {"1.2.3.4]", 0, 0},
    {"[300.1.1.1]", 0, 0},
    {"[IPv6:1::2::3]", 0, 0},
    {"b\xc3\xbc""cher.de", 0, 0},
    {"b\xc3\xbc""cher.de", U, 1},
    {"b\xc0\xbc""cher.de", U, 0},
    {"user@example.com", 0, 0},
    {"example.com\r", 0, 0},
    {"*.example.com", 0, 0},
};

static const struct pcase localpart_cases[] = {
    {"user", 0, 1},
    {"first.last", 0, 1},
    {"\"john doe\"", 0, 1},
    {"\"\"", 0, 1},
    {"\"a\\\"b\"", 0, 1},
    {"a+b", 0, 1},
    {"", 0, 0},
    {".user", 0, 0},
    {"user.", 0, 0},
    {"a..b", 0, 0},
    {"john doe", 0, 0},
    {"\"unterminated", 0, 0},
    {"\"", 0, 0},
    {"a@b", 0, 0},
    {"j\xc3\xb6rg", 0, 0},
    {"j\xc3\xb6rg", U, 1},
    {"j\xed\xa0\x80rg", U, 0},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 1},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 0},
};

struct qcase {
    const char *unquoted;
    bool utf8;
    const char *quoted;			/* NULL: address_quote must fail */
};

static const struct qcase quote_cases[] = {
    {"user", false, "user"},
    {"first.last", false, "first.last"},
    {"a+b=c", false, "a+b=c"},
    {"john doe", false, "\"john doe\""},
    {"a\"b", false, "\"a\\\"b\""},
    {"a\\b", false, "\"a\\\\b\""},
    {"", false, "\"\""},
    {".a", false, "\".a\""},
    {"a.", false, "\"a.\""},
    {"a..b", false, "\"a..b\""},
    {"a@b", false, "\"a@b\""},
    {"a,b", false, "\"a,b\""},
    {"(x)", false, "\"(x)\""},
    {"\"x\"", false, "\"\\\"x\\\"\""},
    {"j\xc3\xb6rg", true, "j\xc3\xb6rg"},
    {"j\xc3\xb6 rg", true, "\"j\xc3\xb6 rg\""},
    {"j\xc3\xb6rg", false, NULL},
    {"a\tb", false, NULL},
    {"a\x7f", false, NULL},
    {"a\rb", false, NULL},
    {"\xc3", true, NULL},
};

struct dcase {
    const char *domain;
    const char *list;
    unsigned flags;
    int match;
};

static const struct dcase list_cases[] = {
    {"example.com", "example.com", 0, 1},
    {"EXAMPLE.com", "example.COM", 0, 1},
    {"sub.example.com", "example.com", 0, 0},
    {"sub.example.com", "example.com", DOMAIN_MATCH_PARENT, 1},
    {"a.b.example.com", "example.com", DOMAIN_MATCH_PARENT, 1},
    {"badexample.com", "example.com", DOMAIN_MATCH_PARENT, 0},
    {"example.com", "sub.example.com", DOMAIN_MATCH_PARENT, 0},
    {"sub.example.com", ".example.com", 0, 1},
    {"example.com", ".example.com", 0, 0},
    {"example.com", ".example.com", DOMAIN_MATCH_PARENT, 0},
    {"c.org", "a.org, b.org\tc.org", 0, 1},
    {"b.org", "a.org,b.org", 0, 1},
    {"d.org", "a.org, b.org, c.org", 0, 0},
    {"", "a.org", 0, 0},
    {"a.org", "", 0, 0},
    {"a.org", " , ,", 0, 0},
    {"example.com", "example.com.au", 0, 0},
    {"example.com.au", "example.com", DOMAIN_MATCH_PARENT, 0},
    {"[192.0.2.1]", "[192.0.2.1]", 0, 1},
    {"x.example.com", "other.org .EXAMPLE.com", 0, 1},
    {"example.com", ".", 0, 0},
};

struct scase {
    const char *local;
    const char *delims;
    const char *base;			/* NULL: no split */
    const char *ext;
};

static const struct scase split_cases[] = {
    {"user+tag", "+", "user", "tag"},
    {"user+tag+more", "+", "user", "tag+more"},
    {"user-tag", "+-", "user", "tag"},
    {"user-a+b", "+-", "user", "a+b"},
    {"user+", "+", "user", ""},
    {"user.tag", "+.", "user", "tag"},
    {"list-foo", "-", "list", "foo"},
    {"user", "+", NULL, NULL},
    {"+tag", "+", NULL, NULL},
    {"user+tag", "", NULL, NULL},
    {"", "+", NULL, NULL},
    {"owner-list", "-", NULL, NULL},
    {"OWNER-list", "-", NULL, NULL},
    {"list-request", "-", NULL, NULL},
    {"owner-list", "+-", NULL, NULL},
    {"owner+list", "+", "owner", "list"},
};

int main(void)
{
    struct str *s = str_new(1000);
    size_t i, n;

    unit_begin("address_parse table");
    n = sizeof(cases) / sizeof(cases[0]);
    for (i = 0; i < n; i++)
	check_case(cases + i, (long) i);
    printf("  (%zu table cases)\n", n);
    unit_end();

    unit_begin("address_parse length limits (64/65, 253/254, 255/256, 256/257)");
    for (i = 0; i < sizeof(length_cases) / sizeof(length_cases[0]); i++)
	check_length_case(length_cases + i, (long) i);
    unit_end();

    unit_begin("label length 63/64");
    {
	char *lab = repeat('b', 64);
	char buf[200];
	struct address a;

	lab[63] = 0;
	unit_assert(fmt_try_buf(buf, sizeof(buf), "<u@%s.com>", lab));
	unit_assert_inteq(address_parse(buf, strlen(buf), R, NULL, &a), ADDR_OK);
	address_fini(&a);
	lab[63] = 'b';
	unit_assert(fmt_try_buf(buf, sizeof(buf), "<u@%s.com>", lab));
	unit_assert_inteq(address_parse(buf, strlen(buf), R, NULL, &a), ADDR_ERR_DOMAIN);
	unit_assert(!valid_hostname(lab, 64, 0));
	unit_assert(valid_hostname(lab, 63, 0));
	mem_free(&lab);
    }
    unit_end();

    unit_begin("address_parse: lower-cased domain, route, rest");
    {
	struct address a;
	const char *in = "<@Relay.Example:User@Mail.EXAMPLE.Com> SIZE=1";

	unit_assert_inteq(address_parse(in, strlen(in), M, NULL, &a), ADDR_OK);
	unit_assert_streq(a.domain, "Mail.EXAMPLE.Com");
	unit_assert_streq(a.domain_lc, "mail.example.com");
	unit_assert_streq(a.route, "@Relay.Example");
	unit_assert_streq(a.localpart, "User");
	unit_assert_inteq(a.rest_len, 6);
	address_fini(&a);
	unit_assert(a.localpart == NULL && a.route == NULL);
	address_fini(&a);			/* twice is fine */
	in = "<u@B\xc3\x9c.Example>";
	unit_assert_inteq(address_parse(in, strlen(in), M | U, NULL, &a), ADDR_OK);
	unit_assert_streq(a.domain_lc, "b\xc3\x9c.example");
	address_fini(&a);
    }
    unit_end();

    unit_begin("address_parse never reads past len");
    {
	/* a path cut at every length must not be accepted as something longer */
	const char *full = "<\"a b\"@[IPv6:2001:db8::1]> SIZE=1";
	size_t cut;

	for (cut = 0; cut < strlen(full); cut++) {
	    char *copy = mem_memdup(full, cut);
	    struct address a;
	    enum address_error err = address_parse(copy, cut, M, NULL, &a);

	    if (cut < 26)
		unit_assert_idx(err != ADDR_OK, cut);
	    address_fini(&a);
	    mem_free(&copy);
	}
    }
    unit_end();

    unit_begin("external form: quote what needs quoting");
    {
	static const char *const ext[][2] = {
	    {"<\"a b\"@Example.com>", "\"a b\"@Example.com"},
	    {"<\"first.last\"@x.org>", "first.last@x.org"},
	    {"<\"a\\b\"@x.org>", "ab@x.org"},
	    {"<\"a\\\"b\"@x.org>", "\"a\\\"b\"@x.org"},
	    {"<>", ""},
	    {"<Postmaster>", "Postmaster"},
	    {"<@r.example:u@x.org>", "u@x.org"},
	    {"<u@[IPv6:::1]>", "u@[IPv6:::1]"},
	};
	struct address a;

	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
	    unit_assert_idx(address_parse(ext[i][0], strlen(ext[i][0]), M | R, NULL, &a) == ADDR_OK, i);
	    str_reset(s);
	    unit_assert_idx(address_external(s, &a), i);
	    unit_assert_streq_idx(str_cstr(s), ext[i][1], i);
	    address_fini(&a);
	}
    }
    unit_end();

    unit_begin("address_quote / address_unquote table and round trip");
    for (i = 0; i < sizeof(quote_cases) / sizeof(quote_cases[0]); i++) {
	const struct qcase *c = quote_cases + i;
	struct str *back = str_new(1000);
	bool ok;

	str_reset(s);
	ok = address_quote(s, c->unquoted, strlen(c->unquoted), c->utf8);
	unit_assert_streq_idx(ok ? "quoted" : "refused", c->quoted ? "quoted" : "refused", i);
	if (ok && c->quoted) {
	    unit_assert_streq_idx(str_cstr(s), c->quoted, i);
	    unit_assert_idx(address_unquote(back, str_cstr(s), str_len(s), c->utf8), i);
	    unit_assert_streq_idx(str_cstr(back), c->unquoted, i);
	    unit_assert_idx(valid_localpart(str_cstr(s), str_len(s), c->utf8 ? U : 0), i);
	}
	str_free(&back);
    }
    unit_assert(!address_quote(s, "a\0b", 3, false));
    str_reset(s);
    unit_assert(!address_unquote(s, "a b", 3, false));
    unit_assert(!address_unquote(s, "\"a", 2, false));
    {
	struct str *tiny = str_new(3);

	unit_assert(!address_quote(tiny, "a b", 3, false));
	str_free(&tiny);
    }
    unit_end();

    unit_begin("valid_hostname table");
    for (i = 0; i < sizeof(hostname_cases) / sizeof(hostname_cases[0]); i++) {
	const struct pcase *c = hostname_cases + i;

	unit_assert_streq_idx(valid_hostname(c->in, strlen(c->in), c->flags) ? "valid" : "invalid",
			      c->valid ? "valid" : "invalid", i);
    }
    unit_assert(!valid_hostname("a\0b.com", 7, 0));
    unit_assert(!valid_domain("[1.2.3.4]", 9, 0));
    unit_assert(valid_literal("[1.2.3.4]", 9));
    unit_assert(!valid_literal("1.2.3.4", 7));
    {
	char *d = domain_of(253);

	unit_assert(valid_hostname(d, 253, 0));
	mem_free(&d);
	d = domain_of(254);
	unit_assert(!valid_hostname(d, 254, 0));
	mem_free(&d);
    }
    unit_end();

    unit_begin("valid_localpart table");
    for (i = 0; i < sizeof(localpart_cases) / sizeof(localpart_cases[0]); i++) {
	const struct pcase *c = localpart_cases + i;

	unit_assert_streq_idx(valid_localpart(c->in, strlen(c->in), c->flags) ? "valid" : "invalid",
			      c->valid ? "valid" : "invalid", i);
    }
    unit_end();

    unit_begin("address_at: the @ before the domain, for every user");
    {
	static const struct {
	    const char *addr;
	    long at;		/* offset of the separating @, -1 none */
	} at_cases[] = {
	    {"user@example.com", 4},
	    {"a@b@example.com", 3},		/* from "a@b"@example.com */
	    {"postmaster", -1},
	    {"", -1},
	    {"@example.com", 0},
	    {"user@", 4},
	    {"x@[t:yz]", 1},
	};

	for (size_t k = 0; k < sizeof(at_cases) / sizeof(at_cases[0]); k++) {
	    const char *a = at_cases[k].addr;
	    const char *at = address_at(a, strlen(a));

	    unit_assert_idx(at_cases[k].at < 0 ? at == NULL : at == a + at_cases[k].at, k);
	}
	/* only the first len bytes count */
	unit_assert(address_at("ab@c", 2) == NULL);
	/* what the parser accepts, address_at splits back the same way */
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
	    struct address addr;
	    struct str *internal;
	    const char *at;

	    memset(&addr, 0, sizeof(addr));
	    if (address_parse(cases[k].in, cases[k].len ? cases[k].len : strlen(cases[k].in),
			      cases[k].pflags, NULL, &addr) != ADDR_OK
		|| *addr.domain == 0) {
		address_fini(&addr);
		continue;
	    }
	    internal = str_new(1024);
	    str_appends_or_panic(internal, addr.localpart);
	    str_appendc_or_panic(internal, '@');
	    str_appends_or_panic(internal, addr.domain);
	    at = address_at(str_cstr(internal), str_len(internal));
	    unit_assert_idx(at != NULL && strcmp(at + 1, addr.domain) == 0, k);
	    str_free(&internal);
	    address_fini(&addr);
	}
    }
    unit_end();

    unit_begin("domain_is_fqdn, percent hack, bang path");
    unit_assert(domain_is_fqdn("example.com"));
    unit_assert(!domain_is_fqdn("localhost"));
    unit_assert(!domain_is_fqdn(".com"));
    unit_assert(!domain_is_fqdn("com."));
    unit_assert(address_is_percent_hack("user%foreign"));
    unit_assert(address_is_percent_hack("a%b%c"));
    unit_assert(!address_is_percent_hack("user"));
    unit_assert(address_has_bang_path("foreign!user"));
    unit_assert(address_has_bang_path("a!b!c"));
    unit_assert(!address_has_bang_path("user"));
    unit_assert(!address_has_bang_path("user%x"));
    {
	struct address a;
	const char *in = "<\"host!user\"@example.com>";

	unit_assert_inteq(address_parse(in, strlen(in), R, NULL, &a), ADDR_OK);
	unit_assert(address_has_bang_path(a.localpart));
	address_fini(&a);
    }
    unit_end();

    unit_begin("domain_in_list table");
    for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
	const struct dcase *c = list_cases + i;

	unit_assert_streq_idx(domain_in_list(c->domain, c->list, c->flags) ? "match" : "no match",
			      c->match ? "match" : "no match", i);
    }
    unit_end();

    unit_begin("address_split_delimiter table");
    for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
	const struct scase *c = split_cases + i;
	size_t base_len = 999;
	const char *ext = NULL;
	bool ok = address_split_delimiter(c->local, c->delims, &base_len, &ext);

	unit_assert_streq_idx(ok ? "split" : "no split", c->base ? "split" : "no split", i);
	if (ok && c->base) {
	    str_reset(s);
	    str_append_or_panic(s, c->local, base_len);
	    unit_assert_streq_idx(str_cstr(s), c->base, i);
	    unit_assert_streq_idx(ext, c->ext, i);
	}
    }
    unit_end();

    unit_begin("reply table: one row per error, consistent codes");
    for (i = 0; i < ADDR_ERR_COUNT; i++) {
	struct mail_reply rs = address_error_reply((enum address_error) i, ADDR_ROLE_SENDER);
	struct mail_reply rr = address_error_reply((enum address_error) i, ADDR_ROLE_RECIPIENT);

	unit_assert_idx(rs.code == rr.code, i);
	unit_assert_idx(rs.enhanced[0] == '0' + rs.code / 100, i);
	unit_assert_idx(rr.enhanced[0] == '0' + rr.code / 100, i);
	unit_assert_idx(rs.text && rs.text[0], i);
	unit_assert_idx(i == ADDR_OK ? rs.code == 250 : rs.code >= 500, i);
	unit_assert_idx(address_error_str((enum address_error) i)[0] != 0, i);
    }
    {
	struct mail_reply r = address_error_reply(ADDR_ERR_SYNTAX, ADDR_ROLE_RECIPIENT);

	unit_assert_inteq(r.code, 501);
	unit_assert_streq(r.enhanced, "5.1.3");
	r = address_error_reply(ADDR_ERR_SYNTAX, ADDR_ROLE_SENDER);
	unit_assert_streq(r.enhanced, "5.1.7");
	r = address_error_reply(ADDR_ERR_8BIT, ADDR_ROLE_SENDER);
	unit_assert_inteq(r.code, 553);
	unit_assert_streq(r.enhanced, "5.6.7");
	r = address_error_reply(ADDR_OK, ADDR_ROLE_RECIPIENT);
	unit_assert_streq(r.enhanced, "2.1.5");
	r = address_error_reply(ADDR_ERR_PATH_TOO_LONG, ADDR_ROLE_RECIPIENT);
	unit_assert_streq(r.text, "Path too long");
    }
    unit_end();

    str_free(&s);
    return unit_done();
}
