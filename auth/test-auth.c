/* test-auth.c - unit tests for the pure parts of the auth service: the
 * failure delay arithmetic and the bounded counters (auth_throttle.c),
 * SCRAM-SHA-256 against the example of RFC 7677 section 3
 * (auth_scram.c, passwd.c with Nettle loaded by dlopen; SHA-256 and
 * HMAC vectors of FIPS 180-4 and RFC 4231), tokens (auth_token.c), and the users file
 * fields (users.c) and base64 (base64.c) they stand on. */

#include <stdio.h>
#include <string.h>

/* base */
#include "base64.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "passwd.h"
#include "users.h"

/* auth */
#include "auth_scram.h"
#include "auth_throttle.h"
#include "auth_token.h"

#define RFC_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE	"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT	"W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_SERVER_FIRST "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_CNONCE RFC_SNONCE \
    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* rfc_secret - the stored secret of user/pencil with the RFC's salt */
static void rfc_secret(struct passwd_scram *s)
{
    struct str *salt = str_new(64);
    const char *err;

    memset(s, 0, sizeof(*s));
    unit_assert(base64_decode(RFC_SALT, strlen(RFC_SALT), salt));
    memcpy(s->salt, str_cstr(salt), str_len(salt));
    s->salt_len = str_len(salt);
    s->iterations = 4096;
    unit_assert(passwd_scram_keys("pencil", s->salt, s->salt_len, 4096, s->stored_key,
				  s->server_key, &err) == 0);
    str_free(&salt);
}

