/* ph-dns - look up MX records or addresses with lib/mail/dns.c, for the
 * tests (tests/test_dns.py).
 *
 * ph-dns [-c config_dir] [-o name=value]... mx DOMAIN [COUNT]
 * ph-dns [-c config_dir] [-o name=value]... addrs HOST [4|6|46]
 *
 * mx prints "status=S kind=K" then "mx PREF HOST" per exchanger, COUNT
 * times (default 1) with the lookups in one process; addrs prints
 * "status=S" then "addr ADDRESS" per address. A failure adds
 * "error=TEXT" to the status line. Exit 0 after any answer, 1 on a
 * usage or configuration error. */

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "msg.h"

/* mail */
#include "config.h"
#include "dns.h"

/* do_mx - one MX lookup, printed */
static void do_mx(const char *domain)
{
    struct dns_mx_reply reply;
    const char *err = NULL;
    enum dns_status st = dns_mx(domain, &reply, &err);

    printf("status=%s kind=%s", dns_status_name(st), dns_mx_kind_name(reply.kind));
    if (st != DNS_OK)
	printf(" error=%s", err);
    printf("\n");
    for (size_t i = 0; i < reply.count; i++)
	printf("mx %d %s\n", reply.mx[i].pref, reply.mx[i].host);
    dns_mx_reply_free(&reply);
}

/* do_addrs - one address lookup, printed */
static void do_addrs(const char *host, int families)
{
    struct dns_addr_reply reply;
    const char *err = NULL;
    enum dns_status st = dns_addrs(host, families, &reply, &err);
    char text[INET6_ADDRSTRLEN];

    printf("status=%s", dns_status_name(st));
    if (st != DNS_OK)
	printf(" error=%s", err);
    printf("\n");
    for (size_t i = 0; i < reply.count; i++)
	printf("addr %s\n", inet_ntop(reply.addr[i].family, &reply.addr[i].a, text, sizeof(text)));
    dns_addr_reply_free(&reply);
}

/* main - options, config, one command */
int main(int argc, char **argv)
{
    const char *dir = NULL, *err;
    int c;

    msg_init("ph-dns", MSG_TO_STDERR);
    config_init();
    while ((c = getopt(argc, argv, "c:o:")) != -1) {
	switch (c) {
	case 'c':
	    dir = optarg;
	    break;
	case 'o':
	    if (config_override(optarg, &err) < 0)
		msg_fatal("-o %s: %s", optarg, err);
	    break;
	default:
	    msg_fatal("usage: ph-dns [-c dir] [-o name=value]... mx DOMAIN [COUNT] | addrs HOST [4|6|46]");
	}
    }
    if (dir != NULL && config_load(dir, &err) < 0)
	msg_fatal("%s", err);
    if (config_apply(&err) < 0)
	msg_fatal("%s", err);
    if (argc - optind >= 2 && strcmp(argv[optind], "mx") == 0) {
	long count = argc - optind >= 3 ? atol(argv[optind + 2]) : 1;

	if (count < 1 || count > 1000)
	    msg_fatal("count must be 1..1000");
	for (long i = 0; i < count; i++)
	    do_mx(argv[optind + 1]);
    } else if (argc - optind >= 2 && strcmp(argv[optind], "addrs") == 0) {
	const char *fam = argc - optind >= 3 ? argv[optind + 2] : "46";
	int families = (strchr(fam, '4') ? DNS_INET4 : 0) | (strchr(fam, '6') ? DNS_INET6 : 0);

	if (families == 0)
	    msg_fatal("families: 4, 6 or 46");
	do_addrs(argv[optind + 1], families);
    } else {
	msg_fatal("usage: ph-dns [-c dir] [-o name=value]... mx DOMAIN [COUNT] | addrs HOST [4|6|46]");
    }
    dns_close();
    return 0;
}
