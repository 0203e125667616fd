/* cmd_queue.c - posthorn queue: the operator's view of the mail queue.
 *
 *   queue list [--json]       mailq format, or a JSON array; a deferred
 *                             message shows its next try (the mtime of
 *                             deferred/ID, which qmgr sets) and each
 *                             recipient its last reason (defer/ID)
 *   queue show ID             envelope and header summary
 *   queue cat [-o] ID         every record (qf_dump; -o: with offsets)
 *   queue delete ID...|ALL    remove queue file and defer log
 *   queue hold ID...|ALL      incoming/active/deferred -> hold/
 *   queue release ID...|ALL   hold/ -> deferred/ (due now), wake qmgr
 *   queue requeue ID...|ALL   deferred/hold/active -> incoming/, so qmgr
 *                             routes the pending recipients again
 *   queue flush               ask qmgr to retry deferred mail now
 *
 * A file in incoming/ that cleanup is still writing (its owner may not
 * read it: mode 0200, queue_mode_ready) is not a message yet: list and
 * the ALL forms pass it by, and an explicit ID is refused ("still being
 * received"); it is never moved or removed here (cleanup would then
 * acknowledge a message that is gone). qmgr removes it if a crash left
 * it behind.
 *
 * Every ID from the command line or a directory listing passes
 * queue_id_valid() before a path is built from it. Each move is a
 * rename followed by an fsync of both directories (durable_rename); a
 * file that qmgr renamed at the same moment is reported as not found.
 * Queue directories are flat (no hashed subdirectories yet). */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "safe_file.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "defer_log.h"
#include "mail_proto.h"
#include "queue_file.h"
#include "queue_id.h"
#include "trigger.h"

/* This program. */
#include "posthorn.h"
#include "cmd_queue.h"

/* Where a message can be, in the order they are searched. */
static const char *const cq_dirs[] = {
    "incoming", "active", "deferred", "hold", "maildrop", "corrupt",
};
#define CQ_DIR_COUNT (sizeof(cq_dirs) / sizeof(cq_dirs[0]))

/* cq_error - "posthorn: queue: ..." on stderr */
static void cq_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cq_error(const char *fmt, ...)
{
    char text[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "posthorn: queue: %s\n", text);
}

/* ---------------------------------------------------------------- */
/* Reading a queue file                                             */

struct cq_rcpt {
    char *address;
    bool done;
    char *reason;			/* from defer/ID, or NULL */
};

struct cq_msg {
    char id[QUEUE_ID_SIZE];
    const char *queue;			/* one of cq_dirs */
    long long arrival;			/* seconds */
    long long mtime;
    long long size;			/* content bytes, CRLF counted */
    char *sender;
    struct cq_rcpt *rcpts;
    size_t rcpt_count;
    char **attrs;			/* "name=value" */
    size_t attr_count;
    struct str *header;			/* header lines, "\n" separated */
    const char *error;			/* not a complete queue file */
};

/* cq_msg_free - release a message summary */
static void cq_msg_free(struct cq_msg *m)
{
    for (size_t i = 0; i < m->rcpt_count; i++) {
	mem_free(&m->rcpts[i].address);
	mem_free(&m->rcpts[i].reason);
    }
    for (size_t i = 0; i < m->attr_count; i++)
	mem_free(&m->attrs[i]);
    mem_free(&m->rcpts);
    mem_free(&m->attrs);
    mem_free(&m->sender);
    if (m->header)
	str_free(&m->header);
}

/* cq_add_rcpt - one recipient */
static void cq_add_rcpt(struct cq_msg *m, const char *address, bool done)
{
    m->rcpts = mem_realloc(m->rcpts, mem_size_mul(m->rcpt_count + 1, sizeof(*m->rcpts)));
    m->rcpts[m->rcpt_count].address = mem_strdup(address);
    m->rcpts[m->rcpt_count].done = done;
    m->rcpts[m->rcpt_count].reason = NULL;
    m->rcpt_count++;
}

