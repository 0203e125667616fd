/* master_conf.c - read main.cf and master.cf into one snapshot.
 *
 * config.c keeps its values in var_*, which the next config_init or
 * config_apply replaces (and frees). master copies what it uses into a
 * struct master_conf, so that a reload that finds a broken main.cf or
 * master.cf can log the error (with file:line) and keep running on the
 * old snapshot. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "privs.h"
#include "str.h"

/* mail */
#include "config.h"
#include "mastercf.h"

/* master */
#include "master.h"

/* master_conf_free - free a snapshot */
void master_conf_free(struct master_conf **confp)
{
    struct master_conf *conf = *confp;

    if (conf == NULL)
	return;
    mem_free(&conf->config_dir);
    mem_free(&conf->queue_directory);
    mem_free(&conf->daemon_directory);
    mem_free(&conf->data_directory);
    mem_free(&conf->mail_owner);
    mem_free(&conf->setgid_group);
    mem_free(&conf->inet_interfaces);
    mem_free(&conf->inet_protocols);
    mem_free(&conf->import_environment);
    mastercf_free(&conf->cf);
    if (conf->main_cf_fd >= 0)
	(void) close(conf->main_cf_fd);
    mem_free(confp);
}

/* MAIN_CF_MAX: larger than config.c's own limit, so that an oversized
 * main.cf is reported by the parser rather than cut here */
#define MAIN_CF_MAX	((size_t) 5 << 20)

/* main_cf_snapshot - main.cf copied into a sealed memory file: the text
 * that is validated is the text every child reads; -1 and an error */
