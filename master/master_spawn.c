/* master_spawn.c - child processes: spawn, status, reap, throttle.
 *
 * A child is started with fork+exec (a fresh address space each time),
 * a clean environment, its listeners and the service's status pipe at
 * the fixed descriptors of master_proto.h, and every other descriptor
 * closed. master counts a new child as idle until it reports TAKEN, or,
 * with a scoreboard (master_scoreboard.c), until its slot says BUSY:
 * master_recount reads every child's slot on each wake-up of master, and
 * the children write a status record only when their service's idle
 * count reaches or leaves zero, which is when master has to act.
 *
 * A child that ends abnormally (non-zero exit, signal) before it ever
 * took a connection or trigger means the command cannot start: the
 * service is throttled for service_throttle_time (no spawns, listeners
 * not watched; clients wait in the listen queue), instead of being
 * restarted in a tight loop. A child that crashes after it served is
 * simply replaced on demand. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "strv.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "mastercf.h"
#include "scoreboard.h"

/* master */
#include "master.h"

/* the longest environment string or command path given to a child */
#define MASTER_ENV_MAX	8192

/* env_item - one import_environment element: NAME or NAME=value */
static void env_item(const char *item, void *ctx)
{
    struct strv *env = ctx;
    const char *value;

    if (strchr(item, '=') != NULL) {
	strv_add(env, item);
	return;
    }
    if (strcmp(item, MASTER_ENV_CONFIG_DIR) == 0 || strcmp(item, MASTER_ENV_LOG_STDERR) == 0
	|| strcmp(item, MASTER_ENV_CONFIG_FD) == 0 || strcmp(item, MASTER_ENV_SCOREBOARD) == 0)
	return;					/* master sets these */
    /* a NAME=value longer than MASTER_ENV_MAX is left out, as before */
    if ((value = getenv(item)) != NULL && strlen(item) + 1 + strlen(value) < MASTER_ENV_MAX)
	strv_addf(env, "%s=%s", item, value);
}

/* build_env - the children's environment (slot: in serv->sb, or -1) */
static void build_env(const struct master_service *serv, int slot, struct strv *env)
{
    config_split(master_conf->import_environment, env_item, env);
    if (strlen(MASTER_ENV_CONFIG_DIR) + 1 + strlen(master_conf->config_dir) >= MASTER_ENV_MAX)
	msg_fatal("config_directory too long");
    strv_addf(env, "%s=%s", MASTER_ENV_CONFIG_DIR, master_conf->config_dir);
    strv_addf(env, "%s=%d", MASTER_ENV_CONFIG_FD, MASTER_LISTEN_FD + serv->listen_count);
    if (slot >= 0)
	strv_addf(env, "%s=%d:%d", MASTER_ENV_SCOREBOARD, MASTER_LISTEN_FD + serv->listen_count + 1,
		  slot);
    /* with -F the children log to stderr too, unless that is the journal,
     * which gets their syslog lines already */
    if (master_foreground && !master_stderr_is_journal())
	strv_add(env, MASTER_ENV_LOG_STDERR "=1");
}

/* build_argv - command path, skeleton options, then master.cf args */
static void build_argv(const struct master_service *serv, struct strv *argv)
{
    const struct mastercf_entry *ent = serv->ent;

    if (ent->command[0] == '/')
	strv_add(argv, ent->command);
    else if (strlen(master_conf->daemon_directory) + 1 + strlen(ent->command) < MASTER_ENV_MAX)
	strv_addf(argv, "%s/%s", master_conf->daemon_directory, ent->command);
    else
	msg_fatal("command path too long: %s", ent->command);
    strv_add(argv, "-c");
    strv_add(argv, master_conf->config_dir);
    strv_add(argv, "-n");
    strv_add(argv, ent->service);
    strv_add(argv, "-t");
    strv_add(argv, mastercf_type_name(ent->type));
    strv_add(argv, "-s");
    strv_addf(argv, "%d", serv->listen_count);
    if (ent->unpriv && geteuid() == 0)
	strv_add(argv, "-u");
    if (ent->chroot)
	strv_add(argv, "-C");
    if (serv->stress) {
	/* before the master.cf arguments, which may still override it */
	strv_add(argv, "-o");
	strv_add(argv, "stress=yes");
    }
    for (size_t i = 1; i < ent->argv.count; i++)
	strv_add(argv, ent->argv.items[i]);
}

/* child_exec - in the child: descriptors, signals, exec; never returns.
 * If execve fails, errno goes back to master through errpipe (which is
 * close-on-exec, so a successful exec just closes it). */
