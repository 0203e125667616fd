/* test-store_folder.c - unit tests for store_folder.c: UTF-8 names,
 * the folder tree (parents that do not exist, children, subscriptions,
 * special uses), RENAME with children and of INBOX (messages keep
 * their UIDs), subscriptions kept atomically, the special-use folders
 * of a new user, DELETE, STATUS. Runs in a scratch working directory. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safe_file.h"
#include "store.h"
#include "str.h"
#include "strv.h"
#include "unit.h"

static int seq;

/* deliver - a message into DIR/new/ as local-delivery does */
static void deliver(const char *dir, const char *text)
{
    char tmp[512], dst[512], sub[512], base[128];
    const char *err;
    int fd;

    fmt_buf_or_panic(base, sizeof(base), "%ld.M%dP%d.unit", 1700000000L + seq, seq,
		     (int) getpid());
    seq++;
    if (mkdir_p(dir, 0700, &err) < 0)
	unit_fail_at(__FILE__, __LINE__, "%s", err);
    fmt_buf_or_panic(sub, sizeof(sub), "%s/tmp", dir);
    (void) mkdir(sub, 0700);
    fmt_buf_or_panic(sub, sizeof(sub), "%s/new", dir);
    (void) mkdir(sub, 0700);
    fmt_buf_or_panic(sub, sizeof(sub), "%s/cur", dir);
    (void) mkdir(sub, 0700);
    fmt_buf_or_panic(tmp, sizeof(tmp), "%s/tmp/%s", dir, base);
    fmt_buf_or_panic(dst, sizeof(dst), "%s/new/%s,S=%zu", dir, base, strlen(text));
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    unit_assert(fd >= 0);
    unit_assert(write_all_fd(fd, text, strlen(text)) == 0);
    (void) close(fd);
    unit_assert(rename(tmp, dst) == 0);
}

/* find - the tree entry of name, failing the test if there is none */
static const struct store_folder_info *find(const struct store_folder_tree *t, const char *name)
{
    const struct store_folder_info *fi = store_folder_tree_find(t, name);

    if (fi == NULL)
	unit_fail_at(__FILE__, __LINE__, "no tree entry %s", name);
    return fi;
}

/* test_names - UTF-8 names valid, broken UTF-8 not */
static void test_names(void)
{
    unit_begin("folder names: UTF-8 accepted, invalid UTF-8 refused");
    unit_assert(store_folder_valid("Entw\xc3\xbc" "rfe"));
    unit_assert(store_folder_valid("\xe5\x8f\xb0\xe5\x8c\x97.\xf0\x9f\x98\x80"));
    unit_assert(!store_folder_valid("a\xc3"));
    unit_assert(!store_folder_valid("\xc0\xaf"));
    unit_assert(!store_folder_valid("\xed\xa0\x80"));
    unit_assert(!store_folder_valid("INBOX"));
    unit_assert(store_folder_valid("INBOX.x"));
    unit_assert(store_folder_is_inbox("inBox"));
    unit_assert(store_use_parse("\\sent", 5) == STORE_USE_SENT);
    unit_assert(store_use_parse("\\Sent2", 6) == 0);
    unit_assert_streq(store_use_name(6), "\\Trash");
    unit_end();
}

