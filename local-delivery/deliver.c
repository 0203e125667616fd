/* deliver.c - one recipient, from address to mailbox.
 *
 *   virtual mailbox domain   virtual_mailbox_maps -> Maildir (or mbox)
 *                            under virtual_mailbox_base, as
 *                            virtual_mailbox_owner, with the quota
 *   local domain (or none)   alias_maps (user+ext, then user), else a
 *                            system user: the first file of forward_path
 *                            (~/.forward+ext, ~/.forward), else the
 *                            mailbox (home_mailbox, or mbox in
 *                            mail_spool_directory)
 *
 * An extension that the alias or .forward did not match (user+ext found
 * as user) is passed on to the list's address targets where
 * propagate_unmatched_extensions says so; copies resubmitted while alias
 * NAME is expanded are sent from owner-NAME@$myorigin if that alias
 * exists.
 *
 * Alias and .forward targets recurse: local and virtual addresses are
 * delivered here, other addresses are collected and resubmitted to
 * cleanup (one copy per forwarding address), commands and files are run
 * under the safety rules:
 *   - allow_mail_to_commands / allow_mail_to_files name the sources
 *     (alias, forward, include) whose |command and /file targets count;
 *   - targets from alias_maps run as the owner of the alias table, or
 *     default_privs when root owns it; from a .forward as its user; from
 *     an :include: file as that file's owner (unless root owns it, then
 *     with the rights of the list that named it);
 *   - nothing runs as root: uid 0 always becomes default_privs.
 * Every piece of work that touches a path the recipient (or the alias
 * owner) controls runs in a process that has fully dropped to that uid
 * before it opened anything: the user's long-lived worker (worker.c),
 * or for a command a child of its own (runas.c).
 *
 * Loops: a recipient that the message already names in a Delivered-To:
 * header bounces with 5.4.6; an address that comes back within its own
 * expansion bounces with 5.4.6; nesting is limited to DL_LEVEL_MAX. A
 * target that appears twice in one expansion is delivered once. An alias
 * that names itself ("bob: bob, alice") or a .forward that names its
 * user (or "\user") means that user's mailbox. */

/* System library. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "str.h"

/* Mail library. */
#include "address.h"
#include "config.h"
#include "log_delivery.h"
#include "mail_proto.h"
#include "resolve.h"
#include "table.h"

/* This program. */
#include "local.h"

#define DL_LEVEL_MAX	20		/* alias/forward/include nesting */
#define DL_TARGETS_MAX	1000		/* deliveries for one recipient */
#define DL_NAME_MAX	1024

/* Rights that commands and files run with. */
struct dl_privs {
    uid_t uid;
    gid_t gid;
    char user[256];
    char home[1024];
    char shell[256];
};

/* A copy that must leave through cleanup. */
struct dl_fwd {
    char *delivered_to;
    char *address;
    char *sender;		/* the envelope sender of the copy */
};

/* One recipient's delivery. */
struct dl_state {
    struct ld_msg *msg;
    const struct deliver_rcpt *rcpt;
    struct ld_result *result;
    char **seen;		/* targets done (duplicate filter) */
    size_t seen_n;
    const char *chain[DL_LEVEL_MAX + 2];	/* addresses being expanded */
    int chain_n;
    struct dl_fwd *fwd;
    size_t fwd_n;
    size_t work;		/* deliveries attempted */
    const char *sender;		/* sender of forwarded copies: the message's,
				 * or owner-NAME@$myorigin inside alias NAME */
};

static int dl_allow_commands, dl_allow_files, dl_propagate;
static struct dl_privs dl_default_privs;
static bool dl_vmail_ok;
static uid_t dl_vmail_uid;
static gid_t dl_vmail_gid;

/* ld_allowed_classes - "alias, forward, include" -> LD_CLASS_* */
static void dl_class_word(const char *item, void *ctx)
{
    int *mask = ctx;

    if (*mask < 0)
	return;
    if (strcasecmp(item, "alias") == 0)
	*mask |= LD_CLASS_ALIAS;
    else if (strcasecmp(item, "forward") == 0)
	*mask |= LD_CLASS_FORWARD;
    else if (strcasecmp(item, "include") == 0)
	*mask |= LD_CLASS_INCLUDE;
    else if (strcasecmp(item, "none") != 0)
	*mask = -1;
}

int ld_allowed_classes(const char *value)
{
    int mask = 0;

    config_split(value, dl_class_word, &mask);
    return mask;
}

/* dl_prop_word - config_split callback: also Postfix's canonical and
 * virtual, which are not local-delivery's business */
static void dl_prop_word(const char *item, void *ctx)
{
    if (strcasecmp(item, "canonical") == 0 || strcasecmp(item, "virtual") == 0)
	return;
    dl_class_word(item, ctx);
}

/* ld_propagate_classes - propagate_unmatched_extensions -> LD_CLASS_* */
int ld_propagate_classes(const char *value)
{
    int mask = 0;

    config_split(value, dl_prop_word, &mask);
    return mask;
}

/* ld_propagate_extension - insert suffix before the last "@" */
bool ld_propagate_extension(const char *address, const char *suffix, struct str *out)
{
    struct str *user = str_new(DL_NAME_MAX), *ext = str_new(DL_NAME_MAX);
    const char *at = address_at(address, strlen(address));
    size_t llen = at ? (size_t) (at - address) : strlen(address);
    bool done = false;

    if (str_try_setn(user, address, llen) && llen > 0 && *suffix
	&& !resolve_split_extension(str_cstr(user), user, ext)) {
	str_reset(out);
	done = str_try_append(out, address, llen) && str_try_appends(out, suffix)
	    && str_try_appends(out, at ? at : "");
    }
    if (!done && !str_try_set(out, address))
	str_reset(out);
    str_free(&user);
    str_free(&ext);
    return done;
}

/* dl_privs_from_pw - fill privs from a passwd entry; false if a field
 * is longer than privs can hold */
