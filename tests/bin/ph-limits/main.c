/* ph-limits - drives lib/mail/limits_client.c (the real client library)
 * against a client-limits service, for tests/test_client_limits.py.
 *
 *   ph-limits SOCKET call REQUEST SERVICE ADDR [REQUEST SERVICE ADDR ...]
 *       blocking calls, one line per call: "ok COUNT CONN MSG RCPT TLS
 *       AUTH" or "fail"
 *   ph-limits SOCKET async N SERVICE ADDR
 *       N event-driven connects pipelined, then a lookup; one line per
 *       callback in the order they ran: "ID ok COUNT CONN ..." or "ID
 *       fail ERROR"
 *   ph-limits SOCKET hold N SERVICE ADDR
 *       N blocking connects, prints "held", then waits (to be killed)
 * Warnings go to stderr. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "event.h"
#include "msg.h"

/* mail */
#include "limits_client.h"

static int done;

/* print - one result line */
static void print(const char *tag, const struct limits_counts *k, const char *error)
{
    if (k)
	printf("%sok %ld %ld %ld %ld %ld %ld\n", tag, k->count, k->conn_rate, k->message_rate,
	       k->recipient_rate, k->tls_rate, k->auth_rate);
    else
	printf("%sfail %s\n", tag, error ? error : "");
    fflush(stdout);
}

/* got - an event-driven reply */
static void got(const struct limits_counts *k, const char *error, void *ctx)
{
    char tag[32];

    snprintf(tag, sizeof(tag), "%ld ", (long) ctx);
    print(tag, k, error);
    done++;
}

int main(int argc, char **argv)
{
    struct limits_counts k;

    msg_init("ph-limits", MSG_TO_STDERR);
    if (argc < 3) {
	fprintf(stderr, "usage: ph-limits SOCKET call|async|hold ...\n");
	return 2;
    }
    limits_client_init(argv[1]);
    if (strcmp(argv[2], "call") == 0) {
	for (int i = 3; i + 2 < argc; i += 3)
	    print("", limits_client_call(argv[i], argv[i + 1], argv[i + 2], &k) == 0 ? &k : NULL,
		  NULL);
	return 0;
    }
    if (argc != 6)
	return 2;
    if (strcmp(argv[2], "async") == 0) {
	long n = atol(argv[3]);

	for (long i = 1; i <= n; i++)
	    (void) limits_async_call(LIMITS_REQ_CONNECT, argv[4], argv[5], got, (void *) i);
	(void) limits_async_call(LIMITS_REQ_LOOKUP, argv[4], argv[5], got, (void *) (n + 1));
	/* Bounded in time, not in turns: one turn may carry a single
	 * reply, so a count of turns fails a loaded machine. */
	time_t give_up = time(NULL) + 20;

	while (done < n + 1 && time(NULL) < give_up)
	    event_loop_once(100);
	return done == n + 1 ? 0 : 1;
    }
    if (strcmp(argv[2], "hold") == 0) {
	for (long i = atol(argv[3]); i > 0; i--)
	    if (limits_client_call(LIMITS_REQ_CONNECT, argv[4], argv[5], &k) < 0)
		return 1;
	printf("held %ld\n", k.count);
	fflush(stdout);
	for (int i = 0; i < 600; i++)
	    sleep(1);
	return 0;
    }
    return 2;
}
