/* sc_tls.c - STARTTLS in smtp-client: the TLS policy of a next hop
 * (smtp_tls_security_level, or an entry of smtp_tls_policy_maps in
 * Postfix's syntax), the STARTTLS command and the handshake through
 * lib/tls (the OpenSSL plugin, loaded before privileges are dropped),
 * the checks the level asks for (a trusted chain and a matching name,
 * or a listed fingerprint), and the texts: the "Verified TLS connection
 * established to ..." log line, the session's TLS word for the delivery
 * log line, and the deferral reasons when a policy is not met. Under
 * "may" a failed handshake is retried once in cleartext by the caller;
 * under any stronger level nothing is ever sent in cleartext after the
 * EHLO. docs/smtp-client.md ("TLS") has the rules. */

/* System library. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "stream.h"

/* Mail library. */
#include "config.h"
#include "maps.h"
#include "nexthop.h"

/* TLS library. */
#include "tls.h"

/* This program. */
#include "sc.h"

static struct maps *sc_tls_maps;	/* smtp_tls_policy_maps */
static bool sc_tls_loaded;		/* the plugin is there */
static char sc_tls_load_error[256];

/* The client contexts: one per (protocols, ciphers, trust anchors), made
 * when first needed; the default ones in pre_init, as root. */
#define SC_TLS_CLIENTS_MAX	8

static struct sc_tls_client {
    char protocols[128];
    char ciphers[128];
    char ca_file[512];
    struct tls_client *cli;
} sc_tls_clients[SC_TLS_CLIENTS_MAX];
static size_t sc_tls_client_count;

static const struct {
    const char *name;
    enum sc_tls_level level;
} sc_tls_levels[] = {
    {"none", SC_TLS_NONE},
    {"may", SC_TLS_MAY},
    {"encrypt", SC_TLS_ENCRYPT},
    {"fingerprint", SC_TLS_FINGERPRINT},
    {"verify", SC_TLS_VERIFY},
    {"secure", SC_TLS_SECURE},
};

/* sc_tls_level_parse - a level name */
bool sc_tls_level_parse(const char *word, size_t len, enum sc_tls_level *level)
{
    for (size_t i = 0; i < sizeof(sc_tls_levels) / sizeof(sc_tls_levels[0]); i++)
	if (strlen(sc_tls_levels[i].name) == len
	    && strncasecmp(word, sc_tls_levels[i].name, len) == 0) {
	    *level = sc_tls_levels[i].level;
	    return true;
	}
    return false;
}

/* sc_tls_level_name - its name */
const char *sc_tls_level_name(enum sc_tls_level level)
{
    for (size_t i = 0; i < sizeof(sc_tls_levels) / sizeof(sc_tls_levels[0]); i++)
	if (sc_tls_levels[i].level == level)
	    return sc_tls_levels[i].name;
    return "?";
}

/* sc_attr_copy - an attribute's value into buf; false if too long */
static bool sc_attr_copy(char *buf, size_t size, const char *v, size_t len)
{
    if (len >= size)
	return false;
    memcpy(buf, v, len);
    buf[len] = 0;
    return true;
}

