/* imap_mailbox.c - imapd's mailbox-level commands: CREATE (with USE),
 * DELETE, RENAME (INBOX too), SUBSCRIBE, UNSUBSCRIBE, LIST (RFC 3501,
 * LIST-EXTENDED 5258, LIST-STATUS 5819, SPECIAL-USE 6154, CHILDREN
 * 3348), LSUB, STATUS, NAMESPACE (2342), and the conversion of mailbox
 * names between the wire (modified UTF-7) and the store (UTF-8). The
 * folders themselves are the store's (store.h, folder sections). */

/* System library. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "strv.h"

/* Mail library. */
#include "imap_parse.h"

/* Store. */
#include "store.h"

/* This program. */
#include "imap_mailbox.h"
#include "imap_mutf7.h"
#include "imapd.h"

#define MB_NAME_MAX	4096		/* a wire name or pattern */
#define MB_PATTERNS_MAX	32		/* patterns of one LIST */

/* imap_mailbox_name - see imap_mailbox.h */
bool imap_mailbox_name(const char *wire, size_t len, struct str *out, const char **why_r)
{
    size_t start = str_len(out);

    if (len > MB_NAME_MAX || memchr(wire, 0, len) != NULL) {
	*why_r = "[CANNOT] Invalid mailbox name";
	return false;
    }
    if (!imap_mutf7_to_utf8(wire, len, out)) {
	*why_r = "Mailbox name is not valid modified UTF-7";
	return false;
    }
    /* INBOX in any case, also as the first level of a hierarchy */
    if (str_len(out) - start >= 5 && strncasecmp(out->data + start, "INBOX", 5) == 0
	&& (out->data[start + 5] == 0 || out->data[start + 5] == IMAP_HIER_DELIM))
	memcpy(out->data + start, "INBOX", 5);
    if (strcmp(out->data + start, "INBOX") != 0 && !store_folder_valid(out->data + start)) {
	(void) str_truncate(out, start);
	*why_r = "[CANNOT] Invalid mailbox name (empty, too long, or with \"/\", "
	    "control characters, or \"..\", or \".\" at either end)";
	return false;
    }
    return true;
}

/* imap_mailbox_wire - see imap_mailbox.h */
bool imap_mailbox_wire(const char *name, struct str *out)
{
    return imap_utf8_to_mutf7(name, strlen(name), out);
}

/* imap_list_match - see imap_mailbox.h: a set-of-states simulation of
 * the pattern (no backtracking, so no pattern can make it slow) */
bool imap_list_match(const char *pattern, const char *name)
{
    size_t m = strlen(pattern), i, pos = 0;
    unsigned char stack_a[128], stack_b[128];
    unsigned char *cur, *next, *tmp;
    /* INBOX, also as a first level, matches in any case (RFC 3501 5.1) */
    bool inbox = strncmp(name, "INBOX", 5) == 0
	&& (name[5] == 0 || name[5] == IMAP_HIER_DELIM);
    bool ok;

    if (m + 1 <= sizeof(stack_a)) {
	cur = stack_a;
	next = stack_b;
    } else {
	cur = mem_alloc(m + 1);
	next = mem_alloc(m + 1);
    }
    memset(cur, 0, m + 1);
    cur[0] = 1;
    for (;;) {
	/* a wildcard may match nothing */
	for (i = 0; i < m; i++)
	    if (cur[i] && (pattern[i] == '*' || pattern[i] == '%'))
		cur[i + 1] = 1;
	if (*name == 0)
	    break;
	memset(next, 0, m + 1);
	for (i = 0; i < m; i++) {
	    if (!cur[i])
		continue;
	    if (pattern[i] == '*' || (pattern[i] == '%' && *name != IMAP_HIER_DELIM))
		next[i] = 1;
	    else if (pattern[i] == *name || (inbox && pos < 5
					     && (pattern[i] | 0x20) == (*name | 0x20)))
		next[i + 1] = 1;
	}
	tmp = cur;
	cur = next;
	next = tmp;
	name++;
	pos++;
    }
    ok = cur[m] != 0;
    if (m + 1 > sizeof(stack_a)) {
	/* cur and next are the two heap arrays, in some order */
	mem_free(&cur);
	mem_free(&next);
    }
    return ok;
}

