/* imap_search.c - SEARCH and UID SEARCH: every RFC 3501 search key,
 * CHARSET UTF-8 / US-ASCII, ESEARCH's RETURN (MIN MAX ALL COUNT) and
 * CONDSTORE's MODSEQ key. Keys are parsed into a tree once, then tested
 * per message, cheap tests (flags, sizes, dates, sets) before those
 * that read the message (headers, bodies: imap_msg.h). */

/* system */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "imap_parse.h"

/* store */
#include "store.h"

/* imapd */
#include "imap_msg.h"
#include "imapd.h"

#define SEARCH_DEPTH_MAX	64
#define SEARCH_KEYS_MAX		1000

enum sk {
    SK_AND = 1,			/* all of list */
    SK_OR,			/* a or b */
    SK_NOT,			/* not a */
    SK_ALL,
    SK_FLAGS_SET,		/* all of bits set */
    SK_FLAGS_CLEAR,		/* none of bits set */
    SK_NONE,			/* matches nothing (unknown keyword) */
    SK_RECENT,
    SK_NEW,
    SK_OLD,
    SK_SEQ,
    SK_UID,
    SK_LARGER,
    SK_SMALLER,
    SK_BEFORE,
    SK_ON,
    SK_SINCE,
    SK_SENTBEFORE,
    SK_SENTON,
    SK_SENTSINCE,
    SK_HEADER,
    SK_BODY,
    SK_TEXT,
    SK_MODSEQ,
};

struct skey {
    enum sk kind;
    uint32_t bits;
    uint64_t num;
    long day;
    char *hname;
    struct imap_search_key key;
    bool key_set;
    struct imap_seqset set;
    struct skey **list;
    size_t n;
};

struct search_parse {
    struct imap_session *s;
    const char *error;
    unsigned keys;
    bool modseq;
    iconv_t cd;			/* CHARSET other than UTF-8: to UTF-8 */
    bool convert;
    char **conv;		/* converted strings, freed at the end */
    size_t nconv;
};

/* to_utf8 - a search string in the CHARSET converted to UTF-8 (kept in
 * p->conv); false when it does not convert */
static bool to_utf8(struct search_parse *p, const char **s_r, size_t *len_r)
{
    size_t inleft = *len_r, outsize = 4 * *len_r + 16, outleft = outsize;
    char *in = (char *) *s_r, *out = mem_alloc(outsize + 1), *o = out;

    iconv(p->cd, NULL, NULL, NULL, NULL);
    if (iconv(p->cd, &in, &inleft, &o, &outleft) == (size_t) -1
	|| iconv(p->cd, NULL, NULL, &o, &outleft) == (size_t) -1) {
	free(out);
	return false;
    }
    *o = 0;
    p->conv = mem_realloc(p->conv, (p->nconv + 1) * sizeof(*p->conv));
    p->conv[p->nconv++] = out;
    *s_r = out;
    *len_r = (size_t) (o - out);
    return true;
}

struct search_msg {
    struct imap_session *s;
    uint32_t seq;
    size_t idx;
    const struct store_msg *m;
    struct imap_msg_data data;
    bool mapped, map_failed;
    struct imap_msg *msg;
};

/* skey_free - a tree */
static void skey_free(struct skey *k)
{
    size_t i;

    if (k == NULL)
	return;
    for (i = 0; i < k->n; i++)
	skey_free(k->list[i]);
    free(k->list);
    free(k->hname);
    if (k->key_set)
	imap_search_key_fini(&k->key);
    imap_seqset_fini(&k->set);
    free(k);
}

/* skey_new - a node */
static struct skey *skey_new(enum sk kind)
{
    struct skey *k = mem_zalloc(sizeof(*k));

    k->kind = kind;
    return k;
}

/* skey_add - append child c to list node k */
static void skey_add(struct skey *k, struct skey *c)
{
    k->list = mem_realloc(k->list, (k->n + 1) * sizeof(*k->list));
    k->list[k->n++] = c;
}

static struct skey *parse_key(struct search_parse *p, const struct imap_arg *a, size_t n,
			      size_t *i, unsigned depth);

