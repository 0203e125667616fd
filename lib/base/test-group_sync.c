/* test-group_sync.c - unit tests for group_sync.c: the state file, a
 * failed fsync that covers nobody, a foreign state file, and the group
 * commit itself: concurrent processes share fsyncs, and each one returns
 * only after an fsync that started after its call began has ended; an
 * early arrival (group_sync_arrive) is covered by another's later fsync,
 * never by one that started before it. */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "group_sync.h"
#include "str.h"
#include "unit.h"

#define PROCS		6
#define ROUNDS		8
#define SYNC_MAX	(PROCS * ROUNDS)

/* What every process sees: the fsyncs that ran, with their times. */
struct shared_log {
    uint64_t count;
    struct {
	int64_t start, end;
    } sync[SYNC_MAX];
    uint64_t bad;			/* returns not covered by an fsync */
};

static struct shared_log *shared;
static int fsync_calls;
static int fail_next;
static char tmpdir[64];

/* now_ns - monotonic nanoseconds */
static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* counting_fsync - count, optionally fail */
static int counting_fsync(int fd)
{
    (void) fd;
    fsync_calls++;
    if (fail_next) {
	fail_next = 0;
	errno = EIO;
	return -1;
    }
    return 0;
}

/* slow_logged_fsync - a slow fsync whose times go into the shared log */
static int slow_logged_fsync(int fd)
{
    struct timespec pause = {0, 15 * 1000 * 1000};
    uint64_t slot = __atomic_fetch_add(&shared->count, 1, __ATOMIC_SEQ_CST);
    int64_t start = now_ns();

    (void) fd;
    (void) nanosleep(&pause, NULL);
    if (slot < SYNC_MAX) {
	shared->sync[slot].start = start;
	__atomic_store_n(&shared->sync[slot].end, now_ns(), __ATOMIC_RELEASE);
    }
    return 0;
}

/* covered - did an fsync start after since and end before now? */
static int covered(int64_t since)
{
    int64_t now = now_ns();
    uint64_t n = __atomic_load_n(&shared->count, __ATOMIC_ACQUIRE);

    for (uint64_t i = 0; i < n && i < SYNC_MAX; i++) {
	int64_t end = __atomic_load_n(&shared->sync[i].end, __ATOMIC_ACQUIRE);

	if (end != 0 && shared->sync[i].start >= since && end <= now)
	    return 1;
    }
    return 0;
}

/* child - open our own group_sync and commit ROUNDS times */
static void child(const char *state, const char *dir)
{
    const char *error;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    struct group_sync *gs = dirfd < 0 ? NULL : group_sync_open(state, dirfd, &error);

    if (gs == NULL)
	_exit(2);
    group_sync_set_fsync(gs, slow_logged_fsync);
    for (int i = 0; i < ROUNDS; i++) {
	int64_t since = now_ns();

	if (group_sync_dir(gs, &error) < 0)
	    _exit(3);
	if (!covered(since))
	    __atomic_fetch_add(&shared->bad, 1, __ATOMIC_SEQ_CST);
    }
    group_sync_close(&gs);
    _exit(0);
}

