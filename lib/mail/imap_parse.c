/* imap_parse.c - the IMAP command tokenizer (imap_parse.h): tag, name
 * and an argument tree built line by line, literal by literal, within
 * fixed bounds; plus the argument, sequence-set and quoting helpers. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "imap_parse.h"

enum stage {
    ST_TAG = 0,			/* nothing parsed yet */
    ST_ARGS,			/* tag and name parsed; arguments */
    ST_LITERAL,			/* a literal announced, bytes awaited */
    ST_LINE,			/* literal complete: the rest of the line awaited */
    ST_DONE,
    ST_ERROR,
};

struct level {
    struct imap_arg *items;
    size_t n, cap;
};

struct imap_parser {
    struct imap_parse_limits lim;
    enum stage stage;
    char *tag;
    char *name;
    struct level *levels;	/* levels[0]: top; depth + 1 used */
    unsigned depth;
    unsigned args;		/* at all levels */
    size_t total;		/* bytes of the command so far */
    void **blocks;		/* to free at reset */
    size_t nblocks, capblocks;
    struct imap_literal_info lit;
    char *litbuf;
    uint64_t litgot;
    char error[200];
    uint64_t skip;
};

/* keep - remember a block to free at reset */
static void *keep(struct imap_parser *p, void *block)
{
    if (p->nblocks == p->capblocks) {
	p->capblocks = p->capblocks ? 2 * p->capblocks : 16;
	p->blocks = mem_realloc(p->blocks, p->capblocks * sizeof(*p->blocks));
    }
    p->blocks[p->nblocks++] = block;
    return block;
}

/* imap_parser_new - a parser with the given bounds (0: default) */
struct imap_parser *imap_parser_new(const struct imap_parse_limits *limits)
{
    struct imap_parser *p = mem_zalloc(sizeof(*p));

    if (limits)
	p->lim = *limits;
    if (p->lim.command_max == 0)
	p->lim.command_max = 65536;
    if (p->lim.literal_mem_max == 0)
	p->lim.literal_mem_max = 65536;
    if (p->lim.literal_max == 0)
	p->lim.literal_max = 64 * 1024 * 1024;
    if (p->lim.depth_max == 0)
	p->lim.depth_max = 16;
    if (p->lim.args_max == 0)
	p->lim.args_max = 10000;
    p->levels = mem_zalloc((p->lim.depth_max + 1) * sizeof(*p->levels));
    return p;
}

/* imap_parser_reset - forget the command */
void imap_parser_reset(struct imap_parser *p)
{
    size_t i;

    for (i = 0; i < p->nblocks; i++)
	free(p->blocks[i]);
    p->nblocks = 0;
    for (i = 0; i <= p->lim.depth_max; i++)
	p->levels[i] = (struct level) { 0 };
    free(p->litbuf);
    p->litbuf = NULL;
    p->litgot = 0;
    p->stage = ST_TAG;
    p->tag = p->name = NULL;
    p->depth = 0;
    p->args = 0;
    p->total = 0;
    p->error[0] = 0;
    p->skip = 0;
    memset(&p->lit, 0, sizeof(p->lit));
}

/* imap_parser_free - release the parser */
void imap_parser_free(struct imap_parser **pp)
{
    struct imap_parser *p = *pp;

    if (p == NULL)
	return;
    imap_parser_reset(p);
    free(p->blocks);
    free(p->levels);
    free(p);
    *pp = NULL;
}

/* fail - enter the error state with text */
static enum imap_parse_result fail(struct imap_parser *p, const char *text)
{
    fmt_buf_cut(p->error, sizeof(p->error), "%s", text);
    p->stage = ST_ERROR;
    return IMAP_PARSE_ERROR;
}

/* copy - a NUL-terminated copy of len bytes, freed at reset */
static char *copy(struct imap_parser *p, const char *s, size_t len)
{
    char *c = keep(p, mem_alloc(len + 1));

    memcpy(c, s, len);
    c[len] = 0;
    return c;
}

/* push - a new argument in the current list; NULL when over the bound */
static struct imap_arg *push(struct imap_parser *p)
{
    struct level *l = &p->levels[p->depth];

    if (p->args >= p->lim.args_max)
	return NULL;
    if (l->n == l->cap) {
	size_t cap = l->cap ? 2 * l->cap : 8;
	struct imap_arg *items = mem_alloc(cap * sizeof(*items));

	/* the old array is kept (freed at reset): the caller may hold
	 * imap_parser_args' pointer until the next feed */
	if (l->n)
	    memcpy(items, l->items, l->n * sizeof(*items));
	keep(p, items);
	l->items = items;
	l->cap = cap;
    }
    p->args++;
    memset(&l->items[l->n], 0, sizeof(l->items[0]));
    return &l->items[l->n++];
}

