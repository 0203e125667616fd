/* cleanup_addr.c - RFC 5322 address lists as cleanup needs them: the
 * recipients of To:/Cc:/Bcc: (sendmail -t) and the targets of a virtual
 * alias; canonical internal addresses; small address sets. */

/* System. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Base. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail. */
#include "address.h"

/* Cleanup. */
#include "cleanup.h"

/* cleanup_addrs_init - an empty list */
void cleanup_addrs_init(struct cleanup_addrs *a)
{
    a->v = NULL;
    a->n = a->cap = 0;
}

/* cleanup_addrs_reset - forget every address, keep the array */
void cleanup_addrs_reset(struct cleanup_addrs *a)
{
    size_t i;

    for (i = 0; i < a->n; i++)
	mem_free(&a->v[i]);
    a->n = 0;
}

/* cleanup_addrs_fini - free everything */
void cleanup_addrs_fini(struct cleanup_addrs *a)
{
    cleanup_addrs_reset(a);
    mem_free(&a->v);
    a->cap = 0;
}

/* cleanup_addrs_add - append a copy of addr */
void cleanup_addrs_add(struct cleanup_addrs *a, const char *addr)
{
    if (a->n == a->cap) {
	a->cap = a->cap ? mem_size_mul(a->cap, 2) : 8;
	a->v = mem_realloc(a->v, mem_size_mul(a->cap, sizeof(*a->v)));
    }
    a->v[a->n++] = mem_strdup(addr);
}

/* cleanup_addrs_find - index of addr or -1 */
long cleanup_addrs_find(const struct cleanup_addrs *a, const char *addr, bool nocase)
{
    size_t i;

    for (i = 0; i < a->n; i++)
	if (nocase ? strcasecmp(a->v[i], addr) == 0 : strcmp(a->v[i], addr) == 0)
	    return (long) i;
    return -1;
}

/* Tokens of an address list. */
enum tok_type {
    TOK_ATOM = 1,			/* atext run (any octet >= 0x80 too) */
    TOK_QSTR,				/* quoted string, unquoted */
    TOK_DLIT,				/* domain literal, with brackets */
    TOK_SPECIAL,			/* one of < > @ , ; : . */
};

struct tok {
    enum tok_type type;
    size_t off;				/* into the text buffer */
    size_t len;
    char special;
};

struct tokens {
    struct tok *v;
    size_t n;
    size_t cap;
    struct str text;			/* token texts */
};

#define ADDR_SPECIALS "()<>[]:;@\\,.\""

/* tok_add - append a token (text in the shared buffer) */
static void tok_add(struct tokens *t, enum tok_type type, const char *text, size_t len, char special)
{
    struct tok *k;

    if (t->n == t->cap) {
	t->cap = t->cap ? mem_size_mul(t->cap, 2) : 32;
	t->v = mem_realloc(t->v, mem_size_mul(t->cap, sizeof(*t->v)));
    }
    k = &t->v[t->n++];
    k->type = type;
    k->off = str_len(&t->text);
    k->len = len;
    k->special = special;
    if (!str_try_append(&t->text, text, len))
	msg_panic("cleanup_addr: token buffer overflow");
}

/* tokenize - split text into tokens, comments and white space dropped;
 * false if there are more than limit tokens */
static bool tokenize(const char *cp, const char *end, struct tokens *t, size_t limit)
{
    struct str *q = str_new(end - cp + 1);

    while (cp < end) {
	unsigned char c = (unsigned char) *cp;

	if (t->n >= limit) {
	    str_free(&q);
	    return false;
	}
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
	    cp++;
	} else if (c == '(') {
	    int depth = 0;

	    for (; cp < end; cp++) {
		if (*cp == '\\' && cp + 1 < end)
		    cp++;
		else if (*cp == '(')
		    depth++;
		else if (*cp == ')' && --depth == 0) {
		    cp++;
		    break;
		}
	    }
	} else if (c == '"') {
	    str_reset(q);
	    for (cp++; cp < end && *cp != '"'; cp++) {
		if (*cp == '\\' && cp + 1 < end)
		    cp++;
		str_appendc_or_panic(q, *cp);
	    }
	    if (cp < end)
		cp++;
	    tok_add(t, TOK_QSTR, str_cstr(q), str_len(q), 0);
	} else if (c == '[') {
	    const char *start = cp;

	    for (cp++; cp < end && *cp != ']'; cp++)
		if (*cp == '\\' && cp + 1 < end)
		    cp++;
	    if (cp < end)
		cp++;
	    tok_add(t, TOK_DLIT, start, (size_t) (cp - start), 0);
	} else if (strchr("<>@,;:.", c) && c != 0) {
	    tok_add(t, TOK_SPECIAL, cp, 1, (char) c);
	    cp++;
	} else if (c < 0x20 || c == 0x7f || strchr(ADDR_SPECIALS, c)) {
	    cp++;				/* stray ")", "]", "\\", controls */
	} else {
	    const char *start = cp;

	    while (cp < end && !((unsigned char) *cp <= ' ' || *cp == 0x7f
				 || strchr(ADDR_SPECIALS, *cp)))
		cp++;
	    tok_add(t, TOK_ATOM, start, (size_t) (cp - start), 0);
	}
    }
    str_free(&q);
    return true;
}

