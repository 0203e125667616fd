/* ph-tls - a test driver for lib/tls (tests/test_tls_lib.py).
 *
 *   ph-tls server [options]      listen on 127.0.0.1, print "port N", then
 *                                serve -n connections one after the other
 *                                (blocking stream glue: tls_stream_server_start)
 *   ph-tls conn-server [options] the same on the event loop (conn glue:
 *                                tls_conn_server_start), clients at once
 *   ph-tls client [options] -c PORT [-c PORT...]   connect to each port in
 *                                turn (one tls_client: resumption by
 *                                --cache-key), handshake, send "hello",
 *                                print the reply
 *   ph-tls check [server options]   tls_server_new only: "ok" or the error
 *
 * Every handshake prints one line "tls ok KEY=VALUE ..." (protocol, cipher,
 * resumed, sni, peer CN, fingerprints, verified, verify_error, matched)
 * or "tls error TEXT". With --starttls the server first reads one
 * plaintext line (and answers "220 go") and the client first sends
 * "STARTTLS" plus --inject text, so that the injection defence shows:
 * the server reports "discarded" bytes and never sees the injected line.
 * The server echoes each line as "echo: LINE" until "quit" or EOF. */

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "event.h"
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"
#include "stream.h"
#include "tls.h"

static struct tls_server_settings sset;
static struct tls_client_settings cset;
static const char *match_names[8];
static int nmatch;
static const char *sni, *cache_key, *inject;
static bool starttls;
static int count = 1;
static int ports[8], nports;

static void print_info(const struct tls_info *i)
{
    char sum[256];

    tls_info_summary(i, sum, sizeof(sum));
    printf("tls ok protocol=%s cipher=%s bits=%d resumed=%d sni=%s peer_cert=%d subject=%s"
	   " issuer=%s fingerprint=%s pkey_fingerprint=%s verified=%d verify_error=%s"
	   " matched=%d matched_name=%s summary=%s\n",
	   i->protocol, i->cipher, i->cipher_bits, i->resumed, i->sni[0] ? i->sni : "-",
	   i->peer_cert, i->peer_subject_cn[0] ? i->peer_subject_cn : "-",
	   i->peer_issuer_cn[0] ? i->peer_issuer_cn : "-",
	   i->peer_fingerprint[0] ? i->peer_fingerprint : "-",
	   i->peer_pkey_fingerprint[0] ? i->peer_pkey_fingerprint : "-", i->verified,
	   i->verify_error[0] ? i->verify_error : "-", i->name_matched,
	   i->matched_name[0] ? i->matched_name : "-", sum);
    fflush(stdout);
}

/* serve_stream - one client over the blocking stream glue */
static void serve_stream(int fd, struct tls_server *srv)
{
    struct stream *s = stream_open(fd);
    struct str *line = str_new(1024);
    struct tls_info info;
    char *err = NULL;

    stream_set_timeout(s, 10000);
    if (starttls) {
	if (stream_getline(s, line, 1000) != STREAM_OK)
	    goto out;
	/* give the client's injected bytes time to arrive with the command */
	usleep(200 * 1000);
	(void) stream_getc(s);		/* fills the buffer, like a real reader */
	printf("discarded %zu\n", stream_buffered(s) + 1);
	stream_puts(s, "220 go\r\n");
	if (stream_flush(s) < 0)
	    goto out;
    }
    if (tls_stream_server_start(s, srv, &info, &err) < 0) {
	printf("tls error %s\n", err);
	fflush(stdout);
	mem_free(&err);
	goto out;
    }
    print_info(&info);
    while (stream_getline(s, line, 1000) == STREAM_OK) {
	str_chomp(line);
	printf("got %s\n", str_cstr(line));
	fflush(stdout);
	if (strcmp(str_cstr(line), "quit") == 0)
	    break;
	stream_printf(s, "echo: %s\r\n", str_cstr(line));
	if (stream_flush(s) < 0)
	    break;
    }
    tls_stream_close_notify(s);
out:
    fflush(stdout);
    str_free(&line);
    stream_close(&s);
}

static struct tls_server *make_server(void)
{
    char *err = NULL;
    struct tls_server *srv = tls_server_new(&sset, &err);

    if (srv == NULL) {
	printf("server error %s\n", err);
	fflush(stdout);
	mem_free(&err);
	exit(1);
    }
    return srv;
}

static int listen_any(void)
{
    const char *err;
    int fd = sock_listen_inet(AF_INET, "127.0.0.1", "0", 16, &err);
    char addr[64], port[16];
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (fd < 0)
	msg_fatal("listen: %s", err);
    if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
	msg_fatal("getsockname: %m");
    (void) addr;
    fmt_buf_or_panic(port, sizeof(port), "%u",
		     (unsigned) ntohs(((struct sockaddr_in *) &ss)->sin_port));
    printf("port %s\n", port);
    fflush(stdout);
    return fd;
}

