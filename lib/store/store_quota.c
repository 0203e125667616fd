/* store_quota.c - Maildir++ quotas, shared by local-delivery (refuses a
 * delivery that would pass the quota) and imapd (APPEND and COPY answer
 * NO [OVERQUOTA]): the "maildirsize" file (a quota definition line, then
 * "bytes count" lines that are summed) and a scan of the messages of the
 * Maildir and its Maildir++ folders when it is missing, stale or too long.
 *
 * maildirsize is a cache: it is rewritten from a scan (atomically, by
 * rename) when it does not describe the current quota, is malformed, or
 * has grown past 5120 bytes (the Maildir++ rule), and each new message
 * appends one "size 1" line with a single write(2). Deletions do not
 * write negative lines, so the cached figure may be above the truth: a
 * caller about to refuse asks for a recount first (quota_maildir_usage
 * with recount). */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "safe_file.h"
#include "str.h"

/* Store library. */
#include "store_quota.h"

#define MAILDIRSIZE		"maildirsize"
#define MAILDIRSIZE_MAX		5120	/* recalculate when longer */
#define MAILDIRSIZE_READ_MAX	(64 * 1024)

/* qt_parse_ulong - decimal digits only, no overflow */
static bool qt_parse_ulong(const char *cp, size_t len, long *value)
{
    long v = 0;
    size_t i;

    if (len == 0)
	return false;
    for (i = 0; i < len; i++) {
	if (cp[i] < '0' || cp[i] > '9')
	    return false;
	if (v > (LONG_MAX - (cp[i] - '0')) / 10)
	    return false;
	v = v * 10 + (cp[i] - '0');
    }
    *value = v;
    return true;
}

/* qt_parse_slong - an optional "-", then digits */
static bool qt_parse_slong(const char *cp, size_t len, long *value)
{
    if (len > 0 && cp[0] == '-') {
	if (!qt_parse_ulong(cp + 1, len - 1, value))
	    return false;
	*value = -*value;
	return true;
    }
    return qt_parse_ulong(cp, len, value);
}

/* quota_parse_def - "NNNS", "NNNC", "NNNS,NNNC" (either order) */
bool quota_parse_def(const char *text, long *bytes, long *count)
{
    const char *cp = text;

    *bytes = 0;
    *count = 0;
    if (*cp == 0)
	return false;
    while (*cp) {
	const char *start = cp;
	long v;

	while (*cp >= '0' && *cp <= '9')
	    cp++;
	if (!qt_parse_ulong(start, (size_t) (cp - start), &v))
	    return false;
	if (*cp == 'S')
	    *bytes = v;
	else if (*cp == 'C')
	    *count = v;
	else
	    return false;
	cp++;
	if (*cp == ',')
	    cp++;
	else if (*cp != 0)
	    return false;
    }
    return true;
}

/* qt_add - *sum += v, false (and *sum unchanged) if it would overflow */
static bool qt_add(long *sum, long v)
{
    if ((v > 0 && *sum > LONG_MAX - v) || (v < 0 && *sum < LONG_MIN - v))
	return false;
    *sum += v;
    return true;
}

/*
 * quota_parse_maildirsize - the first line is the definition, each
 * further line "bytes count" (either may be negative). Every line must
 * end in "\n" (a line being appended right now makes the file
 * "malformed": the caller then recounts).
 */
bool quota_parse_maildirsize(const char *data, size_t len, long *def_bytes,
			     long *bytes, long *count, long *lines)
{
    const char *cp = data, *end = data + len, *nl;
    long def_count, b, c, sum_b = 0, sum_c = 0, n = 0;
    char def[64];

    if ((nl = memchr(cp, '\n', (size_t) (end - cp))) == NULL || (size_t) (nl - cp) >= sizeof(def))
	return false;
    memcpy(def, cp, (size_t) (nl - cp));
    def[nl - cp] = 0;
    if (!quota_parse_def(def, def_bytes, &def_count))
	return false;
    for (cp = nl + 1; cp < end; cp = nl + 1) {
	const char *sp;

	if ((nl = memchr(cp, '\n', (size_t) (end - cp))) == NULL)
	    return false;
	while (cp < nl && *cp == ' ')
	    cp++;
	if ((sp = memchr(cp, ' ', (size_t) (nl - cp))) == NULL)
	    return false;
	if (!qt_parse_slong(cp, (size_t) (sp - cp), &b))
	    return false;
	while (sp < nl && *sp == ' ')
	    sp++;
	if (!qt_parse_slong(sp, (size_t) (nl - sp), &c))
	    return false;
	/* a sum that does not fit is as corrupt as a half line: recount */
	if (!qt_add(&sum_b, b) || !qt_add(&sum_c, c))
	    return false;
	n++;
    }
    *bytes = sum_b < 0 ? 0 : sum_b;
    *count = sum_c < 0 ? 0 : sum_c;
    *lines = n;
    return true;
}

/* quota_size_from_name - the S=N of a Maildir file name, or -1 */
long quota_size_from_name(const char *name)
{
    const char *cp = name, *start;
    long v;

    while ((cp = strstr(cp, ",S=")) != NULL) {
	cp += 3;
	start = cp;
	while (*cp >= '0' && *cp <= '9')
	    cp++;
	if ((*cp == 0 || *cp == ',' || *cp == ':')
	    && qt_parse_ulong(start, (size_t) (cp - start), &v))
	    return v;
    }
    return -1;
}

/* quota_exceeded - used + add > limit (limit > 0), without overflow */
bool quota_exceeded(long used, long add, long limit)
{
    if (limit <= 0)
	return false;
    if (used < 0)
	used = 0;
    if (add < 0)
	add = 0;
    if (used > limit)
	return true;
    return add > limit - used;
}

