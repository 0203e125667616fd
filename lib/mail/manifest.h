/* manifest.h - the on-disk layout: every directory, its owner, group, mode.
 *
 * One table (manifest_table[]) says what the queue and data directories
 * must look like; `posthorn check` and `posthorn start` check it, and
 * repair what is safe; INSTALL and the man pages describe the same rows.
 * No other code chmods or chowns these directories.
 *
 *   queue_directory           0755 root
 *     maildrop/               1730 mail_owner:setgid_group  (write, no read)
 *     incoming/ active/ deferred/ hold/ corrupt/ defer/ bounce/
 *                             0700 mail_owner
 *     private/                0700 mail_owner
 *     public/                 0710 mail_owner:setgid_group
 *     pid/                    0755 root
 *   data_directory            0700 mail_owner
 *   daemon_directory/postdrop  2755 root:setgid_group  (as root only)
 *
 * Identities are resolved once into struct manifest_ids. As root they are
 * uid 0 for "root" and the accounts named by mail_owner and setgid_group.
 * As a normal user whose name is mail_owner (the sandbox), or when
 * mail_owner does not exist, every owner and group is the invoking
 * user's uid and primary gid, with the same modes. A normal user
 * checking a real installation (mail_owner is someone else) sees the
 * real identities but can repair only what it owns.
 *
 * Interface:
 *   manifest_ids_resolve()  look up mail_owner/setgid_group (or use the
 *                           invoking user when not root)
 *   manifest_check()        check (and with MANIFEST_REPAIR, repair) every
 *                           entry under the two base directories
 *   manifest_check_entry()  the same for one entry
 *
 * Repairs: a missing directory is created (with its parents as 0755 for
 * the base directories); a wrong mode is fixed; a wrong owner or group is
 * fixed when running as root. Nothing is ever deleted or renamed: a
 * symlink or a non-directory where a directory belongs stays an error.
 * Repairs work on an open descriptor (O_NOFOLLOW|O_DIRECTORY, fchmod,
 * fchown), never by path after the check.
 *
 * Diagnostics: each finding is passed to the caller's report function as
 * one line naming the path and the difference, e.g.
 *   "/var/spool/posthorn/maildrop: mode is 0755, should be 1730"
 *   "/var/spool/posthorn/maildrop: created (mode 1730)"
 * with level MANIFEST_ERROR (still wrong) or MANIFEST_FIXED (repaired). */
#ifndef POSTHORN_MANIFEST_H
#define POSTHORN_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum manifest_base { MANIFEST_QUEUE, MANIFEST_DATA };
enum manifest_user { MANIFEST_ROOT, MANIFEST_MAIL_OWNER };
/* MANIFEST_ANY_GROUP: the mode gives the group no access; not checked */
enum manifest_group { MANIFEST_ANY_GROUP, MANIFEST_SETGID_GROUP };

struct manifest_entry {
    enum manifest_base base;
    const char *name;		/* relative to the base; "" = the base itself */
    mode_t mode;		/* exact permission bits, incl. sticky */
    enum manifest_user owner;
    enum manifest_group group;
    const char *doc;		/* one line: what lives there */
};

extern const struct manifest_entry manifest_table[];
extern const size_t manifest_count;

struct manifest_ids {
    uid_t root_uid;		/* owner of MANIFEST_ROOT entries */
    uid_t owner_uid;		/* mail_owner */
    gid_t owner_gid;		/* mail_owner's primary group */
    gid_t setgid_gid;		/* setgid_group */
    bool can_chown;		/* running as root */
};

enum manifest_level { MANIFEST_ERROR, MANIFEST_FIXED, MANIFEST_WARNING };

/* manifest_report_fn - called once per finding, text is one line */
typedef void (*manifest_report_fn)(enum manifest_level level, const char *text, void *ctx);

#define MANIFEST_REPAIR	(1 << 0)

/* manifest_ids_resolve - identities for this run (see above). mail_owner
 * must not be root, setgid_group must be a group of its own; -1 with
 * *error_r otherwise, or if an account that is needed does not exist
 * (a static buffer, valid until the next manifest_ids_resolve call). */
int manifest_ids_resolve(const char *mail_owner, const char *setgid_group,
			 struct manifest_ids *ids, const char **error_r);
/* manifest_ids_self - every role is uid/gid (for tests and the sandbox) */
void manifest_ids_self(struct manifest_ids *ids, uid_t uid, gid_t gid);

/* manifest_entry_path - base/name into buf; false if it does not fit */
bool manifest_entry_path(const struct manifest_entry *entry, const char *queue_dir,
			 const char *data_dir, char *buf, size_t size);

/* manifest_check_entry - check (and repair) one entry; returns the number
 * of problems that remain (0 = fine or repaired) */
int manifest_check_entry(const struct manifest_entry *entry, const char *path,
			 const struct manifest_ids *ids, int flags,
			 manifest_report_fn report, void *ctx);
/* manifest_check - every entry; returns the number of problems left */
int manifest_check(const char *queue_dir, const char *data_dir,
		   const struct manifest_ids *ids, int flags,
		   manifest_report_fn report, void *ctx);

/* The set-gid programs, in daemon_directory: postdrop must be a regular
 * file owned by root, group setgid_group, mode 2755, or local users'
 * sendmail cannot queue. Checked (and with MANIFEST_REPAIR, chowned and
 * chmodded on an open descriptor) only when running as root on a real
 * installation: in a normal user's sandbox every role is that user and
 * no program needs set-gid. A missing program is a warning (a host may
 * take no local submissions); a symlink or other non-regular file stays
 * an error. */
struct manifest_program {
    const char *name;		/* in daemon_directory */
    mode_t mode;		/* exact bits, incl. set-gid */
    const char *doc;
};
extern const struct manifest_program manifest_programs[];
extern const size_t manifest_program_count;

/* manifest_check_programs - every set-gid program, which lives in dir
 * (daemon_directory: helpers are not commands); problems left */
int manifest_check_programs(const char *dir, const struct manifest_ids *ids,
			    int flags, manifest_report_fn report, void *ctx);

#endif
