/* imapd.h - imapd's modules: the session and command dispatch
 * (imapd_session.c), the selected-mailbox state and untagged updates
 * (imap_select.c), the message commands (imap_fetch.c, imap_store.c,
 * imap_search.c, imap_copy.c, imap_append.c, imap_idle.c), the mailbox
 * commands (imap_mailbox.c, H-imapmbox), the pure message functions
 * (imap_msg.h, H-imapmsg). main.c runs them on session_host.h.
 *
 * The hand-over of the login's tagged reply: imapd-login sends no
 * tagged OK for a successful LOGIN/AUTHENTICATE; it passes the command's
 * tag in the hand-over (login_proto attribute "login_tag", given to the
 * session as session_info.login_tag) and imapd writes
 * "TAG OK [CAPABILITY ...] Logged in" once the token was redeemed and
 * the session runs. (A refused token: the dispatcher writes
 * "* BYE ..." and closes.)
 *
 * Sessions: one struct imap_session per client, many per worker
 * process (all of one uid). A command handler runs to completion or
 * suspends (imap_session_suspend) and finishes later from an event
 * (output drained, a literal arrived, the mailbox changed); the session
 * reads no further command until imap_cmd_done.
 *
 * Sequence numbers: the session keeps the client's view (sel->uids: the
 * UID of every sequence number the client knows, ascending). The store
 * snapshot (store.h) may be newer; a UID of the view missing from the
 * store was expunged by someone else and is reported (EXPUNGE) only when
 * the protocol allows (RFC 3501 7.4.1: not during FETCH, STORE, SEARCH
 * by sequence number; never during UID commands... except as allowed).
 */
#ifndef POSTHORN_IMAPD_H
#define POSTHORN_IMAPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* base */
#include "conn.h"
#include "str.h"

/* mail */
#include "imap_parse.h"

/* imapd */
#include "imap_mailbox.h"

/* store */
#include "store.h"

/* what CAPABILITY says after login (also in the tagged OK of the login) */
#define IMAPD_CAPABILITIES \
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE " \
    "CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH CONDSTORE"

#define IMAPD_LINE_MAX		65536		/* one command line */
#define IMAPD_IDLE_TIMEOUT_MS	(30 * 60 * 1000)	/* RFC 3501 5.4: >= 30 min */

enum imap_state {
    IMAP_STATE_AUTH = 1,	/* authenticated, no mailbox selected */
    IMAP_STATE_SELECTED,
    IMAP_STATE_LOGOUT,		/* BYE sent, closing */
};

/* The selected mailbox. */
struct imap_selected {
    struct store_mailbox *mb;
    char *name;			/* as the client named it (UTF-8 / mUTF-7 as given) */
    char *folder;		/* store folder name (NULL: INBOX) */
    bool readonly;		/* EXAMINE, or no write access */
    /* the client's view: uids[seq - 1], ascending */
    uint32_t *uids;
    size_t count;		/* EXISTS the client knows */
    size_t cap;
    uint32_t recent_sent;	/* the RECENT count last sent */
    uint64_t highestmodseq_sent;
    /* flags (and modseq) the client knows, per UID: to send FETCH FLAGS
     * for changes by other sessions */
    uint32_t *flags_known;	/* parallel to uids */
    uint64_t *modseq_known;	/* parallel to uids */
    uint32_t keywords_known;	/* keyword bits announced in FLAGS */
    int watch_fd;		/* store_watch_fd registered on the loop, or -1 */
    bool dirty;			/* the mailbox may have changed: store_sync */
    struct store_changes changes;	/* store_sync's arrays, reused */
    /* imap_select_sync's last full walk: nothing to tell while the
     * store's generation and the CONDSTORE state stay the same */
    bool walk_valid;
    bool walk_condstore;
    uint64_t walk_generation;
};

struct imap_session;
struct imap_session_priv;

/* A command handler: args[0..nargs) after the name (after "UID" and the
 * sub-command's name for UID commands, with uid set). It replies with
 * imap_cmd_done (or suspends and calls that later). */
typedef void imap_cmd_fn(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			 bool uid);

