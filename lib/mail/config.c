/* config.c - main.cf parameters: the table, the parser, the values.
 *
 * The table param_table is built from params.def with an X-macro, which
 * also defines each var_<name> exactly once. Raw values (as written in
 * main.cf, given with -o, or the defaults) live in a small store of
 * entries, one per known name; config_apply expands $name references,
 * converts each table parameter by its type, checks its bounds and only
 * then, when every parameter is good, stores the results into var_*.
 * So a failed reload leaves the previous var_* values in place.
 *
 * Expansion results are cached per entry and invalidated by a generation
 * counter that any change of a raw value bumps. A stack of the entries
 * being expanded detects loops and limits the depth. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "errtext.h"
#include "file_read.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"

/* The variables, one definition each. */
#define PARAM(type, name, def, min, max, doc) PARAM_TYPE_##type var_##name;
#include "params.def"
#undef PARAM

/* The table. */
#define PARAM(type, name, def, min, max, doc) \
    { #name, PARAM_##type, def, min, max, &var_##name },
const struct param_def param_table[] = {
#include "params.def"
};
#undef PARAM
const size_t param_count = sizeof(param_table) / sizeof(param_table[0]);

#define CONFIG_MAX_FILE		((size_t) 4 << 20)	/* main.cf size limit */
#define CONFIG_MAX_VALUE	STR_MAX_DEFAULT		/* one (expanded) value */
#define CONFIG_MAX_DEPTH	32			/* nested $name */
#define CONFIG_MAX_COND_DEPTH	100			/* nested ${name?...} */

/* Lenient mode (posthorn check): errors go to the reporter, and loading
 * and applying go on with what is good. */
static void (*config_reporter)(const char *error, void *ctx);
static void *config_reporter_ctx;
static int config_reported;

/* One known name: a table parameter or a name set in main.cf / -o.
 * Every process holds one per parameter, so they are kept small: a
 * table parameter's name and default text point into param_table (only
 * the other names and the computed defaults are copies), and the array
 * and the index are sized once for the table (docs/bench.md, POP3
 * memory: 40-50 KiB less heap in every process). */
struct cfg_entry {
    char *name;				/* a copy if def is NULL, else def->name */
    const struct param_def *def;	/* NULL: not a table parameter */
    char *def_text;			/* default raw text (table only): a copy
					 * if computed, else def->def */
    char *raw;				/* set value, NULL: use the default */
    char *where;			/* "file:line" or "-o name=value" */
    bool in_file;			/* set by a main.cf-syntax file */
    char *expanded;			/* cache, valid if exp_gen == gen */
    unsigned long exp_gen;
    char *def_expanded;			/* cache for config_default_value */
    unsigned long def_gen;
};

static struct cfg_entry *entries;
static size_t entry_count, entry_alloc;
static unsigned long generation = 1;
static bool initialized;
static uint32_t *entry_index;		/* open addressing: entry number + 1, 0 = empty */
static size_t index_cap;		/* a power of two, or 0 */
static bool init_applying;		/* config_init is applying defaults */

static struct errtext config_error;	/* the text behind every error_r */

/* The chain of names being expanded (loop detection, error text). */
static const struct cfg_entry *exp_stack[CONFIG_MAX_DEPTH];
static size_t exp_depth;

/* STR values handed out through var_*, freed on the next commit. */
static char **str_vars_owned;

static int expand_text(const char *text, struct str *out, const struct config_expander *x,
		       int depth, const char **error_r);
static const struct config_expander cfg_expander;
static bool is_computed(const struct cfg_entry *e);

/* param_find - the table entry for name, or NULL */
const struct param_def *param_find(const char *name)
{
    for (size_t i = 0; i < param_count; i++)
	if (strcmp(param_table[i].name, name) == 0)
	    return &param_table[i];
    return NULL;
}

/* param_type_name - lower-case name of a parameter type */
const char *param_type_name(enum param_type type)
{
    switch (type) {
    case PARAM_STR:
	return "string";
    case PARAM_RAW:
	return "string (expanded when used)";
    case PARAM_INT:
	return "integer";
    case PARAM_BOOL:
	return "boolean";
    case PARAM_TIME:
	return "time";
    case PARAM_SIZE:
	return "size";
    }
    return "unknown";
}

/* is_name_char - may c appear in a parameter name? */
static bool is_name_char(int c)
{
    return isalnum((unsigned char) c) || c == '_';
}

/* entry_hash - FNV-1a over a name */
static size_t entry_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
	h ^= (unsigned char) name[i];
	h *= 16777619u;
    }
    return h;
}

/* entry_find - the entry for name, or NULL */
static struct cfg_entry *entry_find(const char *name, size_t len)
{
    size_t slot, i;

    if (index_cap == 0)
	return NULL;
    for (slot = entry_hash(name, len) & (index_cap - 1); entry_index[slot] != 0;
	 slot = (slot + 1) & (index_cap - 1)) {
	i = entry_index[slot] - 1;
	if (strncmp(entries[i].name, name, len) == 0 && entries[i].name[len] == 0)
	    return &entries[i];
    }
    return NULL;
}

/* index_insert - put entry i into the hash index (which has room) */
static void index_insert(size_t i)
{
    size_t slot = entry_hash(entries[i].name, strlen(entries[i].name)) & (index_cap - 1);

    while (entry_index[slot] != 0)
	slot = (slot + 1) & (index_cap - 1);
    entry_index[slot] = (uint32_t) (i + 1);
}

