/* table_db.c - the hash: and btree: table backends (Berkeley DB).
 *
 * Compiled only with HAVE_BDB. Every DB handle is created with
 * db_create(&db, NULL, 0): no DB_ENV, so no environment home and no
 * DB_CONFIG file is ever looked for (CVE-2017-10140; docs/tables.md has
 * what was checked). Readers open with DB_RDONLY and need no locking:
 * the builder writes a new file and renames it into place. Keys and
 * values are stored without a trailing NUL.
 *
 * libdb is loaded with dlopen(3) when the first hash: or btree: table is
 * opened or built (table.c calls .load first, in pre_init), not linked:
 * a process that uses no Berkeley DB table (most of them, with cdb:
 * the default) then does not pay libdb's ~80 KiB of relocated pages
 * and mapped text (docs/architecture.md, decision 29). Only db_create
 * and db_strerror are looked up: everything else is a method of the DB
 * handle. The library stays loaded, so a table reopened after a chroot
 * still works. */

#ifdef HAVE_BDB

/* System. */
#include <db.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base. */
#include "mem.h"
#include "str.h"

/* Mail. */
#include "table.h"

struct db_table {
    DB *db;
    char *path;
    unsigned mode;			/* builder: final permission bits */
};

static char db_table_lasterr[256];	/* last message from libdb */

/* The library's file name, from the header this was compiled with:
 * "libdb-5.3.so" (Debian's libdb5.3 installs it under that name). */
#define DB_STR2(x)	#x
#define DB_STR(x)	DB_STR2(x)
#define DB_LIBRARY	"libdb-" DB_STR(DB_VERSION_MAJOR) "." DB_STR(DB_VERSION_MINOR) ".so"

static int (*db_create_fn)(DB **, DB_ENV *, u_int32_t);
static char *(*db_strerror_fn)(int);

/* db_table_load - dlopen libdb once; 0, or -1 with *error_r */
static int db_table_load(const char **error_r)
{
    void *lib;

    if (db_create_fn != NULL)
	return 0;
    if ((lib = dlopen(DB_LIBRARY, RTLD_NOW | RTLD_LOCAL)) == NULL) {
	*error_r = table_error("cannot load Berkeley DB (%s): %s", DB_LIBRARY, dlerror());
	return -1;
    }
    db_strerror_fn = (char *(*)(int)) dlsym(lib, "db_strerror");
    db_create_fn = (int (*)(DB **, DB_ENV *, u_int32_t)) dlsym(lib, "db_create");
    if (db_create_fn == NULL || db_strerror_fn == NULL) {
	db_create_fn = NULL;
	*error_r = table_error("cannot load Berkeley DB (%s): no db_create/db_strerror", DB_LIBRARY);
	return -1;
    }
    return 0;
}

/* db_table_errcall - keep libdb's own explanation for our error text */
static void db_table_errcall(const DB_ENV *env, const char *prefix, const char *text)
{
    (void) env;
    (void) prefix;
    fmt_buf_cut(db_table_lasterr, sizeof(db_table_lasterr), "%s", text);
}

/* db_table_error - error text from a libdb return code */
static const char *db_table_error(const char *what, const char *path, int ret)
{
    const char *err;

    if (db_table_lasterr[0])
	err = table_error("%s %s: %s (%s)", what, path, db_strerror_fn(ret), db_table_lasterr);
    else
	err = table_error("%s %s: %s", what, path, db_strerror_fn(ret));
    db_table_lasterr[0] = 0;
    return err;
}

/* db_table_kind - DB_HASH or DB_BTREE for a type name */
static DBTYPE db_table_kind(const char *type)
{
    return strcmp(type, "btree") == 0 ? DB_BTREE : DB_HASH;
}

/* db_table_new - a DB handle with no environment; NULL on error */
static DB *db_table_new(const char *path, const char **error_r)
{
    DB *db;
    int ret;

    if (db_table_load(error_r) < 0)
	return NULL;
    /* NULL environment: libdb makes a private in-memory one and never
     * derives a home directory (or DB_CONFIG) from cwd or DB_HOME. */
    if ((ret = db_create_fn(&db, NULL, 0)) != 0) {
	*error_r = db_table_error("db_create for", path, ret);
	return NULL;
    }
    db->set_errcall(db, db_table_errcall);
    db_table_lasterr[0] = 0;
    return db;
}

