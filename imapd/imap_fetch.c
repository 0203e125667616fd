/* imap_fetch.c - FETCH and UID FETCH: every RFC 3501 item and macro,
 * BODY[section]<partial> and BODY.PEEK, \Seen set as the RFC says,
 * CONDSTORE's MODSEQ item and CHANGEDSINCE modifier. ENVELOPE, BODY and
 * BODYSTRUCTURE come from the store's cache when they are there (filled
 * on the first fetch); message bytes are streamed in chunks while the
 * client reads (on_drain), so a long reply never sits in memory. */

/* system */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* imapd */
#include "imap_msg.h"
#include "imapd.h"

#define FETCH_HIGH_WATER	(48 * 1024)	/* queued bytes before we wait:
					 * below the connection's 64 KiB,
					 * which it keeps (a queue that grew
					 * past it was a fresh mapping, freed
					 * again, at every wait: page faults
					 * and TLB flushes) */
#define FETCH_CHUNK		(64 * 1024)
#define FETCH_ITEMS_MAX		100
#define FETCH_HEAD_READ		(16 * 1024)	/* first read of a message
						 * for ENVELOPE and its size */

enum fi_kind {
    FI_UID = 1,
    FI_FLAGS,
    FI_INTERNALDATE,
    FI_SIZE,
    FI_ENVELOPE,
    FI_BODY,
    FI_BODYSTRUCTURE,
    FI_MODSEQ,
    FI_SECTION,
};

struct fitem {
    enum fi_kind kind;
    struct imap_section sec;
    bool peek;
    bool partial;
    uint64_t origin, count;
    const char *label;		/* RFC822*; NULL: BODY[...] */
};

struct fetch_ctx {
    uint32_t *seqs;
    size_t n, pos;
    struct fitem *items;	/* grown as parsed (most commands have few) */
    size_t nitems, items_cap;
    bool set_seen;
    bool has_flags;
    bool changedsince_set;
    uint64_t changedsince;
    unsigned char *seen_changed;	/* per position: \Seen set by this fetch */
    bool expunged;
    /* the message being written */
    bool in_msg;
    size_t item;
    long idx;
    struct imap_msg_data data;
    bool mapped;
    struct imap_msg *msg;
    bool in_wire;
    struct imap_wire wire;
    struct imap_section_data sd;
    bool sd_set;
    struct str *out;
    /* the current message's header (and often all of it), read into a
     * bounded buffer: ENVELOPE and the CRLF size need no mapping */
    char *head;
    size_t head_cap;
    size_t head_len;
    bool head_loaded;
};

/* msg_done - release the current message */
static void msg_done(struct fetch_ctx *f)
{
    if (f->sd_set) {
	imap_section_data_fini(&f->sd);
	f->sd_set = false;
    }
    imap_msg_free(&f->msg);
    if (f->mapped) {
	imap_msg_unmap(&f->data);
	f->mapped = false;
    }
    if (f->head_cap > FETCH_HEAD_READ) {
	mem_free(&f->head);		/* (a long header: not kept) */
	f->head_cap = 0;
    }
    f->head_loaded = false;
    f->head_len = 0;
    f->in_msg = false;
    f->in_wire = false;
    f->item = 0;
}

/* fetch_free - the command's state */
static void fetch_free(struct imap_session *s, void *ctx)
{
    struct fetch_ctx *f = ctx;
    size_t i;

    (void) s;
    msg_done(f);
    for (i = 0; i < f->nitems; i++)
	if (f->items[i].kind == FI_SECTION)
	    imap_section_fini(&f->items[i].sec);
    free(f->items);
    free(f->seqs);
    free(f->seen_changed);
    mem_free(&f->head);
    str_free(&f->out);
    if (f->n > 1000)
	(void) malloc_trim(0);		/* (a big FETCH's memory back) */
    free(f);
}

/* add_item - one more item; false when there are too many */
static struct fitem *add_item(struct fetch_ctx *f, enum fi_kind kind)
{
    struct fitem *it;

