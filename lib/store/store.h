/* store.h - the mail store: Maildir++ mailboxes with stable UIDs.
 *
 * A mailbox is a Maildir (cur/, new/, tmp/): INBOX is the Maildir++
 * root, a folder "Name" (hierarchy "A.B") is the subdirectory ".Name"
 * of the root, with an empty "maildirfolder" file. Flags live in the
 * file names (":2,FLAGS", the Maildir letters D F P R S T plus
 * lowercase keyword letters a-z); UIDVALIDITY, UIDNEXT and, per
 * message, its UID and sizes live in a per-mailbox index that can
 * always be rebuilt from the Maildir (docs/mailstore.md: on-disk
 * format, locking, recovery).
 *
 * Opening a mailbox (or store_refresh) takes the mailbox lock for a
 * short while: new messages in new/ get the next UIDs and move to cur/
 * under a name that carries their size, CRLF size and UID
 * ("UNIQUE,S=size,W=crlfsize,U=uid:2,"), the index is brought up to
 * date (written atomically: readers never see half of it), and the
 * handle keeps a stable snapshot: the message list in ascending UID
 * order, which changes only through this handle's own calls
 * (store_refresh, store_expunge). Local delivery writes new/ at any
 * time without the lock; a message delivered during a session appears
 * at the next store_refresh with a UID higher than every earlier one.
 *
 * Another session may rename (flags) or unlink (expunge) a message
 * behind the snapshot: reading or changing it finds the current name
 * again (by its unique part) or fails with errno ENOENT when it is gone.
 *
 * Errors: functions return -1 (or NULL) and set *error_r to this
 * module's errtext (errtext.h; valid until the next store error) and
 * errno where it says so. Memory is linear in the number of messages.
 */
#ifndef POSTHORN_STORE_H
#define POSTHORN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "strv.h"

/* Flags: the Maildir info letters, plus keywords 'a'..'z' as bits
 * STORE_FLAG_KEYWORD(0..25) (Dovecot's keyword letters; their names
 * are for IMAP to keep). */
#define STORE_FLAG_DRAFT	(1u << 0)	/* D: \Draft */
#define STORE_FLAG_FLAGGED	(1u << 1)	/* F: \Flagged */
#define STORE_FLAG_PASSED	(1u << 2)	/* P: forwarded ($Forwarded) */
#define STORE_FLAG_REPLIED	(1u << 3)	/* R: \Answered */
#define STORE_FLAG_SEEN		(1u << 4)	/* S: \Seen */
#define STORE_FLAG_TRASHED	(1u << 5)	/* T: \Deleted */
#define STORE_FLAG_KEYWORD(n)	(1u << (6 + (n)))	/* 'a' + n, n < 26 */

/* Open modes. Both assign UIDs and move new/ to cur/ (a reader taking
 * its new mail is not a change to the mailbox, as in Dovecot and
 * Courier); READ_ONLY refuses store_set_flags and store_expunge. */
#define STORE_READ_ONLY		0
#define STORE_READ_WRITE	1
#define STORE_CREATE		2	/* or-ed in: make a missing Maildir
					 * (and the folder's maildirfolder) */
#define STORE_RECENT		4	/* or-ed in (imapd SELECT): this
					 * handle claims \Recent (below) */

/* One message of the snapshot. The pointers stay valid until the next
 * store_refresh, store_expunge or store_close of the handle. */
struct store_msg {
    uint32_t uid;
    uint32_t flags;		/* STORE_FLAG_* from the name's ":2," */
    off_t size;			/* bytes in the file (RFC822.SIZE basis) */
    off_t crlf_size;		/* size + one per LF not preceded by CR:
				 * the POP3 octet count of a message sent
				 * with CRLF line ends (a last line without
				 * LF counts as is); -1 while not counted
				 * yet (a synchronisation reads no message:
				 * use store_msg_crlf_size) */
    time_t mtime;		/* the file's mtime (IMAP INTERNALDATE) */
    const char *name;		/* the file name (no directory) in cur/,
				 * or in new/ when in_new */
    uint64_t modseq:62;		/* CONDSTORE MODSEQ: raised on every flag
				 * change; > 0, at most STORE_MODSEQ_MAX */
    bool recent:1;		/* \Recent for this handle: it claimed the
				 * message (STORE_RECENT), or (a handle
				 * without STORE_RECENT) nobody has yet */
    bool in_new:1;		/* still in new/ under its delivery name (no
				 * flags yet: moved to cur/ when they change;
				 * docs/mailstore.md) */
};				/* (48 bytes: one per message of a selected
				 * mailbox; the bits share modseq's word) */
#define STORE_MODSEQ_MAX	(((uint64_t) 1 << 62) - 1)	/* (an index
					 * with more is damaged: rebuilt) */