/* sc_tls_policy_parse - "level attr=value ..." */
int sc_tls_policy_parse(const char *value, struct sc_tls_policy *p, char *err, size_t err_size)
{
    const char *w = value;
    size_t n;
    bool first = true;

    memset(p, 0, sizeof(*p));
    for (;;) {
	while (*w == ' ' || *w == '\t' || *w == ',')
	    w++;
	if (*w == 0)
	    break;
	for (n = 0; w[n] && w[n] != ' ' && w[n] != '\t'; n++)
	    ;
	if (first) {
	    first = false;
	    if (!sc_tls_level_parse(w, n, &p->level)) {
		fmt_buf_cut(err, err_size, "unknown TLS security level \"%.*s\"", (int) n, w);
		return -1;
	    }
	} else {
	    const char *eq = memchr(w, '=', n);
	    size_t klen = eq ? (size_t) (eq - w) : n;
	    const char *v = eq ? eq + 1 : "";
	    size_t vlen = eq ? n - klen - 1 : 0;
	    bool ok;

	    if (eq == NULL || vlen == 0) {
		fmt_buf_cut(err, err_size, "TLS policy attribute \"%.*s\" is not name=value",
			    (int) n, w);
		return -1;
	    }
	    if (klen == 5 && strncasecmp(w, "match", 5) == 0) {
		size_t have = strlen(p->match);

		ok = have + 1 + vlen < sizeof(p->match);
		if (ok) {
		    if (have)
			p->match[have++] = ' ';
		    memcpy(p->match + have, v, vlen);
		    p->match[have + vlen] = 0;
		}
		p->match_given = true;
	    } else if (klen == 7 && strncasecmp(w, "ciphers", 7) == 0)
		ok = sc_attr_copy(p->ciphers, sizeof(p->ciphers), v, vlen);
	    else if (klen == 9 && strncasecmp(w, "protocols", 9) == 0)
		ok = sc_attr_copy(p->protocols, sizeof(p->protocols), v, vlen);
	    else if (klen == 6 && strncasecmp(w, "tafile", 6) == 0)
		ok = sc_attr_copy(p->tafile, sizeof(p->tafile), v, vlen);
	    else if ((klen == 7 && strncasecmp(w, "exclude", 7) == 0)
		     || (klen == 18 && strncasecmp(w, "connection_reuse", 16) == 0))
		ok = true;			/* Postfix's, without effect here */
	    else {
		fmt_buf_cut(err, err_size, "unknown TLS policy attribute \"%.*s\"", (int) klen, w);
		return -1;
	    }
	    if (!ok) {
		fmt_buf_cut(err, err_size, "TLS policy attribute %.*s is too long", (int) klen, w);
		return -1;
	    }
	}
	w += n;
    }
    if (first) {
	fmt_buf_cut(err, err_size, "empty TLS policy");
	return -1;
    }
    for (char *c = p->protocols; *c; c++)	/* Postfix writes lists with ':' too */
	if (*c == ':')
	    *c = ' ';
    return 0;
}

/* sc_tls_policy_keys - the lookup keys */
size_t sc_tls_policy_keys(const char *nexthop, char keys[][SC_HOST_MAX + 16], size_t max)
{
    size_t count = 0;
    const char *dot;

    if (max == 0 || !str_try_copy_out(keys[count], sizeof(keys[0]), nexthop))
	return 0;
    count++;
    if (nexthop[0] == '[' || strchr(nexthop, ':') != NULL)
	return count;			/* [host], [host]:port, domain:port */
    for (dot = strchr(nexthop, '.'); dot && count < max; dot = strchr(dot + 1, '.'))
	if (dot[1] && str_try_copy_out(keys[count], sizeof(keys[0]), dot))
	    count++;
    return count;
}

/* sc_hex_norm - the hex digits of a fingerprint, upper case, into buf */
static void sc_hex_norm(const char *fp, size_t len, char *buf, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++)
	if (isxdigit((unsigned char) fp[i]))
	    buf[o++] = (char) toupper((unsigned char) fp[i]);
    buf[o] = 0;
}

/* sc_tls_fingerprint_match - fp in list */
bool sc_tls_fingerprint_match(const char *list, const char *fp)
{
    char want[160], have[160];
    const char *w = list;
    size_t n;

    sc_hex_norm(fp, strlen(fp), have, sizeof(have));
    if (have[0] == 0)
	return false;
    for (;;) {
	while (*w == '|' || *w == ',' || *w == ' ' || *w == '\t')
	    w++;
	if (*w == 0)
	    return false;
	for (n = 0; w[n] && w[n] != '|' && w[n] != ',' && w[n] != ' ' && w[n] != '\t'; n++)
	    ;
	sc_hex_norm(w, n, want, sizeof(want));
	if (strcmp(want, have) == 0)
	    return true;
	w += n;
    }
}