/* entry_add - a new entry (the name must not exist yet); def: the
 * table parameter, whose name it keeps without a copy */
static struct cfg_entry *entry_add(const char *name, const struct param_def *def)
{
    struct cfg_entry *e;

    if (entry_count == entry_alloc) {
	/* the table's parameters and a few names of main.cf's own */
	entry_alloc = entry_alloc ? entry_alloc * 2 : param_count + 32;
	entries = mem_realloc(entries, mem_size_mul(entry_alloc, sizeof(*entries)));
    }
    if (entry_count >= UINT32_MAX - 1)
	msg_panic("config: too many parameter names");
    e = &entries[entry_count++];
    memset(e, 0, sizeof(*e));
    e->def = def;
    e->name = def ? (char *) def->name : mem_strdup(name);
    /* Keep the index at most half full: rebuild it large enough for
     * the table's parameters and then twice as large each time. */
    if (mem_size_mul(entry_count, 2) > index_cap) {
	mem_free(&entry_index);
	index_cap = 256;
	while (index_cap < mem_size_mul(entry_count, 2) || index_cap < mem_size_mul(param_count, 2))
	    index_cap = mem_size_mul(index_cap, 2);
	entry_index = mem_zalloc(mem_size_mul(index_cap, sizeof(*entry_index)));
	for (size_t i = 0; i < entry_count; i++)
	    index_insert(i);
    } else {
	index_insert(entry_count - 1);
    }
    return e;
}

/* entry_free_all - forget every entry */
static void entry_free_all(void)
{
    for (size_t i = 0; i < entry_count; i++) {
	if (entries[i].def == NULL)
	    mem_free(&entries[i].name);
	if (is_computed(&entries[i]))
	    mem_free(&entries[i].def_text);
	mem_free(&entries[i].raw);
	mem_free(&entries[i].where);
	mem_free(&entries[i].expanded);
	mem_free(&entries[i].def_expanded);
    }
    mem_free(&entries);
    mem_free(&entry_index);
    index_cap = 0;
    entry_count = entry_alloc = 0;
}

/* default_hostname - this system's name, computed once per process */
static const char *default_hostname(void)
{
    static char name[256];
    struct addrinfo hints, *res = NULL;

    if (name[0])
	return name;
    if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == 0) {
	str_copy_out_or_panic(name, sizeof(name), "localhost.localdomain");
	return name;
    }
    name[sizeof(name) - 1] = 0;
    if (strchr(name, '.') == NULL) {
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	hints.ai_family = AF_UNSPEC;
	if (getaddrinfo(name, NULL, &hints, &res) == 0) {
	    if (res && res->ai_canonname && strchr(res->ai_canonname, '.')
		&& strlen(res->ai_canonname) < sizeof(name))
		str_copy_out_or_panic(name, sizeof(name), res->ai_canonname);
	    freeaddrinfo(res);
	}
    }
    if (strchr(name, '.') == NULL) {
	char tmp[sizeof(name)];

	if (!fmt_try_buf(tmp, sizeof(tmp), "%s.localdomain", name))
	    str_copy_out_or_panic(tmp, sizeof(tmp), "localhost.localdomain");
	str_copy_out_or_panic(name, sizeof(name), tmp);
    }
    return name;
}

/* domain_of - host name less its first label, or "localdomain" */
static const char *domain_of(const char *host)
{
    const char *dot = strchr(host, '.');

    return (dot && dot[1]) ? dot + 1 : "localdomain";
}

/* is_computed - a table parameter whose default is computed */
static bool is_computed(const struct cfg_entry *e)
{
    return e->def && e->def->def == NULL;
}

/* bump - note that a raw value changed: caches are stale */
static void bump(void)
{
    generation++;
}

/* config_init - forget everything, then set the defaults */
void config_init(void)
{
    const char *err;

    entry_free_all();
    exp_depth = 0;
    bump();
    for (size_t i = 0; i < param_count; i++) {
	struct cfg_entry *e = entry_add(param_table[i].name, &param_table[i]);

	if (param_table[i].def)
	    e->def_text = (char *) param_table[i].def;
	else if (strcmp(e->name, "myhostname") != 0 && strcmp(e->name, "mydomain") != 0)
	    msg_panic("config_init: parameter %s has no default and no computed default",
		      e->name);
	/* Computed defaults are filled in by entry_raw() on first use:
	 * most programs set myhostname in main.cf, and the name lookup
	 * costs more than the rest of start-up. */
    }
    initialized = true;
    init_applying = true;
    if (config_apply(&err) < 0)
	msg_panic("config_init: the built-in defaults are bad: %s", err);
    init_applying = false;
    bump();
}

/* need_init - the store exists */
static void need_init(void)
{
    if (!initialized)
	config_init();
}

/* store - set a raw value with its origin */
static void store(const char *name, const char *value, const char *where, bool in_file)
{
    struct cfg_entry *e = entry_find(name, strlen(name));

    if (e == NULL)
	e = entry_add(name, NULL);
    mem_free(&e->raw);
    mem_free(&e->where);
    e->raw = mem_strdup(value);
    e->where = where ? mem_strdup(where) : NULL;
    e->in_file = in_file;
    bump();
}