/* mb_is_inbox - the store name of INBOX */
static bool mb_is_inbox(const char *name)
{
    return strcmp(name, "INBOX") == 0;
}

/* mb_store_fail - NO for a store error, with the response code its
 * errno calls for; unexpected ones are logged */
static void mb_store_fail(struct imap_session *s, int e, const char *what, const char *err)
{
    switch (e) {
    case EEXIST:
	imap_cmd_no(s, "[ALREADYEXISTS] Mailbox already exists");
	break;
    case ENOENT:
	imap_cmd_no(s, "[NONEXISTENT] Mailbox does not exist");
	break;
    case EINVAL:
    case ENAMETOOLONG:
	imap_cmd_no(s, "[CANNOT] %s", err);
	break;
    case ENOSPC:
    case EDQUOT:
	imap_cmd_no(s, "[OVERQUOTA] Not enough disk space");
	break;
    case EACCES:
    case EPERM:
	msg_warn("%s: %s: %s", s->user, what, err);
	imap_cmd_no(s, "[NOPERM] Permission denied");
	break;
    default:
	msg_warn("%s: %s: %s", s->user, what, err);
	imap_cmd_no(s, "[SERVERBUG] %s failed: internal error", what);
	break;
    }
}

/* mb_arg_name - argument a as a store name into out: false after
 * replying (BAD for a missing string, NO for an invalid name) */
static bool mb_arg_name(struct imap_session *s, const struct imap_arg *a, struct str *out)
{
    const char *wire, *why;
    size_t len;

    if (!imap_arg_astring(a, &wire, &len)) {
	imap_cmd_bad(s, "%s: mailbox name expected", s->cmd->name);
	return false;
    }
    /* CREATE "a." and RENAME x "a.": the delimiter only says that
     * children will follow (RFC 3501 6.3.3) */
    if (len > 1 && wire[len - 1] == IMAP_HIER_DELIM
	&& (strcmp(s->cmd->name, "CREATE") == 0 || strcmp(s->cmd->name, "RENAME") == 0))
	len--;
    if (!imap_mailbox_name(wire, len, out, &why)) {
	imap_cmd_no(s, "%s", why);
	return false;
    }
    return true;
}

/* mb_selected_is - whether the selected mailbox is name or below it */
static bool mb_selected_is(struct imap_session *s, const char *name, bool below)
{
    const char *sel;
    size_t n = strlen(name);

    if (s->sel == NULL)
	return false;
    sel = s->sel->folder ? s->sel->folder : "INBOX";
    if (strncmp(sel, name, n) != 0)
	return false;
    return sel[n] == 0 || (below && sel[n] == IMAP_HIER_DELIM);
}

/* mb_close_selected - the selected mailbox goes away: back to the
 * authenticated state, and say so (RFC 7162's CLOSED code) */
static void mb_close_selected(struct imap_session *s)
{
    imap_select_close(s);
    imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
}

/* imap_mailbox_session_start - see imapd.h */
void imap_mailbox_session_start(struct imap_session *s)
{
    const char *err;

    if (store_folders_ensure_special(s->mail_root, &err) < 0)
	msg_warn("%s: cannot make the special-use folders: %s", s->user, err);
}

/* mb_parse_use - "(USE (\Attr ...))" of CREATE into *uses: false after
 * replying */
static bool mb_parse_use(struct imap_session *s, const struct imap_arg *a, unsigned *uses)
{
    const struct imap_arg *l, *ul;
    size_t n, un, i, j;
    const char *atom;
    unsigned bit;

    if (!imap_arg_list(a, &l, &n) || n % 2 != 0) {
	imap_cmd_bad(s, "CREATE: bad parameter list");
	return false;
    }
    for (i = 0; i < n; i += 2) {
	if (!imap_arg_atom_is(&l[i], "USE") || !imap_arg_list(&l[i + 1], &ul, &un)) {
	    imap_cmd_bad(s, "CREATE: unknown parameter");
	    return false;
	}
	for (j = 0; j < un; j++) {
	    if (!imap_arg_atom(&ul[j], &atom)) {
		imap_cmd_bad(s, "CREATE: USE takes attributes");
		return false;
	    }
	    if ((bit = store_use_parse(atom, strlen(atom))) == 0) {
		imap_cmd_no(s, "[USEATTR] Unsupported special-use attribute %s",
			    atom[0] == '\\' && strlen(atom) < 40 ? atom : "");
		return false;
	    }
	    *uses |= bit;
	}
    }
    return true;
}

