/* test-resolve.c - unit tests for resolve.c: domain classes, transports,
 * transport_maps order, recipient existence, table lookups, failures. */

/* System. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base. */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

/* Mail. */
#include "config.h"
#include "resolve.h"
#include "table.h"

static char test_dir[PATH_MAX];

/* path_in - a file name inside the test directory */
static const char *path_in(const char *name)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];

    if (!fmt_try_buf(p, PATH_MAX, "%s/%s", test_dir, name))
	msg_fatal("path too long");
    return p;
}

/* make_table - write the source of cdb:DIR/name and build it */
static void make_table(const char *name, const char *text)
{
    const char *path = path_in(name);
    char tname[PATH_MAX + 8];
    const char *err;
    FILE *fp;

    if ((fp = fopen(path, "w")) == NULL)
	msg_fatal("create %s: %m", path);
    fputs(text, fp);
    fclose(fp);
    fmt_buf_or_panic(tname, sizeof(tname), "cdb:%s", path);
    if (table_build(tname, NULL, 0, &err) < 0)
	msg_fatal("build %s: %s", tname, err);
}

/* set_param - config_set with "DIR" replaced by the test directory */
static void set_param(const char *name, const char *value)
{
    struct str *s = str_new(STR_MAX_DEFAULT);
    const char *cp, *hit;

    for (cp = value; (hit = strstr(cp, "DIR")) != NULL; cp = hit + 3) {
	str_append_or_panic(s, cp, (size_t) (hit - cp));
	str_appends_or_panic(s, test_dir);
    }
    str_appends_or_panic(s, cp);
    config_set(name, str_cstr(s));
    str_free(&s);
}

/* setup - the configuration most tests use */
static void setup(void)
{
    const char *err;

    config_init();
    set_param("myhostname", "host.local");
    set_param("mydomain", "local");
    set_param("mydestination", "$myhostname, localhost.$mydomain, localhost, Other.Local");
    set_param("virtual_mailbox_domains", "example.test, cdb:DIR/vdomains catch.test");
    set_param("virtual_alias_domains", "alias.test,alias2.test");
    set_param("relay_domains", "relay.test .relaysub.test DIR/relaylist");
    set_param("virtual_mailbox_maps", "cdb:DIR/vmailbox");
    set_param("virtual_alias_maps", "cdb:DIR/valias");
    set_param("transport_maps", "cdb:DIR/transport1, cdb:DIR/transport2");
    set_param("alias_maps", "cdb:DIR/aliases");
    set_param("recipient_delimiter", "+");
    if (config_apply(&err) < 0)
	msg_fatal("config_apply: %s", err);
    if (resolve_init(&err) < 0)
	msg_fatal("resolve_init: %s", err);
}

struct class_case {
    const char *address;
    enum resolve_class class;
    const char *transport;
    const char *nexthop;
};