/* check_name - a valid parameter name? false plus a reason */
static bool check_name(const char *name, const char **why)
{
    if (*name == 0) {
	*why = "missing parameter name before '='";
	return false;
    }
    for (const char *cp = name; *cp; cp++) {
	if (!is_name_char(*cp)) {
	    static char why_buf[64];

	    if (isprint((unsigned char) *cp) && *cp != ' ')
		fmt_buf_or_panic(why_buf, sizeof(why_buf), "bad character '%c' in parameter name", *cp);
	    else
		fmt_buf_or_panic(why_buf, sizeof(why_buf), "bad character 0x%02x in parameter name",
				 (unsigned char) *cp);
	    *why = why_buf;
	    return false;
	}
    }
    return true;
}

/* trim - remove white space at both ends, in place */
static char *trim(char *text)
{
    char *end;

    while (*text == ' ' || *text == '\t')
	text++;
    end = text + strlen(text);
    while (end > text && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
	*--end = 0;
    return text;
}

/* One assignment found by the parser, committed after the whole file parsed. */
struct pending {
    char *name;
    char *value;
    int line;
};

/* parse_assignment - split a logical line into a pending assignment */
static int parse_assignment(const char *path, int line, char *text, struct pending *p,
			    const char **error_r)
{
    char *eq = strchr(text, '=');
    char *name;
    const char *why;

    if (eq == NULL) {
	name = trim(text);
	for (char *cp = name; *cp; cp++) {
	    if (!is_name_char(*cp)) {
		*cp = 0;
		break;
	    }
	}
	return errtext_fail(&config_error, error_r, "%s:%d: missing '=' after parameter name \"%s\"", path, line, name);
    }
    *eq = 0;
    name = trim(text);
    if (!check_name(name, &why))
	return errtext_fail(&config_error, error_r, "%s:%d: %s", path, line, why);
    p->name = mem_strdup(name);
    p->value = mem_strdup(trim(eq + 1));
    p->line = line;
    return 0;
}

/* report_error - lenient mode (a reporter is set): hand the error to it
 * and go on; strict mode: the error ends the operation (-1) */
static int report_error(const char *error)
{
    if (config_reporter == NULL)
	return -1;
    config_reporter(error, config_reporter_ctx);
    config_reported++;
    return 0;
}

/* config_set_reporter - see config.h */
void config_set_reporter(void (*fn)(const char *error, void *ctx), void *ctx)
{
    config_reporter = fn;
    config_reporter_ctx = ctx;
    config_reported = 0;
}

/* config_reported_errors - errors handed to the reporter so far */
int config_reported_errors(void)
{
    return config_reported;
}

/* parse_text - the main.cf syntax of buf (named path in messages) */
static int parse_text(const char *path, struct str *buf, const char **error_r)
{
    struct str logical;
    struct pending *list = NULL;
    size_t count = 0, alloc = 0;
    int logical_line = 0, lineno = 0, ret = 0;
    const char *cp, *end, *nl;

    if (str_has_nul(buf))
	return errtext_fail(&config_error, error_r, "%s: file contains a NUL byte", path);
    str_init(&logical, CONFIG_MAX_FILE);
    cp = str_cstr(buf);
    end = cp + str_len(buf);
    /* One extra round at the end flushes the last logical line. */
    for (;;) {
	const char *line = cp, *lend = cp;
	bool at_eof = (cp >= end), blank = true, comment = false, cont = false;

	if (!at_eof) {
	    nl = memchr(cp, '\n', (size_t) (end - cp));
	    lend = nl ? nl : end;
	    cp = nl ? nl + 1 : end;
	    lineno++;
	    for (const char *s = line; s < lend; s++) {
		if (*s != ' ' && *s != '\t' && *s != '\r') {
		    blank = false;
		    comment = (*s == '#');
		    break;
		}
	    }
	    if (blank || comment)
		continue;
	    cont = (*line == ' ' || *line == '\t');
	    if (cont) {
		if (logical_line == 0) {
		    ret = errtext_fail(&config_error, error_r, "%s:%d: continuation line without a preceding parameter",
				    path, lineno);
		    if (report_error(*error_r) == 0) {
			ret = 0;
			continue;
		    }
		    break;
		}
		/* Join with one space; trimming happens on the whole line. */
		while (str_len(&logical) > 0 && (logical.data[logical.len - 1] == ' '
			|| logical.data[logical.len - 1] == '\t' || logical.data[logical.len - 1] == '\r'))
		    (void) str_truncate(&logical, logical.len - 1);
		while (line < lend && (*line == ' ' || *line == '\t'))
		    line++;
		/* logical holds at most the whole file (CONFIG_MAX_FILE) */
		str_appendc_or_panic(&logical, ' ');
		str_append_or_panic(&logical, line, (size_t) (lend - line));
		continue;
	    }
	}
	/* A new logical line starts (or the file ended): finish the previous one. */
	if (logical_line > 0) {
	    if (count == alloc) {
		alloc = alloc ? alloc * 2 : 32;
		list = mem_realloc(list, mem_size_mul(alloc, sizeof(*list)));
	    }
	    if (parse_assignment(path, logical_line, logical.data, &list[count], error_r) == 0)
		count++;
	    else if (report_error(*error_r) < 0) {
		ret = -1;
		break;
	    }
	    logical_line = 0;
	}
	if (at_eof)
	    break;
	logical_line = lineno;
	str_setn_or_panic(&logical, line, (size_t) (lend - line));
    }
    /* Commit only a file that parsed completely; the last assignment wins. */
    for (size_t i = 0; i < count; i++) {
	if (ret == 0) {
	    char where[PATH_MAX + 32];

	    if (!fmt_try_buf(where, sizeof(where), "%s:%d", path, list[i].line)) {
		/* cut, and that is fine: a "where" is for people */
	    }
	    store(list[i].name, list[i].value, where, true);
	}
	mem_free(&list[i].name);
	mem_free(&list[i].value);
    }
    mem_free(&list);
    str_fini(&logical);
    return ret;
}

/* config_load_file - read one main.cf-syntax file */
int config_load_file(const char *path, const char **error_r)
{
    struct str buf;
    const char *why;
    int ret;

    need_init();
    str_init(&buf, CONFIG_MAX_FILE);
    if (file_read_path(path, &buf, CONFIG_MAX_FILE, &why) < 0)
	ret = errtext_fail(&config_error, error_r, "%s", why);
    else
	ret = parse_text(path, &buf, error_r);
    str_fini(&buf);
    return ret;
}

/* config_load_fd - main.cf text from a descriptor (master's snapshot),
 * read from offset 0; path names it in messages */
int config_load_fd(int fd, const char *path, const char **error_r)
{
    struct str buf;
    const char *why;
    int ret;

    need_init();
    str_init(&buf, CONFIG_MAX_FILE);
    if (file_read_fd(fd, path, &buf, CONFIG_MAX_FILE, &why) < 0)
	ret = errtext_fail(&config_error, error_r, "%s", why);
    else
	ret = parse_text(path, &buf, error_r);
    str_fini(&buf);
    return ret;
}

/* config_load - read config_dir/main.cf (missing file is an error) */
int config_load(const char *config_dir, const char **error_r)
{
    char path[PATH_MAX];

    if (!fmt_try_buf(path, sizeof(path), "%s/main.cf", config_dir))
	return errtext_fail(&config_error, error_r, "configuration directory name is too long: %s", config_dir);
    return config_load_file(path, error_r);
}

/* config_override - "name=value", as from master.cf -o or the command line */
int config_override(const char *assignment, const char **error_r)
{
    char *copy, *eq, *name, *where;
    const char *why;
    size_t where_len;

    need_init();
    copy = mem_strdup(assignment);
    eq = strchr(copy, '=');
    if (eq == NULL) {
	mem_free(&copy);
	return errtext_fail(&config_error, error_r, "-o %s: missing '=' after parameter name", assignment);
    }
    *eq = 0;
    name = trim(copy);
    if (!check_name(name, &why)) {
	errtext_fail(&config_error, error_r, "-o %s: %s", assignment, why);
	mem_free(&copy);
	return -1;
    }
    where_len = mem_size_add(strlen(assignment), 4);
    where = mem_alloc(where_len);
    fmt_buf_or_panic(where, where_len, "-o %s", assignment);
    store(name, trim(eq + 1), where, false);
    mem_free(&where);
    mem_free(&copy);
    return 0;
}

/* config_set - set a raw value programmatically */
void config_set(const char *name, const char *value)
{
    need_init();
    store(name, value, NULL, false);
}

/* entry_raw - the raw text of an entry: set value or default */
static const char *entry_raw(struct cfg_entry *e)
{
    if (e->raw)
	return e->raw;
    if (e->def_text == NULL && is_computed(e)) {
	/* While config_init applies the bare defaults, a provisional
	 * name does; the real one is looked up only when it is used. */
	if (init_applying)
	    return strcmp(e->name, "mydomain") == 0 ? "localdomain" : "localhost.localdomain";
	e->def_text = mem_strdup(strcmp(e->name, "mydomain") == 0 ?
				 domain_of(default_hostname()) : default_hostname());
    }
    return e->def_text ? e->def_text : "";
}

/* entry_where - where an entry got its value, for error messages */
static const char *entry_where(const struct cfg_entry *e)
{
    if (e->where)
	return e->where;
    return e->raw ? "(set by the program)" : "(default)";
}

/* loop_error - "expansion loop: a -> b -> a" */
static int loop_error(const struct cfg_entry *again, const char **error_r)
{
    char chain[ERRTEXT_SIZE - 64];
    size_t used = 0;

    chain[0] = 0;
    for (size_t i = 0; i <= exp_depth; i++) {
	const char *name = (i < exp_depth) ? exp_stack[i]->name : again->name;

	if (!fmt_try_buf(chain + used, sizeof(chain) - used, "%s%s", i ? " -> " : "", name))
	    break;
	used += strlen(chain + used);
    }
    return errtext_fail(&config_error, error_r, "expansion loop: %s", chain);
}

/* expand_entry - the expanded value of an entry (cached) */
static int expand_entry(struct cfg_entry *e, const char **value_r, const char **error_r)
{
    struct str out;
    int ret;

    if (e->expanded && e->exp_gen == generation) {
	*value_r = e->expanded;
	return 0;
    }
    for (size_t i = 0; i < exp_depth; i++)
	if (exp_stack[i] == e)
	    return loop_error(e, error_r);
    if (exp_depth >= CONFIG_MAX_DEPTH)
	return errtext_fail(&config_error, error_r, "expansion nested more than %d levels deep at $%s",
			 CONFIG_MAX_DEPTH, e->name);
    exp_stack[exp_depth++] = e;
    str_init(&out, CONFIG_MAX_VALUE);
    if (is_computed(e) && e->raw == NULL && strcmp(e->name, "mydomain") == 0) {
	/* mydomain follows the effective myhostname. */
	ret = expand_text("$myhostname", &out, &cfg_expander, 0, error_r);
	if (ret == 0) {
	    char *host = mem_strdup(str_cstr(&out));

	    str_set_or_panic(&out, domain_of(host));	/* a part of what out held */
	    mem_free(&host);
	}
    } else if (e->def != NULL && e->def->type == PARAM_RAW) {
	ret = str_try_set(&out, entry_raw(e)) ? 0 : errtext_fail(&config_error, error_r, "value too long");
    } else {
	ret = expand_text(entry_raw(e), &out, &cfg_expander, 0, error_r);
    }
    exp_depth--;
    if (ret == 0) {
	mem_free(&e->expanded);
	e->expanded = mem_strdup(str_cstr(&out));
	e->exp_gen = generation;
	*value_r = e->expanded;
    }
    str_fini(&out);
    return ret;
}

/* name_value - the expanded value of a name, "" if unknown (the lookup
 * of main.cf's own expansion) */
static int name_value(void *ctx, const char *name, size_t len, const char **value_r,
		      const char **error_r)
{
    (void) ctx;
    struct cfg_entry *e = entry_find(name, len);

    if (e == NULL) {
	*value_r = "";
	return 0;
    }
    return expand_entry(e, value_r, error_r);
}

/* find_close - the bracket that closes an opening one at text[-1],
 * before end; NULL if none */
static const char *find_close(const char *text, const char *end, char open, char close)
{
    int level = 1;

    for (const char *cp = text; cp < end; cp++) {
	if (*cp == open)
	    level++;
	else if (*cp == close && --level == 0)
	    return cp;
    }
    return NULL;
}

/* append_checked - append, or fail with "too long" */
static int append_checked(struct str *out, const char *data, size_t len, const char **error_r)
{
    if (!str_try_append(out, data, len))
	return errtext_fail(&config_error, error_r, "expanded value is longer than %zu bytes", out->max);
    return 0;
}

/* insert_value - what a plain $name or ${name} stands for */
static int insert_value(struct str *out, const struct config_expander *x, const char *name,
			size_t len, const char *value, const char **error_r)
{
    if (x->insert)
	return x->insert(x->ctx, out, name, len, value, error_r);
    return append_checked(out, value, strlen(value), error_r);
}

/* skip_blank - past spaces and tabs, up to end */
static const char *skip_blank(const char *cp, const char *end)
{
    while (cp < end && (*cp == ' ' || *cp == '\t'))
	cp++;
    return cp;
}

/* cond_branch - the text a conditional stands for. op points at its '?'
 * or ':' inside "${...}", stop at the closing bracket; set is whether
 * the name's value is non-empty. *from_r..*to_r is the text to expand,
 * or *from_r is NULL for none. The plain forms (${name?text},
 * ${name:text}) take everything up to stop; a text that starts with "{"
 * is Postfix 3's form: ${name?{text}}, ${name:{text}} and
 * ${name?{text}:{text}}, blanks around the braced parts ignored, and
 * nothing else may follow them. */
static int cond_branch(const char *op, const char *stop, bool set, const char **from_r,
		       const char **to_r, const char **error_r)
{
    const char *p = skip_blank(op + 1, stop), *c1, *q, *c2 = NULL, *e2 = NULL;

    *from_r = *to_r = NULL;
    if (p >= stop || *p != '{') {
	if (*op == '?' ? set : !set) {
	    *from_r = op + 1;
	    *to_r = stop;
	}
	return 0;
    }
    if ((c1 = find_close(p + 1, stop, '{', '}')) == NULL)
	return errtext_fail(&config_error, error_r, "missing '}' in \"%c%.*s\"", *op,
			    (int) (stop - op - 1), op + 1);
    q = skip_blank(c1 + 1, stop);
    if (q < stop && *op == '?' && *q == ':') {
	e2 = skip_blank(q + 1, stop);
	if (e2 >= stop || *e2 != '{' || (c2 = find_close(e2 + 1, stop, '{', '}')) == NULL)
	    return errtext_fail(&config_error, error_r, "expected \"{text}\" after \":\" in "
				"\"%.*s\"", (int) (stop - op), op);
	q = skip_blank(c2 + 1, stop);
    }
    if (q < stop)
	return errtext_fail(&config_error, error_r, "unexpected text after '}' in \"%.*s\"",
			    (int) (stop - op), op);
    if (*op == '?' ? set : !set) {
	*from_r = p + 1;
	*to_r = c1;
    } else if (c2 != NULL) {
	*from_r = e2 + 1;
	*to_r = c2;
    }
    return 0;
}

/* main.cf's own expansion: every name is a parameter, "" if unknown */
static const struct config_expander cfg_expander = {name_value, NULL, NULL, 0};

/* expand_span - expand $name, ${name}, $(name), conditionals and $$ in
 * text..end, looking names up (and inserting plain references) through
 * x. A conditional's text is expanded in place (no copy) one level
 * deeper; the levels are bounded by CONFIG_MAX_COND_DEPTH whatever the
 * caller asks, so no main.cf line can exhaust the stack. */
static int expand_span(const char *text, const char *end, struct str *out,
		       const struct config_expander *x, int depth, const char **error_r)
{
    int max_depth = (x->max_depth > 0 && x->max_depth < CONFIG_MAX_COND_DEPTH)
	? x->max_depth : CONFIG_MAX_COND_DEPTH;
    const char *cp = text;

    if (depth > max_depth)
	return errtext_fail(&config_error, error_r, "conditionals nested more than %d levels deep", max_depth);
    while (cp < end) {
	const char *dollar = memchr(cp, '$', (size_t) (end - cp));
	const char *name, *value;
	size_t len;

	if (dollar == NULL)
	    return append_checked(out, cp, (size_t) (end - cp), error_r);
	if (append_checked(out, cp, (size_t) (dollar - cp), error_r) < 0)
	    return -1;
	cp = dollar + 1;
	if (cp < end && *cp == '$') {		/* $$: a literal $ */
	    if (append_checked(out, "$", 1, error_r) < 0)
		return -1;
	    cp++;
	} else if (cp < end && (*cp == '{' || *cp == '(')) {
	    char open = *cp, close = (open == '{') ? '}' : ')';
	    const char *stop = find_close(cp + 1, end, open, close);
	    const char *np = cp + 1;

	    if (stop == NULL)
		return errtext_fail(&config_error, error_r, "missing '%c' after \"$%c\"", close, open);
	    name = np;
	    while (np < stop && is_name_char(*np))
		np++;
	    len = (size_t) (np - name);
	    if (len == 0 || (np < stop && *np != '?' && *np != ':'))
		return errtext_fail(&config_error, error_r, "bad parameter name in \"$%c%.*s%c\"", open,
				 (int) (stop - cp - 1), cp + 1, close);
	    if (x->lookup(x->ctx, name, len, &value, error_r) < 0)
		return -1;
	    if (np == stop) {
		if (insert_value(out, x, name, len, value, error_r) < 0)
		    return -1;
	    } else {
		/* ${name?text}: text if non-empty; ${name:text}: text if empty;
		 * Postfix 3: ${name?{text}}, ${name:{text}}, ${name?{a}:{b}} */
		const char *from, *to;

		if (cond_branch(np, stop, *value != 0, &from, &to, error_r) < 0)
		    return -1;
		if (from && expand_span(from, to, out, x, depth + 1, error_r) < 0)
		    return -1;
	    }
	    cp = stop + 1;
	} else if (cp < end && is_name_char(*cp)) {
	    name = cp;
	    while (cp < end && is_name_char(*cp))
		cp++;
	    len = (size_t) (cp - name);
	    if (x->lookup(x->ctx, name, len, &value, error_r) < 0
		|| insert_value(out, x, name, len, value, error_r) < 0)
		return -1;
	} else {
	    /* A $ before anything else (or at the end) stands for itself. */
	    if (append_checked(out, "$", 1, error_r) < 0)
		return -1;
	}
    }
    return 0;
}

/* expand_text - expand_span of a C string */
static int expand_text(const char *text, struct str *out, const struct config_expander *x,
		       int depth, const char **error_r)
{
    return expand_span(text, text + strlen(text), out, x, depth, error_r);
}

/* config_expand - expand $names in text into out */
int config_expand(const char *text, struct str *out, const char **error_r)
{
    need_init();
    exp_depth = 0;
    return expand_text(text, out, &cfg_expander, 0, error_r);
}

/* config_expand_with - the same syntax with the caller's names */
int config_expand_with(const char *text, struct str *out, const struct config_expander *x,
		       const char **error_r)
{
    need_init();
    exp_depth = 0;
    return expand_text(text, out, x, 0, error_r);
}

/* parse_long - strict decimal with an optional sign */
bool parse_long(const char *text, long *value)
{
    const char *cp = text;
    char *end;
    long v;

    if (*cp == '-' || *cp == '+')
	cp++;
    if (!isdigit((unsigned char) *cp))
	return false;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || *end != 0)
	return false;
    *value = v;
    return true;
}

