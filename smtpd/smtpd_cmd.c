/* smtpd_cmd.c - the SMTP command table and the handlers of the session
 * commands (EHLO, HELO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, HELP; DATA
 * and BDAT live in smtpd_data.c, the end of a transaction in
 * smtpd_message.c).
 *
 * Each row has flags: whether the command is allowed before STARTTLS
 * when smtpd_tls_security_level = encrypt (smtpd_proto.c checks), or
 * before AUTH (the restrictions of smtpd_check.c decide instead),
 * whether it ends a pipelining group (RFC 2920: the server flushes its
 * replies after it), whether it needs HELO/EHLO first, whether it may be
 * longer than 512 octets (MAIL and RCPT carry ESMTP parameters), and
 * whether it is recognised but not implemented (502) or not SMTP at all
 * (an HTTP request: the session ends). */

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "address.h"
#include "config.h"
#include "queue_space.h"
#include "smtp_params.h"

/* smtpd */
#include "smtpd.h"

static void cmd_ehlo(struct smtpd_state *st, const char *args, size_t len);
static void cmd_helo(struct smtpd_state *st, const char *args, size_t len);
static void cmd_mail(struct smtpd_state *st, const char *args, size_t len);
static void cmd_rcpt(struct smtpd_state *st, const char *args, size_t len);
static void cmd_rset(struct smtpd_state *st, const char *args, size_t len);
static void cmd_noop(struct smtpd_state *st, const char *args, size_t len);
static void cmd_quit(struct smtpd_state *st, const char *args, size_t len);
static void cmd_vrfy(struct smtpd_state *st, const char *args, size_t len);
static void cmd_help(struct smtpd_state *st, const char *args, size_t len);

#define ANY	(SMTPD_CMD_PRE_TLS | SMTPD_CMD_PRE_AUTH)

static const struct smtpd_cmd smtpd_cmds[] = {
    {"EHLO", cmd_ehlo, ANY | SMTPD_CMD_GROUP_END},
    {"HELO", cmd_helo, ANY | SMTPD_CMD_GROUP_END},
    {"MAIL", cmd_mail, SMTPD_CMD_NEED_HELO | SMTPD_CMD_LONG},
    {"RCPT", cmd_rcpt, SMTPD_CMD_LONG},
    {"DATA", smtpd_cmd_data, SMTPD_CMD_GROUP_END},
    {"BDAT", smtpd_cmd_bdat, 0},
    {"RSET", cmd_rset, ANY},
    {"NOOP", cmd_noop, ANY | SMTPD_CMD_GROUP_END},
    {"QUIT", cmd_quit, ANY | SMTPD_CMD_GROUP_END},
    {"VRFY", cmd_vrfy, SMTPD_CMD_NEED_HELO | SMTPD_CMD_GROUP_END},
    {"HELP", cmd_help, ANY},
    {"STARTTLS", smtpd_cmd_starttls, ANY | SMTPD_CMD_GROUP_END},
    {"AUTH", smtpd_cmd_auth, SMTPD_CMD_PRE_AUTH | SMTPD_CMD_GROUP_END | SMTPD_CMD_LONG},
    /* recognised, not implemented here */
    {"EXPN", NULL, SMTPD_CMD_UNIMPL | SMTPD_CMD_GROUP_END},
    {"ETRN", NULL, SMTPD_CMD_UNIMPL | SMTPD_CMD_NEED_HELO},
    {"TURN", NULL, SMTPD_CMD_UNIMPL | SMTPD_CMD_GROUP_END},
    {"ATRN", NULL, SMTPD_CMD_UNIMPL | SMTPD_CMD_GROUP_END},
    /* not SMTP: a web client or proxy probe talks to the wrong port */
    {"CONNECT", NULL, ANY | SMTPD_CMD_FORBIDDEN},
    {"GET", NULL, ANY | SMTPD_CMD_FORBIDDEN},
    {"POST", NULL, ANY | SMTPD_CMD_FORBIDDEN},
    {"HEAD", NULL, ANY | SMTPD_CMD_FORBIDDEN},
    {"PUT", NULL, ANY | SMTPD_CMD_FORBIDDEN},
};

/* smtpd_cmd_table - the rows */
const struct smtpd_cmd *smtpd_cmd_table(size_t *count)
{
    *count = sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]);
    return smtpd_cmds;
}

