/* test-store.c - unit tests for the mail store (lib/store): UIDs stable
 * across opens and index loss, new mail above old UIDs, damaged
 * indexes rebuilt without losing mail, flags, expunge, CRLF sizes,
 * session locks, folders. Runs in a scratch working directory. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "safe_file.h"
#include "store.h"
#include "store_int.h"
#include "str.h"
#include "strv.h"
#include "unit.h"

static int seq;

/* deliver - a message into DIR/new/ as local-delivery does (tmp/,
 * then rename); the file name into name_r if not NULL */
static void deliver(const char *dir, const char *text, char *name_r, size_t size)
{
    char tmp[512], dst[512], base[128];
    const char *err;
    int fd;

    fmt_buf_or_panic(base, sizeof(base), "%ld.M%dP%d.unit", 1700000000L + seq, seq,
		     (int) getpid());
    seq++;
    fmt_buf_or_panic(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);
    fmt_buf_or_panic(dst, sizeof(dst), "%s/new/%s,S=%zu", dir, base, strlen(text));
    if (mkdir_p(dir, 0700, &err) < 0)
	unit_fail_at(__FILE__, __LINE__, "%s", err);
    {
	char sub[512];

	fmt_buf_or_panic(sub, sizeof(sub), "%s/tmp", dir);
	(void) mkdir(sub, 0700);
	fmt_buf_or_panic(sub, sizeof(sub), "%s/new", dir);
	(void) mkdir(sub, 0700);
	fmt_buf_or_panic(sub, sizeof(sub), "%s/cur", dir);
	(void) mkdir(sub, 0700);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    unit_assert(fd >= 0);
    unit_assert(write_all_fd(fd, text, strlen(text)) == 0);
    (void) close(fd);
    unit_assert(rename(tmp, dst) == 0);
    if (name_r)
	fmt_buf_or_panic(name_r, size, "%s,S=%zu", base, strlen(text));
}

/* open_rw - open a mailbox read-write, failing the test if it cannot */
static struct store_mailbox *open_rw(const char *dir)
{
    struct store_mailbox *mb;
    const char *err = "";

    mb = store_open(dir, NULL, STORE_READ_WRITE | STORE_CREATE, &err);
    if (mb == NULL)
	unit_fail_at(__FILE__, __LINE__, "store_open %s: %s", dir, err);
    return mb;
}

/* read_msg - the text of message i */
static void read_msg(struct store_mailbox *mb, size_t i, char *buf, size_t size)
{
    const char *err;
    ssize_t n;
    int fd;

    buf[0] = 0;
    if ((fd = store_open_msg(mb, i, &err)) < 0) {
	unit_fail_at(__FILE__, __LINE__, "store_open_msg: %s", err);
	return;
    }
    n = read(fd, buf, size - 1);
    buf[n > 0 ? n : 0] = 0;
    (void) close(fd);
}

/* count_files - entries of DIR/sub not starting with "." */
static int count_files(const char *dir, const char *sub)
{
    char cmd[600], out[64] = "";
    FILE *fp;

    fmt_buf_or_panic(cmd, sizeof(cmd), "ls %s/%s | wc -l", dir, sub);
    fp = popen(cmd, "r");
    if (fp && fgets(out, sizeof(out), fp) == NULL)
	out[0] = 0;
    if (fp)
	(void) pclose(fp);
    return atoi(out);
}

/* index_path - DIR/posthorn-index */
static void file_in(char *buf, size_t size, const char *dir, const char *file)
{
    fmt_buf_or_panic(buf, size, "%s/%s", dir, file);
}

static void test_crlf_size(void)
{
    static const struct {
	const char *text;
	long size, crlf;
    } cases[] = {
	{"", 0, 0},
	{"a", 1, 1},
	{"a\n", 2, 3},
	{"a\r\n", 3, 3},
	{"a\nb\r\nc", 6, 7},
	{"\n\n", 2, 4},
	{"\r\r\n\n", 4, 5},
    };
    const char *err;
    off_t size, crlf;
    size_t i;
    char *big;
    int fd;

    unit_begin("store_crlf_size: bytes plus one per LF without CR");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	fd = open("crlf.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
	unit_assert(write_all_fd(fd, cases[i].text, strlen(cases[i].text)) == 0);
	unit_assert_idx(store_crlf_size(fd, &size, &crlf, &err) == 0, i);
	unit_assert_idx(size == cases[i].size, i);
	unit_assert_idx(crlf == cases[i].crlf, i);
	(void) close(fd);
    }
    /* a CR at the end of one read buffer, its LF at the start of the next */
    big = mem_alloc(65536 + 1);
    memset(big, 'x', 65536 + 1);
    big[65535] = '\r';
    big[65536] = '\n';
    fd = open("crlf.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
    unit_assert(write_all_fd(fd, big, 65537) == 0);
    unit_assert(store_crlf_size(fd, &size, &crlf, &err) == 0);
    unit_assert_inteq(size, 65537);
    unit_assert_inteq(crlf, 65537);
    (void) close(fd);
    mem_free(&big);
    unit_end();
}

static void test_uids_stable(void)
{
    struct store_mailbox *mb, *mb2;
    uint32_t uv;
    char buf[256];
    size_t added, removed;

    unit_begin("UIDs: 1..n in delivery order, the same after reopening");
    deliver("m1", "one\n", NULL, 0);
    deliver("m1", "two\r\nline\n", NULL, 0);
    deliver("m1", "three\n", NULL, 0);
    mb = open_rw("m1");
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 0)->uid, 1);
    unit_assert_inteq(store_msg(mb, 2)->uid, 3);
    unit_assert_inteq(store_uidnext(mb), 4);
    unit_assert_inteq(store_msg(mb, 1)->size, 10);
    /* an open reads no message: the CRLF size is counted when asked for */
    unit_assert_inteq(store_msg(mb, 1)->crlf_size, -1);
    unit_assert_inteq(store_msg_crlf_size(mb, 1), 11);
    unit_assert_inteq(store_msg(mb, 1)->crlf_size, 11);
    /* new mail stays in new/ under its delivery name until its flags
     * change (no rename per message on open) */
    unit_assert(store_msg(mb, 1)->in_new);
    unit_assert(strstr(store_msg(mb, 1)->name, ":2,") == NULL);
    read_msg(mb, 1, buf, sizeof(buf));
    unit_assert_streq(buf, "two\r\nline\n");
    unit_assert_inteq(count_files("m1", "new"), 3);
    unit_assert_inteq(count_files("m1", "cur"), 0);
    uv = store_uidvalidity(mb);
    unit_assert(uv > 0);
    store_close(&mb);

    mb = open_rw("m1");
    unit_assert_inteq(store_uidvalidity(mb), uv);
    unit_assert_inteq(store_count(mb), 3);
    /* the count made in the last session went into the index */
    unit_assert_inteq(store_msg(mb, 1)->crlf_size, 11);
    unit_assert_inteq(store_msg(mb, 0)->crlf_size, -1);
    read_msg(mb, 2, buf, sizeof(buf));
    unit_assert_streq(buf, "three\n");
    unit_assert_inteq(store_msg(mb, 2)->uid, 3);
    /* a flag moves it to cur/, its name carrying UID, sizes and flags */
    unit_assert(store_set_flags(mb, 1, STORE_FLAG_SEEN, 0, NULL) == 0);
    unit_assert(!store_msg(mb, 1)->in_new);
    unit_assert(strstr(store_msg(mb, 1)->name, ",S=10,W=11,U=2:2,S") != NULL);
    unit_assert_inteq(count_files("m1", "new"), 2);
    unit_assert_inteq(count_files("m1", "cur"), 1);
    read_msg(mb, 1, buf, sizeof(buf));
    unit_assert_streq(buf, "two\r\nline\n");
    store_close(&mb);
    mb = open_rw("m1");
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 1)->uid, 2);
    unit_assert(store_msg(mb, 1)->flags == STORE_FLAG_SEEN && !store_msg(mb, 1)->in_new);
    unit_assert(store_msg(mb, 0)->in_new && store_msg(mb, 0)->flags == 0);
    /* another reader moves a message from new/ to cur/ (with a flag):
     * same UID, its flag seen, and an open of the old name finds it */
    {
	char from[600], to[600];

	fmt_buf_or_panic(from, sizeof(from), "m1/new/%s", store_msg(mb, 2)->name);
	fmt_buf_or_panic(to, sizeof(to), "m1/cur/%s:2,F", store_msg(mb, 2)->name);
	unit_assert(rename(from, to) == 0);
	read_msg(mb, 2, buf, sizeof(buf));
	unit_assert_streq(buf, "three\n");
	unit_assert(!store_msg(mb, 2)->in_new);
    }
    store_close(&mb);
    mb = open_rw("m1");
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 2)->uid, 3);
    unit_assert(store_msg(mb, 2)->flags == STORE_FLAG_FLAGGED && !store_msg(mb, 2)->in_new);
    unit_end();

    unit_begin("UIDs: mail delivered during a session gets higher UIDs on refresh");
    mb2 = open_rw("m1");
    deliver("m1", "four\n", NULL, 0);
    deliver("m1", "five\n", NULL, 0);
    unit_assert_inteq(store_count(mb), 3);
    unit_assert(store_refresh(mb, &added, &removed, NULL) == 0);
    unit_assert_inteq(added, 2);
    unit_assert_inteq(removed, 0);
    unit_assert_inteq(store_count(mb), 5);
    unit_assert_inteq(store_msg(mb, 3)->uid, 4);
    unit_assert_inteq(store_msg(mb, 4)->uid, 5);
    read_msg(mb, 4, buf, sizeof(buf));
    unit_assert_streq(buf, "five\n");
    /* the other session sees the same UIDs */
    unit_assert_inteq(store_count(mb2), 3);
    unit_assert(store_refresh(mb2, &added, NULL, NULL) == 0);
    unit_assert_inteq(added, 2);
    unit_assert_inteq(store_msg(mb2, 4)->uid, 5);
    unit_assert_inteq(store_find_uid(mb2, 4), 3);
    unit_assert_inteq(store_find_uid(mb2, 9), -1);
    store_close(&mb2);
    store_close(&mb);
    unit_end();
}

