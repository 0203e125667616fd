/* dns.c - MX and address lookups over libunbound (see dns.h). */

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>

/* base */
#include "errtext.h"
#include "mem.h"
#include "msg.h"
#include "str.h"

/* mail */
#include "config.h"
#include "dns.h"

#define RR_A		1
#define RR_MX		15
#define RR_AAAA		28
#define RR_CLASS_IN	1

#define RCODE_NOERROR	0
#define RCODE_NXDOMAIN	3

static struct errtext dns_error;
static struct ub_ctx *dns_ctx;
static pid_t dns_pid;			/* the process that made dns_ctx */

/* dns_forget_inherited - in a child of the process that made the
 * context, drop it without deleting it: its helper belongs to the
 * parent, and ub_ctx_delete would stop it */
static void dns_forget_inherited(void)
{
    if (dns_ctx != NULL && dns_pid != getpid())
	dns_ctx = NULL;
}

/* dns_status_name - the word for a status */
const char *dns_status_name(enum dns_status status)
{
    switch (status) {
    case DNS_OK:
	return "ok";
    case DNS_TEMPORARY:
	return "temporary";
    case DNS_PERMANENT:
	return "permanent";
    }
    return "unknown";
}

/* dns_mx_kind_name - the word for an MX result */
const char *dns_mx_kind_name(enum dns_mx_kind kind)
{
    switch (kind) {
    case DNS_MX_LIST:
	return "list";
    case DNS_MX_NONE:
	return "none";
    case DNS_MX_NULL:
	return "null";
    case DNS_MX_NXDOMAIN:
	return "nxdomain";
    case DNS_MX_FAIL:
	return "fail";
    }
    return "unknown";
}

/* dns_close - delete the context and its helper */
void dns_close(void)
{
    dns_forget_inherited();
    if (dns_ctx != NULL) {
	ub_ctx_delete(dns_ctx);
	dns_ctx = NULL;
    }
}

struct fwd_ctx {
    struct ub_ctx *ctx;
    int count;
    bool failed;
    char bad[256];		/* the first refused item (config_split's
				 * buffer is gone after the call) */
    int ret;
};

/* add_forwarder - one dns_servers item: "ADDR" or "ADDR@PORT" */
static void add_forwarder(const char *item, void *ctx)
{
    struct fwd_ctx *f = ctx;
    char addr[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    const char *at = strchr(item, '@');
    size_t len = at ? (size_t) (at - item) : strlen(item);

    if (f->failed)
	return;
    if (len >= sizeof(addr))
	goto bad;
    memcpy(addr, item, len);
    addr[len] = 0;
    if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)
	goto bad;
    if (at != NULL) {
	char *end;
	long port;

	errno = 0;
	port = strtol(at + 1, &end, 10);
	if (at[1] == 0 || *end != 0 || errno != 0 || port < 1 || port > 65535)
	    goto bad;
    }
    /* unbound's own syntax: "addr@port" */
    if ((f->ret = ub_ctx_set_fwd(f->ctx, item)) != 0)
	goto bad;
    f->count++;
    return;

bad:
    f->failed = true;
    fmt_buf_cut(f->bad, sizeof(f->bad), "%s", item);	/* for the message */
}

/* dns_open - the context, made from main.cf at the first use */
static int dns_open(const char **error_r)
{
    struct ub_ctx *ctx;
    int ret;

    dns_forget_inherited();
    if (dns_ctx != NULL)
	return 0;
    if ((ctx = ub_ctx_create()) == NULL)
	return errtext_fail(&dns_error, error_r, "dns: cannot create a libunbound context");
    /* fork mode: a helper process, no thread in the caller */
    if ((ret = ub_ctx_async(ctx, 0)) != 0)
	goto ub_fail;
    if (var_dns_servers != NULL && var_dns_servers[0] != 0) {
	struct fwd_ctx f = {.ctx = ctx};

	/* a test server on 127.0.0.1 must be asked */
	if ((ret = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) != 0)
	    goto ub_fail;
	config_split(var_dns_servers, add_forwarder, &f);
	if (f.failed) {
	    ub_ctx_delete(ctx);
	    return errtext_fail(&dns_error, error_r, "dns: bad dns_servers item \"%s\"%s%s",
				f.bad, f.ret ? ": " : " (want ADDR or ADDR@PORT)",
				f.ret ? ub_strerror(f.ret) : "");
	}
	if (f.count == 0) {
	    ub_ctx_delete(ctx);
	    return errtext_fail(&dns_error, error_r, "dns: dns_servers lists no server");
	}
    } else if ((ret = ub_ctx_resolvconf(ctx, NULL)) != 0) {
	ub_ctx_delete(ctx);
	return errtext_fail(&dns_error, error_r, "dns: read /etc/resolv.conf: %s",
			    ub_strerror(ret));
    }
    dns_ctx = ctx;
    dns_pid = getpid();
    return 0;

ub_fail:
    ub_ctx_delete(ctx);
    return errtext_fail(&dns_error, error_r, "dns: configure libunbound: %s", ub_strerror(ret));
}

