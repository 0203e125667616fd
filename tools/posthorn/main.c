/* main.c - posthorn, the administrator's command: option parsing and the
 * command table. The commands live in cmd_*.c.
 *
 *   posthorn [-c config_dir] [-v] COMMAND [args]
 *
 * See man/posthorn.1. Exit status: 0 success, 1 failure, 2 usage error. */

/* System library. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "master_proto.h"

/* This program. */
#include "posthorn.h"
#include "cmd_queue.h"

const char *ph_config_dir;
int ph_errors;

static int cmd_help(int argc, char **argv);

static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *args;
    const char *doc;
} commands[] = {
    {"start", cmd_start, "[-F]", "check and repair, then start the master (-F: in the foreground)"},
    {"stop", cmd_stop, "", "stop the master and wait until it is gone"},
    {"reload", cmd_reload, "", "check the configuration, then make the master re-read it"},
    {"status", cmd_status, "", "say whether the master runs (exit 0) or not (exit 1)"},
    {"check", cmd_check, "", "check configuration, daemons, tables and directories; repair what is safe"},
    {"conf", cmd_conf, "[-n | -d] [-x] [name ...]", "print parameters (-n: set in main.cf, -d: defaults, -x: expanded)"},
    {"map", cmd_map, "[-a] [-f] [-q key] [type:]file", "build a lookup table from its text (-q: look up a key, -f: no case folding, -a: aliases(5) syntax)"},
    {"users", cmd_users, "[type:]file",
     "build the auth table (file.auth) and the mailbox table (file.mailbox) from a users(5) file"},
    {"pw", cmd_pw, "[-s] [-S scheme]",
     "a password hash from the terminal or stdin (-s: also the SCRAM-SHA-256 secret)"},
    {"auth", cmd_auth, "test user", "check a user's password against the auth table, saying why it fails"},
    {"route", cmd_route, "[-j] address ...",
     "how each address routes: class, transport, next hop, MX and addresses (-j: JSON)"},
    {"queue", cmd_queue, "subcommand [args]",
     "the mail queue: list [--json], show ID, cat [-o] ID, delete|hold|release|requeue ID...|ALL, flush"},
    {"limits", cmd_limits, "[--json] [address|network ...]",
     "client-limits figures: per service and client, open connections and this time unit's connection, message, recipient, new TLS and failed-AUTH counts"},
    {"help", cmd_help, "", "this list"},
};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

char ph_first_error[1024];

/* ph_error - report an error and count it */
void ph_error(const char *fmt, ...)
{
    char text[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fprintf(stderr, "posthorn: error: %s\n", text);
    fflush(stderr);
    if (ph_errors++ == 0)
	fmt_buf_cut(ph_first_error, sizeof(ph_first_error), "%s", text);
}

/* ph_json_string - a JSON string literal */
void ph_json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
	if (*p == '"' || *p == '\\')
	    printf("\\%c", *p);
	else if (*p < 0x20 || *p == 0x7f)
	    printf("\\u%04x", *p);
	else
	    putchar(*p);
    }
    putchar('"');
}

/* ph_print_text - text with control characters as '?' */
void ph_print_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

