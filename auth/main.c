/* main.c - auth, the authentication service: the only process that
 * reads the auth table (password hashes, SCRAM secrets). Login processes
 * run SASL exchanges (PLAIN, LOGIN, SCRAM-SHA-256) through it over
 * private/auth; a successful login gets a one-time token that the
 * post-login daemon redeems for the user's mailbox. One event-driven
 * process (MULTI): failure answers wait on a timer, growing with the
 * failures of the client address and of the user name. See man/auth.8
 * and auth_proto.h. */

/* system */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "base64.h"
#include "event.h"
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "auth_proto.h"
#include "config.h"
#include "mail_proto.h"
#include "maps.h"
#include "passwd.h"
#include "server.h"
#include "table.h"
#include "users.h"

/* auth */
#include "auth_scram.h"
#include "auth_throttle.h"
#include "auth_token.h"

enum mech { MECH_NONE, MECH_PLAIN, MECH_LOGIN, MECH_SCRAM };
enum verdict { V_OK, V_FAIL, V_TEMP };

struct auth_conn {
    struct stream *stream;
    enum mech mech;
    int step;
    bool asked;			/* sent the empty challenge for no
				 * initial response */
    char service[8];
    char client_address[256];
    struct str *user;		/* LOGIN, SCRAM: the user name */
    struct scram_server *scram;
    bool scram_real;		/* the user has a usable SCRAM secret */
    struct users_entry entry;	/* SCRAM: the user's entry, in entry_buf */
    struct str *entry_buf;
    struct str *pending;	/* a delayed failure answer */
    event_timer_id timer;
};

static struct maps *auth_maps;
static struct str *auth_dummy_hash;
static struct throttle *auth_client_fails;
static struct throttle *auth_user_fails;
static unsigned char auth_fake_key[32];	/* fake SCRAM salts */
static uid_t auth_vmail_uid = (uid_t) -1;
static gid_t auth_vmail_gid = (gid_t) -1;

/* auth_reply - send a reply now; false on a write error */
static bool auth_reply(struct auth_conn *c, const struct auth_reply *r)
{
    struct str *out = str_new(IPC_MSG_MAX);
    bool ok;

    auth_reply_encode(out, r);
    ok = ipc_send_encoded(c->stream, out) == 0;
    str_free(&out);
    return ok;
}

/* auth_challenge - a continue reply with data (base64-encoded here) */
static bool auth_challenge(struct auth_conn *c, const void *data, size_t len)
{
    struct str *b64 = str_new(AUTH_CHALLENGE_MAX);
    bool ok = base64_encode(data, len, b64)
	&& auth_reply(c, &(struct auth_reply) {.status = AUTH_STAT_CONTINUE,
					       .challenge = str_cstr(b64)});

    str_free(&b64);
    return ok;
}

/* auth_reset - forget the exchange in progress */
static void auth_reset(struct auth_conn *c)
{
    c->mech = MECH_NONE;
    c->step = 0;
    c->asked = false;
    c->scram_real = false;
    str_reset(c->user);
    if (c->scram) {
	explicit_bzero(c->scram, sizeof(*c->scram));
	mem_free(&c->scram);
    }
}

/* auth_delayed_cb - the failure delay is over: answer */
static void auth_delayed_cb(void *ctx)
{
    struct auth_conn *c = ctx;

    c->timer = 0;
    if (ipc_send_encoded(c->stream, c->pending) < 0)
	msg_warn("auth reply: write error");	/* the skeleton sees the EOF */
    str_reset(c->pending);
}

/* auth_fail_counted - answer after the delay (status fail, or
 * tempfail); count the failure unless count is false */
