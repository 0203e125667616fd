/* test-defer_log.c - unit tests for the per-message defer log. */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "defer_log.h"

#define ID	"1r31eq0W7E5BAN"

struct seen {
    int count;
    char rcpt[8][256];
    char dsn[8][16];
    char reason[8][256];
};

/* collect - remember each record */
static void collect(const struct defer_log_record *rec, void *ctx)
{
    struct seen *s = ctx;

    if (s->count < 8) {
	str_copy_out_or_panic(s->rcpt[s->count], sizeof(s->rcpt[0]), rec->rcpt);
	str_copy_out_or_panic(s->dsn[s->count], sizeof(s->dsn[0]), rec->dsn);
	str_copy_out_or_panic(s->reason[s->count], sizeof(s->reason[0]), rec->reason);
    }
    s->count++;
}

/* append_raw - add bytes to the file as a crash or an editor might */
static void append_raw(const char *text)
{
    int fd = open("defer/" ID, O_WRONLY | O_APPEND | O_CREAT, 0600);

    unit_assert(fd >= 0);
    unit_assert(write(fd, text, strlen(text)) == (ssize_t) strlen(text));
    close(fd);
}

int main(void)
{
    char tmpl[] = "/tmp/test-defer_log.XXXXXX";
    static const struct defer_log_record recs[] = {
	{"bob@example.test", "4.3.0", "mail transport unavailable"},
	{"odd, one=x+y @ex", "4.4.1", "connect to mx: refused\r\nsecond line"},
	{"bob@example.test", "4.2.2", "mailbox full, try later"},
    };
    struct seen seen;
    const char *err;
    bool warned;
    char *dir;

    dir = mkdtemp(tmpl);
    unit_assert(dir != NULL);
    unit_assert(chdir(dir) == 0);
    unit_assert(mkdir("defer", 0700) == 0);

    unit_begin("missing log reads as empty");
    memset(&seen, 0, sizeof(seen));
    unit_assert(defer_log_read(ID, collect, &seen, &warned, &err) == 0);
    unit_assert_inteq(seen.count, 0);
    unit_assert(!warned);
    unit_end();

    unit_begin("append and read back, odd addresses survive");
    unit_assert(defer_log_append(ID, recs, 2, &err) == 0);
    unit_assert(defer_log_append(ID, recs + 2, 1, &err) == 0);
    memset(&seen, 0, sizeof(seen));
    unit_assert(defer_log_read(ID, collect, &seen, &warned, &err) == 0);
    unit_assert_inteq(seen.count, 3);
    for (int i = 0; i < 3; i++) {
	unit_assert_streq_idx(seen.rcpt[i], recs[i].rcpt, i);
	unit_assert_streq_idx(seen.dsn[i], recs[i].dsn, i);
    }
    unit_assert_streq(seen.reason[0], "mail transport unavailable");
    unit_assert_streq(seen.reason[1], "connect to mx: refused  second line");
    unit_assert_streq(seen.reason[2], "mailbox full, try later");
    unit_assert(!warned);
    unit_end();

    unit_begin("delay warning mark; junk and a torn last line are skipped");
    unit_assert(defer_log_warned(ID, &err) == 0);
    append_raw("garbage line\nrcpt=, dsn=4.0.0, reason=x\nrcpt=a+ZZ, dsn=4.0.0, reason=x\n");
    append_raw("rcpt=torn@example, dsn=4.0");
    memset(&seen, 0, sizeof(seen));
    unit_assert(defer_log_read(ID, collect, &seen, &warned, &err) == 0);
    unit_assert_inteq(seen.count, 3);
    unit_assert(warned);
    unit_end();

    unit_begin("invalid IDs are refused; remove is idempotent");
    unit_assert(defer_log_append("../etc", recs, 1, &err) == -1);
    unit_assert_streq(err, "invalid queue ID");
    unit_assert(defer_log_read("tmp.1.2.3", collect, &seen, NULL, &err) == -1);
    unit_assert(defer_log_remove(ID, &err) == 0);
    unit_assert(access("defer/" ID, F_OK) < 0);
    unit_assert(defer_log_remove(ID, &err) == 0);
    unit_end();

    unit_begin("append to an unwritable place fails cleanly");
    unit_assert(rmdir("defer") == 0);
    unit_assert(defer_log_append(ID, recs, 1, &err) == -1);
    unit_assert(strstr(err, "open defer/") != NULL);
    unit_end();

    unit_assert(chdir("/") == 0);
    unit_assert(rmdir(dir) == 0);
    return unit_done();
}
