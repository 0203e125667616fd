/* defer_log.c - per-message logs of deferred recipients (defer/ID):
 * durable appends, tolerant reading (see defer_log.h). */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "safe_file.h"
#include "str.h"

/* mail */
#include "defer_log.h"
#include "queue_id.h"
#include "xtext.h"

#define DEFER_LOG_WARNED	"delay_warning=sent"
#define DEFER_LOG_FILE_MAX	((size_t) 16 << 20)

static char defer_log_error[512];

/* defer_log_path - "defer/ID"; false if the ID is not valid */
static bool defer_log_path(char *buf, size_t size, const char *queue_id)
{
    if (!queue_id_valid(queue_id)) {
	fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "invalid queue ID");
	return false;
    }
    return fmt_try_buf(buf, size, "%s/%s", DEFER_LOG_DIR, queue_id);
}

/* defer_log_text - append text with control characters as spaces, cut
 * where out is full; false if it was cut */
static bool defer_log_text(struct str *out, const char *text)
{
    for (const char *p = text ? text : ""; *p; p++)
	if (!str_try_appendc(out, ((unsigned char) *p < 32 || *p == 127) ? ' ' : *p))
	    return false;
    return true;
}

/* defer_log_write - append data to defer/ID: one write, fsync, truncate
 * back on failure */
static int defer_log_write(const char *queue_id, const struct str *data, const char **error_r)
{
    char path[64];
    struct stat st;
    bool created = false;
    int fd;

    *error_r = defer_log_error;
    if (!defer_log_path(path, sizeof(path), queue_id))
	return -1;
    if ((fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)) < 0) {
	if (errno != ENOENT
	    || (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  0600)) < 0) {
	    fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "open %s: %s", path,
			   strerror(errno));
	    return -1;
	}
	created = true;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "%s: not a regular file", path);
	close(fd);
	return -1;
    }
    if (write_all_fd(fd, str_cstr(data), str_len(data)) < 0 || fsync(fd) < 0) {
	fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "write %s: %s", path,
		       strerror(errno));
	if (ftruncate(fd, st.st_size) < 0)
	    msg_warn("truncate %s after a failed append: %m", path);
	close(fd);
	return -1;
    }
    if (close(fd) < 0) {
	fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "close %s: %s", path,
		       strerror(errno));
	return -1;
    }
    if (created) {
	const char *err;

	if (fsync_dir(DEFER_LOG_DIR, &err) < 0) {
	    fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "%s", err);
	    return -1;
	}
    }
    return 0;
}

/* defer_log_append - append records for one message */
int defer_log_append(const char *queue_id, const struct defer_log_record *recs,
		     size_t count, const char **error_r)
{
    struct str buf, line;
    int ret;

    str_init(&buf, STR_MAX_HUGE);
    str_init(&line, DEFER_LOG_LINE_MAX - 1);
    for (size_t i = 0; i < count; i++) {
	str_reset(&line);
	str_appends_or_panic(&line, "rcpt=");
	if (!xtext_encode(&line, recs[i].rcpt, strlen(recs[i].rcpt)))
	    msg_panic("defer_log_append: recipient too long");
	/* the line is cut at its maximum, in the reason unless the
	 * recipient nearly fills it */
	if (str_try_appends(&line, ", dsn=")
	    && defer_log_text(&line, recs[i].dsn && *recs[i].dsn ? recs[i].dsn : "4.0.0")
	    && str_try_appends(&line, ", reason="))
	    (void) defer_log_text(&line, recs[i].reason);
	str_append_or_panic(&buf, str_cstr(&line), str_len(&line));
	str_appendc_or_panic(&buf, '\n');
    }
    ret = count ? defer_log_write(queue_id, &buf, error_r) : 0;
    str_fini(&line);
    str_fini(&buf);
    return ret;
}

/* defer_log_warned - record that the delay warning went out */
int defer_log_warned(const char *queue_id, const char **error_r)
{
    struct str buf;
    int ret;

    str_init(&buf, 64);
    str_appends_or_panic(&buf, DEFER_LOG_WARNED "\n");
    ret = defer_log_write(queue_id, &buf, error_r);
    str_fini(&buf);
    return ret;
}

/* defer_log_parse - one line; false if it is not a record. The xtext
 * address holds no space, so the first ", dsn=" ends it. */
static bool defer_log_parse(const char *line, size_t len, struct str *rcpt, struct str *dsn,
			    const char **reason_r)
{
    const char *p, *end = line + len, *sep;
    const char *err;

    if (len < 5 || memcmp(line, "rcpt=", 5) != 0)
	return false;
    p = line + 5;
    if ((sep = memmem(p, (size_t) (end - p), ", dsn=", 6)) == NULL || sep == p)
	return false;
    str_reset(rcpt);
    if (!xtext_decode(rcpt, p, (size_t) (sep - p), &err) || str_has_nul(rcpt))
	return false;
    p = sep + 6;
    if ((sep = memmem(p, (size_t) (end - p), ", reason=", 9)) == NULL)
	return false;
    if (!str_try_setn(dsn, p, (size_t) (sep - p)))
	return false;
    *reason_r = sep + 9;
    return true;
}

/* defer_log_read - call fn for every record */
int defer_log_read(const char *queue_id, defer_log_fn fn, void *ctx, bool *warned_r,
		   const char **error_r)
{
    char path[64];
    struct str data, rcpt, dsn;
    const char *err, *p, *end, *nl, *reason;
    struct defer_log_record rec;

    *error_r = defer_log_error;
    if (warned_r)
	*warned_r = false;
    if (!defer_log_path(path, sizeof(path), queue_id))
	return -1;
    str_init(&data, DEFER_LOG_FILE_MAX);
    if (read_file(path, &data, DEFER_LOG_FILE_MAX, &err) < 0) {
	bool missing = access(path, F_OK) < 0 && errno == ENOENT;

	str_fini(&data);
	if (missing)
	    return 0;
	fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "%s", err);
	return -1;
    }
    str_init(&rcpt, DEFER_LOG_LINE_MAX);
    str_init(&dsn, DEFER_LOG_LINE_MAX);
    for (p = str_cstr(&data), end = p + str_len(&data); p < end; p = nl + 1) {
	char *line;

	if ((nl = memchr(p, '\n', (size_t) (end - p))) == NULL)
	    break;				/* a torn last line */
	if ((size_t) (nl - p) == strlen(DEFER_LOG_WARNED)
	    && memcmp(p, DEFER_LOG_WARNED, (size_t) (nl - p)) == 0) {
	    if (warned_r)
		*warned_r = true;
	    continue;
	}
	line = mem_strndup(p, (size_t) (nl - p));
	if (strlen(line) == (size_t) (nl - p)
	    && defer_log_parse(line, (size_t) (nl - p), &rcpt, &dsn, &reason) && fn) {
	    rec.rcpt = str_cstr(&rcpt);
	    rec.dsn = str_cstr(&dsn);
	    rec.reason = reason;
	    fn(&rec, ctx);
	}
	mem_free(&line);
    }
    str_fini(&dsn);
    str_fini(&rcpt);
    str_fini(&data);
    return 0;
}

/* defer_log_remove - unlink defer/ID */
int defer_log_remove(const char *queue_id, const char **error_r)
{
    char path[64];

    *error_r = defer_log_error;
    if (!defer_log_path(path, sizeof(path), queue_id))
	return -1;
    if (unlink(path) < 0 && errno != ENOENT) {
	fmt_buf_cut(defer_log_error, sizeof(defer_log_error), "unlink %s: %s", path,
		       strerror(errno));
	return -1;
    }
    return 0;
}
