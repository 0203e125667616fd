/* fuzz_imap_parse.c - libFuzzer target for lib/mail/imap_parse.c (the
 * IMAP command tokenizer of imapd-login and imapd).
 *
 * Byte 0: bits 0-2 the literal chunk size (1 << n), bit 3: stream
 * literals instead of keeping them, bit 4: tight bounds (depth 3, 20
 * arguments, 200-byte commands, 50-byte in-memory literals). The rest
 * is the client's bytes: lines split at LF (a CR before it dropped),
 * literal bytes taken as announced. Properties: a DONE command has a
 * tag and an upper-case name, its tree respects the bounds and every
 * string is NUL-terminated at len; an ERROR has a text; atoms and
 * quoted strings re-quoted by imap_append_astring parse back to the
 * same bytes; sequence sets that parse have lo <= hi. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "str.h"

/* mail */
#include "imap_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

/* walk - check a tree against the bounds; returns the argument count */
static size_t walk(const struct imap_arg *a, size_t n, unsigned depth, unsigned depth_max)
{
    size_t i, total = n;

    check(depth <= depth_max);
    for (i = 0; i < n; i++) {
	switch (a[i].type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_NIL:
	case IMAP_ARG_QUOTED:
	case IMAP_ARG_LITERAL:
	    check(a[i].str != NULL && a[i].str[a[i].len] == 0);
	    break;
	case IMAP_ARG_LITERAL_STREAM:
	    break;
	case IMAP_ARG_LIST:
	    total += walk(a[i].list, a[i].count, depth + 1, depth_max);
	    break;
	default:
	    check(0);
	}
    }
    return total;
}

/* roundtrip - quote s and parse it back */
static void roundtrip(const struct imap_arg *a)
{
    struct str *out = str_new(4096);
    struct imap_parser *p;
    const struct imap_arg *b;
    size_t n;

    if (a->len > 1000 || memchr(a->str, 0, a->len) || !str_try_appends(out, "t X ")
	|| !imap_append_astring(out, a->str, a->len) || strstr(str_cstr(out), "\r\n")) {
	str_free(&out);
	return;
    }
    p = imap_parser_new(NULL);
    check(imap_parser_feed_line(p, str_cstr(out), str_len(out)) == IMAP_PARSE_DONE);
    b = imap_parser_args(p, &n);
    check(n == 1 && b[0].len == a->len && memcmp(b[0].str, a->str, a->len) == 0);
    imap_parser_free(&p);
    str_free(&out);
}

/* seqsets - atoms that are sequence sets are well formed */
static void seqsets(const struct imap_arg *a, size_t n)
{
    struct imap_seqset set;
    size_t i, j;

    for (i = 0; i < n; i++) {
	if (a[i].type == IMAP_ARG_ATOM && imap_seqset_parse(a[i].str, 100, &set)) {
	    for (j = 0; j < set.n; j++)
		check(set.r[j].lo <= set.r[j].hi && set.r[j].lo > 0);
	    imap_seqset_fini(&set);
	}
	if (a[i].type == IMAP_ARG_ATOM || a[i].type == IMAP_ARG_QUOTED)
	    roundtrip(&a[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_parse_limits lim = { 0 };
    struct imap_parser *p;
    size_t chunk, pos = 1, commands = 0;
    bool stream;

    if (size < 1)
	return 0;
    chunk = (size_t) 1 << (data[0] & 7);
    stream = data[0] & 8;
    if (data[0] & 16)
	lim = (struct imap_parse_limits) { .depth_max = 3, .args_max = 20, .command_max = 200,
	    .literal_mem_max = 50 };
    p = imap_parser_new(&lim);
    while (pos < size && commands < 1000) {
	const uint8_t *lf = memchr(data + pos, '\n', size - pos);
	size_t len = lf ? (size_t) (lf - (data + pos)) : size - pos;
	enum imap_parse_result r;

	r = imap_parser_feed_line(p, (const char *) data + pos, len && data[pos + len - 1] == '\r'
				  ? len - 1 : len);
	pos += len + (lf != NULL);
	if (r == IMAP_PARSE_LITERAL) {
	    const struct imap_literal_info *li = imap_parser_literal(p);
	    uint64_t want = li->size;

	    if (stream || !li->mem_ok) {
		/* the caller streams the bytes (or would discard them) */
		uint64_t take = want < size - pos ? want : size - pos;

		pos += (size_t) take;
		imap_parser_literal_streamed(p, 7);
		continue;
	    }
	    if (want == 0)
		(void) imap_parser_feed_literal(p, "", 0);
	    while (want > 0 && pos < size) {
		size_t n = want < chunk ? (size_t) want : chunk;

		if (n > size - pos)
		    n = size - pos;
		want = imap_parser_feed_literal(p, data + pos, n);
		pos += n;
	    }
	    continue;
	}
	if (r == IMAP_PARSE_DONE) {
	    const struct imap_arg *a;
	    size_t n;
	    const char *c;

	    check(imap_parser_tag(p) != NULL && imap_parser_name(p) != NULL);
	    for (c = imap_parser_name(p); *c; c++)
		check(!(*c >= 'a' && *c <= 'z'));
	    a = imap_parser_args(p, &n);
	    check(walk(a, n, 0, lim.depth_max ? lim.depth_max : 16) <= (lim.args_max ? lim.args_max : 10000));
	    seqsets(a, n);
	} else {
	    check(r == IMAP_PARSE_ERROR);
	    check(imap_parser_error(p)[0] != 0);
	    pos += (size_t) (imap_parser_skip(p) < size - pos ? imap_parser_skip(p) : size - pos);
	}
	imap_parser_reset(p);
	commands++;
    }
    imap_parser_free(&p);
    return 0;
}