/* imap_cmd_create - CREATE name [(USE (attrs))] */
void imap_cmd_create(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    struct str *name = str_new(MB_NAME_MAX);
    unsigned uses = 0;
    const char *err;
    int e;

    (void) uid;
    if (nargs < 1 || nargs > 2) {
	imap_cmd_bad(s, "CREATE needs a mailbox name");
	goto out;
    }
    if (!mb_arg_name(s, &args[0], name) || (nargs == 2 && !mb_parse_use(s, &args[1], &uses)))
	goto out;
    if (mb_is_inbox(str_cstr(name))) {
	imap_cmd_no(s, "[ALREADYEXISTS] INBOX always exists");
	goto out;
    }
    /* superior levels are not made: in Maildir++ a folder needs no
     * parent, and LIST shows a missing one as \Noselect (as Dovecot) */
    if (store_folder_create(s->mail_root, str_cstr(name), &err) < 0) {
	e = errno;
	mb_store_fail(s, e, "CREATE", err);
	goto out;
    }
    if (uses != 0 && store_folder_set_use(s->mail_root, str_cstr(name), uses, &err) < 0) {
	mb_store_fail(s, errno, "CREATE", err);
	goto out;
    }
    imap_cmd_ok(s);
  out:
    str_free(&name);
}

/* imap_cmd_delete - DELETE name. A folder with children is deleted
 * itself; its name stays as a \Noselect parent of the children (RFC
 * 3501 6.3.4). A name that is only such a parent does not exist. */
void imap_cmd_delete(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    struct str *name = str_new(MB_NAME_MAX);
    const char *err;
    int exists;

    (void) uid;
    if (nargs != 1) {
	imap_cmd_bad(s, "DELETE needs a mailbox name");
	goto out;
    }
    if (!mb_arg_name(s, &args[0], name))
	goto out;
    if (mb_is_inbox(str_cstr(name))) {
	imap_cmd_no(s, "INBOX cannot be deleted");
	goto out;
    }
    /* a name that is only the parent of folders is no mailbox */
    if ((exists = store_folder_exists(s->mail_root, str_cstr(name), &err)) <= 0) {
	if (exists < 0)
	    mb_store_fail(s, errno, "DELETE", err);
	else
	    imap_cmd_no(s, "[NONEXISTENT] Mailbox does not exist");
	goto out;
    }
    /* closed first: closing writes the handle's cache, into the folder */
    if (mb_selected_is(s, str_cstr(name), false))
	mb_close_selected(s);
    if (store_folder_delete(s->mail_root, str_cstr(name), &err) < 0) {
	mb_store_fail(s, errno, "DELETE", err);
	goto out;
    }
    imap_cmd_ok(s);
  out:
    str_free(&name);
}

/* imap_cmd_rename - RENAME old new (with its children; INBOX: its
 * messages move to the new folder, INBOX stays) */
void imap_cmd_rename(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    struct str *from = str_new(MB_NAME_MAX), *to = str_new(MB_NAME_MAX);
    const char *err;

    (void) uid;
    if (nargs != 2) {
	imap_cmd_bad(s, "RENAME needs two mailbox names");
	goto out;
    }
    if (!mb_arg_name(s, &args[0], from) || !mb_arg_name(s, &args[1], to))
	goto out;
    if (mb_is_inbox(str_cstr(to))) {
	imap_cmd_no(s, "[ALREADYEXISTS] INBOX always exists");
	goto out;
    }
    if (strcmp(str_cstr(from), str_cstr(to)) == 0) {
	imap_cmd_no(s, "[ALREADYEXISTS] Mailbox already exists");
	goto out;
    }
    if (store_folder_exists(s->mail_root, str_cstr(to), &err) == 1) {
	imap_cmd_no(s, "[ALREADYEXISTS] Mailbox already exists");
	goto out;
    }
    if (store_folder_rename(s->mail_root, str_cstr(from), str_cstr(to), &err) < 0) {
	mb_store_fail(s, errno, "RENAME", err);
	goto out;
    }
    /* a renamed selected mailbox is closed (its name is gone); INBOX
     * stays, and its session sees the messages go as expunges */
    if (!mb_is_inbox(str_cstr(from)) && mb_selected_is(s, str_cstr(from), true))
	mb_close_selected(s);
    imap_cmd_ok(s);
  out:
    str_free(&from);
    str_free(&to);
}

