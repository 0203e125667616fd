/* test-config.c - unit tests for config.c (main.cf parsing, expansion,
 * conversion, overrides, reload). Files are written into a fresh
 * directory under the current one. */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "config.h"

/* every parameter's doc line, in the table's order (the table itself
 * does not carry them) */
#define PARAM(type, name, def, min, max, doc) doc,
static const char *const param_docs[] = {
#include "params.def"
};
#undef PARAM

static char dir[PATH_MAX];
static char path[PATH_MAX];

/* write_main_cf - replace dir/main.cf with text */
static void write_main_cf(const char *text)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
	msg_fatal("open %s: %m", path);
    if (fputs(text, fp) == EOF || fclose(fp) != 0)
	msg_fatal("write %s: %m", path);
}

/* load_text - config_init, then load text as main.cf; the error or NULL */
static const char *load_text(const char *text)
{
    const char *err = NULL;

    config_init();
    write_main_cf(text);
    if (config_load(dir, &err) < 0)
	return err;
    return NULL;
}

/* contains - does got contain want? (NULL-safe) */
static bool contains(const char *got, const char *want)
{
    return got != NULL && strstr(got, want) != NULL;
}

/* one_lookup - config_expander lookup: every name is "1" */
static int one_lookup(void *ctx, const char *name, size_t len, const char **value_r,
		      const char **error_r)
{
    (void) ctx;
    (void) name;
    (void) len;
    (void) error_r;
    *value_r = "1";
    return 0;
}

/* first_of_type - a table parameter of the type, or NULL */
static const struct param_def *first_of_type(enum param_type type)
{
    for (size_t i = 0; i < param_count; i++)
	if (param_table[i].type == type)
	    return &param_table[i];
    return NULL;
}

struct collect {
    char names[16][64];
    char wheres[16][PATH_MAX + 16];
    int count;
};

/* collect_unused - config_unused callback */
static void collect_unused(const char *name, const char *where, void *ctx)
{
    struct collect *c = ctx;

    if (c->count < 16) {
	str_copy_out_or_panic(c->names[c->count], sizeof(c->names[0]), name);
	str_copy_out_or_panic(c->wheres[c->count], sizeof(c->wheres[0]), where);
	c->count++;
    }
}

/* collect_item - config_split / config_names callback: join with '|' */
static void collect_item(const char *item, void *ctx)
{
    struct str *s = ctx;

    if (str_len(s))
	str_appendc_or_panic(s, '|');
    str_appends_or_panic(s, item);
}

/* Syntax: the value a name ends up with, or an error. */
static const struct syntax_case {
    const char *text;
    const char *name;
    const char *raw;		/* NULL: expect an error */
    const char *error;		/* substring of the error */
} syntax_cases[] = {
    {"a = b\n", "a", "b", NULL},
    {"a=b", "a", "b", NULL},				/* no final newline */
    {"  \n\ta  =   b c  \t\n", "a", NULL, "main.cf:2: continuation line without"},
    {"a =   b c  \t\n", "a", "b c", NULL},
    {"a =\n", "a", "", NULL},
    {"a = x = y\n", "a", "x = y", NULL},
    {"# comment\n\n   # indented comment\na = 1\n", "a", "1", NULL},
    {"a = 1 # not a comment\n", "a", "1 # not a comment", NULL},
    {"a = one\n two\n\tthree\n", "a", "one two three", NULL},
    {"a = one   \n     two\n", "a", "one two", NULL},
    {"a = one\n# comment inside\n  two\nb = 3\n", "a", "one two", NULL},
    {"a = one\n\n  two\n", "a", "one two", NULL},
    {"a =\n  two\n", "a", "two", NULL},
    {"a = 1\nb = 2\na = 3\n", "a", "3", NULL},		/* the last one wins */
    {"a = 1\r\n", "a", "1", NULL},
    {"a = 1\nfoo\n", "a", NULL, "main.cf:2: missing '=' after parameter name \"foo\""},
    {"\n\n  x = 1\n", "x", NULL, "main.cf:3: continuation line without a preceding parameter"},
    {"a-b = 1\n", "a-b", NULL, "main.cf:1: bad character '-' in parameter name"},
    {"a b = 1\n", "a", NULL, "main.cf:1: bad character 0x20 in parameter name"},
    {"= 1\n", "a", NULL, "main.cf:1: missing parameter name before '='"},
    {"a = 1\nb = 2\nbad line\n", "a", NULL, "main.cf:3: missing '='"},
};

