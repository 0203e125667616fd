/* smtp_params.c - parse the ESMTP parameters of MAIL FROM and RCPT TO
 * (see smtp_params.h, docs/addresses.md). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "address.h"
#include "smtp_params.h"
#include "xtext.h"

/* The reply table, in enum order. */
static const struct smtp_param_reply_row {
    enum smtp_param_error err;
    const char *name;
    int code;
    const char *enhanced;
    const char *text;
} smtp_param_reply_table[] = {
    {SMTP_PARAM_OK, "ok", 250, "2.0.0", "Ok"},
    {SMTP_PARAM_ERR_SYNTAX, "syntax error", 501, "5.5.4", "Syntax error in parameters"},
    {SMTP_PARAM_ERR_UNKNOWN, "unknown parameter", 555, "5.5.4", "Unsupported option"},
    {SMTP_PARAM_ERR_NOT_ADVERTISED, "extension not offered", 555, "5.5.4", "Unsupported option: extension not offered"},
    {SMTP_PARAM_ERR_DUPLICATE, "duplicate parameter", 501, "5.5.4", "Duplicate parameter"},
    {SMTP_PARAM_ERR_VALUE_MISSING, "value missing", 501, "5.5.4", "Parameter requires a value"},
    {SMTP_PARAM_ERR_VALUE_UNEXPECTED, "unexpected value", 501, "5.5.4", "Parameter takes no value"},
    {SMTP_PARAM_ERR_SIZE, "bad SIZE", 501, "5.5.4", "Bad SIZE value"},
    {SMTP_PARAM_ERR_BODY, "bad BODY", 501, "5.5.4", "Bad BODY value"},
    {SMTP_PARAM_ERR_RET, "bad RET", 501, "5.5.4", "Bad RET value"},
    {SMTP_PARAM_ERR_ENVID, "bad ENVID", 501, "5.5.4", "Bad ENVID value"},
    {SMTP_PARAM_ERR_AUTH, "bad AUTH", 501, "5.5.4", "Bad AUTH value"},
    {SMTP_PARAM_ERR_NOTIFY, "bad NOTIFY", 501, "5.5.4", "Bad NOTIFY value"},
    {SMTP_PARAM_ERR_ORCPT, "bad ORCPT", 501, "5.5.4", "Bad ORCPT value"},
};

/* smtp_param_row - the table row of err */
static const struct smtp_param_reply_row *smtp_param_row(enum smtp_param_error err)
{
    size_t n = sizeof(smtp_param_reply_table) / sizeof(smtp_param_reply_table[0]);

    if (n != SMTP_PARAM_ERR_COUNT)
	msg_panic("smtp_param_reply_table has %zu rows, want %d", n, (int) SMTP_PARAM_ERR_COUNT);
    if ((unsigned) err >= n || smtp_param_reply_table[err].err != err)
	msg_panic("smtp_param_row: bad error code %d", (int) err);
    return smtp_param_reply_table + err;
}

/* smtp_param_error_reply - reply triple for err */
struct mail_reply smtp_param_error_reply(enum smtp_param_error err)
{
    const struct smtp_param_reply_row *r = smtp_param_row(err);
    struct mail_reply rep;

    rep.code = r->code;
    rep.enhanced = r->enhanced;
    rep.text = r->text;
    return rep;
}

/* smtp_param_error_str - internal name of err */
const char *smtp_param_error_str(enum smtp_param_error err)
{
    return smtp_param_row(err)->name;
}

/* The keywords. */
enum param_id {
    P_SIZE, P_BODY, P_SMTPUTF8, P_RET, P_ENVID, P_AUTH, P_NOTIFY, P_ORCPT,
};

#define CMD_MAIL	1
#define CMD_RCPT	2

static const struct param_def {
    const char *name;
    enum param_id id;
    int cmd;
    unsigned ext;			/* any of these enables it */
    bool value;				/* takes a value */
} param_defs[] = {
    {"SIZE", P_SIZE, CMD_MAIL, SMTP_EXT_SIZE, true},
    {"BODY", P_BODY, CMD_MAIL, SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME, true},
    {"SMTPUTF8", P_SMTPUTF8, CMD_MAIL, SMTP_EXT_SMTPUTF8, false},
    {"RET", P_RET, CMD_MAIL, SMTP_EXT_DSN, true},
    {"ENVID", P_ENVID, CMD_MAIL, SMTP_EXT_DSN, true},
    {"AUTH", P_AUTH, CMD_MAIL, SMTP_EXT_AUTH, true},
    {"NOTIFY", P_NOTIFY, CMD_RCPT, SMTP_EXT_DSN, true},
    {"ORCPT", P_ORCPT, CMD_RCPT, SMTP_EXT_DSN, true},
};

