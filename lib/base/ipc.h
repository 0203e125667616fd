/* ipc.h - the one attribute-list framing for every Unix-socket conversation.
 *
 * Wire format: a message is a sequence of attributes, each two netstrings
 * (name, value): "4:size,4:1234,". An empty name ("0:,") ends the
 * message. Names are [a-z0-9_]{1,64}; values are bytes. A message larger
 * than IPC_MSG_MAX, an attribute value larger than its limit, or any
 * syntax error is an error, never a partial read. Every read is bounded
 * by the stream's timeout.
 *
 * A conversation opens with a handshake: the server sends
 * {proto=NAME, version=N}; the client checks both and fails closed on a
 * mismatch (ipc_handshake_server / ipc_handshake_client).
 *
 * Sending (varargs, terminated by IPC_END):
 *     ipc_send(stream, IPC_STR("sender", addr), IPC_INT("size", n), IPC_END);
 * Receiving, strictly: every listed attribute must be present exactly
 * once (unless wrapped in IPC_OPT), and nothing else may arrive:
 *     ipc_recv(stream, &error, IPC_RECV_STR("sender", str),
 *              IPC_RECV_INT("size", &n), IPC_END);
 * ipc_recv_list() reads a message into a generic list instead, for
 * messages whose attributes repeat (e.g. one "rcpt" per recipient). */
#ifndef POSTHORN_IPC_H
#define POSTHORN_IPC_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"
#include "stream.h"

#define IPC_MSG_MAX	((size_t) 16 << 20)	/* whole message */
#define IPC_NAME_MAX	64
#define IPC_VALUE_MAX	((size_t) 1 << 20)	/* default per attribute */

enum ipc_type {
    IPC_TYPE_END = 0,
    IPC_TYPE_STR,		/* send: const char *; recv: struct str * */
    IPC_TYPE_INT,		/* send: long; recv: long * (decimal, checked) */
    IPC_TYPE_DATA,		/* send: const void *, size_t; recv: struct str * */
    IPC_TYPE_OPT,		/* recv only: next attribute may be absent */
};

#define IPC_END			IPC_TYPE_END
#define IPC_STR(name, val)	IPC_TYPE_STR, (const char *) (name), (const char *) (val)
#define IPC_INT(name, val)	IPC_TYPE_INT, (const char *) (name), (long) (val)
#define IPC_DATA(name, p, n)	IPC_TYPE_DATA, (const char *) (name), (const void *) (p), (size_t) (n)
#define IPC_RECV_STR(name, s)	IPC_TYPE_STR, (const char *) (name), (struct str *) (s)
#define IPC_RECV_INT(name, lp)	IPC_TYPE_INT, (const char *) (name), (long *) (lp)
#define IPC_RECV_DATA(name, s)	IPC_TYPE_DATA, (const char *) (name), (struct str *) (s)
#define IPC_OPT			IPC_TYPE_OPT

/* ipc_send - write one message and flush; 0 or -1 (stream error) */
int ipc_send(struct stream *s, ...);
/* Error texts (*error_r of every function below) are this module's
 * errtext (errtext.h): valid until the next ipc_* error. */

/* ipc_recv - read one message strictly; 0 on success, -1 with *error_r */
int ipc_recv(struct stream *s, const char **error_r, ...);

/* A decoded message, for messages with repeated attributes. */
struct ipc_attr {
    char *name;
    char *value;		/* NUL-terminated copy */
    size_t len;			/* value length (may contain NULs) */
};
struct ipc_list {
    struct ipc_attr *attrs;
    size_t count;
    size_t cap;
};
void ipc_list_init(struct ipc_list *list);
void ipc_list_reset(struct ipc_list *list);
void ipc_list_fini(struct ipc_list *list);
/* ipc_list_add - append an attribute (copies both) */
void ipc_list_add(struct ipc_list *list, const char *name, const void *value, size_t len);
/* ipc_list_get - the value of the first attribute with this name, or NULL */
const char *ipc_list_get(const struct ipc_list *list, const char *name);
/* ipc_recv_list - read one message into list (reset first) */
int ipc_recv_list(struct stream *s, struct ipc_list *list, const char **error_r);
/* ipc_send_list - write a list as one message and flush */
int ipc_send_list(struct stream *s, const struct ipc_list *list);

/* ipc_call - write a request encoded with ipc_encode_attr/ipc_encode_end,
 * flush it, and read the reply into reply (reset first); 0 or -1 */
int ipc_call(struct stream *s, const struct str *request, struct ipc_list *reply,
	     const char **error_r);

/* ipc_send_encoded - write a message built with ipc_encode_* and flush */
int ipc_send_encoded(struct stream *s, const struct str *msg);

/* Handshake: the server speaks first. ipc_handshake_encode is the
 * announcement in memory (for a server on its own event loop). */
void ipc_handshake_encode(struct str *out, const char *proto, long version);
int ipc_handshake_server(struct stream *s, const char *proto, long version);
int ipc_handshake_client(struct stream *s, const char *proto, long version, const char **error_r);
/* ipc_handshake_check - the client's check of a decoded announcement
 * (for a client that reads it from its own event loop) */
int ipc_handshake_check(const struct ipc_list *list, const char *proto, long version,
			const char **error_r);

/* ipc_encode_* / ipc_decode_list - the codec on memory buffers, for tests and
 * for records stored in files. ipc_decode_list returns bytes consumed, 0
 * if the buffer holds no complete message yet, -1 on a syntax error. */
void ipc_encode_attr(struct str *out, const char *name, const void *value, size_t len);
void ipc_encode_end(struct str *out);
/* ipc_encode_str - a text attribute; NULL is sent as "" */
void ipc_encode_str(struct str *out, const char *name, const char *value);
/* ipc_encode_long - a decimal integer attribute (no printf: this runs for
 * every request a busy daemon sends) */
void ipc_encode_long(struct str *out, const char *name, long value);
long ipc_decode_list(const char *buf, size_t len, struct ipc_list *list, const char **error_r);

#endif
