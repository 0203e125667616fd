/* server.h - the skeleton every posthorn daemon is built on.
 *
 * A daemon's main() fills in a struct server_spec and calls
 *     return server_main(argc, argv, &spec);
 * The skeleton then owns everything that is not protocol work:
 *
 *  1. options (see below); arguments after them go to pre_init/post_init
 *  2. config_init, config_load(config_dir), -o overrides, config_apply
 *  3. logging: "$syslog_name/<spec.name>", to maillog_file (opened here,
 *     before the privilege drop) or syslog, plus stderr if the environment
 *     has POSTHORN_LOG_STDERR=1 (master -F), in -S mode, or when not
 *     started by master (no MASTER_STATUS_FD: run by hand)
 *  4. chdir to queue_directory
 *  5. pre_init (still privileged: open tables, keys, sockets)
 *  6. privilege drop: chroot to queue_directory (-C), then setgroups,
 *     setgid, setuid to mail_owner (-u), checked (privs.h). This happens
 *     BEFORE any byte is read from a peer.
 *  7. post_init (unprivileged)
 *  8. the loop: wait on the listeners inherited from master (master_proto.h),
 *     take work, tell master "busy"/"idle", serve; exit after max_use
 *     connections/triggers or max_idle idle seconds; a watchdog alarm of
 *     daemon_timeout seconds kills a process that is stuck in one piece of
 *     work (waiting for work does not count; in MULTI and TRIGGER one
 *     event-loop callback, the daemon's own included, may run for at least
 *     daemon_timeout / 2).
 *     Before every accept (and trigger read) the skeleton asks
 *     table_changed(): if a lookup table the process opened was rebuilt
 *     since, it logs "table NAME has changed -- restarting", takes no new
 *     work, finishes what it has and exits; master starts a fresh process
 *     that opens the new file. So `posthorn map`/`newaliases` take effect
 *     without a reload.
 *  9. on_exit, then exit(0).
 *
 * Options:
 *   -c dir      configuration directory (else $POSTHORN_CONFIG_DIR, else
 *               the compiled-in default)
 *   -n name     service name (master.cf column 1), for logging
 *   -t type     service type: inet, unix, fifo or pass (pass_proto.h:
 *               SINGLE only; each connection on the listener hands over
 *               one client socket, which single_service then serves)
 *   -s count    number of listeners at MASTER_LISTEN_FD..
 *   -o n=v      override a main.cf parameter (repeatable)
 *   -u          drop privileges to mail_owner (when root)
 *   -C          chroot to queue_directory (skipped with a warning when not
 *               root)
 *   -v          more verbose logging (repeatable)
 *   -S          serve ONE client on stdin/stdout and exit (SINGLE, MULTI);
 *               TRIGGER reads stdin to EOF and calls the trigger once.
 *               For scripted tests; logging goes to stderr as well.
 *
 * Kinds:
 *   SERVER_SINGLE   one client per process at a time: accept, call
 *                   single_service with a struct stream on the connection,
 *                   close (smtpd, pop3d, imapd)
 *   SERVER_MULTI    many clients per process, event driven: multi_connect
 *                   for a new client, multi_input whenever the client has
 *                   input (or buffered data), multi_disconnect at the end
 *                   (qmgr, auth)
 *   SERVER_TRIGGER  wake-up requests on a fifo or a unix socket: the bytes
 *                   of one socket connection (at most SERVER_TRIGGER_MAX),
 *                   or of one fifo read (at most SERVER_FIFO_READ_MAX:
 *                   many senders' requests, each whole) are passed to
 *                   trigger (pickup, qmgr)
 *
 * Signals: SIGTERM exits at once (without on_exit); SIGHUP finishes the
 * client at hand and exits (master sends it on reload); SIGPIPE is
 * ignored, so a vanished peer is an ordinary write error;
 * MASTER_STRESS_SIGNAL (SIGUSR2) puts the process in stress mode
 * (server_stress). Blocking calls may see EINTR from these.
 *
 * DIAGNOSTICS: configuration and set-up problems are msg_fatal (exit 1;
 * master throttles a service whose processes die before serving
 * anyone); misuse of this interface is msg_panic. */
#ifndef POSTHORN_SERVER_H
#define POSTHORN_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "stream.h"

enum server_kind {
    SERVER_SINGLE = 1,
    SERVER_MULTI,
    SERVER_TRIGGER,
};

/* spec.flags */
#define SERVER_FLAG_NO_IDLE_EXIT	(1 << 0)	/* ignore max_idle (qmgr) */
#define SERVER_FLAG_NO_MAX_USE		(1 << 1)	/* ignore max_use */