/* test_tree - parents, children, subscriptions of names that do not exist */
static void test_tree(void)
{
    struct store_folder_tree t;
    const struct store_folder_info *fi;
    struct strv subs = STRV_INIT;
    const char *err = "";

    unit_begin("folder tree: \\Noselect parents, children, subscriptions");
    deliver("t1", "x\n");
    unit_assert(store_folder_create("t1", "a.b.c", &err) == 0);
    unit_assert(store_folder_create("t1", "x", &err) == 0);
    unit_assert(store_folder_create("t1", "INBOX.kid", &err) == 0);
    unit_assert(store_subscribe("t1", "x", true, &err) == 0);
    unit_assert(store_subscribe("t1", "gone", true, &err) == 0);
    unit_assert(store_subscribe("t1", "gone", true, &err) == 0);
    unit_assert(store_subscribe("t1", "inbox", true, &err) == 0);
    unit_assert(store_subscribe("t1", "a..b", true, &err) < 0 && errno == EINVAL);
    unit_assert(store_subscriptions("t1", &subs, &err) == 0);
    unit_assert_inteq(subs.count, 3);
    unit_assert_streq(subs.items[0], "INBOX");
    unit_assert_streq(subs.items[1], "gone");
    unit_assert_streq(subs.items[2], "x");
    strv_fini(&subs);
    unit_assert(store_folder_tree("t1", &t, &err) == 0);
    unit_assert_inteq(t.count, 7);	/* INBOX INBOX.kid a a.b a.b.c gone x */
    fi = find(&t, "INBOX");
    unit_assert(fi->exists && fi->has_children && fi->subscribed);
    fi = find(&t, "a");
    unit_assert(!fi->exists && fi->has_children && !fi->subscribed);
    fi = find(&t, "a.b");
    unit_assert(!fi->exists && fi->has_children);
    fi = find(&t, "a.b.c");
    unit_assert(fi->exists && !fi->has_children);
    fi = find(&t, "gone");
    unit_assert(!fi->exists && !fi->has_children && fi->subscribed);
    fi = find(&t, "x");
    unit_assert(fi->exists && !fi->has_children && fi->subscribed);
    store_folder_tree_free(&t);
    unit_assert(store_subscribe("t1", "gone", false, &err) == 0);
    unit_assert(store_subscriptions("t1", &subs, &err) == 0);
    unit_assert_inteq(subs.count, 2);
    strv_fini(&subs);
    /* no root at all: just INBOX */
    unit_assert(store_folder_tree("t-none", &t, &err) == 0);
    unit_assert_inteq(t.count, 1);
    store_folder_tree_free(&t);
    unit_end();
}

/* test_rename - a folder with its children, subscriptions and uses */
static void test_rename(void)
{
    struct store_folder_tree t;
    struct store_mailbox *mb;
    struct strv subs = STRV_INIT;
    const char *err = "";
    uint32_t uv;

    unit_begin("rename: with children and special use, subscriptions kept; refusals");
    deliver("t2/.a", "in a\n");
    unit_assert(store_folder_create("t2", "a.b", &err) == 0);
    unit_assert(store_folder_create("t2", "ab", &err) == 0);
    unit_assert(store_folder_create("t2", "other", &err) == 0);
    unit_assert(store_subscribe("t2", "a.b", true, &err) == 0);
    unit_assert(store_subscribe("t2", "ab", true, &err) == 0);
    unit_assert(store_folder_set_use("t2", "a", STORE_USE_ARCHIVE, &err) == 0);
    mb = store_open("t2", "a", STORE_READ_WRITE, &err);
    unit_assert(mb != NULL);
    uv = store_uidvalidity(mb);
    store_close(&mb);
    unit_assert(store_folder_rename("t2", "a", "other", &err) < 0 && errno == EEXIST);
    unit_assert(store_folder_rename("t2", "a", "a.b.c", &err) < 0 && errno == EINVAL);
    unit_assert(store_folder_rename("t2", "nope", "n2", &err) < 0 && errno == ENOENT);
    unit_assert(store_folder_rename("t2", "a", "z.y", &err) == 0);
    unit_assert(access("t2/.a", F_OK) < 0 && access("t2/.a.b", F_OK) < 0);
    unit_assert(access("t2/.z.y/cur", F_OK) == 0 && access("t2/.z.y.b/cur", F_OK) == 0);
    unit_assert(access("t2/.ab", F_OK) == 0);	/* not below "a" */
    mb = store_open("t2", "z.y", STORE_READ_WRITE, &err);
    unit_assert(mb != NULL);
    unit_assert_inteq(store_count(mb), 1);
    unit_assert_inteq(store_uidvalidity(mb), uv);
    store_close(&mb);
    unit_assert(store_subscriptions("t2", &subs, &err) == 0);
    unit_assert_inteq(subs.count, 2);	/* kept as they were */
    unit_assert_streq(subs.items[0], "a.b");
    unit_assert_streq(subs.items[1], "ab");
    strv_fini(&subs);
    unit_assert(store_folder_tree("t2", &t, &err) == 0);
    unit_assert(find(&t, "z.y")->special_use == STORE_USE_ARCHIVE);
    unit_assert(!find(&t, "a")->exists && !find(&t, "a")->has_children);	/* subscribed "a.b" */
    unit_assert(!find(&t, "z")->exists && find(&t, "z")->has_children);
    store_folder_tree_free(&t);
    /* a parent that does not exist itself: its children move */
    unit_assert(store_folder_rename("t2", "z", "w", &err) == 0);
    unit_assert(access("t2/.w.y.b/cur", F_OK) == 0);
    unit_end();
}

