/* record_grammar.c - the one checker of queue-record sequences (see
 * record_grammar.h): a table of profiles, a table of attributes with a
 * column per profile, and one state machine that reads both. The queue
 * file scanner, cleanup's request reader, postdrop and pickup all call
 * record_grammar_check, so a rule is written once. */

/* System. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Base. */
#include "msg.h"
#include "str.h"

/* Mail. */
#include "mail_proto.h"
#include "maildrop.h"
#include "queue_file.h"
#include "record_grammar.h"

/* Rule flags of a profile. */
#define RG_VERSION_LEADS	(1u << 0)	/* V is the first record */
#define RG_TIME_REQUIRED	(1u << 1)	/* exactly one T before M */
#define RG_TIME_LEADS		(1u << 2)	/* T only before any other record */
#define RG_TIME_EXACT_USEC	(1u << 3)	/* T fraction of exactly 6 digits */
#define RG_SENDER_LEADS		(1u << 4)	/* S right after V */
#define RG_ATTRS_LEAD		(1u << 5)	/* A only before the first O/N/R */
#define RG_ADDR_TEXT		(1u << 6)	/* S/O/R bounded, no control bytes */
#define RG_ORCPT_TYPED		(1u << 7)	/* O is "type;address" */
#define RG_RCPT_REQUIRED	(1u << 8)	/* E needs a recipient (or extract) */
#define RG_ATTRS_OPEN		(1u << 9)	/* A names outside the table are fine */
#define RG_ATTR_VALUES		(1u << 10)	/* check values; each name once */

/* One profile: a row of the table below. */
struct record_rules {
    const char *name;
    const char *types[RECORD_SEG_COUNT];	/* allowed in each segment */
    unsigned flags;				/* RG_* */
    size_t record_max[RECORD_SEG_COUNT];	/* data bytes; 0: QF_RECORD_MAX */
    size_t addr_max;				/* S, R (with RG_ADDR_TEXT) */
    size_t orcpt_max;				/* O (with RG_ADDR_TEXT) */
    size_t attr_max;				/* one A record; 0: no own limit */
    int line_end_bytes;				/* counted per L for the size */
    long long envelope_min;			/* envelope limit floor; 0: none */
    enum record_profile wider;			/* NOPERM if this one allows */
};

static const struct record_rules record_rules[RECORD_PROFILE_COUNT] = {
    [RECORD_PROFILE_QUEUE_FILE] = {
	.name = "queue file",
	.types = {QF_TYPES_FIRST, QF_TYPES_ENVELOPE, QF_TYPES_CONTENT, QF_TYPES_TRAILER, ""},
	.flags = RG_VERSION_LEADS | RG_TIME_REQUIRED | RG_TIME_EXACT_USEC | RG_RCPT_REQUIRED
	    | RG_ATTRS_OPEN,
	.line_end_bytes = 1,
	.wider = RECORD_PROFILE_QUEUE_FILE,
    },
    [RECORD_PROFILE_CLEANUP_TRUSTED] = {
	.name = "cleanup request",
	.types = {"", "TSAONRM", QF_TYPES_CONTENT, "AONRE", ""},
	.flags = RG_TIME_LEADS | RG_ADDR_TEXT | RG_ATTRS_OPEN,
	.addr_max = RECORD_CLEANUP_ADDR_MAX,
	.orcpt_max = RECORD_CLEANUP_ADDR_MAX + 16,
	.line_end_bytes = 1,
	.wider = RECORD_PROFILE_CLEANUP_TRUSTED,
    },
    [RECORD_PROFILE_CLEANUP_UNTRUSTED] = {
	.name = "untrusted cleanup request",
	.types = {"", "TSAONRM", QF_TYPES_CONTENT, "ONRE", ""},
	.flags = RG_TIME_LEADS | RG_ADDR_TEXT,
	.addr_max = RECORD_CLEANUP_ADDR_MAX,
	.orcpt_max = RECORD_CLEANUP_ADDR_MAX + 16,
	.line_end_bytes = 1,
	.wider = RECORD_PROFILE_CLEANUP_TRUSTED,
    },
    [RECORD_PROFILE_MAILDROP] = {
	.name = "maildrop file",
	.types = {QF_TYPES_FIRST, "SAONRM", QF_TYPES_CONTENT, "ONRE", ""},
	.flags = RG_VERSION_LEADS | RG_SENDER_LEADS | RG_ATTRS_LEAD | RG_ADDR_TEXT
	    | RG_ORCPT_TYPED | RG_RCPT_REQUIRED | RG_ATTR_VALUES,
	.record_max = {64, MAILDROP_ADDR_MAX, MAILDROP_RECORD_MAX, MAILDROP_ADDR_MAX, 0},
	.addr_max = MAILDROP_ADDR_MAX,
	.orcpt_max = MAILDROP_ADDR_MAX,
	.attr_max = MAILDROP_ATTR_MAX,
	.line_end_bytes = 2,
	.envelope_min = MAILDROP_ENVELOPE_MIN,
	.wider = RECORD_PROFILE_MAILDROP,
    },
};

