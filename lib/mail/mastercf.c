/* mastercf.c - parse master.cf into a table of services (see mastercf.h).
 *
 * The file is read whole (bounded), split into logical lines (an entry
 * and its continuation lines), each logical line into tokens ("{ ... }"
 * groups one argument), and the tokens are checked field by field. The
 * result is built only from a file without errors. */

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* base */
#include "errtext.h"
#include "file_read.h"
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "strv.h"

/* mail */
#include "mastercf.h"

#define MASTERCF_MAX_FILE	((size_t) 4 << 20)
#define MASTERCF_MAX_NAME	100	/* unix/fifo service name length */
#define MASTERCF_MAX_NUMBER	100000000L

static struct errtext mastercf_error;	/* the text behind error_r */

/* mc_error - format "FILE:LINE: text" (FILE: text if line is 0) behind
 * *error_r; returns -1 */
static int mc_error(const char **error_r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int mc_error(const char **error_r, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) errtext_vset(&mastercf_error, fmt, ap);
    va_end(ap);
    /* the new text is an argument: errtext formats through a temporary */
    if (line > 0)
	return errtext_fail(&mastercf_error, error_r, "%s:%d: %s", file, line, mastercf_error.text);
    return errtext_fail(&mastercf_error, error_r, "%s: %s", file, mastercf_error.text);
}

/* mastercf_type_name - "inet", "unix", "fifo" or "pass" */
const char *mastercf_type_name(enum mastercf_type type)
{
    switch (type) {
    case MASTERCF_INET:
	return "inet";
    case MASTERCF_UNIX:
	return "unix";
    case MASTERCF_FIFO:
	return "fifo";
    case MASTERCF_PASS:
	return "pass";
    }
    return "unknown";
}

/* entry_fini - free what an entry owns */
static void entry_fini(struct mastercf_entry *e)
{
    mem_free(&e->service);
    mem_free(&e->host);
    mem_free(&e->port);
    mem_free(&e->command);
    mem_free(&e->file);
    strv_fini(&e->argv);
    strv_fini(&e->overrides);
}

/* mastercf_free - free a table and set *cfp to NULL */
void mastercf_free(struct mastercf **cfp)
{
    if (cfp && *cfp) {
	for (size_t i = 0; i < (*cfp)->count; i++)
	    entry_fini(&(*cfp)->entries[i]);
	mem_free(&(*cfp)->entries);
	mem_free(cfp);
    }
}

/* One token of a logical line. */
struct token {
    char *text;
    bool grouped;		/* was written "{ ... }" */
};

struct tokens {
    struct token *v;
    size_t count, alloc;
};

/* tokens_free - free a token list */
static void tokens_free(struct tokens *t)
{
    for (size_t i = 0; i < t->count; i++)
	mem_free(&t->v[i].text);
    mem_free(&t->v);
    t->count = t->alloc = 0;
}

/* tokens_add - append a copy of text[0..len) */
static void tokens_add(struct tokens *t, const char *text, size_t len, bool grouped)
{
    if (t->count == t->alloc) {
	t->alloc = t->alloc ? t->alloc * 2 : 16;
	t->v = mem_realloc(t->v, mem_size_mul(t->alloc, sizeof(*t->v)));
    }
    t->v[t->count].text = mem_strndup(text, len);
    t->v[t->count].grouped = grouped;
    t->count++;
}

/* is_space - white space inside a logical line */
static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* tokenize - split a logical line; "{ text }" is one token */
static int tokenize(const char *file, int line, const char *text, struct tokens *t,
		    const char **error_r)
{
    const char *cp = text;

    for (;;) {
	const char *start;

	while (is_space(*cp))
	    cp++;
	if (*cp == 0)
	    return 0;
	if (*cp == '{') {
	    int level = 1;
	    const char *end;

	    for (end = cp + 1; *end && level > 0; end++) {
		if (*end == '{')
		    level++;
		else if (*end == '}')
		    level--;
	    }
	    if (level > 0)
		return mc_error(error_r, file, line, "missing '}' after \"%.40s\"", cp);
	    /* end is just past the closing brace */
	    if (*end && !is_space(*end))
		return mc_error(error_r, file, line, "text after '}': \"%.40s\"", end);
	    start = cp + 1;
	    cp = end - 1;			/* the closing brace */
	    while (start < cp && is_space(*start))
		start++;
	    while (cp > start && is_space(cp[-1]))
		cp--;
	    tokens_add(t, start, (size_t) (cp - start), true);
	    cp = end;
	} else {
	    start = cp;
	    while (*cp && !is_space(*cp))
		cp++;
	    tokens_add(t, start, (size_t) (cp - start), false);
	}
    }
}

