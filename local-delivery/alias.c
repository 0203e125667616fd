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
 * alias_lookup() reads alias_maps itself (rather than through resolve.c)
 * because the safety rules need to know WHICH table answered: commands
 * and files from an alias run with the rights of that table's owner
 * (default_privs if root owns it). A table rebuilt by newaliases is
 * reopened at the next lookup. */

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
		    if (!str_appendc(elem, *cp))
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
	    if (!str_appendc(elem, *cp)) {
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

/* One table of alias_maps. */
struct al_table {
    char *name;
    struct table *table;
    char *built;		/* the file lookups read */
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    uid_t owner;
};

static struct al_table *al_tables;
static size_t al_count;

/* al_add_table - config_split callback */
static void al_add_table(const char *item, void *ctx)
{
    (void) ctx;
    al_tables = mem_realloc(al_tables, mem_size_mul(al_count + 1, sizeof(al_tables[0])));
    memset(&al_tables[al_count], 0, sizeof(al_tables[0]));
    al_tables[al_count].name = mem_strdup(item);
    al_count++;
}

/* alias_init - remember the tables of alias_maps (opened on demand) */
void alias_init(void)
{
    config_split(var_alias_maps, al_add_table, NULL);
}

/* alias_fini - close them */
void alias_fini(void)
{
    size_t i;

    for (i = 0; i < al_count; i++) {
	table_close(&al_tables[i].table);
	mem_free(&al_tables[i].name);
	mem_free(&al_tables[i].built);
    }
    mem_free(&al_tables);
    al_count = 0;
}

/* al_open - open t, or reopen it when its built file changed */
static int al_open(struct al_table *t, const char **error_r)
{
    static char errbuf[1024];
    struct str *source, *built;
    char type[32];
    struct stat st;
    const char *err;

    if (t->built == NULL) {
	source = str_new(8192);
	built = str_new(8192);
	if (table_paths(t->name, var_default_database_type, type, sizeof(type), source, built,
			&err) < 0) {
	    str_free(&source);
	    str_free(&built);
	    (void) fmt_buf(errbuf, sizeof(errbuf), "alias_maps: %s", err);
	    *error_r = errbuf;
	    return -1;
	}
	t->built = mem_strdup(str_cstr(built));
	str_free(&source);
	str_free(&built);
    }
    if (stat(t->built, &st) < 0) {
	table_close(&t->table);
	if (errno == ENOENT && !config_is_set("alias_maps"))
	    return 0;			/* the default table, not built yet */
	(void) fmt_buf(errbuf, sizeof(errbuf), "alias_maps: %s: %s (run newaliases)", t->built,
		       strerror(errno));
	*error_r = errbuf;
	return -1;
    }
    if (t->table != NULL && st.st_dev == t->dev && st.st_ino == t->ino
	&& st.st_mtim.tv_sec == t->mtime.tv_sec && st.st_mtim.tv_nsec == t->mtime.tv_nsec)
	return 1;
    table_close(&t->table);
    if ((t->table = table_open(t->name, var_default_database_type, 0, &err)) == NULL) {
	(void) fmt_buf(errbuf, sizeof(errbuf), "alias_maps: %s", err);
	*error_r = errbuf;
	return -1;
    }
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->mtime = st.st_mtim;
    t->owner = st.st_uid;
    return 1;
}

/* al_lookup_key - look one key up in every table, in order */
static int al_lookup_key(const char *key, struct str *value, uid_t *owner, const char **error_r)
{
    size_t i;
    int rc;

    for (i = 0; i < al_count; i++) {
	if ((rc = al_open(&al_tables[i], error_r)) < 0)
	    return -1;
	if (rc == 0)
	    continue;
	if ((rc = table_lookup(al_tables[i].table, key, value, error_r)) != 0) {
	    if (rc > 0)
		*owner = al_tables[i].owner;
	    return rc;
	}
    }
    return 0;
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
