/* imap_mailbox.h - imapd's mailbox-level commands (imap_mailbox.c):
 * CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (with
 * LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN), LSUB, STATUS,
 * NAMESPACE, and the mailbox-name conversion the other commands share.
 *
 * The command handlers for imapd's command table (imapd.h gives their
 * signature) are:
 *   imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
 *   imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list,
 *   imap_cmd_lsub, imap_cmd_status, imap_cmd_namespace
 * and imap_mailbox_session_start() is to be called once per session
 * after login (it makes the special-use folders of a new user:
 * store_folders_ensure_special).
 *
 * Mailbox names: the hierarchy delimiter is "." (Maildir++'s own, as
 * Dovecot shows a Maildir++ store by default); "INBOX" in any case is
 * the inbox, and so is the first component of "inbox.x" (normalised
 * to "INBOX.x"); names are modified UTF-7 on the wire and UTF-8 in the
 * store (imap_mutf7.h).
 */
#ifndef POSTHORN_IMAP_MAILBOX_H
#define POSTHORN_IMAP_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

#define IMAP_HIER_DELIM	'.'

/* imap_mailbox_name - the store's name (UTF-8; "INBOX" for the inbox)
 * of the mailbox name a client sent (modified UTF-7, len bytes) into
 * out: true, or false with *why_r (a text for a NO/BAD reply) when it
 * is not valid */
bool imap_mailbox_name(const char *wire, size_t len, struct str *out, const char **why_r);

/* imap_mailbox_wire - the wire form (modified UTF-7) of a store name
 * appended to out: false if name is not valid UTF-8 or too long */
bool imap_mailbox_wire(const char *name, struct str *out);

/* imap_list_match - whether name matches the LIST pattern (both wire
 * form): "*" matches anything, "%" anything but the delimiter; linear
 * in len(name) * len(pattern), whatever the pattern */
bool imap_list_match(const char *pattern, const char *name);

#endif