#define P(p)	(1u << (p))
#define P_QF	P(RECORD_PROFILE_QUEUE_FILE)
#define P_TRUST	P(RECORD_PROFILE_CLEANUP_TRUSTED)
#define P_PICK	P(RECORD_PROFILE_CLEANUP_UNTRUSTED)
#define P_DROP	P(RECORD_PROFILE_MAILDROP)

static bool rg_envid_ok(const char *value);
static bool rg_dsn_ret_ok(const char *value);
static bool rg_body_ok(const char *value);
static bool rg_flags_ok(const char *value);

/* Who may set which attribute. A trusted local daemon (smtpd, bounce,
 * local-delivery) vouches for the SMTP client, the authenticated user,
 * the original recipient and the bounce notice, and may set names this
 * table does not know; pickup vouches only for the submitting uid (the
 * maildrop file's owner) and passes on what the user chose with
 * sendmail's options; a user (maildrop) sets those options only, with
 * their values checked. origin is cleanup's own: no client sets it.
 * value_ok applies to profiles with RG_ATTR_VALUES. */
static const struct record_attr_rule {
    const char *name;
    unsigned profiles;
    bool (*value_ok)(const char *value);
} record_attr_rules[] = {
    {QATTR_CLIENT_NAME, P_QF | P_TRUST, NULL},
    {QATTR_CLIENT_ADDRESS, P_QF | P_TRUST, NULL},
    {QATTR_HELO, P_QF | P_TRUST, NULL},
    {QATTR_PROTOCOL, P_QF | P_TRUST, NULL},
    {QATTR_SASL_USERNAME, P_QF | P_TRUST, NULL},
    {QATTR_SIZE, P_QF | P_TRUST, NULL},
    {QATTR_RCPT_ORIG, P_QF | P_TRUST, NULL},
    {"bounce_notice", P_QF | P_TRUST, NULL},	/* bounce.h BOUNCE_ATTR_NOTICE */
    {QATTR_ORIGIN, P_QF, NULL},
    {QATTR_SUBMIT_UID, P_QF | P_TRUST | P_PICK, NULL},
    {QATTR_SMTPUTF8, P_QF | P_TRUST | P_PICK, NULL},
    {QATTR_DSN_ENVID, P_QF | P_TRUST | P_PICK | P_DROP, rg_envid_ok},
    {QATTR_DSN_RET, P_QF | P_TRUST | P_PICK | P_DROP, rg_dsn_ret_ok},
    {QATTR_BODY, P_QF | P_TRUST | P_PICK | P_DROP, rg_body_ok},
    {MAILDROP_ATTR_FLAGS, P_DROP, rg_flags_ok},
};

#define RG_ATTR_COUNT	(sizeof(record_attr_rules) / sizeof(record_attr_rules[0]))

static char rg_errbuf[256];

/* rg_fail - set the error text; return the verdict */
static enum record_verdict __attribute__((format(printf, 3, 4)))
rg_fail(const char **error_r, enum record_verdict verdict, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rg_errbuf, sizeof(rg_errbuf), fmt, ap);
    va_end(ap);
    if (error_r)
	*error_r = rg_errbuf;
    return verdict;
}

/*
 * Value checks.
 */

