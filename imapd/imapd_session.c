/* imapd_session.c - one IMAP session after login: reading commands and
 * literals from the client (conn.h, imap_parse.h), the command table and
 * dispatch, the output helpers, and the commands that need no mailbox
 * (CAPABILITY, NOOP, LOGOUT, ID, ENABLE, CHECK) and IDLE. */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "conn.h"
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "imap_parse.h"
#include "session_host.h"

/* imapd */
#include "imapd.h"

#define APPEND_FD_MAX	4	/* streamed literals in one command */
#define SKIP_MAX	((uint64_t) 1 << 30)	/* refused non-sync literal bytes we read */

struct imap_session_priv {
    struct imap_session *next, *prev;	/* all sessions of the worker */
    bool in_literal;		/* literal bytes awaited */
    bool lit_stream;		/* ... to lit_fd (else to the parser) */
    int lit_fd;
    uint64_t lit_left;		/* bytes of the literal still to come */
    uint64_t skip_left;		/* bytes to discard (refused literal) */
    bool discard_line;		/* then the rest of that command's line */
    bool skip_then_bad;		/* after skipping: reply BAD */
    char skip_tag[64];
    int fds[APPEND_FD_MAX];	/* streamed literal files of the command */
    size_t nfds;
    bool write_failed;		/* a literal file could not be written */
    void (*on_drain)(struct imap_session *s);
    bool suspended;
    event_timer_id resume_timer;
    bool closed;
    bool retire_pending;
    event_timer_id poll_timer;	/* IDLE without inotify */
    event_timer_id autologout;	/* imapd_idle_timeout: BYE */
    long long last_input;	/* ms, monotonic */
};

static struct imap_session *sessions;	/* every session of this worker */
static bool retiring;

static void process_input(struct imap_session *s);
static void bye(struct imap_session *s, const char *text);

/* resume - a timer: serve input buffered while a command was suspended */
static void resume(void *ctx)
{
    struct imap_session *s = ctx;

    s->priv->resume_timer = 0;		/* (only here: on_close cancels it) */
    process_input(s);
}

