/* config.h - main.cf parameters: the table, the parser, the values.
 *
 * Each parameter of params.def becomes a typed global var_<name>. The
 * life cycle of a program is:
 *     config_init();                         defaults
 *     config_load(dir, &err)                 read DIR/main.cf
 *     config_override("name=value", &err)    -o options, in order
 *     config_apply(&err)                     expand $name, convert, check
 * after which var_* hold the effective values. (config_init alone gives
 * usable values too, except that the computed defaults of myhostname and
 * mydomain are provisional until config_apply: the host name lookup is
 * only done when main.cf does not set myhostname.) main.cf syntax (Postfix):
 * "name = value" lines, "#" comment lines, blank lines, continuation
 * lines that start with white space; $name, ${name} and $(name) expand
 * (with ${name?text} / ${name:text} conditionals), $$ is a literal $.
 * Expansion loops are detected and reported. Every error names
 * file:line. Names not in the table are kept (they may be used through
 * $name) and listed by config_unused() so `posthorn check` can warn.
 *
 * Error texts (*error_r of every function here) are the module's errtext
 * (errtext.h): valid until the next config_* error. A text that a
 * config_expander callback returns is the callback's to keep alive until
 * config_expand_with returns. */
#ifndef POSTHORN_CONFIG_H
#define POSTHORN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#ifndef DEF_CONFIG_DIR
#define DEF_CONFIG_DIR "/etc/posthorn"
#endif
#ifndef DEF_DAEMON_DIR
#define DEF_DAEMON_DIR "/usr/libexec/posthorn"
#endif
#ifndef DEF_COMMAND_DIR
#define DEF_COMMAND_DIR "/usr/sbin"
#endif

/* PARAM_RAW: a string kept as written. Its user expands it per use with
 * names of its own ($home for forward_path), so neither loading nor
 * `posthorn conf -x` expands it. */
enum param_type { PARAM_STR, PARAM_RAW, PARAM_INT, PARAM_BOOL, PARAM_TIME, PARAM_SIZE };

struct param_def {
    const char *name;
    enum param_type type;
    const char *def;		/* NULL: computed at start-up */
    long min, max;
    /* no doc text: params.def's one-line docs are for main.cf(5)
     * (tools/mkman-params); compiled in, their 33 KB of read-only data
     * were mapped into every process (docs/bench.md, POP3 memory) */
    void *var;			/* char **, long * or bool * */
};

#define PARAM_TYPE_STR  char *
#define PARAM_TYPE_RAW  char *
#define PARAM_TYPE_INT  long
#define PARAM_TYPE_TIME long
#define PARAM_TYPE_SIZE long
#define PARAM_TYPE_BOOL bool
#define PARAM(type, name, def, min, max, doc) extern PARAM_TYPE_##type var_##name;
#include "params.def"
#undef PARAM

extern const struct param_def param_table[];
extern const size_t param_count;

/* param_find - the table entry for name, or NULL */
const struct param_def *param_find(const char *name);
const char *param_type_name(enum param_type type);

void config_init(void);
/* config_load - read config_dir/main.cf (missing file is an error) */
int config_load(const char *config_dir, const char **error_r);
/* config_load_file - read one main.cf-syntax file */
int config_load_file(const char *path, const char **error_r);
/* config_load_fd - main.cf text from a descriptor, read from offset 0
 * (master's validated snapshot; path names it in messages) */
int config_load_fd(int fd, const char *path, const char **error_r);
/* config_set_reporter - lenient mode for `posthorn check`: with fn set,
 * each error of config_load* and config_apply goes to
 * fn and the work goes on (a bad line is skipped, a bad value falls back
 * to its default), so one mistake does not hide or fake others. NULL:
 * strict mode (the default), the first error fails the call.
 * config_reported_errors counts what went to fn since it was set. */
void config_set_reporter(void (*fn)(const char *error, void *ctx), void *ctx);
int config_reported_errors(void);
/* config_override - "name=value", as from master.cf -o or the command line */
int config_override(const char *assignment, const char **error_r);
/* config_set - set a raw value programmatically */
void config_set(const char *name, const char *value);
/* config_apply - expand and convert every parameter into var_* */
int config_apply(const char **error_r);

/* config_apply_numbers - the same for the number, time, size and boolean
 * parameters only, all or none; the string var_* stay as they are (a
 * running process may hold them). For a change of a running process's
 * settings that strings need not follow (stress mode: config_set("stress",
 * "yes") then this). */
int config_apply_numbers(const char **error_r);
/* config_raw - the value as written (or the default), NULL if unknown */
const char *config_raw(const char *name);
/* config_value - the expanded value of any name, NULL if unknown (or
 * its expansion failed) */
const char *config_value(const char *name);
/* config_value_why - the same; on NULL, *error_r says why ("unknown
 * parameter", a loop, a value too long...) */
const char *config_value_why(const char *name, const char **error_r);
/* config_default_value - the expanded default of a table parameter */
const char *config_default_value(const char *name);
/* config_is_set - true if main.cf or -o set this name */
bool config_is_set(const char *name);
/* config_where - "file:line" where the name was set, or NULL */
const char *config_where(const char *name);
/* config_expand - expand $names in text into out */
int config_expand(const char *text, struct str *out, const char **error_r);

/* config_expand_with - the same syntax ($name, ${name}, $(name),
 * ${name?text}, ${name:text}, $$) with the caller's names: lookup gives
 * a name's value ("" for none; -1 and *error_r to fail the expansion);
 * insert, if not NULL, appends what a plain $name or ${name} stands for
 * (it may refuse or note the value; the default appends it); max_depth,
 * if > 0, bounds the nesting of conditionals. */
struct config_expander {
    int (*lookup)(void *ctx, const char *name, size_t len, const char **value_r,
		  const char **error_r);
    int (*insert)(void *ctx, struct str *out, const char *name, size_t len,
		  const char *value, const char **error_r);
    void *ctx;
    int max_depth;
};
int config_expand_with(const char *text, struct str *out, const struct config_expander *x,
		       const char **error_r);
/* config_unused - names set in main.cf that are neither in the table nor
 * referenced by $name anywhere; calls fn for each */
void config_unused(void (*fn)(const char *name, const char *where, void *ctx), void *ctx);
/* config_names - every known name (table + main.cf), sorted */
void config_names(void (*fn)(const char *name, void *ctx), void *ctx);

/* Helpers for list-valued parameters: split on white space and commas. */
/* config_split - call fn for each element of a list value */
void config_split(const char *value, void (*fn)(const char *item, void *ctx), void *ctx);
/* parse_time - "90", "90s", "5m", "2h", "1d", "1w" -> seconds; false if bad */
bool parse_time(const char *text, long *seconds);
bool parse_bool(const char *text, bool *value);
bool parse_long(const char *text, long *value);

#endif
