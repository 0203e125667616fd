/* test-local_delivery.c - unit tests for the pure parts of local-delivery
 * (target lists, From_ lines and >From quoting, Delivered-To parsing,
 * Maildir names, quota arithmetic and maildirsize, sysexits mapping,
 * result merging, the worker protocol, forward_path expansion and
 * extension propagation) and for the file-level pieces that
 * need no privileges (copying a queue file into a Maildir and an mbox,
 * quotas, dotlocks); as root also real workers (one per user, reused,
 * dropped, a killed one deferring). */

/* System library. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "ipc.h"
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "safe_file.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

/* Mail library. */
#include "config.h"
#include "queue_file.h"

/* This program. */
#include "local.h"

/* ---- target lists */

struct split_case {
    const char *text;
    int rc;
    const char *want;		/* "type:text|type:text" */
};

static const struct split_case split_cases[] = {
    {"alice", 0, "A:alice"},
    {"alice, bob@example.org", 0, "A:alice|A:bob@example.org"},
    {"  alice ,bob  ,  ", 0, "A:alice|A:bob"},
    {"<bob@example.org>", 0, "A:bob@example.org"},
    {"\\alice, bob", 0, "M:alice|A:bob"},
    {"|/usr/bin/procmail -a x", 0, "C:/usr/bin/procmail -a x"},
    {"\"|/bin/cmd a, b\", carol", 0, "C:/bin/cmd a, b|A:carol"},
    {"\"| /bin/echo \\\"hi\\\"\"", 0, "C:/bin/echo \"hi\""},
    {"/var/log/mail.copy", 0, "F:/var/log/mail.copy"},
    {"/srv/archive/", 0, "F:/srv/archive/"},
    {":include:/etc/mail/list", 0, "I:/etc/mail/list"},
    {":INCLUDE: /etc/mail/list", 0, "I:/etc/mail/list"},
    {"# a comment\nalice\n  # another, with comma\nbob", 0, "A:alice|A:bob"},
    {"alice # not a comment here", 0, "A:alice # not a comment here"},
    {"\"john doe\"@example.org", 0, "A:john doe@example.org"},
    {"a\nb\n\nc", 0, "A:a|A:b|A:c"},
    {"", 0, ""},
    {",,,", 0, ""},
    {"\"unterminated", -1, ""},
    {"|", -1, ""},
    {"| ", -1, ""},
    {":include:relative", -1, ""},
    {"\\", -1, ""},
};

static void format_list(const struct alias_list *list, struct str *out)
{
    static const char codes[] = "?AMCFI";
    size_t i;

    str_reset(out);
    for (i = 0; i < list->n; i++) {
	if (i > 0)
	    str_appendc_or_panic(out, '|');
	str_appendf_or_panic(out, "%c:%s", codes[list->v[i].type], list->v[i].text);
    }
}

static void test_alias_split(void)
{
    struct alias_list list;
    struct str *got = str_new(4096);
    const char *err;
    size_t i;

    unit_begin("alias_split: target lists (aliases(5), .forward, :include:)");
    for (i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
	const struct split_case *c = &split_cases[i];
	int rc;

	alias_list_init(&list);
	err = NULL;
	rc = alias_split(c->text, strlen(c->text), &list, &err);
	unit_assert_idx(rc == c->rc, i);
	if (rc == 0) {
	    format_list(&list, got);
	    unit_assert_streq_idx(str_cstr(got), c->want, i);
	} else {
	    unit_assert_idx(err != NULL && *err, i);
	}
	alias_list_fini(&list);
    }
    unit_end();

    unit_begin("alias_split: NUL byte and the target limit");
    alias_list_init(&list);
    unit_assert(alias_split("a\0b", 3, &list, &err) < 0);
    alias_list_fini(&list);
    {
	struct str *many = str_new(STR_MAX_DEFAULT);

	for (i = 0; i < ALIAS_TARGETS_MAX + 1; i++)
	    str_appends_or_panic(many, "x,");
	alias_list_init(&list);
	unit_assert(alias_split(str_cstr(many), str_len(many), &list, &err) < 0);
	unit_assert_streq(err, "too many targets");
	alias_list_fini(&list);
	str_free(&many);
    }
    unit_end();
    str_free(&got);
}

/* ---- From_ line, quoting, header values */

static void test_from_line(void)
{
    struct str *s = str_new(1024);
    time_t t = 0;
    char *old_tz = getenv("TZ") ? mem_strdup(getenv("TZ")) : NULL;

    setenv("TZ", "UTC", 1);
    tzset();
    unit_begin("content_from_line: sender, null sender, date");
    unit_assert(content_from_line(s, "alice@example.org", t));
    unit_assert_streq(str_cstr(s), "From alice@example.org Thu Jan  1 00:00:00 1970\n");
    unit_assert(content_from_line(s, "", (time_t) 1700000000));
    unit_assert_streq(str_cstr(s), "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n");
    unit_assert(content_from_line(s, "a b\n@x", t));
    unit_assert_streq(str_cstr(s), "From a_b?@x Thu Jan  1 00:00:00 1970\n");
    unit_end();

    unit_begin("content_need_quote and content_header_value");
    unit_assert(content_need_quote("From me", 7));
    unit_assert(content_need_quote("From ", 5));
    unit_assert(!content_need_quote("From", 4));
    unit_assert(!content_need_quote(">From x", 7));
    unit_assert(!content_need_quote("from x", 6));
    unit_assert(!content_need_quote(" From x", 7));
    str_reset(s);
    unit_assert(content_header_value(s, "a\r\nb\tc d", false));
    unit_assert_streq(str_cstr(s), "a??b?c d");
    unit_end();

    if (old_tz)
	setenv("TZ", old_tz, 1);
    else
	unsetenv("TZ");
    tzset();
    mem_free(&old_tz);
    str_free(&s);
}

static void test_delivered_to(void)
{
    static const struct {
	const char *line;
	bool found;
	const char *value;
    } cases[] = {
	{"Delivered-To: bob@example.org", true, "bob@example.org"},
	{"delivered-to:Bob@Example.ORG  ", true, "bob@example.org"},
	{"DELIVERED-TO : <bob@example.org>", true, "bob@example.org"},
	{"Delivered-To:", false, ""},
	{"Delivered-To-X: bob", false, ""},
	{"X-Delivered-To: bob", false, ""},
	{"Subject: Delivered-To: bob", false, ""},
    };
    struct str *v = str_new(1024);
    size_t i;

    unit_begin("content_header_delivered_to: names and values");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	bool got = content_header_delivered_to(cases[i].line, strlen(cases[i].line), v);

	unit_assert_idx(got == cases[i].found, i);
	if (got)
	    unit_assert_streq_idx(str_cstr(v), cases[i].value, i);
    }
    unit_end();
    str_free(&v);
}

/* ---- Maildir names */

static void test_maildir_unique(void)
{
    char buf[256], small[20];

    unit_begin("maildir_unique: format and host escaping");
    unit_assert(maildir_unique(buf, sizeof(buf), 1700000000, 42, 1234, 0xabcULL, "mx.example.org"));
    unit_assert_streq(buf, "1700000000.M000042P1234R0000000000000abc.mx.example.org");
    unit_assert(maildir_unique(buf, sizeof(buf), 1, 999999, 7, 1, "a/b:c,d"));
    unit_assert_streq(buf, "1.M999999P7R0000000000000001.a\\057b\\072c\\054d");
    unit_assert(strchr(buf, '/') == NULL && strchr(buf, ':') == NULL);
    unit_assert(!maildir_unique(small, sizeof(small), 1700000000, 42, 1234, 1, "host"));
    unit_end();
}

/* ---- quota */

