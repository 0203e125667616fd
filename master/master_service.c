/* master_service.c - the service table: start, reload, stop, timers.
 *
 * A service is one master.cf entry with its listeners and its status
 * pipe. On reload an entry whose listeners are the same as before (same
 * name, type, private flag and, for inet, the same resolved addresses)
 * keeps its open sockets, so clients never see a refused connection; its
 * other settings (command, args, maxproc, ...) apply to the processes
 * started from then on. Services that are gone lose their listeners;
 * new ones get theirs. Every child of the old generation gets SIGHUP
 * (master_children_retire): busy ones finish their session, idle ones
 * exit at once. Each service has a scoreboard (master_scoreboard.c),
 * made anew at every reload: the retired children keep writing the old
 * one, and must not write into the slots of their successors. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "mastercf.h"

/* master */
#include "master.h"

#define LISTEN_RETRY_MS		1000
#define LISTEN_WARN_MS		60000

/* service_new - a service for an entry, with its status pipe */
static struct master_service *service_new(const struct mastercf_entry *ent, char *key)
{
    struct master_service *serv = mem_zalloc(sizeof(*serv));

    serv->ent = ent;
    serv->name = mem_strdup(ent->service);
    serv->type = ent->type;
    serv->listen_key = key;
    if (pipe2(serv->status_fd, O_CLOEXEC) < 0)
	msg_fatal("pipe: %m");
    if (fcntl(serv->status_fd[0], F_SETFL, O_NONBLOCK) < 0)
	msg_fatal("fcntl: %m");
    serv->sb = master_sb_new(serv->name, ent->maxproc);
    return serv;
}

/* service_free - close everything a service holds */
static void service_free(struct master_service **servp)
{
    struct master_service *serv = *servp;

    master_detach_children(serv);
    master_sb_free(&serv->sb);
    master_listen_close(serv);
    close(serv->status_fd[0]);
    close(serv->status_fd[1]);
    mem_free(&serv->name);
    mem_free(&serv->listen_key);
    mem_free(servp);
}

/* service_schedule_wakeup - the first wake-up: at once (so that qmgr and
 * pickup start with master), or one period later for "N?" services */
static void service_schedule_wakeup(struct master_service *serv, long long now)
{
    const struct mastercf_entry *ent = serv->ent;

    if (ent->wakeup > 0 && serv->type != MASTERCF_INET)
	serv->next_wakeup = ent->wakeup_if_used ? now + ent->wakeup * 1000LL : now;
    else
	serv->next_wakeup = 0;
}

/* master_services_start - open every service (fatal on error) */
void master_services_start(struct master_conf *conf)
{
    struct master_service **tail = &master_services;
    long long now = master_now_ms();

    for (size_t i = 0; i < conf->cf->count; i++) {
	const struct mastercf_entry *ent = &conf->cf->entries[i];
	struct master_service *serv;
	const char *err;
	char *key;

	if (master_listen_key(conf, ent, &key, &err) < 0)
	    msg_fatal("%s:%d: %s", ent->file, ent->line, err);
	serv = service_new(ent, key);
	if (master_listen_open(conf, serv, &err) < 0)
	    msg_fatal("%s:%d: %s", ent->file, ent->line, err);
	if (ent->wakeup > 0 && ent->type == MASTERCF_INET)
	    msg_warn("%s:%d: service %s: wakeup is ignored for inet services",
		     ent->file, ent->line, ent->service);
	service_schedule_wakeup(serv, now);
	*tail = serv;
	tail = &serv->next;
    }
}

/* find_old - the service with this name and type in the old table */
static struct master_service **find_old(struct master_service **list, const char *name,
					enum mastercf_type type)
{
    for (; *list; list = &(*list)->next)
	if ((*list)->type == type && strcmp((*list)->name, name) == 0)
	    return list;
    return NULL;
}

/* master_services_reload - switch to newconf (consumed); -1 if the new
 * configuration was refused and the old one stays */
