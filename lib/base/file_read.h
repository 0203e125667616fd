/* file_read.h - a whole file into a struct str, bounded.
 *
 *   file_read_fd(fd, name, out, max, &error)    a descriptor, from offset 0
 *   file_read_path(path, out, max, &error)      open(2) path, then the same
 *
 * out is emptied first and receives at most max bytes (and never more
 * than out->max): a longer file is an error, never a silent cut. The
 * data may contain NUL bytes (str_has_nul tells). A seekable descriptor
 * is read with pread(2) from offset 0, so its offset does not move and a
 * descriptor shared between processes (master's configuration snapshot)
 * can be read by each of them, any number of times; a pipe is read with
 * read(2) to its end. file_read_path follows symbolic links (it is for
 * configuration files: safe_file.h's read_file refuses them).
 *
 * DIAGNOSTICS
 *   -1 with out empty and *error_r set: "open PATH: why", "read PATH:
 *   why", "read PATH: file is larger than N bytes" (name stands for PATH
 *   with a descriptor). The text is this module's errtext (errtext.h):
 *   valid until the next file_read_* error. */
#ifndef POSTHORN_FILE_READ_H
#define POSTHORN_FILE_READ_H

#include <stddef.h>

#include "str.h"

/* file_read_fd - the content of fd from offset 0; name is for messages */
int file_read_fd(int fd, const char *name, struct str *out, size_t max, const char **error_r);
/* file_read_path - open path (O_RDONLY, close-on-exec) and read it whole */
int file_read_path(const char *path, struct str *out, size_t max, const char **error_r);

#endif