/* cq_defer_reason - defer_log_read callback: the last line wins */
static void cq_defer_reason(const struct defer_log_record *rec, void *ctx)
{
    struct cq_msg *m = ctx;

    for (size_t i = 0; i < m->rcpt_count; i++) {
	if (strcmp(m->rcpts[i].address, rec->rcpt) == 0) {
	    mem_free(&m->rcpts[i].reason);
	    m->rcpts[i].reason = mem_strdup(rec->reason);
	}
    }
}

/* cq_read - summarise queue/id (want_header: keep the header lines) */
static bool cq_read(struct cq_msg *m, const char *queue, const char *id, bool want_header)
{
    static char error[512];
    struct qf_reader reader;
    struct stream *s;
    struct str *data;
    struct stat sb;
    char path[64];
    const char *allowed = QF_TYPES_FIRST, *err;
    bool in_header = true, line_start = true;
    int fd, type, ret;

    memset(m, 0, sizeof(*m));
    str_copy_out_or_panic(m->id, sizeof(m->id), id);
    m->queue = queue;
    if (!queue_id_path(path, sizeof(path), queue, id, 0))
	return false;
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
	return false;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
	(void) close(fd);
	return false;
    }
    m->mtime = m->arrival = (long long) sb.st_mtime;
    if (want_header)
	m->header = str_new(STR_MAX_DEFAULT);
    s = stream_open(fd);
    stream_set_timeout(s, 10000);
    data = str_new(QF_RECORD_MAX);
    qf_reader_init(&reader, s, 0);
    while ((ret = qf_get(&reader, &type, data, QF_RECORD_MAX, allowed, NULL, &err)) > 0) {
	switch (type) {
	case QF_REC_VERSION:
	    allowed = QF_TYPES_ENVELOPE;
	    break;
	case QF_REC_TIME:
	    m->arrival = strtoll(data->data, NULL, 10);
	    break;
	case QF_REC_SENDER:
	    mem_free(&m->sender);
	    m->sender = mem_strdup(data->data);
	    break;
	case QF_REC_ATTR:
	    m->attrs = mem_realloc(m->attrs, mem_size_mul(m->attr_count + 1, sizeof(*m->attrs)));
	    m->attrs[m->attr_count++] = mem_strdup(data->data);
	    break;
	case QF_REC_RCPT:
	case QF_REC_DONE:
	    cq_add_rcpt(m, data->data, type == QF_REC_DONE);
	    break;
	case QF_REC_MESSAGE:
	    allowed = QF_TYPES_CONTENT;
	    break;
	case QF_REC_LINE:
	case QF_REC_CONT:
	    m->size += (long long) data->len + (type == QF_REC_LINE ? 2 : 0);
	    if (m->header && in_header) {
		if (line_start && type == QF_REC_LINE && data->len == 0)
		    in_header = false;
		else if (m->header->len < 64 * 1024
			 && (!str_try_append(m->header, data->data, data->len)
			     || (type == QF_REC_LINE && !str_try_appendc(m->header, '\n'))))
		    in_header = false;	/* too long to show: the rest is left out */
	    }
	    line_start = type == QF_REC_LINE;
	    break;
	case QF_REC_XEND:
	    allowed = QF_TYPES_TRAILER;
	    break;
	case QF_REC_END:
	    allowed = "";
	    break;
	}
    }
    if (ret < 0) {
	fmt_buf_cut(error, sizeof(error), "%s", err);
	m->error = error;
    } else if (allowed[0] != 0) {
	m->error = "incomplete file (no end record)";
    }
    str_free(&data);
    (void) stream_close(&s);
    if (m->sender == NULL)
	m->sender = mem_strdup("");
    if (m->rcpt_count > 0 && (strcmp(queue, "deferred") == 0 || strcmp(queue, "hold") == 0
			      || strcmp(queue, "active") == 0))
	(void) defer_log_read(id, cq_defer_reason, m, NULL, &err);
    return true;
}

