/* file_read.c - read a whole file into a bounded string (see
 * file_read.h). The one loop behind config's main.cf and snapshot
 * reads, master.cf and safe_file's read_file. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "file_read.h"
#include "str.h"

#define FILE_READ_CHUNK	8192

static struct errtext file_read_error;	/* the text behind error_r */

/* file_read_fd - see file_read.h */
int file_read_fd(int fd, const char *name, struct str *out, size_t max, const char **error_r)
{
    char chunk[FILE_READ_CHUNK];
    bool seekable = true;
    off_t off = 0;
    ssize_t n;

    if (max > out->max)
	max = out->max;
    str_reset(out);
    for (;;) {
	n = seekable ? pread(fd, chunk, sizeof(chunk), off) : read(fd, chunk, sizeof(chunk));
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0 && seekable && errno == ESPIPE && off == 0) {
	    seekable = false;			/* a pipe: read it as it comes */
	    continue;
	}
	if (n < 0) {
	    (void) errtext_fail(&file_read_error, error_r, "read %s: %s", name, strerror(errno));
	    break;
	}
	if (n == 0)
	    return 0;
	if ((size_t) n > max - str_len(out) || !str_try_append(out, chunk, (size_t) n)) {
	    (void) errtext_fail(&file_read_error, error_r, "read %s: file is larger than %zu bytes",
				name, max);
	    break;
	}
	off += n;
    }
    str_reset(out);
    return -1;
}

/* file_read_path - see file_read.h */
int file_read_path(const char *path, struct str *out, size_t max, const char **error_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int ret;

    if (fd < 0) {
	str_reset(out);
	return errtext_fail(&file_read_error, error_r, "open %s: %s", path, strerror(errno));
    }
    ret = file_read_fd(fd, path, out, max, error_r);
    (void) close(fd);
    return ret;
}