/* want_string - the next argument as a string */
static bool want_string(struct search_parse *p, const struct imap_arg *a, size_t n, size_t *i,
			const char **s_r, size_t *len_r)
{
    if (*i >= n || !imap_arg_astring(&a[*i], s_r, len_r)) {
	p->error = "Search key needs a string";
	return false;
    }
    (*i)++;
    if (p->convert && !to_utf8(p, s_r, len_r)) {
	p->error = "A search string is not valid in its CHARSET";
	return false;
    }
    return true;
}

/* want_date - the next argument as a search date */
static bool want_date(struct search_parse *p, const struct imap_arg *a, size_t n, size_t *i,
		      long *day_r)
{
    const char *s;
    size_t len;

    if (!want_string(p, a, n, i, &s, &len) || !imap_search_date_parse(s, len, day_r)) {
	p->error = "Invalid search date (d-Mon-yyyy)";
	return false;
    }
    return true;
}

/* want_number - the next argument as a number */
static bool want_number(struct search_parse *p, const struct imap_arg *a, size_t n, size_t *i,
			uint64_t max, uint64_t *v_r)
{
    if (*i >= n || !imap_arg_number(&a[*i], max, v_r)) {
	p->error = "Search key needs a number";
	return false;
    }
    (*i)++;
    return true;
}

/* string_key - a node matching a string */
static struct skey *string_key(enum sk kind, const char *hname, const char *s, size_t len)
{
    struct skey *k = skey_new(kind);

    if (hname)
	k->hname = mem_strdup(hname);
    imap_search_key_init(&k->key, s, len);
    k->key_set = true;
    return k;
}