/* now_ms - the monotonic clock */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* autologout - a client silent for imapd_idle_timeout (in IDLE too:
 * RFC 2177's 30-minute rule) gets BYE; one busy sending is left to
 * conn's write deadline */
static void autologout(void *ctx)
{
    struct imap_session *s = ctx;
    struct imap_session_priv *pv = s->priv;
    long long limit = var_imapd_idle_timeout * 1000LL;
    long long idle = now_ms() - pv->last_input;

    pv->autologout = 0;
    if (pv->closed)
	return;
    if (idle < limit || (s->busy && !s->idling)) {
	pv->autologout = event_timer_add((int) (idle < limit ? limit - idle : limit), autologout, s);
	return;
    }
    msg_info("autologout: user=%s client=%s", s->user, s->client_address);
    bye(s, "Autologout; idle for too long");
}

/* the command table, sorted by name (bsearch) */
static imap_cmd_fn cmd_capability, cmd_noop, cmd_logout, cmd_id, cmd_enable, cmd_uid;

const struct imap_command imap_commands[] = {
    {"APPEND", imap_cmd_append, IMAP_CMD_AUTH | IMAP_CMD_STREAM},
    {"CAPABILITY", cmd_capability, IMAP_CMD_ANY},
    {"CHECK", imap_cmd_check, IMAP_CMD_SELECTED},
    {"CLOSE", imap_cmd_close, IMAP_CMD_SELECTED},
    {"COPY", imap_cmd_copy, IMAP_CMD_SELECTED | IMAP_CMD_UID},
    {"CREATE", imap_cmd_create, IMAP_CMD_AUTH},
    {"DELETE", imap_cmd_delete, IMAP_CMD_AUTH},
    {"ENABLE", cmd_enable, IMAP_CMD_AUTH},
    {"EXAMINE", imap_cmd_examine, IMAP_CMD_AUTH},
    {"EXPUNGE", imap_cmd_expunge, IMAP_CMD_SELECTED | IMAP_CMD_UID},
    {"FETCH", imap_cmd_fetch, IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_SEQ_NO_EXPUNGE},
    {"ID", cmd_id, IMAP_CMD_ANY},
    {"IDLE", imap_cmd_idle, IMAP_CMD_AUTH},
    {"LIST", imap_cmd_list, IMAP_CMD_AUTH},
    {"LOGOUT", cmd_logout, IMAP_CMD_ANY},
    {"LSUB", imap_cmd_lsub, IMAP_CMD_AUTH},
    {"MOVE", imap_cmd_move, IMAP_CMD_SELECTED | IMAP_CMD_UID},
    {"NAMESPACE", imap_cmd_namespace, IMAP_CMD_AUTH},
    {"NOOP", cmd_noop, IMAP_CMD_ANY},
    {"RENAME", imap_cmd_rename, IMAP_CMD_AUTH},
    {"SEARCH", imap_cmd_search, IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_SEQ_NO_EXPUNGE},
    {"SELECT", imap_cmd_select, IMAP_CMD_AUTH},
    {"STATUS", imap_cmd_status, IMAP_CMD_AUTH},
    {"STORE", imap_cmd_store, IMAP_CMD_SELECTED | IMAP_CMD_UID | IMAP_CMD_SEQ_NO_EXPUNGE},
    {"SUBSCRIBE", imap_cmd_subscribe, IMAP_CMD_AUTH},
    {"UID", cmd_uid, IMAP_CMD_SELECTED},
    {"UNSELECT", imap_cmd_unselect, IMAP_CMD_SELECTED},
    {"UNSUBSCRIBE", imap_cmd_unsubscribe, IMAP_CMD_AUTH},
};
const size_t imap_command_count = sizeof(imap_commands) / sizeof(imap_commands[0]);

/* cmd_compare - bsearch on the name */
static int cmd_compare(const void *key, const void *elem)
{
    return strcmp(key, ((const struct imap_command *) elem)->name);
}

/* find_command - the entry of name (upper case), or NULL */
static const struct imap_command *find_command(const char *name)
{
    return bsearch(name, imap_commands, imap_command_count, sizeof(imap_commands[0]),
		   cmd_compare);
}

/* Output */

void imap_write(struct imap_session *s, const void *data, size_t len)
{
    if (!s->priv->closed)
	conn_write(s->conn, data, len);
}

/* imap_printf - printf-like raw output */
void imap_printf(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;

    if (s->priv->closed)
	return;
    va_start(ap, fmt);
    conn_vprintf(s->conn, fmt, ap);
    va_end(ap);
}

/* imap_untagged - an untagged reply line */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;

    if (s->priv->closed)
	return;
    conn_write(s->conn, "* ", 2);
    va_start(ap, fmt);
    conn_vprintf(s->conn, fmt, ap);
    va_end(ap);
    conn_write(s->conn, "\r\n", 2);
}

/* vtagged - "TAG STATUS text\r\n" */
static void vtagged(struct imap_session *s, const char *status, const char *fmt, va_list ap)
{
    if (s->priv->closed)
	return;
    conn_printf(s->conn, "%s %s ", s->tag ? s->tag : "*", status);
    conn_vprintf(s->conn, fmt, ap);
    conn_write(s->conn, "\r\n", 2);
}

/* imap_tagged - the tagged reply line of the current command */
void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vtagged(s, status, fmt, ap);
    va_end(ap);
}

/* write_str_value - one value through a str (any length) */
static void write_value(struct imap_session *s, const char *v, size_t len, int how)
{
    struct str *out;
    bool ok;

    if (how == 3 || imap_string_needs_literal(v, len)) {
	if (how == 0 && v == NULL) {
	    imap_write(s, "NIL", 3);
	    return;
	}
	imap_printf(s, "{%zu}\r\n", len);
	imap_write(s, v, len);
	return;
    }
    out = str_new(2 * len + 16);
    switch (how) {
    case 1:
	ok = imap_append_astring(out, v, len);
	break;
    default:
	ok = imap_append_string(out, v, len);
	break;
    }
    if (!ok)
	msg_panic("imapd: quoting %zu bytes", len);
    imap_write(s, str_cstr(out), str_len(out));
    str_free(&out);
}

/* imap_write_astring - one astring value */
void imap_write_astring(struct imap_session *s, const char *v, size_t len)
{
    write_value(s, v, len, 1);
}

/* imap_write_string - one string value */
void imap_write_string(struct imap_session *s, const char *v, size_t len)
{
    write_value(s, v, len, 2);
}

/* imap_write_nstring - one nstring value (NIL for NULL) */
void imap_write_nstring(struct imap_session *s, const char *v, size_t len)
{
    if (v == NULL)
	imap_write(s, "NIL", 3);
    else
	write_value(s, v, len, 2);
}