    /* UID FETCH adds UID itself: a UID the client asks for too is sent
     * once (RFC 3501 6.4.8 wants it in every response, not twice) */
    if (kind == FI_UID)
	for (size_t i = 0; i < f->nitems; i++)
	    if (f->items[i].kind == FI_UID)
		return &f->items[i];
    if (f->nitems >= FETCH_ITEMS_MAX)
	return NULL;
    if (f->nitems == f->items_cap) {
	size_t cap = f->items_cap ? 2 * f->items_cap : 4;

	if (cap > FETCH_ITEMS_MAX)
	    cap = FETCH_ITEMS_MAX;
	f->items = mem_realloc(f->items, cap * sizeof(*f->items));
	f->items_cap = cap;
    }
    it = &f->items[f->nitems++];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    if (kind == FI_FLAGS)
	f->has_flags = true;
    return it;
}

/* add_section - a BODY[...] kind of item from text: "" etc. */
static bool add_section(struct fetch_ctx *f, const char *text, size_t len, bool peek,
			const char *label, const char **error_r)
{
    struct fitem *it = add_item(f, FI_SECTION);

    if (it == NULL) {
	*error_r = "Too many fetch items";
	return false;
    }
    if (imap_section_parse(text, len, &it->sec, error_r) < 0) {
	f->nitems--;
	return false;
    }
    it->peek = peek;
    it->label = label;
    if (!peek)
	f->set_seen = true;
    return true;
}

/* parse_item - one fetch-att atom */
static bool parse_item(struct fetch_ctx *f, const char *a, const char **error_r)
{
    static const struct {
	const char *name;
	enum fi_kind kind;
    } simple[] = {
	{"UID", FI_UID}, {"FLAGS", FI_FLAGS}, {"INTERNALDATE", FI_INTERNALDATE},
	{"RFC822.SIZE", FI_SIZE}, {"ENVELOPE", FI_ENVELOPE}, {"BODY", FI_BODY},
	{"BODYSTRUCTURE", FI_BODYSTRUCTURE}, {"MODSEQ", FI_MODSEQ},
    };
    const char *br;
    size_t i;

    for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
	if (strcasecmp(a, simple[i].name) == 0) {
	    if (add_item(f, simple[i].kind) == NULL) {
		*error_r = "Too many fetch items";
		return false;
	    }
	    return true;
	}
    if (strcasecmp(a, "RFC822") == 0)
	return add_section(f, "", 0, false, "RFC822", error_r);
    if (strcasecmp(a, "RFC822.HEADER") == 0)
	return add_section(f, "HEADER", 6, true, "RFC822.HEADER", error_r);
    if (strcasecmp(a, "RFC822.TEXT") == 0)
	return add_section(f, "TEXT", 4, false, "RFC822.TEXT", error_r);
    br = strchr(a, '[');
    if (br && ((br - a == 4 && strncasecmp(a, "BODY", 4) == 0)
	       || (br - a == 9 && strncasecmp(a, "BODY.PEEK", 9) == 0))) {
	const char *end = strrchr(a, ']');
	bool peek = br - a == 9;
	struct fitem *it;

	if (end == NULL || end < br) {
	    *error_r = "Missing ']' in section";
	    return false;
	}
	if (!add_section(f, br + 1, (size_t) (end - br - 1), peek, NULL, error_r))
	    return false;
	it = &f->items[f->nitems - 1];
	if (end[1] == '<') {
	    char *e;
	    unsigned long long o, c;

	    errno = 0;
	    o = strtoull(end + 2, &e, 10);
	    if (e == end + 2 || *e != '.' || errno) {
		*error_r = "Bad partial <origin.count>";
		return false;
	    }
	    c = strtoull(e + 1, &e, 10);
	    if (*e != '>' || e[1] != 0 || errno || c == 0) {
		*error_r = "Bad partial <origin.count>";
		return false;
	    }
	    it->partial = true;
	    it->origin = o;
	    it->count = c;
	} else if (end[1] != 0) {
	    *error_r = "Junk after section";
	    return false;
	}
	return true;
    }
    if (strncasecmp(a, "BINARY", 6) == 0) {
	*error_r = "BINARY is not supported";
	return false;
    }
    *error_r = "Unknown fetch item";
    return false;
}