/* ph_usage - the synopsis of one command or of all; exit status 2 */
int ph_usage(const char *command)
{
    fflush(stdout);
    if (command) {
	for (size_t i = 0; i < COMMAND_COUNT; i++)
	    if (strcmp(commands[i].name, command) == 0) {
		fprintf(stderr, "usage: posthorn [-c config_dir] [-v] %s%s%s\n",
			commands[i].name, commands[i].args[0] ? " " : "", commands[i].args);
		return 2;
	    }
    }
    fprintf(stderr, "usage: posthorn [-c config_dir] [-v] command [args]\ncommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
	fprintf(stderr, "  %s%s%s\n", commands[i].name, commands[i].args[0] ? " " : "",
		commands[i].args);
    fprintf(stderr, "see posthorn help or man posthorn\n");
    return 2;
}

/* cmd_help - list the commands on stdout */
static int cmd_help(int argc, char **argv)
{
    (void) argv;
    if (argc > 1)
	return ph_usage("help");
    printf("usage: posthorn [-c config_dir] [-v] command [args]\n\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
	char head[80];

	fmt_buf_or_panic(head, sizeof(head), "%s %s", commands[i].name, commands[i].args);
	printf("  %-36s %s\n", head, commands[i].doc);
    }
    printf("\nconfiguration directory: %s\n", ph_config_dir);
    return 0;
}

/* ph_config_error - lenient loading: one main.cf error */
static void ph_config_error(const char *error, void *ctx)
{
    if (*(bool *) ctx)
	return;
    ph_error("%s", error);
}

/* ph_load_config - defaults, main.cf, then expansion and conversion. Every
 * error is reported (unless quiet) and loading goes on: a bad line is
 * skipped and a bad value keeps its default, so that one mistake does not
 * make the rest of the file look wrong. -1 if there was any error. */
int ph_load_config(bool quiet)
{
    const char *error;
    int ret = 0;

    config_init();
    config_set_reporter(ph_config_error, &quiet);
    config_set("config_directory", ph_config_dir);
    if (config_load(ph_config_dir, &error) < 0) {
	/* only when the file cannot be read at all */
	if (!quiet)
	    ph_error("%s", error);
	ret = -1;
    }
    if (config_apply(&error) < 0) {
	if (!quiet)
	    ph_error("%s", error);
	ret = -1;
    }
    if (config_reported_errors() > 0)
	ret = -1;
    config_set_reporter(NULL, NULL);
    return ret;
}

int main(int argc, char **argv)
{
    const char *env;
    int ch;

    msg_init("posthorn", MSG_TO_STDERR);
    if ((env = getenv("POSTHORN_CONFIG_DIR")) != NULL && *env)
	ph_config_dir = env;
    else
	ph_config_dir = DEF_CONFIG_DIR;

    /* The long forms people type first (no other long options exist). */
    if (argc > 1 && strcmp(argv[1], "--help") == 0)
	return cmd_help(1, argv);
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
	printf("posthorn %s\n", POSTHORN_VERSION);
	return 0;
    }
    if (argc > 1 && strncmp(argv[1], "--", 2) == 0 && argv[1][2] != 0) {
	fprintf(stderr, "posthorn: bad option %s (try posthorn --help)\n", argv[1]);
	return ph_usage(NULL);
    }
    opterr = 0;
    while ((ch = getopt(argc, argv, "+c:vh")) != -1) {
	switch (ch) {
	case 'c':
	    ph_config_dir = optarg;
	    break;
	case 'v':
	    msg_verbose++;
	    break;
	case 'h':
	    return cmd_help(1, argv);
	default:
	    if (optopt == 'c')
		fprintf(stderr, "posthorn: option -c needs a directory\n");
	    else
		fprintf(stderr, "posthorn: bad option -%c (try posthorn --help)\n", optopt);
	    return ph_usage(NULL);
	}
    }
    if (optind >= argc) {
	fprintf(stderr, "posthorn: no command given\n");
	return ph_usage(NULL);
    }
    if (ph_config_dir[0] == 0) {
	fprintf(stderr, "posthorn: empty config directory\n");
	return ph_usage(NULL);
    }
    /* Absolute, so that messages name real paths and the master, which
     * changes its directory, reads the same files. */
    if (ph_config_dir[0] != '/') {
	char *abs = realpath(ph_config_dir, NULL);

	if (abs)
	    ph_config_dir = abs;	/* lives until exit */
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
	if (strcmp(commands[i].name, argv[optind]) == 0) {
	    char **cargv = argv + optind;
	    int cargc = argc - optind;

	    optind = 0;			/* glibc: reinitialize for the command */
	    return commands[i].fn(cargc, cargv);
	}
    }
    fprintf(stderr, "posthorn: unknown command: %s\n", argv[optind]);
    return ph_usage(NULL);
}
