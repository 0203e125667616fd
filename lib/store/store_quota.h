/* store_quota.h - Maildir++ quotas (store_quota.c): the maildirsize
 * file and the usage of a Maildir with its folders, shared by
 * local-delivery and imapd. Sizes are the stored message sizes (S= of
 * the file name, else the file's size). */

#ifndef STORE_QUOTA_H
#define STORE_QUOTA_H

#include <stdbool.h>
#include <stddef.h>

/* quota_parse_def - Maildir++ quota definition "NNNS[,NNNC]" */
bool quota_parse_def(const char *text, long *bytes, long *count);
/* quota_parse_maildirsize - sum a maildirsize file: its definition and
 * the byte and message totals; false if malformed */
bool quota_parse_maildirsize(const char *data, size_t len, long *def_bytes,
			     long *bytes, long *count, long *lines);
/* quota_size_from_name - the S=N of a Maildir file name, or -1 */
long quota_size_from_name(const char *name);
/* quota_exceeded - used + add > limit (limit > 0), without overflow */
bool quota_exceeded(long used, long add, long limit);
/* quota_maildir_usage - bytes used in Maildir dir and its Maildir++
 * folders (maildirsize kept up to date when quota > 0); 0, or -1 with
 * *error_r */
int quota_maildir_usage(const char *dir, long quota, long *bytes, const char **error_r);
/* quota_maildir_usage2 - the same; recount: scan the messages even if
 * maildirsize is current (it never shrinks on deletions: ask before
 * refusing) */
int quota_maildir_usage2(const char *dir, long quota, bool recount, long *bytes,
			 const char **error_r);
/* quota_maildir_add - account one new message in maildirsize (if any) */
void quota_maildir_add(const char *dir, long size);

#endif
