/* smtp_data.h - the SMTP message content parser (smtp_data.c), shared
 * by smtpd and sendmail -bs */
#ifndef POSTHORN_SMTP_DATA_H
#define POSTHORN_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"

#define SMTP_DATA_DOT		(1 << 0)	/* DATA: dot-unstuffing, end of data */
#define SMTP_DATA_BINARY	(1 << 1)	/* BDAT BODY=BINARYMIME: bare CR/LF are no error */
#define SMTP_DATA_REJECT_BARE	(1 << 2)	/* bare CR/LF fail the message */

struct smtp_data {
    /* set by smtp_data_init */
    bool dot;				/* DATA: dot-unstuffing, end of data */
    bool binary;			/* BDAT BODY=BINARYMIME: CR/LF are data */
    bool reject_bare;			/* bare CR/LF is an error, not a line end */
    size_t piece_max;			/* longest record (line_length_limit) */
    uint64_t size_limit;		/* 0: none */
    int (*emit)(void *ctx, int type, const char *data, size_t len);
    void *ctx;
    /* state */
    struct str *line;			/* the current line (piece) */
    bool cr_pending;			/* a CR whose next byte is unknown */
    bool at_bol;			/* nothing of the line seen yet */
    bool prev_crlf;			/* the previous line ended in CRLF */
    bool dot_seen;			/* the line started with "." (removed) */
    bool in_cont;			/* C records went out for this line */
    /* results */
    bool done;				/* end of data seen (DATA) */
    bool too_big;			/* size_limit passed: nothing emitted since */
    bool bare_lf, bare_cr;		/* seen (counted even when normalized) */
    bool stray_dot;			/* a "." line that did not end the data */
    bool write_error;			/* emit failed: nothing emitted since */
    uint64_t size;			/* content bytes, CRLF counted as 2 */
    uint64_t lines;
};

/* smtp_data_init - set up; emit gets each record (QF_REC_LINE or
 * QF_REC_CONT), a negative return is a write error (sticky) */
void smtp_data_init(struct smtp_data *c, int flags, size_t piece_max, uint64_t size_limit,
		    int (*emit)(void *ctx, int type, const char *data, size_t len), void *ctx);
/* smtp_data_feed - parse data; returns the bytes consumed (all of them,
 * unless the end of data came first) */
size_t smtp_data_feed(struct smtp_data *c, const char *data, size_t len);
/* smtp_data_finish - end of input without an end-of-data line (BDAT
 * LAST): emit what is pending */
void smtp_data_finish(struct smtp_data *c);
/* smtp_data_failed - true if the message cannot be queued */
bool smtp_data_failed(const struct smtp_data *c);
void smtp_data_fini(struct smtp_data *c);

/* smtp_data_bare_policy - smtpd_forbid_bare_newline's value: 1 reject,
 * 0 normalize (yes and no are aliases), -1 invalid */
int smtp_data_bare_policy(const char *value);

#endif