static int main_cf_snapshot(const char *path, char *error, size_t size)
{
    char buf[8192];
    size_t total = 0;
    int in, out;

    if ((in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
	fmt_buf_cut(error, size, "open %s: %s", path, strerror(errno));
	return -1;
    }
    if ((out = memfd_create("posthorn-main.cf", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0) {
	fmt_buf_cut(error, size, "memfd_create: %s", strerror(errno));
	(void) close(in);
	return -1;
    }
    for (;;) {
	ssize_t n = read(in, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
	    continue;
	if (n < 0) {
	    fmt_buf_cut(error, size, "read %s: %s", path, strerror(errno));
	    goto fail;
	}
	if (n == 0)
	    break;
	if ((total += (size_t) n) > MAIN_CF_MAX) {
	    fmt_buf_cut(error, size, "%s: file is larger than %zu bytes", path, MAIN_CF_MAX);
	    goto fail;
	}
	if (write(out, buf, (size_t) n) != n) {
	    fmt_buf_cut(error, size, "main.cf snapshot: write: %s", strerror(errno));
	    goto fail;
	}
    }
    if (fcntl(out, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
	fmt_buf_cut(error, size, "main.cf snapshot: seal: %s", strerror(errno));
	goto fail;
    }
    (void) close(in);
    return out;
fail:
    (void) close(in);
    (void) close(out);
    return -1;
}

/* load_main_cf - defaults, the snapshot, config_directory; 0 or -1 */
static int load_main_cf(int fd, const char *path, const char *config_dir, const char **err)
{
    config_init();
    if (config_load_fd(fd, path, err) < 0)
	return -1;
    config_set("config_directory", config_dir);
    return 0;
}

/* check_overrides - every service's -o options applied to main.cf, as
 * its child will apply them: a bad value is a configuration error now,
 * not a child that dies at start. Leaves var_* as main.cf alone gives. */
static int check_overrides(const struct mastercf *cf, int fd, const char *path,
			   const char *config_dir, char *error, size_t size)
{
    const char *err = NULL;
    int ret = 0;

    for (size_t i = 0; i < cf->count && ret == 0; i++) {
	const struct mastercf_entry *e = &cf->entries[i];

	if (e->overrides.count == 0)
	    continue;
	if (load_main_cf(fd, path, config_dir, &err) < 0) {
	    ret = -1;
	    break;
	}
	for (size_t j = 0; j < e->overrides.count && ret == 0; j++) {
	    const char *item = e->overrides.items[j];
	    const char *eq = strchr(item, '=');
	    char name[256];

	    /* unknown names are refused: a service must not run weaker than
	     * its master.cf line says (e.g. without the TLS it asks for) */
	    if (eq == NULL || !fmt_try_buf(name, sizeof(name), "%.*s", (int) (eq - item), item)
		|| param_find(name) == NULL) {
		fmt_buf_cut(error, size, "%s:%d: service %s/%s: -o %s: unknown parameter",
			       e->file, e->line, e->service, mastercf_type_name(e->type), item);
		(void) load_main_cf(fd, path, config_dir, &err);
		(void) config_apply(&err);
		return -1;
	    }
	    if (config_override(item, &err) < 0)
		ret = -1;
	}
	if (ret == 0 && config_apply(&err) < 0)
	    ret = -1;
	if (ret < 0)
	    fmt_buf_cut(error, size, "%s:%d: service %s/%s: %s", e->file, e->line,
			   e->service, mastercf_type_name(e->type), err);
    }
    if (load_main_cf(fd, path, config_dir, &err) < 0 || config_apply(&err) < 0) {
	if (ret == 0)
	    fmt_buf_cut(error, size, "%s", err);
	ret = -1;
    }
    return ret;
}

/* master_conf_load - main.cf, then master.cf; NULL and *error_r if either
 * is broken (error_r texts are static: valid until the next call) */
struct master_conf *master_conf_load(const char *config_dir, const char **error_r)
{
    static char error[2048];
    struct master_conf *conf;
    char path[PATH_MAX], main_cf[PATH_MAX];
    const char *err;
    int fd;

    if (!fmt_try_buf(main_cf, sizeof(main_cf), "%s/main.cf", config_dir)) {
	*error_r = "configuration directory name is too long";
	return NULL;
    }
    if ((fd = main_cf_snapshot(main_cf, error, sizeof(error))) < 0) {
	*error_r = error;
	return NULL;
    }
    if (load_main_cf(fd, main_cf, config_dir, &err) < 0 || config_apply(&err) < 0) {
	fmt_buf_cut(error, sizeof(error), "%s", err);
	*error_r = error;
	(void) close(fd);
	return NULL;
    }
    conf = mem_zalloc(sizeof(*conf));
    conf->main_cf_fd = fd;
    conf->config_dir = mem_strdup(config_dir);
    conf->queue_directory = mem_strdup(var_queue_directory);
    conf->daemon_directory = mem_strdup(var_daemon_directory);
    conf->data_directory = mem_strdup(var_data_directory);
    conf->mail_owner = mem_strdup(var_mail_owner);
    conf->setgid_group = mem_strdup(var_setgid_group);
    conf->inet_interfaces = mem_strdup(var_inet_interfaces);
    conf->inet_protocols = mem_strdup(var_inet_protocols);
    conf->import_environment = mem_strdup(var_import_environment);
    conf->default_process_limit = var_default_process_limit;
    conf->service_throttle_time = var_service_throttle_time;
    conf->master_stop_timeout = var_master_stop_timeout;
    conf->owner_known = priv_lookup(conf->mail_owner, &conf->owner_uid, &conf->owner_gid);

    if (*conf->queue_directory != '/') {
	fmt_buf_cut(error, sizeof(error), "%s: queue_directory must be an absolute path: %s",
		       config_where("queue_directory") ? config_where("queue_directory")
		       : "main.cf", conf->queue_directory);
	*error_r = error;
	master_conf_free(&conf);
	return NULL;
    }
    if (!fmt_try_buf(path, sizeof(path), "%s/master.cf", config_dir)) {
	*error_r = "configuration directory name is too long";
	master_conf_free(&conf);
	return NULL;
    }
    if (mastercf_load(path, conf->default_process_limit, &conf->cf, &err) < 0) {
	fmt_buf_cut(error, sizeof(error), "%s", err);
	*error_r = error;
	master_conf_free(&conf);
	return NULL;
    }
    if (check_overrides(conf->cf, fd, main_cf, config_dir, error, sizeof(error)) < 0) {
	*error_r = error;
	master_conf_free(&conf);
	return NULL;
    }
    return conf;
}

/* master_conf_check - what master -t adds to parsing: listener addresses
 * resolve, and inet services have no wakeup */
int master_conf_check(const struct master_conf *conf, const char **error_r)
{
    static char error[2048];

    for (size_t i = 0; i < conf->cf->count; i++) {
	const struct mastercf_entry *e = &conf->cf->entries[i];
	char *key = NULL;
	const char *err;

	if (master_listen_key(conf, e, &key, &err) < 0) {
	    fmt_buf_cut(error, sizeof(error), "%s:%d: %s", e->file, e->line, err);
	    *error_r = error;
	    return -1;
	}
	mem_free(&key);
    }
    return 0;
}