/* imap_write_literal - one value as a literal */
void imap_write_literal(struct imap_session *s, const char *v, size_t len)
{
    write_value(s, v, len, 3);
}

/* Commands end */

/* end_command - forget the command's state and read the next */
static void end_command(struct imap_session *s)
{
    struct imap_session_priv *pv = s->priv;
    size_t i;

    if (s->cmd_ctx_free && s->cmd_ctx)
	s->cmd_ctx_free(s, s->cmd_ctx);
    s->cmd_ctx = NULL;
    s->cmd_ctx_free = NULL;
    for (i = 0; i < pv->nfds; i++)
	close(pv->fds[i]);
    pv->nfds = 0;
    pv->write_failed = false;
    pv->on_drain = NULL;
    s->busy = false;
    s->cmd = NULL;
    s->tag = NULL;
    imap_parser_reset(s->parser);
    if (pv->closed)
	return;
    if (pv->suspended) {
	/* finished from an event: go on with buffered input from the loop */
	pv->suspended = false;
	conn_pause_input(s->conn, false);
	if (pv->resume_timer == 0)
	    pv->resume_timer = event_timer_add(0, resume, s);
    }
}

/* imap_cmd_done - the tagged reply, after the updates the command allows; the end of the command */
void imap_cmd_done(struct imap_session *s, const char *status, const char *fmt, ...)
{
    va_list ap;
    bool ok = strcmp(status, "OK") == 0;

    if (s->sel && s->state == IMAP_STATE_SELECTED && s->cmd != NULL) {
	bool allow = !(s->cmd->flags & IMAP_CMD_SEQ_NO_EXPUNGE) || s->idling
	    || (s->uid_cmd);
	imap_select_sync(s, allow);
    }
    va_start(ap, fmt);
    vtagged(s, status, fmt, ap);
    va_end(ap);
    if (strcmp(status, "BAD") == 0)
	s->bad_commands++;
    else if (ok || strcmp(status, "NO") == 0)
	s->bad_commands = 0;
    end_command(s);
    if (s->bad_commands >= (unsigned) var_imapd_bad_command_limit)
	bye(s, "Too many invalid commands");
}

/* imap_cmd_ok - "TAG OK NAME completed" */
void imap_cmd_ok(struct imap_session *s)
{
    imap_cmd_done(s, "OK", "%s completed", s->cmd ? s->cmd->name : "Command");
}

/* imap_cmd_bad - a BAD reply ending the command */
void imap_cmd_bad(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    char buf[512];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    imap_cmd_done(s, "BAD", "%s", buf);
}

/* imap_cmd_no - a NO reply ending the command */
void imap_cmd_no(struct imap_session *s, const char *fmt, ...)
{
    va_list ap;
    char buf[512];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    imap_cmd_done(s, "NO", "%s", buf);
}

/* imap_session_suspend - the command goes on from an event */
void imap_session_suspend(struct imap_session *s, void (*on_drain)(struct imap_session *s))
{
    s->priv->suspended = true;
    s->priv->on_drain = on_drain;
    if (!s->priv->closed)
	conn_pause_input(s->conn, true);
}

/* imap_session_literal_fd - the file of a streamed literal argument */
int imap_session_literal_fd(struct imap_session *s, const struct imap_arg *a)
{
    size_t i;

    if (a == NULL || a->type != IMAP_ARG_LITERAL_STREAM)
	return -1;
    for (i = 0; i < s->priv->nfds; i++)
	if ((uintptr_t) s->priv->fds[i] == a->cookie) {
	    if (lseek(s->priv->fds[i], 0, SEEK_SET) < 0)
		return -1;
	    return s->priv->fds[i];
	}
    return -1;
}

/* imap_session_bye - BYE, then close */
void imap_session_bye(struct imap_session *s, const char *text)
{
    bye(s, text);
}

/* imap_session_closed - the connection is going away */
bool imap_session_closed(const struct imap_session *s)
{
    return s->priv->closed;
}

/* Simple commands */

static void cmd_capability(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			   bool uid)
{
    (void) args;
    (void) uid;
    if (nargs)
	return imap_cmd_bad(s, "CAPABILITY takes no arguments");
    imap_untagged(s, "CAPABILITY " IMAPD_CAPABILITIES);
    imap_cmd_ok(s);
}

/* cmd_noop - NOOP (the updates come with its reply) */
static void cmd_noop(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    (void) args;
    (void) uid;
    if (nargs)
	return imap_cmd_bad(s, "%s takes no arguments", s->cmd->name);
    imap_cmd_ok(s);
}