static void test_quota(void)
{
    struct str *path = str_new(1024);
    long q, b, c, n, def;
    const char *err;

    unit_begin("quota_parse_mailbox: path and quota=");
    unit_assert(quota_parse_mailbox("example.test/alice/", path, &q, &err) == 0);
    unit_assert_streq(str_cstr(path), "example.test/alice/");
    unit_assert_inteq(q, -1);
    unit_assert(quota_parse_mailbox("  /srv/m/bob/   quota=1000 ", path, &q, &err) == 0);
    unit_assert_streq(str_cstr(path), "/srv/m/bob/");
    unit_assert_inteq(q, 1000);
    unit_assert(quota_parse_mailbox("x/ quota=10K", path, &q, &err) == 0);
    unit_assert_inteq(q, 10240);
    unit_assert(quota_parse_mailbox("x/ quota=2M", path, &q, &err) == 0);
    unit_assert_inteq(q, 2097152);
    unit_assert(quota_parse_mailbox("x/ quota=0", path, &q, &err) == 0);
    unit_assert_inteq(q, 0);
    unit_assert(quota_parse_mailbox("", path, &q, &err) < 0);
    unit_assert(quota_parse_mailbox("x/ quota=", path, &q, &err) < 0);
    unit_assert(quota_parse_mailbox("x/ quota=12x", path, &q, &err) < 0);
    unit_assert(quota_parse_mailbox("x/ quota=-5", path, &q, &err) < 0);
    unit_assert(quota_parse_mailbox("x/ quota=99999999999999999999", path, &q, &err) < 0);
    unit_assert(quota_parse_mailbox("x/ quota=9999999999999G", path, &q, &err) < 0);
    unit_assert(quota_parse_mailbox("x/ uid=5", path, &q, &err) < 0);
    unit_end();

    unit_begin("quota_parse_def: Maildir++ definitions");
    unit_assert(quota_parse_def("1000S", &b, &c) && b == 1000 && c == 0);
    unit_assert(quota_parse_def("1000S,20C", &b, &c) && b == 1000 && c == 20);
    unit_assert(quota_parse_def("20C,5S", &b, &c) && b == 5 && c == 20);
    unit_assert(!quota_parse_def("", &b, &c));
    unit_assert(!quota_parse_def("1000", &b, &c));
    unit_assert(!quota_parse_def("1000X", &b, &c));
    unit_assert(!quota_parse_def("S", &b, &c));
    unit_assert(!quota_parse_def("10S;", &b, &c));
    unit_end();

    unit_begin("quota_parse_maildirsize: sums, negatives, malformed files");
    unit_assert(quota_parse_maildirsize("5000S\n100 1\n200 2\n", strlen("5000S\n100 1\n200 2\n"), &def, &b, &c, &n));
    unit_assert(def == 5000 && b == 300 && c == 3 && n == 2);
    {
	const char *t = "5000S,10C\n1000 4\n-300 -1\n  50 1\n";

	unit_assert(quota_parse_maildirsize(t, strlen(t), &def, &b, &c, &n));
	unit_assert(def == 5000 && b == 750 && c == 4 && n == 3);
    }
    unit_assert(quota_parse_maildirsize("1S\n", strlen("1S\n"), &def, &b, &c, &n) && b == 0 && n == 0);
    unit_assert(!quota_parse_maildirsize("5000S\n100 1\n20", strlen("5000S\n100 1\n20"), &def, &b, &c, &n));
    unit_assert(!quota_parse_maildirsize("5000S\n100\n", strlen("5000S\n100\n"), &def, &b, &c, &n));
    unit_assert(!quota_parse_maildirsize("5000S\nx 1\n", strlen("5000S\nx 1\n"), &def, &b, &c, &n));
    unit_assert(!quota_parse_maildirsize("junk\n", strlen("junk\n"), &def, &b, &c, &n));
    unit_assert(!quota_parse_maildirsize("", strlen(""), &def, &b, &c, &n));
    unit_end();

    unit_begin("quota_parse_maildirsize: sums that overflow make the file malformed");
    {
	static const char *const bad[] = {
	    "100S\n1 9223372036854775807\n1 9223372036854775807\n",
	    "100S\n1 -9223372036854775807\n1 -9223372036854775807\n",
	    "100S\n9223372036854775807 1\n1 1\n",
	    "100S\n-9223372036854775807 1\n-9223372036854775807 1\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	    unit_assert(!quota_parse_maildirsize(bad[i], strlen(bad[i]), &def, &b, &c, &n));
	unit_assert(quota_parse_maildirsize("100S\n1 9223372036854775807\n",
					    strlen("100S\n1 9223372036854775807\n"),
					    &def, &b, &c, &n) && c == 9223372036854775807L);
    }
    unit_end();

    unit_begin("quota_size_from_name and quota_exceeded");
    unit_assert_inteq(quota_size_from_name("1.M1P2R3.host,S=1234"), 1234);
    unit_assert_inteq(quota_size_from_name("1.M1P2R3.host,S=1234:2,S"), 1234);
    unit_assert_inteq(quota_size_from_name("1.M1P2R3.host,S=77,W=80:2,"), 77);
    unit_assert_inteq(quota_size_from_name("1.M1P2R3.host"), -1);
    unit_assert_inteq(quota_size_from_name("1.host,S=12x"), -1);
    unit_assert_inteq(quota_size_from_name("1.host,S="), -1);
    unit_assert(!quota_exceeded(100, 50, 0));
    unit_assert(!quota_exceeded(100, 50, 150));
    unit_assert(quota_exceeded(100, 51, 150));
    unit_assert(quota_exceeded(200, 0, 150));
    unit_assert(!quota_exceeded(150, 0, 150));
    unit_assert(quota_exceeded(1, 0x7fffffffffffffffL, 0x7fffffffffffffffL));
    unit_assert(!quota_exceeded(-5, 10, 10));
    unit_end();
    str_free(&path);
}

/* ---- results and exit codes */

static void test_results(void)
{
    struct ld_result agg, one;

    unit_begin("ld_result_merge: defer beats bounce beats sent");
    ld_result_init(&agg);
    ld_result_set(&one, LD_SENT, "2.0.0", "delivered to maildir");
    ld_result_merge(&agg, &one);
    unit_assert(agg.status == LD_SENT && agg.sent_count == 1);
    ld_result_set(&one, LD_BOUNCE, "5.1.1", "unknown user: \"x\"");
    ld_result_merge(&agg, &one);
    unit_assert(agg.status == LD_BOUNCE);
    unit_assert_streq(agg.dsn, "5.1.1");
    ld_result_set(&one, LD_SENT, "2.0.0", "delivered to mailbox");
    ld_result_merge(&agg, &one);
    unit_assert(agg.status == LD_BOUNCE && agg.sent_count == 2);
    ld_result_set(&one, LD_DEFER, "4.2.0", "locked");
    ld_result_merge(&agg, &one);
    unit_assert(agg.status == LD_DEFER);
    unit_assert_streq(agg.reason, "locked");
    ld_result_set(&one, LD_BOUNCE, "5.2.2", "full");
    ld_result_merge(&agg, &one);
    unit_assert(agg.status == LD_DEFER);
    unit_assert_streq(agg.dsn, "4.2.0");
    unit_end();

    unit_begin("command_exit_result: sysexits mapping");
    command_exit_result(0, "/bin/true", "", &one);
    unit_assert(one.status == LD_SENT);
    unit_assert_streq(one.reason, "delivered to command: /bin/true");
    command_exit_result(75 << 8, "x", "busy", &one);
    unit_assert(one.status == LD_DEFER);
    unit_assert_streq(one.dsn, "4.3.0");
    unit_assert_streq(one.reason, "command \"x\" exited with status 75 EX_TEMPFAIL: busy");
    command_exit_result(67 << 8, "x", "", &one);
    unit_assert(one.status == LD_BOUNCE);
    unit_assert_streq(one.dsn, "5.1.1");
    command_exit_result(77 << 8, "x", "", &one);
    unit_assert(one.status == LD_BOUNCE);
    unit_assert_streq(one.dsn, "5.7.0");
    command_exit_result(1 << 8, "x", "", &one);
    unit_assert(one.status == LD_BOUNCE);
    unit_assert_streq(one.dsn, "5.3.0");
    command_exit_result(9, "x", "", &one);	/* killed by SIGKILL */
    unit_assert(one.status == LD_DEFER);
    unit_end();

    unit_begin("ld_allowed_classes");
    unit_assert_inteq(ld_allowed_classes("alias, forward"), LD_CLASS_ALIAS | LD_CLASS_FORWARD);
    unit_assert_inteq(ld_allowed_classes("include"), LD_CLASS_INCLUDE);
    unit_assert_inteq(ld_allowed_classes(""), 0);
    unit_assert_inteq(ld_allowed_classes("none"), 0);
    unit_assert_inteq(ld_allowed_classes("alias, bogus"), -1);
    unit_end();
}

/* ---- copies into files */

/* make_queue_file - a queue file with the given content lines */
static int make_queue_file(const char *path, const char *const *lines, off_t *data_offset)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    struct stream *s = stream_open(fd);
    size_t i;

    qf_put_version(s);
    qf_put_time(s, 1700000000, 0);
    qf_puts(s, QF_REC_SENDER, "sender@example.org");
    qf_puts(s, QF_REC_RCPT, "alice@example.test");
    stream_flush(s);
    *data_offset = lseek(fd, 0, SEEK_CUR);
    qf_put(s, QF_REC_MESSAGE, "", 0);
    for (i = 0; lines[i]; i++) {
	if (strcmp(lines[i], "<C>") == 0) {	/* a line split into C + L */
	    qf_put(s, QF_REC_CONT, "From split ", 11);
	    qf_put(s, QF_REC_LINE, "line", 4);
	} else {
	    qf_put_line(s, lines[i], strlen(lines[i]), QF_RECORD_MAX);
	}
    }
    qf_put(s, QF_REC_XEND, "", 0);
    qf_put(s, QF_REC_END, "", 0);
    stream_flush(s);
    stream_free(&s);
    return fd;
}

static const char *const test_lines[] = {
    "Delivered-To: old@example.org",
    "Subject: test",
    " folded",
    "delivered-to:",
    "  Folded@Example.ORG",
    "",
    "From the body",
    "<C>",
    ">From already quoted",
    "last line",
    NULL,
};

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
	return -1;
    while ((de = readdir(d)) != NULL)
	if (de->d_name[0] != '.')
	    n++;
    closedir(d);
    return n;
}