/* smtpd_cmd_find - case-insensitive lookup */
const struct smtpd_cmd *smtpd_cmd_find(const char *verb, size_t len)
{
    for (size_t i = 0; i < sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]); i++) {
	const char *name = smtpd_cmds[i].name;

	if (strlen(name) == len && strncasecmp(name, verb, len) == 0)
	    return &smtpd_cmds[i];
    }
    return NULL;
}

/* smtpd_cmd_split - verb and arguments of a command line */
bool smtpd_cmd_split(const char *line, size_t len, size_t *verb_len,
		     const char **args, size_t *args_len)
{
    const char *sp;

    if (len == 0 || line[0] == ' ')
	return false;
    sp = memchr(line, ' ', len);
    if (sp == NULL) {
	*verb_len = len;
	*args = line + len;
	*args_len = 0;
	return true;
    }
    *verb_len = (size_t) (sp - line);
    *args = sp + 1;
    *args_len = len - *verb_len - 1;
    while (*args_len > 0 && (*args)[*args_len - 1] == ' ')
	(*args_len)--;
    return true;
}

/* smtpd_cmd_prefix - "FROM:"/"TO:" at the start of the arguments */
const char *smtpd_cmd_prefix(const char *args, size_t len, const char *word, size_t *rest_len)
{
    size_t wlen = strlen(word);

    if (len < wlen || strncasecmp(args, word, wlen) != 0)
	return NULL;
    *rest_len = len - wlen;
    return args + wlen;
}

/* smtpd_parse_vrfy_reply - "NNN [x.y.z] text" with a sensible code */
bool smtpd_parse_vrfy_reply(const char *text, struct smtpd_reply_buf *r, const char **error_r)
{
    const char *p = text, *enh = NULL;
    size_t enh_len = 0;
    int code;

    if (!isdigit((unsigned char) p[0]) || !isdigit((unsigned char) p[1])
	|| !isdigit((unsigned char) p[2]) || (p[3] != ' ' && p[3] != 0)) {
	*error_r = "must start with a three-digit reply code";
	return false;
    }
    code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (code != 250 && code != 251 && code != 252 && (code < 500 || code > 559)) {
	*error_r = "reply code must be 250, 251, 252 or 5xx";
	return false;
    }
    p += 3;
    while (*p == ' ')
	p++;
    if (isdigit((unsigned char) p[0]) && p[1] == '.') {
	enh = p;
	enh_len = strcspn(p, " ");
	if (enh_len >= sizeof(r->enhanced) || enh[0] != p[0] || enh[0] != text[0]) {
	    *error_r = "enhanced status code must match the reply class";
	    return false;
	}
	p += enh_len;
	while (*p == ' ')
	    p++;
    }
    for (const char *q = p; *q; q++)
	if ((unsigned char) *q < 0x20 || (unsigned char) *q == 0x7f) {
	    *error_r = "control character in text";
	    return false;
	}
    r->code = code;
    if (enh) {
	memcpy(r->enhanced, enh, enh_len);
	r->enhanced[enh_len] = 0;
    } else {
	r->enhanced[0] = 0;
    }
    if (!str_try_copy_out(r->text, sizeof(r->text), *p ? p : "Ok")) {
	*error_r = "text longer than 511 bytes";
	return false;
    }
    return true;
}

/* smtpd_ehlo_lines - what EHLO advertises */
size_t smtpd_ehlo_lines(const struct smtpd_state *st, char lines[][64], size_t max, unsigned *ext_r)
{
    size_t n = 0;
    unsigned ext = 0;

#define ADD(text) do { if (n < max) str_copy_out_or_panic(lines[n++], 64, (text)); } while (0)
    /* at most 63 bytes of the host name: a longer one is cut, by design */
    if (n < max && !str_try_copy_out(lines[n++], 64, var_myhostname)) {
	/* cut: the greeting names the host, nothing parses it */
    }
    ADD("PIPELINING");
    if (var_message_size_limit > 0) {
	if (n < max)
	    fmt_buf_or_panic(lines[n++], 64, "SIZE %ld", var_message_size_limit);
    } else {
	ADD("SIZE");
    }
    if (!var_disable_vrfy_command)
	ADD("VRFY");
    ADD("ENHANCEDSTATUSCODES");
    ADD("8BITMIME");
    ADD("BINARYMIME");
    ADD("DSN");
    ADD("SMTPUTF8");
    ADD("CHUNKING");
    if (smtpd_tls_offered(st))
	ADD("STARTTLS");
    if (smtpd_auth_offered(st) && n < max) {
	fmt_buf_or_panic(lines[n++], 64, "AUTH %s", smtpd_auth_mechanisms());
	ext |= SMTP_EXT_AUTH;
    }
#undef ADD
    *ext_r = ext | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME | SMTP_EXT_DSN
	| SMTP_EXT_SMTPUTF8;
    return n;
}