/* mb_subscribe - SUBSCRIBE and UNSUBSCRIBE */
static void mb_subscribe(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			 bool on)
{
    struct str *name = str_new(MB_NAME_MAX);
    const char *err;

    if (nargs != 1) {
	imap_cmd_bad(s, "%s needs a mailbox name", s->cmd->name);
	goto out;
    }
    if (!mb_arg_name(s, &args[0], name))
	goto out;
    if (store_subscribe(s->mail_root, str_cstr(name), on, &err) < 0) {
	mb_store_fail(s, errno, s->cmd->name, err);
	goto out;
    }
    imap_cmd_ok(s);
  out:
    str_free(&name);
}

/* imap_cmd_subscribe - SUBSCRIBE name (existing or not: RFC 3501 allows
 * names that do not exist) */
void imap_cmd_subscribe(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			bool uid)
{
    (void) uid;
    mb_subscribe(s, args, nargs, true);
}

/* imap_cmd_unsubscribe - UNSUBSCRIBE name (not subscribed: still OK) */
void imap_cmd_unsubscribe(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			  bool uid)
{
    (void) uid;
    mb_subscribe(s, args, nargs, false);
}

/* imap_cmd_namespace - one personal namespace, "" with "." */
void imap_cmd_namespace(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			bool uid)
{
    (void) args;
    (void) uid;
    if (nargs != 0) {
	imap_cmd_bad(s, "NAMESPACE takes no arguments");
	return;
    }
    imap_untagged(s, "NAMESPACE ((\"\" \"%c\")) NIL NIL", IMAP_HIER_DELIM);
    imap_cmd_ok(s);
}

/* STATUS items, in the order they are answered */
static const struct {
    const char *name;
    unsigned bit;
} mb_status_items[] = {
    {"MESSAGES", STORE_STATUS_MESSAGES},
    {"RECENT", STORE_STATUS_RECENT},
    {"UIDNEXT", STORE_STATUS_UIDNEXT},
    {"UIDVALIDITY", STORE_STATUS_UIDVALIDITY},
    {"UNSEEN", STORE_STATUS_UNSEEN},
    {"HIGHESTMODSEQ", STORE_STATUS_HIGHESTMODSEQ},
};
#define MB_STATUS_COUNT (sizeof(mb_status_items) / sizeof(mb_status_items[0]))

/* mb_status_parse - a list of STATUS items into *items; false if bad */
static bool mb_status_parse(const struct imap_arg *a, unsigned *items)
{
    const struct imap_arg *l;
    size_t n, i, k;

    *items = 0;
    if (!imap_arg_list(a, &l, &n) || n == 0)
	return false;
    for (i = 0; i < n; i++) {
	for (k = 0; k < MB_STATUS_COUNT; k++)
	    if (imap_arg_atom_is(&l[i], mb_status_items[k].name))
		break;
	if (k == MB_STATUS_COUNT)
	    return false;
	*items |= mb_status_items[k].bit;
    }
    return true;
}

/* mb_status_line - "* STATUS name (ITEM n ...)" for store name; -1
 * with errno and *error_r when it cannot be counted */