static void test_index_lost(void)
{
    struct store_mailbox *mb;
    uint32_t uv, keep[1];
    char path[256];

    unit_begin("index deleted: rebuilt, UIDs and UIDVALIDITY kept");
    deliver("m2", "a\n", NULL, 0);
    deliver("m2", "b\n", NULL, 0);
    mb = open_rw("m2");
    deliver("m2", "c\n", NULL, 0);
    unit_assert(store_refresh(mb, NULL, NULL, NULL) == 0);
    unit_assert_inteq(store_msg(mb, 2)->uid, 3);
    uv = store_uidvalidity(mb);
    /* the highest UID goes: it must never come back after the loss */
    keep[0] = 3;
    unit_assert(store_expunge(mb, keep, 1, NULL, NULL) == 0);
    store_close(&mb);
    file_in(path, sizeof(path), "m2", STORE_INDEX_FILE);
    unit_assert(unlink(path) == 0);
    deliver("m2", "d\n", NULL, 0);
    mb = open_rw("m2");
    unit_assert_inteq(store_uidvalidity(mb), uv);
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 0)->uid, 1);
    unit_assert_inteq(store_msg(mb, 1)->uid, 2);
    unit_assert_inteq(store_msg(mb, 2)->uid, 4);
    store_close(&mb);
    unit_end();

    unit_begin("index lost after a message was deleted by another program: no reuse");
    mb = open_rw("m2");
    deliver("m2", "e\n", NULL, 0);
    unit_assert(store_refresh(mb, NULL, NULL, NULL) == 0);
    unit_assert_inteq(store_msg(mb, 3)->uid, 5);
    {
	char victim[600];

	fmt_buf_or_panic(victim, sizeof(victim), "m2/%s/%s",
			 store_msg(mb, 3)->in_new ? "new" : "cur", store_msg(mb, 3)->name);
	unit_assert(unlink(victim) == 0);
    }
    store_close(&mb);
    mb = open_rw("m2");		/* finds it gone */
    unit_assert_inteq(store_count(mb), 3);
    store_close(&mb);
    file_in(path, sizeof(path), "m2", STORE_INDEX_FILE);
    unit_assert(unlink(path) == 0);
    deliver("m2", "f\n", NULL, 0);
    mb = open_rw("m2");
    unit_assert_inteq(store_uidvalidity(mb), uv);
    unit_assert_inteq(store_count(mb), 4);
    unit_assert_inteq(store_msg(mb, 3)->uid, 6);
    store_close(&mb);
    unit_end();

    unit_begin("index and anchor deleted: UIDs kept from names, new UIDVALIDITY");
    unit_assert(unlink(path) == 0);
    file_in(path, sizeof(path), "m2", STORE_ANCHOR_FILE);
    unit_assert(unlink(path) == 0);
    mb = open_rw("m2");
    unit_assert(store_uidvalidity(mb) != uv);
    unit_assert_inteq(store_count(mb), 4);
    unit_assert_inteq(store_msg(mb, 2)->uid, 4);
    unit_assert_inteq(store_msg(mb, 3)->uid, 6);
    store_close(&mb);
    unit_end();
}

/* damage - truncate (keep >= 0) or overwrite the middle of the index */
static void damage(const char *dir, long keep)
{
    char path[256];
    struct stat st;
    int fd;

    file_in(path, sizeof(path), dir, STORE_INDEX_FILE);
    unit_assert(stat(path, &st) == 0);
    fd = open(path, O_WRONLY);
    unit_assert(fd >= 0);
    if (keep >= 0)
	unit_assert(ftruncate(fd, keep) == 0);
    else
	unit_assert(pwrite(fd, "\377garbage\0\n\n", 11, st.st_size / 2) == 11);
    (void) close(fd);
}

static void test_index_damaged(void)
{
    struct store_mailbox *mb;
    uint32_t uv;
    int i;
    long cuts[] = {0, 10, 40, 70, -1};
    size_t k;

    unit_begin("index truncated or overwritten: rebuilt, no mail lost, UIDs kept");
    for (i = 0; i < 6; i++)
	deliver("m3", i % 2 ? "odd\n" : "even\r\n", NULL, 0);
    mb = open_rw("m3");
    uv = store_uidvalidity(mb);
    store_close(&mb);
    for (k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
	damage("m3", cuts[k]);
	deliver("m3", "later\n", NULL, 0);
	mb = open_rw("m3");
	unit_assert_idx(store_uidvalidity(mb) == uv, k);
	unit_assert_idx(store_count(mb) == 7 + k, k);
	for (i = 0; i < (int) store_count(mb); i++)
	    unit_assert_idx(store_msg(mb, (size_t) i)->uid == (uint32_t) i + 1, k);
	unit_assert_idx(store_msg_crlf_size(mb, 1) == 5, k);
	store_close(&mb);
    }
    unit_end();
}

