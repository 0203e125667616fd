/* manifest.c - the table of queue and data directories, with a checker
 * that reports every difference and repairs what is safe (see manifest.h).
 *
 * The layout follows Postfix's postfix-files in spirit: maildrop is
 * writable but not readable by the setgid group (so one local user cannot
 * list or read another's drop files), public is reachable through the
 * group, private is for the mail owner alone. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "msg.h"
#include "str.h"

/* Mail library. */
#include "manifest.h"

#define Q MANIFEST_QUEUE
#define D MANIFEST_DATA
#define ROOT MANIFEST_ROOT
#define OWNER MANIFEST_MAIL_OWNER
#define ANY MANIFEST_ANY_GROUP
#define SGID MANIFEST_SETGID_GROUP

const struct manifest_entry manifest_table[] = {
    {Q, "", 0755, ROOT, ANY, "the queue root; every daemon's working directory"},
    {Q, "maildrop", 01730, OWNER, SGID, "files dropped by postdrop, picked up by pickup"},
    {Q, "incoming", 0700, OWNER, ANY, "queue files being written or not yet seen by qmgr"},
    {Q, "active", 0700, OWNER, ANY, "queue files qmgr is delivering"},
    {Q, "deferred", 0700, OWNER, ANY, "queue files waiting for their next attempt"},
    {Q, "hold", 0700, OWNER, ANY, "queue files on hold until released"},
    {Q, "corrupt", 0700, OWNER, ANY, "queue files that failed to parse"},
    {Q, "defer", 0700, OWNER, ANY, "per-message logs of deferred recipients"},
    {Q, "bounce", 0700, OWNER, ANY, "per-message logs of bounced recipients"},
    {Q, "private", 0700, OWNER, ANY, "sockets of internal services"},
    {Q, "public", 0710, OWNER, SGID, "sockets that postdrop and sendmail may reach"},
    {Q, "submit", 0711, OWNER, ANY, "the socket of submit, which every local user may reach"},
    {Q, "pid", 0755, ROOT, ANY, "master.pid, locked for the master's life"},
    {D, "", 0700, OWNER, ANY, "state that is not queue (caches, TLS session data)"},
};
const size_t manifest_count = sizeof(manifest_table) / sizeof(manifest_table[0]);

#undef Q
#undef D
#undef ROOT
#undef OWNER
#undef ANY
#undef SGID

const struct manifest_program manifest_programs[] = {
    {"postdrop", 02755, "writes one message into maildrop/ for sendmail"},
};
const size_t manifest_program_count = sizeof(manifest_programs) / sizeof(manifest_programs[0]);

/* manifest_check_programs - the set-gid programs (see manifest.h) */
int manifest_check_programs(const char *dir, const struct manifest_ids *ids,
			    int flags, manifest_report_fn report, void *ctx)
{
    char path[4096], text[4300];
    int problems = 0;

    /* Only a real installation checked by root: the sandbox has one user. */
    if (!ids->can_chown || ids->owner_uid == ids->root_uid)
	return 0;
    for (size_t i = 0; i < manifest_program_count; i++) {
	const struct manifest_program *p = &manifest_programs[i];
	struct stat st;
	int fd;

	if (!fmt_try_buf(path, sizeof(path), "%s/%s", dir, p->name)) {
	    report(MANIFEST_ERROR, "daemon_directory: path too long", ctx);
	    problems++;
	    continue;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0
	    && errno == ENOENT) {
	    fmt_buf_cut(text, sizeof(text), "%s: %s (%s; local submission with sendmail "
			   "will fail)", path, strerror(errno), p->doc);
	    report(MANIFEST_WARNING, text, ctx);
	    continue;
	}
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	    fmt_buf_cut(text, sizeof(text), "%s: %s (%s; sendmail cannot queue without it)",
			   path, fd < 0 ? strerror(errno) : "not a regular file", p->doc);
	    report(MANIFEST_ERROR, text, ctx);
	    if (fd >= 0)
		(void) close(fd);
	    problems++;
	    continue;
	}
	if (st.st_uid == ids->root_uid && st.st_gid == ids->setgid_gid
	    && (st.st_mode & 07777) == p->mode) {
	    (void) close(fd);
	    continue;
	}
	if ((flags & MANIFEST_REPAIR)
	    && fchown(fd, ids->root_uid, ids->setgid_gid) == 0
	    && fchmod(fd, p->mode) == 0) {	/* after fchown, which clears set-gid */
	    fmt_buf_cut(text, sizeof(text), "%s: set to owner root, group %ld, mode %04o",
			   path, (long) ids->setgid_gid, (unsigned) p->mode);
	    report(MANIFEST_FIXED, text, ctx);
	} else {
	    fmt_buf_cut(text, sizeof(text), "%s: owner %ld, group %ld, mode %04o; should be "
			   "root, group %ld (setgid_group), mode %04o", path, (long) st.st_uid,
			   (long) st.st_gid, (unsigned) (st.st_mode & 07777), (long) ids->setgid_gid,
			   (unsigned) p->mode);
	    report(MANIFEST_ERROR, text, ctx);
	    problems++;
	}
	(void) close(fd);
    }
    return problems;
}