/* is_atom_char - a byte that may be in an atom outside brackets */
static bool is_atom_char(unsigned char c)
{
    if (c < 0x20 || c == 0x7f)
	return false;
    return c != ' ' && c != '(' && c != ')' && c != '{' && c != '"';
}

/* parse_args - the arguments from line[i] on (need_sep: a token was just
 * finished: the next byte must be SP, ')' or the end) */
static enum imap_parse_result parse_args(struct imap_parser *p, const unsigned char *line,
					 size_t len, size_t i, bool need_sep)
{
    while (i < len) {
	unsigned char c = line[i];
	struct imap_arg *a;

	if (c == ' ') {
	    i++;
	    need_sep = false;
	    continue;
	}
	if (c == ')') {
	    struct level *inner;

	    if (p->depth == 0)
		return fail(p, "Unexpected ')'");
	    inner = &p->levels[p->depth];
	    p->depth--;
	    a = &p->levels[p->depth].items[p->levels[p->depth].n - 1];
	    a->list = inner->items;
	    a->count = inner->n;
	    *inner = (struct level) { 0 };
	    i++;
	    need_sep = true;
	    continue;
	}
	if (need_sep)
	    return fail(p, "Missing space between arguments");
	if (c == '(') {
	    if (p->depth >= p->lim.depth_max)
		return fail(p, "Lists nested too deeply");
	    if ((a = push(p)) == NULL)
		return fail(p, "Too many arguments");
	    a->type = IMAP_ARG_LIST;
	    p->depth++;
	    p->levels[p->depth] = (struct level) { 0 };
	    i++;
	    continue;
	}
	if (c == '"') {
	    size_t j = i + 1, n = 0;
	    char *v;

	    /* unescaped length first */
	    for (; j < len && line[j] != '"'; j++, n++) {
		if (line[j] == '\\') {
		    if (j + 1 >= len || (line[j + 1] != '"' && line[j + 1] != '\\'))
			return fail(p, "Bad escape in quoted string (only \\\" and \\\\)");
		    j++;
		} else if (line[j] == 0 || line[j] == '\r' || line[j] == '\n') {
		    return fail(p, "NUL, CR or LF in quoted string");
		}
	    }
	    if (j >= len)
		return fail(p, "Unterminated quoted string");
	    if ((a = push(p)) == NULL)
		return fail(p, "Too many arguments");
	    v = keep(p, mem_alloc(n + 1));
	    for (j = i + 1, n = 0; line[j] != '"'; j++) {
		if (line[j] == '\\')
		    j++;
		v[n++] = (char) line[j];
	    }
	    v[n] = 0;
	    a->type = IMAP_ARG_QUOTED;
	    a->str = v;
	    a->len = n;
	    i = j + 1;
	    need_sep = true;
	    continue;
	}
	if (c == '{' || (c == '~' && i + 1 < len && line[i + 1] == '{')) {
	    bool lit8 = c == '~';
	    size_t j = i + (lit8 ? 2 : 1);
	    uint64_t n = 0;
	    size_t digits = 0;
	    bool plus = false;

	    for (; j < len && line[j] >= '0' && line[j] <= '9'; j++, digits++) {
		if (digits >= 19)
		    return fail(p, "Literal size too large");
		n = n * 10 + (uint64_t) (line[j] - '0');
	    }
	    if (j < len && line[j] == '+') {
		plus = true;
		j++;
	    }
	    if (digits == 0 || j >= len || line[j] != '}')
		return fail(p, "Bad literal announcement (expected {number} or {number+})");
	    if (j + 1 != len)
		return fail(p, "Literal announcement not at the end of the line");
	    p->lit.size = n;
	    p->lit.sync = !plus;
	    p->lit.literal8 = lit8;
	    p->lit.mem_ok = n <= p->lim.literal_mem_max
		&& p->total + n <= p->lim.command_max;
	    if (n > p->lim.literal_max) {
		p->skip = plus ? n : 0;
		return fail(p, "Literal too large");
	    }
	    if (p->args >= p->lim.args_max) {
		p->skip = plus ? n : 0;
		return fail(p, "Too many arguments");
	    }
	    p->stage = ST_LITERAL;
	    p->litgot = 0;
	    return IMAP_PARSE_LITERAL;
	}
	/* an atom, with [...] parts taken whole */
	{
	    size_t start = i;
	    bool bracket = false;

	    while (i < len) {
		c = line[i];
		if (c == 0)
		    return fail(p, "NUL byte in command");
		if (bracket) {
		    if (c < 0x20 || c == 0x7f)
			return fail(p, "Control character in command");
		    if (c == ']')
			bracket = false;
		    i++;
		    continue;
		}
		if (c == '[') {
		    bracket = true;
		    i++;
		    continue;
		}
		if (!is_atom_char(c))
		    break;
		i++;
	    }
	    if (bracket)
		return fail(p, "Missing ']'");
	    if (i == start) {
		if (c < 0x20 || c == 0x7f)
		    return fail(p, c == 0 ? "NUL byte in command" : "Control character in command");
		return fail(p, "Unexpected character in command");
	    }
	    if ((a = push(p)) == NULL)
		return fail(p, "Too many arguments");
	    a->str = copy(p, (const char *) line + start, i - start);
	    a->len = i - start;
	    a->type = (a->len == 3 && strcasecmp(a->str, "NIL") == 0) ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	    need_sep = true;
	}
    }
    if (p->depth > 0)
	return fail(p, "Missing ')'");
    p->stage = ST_DONE;
    return IMAP_PARSE_DONE;
}

