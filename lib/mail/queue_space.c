/* queue_space.c - the free space rule of the queue's file system
 * (Postfix's queue_minfree): a message is refused before it is taken
 * when the queue cannot hold it, instead of failing at end of data. It
 * only asks the file system (statvfs), never touches a queue file. */

/* System. */
#include <stdint.h>
#include <sys/statvfs.h>

/* Mail. */
#include "config.h"
#include "queue_space.h"

/* half_again - 1.5 x n, rounded up (capped: no overflow) */
static uint64_t half_again(uint64_t n)
{
    return n > UINT64_MAX / 4 ? UINT64_MAX / 2 : n + (n + 1) / 2;
}

uint64_t queue_space_need(uint64_t declared)
{
    uint64_t need;

    if (var_queue_minfree > 0)
	need = (uint64_t) var_queue_minfree;
    else
	need = var_message_size_limit > 0 ? half_again((uint64_t) var_message_size_limit) : 0;
    if (declared > UINT64_MAX / 4)
	return UINT64_MAX;
    return need + half_again(declared);
}

int queue_space_check(const char *dir, uint64_t declared, uint64_t *free_r)
{
    struct statvfs vfs;
    uint64_t avail;

    if (statvfs(dir, &vfs) < 0)
	return -1;
    avail = (uint64_t) vfs.f_bavail * (uint64_t) (vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize);
    if (free_r)
	*free_r = avail;
    return avail >= queue_space_need(declared);
}