/* command flags */
#define IMAP_CMD_ANY		0	/* any state (CAPABILITY, NOOP, LOGOUT, ID) */
#define IMAP_CMD_AUTH		(1u << 0)	/* authenticated or selected */
#define IMAP_CMD_SELECTED	(1u << 1)	/* selected state only */
#define IMAP_CMD_UID		(1u << 2)	/* also as "UID name" */
#define IMAP_CMD_SEQ_NO_EXPUNGE	(1u << 3)	/* untagged EXPUNGE not allowed
						 * after it (FETCH, STORE, SEARCH
						 * by sequence number) */
#define IMAP_CMD_STREAM		(1u << 4)	/* may stream a literal (APPEND) */

struct imap_command {
    const char *name;		/* upper case */
    imap_cmd_fn *fn;
    unsigned flags;
};

/* the table (imapd_session.c), sorted by name */
extern const struct imap_command imap_commands[];
extern const size_t imap_command_count;

struct imap_session {
    struct conn *conn;
    enum imap_state state;
    char *user;
    char *mail_root;
    uid_t uid;
    gid_t gid;
    uint64_t quota_bytes;
    char *client_address;
    struct imap_parser *parser;
    const char *tag;		/* of the command being served */
    const struct imap_command *cmd;	/* the command being served */
    struct imap_selected *sel;	/* NULL unless selected */
    bool condstore;		/* ENABLE CONDSTORE or a CONDSTORE-using command */
    bool busy;			/* a command is being served */
    bool uid_cmd;		/* it came as "UID name" */
    bool idling;		/* in IDLE (untagged updates go out at once) */
    unsigned commands;		/* served so far (bounded) */
    unsigned bad_commands;	/* BAD replies in a row (bounded) */
    /* a suspended command's state: freed by cmd_ctx_free at the end of
     * the command or of the session */
    void *cmd_ctx;
    void (*cmd_ctx_free)(struct imap_session *s, void *ctx);
    struct imap_session_priv *priv;	/* imapd_session.c's own state */
};

/*
 * Output. Everything goes to s->conn (queued; flushed by the event
 * loop). imap_tagged ends the current command's reply line:
 *   "TAG STATUS TEXT\r\n"  (status "OK", "NO", "BAD"; text printf-like,
 *                           may begin with "[CODE] ")
 */
