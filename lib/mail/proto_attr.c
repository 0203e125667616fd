/* proto_attr.c - the ordered, strict attribute cursor and the envelope
 * group shared by the deliver and bounce request codecs (proto_attr.h). */

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* base */
#include "ipc.h"
#include "str.h"

/* mail */
#include "mail_proto.h"
#include "proto_attr.h"
#include "queue_id.h"

static char proto_error[512];

/* proto_cursor_init - start at the first attribute */
void proto_cursor_init(struct proto_cursor *c, const struct ipc_list *list, const char *what,
		       const char **error_r)
{
    c->list = list;
    c->pos = 0;
    c->what = what;
    c->error_r = error_r;
}

/* proto_fail - format the error text */
bool proto_fail(struct proto_cursor *c, const char *fmt, ...)
{
    char text[sizeof(proto_error)];
    va_list ap;

    va_start(ap, fmt);
    (void) vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fmt_buf_cut(proto_error, sizeof(proto_error), "%s: %s", c->what, text);
    *c->error_r = proto_error;
    return false;
}

/* proto_next - the next attribute, if it has this name */
static const struct ipc_attr *proto_next(struct proto_cursor *c, const char *name)
{
    const struct ipc_attr *a;

    if (c->pos >= c->list->count) {
	(void) proto_fail(c, "missing attribute \"%s\"", name);
	return NULL;
    }
    a = c->list->attrs + c->pos;
    if (strcmp(a->name, name) != 0) {
	(void) proto_fail(c, "attribute %zu is \"%.64s\", expected \"%s\"", c->pos + 1, a->name,
			  name);
	return NULL;
    }
    if (strlen(a->value) != a->len) {
	(void) proto_fail(c, "NUL byte in attribute \"%s\"", name);
	return NULL;
    }
    c->pos++;
    return a;
}

/* proto_take_str - a bounded text attribute */
bool proto_take_str(struct proto_cursor *c, const char *name, size_t max, const char **value)
{
    const struct ipc_attr *a = proto_next(c, name);

    if (a == NULL)
	return false;
    if (a->len > max)
	return proto_fail(c, "attribute \"%s\" too long (%zu bytes, limit %zu)", name, a->len, max);
    *value = a->value;
    return true;
}

/* proto_take_long - a number attribute */
bool proto_take_long(struct proto_cursor *c, const char *name, long *value)
{
    const struct ipc_attr *a = proto_next(c, name);

    if (a == NULL)
	return false;
    if (!proto_number(a->value, value))
	return proto_fail(c, "bad %s \"%.32s\"", name, a->value);
    return true;
}

/* proto_take_value - an attribute with one allowed value */
bool proto_take_value(struct proto_cursor *c, const char *name, const char *value)
{
    const char *got = "";

    if (!proto_take_str(c, name, PROTO_TEXT_MAX, &got))
	return false;
    if (strcmp(got, value) != 0)
	return proto_fail(c, "%s is \"%.32s\", expected \"%s\"", name, got, value);
    return true;
}

/* proto_more - anything left? */
bool proto_more(const struct proto_cursor *c)
{
    return c->pos < c->list->count;
}

/* proto_end - nothing may be left */
bool proto_end(struct proto_cursor *c)
{
    if (proto_more(c))
	return proto_fail(c, "unexpected attribute \"%.64s\" after the last one",
			  c->list->attrs[c->pos].name);
    return true;
}

/* proto_number - a non-negative decimal without sign or leading zeros */
bool proto_number(const char *text, long *value)
{
    long v = 0;

    if (*text == 0 || (text[0] == '0' && text[1] != 0))
	return false;
    for (const char *p = text; *p; p++) {
	if (!isdigit((unsigned char) *p) || v > (LONG_MAX - (*p - '0')) / 10)
	    return false;
	v = v * 10 + (*p - '0');
    }
    *value = v;
    return true;
}

/* proto_envelope_encode - the group, in order */
void proto_envelope_encode(struct str *out, const struct proto_envelope *env)
{
    ipc_encode_str(out, ATTR_QUEUE_ID, env->queue_id);
    ipc_encode_str(out, ATTR_QUEUE_FILE, env->queue_file);
    ipc_encode_str(out, ATTR_SENDER, env->sender);
    ipc_encode_long(out, ATTR_ARRIVAL_TIME, env->arrival_time);
    ipc_encode_str(out, ATTR_DSN_ENVID, env->dsn_envid);
    ipc_encode_str(out, ATTR_DSN_RET, env->dsn_ret);
}

/* proto_envelope_decode - the group, checked */
bool proto_envelope_decode(struct proto_cursor *c, struct proto_envelope *env)
{
    if (!proto_take_str(c, ATTR_QUEUE_ID, PROTO_TEXT_MAX, &env->queue_id))
	return false;
    if (!queue_id_valid(env->queue_id))
	return proto_fail(c, "bad queue_id \"%.32s\"", env->queue_id);
    if (!proto_take_str(c, ATTR_QUEUE_FILE, PROTO_TEXT_MAX, &env->queue_file)
	|| !proto_take_str(c, ATTR_SENDER, PROTO_ADDR_MAX, &env->sender)
	|| !proto_take_long(c, ATTR_ARRIVAL_TIME, &env->arrival_time)
	|| !proto_take_str(c, ATTR_DSN_ENVID, PROTO_TEXT_MAX, &env->dsn_envid)
	|| !proto_take_str(c, ATTR_DSN_RET, PROTO_TEXT_MAX, &env->dsn_ret))
	return false;
    if (*env->dsn_ret && strcasecmp(env->dsn_ret, "full") != 0
	&& strcasecmp(env->dsn_ret, "hdrs") != 0)
	return proto_fail(c, "bad dsn_ret \"%.32s\"", env->dsn_ret);
    return true;
}

/* proto_queue_file_ok - "DIR/ID" with a queue state DIR and ID == queue_id */
bool proto_queue_file_ok(const struct proto_envelope *env)
{
    static const char *const dirs[] = {"active/", "deferred/", "incoming/", "hold/"};

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
	size_t n = strlen(dirs[i]);

	if (strncmp(env->queue_file, dirs[i], n) == 0)
	    return strcmp(env->queue_file + n, env->queue_id) == 0;
    }
    return false;
}
