/* master_proto.h - what master and its children agree on.
 *
 * Descriptors. master execs every child with:
 *   0, 1                /dev/null
 *   2                   stderr of master (the terminal with master -F;
 *                       else a pipe to master, which logs every line it
 *                       reads, so a child that dies before its logging is
 *                       set up still gets its reason into the log)
 *   MASTER_STATUS_FD    write end of the service's status pipe
 *   MASTER_LISTEN_FD .. MASTER_LISTEN_FD + N - 1
 *                       the service's N listeners (N is passed as -s N):
 *                       listening stream sockets (inet, unix), or a FIFO
 *                       opened read-write (fifo)
 *   MASTER_LISTEN_FD + N
 *                       main.cf as master validated it: a sealed, read-only
 *                       memory file (memfd); its number is passed in
 *                       MASTER_ENV_CONFIG_FD. Children read their main.cf
 *                       from it, never from the file, so an edit that has
 *                       not passed a reload cannot reach a new child.
 *   MASTER_LISTEN_FD + N + 1
 *                       the service's scoreboard (lib/mail/scoreboard.h):
 *                       a memfd of 32-bit slots, sealed against resizing,
 *                       which the child maps shared and then closes; the
 *                       environment names it and the child's slot in
 *                       MASTER_ENV_SCOREBOARD ("FD:SLOT"). Absent when
 *                       every slot is taken (a service without a process
 *                       limit has a bounded board): the child then
 *                       reports with status records only, as a child
 *                       without this variable does.
 * Every other descriptor is closed. The listeners are non-blocking, so
 * several idle children may wait on one listener: whoever wins accept(2)
 * (or read(2) on a FIFO) serves; the others get EAGAIN and wait again.
 *
 * Status protocol. A child writes fixed-size struct master_status records
 * to MASTER_STATUS_FD, one write(2) each (smaller than PIPE_BUF, so writes
 * from the children of one service never interleave):
 *   MASTER_STAT_TAKEN   the child took a connection or a trigger and is
 *                       busy; master stops counting it as idle
 *   MASTER_STAT_AVAIL   the child is idle again and waits for work
 * With a scoreboard, the child first stores its state in its own slot
 * (BUSY, or IDLE: "has served"; seq_cst), then loads the other slots, and
 * writes the record only if none of them is idle: only when the service's
 * idle count reaches zero (TAKEN) or leaves it (AVAIL). A MULTI child that
 * takes a client and stays available stores IDLE and writes nothing.
 * master recounts every service's idle children from the scoreboard on
 * each wake-up (a record, a listener it watches, a signal, a timer), and
 * reads a slot only as the word of the pid it put there at spawn: any
 * other content counts as busy (docs/architecture.md, decision 50, has
 * why a missed TAKEN cannot happen and a missed AVAIL costs one wake-up).
 * master counts a freshly spawned child as idle (its slot says FRESH). When a service has no
 * idle child, master watches the service's listeners itself and spawns a
 * child when one becomes readable (up to the maxproc limit). master only
 * accepts records whose pid is a live child of the service that owns the
 * pipe; anything else is ignored. A child that cannot write (master gone,
 * EPIPE) carries on with the client at hand and exits afterwards.
 *
 * Signals from master to children: SIGTERM = exit now; SIGHUP = finish
 * the client at hand (if any), then exit (sent to every child on reload).
 *
 * Stress mode. When a service has reached its process limit (every child
 * busy, maxproc of them) and a listener still has a connection waiting,
 * master puts the service in stress mode and logs it once ("service
 * NAME: all N processes busy -- stress mode on"); it leaves stress mode
 * when the service has had an idle child again for MASTER_STRESS_CALM_S
 * seconds, and logs that too ("stress mode off"). Every child spawned
 * while the service is in stress gets "-o stress=yes" (before the
 * master.cf arguments), so main.cf defaults written as
 * ${stress?{10}:{300}}s take their stress value, as in Postfix. Children
 * already running are told with MASTER_STRESS_SIGNAL: a child that gets
 * it sets stress=yes for the rest of its life (server_stress()) and its
 * daemon shortens the deadline it is waiting on (smtpd: smtpd_timeout is
 * re-read at its next wait; a wait in progress is cut to the stress
 * value measured from the signal: server_stress_watch).
 * Only inet and pass services enter stress mode (internal unix and fifo
 * services do not face clients from outside). Stress also ends when the
 * service has room for another process for MASTER_STRESS_CALM_S seconds
 * (with max_use 1 its processes exit instead of going idle).
 *
 * Environment: master passes only the names in import_environment, plus
 * MASTER_ENV_CONFIG_DIR, MASTER_ENV_CONFIG_FD, MASTER_ENV_SCOREBOARD (when
 * the child has a slot) and (with master -F) MASTER_ENV_LOG_STDERR=1. */
#ifndef POSTHORN_MASTER_PROTO_H
#define POSTHORN_MASTER_PROTO_H

#include <signal.h>
#include <stdint.h>

#define MASTER_STATUS_FD	3	/* status pipe, write end */
#define MASTER_LISTEN_FD	4	/* first listener */
#define MASTER_LISTEN_MAX	64	/* listeners per service */

#define MASTER_STRESS_SIGNAL	SIGUSR2	/* stress mode started */
#define MASTER_STRESS_CALM_S	10	/* idle child this long: stress ends */

#define MASTER_STAT_TAKEN	0	/* busy with a client or trigger */
#define MASTER_STAT_AVAIL	1	/* idle, waiting for work */

/* One status record, written whole with one write(2). */
struct master_status {
    int32_t pid;			/* the child's process id */
    int32_t status;			/* MASTER_STAT_* */
};

#define MASTER_ENV_CONFIG_DIR	"POSTHORN_CONFIG_DIR"
#define MASTER_ENV_LOG_STDERR	"POSTHORN_LOG_STDERR"
#define MASTER_ENV_CONFIG_FD	"POSTHORN_CONFIG_FD"
#define MASTER_ENV_SCOREBOARD	"POSTHORN_SCOREBOARD"	/* "FD:SLOT" */

/* The wake-up request that master writes to fifo and unix services with
 * a wakeup time (master.cf column 5). */
#define MASTER_WAKEUP_REQUEST	"W"

/* The pid file, relative to queue_directory; master holds a fcntl write
 * lock on it for its whole life. */
#define MASTER_PID_FILE		"pid/master.pid"

#ifndef POSTHORN_VERSION
#define POSTHORN_VERSION	"0.1"
#endif

#endif
