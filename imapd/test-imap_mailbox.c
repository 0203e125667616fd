/* test-imap_mailbox.c - unit tests for imap_mailbox.c's pure parts:
 * LIST pattern matching (* and %, no blow-up on hostile patterns) and
 * the wire <-> store mailbox names (modified UTF-7, INBOX's case).
 *
 * With "--serve ROOT" it is instead a test harness for
 * tests/test_imap_mailbox.py: one authenticated imapd session (the real
 * imapd_session.c and every command module) on the socket that is its
 * standard input, for the mailbox at ROOT, after a "* PREAUTH"
 * greeting; it exits when the session ends. So the mailbox commands can
 * be driven by imaplib without auth and the login process. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "msg.h"
#include "session_host.h"
#include "str.h"
#include "unit.h"

#include "imap_mailbox.h"
#include "imapd.h"

/* test_match - RFC 3501 6.3.8 wildcards */
static void test_match(void)
{
    static const struct {
	const char *pattern, *name;
	bool want;
    } cases[] = {
	{"*", "INBOX", true},
	{"*", "a.b.c", true},
	{"%", "a", true},
	{"%", "a.b", false},
	{"a.%", "a.b", true},
	{"a.%", "a.b.c", false},
	{"a.*", "a.b.c", true},
	{"a.*", "a", false},
	{"a*", "a", true},
	{"a*", "ab.c", true},
	{"a%", "ab.c", false},
	{"%.%", "a.b", true},
	{"%.b", "x.b", true},
	{"*b", "a.b", true},
	{"*.b", "b", false},
	{"INBOX", "INBOX", true},
	{"INBOX", "INBOXX", false},
	{"inbox", "INBOX", true},
	{"in%", "INBOX", true},
	{"Inbox.%", "INBOX.kid", true},
	{"inbox.KID", "INBOX.kid", false},
	{"inboxx", "INBOXX", false},
	{"", "", true},
	{"", "a", false},
	{"S*t", "Sent", true},
	{"S*t", "Sen", false},
	{"&AOQ-*", "&AOQ-x", true},
	{"%&AOQ-", "Entw&AOQ-", true},
	{"**%%**", "a.b", true},
    };
    size_t i;

    unit_begin("LIST patterns: * and %");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	unit_assert_idx(imap_list_match(cases[i].pattern, cases[i].name) == cases[i].want, i);
    unit_end();
}

/* test_match_hostile - many wildcards against a long name stays fast */
static void test_match_hostile(void)
{
    char pattern[4001], name[601];
    clock_t t0;
    int i;

    unit_begin("LIST patterns: a hostile pattern is linear, not exponential");
    for (i = 0; i < 4000; i++)
	pattern[i] = (i % 2) ? '*' : 'a';
    pattern[4000] = 0;
    memset(name, 'a', 600);
    name[600] = 0;
    t0 = clock();
    unit_assert(!imap_list_match(pattern, name));
    pattern[3] = '%';
    unit_assert(!imap_list_match(pattern, name));
    unit_assert(imap_list_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*", name));
    unit_assert(clock() - t0 < 2 * CLOCKS_PER_SEC);
    unit_end();
}

/* name - the store name of a wire name, "!" when refused */
static const char *name(struct str *s, const char *wire)
{
    const char *why;

    str_reset(s);
    if (!imap_mailbox_name(wire, strlen(wire), s, &why))
	return "!";
    return str_cstr(s);
}

/* test_names - wire to store and back */
static void test_names(void)
{
    struct str *s = str_new(4096);

    unit_begin("mailbox names: modified UTF-7 decoded, INBOX folded, bad ones refused");
    unit_assert_streq(name(s, "inbox"), "INBOX");
    unit_assert_streq(name(s, "InBoX.Kid"), "INBOX.Kid");
    unit_assert_streq(name(s, "INBOXES"), "INBOXES");
    unit_assert_streq(name(s, "Entw&APw-rfe"), "Entw\xc3\xbc" "rfe");
    unit_assert_streq(name(s, "a.b"), "a.b");
    unit_assert_streq(name(s, "a/b"), "!");
    unit_assert_streq(name(s, "a..b"), "!");
    unit_assert_streq(name(s, ".a"), "!");
    unit_assert_streq(name(s, ""), "!");
    unit_assert_streq(name(s, "&AGE-"), "!");	/* non-canonical */
    unit_assert_streq(name(s, "a\xc3\xa4"), "!");	/* raw 8-bit */
    unit_assert_streq(name(s, "&AAk-"), "!");	/* a TAB, encoded */
    str_reset(s);
    unit_assert(imap_mailbox_wire("Gel\xc3\xb6scht", s));
    unit_assert_streq(str_cstr(s), "Gel&APY-scht");
    str_free(&s);
    unit_end();
}

static bool serve_ended;

/* session_host_session_end - (the harness stands in for session_host's
 * worker) the session ended */
void session_host_session_end(void)
{
    serve_ended = true;
}

/* serve - the --serve harness: one session on fd 0 */
static int serve(const char *root)
{
    struct session_info info = {
	.service = "imap",
	.user = "tester",
	.mail_root = root,
	.uid = getuid(),
	.gid = getgid(),
	.client_address = "127.0.0.1",
    };
    const char *err;
    int fd, n;

    msg_init("test-imap_mailbox", MSG_TO_STDERR);
    config_init();
    if (config_apply(&err) < 0)
	msg_fatal("config: %s", err);
    if (write(0, "* PREAUTH [CAPABILITY " IMAPD_CAPABILITIES "] test harness\r\n",
	      strlen("* PREAUTH [CAPABILITY " IMAPD_CAPABILITIES "] test harness\r\n")) < 0)
	msg_fatal("write: %s", strerror(errno));
    if ((fd = dup(0)) < 0)
	msg_fatal("dup: %s", strerror(errno));
    imapd_session_start(fd, &info);
    /* bounded: the session's own idle deadline ends it at the latest */
    for (n = 0; !serve_ended && n < 1000000; n++)
	(void) event_loop_once(1000);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--serve") == 0)
	return serve(argv[2]);
    test_match();
    test_match_hostile();
    test_names();
    return unit_done();
}
