/* imap_select.c - the selected state: SELECT, EXAMINE, CLOSE, UNSELECT,
 * EXPUNGE; the client's view of the mailbox (sequence numbers and the
 * flags it knows) kept beside the store's snapshot, and the untagged
 * EXISTS, RECENT, EXPUNGE, FETCH and FLAGS updates that bring the
 * client up to date when the protocol allows; flags <-> store bits. */

/* system */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* base */
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "imap_parse.h"

/* store */
#include "store.h"

/* imapd */
#include "imapd.h"

/* the system flags and their store bits */
static const struct {
    const char *name;
    uint32_t bit;
} sysflags[] = {
    {"\\Answered", STORE_FLAG_REPLIED},
    {"\\Flagged", STORE_FLAG_FLAGGED},
    {"\\Deleted", STORE_FLAG_TRASHED},
    {"\\Seen", STORE_FLAG_SEEN},
    {"\\Draft", STORE_FLAG_DRAFT},
};
#define FORWARDED	"$Forwarded"	/* Maildir P */

/* named_keywords - the keyword bits that have names in mb */
static uint32_t named_keywords(struct store_mailbox *mb)
{
    uint32_t bits = 0;
    unsigned n;

    for (n = 0; n < STORE_KEYWORDS_MAX; n++)
	if (store_keyword_name(mb, n))
	    bits |= STORE_FLAG_KEYWORD(n);
    return bits;
}

/* imap_flags_append - "(\Seen ...)" of flags */
void imap_flags_append(struct imap_session *s, struct str *out, uint32_t flags, bool recent)
{
    size_t i;
    unsigned n;
    bool first = true;

    str_appendc_or_panic(out, '(');
    for (i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++)
	if (flags & sysflags[i].bit) {
	    if (!first)
		str_appendc_or_panic(out, ' ');
	    str_appends_or_panic(out, sysflags[i].name);
	    first = false;
	}
    if (flags & STORE_FLAG_PASSED) {
	if (!first)
	    str_appendc_or_panic(out, ' ');
	str_appends_or_panic(out, FORWARDED);
	first = false;
    }
    for (n = 0; n < STORE_KEYWORDS_MAX && s->sel; n++) {
	const char *name;

	if (!(flags & STORE_FLAG_KEYWORD(n)) || (name = store_keyword_name(s->sel->mb, n)) == NULL)
	    continue;
	if (!first)
	    str_appendc_or_panic(out, ' ');
	str_appends_or_panic(out, name);
	first = false;
    }
    if (recent) {
	if (!first)
	    str_appendc_or_panic(out, ' ');
	str_appends_or_panic(out, "\\Recent");
    }
    str_appendc_or_panic(out, ')');
}

/* flag_one - the bit of one flag name in mailbox mb; \Recent is an
 * error (only the server sets it) */
static bool flag_one(struct store_mailbox *mb, const char *name, bool create, uint32_t *bit_r,
		     const char **error_r)
{
    size_t i;
    int k;

    *bit_r = 0;
    if (name[0] == '\\') {
	for (i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++)
	    if (strcasecmp(name, sysflags[i].name) == 0) {
		*bit_r = sysflags[i].bit;
		return true;
	    }
	*error_r = strcasecmp(name, "\\Recent") == 0
	    ? "\\Recent is the server's: clients cannot set or clear it (RFC 3501 2.3.2)"
	    : "Invalid system flag";
	return false;
    }
    if (strcasecmp(name, FORWARDED) == 0) {
	*bit_r = STORE_FLAG_PASSED;
	return true;
    }
    for (i = 0; name[i]; i++) {
	unsigned char c = (unsigned char) name[i];

	if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c)) {
	    *error_r = "Invalid keyword";
	    return false;
	}
    }
    if (mb == NULL) {
	*error_r = "No mailbox for keywords";
	return false;
    }
    k = store_keyword_index(mb, name, create, error_r);
    if (k < 0) {
	if (errno == ENOENT && !create)
	    return true;	/* unknown keyword: matches nothing */
	if (errno == ENOSPC)
	    *error_r = "[LIMIT] Too many keywords in this mailbox";
	return false;
    }
    *bit_r = STORE_FLAG_KEYWORD(k);
    return true;
}

