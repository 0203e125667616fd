/* fuzz_imap_mime.c - libFuzzer target for imapd's message layer
 * (imapd/imap_mime.c, imap_envelope.c, imap_bodystructure.c,
 * imap_section.c, imap_search_match.c, compiled in).
 *
 * Input: byte 0 picks the piece size of the wire reader (1 + b % 64)
 * and, in bit 7, whether the message is read as it is or with CRLF line
 * ends; then a line: the section text (up to the first LF), a second
 * line: the search key; the rest is the message. Properties checked
 * (a violation aborts):
 *   - ENVELOPE, BODY and BODYSTRUCTURE are balanced IMAP lists;
 *   - every part lies inside its parent, its sizes are the wire sizes of
 *     its bytes and its line count their LFs; RFC822.SIZE is the wire
 *     size of the message;
 *   - the message with CRLF line ends has the same ENVELOPE, BODY and
 *     BODYSTRUCTURE as with bare LFs;
 *   - a section read through struct imap_wire in pieces gives exactly
 *     the octets announced, without a NUL; a partial range is the
 *     matching slice of the whole section;
 *   - searching never fails; an empty key always matches. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "mem.h"
#include "str.h"

/* the code under test */
#include "../../imapd/imap_mime.c"
#include "../../imapd/imap_envelope.c"
#include "../../imapd/imap_bodystructure.c"
#include "../../imapd/imap_section.c"
#include "../../imapd/imap_search_match.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

/* balanced_list - s[0..len) is one parenthesised IMAP list */
static void balanced_list(const char *s, size_t len)
{
    long depth = 0;

    check(len >= 2 && s[0] == '(' && s[len - 1] == ')');
    for (size_t i = 0; i < len; i++) {
	if (s[i] == '"') {
	    for (i++; i < len && s[i] != '"'; i++)
		check(s[i] != '\\' && s[i] != '\r' && s[i] != '\n' && (unsigned char) s[i] < 0x80);
	    check(i < len);
	} else if (s[i] == '{') {
	    char *end;
	    unsigned long n = strtoul(s + i + 1, &end, 10);

	    check(end[0] == '}' && end[1] == '\r' && end[2] == '\n');
	    i = (size_t) (end - s) + 2 + n;
	    check(i < len);
	} else if (s[i] == '(') {
	    depth++;
	} else if (s[i] == ')') {
	    check(--depth >= 0);
	    check(depth > 0 || i == len - 1);
	}
    }
    check(depth == 0);
}

/* tree - the offsets, sizes and line counts of every part */
static void tree(const char *d, const struct imap_part *p, size_t from, size_t end)
{
    for (; p; p = p->next) {
	uint64_t lf, bare;

	check(p->hdr_off >= from && p->hdr_off + p->hdr_len <= p->body_off);
	check(p->body_off + p->body_len <= end);
	imap_wire_count(d, p->body_off, p->body_off + p->body_len, &lf, &bare);
	check(p->body_lines == lf && p->body_size == p->body_len + bare);
	imap_wire_count(d, p->hdr_off, p->hdr_off + p->hdr_len, &lf, &bare);
	check(p->hdr_size == p->hdr_len + bare);
	check(!p->is_multipart || p->children != NULL);
	check(!p->is_message || (p->children != NULL && p->children->next == NULL));
	tree(d, p->children, p->body_off, p->body_off + p->body_len);
	from = p->body_off + p->body_len;
    }
}

/* strings - ENVELOPE, BODY, BODYSTRUCTURE into out (each balanced) */
static void strings(const struct imap_msg *m, const char *d, size_t len, struct str *out)
{
    size_t a = str_len(out);

    check(imap_msg_envelope(d, len, out));
    balanced_list(str_cstr(out) + a, str_len(out) - a);
    a = str_len(out);
    check(imap_msg_body(m, out));
    balanced_list(str_cstr(out) + a, str_len(out) - a);
    a = str_len(out);
    check(imap_msg_bodystructure(m, out));
    balanced_list(str_cstr(out) + a, str_len(out) - a);
}

