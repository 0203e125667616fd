/* proto_attr.h - what the codecs of the internal mail protocols share
 * (deliver_proto.h, bounce_proto.h): a cursor that reads a decoded
 * attribute list strictly in protocol order, and the envelope group of
 * attributes that the deliver and the bounce request both carry.
 *
 * The envelope group, always in this order (proto_envelope_encode,
 * proto_envelope_decode):
 *   queue_id      a valid queue ID (queue_id.h)
 *   queue_file    relative to queue_directory ("active/ID"); at most
 *                 PROTO_TEXT_MAX bytes. proto_queue_file_ok says whether
 *                 it is "DIR/queue_id" with DIR one of active, deferred,
 *                 incoming, hold (bounce refuses a request otherwise,
 *                 local-delivery defers its recipients)
 *   sender        "" = the null sender; at most PROTO_ADDR_MAX bytes
 *   arrival_time  whole seconds since the epoch
 *   dsn_envid     RFC 3461 ENVID, "" if none; at most PROTO_TEXT_MAX
 *   dsn_ret       "", "full" or "hdrs" (any case)
 *
 * Every attribute read through a cursor must have the expected name at
 * its position, no NUL byte and a length within its limit; a number is a
 * non-negative decimal without sign or leading zeros that fits a long
 * (proto_number). Nothing may follow the last expected attribute.
 *
 * DIAGNOSTICS: the take and decode functions return false with the
 * cursor's *error_r set to a static text (valid until the next call into
 * a protocol codec), prefixed with the cursor's "what":
 *   deliver request: attribute 3 is "sender", expected "queue_file"
 *   deliver request: missing attribute "rcpt_offset"
 *   deliver request: NUL byte in attribute "sender"
 *   deliver request: attribute "sender" too long (3000 bytes, limit 2048)
 *   deliver request: bad arrival_time "12x"
 *   deliver request: unexpected attribute "foo" after the last one */
#ifndef POSTHORN_PROTO_ATTR_H
#define POSTHORN_PROTO_ATTR_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "ipc.h"
#include "str.h"

#define PROTO_ADDR_MAX	2048	/* bytes of an address attribute */
#define PROTO_TEXT_MAX	4096	/* bytes of any other text attribute */
#define PROTO_RCPT_MAX	100000	/* recipients in one request */

struct proto_envelope {
    const char *queue_id;
    const char *queue_file;
    const char *sender;
    long arrival_time;
    const char *dsn_envid;
    const char *dsn_ret;
};

struct proto_cursor {
    const struct ipc_list *list;
    size_t pos;			/* next attribute to read */
    const char *what;		/* error text prefix: "bounce request" */
    const char **error_r;
};

/* proto_cursor_init - read list from its first attribute */
void proto_cursor_init(struct proto_cursor *c, const struct ipc_list *list, const char *what,
		       const char **error_r);
/* proto_take_str - the next attribute is name, text of at most max bytes */
bool proto_take_str(struct proto_cursor *c, const char *name, size_t max, const char **value);
/* proto_take_long - the next attribute is name, a number (proto_number) */
bool proto_take_long(struct proto_cursor *c, const char *name, long *value);
/* proto_take_value - the next attribute is name with this exact value */
bool proto_take_value(struct proto_cursor *c, const char *name, const char *value);
/* proto_more - an attribute is left to read */
bool proto_more(const struct proto_cursor *c);
/* proto_end - nothing is left (else an "unexpected attribute" error) */
bool proto_end(struct proto_cursor *c);
/* proto_fail - set the error text (prefixed with c->what); false */
bool proto_fail(struct proto_cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* proto_number - non-negative decimal, no sign, no leading zero, fits */
bool proto_number(const char *text, long *value);

/* proto_envelope_encode - append the group to an encoded message */
void proto_envelope_encode(struct str *out, const struct proto_envelope *env);
/* proto_envelope_decode - read the group (values point into the list) */
bool proto_envelope_decode(struct proto_cursor *c, struct proto_envelope *env);
/* proto_queue_file_ok - queue_file is "DIR/queue_id", DIR a queue state */
bool proto_queue_file_ok(const struct proto_envelope *env);

#endif
