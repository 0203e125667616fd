/* scoreboard.c - the shared-memory scoreboard of a service (scoreboard.h):
 * the slot word's encoding, a child's store-then-scan, and the memfd that
 * master creates and its children map.
 *
 * Why store-then-scan is enough (the Dekker argument). A child that takes
 * work stores BUSY in its own slot, then loads every other slot, and
 * writes a TAKEN record to master's status pipe only if it found none
 * idle. All these accesses are seq_cst, so they fall into one total order
 * that agrees with each process's program order. Suppose the service's
 * last two idle children A and B take work at the same time. If A's scan
 * missed B's BUSY, A's load of B's slot came before B's store in that
 * order; A's store came before A's load, so before B's store, so before
 * B's load of A's slot, and B sees A busy: B writes TAKEN. So they cannot
 * both stay silent: whenever a store of BUSY leaves no idle slot, the
 * child that made it (or the one whose store came later) sees no idle
 * slot and tells master; a slot that is seen idle was idle at that point
 * of the order, and master, which recounts the board after it reads the
 * record, sees every store that came before the record was written.
 * master frees a dead child's slot with the same store-then-count, so a
 * taker that saw the dying child idle is counted busy by master's recount.
 *
 * The other direction is allowed to fail: two children that go idle at
 * once may each see the other idle and both skip the AVAIL record. master
 * then believes the service has no idle child, watches its listeners, and
 * the next connection wakes it: it recounts the board, finds the idle
 * children and does not spawn. A missed AVAIL costs one wake-up; a
 * missed TAKEN would leave a client waiting, and cannot happen.
 *
 * The words are 32-bit atomics in a MAP_SHARED mapping: lock-free (the
 * static assertion below), so the same instructions work between
 * processes. */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "errtext.h"

/* mail */
#include "scoreboard.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the scoreboard needs lock-free 32-bit atomics");
_Static_assert(sizeof(scoreboard_slot) == sizeof(uint32_t), "a slot is one 32-bit word");

static struct errtext scoreboard_error;	/* the text behind error_r */

/* scoreboard_word - the word of pid in state; 0 if pid does not fit */
uint32_t scoreboard_word(pid_t pid, unsigned state)
{
    if (pid <= 0 || (uint32_t) pid > SCOREBOARD_PID_MASK || state > SCOREBOARD_BUSY)
	return 0;
    return (uint32_t) state << SCOREBOARD_STATE_SHIFT | (uint32_t) pid;
}

/* scoreboard_idle - FRESH or IDLE, with some pid */
bool scoreboard_idle(uint32_t word)
{
    uint32_t state = word >> SCOREBOARD_STATE_SHIFT;

    return (word & SCOREBOARD_PID_MASK) != 0
	&& (state == SCOREBOARD_FRESH || state == SCOREBOARD_IDLE);
}

/* scoreboard_state - the state of pid's word, or -1 */
int scoreboard_state(uint32_t word, pid_t pid)
{
    uint32_t state = word >> SCOREBOARD_STATE_SHIFT;

    if (pid <= 0 || (uint32_t) pid > SCOREBOARD_PID_MASK
	|| (word & SCOREBOARD_PID_MASK) != (uint32_t) pid || state == SCOREBOARD_FREE)
	return -1;
    return (int) state;
}

/* scoreboard_set - store our word (seq_cst), then load the others
 * (seq_cst, stopping at the first idle one); true if one is idle */
bool scoreboard_set(scoreboard_slot *slots, size_t count, size_t self, uint32_t word)
{
    atomic_store_explicit(&slots[self], word, memory_order_seq_cst);
    for (size_t i = 0; i < count; i++)
	if (i != self && scoreboard_idle(atomic_load_explicit(&slots[i], memory_order_seq_cst)))
	    return true;
    return false;
}

/* scoreboard_create - master: count free slots in a memfd sealed against
 * growing and shrinking (a child that could shrink it would make master's
 * next read a SIGBUS), mapped shared */
int scoreboard_create(size_t count, int *fd_r, scoreboard_slot **slots_r, const char **error_r)
{
    size_t len = count * sizeof(scoreboard_slot);
    void *map;
    int fd, err;

    if (count == 0 || count > SCOREBOARD_MAX_SLOTS)
	return errtext_fail(&scoreboard_error, error_r, "scoreboard: bad slot count %zu", count);
    if ((fd = memfd_create("posthorn-scoreboard", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
	return errtext_fail(&scoreboard_error, error_r, "memfd_create: %s", strerror(errno));
    if (ftruncate(fd, (off_t) len) < 0
	|| fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
	err = errno;
	(void) close(fd);
	return errtext_fail(&scoreboard_error, error_r, "scoreboard memfd: %s", strerror(err));
    }
    if ((map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
	err = errno;
	(void) close(fd);
	return errtext_fail(&scoreboard_error, error_r, "scoreboard mmap: %s", strerror(err));
    }
    (void) madvise(map, len, MADV_DONTFORK);
    *fd_r = fd;
    *slots_r = map;
    return 0;
}

/* scoreboard_map - a child: map the board master passed; its size is
 * the slot count. The caller closes fd (the mapping stays). */
int scoreboard_map(int fd, size_t *count_r, scoreboard_slot **slots_r, const char **error_r)
{
    struct stat st;
    size_t count;
    void *map;

    if (fstat(fd, &st) < 0)
	return errtext_fail(&scoreboard_error, error_r, "scoreboard fstat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size % (off_t) sizeof(scoreboard_slot) != 0
	|| (count = (size_t) st.st_size / sizeof(scoreboard_slot)) > SCOREBOARD_MAX_SLOTS)
	return errtext_fail(&scoreboard_error, error_r, "scoreboard: bad size %lld",
			    (long long) st.st_size);
    map = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
	return errtext_fail(&scoreboard_error, error_r, "scoreboard mmap: %s", strerror(errno));
    (void) madvise(map, (size_t) st.st_size, MADV_DONTFORK);
    *count_r = count;
    *slots_r = map;
    return 0;
}

/* scoreboard_unmap - unmap and set *slots to NULL */
void scoreboard_unmap(scoreboard_slot **slots, size_t count)
{
    if (*slots != NULL)
	(void) munmap((void *) *slots, count * sizeof(scoreboard_slot));
    *slots = NULL;
}
