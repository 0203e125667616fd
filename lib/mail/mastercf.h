/* mastercf.h - parse master.cf, the table of services that master runs.
 *
 * Each entry has at least 8 white-space separated fields (Postfix
 * layout):
 *     service type private unpriv chroot wakeup maxproc command [args...]
 * Lines that start with white space continue the previous entry; lines
 * whose first non-blank character is "#" and blank lines are ignored.
 * "-" selects a default: private y, unpriv y, chroot n, wakeup 0, maxproc
 * the caller's default_process_limit. maxproc 0 means no limit. wakeup
 * may end in "?" (wake the service only when it has been used).
 *
 *   type     inet | unix | fifo | pass
 *            pass: a unix-domain socket like unix, over which another
 *            process hands over client connections (pass_proto.h); its
 *            children run with -t pass. No wakeup.
 *   service  inet: "port", "host:port", "[ipv6]:port" or "*:port"
 *            (port is a number or a service name); unix/fifo/pass: a
 *            plain file name (no "/"), created under private/ or public/
 *            (or submit/ for private "w": a unix socket that every local
 *            user may reach, for submit(8)).
 *            Two entries cannot share one socket file (same name, both
 *            private or both public, of the types unix, fifo, pass).
 *   args     passed to the command as given; "-o name=value" pairs are
 *            also collected in overrides[] (the value may be empty); an
 *            argument written "{ text with spaces }" is one argument
 *            (braces and the white space just inside them removed), as
 *            Postfix 3 does, e.g. -o { smtpd_banner = $myhostname ESMTP }.
 *
 * Interface:
 *   mastercf_load(path, default_maxproc, &cf, &error)   read a file
 *   mastercf_parse(name, text, len, default_maxproc, &cf, &error)
 *   mastercf_find(cf, service, type)                    look up
 *   mastercf_compare(a, b, &what)                       for reload
 *   mastercf_free(&cf)
 *
 * Diagnostics: every error is returned as "FILE:LINE: text" through
 * error_r (the module's errtext, errtext.h: valid until the next
 * mastercf_* error); nothing is logged. A file with any error yields no table at all. */
#ifndef POSTHORN_MASTERCF_H
#define POSTHORN_MASTERCF_H

#include <stdbool.h>
#include <stddef.h>

#include "strv.h"

enum mastercf_type { MASTERCF_INET, MASTERCF_UNIX, MASTERCF_FIFO, MASTERCF_PASS };

struct mastercf_entry {
    char *service;		/* as written: "smtp", "127.0.0.1:2525", "cleanup" */
    enum mastercf_type type;
    char *host;			/* inet: address part ("*" = all), NULL if only a port */
    char *port;			/* inet: port number or service name; else NULL */
    bool priv;			/* private: listener under private/ (unix/fifo) */
    bool world;			/* private column "w": listener under submit/,
				 * reachable by every local user (priv false) */
    bool unpriv;		/* run as mail_owner (when master is root) */
    bool chroot;		/* chroot to queue_directory (when root) */
    long wakeup;		/* seconds between wake-up triggers, 0 = none */
    bool wakeup_if_used;	/* wakeup was written "N?" */
    long maxproc;		/* process limit, 0 = no limit */
    char *command;		/* program name under daemon_directory */
    struct strv argv;		/* command then args in order */
    struct strv overrides;	/* "name=value" from -o, in order */
    char *file;			/* where the entry is written */
    int line;			/* its first line */
};

struct mastercf {
    struct mastercf_entry *entries;	/* in file order */
    size_t count;
};

/* mastercf_load - parse a master.cf file; 0 and *cf_r, or -1 and an error */
int mastercf_load(const char *path, long default_maxproc, struct mastercf **cf_r,
		  const char **error_r);
/* mastercf_parse - the same from text in memory; name is used in errors */
int mastercf_parse(const char *name, const char *text, size_t len, long default_maxproc,
		   struct mastercf **cf_r, const char **error_r);
/* mastercf_free - free a table and set *cfp to NULL */
void mastercf_free(struct mastercf **cfp);

/* mastercf_find - the entry for service + type, or NULL */
const struct mastercf_entry *mastercf_find(const struct mastercf *cf, const char *service,
					   enum mastercf_type type);
/* mastercf_socket_dir - "private", "public" or "submit": where the
 * socket of a unix, fifo or pass entry lives */
const char *mastercf_socket_dir(const struct mastercf_entry *e);

/* mastercf_type_name - "inet", "unix", "fifo" or "pass" */
const char *mastercf_type_name(enum mastercf_type type);

/* Result of mastercf_compare, for reload:
 *   OTHER      - different listeners (service, type or private differ):
 *                close the old one, open the new one
 *   CHANGED    - same listener, something else differs: keep the socket,
 *                apply the new settings to new processes
 *   IDENTICAL  - nothing differs (file and line are not compared) */
enum mastercf_cmp { MASTERCF_CMP_OTHER, MASTERCF_CMP_CHANGED, MASTERCF_CMP_IDENTICAL };

/* mastercf_compare - compare two entries; *what_r (if not NULL) names the
 * first field that differs ("service", "type", "private", "unpriv",
 * "chroot", "wakeup", "maxproc", "command", "args") or is NULL */
enum mastercf_cmp mastercf_compare(const struct mastercf_entry *a, const struct mastercf_entry *b,
				   const char **what_r);

#endif
