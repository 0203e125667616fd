/* imap_store.c - the commands that change messages: STORE (FLAGS,
 * +FLAGS, -FLAGS, .SILENT, CONDSTORE's UNCHANGEDSINCE), COPY and MOVE
 * (UIDPLUS COPYUID), APPEND (UIDPLUS APPENDUID; the message literal was
 * streamed to a file by the session). */

/* system */
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "imap_parse.h"

/* store */
#include "store.h"
#include "store_quota.h"

/* imapd */
#include "imapd.h"

#define ALL_FLAG_BITS	(STORE_FLAG_DRAFT | STORE_FLAG_FLAGGED | STORE_FLAG_PASSED \
			 | STORE_FLAG_REPLIED | STORE_FLAG_SEEN | STORE_FLAG_TRASHED \
			 | (((1u << STORE_KEYWORDS_MAX) - 1) << 6))

/* append_set - "1:3,5" of ascending (or any) numbers; v may hold 0s,
 * which are skipped */
static void append_set(struct str *out, const uint32_t *v, size_t n)
{
    size_t i = 0;
    bool first = true;

    while (i < n) {
	size_t j = i;

	if (v[i] == 0) {
	    i++;
	    continue;
	}
	while (j + 1 < n && v[j + 1] == v[j] + 1)
	    j++;
	if (!first)
	    str_appendc_or_panic(out, ',');
	first = false;
	if (j > i)
	    str_appendf_or_panic(out, "%u:%u", v[i], v[j]);
	else
	    str_appendf_or_panic(out, "%u", v[i]);
	i = j + 1;
    }
}

/* STORE */

void imap_cmd_store(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		    bool uid)
{
    struct store_mailbox *mb = s->sel->mb;
    const char *set, *item, *err;
    uint32_t *seqs, *modified, flags;
    size_t n, i, nmod = 0, ai = 1;
    bool unchanged_set = false, silent, expunged = false;
    uint64_t unchangedsince = 0;
    int mode;			/* 0 replace, 1 add, -1 remove */
    unsigned char *done;

    if (nargs < 3 || !imap_arg_atom(&args[0], &set))
	return imap_cmd_bad(s, "STORE needs a set, an item and flags");
    if (args[1].type == IMAP_ARG_LIST) {
	const struct imap_arg *l = args[1].list;

	if (args[1].count != 2 || !imap_arg_atom_is(&l[0], "UNCHANGEDSINCE")
	    || !imap_arg_number(&l[1], UINT64_MAX >> 1, &unchangedsince))
	    return imap_cmd_bad(s, "STORE: bad modifier");
	unchanged_set = true;
	s->condstore = true;
	ai = 2;
    }
    if (ai >= nargs)
	return imap_cmd_bad(s, "STORE needs an item");
    if (!imap_arg_atom(&args[ai], &item))
	return imap_cmd_bad(s, "STORE: bad item");
    mode = item[0] == '+' ? 1 : item[0] == '-' ? -1 : 0;
    if (mode)
	item++;
    if (strcasecmp(item, "FLAGS") == 0)
	silent = false;
    else if (strcasecmp(item, "FLAGS.SILENT") == 0)
	silent = true;
    else
	return imap_cmd_bad(s, "STORE: unknown item (FLAGS, +FLAGS, -FLAGS[.SILENT])");
    ai++;
    if (ai >= nargs)
	return imap_cmd_bad(s, "STORE needs flags");
    if (s->sel->readonly)
	return imap_cmd_no(s, "[READ-ONLY] The mailbox is read-only");
    if (!imap_flags_parse(s, args + ai, nargs - ai, mode >= 0, &flags, &err))
	return imap_cmd_bad(s, "STORE: %s", err);
    if (!imap_select_resolve(s, set, uid, &seqs, &n))
	return imap_cmd_bad(s, "STORE: invalid message set");
    modified = mem_alloc_array(n ? n : 1, sizeof(*modified));
    done = mem_zalloc(n ? n : 1);
    if (n && store_begin(mb, &err) < 0) {
	msg_warn("%s: store: %s", s->user, err);
	free(seqs);
	free(modified);
	free(done);
	return imap_cmd_no(s, "[SERVERBUG] Cannot change flags now");
    }
    for (i = 0; i < n; i++) {
	long idx = imap_select_index(s, seqs[i]);
	const struct store_msg *m;
	uint32_t add, remove;

	if (idx < 0) {
	    expunged = true;
	    continue;
	}
	m = store_msg(mb, (size_t) idx);
	if (unchanged_set && m->modseq > unchangedsince) {
	    modified[nmod++] = uid ? m->uid : seqs[i];
	    continue;
	}
	add = mode >= 0 ? flags : 0;
	remove = mode < 0 ? flags : mode == 0 ? (ALL_FLAG_BITS & ~flags) : 0;
	if (((m->flags | add) & ~remove) == m->flags) {
	    done[i] = 1;	/* nothing to change; still reported */
	    continue;
	}
	if (store_set_flags(mb, (size_t) idx, add, remove, &err) < 0) {
	    if (errno == ENOENT)
		expunged = true;
	    else
		msg_warn("%s: store: %s", s->user, err);
	    continue;
	}
	done[i] = 2;
    }
    if (n && store_commit(mb, &err) < 0)
	msg_warn("%s: store: %s", s->user, err);
    for (i = 0; i < n; i++) {
	long idx;
	const struct store_msg *m;

	if (!done[i] || (idx = imap_select_index(s, seqs[i])) < 0)
	    continue;
	m = store_msg(mb, (size_t) idx);
	if (!silent || (s->condstore && done[i] == 2 && unchanged_set))
	    imap_select_fetch_flags(s, seqs[i], m);
	s->sel->flags_known[seqs[i] - 1] = m->flags;
	s->sel->modseq_known[seqs[i] - 1] = m->modseq;
    }
    free(seqs);
    free(done);
    if (nmod) {
	struct str *out = str_new(STR_MAX_HUGE);

	str_appends_or_panic(out, "[MODIFIED ");
	append_set(out, modified, nmod);
	str_appends_or_panic(out, "] Conditional STORE failed");
	free(modified);
	imap_cmd_done(s, "OK", "%s", str_cstr(out));
	str_free(&out);
	return;
    }
    free(modified);
    if (expunged)
	return imap_cmd_no(s, "[EXPUNGEISSUED] Some messages were expunged meanwhile");
    imap_cmd_ok(s);
}

