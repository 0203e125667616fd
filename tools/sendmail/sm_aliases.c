/* sm_aliases.c - newaliases (sendmail -bi): rebuild every table named in
 * alias_maps from its aliases(5) source. Each table is built by the
 * table builder of the posthorn tool ("$command_directory/posthorn map
 * -a NAME", atomically through table_build), so that sendmail itself
 * links no database library: it starts once per submitted message and
 * should load nothing but libc. */

/* System library. */
#include <errno.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "sendmail.h"

struct sm_alias_run {
    const char *posthorn;		/* $command_directory/posthorn */
    int built;
    int failed;
};

/* sm_build_one - config_split callback: build one alias table */
static void sm_build_one(const char *name, void *ctx)
{
    struct sm_alias_run *run = ctx;
    char *argv[9];
    int argc = 0, status;
    pid_t pid;

    argv[argc++] = (char *) "posthorn";
    argv[argc++] = (char *) "-c";
    argv[argc++] = (char *) sm_config_dir;
    if (msg_verbose)
	argv[argc++] = (char *) "-v";
    argv[argc++] = (char *) "map";
    argv[argc++] = (char *) "-a";
    argv[argc++] = (char *) "--";
    argv[argc++] = (char *) name;
    argv[argc] = NULL;
    if ((pid = sm_spawn(run->posthorn, argv, -1)) < 0) {
	msg_warn("execute %s: %m", run->posthorn);
	run->failed++;
	return;
    }
    while (waitpid(pid, &status, 0) < 0) {
	if (errno != EINTR)
	    msg_fatal_status(EX_OSERR, "waitpid: %m");
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
	run->built++;
	if (msg_verbose)
	    msg_info("%s: built", name);
    } else {
	run->failed++;			/* posthorn said why on stderr */
    }
}

/* sm_newaliases - every alias table; 0, or EX_DATAERR if one failed */
int sm_newaliases(const char *alias_maps)
{
    struct sm_alias_run run = {NULL, 0, 0};
    char path[4096];

    if (!fmt_try_buf(path, sizeof(path), "%s/posthorn", sm_config("command_directory")))
	msg_fatal_status(EX_CONFIG, "command_directory too long");
    run.posthorn = path;
    config_split(alias_maps ? alias_maps : sm_config("alias_maps"), sm_build_one, &run);
    if (run.failed)
	msg_fatal_status(EX_DATAERR, "%d alias table%s not built", run.failed,
			 run.failed == 1 ? "" : "s");
    return 0;
}