/* record_grammar_notify_valid - DSN NOTIFY */
bool record_grammar_notify_valid(const char *text, size_t len)
{
    static const char *const words[] = {"success", "failure", "delay"};
    unsigned seen = 0;
    const char *p = text, *end = text + len;

    if (len == 5 && memcmp(text, "never", 5) == 0)
	return true;
    for (;;) {
	const char *comma = memchr(p, ',', (size_t) (end - p));
	size_t wlen = (size_t) ((comma ? comma : end) - p);
	size_t w;

	for (w = 0; w < 3; w++)
	    if (strlen(words[w]) == wlen && memcmp(p, words[w], wlen) == 0)
		break;
	if (w == 3 || (seen & (1u << w)))
	    return false;
	seen |= 1u << w;
	if (comma == NULL)
	    return true;
	p = comma + 1;
    }
}

/* record_grammar_time_parse - SECONDS[.FRACTION] */
bool record_grammar_time_parse(const char *text, size_t len, bool exact_usec, int64_t *sec,
			       long *usec)
{
    long long s = 0;
    long u = 0;
    size_t i = 0, digits;

    while (i < len && text[i] >= '0' && text[i] <= '9' && i < 12)
	s = s * 10 + (text[i++] - '0');
    if (i == 0)
	return false;
    if (i < len) {
	if (text[i++] != '.')
	    return false;
	for (digits = 0; i < len && text[i] >= '0' && text[i] <= '9' && digits < 6; digits++)
	    u = u * 10 + (text[i++] - '0');
	if (digits == 0 || i < len || (exact_usec && digits != 6))
	    return false;
	while (digits++ < 6)
	    u *= 10;
    }
    *sec = s;
    *usec = u;
    return true;
}

/* rg_version_ok - "posthorn-queue N" with the version this code reads */
static bool rg_version_ok(const struct str *data, const char **why)
{
    size_t mlen = strlen(QF_MAGIC);
    long version = 0;

    if (data->len <= mlen + 1 || memcmp(data->data, QF_MAGIC " ", mlen + 1) != 0) {
	*why = "bad version record (not a posthorn queue file)";
	return false;
    }
    for (size_t i = mlen + 1; i < data->len; i++) {
	if (data->data[i] < '0' || data->data[i] > '9' || version > 1000000) {
	    *why = "bad version record";
	    return false;
	}
	version = version * 10 + (data->data[i] - '0');
    }
    if (version != QF_VERSION) {
	*why = "unsupported queue file version";
	return false;
    }
    return true;
}

/* rg_text_ok - no control characters (UTF-8 is fine) */
static bool rg_text_ok(const struct str *data)
{
    for (size_t i = 0; i < data->len; i++) {
	unsigned char ch = (unsigned char) data->data[i];

	if (ch < 0x20 || ch == 0x7f)
	    return false;
    }
    return true;
}

/* rg_envid_ok - sendmail -V: 1..100 printable ASCII, no space */
static bool rg_envid_ok(const char *value)
{
    size_t len = strlen(value);

    if (len == 0 || len > MAILDROP_ENVID_MAX)
	return false;
    for (const char *p = value; *p; p++)
	if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
	    return false;
    return true;
}

/* rg_dsn_ret_ok - sendmail -R */
static bool rg_dsn_ret_ok(const char *value)
{
    return strcmp(value, "full") == 0 || strcmp(value, "hdrs") == 0;
}

/* rg_body_ok - sendmail -B */
static bool rg_body_ok(const char *value)
{
    return strcmp(value, "7bit") == 0 || strcmp(value, "8bitmime") == 0;
}

/* rg_flags_parse - "extract,..." into RECORD_MAILDROP_FLAG_* bits */
static bool rg_flags_parse(const char *text, int *flags)
{
    const char *p = text;

    *flags = 0;
    for (;;) {
	const char *comma = strchr(p, ',');
	size_t wlen = comma ? (size_t) (comma - p) : strlen(p);

	if (wlen == strlen(MAILDROP_FLAG_EXTRACT_NAME)
	    && memcmp(p, MAILDROP_FLAG_EXTRACT_NAME, wlen) == 0
	    && !(*flags & MAILDROP_FLAG_EXTRACT))
	    *flags |= MAILDROP_FLAG_EXTRACT;
	else
	    return false;
	if (comma == NULL)
	    return true;
	p = comma + 1;
    }
}

/* rg_flags_ok - the maildrop flags attribute */
static bool rg_flags_ok(const char *value)
{
    int flags;

    return rg_flags_parse(value, &flags);
}

/*
 * The state machine.
 */

