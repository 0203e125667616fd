/* test-sc_tls.c - unit tests for sc_tls.c's pure parts: the policy
 * table's values (levels and attributes, Postfix's syntax), the lookup
 * keys of a next hop, fingerprint lists, the expected certificate names
 * and the default policy from smtp_tls_security_level. The handshakes
 * and the policies in action are tests/test_smtp_client_tls.py's. */

#include <string.h>

/* base */
#include "msg.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "config.h"

/* this program */
#include "sc.h"

/* test_parse - levels, attributes, refusals */
static void test_parse(void)
{
    struct sc_tls_policy p;
    char err[256];
    enum sc_tls_level lv;

    unit_begin("sc_tls_policy_parse: levels and attributes");
    unit_assert(sc_tls_policy_parse("may", &p, err, sizeof(err)) == 0);
    unit_assert(p.level == SC_TLS_MAY && !p.match_given && p.match[0] == 0);
    unit_assert(sc_tls_policy_parse("  Encrypt  protocols=>=TLSv1.3 ciphers=high", &p, err,
				    sizeof(err)) == 0);
    unit_assert(p.level == SC_TLS_ENCRYPT);
    unit_assert_streq(p.protocols, ">=TLSv1.3");
    unit_assert_streq(p.ciphers, "high");
    unit_assert(sc_tls_policy_parse("verify match=hostname:nexthop tafile=/etc/ca.pem", &p, err,
				    sizeof(err)) == 0);
    unit_assert(p.level == SC_TLS_VERIFY && p.match_given);
    unit_assert_streq(p.match, "hostname:nexthop");
    unit_assert_streq(p.tafile, "/etc/ca.pem");
    /* several match= add up; fingerprints keep their colons */
    unit_assert(sc_tls_policy_parse("fingerprint match=AB:CD match=EF:01|23:45", &p, err,
				    sizeof(err)) == 0);
    unit_assert(p.level == SC_TLS_FINGERPRINT);
    unit_assert_streq(p.match, "AB:CD EF:01|23:45");
    unit_assert(sc_tls_policy_parse("encrypt protocols=!SSLv3:!TLSv1", &p, err, sizeof(err)) == 0);
    unit_assert_streq(p.protocols, "!SSLv3 !TLSv1");
    unit_assert(sc_tls_policy_parse("secure", &p, err, sizeof(err)) == 0 && p.level == SC_TLS_SECURE);
    unit_assert(sc_tls_policy_parse("none", &p, err, sizeof(err)) == 0 && p.level == SC_TLS_NONE);
    /* refusals: a bad entry defers, never weakens */
    unit_assert(sc_tls_policy_parse("dane", &p, err, sizeof(err)) == -1);
    unit_assert_streq(err, "unknown TLS security level \"dane\"");
    unit_assert(sc_tls_policy_parse("", &p, err, sizeof(err)) == -1);
    unit_assert(sc_tls_policy_parse("verify matches=x", &p, err, sizeof(err)) == -1);
    unit_assert_streq(err, "unknown TLS policy attribute \"matches\"");
    unit_assert(sc_tls_policy_parse("verify match", &p, err, sizeof(err)) == -1);
    unit_assert(sc_tls_policy_parse("verify match=", &p, err, sizeof(err)) == -1);
    {
	char big[2048];

	memset(big, 'a', sizeof(big));
	memcpy(big, "verify tafile=", 14);
	big[sizeof(big) - 1] = 0;
	unit_assert(sc_tls_policy_parse(big, &p, err, sizeof(err)) == -1);
	unit_assert_streq(err, "TLS policy attribute tafile is too long");
    }
    unit_assert(sc_tls_level_parse("VERIFY", 6, &lv) && lv == SC_TLS_VERIFY);
    unit_assert(!sc_tls_level_parse("verif", 5, &lv));
    unit_assert_streq(sc_tls_level_name(SC_TLS_FINGERPRINT), "fingerprint");
    unit_end();
}

/* test_keys - Postfix's lookup order */
static void test_keys(void)
{
    char keys[8][SC_HOST_MAX + 16];

    unit_begin("sc_tls_policy_keys: the next hop, then its parent domains");
    unit_assert_inteq(sc_tls_policy_keys("mx.a.example.com", keys, 8), 4);
    unit_assert_streq(keys[0], "mx.a.example.com");
    unit_assert_streq(keys[1], ".a.example.com");
    unit_assert_streq(keys[2], ".example.com");
    unit_assert_streq(keys[3], ".com");
    unit_assert_inteq(sc_tls_policy_keys("[mx.example.com]:587", keys, 8), 1);
    unit_assert_streq(keys[0], "[mx.example.com]:587");
    unit_assert_inteq(sc_tls_policy_keys("example.com:2525", keys, 8), 1);
    unit_assert_inteq(sc_tls_policy_keys("localhost", keys, 8), 1);
    unit_assert_inteq(sc_tls_policy_keys("a.b.c.d", keys, 2), 2);
    unit_end();
}

