/* test-qmgr_remove.c - unit tests for qmgr_remove.c: files handed to the
 * removal thread are all gone after qmgr_remove_finish, also when more
 * arrive than the ring holds (the rest are removed at once), missing
 * files are no error, and qmgr_remove_terminate removes what is queued. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "str.h"
#include "unit.h"

/* qmgr */
#include "qmgr.h"

#define FILES	3000

/* make_files - n empty files f0..f(n-1) in the current directory */
static void make_files(int n)
{
    char name[32];

    for (int i = 0; i < n; i++) {
	int fd;

	unit_assert(fmt_try_buf(name, sizeof(name), "f%d", i));
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	unit_assert(fd >= 0);
	(void) close(fd);
    }
}

/* count_files - how many of f0..f(n-1) exist */
static int count_files(int n)
{
    char name[32];
    struct stat st;
    int left = 0;

    for (int i = 0; i < n; i++) {
	unit_assert(fmt_try_buf(name, sizeof(name), "f%d", i));
	if (stat(name, &st) == 0)
	    left++;
    }
    return left;
}

int main(void)
{
    char dir[] = "/tmp/test-qmgr_remove.XXXXXX";
    char name[32];

    unit_assert(mkdtemp(dir) != NULL);
    unit_assert(chdir(dir) == 0);

    unit_begin("removals by the thread; more than the ring holds; missing files");
    make_files(FILES);
    qmgr_remove_init();
    for (int i = 0; i < FILES; i++) {
	unit_assert(fmt_try_buf(name, sizeof(name), "f%d", i));
	qmgr_remove_file(name);
    }
    qmgr_remove_file("no-such-file");
    qmgr_remove_finish();
    unit_assert(count_files(FILES) == 0);
    unit_end();

    unit_begin("without the thread: at once");
    make_files(5);
    for (int i = 0; i < 5; i++) {
	unit_assert(fmt_try_buf(name, sizeof(name), "f%d", i));
	qmgr_remove_file(name);
    }
    unit_assert(count_files(5) == 0);
    unit_end();

    unit_begin("terminate removes what is queued");
    make_files(10);
    qmgr_remove_init();
    qmgr_remove_hold(1);		/* the thread waits: all stay queued */
    for (int i = 0; i < 10; i++) {
	unit_assert(fmt_try_buf(name, sizeof(name), "f%d", i));
	qmgr_remove_file(name);
    }
    unit_assert(count_files(10) == 10);
    qmgr_remove_terminate();
    unit_assert(count_files(10) == 0);
    qmgr_remove_finish();
    unit_end();

    unit_assert(chdir("/") == 0);
    unit_assert(rmdir(dir) == 0);
    return unit_done();
}