/* qt_scan_dir - add the sizes of the messages in dir/sub */
static int qt_scan_dir(const char *dir, const char *sub, long *bytes, long *count,
		       const char **error_r)
{
    static char errbuf[512];
    struct str *path = str_new(8192);
    struct dirent *de;
    struct stat st;
    DIR *d;
    long sz;

    if (!str_try_printf(path, "%s/%s", dir, sub)) {
	str_free(&path);
	fmt_buf_cut(errbuf, sizeof(errbuf), "cannot read %s/%s: path too long", dir, sub);
	*error_r = errbuf;
	return -1;
    }
    if ((d = opendir(str_cstr(path))) == NULL) {
	int err = errno;

	str_free(&path);
	if (err == ENOENT)
	    return 0;
	fmt_buf_cut(errbuf, sizeof(errbuf), "cannot read %s/%s: %s", dir, sub, strerror(err));
	*error_r = errbuf;
	return -1;
    }
    while ((de = readdir(d)) != NULL) {
	if (de->d_name[0] == '.')
	    continue;
	if ((sz = quota_size_from_name(de->d_name)) < 0) {
	    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		continue;		/* gone meanwhile, or not a message */
	    sz = (long) st.st_size;
	}
	if (*bytes > LONG_MAX - sz)
	    *bytes = LONG_MAX;
	else
	    *bytes += sz;
	(*count)++;
    }
    closedir(d);
    str_free(&path);
    return 0;
}

/* qt_scan_folders - add the messages of the Maildir++ folders (".Name"
 * subdirectories) of dir: a quota covers the whole mailbox tree */
static int qt_scan_folders(const char *dir, long *bytes, long *count, const char **error_r)
{
    struct dirent *de;
    DIR *d;
    int ret = 0;

    if ((d = opendir(dir)) == NULL)
	return 0;			/* (cur/ and new/ said what was wrong) */
    while (ret == 0 && (de = readdir(d)) != NULL) {
	struct str *sub;
	struct stat st;

	if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
	    continue;
	if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
	    continue;
	sub = str_new(8192);
	if (str_try_printf(sub, "%s/%s", dir, de->d_name))
	    ret = qt_scan_dir(str_cstr(sub), "cur", bytes, count, error_r) < 0
		|| qt_scan_dir(str_cstr(sub), "new", bytes, count, error_r) < 0 ? -1 : 0;
	str_free(&sub);
    }
    closedir(d);
    return ret;
}

/* qt_recalc - scan cur/ and new/, rewrite maildirsize */
static int qt_recalc(const char *dir, long quota, long *bytes, const char **error_r)
{
    struct str *path = str_new(8192), *text = str_new(256);
    long b = 0, c = 0;
    const char *err;

    if (qt_scan_dir(dir, "cur", &b, &c, error_r) < 0 || qt_scan_dir(dir, "new", &b, &c, error_r) < 0
	|| qt_scan_folders(dir, &b, &c, error_r) < 0) {
	str_free(&path);
	str_free(&text);
	return -1;
    }
    str_printf_or_panic(text, "%ldS\n%ld %ld\n", quota, b, c);
    if (!str_try_printf(path, "%s/%s", dir, MAILDIRSIZE))
	msg_warn("cannot update %s/%s: path too long", dir, MAILDIRSIZE);	/* the count stands */
    else if (atomic_write_file(str_cstr(path), str_cstr(text), str_len(text), 0600, &err) < 0)
	msg_warn("cannot update %s: %s", str_cstr(path), err);	/* the count stands */
    *bytes = b;
    str_free(&path);
    str_free(&text);
    return 0;
}

/* quota_maildir_usage - bytes used in Maildir dir */
int quota_maildir_usage(const char *dir, long quota, long *bytes, const char **error_r)
{
    return quota_maildir_usage2(dir, quota, false, bytes, error_r);
}

/* quota_maildir_usage2 - the same, counting the messages again if asked */
int quota_maildir_usage2(const char *dir, long quota, bool recount, long *bytes,
			 const char **error_r)
{
    struct str *path = str_new(8192), *data = str_new(MAILDIRSIZE_READ_MAX);
    long def_bytes, b, c, lines;
    const char *err;
    int rc;

    if (str_try_printf(path, "%s/%s", dir, MAILDIRSIZE)
	&& read_file(str_cstr(path), data, MAILDIRSIZE_READ_MAX, &err) == 0
	&& str_len(data) <= MAILDIRSIZE_MAX
	&& quota_parse_maildirsize(str_cstr(data), str_len(data), &def_bytes, &b, &c, &lines)
	&& def_bytes == quota && quota > 0 && !recount) {
	*bytes = b;
	rc = 0;
    } else {
	rc = qt_recalc(dir, quota > 0 ? quota : 0, bytes, error_r);
    }
    str_free(&path);
    str_free(&data);
    return rc;
}

/* quota_maildir_add - append "size 1" to maildirsize if it exists */
void quota_maildir_add(const char *dir, long size)
{
    char line[64];
    struct str *path = str_new(8192);
    struct stat st;
    int fd;

    /* O_NONBLOCK: a FIFO in its place is skipped, never waited on */
    if (str_try_printf(path, "%s/%s", dir, MAILDIRSIZE)
	&& (fd = open(str_cstr(path), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
		   | O_NOCTTY)) >= 0) {
	fmt_buf_or_panic(line, sizeof(line), "%ld 1\n", size);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
	    msg_warn("%s is not a regular file", str_cstr(path));
	else if (write_all_fd(fd, line, strlen(line)) < 0)
	    msg_warn("cannot append to %s: %s", str_cstr(path), strerror(errno));
	(void) close(fd);
    }
    str_free(&path);
}
