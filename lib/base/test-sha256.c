/* test-sha256.c - SHA-256, HMAC-SHA-256 and PBKDF2-HMAC-SHA-256 against
 * the test vectors of FIPS 180-4 (NIST examples), RFC 4231 and RFC 7914
 * section 11 / RFC 6070 style vectors for SHA-256. */

#include <stdio.h>
#include <string.h>

#include "sha256.h"
#include "unit.h"

/* hex - bytes as lowercase hex into buf (2 * len + 1) */
static const char *hex(const unsigned char *p, size_t len, char *buf)
{
    for (size_t i = 0; i < len; i++)
	snprintf(buf + 2 * i, 3, "%02x", p[i]);
    buf[2 * len] = 0;
    return buf;
}

static void test_sha256(void)
{
    static const struct {
	const char *in;
	const char *out;
    } v[] = {
	{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
	 "klmnopqrlmnopqrsmnopqrstnopqrstu",
	 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    unsigned char d[SHA256_LEN];
    char buf[2 * SHA256_LEN + 1];
    struct sha256 c;
    size_t i;

    unit_begin("SHA-256: FIPS 180-4 examples, whole and byte by byte");
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
	sha256_once(v[i].in, strlen(v[i].in), d);
	unit_assert_idx(strcmp(hex(d, sizeof(d), buf), v[i].out) == 0, i);
	sha256_start(&c);
	for (size_t k = 0; v[i].in[k]; k++)
	    sha256_add(&c, v[i].in + k, 1);
	sha256_finish(&c, d);
	unit_assert_idx(strcmp(hex(d, sizeof(d), buf), v[i].out) == 0, i);
    }
    /* a million 'a' */
    {
	char a[1000];

	memset(a, 'a', sizeof(a));
	sha256_start(&c);
	for (i = 0; i < 1000; i++)
	    sha256_add(&c, a, sizeof(a));
	sha256_finish(&c, d);
	unit_assert_streq(hex(d, sizeof(d), buf),
			  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    unit_end();
}

static void test_hmac(void)
{
    unsigned char key[131], d[SHA256_LEN];
    char buf[2 * SHA256_LEN + 1];
    struct hmac_sha256 c;

    unit_begin("HMAC-SHA-256: RFC 4231 test cases 1, 2 and 6");
    memset(key, 0x0b, 20);
    hmac_sha256_start(&c, key, 20);
    hmac_sha256_add(&c, "Hi There", 8);
    hmac_sha256_finish(&c, d);
    unit_assert_streq(hex(d, sizeof(d), buf),
		      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    hmac_sha256_start(&c, "Jefe", 4);
    hmac_sha256_add(&c, "what do ya want ", 16);
    hmac_sha256_add(&c, "for nothing?", 12);
    hmac_sha256_finish(&c, d);
    unit_assert_streq(hex(d, sizeof(d), buf),
		      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(key, 0xaa, sizeof(key));
    hmac_sha256_start(&c, key, sizeof(key));
    hmac_sha256_add(&c, "Test Using Larger Than Block-Size Key - Hash Key First", 54);
    hmac_sha256_finish(&c, d);
    unit_assert_streq(hex(d, sizeof(d), buf),
		      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    unit_end();
}

static void test_pbkdf2(void)
{
    unsigned char d[40];
    char buf[2 * sizeof(d) + 1];

    unit_begin("PBKDF2-HMAC-SHA-256: known vectors (1, 2, 4096 iterations; 40 bytes)");
    pbkdf2_sha256("password", 8, "salt", 4, 1, d, 32);
    unit_assert_streq(hex(d, 32, buf),
		      "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
    pbkdf2_sha256("password", 8, "salt", 4, 2, d, 32);
    unit_assert_streq(hex(d, 32, buf),
		      "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43");
    pbkdf2_sha256("password", 8, "salt", 4, 4096, d, 32);
    unit_assert_streq(hex(d, 32, buf),
		      "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
    pbkdf2_sha256("passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt", 36,
		  4096, d, 40);
    unit_assert_streq(hex(d, 40, buf),
		      "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9");
    unit_end();
}

static void test_equal(void)
{
    unit_begin("mem_equal_secret");
    unit_assert(mem_equal_secret("abc", "abc", 3));
    unit_assert(!mem_equal_secret("abc", "abd", 3));
    unit_assert(!mem_equal_secret("xbc", "abc", 3));
    unit_assert(mem_equal_secret("", "", 0));
    unit_end();
}

int main(void)
{
    test_sha256();
    test_hmac();
    test_pbkdf2();
    test_equal();
    return unit_done();
}