/* parse_number - strict decimal in [0, max]; false if bad */
static bool parse_number(const char *text, long max, long *value)
{
    long v = 0;

    if (*text == 0)
	return false;
    for (const char *cp = text; *cp; cp++) {
	if (!isdigit((unsigned char) *cp))
	    return false;
	v = v * 10 + (*cp - '0');
	if (v > max)
	    return false;
    }
    *value = v;
    return true;
}

/* parse_yn - a y/n column ("-" gives the default) */
static int parse_yn(const char *file, int line, const char *column, const char *text,
		    bool def, bool *value, const char **error_r)
{
    if (strcmp(text, "-") == 0)
	*value = def;
    else if (strcmp(text, "y") == 0)
	*value = true;
    else if (strcmp(text, "n") == 0)
	*value = false;
    else
	return mc_error(error_r, file, line, "%s column: bad value \"%s\" (use y, n or -)",
			column, text);
    return 0;
}

/* valid_port - a port number 1..65535 or a service name */
static bool valid_port(const char *port)
{
    long v;

    if (isdigit((unsigned char) *port))
	return parse_number(port, 65535, &v) && v > 0;
    if (!isalpha((unsigned char) *port))
	return false;
    for (const char *cp = port; *cp; cp++)
	if (!isalnum((unsigned char) *cp) && *cp != '-' && *cp != '_')
	    return false;
    return true;
}

/* valid_host - an IPv4 address or a host name */
static bool valid_host(const char *host)
{
    if (*host == 0 || strlen(host) > 253)
	return false;
    for (const char *cp = host; *cp; cp++)
	if (!isalnum((unsigned char) *cp) && *cp != '-' && *cp != '.' && *cp != '_')
	    return false;
    return true;
}

/* parse_inet_service - split "port", "host:port", "[v6]:port", "*:port" */
static int parse_inet_service(const char *file, int line, struct mastercf_entry *e,
			      const char **error_r)
{
    const char *svc = e->service, *colon, *port;
    char *host = NULL;

    if (*svc == '[') {
	const char *close = strchr(svc, ']');
	struct in6_addr addr;

	if (close == NULL || close[1] != ':')
	    return mc_error(error_r, file, line,
			    "inet service \"%s\": expected [ipv6-address]:port", svc);
	host = mem_strndup(svc + 1, (size_t) (close - svc - 1));
	if (inet_pton(AF_INET6, host, &addr) != 1) {
	    mem_free(&host);
	    return mc_error(error_r, file, line, "inet service \"%s\": bad IPv6 address", svc);
	}
	port = close + 2;
    } else if ((colon = strchr(svc, ':')) != NULL) {
	if (strchr(colon + 1, ':') != NULL)
	    return mc_error(error_r, file, line,
			    "inet service \"%s\": write an IPv6 address as [address]:port", svc);
	host = mem_strndup(svc, (size_t) (colon - svc));
	if (strcmp(host, "*") != 0 && !valid_host(host)) {
	    mem_free(&host);
	    return mc_error(error_r, file, line, "inet service \"%s\": bad host name or address", svc);
	}
	port = colon + 1;
    } else {
	port = svc;
    }
    if (!valid_port(port)) {
	mem_free(&host);
	return mc_error(error_r, file, line,
			"inet service \"%s\": bad port \"%s\" (a number 1-65535 or a service name)",
			svc, port);
    }
    e->host = host;
    e->port = mem_strdup(port);
    return 0;
}

/* valid_socket_name - a unix/fifo service: a plain file name */
static bool valid_socket_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > MASTERCF_MAX_NAME || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
	return false;
    for (const char *cp = name; *cp; cp++)
	if (!isalnum((unsigned char) *cp) && *cp != '-' && *cp != '_' && *cp != '.')
	    return false;
    return true;
}

