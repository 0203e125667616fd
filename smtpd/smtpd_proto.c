/* smtpd_proto.c - one SMTP session: greeting, the command loop, when
 * replies are flushed, the session's log lines (replies themselves are
 * smtpd_reply.c's).
 *
 * Pipelining (RFC 2920): replies are written into the stream's buffer
 * and flushed only when the client has nothing more buffered for us, or
 * after a command that ends a group (EHLO, DATA, QUIT, NOOP, ...), so a
 * pipelining client gets its replies in one write and a lock-step client
 * at once.
 *
 * Limits: a command line is at most 512 octets (RFC 5321), MAIL and RCPT
 * at most SMTPD_CMD_LINE_EXT because of their parameters; longer lines
 * are read to their end and answered 500 5.5.2. Every read of a line and
 * every write has the deadline smtpd_timeout (421 4.4.2 when it passes).
 * Each 4xx/5xx reply is an error: after smtpd_soft_error_limit errors
 * each further error reply waits smtpd_error_sleep_time; at
 * smtpd_hard_error_limit the session ends with 421 4.7.0. A queued
 * message clears the count.
 *
 * TLS: with smtpd_tls_security_level = encrypt every command without
 * SMTPD_CMD_PRE_TLS gets 530 5.7.0 until STARTTLS succeeded; in wrapper
 * mode the handshake comes before the greeting (smtpd_tls.c).
 *
 * Client limits (smtpd_limits.c): the connection is counted before
 * anything else is done for the client; over the limit it gets 421 and
 * the session ends. Every session, however it ends, releases its count.
 *
 * Clients passed by the port-25 front (master.cf type "pass",
 * server_pass_info): if the front already greeted the client, smtpd
 * sends no second greeting; the bytes the front read (the first command
 * and whatever was pipelined after it) are in the stream's buffer and
 * are served exactly as if read from the socket, pipelining rules
 * included. The client is whoever getpeername says (the passed socket
 * is the client's own), in the log and the Received: header alike.
 *
 * Bare LF: a command line that ends in a bare <LF> is taken as a line
 * when smtpd_forbid_bare_newline = normalize; with reject the client
 * gets 550 5.5.2 and is disconnected (see docs/smtpd.md). */

#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "server.h"

/* smtpd */
#include "smtpd.h"

/* append_long - append a decimal number (bounded by the caller) */
static void append_long(struct str *s, long v)
{
    char buf[FMT_LONG_SIZE];

    str_append_or_panic(s, buf, fmt_long(buf, v));
}

/* log_stats - "disconnect from name[addr] ehlo=1 mail=1 rcpt=1/2 ..."
 * (bounded: name[addr] and one short item per command table row) */
static void log_stats(struct smtpd_state *st, const char *what)
{
    struct str *text = str_new(2048);
    size_t count;
    const struct smtpd_cmd *tab = smtpd_cmd_table(&count);

    str_appends_or_panic(text, what);
    str_appends_or_panic(text, " from ");
    str_appends_or_panic(text, st->namaddr);
    for (size_t i = 0; i < count; i++) {
	if (st->cmd_total[i] == 0)
	    continue;
	str_appendc_or_panic(text, ' ');
	for (const char *p = tab[i].name; *p; p++)
	    str_appendc_or_panic(text, (char) (*p | 0x20));
	str_appendc_or_panic(text, '=');
	if (st->cmd_ok[i] != st->cmd_total[i]) {
	    append_long(text, st->cmd_ok[i]);
	    str_appendc_or_panic(text, '/');
	}
	append_long(text, st->cmd_total[i]);
    }
    if (st->unknown_total) {
	str_appends_or_panic(text, " unknown=0/");
	append_long(text, st->unknown_total);
    }
    str_appends_or_panic(text, " commands=");
    if (st->commands_ok != st->commands_total) {
	append_long(text, st->commands_ok);
	str_appendc_or_panic(text, '/');
    }
    append_long(text, st->commands_total);
    msg_info("%s", str_cstr(text));
    str_free(&text);
}

/* pregreet_check - a client that talks before the greeting is not a
 * real SMTP client (or is pipelining illegally): log it */