/* test_rename_inbox - INBOX's messages move (with their UIDs), INBOX
 * stays, empty, with its children */
static void test_rename_inbox(void)
{
    struct store_mailbox *mb;
    const char *err = "";
    uint32_t uid0, uid1;
    int kw;

    unit_begin("rename INBOX: messages move with their UIDs, INBOX stays empty");
    deliver("t3", "one\n");
    deliver("t3", "two\n");
    mb = store_open("t3", NULL, STORE_READ_WRITE, &err);
    unit_assert(mb != NULL && store_count(mb) == 2);
    uid0 = store_msg(mb, 0)->uid;
    uid1 = store_msg(mb, 1)->uid;
    unit_assert(store_set_flags(mb, 0, STORE_FLAG_SEEN, 0, &err) == 0);
    kw = store_keyword_index(mb, "$Label1", true, &err);
    unit_assert(kw >= 0);
    unit_assert(store_set_flags(mb, 1, STORE_FLAG_KEYWORD(kw), 0, &err) == 0);
    store_close(&mb);
    deliver("t3", "three, still in new/\n");
    unit_assert(store_folder_create("t3", "INBOX.kid", &err) == 0);
    unit_assert(store_folder_create("t3", "Taken", &err) == 0);
    unit_assert(store_folder_rename("t3", "INBOX", "Taken", &err) < 0 && errno == EEXIST);
    unit_assert(store_folder_rename("t3", "inbox", "Old", &err) == 0);
    mb = store_open("t3", "Old", STORE_READ_WRITE, &err);
    unit_assert(mb != NULL);
    unit_assert_inteq(store_count(mb), 3);
    unit_assert_inteq(store_msg(mb, 0)->uid, uid0);
    unit_assert_inteq(store_msg(mb, 1)->uid, uid1);
    unit_assert(store_msg(mb, 0)->flags & STORE_FLAG_SEEN);
    unit_assert(store_msg(mb, 2)->uid > uid1);
    unit_assert(store_msg(mb, 1)->flags & STORE_FLAG_KEYWORD(kw));
    unit_assert(store_keyword_name(mb, (unsigned) kw) != NULL);
    unit_assert_streq(store_keyword_name(mb, (unsigned) kw), "$Label1");
    store_close(&mb);
    mb = store_open("t3", NULL, STORE_READ_WRITE, &err);
    unit_assert(mb != NULL);
    unit_assert_inteq(store_count(mb), 0);
    unit_assert(store_uidnext(mb) > uid1);	/* UIDs of INBOX not reused */
    store_close(&mb);
    unit_assert(access("t3/.INBOX.kid/cur", F_OK) == 0);
    unit_end();
}