struct store_mailbox;

/*
 * store_open - open the mailbox folder of the Maildir++ root: folder
 * NULL, "" or "INBOX" (any case) is the root, anything else a folder
 * name (store_folder_valid). mode: STORE_READ_ONLY or STORE_READ_WRITE,
 * or-ed with STORE_CREATE. Opens directories without following a symlink
 * a user owns (safe_file.h). The handle, or NULL with errno (ENOENT for
 * a missing mailbox) and *error_r.
 */
struct store_mailbox *store_open(const char *root, const char *folder, int mode,
				 const char **error_r);
/* store_close - release the handle (and any session lock); *mbp = NULL */
void store_close(struct store_mailbox **mbp);

uint32_t store_uidvalidity(const struct store_mailbox *mb);
/* store_uidnext - the UID the next new message will get (as of the
 * snapshot) */
uint32_t store_uidnext(const struct store_mailbox *mb);
/* store_count - messages in the snapshot */
size_t store_count(const struct store_mailbox *mb);
/* store_msg - message i (0-based; ascending UID order); NULL past the end */
const struct store_msg *store_msg(const struct store_mailbox *mb, size_t i);
/*
 * store_msg_crlf_size - message i's CRLF size, counted now (one read of
 * the file) if the snapshot does not know it yet, and remembered (the
 * index learns it at the next store_cache_flush, store_sync or
 * store_close). A message that cannot be read (gone) gives its size.
 * store_msg_set_crlf_size - the caller counted it (from the bytes it
 * read anyway): the same remembering.
 */
off_t store_msg_crlf_size(struct store_mailbox *mb, size_t i);
void store_msg_set_crlf_size(struct store_mailbox *mb, size_t i, off_t crlf_size);
/* store_find_uid - the index of uid in the snapshot, or -1 */
long store_find_uid(const struct store_mailbox *mb, uint32_t uid);
/* store_path - the mailbox directory (the root or root/.Folder) */
const char *store_path(const struct store_mailbox *mb);

/*
 * store_refresh - pick up what changed on disk: new deliveries (new
 * UIDs, higher than all before), messages expunged by other sessions
 * (dropped), flags changed by other sessions. Replaces the snapshot (so
 * indexes and store_msg pointers change); *added_r and *removed_r (may
 * be NULL) say how many messages came and went. 0, or -1 and *error_r.
 */
int store_refresh(struct store_mailbox *mb, size_t *added_r, size_t *removed_r,
		  const char **error_r);

/*
 * store_open_msg - open message i for reading: a read-only descriptor
 * (O_CLOEXEC) positioned at 0, or -1 with errno (ENOENT: expunged by
 * another session) and *error_r.
 */
int store_open_msg(struct store_mailbox *mb, size_t i, const char **error_r);

/*
 * store_open_msg_pread - the same without checking that the file is a
 * regular file (one fstat less): for a caller that only reads it with
 * pread, which fails on anything a mailbox owner can put there in its
 * place (a directory: EISDIR, a FIFO: ESPIPE; a socket does not open).
 * The caller bounds what it reads by the message's size.
 */
int store_open_msg_pread(struct store_mailbox *mb, size_t i, const char **error_r);