/* sc_tls_match_names - the expected certificate names */
size_t sc_tls_match_names(const struct sc_tls_policy *p, const char *host, const char *nexthop,
			  char *buf, size_t buf_size, const char **names, size_t max)
{
    const char *list, *w;
    char domain[SC_HOST_MAX];
    struct nexthop nh;
    const char *err;
    size_t n, used = 0, count = 0;

    if (p->match_given)
	list = p->match;
    else if (p->level == SC_TLS_SECURE)
	list = var_smtp_tls_secure_cert_match;
    else
	list = var_smtp_tls_verify_cert_match;
    if (nexthop_parse(nexthop, &nh, &err) == 0)
	str_copy_out_or_panic(domain, sizeof(domain), nh.host);
    else
	domain[0] = 0;
    for (w = list; max > 1;) {
	const char *name;
	size_t len;
	bool dot = false;

	while (*w == ':' || *w == ',' || *w == ' ' || *w == '\t')
	    w++;
	if (*w == 0)
	    break;
	for (n = 0; w[n] && w[n] != ':' && w[n] != ',' && w[n] != ' ' && w[n] != '\t'; n++)
	    ;
	if (n == 8 && strncasecmp(w, "hostname", 8) == 0) {
	    name = host;
	    len = strlen(host);
	} else if (n == 7 && strncasecmp(w, "nexthop", 7) == 0) {
	    name = domain;
	    len = strlen(domain);
	} else if (n == 11 && strncasecmp(w, "dot-nexthop", 11) == 0) {
	    name = domain;
	    len = strlen(domain);
	    dot = true;
	} else {
	    name = w;
	    len = n;
	}
	w += n;
	if (len == 0 || used + len + 2 > buf_size)
	    continue;
	names[count++] = buf + used;
	if (dot)
	    buf[used++] = '.';
	memcpy(buf + used, name, len);
	used += len;
	buf[used++] = 0;
	if (count + 1 >= max)
	    break;
    }
    names[count] = NULL;
    return count;
}

/* sc_tls_client_get - the context for these settings; NULL with why */
static struct tls_client *sc_tls_client_get(const char *protocols, const char *ciphers,
					    const char *ca_file, char *why, size_t why_size)
{
    struct tls_client_settings set;
    struct sc_tls_client *c;
    char *error = NULL;

    for (size_t i = 0; i < sc_tls_client_count; i++) {
	c = sc_tls_clients + i;
	if (strcmp(c->protocols, protocols) == 0 && strcmp(c->ciphers, ciphers) == 0
	    && strcmp(c->ca_file, ca_file) == 0)
	    return c->cli;
    }
    if (sc_tls_client_count == SC_TLS_CLIENTS_MAX) {
	fmt_buf_cut(why, why_size, "too many different TLS client settings in "
		    "smtp_tls_policy_maps (at most %d)", SC_TLS_CLIENTS_MAX);
	return NULL;
    }
    /* smtp_tls_*, then what the level or the policy entry changes */
    tls_client_settings_from_config(&set, "smtp");
    set.ca_file = ca_file;
    set.system_ca = ca_file[0] == 0 && set.ca_path[0] == 0;
    set.protocols = protocols;
    set.ciphers = ciphers;
    c = sc_tls_clients + sc_tls_client_count;
    if (!str_try_copy_out(c->protocols, sizeof(c->protocols), protocols)
	|| !str_try_copy_out(c->ciphers, sizeof(c->ciphers), ciphers)
	|| !str_try_copy_out(c->ca_file, sizeof(c->ca_file), ca_file)) {
	fmt_buf_cut(why, why_size, "TLS client settings too long");
	return NULL;
    }
    if ((c->cli = tls_client_new(&set, &error)) == NULL) {
	fmt_buf_cut(why, why_size, "%s", error ? error : "cannot make a TLS client context");
	mem_free(&error);
	return NULL;
    }
    sc_tls_client_count++;
    return c->cli;
}

