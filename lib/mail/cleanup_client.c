/* cleanup_client.c - talk to the cleanup daemon: connect, hand over one
 * message after another as queue-file records, read each reply (see
 * cleanup_client.h). */

/* System. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Base. */
#include "ipc.h"
#include "mem.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* Mail. */
#include "cleanup_client.h"
#include "cleanup_stat.h"
#include "config.h"
#include "mail_proto.h"
#include "queue_file.h"

struct cleanup_client {
    struct stream *stream;
    uint64_t bytes;			/* content bytes of this message */
};

static char cleanup_client_errbuf[1024];

/* cc_error - format an error into the module's buffer */
static int cc_error(const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int cc_error(const char **error_r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(cleanup_client_errbuf, sizeof(cleanup_client_errbuf), fmt, ap) < 0)
	cleanup_client_errbuf[0] = 0;	/* a message text: cut to fit */
    va_end(ap);
    if (error_r)
	*error_r = cleanup_client_errbuf;
    return -1;
}

/* cc_timeout_ms - ipc_timeout in milliseconds, bounded */
static int cc_timeout_ms(void)
{
    return var_ipc_timeout > INT_MAX / 1000 ? INT_MAX : (int) (var_ipc_timeout * 1000);
}

/* cleanup_client_open - connect and check the handshake */
struct cleanup_client *cleanup_client_open(const char *path, const char **error_r)
{
    struct cleanup_client *c;
    const char *error;
    int fd;

    if (path == NULL)
	path = CLEANUP_SOCKET;
    if ((fd = sock_connect_unix(path, cc_timeout_ms(), &error)) < 0) {
	cc_error(error_r, "connect to cleanup service %s: %s", path, error);
	return NULL;
    }
    c = mem_zalloc(sizeof(*c));
    c->stream = stream_open(fd);
    stream_set_unix(c->stream, true);
    stream_set_timeout(c->stream, cc_timeout_ms());
    if (ipc_handshake_client(c->stream, CLEANUP_PROTO, CLEANUP_VERSION, &error) < 0) {
	cc_error(error_r, "cleanup service %s: %s", path, error);
	cleanup_client_close(&c);
	return NULL;
    }
    return c;
}

/* cleanup_client_begin - {flags, origin}, buffered: it goes to cleanup
 * with the envelope records that follow, in one write (cleanup wakes up
 * once per message, not once for the flags and again for the rest) */
int cleanup_client_begin(struct cleanup_client *c, unsigned flags, const char *origin,
			 const char **error_r)
{
    struct str *msg = str_new(IPC_MSG_MAX);
    int ret;

    c->bytes = 0;
    ipc_encode_long(msg, ATTR_FLAGS, (long) flags);
    ipc_encode_str(msg, ATTR_ORIGIN, origin ? origin : "");
    ipc_encode_end(msg);
    ret = stream_write(c->stream, str_cstr(msg), str_len(msg));
    str_free(&msg);
    if (ret < 0)
	return cc_error(error_r, "cleanup service: write error: %s",
			stream_status_text(stream_error(c->stream)));
    return 0;
}

int cleanup_client_time(struct cleanup_client *c, int64_t sec, long usec)
{
    return qf_put_time(c->stream, sec, usec);
}

int cleanup_client_sender(struct cleanup_client *c, const char *sender)
{
    return qf_puts(c->stream, QF_REC_SENDER, sender ? sender : "");
}

int cleanup_client_attr(struct cleanup_client *c, const char *name, const char *value)
{
    return qf_put_attr(c->stream, name, value ? value : "");
}

/* cleanup_client_rcpt - [O] [N] R */
int cleanup_client_rcpt(struct cleanup_client *c, const char *rcpt, const char *orcpt,
			const char *notify)
{
    if (orcpt && *orcpt && qf_puts(c->stream, QF_REC_ORCPT, orcpt) < 0)
	return -1;
    if (notify && *notify && qf_puts(c->stream, QF_REC_NOTIFY, notify) < 0)
	return -1;
    return qf_puts(c->stream, QF_REC_RCPT, rcpt);
}

int cleanup_client_message(struct cleanup_client *c)
{
    return qf_put(c->stream, QF_REC_MESSAGE, "", 0);
}

/* cleanup_client_line - one content line, without its terminator */
int cleanup_client_line(struct cleanup_client *c, const void *data, size_t len)
{
    c->bytes += len + 1;
    return qf_put_line(c->stream, data, len, CLEANUP_CLIENT_LINE_MAX);
}

int cleanup_client_xend(struct cleanup_client *c)
{
    return qf_put(c->stream, QF_REC_XEND, "", 0);
}

/* cleanup_client_finish - send E and read the reply */
int cleanup_client_finish(struct cleanup_client *c, struct cleanup_result *result,
			  const char **error_r)
{
    struct str *queue_id = str_new(QUEUE_ID_SIZE - 1);
    struct str *reason = str_new(CLEANUP_REASON_MAX - 1);
    const char *error;
    long status = -1;
    int ret = 0;

    memset(result, 0, sizeof(*result));
    /* A server that rejected early may have closed its end already; its
     * reply can still be waiting in the socket, so read it anyway. */
    if (qf_put(c->stream, QF_REC_END, "", 0) < 0 || stream_flush(c->stream) < 0)
	stream_clear_error(c->stream);
    if (ipc_recv(c->stream, &error, IPC_RECV_INT(ATTR_STATUS, &status),
		 IPC_RECV_STR(ATTR_QUEUE_ID, queue_id),
		 IPC_RECV_STR(ATTR_REASON, reason), IPC_END) < 0) {
	ret = cc_error(error_r, "cleanup service: %s", error);
    } else if (status < 0 || (unsigned long) status > UINT_MAX) {
	ret = cc_error(error_r, "cleanup service: bad status %ld", status);
    } else if (status == 0 && !queue_id_valid(str_cstr(queue_id))) {
	ret = cc_error(error_r, "cleanup service: bad queue ID in reply");
    } else {
	result->status = (unsigned) status;
	if (!str_try_copy_out(result->queue_id, sizeof(result->queue_id), str_cstr(queue_id)))
	    result->queue_id[0] = 0;	/* not queued: no ID to report */
	fmt_buf_cut(result->reason, sizeof(result->reason), "%s", str_cstr(reason));
    }
    if (ret < 0) {
	result->status = CLEANUP_STAT_WRITE;
	result->queue_id[0] = 0;
	fmt_buf_cut(result->reason, sizeof(result->reason), "%s", cleanup_client_errbuf);
    }
    str_free(&queue_id);
    str_free(&reason);
    return ret;
}

/* cleanup_client_abandon - close before E: nothing is queued */
void cleanup_client_abandon(struct cleanup_client **cp)
{
    if (cp && *cp) {
	/* Do not flush half a record into the server; just drop it. */
	stream_set_timeout((*cp)->stream, 0);
	cleanup_client_close(cp);
    }
}

/* cleanup_client_close - end the conversation */
void cleanup_client_close(struct cleanup_client **cp)
{
    if (cp && *cp) {
	(void) stream_close(&(*cp)->stream);
	mem_free(cp);
    }
}

struct stream *cleanup_client_stream(struct cleanup_client *c)
{
    return c->stream;
}

uint64_t cleanup_client_bytes(const struct cleanup_client *c)
{
    return c->bytes;
}
