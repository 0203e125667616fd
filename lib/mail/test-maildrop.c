/* test-maildrop.c - unit tests for maildrop.c: a table of record
 * sequences, each accepted or rejected with a given error text. */

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "msg.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

#include "maildrop.h"
#include "queue_file.h"

/* Records as "T:data|T:data|..."; "~" in data stands for a NUL byte. */
static const struct md_case {
    const char *records;
    long long limit;
    const char *want_error;		/* NULL: accepted */
    int want_flags;
    size_t want_rcpts;
} cases[] = {
    {"V:posthorn-queue 1|S:a@x|R:b@y|M:|L:hi|X:|E:", 0, NULL, 0, 1},
    {"V:posthorn-queue 1|S:|A:dsn_ret=hdrs|A:dsn_envid=ID1|A:body=8bitmime|O:rfc822;b@y|N:success,delay|R:b@y|R:c@y|M:|C:ab|L:c|X:|E:", 0, NULL, 0, 2},
    {"V:posthorn-queue 1|S:root|A:flags=extract|M:|L:To: x@y|X:|E:", 0, NULL, MAILDROP_FLAG_EXTRACT, 0},
    {"V:posthorn-queue 1|S:root|A:flags=extract|R:z@y|M:|X:|R:t@y|E:", 0, NULL, MAILDROP_FLAG_EXTRACT, 2},
    {"V:posthorn-queue 1|S:a|R:b|M:|L:bin~ary|X:|E:", 0, NULL, 0, 1},
    /* rejected */
    {"V:posthorn-queue 2|S:a|R:b|M:|X:|E:", 0, "bad version record", 0, 0},
    {"S:a|R:b|M:|X:|E:", 0, "unexpected record type 'S'", 0, 0},
    {"V:posthorn-queue 1|T:1700000000|S:a|R:b|M:|X:|E:", 0, "unexpected record type 'T'", 0, 0},
    {"V:posthorn-queue 1|S:a|A:sasl_username=bob|R:b|M:|X:|E:", 0, "attribute sasl_username not allowed", 0, 0},
    {"V:posthorn-queue 1|S:a|A:submit_uid=0|R:b|M:|X:|E:", 0, "attribute submit_uid not allowed", 0, 0},
    {"V:posthorn-queue 1|S:a|A:dsn_ret=full|A:dsn_ret=hdrs|R:b|M:|X:|E:", 0, "duplicate attribute dsn_ret", 0, 0},
    {"V:posthorn-queue 1|S:a|A:dsn_ret=most|R:b|M:|X:|E:", 0, "bad dsn_ret value", 0, 0},
    {"V:posthorn-queue 1|S:a|A:flags=extract,extract|R:b|M:|X:|E:", 0, "bad flags value", 0, 0},
    {"V:posthorn-queue 1|S:a|A:flags=fast|R:b|M:|X:|E:", 0, "bad flags value", 0, 0},
    {"V:posthorn-queue 1|S:a|A:dsn_envid=a b|R:b|M:|X:|E:", 0, "bad character in dsn_envid", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|A:dsn_ret=full|M:|X:|E:", 0, "unexpected record type 'A'", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|D:c|M:|X:|E:", 0, "unexpected record type 'D'", 0, 0},
    {"V:posthorn-queue 1|S:a|S:b|R:b|M:|X:|E:", 0, "unexpected record type 'S'", 0, 0},
    {"V:posthorn-queue 1|S:a|R:|M:|X:|E:", 0, "empty recipient", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b\tc|M:|X:|E:", 0, "control character in recipient", 0, 0},
    {"V:posthorn-queue 1|S:a~b|R:b|M:|X:|E:", 0, "NUL byte", 0, 0},
    {"V:posthorn-queue 1|S:a|N:sometimes|R:b|M:|X:|E:", 0, "bad notify record", 0, 0},
    {"V:posthorn-queue 1|S:a|N:success,success|R:b|M:|X:|E:", 0, "bad notify record", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|N:never|M:|X:|E:", 0, "without a recipient", 0, 0},
    {"V:posthorn-queue 1|S:a|O:noseparator|R:b|M:|X:|E:", 0, "bad orcpt record", 0, 0},
    {"V:posthorn-queue 1|S:a|M:|L:x|X:|E:", 0, "no recipients", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|M:|C:x|X:|E:", 0, "unexpected record type 'X'", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|M:|L:x|X:|E:|E:", 0, "data after the end record", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|M:|L:x|X:", 0, "premature end of file", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|M:x|X:|E:", 0, "message record with data", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|M:|L:0123456789|X:|E:", 11, "message too large", 0, 0},
    {"V:posthorn-queue 1|S:a|R:b|M:|L:012345678|X:|E:", 11, NULL, 0, 1},
    {"V:posthorn-queue 1|S:a|R:b|M:|L:x|X:|R:c|A:body=7bit|E:", 0, "unexpected record type 'A'", 0, 0},
};

/* build - encode a case into a memory file; the descriptor */
static int build(const char *spec)
{
    struct str *buf = str_new(STR_MAX_DEFAULT);
    char *copy = strdup(spec), *save = NULL;
    int fd;

    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
	char data[256];
	size_t len = strlen(tok + 2);

	memcpy(data, tok + 2, len);
	for (size_t i = 0; i < len; i++)
	    if (data[i] == '~')
		data[i] = 0;
	qf_encode(buf, tok[0], data, len);
    }
    free(copy);
    fd = memfd_create("maildrop", 0);
    if (fd < 0 || write(fd, buf->data, buf->len) != (ssize_t) buf->len || lseek(fd, 0, SEEK_SET) != 0)
	msg_fatal("memfd: %m");
    str_free(&buf);
    return fd;
}

/* run - check a whole file; 0 or -1 with *error_r */
static int run(const struct md_case *tc, struct maildrop_check *c, const char **error_r)
{
    int fd = build(tc->records);
    struct stream *s = stream_open(fd);
    struct str *data = str_new(MAILDROP_RECORD_MAX);
    struct qf_reader r;
    int type, ret;

    qf_reader_init(&r, s, 0);
    maildrop_check_init(c, tc->limit);
    while ((ret = maildrop_get(c, &r, &type, data, error_r)) > 0)
	 /* void */ ;
    str_free(&data);
    stream_close(&s);
    return ret;
}

int main(void)
{
    unit_begin("maildrop record sequences");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	const struct md_case *tc = cases + i;
	struct maildrop_check c;
	const char *error = NULL;
	int ret = run(tc, &c, &error);

	if (tc->want_error == NULL) {
	    if (ret != 0)
		unit_fail_at(__FILE__, __LINE__, "case %zu: rejected: %s", i, error);
	    unit_assert_idx(c.flags == tc->want_flags, i);
	    unit_assert_idx(c.rcpt_count == tc->want_rcpts, i);
	} else {
	    unit_assert_idx(ret < 0, i);
	    if (ret < 0 && strstr(error, tc->want_error) == NULL)
		unit_fail_at(__FILE__, __LINE__, "case %zu: got \"%s\", want \"%s\"", i, error,
			     tc->want_error);
	}
    }
    unit_end();

    unit_begin("maildrop notify and flags values");
    unit_assert(maildrop_notify_valid("never", 5));
    unit_assert(maildrop_notify_valid("delay,failure", 13));
    unit_assert(!maildrop_notify_valid("never,delay", 11));
    unit_assert(!maildrop_notify_valid("", 0));
    unit_assert(!maildrop_notify_valid("failure,", 8));
    {
	int flags;

	unit_assert(maildrop_flags_parse("extract", &flags) && flags == MAILDROP_FLAG_EXTRACT);
	unit_assert(!maildrop_flags_parse("", &flags));
	unit_assert(!maildrop_flags_parse("extract,", &flags));
    }
    unit_end();

    unit_begin("maildrop content size counts CRLF per line");
    {
	struct maildrop_check c;
	struct str d = {(char *) "abc", 3, 3, 3};
	const char *err;

	maildrop_check_init(&c, 0);
	c.state = MAILDROP_CONTENT;
	unit_assert(maildrop_check_record(&c, QF_REC_LINE, &d, &err) == 0);
	unit_assert(maildrop_check_record(&c, QF_REC_CONT, &d, &err) == 0);
	unit_assert(strcmp(maildrop_allowed(&c), "LC") == 0);
	unit_assert(maildrop_check_record(&c, QF_REC_LINE, &d, &err) == 0);
	unit_assert_inteq(c.content_size, 5 + 3 + 5);
    }
    unit_end();
    return unit_done();
}