/* emit - one address from tokens [from, to) */
static bool emit(const struct tokens *t, size_t from, size_t to, struct str *addr)
{
    size_t i, colon;

    /* obsolete route "@a,@b:" inside angle brackets: keep what follows
     * the last colon */
    for (colon = to, i = from; i < to; i++)
	if (t->v[i].type == TOK_SPECIAL && t->v[i].special == ':')
	    colon = i;
    if (colon < to)
	from = colon + 1;
    str_reset(addr);
    for (i = from; i < to; i++) {
	const struct tok *k = &t->v[i];
	const char *text = str_cstr(&t->text) + k->off;

	if (k->type == TOK_SPECIAL && k->special != '.' && k->special != '@')
	    continue;
	if (!str_try_append(addr, text, k->len))
	    return false;
    }
    return str_len(addr) > 0 && strcmp(str_cstr(addr), "@") != 0;
}

/* cleanup_addr_list - parse an address list, call fn for each address */
long cleanup_addr_list(const char *text, size_t len, size_t token_limit,
		       void (*fn)(const char *addr, void *ctx), void *ctx)
{
    struct tokens t = {NULL, 0, 0, {NULL, 0, 0, 0}};
    struct str *addr = str_new(CLEANUP_ADDR_MAX);
    size_t i, unit = 0, angle_from = 0, angle_to = 0;
    bool in_angle = false, have_angle = false, complete;
    long count = 0;

    str_init(&t.text, len + 1);
    complete = tokenize(text, text + len, &t, token_limit);
    for (i = 0; i <= t.n; i++) {
	const struct tok *k = i < t.n ? &t.v[i] : NULL;
	char sp = k && k->type == TOK_SPECIAL ? k->special : 0;

	if (k && sp == '<' && !in_angle) {
	    in_angle = have_angle = true;
	    angle_from = i + 1;
	    angle_to = t.n;
	} else if (k && sp == '>' && in_angle) {
	    in_angle = false;
	    angle_to = i;
	} else if (k && sp == ':' && !in_angle) {
	    unit = i + 1;			/* group display name */
	    have_angle = false;
	} else if (k == NULL || (!in_angle && (sp == ',' || sp == ';'))) {
	    bool ok;

	    if (k == NULL && !complete)
		break;				/* the last unit may be cut */
	    if (have_angle)
		ok = emit(&t, angle_from, angle_to, addr);
	    else
		ok = emit(&t, unit, i, addr);
	    if (ok) {
		fn(str_cstr(addr), ctx);
		count++;
	    }
	    unit = i + 1;
	    have_angle = in_angle = false;
	}
    }
    str_free(&addr);
    str_fini(&t.text);
    mem_free(&t.v);
    return complete ? count : -1;
}

/* cleanup_addr_canon - canonical internal form */
bool cleanup_addr_canon(const char *in, const char *origin, struct str *out)
{
    const char *start = in, *end = in + strlen(in), *at;
    size_t dlen;
    char *dom;

    while (start < end && isspace((unsigned char) *start))
	start++;
    while (end > start && isspace((unsigned char) end[-1]))
	end--;
    if (end - start >= 2 && *start == '<' && end[-1] == '>') {
	start++;
	end--;
    }
    str_reset(out);
    if (start == end)
	return true;
    at = address_at(start, (size_t) (end - start));	/* the domain's "@" */
    at = at ? at + 1 : start;
    if (at == start || at == end) {
	/* unqualified ("user" or "user@") */
	if (!str_try_append(out, start, (size_t) (at == end && at > start && at[-1] == '@'
					     ? end - start - 1 : end - start)))
	    return false;
	if (origin == NULL || *origin == 0)
	    return true;
	if (!str_try_appendc(out, '@'))
	    return false;
	at = origin;
	end = origin + strlen(origin);
    } else {
	if (!str_try_append(out, start, (size_t) (at - start)))
	    return false;
    }
    dlen = (size_t) (end - at);
    if (dlen > 0 && at[dlen - 1] == '.')
	dlen--;
    if (!str_try_append(out, at, dlen))
	return false;
    for (dom = out->data + out->len - dlen; *dom; dom++)
	*dom = (char) tolower((unsigned char) *dom);
    return true;
}

/* cleanup_addr_bad - a control byte in an envelope address */
bool cleanup_addr_bad(const char *addr, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
	if ((unsigned char) addr[i] < 0x20 || addr[i] == 0x7f)
	    return true;
    return false;
}
