/* local.h - the modules of local-delivery and how they fit together.
 *
 * main.c      the deliver protocol on private/local (requests "deliver"
 *             and "verify"), per-recipient results back to qmgr
 * deliver.c   one recipient: virtual mailbox, alias, system user,
 *             .forward, the recursion over targets, loop detection
 * content.c   reading the message from the queue file (M, L/C..., X),
 *             the Delivered-To header scan, and the formatted copy
 *             (From_ line, Return-Path:, Delivered-To:, >From quoting)
 * maildir.c   Maildir delivery (tmp/, fsync, rename into new/, fsync new/),
 *             all relative to descriptors opened without user symlinks
 * mbox.c      mbox delivery (dotlock + fcntl lock, append, roll back)
 * quota.c     quota values, Maildir++ maildirsize, directory scans
 * alias.c     alias target lists (aliases(5) values, .forward and
 *             :include: files) and alias_maps lookups with the owner
 * forward.c   .forward files and resubmission of forwarded mail to cleanup
 * command.c   |command targets (sanitised environment, time limit,
 *             sysexits mapping)
 * file.c      /file targets
 * job.c       the pieces of work that run with a user's rights
 * worker.c    long-lived worker processes, one per user: forked once,
 *             dropped fully (priv_drop_ids) before any job, then fed
 *             jobs over a socketpair (ipc.h framing, fd passing)
 * runas.c     running a command as another user: fork, drop fully
 *             (priv_drop_ids), return the result through a pipe
 *
 * Results: every delivery step fills a struct ld_result; deliver.c merges
 * them into one result per recipient for qmgr (defer beats bounce beats
 * sent). Nothing here marks a recipient done; qmgr owns the queue file.
 *
 * Diagnostics: problems of one delivery become a defer or bounce result
 * with a reason (and a msg_warn when an administrator should look);
 * nothing in a delivery path calls msg_fatal. */
#ifndef POSTHORN_LOCAL_H
#define POSTHORN_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* base */
#include "ipc.h"
#include "str.h"

/* mail */
#include "deliver_proto.h"		/* struct deliver_rcpt: one recipient */

/* Store library. */
#include "store_quota.h"		/* Maildir++ quotas */

/* ---- results (deliver.c) */

enum ld_status {
    LD_NONE = -1,		/* nothing delivered yet */
    LD_SENT = 0,
    LD_BOUNCE = 1,
    LD_DEFER = 2,		/* the most severe: retry the whole recipient */
};

#define LD_REASON_MAX	600

struct ld_result {
    int status;			/* enum ld_status */
    char dsn[16];		/* "2.0.0", "5.1.1", ... */
    char reason[LD_REASON_MAX];
    unsigned sent_count;	/* destinations delivered (merge) */
};

