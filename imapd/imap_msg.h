/* imap_msg.h - imapd's message layer: what IMAP says about one message.
 *
 * Pure functions on a message held in memory (normally an mmap of its
 * file: imap_msg_map); no session or mailbox state, no I/O besides
 * imap_msg_map. The files:
 *   imap_mime.c          MIME tree parse (offsets, sizes, line counts),
 *                        header field access, Content-* parameters
 *                        (RFC 2045, RFC 2231), the wire form reader
 *   imap_envelope.c      ENVELOPE (RFC 3501 7.4.2), address lists
 *   imap_bodystructure.c BODY and BODYSTRUCTURE
 *   imap_section.c       BODY[section]<origin.count>
 *   imap_search_match.c  SEARCH: header / body / text contains, Date:
 *
 * THE WIRE FORM (sizes, offsets, line counts)
 *   Messages are stored as delivered, usually with bare LF line ends.
 *   IMAP sends them with CRLF. Every size and offset this module gives
 *   (RFC822.SIZE, BODYSTRUCTURE sizes, BODY[...] octet counts, partial
 *   origins) is one of the WIRE FORM: the stored bytes with a CR put
 *   before every LF that has no CR before it. Nothing else changes (a
 *   bare CR stays, a last line without LF stays without one) except
 *   that a NUL byte is sent as 0x80 (no IMAP string may hold a NUL;
 *   Dovecot does the same; the size does not change). This is exactly
 *   the store's crlf_size rule (docs/mailstore.md), so RFC822.SIZE = store_msg.crlf_size =
 *   imap_msg_wire_size() = the octets of BODY[] as sent. Send section
 *   bytes ONLY through struct imap_wire (it does the conversion), never
 *   the raw file, or the counts lie.
 *   Line counts (BODYSTRUCTURE "lines" of text parts and message/rfc822):
 *   the number of LFs in the part's body (a part ends before the line
 *   end of the next delimiter line, so its last line is not counted
 *   unless the body ends with an empty line), as Dovecot counts them.
 *
 * LARGE MESSAGES
 *   Parsing walks the whole message once (boundaries, line counts) but
 *   keeps only the tree: O(parts) memory, never a copy of the content.
 *   A section's bytes are read straight from the caller's buffer by
 *   struct imap_wire in chunks of the caller's size, so a 50 MiB
 *   BODY[] is streamed (on_drain), never built in memory. Only
 *   HEADER.FIELDS(.NOT) builds a buffer (a header is bounded:
 *   IMAP_MSG_HEADER_MAX). Search matching decodes and folds in a
 *   streaming fashion with fixed memory (no decoded copy of a body).
 *   For ENVELOPE and header searches only the header is read: call the
 *   *_header functions with (data, len); they stop at the blank line,
 *   so the pages of a large body are never touched.
 *
 * THE CACHE
 *   imap_msg_envelope, imap_msg_body and imap_msg_bodystructure append
 *   self-contained IMAP strings (the value after "ENVELOPE ",
 *   "BODY ", "BODYSTRUCTURE ": a parenthesised list, ready to send,
 *   literals "{n}\r\n..." included) that lib/store's cache keeps as
 *   they are; FETCH 1:* then sends cached strings without opening
 *   files. They depend only on the message bytes, never on the session.
 *   BODY[section] always needs the message and a parse (cheap next to
 *   sending the bytes).
 *
 * BOUNDS
 *   Nesting depth IMAP_MSG_MAX_DEPTH (multiparts and message/rfc822
 *   together), IMAP_MSG_MAX_PARTS parts in a message: a multipart
 *   beyond either is kept as one leaf part of type
 *   application/octet-stream (its bytes still reachable by section
 *   number; sizes stay exact); past the part limit the rest of a
 *   multipart's body belongs to no part. Content-* header values are parsed up
 *   to IMAP_MSG_FIELD_MAX bytes each, at most IMAP_MSG_MAX_PARAMS
 *   parameters per field, RFC 2231 continuations up to
 *   IMAP_MSG_MAX_PARAMS sections. Broken MIME never fails a parse:
 *   any bytes are a message: a multipart without a boundary parameter,
 *   or whose boundary never occurs, has one empty text/plain child (as
 *   Dovecot shows it); a missing close delimiter ends the multipart at
 *   its parent's end; a header without an empty line is all header.
 *   As in Dovecot, a delimiter line is one that starts with "--" and
 *   the boundary (anything may follow; the innermost open boundary
 *   wins), the line end before a delimiter line belongs to the
 *   delimiter (even when it is a header's empty line), except right
 *   after a close delimiter line.
 *
 * STRINGS IN OUTPUT
 *   nstrings are quoted ("...") when they are 7-bit without CR, LF,
 *   NUL, '"' or '\\' and shorter than 1024 bytes, else sent as literals
 *   {n}\r\n (Dovecot's choice too). Header values are unfolded as
 *   Dovecot does: a line end and the white space after it become one
 *   space, a lone CR a space, a NUL U+FFFD; leading and trailing white
 *   space trimmed; 8-bit bytes are kept (and so sent as a literal).
 *
 * ERRORS
 *   Functions that can fail return -1 or false with *error_r set to
 *   this module's errtext (errtext.h; valid until the next imap_msg
 *   error). Building output fails only when the output str's maximum
 *   is reached (false, out then holds a partial result: discard it).
 */
