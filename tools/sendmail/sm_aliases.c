/* sm_aliases.c - newaliases (sendmail -bi): rebuild every table named in
 * alias_maps from its aliases(5) source, atomically (table_build). */

/* System library. */
#include <sysexits.h>

/* Base library. */
#include "msg.h"

/* Mail library. */
#include "config.h"
#include "table.h"

/* This program. */
#include "sendmail.h"

struct sm_alias_run {
    int built;
    int failed;
};

/* sm_build_one - config_split callback: build one alias table */
static void sm_build_one(const char *name, void *ctx)
{
    struct sm_alias_run *run = ctx;
    const char *error;
    size_t count;

    if (table_build_count(name, var_default_database_type, TABLE_FLAG_ALIASES, &count,
			  &error) < 0) {
	msg_warn("%s", error);
	run->failed++;
	return;
    }
    run->built++;
    if (msg_verbose)
	msg_info("%s: %zu aliases", name, count);
}

/* sm_newaliases - every alias table; 0, or EX_DATAERR if one failed */
int sm_newaliases(const char *alias_maps)
{
    struct sm_alias_run run = {0, 0};

    config_split(alias_maps ? alias_maps : var_alias_maps, sm_build_one, &run);
    if (run.failed)
	msg_fatal_status(EX_DATAERR, "%d alias table%s not built", run.failed,
			 run.failed == 1 ? "" : "s");
    return 0;
}
