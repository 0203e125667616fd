/* test-scoreboard.c - unit tests for scoreboard.c (the slot word, the
 * store-then-scan, the sealed memfd) and for the skeleton's use of it
 * (srv_notify, srv_notify_used in server.c): which state changes still
 * write a status record to master. */

/* system */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "unit.h"

/* mail */
#include "master_proto.h"
#include "scoreboard.h"
#include "server_internal.h"

#define W(pid, state)	((uint32_t) (state) << SCOREBOARD_STATE_SHIFT | (uint32_t) (pid))

/* test_words - encoding, and master's decoding of untrusted words */
static void test_words(void)
{
    static const struct {
	uint32_t word;
	pid_t pid;
	int want;
    } cases[] = {
	{W(100, SCOREBOARD_FRESH), 100, SCOREBOARD_FRESH},
	{W(100, SCOREBOARD_IDLE), 100, SCOREBOARD_IDLE},
	{W(100, SCOREBOARD_BUSY), 100, SCOREBOARD_BUSY},
	{W(101, SCOREBOARD_IDLE), 100, -1},		/* another pid */
	{0, 100, -1},					/* free */
	{W(100, SCOREBOARD_FREE), 100, -1},		/* no state */
	{0xffffffffu, 100, -1},
	{0xffffffffu, (pid_t) SCOREBOARD_PID_MASK, SCOREBOARD_BUSY},
	{W(100, SCOREBOARD_IDLE), 0, -1},		/* no owner */
	{W(100, SCOREBOARD_IDLE), -100, -1},
    };

    unit_begin("scoreboard words: encode, and decode as untrusted input");
    unit_assert_inteq(scoreboard_word(100, SCOREBOARD_BUSY), W(100, SCOREBOARD_BUSY));
    unit_assert_inteq(scoreboard_word(0, SCOREBOARD_BUSY), 0);
    unit_assert_inteq(scoreboard_word(-1, SCOREBOARD_BUSY), 0);
    unit_assert_inteq(scoreboard_word((pid_t) SCOREBOARD_PID_MASK + 1, SCOREBOARD_IDLE), 0);
    unit_assert_inteq(scoreboard_word(100, 4), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	unit_assert_idx(scoreboard_state(cases[i].word, cases[i].pid) == cases[i].want, i);
    unit_assert(scoreboard_idle(W(5, SCOREBOARD_FRESH)));
    unit_assert(scoreboard_idle(W(5, SCOREBOARD_IDLE)));
    unit_assert(!scoreboard_idle(W(5, SCOREBOARD_BUSY)));
    unit_assert(!scoreboard_idle(W(0, SCOREBOARD_IDLE)));
    unit_assert(!scoreboard_idle(0));
    unit_end();
}

/* test_scan - the store-then-scan: true iff another slot is idle */
static void test_scan(void)
{
    static const struct {
	uint32_t others[3];		/* slots 1..3; we are slot 0 */
	unsigned state;			/* what we store */
	bool want_other_idle;
    } cases[] = {
	/* the last idle process takes work: nobody else idle */
	{{W(11, SCOREBOARD_BUSY), W(12, SCOREBOARD_BUSY), 0}, SCOREBOARD_BUSY, false},
	/* another one is still idle (fresh or served) */
	{{W(11, SCOREBOARD_BUSY), W(12, SCOREBOARD_FRESH), 0}, SCOREBOARD_BUSY, true},
	{{W(11, SCOREBOARD_IDLE), W(12, SCOREBOARD_BUSY), 0}, SCOREBOARD_BUSY, true},
	/* going idle while none is idle */
	{{W(11, SCOREBOARD_BUSY), 0, W(13, SCOREBOARD_BUSY)}, SCOREBOARD_IDLE, false},
	/* going idle while another is idle */
	{{0, 0, W(13, SCOREBOARD_IDLE)}, SCOREBOARD_IDLE, true},
	/* a free slot, or garbage without a pid, is not an idle process */
	{{0, W(0, SCOREBOARD_IDLE), 0}, SCOREBOARD_BUSY, false},
    };
    scoreboard_slot board[4];

    unit_begin("scoreboard_set: store our word, then find another idle slot");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	atomic_store(&board[0], W(10, SCOREBOARD_FRESH));
	for (int k = 0; k < 3; k++)
	    atomic_store(&board[k + 1], cases[i].others[k]);
	unit_assert_idx(scoreboard_set(board, 4, 0, scoreboard_word(10, cases[i].state))
			== cases[i].want_other_idle, i);
	unit_assert_idx(atomic_load(&board[0]) == W(10, cases[i].state), i);
    }
    /* our own slot never counts: alone on the board, nobody else idle */
    atomic_store(&board[0], W(10, SCOREBOARD_IDLE));
    unit_assert(!scoreboard_set(board, 1, 0, W(10, SCOREBOARD_IDLE)));
    unit_end();
}