/* record_grammar_init - a fresh checker */
void record_grammar_init(struct record_grammar *g, enum record_profile profile,
			 long long size_limit)
{
    if ((unsigned) profile >= RECORD_PROFILE_COUNT)
	msg_panic("record_grammar_init: bad profile %d", (int) profile);
    memset(g, 0, sizeof(*g));
    g->rules = record_rules + profile;
    g->size_limit = size_limit;
    g->segment = (g->rules->flags & RG_VERSION_LEADS) ? RECORD_SEG_START : RECORD_SEG_ENVELOPE;
}

/* record_grammar_allowed - the types of the current segment */
const char *record_grammar_allowed(const struct record_grammar *g)
{
    return g->rules->types[g->segment];
}

/* record_grammar_record_max - the data limit of the current segment */
size_t record_grammar_record_max(const struct record_grammar *g)
{
    size_t max = g->rules->record_max[g->segment];

    return max ? max : QF_RECORD_MAX;
}

/* record_grammar_at_end - after E */
bool record_grammar_at_end(const struct record_grammar *g)
{
    return g->segment == RECORD_SEG_END;
}

/* rg_profile_of - the profile number of a rules row */
static enum record_profile rg_profile_of(const struct record_rules *rules)
{
    return (enum record_profile) (rules - record_rules);
}

/* rg_attr_allowed - may the profile's producer set this attribute? */
static bool rg_attr_allowed(const struct record_rules *rules, const struct record_attr_rule *row)
{
    if (row == NULL)
	return (rules->flags & RG_ATTRS_OPEN) != 0;
    return (row->profiles & P(rg_profile_of(rules))) != 0;
}

/* rg_attr - an 'A' record */
static enum record_verdict rg_attr(struct record_grammar *g, const struct str *data,
				   const char **error_r)
{
    const struct record_rules *rules = g->rules;
    const struct record_attr_rule *row = NULL;
    const char *value;
    size_t name_len, i;

    if (rules->attr_max && data->len > rules->attr_max)
	return rg_fail(error_r, RECORD_BAD, "attribute too long");
    if (!qf_attr_split(data->data, data->len, &name_len, &value))
	return rg_fail(error_r, RECORD_BAD, "bad attribute record");
    for (i = 0; i < RG_ATTR_COUNT; i++) {
	if (strlen(record_attr_rules[i].name) == name_len
	    && memcmp(record_attr_rules[i].name, data->data, name_len) == 0) {
	    row = record_attr_rules + i;
	    break;
	}
    }
    if (!rg_attr_allowed(rules, row))
	return rg_fail(error_r, rg_attr_allowed(record_rules + rules->wider, row) ? RECORD_NOPERM
		       : RECORD_BAD, "attribute %.*s not allowed", (int) name_len, data->data);
    if ((rules->flags & RG_ATTRS_LEAD) && g->rcpt_started)
	return rg_fail(error_r, RECORD_BAD, "attribute after a recipient");
    if (row && strcmp(row->name, QATTR_RCPT_ORIG) == 0) {
	if (g->have_orig || g->have_orcpt || g->have_notify)
	    return rg_fail(error_r, RECORD_BAD, "attribute between a recipient's records");
	g->have_orig = true;
	return RECORD_OK;
    }
    if (g->have_orig || g->have_orcpt || g->have_notify)
	return rg_fail(error_r, RECORD_BAD, "attribute between a recipient's records");
    if ((rules->flags & RG_ATTR_VALUES) && row) {
	if (g->attrs_seen & (1u << i))
	    return rg_fail(error_r, RECORD_BAD, "duplicate attribute %s", row->name);
	g->attrs_seen |= 1u << i;
	if (row->value_ok && !row->value_ok(value))
	    return rg_fail(error_r, RECORD_BAD, "bad %s value", row->name);
	if (strcmp(row->name, MAILDROP_ATTR_FLAGS) == 0)
	    (void) rg_flags_parse(value, &g->maildrop_flags);
    }
    return RECORD_OK;
}

/* rg_address - S or R data under RG_ADDR_TEXT */
static enum record_verdict rg_address(const struct record_grammar *g, const struct str *data,
				      const char *what, const char **error_r)
{
    if (!(g->rules->flags & RG_ADDR_TEXT))
	return RECORD_OK;
    if (data->len > g->rules->addr_max)
	return rg_fail(error_r, RECORD_BAD, "%s too long", what);
    if (!rg_text_ok(data))
	return rg_fail(error_r, RECORD_BAD, "control character in %s", what);
    return RECORD_OK;
}