static void test_index_parse(void)
{
    struct store_index idx;
    struct store_index_head head = {42, 9, 17, 8, {1600000000, 5, 1600000001, 6, 77},
	{0, 0, 0, 0, 0}};
    struct store_rec recs[2] = {
	{.name = (char *) "1700.a,S=10:2,S", .keylen = 6, .uid = 7, .size = 10,
	 .crlf_size = 12, .mtime = 1700000000, .modseq = 15},
	{.name = (char *) "1699.b", .keylen = 6, .uid = 3, .size = 5, .crlf_size = 5,
	 .mtime = 1690000000, .modseq = 2},
    };
    char text[1024], path[256];
    const char *err;
    struct str *s = str_new(4096);
    int dfd;

    unit_begin("index file: written, read back, a changed byte makes it damaged");
    (void) mkdir("m4", 0700);
    dfd = open("m4", O_RDONLY | O_DIRECTORY);
    unit_assert(store_index_write(dfd, &head, recs, 2, true, &err) == 0);
    store_index_read(dfd, &idx);
    unit_assert_inteq(idx.state, STORE_INDEX_VALID);
    unit_assert_inteq(idx.version, 2);
    unit_assert_inteq(idx.h.uidvalidity, 42);
    unit_assert_inteq(idx.h.uidnext, 9);
    unit_assert_inteq(idx.h.highestmodseq, 17);
    unit_assert_inteq(idx.h.recent, 8);
    unit_assert_inteq(idx.count, 2);
    unit_assert(store_index_find(&idx, "1700.a", 6) != NULL);
    unit_assert_inteq(store_index_find(&idx, "1700.a", 6)->uid, 7);
    unit_assert_inteq(store_index_find(&idx, "1700.a", 6)->modseq, 15);
    unit_assert_inteq(store_index_find(&idx, "1699.b", 6)->crlf_size, 5);
    unit_assert(store_index_find(&idx, "1699", 4) == NULL);
    unit_assert_streq(store_index_find(&idx, "1700.a", 6)->name, "1700.a,S=10:2,S");
    unit_assert_inteq(idx.h.cur.msec, 1600000000);
    unit_assert_inteq(idx.h.cur.mnsec, 5);
    unit_assert_inteq(idx.h.cur.cnsec, 6);
    unit_assert_inteq(idx.h.cur.ino, 77);
    store_index_free(&idx);
    file_in(path, sizeof(path), "m4", STORE_INDEX_FILE);
    unit_assert(read_file(path, s, 4096, &err) == 0);
    unit_assert(str_len(s) < sizeof(text));
    memcpy(text, str_cstr(s), str_len(s));
    /* the records are in UID order, each name ends in a NUL */
    {
	static const char want[] = "\ncur 1600000000 5 1600000001 6 77\nnew 0 0 0 0 0\n3 2 5 5 1690000000 "
	    "1699.b\0\n7 15 10 12 1700000000 1700.a,S=10:2,S\0\nend 2 ";
	char *p;

	unit_assert((p = memmem(text, str_len(s), want, sizeof(want) - 1)) != NULL);
	p = memmem(text, str_len(s), "12 17", 5);
	*p = '3';
	store_index_parse(text, str_len(s), &idx);
	unit_assert_inteq(idx.state, STORE_INDEX_DAMAGED);
	unit_assert_inteq(idx.h.uidvalidity, 42);
	store_index_free(&idx);
	/* cut after the first record: that one is read, the state damaged */
	p = memmem(text, str_len(s), "7 15", 4);
	store_index_parse(text, (size_t) (p - text), &idx);
	unit_assert_inteq(idx.state, STORE_INDEX_DAMAGED);
	unit_assert_inteq(idx.count, 1);
	unit_assert_inteq(idx.recs[0].uid, 3);
	unit_assert_streq(idx.recs[0].name, "1699.b");
	store_index_free(&idx);
    }
    store_index_parse("garbage", 7, &idx);
    unit_assert_inteq(idx.state, STORE_INDEX_DAMAGED);
    unit_assert_inteq(idx.h.uidvalidity, 0);
    store_index_free(&idx);
    /* a MODSEQ above HIGHESTMODSEQ cannot be */
    head.highestmodseq = 14;
    unit_assert(store_index_write(dfd, &head, recs, 2, true, &err) == 0);
    store_index_read(dfd, &idx);
    unit_assert_inteq(idx.state, STORE_INDEX_DAMAGED);
    store_index_free(&idx);
    (void) close(dfd);
    str_free(&s);
    unit_end();

    unit_begin("index file: version 1 (before MODSEQs) is still read");
    {
	/* the hash is computed here as version 1 wrote it (FNV-1a) */
	const char *body = "posthorn-index 1\nuidvalidity 42\nuidnext 9\ncur 0 0\n"
	    "3 5 5 1690000000 1699.b\n7 10 12 1700000000 1700.a,S=10:2,S\n";
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *cp = body; *cp; cp++) {
	    h ^= (unsigned char) *cp;
	    h *= 0x100000001b3ULL;
	}
	fmt_buf_or_panic(text, sizeof(text), "%send 2 %016llx\n", body, (unsigned long long) h);
	store_index_parse(text, strlen(text), &idx);
	unit_assert_inteq(idx.state, STORE_INDEX_VALID);
	unit_assert_inteq(idx.version, 1);
	unit_assert_inteq(idx.count, 2);
	unit_assert_inteq(idx.recs[1].uid, 7);
	unit_assert_inteq(idx.recs[1].modseq, 0);
	unit_assert_streq(idx.recs[1].name, "1700.a,S=10:2,S");
	store_index_free(&idx);
    }
    unit_end();
}

