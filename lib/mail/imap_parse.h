/* imap_parse.h - the IMAP command tokenizer shared by imapd-login and
 * imapd: incremental, bounded, no I/O of its own.
 *
 * A command is "tag SP name [SP args] CRLF", where the arguments may
 * contain literals ({n}, {n+}, ~{n}) that split the command into several
 * lines with raw bytes in between. The caller reads lines and bytes from
 * its connection (conn.h) and feeds them:
 *
 *   r = imap_parser_feed_line(p, line, len);
 *   IMAP_PARSE_DONE     a whole command: imap_parser_tag/_name/_args
 *   IMAP_PARSE_LITERAL  the line ended with a literal announcement:
 *                       imap_parser_literal(p) tells its size, whether it
 *                       is synchronising (send "+ ..." first) and
 *                       literal8. Then EITHER feed its bytes with
 *                       imap_parser_feed_literal (kept in memory, at most
 *                       limits.literal_mem_max) OR stream them yourself
 *                       (APPEND: to a temp file) and call
 *                       imap_parser_literal_streamed(p, cookie) when all
 *                       of them are consumed; then read the next line and
 *                       feed it (the rest of the command).
 *   IMAP_PARSE_ERROR    bad syntax or a bound exceeded: reply
 *                       "TAG BAD <imap_parser_error(p)>" (tag "*" if
 *                       imap_parser_tag is NULL); if
 *                       imap_parser_skip(p) > 0 the client will send that
 *                       many bytes anyway (a non-synchronising literal
 *                       was announced): discard them, then
 *                       imap_parser_reset(p) and go on.
 * After DONE or ERROR call imap_parser_reset(p) before the next command
 * (the argument tree lives until then).
 *
 * Tokens: atoms (any byte but SP, CTL, ( ) { " and, outside brackets, ]
 * ... with a "[...]" part taken whole, spaces and parentheses included,
 * so BODY[HEADER.FIELDS (To From)]<0.100> is one atom), quoted strings
 * (\" and \\ escapes; 8-bit bytes accepted: UTF-8), literals, NIL,
 * parenthesised lists. Numbers, sequence sets and flags are atoms: see
 * the helpers. A NUL byte outside a literal is an error; inside a
 * literal it is kept (len counts it).
 */
#ifndef POSTHORN_IMAP_PARSE_H
#define POSTHORN_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base */
#include "str.h"

enum imap_arg_type {
    IMAP_ARG_ATOM = 1,		/* str/len; also numbers, seq sets, flags */
    IMAP_ARG_QUOTED,		/* str/len: unescaped content */
    IMAP_ARG_LITERAL,		/* str/len: bytes kept in memory */
    IMAP_ARG_LITERAL_STREAM,	/* size, cookie: bytes the caller streamed */
    IMAP_ARG_NIL,		/* the atom NIL (any case) */
    IMAP_ARG_LIST,		/* list/count */
};

struct imap_arg {
    enum imap_arg_type type;
    bool literal8;		/* ~{n}: may contain NUL (RFC 3516) */
    const char *str;		/* ATOM, QUOTED, LITERAL: NUL-terminated copy */
    size_t len;			/* its length (a literal may hold NUL) */
    uint64_t size;		/* LITERAL_STREAM: its size */
    uintptr_t cookie;		/* LITERAL_STREAM: the caller's value */
    const struct imap_arg *list;	/* LIST: its elements */
    size_t count;			/* LIST: how many */
};

/* Bounds (0 in a field: the default in brackets). */
struct imap_parse_limits {
    size_t command_max;		/* bytes of one command: lines + in-memory
				 * literals [65536] */
    uint64_t literal_mem_max;	/* one in-memory literal [65536] */
    uint64_t literal_max;	/* one literal at all (streamed) [64 MiB] */
    unsigned depth_max;		/* list nesting [16] */
    unsigned args_max;		/* arguments at all levels [10000] */
};

enum imap_parse_result {
    IMAP_PARSE_DONE = 1,
    IMAP_PARSE_LITERAL,
    IMAP_PARSE_ERROR,
};

struct imap_literal_info {
    uint64_t size;
    bool sync;			/* {n}: the client waits for "+" */
    bool literal8;		/* ~{n} */
    bool mem_ok;		/* size <= literal_mem_max */
};

struct imap_parser;

struct imap_parser *imap_parser_new(const struct imap_parse_limits *limits);
void imap_parser_free(struct imap_parser **pp);
/* imap_parser_reset - forget the command (and its argument tree) */
void imap_parser_reset(struct imap_parser *p);