/* reply_mail - send a lib/mail reply triple */
static void reply_mail(struct smtpd_state *st, struct mail_reply r)
{
    smtpd_reply(st, r.code, r.enhanced, "%s", r.text);
}

/* helo_common - EHLO and HELO */
static bool helo_common(struct smtpd_state *st, const char *args, size_t len, bool esmtp)
{
    if (len == 0) {
	smtpd_reply_id(st, esmtp ? SR_SYNTAX_EHLO : SR_SYNTAX_HELO);
	return false;
    }
    if (!valid_hostname(args, len, esmtp ? ADDR_PARSE_SMTPUTF8 : 0)) {
	struct str *shown = str_new(SMTPD_ARG_SHOW + 4);
	struct smtpd_reply_buf r;

	smtpd_printable(shown, args, len, SMTPD_ARG_SHOW, false);
	smtpd_reply_set(&r, 501, "5.5.2", "<%s>: Helo command rejected: Invalid name", str_cstr(shown));
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, esmtp ? "EHLO" : "HELO", &r, NULL);
	str_free(&shown);
	return false;
    }
    smtpd_reset(st);
    mem_free(&st->helo);
    st->helo = mem_strndup(args, len);
    st->esmtp = esmtp;
    return true;
}

/* cmd_ehlo - EHLO hostname */
static void cmd_ehlo(struct smtpd_state *st, const char *args, size_t len)
{
    char lines[16][64];
    const char *ptrs[16];
    unsigned ext;
    size_t n;

    if (!helo_common(st, args, len, true))
	return;
    n = smtpd_ehlo_lines(st, lines, 16, &ext);
    st->ext = ext;
    for (size_t i = 0; i < n; i++)
	ptrs[i] = lines[i];
    smtpd_reply_multi(st, 250, ptrs, n);
}

/* cmd_helo - HELO hostname */
static void cmd_helo(struct smtpd_state *st, const char *args, size_t len)
{
    if (!helo_common(st, args, len, false))
	return;
    st->ext = 0;
    smtpd_reply(st, 250, NULL, "%s", var_myhostname);
}

/* internal_form - "local@domain" (unquoted), "" for <>, "postmaster" */
static char *internal_form(const struct address *addr)
{
    size_t llen, dlen;
    char *out;

    if (addr->flags & ADDR_FLAG_NULL)
	return mem_strdup("");
    if (addr->flags & ADDR_FLAG_POSTMASTER)
	return mem_strdup("postmaster");
    if (*addr->domain == 0)
	return mem_strdup(addr->localpart);
    llen = strlen(addr->localpart);
    dlen = strlen(addr->domain);
    out = mem_alloc(llen + 1 + dlen + 1);
    memcpy(out, addr->localpart, llen);
    out[llen] = '@';
    memcpy(out + llen + 1, addr->domain, dlen + 1);
    return out;
}

/* cmd_mail - MAIL FROM:<path> [params] */
/* check_space - room in the queue's file system for a message of the
 * declared size (0: none)? Only statvfs of the working directory (the
 * queue directory, or its chroot): smtpd never touches a queue file.
 * A failing statvfs lets the mail through (cleanup still fails safely). */
static bool check_space(struct smtpd_state *st, uint64_t declared)
{
    uint64_t avail = 0;
    int rc = queue_space_check(".", declared, &avail);

    if (rc < 0) {
	msg_warn("statvfs %s: %s", var_queue_directory, strerror(errno));
	return true;
    }
    if (rc == 0)
	msg_warn("%s: not enough free space in the queue file system: %llu bytes free, "
		 "%llu needed (queue_minfree, SIZE=%llu)", st->namaddr,
		 (unsigned long long) avail, (unsigned long long) queue_space_need(declared),
		 (unsigned long long) declared);
    return rc > 0;
}