static void test_flags(void)
{
    struct store_mailbox *mb, *mb2;
    char buf[64], old[512];
    const char *err;

    unit_begin("flags: set, clear, read back after reopening, in the file name");
    unit_assert_inteq(store_flags_parse("x:2,FRS"), STORE_FLAG_FLAGGED | STORE_FLAG_REPLIED
		      | STORE_FLAG_SEEN);
    unit_assert_inteq(store_flags_parse("x:2,Sa"), STORE_FLAG_SEEN | STORE_FLAG_KEYWORD(0));
    unit_assert_inteq(store_flags_parse("x:1,S"), 0);
    unit_assert_inteq(store_flags_parse("x"), 0);
    store_flags_format(STORE_FLAG_TRASHED | STORE_FLAG_DRAFT | STORE_FLAG_KEYWORD(2), buf,
		       sizeof(buf));
    unit_assert_streq(buf, "DTc");
    deliver("m5", "x\n", NULL, 0);
    deliver("m5", "y\n", NULL, 0);
    mb = open_rw("m5");
    unit_assert_inteq(store_msg(mb, 0)->flags, 0);
    unit_assert(store_set_flags(mb, 0, STORE_FLAG_SEEN | STORE_FLAG_REPLIED, 0, &err) == 0);
    unit_assert_inteq(store_msg(mb, 0)->flags, STORE_FLAG_SEEN | STORE_FLAG_REPLIED);
    unit_assert(strstr(store_msg(mb, 0)->name, ":2,RS") != NULL);
    store_close(&mb);
    mb = open_rw("m5");
    unit_assert_inteq(store_msg(mb, 0)->flags, STORE_FLAG_SEEN | STORE_FLAG_REPLIED);
    unit_assert(store_set_flags(mb, 0, 0, STORE_FLAG_SEEN, &err) == 0);
    unit_assert_inteq(store_msg(mb, 0)->flags, STORE_FLAG_REPLIED);
    unit_end();

    unit_begin("flags: another session's rename is found, its flags kept");
    mb2 = open_rw("m5");
    str_copy_out_or_panic(old, sizeof(old), store_msg(mb2, 1)->name);
    unit_assert(store_set_flags(mb, 1, STORE_FLAG_FLAGGED, 0, &err) == 0);
    unit_assert_streq(store_msg(mb2, 1)->name, old);
    read_msg(mb2, 1, buf, sizeof(buf));
    unit_assert_streq(buf, "y\n");
    unit_assert(store_set_flags(mb2, 1, STORE_FLAG_SEEN, 0, &err) == 0);
    unit_assert_inteq(store_msg(mb2, 1)->flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
    unit_assert_inteq(store_msg(mb2, 1)->uid, 2);
    store_close(&mb2);
    store_close(&mb);
    mb = open_rw("m5");
    unit_assert_inteq(store_count(mb), 2);
    unit_assert_inteq(store_msg(mb, 1)->flags, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
    store_close(&mb);
    unit_end();
}

static void test_expunge(void)
{
    struct store_mailbox *mb, *mb2, *ro;
    uint32_t del[] = {2, 4, 99};
    size_t removed, added;
    const char *err;
    char buf[64];

    unit_begin("expunge: files gone at return, snapshot shifts, others see it");
    for (int i = 0; i < 5; i++)
	deliver("m6", "msg\n", NULL, 0);
    mb = open_rw("m6");
    mb2 = open_rw("m6");
    unit_assert(store_expunge(mb, del, 3, &removed, &err) == 0);
    unit_assert_inteq(removed, 2);
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 1)->uid, 3);
    unit_assert_inteq(count_files("m6", "cur") + count_files("m6", "new"), 3);
    /* the other session: gone on open, and on refresh */
    unit_assert(store_open_msg(mb2, 1, &err) < 0 && errno == ENOENT);
    unit_assert(store_expunge(mb2, del, 2, &removed, &err) == 0);
    unit_assert_inteq(removed, 0);
    unit_assert(store_refresh(mb2, &added, &removed, &err) == 0);
    unit_assert_inteq(store_count(mb2), 3);
    store_close(&mb2);
    store_close(&mb);
    mb = open_rw("m6");
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 2)->uid, 5);
    read_msg(mb, 2, buf, sizeof(buf));
    unit_assert_streq(buf, "msg\n");
    store_close(&mb);
    unit_end();

    unit_begin("read-only handle: no flag change, no expunge (EROFS)");
    ro = store_open("m6", NULL, STORE_READ_ONLY, &err);
    unit_assert(ro != NULL);
    unit_assert(store_set_flags(ro, 0, STORE_FLAG_SEEN, 0, &err) < 0 && errno == EROFS);
    unit_assert(store_expunge(ro, del, 1, NULL, &err) < 0 && errno == EROFS);
    unit_assert_inteq(store_count(ro), 3);
    store_close(&ro);
    unit_end();
}

/* wait_old - sleep until DIR/cur's mtime and ctime are 2 s old (the
 * store then believes its stamp) */
static void wait_old(const char *dir)
{
    char path[256];
    struct stat st;
    struct timespec now;
    int i;

    fmt_buf_or_panic(path, sizeof(path), "%s/cur", dir);
    for (i = 0; i < 40; i++) {
	unit_assert(stat(path, &st) == 0);
	clock_gettime(CLOCK_REALTIME, &now);
	if (st.st_mtim.tv_sec + 2 < now.tv_sec && st.st_ctim.tv_sec + 2 < now.tv_sec)
	    return;
	usleep(100000);
    }
    unit_fail_at(__FILE__, __LINE__, "cur/ does not get old");
}

static void test_unchanged_cur_not_read(void)
{
    struct store_mailbox *mb;
    unsigned long scans;
    const char *err;

    unit_begin("cur/ unchanged since the index (stamp old): the index's list is used");
    for (int i = 0; i < 4; i++)
	deliver("m10", "msg\n", NULL, 0);
    mb = open_rw("m10");
    store_close(&mb);
    wait_old("m10");
    mb = open_rw("m10");	/* records cur/'s (old, stable) stamp */
    unit_assert_inteq(store_count(mb), 4);
    store_close(&mb);
    scans = store_cur_scans;
    mb = open_rw("m10");
    unit_assert_inteq(store_count(mb), 4);
    unit_assert_inteq(store_msg(mb, 3)->uid, 4);
    unit_assert_inteq(store_cur_scans, scans);	/* not read */
    store_close(&mb);
    unit_end();

    unit_begin("cur/ changed (any rename or unlink moves its stamp): read again");
    mb = open_rw("m10");
    unit_assert(store_set_flags(mb, 0, STORE_FLAG_SEEN, 0, &err) == 0);
    store_close(&mb);
    scans = store_cur_scans;
    mb = open_rw("m10");
    unit_assert(store_cur_scans > scans);
    unit_assert_inteq(store_count(mb), 4);
    unit_assert_inteq(store_msg(mb, 0)->flags, STORE_FLAG_SEEN);
    store_close(&mb);
    /* a file removed by hand (ctime cannot be set back) */
    wait_old("m10");
    mb = open_rw("m10");
    {
	char victim[600];

	fmt_buf_or_panic(victim, sizeof(victim), "m10/%s/%s",
			 store_msg(mb, 1)->in_new ? "new" : "cur", store_msg(mb, 1)->name);
	store_close(&mb);
	unit_assert(unlink(victim) == 0);
    }
    mb = open_rw("m10");
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 1)->uid, 3);
    store_close(&mb);
    /* new mail arrives in new/, which is always read; cur/ is not */
    wait_old("m10");
    mb = open_rw("m10");
    store_close(&mb);
    deliver("m10", "late\n", NULL, 0);
    scans = store_cur_scans;
    mb = open_rw("m10");
    unit_assert_inteq(store_cur_scans, scans);
    unit_assert_inteq(store_count(mb), 4);
    unit_assert_inteq(store_msg(mb, 3)->uid, 5);
    unit_assert_inteq(store_msg(mb, 0)->flags, STORE_FLAG_SEEN);
    store_close(&mb);
    unit_end();
}

static void test_session_lock(void)
{
    struct store_mailbox *a, *b;
    const char *err;

    unit_begin("session lock: one holder at a time, free after close");
    a = open_rw("m7");
    b = open_rw("m7");
    unit_assert(store_session_lock(a, "pop3", &err) == 0);
    unit_assert(store_session_lock(b, "pop3", &err) < 0 && errno == EWOULDBLOCK);
    unit_assert(store_session_lock(b, "../x", &err) < 0 && errno == EINVAL);
    store_close(&a);
    unit_assert(store_session_lock(b, "pop3", &err) == 0);
    store_close(&b);
    unit_end();
}

