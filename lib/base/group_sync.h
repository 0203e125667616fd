/* group_sync.h - one directory fsync for many processes' commits.
 *
 * Processes that each rename a file into the same directory, and must
 * not answer before the directory is on disk, can share fsyncs: an
 * fsync of the directory that STARTS after a rename has completed makes
 * that rename durable, whoever calls it. group_sync_dir() waits for such
 * an fsync, or runs one itself, and never returns 0 before one finished.
 *
 * The processes meet in a small state file (mapped shared): a count of
 * arrivals (renames done, waiting for their fsync) and the arrival count
 * that the last successful fsync covered, with a lock (flock) held by
 * the process that runs the fsync. While one process syncs, the others
 * queue on the lock; the next one syncs for all that arrived meanwhile,
 * and those after it find themselves covered and return at once. The
 * state file names the directory (device, inode); opened for another
 * directory, it starts afresh. Anyone who can write the state file
 * can make the others skip their fsync: it must belong to the same user
 * as the directory and be reachable by nobody else.
 *
 * Error texts (*error_r) are this module's errtext (errtext.h): valid
 * until the next group_sync error. */
#ifndef POSTHORN_GROUP_SYNC_H
#define POSTHORN_GROUP_SYNC_H

#include <stdint.h>

struct group_sync;

/* group_sync_open - open (creating, mode 0600) the state file at path for
 * the directory dirfd (which the caller keeps open); NULL and *error_r
 * on failure (the caller may then fsync on its own) */
struct group_sync *group_sync_open(const char *path, int dirfd, const char **error_r);

/* group_sync_open_fd - the same on an already open state file (read-write);
 * the descriptor becomes the group_sync's */
struct group_sync *group_sync_open_fd(int state_fd, int dirfd, const char **error_r);

/* group_sync_dir - return 0 once an fsync of the directory that started
 * after this call began has succeeded; -1 with errno and *error_r if the
 * fsync this process ran failed (group_sync_arrive, then group_sync_wait) */
int group_sync_dir(struct group_sync *gs, const char **error_r);

/* group_sync_arrive - count a change of the directory that has completed
 * (call it after the rename, as early as that is done); the ticket to
 * hand to group_sync_wait later. Any fsync that other processes start
 * from now on covers this change, so a process whose rename comes long
 * before its commit (cleanup names its file when a message begins) is
 * usually covered by the time it commits. 0: the state is not shared
 * (group_sync_wait then syncs alone). */
uint64_t group_sync_arrive(struct group_sync *gs);

/* group_sync_wait - return 0 once an fsync of the directory that started
 * after the arrival that gave ticket has succeeded (at once when one
 * already has); -1 with errno and *error_r if the fsync this process ran
 * failed */
int group_sync_wait(struct group_sync *gs, uint64_t ticket, const char **error_r);

/* group_sync_set_fsync - the fsync function (tests count and slow it) */
void group_sync_set_fsync(struct group_sync *gs, int (*fn)(int fd));

/* group_sync_close - unmap, close the state file (not the directory) */
void group_sync_close(struct group_sync **gsp);

#endif