/* parse_time - "90", "90s", "5m", "2h", "1d", "1w" -> seconds; false if bad */
bool parse_time(const char *text, long *seconds)
{
    const char *cp = text;
    long v = 0, mult = 1;

    if (!isdigit((unsigned char) *cp))
	return false;
    while (isdigit((unsigned char) *cp)) {
	int d = *cp++ - '0';

	if (v > (LONG_MAX - d) / 10)
	    return false;
	v = v * 10 + d;
    }
    switch (*cp) {
    case 0:
	break;
    case 's':
	mult = 1;
	break;
    case 'm':
	mult = 60;
	break;
    case 'h':
	mult = 3600;
	break;
    case 'd':
	mult = 86400;
	break;
    case 'w':
	mult = 7 * 86400;
	break;
    default:
	return false;
    }
    if (*cp && cp[1] != 0)
	return false;
    if (v > LONG_MAX / mult)
	return false;
    *seconds = v * mult;
    return true;
}

/* parse_bool - yes/no, true/false, on/off, 1/0 (any case) */
bool parse_bool(const char *text, bool *value)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
	if (strcasecmp(text, yes[i]) == 0) {
	    *value = true;
	    return true;
	}
	if (strcasecmp(text, no[i]) == 0) {
	    *value = false;
	    return true;
	}
    }
    return false;
}

