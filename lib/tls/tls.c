/* tls.c - the TLS module's static part (see tls.h): loads the OpenSSL
 * plugin posthorn-tls.so with dlopen(3), forwards to its ops table
 * (tls_plugin.h), and glues TLS sessions under struct stream (blocking:
 * smtpd, smtp-client) and struct conn (event loop: login processes).
 *
 * No OpenSSL header is included here: a program that never calls
 * tls_load() never maps libssl/libcrypto (docs/tls.md).
 *
 * Plugin trust: the file (daemon_directory/posthorn-tls.so, or
 * $POSTHORN_TLS_PLUGIN unless the process is set-id) is opened, and
 * refused unless it is a regular file owned by root or by the real uid
 * and not writable by group or others; the descriptor that was checked
 * is the one loaded (through /proc/self/fd when /proc is there).
 *
 * Ticket keys: the secret file (tls_session_ticket_key_file) is read by
 * tls_server_new as root before the chroot. When it is missing, the
 * first process that needs it creates it (0600, 32 random bytes from
 * getrandom(2), created under a temporary name and linked into place so
 * that concurrent creators agree on one). A secret readable or writable
 * by group or others, or owned by another user than root or the running
 * uid, is refused (tickets off, with a warning naming the file). */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "mem.h"
#include "safe_file.h"
#include "msg.h"
#include "str.h"
#include "stream.h"
#include "tls.h"
#include "tls_plugin.h"

#define TLS_ERR_MAX		512
#define TLS_SECRET_LEN		32
#define TLS_SNI_FILE_MAX	(1024 * 1024)

static const struct tls_plugin_ops *ops;

struct tls_server {
    void *p;
};

struct tls_client {
    void *p;
};

struct tls_session {
    void *p;
    int fd;
    struct tls_info info;
    bool info_ready;
    /* conn glue */
    struct conn *conn;
    tls_conn_done_fn *done;
    void *done_ctx;
    bool done_called;
};

/* ---------- loading ---------- */

static void plugin_log(int level, const char *text)
{
    if (level > 0)
	msg_warn("%s", text);
    else
	msg_info("%s", text);
}

static char *error_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *error_text(const char *fmt, ...)
{
    char buf[TLS_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);	/* a message: cut if long */
    va_end(ap);
    return mem_strdup(buf);
}

bool tls_available(void)
{
    return ops != NULL;
}

/* plugin_path - where the plugin is */
static void plugin_path(struct str *path)
{
    const char *env = secure_getenv("POSTHORN_TLS_PLUGIN");
    const char *dir;

    if (env && *env) {
	str_set_or_panic(path, env);
	return;
    }
    dir = config_value("daemon_directory");
    str_printf_or_panic(path, "%s/posthorn-tls.so", dir ? dir : DEF_DAEMON_DIR);
}

int tls_load(char **error_r)
{
    struct str path;
    struct stat st;
    char procpath[64], err[TLS_ERR_MAX];
    void *h = NULL;
    tls_plugin_ops_fn *fn;
    const struct tls_plugin_ops *o;
    struct tls_plugin_env env = {TLS_PLUGIN_ABI, plugin_log};
    int fd;

    if (ops != NULL)
	return 0;
    str_init(&path, PATH_MAX);
    plugin_path(&path);
    if ((fd = open(str_cstr(&path), O_RDONLY | O_CLOEXEC)) < 0) {
	*error_r = error_text("TLS plugin %s: %m", str_cstr(&path));
	goto fail;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	*error_r = error_text("TLS plugin %s: not a regular file", str_cstr(&path));
	goto fail;
    }
    if ((st.st_uid != 0 && st.st_uid != getuid()) || (st.st_mode & 022)) {
	*error_r = error_text("TLS plugin %s: refused: owned by uid %ld or writable by group/others"
			      " (must be owned by root or uid %ld, mode 0755)",
			      str_cstr(&path), (long) st.st_uid, (long) getuid());
	goto fail;
    }
    /* load the very file that was checked */
    fmt_buf_or_panic(procpath, sizeof(procpath), "/proc/self/fd/%d", fd);
    if (access(procpath, R_OK) == 0)
	h = dlopen(procpath, RTLD_NOW | RTLD_LOCAL);
    else
	h = dlopen(str_cstr(&path), RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
	*error_r = error_text("TLS plugin %s: %s", str_cstr(&path), dlerror());
	goto fail;
    }
    if ((fn = (tls_plugin_ops_fn *) dlsym(h, TLS_PLUGIN_SYMBOL)) == NULL || (o = fn()) == NULL) {
	*error_r = error_text("TLS plugin %s: no %s", str_cstr(&path), TLS_PLUGIN_SYMBOL);
	goto fail;
    }
    if (o->abi != TLS_PLUGIN_ABI) {
	*error_r = error_text("TLS plugin %s: built for interface %d, this program needs %d"
			      " (install matching versions)", str_cstr(&path), o->abi, TLS_PLUGIN_ABI);
	goto fail;
    }
    if (o->init(&env, err, sizeof(err)) < 0) {
	*error_r = error_text("TLS plugin %s: %s", str_cstr(&path), err);
	goto fail;
    }
    close(fd);
    str_fini(&path);
    ops = o;
    if (msg_verbose)
	msg_info("TLS plugin loaded (%s)", o->version);
    return 0;
fail:
    if (h)
	dlclose(h);
    if (fd >= 0)
	close(fd);
    str_fini(&path);
    return -1;
}

