/* scoreboard.h - the shared-memory scoreboard of one master.cf service:
 * one 32-bit word per process slot, shared by master and the service's
 * children, so that a child tells master about a change of its idle or
 * busy state only when the service's idle count passes through zero
 * (master_proto.h has the protocol; docs/architecture.md, decision 50).
 *
 * A slot word is  state << SCOREBOARD_STATE_SHIFT | pid  (pid < 2^30):
 *   0                        free
 *   FRESH | pid              spawned by master, no work taken yet (idle)
 *   IDLE  | pid              idle, has taken work before
 *   BUSY  | pid              busy with a client or a trigger
 * master writes a slot at spawn (FRESH) and at reap (0); in between only
 * the child writes it. Both halves use the functions below; master reads
 * the words as untrusted input (scoreboard_state).
 *
 * Interface:
 *   scoreboard_word(pid, state)    a slot word
 *   scoreboard_state(word, pid)    master: the state of pid's word, or -1
 *                                  when the word is not pid's or is not
 *                                  a valid word
 *   scoreboard_set(slots, count, self, word)
 *                                  a child: store its own word, then scan
 *                                  the others (both seq_cst); true if
 *                                  another slot is idle
 *   scoreboard_create(count, &fd, &slots, &err)
 *                                  master: a sealed memfd of count slots
 *                                  (cannot grow or shrink), mapped shared
 *   scoreboard_map(fd, &count, &slots, &err)
 *                                  a child: map the memfd master passed
 *   scoreboard_unmap(&slots, count)
 *
 * Both mappings are MADV_DONTFORK: a process a daemon forks (a
 * local-delivery or pop3d/imapd worker that drops to a user's uid) never
 * inherits the scoreboard.
 *
 * DIAGNOSTICS: create and map return -1 with a text valid until this
 * module's next error (errtext.h). */
#ifndef POSTHORN_SCOREBOARD_H
#define POSTHORN_SCOREBOARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef _Atomic uint32_t scoreboard_slot;

#define SCOREBOARD_FREE		0u
#define SCOREBOARD_FRESH	1u	/* idle, spawned, no work taken yet */
#define SCOREBOARD_IDLE		2u	/* idle, has taken work */
#define SCOREBOARD_BUSY		3u	/* busy */
#define SCOREBOARD_STATE_SHIFT	30
#define SCOREBOARD_PID_MASK	((1u << SCOREBOARD_STATE_SHIFT) - 1)
#define SCOREBOARD_MAX_SLOTS	4096	/* a bound for the child's check */

/* scoreboard_word - the word of pid in state; 0 if pid does not fit */
uint32_t scoreboard_word(pid_t pid, unsigned state);
/* scoreboard_idle - the word says idle (FRESH or IDLE, some pid) */
bool scoreboard_idle(uint32_t word);
/* scoreboard_state - the state of a word that should be pid's: -1 if it
 * names another pid, or is free, or has no valid state */
int scoreboard_state(uint32_t word, pid_t pid);
/* scoreboard_set - store our word, then look for another idle slot */
bool scoreboard_set(scoreboard_slot *slots, size_t count, size_t self, uint32_t word);
/* scoreboard_create - master: count free slots in a sealed memfd */
int scoreboard_create(size_t count, int *fd_r, scoreboard_slot **slots_r, const char **error_r);
/* scoreboard_map - a child: map the board master passed as fd */
int scoreboard_map(int fd, size_t *count_r, scoreboard_slot **slots_r, const char **error_r);
/* scoreboard_unmap - unmap and set *slots to NULL */
void scoreboard_unmap(scoreboard_slot **slots, size_t count);

#endif
