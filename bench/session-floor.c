/* session-floor.c - a floor measurement for bench/ingest, not part of
 * posthorn: the least a server needs that runs one process per SMTP
 * session, as posthorn's (and Postfix's) smtpd does, and keeps
 * posthorn's four syncs per message.
 *
 * Usage: session-floor DIR PORT PROCS [inline | split]
 *
 * Listens on 127.0.0.1:PORT; PROCS processes accept on the one socket,
 * each serving one session at a time, until SIGTERM. A session gets
 * "220", any HELO/EHLO, MAIL, RCPT, RSET and NOOP "250", DATA "354", the
 * data up to the lone dot, then "250" once the queue file is on disk;
 * QUIT "221"; anything else "502". No logging, no parsing beyond the
 * line ends. The file steps are bench/floor-steps.h's. The two modes:
 *
 *   inline  (default) the session process does them all itself: the
 *           commit with its two syncs, "250", then the delivery with the
 *           other two. The least of a process-per-session design with
 *           nothing split off.
 *   split   posthorn's process layout, with nothing but the hand-overs:
 *           each session process sends the message over a socketpair to
 *           a cleanup process of its own (the commit), answers "250"
 *           when it replies, and writes "ID LEN" to a pipe read by one
 *           qmgr process, which takes the file into active/ and hands
 *           the ID to one of two delivery processes (the Maildir part,
 *           reading the queue file itself) and unlinks the file when it
 *           answers. Set against posthorn, what is left is posthorn's own
 *           work (parsing, lookups, logging, smtp-front, the per-user
 *           worker, master, restarts).
 *
 * DIR must exist and be empty; the program makes incoming/, active/,
 * tmp/ and new/ in it (the caller removes DIR). Every process is a child
 * of the first, so bench/ingest finds them all in /proc/PID/task/PID/
 * children.
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
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "floor-steps.h"

#define MAX_PROCS	256
#define LINE_MAX_LEN	1000		/* an SMTP command line (RFC 5321) */
#define DATA_MAX	(16L * 1024 * 1024)	/* refused beyond: 552 */
#define QF_HEADER_SIZE	200		/* envelope records of a queue file */

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

/* read_full - exactly len bytes from fd, or false at the end */
static bool read_full(int fd, void *buf, size_t len)
{
    char   *p = buf;

    while (len > 0) {
	ssize_t n = read(fd, p, len);

	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    return false;
	p += n;
	len -= (size_t) n;
    }
    return true;
}

/* grow - make *buf (of *size bytes) hold at least want bytes */
static void grow(char **buf, size_t *size, size_t want)
{
    char   *bigger;

    if (*size >= want)
	return;
    if ((bigger = realloc(*buf, want)) == NULL)
	die("realloc");
    *buf = bigger;
    *size = want;
}

/* What qmgr hands a delivery process (split): a queue file. */
struct floor_job {
    char    id[64];
    uint64_t len;			/* of the queue file */
};

/* The split layout's descriptors (-1: inline). */
static int cleanup_fd = -1;		/* this session process's cleanup */
static int trigger_fd = -1;		/* qmgr's pipe, write end */

/* commit - the commit, here (inline) or by this session's cleanup
 * process (split); on return the queue file is on disk and its ID is in
 * id */
static void commit(const struct floor_dirs *d, long seq, char *data, size_t used,
		   char *id, size_t id_size)
{
    long    syncs = 0;
    uint64_t len = used;
    ssize_t n;

    if (cleanup_fd < 0) {
	floor_commit(d, seq, data, used, true, &syncs, id, id_size);
	return;
    }
    /* the length in the envelope's first bytes: one write, one read each
     * way (the reply is the ID, NUL-terminated, in one small read) */
    memcpy(data, &len, sizeof(len));
    floor_write_all(cleanup_fd, data, used, "to cleanup");
    while ((n = read(cleanup_fd, id, id_size - 1)) < 0 && errno == EINTR)
	;
    if (n <= 0 || memchr(id, 0, (size_t) n) == NULL)
	die("cleanup went away");
}

/* after_250 - the rest of the message's way: inline, the delivery; split,
 * a line to qmgr */
static void after_250(const struct floor_dirs *d, long seq, const char *id, size_t used,
		      char **rbuf, size_t *rbuf_size)
{
    long    syncs = 0;

    if (trigger_fd < 0) {
	grow(rbuf, rbuf_size, used + 1);
	floor_deliver(d, seq, id, used, used - QF_HEADER_SIZE, *rbuf, true, &syncs);
    } else {
	char    line[96];
	int     n = snprintf(line, sizeof(line), "%s %zu\n", id, used);

	floor_write_all(trigger_fd, line, (size_t) n, "to qmgr");	/* < PIPE_BUF */
    }
}