static int mb_status_line(struct imap_session *s, const char *name, unsigned items,
			  const char **error_r)
{
    struct store_folder_status st;
    struct str *line, *wire;
    uint64_t v = 0;
    size_t k;
    bool first = true;

    if (store_folder_status(s->mail_root, name, items, &st, error_r) < 0)
	return -1;
    /* the selected mailbox: \Recent as this session has it (a fresh
     * handle claims none and sees those of this one as taken) */
    if (mb_selected_is(s, name, false))
	st.recent = (uint32_t) store_recent_count(s->sel->mb);
    if (items & STORE_STATUS_HIGHESTMODSEQ)
	s->condstore = true;	/* RFC 7162 3.1: a CONDSTORE-enabling command */
    line = str_new(STR_MAX_DEFAULT);
    wire = str_new(STR_MAX_DEFAULT);
    if (!imap_mailbox_wire(name, wire))
	msg_panic("imap_mailbox_wire: store name \"%s\" is not UTF-8", name);
    str_appends_or_panic(line, "* STATUS ");
    if (!imap_append_quoted(line, str_cstr(wire), str_len(wire)))
	msg_panic("mb_status_line: cannot quote \"%s\"", str_cstr(wire));
    str_free(&wire);
    str_appends_or_panic(line, " (");
    for (k = 0; k < MB_STATUS_COUNT; k++) {
	if (!(items & mb_status_items[k].bit))
	    continue;
	switch (mb_status_items[k].bit) {
	case STORE_STATUS_MESSAGES:
	    v = st.messages;
	    break;
	case STORE_STATUS_RECENT:
	    v = st.recent;
	    break;
	case STORE_STATUS_UIDNEXT:
	    v = st.uidnext;
	    break;
	case STORE_STATUS_UIDVALIDITY:
	    v = st.uidvalidity;
	    break;
	case STORE_STATUS_UNSEEN:
	    v = st.unseen;
	    break;
	case STORE_STATUS_HIGHESTMODSEQ:
	    v = st.highestmodseq;
	    break;
	}
	str_appendf_or_panic(line, "%s%s %llu", first ? "" : " ", mb_status_items[k].name,
			     (unsigned long long) v);
	first = false;
    }
    str_appends_or_panic(line, ")\r\n");
    imap_write(s, str_cstr(line), str_len(line));
    str_free(&line);
    return 0;
}

/* imap_cmd_status - STATUS name (items) */
void imap_cmd_status(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    struct str *name = str_new(MB_NAME_MAX);
    const char *err;
    unsigned items;

    (void) uid;
    if (nargs != 2) {
	imap_cmd_bad(s, "STATUS needs a mailbox name and a list of items");
	goto out;
    }
    if (!mb_status_parse(&args[1], &items)) {
	imap_cmd_bad(s, "STATUS: items are MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN "
		     "HIGHESTMODSEQ");
	goto out;
    }
    if (!mb_arg_name(s, &args[0], name))
	goto out;
    if (mb_status_line(s, str_cstr(name), items, &err) < 0) {
	mb_store_fail(s, errno, "STATUS", err);
	goto out;
    }
    /* RFC 3501 6.3.10: a client SHOULD NOT ask this (as Dovecot says) */
    if (mb_selected_is(s, str_cstr(name), false))
	imap_cmd_done(s, "OK", "[CLIENTBUG] STATUS on the selected mailbox completed");
    else
	imap_cmd_ok(s);
  out:
    str_free(&name);
}

/*
 * LIST and LSUB.
 *
 * The candidates are the store's folder tree (store_folder_tree:
 * INBOX, the folders, parents that exist only as the parents of
 * folders, subscribed names), each with its wire name. Patterns are
 * matched against wire names (modified UTF-7 has no "." "*" or "%" in
 * its encoded runs, so "%" stops at the delimiter as it should).
 */

#define LS_SEL_SUBSCRIBED	(1u << 0)
#define LS_SEL_REMOTE		(1u << 1)
#define LS_SEL_RECURSIVE	(1u << 2)
#define LS_SEL_SPECIALUSE	(1u << 3)
#define LS_RET_SUBSCRIBED	(1u << 0)
#define LS_RET_CHILDREN		(1u << 1)
#define LS_RET_SPECIALUSE	(1u << 2)
#define LS_RET_STATUS		(1u << 3)

struct ls_request {
    bool lsub;			/* LSUB (else LIST) */
    bool extended;		/* LIST-EXTENDED syntax was used */
    unsigned sel;		/* LS_SEL_* */
    unsigned ret;		/* LS_RET_* */
    unsigned status_items;	/* STORE_STATUS_* for RETURN (STATUS ...) */
    struct strv patterns;	/* reference + pattern, wire form */
};