/* parse_items - the fetch attribute(s): a macro, one item or a list */
static bool parse_items(struct fetch_ctx *f, const struct imap_arg *a, const char **error_r)
{
    const char *name;
    size_t i;

    if (imap_arg_atom(a, &name)) {
	if (strcasecmp(name, "ALL") == 0)
	    return parse_item(f, "FLAGS", error_r) && parse_item(f, "INTERNALDATE", error_r)
		&& parse_item(f, "RFC822.SIZE", error_r) && parse_item(f, "ENVELOPE", error_r);
	if (strcasecmp(name, "FAST") == 0)
	    return parse_item(f, "FLAGS", error_r) && parse_item(f, "INTERNALDATE", error_r)
		&& parse_item(f, "RFC822.SIZE", error_r);
	if (strcasecmp(name, "FULL") == 0)
	    return parse_item(f, "FLAGS", error_r) && parse_item(f, "INTERNALDATE", error_r)
		&& parse_item(f, "RFC822.SIZE", error_r) && parse_item(f, "ENVELOPE", error_r)
		&& parse_item(f, "BODY", error_r);
	return parse_item(f, name, error_r);
    }
    if (a->type != IMAP_ARG_LIST || a->count == 0) {
	*error_r = "Fetch items expected";
	return false;
    }
    for (i = 0; i < a->count; i++) {
	if (!imap_arg_atom(&a->list[i], &name)) {
	    *error_r = "Fetch items are atoms";
	    return false;
	}
	if (!parse_item(f, name, error_r))
	    return false;
    }
    return true;
}

/* has_item - kind among the items */
static bool has_item(const struct fetch_ctx *f, enum fi_kind kind)
{
    size_t i;

    for (i = 0; i < f->nitems; i++)
	if (f->items[i].kind == kind)
	    return true;
    return false;
}

/* ensure_mapped - the current message's bytes */
static bool ensure_mapped(struct imap_session *s, struct fetch_ctx *f)
{
    const char *err;
    int fd;

    if (f->mapped)
	return true;
    fd = store_open_msg(s->sel->mb, (size_t) f->idx, &err);
    if (fd < 0) {
	if (errno != ENOENT)
	    msg_warn("%s: fetch: %s", s->user, err);
	return false;
    }
    if (imap_msg_map(fd, &f->data, &err) < 0) {
	msg_warn("%s: fetch: %s", s->user, err);
	close(fd);
	return false;
    }
    close(fd);
    f->mapped = true;
    return true;
}

/* head_complete - whether buf[0..n) holds a whole header (up to the
 * empty line that ends it) */
static bool head_complete(const char *buf, size_t n)
{
    if (n > 0 && buf[0] == '\n')
	return true;
    if (n > 1 && buf[0] == '\r' && buf[1] == '\n')
	return true;
    return memmem(buf, n, "\n\n", 2) != NULL || memmem(buf, n, "\n\r\n", 3) != NULL;
}

/* crlf_count - LFs not preceded by CR in buf[0..n); *prev: the byte
 * before buf (updated) */
static off_t crlf_count(const char *buf, size_t n, char *prev)
{
    const char *p = buf, *end = buf + n, *nl;
    off_t c = 0;

    while (p < end && (nl = memchr(p, '\n', (size_t) (end - p))) != NULL) {
	if ((nl == buf ? *prev : nl[-1]) != '\r')
	    c++;
	p = nl + 1;
    }
    if (n > 0)
	*prev = buf[n - 1];
    return c;
}

/* load_head - read the current message's header (one read of
 * FETCH_HEAD_READ bytes, more only for a longer header) into f->head,
 * and count its CRLF size if the store does not know it yet (the rest
 * of a longer message read in chunks, not kept) */