static const struct class_case class_cases[] = {
    {"root@host.local", RESOLVE_CLASS_LOCAL, "local", "host.local"},
    {"root@HOST.LOCAL", RESOLVE_CLASS_LOCAL, "local", "host.local"},
    {"root@host.local.", RESOLVE_CLASS_LOCAL, "local", "host.local"},
    {"x@localhost", RESOLVE_CLASS_LOCAL, "local", "localhost"},
    {"x@localhost.local", RESOLVE_CLASS_LOCAL, "local", "localhost.local"},
    {"x@other.local", RESOLVE_CLASS_LOCAL, "local", "other.local"},
    {"root", RESOLVE_CLASS_LOCAL, "local", "host.local"},
    {"x@[127.0.0.1]", RESOLVE_CLASS_LOCAL, "local", "[127.0.0.1]"},
    {"x@[192.0.2.77]", RESOLVE_CLASS_DEFAULT, "smtp", "[192.0.2.77]"},
    {"alice@example.test", RESOLVE_CLASS_VIRTUAL, "local", "example.test"},
    {"alice@Example.Test", RESOLVE_CLASS_VIRTUAL, "local", "example.test"},
    {"a@vdom.test", RESOLVE_CLASS_VIRTUAL, "local", "vdom.test"},
    {"a@sub.vdom2.test", RESOLVE_CLASS_VIRTUAL, "local", "sub.vdom2.test"},
    {"a@vdom2.test", RESOLVE_CLASS_DEFAULT, "smtp", "vdom2.test"},
    {"a@alias.test", RESOLVE_CLASS_ALIAS, "error", "5.1.1 User unknown in virtual alias table"},
    {"a@relay.test", RESOLVE_CLASS_RELAY, "smtp", "relay.test"},
    {"a@x.relaysub.test", RESOLVE_CLASS_RELAY, "smtp", "x.relaysub.test"},
    {"a@relaysub.test", RESOLVE_CLASS_DEFAULT, "smtp", "relaysub.test"},
    {"a@fromfile.test", RESOLVE_CLASS_RELAY, "smtp", "fromfile.test"},
    {"a@sub.example.test", RESOLVE_CLASS_DEFAULT, "smtp", "sub.example.test"},
    {"a@elsewhere.test", RESOLVE_CLASS_DEFAULT, "smtp", "elsewhere.test"},
    /* transport_maps: full address, user@domain, domain, .parents */
    {"a@special.test", RESOLVE_CLASS_DEFAULT, "smtp", "[127.0.0.1]:2525"},
    {"a@deep.sub.special.test", RESOLVE_CLASS_DEFAULT, "relay", "gw.special.test"},
    {"user@special.test", RESOLVE_CLASS_DEFAULT, "error", "no mail for user"},
    {"user+tag@special.test", RESOLVE_CLASS_DEFAULT, "error", "no mail for user"},
    {"a@hold.test", RESOLVE_CLASS_DEFAULT, "smtp", "[10.0.0.1]"},
    {"a@keep.test", RESOLVE_CLASS_DEFAULT, "slow", "keep.test"},
    {"a@null.test", RESOLVE_CLASS_DEFAULT, "smtp", "null.test"},
    {"a@second.test", RESOLVE_CLASS_DEFAULT, "second", "nh2"},
    {"a@relay.test.x", RESOLVE_CLASS_DEFAULT, "smtp", "relay.test.x"},
    {"alice@example.test.special.test", RESOLVE_CLASS_DEFAULT, "relay", "gw.special.test"},
    {"b@localhost", RESOLVE_CLASS_LOCAL, "local", "localhost"},
    {"b@host.local.example", RESOLVE_CLASS_DEFAULT, "smtp", "host.local.example"},
    {"vip@example.test", RESOLVE_CLASS_VIRTUAL, "local2", "example.test"},
};

/* default_transport and relayhost, with the transport_maps of setup() */
struct route_case {
    const char *default_transport;
    const char *relayhost;
    const char *address;
    const char *transport;
    const char *nexthop;
};