static void test_duplicates(void)
{
    struct store_mailbox *mb;
    char name[256], src[600], dst[600], cmd[1300];

    unit_begin("a message file copied under the same unique name: its own UID");
    deliver("m8", "orig\n", NULL, 0);
    mb = open_rw("m8");
    fmt_buf_or_panic(src, sizeof(src), "m8/%s/%s", store_msg(mb, 0)->in_new ? "new" : "cur",
		     store_msg(mb, 0)->name);
    str_copy_out_or_panic(name, sizeof(name), store_msg(mb, 0)->name);
    name[strcspn(name, ":")] = 0;
    fmt_buf_or_panic(dst, sizeof(dst), "m8/cur/%s:2,S", name);
    fmt_buf_or_panic(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
    unit_assert(system(cmd) == 0);
    store_close(&mb);
    mb = open_rw("m8");
    unit_assert_inteq(store_count(mb), 2);
    unit_assert_inteq(store_msg(mb, 0)->uid, 1);
    unit_assert_inteq(store_msg(mb, 1)->uid, 2);
    store_close(&mb);
    mb = open_rw("m8");
    unit_assert_inteq(store_count(mb), 2);
    unit_assert_inteq(store_msg(mb, 1)->uid, 2);
    unit_assert_inteq(store_uidnext(mb), 3);
    store_close(&mb);
    unit_end();
}

static void test_folders(void)
{
    struct strv list = STRV_INIT;
    struct store_mailbox *mb;
    const char *err;

    unit_begin("folders: valid names, create, list, open, delete");
    unit_assert(store_folder_valid("Sent"));
    unit_assert(store_folder_valid("Archive.2024"));
    unit_assert(!store_folder_valid("inbox"));
    unit_assert(!store_folder_valid(""));
    unit_assert(!store_folder_valid(".x"));
    unit_assert(!store_folder_valid("a..b"));
    unit_assert(!store_folder_valid("a/b"));
    unit_assert(!store_folder_valid("x."));
    deliver("m9", "inbox mail\n", NULL, 0);
    unit_assert(store_folder_create("m9", "Sent", &err) == 0);
    unit_assert(store_folder_create("m9", "Sent", &err) < 0 && errno == EEXIST);
    unit_assert(store_folder_create("m9", "Archive.2024", &err) == 0);
    unit_assert(access("m9/.Sent/maildirfolder", F_OK) == 0);
    unit_assert(store_folder_list("m9", &list, &err) == 0);
    unit_assert_inteq(list.count, 2);
    unit_assert_streq(list.items[0], "Archive.2024");
    unit_assert_streq(list.items[1], "Sent");
    strv_fini(&list);
    deliver("m9/.Sent", "sent mail\n", NULL, 0);
    mb = store_open("m9", "Sent", STORE_READ_WRITE, &err);
    unit_assert(mb != NULL);
    unit_assert_inteq(store_count(mb), 1);
    store_close(&mb);
    mb = store_open("m9", "INBOX", STORE_READ_WRITE, &err);
    unit_assert(mb != NULL);
    unit_assert_inteq(store_count(mb), 1);
    store_close(&mb);
    unit_assert(store_open("m9", "Nope", STORE_READ_WRITE, &err) == NULL && errno == ENOENT);
    unit_assert(store_folder_delete("m9", "Sent", &err) == 0);
    unit_assert(access("m9/.Sent", F_OK) < 0);
    unit_assert(store_folder_list("m9", &list, &err) == 0);
    unit_assert_inteq(list.count, 1);
    strv_fini(&list);
    unit_end();
}

/* open_mode - open with mode, failing the test if it cannot */
static struct store_mailbox *open_mode(const char *dir, int mode)
{
    struct store_mailbox *mb;
    const char *err = "";

    mb = store_open(dir, NULL, mode | STORE_CREATE, &err);
    if (mb == NULL)
	unit_fail_at(__FILE__, __LINE__, "store_open %s: %s", dir, err);
    return mb;
}

static void test_modseq(void)
{
    struct store_mailbox *a, *b;
    struct store_changes ch;
    uint64_t h0, h1, h2, m0;
    uint32_t uids[1];
    const char *err;

    unit_begin("MODSEQ: new messages, flag changes and expunges raise it");
    memset(&ch, 0, sizeof(ch));
    for (int i = 0; i < 3; i++)
	deliver("m20", "msg\n", NULL, 0);
    a = open_rw("m20");
    b = open_rw("m20");
    h0 = store_highestmodseq(a);
    unit_assert(h0 >= 3);
    unit_assert(store_msg(a, 0)->modseq > 0);
    unit_assert(store_msg(a, 0)->modseq < store_msg(a, 1)->modseq);
    unit_assert(store_msg(a, 2)->modseq <= h0);
    unit_assert_inteq(store_highestmodseq(b), h0);
    m0 = store_msg(a, 0)->modseq;
    unit_assert(store_set_flags(a, 0, STORE_FLAG_SEEN, 0, &err) == 0);
    unit_assert(store_msg(a, 0)->modseq > h0);
    h1 = store_highestmodseq(a);
    unit_assert(h1 > h0);
    /* the other session sees the change as a change */
    unit_assert(store_sync(b, &ch, &err) == 0);
    unit_assert_inteq(ch.n_changed, 1);
    unit_assert_inteq(ch.changed[0], store_msg(b, 0)->uid);
    unit_assert_inteq(ch.n_expunged, 0);
    unit_assert_inteq(ch.added, 0);
    unit_assert_inteq(store_msg(b, 0)->flags, STORE_FLAG_SEEN);
    unit_assert_inteq(store_msg(b, 0)->modseq, store_msg(a, 0)->modseq);
    unit_assert(store_msg(b, 0)->modseq != m0);
    unit_assert_inteq(store_highestmodseq(b), h1);
    /* its own change is not reported back to a */
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.n_changed, 0);
    /* expunge in b: a sees it expunged, HIGHESTMODSEQ up */
    uids[0] = store_msg(b, 1)->uid;
    unit_assert(store_expunge(b, uids, 1, NULL, &err) == 0);
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.n_expunged, 1);
    unit_assert_inteq(ch.expunged[0], uids[0]);
    h2 = store_highestmodseq(a);
    unit_assert(h2 > h1);
    /* a delivery: added at the end, above */
    deliver("m20", "late\n", NULL, 0);
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 1);
    unit_assert_inteq(store_count(a), 3);
    unit_assert(store_msg(a, 2)->modseq > h2);
    unit_assert(store_highestmodseq(a) > h2);
    store_close(&b);
    store_close(&a);
    unit_end();

    unit_begin("MODSEQ: store_modseq_now in a batch sees another session's change");
    a = open_rw("m20");
    b = open_rw("m20");
    unit_assert(store_set_flags(b, 1, STORE_FLAG_DRAFT, 0, &err) == 0);
    unit_assert(store_begin(a, &err) == 0);
    unit_assert(store_modseq_now(a, 1) == store_msg(b, 1)->modseq);
    unit_assert(store_modseq_now(a, 1) > store_msg(a, 1)->modseq);
    unit_assert_inteq(store_modseq_now(a, 0), store_msg(a, 0)->modseq);
    unit_assert(store_commit(a, &err) == 0);
    unit_assert_inteq(store_modseq_now(a, 1), store_msg(a, 1)->modseq);
    store_close(&b);
    store_close(&a);
    unit_end();

    unit_begin("MODSEQ: a batch renames many, writes the index once, MODSEQs set");
    a = open_rw("m20");
    h0 = store_highestmodseq(a);
    unit_assert(store_begin(a, &err) == 0);
    unit_assert(store_begin(a, &err) < 0 && errno == EBUSY);
    for (size_t i = 0; i < store_count(a); i++)
	unit_assert(store_set_flags(a, i, STORE_FLAG_FLAGGED, 0, &err) == 0);
    unit_assert(store_commit(a, &err) == 0);
    for (size_t i = 0; i < store_count(a); i++)
	unit_assert_idx(store_msg(a, i)->modseq > h0, (int) i);
    unit_assert(store_highestmodseq(a) >= h0 + store_count(a));
    store_close(&a);
    a = open_rw("m20");
    unit_assert(store_highestmodseq(a) >= h0 + 3);
    unit_assert(store_msg(a, 2)->flags & STORE_FLAG_FLAGGED);
    h1 = store_highestmodseq(a);
    store_close(&a);
    unit_end();

    unit_begin("MODSEQ: index lost: every MODSEQ above the old HIGHESTMODSEQ");
    unit_assert(unlink("m20/" STORE_INDEX_FILE) == 0);
    a = open_rw("m20");
    unit_assert(store_highestmodseq(a) > h1);
    unit_assert(store_msg(a, 0)->modseq > h1);
    unit_assert_inteq(store_count(a), 3);
    store_close(&a);
    unit_end();
    store_changes_free(&ch);
}

