/* test-master_conf.h - master's unit tests: a configuration snapshot
 * with fixed directories and users and one master.cf line, as master
 * would hold after it read main.cf and master.cf (test files only). */
#ifndef POSTHORN_TEST_MASTER_CONF_H
#define POSTHORN_TEST_MASTER_CONF_H

#include <string.h>

#include "mem.h"
#include "msg.h"
#include "master.h"

/* test_master_conf - the snapshot for interfaces, protocols and line */
static inline struct master_conf *test_master_conf(const char *interfaces,
						   const char *protocols, const char *line)
{
    struct master_conf *conf = mem_zalloc(sizeof(*conf));
    const char *err;

    conf->config_dir = mem_strdup("/nonexistent");
    conf->queue_directory = mem_strdup("/q");
    conf->daemon_directory = mem_strdup("/d");
    conf->data_directory = mem_strdup("/data");
    conf->mail_owner = mem_strdup("nobody");
    conf->setgid_group = mem_strdup("nogroup");
    conf->inet_interfaces = mem_strdup(interfaces);
    conf->inet_protocols = mem_strdup(protocols);
    conf->import_environment = mem_strdup("TZ");
    conf->default_process_limit = 100;
    conf->service_throttle_time = 60;
    conf->master_stop_timeout = 10;
    conf->main_cf_fd = -1;
    if (mastercf_parse("master.cf", line, strlen(line), 100, &conf->cf, &err) < 0)
	msg_panic("test master.cf: %s", err);
    return conf;
}

#endif
