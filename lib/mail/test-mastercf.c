/* test-mastercf.c - unit tests for mastercf.c (master.cf parsing and the
 * reload comparison). */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "msg.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "mastercf.h"

static const char good_file[] =
    "# posthorn master.cf\n"
    "#\n"
    "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
    "\n"
    "2525      inet  n       -       n       -       -       smtpd\n"		/* line 5 */
    "127.0.0.1:2587 inet n   -       y       -       10      smtpd\n"		/* 6 */
    "    -o smtpd_tls_security_level=encrypt\n"
    "  # a comment inside an entry\n"
    "\t-o smtpd_sasl_auth_enable=yes -o empty=\n"
    "[::1]:2465 inet n       -       n       -       0       smtpd -v\n"	/* 10 */
    "  -o { smtpd_banner = $myhostname ESMTP ready }\n"
    "*:2110    inet  n       -       n       -       -       pop3d-login\n"	/* 12 */
    "localhost:pop3s inet n  -       n       -       -       pop3d-login { a b }\n" /* 13 */
    "pickup    fifo  n       -       n       60      1       pickup\n"		/* 14 */
    "qmgr      unix  n       -       n       300?    1       qmgr\n"		/* 15 */
    "cleanup   unix  -       y       -       -       0       cleanup\n"		/* 16 */
    "local     unix  y       n       n       0       -       local-delivery";	/* 17, no newline */

struct error_case {
    const char *text;
    const char *error;		/* expected substring, starts with "master.cf:LINE:" */
};

#define GOOD "ok unix - - - - - ok\n"

static const struct error_case error_cases[] = {
    {GOOD "bad unix - - - - -\n", "master.cf:2: expected at least 8 fields"},
    {GOOD "ok2 unix - - - - - ok\n" "x tcp - - - - - cmd\n", "master.cf:3: service \"x\": unknown type \"tcp\""},
    {"x unix maybe - - - - cmd\n", "master.cf:1: private column: bad value \"maybe\""},
    {"x unix - Y - - - cmd\n", "master.cf:1: unpriv column: bad value \"Y\""},
    {"x fifo w - - - - cmd\n", "master.cf:1: fifo service \"x\": private column \"w\""},
    {"x unix - - yes - - cmd\n", "master.cf:1: chroot column: bad value \"yes\""},
    {"x unix - - - 1x - cmd\n", "master.cf:1: wakeup column: bad value \"1x\""},
    {"x unix - - - ? - cmd\n", "master.cf:1: wakeup column: bad value \"?\""},
    {"x unix - - - -5 - cmd\n", "master.cf:1: wakeup column: bad value \"-5\""},
    {"x unix - - - - ten cmd\n", "master.cf:1: maxproc column: bad value \"ten\""},
    {"x unix - - - - 1? cmd\n", "master.cf:1: maxproc column: bad value \"1?\""},
    {"x unix - - - - 99999999999999999999 cmd\n", "master.cf:1: maxproc column"},
    {"x unix - - - - - -\n", "master.cf:1: command column"},
    {"x pass - - - 60 - cmd\n", "master.cf:1: pass service \"x\": wakeup column must be 0 or -"},
    {"x unix - - - - - cmd\nx pass - - - - - cmd\n",
     "master.cf:2: service \"x\" type pass: the same private/x socket as type unix at line 1"},
    {"x fifo n - - - - cmd\nx unix n - - - - cmd\n",
     "master.cf:2: service \"x\" type unix: the same public/x socket as type fifo at line 1"},
    {"\n# c\n  x unix - - - - - cmd\n", "master.cf:3: continuation line without a preceding entry"},
    {GOOD "\n" GOOD, "master.cf:3: duplicate service \"ok\" type unix (first defined at line 1)"},
    {"a/b unix - - - - - cmd\n", "master.cf:1: unix service \"a/b\": bad name"},
    {"..  fifo - - - - - cmd\n", "master.cf:1: fifo service \"..\": bad name"},
    {"0 inet - - - - - cmd\n", "master.cf:1: inet service \"0\": bad port"},
    {"65536 inet - - - - - cmd\n", "master.cf:1: inet service \"65536\": bad port"},
    {"host: inet - - - - - cmd\n", "master.cf:1: inet service \"host:\": bad port"},
    {":25 inet - - - - - cmd\n", "master.cf:1: inet service \":25\": bad host"},
    {"::1:25 inet - - - - - cmd\n", "master.cf:1: inet service \"::1:25\": write an IPv6 address"},
    {"[::1]25 inet - - - - - cmd\n", "master.cf:1: inet service \"[::1]25\": expected [ipv6-address]:port"},
    {"[1.2.3.4]:25 inet - - - - - cmd\n", "master.cf:1: inet service \"[1.2.3.4]:25\": bad IPv6 address"},
    {"a$b:25 inet - - - - - cmd\n", "master.cf:1: inet service \"a$b:25\": bad host"},
    {"x unix - - - - - cmd -o\n", "master.cf:1: -o at the end of the line"},
    {"x unix - - - - - cmd\n  -o novalue\n", "master.cf:1: -o \"novalue\": expected name=value"},
    {"x unix - - - - - cmd -o =v\n", "master.cf:1: -o \"=v\": missing parameter name"},
    {"x unix - - - - - cmd -o a-b=v\n", "master.cf:1: -o \"a-b=v\": bad character"},
    {GOOD "x unix - - - - - cmd { a b\n", "master.cf:2: missing '}'"},
    {"x unix - - - - - cmd {a}b\n", "master.cf:1: text after '}'"},
    {"x unix { - } - - - - cmd\n", "master.cf:1: \"{ ... }\" is allowed only in command arguments"},
};

