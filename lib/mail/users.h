/* users.h - the users file: each mail account declared once, and the two
 * tables built from it (docs: users(5)).
 *
 * The users file is passwd-like, one account per line, fields separated
 * by ":" (no field may contain ":" or white space):
 *
 *   address:password:uid:gid:mail_location:quota[:scram[:flags]]
 *
 *   address        user@domain (folded to lower case), the login name
 *   password       a crypt(3) hash libcrypt verifies ($y$ yescrypt,
 *                  $6$ sha512-crypt, $2b$ bcrypt, ...); "" or a value
 *                  starting with "!" or "*" is a locked account (no
 *                  login; mail is still delivered)
 *   uid, gid       numeric ids the Maildir belongs to; empty:
 *                  virtual_mailbox_owner's
 *   mail_location  the Maildir; relative to virtual_mailbox_base unless
 *                  it starts with "/"; must not be empty
 *   quota          bytes, with an optional K, M or G suffix; empty:
 *                  virtual_mailbox_limit
 *   scram          optional SCRAM-SHA-256 secret
 *                  "ITERATIONS,SALT,STOREDKEY,SERVERKEY" (base64), as
 *                  `posthorn pw -s` prints it; empty: SCRAM-SHA-256 is
 *                  refused for this account
 *   flags          optional, comma-separated: "disabled" (no login)
 *
 * Blank lines and lines starting with "#" are ignored.
 *
 * `posthorn users [type:]FILE` builds from FILE two tables (table.h):
 *   FILE.auth     address -> "password:uid:gid:mail_location:quota:
 *                 scram:flags" (the line without its address): the auth
 *                 table, auth_user_maps; the text and the built file are
 *                 mode 0600, owned by auth_user when run as root
 *   FILE.mailbox  address -> "mail_location [quota=BYTES]": the mailbox
 *                 table, for virtual_mailbox_maps (the format
 *                 local-delivery reads), mode 0644
 *
 * DIAGNOSTICS: -1 and *error_r, this module's errtext (errtext.h), e.g.
 * "/etc/posthorn/users:3: bad uid \"x\"". */
#ifndef POSTHORN_USERS_H
#define POSTHORN_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

#define USERS_AUTH_SUFFIX	".auth"
#define USERS_MAILBOX_SUFFIX	".mailbox"

struct users_entry {
    const char *password;	/* crypt(3) hash; "" if none */
    long uid;			/* -1: virtual_mailbox_owner's */
    long gid;			/* -1: virtual_mailbox_owner's */
    const char *mail_location;	/* as written */
    long quota;			/* -1: virtual_mailbox_limit */
    const char *scram;		/* "" if none */
    bool locked;		/* no password, "!"/"*" hash, or "disabled" */
};

/* users_parse_fields - parse the fields after the address, in place
 * (buf is cut at the ":"s; the entry points into it) */
int users_parse_fields(char *buf, struct users_entry *e, const char **error_r);

/* users_parse_quota - "1000", "10K", "2M", "1G" -> bytes; false if bad */
bool users_parse_quota(const char *text, long *bytes);

/* users_build - build NAME.auth and NAME.mailbox (name "type:FILE" or
 * FILE, default_type as table.h) from the users file FILE; the auth
 * table's files are chowned to auth_uid/auth_gid unless auth_uid is
 * (uid_t) -1. *count_r: the accounts. */
int users_build(const char *name, const char *default_type, uid_t auth_uid, gid_t auth_gid,
		size_t *count_r, const char **error_r);

#endif
