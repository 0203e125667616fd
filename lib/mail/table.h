/* table.h - lookup tables (cdb:, hash:, btree:) through one interface.
 *
 * A table is named "type:path", e.g. "cdb:/etc/posthorn/aliases"; a name
 * without a "type:" prefix gets the caller's default type (normally
 * $default_database_type; NULL means "cdb"). The path names the SOURCE
 * text file; the file that lookups read is built from it:
 *     cdb:PATH    -> PATH.cdb   (tinycdb, read through mmap)
 *     hash:PATH   -> PATH.db    (Berkeley DB hash)
 *     btree:PATH  -> PATH.db    (Berkeley DB btree)
 * hash: and btree: exist only when posthorn was built with HAVE_BDB
 * (the default; `make BDB=no` leaves them out and they then fail with
 * "table type hash: not supported: posthorn was built without Berkeley
 * DB (BDB=no)").
 *
 * Source format (as Postfix postmap): one "key value" entry per line;
 * the key is the first whitespace-delimited field, the value the rest of
 * the line after the white space (trailing white space removed). Lines
 * whose first non-blank character is "#" and blank lines are ignored. A
 * line that starts with white space continues the value of the entry
 * above (its leading white space becomes one space). A key without a
 * value, a continuation line with no entry above, a NUL byte or a line
 * longer than TABLE_LINE_MAX bytes is an error naming "file:line". A
 * duplicate key is warned about ("file:line: duplicate entry KEY", via
 * msg_warn) and the FIRST value is kept.
 *
 * Keys are folded to lower case (ASCII only, independent of the locale)
 * when building and again at lookup, unless TABLE_FLAG_NO_FOLD is given;
 * build and lookup must use the same choice. Values are kept as written.
 * Keys and values are stored without a trailing NUL in every type.
 *
 * table_build() is atomic: it writes a temporary file in the directory
 * of the built file, fsyncs it, renames it over the built file and
 * fsyncs the directory. On any error the temporary file is removed and
 * the old built file is left as it was. A handle opened before a rebuild
 * keeps reading the old data; a new table_open() sees the new data. The
 * built file gets the permission bits of the source (mode & 0666), and
 * the caller's ownership.
 *
 * Diagnostics: functions that can fail take "const char **error_r" and
 * set it to a text that names the table and the file; the text lives in
 * a static buffer valid until the next table_* call. Duplicate keys and
 * (with TABLE_FLAG_WARN_STALE) stale built files are reported with
 * msg_warn. Berkeley DB is used without an environment (no DB_ENV), so
 * no DB_CONFIG file is ever read (CVE-2017-10140; see docs/tables.md).
 */
#ifndef POSTHORN_TABLE_H
#define POSTHORN_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

#define TABLE_FLAG_NO_FOLD	(1 << 0)	/* keys compared exactly as written */
#define TABLE_FLAG_WARN_STALE	(1 << 1)	/* table_open: msg_warn if source is newer */
#define TABLE_FLAG_ALIASES	(1 << 2)	/* table_build: aliases(5) syntax, "name: value" */

#define TABLE_LINE_MAX		8192	/* bytes in one source line */
#define TABLE_ENTRY_MAX		65536	/* bytes of one value after continuations */
#define TABLE_DEFAULT_TYPE	"cdb"

struct table;

/* table_open - open the built file of a table for lookups. NULL and
 * *error_r on an unknown or unsupported type, a missing or unreadable
 * built file, or a file that is not a valid table of that type. */
struct table *table_open(const char *name, const char *default_type, int flags,
			 const char **error_r);

/* table_lookup - look key up: 1 and the value in *value (replacing its
 * contents), 0 if absent, -1 and *error_r on a read error or a value
 * longer than value->max. key is a C string (folded unless NO_FOLD). */
int table_lookup(struct table *t, const char *key, struct str *value,
		 const char **error_r);

/* table_close - close and free *tp, set it to NULL (NULL is fine) */
void table_close(struct table **tp);

/* table_changed - the name ("type:path") of an open table whose built
 * file was rebuilt (replaced by a rename) or modified since table_open,
 * or NULL. A stat per open table: cheap enough to call before every
 * client (the server skeleton does, and restarts the process). */
const char *table_changed(void);

/* table_file_changed - the same question for one table */
bool table_file_changed(const struct table *t);

/* table_owner - the owner of the built file when t was opened (whose
 * rights an alias's commands and files run with) */
uid_t table_owner(const struct table *t);

/* table_name - the table's canonical "type:path" name */
const char *table_name(const struct table *t);

/* table_build - (re)build the table from its source text, atomically.
 * 0 on success; -1 and *error_r on any error (the old built file, if
 * any, is untouched). Only TABLE_FLAG_NO_FOLD matters here.
 * table_build_count - the same; if count_r is not NULL it receives the
 * number of entries stored (duplicates not counted). */
int table_build(const char *name, const char *default_type, int flags,
		const char **error_r);
int table_build_count(const char *name, const char *default_type, int flags,
		      size_t *count_r, const char **error_r);

/* table_stale - true if the built file is missing or older than the
 * source (what `posthorn check` warns about). A bad name or a missing
 * source is not "stale": table_stale_why() says why in *why_r (a static
 * text, or NULL when not stale) and returns -1 on such errors, 1 if
 * stale, 0 if up to date. */
bool table_stale(const char *name, const char *default_type);
int table_stale_why(const char *name, const char *default_type, const char **why_r);

/* table_paths - split a name: the type (into type, at most type_size
 * bytes), the source path and the built path (into the str's). 0, or -1
 * and *error_r for an empty path or an unknown or unsupported type. */
int table_paths(const char *name, const char *default_type, char *type, size_t type_size,
		struct str *source, struct str *built, const char **error_r);

/* table_types - NULL-terminated list of the types this build supports */
const char *const *table_types(void);
/* table_type_supported - true if type (without ":") is in table_types() */
bool table_type_supported(const char *type);

/* ---- Backend interface: for table.c, table_cdb.c and table_db.c only. */

struct table_builder;

struct table_backend {
    const char *type;		/* "cdb" */
    const char *suffix;		/* ".cdb" */
    /* optional: make the backend usable (load its library); called
     * first by table_open and table creation, so that a daemon loads it
     * in pre_init, before a chroot hides the library (0, or -1) */
    int (*load)(const char **error_r);
    /* open the built file read-only; store state in *state_r */
    int (*open)(const char *built, const char *type, void **state_r, const char **error_r);
    /* 1 found (value set), 0 absent, -1 error */
    int (*lookup)(void *state, const char *key, size_t klen, struct str *value,
		  const char **error_r);
    void (*close)(void *state);
    /* the descriptor of the open built file, or -1 if unknown */
    int (*fd)(void *state);
    /* create tmp (exclusively) with mode; state in *state_r */
    int (*create)(const char *tmp, const char *type, unsigned mode, void **state_r,
		  const char **error_r);
    /* 1 stored, 0 duplicate (not stored), -1 error */
    int (*add)(void *state, const char *key, size_t klen, const char *val, size_t vlen,
	       const char **error_r);
    /* write out, fsync and close tmp; free state even on error */
    int (*finish)(void *state, const char *tmp, const char **error_r);
    /* close without finishing (caller removes tmp); free state */
    void (*abort)(void *state);
};

extern const struct table_backend table_backend_cdb;
#ifdef HAVE_BDB
extern const struct table_backend table_backend_hash;
extern const struct table_backend table_backend_btree;
#endif

/* table_error - format an error into the shared static buffer */
const char *table_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* table_fsync_path - open path read-only, fsync it; 0 or -1 with errno */
int table_fsync_path(const char *path);

#endif