/* One outstanding query. */
struct query {
    const char *name;
    int rrtype;
    int async_id;
    bool done;
    int err;			/* UB_* of the callback */
    struct ub_result *result;	/* on err == 0 */
};

/* query_done - libunbound's callback */
static void query_done(void *arg, int err, struct ub_result *result)
{
    struct query *q = arg;

    q->done = true;
    q->err = err;
    q->result = result;
}

/* now_ms - the monotonic clock in milliseconds */
static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* run_queries - ask every query at once, wait until all are answered or
 * dns_timeout has passed (the late ones are cancelled: done stays
 * false); -1 with the text if the queries could not be asked */
static int run_queries(struct query *qs, size_t n, const char **error_r)
{
    long long deadline;
    size_t i;
    int ret;

    if (dns_open(error_r) < 0)
	return -1;
    for (i = 0; i < n; i++) {
	qs[i].done = false;
	qs[i].result = NULL;
	if ((ret = ub_resolve_async(dns_ctx, qs[i].name, qs[i].rrtype, RR_CLASS_IN, &qs[i],
				    query_done, &qs[i].async_id)) != 0) {
	    /* a bad name is answered at once: keep it as the query's result */
	    qs[i].done = true;
	    qs[i].err = ret;
	}
    }
    deadline = now_ms() + var_dns_timeout * 1000LL;
    for (;;) {
	bool pending = false;
	long long left;
	struct pollfd pfd;

	for (i = 0; i < n; i++)
	    if (!qs[i].done)
		pending = true;
	if (!pending)
	    break;
	if ((left = deadline - now_ms()) <= 0)
	    break;
	pfd.fd = ub_fd(dns_ctx);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, left > 60000 ? 60000 : (int) left) < 0) {
	    if (errno == EINTR)
		continue;
	    msg_fatal("dns: poll: %m");
	}
	if (pfd.revents != 0 && (ret = ub_process(dns_ctx)) != 0) {
	    /* the helper is gone: start again at the next lookup */
	    for (i = 0; i < n; i++)
		if (qs[i].done && qs[i].result != NULL)
		    ub_resolve_free(qs[i].result);
	    dns_close();
	    return errtext_fail(&dns_error, error_r, "dns: libunbound: %s", ub_strerror(ret));
	}
    }
    for (i = 0; i < n; i++)
	if (!qs[i].done)
	    (void) ub_cancel(dns_ctx, qs[i].async_id);
    return 0;
}

/* classify - a query's outcome: DNS_OK with the result (data or not),
 * else the status and text; *nxdomain_r set on NXDOMAIN */
static enum dns_status classify(const struct query *q, bool *nxdomain_r, const char **error_r)
{
    const char *type = q->rrtype == RR_MX ? "MX" : q->rrtype == RR_A ? "A" : "AAAA";