/* COPY and MOVE */

/* open_dest - the store handle of a mailbox named by the client; the
 * selected one itself when it is that (*own_r) */
static struct store_mailbox *open_dest(struct imap_session *s, const struct imap_arg *a,
				       bool *own_r, const char **reply_r)
{
    const char *wire, *why, *err;
    size_t len;
    struct str *name = str_new(4096);
    struct store_mailbox *mb;
    bool inbox;

    *own_r = false;
    if (!imap_arg_astring(a, &wire, &len)) {
	str_free(&name);
	*reply_r = "BAD Mailbox name expected";
	return NULL;
    }
    if (!imap_mailbox_name(wire, len, name, &why)) {
	str_free(&name);
	*reply_r = why;
	return NULL;
    }
    inbox = strcasecmp(str_cstr(name), "INBOX") == 0;
    if (s->sel && ((inbox && s->sel->folder == NULL)
		   || (!inbox && s->sel->folder && strcmp(s->sel->folder, str_cstr(name)) == 0))) {
	str_free(&name);
	*own_r = true;
	return s->sel->mb;
    }
    mb = store_open(s->mail_root, inbox ? NULL : str_cstr(name), STORE_READ_WRITE, &err);
    if (mb == NULL) {
	if (errno == ENOENT)
	    *reply_r = "NO [TRYCREATE] Mailbox does not exist";
	else {
	    msg_warn("%s: open %s: %s", s->user, str_cstr(name), err);
	    *reply_r = "NO [SERVERBUG] Cannot open the mailbox";
	}
    }
    str_free(&name);
    return mb;
}

/* over_quota - would add more bytes pass the user's quota? The usage
 * cached in maildirsize never shrinks on deletions, so a refusal is
 * checked against a recount first. A usage that cannot be read refuses
 * nothing (logged). */
static bool over_quota(struct imap_session *s, uint64_t add)
{
    long quota, used;
    const char *err;

    if (s->quota_bytes == 0)
	return false;
    quota = s->quota_bytes > (uint64_t) LONG_MAX ? LONG_MAX : (long) s->quota_bytes;
    if (add > (uint64_t) LONG_MAX)
	add = (uint64_t) LONG_MAX;
    if (quota_maildir_usage(s->mail_root, quota, &used, &err) < 0) {
	msg_warn("%s: quota: %s", s->user, err);
	return false;
    }
    if (!quota_exceeded(used, (long) add, quota))
	return false;
    if (quota_maildir_usage2(s->mail_root, quota, true, &used, &err) < 0) {
	msg_warn("%s: quota: %s", s->user, err);
	return false;
    }
    return quota_exceeded(used, (long) add, quota);
}

/* quota_account - bytes of n new messages (one line per message) */
static void quota_account(struct imap_session *s, const long *sizes, size_t n)
{
    size_t i;

    if (s->quota_bytes == 0)
	return;
    for (i = 0; i < n; i++)
	quota_maildir_add(s->mail_root, sizes[i]);
}