/* ---------- info ---------- */

void tls_info_summary(const struct tls_info *info, char *buf, size_t len)
{
    int alg = info->cipher_alg_bits ? info->cipher_alg_bits : info->cipher_bits;

    if (len == 0)
	return;
    fmt_buf_cut(buf, len, "%s with cipher %s (%d/%d bits)%s", info->protocol, info->cipher,
		info->cipher_bits, alg, info->resumed ? " resumed" : "");
}

/* tls_info_log - see tls.h */
void tls_info_log(const char *direction, const char *peer, const struct tls_info *info)
{
    char sum[256];
    const char *trust;

    tls_info_summary(info, sum, sizeof(sum));
    if (!info->peer_cert)
	trust = "Anonymous";
    else if (info->verified && info->name_matched)
	trust = "Verified";
    else if (info->verified)
	trust = "Trusted";
    else
	trust = "Untrusted";
    msg_info("%s TLS connection established %s %s: %s%s%s", trust, direction, peer, sum,
	     info->sni[0] ? " sni=" : "", info->sni);
    if (info->peer_cert)
	msg_info("%s %s: subject_CN=%s, issuer_CN=%s, fingerprint=%s, pkey_fingerprint=%s%s%s",
		 direction, peer, info->peer_subject_cn, info->peer_issuer_cn,
		 info->peer_fingerprint, info->peer_pkey_fingerprint,
		 info->verified ? "" : ", verify error: ", info->verify_error);
}

/* ---------- server ---------- */

/* check_key_mode - warn about a private key file that others can read */
static void check_key_mode(const char *path)
{
    struct stat st;

    if (path == NULL || *path == 0 || stat(path, &st) < 0)
	return;				/* the plugin reports open errors */
    if (st.st_mode & 077)
	msg_warn("TLS private key file %s is accessible by group or others (mode %04o):"
		 " make it 0600 root", path, (unsigned) (st.st_mode & 07777));
}

static void check_key_item(const char *item, void *ctx)
{
    (void) ctx;
    check_key_mode(item);
}

/* ticket_secret - read (or create) the ticket key secret; false: no
 * tickets (a warning says why) */
static bool ticket_secret(const char *path, unsigned char *buf, size_t *len_r)
{
    struct stat st;
    ssize_t n;
    int fd;

    *len_r = 0;
    if (path == NULL || *path == 0)
	return false;
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 && errno == ENOENT) {
	char tmp[PATH_MAX];
	unsigned char secret[TLS_SECRET_LEN];
	int tfd;

	if (getrandom(secret, sizeof(secret), 0) != (ssize_t) sizeof(secret)) {
	    msg_warn("TLS session tickets off: getrandom: %m");
	    return false;
	}
	if (!fmt_try_buf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long) getpid())) {
	    msg_warn("TLS session tickets off: %s: path too long", path);
	    return false;
	}
	(void) unlink(tmp);
	if ((tfd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
	    msg_warn("TLS session tickets off: cannot create %s: %m", tmp);
	    return false;
	}
	if (write(tfd, secret, sizeof(secret)) != (ssize_t) sizeof(secret) || fsync(tfd) < 0) {
	    msg_warn("TLS session tickets off: write %s: %m", tmp);
	    close(tfd);
	    unlink(tmp);
	    return false;
	}
	close(tfd);
	/* link: a concurrent creator's file wins, ours goes */
	if (link(tmp, path) == 0)
	    msg_info("created TLS session ticket secret %s", path);
	else if (errno != EEXIST)
	    msg_warn("cannot create %s: %m", path);
	unlink(tmp);
	explicit_bzero(secret, sizeof(secret));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
	msg_warn("TLS session tickets off: open %s: %m", path);
	return false;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
	|| (st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 077)) {
	msg_warn("TLS session tickets off: %s must be a regular file owned by root (or uid %ld)"
		 " with mode 0600", path, (long) geteuid());
	close(fd);
	return false;
    }
    n = read(fd, buf, 64);
    close(fd);
    if (n < 16) {
	msg_warn("TLS session tickets off: %s: too short (%ld bytes, need at least 16)",
		 path, (long) n);
	return false;
    }
    *len_r = (size_t) n;
    return true;
}

