/* smtp_params.h - ESMTP parameters of MAIL FROM and RCPT TO.
 *
 * After the path (address_parse() leaves addr->rest pointing there) come
 * parameters separated by spaces: keyword[=value]. Keywords are case-
 * insensitive (RFC 5321 4.1.2: esmtp-keyword, esmtp-value). Supported:
 *
 *   MAIL  SIZE=n                  RFC 1870; 1..20 digits, saturates at
 *                                 UINT64_MAX (the caller compares with
 *                                 its limit and replies 552 5.3.4)
 *         BODY=7BIT|8BITMIME|BINARYMIME   RFC 6152, RFC 3030
 *         SMTPUTF8                RFC 6531; no value
 *         RET=FULL|HDRS           RFC 3461
 *         ENVID=xtext             RFC 3461; at most 100 octets decoded,
 *                                 printable ASCII
 *         AUTH=xtext|<>           RFC 4954; at most 500 octets decoded
 *   RCPT  NOTIFY=NEVER | comma list of SUCCESS, FAILURE, DELAY
 *         ORCPT=addr-type;value   RFC 3461 (rfc822: xtext) and RFC 6533
 *                                 (utf-8: utf-8-addr-xtext, or unitext
 *                                 when the transaction is SMTPUTF8)
 *
 * A keyword is accepted only if the caller says the extension that
 * defines it was advertised (mask of SMTP_EXT_*). Duplicates, unknown
 * keywords and bad values are errors; the first error ends parsing.
 * smtp_param_error_reply() maps each error to the reply triple from one
 * table: 555 5.5.4 for an unknown or not advertised keyword, 501 5.5.4
 * for a malformed parameter or value.
 *
 * DIAGNOSTICS
 *   Nothing logged. On error, p->bad/p->bad_len point at the offending
 *   parameter in the input (for a log line), and everything else in *p
 *   is released. Release a parsed result with the _fini function. */
#ifndef POSTHORN_SMTP_PARAMS_H
#define POSTHORN_SMTP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* mail */
#include "address.h"			/* struct mail_reply */

/* Extensions the server advertised (the caller's EHLO reply). */
#define SMTP_EXT_SIZE		(1u << 0)
#define SMTP_EXT_8BITMIME	(1u << 1)
#define SMTP_EXT_BINARYMIME	(1u << 2)	/* only with CHUNKING */
#define SMTP_EXT_SMTPUTF8	(1u << 3)
#define SMTP_EXT_DSN		(1u << 4)
#define SMTP_EXT_AUTH		(1u << 5)

enum smtp_param_error {
    SMTP_PARAM_OK = 0,
    SMTP_PARAM_ERR_SYNTAX,		/* not keyword[=value] */
    SMTP_PARAM_ERR_UNKNOWN,		/* keyword not known for this command */
    SMTP_PARAM_ERR_NOT_ADVERTISED,	/* its extension is not enabled */
    SMTP_PARAM_ERR_DUPLICATE,
    SMTP_PARAM_ERR_VALUE_MISSING,	/* "SIZE" or "SIZE=" */
    SMTP_PARAM_ERR_VALUE_UNEXPECTED,	/* "SMTPUTF8=yes" */
    SMTP_PARAM_ERR_SIZE,
    SMTP_PARAM_ERR_BODY,
    SMTP_PARAM_ERR_RET,
    SMTP_PARAM_ERR_ENVID,
    SMTP_PARAM_ERR_AUTH,
    SMTP_PARAM_ERR_NOTIFY,
    SMTP_PARAM_ERR_ORCPT,
    SMTP_PARAM_ERR_COUNT
};

enum smtp_body {
    SMTP_BODY_NONE = 0,			/* not given */
    SMTP_BODY_7BIT,
    SMTP_BODY_8BITMIME,
    SMTP_BODY_BINARYMIME,
};

enum smtp_ret {
    SMTP_RET_NONE = 0,
    SMTP_RET_FULL,
    SMTP_RET_HDRS,
};

#define SMTP_NOTIFY_NEVER	(1u << 0)
#define SMTP_NOTIFY_SUCCESS	(1u << 1)
#define SMTP_NOTIFY_FAILURE	(1u << 2)
#define SMTP_NOTIFY_DELAY	(1u << 3)

#define SMTP_ENVID_MAX		100	/* decoded octets, RFC 3461 4.4 */
#define SMTP_ORCPT_MAX		500	/* decoded octets, RFC 3461 4.2 */
#define SMTP_AUTH_MAX		500	/* decoded octets */

struct smtp_mail_params {
    bool has_size;
    uint64_t size;			/* UINT64_MAX if it overflowed */
    enum smtp_body body;
    bool smtputf8;
    enum smtp_ret ret;
    char *envid;			/* decoded; NULL if not given */
    bool has_auth;
    char *auth;				/* decoded mailbox; NULL for AUTH=<> or none */
    const char *bad;			/* on error: the parameter at fault */
    size_t bad_len;
};

struct smtp_rcpt_params {
    unsigned notify;			/* SMTP_NOTIFY_*; 0 if not given */
    char *orcpt_type;			/* "rfc822" or "utf-8"; NULL if not given */
    char *orcpt;			/* decoded address (UTF-8 for utf-8) */
    char *orcpt_raw;			/* the value as sent, for relaying */
    const char *bad;
    size_t bad_len;
};

/* smtp_mail_params_parse - parse text[0..len) (the MAIL parameters) */
enum smtp_param_error smtp_mail_params_parse(const char *text, size_t len, unsigned ext,
					     struct smtp_mail_params *p);
void smtp_mail_params_fini(struct smtp_mail_params *p);

/* smtp_rcpt_params_parse - parse RCPT parameters; smtputf8: the MAIL of
 * this transaction had SMTPUTF8 (allows utf-8-addr-unitext in ORCPT) */
enum smtp_param_error smtp_rcpt_params_parse(const char *text, size_t len, unsigned ext,
					     bool smtputf8, struct smtp_rcpt_params *p);
void smtp_rcpt_params_fini(struct smtp_rcpt_params *p);

/* smtp_param_error_reply - the reply triple for err */
struct mail_reply smtp_param_error_reply(enum smtp_param_error err);
/* smtp_param_error_str - short internal name */
const char *smtp_param_error_str(enum smtp_param_error err);

#endif