/* imap_flags_parse - a flag list (one list argument, or atoms) to bits */
bool imap_flags_parse(struct imap_session *s, const struct imap_arg *args, size_t n,
		      bool create, uint32_t *flags_r, const char **error_r)
{
    return imap_flags_parse_mb(s->sel ? s->sel->mb : NULL, args, n, create, flags_r, error_r);
}

/* imap_flags_parse_mb - the same for mailbox mb (APPEND) */
bool imap_flags_parse_mb(struct store_mailbox *mb, const struct imap_arg *args, size_t n,
			 bool create, uint32_t *flags_r, const char **error_r)
{
    const struct imap_arg *l = args;
    size_t ln = n, i;

    *flags_r = 0;
    if (n == 1 && args[0].type == IMAP_ARG_LIST) {
	l = args[0].list;
	ln = args[0].count;
    }
    for (i = 0; i < ln; i++) {
	const char *name;
	uint32_t bit;

	if (!imap_arg_atom(&l[i], &name) || l[i].type == IMAP_ARG_NIL) {
	    *error_r = "Flags are atoms";
	    return false;
	}
	if (!flag_one(mb, name, create, &bit, error_r))
	    return false;
	*flags_r |= bit;
    }
    return true;
}

/* send_flags - "* FLAGS" and "* OK [PERMANENTFLAGS ...]" */
static void send_flags(struct imap_session *s)
{
    struct imap_selected *sel = s->sel;
    struct str *out = str_new(8192);
    uint32_t kw = named_keywords(sel->mb);

    sel->keywords_known = kw;
    str_appends_or_panic(out, "FLAGS ");
    imap_flags_append(s, out, STORE_FLAG_REPLIED | STORE_FLAG_FLAGGED | STORE_FLAG_TRASHED
		      | STORE_FLAG_SEEN | STORE_FLAG_DRAFT | STORE_FLAG_PASSED | kw, false);
    imap_untagged(s, "%s", str_cstr(out));
    str_reset(out);
    str_appends_or_panic(out, "OK [PERMANENTFLAGS ");
    if (sel->readonly) {
	str_appends_or_panic(out, "()");
    } else {
	imap_flags_append(s, out, STORE_FLAG_REPLIED | STORE_FLAG_FLAGGED | STORE_FLAG_TRASHED
			  | STORE_FLAG_SEEN | STORE_FLAG_DRAFT | STORE_FLAG_PASSED | kw, false);
	if (kw != (uint32_t) (((1u << STORE_KEYWORDS_MAX) - 1) << 6)) {
	    /* keywords can still be made: "\*" before the ")" */
	    if (!str_truncate(out, str_len(out) - 1))
		msg_panic("send_flags: truncate");
	    str_appends_or_panic(out, " \\*)");
	}
    }
    str_appends_or_panic(out, "] Flags permitted.");
    imap_untagged(s, "%s", str_cstr(out));
    str_free(&out);
}

/* view_grow - room for n entries */
static void view_grow(struct imap_selected *sel, size_t n)
{
    size_t cap;

    if (n <= sel->cap)
	return;
    cap = sel->cap ? sel->cap : 64;
    while (cap < n)
	cap *= 2;
    sel->uids = mem_realloc(sel->uids, cap * sizeof(*sel->uids));
    sel->flags_known = mem_realloc(sel->flags_known, cap * sizeof(*sel->flags_known));
    sel->modseq_known = mem_realloc(sel->modseq_known, cap * sizeof(*sel->modseq_known));
    sel->cap = cap;
}

/* watch_cb - the store's watch fd is readable */
static void watch_cb(int fd, void *ctx)
{
    struct imap_session *s = ctx;

    (void) fd;
    if (s->sel == NULL)
	return;
    if (!store_watch_clear(s->sel->mb))
	return;			/* only this session's own index/cache writes */
    s->sel->dirty = true;
    imap_session_mailbox_changed(s);
}

