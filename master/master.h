/* master.h - the master supervisor's modules and their shared state.
 *
 *   main.c            options, start-up (pid lock, daemonizing with a
 *                     readiness pipe), signals, the main loop, reload, stop
 *   master_state.c    the shared state below, and the clock
 *   master_conf.c     main.cf + master.cf into a master_conf snapshot
 *   master_listen.c   listeners: inet addresses, unix sockets, fifos
 *   master_service.c  the service table: build, reload diff, wake-ups
 *   master_spawn.c    children: spawn, status records, reaping, throttling
 *   master_stress.c   stress mode: detect, log, tell the children
 *   master_scoreboard.c  each service's shared-memory scoreboard: slots
 *                     for the children, read back as untrusted input
 *
 * master never parses mail or protocol data: it reads its two
 * configuration files, owns the listeners, and counts children. */
#ifndef POSTHORN_MASTER_H
#define POSTHORN_MASTER_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

/* mail */
#include "master_proto.h"
#include "mastercf.h"
#include "scoreboard.h"

/* The main.cf values master uses, copied out of var_* (which a later
 * config_init/config_apply frees), so a failed reload keeps them. */
struct master_conf {
    char *config_dir;
    char *queue_directory;
    char *daemon_directory;
    char *data_directory;
    char *mail_owner;
    char *setgid_group;
    char *inet_interfaces;
    char *inet_protocols;
    char *import_environment;
    long default_process_limit;
    long service_throttle_time;
    long master_stop_timeout;
    bool owner_known;		/* mail_owner looked up */
    uid_t owner_uid;
    gid_t owner_gid;
    struct mastercf *cf;	/* master.cf */
    int main_cf_fd;		/* sealed memfd: the main.cf text that validated */
};

/* One listener of a service. */
struct master_listener {
    int fd;
    int family;			/* AF_INET, AF_INET6, AF_UNIX, 0 = fifo */
    char *addr;			/* "127.0.0.1:25", "[::1]:25" or a path */
};

/* A service's scoreboard (master_scoreboard.c): the shared slots, and
 * master's own record of whose slot is whose (never read from the
 * shared memory). */
struct master_sb {
    int fd;			/* the memfd each child gets */
    scoreboard_slot *slots;	/* shared with the children: untrusted */
    size_t count;
    pid_t *owner;		/* owner[i]: the child in slot i, 0 = free */
};

/* One master.cf service, alive across reloads while its listener stays. */
struct master_service {
    const struct mastercf_entry *ent;	/* points into master_conf.cf */
    char *name;			/* ent->service, owned copy */
    enum mastercf_type type;
    char *listen_key;		/* what the listeners are; same key = keep */
    struct master_listener listen[MASTER_LISTEN_MAX];
    int listen_count;
    bool listen_pending;	/* open failed at reload; retried */
    long long listen_retry_at;	/* ms */
    long long listen_warned_at;	/* ms */
    int status_fd[2];		/* status pipe: [0] master reads, [1] children */
    int total_proc;		/* children that belong to this service */
    int avail_proc;		/* of which idle and not retiring */
    struct master_sb *sb;	/* NULL: status records only */
    bool used;			/* spawned at least once (wakeup "N?") */
    bool throttled;
    long long throttle_until;	/* ms */
    long long next_wakeup;	/* ms, 0 = none */
    bool stress;		/* in stress mode (master_stress.c) */
    long long stress_calm_since;	/* ms since an idle child, 0 = none */
    struct master_service *next;
};

/* One child process. */
struct master_child {
    pid_t pid;
    struct master_service *serv;	/* NULL once the service is gone */
    char *path;			/* program, for log lines */
    bool avail;			/* idle (counted in serv->avail_proc) */
    bool retired;		/* got SIGHUP on reload: exits when idle */
    long use_count;		/* TAKEN records seen (1 if only the
				 * scoreboard said it has served) */
    int sb_slot;		/* in serv->sb, or -1 */
    bool sb_warned;		/* logged a bad slot once */
    struct master_child *next;
};

