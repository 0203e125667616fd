/* maps.h - the tables of a list-valued *_maps parameter, looked up in order.
 *
 * alias_maps, virtual_alias_maps, transport_maps... name one or more
 * tables ("cdb:/etc/posthorn/aliases, hash:/etc/posthorn/more"); a key
 * is looked up in each in turn and the first table that has it answers.
 * This module is the one implementation of that for every daemon
 * (resolve.c, local-delivery's aliases).
 *
 * Tables are opened when the list is made and, if that failed, again at
 * each lookup. A table that is missing while its parameter is NOT set in
 * main.cf (a built-in default such as alias_maps on a fresh host, before
 * the first newaliases) counts as empty, with one warning; any other
 * open or read error fails the lookup (the caller defers: 4.3.0), with
 * one warning per table. With MAPS_REOPEN_CHANGED a table whose built
 * file was rebuilt is reopened at the next lookup (a stat per table and
 * lookup; for a daemon that serves many requests over one connection,
 * where the skeleton's restart on a changed table comes late).
 *
 * Error texts (*error_r) name the parameter and the table, and live in a
 * static buffer valid until the next maps_* call. */
#ifndef POSTHORN_MAPS_H
#define POSTHORN_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

#define MAPS_REOPEN_CHANGED	(1 << 0)	/* reopen a rebuilt table at lookup */

struct maps;

/* maps_new - an empty list for param (its name is kept, not copied:
 * pass a string that outlives the list, normally a literal) */
struct maps *maps_new(const char *param, int flags);
/* maps_add - one table name ("type:path", or a path of the default
 * type), tried after those added before; opened at once */
void maps_add(struct maps *m, const char *name);
/* maps_from_param - maps_new plus maps_add for each element of value */
struct maps *maps_from_param(const char *param, const char *value, int flags);

/* maps_lookup - key in each table in turn: 1 found (*value set; if
 * owner_r is not NULL, *owner_r is the owner of the table that
 * answered), 0 not found, -1 and *error_r on an error */
int maps_lookup(struct maps *m, const char *key, struct str *value, uid_t *owner_r,
		const char **error_r);

/* maps_all_open - every table of the list is open (none missing) */
bool maps_all_open(const struct maps *m);

/* maps_count - how many tables the list names */
size_t maps_count(const struct maps *m);

/* maps_free - close every table, free the list, set *mp to NULL */
void maps_free(struct maps **mp);

#endif
