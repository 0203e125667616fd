/* queue_id.h - queue IDs: unique without coordination, file-name safe.
 *
 * A queue ID is the name of a queue file. It is made from the time the
 * file was created (seconds and microseconds) and the file's inode
 * number, each written in base 62 with the ASCII-ordered alphabet
 * 0-9 A-Z a-z:
 *
 *     SSSSSS UUUU I...   e.g. 1700000000 s, 123456 us, inode 1234567:
 *                        "1r31eq" "0W7E" "5BAN" = "1r31eq0W7E5BAN"
 *     6 chars seconds since the epoch (fixed width, up to 62^6-1)
 *     4 chars microseconds (fixed width, 0..999999)
 *     1..11 chars inode number (no leading zeros; "0" for inode 0)
 *
 * so an ID is 11..21 characters (16 for a 32-bit inode), sorts by
 * creation time under strcmp(), and holds only [0-9A-Za-z]. Two queue
 * files of one file system cannot share an inode while both exist, and
 * a file keeps its inode for life, so (time, inode) is unique without
 * any lock or counter. The one gap, an inode freed and reused within the
 * same microsecond (or a clock stepped back), is closed by the caller:
 * it moves the temp file to its final name with a no-replace rename
 * (renameat2 RENAME_NOREPLACE, or link+unlink) and retries with a fresh
 * time on EEXIST (docs/queue-file.md, "Queue IDs").
 *
 * Interface:
 *   queue_id_format()    ID from (seconds, microseconds, inode)
 *   queue_id_new()       ID from the current time and an inode
 *   queue_id_parse()     strict parse back into its parts
 *   queue_id_valid()     strict check; call it on every ID that comes
 *                        from a client, a command line or a directory
 *                        listing before it is used in a path
 *   queue_temp_name()    a unique temp file name (never a valid ID)
 *   queue_temp_name_valid() recognise one (for clean-up of stale temps)
 *   queue_id_subdir()    hashed subdirectory ("", "a", "a/7") for depth
 *                        0..2; each level is one hex digit of a hash of
 *                        the ID (16 directories per level)
 *   queue_id_path()      "QUEUE/SUBDIR/ID", the path relative to the
 *                        queue directory
 *   queue_mode_ready()   is a queue file complete? cleanup names a new
 *                        file by its ID before writing it, with mode
 *                        QUEUE_MODE_IN_PROGRESS (0200, owner write-only),
 *                        and sets QUEUE_MODE_READY (0600) once the whole
 *                        file is written; a file its owner may not read
 *                        is not a message yet (docs/queue.md)
 *
 * Diagnostics: functions that can fail on their input return false;
 * a caller buffer that is too small or a depth out of range is a bug
 * (msg_panic). */
#ifndef POSTHORN_QUEUE_ID_H
#define POSTHORN_QUEUE_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define QUEUE_ID_SEC_LEN	6
#define QUEUE_ID_USEC_LEN	4
#define QUEUE_ID_INODE_MAXLEN	11	/* 62^11 > 2^64 */
#define QUEUE_ID_MIN_LEN	(QUEUE_ID_SEC_LEN + QUEUE_ID_USEC_LEN + 1)
#define QUEUE_ID_MAX_LEN	(QUEUE_ID_SEC_LEN + QUEUE_ID_USEC_LEN + QUEUE_ID_INODE_MAXLEN)
#define QUEUE_ID_SIZE		(QUEUE_ID_MAX_LEN + 1)	/* buffer with NUL */
#define QUEUE_TEMP_NAME_SIZE	64
#define QUEUE_HASH_DEPTH_MAX	2
#define QUEUE_SUBDIR_SIZE	(2 * QUEUE_HASH_DEPTH_MAX)	/* "a/7" + NUL */

struct queue_id_parts {
    int64_t sec;			/* seconds since the epoch */
    long usec;				/* 0..999999 */
    uint64_t inode;
};

/* queue_id_format - ID for (sec, usec, inode) into buf; false if sec or
 * usec is out of range (a clock before 1970 or past year 3770) */
bool queue_id_format(char *buf, size_t size, int64_t sec, long usec, uint64_t inode);
/* queue_id_new - ID for the current time (CLOCK_REALTIME) and inode */
bool queue_id_new(char *buf, size_t size, uint64_t inode);
/* queue_id_parse - strict: canonical form only; parts may be NULL */
bool queue_id_parse(const char *id, struct queue_id_parts *parts);
/* queue_id_valid - the same check as queue_id_parse */
bool queue_id_valid(const char *id);

/* queue_temp_name - "tmp.PID.SECUSEC.COUNTER": unique among processes
 * of this host, contains '.', so never a valid queue ID */
void queue_temp_name(char *buf, size_t size);
/* queue_temp_name_valid - true for a name queue_temp_name could make */
bool queue_temp_name_valid(const char *name);

/* queue_id_subdir - hashed subdirectory of a valid ID; false if the ID
 * is invalid. depth 0 gives "". */
bool queue_id_subdir(const char *id, int depth, char *buf, size_t size);
/* queue_id_path - "queue_name/subdir/id" (or "queue_name/id" at depth
 * 0); false if the ID or queue name is invalid or buf too small */
bool queue_id_path(char *buf, size_t size, const char *queue_name, const char *id, int depth);

/* The modes of a queue file in incoming/: being written, complete. */
#define QUEUE_MODE_IN_PROGRESS	0200
#define QUEUE_MODE_READY	0600

/* queue_mode_ready - may qmgr (and the queue tools) take a regular file
 * of this st_mode? Not while its owner may not read it. */
static inline bool queue_mode_ready(mode_t mode)
{
    return (mode & S_IRUSR) != 0;
}

#endif
