/* session-floor.c - a floor measurement for bench/ingest, not part of
 * posthorn: the least a server needs that runs one process per SMTP
 * session, as posthorn's (and Postfix's) smtpd does, and keeps
 * posthorn's four syncs per message.
 *
 * Usage: session-floor DIR PORT PROCS
 *
 * Listens on 127.0.0.1:PORT and forks PROCS processes that accept on the
 * one socket, each serving one session at a time, until SIGTERM. A
 * session gets "220", any HELO/EHLO, MAIL, RCPT and RSET "250", DATA
 * "354", the data up to the lone dot, and then, in the same process,
 * with no other process, no parsing beyond the line ends and no logging:
 * the file steps of bench/floor-steps.h (cleanup's commit with its two
 * syncs, then "250", then the delivery with the other two); QUIT "221".
 * Anything else gets "502". DIR must exist and be empty; the program
 * makes incoming/, active/, tmp/ and new/ in it (the caller removes DIR).
 *
 * bench/ingest measures its CPU per message (/proc/PID/schedstat of the
 * processes) under smtp-source's load: set against posthorn's figure,
 * the difference is what posthorn's separate processes (smtp-front,
 * cleanup, qmgr, local-delivery and its worker, master) and everything
 * else it does cost.
 *
 * DIAGNOSTICS: a failed set-up step or file step prints "session-floor:
 * what: why" on stderr and exits 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "floor-steps.h"

#define MAX_PROCS	256
#define LINE_MAX_LEN	1000		/* an SMTP command line (RFC 5321) */
#define DATA_MAX	(16L * 1024 * 1024)	/* refused beyond: 552 */
#define QF_HEADER_SIZE	200		/* envelope records of a queue file */

/* die - report a failed step and exit */
static void die(const char *fmt, ...)
{
    int     err = errno;
    va_list ap;

    fputs("session-floor: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(err));
    exit(1);
}

/* usage - the command line, then exit */
static void usage(void)
{
    fputs("usage: session-floor DIR PORT PROCS\n", stderr);
    exit(1);
}

/* number - a decimal argument in [min, max], else usage() */
static long number(const char *s, long min, long max)
{
    char   *end;
    long    v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || v < min || v > max)
	usage();
    return v;
}

/* A session's input, buffered. */
struct in {
    int     fd;
    char    buf[16384];
    size_t  start;
    size_t  end;
};

/* in_line - the next line without its CR LF into line (NUL-terminated,
 * cut at size - 1); its length, or -1 at the end of the input */
static long in_line(struct in *in, char *line, size_t size)
{
    size_t  len = 0;

    for (;;) {
	while (in->start < in->end) {
	    char    c = in->buf[in->start++];

	    if (c == '\n') {
		if (len > 0 && line[len - 1] == '\r')
		    len--;
		line[len] = 0;
		return (long) len;
	    }
	    if (len < size - 1)
		line[len++] = c;
	}
	ssize_t n = read(in->fd, in->buf, sizeof(in->buf));

	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    return -1;
	in->start = 0;
	in->end = (size_t) n;
    }
}

/* reply - one reply line; false when the client is gone */
static bool reply(int fd, const char *text)
{
    size_t  len = strlen(text);

    return send(fd, text, len, MSG_NOSIGNAL) == (ssize_t) len;
}

/* prefix - does line start with word, in any case? */
static bool prefix(const char *line, const char *word)
{
    return strncasecmp(line, word, strlen(word)) == 0;
}