/* records - the status records waiting in the pipe (non-blocking) */
static int records(int fd, struct master_status *st, int max)
{
    ssize_t n = read(fd, st, (size_t) max * sizeof(*st));

    return n < 0 ? 0 : (int) ((size_t) n / sizeof(*st));
}

/* test_notify - which skeleton reports still reach master's pipe */
static void test_notify(void)
{
    struct master_status st[4];
    scoreboard_slot *board;
    size_t count;
    int fd, p[2];
    pid_t me = getpid();
    const char *err;

    unit_begin("srv_notify: a record only when the idle count reaches or leaves zero");
    unit_assert(pipe2(p, O_NONBLOCK) == 0);
    unit_assert(scoreboard_create(3, &fd, &board, &err) == 0);
    count = 3;
    srv_status_fd = p[1];
    srv_pid = me;
    /* without a scoreboard: every report is a record, as before */
    srv_notify(MASTER_STAT_TAKEN);
    srv_notify(MASTER_STAT_AVAIL);
    srv_notify_used();
    unit_assert_inteq(records(p[0], st, 4), 4);

    /* on the board, in slot 0, as master leaves it at spawn */
    atomic_store(&board[0], scoreboard_word(me, SCOREBOARD_FRESH));
    atomic_store(&board[1], scoreboard_word(me + 1, SCOREBOARD_FRESH));
    atomic_store(&board[2], scoreboard_word(me + 2, SCOREBOARD_BUSY));
    srv_scoreboard_attach(board, count, 0);

    /* taking work while another is idle: no record */
    srv_notify(MASTER_STAT_TAKEN);
    unit_assert_inteq(records(p[0], st, 4), 0);
    unit_assert(atomic_load(&board[0]) == scoreboard_word(me, SCOREBOARD_BUSY));
    /* idle again while another is idle: no record */
    srv_notify(MASTER_STAT_AVAIL);
    unit_assert_inteq(records(p[0], st, 4), 0);
    unit_assert(atomic_load(&board[0]) == scoreboard_word(me, SCOREBOARD_IDLE));

    /* the last idle one takes work: TAKEN */
    atomic_store(&board[1], scoreboard_word(me + 1, SCOREBOARD_BUSY));
    srv_notify(MASTER_STAT_TAKEN);
    unit_assert_inteq(records(p[0], st, 4), 1);
    unit_assert(st[0].pid == me && st[0].status == MASTER_STAT_TAKEN);
    /* the same state again: nothing changed, no record */
    srv_notify(MASTER_STAT_TAKEN);
    unit_assert_inteq(records(p[0], st, 4), 0);
    /* idle while none else is: AVAIL */
    srv_notify(MASTER_STAT_AVAIL);
    unit_assert_inteq(records(p[0], st, 4), 1);
    unit_assert(st[0].pid == me && st[0].status == MASTER_STAT_AVAIL);

    /* MULTI takes a client and stays available: the slot says IDLE
     * (served), the idle count is the same, no record */
    atomic_store(&board[0], scoreboard_word(me, SCOREBOARD_FRESH));
    srv_scoreboard_attach(board, count, 0);
    srv_notify_used();
    unit_assert_inteq(records(p[0], st, 4), 0);
    unit_assert(atomic_load(&board[0]) == scoreboard_word(me, SCOREBOARD_IDLE));
    /* ... then stops taking clients while others are busy: TAKEN */
    srv_notify(MASTER_STAT_TAKEN);
    unit_assert_inteq(records(p[0], st, 4), 1);

    /* a forked child has no scoreboard (MADV_DONTFORK): records */
    srv_atfork_child();
    srv_notify(MASTER_STAT_AVAIL);
    unit_assert_inteq(records(p[0], st, 4), 1);
    srv_pid = me;

    srv_status_fd = -1;
    scoreboard_unmap(&board, count);
    close(fd);
    close(p[0]);
    close(p[1]);
    unit_end();
}

/* test_memfd - master's board cannot be resized by a child; a child maps
 * it with its size as the slot count */