/* parse_key - one search key at a[*i] */
static struct skey *parse_key(struct search_parse *p, const struct imap_arg *a, size_t n,
			      size_t *i, unsigned depth)
{
    static const struct {
	const char *name;
	enum sk kind;
	uint32_t bits;
    } flagkeys[] = {
	{"ANSWERED", SK_FLAGS_SET, STORE_FLAG_REPLIED},
	{"DELETED", SK_FLAGS_SET, STORE_FLAG_TRASHED},
	{"DRAFT", SK_FLAGS_SET, STORE_FLAG_DRAFT},
	{"FLAGGED", SK_FLAGS_SET, STORE_FLAG_FLAGGED},
	{"SEEN", SK_FLAGS_SET, STORE_FLAG_SEEN},
	{"UNANSWERED", SK_FLAGS_CLEAR, STORE_FLAG_REPLIED},
	{"UNDELETED", SK_FLAGS_CLEAR, STORE_FLAG_TRASHED},
	{"UNDRAFT", SK_FLAGS_CLEAR, STORE_FLAG_DRAFT},
	{"UNFLAGGED", SK_FLAGS_CLEAR, STORE_FLAG_FLAGGED},
	{"UNSEEN", SK_FLAGS_CLEAR, STORE_FLAG_SEEN},
	{"ALL", SK_ALL, 0},
	{"RECENT", SK_RECENT, 0},
	{"NEW", SK_NEW, 0},
	{"OLD", SK_OLD, 0},
    };
    static const struct {
	const char *name;
	const char *header;
    } hdrkeys[] = {
	{"FROM", "From"}, {"TO", "To"}, {"CC", "Cc"}, {"BCC", "Bcc"}, {"SUBJECT", "Subject"},
    };
    static const struct {
	const char *name;
	enum sk kind;
    } datekeys[] = {
	{"BEFORE", SK_BEFORE}, {"ON", SK_ON}, {"SINCE", SK_SINCE},
	{"SENTBEFORE", SK_SENTBEFORE}, {"SENTON", SK_SENTON}, {"SENTSINCE", SK_SENTSINCE},
    };
    const char *name, *str;
    size_t len, j;
    struct skey *k;

    if (depth > SEARCH_DEPTH_MAX || ++p->keys > SEARCH_KEYS_MAX) {
	p->error = "Search program too complex";
	return NULL;
    }
    if (*i >= n) {
	p->error = "Missing search key";
	return NULL;
    }
    if (a[*i].type == IMAP_ARG_LIST) {
	const struct imap_arg *l = a[*i].list;
	size_t ln = a[*i].count, li = 0;

	(*i)++;
	if (ln == 0) {
	    p->error = "Empty search key list";
	    return NULL;
	}
	k = skey_new(SK_AND);
	while (li < ln) {
	    struct skey *c = parse_key(p, l, ln, &li, depth + 1);

	    if (c == NULL) {
		skey_free(k);
		return NULL;
	    }
	    skey_add(k, c);
	}
	return k;
    }
    if (!imap_arg_atom(&a[*i], &name) || a[*i].type == IMAP_ARG_NIL) {
	p->error = "Search keys are atoms";
	return NULL;
    }
    (*i)++;
    for (j = 0; j < sizeof(flagkeys) / sizeof(flagkeys[0]); j++)
	if (strcasecmp(name, flagkeys[j].name) == 0) {
	    k = skey_new(flagkeys[j].kind);
	    k->bits = flagkeys[j].bits;
	    return k;
	}
    for (j = 0; j < sizeof(hdrkeys) / sizeof(hdrkeys[0]); j++)
	if (strcasecmp(name, hdrkeys[j].name) == 0) {
	    if (!want_string(p, a, n, i, &str, &len))
		return NULL;
	    return string_key(SK_HEADER, hdrkeys[j].header, str, len);
	}
    for (j = 0; j < sizeof(datekeys) / sizeof(datekeys[0]); j++)
	if (strcasecmp(name, datekeys[j].name) == 0) {
	    k = skey_new(datekeys[j].kind);
	    if (!want_date(p, a, n, i, &k->day)) {
		skey_free(k);
		return NULL;
	    }
	    return k;
	}
    if (strcasecmp(name, "BODY") == 0 || strcasecmp(name, "TEXT") == 0) {
	enum sk kind = strcasecmp(name, "BODY") == 0 ? SK_BODY : SK_TEXT;

	if (!want_string(p, a, n, i, &str, &len))
	    return NULL;
	return string_key(kind, NULL, str, len);
    }
    if (strcasecmp(name, "HEADER") == 0) {
	const char *field;
	size_t flen;
	char fbuf[256];

	if (!want_string(p, a, n, i, &field, &flen) || !want_string(p, a, n, i, &str, &len))
	    return NULL;
	if (flen == 0 || flen >= sizeof(fbuf) || memchr(field, 0, flen)) {
	    p->error = "Bad header field name";
	    return NULL;
	}
	memcpy(fbuf, field, flen);
	fbuf[flen] = 0;
	return string_key(SK_HEADER, fbuf, str, len);
    }
    if (strcasecmp(name, "KEYWORD") == 0 || strcasecmp(name, "UNKEYWORD") == 0) {
	bool set = strcasecmp(name, "KEYWORD") == 0;
	const char *kw, *err;
	uint32_t bits;

	if (*i >= n || !imap_arg_atom(&a[*i], &kw)) {
	    p->error = "KEYWORD needs a flag";
	    return NULL;
	}
	(*i)++;
	if (!imap_flags_parse(p->s, &a[*i - 1], 1, false, &bits, &err)) {
	    p->error = err;
	    return NULL;
	}
	if (bits == 0)		/* an unknown keyword: no message has it */
	    return skey_new(set ? SK_NONE : SK_ALL);
	k = skey_new(set ? SK_FLAGS_SET : SK_FLAGS_CLEAR);
	k->bits = bits;
	return k;
    }
    if (strcasecmp(name, "LARGER") == 0 || strcasecmp(name, "SMALLER") == 0) {
	k = skey_new(strcasecmp(name, "LARGER") == 0 ? SK_LARGER : SK_SMALLER);
	if (!want_number(p, a, n, i, UINT64_MAX >> 1, &k->num)) {
	    skey_free(k);
	    return NULL;
	}
	return k;
    }
    if (strcasecmp(name, "NOT") == 0) {
	struct skey *c = parse_key(p, a, n, i, depth + 1);

	if (c == NULL)
	    return NULL;
	k = skey_new(SK_NOT);
	skey_add(k, c);
	return k;
    }
    if (strcasecmp(name, "OR") == 0) {
	struct skey *c1, *c2;

	if ((c1 = parse_key(p, a, n, i, depth + 1)) == NULL)
	    return NULL;
	if ((c2 = parse_key(p, a, n, i, depth + 1)) == NULL) {
	    skey_free(c1);
	    return NULL;
	}
	k = skey_new(SK_OR);
	skey_add(k, c1);
	skey_add(k, c2);
	return k;
    }
    if (strcasecmp(name, "UID") == 0) {
	const char *set;

	k = skey_new(SK_UID);
	if (*i >= n || !imap_arg_atom(&a[*i], &set) || !imap_seqset_parse(set, 100000, &k->set)) {
	    skey_free(k);
	    p->error = "UID needs a UID set";
	    return NULL;
	}
	(*i)++;
	return k;
    }
    if (strcasecmp(name, "MODSEQ") == 0) {
	/* MODSEQ [entry-name entry-type] number */
	if (*i < n && a[*i].type == IMAP_ARG_QUOTED)
	    *i += 2;
	k = skey_new(SK_MODSEQ);
	if (!want_number(p, a, n, i, UINT64_MAX >> 1, &k->num)) {
	    skey_free(k);
	    return NULL;
	}
	p->modseq = true;
	return k;
    }
    if ((name[0] >= '0' && name[0] <= '9') || name[0] == '*') {
	k = skey_new(SK_SEQ);
	if (!imap_seqset_parse(name, 100000, &k->set)) {
	    skey_free(k);
	    p->error = "Invalid message sequence set";
	    return NULL;
	}
	return k;
    }
    p->error = "Unknown search key";
    return NULL;
}