/* sc_tls_wanted - does this configuration use TLS at all */
static bool sc_tls_wanted(void)
{
    return var_smtp_tls_policy_maps[0] != 0 || strcasecmp(var_smtp_tls_security_level, "none") != 0;
}

/* sc_tls_init - tables, the plugin and the default contexts, as root
 * (smtp_tls_CAfile and the client key may be readable by root only) */
void sc_tls_init(void)
{
    char *error = NULL;
    char why[256];
    enum sc_tls_level level;

    if (!sc_tls_level_parse(var_smtp_tls_security_level, strlen(var_smtp_tls_security_level),
			    &level))
	msg_warn("smtp_tls_security_level: unknown level \"%s\"; every delivery defers",
		 var_smtp_tls_security_level);
    if (var_smtp_tls_policy_maps[0])
	sc_tls_maps = maps_from_param("smtp_tls_policy_maps", var_smtp_tls_policy_maps, 0);
    if (!sc_tls_wanted())
	return;
    if (tls_load(&error) < 0) {
	fmt_buf_cut(sc_tls_load_error, sizeof(sc_tls_load_error), "%s",
		    error ? error : "cannot load the TLS module");
	msg_warn("TLS is not available: %s", sc_tls_load_error);
	mem_free(&error);
	return;
    }
    sc_tls_loaded = true;
    /* the opportunistic and the mandatory context, before the privileges go */
    if (sc_tls_client_get(var_smtp_tls_protocols, var_smtp_tls_ciphers, var_smtp_tls_CAfile,
			  why, sizeof(why)) == NULL
	|| sc_tls_client_get(var_smtp_tls_mandatory_protocols, var_smtp_tls_mandatory_ciphers,
			     var_smtp_tls_CAfile, why, sizeof(why)) == NULL)
	msg_warn("TLS client settings: %s", why);
}

/* sc_tls_fini - release them */
void sc_tls_fini(void)
{
    for (size_t i = 0; i < sc_tls_client_count; i++)
	tls_client_free(&sc_tls_clients[i].cli);
    sc_tls_client_count = 0;
    if (sc_tls_maps)
	maps_free(&sc_tls_maps);
}

/* sc_tls_policy_find - the table entry for nexthop, else the level */
int sc_tls_policy_find(const char *nexthop, struct sc_tls_policy *p, char *dsn,
		       size_t dsn_size, char *reason, size_t reason_size)
{
    char keys[16][SC_HOST_MAX + 16];
    char err[256];
    size_t count;
    int found = 0;

    if (sc_tls_maps) {
	struct str *value = str_new(4096);
	const char *lerr = "";

	count = sc_tls_policy_keys(nexthop, keys, 16);
	for (size_t i = 0; i < count && found == 0; i++) {
	    found = maps_lookup(sc_tls_maps, keys[i], value, NULL, &lerr);
	    if (found < 0) {
		msg_warn("smtp_tls_policy_maps: %s", lerr);
		fmt_buf_cut(reason, reason_size, "TLS policy lookup for %s: %s", nexthop, lerr);
		str_copy_out_or_panic(dsn, dsn_size, "4.7.5");
		str_free(&value);
		return -1;
	    }
	    if (found > 0) {
		if (sc_tls_policy_parse(str_cstr(value), p, err, sizeof(err)) < 0) {
		    msg_warn("smtp_tls_policy_maps: entry %s: %s", keys[i], err);
		    fmt_buf_cut(reason, reason_size, "bad TLS policy for %s: %s", keys[i], err);
		    str_copy_out_or_panic(dsn, dsn_size, "4.7.5");
		    str_free(&value);
		    return -1;
		}
		fmt_buf_cut(p->origin, sizeof(p->origin), "smtp_tls_policy_maps %s", keys[i]);
	    }
	}
	str_free(&value);
	if (found)
	    return 0;
    }
    memset(p, 0, sizeof(*p));
    if (!sc_tls_level_parse(var_smtp_tls_security_level, strlen(var_smtp_tls_security_level),
			    &p->level)) {
	fmt_buf_cut(reason, reason_size, "unknown smtp_tls_security_level \"%s\"",
		    var_smtp_tls_security_level);
	str_copy_out_or_panic(dsn, dsn_size, "4.7.5");
	return -1;
    }
    if (p->level == SC_TLS_FINGERPRINT) {
	if (!str_try_copy_out(p->match, sizeof(p->match), var_smtp_tls_fingerprint_cert_match)) {
	    str_copy_out_or_panic(reason, reason_size, "smtp_tls_fingerprint_cert_match too long");
	    str_copy_out_or_panic(dsn, dsn_size, "4.7.5");
	    return -1;
	}
	p->match_given = true;
    }
    str_copy_out_or_panic(p->origin, sizeof(p->origin), "smtp_tls_security_level");
    return 0;
}

