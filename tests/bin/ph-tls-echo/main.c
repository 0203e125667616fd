/* ph-tls-echo - a SINGLE test daemon speaking TLS from the first byte
 * (wrapper mode), on the server skeleton, with the smtpd_tls_*
 * parameters: the way smtpd loads its certificates (tls_server_new in
 * pre_init, as root, before the privilege drop), so that the tests can
 * check that `posthorn reload` puts a replaced certificate to use for
 * new sessions while a session in progress goes on
 * (tests/test_tls_lib.py). After the handshake it logs the session
 * (tls_info_log) and echoes each line as "echo: LINE" until "quit". */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "msg.h"
#include "server.h"
#include "str.h"
#include "stream.h"
#include "tls.h"

static struct tls_server *srv;

static void tls_pre_init(int argc, char **argv)
{
    struct tls_server_settings set;
    char *err = NULL;

    (void) argc;
    (void) argv;
    tls_server_settings_from_config(&set, "smtpd");
    if ((srv = tls_server_new(&set, &err)) == NULL)
	msg_fatal("TLS server: %s", err);
}

static void tls_echo_service(struct stream *client)
{
    struct str *line = str_new(1024);
    struct tls_info info;
    char *err = NULL;

    stream_set_timeout(client, 10000);
    if (tls_stream_server_start(client, srv, &info, &err) < 0) {
	msg_info("TLS handshake failed: %s", err);
	mem_free(&err);
	str_free(&line);
	return;
    }
    tls_info_log("from", "client", &info);
    while (stream_getline(client, line, 1000) == STREAM_OK) {
	str_chomp(line);
	if (strcmp(str_cstr(line), "quit") == 0)
	    break;
	stream_printf(client, "echo: %s pid=%ld\r\n", str_cstr(line), (long) getpid());
	if (stream_flush(client) < 0)
	    break;
    }
    tls_stream_close_notify(client);
    str_free(&line);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_SINGLE,
	.name = "ph-tls-echo",
	.pre_init = tls_pre_init,
	.single_service = tls_echo_service,
    };

    return server_main(argc, argv, &spec);
}