/* imap_cmd_check - CHECK: write the cache out */
void imap_cmd_check(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		    bool uid)
{
    const char *err;

    (void) args;
    (void) uid;
    if (nargs)
	return imap_cmd_bad(s, "CHECK takes no arguments");
    if (s->sel && store_cache_flush(s->sel->mb, &err) < 0)
	msg_warn("%s: cache: %s", s->user, err);
    imap_cmd_ok(s);
}

/* cmd_logout - LOGOUT */
static void cmd_logout(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		       bool uid)
{
    (void) args;
    (void) uid;
    if (nargs)
	return imap_cmd_bad(s, "LOGOUT takes no arguments");
    imap_untagged(s, "BYE Logging out");
    if (s->sel)
	imap_select_close(s);
    s->state = IMAP_STATE_LOGOUT;
    imap_tagged(s, "OK", "LOGOUT completed");
    end_command(s);
    if (!s->priv->closed)
	conn_close_after_flush(s->conn);
}

/* cmd_id - RFC 2971: log the client's fields, answer ours */
static void cmd_id(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		   bool uid)
{
    const struct imap_arg *l;
    size_t n, i;

    (void) uid;
    if (nargs != 1 || (args[0].type != IMAP_ARG_NIL && !imap_arg_list(&args[0], &l, &n)))
	return imap_cmd_bad(s, "ID takes NIL or a list of field-value pairs");
    if (args[0].type == IMAP_ARG_LIST) {
	if (n % 2 != 0 || n > 60)
	    return imap_cmd_bad(s, "ID: field-value pairs expected (at most 30)");
	for (i = 0; i < n; i++) {
	    const char *v;

	    if (!imap_arg_nstring(&l[i], &v, NULL) || (i % 2 == 0 && v == NULL))
		return imap_cmd_bad(s, "ID: fields and values are strings");
	}
    }
    imap_untagged(s, "ID (\"name\" \"posthorn\")");
    imap_cmd_ok(s);
}

/* cmd_enable - RFC 5161: CONDSTORE is the extension we know */
static void cmd_enable(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		       bool uid)
{
    size_t i;
    bool condstore = false;

    (void) uid;
    if (nargs == 0)
	return imap_cmd_bad(s, "ENABLE needs capability names");
    for (i = 0; i < nargs; i++) {
	const char *a;

	if (!imap_arg_atom(&args[i], &a))
	    return imap_cmd_bad(s, "ENABLE takes capability names (atoms)");
	if (strcasecmp(a, "CONDSTORE") == 0 && !s->condstore)
	    condstore = true;
    }
    if (condstore) {
	s->condstore = true;
	imap_untagged(s, "ENABLED CONDSTORE");
    } else {
	imap_untagged(s, "ENABLED");
    }
    imap_cmd_ok(s);
}

/* cmd_uid - UID COPY/FETCH/SEARCH/STORE/EXPUNGE/MOVE */
static void cmd_uid(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		    bool uid)
{
    const struct imap_command *c;
    const char *name;
    char up[32];
    size_t i;

    (void) uid;
    if (nargs < 1 || !imap_arg_atom(&args[0], &name) || strlen(name) >= sizeof(up))
	return imap_cmd_bad(s, "UID needs a command name");
    for (i = 0; name[i]; i++)
	up[i] = (char) ((name[i] >= 'a' && name[i] <= 'z') ? name[i] - 'a' + 'A' : name[i]);
    up[i] = 0;
    c = find_command(up);
    if (c == NULL || !(c->flags & IMAP_CMD_UID))
	return imap_cmd_bad(s, "Unknown UID command %s", up);
    s->cmd = c;
    s->uid_cmd = true;
    c->fn(s, args + 1, nargs - 1, true);
}

/* IDLE (RFC 2177) */

/* imap_session_mailbox_changed - the watch fired */
void imap_session_mailbox_changed(struct imap_session *s)
{
    if (s->idling && s->sel && !s->priv->closed)
	imap_select_sync(s, true);
}

/* idle_poll - without inotify: look every second */
static void idle_poll(void *ctx)
{
    struct imap_session *s = ctx;

    s->priv->poll_timer = 0;
    if (!s->idling || s->sel == NULL)
	return;
    imap_select_sync(s, true);
    if (s->sel && !s->priv->closed)
	s->priv->poll_timer = event_timer_add(1000, idle_poll, s);
}