/* imap_parser_feed_line - one line without its CR LF */
enum imap_parse_result imap_parser_feed_line(struct imap_parser *p, const char *line, size_t len);
/* imap_parser_literal - the literal announced by the last LITERAL result */
const struct imap_literal_info *imap_parser_literal(const struct imap_parser *p);
/* imap_parser_feed_literal - bytes of the pending in-memory literal
 * (any chunking); returns how many more are wanted (0: complete; then
 * feed the next line). ERROR-free: the size was checked at LITERAL. */
uint64_t imap_parser_feed_literal(struct imap_parser *p, const void *data, size_t len);
/* imap_parser_literal_streamed - the pending literal was consumed by the
 * caller; it appears as an IMAP_ARG_LITERAL_STREAM argument with cookie */
void imap_parser_literal_streamed(struct imap_parser *p, uintptr_t cookie);
/* imap_parser_literal_refuse - the caller refuses the pending literal
 * (a synchronising one: reply BAD/NO and reset; a non-synchronising one:
 * the result of this call is the byte count to discard first) */
uint64_t imap_parser_literal_refuse(struct imap_parser *p);

/* Results. The tag is NULL until one was parsed; the name is upper-cased
 * (NULL until parsed). Valid until reset. */
const char *imap_parser_tag(const struct imap_parser *p);
const char *imap_parser_name(const struct imap_parser *p);
/* imap_parser_args - the top-level arguments after the name (so far,
 * while a literal is pending: lets the caller decide to stream) */
const struct imap_arg *imap_parser_args(const struct imap_parser *p, size_t *count_r);
const char *imap_parser_error(const struct imap_parser *p);
uint64_t imap_parser_skip(const struct imap_parser *p);

/* Argument helpers: true and the value, or false if the type is wrong. */
bool imap_arg_atom(const struct imap_arg *a, const char **s_r);
/* imap_arg_atom_is - a is an atom equal to word (ASCII case-insensitive) */
bool imap_arg_atom_is(const struct imap_arg *a, const char *word);
/* imap_arg_string - quoted or in-memory literal */
bool imap_arg_string(const struct imap_arg *a, const char **s_r, size_t *len_r);
/* imap_arg_astring - atom, quoted or in-memory literal */
bool imap_arg_astring(const struct imap_arg *a, const char **s_r, size_t *len_r);
/* imap_arg_nstring - a string or NIL (*s_r NULL) */
bool imap_arg_nstring(const struct imap_arg *a, const char **s_r, size_t *len_r);
/* imap_arg_number - an atom of digits, at most max (uint32/uint64 bounds) */
bool imap_arg_number(const struct imap_arg *a, uint64_t max, uint64_t *v_r);
bool imap_arg_list(const struct imap_arg *a, const struct imap_arg **list_r, size_t *count_r);

/* Sequence sets (RFC 3501 sequence-set): ranges with '*' as
 * IMAP_SEQ_STAR; lo <= hi after parsing (swapped). */
#define IMAP_SEQ_STAR	UINT32_MAX
struct imap_seq_range {
    uint32_t lo, hi;
};
struct imap_seqset {
    struct imap_seq_range *r;
    size_t n;
};
/* imap_seqset_parse - s (NUL-terminated) into set (the caller's, to be
 * freed with imap_seqset_fini); at most max_ranges ranges. false on bad
 * syntax (0 is not a number here). */
bool imap_seqset_parse(const char *s, size_t max_ranges, struct imap_seqset *set);
void imap_seqset_fini(struct imap_seqset *set);
/* imap_seqset_contains - n in set, with '*' meaning star */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star);

/* Output (appending to a str; false when it does not fit):
 * imap_append_astring  an atom if safe, else quoted if safe, else literal
 * imap_append_string   quoted if safe (no CR LF NUL " \ 8-bit, short),
 *                      else a literal {n}\r\n...
 * imap_append_nstring  NIL for s == NULL, else imap_append_string
 * imap_append_quoted   always quoted (escaping " and \); false if s
 *                      holds CR, LF or NUL */
bool imap_append_astring(struct str *out, const char *s, size_t len);
bool imap_append_string(struct str *out, const char *s, size_t len);
bool imap_append_nstring(struct str *out, const char *s, size_t len);
bool imap_append_quoted(struct str *out, const char *s, size_t len);
/* imap_string_needs_literal - s cannot be a quoted string */
bool imap_string_needs_literal(const char *s, size_t len);

#endif