void imap_printf(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_write(struct imap_session *s, const void *data, size_t len);
/* imap_untagged - "* TEXT\r\n" */
void imap_untagged(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* imap_tagged - the final reply; NOT the end of the command (see imap_cmd_done) */
void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* imap_write_astring / _string / _nstring / _literal - one value in IMAP
 * syntax (quoting as imap_parse.h's imap_append_*; any length) */
void imap_write_astring(struct imap_session *s, const char *v, size_t len);
void imap_write_string(struct imap_session *s, const char *v, size_t len);
void imap_write_nstring(struct imap_session *s, const char *v, size_t len);
void imap_write_literal(struct imap_session *s, const char *v, size_t len);

/* imap_cmd_done - the tagged reply "TAG status text" and the end of the
 * command: untagged updates allowed by the command are sent first, then
 * the session reads the next command. */
void imap_cmd_done(struct imap_session *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* imap_cmd_ok - imap_cmd_done(s, "OK", "NAME completed") */
void imap_cmd_ok(struct imap_session *s);
/* imap_cmd_bad / imap_cmd_no - shorthand */
void imap_cmd_bad(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap_cmd_no(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* imap_session_suspend - the handler returns before its reply: fn(s)
 * is called when the output queue drained below CONN_LOW_WATER (long
 * FETCH replies) until it calls imap_cmd_done; NULL: the handler
 * resumes itself (IDLE, APPEND's literal). */
void imap_session_suspend(struct imap_session *s, void (*on_drain)(struct imap_session *s));

/* imap_session_literal_fd - the file (positioned at 0) holding a
 * streamed literal argument (APPEND's message); owned by the session
 * until the end of the command */
int imap_session_literal_fd(struct imap_session *s, const struct imap_arg *a);
/* imap_session_mailbox_changed - the selected mailbox may have changed
 * (watch fd readable): untagged updates now when idling */
void imap_session_mailbox_changed(struct imap_session *s);
/* imap_session_bye - an unsolicited "* BYE text", then close */
void imap_session_bye(struct imap_session *s, const char *text);
/* imap_session_closed - the connection is going away (stop producing) */
bool imap_session_closed(const struct imap_session *s);

/* Selected state (imap_select.c). */
/* imap_select_open - open folder (NULL: INBOX) as the selected mailbox,
 * closing a previous one (no expunge); sends the SELECT/EXAMINE
 * untagged replies. 0, or -1 with *error_r (the previous mailbox is
 * closed then: auth state). */
int imap_select_open(struct imap_session *s, const char *name, const char *folder,
		     bool readonly, const char **error_r);
/* imap_select_close - leave the selected state (no expunge) */
void imap_select_close(struct imap_session *s);
/* imap_select_sync - refresh the store and send what the client may
 * learn now: EXPUNGE (if allow_expunge), EXISTS, RECENT, FETCH FLAGS
 * for flag changes by others */
void imap_select_sync(struct imap_session *s, bool allow_expunge);
/* imap_select_seq_uid - the UID of sequence number seq (1-based), 0 if
 * out of range */
uint32_t imap_select_seq_uid(const struct imap_session *s, uint32_t seq);
/* imap_select_index - the store index of the view's message seq, or -1
 * when the store lost it (expunged by another session, not reported) */
long imap_select_index(const struct imap_session *s, uint32_t seq);
/* imap_select_resolve - the sequence numbers (1-based, ascending, no
 * duplicates) that the set names; uid: the set is of UIDs. A malloc'ed
 * array in *seqs_r (free it), its length in *n_r. false: bad syntax */
bool imap_select_resolve(const struct imap_session *s, const char *set, bool uid,
			 uint32_t **seqs_r, size_t *n_r);

/* imap_select_fetch_flags - "* seq FETCH (FLAGS (..) [UID u] [MODSEQ
 * (m)])" for message m at seq (UID with UID commands, MODSEQ with
 * CONDSTORE) */
void imap_select_fetch_flags(struct imap_session *s, size_t seq, const struct store_msg *m);

/* The flags of IMAP <-> store. */
/* imap_flags_append - "(\Seen \Deleted kw...)" of flags (store bits) into out */
void imap_flags_append(struct imap_session *s, struct str *out, uint32_t flags, bool recent);
/* imap_flags_parse - a flag list (or single flag) into store bits;
 * keywords are created when create; false with *error_r on a bad flag */
bool imap_flags_parse(struct imap_session *s, const struct imap_arg *args, size_t n,
		      bool create, uint32_t *flags_r, const char **error_r);
bool imap_flags_parse_mb(struct store_mailbox *mb, const struct imap_arg *args, size_t n,
			 bool create, uint32_t *flags_r, const char **error_r);

/*
 * Mailbox commands (imap_mailbox.c, H-imapmbox). Same signature as every
 * handler; named in the command table of imapd_session.c.
 */
imap_cmd_fn imap_cmd_create;
imap_cmd_fn imap_cmd_delete;
imap_cmd_fn imap_cmd_rename;
imap_cmd_fn imap_cmd_subscribe;
imap_cmd_fn imap_cmd_unsubscribe;
imap_cmd_fn imap_cmd_list;
imap_cmd_fn imap_cmd_lsub;
imap_cmd_fn imap_cmd_status;
imap_cmd_fn imap_cmd_namespace;

/* imap_mailbox_session_start - once per session after login, before
 * the first command (special-use folders of a new user); H-imapmbox */
void imap_mailbox_session_start(struct imap_session *s);

/* Mailbox names (imap_mailbox.h, H-imapmbox): imap_mailbox_name gives
 * the store name of a wire name ("INBOX" for the inbox);
 * imap_mailbox_session_start runs once per session after login. */

/* Message commands (imapcore). */
imap_cmd_fn imap_cmd_select;
imap_cmd_fn imap_cmd_examine;
imap_cmd_fn imap_cmd_append;
imap_cmd_fn imap_cmd_check;
imap_cmd_fn imap_cmd_close;
imap_cmd_fn imap_cmd_unselect;
imap_cmd_fn imap_cmd_expunge;
imap_cmd_fn imap_cmd_search;
imap_cmd_fn imap_cmd_fetch;
imap_cmd_fn imap_cmd_store;
imap_cmd_fn imap_cmd_copy;
imap_cmd_fn imap_cmd_move;
imap_cmd_fn imap_cmd_idle;

/* session (imapd_session.c) */
struct session_info;
void imapd_session_start(int fd, const struct session_info *info);
void imapd_worker_retire(void);

#endif