static STR_CHECKED bool dl_privs_from_pw(struct dl_privs *p, const struct passwd *pw)
{
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    return str_try_copy_out(p->user, sizeof(p->user), pw->pw_name)
	&& str_try_copy_out(p->home, sizeof(p->home), pw->pw_dir ? pw->pw_dir : "/")
	&& str_try_copy_out(p->shell, sizeof(p->shell), pw->pw_shell ? pw->pw_shell : "/bin/sh");
}

/* dl_privs_for_uid - the rights of uid (root becomes default_privs) */
static void dl_privs_for_uid(struct dl_privs *p, uid_t uid)
{
    struct passwd *pw;

    if (uid == 0 || (pw = getpwuid(uid)) == NULL || !dl_privs_from_pw(p, pw))
	*p = dl_default_privs;
}

/* dl_forward_attrs - the names forward_path may use, for one recipient */
static void dl_forward_attrs(struct fp_attr *a, const char *home, const char *user,
			     const char *ext, const char *delim, const char *domain,
			     const char *local)
{
    a[0] = (struct fp_attr) {"home", home, false};
    a[1] = (struct fp_attr) {"user", user, false};
    a[2] = (struct fp_attr) {"extension", ext, true};
    a[3] = (struct fp_attr) {"recipient_delimiter", delim, false};
    a[4] = (struct fp_attr) {"domain", domain, true};
    a[5] = (struct fp_attr) {"local", local, true};
}

#define DL_FP_ATTRS	6
#define DL_FP_EXTENSION	(1u << 2)	/* the bit of "extension" in used */

/* dl_forward_path_init - check forward_path once with sample values
 * (a RAW parameter: var_forward_path is the text as written, expanded per
 * recipient) */
static void dl_forward_path_init(void)
{
    struct fp_attr attrs[DL_FP_ATTRS];
    struct str *paths = str_new(FP_CANDIDATES_MAX * FP_PATH_MAX);
    unsigned used[FP_CANDIDATES_MAX];
    const char *err = "";
    size_t count;

    dl_forward_attrs(attrs, "/home/user", "user", "ext", "+", "example.org", "user+ext");
    if (forward_path_candidates(var_forward_path, attrs, DL_FP_ATTRS, paths, used,
				FP_CANDIDATES_MAX, &count, &err) < 0)
	msg_fatal("forward_path: %s: \"%s\"", err, var_forward_path);
    str_free(&paths);
}

/* ld_deliver_init - look up the users and settings deliveries need */
void ld_deliver_init(void)
{
    struct passwd *pw;

    if ((dl_allow_commands = ld_allowed_classes(var_allow_mail_to_commands)) < 0)
	msg_fatal("allow_mail_to_commands: expected alias, forward, include: \"%s\"",
		  var_allow_mail_to_commands);
    if ((dl_allow_files = ld_allowed_classes(var_allow_mail_to_files)) < 0)
	msg_fatal("allow_mail_to_files: expected alias, forward, include: \"%s\"",
		  var_allow_mail_to_files);
    if ((dl_propagate = ld_propagate_classes(var_propagate_unmatched_extensions)) < 0)
	msg_fatal("propagate_unmatched_extensions: expected alias, forward, include: \"%s\"",
		  var_propagate_unmatched_extensions);
    dl_forward_path_init();
    if (priv_is_root()) {
	if ((pw = getpwnam(var_default_privs)) == NULL)
	    msg_fatal("default_privs: unknown user \"%s\"", var_default_privs);
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
	    msg_fatal("default_privs: user \"%s\" has uid or gid 0", var_default_privs);
	if (!dl_privs_from_pw(&dl_default_privs, pw))
	    msg_fatal("default_privs: the passwd entry of \"%s\" is too long", var_default_privs);
	dl_vmail_ok = priv_lookup(var_virtual_mailbox_owner, &dl_vmail_uid, &dl_vmail_gid)
	    && dl_vmail_uid != 0 && dl_vmail_gid != 0;
	if (!dl_vmail_ok && *var_virtual_mailbox_domains)
	    msg_warn("virtual_mailbox_owner: unknown user or root: \"%s\"; virtual mailbox "
		     "deliveries are deferred", var_virtual_mailbox_owner);
    } else {
	/* The sandbox: everything runs as the invoking user. */
	if ((pw = getpwuid(getuid())) != NULL) {
	    if (!dl_privs_from_pw(&dl_default_privs, pw))
		msg_fatal("the passwd entry of uid %ld is too long", (long) getuid());
	} else {
	    dl_default_privs.uid = getuid();
	    dl_default_privs.gid = getgid();
	    str_copy_out_or_panic(dl_default_privs.user, sizeof(dl_default_privs.user), "nobody");
	    str_copy_out_or_panic(dl_default_privs.home, sizeof(dl_default_privs.home), "/");
	    str_copy_out_or_panic(dl_default_privs.shell, sizeof(dl_default_privs.shell), "/bin/sh");
	}
	dl_vmail_ok = true;
	dl_vmail_uid = getuid();
	dl_vmail_gid = getgid();
    }
    alias_init();
}

/* ---- the work that runs with dropped privileges */

/* dl_job_run - runas_fn: do one job (a command, in a forked child) */
static void dl_job_run(void *ctx, struct ld_result *res, struct str *payload)
{
    ld_job_run(ctx, res, payload);
}

/* dl_run - one job as uid/gid: a command in a child of its own (it
 * forks /bin/sh anyway), everything else in the user's worker */
static void dl_run(uid_t uid, gid_t gid, gid_t extra_gid, struct ld_job *job,
		   struct ld_result *res, struct str *payload)
{
    if (job->kind == LD_JOB_COMMAND)
	ld_run_as(uid, gid, extra_gid, dl_job_run, job, res, payload);
    else
	ld_worker_run(uid, gid, extra_gid, job, res, payload);
}

/* ---- bookkeeping */

/* dl_outcome - merge one result; nested failures name the address */
/* dl_log_target - one log line per final destination of an expanded
 * recipient (alias list, .forward, :include:), as Postfix's local does:
 * to=<target>, orig_to=<the queue recipient>; qmgr logs the queue
 * recipient's own line with the summary */