/* One converted value, kept until every parameter converted cleanly. */
union cfg_value {
    char *s;
    long l;
    bool b;
};

/* convert - expand and convert one table parameter */
static int convert(struct cfg_entry *e, union cfg_value *v, const char **error_r)
{
    const struct param_def *d = e->def;
    const char *text, *err;
    long l = 0;

    exp_depth = 0;
    if (expand_entry(e, &text, &err) < 0)
	return errtext_fail(&config_error, error_r, "%s: parameter %s: %s", entry_where(e), e->name, err);
    switch (d->type) {
    case PARAM_STR:
    case PARAM_RAW:
	v->s = mem_strdup(text);
	return 0;
    case PARAM_BOOL:
	if (!parse_bool(text, &v->b))
	    return errtext_fail(&config_error, error_r, "%s: parameter %s: bad boolean value \"%s\" (use yes or no)",
			     entry_where(e), e->name, text);
	return 0;
    case PARAM_INT:
    case PARAM_SIZE:
	if (!parse_long(text, &l))
	    return errtext_fail(&config_error, error_r, "%s: parameter %s: bad number \"%s\"%s",
			     entry_where(e), e->name, text,
			     d->type == PARAM_SIZE ? " (a size in bytes)" : "");
	break;
    case PARAM_TIME:
	if (!parse_time(text, &l))
	    return errtext_fail(&config_error, error_r, "%s: parameter %s: bad time value \"%s\" "
			     "(a number with an optional unit s, m, h, d or w)",
			     entry_where(e), e->name, text);
	break;
    }
    if (d->min != 0 || d->max != 0) {
	if (l < d->min)
	    return errtext_fail(&config_error, error_r, "%s: parameter %s: value %s is less than the minimum %ld",
			     entry_where(e), e->name, text, d->min);
	if (l > d->max)
	    return errtext_fail(&config_error, error_r, "%s: parameter %s: value %s is more than the maximum %ld",
			     entry_where(e), e->name, text, d->max);
    }
    v->l = l;
    return 0;
}

