/* cmd_queue.h - `posthorn queue ...`: list, show, cat, delete, hold,
 * release, requeue and flush (cmd_queue.c; man/posthorn-queue.1).
 *
 * cmd_queue() gets the arguments after the global options (argv[0] is
 * "queue") and returns the exit status: 0 success, 1 failure (e.g.
 * "posthorn: queue: no such message: ID"), 2 a usage error. */
#ifndef POSTHORN_CMD_QUEUE_H
#define POSTHORN_CMD_QUEUE_H

int cmd_queue(int argc, char **argv);

#endif
