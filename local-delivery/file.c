/* file.c - delivery to a /file target from an alias, a .forward or an
 * :include: file: mbox format appended under the mbox locks (mbox.c), or
 * a Maildir when the path ends in "/". /dev/null takes the message
 * without being opened. The caller has already dropped to the rights the
 * safety rules give this target (runas.c); a file that those rights
 * cannot write is a deferral, an executable file or a non-regular file
 * is refused. */

/* System library. */
#include <string.h>

/* Base library. */
#include "str.h"

/* Mail library. */
#include "config.h"

/* This program. */
#include "local.h"

/* file_deliver - mbox-append to path (Maildir if it ends in "/") */
void file_deliver(const char *path, const struct ld_msg *msg, const struct copy_spec *spec,
		  struct ld_result *res)
{
    struct copy_spec fs = *spec;
    struct mbox_opts opts;
    size_t len = strlen(path);

    if (strcmp(path, "/dev/null") == 0) {
	ld_result_set(res, LD_SENT, "2.0.0", "delivered to file: /dev/null");
	return;
    }
    if (len > 0 && path[len - 1] == '/') {
	fs.flags = COPY_MAILDIR;
	maildir_deliver(path, true, 0, msg, &fs, res, NULL);
    } else {
	fs.flags = COPY_MBOX;
	memset(&opts, 0, sizeof(opts));
	opts.create = true;
	opts.dotlock_required = false;
	opts.check_owner = false;
	opts.size_limit = var_mailbox_size_limit;
	opts.quota = 0;
	mbox_deliver(path, &opts, msg, &fs, res);
    }
    if (res->status == LD_SENT)
	ld_result_set(res, LD_SENT, "2.0.0", "delivered to file: %s", path);
}