int main(void)
{
    char state[128], dir[128], other[128];
    struct group_sync *gs;
    const char *error = NULL;
    struct stat st;
    int dirfd, otherfd;

    unit_assert(fmt_try_buf(tmpdir, sizeof(tmpdir), "/tmp/test-group_sync.XXXXXX"));
    unit_assert(mkdtemp(tmpdir) != NULL);
    unit_assert(fmt_try_buf(dir, sizeof(dir), "%s/incoming", tmpdir));
    unit_assert(fmt_try_buf(other, sizeof(other), "%s/other", tmpdir));
    unit_assert(fmt_try_buf(state, sizeof(state), "%s/incoming/.group-sync", tmpdir));
    unit_assert(mkdir(dir, 0700) == 0 && mkdir(other, 0700) == 0);
    dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    otherfd = open(other, O_RDONLY | O_DIRECTORY);
    unit_assert(dirfd >= 0 && otherfd >= 0);

    unit_begin("state file: created 0600, one page; alone, every call syncs");
    gs = group_sync_open(state, dirfd, &error);
    unit_assert(gs != NULL);
    unit_assert(stat(state, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 4096);
    group_sync_set_fsync(gs, counting_fsync);
    fsync_calls = 0;
    for (int i = 0; i < 3; i++)
	unit_assert(group_sync_dir(gs, &error) == 0);
    unit_assert(fsync_calls == 3);
    unit_end();

    unit_begin("a failed fsync covers nobody and is reported");
    fsync_calls = 0;
    fail_next = 1;
    unit_assert(group_sync_dir(gs, &error) == -1);
    unit_assert(strstr(error, "fsync directory") != NULL);
    unit_assert(group_sync_dir(gs, &error) == 0);
    unit_assert(fsync_calls == 2);
    group_sync_close(&gs);
    unit_assert(gs == NULL);
    unit_end();

    unit_begin("a state file taken over by another directory: both still sync");
    {
	struct group_sync *first = group_sync_open(state, dirfd, &error);

	unit_assert(first != NULL);
	group_sync_set_fsync(first, counting_fsync);
	gs = group_sync_open(state, otherfd, &error);	/* starts it afresh */
	unit_assert(gs != NULL);
	group_sync_set_fsync(gs, counting_fsync);
	fsync_calls = 0;
	unit_assert(group_sync_dir(gs, &error) == 0 && group_sync_dir(gs, &error) == 0);
	unit_assert(fsync_calls == 2);
	/* other's fsyncs published covered = 2; the first directory's
	 * arrival 3 must not take them for its own */
	unit_assert(group_sync_dir(first, &error) == 0);
	unit_assert(fsync_calls == 3);
	group_sync_close(&first);
	group_sync_close(&gs);
    }
    unit_end();

    unit_begin("an early arrival is covered by a later fsync of another, not an earlier one");
    {
	struct group_sync *early = group_sync_open(state, dirfd, &error);
	struct group_sync *other_gs = group_sync_open(state, dirfd, &error);
	uint64_t ticket, before;

	unit_assert(early != NULL && other_gs != NULL);
	group_sync_set_fsync(early, counting_fsync);
	group_sync_set_fsync(other_gs, counting_fsync);
	fsync_calls = 0;
	/* an fsync that ran before the arrival covers nothing of it */
	unit_assert(group_sync_dir(other_gs, &error) == 0);
	unit_assert(fsync_calls == 1);
	ticket = group_sync_arrive(early);
	unit_assert(ticket != 0);
	/* another process commits after our rename: its fsync covers us */
	unit_assert(group_sync_dir(other_gs, &error) == 0);
	unit_assert(fsync_calls == 2);
	unit_assert(group_sync_wait(early, ticket, &error) == 0);
	unit_assert(fsync_calls == 2);
	/* nobody synced since this arrival: the wait runs the fsync */
	ticket = group_sync_arrive(early);
	unit_assert(group_sync_wait(early, ticket, &error) == 0);
	unit_assert(fsync_calls == 3);
	/* a failed fsync of the other covers nothing */
	before = group_sync_arrive(early);
	fail_next = 1;
	unit_assert(group_sync_dir(other_gs, &error) == -1);
	unit_assert(group_sync_wait(early, before, &error) == 0);
	unit_assert(fsync_calls == 5);
	group_sync_close(&early);
	group_sync_close(&other_gs);
    }
    unit_end();

    unit_begin("a state file others may write is refused");
    unit_assert(chmod(state, 0644) == 0);
    unit_assert(group_sync_open(state, dirfd, &error) == NULL);
    unit_assert(strstr(error, "0600") != NULL);
    unit_assert(chmod(state, 0600) == 0);
    unit_end();

    unit_begin("concurrent processes share fsyncs, and each is covered");
    shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unit_assert(shared != MAP_FAILED);
    memset(shared, 0, sizeof(*shared));
    {
	pid_t pids[PROCS];
	int status, ok = 1;

	for (int i = 0; i < PROCS; i++) {
	    pids[i] = fork();
	    unit_assert(pids[i] >= 0);
	    if (pids[i] == 0)
		child(state, dir);
	}
	for (int i = 0; i < PROCS; i++)
	    if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status)
		|| WEXITSTATUS(status) != 0)
		ok = 0;
	unit_assert(ok);
    }
    unit_assert(shared->bad == 0);
    unit_assert(shared->count >= 1 && shared->count < SYNC_MAX);
    unit_end();

    (void) close(dirfd);
    (void) close(otherfd);
    (void) unlink(state);
    (void) rmdir(dir);
    (void) rmdir(other);
    (void) rmdir(tmpdir);
    return unit_done();
}