/* parse_override - normalize "name = value" to "name=value" */
static int parse_override(const char *file, int line, const char *text, struct mastercf_entry *e,
			  const char **error_r)
{
    const char *eq = strchr(text, '='), *name = text, *name_end, *value, *value_end;
    struct str norm;

    while (is_space(*name))
	name++;
    if (eq == NULL)
	return mc_error(error_r, file, line, "-o \"%s\": expected name=value", text);
    name_end = eq;
    while (name_end > name && is_space(name_end[-1]))
	name_end--;
    if (name_end == name)
	return mc_error(error_r, file, line, "-o \"%s\": missing parameter name", text);
    for (const char *cp = name; cp < name_end; cp++)
	if (!isalnum((unsigned char) *cp) && *cp != '_')
	    return mc_error(error_r, file, line, "-o \"%s\": bad character in parameter name", text);
    value = eq + 1;
    while (is_space(*value))
	value++;
    value_end = value + strlen(value);
    while (value_end > value && is_space(value_end[-1]))
	value_end--;
    str_init(&norm, STR_MAX_DEFAULT);
    /* parts of one logical line, which is at most MASTERCF_MAX_FILE */
    str_append_or_panic(&norm, name, (size_t) (name_end - name));
    str_appendc_or_panic(&norm, '=');
    str_append_or_panic(&norm, value, (size_t) (value_end - value));
    strv_add(&e->overrides, str_cstr(&norm));
    str_fini(&norm);
    return 0;
}

/* parse_entry - check the tokens of one entry and fill e */
static int parse_entry(const char *file, int line, struct tokens *t, long default_maxproc,
		       struct mastercf_entry *e, const char **error_r)
{
    const char *type, *wakeup, *maxproc;
    char *text;
    size_t len;

    if (t->count < 8)
	return mc_error(error_r, file, line, "expected at least 8 fields (service type private "
			"unpriv chroot wakeup maxproc command), found %zu", t->count);
    for (size_t i = 0; i < 8; i++)
	if (t->v[i].grouped)
	    return mc_error(error_r, file, line, "\"{ ... }\" is allowed only in command arguments");
    e->file = mem_strdup(file);
    e->line = line;
    e->service = mem_strdup(t->v[0].text);

    type = t->v[1].text;
    if (strcmp(type, "inet") == 0)
	e->type = MASTERCF_INET;
    else if (strcmp(type, "unix") == 0)
	e->type = MASTERCF_UNIX;
    else if (strcmp(type, "fifo") == 0)
	e->type = MASTERCF_FIFO;
    else if (strcmp(type, "pass") == 0)
	e->type = MASTERCF_PASS;
    else
	return mc_error(error_r, file, line, "service \"%s\": unknown type \"%s\" "
			"(use inet, unix, fifo or pass)", e->service, type);
    if (e->type == MASTERCF_INET) {
	if (parse_inet_service(file, line, e, error_r) < 0)
	    return -1;
    } else if (!valid_socket_name(e->service)) {
	return mc_error(error_r, file, line, "%s service \"%s\": bad name (letters, digits, "
			"'-', '_' and '.' only, at most %d)", type, e->service, MASTERCF_MAX_NAME);
    }
    if (strcmp(t->v[2].text, "w") == 0) {
	/* submit/: only a unix socket, which a peer cannot forge */
	if (e->type != MASTERCF_UNIX)
	    return mc_error(error_r, file, line, "%s service \"%s\": private column \"w\" "
			    "(a socket in submit/) needs type unix", type, e->service);
	e->world = true;
	e->priv = false;
    } else if (parse_yn(file, line, "private", t->v[2].text, true, &e->priv, error_r) < 0)
	return -1;
    if (parse_yn(file, line, "unpriv", t->v[3].text, true, &e->unpriv, error_r) < 0
	|| parse_yn(file, line, "chroot", t->v[4].text, false, &e->chroot, error_r) < 0)
	return -1;

