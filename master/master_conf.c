/* master_conf.c - read main.cf and master.cf into one snapshot.
 *
 * config.c keeps its values in var_*, which the next config_init or
 * config_apply replaces (and frees). master copies what it uses into a
 * struct master_conf, so that a reload that finds a broken main.cf or
 * master.cf can log the error (with file:line) and keep running on the
 * old snapshot. */

#include <limits.h>
#include <string.h>

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
    mem_free(confp);
}

/* master_conf_load - main.cf, then master.cf; NULL and *error_r if either
 * is broken (error_r texts are static: valid until the next call) */
struct master_conf *master_conf_load(const char *config_dir, const char **error_r)
{
    static char error[2048];
    struct master_conf *conf;
    char path[PATH_MAX];
    const char *err;

    config_init();
    if (config_load(config_dir, &err) < 0) {
	(void) str_copy_out(error, sizeof(error), err);
	*error_r = error;
	return NULL;
    }
    config_set("config_directory", config_dir);
    if (config_apply(&err) < 0) {
	(void) str_copy_out(error, sizeof(error), err);
	*error_r = error;
	return NULL;
    }
    conf = mem_zalloc(sizeof(*conf));
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
	(void) fmt_buf(error, sizeof(error), "%s: queue_directory must be an absolute path: %s",
		       config_where("queue_directory") ? config_where("queue_directory")
		       : "main.cf", conf->queue_directory);
	*error_r = error;
	master_conf_free(&conf);
	return NULL;
    }
    if (!fmt_buf(path, sizeof(path), "%s/master.cf", config_dir)) {
	*error_r = "configuration directory name is too long";
	master_conf_free(&conf);
	return NULL;
    }
    if (mastercf_load(path, conf->default_process_limit, &conf->cf, &err) < 0) {
	(void) str_copy_out(error, sizeof(error), err);
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
	    (void) fmt_buf(error, sizeof(error), "%s:%d: %s", e->file, e->line, err);
	    *error_r = error;
	    return -1;
	}
	mem_free(&key);
    }
    return 0;
}