static void test_recent(void)
{
    struct store_mailbox *a, *b, *ro;
    struct store_changes ch;
    const char *err;

    unit_begin("\\Recent: claimed by one session only");
    memset(&ch, 0, sizeof(ch));
    deliver("m21", "one\n", NULL, 0);
    deliver("m21", "two\n", NULL, 0);
    ro = open_mode("m21", STORE_READ_ONLY);	/* (pop3d, EXAMINE: no claim) */
    unit_assert_inteq(store_recent_count(ro), 2);
    a = open_mode("m21", STORE_READ_WRITE | STORE_RECENT);
    unit_assert_inteq(store_recent_count(a), 2);
    b = open_mode("m21", STORE_READ_WRITE | STORE_RECENT);
    unit_assert_inteq(store_recent_count(b), 0);
    deliver("m21", "three\n", NULL, 0);
    unit_assert(store_sync(b, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 1);
    unit_assert_inteq(ch.recent_added, 1);
    unit_assert(store_msg(b, 2)->recent);
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 1);
    unit_assert_inteq(ch.recent_added, 0);
    unit_assert_inteq(store_recent_count(a), 2);	/* still its own two */
    unit_assert(!store_msg(a, 2)->recent);
    unit_assert(store_sync(ro, &ch, &err) == 0);
    unit_assert_inteq(store_recent_count(ro), 0);
    store_close(&b);
    store_close(&a);
    store_close(&ro);
    a = open_mode("m21", STORE_READ_WRITE | STORE_RECENT);
    unit_assert_inteq(store_recent_count(a), 0);
    store_close(&a);
    unit_end();
    store_changes_free(&ch);
}

static void test_keywords(void)
{
    struct store_mailbox *a, *b;
    const char *err;
    char name[32];
    int i;

    unit_begin("keywords: letters by name, shared, case-insensitive, 26 at most");
    deliver("m22", "x\n", NULL, 0);
    a = open_rw("m22");
    b = open_rw("m22");
    unit_assert(store_keyword_index(a, "$Junk", false, &err) < 0 && errno == ENOENT);
    unit_assert_inteq(store_keyword_index(a, "$Junk", true, &err), 0);
    unit_assert_inteq(store_keyword_index(a, "Work", true, &err), 1);
    unit_assert_inteq(store_keyword_index(a, "$junk", true, &err), 0);
    unit_assert_inteq(store_keyword_index(b, "WORK", false, &err), 1);
    unit_assert_streq(store_keyword_name(b, 0), "$Junk");
    unit_assert(store_keyword_name(b, 2) == NULL);
    unit_assert(store_keyword_index(a, "\\Seen", true, &err) < 0 && errno == EINVAL);
    unit_assert(store_keyword_index(a, "a b", true, &err) < 0 && errno == EINVAL);
    unit_assert(store_keyword_index(a, "", true, &err) < 0 && errno == EINVAL);
    unit_assert(store_set_flags(a, 0, STORE_FLAG_KEYWORD(1), 0, &err) == 0);
    unit_assert(strstr(store_msg(a, 0)->name, ":2,b") != NULL);
    for (i = 2; i < 26; i++) {
	fmt_buf_or_panic(name, sizeof(name), "kw%d", i);
	unit_assert_idx(store_keyword_index(b, name, true, &err) == i, i);
    }
    unit_assert(store_keyword_index(a, "one-too-many", true, &err) < 0 && errno == ENOSPC);
    unit_assert_streq(store_keyword_name(a, 25), "kw25");
    store_close(&b);
    store_close(&a);
    unit_end();
}

static void test_watch(void)
{
    struct store_mailbox *a;
    struct pollfd pfd;
    struct store_changes ch;
    const char *err;
    int fd;

    unit_begin("watch: readable after a delivery, quiet after clearing");
    memset(&ch, 0, sizeof(ch));
    deliver("m23", "x\n", NULL, 0);
    a = open_rw("m23");
    fd = store_watch_fd(a, &err);
    unit_assert(fd >= 0);
    unit_assert_inteq(store_watch_fd(a, &err), fd);
    pfd.fd = fd;
    pfd.events = POLLIN;
    unit_assert_inteq(poll(&pfd, 1, 0), 0);
    deliver("m23", "y\n", NULL, 0);
    unit_assert_inteq(poll(&pfd, 1, 1000), 1);
    store_watch_clear(a);
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 1);
    store_watch_clear(a);
    unit_assert_inteq(poll(&pfd, 1, 0), 0);
    unit_end();

    unit_begin("watch: our own index write is no change; another's beside it is");
    deliver("m23", "z\n", NULL, 0);
    unit_assert_inteq(poll(&pfd, 1, 1000), 1);
    unit_assert(store_watch_clear(a));
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 1);
    /* the sync wrote the index: an event, but ours */
    unit_assert_inteq(poll(&pfd, 1, 0), 1);
    unit_assert(!store_watch_clear(a));
    unit_assert_inteq(poll(&pfd, 1, 0), 0);
    /* ours again, and another process replacing the same file */
    deliver("m23", "w\n", NULL, 0);
    unit_assert(store_watch_clear(a));
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 1);
    {
	char data[65536];
	int dfd = open("m23", O_RDONLY | O_DIRECTORY), ifd;
	ssize_t len;

	unit_assert(dfd >= 0);
	ifd = openat(dfd, "posthorn-index", O_RDONLY);
	unit_assert(ifd >= 0);
	len = read(ifd, data, sizeof(data));
	unit_assert(len > 0);
	(void) close(ifd);
	unit_assert(store_write_atomic(dfd, "posthorn-index.other", "posthorn-index", data,
				       (size_t) len, &err) == 0);
	(void) close(dfd);
    }
    unit_assert(store_watch_clear(a));
    unit_assert(!store_watch_clear(a));
    unit_end();
    store_close(&a);
    store_changes_free(&ch);
}