/*
 * store_set_flags - change message i's flags: set the bits of add,
 * clear those of remove (applied to the flags in the file's current
 * name, so that changes by other sessions to other bits are kept), by
 * renaming the file in cur/, then fsync cur/ and record the message's
 * new MODSEQ in the index (both deferred to store_commit inside a
 * batch). Updates the snapshot (flags, name; modseq when recorded).
 * 0, or -1 with errno (ENOENT: gone; EROFS: read-only handle).
 */
int store_set_flags(struct store_mailbox *mb, size_t i, uint32_t add, uint32_t remove,
		    const char **error_r);

/*
 * store_expunge - unlink the messages with the n UIDs in uids[] (UIDs
 * not in the snapshot, or already unlinked by another session, are
 * skipped), fsync cur/, and record in the mailbox that these UIDs are
 * used for good; only then return 0 (HIGHESTMODSEQ is raised; the
 * index is rewritten at once, or at store_commit inside a batch, where
 * the fsync is deferred too). The snapshot loses them (indexes
 * of later messages shift down). *removed_r (may be NULL): how many
 * files this call unlinked. -1 with *error_r on failure (some may be
 * unlinked already: store_refresh shows what is left).
 */
int store_expunge(struct store_mailbox *mb, const uint32_t *uids, size_t n,
		  size_t *removed_r, const char **error_r);

/*
 * store_session_lock - an exclusive, non-blocking lock named name
 * ("pop3": one POP3 session per mailbox) held until store_close: a
 * flock(2) on the mailbox's "posthorn-NAME.lock" file. 0; -1 with errno
 * EWOULDBLOCK when another process holds it; -1 with another errno on
 * failure. name: [a-z0-9]{1,32}.
 */
int store_session_lock(struct store_mailbox *mb, const char *name, const char **error_r);

/* store_crlf_size - the CRLF size of the open file fd (read from 0 to
 * the end): 0, or -1 with *error_r */
int store_crlf_size(int fd, off_t *size_r, off_t *crlf_size_r, const char **error_r);

/* store_flags_parse - the flags of a Maildir file name (":2," info) */
uint32_t store_flags_parse(const char *name);
/* store_flags_format - the letters of flags in Maildir order (ASCII:
 * "DFPRST" then keywords) into buf (at least 33 bytes), NUL-terminated */
void store_flags_format(uint32_t flags, char *buf, size_t size);

/*
 * \Recent (RFC 3501: one session only). The index records the lowest
 * UID nobody has claimed yet. A handle opened with STORE_RECENT and
 * STORE_READ_WRITE claims, at every synchronisation (open, store_sync,
 * store_refresh), every UID from there on: those messages have recent
 * set in its snapshot for as long as the handle lives, and in no other
 * handle's. A handle without STORE_RECENT (pop3d, EXAMINE) claims
 * nothing and shows as recent what nobody has claimed yet. Messages a
 * handle adds (store_append, store_copy) are not claimed by it: the
 * next claiming synchronisation takes them (RFC 3501: the copy SHOULD
 * be \Recent).
 */
/* store_recent_count - messages of the snapshot with recent set */
size_t store_recent_count(const struct store_mailbox *mb);

/*
 * CONDSTORE (RFC 7162). Every message has a MODSEQ, kept in the index;
 * the mailbox's HIGHESTMODSEQ is above or equal to all of them and is
 * raised by every new message, flag change (by any store user, or by
 * another program renaming files in cur/: noticed at the next
 * synchronisation) and expunge. MODSEQs never go down under one
 * UIDVALIDITY; when the index is lost they jump (every message gets a
 * MODSEQ above any given before: clients resynchronise all flags).
 */
/* store_highestmodseq - HIGHESTMODSEQ as of the snapshot (and this
 * handle's own changes since) */
uint64_t store_highestmodseq(const struct store_mailbox *mb);
/* store_generation - changes whenever the handle's snapshot (messages,
 * flags, MODSEQs, recent bits) may have changed: a caller that derived
 * something from the snapshot may keep it while this stays the same */