int master_services_reload(struct master_conf *newconf)
{
    struct master_service *old = master_services;
    struct master_service *fresh = NULL, **tail = &fresh;
    long long now = master_now_ms();
    struct {
	const struct mastercf_entry *ent;
	char *key;
    } *plan;
    const char *err;

    /* Resolve every new listener first; a failure keeps the old table. */
    plan = mem_zalloc(mem_size_mul(newconf->cf->count + 1, sizeof(*plan)));
    for (size_t i = 0; i < newconf->cf->count; i++) {
	plan[i].ent = &newconf->cf->entries[i];
	if (master_listen_key(newconf, plan[i].ent, &plan[i].key, &err) < 0) {
	    msg_warn("%s:%d: %s -- keeping the old configuration",
		     plan[i].ent->file, plan[i].ent->line, err);
	    for (size_t j = 0; j < i; j++)
		mem_free(&plan[j].key);
	    mem_free(&plan);
	    master_conf_free(&newconf);
	    return -1;
	}
    }

    /* Old children finish what they do and exit. */
    master_children_retire();

    /* Keep the services whose listeners did not change. */
    for (size_t i = 0; i < newconf->cf->count; i++) {
	struct master_service **op = find_old(&old, plan[i].ent->service, plan[i].ent->type);
	struct master_service *serv;

	if (op && strcmp((*op)->listen_key, plan[i].key) == 0) {
	    serv = *op;
	    *op = serv->next;			/* unlink from the old list */
	    serv->next = NULL;
	    serv->ent = plan[i].ent;
	    serv->throttled = false;		/* the operator may have fixed it */
	    /* every child is retired: a fresh board, sized for the new maxproc */
	    master_sb_free(&serv->sb);
	    serv->sb = master_sb_new(serv->name, serv->ent->maxproc);
	    master_stress_avail(serv);		/* stress stays; maxproc may not */
	    mem_free(&plan[i].key);
	    if (msg_verbose)
		msg_info("reload: service %s/%s keeps its listeners", serv->name,
			 mastercf_type_name(serv->type));
	} else {
	    serv = service_new(plan[i].ent, plan[i].key);
	    serv->listen_pending = true;	/* opened below */
	}
	plan[i].key = NULL;
	service_schedule_wakeup(serv, now);
	*tail = serv;
	tail = &serv->next;
    }
    mem_free(&plan);

    /* Services that are gone (or changed listeners): close them. */
    while (old) {
	struct master_service *serv = old;

	old = serv->next;
	if (msg_verbose)
	    msg_info("reload: closing service %s/%s", serv->name, mastercf_type_name(serv->type));
	service_free(&serv);
    }

    /* Swap the configuration, then open the new listeners. */
    master_services = fresh;
    master_conf_free(&master_conf);
    master_conf = newconf;
    for (struct master_service *serv = master_services; serv; serv = serv->next) {
	if (!serv->listen_pending)
	    continue;
	if (master_listen_open(master_conf, serv, &err) < 0) {
	    /* An old child may still hold the port for a moment: retry. */
	    msg_warn("%s:%d: %s -- will retry", serv->ent->file, serv->ent->line, err);
	    serv->listen_retry_at = now + LISTEN_RETRY_MS;
	    serv->listen_warned_at = now;
	} else {
	    serv->listen_pending = false;
	}
    }
    return 0;
}

/* master_services_stop - close every listener and status pipe */
void master_services_stop(void)
{
    while (master_services) {
	struct master_service *serv = master_services;

	master_services = serv->next;
	service_free(&serv);
    }
}

/* master_service_wants_spawn - watch the listeners for a new child? */
bool master_service_wants_spawn(const struct master_service *serv)
{
    long maxproc = serv->ent->maxproc;

    return !master_stopping && !serv->throttled && !serv->listen_pending
	&& serv->listen_count > 0 && serv->avail_proc == 0
	&& (maxproc == 0 || serv->total_proc < maxproc);
}

/* master_service_timers - run due timers; ms until the next one, or -1 */
int master_service_timers(void)
{
    long long now = master_now_ms();
    long long next = -1;

    for (struct master_service *serv = master_services; serv; serv = serv->next) {
	if (serv->throttled) {
	    if (now >= serv->throttle_until) {
		serv->throttled = false;
		if (msg_verbose)
		    msg_info("service %s: throttle ends", serv->name);
	    } else if (next < 0 || serv->throttle_until < next) {
		next = serv->throttle_until;
	    }
	}
	if (serv->listen_pending && !master_stopping) {
	    if (now >= serv->listen_retry_at) {
		const char *err;

		if (master_listen_open(master_conf, serv, &err) == 0) {
		    serv->listen_pending = false;
		    msg_info("service %s: listening again", serv->name);
		} else {
		    if (now - serv->listen_warned_at >= LISTEN_WARN_MS) {
			msg_warn("%s:%d: %s -- still retrying", serv->ent->file,
				 serv->ent->line, err);
			serv->listen_warned_at = now;
		    }
		    serv->listen_retry_at = now + LISTEN_RETRY_MS;
		}
	    }
	    if (serv->listen_pending && (next < 0 || serv->listen_retry_at < next))
		next = serv->listen_retry_at;
	}
	{
	    long long calm_end = master_stress_timer(serv, now);

	    if (calm_end >= 0 && (next < 0 || calm_end < next))
		next = calm_end;
	}
	if (serv->next_wakeup > 0) {
	    if (now >= serv->next_wakeup) {
		if (!serv->ent->wakeup_if_used || serv->used) {
		    if (msg_verbose)
			msg_info("service %s: wakeup", serv->name);
		    master_wakeup_send(master_conf, serv);
		}
		serv->next_wakeup = now + serv->ent->wakeup * 1000LL;
	    }
	    if (next < 0 || serv->next_wakeup < next)
		next = serv->next_wakeup;
	}
    }
    if (next < 0)
	return -1;
    return next <= now ? 0 : (int) (next - now > 3600000 ? 3600000 : next - now);
}