/* One keyword[=value] from the input. */
struct param_token {
    const char *start;			/* the whole token */
    size_t len;
    const char *key;
    size_t key_len;
    const char *value;			/* NULL if no "=" */
    size_t value_len;
};

/* ascii_upper - ASCII-only toupper */
static unsigned char ascii_upper(unsigned char c)
{
    return c >= 'a' && c <= 'z' ? (unsigned char) (c - 'a' + 'A') : c;
}

/* word_eq - n octets of s equal the upper-case word w, ignoring case */
static bool word_eq(const char *s, size_t n, const char *w)
{
    size_t i;

    if (strlen(w) != n)
	return false;
    for (i = 0; i < n; i++)
	if (ascii_upper((unsigned char) s[i]) != (unsigned char) w[i])
	    return false;
    return true;
}

/* is_alnum - ASCII letter or digit */
static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* param_next - the next token at *pos; false at the end. Sets *err on
 * a malformed token. utf8: non-ASCII values are allowed (RFC 6531). */
static bool param_next(const char *text, size_t len, size_t *pos, bool utf8,
		       struct param_token *t, enum smtp_param_error *err)
{
    size_t i = *pos, j;
    const unsigned char *u = (const unsigned char *) text;

    *err = SMTP_PARAM_OK;
    while (i < len && text[i] == ' ')
	i++;
    if (i == len) {
	*pos = i;
	return false;
    }
    memset(t, 0, sizeof(*t));
    t->start = text + i;
    for (j = i; j < len && text[j] != ' '; j++)
	 /* void */ ;
    t->len = j - i;
    *pos = j;
    /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
    t->key = text + i;
    while (i < j && (is_alnum(u[i]) || (u[i] == '-' && i > (size_t) (t->key - text))))
	i++;
    t->key_len = (size_t) (text + i - t->key);
    if (t->key_len == 0 || (i < j && text[i] != '=')) {
	*err = SMTP_PARAM_ERR_SYNTAX;
	return true;
    }
    if (i == j)
	return true;				/* no value */
    /* esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 adds UTF-8 */
    t->value = text + i + 1;
    t->value_len = j - i - 1;
    for (i++; i < j; i++) {
	if (u[i] >= 0x80) {
	    size_t n;

	    if (!utf8 || (n = utf8_seqlen(u + i, j - i)) < 2) {
		*err = SMTP_PARAM_ERR_SYNTAX;
		return true;
	    }
	    i += n - 1;
	} else if (u[i] < 33 || u[i] > 126 || u[i] == '=') {
	    *err = SMTP_PARAM_ERR_SYNTAX;
	    return true;
	}
    }
    return true;
}

/* param_lookup - find keyword for cmd and check its extension */
static enum smtp_param_error param_lookup(const struct param_token *t, int cmd, unsigned ext,
					  const struct param_def **def_r)
{
    size_t i;

    for (i = 0; i < sizeof(param_defs) / sizeof(param_defs[0]); i++) {
	const struct param_def *d = param_defs + i;

	if (d->cmd != cmd || !word_eq(t->key, t->key_len, d->name))
	    continue;
	if ((d->ext & ext) == 0)
	    return SMTP_PARAM_ERR_NOT_ADVERTISED;
	if (d->value && (t->value == NULL || t->value_len == 0))
	    return SMTP_PARAM_ERR_VALUE_MISSING;
	if (!d->value && t->value != NULL)
	    return SMTP_PARAM_ERR_VALUE_UNEXPECTED;
	*def_r = d;
	return SMTP_PARAM_OK;
    }
    return SMTP_PARAM_ERR_UNKNOWN;
}

/* printable - every octet is printable ASCII (32..126) */
static bool printable(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
	if ((unsigned char) s[i] < 32 || (unsigned char) s[i] > 126)
	    return false;
    return true;
}

/* no_controls - valid UTF-8 without C0 controls or DEL */
static bool no_controls_utf8(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
	if ((unsigned char) s[i] < 32 || (unsigned char) s[i] == 127)
	    return false;
    return utf8_valid(s, len);
}

/* parse_size - 1*20DIGIT, saturating */
static bool parse_size(const char *v, size_t len, uint64_t *size_r)
{
    uint64_t n = 0;
    size_t i;

    if (len == 0 || len > 20)
	return false;
    for (i = 0; i < len; i++) {
	unsigned d;

	if (v[i] < '0' || v[i] > '9')
	    return false;
	d = (unsigned) (v[i] - '0');
	if (n > (UINT64_MAX - d) / 10)
	    n = UINT64_MAX;
	else if (n != UINT64_MAX)
	    n = n * 10 + d;
    }
    *size_r = n;
    return true;
}

