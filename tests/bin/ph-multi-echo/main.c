/* ph-multi-echo - a MULTI test daemon on the server skeleton.
 *
 * One process serves many clients through the event loop. On connect it
 * greets "ph-multi-echo ready pid=N"; commands, one per line:
 *   echo TEXT   answers TEXT
 *   clients     answers "clients N" (clients of this process now)
 *   quit        answers "bye" and disconnects */

#include <string.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "server.h"

#define LINE_MAX_LEN	1024

static long client_count;

/* multi_connect - greet a new client */
static void *multi_connect(struct stream *client)
{
    client_count++;
    stream_printf(client, "ph-multi-echo ready pid=%ld\n", (long) getpid());
    stream_flush(client);
    return str_new(LINE_MAX_LEN);
}

/* multi_input - one command line */
static bool multi_input(struct stream *client, void *ctx)
{
    struct str *line = ctx;
    enum stream_status st = stream_getline(client, line, LINE_MAX_LEN);
    const char *cmd;

    if (st != STREAM_OK)
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
    str_free(&line);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_MULTI,
	.name = "ph-multi-echo",
	.multi_connect = multi_connect,
	.multi_input = multi_input,
	.multi_disconnect = multi_disconnect,
    };

    return server_main(argc, argv, &spec);
}