#ifndef POSTHORN_IMAP_MSG_H
#define POSTHORN_IMAP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* base */
#include "str.h"

#define IMAP_MSG_MAX_DEPTH	100	/* nested multipart/message levels
					 * (Dovecot's limit too) */
#define IMAP_MSG_MAX_PARTS	5000	/* parts of one message, all levels */
#define IMAP_MSG_MAX_PARAMS	64	/* parameters per Content-* field */
#define IMAP_MSG_FIELD_MAX	(64 * 1024)	/* bytes of one parsed field */
#define IMAP_MSG_HEADER_MAX	(4 * 1024 * 1024) /* a header we build from */

/* ------------------------------------------------------------------ */
/* Holding a message */

/* imap_msg_data - the message's bytes: an mmap of its file, a copy
 * read into memory (small files), or any buffer the caller owns (then
 * mapped and allocated are false). data is never NULL (an empty file
 * gives "" and len 0). */
struct imap_msg_data {
    const char *data;
    size_t len;
    bool mapped;		/* imap_msg_unmap must munmap */
    bool allocated;		/* imap_msg_unmap must free */
};

/* Files up to this size are read into the heap rather than mapped: a
 * mapping costs mmap, page faults, munmap and a TLB flush per message,
 * more than copying a few KiB (below the workers' malloc mmap threshold) */
#define IMAP_MSG_READ_MAX	(48 * 1024)

/* imap_msg_map - the whole regular file fd (mapped read-only and
 * private, or read when small; fd may be closed afterwards); -1 and
 * *error_r on failure */
int imap_msg_map(int fd, struct imap_msg_data *d, const char **error_r);
/* imap_msg_unmap - release what imap_msg_map gave (fine on a zeroed d) */
void imap_msg_unmap(struct imap_msg_data *d);

/* ------------------------------------------------------------------ */
/* The MIME tree */

/* struct imap_part - one body part. Offsets are into the message
 * buffer (raw bytes); sizes named *_size are WIRE sizes (see top). The
 * header includes its terminating empty line (if any); the body runs
 * from there to the part's end (for a part of a multipart: up to, not
 * including, the line end before the next delimiter line). */
struct imap_part {
    struct imap_part *parent;
    struct imap_part *children;	/* multipart: its parts, in order;
				 * message/rfc822: exactly one, the
				 * encapsulated message's root part */
    struct imap_part *next;	/* next sibling */
    unsigned depth;		/* 0 for the root */

    size_t hdr_off, hdr_len;	/* raw header bytes (with the empty line) */
    size_t body_off, body_len;	/* raw body bytes */
    uint64_t hdr_size;		/* wire sizes */
    uint64_t body_size;
    uint64_t body_lines;	/* see "Line counts" above */

    /* From Content-Type (defaults applied: text/plain, or
     * message/rfc822 inside multipart/digest); lower-cased. */
    const char *type;		/* "text", "multipart", "message", ... */
    const char *subtype;	/* "plain", "mixed", "rfc822", ... */
    bool is_multipart;		/* has children parsed as parts */
    bool is_message;		/* message/rfc822 with an encapsulated message */
    const char *encoding;	/* Content-Transfer-Encoding, lower-cased,
				 * "7bit" when absent */
    const char *charset;	/* charset parameter, or NULL */
};

struct imap_msg;

/* imap_msg_parse - parse data[0..len) (kept, not copied: it must
 * outlive the result); never fails (see BOUNDS) */
struct imap_msg *imap_msg_parse(const char *data, size_t len);
/* imap_msg_free - free a parse (NULL is fine); sets *mp to NULL */
void imap_msg_free(struct imap_msg **mp);
/* imap_msg_root - the top-level part (the message itself: its header
 * is the message header, its body the message body) */
const struct imap_part *imap_msg_root(const struct imap_msg *m);
/* imap_msg_wire_size - RFC822.SIZE: octets of the whole message in
 * wire form (= store_msg.crlf_size of the same file) */
uint64_t imap_msg_wire_size(const struct imap_msg *m);
/* imap_msg_part - the part with the IMAP part number path[0..n) (each
 * >= 1: "1.2.3" is {1, 2, 3}), by RFC 3501 6.4.5: the parts of a
 * multipart are numbered from 1; part 1 of a non-multipart message is
 * its body (and, as in Dovecot, "1" below any leaf is the leaf); the number of a message/rfc822 part followed by more numbers
 * goes into the encapsulated message. n == 0 gives the root. NULL if
 * there is no such part. */
const struct imap_part *imap_msg_part(const struct imap_msg *m,
				      const unsigned *path, size_t n);

/* imap_wire_size - wire size of raw bytes data[0..len); the byte
 * before data (if any) is not looked at: an LF at data[0] counts as
 * bare unless prev_cr */
uint64_t imap_wire_size(const char *data, size_t len, bool prev_cr);

/* ------------------------------------------------------------------ */
/* FETCH ENVELOPE, BODY, BODYSTRUCTURE */

/* imap_msg_envelope - append the ENVELOPE list of the message whose
 * header starts at data (data[0..len): the whole message or any
 * prefix holding the header) to out: (date subject from sender
 * reply-to to cc bcc in-reply-to message-id), RFC 3501 7.4.2: sender
 * and reply-to default to from; address lists as ((name adl mailbox
 * host) ...) with groups as (NIL NIL "group" NIL) ... (NIL NIL NIL
 * NIL); NIL for an absent or empty field. Values are raw (no RFC 2047
 * decoding: the client does that). */
bool imap_msg_envelope(const char *data, size_t len, struct str *out);
/* imap_part_envelope - the same for a message/rfc822 part's message */
bool imap_part_envelope(const struct imap_msg *m, const struct imap_part *p,
			struct str *out);
/* imap_msg_bodystructure - append BODYSTRUCTURE (extended: md5,
 * disposition, language, location; multipart: parameters,
 * disposition, language, location) */
bool imap_msg_bodystructure(const struct imap_msg *m, struct str *out);
/* imap_msg_body - append BODY (the same without extension data) */
bool imap_msg_body(const struct imap_msg *m, struct str *out);

/* ------------------------------------------------------------------ */
/* BODY[section]<origin.count> */

enum imap_section_kind {
    IMAP_SECTION_ALL,		/* BODY[] or BODY[1.2]: the part's content
				 * (for the empty path: the whole message) */
    IMAP_SECTION_HEADER,	/* [HEADER], [1.HEADER] (message/rfc822) */
    IMAP_SECTION_HEADER_FIELDS,	/* [HEADER.FIELDS (A B)] */
    IMAP_SECTION_HEADER_FIELDS_NOT,
    IMAP_SECTION_TEXT,		/* [TEXT], [2.TEXT] */
    IMAP_SECTION_MIME,		/* [1.2.MIME]: the part's own header */
};

#define IMAP_SECTION_MAX_PATH	IMAP_MSG_MAX_DEPTH
#define IMAP_SECTION_MAX_FIELDS	256

struct imap_section {
    unsigned path[IMAP_SECTION_MAX_PATH];
    size_t path_len;
    enum imap_section_kind kind;
    char **fields;		/* HEADER.FIELDS(.NOT) names, as given */
    size_t n_fields;
};

/* imap_section_parse - parse the text between "[" and "]" (e.g.
 * "1.2.HEADER.FIELDS (From To)", "", "TEXT", "3.MIME"; case-insensitive;
 * field names are atoms or quoted strings, as astrings); -1 and
 * *error_r on bad syntax (MIME without a part number, a 0 part,
 * HEADER.FIELDS without a list, too deep ...). Free with
 * imap_section_fini. */
int imap_section_parse(const char *text, size_t len, struct imap_section *sec,
		       const char **error_r);
/* imap_section_fini - free the field names */
void imap_section_fini(struct imap_section *sec);
/* imap_section_format - append the canonical section text for the
 * FETCH response "BODY[...]" (upper-case keywords, field names as
 * given, quoted when they are not atoms) */
bool imap_section_format(const struct imap_section *sec, struct str *out);

/* imap_section_data - a section's bytes: raw bytes data[start..end) of
 * the message buffer (or of the owned built buffer), whose wire form
 * has wire_size octets. A part that does not exist gives an empty
 * section (Dovecot does the same: "" rather than NIL). */
struct imap_section_data {
    const char *data;
    size_t start, end;
    uint64_t wire_size;
    struct str *built;		/* HEADER.FIELDS(.NOT): owned, in wire
				 * form already; NULL otherwise */
};

/* imap_section_get - find sec in m; fills *sd (free with
 * imap_section_data_fini); -1 and *error_r only when a built header
 * would pass IMAP_MSG_HEADER_MAX */
int imap_section_get(const struct imap_msg *m, const struct imap_section *sec,
		     struct imap_section_data *sd, const char **error_r);
/* imap_section_data_fini - free the built buffer */
void imap_section_data_fini(struct imap_section_data *sd);

/* imap_partial - the octets sent for <origin.count> of a section of
 * wire_size octets: min(count, wire_size - origin), 0 when origin is
 * at or past the end (RFC 3501: then an empty string). Use with
 * imap_wire_init(..., origin, that length). */
uint64_t imap_partial(uint64_t wire_size, uint64_t origin, uint64_t count);

/* struct imap_wire - a reader of the wire form of raw bytes, for
 * streaming a section (or part of it) to a client:
 *   imap_wire_init(&w, sd.data, sd.start, sd.end, origin, length);
 *   while ((n = imap_wire_read(&w, buf, sizeof(buf))) > 0) send(buf, n);
 * origin and length are in wire octets (origin may fall between the
 * CR and the LF of a converted line end); the reader gives exactly
 * length octets unless the section is shorter. */
struct imap_wire {
    const char *data;
    size_t pos, end;		/* raw position and end */
    bool lf_owed;		/* a CR was given for a bare LF at pos */
    uint64_t left;		/* wire octets still to give */
};

/* imap_wire_init - position at wire offset origin of data[start..end) */
void imap_wire_init(struct imap_wire *w, const char *data, size_t start, size_t end,
		    uint64_t origin, uint64_t length);
/* imap_wire_read - up to size wire octets into buf; 0 at the end */
size_t imap_wire_read(struct imap_wire *w, char *buf, size_t size);
/* imap_wire_left - octets still to come */
static inline uint64_t imap_wire_left(const struct imap_wire *w) { return w->left; }

/* ------------------------------------------------------------------ */
/* SEARCH matching */

/* struct imap_search_key - a SEARCH string, prepared once per search
 * (the key is UTF-8, as CHARSET UTF-8 / US-ASCII give it), matched
 * case-insensitively: both sides are folded by Unicode simple case
 * folding (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic; other
 * characters compare as they are). An empty key matches everything. */
struct imap_search_key {
    char *folded;		/* the folded key */
    size_t len;
    size_t *fail;		/* KMP failure table */
};

/* imap_search_key_init - prepare key[0..len) (invalid UTF-8 bytes are
 * compared as bytes) */
void imap_search_key_init(struct imap_search_key *k, const char *key, size_t len);
void imap_search_key_fini(struct imap_search_key *k);

/* imap_search_header - SEARCH HEADER name key (and FROM, TO, CC, BCC,
 * SUBJECT): true if a field called name (any case) in the header at
 * data[0..len) contains the key in its unfolded value after RFC 2047
 * decoding (encoded-words in any charset iconv knows, converted to
 * UTF-8; raw 8-bit bytes taken as UTF-8). An empty key matches when
 * the field exists (RFC 3501). */
bool imap_search_header(const char *data, size_t len, const char *name,
			const struct imap_search_key *k);
/* imap_search_body - SEARCH BODY (text_too false) or TEXT (true), as
 * Dovecot does them: BODY searches the content of the leaf parts of
 * type text/... and message/... (not other types, not the preamble or
 * epilogue of multiparts) after decoding its Content-Transfer-Encoding
 * (quoted-printable, base64) and converting it from its charset to
 * UTF-8 (UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15 and windows-1252
 * built in; others through iconv; an unknown charset is taken as it
 * is); TEXT adds every header, RFC 2047-decoded: the message's, the
 * MIME part headers and the headers of encapsulated messages.
 * Streaming, fixed memory. */
bool imap_search_body(const struct imap_msg *m, bool text_too,
		      const struct imap_search_key *k);

/* imap_msg_sent_date - the date of the message's Date: field,
 * disregarding time and zone (RFC 3501 SENTBEFORE/SENTON/SENTSINCE):
 * days since 1970-01-01 of the date as written; false if there is no
 * Date: field or it does not parse (RFC 5256 suggests INTERNALDATE
 * then; that is the caller's choice). Accepts RFC 5322 dates and the
 * usual obsolete forms (no weekday, 2-digit years, named zones). */
bool imap_msg_sent_date(const char *data, size_t len, long *day_r);
/* imap_search_date_parse - an IMAP search date "1-Feb-1994" (or
 * "01-Feb-1994", quoted or not is the caller's business) to days since
 * 1970-01-01; false if invalid */
bool imap_search_date_parse(const char *text, size_t len, long *day_r);
/* imap_day_of_time - the day number of t at offset gmtoff seconds east
 * (for SINCE/BEFORE/ON on INTERNALDATE: RFC 3501 says the date part of
 * the internal date, in its own zone) */
long imap_day_of_time(time_t t, long gmtoff);

/* imap_internaldate_format - "17-Jul-1996 02:44:25 -0700" of t at
 * gmtoff, NUL-terminated, into buf[size >= IMAP_DATE_SIZE] */
#define IMAP_DATE_SIZE	32
bool imap_internaldate_format(char *buf, size_t size, time_t t, long gmtoff);

/* ------------------------------------------------------------------ */
/* Output helpers (used by the above; for imapd's FETCH too) */

/* imap_msg_append_nstring - append s[0..len) as an IMAP string
 * (quoted or literal, see STRINGS), or NIL when s is NULL */
bool imap_msg_append_nstring(struct str *out, const char *s, size_t len);

#endif
