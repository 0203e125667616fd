/* pop3_cmd.h - what the two halves of the POP3 server share (pop3d-login
 * before authentication, pop3d after it): reading one command line with
 * a length limit, splitting it, the replies with RFC 2449/3206 response
 * codes, and the common part of CAPA.
 *
 * Replies are buffered; pop3_flush_if_idle writes them out only when the
 * client has no further command waiting (RFC 2449 PIPELINING: one write
 * per batch of commands). */
#ifndef POSTHORN_POP3_CMD_H
#define POSTHORN_POP3_CMD_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "str.h"
#include "stream.h"

/* RFC 3206 / RFC 2449 response codes */
#define POP3_CODE_AUTH		"AUTH"		/* credentials were wrong */
#define POP3_CODE_SYS_TEMP	"SYS/TEMP"	/* try again later */
#define POP3_CODE_SYS_PERM	"SYS/PERM"	/* it will not work later either */
#define POP3_CODE_IN_USE	"IN-USE"	/* another session holds the mailbox */
#define POP3_CODE_LOGIN_DELAY	"LOGIN-DELAY"	/* too soon */

#define POP3_IMPLEMENTATION	"posthorn"
#define POP3_VERB_MAX		16		/* bytes of a command keyword */
#define POP3_ARGS_MAX		3		/* arguments any command takes */
#define POP3_ARGBUF_SIZE	512		/* bytes of split arguments */

enum pop3_read {
    POP3_READ_OK = 0,		/* a command in cmd */
    POP3_READ_TOOLONG,		/* the line passed the limit (skipped) */
    POP3_READ_END,		/* EOF, timeout or error: end the session */
};

struct pop3_command {
    char verb[POP3_VERB_MAX + 1];	/* upper case */
    const char *rest;		/* everything after the verb and one space
				 * (into the line), "" if none */
    int argc;			/* arguments split at spaces (into argbuf) */
    const char *argv[POP3_ARGS_MAX + 1];
    bool bad_args;		/* more than POP3_ARGS_MAX, or longer than
				 * argbuf (commands that take the raw rest,
				 * PASS and AUTH, ignore this) */
    bool bad_verb;		/* empty, too long or not printable */
    bool answered;		/* pop3_next_command replied already (line
				 * too long, bad command): skip it */
    char argbuf[POP3_ARGBUF_SIZE];
};

/* pop3_read_command - read one line of at most max bytes (CRLF or LF
 * included) into line and split it into cmd (rest points into line,
 * argv into cmd->argbuf). */
enum pop3_read pop3_read_command(struct stream *s, struct str *line, size_t max,
				 struct pop3_command *cmd);

/* pop3_parse_command - split one line (without its CRLF, NUL-terminated
 * at len) into cmd: rest points into line, argv into cmd->argbuf; a NUL
 * in the line or a bad verb sets bad_verb (for event-driven readers,
 * conn.h, that hold the line themselves) */
void pop3_parse_command(const char *line, size_t len, struct pop3_command *cmd);

/* pop3_next_command - the next command of a session loop: false when
 * the session ends (EOF, error, or a timeout, answered "-ERR Timeout";
 * more than limit commands counted in *count, answered "-ERR Too many
 * commands"); true with cmd, whose answered flag says it was refused
 * here already (line too long, bad command). Resets the daemon
 * watchdog for each command. */
bool pop3_next_command(struct stream *s, struct str *line, size_t max,
		       struct pop3_command *cmd, long *count, long limit);

/* pop3_read_line - one line of at most max bytes without its CRLF (for
 * SASL continuation lines) */
enum pop3_read pop3_read_line(struct stream *s, struct str *line, size_t max);

/* pop3_ok, pop3_err - "+OK text" / "-ERR [CODE] text" (code NULL: none) */
void pop3_ok(struct stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pop3_err(struct stream *s, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pop3_flush_if_idle - write out the replies unless another command is
 * already buffered; -1 on a write error */
int pop3_flush_if_idle(struct stream *s);

/* POP3_CAPA_COMMON - the text of pop3_capa_common */
#define POP3_CAPA_COMMON "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n" \
    "IMPLEMENTATION " POP3_IMPLEMENTATION "\r\n"

/* pop3_capa_common - the capabilities both halves announce (TOP, UIDL,
 * RESP-CODES, AUTH-RESP-CODE, PIPELINING, IMPLEMENTATION), each line with
 * its CRLF; the caller writes "+OK", its own lines and "." */
void pop3_capa_common(struct stream *s);

/* pop3_parse_number - a message number or a count: decimal digits only,
 * 0..max; false otherwise */
bool pop3_parse_number(const char *text, long max, long *val);

#endif
