/* master_listen.c - the listeners of a service, and wake-up requests.
 *
 * inet services listen on every address that inet_interfaces and
 * inet_protocols allow ("all" = 0.0.0.0 and ::, "loopback-only" =
 * 127.0.0.1 and ::1, or a list of addresses and host names), unless the
 * master.cf service name carries a host ("127.0.0.1:25", "[::1]:25"),
 * which overrides inet_interfaces ("*:25" = all addresses). IPv6 sockets
 * are IPv6-only, so 0.0.0.0 and :: can both be bound.
 *
 * unix and fifo services live at $queue_directory/private/NAME (mode
 * 0600) or public/NAME (socket 0666, fifo 0622: anyone may write a
 * trigger, nobody else may read one); public/ is open only to the setgid
 * group. A unix service with private "w" lives at submit/NAME (socket
 * 0666 in a directory that every local user may pass through: submit(8),
 * which takes its client's identity from the kernel). When master runs as root they are
 * created with the effective ids of mail_owner, so the mail owner owns
 * them and master never chowns a path that a less trusted user could
 * have replaced. */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "sock.h"
#include "str.h"

/* mail */
#include "config.h"
#include "mastercf.h"

/* master */
#include "master.h"

#define LISTEN_BACKLOG	128	/* unix sockets: local clients retry */
/* inet: the kernel's own cap (net.core.somaxconn, 4096 on current
 * kernels) decides; a burst of connects to an event-driven service
 * (smtp-front holding thousands of clients) must not overflow a queue
 * of 128 while the process is busy accepting (bench/abuse saw ~1,800
 * connections lost that way in unpaced bursts) */
#define INET_LISTEN_BACKLOG	4096

/* One address to listen on. */
struct listen_addr {
    int family;
    char host[INET6_ADDRSTRLEN];
};

struct addr_set {
    struct listen_addr a[MASTER_LISTEN_MAX];
    int count;
    bool v4, v6;
    const char *error;
};

static char listen_error[1024];

/* ipv6_available - the kernel has IPv6 */
static bool ipv6_available(void)
{
    static int known = -1;

    if (known < 0) {
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

	known = fd >= 0;
	if (fd >= 0)
	    close(fd);
    }
    return known == 1;
}

/* proto_item - one element of inet_protocols */
static void proto_item(const char *item, void *ctx)
{
    struct addr_set *set = ctx;

    if (strcmp(item, "all") == 0) {
	set->v4 = true;
	set->v6 = ipv6_available();
    } else if (strcmp(item, "ipv4") == 0) {
	set->v4 = true;
    } else if (strcmp(item, "ipv6") == 0) {
	set->v6 = true;
    } else if (set->error == NULL) {
	fmt_buf_cut(listen_error, sizeof(listen_error),
		       "inet_protocols: unknown protocol \"%s\" (use all, ipv4, ipv6)", item);
	set->error = listen_error;
    }
}

/* addr_add - add one numeric address (deduplicated) */
static void addr_add(struct addr_set *set, int family, const char *host)
{
    for (int i = 0; i < set->count; i++)
	if (set->a[i].family == family && strcmp(set->a[i].host, host) == 0)
	    return;
    if (set->count >= MASTER_LISTEN_MAX) {
	if (set->error == NULL) {
	    fmt_buf_cut(listen_error, sizeof(listen_error), "too many listen addresses");
	    set->error = listen_error;
	}
	return;
    }
    set->a[set->count].family = family;
    str_copy_out_or_panic(set->a[set->count].host, sizeof(set->a[0].host), host);
    set->count++;
}

/* host_item - one address or host name: every address it stands for
 * in the enabled families */
static void host_item(const char *item, void *ctx)
{
    struct addr_set *set = ctx;
    struct addrinfo hints, *res = NULL, *ai;
    char buf[NI_MAXHOST];
    size_t len = strlen(item);
    int err;

    if (set->error)
	return;
    if (strcmp(item, "all") == 0 || strcmp(item, "*") == 0) {
	if (set->v4)
	    addr_add(set, AF_INET, "0.0.0.0");
	if (set->v6)
	    addr_add(set, AF_INET6, "::");
	return;
    }
    if (strcmp(item, "loopback-only") == 0) {
	if (set->v4)
	    addr_add(set, AF_INET, "127.0.0.1");
	if (set->v6)
	    addr_add(set, AF_INET6, "::1");
	return;
    }
    if (len >= 2 && item[0] == '[' && item[len - 1] == ']') {
	if (len - 2 >= sizeof(buf))
	    goto bad;
	memcpy(buf, item + 1, len - 2);
	buf[len - 2] = 0;
    } else if (!str_try_copy_out(buf, sizeof(buf), item)) {
	goto bad;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;	/* addresses of disabled families are skipped */
    if ((err = getaddrinfo(buf, NULL, &hints, &res)) != 0) {
	fmt_buf_cut(listen_error, sizeof(listen_error), "%s: %s", item,
		       err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));
	set->error = listen_error;
	return;
    }
    for (ai = res; ai; ai = ai->ai_next) {
	char host[INET6_ADDRSTRLEN];

	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0,
			NI_NUMERICHOST) != 0)
	    continue;
	if ((ai->ai_family == AF_INET && set->v4) || (ai->ai_family == AF_INET6 && set->v6))
	    addr_add(set, ai->ai_family, host);
    }
    freeaddrinfo(res);
    return;

