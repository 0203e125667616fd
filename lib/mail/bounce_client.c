/* bounce_client.c - the blocking client call of the bounce protocol on a
 * stream, built on the codec in bounce_proto.c (bounce_client.h). */

/* base */
#include "ipc.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "bounce_client.h"
#include "bounce_proto.h"

/* bounce_client_call - blocking request and reply */
int bounce_client_call(struct stream *s, const struct bounce_request *req,
		       struct ipc_list *reply, struct bounce_reply *rep, const char **error_r)
{
    struct str msg;
    int ret = -1;

    str_init(&msg, IPC_MSG_MAX);
    bounce_request_encode(&msg, req);
    if (ipc_call(s, &msg, reply, error_r) == 0)
	ret = bounce_reply_decode(reply, rep, error_r);
    str_fini(&msg);
    return ret;
}