static bool auth_fail_counted(struct auth_conn *c, const char *user, enum verdict v,
			      const char *why, bool count)
{
    time_t now = time(NULL);
    long nc = count ? throttle_fail(auth_client_fails, c->client_address, now)
	: throttle_count(auth_client_fails, c->client_address, now);
    long nu = !*user ? 0 : count ? throttle_fail(auth_user_fails, user, now)
	: throttle_count(auth_user_fails, user, now);
    long delay = throttle_delay_ms(nc > nu ? nc : nu, var_auth_failure_delay,
				   var_auth_failure_delay_max);
    struct auth_reply r = {.status = v == V_TEMP ? AUTH_STAT_TEMPFAIL : AUTH_STAT_FAIL,
			   .reason = v == V_TEMP ? "too many failed logins, try again later"
			   : AUTH_FAIL_TEXT};

    msg_info("%s login failed: user=<%.100s>, client=%s, mechanism=%s: %s (failures: client %ld, user %ld; delay %ldms)",
	     c->service, user, *c->client_address ? c->client_address : "unknown",
	     c->mech == MECH_PLAIN ? "PLAIN" : c->mech == MECH_LOGIN ? "LOGIN" : "SCRAM-SHA-256",
	     why, nc, nu, delay);
    auth_reset(c);
    auth_reply_encode(c->pending, &r);
    c->timer = event_timer_add((int) delay, auth_delayed_cb, c);
    return true;
}

/* auth_fail - count the failure, answer after the delay */
static bool auth_fail(struct auth_conn *c, const char *user, enum verdict v, const char *why)
{
    return auth_fail_counted(c, user, v, why, true);
}

/* auth_limited - the client address or the user name is over its limit */
static bool auth_limited(const struct auth_conn *c, const char *user)
{
    time_t now = time(NULL);

    return throttle_count(auth_client_fails, c->client_address, now) >= var_auth_client_failure_limit
	|| (*user && throttle_count(auth_user_fails, user, now) >= var_auth_user_failure_limit);
}

/* auth_lookup - the user's entry: 1 found (fields in buf), 0 not, -1 error */
static int auth_lookup(const char *user, struct str *buf, struct users_entry *e)
{
    const char *error;
    int found;

    if (auth_maps == NULL)
	return 0;
    if ((found = maps_lookup(auth_maps, user, buf, NULL, &error)) < 0) {
	msg_warn("%s", error);
	return -1;
    }
    if (found && users_parse_fields((char *) str_cstr(buf), e, &error) < 0) {
	msg_warn("auth_user_maps: entry of %s: %s", user, error);
	return -1;
    }
    return found;
}

/* auth_succeed - issue the token and answer ok */
static bool auth_succeed(struct auth_conn *c, const char *user, const struct users_entry *e)
{
    struct token_info info;
    char token[AUTH_TOKEN_LEN + 1];
    struct auth_reply r;

    memset(&info, 0, sizeof(info));
    str_copy_out_or_panic(info.user, sizeof(info.user), user);
    str_copy_out_or_panic(info.service, sizeof(info.service), c->service);
    if (e->mail_location[0] == '/') {
	if (!str_try_copy_out(info.mail_location, sizeof(info.mail_location), e->mail_location))
	    return auth_fail(c, user, V_TEMP, "mail_location too long");
    } else if (!fmt_try_buf(info.mail_location, sizeof(info.mail_location), "%s/%s",
			    var_virtual_mailbox_base, e->mail_location)) {
	return auth_fail(c, user, V_TEMP, "mail_location too long");
    }
    info.uid = e->uid >= 0 ? e->uid : (long) auth_vmail_uid;
    info.gid = e->gid >= 0 ? e->gid : (long) auth_vmail_gid;
    if (info.uid < 0 || info.gid < 0 || (long) auth_vmail_uid == 0)
	return auth_fail(c, user, V_TEMP, "no uid/gid for the mailbox (virtual_mailbox_owner unknown)");
    info.quota = e->quota >= 0 ? e->quota : var_virtual_mailbox_limit;
    if (!token_issue(&info, token_now_ms(), var_auth_token_lifetime, token))
	return auth_fail(c, user, V_TEMP, "getrandom failed");
    throttle_reset(auth_user_fails, user);
    msg_info("%s login: user=<%s>, client=%s", c->service, user,
	     *c->client_address ? c->client_address : "unknown");
    auth_reset(c);
    r = (struct auth_reply) {.status = AUTH_STAT_OK, .user = user, .token = token};
    return auth_reply(c, &r);
}

/* auth_verify - check a user name and password (one crypt whatever
 * happens, so an unknown user takes as long as a wrong password) */
