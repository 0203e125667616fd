/* queue_space.h - is there room in the queue's file system for one more
 * message? (queue_minfree; smtpd at MAIL FROM, sendmail/postdrop) */
#ifndef POSTHORN_QUEUE_SPACE_H
#define POSTHORN_QUEUE_SPACE_H

#include <stdint.h>

/* queue_space_need - bytes that must be free for a message of declared
 * size (0: not declared): queue_minfree (0: 1.5 x message_size_limit)
 * plus 1.5 x declared */
uint64_t queue_space_need(uint64_t declared);

/* queue_space_check - statvfs(dir): 1 if at least queue_space_need(declared)
 * bytes are free to an unprivileged user, 0 if not, -1 if statvfs failed
 * (errno set; the caller lets the mail through and logs). free_r gets
 * the free bytes. */
int queue_space_check(const char *dir, uint64_t declared, uint64_t *free_r);

#endif
