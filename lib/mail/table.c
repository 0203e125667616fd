/* table.c - lookup tables: names, the source text parser, atomic builds,
 * and dispatch to the cdb and Berkeley DB backends (see table.h). */

/* System. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail. */
#include "table.h"

#define TABLE_TYPE_MAX	32		/* bytes in a type name, with NUL */

struct table {
    const struct table_backend *be;
    void *state;
    int flags;
    char *name;				/* "type:path" */
    char *built;			/* the built file's path */
    struct str key;			/* folded lookup key */
    /* Identity of the built file when it was opened (table_changed). */
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    uid_t owner;			/* the built file's owner */
    struct table *prev, *next;		/* every open table */
};

static struct table *table_list;	/* the open tables, newest first */

static char table_errbuf[1024];

static const struct table_backend *const table_backends[] = {
    &table_backend_cdb,
#ifdef HAVE_BDB
    &table_backend_hash,
    &table_backend_btree,
#endif
    NULL,
};

static const char *const table_type_names[] = {
    "cdb",
#ifdef HAVE_BDB
    "hash",
    "btree",
#endif
    NULL,
};

/* table_error - format an error into the shared static buffer */
const char *table_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(table_errbuf, sizeof(table_errbuf), fmt, ap);
    va_end(ap);
    return table_errbuf;
}

/* table_types - the types this build supports */
const char *const *table_types(void)
{
    return table_type_names;
}

/* table_find_backend - the backend for a type name, or NULL */
static const struct table_backend *table_find_backend(const char *type)
{
    for (size_t i = 0; table_backends[i]; i++)
	if (strcmp(table_backends[i]->type, type) == 0)
	    return table_backends[i];
    return NULL;
}

/* table_type_supported - true if this build can open type */
bool table_type_supported(const char *type)
{
    return table_find_backend(type) != NULL;
}

/* table_type_known - true for every type posthorn has, built or not */
static bool table_type_known(const char *type)
{
    return strcmp(type, "cdb") == 0 || strcmp(type, "hash") == 0
	|| strcmp(type, "btree") == 0;
}

/* table_split - split name into type and path; NULL and *error_r on error */
static const struct table_backend *table_split(const char *name, const char *default_type,
					       char *type, size_t type_size,
					       const char **path_r, const char **error_r)
{
    const struct table_backend *be;
    const char *cp;
    size_t n;

    if (default_type == NULL || *default_type == 0)
	default_type = TABLE_DEFAULT_TYPE;
    /* A "type:" prefix is a run of [a-z0-9_] before the first colon;
     * anything else (e.g. "/etc/x:y") is a path with the default type. */
    for (cp = name; (*cp >= 'a' && *cp <= 'z') || (*cp >= '0' && *cp <= '9') || *cp == '_'; cp++)
	 /* void */ ;
    if (*cp == ':' && cp > name) {
	n = (size_t) (cp - name);
	if (n >= type_size) {
	    *error_r = table_error("table %s: type name too long", name);
	    return NULL;
	}
	memcpy(type, name, n);
	type[n] = 0;
	*path_r = cp + 1;
    } else {
	if (!str_try_copy_out(type, type_size, default_type)) {
	    *error_r = table_error("table %s: default type name too long", name);
	    return NULL;
	}
	*path_r = name;
    }
    if (**path_r == 0) {
	*error_r = table_error("table %s: empty file name", name);
	return NULL;
    }
    if ((be = table_find_backend(type)) != NULL)
	return be;
    if (table_type_known(type))
	*error_r = table_error("table type %s: not supported: posthorn was built "
			       "without Berkeley DB (BDB=no)", type);
    else
#ifdef HAVE_BDB
	*error_r = table_error("table %s: unknown table type \"%s\" (known types: cdb hash btree)",
			       name, type);
#else
	*error_r = table_error("table %s: unknown table type \"%s\" (known types: cdb)",
			       name, type);
#endif
    return NULL;
}