static bool auth_verify(struct auth_conn *c, const char *login, const char *password)
{
    struct str *user = str_new(PROTO_ADDR_MAX), *buf = str_new(TABLE_ENTRY_MAX);
    struct users_entry e;
    int found = 0;
    bool ok, ret;
    const char *why;

    if (*login == 0 || !str_try_set(user, login))
	str_reset(user);
    str_lower(user);
    if (auth_limited(c, str_cstr(user))) {
	(void) passwd_hash_check(password, str_cstr(auth_dummy_hash));
	ret = auth_fail(c, str_cstr(user), V_TEMP, "over the failure limit");
    } else if (str_len(user) == 0 || (found = auth_lookup(str_cstr(user), buf, &e)) <= 0) {
	(void) passwd_hash_check(password, str_cstr(auth_dummy_hash));
	why = found < 0 ? "table lookup error" : "unknown user";
	ret = auth_fail(c, str_cstr(user), found < 0 ? V_TEMP : V_FAIL, why);
    } else if (e.locked || !passwd_hash_usable(e.password)) {
	(void) passwd_hash_check(password, str_cstr(auth_dummy_hash));
	ret = auth_fail(c, str_cstr(user), V_FAIL, e.locked ? "account locked or disabled"
			: "password hash of an unknown kind");
    } else {
	ok = passwd_hash_check(password, e.password);
	ret = ok ? auth_succeed(c, str_cstr(user), &e)
	    : auth_fail(c, str_cstr(user), V_FAIL, "wrong password");
    }
    str_free(&user);
    str_free(&buf);
    return ret;
}

/* auth_decode - base64 response into out; false if malformed */
static bool auth_decode(const char *b64, struct str *out)
{
    str_reset(out);
    return base64_decode(b64, strlen(b64), out) && !str_has_nul(out);
}

/* auth_plain - RFC 4616: [authzid] NUL authcid NUL passwd */
static bool auth_plain(struct auth_conn *c, const char *b64)
{
    struct str *msg = str_new(AUTH_RESPONSE_MAX);
    const char *p, *authzid, *authcid, *passwd, *end;
    bool ret;

    if (!base64_decode(b64, strlen(b64), msg) || str_len(msg) == 0) {
	ret = auth_fail(c, "", V_FAIL, "malformed PLAIN response");
    } else {
	p = str_cstr(msg);
	end = p + str_len(msg);
	authzid = p;
	authcid = memchr(p, 0, (size_t) (end - p));
	passwd = authcid ? memchr(authcid + 1, 0, (size_t) (end - authcid - 1)) : NULL;
	if (authcid == NULL || passwd == NULL || memchr(passwd + 1, 0, (size_t) (end - passwd - 1)))
	    ret = auth_fail(c, "", V_FAIL, "malformed PLAIN response");
	else if (*authzid && strcasecmp(authzid, authcid + 1) != 0)
	    ret = auth_fail(c, authcid + 1, V_FAIL, "authorization identity differs");
	else
	    ret = auth_verify(c, authcid + 1, passwd + 1);
    }
    explicit_bzero((char *) str_cstr(msg), str_len(msg));
    str_free(&msg);
    return ret;
}

/* auth_login - LOGIN: "Username:", "Password:" */
static bool auth_login(struct auth_conn *c, const char *b64)
{
    struct str *msg = str_new(AUTH_RESPONSE_MAX);
    bool ret;

    if (!auth_decode(b64, msg)) {
	ret = auth_fail(c, str_cstr(c->user), V_FAIL, "malformed LOGIN response");
    } else if (c->step == 0) {
	if (!str_try_set(c->user, str_cstr(msg)))
	    str_reset(c->user);
	c->step = 1;
	ret = auth_challenge(c, "Password:", 9);
    } else {
	struct str *user = str_new(PROTO_ADDR_MAX);

	str_set_or_panic(user, str_cstr(c->user));
	ret = auth_verify(c, str_cstr(user), str_cstr(msg));
	str_free(&user);
    }
    explicit_bzero((char *) str_cstr(msg), str_len(msg));
    str_free(&msg);
    return ret;
}

/* auth_scram_secret - the user's secret, or a fake one that no proof
 * matches (salt derived from the name, so it is stable) */