uint64_t store_generation(const struct store_mailbox *mb);

/*
 * store_sync - store_refresh for imapd: replaces the snapshot and says
 * what changed since the previous one. The new snapshot is the old one
 * without the expunged UIDs, then the added messages at the end (their
 * UIDs above every UID of the old snapshot), so that the caller can map
 * its sequence numbers. If uidvalidity_changed is set, nothing else is
 * meaningful: the mailbox was rebuilt under a new UIDVALIDITY and the
 * session must drop it (imapd: BYE, or re-select). Arrays are ascending,
 * owned by *ch (store_changes_free; both may be reused across calls:
 * zero *ch once, before the first call). 0, or -1 with *error_r (the
 * snapshot then is the old one).
 */
struct store_changes {
    uint32_t *expunged;		/* UIDs of the old snapshot now gone */
    size_t n_expunged;
    uint32_t *changed;		/* UIDs in both whose flags or MODSEQ
				 * differ (not this handle's own changes) */
    size_t n_changed;
    size_t added;		/* messages at the end of the new snapshot
				 * that the old did not have */
    size_t recent_added;	/* how many of those have recent set */
    bool uidvalidity_changed;
    size_t cap_expunged, cap_changed;	/* (internal) */
};
int store_sync(struct store_mailbox *mb, struct store_changes *ch, const char **error_r);
/* store_changes_free - free the arrays; *ch is zero again */
void store_changes_free(struct store_changes *ch);

/*
 * Batches. store_set_flags and store_expunge each take the mailbox
 * lock, change cur/, fsync it and record new MODSEQs in the index (one
 * index rewrite per call). A caller changing many messages (IMAP STORE
 * 1:*) brackets them: store_begin takes the lock and defers the fsync
 * and the index rewrite to store_commit, which does both once and
 * releases the lock; in between only this handle changes the mailbox.
 * store_commit sets the changed messages' modseq in the snapshot (other
 * messages, and others' changes, wait for store_sync). Nesting is an
 * error (EBUSY). store_close of a handle in a batch commits it.
 */
int store_begin(struct store_mailbox *mb, const char **error_r);
int store_commit(struct store_mailbox *mb, const char **error_r);
/* store_modseq_now - message i's MODSEQ as the mailbox has it now:
 * inside a batch, from the index as store_begin found it (other
 * sessions' changes since this handle's snapshot included: what
 * CONDSTORE's UNCHANGEDSINCE must test; this handle's own changes in
 * the batch not); outside a batch, the snapshot's. 0 when the message
 * is no longer in the mailbox. */
uint64_t store_modseq_now(const struct store_mailbox *mb, size_t i);

/*
 * Keywords (IMAP flags without a backslash): 26 per mailbox, stored as
 * the Maildir letters 'a'..'z' (STORE_FLAG_KEYWORD(n)); the names live
 * in the mailbox's "posthorn-keywords" file (letter and name per line;
 * a letter once given keeps its name for good). Names are compared
 * without regard to ASCII case and keep their first spelling; a valid
 * name is 1..100 bytes of IMAP atom characters, not starting with '\'.
 */
#define STORE_KEYWORDS_MAX	26
/* store_keyword_index - n (0..25) of name; with create, give it the
 * next free letter (written durably, under the mailbox lock) when it
 * has none. -1 with errno: ENOENT (not known, !create), EINVAL (bad
 * name), ENOSPC (all 26 letters taken), or another on I/O failure. */
int store_keyword_index(struct store_mailbox *mb, const char *name, bool create,
			const char **error_r);
/* store_keyword_name - the name of keyword n, or NULL if it has none
 * (valid until store_close) */
const char *store_keyword_name(struct store_mailbox *mb, unsigned n);

