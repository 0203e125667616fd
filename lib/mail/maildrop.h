/* maildrop.h - the maildrop file: what sendmail writes, postdrop checks
 * and stores in maildrop/, and pickup checks again before cleanup sees it.
 *
 * A maildrop file is a queue file (queue_file.h) in the smaller form an
 * untrusted local user may produce:
 *
 *     V            "posthorn-queue 1"
 *     S            the envelope sender (empty: the null sender), once
 *     A*           only the names below, each at most once, before any R
 *     ([O] [N] R)* recipients with their DSN ORCPT and NOTIFY
 *     M
 *     (C* L)*      content lines (no terminators)
 *     X
 *     ([O] [N] R)* trailer recipients (sendmail writes none)
 *     E
 *
 * The checks are the record grammar's maildrop profile
 * (record_grammar.h, RECORD_PROFILE_MAILDROP): the types above, and
 * every 'A' by name and value against this whitelist, each name once:
 *
 *     dsn_envid=TEXT   sendmail -V: 1..100 printable ASCII characters
 *     dsn_ret=full|hdrs  sendmail -R
 *     body=7bit|8bitmime sendmail -B
 *     flags=WORD,...   MAILDROP_FLAG_* words: "extract" (sendmail -t:
 *                      pickup asks cleanup for CLEANUP_FLAG_EXTRACT)
 *
 * so a user can never set the arrival time, client attributes such as
 * sasl_username, submit_uid (pickup takes it from the file owner) or
 * done marks. Addresses (S, R, O) are at most MAILDROP_ADDR_MAX bytes
 * without control characters; a recipient is never empty; a file needs
 * a recipient unless it has the extract flag. Content bytes (plus two
 * per line for CRLF) count against the caller's size limit; envelope
 * records (recipients) against the same limit, but at least 1 MiB.
 *
 * postdrop and pickup read a maildrop file with record_grammar_get();
 * this header holds the format's names and limits only. */
#ifndef POSTHORN_MAILDROP_H
#define POSTHORN_MAILDROP_H

#define MAILDROP_ATTR_DSN_ENVID	"dsn_envid"
#define MAILDROP_ATTR_DSN_RET	"dsn_ret"
#define MAILDROP_ATTR_BODY	"body"
#define MAILDROP_ATTR_FLAGS	"flags"

#define MAILDROP_FLAG_EXTRACT	(1 << 0)	/* "extract": sendmail -t */
#define MAILDROP_FLAG_EXTRACT_NAME "extract"

#define MAILDROP_ADDR_MAX	2048	/* bytes of S, R, O data */
#define MAILDROP_ATTR_MAX	256	/* bytes of one A record */
#define MAILDROP_LINE_CHUNK	4096	/* writers split lines into C records of this */
#define MAILDROP_RECORD_MAX	65536	/* largest record a reader accepts */
#define MAILDROP_ENVID_MAX	100
#define MAILDROP_ENVELOPE_MIN	((long long) 1 << 20)	/* envelope bytes always allowed */

#endif