static void test_copies(const char *tmpdir)
{
    struct str *p = str_new(4096), *data = str_new(STR_MAX_DEFAULT), *md = str_new(4096);
    struct ld_msg msg;
    struct copy_spec spec;
    struct ld_result res;
    bool made;
    struct mbox_opts opts;
    const char *err;
    off_t off;
    long used;
    DIR *d;
    struct dirent *de;

    str_printf_or_panic(p, "%s/qf", tmpdir);
    memset(&msg, 0, sizeof(msg));
    msg.fd = make_queue_file(str_cstr(p), test_lines, &off);
    msg.data_offset = off;
    msg.sender = "sender@example.org";

    unit_begin("content_scan_headers: Delivered-To values, folded too");
    unit_assert(content_scan_headers(&msg, &err) == 0);
    unit_assert(content_has_delivered_to(&msg, "old@example.org"));
    unit_assert(content_has_delivered_to(&msg, "OLD@example.org"));
    unit_assert(content_has_delivered_to(&msg, "folded@example.org"));
    unit_assert(!content_has_delivered_to(&msg, "the"));
    unit_assert(!content_has_delivered_to(&msg, "old@example.or"));
    unit_end();

    unit_begin("maildir_deliver: tmp -> new with S=, headers, LF lines");
    str_printf_or_panic(md, "%s/Maildir/", tmpdir);
    spec.flags = COPY_MAILDIR;
    spec.sender = msg.sender;
    spec.delivered_to = "alice@example.test";
    spec.now = 0;
    ld_result_init(&res);
    made = false;
    maildir_deliver(str_cstr(md), true, 0, &msg, &spec, &res, &made);
    unit_assert(res.status == LD_SENT);
    unit_assert(made);				/* a new Maildir */
    unit_assert_streq(res.reason, "delivered to maildir");
    str_printf_or_panic(p, "%s/Maildir/tmp", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 0);
    str_printf_or_panic(p, "%s/Maildir/cur", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 0);
    str_printf_or_panic(p, "%s/Maildir/new", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 1);
    d = opendir(str_cstr(p));
    while ((de = readdir(d)) != NULL) {
	if (de->d_name[0] == '.')
	    continue;
	str_printf_or_panic(p, "%s/Maildir/new/%s", tmpdir, de->d_name);
	unit_assert(read_file(str_cstr(p), data, STR_MAX_DEFAULT, &err) == 0);
	unit_assert_streq(str_cstr(data),
			  "Return-Path: <sender@example.org>\n"
			  "Delivered-To: alice@example.test\n"
			  "Delivered-To: old@example.org\n"
			  "Subject: test\n folded\n"
			  "delivered-to:\n  Folded@Example.ORG\n\n"
			  "From the body\nFrom split line\n>From already quoted\nlast line\n");
	unit_assert_inteq(quota_size_from_name(de->d_name), (long) str_len(data));
    }
    closedir(d);
    unit_end();

    unit_begin("maildir quota: maildirsize kept, over quota bounces 5.2.2");
    ld_result_init(&res);
    made = true;
    maildir_deliver(str_cstr(md), true, 100000, &msg, &spec, &res, &made);
    unit_assert(res.status == LD_SENT);
    unit_assert(!made);				/* cur/ was there */
    str_printf_or_panic(p, "%s/Maildir/maildirsize", tmpdir);
    unit_assert(read_file(str_cstr(p), data, 4096, &err) == 0);
    unit_assert(strncmp(str_cstr(data), "100000S\n", 8) == 0);
    unit_assert(quota_maildir_usage(str_cstr(md), 100000, &used, &err) == 0);
    unit_assert(used > 300 && used < 600);	/* two copies */
    ld_result_init(&res);
    maildir_deliver(str_cstr(md), true, used + 10, &msg, &spec, &res, NULL);
    unit_assert(res.status == LD_BOUNCE);
    unit_assert_streq(res.dsn, "5.2.2");
    str_printf_or_panic(p, "%s/Maildir/new", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 2);
    str_printf_or_panic(p, "%s/Maildir/tmp", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 0);
    unit_end();

    unit_begin("mbox_deliver: From_ line, >From quoting, blank line, append");
    str_printf_or_panic(p, "%s/mbox", tmpdir);
    spec.flags = COPY_MBOX;
    spec.now = 0;
    memset(&opts, 0, sizeof(opts));
    opts.create = true;
    opts.dotlock_required = true;
    opts.check_owner = true;
    ld_result_init(&res);
    mbox_deliver(str_cstr(p), &opts, &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    ld_result_init(&res);
    mbox_deliver(str_cstr(p), &opts, &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    unit_assert(read_file(str_cstr(p), data, STR_MAX_DEFAULT, &err) == 0);
    {
	const char *one_copy_body =
	    "Return-Path: <sender@example.org>\n"
	    "Delivered-To: alice@example.test\n"
	    "Delivered-To: old@example.org\n"
	    "Subject: test\n folded\n"
	    "delivered-to:\n  Folded@Example.ORG\n\n"
	    ">From the body\n>From split line\n>From already quoted\nlast line\n\n";
	const char *first = strchr(str_cstr(data), '\n') + 1;
	const char *second;

	unit_assert(strncmp(str_cstr(data), "From sender@example.org ", 24) == 0);
	unit_assert(strncmp(first, one_copy_body, strlen(one_copy_body)) == 0);
	second = first + strlen(one_copy_body);
	unit_assert(strncmp(second, "From sender@example.org ", 24) == 0);
	unit_assert(strcmp(strchr(second, '\n') + 1, one_copy_body) == 0);
    }
    str_printf_or_panic(md, "%s/mbox.lock", tmpdir);
    unit_assert(access(str_cstr(md), F_OK) < 0);	/* dotlock removed */
    unit_end();

    unit_begin("mbox_deliver: quota rolls back, symlinks and executables refused");
    {
	struct stat st0, st1;

	unit_assert(stat(str_cstr(p), &st0) == 0);
	opts.quota = (long) st0.st_size + 10;
	ld_result_init(&res);
	mbox_deliver(str_cstr(p), &opts, &msg, &spec, &res);
	unit_assert(res.status == LD_BOUNCE);
	unit_assert_streq(res.dsn, "5.2.2");
	unit_assert(stat(str_cstr(p), &st1) == 0);
	unit_assert_inteq(st1.st_size, st0.st_size);
	opts.quota = 0;
    }
    str_printf_or_panic(md, "%s/link", tmpdir);
    unit_assert(symlink(str_cstr(p), str_cstr(md)) == 0);
    ld_result_init(&res);
    mbox_deliver(str_cstr(md), &opts, &msg, &spec, &res);
    unit_assert(res.status == LD_DEFER);
    str_printf_or_panic(md, "%s/exec", tmpdir);
    close(open(str_cstr(md), O_CREAT | O_WRONLY, 0700));
    ld_result_init(&res);
    mbox_deliver(str_cstr(md), &opts, &msg, &spec, &res);
    unit_assert(res.status == LD_BOUNCE);
    unit_end();

    unit_begin("mbox_dotlock: busy lock times out, stale lock is removed");
    {
	struct str *lock = str_new(4096);
	struct timespec old[2];

	str_printf_or_panic(lock, "%s/mbox.lock", tmpdir);
	close(open(str_cstr(lock), O_CREAT | O_WRONLY, 0600));
	var_deliver_lock_attempts = 2;
	var_deliver_lock_delay = 1;
	ld_result_init(&res);
	mbox_deliver(str_cstr(p), &opts, &msg, &spec, &res);
	unit_assert(res.status == LD_DEFER);
	unit_assert(strstr(res.reason, "mbox.lock exists") != NULL);
	unit_assert(access(str_cstr(lock), F_OK) == 0);	/* not ours to remove */
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 10000;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	unit_assert(utimensat(AT_FDCWD, str_cstr(lock), old, 0) == 0);
	ld_result_init(&res);
	mbox_deliver(str_cstr(p), &opts, &msg, &spec, &res);
	unit_assert(res.status == LD_SENT);
	unit_assert(access(str_cstr(lock), F_OK) < 0);
	str_free(&lock);
    }
    unit_end();

    unit_begin("mbox_dotlock: a lock of a dead process is broken at once, a live one kept");
    {
	struct str *lock = str_new(4096);
	char text[128];
	time_t t0;
	pid_t dead;
	int fd;

	/* a pid that surely does not exist: a child, reaped */
	if ((dead = fork()) == 0)
	    _exit(0);
	unit_assert(dead > 0 && waitpid(dead, NULL, 0) == dead);
	str_printf_or_panic(lock, "%s/mbox.lock", tmpdir);
	var_deliver_lock_attempts = 3;
	var_deliver_lock_delay = 1;

	/* our own format, this host, a dead holder: broken without waiting */
	fmt_buf_or_panic(text, sizeof(text), "%ld %s\n", (long) dead, var_myhostname);
	fd = open(str_cstr(lock), O_CREAT | O_EXCL | O_WRONLY, 0600);
	unit_assert(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t) strlen(text));
	close(fd);
	t0 = time(NULL);
	ld_result_init(&res);
	mbox_deliver(str_cstr(p), &opts, &msg, &spec, &res);
	unit_assert(res.status == LD_SENT);
	unit_assert(time(NULL) - t0 <= 1);
	unit_assert(access(str_cstr(lock), F_OK) < 0);

	/* the lock a delivery holds names it and this host */
	unit_assert(mbox_dotlock(str_cstr(p), &err) == 0);
	str_reset(md);
	unit_assert(read_file(str_cstr(lock), md, 4096, &err) == 0);
	fmt_buf_or_panic(text, sizeof(text), "%ld %s\n", (long) getpid(), var_myhostname);
	unit_assert(strcmp(str_cstr(md), text) == 0);
	mbox_dotunlock(str_cstr(p));

	/* a live holder (this process), another host's lock, or another
	 * program's format: respected until stale_lock_time */
	{
	    static const char *const fmts[] = {"%ld %s\n", "%ld other.host\n", "%ld\n"};
	    size_t i;

	    for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		fmt_buf_or_panic(text, sizeof(text), fmts[i], (long) (i == 0 ? getpid() : dead),
			var_myhostname);
		fd = open(str_cstr(lock), O_CREAT | O_EXCL | O_WRONLY, 0600);
		unit_assert_idx(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t) strlen(text), i);
		close(fd);
		var_deliver_lock_attempts = 2;
		ld_result_init(&res);
		mbox_deliver(str_cstr(p), &opts, &msg, &spec, &res);
		unit_assert_idx(res.status == LD_DEFER, i);
		unit_assert_idx(strstr(res.reason, "mbox.lock exists") != NULL, i);
		str_reset(md);
		unit_assert_idx(read_file(str_cstr(lock), md, 4096, &err) == 0
				&& strcmp(str_cstr(md), text) == 0, i);
		unit_assert(unlink(str_cstr(lock)) == 0);
	    }
	}
	str_free(&lock);
    }
    unit_end();

    unit_begin("file_deliver: /dev/null and a Maildir path");
    ld_result_init(&res);
    file_deliver("/dev/null", &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    str_printf_or_panic(md, "%s/archive/", tmpdir);
    ld_result_init(&res);
    file_deliver(str_cstr(md), &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    str_printf_or_panic(p, "%s/archive/new", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 1);
    unit_end();

    unit_begin("command_deliver: stdin, environment, exit status");
    {
	struct cmd_env env;
	struct str *cmd = str_new(4096);

	memset(&env, 0, sizeof(env));
	env.sender = "sender@example.org";
	env.recipient = "bob+tag@example.test";
	env.local = "bob+tag";
	env.domain = "example.test";
	env.extension = "tag";
	env.user = "bob";
	env.home = tmpdir;
	env.shell = "/bin/sh";
	spec.flags = COPY_COMMAND;
	str_printf_or_panic(p, "%s/cmd.out", tmpdir);
	str_printf_or_panic(cmd, "cat > '%s'; echo \"$SENDER|$RECIPIENT|$LOCAL|$DOMAIN|$EXTENSION|"
		   "$USER|$HOME|$PATH\" >> '%s'", str_cstr(p), str_cstr(p));
	ld_result_init(&res);
	command_deliver(str_cstr(cmd), &env, &msg, &spec, &res);
	unit_assert(res.status == LD_SENT);
	unit_assert(read_file(str_cstr(p), data, STR_MAX_DEFAULT, &err) == 0);
	unit_assert(strncmp(str_cstr(data), "From sender@example.org ", 24) == 0);
	unit_assert(strstr(str_cstr(data), "\nFrom the body\n") != NULL);	/* not quoted */
	str_printf_or_panic(md, "sender@example.org|bob+tag@example.test|bob+tag|example.test|tag|"
		   "bob|%s|/usr/bin:/bin\n", tmpdir);
	unit_assert(strstr(str_cstr(data), str_cstr(md)) != NULL);

	ld_result_init(&res);
	command_deliver("echo 'no such user' >&2; exit 67", &env, &msg, &spec, &res);
	unit_assert(res.status == LD_BOUNCE);
	unit_assert_streq(res.dsn, "5.1.1");
	unit_assert(strstr(res.reason, "no such user") != NULL);
	ld_result_init(&res);
	command_deliver("exit 75", &env, &msg, &spec, &res);
	unit_assert(res.status == LD_DEFER);
	ld_result_init(&res);
	command_deliver("exec 0<&-; exit 0", &env, &msg, &spec, &res);	/* reads nothing */
	unit_assert(res.status == LD_SENT);
	var_command_time_limit = 1;
	ld_result_init(&res);
	command_deliver("cat >/dev/null; sleep 30", &env, &msg, &spec, &res);
	unit_assert(res.status == LD_DEFER);
	unit_assert(strstr(res.reason, "time limit") != NULL);
	str_free(&cmd);
    }
    unit_end();

    close(msg.fd);
    str_free(&msg.delivered);
    str_free(&p);
    str_free(&data);
    str_free(&md);
}

/* ---- reading content records */

struct walk_sink {
    struct str *out;
    int calls;
};

/* walk_sink_write - copy sink: collect and count the writes */
static int walk_sink_write(void *ctx, const char *buf, size_t len)
{
    struct walk_sink *ws = ctx;

    ws->calls++;
    return str_try_append(ws->out, buf, len) ? 0 : -1;
}

/* walk_rec - append one record to a file image */
static void walk_rec(struct str *img, int type, const char *data, size_t len)
{
    unsigned char hdr[5];

    hdr[0] = (unsigned char) type;
    hdr[1] = (unsigned char) (len >> 24);
    hdr[2] = (unsigned char) (len >> 16);
    hdr[3] = (unsigned char) (len >> 8);
    hdr[4] = (unsigned char) len;
    str_append_or_panic(img, (const char *) hdr, 5);
    str_append_or_panic(img, data, len);
}

/* walk_file - write img to path at offset 7 (after junk), return the fd */
static int walk_file(const char *path, const struct str *img)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);

    (void) write_all_fd(fd, "junk..!", 7);
    (void) write_all_fd(fd, str_cstr(img), str_len(img));
    return fd;
}

