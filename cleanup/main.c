/* main.c - cleanup: the only writer of new queue files. A SINGLE server
 * (lib/mail/server.h): one client connection per process at a time, any
 * number of messages per connection (mail_proto.h, conversation 1). */

/* System. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Base. */
#include "group_sync.h"
#include "ipc.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail. */
#include "config.h"
#include "mail_proto.h"
#include "resolve.h"
#include "server.h"

/* Cleanup. */
#include "cleanup.h"

#define CLEANUP_ORIGIN_MAX	100

static int cleanup_incoming_fd = -1;

/* cleanup_pre_init - open the tables and incoming/ before the drop */
static void cleanup_pre_init(int argc, char **argv)
{
    const char *error;

    (void) argc;
    (void) argv;
    tzset();
    if (resolve_init(&error) < 0)
	msg_fatal("%s", error);
    if ((cleanup_incoming_fd = open("incoming", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
	msg_fatal("open directory %s/incoming: %m", var_queue_directory);
}

/* cleanup_post_init - join the group commit of incoming/ (as the mail
 * owner, so that the state file is the directory owner's) */
static void cleanup_post_init(int argc, char **argv)
{
    struct group_sync *gs;
    const char *error;

    (void) argc;
    (void) argv;
    if ((gs = group_sync_open(CLEANUP_GROUP_SYNC_FILE, cleanup_incoming_fd, &error)) == NULL)
	msg_warn("%s/%s: %s -- every commit fsyncs incoming/ on its own",
		 var_queue_directory, CLEANUP_GROUP_SYNC_FILE, error);
    cleanup_out_group_sync(gs);
}

/* cleanup_on_exit - close the tables */
static void cleanup_on_exit(void)
{
    resolve_fini();
}

/* cleanup_service - one client: the handshake, then its messages */
static void cleanup_service(struct stream *client)
{
    struct str *origin = str_new(CLEANUP_ORIGIN_MAX);
    const char *error;
    long flags;

    if (ipc_handshake_server(client, CLEANUP_PROTO, CLEANUP_VERSION) < 0) {
	str_free(&origin);
	return;
    }
    for (;;) {
	flags = 0;
	str_reset(origin);
	if (ipc_recv(client, &error, IPC_RECV_INT(ATTR_FLAGS, &flags),
		     IPC_RECV_STR(ATTR_ORIGIN, origin), IPC_END) < 0) {
	    if (stream_error(client) != STREAM_EOF)
		msg_warn("request from client: %s", error);
	    break;
	}
	server_watchdog_reset();
	if (cleanup_message(client, cleanup_incoming_fd, flags, str_cstr(origin))
	    != CLEANUP_CONN_NEXT)
	    break;
    }
    str_free(&origin);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "cleanup",
	.pre_init = cleanup_pre_init,
	.post_init = cleanup_post_init,
	.on_exit = cleanup_on_exit,
	.single_service = cleanup_service,
    };

    return server_main(argc, argv, &spec);
}
