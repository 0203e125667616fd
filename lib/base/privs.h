/* privs.h - dropping privileges, in one checked function.
 *
 * priv_drop() looks the user up first (before any chroot), then chroots
 * (if asked), then setgroups/setgid/setuid, checking every result, and
 * finally verifies that neither uid nor gid 0 can be regained and that
 * no supplementary group is left but extra_gid (inherited ones are
 * cleared). When the
 * process is not root it changes nothing and succeeds (the sandbox case:
 * everything runs as the invoking user), except that a requested chroot
 * is skipped with a warning. */
#ifndef POSTHORN_PRIVS_H
#define POSTHORN_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

/* priv_lookup - uid, gid of a user name; false if unknown */
bool priv_lookup(const char *user, uid_t *uid, gid_t *gid);
/* priv_lookup_group - gid of a group name; false if unknown */
bool priv_lookup_group(const char *group, gid_t *gid);
/* priv_drop - become user (with its primary group, plus extra_gid if not
 * (gid_t)-1 as the only supplementary group), after chroot to
 * chroot_dir if not NULL. Returns 0, or -1 with *error_r (this module's
 * errtext, errtext.h: valid until the next priv_* error). */
int priv_drop(const char *user, gid_t extra_gid, const char *chroot_dir, const char **error_r);
/* priv_drop_ids - the same with numeric ids */
int priv_drop_ids(uid_t uid, gid_t gid, gid_t extra_gid, const char *chroot_dir, const char **error_r);
/* priv_is_root - effective uid 0 */
bool priv_is_root(void);

#endif