/* test_content_walk - records across read boundaries, huge records,
 * one write for a large message, and corrupt content refused */
static void test_content_walk(const char *tmpdir)
{
    struct str *img = str_new(STR_MAX_DEFAULT), *want = str_new(STR_MAX_DEFAULT);
    struct str *p = str_new(4096), *big = str_new(STR_MAX_DEFAULT);
    struct walk_sink ws;
    struct copy_spec spec;
    struct ld_msg msg;
    const char *err;
    off_t size;
    char line[200];
    int i, fd;
    static const struct {
	const char *img;	/* records as "T:data|..." after a good M */
	size_t img_len;
	const char *want_error;
    } bad[] = {
	{"L", 1, "truncated record"},
	{"L\0\0\0\x09" "abc", 8, "truncated record"},
	{"R\0\0\0\0", 5, "unexpected record type"},
	{"L\0\0\0\0", 5, "premature end"},
	{"C\0\0\0\x01" "aX\0\0\0\0", 11, "continued line"},
	{"L\x7f\0\0\0", 5, "exceeds the limit"},
    };

    str_printf_or_panic(p, "%s/walk", tmpdir);
    unit_begin("content_walk: records across 64 KiB reads, a 300 KiB line, one write");
    walk_rec(img, QF_REC_MESSAGE, "", 0);
    walk_rec(img, QF_REC_LINE, "Subject: walk", 13);
    walk_rec(img, QF_REC_LINE, "", 0);
    str_set_or_panic(want, "Return-Path: <s@example.org>\nDelivered-To: d@example.org\n"
	    "Subject: walk\n\n");
    for (i = 0; i < 3000; i++) {	/* ~ 250 KiB in odd-sized records */
	size_t n = (size_t) (i * 37 % 150);

	memset(line, 'a' + i % 26, n);
	if (i % 7 == 0) {
	    walk_rec(img, QF_REC_CONT, line, n);
	    walk_rec(img, QF_REC_LINE, "!", 1);
	    str_append_or_panic(want, line, n);
	    str_append_or_panic(want, "!\n", 2);
	} else {
	    walk_rec(img, QF_REC_LINE, line, n);
	    str_append_or_panic(want, line, n);
	    str_append_or_panic(want, "\n", 1);
	}
    }
    for (i = 0; i < 300 * 1024; i++)
	str_appendc_or_panic(big, (char) ('A' + i % 26));
    walk_rec(img, QF_REC_LINE, str_cstr(big), str_len(big));
    str_append_or_panic(want, str_cstr(big), str_len(big));
    str_append_or_panic(want, "\n", 1);
    walk_rec(img, QF_REC_LINE, "end", 3);
    str_append_or_panic(want, "end\n", 4);
    walk_rec(img, QF_REC_XEND, "", 0);
    walk_rec(img, QF_REC_END, "", 0);
    fd = walk_file(str_cstr(p), img);
    memset(&msg, 0, sizeof(msg));
    msg.fd = fd;
    msg.data_offset = 7;
    memset(&spec, 0, sizeof(spec));
    spec.flags = COPY_MAILDIR;
    spec.sender = "s@example.org";
    spec.delivered_to = "d@example.org";
    ws.out = str_new(STR_MAX_DEFAULT);
    ws.calls = 0;
    unit_assert(lseek(fd, 3, SEEK_SET) == 3);
    unit_assert(content_copy(&msg, &spec, walk_sink_write, &ws, &size, &err) == 0);
    unit_assert(str_len(ws.out) == str_len(want));
    unit_assert(memcmp(str_cstr(ws.out), str_cstr(want), str_len(want)) == 0);
    unit_assert(size == (off_t) str_len(want));
    unit_assert_inteq(ws.calls, 1);		/* the whole message in one write */
    unit_assert(lseek(fd, 0, SEEK_CUR) == 3);	/* the file offset is left alone */
    close(fd);
    unit_end();

    unit_begin("content_walk: corrupt content is refused with a reason");
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
	str_reset(img);
	walk_rec(img, QF_REC_MESSAGE, "", 0);
	str_append_or_panic(img, bad[k].img, bad[k].img_len);
	fd = walk_file(str_cstr(p), img);
	msg.fd = fd;
	str_reset(ws.out);
	err = "";
	unit_assert_idx(content_copy(&msg, &spec, walk_sink_write, &ws, &size, &err) < 0, k);
	unit_assert_idx(err != NULL && strstr(err, bad[k].want_error) != NULL, k);
	close(fd);
    }
    /* no M record where the content should start */
    str_reset(img);
    walk_rec(img, QF_REC_LINE, "x", 1);
    walk_rec(img, QF_REC_XEND, "", 0);
    fd = walk_file(str_cstr(p), img);
    msg.fd = fd;
    unit_assert(content_copy(&msg, &spec, walk_sink_write, &ws, &size, &err) < 0);
    unit_assert(err != NULL && strstr(err, "M record") != NULL);
    close(fd);
    unit_end();

    /* audit issue 7: a record written before records lost their line
     * feeds must not forge an mbox message either */
    unit_begin("content_copy: >From quoting of every output line, LF inside a record too");
    str_reset(img);
    walk_rec(img, QF_REC_MESSAGE, "", 0);
    walk_rec(img, QF_REC_LINE, "a\nFrom evil Thu Jan  1 00:00:00 2026\nFrom: x", 44);
    walk_rec(img, QF_REC_CONT, "b\nFrom ", 7);
    walk_rec(img, QF_REC_LINE, "c", 1);
    walk_rec(img, QF_REC_XEND, "", 0);
    walk_rec(img, QF_REC_END, "", 0);
    fd = walk_file(str_cstr(p), img);
    msg.fd = fd;
    spec.flags = COPY_QUOTE;
    str_reset(ws.out);
    unit_assert(content_copy(&msg, &spec, walk_sink_write, &ws, &size, &err) == 0);
    unit_assert_streq(str_cstr(ws.out), "a\n>From evil Thu Jan  1 00:00:00 2026\nFrom: x\n"
		      "b\n>From c\n");
    close(fd);
    unit_end();

    str_free(&ws.out);
    str_free(&img);
    str_free(&want);
    str_free(&p);
    str_free(&big);
}