/* imap_parser_feed_line - one line (without CR LF) */
enum imap_parse_result imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len)
{
    const unsigned char *u = (const unsigned char *) line;
    size_t i = 0, start;

    switch (p->stage) {
    case ST_DONE:
    case ST_ERROR:
	msg_panic("imap_parser_feed_line: not reset");
    case ST_LITERAL:
	msg_panic("imap_parser_feed_line: literal pending");
    default:
	break;
    }
    if (len > p->lim.command_max || p->total + len > p->lim.command_max) {
	p->total = p->lim.command_max;
	if (p->stage == ST_TAG) {
	    /* still try to find the tag for the reply */
	    for (i = 0; i < len && i < 64 && is_atom_char(u[i]) && u[i] != '+'; i++)
		;
	    if (i > 0 && i < len && u[i] == ' ')
		p->tag = copy(p, line, i);
	}
	return fail(p, "Command too long");
    }
    p->total += len;
    if (p->stage == ST_LINE) {
	p->stage = ST_ARGS;
	return parse_args(p, u, len, 0, true);
    }
    /* tag */
    for (i = 0; i < len && is_atom_char(u[i]) && u[i] != '+'; i++)
	;
    if (i == 0)
	return fail(p, len == 0 ? "Empty command line" : "Missing or bad tag");
    if (i > 256)
	return fail(p, "Tag too long");
    p->tag = copy(p, line, i);
    if (memchr(line, 0, len) != NULL)
	return fail(p, "NUL byte in command");
    if (i >= len || u[i] != ' ') {
	if (i >= len)
	    return fail(p, "Missing command name");
	return fail(p, "Bad character in tag");
    }
    i++;
    start = i;
    for (; i < len && is_atom_char(u[i]) && u[i] != '[' && u[i] != ']'; i++)
	;
    if (i == start)
	return fail(p, "Missing command name");
    if (i - start > 64)
	return fail(p, "Command name too long");
    p->name = copy(p, line + start, i - start);
    for (char *c = p->name; *c; c++)
	if (*c >= 'a' && *c <= 'z')
	    *c = (char) (*c - 'a' + 'A');
    p->stage = ST_ARGS;
    if (i < len && u[i] != ' ')
	return fail(p, "Bad character in command name");
    return parse_args(p, u, len, i, false);
}

/* imap_parser_literal - the pending literal */
const struct imap_literal_info *imap_parser_literal(const struct imap_parser *p)
{
    return &p->lit;
}

/* imap_parser_feed_literal - bytes of the pending in-memory literal */
uint64_t imap_parser_feed_literal(struct imap_parser *p, const void *data, size_t len)
{
    uint64_t want;

    if (p->stage != ST_LITERAL || !p->lit.mem_ok)
	msg_panic("imap_parser_feed_literal: no in-memory literal pending");
    if (p->litbuf == NULL)
	p->litbuf = mem_alloc((size_t) p->lit.size + 1);
    want = p->lit.size - p->litgot;
    if (len > want)
	msg_panic("imap_parser_feed_literal: %zu bytes, %llu wanted", len,
		  (unsigned long long) want);
    memcpy(p->litbuf + p->litgot, data, len);
    p->litgot += len;
    if (p->litgot < p->lit.size)
	return p->lit.size - p->litgot;
    {
	struct imap_arg *a = push(p);	/* args_max checked at the announcement */

	p->litbuf[p->lit.size] = 0;
	a->type = IMAP_ARG_LITERAL;
	a->literal8 = p->lit.literal8;
	a->str = keep(p, p->litbuf);
	a->len = (size_t) p->lit.size;
	p->litbuf = NULL;
	p->total += (size_t) p->lit.size;
	p->stage = ST_LINE;
    }
    return 0;
}