static void auth_scram_secret(struct auth_conn *c, const char *user, struct passwd_scram *s)
{
    const char *error;
    int found = auth_lookup(user, c->entry_buf, &c->entry);

    c->scram_real = found > 0 && !c->entry.locked && *c->entry.scram
	&& passwd_scram_parse(c->entry.scram, s, &error) == 0;
    if (!c->scram_real) {
	unsigned char mac[PASSWD_SHA256_LEN];

	passwd_hmac_sha256(auth_fake_key, sizeof(auth_fake_key), user, strlen(user), mac);
	memset(s, 0, sizeof(*s));
	s->iterations = var_auth_scram_iterations;
	memcpy(s->salt, mac, 16);
	s->salt_len = 16;
	passwd_hmac_sha256(auth_fake_key, sizeof(auth_fake_key), mac, sizeof(mac), s->stored_key);
	passwd_hmac_sha256(auth_fake_key, sizeof(auth_fake_key), s->stored_key,
			   sizeof(s->stored_key), s->server_key);
    }
}

/* auth_scram - SCRAM-SHA-256: client-first, client-final, "" */
static bool auth_scram(struct auth_conn *c, const char *b64)
{
    struct str *msg = str_new(AUTH_RESPONSE_MAX), *out = str_new(SCRAM_MSG_MAX * 4);
    bool ret;

    if (!auth_decode(b64, msg)) {
	ret = auth_fail(c, str_cstr(c->user), V_FAIL, "malformed SCRAM message");
    } else if (c->step == 0) {
	struct passwd_scram secret;
	unsigned char rnd[18];
	struct str *snonce = str_new(64);
	const char *error;

	c->scram = mem_zalloc(sizeof(*c->scram));
	if (scram_client_first(c->scram, str_cstr(msg), str_len(msg), c->user) < 0) {
	    ret = auth_fail(c, "", V_FAIL, "malformed SCRAM client-first message");
	} else if (passwd_crypto_load(&error) < 0) {
	    /* Nettle is loaded on the first SCRAM exchange, not at start */
	    msg_warn("%s", error);
	    ret = auth_fail(c, "", V_TEMP, "SCRAM-SHA-256 unavailable");
	} else if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
	    ret = auth_fail(c, "", V_TEMP, "getrandom failed");
	} else {
	    str_lower(c->user);
	    auth_scram_secret(c, str_cstr(c->user), &secret);
	    if (!base64_encode(rnd, sizeof(rnd), snonce))
		msg_panic("scram nonce");
	    scram_server_first(c->scram, &secret, str_cstr(snonce), out);
	    explicit_bzero(&secret, sizeof(secret));
	    c->step = 1;
	    ret = auth_challenge(c, str_cstr(out), str_len(out));
	}
	str_free(&snonce);
    } else if (c->step == 1) {
	struct str *user = str_new(PROTO_ADDR_MAX);

	str_set_or_panic(user, str_cstr(c->user));
	if (auth_limited(c, str_cstr(user)))
	    ret = auth_fail(c, str_cstr(user), V_TEMP, "over the failure limit");
	else if (!c->scram_real)
	    /* No SCRAM secret (unknown user, locked, or a crypt hash only):
	     * no SCRAM proof can succeed, so this is no guess to slow down.
	     * Counting it would punish every client that tries the
	     * strongest mechanism first and then falls back to PLAIN (mutt
	     * does). The answer and its delay are the usual ones. */
	    ret = auth_fail_counted(c, str_cstr(user), V_FAIL,
				    "unknown user, locked, or no SCRAM secret", false);
	else if (scram_client_final(c->scram, str_cstr(msg), str_len(msg), out) < 0)
	    ret = auth_fail(c, str_cstr(user), V_FAIL, "wrong password");
	else {
	    c->step = 2;
	    ret = auth_challenge(c, str_cstr(out), str_len(out));
	}
	str_free(&user);
    } else {
	struct str *user = str_new(PROTO_ADDR_MAX);
	struct users_entry e = c->entry;

	str_set_or_panic(user, str_cstr(c->user));
	if (str_len(msg) != 0)
	    ret = auth_fail(c, str_cstr(user), V_FAIL, "data after the SCRAM server-final message");
	else
	    ret = auth_succeed(c, str_cstr(user), &e);
	str_free(&user);
    }
    str_free(&msg);
    str_free(&out);
    return ret;
}