/* decode_xtext_max - xtext decode into a new string of at most max
 * octets; NULL if invalid, too long, or neither printable ASCII nor
 * (allow_utf8) UTF-8 without controls */
static char *decode_xtext_max(const char *v, size_t len, size_t max, bool allow_utf8)
{
    struct str s;
    const char *err;
    char *res = NULL;

    str_init(&s, max);
    if (xtext_decode(&s, v, len, &err)
	&& (printable(str_cstr(&s), str_len(&s))
	    || (allow_utf8 && no_controls_utf8(str_cstr(&s), str_len(&s)))))
	res = mem_strndup(str_cstr(&s), str_len(&s));
    str_fini(&s);
    return res;
}

/* smtp_mail_params_fini - release parsed MAIL parameters */
void smtp_mail_params_fini(struct smtp_mail_params *p)
{
    mem_free(&p->envid);
    mem_free(&p->auth);
}

/* smtp_mail_params_parse - parse MAIL FROM parameters */
enum smtp_param_error smtp_mail_params_parse(const char *text, size_t len, unsigned ext,
					     struct smtp_mail_params *p)
{
    const struct param_def *d = NULL;
    struct param_token t;
    enum smtp_param_error err;
    unsigned seen = 0;
    size_t pos = 0;

    memset(p, 0, sizeof(*p));
    while (param_next(text, len, &pos, false, &t, &err)) {
	if (err == SMTP_PARAM_OK)
	    err = param_lookup(&t, CMD_MAIL, ext, &d);
	if (err == SMTP_PARAM_OK && (seen & (1u << d->id)))
	    err = SMTP_PARAM_ERR_DUPLICATE;
	if (err == SMTP_PARAM_OK) {
	    seen |= 1u << d->id;
	    switch (d->id) {
	    case P_SIZE:
		if (!parse_size(t.value, t.value_len, &p->size))
		    err = SMTP_PARAM_ERR_SIZE;
		p->has_size = true;
		break;
	    case P_BODY:
		if (word_eq(t.value, t.value_len, "7BIT"))
		    p->body = SMTP_BODY_7BIT;
		else if (word_eq(t.value, t.value_len, "8BITMIME"))
		    p->body = (ext & SMTP_EXT_8BITMIME) ? SMTP_BODY_8BITMIME : SMTP_BODY_NONE;
		else if (word_eq(t.value, t.value_len, "BINARYMIME"))
		    p->body = (ext & SMTP_EXT_BINARYMIME) ? SMTP_BODY_BINARYMIME : SMTP_BODY_NONE;
		else
		    err = SMTP_PARAM_ERR_BODY;
		if (err == SMTP_PARAM_OK && p->body == SMTP_BODY_NONE)
		    err = SMTP_PARAM_ERR_NOT_ADVERTISED;
		break;
	    case P_SMTPUTF8:
		p->smtputf8 = true;
		break;
	    case P_RET:
		if (word_eq(t.value, t.value_len, "FULL"))
		    p->ret = SMTP_RET_FULL;
		else if (word_eq(t.value, t.value_len, "HDRS"))
		    p->ret = SMTP_RET_HDRS;
		else
		    err = SMTP_PARAM_ERR_RET;
		break;
	    case P_ENVID:
		if ((p->envid = decode_xtext_max(t.value, t.value_len, SMTP_ENVID_MAX, false)) == NULL)
		    err = SMTP_PARAM_ERR_ENVID;
		break;
	    case P_AUTH:
		p->has_auth = true;
		if ((p->auth = decode_xtext_max(t.value, t.value_len, SMTP_AUTH_MAX,
						 (ext & SMTP_EXT_SMTPUTF8) != 0)) == NULL)
		    err = SMTP_PARAM_ERR_AUTH;
		else if (strcmp(p->auth, "<>") == 0)
		    mem_free(&p->auth);
		break;
	    default:
		msg_panic("smtp_mail_params_parse: keyword %d", (int) d->id);
	    }
	}
	if (err != SMTP_PARAM_OK) {
	    smtp_mail_params_fini(p);
	    memset(p, 0, sizeof(*p));
	    p->bad = t.start;
	    p->bad_len = t.len;
	    return err;
	}
    }
    return SMTP_PARAM_OK;
}

