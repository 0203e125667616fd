/* smtpd_check.c - the SMTP server's policy.
 *
 * Client: trusted if its address is in mynetworks (cidr_match.h), or if
 * the session authenticated (AUTH, a later issue: st->authenticated).
 *
 * Recipient (RCPT TO), in this order:
 *   1. relay control. The destination is the recipient's domain, but
 *      an address that routes elsewhere through one of our domains is
 *      judged by where it really points: a source route (@hop,...:) is
 *      judged by each hop, a percent hack (user%other@ours) by "other",
 *      a bang path (other!user@ours) by "other". A destination that is
 *      ours (local, virtual mailbox, virtual alias domain) or in
 *      relay_domains is open to anyone; anything else only to trusted
 *      clients: 554 5.7.1 "Relay access denied".
 *   2. existence, for our domains (resolve_recipient): unknown users get
 *      550 5.1.1 at RCPT time (never a bounce later); a failed lookup is
 *      451 4.3.0. The bare <postmaster> is always accepted (RFC 5321).
 *   3. quota, for recipients that the local delivery agent serves
 *      (transport "local"): a deliver "verify" request on private/local
 *      (mail_proto.h); "over_quota" is 552 5.2.2. An agent that cannot be
 *      reached, or that does not answer in time, is no reason to refuse
 *      mail: the recipient is accepted and delivery decides later.
 *      The request costs a connection and a process on the other side,
 *      so it is made only when a quota can apply: the agent measures
 *      virtual mailboxes only, when their virtual_mailbox_maps value
 *      has quota= or virtual_mailbox_limit is set (smtpd_quota_applies).
 *      Existence was already answered by step 2.
 * Lookup failures are always temporary (4xx), never permanent.
 *
 * At MAIL FROM (submission, see man smtpd.8): smtpd_client_restrictions
 * then smtpd_sender_restrictions, each a list of permit,
 * permit_mynetworks, permit_sasl_authenticated, reject and (senders)
 * reject_sender_login_mismatch, tried in order until one decides. A
 * reject is 530 5.7.0 "Authentication required" to a client that could
 * still AUTH (RFC 4954 6), else 554 5.7.1. Postfix evaluates these at
 * RCPT (smtpd_delay_reject); here they are answered at MAIL, which a
 * submission client understands as well and which costs no RCPTs. */

#include <limits.h>
#include <string.h>
#include <strings.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "cidr_match.h"
#include "config.h"
#include "deliver_client.h"
#include "mail_proto.h"
#include "maps.h"
#include "resolve.h"
#include "table.h"

/* smtpd */
#include "smtpd.h"

#define VERIFY_TIMEOUT_MS	5000	/* the whole verify conversation */

static struct cidr_list *check_mynetworks;
static struct cidr_list *check_bare_exclusions;
static enum { BARE_NORMALIZE, BARE_REJECT } check_bare_policy;

/* smtpd_check_init - parse the network lists and the policy parameters
 * (at start-up: a bad value is fatal, so it is found at once) */
void smtpd_check_init(void)
{
    const char *err;
    const char *v = var_smtpd_forbid_bare_newline;

    if ((check_mynetworks = cidr_list_parse(var_mynetworks, &err)) == NULL)
	msg_fatal("mynetworks: %s", err);
    if ((check_bare_exclusions = cidr_list_parse(var_smtpd_forbid_bare_newline_exclusions, &err)) == NULL)
	msg_fatal("smtpd_forbid_bare_newline_exclusions: %s", err);
    switch (smtp_data_bare_policy(v)) {
    case 1:
	check_bare_policy = BARE_REJECT;
	break;
    case 0:
	check_bare_policy = BARE_NORMALIZE;
	break;
    default:
	msg_fatal("smtpd_forbid_bare_newline: bad value \"%s\" (use normalize or reject)", v);
    }
}

/* smtpd_check_client - trust and bare-newline policy for this client */
void smtpd_check_client(struct smtpd_state *st)
{
    st->trusted = cidr_list_match(check_mynetworks, st->addr);
    st->reject_bare = check_bare_policy == BARE_REJECT
	&& !cidr_list_match(check_bare_exclusions, st->addr);
}