static _Noreturn void child_exec(struct master_service *serv, bool with_sb, int errpipe,
				 char **argv, char **envp)
{
    int n = serv->listen_count;
    int high = MASTER_LISTEN_FD + n + 16;
    int last = MASTER_LISTEN_FD + n + (with_sb ? 1 : 0);	/* last fd passed */
    int src[MASTER_LISTEN_MAX + 1];
    int nullfd, errfd, cfgfd, sbfd = -1, err;
    sigset_t none;

    /* Default signal handling, nothing blocked. */
    for (int sig = 1; sig < NSIG; sig++)
	if (sig != SIGKILL && sig != SIGSTOP)
	    signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Move the sources out of the way, then into place. */
    src[0] = fcntl(serv->status_fd[1], F_DUPFD_CLOEXEC, high);
    for (int i = 0; i < n; i++)
	src[i + 1] = fcntl(serv->listen[i].fd, F_DUPFD_CLOEXEC, high);
    errfd = fcntl(errpipe, F_DUPFD_CLOEXEC, high);
    cfgfd = fcntl(master_conf->main_cf_fd, F_DUPFD_CLOEXEC, high);
    if (with_sb && (sbfd = fcntl(serv->sb->fd, F_DUPFD_CLOEXEC, high)) < 0)
	_exit(126);
    for (int i = 0; i <= n; i++)
	if (src[i] < 0)
	    _exit(126);
    if (errfd < 0 || cfgfd < 0 || (nullfd = open("/dev/null", O_RDWR)) < 0)
	_exit(126);
    if (dup2(nullfd, STDIN_FILENO) < 0 || dup2(nullfd, STDOUT_FILENO) < 0)
	_exit(126);
    if (nullfd > STDERR_FILENO)
	close(nullfd);
    if (dup2(src[0], MASTER_STATUS_FD) < 0)
	_exit(126);
    for (int i = 0; i < n; i++)
	if (dup2(src[i + 1], MASTER_LISTEN_FD + i) < 0)
	    _exit(126);
    if (dup2(cfgfd, MASTER_LISTEN_FD + n) < 0)
	_exit(126);
    if (with_sb && dup2(sbfd, MASTER_LISTEN_FD + n + 1) < 0)
	_exit(126);
    /* Everything else goes (master's descriptors are close-on-exec too);
     * the exec-error pipe closes itself at exec. */
    (void) close_range((unsigned) (last + 1), (unsigned) errfd - 1, 0);
    (void) close_range((unsigned) errfd + 1, ~0U, 0);
    execve(argv[0], argv, envp);
    err = errno;
    (void) !write(errfd, &err, sizeof(err));
    _exit(127);
}

/* master_spawn - start one child for serv */
void master_spawn(struct master_service *serv)
{
    struct strv argv = STRV_INIT, env = STRV_INIT;
    struct master_child *child;
    int errpipe[2];
    int slot = master_sb_reserve(serv->sb);
    pid_t pid;

    build_argv(serv, &argv);
    build_env(serv, slot, &env);
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
	msg_warn("pipe: %m -- throttling service %s", serv->name);
	master_throttle(serv);
	strv_fini(&argv);
	strv_fini(&env);
	return;
    }
    switch (pid = fork()) {
    case -1:
	msg_warn("fork: %m -- throttling service %s", serv->name);
	master_throttle(serv);
	break;
    case 0:
	child_exec(serv, slot >= 0, errpipe[1], strv_array(&argv), strv_array(&env));
    default:
	/* The slot says FRESH (idle) before anything can read it. A pid
	 * that does not fit a slot word (never on Linux: pid_max is at most
	 * 2^22) leaves the child to its status records: its skeleton checks
	 * the same. */
	if (slot >= 0 && scoreboard_word(pid, SCOREBOARD_FRESH) != 0)
	    master_sb_assign(serv->sb, slot, pid);
	else
	    slot = -1;
	/* Wait for the exec (EOF) or its errno; exec is quick. */
	close(errpipe[1]);
	errpipe[1] = -1;
	for (;;) {
	    int err;
	    ssize_t got = read(errpipe[0], &err, sizeof(err));

	    if (got < 0 && errno == EINTR)
		continue;
	    if (got == (ssize_t) sizeof(err))
		msg_warn("exec %s: %s", argv.items[0], strerror(err));
	    break;
	}
	child = mem_zalloc(sizeof(*child));
	child->pid = pid;
	child->serv = serv;
	child->path = mem_strdup(argv.items[0]);
	child->avail = true;
	child->sb_slot = slot;
	child->next = master_children;
	master_children = child;
	serv->total_proc++;
	serv->avail_proc++;
	master_stress_avail(serv);
	serv->used = true;
	if (msg_verbose)
	    msg_info("spawn: service %s pid %ld %s", serv->name, (long) pid, argv.items[0]);
	break;
    }
    close(errpipe[0]);
    if (errpipe[1] >= 0)
	close(errpipe[1]);
    strv_fini(&argv);
    strv_fini(&env);
}