/* table_paths - split a name into type, source path and built path */
int table_paths(const char *name, const char *default_type, char *type, size_t type_size,
		struct str *source, struct str *built, const char **error_r)
{
    const struct table_backend *be;
    const char *path;

    if ((be = table_split(name, default_type, type, type_size, &path, error_r)) == NULL)
	return -1;
    if (!str_try_set(source, path) || !str_try_set(built, path) || !str_try_appends(built, be->suffix)) {
	*error_r = table_error("table %s: file name too long", name);
	return -1;
    }
    return 0;
}

/* table_fold - ASCII lower case, independent of the locale */
static void table_fold(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
	if (s[i] >= 'A' && s[i] <= 'Z')
	    s[i] = (char) (s[i] - 'A' + 'a');
}

/* table_open - open a built table for lookups */
struct table *table_open(const char *name, const char *default_type, int flags,
			 const char **error_r)
{
    char type[TABLE_TYPE_MAX];
    char canon[1024];
    char saved[sizeof(table_errbuf)];
    struct str source, built;
    const struct table_backend *be;
    const char *path;
    struct table *t = NULL;
    struct stat st;
    void *state;

    if ((be = table_split(name, default_type, type, sizeof(type), &path, error_r)) == NULL)
	return NULL;
    /* first, even if the file is missing: a later reopen may come after
     * a chroot that hides the backend's library */
    if (be->load && be->load(error_r) < 0)
	return NULL;
    str_init(&source, STR_MAX_DEFAULT);
    str_init(&built, STR_MAX_DEFAULT);
    if (!fmt_try_buf(canon, sizeof(canon), "%s:%s", type, path)
	|| !str_try_set(&source, path) || !str_try_set(&built, path) || !str_try_appends(&built, be->suffix)) {
	*error_r = table_error("table %s: file name too long", name);
	goto out;
    }
    if (stat(str_cstr(&built), &st) < 0) {
	int saved_errno = errno;

	if (saved_errno == ENOENT && stat(str_cstr(&source), &st) == 0)
	    *error_r = table_error("table %s: built file %s does not exist "
				   "(run \"posthorn map %s\")", canon, str_cstr(&built), canon);
	else if (saved_errno == ENOENT)
	    *error_r = table_error("table %s: neither the source file %s nor the built file %s "
				   "exists", canon, str_cstr(&source), str_cstr(&built));
	else
	    *error_r = table_error("table %s: %s: %s", canon, str_cstr(&built),
				   strerror(saved_errno));
	goto out;
    }
    if (be->open(str_cstr(&built), type, &state, error_r) < 0) {
	fmt_buf_cut(saved, sizeof(saved), "%s", *error_r);
	*error_r = table_error("table %s: %s", canon, saved);
	goto out;
    }
    t = mem_zalloc(sizeof(*t));
    t->be = be;
    t->state = state;
    t->flags = flags;
    t->name = mem_strdup(canon);
    t->built = mem_strdup(str_cstr(&built));
    str_init(&t->key, TABLE_LINE_MAX);
    /* Remember what was opened: the open file itself where the backend
     * can tell, else what the path named a moment before the open (if a
     * rebuild came in between, table_changed reports it once too often,
     * never once too few). */
    {
	int fd = be->fd(state);
	struct stat fst;

	if (fd >= 0 && fstat(fd, &fst) == 0)
	    st = fst;
    }
    t->owner = st.st_uid;
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->mtime = st.st_mtim;
    t->size = st.st_size;
    t->next = table_list;
    if (table_list)
	table_list->prev = t;
    table_list = t;
    if (flags & TABLE_FLAG_WARN_STALE) {
	const char *why;

	if (table_stale_why(canon, NULL, &why) == 1)
	    msg_warn("table %s: %s", canon, why);
    }
out:
    str_fini(&source);
    str_fini(&built);
    return t;
}

/* table_name - the canonical name */
const char *table_name(const struct table *t)
{
    return t->name;
}

