/* queue_file.h - the queue file record format: typed, length-prefixed
 * records, a whitelist per segment, in-place "done" marks, a dump.
 *
 * A record is 1 type byte, a 4-byte big-endian data length, then the
 * data (docs/queue-file.md has the full description and the reasons):
 *
 *     +------+----------------+------------------+
 *     | type | length (BE 32) | length bytes ... |
 *     +------+----------------+------------------+
 *
 * Record types (one ASCII letter each):
 *   envelope segment (the file starts here)
 *     'V' version    "posthorn-queue 1"; always the first record
 *     'T' time       arrival time: "SECONDS" or "SECONDS.UUUUUU"
 *     'S' sender     envelope sender address; empty for the null sender
 *     'A' attribute  "name=value": client_address, client_name, helo,
 *                    protocol, sasl_username, dsn_envid, dsn_ret, ...
 *     'O' orcpt      DSN ORCPT ("rfc822;user@example"), for the next R
 *     'N' notify     DSN NOTIFY: "never", or a comma list of
 *                    success, failure, delay; for the next R
 *     'R' recipient  a recipient still to be delivered
 *     'D' done       a finished recipient: an 'R' whose type byte was
 *                    overwritten in place (qf_mark_done)
 *     'M' message    start of content; empty data; ends the envelope
 *   content segment
 *     'L' line       one content line, without its line terminator
 *     'C' continued  part of a line that goes on in the next C or L
 *     'X' xend       end of content; empty data
 *   trailer segment (recipients and attributes known only after the
 *   content was read, e.g. sendmail -t)
 *     'A' 'O' 'N' 'R' 'D' as above
 *     'E' end        the file is complete; empty data; nothing follows
 *
 * Only L and C records may contain NUL bytes, and they never contain a
 * line feed (one record is one line or a piece of one; qf_get refuses
 * an LF there as corruption). Each reader passes the set of types
 * allowed where it is (QF_TYPES_* for a queue file); any other type is a
 * "corrupt queue file" error naming the byte offset. Which record may
 * follow which, and what each producer may write, is the record grammar
 * (record_grammar.h), with one profile per kind of reader.
 *
 * Writing: qf_put*() append records to a buffered stream; the caller
 * flushes and fsyncs (the commit protocol is in docs/queue.md).
 * Reading: qf_get() reads one record, checked against a whitelist and a
 * length limit, from a stream or from a whole file in memory;
 * qf_expect_eof() checks that nothing follows the end record.
 * qf_mark_done() turns the 'R' at an offset into 'D' with a one-byte
 * pwrite and fdatasync. queue_file_scan.c adds qf_scan() (a whole file
 * under the grammar's queue-file profile: V first, exactly one T and S,
 * O/N only before an R, M X E with empty data, C only before L, at
 * least one recipient, nothing after E) and qf_dump(), which prints
 * every record readably (posthorn queue cat).
 *
 * Diagnostics: -1 and an error text ("corrupt queue file: ... at offset
 * N", or an I/O error) in a static buffer that stays valid until the next
 * call into this module. A record longer than QF_RECORD_MAX or an
 * unknown type given to a writer is a bug (msg_panic). */
#ifndef POSTHORN_QUEUE_FILE_H
#define POSTHORN_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* base */
#include "str.h"
#include "stream.h"

#define QF_REC_VERSION	'V'
#define QF_REC_TIME	'T'
#define QF_REC_SENDER	'S'
#define QF_REC_ATTR	'A'
#define QF_REC_ORCPT	'O'
#define QF_REC_NOTIFY	'N'
#define QF_REC_RCPT	'R'
#define QF_REC_DONE	'D'
#define QF_REC_MESSAGE	'M'
#define QF_REC_LINE	'L'
#define QF_REC_CONT	'C'
#define QF_REC_XEND	'X'
#define QF_REC_END	'E'

/* Whitelists, one per position in the file. */
#define QF_TYPES_FIRST		"V"
#define QF_TYPES_ENVELOPE	"TSAONRDM"
#define QF_TYPES_CONTENT	"LCX"
#define QF_TYPES_TRAILER	"AONRDE"

#define QF_MAGIC	"posthorn-queue"
#define QF_VERSION	1
#define QF_HEADER_SIZE	5			/* type + 32-bit length */
#define QF_RECORD_MAX	((size_t) 1 << 20)	/* largest record data */
#define QF_ATTR_NAME_MAX 64

/* Reading position: the offset of the next record in the file, read
 * from a stream or from the bytes of a whole file in memory. */