/* child_find - the child with this pid */
static struct master_child **child_find(pid_t pid)
{
    for (struct master_child **cp = &master_children; *cp; cp = &(*cp)->next)
	if ((*cp)->pid == pid)
	    return cp;
    return NULL;
}

/* child_set_avail - keep serv->avail_proc in step */
static void child_set_avail(struct master_child *child, bool avail)
{
    if (child->avail == avail)
	return;
    child->avail = avail;
    if (child->serv) {
	child->serv->avail_proc += avail ? 1 : -1;
	master_stress_avail(child->serv);
    }
}

/* child_sb_leave - the child reports by status records only from now on */
static void child_sb_leave(struct master_child *child)
{
    if (child->sb_slot < 0)
	return;
    if (child->serv)
	master_sb_release(child->serv->sb, child->sb_slot);
    child->sb_slot = -1;
}

/* child_sb_check_taken - a TAKEN record from a child with a slot. A child
 * on the scoreboard stores BUSY before it writes TAKEN, and nobody but
 * master writes FRESH: a slot still FRESH means the child did not map
 * the board (out of memory, say) and reports by records only, which
 * master then follows for it; else it would count that child idle for
 * good. */
static void child_sb_check_taken(struct master_child *child)
{
    uint32_t word;

    if (child->sb_slot >= 0 && child->serv
	&& master_sb_state(child->serv->sb, child->sb_slot, &word) == SCOREBOARD_FRESH) {
	if (msg_verbose)
	    msg_info("service %s: pid %ld is not on the scoreboard -- status records only",
		     child->serv->name, (long) child->pid);
	child_sb_leave(child);
    }
}

/* child_sb_sync - a child with a slot: idle or busy, and whether it has
 * served, as its slot says. A word that is not the child's own valid word
 * (garbage from a compromised sibling) counts as busy: master may then
 * start a process more than needed (never beyond maxproc), but never
 * counts on one that is not there. */
static void child_sb_sync(struct master_child *child)
{
    uint32_t word;
    int state;

    if (child->sb_slot < 0 || child->serv == NULL || child->serv->sb == NULL || child->retired)
	return;
    state = master_sb_state(child->serv->sb, child->sb_slot, &word);
    if (state < 0) {
	if (!child->sb_warned)
	    msg_warn("service %s: pid %ld: bad scoreboard word 0x%08lx -- counted busy",
		     child->serv->name, (long) child->pid, (unsigned long) word);
	child->sb_warned = true;
	child_set_avail(child, false);
	return;
    }
    if (state != SCOREBOARD_FRESH && child->use_count == 0)
	child->use_count = 1;			/* it has taken work */
    child_set_avail(child, state != SCOREBOARD_BUSY);
}

/* master_recount_service - serv's idle count from its scoreboard */
void master_recount_service(struct master_service *serv)
{
    if (serv->sb == NULL)
	return;
    for (struct master_child *child = master_children; child; child = child->next)
	if (child->serv == serv)
	    child_sb_sync(child);
}

/* master_recount - every service's idle count from its scoreboard: on
 * each wake-up, before master decides to watch listeners, to spawn, or
 * to enter or leave stress mode. The children write a record only when
 * their service's idle count reaches or leaves zero, and may miss the
 * latter (scoreboard.c): between records the counts come from here. */
void master_recount(void)
{
    for (struct master_child *child = master_children; child; child = child->next)
	child_sb_sync(child);
}

/* master_status_read - status records from the children of serv (the
 * pipe is non-blocking) */
void master_status_read(struct master_service *serv)
{
    struct master_status st[64];
    ssize_t n;

    for (;;) {
	n = read(serv->status_fd[0], st, sizeof(st));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n <= 0)
	    return;
	/* Records are written whole and are smaller than PIPE_BUF. */
	for (size_t i = 0; i < (size_t) n / sizeof(st[0]); i++) {
	    struct master_child **cp = child_find((pid_t) st[i].pid);
	    struct master_child *child;

	    if (cp == NULL || (child = *cp)->serv != serv) {
		if (msg_verbose)
		    msg_info("service %s: status from unknown pid %ld ignored", serv->name,
			     (long) st[i].pid);
		continue;
	    }
	    if (child->retired)
		continue;
	    switch (st[i].status) {
	    case MASTER_STAT_TAKEN:
		child->use_count++;
		child_set_avail(child, false);
		child_sb_check_taken(child);
		break;
	    case MASTER_STAT_AVAIL:
		child_set_avail(child, true);
		break;
	    default:
		msg_warn("service %s: pid %ld sent bad status %ld", serv->name,
			 (long) st[i].pid, (long) st[i].status);
		break;
	    }
	}
	if ((size_t) n % sizeof(st[0]) != 0)
	    msg_warn("service %s: partial status record ignored", serv->name);
	/* A read that did not fill the buffer emptied the pipe: no second
	 * read(2) just to see EAGAIN (what comes later wakes poll again). */
	if ((size_t) n < sizeof(st))
	    return;
    }
}