/*
 * Change notification (IDLE). store_watch_fd: a descriptor (inotify,
 * owned by the handle, made on the first call) that becomes readable
 * when the mailbox may have changed: a delivery to new/, a rename,
 * create or unlink in cur/, an index or keyword file replaced. Spurious
 * wake-ups happen: the caller calls store_watch_clear (drains it, never
 * blocks) and, when it returns true, store_sync. store_watch_clear
 * returns false when every event drained was this handle's own
 * replacement of a file in the mailbox directory (its index, cache,
 * keywords...: counted as they are written, so that another process's
 * replacement of the same file still counts as a change).
 * -1 with *error_r where inotify is not available (the caller polls).
 */
int store_watch_fd(struct store_mailbox *mb, const char **error_r);
bool store_watch_clear(struct store_mailbox *mb);

/*
 * The cache (posthorn-cache beside the index): per message, values
 * that are expensive to compute (parsing the message) and never change
 * because a message's content never does; keyed by UIDVALIDITY and
 * UID. The store does not interpret them. Values put are visible to
 * store_cache_get at once and written out in batches (store_cache_flush,
 * store_sync, store_commit, store_close; append-only, checked record by
 * record, so a torn write loses only the tail); the file is rebuilt
 * freely (damaged, another UIDVALIDITY, or more than half of it for
 * expunged messages: compacted). Bounded: STORE_CACHE_VALUE_MAX per
 * value and a file limit (values past it are kept in memory only).
 * Reading does not open message files: the file is indexed with one
 * pass over its records and read with pread into a bounded window
 * (memory: 4 bytes per message and field in use, plus the window and
 * at most a batch of unwritten values).
 */
#define STORE_CACHE_ENVELOPE	0	/* IMAP ENVELOPE, as sent */
#define STORE_CACHE_BODYSTRUCTURE 1	/* IMAP BODYSTRUCTURE, as sent */
#define STORE_CACHE_BODY	2	/* IMAP BODY (non-extensible), as sent */
#define STORE_CACHE_MIME	3	/* the MIME tree (imapd's own encoding:
					 * offsets, line counts) */
#define STORE_CACHE_SENTDATE	4	/* Date: as seconds (imapd's encoding) */
#define STORE_CACHE_HEADER_SIZE	5	/* header bytes and lines (imapd's) */
#define STORE_CACHE_FIELDS	8	/* field numbers are 0..7 */
#define STORE_CACHE_VALUE_MAX	(1u << 20)
/* store_cache_get - message i's field: 1 with *val_r, *len_r (valid
 * until this handle's next store_cache_get, store_cache_put,
 * store_sync, store_refresh, store_expunge, store_cache_flush,
 * store_commit or store_close: the file is read into a bounded buffer,
 * never mapped), 0 when not cached */
int store_cache_get(struct store_mailbox *mb, size_t i, unsigned field, const void **val_r,
		    size_t *len_r);
/* store_cache_put - set message i's field (len <= STORE_CACHE_VALUE_MAX;
 * a value already cached is kept). 0, or -1 with *error_r (EINVAL). A
 * cache that cannot be written is not an error: values then live in
 * this handle's memory only. */
int store_cache_put(struct store_mailbox *mb, size_t i, unsigned field, const void *val,
		    size_t len, const char **error_r);
/* store_cache_flush - write pending values now (0; -1 with *error_r
 * when the file could not be written: the values stay in memory) */
int store_cache_flush(struct store_mailbox *mb, const char **error_r);

/*
 * store_append - add a message to the mailbox of handle mb (APPEND):
 * from fd (read from its current offset to EOF) when fd >= 0, else
 * from data[0..len). Written to tmp/, fsynced, given mtime internaldate
 * (0: now) and flags (STORE_FLAG_* including keywords from
 * store_keyword_index on mb), then under the mailbox lock given the next
 * UID and renamed into cur/, cur/ fsynced and the index rewritten: when
 * this returns 0 the message is durable and *uid_r (and
 * *uidvalidity_r, either may be NULL) are final (UIDPLUS APPENDUID).
 * The handle's snapshot does not change (store_sync shows the message,
 * as added, not claimed as recent). -1 with errno and *error_r; nothing
 * is left behind then. mb may be read-only: adding mail is allowed.
 */