/* Expansion: config_set every name, then expand text. */
static const struct expand_case {
    const char *text;
    const char *want;		/* NULL: expect an error */
    const char *error;
} expand_cases[] = {
    {"plain", "plain", NULL},
    {"$a", "hello", NULL},
    {"${a}", "hello", NULL},
    {"$(a)", "hello", NULL},
    {"x$a.y", "xhello.y", NULL},
    {"$a$a", "hellohello", NULL},
    {"$b", "hello world", NULL},			/* nested */
    {"$c", "<hello world>", NULL},			/* two levels */
    {"${a?yes}", "yes", NULL},
    {"${empty?yes}", "", NULL},
    {"${empty:no}", "no", NULL},
    {"${a:no}", "", NULL},
    {"${unknown:default}", "default", NULL},
    {"${a?[$b]}", "[hello world]", NULL},		/* expansion inside */
    {"${a?${empty:in}}", "in", NULL},			/* nested conditional */
    {"$(a?x)$(empty:y)", "xy", NULL},
    {"$$a", "$a", NULL},
    {"$$$a", "$hello", NULL},
    {"${unknown}$unknown", "", NULL},
    {"cost $ 5 $", "cost $ 5 $", NULL},
    {"${a", NULL, "missing '}'"},
    {"$(a", NULL, "missing ')'"},
    {"${}", NULL, "bad parameter name"},
    {"${a b}", NULL, "bad parameter name"},
    {"$loop1", NULL, "expansion loop: loop1 -> loop2 -> loop1"},
    {"$self", NULL, "expansion loop: self -> self"},
    {"${self?x}", NULL, "expansion loop: self -> self"},
    /* Postfix 3: braced texts, an else branch */
    {"${a?{10}:{300}}s", "10s", NULL},
    {"${empty?{10}:{300}}s", "300s", NULL},
    {"${unknown?{10}:{300}}", "300", NULL},
    {"${a?{yes}}", "yes", NULL},
    {"${empty?{yes}}", "", NULL},
    {"${empty:{no}}", "no", NULL},
    {"${a:{no}}", "", NULL},
    {"${a? {x:y} : {z} }", "x:y", NULL},		/* blanks around; ':' inside */
    {"${empty? {x:y} : {z} }", "z", NULL},
    {"${a?{$b}:{$c}}", "hello world", NULL},		/* expansion inside */
    {"${empty?{$b}:{$c}}", "<hello world>", NULL},
    {"${a?{${empty?{1}:{2}}}:{3}}", "2", NULL},	/* nested */
    {"${a?{{x}}}", "{x}", NULL},			/* braces nest inside */
    {"${a?{}:{z}}", "", NULL},
    {"${empty?{}:{}}", "", NULL},
    {"${a?{self}:{$self}}", "self", NULL},		/* only the branch taken */
    {"${empty?{x}:{$self}}", NULL, "expansion loop: self -> self"},
    {"${a?{x}y}", NULL, "unexpected text after '}'"},
    {"${a?{x}:z}", NULL, "expected \"{text}\" after \":\""},
    {"${a?{x}:{y}z}", NULL, "unexpected text after '}'"},
    {"${a:{x}:{y}}", NULL, "unexpected text after '}'"},
    {"${a?{x}:{y}:{z}}", NULL, "unexpected text after '}'"},
    {"${a?x{y}}", "x{y}", NULL},			/* not braced: the old form */
};

