/* pop3_cmd.c - POP3 command lines, replies and the common CAPA lines,
 * shared by pop3d-login and pop3d (pop3_cmd.h). */

/* system */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

/* base */
#include "msg.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "pop3_cmd.h"
#include "server.h"

/* pop3_read_line - one line without its CRLF */
enum pop3_read pop3_read_line(struct stream *s, struct str *line, size_t max)
{
    enum stream_status st = stream_getline(s, line, max);

    if (st == STREAM_TOOLONG) {
	if (stream_skip_line(s) != STREAM_OK)
	    return POP3_READ_END;
	return POP3_READ_TOOLONG;
    }
    if (st != STREAM_OK)
	return POP3_READ_END;
    if (str_len(line) == 0 || str_cstr(line)[str_len(line) - 1] != '\n')
	return POP3_READ_END;		/* a last line without its end */
    (void) str_chomp(line);
    return POP3_READ_OK;
}

/* pop3_read_command - read and split one command */
enum pop3_read pop3_read_command(struct stream *s, struct str *line, size_t max,
				 struct pop3_command *cmd)
{
    enum pop3_read r;

    memset(cmd, 0, sizeof(*cmd));
    cmd->rest = "";
    if ((r = pop3_read_line(s, line, max)) != POP3_READ_OK)
	return r;
    pop3_parse_command(str_cstr(line), str_len(line), cmd);
    return POP3_READ_OK;
}

/* pop3_parse_command - split one command line */
void pop3_parse_command(const char *line, size_t len, struct pop3_command *cmd)
{
    const char *p, *verb;
    size_t n;

    memset(cmd, 0, sizeof(*cmd));
    cmd->rest = "";
    if (memchr(line, 0, len) != NULL) {
	cmd->bad_verb = true;
	return;
    }
    p = line;
    verb = p;
    while (*p && *p != ' ')
	p++;
    n = (size_t) (p - verb);
    if (n == 0 || n > POP3_VERB_MAX) {
	cmd->bad_verb = true;
	return;
    }
    for (size_t i = 0; i < n; i++) {
	unsigned char c = (unsigned char) verb[i];

	if (c < 0x21 || c > 0x7e) {
	    cmd->bad_verb = true;
	    return;
	}
	cmd->verb[i] = (char) toupper(c);
    }
    cmd->verb[n] = 0;
    if (*p == ' ')
	p++;
    cmd->rest = p;
    /* The arguments, split at (runs of) spaces, in a copy: rest keeps the
     * raw text for PASS, whose password may contain spaces. */
    if (!str_try_copy_out(cmd->argbuf, sizeof(cmd->argbuf), p)) {
	cmd->bad_args = true;
	return;
    }
    for (char *a = cmd->argbuf; *a;) {
	if (*a == ' ') {
	    *a++ = 0;
	    continue;
	}
	if (cmd->argc == POP3_ARGS_MAX) {
	    cmd->bad_args = true;
	    break;
	}
	cmd->argv[cmd->argc++] = a;
	while (*a && *a != ' ')
	    a++;
    }
    cmd->argv[cmd->argc] = NULL;
}

/* pop3_next_command - read, count and pre-check one command */
bool pop3_next_command(struct stream *s, struct str *line, size_t max,
		       struct pop3_command *cmd, long *count, long limit)
{
    enum pop3_read r = pop3_read_command(s, line, max, cmd);

    if (r == POP3_READ_END) {
	if (stream_error(s) == STREAM_TIMEOUT) {
	    stream_clear_error(s);
	    pop3_err(s, NULL, "Timeout, closing connection");
	    (void) stream_flush(s);
	}
	return false;
    }
    if (++*count > limit) {
	pop3_err(s, NULL, "Too many commands, closing connection");
	return false;
    }
    server_watchdog_reset();		/* a command is progress */
    if (r == POP3_READ_TOOLONG) {
	pop3_err(s, NULL, "Line too long");
	cmd->answered = true;
    } else if (cmd->bad_verb) {
	pop3_err(s, NULL, "Bad command");
	cmd->answered = true;
    }
    return true;
}

/* pop3_vreply - one status line */
static void pop3_vreply(struct stream *s, const char *status, const char *code,
			const char *fmt, va_list ap)
{
    if (code)
	(void) stream_printf(s, "%s [%s] ", status, code);
    else
	(void) stream_printf(s, "%s ", status);
    (void) stream_vprintf(s, fmt, ap);
    (void) stream_write(s, "\r\n", 2);
}

/* pop3_ok - "+OK text" */
void pop3_ok(struct stream *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pop3_vreply(s, "+OK", NULL, fmt, ap);
    va_end(ap);
}

/* pop3_err - "-ERR [CODE] text" */
void pop3_err(struct stream *s, const char *code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pop3_vreply(s, "-ERR", code, fmt, ap);
    va_end(ap);
}

/* pop3_flush_if_idle - flush unless a pipelined command waits */
int pop3_flush_if_idle(struct stream *s)
{
    if (stream_buffered(s) > 0)
	return 0;
    return stream_flush(s);
}

/* pop3_capa_common - the lines both halves announce */
void pop3_capa_common(struct stream *s)
{
    (void) stream_puts(s, POP3_CAPA_COMMON);
}

/* pop3_parse_number - decimal digits only, 0..max */
bool pop3_parse_number(const char *text, long max, long *val)
{
    long v = 0;

    if (text == NULL || *text == 0 || strlen(text) > 10)
	return false;
    for (const char *p = text; *p; p++) {
	if (*p < '0' || *p > '9')
	    return false;
	v = v * 10 + (*p - '0');
    }
    if (v > max)
	return false;
    *val = v;
    return true;
}
