/* sc_sasl.c - smtp-client's AUTH to the next hop (RFC 4954): PLAIN,
 * else LOGIN, with "username:password" from smtp_sasl_password_maps
 * (looked up by the next-hop string as given, then by its host or
 * domain alone). A password goes only over a TLS session (sc_tls.c),
 * or without TLS to the next hops of smtp_sasl_cleartext_destinations;
 * to any other the delivery defers (4.7.0). A failed AUTH defers too, with the reply quoted. Passwords
 * are never logged. */

/* System library. */
#include <string.h>
#include <strings.h>

/* Base library. */
#include "base64.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "maps.h"

/* This program. */
#include "sc.h"

#define SC_SASL_CRED_MAX	1024

static struct maps *sc_sasl_maps;

/* sc_sasl_init - open the password tables (pre_init, privileged) */
void sc_sasl_init(void)
{
    if (var_smtp_sasl_auth_enable && var_smtp_sasl_password_maps[0])
	sc_sasl_maps = maps_from_param("smtp_sasl_password_maps", var_smtp_sasl_password_maps, 0);
}

/* sc_sasl_fini - close them */
void sc_sasl_fini(void)
{
    if (sc_sasl_maps)
	maps_free(&sc_sasl_maps);
}

/* sc_host_of - the host or domain of a next-hop string, into buf */
static void sc_host_of(const char *nexthop, char *buf, size_t size)
{
    struct nexthop nh;
    const char *err;

    if (nexthop_parse(nexthop, &nh, &err) < 0)
	buf[0] = 0;
    else
	str_copy_out_or_panic(buf, size, nh.host);
}

struct sc_cleartext_match {
    const char *nexthop, *host;
    bool found;
};

/* sc_cleartext_item - one element of smtp_sasl_cleartext_destinations */
static void sc_cleartext_item(const char *item, void *ctx)
{
    struct sc_cleartext_match *m = ctx;

    if (strcasecmp(item, m->nexthop) == 0 || (m->host[0] && strcasecmp(item, m->host) == 0))
	m->found = true;
}

/* sc_cleartext_ok - the next hop is in smtp_sasl_cleartext_destinations */
static bool sc_cleartext_ok(const char *nexthop, const char *host)
{
    struct sc_cleartext_match m = {nexthop, host, false};

    config_split(var_smtp_sasl_cleartext_destinations, sc_cleartext_item, &m);
    return m.found;
}

/* sc_auth_step - send a line, read the reply; -1 on a broken session */
static int sc_auth_step(struct sc_session *ss, const char *line, struct sc_reply *r,
			char *reason, size_t reason_size)
{
    const char *err = "";

    stream_set_timeout(ss->stream, (int) var_smtp_auth_timeout * 1000);
    if (stream_puts(ss->stream, line) < 0 || stream_puts(ss->stream, "\r\n") < 0
	|| stream_flush(ss->stream) < 0
	|| sc_reply_read(ss->stream, var_smtp_auth_timeout, r, &err) < 0) {
	sc_session_lost(ss, "authenticating", err, reason, reason_size);
	return -1;
    }
    return 0;
}