/* config_apply - expand and convert every parameter into var_* */
int config_apply(const char **error_r)
{
    union cfg_value *vals;
    size_t i;
    int ret = 0;

    need_init();
    vals = mem_zalloc(mem_size_mul(param_count, sizeof(*vals)));
    for (i = 0; i < param_count; i++) {
	struct cfg_entry *e = entry_find(param_table[i].name, strlen(param_table[i].name));

	if (e == NULL || e->def != &param_table[i])
	    msg_panic("config_apply: table parameter %s is missing", param_table[i].name);
	if (convert(e, &vals[i], error_r) < 0) {
	    char *saved_raw;

	    if (report_error(*error_r) < 0) {
		ret = -1;
		break;
	    }
	    /* Lenient: go on with the default, so one bad value does not
	     * make every other parameter look wrong. */
	    saved_raw = e->raw;
	    e->raw = NULL;
	    bump();
	    if (convert(e, &vals[i], error_r) < 0 && report_error(*error_r) < 0) {
		e->raw = saved_raw;
		ret = -1;
		break;
	    }
	    e->raw = saved_raw;
	    bump();
	}
    }
    if (ret < 0) {
	for (size_t j = 0; j < i; j++)
	    if (param_table[j].type == PARAM_STR || param_table[j].type == PARAM_RAW)
		mem_free(&vals[j].s);
	mem_free(&vals);
	return -1;
    }
    /* Every value is good: commit. */
    if (str_vars_owned == NULL)
	str_vars_owned = mem_zalloc(mem_size_mul(param_count, sizeof(char *)));
    for (i = 0; i < param_count; i++) {
	const struct param_def *d = &param_table[i];

	switch (d->type) {
	case PARAM_STR:
	case PARAM_RAW:
	    mem_free(&str_vars_owned[i]);
	    str_vars_owned[i] = vals[i].s;
	    *(char **) d->var = vals[i].s;
	    break;
	case PARAM_BOOL:
	    *(bool *) d->var = vals[i].b;
	    break;
	case PARAM_INT:
	case PARAM_TIME:
	case PARAM_SIZE:
	    *(long *) d->var = vals[i].l;
	    break;
	}
    }
    mem_free(&vals);
    return 0;
}