/* master_status_drain_all - read every status pipe (before reaping) */
void master_status_drain_all(void)
{
    for (struct master_service *serv = master_services; serv; serv = serv->next)
	master_status_read(serv);
}

/* master_throttle - no spawns for service_throttle_time */
void master_throttle(struct master_service *serv)
{
    serv->throttled = true;
    serv->throttle_until = master_now_ms() + master_conf->service_throttle_time * 1000LL;
}

/* master_reap - collect every child that ended */
void master_reap(void)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
	struct master_child **cp = child_find(pid);
	struct master_child *child;
	bool abnormal;

	if (cp == NULL)
	    continue;
	child = *cp;
	*cp = child->next;
	abnormal = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (master_stopping && abnormal && WIFSIGNALED(status)) {
	    /* SIGTERM from us, or SIGINT from the terminal of master -F */
	    if (msg_verbose)
		msg_info("process %s pid %ld killed by signal %d while stopping",
			 child->path, (long) pid, WTERMSIG(status));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
	    msg_warn("process %s pid %ld exit status %d", child->path, (long) pid,
		     WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
	    msg_warn("process %s pid %ld killed by signal %d", child->path, (long) pid,
		     WTERMSIG(status));
	else if (msg_verbose)
	    msg_info("process %s pid %ld exited", child->path, (long) pid);
	if (child->serv) {
	    struct master_service *serv = child->serv;

	    /* Its last word (has it served?), then free the slot. */
	    child_sb_sync(child);
	    child_sb_leave(child);
	    child_set_avail(child, false);
	    serv->total_proc--;
	    master_stress_avail(serv);
	    if (abnormal && child->use_count == 0 && !child->retired && !master_stopping
		&& !serv->throttled) {
		msg_warn("%s: bad command startup -- throttling", serv->name);
		master_throttle(serv);
	    }
	    /* A wake-up service (qmgr, pickup) that died abnormally left its
	     * work behind: wake it at once instead of at the next period or
	     * the next message. A throttled service still waits its turn: the
	     * request stays in the fifo until a child may be started. */
	    if (abnormal && !child->retired && !master_stopping
		&& serv->ent->wakeup > 0 && serv->type != MASTERCF_INET) {
		msg_info("service %s: waking a replacement for pid %ld", serv->name,
			 (long) pid);
		serv->next_wakeup = master_now_ms();
	    }
	}
	mem_free(&child->path);
	mem_free(&child);
    }
}

/* master_children_retire - reload: SIGHUP every child; none counts as
 * idle. A retiring child of an inet service also stops counting toward
 * its service's process limit: it closed its listeners and only finishes
 * the clients it holds, which for smtp-front and the login processes
 * (maxproc 1, each holding many clients for minutes) would otherwise
 * leave the port without a process that accepts until the last of them
 * left. unix and fifo services keep counting their retiring children:
 * two qmgr, auth or client-limits processes must never run at once. */
void master_children_retire(void)
{
    for (struct master_child *child = master_children; child; child = child->next) {
	if (child->retired)
	    continue;
	child_sb_sync(child);			/* has it served? */
	child_sb_leave(child);			/* the board is replaced */
	child_set_avail(child, false);
	child->retired = true;
	if (child->serv && child->serv->type == MASTERCF_INET) {
	    child->serv->total_proc--;
	    master_stress_avail(child->serv);
	    child->serv = NULL;
	}
	if (kill(child->pid, SIGHUP) < 0 && errno != ESRCH)
	    msg_warn("kill -HUP %ld: %m", (long) child->pid);
    }
}

/* master_children_kill - send sig to every child */
void master_children_kill(int sig)
{
    for (struct master_child *child = master_children; child; child = child->next)
	if (kill(child->pid, sig) < 0 && errno != ESRCH)
	    msg_warn("kill -%d %ld: %m", sig, (long) child->pid);
}

/* master_child_count - children not yet reaped */
int master_child_count(void)
{
    int n = 0;

    for (struct master_child *child = master_children; child; child = child->next)
	n++;
    return n;
}

/* master_detach_children - the service goes away; its children stay
 * until they exit, counted nowhere */
void master_detach_children(struct master_service *serv)
{
    for (struct master_child *child = master_children; child; child = child->next) {
	if (child->serv == serv) {
	    child_sb_leave(child);
	    child_set_avail(child, false);
	    serv->total_proc--;
	    child->serv = NULL;
	}
    }
}