/* test_special - a new user's folders, once */
static void test_special(void)
{
    struct store_folder_tree t;
    struct strv subs = STRV_INIT;
    const char *err = "";

    unit_begin("special use: Drafts Sent Trash Junk made once, subscribed");
    unit_assert(store_folders_ensure_special("t4/Maildir", &err) == 0);
    unit_assert(access("t4/Maildir/.Drafts/cur", F_OK) == 0);
    unit_assert(access("t4/Maildir/.Junk/maildirfolder", F_OK) == 0);
    unit_assert(store_folder_tree("t4/Maildir", &t, &err) == 0);
    unit_assert(find(&t, "Drafts")->special_use == STORE_USE_DRAFTS);
    unit_assert(find(&t, "Sent")->special_use == STORE_USE_SENT);
    unit_assert(find(&t, "Trash")->special_use == STORE_USE_TRASH);
    unit_assert(find(&t, "Junk")->special_use == STORE_USE_JUNK);
    unit_assert(find(&t, "INBOX")->special_use == 0);
    store_folder_tree_free(&t);
    unit_assert(store_subscriptions("t4/Maildir", &subs, &err) == 0);
    unit_assert_inteq(subs.count, 4);
    strv_fini(&subs);
    /* deleted by the user: not made again; its use forgotten */
    unit_assert(store_folder_delete("t4/Maildir", "Junk", &err) == 0);
    unit_assert(store_folders_ensure_special("t4/Maildir", &err) == 0);
    unit_assert(access("t4/Maildir/.Junk", F_OK) < 0);
    unit_assert(store_folder_create("t4/Maildir", "Junk", &err) == 0);
    unit_assert(store_folder_tree("t4/Maildir", &t, &err) == 0);
    unit_assert(find(&t, "Junk")->special_use == 0);
    store_folder_tree_free(&t);
    /* CREATE ... USE */
    unit_assert(store_folder_set_use("t4/Maildir", "Junk", STORE_USE_JUNK | STORE_USE_ALL,
				     &err) == 0);
    unit_assert(store_folder_tree("t4/Maildir", &t, &err) == 0);
    unit_assert(find(&t, "Junk")->special_use == (STORE_USE_JUNK | STORE_USE_ALL));
    unit_assert(find(&t, "Sent")->special_use == STORE_USE_SENT);
    store_folder_tree_free(&t);
    unit_end();
}

/* test_status - counts without claiming \Recent */
static void test_status(void)
{
    struct store_folder_status st;
    struct store_mailbox *mb;
    const char *err = "";

    unit_begin("status: messages, recent, unseen, uidnext, uidvalidity; ENOENT");
    deliver("t5/.f", "1\n");
    deliver("t5/.f", "2\n");
    deliver("t5/.f", "3\n");
    mb = store_open("t5", "f", STORE_READ_WRITE, &err);
    unit_assert(mb != NULL);
    unit_assert(store_set_flags(mb, 1, STORE_FLAG_SEEN, 0, &err) == 0);
    store_close(&mb);
    deliver("t5/.f", "4\n");
    unit_assert(store_folder_status("t5", "f", ~0u, &st, &err) == 0);
    unit_assert_inteq(st.messages, 4);
    unit_assert_inteq(st.unseen, 3);
    unit_assert_inteq(st.uidnext, 5);
    unit_assert(st.uidvalidity != 0);
    unit_assert(st.highestmodseq > 0);
    unit_assert_inteq(st.recent, 4);	/* nobody claimed them */
    unit_assert(store_folder_status("t5", "f", ~0u, &st, &err) == 0);
    unit_assert_inteq(st.recent, 4);	/* STATUS claims none */
    mb = store_open("t5", "f", STORE_READ_WRITE | STORE_RECENT, &err);
    unit_assert(mb != NULL);
    unit_assert(store_folder_status("t5", "f", ~0u, &st, &err) == 0);
    unit_assert_inteq(st.recent, 0);	/* a SELECT took them */
    store_close(&mb);
    unit_assert(store_folder_status("t5", "nope", ~0u, &st, &err) < 0 && errno == ENOENT);
    unit_assert(store_folder_status("t5", "INBOX", ~0u, &st, &err) == 0);
    unit_assert_inteq(st.messages, 0);
    unit_assert(store_folder_exists("t5", "f", &err) == 1);
    unit_assert(store_folder_exists("t5", "g", &err) == 0);
    unit_end();
}

int main(void)
{
    test_names();
    test_tree();
    test_rename();
    test_rename_inbox();
    test_special();
    test_status();
    return unit_done();
}