/* table_lookup - look a key up */
int table_lookup(struct table *t, const char *key, struct str *value, const char **error_r)
{
    char saved[sizeof(table_errbuf)];
    size_t klen = strlen(key);
    int ret;

    /* A key longer than a source line cannot have been stored. */
    if (klen == 0 || klen > TABLE_LINE_MAX)
	return 0;
    if (!str_try_setn(&t->key, key, klen))
	msg_panic("table_lookup: key buffer");
    if (!(t->flags & TABLE_FLAG_NO_FOLD))
	table_fold(t->key.data, t->key.len);
    ret = t->be->lookup(t->state, str_cstr(&t->key), str_len(&t->key), value, error_r);
    if (ret < 0) {
	fmt_buf_cut(saved, sizeof(saved), "%s", *error_r);
	*error_r = table_error("table %s: %s", t->name, saved);
    }
    return ret;
}

/* table_close - close and free a table */
void table_close(struct table **tp)
{
    struct table *t = *tp;

    if (t == NULL)
	return;
    if (t->prev)
	t->prev->next = t->next;
    else
	table_list = t->next;
    if (t->next)
	t->next->prev = t->prev;
    t->be->close(t->state);
    str_fini(&t->key);
    mem_free(&t->name);
    mem_free(&t->built);
    mem_free(tp);
}

/* table_same_file - st still describes the file t opened */
static bool table_same_file(const struct table *t, const struct stat *st)
{
    return st->st_dev == t->dev && st->st_ino == t->ino && st->st_size == t->size
	&& st->st_mtim.tv_sec == t->mtime.tv_sec && st->st_mtim.tv_nsec == t->mtime.tv_nsec;
}

/* table_changed - the name of an open table whose built file was
 * replaced or modified since it was opened, or NULL. One cheap check
 * where one does: the path (stat: now another file, or the same file
 * written to). When the path names the very file we hold open (same
 * device and inode: it cannot be a reused inode while our descriptor
 * keeps it), its size and time are those an fstat of our descriptor
 * would give, so that answers both questions. Only a path that cannot
 * be stat'ed (chroot, removed), which is not a change by itself, leaves
 * the open file to ask (fstat: unlinked, i.e. renamed over, or written
 * to). One system call per table where there were two, before every
 * accept of every daemon with tables. */
const char *table_changed(void)
{
    for (struct table *t = table_list; t; t = t->next)
	if (table_file_changed(t))
	    return t->name;
    return NULL;
}

/* table_file_changed - has t's built file been replaced or modified
 * since t was opened (the per-table form of table_changed) */
bool table_file_changed(const struct table *t)
{
    struct stat st;
    int fd;

    if (stat(t->built, &st) == 0)
	return !table_same_file(t, &st);
    return (fd = t->be->fd(t->state)) >= 0 && fstat(fd, &st) == 0
	&& (st.st_nlink == 0 || !table_same_file(t, &st));
}

/* table_owner - the owner of t's built file when it was opened */
uid_t table_owner(const struct table *t)
{
    return t->owner;
}

/* table_fsync_path - open path read-only and fsync it */
int table_fsync_path(const char *path)
{
    int fd, ret, saved_errno;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
	return -1;
    ret = fsync(fd);
    saved_errno = errno;
    close(fd);
    errno = saved_errno;
    return ret;
}

/* table_is_blank - white space inside a source line */
static bool table_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* table_read_line - read one line (without "\n") into line; 1 read,
 * 0 end of file, -1 error (too long, NUL or read error) */