/* manifest_ids_self - every role is the given user */
void manifest_ids_self(struct manifest_ids *ids, uid_t uid, gid_t gid)
{
    ids->root_uid = uid;
    ids->owner_uid = uid;
    ids->owner_gid = gid;
    ids->setgid_gid = gid;
    ids->can_chown = (geteuid() == 0);
}

/* manifest_ids_resolve - look up the accounts named by the configuration */
int manifest_ids_resolve(const char *mail_owner, const char *setgid_group,
			 struct manifest_ids *ids, const char **error_r)
{
    static char error[256];
    struct passwd *pw;
    struct group *gr;

    /* Not root: the sandbox (mail_owner is this user, or an account that
     * does not exist here) has every role played by this user; a real
     * installation is checked as it is, but cannot be chowned. */
    if (geteuid() != 0) {
	pw = getpwnam(mail_owner);
	if (pw == NULL || pw->pw_uid == geteuid()) {
	    manifest_ids_self(ids, geteuid(), getegid());
	    return 0;
	}
    } else if ((pw = getpwnam(mail_owner)) == NULL) {
	fmt_buf_cut(error, sizeof(error), "mail_owner: unknown user: %s", mail_owner);
	*error_r = error;
	return -1;
    }
    if (pw->pw_uid == 0) {
	fmt_buf_cut(error, sizeof(error), "mail_owner: %s has uid 0; it must be an unprivileged account",
		mail_owner);
	*error_r = error;
	return -1;
    }
    ids->root_uid = 0;
    ids->owner_uid = pw->pw_uid;
    ids->owner_gid = pw->pw_gid;
    if ((gr = getgrnam(setgid_group)) == NULL) {
	fmt_buf_cut(error, sizeof(error), "setgid_group: unknown group: %s", setgid_group);
	*error_r = error;
	return -1;
    }
    if (gr->gr_gid == 0 || gr->gr_gid == ids->owner_gid) {
	fmt_buf_cut(error, sizeof(error), "setgid_group: %s must be a group of its own, "
		"not root's and not mail_owner's primary group", setgid_group);
	*error_r = error;
	return -1;
    }
    ids->setgid_gid = gr->gr_gid;
    ids->can_chown = (geteuid() == 0);
    return 0;
}

/* manifest_entry_path - where an entry lives */
bool manifest_entry_path(const struct manifest_entry *entry, const char *queue_dir,
			 const char *data_dir, char *buf, size_t size)
{
    const char *base = entry->base == MANIFEST_QUEUE ? queue_dir : data_dir;

    if (entry->name[0] == 0)
	return str_try_copy_out(buf, size, base);
    return fmt_try_buf(buf, size, "%s/%s", base, entry->name);
}

/* user_text - "name (uid N)" for messages */
static void user_text(uid_t uid, char *buf, size_t size)
{
    struct passwd *pw = getpwuid(uid);

    if (pw)
	fmt_buf_cut(buf, size, "%s (uid %ld)", pw->pw_name, (long) uid);
    else
	fmt_buf_cut(buf, size, "uid %ld", (long) uid);
}

/* group_text - "name (gid N)" for messages */
static void group_text(gid_t gid, char *buf, size_t size)
{
    struct group *gr = getgrgid(gid);

    if (gr)
	fmt_buf_cut(buf, size, "%s (gid %ld)", gr->gr_name, (long) gid);
    else
	fmt_buf_cut(buf, size, "gid %ld", (long) gid);
}

/* report_line - format one finding and hand it to the caller */
static void report_line(manifest_report_fn report, void *ctx, enum manifest_level level,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report_line(manifest_report_fn report, void *ctx, enum manifest_level level,
			const char *fmt, ...)
{
    char text[4096];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(text, sizeof(text), fmt, ap) < 0)	/* a message text: cut to fit */
	text[0] = 0;
    va_end(ap);
    if (report)
	report(level, text, ctx);
}

/* make_parents - create the missing parents of path, mode 0755 */
static int make_parents(const char *path)
{
    char buf[4096];
    char *cp;

    if (!str_try_copy_out(buf, sizeof(buf), path)) {
	errno = ENAMETOOLONG;
	return -1;
    }
    for (cp = buf + 1; (cp = strchr(cp, '/')) != NULL; cp++) {
	*cp = 0;
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
	    return -1;
	*cp = '/';
    }
    return 0;
}

