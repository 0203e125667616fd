/* qmgr_resolve.c - routing with a per-domain cache.
 *
 * resolve_address() decides class, transport and next hop from the
 * domain alone unless transport_maps is set (its keys may be whole
 * addresses). The tables it reads are opened once per process and a
 * handle never sees a rebuild (table.h), and the domain lists are
 * parameters, so for the life of this qmgr process the answer for a
 * domain never changes: it is computed once and kept. A reload restarts
 * qmgr and so starts a fresh cache. Lookup failures are not kept (the
 * next message asks again). The cache is bounded: when it is full it is
 * emptied and fills again. */

#include <string.h>

/* base */
#include "mem.h"
#include "str.h"

/* mail */
#include "address.h"
#include "config.h"
#include "resolve.h"

/* qmgr */
#include "qmgr.h"

#define QMGR_RESOLVE_BUCKETS	1024
#define QMGR_RESOLVE_MAX	8192	/* entries before the cache is emptied */
#define QMGR_RESOLVE_ADDR_MAX	1000	/* longer addresses: not cached */

struct rcache_entry {
    char *domain;
    struct resolve_result result;
    struct rcache_entry *next;
};

static struct rcache_entry *rcache[QMGR_RESOLVE_BUCKETS];
static size_t rcache_count;

/* rcache_hash - string hash of a domain */
static size_t rcache_hash(const char *key)
{
    size_t h = 5381;

    for (const unsigned char *p = (const unsigned char *) key; *p; p++)
	h = h * 33 + *p;
    return h % QMGR_RESOLVE_BUCKETS;
}

/* rcache_clear - forget every entry */
static void rcache_clear(void)
{
    for (size_t i = 0; i < QMGR_RESOLVE_BUCKETS; i++) {
	while (rcache[i]) {
	    struct rcache_entry *e = rcache[i];

	    rcache[i] = e->next;
	    mem_free(&e->domain);
	    mem_free(&e);
	}
    }
    rcache_count = 0;
}

/* qmgr_resolve - resolve_address, from the cache when the answer
 * depends on the domain only */
int qmgr_resolve(const char *address, struct resolve_result *result, const char **error_r)
{
    const char *at = address_at(address, strlen(address));
    const char *domain;
    struct rcache_entry *e;
    size_t h;

    if (at == NULL || at[1] == 0 || (var_transport_maps && *var_transport_maps)
	|| strlen(address) >= QMGR_RESOLVE_ADDR_MAX)
	return resolve_address(address, result, error_r);
    domain = at + 1;
    h = rcache_hash(domain);
    for (e = rcache[h]; e; e = e->next) {
	if (strcmp(e->domain, domain) == 0) {
	    *result = e->result;
	    return 0;
	}
    }
    if (resolve_address(address, result, error_r) < 0)
	return -1;
    if (rcache_count >= QMGR_RESOLVE_MAX) {
	rcache_clear();
	h = rcache_hash(domain);
    }
    e = mem_zalloc(sizeof(*e));
    e->domain = mem_strdup(domain);
    e->result = *result;
    e->next = rcache[h];
    rcache[h] = e;
    rcache_count++;
    return 0;
}
