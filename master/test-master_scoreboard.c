/* test-master_scoreboard.c - unit tests for master's side of the
 * scoreboard (master_scoreboard.c, and the recount, the records and the
 * reaping in master_spawn.c): slots are handed out and freed, idle
 * counts come from the board, and hostile or garbage words (a foreign
 * pid, a bad state, a free slot, all ones) count as busy, never as
 * idle, and never push a service past maxproc. */

/* system */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "unit.h"

/* mail */
#include "master_proto.h"
#include "mastercf.h"
#include "scoreboard.h"

/* master */
#include "master.h"
#include "test-master_conf.h"

#define W(pid, state)	((uint32_t) (state) << SCOREBOARD_STATE_SHIFT | (uint32_t) (pid))

/* conf_one - a configuration with one master.cf line */
static struct master_conf *conf_one(const char *line)
{
    return test_master_conf("all", "ipv4", line);
}

/* child_on - a child of serv in a fresh slot, as master_spawn leaves it */
static void child_on(struct master_child *c, struct master_service *serv, pid_t pid)
{
    memset(c, 0, sizeof(*c));
    c->pid = pid;
    c->serv = serv;
    c->avail = true;
    c->sb_slot = master_sb_reserve(serv->sb);
    unit_assert(c->sb_slot >= 0);
    master_sb_assign(serv->sb, c->sb_slot, pid);
    c->next = master_children;
    master_children = c;
    serv->total_proc++;
    serv->avail_proc++;
}

/* put - what a child (or a hostile sibling) writes into a slot */
static void put(struct master_service *serv, const struct master_child *c, uint32_t word)
{
    atomic_store(&serv->sb->slots[c->sb_slot], word);
}

/* serv_init - a service of the configuration's first entry */
static void serv_init(struct master_service *serv, struct master_conf *conf)
{
    memset(serv, 0, sizeof(*serv));
    serv->ent = &conf->cf->entries[0];
    serv->name = "smtp";
    serv->type = serv->ent->type;
    serv->listen_count = 1;
    serv->listen[0].fd = -1;
    serv->status_fd[0] = serv->status_fd[1] = -1;
    serv->sb = master_sb_new(serv->name, serv->ent->maxproc);
}

static void test_slots(void)
{
    struct master_sb *sb;
    uint32_t word;
    int s0, s1;

    unit_begin("master_sb: sized by maxproc, slots handed out, freed, and read by owner");
    sb = master_sb_new("t", 2);
    unit_assert(sb != NULL && sb->count == 2);
    s0 = master_sb_reserve(sb);
    master_sb_assign(sb, s0, 500);
    s1 = master_sb_reserve(sb);
    unit_assert(s0 == 0 && s1 == 1);
    /* the child wrote BUSY before master's assignment: it stays */
    atomic_store(&sb->slots[s1], W(501, SCOREBOARD_BUSY));
    master_sb_assign(sb, s1, 501);
    unit_assert_inteq(master_sb_state(sb, s1, &word), SCOREBOARD_BUSY);
    unit_assert_inteq(master_sb_state(sb, s0, &word), SCOREBOARD_FRESH);
    unit_assert_inteq(master_sb_reserve(sb), -1);		/* full */
    master_sb_release(sb, s0);
    unit_assert_inteq(atomic_load(&sb->slots[s0]), 0);
    unit_assert_inteq(master_sb_state(sb, s0, &word), -1);	/* no owner */
    unit_assert_inteq(master_sb_reserve(sb), s0);
    /* out of range, and no board at all */
    unit_assert_inteq(master_sb_state(sb, 2, &word), -1);
    unit_assert_inteq(master_sb_state(sb, -1, &word), -1);
    unit_assert_inteq(master_sb_state(NULL, 0, &word), -1);
    unit_assert_inteq(master_sb_reserve(NULL), -1);
    master_sb_free(&sb);
    unit_assert(sb == NULL);
    /* maxproc 0 (no limit): a bounded board; beyond it, records only */
    sb = master_sb_new("t", 0);
    unit_assert(sb != NULL && sb->count > 0 && sb->count <= SCOREBOARD_MAX_SLOTS);
    master_sb_free(&sb);
    sb = master_sb_new("t", 1000000);
    unit_assert(sb != NULL && sb->count == SCOREBOARD_MAX_SLOTS);
    master_sb_free(&sb);
    unit_end();
}

