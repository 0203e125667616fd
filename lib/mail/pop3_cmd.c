/* pop3_cmd.c - POP3 command-line splitting and number parsing,
 * shared by pop3d-login and pop3d (pop3_cmd.h). */

/* system */
#include <ctype.h>
#include <string.h>

/* base */
#include "str.h"

/* mail */
#include "pop3_cmd.h"

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
