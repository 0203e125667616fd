/* test-msg.c - unit tests for msg.c: the log-file line format, the
 * cached pid after fork(2), and control characters in the text. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msg.h"
#include "unit.h"

/* read_log - the whole log file into buf */
static size_t read_log(const char *path, char *buf, size_t size)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL)
	return 0;
    n = fread(buf, 1, size - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return n;
}

/* line_pid - the pid in "... name[pid]: text" of the line holding text */
static long line_pid(const char *log, const char *name, const char *text)
{
    const char *tp = strstr(log, text);
    const char *lp, *np;
    char key[128];

    if (tp == NULL)
	return -1;
    for (lp = tp; lp > log && lp[-1] != '\n'; lp--)
	 /* void */ ;
    snprintf(key, sizeof(key), " %s[", name);
    np = strstr(lp, key);
    if (np == NULL || np > tp)
	return -1;
    return strtol(np + strlen(key), NULL, 10);
}

int main(void)
{
    char path[] = "/tmp/test-msg-XXXXXX";
    char log[16384];
    const char *err = NULL;
    int fd = mkstemp(path);
    pid_t child;
    int status;

    unit_begin("log file line format");
    unit_assert(fd >= 0);
    close(fd);
    msg_init("posthorn/test", MSG_TO_FILE);
    unit_assert(msg_set_file(path, &err));
    msg_info("hello %d", 42);
    msg_warn("second %s", "line");
    msg_info("a\nb\tc");
    unit_assert(read_log(path, log, sizeof(log)) > 0);
    unit_assert(strstr(log, " posthorn/test[") != NULL);
    unit_assert(strstr(log, "]: hello 42\n") != NULL);
    unit_assert(strstr(log, "]: warning: second line\n") != NULL);
    unit_assert(strstr(log, "]: a?b?c\n") != NULL);
    unit_assert(line_pid(log, "posthorn/test", "hello 42") == (long) getpid());
    /* "Mmm dd hh:mm:ss host name[pid]: ": the stamp is 15 characters */
    unit_assert(log[3] == ' ' && log[6] == ' ' && log[9] == ':' && log[12] == ':'
		&& log[15] == ' ');
    unit_end();

    unit_begin("a forked child logs its own pid");
    child = fork();
    if (child == 0) {
	msg_info("from the child");
	if (fork() == 0) {
	    msg_info("from the grandchild");
	    _exit(0);
	}
	(void) wait(&status);
	_exit(0);
    }
    unit_assert(child > 0);
    unit_assert(waitpid(child, &status, 0) == child);
    msg_info("parent again");
    unit_assert(read_log(path, log, sizeof(log)) > 0);
    unit_assert(line_pid(log, "posthorn/test", "from the child") == (long) child);
    unit_assert(line_pid(log, "posthorn/test", "from the grandchild") > 0);
    unit_assert(line_pid(log, "posthorn/test", "from the grandchild") != (long) child);
    unit_assert(line_pid(log, "posthorn/test", "from the grandchild") != (long) getpid());
    unit_assert(line_pid(log, "posthorn/test", "parent again") == (long) getpid());
    unit_end();

    unit_begin("msg_init renames the program");
    msg_init("posthorn/other", MSG_TO_FILE);
    msg_info("renamed");
    unit_assert(read_log(path, log, sizeof(log)) > 0);
    unit_assert(line_pid(log, "posthorn/other", "renamed") == (long) getpid());
    unit_end();

    unlink(path);
    return unit_done();
}