/* ls_pattern_add - reference + pattern (INBOX's case folded) */
static void ls_pattern_add(struct ls_request *rq, const char *ref, size_t rlen,
			   const char *pat, size_t plen)
{
    struct str *p = str_new(2 * MB_NAME_MAX + 2);

    str_append_or_panic(p, ref, rlen);
    str_append_or_panic(p, pat, plen);
    if (str_len(p) >= 5 && strncasecmp(str_cstr(p), "INBOX", 5) == 0
	&& (p->data[5] == 0 || p->data[5] == IMAP_HIER_DELIM))
	memcpy(p->data, "INBOX", 5);
    strv_add(&rq->patterns, str_cstr(p));
    str_free(&p);
}

/* ls_matches - whether wire name matches any pattern */
static bool ls_matches(const struct ls_request *rq, const char *wire)
{
    size_t i;

    for (i = 0; i < rq->patterns.count; i++)
	if (imap_list_match(rq->patterns.items[i], wire))
	    return true;
    return false;
}

/* ls_selected - whether the entry meets the selection criteria (the
 * plain LIST: it exists or has children; LSUB: it is subscribed) */
static bool ls_selected(const struct ls_request *rq, const struct store_folder_info *fi)
{
    if (rq->lsub)
	return fi->subscribed;
    if ((rq->sel & LS_SEL_SUBSCRIBED) && !fi->subscribed)
	return false;
    if ((rq->sel & LS_SEL_SPECIALUSE) && fi->special_use == 0)
	return false;
    if (rq->sel & (LS_SEL_SUBSCRIBED | LS_SEL_SPECIALUSE))
	return true;
    return fi->exists || fi->has_children;
}

/* ls_parse - LIST's arguments (after the command name) into rq: false
 * with a BAD reply sent */
static bool ls_parse(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     struct ls_request *rq)
{
    const struct imap_arg *l, *sl;
    const char *ref, *pat;
    size_t n, sn, i, rlen, plen, k = 0;

    if (!rq->lsub && nargs > 0 && args[0].type == IMAP_ARG_LIST) {
	rq->extended = true;
	(void) imap_arg_list(&args[0], &l, &n);
	for (i = 0; i < n; i++) {
	    if (imap_arg_atom_is(&l[i], "SUBSCRIBED"))
		rq->sel |= LS_SEL_SUBSCRIBED;
	    else if (imap_arg_atom_is(&l[i], "REMOTE"))
		rq->sel |= LS_SEL_REMOTE;
	    else if (imap_arg_atom_is(&l[i], "RECURSIVEMATCH"))
		rq->sel |= LS_SEL_RECURSIVE;
	    else if (imap_arg_atom_is(&l[i], "SPECIAL-USE"))
		rq->sel |= LS_SEL_SPECIALUSE;
	    else
		goto bad_option;
	}
	/* RFC 5258 3: RECURSIVEMATCH alone is an error */
	if ((rq->sel & LS_SEL_RECURSIVE) && !(rq->sel & (LS_SEL_SUBSCRIBED | LS_SEL_SPECIALUSE))) {
	    imap_cmd_bad(s, "LIST: RECURSIVEMATCH needs another selection option");
	    return false;
	}
	k = 1;
    }
    if (nargs < k + 2 || !imap_arg_astring(&args[k], &ref, &rlen)) {
	imap_cmd_bad(s, "%s needs a reference and a mailbox pattern", s->cmd->name);
	return false;
    }
    if (rlen > MB_NAME_MAX)
	goto bad_pattern;
    if (!rq->lsub && args[k + 1].type == IMAP_ARG_LIST) {
	rq->extended = true;
	(void) imap_arg_list(&args[k + 1], &l, &n);
	if (n == 0 || n > MB_PATTERNS_MAX)
	    goto bad_pattern;
	for (i = 0; i < n; i++) {
	    if (!imap_arg_astring(&l[i], &pat, &plen) || plen > MB_NAME_MAX)
		goto bad_pattern;
	    ls_pattern_add(rq, ref, rlen, pat, plen);
	}
    } else {
	if (!imap_arg_astring(&args[k + 1], &pat, &plen) || plen > MB_NAME_MAX)
	    goto bad_pattern;
	ls_pattern_add(rq, ref, rlen, pat, plen);
    }
    k += 2;
    if (k == nargs)
	return true;
    if (rq->lsub || k + 2 != nargs || !imap_arg_atom_is(&args[k], "RETURN")
	|| !imap_arg_list(&args[k + 1], &l, &n)) {
	imap_cmd_bad(s, "%s: unexpected arguments after the pattern", s->cmd->name);
	return false;
    }
    rq->extended = true;
    for (i = 0; i < n; i++) {
	if (imap_arg_atom_is(&l[i], "SUBSCRIBED")) {
	    rq->ret |= LS_RET_SUBSCRIBED;
	} else if (imap_arg_atom_is(&l[i], "CHILDREN")) {
	    rq->ret |= LS_RET_CHILDREN;
	} else if (imap_arg_atom_is(&l[i], "SPECIAL-USE")) {
	    rq->ret |= LS_RET_SPECIALUSE;
	} else if (imap_arg_atom_is(&l[i], "STATUS") && i + 1 < n
		   && imap_arg_list(&l[i + 1], &sl, &sn)
		   && mb_status_parse(&l[i + 1], &rq->status_items)) {
	    rq->ret |= LS_RET_STATUS;
	    i++;
	} else {
	    goto bad_option;
	}
    }
    return true;

  bad_option:
    imap_cmd_bad(s, "LIST: unknown or malformed option");
    return false;
  bad_pattern:
    imap_cmd_bad(s, "%s: bad reference or mailbox pattern", s->cmd->name);
    return false;
}

