/* pop3d_session.c - one POP3 session after login, as a state machine on
 * the worker's event loop (conn.h): the TRANSACTION and UPDATE states of
 * RFC 1939 on one locked mailbox: STAT, LIST, RETR, DELE, NOOP, RSET,
 * TOP, UIDL, CAPA, QUIT.
 *
 * Many sessions share the worker process (all of one uid), so nothing
 * here is process-wide but scratch buffers. Message numbers are fixed at
 * login (the store's snapshot is never refreshed during a session, so
 * mail delivered meanwhile waits for the next one). RETR and TOP are
 * streamed: a chunk of the message is converted (pop3d_send.c) whenever
 * the client has taken the previous ones (on_drain), and no further
 * command is read until the message is out. DELE only marks, and QUIT
 * removes the marked files durably (unlink, then fsync of the directory,
 * store_expunge) before its +OK. A session that ends any other way
 * deletes nothing. The one-POP3-session lock is a flock(2) on a file of
 * the mailbox, per open file description, so it excludes a second
 * session in this same process as well as in any other ([IN-USE]). */

/* system */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "pop3_cmd.h"
#include "server.h"
#include "session_host.h"
#include "store.h"

/* pop3d */
#include "pop3d.h"

/* output queued beyond this: produce no more of a message until on_drain */
#define SESS_HIGH_WATER	(CONN_LOW_WATER + POP3D_SEND_OUT_MAX)

struct session {
    struct conn *c;
    struct store_mailbox *mb;
    char *user;
    char *addr;
    size_t count;		/* messages at login */
    bool *deleted;		/* marked by DELE */
    size_t ndeleted;
    off_t total;		/* octets of the messages not marked */
    size_t retrieved;		/* RETR/TOP done */
    off_t retrieved_octets;
    long commands;
    bool started;		/* logged in (not refused) */
    bool quit;			/* QUIT answered */
    bool ending;		/* closing after the output */
    event_timer_id idle_timer;
    /* RETR/TOP in progress */
    bool sending;
    struct pop3d_send send;
    off_t send_octets;
    uint32_t send_uid;
};

static const struct conn_handlers sess_handlers;