    *nxdomain_r = false;
    if (!q->done) {
	*error_r = errtext_set(&dns_error, "%s lookup of %s: no answer within %lds",
			       type, q->name, var_dns_timeout);
	return DNS_TEMPORARY;
    }
    if (q->err == UB_SYNTAX) {
	*error_r = errtext_set(&dns_error, "%s lookup of %s: malformed name", type, q->name);
	return DNS_PERMANENT;
    }
    if (q->err != 0) {
	*error_r = errtext_set(&dns_error, "%s lookup of %s: %s", type, q->name,
			       ub_strerror(q->err));
	return DNS_TEMPORARY;
    }
    if (q->result->nxdomain || q->result->rcode == RCODE_NXDOMAIN) {
	*nxdomain_r = true;
	*error_r = errtext_set(&dns_error, "%s lookup of %s: domain not found (NXDOMAIN)",
			       type, q->name);
	return DNS_PERMANENT;
    }
    if (q->result->rcode != RCODE_NOERROR) {
	static const char *const rcodes[] = {
	    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	};
	int rc = q->result->rcode;

	if (rc >= 0 && rc < (int) (sizeof(rcodes) / sizeof(rcodes[0])))
	    *error_r = errtext_set(&dns_error, "%s lookup of %s: %s", type, q->name, rcodes[rc]);
	else
	    *error_r = errtext_set(&dns_error, "%s lookup of %s: rcode %d", type, q->name, rc);
	return DNS_TEMPORARY;
    }
    return DNS_OK;
}

/* free_queries - the results */
static void free_queries(struct query *qs, size_t n)
{
    for (size_t i = 0; i < n; i++)
	if (qs[i].result != NULL) {
	    ub_resolve_free(qs[i].result);
	    qs[i].result = NULL;
	}
}

/* wire_name - an uncompressed wire-format name into dotted text without
 * the final dot ("" for the root); false if malformed or too long */
static bool wire_name(const unsigned char *p, size_t len, char *out, size_t size)
{
    size_t at = 0, o = 0;

    for (;;) {
	size_t label;

	if (at >= len)
	    return false;
	label = p[at++];
	if (label == 0)
	    break;
	if (label > 63 || at + label > len)
	    return false;
	if (o != 0) {
	    if (o + 1 >= size)
		return false;
	    out[o++] = '.';
	}
	for (size_t i = 0; i < label; i++) {
	    unsigned char c = p[at + i];

	    /* a host name: letters, digits, '-', '_' (no dots or spaces
	     * inside a label, nothing a later SMTP line could carry) */
	    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		  || c == '-' || c == '_'))
		return false;
	    if (o + 1 >= size)
		return false;
	    out[o++] = (char) c;
	}
	at += label;
    }
    out[o] = 0;
    return true;
}

/* An exchanger with its random key, for the sort. */
struct mx_sort {
    struct dns_mx mx;
    unsigned int key;
};