int main(void)
{
    struct str *out = str_new(4096), *user = str_new(256);
    const char *err;

    unit_begin("throttle_delay_ms: doubling, capped");
    unit_assert_inteq(throttle_delay_ms(1, 1000, 15000), 1000);
    unit_assert_inteq(throttle_delay_ms(2, 1000, 15000), 2000);
    unit_assert_inteq(throttle_delay_ms(4, 1000, 15000), 8000);
    unit_assert_inteq(throttle_delay_ms(5, 1000, 15000), 15000);
    unit_assert_inteq(throttle_delay_ms(1000000, 1000, 15000), 15000);
    unit_assert_inteq(throttle_delay_ms(3, 0, 15000), 0);
    unit_assert_inteq(throttle_delay_ms(3, 700, 600), 600);
    unit_end();

    unit_begin("throttle: counts, window, reset, bounded LRU");
    {
	struct throttle *t = throttle_new(4, 60);
	char key[32];

	unit_assert_inteq(throttle_count(t, "a", 100), 0);
	unit_assert_inteq(throttle_fail(t, "a", 100), 1);
	unit_assert_inteq(throttle_fail(t, "a", 110), 2);
	unit_assert_inteq(throttle_count(t, "a", 169), 2);
	unit_assert_inteq(throttle_count(t, "a", 170), 0);	/* window since the last */
	unit_assert_inteq(throttle_fail(t, "a", 171), 1);
	throttle_reset(t, "a");
	unit_assert_inteq(throttle_count(t, "a", 171), 0);
	for (int i = 0; i < 10; i++) {
	    fmt_buf_or_panic(key, sizeof(key), "k%d", i);
	    (void) throttle_fail(t, key, 200 + i);
	}
	unit_assert_inteq(throttle_used(t), 4);
	unit_assert_inteq(throttle_count(t, "k9", 210), 1);
	unit_assert_inteq(throttle_count(t, "k0", 210), 0);	/* pushed out first */
	(void) throttle_fail(t, "k6", 220);	/* k6 is now recent: k7 goes next */
	(void) throttle_fail(t, "new", 221);
	unit_assert_inteq(throttle_count(t, "k6", 221), 2);
	unit_assert_inteq(throttle_count(t, "k7", 221), 0);
	throttle_free(&t);
    }
    unit_end();

    unit_begin("throttle: grows on demand up to its size, then evicts");
    {
	struct throttle *t = throttle_new(200, 100000);
	char key[32];

	unit_assert_inteq(throttle_used(t), 0);
	for (int i = 0; i < 150; i++) {
	    fmt_buf_or_panic(key, sizeof(key), "g%d", i);
	    unit_assert_inteq(throttle_fail(t, key, 300 + i), 1);
	}
	unit_assert_inteq(throttle_used(t), 150);
	unit_assert_inteq(throttle_count(t, "g0", 449), 1);	/* kept over the growth */
	unit_assert_inteq(throttle_fail(t, "g149", 449), 2);
	for (int i = 150; i < 260; i++) {
	    fmt_buf_or_panic(key, sizeof(key), "g%d", i);
	    (void) throttle_fail(t, key, 300 + i);
	}
	unit_assert_inteq(throttle_used(t), 200);
	unit_assert_inteq(throttle_count(t, "g0", 559), 0);	/* the oldest went */
	unit_assert_inteq(throttle_count(t, "g259", 559), 1);
	unit_assert_inteq(throttle_count(t, "g149", 559), 2);
	throttle_free(&t);
    }
    unit_end();

    unit_begin("base64 round trip and strictness");
    {
	static const char *const bad[] = {"A", "AB=C", "A===", "AB$D", "QUJD=", "=AAA"};
	struct str *dec = str_new(64);

	unit_assert(base64_encode("\0user\0pencil", 12, out));
	unit_assert_streq(str_cstr(out), "AHVzZXIAcGVuY2ls");
	unit_assert(base64_decode(str_cstr(out), str_len(out), dec) && str_len(dec) == 12);
	unit_assert(memcmp(str_cstr(dec), "\0user\0pencil", 12) == 0);
	str_reset(out);
	unit_assert(base64_encode("ab", 2, out));
	unit_assert_streq(str_cstr(out), "YWI=");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
	    str_reset(dec);
	    unit_assert_idx(!base64_decode(bad[i], strlen(bad[i]), dec), i);
	}
	str_free(&dec);
    }
    unit_end();

    unit_begin("SCRAM-SHA-256: RFC 7677 section 3 example");
    {
	struct scram_server s;
	struct passwd_scram secret;

	rfc_secret(&secret);
	unit_assert(scram_client_first(&s, "n,,n=user,r=" RFC_CNONCE,
				       strlen("n,,n=user,r=" RFC_CNONCE), user) == 0);
	unit_assert_streq(str_cstr(user), "user");
	scram_server_first(&s, &secret, RFC_SNONCE, out);
	unit_assert_streq(str_cstr(out), RFC_SERVER_FIRST);
	unit_assert(scram_client_final(&s, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), out) == 0);
	unit_assert_streq(str_cstr(out), RFC_SERVER_FINAL);
    }
    unit_end();

    unit_begin("SCRAM-SHA-256: wrong proof, nonce, binding; bad client-first");
    {
	static const char *const bad_first[] = {
	    "p=tls-unique,,n=user,r=abc", "n,,r=abc", "n,,n=user", "x,,n=user,r=a",
	    "n,a=other,n=user,r=abc", "n,,n=us=er,r=abc", "n,,n=,r=abc",
	};
	struct scram_server s;
	struct passwd_scram secret;
	char msg[256];

	rfc_secret(&secret);
	(void) scram_client_first(&s, "n,,n=user,r=" RFC_CNONCE, strlen("n,,n=user,r=" RFC_CNONCE),
				  user);
	scram_server_first(&s, &secret, RFC_SNONCE, out);
	str_copy_out_or_panic(msg, sizeof(msg), RFC_CLIENT_FINAL);
	msg[strlen(msg) - 3] ^= 1;		/* the proof */
	unit_assert(scram_client_final(&s, msg, strlen(msg), out) == -1);
	str_copy_out_or_panic(msg, sizeof(msg), RFC_CLIENT_FINAL);
	msg[12] ^= 1;				/* the nonce */
	unit_assert(scram_client_final(&s, msg, strlen(msg), out) == -1);
	str_copy_out_or_panic(msg, sizeof(msg), RFC_CLIENT_FINAL);
	msg[2] = 'e';				/* c=eiws: another GS2 header */
	unit_assert(scram_client_final(&s, msg, strlen(msg), out) == -1);
	for (size_t i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++)
	    unit_assert_idx(scram_client_first(&s, bad_first[i], strlen(bad_first[i]), user) == -1, i);
	unit_assert(scram_client_first(&s, "n,a=user,n=user,r=abc", 21, user) == 0);
	unit_assert(scram_client_first(&s, "n,,n=a=2Cb=3Dc,r=abc", 20, user) == 0);
	unit_assert_streq(str_cstr(user), "a,b=c");
    }
    unit_end();

    unit_begin("passwd: Nettle loaded; SHA-256, HMAC vectors; passwd_equal");
    {
	/* FIPS 180-4 "abc"; RFC 4231 test case 2 */
	static const unsigned char abc[PASSWD_SHA256_LEN] = {
	    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
	    0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
	    0xf2, 0x00, 0x15, 0xad};
	static const unsigned char jefe[PASSWD_SHA256_LEN] = {
	    0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
	    0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
	    0x64, 0xec, 0x38, 0x43};
	unsigned char md[PASSWD_SHA256_LEN];

	unit_assert(passwd_crypto_load(&err) == 0);
	passwd_sha256("abc", 3, md);
	unit_assert(memcmp(md, abc, sizeof(md)) == 0);
	passwd_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, md);
	unit_assert(memcmp(md, jefe, sizeof(md)) == 0);
	unit_assert(passwd_equal(md, jefe, sizeof(md)));
	md[31] ^= 1;
	unit_assert(!passwd_equal(md, jefe, sizeof(md)));
	md[31] ^= 1;
	md[0] ^= 0x80;
	unit_assert(!passwd_equal(md, jefe, sizeof(md)));
	unit_assert(passwd_equal(md, jefe, 0));
    }
    unit_end();

    unit_begin("passwd: SCRAM secret text round trip, hashes");
    {
	struct passwd_scram s;

	unit_assert(passwd_scram_make("pencil", 4096, out, &err) == 0);
	unit_assert(passwd_scram_parse(str_cstr(out), &s, &err) == 0);
	unit_assert(s.iterations == 4096 && s.salt_len == 16);
	unit_assert(passwd_scram_parse("4096,AAAA,BBBB", &s, &err) == -1);
	unit_assert(passwd_scram_parse("x,AAAA,BBBB,CCCC", &s, &err) == -1);
	unit_assert(passwd_hash_make("sha512-crypt", "pencil", out, &err) == 0);
	unit_assert(strncmp(str_cstr(out), "$6$", 3) == 0);
	unit_assert(passwd_hash_check("pencil", str_cstr(out)));
	unit_assert(!passwd_hash_check("pencil2", str_cstr(out)));
	unit_assert(!passwd_hash_check("pencil", "!"));
	unit_assert(!passwd_hash_check("pencil", ""));
	unit_assert(passwd_hash_make("md5", "x", out, &err) == -1);
    }
    unit_end();

    unit_begin("tokens: once, service, expiry");
    {
	struct token_info info = {.uid = 5, .gid = 6, .quota = 0}, got;
	char t1[AUTH_TOKEN_LEN + 1], t2[AUTH_TOKEN_LEN + 1];

	str_copy_out_or_panic(info.user, sizeof(info.user), "a@b");
	str_copy_out_or_panic(info.service, sizeof(info.service), "pop3");
	str_copy_out_or_panic(info.mail_location, sizeof(info.mail_location), "/m/a/");
	unit_assert(token_issue(&info, 1000000, 10, t1));
	unit_assert(token_issue(&info, 1000000, 10, t2));
	unit_assert(strlen(t1) == AUTH_TOKEN_LEN && strcmp(t1, t2) != 0);
	memset(&got, 0x55, sizeof(got));
	unit_assert(token_redeem(t1, "pop3", 1005000, &got));
	unit_assert_streq(got.user, "a@b");
	unit_assert_streq(got.service, "pop3");
	unit_assert_streq(got.mail_location, "/m/a/");
	unit_assert_inteq(got.uid, 5);
	unit_assert_inteq(got.gid, 6);
	unit_assert_inteq(got.quota, 0);
	unit_assert(!token_redeem(t1, "pop3", 1005000, &got));	/* replay */
	unit_assert(!token_redeem(t2, "imap", 1005000, &got));	/* other service */
	unit_assert(!token_redeem(t2, "pop3", 1005000, &got));	/* consumed */
	unit_assert(token_issue(&info, 1000000, 10, t1));
	unit_assert(token_redeem(t1, "pop3", 1009999, &got));
	unit_assert(token_issue(&info, 1000000, 10, t1));
	unit_assert(!token_redeem(t1, "pop3", 1010000, &got));	/* expired */
    }
    unit_end();

    unit_begin("tokens: a full table pushes out the oldest; redeemed slots are reused");
    {
	struct token_info info = {.uid = 5, .gid = 6, .quota = 0}, got;
	char first[AUTH_TOKEN_LEN + 1], tok[AUTH_TOKEN_LEN + 1], last[AUTH_TOKEN_LEN + 1];

	str_copy_out_or_panic(info.service, sizeof(info.service), "pop3");
	unit_assert(token_issue(&info, 2000000, 10, first));
	for (int i = 0; i < TOKEN_TABLE_MAX; i++)	/* fills the table and one more */
	    unit_assert(token_issue(&info, 2000001 + i, 10, last));
	unit_assert(!token_redeem(first, "pop3", 2000000 + TOKEN_TABLE_MAX, &got));
	unit_assert(token_redeem(last, "pop3", 2000000 + TOKEN_TABLE_MAX, &got));
	for (int i = 0; i < 3 * TOKEN_TABLE_MAX; i++) {	/* one at a time: one slot */
	    unit_assert(token_issue(&info, 3000000 + i, 10, tok));
	    unit_assert(token_redeem(tok, "pop3", 3000000 + i, &got));
	}
    }
    unit_end();

    unit_begin("users_parse_fields");
    {
	static const char *const bad[] = {
	    "h:1::m/:", "h:x:1:m/:", "h:::", "h::::", "h:::m/:12x", "h:::../m:",
	    "h:::m/:1:notscram", "h:::m/:1::frob", "h:::m /:", "h:::m/:1:1,a,b,c:x:y",
	};
	char buf[256];
	struct users_entry e;

	str_copy_out_or_panic(buf, sizeof(buf), "$6$x$y:1000:1001:d/u/:2M:4096,AA==,BB==,CC==:");
	unit_assert(users_parse_fields(buf, &e, &err) == 0);
	unit_assert_streq(e.password, "$6$x$y");
	unit_assert(e.uid == 1000 && e.gid == 1001 && e.quota == 2 * 1024 * 1024 && !e.locked);
	unit_assert_streq(e.mail_location, "d/u/");
	unit_assert_streq(e.scram, "4096,AA==,BB==,CC==");
	str_copy_out_or_panic(buf, sizeof(buf), "!$6$x:::m/:");
	unit_assert(users_parse_fields(buf, &e, &err) == 0 && e.locked && e.uid == -1 && e.quota == -1);
	str_copy_out_or_panic(buf, sizeof(buf), "$6$x:::m/:::disabled");
	unit_assert(users_parse_fields(buf, &e, &err) == 0 && e.locked);
	str_copy_out_or_panic(buf, sizeof(buf), ":::m/:");
	unit_assert(users_parse_fields(buf, &e, &err) == 0 && e.locked);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
	    str_copy_out_or_panic(buf, sizeof(buf), bad[i]);
	    unit_assert_idx(users_parse_fields(buf, &e, &err) == -1, i);
	}
    }
    unit_end();

    str_free(&out);
    str_free(&user);
    return unit_done();
}