/* session - serve one client; seq numbers this process's messages */
static void session(int fd, const struct floor_dirs *d, long *seq, char **data,
		    size_t *data_size, char **rbuf, size_t *rbuf_size)
{
    struct in in = {.fd = fd};
    char    line[LINE_MAX_LEN + 1];
    char    id[64];
    long    len;

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
		if (used + (size_t) len + 2 > *data_size)
		    grow(data, data_size, (used + (size_t) len + 2) * 2);
		memcpy(*data + used, line, (size_t) len);
		memcpy(*data + used + len, "\r\n", 2);
		used += (size_t) len + 2;
	    }
	    if (len < 0)
		return;
	    if (too_big) {
		answer = "552 5.3.4 Error: message too big\r\n";
	    } else {
		bool    gone;

		commit(d, ++*seq, *data, used, id, sizeof(id));
		gone = !reply(fd, "250 2.0.0 Ok: queued\r\n");
		after_250(d, *seq, id, used, rbuf, rbuf_size);
		if (gone)
		    return;
		continue;
	    }
	}
	if (!reply(fd, answer))
	    return;
    }
}

/* serve - a session process: accept and serve sessions until killed */
static void serve(int lfd, const struct floor_dirs *d)
{
    long    seq = 0;
    size_t  data_size = 65536, rbuf_size = 0;
    char   *data = malloc(data_size);
    char   *rbuf = NULL;

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
	session(fd, d, &seq, &data, &data_size, &rbuf, &rbuf_size);
	(void) close(fd);
    }
}

/* cleanup_main - split: commit what the session process sends */
static void cleanup_main(int fd, const struct floor_dirs *d)
{
    long    seq = 0, syncs = 0;
    size_t  size = 65536;
    char   *data = malloc(size);
    char    id[64];
    uint64_t len;

    if (data == NULL)
	die("malloc");
    for (;;) {
	ssize_t n;
	size_t  got;

	/* the first read brings the length (the first 8 bytes) and,
	 * usually, the whole message */
	while ((n = read(fd, data, size)) < 0 && errno == EINTR)
	    ;
	if (n < (ssize_t) sizeof(len))
	    break;
	memcpy(&len, data, sizeof(len));
	if (len < sizeof(len) || len > (uint64_t) DATA_MAX + QF_HEADER_SIZE)
	    die("cleanup: %llu bytes", (unsigned long long) len);
	grow(&data, &size, (size_t) len);
	got = (size_t) n;
	if (got < len && !read_full(fd, data + got, (size_t) len - got))
	    break;
	floor_commit(d, ++seq, data, (size_t) len, true, &syncs, id, sizeof(id));
	floor_write_all(fd, id, strlen(id) + 1, "to smtpd");
    }
    exit(0);
}

#define DELIVERY_PROCS	2		/* local_destination_concurrency_limit */
#define QMGR_QUEUE	65536		/* IDs waiting for a delivery process */

/* delivery_main - split: deliver the IDs qmgr sends, answer each */
static void delivery_main(int fd, const struct floor_dirs *d)
{
    long    seq = 0, syncs = 0;
    size_t  rbuf_size = 0;
    char   *rbuf = NULL;
    struct floor_job job;

    while (read_full(fd, &job, sizeof(job))) {
	job.id[sizeof(job.id) - 1] = 0;
	if (job.len < QF_HEADER_SIZE || job.len > (uint64_t) DATA_MAX + QF_HEADER_SIZE)
	    die("delivery: %llu bytes", (unsigned long long) job.len);
	grow(&rbuf, &rbuf_size, (size_t) job.len + 1);
	floor_maildir(d, ++seq, job.id, (size_t) job.len, (size_t) job.len - QF_HEADER_SIZE,
		      rbuf, true, &syncs);
	floor_write_all(fd, "k", 1, "to qmgr");
    }
    exit(0);
}