/* mx_cmp - by preference, then by the random key */
static int mx_cmp(const void *a, const void *b)
{
    const struct mx_sort *x = a, *y = b;

    if (x->mx.pref != y->mx.pref)
	return x->mx.pref < y->mx.pref ? -1 : 1;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* dns_mx_reply_free - release the list */
void dns_mx_reply_free(struct dns_mx_reply *reply)
{
    mem_free(&reply->mx);
    reply->count = 0;
}

/* dns_mx - the MX records of domain, sorted */
enum dns_status dns_mx(const char *domain, struct dns_mx_reply *reply, const char **error_r)
{
    struct query q = {.name = domain, .rrtype = RR_MX};
    struct mx_sort *tmp;
    enum dns_status st;
    bool nx;
    size_t n = 0, nrec, nroot = 0;

    reply->kind = DNS_MX_FAIL;
    reply->count = 0;
    reply->mx = NULL;
    if (run_queries(&q, 1, error_r) < 0)
	return DNS_TEMPORARY;
    if ((st = classify(&q, &nx, error_r)) != DNS_OK) {
	reply->kind = nx ? DNS_MX_NXDOMAIN : DNS_MX_FAIL;
	free_queries(&q, 1);
	return st;
    }
    if (!q.result->havedata) {
	reply->kind = DNS_MX_NONE;
	free_queries(&q, 1);
	return DNS_OK;
    }
    for (nrec = 0; q.result->data[nrec] != NULL; nrec++)
	 /* void */ ;
    tmp = mem_alloc_array(nrec, sizeof(*tmp));
    for (size_t i = 0; i < nrec; i++) {
	const unsigned char *d = (const unsigned char *) q.result->data[i];
	size_t len = (size_t) q.result->len[i];

	if (len < 3 || !wire_name(d + 2, len - 2, tmp[n].mx.host, sizeof(tmp[n].mx.host))) {
	    mem_free(&tmp);
	    free_queries(&q, 1);
	    *error_r = errtext_set(&dns_error, "MX lookup of %s: malformed MX record", domain);
	    return DNS_TEMPORARY;
	}
	tmp[n].mx.pref = (d[0] << 8) | d[1];
	tmp[n].key = arc4random();
	if (tmp[n].mx.host[0] == 0)
	    nroot++;			/* "." */
	else
	    n++;
    }
    free_queries(&q, 1);
    if (n == 0) {
	/* RFC 7505: one MX "." (preference 0) says the domain takes no
	 * mail; "." entries among others are dropped */
	mem_free(&tmp);
	reply->kind = DNS_MX_NULL;
	*error_r = errtext_set(&dns_error, "domain %s accepts no mail (null MX, RFC 7505)%s",
			       domain, nroot > 1 ? " (more than one \".\")" : "");
	return DNS_PERMANENT;
    }
    qsort(tmp, n, sizeof(*tmp), mx_cmp);
    reply->mx = mem_alloc_array(n, sizeof(*reply->mx));
    for (size_t i = 0; i < n; i++)
	reply->mx[i] = tmp[i].mx;
    mem_free(&tmp);
    reply->count = n;
    reply->kind = DNS_MX_LIST;
    return DNS_OK;
}

/* dns_addr_reply_free - release the list */
void dns_addr_reply_free(struct dns_addr_reply *reply)
{
    mem_free(&reply->addr);
    reply->count = 0;
}

/* dns_addrs - A and/or AAAA of host */
enum dns_status dns_addrs(const char *host, int families, struct dns_addr_reply *reply,
			  const char **error_r)
{
    struct query qs[2];
    size_t n = 0, total = 0;
    bool nx = false;
    size_t temp = 2;			/* the index of a temporary failure */
    enum dns_status ret;

    reply->count = 0;
    reply->addr = NULL;
    if ((families & (DNS_INET4 | DNS_INET6)) == 0)
	msg_panic("dns_addrs: no address family");
    if (families & DNS_INET4)
	qs[n++] = (struct query) {.name = host, .rrtype = RR_A};
    if (families & DNS_INET6)
	qs[n++] = (struct query) {.name = host, .rrtype = RR_AAAA};
    if (run_queries(qs, n, error_r) < 0)
	return DNS_TEMPORARY;
    for (size_t i = 0; i < n; i++) {
	bool qnx;
	const char *err;
	enum dns_status st = classify(&qs[i], &qnx, &err);

	if (st != DNS_OK) {
	    if (st == DNS_TEMPORARY)
		temp = i;
	    nx = nx || qnx;
	    continue;
	}
	if (qs[i].result->havedata)
	    for (size_t k = 0; qs[i].result->data[k] != NULL; k++)
		total++;
    }
    if (total > 0) {
	reply->addr = mem_alloc_array(total, sizeof(*reply->addr));
	for (size_t i = 0; i < n; i++) {
	    const struct ub_result *r = qs[i].result;
	    size_t want = qs[i].rrtype == RR_A ? 4 : 16;

	    if (r == NULL || !r->havedata || r->rcode != RCODE_NOERROR)
		continue;
	    for (size_t k = 0; r->data[k] != NULL; k++) {
		struct dns_addr *a = reply->addr + reply->count;

		if ((size_t) r->len[k] != want)
		    continue;		/* malformed: skipped */
		memset(a, 0, sizeof(*a));
		a->family = want == 4 ? AF_INET : AF_INET6;
		memcpy(want == 4 ? (void *) &a->a.v4 : (void *) &a->a.v6, r->data[k], want);
		reply->count++;
	    }
	}
    }
    if (reply->count > 0) {
	ret = DNS_OK;
    } else if (temp < n) {
	bool qnx;

	ret = classify(&qs[temp], &qnx, error_r);	/* its text again */
    } else if (nx) {
	*error_r = errtext_set(&dns_error, "host %s not found (NXDOMAIN)", host);
	ret = DNS_PERMANENT;
    } else {
	*error_r = errtext_set(&dns_error, "host %s has no %s address", host,
			       families == DNS_INET4 ? "IPv4" : families == DNS_INET6 ? "IPv6"
			       : "IPv4 or IPv6");
	ret = DNS_PERMANENT;
    }
    free_queries(qs, n);
    if (ret != DNS_OK)
	dns_addr_reply_free(reply);
    return ret;
}