/* spec.multi_framing: see struct server_spec */
enum server_framing {
    SERVER_FRAME_NONE = 0,	/* no framing: multi_input at any input */
    SERVER_FRAME_LINE,		/* a request is one line, ending in "\n" */
    SERVER_FRAME_IPC,		/* a request is one IPC message (ipc.h) */
};
#define SERVER_FRAME_MAX	((size_t) 1 << 20)	/* bytes the skeleton
					 * holds for one unfinished request */

#define SERVER_TRIGGER_MAX	1024	/* bytes per trigger request */
#define SERVER_IDLE_HOOK_MS	1000	/* idle time before single_idle */
#define SERVER_RECHECK_MS	1000	/* SINGLE: an idle process looks for a
					 * waiting connection this often (one
					 * whose woken process died first) */
#define SERVER_ACCEPT_PAUSE_MS	250	/* SINGLE: pause after a failed accept */
#define SERVER_ACCEPT_ERRORS_MAX 10	/* SINGLE: failed accepts in a row,
					 * then the process exits */
#define SERVER_FIFO_READ_MAX	65536	/* bytes per fifo read: Linux's
					 * default pipe capacity, so that a
					 * read this full means the fifo was
					 * (nearly) full and may have refused
					 * a sender */

struct server_spec {
    enum server_kind kind;
    const char *name;		/* program name: "smtpd"; logged as
				 * "$syslog_name/smtpd" */
    unsigned flags;		/* SERVER_FLAG_* */
    const long *max_use;	/* NULL: max_use; else the parameter read
				 * in its place (login_max_use) */

    /* Called with the daemon's own arguments (those after the options). */
    void (*pre_init)(int argc, char **argv);	/* before the privilege drop */
    void (*post_init)(int argc, char **argv);	/* after it */
    void (*on_exit)(void);	/* before a normal exit */
    void (*on_terminate)(void);	/* in the SIGTERM handler, before _exit:
				 * async-signal-safe calls only */

    /* SERVER_SINGLE: serve one client. The stream is closed afterwards;
     * the callback must not close it. Its timeout is preset to
     * ipc_timeout; the daemon sets its own. */
    void (*single_service)(struct stream *client);
    /* SERVER_SINGLE, optional: called once when the process has waited
     * SERVER_IDLE_HOOK_MS for its next client, to let go of what it kept
     * for a quick successor (smtpd: its cleanup connection) */
    void (*single_idle)(void);

    /* SERVER_MULTI: multi_connect returns the client's context (may be
     * NULL); multi_input is called when the client has input, and again
     * while the stream holds buffered input; it returns false to have the
     * client disconnected. multi_disconnect is called once per client
     * (after EOF, an error, a false return, client_timeout or exit); the
     * skeleton closes the stream after it. */
    void *(*multi_connect)(struct stream *client);
    bool (*multi_input)(struct stream *client, void *ctx);
    void (*multi_disconnect)(struct stream *client, void *ctx);
    /* SERVER_MULTI, optional: true while the daemon owes the client an
     * answer or is in the middle of an exchange with it (auth: a delayed
     * failure answer, a SASL exchange). A daemon that gives it has, when
     * the process must exit (reload, a table changed, max_use), the
     * clients that are idle between requests (nothing buffered, not
     * busy) closed at once instead of served to their end (without it,
     * the process waits for every client to leave); a client that sent a request the
     * process had not read yet sees EOF before any reply byte, and may
     * safely send it again to a fresh process (auth_async.h does). */
    bool (*multi_busy)(struct stream *client, void *ctx);
    /* SERVER_MULTI, instead of multi_connect/multi_input: the daemon
     * takes each accepted descriptor and runs the client itself on the
     * event loop (conn.h: the login processes). It calls
     * server_multi_client_end() when such a client is gone, so that the
     * skeleton knows when the process is idle or may exit; at a reload
     * or max_use the process stops accepting and exits once the last
     * one ended. */
    void (*multi_accept)(int fd);
    /* seconds a MULTI client may stay silent: 0 = ipc_timeout, <0 = forever.
     * With a framing (below) it is a read deadline: a client that has
     * not completed a request this long after its previous one (or its
     * connect) is disconnected, however slowly it dribbles bytes. */
    long client_timeout;
    /* SERVER_MULTI: what one request is (enum server_framing). With a
     * framing the skeleton reads a client's bytes without blocking and
     * calls multi_input only once a whole request is there (or the client
     * closed, or SERVER_FRAME_MAX bytes came without one), so the
     * daemon's reads of that request never wait: a slow or silent client
     * cannot stall the others. Each stream read hands out at most one
     * request. SERVER_FRAME_NONE: multi_input runs at the first byte and
     * its reads wait (up to the stream timeout) for the rest, while every
     * other client of the process waits too. */
    int multi_framing;

