/* cmd_limits.c - posthorn limits: the operator's view of the
 * client-limits service's figures (limits_client_list): per service and
 * client address the open connections and the rates of the current time
 * unit, as a table or JSON, optionally only for some addresses or
 * networks. */

/* system */
#include <stdio.h>
#include <string.h>

/* base */
#include "mem.h"
#include "str.h"

/* mail */
#include "cidr_match.h"
#include "config.h"
#include "limits_client.h"
#include "limits_proto.h"

/* this program */
#include "posthorn.h"

struct lim_row {
    char service[LIMITS_SERVICE_MAX + 1];
    char address[LIMITS_ADDRESS_MAX + 1];
    struct limits_counts k;
};

struct lim_rows {
    struct lim_row *v;
    size_t n, cap;
    const struct cidr_list *only;	/* NULL: every address */
};

/* lim_collect - limits_client_list's callback: keep the rows asked for */
static void lim_collect(const char *service, const char *address,
			const struct limits_counts *k, void *ctx)
{
    struct lim_rows *rows = ctx;
    struct lim_row *r;

    if (rows->only && !cidr_list_match(rows->only, address))
	return;
    if (rows->n == rows->cap) {
	rows->cap = rows->cap ? rows->cap * 2 : 64;
	rows->v = mem_realloc(rows->v, mem_size_mul(rows->cap, sizeof(*rows->v)));
    }
    r = rows->v + rows->n++;
    if (!str_try_copy_out(r->service, sizeof(r->service), service)
	|| !str_try_copy_out(r->address, sizeof(r->address), address)) {
	rows->n--;				/* the service never sends these */
	return;
    }
    r->k = *k;
}

/* lim_print_json - one object per entry, in an array */
static void lim_print_json(const struct lim_rows *rows)
{
    printf("[");
    for (size_t i = 0; i < rows->n; i++) {
	const struct lim_row *r = rows->v + i;

	printf("%s\n{\"service\": ", i ? "," : "");
	ph_json_string(r->service);
	printf(", \"client_address\": ");
	ph_json_string(r->address);
	printf(", \"count\": %ld, \"conn_rate\": %ld, \"message_rate\": %ld, "
	       "\"recipient_rate\": %ld, \"tls_rate\": %ld, \"auth_rate\": %ld}",
	       r->k.count, r->k.conn_rate, r->k.message_rate, r->k.recipient_rate,
	       r->k.tls_rate, r->k.auth_rate);
    }
    printf("%s]\n", rows->n ? "\n" : "");
}

/* lim_print_table - aligned columns under a header */
static void lim_print_table(const struct lim_rows *rows)
{
    int ws = (int) strlen("SERVICE"), wa = (int) strlen("CLIENT");
    char unit[32], h[6][32];
    static const char *const names[6] = { "CONN/", "MSG/", "RCPT/", "TLS/", "AUTH/", "" };

    for (size_t i = 0; i < rows->n; i++) {
	int ls = (int) strlen(rows->v[i].service), la = (int) strlen(rows->v[i].address);

	ws = ls > ws ? ls : ws;
	wa = la > wa ? la : wa;
    }
    fmt_buf_or_panic(unit, sizeof(unit), "%lds", var_client_limits_rate_time_unit);
    for (int i = 0; i < 5; i++)
	fmt_buf_or_panic(h[i], sizeof(h[i]), "%s%s", names[i], unit);
    printf("%-*s %-*s %6s %10s %10s %10s %10s %10s\n", ws, "SERVICE", wa, "CLIENT", "CONN",
	   h[0], h[1], h[2], h[3], h[4]);
    for (size_t i = 0; i < rows->n; i++) {
	const struct lim_row *r = rows->v + i;

	printf("%-*s %-*s %6ld %10ld %10ld %10ld %10ld %10ld\n", ws, r->service, wa, r->address,
	       r->k.count, r->k.conn_rate, r->k.message_rate, r->k.recipient_rate,
	       r->k.tls_rate, r->k.auth_rate);
    }
}

/* cmd_limits - posthorn limits [--json] [address|network ...] */
int cmd_limits(int argc, char **argv)
{
    struct lim_rows rows = { NULL, 0, 0, NULL };
    struct cidr_list *only = NULL;
    struct str *path, *list = str_new(64 * 1024);
    const char *error;
    bool json = false;
    int i, ret = 0;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
	if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
	    json = true;
	} else if (strcmp(argv[i], "--") == 0) {
	    i++;
	    break;
	} else {
	    str_free(&list);
	    return ph_usage("limits");
	}
    }
    for (; i < argc; i++) {
	if (!str_try_appendf(list, "%s ", argv[i])) {
	    ph_error("too many addresses");
	    str_free(&list);
	    return 2;
	}
    }
    if (str_len(list) > 0 && (only = cidr_list_parse(str_cstr(list), &error)) == NULL) {
	ph_error("%s", error);
	str_free(&list);
	return 2;
    }
    str_free(&list);
    rows.only = only;
    if (ph_load_config(false) < 0) {
	cidr_list_free(&only);
	return 1;
    }
    path = str_new(4096 + 64);
    if (!str_try_appendf(path, "%s/%s", var_queue_directory, LIMITS_SOCKET)) {
	ph_error("queue_directory too long");
	ret = 1;
    } else {
	limits_client_init(str_cstr(path));
	if (limits_client_list(LIMITS_LIST_MAX, lim_collect, &rows, &error) < 0) {
	    ph_error("cannot list the client-limits figures: %s (is posthorn running, with the client-limits service in master.cf?)",
		     error);
	    ret = 1;
	} else if (json) {
	    lim_print_json(&rows);
	} else {
	    lim_print_table(&rows);
	}
	limits_client_close();
    }
    str_free(&path);
    cidr_list_free(&only);
    mem_free(&rows.v);
    return ret;
}
