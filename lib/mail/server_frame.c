/* server_frame.c - where one request of a MULTI client ends, for the
 * skeleton's framings (server.h, spec.multi_framing): one line, or one
 * IPC message. server_multi.c calls the daemon's multi_input only when a
 * whole request is buffered, so the daemon's reads never wait for a slow
 * client while the other clients of the process wait too. */

#include <string.h>

/* base */
#include "ipc.h"

/* mail */
#include "server.h"
#include "server_internal.h"

/* srv_frame_length - the bytes of the first whole request in buf[0..len):
 * >0 its length, 0 none yet. A broken IPC message counts as whole (all
 * of buf): the daemon's reader then reports the error and ends the
 * conversation, rather than the skeleton waiting for more. */
size_t srv_frame_length(int framing, const char *buf, size_t len)
{
    const char *nl;
    struct ipc_list list;
    const char *err;
    long n;

    switch (framing) {
    case SERVER_FRAME_LINE:
	nl = memchr(buf, '\n', len);
	return nl ? (size_t) (nl - buf) + 1 : 0;
    case SERVER_FRAME_IPC:
	if (len == 0)
	    return 0;
	ipc_list_init(&list);
	n = ipc_decode_list(buf, len, &list, &err);
	ipc_list_fini(&list);
	return n < 0 ? len : (size_t) n;
    default:
	return len;				/* no framing: all there is */
    }
}