int store_append(struct store_mailbox *mb, int fd, const void *data, size_t len,
		 uint32_t flags, time_t internaldate, uint32_t *uidvalidity_r, uint32_t *uid_r,
		 const char **error_r);

/*
 * store_copy - copy messages idx[0..n) of src (snapshot indexes, in the
 * order given: give them in ascending UID order for UIDPLUS) to the
 * mailbox of handle dest (another handle, or src itself), keeping
 * flags (keywords by name: letters are translated to dest's, created
 * there as needed; one that cannot be is dropped) and internal date.
 * Hard links when both are on one file system (same content, no copy),
 * else a copy; dest gets new unique names and consecutive new UIDs
 * given in the order of idx, written to uids_r[0..n) (may be NULL; 0
 * for a message that was expunged meanwhile and not copied), with
 * *uidvalidity_r (may be NULL). Durable before returning (fsync of
 * dest's cur/, its index rewritten). Snapshots do not change. Not
 * inside a batch of either handle (the lock of dest is taken). MOVE is
 * store_copy then store_expunge on src. 0, or -1 with *error_r (nothing
 * copied then: copies already made are removed).
 */
int store_copy(struct store_mailbox *src, const size_t *idx, size_t n,
	       struct store_mailbox *dest, uint32_t *uids_r, uint32_t *uidvalidity_r,
	       const char **error_r);

/* Folders (Maildir++). A valid folder name is not empty, not "INBOX"
 * (any case: that is the root), at most 200 bytes, has no "/", no
 * control character, does not start or end with "." and has no "..". */
bool store_folder_valid(const char *name);
/* store_folder_list - add the folder names under the Maildir++ root
 * (not INBOX), sorted, to *out (the caller's; strv_fini it): 0, or -1
 * with *error_r */
int store_folder_list(const char *root, struct strv *out, const char **error_r);
/* store_folder_create - make folder (cur/ new/ tmp/ maildirfolder);
 * -1 with errno EEXIST if it exists */
int store_folder_create(const char *root, const char *name, const char **error_r);
/* store_folder_delete - remove folder and every message in it (renamed
 * out of the way first, so that it disappears at once) */
int store_folder_delete(const char *root, const char *name, const char **error_r);

/* ==== Folders, part 2 (store_folder.c; owner of this section: the
 * IMAP mailbox work). Everything here works on the Maildir++ root and
 * folder names as the store keeps them: UTF-8, "." between hierarchy
 * levels, "INBOX" (this spelling) for the root in lists and files.
 * Changes to the folder set, the subscriptions and the special-use
 * table are serialised by a flock(2) on the root's
 * "posthorn-folders.lock"; the two files are replaced atomically. ==== */

/* Special-use attributes (RFC 6154), as bits. */
#define STORE_USE_ALL		(1u << 0)	/* \All */
#define STORE_USE_ARCHIVE	(1u << 1)	/* \Archive */
#define STORE_USE_DRAFTS	(1u << 2)	/* \Drafts */
#define STORE_USE_FLAGGED	(1u << 3)	/* \Flagged */
#define STORE_USE_JUNK		(1u << 4)	/* \Junk */
#define STORE_USE_SENT		(1u << 5)	/* \Sent */
#define STORE_USE_TRASH		(1u << 6)	/* \Trash */
#define STORE_USE_COUNT		7

/* store_use_name - "\Drafts" etc. for bit number n (0..STORE_USE_COUNT-1) */
const char *store_use_name(unsigned n);
/* store_use_parse - the STORE_USE_* bit of an attribute ("\Sent", any
 * case), or 0 if it is none of them */
unsigned store_use_parse(const char *attr, size_t len);

/* store_folder_is_inbox - "INBOX" in any case */
bool store_folder_is_inbox(const char *name);

/* One name of the folder tree. */
struct store_folder_info {
    char *name;			/* "INBOX", or a folder name */
    bool exists;		/* a mailbox (INBOX always) */
    bool has_children;		/* some existing folder below it */
    bool subscribed;
    unsigned special_use;	/* STORE_USE_* */
};

