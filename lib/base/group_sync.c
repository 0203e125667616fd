/* group_sync.c - group commit of directory fsyncs across processes
 * (see group_sync.h for the idea and the trust it needs).
 *
 * Correctness in one line: a process takes its arrival number t AFTER its
 * rename (group_sync_arrive, at once or long before its commit); a
 * syncer reads the arrival count n under the lock BEFORE it starts the
 * fsync, and publishes "covered up to n" only after the fsync
 * succeeded; so covered >= t means that an fsync which started after the
 * rename has finished. The counters only grow (64 bits do not wrap), a
 * failed fsync publishes nothing, and a process that dies anywhere in
 * between leaves at most an arrival that nobody waits for. Each process
 * must open the state file itself: flock(2) locks belong to the open file
 * description, which fork(2) shares. */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errtext.h"
#include "group_sync.h"
#include "mem.h"
#include "str.h"

#define GS_MAGIC	0x70686773u	/* "phgs" */
#define GS_VERSION	1u
#define GS_SIZE		4096

struct gs_state {
    uint32_t magic;
    uint32_t version;
    uint64_t dev;			/* the directory it serves */
    uint64_t ino;
    uint64_t arrivals;			/* atomic: renames waiting for a sync */
    uint64_t covered;			/* arrivals that a finished fsync covers */
};

struct group_sync {
    int fd;				/* the state file (flock) */
    int dirfd;				/* the directory (not ours) */
    struct gs_state *st;		/* shared mapping, NULL: sync alone */
    uint64_t dev, ino;			/* the directory's identity */
    int (*sync_fn)(int fd);
};

static struct errtext gs_error;		/* the text behind error_r */

/* gs_fail - the error text "what: strerror(err)" */
static const char *gs_fail(const char *what, int err)
{
    return errtext_set(&gs_error, "%s: %s", what, strerror(err));
}

/* gs_lock - flock, retried on EINTR */
static int gs_lock(int fd, int op)
{
    int rc;

    while ((rc = flock(fd, op)) < 0 && errno == EINTR)
	continue;
    return rc;
}

struct group_sync *group_sync_open_fd(int state_fd, int dirfd, const char **error_r)
{
    struct group_sync *gs;
    struct stat fst, dst;
    void *map;
    int err;

    if (fstat(dirfd, &dst) < 0 || fstat(state_fd, &fst) < 0) {
	*error_r = gs_fail("fstat", errno);
	(void) close(state_fd);
	return NULL;
    }
    if (!S_ISREG(fst.st_mode) || (fst.st_mode & 077) != 0 || fst.st_uid != dst.st_uid) {
	*error_r = errtext_set(&gs_error, "state file must be a regular file of the "
			       "directory's owner, mode 0600");
	(void) close(state_fd);
	return NULL;
    }
    if (gs_lock(state_fd, LOCK_EX) < 0) {
	*error_r = gs_fail("flock", errno);
	(void) close(state_fd);
	return NULL;
    }
    if (fstat(state_fd, &fst) < 0 || (fst.st_size < GS_SIZE && ftruncate(state_fd, GS_SIZE) < 0)) {
	err = errno;
	(void) gs_lock(state_fd, LOCK_UN);
	(void) close(state_fd);
	*error_r = gs_fail("size the state file", err);
	return NULL;
    }
    map = mmap(NULL, GS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
    if (map == MAP_FAILED) {
	err = errno;
	(void) gs_lock(state_fd, LOCK_UN);
	(void) close(state_fd);
	*error_r = gs_fail("mmap the state file", err);
	return NULL;
    }
    gs = mem_zalloc(sizeof(*gs));
    gs->fd = state_fd;
    gs->dirfd = dirfd;
    gs->sync_fn = fsync;
    gs->st = map;
    gs->dev = (uint64_t) dst.st_dev;
    gs->ino = (uint64_t) dst.st_ino;
    if (gs->st->magic != GS_MAGIC || gs->st->version != GS_VERSION
	|| gs->st->dev != (uint64_t) dst.st_dev || gs->st->ino != (uint64_t) dst.st_ino) {
	/* New state, or state of another directory (a copied or restored
	 * queue, a device number that changed at boot): start it afresh.
	 * Safe with others waiting: we hold the lock that every syncer holds
	 * across its fsync, and a process whose arrival was counted before
	 * the reset is covered only by an fsync that starts after it; one
	 * that serves another directory finds out under the lock
	 * (group_sync_dir) and syncs on its own. */
	__atomic_store_n(&gs->st->magic, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&gs->st->arrivals, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&gs->st->covered, 0, __ATOMIC_SEQ_CST);
	gs->st->dev = (uint64_t) dst.st_dev;
	gs->st->ino = (uint64_t) dst.st_ino;
	gs->st->version = GS_VERSION;
	__atomic_store_n(&gs->st->magic, GS_MAGIC, __ATOMIC_RELEASE);
    }
    (void) gs_lock(state_fd, LOCK_UN);
    return gs;
}

struct group_sync *group_sync_open(const char *path, int dirfd, const char **error_r)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0) {
	*error_r = errtext_set(&gs_error, "open %s: %s", path, strerror(errno));
	return NULL;
    }
    return group_sync_open_fd(fd, dirfd, error_r);
}