static void test_cache(void)
{
    struct store_mailbox *a, *b;
    struct store_changes ch;
    const void *v;
    size_t len;
    const char *err;
    char big[100];
    int fd;

    unit_begin("cache: put, get, persisted, seen by other handles, damage dropped");
    memset(&ch, 0, sizeof(ch));
    for (int i = 0; i < 3; i++)
	deliver("m24", "x\n", NULL, 0);
    a = open_rw("m24");
    unit_assert_inteq(store_cache_get(a, 0, STORE_CACHE_ENVELOPE, &v, &len), 0);
    unit_assert(store_cache_put(a, 0, STORE_CACHE_ENVELOPE, "(env0)", 6, &err) == 0);
    unit_assert(store_cache_put(a, 2, STORE_CACHE_BODYSTRUCTURE, "(bs2)", 5, &err) == 0);
    unit_assert(store_cache_put(a, 2, STORE_CACHE_FIELDS, "x", 1, &err) < 0 && errno == EINVAL);
    unit_assert_inteq(store_cache_get(a, 0, STORE_CACHE_ENVELOPE, &v, &len), 1);
    unit_assert(len == 6 && memcmp(v, "(env0)", 6) == 0);
    unit_assert(store_cache_flush(a, &err) == 0);
    unit_assert_inteq(store_cache_get(a, 2, STORE_CACHE_BODYSTRUCTURE, &v, &len), 1);
    unit_assert(len == 5 && memcmp(v, "(bs2)", 5) == 0);
    b = open_rw("m24");
    unit_assert_inteq(store_cache_get(b, 0, STORE_CACHE_ENVELOPE, &v, &len), 1);
    unit_assert(len == 6 && memcmp(v, "(env0)", 6) == 0);
    unit_assert_inteq(store_cache_get(b, 1, STORE_CACHE_ENVELOPE, &v, &len), 0);
    /* both append: each sees the other's after a sync */
    unit_assert(store_cache_put(b, 1, STORE_CACHE_ENVELOPE, "(env1)", 6, &err) == 0);
    unit_assert(store_cache_flush(b, &err) == 0);
    unit_assert(store_cache_put(a, 1, STORE_CACHE_BODY, "(b1)", 4, &err) == 0);
    unit_assert(store_cache_flush(a, &err) == 0);
    unit_assert(store_sync(b, &ch, &err) == 0);
    unit_assert_inteq(store_cache_get(b, 1, STORE_CACHE_BODY, &v, &len), 1);
    unit_assert_inteq(store_cache_get(b, 1, STORE_CACHE_ENVELOPE, &v, &len), 1);
    unit_assert(len == 6 && memcmp(v, "(env1)", 6) == 0);
    store_close(&b);
    store_close(&a);
    /* a byte of a value changed: that value is dropped, the rest kept */
    fd = open("m24/posthorn-cache", O_RDWR);
    unit_assert(fd >= 0);
    unit_assert(pread(fd, big, sizeof(big), 0) > 40);
    {
	char *p = memmem(big, sizeof(big), "(env0)", 6);

	unit_assert(p != NULL);
	unit_assert(pwrite(fd, "X", 1, p - big + 1) == 1);
    }
    (void) close(fd);
    a = open_rw("m24");
    unit_assert_inteq(store_cache_get(a, 0, STORE_CACHE_ENVELOPE, &v, &len), 0);
    unit_assert_inteq(store_cache_get(a, 2, STORE_CACHE_BODYSTRUCTURE, &v, &len), 1);
    unit_assert(store_cache_put(a, 0, STORE_CACHE_ENVELOPE, "(new0)", 6, &err) == 0);
    store_close(&a);			/* (flushes: compacts the damaged file) */
    a = open_rw("m24");
    unit_assert_inteq(store_cache_get(a, 0, STORE_CACHE_ENVELOPE, &v, &len), 1);
    unit_assert(len == 6 && memcmp(v, "(new0)", 6) == 0);
    unit_assert_inteq(store_cache_get(a, 2, STORE_CACHE_BODYSTRUCTURE, &v, &len), 1);
    store_close(&a);
    /* garbage instead of the file: nothing cached, nothing broken */
    fd = open("m24/posthorn-cache", O_WRONLY | O_TRUNC);
    unit_assert(write(fd, "garbage garbage garbage garbage", 31) == 31);
    (void) close(fd);
    a = open_rw("m24");
    unit_assert_inteq(store_cache_get(a, 0, STORE_CACHE_ENVELOPE, &v, &len), 0);
    unit_assert(store_cache_put(a, 0, STORE_CACHE_ENVELOPE, "(e)", 3, &err) == 0);
    store_close(&a);
    a = open_rw("m24");
    unit_assert_inteq(store_cache_get(a, 0, STORE_CACHE_ENVELOPE, &v, &len), 1);
    store_close(&a);
    unit_end();
    store_changes_free(&ch);
}

static void test_append_copy(void)
{
    struct store_mailbox *a, *f, *ro;
    struct store_changes ch;
    uint32_t uv, uid, uids[3];
    size_t idx[3] = {0, 1, 2};
    struct stat st1, st2;
    char buf[256], path[600], path2[600];
    const char *err;
    int k;

    unit_begin("append: durable in cur/ with the next UID, flags, date");
    memset(&ch, 0, sizeof(ch));
    deliver("m25", "first\n", NULL, 0);
    a = open_mode("m25", STORE_READ_WRITE | STORE_RECENT);
    unit_assert_inteq(store_uidnext(a), 2);
    k = store_keyword_index(a, "Later", true, &err);
    unit_assert_inteq(k, 0);
    unit_assert(store_append(a, -1, "appended\n", 9, STORE_FLAG_SEEN | STORE_FLAG_KEYWORD(k),
			     1500000000, &uv, &uid, &err) == 0);
    unit_assert_inteq(uv, store_uidvalidity(a));
    unit_assert_inteq(uid, 2);
    unit_assert_inteq(count_files("m25", "tmp"), 0);
    unit_assert_inteq(store_count(a), 1);	/* (not until store_sync) */
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 1);
    unit_assert_inteq(ch.recent_added, 1);
    unit_assert_inteq(store_msg(a, 1)->uid, 2);
    unit_assert_inteq(store_msg(a, 1)->flags, STORE_FLAG_SEEN | STORE_FLAG_KEYWORD(0));
    unit_assert_inteq(store_msg(a, 1)->mtime, 1500000000);
    unit_assert_inteq(store_msg(a, 1)->crlf_size, 10);
    read_msg(a, 1, buf, sizeof(buf));
    unit_assert_streq(buf, "appended\n");
    deliver("m25", "third\n", NULL, 0);
    {
	int in = open("m25/cur", O_RDONLY);	/* (fd form: a file) */
	int tf = open("m25-in", O_RDWR | O_CREAT | O_TRUNC, 0600);

	unit_assert(write(tf, "fourth\n", 7) == 7);
	unit_assert(lseek(tf, 0, SEEK_SET) == 0);
	unit_assert(store_append(a, tf, NULL, 0, 0, 0, NULL, &uid, &err) == 0);
	unit_assert_inteq(uid, 4);	/* (the delivery took 3) */
	(void) close(tf);
	(void) close(in);
    }
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(ch.added, 2);
    unit_assert_inteq(store_msg(a, 3)->uid, 4);
    ro = store_open("m25", NULL, STORE_READ_ONLY, &err);
    unit_assert(ro != NULL);
    unit_assert(store_append(ro, -1, "ro\n", 3, 0, 0, NULL, &uid, &err) == 0);
    unit_assert_inteq(uid, 5);
    store_close(&ro);
    unit_end();

    unit_begin("copy: hard links, consecutive new UIDs, keywords by name");
    unit_assert(store_folder_create("m25", "Keep", &err) == 0);
    f = store_open("m25", "Keep", STORE_READ_WRITE, &err);
    unit_assert(f != NULL);
    unit_assert_inteq(store_keyword_index(f, "Other", true, &err), 0);
    unit_assert(store_copy(a, idx, 3, f, uids, &uv, &err) == 0);
    unit_assert_inteq(uv, store_uidvalidity(f));
    unit_assert_inteq(uids[0], 1);
    unit_assert_inteq(uids[1], 2);
    unit_assert_inteq(uids[2], 3);
    unit_assert(store_sync(f, &ch, &err) == 0);
    unit_assert_inteq(store_count(f), 3);
    unit_assert_inteq(store_msg(f, 1)->flags & STORE_FLAG_SEEN, STORE_FLAG_SEEN);
    unit_assert_inteq(store_keyword_index(f, "Later", false, &err), 1);
    unit_assert_inteq(store_msg(f, 1)->flags & ~STORE_FLAG_SEEN, STORE_FLAG_KEYWORD(1));
    unit_assert_inteq(store_msg(f, 1)->mtime, 1500000000);
    fmt_buf_or_panic(path, sizeof(path), "m25/cur/%s", store_msg(a, 1)->name);
    fmt_buf_or_panic(path2, sizeof(path2), "m25/.Keep/cur/%s", store_msg(f, 1)->name);
    unit_assert(stat(path, &st1) == 0 && stat(path2, &st2) == 0);
    unit_assert(st1.st_ino == st2.st_ino);
    read_msg(f, 2, buf, sizeof(buf));
    unit_assert_streq(buf, "third\n");
    /* into the same mailbox: new keys, new UIDs */
    unit_assert(store_copy(a, idx, 1, a, uids, NULL, &err) == 0);
    unit_assert_inteq(uids[0], 6);
    unit_assert(store_sync(a, &ch, &err) == 0);
    unit_assert_inteq(store_count(a), 6);
    read_msg(a, 5, buf, sizeof(buf));
    unit_assert_streq(buf, "first\n");
    store_close(&f);
    store_close(&a);
    a = open_rw("m25");
    unit_assert_inteq(store_count(a), 6);
    unit_assert_inteq(store_uidnext(a), 7);
    store_close(&a);
    unit_end();
    store_changes_free(&ch);
}