/* ---------- conn server ---------- */

static int conn_clients;

static void c_input(struct conn *c, void *ctx)
{
    const char *line;
    size_t len;

    (void) ctx;
    while (conn_read_line(c, &line, &len) == CONN_LINE) {
	printf("got %s\n", line);
	fflush(stdout);
	if (strcmp(line, "quit") == 0) {
	    conn_close_after_flush(c);
	    return;
	}
	if (strcmp(line, "big") == 0) {
	    /* a reply larger than the socket buffers: flushed over time */
	    for (int i = 0; i < 20000; i++)
		conn_printf(c, "%05d 0123456789012345678901234567890123456789\r\n", i);
	    conn_puts(c, "end\r\n");
	    continue;
	}
	conn_printf(c, "echo: %s\r\n", line);
    }
}

static void c_close(struct conn *c, void *ctx)
{
    (void) c;
    (void) ctx;
    printf("closed reason=%d\n", (int) conn_close_reason(c));
    fflush(stdout);
    if (--conn_clients <= 0 && count <= 0)
	event_loop_stop();
}

static void c_done(struct conn *c, void *ctx, bool ok, const struct tls_info *info, const char *error)
{
    (void) ctx;
    if (!ok) {
	printf("tls error %s\n", error);
	fflush(stdout);
	conn_close(c, CONN_CLOSE_ERROR);
	return;
    }
    print_info(info);
}

static const struct conn_handlers c_handlers = {c_input, NULL, c_close};

static void c_starttls_input(struct conn *c, void *ctx)
{
    const char *line;
    size_t len;
    struct tls_server *srv = ctx;

    if (conn_read_line(c, &line, &len) != CONN_LINE)
	return;
    printf("discarded %zu\n", conn_input_avail(c));
    fflush(stdout);
    conn_puts(c, "220 go\r\n");	/* queued: leaves in plaintext */
    conn_set_ctx(c, NULL);
    tls_conn_server_start(c, srv, c_done, NULL);
}

static void c_accept(int lfd, void *ctx)
{
    struct tls_server *srv = ctx;
    int fd = sock_accept(lfd);
    struct conn *c;
    static const struct conn_handlers st = {c_starttls_input, NULL, c_close};

    if (fd < 0)
	return;
    if (--count <= 0)
	event_remove_read(lfd);
    conn_clients++;
    c = conn_new(fd, starttls ? &st : &c_handlers, srv, 4096);
    conn_set_idle_timeout(c, 10000);
    if (!starttls)
	tls_conn_server_start(c, srv, c_done, NULL);
}

/* ---------- client ---------- */

