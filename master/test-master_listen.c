/* test-master_listen.c - unit tests for master's listener addresses,
 * unix/fifo listeners, the configuration snapshot and the status-record
 * bookkeeping (master_listen.c, master_conf.c, master_spawn.c). */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"
#include "unit.h"

/* mail */
#include "config.h"
#include "master_proto.h"
#include "mastercf.h"

/* master */
#include "master.h"
#include "test-master_conf.h"

/* conf_for - a snapshot with the given address settings and one entry */
static struct master_conf *conf_for(const char *interfaces, const char *protocols,
				    const char *line)
{
    return test_master_conf(interfaces, protocols, line);
}

struct key_case {
    const char *interfaces, *protocols, *line;
    const char *want;			/* NULL: an error containing want_error */
    const char *want_error;
};

/* expand - "v4"/"v6" in a wanted key become the family numbers */
static void expand(const char *in, char *out, size_t size)
{
    struct str *s = str_new(4096);

    for (const char *cp = in; *cp; cp++) {
	if (strncmp(cp, "v4/", 3) == 0) {
	    str_appendf_or_panic(s, "%d/", AF_INET);
	    cp += 2;
	} else if (strncmp(cp, "v6/", 3) == 0) {
	    str_appendf_or_panic(s, "%d/", AF_INET6);
	    cp += 2;
	} else {
	    str_appendc_or_panic(s, *cp);
	}
    }
    str_copy_out_or_panic(out, size, str_cstr(s));
    str_free(&s);
}

static void test_listen_keys(void)
{
    static const struct key_case cases[] = {
	{"127.0.0.1", "ipv4", "2525 inet - - n - - smtpd\n", "inet v4/127.0.0.1/2525", NULL},
	{"all", "ipv4", "25 inet - - n - - smtpd\n", "inet v4/0.0.0.0/25", NULL},
	{"all", "ipv4, ipv6", "25 inet - - n - - smtpd\n", "inet v4/0.0.0.0/25 v6/::/25", NULL},
	{"loopback-only", "ipv4 ipv6", "587 inet - - n - - smtpd\n",
	 "inet v4/127.0.0.1/587 v6/::1/587", NULL},
	{"loopback-only", "ipv6", "587 inet - - n - - smtpd\n", "inet v6/::1/587", NULL},
	{"127.0.0.1, ::1, 127.0.0.1", "ipv4", "25 inet - - n - - smtpd\n",
	 "inet v4/127.0.0.1/25", NULL},
	{"[::1]", "ipv4,ipv6", "25 inet - - n - - smtpd\n", "inet v6/::1/25", NULL},
	/* a host in the service name overrides inet_interfaces */
	{"all", "ipv4", "127.0.0.2:2525 inet - - n - - smtpd\n", "inet v4/127.0.0.2/2525", NULL},
	{"127.0.0.1", "ipv4, ipv6", "[::1]:2525 inet - - n - - smtpd\n", "inet v6/::1/2525", NULL},
	{"127.0.0.1", "ipv4, ipv6", "*:2525 inet - - n - - smtpd\n",
	 "inet v4/0.0.0.0/2525 v6/::/2525", NULL},
	{"127.0.0.1", "ipv4", "smtp inet - - n - - smtpd\n", "inet v4/127.0.0.1/smtp", NULL},
	/* unix and fifo: the path decides */
	{"all", "all", "cleanup unix n - n - 0 cleanup\n", "unix /q/public/cleanup", NULL},
	{"all", "all", "qmgr fifo - - n 300 1 qmgr\n", "fifo /q/private/qmgr", NULL},
	{"all", "all", "auth unix - n n - - auth\n", "unix /q/private/auth", NULL},
	/* errors */
	{"127.0.0.1", "ipv4", "[::1]:25 inet - - n - - smtpd\n", NULL, "no address to listen on"},
	{"::1", "ipv4", "25 inet - - n - - smtpd\n", NULL, "no address to listen on"},
	{"all", "ipv5", "25 inet - - n - - smtpd\n", NULL, "inet_protocols: unknown protocol"},
	{"all", "", "25 inet - - n - - smtpd\n", NULL, "no usable protocol"},
    };

    unit_begin("master_listen_key: inet_interfaces, inet_protocols, hosts, paths");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	const struct key_case *c = &cases[i];
	struct master_conf *conf = conf_for(c->interfaces, c->protocols, c->line);
	char *key = NULL;
	const char *err = NULL;
	int rc = master_listen_key(conf, &conf->cf->entries[0], &key, &err);

	if (c->want) {
	    char want[512];

	    expand(c->want, want, sizeof(want));
	    unit_assert_idx(rc == 0, i);
	    unit_assert_streq_idx(key, want, i);
	} else {
	    unit_assert_idx(rc < 0, i);
	    unit_assert_idx(err && strstr(err, c->want_error), i);
	}
	mem_free(&key);
	master_conf_free(&conf);
    }
    unit_end();
}

