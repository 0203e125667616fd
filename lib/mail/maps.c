/* maps.c - the tables of a list-valued *_maps parameter, looked up in
 * order (see maps.h): one implementation for resolve.c and for
 * local-delivery's alias_maps. */

#include <string.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "maps.h"
#include "table.h"

/* One table of the list. */
struct maps_table {
    char *name;			/* as written in the parameter */
    struct table *table;	/* NULL until opened */
    bool warned;		/* its open error was logged */
};

struct maps {
    const char *param;
    int flags;
    bool optional;		/* param not set in main.cf: missing = empty */
    struct maps_table *v;
    size_t n;
};

static char maps_errbuf[1024];

/* maps_default_type - the table type for names without "type:" */
static const char *maps_default_type(void)
{
    return var_default_database_type && *var_default_database_type
	? var_default_database_type : TABLE_DEFAULT_TYPE;
}

/* maps_error - format *error_r; -1 */
static int maps_error(const char **error_r, const struct maps *m, const char *error)
{
    fmt_buf_cut(maps_errbuf, sizeof(maps_errbuf), "%s: %s%s", m->param, error,
		   strcmp(m->param, "alias_maps") == 0 ? " (run newaliases)" : "");
    *error_r = maps_errbuf;
    return -1;
}

/* maps_open - open t if it is not open: 1 open, 0 missing and optional
 * (treated as empty), -1 error */
static int maps_open(struct maps *m, struct maps_table *t, const char **error_r)
{
    const char *error;

    if (t->table != NULL) {
	if (!(m->flags & MAPS_REOPEN_CHANGED) || !table_file_changed(t->table))
	    return 1;
	table_close(&t->table);		/* rebuilt: read the new one */
    }
    if ((t->table = table_open(t->name, maps_default_type(), 0, &error)) != NULL) {
	t->warned = false;
	return 1;
    }
    if (m->optional) {
	if (!t->warned)
	    msg_warn("%s: %s (treated as empty until it is built)", m->param, error);
	t->warned = true;
	return 0;
    }
    if (!t->warned)
	msg_warn("%s: %s", m->param, error);
    t->warned = true;
    return maps_error(error_r, m, error);
}

/* maps_new - an empty list for param */
struct maps *maps_new(const char *param, int flags)
{
    struct maps *m = mem_zalloc(sizeof(*m));

    m->param = param;
    m->flags = flags;
    m->optional = !config_is_set(param);
    return m;
}

/* maps_add - one more table, opened at once */
void maps_add(struct maps *m, const char *name)
{
    struct maps_table *t;
    const char *error;

    m->v = mem_realloc(m->v, mem_size_mul(m->n + 1, sizeof(*m->v)));
    t = &m->v[m->n++];
    t->name = mem_strdup(name);
    t->table = NULL;
    t->warned = false;
    (void) maps_open(m, t, &error);
}

/* maps_add_cb - config_split callback */
static void maps_add_cb(const char *item, void *ctx)
{
    maps_add(ctx, item);
}

/* maps_from_param - a list from a parameter's value */
struct maps *maps_from_param(const char *param, const char *value, int flags)
{
    struct maps *m = maps_new(param, flags);

    config_split(value ? value : "", maps_add_cb, m);
    return m;
}

/* maps_lookup - key in each table in turn */
int maps_lookup(struct maps *m, const char *key, struct str *value, uid_t *owner_r,
		const char **error_r)
{
    const char *error;
    int rc;

    for (size_t i = 0; i < m->n; i++) {
	struct maps_table *t = &m->v[i];

	if ((rc = maps_open(m, t, error_r)) < 0)
	    return -1;
	if (rc == 0)
	    continue;
	if ((rc = table_lookup(t->table, key, value, &error)) < 0)
	    return maps_error(error_r, m, error);
	if (rc > 0) {
	    if (owner_r)
		*owner_r = table_owner(t->table);
	    return 1;
	}
    }
    return 0;
}

/* maps_all_open - no table of the list is missing */
bool maps_all_open(const struct maps *m)
{
    for (size_t i = 0; m && i < m->n; i++)
	if (m->v[i].table == NULL)
	    return false;
    return true;
}

/* maps_count - how many tables */
size_t maps_count(const struct maps *m)
{
    return m ? m->n : 0;
}

/* maps_free - close and free */
void maps_free(struct maps **mp)
{
    struct maps *m = *mp;

    if (m == NULL)
	return;
    for (size_t i = 0; i < m->n; i++) {
	table_close(&m->v[i].table);
	mem_free(&m->v[i].name);
    }
    mem_free(&m->v);
    mem_free(mp);
}