static int client_one(struct tls_client *cli, int port)
{
    const char *err;
    char pbuf[16];
    struct tls_client_peer peer = {sni, NULL, cache_key};
    struct tls_info info;
    struct stream *s;
    struct str *line = str_new(1024);
    char *terr = NULL;
    int fd, ret = 1;

    match_names[nmatch] = NULL;
    peer.match_names = nmatch ? match_names : NULL;
    fmt_buf_or_panic(pbuf, sizeof(pbuf), "%d", port);
    if ((fd = sock_connect_inet("127.0.0.1", pbuf, 5000, &err)) < 0) {
	printf("connect error %s\n", err);
	return 1;
    }
    s = stream_open(fd);
    stream_set_timeout(s, 10000);
    if (starttls) {
	stream_puts(s, "STARTTLS\r\n");
	if (inject)
	    stream_printf(s, "%s\r\n", inject);
	stream_flush(s);
	if (stream_getline(s, line, 1000) != STREAM_OK) {
	    printf("starttls error\n");
	    goto out;
	}
    }
    if (tls_stream_client_start(s, cli, &peer, &info, &terr) < 0) {
	printf("tls error %s\n", terr);
	mem_free(&terr);
	goto out;
    }
    print_info(&info);
    stream_puts(s, "hello\r\n");
    stream_flush(s);
    if (stream_getline(s, line, 1000) == STREAM_OK) {
	str_chomp(line);
	printf("reply %s\n", str_cstr(line));
    }
    stream_puts(s, "quit\r\n");
    stream_flush(s);
    /* read the session ticket(s) the server sends after the handshake */
    (void) stream_getline(s, line, 1000);
    ret = 0;
out:
    fflush(stdout);
    str_free(&line);
    stream_close(&s);
    return ret;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
	{"chain-files", 1, 0, 'a'}, {"cert", 1, 0, 'b'}, {"key", 1, 0, 'k'},
	{"eccert", 1, 0, 'e'}, {"eckey", 1, 0, 'E'}, {"protocols", 1, 0, 'p'},
	{"ciphers", 1, 0, 'C'}, {"ciphersuites", 1, 0, 'S'}, {"sni-maps", 1, 0, 'm'},
	{"ticket-key-file", 1, 0, 't'}, {"ticket-lifetime", 1, 0, 'L'},
	{"ca-file", 1, 0, 'f'}, {"ca-path", 1, 0, 'P'}, {"system-ca", 0, 0, 'y'},
	{"ask-ccert", 0, 0, 'A'}, {"sni", 1, 0, 'N'}, {"match", 1, 0, 'M'},
	{"cache-key", 1, 0, 'K'}, {"count", 1, 0, 'n'}, {"connect", 1, 0, 'c'},
	{"starttls", 0, 0, 's'}, {"inject", 1, 0, 'i'}, {"cache-size", 1, 0, 'z'},
	{0, 0, 0, 0}
    };
    const char *mode;
    int ch;

    msg_init("ph-tls", MSG_TO_STDERR);
    if (argc < 2)
	msg_fatal("usage: ph-tls server|conn-server|client|check [options]");
    mode = argv[1];
    sset.chain_files = sset.cert_file = sset.key_file = sset.eccert_file = sset.eckey_file = "";
    sset.protocols = sset.ciphers = sset.ciphersuites = sset.sni_maps = "";
    sset.ticket_key_file = sset.ca_file = "";
    sset.ticket_lifetime = 3600;
    sset.service = "ph-tls";
    cset.ca_file = cset.ca_path = cset.protocols = cset.ciphers = cset.ciphersuites = "";
    cset.cert_file = cset.key_file = "";
    cset.session_cache_max = 10;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "n:c:", opts, NULL)) != -1) {
	switch (ch) {
	case 'a': sset.chain_files = optarg; break;
	case 'b': sset.cert_file = cset.cert_file = optarg; break;
	case 'k': sset.key_file = cset.key_file = optarg; break;
	case 'e': sset.eccert_file = optarg; break;
	case 'E': sset.eckey_file = optarg; break;
	case 'p': sset.protocols = cset.protocols = optarg; break;
	case 'C': sset.ciphers = cset.ciphers = optarg; break;
	case 'S': sset.ciphersuites = cset.ciphersuites = optarg; break;
	case 'm': sset.sni_maps = optarg; break;
	case 't': sset.ticket_key_file = optarg; break;
	case 'L': sset.ticket_lifetime = atoi(optarg); break;
	case 'f': sset.ca_file = cset.ca_file = optarg; break;
	case 'P': cset.ca_path = optarg; break;
	case 'y': cset.system_ca = true; break;
	case 'A': sset.ask_client_cert = true; break;
	case 'N': sni = optarg; break;
	case 'M': if (nmatch < 7) match_names[nmatch++] = optarg; break;
	case 'K': cache_key = optarg; break;
	case 'n': count = atoi(optarg); break;
	case 'c': if (nports < 8) ports[nports++] = atoi(optarg); break;
	case 's': starttls = true; break;
	case 'i': inject = optarg; break;
	case 'z': cset.session_cache_max = atoi(optarg); break;
	default: msg_fatal("bad option");
	}
    }
    if (strcmp(mode, "check") == 0) {
	struct tls_server *srv = make_server();

	printf("ok\n");
	tls_server_free(&srv);
	return 0;
    }
    if (strcmp(mode, "server") == 0) {
	struct tls_server *srv = make_server();
	int lfd = listen_any();

	for (int i = 0; i < count; i++) {
	    int fd = sock_accept(lfd);

	    if (fd < 0) {
		i--;
		continue;
	    }
	    serve_stream(fd, srv);
	}
	tls_server_free(&srv);
	close(lfd);
	return 0;
    }
    if (strcmp(mode, "conn-server") == 0) {
	struct tls_server *srv = make_server();
	int lfd = listen_any();

	event_add_read(lfd, c_accept, srv);
	event_loop_run();
	tls_server_free(&srv);
	close(lfd);
	return 0;
    }
    if (strcmp(mode, "client") == 0) {
	char *err = NULL;
	struct tls_client *cli = tls_client_new(&cset, &err);
	int ret = 0;

	if (cli == NULL) {
	    printf("client error %s\n", err);
	    mem_free(&err);
	    return 1;
	}
	for (int i = 0; i < nports; i++)
	    ret |= client_one(cli, ports[i]);
	tls_client_free(&cli);
	return ret;
    }
    msg_fatal("unknown mode %s", mode);
}
