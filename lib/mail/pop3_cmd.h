/* pop3_cmd.h - what the two halves of the POP3 server share (pop3d-login
 * before authentication, pop3d after it): splitting one command line
 * (the line itself comes from conn.h, which bounds it), the RFC
 * 2449/3206 response codes, the common part of CAPA, number parsing. */
#ifndef POSTHORN_POP3_CMD_H
#define POSTHORN_POP3_CMD_H

#include <stdbool.h>
#include <stddef.h>

/* base */
#include "str.h"

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
    char argbuf[POP3_ARGBUF_SIZE];
};

/* pop3_parse_command - split one line (without its CRLF, NUL-terminated
 * at len) into cmd: rest points into line, argv into cmd->argbuf; a NUL
 * in the line or a bad verb sets bad_verb (for event-driven readers,
 * conn.h, that hold the line themselves) */
void pop3_parse_command(const char *line, size_t len, struct pop3_command *cmd);

/* POP3_CAPA_COMMON - the capabilities both halves announce, each line
 * with its CRLF; the caller writes "+OK", its own lines and "." */
#define POP3_CAPA_COMMON "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n" \
    "IMPLEMENTATION " POP3_IMPLEMENTATION "\r\n"

/* pop3_parse_number - a message number or a count: decimal digits only,
 * 0..max; false otherwise */
bool pop3_parse_number(const char *text, long max, long *val);

#endif