/* config_apply_numbers - config_apply for the INT, TIME, SIZE and BOOL
 * parameters only; the strings stay as they are */
int config_apply_numbers(const char **error_r)
{
    union cfg_value *vals;
    int ret = 0;

    need_init();
    vals = mem_zalloc(mem_size_mul(param_count, sizeof(*vals)));
    for (size_t i = 0; i < param_count && ret == 0; i++) {
	struct cfg_entry *e;

	if (param_table[i].type == PARAM_STR || param_table[i].type == PARAM_RAW)
	    continue;
	e = entry_find(param_table[i].name, strlen(param_table[i].name));
	if (e == NULL || e->def != &param_table[i])
	    msg_panic("config_apply_numbers: table parameter %s is missing", param_table[i].name);
	if (convert(e, &vals[i], error_r) < 0)
	    ret = -1;
    }
    for (size_t i = 0; i < param_count && ret == 0; i++) {
	const struct param_def *d = &param_table[i];

	if (d->type == PARAM_BOOL)
	    *(bool *) d->var = vals[i].b;
	else if (d->type == PARAM_INT || d->type == PARAM_TIME || d->type == PARAM_SIZE)
	    *(long *) d->var = vals[i].l;
    }
    mem_free(&vals);
    return ret;
}

/* config_raw - the value as written (or the default), NULL if unknown */
const char *config_raw(const char *name)
{
    struct cfg_entry *e;

    need_init();
    e = entry_find(name, strlen(name));
    if (e == NULL)
	return NULL;
    if (e->raw == NULL && is_computed(e) && strcmp(e->name, "mydomain") == 0) {
	const char *v = config_value("mydomain");

	/* Reflect the effective myhostname, as the expansion does. */
	if (v != NULL) {
	    char *copy = mem_strdup(v);

	    mem_free(&e->def_text);
	    e->def_text = copy;
	}
    }
    return entry_raw(e);
}