/* read_section - the section in pieces of step */
static struct str *read_section(const struct imap_section_data *sd, uint64_t origin,
				uint64_t count, size_t step)
{
    uint64_t len = imap_partial(sd->wire_size, origin, count);
    struct str *out = str_new(STR_MAX_HUGE);
    struct imap_wire w;
    char buf[64];
    size_t n;

    imap_wire_init(&w, sd->data, sd->start, sd->end, origin, len);
    while ((n = imap_wire_read(&w, buf, step)) > 0) {
	check(n <= step && memchr(buf, 0, n) == NULL);
	check(str_try_append(out, buf, n));
    }
    check(str_len(out) == len && imap_wire_left(&w) == 0);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in, *nl, *sec_text, *key;
    size_t sec_len, key_len, len, step;
    char *copy, *conv = NULL;
    struct imap_msg *m, *m2;
    struct str *s1, *s2;
    struct imap_section sec;
    const char *err;
    bool use_crlf;

    if (size < 1)
	return 0;
    step = 1 + data[0] % 64;
    use_crlf = (data[0] & 0x80) != 0;
    /* An exact-size heap copy, so that ASan sees any read past the end. */
    copy = mem_memdup(data + 1, size - 1);
    in = copy;
    len = size - 1;
    sec_text = in;
    nl = memchr(in, '\n', len);
    sec_len = nl ? (size_t) (nl - in) : len;
    in += nl ? sec_len + 1 : len;
    len -= nl ? sec_len + 1 : sec_len;
    key = in;
    nl = memchr(in, '\n', len);
    key_len = nl ? (size_t) (nl - in) : len;
    in += nl ? key_len + 1 : len;
    len -= nl ? key_len + 1 : key_len;

    if (use_crlf) {		/* bare LFs made CRLF */
	size_t o = 0;

	conv = mem_alloc(len * 2 + 1);
	for (size_t i = 0; i < len; i++) {
	    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
		conv[o++] = '\r';
	    conv[o++] = in[i];
	}
	m = imap_msg_parse(in, len);
	m2 = imap_msg_parse(conv, o);
	s1 = str_new(STR_MAX_HUGE);
	s2 = str_new(STR_MAX_HUGE);
	strings(m, in, len, s1);
	strings(m2, conv, o, s2);
	check(str_len(s1) == str_len(s2) && memcmp(str_cstr(s1), str_cstr(s2), str_len(s1)) == 0);
	check(imap_msg_wire_size(m) == imap_msg_wire_size(m2) && imap_msg_wire_size(m2) == o);
	str_free(&s1);
	str_free(&s2);
	imap_msg_free(&m);
	imap_msg_free(&m2);
	in = conv;
	len = o;
    }

    m = imap_msg_parse(in, len);
    check(imap_msg_wire_size(m) == imap_wire_size(in, len, false));
    tree(in, imap_msg_root(m), 0, len);
    s1 = str_new(STR_MAX_HUGE);
    strings(m, in, len, s1);
    str_free(&s1);

    /* the section named by the first line, whole and in part */
    if (imap_section_parse(sec_text, sec_len, &sec, &err) == 0) {
	struct imap_section_data sd;

	s1 = str_new(1000);
	check(imap_section_format(&sec, s1));
	str_free(&s1);
	if (imap_section_get(m, &sec, &sd, &err) == 0) {
	    struct str *whole = read_section(&sd, 0, UINT64_MAX, step);
	    uint64_t o = step * 3, c = step * 5 + 1;
	    struct str *part = read_section(&sd, o, c, 64 - step + 1);

	    if (o < str_len(whole))
		check(memcmp(str_cstr(part), str_cstr(whole) + o, str_len(part)) == 0);
	    else
		check(str_len(part) == 0);
	    str_free(&whole);
	    str_free(&part);
	    imap_section_data_fini(&sd);
	}
	imap_section_fini(&sec);
    }

    /* searching */
    {
	struct imap_search_key k, empty;
	long day;

	imap_search_key_init(&k, key, key_len);
	imap_search_key_init(&empty, "", 0);
	(void) imap_search_header(in, len, "Subject", &k);
	(void) imap_search_header(in, len, "From", &k);
	check(imap_search_body(m, false, &empty));
	(void) imap_search_body(m, true, &k);
	(void) imap_msg_sent_date(in, len, &day);
	(void) imap_search_date_parse(key, key_len, &day);
	imap_search_key_fini(&k);
	imap_search_key_fini(&empty);
    }
    imap_msg_free(&m);
    mem_free(&conv);
    mem_free(&copy);
    return 0;
}