/* cq_in_progress - is queue/id a file that cleanup is still writing? */
static bool cq_in_progress(const char *queue, const char *id)
{
    char path[64];
    struct stat sb;

    return strcmp(queue, "incoming") == 0 && queue_id_path(path, sizeof(path), queue, id, 0)
	&& lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && !queue_mode_ready(sb.st_mode);
}

/* cq_refuse_in_progress - an explicit ID that is still being received:
 * say so; true if refused */
static bool cq_refuse_in_progress(const char *queue, const char *id)
{
    if (queue == NULL || !cq_in_progress(queue, id))
	return false;
    cq_error("message %s is still being received (incoming/, not complete): not queued yet", id);
    return true;
}

/* cq_find - the queue directory that holds id, or NULL */
static const char *cq_find(const char *id)
{
    char path[64];
    struct stat sb;

    for (size_t i = 0; i < CQ_DIR_COUNT; i++) {
	if (queue_id_path(path, sizeof(path), cq_dirs[i], id, 0) && lstat(path, &sb) == 0)
	    return cq_dirs[i];
    }
    return NULL;
}

/* cq_name_cmp - qsort: by queue ID (= by age) */
static int cq_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* cq_list_dir - every valid queue ID in dir, sorted; count in *count_r */
static char **cq_list_dir(const char *dir, size_t *count_r, bool *failed)
{
    char **names = NULL;
    size_t count = 0;
    struct dirent *de;
    DIR *d;

    *count_r = 0;
    if ((d = opendir(dir)) == NULL) {
	if (errno != ENOENT) {
	    cq_error("cannot read %s/%s: %s", var_queue_directory, dir, strerror(errno));
	    *failed = true;
	}
	return NULL;
    }
    while ((de = readdir(d)) != NULL) {
	if (!queue_id_valid(de->d_name) || cq_in_progress(dir, de->d_name))
	    continue;
	names = mem_realloc(names, mem_size_mul(count + 1, sizeof(*names)));
	names[count++] = mem_strdup(de->d_name);
    }
    (void) closedir(d);
    if (count > 1)
	qsort(names, count, sizeof(*names), cq_name_cmp);
    *count_r = count;
    return names;
}

/* ---------------------------------------------------------------- */
/* list                                                             */

/* cq_print_header_line - one header line: a folded line's leading tab
 * (and any tab inside) is shown as written, other controls as '?' */
static void cq_print_header_line(const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	putchar(*p == '\t' ? '\t' : *p < 0x20 || *p == 0x7f ? '?' : *p);
}

/* cq_show_mailq - one message in mailq format */
static void cq_show_mailq(const struct cq_msg *m)
{
    char when[64];
    time_t t = (time_t) m->arrival;
    struct tm tm;
    const char *last_reason = NULL;
    char mark = strcmp(m->queue, "active") == 0 ? '*' : strcmp(m->queue, "hold") == 0 ? '!' : ' ';

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
    char head[QUEUE_ID_SIZE + 2];

    fmt_buf_or_panic(head, sizeof(head), "%s%c", m->id, mark);
    printf("%-22s %8lld %s  ", head, m->size, when);
    ph_print_text(*m->sender ? m->sender : "MAILER-DAEMON");
    putchar('\n');
    if (strcmp(m->queue, "deferred") == 0) {
	/* a line in parentheses, as the reasons: mailq parsers skip it */
	t = (time_t) m->mtime;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	printf("(next try: %s)\n", when);
    }
    if (m->error) {
	printf("(");
	ph_print_text(m->error);
	printf(")\n");
    }
    for (size_t i = 0; i < m->rcpt_count; i++) {
	const struct cq_rcpt *r = m->rcpts + i;

	if (r->done)
	    continue;
	if (r->reason && (last_reason == NULL || strcmp(last_reason, r->reason) != 0)) {
	    printf("(");
	    ph_print_text(r->reason);
	    printf(")\n");
	    last_reason = r->reason;
	}
	printf("%53s", "");
	ph_print_text(r->address);
	putchar('\n');
    }
    putchar('\n');
}