/* imap_select_open - open and announce the mailbox */
int imap_select_open(struct imap_session *s, const char *name, const char *folder,
		     bool readonly, const char **error_r)
{
    struct imap_selected *sel;
    struct store_mailbox *mb;
    size_t i, n, unseen = 0;
    const char *err;

    if (s->sel)
	imap_select_close(s);
    mb = store_open(s->mail_root, folder, readonly ? STORE_READ_ONLY
		    : (STORE_READ_WRITE | STORE_RECENT), error_r);
    if (mb == NULL && !readonly && (errno == EACCES || errno == EROFS || errno == EPERM)) {
	mb = store_open(s->mail_root, folder, STORE_READ_ONLY, error_r);
	readonly = true;
    }
    if (mb == NULL)
	return -1;
    sel = mem_zalloc(sizeof(*sel));
    sel->mb = mb;
    sel->name = mem_strdup(name);
    sel->folder = folder ? mem_strdup(folder) : NULL;
    sel->readonly = readonly;
    sel->watch_fd = -1;
    s->sel = sel;
    s->state = IMAP_STATE_SELECTED;
    n = store_count(mb);
    view_grow(sel, n);
    for (i = 0; i < n; i++) {
	const struct store_msg *m = store_msg(mb, i);

	sel->uids[i] = m->uid;
	sel->flags_known[i] = m->flags;
	sel->modseq_known[i] = m->modseq;
	if (unseen == 0 && !(m->flags & STORE_FLAG_SEEN))
	    unseen = i + 1;
    }
    sel->count = n;
    sel->recent_sent = (uint32_t) store_recent_count(mb);
    sel->highestmodseq_sent = store_highestmodseq(mb);
    send_flags(s);
    imap_untagged(s, "%zu EXISTS", n);
    imap_untagged(s, "%u RECENT", sel->recent_sent);
    if (unseen)
	imap_untagged(s, "OK [UNSEEN %zu] First unseen.", unseen);
    imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", store_uidvalidity(mb));
    imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", store_uidnext(mb));
    imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest",
		  (unsigned long long) store_highestmodseq(mb));
    sel->watch_fd = store_watch_fd(mb, &err);
    if (sel->watch_fd >= 0)
	event_add_read(sel->watch_fd, watch_cb, s);
    return 0;
}

/* imap_select_close - leave the selected state */
void imap_select_close(struct imap_session *s)
{
    struct imap_selected *sel = s->sel;
    const char *err;

    if (sel == NULL)
	return;
    if (sel->watch_fd >= 0)
	event_remove_read(sel->watch_fd);
    if (store_cache_flush(sel->mb, &err) < 0)
	msg_warn("%s: cache: %s", s->user, err);
    store_changes_free(&sel->changes);
    store_close(&sel->mb);
    free(sel->uids);
    free(sel->flags_known);
    free(sel->modseq_known);
    free(sel->name);
    free(sel->folder);
    free(sel);
    s->sel = NULL;
    if (s->state == IMAP_STATE_SELECTED)
	s->state = IMAP_STATE_AUTH;
}

/* imap_select_fetch_flags - "* seq FETCH (FLAGS (...) [UID u] [MODSEQ
 * (m)])" */
void imap_select_fetch_flags(struct imap_session *s, size_t seq, const struct store_msg *m)
{
    struct str *out = str_new(4096);

    str_printf_or_panic(out, "%zu FETCH (", seq);
    if (s->uid_cmd)
	str_appendf_or_panic(out, "UID %u ", m->uid);
    str_appends_or_panic(out, "FLAGS ");
    imap_flags_append(s, out, m->flags, m->recent);
    if (s->condstore)
	str_appendf_or_panic(out, " MODSEQ (%llu)", (unsigned long long) m->modseq);
    str_appendc_or_panic(out, ')');
    imap_untagged(s, "%s", str_cstr(out));
    str_free(&out);
}