/* check_argv - compare argv with a '|'-joined expectation */
static bool check_argv(char **argv, size_t argc, const char *want)
{
    struct str *s = str_new(4096);
    bool ok;

    for (size_t i = 0; i < argc; i++) {
	if (i)
	    str_appendc_or_panic(s, '|');
	str_appends_or_panic(s, argv[i]);
    }
    ok = argv[argc] == NULL && strcmp(str_cstr(s), want) == 0;
    if (!ok)
	fprintf(stderr, "argv: got \"%s\", want \"%s\"\n", str_cstr(s), want);
    str_free(&s);
    return ok;
}

int main(void)
{
    struct mastercf *cf = NULL, *cf2 = NULL;
    const struct mastercf_entry *e;
    const char *err, *what;
    char dir[PATH_MAX], path[PATH_MAX];
    FILE *fp;

    unit_begin("a good file with every column form");
    unit_assert(mastercf_parse("master.cf", good_file, strlen(good_file), 100, &cf, &err) == 0);
    unit_assert_inteq(cf->count, 9);

    e = mastercf_find(cf, "2525", MASTERCF_INET);
    unit_assert(e != NULL && e == &cf->entries[0]);
    unit_assert_inteq(e->line, 5);
    unit_assert_streq(e->file, "master.cf");
    unit_assert(e->host == NULL);
    unit_assert_streq(e->port, "2525");
    unit_assert(!e->priv && e->unpriv && !e->chroot);
    unit_assert_inteq(e->wakeup, 0);
    unit_assert(!e->wakeup_if_used);
    unit_assert_inteq(e->maxproc, 100);
    unit_assert_streq(e->command, "smtpd");
    unit_assert(check_argv(e->argv.items, e->argv.count, "smtpd"));
    unit_assert_inteq(e->overrides.count, 0);

    e = mastercf_find(cf, "127.0.0.1:2587", MASTERCF_INET);
    unit_assert(e != NULL);
    unit_assert_inteq(e->line, 6);
    unit_assert_streq(e->host, "127.0.0.1");
    unit_assert_streq(e->port, "2587");
    unit_assert(e->chroot);
    unit_assert_inteq(e->maxproc, 10);
    unit_assert(check_argv(e->argv.items, e->argv.count, "smtpd|-o|smtpd_tls_security_level=encrypt|"
			   "-o|smtpd_sasl_auth_enable=yes|-o|empty="));
    unit_assert(check_argv(e->overrides.items, e->overrides.count,
			   "smtpd_tls_security_level=encrypt|smtpd_sasl_auth_enable=yes|empty="));

    e = mastercf_find(cf, "[::1]:2465", MASTERCF_INET);
    unit_assert(e != NULL);
    unit_assert_inteq(e->line, 10);
    unit_assert_streq(e->host, "::1");
    unit_assert_streq(e->port, "2465");
    unit_assert_inteq(e->maxproc, 0);
    unit_assert(check_argv(e->argv.items, e->argv.count, "smtpd|-v|-o|smtpd_banner = $myhostname ESMTP ready"));
    unit_assert(check_argv(e->overrides.items, e->overrides.count, "smtpd_banner=$myhostname ESMTP ready"));

    e = mastercf_find(cf, "*:2110", MASTERCF_INET);
    unit_assert(e != NULL);
    unit_assert_streq(e->host, "*");
    unit_assert_streq(e->port, "2110");

    e = mastercf_find(cf, "localhost:pop3s", MASTERCF_INET);
    unit_assert(e != NULL);
    unit_assert_streq(e->host, "localhost");
    unit_assert_streq(e->port, "pop3s");
    unit_assert(check_argv(e->argv.items, e->argv.count, "pop3d-login|a b"));

    e = mastercf_find(cf, "pickup", MASTERCF_FIFO);
    unit_assert(e != NULL);
    unit_assert(e->host == NULL && e->port == NULL);
    unit_assert_inteq(e->wakeup, 60);
    unit_assert(!e->wakeup_if_used);
    unit_assert_inteq(e->maxproc, 1);

    e = mastercf_find(cf, "qmgr", MASTERCF_UNIX);
    unit_assert(e != NULL);
    unit_assert_inteq(e->wakeup, 300);
    unit_assert(e->wakeup_if_used);

    e = mastercf_find(cf, "cleanup", MASTERCF_UNIX);
    unit_assert(e != NULL);
    unit_assert(e->priv && e->unpriv && !e->chroot);
    unit_assert_inteq(e->maxproc, 0);

    e = mastercf_find(cf, "local", MASTERCF_UNIX);
    unit_assert(e != NULL);
    unit_assert_inteq(e->line, 17);
    unit_assert(e->priv && !e->unpriv && !e->chroot);
    unit_assert_streq(e->command, "local-delivery");

    unit_assert(mastercf_find(cf, "local", MASTERCF_FIFO) == NULL);
    unit_assert(mastercf_find(cf, "nothere", MASTERCF_UNIX) == NULL);
    unit_assert_streq(mastercf_type_name(MASTERCF_FIFO), "fifo");
    unit_end();

    unit_begin("private w: a unix socket in submit/");
    {
	static const char dup[] = "submit unix w - n - - submit\nsubmit unix n - n - - x\n";
	static const char two[] = "submit unix w - n - - submit\nsubmit fifo n - n - - x\n";

	unit_assert(mastercf_parse("m", dup, strlen(dup), 100, &cf2, &err) < 0);
    unit_assert(strstr(err, "duplicate") != NULL);
	unit_assert(mastercf_parse("m", two, strlen(two), 100, &cf2, &err) == 0);
    }
    unit_assert(cf2->entries[0].world && !cf2->entries[0].priv);
    unit_assert_streq(mastercf_socket_dir(&cf2->entries[0]), "submit");
    unit_assert_streq(mastercf_socket_dir(&cf2->entries[1]), "public");
    mastercf_free(&cf2);
    unit_end();

    unit_begin("the same service name with another type is fine; empty file");
    unit_assert(mastercf_parse("m", "a unix - - - - - x\na fifo n - - - - x\n", 38, 5, &cf2, &err) == 0);
    unit_assert_inteq(cf2->count, 2);
    mastercf_free(&cf2);
    unit_assert(mastercf_parse("m", "a inet - - - - - x\na pass - - - 0 - x\n", 38, 5, &cf2, &err) == 0);
    unit_assert_inteq(cf2->count, 2);
    unit_assert(mastercf_find(cf2, "a", MASTERCF_PASS) != NULL);
    unit_assert_streq(mastercf_type_name(MASTERCF_PASS), "pass");
    mastercf_free(&cf2);
    unit_assert(cf2 == NULL);
    unit_assert(mastercf_parse("m", "# only comments\n\n", 17, 5, &cf2, &err) == 0);
    unit_assert_inteq(cf2->count, 0);
    mastercf_free(&cf2);
    mastercf_free(&cf2);			/* NULL is fine */
    unit_end();

    unit_begin("each kind of error, with its line number");
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
	const struct error_case *c = &error_cases[i];

	cf2 = NULL;
	err = NULL;
	unit_assert_idx(mastercf_parse("master.cf", c->text, strlen(c->text), 100, &cf2, &err) < 0, i);
	unit_assert_idx(cf2 == NULL, i);
	if (err == NULL || strstr(err, c->error) == NULL)
	    unit_fail_at(__FILE__, __LINE__, "case %zu: error \"%s\", want \"%s\"", i,
			 err ? err : "(null)", c->error);
    }
    unit_assert(mastercf_parse("master.cf", "a\0b", 3, 1, &cf2, &err) < 0);
    unit_assert(strstr(err, "NUL") != NULL);
    unit_end();

    unit_begin("compare entries for reload");
    {
	static const struct {
	    const char *line;
	    enum mastercf_cmp want;
	    const char *what;
	} cases[] = {
	    {"qmgr unix n - n 300? 1 qmgr\n", MASTERCF_CMP_IDENTICAL, NULL},
	    {"# moved\n\nqmgr   unix n - n 300? 1 qmgr\n", MASTERCF_CMP_IDENTICAL, NULL},
	    {"qmgr unix n - n 300 1 qmgr\n", MASTERCF_CMP_CHANGED, "wakeup"},
	    {"qmgr unix n - n 300? 2 qmgr\n", MASTERCF_CMP_CHANGED, "maxproc"},
	    {"qmgr unix n n n 300? 1 qmgr\n", MASTERCF_CMP_CHANGED, "unpriv"},
	    {"qmgr unix n - y 300? 1 qmgr\n", MASTERCF_CMP_CHANGED, "chroot"},
	    {"qmgr unix n - n 300? 1 qmgr2\n", MASTERCF_CMP_CHANGED, "command"},
	    {"qmgr unix n - n 300? 1 qmgr -v\n", MASTERCF_CMP_CHANGED, "args"},
	    {"qmgr unix y - n 300? 1 qmgr\n", MASTERCF_CMP_OTHER, "private"},
	    {"qmgr unix w - n 300? 1 qmgr\n", MASTERCF_CMP_OTHER, "private"},
	    {"qmgr fifo n - n 300? 1 qmgr\n", MASTERCF_CMP_OTHER, "type"},
	    {"qmgr2 unix n - n 300? 1 qmgr\n", MASTERCF_CMP_OTHER, "service"},
	};
	e = mastercf_find(cf, "qmgr", MASTERCF_UNIX);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	    unit_assert_idx(mastercf_parse("new", cases[i].line, strlen(cases[i].line), 100,
					   &cf2, &err) == 0, i);
	    unit_assert_idx(mastercf_compare(e, &cf2->entries[0], &what) == cases[i].want, i);
	    if (cases[i].what)
		unit_assert_streq_idx(what, cases[i].what, i);
	    else
		unit_assert_idx(what == NULL, i);
	    mastercf_free(&cf2);
	}
	unit_assert(mastercf_compare(&cf->entries[1], &cf->entries[1], NULL) == MASTERCF_CMP_IDENTICAL);
	unit_assert(mastercf_compare(&cf->entries[0], &cf->entries[1], NULL) == MASTERCF_CMP_OTHER);
    }
    mastercf_free(&cf);
    unit_end();

    unit_begin("load from a file; errors name the path");
    unit_assert(fmt_try_buf(dir, sizeof(dir), "test-mastercf.XXXXXX") && mkdtemp(dir) != NULL);
    unit_assert(fmt_try_buf(path, sizeof(path), "%s/master.cf", dir));
    unit_assert(mastercf_load(path, 100, &cf, &err) < 0);
    unit_assert(strstr(err, path) != NULL);
    fp = fopen(path, "w");
    unit_assert(fp != NULL);
    if (fp) {
	fputs(good_file, fp);
	fputs("\nbroken\n", fp);
	fclose(fp);
    }
    unit_assert(mastercf_load(path, 100, &cf, &err) < 0);
    {
	char want[PATH_MAX + 32];

	unit_assert(fmt_try_buf(want, sizeof(want), "%s:18: expected at least 8 fields", path));
	unit_assert(strncmp(err, want, strlen(want)) == 0);
    }
    fp = fopen(path, "w");
    if (fp) {
	fputs(good_file, fp);
	fclose(fp);
    }
    unit_assert(mastercf_load(path, 7, &cf, &err) == 0);
    unit_assert_inteq(cf->count, 9);
    unit_assert_inteq(cf->entries[0].maxproc, 7);
    unit_assert_streq(cf->entries[0].file, path);
    mastercf_free(&cf);
    (void) unlink(path);
    (void) rmdir(dir);
    unit_end();

    return unit_done();
}