/* ls_line - one LIST or LSUB response for entry fi (wire name) */
static void ls_line(struct imap_session *s, const struct ls_request *rq,
		    const struct store_folder_info *fi, const char *wire, bool shown_as_parent,
		    unsigned childinfo)
{
    struct str *line = str_new(STR_MAX_DEFAULT);
    bool first = true;
    unsigned n;

#define LS_ATTR(text) do { str_appends_or_panic(line, first ? "" : " "); \
	str_appends_or_panic(line, text); first = false; } while (0)

    str_appends_or_panic(line, rq->lsub ? "* LSUB (" : "* LIST (");
    if (rq->lsub) {
	/* RFC 3501 6.3.9: a parent shown for "%" that is not subscribed
	 * (a subscribed name that does not exist gets none, as Dovecot) */
	if (shown_as_parent)
	    LS_ATTR("\\Noselect");
    } else {
	/* as Dovecot: \NonExistent only to a client that used the
	 * extended syntax (RFC 5258), \Noselect to others; CHILDREN and
	 * SPECIAL-USE attributes always in the basic LIST, in the
	 * extended one when asked for (RETURN, or the selection) */
	if (!fi->exists)
	    LS_ATTR(rq->extended ? "\\NonExistent" : "\\Noselect");
	if ((fi->exists || fi->has_children) && (!rq->extended || (rq->ret & LS_RET_CHILDREN)))
	    LS_ATTR(fi->has_children ? "\\HasChildren" : "\\HasNoChildren");
	if (fi->subscribed && (rq->sel & LS_SEL_SUBSCRIBED || rq->ret & LS_RET_SUBSCRIBED))
	    LS_ATTR("\\Subscribed");
	if (!rq->extended || (rq->ret & LS_RET_SPECIALUSE) || (rq->sel & LS_SEL_SPECIALUSE))
	    for (n = 0; n < STORE_USE_COUNT; n++)
		if (fi->special_use & (1u << n))
		    LS_ATTR(store_use_name(n));
    }
#undef LS_ATTR
    str_appendf_or_panic(line, ") \"%c\" ", IMAP_HIER_DELIM);
    if (!imap_append_quoted(line, wire, strlen(wire)))
	msg_panic("ls_line: cannot quote \"%s\"", wire);
    if (childinfo != 0) {
	str_appends_or_panic(line, " (CHILDINFO (");
	if (childinfo & LS_SEL_SUBSCRIBED)
	    str_appends_or_panic(line, "\"SUBSCRIBED\"");
	if (childinfo & LS_SEL_SPECIALUSE)
	    str_appendf_or_panic(line, "%s\"SPECIAL-USE\"",
				 childinfo & LS_SEL_SUBSCRIBED ? " " : "");
	str_appends_or_panic(line, "))");
    }
    str_appends_or_panic(line, "\r\n");
    imap_write(s, str_cstr(line), str_len(line));
    str_free(&line);
}

/* ls_run - answer the request: one line per matching name, STATUS
 * lines after selectable ones when asked */
