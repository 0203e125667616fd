/* posthorn.h - the administrator's command: shared declarations of its
 * modules (main.c, cmd_conf.c, cmd_check.c, cmd_map.c, cmd_route.c, cmd_auth.c,
 * cmd_start.c, cmd_limits.c).
 *
 * Each command is a function "int cmd_NAME(int argc, char **argv)" that
 * gets its own arguments (argv[0] is the command name) and returns the
 * exit status: 0 success, 1 failure (or "not found"/"not running"), 2 a
 * usage error. Diagnostics go to stderr as "posthorn: error: ...",
 * "posthorn: warning: ..." (ph_error, msg_warn), so an operator can grep
 * for them; normal output goes to stdout. */
#ifndef POSTHORN_TOOL_H
#define POSTHORN_TOOL_H

#include <stdbool.h>
#include <sys/types.h>

/* The options before the command. */
extern const char *ph_config_dir;	/* -c, $POSTHORN_CONFIG_DIR or default */

/* ph_error - "posthorn: error: ..." on stderr; counts into ph_errors */
void ph_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern int ph_errors;
/* PH_EXIT_CONFIG - the exit status of start and reload when they refuse
 * because the configuration has errors (1 is "failed", 2 "usage") */
#define PH_EXIT_CONFIG 3
/* ph_first_error - the text of the first error ph_error reported */
extern char ph_first_error[1024];

/* ph_json_string - s as a JSON string literal on stdout */
void ph_json_string(const char *s);
/* ph_print_text - s on stdout with control characters as '?' (one line) */
void ph_print_text(const char *s);

/* ph_usage - print the usage of one command (or all if NULL); returns 2 */
int ph_usage(const char *command);

/* ph_load_config - read main.cf and apply it. On error, report it through
 * ph_error (unless quiet) and return -1; var_* then hold the defaults
 * (or whatever could be applied). */
int ph_load_config(bool quiet);

/* ph_master_pid - the pid of the running master (the holder of the lock
 * on $queue_directory/pid/master.pid), 0 if not running, -1 on error
 * with *error_r */
pid_t ph_master_pid(const char **error_r);

/* ph_check_config - the checks that reload and start need before they
 * touch a running system: main.cf and master.cf parse, daemons exist.
 * Returns the number of errors (already reported). */
int ph_check_config(void);

/* ph_check_all - everything `posthorn check` does, including the safe
 * repairs; returns the number of errors (already reported) */
int ph_check_all(void);
/* ph_check_tables - the tables of every *_maps parameter exist and are
 * built; errors counted (with ph_tables_warn_only, as start wants, a
 * missing table named in main.cf is only a warning) */
int ph_check_tables(void);
extern bool ph_tables_warn_only;

int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_conf(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_route(int argc, char **argv);
int cmd_users(int argc, char **argv);
int cmd_pw(int argc, char **argv);
int cmd_auth(int argc, char **argv);
int cmd_limits(int argc, char **argv);

#endif
