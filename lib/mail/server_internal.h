/* server_internal.h - what the parts of the daemon skeleton share.
 *
 * Not for daemons: they include server.h only. The skeleton is cut along
 * its seams, and the calls go one way (no circle between the files):
 *   server_main.c     start-up: options, configuration, logging, the
 *                     privilege drop, descriptors, signal handlers; then
 *                     server_main() calls the loop of the daemon's kind
 *   server_single.c   SINGLE  }
 *   server_multi.c    MULTI   } one loop each (never returns)
 *   server_trigger.c  TRIGGER }
 *   server_frame.c    MULTI's request framings
 *   server_pass.c     SINGLE with -t pass: taking a handed-over client
 *   server.c          the common part they all use at run time: state,
 *                     status to master, watchdog, exit conditions, -S
 *                     relay, the event-loop helpers of MULTI and TRIGGER
 *
 * Names: srv_* is skeleton-internal state and helpers. */
#ifndef POSTHORN_SERVER_INTERNAL_H
#define POSTHORN_SERVER_INTERNAL_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* base */
#include "stream.h"

/* mail */
#include "scoreboard.h"
#include "server.h"

/* State of this process (server.c; server_main.c sets it up). */
extern const struct server_spec *srv_spec;
#define SRV_SERVICE_NAME_SIZE	256
#define SRV_SERVICE_TYPE_SIZE	16
extern char srv_config_dir[PATH_MAX];
extern char srv_service_name[SRV_SERVICE_NAME_SIZE];	/* -n */
extern char srv_service_type[SRV_SERVICE_TYPE_SIZE];	/* -t */
extern int srv_status_fd;		/* MASTER_STATUS_FD, or -1 */
extern pid_t srv_master_pid;		/* 0: not run by master */
extern pid_t srv_pid;			/* refreshed in a forked child */
extern int srv_listen_count;		/* listeners at MASTER_LISTEN_FD.. */
extern bool srv_stdin;			/* -S */
extern bool srv_chroot;			/* -C */
extern long srv_use_count;		/* connections or triggers taken */
extern volatile sig_atomic_t srv_exit_requested;	/* SIGHUP, reload */
extern volatile sig_atomic_t srv_listeners_closed;
extern volatile sig_atomic_t srv_stress;	/* server_stress() */
void srv_stress_started(void);		/* started with stress=yes */
void srv_stress_apply(void);		/* after the signal: parameters */
void srv_stress_unwatch(const struct stream *s);	/* s goes away */
extern int srv_wake_pipe[2];		/* self-pipe the signal handlers write */

/* Time, monotonic. */
time_t srv_now_sec(void);
long long srv_now_ms(void);

/* The watchdog (server_watchdog_reset in server.h restarts it). */
void srv_watch_wait(void);		/* waiting for work: not stuck */
void srv_watch_off(void);
void srv_watchdog(int sig);		/* the SIGALRM handler */
void srv_atfork_child(void);		/* pthread_atfork: new pid, no alarm */
void srv_wake(void);			/* write the self-pipe (signal-safe) */

/* Life cycle. */
void srv_notify(int status);		/* MASTER_STAT_TAKEN / _AVAIL */
void srv_notify_used(void);		/* TAKEN + AVAIL in one write */
/* srv_scoreboard_attach - our slot in the service's scoreboard */
void srv_scoreboard_attach(scoreboard_slot *slots, size_t count, size_t self);
_Noreturn void srv_done(void);		/* on_exit, exit(0) */
bool srv_limit_reached(void);		/* max_use served */
bool srv_tables_changed(void);		/* a table was rebuilt: finish */
bool srv_master_gone(void);
void srv_drain_wake(void);		/* empty the self-pipe */
void srv_close_listeners(void);		/* async-signal-safe, once */

/* Clients. */
struct stream *srv_open_client(int fd);	/* deadline: ipc_timeout */
int srv_stdio_fd(void);			/* -S: one fd for stdin+stdout */
void srv_stdio_end(void);		/* -S: wait for the relay */

/* -t pass (server_pass.c): take the client handed over on conn (closed
 * here); a stream on it with the front's input preloaded and
 * server_pass_info() set, or NULL (logged). srv_pass_done after the
 * client is served. */
struct stream *srv_pass_take(int conn);
void srv_pass_done(void);

/* Event-loop helpers (MULTI, TRIGGER). */
extern bool srv_idle_expired;		/* max_idle passed without work */
void srv_idle_arm(void);
void srv_idle_disarm(void);
void srv_loop_once(void);		/* one step, watchdog-bounded */
void srv_wake_cb(int fd, void *ctx);	/* event callback: the self-pipe */
void srv_stop_listening(void);		/* take no new clients */

/* MULTI framing (server_frame.c): the length of the first whole request
 * in buf, 0 if there is none yet. */
size_t srv_frame_length(int framing, const char *buf, size_t len);

/* The loops of each kind; none returns. */
_Noreturn void srv_single_loop(void);
_Noreturn void srv_single_stdin(void);
_Noreturn void srv_multi_loop(void);
_Noreturn void srv_multi_stdin(void);
_Noreturn void srv_trigger_loop(void);
_Noreturn void srv_trigger_stdin(void);

#endif