/* manifest_check_entry - check one directory against its row */
int manifest_check_entry(const struct manifest_entry *entry, const char *path,
			 const struct manifest_ids *ids, int flags,
			 manifest_report_fn report, void *ctx)
{
    bool repair = (flags & MANIFEST_REPAIR) != 0;
    bool is_base = entry->name[0] == 0;
    uid_t want_uid = entry->owner == MANIFEST_ROOT ? ids->root_uid : ids->owner_uid;
    char have_text[128], want_text[128];
    struct stat st, fst;
    bool created = false;
    int problems = 0;
    int fd;

    /* A base directory may be a symlink set up by the administrator (to
     * another disk); entries inside it may not. */
    if ((is_base ? stat(path, &st) : lstat(path, &st)) < 0) {
	if (errno != ENOENT) {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: %s", path, strerror(errno));
	    return 1;
	}
	if (!repair) {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: does not exist (directory, mode %04o)",
			path, (unsigned) entry->mode);
	    return 1;
	}
	if ((is_base && make_parents(path) < 0) || mkdir(path, 0700) < 0) {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: cannot create: %s", path, strerror(errno));
	    return 1;
	}
	report_line(report, ctx, MANIFEST_FIXED, "%s: created (mode %04o)", path,
		    (unsigned) entry->mode);
	if (lstat(path, &st) < 0) {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: %s", path, strerror(errno));
	    return 1;
	}
	/* Fall through: owner and mode are set below, quietly. */
	created = true;
    }
    if (S_ISLNK(st.st_mode)) {
	report_line(report, ctx, MANIFEST_ERROR,
		    "%s: is a symbolic link, should be a directory (not changed)", path);
	return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
	report_line(report, ctx, MANIFEST_ERROR,
		    "%s: is not a directory (not changed)", path);
	return 1;
    }

    /* Repairs go through a descriptor of the very directory checked,
     * opened only when something differs (a normal user may look at a
     * queue it cannot open). */
    fd = -1;
    if (repair && (st.st_uid != want_uid
		   || (entry->group == MANIFEST_SETGID_GROUP && st.st_gid != ids->setgid_gid)
		   || (st.st_mode & 07777) != entry->mode)) {
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (is_base ? 0 : O_NOFOLLOW));
	if (fd < 0 || fstat(fd, &fst) < 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: cannot open for repair: %s", path,
			fd < 0 ? strerror(errno) : "changed while being checked");
	    if (fd >= 0)
		close(fd);
	    fd = -1;
	}
    }

    /* Owner and group first: chown may clear mode bits. */
    if (st.st_uid != want_uid) {
	user_text(st.st_uid, have_text, sizeof(have_text));
	user_text(want_uid, want_text, sizeof(want_text));
	/* A new directory of the mail owner also gets the owner's group. */
	gid_t gid = created && entry->owner == MANIFEST_MAIL_OWNER
	    && entry->group == MANIFEST_ANY_GROUP ? ids->owner_gid : (gid_t) -1;

	if (fd >= 0 && ids->can_chown && fchown(fd, want_uid, gid) == 0) {
	    if (!created)
		report_line(report, ctx, MANIFEST_FIXED, "%s: owner was %s, now %s",
			path, have_text, want_text);
	} else {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: owner is %s, should be %s%s",
			path, have_text, want_text,
			repair && !ids->can_chown ? " (only root can change it)" : "");
	    problems++;
	}
    }
    if (entry->group == MANIFEST_SETGID_GROUP && st.st_gid != ids->setgid_gid) {
	group_text(st.st_gid, have_text, sizeof(have_text));
	group_text(ids->setgid_gid, want_text, sizeof(want_text));
	if (fd >= 0 && fchown(fd, (uid_t) -1, ids->setgid_gid) == 0) {
	    if (!created)
		report_line(report, ctx, MANIFEST_FIXED, "%s: group was %s, now %s",
			path, have_text, want_text);
	} else {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: group is %s, should be %s",
			path, have_text, want_text);
	    problems++;
	}
    }
    if ((st.st_mode & 07777) != entry->mode) {
	unsigned have = (unsigned) (st.st_mode & 07777);

	if (fd >= 0 && fchmod(fd, entry->mode) == 0) {
	    if (!created)
		report_line(report, ctx, MANIFEST_FIXED, "%s: mode was %04o, now %04o",
			    path, have, (unsigned) entry->mode);
	} else {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: mode is %04o, should be %04o%s%s",
			path, have, (unsigned) entry->mode,
			fd >= 0 ? ": " : "", fd >= 0 ? strerror(errno) : "");
	    problems++;
	}
    }
    if (fd >= 0)
	close(fd);
    return problems;
}

/* manifest_check - check every row of the table */
int manifest_check(const char *queue_dir, const char *data_dir,
		   const struct manifest_ids *ids, int flags,
		   manifest_report_fn report, void *ctx)
{
    char path[4096];
    int problems = 0;

    for (size_t i = 0; i < manifest_count; i++) {
	const struct manifest_entry *entry = &manifest_table[i];

	if (!manifest_entry_path(entry, queue_dir, data_dir, path, sizeof(path))) {
	    report_line(report, ctx, MANIFEST_ERROR, "%s/%s: path too long",
			entry->base == MANIFEST_QUEUE ? queue_dir : data_dir, entry->name);
	    problems++;
	    continue;
	}
	if (path[0] != '/') {
	    report_line(report, ctx, MANIFEST_ERROR, "%s: not an absolute path", path);
	    problems++;
	    continue;
	}
	problems += manifest_check_entry(entry, path, ids, flags, report, ctx);
	/* A base that is missing and not repaired: its entries are too. */
	if (entry->name[0] == 0 && access(path, F_OK) < 0)
	    for (; i + 1 < manifest_count && manifest_table[i + 1].base == entry->base; i++)
		continue;
    }
    return problems;
}