static void test_memfd(void)
{
    scoreboard_slot *board, *mine;
    size_t count;
    const char *err;
    int fd;

    unit_begin("scoreboard memfd: sealed size, shared words, bounded count");
    unit_assert(scoreboard_create(0, &fd, &board, &err) < 0);
    unit_assert(scoreboard_create(SCOREBOARD_MAX_SLOTS + 1, &fd, &board, &err) < 0);
    unit_assert(scoreboard_create(5, &fd, &board, &err) == 0);
    unit_assert(ftruncate(fd, 0) < 0 && errno == EPERM);
    unit_assert(ftruncate(fd, 4096) < 0 && errno == EPERM);
    unit_assert(scoreboard_map(fd, &count, &mine, &err) == 0);
    unit_assert_inteq(count, 5);
    atomic_store(&mine[4], 77);
    unit_assert_inteq(atomic_load(&board[4]), 77);
    unit_assert_inteq(atomic_load(&board[0]), 0);
    scoreboard_unmap(&mine, count);
    unit_assert(mine == NULL);
    scoreboard_unmap(&board, 5);
    close(fd);

    /* a descriptor that is not a board of whole slots */
    fd = memfd_create("t", MFD_CLOEXEC);
    unit_assert(fd >= 0);
    unit_assert(scoreboard_map(fd, &count, &mine, &err) < 0);		/* empty */
    unit_assert(ftruncate(fd, 6) == 0);
    unit_assert(scoreboard_map(fd, &count, &mine, &err) < 0);		/* 1.5 slots */
    unit_assert(strstr(err, "bad size") != NULL);
    close(fd);
    unit_end();
}

/* The race of two processes taking the last two idle slots at once (the
 * store-buffer litmus test): run many rounds in two processes, both
 * storing BUSY and scanning at the same moment, and count the rounds in
 * which each saw the other still idle, so that neither would write
 * TAKEN. With seq_cst there must be none; with release stores and
 * acquire loads x86 shows them within a few thousand rounds. */
#define RACE_ROUNDS	20000
#define RACE_SECONDS	5

struct race {
    _Atomic unsigned arrive[2];		/* per process: the last phase reached */
    _Atomic int saw_idle[2];		/* the result of the round */
    _Atomic int stop;
};

/* race_wait - both processes reached phase */
static void race_wait(struct race *r, int self, unsigned phase)
{
    atomic_store(&r->arrive[self], phase);
    for (unsigned spins = 0; atomic_load(&r->arrive[!self]) < phase && !atomic_load(&r->stop);)
	if (++spins % 1024 == 0)
	    sched_yield();
}

/* race_run - one side of the race */
static long race_run(struct race *r, scoreboard_slot *board, int self, pid_t pid)
{
    long both = 0;
    time_t end = time(NULL) + RACE_SECONDS;

    for (unsigned round = 0; round < RACE_ROUNDS && !atomic_load(&r->stop); round++) {
	atomic_store(&board[self], scoreboard_word(pid, SCOREBOARD_IDLE));
	race_wait(r, self, 3 * round + 1);
	atomic_store(&r->saw_idle[self],
		     scoreboard_set(board, 2, (size_t) self, scoreboard_word(pid, SCOREBOARD_BUSY)));
	race_wait(r, self, 3 * round + 2);
	if (self == 0 && atomic_load(&r->saw_idle[0]) && atomic_load(&r->saw_idle[1]))
	    both++;
	race_wait(r, self, 3 * round + 3);
	if (self == 0 && time(NULL) > end)
	    atomic_store(&r->stop, 1);
    }
    return both;
}

static void test_race(void)
{
    struct race *r;
    scoreboard_slot *board, *theirs;
    size_t count;
    const char *err;
    int fd, status;
    long both;
    pid_t kid;

    unit_begin("scoreboard race: two takers of the last idle slots never both stay silent");
    r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unit_assert(r != MAP_FAILED);
    memset(r, 0, sizeof(*r));
    unit_assert(scoreboard_create(2, &fd, &board, &err) == 0);
    if ((kid = fork()) == 0) {
	/* the mapping is MADV_DONTFORK: map it again, as a child of master does */
	if (scoreboard_map(fd, &count, &theirs, &err) < 0)
	    _exit(2);
	(void) race_run(r, theirs, 1, getpid());
	_exit(0);
    }
    unit_assert(kid > 0);
    both = race_run(r, board, 0, getpid());
    atomic_store(&r->stop, 1);
    unit_assert(waitpid(kid, &status, 0) == kid && WIFEXITED(status)
		&& WEXITSTATUS(status) == 0);
    if (both != 0)
	unit_fail_at(__FILE__, __LINE__, "%ld rounds in which both takers saw the other idle",
		     both);
    scoreboard_unmap(&board, 2);
    close(fd);
    munmap(r, sizeof(*r));
    unit_end();
}

int main(void)
{
    msg_init("test-scoreboard", MSG_TO_STDERR);
    test_words();
    test_scan();
    test_notify();
    test_memfd();
    test_race();
    return unit_done();
}