bad:
    fmt_buf_cut(listen_error, sizeof(listen_error), "bad address: %.100s", item);
    set->error = listen_error;
}

/* inet_addresses - the addresses an inet entry listens on */
static int inet_addresses(const struct master_conf *conf, const struct mastercf_entry *ent,
			  struct addr_set *set, const char **error_r)
{
    memset(set, 0, sizeof(*set));
    config_split(conf->inet_protocols, proto_item, set);
    if (set->error == NULL && !set->v4 && !set->v6) {
	fmt_buf_cut(listen_error, sizeof(listen_error),
		       "inet_protocols: no usable protocol in \"%s\"", conf->inet_protocols);
	set->error = listen_error;
    }
    if (set->error == NULL) {
	if (ent->host != NULL)
	    host_item(ent->host, set);
	else
	    config_split(conf->inet_interfaces, host_item, set);
    }
    if (set->error == NULL && set->count == 0) {
	fmt_buf_cut(listen_error, sizeof(listen_error),
		       "service %s: no address to listen on (inet_interfaces = %s, "
		       "inet_protocols = %s)", ent->service,
		       ent->host ? ent->host : conf->inet_interfaces, conf->inet_protocols);
	set->error = listen_error;
    }
    if (set->error) {
	*error_r = set->error;
	return -1;
    }
    return 0;
}

/* socket_path - $queue_directory/private|public|submit/NAME */
static bool socket_path(const struct master_conf *conf, const struct mastercf_entry *ent,
			char *buf, size_t size)
{
    return fmt_try_buf(buf, size, "%s/%s/%s", conf->queue_directory,
		   mastercf_socket_dir(ent), ent->service);
}

/* master_listen_key - a text that is equal for equal listeners */
int master_listen_key(const struct master_conf *conf, const struct mastercf_entry *ent,
		      char **key_r, const char **error_r)
{
    struct str *key = str_new(8192);
    char path[4096];
    bool ok;

    if (ent->type == MASTERCF_INET) {
	struct addr_set set;

	if (inet_addresses(conf, ent, &set, error_r) < 0) {
	    str_free(&key);
	    return -1;
	}
	ok = str_try_appends(key, "inet");
	for (int i = 0; ok && i < set.count; i++)
	    ok = str_try_appendf(key, " %d/%s/%s", set.a[i].family, set.a[i].host, ent->port);
    } else {
	if (!socket_path(conf, ent, path, sizeof(path))) {
	    *error_r = "socket path too long";
	    str_free(&key);
	    return -1;
	}
	ok = str_try_appendf(key, "%s %s", mastercf_type_name(ent->type), path);
    }
    if (!ok) {
	*error_r = "listen address list too long";
	str_free(&key);
	return -1;
    }
    *key_r = mem_strdup(str_cstr(key));
    str_free(&key);
    return 0;
}

/* as_owner - switch the effective ids to mail_owner (root only) */
static bool as_owner(const struct master_conf *conf)
{
    if (geteuid() != 0 || !conf->owner_known)
	return false;
    if (setegid(conf->owner_gid) < 0)
	msg_fatal("setegid %ld: %m", (long) conf->owner_gid);
    if (seteuid(conf->owner_uid) < 0)
	msg_fatal("seteuid %ld: %m", (long) conf->owner_uid);
    return true;
}

/* as_root - back to root after as_owner */
static void as_root(bool switched)
{
    if (!switched)
	return;
    if (seteuid(0) < 0)
	msg_fatal("seteuid 0: %m");
    if (setegid(0) < 0)
	msg_fatal("setegid 0: %m");
}

