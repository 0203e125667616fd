/* ph-store - drive the mail store (lib/store) from the tests
 * (tests/test_store.py).
 *
 * ph-store list DIR [FOLDER]        "uidvalidity V uidnext N count C", then
 *                                   "UID SIZE CRLFSIZE FLAGS NAME" per message
 * ph-store fetch DIR UID            the message on stdout
 * ph-store flags DIR UID +LETTERS|-LETTERS
 * ph-store expunge DIR UID...       "removed N"
 * ph-store lock DIR NAME SECONDS    hold a session lock: "locked", or
 *                                   "busy" (exit 3) when another holds it
 * ph-store modseq DIR                "highestmodseq H", then "UID MODSEQ FLAGS"
 * ph-store append DIR FILE [LETTERS] "uidvalidity V uid U"
 * ph-store appends DIR N             append N small messages: "uid U" each
 * ph-store copy DIR FOLDER UID...    "uidvalidity V uids U..."
 * ph-store recent DIR SECONDS        claim \Recent (sync every 10 ms) for
 *                                    SECONDS: "recent UID..." at the end
 * ph-store idle DIR SECONDS          "ready", then when the watch fires
 *                                    "changed MS" (or "timeout")
 * ph-store cache-fill DIR            a 300-byte ENVELOPE for every message
 * ph-store time-open DIR ROUNDS      "open MS" (best of ROUNDS, read-write)
 * ph-store time-fetch DIR ROUNDS     "fetch MS": every message's UID,
 *                                    flags, size and cached ENVELOPE
 * ph-store watch DIR SECONDS        refresh for SECONDS (every 10 ms) and
 *                                   check at each step: UIDs ascending,
 *                                   never below an earlier UIDNEXT for a
 *                                   new message, a message keeps its UID,
 *                                   UIDVALIDITY unchanged; then the list
 *
 * Exit 0 on success, 1 on a usage or store error, 2 when watch saw an
 * invariant broken (the reason on stderr). */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "msg.h"

/* store */
#include "store.h"

/* usage - complain and exit 1 */
static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: ph-store list|fetch|flags|expunge|lock|watch|modseq|append|appends|copy|recent|idle|cache-fill|time-open|time-fetch DIR ...\n");
    exit(1);
}

/* open_box - open or exit 1 */
static struct store_mailbox *open_box(const char *dir, const char *folder, int mode)
{
    struct store_mailbox *mb;
    const char *err;

    if ((mb = store_open(dir, folder, mode, &err)) == NULL) {
	fprintf(stderr, "ph-store: %s\n", err);
	exit(1);
    }
    return mb;
}

/* print_list - the snapshot */
static void print_list(struct store_mailbox *mb)
{
    const struct store_msg *m;
    char flags[40];
    size_t i;

    printf("uidvalidity %lu uidnext %lu count %zu\n", (unsigned long) store_uidvalidity(mb),
	   (unsigned long) store_uidnext(mb), store_count(mb));
    for (i = 0; (m = store_msg(mb, i)) != NULL; i++) {
	store_flags_format(m->flags, flags, sizeof(flags));
	printf("%lu %lld %lld %s %s\n", (unsigned long) m->uid, (long long) m->size,
	       (long long) store_msg_crlf_size(mb, i), *flags ? flags : "-", m->name);
    }
}

/* uid_arg - a UID argument */
static long uid_index(struct store_mailbox *mb, const char *arg)
{
    long i = store_find_uid(mb, (uint32_t) strtoul(arg, NULL, 10));

    if (i < 0) {
	fprintf(stderr, "ph-store: no UID %s\n", arg);
	exit(1);
    }
    return i;
}

/* key_len - the unique part of a name */
static size_t key_len(const char *name)
{
    return strcspn(name, ",:");
}