static int table_read_line(FILE *fp, struct str *line, const char *source, long lineno,
			   const char **error_r)
{
    int c;

    str_reset(line);
    while ((c = getc(fp)) != EOF && c != '\n') {
	if (c == 0) {
	    *error_r = table_error("%s:%ld: NUL byte in line", source, lineno);
	    return -1;
	}
	if (!str_try_appendc(line, (char) c)) {
	    *error_r = table_error("%s:%ld: line longer than %d bytes", source, lineno,
				   TABLE_LINE_MAX);
	    return -1;
	}
    }
    if (ferror(fp)) {
	*error_r = table_error("%s:%ld: read error: %s", source, lineno, strerror(errno));
	return -1;
    }
    if (c == EOF && str_len(line) == 0)
	return 0;
    if (str_len(line) > 0 && line->data[line->len - 1] == '\r')
	str_truncate(line, line->len - 1);
    return 1;
}

struct table_parse {
    const struct table_backend *be;
    void *state;
    const char *source;
    int flags;
    bool pending;			/* key/value hold an entry */
    long key_line;
    struct str key;
    struct str value;
    size_t count;
};

/* table_flush - store the pending entry; 0 or -1 */
static int table_flush(struct table_parse *tp, const char **error_r)
{
    char saved[sizeof(table_errbuf)];
    int ret;

    if (!tp->pending)
	return 0;
    tp->pending = false;
    while (str_len(&tp->value) > 0 && table_is_blank(tp->value.data[tp->value.len - 1]))
	str_truncate(&tp->value, tp->value.len - 1);
    if (str_len(&tp->value) == 0) {
	*error_r = table_error("%s:%ld: missing value for key %s", tp->source, tp->key_line,
			       str_cstr(&tp->key));
	return -1;
    }
    if (!(tp->flags & TABLE_FLAG_NO_FOLD))
	table_fold(tp->key.data, tp->key.len);
    ret = tp->be->add(tp->state, str_cstr(&tp->key), str_len(&tp->key),
		      str_cstr(&tp->value), str_len(&tp->value), error_r);
    if (ret < 0) {
	fmt_buf_cut(saved, sizeof(saved), "%s", *error_r);
	*error_r = table_error("%s:%ld: %s", tp->source, tp->key_line, saved);
	return -1;
    }
    if (ret == 0)
	msg_warn("%s:%ld: duplicate entry %s", tp->source, tp->key_line, str_cstr(&tp->key));
    else
	tp->count++;
    return 0;
}

/* table_parse_line - handle one physical source line; 0 or -1 */
static int table_parse_line(struct table_parse *tp, const struct str *line, long lineno,
			    const char **error_r)
{
    const char *cp = str_cstr(line);
    const char *end = cp + str_len(line);
    const char *key;

    while (cp < end && table_is_blank(*cp))
	cp++;
    if (cp == end || *cp == '#')
	return 0;			/* blank or comment line */
    if (cp != str_cstr(line)) {
	/* Continuation of the value above. */
	if (!tp->pending) {
	    *error_r = table_error("%s:%ld: continuation line without a preceding entry",
				   tp->source, lineno);
	    return -1;
	}
	if ((str_len(&tp->value) > 0 && !str_try_appendc(&tp->value, ' '))
	    || !str_try_append(&tp->value, cp, (size_t) (end - cp))) {
	    *error_r = table_error("%s:%ld: entry longer than %d bytes", tp->source, lineno,
				   TABLE_ENTRY_MAX);
	    return -1;
	}
	return 0;
    }
    if (table_flush(tp, error_r) < 0)
	return -1;
    key = cp;
    if (tp->flags & TABLE_FLAG_ALIASES) {
	/* aliases(5): "name: value"; the name ends at the colon */
	while (cp < end && *cp != ':')
	    cp++;
	if (cp == end) {
	    *error_r = table_error("%s:%ld: missing ':' after alias name", tp->source, lineno);
	    return -1;
	}
	if (!str_try_setn(&tp->key, key, (size_t) (cp - key)))
	    msg_panic("table_parse_line: key longer than a line");
	while (str_len(&tp->key) > 0 && table_is_blank(tp->key.data[tp->key.len - 1]))
	    str_truncate(&tp->key, tp->key.len - 1);
	if (str_len(&tp->key) == 0) {
	    *error_r = table_error("%s:%ld: empty alias name", tp->source, lineno);
	    return -1;
	}
	cp++;				/* the colon */
    } else {
	while (cp < end && !table_is_blank(*cp))
	    cp++;
	if (!str_try_setn(&tp->key, key, (size_t) (cp - key)))
	    msg_panic("table_parse_line: key longer than a line");
    }
    while (cp < end && table_is_blank(*cp))
	cp++;
    if (!str_try_setn(&tp->value, cp, (size_t) (end - cp)))
	msg_panic("table_parse_line: value longer than an entry");
    tp->pending = true;
    tp->key_line = lineno;
    return 0;
}