void group_sync_set_fsync(struct group_sync *gs, int (*fn)(int fd))
{
    gs->sync_fn = fn;
}

uint64_t group_sync_arrive(struct group_sync *gs)
{
    if (gs->st == NULL)
	return 0;
    return __atomic_add_fetch(&gs->st->arrivals, 1, __ATOMIC_SEQ_CST);
}

int group_sync_dir(struct group_sync *gs, const char **error_r)
{
    return group_sync_wait(gs, group_sync_arrive(gs), error_r);
}

int group_sync_wait(struct group_sync *gs, uint64_t mine, const char **error_r)
{
    uint64_t upto;
    int err;

    if (gs->st == NULL || mine == 0) {
	if (gs->sync_fn(gs->dirfd) < 0) {
	    *error_r = gs_fail("fsync directory", errno);
	    return -1;
	}
	return 0;
    }
    if (gs_lock(gs->fd, LOCK_EX) < 0) {
	/* cannot queue: sync alone (always correct, only slower) */
	if (gs->sync_fn(gs->dirfd) < 0) {
	    *error_r = gs_fail("fsync directory", errno);
	    return -1;
	}
	return 0;
    }
    if (__atomic_load_n(&gs->st->magic, __ATOMIC_ACQUIRE) != GS_MAGIC
	|| gs->st->dev != gs->dev || gs->st->ino != gs->ino) {
	/* the state was started afresh for another directory meanwhile:
	 * its counters say nothing about ours; sync alone, publish nothing */
	err = gs->sync_fn(gs->dirfd) < 0 ? errno : 0;
	(void) gs_lock(gs->fd, LOCK_UN);
	if (err) {
	    *error_r = gs_fail("fsync directory", err);
	    errno = err;
	    return -1;
	}
	return 0;
    }
    if (__atomic_load_n(&gs->st->covered, __ATOMIC_ACQUIRE) >= mine) {
	(void) gs_lock(gs->fd, LOCK_UN);
	return 0;
    }
    upto = __atomic_load_n(&gs->st->arrivals, __ATOMIC_SEQ_CST);
    if (gs->sync_fn(gs->dirfd) < 0) {
	err = errno;
	(void) gs_lock(gs->fd, LOCK_UN);
	*error_r = gs_fail("fsync directory", err);
	errno = err;
	return -1;
    }
    if (__atomic_load_n(&gs->st->covered, __ATOMIC_RELAXED) < upto)
	__atomic_store_n(&gs->st->covered, upto, __ATOMIC_RELEASE);
    (void) gs_lock(gs->fd, LOCK_UN);
    return 0;
}

void group_sync_close(struct group_sync **gsp)
{
    struct group_sync *gs = *gsp;

    if (gs == NULL)
	return;
    if (gs->st)
	(void) munmap(gs->st, GS_SIZE);
    (void) close(gs->fd);
    mem_free(gsp);
}