/* ---- the worker protocol */

/* test_worker_codec - jobs and results survive encoding; anything else is refused */
static void test_worker_codec(void)
{
    struct str *buf = str_new(STR_MAX_DEFAULT), *payload = str_new(1024);
    struct ipc_list list;
    struct ld_job job, got;
    struct ld_msg msg, gmsg;
    struct ld_result res, gres;
    const char *err;
    static const struct {
	enum ld_job_kind kind;
	const char *path;
	int flags;
	bool needs_msg;
    } jobs[] = {
	{LD_JOB_MAILDIR, "/var/vmail/example.test/alice/", COPY_MAILDIR, true},
	{LD_JOB_MBOX, "/var/mail/bob", COPY_MBOX, true},
	{LD_JOB_FILE, "/srv/archive", COPY_MBOX, true},
	{LD_JOB_FORWARD_FILE, "/home/carol", 0, false},
	{LD_JOB_INCLUDE_FILE, "/etc/mail/list", 0, false},
	{LD_JOB_USAGE, "/var/vmail/x/", 0, false},
    };
    /* one attribute of a good job replaced: attribute index, new value */
    static const struct {
	size_t idx;
	const char *value;
    } bad[] = {
	{0, "3 0 0 0 0 0 0 0 0"},	/* a command: never a worker's job */
	{0, "0 0 0 0 0 0 0 0 0"}, {0, "99 0 0 0 0 0 0 0 0"},
	{0, "1 0 64 0 0 0 0 0 0"},	/* copy flags out of range */
	{0, "1 0 0 0 0 16 0 0 0"},	/* mbox flags out of range */
	{0, "1 0 0 0 0 0 0 0 4294967295"},	/* uid */
	{0, "1 -1 0 0 0 0 0 0 0"}, {0, "1 +1 0 0 0 0 0 0 0"}, {0, "1 01 0 0 0 0 0 0 0"},
	{0, "1 0 0 0 0 0 0 0"}, {0, "1 0 0 0 0 0 0 0 0 0"}, {0, "1  0 0 0 0 0 0 0 0"},
	{0, "1 0 0 0 0 0 0 0 0 "}, {0, " 1 0 0 0 0 0 0 0 0"}, {0, "1 0 0 0 0 0 0 0 x"},
	{0, "1 99999999999999999999 0 0 0 0 0 0 0"}, {0, ""},
	{1, ""},			/* empty path */
    };
    size_t i, j;

    ipc_list_init(&list);
    unit_begin("worker protocol: jobs survive encoding, strictly decoded");
    memset(&msg, 0, sizeof(msg));
    msg.fd = 7;
    msg.queue_id = "4ABCDEFabcd1234";
    msg.data_offset = 123;
    msg.sender = "sender@example.org";
    for (i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
	memset(&job, 0, sizeof(job));
	job.kind = jobs[i].kind;
	job.msg = jobs[i].needs_msg ? &msg : NULL;
	job.path = jobs[i].path;
	job.spec.flags = jobs[i].flags;
	job.spec.sender = "sender@example.org";
	job.spec.delivered_to = "alice@example.test";
	job.spec.now = 1700000000;
	job.quota = 5000;
	job.mbox.create = true;
	job.mbox.check_owner = i % 2 == 0;
	job.mbox.dotlock_required = i % 2 == 1;
	job.mbox.size_limit = 51200000;
	job.mbox.quota = 77;
	job.uid = 1234;
	unit_assert_idx(ld_job_needs_msg(job.kind) == jobs[i].needs_msg, i);
	ld_worker_encode_job(buf, &job);
	unit_assert_idx(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err)
			== (long) str_len(buf), i);
	unit_assert_idx(ld_worker_decode_job(&list, &got, &gmsg, &err) == 0, i);
	unit_assert_idx(got.kind == job.kind, i);
	unit_assert_idx((got.msg != NULL) == jobs[i].needs_msg, i);
	unit_assert_idx(gmsg.fd == -1, i);
	if (jobs[i].needs_msg) {
	    unit_assert_idx(gmsg.data_offset == 123, i);
	    unit_assert_streq_idx(gmsg.sender, msg.sender, i);
	}
	unit_assert_streq_idx(got.path, job.path, i);
	unit_assert_idx(got.spec.flags == job.spec.flags, i);
	unit_assert_streq_idx(got.spec.sender, "sender@example.org", i);
	unit_assert_streq_idx(got.spec.delivered_to, "alice@example.test", i);
	unit_assert_idx(got.spec.now == 1700000000, i);
	unit_assert_idx(got.quota == 5000, i);
	unit_assert_idx(got.mbox.create && !got.mbox.create_parent, i);
	unit_assert_idx(got.mbox.check_owner == job.mbox.check_owner, i);
	unit_assert_idx(got.mbox.dotlock_required == job.mbox.dotlock_required, i);
	unit_assert_idx(got.mbox.size_limit == 51200000 && got.mbox.quota == 77, i);
	unit_assert_idx(got.uid == 1234, i);
    }
    unit_end();

    unit_begin("worker protocol: malformed jobs are refused");
    /* job is the last one (USAGE) */
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
	ld_worker_encode_job(buf, &job);
	unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
	mem_free(&list.attrs[bad[i].idx].value);
	list.attrs[bad[i].idx].value = mem_strdup(bad[i].value);
	list.attrs[bad[i].idx].len = strlen(bad[i].value);
	unit_assert_idx(ld_worker_decode_job(&list, &got, &gmsg, &err) < 0, i);
    }
    /* a missing, an extra, a renamed attribute; two swapped; a NUL */
    ld_worker_encode_job(buf, &job);
    unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
    list.count--;
    unit_assert(ld_worker_decode_job(&list, &got, &gmsg, &err) < 0);
    list.count++;
    ipc_list_add(&list, "extra", "1", 1);
    unit_assert(ld_worker_decode_job(&list, &got, &gmsg, &err) < 0);
    unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
    list.attrs[2].name[0] = 'x';
    unit_assert(ld_worker_decode_job(&list, &got, &gmsg, &err) < 0);
    unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
    {
	struct ipc_attr tmp = list.attrs[2];

	list.attrs[2] = list.attrs[3];
	list.attrs[3] = tmp;
    }
    unit_assert(ld_worker_decode_job(&list, &got, &gmsg, &err) < 0);
    unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
    list.attrs[1].value[2] = 0;
    unit_assert(ld_worker_decode_job(&list, &got, &gmsg, &err) < 0);
    unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
    unit_assert(ld_worker_decode_job(&list, &got, &gmsg, &err) == 0);
    unit_end();

    unit_begin("worker protocol: results, with and without payload");
    for (j = 0; j < 3; j++) {
	ld_result_init(&res);
	ld_result_set(&res, (int) j, j == 0 ? "2.0.0" : j == 1 ? "5.2.2" : "4.3.0",
		      "reason %zu", j);
	str_set_or_panic(payload, j == 1 ? "" : "payload\nwith\0nul");
	if (j == 2)
	    str_append_or_panic(payload, "\0x", 2);
	ld_worker_encode_result(buf, &res, payload);
	unit_assert_idx(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err)
			== (long) str_len(buf), j);
	ld_result_init(&gres);
	str_reset(payload);
	unit_assert_idx(ld_worker_decode_result(&list, &gres, payload, &err) == 0, j);
	unit_assert_idx(gres.status == (int) j, j);
	unit_assert_streq_idx(gres.dsn, res.dsn, j);
	unit_assert_streq_idx(gres.reason, res.reason, j);
	unit_assert_idx(gres.sent_count == res.sent_count, j);
	unit_assert_idx(str_len(payload) == (j == 1 ? 0 : j == 0 ? 12 : 14), j);
    }
    /* nonsense: a status out of range, an empty dsn, a payload nobody wants */
    ld_result_set(&res, LD_SENT, "2.0.0", "ok");
    str_set_or_panic(payload, "x");
    ld_worker_encode_result(buf, &res, payload);
    unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
    unit_assert(ld_worker_decode_result(&list, &gres, NULL, &err) < 0);
    for (j = 0; j < 4; j++) {
	static const char *const bad_results[] = {"3 1", "0", "0 1 1", "-1 0"};

	mem_free(&list.attrs[0].value);
	list.attrs[0].value = mem_strdup(bad_results[j]);
	list.attrs[0].len = strlen(bad_results[j]);
	unit_assert_idx(ld_worker_decode_result(&list, &gres, payload, &err) < 0, j);
    }
    str_reset(payload);
    ld_worker_encode_result(buf, &res, payload);
    unit_assert(ipc_decode_list(str_cstr(buf), str_len(buf), &list, &err) > 0);
    list.attrs[1].len = 0;
    list.attrs[1].value[0] = 0;
    unit_assert(ld_worker_decode_result(&list, &gres, payload, &err) < 0);
    unit_end();

    ipc_list_fini(&list);
    str_free(&buf);
    str_free(&payload);
}

