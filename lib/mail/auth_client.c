/* auth_client.c - blocking client calls of the auth protocol on a
 * stream, built on the codec in auth_proto.c (auth_client.h). */

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "auth_client.h"
#include "auth_proto.h"
#include "config.h"
#include "mail_proto.h"

struct auth_client {
    struct stream *stream;
    struct ipc_list reply;	/* the last reply: the strings point here */
    struct str msg;
};

static char ac_errbuf[512];

/* ac_error - format an error into the module's buffer; -1 */
static int ac_error(const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int ac_error(const char **error_r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(ac_errbuf, sizeof(ac_errbuf), fmt, ap) < 0)
	ac_errbuf[0] = 0;			/* a message text: cut to fit */
    va_end(ap);
    if (error_r)
	*error_r = ac_errbuf;
    return -1;
}

/* ac_timeout_ms - ipc_timeout in milliseconds, bounded */
static int ac_timeout_ms(void)
{
    return var_ipc_timeout > INT_MAX / 1000 ? INT_MAX : (int) (var_ipc_timeout * 1000);
}

/* auth_client_open - connect and check the handshake */
struct auth_client *auth_client_open(const char *path, const char **error_r)
{
    struct auth_client *ac;
    const char *error;
    int fd;

    if (path == NULL)
	path = AUTH_SOCKET;
    if ((fd = sock_connect_unix(path, ac_timeout_ms(), &error)) < 0) {
	ac_error(error_r, "connect to auth service %s: %s", path, error);
	return NULL;
    }
    ac = mem_zalloc(sizeof(*ac));
    ac->stream = stream_open(fd);
    stream_set_timeout(ac->stream, ac_timeout_ms());
    ipc_list_init(&ac->reply);
    str_init(&ac->msg, IPC_MSG_MAX);
    if (ipc_handshake_client(ac->stream, AUTH_PROTO, AUTH_VERSION, &error) < 0) {
	ac_error(error_r, "auth service %s: %s", path, error);
	auth_client_close(&ac);
	return NULL;
    }
    return ac;
}

/* auth_client_stream - the connection */
struct stream *auth_client_stream(struct auth_client *ac)
{
    return ac->stream;
}

/* ac_call - send ac->msg, read the reply into ac->reply */
static int ac_call(struct auth_client *ac, const char **error_r)
{
    const char *error;

    if (ipc_call(ac->stream, &ac->msg, &ac->reply, &error) < 0)
	return ac_error(error_r, "auth service: %s", error);
    return 0;
}

/* auth_client_start - request=auth and its reply */
int auth_client_start(struct auth_client *ac, const struct auth_request *req,
		      struct auth_reply *reply, const char **error_r)
{
    auth_request_encode(&ac->msg, req);
    if (ac_call(ac, error_r) < 0)
	return -1;
    return auth_reply_decode(&ac->reply, reply, error_r);
}

/* auth_client_continue - request=continue and its reply */
int auth_client_continue(struct auth_client *ac, const char *response,
			 struct auth_reply *reply, const char **error_r)
{
    auth_continue_encode(&ac->msg, response);
    if (ac_call(ac, error_r) < 0)
	return -1;
    return auth_reply_decode(&ac->reply, reply, error_r);
}

/* auth_client_redeem - request=redeem and its reply */
int auth_client_redeem(struct auth_client *ac, const char *token, const char *service,
		       struct auth_redeem_reply *reply, const char **error_r)
{
    struct auth_redeem req = {token, service};

    auth_redeem_encode(&ac->msg, &req);
    if (ac_call(ac, error_r) < 0)
	return -1;
    return auth_redeem_reply_decode(&ac->reply, reply, error_r);
}

/* auth_client_close - close and free */
void auth_client_close(struct auth_client **acp)
{
    struct auth_client *ac = *acp;

    if (ac == NULL)
	return;
    if (ac->stream)
	stream_close(&ac->stream);
    ipc_list_fini(&ac->reply);
    str_fini(&ac->msg);
    mem_free(acp);
}
