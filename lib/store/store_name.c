/* store_name.c - Maildir file names (the unique part, the S=, W= and
 * U= fields, the ":2," flags) and the CRLF size of a message file. */

/* System library. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "str.h"

/* This library. */
#include "store.h"
#include "store_int.h"

struct errtext store_error;

static const char sn_letters[] = "DFPRST";

/* sn_flag_bit - the STORE_FLAG_* bit of a Maildir info letter, or 0 */
static uint32_t sn_flag_bit(char c)
{
    const char *p;

    if (c >= 'a' && c <= 'z')
	return STORE_FLAG_KEYWORD(c - 'a');
    if (c != 0 && (p = strchr(sn_letters, c)) != NULL)
	return 1u << (p - sn_letters);
    return 0;
}

/* store_flags_parse - the flags of the ":2," info of name */
uint32_t store_flags_parse(const char *name)
{
    const char *info = strchr(name, ':');
    uint32_t flags = 0;

    if (info == NULL || strncmp(info, ":2,", 3) != 0)
	return 0;
    for (info += 3; *info; info++)
	flags |= sn_flag_bit(*info);
    return flags;
}

/* store_key_hash - a 64-bit hash of a unique part (sorting by it
 * first is far cheaper than comparing keys with long common prefixes) */
uint64_t store_key_hash(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ len, w;

    while (len >= 8) {
	memcpy(&w, key, 8);
	h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	key += 8;
	len -= 8;
    }
    w = 0;
    memcpy(&w, key, len);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
}

/* store_flags_parse_n - the letters info[0..len) */
uint32_t store_flags_parse_n(const char *info, size_t len)
{
    uint32_t flags = 0;
    size_t i;

    for (i = 0; i < len; i++)
	flags |= sn_flag_bit(info[i]);
    return flags;
}

/* store_flags_format - the letters in ASCII order (Maildir's rule) */
void store_flags_format(uint32_t flags, char *buf, size_t size)
{
    size_t n = 0;
    int i;

    if (size == 0)
	return;
    for (i = 0; sn_letters[i] && n + 1 < size; i++)
	if (flags & (1u << i))
	    buf[n++] = sn_letters[i];
    for (i = 0; i < 26 && n + 1 < size; i++)
	if (flags & STORE_FLAG_KEYWORD(i))
	    buf[n++] = (char) ('a' + i);
    buf[n] = 0;
}

/* sn_number - digits at cp up to a ',' ':' or end; -1 if not that */
static long long sn_number(const char *cp)
{
    long long v = 0;

    if (*cp < '0' || *cp > '9')
	return -1;
    for (; *cp >= '0' && *cp <= '9'; cp++) {
	if (v > (LLONG_MAX - 9) / 10)
	    return -1;
	v = v * 10 + (*cp - '0');
    }
    return (*cp == 0 || *cp == ',' || *cp == ':') ? v : -1;
}

/* store_name_parse - the parts of a message file name */
bool store_name_parse(const char *name, struct store_name *out)
{
    const char *cp;
    long long v;

    out->keylen = strcspn(name, ",:");
    out->size = -1;
    out->crlf_size = -1;
    out->uid = 0;
    out->flags = store_flags_parse(name);
    if (out->keylen == 0 || name[0] == '.' || strchr(name, '\n') != NULL)
	return false;
    for (cp = name + out->keylen; *cp == ','; ) {
	cp++;
	if (cp[0] != 0 && cp[1] == '=') {
	    v = sn_number(cp + 2);
	    if (cp[0] == 'S')
		out->size = v;
	    else if (cp[0] == 'W')
		out->crlf_size = v;
	    else if (cp[0] == 'U')
		out->uid = v > 0 && v <= (long long) UINT32_MAX ? (uint32_t) v : 0;
	}
	cp += strcspn(cp, ",:");
    }
    return true;
}

/* store_name_key_is - whether the unique part of name is key */
bool store_name_key_is(const char *name, const char *key, size_t keylen)
{
    return strncmp(name, key, keylen) == 0
	&& (name[keylen] == 0 || name[keylen] == ',' || name[keylen] == ':');
}

/* store_name_make - the store's name for a message in cur/ */
bool store_name_make(char *buf, size_t size, const char *key, size_t keylen, off_t msize,
		     off_t crlf, uint32_t uid, uint32_t flags)
{
    char letters[40];

    store_flags_format(flags, letters, sizeof(letters));
    if (keylen > INT_MAX)
	return false;
    if (crlf < 0) {			/* (not counted yet: no W=) */
	if (!fmt_try_buf(buf, size, "%.*s,S=%lld,U=%lu:2,%s", (int) keylen, key,
			 (long long) msize, (unsigned long) uid, letters))
	    return false;
    } else if (!fmt_try_buf(buf, size, "%.*s,S=%lld,W=%lld,U=%lu:2,%s", (int) keylen, key,
			    (long long) msize, (long long) crlf, (unsigned long) uid, letters)) {
	return false;
    }
    return strlen(buf) <= NAME_MAX;
}

/* store_crlf_size - size and CRLF size of the file fd, from offset 0 */
int store_crlf_size(int fd, off_t *size_r, off_t *crlf_size_r, const char **error_r)
{
    char buf[65536];
    off_t size = 0, crlf = 0, pos = 0;
    char prev = 0;
    ssize_t n, i;

    for (;;) {
	n = pread(fd, buf, sizeof(buf), pos);
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0)
	    return errtext_fail(&store_error, error_r, "read message: %s", strerror(errno));
	if (n == 0)
	    break;
	for (i = 0; i < n; i++) {
	    if (buf[i] == '\n' && prev != '\r')
		crlf++;
	    prev = buf[i];
	}
	pos += n;
	size += n;
    }
    *size_r = size;
    *crlf_size_r = size + crlf;
    return 0;
}