static void ls_run(struct imap_session *s, struct ls_request *rq)
{
    struct store_folder_tree tree;
    struct strv wires = STRV_INIT;
    struct str *w = str_new(STR_MAX_DEFAULT);
    const struct store_folder_info *fi, *d;
    const char *err;
    unsigned childinfo;
    bool sel, has_sel_desc, parent_only;
    size_t i, j, nlen;

    /* LIST "" "": the delimiter and the root (RFC 3501 6.3.8) */
    if (!rq->lsub && rq->patterns.count == 1 && rq->patterns.items[0][0] == 0) {
	imap_untagged(s, "LIST (\\Noselect) \"%c\" \"\"", IMAP_HIER_DELIM);
	imap_cmd_ok(s);
	goto out_nofree;
    }
    if (store_folder_tree(s->mail_root, &tree, &err) < 0) {
	mb_store_fail(s, errno, s->cmd->name, err);
	goto out_nofree;
    }
    for (i = 0; i < tree.count; i++) {
	str_reset(w);
	if (!imap_mailbox_wire(tree.items[i].name, w))
	    msg_panic("imap_mailbox_wire: store name \"%s\" is not UTF-8", tree.items[i].name);
	strv_add(&wires, str_cstr(w));
    }
    for (i = 0; i < tree.count; i++) {
	fi = &tree.items[i];
	if (!ls_matches(rq, wires.items[i]))
	    continue;
	sel = ls_selected(rq, fi);
	/* a descendant that meets the criteria but is not itself shown
	 * (it does not match the pattern): LSUB shows this name as its
	 * \Noselect parent, RECURSIVEMATCH gives CHILDINFO (RFC 5258 3.5) */
	has_sel_desc = false;
	childinfo = 0;
	nlen = strlen(fi->name);
	if (rq->lsub || (rq->sel & LS_SEL_RECURSIVE)) {
	    for (j = i + 1; j < tree.count; j++) {
		d = &tree.items[j];
		if (strncmp(d->name, fi->name, nlen) != 0)
		    break;	/* sorted: no more names with this prefix */
		if (d->name[nlen] != IMAP_HIER_DELIM || !ls_selected(rq, d)
		    || ls_matches(rq, wires.items[j]))
		    continue;
		has_sel_desc = true;
		if (!rq->lsub) {
		    if ((rq->sel & LS_SEL_SUBSCRIBED) && d->subscribed)
			childinfo |= LS_SEL_SUBSCRIBED;
		    if ((rq->sel & LS_SEL_SPECIALUSE) && d->special_use)
			childinfo |= LS_SEL_SPECIALUSE;
		}
	    }
	}
	parent_only = !sel && has_sel_desc;
	if (!sel && !parent_only)
	    continue;
	ls_line(s, rq, fi, wires.items[i], rq->lsub && parent_only, childinfo);
	if ((rq->ret & LS_RET_STATUS) && fi->exists
	    && mb_status_line(s, fi->name, rq->status_items, &err) < 0)
	    /* RFC 5819: a mailbox that cannot be counted gets no STATUS */
	    msg_info("%s: LIST-STATUS %s: %s", s->user, fi->name, err);
    }
    imap_cmd_ok(s);
    store_folder_tree_free(&tree);
  out_nofree:
    strv_fini(&wires);
    str_free(&w);
}

/* imap_cmd_list - LIST [(selection)] reference pattern(s) [RETURN (...)] */
void imap_cmd_list(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		   bool uid)
{
    struct ls_request rq;

    (void) uid;
    memset(&rq, 0, sizeof(rq));
    rq.patterns = (struct strv) STRV_INIT;
    if (ls_parse(s, args, nargs, &rq))
	ls_run(s, &rq);
    strv_fini(&rq.patterns);
}

/* imap_cmd_lsub - LSUB reference pattern */
void imap_cmd_lsub(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		   bool uid)
{
    struct ls_request rq;

    (void) uid;
    memset(&rq, 0, sizeof(rq));
    rq.lsub = true;
    rq.patterns = (struct strv) STRV_INIT;
    if (nargs != 2) {
	imap_cmd_bad(s, "LSUB needs a reference and a mailbox pattern");
    } else if (ls_parse(s, args, nargs, &rq)) {
	ls_run(s, &rq);
    }
    strv_fini(&rq.patterns);
}
