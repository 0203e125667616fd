/* main.c - sendmail, the Sendmail-compatible mail submission command.
 *
 *   sendmail [options] [--] [recipient ...]   (also as mailq, newaliases)
 *
 * sendmail is unprivileged. It reads the message from stdin, turns it
 * into a maildrop file (maildrop.h) and writes that to the setgid
 * postdrop, which stores it in maildrop/ and wakes pickup; sendmail
 * exits 0 only when postdrop said the file is on disk. mailq (-bp) runs
 * "posthorn queue list", newaliases (-bi) builds alias_maps, -q asks
 * qmgr (through postdrop -q) to flush, -bs speaks SMTP on stdin/stdout.
 * See man/sendmail.1. Exit statuses are those of sysexits.h. */

/* System library. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "address.h"
#include "config.h"
#include "maildrop.h"
#include "queue_file.h"

/* This program. */
#include "sendmail.h"

#define DEF_SIZE_LIMIT	10240000L	/* message_size_limit when unset */
#define SM_MEMORY_LIMIT	((long long) 64 << 20)	/* larger limits: stream to postdrop */
#define SM_ENVELOPE_ROOM ((size_t) 4 << 20)	/* recipients and framing */

const char *sm_config_dir;
const char *sm_progname;

enum sm_mode { MODE_DELIVER, MODE_MAILQ, MODE_NEWALIASES, MODE_SMTP, MODE_FLUSH };

struct sm_options {
    enum sm_mode mode;
    const char *sender;		/* -f / -r */
    const char *full_name;	/* -F */
    const char *notify;		/* -N, canonical */
    const char *alias_maps;	/* -oA */
    bool dot;			/* a "." line ends the input (no -i) */
    bool extract;		/* -t */
};

/* sm_usage - bad command line */
static _Noreturn void sm_usage(const char *why)
{
    msg_fatal_status(EX_USAGE, "%s; usage: %s [-t] [-i] [-f sender] [-F name] [-bm|-bp|-bi|-bs] "
		     "[-q] [-v] [-C config_dir] [-N dsn] [-R ret] [-V envid] [-B type] "
		     "[--] [recipient ...]", why, sm_progname);
}

/* sm_add_rcpt - sm_split_addresses callback */
static void sm_add_rcpt(const char *addr, void *ctx)
{
    struct sm_envelope *env = ctx;

    sm_envelope_add(env, addr, NULL, NULL);
}

/* sm_set_config_dir - -C: a directory, or its main.cf */
static void sm_set_config_dir(const char *arg)
{
    size_t len = strlen(arg);
    char *dir;

    if (len >= 8 && strcmp(arg + len - 8, "/main.cf") == 0)
	dir = mem_strndup(arg, len - 8);
    else
	dir = mem_strdup(arg);
    sm_config_dir = dir;
}

/* sm_option_arg - the argument of a flag: the rest of the cluster or the
 * next word */
static const char *sm_option_arg(int argc, char **argv, int *i, const char **cluster, int flag)
{
    const char *arg;

    if ((*cluster)[0]) {
	arg = *cluster;
	*cluster = "";
	return arg;
    }
    if (*i + 1 >= argc) {
	char why[64];

	fmt_buf_cut(why, sizeof(why), "option -%c requires an argument", flag);
	sm_usage(why);
    }
    return argv[++*i];
}

/* sm_parse_options - Sendmail's command line; returns the index of the
 * first recipient */