/* check_domain_class - resolve the class of domain; -1 on lookup error */
static int check_domain_class(const char *domain, enum resolve_class *class, const char **error_r)
{
    struct resolve_result res;
    char probe[1024 + 1];
    int rc;

    /* resolve_address wants an address; the local part does not matter */
    if (!smtpd_join(probe, sizeof(probe), "postmaster@", domain, (char *) NULL)) {
	*error_r = "domain too long";
	return -1;
    }
    rc = resolve_address(probe, &res, error_r);
    if (rc < 0)
	return -1;
    *class = res.class;
    return 0;
}

/* check_dest_open - 1 if mail for domain is accepted from anyone, 0 if
 * only from trusted clients, -1 on lookup error */
static int check_dest_open(const char *domain, const char **error_r)
{
    enum resolve_class class;

    if (check_domain_class(domain, &class, error_r) < 0)
	return -1;
    return class != RESOLVE_CLASS_DEFAULT;
}

/* check_routed_domain - the real destination of user%other@ours or
 * other!user@ours, into out; false if the local part does not route */
static bool check_routed_domain(const char *localpart, struct str *out)
{
    const char *pct = strrchr(localpart, '%');
    const char *bang = strchr(localpart, '!');

    str_reset(out);
    if (pct && pct[1])
	return str_try_set(out, pct + 1);
    if (bang && bang > localpart)
	return str_try_setn(out, localpart, (size_t) (bang - localpart));
    return false;
}

/* check_relay - relay control; true = allowed, else *r (or a 4xx on
 * lookup failure) */
static bool check_relay(struct smtpd_state *st, const struct address *addr, const char *shown,
			struct smtpd_reply_buf *r)
{
    struct str *other = str_new(1024);
    const char *err = "";
    bool authorized = st->trusted || st->authenticated;
    int open;
    bool ok = true;

    if (addr->flags & ADDR_FLAG_POSTMASTER)
	goto out;			/* bare postmaster: ours by definition */
    if ((open = check_dest_open(addr->domain_lc, &err)) < 0)
	goto tempfail;
    if (open && (addr->flags & ADDR_FLAG_SOURCE_ROUTE) && addr->route) {
	/* every hop of "@a,@b" must be a destination we accept */
	const char *p = addr->route;

	while (open == 1 && *p) {
	    const char *end;

	    if (*p == '@' || *p == ',') {
		p++;
		continue;
	    }
	    end = p + strcspn(p, ",");
	    if (!str_try_setn(other, p, (size_t) (end - p))) {
		open = 0;
		break;
	    }
	    str_lower(other);
	    if ((open = check_dest_open(str_cstr(other), &err)) < 0)
		goto tempfail;
	    p = end;
	}
    }
    if (open == 1 && !(addr->flags & ADDR_FLAG_QUOTED)
	&& (address_is_percent_hack(addr->localpart) || address_has_bang_path(addr->localpart))
	&& check_routed_domain(addr->localpart, other)) {
	str_lower(other);
	if ((open = check_dest_open(str_cstr(other), &err)) < 0)
	    goto tempfail;
    }
    if (open == 0 && !authorized) {
	smtpd_reply_set(r, 554, "5.7.1", "<%s>: Relay access denied", shown);
	ok = false;
    }
    goto out;
  tempfail:
    msg_warn("%s: relay check for <%s>: %s", st->namaddr, shown, err);
    smtpd_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure", shown);
    ok = false;
  out:
    str_free(&other);
    return ok;
}

/* check_verify - ask the delivery agent about quota: 1 over quota, 0
 * fine or unknown, -1 no answer (accept) */
static int check_verify(const char *transport, const char *rcpt, uint64_t size,
			struct str *dsn, struct str *reason, bool *unknown)
{
    char path[128];
    const char *err;
    struct stream *s;
    struct str *status = str_new(64);
    int fd, rc = -1;

    *unknown = false;
    if (!fmt_try_buf(path, sizeof(path), "%s/%s", DELIVER_SOCKET_DIR, transport))
	goto out_nostream;
    if ((fd = sock_connect_unix(path, VERIFY_TIMEOUT_MS, &err)) < 0) {
	if (msg_verbose)
	    msg_info("verify: %s: %s", path, err);
	goto out_nostream;
    }
    s = stream_open(fd);
    stream_set_timeout(s, VERIFY_TIMEOUT_MS);
    if (ipc_handshake_client(s, DELIVER_PROTO, DELIVER_VERSION, &err) < 0
	|| deliver_verify(s, rcpt, (long) (size > (uint64_t) LONG_MAX ? LONG_MAX : size),
			  status, dsn, reason, &err) < 0) {
	msg_warn("verify request to %s failed: %s", path, err);
	goto out;
    }
    if (strcmp(str_cstr(status), RCPT_STAT_OVER_QUOTA) == 0)
	rc = 1;
    else {
	rc = 0;
	*unknown = strcmp(str_cstr(status), RCPT_STAT_UNKNOWN) == 0;
    }
  out:
    stream_close(&s);
  out_nostream:
    str_free(&status);
    return rc;
}