/* cq_show_json - one message as a JSON object */
static void cq_show_json(const struct cq_msg *m)
{
    bool first = true;

    printf("{\"queue_name\": ");
    ph_json_string(m->queue);
    printf(", \"queue_id\": ");
    ph_json_string(m->id);
    printf(", \"arrival_time\": %lld, \"message_size\": %lld, \"sender\": ", m->arrival, m->size);
    ph_json_string(m->sender);
    if (strcmp(m->queue, "deferred") == 0)
	printf(", \"next_try\": %lld", m->mtime);
    if (m->error) {
	printf(", \"error\": ");
	ph_json_string(m->error);
    }
    printf(", \"recipients\": [");
    for (size_t i = 0; i < m->rcpt_count; i++) {
	const struct cq_rcpt *r = m->rcpts + i;

	if (r->done)
	    continue;
	printf("%s{\"address\": ", first ? "" : ", ");
	ph_json_string(r->address);
	if (r->reason) {
	    printf(", \"delay_reason\": ");
	    ph_json_string(r->reason);
	}
	printf("}");
	first = false;
    }
    printf("]}");
}

/* cq_list - queue list [--json] */
/* cq_list_refused - a listing must never claim an empty queue it could
 * not read: if a queue directory cannot be read (a normal user without
 * the mail owner's rights), refuse once, clearly; true if refused */
static bool cq_list_refused(void)
{
    for (size_t d = 0; d < CQ_DIR_COUNT; d++) {
	DIR *dir;

	if (strcmp(cq_dirs[d], "corrupt") == 0)
	    continue;
	if ((dir = opendir(cq_dirs[d])) != NULL) {
	    (void) closedir(dir);
	    continue;
	}
	if (errno == ENOENT)
	    continue;
	if (errno == EACCES || errno == EPERM) {
	    cq_error("cannot list the queue: %s/%s is readable only by root and the mail "
		     "owner (%s); run mailq as one of them", var_queue_directory, cq_dirs[d],
		     var_mail_owner);
	} else {
	    cq_error("cannot list the queue: %s/%s: %s", var_queue_directory, cq_dirs[d],
		     strerror(errno));
	}
	return true;
    }
    return false;
}

