/* qmgr_remove.c - remove finished queue files off qmgr's main thread.
 *
 * Removing a delivered message is the last step of its life, and nobody
 * waits for it: a lost unlink only delivers the message again after a
 * crash (at least once, docs/queue.md). Yet unlink(2) of a file whose
 * blocks were just written can block for most of a millisecond (block
 * and inode bitmaps, and a synchronous discard on file systems mounted
 * with "discard"), and qmgr is the one process every delivery waits for.
 * So qmgr hands the paths to one helper thread through a ring buffer:
 * the main thread only copies a path and signals; the thread unlinks, in
 * order. A full ring falls back to unlinking at once. The helper thread
 * runs with every signal blocked and touches nothing but the ring and
 * unlink(2); its errors are reported by the main thread. The thread
 * works in batches: once woken, it lets removals gather for
 * RM_GATHER_MS before it unlinks them all, so that under load it wakes
 * (and the main thread signals a sleeping thread) once per batch rather
 * than once per message; a removal waits at most that much longer, and
 * a crash in between repeats at most a batch (as it would the ring). On SIGTERM the
 * skeleton calls qmgr_remove_terminate() from the signal handler, which
 * unlinks what is still queued (unlink is async-signal-safe), so a stop
 * does not turn finished messages into duplicates. */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "str.h"

/* qmgr */
#include "qmgr.h"

#define RM_SLOTS	1024		/* queued removals */
#define RM_PATH_SIZE	64		/* "active/<queue ID>" */
#define RM_GATHER_MS	10		/* a batch gathers this long */

static char rm_paths[RM_SLOTS][RM_PATH_SIZE];
static unsigned long rm_head;		/* atomic: next slot the main thread fills */
static unsigned long rm_tail;		/* atomic: next slot the thread removes */
static int rm_stop;			/* atomic: finish the ring, then end */
static int rm_hold;			/* atomic: the thread waits (tests) */
static int rm_sleeping;			/* under rm_lock: the thread waits on rm_cond */
static pthread_mutex_t rm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rm_cond = PTHREAD_COND_INITIALIZER;
static pthread_t rm_thread;
static int rm_started;

/* The first error of the thread since the main thread last looked. */
static int rm_error_errno;		/* under rm_lock; 0: none */
static char rm_error_path[RM_PATH_SIZE];

/* rm_unlink - one removal; ENOENT is fine (gone already) */
static int rm_unlink(const char *path)
{
    return unlink(path) == 0 || errno == ENOENT ? 0 : errno;
}

/* rm_main - the helper thread: unlink queued paths in order */
static void *rm_main(void *arg)
{
    (void) arg;
    for (;;) {
	unsigned long tail = __atomic_load_n(&rm_tail, __ATOMIC_RELAXED);
	int err;

	(void) pthread_mutex_lock(&rm_lock);
	while ((tail == __atomic_load_n(&rm_head, __ATOMIC_ACQUIRE)
		|| __atomic_load_n(&rm_hold, __ATOMIC_ACQUIRE))
	       && !__atomic_load_n(&rm_stop, __ATOMIC_ACQUIRE)) {
	    rm_sleeping = 1;
	    (void) pthread_cond_wait(&rm_cond, &rm_lock);
	    rm_sleeping = 0;
	}
	(void) pthread_mutex_unlock(&rm_lock);
	if (tail == __atomic_load_n(&rm_head, __ATOMIC_ACQUIRE))
	    return NULL;			/* stopped, and nothing left */
	if (!__atomic_load_n(&rm_stop, __ATOMIC_ACQUIRE)
	    && __atomic_load_n(&rm_head, __ATOMIC_ACQUIRE) - tail < RM_SLOTS / 2) {
	    struct timespec gather = {0, RM_GATHER_MS * 1000000L};

	    (void) nanosleep(&gather, NULL);	/* let the batch gather */
	}
	while (tail != __atomic_load_n(&rm_head, __ATOMIC_ACQUIRE)) {
	    if ((err = rm_unlink(rm_paths[tail % RM_SLOTS])) != 0) {
		(void) pthread_mutex_lock(&rm_lock);
		if (rm_error_errno == 0) {
		    rm_error_errno = err;
		    memcpy(rm_error_path, rm_paths[tail % RM_SLOTS], RM_PATH_SIZE);
		}
		(void) pthread_mutex_unlock(&rm_lock);
	    }
	    tail++;
	    __atomic_store_n(&rm_tail, tail, __ATOMIC_RELEASE);
	}
    }
}