static void test_unix_and_fifo_listeners(void)
{
    char dir[] = "/tmp/test-master-XXXXXX";
    char path[256];
    struct master_conf *conf;
    struct master_service serv;
    struct stat st;
    const char *err;

    unit_begin("unix and fifo listeners: modes, close removes the name");
    unit_assert(mkdtemp(dir) != NULL);
    fmt_buf_or_panic(path, sizeof(path), "%s/private", dir);
    unit_assert(mkdir(path, 0700) == 0);
    fmt_buf_or_panic(path, sizeof(path), "%s/public", dir);
    unit_assert(mkdir(path, 0710) == 0);
    conf = conf_for("all", "all", "trig unix - - n - - x\npub unix n - n - - x\n"
		    "ff fifo n - n - - x\n");
    mem_free(&conf->queue_directory);
    conf->queue_directory = mem_strdup(dir);
    /* no mail owner lookup: the files belong to whoever runs the test */

    struct {
	size_t entry;
	const char *rel;
	mode_t mode;
	bool sock;
    } want[] = {
	{0, "private/trig", 0600, true},
	{1, "public/pub", 0666, true},
	{2, "public/ff", 0622, false},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
	memset(&serv, 0, sizeof(serv));
	serv.ent = &conf->cf->entries[want[i].entry];
	serv.type = serv.ent->type;
	unit_assert_idx(master_listen_open(conf, &serv, &err) == 0, i);
	unit_assert_idx(serv.listen_count == 1, i);
	fmt_buf_or_panic(path, sizeof(path), "%s/%s", dir, want[i].rel);
	unit_assert_idx(lstat(path, &st) == 0, i);
	unit_assert_idx((st.st_mode & 07777) == want[i].mode, i);
	unit_assert_idx(want[i].sock ? S_ISSOCK(st.st_mode) : S_ISFIFO(st.st_mode), i);
	unit_assert_idx(fcntl(serv.listen[0].fd, F_GETFD) & FD_CLOEXEC, i);
	unit_assert_idx(fcntl(serv.listen[0].fd, F_GETFL) & O_NONBLOCK, i);
	if (!want[i].sock) {
	    char buf[4];

	    /* a wake-up goes into the FIFO */
	    master_wakeup_send(conf, &serv);
	    unit_assert_idx(read(serv.listen[0].fd, buf, sizeof(buf)) == 1 && buf[0] == 'W', i);
	}
	master_listen_close(&serv);
	unit_assert_idx(serv.listen_count == 0, i);
	unit_assert_idx(lstat(path, &st) < 0, i);
    }
    master_conf_free(&conf);
    fmt_buf_or_panic(path, sizeof(path), "%s/private", dir);
    rmdir(path);
    fmt_buf_or_panic(path, sizeof(path), "%s/public", dir);
    rmdir(path);
    rmdir(dir);
    unit_end();
}

static void test_conf_load(void)
{
    char dir[] = "/tmp/test-master-conf-XXXXXX";
    char path[256];
    struct master_conf *conf;
    const char *err;
    FILE *fp;

    unit_begin("master_conf_load: snapshot, file:line errors");
    unit_assert(mkdtemp(dir) != NULL);
    fmt_buf_or_panic(path, sizeof(path), "%s/main.cf", dir);
    fp = fopen(path, "w");
    fprintf(fp, "queue_directory = /var/q\ninet_interfaces = 127.0.0.1\n"
	    "service_throttle_time = 2m\n");
    fclose(fp);
    fmt_buf_or_panic(path, sizeof(path), "%s/master.cf", dir);
    fp = fopen(path, "w");
    fprintf(fp, "# services\n2525 inet - - n - - smtpd\n");
    fclose(fp);
    conf = master_conf_load(dir, &err);
    unit_assert(conf != NULL);
    if (conf) {
	unit_assert_streq(conf->queue_directory, "/var/q");
	unit_assert_streq(conf->inet_interfaces, "127.0.0.1");
	unit_assert_streq(conf->config_dir, dir);
	unit_assert_inteq(conf->service_throttle_time, 120);
	unit_assert_inteq(conf->cf->count, 1);
	/* the snapshot survives a new config_init */
	config_init();
	unit_assert_streq(conf->queue_directory, "/var/q");
	master_conf_free(&conf);
	unit_assert(conf == NULL);
    }
    fp = fopen(path, "w");
    fprintf(fp, "2525 inet - - n - - smtpd\nbroken\n");
    fclose(fp);
    unit_assert(master_conf_load(dir, &err) == NULL);
    unit_assert(strstr(err, "master.cf:2:") != NULL);
    fmt_buf_or_panic(path, sizeof(path), "%s/main.cf", dir);
    fp = fopen(path, "w");
    fprintf(fp, "queue_directory = relative/q\n");
    fclose(fp);
    unit_assert(master_conf_load(dir, &err) == NULL);
    unit_assert(strstr(err, "absolute") != NULL);
    unlink(path);
    fmt_buf_or_panic(path, sizeof(path), "%s/master.cf", dir);
    unlink(path);
    rmdir(dir);
    unit_end();
}