static bool load_head(struct imap_session *s, struct fetch_ctx *f)
{
    struct store_mailbox *mb = s->sel->mb;
    const struct store_msg *m = store_msg(mb, (size_t) f->idx);
    char chunk[FETCH_CHUNK], prev = 0;
    const char *err;
    off_t lfs = 0, pos;
    ssize_t n;
    bool eof = false;
    int fd;

    if (f->head_loaded)
	return true;
    fd = store_open_msg_pread(mb, (size_t) f->idx, &err);	/* (only pread) */
    if (fd < 0) {
	if (errno != ENOENT)
	    msg_warn("%s: fetch: %s", s->user, err);
	return false;
    }
    if (f->head == NULL) {
	f->head_cap = FETCH_HEAD_READ;
	f->head = mem_alloc(f->head_cap);
    }
    f->head_len = 0;
    for (;;) {
	n = pread(fd, f->head + f->head_len, f->head_cap - f->head_len, (off_t) f->head_len);
	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0) {
	    msg_warn("%s: fetch: read %s: %m", s->user, m->name);
	    close(fd);
	    return false;
	}
	f->head_len += (size_t) n;
	if (n == 0 || f->head_len < f->head_cap) {
	    eof = n == 0 || (off_t) f->head_len >= m->size;
	    if (eof || (n > 0 && head_complete(f->head, f->head_len)))
		break;
	    continue;			/* (a short read that is not the end) */
	}
	if (head_complete(f->head, f->head_len) || f->head_cap >= IMAP_MSG_HEADER_MAX)
	    break;
	f->head_cap *= 2;
	f->head = mem_realloc(f->head, f->head_cap);
    }
    if (m->crlf_size < 0) {
	lfs = crlf_count(f->head, f->head_len, &prev);
	pos = (off_t) f->head_len;
	while (!eof) {
	    n = pread(fd, chunk, sizeof(chunk), pos);
	    if (n < 0 && errno == EINTR)
		continue;
	    if (n <= 0)
		break;
	    lfs += crlf_count(chunk, (size_t) n, &prev);
	    pos += n;
	}
	if (pos == m->size)
	    store_msg_set_crlf_size(mb, (size_t) f->idx, pos + lfs);
    }
    close(fd);
    f->head_loaded = true;
    return true;
}

/* ensure_parsed - the MIME tree of the current message */
static bool ensure_parsed(struct imap_session *s, struct fetch_ctx *f)
{
    if (f->msg)
	return true;
    if (!ensure_mapped(s, f))
	return false;
    f->msg = imap_msg_parse(f->data.data, f->data.len);
    return true;
}

/* cached - the value of a cached field, computing and caching it */
static bool cached(struct imap_session *s, struct fetch_ctx *f, unsigned field)
{
    const void *val;
    size_t len;
    const char *err;
    bool ok;

    if (store_cache_get(s->sel->mb, (size_t) f->idx, field, &val, &len) == 1) {
	imap_write(s, val, len);
	return true;
    }
    str_reset(f->out);
    switch (field) {
    case STORE_CACHE_ENVELOPE:
	if (f->mapped) {
	    ok = imap_msg_envelope(f->data.data, f->data.len, f->out);
	    break;
	}
	if (!load_head(s, f)) {
	    imap_write(s, "NIL", 3);
	    return false;
	}
	ok = imap_msg_envelope(f->head, f->head_len, f->out);
	break;
    case STORE_CACHE_BODYSTRUCTURE:
	if (!ensure_parsed(s, f)) {
	    imap_write(s, "NIL", 3);
	    return false;
	}
	ok = imap_msg_bodystructure(f->msg, f->out);
	break;
    default:
	if (!ensure_parsed(s, f)) {
	    imap_write(s, "NIL", 3);
	    return false;
	}
	ok = imap_msg_body(f->msg, f->out);
	break;
    }
    if (!ok) {
	msg_warn("%s: fetch: a structure too large for the output buffer", s->user);
	imap_write(s, "NIL", 3);
	return false;
    }
    if (str_len(f->out) <= STORE_CACHE_VALUE_MAX
	&& store_cache_put(s->sel->mb, (size_t) f->idx, field, str_cstr(f->out), str_len(f->out),
			   &err) < 0)
	msg_warn("%s: cache: %s", s->user, err);
    imap_write(s, str_cstr(f->out), str_len(f->out));
    return true;
}

/* write_section - "BODY[...]<o> {n}\r\n" and set up the byte stream
 * (NIL for a message that cannot be read) */
