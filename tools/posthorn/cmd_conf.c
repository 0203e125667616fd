/* cmd_conf.c - posthorn conf: print main.cf parameters, as postconf does.
 *
 *   posthorn conf            every parameter, "name = value", sorted
 *   posthorn conf -n         only those set in main.cf
 *   posthorn conf -d         the built-in defaults (main.cf is not read;
 *                            with -x they expand with each other)
 *   posthorn conf -x         values with $name expanded
 *   posthorn conf name ...   just those names (unknown: warning, exit 1)
 *
 * Values are printed as written (like postconf), so "$myhostname" shows
 * where a value comes from; -x prints what the daemons will use. */

/* System library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "posthorn.h"

struct conf_opts {
    bool only_set;		/* -n */
    bool defaults;		/* -d */
    bool expand;		/* -x */
};

/* conf_default_raw - the default of a table parameter as written */
static const char *conf_default_raw(const struct param_def *def, bool expand)
{
    const char *value;

    if (def->def != NULL && !expand)
	return def->def;
    value = config_default_value(def->name);
    return value ? value : "";
}

/* conf_print_one - print one name; false if it is unknown */
static bool conf_print_one(const char *name, const struct conf_opts *opts)
{
    const struct param_def *def = param_find(name);
    const char *value;

    if (opts->defaults) {
	if (def == NULL)
	    return false;
	value = conf_default_raw(def, opts->expand);
    } else {
	value = opts->expand ? config_value(name) : config_raw(name);
	if (value == NULL)
	    return false;
	if (opts->only_set && config_where(name) == NULL)
	    return true;
    }
    if (*value)
	printf("%s = %s\n", name, value);
    else
	printf("%s =\n", name);
    return true;
}

/* conf_print_cb - config_names callback */
static void conf_print_cb(const char *name, void *ctx)
{
    const struct conf_opts *opts = ctx;

    if (opts->defaults && param_find(name) == NULL)
	return;
    (void) conf_print_one(name, opts);
}

/* cmd_conf - posthorn conf [-n | -d] [-x] [name ...] */
int cmd_conf(int argc, char **argv)
{
    struct conf_opts opts = {false, false, false};
    int status = 0;
    int ch;

    while ((ch = getopt(argc, argv, "+ndx")) != -1) {
	switch (ch) {
	case 'n':
	    opts.only_set = true;
	    break;
	case 'd':
	    opts.defaults = true;
	    break;
	case 'x':
	    opts.expand = true;
	    break;
	default:
	    return ph_usage("conf");
	}
    }
    if (opts.only_set && opts.defaults) {
	fprintf(stderr, "posthorn: conf: -n and -d exclude each other\n");
	return ph_usage("conf");
    }
    for (int i = optind; i < argc; i++) {
	if (strchr(argv[i], '=') != NULL) {
	    fprintf(stderr, "posthorn: conf: setting parameters is not supported; edit %s/main.cf\n",
		    ph_config_dir);
	    return ph_usage("conf");
	}
    }
    /* -d shows the built-in defaults: main.cf plays no part, also not in
     * what -d -x expands them with (postconf -d does the same). Otherwise
     * a broken main.cf is reported but the parameters that could be read
     * are still shown. */
    if (opts.defaults) {
	const char *error;

	config_init();
	if (config_apply(&error) < 0)
	    msg_panic("built-in defaults do not apply: %s", error);
    } else if (ph_load_config(false) < 0) {
	status = 1;
    }
    if (optind >= argc) {
	config_names(conf_print_cb, &opts);
    } else {
	for (int i = optind; i < argc; i++) {
	    if (!conf_print_one(argv[i], &opts)) {
		fflush(stdout);
		msg_warn("unknown parameter: %s", argv[i]);
		status = 1;
	    }
	}
    }
    fflush(stdout);
    return status;
}