/* smtpd_quota_value - true if a virtual_mailbox_maps value
 * ("path [word ...]") carries a quota= word after the path */
bool smtpd_quota_value(const char *value)
{
    const char *cp = value + strspn(value, " \t");

    cp += strcspn(cp, " \t");			/* the mailbox path */
    for (;;) {
	size_t len;

	cp += strspn(cp, " \t");
	if (*cp == 0)
	    return false;
	len = strcspn(cp, " \t");
	if (len > 6 && strncmp(cp, "quota=", 6) == 0)
	    return true;
	cp += len;
    }
}

/* smtpd_quota_applies - can the delivery agent's verify answer
 * "over_quota" for this recipient? (see the file comment) */
static bool smtpd_quota_applies(const struct resolve_result *res, const char *internal)
{
    struct str *key, *value;
    const char *err = "";
    int rc;

    if (res->class != RESOLVE_CLASS_VIRTUAL)
	return false;			/* the agent measures no other mailbox */
    if (var_virtual_mailbox_limit > 0)
	return true;
    key = str_new(2 * ADDR_PATH_MAX);
    value = str_new(TABLE_ENTRY_MAX);
    if (!str_try_set(key, internal)) {
	rc = 1;				/* let the agent judge */
    } else {
	str_lower(key);			/* as the agent looks it up */
	if ((rc = resolve_lookup_virtual_mailbox(str_cstr(key), value, &err)) > 0)
	    rc = smtpd_quota_value(str_cstr(value));
	else if (rc < 0)
	    rc = 1;			/* the agent may know better */
    }
    str_free(&key);
    str_free(&value);
    return rc != 0;
}

/* smtpd_check_rcpt - the recipient policy (see the file comment) */
bool smtpd_check_rcpt(struct smtpd_state *st, const struct address *addr, const char *internal,
		      struct smtpd_reply_buf *r)
{
    struct str *shown = str_new(2 * ADDR_PATH_MAX);
    struct resolve_result res;
    const char *why = "", *err = "";
    bool ok = false;

    if (!address_external(shown, addr))
	str_set_or_panic(shown, internal);	/* a parsed path: ADDR_PATH_MAX at most */
    if (!check_relay(st, addr, str_cstr(shown), r))
	goto out;
    if (addr->flags & ADDR_FLAG_POSTMASTER) {
	ok = true;
	goto out;
    }
    if (resolve_address(internal, &res, &err) < 0) {
	msg_warn("%s: resolve <%s>: %s", st->namaddr, str_cstr(shown), err);
	smtpd_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure", str_cstr(shown));
	goto out;
    }
    if (res.class == RESOLVE_CLASS_RELAY || res.class == RESOLVE_CLASS_DEFAULT) {
	ok = true;
	goto out;
    }
    switch (resolve_recipient(internal, &why)) {
    case RESOLVE_KNOWN:
	break;
    case RESOLVE_UNKNOWN:
	smtpd_reply_set(r, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown in %s",
			str_cstr(shown),
			res.class == RESOLVE_CLASS_LOCAL ? "local recipient table" :
			res.class == RESOLVE_CLASS_VIRTUAL ? "virtual mailbox table" :
			"virtual alias table");
	goto out;
    case RESOLVE_TEMPFAIL:
    default:
	msg_warn("%s: recipient <%s>: %s", st->namaddr, str_cstr(shown), why);
	smtpd_reply_set(r, 451, "4.3.0", "<%s>: Temporary lookup failure", str_cstr(shown));
	goto out;
    }
    if (var_smtpd_quota_check && strcmp(res.transport, "local") == 0
	&& smtpd_quota_applies(&res, internal)) {
	struct str *dsn = str_new(64), *reason = str_new(1024);
	bool unknown = false;
	int v = check_verify(res.transport, internal, st->mail.has_size ? st->mail.size : 0,
			     dsn, reason, &unknown);

	if (v == 1) {
	    smtpd_reply_set(r, 552, "5.2.2", "<%s>: Recipient address rejected: Mailbox full",
			    str_cstr(shown));
	} else if (v == 0 && unknown) {
	    smtpd_reply_set(r, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown",
			    str_cstr(shown));
	}
	str_free(&dsn);
	str_free(&reason);
	if (v == 1 || (v == 0 && unknown))
	    goto out;
    }
    ok = true;
  out:
    str_free(&shown);
    return ok;
}