/* qmgr_main - split: IDs from the pipe, to free delivery processes */
static void qmgr_main(int pipe_fd, const int *del_fds, const struct floor_dirs *d)
{
    static struct floor_job queue[QMGR_QUEUE], busy[DELIVERY_PROCS];
    bool    is_busy[DELIVERY_PROCS] = {false};
    size_t  head = 0, count = 0, in_len = 0, rbuf_size = 0;
    char    in[8192];
    char   *rbuf = NULL;

    for (;;) {
	struct pollfd pfd[1 + DELIVERY_PROCS];

	/* hand out work first */
	for (int i = 0; i < DELIVERY_PROCS && count > 0; i++) {
	    if (is_busy[i])
		continue;
	    busy[i] = queue[head];
	    head = (head + 1) % QMGR_QUEUE;
	    count--;
	    grow(&rbuf, &rbuf_size, (size_t) busy[i].len + 1);
	    floor_take(d, busy[i].id, (size_t) busy[i].len, rbuf);
	    floor_write_all(del_fds[i], (const char *) &busy[i], sizeof(busy[i]), "to delivery");
	    is_busy[i] = true;
	}
	pfd[0].fd = count < QMGR_QUEUE - 512 ? pipe_fd : -1;
	pfd[0].events = POLLIN;
	for (int i = 0; i < DELIVERY_PROCS; i++) {
	    pfd[1 + i].fd = del_fds[i];
	    pfd[1 + i].events = POLLIN;
	}
	if (poll(pfd, 1 + DELIVERY_PROCS, -1) < 0) {
	    if (errno == EINTR)
		continue;
	    die("poll");
	}
	for (int i = 0; i < DELIVERY_PROCS; i++) {
	    char    k;

	    if (!(pfd[1 + i].revents & (POLLIN | POLLHUP)))
		continue;
	    if (!read_full(del_fds[i], &k, 1))
		exit(0);
	    floor_done(d, busy[i].id);
	    is_busy[i] = false;
	}
	if (pfd[0].revents & (POLLIN | POLLHUP)) {
	    ssize_t n = read(pipe_fd, in + in_len, sizeof(in) - in_len);
	    char   *p, *nl;

	    if (n <= 0) {
		if (n < 0 && errno == EINTR)
		    continue;
		exit(0);
	    }
	    in_len += (size_t) n;
	    p = in;
	    while ((nl = memchr(p, '\n', in_len - (size_t) (p - in))) != NULL) {
		size_t  tail = (head + count) % QMGR_QUEUE;
		unsigned long long len;

		*nl = 0;
		if (sscanf(p, "%63s %llu", queue[tail].id, &len) != 2)
		    die("qmgr: bad trigger line");
		queue[tail].len = len;
		count++;
		p = nl + 1;
	    }
	    in_len -= (size_t) (p - in);
	    memmove(in, p, in_len);
	}
    }
}

static pid_t kids[2 * MAX_PROCS + 8];	/* every child, for the SIGTERM */
static int nkids;

/* spawn - fork a child (0 in it), remembered for the end */
static pid_t spawn(void)
{
    pid_t   pid = fork();

    if (pid < 0)
	die("fork");
    if (pid > 0)
	kids[nkids++] = pid;
    return pid;
}

int     main(int argc, char **argv)
{
    struct floor_dirs d;
    struct sockaddr_in sin;
    long    port, procs;
    int     lfd, one = 1, sig, pipe_fds[2] = {-1, -1};
    bool    split = false;
    sigset_t set;

    floor_prog = "session-floor";
    floor_usage = "DIR PORT PROCS [inline | split]";
    if (argc != 4 && argc != 5)
	usage();
    port = number(argv[2], 1, 65535);
    procs = number(argv[3], 1, MAX_PROCS);
    if (argc == 5 && strcmp(argv[4], "split") == 0)
	split = true;
    else if (argc == 5 && strcmp(argv[4], "inline") != 0)
	usage();
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
    /* every child dies with SIGTERM (unblocked in it) */
    if (split) {
	int     del[DELIVERY_PROCS][2];
	int     qmgr_del[DELIVERY_PROCS];

	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
	    die("pipe");
	for (int i = 0; i < DELIVERY_PROCS; i++) {
	    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, del[i]) < 0)
		die("socketpair");
	    if (spawn() == 0) {
		(void) sigprocmask(SIG_UNBLOCK, &set, NULL);
		delivery_main(del[i][1], &d);
	    }
	    (void) close(del[i][1]);
	    qmgr_del[i] = del[i][0];
	}
	if (spawn() == 0) {
	    (void) sigprocmask(SIG_UNBLOCK, &set, NULL);
	    (void) close(pipe_fds[1]);
	    qmgr_main(pipe_fds[0], qmgr_del, &d);
	}
	for (int i = 0; i < DELIVERY_PROCS; i++)
	    (void) close(qmgr_del[i]);
	(void) close(pipe_fds[0]);
	trigger_fd = pipe_fds[1];
    }
    for (long i = 0; i < procs; i++) {
	int     pair[2] = {-1, -1};

	if (split && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
	    die("socketpair");
	if (split && spawn() == 0) {
	    (void) sigprocmask(SIG_UNBLOCK, &set, NULL);
	    (void) close(pair[0]);
	    cleanup_main(pair[1], &d);
	}
	if (spawn() == 0) {
	    (void) sigprocmask(SIG_UNBLOCK, &set, NULL);
	    if (split) {
		(void) close(pair[1]);
		cleanup_fd = pair[0];
	    }
	    serve(lfd, &d);
	}
	if (split) {
	    (void) close(pair[0]);
	    (void) close(pair[1]);
	}
    }
    if (sigwait(&set, &sig) != 0)
	die("sigwait");
    for (int i = 0; i < nkids; i++)
	(void) kill(kids[i], SIGTERM);
    while (wait(NULL) > 0 || errno == EINTR)
	;
    return 0;
}