/* rg_rcpt_part - O, N, R or D */
static enum record_verdict rg_rcpt_part(struct record_grammar *g, int type,
					const struct str *data, const char **error_r)
{
    const struct record_rules *rules = g->rules;
    enum record_verdict v;

    g->rcpt_started = true;
    switch (type) {
    case QF_REC_ORCPT:
	if (g->have_orcpt)
	    return rg_fail(error_r, RECORD_BAD, "second orcpt record for one recipient");
	if (g->have_notify)
	    return rg_fail(error_r, RECORD_BAD, "orcpt record after the notify record");
	if ((rules->flags & RG_ADDR_TEXT)
	    && (data->len == 0 || data->len > rules->orcpt_max || !rg_text_ok(data)))
	    return rg_fail(error_r, RECORD_BAD, "bad orcpt record");
	if ((rules->flags & RG_ORCPT_TYPED) && memchr(data->data, ';', data->len) == NULL)
	    return rg_fail(error_r, RECORD_BAD, "bad orcpt record");
	g->have_orcpt = true;
	return RECORD_OK;
    case QF_REC_NOTIFY:
	if (g->have_notify)
	    return rg_fail(error_r, RECORD_BAD, "second notify record for one recipient");
	if (!record_grammar_notify_valid(data->data, data->len))
	    return rg_fail(error_r, RECORD_BAD, "bad notify record");
	g->have_notify = true;
	return RECORD_OK;
    default:					/* R, D */
	if (data->len == 0)
	    return rg_fail(error_r, RECORD_BAD, "empty recipient");
	if ((v = rg_address(g, data, "recipient", error_r)) != RECORD_OK)
	    return v;
	g->have_orig = g->have_orcpt = g->have_notify = false;
	g->rcpt_count++;
	return RECORD_OK;
    }
}

/* rg_pending - an A rcpt_orig, O or N still waits for its R */
static bool rg_pending(const struct record_grammar *g)
{
    return g->have_orig || g->have_orcpt || g->have_notify;
}

/* rg_count_size - the content and envelope size limits */
static enum record_verdict rg_count_size(struct record_grammar *g, int type, size_t len,
					 const char **error_r)
{
    const struct record_rules *rules = g->rules;

    if (type == QF_REC_LINE || type == QF_REC_CONT) {
	g->content_size += (long long) len + (type == QF_REC_LINE ? rules->line_end_bytes : 0);
	if (g->size_limit > 0 && g->content_size > g->size_limit)
	    return rg_fail(error_r, RECORD_TOO_LARGE, "message too large (limit %lld bytes)",
			   g->size_limit);
    } else if (rules->envelope_min > 0) {
	g->envelope_size += QF_HEADER_SIZE + (long long) len;
	if (g->size_limit > 0 && g->envelope_size > g->size_limit
	    && g->envelope_size > rules->envelope_min)
	    return rg_fail(error_r, RECORD_TOO_LARGE, "envelope too large");
    }
    return RECORD_OK;
}