/* sess_ok, sess_err - "+OK text" / "-ERR [CODE] text" */
static void sess_ok(struct session *ss, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sess_err(struct session *ss, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sess_ok(struct session *ss, const char *fmt, ...)
{
    va_list ap;

    conn_write(ss->c, "+OK ", 4);
    va_start(ap, fmt);
    conn_vprintf(ss->c, fmt, ap);
    va_end(ap);
    conn_write(ss->c, "\r\n", 2);
}

static void sess_err(struct session *ss, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (code)
	conn_printf(ss->c, "-ERR [%s] ", code);
    else
	conn_write(ss->c, "-ERR ", 5);
    va_start(ap, fmt);
    conn_vprintf(ss->c, fmt, ap);
    va_end(ap);
    conn_write(ss->c, "\r\n", 2);
}

/* sess_end - answer what is queued, then close */
static void sess_end(struct session *ss)
{
    ss->ending = true;
    conn_pause_input(ss->c, true);
    conn_close_after_flush(ss->c);
}

/* sess_idle_cb - no command for pop3d_idle_timeout */
static void sess_idle_cb(void *ctx)
{
    struct session *ss = ctx;

    ss->idle_timer = 0;
    sess_err(ss, NULL, "Timeout, closing connection");
    sess_end(ss);
}

/* sess_idle_arm - the deadline for the next command (none while a
 * message is being sent: the write deadline of conn.h watches that) */
static void sess_idle_arm(struct session *ss, bool on)
{
    if (ss->idle_timer)
	event_timer_cancel(ss->idle_timer);
    ss->idle_timer = 0;
    if (on)
	ss->idle_timer = event_timer_add((int) (var_pop3d_idle_timeout > INT_MAX / 1000 ? INT_MAX
						: var_pop3d_idle_timeout * 1000),
					 sess_idle_cb, ss);
}

/* sess_uidl - the unique-id of a message: UID and UIDVALIDITY, each as 8
 * hex digits (Dovecot's default "%08Xu%08Xv"): stable across sessions
 * and the same UID as IMAP's */
static void sess_uidl(const struct session *ss, const struct store_msg *m, char *buf, size_t size)
{
    fmt_buf_or_panic(buf, size, "%08" PRIX32 "%08" PRIX32, m->uid, store_uidvalidity(ss->mb));
}

/* sess_msgno - the message named by arg: 1..count and not deleted; else
 * answers -ERR and returns NULL */
static const struct store_msg *sess_msgno(struct session *ss, const char *arg, size_t *idx)
{
    long n;

    if (!pop3_parse_number(arg, 1000000000L, &n)) {
	sess_err(ss, NULL, "Invalid message number: %.40s", arg);
	return NULL;
    }
    if (n < 1 || (size_t) n > ss->count) {
	sess_err(ss, NULL, "No such message: %ld", n);
	return NULL;
    }
    if (ss->deleted[n - 1]) {
	sess_err(ss, NULL, "Message %ld is deleted", n);
	return NULL;
    }
    *idx = (size_t) n - 1;
    return store_msg(ss->mb, (size_t) n - 1);
}

/* sess_args - the command takes min..max arguments; else -ERR */
static bool sess_args(struct session *ss, const struct pop3_command *cmd, int min, int max,
		      const char *syntax)
{
    if (cmd->bad_args || cmd->argc < min || cmd->argc > max) {
	sess_err(ss, NULL, "Syntax: %s", syntax);
	return false;
    }
    return true;
}

/* sess_list - LIST and UIDL, with or without a message number */
static void sess_list(struct session *ss, const struct pop3_command *cmd, bool uidl)
{
    const struct store_msg *m;
    char id[32];
    size_t i;

    if (!sess_args(ss, cmd, 0, 1, uidl ? "UIDL [msg]" : "LIST [msg]"))
	return;
    if (cmd->argc == 1) {
	if ((m = sess_msgno(ss, cmd->argv[0], &i)) == NULL)
	    return;
	if (uidl) {
	    sess_uidl(ss, m, id, sizeof(id));
	    sess_ok(ss, "%zu %s", i + 1, id);
	} else {
	    sess_ok(ss, "%zu %lld", i + 1, (long long) m->crlf_size);
	}
	return;
    }
    if (uidl)
	sess_ok(ss, "Unique-ID listing follows");
    else
	sess_ok(ss, "%zu messages (%lld octets)", ss->count - ss->ndeleted, (long long) ss->total);
    for (i = 0; i < ss->count; i++) {
	if (ss->deleted[i])
	    continue;
	m = store_msg(ss->mb, i);
	if (uidl) {
	    sess_uidl(ss, m, id, sizeof(id));
	    conn_printf(ss->c, "%zu %s\r\n", i + 1, id);
	} else {
	    conn_printf(ss->c, "%zu %lld\r\n", i + 1, (long long) m->crlf_size);
	}
    }
    conn_write(ss->c, ".\r\n", 3);
}

/* sess_pump - produce the message being sent until the output queue is
 * full enough; false: the session ended (read error) */
static bool sess_pump(struct session *ss)
{
    static char out[POP3D_SEND_OUT_MAX];
    bool done = false;
    ssize_t n;

    while (ss->sending && conn_output_pending(ss->c) < SESS_HIGH_WATER) {
	if ((n = pop3d_send_next(&ss->send, out, &done)) < 0) {
	    msg_warn("user=<%s>: read error in message UID %" PRIu32 ": %m", ss->user, ss->send_uid);
	    (void) close(ss->send.fd);
	    ss->sending = false;
	    sess_end(ss);			/* the response is cut */
	    return false;
	}
	conn_write(ss->c, out, (size_t) n);
	if (done) {
	    (void) close(ss->send.fd);
	    ss->sending = false;
	    ss->retrieved++;
	    ss->retrieved_octets += ss->send_octets;
	}
    }
    return true;
}

/* sess_retr - RETR msg, TOP msg n: the reply line, then the message
 * through sess_pump */
static void sess_retr(struct session *ss, const struct pop3_command *cmd, bool top)
{
    const struct store_msg *m;
    const char *err;
    long lines = -1;
    size_t i;
    int fd;

    if (!sess_args(ss, cmd, top ? 2 : 1, top ? 2 : 1, top ? "TOP msg lines" : "RETR msg"))
	return;
    if (top && !pop3_parse_number(cmd->argv[1], 2147483647L, &lines)) {
	sess_err(ss, NULL, "Invalid number of lines: %.40s", cmd->argv[1]);
	return;
    }
    if ((m = sess_msgno(ss, cmd->argv[0], &i)) == NULL)
	return;
    if ((fd = store_open_msg(ss->mb, i, &err)) < 0) {
	if (errno == ENOENT) {
	    sess_err(ss, NULL, "Message %zu was removed by another session", i + 1);
	    return;
	}
	msg_warn("user=<%s>: %s", ss->user, err);
	sess_err(ss, POP3_CODE_SYS_TEMP, "Cannot read message %zu", i + 1);
	return;
    }
    if (top)
	sess_ok(ss, "Top of message follows");
    else
	sess_ok(ss, "%lld octets", (long long) m->crlf_size);
    pop3d_send_begin(&ss->send, fd, lines, m->size);
    ss->send_octets = m->crlf_size;
    ss->send_uid = m->uid;
    ss->sending = true;
    (void) sess_pump(ss);
}

/* sess_quit - the UPDATE state: remove what DELE marked, durably, then
 * answer */
static void sess_quit(struct session *ss)
{
    uint32_t *uids;
    size_t n = 0, removed = 0;
    const char *err;

    ss->quit = true;
    if (ss->ndeleted == 0) {
	sess_ok(ss, "Bye");
	return;
    }
    uids = mem_alloc_array(ss->ndeleted, sizeof(*uids));
    for (size_t i = 0; i < ss->count; i++)
	if (ss->deleted[i])
	    uids[n++] = store_msg(ss->mb, i)->uid;
    if (store_expunge(ss->mb, uids, n, &removed, &err) < 0) {
	msg_warn("user=<%s>: deleting messages: %s", ss->user, err);
	sess_err(ss, POP3_CODE_SYS_TEMP, "Some deleted messages were not removed");
    } else {
	sess_ok(ss, "Bye, %zu message%s deleted", n, n == 1 ? "" : "s");
    }
    msg_info("user=<%s>: deleted %zu of %zu message%s", ss->user, removed, n, n == 1 ? "" : "s");
    mem_free(&uids);
}

/* sess_command - one command line */
static void sess_command(struct session *ss, const char *line, size_t len)
{
    struct pop3_command cmd;
    size_t i;

    pop3_parse_command(line, len, &cmd);
    if (cmd.bad_verb) {
	sess_err(ss, NULL, "Bad command");
    } else if (strcmp(cmd.verb, "STAT") == 0) {
	if (sess_args(ss, &cmd, 0, 0, "STAT"))
	    sess_ok(ss, "%zu %lld", ss->count - ss->ndeleted, (long long) ss->total);
    } else if (strcmp(cmd.verb, "LIST") == 0) {
	sess_list(ss, &cmd, false);
    } else if (strcmp(cmd.verb, "UIDL") == 0) {
	sess_list(ss, &cmd, true);
    } else if (strcmp(cmd.verb, "RETR") == 0) {
	sess_retr(ss, &cmd, false);
    } else if (strcmp(cmd.verb, "TOP") == 0) {
	sess_retr(ss, &cmd, true);
    } else if (strcmp(cmd.verb, "DELE") == 0) {
	if (sess_args(ss, &cmd, 1, 1, "DELE msg") && sess_msgno(ss, cmd.argv[0], &i)) {
	    ss->deleted[i] = true;
	    ss->ndeleted++;
	    ss->total -= store_msg(ss->mb, i)->crlf_size;
	    sess_ok(ss, "Message %zu deleted", i + 1);
	}
    } else if (strcmp(cmd.verb, "RSET") == 0) {
	if (sess_args(ss, &cmd, 0, 0, "RSET")) {
	    for (i = 0; i < ss->count; i++)
		if (ss->deleted[i]) {
		    ss->deleted[i] = false;
		    ss->total += store_msg(ss->mb, i)->crlf_size;
		}
	    ss->ndeleted = 0;
	    sess_ok(ss, "%zu messages (%lld octets)", ss->count, (long long) ss->total);
	}
    } else if (strcmp(cmd.verb, "NOOP") == 0) {
	if (sess_args(ss, &cmd, 0, 0, "NOOP"))
	    sess_ok(ss, "Nothing done");
    } else if (strcmp(cmd.verb, "QUIT") == 0) {
	sess_quit(ss);
	sess_end(ss);
    } else if (strcmp(cmd.verb, "CAPA") == 0) {
	sess_ok(ss, "Capability list follows");
	conn_puts(ss->c, POP3_CAPA_COMMON ".\r\n");
    } else if (strcmp(cmd.verb, "USER") == 0 || strcmp(cmd.verb, "PASS") == 0
	       || strcmp(cmd.verb, "AUTH") == 0 || strcmp(cmd.verb, "APOP") == 0
	       || strcmp(cmd.verb, "STLS") == 0) {
	sess_err(ss, NULL, "Already logged in");
    } else {
	sess_err(ss, NULL, "Unknown command");
    }
}

/* sess_serve - the commands that are here, in order, until one must
 * wait (a message being sent) or the session ends */
static void sess_serve(struct session *ss)
{
    const char *line;
    size_t len;
    enum conn_read_status r;

    while (!ss->ending && !ss->sending) {
	r = conn_read_line(ss->c, &line, &len);
	if (r == CONN_NONE)
	    break;
	server_watchdog_reset();		/* a command is progress */
	if (++ss->commands > var_pop3d_command_limit) {
	    sess_err(ss, NULL, "Too many commands, closing connection");
	    sess_end(ss);
	    break;
	}
	if (r == CONN_TOOLONG)
	    sess_err(ss, NULL, "Line too long");
	else
	    sess_command(ss, line, len);
    }
    if (ss->sending) {
	conn_pause_input(ss->c, true);
	sess_idle_arm(ss, false);
    } else if (!ss->ending) {
	sess_idle_arm(ss, true);
    }
}

/* sess_on_input - commands arrived */
static void sess_on_input(struct conn *c, void *ctx)
{
    (void) c;
    sess_serve(ctx);
}

/* sess_on_drain - the client took output: more of the message, and the
 * next commands once it is out */
static void sess_on_drain(struct conn *c, void *ctx)
{
    struct session *ss = ctx;

    if (!ss->sending)
	return;
    if (!sess_pump(ss) || ss->sending)
	return;
    conn_pause_input(c, false);
    sess_serve(ss);
}

/* sess_on_close - the end, however it came */
static void sess_on_close(struct conn *c, void *ctx)
{
    struct session *ss = ctx;
    bool quit = ss->quit;

    (void) c;
    if (ss->sending)
	(void) close(ss->send.fd);
    sess_idle_arm(ss, false);
    if (ss->started)
	msg_info("disconnect: user=<%s>, client=[%s], retr=%zu/%lld, del=%zu/%zu%s", ss->user,
	     ss->addr, ss->retrieved, (long long) ss->retrieved_octets, quit ? ss->ndeleted : 0,
	     ss->count, quit ? "" : ", no QUIT: nothing deleted");
    store_close(&ss->mb);
    mem_free(&ss->deleted);
    mem_free(&ss->user);
    mem_free(&ss->addr);
    mem_free(&ss);
    session_host_session_end();
}

static const struct conn_handlers sess_handlers = {
    .on_input = sess_on_input,
    .on_drain = sess_on_drain,
    .on_close = sess_on_close,
};

/* sess_refuse - a last "-ERR" to the client, before any session */
static void sess_refuse(struct session *ss, const char *code, const char *text)
{
    sess_err(ss, code, "%s", text);
    sess_end(ss);
}

/* pop3d_session_start - open and lock the mailbox, answer the login */
void pop3d_session_start(int fd, const struct session_info *info)
{
    struct session *ss = mem_zalloc(sizeof(*ss));
    const char *err;

    ss->user = mem_strdup(info->user);
    ss->addr = mem_strdup(info->client_address);
    ss->c = conn_new(fd, &sess_handlers, ss, (size_t) var_pop3d_line_limit);
    /* a client that reads nothing of a reply: the same deadline as one
     * that sends no command */
    conn_set_write_timeout(ss->c, (int) (var_pop3d_idle_timeout > INT_MAX / 1000 ? INT_MAX
					 : var_pop3d_idle_timeout * 1000));
    conn_pause_input(ss->c, true);
    if ((ss->mb = store_open(info->mail_root, NULL, STORE_READ_WRITE | STORE_CREATE, &err)) == NULL) {
	msg_warn("user=<%s>: %s", ss->user, err);
	sess_refuse(ss, POP3_CODE_SYS_TEMP, "Cannot open the mailbox");
	return;
    }
    if (store_session_lock(ss->mb, "pop3", &err) < 0) {
	if (errno == EWOULDBLOCK) {
	    msg_info("user=<%s>, client=[%s]: mailbox in use by another POP3 session",
		     ss->user, ss->addr);
	    sess_refuse(ss, POP3_CODE_IN_USE, "Mailbox is in use by another POP3 session");
	} else {
	    msg_warn("user=<%s>: %s", ss->user, err);
	    sess_refuse(ss, POP3_CODE_SYS_TEMP, "Cannot lock the mailbox");
	}
	return;
    }
    ss->count = store_count(ss->mb);
    ss->deleted = mem_alloc_array(ss->count + 1, sizeof(bool));
    memset(ss->deleted, 0, (ss->count + 1) * sizeof(bool));
    for (size_t i = 0; i < ss->count; i++)
	ss->total += store_msg(ss->mb, i)->crlf_size;
    ss->started = true;
    if (info->tls && info->tls[0])
	msg_info("session: user=<%s>, client=[%s], %zu messages, tls=\"%s\"", ss->user, ss->addr,
		 ss->count, info->tls);
    else
	msg_info("session: user=<%s>, client=[%s], %zu messages", ss->user, ss->addr, ss->count);
    sess_ok(ss, "Logged in, %zu message%s (%lld octets)", ss->count, ss->count == 1 ? "" : "s",
	    (long long) ss->total);
    if (info->input_len > 0)
	conn_unread(ss->c, info->input, info->input_len);
    conn_pause_input(ss->c, false);
    sess_serve(ss);
}

/* pop3d_session_retire - a reload: every session finishes as the client
 * wants (QUIT or its deadline); the worker exits after the last */
void pop3d_session_retire(void)
{
}