struct store_folder_tree {
    struct store_folder_info *items;	/* sorted by name (strcmp) */
    size_t count;
};

/*
 * store_folder_tree - every name worth listing under root: INBOX, the
 * folders, the parents of folders that do not exist themselves
 * (exists false, has_children true: \Noselect), and subscribed names
 * (which need not exist). 0, or -1 with *error_r; free the tree with
 * store_folder_tree_free.
 */
int store_folder_tree(const char *root, struct store_folder_tree *out, const char **error_r);
void store_folder_tree_free(struct store_folder_tree *tree);
/* store_folder_tree_find - the entry for name, or NULL */
const struct store_folder_info *store_folder_tree_find(const struct store_folder_tree *tree,
						       const char *name);

/*
 * store_folder_rename - rename folder from to to, with every folder
 * below it ("from.x" -> "to.x") and their special-use entries
 * (subscriptions stay as they are: RFC 3501 6.3.6). from "INBOX" moves the messages of INBOX (cur/ and new/,
 * keeping their UIDs) into a new folder to; INBOX stays, empty, and
 * its children stay where they are (RFC 3501). -1 with errno EEXIST
 * (to or one of the new names exists), ENOENT (nothing to rename),
 * EINVAL (an invalid name, to below from) and *error_r.
 */
int store_folder_rename(const char *root, const char *from, const char *to,
			const char **error_r);

/*
 * store_folder_exists - 1 if the folder (or INBOX) is a mailbox, 0 if
 * not, -1 with *error_r when root cannot be read
 */
int store_folder_exists(const char *root, const char *name, const char **error_r);

/*
 * Subscriptions: the file "posthorn-subscriptions" in the root (a
 * header line, then one name per line). Any valid name may be
 * subscribed, existing or not; deleting or renaming a folder keeps
 * its subscription (RFC 3501 6.3.6: never removed by the server).
 * store_subscribe - add (on) or remove name; 0, or -1 with *error_r.
 * store_subscriptions - the subscribed names, sorted, into *out.
 */
int store_subscribe(const char *root, const char *name, bool on, const char **error_r);
int store_subscriptions(const char *root, struct strv *out, const char **error_r);

/*
 * Special use: the file "posthorn-special-use" in the root (a header
 * line, then "\Attr NAME" lines). store_folder_set_use - set the
 * STORE_USE_* bits of folder name (0 clears them).
 * store_folders_ensure_special - for a root that has no such file yet
 * (a new user, or one from before it existed): make the folders
 * Drafts, Sent, Trash and Junk where missing, subscribe them, and
 * write the file with their uses. Idempotent and cheap when done (one
 * fstatat): a user who deletes one later does not get it back. Makes
 * a missing root. 0, or -1 with *error_r.
 */
int store_folder_set_use(const char *root, const char *name, unsigned uses,
			 const char **error_r);
int store_folders_ensure_special(const char *root, const char **error_r);

/* What store_folder_status reports. */
#define STORE_STATUS_MESSAGES		(1u << 0)
#define STORE_STATUS_RECENT		(1u << 1)
#define STORE_STATUS_UIDNEXT		(1u << 2)
#define STORE_STATUS_UIDVALIDITY	(1u << 3)
#define STORE_STATUS_UNSEEN		(1u << 4)
#define STORE_STATUS_HIGHESTMODSEQ	(1u << 5)

struct store_folder_status {
    uint32_t messages;
    uint32_t recent;
    uint32_t uidnext;
    uint32_t uidvalidity;
    uint32_t unseen;
    uint64_t highestmodseq;
};

/*
 * store_folder_status - the counts of mailbox name ("INBOX" or a
 * folder) that items asks for, without taking \Recent from anyone.
 * 0, or -1 with errno (ENOENT: no such mailbox) and *error_r.
 */
int store_folder_status(const char *root, const char *name, unsigned items,
			struct store_folder_status *st, const char **error_r);

#endif