/* reply_text - a "NO ..."/"BAD ..." reply from open_dest */
static void reply_text(struct imap_session *s, const char *reply)
{
    if (strncmp(reply, "BAD ", 4) == 0)
	imap_cmd_bad(s, "%s", reply + 4);
    else if (strncmp(reply, "NO ", 3) == 0)
	imap_cmd_no(s, "%s", reply + 3);
    else
	imap_cmd_no(s, "%s", reply);
}

/* copy_common - COPY and MOVE */
static void copy_common(struct imap_session *s, const struct imap_arg *args, size_t nargs,
			bool uid, bool move)
{
    struct store_mailbox *src = s->sel->mb, *dest;
    const char *set, *reply = NULL, *err;
    uint32_t *seqs, *srcuids, *dstuids, uidvalidity = 0;
    size_t *idx, n, i, k = 0;
    bool own;
    struct str *code;

    if (nargs != 2 || !imap_arg_atom(&args[0], &set))
	return imap_cmd_bad(s, "%s needs a set and a mailbox", move ? "MOVE" : "COPY");
    if (move && s->sel->readonly)
	return imap_cmd_no(s, "[READ-ONLY] The mailbox is read-only");
    if (!imap_select_resolve(s, set, uid, &seqs, &n))
	return imap_cmd_bad(s, "%s: invalid message set", move ? "MOVE" : "COPY");
    if ((dest = open_dest(s, &args[1], &own, &reply)) == NULL) {
	free(seqs);
	return reply_text(s, reply);
    }
    idx = mem_alloc_array(n ? n : 1, sizeof(*idx));
    srcuids = mem_alloc_array(n ? n : 1, sizeof(*srcuids));
    dstuids = mem_alloc_array(n ? n : 1, sizeof(*dstuids));
    for (i = 0; i < n; i++) {
	long x = imap_select_index(s, seqs[i]);

	if (x < 0)
	    continue;
	idx[k] = (size_t) x;
	srcuids[k] = store_msg(src, (size_t) x)->uid;
	k++;
    }
    free(seqs);
    /* a COPY adds to the mailbox tree, a MOVE does not (a user over
     * quota must still be able to move mail to Trash) */
    if (k && !move) {
	uint64_t add = 0;

	for (i = 0; i < k; i++)
	    add += (uint64_t) store_msg(src, idx[i])->size;
	if (over_quota(s, add)) {
	    if (!own)
		store_close(&dest);
	    free(idx);
	    free(srcuids);
	    free(dstuids);
	    return imap_cmd_no(s, "[OVERQUOTA] COPY would exceed the quota");
	}
    }
    if (k && store_copy(src, idx, k, dest, dstuids, &uidvalidity, &err) < 0) {
	msg_warn("%s: copy: %s", s->user, err);
	if (!own)
	    store_close(&dest);
	free(idx);
	free(srcuids);
	free(dstuids);
	return imap_cmd_no(s, "[SERVERBUG] %s failed", move ? "MOVE" : "COPY");
    }
    if (!own)
	store_close(&dest);
    else
	s->sel->dirty = true;
    if (!move && s->quota_bytes) {
	for (i = 0; i < k; i++)
	    if (dstuids[i]) {
		long sz = (long) store_msg(src, idx[i])->size;

		quota_account(s, &sz, 1);
	    }
    }
    code = str_new(STR_MAX_HUGE);
    if (k) {
	/* COPYUID names the messages copied (dstuids 0: gone meanwhile) */
	for (i = 0; i < k; i++)
	    if (dstuids[i] == 0)
		srcuids[i] = 0;
	str_appendf_or_panic(code, "[COPYUID %u ", uidvalidity);
	append_set(code, srcuids, k);
	str_appendc_or_panic(code, ' ');
	append_set(code, dstuids, k);
	str_appends_or_panic(code, "] ");
    }
    if (move) {
	size_t m = 0;

	for (i = 0; i < k; i++)
	    if (srcuids[i])
		srcuids[m++] = srcuids[i];
	if (k)
	    imap_untagged(s, "OK %sMoved", str_cstr(code));
	if (m && store_expunge(src, srcuids, m, NULL, &err) < 0)
	    msg_warn("%s: move: expunge: %s", s->user, err);
	imap_cmd_done(s, "OK", "MOVE completed");
    } else {
	imap_cmd_done(s, "OK", "%sCOPY completed", str_cstr(code));
    }
    str_free(&code);
    free(idx);
    free(srcuids);
    free(dstuids);
}