/* ---------------------------------------------------------------- */
/* Restrictions at MAIL FROM (submission).                          */

enum restriction {
    R_PERMIT, R_REJECT, R_PERMIT_MYNETWORKS, R_PERMIT_SASL, R_SENDER_LOGIN_MISMATCH,
};

static const struct {
    const char *name;
    enum restriction r;
    bool sender_only;			/* needs the sender: smtpd_sender_restrictions */
} restriction_names[] = {
    {"permit", R_PERMIT, false},
    {"reject", R_REJECT, false},
    {"permit_mynetworks", R_PERMIT_MYNETWORKS, false},
    {"permit_sasl_authenticated", R_PERMIT_SASL, false},
    {"reject_sender_login_mismatch", R_SENDER_LOGIN_MISMATCH, true},
};

#define RESTRICTIONS_MAX	16

struct restriction_list {
    enum restriction items[RESTRICTIONS_MAX];
    size_t count;
};

static struct restriction_list check_client_restrictions, check_sender_restrictions;
static struct maps *check_sender_login_maps;

/* restriction_parse - a comma/space list into list; fatal when bad */
static void restriction_parse(const char *param, const char *value, bool sender,
			      struct restriction_list *list)
{
    const char *p = value;

    list->count = 0;
    while (*p) {
	size_t len, i;

	p += strspn(p, ", \t\r\n");
	if (*p == 0)
	    break;
	len = strcspn(p, ", \t\r\n");
	for (i = 0; i < sizeof(restriction_names) / sizeof(restriction_names[0]); i++)
	    if (strlen(restriction_names[i].name) == len
		&& strncasecmp(restriction_names[i].name, p, len) == 0)
		break;
	if (i == sizeof(restriction_names) / sizeof(restriction_names[0]))
	    msg_fatal("%s: unknown restriction \"%.*s\"", param, (int) (len > 100 ? 100 : len), p);
	if (restriction_names[i].sender_only && !sender)
	    msg_fatal("%s: %s belongs in smtpd_sender_restrictions", param, restriction_names[i].name);
	if (list->count == RESTRICTIONS_MAX)
	    msg_fatal("%s: more than %d restrictions", param, RESTRICTIONS_MAX);
	list->items[list->count++] = restriction_names[i].r;
	p += len;
    }
}

/* smtpd_check_init_restrictions - the MAIL FROM restrictions */
void smtpd_check_init_restrictions(void)
{
    restriction_parse("smtpd_client_restrictions", var_smtpd_client_restrictions, false,
		      &check_client_restrictions);
    restriction_parse("smtpd_sender_restrictions", var_smtpd_sender_restrictions, true,
		      &check_sender_restrictions);
    if (*var_smtpd_sender_login_maps)
	check_sender_login_maps = maps_from_param("smtpd_sender_login_maps",
						  var_smtpd_sender_login_maps, MAPS_REOPEN_CHANGED);
}

/* login_listed - login (any case) is a word of the comma/space list value */
static bool login_listed(const char *value, const char *login)
{
    size_t llen = strlen(login);

    for (const char *p = value; *p;) {
	size_t len;

	p += strspn(p, ", \t");
	len = strcspn(p, ", \t");
	if (len == llen && len > 0 && strncasecmp(p, login, len) == 0)
	    return true;
	p += len;
    }
    return false;
}

/* sender_owners - the owners of sender in smtpd_sender_login_maps
 * (address, then @domain): 1 found (*value), 0 not listed, -1 error */