static void pregreet_check(struct smtpd_state *st)
{
    struct pollfd p = {.fd = stream_fd(st->client), .events = POLLIN};
    char buf[64];
    ssize_t n;

    if (server_stdin_mode() || poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
	return;
    n = recv(p.fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
	struct str *shown = str_new(128);

	smtpd_printable(shown, buf, (size_t) n, sizeof(buf), true);
	msg_info("improper command pipelining before greeting from %s: %s", st->namaddr,
		 str_cstr(shown));
	str_free(&shown);
    }
}

/* set_timeout - smtpd_timeout for the next read or write, read at each
 * wait: a process told of stress mode (server_stress) waits less */
static void set_timeout(struct smtpd_state *st)
{
    stream_set_timeout(st->client, (int) (var_smtpd_timeout > 86400 ? 86400 : var_smtpd_timeout) * 1000);
}

/* session_end - release the state; every session ends here, so the
 * client-limits connect is always released */
static void session_end(struct smtpd_state *st)
{
    smtpd_limits_disconnect(st);
    smtpd_reset(st);
    smtpd_message_fini(st);
    smtpd_auth_reset(st);
    smtpd_tls_end(st);
    mem_free(&st->helo);
    mem_free(&st->rcpts);
    mem_free(&st->cmd_total);
    mem_free(&st->cmd_ok);
}

/* command_line_bare_lf - the line ends in LF without CR */
static bool command_line_bare_lf(const struct str *line)
{
    size_t n = str_len(line);

    return n > 0 && line->data[n - 1] == '\n' && (n < 2 || line->data[n - 2] != '\r');
}

/* smtpd_session - serve one client */
void smtpd_session(struct stream *client)
{
    struct smtpd_state state, *st = &state;
    const struct server_pass_info *pass;
    struct str *line = str_new(SMTPD_CMD_LINE_EXT);
    size_t count;
    const struct smtpd_cmd *tab = smtpd_cmd_table(&count);

    memset(st, 0, sizeof(*st));
    st->client = client;
    st->cmd_total = mem_zalloc(mem_size_mul(count, sizeof(long)));
    st->cmd_ok = mem_zalloc(mem_size_mul(count, sizeof(long)));
    st->where = "CONNECT";
    set_timeout(st);
    /* stress mode signalled: a wait in progress is cut to the stress value */
    server_stress_watch(client, &var_smtpd_timeout);
    smtpd_peer_addr(st);
    /* the client limits come before anything else is done for the
     * client: no name lookup, no handshake, no log line but the refusal */
    if (!smtpd_limits_connect(st)) {
	session_end(st);
	str_free(&line);
	return;
    }
    smtpd_peer_name(st);
    smtpd_check_client(st);
    pass = server_pass_info();
    if (pass != NULL && pass->client_address != NULL
	&& strcmp(pass->client_address, st->addr) != 0 && st->peer_inet)
	msg_warn("passed client %s: the front named it %s", st->namaddr, pass->client_address);
    msg_info("connect from %s", st->namaddr);
    if (pass != NULL && pass->greeted && var_smtpd_tls_wrappermode) {
	/* the front spoke plaintext to a client that wanted TLS: a
	 * master.cf mistake, not the client's */
	msg_warn("%s: passed after a plaintext greeting to a wrapper-mode service: closing",
		 st->namaddr);
	log_stats(st, "disconnect");
	session_end(st);
	str_free(&line);
	return;
    }
    if (var_smtpd_tls_wrappermode) {
	if (!smtpd_tls_wrapper(st)) {
	    log_stats(st, "disconnect");
	    session_end(st);
	    str_free(&line);
	    return;
	}
    } else if (pass == NULL || !pass->greeted) {
	pregreet_check(st);
    }
    /* a client the front greeted has its 220 and has already sent its
     * first command (in the stream's buffer, read as from the socket) */
    if (pass == NULL || !pass->greeted) {
	smtpd_reply(st, 220, NULL, "%s", var_smtpd_banner);
	smtpd_flush(st);
    }

    while (!st->hangup) {
	enum stream_status status;
	const struct smtpd_cmd *cmd;
	const char *args;
	size_t verb_len, args_len, idx;
	long errors_before;

	if (st->error_count >= var_smtpd_hard_error_limit) {
	    smtpd_reply_id(st, SR_TOO_MANY_ERRORS);
	    msg_info("too many errors after %s from %s", st->where, st->namaddr);
	    break;
	}
	server_watchdog_reset();
	if (stream_buffered(client) == 0 && !smtpd_flush(st))
	    break;
	set_timeout(st);		/* stress mode may have shortened it */
	status = stream_getline(client, line, SMTPD_CMD_LINE_EXT);
	if (status == STREAM_TIMEOUT) {
	    smtpd_reply_id(st, SR_TIMEOUT);
	    msg_info("timeout after %s from %s", st->where, st->namaddr);
	    break;
	}
	if (status == STREAM_EOF || status == STREAM_ERROR) {
	    msg_info("lost connection after %s from %s", st->where, st->namaddr);
	    break;
	}
	st->commands_total++;
	if (status == STREAM_TOOLONG) {
	    if (str_len(line) >= 5 && strncasecmp(str_cstr(line), "BDAT ", 5) == 0) {
		smtpd_bdat_unfollowable(st);	/* its chunk would run as commands */
		break;
	    }
	    status = stream_skip_line(client);
	    smtpd_reply_id(st, SR_LINE_TOO_LONG);
	    st->where = "UNKNOWN";
	    st->unknown_total++;
	    if (status != STREAM_OK)
		st->hangup = true;
	    continue;
	}
	if (command_line_bare_lf(line) && st->reject_bare) {
	    struct smtpd_reply_buf r;

	    smtpd_reply_id_buf(SR_BARE_LF, &r);
	    smtpd_reply_buf_send(st, &r);
	    msg_info("disconnect: bare <LF> received from %s after %s", st->namaddr, st->where);
	    st->hangup = true;
	    break;
	}
	str_chomp(line);
	if (msg_verbose) {
	    struct str *shown = str_new(SMTPD_CMD_LINE_EXT + 8);

	    smtpd_printable(shown, str_cstr(line), str_len(line), SMTPD_CMD_LINE_EXT, true);
	    msg_info("< %s: %s", st->namaddr, str_cstr(shown));
	    str_free(&shown);
	}
	if (str_has_nul(line) || !smtpd_cmd_split(str_cstr(line), str_len(line), &verb_len,
						   &args, &args_len)) {
	    smtpd_reply_id(st, SR_BAD_SYNTAX);
	    st->unknown_total++;
	    st->where = "UNKNOWN";
	    continue;
	}
	if ((cmd = smtpd_cmd_find(str_cstr(line), verb_len)) == NULL) {
	    smtpd_reply_id(st, SR_UNKNOWN_CMD);
	    st->unknown_total++;
	    st->where = "UNKNOWN";
	    continue;
	}
	idx = (size_t) (cmd - tab);
	st->cmd_total[idx]++;
	st->where = cmd->name;
	if (!(cmd->flags & SMTPD_CMD_LONG) && str_len(line) + 2 > SMTPD_CMD_LINE_RFC) {
	    if (cmd->action == smtpd_cmd_bdat)
		smtpd_bdat_unfollowable(st);
	    else
		smtpd_reply_id(st, SR_LINE_TOO_LONG);
	    continue;
	}
	if (cmd->flags & SMTPD_CMD_FORBIDDEN) {
	    struct str *shown = str_new(SMTPD_ARG_SHOW + 8);

	    smtpd_printable(shown, str_cstr(line), str_len(line), SMTPD_ARG_SHOW, true);
	    msg_warn("non-SMTP command from %s: %s", st->namaddr, str_cstr(shown));
	    str_free(&shown);
	    smtpd_reply_id(st, SR_NON_SMTP);
	    st->hangup = true;
	    break;
	}
	if (cmd->flags & SMTPD_CMD_UNIMPL) {
	    smtpd_reply_id(st, SR_NOT_IMPLEMENTED);
	    continue;
	}
	if (!(cmd->flags & SMTPD_CMD_PRE_TLS) && smtpd_tls_required(st)) {
	    smtpd_reply(st, 530, "5.7.0", "%s", "Must issue a STARTTLS command first");
	    continue;
	}
	if ((cmd->flags & SMTPD_CMD_NEED_HELO) && var_smtpd_helo_required && st->helo == NULL) {
	    smtpd_reply_id(st, SR_NEED_HELO);
	    continue;
	}
	errors_before = st->error_count;
	cmd->action(st, args, args_len);
	if (st->error_count == errors_before) {
	    st->cmd_ok[idx]++;
	    st->commands_ok++;
	}
	if ((cmd->flags & SMTPD_CMD_GROUP_END) && !st->hangup) {
	    if (stream_buffered(client) > 0 && cmd->action != smtpd_cmd_data
		&& !server_stdin_mode())
		msg_info("improper command pipelining after %s from %s", cmd->name, st->namaddr);
	    if (!smtpd_flush(st))
		break;
	}
    }
    smtpd_flush(st);
    log_stats(st, "disconnect");
    session_end(st);
    str_free(&line);
}