/* auth_step - one response of the exchange in progress */
static bool auth_step(struct auth_conn *c, const char *response)
{
    if (*response == 0 && c->step == 0) {
	if (c->asked)
	    return auth_fail(c, "", V_FAIL, "empty response");
	c->asked = true;
	if (c->mech == MECH_LOGIN)
	    return auth_challenge(c, "Username:", 9);
	return auth_challenge(c, "", 0);
    }
    switch (c->mech) {
    case MECH_PLAIN:
	return auth_plain(c, response);
    case MECH_LOGIN:
	return auth_login(c, response);
    case MECH_SCRAM:
	return auth_scram(c, response);
    default:
	return auth_reply(c, &(struct auth_reply) {.status = AUTH_STAT_FAIL,
						   .reason = AUTH_FAIL_TEXT});
    }
}

/* auth_start - request=auth */
static bool auth_start(struct auth_conn *c, const struct auth_request *req)
{
    auth_reset(c);
    str_copy_out_or_panic(c->service, sizeof(c->service), req->service);
    if (!str_try_copy_out(c->client_address, sizeof(c->client_address), req->client_address))
	c->client_address[0] = 0;
    if (strcasecmp(req->mechanism, AUTH_MECH_PLAIN) == 0)
	c->mech = MECH_PLAIN;
    else if (strcasecmp(req->mechanism, AUTH_MECH_LOGIN) == 0)
	c->mech = MECH_LOGIN;
    else if (strcasecmp(req->mechanism, AUTH_MECH_SCRAM_SHA_256) == 0)
	c->mech = MECH_SCRAM;
    else
	return auth_reply(c, &(struct auth_reply) {.status = AUTH_STAT_FAIL,
						   .reason = "unsupported mechanism"});
    return auth_step(c, req->response);
}

/* auth_redeem - request=redeem */
static bool auth_redeem_token(struct auth_conn *c, const struct auth_redeem *req)
{
    struct token_info info;
    struct auth_redeem_reply r = {.status = AUTH_STAT_FAIL, .reason = "invalid token"};
    struct str *out = str_new(IPC_MSG_MAX);
    bool ok;

    if (token_redeem(req->token, req->service, token_now_ms(), &info)) {
	r = (struct auth_redeem_reply) {AUTH_STAT_OK, info.user, info.mail_location, info.uid,
					info.gid, info.quota, NULL};
	if (msg_verbose)
	    msg_info("redeemed %s token of %s", req->service, info.user);
    } else {
	msg_info("%s: invalid, expired or replayed token", req->service);
    }
    auth_redeem_reply_encode(out, &r);
    ok = ipc_send_encoded(c->stream, out) == 0;
    str_free(&out);
    return ok;
}

/* auth_connect - greet a client */
static void *auth_connect(struct stream *client)
{
    struct auth_conn *c = mem_zalloc(sizeof(*c));

    c->stream = client;
    c->user = str_new(PROTO_ADDR_MAX);
    c->entry_buf = str_new(TABLE_ENTRY_MAX);
    c->pending = str_new(IPC_MSG_MAX);
    if (ipc_handshake_server(client, AUTH_PROTO, AUTH_VERSION) < 0)
	msg_warn("auth: handshake write error");
    return c;
}