static void test_status_records(void)
{
    struct master_conf *conf = conf_for("all", "ipv4", "25 inet - - n - 2 smtpd\n");
    struct master_service serv, other;
    struct master_child a, b, stranger;
    struct master_status st;

    unit_begin("status records: TAKEN/AVAIL counted only for the pipe's own children");
    master_conf = conf;
    memset(&serv, 0, sizeof(serv));
    memset(&other, 0, sizeof(other));
    serv.ent = other.ent = &conf->cf->entries[0];
    serv.name = other.name = "25";
    unit_assert(pipe(serv.status_fd) == 0);
    unit_assert(fcntl(serv.status_fd[0], F_SETFL, O_NONBLOCK) == 0);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&stranger, 0, sizeof(stranger));
    a.pid = 1001, a.serv = &serv, a.avail = true;
    b.pid = 1002, b.serv = &serv, b.avail = true, b.retired = false;
    stranger.pid = 1003, stranger.serv = &other, stranger.avail = true;
    a.next = &b;
    b.next = &stranger;
    master_children = &a;
    serv.total_proc = 2;
    serv.avail_proc = 2;
    other.total_proc = other.avail_proc = 1;

    st = (struct master_status) {1001, MASTER_STAT_TAKEN};
    unit_assert(write(serv.status_fd[1], &st, sizeof(st)) == sizeof(st));
    st = (struct master_status) {1003, MASTER_STAT_TAKEN};	/* not ours */
    unit_assert(write(serv.status_fd[1], &st, sizeof(st)) == sizeof(st));
    st = (struct master_status) {4242, MASTER_STAT_TAKEN};	/* unknown */
    unit_assert(write(serv.status_fd[1], &st, sizeof(st)) == sizeof(st));
    master_status_read(&serv);
    unit_assert_inteq(serv.avail_proc, 1);
    unit_assert_inteq(a.use_count, 1);
    unit_assert(!a.avail);
    unit_assert_inteq(other.avail_proc, 1);
    unit_assert(stranger.avail);

    st = (struct master_status) {1001, MASTER_STAT_AVAIL};
    unit_assert(write(serv.status_fd[1], &st, sizeof(st)) == sizeof(st));
    st = (struct master_status) {1001, MASTER_STAT_AVAIL};	/* twice: still one */
    unit_assert(write(serv.status_fd[1], &st, sizeof(st)) == sizeof(st));
    master_status_read(&serv);
    unit_assert_inteq(serv.avail_proc, 2);

    /* a retired child's reports are ignored */
    b.retired = true;
    b.avail = false;
    serv.avail_proc = 1;
    st = (struct master_status) {1002, MASTER_STAT_AVAIL};
    unit_assert(write(serv.status_fd[1], &st, sizeof(st)) == sizeof(st));
    master_status_read(&serv);
    unit_assert_inteq(serv.avail_proc, 1);

    /* detaching (service removed) uncounts the children */
    master_detach_children(&serv);
    unit_assert_inteq(serv.total_proc, 0);
    unit_assert_inteq(serv.avail_proc, 0);
    unit_assert(a.serv == NULL && b.serv == NULL && stranger.serv == &other);
    unit_assert_inteq(master_child_count(), 3);

    master_children = NULL;
    close(serv.status_fd[0]);
    close(serv.status_fd[1]);
    master_conf = NULL;
    master_conf_free(&conf);
    unit_end();
}

int main(void)
{
    msg_init("test-master_listen", MSG_TO_STDERR);
    test_listen_keys();
    test_unix_and_fifo_listeners();
    test_conf_load();
    test_status_records();
    return unit_done();
}