static int cq_list(int argc, char **argv)
{
    struct cq_msg *msgs = NULL;
    size_t count = 0;
    long long total = 0;
    bool json = false, failed = false;

    for (int i = 1; i < argc; i++) {
	if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
	    json = true;
	else
	    return ph_usage("queue");
    }
    if (cq_list_refused())
	return 1;
    for (size_t d = 0; d < CQ_DIR_COUNT; d++) {
	size_t n;
	char **names;

	if (strcmp(cq_dirs[d], "corrupt") == 0)
	    continue;
	names = cq_list_dir(cq_dirs[d], &n, &failed);
	for (size_t i = 0; i < n; i++) {
	    msgs = mem_realloc(msgs, mem_size_mul(count + 1, sizeof(*msgs)));
	    if (cq_read(msgs + count, cq_dirs[d], names[i], false))
		count++;
	    mem_free(&names[i]);
	}
	mem_free(&names);
    }
    /* Oldest first, whatever directory a message is in. */
    for (size_t i = 1; i < count; i++) {
	for (size_t j = i; j > 0 && strcmp(msgs[j - 1].id, msgs[j].id) > 0; j--) {
	    struct cq_msg tmp = msgs[j];

	    msgs[j] = msgs[j - 1];
	    msgs[j - 1] = tmp;
	}
    }
    if (json) {
	printf("[");
	for (size_t i = 0; i < count; i++) {
	    printf("%s\n", i ? "," : "");
	    cq_show_json(msgs + i);
	}
	printf("%s]\n", count ? "\n" : "");
    } else if (count == 0 && !failed) {
	printf("Mail queue is empty\n");
    } else {
	printf("%-21s  %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
	       "-Sender/Recipient-------");
	for (size_t i = 0; i < count; i++) {
	    cq_show_mailq(msgs + i);
	    total += msgs[i].size;
	}
	printf("-- %lld Kbytes in %zu Request%s.\n", (total + 1023) / 1024, count,
	       count == 1 ? "" : "s");
    }
    for (size_t i = 0; i < count; i++)
	cq_msg_free(msgs + i);
    mem_free(&msgs);
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- */
/* show, cat                                                        */

/* cq_check_id - a valid queue ID, or an error */
static bool cq_check_id(const char *id)
{
    if (queue_id_valid(id))
	return true;
    cq_error("bad queue ID: %s", id);
    return false;
}

/* cq_show - queue show ID */
static int cq_show(int argc, char **argv)
{
    struct cq_msg m;
    const char *queue;
    char when[64];
    struct tm tm;
    time_t t;

    if (argc != 2)
	return ph_usage("queue");
    if (!cq_check_id(argv[1]))
	return 1;
    if (cq_refuse_in_progress(queue = cq_find(argv[1]), argv[1]))
	return 1;
    if (queue == NULL || !cq_read(&m, queue, argv[1], true)) {
	cq_error("no such message: %s", argv[1]);
	return 1;
    }
    t = (time_t) m.arrival;
    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
    printf("queue_id: %s\nqueue: %s\narrival_time: %s (%lld)\nsize: %lld\nsender: <",
	   m.id, m.queue, when, m.arrival, m.size);
    ph_print_text(m.sender);
    printf(">\n");
    if (strcmp(m.queue, "deferred") == 0) {
	t = (time_t) m.mtime;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm);
	printf("next_attempt: %s\n", when);
    }
    for (size_t i = 0; i < m.attr_count; i++) {
	printf("attribute: ");
	ph_print_text(m.attrs[i]);
	putchar('\n');
    }
    for (size_t i = 0; i < m.rcpt_count; i++) {
	printf("recipient: <");
	ph_print_text(m.rcpts[i].address);
	printf("> %s", m.rcpts[i].done ? "done" : "pending");
	if (m.rcpts[i].reason) {
	    printf(" (");
	    ph_print_text(m.rcpts[i].reason);
	    printf(")");
	}
	putchar('\n');
    }
    if (m.error) {
	printf("error: ");
	ph_print_text(m.error);
	putchar('\n');
    }
    printf("header:\n");
    for (char *line = m.header->data, *nl; *line; line = nl + 1) {
	if ((nl = strchr(line, '\n')) == NULL)
	    break;
	*nl = 0;
	printf("  ");
	cq_print_header_line(line);
	putchar('\n');
    }
    cq_msg_free(&m);
    return 0;
}