/* imap_cmd_idle - IDLE (RFC 2177): updates at once until DONE */
void imap_cmd_idle(struct imap_session *s, const struct imap_arg *args, size_t nargs, bool uid)
{
    (void) args;
    (void) uid;
    if (nargs)
	return imap_cmd_bad(s, "IDLE takes no arguments");
    if (retiring)
	return imap_cmd_no(s, "Server shutting down");
    s->idling = true;
    if (s->sel)
	imap_select_sync(s, true);
    if (s->sel && s->sel->watch_fd < 0)
	s->priv->poll_timer = event_timer_add(1000, idle_poll, s);
    imap_printf(s, "+ idling\r\n");
    /* input stays on: the next line must be DONE */
}

/* idle_end - the client's line in IDLE */
static void idle_end(struct imap_session *s, const char *line)
{
    s->idling = false;
    if (s->priv->poll_timer) {
	event_timer_cancel(s->priv->poll_timer);
	s->priv->poll_timer = 0;
    }
    if (strcasecmp(line, "DONE") != 0)
	imap_cmd_bad(s, "Expected DONE to end IDLE");
    else
	imap_cmd_ok(s);
}

/* Input */

/* literal_file - an unnamed file for a streamed literal, on the mail
 * root's file system (store_append can then link or copy it) */
static int literal_file(struct imap_session *s)
{
    char path[4096];
    int fd;

    fmt_buf_cut(path, sizeof(path), "%s/tmp", s->mail_root);
    fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
	fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
	fmt_buf_cut(path, sizeof(path), "%s/tmp/imapd-append.XXXXXX", s->mail_root);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
	    unlink(path);
    }
    return fd;
}

/* bye - an unsolicited BYE, then close */
static void bye(struct imap_session *s, const char *text)
{
    if (s->priv->closed)
	return;
    imap_untagged(s, "BYE %s", text);
    conn_close_after_flush(s->conn);
    s->priv->closed = true;
}

/* parse_error - BAD for the parser's complaint; discards a refused
 * non-synchronising literal first */
static void parse_error(struct imap_session *s)
{
    struct imap_session_priv *pv = s->priv;
    uint64_t skip = imap_parser_skip(s->parser);
    const char *tag = imap_parser_tag(s->parser);

    fmt_buf_cut(pv->skip_tag, sizeof(pv->skip_tag), "%s", tag ? tag : "*");
    if (skip > 0) {
	if (skip > SKIP_MAX) {
	    imap_printf(s, "%s BAD %s\r\n", pv->skip_tag, imap_parser_error(s->parser));
	    bye(s, "Literal too large");
	    return;
	}
	pv->skip_left = skip;
	pv->skip_then_bad = true;
	return;		/* BAD after the bytes */
    }
    imap_printf(s, "%s BAD %s\r\n", pv->skip_tag, imap_parser_error(s->parser));
    imap_parser_reset(s->parser);
    if (++s->bad_commands >= (unsigned) var_imapd_bad_command_limit)
	bye(s, "Too many invalid commands");
}

/* dispatch - a complete command */
static void dispatch(struct imap_session *s)
{
    const struct imap_command *c;
    const struct imap_arg *args;
    size_t nargs;

    s->tag = imap_parser_tag(s->parser);
    args = imap_parser_args(s->parser, &nargs);
    s->busy = true;
    s->uid_cmd = false;
    s->cmd = NULL;
    if (++s->commands > (unsigned long) var_imapd_command_limit) {
	imap_tagged(s, "NO", "Too many commands");
	end_command(s);
	bye(s, "Too many commands in one session");
	return;
    }
    c = find_command(imap_parser_name(s->parser));
    if (c == NULL) {
	if (strcmp(imap_parser_name(s->parser), "LOGIN") == 0
	    || strcmp(imap_parser_name(s->parser), "AUTHENTICATE") == 0)
	    return imap_cmd_done(s, "BAD", "Already logged in");
	if (strcmp(imap_parser_name(s->parser), "STARTTLS") == 0)
	    return imap_cmd_done(s, "BAD", "STARTTLS only before login");
	return imap_cmd_done(s, "BAD", "Unknown command %s", imap_parser_name(s->parser));
    }
    if ((c->flags & IMAP_CMD_SELECTED) && s->state != IMAP_STATE_SELECTED)
	return imap_cmd_done(s, "BAD", "%s needs a selected mailbox", c->name);
    s->cmd = c;
    if (retiring && strcmp(c->name, "LOGOUT") != 0) {
	imap_tagged(s, "NO", "Server shutting down");
	end_command(s);
	bye(s, "Server shutting down");
	return;
    }
    c->fn(s, args, nargs, false);
}

