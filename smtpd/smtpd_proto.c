/* smtpd_proto.c - one SMTP session: greeting, the command loop, replies.
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
 * Bare LF: a command line that ends in a bare <LF> is taken as a line
 * when smtpd_forbid_bare_newline = normalize; with reject the client
 * gets 550 5.5.2 and is disconnected (see docs/smtpd.md). */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "config.h"
#include "server.h"
#include "xtext.h"

/* smtpd */
#include "smtpd.h"

/* smtpd_printable - client text made safe for a reply or a log line:
 * control bytes and DEL become '?'; bytes of 0x80 and above too, except
 * (utf8: for log lines) a complete, valid UTF-8 sequence, which is kept.
 * Replies pass utf8 = false and so never echo a non-ASCII byte. */
void smtpd_printable(struct str *out, const char *text, size_t len, size_t max, bool utf8)
{
    size_t n = len < max ? len : max;
    size_t i = 0;

    /* copy runs of printable bytes in one append each */
    while (i < n) {
	size_t j = i, seq = 0;

	while (j < n && (unsigned char) text[j] >= 0x20 && (unsigned char) text[j] < 0x7f)
	    j++;
	if (j > i && !str_append(out, text + i, j - i)) {
	    /* out is nearly full: as many bytes as still fit */
	    while (i < j && str_appendc(out, text[i]))
		i++;
	    break;
	}
	if (j >= n)
	    break;
	if (utf8 && (unsigned char) text[j] >= 0x80)
	    seq = utf8_seqlen((const unsigned char *) text + j, n - j);
	if (seq > 1) {
	    if (!str_append(out, text + j, seq))
		break;
	    i = j + seq;
	    continue;
	}
	if (!str_appendc(out, '?'))
	    break;
	i = j + 1;
    }
    if (len > max)
	str_appends(out, "...");
}

/* smtpd_put_long - v in decimal at buf (at least SMTPD_LONG_TEXT bytes,
 * not terminated); returns the length */
size_t smtpd_put_long(char *buf, long v)
{
    char tmp[SMTPD_LONG_TEXT];
    unsigned long u = v < 0 ? 0UL - (unsigned long) v : (unsigned long) v;
    size_t n = 0, len = 0;

    do {
	tmp[n++] = (char) ('0' + u % 10);
	u /= 10;
    } while (u);
    if (v < 0)
	buf[len++] = '-';
    while (n)
	buf[len++] = tmp[--n];
    return len;
}

/* smtpd_join - the strings of the NULL-ended list, one after the other,
 * into buf; truncated as fmt_buf would (then false) */
bool smtpd_join(char *buf, size_t size, ...)
{
    va_list ap;
    const char *text;
    size_t len = 0;
    bool ok = true;

    if (size == 0)
	msg_panic("smtpd_join: zero-size buffer");
    va_start(ap, size);
    while ((text = va_arg(ap, const char *)) != NULL) {
	size_t n = strlen(text);

	if (n > size - 1 - len) {
	    n = size - 1 - len;
	    ok = false;
	}
	memcpy(buf + len, text, n);
	len += n;
    }
    va_end(ap);
    buf[len] = 0;
    return ok;
}

/* append_long - str_append of a decimal number */
static void append_long(struct str *s, long v)
{
    char buf[SMTPD_LONG_TEXT];

    str_append(s, buf, smtpd_put_long(buf, v));
}

/* smtpd_flush - write out pending replies */
bool smtpd_flush(struct smtpd_state *st)
{
    if (stream_flush(st->client) < 0) {
	st->hangup = true;
	return false;
    }
    return true;
}

/* sleep_whole - sleep seconds, resuming after signal interruptions */
static void sleep_whole(long seconds)
{
    struct timespec left = {.tv_sec = seconds, .tv_nsec = 0};

    while (nanosleep(&left, &left) < 0 && errno == EINTR)
	 /* void */ ;
}

/* reply_line - the reply line buffer, emptied; reused by every reply */
static struct str *reply_line(void)
{
    static struct str *line;

    if (line == NULL)
	line = str_new(1024);
    else
	str_reset(line);
    return line;
}

/* reply_write - one reply line (or the last line of several) */
static void reply_write(struct smtpd_state *st, int code, char sep, const char *enhanced,
			const char *text)
{
    struct str *line = reply_line();

    if (code >= 0 && code <= 999) {
	char head[4] = {(char) ('0' + code / 100), (char) ('0' + code / 10 % 10),
	(char) ('0' + code % 10), sep};

	str_append(line, head, sizeof(head));
    } else {
	str_printf(line, "%03d%c", code, sep);
    }
    if (enhanced && *enhanced) {
	str_appends(line, enhanced);
	str_appendc(line, ' ');
    }
    /* replies are built from our texts and printable client text; make
     * sure no CR or LF can split one */
    smtpd_printable(line, text, strlen(text), 900, false);
    if (msg_verbose)
	msg_info("> %s: %s", st->namaddr, str_cstr(line));
    str_append(line, "\r\n", 2);
    if (stream_write(st->client, str_cstr(line), str_len(line)) < 0)
	st->hangup = true;
}

/* error_delay - count an error reply; slow down a client that makes many */
static void error_delay(struct smtpd_state *st, int code)
{
    if (code < 400 || code == 421)
	return;
    if (st->error_count >= var_smtpd_soft_error_limit && var_smtpd_error_sleep_time > 0) {
	smtpd_flush(st);
	sleep_whole(var_smtpd_error_sleep_time);
    }
    st->error_count++;
}

/* smtpd_reply_text - one reply with a ready text */
void smtpd_reply_text(struct smtpd_state *st, int code, const char *enhanced, const char *text)
{
    error_delay(st, code);
    reply_write(st, code, ' ', enhanced, text);
}