/* worker_pid_of - the P<pid> of the one file in dir/new that is not in seen */
static long worker_pid_of(const char *dir, struct str *seen)
{
    struct str *p = str_new(4096);
    struct dirent *de;
    const char *cp;
    long pid = -1;
    DIR *d;

    str_printf_or_panic(p, "%s/new", dir);
    if ((d = opendir(str_cstr(p))) == NULL) {
	str_free(&p);
	return -1;
    }
    while ((de = readdir(d)) != NULL) {
	if (de->d_name[0] == '.' || strstr(str_cstr(seen), de->d_name) != NULL)
	    continue;
	str_appendf_or_panic(seen, "%s\n", de->d_name);
	if ((cp = strchr(de->d_name, 'P')) != NULL)
	    pid = strtol(cp + 1, NULL, 10);
	str_printf_or_panic(p, "%s/new/%s", dir, de->d_name);
    }
    closedir(d);
    str_free(&p);
    return pid;
}

/* proc_ids_are - /proc/pid/status: all four uids and gids are these */
static bool proc_ids_are(long pid, uid_t uid, gid_t gid)
{
    struct str *p = str_new(256), *text = str_new(65536), *want = str_new(256);
    const char *err, *gl;
    bool ok;

    str_printf_or_panic(p, "/proc/%ld/status", pid);
    ok = read_file(str_cstr(p), text, 65536, &err) == 0;
    str_printf_or_panic(want, "\nUid:\t%ld\t%ld\t%ld\t%ld\n", (long) uid, (long) uid, (long) uid, (long) uid);
    ok = ok && strstr(str_cstr(text), str_cstr(want)) != NULL;
    str_printf_or_panic(want, "\nGid:\t%ld\t%ld\t%ld\t%ld\n", (long) gid, (long) gid, (long) gid, (long) gid);
    ok = ok && strstr(str_cstr(text), str_cstr(want)) != NULL;
    /* no supplementary groups: nothing but white space on that line */
    if (ok && (gl = strstr(str_cstr(text), "\nGroups:")) != NULL) {
	for (gl += 8; *gl == ' ' || *gl == '\t'; gl++)
	     /* void */ ;
	ok = *gl == '\n';
    } else {
	ok = false;
    }
    str_free(&p);
    str_free(&text);
    str_free(&want);
    return ok;
}

/* test_workers - real workers (root only): one process per user, reused,
 * dropped; a killed idle worker is replaced; one killed during a job
 * makes the job defer */
/* ---- forward_path and extension propagation */

struct fp_case {
    const char *tmpl;
    int rc;
    const char *want;		/* rc 1: the path */
    unsigned used;
};

static const struct fp_case fp_cases[] = {
    {"$home/.forward", 1, "/home/carol/.forward", 1u << 0},
    {"$home/.forward${recipient_delimiter}${extension}", 1, "/home/carol/.forward+lists",
     (1u << 0) | (1u << 2) | (1u << 3)},
    {"$(home)/x/$user", 1, "/home/carol/x/carol", (1u << 0) | (1u << 1)},
    {"/var/forward/$domain/$local", 1, "/var/forward/example.org/carol+lists",
     (1u << 4) | (1u << 5)},
    {"$home/.f${extension?-$extension}", 1, "/home/carol/.f-lists", (1u << 0) | (1u << 2)},
    {"$home/.f${extension:-none}", 1, "/home/carol/.f", 1u << 0},
    {"$home/${home_mailbox:empty}${home_mailbox?no}", 1, "/home/carol/empty", 1u << 0},
    {"$home/$$x$", 1, "/home/carol/$x$", 1u << 0},
    {"$home/$myhostname", 1, "/home/carol/mx.example.test", 1u << 0},	/* main.cf */
    {"$home/.forward$home_mailbox", 0, NULL, 0},	/* a plain name without a value */
    {"${home_mailbox}", 0, NULL, 0},
    {"$home/$nothing", -1, NULL, 0},		/* unknown: an error, not "empty" */
    {".forward", 0, NULL, 0},			/* relative */
    {"$user/.forward", 0, NULL, 0},
    {"$home/${unknown_name_x}", -1, NULL, 0},
    {"$home/${extension", -1, NULL, 0},
    {"$home/${ext-ension}", -1, NULL, 0},
    {"$home/${extension?${extension?${extension?${extension?${extension?${extension?"
     "${extension?${extension?${extension?${extension?x}}}}}}}}}}", -1, NULL, 0},
};

/* fp_attrs - sample attributes for an address */
static void fp_attrs(struct fp_attr *a, const char *ext, const char *domain, const char *local)
{
    a[0] = (struct fp_attr) {"home", "/home/carol", false};
    a[1] = (struct fp_attr) {"user", "carol", false};
    a[2] = (struct fp_attr) {"extension", ext, true};
    a[3] = (struct fp_attr) {"recipient_delimiter", *ext ? "+" : "", false};
    a[4] = (struct fp_attr) {"domain", domain, true};
    a[5] = (struct fp_attr) {"local", local, true};
}