/* sc_sasl_auth - log in to the peer when configured */
int sc_sasl_auth(struct sc_session *ss, const char *nexthop, char *dsn, size_t dsn_size,
		 char *reason, size_t reason_size)
{
    char host[SC_HOST_MAX];
    struct str *cred, *line;
    struct sc_reply r;
    const char *err = "", *colon, *user, *pass;
    size_t ulen;
    int found, ret = -1;

    if (!var_smtp_sasl_auth_enable || sc_sasl_maps == NULL)
	return 0;
    sc_host_of(nexthop, host, sizeof(host));
    cred = str_new(SC_SASL_CRED_MAX);
    found = maps_lookup(sc_sasl_maps, nexthop, cred, NULL, &err);
    if (found == 0 && host[0] && strcmp(host, nexthop) != 0)
	found = maps_lookup(sc_sasl_maps, host, cred, NULL, &err);
    if (found < 0) {
	msg_warn("%s", err);
	fmt_buf_cut(reason, reason_size, "smtp_sasl_password_maps lookup error: %s", err);
	str_copy_out_or_panic(dsn, dsn_size, "4.3.0");
	str_free(&cred);
	return -1;
    }
    if (found == 0 || !(ss->ext.flags & SC_EXT_AUTH)) {
	str_free(&cred);
	return 0;			/* nothing to say, or nobody to say it to */
    }
    if (!ss->tls && !sc_cleartext_ok(nexthop, host)) {
	fmt_buf_cut(reason, reason_size, "authentication to %s needs TLS, and the session is "
		    "not encrypted (the next hop is not in smtp_sasl_cleartext_destinations)",
		    ss->namaddr);
	str_copy_out_or_panic(dsn, dsn_size, "4.7.0");
	str_free(&cred);
	return -1;
    }
    if ((colon = strchr(str_cstr(cred), ':')) == NULL) {
	msg_warn("smtp_sasl_password_maps: the entry for %s is not \"username:password\"",
		 nexthop);
	fmt_buf_cut(reason, reason_size, "bad smtp_sasl_password_maps entry for %s", nexthop);
	str_copy_out_or_panic(dsn, dsn_size, "4.7.0");
	str_free(&cred);
	return -1;
    }
    user = str_cstr(cred);
    ulen = (size_t) (colon - user);
    pass = colon + 1;
    line = str_new(4 * SC_SASL_CRED_MAX);
    sc_reply_init(&r);
    if (ss->ext.flags & SC_EXT_AUTH_PLAIN) {
	struct str *raw = str_new(2 * SC_SASL_CRED_MAX);

	str_appendc_or_panic(raw, 0);
	str_append_or_panic(raw, user, ulen);
	str_appendc_or_panic(raw, 0);
	str_appends_or_panic(raw, pass);
	str_set_or_panic(line, "AUTH PLAIN ");
	if (!base64_encode(str_cstr(raw), str_len(raw), line))
	    msg_panic("sc_sasl_auth: credentials too long");
	memset(raw->data, 0, str_len(raw));
	str_free(&raw);
	if (sc_auth_step(ss, str_cstr(line), &r, reason, reason_size) < 0)
	    goto broken;
    } else if (ss->ext.flags & SC_EXT_AUTH_LOGIN) {
	str_set_or_panic(line, "AUTH LOGIN");
	if (sc_auth_step(ss, str_cstr(line), &r, reason, reason_size) < 0)
	    goto broken;
	if (r.code == 334) {
	    str_reset(line);
	    if (!base64_encode(user, ulen, line))
		msg_panic("sc_sasl_auth: credentials too long");
	    if (sc_auth_step(ss, str_cstr(line), &r, reason, reason_size) < 0)
		goto broken;
	}
	if (r.code == 334) {
	    str_reset(line);
	    if (!base64_encode(pass, strlen(pass), line))
		msg_panic("sc_sasl_auth: credentials too long");
	    if (sc_auth_step(ss, str_cstr(line), &r, reason, reason_size) < 0)
		goto broken;
	}
    } else {
	fmt_buf_cut(reason, reason_size, "host %s offers no AUTH mechanism posthorn has "
		    "(PLAIN, LOGIN)", ss->namaddr);
	str_copy_out_or_panic(dsn, dsn_size, "4.7.0");
	goto out;
    }
    if (r.code == 235) {
	ret = 0;
	goto out;
    }
    /* 535 and the rest: Postfix defers on an authentication failure */
    {
	char quoted[SC_REPLY_TEXT_MAX];

	sc_reply_quote(&r, quoted, sizeof(quoted));
	fmt_buf_cut(reason, reason_size, "SASL authentication failed; server %s said: %s",
		    ss->namaddr, quoted);
    }
    str_copy_out_or_panic(dsn, dsn_size, "4.7.0");
    goto out;
  broken:
    str_copy_out_or_panic(dsn, dsn_size, "4.4.2");
  out:
    memset(line->data, 0, str_len(line));
    memset(cred->data, 0, str_len(cred));
    sc_reply_fini(&r);
    str_free(&line);
    str_free(&cred);
    return ret;
}
