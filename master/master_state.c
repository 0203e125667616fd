/* master_state.c - the state the master modules share, and the clock.
 *
 * Kept apart from main.c so that the unit tests of the other modules
 * link without main(). */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* master */
#include "master.h"

bool master_foreground;			/* -F */
struct master_conf *master_conf;	/* the configuration in use */
struct master_service *master_services;	/* the service table */
struct master_child *master_children;	/* every child not yet reaped */
bool master_stopping;			/* SIGTERM/SIGINT received */

/* master_now_ms - monotonic milliseconds */
long long master_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* master_stderr_is_journal - systemd connected stderr to the journal
 * (JOURNAL_STREAM is "dev:inode" of that stream) */
bool master_stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
	return false;
    return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}