struct sni_list {
    struct tls_plugin_sni *items;
    size_t count, cap;
    struct str names, files;		/* storage */
};

/* sni_read - the SNI table's entries from its source text ("name
 * files" lines, as postmap reads them): every certificate is loaded up
 * front, as the keys are readable only before privileges are dropped */
static int sni_read(const char *table, struct sni_list *sl, char **error_r)
{
    const char *path = strchr(table, ':');
    struct str text;
    const char *err;
    char *p, *line, *save = NULL;
    int lineno = 0;

    path = path ? path + 1 : table;
    str_init(&text, TLS_SNI_FILE_MAX);
    if (read_file(path, &text, TLS_SNI_FILE_MAX, &err) < 0) {
	*error_r = error_text("SNI table %s: %s", table, err);
	str_fini(&text);
	return -1;
    }
    for (p = text.data; (line = strtok_r(p, "\n", &save)) != NULL; p = NULL) {
	char *name, *files, *end;

	lineno++;
	while (*line == ' ' || *line == '\t')
	    line++;
	if (*line == 0 || *line == '#')
	    continue;
	name = line;
	files = name + strcspn(name, " \t");
	if (*files == 0) {
	    *error_r = error_text("SNI table %s, line %d: a name without certificate files",
				  path, lineno);
	    str_fini(&text);
	    return -1;
	}
	*files++ = 0;
	files += strspn(files, " \t");
	end = files + strlen(files);
	while (end > files && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
	    *--end = 0;
	if (sl->count == sl->cap) {
	    sl->cap = sl->cap ? sl->cap * 2 : 8;
	    sl->items = mem_realloc(sl->items, mem_size_mul(sl->cap, sizeof(*sl->items)));
	}
	/* offsets now, pointers when complete (the strs may move) */
	sl->items[sl->count].name = (const char *) (uintptr_t) str_len(&sl->names);
	sl->items[sl->count].chain_files = (const char *) (uintptr_t) str_len(&sl->files);
	str_append_or_panic(&sl->names, name, strlen(name) + 1);
	str_append_or_panic(&sl->files, files, strlen(files) + 1);
	config_split(files, check_key_item, NULL);
	sl->count++;
    }
    for (size_t i = 0; i < sl->count; i++) {
	sl->items[i].name = sl->names.data + (uintptr_t) sl->items[i].name;
	sl->items[i].chain_files = sl->files.data + (uintptr_t) sl->items[i].chain_files;
    }
    str_fini(&text);
    return 0;
}

struct tls_server *tls_server_new(const struct tls_server_settings *set, char **error_r)
{
    struct sni_list sl = {0};
    unsigned char secret[64];
    size_t secret_len = 0;
    char err[TLS_ERR_MAX];
    struct tls_server *srv;
    void *p;

    if (tls_load(error_r) < 0)
	return NULL;
    config_split(set->chain_files ? set->chain_files : "", check_key_item, NULL);
    check_key_mode(set->key_file && *set->key_file ? set->key_file : set->cert_file);
    check_key_mode(set->eckey_file && *set->eckey_file ? set->eckey_file : set->eccert_file);
    str_init(&sl.names, 1024 * 1024);
    str_init(&sl.files, 1024 * 1024);
    if (set->sni_maps && *set->sni_maps && sni_read(set->sni_maps, &sl, error_r) < 0) {
	p = NULL;
	goto out;
    }
    if (set->ticket_key_file && *set->ticket_key_file)
	(void) ticket_secret(set->ticket_key_file, secret, &secret_len);
    p = ops->server_new(set, sl.items, sl.count, secret_len ? secret : NULL, secret_len,
			err, sizeof(err));
    explicit_bzero(secret, sizeof(secret));
    if (p == NULL)
	*error_r = mem_strdup(err);
out:
    mem_free(&sl.items);
    str_fini(&sl.names);
    str_fini(&sl.files);
    if (p == NULL)
	return NULL;
    srv = mem_zalloc(sizeof(*srv));
    srv->p = p;
    return srv;
}

void tls_server_free(struct tls_server **srvp)
{
    if (srvp == NULL || *srvp == NULL)
	return;
    ops->server_free((*srvp)->p);
    mem_free(srvp);
}

/* ---------- client ---------- */

struct tls_client *tls_client_new(const struct tls_client_settings *set, char **error_r)
{
    char err[TLS_ERR_MAX];
    struct tls_client *cli;
    void *p;

    if (tls_load(error_r) < 0)
	return NULL;
    if ((p = ops->client_new(set, err, sizeof(err))) == NULL) {
	*error_r = mem_strdup(err);
	return NULL;
    }
    cli = mem_zalloc(sizeof(*cli));
    cli->p = p;
    return cli;
}

void tls_client_free(struct tls_client **clip)
{
    if (clip == NULL || *clip == NULL)
	return;
    ops->client_free((*clip)->p);
    mem_free(clip);
}

/* ---------- sessions ---------- */

static struct tls_session *session_wrap(void *p, int fd)
{
    struct tls_session *t = mem_zalloc(sizeof(*t));

    t->p = p;
    t->fd = fd;
    return t;
}

static void session_free(struct tls_session *t)
{
    ops->session_free(t->p);
    mem_free(&t);
}

const struct tls_info *tls_session_info(const struct tls_session *t)
{
    struct tls_session *w = (struct tls_session *) t;

    if (!w->info_ready) {
	ops->info(w->p, &w->info);
	w->info_ready = true;
    }
    return &w->info;
}

/* session_close_notify_by - send close_notify, polling until deadline_ms
 * (monotonic; < 0: one try) */
static void session_close_notify_by(struct tls_session *t, int timeout_ms)
{
    struct timespec ts;
    long long deadline, now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (timeout_ms < 0 ? 0 : timeout_ms);
    for (int i = 0; i < 100; i++) {
	struct pollfd pfd = {t->fd, 0, 0};

	if (ops->shutdown(t->p) > 0 || errno != EAGAIN)
	    return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (now >= deadline)
	    return;
	pfd.events = ops->want(t->p);
	if (poll(&pfd, 1, (int) (deadline - now)) <= 0)
	    return;
    }
}

void tls_session_close_notify(struct tls_session *t)
{
    session_close_notify_by(t, 1000);
}

/* ---------- blocking streams ---------- */

static ssize_t st_read(void *ctx, void *buf, size_t len)
{
    struct tls_session *t = ctx;

    return ops->read(t->p, buf, len);
}

static ssize_t st_write(void *ctx, const void *buf, size_t len)
{
    struct tls_session *t = ctx;

    return ops->write(t->p, buf, len);
}

static size_t st_pending(void *ctx)
{
    struct tls_session *t = ctx;

    return ops->pending(t->p);
}

static short st_want(void *ctx)
{
    struct tls_session *t = ctx;

    return ops->want(t->p);
}

static void st_release(void *ctx)
{
    session_free(ctx);
}

static const struct stream_io tls_stream_io = {
    .read = st_read, .write = st_write, .pending = st_pending, .want = st_want,
};

/* stream_handshake - run the handshake within the stream's timeout */
static int stream_handshake(struct stream *s, struct tls_session *t, char **error_r)
{
    int timeout = stream_get_timeout(s);
    struct timespec ts;
    long long deadline = -1;
    char err[TLS_ERR_MAX];

    if (timeout >= 0) {
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout;
    }
    for (;;) {
	struct pollfd pfd;
	int wait_ms = -1, n;

	err[0] = 0;
	if (ops->handshake(t->p, err, sizeof(err)) == 1)
	    return 0;
	if (errno != EAGAIN) {
	    *error_r = mem_strdup(err[0] ? err : "TLS handshake failed");
	    return -1;
	}
	if (deadline >= 0) {
	    long long now;

	    clock_gettime(CLOCK_MONOTONIC, &ts);
	    now = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	    if (now >= deadline) {
		*error_r = mem_strdup("TLS handshake: timeout");
		return -1;
	    }
	    wait_ms = deadline - now > INT_MAX ? INT_MAX : (int) (deadline - now);
	}
	pfd.fd = t->fd;
	pfd.events = ops->want(t->p);
	pfd.revents = 0;
	n = poll(&pfd, 1, wait_ms);
	if (n < 0 && errno != EINTR) {
	    *error_r = error_text("TLS handshake: poll: %m");
	    return -1;
	}
    }
}

/* stream_start - common part of the stream starts */
static int stream_start(struct stream *s, struct tls_session *t, struct tls_info *info,
			char **error_r)
{
    size_t dropped;

    if (stream_flush(s) < 0) {
	*error_r = error_text("TLS handshake: cannot flush the plaintext phase: %m");
	session_free(t);
	return -1;
    }
    /* STARTTLS injection (CVE-2011-0411): plaintext that came with or
     * after the STARTTLS command is never read as if it were protected */
    if ((dropped = stream_discard_input(s)) > 0 && msg_verbose)
	msg_info("TLS: discarded %zu bytes of plaintext sent before the handshake", dropped);
    if (stream_handshake(s, t, error_r) < 0) {
	session_free(t);
	return -1;
    }
    stream_set_io(s, &tls_stream_io, t);
    stream_set_io_release(s, st_release);
    if (info)
	*info = *tls_session_info(t);
    return 0;
}

int tls_stream_server_start(struct stream *s, struct tls_server *srv,
			    struct tls_info *info, char **error_r)
{
    char err[TLS_ERR_MAX];
    void *p;

    if (ops == NULL || srv == NULL) {
	*error_r = mem_strdup("TLS not initialised (tls_server_new)");
	return -1;
    }
    if ((p = ops->session_server(srv->p, stream_fd(s), err, sizeof(err))) == NULL) {
	*error_r = mem_strdup(err);
	return -1;
    }
    return stream_start(s, session_wrap(p, stream_fd(s)), info, error_r);
}

int tls_stream_client_start(struct stream *s, struct tls_client *cli,
			    const struct tls_client_peer *peer,
			    struct tls_info *info, char **error_r)
{
    char err[TLS_ERR_MAX];
    void *p;

    if (ops == NULL || cli == NULL) {
	*error_r = mem_strdup("TLS not initialised (tls_client_new)");
	return -1;
    }
    if ((p = ops->session_client(cli->p, stream_fd(s), peer, err, sizeof(err))) == NULL) {
	*error_r = mem_strdup(err);
	return -1;
    }
    return stream_start(s, session_wrap(p, stream_fd(s)), info, error_r);
}

struct tls_session *tls_stream_session(struct stream *s)
{
    void *ctx;

    if (stream_get_io(s, &ctx) != &tls_stream_io)
	return NULL;
    return ctx;
}

/* tls_stream_close_notify - see tls.h */
void tls_stream_close_notify(struct stream *s)
{
    struct tls_session *t = tls_stream_session(s);

    if (t == NULL)
	return;
    (void) stream_flush(s);
    session_close_notify_by(t, stream_get_timeout(s) < 0 ? 1000 : stream_get_timeout(s));
}

/* ---------- event loop (conn) ---------- */

/* conn_done - tell the owner once: the handshake finished or failed */
static void conn_done(struct tls_session *t, bool ok, const char *error)
{
    if (t->done_called || t->done == NULL)
	return;
    t->done_called = true;
    t->done(t->conn, t->done_ctx, ok, ok ? tls_session_info(t) : NULL, error);
}

static ssize_t cn_read(void *ctx, void *buf, size_t len)
{
    struct tls_session *t = ctx;
    ssize_t n;
    int saved;

    if (!t->done_called && !ops->handshake_done(t->p)) {
	char err[TLS_ERR_MAX];

	err[0] = 0;
	if (ops->handshake(t->p, err, sizeof(err)) != 1) {
	    if (errno == EAGAIN)
		return -1;
	    conn_done(t, false, err[0] ? err : "TLS handshake failed");
	    errno = EPROTO;
	    return -1;
	}
    }
    if (!t->done_called)
	conn_done(t, true, NULL);
    n = ops->read(t->p, buf, len);
    saved = errno;
    if (n < 0 && saved != EAGAIN && msg_verbose)
	msg_info("%s", ops->last_error(t->p));
    errno = saved;
    return n;
}

static ssize_t cn_write(void *ctx, const void *buf, size_t len)
{
    struct tls_session *t = ctx;

    return ops->write(t->p, buf, len);
}

static void cn_release(void *ctx)
{
    session_free(ctx);
}

static const struct conn_io tls_conn_io = {
    .read = cn_read, .write = cn_write, .pending = st_pending, .want = st_want,
    .release = cn_release,
};

void tls_conn_server_start(struct conn *c, struct tls_server *srv,
			   tls_conn_done_fn *done, void *ctx)
{
    char err[TLS_ERR_MAX];
    struct tls_session *t;
    void *p;

    if (ops == NULL || srv == NULL) {
	done(c, ctx, false, NULL, "TLS not initialised (tls_server_new)");
	return;
    }
    if ((p = ops->session_server(srv->p, conn_fd(c), err, sizeof(err))) == NULL) {
	done(c, ctx, false, NULL, err);
	return;
    }
    /* STARTTLS injection: drop plaintext that came with the command */
    conn_input_consume(c, conn_input_avail(c));
    t = session_wrap(p, conn_fd(c));
    t->conn = c;
    t->done = done;
    t->done_ctx = ctx;
    conn_set_io(c, &tls_conn_io, t);
}

struct tls_session *tls_conn_session(struct conn *c)
{
    void *ctx;

    if (conn_get_io(c, &ctx) != &tls_conn_io)
	return NULL;
    return ctx;
}

/* ---------- configuration ---------- */

static const char *param_str(const char *prefix, const char *suffix)
{
    char name[128];
    const char *v;

    fmt_buf_or_panic(name, sizeof(name), "%s_%s", prefix, suffix);
    v = config_value(name);
    return v ? v : "";
}

void tls_server_settings_from_config(struct tls_server_settings *set, const char *prefix)
{
    long t;
    bool b;

    memset(set, 0, sizeof(*set));
    set->chain_files = param_str(prefix, "tls_chain_files");
    set->cert_file = param_str(prefix, "tls_cert_file");
    set->key_file = param_str(prefix, "tls_key_file");
    set->eccert_file = param_str(prefix, "tls_eccert_file");
    set->eckey_file = param_str(prefix, "tls_eckey_file");
    set->protocols = param_str(prefix, "tls_protocols");
    set->ciphers = param_str(prefix, "tls_ciphers");
    set->ciphersuites = param_str(prefix, "tls_ciphersuites");
    set->sni_maps = param_str(prefix, "tls_sni_maps");
    set->ca_file = param_str(prefix, "tls_CAfile");
    set->ask_client_cert = parse_bool(param_str(prefix, "tls_ask_ccert"), &b) && b;
    set->ticket_key_file = config_value("tls_session_ticket_key_file");
    if (set->ticket_key_file == NULL)
	set->ticket_key_file = "";
    set->ticket_lifetime = parse_time(param_str(prefix, "tls_session_cache_timeout"), &t)
	&& t > 0 && t < INT_MAX ? (int) t : 3600;
    set->service = prefix;
}

void tls_client_settings_from_config(struct tls_client_settings *set, const char *prefix)
{
    long n;

    memset(set, 0, sizeof(*set));
    set->ca_file = param_str(prefix, "tls_CAfile");
    set->ca_path = param_str(prefix, "tls_CApath");
    set->system_ca = false;
    if (*set->ca_file == 0 && *set->ca_path == 0)
	set->system_ca = true;
    set->protocols = param_str(prefix, "tls_protocols");
    set->ciphers = param_str(prefix, "tls_ciphers");
    set->ciphersuites = param_str(prefix, "tls_ciphersuites");
    set->cert_file = param_str(prefix, "tls_cert_file");
    set->key_file = param_str(prefix, "tls_key_file");
    set->session_cache_max = parse_long(param_str(prefix, "tls_session_cache_size"), &n)
	&& n >= 0 && n < INT_MAX ? (int) n : 100;
}