static void dl_log_target(const struct dl_state *st, const char *address,
			  const struct ld_result *one)
{
    struct delivery_outcome o = {
	.to = address,
	.orig_to = st->rcpt->address,
	.relay = "local",
	.dsn = one->dsn,
	.status = one->status == LD_SENT ? "sent" : one->status == LD_BOUNCE ? "bounced" : "deferred",
	.reason = one->reason,
    };
    struct delivery_times t = {0};
    struct timespec now;

    (void) clock_gettime(CLOCK_REALTIME, &now);
    t.arrival = (double) st->msg->arrival_time;
    t.finish = (double) now.tv_sec + now.tv_nsec / 1e9;
    log_delivery(st->msg->queue_id, &o, &t);
}

static void dl_outcome(struct dl_state *st, const char *address, int level,
		       const struct ld_result *one)
{
    struct ld_result tmp;

    if (level > 0 && one->status != LD_NONE)
	dl_log_target(st, address, one);

    if (level > 0 && one->status != LD_SENT && one->status != LD_NONE) {
	tmp = *one;
	ld_result_set(&tmp, one->status, one->dsn, "%s: %s", address, one->reason);
	ld_result_merge(st->result, &tmp);
	return;
    }
    ld_result_merge(st->result, one);
}

/* dl_fail - a failure outcome for address */
static void dl_fail(struct dl_state *st, const char *address, int level, int status,
		    const char *dsn, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void dl_fail(struct dl_state *st, const char *address, int level, int status,
		    const char *dsn, const char *fmt, ...)
{
    struct ld_result one;
    va_list ap;

    ld_result_init(&one);
    one.status = status;
    str_copy_out_or_panic(one.dsn, sizeof(one.dsn), dsn);
    va_start(ap, fmt);
    (void) vsnprintf(one.reason, sizeof(one.reason), fmt, ap);
    va_end(ap);
    dl_outcome(st, address, level, &one);
}

/* dl_seen - true if key was handled already in this expansion */
static bool dl_seen(struct dl_state *st, const char *key)
{
    size_t i;

    for (i = 0; i < st->seen_n; i++)
	if (strcmp(st->seen[i], key) == 0)
	    return true;
    st->seen = mem_realloc(st->seen, mem_size_mul(st->seen_n + 1, sizeof(st->seen[0])));
    st->seen[st->seen_n++] = mem_strdup(key);
    return false;
}

/* dl_in_chain - address is being expanded right now (a loop) */
static bool dl_in_chain(const struct dl_state *st, const char *address)
{
    int i;

    for (i = 0; i < st->chain_n; i++)
	if (strcmp(st->chain[i], address) == 0)
	    return true;
    return false;
}

/* dl_split_address - "local@domain" into its parts (last @); false if
 * a part does not fit */
static STR_CHECKED bool dl_split_address(const char *address, struct str *local,
					 struct str *domain)
{
    const char *at = address_at(address, strlen(address));

    str_reset(domain);
    if (at)
	return str_try_setn(local, address, (size_t) (at - address))
	    && str_try_set(domain, at + 1);
    return str_try_set(local, address);
}

/* dl_spec - the copy spec for a delivery to address */
static void dl_spec(struct copy_spec *spec, const struct ld_msg *msg, int flags,
		    const char *address)
{
    spec->flags = flags;
    spec->sender = msg->sender;
    spec->delivered_to = address;
    spec->now = time(NULL);
}

/* ---- mailboxes */

/* dl_spool_gid - the group that may create dotlocks in the mail spool
 * (looked at again at most every DL_SPOOL_RECHECK seconds) */
#define DL_SPOOL_RECHECK	60

static gid_t dl_spool_gid(void)
{
    static time_t checked;
    static gid_t gid = (gid_t) -1;
    time_t now = time(NULL);
    struct stat st;

    if (checked != 0 && now >= checked && now - checked < DL_SPOOL_RECHECK)
	return gid;
    checked = now;
    if (stat(var_mail_spool_directory, &st) == 0 && (st.st_mode & S_IWGRP) && st.st_gid != 0)
	gid = st.st_gid;
    else
	gid = (gid_t) -1;
    return gid;
}

/* dl_mailbox - a system user's own mailbox */
static void dl_mailbox(struct dl_state *st, const struct dl_privs *user, const char *address,
		       int level)
{
    struct str *path = str_new(8192);
    struct ld_result one;
    struct ld_job job;
    struct dl_privs p = *user;
    gid_t extra = (gid_t) -1;
    size_t hlen = strlen(var_home_mailbox);

    if (p.uid == 0) {
	/* root's mail is never written with root's rights */
	p.uid = dl_default_privs.uid;
	p.gid = dl_default_privs.gid;
    }
    memset(&job, 0, sizeof(job));
    job.msg = st->msg;
    if (hlen == 0) {
	if (!str_try_printf(path, "%s/%s", var_mail_spool_directory, user->user))
	    goto path_too_long;
	job.kind = LD_JOB_MBOX;
	job.mbox.create = true;
	job.mbox.dotlock_required = true;
	job.mbox.check_owner = true;
	job.mbox.size_limit = var_mailbox_size_limit;
	dl_spec(&job.spec, st->msg, COPY_MBOX, address);
	extra = dl_spool_gid();
	if (extra == p.gid)
	    extra = (gid_t) -1;
    } else if (var_home_mailbox[0] == '/' || strstr(var_home_mailbox, "..") != NULL) {
	dl_fail(st, address, level, LD_DEFER, "4.3.5", "home_mailbox must be a relative path "
		"without \"..\": \"%s\"", var_home_mailbox);
	goto out;
    } else {
	if (!str_try_printf(path, "%s/%s", user->home, var_home_mailbox))
	    goto path_too_long;
	if (var_home_mailbox[hlen - 1] == '/') {
	    job.kind = LD_JOB_MAILDIR;
	    dl_spec(&job.spec, st->msg, COPY_MAILDIR, address);
	} else {
	    job.kind = LD_JOB_MBOX;
	    job.mbox.create = true;
	    job.mbox.check_owner = true;
	    job.mbox.size_limit = var_mailbox_size_limit;
	    dl_spec(&job.spec, st->msg, COPY_MBOX, address);
	}
    }
    job.path = str_cstr(path);
    st->work++;
    dl_run(p.uid, p.gid, extra, &job, &one, NULL);
    dl_outcome(st, address, level, &one);
    goto out;
  path_too_long:
    dl_fail(st, address, level, LD_DEFER, "4.3.5", "mailbox path for %s is longer than %zu bytes",
	    address, path->max);
  out:
    str_free(&path);
}

/* dl_virtual_path - mbox as a path: itself if absolute, else under
 * virtual_mailbox_base; false if it does not fit in path */
static bool dl_virtual_path(struct str *path, const struct str *mbox)
{
    if (str_cstr(mbox)[0] == '/')
	return str_try_set(path, str_cstr(mbox));
    return str_try_printf(path, "%s/%s", var_virtual_mailbox_base, str_cstr(mbox));
}

/* dl_virtual - a virtual mailbox */
static void dl_virtual(struct dl_state *st, const char *address, int level)
{
    struct str *value = str_new(TABLE_ENTRY_MAX), *mbox = str_new(8192), *path = str_new(8192);
    const char *err = "";
    struct ld_result one;
    struct ld_job job;
    long quota;
    int rc;

    if ((rc = resolve_lookup_virtual_mailbox(address, value, &err)) < 0) {
	dl_fail(st, address, level, LD_DEFER, "4.3.0", "virtual_mailbox_maps lookup: %s", err);
	goto out;
    }
    if (rc == 0) {
	dl_fail(st, address, level, LD_BOUNCE, "5.1.1", "unknown user: \"%s\"", address);
	goto out;
    }
    if (quota_parse_mailbox(str_cstr(value), mbox, &quota, &err) < 0) {
	dl_fail(st, address, level, LD_DEFER, "4.3.5", "virtual_mailbox_maps entry for %s: %s",
		address, err);
	goto out;
    }
    if (quota < 0)
	quota = var_virtual_mailbox_limit;
    if (strcmp(str_cstr(mbox), "..") == 0 || strncmp(str_cstr(mbox), "../", 3) == 0
	|| strstr(str_cstr(mbox), "/../") != NULL
	|| (str_len(mbox) >= 3 && strcmp(str_cstr(mbox) + str_len(mbox) - 3, "/..") == 0)) {
	dl_fail(st, address, level, LD_DEFER, "4.3.5", "unsafe mailbox path \"%s\" for %s",
		str_cstr(mbox), address);
	goto out;
    }
    if (str_cstr(mbox)[0] != '/' && *var_virtual_mailbox_base == 0) {
	dl_fail(st, address, level, LD_DEFER, "4.3.5", "relative mailbox path \"%s\" for %s, "
		"but virtual_mailbox_base is not set", str_cstr(mbox), address);
	goto out;
    }
    if (!dl_virtual_path(path, mbox)) {
	dl_fail(st, address, level, LD_DEFER, "4.3.5", "mailbox path for %s is longer than %zu "
		"bytes", address, path->max);
	goto out;
    }
    if (!dl_vmail_ok) {
	dl_fail(st, address, level, LD_DEFER, "4.3.5", "virtual_mailbox_owner \"%s\" is not "
		"a usable user", var_virtual_mailbox_owner);
	goto out;
    }
    memset(&job, 0, sizeof(job));
    job.msg = st->msg;
    job.path = str_cstr(path);
    job.quota = quota;
    if (str_cstr(path)[str_len(path) - 1] == '/') {
	job.kind = LD_JOB_MAILDIR;
	dl_spec(&job.spec, st->msg, COPY_MAILDIR, address);
    } else {
	job.kind = LD_JOB_MBOX;
	job.mbox.create = true;
	job.mbox.create_parent = true;
	job.mbox.check_owner = true;
	job.mbox.size_limit = var_mailbox_size_limit;
	job.mbox.quota = quota;
	dl_spec(&job.spec, st->msg, COPY_MBOX, address);
    }
    st->work++;
    dl_run(dl_vmail_uid, dl_vmail_gid, (gid_t) -1, &job, &one, NULL);
    dl_outcome(st, address, level, &one);
  out:
    str_free(&value);
    str_free(&mbox);
    str_free(&path);
}

/* ---- expansion */

static void dl_address(struct dl_state *st, const char *address, const char *parent, int level);
static void dl_local(struct dl_state *st, const char *address, int level, bool no_alias,
		     bool no_forward);

/* Where a target list came from. */
struct dl_source {
    int class;			/* LD_CLASS_* */
    const struct dl_privs *privs;	/* rights for commands and files */
    const char *address;	/* the address being expanded */
    const char *name;		/* alias name or user (for self-reference) */
    const char *domain;		/* to qualify bare names */
    const char *ext;		/* the address extension */
    const char *unmatched;	/* delimiter + extension that the lookup did
				 * not match (user+ext found as user), or "" */
};

/* dl_command - one |command target */
static void dl_command(struct dl_state *st, const struct dl_source *src, const char *command,
		       int level)
{
    struct str *local = str_new(DL_NAME_MAX), *domain = str_new(DL_NAME_MAX);
    struct ld_result one;
    struct ld_job job;

    memset(&job, 0, sizeof(job));
    job.kind = LD_JOB_COMMAND;
    job.msg = st->msg;
    job.command = command;
    dl_spec(&job.spec, st->msg, COPY_COMMAND, src->address);
    if (!dl_split_address(src->address, local, domain)) {
	dl_fail(st, src->address, level, LD_BOUNCE, "5.1.3", "address longer than %zu bytes",
		local->max);
	str_free(&local);
	str_free(&domain);
	return;
    }
    job.env.sender = st->msg->sender;
    job.env.recipient = src->address;
    job.env.local = str_cstr(local);
    job.env.domain = str_cstr(domain);
    job.env.extension = src->ext ? src->ext : "";
    job.env.user = src->privs->user;
    job.env.home = src->privs->home;
    job.env.shell = src->privs->shell;
    st->work++;
    dl_run(src->privs->uid, src->privs->gid, (gid_t) -1, &job, &one, NULL);
    dl_outcome(st, src->address, level, &one);
    str_free(&local);
    str_free(&domain);
}

/* dl_file - one /file target */
static void dl_file(struct dl_state *st, const struct dl_source *src, const char *path, int level)
{
    struct ld_result one;
    struct ld_job job;

    memset(&job, 0, sizeof(job));
    job.kind = LD_JOB_FILE;
    job.msg = st->msg;
    job.path = path;
    dl_spec(&job.spec, st->msg, COPY_MBOX, src->address);
    st->work++;
    dl_run(src->privs->uid, src->privs->gid, (gid_t) -1, &job, &one, NULL);
    dl_outcome(st, src->address, level, &one);
}

static void dl_expand(struct dl_state *st, const struct dl_source *src, const char *text,
		      size_t len, int level);

/* dl_include - one :include: target */
static void dl_include(struct dl_state *st, const struct dl_source *src, const char *path,
		       int level)
{
    struct str *payload = str_new(TABLE_ENTRY_MAX + 64);
    struct dl_source inc = *src;
    struct dl_privs privs;
    struct ld_result one;
    struct ld_job job;
    const char *nl;
    char num[32];
    long owner;

    memset(&job, 0, sizeof(job));
    job.kind = LD_JOB_INCLUDE_FILE;
    job.path = path;
    dl_run(src->privs->uid, src->privs->gid, (gid_t) -1, &job, &one, payload);
    if (one.status != LD_SENT) {
	dl_outcome(st, src->address, level, &one);
	goto out;
    }
    nl = strchr(str_cstr(payload), '\n');
    if (nl == NULL || (size_t) (nl - str_cstr(payload)) >= sizeof(num)) {
	dl_fail(st, src->address, level, LD_DEFER, "4.3.0", "include file %s: bad answer", path);
	goto out;
    }
    memcpy(num, str_cstr(payload), (size_t) (nl - str_cstr(payload)));
    num[nl - str_cstr(payload)] = 0;
    if (!parse_long(num, &owner) || owner < 0) {
	dl_fail(st, src->address, level, LD_DEFER, "4.3.0", "include file %s: bad answer", path);
	goto out;
    }
    /* Targets in the file run as its owner, unless root owns it. */
    if (owner != 0 && (uid_t) owner != src->privs->uid) {
	dl_privs_for_uid(&privs, (uid_t) owner);
	inc.privs = &privs;
    }
    inc.class = LD_CLASS_INCLUDE;
    dl_expand(st, &inc, nl + 1, str_len(payload) - (size_t) (nl + 1 - str_cstr(payload)), level + 1);
  out:
    str_free(&payload);
}

/* dl_same_user - is target (an address) the name this list belongs to? */
static bool dl_same_user(const struct dl_source *src, const char *target)
{
    const char *at = address_at(target, strlen(target));
    size_t nlen = strlen(src->name);

    if (at == NULL)
	return strcasecmp(target, src->name) == 0;
    if ((size_t) (at - target) != nlen || strncasecmp(target, src->name, nlen) != 0)
	return false;
    return resolve_domain_is_local(at + 1);
}

/* dl_target_address - addr = text, with "@domain" when it has none,
 * lower case; false if it does not fit */
static bool dl_target_address(struct str *addr, const char *text, const char *domain)
{
    if (!str_try_set(addr, text))
	return false;
    if (address_at(text, strlen(text)) == NULL && *domain && !str_try_appendf(addr, "@%s", domain))
	return false;
    str_lower(addr);
    return true;
}

/* dl_expand - deliver every target of a list */
static void dl_expand(struct dl_state *st, const struct dl_source *src, const char *text,
		      size_t len, int level)
{
    struct alias_list list;
    struct str *key = str_new(STR_MAX_DEFAULT), *addr = str_new(DL_NAME_MAX * 2);
    const char *err = "";
    size_t i;

    alias_list_init(&list);
    if (alias_split(text, len, &list, &err) < 0) {
	dl_fail(st, src->address, level, LD_DEFER, "4.3.5", "%s: syntax error: %s",
		src->class == LD_CLASS_FORWARD ? ".forward" : src->class == LD_CLASS_INCLUDE
		? ":include: file" : "alias", err);
	goto out;
    }
    if (list.n == 0) {
	dl_fail(st, src->address, level, LD_BOUNCE, "5.3.0", "%s has no targets",
		src->class == LD_CLASS_FORWARD ? ".forward" : "alias");
	goto out;
    }
    for (i = 0; i < list.n; i++) {
	const struct alias_target *t = &list.v[i];

	if (st->work >= DL_TARGETS_MAX) {
	    dl_fail(st, src->address, level, LD_BOUNCE, "5.3.0",
		    "too many deliveries for one recipient (limit %d)", DL_TARGETS_MAX);
	    break;
	}
	switch (t->type) {
	case TARGET_COMMAND:
	    if (!(dl_allow_commands & src->class)) {
		dl_fail(st, src->address, level, LD_BOUNCE, "5.7.1", "mail to command is "
			"restricted (allow_mail_to_commands)");
		break;
	    }
	    str_printf_or_panic(key, "|%s\n%ld", t->text, (long) src->privs->uid);
	    if (!dl_seen(st, str_cstr(key)))
		dl_command(st, src, t->text, level);
	    break;
	case TARGET_FILE:
	    if (!(dl_allow_files & src->class)) {
		dl_fail(st, src->address, level, LD_BOUNCE, "5.7.1", "mail to file is "
			"restricted (allow_mail_to_files)");
		break;
	    }
	    str_printf_or_panic(key, "/%s", t->text);
	    if (!dl_seen(st, str_cstr(key)))
		dl_file(st, src, t->text, level);
	    break;
	case TARGET_INCLUDE:
	    if (level >= DL_LEVEL_MAX) {
		dl_fail(st, src->address, level, LD_BOUNCE, "5.4.6", "mail forwarding loop: "
			"more than %d levels of expansion", DL_LEVEL_MAX);
		break;
	    }
	    str_printf_or_panic(key, ":include:%s", t->text);
	    if (!dl_seen(st, str_cstr(key)))
		dl_include(st, src, t->text, level);
	    break;
	case TARGET_MAILBOX:
	    if (!dl_target_address(addr, t->text, src->domain))
		goto target_too_long;
	    str_printf_or_panic(key, "\\%s", str_cstr(addr));
	    if (!dl_seen(st, str_cstr(key)))
		dl_local(st, str_cstr(addr), level + 1, true, true);
	    break;
	case TARGET_ADDRESS:
	    if (!dl_target_address(addr, t->text, src->domain))
		goto target_too_long;
	    if (src->class != LD_CLASS_INCLUDE && dl_same_user(src, t->text)) {
		/* "bob: bob, ..." or bob's .forward naming bob: the mailbox */
		str_printf_or_panic(key, "\\%s", str_cstr(addr));
		if (!dl_seen(st, str_cstr(key)))
		    dl_local(st, str_cstr(addr), level + 1, true, true);
		break;
	    }
	    if (*src->unmatched && (dl_propagate & src->class)) {
		(void) ld_propagate_extension(str_cstr(addr), src->unmatched, key);
		if (!str_try_set(addr, str_cstr(key)))
		    goto target_too_long;
	    }
	    dl_address(st, str_cstr(addr), src->address, level + 1);
	    break;
	}
	continue;
      target_too_long:
	dl_fail(st, src->address, level, LD_DEFER, "4.3.5", "%s: target address longer than "
		"%zu bytes", src->class == LD_CLASS_FORWARD ? ".forward" : src->class
		== LD_CLASS_INCLUDE ? ":include: file" : "alias", addr->max);
    }
  out:
    alias_list_fini(&list);
    str_free(&key);
    str_free(&addr);
}

/* dl_forward_later - remember a copy for cleanup */
static void dl_forward_later(struct dl_state *st, const char *address, const char *parent)
{
    st->fwd = mem_realloc(st->fwd, mem_size_mul(st->fwd_n + 1, sizeof(st->fwd[0])));
    st->fwd[st->fwd_n].address = mem_strdup(address);
    st->fwd[st->fwd_n].delivered_to = mem_strdup(parent);
    st->fwd[st->fwd_n].sender = mem_strdup(st->sender);
    st->fwd_n++;
}

/* dl_owner_sender - if alias name has an "owner-name" alias, the sender
 * for copies of its expansion (owner-name@$myorigin) in out: 1; 0 none
 * (or a null sender, which stays null); -1 with *error_r */
static int dl_owner_sender(const struct dl_state *st, const char *name, struct str *out,
			   const char **error_r)
{
    struct str *key = str_new(DL_NAME_MAX + 8), *value = str_new(TABLE_ENTRY_MAX);
    uid_t owner;
    int rc = 0;

    if (*st->msg->sender == 0 || !str_try_printf(key, "owner-%s", name))
	goto out;
    if ((rc = alias_lookup_exact(str_cstr(key), value, &owner, error_r)) <= 0)
	goto out;
    if (!(*var_myorigin ? str_try_printf(out, "%s@%s", str_cstr(key), var_myorigin)
	  : str_try_set(out, str_cstr(key)))) {
	*error_r = "the owner- address is too long";
	rc = -1;
	goto out;
    }
    str_lower(out);
  out:
    str_free(&key);
    str_free(&value);
    return rc;
}

/* dl_local - a local address: alias, .forward, mailbox */
static void dl_local(struct dl_state *st, const char *address, int level, bool no_alias,
		     bool no_forward)
{
    struct str *local = str_new(DL_NAME_MAX), *domain = str_new(DL_NAME_MAX);
    struct str *user = str_new(DL_NAME_MAX), *ext = str_new(DL_NAME_MAX);
    struct str *value = str_new(TABLE_ENTRY_MAX), *osender = str_new(DL_NAME_MAX * 2);
    struct str *suffix = str_new(DL_NAME_MAX + 2);
    struct dl_privs privs;
    struct dl_source src;
    struct ld_result one;
    struct ld_job job;
    struct passwd *pw;
    const char *err = "", *saved_sender;
    bool stripped = false;
    uid_t owner = 0;
    int rc;

    if (!dl_split_address(address, local, domain)) {
	dl_fail(st, address, level, LD_BOUNCE, "5.1.3", "address longer than %zu bytes",
		local->max);
	goto out;
    }
    if (!resolve_split_extension(str_cstr(local), user, ext)) {
	str_set_or_panic(user, str_cstr(local));
	str_reset(ext);
    }
    /* "+ext" as it was written: the delimiter that was found, the extension */
    if (str_len(ext) > 0)
	str_set_or_panic(suffix, str_cstr(local) + str_len(user));
    if (st->chain_n >= (int) (sizeof(st->chain) / sizeof(st->chain[0]))) {
	dl_fail(st, address, level, LD_BOUNCE, "5.4.6", "mail forwarding loop: more than %d "
		"levels of aliases or forwarding", DL_LEVEL_MAX);
	str_free(&local);
	str_free(&domain);
	str_free(&user);
	str_free(&ext);
	str_free(&value);
	str_free(&osender);
	str_free(&suffix);
	return;
    }
    st->chain[st->chain_n++] = address;

    /* 1. alias_maps */
    if (!no_alias) {
	if ((rc = alias_lookup(str_cstr(local), value, &owner, &stripped, &err)) < 0) {
	    dl_fail(st, address, level, LD_DEFER, "4.3.0", "alias lookup: %s", err);
	    goto out;
	}
	if (rc > 0) {
	    /* owner-NAME: copies of this expansion go out from it */
	    if ((rc = dl_owner_sender(st, stripped ? str_cstr(user) : str_cstr(local), osender,
				      &err)) < 0) {
		dl_fail(st, address, level, LD_DEFER, "4.3.0", "alias lookup: %s", err);
		goto out;
	    }
	    saved_sender = st->sender;
	    if (rc > 0)
		st->sender = str_cstr(osender);
	    dl_privs_for_uid(&privs, owner);
	    src.class = LD_CLASS_ALIAS;
	    src.privs = &privs;
	    src.address = address;
	    src.name = str_cstr(user);
	    src.domain = str_cstr(domain);
	    src.ext = str_cstr(ext);
	    src.unmatched = stripped ? str_cstr(suffix) : "";
	    dl_expand(st, &src, str_cstr(value), str_len(value), level);
	    st->sender = saved_sender;
	    goto out;
	}
    }

    /* 2. a system user */
    errno = 0;
    if ((pw = getpwnam(str_cstr(user))) == NULL) {
	if (errno != 0 && errno != ENOENT && errno != ESRCH)
	    dl_fail(st, address, level, LD_DEFER, "4.3.0", "user lookup \"%s\": %s",
		    str_cstr(user), strerror(errno));
	else
	    dl_fail(st, address, level, LD_BOUNCE, "5.1.1", "unknown user: \"%s\"",
		    str_cstr(user));
	goto out;
    }
    if (!dl_privs_from_pw(&privs, pw)) {
	dl_fail(st, address, level, LD_DEFER, "4.3.0", "the passwd entry of \"%s\" is too long",
		str_cstr(user));
	goto out;
    }

    /* 3. ~/.forward: the first candidate of forward_path (read as the
     * user; never for root) */
    if (!no_forward && privs.uid != 0) {
	struct str *text = str_new(64 * 1024 + 1);
	struct str *paths = str_new(FP_CANDIDATES_MAX * FP_PATH_MAX);
	struct fp_attr attrs[DL_FP_ATTRS];
	unsigned used[FP_CANDIDATES_MAX];
	size_t count = 0;
	long found;
	char delim[2];

	delim[0] = str_len(ext) || str_len(user) < str_len(local)
	    ? str_cstr(local)[str_len(user)] : 0;
	delim[1] = 0;
	dl_forward_attrs(attrs, privs.home, privs.user, str_cstr(ext), delim, str_cstr(domain),
			 str_cstr(local));
	if (forward_path_candidates(var_forward_path, attrs, DL_FP_ATTRS, paths, used,
				    FP_CANDIDATES_MAX, &count, &err) < 0) {
	    dl_fail(st, address, level, LD_DEFER, "4.3.5", "forward_path: %s", err);
	    str_free(&text);
	    str_free(&paths);
	    goto out;
	}
	if (count > 0) {
	    memset(&job, 0, sizeof(job));
	    job.kind = LD_JOB_FORWARD_FILE;
	    job.path = str_cstr(paths);
	    job.uid = privs.uid;
	    dl_run(privs.uid, privs.gid, (gid_t) -1, &job, &one, text);
	    if (one.status != LD_SENT) {
		dl_outcome(st, address, level, &one);
		str_free(&text);
		str_free(&paths);
		goto out;
	    }
	    if (strncmp(one.reason, "found ", 6) == 0) {
		if (!parse_long(one.reason + 6, &found) || found < 0 || (size_t) found >= count) {
		    dl_fail(st, address, level, LD_DEFER, "4.3.0", ".forward: bad answer");
		    str_free(&text);
		    str_free(&paths);
		    goto out;
		}
		src.class = LD_CLASS_FORWARD;
		src.privs = &privs;
		src.address = address;
		src.name = str_cstr(user);
		src.domain = str_cstr(domain);
		src.ext = str_cstr(ext);
		/* .forward (not .forward+ext) for user+ext: ext unmatched */
		src.unmatched = (used[found] & DL_FP_EXTENSION) ? "" : str_cstr(suffix);
		dl_expand(st, &src, str_cstr(text), str_len(text), level);
		str_free(&text);
		str_free(&paths);
		goto out;
	    }
	}
	str_free(&text);
	str_free(&paths);
    }

    /* 4. the mailbox */
    dl_mailbox(st, &privs, address, level);
  out:
    st->chain_n--;
    str_free(&local);
    str_free(&domain);
    str_free(&user);
    str_free(&ext);
    str_free(&value);
    str_free(&osender);
    str_free(&suffix);
}

/* dl_address - any address reached by delivery or expansion */
static void dl_address(struct dl_state *st, const char *address, const char *parent, int level)
{
    const char *at = address_at(address, strlen(address));
    const char *domain = at ? at + 1 : "";

    if (level > DL_LEVEL_MAX) {
	dl_fail(st, address, level, LD_BOUNCE, "5.4.6", "mail forwarding loop: more than %d "
		"levels of aliases or forwarding", DL_LEVEL_MAX);
	return;
    }
    if (content_has_delivered_to(st->msg, address)) {
	dl_fail(st, address, level, LD_BOUNCE, "5.4.6", "mail forwarding loop for %s", address);
	return;
    }
    if (dl_in_chain(st, address)) {
	dl_fail(st, address, level, LD_BOUNCE, "5.4.6", "mail forwarding loop: %s expands "
		"to itself", address);
	return;
    }
    if (dl_seen(st, address))
	return;				/* named twice: delivered once */
    if (*domain && resolve_domain_is_virtual_mailbox(domain)) {
	dl_virtual(st, address, level);
	return;
    }
    if (level == 0 || *domain == 0 || resolve_domain_is_local(domain)) {
	/* qmgr sent it here: local, whatever its domain */
	dl_local(st, address, level, false, false);
	return;
    }
    dl_forward_later(st, address, parent);
}

/* dl_same_batch - do two forwarded copies go out as one message? */
static bool dl_same_batch(const struct dl_fwd *a, const struct dl_fwd *b)
{
    return a->delivered_to && b->delivered_to && strcmp(a->delivered_to, b->delivered_to) == 0
	&& strcmp(a->sender, b->sender) == 0;
}

/* ld_deliver_recipient - deliver msg to one recipient */
void ld_deliver_recipient(struct ld_msg *msg, const struct deliver_rcpt *rcpt, struct ld_result *res)
{
    struct dl_state st;
    struct str *addr = str_new(DL_NAME_MAX * 2);
    struct ld_result one;
    size_t i, j, n;
    char **batch;

    memset(&st, 0, sizeof(st));
    st.msg = msg;
    st.rcpt = rcpt;
    st.result = res;
    st.sender = msg->sender;
    ld_result_init(res);
    if (!str_try_set(addr, rcpt->address) || str_len(addr) == 0) {
	ld_result_set(res, LD_BOUNCE, "5.1.3", "bad recipient address syntax");
	goto out;
    }
    str_lower(addr);
    dl_address(&st, str_cstr(addr), str_cstr(addr), 0);

    /* Copies for other hosts, one message per forwarding address and
     * envelope sender. */
    batch = mem_alloc_array(st.fwd_n ? st.fwd_n : 1, sizeof(*batch));
    for (i = 0; i < st.fwd_n; i++) {
	if (st.fwd[i].delivered_to == NULL)
	    continue;
	n = 0;
	for (j = i; j < st.fwd_n; j++) {
	    if (dl_same_batch(&st.fwd[i], &st.fwd[j]))
		batch[n++] = st.fwd[j].address;
	}
	ld_result_init(&one);
	forward_submit(msg, st.fwd[i].sender, st.fwd[i].delivered_to, batch, n, rcpt->orcpt,
		       rcpt->notify, &one);
	dl_outcome(&st, st.fwd[i].delivered_to, 0, &one);
	for (j = st.fwd_n; j-- > i;) {
	    if (j != i && dl_same_batch(&st.fwd[i], &st.fwd[j]))
		mem_free(&st.fwd[j].delivered_to);
	}
	mem_free(&st.fwd[i].delivered_to);
    }
    mem_free(&batch);
    if (res->status == LD_NONE)
	ld_result_set(res, LD_BOUNCE, "5.3.0", "no deliverable destination for %s",
		      str_cstr(addr));
    else if (res->status == LD_SENT && res->sent_count > 1)
	(void) fmt_buf_cut(res->reason, sizeof(res->reason),
			   "delivered to %u destinations (one log line each, orig_to=<%s>)",
			   res->sent_count, str_cstr(addr));  out:
    for (i = 0; i < st.seen_n; i++)
	mem_free(&st.seen[i]);
    mem_free(&st.seen);
    for (i = 0; i < st.fwd_n; i++) {
	mem_free(&st.fwd[i].address);
	mem_free(&st.fwd[i].delivered_to);
	mem_free(&st.fwd[i].sender);
    }
    mem_free(&st.fwd);
    str_free(&addr);
}

/* ld_deliver_verify - is this recipient deliverable (and not over quota)? */
void ld_deliver_verify(const char *address, long size, const char **status, struct ld_result *res)
{
    struct str *addr = str_new(DL_NAME_MAX * 2), *value = str_new(TABLE_ENTRY_MAX);
    struct str *mbox = str_new(8192), *path = str_new(8192), *payload = str_new(64);
    const char *at, *err = "", *why = "";
    struct ld_result one;
    struct ld_job job;
    long quota, used;
    int rc;

    ld_result_init(res);
    if (!str_try_set(addr, address) || str_len(addr) == 0) {
	*status = RCPT_STAT_UNKNOWN;
	ld_result_set(res, LD_BOUNCE, "5.1.3", "bad recipient address syntax");
	goto out;
    }
    str_lower(addr);
    at = address_at(str_cstr(addr), str_len(addr));
    if (at && resolve_domain_is_virtual_mailbox(at + 1)) {
	if ((rc = resolve_lookup_virtual_mailbox(str_cstr(addr), value, &err)) < 0) {
	    *status = RCPT_STAT_DEFER;
	    ld_result_set(res, LD_DEFER, "4.3.0", "virtual_mailbox_maps lookup: %s", err);
	    goto out;
	}
	if (rc > 0 && quota_parse_mailbox(str_cstr(value), mbox, &quota, &err) == 0) {
	    if (quota < 0)
		quota = var_virtual_mailbox_limit;
	    if (quota > 0 && dl_vmail_ok
		&& (str_cstr(mbox)[0] == '/' || *var_virtual_mailbox_base != 0)
		&& strstr(str_cstr(mbox), "..") == NULL && dl_virtual_path(path, mbox)) {
		memset(&job, 0, sizeof(job));
		job.kind = LD_JOB_USAGE;
		job.path = str_cstr(path);
		job.quota = quota;
		dl_run(dl_vmail_uid, dl_vmail_gid, (gid_t) -1, &job, &one, payload);
		if (one.status == LD_SENT && parse_long(str_cstr(payload), &used)
		    && (used >= quota || quota_exceeded(used, size, quota))) {
		    *status = RCPT_STAT_OVER_QUOTA;
		    ld_result_set(res, LD_BOUNCE, "5.2.2", "mailbox full: %ld of %ld bytes used",
				  used, quota);
		    goto out;
		}
		if (one.status != LD_SENT)
		    msg_warn("verify %s: %s", str_cstr(addr), one.reason);
	    }
	    *status = RCPT_STAT_OK;
	    ld_result_set(res, LD_SENT, "2.1.5", "recipient ok");
	    goto out;
	}
    }
    switch (resolve_recipient(str_cstr(addr), &why)) {
    case RESOLVE_KNOWN:
	*status = RCPT_STAT_OK;
	ld_result_set(res, LD_SENT, "2.1.5", "recipient ok");
	break;
    case RESOLVE_UNKNOWN:
	*status = RCPT_STAT_UNKNOWN;
	ld_result_set(res, LD_BOUNCE, "5.1.1", "%s", why);
	break;
    default:
	*status = RCPT_STAT_DEFER;
	ld_result_set(res, LD_DEFER, "4.3.0", "%s", why);
	break;
    }
  out:
    str_free(&addr);
    str_free(&value);
    str_free(&mbox);
    str_free(&path);
    str_free(&payload);
}