static void test_old_index(void)
{
    struct store_mailbox *a;
    char text[1024], name[256];
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *err;
    int fd;

    unit_begin("a version 1 index is read (UIDs kept) and rewritten as version 2");
    deliver("m26", "x\n", name, sizeof(name));
    unit_assert(mkdir("m26/cur", 0700) == 0 || errno == EEXIST);
    {
	char from[600], to[600];

	fmt_buf_or_panic(from, sizeof(from), "m26/new/%s", name);
	fmt_buf_or_panic(to, sizeof(to), "m26/cur/%s", name);
	unit_assert(rename(from, to) == 0);
    }
    fmt_buf_or_panic(text, sizeof(text), "posthorn-index 1\nuidvalidity 77\nuidnext 40\n"
		     "cur 0 0\n39 2 2 1700000000 %s\n", name);
    for (const char *cp = text; *cp; cp++) {
	h ^= (unsigned char) *cp;
	h *= 0x100000001b3ULL;
    }
    fmt_buf_or_panic(text + strlen(text), sizeof(text) - strlen(text), "end 1 %016llx\n",
		     (unsigned long long) h);
    fd = open("m26/" STORE_INDEX_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    unit_assert(write_all_fd(fd, text, strlen(text)) == 0);
    (void) close(fd);
    fd = open("m26/" STORE_ANCHOR_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    unit_assert(write_all_fd(fd, "posthorn-uidvalidity 1\n77 40\n", 29) == 0);
    (void) close(fd);
    a = open_rw("m26");
    unit_assert_inteq(store_uidvalidity(a), 77);
    unit_assert_inteq(store_count(a), 1);
    unit_assert_inteq(store_msg(a, 0)->uid, 39);
    unit_assert_inteq(store_uidnext(a), 40);
    unit_assert(store_msg(a, 0)->modseq >= 1);
    store_close(&a);
    {
	struct str *s = str_new(4096);

	unit_assert(read_file("m26/" STORE_INDEX_FILE, s, 4096, &err) == 0);
	unit_assert(strncmp(str_cstr(s), "posthorn-index 2\n", 17) == 0);
	str_free(&s);
    }
    unit_end();
}

/* test_bulk_names - many messages (an index of more than one name
 * window): every message opens, forward, backward and by stride, by
 * store_open_msg and store_open_msg_pread; CRLF sizes counted in one
 * handle reach the index both when it is still the snapshot's (the
 * rewrite from the mapping) and when another handle replaced it
 * meanwhile (whose change must survive) */
static void test_bulk_names(void)
{
    struct store_mailbox *a, *b, *c;
    char text[64], buf[64];
    const char *err;
    size_t i, k, n = 600;
    ssize_t got;
    int fd;

    unit_begin("names: 600 messages open by their names, any order");
    for (i = 0; i < n; i++) {
	fmt_buf_or_panic(text, sizeof(text), "message number %zu\n", i);
	deliver("m40", text, NULL, 0);
    }
    for (k = 0; k < 2; k++) {		/* the first open and a warm one */
	a = open_rw("m40");
	unit_assert_inteq(store_count(a), n);
	for (i = 0; i < 3 * n; i++) {
	    size_t j = i < n ? i : i < 2 * n ? 2 * n - 1 - i : (i * 7919) % n;

	    fmt_buf_or_panic(text, sizeof(text), "message number %zu\n", j);
	    if (i & 1) {
		read_msg(a, j, buf, sizeof(buf));
	    } else {
		fd = store_open_msg_pread(a, j, &err);
		unit_assert_idx(fd >= 0, j);
		got = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
		buf[got > 0 ? got : 0] = 0;
		if (fd >= 0)
		    (void) close(fd);
	    }
	    unit_assert_idx(strcmp(buf, text) == 0, j);
	}
	store_close(&a);
    }
    unit_end();

    unit_begin("CRLF sizes saved from the snapshot's index, and after another's change");
    a = open_rw("m40");
    for (i = 0; i < n; i += 3)
	unit_assert_idx(store_msg_crlf_size(a, i) == (off_t) store_msg(a, i)->size + 1, i);
    unit_assert(store_cache_flush(a, &err) == 0);	/* (from a's mapping) */
    c = store_open("m40", NULL, STORE_READ_ONLY, &err);
    unit_assert(c != NULL);
    for (i = 0; c && i < n; i++)
	unit_assert_idx(store_msg(c, i)->crlf_size
			== (i % 3 ? -1 : (off_t) store_msg(c, i)->size + 1), i);
    store_close(&c);
    store_close(&a);
    /* another handle changes a flag (a new index) before a saves */
    a = open_rw("m40");
    b = open_rw("m40");
    unit_assert(store_set_flags(b, 5, STORE_FLAG_FLAGGED, 0, &err) == 0);
    for (i = 0; i < n; i++)
	unit_assert_idx(store_msg_crlf_size(a, i) == (off_t) store_msg(a, i)->size + 1, i);
    unit_assert(store_cache_flush(a, &err) == 0);
    {
	struct str *t = str_new(1 << 20);

	unit_assert(read_file("m40/" STORE_INDEX_FILE, t, 1 << 20, &err) == 0);
	unit_assert(memmem(str_cstr(t), str_len(t), ":2,F", 4) != NULL);	/* b's change */
	str_free(&t);
    }
    c = store_open("m40", NULL, STORE_READ_ONLY, &err);
    unit_assert(c != NULL);
    for (i = 0; c && i < n; i++)
	unit_assert_idx(store_msg(c, i)->crlf_size == (off_t) store_msg(c, i)->size + 1, i);
    unit_assert(c && (store_msg(c, 5)->flags & STORE_FLAG_FLAGGED));
    unit_assert(c && store_msg(c, 5)->modseq == store_msg(b, 5)->modseq);
    store_close(&c);
    store_close(&b);
    store_close(&a);
    unit_end();
}

int main(void)
{
    test_crlf_size();
    test_uids_stable();
    test_index_lost();
    test_index_damaged();
    test_index_parse();
    test_flags();
    test_expunge();
    test_session_lock();
    test_unchanged_cur_not_read();
    test_duplicates();
    test_folders();
    test_modseq();
    test_recent();
    test_keywords();
    test_watch();
    test_cache();
    test_append_copy();
    test_old_index();
    test_bulk_names();
    return unit_done();
}
