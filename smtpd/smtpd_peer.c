/* smtpd_peer.c - who is the client: its numeric address (always logged)
 * and, with smtpd_peername_lookup = yes, a host name found by reverse
 * DNS and confirmed by a forward lookup. Otherwise the name is
 * "unknown", as Postfix logs a client whose name did not verify.
 *
 * A client that is not on an inet socket (the -S stdin mode of tests, a
 * unix-socket service) is "localhost[127.0.0.1]", as in Postfix. */

#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

/* base */
#include "msg.h"
#include "sock.h"
#include "str.h"

/* mail */
#include "config.h"
#include "server.h"

/* smtpd */
#include "smtpd.h"

/* peer_forward_confirms - does name resolve back to addr? */
static bool peer_forward_confirms(const char *name, const char *addr)
{
    struct addrinfo hints, *res = NULL, *ai;
    bool found = false;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, NULL, &hints, &res) != 0)
	return false;
    for (ai = res; ai && !found; ai = ai->ai_next) {
	char buf[NI_MAXHOST];

	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof(buf), NULL, 0,
			NI_NUMERICHOST) == 0 && strcmp(buf, addr) == 0)
	    found = true;
    }
    freeaddrinfo(res);
    return found;
}

/* peer_lookup_name - reverse lookup with forward confirmation */
static void peer_lookup_name(struct smtpd_state *st)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[NI_MAXHOST];

    if (getpeername(stream_fd(st->client), (struct sockaddr *) &ss, &len) < 0)
	return;
    if (getnameinfo((struct sockaddr *) &ss, len, host, sizeof(host), NULL, 0, NI_NAMEREQD) != 0)
	return;
    if (!valid_hostname(host, strlen(host), 0)) {
	msg_warn("%s: malformed reverse name \"%.100s\"", st->addr, host);
	return;
    }
    if (!peer_forward_confirms(host, st->addr)) {
	msg_warn("hostname %.255s does not resolve to address %s", host, st->addr);
	return;
    }
    str_copy_out_or_panic(st->name, sizeof(st->name), host);	/* valid_hostname: <= 255 */
}

/* smtpd_peer_addr - fill in addr and port (namaddr "unknown[addr]") */
void smtpd_peer_addr(struct smtpd_state *st)
{
    const struct server_pass_info *pass = server_pass_info();
    char addr[SMTPD_ADDR_MAX], port[16];
    bool known;

    str_copy_out_or_panic(st->name, sizeof(st->name), "unknown");
    /* a passed client's peer was looked up (and checked) as it came */
    if (pass != NULL && pass->peer_address != NULL)
	known = str_try_copy_out(addr, sizeof(addr), pass->peer_address)
	    && str_try_copy_out(port, sizeof(port), pass->peer_port);
    else
	known = sock_peer_name(stream_fd(st->client), addr, sizeof(addr), port, sizeof(port));
    if (!known || strcmp(addr, "unix") == 0) {
	str_copy_out_or_panic(st->name, sizeof(st->name), "localhost");
	str_copy_out_or_panic(st->addr, sizeof(st->addr), "127.0.0.1");
	str_copy_out_or_panic(st->port, sizeof(st->port), "0");
    } else {
	struct in6_addr a6;

	/* an IPv4-mapped IPv6 peer is logged as the IPv4 address */
	if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, '.') != NULL)
	    memmove(addr, addr + 7, strlen(addr + 7) + 1);
	str_copy_out_or_panic(st->addr, sizeof(st->addr), addr);
	str_copy_out_or_panic(st->port, sizeof(st->port), port);
	st->addr_is_v6 = inet_pton(AF_INET6, st->addr, &a6) == 1;
	st->peer_inet = true;
    }
    smtpd_join(st->namaddr, sizeof(st->namaddr), st->name, "[", st->addr, "]", (char *) NULL);
}

/* smtpd_peer_name - the name, when looked up, and namaddr */
void smtpd_peer_name(struct smtpd_state *st)
{
    if (st->peer_inet && var_smtpd_peername_lookup)
	peer_lookup_name(st);
    smtpd_join(st->namaddr, sizeof(st->namaddr), st->name, "[", st->addr, "]", (char *) NULL);
}