static int sender_owners(const char *sender, struct str *value, const char **error_r)
{
    struct str *key;
    const char *at;
    int rc;

    if (check_sender_login_maps == NULL)
	return 0;
    key = str_new(2 * ADDR_PATH_MAX);
    if (!str_try_set(key, sender)) {
	str_free(&key);
	return 0;
    }
    str_lower(key);
    rc = maps_lookup(check_sender_login_maps, str_cstr(key), value, NULL, error_r);
    if (rc == 0 && (at = strrchr(sender, '@')) != NULL && str_try_set(key, at)) {
	str_lower(key);
	rc = maps_lookup(check_sender_login_maps, str_cstr(key), value, NULL, error_r);
    }
    str_free(&key);
    return rc;
}

/* smtpd_sender_login_ok - see smtpd.h: the login is among the sender's
 * owners; an address no table lists belongs to the login of its name */
int smtpd_sender_login_ok(const char *sender, const char *login, const char **error_r)
{
    struct str *value = str_new(TABLE_ENTRY_MAX);
    int rc = sender_owners(sender, value, error_r);

    if (rc > 0)
	rc = login_listed(str_cstr(value), login);
    else if (rc == 0)
	rc = strcasecmp(sender, login) == 0;
    str_free(&value);
    return rc;
}

/* check_sender_login - reject_sender_login_mismatch: an authenticated
 * client may send only as an address its login owns; a client that is
 * not authenticated may not use an address that has owners. The null
 * sender is never refused here (bounces). True = no objection. */
static bool check_sender_login(struct smtpd_state *st, struct smtpd_reply_buf *r)
{
    const char *err = "";
    int rc;

    if (st->sender == NULL || *st->sender == 0)
	return true;
    if (st->authenticated && st->sasl_username) {
	if ((rc = smtpd_sender_login_ok(st->sender, st->sasl_username, &err)) > 0)
	    return true;
	if (rc == 0)
	    smtpd_reply_set(r, 553, "5.7.1", "<%s>: Sender address rejected: not owned by user %s",
			    st->sender, st->sasl_username);
    } else {
	struct str *value = str_new(TABLE_ENTRY_MAX);

	rc = sender_owners(st->sender, value, &err);
	str_free(&value);
	if (rc == 0)
	    return true;
	if (rc > 0)
	    smtpd_reply_set(r, 553, "5.7.1", "<%s>: Sender address rejected: not logged in",
			    st->sender);
    }
    if (rc < 0) {
	msg_warn("%s: smtpd_sender_login_maps lookup of <%s>: %s", st->namaddr, st->sender, err);
	smtpd_reply_set(r, 451, "4.3.0", "<%s>: Sender address rejected: Temporary lookup failure",
			st->sender);
    }
    return false;
}

/* restriction_run - the first restriction that decides: 1 permit, 0
 * reject (*r), -1 none decided */
static int restriction_run(struct smtpd_state *st, const struct restriction_list *list,
			   bool sender, struct smtpd_reply_buf *r)
{
    for (size_t i = 0; i < list->count; i++) {
	switch (list->items[i]) {
	case R_PERMIT:
	    return 1;
	case R_PERMIT_MYNETWORKS:
	    if (st->trusted)
		return 1;
	    break;
	case R_PERMIT_SASL:
	    if (st->authenticated)
		return 1;
	    break;
	case R_SENDER_LOGIN_MISMATCH:
	    if (!check_sender_login(st, r))
		return 0;
	    break;
	case R_REJECT:
	    if (!st->authenticated && smtpd_auth_offered(st))
		smtpd_reply_set(r, 530, "5.7.0", "%s", "Authentication required");
	    else if (!st->authenticated && var_smtpd_sasl_auth_enable && !st->tls)
		smtpd_reply_set(r, 530, "5.7.0", "%s", "Must issue a STARTTLS command first");
	    else if (sender)
		smtpd_reply_set(r, 554, "5.7.1", "<%s>: Sender address rejected: Access denied",
				st->sender);
	    else
		smtpd_reply_set(r, 554, "5.7.1", "<%s>: Client host rejected: Access denied",
				st->namaddr);
	    return 0;
	}
    }
    return -1;
}

/* smtpd_check_mail - smtpd_client_restrictions, then
 * smtpd_sender_restrictions (see smtpd.h) */
bool smtpd_check_mail(struct smtpd_state *st, struct smtpd_reply_buf *r)
{
    if (restriction_run(st, &check_client_restrictions, false, r) == 0)
	return false;
    return restriction_run(st, &check_sender_restrictions, true, r) != 0;
}