static void cmd_mail(struct smtpd_state *st, const char *args, size_t len)
{
    struct address addr;
    struct smtp_mail_params p;
    struct smtpd_reply_buf r;
    enum address_error aerr;
    enum smtp_param_error perr;
    const char *rest;
    size_t rest_len;

    memset(&addr, 0, sizeof(addr));
    memset(&p, 0, sizeof(p));
    if (st->in_mail) {
	smtpd_reply_id(st, SR_NESTED_MAIL);
	return;
    }
    if ((rest = smtpd_cmd_prefix(args, len, "FROM:", &rest_len)) == NULL) {
	smtpd_reply_id(st, SR_SYNTAX_MAIL);
	return;
    }
    if (!smtpd_limits_message(st))	/* smtpd_client_message_rate_limit */
	return;
    aerr = address_parse(rest, rest_len,
			 ADDR_PARSE_MAIL | ((st->ext & SMTP_EXT_SMTPUTF8) ? ADDR_PARSE_SMTPUTF8 : 0),
			 NULL, &addr);
    if (aerr != ADDR_OK) {
	reply_mail(st, address_error_reply(aerr, ADDR_ROLE_SENDER));
	goto out;
    }
    perr = smtp_mail_params_parse(addr.rest ? addr.rest : "", addr.rest ? addr.rest_len : 0,
				  st->ext, &p);
    if (perr != SMTP_PARAM_OK) {
	reply_mail(st, smtp_param_error_reply(perr));
	goto out;
    }
    if ((addr.flags & ADDR_FLAG_UTF8) && !p.smtputf8) {
	reply_mail(st, address_error_reply(ADDR_ERR_8BIT, ADDR_ROLE_SENDER));
	smtp_mail_params_fini(&p);
	goto out;
    }
    st->sender = internal_form(&addr);
    if (p.has_size && var_message_size_limit > 0 && p.size > (uint64_t) var_message_size_limit) {
	smtpd_reply_id_buf(SR_SIZE_AT_MAIL, &r);
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "MAIL", &r, NULL);
	smtp_mail_params_fini(&p);
	mem_free(&st->sender);
	goto out;
    }
    if (!check_space(st, p.has_size ? p.size : 0)) {
	smtpd_reply_id_buf(SR_NO_SPACE, &r);
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "MAIL", &r, NULL);
	smtp_mail_params_fini(&p);
	mem_free(&st->sender);
	goto out;
    }
    if (!smtpd_check_mail(st, &r)) {
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "MAIL", &r, NULL);
	smtp_mail_params_fini(&p);
	mem_free(&st->sender);
	goto out;
    }
    if (p.has_auth && msg_verbose)
	msg_info("%s: MAIL AUTH=<%s> (not passed on)", st->namaddr, p.auth ? p.auth : "");
    st->mail = p;
    st->in_mail = true;
    st->rcpt_attempts = 0;
    st->rcpt_overshoot = 0;
    smtpd_reply_id(st, SR_MAIL_OK);
  out:
    address_fini(&addr);
}

