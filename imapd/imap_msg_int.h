/* imap_msg_int.h - what the imap_*.c files of the message layer share
 * among themselves (not for the rest of imapd: use imap_msg.h).
 *
 * Header fields, Content-* parameters (RFC 2045, RFC 2231) and the
 * part structure behind struct imap_part. */
#ifndef POSTHORN_IMAP_MSG_INT_H
#define POSTHORN_IMAP_MSG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* base */
#include "errtext.h"
#include "str.h"

/* this program */
#include "imap_msg.h"

/* struct imap_mpart - a part with what the parse keeps privately; the
 * public struct comes first, so the two pointers convert */
struct imap_mpart {
    struct imap_part p;
    bool synthetic;		/* the empty child of a multipart that
				 * has none: no bytes at all */
    char *type_lc, *subtype_lc, *enc_lc, *charset;
    char *type_raw, *subtype_raw;	/* as written; NULL when defaulted */
    char *enc_raw;		/* Content-Transfer-Encoding as written */
    bool forced;		/* a multipart or message past the bounds,
				 * shown as application/octet-stream */
};

struct imap_msg {
    const char *data;
    size_t len;
    struct imap_mpart *root;
    size_t nparts;
    uint64_t wire_size;
};

static inline struct imap_mpart *imap_mpart_of(const struct imap_part *p)
{
    return (struct imap_mpart *) p;
}

extern struct errtext imap_msg_errtext;

/* One header field: name[0..name_len) and the raw value after the
 * colon (folded lines included, the final line end excluded). */
struct imap_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* imap_hdr_len - length of the header at data[0..len): up to and
 * including the empty line, or len when there is none */
size_t imap_hdr_len(const char *data, size_t len);
/* imap_hdr_next - the field at *pos in h[0..len) (skipping lines that
 * are no field), *pos moved past it; false at the end (an empty line
 * or the end of h) */
bool imap_hdr_next(const char *h, size_t len, size_t *pos, struct imap_field *f);
/* imap_hdr_find - the first field called name (any case) */
bool imap_hdr_find(const char *h, size_t len, const char *name, struct imap_field *f);
/* imap_hdr_unfold - the value on one line (imap_msg.h, STRINGS), cut
 * at about max bytes; replaces out's content */
void imap_hdr_unfold(const char *v, size_t len, size_t max, struct str *out);
/* imap_name_eq - field name f equals name, any case */
bool imap_name_eq(const char *a, size_t alen, const char *name);

/* Content-Type / Content-Disposition values */
struct imap_param {
    char *name;			/* as written, without RFC 2231 "*N*" */
    char *value;		/* continuations joined; when extended:
				 * charset'lang'%XX... (still encoded) */
    bool extended;		/* RFC 2231 encoded: sent as "name*" */
};

struct imap_ctype {
    char *type, *subtype;	/* as written; NULL when absent or bad */
    struct imap_param params[IMAP_MSG_MAX_PARAMS];
    size_t n;
};

/* imap_ctype_parse - parse "type/subtype; a=b; ..." (with_type) or
 * "value; a=b" (Content-Disposition: the value goes to ->type) from
 * v[0..len) (unfolded or not) */
void imap_ctype_parse(const char *v, size_t len, bool with_type, struct imap_ctype *ct);
void imap_ctype_fini(struct imap_ctype *ct);
/* imap_ctype_param - the parameter called name (any case), or NULL */
const struct imap_param *imap_ctype_param(const struct imap_ctype *ct, const char *name);
/* imap_param_decode - the value's bytes (RFC 2231 %XX decoded, charset
 * and language dropped) into out (replaced) */
void imap_param_decode(const struct imap_param *p, struct str *out);

/* imap_wire_count - LFs and bare LFs (no CR before, looking at
 * data[-1] when off > 0) in buf[off..end) */
void imap_wire_count(const char *buf, size_t off, size_t end, uint64_t *lf_r,
		     uint64_t *bare_r);

#endif