struct qf_reader {
    struct stream *stream;		/* or NULL: */
    const unsigned char *buf;		/* the whole file, len bytes */
    size_t len;
    off_t offset;
};

/* qf_reader_init - read records from s, whose next byte is at offset */
void qf_reader_init(struct qf_reader *r, struct stream *s, off_t offset);
/* qf_reader_init_mem - read records from the len bytes at buf, a whole
 * file (offset 0); the same records, checks and error texts as from a
 * stream, without a stream call per record */
void qf_reader_init_mem(struct qf_reader *r, const void *buf, size_t len);

/* qf_get - read one record whose type is in allowed and whose length is
 * at most max (and data->max). Returns 1 with *type, data and
 * *rec_offset (where its type byte is; may be NULL); 0 at a clean end of
 * file (no byte of a new record); -1 with *error_r. */
int qf_get(struct qf_reader *r, int *type, struct str *data, size_t max,
	   const char *allowed, off_t *rec_offset, const char **error_r);

/* qf_expect_eof - 0 if the reader is at the end of its file; -1 with
 * *error_r ("data after the end record", or a read error) otherwise */
int qf_expect_eof(struct qf_reader *r, const char **error_r);

/* qf_encode - append one record to a memory buffer (panics if full) */
void qf_encode(struct str *out, int type, const void *data, size_t len);
/* qf_put - write one record; 0, or -1 on a stream error */
int qf_put(struct stream *s, int type, const void *data, size_t len);
/* qf_puts - write a record with text data */
int qf_puts(struct stream *s, int type, const char *text);
/* qf_put_version - the 'V' record this code writes */
int qf_put_version(struct stream *s);
/* qf_put_time - a 'T' record "SECONDS.UUUUUU" */
int qf_put_time(struct stream *s, int64_t sec, long usec);
/* qf_put_attr - an 'A' record "name=value"; name is [a-z0-9_]{1,64} */
int qf_put_attr(struct stream *s, const char *name, const char *value);
/* qf_put_line - one content line: C records of at most max bytes, then
 * an L record with the rest (max <= QF_RECORD_MAX) */
int qf_put_line(struct stream *s, const void *data, size_t len, size_t max);

/* qf_attr_split - split 'A' data at the first '='; false unless the
 * name part is [a-z0-9_]{1,64}. *name_len and *value point into data. */
bool qf_attr_split(const char *data, size_t len, size_t *name_len, const char **value);

/* qf_scan (queue_file_scan.c) - read a whole file from r, enforcing the
 * grammar (record_grammar.h, RECORD_PROFILE_QUEUE_FILE). visit (may
 * be NULL) sees every record: returning 0 goes on, anything else stops
 * the scan and becomes its result (use positive values). Returns 0 for
 * a complete, well-formed file; -1 with *error_r otherwise. */
typedef int (*qf_visit_fn)(int type, const struct str *data, off_t offset, void *ctx);
int qf_scan(struct qf_reader *r, size_t max, qf_visit_fn visit, void *ctx, const char **error_r);
/* qf_scan_mem - qf_scan over the len bytes of a whole file at buf (its
 * offset 0): the same checks, records, offsets and error texts, without
 * a stream call per record. */
int qf_scan_mem(const void *buf, size_t len, size_t max, qf_visit_fn visit, void *ctx,
		const char **error_r);

/* qf_mark_done - turn the 'R' record at offset into 'D' (one pwrite),
 * then fdatasync; already 'D' is fine. -1 if the byte there is neither
 * or on an I/O error. qf_mark_done_nosync leaves the sync to the caller
 * (to mark several recipients with one fdatasync). */
int qf_mark_done(int fd, off_t offset, const char **error_r);
int qf_mark_done_nosync(int fd, off_t offset, const char **error_r);

/* qf_type_name - "recipient" for 'R' etc.; "unknown" otherwise */
const char *qf_type_name(int type);
/* qf_type_show - a type byte for an error text: 'R', or \xNN if it is
 * not printable; in buf (8 bytes are enough) */
const char *qf_type_show(char *buf, size_t size, int type);

#define QF_DUMP_OFFSETS	(1 << 0)	/* prefix each line with the offset */
/* qf_dump - print every record of the file read from r to out, one line
 * each: [offset] name: data, with non-printable bytes as \xNN. Returns 0
 * for a complete file; -1 with *error_r (after printing the records
 * that came before the problem). */
int qf_dump(struct qf_reader *r, struct stream *out, int flags, const char **error_r);

#endif
