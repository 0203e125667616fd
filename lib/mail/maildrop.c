/* maildrop.c - the checker for maildrop files (see maildrop.h): one state
 * machine that postdrop runs on what sendmail sends and pickup runs again
 * on what it finds in maildrop/, so both enforce exactly the same rules. */

/* System library. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "maildrop.h"
#include "queue_file.h"

static char md_error[512];

/* md_fail - set the error text; -1 */
static int md_fail(const char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int md_fail(const char **error_r, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(md_error, sizeof(md_error), "maildrop file: ");
    va_start(ap, fmt);
    if (n > 0 && (size_t) n < sizeof(md_error))
	vsnprintf(md_error + n, sizeof(md_error) - (size_t) n, fmt, ap);
    va_end(ap);
    if (error_r)
	*error_r = md_error;
    return -1;
}

/* maildrop_check_init - a fresh checker */
void maildrop_check_init(struct maildrop_check *c, long long size_limit)
{
    memset(c, 0, sizeof(*c));
    c->state = MAILDROP_START;
    c->size_limit = size_limit;
}

/* maildrop_allowed - record types allowed in the current state */
const char *maildrop_allowed(const struct maildrop_check *c)
{
    switch (c->state) {
    case MAILDROP_START:
	return QF_TYPES_FIRST;
    case MAILDROP_SENDER:
	return "S";
    case MAILDROP_ATTRS:
	return "AONRM";		/* A + QF_TYPES_UNTRUSTED_ENVELOPE less S */
    case MAILDROP_RCPTS:
	return "ONRM";
    case MAILDROP_CONTENT:
	return c->in_cont ? "LC" : QF_TYPES_CONTENT;
    case MAILDROP_TRAILER:
	return QF_TYPES_UNTRUSTED_TRAILER;
    case MAILDROP_DONE:
	return "";
    }
    return "";
}

/* md_text_ok - no control characters (UTF-8 is fine) */
static bool md_text_ok(const struct str *data)
{
    for (size_t i = 0; i < data->len; i++) {
	unsigned char ch = (unsigned char) data->data[i];

	if (ch < 0x20 || ch == 0x7f)
	    return false;
    }
    return true;
}

/* maildrop_notify_valid - DSN NOTIFY value */
bool maildrop_notify_valid(const char *text, size_t len)
{
    static const char *const words[] = {"success", "failure", "delay"};
    unsigned seen = 0;
    size_t pos = 0;

    if (len == 5 && memcmp(text, "never", 5) == 0)
	return true;
    if (len == 0)
	return false;
    while (pos <= len) {
	const char *comma = memchr(text + pos, ',', len - pos);
	size_t wlen = (comma ? (size_t) (comma - text) : len) - pos;
	size_t i;

	for (i = 0; i < 3; i++)
	    if (strlen(words[i]) == wlen && memcmp(words[i], text + pos, wlen) == 0)
		break;
	if (i == 3 || (seen & (1u << i)))
	    return false;
	seen |= 1u << i;
	if (comma == NULL)
	    break;
	pos += wlen + 1;
    }
    return true;
}

/* maildrop_flags_parse - the flags attribute value */
bool maildrop_flags_parse(const char *text, int *flags)
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

/* md_check_attr - one whitelisted attribute */
static int md_check_attr(struct maildrop_check *c, const struct str *data, const char **error_r)
{
    static const char *const names[] = {
	MAILDROP_ATTR_DSN_ENVID, MAILDROP_ATTR_DSN_RET, MAILDROP_ATTR_BODY, MAILDROP_ATTR_FLAGS,
    };
    const char *value;
    size_t name_len, i;

    if (data->len > MAILDROP_ATTR_MAX)
	return md_fail(error_r, "attribute too long");
    if (!qf_attr_split(data->data, data->len, &name_len, &value))
	return md_fail(error_r, "malformed attribute");
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	if (strlen(names[i]) == name_len && memcmp(names[i], data->data, name_len) == 0)
	    break;
    if (i == sizeof(names) / sizeof(names[0]))
	return md_fail(error_r, "attribute %.*s not allowed", (int) (name_len > 64 ? 64 : name_len),
		       data->data);
    if (c->attrs_seen & (1u << i))
	return md_fail(error_r, "duplicate attribute %s", names[i]);
    c->attrs_seen |= 1u << i;
    if (strcmp(names[i], MAILDROP_ATTR_DSN_ENVID) == 0) {
	size_t len = strlen(value);

	if (len == 0 || len > MAILDROP_ENVID_MAX)
	    return md_fail(error_r, "bad dsn_envid length");
	for (const char *p = value; *p; p++)
	    if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
		return md_fail(error_r, "bad character in dsn_envid");
    } else if (strcmp(names[i], MAILDROP_ATTR_DSN_RET) == 0) {
	if (strcmp(value, "full") != 0 && strcmp(value, "hdrs") != 0)
	    return md_fail(error_r, "bad dsn_ret value");
    } else if (strcmp(names[i], MAILDROP_ATTR_BODY) == 0) {
	if (strcmp(value, "7bit") != 0 && strcmp(value, "8bitmime") != 0)
	    return md_fail(error_r, "bad body value");
    } else {
	if (!maildrop_flags_parse(value, &c->flags))
	    return md_fail(error_r, "bad flags value");
    }
    return 0;
}

/* md_check_rcpt_part - O, N or R in the envelope or trailer */
static int md_check_rcpt_part(struct maildrop_check *c, int type, const struct str *data,
			      const char **error_r)
{
    switch (type) {
    case QF_REC_ORCPT:
	if (c->have_orcpt || c->have_notify)
	    return md_fail(error_r, "misplaced orcpt record");
	if (data->len == 0 || data->len > MAILDROP_ADDR_MAX || !md_text_ok(data)
	    || memchr(data->data, ';', data->len) == NULL)
	    return md_fail(error_r, "bad orcpt record");
	c->have_orcpt = true;
	return 0;
    case QF_REC_NOTIFY:
	if (c->have_notify)
	    return md_fail(error_r, "misplaced notify record");
	if (!maildrop_notify_valid(data->data, data->len))
	    return md_fail(error_r, "bad notify record");
	c->have_notify = true;
	return 0;
    case QF_REC_RCPT:
	if (data->len == 0)
	    return md_fail(error_r, "empty recipient");
	if (data->len > MAILDROP_ADDR_MAX)
	    return md_fail(error_r, "recipient too long");
	if (!md_text_ok(data))
	    return md_fail(error_r, "control character in recipient");
	c->have_orcpt = c->have_notify = false;
	c->rcpt_count++;
	return 0;
    }
    return md_fail(error_r, "unexpected record");
}

/* maildrop_check_record - advance the state machine by one record */
int maildrop_check_record(struct maildrop_check *c, int type, const struct str *data,
			  const char **error_r)
{
    const char *allowed = maildrop_allowed(c);

    if (type == 0 || strchr(allowed, type) == NULL)
	return md_fail(error_r, "unexpected record type %s", qf_type_name(type));
    if (type != QF_REC_LINE && type != QF_REC_CONT && memchr(data->data, 0, data->len) != NULL)
	return md_fail(error_r, "NUL byte in %s record", qf_type_name(type));
    if (type != QF_REC_LINE && type != QF_REC_CONT) {
	c->envelope_size += QF_HEADER_SIZE + (long long) data->len;
	if (c->size_limit > 0 && c->envelope_size > c->size_limit
	    && c->envelope_size > MAILDROP_ENVELOPE_MIN)
	    return md_fail(error_r, "envelope too large");
    }
    switch (type) {
    case QF_REC_VERSION:{
	    char want[32];

	    (void) fmt_buf(want, sizeof(want), "%s %d", QF_MAGIC, QF_VERSION);
	    if (data->len != strlen(want) || memcmp(data->data, want, data->len) != 0)
		return md_fail(error_r, "bad version record");
	    c->state = MAILDROP_SENDER;
	    return 0;
	}
    case QF_REC_SENDER:
	if (data->len > MAILDROP_ADDR_MAX)
	    return md_fail(error_r, "sender too long");
	if (!md_text_ok(data))
	    return md_fail(error_r, "control character in sender");
	c->state = MAILDROP_ATTRS;
	return 0;
    case QF_REC_ATTR:
	return md_check_attr(c, data, error_r);
    case QF_REC_ORCPT:
    case QF_REC_NOTIFY:
    case QF_REC_RCPT:
	if (c->state == MAILDROP_ATTRS)
	    c->state = MAILDROP_RCPTS;
	return md_check_rcpt_part(c, type, data, error_r);
    case QF_REC_MESSAGE:
	if (data->len != 0)
	    return md_fail(error_r, "message record with data");
	if (c->have_orcpt || c->have_notify)
	    return md_fail(error_r, "orcpt or notify record without a recipient");
	c->state = MAILDROP_CONTENT;
	return 0;
    case QF_REC_CONT:
    case QF_REC_LINE:
	c->content_size += (long long) data->len + (type == QF_REC_LINE ? 2 : 0);
	if (c->size_limit > 0 && c->content_size > c->size_limit)
	    return md_fail(error_r, "message too large (limit %lld bytes)", c->size_limit);
	c->in_cont = type == QF_REC_CONT;
	return 0;
    case QF_REC_XEND:
	if (data->len != 0)
	    return md_fail(error_r, "end-of-content record with data");
	c->state = MAILDROP_TRAILER;
	return 0;
    case QF_REC_END:
	if (data->len != 0)
	    return md_fail(error_r, "end record with data");
	if (c->have_orcpt || c->have_notify)
	    return md_fail(error_r, "orcpt or notify record without a recipient");
	if (c->rcpt_count == 0 && !(c->flags & MAILDROP_FLAG_EXTRACT))
	    return md_fail(error_r, "no recipients");
	c->state = MAILDROP_DONE;
	return 0;
    }
    return md_fail(error_r, "unexpected record type %s", qf_type_name(type));
}

/* maildrop_get - one checked record from r */
int maildrop_get(struct maildrop_check *c, struct qf_reader *r, int *type, struct str *data,
		 const char **error_r)
{
    size_t max = c->state == MAILDROP_CONTENT ? MAILDROP_RECORD_MAX
	: c->state == MAILDROP_START ? 64 : MAILDROP_ADDR_MAX;
    const char *error;
    int ret;

    ret = qf_get(r, type, data, max, maildrop_allowed(c), NULL, &error);
    if (ret < 0 && c->state == MAILDROP_DONE)
	return md_fail(error_r, "data after the end record");
    if (ret < 0)
	return md_fail(error_r, "%s", error);
    if (ret == 0) {
	if (c->state == MAILDROP_DONE)
	    return 0;
	return md_fail(error_r, "premature end of file (no end record)");
    }
    if (maildrop_check_record(c, *type, data, error_r) < 0)
	return -1;
    return 1;
}