static void test_forward_path(const char *tmpdir)
{
    struct str *out = str_new(FP_PATH_MAX), *paths = str_new(FP_CANDIDATES_MAX * FP_PATH_MAX);
    struct str *text = str_new(65536), *p = str_new(4096), *list = str_new(8192);
    struct fp_attr a[6];
    unsigned used, usedv[FP_CANDIDATES_MAX];
    const char *err;
    size_t i, count, found;
    int rc, fd;

    unit_begin("forward_path: expansion of one element");
    fp_attrs(a, "lists", "example.org", "carol+lists");
    for (i = 0; i < sizeof(fp_cases) / sizeof(fp_cases[0]); i++) {
	used = 99;
	err = NULL;
	rc = forward_path_expand(fp_cases[i].tmpl, strlen(fp_cases[i].tmpl), a, 6, out, &used,
				 &err);
	unit_assert_idx(rc == fp_cases[i].rc, i);
	if (rc == 1) {
	    unit_assert_streq_idx(str_cstr(out), fp_cases[i].want, i);
	    unit_assert_idx(used == fp_cases[i].used, i);
	}
	if (rc < 0)
	    unit_assert_idx(err != NULL && *err, i);
    }
    unit_end();

    unit_begin("forward_path: address text never makes a path leave its place");
    {
	static const char *const bad[] = {"a/b", "..", ".", "x\ny", "/etc/passwd"};

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
	    fp_attrs(a, bad[i], bad[i], bad[i]);
	    unit_assert_idx(forward_path_expand("$home/.forward+$extension", 25, a, 6, out,
						&used, &err) == 0, i);
	    unit_assert_idx(forward_path_expand("$home/$domain", 13, a, 6, out, &used, &err)
			    == 0, i);
	    unit_assert_idx(forward_path_expand("$home/$local", 12, a, 6, out, &used, &err)
			    == 0, i);
	}
	/* a dot inside a name is fine */
	fp_attrs(a, "a.b", "example.org", "carol+a.b");
	unit_assert(forward_path_expand("$home/.forward+$extension", 25, a, 6, out, &used,
					&err) == 1);
	unit_assert_streq(str_cstr(out), "/home/carol/.forward+a.b");
    }
    unit_end();

    unit_begin("forward_path: the default list, with and without an extension");
    fp_attrs(a, "lists", "example.org", "carol+lists");
    unit_assert(forward_path_candidates("$home/.forward${recipient_delimiter}${extension}, "
					"$home/.forward", a, 6, paths, usedv, FP_CANDIDATES_MAX,
					&count, &err) == 0);
    unit_assert_inteq(count, 2);
    unit_assert_streq(str_cstr(paths), "/home/carol/.forward+lists\n/home/carol/.forward");
    unit_assert((usedv[0] & (1u << 2)) && !(usedv[1] & (1u << 2)));
    fp_attrs(a, "", "example.org", "carol");
    unit_assert(forward_path_candidates("$home/.forward${recipient_delimiter}${extension}, "
					"$home/.forward", a, 6, paths, usedv, FP_CANDIDATES_MAX,
					&count, &err) == 0);
    unit_assert_inteq(count, 1);
    unit_assert_streq(str_cstr(paths), "/home/carol/.forward");
    /* brackets keep separators inside them */
    unit_assert(forward_path_candidates("${extension:$home/a $home/b}\t$home/c", a, 6, paths,
					usedv, FP_CANDIDATES_MAX, &count, &err) == 0);
    unit_assert_streq(str_cstr(paths), "/home/carol/a /home/carol/b\n/home/carol/c");
    unit_assert(forward_path_candidates("$home/x, ${bad", a, 6, paths, usedv,
					FP_CANDIDATES_MAX, &count, &err) < 0);
    str_reset(list);
    for (i = 0; i <= FP_CANDIDATES_MAX; i++)
	str_appends_or_panic(list, "$home/f ");
    unit_assert(forward_path_candidates(str_cstr(list), a, 6, paths, usedv, FP_CANDIDATES_MAX,
					&count, &err) < 0);
    unit_end();

    unit_begin("forward_read: the first candidate that exists, each one checked");
    str_printf_or_panic(p, "%s/fwd-b", tmpdir);
    fd = open(str_cstr(p), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    unit_assert(fd >= 0 && write(fd, "bob@example.org\n", 16) == 16);
    (void) close(fd);
    (void) chmod(str_cstr(p), 0644);
    str_printf_or_panic(p, "%s/fwd-c", tmpdir);
    fd = open(str_cstr(p), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    unit_assert(fd >= 0 && write(fd, "carol\n", 6) == 6);
    (void) close(fd);
    str_printf_or_panic(list, "%s/fwd-a\n%s/fwd-b\n%s/fwd-c", tmpdir, tmpdir, tmpdir);
    found = 99;
    unit_assert(forward_read(str_cstr(list), getuid(), text, &found, &err) == 1);
    unit_assert_inteq(found, 1);
    unit_assert_streq(str_cstr(text), "bob@example.org\n");
    str_printf_or_panic(list, "%s/fwd-a\n%s/fwd-x", tmpdir, tmpdir);
    unit_assert(forward_read(str_cstr(list), getuid(), text, &found, &err) == 0);
    /* an unsafe candidate stops the search: it is not skipped */
    str_printf_or_panic(p, "%s/fwd-b", tmpdir);
    (void) chmod(str_cstr(p), 0664);
    str_printf_or_panic(list, "%s/fwd-a\n%s/fwd-b\n%s/fwd-c", tmpdir, tmpdir, tmpdir);
    unit_assert(forward_read(str_cstr(list), getuid(), text, &found, &err) < 0);
    unit_assert(strstr(err, "writable") != NULL);
    (void) chmod(str_cstr(p), 0644);
    unit_assert(forward_read(str_cstr(list), getuid() + 1, text, &found, &err)
		== (getuid() == 0 ? 1 : -1));
    str_printf_or_panic(list, "%s/fwd-a\nrelative", tmpdir);
    unit_assert(forward_read(str_cstr(list), getuid(), text, &found, &err) < 0);
    unit_end();

    str_free(&out);
    str_free(&paths);
    str_free(&text);
    str_free(&p);
    str_free(&list);
}

struct prop_case {
    const char *address;
    const char *suffix;
    bool done;
    const char *want;
};

static const struct prop_case prop_cases[] = {
    {"alice@example.test", "+x", true, "alice+x@example.test"},
    {"alice", "+x", true, "alice+x"},
    {"a@b@example.test", "+x", true, "a@b+x@example.test"},
    {"alice+own@example.test", "+x", false, "alice+own@example.test"},
    {"alice@example.test", "", false, "alice@example.test"},
    {"@example.test", "+x", false, "@example.test"},
};

static void test_propagate(void)
{
    struct str *out = str_new(1024);
    size_t i;

    unit_begin("extension propagation: +ext goes before the @, once");
    for (i = 0; i < sizeof(prop_cases) / sizeof(prop_cases[0]); i++) {
	unit_assert_idx(ld_propagate_extension(prop_cases[i].address, prop_cases[i].suffix, out)
			== prop_cases[i].done, i);
	unit_assert_streq_idx(str_cstr(out), prop_cases[i].want, i);
    }
    unit_assert_inteq(ld_propagate_classes("alias, forward, include"),
		      LD_CLASS_ALIAS | LD_CLASS_FORWARD | LD_CLASS_INCLUDE);
    unit_assert_inteq(ld_propagate_classes("canonical, virtual, alias, forward, include"),
		      LD_CLASS_ALIAS | LD_CLASS_FORWARD | LD_CLASS_INCLUDE);
    unit_assert_inteq(ld_propagate_classes("none"), 0);
    unit_assert_inteq(ld_propagate_classes("include"), LD_CLASS_INCLUDE);
    unit_assert_inteq(ld_propagate_classes("alias, mailbox"), -1);
    unit_end();
    str_free(&out);
}

/* Group commit of new/: shared between the forked deliverers. */
#define GC_PROCS	4
#define GC_EACH		8
#define GC_FAIL_AT	4	/* the 4th fsync of new/ fails (EIO) */

struct gc_shared {
    long clock;				/* events, in order */
    long dir_syncs;			/* fsync(new/) calls */
    long failed_at;			/* clock at the start of the failed one */
    struct {
	long start, end;		/* clock at the start and end */
	int ok;
    } sync[GC_PROCS * GC_EACH * 2];
    struct {
	long start, end;		/* around maildir_deliver */
	int status;
    } dl[GC_PROCS * GC_EACH];
};
static struct gc_shared *gc;

/* gc_fsync - files: fsync; new/: logged, slow (so that deliveries
 * meet), the GC_FAIL_AT-th one fails with EIO after its sleep */
static int gc_fsync(int fd)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 15 * 1000 * 1000};
    struct stat st;
    long i, start;

    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))
	return fsync(fd);
    i = __atomic_fetch_add(&gc->dir_syncs, 1, __ATOMIC_SEQ_CST);
    start = __atomic_add_fetch(&gc->clock, 1, __ATOMIC_SEQ_CST);
    nanosleep(&ts, NULL);
    if (i + 1 == GC_FAIL_AT) {
	gc->failed_at = start;
	errno = EIO;
	return -1;
    }
    if (fsync(fd) < 0)
	return -1;
    if (i < (long) (sizeof(gc->sync) / sizeof(gc->sync[0]))) {
	gc->sync[i].start = start;
	gc->sync[i].ok = 1;
	gc->sync[i].end = __atomic_add_fetch(&gc->clock, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

static void test_group_commit(const char *tmpdir)
{
    struct str *p = str_new(4096), *md = str_new(4096);
    struct ld_msg msg;
    struct copy_spec spec;
    struct ld_result res;
    struct stat st;
    off_t off;
    long sent = 0, deferred = 0, covered_ok = 0;
    pid_t kids[GC_PROCS];

    unit_begin("maildir group commit: concurrent deliveries, one failed fsync of new/");
    gc = mmap(NULL, sizeof(*gc), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unit_assert(gc != MAP_FAILED);
    memset(gc, 0, sizeof(*gc));
    str_printf_or_panic(p, "%s/gcqf", tmpdir);
    memset(&msg, 0, sizeof(msg));
    msg.fd = make_queue_file(str_cstr(p), test_lines, &off);
    msg.data_offset = off;
    msg.sender = "sender@example.org";
    spec.flags = COPY_MAILDIR;
    spec.sender = msg.sender;
    spec.delivered_to = "gc@example.test";
    spec.now = 0;
    str_printf_or_panic(md, "%s/GCMaildir/", tmpdir);
    ld_result_init(&res);
    maildir_deliver(str_cstr(md), true, 0, &msg, &spec, &res, NULL);	/* makes it */
    unit_assert(res.status == LD_SENT);
    gc->dir_syncs = 0;
    for (int k = 0; k < GC_PROCS; k++) {
	if ((kids[k] = fork()) == 0) {
	    maildir_set_fsync(gc_fsync);
	    for (int j = 0; j < GC_EACH; j++) {
		int n = k * GC_EACH + j;

		gc->dl[n].start = __atomic_add_fetch(&gc->clock, 1, __ATOMIC_SEQ_CST);
		ld_result_init(&res);
		maildir_deliver(str_cstr(md), false, 0, &msg, &spec, &res, NULL);
		gc->dl[n].end = __atomic_add_fetch(&gc->clock, 1, __ATOMIC_SEQ_CST);
		gc->dl[n].status = res.status;
	    }
	    _exit(0);
	}
    }
    for (int k = 0; k < GC_PROCS; k++) {
	int status;

	unit_assert(kids[k] > 0 && waitpid(kids[k], &status, 0) == kids[k]
		    && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int n = 0; n < GC_PROCS * GC_EACH; n++) {
	if (gc->dl[n].status == LD_SENT) {
	    sent++;
	    /* reported only after an fsync of new/ that started after this
	     * delivery began and succeeded before it returned */
	    for (long i = 0; i < gc->dir_syncs && i < (long) (sizeof(gc->sync) / sizeof(gc->sync[0])); i++)
		if (gc->sync[i].ok && gc->sync[i].start > gc->dl[n].start
		    && gc->sync[i].end < gc->dl[n].end) {
		    covered_ok++;
		    break;
		}
	} else if (gc->dl[n].status == LD_DEFER) {
	    deferred++;
	}
    }
    unit_assert_inteq(sent + deferred, GC_PROCS * GC_EACH);
    unit_assert_inteq(covered_ok, sent);
    unit_assert(deferred >= 1);			/* the failed fsync's own delivery */
    unit_assert(gc->failed_at > 0);
    /* every delivery reported sent is in new/, no deferred one is (the
     * retry's copy will be the only one), nothing is left in tmp/ */
    str_printf_or_panic(p, "%s/GCMaildir/new", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), sent + 1);
    str_printf_or_panic(p, "%s/GCMaildir/tmp", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 0);
    /* fewer fsyncs of new/ than deliveries: they were shared */
    unit_assert(gc->dir_syncs < GC_PROCS * GC_EACH);
    printf("  group commit: %d deliveries, %ld fsyncs of new/, %ld sent, %ld deferred\n",
	   GC_PROCS * GC_EACH, gc->dir_syncs, sent, deferred);
    /* the state file: the owner's, 0600 */
    str_printf_or_panic(p, "%s/GCMaildir/.posthorn-sync", tmpdir);
    unit_assert(stat(str_cstr(p), &st) == 0 && (st.st_mode & 0777) == 0600);
    unit_end();

    unit_begin("maildir group commit: a state file others could write is not used");
    str_printf_or_panic(md, "%s/GCOpen/", tmpdir);
    ld_result_init(&res);
    maildir_deliver(str_cstr(md), true, 0, &msg, &spec, &res, NULL);
    unit_assert(res.status == LD_SENT);
    str_printf_or_panic(p, "%s/GCOpen/.posthorn-sync", tmpdir);
    unit_assert(chmod(str_cstr(p), 0644) == 0);
    if (fork() == 0) {			/* a fresh process: no cached state */
	gc->dir_syncs = 0;
	maildir_set_fsync(gc_fsync);
	ld_result_init(&res);
	maildir_deliver(str_cstr(md), false, 0, &msg, &spec, &res, NULL);
	_exit(res.status == LD_SENT && gc->dir_syncs == 1 ? 0 : 1);
    } else {
	int status;

	unit_assert(wait(&status) > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    str_printf_or_panic(p, "%s/GCOpen/new", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 2);
    unit_end();
    (void) close(msg.fd);
    (void) munmap(gc, sizeof(*gc));
    str_free(&p);
    str_free(&md);
}

static void test_workers(const char *tmpdir)
{
    struct str *p = str_new(4096), *md = str_new(4096), *seen = str_new(65536);
    struct ld_msg msg;
    struct ld_job job;
    struct ld_result res;
    struct passwd *pw;
    off_t off;
    long pid, first;
    int i;
    pid_t killer;

    unit_begin("workers: one per user, reused, fully dropped, replaced when gone");
    if (!priv_is_root() || (pw = getpwnam("nobody")) == NULL || pw->pw_uid == 0) {
	/* not root: jobs run in this process, no worker is started */
	memset(&job, 0, sizeof(job));
	job.kind = LD_JOB_USAGE;
	job.path = tmpdir;
	ld_result_init(&res);
	ld_worker_run(getuid(), getgid(), (gid_t) -1, &job, &res, p);
	unit_assert(res.status == LD_SENT);
	unit_assert(ld_worker_count() == 0);
	unit_end();
	goto out;
    }
    chmod(tmpdir, 0755);
    str_printf_or_panic(p, "%s/wqf", tmpdir);
    memset(&msg, 0, sizeof(msg));
    msg.fd = make_queue_file(str_cstr(p), test_lines, &off);	/* root's 0600 file */
    msg.data_offset = off;
    msg.sender = "sender@example.org";
    msg.queue_id = "4ABCDEFabcd1234";
    str_printf_or_panic(p, "%s/vmail", tmpdir);
    unit_assert(mkdir(str_cstr(p), 0700) == 0);
    unit_assert(chown(str_cstr(p), pw->pw_uid, pw->pw_gid) == 0);
    str_printf_or_panic(md, "%s/vmail/alice", tmpdir);
    memset(&job, 0, sizeof(job));
    job.kind = LD_JOB_MAILDIR;
    job.msg = &msg;
    job.path = str_cstr(md);
    job.spec.flags = COPY_MAILDIR;
    job.spec.sender = msg.sender;
    job.spec.delivered_to = "alice@example.test";
    first = -1;
    for (i = 0; i < 3; i++) {
	ld_result_init(&res);
	ld_worker_run(pw->pw_uid, pw->pw_gid, (gid_t) -1, &job, &res, NULL);
	unit_assert_idx(res.status == LD_SENT, i);
	pid = worker_pid_of(str_cstr(md), seen);
	if (i == 0)
	    first = pid;
	unit_assert_idx(pid > 0 && pid == first && pid != (long) getpid(), i);
    }
    unit_assert(ld_worker_count() == 1);
    unit_assert(proc_ids_are(first, pw->pw_uid, pw->pw_gid));
    str_printf_or_panic(p, "%s/new", str_cstr(md));
    unit_assert(count_dir(str_cstr(p)) == 3);

    /* a worker that was killed while idle: the next job gets a new one */
    unit_assert(kill((pid_t) first, SIGKILL) == 0);
    usleep(100 * 1000);
    ld_result_init(&res);
    ld_worker_run(pw->pw_uid, pw->pw_gid, (gid_t) -1, &job, &res, NULL);
    unit_assert(res.status == LD_SENT);
    pid = worker_pid_of(str_cstr(md), seen);
    unit_assert(pid > 0 && pid != first);
    unit_assert(ld_worker_count() == 1);
    unit_end();

    unit_begin("workers: a worker killed during a job means defer, never sent");
    /* an mbox whose dotlock is held: the worker waits, and is killed */
    str_printf_or_panic(p, "%s/vmail/mbox.lock", tmpdir);
    i = open(str_cstr(p), O_CREAT | O_WRONLY, 0600);
    unit_assert(i >= 0);
    close(i);
    var_deliver_lock_attempts = 10;
    var_deliver_lock_delay = 1;
    str_printf_or_panic(p, "%s/vmail/mbox", tmpdir);
    job.kind = LD_JOB_MBOX;
    job.path = str_cstr(p);
    job.spec.flags = COPY_MBOX;
    job.mbox.create = true;
    killer = fork();
    if (killer == 0) {
	usleep(300 * 1000);
	kill((pid_t) pid, SIGKILL);
	_exit(0);
    }
    ld_result_init(&res);
    ld_worker_run(pw->pw_uid, pw->pw_gid, (gid_t) -1, &job, &res, NULL);
    waitpid(killer, NULL, 0);
    unit_assert(res.status == LD_DEFER);
    unit_assert_streq(res.dsn, "4.3.0");
    unit_assert(strstr(res.reason, "killed by signal 9") != NULL);
    unit_assert(ld_worker_count() == 0);
    unit_end();

    unit_begin("workers: gone after shutdown");
    job.kind = LD_JOB_USAGE;
    job.msg = NULL;
    job.path = str_cstr(md);
    ld_result_init(&res);
    str_reset(seen);
    ld_worker_run(pw->pw_uid, pw->pw_gid, (gid_t) -1, &job, &res, seen);
    unit_assert(res.status == LD_SENT);
    unit_assert(strtol(str_cstr(seen), NULL, 10) > 0);	/* bytes in the Maildir */
    unit_assert(ld_worker_count() == 1);
    ld_worker_shutdown();
    unit_assert(ld_worker_count() == 0);
    unit_end();

    close(msg.fd);
  out:
    str_free(&p);
    str_free(&md);
    str_free(&seen);
}

int main(void)
{
    char tmpl[] = "/tmp/test-local-delivery.XXXXXX";
    const char *err;
    char *tmpdir;
    struct str *cmd;

    /* as in the daemon (the server skeleton ignores it): a command that
     * closes its stdin early makes write(2) fail with EPIPE, which
     * command_deliver handles, instead of killing the test */
    (void) signal(SIGPIPE, SIG_IGN);
    config_init();
    config_set("myhostname", "mx.example.test");
    if (config_apply(&err) < 0)
	msg_fatal("config_apply: %s", err);

    test_alias_split();
    test_from_line();
    test_delivered_to();
    test_maildir_unique();
    test_quota();
    test_results();
    test_propagate();

    if ((tmpdir = mkdtemp(tmpl)) == NULL)
	msg_fatal("mkdtemp: %m");
    test_copies(tmpdir);
    test_content_walk(tmpdir);
    test_group_commit(tmpdir);
    test_worker_codec();
    test_forward_path(tmpdir);
    test_workers(tmpdir);
    cmd = str_new(4096);
    str_printf_or_panic(cmd, "rm -rf '%s'", tmpdir);
    if (system(str_cstr(cmd)) != 0)
	msg_warn("cannot remove %s", tmpdir);
    str_free(&cmd);
    return unit_done();
}