    wakeup = t->v[5].text;
    if (strcmp(wakeup, "-") == 0) {
	e->wakeup = 0;
    } else {
	text = mem_strdup(wakeup);
	len = strlen(text);
	if (len > 1 && text[len - 1] == '?') {
	    e->wakeup_if_used = true;
	    text[len - 1] = 0;
	}
	if (!parse_number(text, MASTERCF_MAX_NUMBER, &e->wakeup)) {
	    mem_free(&text);
	    return mc_error(error_r, file, line, "wakeup column: bad value \"%s\" "
			    "(seconds, optionally followed by '?', or -)", wakeup);
	}
	mem_free(&text);
    }
    if (e->wakeup > 0 && e->type == MASTERCF_PASS)
	return mc_error(error_r, file, line, "pass service \"%s\": wakeup column must be 0 or - "
			"(a pass listener takes hand-overs, not wake-up requests)", e->service);

    maxproc = t->v[6].text;
    if (strcmp(maxproc, "-") == 0)
	e->maxproc = default_maxproc;
    else if (!parse_number(maxproc, MASTERCF_MAX_NUMBER, &e->maxproc))
	return mc_error(error_r, file, line, "maxproc column: bad value \"%s\" "
			"(a number, 0 for no limit, or -)", maxproc);

    if (strcmp(t->v[7].text, "-") == 0)
	return mc_error(error_r, file, line, "command column: a command name is required");
    e->command = mem_strdup(t->v[7].text);
    strv_add(&e->argv, e->command);
    for (size_t i = 8; i < t->count; i++) {
	strv_add(&e->argv, t->v[i].text);
	if (strcmp(t->v[i].text, "-o") == 0 && !t->v[i].grouped) {
	    if (i + 1 >= t->count)
		return mc_error(error_r, file, line, "-o at the end of the line: expected name=value");
	    i++;
	    strv_add(&e->argv, t->v[i].text);
	    if (parse_override(file, line, t->v[i].text, e, error_r) < 0)
		return -1;
	}
    }
    return 0;
}

/* same_socket - an entry of another type with the same socket file (a
 * unix, fifo or pass service of the same name, both private or both
 * public), or NULL */
static const struct mastercf_entry *same_socket(const struct mastercf *cf,
						const struct mastercf_entry *e)
{
    if (e->type == MASTERCF_INET)
	return NULL;
    for (size_t i = 0; i < cf->count; i++)
	if (cf->entries[i].type != MASTERCF_INET && cf->entries[i].priv == e->priv
	    && cf->entries[i].world == e->world
	    && strcmp(cf->entries[i].service, e->service) == 0)
	    return &cf->entries[i];
    return NULL;
}

/* add_entry - parse one logical line into the table */
static int add_entry(const char *file, int line, const char *text, long default_maxproc,
		     struct mastercf *cf, size_t *alloc, const char **error_r)
{
    struct tokens t = {NULL, 0, 0};
    struct mastercf_entry e;
    int ret;

    memset(&e, 0, sizeof(e));
    ret = tokenize(file, line, text, &t, error_r);
    if (ret == 0)
	ret = parse_entry(file, line, &t, default_maxproc, &e, error_r);
    tokens_free(&t);
    if (ret == 0) {
	const struct mastercf_entry *dup = mastercf_find(cf, e.service, e.type);

	if (dup)
	    ret = mc_error(error_r, file, line, "duplicate service \"%s\" type %s "
			   "(first defined at line %d)", e.service, mastercf_type_name(e.type),
			   dup->line);
	else if ((dup = same_socket(cf, &e)) != NULL)
	    ret = mc_error(error_r, file, line, "service \"%s\" type %s: the same %s/%s socket "
			   "as type %s at line %d", e.service, mastercf_type_name(e.type),
			   mastercf_socket_dir(&e), e.service,
			   mastercf_type_name(dup->type), dup->line);
    }
    if (ret < 0) {
	entry_fini(&e);
	return -1;
    }
    if (cf->count == *alloc) {
	*alloc = *alloc ? *alloc * 2 : 16;
	cf->entries = mem_realloc(cf->entries, mem_size_mul(*alloc, sizeof(*cf->entries)));
    }
    cf->entries[cf->count++] = e;
    return 0;
}

/* mastercf_parse - parse master.cf text; name is used in errors */
int mastercf_parse(const char *name, const char *text, size_t len, long default_maxproc,
		   struct mastercf **cf_r, const char **error_r)
{
    struct mastercf *cf = mem_zalloc(sizeof(*cf));
    struct str logical;
    const char *cp = text, *end = text + len;
    size_t alloc = 0;
    int lineno = 0, logical_line = 0, ret = 0;