static bool write_section(struct imap_session *s, struct fetch_ctx *f, struct fitem *it)
{
    const char *err;
    uint64_t len, origin = 0;

    str_reset(f->out);
    if (it->label) {
	str_appends_or_panic(f->out, it->label);
    } else {
	str_appends_or_panic(f->out, "BODY[");
	if (!imap_section_format(&it->sec, f->out))
	    msg_panic("fetch: section text too long");
	str_appendc_or_panic(f->out, ']');
	if (it->partial)
	    str_appendf_or_panic(f->out, "<%llu>", (unsigned long long) it->origin);
    }
    if (it->sec.path_len == 0 && it->sec.kind == IMAP_SECTION_ALL) {
	/* the whole message (BODY[], RFC822): its bytes as they are, no
	 * MIME tree needed */
	if (!ensure_mapped(s, f)) {
	    imap_write(s, str_cstr(f->out), str_len(f->out));
	    imap_write(s, " NIL", 4);
	    return false;
	}
	memset(&f->sd, 0, sizeof(f->sd));
	f->sd.data = f->data.data;
	f->sd.start = 0;
	f->sd.end = f->data.len;
	f->sd.wire_size = imap_wire_size(f->data.data, f->data.len, false);
    } else if (!ensure_parsed(s, f)) {
	imap_write(s, str_cstr(f->out), str_len(f->out));
	imap_write(s, " NIL", 4);
	return false;
    } else if (imap_section_get(f->msg, &it->sec, &f->sd, &err) < 0) {
	msg_warn("%s: fetch: %s", s->user, err);
	imap_write(s, str_cstr(f->out), str_len(f->out));
	imap_write(s, " NIL", 4);
	return false;
    }
    f->sd_set = true;
    len = f->sd.wire_size;
    if (it->partial) {
	origin = it->origin;
	len = imap_partial(f->sd.wire_size, it->origin, it->count);
    }
    str_appendf_or_panic(f->out, " {%llu}\r\n", (unsigned long long) len);
    imap_write(s, str_cstr(f->out), str_len(f->out));
    imap_wire_init(&f->wire, f->sd.data, f->sd.start, f->sd.end, origin, len);
    f->in_wire = true;
    return true;
}

/* pump_wire - send section bytes until done or the queue is full;
 * true when the section is complete */
static bool pump_wire(struct imap_session *s, struct fetch_ctx *f)
{
    char buf[256];

    /* the wire form is written straight into the output queue: no
     * buffer of our own (a 64 KiB one on the stack stayed resident) */
    while (imap_wire_left(&f->wire) > 0) {
	size_t n, want;
	char *p;

	if (conn_output_pending(s->conn) > FETCH_HIGH_WATER)
	    return false;
	want = imap_wire_left(&f->wire) < FETCH_CHUNK ? (size_t) imap_wire_left(&f->wire)
	    : FETCH_CHUNK;
	if (imap_session_closed(s) || (p = conn_write_space(s->conn, want)) == NULL) {
	    f->wire.left = 0;		/* nobody to send it to */
	    break;
	}
	n = imap_wire_read(&f->wire, p, want);
	conn_write_done(s->conn, n);
	if (n == 0)
	    break;
    }
    /* a section shorter than announced (cannot happen: wire sizes are
     * exact) is padded so that the literal stays well-formed */
    while (imap_wire_left(&f->wire) > 0) {
	size_t n = imap_wire_left(&f->wire) < sizeof(buf) ? (size_t) imap_wire_left(&f->wire)
	    : sizeof(buf);

	memset(buf, ' ', n);
	imap_write(s, buf, n);
	f->wire.left -= n;
    }
    f->in_wire = false;
    imap_section_data_fini(&f->sd);
    f->sd_set = false;
    return true;
}

/* write_item - item i of the current message (a separator before all
 * but the first); false if the message went away */
