/* users.c - the users file (users.h): parse an account's fields, and
 * build the auth table and the mailbox table from the file. */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "errtext.h"
#include "file_read.h"
#include "msg.h"
#include "safe_file.h"
#include "str.h"

/* mail */
#include "table.h"
#include "users.h"

#define USERS_FILE_MAX	((size_t) 256 << 20)	/* bytes of the users file */

static struct errtext users_error;

/* users_parse_id - "" -> -1, else a decimal id below 2^31 */
static bool users_parse_id(const char *text, long *id)
{
    char *end;
    long v;

    if (*text == 0) {
	*id = -1;
	return true;
    }
    if (!isdigit((unsigned char) *text))
	return false;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || *end || v > INT_MAX)
	return false;
    *id = v;
    return true;
}

/* users_parse_quota - bytes with an optional K, M or G suffix */
bool users_parse_quota(const char *text, long *bytes)
{
    size_t len = strlen(text);
    long mult = 1, v = 0;
    char last;

    if (len == 0)
	return false;
    last = text[len - 1];
    if (last == 'k' || last == 'K')
	mult = 1024;
    else if (last == 'm' || last == 'M')
	mult = 1024L * 1024;
    else if (last == 'g' || last == 'G')
	mult = 1024L * 1024 * 1024;
    if (mult != 1)
	len--;
    if (len == 0)
	return false;
    for (size_t i = 0; i < len; i++) {
	if (!isdigit((unsigned char) text[i]) || v > (LONG_MAX - 9) / 10)
	    return false;
	v = v * 10 + (text[i] - '0');
    }
    if (v > LONG_MAX / mult)
	return false;
    *bytes = v * mult;
    return true;
}

/* users_scram_ok - "ITER,SALT,STORED,SERVER" shape (base64 characters) */
static bool users_scram_ok(const char *s)
{
    int commas = 0;

    if (!isdigit((unsigned char) *s))
	return false;
    for (; *s; s++) {
	if (*s == ',')
	    commas++;
	else if (!isalnum((unsigned char) *s) && *s != '+' && *s != '/' && *s != '=')
	    return false;
    }
    return commas == 3;
}

/* users_parse_fields - password:uid:gid:mail_location:quota[:scram[:flags]] */
int users_parse_fields(char *buf, struct users_entry *e, const char **error_r)
{
    char *field[7] = {0};
    int n = 0;
    char *cp = buf;

    memset(e, 0, sizeof(*e));
    for (;;) {
	char *colon = strchr(cp, ':');

	if (n == 7)
	    return errtext_fail(&users_error, error_r, "too many fields (at most 8)");
	field[n++] = cp;
	if (colon == NULL)
	    break;
	*colon = 0;
	cp = colon + 1;
    }
    if (n < 5)
	return errtext_fail(&users_error, error_r,
			    "too few fields (address:password:uid:gid:mail_location:quota)");
    for (int i = 0; i < n; i++)
	for (const char *p = field[i]; *p; p++)
	    if (isspace((unsigned char) *p) || (unsigned char) *p < 32)
		return errtext_fail(&users_error, error_r, "white space or control character in field %d",
				    i + 2);
    e->password = field[0];
    if (!users_parse_id(field[1], &e->uid))
	return errtext_fail(&users_error, error_r, "bad uid \"%.32s\"", field[1]);
    if (!users_parse_id(field[2], &e->gid))
	return errtext_fail(&users_error, error_r, "bad gid \"%.32s\"", field[2]);
    if ((e->uid < 0) != (e->gid < 0))
	return errtext_fail(&users_error, error_r, "give both uid and gid, or neither");
    e->mail_location = field[3];
    if (*e->mail_location == 0)
	return errtext_fail(&users_error, error_r, "empty mail_location");
    if (strstr(e->mail_location, "..") != NULL)
	return errtext_fail(&users_error, error_r, "\"..\" in mail_location");
    e->quota = -1;
    if (n > 4 && *field[4] && !users_parse_quota(field[4], &e->quota))
	return errtext_fail(&users_error, error_r, "bad quota \"%.32s\"", field[4]);
    e->scram = n > 5 ? field[5] : "";
    if (*e->scram && !users_scram_ok(e->scram))
	return errtext_fail(&users_error, error_r, "bad SCRAM secret (ITERATIONS,SALT,STOREDKEY,SERVERKEY)");
    e->locked = *e->password == 0 || *e->password == '!' || *e->password == '*';
    if (n > 6 && *field[6]) {
	char *flags = field[6], *word;

	while ((word = strsep(&flags, ",")) != NULL) {
	    if (strcmp(word, "disabled") == 0)
		e->locked = true;
	    else if (*word)
		return errtext_fail(&users_error, error_r, "unknown flag \"%.32s\"", word);
	}
    }
    return 0;
}

/* users_write - write a table source text; chown when asked */
static int users_write(const char *path, const struct str *text, mode_t mode, uid_t uid,
		       gid_t gid, const char **error_r)
{
    const char *error;

    if (atomic_write_file(path, str_cstr(text), str_len(text), mode, &error) < 0)
	return errtext_fail(&users_error, error_r, "%s", error);
    if (uid != (uid_t) -1 && chown(path, uid, gid) < 0)
	return errtext_fail(&users_error, error_r, "chown %s: %m", path);
    return 0;
}

