/* test-queue_id.c - unit tests for queue_id.c (format, strict parse,
 * ordering, uniqueness over real inodes, temp names, hashed paths). */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "queue_id.h"

static void small_buffer(void *arg)
{
    char buf[8];

    (void) arg;
    (void) queue_id_format(buf, sizeof(buf), 1, 1, 1);
}

static void bad_depth(void *arg)
{
    char buf[QUEUE_SUBDIR_SIZE];

    (void) queue_id_subdir(arg, 3, buf, sizeof(buf));
}

/* by_strcmp - qsort comparator for char[QUEUE_ID_SIZE] */
static int by_strcmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

int main(void)
{
    char id[QUEUE_ID_SIZE];
    char buf[256];
    struct queue_id_parts parts;

    msg_init("test-queue_id", MSG_TO_STDERR);

    unit_begin("format: known values, fixed-width time, compact inode");
    {
	static const struct {
	    int64_t sec;
	    long usec;
	    uint64_t inode;
	    const char *want;
	} cases[] = {
	    {0, 0, 0, "00000000000"},
	    {61, 61, 61, "00000z000zz"},
	    {62, 62, 62, "000010001010"},
	    {1700000000, 123456, 1234567, "1r31eq0W7E5BAN"},
	    {1700000000, 999999, UINT64_MAX, "1r31eq4C91LygHa16AHYF"},
	    {56800235583LL, 0, 1, "zzzzzz00001"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    unit_assert_idx(queue_id_format(id, sizeof(id), cases[i].sec, cases[i].usec, cases[i].inode), i);
	    unit_assert_streq_idx(id, cases[i].want, i);
	    unit_assert_idx(queue_id_parse(id, &parts), i);
	    unit_assert_idx(parts.sec == cases[i].sec && parts.usec == cases[i].usec
			    && parts.inode == cases[i].inode, i);
	}
	unit_assert(!queue_id_format(id, sizeof(id), -1, 0, 1));
	unit_assert(!queue_id_format(id, sizeof(id), 56800235584LL, 0, 1));
	unit_assert(!queue_id_format(id, sizeof(id), 1, 1000000, 1));
	unit_assert(!queue_id_format(id, sizeof(id), 1, -1, 1));
    }
    unit_end();

    unit_begin("validate: strict, canonical only");
    {
	static const struct {
	    const char *id;
	    bool ok;
	} cases[] = {
	    {"1r2gXC00W8y5bAP", true},
	    {"00000000000", true},
	    {"1r2gXC4C91LygHa16AHYF", true},		/* 2^64-1 */
	    {"1r2gXC4C91LygHa16AHYG", false},		/* 2^64: overflow */
	    {"1r2gXC4C91zzzzzzzzzzz", false},		/* overflow */
	    {"1r2gXC4C91LygHa16AHYF0", false},		/* too long */
	    {"1r2gXC00W8", false},			/* no inode */
	    {"1r2gXC00W80", true},			/* inode 0 */
	    {"1r2gXC00W805bAP", false},		/* leading zero inode */
	    {"1r2gXC4C9200001", false},		/* usec 1000000+ */
	    {"1r2gXC00W8y5b/P", false},
	    {"1r2gXC00W8y5b.P", false},
	    {"../gXC00W8y5bAP", false},
	    {"1r2gXC00W8y5bA ", false},
	    {"1r2gXC00W8y5bA\n", false},
	    {"", false},
	    {"tmp.1.2.3", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	    unit_assert_idx(queue_id_valid(cases[i].id) == cases[i].ok, i);
	unit_assert(!queue_id_valid(NULL));
    }
    unit_end();

    unit_begin("IDs sort by time under strcmp");
    {
	char ids[200][QUEUE_ID_SIZE];
	struct queue_id_parts prev, cur;
	uint64_t seed = 12345;
	bool sorted = true;

	for (int i = 0; i < 200; i++) {
	    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	    (void) queue_id_format(ids[i], QUEUE_ID_SIZE, (int64_t) ((seed >> 33) % 4000000000u),
				   (long) ((seed >> 13) % 1000000), seed % 100000000);
	}
	qsort(ids, 200, QUEUE_ID_SIZE, by_strcmp);
	(void) queue_id_parse(ids[0], &prev);
	for (int i = 1; i < 200; i++) {
	    (void) queue_id_parse(ids[i], &cur);
	    if (cur.sec < prev.sec || (cur.sec == prev.sec && cur.usec < prev.usec))
		sorted = false;
	    prev = cur;
	}
	unit_assert(sorted);
    }
    unit_end();

    unit_begin("new IDs for live files are distinct and valid");
    {
	char dir[] = "/tmp/test-queue_id.XXXXXX";
	char ids[50][QUEUE_ID_SIZE];
	char path[512];
	struct stat st;
	bool distinct = true;

	unit_assert(mkdtemp(dir) != NULL);
	for (int i = 0; i < 50; i++) {
	    char temp[QUEUE_TEMP_NAME_SIZE];
	    int fd;

	    queue_temp_name(temp, sizeof(temp));
	    unit_assert(queue_temp_name_valid(temp));
	    unit_assert(!queue_id_valid(temp));
	    fmt_buf_or_panic(path, sizeof(path), "%s/%s", dir, temp);
	    fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	    unit_assert(fd >= 0);
	    unit_assert(fstat(fd, &st) == 0);
	    unit_assert(queue_id_new(ids[i], QUEUE_ID_SIZE, (uint64_t) st.st_ino));
	    unit_assert(queue_id_valid(ids[i]));
	    unit_assert(queue_id_parse(ids[i], &parts) && parts.inode == (uint64_t) st.st_ino);
	    close(fd);
	}
	for (int i = 0; i < 50; i++)
	    for (int j = i + 1; j < 50; j++)
		if (strcmp(ids[i], ids[j]) == 0)
		    distinct = false;
	unit_assert(distinct);
	fmt_buf_or_panic(path, sizeof(path), "rm -rf '%s'", dir);
	unit_assert(system(path) == 0);
    }
    unit_end();

    unit_begin("temp names: shape checked");
    {
	static const struct {
	    const char *name;
	    bool ok;
	} cases[] = {
	    {"tmp.123.1700000000123456.0", true},
	    {"tmp.123.1700000000123456", false},
	    {"tmp.123..0", false},
	    {"tmp.123.45.6.7", false},
	    {"tmp.12a.45.6", false},
	    {"tmp.1.2.3/", false},
	    {"tmpx1.2.3", false},
	    {"1r2gXC00W8y5bAP", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	    unit_assert_idx(queue_temp_name_valid(cases[i].name) == cases[i].ok, i);
    }
    unit_end();

    unit_begin("hashed subdirectories and paths");
    {
	char sub1[QUEUE_SUBDIR_SIZE], sub2[QUEUE_SUBDIR_SIZE];
	int seen[16] = {0};
	int used = 0;

	unit_assert(queue_id_subdir("1r2gXC00W8y5bAP", 0, sub1, sizeof(sub1)));
	unit_assert_streq(sub1, "");
	unit_assert(queue_id_subdir("1r2gXC00W8y5bAP", 1, sub1, sizeof(sub1)));
	unit_assert(queue_id_subdir("1r2gXC00W8y5bAP", 2, sub2, sizeof(sub2)));
	unit_assert_inteq(strlen(sub1), 1);
	unit_assert_inteq(strlen(sub2), 3);
	unit_assert(sub2[0] == sub1[0] && sub2[1] == '/');	/* depth 2 extends depth 1 */
	unit_assert(!queue_id_subdir("../etc/passwd", 1, sub1, sizeof(sub1)));

	unit_assert(queue_id_path(buf, sizeof(buf), "deferred", "1r2gXC00W8y5bAP", 0));
	unit_assert_streq(buf, "deferred/1r2gXC00W8y5bAP");
	unit_assert(queue_id_path(buf, sizeof(buf), "deferred", "1r2gXC00W8y5bAP", 2));
	{
	    char want[64];

	    fmt_buf_or_panic(want, sizeof(want), "deferred/%s/1r2gXC00W8y5bAP", sub2);
	    unit_assert_streq(buf, want);
	}
	unit_assert(!queue_id_path(buf, sizeof(buf), "deferred", "../../x", 1));
	unit_assert(!queue_id_path(buf, sizeof(buf), "../x", "1r2gXC00W8y5bAP", 1));
	unit_assert(!queue_id_path(buf, sizeof(buf), "..", "1r2gXC00W8y5bAP", 1));
	unit_assert(!queue_id_path(buf, sizeof(buf), "", "1r2gXC00W8y5bAP", 1));
	unit_assert(!queue_id_path(buf, 10, "deferred", "1r2gXC00W8y5bAP", 1));

	/* consecutive IDs spread over all 16 first-level directories */
	for (int i = 0; i < 256; i++) {
	    (void) queue_id_format(id, sizeof(id), 1700000000, i, 4242);
	    (void) queue_id_subdir(id, 1, sub1, sizeof(sub1));
	    seen[sub1[0] <= '9' ? sub1[0] - '0' : sub1[0] - 'a' + 10]++;
	}
	for (int i = 0; i < 16; i++)
	    used += seen[i] > 0;
	unit_assert_inteq(used, 16);
    }
    unit_end();

    unit_begin("misuse panics");
    unit_assert(unit_expect_exit(small_buffer, NULL, UNIT_EXIT_SIGNAL, 6, "queue_id_format: buffer"));
    unit_assert(unit_expect_exit(bad_depth, "1r2gXC00W8y5bAP", UNIT_EXIT_SIGNAL, 6, "depth 3"));
    unit_end();

    return unit_done();
}
