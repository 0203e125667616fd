/* sc_content.h - the message content as smtp-client sends it: read from
 * the queue file's L/C records, always canonical on the wire (CR LF line
 * ends, no bare CR or LF, lines within smtp_line_length_limit, dot-
 * stuffed for DATA), and converted for a peer that lacks 8BITMIME or
 * BINARYMIME (RFC 6152, RFC 3030) when the MIME structure allows it.
 *
 * Two passes over the content, both starting at the M record:
 *   sc_content_scan   what the content needs (8-bit bytes in the header
 *                     or body, NUL or bare CR, over-long lines, MIME)
 *   sc_content_write  the bytes to send, through a sink (the session
 *                     writes them to the socket as DATA, or buffers them
 *                     into BDAT chunks); the final "." of DATA is the
 *                     session's
 *
 * Policy (docs/smtp-client.md, "Content"):
 *   - header lines longer than the limit are folded at white space (or,
 *     without any, broken with CR LF SP at the limit);
 *   - a body part with lines longer than the limit, or (with the flags
 *     below) with 8-bit or binary bytes, is re-encoded quoted-printable
 *     and its Content-Transfer-Encoding header rewritten; a message
 *     without MIME-Version gets MIME headers for that (text/plain,
 *     charset unknown-8bit when it has 8-bit bytes);
 *   - what cannot be converted (8-bit bytes in a header, a part already
 *     encoded base64 or quoted-printable that still has 8-bit bytes, a
 *     MIME structure nested deeper than SC_CONTENT_MIME_DEPTH) gives
 *     SC_CONTENT_CANNOT_CONVERT: the session bounces with 5.6.3;
 *   - long lines in a base64 part are broken at the limit (decoders
 *     ignore line breaks there), in a quoted-printable part re-broken
 *     with soft line breaks;
 *   - whatever the MIME layer does, the bytes given to the sink have LF
 *     only in CR LF, no line over the limit, a "." doubled at every line
 *     start with SC_OUT_DOT_STUFF, and no NUL or CR but in CR LF with
 *     SC_OUT_ENCODE_BINARY (which SC_OUT_DOT_STUFF implies: DATA never
 *     carries a bare CR). A bare CR goes out only for BDAT to a peer
 *     with BINARYMIME, where it is data.
 */
#ifndef POSTHORN_SC_CONTENT_H
#define POSTHORN_SC_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#define SC_CONTENT_MIME_DEPTH	20	/* nested multiparts/messages */

struct sc_content_info {
    bool header_8bit;		/* a byte >= 0x80 in the top-level header */
    bool body_8bit;		/* a byte >= 0x80 after the header */
    bool binary;		/* a NUL or a bare CR anywhere in the content */
    bool long_lines;		/* a line longer than the limit given to scan */
    bool mime;			/* the header has MIME-Version */
    long lines;			/* content lines */
    long size;			/* bytes as sent unconverted: every line plus
				 * CR LF (for SIZE=; stuffing not counted) */
};

/* sc_content_scan - read the content from the M record at data_offset
 * (the queue file descriptor is positioned by this call) to the X
 * record; line_limit is smtp_line_length_limit. 0, or -1 with *error_r
 * (a read error or a malformed file: the session defers) */
int sc_content_scan(int fd, long data_offset, long line_limit, struct sc_content_info *info,
		    const char **error_r);

/* What to do on the way out. */
#define SC_OUT_DOT_STUFF	(1U << 0)	/* DATA: "." doubled at a line start */
#define SC_OUT_ENCODE_8BIT	(1U << 1)	/* peer without 8BITMIME: parts with
						 * 8-bit bytes quoted-printable */
#define SC_OUT_ENCODE_BINARY	(1U << 2)	/* no BINARYMIME: parts with NUL or
						 * bare CR quoted-printable */

/* Where the bytes go: write returns 0, or -1 with *error_r of its own
 * (the connection broke or timed out). Called with pieces of any size. */
struct sc_sink {
    int (*write)(void *ctx, const char *data, size_t len, const char **error_r);
    void *ctx;
};

enum sc_content_status {
    SC_CONTENT_OK = 0,
    SC_CONTENT_READ_ERROR,	/* the queue file: defer (4.3.0) */
    SC_CONTENT_SINK_ERROR,	/* the sink failed: the session is broken */
    SC_CONTENT_CANNOT_CONVERT,	/* bounce (5.6.3), *error_r says why */
};

/* sc_content_write - send the content from data_offset to the X record
 * through sink, every line ending in CR LF (the last one too), with the
 * SC_OUT_* flags; line_limit is clamped to 78..998. *error_r explains
 * anything but SC_CONTENT_OK (valid until the next call). The content is
 * read twice: a first pass decides every conversion, so
 * SC_CONTENT_CANNOT_CONVERT (and a read error found in that pass) comes
 * before the first byte reaches the sink. A sink error, or a read error
 * in the second pass (the file changed under us), can come after some
 * bytes went out: the session then ends the transaction without
 * completing it (RSET or a dropped connection, never the final dot). */
enum sc_content_status sc_content_write(int fd, long data_offset, long line_limit,
					unsigned flags, const struct sc_sink *sink,
					const char **error_r);

#endif