/* cmd_rcpt - RCPT TO:<path> [params] */
static void cmd_rcpt(struct smtpd_state *st, const char *args, size_t len)
{
    struct address addr;
    struct smtp_rcpt_params p;
    struct smtpd_reply_buf r;
    enum address_error aerr;
    enum smtp_param_error perr;
    const char *rest;
    size_t rest_len;
    char *internal = NULL;
    struct smtpd_rcpt *rc;

    memset(&addr, 0, sizeof(addr));
    memset(&p, 0, sizeof(p));
    if (!st->in_mail) {
	smtpd_reply_id(st, SR_NEED_MAIL);
	return;
    }
    if ((rest = smtpd_cmd_prefix(args, len, "TO:", &rest_len)) == NULL) {
	smtpd_reply_id(st, SR_SYNTAX_RCPT);
	return;
    }
    if (!smtpd_limits_recipient(st))	/* smtpd_client_recipient_rate_limit */
	return;
    st->rcpt_attempts++;
    if (st->rcpt_count >= (size_t) var_smtpd_recipient_limit) {
	/* RFC 5321 4.5.3.1.10: a client that pipelined more recipients than
	 * we take gets 452 and sends the rest later; only an overshoot
	 * beyond the allowance counts as errors */
	smtpd_reply_id_buf(SR_TOO_MANY_RCPTS, &r);
	if (++st->rcpt_overshoot <= var_smtpd_recipient_overshoot_limit)
	    smtpd_reply_buf_send_uncounted(st, &r);
	else
	    smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "RCPT", &r, NULL);
	return;
    }
    aerr = address_parse(rest, rest_len,
			 ADDR_PARSE_RCPT | (st->mail.smtputf8 ? ADDR_PARSE_SMTPUTF8 : 0), NULL, &addr);
    if (aerr != ADDR_OK) {
	reply_mail(st, address_error_reply(aerr, ADDR_ROLE_RECIPIENT));
	goto out;
    }
    perr = smtp_rcpt_params_parse(addr.rest ? addr.rest : "", addr.rest ? addr.rest_len : 0,
				  st->ext, st->mail.smtputf8, &p);
    if (perr != SMTP_PARAM_OK) {
	reply_mail(st, smtp_param_error_reply(perr));
	goto out;
    }
    internal = internal_form(&addr);
    if (!smtpd_check_rcpt(st, &addr, internal, &r)) {
	smtpd_reply_buf_send(st, &r);
	smtpd_log_reject(st, "RCPT", &r, internal);
	goto out;
    }
    if (st->rcpt_count == st->rcpt_cap) {
	st->rcpt_cap = st->rcpt_cap ? mem_size_mul(st->rcpt_cap, 2) : 8;
	st->rcpts = mem_realloc(st->rcpts, mem_size_mul(st->rcpt_cap, sizeof(*st->rcpts)));
    }
    rc = &st->rcpts[st->rcpt_count++];
    memset(rc, 0, sizeof(*rc));
    rc->address = internal;
    internal = NULL;
    rc->notify = p.notify;
    if (p.orcpt_type && p.orcpt && strlen(p.orcpt) > 0) {
	struct str *o = str_new(2 * SMTP_ORCPT_MAX + 64);

	if (str_try_printf(o, "%s;%s", p.orcpt_type, p.orcpt))
	    rc->orcpt = mem_strdup(str_cstr(o));
	str_free(&o);
    }
    smtpd_reply_id(st, SR_RCPT_OK);
  out:
    mem_free(&internal);
    smtp_rcpt_params_fini(&p);
    address_fini(&addr);
}

/* cmd_rset - RSET */
static void cmd_rset(struct smtpd_state *st, const char *args, size_t len)
{
    (void) args;
    if (len) {
	smtpd_reply_id(st, SR_SYNTAX_RSET);
	return;
    }
    smtpd_reset(st);
    smtpd_reply_id(st, SR_OK);
}

/* cmd_noop - NOOP [string] */
static void cmd_noop(struct smtpd_state *st, const char *args, size_t len)
{
    (void) args;
    (void) len;
    smtpd_reply_id(st, SR_OK);
}

/* cmd_quit - QUIT */
static void cmd_quit(struct smtpd_state *st, const char *args, size_t len)
{
    (void) args;
    if (len) {
	smtpd_reply_id(st, SR_SYNTAX_QUIT);
	return;
    }
    smtpd_reply_id(st, SR_BYE);
    st->hangup = true;
}

/* cmd_vrfy - VRFY string: the configured reply (no user harvesting) */
static void cmd_vrfy(struct smtpd_state *st, const char *args, size_t len)
{
    struct smtpd_reply_buf r;
    const char *err;

    (void) args;
    if (var_disable_vrfy_command) {
	smtpd_reply_id(st, SR_VRFY_DISABLED);
	return;
    }
    if (len == 0) {
	smtpd_reply_id(st, SR_SYNTAX_VRFY);
	return;
    }
    if (!smtpd_parse_vrfy_reply(var_smtpd_vrfy_reply, &r, &err))
	msg_panic("smtpd_vrfy_reply was checked at start-up: %s", err);
    smtpd_reply_buf_send(st, &r);
}

/* cmd_help - HELP [topic] */
static void cmd_help(struct smtpd_state *st, const char *args, size_t len)
{
    (void) args;
    (void) len;
    smtpd_reply_id(st, SR_HELP);
}