/* ensure_mapped - the message's bytes for header and body keys */
static bool ensure_mapped(struct search_msg *sm)
{
    const char *err;
    int fd;

    if (sm->mapped)
	return true;
    if (sm->map_failed)
	return false;
    fd = store_open_msg(sm->s->sel->mb, sm->idx, &err);
    if (fd < 0 || imap_msg_map(fd, &sm->data, &err) < 0) {
	if (fd >= 0)
	    close(fd);
	sm->map_failed = true;
	return false;
    }
    close(fd);
    sm->mapped = true;
    return true;
}

/* internal_day - the day of the internal date in the server's zone */
static long internal_day(time_t t)
{
    struct tm tm;

    localtime_r(&t, &tm);
    return imap_day_of_time(t, tm.tm_gmtoff);
}

/* eval - does the message match k */
static bool eval(const struct skey *k, struct search_msg *sm)
{
    const struct store_msg *m = sm->m;
    size_t i;
    long day;

    switch (k->kind) {
    case SK_AND:
	for (i = 0; i < k->n; i++)
	    if (!eval(k->list[i], sm))
		return false;
	return true;
    case SK_OR:
	return eval(k->list[0], sm) || eval(k->list[1], sm);
    case SK_NOT:
	return !eval(k->list[0], sm);
    case SK_ALL:
	return true;
    case SK_NONE:
	return false;
    case SK_FLAGS_SET:
	return (m->flags & k->bits) == k->bits;
    case SK_FLAGS_CLEAR:
	return (m->flags & k->bits) == 0;
    case SK_RECENT:
	return m->recent;
    case SK_NEW:
	return m->recent && !(m->flags & STORE_FLAG_SEEN);
    case SK_OLD:
	return !m->recent;
    case SK_SEQ:
	return imap_seqset_contains(&k->set, sm->seq, (uint32_t) sm->s->sel->count);
    case SK_UID:
	return imap_seqset_contains(&k->set, m->uid, sm->s->sel->count
				    ? sm->s->sel->uids[sm->s->sel->count - 1] : 0);
    case SK_LARGER:
	return (uint64_t) store_msg_crlf_size(sm->s->sel->mb, sm->idx) > k->num;
    case SK_SMALLER:
	return (uint64_t) store_msg_crlf_size(sm->s->sel->mb, sm->idx) < k->num;
    case SK_BEFORE:
	return internal_day(m->mtime) < k->day;
    case SK_ON:
	return internal_day(m->mtime) == k->day;
    case SK_SINCE:
	return internal_day(m->mtime) >= k->day;
    case SK_SENTBEFORE:
    case SK_SENTON:
    case SK_SENTSINCE:
	if (!ensure_mapped(sm))
	    return false;
	if (!imap_msg_sent_date(sm->data.data, sm->data.len, &day))
	    day = internal_day(m->mtime);
	return k->kind == SK_SENTBEFORE ? day < k->day
	    : k->kind == SK_SENTON ? day == k->day : day >= k->day;
    case SK_HEADER:
	if (!ensure_mapped(sm))
	    return false;
	return imap_search_header(sm->data.data, sm->data.len, k->hname, &k->key);
    case SK_BODY:
    case SK_TEXT:
	if (!ensure_mapped(sm))
	    return false;
	if (sm->msg == NULL)
	    sm->msg = imap_msg_parse(sm->data.data, sm->data.len);
	return imap_search_body(sm->msg, k->kind == SK_TEXT, &k->key);
    case SK_MODSEQ:
	return m->modseq >= k->num;
    }
    return false;
}

