/* test-deliver_server.c - unit test of deliver_server.c: the handshake
 * is sent, requests are dispatched by kind until EOF, the wait hook runs
 * before each read, and a false callback or an unknown request ends the
 * connection. */

/* System library. */
#include <string.h>

/* Base library. */
#include "ipc.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* Mail library. */
#include "config.h"
#include "deliver_server.h"
#include "mail_proto.h"

static int delivers, verifies, waits;
static bool deliver_answer;
static char order[16];

/* t_note - remember the order of the calls */
static void t_note(char c)
{
    size_t n = strlen(order);

    if (n + 1 < sizeof(order)) {
	order[n] = c;
	order[n + 1] = 0;
    }
}

/* t_deliver - the deliver callback */
static bool t_deliver(struct stream *client, const struct ipc_list *request)
{
    (void) client;
    (void) request;
    delivers++;
    t_note('d');
    return deliver_answer;
}

/* t_verify - the verify callback */
static bool t_verify(struct stream *client, const struct ipc_list *request)
{
    (void) client;
    (void) request;
    verifies++;
    t_note('v');
    return true;
}

/* t_wait - the hook before each read */
static void t_wait(struct stream *client)
{
    (void) client;
    waits++;
    t_note('w');
}

/* t_run - serve the requests (names of the request attribute) from memory */
static void t_run(const char *const *requests, bool with_wait, struct str *out)
{
    static const struct deliver_server with = {t_deliver, t_verify, t_wait};
    static const struct deliver_server without = {t_deliver, t_verify, NULL};
    struct str in;
    struct stream *s;

    delivers = verifies = waits = 0;
    order[0] = 0;
    str_init(&in, 4096);
    for (; *requests; requests++) {
	ipc_encode_str(&in, ATTR_REQUEST, *requests);
	ipc_encode_str(&in, "x", "y");
	ipc_encode_end(&in);
    }
    str_reset(out);
    s = stream_open_memory(str_cstr(&in), str_len(&in), out);
    deliver_server_run(s, with_wait ? &with : &without);
    (void) stream_close(&s);
    str_fini(&in);
}

int main(void)
{
    struct str out;
    struct ipc_list list;
    const char *err;

    var_daemon_timeout = 0;
    str_init(&out, 4096);
    ipc_list_init(&list);

    unit_begin("handshake, then every request by kind until EOF, wait before each read");
    {
	static const char *const reqs[] = {"deliver", "verify", "deliver", NULL};

	deliver_answer = true;
	t_run(reqs, true, &out);
	unit_assert(ipc_decode_list(str_cstr(&out), str_len(&out), &list, &err) > 0);
	unit_assert(ipc_handshake_check(&list, DELIVER_PROTO, DELIVER_VERSION, &err) == 0);
	unit_assert_inteq(delivers, 2);
	unit_assert_inteq(verifies, 1);
	unit_assert_inteq(waits, 4);
	unit_assert_streq(order, "wdwvwdw");
    }
    unit_end();

    unit_begin("no wait hook");
    {
	static const char *const reqs[] = {"verify", "deliver", NULL};

	deliver_answer = true;
	t_run(reqs, false, &out);
	unit_assert_streq(order, "vd");
    }
    unit_end();

    unit_begin("a callback that returns false ends the connection");
    {
	static const char *const reqs[] = {"deliver", "verify", NULL};

	deliver_answer = false;
	t_run(reqs, true, &out);
	unit_assert_streq(order, "wd");
    }
    unit_end();

    unit_begin("an unknown request ends the connection");
    {
	static const char *const reqs[] = {"verify", "bogus", "deliver", NULL};

	deliver_answer = true;
	t_run(reqs, true, &out);
	unit_assert_streq(order, "wvw");
    }
    unit_end();

    ipc_list_fini(&list);
    str_fini(&out);
    return unit_done();
}