/* table_parse_source - feed every entry of fp to the builder; 0 or -1 */
static int table_parse_source(struct table_parse *tp, FILE *fp, const char **error_r)
{
    struct str line;
    long lineno = 0;
    int ret;

    str_init(&line, TABLE_LINE_MAX);
    for (;;) {
	lineno++;
	if ((ret = table_read_line(fp, &line, tp->source, lineno, error_r)) <= 0)
	    break;
	if ((ret = table_parse_line(tp, &line, lineno, error_r)) < 0)
	    break;
    }
    str_fini(&line);
    if (ret < 0)
	return -1;
    return table_flush(tp, error_r);
}

/* table_dir_of - the directory part of path into dir ("." if none) */
static void table_dir_of(const char *path, struct str *dir)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
	str_set_or_panic(dir, ".");
    else if (slash == path)
	str_set_or_panic(dir, "/");
    else
	str_setn_or_panic(dir, path, (size_t) (slash - path));
}

/* table_build_count - build a table from its source, atomically */
int table_build_count(const char *name, const char *default_type, int flags,
		      size_t *count_r, const char **error_r)
{
    static unsigned long serial;
    char type[TABLE_TYPE_MAX];
    char saved[sizeof(table_errbuf)];
    struct str source, built, tmp, dir;
    struct table_parse tp;
    const struct table_backend *be;
    const char *path;
    struct timespec now;
    struct stat st;
    FILE *fp = NULL;
    void *state = NULL;
    int fd, ret = -1;
    bool created = false;

    if (count_r)
	*count_r = 0;
    if ((be = table_split(name, default_type, type, sizeof(type), &path, error_r)) == NULL)
	return -1;
    str_init(&source, STR_MAX_DEFAULT);
    str_init(&built, STR_MAX_DEFAULT);
    str_init(&tmp, STR_MAX_DEFAULT);
    str_init(&dir, STR_MAX_DEFAULT);
    memset(&tp, 0, sizeof(tp));
    str_init(&tp.key, TABLE_LINE_MAX);
    str_init(&tp.value, TABLE_ENTRY_MAX);
    clock_gettime(CLOCK_REALTIME, &now);
    if (!str_try_set(&source, path) || !str_try_set(&built, path) || !str_try_appends(&built, be->suffix)
	|| !str_try_printf(&tmp, "%s.tmp.%ld.%lu.%ld", str_cstr(&built), (long) getpid(),
		       ++serial, (long) now.tv_nsec)) {
	*error_r = table_error("table %s:%s: file name too long", type, path);
	goto out;
    }
    table_dir_of(str_cstr(&built), &dir);

    /* The source: a regular file; its permission bits go to the result. */
    if ((fd = open(str_cstr(&source), O_RDONLY | O_CLOEXEC)) < 0) {
	*error_r = table_error("table %s:%s: open source file %s: %s", type, path,
			       str_cstr(&source), strerror(errno));
	goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	*error_r = table_error("table %s:%s: source %s is not a regular file", type, path,
			       str_cstr(&source));
	close(fd);
	goto out;
    }
    if ((fp = fdopen(fd, "r")) == NULL) {
	*error_r = table_error("table %s:%s: fdopen: %s", type, path, strerror(errno));
	close(fd);
	goto out;
    }

    /* Write the new table under a temporary name beside the final one. */
    if (be->create(str_cstr(&tmp), type, (unsigned) (st.st_mode & 0666), &state, error_r) < 0) {
	fmt_buf_cut(saved, sizeof(saved), "%s", *error_r);
	*error_r = table_error("table %s:%s: %s", type, path, saved);
	goto out;
    }
    created = true;
    tp.be = be;
    tp.state = state;
    tp.source = str_cstr(&source);
    tp.flags = flags;
    if (table_parse_source(&tp, fp, error_r) < 0) {
	be->abort(state);
	goto out;
    }
    if (be->finish(state, str_cstr(&tmp), error_r) < 0) {
	fmt_buf_cut(saved, sizeof(saved), "%s", *error_r);
	*error_r = table_error("table %s:%s: %s", type, path, saved);
	goto out;
    }

    /* Commit: rename over the old file, then make the rename durable. */
    if (rename(str_cstr(&tmp), str_cstr(&built)) < 0) {
	*error_r = table_error("table %s:%s: rename %s to %s: %s", type, path,
			       str_cstr(&tmp), str_cstr(&built), strerror(errno));
	goto out;
    }
    created = false;
    if (table_fsync_path(str_cstr(&dir)) < 0) {
	*error_r = table_error("table %s:%s: fsync directory %s: %s", type, path,
			       str_cstr(&dir), strerror(errno));
	goto out;
    }
    if (count_r)
	*count_r = tp.count;
    ret = 0;
out:
    if (created && unlink(str_cstr(&tmp)) < 0 && errno != ENOENT)
	msg_warn("table %s:%s: remove %s: %m", type, path, str_cstr(&tmp));
    if (fp)
	fclose(fp);
    str_fini(&tp.key);
    str_fini(&tp.value);
    str_fini(&source);
    str_fini(&built);
    str_fini(&tmp);
    str_fini(&dir);
    return ret;
}