static void test_recount(void)
{
    struct master_conf *conf = conf_one("25 inet - - n - 3 smtpd\n");
    struct master_service serv;
    struct master_child a, b, c;

    unit_begin("recount: idle counts from the board; garbage counts busy");
    master_conf = conf;
    serv_init(&serv, conf);
    unit_assert(serv.sb != NULL);
    child_on(&a, &serv, 1001);
    child_on(&b, &serv, 1002);
    child_on(&c, &serv, 1003);
    master_recount();
    unit_assert_inteq(serv.avail_proc, 3);		/* fresh children are idle */
    unit_assert(!master_service_wants_spawn(&serv));

    /* honest changes */
    put(&serv, &a, W(1001, SCOREBOARD_BUSY));
    put(&serv, &b, W(1002, SCOREBOARD_IDLE));
    master_recount();
    unit_assert_inteq(serv.avail_proc, 2);
    unit_assert(!a.avail && b.avail && c.avail);
    unit_assert_inteq(a.use_count, 1);			/* it has served */
    unit_assert_inteq(b.use_count, 1);
    unit_assert_inteq(c.use_count, 0);			/* fresh: not yet */

    /* hostile words in b's and c's slots: idle-looking, but not theirs
     * or not valid: counted busy */
    put(&serv, &b, W(4242, SCOREBOARD_IDLE));		/* a foreign pid */
    put(&serv, &c, W(1003, SCOREBOARD_FREE));		/* no state */
    master_recount();
    unit_assert_inteq(serv.avail_proc, 0);
    unit_assert(b.sb_warned && c.sb_warned);
    put(&serv, &c, 0xffffffffu);
    master_recount();
    unit_assert_inteq(serv.avail_proc, 0);
    put(&serv, &c, 0);					/* freed by a sibling */
    master_recount();
    unit_assert_inteq(serv.avail_proc, 0);
    /* every process "busy", at maxproc: no spawn beyond the limit */
    unit_assert_inteq(serv.total_proc, 3);
    unit_assert(!master_service_wants_spawn(&serv));
    unit_assert(master_stress_wants_watch(&serv));
    /* honest again: counted again */
    put(&serv, &c, W(1003, SCOREBOARD_IDLE));
    master_recount();
    unit_assert_inteq(serv.avail_proc, 1);
    unit_assert(!master_stress_wants_watch(&serv));

    /* a retired child's slot no longer counts, whatever it says */
    master_children_retire();
    unit_assert_inteq(serv.avail_proc, 0);
    unit_assert(a.sb_slot < 0 && b.sb_slot < 0);
    unit_assert(a.serv == NULL);			/* inet: uncounted */

    master_children = NULL;
    master_sb_free(&serv.sb);
    master_conf = NULL;
    master_conf_free(&conf);
    unit_end();
}

static void test_records_and_board(void)
{
    struct master_conf *conf = conf_one("cleanup unix n - n - 0 cleanup\n");
    struct master_service serv;
    struct master_child a, b;
    struct master_status st[2];

    unit_begin("records with a board: a wake-up; a child off the board follows its records");
    master_conf = conf;
    serv_init(&serv, conf);
    unit_assert(pipe(serv.status_fd) == 0);
    unit_assert(fcntl(serv.status_fd[0], F_SETFL, O_NONBLOCK) == 0);
    child_on(&a, &serv, 2001);
    child_on(&b, &serv, 2002);

    /* a is on the board: BUSY, then TAKEN (it saw no other idle... b
     * went busy meanwhile); the board wins over the record's order */
    put(&serv, &a, W(2001, SCOREBOARD_BUSY));
    put(&serv, &b, W(2002, SCOREBOARD_BUSY));
    st[0] = (struct master_status) {2001, MASTER_STAT_TAKEN};
    unit_assert(write(serv.status_fd[1], st, sizeof(st[0])) == sizeof(st[0]));
    master_status_read(&serv);
    master_recount();
    unit_assert_inteq(serv.avail_proc, 0);
    unit_assert(a.sb_slot >= 0);

    /* b's slot still FRESH when its TAKEN comes: b did not map the board,
     * so master follows b's records (else b would count idle for good) */
    put(&serv, &b, W(2002, SCOREBOARD_FRESH));
    st[0] = (struct master_status) {2002, MASTER_STAT_TAKEN};
    st[1] = (struct master_status) {2002, MASTER_STAT_AVAIL};
    unit_assert(write(serv.status_fd[1], st, sizeof(st[0])) == sizeof(st[0]));
    master_status_read(&serv);
    master_recount();
    unit_assert(b.sb_slot < 0);
    unit_assert(!b.avail);
    unit_assert_inteq(serv.avail_proc, 0);
    unit_assert(write(serv.status_fd[1], st + 1, sizeof(st[0])) == sizeof(st[0]));
    master_status_read(&serv);
    master_recount();
    unit_assert(b.avail);
    unit_assert_inteq(serv.avail_proc, 1);

    master_children = NULL;
    close(serv.status_fd[0]);
    close(serv.status_fd[1]);
    master_sb_free(&serv.sb);
    master_conf = NULL;
    master_conf_free(&conf);
    unit_end();
}

static void test_reap(void)
{
    struct master_conf *conf = conf_one("cleanup unix n - n - 2 cleanup\n");
    struct master_service serv;
    struct master_child *c = mem_zalloc(sizeof(*c));
    pid_t pid;
    int slot;

    unit_begin("reap: the slot's last word says whether it served; the slot is freed");
    master_conf = conf;
    serv_init(&serv, conf);
    if ((pid = fork()) == 0)
	_exit(0);
    unit_assert(pid > 0);
    child_on(c, &serv, pid);
    c->path = mem_strdup("cleanup");
    slot = c->sb_slot;
    put(&serv, c, W(pid, SCOREBOARD_IDLE));
    master_recount();
    unit_assert_inteq(serv.avail_proc, 1);
    unit_assert(c->use_count == 1);
    /* the child changes its word after the last recount: reaping reads it */
    put(&serv, c, W(pid, SCOREBOARD_BUSY));
    while (master_child_count() > 0) {
	usleep(1000);
	master_reap();
    }
    unit_assert_inteq(serv.total_proc, 0);
    unit_assert_inteq(serv.avail_proc, 0);
    unit_assert_inteq(atomic_load(&serv.sb->slots[slot]), 0);
    unit_assert_inteq(serv.sb->owner[slot], 0);
    unit_assert(!serv.throttled);
    master_sb_free(&serv.sb);
    master_conf = NULL;
    master_conf_free(&conf);
    unit_end();
}

int main(void)
{
    msg_init("test-master_scoreboard", MSG_TO_STDERR);
    test_slots();
    test_recount();
    test_records_and_board();
    test_reap();
    return unit_done();
}
