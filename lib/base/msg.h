/* msg.h - diagnostics and the mail log.
 *
 * One line per event, "program[pid]: text", to syslog, to a log file
 * (maillog_file: opened O_APPEND, one write(2) per line, so concurrent
 * processes never interleave) and/or to stderr.
 *
 * Levels have fixed meanings:
 *   msg_info   - an event worth logging (deliveries, connections)
 *   msg_warn   - something recoverable went wrong
 *   msg_fatal  - the environment failed: log and exit(1); the master
 *                restarts the service
 *   msg_panic  - a bug: log and abort() (core dump)
 * msg_verbose is a global level raised by -v. */
#ifndef POSTHORN_MSG_H
#define POSTHORN_MSG_H

#include <stdarg.h>
#include <sys/types.h>
#include <stdbool.h>

#define MSG_TO_STDERR	(1 << 0)
#define MSG_TO_SYSLOG	(1 << 1)
#define MSG_TO_FILE	(1 << 2)

extern int msg_verbose;

/* msg_init - set the program name (as logged: "posthorn/smtpd") and sinks.
 * Until called, messages go to stderr as "posthorn: ...". */
void msg_init(const char *progname, int sinks);
/* msg_set_file - open (or reopen) the log file; false and an error text
 * on failure (errtext.h: valid until the next msg_set_file failure).
 * Opening before a chroot or privilege drop keeps it usable. */
bool msg_set_file(const char *path, const char **error_r);
/* msg_set_sinks - change where messages go */
void msg_set_sinks(int sinks);
/* msg_file_descriptor - the open log file's descriptor, -1 if none (a
 * forked child that closes everything else keeps this one) */
int msg_file_descriptor(void);
int msg_get_sinks(void);
/* msg_set_syslog_facility - e.g. "mail" (default) */
bool msg_set_syslog_facility(const char *name);
/* msg_getpid - this process's id without a getpid(2) after the first
 * call (a pthread_atfork handler refreshes it in a forked child; a vfork
 * child must not call it before it execs) */
pid_t msg_getpid(void);
const char *msg_progname(void);
/* msg_fatal_hook - run before exit on msg_fatal (e.g. to flush state) */
void msg_set_fatal_hook(void (*hook)(void));

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void msg_fatal_status(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_vlog(int level, const char *fmt, va_list ap);

#define MSG_INFO	0
#define MSG_WARN	1
#define MSG_FATAL	2
#define MSG_PANIC	3

#endif