static int sm_parse_options(int argc, char **argv, struct sm_options *opt, struct sm_envelope *env)
{
    int i;

    for (i = 1; i < argc; i++) {
	const char *cluster = argv[i];

	if (cluster[0] != '-' || cluster[1] == 0)
	    break;
	if (strcmp(cluster, "--") == 0) {
	    i++;
	    break;
	}
	cluster++;
	while (*cluster) {
	    int flag = *cluster++;
	    const char *arg;

	    switch (flag) {
	    case '4': case '6': case 'G': case 'U': case 'm': case 'n': case 'x': case 'c':
		break;			/* accepted and ignored, as Postfix */
	    case 'i':
		opt->dot = false;
		break;
	    case 't':
		opt->extract = true;
		break;
	    case 'v':
		msg_verbose++;
		break;
	    case 'I':
		opt->mode = MODE_NEWALIASES;
		break;
	    case 'L': case 'O': case 'X': case 'h': case 'p': case 'e':
		(void) sm_option_arg(argc, argv, &i, &cluster, flag);
		break;			/* ignored, with their argument */
	    case 'C':
		sm_set_config_dir(sm_option_arg(argc, argv, &i, &cluster, flag));
		break;
	    case 'f':
	    case 'r':
		opt->sender = sm_option_arg(argc, argv, &i, &cluster, flag);
		break;
	    case 'F':
		opt->full_name = sm_option_arg(argc, argv, &i, &cluster, flag);
		break;
	    case 'N':
		arg = sm_option_arg(argc, argv, &i, &cluster, flag);
		if ((opt->notify = sm_parse_notify(arg)) == NULL)
		    sm_usage("-N needs \"never\" or a list of success, failure, delay");
		break;
	    case 'R':
		arg = sm_option_arg(argc, argv, &i, &cluster, flag);
		if (strcasecmp(arg, "full") == 0)
		    env->dsn_ret = "full";
		else if (strcasecmp(arg, "hdrs") == 0)
		    env->dsn_ret = "hdrs";
		else
		    sm_usage("-R needs full or hdrs");
		break;
	    case 'V':
		arg = sm_option_arg(argc, argv, &i, &cluster, flag);
		if (*arg == 0 || strlen(arg) > MAILDROP_ENVID_MAX)
		    sm_usage("-V needs an envelope ID of 1 to 100 characters");
		for (const char *p = arg; *p; p++)
		    if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
			sm_usage("-V envelope ID must be printable ASCII without spaces");
		env->dsn_envid = arg;
		break;
	    case 'B':
		arg = sm_option_arg(argc, argv, &i, &cluster, flag);
		if (strcasecmp(arg, "7bit") == 0)
		    env->body = "7bit";
		else if (strcasecmp(arg, "8bitmime") == 0)
		    env->body = "8bitmime";
		else
		    sm_usage("-B needs 7BIT or 8BITMIME");
		break;
	    case 'b':
		arg = sm_option_arg(argc, argv, &i, &cluster, flag);
		if (strcmp(arg, "m") == 0)
		    opt->mode = MODE_DELIVER;
		else if (strcmp(arg, "p") == 0)
		    opt->mode = MODE_MAILQ;
		else if (strcmp(arg, "i") == 0)
		    opt->mode = MODE_NEWALIASES;
		else if (strcmp(arg, "s") == 0)
		    opt->mode = MODE_SMTP;
		else {
		    char why[64];

		    fmt_buf_cut(why, sizeof(why), "unsupported mode -b%.8s", arg);
		    sm_usage(why);
		}
		break;
	    case 'o':
		arg = sm_option_arg(argc, argv, &i, &cluster, flag);
		if (strcmp(arg, "i") == 0)
		    opt->dot = false;
		else if (arg[0] == 'A' && arg[1])
		    opt->alias_maps = arg + 1;
		/* -om, -oem, -oQ..., -o7 etc.: ignored, as Postfix does */
		break;
	    case 'q':
		/* -q: flush; -qINTERVAL, -qRsite, -qIid, -qSsender: flush
		 * everything (one queue run is all posthorn has). */
		opt->mode = MODE_FLUSH;
		cluster = "";
		break;
	    default:{
		    char why[64];

		    fmt_buf_cut(why, sizeof(why), "unknown option -%c", flag);
		    sm_usage(why);
		}
	    }
	}
    }
    return i;
}

/* sm_load_config - main.cf of sm_config_dir; the whole table is
 * expanded and converted (config_apply) only when full is true: the
 * default path needs three parameters, and expanding every one of them
 * was most of sendmail's start-up work */
static void sm_load_config(bool full)
{
    const char *error;
    char *abs;

    if (sm_config_dir[0] != '/' && (abs = realpath(sm_config_dir, NULL)) != NULL)
	sm_config_dir = abs;
    config_init();
    config_set("config_directory", sm_config_dir);
    if (config_load(sm_config_dir, &error) < 0 || (full && config_apply(&error) < 0))
	msg_fatal_status(EX_CONFIG, "%s", error);
}

/* sm_config - one expanded parameter */
const char *sm_config(const char *name)
{
    const char *value, *error;

    if ((value = config_value_why(name, &error)) == NULL)
	msg_fatal_status(EX_CONFIG, "%s/main.cf: parameter %s: %s", sm_config_dir, name, error);
    return value;
}

/* sm_size_limit - message_size_limit, whoever declares it */
static long long sm_size_limit(void)
{
    const char *value = config_value("message_size_limit");
    long n;

    if (value && parse_long(value, &n) && n >= 0)
	return n;
    return DEF_SIZE_LIMIT;
}

/* sm_exec_tool - run posthorn (command_directory) or postdrop
 * (daemon_directory, a helper) in our place */
static _Noreturn void sm_exec_tool(const char *name, char **args)
{
    const char *dir = strcmp(name, "postdrop") == 0 ? "daemon_directory" : "command_directory";
    char path[4096];
    char *argv[16];
    int argc = 0;

    if (!fmt_try_buf(path, sizeof(path), "%s/%s", sm_config(dir), name))
	msg_fatal_status(EX_CONFIG, "%s too long", dir);
    argv[argc++] = (char *) name;
    argv[argc++] = (char *) "-c";
    argv[argc++] = (char *) sm_config_dir;
    if (msg_verbose && strcmp(name, "postdrop") == 0)
	argv[argc++] = (char *) "-v";
    while (*args && argc < 15)
	argv[argc++] = *args++;
    argv[argc] = NULL;
    execv(path, argv);
    msg_fatal_status(errno == ENOENT ? EX_CONFIG : EX_OSERR, "execute %s: %m", path);
}