/* session - serve one client; seq numbers this process's messages */
static void session(int fd, const struct floor_dirs *d, long *seq, char **data,
		    size_t *data_size)
{
    struct in in = {.fd = fd};
    char    line[LINE_MAX_LEN + 1];
    char    id[64];
    long    len, syncs = 0;

    if (!reply(fd, "220 session-floor ESMTP\r\n"))
	return;
    while ((len = in_line(&in, line, sizeof(line))) >= 0) {
	const char *answer = "502 5.5.2 Error: command not recognized\r\n";

	if (prefix(line, "HELO") || prefix(line, "EHLO") || prefix(line, "MAIL")
	    || prefix(line, "RCPT") || prefix(line, "RSET") || prefix(line, "NOOP")) {
	    answer = "250 2.0.0 Ok\r\n";
	} else if (prefix(line, "QUIT")) {
	    (void) reply(fd, "221 2.0.0 Bye\r\n");
	    return;
	} else if (prefix(line, "DATA")) {
	    size_t  used = QF_HEADER_SIZE;	/* the envelope records */
	    bool    too_big = false;

	    if (!reply(fd, "354 End data with <CR><LF>.<CR><LF>\r\n"))
		return;
	    while ((len = in_line(&in, line, sizeof(line))) >= 0
		   && !(line[0] == '.' && line[1] == 0)) {
		if (used + (size_t) len + 2 > DATA_MAX) {
		    too_big = true;
		    continue;
		}
		if (used + (size_t) len + 2 > *data_size) {
		    size_t  want = (used + (size_t) len + 2) * 2;
		    char   *grown = realloc(*data, want);

		    if (grown == NULL)
			die("realloc");
		    *data = grown;
		    *data_size = want;
		}
		memcpy(*data + used, line, (size_t) len);
		memcpy(*data + used + len, "\r\n", 2);
		used += (size_t) len + 2;
	    }
	    if (len < 0)
		return;
	    if (too_big) {
		answer = "552 5.3.4 Error: message too big\r\n";
	    } else {
		static char *rbuf;		/* the queue file read back */
		static size_t rbuf_size;

		if (rbuf_size < used + 1) {
		    free(rbuf);
		    rbuf_size = used + 1;
		    if ((rbuf = malloc(rbuf_size)) == NULL)
			die("malloc");
		}
		floor_commit(d, ++*seq, *data, used, true, &syncs, id, sizeof(id));
		if (!reply(fd, "250 2.0.0 Ok: queued\r\n"))
		    answer = NULL;
		floor_deliver(d, *seq, id, used, *data + QF_HEADER_SIZE, used - QF_HEADER_SIZE,
			      rbuf, true, &syncs);
		if (answer == NULL)
		    return;
		continue;
	    }
	}
	if (!reply(fd, answer))
	    return;
    }
}

/* serve - a child: accept and serve sessions until killed */
static void serve(int lfd, const struct floor_dirs *d)
{
    long    seq = 0;
    size_t  data_size = 65536;
    char   *data = malloc(data_size);

    if (data == NULL)
	die("malloc");
    memset(data, 'E', QF_HEADER_SIZE);
    for (;;) {
	int     fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
	    if (errno == EINTR || errno == ECONNABORTED)
		continue;
	    die("accept");
	}
	session(fd, d, &seq, &data, &data_size);
	(void) close(fd);
    }
}

int     main(int argc, char **argv)
{
    struct floor_dirs d;
    struct sockaddr_in sin;
    pid_t   kids[MAX_PROCS];
    long    port, procs;
    int     lfd, one = 1, sig;
    sigset_t set;

    if (argc != 4)
	usage();
    port = number(argv[2], 1, 65535);
    procs = number(argv[3], 1, MAX_PROCS);
    floor_open_dirs(&d, argv[1]);
    if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
	die("socket");
    (void) setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) < 0 || listen(lfd, 256) < 0)
	die("listen on 127.0.0.1:%ld", port);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
	die("sigprocmask");
    for (long i = 0; i < procs; i++) {
	if ((kids[i] = fork()) < 0)
	    die("fork");
	if (kids[i] == 0) {
	    (void) sigprocmask(SIG_UNBLOCK, &set, NULL);	/* SIGTERM ends it */
	    serve(lfd, &d);
	}
    }
    if (sigwait(&set, &sig) != 0)
	die("sigwait");
    for (long i = 0; i < procs; i++)
	(void) kill(kids[i], SIGTERM);
    while (wait(NULL) > 0 || errno == EINTR)
	;
    return 0;
}