/* db_table_cloexec - keep the DB file out of exec'd children */
static void db_table_cloexec(DB *db)
{
    int fd;

    if (db->fd(db, &fd) == 0 && fd >= 0)
	(void) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* db_table_open - open a built DB file read-only */
static int db_table_open(const char *built, const char *type, void **state_r,
			 const char **error_r)
{
    struct db_table *t;
    DB *db;
    int ret;

    if ((db = db_table_new(built, error_r)) == NULL)
	return -1;
    if ((ret = db->open(db, NULL, built, NULL, db_table_kind(type), DB_RDONLY, 0)) != 0) {
	*error_r = db_table_error("open", built, ret);
	db->close(db, 0);
	return -1;
    }
    db_table_cloexec(db);
    t = mem_zalloc(sizeof(*t));
    t->db = db;
    t->path = mem_strdup(built);
    *state_r = t;
    return 0;
}

/* db_table_lookup - get one key */
static int db_table_lookup(void *state, const char *key, size_t klen, struct str *value,
			   const char **error_r)
{
    struct db_table *t = state;
    DBT k, v;
    int ret;

    if (klen > UINT32_MAX)
	return 0;
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = (void *) key;
    k.size = (u_int32_t) klen;
    if ((ret = t->db->get(t->db, NULL, &k, &v, 0)) == DB_NOTFOUND)
	return 0;
    if (ret != 0) {
	*error_r = db_table_error("read", t->path, ret);
	return -1;
    }
    if (!str_try_setn(value, v.data, v.size)) {
	*error_r = table_error("%s: value of %u bytes is too long for the caller",
			       t->path, (unsigned) v.size);
	return -1;
    }
    return 1;
}

/* db_table_fd - the open file, as libdb reports it */
static int db_table_fd(void *state)
{
    struct db_table *t = state;
    int fd;

    return t->db->fd(t->db, &fd) == 0 ? fd : -1;
}

/* db_table_close - close a reader */
static void db_table_close(void *state)
{
    struct db_table *t = state;

    t->db->close(t->db, 0);
    mem_free(&t->path);
    mem_free(&t);
}

/* db_table_create - create a new DB file exclusively */
static int db_table_create(const char *tmp, const char *type, unsigned mode, void **state_r,
			   const char **error_r)
{
    struct db_table *t;
    DB *db;
    int ret;

    if ((db = db_table_new(tmp, error_r)) == NULL)
	return -1;
    /* DB_EXCL: O_EXCL, so an existing name (or a symlink) is refused. */
    if ((ret = db->open(db, NULL, tmp, NULL, db_table_kind(type), DB_CREATE | DB_EXCL,
			(int) mode)) != 0) {
	*error_r = db_table_error("create", tmp, ret);
	db->close(db, 0);
	return -1;
    }
    db_table_cloexec(db);
    t = mem_zalloc(sizeof(*t));
    t->db = db;
    t->path = mem_strdup(tmp);
    t->mode = mode;
    *state_r = t;
    return 0;
}

/* db_table_add - store a record unless the key exists */
static int db_table_add(void *state, const char *key, size_t klen, const char *val,
			size_t vlen, const char **error_r)
{
    struct db_table *t = state;
    DBT k, v;
    int ret;

    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
	*error_r = table_error("record too long");
	return -1;
    }
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.data = (void *) key;
    k.size = (u_int32_t) klen;
    v.data = (void *) val;
    v.size = (u_int32_t) vlen;
    if ((ret = t->db->put(t->db, NULL, &k, &v, DB_NOOVERWRITE)) == DB_KEYEXIST)
	return 0;
    if (ret != 0) {
	*error_r = db_table_error("write", t->path, ret);
	return -1;
    }
    return 1;
}

/* db_table_finish - flush and close, then set the mode and fsync */
static int db_table_finish(void *state, const char *tmp, const char **error_r)
{
    struct db_table *t = state;
    int ret, fd;

    ret = t->db->close(t->db, 0);
    t->db = NULL;
    if (ret != 0) {
	*error_r = db_table_error("write", tmp, ret);
	ret = -1;
    } else if ((fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
	*error_r = table_error("reopen %s: %s", tmp, strerror(errno));
	ret = -1;
    } else {
	if (fchmod(fd, (mode_t) t->mode) < 0) {	/* undo the umask */
	    *error_r = table_error("chmod %s: %s", tmp, strerror(errno));
	    ret = -1;
	} else if (fsync(fd) < 0) {
	    *error_r = table_error("fsync %s: %s", tmp, strerror(errno));
	    ret = -1;
	}
	close(fd);
    }
    mem_free(&t->path);
    mem_free(&t);
    return ret;
}

/* db_table_abort - close without syncing; the caller removes the file */
static void db_table_abort(void *state)
{
    struct db_table *t = state;

    t->db->close(t->db, DB_NOSYNC);
    mem_free(&t->path);
    mem_free(&t);
}

const struct table_backend table_backend_hash = {
    .type = "hash",
    .suffix = ".db",
    .load = db_table_load,
    .open = db_table_open,
    .lookup = db_table_lookup,
    .close = db_table_close,
    .fd = db_table_fd,
    .create = db_table_create,
    .add = db_table_add,
    .finish = db_table_finish,
    .abort = db_table_abort,
};

const struct table_backend table_backend_btree = {
    .type = "btree",
    .suffix = ".db",
    .load = db_table_load,
    .open = db_table_open,
    .lookup = db_table_lookup,
    .close = db_table_close,
    .fd = db_table_fd,
    .create = db_table_create,
    .add = db_table_add,
    .finish = db_table_finish,
    .abort = db_table_abort,
};

#else

/* Built with BDB=no: table.c reports hash: and btree: as unsupported. */
typedef int table_db_unused;

#endif /* HAVE_BDB */
