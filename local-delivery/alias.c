/* alias.c - target lists and alias_maps.
 *
 * A target list is what an alias value, a .forward file or an :include:
 * file holds (aliases(5)): targets separated by commas or newlines;
 * "#" at the start of a line begins a comment; a target in double
 * quotes may contain commas and spaces ("\" escapes the next character
 * inside quotes). Each target is one of
 *     |command        a command (run by /bin/sh -c)
 *     /path           a file (a Maildir if it ends in "/")
 *     :include:/path  another target list, read from that file
 *     \user           that user's mailbox, no further expansion
 *     user, user@dom  an address (<user@dom> is accepted too)
 *
 * alias_lookup() reads alias_maps through lib/mail/maps.h itself (rather
 * than through resolve.c) because the safety rules need to know WHICH
 * table answered: commands and files from an alias run with the rights
 * of that table's owner (default_privs if root owns it). A table rebuilt
 * by newaliases is reopened at the next lookup. */

/* System library. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "config.h"
#include "resolve.h"
#include "maps.h"
#include "table.h"

/* This program. */
#include "local.h"

/* alias_list_init - an empty list */
void alias_list_init(struct alias_list *list)
{
    list->v = NULL;
    list->n = list->cap = 0;
}

/* alias_list_fini - free the targets */
void alias_list_fini(struct alias_list *list)
{
    size_t i;

    for (i = 0; i < list->n; i++)
	mem_free(&list->v[i].text);
    mem_free(&list->v);
    list->n = list->cap = 0;
}

/* al_add - classify one target and append it */
static int al_add(struct alias_list *list, const char *text, size_t len, const char **error_r)
{
    enum target_type type = TARGET_ADDRESS;
    const char *end = text + len;

    while (text < end && isspace((unsigned char) *text))
	text++;
    while (end > text && isspace((unsigned char) end[-1]))
	end--;
    if (text == end)
	return 0;			/* empty element: ignored */
    if (*text == '|') {
	type = TARGET_COMMAND;
	text++;
	while (text < end && isspace((unsigned char) *text))
	    text++;
	if (text == end) {
	    *error_r = "empty command after |";
	    return -1;
	}
    } else if (*text == '/') {
	type = TARGET_FILE;
    } else if (end - text >= 9 && strncasecmp(text, ":include:", 9) == 0) {
	type = TARGET_INCLUDE;
	text += 9;
	while (text < end && isspace((unsigned char) *text))
	    text++;
	if (text == end || *text != '/') {
	    *error_r = ":include: needs an absolute path";
	    return -1;
	}
    } else if (*text == '\\') {
	type = TARGET_MAILBOX;
	text++;
	if (text == end) {
	    *error_r = "empty name after \\";
	    return -1;
	}
    } else if (*text == '<' && end[-1] == '>') {
	text++;
	end--;
	if (text == end)
	    return 0;			/* <>: nothing */
    }
    if (memchr(text, 0, (size_t) (end - text)) != NULL) {
	*error_r = "NUL byte in a target";
	return -1;
    }
    if (list->n >= ALIAS_TARGETS_MAX) {
	*error_r = "too many targets";
	return -1;
    }
    if (list->n == list->cap) {
	list->cap = list->cap ? list->cap * 2 : 8;
	list->v = mem_realloc(list->v, mem_size_mul(list->cap, sizeof(list->v[0])));
    }
    list->v[list->n].type = type;
    list->v[list->n].text = mem_strndup(text, (size_t) (end - text));
    list->n++;
    return 0;
}

/* alias_split - parse a target list */
int alias_split(const char *text, size_t len, struct alias_list *list, const char **error_r)
{
    const char *cp = text, *end = text + len;
    struct str *elem = str_new(TABLE_ENTRY_MAX);
    bool line_start = true;
    int rc = 0;

    while (cp < end && rc == 0) {
	/* Between targets: separators, white space, comment lines. */
	if (*cp == '\n') {
	    line_start = true;
	    cp++;
	    continue;
	}
	if (*cp == ',' || isspace((unsigned char) *cp)) {
	    cp++;
	    continue;
	}
	if (*cp == '#' && line_start) {
	    while (cp < end && *cp != '\n')
		cp++;
	    continue;
	}
	line_start = false;
	str_reset(elem);
	while (cp < end && *cp != ',' && *cp != '\n') {
	    if (*cp == '"') {
		for (cp++; cp < end && *cp != '"'; cp++) {
		    if (*cp == '\\' && cp + 1 < end)
			cp++;
		    if (!str_try_appendc(elem, *cp))
			break;
		}
		if (cp >= end) {
		    *error_r = "missing closing quote";
		    rc = -1;
		    break;
		}
		cp++;			/* the closing quote */
		continue;
	    }
	    if (!str_try_appendc(elem, *cp)) {
		*error_r = "target too long";
		rc = -1;
		break;
	    }
	    cp++;
	}
	if (rc == 0)
	    rc = al_add(list, str_cstr(elem), str_len(elem), error_r);
    }
    str_free(&elem);
    return rc;
}

/* alias_maps, reopened at the next lookup when newaliases rebuilt a table
 * (one qmgr connection can carry many requests) */
static struct maps *al_maps;

/* alias_init - the tables of alias_maps */
void alias_init(void)
{
    al_maps = maps_from_param("alias_maps", var_alias_maps, MAPS_REOPEN_CHANGED);
}

/* alias_fini - close them */
void alias_fini(void)
{
    maps_free(&al_maps);
}

/* al_lookup_key - look one key up in every table, in order; *owner is
 * the owner of the table that answered */
static int al_lookup_key(const char *key, struct str *value, uid_t *owner, const char **error_r)
{
    return maps_lookup(al_maps, key, value, owner, error_r);
}

/* alias_lookup_exact - exactly key, in every table in order */
int alias_lookup_exact(const char *key, struct str *value, uid_t *owner, const char **error_r)
{
    return al_lookup_key(key, value, owner, error_r);
}

/* alias_lookup - key, then key less its extension */
int alias_lookup(const char *key, struct str *value, uid_t *owner, bool *stripped,
		 const char **error_r)
{
    struct str *user, *ext;
    int rc;

    *stripped = false;
    if ((rc = al_lookup_key(key, value, owner, error_r)) != 0)
	return rc;
    user = str_new(1024);
    ext = str_new(1024);
    if (resolve_split_extension(key, user, ext)) {
	rc = al_lookup_key(str_cstr(user), value, owner, error_r);
	*stripped = rc > 0;
    }
    str_free(&user);
    str_free(&ext);
    return rc;
}