/* record_grammar_check - one record */
enum record_verdict record_grammar_check(struct record_grammar *g, int type, const struct str *data,
					 const char **error_r)
{
    const struct record_rules *rules = g->rules;
    const char *why = NULL;
    enum record_verdict v;
    int64_t sec;
    long usec;

    if (type == 0 || strchr(rules->types[g->segment], type) == NULL) {
	char show[8];

	v = type != 0 && strchr(record_rules[rules->wider].types[g->segment], type)
	    ? RECORD_NOPERM : RECORD_BAD;
	return rg_fail(error_r, v, "unexpected record type %s",
		       qf_type_show(show, sizeof(show), type));
    }
    if ((v = rg_count_size(g, type, data->len, error_r)) != RECORD_OK)
	return v;
    if (type != QF_REC_VERSION && type != QF_REC_TIME) {
	if ((rules->flags & RG_SENDER_LEADS) && g->sender_count == 0 && type != QF_REC_SENDER)
	    return rg_fail(error_r, RECORD_BAD, "no sender record after the version record");
	g->started = true;
    }
    switch (type) {
    case QF_REC_VERSION:
	if (!rg_version_ok(data, &why))
	    return rg_fail(error_r, RECORD_BAD, "%s", why);
	g->segment = RECORD_SEG_ENVELOPE;
	return RECORD_OK;
    case QF_REC_TIME:
	if ((rules->flags & RG_TIME_LEADS) && g->started)
	    return rg_fail(error_r, RECORD_BAD, "time record after other records");
	if (++g->time_count > 1)
	    return rg_fail(error_r, RECORD_BAD, "second time record");
	if (!record_grammar_time_parse(data->data, data->len,
				       (rules->flags & RG_TIME_EXACT_USEC) != 0, &sec, &usec))
	    return rg_fail(error_r, RECORD_BAD, "bad time record");
	return RECORD_OK;
    case QF_REC_SENDER:
	if (++g->sender_count > 1)
	    return rg_fail(error_r, RECORD_BAD, "second sender record");
	return rg_address(g, data, "sender", error_r);
    case QF_REC_ATTR:
	return rg_attr(g, data, error_r);
    case QF_REC_ORCPT:
    case QF_REC_NOTIFY:
    case QF_REC_RCPT:
    case QF_REC_DONE:
	return rg_rcpt_part(g, type, data, error_r);
    case QF_REC_MESSAGE:
	if (data->len != 0)
	    return rg_fail(error_r, RECORD_BAD, "message record with data");
	if ((rules->flags & RG_TIME_REQUIRED) && g->time_count != 1)
	    return rg_fail(error_r, RECORD_BAD, "no time record in envelope");
	if (g->sender_count != 1)
	    return rg_fail(error_r, RECORD_BAD, "no sender record in envelope");
	if (rg_pending(g))
	    return rg_fail(error_r, RECORD_BAD, "orcpt or notify record without a recipient");
	g->segment = RECORD_SEG_CONTENT;
	return RECORD_OK;
    case QF_REC_LINE:
    case QF_REC_CONT:
	g->in_cont = type == QF_REC_CONT;
	return RECORD_OK;
    case QF_REC_XEND:
	if (data->len != 0)
	    return rg_fail(error_r, RECORD_BAD, "end-of-content record with data");
	if (g->in_cont)
	    return rg_fail(error_r, RECORD_BAD, "continued line without its end");
	g->segment = RECORD_SEG_TRAILER;
	return RECORD_OK;
    case QF_REC_END:
	if (data->len != 0)
	    return rg_fail(error_r, RECORD_BAD, "end record with data");
	if (rg_pending(g))
	    return rg_fail(error_r, RECORD_BAD, "orcpt or notify record without a recipient");
	if ((rules->flags & RG_RCPT_REQUIRED) && g->rcpt_count == 0
	    && !(g->maildrop_flags & MAILDROP_FLAG_EXTRACT))
	    return rg_fail(error_r, RECORD_BAD, "no recipients");
	g->segment = RECORD_SEG_END;
	return RECORD_OK;
    }
    msg_panic("record_grammar_check: type %d passed the whitelist", type);
}

/* record_grammar_get - read and check one record */
int record_grammar_get(struct record_grammar *g, struct qf_reader *r, int *type, struct str *data,
		       off_t *offset, const char **error_r)
{
    off_t at = r->offset;
    const char *why;
    int ret;

    if (record_grammar_at_end(g))
	return qf_expect_eof(r, error_r);
    ret = qf_get(r, type, data, record_grammar_record_max(g), record_grammar_allowed(g), &at,
		 error_r);
    if (ret < 0)
	return -1;
    if (ret == 0) {
	(void) rg_fail(error_r, RECORD_BAD,
		       "corrupt queue file: premature end of file (no end record) at offset %lld",
		       (long long) r->offset);
	return -1;
    }
    if (record_grammar_check(g, *type, data, &why) != RECORD_OK) {
	/* why is rg_errbuf: copy it before formatting into it */
	char text[sizeof(rg_errbuf)];

	fmt_buf_cut(text, sizeof(text), "%s", why);
	(void) rg_fail(error_r, RECORD_BAD, "corrupt queue file: %s at offset %lld", text,
		       (long long) at);
	return -1;
    }
    if (offset)
	*offset = at;
    return 1;
}