/* test_fingerprints - any case, with or without colons, lists */
static void test_fingerprints(void)
{
    unit_begin("sc_tls_fingerprint_match");
    unit_assert(sc_tls_fingerprint_match("AB:CD:EF", "AB:CD:EF"));
    unit_assert(sc_tls_fingerprint_match("ab:cd:ef", "AB:CD:EF"));
    unit_assert(sc_tls_fingerprint_match("00:11|abcdef", "AB:CD:EF"));
    unit_assert(sc_tls_fingerprint_match("00:11, AB:CD:EF", "AB:CD:EF"));
    unit_assert(!sc_tls_fingerprint_match("AB:CD:EE", "AB:CD:EF"));
    unit_assert(!sc_tls_fingerprint_match("AB:CD", "AB:CD:EF"));
    unit_assert(!sc_tls_fingerprint_match("", "AB:CD:EF"));
    unit_assert(!sc_tls_fingerprint_match("AB:CD:EF", ""));
    unit_end();
}

/* test_names - hostname, nexthop, dot-nexthop, literals */
static void test_names(void)
{
    struct sc_tls_policy p;
    char buf[512], err[128];
    const char *names[8];
    const char *e;

    unit_begin("sc_tls_match_names: the names a certificate may carry");
    unit_assert(sc_tls_policy_parse("verify", &p, err, sizeof(err)) == 0);
    unit_assert_inteq(sc_tls_match_names(&p, "mx1.example.com", "example.com", buf, sizeof(buf),
					 names, 8), 1);
    unit_assert_streq(names[0], "mx1.example.com");
    unit_assert(names[1] == NULL);
    unit_assert(sc_tls_policy_parse("secure", &p, err, sizeof(err)) == 0);
    unit_assert_inteq(sc_tls_match_names(&p, "mx1.example.com", "example.com:2525", buf,
					 sizeof(buf), names, 8), 2);
    unit_assert_streq(names[0], "example.com");
    unit_assert_streq(names[1], ".example.com");
    unit_assert(sc_tls_policy_parse("verify match=hostname:mail.test:.other.test", &p, err,
				    sizeof(err)) == 0);
    unit_assert_inteq(sc_tls_match_names(&p, "mx", "[mx]:25", buf, sizeof(buf), names, 8), 3);
    unit_assert_streq(names[0], "mx");
    unit_assert_streq(names[1], "mail.test");
    unit_assert_streq(names[2], ".other.test");
    /* bounded: max entries, the last one NULL */
    unit_assert_inteq(sc_tls_match_names(&p, "mx", "[mx]:25", buf, sizeof(buf), names, 2), 1);
    unit_assert(names[1] == NULL);
    /* the parameter when the entry has no match= */
    config_set("smtp_tls_verify_cert_match", "nexthop, mail.test");
    unit_assert(config_apply(&e) == 0);
    unit_assert(sc_tls_policy_parse("verify", &p, err, sizeof(err)) == 0);
    unit_assert_inteq(sc_tls_match_names(&p, "mx", "d.test", buf, sizeof(buf), names, 8), 2);
    unit_assert_streq(names[0], "d.test");
    unit_assert_streq(names[1], "mail.test");
    unit_end();
}

/* test_default - no table: smtp_tls_security_level */
static void test_default(void)
{
    struct sc_tls_policy p;
    char dsn[16], reason[256];
    const char *e;

    unit_begin("sc_tls_policy_find: smtp_tls_security_level without a table");
    unit_assert(sc_tls_policy_find("example.com", &p, dsn, sizeof(dsn), reason,
				   sizeof(reason)) == 0);
    unit_assert(p.level == SC_TLS_MAY);		/* the default: opportunistic */
    config_set("smtp_tls_security_level", "fingerprint");
    config_set("smtp_tls_fingerprint_cert_match", "AB:CD");
    unit_assert(config_apply(&e) == 0);
    unit_assert(sc_tls_policy_find("example.com", &p, dsn, sizeof(dsn), reason,
				   sizeof(reason)) == 0);
    unit_assert(p.level == SC_TLS_FINGERPRINT && p.match_given);
    unit_assert_streq(p.match, "AB:CD");
    config_set("smtp_tls_security_level", "bogus");
    unit_assert(config_apply(&e) == 0);
    unit_assert(sc_tls_policy_find("example.com", &p, dsn, sizeof(dsn), reason,
				   sizeof(reason)) == -1);
    unit_assert_streq(dsn, "4.7.5");
    unit_assert_streq(reason, "unknown smtp_tls_security_level \"bogus\"");
    unit_end();
}

int main(void)
{
    const char *err;

    config_init();
    if (config_apply(&err) < 0)
	msg_fatal("config_apply: %s", err);
    test_parse();
    test_keys();
    test_fingerprints();
    test_names();
    test_default();
    return unit_done();
}
