/* fsync-skip.c - LD_PRELOAD shim for latency experiments only: makes
 * fsync(2)/fdatasync(2) return at once for directories
 * (FSYNC_SKIP=dirs) or for everything (FSYNC_SKIP=all), so a benchmark
 * can show what the syncs cost. Never for a real instance. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int skip(int fd)
{
    const char *mode = getenv("FSYNC_SKIP");
    struct stat st;

    if (mode == 0)
	return 0;
    if (strcmp(mode, "all") == 0)
	return 1;
    return strcmp(mode, "dirs") == 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

int fsync(int fd)
{
    static int (*real)(int);

    if (skip(fd))
	return 0;
    if (real == 0)
	real = (int (*)(int)) dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    static int (*real)(int);

    if (skip(fd))
	return 0;
    if (real == 0)
	real = (int (*)(int)) dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
