/* table_cdb.c - the cdb: table backend (tinycdb): read through mmap with
 * cdb_init/cdb_find, write with cdb_make_*. Keys and values are stored
 * without a trailing NUL. */

/* System. */
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base. */
#include "mem.h"
#include "str.h"

/* Mail. */
#include "table.h"

#define CDB_HEADER_SIZE	2048	/* 256 (position, length) pairs */

struct cdb_reader {
    struct cdb cdb;
    int fd;
    char *path;
};

struct cdb_writer {
    struct cdb_make make;
    int fd;
};

/* cdb_table_open - open and mmap a cdb file */
static int cdb_table_open(const char *built, const char *type, void **state_r,
			  const char **error_r)
{
    struct cdb_reader *r;
    struct stat st;
    int fd;

    (void) type;
    if ((fd = open(built, O_RDONLY | O_CLOEXEC)) < 0) {
	*error_r = table_error("open %s: %s", built, strerror(errno));
	return -1;
    }
    if (fstat(fd, &st) < 0) {
	*error_r = table_error("fstat %s: %s", built, strerror(errno));
	close(fd);
	return -1;
    }
    /* tinycdb keeps sizes and offsets in 32 bits; a file shorter than the
     * header or longer than 4 GiB cannot be a cdb file. */
    if (!S_ISREG(st.st_mode) || st.st_size < CDB_HEADER_SIZE
	|| (uintmax_t) st.st_size > UINT32_MAX) {
	*error_r = table_error("%s: not a cdb file (size %jd)", built, (intmax_t) st.st_size);
	close(fd);
	return -1;
    }
    r = mem_zalloc(sizeof(*r));
    if (cdb_init(&r->cdb, fd) < 0) {
	*error_r = table_error("%s: cannot map cdb file: %s", built, strerror(errno));
	close(fd);
	mem_free(&r);
	return -1;
    }
    r->fd = fd;
    r->path = mem_strdup(built);
    *state_r = r;
    return 0;
}

/* cdb_table_lookup - find a key */
static int cdb_table_lookup(void *state, const char *key, size_t klen, struct str *value,
			    const char **error_r)
{
    struct cdb_reader *r = state;
    const void *data;
    int ret;

    if (klen > UINT32_MAX)
	return 0;
    if ((ret = cdb_find(&r->cdb, key, (unsigned) klen)) < 0) {
	*error_r = table_error("%s: corrupt cdb file", r->path);
	return -1;
    }
    if (ret == 0)
	return 0;
    if ((data = cdb_getdata(&r->cdb)) == NULL) {
	*error_r = table_error("%s: corrupt cdb file (bad data position)", r->path);
	return -1;
    }
    if (!str_try_setn(value, data, cdb_datalen(&r->cdb))) {
	*error_r = table_error("%s: value of %u bytes is too long for the caller",
			       r->path, cdb_datalen(&r->cdb));
	return -1;
    }
    return 1;
}

/* cdb_table_fd - the open file */
static int cdb_table_fd(void *state)
{
    return ((struct cdb_reader *) state)->fd;
}

/* cdb_table_close - unmap and close */
static void cdb_table_close(void *state)
{
    struct cdb_reader *r = state;

    cdb_free(&r->cdb);
    close(r->fd);
    mem_free(&r->path);
    mem_free(&r);
}

/* cdb_table_create - start writing a new cdb file */
static int cdb_table_create(const char *tmp, const char *type, unsigned mode, void **state_r,
			    const char **error_r)
{
    struct cdb_writer *w;
    int fd;

    (void) type;
    if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t) mode)) < 0) {
	*error_r = table_error("create %s: %s", tmp, strerror(errno));
	return -1;
    }
    if (fchmod(fd, (mode_t) mode) < 0) {	/* undo the umask */
	*error_r = table_error("chmod %s: %s", tmp, strerror(errno));
	close(fd);
	unlink(tmp);
	return -1;
    }
    w = mem_zalloc(sizeof(*w));
    if (cdb_make_start(&w->make, fd) < 0) {
	*error_r = table_error("start %s: %s", tmp, strerror(errno));
	close(fd);
	unlink(tmp);
	mem_free(&w);
	return -1;
    }
    w->fd = fd;
    *state_r = w;
    return 0;
}

/* cdb_table_add - add a record unless the key is there already */
static int cdb_table_add(void *state, const char *key, size_t klen, const char *val,
			 size_t vlen, const char **error_r)
{
    struct cdb_writer *w = state;
    int ret;

    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
	*error_r = table_error("record too long");
	return -1;
    }
    if ((ret = cdb_make_exists(&w->make, key, (unsigned) klen)) < 0) {
	*error_r = table_error("cdb write error: %s", strerror(errno));
	return -1;
    }
    if (ret > 0)
	return 0;
    if (cdb_make_add(&w->make, key, (unsigned) klen, val, (unsigned) vlen) < 0) {
	*error_r = table_error("cdb write error: %s", strerror(errno));
	return -1;
    }
    return 1;
}

/* cdb_table_finish - write the hash tables, fsync, close */
static int cdb_table_finish(void *state, const char *tmp, const char **error_r)
{
    struct cdb_writer *w = state;
    int ret = 0;

    if (cdb_make_finish(&w->make) < 0) {
	*error_r = table_error("write %s: %s", tmp, strerror(errno));
	ret = -1;
    } else if (fsync(w->fd) < 0) {
	*error_r = table_error("fsync %s: %s", tmp, strerror(errno));
	ret = -1;
    }
    if (close(w->fd) < 0 && ret == 0) {
	*error_r = table_error("close %s: %s", tmp, strerror(errno));
	ret = -1;
    }
    mem_free(&w);
    return ret;
}

/* cdb_table_abort - give up: free the record lists, close */
static void cdb_table_abort(void *state)
{
    struct cdb_writer *w = state;

    /* tinycdb frees its record lists only in cdb_make_finish; the file
     * it writes is removed by the caller. */
    (void) cdb_make_finish(&w->make);
    close(w->fd);
    mem_free(&w);
}

const struct table_backend table_backend_cdb = {
    .type = "cdb",
    .suffix = ".cdb",
    .open = cdb_table_open,
    .lookup = cdb_table_lookup,
    .close = cdb_table_close,
    .fd = cdb_table_fd,
    .create = cdb_table_create,
    .add = cdb_table_add,
    .finish = cdb_table_finish,
    .abort = cdb_table_abort,
};
