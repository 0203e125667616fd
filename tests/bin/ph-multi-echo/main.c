/* ph-multi-echo - a MULTI test daemon on the server skeleton.
 *
 * One process serves many clients through the event loop. The last
 * daemon argument picks the framing (spec.multi_framing):
 *   (none)  SERVER_FRAME_LINE: the skeleton calls multi_input per line
 *   raw     SERVER_FRAME_NONE: multi_input at any input; a partial line
 *           makes its read wait, and the whole process with it
 *   ipc     SERVER_FRAME_IPC: each request is an IPC message (ipc.h),
 *           answered with the same attributes plus "pid"; no greeting
 * Line modes greet "ph-multi-echo ready pid=N"; commands, one per line:
 *   echo TEXT   answers TEXT
 *   clients     answers "clients N" (clients of this process now)
 *   quit        answers "bye" and disconnects */

#include <string.h>
#include <unistd.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "server.h"

#define LINE_MAX_LEN	1024

static long client_count;
static bool ipc_mode;

/* multi_connect - greet a new client */
static void *multi_connect(struct stream *client)
{
    client_count++;
    if (ipc_mode)
	return NULL;
    stream_printf(client, "ph-multi-echo ready pid=%ld\n", (long) getpid());
    stream_flush(client);
    return str_new(LINE_MAX_LEN);
}

/* ipc_input - one IPC request: echo its attributes, add our pid */
static bool ipc_input(struct stream *client)
{
    struct ipc_list list;
    const char *err;
    char pid[32];
    bool ok;

    ipc_list_init(&list);
    if (ipc_recv_list(client, &list, &err) < 0) {
	if (stream_error(client) != STREAM_EOF)
	    msg_warn("request: %s", err);
	ipc_list_fini(&list);
	return false;
    }
    fmt_buf_or_panic(pid, sizeof(pid), "%ld", (long) getpid());
    ipc_list_add(&list, "pid", pid, strlen(pid));
    ok = ipc_send_list(client, &list) == 0;
    ipc_list_fini(&list);
    return ok;
}

/* multi_input - one command line */
static bool multi_input(struct stream *client, void *ctx)
{
    struct str *line = ctx;
    enum stream_status st;
    const char *cmd;

    if (ipc_mode)
	return ipc_input(client);
    if ((st = stream_getline(client, line, LINE_MAX_LEN)) != STREAM_OK)
	return false;
    str_chomp(line);
    cmd = str_cstr(line);
    if (strncmp(cmd, "echo ", 5) == 0) {
	stream_printf(client, "%s\n", cmd + 5);
    } else if (strcmp(cmd, "clients") == 0) {
	stream_printf(client, "clients %ld\n", client_count);
    } else if (strcmp(cmd, "quit") == 0) {
	stream_puts(client, "bye\n");
	stream_flush(client);
	return false;
    } else {
	stream_puts(client, "error: unknown command\n");
    }
    return stream_flush(client) == 0;
}

/* multi_disconnect - forget a client */
static void multi_disconnect(struct stream *client, void *ctx)
{
    struct str *line = ctx;

    (void) client;
    client_count--;
    if (line)
	str_free(&line);
}

int main(int argc, char **argv)
{
    static struct server_spec spec = {
	.kind = SERVER_MULTI,
	.name = "ph-multi-echo",
	.multi_connect = multi_connect,
	.multi_input = multi_input,
	.multi_disconnect = multi_disconnect,
	.multi_framing = SERVER_FRAME_LINE,
    };
    const char *mode = argc > 1 ? argv[argc - 1] : "";

    if (strcmp(mode, "raw") == 0) {
	spec.multi_framing = SERVER_FRAME_NONE;
    } else if (strcmp(mode, "ipc") == 0) {
	spec.multi_framing = SERVER_FRAME_IPC;
	ipc_mode = true;
    }
    return server_main(argc, argv, &spec);
}