/* want_stream - the pending literal goes to a file (APPEND's message) */
static bool want_stream(struct imap_session *s)
{
    const char *name = imap_parser_name(s->parser);
    size_t n;

    if (name == NULL || strcmp(name, "APPEND") != 0)
	return false;
    (void) imap_parser_args(s->parser, &n);
    return n >= 1;
}

/* on_literal - the parser announced a literal */
static void on_literal(struct imap_session *s)
{
    struct imap_session_priv *pv = s->priv;
    const struct imap_literal_info *li = imap_parser_literal(s->parser);

    if (want_stream(s)) {
	if (var_message_size_limit > 0 && li->size > (uint64_t) var_message_size_limit) {
	    uint64_t skip = imap_parser_literal_refuse(s->parser);
	    const char *tag = imap_parser_tag(s->parser);

	    fmt_buf_cut(pv->skip_tag, sizeof(pv->skip_tag), "%s", tag ? tag : "*");
	    if (skip == 0) {
		imap_printf(s, "%s NO [TOOBIG] Message too large\r\n", pv->skip_tag);
		imap_parser_reset(s->parser);
	    } else if (skip > SKIP_MAX) {
		imap_printf(s, "%s NO [TOOBIG] Message too large\r\n", pv->skip_tag);
		bye(s, "Literal too large");
	    } else {
		pv->skip_left = skip;
		pv->skip_then_bad = false;
		imap_printf(s, "%s NO [TOOBIG] Message too large\r\n", pv->skip_tag);
	    }
	    return;
	}
	if (pv->nfds >= APPEND_FD_MAX || (pv->lit_fd = literal_file(s)) < 0) {
	    uint64_t skip = imap_parser_literal_refuse(s->parser);
	    const char *tag = imap_parser_tag(s->parser);

	    msg_warn("%s: cannot make a file for an APPEND literal: %m", s->user);
	    fmt_buf_cut(pv->skip_tag, sizeof(pv->skip_tag), "%s", tag ? tag : "*");
	    imap_printf(s, "%s NO [SERVERBUG] Cannot store the message\r\n", pv->skip_tag);
	    if (skip == 0)
		imap_parser_reset(s->parser);
	    pv->skip_left = skip;
	    pv->skip_then_bad = false;
	    return;
	}
	pv->fds[pv->nfds++] = pv->lit_fd;
	pv->lit_stream = true;
    } else if (!li->mem_ok) {
	uint64_t skip = imap_parser_literal_refuse(s->parser);
	const char *tag = imap_parser_tag(s->parser);

	fmt_buf_cut(pv->skip_tag, sizeof(pv->skip_tag), "%s", tag ? tag : "*");
	if (skip == 0) {
	    imap_printf(s, "%s BAD Literal too large\r\n", pv->skip_tag);
	    imap_parser_reset(s->parser);
	    if (++s->bad_commands >= (unsigned) var_imapd_bad_command_limit)
		bye(s, "Too many invalid commands");
	} else if (skip > SKIP_MAX) {
	    imap_printf(s, "%s BAD Literal too large\r\n", pv->skip_tag);
	    bye(s, "Literal too large");
	} else {
	    pv->skip_left = skip;
	    pv->skip_then_bad = false;
	    imap_printf(s, "%s BAD Literal too large\r\n", pv->skip_tag);
	}
	return;
    } else {
	pv->lit_stream = false;
    }
    pv->in_literal = true;
    pv->lit_left = li->size;
    if (li->sync)
	imap_printf(s, "+ OK\r\n");
    if (li->size == 0) {
	pv->in_literal = false;
	if (pv->lit_stream)
	    imap_parser_literal_streamed(s->parser, (uintptr_t) pv->lit_fd);
	else
	    (void) imap_parser_feed_literal(s->parser, "", 0);
    }
}