/* sm_login_name - the login name of the real uid */
static const char *sm_login_name(void)
{
    struct passwd *pw = getpwuid(getuid());

    if (pw == NULL)
	msg_fatal_status(EX_UNAVAILABLE, "no login name found for user ID %lu",
			 (unsigned long) getuid());
    return mem_strdup(pw->pw_name);
}

/* sm_deliver_postdrop - stream stdin to postdrop as it is read (no
 * size limit, or one too large to hold in memory); the content size */
static long long sm_deliver_postdrop(const struct sm_options *opt, struct sm_envelope *env,
				     const char *header_from)
{
    struct sm_source in;
    struct sm_drop *drop;
    long long size;
    enum sm_copy_status st;
    int status;

    drop = sm_drop_open();
    if (sm_drop_envelope(drop, env) < 0) {
	sm_drop_abort(&drop);
	msg_fatal_status(EX_TEMPFAIL, "postdrop stopped reading (see its message above)");
    }
    sm_source_fd(&in, STDIN_FILENO);
    st = sm_copy_message(&in, sm_drop_stream(drop), opt->dot ? SM_COPY_DOT : 0,
			 sm_size_limit(), header_from, &size);
    sm_source_fini(&in);
    switch (st) {
    case SM_COPY_OK:
	break;
    case SM_COPY_TOO_BIG:
	sm_drop_abort(&drop);
	msg_fatal_status(EX_DATAERR, "message too large: more than %lld bytes (message_size_limit)",
			 sm_size_limit());
    case SM_COPY_READ_ERROR:
	sm_drop_abort(&drop);
	msg_fatal_status(EX_IOERR, "error reading the message from standard input: %m");
    case SM_COPY_WRITE_ERROR:
	status = sm_drop_finish(&drop);
	msg_fatal_status(status ? status : EX_TEMPFAIL, "postdrop failed (exit status %d)", status);
    }
    status = sm_drop_finish(&drop);
    if (status != 0)
	msg_fatal_status(status, "postdrop failed (exit status %d); the message was not queued",
			 status);
    return size;
}

/* sm_copy_error - the end of a failed copy (not a write error) */
static _Noreturn void sm_copy_error(enum sm_copy_status st)
{
    if (st == SM_COPY_TOO_BIG)
	msg_fatal_status(EX_DATAERR, "message too large: more than %lld bytes (message_size_limit)",
			 sm_size_limit());
    msg_fatal_status(EX_IOERR, "error reading the message from standard input: %m");
}

/* sm_deliver_memory - read stdin to the end into a maildrop file in
 * memory, then give it to the submit service (one connection, answered
 * after the commit), or to postdrop when that cannot be reached; the
 * content size */
static long long sm_deliver_memory(const struct sm_options *opt, struct sm_envelope *env,
				   const char *header_from)
{
    struct str *file = str_new((size_t) sm_size_limit() * 2 + SM_ENVELOPE_ROOM);
    struct stream *out = stream_open_memory(NULL, 0, file);
    struct sm_source in;
    struct sm_drop *drop;
    enum sm_copy_status st;
    long long size;
    char text[1100];
    int status;

    if (sm_drop_put_envelope(out, env) < 0)
	msg_fatal_status(EX_DATAERR, "envelope too large");
    sm_source_fd(&in, STDIN_FILENO);
    st = sm_copy_message(&in, out, opt->dot ? SM_COPY_DOT : 0, sm_size_limit(), header_from,
			 &size);
    sm_source_fini(&in);
    if (st == SM_COPY_WRITE_ERROR)
	msg_fatal_status(EX_SOFTWARE, "message does not fit in memory");
    if (st != SM_COPY_OK)
	sm_copy_error(st);
    if (qf_put(out, QF_REC_XEND, "", 0) < 0 || qf_put(out, QF_REC_END, "", 0) < 0
	|| stream_close(&out) < 0)
	msg_fatal_status(EX_SOFTWARE, "message does not fit in memory");

    switch (sm_submit(file, &status, text, sizeof(text))) {
    case SM_SUBMIT_QUEUED:
	if (msg_verbose)
	    msg_info("queued as %s by the submit service", text);
	str_free(&file);
	return size;
    case SM_SUBMIT_REFUSED:
	msg_fatal_status(status, "the message was not queued: %s", text);
    case SM_SUBMIT_LOST:
	/* Perhaps queued, perhaps not: twice is better than never. */
	msg_warn("%s; the message goes through postdrop (it may arrive twice)", text);
	break;
    case SM_SUBMIT_UNREACHABLE:
	if (msg_verbose)
	    msg_info("submit service: %s; using postdrop", text);
	break;
    }
    drop = sm_drop_open();
    if (stream_write(sm_drop_stream(drop), file->data, file->len) < 0) {
	status = sm_drop_finish_raw(&drop);
	msg_fatal_status(status ? status : EX_TEMPFAIL, "postdrop failed (exit status %d)", status);
    }
    str_free(&file);
    status = sm_drop_finish_raw(&drop);
    if (status != 0)
	msg_fatal_status(status, "postdrop failed (exit status %d); the message was not queued",
			 status);
    return size;
}

