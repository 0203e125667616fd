/* test-smtpd_cmd.c - unit tests for the command table and parser
 * (smtpd_cmd.c), the reply table (smtpd_reply.c) and the printf-free
 * join (smtpd_text.c). */

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "str.h"
#include "unit.h"

#include "smtpd.h"

static const struct {
    const char *line;
    bool ok;
    const char *verb;
    const char *args;
} split_cases[] = {
    {"EHLO client.example", true, "EHLO", "client.example"},
    {"NOOP", true, "NOOP", ""},
    {"NOOP   ", true, "NOOP", ""},
    {"MAIL FROM:<a@b> SIZE=10", true, "MAIL", "FROM:<a@b> SIZE=10"},
    {"MAIL FROM: <a@b>  ", true, "MAIL", "FROM: <a@b>"},
    {"RCPT  TO:<x@y>", true, "RCPT", " TO:<x@y>"},	/* second space is part of args */
    {"", false, NULL, NULL},
    {" NOOP", false, NULL, NULL},
    {"QUIT\tx", true, "QUIT\tx", ""},			/* tab is not a separator */
};

static const struct {
    const char *verb;
    const char *name;			/* NULL: not found */
} find_cases[] = {
    {"ehlo", "EHLO"}, {"EhLo", "EHLO"}, {"HELO", "HELO"}, {"mail", "MAIL"},
    {"RCPT", "RCPT"}, {"DATA", "DATA"}, {"bdat", "BDAT"}, {"RSET", "RSET"},
    {"NOOP", "NOOP"}, {"QUIT", "QUIT"}, {"VRFY", "VRFY"}, {"HELP", "HELP"},
    {"EXPN", "EXPN"}, {"ETRN", "ETRN"}, {"TURN", "TURN"}, {"STARTTLS", "STARTTLS"},
    {"AUTH", "AUTH"}, {"GET", "GET"}, {"POST", "POST"}, {"CONNECT", "CONNECT"},
    {"EHL", NULL}, {"EHLOX", NULL}, {"MAIL:", NULL}, {"", NULL}, {"XCLIENT", NULL},
};

static const struct {
    const char *text;
    bool ok;
    int code;
    const char *enhanced;
    const char *rest;
} vrfy_cases[] = {
    {"252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery", true, 252, "2.5.2",
     "Cannot VRFY user, but will accept message and attempt delivery"},
    {"502 5.5.1 VRFY disabled", true, 502, "5.5.1", "VRFY disabled"},
    {"252 Maybe", true, 252, "", "Maybe"},
    {"252", true, 252, "", "Ok"},
    {"252 5.5.2 wrong class", false, 0, NULL, NULL},
    {"452 4.3.0 temporary", false, 0, NULL, NULL},
    {"25 x", false, 0, NULL, NULL},
    {"abc x", false, 0, NULL, NULL},
    {"252x y", false, 0, NULL, NULL},
    {"252 ok\tx", false, 0, NULL, NULL},
};

