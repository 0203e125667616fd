/* cmd_check.c - posthorn check: everything an operator can get wrong
 * before the master notices, each reported with its file:line.
 *
 *   main.cf     parses, every value has its type and bounds; names that
 *               are set but used nowhere are warned about, with the
 *               closest known name ("did you mean ...?")
 *   master.cf   parses; every command exists in $daemon_directory and is
 *               executable; every -o override names a known parameter and
 *               gives it a valid value
 *   tables      every table named by a *_maps parameter is built and not
 *               older than its source text
 *   accounts    mail_owner and setgid_group exist (when run as root)
 *   directories the manifest (lib/mail/manifest.c): created or repaired
 *               when that is safe, reported otherwise
 *
 * Errors print "posthorn: error: ..." and make the exit status 1;
 * warnings print "posthorn: warning: ..." and do not. Repairs print
 * "posthorn: repaired: ...". */

/* System library. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "manifest.h"
#include "mastercf.h"
#include "table.h"

/* This program. */
#include "posthorn.h"

#define NAME_MAX_LEN 64

/* edit_distance - Levenshtein distance, or a large number for long names */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[NAME_MAX_LEN + 1];

    if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
	return (size_t) -1;
    for (size_t j = 0; j <= lb; j++)
	row[j] = j;
    for (size_t i = 1; i <= la; i++) {
	size_t diag = row[0];

	row[0] = i;
	for (size_t j = 1; j <= lb; j++) {
	    size_t up = row[j];
	    size_t best = diag + (a[i - 1] != b[j - 1]);

	    if (up + 1 < best)
		best = up + 1;
	    if (row[j - 1] + 1 < best)
		best = row[j - 1] + 1;
	    row[j] = best;
	    diag = up;
	}
    }
    return row[lb];
}

/* closest_param - the table name nearest to name (distance <= 2), or NULL */
static const char *closest_param(const char *name)
{
    const char *best = NULL;
    size_t best_dist = 3;

    for (size_t i = 0; i < param_count; i++) {
	size_t d = edit_distance(name, param_table[i].name);

	if (d < best_dist) {
	    best_dist = d;
	    best = param_table[i].name;
	}
    }
    return best;
}

/* where_of - "file:line" of a parameter, or "file (default)" */
static const char *where_of(const char *name)
{
    static char buf[4200];
    const char *where = config_where(name);

    if (where)
	return where;
    fmt_buf_cut(buf, sizeof(buf), "%s/main.cf (%s not set, default)", ph_config_dir, name);
    return buf;
}

/* unused_cb - warn about a main.cf name that nothing uses */
static void unused_cb(const char *name, const char *where, void *ctx)
{
    const char *hint = closest_param(name);

    (void) ctx;
    if (hint)
	msg_warn("%s: unknown parameter %s (did you mean %s?)", where, name, hint);
    else
	msg_warn("%s: unknown parameter %s is not used by anything", where, name);
}

/* command_path - the program a master.cf entry runs */
static bool command_path(const struct mastercf_entry *e, char *buf, size_t size)
{
    if (e->command[0] == '/')
	return str_try_copy_out(buf, size, e->command);
    return fmt_try_buf(buf, size, "%s/%s", var_daemon_directory, e->command);
}

/* check_executable - a regular file we may execute; error text or NULL */
static const char *check_executable(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
	return strerror(errno);
    if (!S_ISREG(st.st_mode))
	return "not a regular file";
    if (access(path, X_OK) < 0)
	return "not executable";
    return NULL;
}

/* check_overrides - type-check one entry's -o overrides on top of main.cf */
static void check_overrides(const struct mastercf_entry *e)
{
    const char *error;
    bool any = false;

    for (size_t i = 0; i < e->overrides.count; i++) {
	const char *eq = strchr(e->overrides.items[i], '=');
	char name[NAME_MAX_LEN + 1];
	size_t len = eq ? (size_t) (eq - e->overrides.items[i]) : strlen(e->overrides.items[i]);

	if (len > NAME_MAX_LEN || !fmt_try_buf(name, sizeof(name), "%.*s", (int) len, e->overrides.items[i])
	    || param_find(name) == NULL) {
	    const char *hint = len <= NAME_MAX_LEN ? closest_param(name) : NULL;

	    /* An error, not a warning: a service must not run weaker than
	     * written (a submission port without the TLS it asks for). */
	    ph_error("%s:%d: service %s/%s: -o %.*s: unknown parameter%s%s%s",
		     e->file, e->line, e->service, mastercf_type_name(e->type), (int) len,
		     e->overrides.items[i], hint ? " (did you mean " : "", hint ? hint : "",
		     hint ? "?)" : "");
	    continue;
	}
	any = true;
    }
    if (!any)
	return;
    (void) ph_load_config(true);
    for (size_t i = 0; i < e->overrides.count; i++) {
	if (config_override(e->overrides.items[i], &error) < 0) {
	    ph_error("%s:%d: service %s/%s: %s", e->file, e->line, e->service,
		     mastercf_type_name(e->type), error);
	    return;
	}
    }
    if (config_apply(&error) < 0)
	ph_error("%s:%d: service %s/%s: %s", e->file, e->line, e->service,
		 mastercf_type_name(e->type), error);
}

