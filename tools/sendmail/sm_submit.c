/* sm_submit.c - hand one maildrop file, built whole in memory, to the
 * submit service over its Unix socket ($queue_directory/submit/submit)
 * and read its one-line answer (submit(8)). When the service cannot be
 * reached the caller gives the same bytes to postdrop instead. */

/* System library. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "mail_proto.h"

/* This program. */
#include "sendmail.h"

/* sm_submit_write - write all of data; false on error */
static bool sm_submit_write(int fd, const char *data, size_t len)
{
    while (len > 0) {
	ssize_t n = write(fd, data, len);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    return false;
	data += n;
	len -= (size_t) n;
    }
    return true;
}

/* sm_submit - see sendmail.h */
enum sm_submit_result sm_submit(const struct str *file, int *status_r, char *text,
				size_t text_size)
{
    struct sockaddr_un sun;
    char reply[1200];
    size_t got = 0;
    char *end, *rest;
    long status;
    int fd;

    *status_r = 0;
    text[0] = 0;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (!fmt_try_buf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", sm_config("queue_directory"),
		     SUBMIT_SOCKET)) {
	fmt_buf_cut(text, text_size, "socket path too long");
	return SM_SUBMIT_UNREACHABLE;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
	fmt_buf_cut(text, text_size, "socket: %s", strerror(errno));
	return SM_SUBMIT_UNREACHABLE;
    }
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
	fmt_buf_cut(text, text_size, "connect %s: %s", sun.sun_path, strerror(errno));
	(void) close(fd);
	return SM_SUBMIT_UNREACHABLE;
    }
    /* The whole file, then EOF: submit reads to the end before it sends
     * E to cleanup. A write that fails means submit went away before it
     * had the end record, so nothing was stored. */
    if (!sm_submit_write(fd, file->data, file->len) || shutdown(fd, SHUT_WR) < 0) {
	fmt_buf_cut(text, text_size, "write to %s: %s", sun.sun_path, strerror(errno));
	(void) close(fd);
	return SM_SUBMIT_UNREACHABLE;
    }
    /* One line; submit answers only after cleanup's commit. */
    while (got < sizeof(reply) - 1) {
	ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    break;
	got += (size_t) n;
	if (memchr(reply, '\n', got))
	    break;
    }
    (void) close(fd);
    reply[got] = 0;
    if ((end = strchr(reply, '\n')) == NULL) {
	/* No answer: submit died after the end record (stopped?). The
	 * message may or may not be queued; the caller says so. */
	fmt_buf_cut(text, text_size, "no answer from the submit service");
	return SM_SUBMIT_LOST;
    }
    *end = 0;
    if (reply[0] == 'Q' && reply[1] == ' ') {
	fmt_buf_cut(text, text_size, "%s", reply + 2);
	return SM_SUBMIT_QUEUED;
    }
    if (reply[0] == 'U' && reply[1] == ' ') {
	fmt_buf_cut(text, text_size, "%s", reply + 2);
	return SM_SUBMIT_UNREACHABLE;
    }
    if (reply[0] == 'F' && reply[1] == ' ') {
	status = strtol(reply + 2, &rest, 10);
	if (rest != reply + 2 && *rest == ' ' && status > 0 && status < 256) {
	    *status_r = (int) status;
	    fmt_buf_cut(text, text_size, "%s", rest + 1);
	    return SM_SUBMIT_REFUSED;
	}
    }
    fmt_buf_cut(text, text_size, "malformed answer from the submit service");
    return SM_SUBMIT_LOST;
}
