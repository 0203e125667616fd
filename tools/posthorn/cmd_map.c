/* cmd_map - posthorn map: build a lookup table from its text, or query it.
 *
 *   posthorn map [-f] cdb:/etc/posthorn/virtual      build (atomically)
 *   posthorn map -a cdb:/etc/posthorn/aliases        aliases(5) syntax
 *   posthorn map [-f] -q KEY cdb:/etc/posthorn/virtual
 *
 * A name without "type:" uses $default_database_type. Building is
 * table_build(): the new file is written beside the old one and renamed
 * over it, so a daemon never sees half a table. -q prints the value and
 * exits 0, or exits 1 if the key is absent; errors exit 2 (so a script
 * can tell "no" from "could not ask"). -f keeps keys as written (no
 * case folding); use it both when building and when querying. -a reads
 * the source in aliases(5) syntax ("name: target, ..."), as newaliases
 * does. */

/* System library. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "table.h"

/* This program. */
#include "posthorn.h"

/* cmd_map - posthorn map [-a] [-f] [-q key] [type:]file */
int cmd_map(int argc, char **argv)
{
    const char *query = NULL;
    const char *default_type;
    const char *error;
    int flags = 0;
    int ch;

    while ((ch = getopt(argc, argv, "+afq:")) != -1) {
	switch (ch) {
	case 'a':
	    flags |= TABLE_FLAG_ALIASES;
	    break;
	case 'f':
	    flags |= TABLE_FLAG_NO_FOLD;
	    break;
	case 'q':
	    query = optarg;
	    break;
	default:
	    return ph_usage("map");
	}
    }
    if (argc - optind != 1)
	return ph_usage("map");

    /* Only default_database_type is needed: a table can be built before
     * main.cf exists, so a missing main.cf is not an error here. */
    (void) ph_load_config(true);
    default_type = var_default_database_type && *var_default_database_type ?
	var_default_database_type : TABLE_DEFAULT_TYPE;

    if (query) {
	struct table *t;
	struct str *value;
	int found;

	if ((t = table_open(argv[optind], default_type, flags, &error)) == NULL) {
	    ph_error("%s", error);
	    return 2;
	}
	value = str_new(TABLE_ENTRY_MAX);
	found = table_lookup(t, query, value, &error);
	if (found < 0)
	    ph_error("%s", error);
	else if (found > 0)
	    printf("%s\n", str_cstr(value));
	str_free(&value);
	table_close(&t);
	fflush(stdout);
	return found > 0 ? 0 : found == 0 ? 1 : 2;
    } else {
	size_t count = 0;

	if (table_build_count(argv[optind], default_type, flags, &count, &error) < 0) {
	    ph_error("%s", error);
	    return 1;
	}
	if (msg_verbose)
	    msg_info("%s: %zu entries", argv[optind], count);
	return 0;
    }
}