/* sm_deliver - the default mode: stdin into one maildrop file */
static int sm_deliver(const struct sm_options *opt, struct sm_envelope *env)
{
    char *header_from = NULL;
    long long size;

    if (env->rcpt_count == 0 && !opt->extract)
	msg_fatal_status(EX_USAGE, "no recipients: name them on the command line or use -t");
    for (size_t i = 0; i < env->rcpt_count; i++)
	if (opt->notify)
	    env->rcpts[i].notify = mem_strdup(opt->notify);
    env->extract = opt->extract;
    if (opt->full_name && *opt->full_name) {
	struct str *from = str_new(STR_MAX_DEFAULT);
	struct str *addr = str_new(STR_MAX_DEFAULT);

	str_appends_or_panic(addr, env->sender);
	if (*env->sender && address_at(env->sender, strlen(env->sender)) == NULL) {
	    str_appendc_or_panic(addr, '@');
	    str_appends_or_panic(addr, sm_config("myorigin"));
	}
	sm_header_from(from, opt->full_name, *env->sender ? addr->data : "MAILER-DAEMON");
	header_from = mem_strdup(from->data);
	str_free(&from);
	str_free(&addr);
    }

    if (sm_size_limit() > 0 && sm_size_limit() <= SM_MEMORY_LIMIT)
	size = sm_deliver_memory(opt, env, header_from);
    else
	size = sm_deliver_postdrop(opt, env, header_from);
    mem_free(&header_from);
    if (msg_verbose)
	msg_info("%lld bytes queued for %zu recipient%s%s", size, env->rcpt_count,
		 env->rcpt_count == 1 ? "" : "s", opt->extract ? " (plus those in the header)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    struct sm_options opt = {MODE_DELIVER, NULL, NULL, NULL, NULL, true, false};
    struct sm_envelope env;
    const char *slash, *env_dir;
    int first, status;

    sm_progname = (slash = strrchr(argv[0], '/')) ? slash + 1 : argv[0];
    if (!*sm_progname)
	sm_progname = "sendmail";
    msg_init(sm_progname, MSG_TO_STDERR);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(sm_progname, "mailq") == 0)
	opt.mode = MODE_MAILQ;
    else if (strcmp(sm_progname, "newaliases") == 0)
	opt.mode = MODE_NEWALIASES;
    sm_config_dir = (env_dir = getenv("POSTHORN_CONFIG_DIR")) && *env_dir ? env_dir : DEF_CONFIG_DIR;

    sm_envelope_init(&env);
    first = sm_parse_options(argc, argv, &opt, &env);
    sm_load_config(opt.mode == MODE_SMTP);

    switch (opt.mode) {
    case MODE_MAILQ:{
	    char *args[] = {(char *) "queue", (char *) "list", NULL};

	    if (first < argc)
		sm_usage("mailq takes no arguments");
	    sm_exec_tool("posthorn", args);
	}
    case MODE_FLUSH:{
	    char *args[] = {(char *) "-q", NULL};

	    if (first < argc)
		sm_usage("-q takes no recipients");
	    sm_exec_tool("postdrop", args);
	}
    case MODE_NEWALIASES:
	if (first < argc)
	    sm_usage("newaliases takes no arguments");
	return sm_newaliases(opt.alias_maps);
    case MODE_SMTP:{
	    struct stream *in = stream_open(STDIN_FILENO);
	    struct stream *out = stream_open(STDOUT_FILENO);

	    if (first < argc)
		sm_usage("-bs takes no recipients");
	    status = sm_smtp_session(in, out, sm_size_limit());
	    stream_free(&in);
	    stream_free(&out);
	    return status;
	}
    case MODE_DELIVER:
	break;
    }
    if (opt.sender) {
	env.sender = sm_strip_angle(opt.sender);
    } else {
	env.sender = (char *) sm_login_name();
    }
    for (int i = first; i < argc; i++)
	sm_split_addresses(argv[i], sm_add_rcpt, &env);
    status = sm_deliver(&opt, &env);
    sm_envelope_fini(&env);
    mem_free_ptr((void **) &opt.notify);
    return status;
}