/* check_port - a normal user's master cannot bind ports below 1024 */
static void check_port(const struct mastercf_entry *e)
{
    struct servent *se;
    long port;
    char *end;

    if (e->type != MASTERCF_INET || e->port == NULL || geteuid() == 0)
	return;
    port = strtol(e->port, &end, 10);
    if (*end != 0 || end == e->port) {
	if ((se = getservbyname(e->port, "tcp")) == NULL)
	    return;
	port = ntohs((uint16_t) se->s_port);
    }
    if (port > 0 && port < 1024)
	msg_warn("%s:%d: service %s/inet: port %ld needs root, and posthorn runs as uid %ld",
		 e->file, e->line, e->service, port, (long) geteuid());
}

/* ph_check_config - main.cf, master.cf and the programs it names */
int ph_check_config(void)
{
    int errors_before = ph_errors;
    struct mastercf *cf = NULL;
    char path[4096];
    const char *why = "path too long";
    const char *error;
    bool main_ok;

    main_ok = ph_load_config(false) == 0;

    if (!fmt_try_buf(path, sizeof(path), "%s/master.cf", ph_config_dir)) {
	ph_error("%s: configuration directory name is too long", ph_config_dir);
    } else if (mastercf_load(path, var_default_process_limit, &cf, &error) < 0) {
	ph_error("%s", error);
    }

    if (!fmt_try_buf(path, sizeof(path), "%s/master", var_daemon_directory)
	|| (why = check_executable(path)) != NULL)
	ph_error("%s: daemon_directory = %s: %s/master: %s", where_of("daemon_directory"),
		 var_daemon_directory, var_daemon_directory, why);

    for (size_t i = 0; cf && i < cf->count; i++) {
	const struct mastercf_entry *e = &cf->entries[i];

	if (!command_path(e, path, sizeof(path)))
	    ph_error("%s:%d: service %s/%s: command path too long", e->file, e->line,
		     e->service, mastercf_type_name(e->type));
	else if ((why = check_executable(path)) != NULL)
	    ph_error("%s:%d: service %s/%s: command %s: %s", e->file, e->line, e->service,
		     mastercf_type_name(e->type), path, why);
	if (main_ok && e->overrides.count > 0)
	    check_overrides(e);
	check_port(e);
    }
    mastercf_free(&cf);
    /* Leave the plain main.cf values in var_* for the caller. */
    (void) ph_load_config(true);
    return ph_errors - errors_before;
}

struct table_ctx {
    const char *param;		/* the *_maps parameter */
    const char *default_type;
};

/* start: a missing table only warns (the mail that needs it is deferred
 * at run time, everything else runs); check and reload: an error */
bool ph_tables_warn_only;

/* where syslog(3) sends its lines (glibc's _PATH_LOG) */
#define PH_SYSLOG_SOCKET "/dev/log"