/* watch_pending - the watch fd has something to read */
static bool watch_pending(int fd)
{
    struct pollfd p = {.fd = fd,.events = POLLIN };

    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* imap_select_sync - bring the client up to date */
void imap_select_sync(struct imap_session *s, bool allow_expunge)
{
    struct imap_selected *sel = s->sel;
    struct store_mailbox *mb;
    size_t i, j, scount, gone = 0, old_count;
    uint32_t last_uid, recent;
    const char *err;

    if (sel == NULL || imap_session_closed(s))
	return;
    mb = sel->mb;
    if (sel->watch_fd < 0 || sel->dirty || watch_pending(sel->watch_fd)) {
	/* (the watch drained: nothing but our own index or cache writes
	 * needs no sync) */
	bool changed = sel->watch_fd < 0 || sel->dirty;

	if (sel->watch_fd >= 0 && store_watch_clear(mb))
	    changed = true;
	sel->dirty = false;
	if (!changed) {
	    /* nothing to read again */
	} else if (store_sync(mb, &sel->changes, &err) < 0) {
	    msg_warn("%s: %s: %s", s->user, sel->name, err);
	} else if (sel->changes.uidvalidity_changed) {
	    /* sequence numbers and UIDs the client holds are void: it must
	     * start over (RFC 3501 2.3.1.1) */
	    imap_select_close(s);
	    imap_session_bye(s, "The mailbox was rebuilt under a new UIDVALIDITY; log in again");
	    return;
	}
    }
    /* nothing changed since a walk that left nothing untold (the common
     * case between two commands): skip the walks over the mailbox */
    if (sel->walk_valid && sel->walk_generation == store_generation(mb)
	&& sel->walk_condstore == s->condstore)
	return;
    /* merge walk: the view against the snapshot (both ascending) */
    scount = store_count(mb);
    for (i = 0, j = 0; i < sel->count; i++) {
	const struct store_msg *m;

	while (j < scount && store_msg(mb, j)->uid < sel->uids[i])
	    j++;
	if (j >= scount || (m = store_msg(mb, j))->uid != sel->uids[i]) {
	    gone++;
	    continue;
	}
	if (m->flags != sel->flags_known[i]
	    || (s->condstore && m->modseq != sel->modseq_known[i])) {
	    if (named_keywords(mb) & ~sel->keywords_known)
		send_flags(s);
	    imap_select_fetch_flags(s, i + 1, m);
	    sel->flags_known[i] = m->flags;
	    sel->modseq_known[i] = m->modseq;
	}
    }
    if (gone && allow_expunge) {
	size_t k = sel->count;

	/* EXPUNGE from the highest sequence number down: each one is
	 * then still right when the client applies it */
	for (i = sel->count; i-- > 0;) {
	    if (store_find_uid(mb, sel->uids[i]) < 0)
		imap_untagged(s, "%zu EXPUNGE", i + 1);
	}
	for (i = 0, k = 0; i < sel->count; i++) {
	    if (store_find_uid(mb, sel->uids[i]) < 0)
		continue;
	    sel->uids[k] = sel->uids[i];
	    sel->flags_known[k] = sel->flags_known[i];
	    sel->modseq_known[k] = sel->modseq_known[i];
	    k++;
	}
	sel->count = k;
    }
    /* new messages: above the last UID the client knows */
    old_count = sel->count;
    last_uid = sel->count ? sel->uids[sel->count - 1] : 0;
    for (j = scount; j > 0 && store_msg(mb, j - 1)->uid > last_uid; j--)
	;
    if (j < scount) {
	view_grow(sel, sel->count + (scount - j));
	for (; j < scount; j++) {
	    const struct store_msg *m = store_msg(mb, j);

	    sel->uids[sel->count] = m->uid;
	    sel->flags_known[sel->count] = m->flags;
	    sel->modseq_known[sel->count] = m->modseq;
	    sel->count++;
	}
    }
    if (named_keywords(mb) & ~sel->keywords_known)
	send_flags(s);
    recent = (uint32_t) store_recent_count(mb);
    if (sel->count != old_count) {
	imap_untagged(s, "%zu EXISTS", sel->count);
	imap_untagged(s, "%u RECENT", recent);
    } else if (recent != sel->recent_sent) {
	imap_untagged(s, "%u RECENT", recent);
    }
    sel->recent_sent = recent;
    /* expunges held back (allow_expunge false) must be sent later */
    sel->walk_valid = gone == 0 || allow_expunge;
    sel->walk_generation = store_generation(mb);
    sel->walk_condstore = s->condstore;
}

/* imap_select_seq_uid - the UID of a sequence number of the view */
uint32_t imap_select_seq_uid(const struct imap_session *s, uint32_t seq)
{
    if (s->sel == NULL || seq == 0 || seq > s->sel->count)
	return 0;
    return s->sel->uids[seq - 1];
}

/* imap_select_index - the store index of a sequence number */
long imap_select_index(const struct imap_session *s, uint32_t seq)
{
    uint32_t uid = imap_select_seq_uid(s, seq);

    if (uid == 0)
	return -1;
    return store_find_uid(s->sel->mb, uid);
}

/* lower_bound - the first view index with uid >= u */
static size_t lower_bound(const struct imap_selected *sel, uint32_t u)
{
    size_t lo = 0, hi = sel->count;

    while (lo < hi) {
	size_t mid = lo + (hi - lo) / 2;

	if (sel->uids[mid] < u)
	    lo = mid + 1;
	else
	    hi = mid;
    }
    return lo;
}

/* imap_select_resolve - the sequence numbers a set names */
bool imap_select_resolve(const struct imap_session *s, const char *set, bool uid,
			 uint32_t **seqs_r, size_t *n_r)
{
    const struct imap_selected *sel = s->sel;
    struct imap_seqset ss;
    unsigned char *mark;
    size_t i, n = 0;
    uint32_t *seqs;

    *seqs_r = NULL;
    *n_r = 0;
    if (sel == NULL || !imap_seqset_parse(set, 100000, &ss))
	return false;
    if (ss.n == 1 && !uid) {
	/* one range of sequence numbers (FETCH n, 1:*): no marks */
	uint32_t lo = ss.r[0].lo, hi = ss.r[0].hi, star = (uint32_t) sel->count, q;

	imap_seqset_fini(&ss);
	if (lo == IMAP_SEQ_STAR)
	    lo = star;
	if (hi == IMAP_SEQ_STAR)
	    hi = star;
	if (lo > hi) {
	    q = lo;
	    lo = hi;
	    hi = q;
	}
	if (lo == 0 || hi > sel->count)
	    return false;
	seqs = mem_alloc_array(hi - lo + 1, sizeof(*seqs));
	for (q = lo; ; q++) {
	    seqs[n++] = q;
	    if (q == hi)
		break;
	}
	*seqs_r = seqs;
	*n_r = n;
	return true;
    }
    mark = mem_zalloc(sel->count + 1);
    for (i = 0; i < ss.n; i++) {
	uint32_t lo = ss.r[i].lo, hi = ss.r[i].hi;

	if (uid) {
	    uint32_t star = sel->count ? sel->uids[sel->count - 1] : 0;
	    size_t k;

	    if (lo == IMAP_SEQ_STAR)
		lo = star;
	    if (hi == IMAP_SEQ_STAR)
		hi = star;
	    if (lo > hi) {
		uint32_t t = lo;

		lo = hi;
		hi = t;
	    }
	    for (k = lower_bound(sel, lo); k < sel->count && sel->uids[k] <= hi; k++)
		mark[k] = 1;
	} else {
	    uint32_t star = (uint32_t) sel->count;

	    if (lo == IMAP_SEQ_STAR)
		lo = star;
	    if (hi == IMAP_SEQ_STAR)
		hi = star;
	    if (lo > hi) {
		uint32_t t = lo;

		lo = hi;
		hi = t;
	    }
	    if (lo == 0 || hi > sel->count) {
		free(mark);
		imap_seqset_fini(&ss);
		return false;
	    }
	    memset(mark + lo - 1, 1, hi - lo + 1);
	}
    }
    imap_seqset_fini(&ss);
    for (i = 0; i < sel->count; i++)
	n += mark[i];
    seqs = mem_alloc_array(n ? n : 1, sizeof(*seqs));
    for (i = 0, n = 0; i < sel->count; i++)
	if (mark[i])
	    seqs[n++] = (uint32_t) i + 1;
    free(mark);
    *seqs_r = seqs;
    *n_r = n;
    return true;
}

/* Commands */

/* select_common - SELECT and EXAMINE */
static void select_common(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			  bool readonly)
{
    const char *wire, *why, *err;
    size_t len;
    struct str *name;

    if (nargs < 1 || nargs > 2 || !imap_arg_astring(&args[0], &wire, &len))
	return imap_cmd_bad(s, "%s needs a mailbox name", s->cmd->name);
    if (nargs == 2) {
	const struct imap_arg *l;
	size_t n, i;

	if (!imap_arg_list(&args[1], &l, &n))
	    return imap_cmd_bad(s, "%s: bad parameters", s->cmd->name);
	for (i = 0; i < n; i++) {
	    if (imap_arg_atom_is(&l[i], "CONDSTORE"))
		s->condstore = true;
	    else
		return imap_cmd_bad(s, "%s: unknown parameter", s->cmd->name);
	}
    }
    name = str_new(4096);
    if (!imap_mailbox_name(wire, len, name, &why)) {
	str_free(&name);
	if (s->sel)
	    imap_select_close(s);
	return imap_cmd_no(s, "%s", why);
    }
    if (imap_select_open(s, str_cstr(name), strcasecmp(str_cstr(name), "INBOX") == 0 ? NULL
			 : str_cstr(name), readonly, &err) < 0) {
	int e = errno;

	str_free(&name);
	if (e == ENOENT)
	    return imap_cmd_no(s, "[NONEXISTENT] Mailbox does not exist");
	msg_warn("%s: select: %s", s->user, err);
	return imap_cmd_no(s, "[SERVERBUG] Cannot open the mailbox");
    }
    str_free(&name);
    imap_cmd_done(s, "OK", "[%s] %s completed", s->sel->readonly ? "READ-ONLY" : "READ-WRITE",
		  s->cmd->name);
}

/* imap_cmd_select - SELECT */
void imap_cmd_select(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    (void) uid;
    select_common(s, args, nargs, false);
}

/* imap_cmd_examine - EXAMINE (read-only) */
void imap_cmd_examine(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		      bool uid)
{
    (void) uid;
    select_common(s, args, nargs, true);
}

/* expunge_deleted - expunge the \Deleted messages (of seqs, or all);
 * 0 or -1 with *error_r */
static int expunge_deleted(struct imap_session *s, const uint32_t *seqs, size_t nseqs,
			   bool all, const char **error_r)
{
    struct imap_selected *sel = s->sel;
    size_t i, n = 0, total = all ? store_count(sel->mb) : nseqs;
    uint32_t *uids = mem_alloc_array(total ? total : 1, sizeof(*uids));
    int r = 0;

    for (i = 0; i < total; i++) {
	const struct store_msg *m;

	if (all) {
	    m = store_msg(sel->mb, i);
	} else {
	    long idx = imap_select_index(s, seqs[i]);

	    if (idx < 0)
		continue;
	    m = store_msg(sel->mb, (size_t) idx);
	}
	if (m->flags & STORE_FLAG_TRASHED)
	    uids[n++] = m->uid;
    }
    if (n)
	r = store_expunge(sel->mb, uids, n, NULL, error_r);
    free(uids);
    return r;
}

/* imap_cmd_expunge - EXPUNGE and UID EXPUNGE */
void imap_cmd_expunge(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		      bool uid)
{
    uint32_t *seqs = NULL;
    size_t n = 0;
    const char *err, *set;

    if (uid) {
	if (nargs != 1 || !imap_arg_atom(&args[0], &set)
	    || !imap_select_resolve(s, set, true, &seqs, &n))
	    return imap_cmd_bad(s, "UID EXPUNGE needs a UID set");
    } else if (nargs) {
	return imap_cmd_bad(s, "EXPUNGE takes no arguments");
    }
    if (s->sel->readonly) {
	free(seqs);
	return imap_cmd_no(s, "[READ-ONLY] The mailbox is read-only");
    }
    if (expunge_deleted(s, seqs, n, !uid, &err) < 0) {
	free(seqs);
	msg_warn("%s: expunge: %s", s->user, err);
	return imap_cmd_no(s, "[SERVERBUG] Expunge failed");
    }
    free(seqs);
    if (s->condstore) {
	imap_select_sync(s, true);
	if (s->sel)
	    return imap_cmd_done(s, "OK", "[HIGHESTMODSEQ %llu] Expunge completed",
				 (unsigned long long) store_highestmodseq(s->sel->mb));
    }
    imap_cmd_done(s, "OK", "Expunge completed");
}

/* imap_cmd_close - CLOSE: expunge silently, leave the selected state */
void imap_cmd_close(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		    bool uid)
{
    const char *err;

    (void) args;
    (void) uid;
    if (nargs)
	return imap_cmd_bad(s, "CLOSE takes no arguments");
    if (!s->sel->readonly && expunge_deleted(s, NULL, 0, true, &err) < 0)
	msg_warn("%s: close: expunge: %s", s->user, err);
    imap_select_close(s);
    imap_cmd_ok(s);
}

/* imap_cmd_unselect - UNSELECT (RFC 3691) */
void imap_cmd_unselect(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		       bool uid)
{
    (void) args;
    (void) uid;
    if (nargs)
	return imap_cmd_bad(s, "UNSELECT takes no arguments");
    imap_select_close(s);
    imap_cmd_ok(s);
}