static bool write_item(struct imap_session *s, struct fetch_ctx *f, size_t i)
{
    struct fitem *it = &f->items[i];
    const struct store_msg *m = store_msg(s->sel->mb, (size_t) f->idx);
    char date[IMAP_DATE_SIZE];
    struct tm tm;

    if (i > 0)
	imap_write(s, " ", 1);
    switch (it->kind) {
    case FI_UID:
	imap_printf(s, "UID %u", m->uid);
	return true;
    case FI_FLAGS:
	str_reset(f->out);
	str_appends_or_panic(f->out, "FLAGS ");
	imap_flags_append(s, f->out, m->flags, m->recent);
	imap_write(s, str_cstr(f->out), str_len(f->out));
	return true;
    case FI_INTERNALDATE:
	localtime_r(&m->mtime, &tm);
	if (!imap_internaldate_format(date, sizeof(date), m->mtime, tm.tm_gmtoff))
	    fmt_buf_cut(date, sizeof(date), "01-Jan-1970 00:00:00 +0000");
	imap_printf(s, "INTERNALDATE \"%s\"", date);
	return true;
    case FI_SIZE:
	if (m->crlf_size < 0 && !f->mapped)
	    (void) load_head(s, f);	/* (counts it, and ENVELOPE may follow) */
	imap_printf(s, "RFC822.SIZE %llu",
		    (unsigned long long) store_msg_crlf_size(s->sel->mb, (size_t) f->idx));
	return true;
    case FI_MODSEQ:
	imap_printf(s, "MODSEQ (%llu)", (unsigned long long) m->modseq);
	return true;
    case FI_ENVELOPE:
	imap_write(s, "ENVELOPE ", 9);
	return cached(s, f, STORE_CACHE_ENVELOPE);
    case FI_BODY:
	imap_write(s, "BODY ", 5);
	return cached(s, f, STORE_CACHE_BODY);
    case FI_BODYSTRUCTURE:
	imap_write(s, "BODYSTRUCTURE ", 14);
	return cached(s, f, STORE_CACHE_BODYSTRUCTURE);
    case FI_SECTION:
	return write_section(s, f, it);
    }
    return true;
}

/* start_msg - begin the response for position pos: false to skip it */
static bool start_msg(struct imap_session *s, struct fetch_ctx *f)
{
    uint32_t seq = f->seqs[f->pos];
    const struct store_msg *m;

    f->idx = imap_select_index(s, seq);
    if (f->idx < 0) {
	f->expunged = true;
	return false;
    }
    m = store_msg(s->sel->mb, (size_t) f->idx);
    if (f->changedsince_set && m->modseq <= f->changedsince)
	return false;
    imap_printf(s, "* %u FETCH (", seq);
    f->in_msg = true;
    f->item = 0;
    return true;
}

/* end_msg - ")" and the extra FLAGS when \Seen was set */
static void end_msg(struct imap_session *s, struct fetch_ctx *f)
{
    const struct store_msg *m = store_msg(s->sel->mb, (size_t) f->idx);
    uint32_t seq = f->seqs[f->pos];

    if (f->seen_changed && f->seen_changed[f->pos]) {
	if (!f->has_flags) {
	    str_reset(f->out);
	    str_appends_or_panic(f->out, " FLAGS ");
	    imap_flags_append(s, f->out, m->flags, m->recent);
	    imap_write(s, str_cstr(f->out), str_len(f->out));
	    if (s->condstore && !has_item(f, FI_MODSEQ))
		imap_printf(s, " MODSEQ (%llu)", (unsigned long long) m->modseq);
	}
	s->sel->flags_known[seq - 1] = m->flags;
	s->sel->modseq_known[seq - 1] = m->modseq;
    }
    imap_write(s, ")\r\n", 3);
    msg_done(f);
}

/* fetch_pump - write responses while the client reads them */
static void fetch_pump(struct imap_session *s)
{
    struct fetch_ctx *f = s->cmd_ctx;

    while (f->pos < f->n) {
	if (imap_session_closed(s))
	    return;
	if (conn_output_pending(s->conn) > FETCH_HIGH_WATER) {
	    imap_session_suspend(s, fetch_pump);
	    return;
	}
	if (f->in_wire) {
	    if (!pump_wire(s, f)) {
		imap_session_suspend(s, fetch_pump);
		return;
	    }
	    f->item++;
	    continue;
	}
	if (!f->in_msg) {
	    if (!start_msg(s, f))
		f->pos++;
	    continue;
	}
	if (f->item < f->nitems) {
	    if (!write_item(s, f, f->item)) {
		/* the message vanished (or is unreadable) in the middle of
		 * its response: NIL was sent for the item; go on */
		f->expunged = true;
		f->item++;
		continue;
	    }
	    if (!f->in_wire)
		f->item++;
	    continue;
	}
	end_msg(s, f);
	f->pos++;
    }
    {
	const char *err;

	/* values computed and CRLF sizes counted go to disk before the
	 * tagged reply (one append, one index write: nothing to do for
	 * a FETCH that computed nothing) */
	if (s->sel && store_cache_flush(s->sel->mb, &err) < 0)
	    msg_warn("%s: cache: %s", s->user, err);
    }
    if (f->expunged)
	imap_cmd_done(s, "NO", "[EXPUNGEISSUED] Some messages were expunged meanwhile");
    else
	imap_cmd_ok(s);
}

