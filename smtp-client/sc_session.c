/* sc_session.c - one SMTP session of smtp-client: the non-blocking TCP
 * connect (smtp_connect_timeout), the greeting (smtp_greeting_timeout),
 * EHLO with a fall back to HELO (smtp_helo_timeout), STARTTLS
 * (sc_tls.c), AUTH (sc_sasl.c),
 * RSET before a reuse (smtp_rset_timeout) and QUIT (smtp_quit_timeout),
 * and the texts that quote the peer in a recipient's reason. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "sc.h"

/* sc_connect - a connected socket to a within smtp_connect_timeout; -1
 * with the errno text in why */
static int sc_connect(const struct sc_addr *a, char *why, size_t why_size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct pollfd pfd;
    int fd, err = 0, rc;
    socklen_t elen = sizeof(err);
    struct timespec start, now;
    long left;

    memset(&ss, 0, sizeof(ss));
    if (a->family == AF_INET) {
	struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

	sin->sin_family = AF_INET;
	sin->sin_port = htons((unsigned short) a->port);
	sin->sin_addr = a->a.v4;
	len = sizeof(*sin);
    } else {
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((unsigned short) a->port);
	sin6->sin6_addr = a->a.v6;
	len = sizeof(*sin6);
    }
    if ((fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
	fmt_buf_cut(why, why_size, "socket: %s", strerror(errno));
	return -1;
    }
    if (connect(fd, (struct sockaddr *) &ss, len) < 0) {
	if (errno != EINPROGRESS) {
	    fmt_buf_cut(why, why_size, "%s", strerror(errno));
	    close(fd);
	    return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
	    clock_gettime(CLOCK_MONOTONIC, &now);
	    left = var_smtp_connect_timeout * 1000
		- ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
	    if (left <= 0) {
		fmt_buf_cut(why, why_size, "Connection timed out");
		close(fd);
		return -1;
	    }
	    pfd.fd = fd;
	    pfd.events = POLLOUT;
	    pfd.revents = 0;
	    rc = poll(&pfd, 1, (int) left);
	    if (rc < 0 && errno == EINTR)
		continue;
	    if (rc < 0) {
		fmt_buf_cut(why, why_size, "poll: %s", strerror(errno));
		close(fd);
		return -1;
	    }
	    if (rc > 0)
		break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
	    err = errno;
	if (err != 0) {
	    fmt_buf_cut(why, why_size, "%s", strerror(err));
	    close(fd);
	    return -1;
	}
    }
    if (sock_set_nonblock(fd, false) < 0) {
	fmt_buf_cut(why, why_size, "fcntl: %s", strerror(errno));
	close(fd);
	return -1;
    }
    return fd;
}

/* sc_command - one command line */
int sc_command(struct sc_session *ss, bool flush, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = stream_vprintf(ss->stream, fmt, ap);
    va_end(ap);
    if (rc == 0)
	rc = stream_puts(ss->stream, "\r\n");
    if (rc == 0 && flush)
	rc = stream_flush(ss->stream);
    return rc;
}

/* sc_session_said - the peer's reply, quoted for a recipient */
void sc_session_said(const struct sc_session *ss, const struct sc_reply *r, const char *cmd,
		     char *reason, size_t size)
{
    char quoted[SC_REPLY_TEXT_MAX];

    sc_reply_quote(r, quoted, sizeof(quoted));
    fmt_buf_cut(reason, size, "host %s said: %s (in reply to %s command)", ss->namaddr, quoted,
		cmd);
}

/* sc_session_lost - a broken session, for a recipient */
void sc_session_lost(const struct sc_session *ss, const char *what, const char *why,
		     char *reason, size_t size)
{
    if (strcmp(why, "timeout") == 0)
	fmt_buf_cut(reason, size, "conversation with %s timed out while %s", ss->namaddr, what);
    else if (why[0] == 0 || strcmp(why, "lost connection") == 0)
	fmt_buf_cut(reason, size, "lost connection with %s while %s", ss->namaddr, what);
    else
	fmt_buf_cut(reason, size, "error with %s while %s: %s", ss->namaddr, what, why);
}

/* sc_session_is_open - a connection is there */
bool sc_session_is_open(const struct sc_session *ss)
{
    return ss->stream != NULL;
}

/* sc_session_close - drop the connection */
void sc_session_close(struct sc_session *ss)
{
    if (ss->stream) {
	stream_set_timeout(ss->stream, 0);
	(void) stream_close(&ss->stream);
    }
    ss->healthy = false;
    ss->tls = false;
    ss->uses = 0;
    ss->nexthop[0] = 0;
}

/* sc_session_quit - QUIT, then close */
void sc_session_quit(struct sc_session *ss)
{
    struct sc_reply r;
    const char *err;

    if (ss->stream == NULL)
	return;
    stream_set_timeout(ss->stream, (int) var_smtp_quit_timeout * 1000);
    if (sc_command(ss, true, "QUIT") == 0) {
	sc_reply_init(&r);
	(void) sc_reply_read(ss->stream, var_smtp_quit_timeout, &r, &err);
	sc_reply_fini(&r);
    }
    sc_tls_close(ss);
    sc_session_close(ss);
}

/* sc_session_rset - RSET before a reuse */
bool sc_session_rset(struct sc_session *ss)
{
    struct sc_reply r;
    const char *err;
    bool ok = false;

    if (ss->stream == NULL)
	return false;
    stream_set_timeout(ss->stream, (int) var_smtp_rset_timeout * 1000);
    sc_reply_init(&r);
    if (sc_command(ss, true, "RSET") == 0
	&& sc_reply_read(ss->stream, var_smtp_rset_timeout, &r, &err) == 0)
	ok = r.code / 100 == 2;
    sc_reply_fini(&r);
    if (!ok)
	sc_session_close(ss);
    return ok;
}

/* sc_helo - EHLO, or HELO after a 5xx to EHLO; 0 or -1 with reason */
int sc_helo(struct sc_session *ss, struct sc_reply *r, char *dsn, size_t dsn_size,
		   char *reason, size_t reason_size)
{
    const char *err = "", *cmd = "EHLO";

    stream_set_timeout(ss->stream, (int) var_smtp_helo_timeout * 1000);
    if (sc_command(ss, true, "EHLO %s", var_smtp_helo_name) < 0
	|| sc_reply_read(ss->stream, var_smtp_helo_timeout, r, &err) < 0)
	goto lost;
    if (r->code / 100 == 2) {
	ss->esmtp = true;
	sc_ext_parse(str_cstr(r->lines), &ss->ext);
	return 0;
    }
    if (r->code / 100 == 5) {
	cmd = "HELO";
	if (sc_command(ss, true, "HELO %s", var_smtp_helo_name) < 0
	    || sc_reply_read(ss->stream, var_smtp_helo_timeout, r, &err) < 0)
	    goto lost;
	if (r->code / 100 == 2) {
	    ss->esmtp = false;
	    memset(&ss->ext, 0, sizeof(ss->ext));
	    return 0;
	}
    }
    sc_session_said(ss, r, cmd, reason, reason_size);
    str_copy_out_or_panic(dsn, dsn_size, r->code / 100 == 5 ? "5.5.0" : "4.4.0");
    if (r->dsn[0] && r->dsn[0] == dsn[0])
	str_copy_out_or_panic(dsn, dsn_size, r->dsn);
    return -1;
  lost:
    sc_session_lost(ss, "sending EHLO", err ? err : "", reason, reason_size);
    str_copy_out_or_panic(dsn, dsn_size, "4.4.2");
    return -1;
}

/* sc_session_open - a new session to a */
enum sc_open_status sc_session_open(struct sc_session *ss, const char *nexthop,
				    const struct sc_addr *a, bool plain, char *dsn,
				    size_t dsn_size, char *reason, size_t reason_size)
{
    char why[256];
    struct sc_reply r;
    const char *err = "";
    int fd;
    enum sc_open_status st = SC_OPEN_REPLY;

    memset(ss, 0, sizeof(*ss));
    str_copy_out_or_panic(ss->host, sizeof(ss->host), a->host);
    str_copy_out_or_panic(ss->addr, sizeof(ss->addr), a->text);
    ss->port = a->port;
    fmt_buf_or_panic(ss->namaddr, sizeof(ss->namaddr), "%s[%s]", a->host, a->text);
    fmt_buf_or_panic(ss->relay, sizeof(ss->relay), "%s[%s]:%d", a->host, a->text, a->port);
    if (!str_try_copy_out(ss->nexthop, sizeof(ss->nexthop), nexthop))
	ss->nexthop[0] = 0;
    str_copy_out_or_panic(ss->tls_log, sizeof(ss->tls_log), "none");
    if ((fd = sc_connect(a, why, sizeof(why))) < 0) {
	fmt_buf_cut(reason, reason_size, "connect to %s:%d: %s", ss->namaddr, a->port, why);
	str_copy_out_or_panic(dsn, dsn_size, "4.4.1");
	return SC_OPEN_CONNECT;
    }
    ss->stream = stream_open(fd);
    sc_reply_init(&r);
    if (sc_reply_read(ss->stream, var_smtp_greeting_timeout, &r, &err) < 0) {
	sc_session_lost(ss, "receiving the initial server greeting", err, reason, reason_size);
	str_copy_out_or_panic(dsn, dsn_size, "4.4.2");
	st = SC_OPEN_CONNECT;
	goto fail;
    }
    if (r.code != 220) {
	char quoted[SC_REPLY_TEXT_MAX];

	sc_reply_quote(&r, quoted, sizeof(quoted));
	fmt_buf_cut(reason, reason_size, "host %s refused to talk to me: %s", ss->namaddr, quoted);
	/* a 5xx greeting is that host's refusal: the next one may take it */
	str_copy_out_or_panic(dsn, dsn_size, r.code / 100 == 5 ? "4.3.0" : "4.4.2");
	st = r.code / 100 == 5 ? SC_OPEN_REPLY : SC_OPEN_CONNECT;
	goto fail;
    }
    if (sc_helo(ss, &r, dsn, dsn_size, reason, reason_size) < 0)
	goto fail;
    if (!plain && (st = sc_tls_start(ss, nexthop, &r, dsn, dsn_size, reason, reason_size))
	!= SC_OPEN_OK)
	goto fail;
    st = SC_OPEN_REPLY;
    if (sc_sasl_auth(ss, nexthop, dsn, dsn_size, reason, reason_size) < 0)
	goto fail;
    sc_reply_fini(&r);
    ss->healthy = true;
    return SC_OPEN_OK;
  fail:
    sc_reply_fini(&r);
    if (ss->stream && st == SC_OPEN_REPLY)
	sc_session_quit(ss);
    else if (st == SC_OPEN_TLS_RETRY) {
	sc_session_close(ss);
	return st;
    }
    else
	sc_session_close(ss);
    return st;
}