/* auth_input - one request */
static bool auth_input(struct stream *client, void *ctx)
{
    struct auth_conn *c = ctx;
    struct ipc_list list;
    const char *err;
    bool ok = false;

    ipc_list_init(&list);
    if (ipc_recv_list(client, &list, &err) < 0) {
	if (stream_error(client) != STREAM_EOF)
	    msg_warn("auth request: %s", err);
    } else if (c->timer) {
	msg_warn("auth request before the answer to the previous one -- disconnecting");
    } else {
	int kind = auth_request_kind(&list, &err);

	if (kind >= 0)
	    err = NULL;				/* a decoder sets it on failure */
	switch (kind) {
	case AUTH_KIND_AUTH:{
		struct auth_request req;

		if (auth_request_decode(&list, &req, &err) == 0)
		    ok = auth_start(c, &req);
		break;
	    }
	case AUTH_KIND_CONTINUE:{
		const char *resp;

		if (auth_continue_decode(&list, &resp, &err) == 0)
		    ok = c->mech == MECH_NONE
			? auth_reply(c, &(struct auth_reply) {.status = AUTH_STAT_FAIL,
							      .reason = AUTH_FAIL_TEXT})
			: auth_step(c, resp);
		break;
	    }
	case AUTH_KIND_REDEEM:{
		struct auth_redeem req;

		if (auth_redeem_decode(&list, &req, &err) == 0)
		    ok = auth_redeem_token(c, &req);
		break;
	    }
	default:
	    break;
	}
	if (!ok && err)
	    msg_warn("%s", err);
    }
    for (size_t i = 0; i < list.count; i++)
	explicit_bzero(list.attrs[i].value, list.attrs[i].len);
    ipc_list_fini(&list);
    return ok;
}

/* auth_busy - the client waits for a delayed answer or is in the
 * middle of a SASL exchange: not closed when this process must exit */
static bool auth_busy(struct stream *client, void *ctx)
{
    struct auth_conn *c = ctx;

    (void) client;
    return c->timer != 0 || c->mech != MECH_NONE;
}

/* auth_disconnect - forget a client (and a pending delayed answer) */
static void auth_disconnect(struct stream *client, void *ctx)
{
    struct auth_conn *c = ctx;

    (void) client;
    if (c->timer)
	event_timer_cancel(c->timer);
    auth_reset(c);
    str_free(&c->user);
    str_free(&c->entry_buf);
    str_free(&c->pending);
    mem_free(&c);
}

/* auth_pre_init - open the auth table while still root; make the drop
 * go to auth_user instead of mail_owner */
static void auth_pre_init(int argc, char **argv)
{
    const char *error;
    unsigned char rnd[24];
    struct str *pw = str_new(64);

    (void) argc;
    (void) argv;
    if (*var_auth_user_maps)
	auth_maps = maps_from_param("auth_user_maps", var_auth_user_maps, 0);
    else
	msg_warn("auth_user_maps is empty: every login fails");
    if (!priv_lookup(var_virtual_mailbox_owner, &auth_vmail_uid, &auth_vmail_gid))
	msg_warn("virtual_mailbox_owner %s: unknown user; logins of users without uid/gid fail",
		 var_virtual_mailbox_owner);
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)
	|| getrandom(auth_fake_key, sizeof(auth_fake_key), 0) != (ssize_t) sizeof(auth_fake_key))
	msg_fatal("getrandom: %m");
    if (!base64_encode(rnd, sizeof(rnd), pw))
	msg_panic("dummy password");
    auth_dummy_hash = str_new(512);
    if (passwd_hash_make(var_auth_password_scheme, str_cstr(pw), auth_dummy_hash, &error) < 0)
	msg_fatal("auth_password_scheme: %s", error);
    str_free(&pw);
    auth_client_fails = throttle_new((size_t) var_auth_throttle_size, var_auth_failure_window);
    auth_user_fails = throttle_new((size_t) var_auth_throttle_size, var_auth_failure_window);
    /* Nettle (SCRAM) is loaded on the first SCRAM exchange, so that an
     * auth that only checks crypt hashes never maps it; chrooted (-C,
     * chroot y in master.cf), the library would not be found then, so
     * load it now while / is still the real root. */
    if (server_chroot_mode() && passwd_crypto_load(&error) < 0)
	msg_warn("%s; SCRAM-SHA-256 logins will fail", error);
    /* the skeleton drops to mail_owner: make that auth_user */
    if (geteuid() == 0 && *var_auth_user)
	var_mail_owner = var_auth_user;
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_MULTI,
	.name = "auth",
	.flags = SERVER_FLAG_NO_IDLE_EXIT | SERVER_FLAG_NO_MAX_USE,
	.pre_init = auth_pre_init,
	.multi_connect = auth_connect,
	.multi_input = auth_input,
	.multi_disconnect = auth_disconnect,
	.multi_busy = auth_busy,
	.multi_framing = SERVER_FRAME_IPC,
    };

    return server_main(argc, argv, &spec);
}