/* imap_cmd_copy - COPY and UID COPY */
void imap_cmd_copy(struct imap_session *s, const struct imap_arg *args, size_t nargs, bool uid)
{
    copy_common(s, args, nargs, uid, false);
}

/* imap_cmd_move - MOVE and UID MOVE (RFC 6851) */
void imap_cmd_move(struct imap_session *s, const struct imap_arg *args, size_t nargs, bool uid)
{
    copy_common(s, args, nargs, uid, true);
}

/* APPEND */

/* parse_date_time - "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d") */
static bool parse_date_time(const char *s, size_t len, time_t *t_r)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char buf[40], mon[4], sign;
    int day, year, hh, mm, ss, zone, consumed = 0;
    struct tm tm;
    const char *p;
    time_t t;

    if (len >= sizeof(buf))
	return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (sscanf(buf, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year, &hh, &mm, &ss, &sign,
	       &zone, &consumed) != 8 || (size_t) consumed != len || (sign != '+' && sign != '-'))
	return false;
    mon[3] = 0;
    for (p = months; *p; p += 3)
	if (strncasecmp(p, mon, 3) == 0)
	    break;
    if (*p == 0 || day < 1 || day > 31 || year < 1970 || hh > 23 || mm > 59 || ss > 60
	|| hh < 0 || mm < 0 || ss < 0 || zone % 100 > 59 || zone > 2400)
	return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = day;
    tm.tm_mon = (int) ((p - months) / 3);
    tm.tm_year = year - 1900;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    t = timegm(&tm);
    if (t == (time_t) -1)
	return false;
    zone = (zone / 100) * 3600 + (zone % 100) * 60;
    *t_r = sign == '+' ? t - zone : t + zone;
    return true;
}

/* imap_cmd_append - APPEND (the message literal was streamed to a file) */
void imap_cmd_append(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		     bool uid)
{
    struct store_mailbox *mb;
    const char *reply = NULL, *err, *date;
    size_t i = 1, dlen;
    uint32_t flags = 0, uidvalidity = 0, newuid = 0;
    time_t when = 0;
    bool own;
    int fd;
    struct stat st;

    (void) uid;
    if (nargs < 2)
	return imap_cmd_bad(s, "APPEND needs a mailbox and a message");
    if (args[nargs - 1].type != IMAP_ARG_LITERAL_STREAM)
	return imap_cmd_bad(s, "APPEND: the message must be a literal");
    if ((mb = open_dest(s, &args[0], &own, &reply)) == NULL)
	return reply_text(s, reply);
    if (i < nargs - 1 && args[i].type == IMAP_ARG_LIST) {
	if (!imap_flags_parse_mb(mb, &args[i], 1, true, &flags, &err)) {
	    if (!own)
		store_close(&mb);
	    return imap_cmd_bad(s, "APPEND: %s", err);
	}
	i++;
    }
    if (i < nargs - 1 && imap_arg_string(&args[i], &date, &dlen)) {
	if (!parse_date_time(date, dlen, &when)) {
	    if (!own)
		store_close(&mb);
	    return imap_cmd_bad(s, "APPEND: invalid date-time");
	}
	i++;
    }
    if (i != nargs - 1) {
	if (!own)
	    store_close(&mb);
	return imap_cmd_bad(s, "APPEND: unexpected arguments (MULTIAPPEND is not supported)");
    }
    fd = imap_session_literal_fd(s, &args[nargs - 1]);
    if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t) st.st_size != args[nargs - 1].size) {
	if (!own)
	    store_close(&mb);
	return imap_cmd_no(s, "[SERVERBUG] The message could not be stored");
    }
    if (st.st_size == 0) {
	if (!own)
	    store_close(&mb);
	return imap_cmd_no(s, "Cannot store an empty message");
    }
    if (over_quota(s, (uint64_t) st.st_size)) {
	if (!own)
	    store_close(&mb);
	return imap_cmd_no(s, "[OVERQUOTA] The message would exceed the quota");
    }
    if (store_append(mb, fd, NULL, 0, flags, when, &uidvalidity, &newuid, &err) < 0) {
	int e = errno;

	if (!own)
	    store_close(&mb);
	if (e == EDQUOT || e == ENOSPC)
	    return imap_cmd_no(s, "[OVERQUOTA] Not enough space");
	msg_warn("%s: append: %s", s->user, err);
	return imap_cmd_no(s, "[SERVERBUG] The message could not be stored");
    }
    {
	long sz = (long) st.st_size;

	quota_account(s, &sz, 1);
    }
    if (own)
	s->sel->dirty = true;
    else
	store_close(&mb);
    imap_cmd_done(s, "OK", "[APPENDUID %u %u] APPEND completed", uidvalidity, newuid);
}