/* imap_parser_literal_streamed - the caller consumed the literal */
void imap_parser_literal_streamed(struct imap_parser *p, uintptr_t cookie)
{
    struct imap_arg *a;

    if (p->stage != ST_LITERAL)
	msg_panic("imap_parser_literal_streamed: no literal pending");
    a = push(p);
    a->type = IMAP_ARG_LITERAL_STREAM;
    a->literal8 = p->lit.literal8;
    a->size = p->lit.size;
    a->cookie = cookie;
    a->str = "";
    p->stage = ST_LINE;
}

/* imap_parser_literal_refuse - give up the pending literal */
uint64_t imap_parser_literal_refuse(struct imap_parser *p)
{
    if (p->stage != ST_LITERAL)
	msg_panic("imap_parser_literal_refuse: no literal pending");
    p->skip = p->lit.sync ? 0 : p->lit.size - p->litgot;
    fmt_buf_cut(p->error, sizeof(p->error), "Literal refused");
    p->stage = ST_ERROR;
    return p->skip;
}

/* imap_parser_tag - the command's tag */
const char *imap_parser_tag(const struct imap_parser *p)
{
    return p->tag;
}

/* imap_parser_name - the command's name, upper case */
const char *imap_parser_name(const struct imap_parser *p)
{
    return p->name;
}

/* imap_parser_args - the top-level arguments */
const struct imap_arg *imap_parser_args(const struct imap_parser *p, size_t *count_r)
{
    *count_r = p->levels[0].n;
    return p->levels[0].items;
}

/* imap_parser_error - the text for a BAD reply */
const char *imap_parser_error(const struct imap_parser *p)
{
    return p->error[0] ? p->error : "Bad command";
}

/* imap_parser_skip - bytes of a refused non-synchronising literal */
uint64_t imap_parser_skip(const struct imap_parser *p)
{
    return p->skip;
}

/* helpers */

bool imap_arg_atom(const struct imap_arg *a, const char **s_r)
{
    if (a == NULL || (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NIL))
	return false;
    *s_r = a->str;
    return true;
}

/* imap_arg_atom_is - an atom equal to word */
bool imap_arg_atom_is(const struct imap_arg *a, const char *word)
{
    const char *s;

    return imap_arg_atom(a, &s) && strcasecmp(s, word) == 0;
}

/* imap_arg_string - a quoted string or in-memory literal */
bool imap_arg_string(const struct imap_arg *a, const char **s_r, size_t *len_r)
{
    if (a == NULL || (a->type != IMAP_ARG_QUOTED && a->type != IMAP_ARG_LITERAL))
	return false;
    *s_r = a->str;
    if (len_r)
	*len_r = a->len;
    return true;
}

/* imap_arg_astring - an atom, quoted string or literal */
bool imap_arg_astring(const struct imap_arg *a, const char **s_r, size_t *len_r)
{
    if (a == NULL)
	return false;
    if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) {
	/* ASTRING-CHAR excludes the list wildcards but allows ']' */
	*s_r = a->str;
	if (len_r)
	    *len_r = a->len;
	return true;
    }
    return imap_arg_string(a, s_r, len_r);
}

/* imap_arg_nstring - a string or NIL */
bool imap_arg_nstring(const struct imap_arg *a, const char **s_r, size_t *len_r)
{
    if (a != NULL && a->type == IMAP_ARG_NIL) {
	*s_r = NULL;
	if (len_r)
	    *len_r = 0;
	return true;
    }
    return imap_arg_string(a, s_r, len_r);
}

/* imap_arg_number - an atom of digits within max */
bool imap_arg_number(const struct imap_arg *a, uint64_t max, uint64_t *v_r)
{
    uint64_t v = 0;
    size_t i;

    if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 20)
	return false;
    for (i = 0; i < a->len; i++) {
	unsigned d;

	if (a->str[i] < '0' || a->str[i] > '9')
	    return false;
	d = (unsigned) (a->str[i] - '0');
	if (v > (max - d) / 10)
	    return false;
	v = v * 10 + d;
    }
    *v_r = v;
    return true;
}

/* imap_arg_list - a parenthesised list */
bool imap_arg_list(const struct imap_arg *a, const struct imap_arg **list_r, size_t *count_r)
{
    if (a == NULL || a->type != IMAP_ARG_LIST)
	return false;
    *list_r = a->list;
    *count_r = a->count;
    return true;
}