/* literal_bytes - take what is buffered of the pending literal / skip */
static bool literal_bytes(struct imap_session *s)
{
    struct imap_session_priv *pv = s->priv;
    size_t avail = conn_input_avail(s->conn);
    const char *data = conn_input_peek(s->conn);
    size_t n;

    if (avail == 0)
	return false;
    if (pv->skip_left > 0) {
	n = pv->skip_left < avail ? (size_t) pv->skip_left : avail;
	conn_input_consume(s->conn, n);
	pv->skip_left -= n;
	if (pv->skip_left == 0) {
	    if (pv->skip_then_bad) {
		imap_printf(s, "%s BAD %s\r\n", pv->skip_tag, imap_parser_error(s->parser));
		if (++s->bad_commands >= (unsigned) var_imapd_bad_command_limit)
		    bye(s, "Too many invalid commands");
	    }
	    imap_parser_reset(s->parser);
	    pv->discard_line = true;
	}
	return true;
    }
    n = pv->lit_left < avail ? (size_t) pv->lit_left : avail;
    if (pv->lit_stream) {
	size_t off = 0;

	while (off < n && !pv->write_failed) {
	    ssize_t w = write(pv->lit_fd, data + off, n - off);

	    if (w < 0 && errno == EINTR)
		continue;
	    if (w <= 0) {
		msg_warn("%s: writing an APPEND literal: %m", s->user);
		pv->write_failed = true;
		break;
	    }
	    off += (size_t) w;
	}
    } else {
	(void) imap_parser_feed_literal(s->parser, data, n);
    }
    conn_input_consume(s->conn, n);
    pv->lit_left -= n;
    if (pv->lit_left == 0) {
	pv->in_literal = false;
	if (pv->lit_stream)
	    imap_parser_literal_streamed(s->parser, (uintptr_t) pv->lit_fd);
    }
    return true;
}

/* discard_rest - a line of a refused command: skip a literal it
 * announces ({n+}; a synchronising one is never sent: no "+") */
static void discard_rest(struct imap_session *s, const char *line, size_t len)
{
    uint64_t n = 0, mul = 1;
    size_t i;

    if (len < 4 || line[len - 1] != '}' || line[len - 2] != '+')
	return;
    for (i = len - 2; i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9'; i--) {
	if (mul > SKIP_MAX)
	    break;
	n += (uint64_t) (line[i - 1] - '0') * mul;
	mul *= 10;
    }
    if (i == 0 || i == len - 2 || line[i - 1] != '{')
	return;
    if (n > SKIP_MAX) {
	bye(s, "Literal too large");
	return;
    }
    s->priv->skip_left = n;
    s->priv->skip_then_bad = false;
    s->priv->discard_line = false;
}

/* process_input - serve buffered input until a command suspends or
 * nothing complete is left */
static void process_input(struct imap_session *s)
{
    struct imap_session_priv *pv = s->priv;

    while (!pv->closed && !pv->suspended) {
	const char *line;
	size_t len;
	enum conn_read_status r;
	enum imap_parse_result pr;

	if (pv->skip_left > 0 || pv->in_literal) {
	    if (!literal_bytes(s))
		return;
	    continue;
	}
	if (s->busy && !s->idling)
	    return;
	r = conn_read_line(s->conn, &line, &len);
	if (r == CONN_NONE)
	    return;
	if (pv->discard_line) {
	    /* the rest of a refused command; it may announce another
	     * non-synchronising literal, whose bytes go too */
	    pv->discard_line = false;
	    if (r == CONN_LINE)
		discard_rest(s, line, len);
	    continue;
	}
	if (s->idling) {
	    if (r == CONN_TOOLONG)
		idle_end(s, "");
	    else
		idle_end(s, line);
	    continue;
	}
	if (r == CONN_TOOLONG) {
	    const char *tag = imap_parser_tag(s->parser);

	    imap_printf(s, "%s BAD Command line too long\r\n", tag ? tag : "*");
	    imap_parser_reset(s->parser);
	    if (++s->bad_commands >= (unsigned) var_imapd_bad_command_limit)
		bye(s, "Too many invalid commands");
	    continue;
	}
	if (s->state == IMAP_STATE_LOGOUT)
	    return;
	pr = imap_parser_feed_line(s->parser, line, len);
	switch (pr) {
	case IMAP_PARSE_DONE:
	    dispatch(s);
	    break;
	case IMAP_PARSE_LITERAL:
	    on_literal(s);
	    break;
	case IMAP_PARSE_ERROR:
	    parse_error(s);
	    break;
	}
	if (retiring && !s->busy && !pv->closed && pv->skip_left == 0 && !pv->in_literal
	    && imap_parser_tag(s->parser) == NULL)
	    bye(s, "Server shutting down");
    }
}

/* conn callbacks */