static const struct route_case route_cases[] = {
    /* relayhost: the nexthop of the default and relay classes */
    {"smtp", "[gw.test]:587", "a@elsewhere.test", "smtp", "[gw.test]:587"},
    {"smtp", "[gw.test]:587", "a@relay.test", "smtp", "[gw.test]:587"},
    {"smtp", " gw.test ", "a@x.relaysub.test", "smtp", "gw.test"},
    {"smtp", "[gw.test]:587", "root@host.local", "local", "host.local"},
    {"smtp", "[gw.test]:587", "alice@example.test", "local", "example.test"},
    {"smtp", "[gw.test]:587", "a@alias.test", "error",
     "5.1.1 User unknown in virtual alias table"},
    /* transport_maps still wins; a transport without a nexthop resets
     * it to the domain, an empty entry (":") changes nothing */
    {"smtp", "[gw.test]:587", "a@special.test", "smtp", "[127.0.0.1]:2525"},
    {"smtp", "[gw.test]:587", "a@keep.test", "slow", "keep.test"},
    {"smtp", "[gw.test]:587", "a@hold.test", "smtp", "[10.0.0.1]"},
    {"smtp", "[gw.test]:587", "a@null.test", "smtp", "[gw.test]:587"},
    /* default_transport with a nexthop: the default class only */
    {"smtp:[out.test]:25", "[gw.test]:587", "a@elsewhere.test", "smtp", "[out.test]:25"},
    {"smtp:[out.test]:25", "[gw.test]:587", "a@relay.test", "smtp", "[gw.test]:587"},
    {"smtp:[out.test]:25", "", "a@relay.test", "smtp", "relay.test"},
    {"smtp:", "", "a@elsewhere.test", "smtp", "elsewhere.test"},
    {"error:5.7.1 no outbound mail", "", "a@elsewhere.test", "error", "5.7.1 no outbound mail"},
    {"error:5.7.1 no outbound mail", "", "a@relay.test", "smtp", "relay.test"},
    {"error:5.7.1 no outbound mail", "", "a@special.test", "smtp", "[127.0.0.1]:2525"},
    {"discard:outbound mail is off", "[gw.test]", "a@elsewhere.test", "discard",
     "outbound mail is off"},
    {"discard", "", "a@elsewhere.test", "discard", "elsewhere.test"},
    {"local", "", "a@elsewhere.test", "local", "elsewhere.test"},
    /* default_transport without a nexthop: relayhost, else the domain */
    {"relay2", "gw.test:2525", "a@elsewhere.test", "relay2", "gw.test:2525"},
    {" relay2 ", "", "a@elsewhere.test", "relay2", "elsewhere.test"},
    {"", "", "a@elsewhere.test", "smtp", "elsewhere.test"},
    {"", "[gw.test]", "a@elsewhere.test", "smtp", "[gw.test]"},
};

struct known_case {
    const char *address;
    enum resolve_known known;
};

static const struct known_case known_cases[] = {
    {"root@host.local", RESOLVE_KNOWN},
    {"ROOT@host.local", RESOLVE_KNOWN},
    {"root+ext@localhost", RESOLVE_KNOWN},
    {"Root+Ext@LOCALHOST", RESOLVE_KNOWN},
    {"root", RESOLVE_KNOWN},
    {"postmaster@host.local", RESOLVE_KNOWN},
    {"PostMaster@localhost", RESOLVE_KNOWN},
    {"nosuchuser-xyzzy@host.local", RESOLVE_UNKNOWN},
    {"nosuchuser-xyzzy+a@host.local", RESOLVE_UNKNOWN},
    {"foo@host.local", RESOLVE_KNOWN},
    {"FOO@host.local", RESOLVE_KNOWN},
    {"foo+bar@host.local", RESOLVE_KNOWN},
    {"localonly@host.local", RESOLVE_KNOWN},
    {"localonly@example.test", RESOLVE_UNKNOWN},
    {"x@[127.0.0.1]", RESOLVE_UNKNOWN},
    {"root@[127.0.0.1]", RESOLVE_KNOWN},
    {"alice@example.test", RESOLVE_KNOWN},
    {"ALICE@EXAMPLE.TEST", RESOLVE_KNOWN},
    {"alice+tag@example.test", RESOLVE_KNOWN},
    {"bob@example.test", RESOLVE_KNOWN},
    {"carol@example.test", RESOLVE_UNKNOWN},
    {"root@example.test", RESOLVE_UNKNOWN},
    {"info@example.test", RESOLVE_KNOWN},
    {"anyone@catch.test", RESOLVE_KNOWN},
    {"sales@alias.test", RESOLVE_KNOWN},
    {"other@alias.test", RESOLVE_UNKNOWN},
    {"whoever@alias2.test", RESOLVE_KNOWN},
    {"nobody@relay.test", RESOLVE_KNOWN},
    {"nobody@elsewhere.test", RESOLVE_KNOWN},
};

