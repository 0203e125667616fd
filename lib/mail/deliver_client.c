/* deliver_client.c - blocking client calls of the deliver protocol on a
 * stream, built on the codec in deliver_proto.c (deliver_client.h). */

/* base */
#include "ipc.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "deliver_client.h"
#include "deliver_proto.h"

/* deliver_client_call - blocking request and reply */
int deliver_client_call(struct stream *s, const struct deliver_request *req,
			struct ipc_list *reply, struct deliver_result *results,
			struct deliver_reply_status *status, const char **error_r)
{
    struct str msg;
    int ret = -1;

    str_init(&msg, IPC_MSG_MAX);
    deliver_request_encode(&msg, req);
    if (ipc_call(s, &msg, reply, error_r) == 0)
	ret = deliver_reply_decode(reply, req, results, status, error_r);
    str_fini(&msg);
    return ret;
}

/* deliver_verify - blocking RCPT-time recipient check */
int deliver_verify(struct stream *s, const char *address, long size, struct str *status,
		   struct str *dsn, struct str *reason, const char **error_r)
{
    struct deliver_verify req = {address, size};
    struct deliver_verify_reply rep;
    struct ipc_list reply;
    struct str msg;
    int ret = -1;

    str_init(&msg, IPC_MSG_MAX);
    ipc_list_init(&reply);
    deliver_verify_encode(&msg, &req);
    if (ipc_call(s, &msg, &reply, error_r) == 0
	&& deliver_verify_reply_decode(&reply, &rep, error_r) == 0) {
	if (!str_try_set(status, rep.status))
	    *error_r = "verify reply: rcpt_status too long";
	else {
	    if (dsn && !str_try_set(dsn, rep.dsn))
		str_setn_or_panic(dsn, rep.dsn, dsn->max);
	    if (reason && !str_try_set(reason, rep.reason))
		str_setn_or_panic(reason, rep.reason, reason->max);
	    ret = 0;
	}
    }
    ipc_list_fini(&reply);
    str_fini(&msg);
    return ret;
}