/* config_value - the expanded value of any name, NULL if unknown or bad */
const char *config_value_why(const char *name, const char **error_r)
{
    struct cfg_entry *e;
    const char *value;

    need_init();
    e = entry_find(name, strlen(name));
    if (e == NULL) {
	*error_r = "unknown parameter";
	return NULL;
    }
    exp_depth = 0;
    if (expand_entry(e, &value, error_r) < 0)
	return NULL;
    return value;
}

const char *config_value(const char *name)
{
    const char *err;

    return config_value_why(name, &err);
}

/* config_default_value - the expanded default of a table parameter */
const char *config_default_value(const char *name)
{
    struct cfg_entry *e;
    struct str out;
    const char *err;
    int ret;

    need_init();
    e = entry_find(name, strlen(name));
    if (e == NULL || e->def == NULL)
	return NULL;
    if (e->def_expanded && e->def_gen == generation)
	return e->def_expanded;
    str_init(&out, CONFIG_MAX_VALUE);
    exp_depth = 0;
    if (is_computed(e) && strcmp(e->name, "mydomain") == 0)
	ret = expand_text("$myhostname", &out, &cfg_expander, 0, &err);
    else if (is_computed(e))
	/* myhostname: def_text is filled in only when the default is used,
	 * and stays NULL when main.cf sets the name. */
	ret = str_try_set(&out, default_hostname()) ? 0 : -1;
    else if (e->def->type == PARAM_RAW)
	ret = str_try_set(&out, e->def_text) ? 0 : -1;
    else
	ret = expand_text(e->def_text, &out, &cfg_expander, 0, &err);
    if (ret == 0 && is_computed(e) && strcmp(e->name, "mydomain") == 0) {
	char *host = mem_strdup(str_cstr(&out));

	str_set_or_panic(&out, domain_of(host));	/* a part of what out held */
	mem_free(&host);
    }
    mem_free(&e->def_expanded);
    if (ret == 0) {
	e->def_expanded = mem_strdup(str_cstr(&out));
	e->def_gen = generation;
    }
    str_fini(&out);
    return e->def_expanded;
}

/* config_is_set - true if main.cf or -o set this name */
bool config_is_set(const char *name)
{
    struct cfg_entry *e;

    need_init();
    e = entry_find(name, strlen(name));
    return e != NULL && e->raw != NULL;
}

/* config_where - "file:line" where the name was set, or NULL */
const char *config_where(const char *name)
{
    struct cfg_entry *e;

    need_init();
    e = entry_find(name, strlen(name));
    return e ? e->where : NULL;
}

/* mentions - does text reference name through $name, ${name...} or $(name...)? */
static bool mentions(const char *text, const char *name)
{
    size_t nlen = strlen(name);

    for (const char *cp = strchr(text, '$'); cp; cp = strchr(cp, '$')) {
	const char *np;

	cp++;
	if (*cp == '$') {
	    cp++;
	    continue;
	}
	np = (*cp == '{' || *cp == '(') ? cp + 1 : cp;
	if (strncmp(np, name, nlen) == 0 && !is_name_char(np[nlen]))
	    return true;
    }
    return false;
}

/* config_unused - names set in main.cf that are neither in the table nor
 * referenced by $name anywhere; calls fn for each */
void config_unused(void (*fn)(const char *name, const char *where, void *ctx), void *ctx)
{
    need_init();
    for (size_t i = 0; i < entry_count; i++) {
	struct cfg_entry *e = &entries[i];
	bool used = false;

	if (e->def || !e->in_file)
	    continue;
	for (size_t j = 0; j < entry_count && !used; j++)
	    if (j != i && mentions(entry_raw(&entries[j]), e->name))
		used = true;
	if (!used)
	    fn(e->name, e->where ? e->where : "", ctx);
    }
}

/* cmp_names - qsort helper for an array of names */
static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* config_names - every known name (table + main.cf), sorted */
void config_names(void (*fn)(const char *name, void *ctx), void *ctx)
{
    const char **names;
    size_t n;

    need_init();
    n = entry_count;
    names = mem_alloc_array(n ? n : 1, sizeof(*names));
    for (size_t i = 0; i < n; i++)
	names[i] = entries[i].name;
    qsort(names, n, sizeof(*names), cmp_names);
    /* Copy the names first: fn may change the store. */
    for (size_t i = 0; i < n; i++)
	names[i] = mem_strdup(names[i]);
    for (size_t i = 0; i < n; i++) {
	fn(names[i], ctx);
	mem_free(&names[i]);
    }
    mem_free(&names);
}

/* config_split - call fn for each element of a list value */
void config_split(const char *value, void (*fn)(const char *item, void *ctx), void *ctx)
{
    const char *cp = value;

    for (;;) {
	const char *start;
	char *item;

	while (*cp == ' ' || *cp == '\t' || *cp == ',' || *cp == '\r' || *cp == '\n')
	    cp++;
	if (*cp == 0)
	    break;
	start = cp;
	while (*cp && *cp != ' ' && *cp != '\t' && *cp != ',' && *cp != '\r' && *cp != '\n')
	    cp++;
	item = mem_strndup(start, (size_t) (cp - start));
	fn(item, ctx);
	mem_free(&item);
    }
}
