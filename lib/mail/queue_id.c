/* queue_id.c - queue IDs from (time, inode), temp names, hashed
 * subdirectories (see queue_id.h). */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "str.h"

/* mail */
#include "queue_id.h"

static const char queue_id_alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define QUEUE_ID_BASE	62

/* queue_id_digit - value of one alphabet character, or -1 */
static int queue_id_digit(char c)
{
    if (c >= '0' && c <= '9')
	return c - '0';
    if (c >= 'A' && c <= 'Z')
	return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
	return c - 'a' + 36;
    return -1;
}

/* queue_id_put - write value in base 62, exactly width digits (width 0:
 * as many as needed, no leading zeros); false if it does not fit */
static bool queue_id_put(char *out, size_t *pos, uint64_t value, int width)
{
    char tmp[QUEUE_ID_INODE_MAXLEN + 1];
    int n = 0;

    do {
	tmp[n++] = queue_id_alphabet[value % QUEUE_ID_BASE];
	value /= QUEUE_ID_BASE;
    } while (value != 0 && n < (int) sizeof(tmp));
    if (value != 0 || (width > 0 && n > width))
	return false;
    while (width > 0 && n < width)
	tmp[n++] = '0';
    while (n > 0)
	out[(*pos)++] = tmp[--n];
    return true;
}

/* queue_id_get - read len base-62 digits; false on a bad digit or overflow */
static bool queue_id_get(const char *text, size_t len, uint64_t *value)
{
    uint64_t v = 0;

    for (size_t i = 0; i < len; i++) {
	int d = queue_id_digit(text[i]);

	if (d < 0 || v > (UINT64_MAX - (uint64_t) d) / QUEUE_ID_BASE)
	    return false;
	v = v * QUEUE_ID_BASE + (uint64_t) d;
    }
    *value = v;
    return true;
}

/* queue_id_format - ID for (sec, usec, inode) */
bool queue_id_format(char *buf, size_t size, int64_t sec, long usec, uint64_t inode)
{
    char id[QUEUE_ID_SIZE];
    size_t pos = 0;

    if (size < QUEUE_ID_SIZE)
	msg_panic("queue_id_format: buffer of %zu bytes", size);
    if (sec < 0 || usec < 0 || usec > 999999)
	return false;
    if (!queue_id_put(id, &pos, (uint64_t) sec, QUEUE_ID_SEC_LEN)
	|| !queue_id_put(id, &pos, (uint64_t) usec, QUEUE_ID_USEC_LEN)
	|| !queue_id_put(id, &pos, inode, 0))
	return false;
    id[pos] = 0;
    memcpy(buf, id, pos + 1);
    return true;
}

/* queue_id_new - ID for now and inode */
bool queue_id_new(char *buf, size_t size, uint64_t inode)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
	msg_fatal("clock_gettime: %m");
    return queue_id_format(buf, size, (int64_t) ts.tv_sec, ts.tv_nsec / 1000, inode);
}

/* queue_id_parse - strict parse of a canonical ID */
bool queue_id_parse(const char *id, struct queue_id_parts *parts)
{
    size_t len;
    uint64_t sec, usec, inode;

    if (id == NULL)
	return false;
    len = strnlen(id, QUEUE_ID_MAX_LEN + 1);
    if (len < QUEUE_ID_MIN_LEN || len > QUEUE_ID_MAX_LEN)
	return false;
    if (!queue_id_get(id, QUEUE_ID_SEC_LEN, &sec)
	|| !queue_id_get(id + QUEUE_ID_SEC_LEN, QUEUE_ID_USEC_LEN, &usec)
	|| usec > 999999)
	return false;
    id += QUEUE_ID_SEC_LEN + QUEUE_ID_USEC_LEN;
    len -= QUEUE_ID_SEC_LEN + QUEUE_ID_USEC_LEN;
    /* one spelling per inode: no leading zeros */
    if (len > 1 && id[0] == '0')
	return false;
    if (!queue_id_get(id, len, &inode))
	return false;
    if (parts) {
	parts->sec = (int64_t) sec;
	parts->usec = (long) usec;
	parts->inode = inode;
    }
    return true;
}

/* queue_id_valid - true for a canonical queue ID */
bool queue_id_valid(const char *id)
{
    return queue_id_parse(id, NULL);
}

/* queue_temp_name - a temp file name unique among this host's processes */
void queue_temp_name(char *buf, size_t size)
{
    static unsigned counter;
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
	msg_fatal("clock_gettime: %m");
    if (!fmt_try_buf(buf, size, "tmp.%ld.%lld%06ld.%u", (long) msg_getpid(),
		 (long long) ts.tv_sec, (long) (ts.tv_nsec / 1000), counter++))
	msg_panic("queue_temp_name: buffer of %zu bytes", size);
}

/* queue_temp_name_valid - "tmp." then digits '.' digits '.' digits */
bool queue_temp_name_valid(const char *name)
{
    size_t len;
    int fields = 0;

    if (name == NULL || strncmp(name, "tmp.", 4) != 0)
	return false;
    len = strnlen(name, QUEUE_TEMP_NAME_SIZE);
    if (len >= QUEUE_TEMP_NAME_SIZE)
	return false;
    for (const char *p = name + 4;; p++) {
	const char *start = p;

	while (*p >= '0' && *p <= '9')
	    p++;
	if (p == start)
	    return false;
	fields++;
	if (*p == 0)
	    return fields == 3;
	if (*p != '.' || fields == 3)
	    return false;
    }
}

/* queue_id_hash - FNV-1a over the ID */
static uint32_t queue_id_hash(const char *id)
{
    uint32_t h = 2166136261u;

    for (; *id; id++) {
	h ^= (unsigned char) *id;
	h *= 16777619u;
    }
    return h;
}

/* queue_id_subdir - "", "a" or "a/7" for a valid ID */
bool queue_id_subdir(const char *id, int depth, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    uint32_t h;
    size_t pos = 0;

    if (depth < 0 || depth > QUEUE_HASH_DEPTH_MAX)
	msg_panic("queue_id_subdir: depth %d", depth);
    if (size < QUEUE_SUBDIR_SIZE)
	msg_panic("queue_id_subdir: buffer of %zu bytes", size);
    if (!queue_id_valid(id))
	return false;
    h = queue_id_hash(id);
    for (int level = 0; level < depth; level++) {
	if (level > 0)
	    buf[pos++] = '/';
	buf[pos++] = hex[(h >> (4 * level)) & 0xf];
    }
    buf[pos] = 0;
    return true;
}

/* queue_id_path - "queue_name[/subdir]/id" */
bool queue_id_path(char *buf, size_t size, const char *queue_name, const char *id, int depth)
{
    char sub[QUEUE_SUBDIR_SIZE];

    if (queue_name == NULL || *queue_name == 0 || strchr(queue_name, '/') != NULL
	|| strcmp(queue_name, ".") == 0 || strcmp(queue_name, "..") == 0)
	return false;
    if (!queue_id_subdir(id, depth, sub, sizeof(sub)))
	return false;
    if (depth == 0)
	return fmt_try_buf(buf, size, "%s/%s", queue_name, id);
    return fmt_try_buf(buf, size, "%s/%s/%s", queue_name, sub, id);
}