/* cost - 0 for keys that need no message file, 1 for headers, 2 bodies */
static int cost(const struct skey *k)
{
    size_t i;
    int c = 0;

    switch (k->kind) {
    case SK_HEADER:
    case SK_SENTBEFORE:
    case SK_SENTON:
    case SK_SENTSINCE:
	return 1;
    case SK_BODY:
    case SK_TEXT:
	return 2;
    default:
	for (i = 0; i < k->n; i++)
	    if (cost(k->list[i]) > c)
		c = cost(k->list[i]);
	return c;
    }
}

/* cheap_first - order AND lists by cost (stable) */
static void cheap_first(struct skey *k)
{
    size_t i, j;

    for (i = 0; i < k->n; i++)
	cheap_first(k->list[i]);
    if (k->kind != SK_AND)
	return;
    for (i = 1; i < k->n; i++) {
	struct skey *c = k->list[i];

	for (j = i; j > 0 && cost(k->list[j - 1]) > cost(c); j--)
	    k->list[j] = k->list[j - 1];
	k->list[j] = c;
    }
}

/* append_set - "1:3,5" of ascending numbers */
static void append_set(struct str *out, const uint32_t *v, size_t n)
{
    size_t i = 0;

    while (i < n) {
	size_t j = i;

	while (j + 1 < n && v[j + 1] == v[j] + 1)
	    j++;
	if (i > 0)
	    str_appendc_or_panic(out, ',');
	if (j > i)
	    str_appendf_or_panic(out, "%u:%u", v[i], v[j]);
	else
	    str_appendf_or_panic(out, "%u", v[i]);
	i = j + 1;
    }
}

/* search_parse_fini - the converter and converted strings (the keys
 * hold their own folded copies) */
static void search_parse_fini(struct search_parse *p)
{
    size_t i;

    if (p->convert)
	iconv_close(p->cd);
    p->convert = false;
    for (i = 0; i < p->nconv; i++)
	free(p->conv[i]);
    free(p->conv);
    p->conv = NULL;
    p->nconv = 0;
}

#define RET_MIN		1u
#define RET_MAX		2u
#define RET_ALL		4u
#define RET_COUNT	8u