/* watch - refresh in a loop and check the invariants */
static int watch(const char *dir, double seconds)
{
    struct store_mailbox *mb = open_box(dir, NULL, STORE_READ_ONLY);
    struct seen {
	char *key;
	uint32_t uid;
    } *seen = NULL;
    size_t nseen = 0, nbefore, i, j;
    uint32_t uv = store_uidvalidity(mb), prev_next = store_uidnext(mb), last;
    struct timespec t0, now;
    const struct store_msg *m;
    const char *err;
    int bad = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
	if (store_uidvalidity(mb) != uv) {
	    fprintf(stderr, "UIDVALIDITY changed %lu -> %lu\n", (unsigned long) uv,
		    (unsigned long) store_uidvalidity(mb));
	    bad = 1;
	}
	last = 0;
	nbefore = nseen;
	for (i = 0; (m = store_msg(mb, i)) != NULL; i++) {
	    if (m->uid <= last) {
		fprintf(stderr, "UIDs not ascending at %zu\n", i);
		bad = 1;
	    }
	    last = m->uid;
	    for (j = 0; j < nbefore; j++)
		if (strlen(seen[j].key) == key_len(m->name)
		    && strncmp(seen[j].key, m->name, key_len(m->name)) == 0)
		    break;
	    if (j < nbefore && seen[j].uid != m->uid) {
		fprintf(stderr, "%s: UID %lu became %lu\n", seen[j].key,
			(unsigned long) seen[j].uid, (unsigned long) m->uid);
		bad = 1;
	    } else if (j == nbefore) {
		if (nbefore > 0 && m->uid < prev_next) {
		    fprintf(stderr, "new message %s got UID %lu below UIDNEXT %lu\n", m->name,
			    (unsigned long) m->uid, (unsigned long) prev_next);
		    bad = 1;
		}
		seen = mem_realloc(seen, (nseen + 1) * sizeof(*seen));
		seen[nseen].key = mem_strndup(m->name, key_len(m->name));
		seen[nseen++].uid = m->uid;
	    }
	}
	prev_next = store_uidnext(mb);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (bad || (double) (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
	    break;
	usleep(10000);
	if (store_refresh(mb, NULL, NULL, &err) < 0) {
	    fprintf(stderr, "ph-store: %s\n", err);
	    return 1;
	}
    }
    print_list(mb);
    for (i = 0; i < nseen; i++)
	mem_free(&seen[i].key);
    mem_free(&seen);
    store_close(&mb);
    return bad ? 2 : 0;
}

static clockid_t clock_id = CLOCK_MONOTONIC;

/* now_ms - the clock in milliseconds (PH_STORE_CPU=1: this process's
 * CPU time, for a busy machine) */
static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(clock_id, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* letters - flags from Maildir letters */
static uint32_t letters(const char *arg)
{
    char name[64];

    snprintf(name, sizeof(name), "x:2,%s", arg);
    return store_flags_parse(name);
}

/* fail - the store error, exit 1 */
static _Noreturn void fail(const char *err)
{
    fprintf(stderr, "ph-store: %s\n", err);
    exit(1);
}

/* more - the imapd-style commands; 1 if cmd was one of them */
static int more(int argc, char **argv, int *rc)
{
    const char *cmd = argv[1], *err;
    struct store_mailbox *mb = NULL;
    uint32_t uv, uid;
    double best, t;
    size_t i, len = 0;
    int k;

    if (strcmp(cmd, "modseq") == 0 && argc == 3) {
	char fl[40];

	mb = open_box(argv[2], NULL, STORE_READ_ONLY);
	printf("highestmodseq %llu\n", (unsigned long long) store_highestmodseq(mb));
	for (i = 0; i < store_count(mb); i++) {
	    store_flags_format(store_msg(mb, i)->flags, fl, sizeof(fl));
	    printf("%lu %llu %s\n", (unsigned long) store_msg(mb, i)->uid,
		   (unsigned long long) store_msg(mb, i)->modseq, *fl ? fl : "-");
	}
    } else if (strcmp(cmd, "append") == 0 && (argc == 4 || argc == 5)) {
	int fd = open(argv[3], O_RDONLY);

	if (fd < 0) {
	    perror(argv[3]);
	    exit(1);
	}
	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	if (store_append(mb, fd, NULL, 0, argc == 5 ? letters(argv[4]) : 0, 0, &uv, &uid,
			 &err) < 0)
	    fail(err);
	printf("uidvalidity %lu uid %lu\n", (unsigned long) uv, (unsigned long) uid);
	(void) close(fd);
    } else if (strcmp(cmd, "appends") == 0 && argc == 4) {
	char text[128];

	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	for (k = 0; k < atoi(argv[3]); k++) {
	    snprintf(text, sizeof(text), "Subject: appended %d by %d\n\nbody\n", k,
		     (int) getpid());
	    if (store_append(mb, -1, text, strlen(text), 0, 0, &uv, &uid, &err) < 0)
		fail(err);
	    printf("uid %lu\n", (unsigned long) uid);
	}
    } else if (strcmp(cmd, "copy") == 0 && argc >= 5) {
	struct store_mailbox *dest;
	size_t *idx = mem_alloc_array((size_t) argc, sizeof(*idx));
	uint32_t *uids = mem_alloc_array((size_t) argc, sizeof(*uids));

	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	dest = open_box(argv[2], argv[3], STORE_READ_WRITE);
	for (k = 4; k < argc; k++)
	    idx[k - 4] = (size_t) uid_index(mb, argv[k]);
	if (store_copy(mb, idx, (size_t) (argc - 4), dest, uids, &uv, &err) < 0)
	    fail(err);
	printf("uidvalidity %lu uids", (unsigned long) uv);
	for (k = 4; k < argc; k++)
	    printf(" %lu", (unsigned long) uids[k - 4]);
	printf("\n");
	store_close(&dest);
	mem_free(&idx);
	mem_free(&uids);
    } else if (strcmp(cmd, "recent") == 0 && argc == 4) {
	struct store_changes ch;
	double end = now_ms() + atof(argv[3]) * 1e3;

	memset(&ch, 0, sizeof(ch));
	mb = open_box(argv[2], NULL, STORE_READ_WRITE | STORE_RECENT);
	while (now_ms() < end) {
	    usleep(10000);
	    if (store_sync(mb, &ch, &err) < 0)
		fail(err);
	}
	printf("recent");
	for (i = 0; i < store_count(mb); i++)
	    if (store_msg(mb, i)->recent)
		printf(" %lu", (unsigned long) store_msg(mb, i)->uid);
	printf("\n");
	store_changes_free(&ch);
    } else if (strcmp(cmd, "idle") == 0 && argc == 4) {
	struct pollfd pfd;

	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	if ((pfd.fd = store_watch_fd(mb, &err)) < 0)
	    fail(err);
	pfd.events = POLLIN;
	printf("ready\n");
	fflush(stdout);
	t = now_ms();
	if (poll(&pfd, 1, (int) (atof(argv[3]) * 1e3)) == 1)
	    printf("changed %.1f\n", now_ms() - t);
	else
	    printf("timeout\n");
    } else if (strcmp(cmd, "cache-fill") == 0 && argc == 3) {
	char val[300];

	memset(val, 'e', sizeof(val));
	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	for (i = 0; i < store_count(mb); i++) {
	    snprintf(val, sizeof(val), "(envelope of %lu)", (unsigned long) store_msg(mb, i)->uid);
	    val[strlen(val)] = 'e';
	    if (store_cache_put(mb, i, STORE_CACHE_ENVELOPE, val, sizeof(val), &err) < 0)
		fail(err);
	}
	if (store_cache_flush(mb, &err) < 0)
	    fail(err);
    } else if ((strcmp(cmd, "time-open") == 0 || strcmp(cmd, "time-fetch") == 0)
	       && argc == 4) {
	bool fetch = cmd[5] == 'f';
	const void *v;
	size_t total = 0, miss = 0;

	best = 1e9;
	for (k = 0; k < atoi(argv[3]); k++) {
	    t = now_ms();
	    if ((mb = store_open(argv[2], NULL, STORE_READ_WRITE | STORE_RECENT, &err)) == NULL)
		fail(err);
	    if (fetch) {
		double t1 = now_ms();

		for (i = 0; i < store_count(mb); i++) {
		    const struct store_msg *m = store_msg(mb, i);

		    total += m->uid + (size_t) store_msg_crlf_size(mb, i) + m->flags;
		    if (store_cache_get(mb, i, STORE_CACHE_ENVELOPE, &v, &len))
			total += len;
		    else
			miss++;
		}
		t = t1;			/* (the fetch part only) */
	    }
	    t = now_ms() - t;
	    if (t < best)
		best = t;
	    len = store_count(mb);
	    store_close(&mb);
	}
	printf("%s %.2f count %zu miss %zu (%zu)\n", fetch ? "fetch" : "open", best, len,
	       miss, total % 10);
    } else {
	return 0;
    }
    store_close(&mb);
    (void) rc;
    return 1;
}

int main(int argc, char **argv)
{
    struct store_mailbox *mb;
    const char *err, *cmd;
    uint32_t *uids;
    size_t removed;
    char buf[65536];
    ssize_t n;
    long i;
    int fd, k, rc = 0;

    msg_init("ph-store", MSG_TO_STDERR);
    if (getenv("PH_STORE_CPU") && strcmp(getenv("PH_STORE_CPU"), "1") == 0)
	clock_id = CLOCK_PROCESS_CPUTIME_ID;
    if (argc < 3)
	usage();
    cmd = argv[1];
    if (more(argc, argv, &rc))
	return rc;
    if (strcmp(cmd, "list") == 0) {
	mb = open_box(argv[2], argc > 3 ? argv[3] : NULL, STORE_READ_ONLY);
	print_list(mb);
    } else if (strcmp(cmd, "fetch") == 0 && argc == 4) {
	mb = open_box(argv[2], NULL, STORE_READ_ONLY);
	if ((fd = store_open_msg(mb, (size_t) uid_index(mb, argv[3]), &err)) < 0) {
	    fprintf(stderr, "ph-store: %s\n", err);
	    rc = 1;
	} else {
	    while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t) n, stdout);
	    (void) close(fd);
	}
    } else if (strcmp(cmd, "flags") == 0 && argc == 5) {
	uint32_t bits;

	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	i = uid_index(mb, argv[3]);
	if (argv[4][0] != '+' && argv[4][0] != '-')
	    usage();
	{
	    char name[64];

	    snprintf(name, sizeof(name), "x:2,%s", argv[4] + 1);
	    bits = store_flags_parse(name);
	}
	if (store_set_flags(mb, (size_t) i, argv[4][0] == '+' ? bits : 0,
			    argv[4][0] == '-' ? bits : 0, &err) < 0) {
	    fprintf(stderr, "ph-store: %s\n", err);
	    rc = 1;
	} else {
	    print_list(mb);
	}
    } else if (strcmp(cmd, "expunge") == 0) {
	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	uids = mem_alloc_array((size_t) argc, sizeof(*uids));
	for (k = 3; k < argc; k++)
	    uids[k - 3] = (uint32_t) strtoul(argv[k], NULL, 10);
	if (store_expunge(mb, uids, (size_t) (argc - 3), &removed, &err) < 0) {
	    fprintf(stderr, "ph-store: %s\n", err);
	    rc = 1;
	} else {
	    printf("removed %zu\n", removed);
	}
	mem_free(&uids);
    } else if (strcmp(cmd, "lock") == 0 && argc == 5) {
	mb = open_box(argv[2], NULL, STORE_READ_WRITE);
	if (store_session_lock(mb, argv[3], &err) < 0) {
	    rc = errno == EWOULDBLOCK ? 3 : 1;
	    printf("%s\n", rc == 3 ? "busy" : err);
	} else {
	    printf("locked\n");
	    fflush(stdout);
	    sleep((unsigned) atoi(argv[4]));
	}
    } else if (strcmp(cmd, "watch") == 0 && argc == 4) {
	return watch(argv[2], atof(argv[3]));
    } else {
	usage();
    }
    store_close(&mb);
    return rc;
}