/* users_build_one - build one table from its text; chown the built file */
static int users_build_one(const char *type, const char *path, uid_t uid, gid_t gid,
			   const char **error_r)
{
    struct str *name = str_new(PATH_MAX + 64), *source = str_new(PATH_MAX), *built = str_new(PATH_MAX);
    char tbuf[32];
    const char *error;
    int rc = -1;

    if (!str_try_printf(name, "%s:%s", type, path))
	errtext_fail(&users_error, error_r, "%s: path too long", path);
    else if (table_build(str_cstr(name), type, 0, &error) < 0)
	errtext_fail(&users_error, error_r, "%s", error);
    else if (table_paths(str_cstr(name), type, tbuf, sizeof(tbuf), source, built, &error) < 0)
	errtext_fail(&users_error, error_r, "%s", error);
    else if (uid != (uid_t) -1 && chown(str_cstr(built), uid, gid) < 0)
	errtext_fail(&users_error, error_r, "chown %s: %m", str_cstr(built));
    else
	rc = 0;
    str_free(&name);
    str_free(&source);
    str_free(&built);
    return rc;
}

/* users_build - the two tables from the users file */
int users_build(const char *name, const char *default_type, uid_t auth_uid, gid_t auth_gid,
		size_t *count_r, const char **error_r)
{
    struct str *text = str_new(USERS_FILE_MAX);
    struct str *auth = str_new(USERS_FILE_MAX * 2), *mbox = str_new(USERS_FILE_MAX * 2);
    struct str *path = str_new(PATH_MAX);
    struct str *source = str_new(PATH_MAX), *built = str_new(PATH_MAX);
    const char *file, *error;
    char type[32];
    size_t lineno = 0, count = 0;
    int rc = -1;
    char *cp, *line;

    if (table_paths(name, default_type, type, sizeof(type), source, built, &error) < 0) {
	errtext_fail(&users_error, error_r, "%s", error);
	goto out;
    }
    file = str_cstr(source);
    if (file_read_path(file, text, USERS_FILE_MAX, &error) < 0) {
	errtext_fail(&users_error, error_r, "%s", error);
	goto out;
    }
    if (str_has_nul(text)) {
	errtext_fail(&users_error, error_r, "%s: NUL byte in the file", file);
	goto out;
    }
    str_appends_or_panic(auth, "# built by posthorn users from the users file: do not edit\n");
    str_appends_or_panic(mbox, "# built by posthorn users from the users file: do not edit\n");
    cp = (char *) str_cstr(text);
    while ((line = strsep(&cp, "\n")) != NULL) {
	struct users_entry e;
	char *addr = line, *fields, *rest;
	size_t len;

	lineno++;
	len = strlen(line);
	if (len && line[len - 1] == '\r')
	    line[--len] = 0;
	while (*addr == ' ' || *addr == '\t')
	    addr++;
	if (*addr == 0 || *addr == '#')
	    continue;
	if ((fields = strchr(addr, ':')) == NULL || fields == addr) {
	    errtext_fail(&users_error, error_r, "%s:%zu: expected address:password:...", file, lineno);
	    goto out;
	}
	*fields++ = 0;
	for (char *p = addr; *p; p++) {
	    if (isspace((unsigned char) *p)) {
		errtext_fail(&users_error, error_r, "%s:%zu: white space in the address", file, lineno);
		goto out;
	    }
	    *p = (char) tolower((unsigned char) *p);
	}
	if (strchr(addr, '@') == NULL) {
	    errtext_fail(&users_error, error_r, "%s:%zu: address \"%.64s\" has no @domain", file,
			 lineno, addr);
	    goto out;
	}
	str_appendf_or_panic(auth, "%s %s\n", addr, fields);
	rest = fields;
	if (users_parse_fields(rest, &e, &error) < 0) {
	    errtext_fail(&users_error, error_r, "%s:%zu: %s", file, lineno, error);
	    goto out;
	}
	str_appendf_or_panic(mbox, "%s %s", addr, e.mail_location);
	if (e.quota >= 0)
	    str_appendf_or_panic(mbox, " quota=%ld", e.quota);
	str_appendc_or_panic(mbox, '\n');
	count++;
    }
    if (!str_try_printf(path, "%s%s", file, USERS_AUTH_SUFFIX)) {
	errtext_fail(&users_error, error_r, "%s: path too long", file);
	goto out;
    }
    if (users_write(str_cstr(path), auth, 0600, auth_uid, auth_gid, error_r) < 0
	|| users_build_one(type, str_cstr(path), auth_uid, auth_gid, error_r) < 0)
	goto out;
    str_printf_or_panic(path, "%s%s", file, USERS_MAILBOX_SUFFIX);
    if (users_write(str_cstr(path), mbox, 0644, (uid_t) -1, (gid_t) -1, error_r) < 0
	|| users_build_one(type, str_cstr(path), (uid_t) -1, (gid_t) -1, error_r) < 0)
	goto out;
    if (count_r)
	*count_r = count;
    rc = 0;
  out:
    str_free(&text);
    str_free(&auth);
    str_free(&mbox);
    str_free(&path);
    str_free(&source);
    str_free(&built);
    return rc;
}
