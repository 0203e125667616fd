/* privs.c - dropping root privileges in one checked function (see
 * privs.h).
 *
 * The order is fixed: look the user up (the passwd file is outside any
 * chroot), chroot and chdir("/"), then setgroups, setgid, setuid, each
 * result checked, and finally prove that neither uid 0 nor gid 0 can be
 * had back and that no inherited supplementary group is left. Dropping "to root" is refused: it would make the proof
 * impossible and is always a configuration mistake. A process that is
 * not root changes nothing (the sandbox), and warns once if it was asked
 * to chroot. Error texts: errtext.h. */

/* System library. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "msg.h"
#include "privs.h"

static struct errtext priv_error;	/* the text behind error_r */
static bool priv_chroot_warned;

/* priv_parse_id - a decimal id that fits id_t and is not (id_t) -1 */
static bool priv_parse_id(const char *text, unsigned long *id)
{
    unsigned long val;
    char *end;

    if (text[0] < '0' || text[0] > '9')
	return false;
    errno = 0;
    val = strtoul(text, &end, 10);
    if (errno != 0 || *end != 0)
	return false;
    if ((unsigned long) (uid_t) val != val || (uid_t) val == (uid_t) -1)
	return false;
    *id = val;
    return true;
}

/* priv_is_root - effective uid 0 */
bool priv_is_root(void)
{
    return geteuid() == 0;
}

/*
 * priv_lookup - uid and gid of a user name. A numeric name is accepted as
 * a uid: its passwd entry supplies the gid, and without an entry the gid
 * is the same number.
 */
bool priv_lookup(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd *pw;
    unsigned long id;

    if (user == NULL || *user == 0)
	return false;
    if ((pw = getpwnam(user)) != NULL) {
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return true;
    }
    if (!priv_parse_id(user, &id))
	return false;
    if ((pw = getpwuid((uid_t) id)) != NULL) {
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
    } else {
	*uid = (uid_t) id;
	*gid = (gid_t) id;
    }
    return true;
}

/* priv_lookup_group - gid of a group name (or a numeric gid) */
bool priv_lookup_group(const char *group, gid_t *gid)
{
    struct group *gr;
    unsigned long id;

    if (group == NULL || *group == 0)
	return false;
    if ((gr = getgrnam(group)) != NULL) {
	*gid = gr->gr_gid;
	return true;
    }
    if (!priv_parse_id(group, &id))
	return false;
    *gid = (gid_t) id;
    return true;
}

/* priv_unprivileged - the not-root case: change nothing, maybe warn */
static int priv_unprivileged(const char *chroot_dir)
{
    if (chroot_dir != NULL && !priv_chroot_warned) {
	priv_chroot_warned = true;
	msg_warn("not running as root: skipping chroot to %s", chroot_dir);
    }
    return 0;
}

/* priv_drop - become user (looked up before any chroot) */
int priv_drop(const char *user, gid_t extra_gid, const char *chroot_dir, const char **error_r)
{
    uid_t uid;
    gid_t gid;

    if (!priv_is_root())
	return priv_unprivileged(chroot_dir);
    if (!priv_lookup(user, &uid, &gid))
	return errtext_fail(&priv_error, error_r, "unknown user: %s", user ? user : "(null)");
    return priv_drop_ids(uid, gid, extra_gid, chroot_dir, error_r);
}

/* priv_drop_ids - chroot, then setgroups/setgid/setuid, then verify */
int priv_drop_ids(uid_t uid, gid_t gid, gid_t extra_gid, const char *chroot_dir, const char **error_r)
{
    gid_t groups[1];

    if (!priv_is_root())
	return priv_unprivileged(chroot_dir);
    if (uid == 0 || uid == (uid_t) -1)
	return errtext_fail(&priv_error, error_r, "refusing to drop privileges to uid %ld", (long) uid);
    if (gid == 0 || gid == (gid_t) -1)
	return errtext_fail(&priv_error, error_r, "refusing to drop privileges to gid %ld", (long) gid);
    if (extra_gid == 0)
	return errtext_fail(&priv_error, error_r, "refusing supplementary group 0");

    if (chroot_dir != NULL) {
	if (chroot(chroot_dir) < 0)
	    return errtext_fail(&priv_error, error_r, "chroot %s: %s", chroot_dir, strerror(errno));
	if (chdir("/") < 0)
	    return errtext_fail(&priv_error, error_r, "chdir / after chroot %s: %s", chroot_dir, strerror(errno));
    }
    groups[0] = extra_gid;
    if (setgroups(extra_gid != (gid_t) -1 ? 1 : 0, groups) < 0)
	return errtext_fail(&priv_error, error_r, "setgroups: %s", strerror(errno));
    if (setgid(gid) < 0)
	return errtext_fail(&priv_error, error_r, "setgid %ld: %s", (long) gid, strerror(errno));
    if (setuid(uid) < 0)
	return errtext_fail(&priv_error, error_r, "setuid %ld: %s", (long) uid, strerror(errno));

    /* Prove the drop: every one of these must fail now. */
    if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0)
	return errtext_fail(&priv_error, error_r, "privilege drop failed: uid 0 can be regained");
    if (setgid(0) == 0 || getegid() == 0 || getgid() == 0)
	return errtext_fail(&priv_error, error_r, "privilege drop failed: gid 0 can be regained");
    /* ... and no supplementary group but the one asked for is left (an
     * inherited gid 0 would give the group's files back). */
    {
	gid_t now[1];
	int n = getgroups(0, NULL);
	int want = extra_gid != (gid_t) -1 ? 1 : 0;

	if (n != want || (want == 1 && (getgroups(1, now) != 1 || now[0] != extra_gid)))
	    return errtext_fail(&priv_error, error_r, "privilege drop failed: %d supplementary groups left, "
			      "want %d", n, want);
    }
    return 0;
}
