/* sendmail.h - the sendmail command's modules: shared declarations.
 *
 *   main.c        options, modes (-bm -bp -bi -bs -q), the default path
 *   sm_drop.c     running postdrop and writing a maildrop file to it:
 *                 envelope records, content lines, the end
 *   sm_input.c    reading a message from stdin (CRLF or LF, the "."
 *                 line unless -i, long lines as C records), splitting
 *                 command-line recipient lists, option value checks
 *   sm_submit.c   the default mode's fast path: the file, built in
 *                 memory, to the submit service over its socket
 *   sm_smtp.c     -bs: a small SMTP dialogue on stdin/stdout that
 *                 submits each message through postdrop
 *   sm_aliases.c  -bi (newaliases): build every table of alias_maps
 *
 * Exit statuses are sysexits.h codes; diagnostics go to stderr as
 * "sendmail: fatal: ..." (msg_fatal_status). */
#ifndef POSTHORN_SENDMAIL_H
#define POSTHORN_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* base */
#include "str.h"
#include "stream.h"

/* One envelope recipient. */
struct sm_rcpt {
    char *address;
    char *notify;		/* DSN NOTIFY value, NULL if none */
    char *orcpt;		/* "rfc822;addr", NULL if none */
};

/* The envelope of one message. */
struct sm_envelope {
    char *sender;		/* "" for the null sender */
    struct sm_rcpt *rcpts;
    size_t rcpt_count;
    size_t rcpt_cap;
    const char *dsn_ret;	/* "full", "hdrs" or NULL */
    const char *dsn_envid;	/* or NULL */
    const char *body;		/* "7bit", "8bitmime" or NULL */
    bool extract;		/* -t */
};

void sm_envelope_init(struct sm_envelope *env);
void sm_envelope_fini(struct sm_envelope *env);
/* sm_envelope_add - append a recipient (copies the strings) */
void sm_envelope_add(struct sm_envelope *env, const char *address, const char *notify,
		     const char *orcpt);

/* The configuration sendmail needs (set by main). */
extern const char *sm_config_dir;	/* absolute */
extern const char *sm_progname;		/* "sendmail", "mailq", "newaliases" */

/* sm_config - the expanded value of a main.cf parameter (msg_fatal if
 * it cannot be expanded). sendmail expands only the few parameters it
 * uses, not the whole table (config_apply), except for -bs. */
const char *sm_config(const char *name);

/* sm_spawn - run path with argv in a child, stdin_fd (if >= 0) as its
 * stdin; the pid, or -1 with errno */
pid_t sm_spawn(const char *path, char *const *argv, int stdin_fd);

/* sm_drop.c: a running postdrop with a pipe to its stdin. */
struct sm_drop;
/* sm_drop_open - start $daemon_directory/postdrop (msg_fatal on failure) */
struct sm_drop *sm_drop_open(void);
/* sm_drop_stream - where the records go */
struct stream *sm_drop_stream(struct sm_drop *drop);
/* sm_drop_envelope - V, S, A..., [O] [N] R..., M */
int sm_drop_envelope(struct sm_drop *drop, const struct sm_envelope *env);
/* sm_drop_finish - X and E, close the pipe and wait: postdrop's exit
 * status (0 = on disk), or EX_TEMPFAIL/EX_OSERR if it died otherwise */
int sm_drop_finish(struct sm_drop **dropp);
/* sm_drop_abort - give up: close the pipe, stop postdrop, wait */
void sm_drop_abort(struct sm_drop **dropp);

/* sm_drop_put_envelope - the envelope records and M, on any stream */
int sm_drop_put_envelope(struct stream *s, const struct sm_envelope *env);
/* sm_drop_finish_raw - close the pipe (the caller wrote E) and wait:
 * postdrop's exit status */
int sm_drop_finish_raw(struct sm_drop **dropp);

/* sm_submit.c: the submit service (submit(8)). */
enum sm_submit_result {
    SM_SUBMIT_QUEUED,		/* on disk; text = queue ID */
    SM_SUBMIT_REFUSED,		/* *status_r (sysexits.h), text = why */
    SM_SUBMIT_UNREACHABLE,	/* nothing stored: use postdrop (text) */
    SM_SUBMIT_LOST,		/* no answer after the end record (text) */
};
/* sm_submit - connect to $queue_directory/submit/submit, send file (a
 * whole maildrop file), read the answer */
enum sm_submit_result sm_submit(const struct str *file, int *status_r, char *text,
				size_t text_size);

/* sm_input.c */
/* Where message lines come from: stdin read in 64 KiB blocks without
 * poll(2) (the default path has no deadline), or a stream (-bs). */
struct sm_source {
    struct stream *stream;	/* or NULL: read fd */
    int fd;
    char *buf;
    size_t pos;
    size_t len;
    enum stream_status status;	/* sticky EOF or error of fd */
};

void sm_source_fd(struct sm_source *src, int fd);
void sm_source_stream(struct sm_source *src, struct stream *stream);	/* tests */
void sm_source_fini(struct sm_source *src);

#define SM_COPY_DOT	(1 << 0)	/* a line "." alone ends the message */

enum sm_copy_status {
    SM_COPY_OK,			/* to the end (EOF, or the "." line) */
    SM_COPY_READ_ERROR,		/* reading failed or timed out */
    SM_COPY_WRITE_ERROR,	/* writing the records failed */
    SM_COPY_TOO_BIG,		/* more than the size limit (rest skipped) */
};

/* sm_copy_message - read message lines from in and write them to out as
 * L/C records (queue_file.h). size_limit > 0 stops writing after that
 * many bytes (CRLF counted as 2) and reads on to the end. If header_from
 * is not NULL and not empty, a "From:" line with it is put in front of
 * the header unless the header already has a From: field. *size_r gets
 * the content size. out NULL reads and discards the message. */
enum sm_copy_status sm_copy_message(struct sm_source *in, struct stream *out, int flags,
				    long long size_limit, const char *header_from,
				    long long *size_r);

/* sm_split_addresses - call fn for each address of a command-line
 * argument: comma separated, "<...>" taken from "Name <addr>", quotes
 * respected, white space trimmed, empty elements skipped */
void sm_split_addresses(const char *arg, void (*fn)(const char *addr, void *ctx), void *ctx);

/* sm_strip_angle - "<addr>" -> "addr" (a new string) */
char *sm_strip_angle(const char *arg);

/* sm_parse_notify - -N value to the record form ("never" or a list of
 * success, failure, delay, lower case); NULL if invalid */
char *sm_parse_notify(const char *arg);

/* sm_header_from - a From: header value for full_name and address,
 * with the name quoted when needed and control characters removed */
void sm_header_from(struct str *out, const char *full_name, const char *address);

/* sm_smtp.c: -bs */
int sm_smtp_session(struct stream *in, struct stream *out, long long size_limit);

/* sm_aliases.c: -bi; alias_maps, or the -oA value if not NULL */
int sm_newaliases(const char *alias_maps);

#endif