/* table_build - build a table from its source, atomically */
int table_build(const char *name, const char *default_type, int flags, const char **error_r)
{
    return table_build_count(name, default_type, flags, NULL, error_r);
}

/* table_stale_why - 1 stale (and why), 0 fresh, -1 error (and why) */
int table_stale_why(const char *name, const char *default_type, const char **why_r)
{
    char type[TABLE_TYPE_MAX];
    struct str source, built;
    struct stat src_st, built_st;
    int ret = -1;

    *why_r = NULL;
    str_init(&source, STR_MAX_DEFAULT);
    str_init(&built, STR_MAX_DEFAULT);
    if (table_paths(name, default_type, type, sizeof(type), &source, &built, why_r) < 0)
	goto out;
    if (stat(str_cstr(&source), &src_st) < 0) {
	*why_r = table_error("source file %s: %s", str_cstr(&source), strerror(errno));
	goto out;
    }
    if (stat(str_cstr(&built), &built_st) < 0) {
	if (errno != ENOENT) {
	    *why_r = table_error("built file %s: %s", str_cstr(&built), strerror(errno));
	    goto out;
	}
	*why_r = table_error("built file %s does not exist (run \"posthorn map %s:%s\")",
			     str_cstr(&built), type, str_cstr(&source));
	ret = 1;
	goto out;
    }
    if (built_st.st_mtim.tv_sec < src_st.st_mtim.tv_sec
	|| (built_st.st_mtim.tv_sec == src_st.st_mtim.tv_sec
	    && built_st.st_mtim.tv_nsec < src_st.st_mtim.tv_nsec)) {
	*why_r = table_error("built file %s is older than its source %s (run \"posthorn map %s:%s\")",
			     str_cstr(&built), str_cstr(&source), type, str_cstr(&source));
	ret = 1;
	goto out;
    }
    ret = 0;
out:
    str_fini(&source);
    str_fini(&built);
    return ret;
}

/* table_stale - true if the built file is missing or older than the source */
bool table_stale(const char *name, const char *default_type)
{
    const char *why;

    return table_stale_why(name, default_type, &why) == 1;
}