int main(void)
{
    struct str *value = str_new(TABLE_ENTRY_MAX), *user = str_new(100), *ext = str_new(100);
    struct resolve_result res;
    const char *err, *why;
    FILE *fp;
    size_t i;

    fmt_buf_or_panic(test_dir, sizeof(test_dir), "/tmp/test-resolve.XXXXXX");
    if (mkdtemp(test_dir) == NULL)
	msg_fatal("mkdtemp: %m");
    make_table("vdomains", "vdom.test x\n.vdom2.test x\n");
    make_table("vmailbox", "alice@example.test example.test/alice/\n"
	       "bob@example.test example.test/bob/ quota=1000\n"
	       "vip@example.test example.test/vip/\n"
	       "@catch.test catch/\n");
    make_table("valias", "info@example.test alice@example.test\n"
	       "sales@alias.test bob@example.test\n"
	       "@alias2.test someone@example.test\n"
	       "localonly carol@example.test\n");
    make_table("transport1", "user@special.test error:no mail for user\n"
	       "special.test smtp:[127.0.0.1]:2525\n"
	       ".special.test relay:gw.special.test\n"
	       "hold.test :[10.0.0.1]\n"
	       "keep.test slow\n"
	       "null.test :\n"
	       "vip@example.test local2:\n");
    make_table("transport2", "second.test second:nh2\nspecial.test never:used\n");
    make_table("aliases", "postmaster root\nfoo bar\n");
    if ((fp = fopen(path_in("relaylist"), "w")) == NULL)
	msg_fatal("relaylist: %m");
    fputs("# relay domains from a file\nfromfile.test other.fromfile.test\n", fp);
    fclose(fp);
    setup();

    unit_begin("resolve_address: classes, transports, transport_maps order");
    for (i = 0; i < sizeof(class_cases) / sizeof(class_cases[0]); i++) {
	const struct class_case *c = &class_cases[i];

	err = NULL;
	unit_assert_idx(resolve_address(c->address, &res, &err) == 0, i);
	unit_assert_idx(res.class == c->class, i);
	unit_assert_streq_idx(res.transport, c->transport, i);
	unit_assert_streq_idx(res.nexthop, c->nexthop, i);
    }
    unit_end();

    unit_begin("resolve_address: default_transport and relayhost");
    for (i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
	const struct route_case *c = &route_cases[i];

	set_param("default_transport", c->default_transport);
	set_param("relayhost", c->relayhost);
	unit_assert_idx(config_apply(&err) == 0, i);
	unit_assert_idx(resolve_init(&err) == 0, i);
	err = NULL;
	unit_assert_idx(resolve_address(c->address, &res, &err) == 0, i);
	unit_assert_streq_idx(res.transport, c->transport, i);
	unit_assert_streq_idx(res.nexthop, c->nexthop, i);
    }
    /* too long for a nexthop: a temporary failure, never a silent cut */
    {
	char big[400];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	set_param("default_transport", "smtp");
	set_param("relayhost", big);
	unit_assert(config_apply(&err) == 0);
	unit_assert(resolve_init(&err) == 0);
	err = NULL;
	unit_assert(resolve_address("a@elsewhere.test", &res, &err) < 0);
	unit_assert(err != NULL && strstr(err, "relayhost") != NULL);
	unit_assert(resolve_address("root@host.local", &res, &err) == 0);
    }
    set_param("default_transport", "smtp");
    set_param("relayhost", "");
    unit_assert(config_apply(&err) == 0);
    unit_assert(resolve_init(&err) == 0);
    unit_end();

    unit_begin("resolve_recipient: local users, aliases, virtual maps");
    for (i = 0; i < sizeof(known_cases) / sizeof(known_cases[0]); i++) {
	enum resolve_known k = resolve_recipient(known_cases[i].address, &why);

	if (k != known_cases[i].known)
	    unit_fail_at(__FILE__, __LINE__, "case %zu %s: got %d (%s), want %d", i,
			 known_cases[i].address, (int) k, why, (int) known_cases[i].known);
    }
    unit_assert(resolve_recipient("nosuchuser-xyzzy@host.local", &why) == RESOLVE_UNKNOWN);
    unit_assert_streq(why, "User unknown in local recipient table");
    unit_assert(resolve_recipient("zz@example.test", &why) == RESOLVE_UNKNOWN);
    unit_assert_streq(why, "User unknown in virtual mailbox table");
    unit_assert(resolve_recipient("zz@alias.test", &why) == RESOLVE_UNKNOWN);
    unit_assert_streq(why, "User unknown in virtual alias table");
    unit_end();

    unit_begin("the invoking user is a local recipient");
    {
	struct passwd *pw = getpwuid(getuid());
	char addr[300];

	unit_assert(pw != NULL);
	fmt_buf_or_panic(addr, sizeof(addr), "%s+x@localhost", pw->pw_name);
	unit_assert(resolve_recipient(addr, &why) == RESOLVE_KNOWN);
    }
    unit_end();

    unit_begin("domain predicates");
    unit_assert(resolve_domain_is_local("host.local"));
    unit_assert(resolve_domain_is_local("LocalHost"));
    unit_assert(resolve_domain_is_local("[127.0.0.1]"));
    unit_assert(resolve_domain_is_local("[IPv6:::1]") || resolve_domain_is_local("[127.0.0.1]"));
    unit_assert(!resolve_domain_is_local("[IPv6:2001:db8::77]"));
    unit_assert(!resolve_domain_is_local("example.test"));
    unit_assert(resolve_domain_is_virtual_mailbox("example.test"));
    unit_assert(resolve_domain_is_virtual_mailbox("VDOM.test"));
    unit_assert(!resolve_domain_is_virtual_mailbox("alias.test"));
    unit_assert(resolve_domain_is_virtual_alias("ALIAS2.test"));
    unit_assert(resolve_domain_is_relay("relay.test"));
    unit_assert(resolve_domain_is_relay("other.fromfile.test"));
    unit_assert(!resolve_domain_is_relay("example.test"));
    unit_assert(resolve_domain_is_ours("example.test"));
    unit_assert(resolve_domain_is_ours("alias.test"));
    unit_assert(resolve_domain_is_ours("host.local"));
    unit_assert(!resolve_domain_is_ours("relay.test"));
    unit_assert(!resolve_domain_is_ours(""));
    unit_end();

    unit_begin("table lookups: extension, bare local part, catch-all");
    unit_assert(resolve_lookup_virtual_mailbox("bob+x@example.test", value, &err) == 1);
    unit_assert_streq(str_cstr(value), "example.test/bob/ quota=1000");
    unit_assert(resolve_lookup_virtual_mailbox("x@catch.test", value, &err) == 1);
    unit_assert_streq(str_cstr(value), "catch/");
    unit_assert(resolve_lookup_virtual_mailbox("x@example.test", value, &err) == 0);
    unit_assert(resolve_lookup_virtual_alias("Info@Example.Test", value, &err) == 1);
    unit_assert_streq(str_cstr(value), "alice@example.test");
    unit_assert(resolve_lookup_virtual_alias("localonly@localhost", value, &err) == 1);
    unit_assert_streq(str_cstr(value), "carol@example.test");
    unit_assert(resolve_lookup_virtual_alias("localonly+x@host.local", value, &err) == 1);
    unit_assert(resolve_lookup_virtual_alias("localonly@relay.test", value, &err) == 0);
    unit_assert(resolve_lookup_virtual_alias("q@alias2.test", value, &err) == 1);
    unit_assert_streq(str_cstr(value), "someone@example.test");
    unit_assert(resolve_lookup_alias("foo", value, &err) == 1);
    unit_assert_streq(str_cstr(value), "bar");
    unit_assert(resolve_lookup_alias("foo+zz", value, &err) == 1);
    unit_assert(resolve_lookup_alias("nope", value, &err) == 0);
    unit_end();

    unit_begin("resolve_split_extension");
    unit_assert(resolve_split_extension("user+tag+more", user, ext));
    unit_assert_streq(str_cstr(user), "user");
    unit_assert_streq(str_cstr(ext), "tag+more");
    unit_assert(!resolve_split_extension("user", user, ext));
    unit_assert(!resolve_split_extension("+tag", user, ext));
    config_set("recipient_delimiter", "-+");
    unit_assert(config_apply(&err) == 0);
    unit_assert(resolve_split_extension("a-b+c", user, ext));
    unit_assert_streq(str_cstr(user), "a");
    unit_assert_streq(str_cstr(ext), "b+c");
    unit_assert(!resolve_split_extension("owner-list", user, ext));
    config_set("recipient_delimiter", "");
    unit_assert(config_apply(&err) == 0);
    unit_assert(!resolve_split_extension("a+b", user, ext));
    unit_end();

    unit_begin("missing tables: explicit ones fail temporarily, default ones are empty");
    resolve_fini();
    setup();
    set_param("virtual_mailbox_maps", "cdb:DIR/missing");
    set_param("transport_maps", "cdb:DIR/missing2");
    set_param("relay_domains", "cdb:DIR/missing3");
    unit_assert(config_apply(&err) == 0);
    unit_assert(resolve_init(&err) == 0);
    unit_assert(resolve_recipient("alice@example.test", &why) == RESOLVE_TEMPFAIL);
    unit_assert(strstr(why, "virtual_mailbox_maps") != NULL);
    err = NULL;
    unit_assert(resolve_address("alice@example.test", &res, &err) < 0);
    unit_assert(err != NULL && strstr(err, "transport_maps") != NULL);
    unit_assert(resolve_address("a@elsewhere.test", &res, &err) < 0);
    unit_assert(err != NULL && strstr(err, "relay_domains") != NULL);
    /* local domains are decided before relay_domains is consulted */
    unit_assert(resolve_recipient("root@localhost", &why) == RESOLVE_KNOWN);
    /* once the table is built, lookups work without a restart */
    make_table("missing", "alice@example.test x/\n");
    unit_assert(resolve_recipient("alice@example.test", &why) == RESOLVE_KNOWN);
    resolve_fini();
    config_init();
    set_param("myhostname", "host.local");
    set_param("mydestination", "localhost");
    unit_assert(config_apply(&err) == 0);
    unit_assert(resolve_init(&err) == 0);
    /* alias_maps is the default, cdb:/etc/posthorn/aliases: absent is empty */
    unit_assert(resolve_lookup_alias("foo", value, &err) == 0);
    unit_assert(resolve_recipient("nosuchuser-xyzzy@localhost", &why) == RESOLVE_UNKNOWN);
    unit_end();

    unit_begin("resolve_error_text: the error transport's DSN and text");
    {
	static const struct {
	    const char *nexthop, *dsn, *text;
	} cases[] = {
	    {"5.1.1 no such user here", "5.1.1", "no such user here"},
	    {"5.7.1 ", "5.7.1", ""},
	    {"4.1.1 not a bounce code", "5.0.0", "4.1.1 not a bounce code"},
	    {"5.1 short code", "5.0.0", "5.1 short code"},
	    {"gone away", "5.0.0", "gone away"},
	    {"5.1.1", "5.0.0", "5.1.1"},
	    {"5.1.1234567890123 long", "5.0.0", "5.1.1234567890123 long"},
	    {"", "5.0.0", "mail for this destination is not deliverable"},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
	    char dsn[16];
	    const char *text = NULL;

	    resolve_error_text(cases[k].nexthop, dsn, sizeof(dsn), &text);
	    unit_assert_streq_idx(dsn, cases[k].dsn, k);
	    unit_assert_streq_idx(text, cases[k].text, k);
	}
    }
    unit_end();

    resolve_fini();
    str_free(&value);
    str_free(&user);
    str_free(&ext);
    {
	char cmd[PATH_MAX + 16];

	fmt_buf_or_panic(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
	if (system(cmd) != 0)
	    msg_warn("cannot remove %s", test_dir);
    }
    return unit_done();
}