/* master_state.c */
extern bool master_foreground;
/* master_stderr_is_journal - stderr is the systemd journal */
bool master_stderr_is_journal(void);
extern struct master_conf *master_conf;
extern struct master_service *master_services;
extern struct master_child *master_children;
extern bool master_stopping;
long long master_now_ms(void);

/* master_conf.c */
struct master_conf *master_conf_load(const char *config_dir, const char **error_r);
void master_conf_free(struct master_conf **confp);
/* master_conf_check - every service's listener addresses resolve */
int master_conf_check(const struct master_conf *conf, const char **error_r);

/* master_listen.c */
/* master_listen_key - describe the listeners of an entry (for reload) */
int master_listen_key(const struct master_conf *conf, const struct mastercf_entry *ent,
		      char **key_r, const char **error_r);
/* master_listen_open - open every listener of serv */
int master_listen_open(const struct master_conf *conf, struct master_service *serv,
		       const char **error_r);
/* master_listen_close - close (and for unix/fifo unlink) the listeners */
void master_listen_close(struct master_service *serv);
/* master_wakeup_send - write a wake-up request to a unix/fifo service */
void master_wakeup_send(const struct master_conf *conf, struct master_service *serv);

/* master_service.c */
/* master_services_start - open every service of conf (fatal on error) */
void master_services_start(struct master_conf *conf);
/* master_services_reload - switch to newconf; consumes it; -1 if refused */
int master_services_reload(struct master_conf *newconf);
/* master_services_stop - close every listener and status pipe */
void master_services_stop(void);
/* master_service_timers - wake-ups, throttle ends, listener retries;
 * returns ms until the next timer (or -1) */
int master_service_timers(void);
/* master_service_wants_spawn - no idle child, limit not reached */
bool master_service_wants_spawn(const struct master_service *serv);

/* master_spawn.c */
void master_spawn(struct master_service *serv);
void master_status_read(struct master_service *serv);
void master_status_drain_all(void);
void master_reap(void);
/* master_children_signal - send sig to every child (retire them on HUP) */
void master_children_retire(void);
void master_children_kill(int sig);
int master_child_count(void);
void master_throttle(struct master_service *serv);
void master_detach_children(struct master_service *serv);

/* master_scoreboard.c */
/* master_sb_new - a scoreboard for maxproc children (0: unlimited);
 * NULL (logged) if none could be made: records only */
struct master_sb *master_sb_new(const char *service, long maxproc);
void master_sb_free(struct master_sb **sbp);
/* master_sb_reserve - a free slot for the next child (cleared), or -1 */
int master_sb_reserve(struct master_sb *sb);
/* master_sb_assign - the slot is pid's: FRESH, unless pid wrote it first */
void master_sb_assign(struct master_sb *sb, int slot, pid_t pid);
/* master_sb_release - the slot is free again (seq_cst store of 0) */
void master_sb_release(struct master_sb *sb, int slot);
/* master_sb_state - SCOREBOARD_FRESH/IDLE/BUSY of the slot's owner, or
 * -1 when the word is not a valid word of that owner; *word_r the word */
int master_sb_state(const struct master_sb *sb, int slot, uint32_t *word_r);

/* master_spawn.c: the scoreboard's view of the children */
/* master_recount - every service's idle count from its scoreboard */
void master_recount(void);
/* master_recount_service - serv's idle count from its scoreboard */
void master_recount_service(struct master_service *serv);

/* master_stress.c */
/* master_stress_wants_watch - full, not in stress: watch the listeners */
bool master_stress_wants_watch(const struct master_service *serv);
/* master_stress_on - listener i readable while full: stress mode on */
void master_stress_on(struct master_service *serv, int i);
/* master_stress_avail - the idle count of serv changed */
void master_stress_avail(struct master_service *serv);
/* master_stress_timer - end stress after the calm period; ms due or -1 */
long long master_stress_timer(struct master_service *serv, long long now);

#endif