/* seq_number - a nz-number or '*' at *sp */
static bool seq_number(const char **sp, uint32_t *v_r)
{
    const char *s = *sp;
    uint64_t v = 0;

    if (*s == '*') {
	*v_r = IMAP_SEQ_STAR;
	*sp = s + 1;
	return true;
    }
    if (*s < '1' || *s > '9')
	return false;
    for (; *s >= '0' && *s <= '9'; s++) {
	v = v * 10 + (uint64_t) (*s - '0');
	if (v >= UINT32_MAX)
	    return false;
    }
    *v_r = (uint32_t) v;
    *sp = s;
    return true;
}

/* imap_seqset_parse - a sequence set into ranges */
bool imap_seqset_parse(const char *s, size_t max_ranges, struct imap_seqset *set)
{
    size_t cap = 0;

    set->r = NULL;
    set->n = 0;
    if (s == NULL || *s == 0)
	return false;
    for (;;) {
	struct imap_seq_range r;

	if (!seq_number(&s, &r.lo))
	    goto bad;
	r.hi = r.lo;
	if (*s == ':') {
	    s++;
	    if (!seq_number(&s, &r.hi))
		goto bad;
	}
	if (r.lo > r.hi) {
	    uint32_t t = r.lo;

	    r.lo = r.hi;
	    r.hi = t;
	}
	if (set->n >= max_ranges)
	    goto bad;
	if (set->n == cap) {
	    cap = cap ? 2 * cap : 8;
	    set->r = mem_realloc(set->r, cap * sizeof(*set->r));
	}
	set->r[set->n++] = r;
	if (*s == 0)
	    return true;
	if (*s != ',')
	    goto bad;
	s++;
    }
  bad:
    imap_seqset_fini(set);
    return false;
}

/* imap_seqset_fini - free a sequence set */
void imap_seqset_fini(struct imap_seqset *set)
{
    free(set->r);
    set->r = NULL;
    set->n = 0;
}

/* imap_seqset_contains - n in the set ('*' is star) */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
    size_t i;

    for (i = 0; i < set->n; i++) {
	uint32_t lo = set->r[i].lo == IMAP_SEQ_STAR ? star : set->r[i].lo;
	uint32_t hi = set->r[i].hi == IMAP_SEQ_STAR ? star : set->r[i].hi;

	if (lo > hi) {
	    uint32_t t = lo;

	    lo = hi;
	    hi = t;
	}
	if (n >= lo && n <= hi)
	    return true;
    }
    return false;
}

/* output */

bool imap_string_needs_literal(const char *s, size_t len)
{
    size_t i;

    if (len > 1024)
	return true;
    for (i = 0; i < len; i++) {
	unsigned char c = (unsigned char) s[i];

	if (c == 0 || c == '\r' || c == '\n' || c >= 0x80)
	    return true;
    }
    return false;
}

/* imap_append_quoted - a quoted string */
bool imap_append_quoted(struct str *out, const char *s, size_t len)
{
    size_t i;

    if (!str_try_appendc(out, '"'))
	return false;
    for (i = 0; i < len; i++) {
	if (s[i] == 0 || s[i] == '\r' || s[i] == '\n')
	    return false;
	if ((s[i] == '"' || s[i] == '\\') && !str_try_appendc(out, '\\'))
	    return false;
	if (!str_try_appendc(out, s[i]))
	    return false;
    }
    return str_try_appendc(out, '"');
}

/* imap_append_string - a quoted string or a literal */
bool imap_append_string(struct str *out, const char *s, size_t len)
{
    if (imap_string_needs_literal(s, len))
	return str_try_appendf(out, "{%zu}\r\n", len) && str_try_append(out, s, len);
    return imap_append_quoted(out, s, len);
}

/* imap_append_nstring - NIL or a string */
bool imap_append_nstring(struct str *out, const char *s, size_t len)
{
    if (s == NULL)
	return str_try_appends(out, "NIL");
    return imap_append_string(out, s, len);
}

/* imap_append_astring - an atom, quoted string or literal */
bool imap_append_astring(struct str *out, const char *s, size_t len)
{
    size_t i;
    bool atom = len > 0 && !(len == 3 && strncasecmp(s, "NIL", 3) == 0);

    for (i = 0; atom && i < len; i++) {
	unsigned char c = (unsigned char) s[i];

	if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\[]", c) != NULL)
	    atom = false;
    }
    if (atom)
	return str_try_append(out, s, len);
    return imap_append_string(out, s, len);
}