    if (memchr(text, 0, len) != NULL) {
	mem_free(&cf);
	return mc_error(error_r, name, 0, "file contains a NUL byte");
    }
    str_init(&logical, MASTERCF_MAX_FILE);
    for (;;) {
	const char *line = cp, *lend = cp, *nl;
	bool at_eof = (cp >= end), skip = true;

	if (!at_eof) {
	    nl = memchr(cp, '\n', (size_t) (end - cp));
	    lend = nl ? nl : end;
	    cp = nl ? nl + 1 : end;
	    lineno++;
	    for (const char *s = line; s < lend; s++) {
		if (!is_space(*s)) {
		    skip = (*s == '#');
		    break;
		}
	    }
	    if (skip)
		continue;
	    if (is_space(*line)) {
		if (logical_line == 0) {
		    ret = mc_error(error_r, name, lineno,
				   "continuation line without a preceding entry");
		    break;
		}
		/* logical holds at most the whole file */
		str_appendc_or_panic(&logical, ' ');
		str_append_or_panic(&logical, line, (size_t) (lend - line));
		continue;
	    }
	}
	if (logical_line > 0) {
	    if (add_entry(name, logical_line, str_cstr(&logical), default_maxproc, cf, &alloc,
			  error_r) < 0) {
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
    str_fini(&logical);
    if (ret < 0) {
	mastercf_free(&cf);
	return -1;
    }
    *cf_r = cf;
    return 0;
}

/* mastercf_load - parse a master.cf file; 0 and *cf_r, or -1 and an error */
int mastercf_load(const char *path, long default_maxproc, struct mastercf **cf_r,
		  const char **error_r)
{
    struct str buf;
    const char *why;
    int ret;

    str_init(&buf, MASTERCF_MAX_FILE);
    if (file_read_path(path, &buf, MASTERCF_MAX_FILE, &why) < 0)
	ret = errtext_fail(&mastercf_error, error_r, "%s", why);
    else
	ret = mastercf_parse(path, str_cstr(&buf), str_len(&buf), default_maxproc, cf_r, error_r);
    str_fini(&buf);
    return ret;
}

/* mastercf_find - the entry for service + type, or NULL */
const struct mastercf_entry *mastercf_find(const struct mastercf *cf, const char *service,
					   enum mastercf_type type)
{
    for (size_t i = 0; i < cf->count; i++)
	if (cf->entries[i].type == type && strcmp(cf->entries[i].service, service) == 0)
	    return &cf->entries[i];
    return NULL;
}

/* mastercf_socket_dir - see mastercf.h */
const char *mastercf_socket_dir(const struct mastercf_entry *e)
{
    return e->world ? "submit" : e->priv ? "private" : "public";
}

/* mastercf_compare - same listener? anything else different? */
enum mastercf_cmp mastercf_compare(const struct mastercf_entry *a, const struct mastercf_entry *b,
				   const char **what_r)
{
    const char *what = NULL;
    enum mastercf_cmp result = MASTERCF_CMP_CHANGED;

    if (strcmp(a->service, b->service) != 0)
	what = "service";
    else if (a->type != b->type)
	what = "type";
    else if (a->priv != b->priv || a->world != b->world)
	what = "private";
    if (what) {
	result = MASTERCF_CMP_OTHER;
    } else if (a->unpriv != b->unpriv) {
	what = "unpriv";
    } else if (a->chroot != b->chroot) {
	what = "chroot";
    } else if (a->wakeup != b->wakeup || a->wakeup_if_used != b->wakeup_if_used) {
	what = "wakeup";
    } else if (a->maxproc != b->maxproc) {
	what = "maxproc";
    } else if (strcmp(a->command, b->command) != 0) {
	what = "command";
    } else if (a->argv.count != b->argv.count) {
	what = "args";
    } else {
	for (size_t i = 0; i < a->argv.count && what == NULL; i++)
	    if (strcmp(a->argv.items[i], b->argv.items[i]) != 0)
		what = "args";
	if (what == NULL)
	    result = MASTERCF_CMP_IDENTICAL;
    }
    if (what_r)
	*what_r = what;
    return result;
}