/* cq_cat - queue cat [-o] ID */
static int cq_cat(int argc, char **argv)
{
    struct qf_reader reader;
    struct stream *in, *out;
    const char *queue, *error;
    char path[64];
    int flags = 0, fd, ret;
    int i = 1;

    if (i < argc && strcmp(argv[i], "-o") == 0) {
	flags |= QF_DUMP_OFFSETS;
	i++;
    }
    if (argc - i != 1)
	return ph_usage("queue");
    if (!cq_check_id(argv[i]))
	return 1;
    if (cq_refuse_in_progress(queue = cq_find(argv[i]), argv[i]))
	return 1;
    if (queue == NULL || !queue_id_path(path, sizeof(path), queue, argv[i], 0)
	|| (fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
	cq_error("no such message: %s", argv[i]);
	return 1;
    }
    fflush(stdout);
    in = stream_open(fd);
    out = stream_open(STDOUT_FILENO);
    qf_reader_init(&reader, in, 0);
    ret = qf_dump(&reader, out, flags, &error);
    (void) stream_flush(out);
    stream_free(&out);
    (void) stream_close(&in);
    if (ret < 0) {
	cq_error("%s: %s", path, error);
	return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* delete, hold, release, requeue, flush                            */

/* cq_trigger - one request to qmgr's public fifo or socket; false with
 * a warning */
static bool cq_trigger(const char *what)
{
    const char *why;

    if (!trigger_send(QMGR_SOCKET, what, strlen(what), 2000, NULL, &why)) {
	cq_error("cannot wake up qmgr: %s", why);
	return false;
    }
    return true;
}

/* cq_tell_gone - active/ID was deleted or moved away: tell qmgr, which
 * drops the message from memory (its deliveries in flight are ignored,
 * its logs removed). Silent if qmgr does not run: then nobody has the
 * message in memory. */
static void cq_tell_gone(const char *id)
{
    char req[64];
    const char *why;

    if (fmt_try_buf(req, sizeof(req), "%s%s\n", QMGR_TRIGGER_GONE, id))
	(void) trigger_send(QMGR_SOCKET, req, strlen(req), 2000, NULL, &why);
}

enum cq_op { CQ_DELETE, CQ_HOLD, CQ_RELEASE, CQ_REQUEUE };

static const struct cq_op_info {
    const char *name;
    const char *const *from;		/* NULL-terminated source dirs */
    const char *to;			/* NULL: delete */
    const char *done;			/* "removed" */
} cq_ops[] = {
    [CQ_DELETE] = {"delete", (const char *const[]) {"incoming", "active", "deferred", "hold",
	"maildrop", "corrupt", NULL}, NULL, "removed"},
    [CQ_HOLD] = {"hold", (const char *const[]) {"incoming", "active", "deferred", NULL},
	"hold", "placed on hold"},
    [CQ_RELEASE] = {"release", (const char *const[]) {"hold", NULL}, "deferred", "released from hold"},
    [CQ_REQUEUE] = {"requeue", (const char *const[]) {"deferred", "hold", "active", NULL},
	"incoming", "requeued"},
};

/* cq_apply - one operation on one message in queue; true if done */
static bool cq_apply(enum cq_op op, const char *queue, const char *id)
{
    const struct cq_op_info *info = cq_ops + op;
    char from[64], to[64];
    const char *error;

    if (!queue_id_path(from, sizeof(from), queue, id, 0))
	return false;
    if (info->to == NULL) {
	char log[64];

	if (unlink(from) < 0) {
	    if (errno != ENOENT)
		cq_error("remove %s: %s", from, strerror(errno));
	    return false;
	}
	if (defer_log_remove(id, &error) < 0)
	    cq_error("%s", error);
	if (queue_id_path(log, sizeof(log), "bounce", id, 0) && unlink(log) < 0 && errno != ENOENT)
	    cq_error("remove %s: %s", log, strerror(errno));
	(void) fsync_dir(queue, &error);
	if (strcmp(queue, "active") == 0)
	    cq_tell_gone(id);
	printf("%s: %s\n", id, info->done);
	return true;
    }
    if (!queue_id_path(to, sizeof(to), info->to, id, 0))
	return false;
    if (op == CQ_RELEASE && utimensat(AT_FDCWD, from, NULL, AT_SYMLINK_NOFOLLOW) < 0) {
	if (errno != ENOENT)
	    cq_error("set the time of %s: %s", from, strerror(errno));
	return false;
    }
    if (durable_rename(from, to, &error) < 0) {
	if (errno != ENOENT)
	    cq_error("%s", error);
	return false;
    }
    if (op == CQ_REQUEUE && defer_log_remove(id, &error) < 0)
	cq_error("%s", error);
    if (strcmp(queue, "active") == 0)
	cq_tell_gone(id);
    printf("%s: %s\n", id, info->done);
    return true;
}

/* cq_modify - delete/hold/release/requeue ID...|ALL */
static int cq_modify(enum cq_op op, int argc, char **argv)
{
    const struct cq_op_info *info = cq_ops + op;
    size_t changed = 0;
    int status = 0;

    if (argc < 2)
	return ph_usage("queue");
    if (argc == 2 && strcmp(argv[1], "ALL") == 0) {
	bool failed = false;

	for (const char *const *q = info->from; *q; q++) {
	    size_t n;
	    char **names = cq_list_dir(*q, &n, &failed);

	    for (size_t i = 0; i < n; i++) {
		if (cq_apply(op, *q, names[i]))
		    changed++;
		mem_free(&names[i]);
	    }
	    mem_free(&names);
	}
	if (failed)
	    status = 1;
    } else {
	for (int i = 1; i < argc; i++) {
	    const char *queue = NULL;

	    if (!cq_check_id(argv[i])) {
		status = 1;
		continue;
	    }
	    /* qmgr may move the file between the look and the operation
	     * (incoming -> active -> deferred): look again, a few times */
	    bool done = false, refused = false;

	    for (int attempt = 0; attempt < 3 && !done; attempt++) {
		queue = NULL;
		for (const char *const *q = info->from; *q && queue == NULL; q++) {
		    char path[64];
		    struct stat sb;

		    if (queue_id_path(path, sizeof(path), *q, argv[i], 0) && lstat(path, &sb) == 0)
			queue = *q;
		}
		if (queue == NULL || (refused = cq_refuse_in_progress(queue, argv[i])))
		    break;
		done = cq_apply(op, queue, argv[i]);
		if (!done) {
		    char path[64];
		    struct stat sb;

		    /* still where it was: a real error (said), not a race */
		    if (queue_id_path(path, sizeof(path), queue, argv[i], 0) && lstat(path, &sb) == 0)
			break;
		}
	    }
	    if (refused) {
		status = 1;
		continue;
	    }
	    if (!done) {
		const char *where = cq_find(argv[i]);

		if (where && info->to)
		    cq_error("%s: message %s is in %s/, cannot %s it", info->name, argv[i], where,
			     info->name);
		else
		    cq_error("no such message: %s", argv[i]);
		status = 1;
		continue;
	    }
	    changed++;
	}
    }
    fflush(stdout);
    if (changed > 0 && (op == CQ_RELEASE || op == CQ_REQUEUE))
	(void) cq_trigger(op == CQ_RELEASE ? QMGR_TRIGGER_FLUSH : QMGR_TRIGGER_SCAN);
    return status;
}

/* cq_flush - queue flush */
static int cq_flush(int argc, char **argv)
{
    (void) argv;
    if (argc != 1)
	return ph_usage("queue");
    return cq_trigger(QMGR_TRIGGER_FLUSH) ? 0 : 1;
}

/* cmd_queue - dispatch the queue subcommands */
int cmd_queue(int argc, char **argv)
{
    const char *sub;

    if (argc < 2) {
	fprintf(stderr, "posthorn: queue: no subcommand (list, show, cat, delete, hold, "
		"release, requeue, flush)\n");
	return ph_usage("queue");
    }
    sub = argv[1];
    if (ph_load_config(false) < 0)
	return 1;
    if (chdir(var_queue_directory) < 0) {
	cq_error("cannot enter %s: %s", var_queue_directory, strerror(errno));
	return 1;
    }
    argc--;
    argv++;
    if (strcmp(sub, "list") == 0)
	return cq_list(argc, argv);
    if (strcmp(sub, "show") == 0)
	return cq_show(argc, argv);
    if (strcmp(sub, "cat") == 0)
	return cq_cat(argc, argv);
    if (strcmp(sub, "delete") == 0)
	return cq_modify(CQ_DELETE, argc, argv);
    if (strcmp(sub, "hold") == 0)
	return cq_modify(CQ_HOLD, argc, argv);
    if (strcmp(sub, "release") == 0)
	return cq_modify(CQ_RELEASE, argc, argv);
    if (strcmp(sub, "requeue") == 0)
	return cq_modify(CQ_REQUEUE, argc, argv);
    if (strcmp(sub, "flush") == 0)
	return cq_flush(argc, argv);
    fprintf(stderr, "posthorn: queue: unknown subcommand: %s\n", sub);
    return ph_usage("queue");
}