int main(void)
{
    size_t count;
    const struct smtpd_cmd *tab;
    const char *err;

    config_init();
    unit_assert(config_apply(&err) == 0);

    unit_begin("smtpd_cmd_split");
    for (size_t i = 0; i < sizeof(split_cases) / sizeof(split_cases[0]); i++) {
	const char *line = split_cases[i].line, *args = NULL;
	size_t vlen = 0, alen = 0;
	bool ok = smtpd_cmd_split(line, strlen(line), &vlen, &args, &alen);
	char verb[64], a[128];

	unit_assert_idx(ok == split_cases[i].ok, i);
	if (!ok || !split_cases[i].ok)
	    continue;
	fmt_buf_or_panic(verb, sizeof(verb), "%.*s", (int) vlen, line);
	fmt_buf_or_panic(a, sizeof(a), "%.*s", (int) alen, args);
	unit_assert_streq_idx(verb, split_cases[i].verb, i);
	unit_assert_streq_idx(a, split_cases[i].args, i);
    }
    unit_end();

    unit_begin("smtpd_cmd_find");
    for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++) {
	const struct smtpd_cmd *c = smtpd_cmd_find(find_cases[i].verb, strlen(find_cases[i].verb));

	if (find_cases[i].name == NULL)
	    unit_assert_idx(c == NULL, i);
	else {
	    unit_assert_idx(c != NULL, i);
	    if (c)
		unit_assert_streq_idx(c->name, find_cases[i].name, i);
	}
    }
    unit_end();

    unit_begin("command table flags");
    tab = smtpd_cmd_table(&count);
    unit_assert(count >= 20);
    for (size_t i = 0; i < count; i++) {
	const struct smtpd_cmd *c = &tab[i];

	/* names are upper-case words; each name once */
	for (const char *p = c->name; *p; p++)
	    unit_assert_idx(isupper((unsigned char) *p), i);
	unit_assert_idx(smtpd_cmd_find(c->name, strlen(c->name)) == c, i);
	/* a row has an action unless it is answered by the flags alone */
	unit_assert_idx((c->action != NULL) == !(c->flags & (SMTPD_CMD_UNIMPL | SMTPD_CMD_FORBIDDEN)), i);
    }
    /* RFC 2920: these end a pipelining group */
    {
	static const char *const enders[] = {"EHLO", "HELO", "DATA", "QUIT", "NOOP", "VRFY", "EXPN", "TURN"};

	for (size_t i = 0; i < sizeof(enders) / sizeof(enders[0]); i++)
	    unit_assert_idx(smtpd_cmd_find(enders[i], strlen(enders[i]))->flags & SMTPD_CMD_GROUP_END, i);
	unit_assert(!(smtpd_cmd_find("MAIL", 4)->flags & SMTPD_CMD_GROUP_END));
	unit_assert(!(smtpd_cmd_find("RCPT", 4)->flags & SMTPD_CMD_GROUP_END));
	unit_assert(!(smtpd_cmd_find("BDAT", 4)->flags & SMTPD_CMD_GROUP_END));
	unit_assert(!(smtpd_cmd_find("RSET", 4)->flags & SMTPD_CMD_GROUP_END));
    }
    /* what a client may do before TLS/AUTH once they are required */
    unit_assert(smtpd_cmd_find("EHLO", 4)->flags & SMTPD_CMD_PRE_TLS);
    unit_assert(smtpd_cmd_find("STARTTLS", 8)->flags & SMTPD_CMD_PRE_TLS);
    unit_assert(smtpd_cmd_find("QUIT", 4)->flags & SMTPD_CMD_PRE_TLS);
    unit_assert(!(smtpd_cmd_find("MAIL", 4)->flags & SMTPD_CMD_PRE_TLS));
    unit_assert(!(smtpd_cmd_find("DATA", 4)->flags & SMTPD_CMD_PRE_AUTH));
    unit_assert(smtpd_cmd_find("AUTH", 4)->flags & SMTPD_CMD_PRE_AUTH);
    unit_assert(smtpd_cmd_find("MAIL", 4)->flags & SMTPD_CMD_LONG);
    unit_assert(smtpd_cmd_find("RCPT", 4)->flags & SMTPD_CMD_LONG);
    unit_assert(!(smtpd_cmd_find("EHLO", 4)->flags & SMTPD_CMD_LONG));
    unit_end();

    unit_begin("smtpd_cmd_prefix");
    {
	size_t rl = 0;
	const char *r = smtpd_cmd_prefix("from:<a@b>", 10, "FROM:", &rl);

	unit_assert(r != NULL && rl == 5 && strncmp(r, "<a@b>", 5) == 0);
	unit_assert(smtpd_cmd_prefix("FROM <a@b>", 10, "FROM:", &rl) == NULL);
	unit_assert(smtpd_cmd_prefix("FRO", 3, "FROM:", &rl) == NULL);
	r = smtpd_cmd_prefix("To:", 3, "TO:", &rl);
	unit_assert(r != NULL && rl == 0);
    }
    unit_end();

    unit_begin("smtpd_parse_vrfy_reply");
    for (size_t i = 0; i < sizeof(vrfy_cases) / sizeof(vrfy_cases[0]); i++) {
	struct smtpd_reply_buf r;
	bool ok = smtpd_parse_vrfy_reply(vrfy_cases[i].text, &r, &err);

	unit_assert_idx(ok == vrfy_cases[i].ok, i);
	if (ok && vrfy_cases[i].ok) {
	    unit_assert_idx(r.code == vrfy_cases[i].code, i);
	    unit_assert_streq_idx(r.enhanced, vrfy_cases[i].enhanced, i);
	    unit_assert_streq_idx(r.text, vrfy_cases[i].rest, i);
	}
    }
    /* a text that does not fit the reply is refused, not cut */
    {
	static char long_text[600];
	struct smtpd_reply_buf r;

	memcpy(long_text, "252 2.0.0 ", 10);
	memset(long_text + 10, 'x', 511);
	unit_assert(smtpd_parse_vrfy_reply(long_text, &r, &err));
	long_text[10 + 511] = 'x';
	unit_assert(!smtpd_parse_vrfy_reply(long_text, &r, &err));
	unit_assert_streq(err, "text longer than 511 bytes");
    }
    unit_end();

    unit_begin("reply table: codes, classes, enhanced codes");
    for (int id = 0; id < SR_COUNT; id++) {
	const struct smtpd_reply_def *d = smtpd_reply_def((enum smtpd_reply_id) id);
	struct smtpd_reply_buf r;

	unit_assert_idx(d->code >= 200 && d->code <= 559, id);
	unit_assert_idx(d->text && *d->text, id);
	if (d->enhanced) {
	    /* RFC 3463: class digit matches the reply code's first digit */
	    unit_assert_idx(d->enhanced[0] - '0' == d->code / 100, id);
	    unit_assert_idx(d->enhanced[1] == '.', id);
	} else {
	    /* only the 354 go-ahead has none */
	    unit_assert_idx(d->code == 354, id);
	}
	smtpd_reply_id_buf((enum smtpd_reply_id) id, &r);
	unit_assert_idx(r.code == d->code, id);
	unit_assert_idx(strchr(r.text, '%') == NULL, id);
	unit_assert_idx(strchr(r.text, '\r') == NULL && strchr(r.text, '\n') == NULL, id);
    }
    /* the codes the issue names */
    unit_assert_inteq(smtpd_reply_def(SR_UNKNOWN_CMD)->code, 500);
    unit_assert_streq(smtpd_reply_def(SR_UNKNOWN_CMD)->enhanced, "5.5.2");
    unit_assert_inteq(smtpd_reply_def(SR_NEED_MAIL)->code, 503);
    unit_assert_streq(smtpd_reply_def(SR_NEED_MAIL)->enhanced, "5.5.1");
    unit_assert_inteq(smtpd_reply_def(SR_TOO_MANY_RCPTS)->code, 452);
    unit_assert_streq(smtpd_reply_def(SR_TOO_MANY_RCPTS)->enhanced, "4.5.3");
    unit_assert_inteq(smtpd_reply_def(SR_TOO_BIG)->code, 552);
    unit_assert_streq(smtpd_reply_def(SR_TOO_BIG)->enhanced, "5.3.4");
    unit_assert_inteq(smtpd_reply_def(SR_SIZE_AT_MAIL)->code, 552);
    unit_assert_inteq(smtpd_reply_def(SR_TOO_MANY_ERRORS)->code, 421);
    unit_assert_streq(smtpd_reply_def(SR_TOO_MANY_ERRORS)->enhanced, "4.7.0");
    unit_assert_streq(smtpd_reply_def(SR_TIMEOUT)->enhanced, "4.4.2");
    unit_assert_inteq(smtpd_reply_def(SR_QUEUE_WRITE)->code, 451);
    {
	struct smtpd_reply_buf r;

	smtpd_reply_id_buf(SR_TIMEOUT, &r);
	unit_assert(strncmp(r.text, var_myhostname, strlen(var_myhostname)) == 0);
    }
    unit_end();

    unit_begin("EHLO keywords");
    {
	struct smtpd_state st;
	char lines[16][64];
	unsigned ext = 0;
	size_t n;
	bool seen_chunking = false, seen_size = false, seen_pipe = false;

	memset(&st, 0, sizeof(st));
	n = smtpd_ehlo_lines(&st, lines, 16, &ext);
	unit_assert_streq(lines[0], var_myhostname);
	for (size_t i = 1; i < n; i++) {
	    seen_chunking |= strcmp(lines[i], "CHUNKING") == 0;
	    seen_pipe |= strcmp(lines[i], "PIPELINING") == 0;
	    seen_size |= strncmp(lines[i], "SIZE ", 5) == 0;
	    unit_assert_idx(strcmp(lines[i], "STARTTLS") != 0 && strncmp(lines[i], "AUTH", 4) != 0, i);
	}
	unit_assert(seen_chunking && seen_size && seen_pipe);
	unit_assert(ext & SMTP_EXT_DSN);
	unit_assert(ext & SMTP_EXT_SMTPUTF8);
	unit_assert(ext & SMTP_EXT_BINARYMIME);
	unit_assert(!(ext & SMTP_EXT_AUTH));
    }
    unit_end();

    unit_begin("quota= in a virtual_mailbox_maps value");
    {
	static const struct {
	    const char *value;
	    bool quota;
	} cases[] = {
	    {"example.test/alice/", false},
	    {"example.test/alice/ quota=100", true},
	    {"  /var/mail/x/\tquota=5M  ", true},
	    {"example.test/quota=100/", false},	/* part of the path */
	    {"example.test/bob/ quota=", false},	/* no value: the agent ignores it */
	    {"example.test/bob/ other=1 quota=1G", true},
	    {"example.test/bob/ xquota=1", false},
	    {"", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	    unit_assert_idx(smtpd_quota_value(cases[i].value) == cases[i].quota, i);
    }
    unit_end();

    unit_begin("smtpd_join formats as fmt_try_buf would");
    {
	char buf[8];

	unit_assert(smtpd_join(buf, sizeof(buf), "ab", "", "cd", (char *) NULL));
	unit_assert_streq(buf, "abcd");
	unit_assert(!smtpd_join(buf, sizeof(buf), "name", "[", "127.0.0.1", "]", (char *) NULL));
	unit_assert_streq(buf, "name[12");
	unit_assert(smtpd_join(buf, sizeof(buf), (char *) NULL));
	unit_assert_streq(buf, "");
    }
    unit_end();

    return unit_done();
}