/* rm_report - log what the thread could not remove */
static void rm_report(void)
{
    char path[RM_PATH_SIZE];
    int err;

    (void) pthread_mutex_lock(&rm_lock);
    err = rm_error_errno;
    memcpy(path, rm_error_path, sizeof(path));
    rm_error_errno = 0;
    (void) pthread_mutex_unlock(&rm_lock);
    if (err != 0)
	msg_warn("remove %s: %s", path, strerror(err));
}

/* qmgr_remove_init - start the helper thread (with every signal blocked,
 * so that signals go to the main thread); without it, removals happen at
 * once in qmgr_remove_file */
void qmgr_remove_init(void)
{
    sigset_t all, old;
    int err;

    __atomic_store_n(&rm_stop, 0, __ATOMIC_RELEASE);
    (void) sigfillset(&all);
    (void) pthread_sigmask(SIG_BLOCK, &all, &old);
    err = pthread_create(&rm_thread, NULL, rm_main, NULL);
    (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0)
	msg_warn("cannot start the removal thread: %s -- removing in the main thread",
		 strerror(err));
    else
	rm_started = 1;
}

/* qmgr_remove_file - remove path (relative to queue_directory) soon */
void qmgr_remove_file(const char *path)
{
    unsigned long head = __atomic_load_n(&rm_head, __ATOMIC_RELAXED);
    int err;

    if (__atomic_load_n(&rm_error_errno, __ATOMIC_RELAXED) != 0)
	rm_report();
    if (!rm_started || strlen(path) >= RM_PATH_SIZE
	|| head - __atomic_load_n(&rm_tail, __ATOMIC_ACQUIRE) >= RM_SLOTS) {
	if ((err = rm_unlink(path)) != 0)
	    msg_warn("remove %s: %s", path, strerror(err));
	return;
    }
    memcpy(rm_paths[head % RM_SLOTS], path, strlen(path) + 1);
    __atomic_store_n(&rm_head, head + 1, __ATOMIC_RELEASE);
    (void) pthread_mutex_lock(&rm_lock);
    if (rm_sleeping)				/* else it sees the slot anyway */
	(void) pthread_cond_signal(&rm_cond);
    (void) pthread_mutex_unlock(&rm_lock);
}

/* qmgr_remove_hold - make the thread wait (hold) or go on (for tests:
 * what qmgr_remove_terminate finds queued) */
void qmgr_remove_hold(int hold)
{
    (void) pthread_mutex_lock(&rm_lock);
    __atomic_store_n(&rm_hold, hold, __ATOMIC_RELEASE);
    (void) pthread_cond_signal(&rm_cond);
    (void) pthread_mutex_unlock(&rm_lock);
}

/* qmgr_remove_finish - at a normal exit: let the thread empty the ring */
void qmgr_remove_finish(void)
{
    if (!rm_started)
	return;
    (void) pthread_mutex_lock(&rm_lock);
    __atomic_store_n(&rm_hold, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&rm_stop, 1, __ATOMIC_RELEASE);
    (void) pthread_cond_signal(&rm_cond);
    (void) pthread_mutex_unlock(&rm_lock);
    (void) pthread_join(rm_thread, NULL);
    rm_started = 0;
    rm_report();
}

/* qmgr_remove_terminate - from the SIGTERM handler: unlink what is still
 * queued (async-signal-safe: reads published slots, calls unlink only) */
void qmgr_remove_terminate(void)
{
    unsigned long tail = __atomic_load_n(&rm_tail, __ATOMIC_ACQUIRE);
    unsigned long head = __atomic_load_n(&rm_head, __ATOMIC_ACQUIRE);
    int saved_errno = errno;

    for (; tail != head; tail++)
	(void) unlink(rm_paths[tail % RM_SLOTS]);
    errno = saved_errno;
}