/* table_complain - a missing or bad table named in main.cf */
static void table_complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void table_complain(const char *fmt, ...)
{
    char text[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (ph_tables_warn_only)
	msg_warn("%s (mail that needs it is deferred until it is built)", text);
    else
	ph_error("%s", text);
}

/* check_table_cb - one table named by a *_maps parameter. A table that
 * main.cf names must exist (error); one named only by a built-in default
 * (alias_maps on a fresh install) gets a warning, so that a new host can
 * start before its first newaliases. */
static void check_table_cb(const char *item, void *ctx)
{
    const struct table_ctx *tc = ctx;
    struct str *source = str_new(4096), *built = str_new(4096);
    void (*complain)(const char *, ...) = config_where(tc->param) ? table_complain : msg_warn;
    bool aliases = strcmp(tc->param, "alias_maps") == 0;
    const char *why, *error;
    char type[32];
    struct stat st;
    int stale;

    if (table_paths(item, tc->default_type, type, sizeof(type), source, built, &error) < 0) {
	complain("%s: %s: %s", where_of(tc->param), tc->param, error);
    } else if ((stale = table_stale_why(item, tc->default_type, &why)) < 0) {
	complain("%s: %s: %s", where_of(tc->param), tc->param, why ? why : item);
    } else if (stale > 0 && stat(str_cstr(built), &st) < 0) {
	complain("%s: %s: %s: %s is missing; run: %s%s", where_of(tc->param),
		 tc->param, item, str_cstr(built),
		 aliases ? "newaliases or posthorn map -a " : "posthorn map ", item);
    } else if (stale > 0) {
	msg_warn("%s: %s: %s: %s is older than %s; run: %s%s",
		 where_of(tc->param), tc->param, item, str_cstr(built), str_cstr(source),
		 aliases ? "newaliases or posthorn map -a " : "posthorn map ", item);
    }
    str_free(&source);
    str_free(&built);
}

/* check_maps_cb - config_names callback: tables of *_maps parameters */
static void check_maps_cb(const char *name, void *ctx)
{
    size_t len = strlen(name);
    struct table_ctx tc;
    const char *value;

    (void) ctx;
    if (len < 5 || strcmp(name + len - 5, "_maps") != 0)
	return;
    if ((value = config_value(name)) == NULL || *value == 0)
	return;
    tc.param = name;
    tc.default_type = *var_default_database_type ? var_default_database_type : TABLE_DEFAULT_TYPE;
    config_split(value, check_table_cb, &tc);
}

/* manifest_cb - print one finding of the directory check */
static void manifest_cb(enum manifest_level level, const char *text, void *ctx)
{
    (void) ctx;
    if (level == MANIFEST_ERROR) {
	ph_error("%s", text);
    } else if (level == MANIFEST_WARNING) {
	msg_warn("%s", text);
    } else {
	fprintf(stderr, "posthorn: repaired: %s\n", text);
	fflush(stderr);
    }
}

/* check_log_destination - warn when nothing will receive the log: no
 * maillog_file, and no syslog daemon listening on /dev/log (common in
 * containers and minimal hosts), so every line would be lost */
static void check_log_destination(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (*var_maillog_file)
	return;
    str_copy_out_or_panic(sun.sun_path, sizeof(sun.sun_path), PH_SYSLOG_SOCKET);
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
	return;
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
	/* a stream socket (some syslog daemons) answers a stream connect */
	int saved = errno;

	(void) close(fd);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0
	    && connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == 0) {
	    (void) close(fd);
	    return;
	}
	if (fd >= 0)
	    (void) close(fd);
	msg_warn("%s: maillog_file is empty and nothing receives syslog on %s (%s): "
		 "every log line will be lost; set maillog_file (e.g. /var/log/posthorn.log) "
		 "or start a syslog daemon", where_of("maillog_file"), PH_SYSLOG_SOCKET,
		 strerror(saved));
	return;
    }
    (void) close(fd);
}

/* ph_check_tables - every table named by a *_maps parameter */
int ph_check_tables(void)
{
    int errors_before = ph_errors;

    config_names(check_maps_cb, NULL);
    return ph_errors - errors_before;
}

/* ph_check_all - every check, with the safe repairs */
int ph_check_all(void)
{
    int errors_before = ph_errors;
    struct manifest_ids ids;
    const char *error;
    bool main_ok;

    (void) ph_check_config();
    main_ok = ph_load_config(true) == 0;
    config_unused(unused_cb, NULL);
    (void) ph_check_tables();
    check_log_destination();

    if (getuid() != 0 && geteuid() == 0)
	msg_warn("running set-uid root; directory repairs use the real user's view");
    if (manifest_ids_resolve(var_mail_owner, var_setgid_group, &ids, &error) < 0) {
	const char *param = strncmp(error, "setgid_group", 12) == 0 ? "setgid_group" : "mail_owner";

	ph_error("%s: %s", where_of(param), error);
	return ph_errors - errors_before;
    }
    if (msg_verbose && geteuid() != 0)
	msg_info("not root: every directory belongs to uid %ld", (long) geteuid());
    /* Repair only what a valid main.cf points at. */
    (void) manifest_check(var_queue_directory, var_data_directory, &ids,
			  main_ok ? MANIFEST_REPAIR : 0, manifest_cb, NULL);
    (void) manifest_check_programs(var_daemon_directory, &ids,
				   main_ok ? MANIFEST_REPAIR : 0, manifest_cb, NULL);
    return ph_errors - errors_before;
}

/* cmd_check - posthorn check */
int cmd_check(int argc, char **argv)
{
    (void) argv;
    if (argc != 1)
	return ph_usage("check");
    if (ph_check_all() > 0)
	return 1;
    if (msg_verbose)
	msg_info("%s: no errors", ph_config_dir);
    return 0;
}
