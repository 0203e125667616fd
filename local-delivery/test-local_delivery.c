/* test-local_delivery.c - unit tests for the pure parts of local-delivery
 * (target lists, From_ lines and >From quoting, Delivered-To parsing,
 * Maildir names, quota arithmetic and maildirsize, sysexits mapping,
 * result merging) and for the file-level pieces that need no privileges
 * (copying a queue file into a Maildir and an mbox, quotas, dotlocks). */

/* System library. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Base library. */
#include "mem.h"
#include "msg.h"
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
	    str_appendc(out, '|');
	str_appendf(out, "%c:%s", codes[list->v[i].type], list->v[i].text);
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
	    str_appends(many, "x,");
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
    content_from_line(s, "alice@example.org", t);
    unit_assert_streq(str_cstr(s), "From alice@example.org Thu Jan  1 00:00:00 1970\n");
    content_from_line(s, "", (time_t) 1700000000);
    unit_assert_streq(str_cstr(s), "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n");
    content_from_line(s, "a b\n@x", t);
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
    content_header_value(s, "a\r\nb\tc d", false);
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
    struct mbox_opts opts;
    const char *err;
    off_t off;
    long used;
    DIR *d;
    struct dirent *de;

    str_printf(p, "%s/qf", tmpdir);
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
    str_printf(md, "%s/Maildir/", tmpdir);
    spec.flags = COPY_MAILDIR;
    spec.sender = msg.sender;
    spec.delivered_to = "alice@example.test";
    spec.now = 0;
    ld_result_init(&res);
    maildir_deliver(str_cstr(md), true, 0, &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    unit_assert_streq(res.reason, "delivered to maildir");
    str_printf(p, "%s/Maildir/tmp", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 0);
    str_printf(p, "%s/Maildir/cur", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 0);
    str_printf(p, "%s/Maildir/new", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 1);
    d = opendir(str_cstr(p));
    while ((de = readdir(d)) != NULL) {
	if (de->d_name[0] == '.')
	    continue;
	str_printf(p, "%s/Maildir/new/%s", tmpdir, de->d_name);
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
    maildir_deliver(str_cstr(md), true, 100000, &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    str_printf(p, "%s/Maildir/maildirsize", tmpdir);
    unit_assert(read_file(str_cstr(p), data, 4096, &err) == 0);
    unit_assert(strncmp(str_cstr(data), "100000S\n", 8) == 0);
    unit_assert(quota_maildir_usage(str_cstr(md), 100000, &used, &err) == 0);
    unit_assert(used > 300 && used < 600);	/* two copies */
    ld_result_init(&res);
    maildir_deliver(str_cstr(md), true, used + 10, &msg, &spec, &res);
    unit_assert(res.status == LD_BOUNCE);
    unit_assert_streq(res.dsn, "5.2.2");
    str_printf(p, "%s/Maildir/new", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 2);
    str_printf(p, "%s/Maildir/tmp", tmpdir);
    unit_assert_inteq(count_dir(str_cstr(p)), 0);
    unit_end();

    unit_begin("mbox_deliver: From_ line, >From quoting, blank line, append");
    str_printf(p, "%s/mbox", tmpdir);
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
    str_printf(md, "%s/mbox.lock", tmpdir);
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
    str_printf(md, "%s/link", tmpdir);
    unit_assert(symlink(str_cstr(p), str_cstr(md)) == 0);
    ld_result_init(&res);
    mbox_deliver(str_cstr(md), &opts, &msg, &spec, &res);
    unit_assert(res.status == LD_DEFER);
    str_printf(md, "%s/exec", tmpdir);
    close(open(str_cstr(md), O_CREAT | O_WRONLY, 0700));
    ld_result_init(&res);
    mbox_deliver(str_cstr(md), &opts, &msg, &spec, &res);
    unit_assert(res.status == LD_BOUNCE);
    unit_end();

    unit_begin("mbox_dotlock: busy lock times out, stale lock is removed");
    {
	struct str *lock = str_new(4096);
	struct timespec old[2];

	str_printf(lock, "%s/mbox.lock", tmpdir);
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

    unit_begin("file_deliver: /dev/null and a Maildir path");
    ld_result_init(&res);
    file_deliver("/dev/null", &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    str_printf(md, "%s/archive/", tmpdir);
    ld_result_init(&res);
    file_deliver(str_cstr(md), &msg, &spec, &res);
    unit_assert(res.status == LD_SENT);
    str_printf(p, "%s/archive/new", tmpdir);
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
	str_printf(p, "%s/cmd.out", tmpdir);
	str_printf(cmd, "cat > '%s'; echo \"$SENDER|$RECIPIENT|$LOCAL|$DOMAIN|$EXTENSION|"
		   "$USER|$HOME|$PATH\" >> '%s'", str_cstr(p), str_cstr(p));
	ld_result_init(&res);
	command_deliver(str_cstr(cmd), &env, &msg, &spec, &res);
	unit_assert(res.status == LD_SENT);
	unit_assert(read_file(str_cstr(p), data, STR_MAX_DEFAULT, &err) == 0);
	unit_assert(strncmp(str_cstr(data), "From sender@example.org ", 24) == 0);
	unit_assert(strstr(str_cstr(data), "\nFrom the body\n") != NULL);	/* not quoted */
	str_printf(md, "sender@example.org|bob+tag@example.test|bob+tag|example.test|tag|"
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

int main(void)
{
    char tmpl[] = "/tmp/test-local-delivery.XXXXXX";
    const char *err;
    char *tmpdir;
    struct str *cmd;

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

    if ((tmpdir = mkdtemp(tmpl)) == NULL)
	msg_fatal("mkdtemp: %m");
    test_copies(tmpdir);
    cmd = str_new(4096);
    str_printf(cmd, "rm -rf '%s'", tmpdir);
    if (system(str_cstr(cmd)) != 0)
	msg_warn("cannot remove %s", tmpdir);
    str_free(&cmd);
    return unit_done();
}