static void on_input(struct conn *c, void *ctx)
{
    struct imap_session *s = ctx;

    (void) c;
    s->priv->last_input = now_ms();
    process_input(s);
}

/* on_drain - conn: output drained: a suspended command goes on */
static void on_drain(struct conn *c, void *ctx)
{
    struct imap_session *s = ctx;

    (void) c;
    if (s->priv->on_drain && !s->priv->closed)
	s->priv->on_drain(s);
}

/* on_close - conn: the session ends: free everything */
static void on_close(struct conn *c, void *ctx)
{
    struct imap_session *s = ctx;
    struct imap_session_priv *pv = s->priv;
    size_t i;

    (void) c;
    pv->closed = true;
    if (s->cmd_ctx_free && s->cmd_ctx)
	s->cmd_ctx_free(s, s->cmd_ctx);
    if (pv->resume_timer)
	event_timer_cancel(pv->resume_timer);
    if (pv->poll_timer)
	event_timer_cancel(pv->poll_timer);
    if (pv->autologout)
	event_timer_cancel(pv->autologout);
    for (i = 0; i < pv->nfds; i++)
	close(pv->fds[i]);
    if (s->sel)
	imap_select_close(s);
    if (pv->prev)
	pv->prev->priv->next = pv->next;
    else
	sessions = pv->next;
    if (pv->next)
	pv->next->priv->prev = pv->prev;
    imap_parser_free(&s->parser);
    free(s->user);
    free(s->mail_root);
    free(s->client_address);
    free(pv);
    free(s);
    session_host_session_end();
}

static const struct conn_handlers handlers = {
    .on_input = on_input,
    .on_drain = on_drain,
    .on_close = on_close,
};

/* imapd_session_start - a session handed to this worker */
void imapd_session_start(int fd, const struct session_info *info)
{
    struct imap_session *s = mem_zalloc(sizeof(*s));
    struct imap_session_priv *pv = mem_zalloc(sizeof(*pv));
    struct imap_parse_limits lim = {
	.command_max = (size_t) var_imapd_line_limit,
	.literal_mem_max = (uint64_t) var_imapd_literal_limit,
	.literal_max = var_message_size_limit > 0
	    ? (uint64_t) var_message_size_limit + 1024 * 1024 : ((uint64_t) 1 << 40),
    };

    s->priv = pv;
    s->state = IMAP_STATE_AUTH;
    s->user = mem_strdup(info->user);
    s->mail_root = mem_strdup(info->mail_root);
    s->uid = info->uid;
    s->gid = info->gid;
    s->quota_bytes = info->quota_bytes;
    s->client_address = mem_strdup(info->client_address ? info->client_address : "");
    s->parser = imap_parser_new(&lim);
    pv->next = sessions;
    if (sessions)
	sessions->priv->prev = s;
    sessions = s;
    s->conn = conn_new(fd, &handlers, s, (size_t) var_imapd_line_limit + 2);
    /* our own timer says BYE first; conn's deadline is the backstop */
    conn_set_idle_timeout(s->conn, (int) (var_imapd_idle_timeout * 1000 + 30000));
    pv->last_input = now_ms();
    pv->autologout = event_timer_add((int) (var_imapd_idle_timeout * 1000), autologout, s);
    if (info->tls && info->tls[0])
	msg_info("login: user=%s client=%s tls=\"%s\"", s->user, s->client_address, info->tls);
    else
	msg_info("login: user=%s client=%s", s->user, s->client_address);
    imap_mailbox_session_start(s);
    if (info->login_tag && info->login_tag[0])
	imap_printf(s, "%s OK [CAPABILITY " IMAPD_CAPABILITIES "] Logged in\r\n", info->login_tag);
    if (info->input_len)
	conn_unread(s->conn, info->input, info->input_len);
    if (retiring) {
	bye(s, "Server shutting down");
	return;
    }
    if (info->input_len)
	pv->resume_timer = event_timer_add(0, resume, s);
}

/* imapd_worker_retire - end every session at its next command boundary */
void imapd_worker_retire(void)
{
    struct imap_session *s;

    retiring = true;
    for (s = sessions; s; s = s->priv->next) {
	if (s->idling) {
	    s->idling = false;
	    bye(s, "Server shutting down");
	} else if (!s->busy && !s->priv->in_literal && s->priv->skip_left == 0
		   && imap_parser_tag(s->parser) == NULL) {
	    bye(s, "Server shutting down");
	}
    }
}