/* imap_cmd_search - SEARCH and UID SEARCH */
void imap_cmd_search(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    struct search_parse p = {.s = s };
    struct skey *root;
    size_t i = 0, seq;
    bool esearch = false;
    unsigned ret = 0;
    uint32_t *res;
    size_t nres = 0;
    uint64_t maxmod = 0;
    struct str *out;

    if (nargs >= 2 && imap_arg_atom_is(&args[0], "RETURN")) {
	const struct imap_arg *l;
	size_t ln, j;

	if (!imap_arg_list(&args[1], &l, &ln))
	    return imap_cmd_bad(s, "SEARCH RETURN needs a list");
	esearch = true;
	for (j = 0; j < ln; j++) {
	    if (imap_arg_atom_is(&l[j], "MIN"))
		ret |= RET_MIN;
	    else if (imap_arg_atom_is(&l[j], "MAX"))
		ret |= RET_MAX;
	    else if (imap_arg_atom_is(&l[j], "ALL"))
		ret |= RET_ALL;
	    else if (imap_arg_atom_is(&l[j], "COUNT"))
		ret |= RET_COUNT;
	    else
		return imap_cmd_bad(s, "SEARCH RETURN: unknown option");
	}
	if (ret == 0)
	    ret = RET_ALL;
	i = 2;
    }
    if (nargs >= i + 2 && imap_arg_atom_is(&args[i], "CHARSET")) {
	const char *cs;

	if (!imap_arg_astring(&args[i + 1], &cs, NULL))
	    return imap_cmd_bad(s, "CHARSET needs a name");
	if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0
	    && strcasecmp(cs, "UTF8") != 0) {
	    /* any charset iconv knows: the strings are made UTF-8 */
	    if (strlen(cs) > 64 || (p.cd = iconv_open("UTF-8", cs)) == (iconv_t) -1)
		return imap_cmd_no(s, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
	    p.convert = true;
	}
	i += 2;
    }
    if (i >= nargs)
	return imap_cmd_bad(s, "SEARCH needs search keys");
    root = skey_new(SK_AND);
    while (i < nargs) {
	struct skey *c = parse_key(&p, args, nargs, &i, 0);

	if (c == NULL) {
	    skey_free(root);
	    search_parse_fini(&p);
	    return imap_cmd_bad(s, "SEARCH: %s", p.error ? p.error : "bad search key");
	}
	skey_add(root, c);
    }
    search_parse_fini(&p);
    if (p.modseq)
	s->condstore = true;
    cheap_first(root);
    res = mem_alloc_array(s->sel->count ? s->sel->count : 1, sizeof(*res));
    for (seq = 1; seq <= s->sel->count; seq++) {
	long idx = imap_select_index(s, (uint32_t) seq);
	struct search_msg sm = {.s = s,.seq = (uint32_t) seq };

	if (idx < 0)
	    continue;		/* expunged by another session: not reported yet */
	sm.idx = (size_t) idx;
	sm.m = store_msg(s->sel->mb, (size_t) idx);
	if (eval(root, &sm)) {
	    res[nres++] = uid ? sm.m->uid : (uint32_t) seq;
	    if (sm.m->modseq > maxmod)
		maxmod = sm.m->modseq;
	}
	imap_msg_free(&sm.msg);
	if (sm.mapped)
	    imap_msg_unmap(&sm.data);
    }
    skey_free(root);
    out = str_new(STR_MAX_HUGE);
    if (esearch) {
	str_appends_or_panic(out, "ESEARCH (TAG ");
	if (!imap_append_quoted(out, s->tag, strlen(s->tag)))
	    msg_panic("search: tag");
	str_appendc_or_panic(out, ')');
	if (uid)
	    str_appends_or_panic(out, " UID");
	if ((ret & RET_MIN) && nres)
	    str_appendf_or_panic(out, " MIN %u", res[0]);
	if ((ret & RET_MAX) && nres)
	    str_appendf_or_panic(out, " MAX %u", res[nres - 1]);
	if ((ret & RET_ALL) && nres) {
	    str_appends_or_panic(out, " ALL ");
	    append_set(out, res, nres);
	}
	if (ret & RET_COUNT)
	    str_appendf_or_panic(out, " COUNT %zu", nres);
	if (p.modseq && nres)
	    str_appendf_or_panic(out, " MODSEQ %llu", (unsigned long long) maxmod);
    } else {
	str_appends_or_panic(out, "SEARCH");
	for (i = 0; i < nres; i++)
	    str_appendf_or_panic(out, " %u", res[i]);
	if (p.modseq && nres)
	    str_appendf_or_panic(out, " (MODSEQ %llu)", (unsigned long long) maxmod);
    }
    imap_untagged(s, "%s", str_cstr(out));
    str_free(&out);
    free(res);
    imap_cmd_ok(s);
}