/* mark_seen - set \Seen on the fetched messages (one batch) */
static void mark_seen(struct imap_session *s, struct fetch_ctx *f)
{
    struct store_mailbox *mb = s->sel->mb;
    const char *err;
    size_t i;
    bool begun = false;

    f->seen_changed = mem_zalloc(f->n ? f->n : 1);
    for (i = 0; i < f->n; i++) {
	long idx = imap_select_index(s, f->seqs[i]);

	if (idx < 0 || (store_msg(mb, (size_t) idx)->flags & STORE_FLAG_SEEN))
	    continue;
	if (f->changedsince_set && store_msg(mb, (size_t) idx)->modseq <= f->changedsince)
	    continue;
	if (!begun) {
	    if (store_begin(mb, &err) < 0) {
		msg_warn("%s: fetch: %s", s->user, err);
		return;
	    }
	    begun = true;
	}
	if (store_set_flags(mb, (size_t) idx, STORE_FLAG_SEEN, 0, &err) == 0)
	    f->seen_changed[i] = 1;
	else if (errno != ENOENT)
	    msg_warn("%s: fetch: \\Seen: %s", s->user, err);
    }
    if (begun && store_commit(mb, &err) < 0)
	msg_warn("%s: fetch: %s", s->user, err);
}

/* imap_cmd_fetch - FETCH and UID FETCH */
void imap_cmd_fetch(struct imap_session *s, const struct imap_arg *args, size_t nargs,
		    bool uid)
{
    struct fetch_ctx *f;
    const char *set, *err = NULL;

    if (nargs < 2 || nargs > 3 || !imap_arg_atom(&args[0], &set))
	return imap_cmd_bad(s, "FETCH needs a sequence set and items");
    f = mem_zalloc(sizeof(*f));
    f->out = str_new(IMAP_MSG_HEADER_MAX + 65536);
    s->cmd_ctx = f;
    s->cmd_ctx_free = fetch_free;
    if (uid && add_item(f, FI_UID) == NULL)
	return imap_cmd_bad(s, "Too many fetch items");
    if (!parse_items(f, &args[1], &err))
	return imap_cmd_bad(s, "FETCH: %s", err);
    if (nargs == 3) {
	const struct imap_arg *l;
	size_t n, i;
	uint64_t v;

	if (!imap_arg_list(&args[2], &l, &n))
	    return imap_cmd_bad(s, "FETCH: bad modifiers");
	for (i = 0; i < n; i++) {
	    if (imap_arg_atom_is(&l[i], "CHANGEDSINCE") && i + 1 < n
		&& imap_arg_number(&l[i + 1], UINT64_MAX >> 1, &v)) {
		f->changedsince_set = true;
		f->changedsince = v;
		i++;
	    } else {
		return imap_cmd_bad(s, "FETCH: unknown modifier");
	    }
	}
	s->condstore = true;
    }
    if (!imap_select_resolve(s, set, uid, &f->seqs, &f->n))
	return imap_cmd_bad(s, "FETCH: invalid message set");
    if (f->changedsince_set && !has_item(f, FI_MODSEQ) && add_item(f, FI_MODSEQ) == NULL)
	return imap_cmd_bad(s, "Too many fetch items");
    if (has_item(f, FI_MODSEQ))
	s->condstore = true;
    if (s->condstore && f->has_flags && !has_item(f, FI_MODSEQ) && add_item(f, FI_MODSEQ) == NULL)
	return imap_cmd_bad(s, "Too many fetch items");
    if (f->set_seen && !s->sel->readonly)
	mark_seen(s, f);
    fetch_pump(s);
}
