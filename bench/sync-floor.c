/* sync-floor.c - a floor measurement for bench/ingest, not part of posthorn.
 *
 * Usage: sync-floor DIR COUNT SIZE
 *
 * Does, COUNT times, nothing but the file system steps that posthorn
 * promises for one message (docs/queue.md, docs/cleanup.md,
 * local-delivery/maildir.c), with SIZE bytes of message data, in one
 * process and without any IPC, parsing or logging:
 *
 *   cleanup         create incoming/tmp.N (O_EXCL, mode 0200), rename it
 *                   to incoming/ID at once, write the queue file (SIZE plus
 *                   ~200 bytes), fchmod 0600, fsync(file), fsync(incoming/)
 *   qmgr            rename incoming/ID -> active/ID, read the file
 *   local-delivery  read the file, an unnamed file in tmp/ (O_TMPFILE, 0600), write SIZE
 *                   bytes, fsync(file), link it to new/NAME through
 *                   /proc/self/fd, fsync(new/) (without O_TMPFILE: tmp/NAME
 *                   with O_EXCL and a rename, as local-delivery does)
 *   qmgr            unlink active/ID
 *
 * and then unlinks new/NAME, so that new/ does not grow (the steps are
 * bench/floor-steps.h, which bench/session-floor.c shares).  A second pass
 * does the same without the four syncs.  The time and CPU per message of
 * the first pass are what no server that keeps posthorn's syncs can go
 * below on this file system; the second pass shows what the syncs alone
 * cost.  Prints one JSON line:
 *
 *   {"messages": N, "wall_ms_per_msg": x, "cpu_ms_per_msg": y,
 *    "syncs_per_msg": 4, "no_sync_wall_ms_per_msg": a,
 *    "no_sync_cpu_ms_per_msg": b}
 *
 * (syncs_per_msg is counted, not assumed).  CPU is getrusage(RUSAGE_SELF),
 * user + system.  DIR must exist; sync-floor makes incoming/, active/,
 * tmp/ and new/ in it and removes them at the end, leaving DIR itself.
 *
 * DIAGNOSTICS: any failed system call prints "sync-floor: what: why" on
 * stderr and exits 1 (DIR may then hold leftovers). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "floor-steps.h"

#define QF_HEADER_SIZE	200		/* envelope records of a queue file */
#define MAX_SIZE	(64L * 1024 * 1024)
#define MAX_COUNT	10000000L

/* now_ms - the monotonic clock in milliseconds */
static double now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
	die("clock_gettime");
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* cpu_ms - user plus system CPU of this process in milliseconds */
static double cpu_ms(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
	die("getrusage");
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3
	+ (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* one_message - the file system steps of one message; syncs counted */
static void one_message(const struct floor_dirs *d, long seq, const char *qf, size_t qf_len,
			const char *msg, size_t msg_len, char *rbuf, bool sync,
			long *syncs)
{
    char    id[64];

    floor_commit(d, seq, qf, qf_len, sync, syncs, id, sizeof(id));
    (void) msg;				/* the queue file ends with it */
    floor_deliver(d, seq, id, qf_len, msg_len, rbuf, sync, syncs);
}

/* close_dirs - close and remove the four directories */
static void close_dirs(struct floor_dirs *d, const char *top)
{
    int     fds[] = {d->incoming, d->active, d->tmp, d->new};

    for (size_t i = 0; i < sizeof(floor_subdirs) / sizeof(floor_subdirs[0]); i++) {
	if (close(fds[i]) < 0)
	    die("close %s/%s", top, floor_subdirs[i]);
	if (unlinkat(d->top, floor_subdirs[i], AT_REMOVEDIR) < 0)
	    die("rmdir %s/%s", top, floor_subdirs[i]);
    }
    if (close(d->top) < 0)
	die("close %s", top);
}

int     main(int argc, char **argv)
{
    struct floor_dirs d;
    long    count;
    long    size;
    long    syncs = 0;
    long    no_syncs = 0;
    size_t  qf_len;
    char   *qf;
    char   *msg;
    char   *rbuf;
    double  t0, t1, t2, c0, c1, c2;

    floor_prog = "sync-floor";
    floor_usage = "DIR COUNT SIZE";
    if (argc != 4)
	usage();
    count = number(argv[2], 1, MAX_COUNT);
    size = number(argv[3], 1, MAX_SIZE);
    qf_len = (size_t) size + QF_HEADER_SIZE;
    if ((qf = malloc(qf_len)) == NULL || (msg = malloc((size_t) size)) == NULL
	|| (rbuf = malloc(qf_len + 1)) == NULL)
	die("malloc");
    floor_fill(qf, qf_len);
    floor_fill(msg, (size_t) size);
    floor_open_dirs(&d, argv[1]);

    /* the promised sequence, then the same without its syncs */
    c0 = cpu_ms();
    t0 = now_ms();
    for (long i = 0; i < count; i++)
	one_message(&d, i, qf, qf_len, msg, (size_t) size, rbuf, true, &syncs);
    t1 = now_ms();
    c1 = cpu_ms();
    for (long i = 0; i < count; i++)
	one_message(&d, count + i, qf, qf_len, msg, (size_t) size, rbuf, false, &no_syncs);
    t2 = now_ms();
    c2 = cpu_ms();

    close_dirs(&d, argv[1]);
    free(qf);
    free(msg);
    free(rbuf);
    printf("{\"messages\": %ld, \"wall_ms_per_msg\": %.4f, \"cpu_ms_per_msg\": %.4f, "
	   "\"syncs_per_msg\": %.4g, \"no_sync_wall_ms_per_msg\": %.4f, "
	   "\"no_sync_cpu_ms_per_msg\": %.4f}\n",
	   count, (t1 - t0) / count, (c1 - c0) / count, (double) syncs / count,
	   (t2 - t1) / count, (c2 - c1) / count);
    if (fflush(stdout) == EOF || ferror(stdout))
	die("write stdout");
    return 0;
}