/* smtpd_reply - one reply */
void smtpd_reply(struct smtpd_state *st, int code, const char *enhanced, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    if (fmt[0] == '%' && fmt[1] == 's' && fmt[2] == 0) {
	/* a ready text: reply_write shows at most 900 bytes of it, fewer
	 * than text[] would have held */
	const char *arg = va_arg(ap, const char *);

	va_end(ap);
	smtpd_reply_text(st, code, enhanced, arg);
	return;
    }
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    smtpd_reply_text(st, code, enhanced, text);
}

/* smtpd_reply_buf_send_uncounted - a prepared reply, not counted as an
 * error (no error sleep either) */
void smtpd_reply_buf_send_uncounted(struct smtpd_state *st, const struct smtpd_reply_buf *r)
{
    reply_write(st, r->code, ' ', r->enhanced[0] ? r->enhanced : NULL, r->text);
}

/* smtpd_reply_buf_send - a prepared reply */
void smtpd_reply_buf_send(struct smtpd_state *st, const struct smtpd_reply_buf *r)
{
    smtpd_reply_text(st, r->code, r->enhanced[0] ? r->enhanced : NULL, r->text);
}

/* smtpd_reply_multi - a multi-line reply */
void smtpd_reply_multi(struct smtpd_state *st, int code, const char *const *lines, size_t n)
{
    error_delay(st, code);
    for (size_t i = 0; i < n; i++)
	reply_write(st, code, i + 1 < n ? '-' : ' ', NULL, lines[i]);
}

/* smtpd_protocol_name - RFC 3848 / RFC 6531 "with" keyword */
const char *smtpd_protocol_name(const struct smtpd_state *st)
{
    static const char *const names[2][4] = {
	{"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"},
	{"UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"},
    };
    int v = (st->tls ? 1 : 0) + (st->authenticated ? 2 : 0);

    if (!st->esmtp)
	return "SMTP";
    return names[st->in_mail && st->mail.smtputf8 ? 1 : 0][v];
}

/* smtpd_log_reject - the Postfix-shaped reject line */
void smtpd_log_reject(struct smtpd_state *st, const char *cmd, const struct smtpd_reply_buf *r,
		      const char *rcpt)
{
    struct str *text = str_new(2048);

    str_printf(text, "NOQUEUE: reject: %s from %s: %d ", cmd, st->namaddr, r->code);
    if (r->enhanced[0])
	str_appendf(text, "%s ", r->enhanced);
    smtpd_printable(text, r->text, strlen(r->text), 600, true);
    str_appends(text, ";");
    if (st->sender) {
	str_appends(text, " from=<");
	smtpd_printable(text, st->sender, strlen(st->sender), 300, true);
	str_appends(text, ">");
    }
    if (rcpt) {
	str_appends(text, " to=<");
	smtpd_printable(text, rcpt, strlen(rcpt), 300, true);
	str_appends(text, ">");
    }
    str_appendf(text, " proto=%s", smtpd_protocol_name(st));
    if (st->helo) {
	str_appends(text, " helo=<");
	smtpd_printable(text, st->helo, strlen(st->helo), SMTPD_ARG_SHOW, true);
	str_appends(text, ">");
    }
    msg_info("%s", str_cstr(text));
    str_free(&text);
}

/* log_stats - "disconnect from name[addr] ehlo=1 mail=1 rcpt=1/2 ..." */
static void log_stats(struct smtpd_state *st, const char *what)
{
    struct str *text = str_new(2048);
    size_t count;
    const struct smtpd_cmd *tab = smtpd_cmd_table(&count);

    str_appends(text, what);
    str_appends(text, " from ");
    str_appends(text, st->namaddr);
    for (size_t i = 0; i < count; i++) {
	if (st->cmd_total[i] == 0)
	    continue;
	str_appendc(text, ' ');
	for (const char *p = tab[i].name; *p; p++)
	    str_appendc(text, (char) (*p | 0x20));
	str_appendc(text, '=');
	if (st->cmd_ok[i] != st->cmd_total[i]) {
	    append_long(text, st->cmd_ok[i]);
	    str_appendc(text, '/');
	}
	append_long(text, st->cmd_total[i]);
    }
    if (st->unknown_total) {
	str_appends(text, " unknown=0/");
	append_long(text, st->unknown_total);
    }
    str_appends(text, " commands=");
    if (st->commands_ok != st->commands_total) {
	append_long(text, st->commands_ok);
	str_appendc(text, '/');
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

/* session_end - release the state */
static void session_end(struct smtpd_state *st)
{
    smtpd_reset(st);
    smtpd_data_fini(st);
    mem_free(&st->helo);
    mem_free(&st->sasl_username);
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
    struct str *line = str_new(SMTPD_CMD_LINE_EXT);
    size_t count;
    const struct smtpd_cmd *tab = smtpd_cmd_table(&count);

    memset(st, 0, sizeof(*st));
    st->client = client;
    st->cmd_total = mem_zalloc(mem_size_mul(count, sizeof(long)));
    st->cmd_ok = mem_zalloc(mem_size_mul(count, sizeof(long)));
    st->where = "CONNECT";
    stream_set_timeout(client, (int) (var_smtpd_timeout > 86400 ? 86400 : var_smtpd_timeout) * 1000);
    smtpd_peer_init(st);
    smtpd_check_client(st);
    msg_info("connect from %s", st->namaddr);
    pregreet_check(st);
    smtpd_reply(st, 220, NULL, "%s", var_smtpd_banner);
    smtpd_flush(st);

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
