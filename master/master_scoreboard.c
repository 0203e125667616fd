/* master_scoreboard.c - each service's shared-memory scoreboard, master's
 * side (the protocol: master_proto.h; the word and the child's side:
 * lib/mail/scoreboard.c; the why: docs/architecture.md, decision 50).
 *
 * master makes one board per service (again at each reload, when every
 * child is retired: a retired child keeps writing its old slot, which
 * must not be a new child's), with maxproc slots, or
 * MASTER_SB_UNLIMITED_SLOTS for maxproc 0. A child gets a free slot at
 * spawn; a child spawned when every slot is taken gets none and reports
 * with status records only, as before the scoreboard.
 *
 * The shared words are untrusted: the children of a service share a
 * uid, and a compromised one may write anything into any slot. master
 * keeps its own record of which pid owns which slot, reads a word only
 * through master_sb_state (the owner's pid and a valid state, else -1),
 * and never derives a count, an index or a size from the shared memory.
 * The memfd is sealed against growing and shrinking, so a child cannot
 * turn master's next read into a SIGBUS. */

/* system */
#include <stdatomic.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"

/* mail */
#include "scoreboard.h"

/* master */
#include "master.h"

/* slots for a service with maxproc 0 (no limit): children beyond them
 * report with status records only */
#define MASTER_SB_UNLIMITED_SLOTS	256

/* master_sb_new - a board for maxproc children, or NULL (logged) */
struct master_sb *master_sb_new(const char *service, long maxproc)
{
    struct master_sb *sb;
    size_t count;
    const char *err;

    if (maxproc <= 0)
	count = MASTER_SB_UNLIMITED_SLOTS;
    else
	count = maxproc > SCOREBOARD_MAX_SLOTS ? SCOREBOARD_MAX_SLOTS : (size_t) maxproc;
    sb = mem_zalloc(sizeof(*sb));
    if (scoreboard_create(count, &sb->fd, &sb->slots, &err) < 0) {
	msg_warn("service %s: %s -- status records only", service, err);
	mem_free(&sb);
	return NULL;
    }
    sb->count = count;
    sb->owner = mem_zalloc(mem_size_mul(count, sizeof(*sb->owner)));
    return sb;
}

/* master_sb_free - unmap and close (the children keep their mappings) */
void master_sb_free(struct master_sb **sbp)
{
    struct master_sb *sb = *sbp;

    if (sb == NULL)
	return;
    scoreboard_unmap(&sb->slots, sb->count);
    (void) close(sb->fd);
    mem_free(&sb->owner);
    mem_free(sbp);
}

/* master_sb_reserve - a free slot, cleared, or -1 when all are taken */
int master_sb_reserve(struct master_sb *sb)
{
    if (sb == NULL)
	return -1;
    for (size_t i = 0; i < sb->count; i++) {
	if (sb->owner[i] == 0) {
	    atomic_store_explicit(&sb->slots[i], 0, memory_order_seq_cst);
	    return (int) i;
	}
    }
    return -1;
}

/* master_sb_assign - slot belongs to pid from now on: FRESH (idle). The
 * slot was cleared before the fork; a child that already took work and
 * wrote its BUSY keeps it (compare-and-swap from 0), so a busy child is
 * never counted idle because master came late. */
void master_sb_assign(struct master_sb *sb, int slot, pid_t pid)
{
    uint32_t expect = 0;

    if (sb == NULL || slot < 0 || (size_t) slot >= sb->count)
	msg_panic("master_sb_assign: bad slot %d", slot);
    sb->owner[slot] = pid;
    (void) atomic_compare_exchange_strong_explicit(&sb->slots[slot], &expect,
						   scoreboard_word(pid, SCOREBOARD_FRESH),
						   memory_order_seq_cst, memory_order_seq_cst);
}

/* master_sb_release - the slot's child is gone: free. The store is seq_cst
 * and the recount that follows loads every slot after it, so a child that
 * took work while it saw this slot still idle (and wrote no record) is
 * seen busy (scoreboard.c). */
void master_sb_release(struct master_sb *sb, int slot)
{
    if (sb == NULL || slot < 0 || (size_t) slot >= sb->count)
	return;
    sb->owner[slot] = 0;
    atomic_store_explicit(&sb->slots[slot], 0, memory_order_seq_cst);
}

/* master_sb_state - the state of the slot's owner, or -1 for a word that
 * is not the owner's (another pid, free, a bad state): untrusted input */
int master_sb_state(const struct master_sb *sb, int slot, uint32_t *word_r)
{
    uint32_t word;

    *word_r = 0;
    if (sb == NULL || slot < 0 || (size_t) slot >= sb->count || sb->owner[slot] <= 0)
	return -1;
    word = atomic_load_explicit(&sb->slots[slot], memory_order_seq_cst);
    *word_r = word;
    return scoreboard_state(word, sb->owner[slot]);
}