    /* SERVER_TRIGGER: one wake-up request (the bytes read, len >= 0). */
    void (*trigger)(const char *buf, size_t len);
    /* SERVER_TRIGGER, optional: the process is to exit (reload) and its
     * listeners are closed: true while work it started must still end
     * (qmgr: deliveries in flight); the event loop runs on, at most
     * ipc_timeout, until it returns false */
    bool (*drain)(void);
    /* SERVER_TRIGGER, for a service that runs as one process (maxproc 1:
     * master has nothing to decide per request): tell master of the
     * first request only (TAKEN + AVAIL in one write, so that it counts
     * the process as used), not of every request. Saves two wake-ups of
     * master per request: qmgr gets one per message. */
    bool trigger_notify_once;

    /* SERVER_MULTI and SERVER_TRIGGER: if timer_interval > 0, call timer
     * about every timer_interval seconds (for periodic work such as a
     * queue scan). The timer does not count as activity for max_idle. */
    long timer_interval;
    void (*timer)(void);
};

/* server_main - run the daemon; returns only the exit status 0 (most
 * exits go through exit(3) directly). */
int server_main(int argc, char **argv, const struct server_spec *spec);

/* Information for the callbacks. */
const char *server_service_name(void);	/* -n, or the program name */
const char *server_service_type(void);	/* -t: "inet", "unix", "fifo",
					 * "pass" or "" */

/* server_pass_info - in single_service of a -t pass service: what the
 * front said about the client at hand (pass_proto.h); NULL for clients
 * that did not come through a pass listener. The strings live until
 * single_service returns. The handed-over input is already in the
 * stream's read buffer. */
struct server_pass_info {
    const char *client_address;
    const char *client_port;
    bool greeted;			/* the front sent the 220 greeting */
    /* what getpeername(2) on the passed socket gave, as sock_peer_name
     * writes it (checked to equal client_address and client_port);
     * NULL for a unix-domain socket */
    const char *peer_address;
    const char *peer_port;
};
const struct server_pass_info *server_pass_info(void);

/* server_stress - the process was started while its service was in
 * stress mode (master_proto.h): main.cf's "stress" parameter is "yes",
 * so ${stress?{short}:{long}} defaults pick their short values.
 * Also true once MASTER_STRESS_SIGNAL arrived: the skeleton then sets
 * stress=yes and re-evaluates the number, time, size and boolean
 * parameters (config_apply_numbers: smtpd_timeout, smtpd_hard_error_limit
 * and the like take their stress values; string parameters keep theirs
 * in a running process), in the normal flow: before the SINGLE loop's
 * next accept, in MULTI/TRIGGER's event loop, and in the wait hook of
 * a watched stream (below). */
bool server_stress(void);
/* server_stress_watch - (SINGLE) the client stream s has the deadline
 * *timeout_var seconds (smtpd: &var_smtpd_timeout). When stress mode is
 * signalled, the wait in progress on s is cut to the new *timeout_var
 * from then, and s's timeout is lowered to it for every later wait (a
 * daemon that sets a longer timeout for a while sees it lowered at the
 * next wait). One stream at a time; the skeleton forgets it when
 * single_service returns. */
void server_stress_watch(struct stream *s, const long *timeout_var);
bool server_stdin_mode(void);		/* -S */
bool server_chroot_mode(void);		/* -C: chroot after pre_init */
const char *server_config_dir(void);

/* server_watch_fd - (MULTI, TRIGGER) also wait for fd to become readable
 * in the main loop and call fn(fd, ctx) then; server_unwatch_fd stops it.
 * At most SERVER_WATCH_MAX descriptors. */
#define SERVER_WATCH_MAX	64
void server_watch_fd(int fd, void (*fn)(int fd, void *ctx), void *ctx);
void server_unwatch_fd(int fd);

/* server_request_exit - finish the work at hand, then exit normally (as
 * on SIGHUP). */
void server_request_exit(void);

/* server_watchdog_reset - restart the daemon_timeout watchdog (a long
 * job that makes progress calls this now and then). */
void server_watchdog_reset(void);
/* server_multi_client_name - inside spec.multi_accept: the numeric
 * address and port of the client being taken, from accept(2) (as
 * sock_peer_name gives them, without a getpeername(2)); false if unknown */
bool server_multi_client_name(char *addr, size_t addr_size, char *port, size_t port_size);
/* server_multi_client_end - a client handed to spec.multi_accept ended */
void server_multi_client_end(void);
/* server_multi_exiting - the MULTI process takes no new clients (reload,
 * max_use, a table changed) and exits when its clients ended */
bool server_multi_exiting(void);

#endif