/* ld_result_init - no outcome yet */
void ld_result_init(struct ld_result *r);
/* ld_result_set - one outcome with a formatted reason */
void ld_result_set(struct ld_result *r, int status, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ld_result_merge - fold one outcome into an aggregate */
void ld_result_merge(struct ld_result *agg, const struct ld_result *one);
/* ld_result_from_errno - the outcome of a failed mailbox operation: over
 * quota or file size limit bounces (5.2.2), a full disk (4.3.1) and
 * everything else (4.2.0) defer */
void ld_result_from_errno(struct ld_result *res, int err, const char *what, const char *path);

/* A content_copy sink that writes to a descriptor; err keeps the errno of
 * a failed write. */
struct ld_fd_sink {
    int fd;
    int err;
};
int ld_fd_sink_write(void *ctx, const char *buf, size_t len);

/* ld_status_name - "sent", "bounce", "defer" */
const char *ld_status_name(int status);

/* ---- the message (content.c) */

struct ld_msg {
    const char *queue_id;
    int fd;			/* the queue file, read-only */
    off_t data_offset;		/* the M record */
    long data_size;
    const char *sender;		/* "" = null sender */
    long arrival_time;
    const char *dsn_envid;
    const char *dsn_ret;
    struct str *delivered;	/* Delivered-To values, "\n"-terminated */
};

/* Pieces of content lines, as content_walk delivers them. */
#define CONTENT_LINE_START	(1 << 0)	/* first piece of a line */
#define CONTENT_LINE_END	(1 << 1)	/* last piece (an L record) */
/* fn returns 0 to go on, >0 to stop (content_walk returns it), <0 on
 * an error of its own (content_walk returns -1 with *error_r NULL) */
typedef int (*content_piece_fn)(const char *data, size_t len, int flags, void *ctx);
/* content_walk - read M, then L/C records up to X, from fd at offset */
int content_walk(int fd, off_t offset, content_piece_fn fn, void *ctx, const char **error_r);
/* content_scan_headers - collect the Delivered-To values of the header */
int content_scan_headers(struct ld_msg *msg, const char **error_r);
/* content_has_delivered_to - the header already names address? */
bool content_has_delivered_to(const struct ld_msg *msg, const char *address);
/* content_header_delivered_to - if line is a complete (unfolded) header
 * "Delivered-To: value", put the normalised value in out; pure */
bool content_header_delivered_to(const char *line, size_t len, struct str *out);

/* What a copy of the message looks like. */
#define COPY_FROM_LINE		(1 << 0)	/* mbox "From sender date" */
#define COPY_QUOTE		(1 << 1)	/* "From " -> ">From " */
#define COPY_BLANK		(1 << 2)	/* an empty line at the end */
#define COPY_RETURN_PATH	(1 << 3)	/* Return-Path: <sender> */
#define COPY_DELIVERED_TO	(1 << 4)	/* Delivered-To: recipient */
#define COPY_MBOX	(COPY_FROM_LINE | COPY_QUOTE | COPY_BLANK | COPY_RETURN_PATH | COPY_DELIVERED_TO)
#define COPY_MAILDIR	(COPY_RETURN_PATH | COPY_DELIVERED_TO)
#define COPY_COMMAND	(COPY_FROM_LINE | COPY_RETURN_PATH | COPY_DELIVERED_TO)

struct copy_spec {
    int flags;
    const char *sender;
    const char *delivered_to;
    time_t now;			/* for the From_ line */
};

/* copy sink: write len bytes; 0, or -1 (the sink keeps its error) */
typedef int (*copy_sink_fn)(void *ctx, const char *buf, size_t len);
/* content_copy - write the formatted message to sink. 0 with *size_r
 * (bytes written); -1 with *error_r (NULL when the sink failed) */
int content_copy(const struct ld_msg *msg, const struct copy_spec *spec,
		 copy_sink_fn sink, void *sink_ctx, off_t *size_r, const char **error_r);
/* content_from_line - "From SENDER Www Mmm dd hh:mm:ss yyyy\n"; pure;
 * false if it does not fit in out */
STR_CHECKED bool content_from_line(struct str *out, const char *sender, time_t when);
/* content_header_value - a header value with control characters and
 * (if no_space) white space replaced, so it stays one line; pure;
 * false (out cut) if it does not fit */
STR_CHECKED bool content_header_value(struct str *out, const char *text, bool no_space);
/* content_need_quote - line (its first piece) starts with "From " */
bool content_need_quote(const char *data, size_t len);

/* ---- Maildir (maildir.c) */

/* maildir_unique - "SEC.M<usec>P<pid>R<random>.<host>"; false if it
 * does not fit; host has "/", ":" and "," escaped as \057 \072 \054 */
bool maildir_unique(char *buf, size_t size, long sec, long usec, long pid, uint64_t rnd,
		    const char *host);
/* maildir_deliver - deliver msg into Maildir dir (which may end in "/"),
 * creating it if create; quota > 0: refuse (5.2.2) when full;
 * *made_cur_r (may be NULL): whether this call made cur/ (a new Maildir) */
void maildir_deliver(const char *dir, bool create, long quota, const struct ld_msg *msg,
		     const struct copy_spec *spec, struct ld_result *res, bool *made_cur_r);
/* maildir_set_fsync - the fsync of files and of new/ (tests count, slow
 * and fail it) */
void maildir_set_fsync(int (*fn)(int fd));

/* ---- mbox (mbox.c) */

struct mbox_opts {
    bool create;		/* create the file if missing (0600) */
    bool create_parent;		/* and its directory (0700) */
    bool dotlock_required;	/* a dotlock that cannot be made defers */
    bool check_owner;		/* the file must belong to geteuid() */
    long size_limit;		/* 0: none */
    long quota;			/* 0: none (virtual mbox) */
};
/* mbox_deliver - append msg to the mbox file path, locked */
void mbox_deliver(const char *path, const struct mbox_opts *opts, const struct ld_msg *msg,
		  const struct copy_spec *spec, struct ld_result *res);
/* mbox_dotlock - create path.lock (stale ones removed): 0, 1 if the
 * directory does not allow it (EACCES/EROFS), -1 on timeout/error */
int mbox_dotlock(const char *path, const char **error_r);
/* mbox_dotunlock - remove path.lock */
void mbox_dotunlock(const char *path);

/* ---- quota (quota.c) */

/* quota_parse_mailbox - a virtual_mailbox_maps value "path [quota=N]";
 * *quota is -1 when no quota= was given */
int quota_parse_mailbox(const char *value, struct str *path, long *quota, const char **error_r);
/* the Maildir++ quota: store_quota.h */

/* ---- aliases and target lists (alias.c) */

enum target_type {
    TARGET_ADDRESS = 1,		/* user, user@domain */
    TARGET_MAILBOX,		/* \user: that user's mailbox, no expansion */
    TARGET_COMMAND,		/* |command */
    TARGET_FILE,		/* /path */
    TARGET_INCLUDE,		/* :include:/path */
};

struct alias_target {
    enum target_type type;
    char *text;			/* without the |, \ or :include: */
};

struct alias_list {
    struct alias_target *v;
    size_t n;
    size_t cap;
};

#define ALIAS_TARGETS_MAX	10000

void alias_list_init(struct alias_list *list);
void alias_list_fini(struct alias_list *list);
/* alias_split - parse a target list: comma or newline separated, "..."
 * quoting, # comment lines; -1 with *error_r on a syntax error */
int alias_split(const char *text, size_t len, struct alias_list *list, const char **error_r);
/* alias_lookup - alias_maps: key, then key less its extension. 1 with
 * the value, the uid that owns the table it came from and *stripped
 * (true when only the key less its extension was found); 0; -1 */
int alias_lookup(const char *key, struct str *value, uid_t *owner, bool *stripped,
		 const char **error_r);
/* alias_lookup_exact - alias_maps: exactly key (the owner- alias) */
int alias_lookup_exact(const char *key, struct str *value, uid_t *owner, const char **error_r);
void alias_init(void);
void alias_fini(void);

/* ---- running as another user (runas.c) */

/* work done with dropped privileges: fills res, may append to payload */
typedef void (*runas_fn)(void *ctx, struct ld_result *res, struct str *payload);
/* ld_run_as - run fn as uid/gid (plus extra_gid if not -1) in a child
 * process when root, in this process otherwise */
void ld_run_as(uid_t uid, gid_t gid, gid_t extra_gid, runas_fn fn, void *ctx,
	       struct ld_result *res, struct str *payload);

/* ---- |command and /file (command.c, file.c) */

struct cmd_env {
    const char *sender;
    const char *recipient;	/* the address being delivered */
    const char *local;		/* its local part */
    const char *domain;
    const char *extension;
    const char *user;		/* whose rights */
    const char *home;
    const char *shell;
};
/* command_deliver - run "/bin/sh -c command" with the message on stdin */
void command_deliver(const char *command, const struct cmd_env *env, const struct ld_msg *msg,
		     const struct copy_spec *spec, struct ld_result *res);
/* command_exit_result - map an exit status to a result; pure */
void command_exit_result(int status, const char *command, const char *output,
			 struct ld_result *res);
/* file_deliver - mbox-append to path (Maildir if it ends in "/") */
void file_deliver(const char *path, const struct ld_msg *msg, const struct copy_spec *spec,
		  struct ld_result *res);

/* ---- one piece of work with a user's rights (job.c) */

enum ld_job_kind {
    LD_JOB_MAILDIR = 1,		/* Maildir delivery */
    LD_JOB_MBOX,		/* mbox delivery */
    LD_JOB_COMMAND,		/* |command */
    LD_JOB_FILE,		/* /file */
    LD_JOB_FORWARD_FILE,	/* read the first .forward of path (candidates,
				 * one per line); payload: its text, reason
				 * "found N" (its index) or "none" */
    LD_JOB_INCLUDE_FILE,	/* read an :include: file; payload "OWNER\nTEXT" */
    LD_JOB_USAGE,		/* mailbox usage for verify; payload "BYTES" */
};
#define LD_JOB_KIND_MAX	LD_JOB_USAGE

struct ld_job {
    enum ld_job_kind kind;
    const struct ld_msg *msg;	/* MAILDIR, MBOX, COMMAND, FILE */
    struct copy_spec spec;
    const char *path;		/* mailbox, file; .forward candidates */
    long quota;			/* MAILDIR, USAGE */
    struct mbox_opts mbox;	/* MBOX */
    const char *command;	/* COMMAND */
    struct cmd_env env;		/* COMMAND */
    uid_t uid;			/* FORWARD_FILE: the owner it must have */
};

/* ld_job_needs_msg - does this kind of job read the message? */
bool ld_job_needs_msg(enum ld_job_kind kind);
/* ld_job_run - do the job in this process, with this process's rights */
void ld_job_run(const struct ld_job *job, struct ld_result *res, struct str *payload);

/* ---- long-lived workers, one per user (worker.c) */

/* ld_worker_run - run job (any kind but LD_JOB_COMMAND) as uid/gid
 * (plus extra_gid if not -1). As root in a worker process that dropped
 * to those ids for good when it was started and serves many jobs;
 * otherwise in this process. A worker that dies or answers nonsense
 * makes the result a defer. */
void ld_worker_run(uid_t uid, gid_t gid, gid_t extra_gid, const struct ld_job *job,
		   struct ld_result *res, struct str *payload);
/* ld_worker_shutdown - close every worker and reap it (at exit) */
void ld_worker_shutdown(void);
/* ld_worker_forget - in a new child process: close the descriptors of
 * the parent's workers without waiting for anything */
void ld_worker_forget(void);
/* ld_worker_count - workers alive now (tests) */
size_t ld_worker_count(void);
/* ld_worker_encode_job / ld_worker_decode_job - the job message (tests
 * and worker.c); decode is strict: exactly the expected attributes in
 * order, every value checked. decode fills job and msg (msg->fd is -1),
 * pointing into list. */
void ld_worker_encode_job(struct str *out, const struct ld_job *job);
int ld_worker_decode_job(const struct ipc_list *list, struct ld_job *job, struct ld_msg *msg,
			 const char **error_r);
/* ld_worker_encode_result / ld_worker_decode_result - the answer */
void ld_worker_encode_result(struct str *out, const struct ld_result *res,
			     const struct str *payload);
int ld_worker_decode_result(const struct ipc_list *list, struct ld_result *res,
			    struct str *payload, const char **error_r);

/* ---- forwarding (forward.c) */

/* forward_read - (as the user) read the first of paths (absolute paths,
 * one per line) that exists, checked (regular file, owned by uid or
 * root, not writable by group or others); 1 with its text and its index
 * in *found, 0 none, -1 */
int forward_read(const char *paths, uid_t uid, struct str *text, size_t *found,
		 const char **error_r);

/* forward_path: one name a candidate may use. untrusted values come
 * from the address: one containing "/" or a newline, or that is "." or
 * "..", makes the candidate unusable. */
struct fp_attr {
    const char *name;
    const char *value;		/* NULL or "": no value */
    bool untrusted;
};

#define FP_PATH_MAX		4096	/* one expanded candidate */
#define FP_CANDIDATES_MAX	16

/* forward_path_expand - expand one forward_path element (text, len):
 * $name, ${name}, $(name), ${name?text}, ${name:text}, $$; names are
 * attrs, else main.cf parameters. 1 with the path in out and *used (bit
 * i: the value of attrs[i] went into it); 0: not a candidate (a plain
 * $name without a value, an unsafe untrusted value, not an absolute
 * path); -1 with *error_r (syntax, unknown name, too long) */
int forward_path_expand(const char *text, size_t len, const struct fp_attr *attrs, size_t n,
			struct str *out, unsigned *used, const char **error_r);
/* forward_path_candidates - expand every element of list (separated by
 * commas or white space outside brackets): the usable paths joined by
 * newlines, *count of them (at most max), used[i] for path i; 0, or -1
 * with *error_r */
int forward_path_candidates(const char *list, const struct fp_attr *attrs, size_t n,
			    struct str *paths, unsigned *used, size_t max, size_t *count,
			    const char **error_r);
/* ld_list_file_unsafe - a .forward or :include: file that must not be
 * obeyed: not a regular file, writable by group or others, or (owner
 * not (uid_t) -1) owned by neither owner nor root; true with the
 * reason in buf */
bool ld_list_file_unsafe(const struct stat *st, const char *path, uid_t owner, char *buf,
			 size_t size);
/* forward_submit - resubmit msg to cleanup for the addresses (n of
 * them), with "Delivered-To: delivered_to" prepended, from sender (the
 * message's own sender, or an owner- alias) */
void forward_submit(const struct ld_msg *msg, const char *sender, const char *delivered_to,
		    char **addresses, size_t n, const char *orcpt, const char *notify,
		    struct ld_result *res);

/* ---- one recipient (deliver.c) */

/* ld_deliver_init - look up the users and settings deliveries need */
void ld_deliver_init(void);
/* ld_deliver_recipient - deliver msg to one recipient; the merged result */
void ld_deliver_recipient(struct ld_msg *msg, const struct deliver_rcpt *rcpt, struct ld_result *res);
/* ld_deliver_verify - "verify": RCPT_STAT_* name in *status, dsn, reason */
void ld_deliver_verify(const char *address, long size, const char **status, struct ld_result *res);
/* ld_allowed_classes - parse allow_mail_to_* ("alias, forward,
 * include"); -1 on an unknown word */
int ld_allowed_classes(const char *value);
/* ld_propagate_classes - parse propagate_unmatched_extensions (alias,
 * forward, include; canonical and virtual accepted and ignored); -1 on
 * an unknown word */
int ld_propagate_classes(const char *value);
/* ld_propagate_extension - address with suffix ("+ext": delimiter and
 * extension) inserted before its last "@" into out; false (out = the
 * address) when the local part has an extension already or the result
 * would not fit */
bool ld_propagate_extension(const char *address, const char *suffix, struct str *out);

#define LD_CLASS_ALIAS		(1 << 0)
#define LD_CLASS_FORWARD	(1 << 1)
#define LD_CLASS_INCLUDE	(1 << 2)

#endif