/* Conversions by type through a table parameter. */
static const struct convert_case {
    enum param_type type;
    const char *text;
    long want;			/* for BOOL: 0 or 1 */
    const char *error;		/* NULL: valid */
} convert_cases[] = {
    {PARAM_INT, "42", 42, NULL},
    {PARAM_INT, "4 2", 0, "bad number \"4 2\""},
    {PARAM_INT, "42x", 0, "bad number"},
    {PARAM_INT, "", 0, "bad number \"\""},
    {PARAM_INT, "0x10", 0, "bad number"},
    {PARAM_INT, "99999999999999999999999", 0, "bad number"},
    {PARAM_TIME, "90", 90, NULL},
    {PARAM_TIME, "90s", 90, NULL},
    {PARAM_TIME, "5m", 300, NULL},
    {PARAM_TIME, "2h", 7200, NULL},
    {PARAM_TIME, "1d", 86400, NULL},
    {PARAM_TIME, "5x", 0, "bad time value \"5x\""},
    {PARAM_TIME, "5ms", 0, "bad time value"},
    {PARAM_TIME, "m", 0, "bad time value"},
    {PARAM_TIME, "-5", 0, "bad time value"},
    {PARAM_BOOL, "yes", 1, NULL},
    {PARAM_BOOL, "No", 0, NULL},
    {PARAM_BOOL, "TRUE", 1, NULL},
    {PARAM_BOOL, "off", 0, NULL},
    {PARAM_BOOL, "1", 1, NULL},
    {PARAM_BOOL, "maybe", 0, "bad boolean value \"maybe\""},
    {PARAM_SIZE, "10240000", 10240000, NULL},
    {PARAM_SIZE, "10k", 0, "bad number"},
};

static const struct time_case {
    const char *text;
    bool ok;
    long seconds;
} time_cases[] = {
    {"0", true, 0}, {"1w", true, 604800}, {"3d", true, 259200}, {"10", true, 10},
    {"", false, 0}, {"s", false, 0}, {"1.5h", false, 0}, {"1 h", false, 0},
    {"1H", false, 0}, {"99999999999999999999w", false, 0}, {"9223372036854775807w", false, 0},
};

/* count_error - a lenient-mode reporter */
static void count_error(const char *error, void *ctx)
{
    (void) error;
    (*(int *) ctx)++;
}

/* expect_apply_error - apply must fail with want in the error */
static void expect_apply_error(const char *want, size_t idx)
{
    const char *err = NULL;

    unit_assert_idx(config_apply(&err) < 0, idx);
    if (!contains(err, want))
	unit_fail_at(__FILE__, __LINE__, "case %zu: error \"%s\", want \"%s\"", idx,
		     err ? err : "(null)", want);
}