/* sc_tls_fail - a policy failure: the reason, dsn 4.7.x */
static enum sc_open_status sc_tls_fail(char *dsn, size_t dsn_size, const char *code,
				       char *reason, size_t reason_size, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum sc_open_status sc_tls_fail(char *dsn, size_t dsn_size, const char *code,
				       char *reason, size_t reason_size, const char *fmt, ...)
{
    va_list ap;
    char buf[1024];

    va_start(ap, fmt);
    (void) vsnprintf(buf, sizeof(buf), fmt, ap);	/* a message text: cut */
    va_end(ap);
    str_copy_out_or_panic(dsn, dsn_size, code);
    fmt_buf_cut(reason, reason_size, "%s", buf);
    return SC_OPEN_REPLY;
}

/* sc_is_address - host is a numeric address (no SNI for it) */
static bool sc_is_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* sc_tls_trust - "Verified", "Trusted", "Untrusted" or "Anonymous" for
 * info under p; *fp_hit when a listed fingerprint matched */
static const char *sc_tls_trust(const struct sc_tls_policy *p, const struct tls_info *info,
				bool *fp_hit)
{
    *fp_hit = false;
    if (!info->peer_cert)
	return "Anonymous";
    if (p->level == SC_TLS_FINGERPRINT) {
	*fp_hit = sc_tls_fingerprint_match(p->match, info->peer_fingerprint)
	    || sc_tls_fingerprint_match(p->match, info->peer_pkey_fingerprint);
	if (*fp_hit)
	    return "Verified";
	return info->verified ? "Trusted" : "Untrusted";
    }
    if (!info->verified)
	return "Untrusted";
    if ((p->level == SC_TLS_VERIFY || p->level == SC_TLS_SECURE) && info->name_matched)
	return "Verified";
    return "Trusted";
}

/* sc_tls_start - STARTTLS as the policy says */
enum sc_open_status sc_tls_start(struct sc_session *ss, const char *nexthop,
				 struct sc_reply *r, char *dsn, size_t dsn_size,
				 char *reason, size_t reason_size)
{
    struct sc_tls_policy p;
    struct tls_client *cli;
    struct tls_client_peer peer;
    struct tls_info info;
    const char *names[17], *trust, *err = "";
    char names_buf[2048], cache_key[SC_HOST_MAX + 200], why[256], summary[256];
    char *error = NULL;
    bool mandatory, fp_hit;
    const char *protocols, *ciphers;

    if (sc_tls_policy_find(nexthop, &p, dsn, dsn_size, reason, reason_size) < 0)
	return SC_OPEN_REPLY;
    if (p.level == SC_TLS_NONE)
	return SC_OPEN_OK;
    mandatory = p.level >= SC_TLS_ENCRYPT;
    if (!(ss->ext.flags & SC_EXT_STARTTLS)) {
	if (!mandatory)
	    return SC_OPEN_OK;
	return sc_tls_fail(dsn, dsn_size, "4.7.4", reason, reason_size,
			   "TLS is required, but was not offered by host %s", ss->namaddr);
    }
    if (!sc_tls_loaded) {
	if (!mandatory)
	    return SC_OPEN_OK;
	return sc_tls_fail(dsn, dsn_size, "4.7.5", reason, reason_size,
			   "TLS is required, but our TLS engine is unavailable: %s",
			   sc_tls_load_error[0] ? sc_tls_load_error : "TLS is not configured");
    }
    protocols = p.protocols[0] ? p.protocols
	: mandatory ? var_smtp_tls_mandatory_protocols : var_smtp_tls_protocols;
    ciphers = p.ciphers[0] ? p.ciphers
	: mandatory ? var_smtp_tls_mandatory_ciphers : var_smtp_tls_ciphers;
    if ((cli = sc_tls_client_get(protocols, ciphers, p.tafile[0] ? p.tafile : var_smtp_tls_CAfile,
				 why, sizeof(why))) == NULL) {
	msg_warn("TLS client for %s: %s", ss->relay, why);
	if (!mandatory)
	    return SC_OPEN_OK;
	return sc_tls_fail(dsn, dsn_size, "4.7.5", reason, reason_size,
			   "TLS is required, but our TLS engine is unavailable: %s", why);
    }

    /* STARTTLS: a refusal leaves the session in cleartext */
    stream_set_timeout(ss->stream, (int) var_smtp_starttls_timeout * 1000);
    if (sc_command(ss, true, "STARTTLS") < 0
	|| sc_reply_read(ss->stream, var_smtp_starttls_timeout, r, &err) < 0) {
	sc_session_lost(ss, "sending STARTTLS", err ? err : "", reason, reason_size);
	str_copy_out_or_panic(dsn, dsn_size, "4.4.2");
	sc_session_close(ss);
	return SC_OPEN_REPLY;
    }
    if (r->code != 220) {
	char quoted[SC_REPLY_TEXT_MAX];

	sc_reply_quote(r, quoted, sizeof(quoted));
	if (!mandatory) {
	    msg_info("host %s refused to start TLS: %s; going on without TLS", ss->namaddr,
		     quoted);
	    return SC_OPEN_OK;
	}
	return sc_tls_fail(dsn, dsn_size, "4.7.5", reason, reason_size,
			   "TLS is required, but host %s refused to start TLS: %s",
			   ss->namaddr, quoted);
    }
    if (stream_buffered(ss->stream) > 0)
	msg_warn("host %s sent %zu bytes behind its STARTTLS reply: discarded", ss->namaddr,
		 stream_buffered(ss->stream));

    /* the handshake */
    memset(&peer, 0, sizeof(peer));
    names[0] = NULL;
    if (p.level == SC_TLS_VERIFY || p.level == SC_TLS_SECURE)
	(void) sc_tls_match_names(&p, ss->host, nexthop, names_buf, sizeof(names_buf), names,
				  sizeof(names) / sizeof(names[0]));
    peer.sni = sc_is_address(ss->host) ? NULL : ss->host;
    peer.match_names = names;
    /* a session is resumed only with the same peer under the same policy */
    fmt_buf_cut(cache_key, sizeof(cache_key), "%s:%d&%s&%s&%s", ss->host, ss->port,
		sc_tls_level_name(p.level), p.match, p.tafile);
    peer.cache_key = cache_key;
    memset(&info, 0, sizeof(info));
    if (tls_stream_client_start(ss->stream, cli, &peer, &info, &error) < 0) {
	fmt_buf_cut(why, sizeof(why), "%s", error ? error : "handshake failure");
	mem_free(&error);
	sc_session_close(ss);		/* the stream is unusable */
	if (!mandatory) {
	    msg_info("TLS handshake with %s failed: %s; trying again without TLS", ss->relay,
		     why);
	    fmt_buf_cut(reason, reason_size, "Cannot start TLS: handshake failure with host "
			"%s: %s", ss->namaddr, why);
	    str_copy_out_or_panic(dsn, dsn_size, "4.7.5");
	    return SC_OPEN_TLS_RETRY;
	}
	msg_warn("TLS handshake with %s failed: %s", ss->relay, why);
	return sc_tls_fail(dsn, dsn_size, "4.7.5", reason, reason_size,
			   "Cannot start TLS: handshake failure with host %s: %s",
			   ss->namaddr, why);
    }
    ss->tls = true;
    trust = sc_tls_trust(&p, &info, &fp_hit);
    tls_info_summary(&info, summary, sizeof(summary));
    if (var_smtp_tls_loglevel > 0)
	msg_info("%s TLS connection established to %s: %s%s", trust, ss->relay, summary,
		 info.resumed ? " (resumed)" : "");
    if (var_smtp_tls_loglevel > 1 && info.peer_cert)
	msg_info("%s: subject_CN=%s, issuer_CN=%s, fingerprint=%s, pkey_fingerprint=%s%s%s",
		 ss->relay, info.peer_subject_cn, info.peer_issuer_cn, info.peer_fingerprint,
		 info.peer_pkey_fingerprint, info.verify_error[0] ? ", verify error: " : "",
		 info.verify_error);
    fmt_buf_cut(ss->tls_log, sizeof(ss->tls_log), "%s:%s:%s", trust, info.protocol,
		info.cipher);

    /* what the level asks of the certificate */
    if (p.level == SC_TLS_FINGERPRINT && !fp_hit)
	return sc_tls_fail(dsn, dsn_size, "4.7.5", reason, reason_size,
			   "Server certificate not verified: host %s: fingerprint %s is not "
			   "one of the %s", ss->namaddr,
			   info.peer_cert ? info.peer_fingerprint : "(no certificate)", p.origin);
    if (p.level == SC_TLS_VERIFY || p.level == SC_TLS_SECURE) {
	if (!info.peer_cert || !info.verified)
	    return sc_tls_fail(dsn, dsn_size, "4.7.5", reason, reason_size,
			       "Server certificate not trusted: host %s: %s (TLS level %s)",
			       ss->namaddr, info.peer_cert ? (info.verify_error[0]
							       ? info.verify_error
							       : "chain not verified")
			       : "no certificate", sc_tls_level_name(p.level));
	if (!info.name_matched) {
	    char list[512] = "";
	    size_t used = 0;

	    for (size_t i = 0; names[i] && used + 2 < sizeof(list); i++)
		used += (size_t) snprintf(list + used, sizeof(list) - used, "%s%s",
					  i ? ", " : "", names[i]);
	    if (used >= sizeof(list))
		list[sizeof(list) - 1] = 0;
	    return sc_tls_fail(dsn, dsn_size, "4.7.5", reason, reason_size,
			       "Server certificate not verified: host %s: the certificate "
			       "(CN %s) matches none of the names %s (TLS level %s)",
			       ss->namaddr, info.peer_subject_cn[0] ? info.peer_subject_cn : "-",
			       list[0] ? list : "(none)", sc_tls_level_name(p.level));
	}
    }

    /* RFC 3207 4.2: forget what was said in cleartext, EHLO again */
    memset(&ss->ext, 0, sizeof(ss->ext));
    if (sc_helo(ss, r, dsn, dsn_size, reason, reason_size) < 0)
	return SC_OPEN_REPLY;
    return SC_OPEN_OK;
}

/* sc_tls_close - close_notify before the connection goes */
void sc_tls_close(struct sc_session *ss)
{
    struct tls_session *t;

    if (ss->stream && ss->tls && (t = tls_stream_session(ss->stream)) != NULL)
	tls_session_close_notify(t);
}
