/* main.c - submit, the local submission service: sendmail hands it a
 * whole maildrop file over a Unix socket, and it answers only after
 * cleanup has the message on disk.
 *
 * master.cf: "submit unix w - n - - submit". The socket is
 * $queue_directory/submit/submit: the directory submit/ (mode 0711) is
 * the one every local user may pass through, the socket is mode 0666.
 * This takes the place of the setgid postdrop and of maildrop/ for
 * sendmail's default mode (one exec fewer per message; see
 * docs/architecture.md, decision 49); postdrop stays as the path when
 * this service cannot be reached (the mail system is stopped).
 *
 * One conversation per connection:
 *   client -> submit   the records of one maildrop file (maildrop.h),
 *                      V S A* ([O] [N] R)* M (C* L)* X ([O] [N] R)* E
 *   submit -> client   one line, after cleanup's answer:
 *                        "Q <queue-id>"      on disk (file and directory)
 *                        "F <status> <text>" refused; status is a
 *                                            sysexits.h code for sendmail
 *                        "U <text>"          cleanup unreachable, nothing
 *                                            stored: use postdrop instead
 *
 * SECURITY: the client is any local user. submit takes the submitter's
 * uid from the kernel (SO_PEERCRED), never from the client; every
 * record passes the maildrop rules (record_grammar.h, the same checker
 * as postdrop and pickup: no arrival time, client attributes, submit_uid
 * or done marks from the client; size limits), and the message goes to
 * cleanup as CLEANUP_FLAG_LOCAL | CLEANUP_FLAG_UNTRUSTED with
 * submit_uid=<peer uid>, exactly as pickup sends a maildrop/ file.
 * submit runs as the mail owner (unpriv y). Each read and write on the
 * client is bounded by ipc_timeout (sendmail reads its input to the end
 * before it connects, so a client that stalls is not sendmail). */

/* System library. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>

/* Base library. */
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "cleanup_client.h"
#include "config.h"
#include "maildrop.h"
#include "maildrop_cleanup.h"
#include "queue_space.h"
#include "server.h"

#define SUBMIT_ORIGIN	"submit"

/* The cleanup conversation, kept from one client to the next while the
 * process is busy, let go after a second without clients (sb_idle). */
static struct cleanup_client *sb_cleanup;

/* sb_kept_cleanup - drop the kept cleanup connection if cleanup closed
 * it meanwhile (readable means EOF: cleanup never talks first) */
static void sb_kept_cleanup(void)
{
    struct pollfd p;

    if (sb_cleanup == NULL)
	return;
    p.fd = stream_fd(cleanup_client_stream(sb_cleanup));
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 0) != 0)
	cleanup_client_close(&sb_cleanup);
}

/* sb_space_left - queue_minfree in the queue's file system (the working
 * directory), as postdrop and smtpd check it; if not, a temporary
 * refusal before any input is read. sendmail reads the answer after its
 * write (a small message) or, when the close cuts a large one short,
 * falls back to postdrop, which refuses with the same reason: either
 * way the user gets a clear temporary failure and nothing is queued. A
 * statvfs failure lets the message through (cleanup fails safely). */
static bool sb_space_left(struct stream *client, unsigned long uid)
{
    uint64_t avail = 0;
    int rc = queue_space_check(".", 0, &avail);

    if (rc < 0)
	msg_warn("statvfs %s: %m", var_queue_directory);
    if (rc != 0)
	return true;
    msg_warn("uid=%lu: not enough free space in the queue file system: %llu bytes free, "
	     "%llu needed (queue_minfree)", uid, (unsigned long long) avail,
	     (unsigned long long) queue_space_need(0));
    (void) stream_printf(client, "F %d not enough free space in the queue file system: "
			 "%llu bytes free, %llu needed (queue_minfree): try again later\n",
			 EX_TEMPFAIL, (unsigned long long) avail,
			 (unsigned long long) queue_space_need(0));
    (void) stream_flush(client);
    return false;
}

/* sb_service - one submission */
static void sb_service(struct stream *client)
{
    struct maildrop_submission sub = {.origin = SUBMIT_ORIGIN,
	.size_limit = var_message_size_limit};
    struct cleanup_result result;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct timespec now;
    struct str *sender;
    const char *why = NULL;
    bool cleanup_down = false;

    if (getsockopt(stream_fd(client), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0
	|| len != sizeof(cred)) {
	msg_warn("cannot tell who the client is (SO_PEERCRED): %m");
	(void) stream_printf(client, "F %d submit cannot tell who you are\n", EX_SOFTWARE);
	(void) stream_flush(client);
	return;
    }
    sub.uid = (unsigned long) cred.uid;
    if (!sb_space_left(client, sub.uid))
	return;
    (void) clock_gettime(CLOCK_REALTIME, &now);
    sub.sec = (int64_t) now.tv_sec;
    sub.usec = now.tv_nsec / 1000;
    stream_set_timeout(client, (int) (var_ipc_timeout * 1000));
    sender = str_new(MAILDROP_ADDR_MAX);
    result.queue_id[0] = 0;
    sb_kept_cleanup();
    switch (maildrop_to_cleanup(&sb_cleanup, client, &sub, sender, &result, &why, &cleanup_down)) {
    case MAILDROP_QUEUED:
	msg_info("%s: uid=%lu from=<%s>", result.queue_id, sub.uid, sender->data);
	(void) stream_printf(client, "Q %s\n", result.queue_id);
	break;
    case MAILDROP_BAD:
	/* Also a client that stopped before E: answer if it still reads. */
	if (stream_error(client) != STREAM_OK)
	    msg_warn("uid=%lu pid=%ld: input ended early (%s): %s", sub.uid, (long) cred.pid,
		     stream_status_text(stream_error(client)), why);
	else
	    msg_warn("uid=%lu from=<%s>: rejected: %s", sub.uid, sender->data, why);
	(void) stream_printf(client, "F %d %s\n", EX_DATAERR, why);
	break;
    case MAILDROP_TEMP:
	msg_warn("uid=%lu from=<%s>: not queued: %s", sub.uid, sender->data, why);
	(void) stream_printf(client, "F %d %s\n", EX_TEMPFAIL, why);
	break;
    case MAILDROP_NO_CLEANUP:
	/* Nothing was sent, nothing stored: sendmail uses postdrop. */
	msg_warn("uid=%lu from=<%s>: cleanup unreachable, the client falls back to "
		 "postdrop: %s", sub.uid, sender->data, why);
	(void) stream_printf(client, "U %s\n", why);
	break;
    }
    (void) stream_flush(client);
    str_free(&sender);
}

/* sb_idle - no client for a second: give the cleanup process back */
static void sb_idle(void)
{
    cleanup_client_close(&sb_cleanup);
}

/* sb_post_init - no arguments */
static void sb_post_init(int argc, char **argv)
{
    (void) argv;
    if (argc > 0)
	msg_fatal("unexpected arguments");
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "submit",
	.post_init = sb_post_init,
	.on_exit = sb_idle,
	.single_service = sb_service,
	.single_idle = sb_idle,
    };

    return server_main(argc, argv, &spec);
}