/* master_listen_open - open every listener of serv */
int master_listen_open(const struct master_conf *conf, struct master_service *serv,
		       const char **error_r)
{
    const struct mastercf_entry *ent = serv->ent;
    const char *err;
    char path[4096];
    int fd;

    serv->listen_count = 0;
    if (ent->type == MASTERCF_INET) {
	struct addr_set set;

	if (inet_addresses(conf, ent, &set, error_r) < 0)
	    return -1;
	for (int i = 0; i < set.count; i++) {
	    char label[INET6_ADDRSTRLEN + 64];

	    if ((fd = sock_listen_inet(set.a[i].family, set.a[i].host, ent->port,
				       INET_LISTEN_BACKLOG, &err)) < 0) {
		fmt_buf_cut(listen_error, sizeof(listen_error), "service %s: %s",
			       ent->service, err);
		*error_r = listen_error;
		master_listen_close(serv);
		return -1;
	    }
	    if (set.a[i].family == AF_INET6)
		fmt_buf_cut(label, sizeof(label), "[%s]:%s", set.a[i].host, ent->port);
	    else
		fmt_buf_cut(label, sizeof(label), "%s:%s", set.a[i].host, ent->port);
	    serv->listen[serv->listen_count].fd = fd;
	    serv->listen[serv->listen_count].family = set.a[i].family;
	    serv->listen[serv->listen_count].addr = mem_strdup(label);
	    serv->listen_count++;
	}
	return 0;
    }
    if (!socket_path(conf, ent, path, sizeof(path))) {
	*error_r = "socket path too long";
	return -1;
    }
    {
	bool switched = as_owner(conf);

	if (ent->type == MASTERCF_UNIX || ent->type == MASTERCF_PASS)
	    fd = sock_listen_unix(path, ent->priv ? 0600 : 0666, LISTEN_BACKLOG, &err);
	else
	    fd = sock_listen_fifo(path, ent->priv ? 0600 : 0622, &err);
	as_root(switched);
    }
    if (fd < 0) {
	fmt_buf_cut(listen_error, sizeof(listen_error), "service %s: %s", ent->service, err);
	*error_r = listen_error;
	return -1;
    }
    sock_set_nonblock(fd, true);
    serv->listen[0].fd = fd;
    serv->listen[0].family = ent->type == MASTERCF_FIFO ? 0 : AF_UNIX;
    serv->listen[0].addr = mem_strdup(path);
    serv->listen_count = 1;
    return 0;
}

/* master_listen_close - close the listeners; remove unix/fifo names */
void master_listen_close(struct master_service *serv)
{
    for (int i = 0; i < serv->listen_count; i++) {
	struct master_listener *l = &serv->listen[i];

	if (l->family == AF_UNIX || l->family == 0) {
	    struct stat fst, pst;

	    /* Remove the name only if it is still ours. */
	    if (fstat(l->fd, &fst) == 0 && lstat(l->addr, &pst) == 0
		&& fst.st_ino == pst.st_ino && fst.st_dev == pst.st_dev)
		(void) unlink(l->addr);
	    else if (l->family == AF_UNIX && lstat(l->addr, &pst) == 0 && S_ISSOCK(pst.st_mode))
		(void) unlink(l->addr);		/* socket inodes are not comparable */
	}
	close(l->fd);
	mem_free(&l->addr);
    }
    serv->listen_count = 0;
}

/* master_wakeup_send - one wake-up request; never blocks master */
void master_wakeup_send(const struct master_conf *conf, struct master_service *serv)
{
    (void) conf;
    if (serv->listen_count == 0)
	return;
    if (serv->type == MASTERCF_FIFO) {
	/* master holds the FIFO open read-write: write into it directly. */
	if (write(serv->listen[0].fd, MASTER_WAKEUP_REQUEST, 1) < 0
	    && errno != EAGAIN && errno != EWOULDBLOCK)
	    msg_warn("wakeup %s: %m", serv->listen[0].addr);
    } else if (serv->type == MASTERCF_UNIX) {
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (!str_try_copy_out(sun.sun_path, sizeof(sun.sun_path), serv->listen[0].addr))
	    return;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
	    msg_warn("wakeup %s: socket: %m", serv->listen[0].addr);
	    return;
	}
	if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
	    if (errno != EAGAIN && errno != EINPROGRESS)
		msg_warn("wakeup %s: connect: %m", serv->listen[0].addr);
	} else if (write(fd, MASTER_WAKEUP_REQUEST, 1) < 0) {
	    msg_warn("wakeup %s: write: %m", serv->listen[0].addr);
	}
	close(fd);
    }
}