int main(void)
{
    const char *err;
    char want[PATH_MAX + 128];
    struct str *s;

    if (!fmt_try_buf(dir, sizeof(dir), "test-config.XXXXXX") || mkdtemp(dir) == NULL)
	msg_fatal("mkdtemp: %m");
    if (!fmt_try_buf(path, sizeof(path), "%s/main.cf", dir))
	msg_fatal("path too long");

    unit_begin("the table matches params.def and has the documented bounds");
    unit_assert(param_count > 10);
    unit_assert(param_find("queue_directory") != NULL);
    unit_assert(param_find("queue_directory")->var == &var_queue_directory);
    unit_assert(param_find("no_such_parameter") == NULL);
    unit_assert_inteq(param_find("max_use")->type, PARAM_INT);
    unit_assert_streq(param_type_name(PARAM_TIME), "time");
    unit_assert_inteq(sizeof(param_docs) / sizeof(param_docs[0]), param_count);
    for (size_t i = 0; i < param_count; i++) {
	unit_assert_idx(param_docs[i] && *param_docs[i], i);
	unit_assert_idx(param_table[i].min <= param_table[i].max, i);
	for (size_t j = i + 1; j < param_count; j++)
	    unit_assert_idx(strcmp(param_table[i].name, param_table[j].name) != 0, i);
    }
    unit_end();

    unit_begin("stress defaults; config_apply_numbers leaves the strings alone");
    config_init();
    unit_assert(config_apply(&err) == 0);
    unit_assert_inteq(var_smtpd_timeout, 300);
    unit_assert_inteq(var_smtpd_hard_error_limit, 20);
    unit_assert_inteq(var_smtpd_starttls_timeout, 300);
    unit_assert_streq(var_stress, "");
    {
	const char *host = var_myhostname, *banner = var_smtpd_banner;

	config_set("stress", "yes");
	unit_assert(config_apply_numbers(&err) == 0);
	unit_assert_inteq(var_smtpd_timeout, 10);
	unit_assert_inteq(var_smtpd_hard_error_limit, 1);
	unit_assert_inteq(var_smtpd_starttls_timeout, 10);
	unit_assert(var_myhostname == host && var_smtpd_banner == banner);
	unit_assert_streq(var_stress, "");		/* a string: not re-applied */
	/* all or nothing: one bad number changes none */
	config_set("stress", "");
	config_set("max_use", "many");
	unit_assert(config_apply_numbers(&err) < 0);
	unit_assert(contains(err, "max_use"));
	unit_assert_inteq(var_smtpd_timeout, 10);
	config_set("max_use", "7");
	unit_assert(config_apply_numbers(&err) == 0);
	unit_assert_inteq(var_smtpd_timeout, 300);
	unit_assert_inteq(var_max_use, 7);
    }
    unit_end();

    unit_begin("defaults after config_init");
    config_init();
    unit_assert_streq(var_syslog_name, "posthorn");
    unit_assert_inteq(var_max_use, 100);
    unit_assert_inteq(var_ipc_timeout, 300);
    unit_assert_inteq(var_daemon_timeout, 18000);
    unit_assert_streq(var_maillog_file, "");
    unit_assert_streq(var_config_directory, DEF_CONFIG_DIR);
    unit_assert(!config_is_set("max_use"));
    unit_assert(config_where("max_use") == NULL);
    unit_assert_streq(config_raw("max_use"), "100");
    unit_assert(config_raw("no_such_name") == NULL);
    unit_assert(config_value("no_such_name") == NULL);
    unit_assert_streq(config_raw("myorigin"), "$myhostname");
    /* computed defaults (myhostname, mydomain) are final after config_apply */
    unit_assert(config_apply(&err) == 0);
    unit_assert_streq(config_value("myorigin"), var_myhostname);
    unit_end();

    unit_begin("computed defaults are non-empty and consistent");
    config_init();
    unit_assert(var_myhostname && *var_myhostname);
    unit_assert(strchr(var_myhostname, '.') != NULL);
    unit_assert(var_mydomain && *var_mydomain);
    unit_assert_streq(var_mydomain, strchr(var_myhostname, '.') + 1);
    unit_assert_streq(var_myorigin, var_myhostname);
    unit_assert(contains(var_mydestination, "localhost."));
    unit_assert(config_load_file("/nonexistent/main.cf", &err) == 0 ? false : contains(err, "/nonexistent/main.cf"));
    /* mydomain follows a configured myhostname */
    unit_assert(load_text("myhostname = mail.example.com\n") == NULL);
    unit_assert(config_apply(&err) == 0);
    unit_assert_streq(var_mydomain, "example.com");
    unit_assert_streq(var_mydestination, "mail.example.com, localhost.example.com, localhost");
    unit_assert_streq(config_raw("mydomain"), "example.com");
    unit_assert_streq(config_default_value("mydomain"), "example.com");
    unit_assert_streq(config_default_value("myorigin"), "mail.example.com");
    unit_assert(config_default_value("no_such_name") == NULL);
    /* myhostname set in main.cf: its computed default is still there */
    unit_assert(config_default_value("myhostname") != NULL
		&& strchr(config_default_value("myhostname"), '.') != NULL);
    unit_assert(load_text("myhostname = single\n") == NULL);
    unit_assert(config_apply(&err) == 0);
    unit_assert_streq(var_mydomain, "localdomain");
    unit_end();

    unit_begin("main.cf syntax, continuation, comments, errors with file:line");
    for (size_t i = 0; i < sizeof(syntax_cases) / sizeof(syntax_cases[0]); i++) {
	const struct syntax_case *c = &syntax_cases[i];

	err = load_text(c->text);
	if (c->raw) {
	    unit_assert_idx(err == NULL, i);
	    unit_assert_streq_idx(config_raw(c->name), c->raw, i);
	    unit_assert_idx(config_is_set(c->name), i);
	} else {
	    if (!contains(err, c->error))
		unit_fail_at(__FILE__, __LINE__, "case %zu: error \"%s\", want \"%s\"", i,
			     err ? err : "(null)", c->error);
	    /* A file with an error changes nothing. */
	    unit_assert_idx(!config_is_set("a"), i);
	}
    }
    unit_end();

    unit_begin("where a value was set");
    unit_assert(load_text("# x\n\nmax_use = 5\nlong = a\n  b\n") == NULL);
    unit_assert(fmt_try_buf(want, sizeof(want), "%s:3", path));
    unit_assert_streq(config_where("max_use"), want);
    unit_assert(fmt_try_buf(want, sizeof(want), "%s:4", path));
    unit_assert_streq(config_where("long"), want);
    unit_assert_streq(config_raw("long"), "a b");
    unit_end();

    unit_begin("expansion: $name ${name} $(name), conditionals, $$, unknown, loops");
    config_init();
    config_set("a", "hello");
    config_set("b", "$a world");
    config_set("c", "<${b}>");
    config_set("empty", "");
    config_set("loop1", "$loop2");
    config_set("loop2", "${loop1}");
    config_set("self", "x$self");
    s = str_new(STR_MAX_DEFAULT);
    for (size_t i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
	const struct expand_case *c = &expand_cases[i];
	int ret;

	str_reset(s);
	err = NULL;
	ret = config_expand(c->text, s, &err);
	if (c->want) {
	    unit_assert_idx(ret == 0, i);
	    unit_assert_streq_idx(str_cstr(s), c->want, i);
	} else {
	    unit_assert_idx(ret < 0, i);
	    if (!contains(err, c->error))
		unit_fail_at(__FILE__, __LINE__, "case %zu: error \"%s\", want \"%s\"", i,
			     err ? err : "(null)", c->error);
	}
    }
    unit_assert_streq(config_value("c"), "<hello world>");
    unit_assert(config_value("loop1") == NULL);
    /* a change of a value is seen by names that refer to it */
    config_set("a", "bye");
    unit_assert_streq(config_value("c"), "<bye world>");
    str_free(&s);
    unit_end();

    unit_begin("expansion loop and depth errors through config_apply");
    unit_assert(load_text("helper = x$myorigin\nmyorigin = $helper\n") == NULL);
    unit_assert(fmt_try_buf(want, sizeof(want),
			"%s:2: parameter myorigin: expansion loop: myorigin -> helper -> myorigin", path));
    expect_apply_error(want, 0);
    s = str_new(STR_MAX_DEFAULT);
    config_init();
    for (int i = 0; i < 100; i++) {
	char name[16], value[16];

	fmt_buf_or_panic(name, sizeof(name), "p%d", i);
	fmt_buf_or_panic(value, sizeof(value), "$p%d", i + 1);
	config_set(name, value);
    }
    unit_assert(config_expand("$p0", s, &err) < 0);
    unit_assert(contains(err, "nested more than"));
    /* conditionals nest at most 100 deep, also for an expander that
     * asks for no limit (max_depth 0) */
    {
	static const int levels[] = {100, 101, 5000};
	struct str *deep = str_new(STR_MAX_DEFAULT);
	struct config_expander x = {one_lookup, NULL, NULL, 0};

	config_init();
	config_set("a", "1");
	for (size_t k = 0; k < sizeof(levels) / sizeof(levels[0]); k++) {
	    str_reset(deep);
	    for (int i = 0; i < levels[k]; i++)
		str_appends_or_panic(deep, "${a?");
	    str_appends_or_panic(deep, "x");
	    for (int i = 0; i < levels[k]; i++)
		str_appends_or_panic(deep, "}");
	    for (int with = 0; with < 2; with++) {
		int rc;

		str_reset(s);
		err = NULL;
		rc = with ? config_expand_with(str_cstr(deep), s, &x, &err)
		    : config_expand(str_cstr(deep), s, &err);
		if (levels[k] <= 100) {
		    unit_assert_idx(rc == 0, k);
		    unit_assert_streq_idx(str_cstr(s), "x", k);
		} else {
		    unit_assert_idx(rc < 0, k);
		    unit_assert_idx(contains(err, "conditionals nested more than 100 levels deep"), k);
		}
	    }
	}
	str_free(&deep);
    }
    /* exponential growth is bounded by the value size limit */
    config_init();
    for (int i = 0; i < 30; i++) {
	char name[16], value[32];

	fmt_buf_or_panic(name, sizeof(name), "q%d", i);
	fmt_buf_or_panic(value, sizeof(value), "$q%d$q%d", i + 1, i + 1);
	config_set(name, value);
    }
    config_set("q30", "xxxxxxxx");
    str_reset(s);
    unit_assert(config_expand("$q0", s, &err) < 0);
    unit_assert(contains(err, "longer than"));
    str_free(&s);
    unit_end();

    unit_begin("type conversion and bounds, errors name file:line");
    for (size_t i = 0; i < sizeof(convert_cases) / sizeof(convert_cases[0]); i++) {
	const struct convert_case *c = &convert_cases[i];
	const struct param_def *d = first_of_type(c->type);
	char text[256];

	if (d == NULL)
	    continue;			/* no parameter of this type yet */
	fmt_buf_or_panic(text, sizeof(text), "# comment\n%s = %s\n", d->name, c->text);
	unit_assert_idx(load_text(text) == NULL, i);
	if (c->error) {
	    char where[PATH_MAX + 256];

	    fmt_buf_or_panic(where, sizeof(where), "%s:2: parameter %s: %s", path, d->name, c->error);
	    expect_apply_error(where, i);
	} else if (d->min != 0 && c->want < d->min) {
	    expect_apply_error("less than the minimum", i);
	} else if ((d->min != 0 || d->max != 0) && c->want > d->max) {
	    expect_apply_error("more than the maximum", i);
	} else {
	    unit_assert_idx(config_apply(&err) == 0, i);
	    if (c->type == PARAM_BOOL)
		unit_assert_idx(*(bool *) d->var == (c->want != 0), i);
	    else
		unit_assert_idx(*(long *) d->var == c->want, i);
	}
    }
    unit_assert(load_text("ipc_timeout = 1w\n") == NULL);
    unit_assert(fmt_try_buf(want, sizeof(want), "%s:1: parameter ipc_timeout: value 1w is more than the maximum 86400", path));
    expect_apply_error(want, 0);
    unit_assert(load_text("max_use = 0\n") == NULL);
    unit_assert(fmt_try_buf(want, sizeof(want), "%s:1: parameter max_use: value 0 is less than the minimum 1", path));
    expect_apply_error(want, 0);
    unit_assert(load_text("daemon_timeout = 1w\nmax_use = $n\nn = 77\n") == NULL);
    unit_assert(config_apply(&err) == 0);
    unit_assert_inteq(var_daemon_timeout, 604800);
    unit_assert_inteq(var_max_use, 77);
    unit_end();

    unit_begin("parse_time, parse_long, parse_bool");
    for (size_t i = 0; i < sizeof(time_cases) / sizeof(time_cases[0]); i++) {
	long v = -1;

	unit_assert_idx(parse_time(time_cases[i].text, &v) == time_cases[i].ok, i);
	if (time_cases[i].ok)
	    unit_assert_idx(v == time_cases[i].seconds, i);
    }
    {
	long l;
	bool b;

	unit_assert(parse_long("-12", &l) && l == -12);
	unit_assert(parse_long("+7", &l) && l == 7);
	unit_assert(!parse_long(" 7", &l));
	unit_assert(!parse_long("7 ", &l));
	unit_assert(!parse_long("-", &l));
	unit_assert(parse_bool("ON", &b) && b);
	unit_assert(parse_bool("False", &b) && !b);
	unit_assert(!parse_bool("", &b));
	unit_assert(!parse_bool("yess", &b));
    }
    unit_end();

    unit_begin("-o overrides win, empty values, errors name -o");
    unit_assert(load_text("max_use = 5\nsyslog_name = file\n") == NULL);
    unit_assert(config_override("max_use=7", &err) == 0);
    unit_assert(config_override(" syslog_name = over ride ", &err) == 0);
    unit_assert(config_override("maillog_file=", &err) == 0);
    unit_assert(config_apply(&err) == 0);
    unit_assert_inteq(var_max_use, 7);
    unit_assert_streq(var_syslog_name, "over ride");
    unit_assert_streq(var_maillog_file, "");
    unit_assert(config_is_set("maillog_file"));
    unit_assert_streq(config_where("max_use"), "-o max_use=7");
    unit_assert(config_override("max_use", &err) < 0);
    unit_assert(contains(err, "-o max_use: missing '='"));
    unit_assert(config_override("bad/name=1", &err) < 0);
    unit_assert(contains(err, "bad character '/'"));
    unit_assert(config_override("max_use=abc", &err) == 0);
    expect_apply_error("-o max_use=abc: parameter max_use: bad number \"abc\"", 0);
    /* the failed apply left the previous values in place */
    unit_assert_inteq(var_max_use, 7);
    unit_assert_streq(var_syslog_name, "over ride");
    unit_end();

    unit_begin("reload: config_init resets everything");
    unit_assert(load_text("max_use = 5\nfoo = bar\nsyslog_name = one\n") == NULL);
    unit_assert(config_override("ipc_timeout=10", &err) == 0);
    unit_assert(config_apply(&err) == 0);
    unit_assert_inteq(var_max_use, 5);
    unit_assert_inteq(var_ipc_timeout, 10);
    unit_assert(load_text("syslog_name = two\n") == NULL);
    unit_assert(config_apply(&err) == 0);
    unit_assert_inteq(var_max_use, 100);
    unit_assert_inteq(var_ipc_timeout, 300);
    unit_assert_streq(var_syslog_name, "two");
    unit_assert(config_raw("foo") == NULL);
    unit_assert(!config_is_set("max_use"));
    unit_end();

    unit_begin("RAW parameters are kept as written (expanded by their user)");
    unit_assert_inteq(param_find("forward_path")->type, PARAM_RAW);
    unit_assert(load_text("home = /nowhere\nforward_path = $home/.fwd${extension?+$extension}\n"
			  "copy = $forward_path!\n") == NULL);
    unit_assert(config_apply(&err) == 0);
    unit_assert_streq(var_forward_path, "$home/.fwd${extension?+$extension}");
    unit_assert_streq(config_value("forward_path"), "$home/.fwd${extension?+$extension}");
    unit_assert_streq(config_value("copy"), "$home/.fwd${extension?+$extension}!");
    unit_assert(load_text("") == NULL);
    unit_assert(config_apply(&err) == 0);
    unit_assert_streq(var_forward_path, "$home/.forward${recipient_delimiter}${extension}, $home/.forward");
    unit_assert_streq(config_default_value("forward_path"),
		      "$home/.forward${recipient_delimiter}${extension}, $home/.forward");
    unit_end();

    unit_begin("config_value_why: the value, or why there is none");
    {
	const char *why = NULL;

	unit_assert(load_text("a = $b\nb = $a\nc = x$myhostname\nmyhostname = h\n") == NULL);
	unit_assert_streq(config_value_why("c", &why), "xh");
	unit_assert(config_value_why("no_such_name", &why) == NULL);
	unit_assert_streq(why, "unknown parameter");
	unit_assert(config_value_why("a", &why) == NULL);
	unit_assert(contains(why, "expansion loop: a -> b -> a"));
	unit_assert(config_value("a") == NULL);
    }
    unit_end();

    unit_begin("unused names: set in main.cf, not in the table, never referenced");
    {
	struct collect c;

	memset(&c, 0, sizeof(c));
	unit_assert(load_text("typo_name = 1\nhelper = x\nmyorigin = $helper\n"
			      "other = ${helper2?y}\nhelper2 = z\nmax_use = 3\n"
			      "helper3 = q\nlist = $(helper3:n)\n") == NULL);
	unit_assert(config_override("from_o=1", &err) == 0);
	config_unused(collect_unused, &c);
	/* "other" and "list" are unused too: nothing refers to them */
	unit_assert_inteq(c.count, 3);
	unit_assert_streq(c.names[0], "typo_name");
	unit_assert(fmt_try_buf(want, sizeof(want), "%s:1", path));
	unit_assert_streq(c.wheres[0], want);
	unit_assert_streq(c.names[1], "other");
	unit_assert_streq(c.names[2], "list");
    }
    unit_end();

    unit_begin("config_names is sorted; config_split splits on space and comma");
    s = str_new(STR_MAX_DEFAULT);
    unit_assert(load_text("zzz_last = 1\naaa_first = 2\n") == NULL);
    config_names(collect_item, s);
    unit_assert(strncmp(str_cstr(s), "aaa_first|", 10) == 0);
    unit_assert(contains(str_cstr(s), "|max_use|"));
    unit_assert(strcmp(str_cstr(s) + str_len(s) - 9, "|zzz_last") == 0);
    str_reset(s);
    config_split(" a, b,,c\td ,", collect_item, s);
    unit_assert_streq(str_cstr(s), "a|b|c|d");
    str_reset(s);
    config_split(" , ", collect_item, s);
    unit_assert_streq(str_cstr(s), "");
    str_free(&s);
    unit_end();

    unit_begin("config_load_fd reads a descriptor from offset 0, each time");
    {
	int fd = memfd_create("test-main.cf", MFD_CLOEXEC);
	const char *text = "max_use = 42\nmyhostname = fd.example\n";

	unit_assert(fd >= 0);
	unit_assert(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
	for (int round = 0; round < 2; round++) {	/* the offset is not consumed */
	    config_init();
	    unit_assert_idx(config_load_fd(fd, "/etc/x/main.cf", &err) == 0, round);
	    unit_assert_idx(config_apply(&err) == 0, round);
	    unit_assert_inteq(var_max_use, 42);
	    unit_assert_streq(var_myhostname, "fd.example");
	    unit_assert_streq(config_where("max_use"), "/etc/x/main.cf:1");
	}
	(void) close(fd);
	config_init();
	unit_assert(config_load_fd(-1, "/etc/x/main.cf", &err) < 0);
	unit_assert(contains(err, "/etc/x/main.cf"));
    }
    unit_end();

    unit_begin("lenient mode reports every error and keeps what is good");
    {
	int errors = 0;

	config_init();
	write_main_cf("max_use = lots\nbroken line\n  \nmyhostname = good.example\n"
		      "ipc_timeout = 7\n");
	config_set_reporter(count_error, &errors);
	unit_assert(config_load(dir, &err) == 0);
	unit_assert_inteq(errors, 1);			/* the line without '=' */
	unit_assert(config_apply(&err) == 0);
	unit_assert_inteq(errors, 2);			/* max_use = lots */
	unit_assert_inteq(config_reported_errors(), 2);
	unit_assert_inteq(var_max_use, 100);		/* its default */
	unit_assert_inteq(var_ipc_timeout, 7);		/* the rest stays */
	unit_assert_streq(var_myhostname, "good.example");
	config_set_reporter(NULL, NULL);
	/* strict again: the same file fails */
	config_init();
	unit_assert(config_load(dir, &err) < 0);
	unit_assert(contains(err, "main.cf:2: missing '='"));
    }
    unit_end();

    (void) unlink(path);
    (void) rmdir(dir);
    return unit_done();
}