/* parse_notify - "NEVER" or a comma list of SUCCESS, FAILURE, DELAY */
static bool parse_notify(const char *v, size_t len, unsigned *notify_r)
{
    unsigned notify = 0, bit;
    size_t i = 0, j;

    for (;;) {
	for (j = i; j < len && v[j] != ','; j++)
	     /* void */ ;
	if (word_eq(v + i, j - i, "NEVER"))
	    bit = SMTP_NOTIFY_NEVER;
	else if (word_eq(v + i, j - i, "SUCCESS"))
	    bit = SMTP_NOTIFY_SUCCESS;
	else if (word_eq(v + i, j - i, "FAILURE"))
	    bit = SMTP_NOTIFY_FAILURE;
	else if (word_eq(v + i, j - i, "DELAY"))
	    bit = SMTP_NOTIFY_DELAY;
	else
	    return false;			/* also an empty element */
	if (notify & bit)
	    return false;
	notify |= bit;
	if (j == len)
	    break;
	i = j + 1;
    }
    if ((notify & SMTP_NOTIFY_NEVER) && notify != SMTP_NOTIFY_NEVER)
	return false;
    *notify_r = notify;
    return true;
}

/* parse_orcpt - addr-type ";" xtext (RFC 3461, RFC 6533) */
static bool parse_orcpt(const char *v, size_t len, bool smtputf8, struct smtp_rcpt_params *p)
{
    const char *semi = memchr(v, ';', len);
    const char *val, *err;
    size_t type_len, val_len;
    struct str s;
    bool ok;

    if (semi == NULL)
	return false;
    type_len = (size_t) (semi - v);
    val = semi + 1;
    val_len = len - type_len - 1;
    if (val_len == 0)
	return false;
    if (word_eq(v, type_len, "RFC822")) {
	if ((p->orcpt = decode_xtext_max(val, val_len, SMTP_ORCPT_MAX, false)) == NULL
	    || p->orcpt[0] == 0)
	    return false;
	p->orcpt_type = mem_strdup("rfc822");
    } else if (word_eq(v, type_len, "UTF-8")) {
	str_init(&s, SMTP_ORCPT_MAX);
	ok = xtext_utf8_decode(&s, val, val_len, smtputf8, &err)
	    && no_controls_utf8(str_cstr(&s), str_len(&s));
	if (ok)
	    p->orcpt = mem_strndup(str_cstr(&s), str_len(&s));
	str_fini(&s);
	if (!ok)
	    return false;
	p->orcpt_type = mem_strdup("utf-8");
    } else {
	return false;
    }
    p->orcpt_raw = mem_strndup(v, len);
    return true;
}

/* smtp_rcpt_params_fini - release parsed RCPT parameters */
void smtp_rcpt_params_fini(struct smtp_rcpt_params *p)
{
    mem_free(&p->orcpt_type);
    mem_free(&p->orcpt);
    mem_free(&p->orcpt_raw);
}

/* smtp_rcpt_params_parse - parse RCPT TO parameters */
enum smtp_param_error smtp_rcpt_params_parse(const char *text, size_t len, unsigned ext,
					     bool smtputf8, struct smtp_rcpt_params *p)
{
    const struct param_def *d = NULL;
    struct param_token t;
    enum smtp_param_error err;
    unsigned seen = 0;
    size_t pos = 0;
    bool utf8 = smtputf8 && (ext & SMTP_EXT_SMTPUTF8);

    memset(p, 0, sizeof(*p));
    while (param_next(text, len, &pos, utf8, &t, &err)) {
	if (err == SMTP_PARAM_OK)
	    err = param_lookup(&t, CMD_RCPT, ext, &d);
	if (err == SMTP_PARAM_OK && (seen & (1u << d->id)))
	    err = SMTP_PARAM_ERR_DUPLICATE;
	if (err == SMTP_PARAM_OK) {
	    seen |= 1u << d->id;
	    switch (d->id) {
	    case P_NOTIFY:
		if (!parse_notify(t.value, t.value_len, &p->notify))
		    err = SMTP_PARAM_ERR_NOTIFY;
		break;
	    case P_ORCPT:
		if (!parse_orcpt(t.value, t.value_len, utf8, p))
		    err = SMTP_PARAM_ERR_ORCPT;
		break;
	    default:
		msg_panic("smtp_rcpt_params_parse: keyword %d", (int) d->id);
	    }
	}
	if (err != SMTP_PARAM_OK) {
	    smtp_rcpt_params_fini(p);
	    memset(p, 0, sizeof(*p));
	    p->bad = t.start;
	    p->bad_len = t.len;
	    return err;
	}
    }
    return SMTP_PARAM_OK;
}
