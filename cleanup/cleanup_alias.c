/* cleanup_alias.c - virtual_alias_maps expansion of one recipient, with
 * the recursion and expansion limits, self-references and loop cutting
 * (see cleanup.h and docs/cleanup.md). */

/* System. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Base. */
#include "mem.h"
#include "msg.h"
#include "str.h"

/* Mail. */
#include "cleanup_stat.h"
#include "config.h"
#include "resolve.h"
#include "table.h"

/* Cleanup. */
#include "cleanup.h"

struct alias_state {
    const char *id;			/* queue ID, for logs */
    struct cleanup_addrs *out;		/* results */
    struct cleanup_addrs seen;		/* every address met so far */
    struct cleanup_addrs path;		/* the chain being expanded */
    unsigned status;
    const char *why;
};

static char alias_why[512];

/* alias_fail - record a deferral */
static void alias_fail(struct alias_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void alias_fail(struct alias_state *st, const char *fmt, ...)
{
    va_list ap;

    if (st->status)
	return;
    va_start(ap, fmt);
    vsnprintf(alias_why, sizeof(alias_why), fmt, ap);
    va_end(ap);
    st->status = CLEANUP_STAT_DEFER;
    st->why = alias_why;
}

/* alias_emit - one final address */
static void alias_emit(struct alias_state *st, const char *addr)
{
    if (cleanup_addrs_find(st->out, addr, false) >= 0)
	return;
    if ((long) st->out->n >= var_virtual_alias_expansion_limit) {
	msg_warn("%s: unreasonable virtual_alias_maps map expansion size for %s",
		 st->id, st->path.n ? st->path.v[0] : addr);
	alias_fail(st, "virtual alias expansion of %s exceeds virtual_alias_expansion_limit (%ld)",
		   st->path.n ? st->path.v[0] : addr, var_virtual_alias_expansion_limit);
	return;
    }
    cleanup_addrs_add(st->out, addr);
}

struct targets_ctx {
    struct cleanup_addrs *list;
};

/* collect_target - cleanup_addr_list callback */
static void collect_target(const char *addr, void *ctx)
{
    struct targets_ctx *tc = ctx;

    cleanup_addrs_add(tc->list, addr);
}

/* alias_expand - expand addr at depth (recursive; depth is bounded) */
static void alias_expand(struct alias_state *st, const char *addr, long depth)
{
    struct str *value = str_new(TABLE_ENTRY_MAX), *canon = str_new(CLEANUP_ADDR_MAX);
    struct cleanup_addrs targets;
    struct targets_ctx tc;
    const char *error;
    size_t i;
    int rc;

    cleanup_addrs_init(&targets);
    if ((rc = resolve_lookup_virtual_alias(addr, value, &error)) < 0) {
	msg_warn("%s: virtual_alias_maps lookup of %s failed: %s", st->id, addr, error);
	alias_fail(st, "temporary virtual_alias_maps lookup failure for %s", addr);
	goto out;
    }
    if (rc == 0) {
	alias_emit(st, addr);
	goto out;
    }
    if (depth >= var_virtual_alias_recursion_limit) {
	msg_warn("%s: unreasonable virtual_alias_maps map nesting for %s", st->id,
		 st->path.n ? st->path.v[0] : addr);
	alias_fail(st, "virtual alias nesting of %s exceeds virtual_alias_recursion_limit (%ld)",
		   st->path.n ? st->path.v[0] : addr, var_virtual_alias_recursion_limit);
	goto out;
    }
    tc.list = &targets;
    if (cleanup_addr_list(str_cstr(value), str_len(value), (size_t) var_header_address_token_limit,
			  collect_target, &tc) < 0)
	msg_warn("%s: virtual alias of %s has too many tokens; the rest is ignored", st->id, addr);
    cleanup_addrs_add(&st->path, addr);
    for (i = 0; i < targets.n && st->status == 0; i++) {
	if (!cleanup_addr_canon(targets.v[i], var_myorigin, canon) || str_len(canon) == 0)
	    continue;
	if (strcasecmp(str_cstr(canon), addr) == 0) {
	    alias_emit(st, addr);		/* "a -> a, b": a stays */
	} else if (cleanup_addrs_find(&st->path, str_cstr(canon), true) >= 0) {
	    msg_warn("%s: virtual alias loop: %s -> %s cut", st->id, addr, str_cstr(canon));
	} else if (cleanup_addrs_find(&st->seen, str_cstr(canon), true) < 0) {
	    cleanup_addrs_add(&st->seen, str_cstr(canon));
	    alias_expand(st, str_cstr(canon), depth + 1);
	}
    }
    mem_free(&st->path.v[--st->path.n]);
  out:
    cleanup_addrs_fini(&targets);
    str_free(&value);
    str_free(&canon);
}

/* cleanup_alias_expand - expand one canonical recipient */
unsigned cleanup_alias_expand(const char *id, const char *addr, struct cleanup_addrs *out,
			      const char **why_r)
{
    struct alias_state st;

    st.id = id;
    st.out = out;
    st.status = 0;
    st.why = "";
    cleanup_addrs_init(&st.seen);
    cleanup_addrs_init(&st.path);
    cleanup_addrs_add(&st.seen, addr);
    alias_expand(&st, addr, 0);
    cleanup_addrs_fini(&st.seen);
    cleanup_addrs_fini(&st.path);
    *why_r = st.why;
    return st.status;
}
