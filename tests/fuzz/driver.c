/* driver.c - a main() for the fuzz targets when built without libFuzzer.
 *
 * Replay (the default): run LLVMFuzzerTestOneInput once on each file named
 * on the command line (a directory: on each regular file in it), so a
 * corpus or a crash reproducer can be replayed under any compiler and
 * sanitizer. `make check` replays every seed corpus this way.
 *
 * Mutation (-t SECONDS and/or -r RUNS): after the replay, a blind
 * mutation loop (no coverage feedback: for machines without libFuzzer)
 * takes a random corpus input, applies a few random edits (bit flips,
 * interesting bytes, inserts, deletes, duplicated or spliced ranges) and
 * runs the target on it, until the time or the run count is used up. It
 * prints "executions: N". When the target crashes (a signal, or a
 * sanitizer report), the input at hand is written to
 * CRASHDIR/crash-NNN (-o, default ".") and its path is printed.
 *
 *   fuzz_X [-t seconds] [-r runs] [-m max_len] [-s seed] [-o crashdir] path...
 *
 * Every input is copied to a heap buffer of its exact size, so ASan sees
 * a read one byte past its end. */

/* system */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "str.h"

#define DRIVER_FILE_MAX		(1 << 20)	/* bytes read per corpus file */
#define DRIVER_CORPUS_MAX	4096		/* corpus files kept for mutation */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv);

/* The corpus, kept in memory for the mutation loop. */
struct input {
    uint8_t *data;
    size_t len;
};
static struct input corpus[DRIVER_CORPUS_MAX];
static size_t corpus_count;

/* The input being run, for the crash handlers. */
static const uint8_t *current_data;
static size_t current_len;
static char crash_dir[1024] = ".";
static unsigned long long executions;

/* save_crash - write the current input to crash_dir/crash-N
 * (async-signal-safe: no stdio, no allocation) */
static void save_crash(void)
{
    static volatile sig_atomic_t saved;
    char path[1200];
    char num[24];
    size_t n = 0, plen;
    unsigned long long e = executions;
    int fd;

    if (saved || current_data == NULL)
	return;
    saved = 1;
    do {
	num[n++] = (char) ('0' + e % 10);
	e /= 10;
    } while (e > 0 && n < sizeof(num));
    plen = strlen(crash_dir);
    if (plen + 8 + n + 1 > sizeof(path))
	return;
    memcpy(path, crash_dir, plen);
    memcpy(path + plen, "/crash-", 7);
    plen += 7;
    while (n > 0)
	path[plen++] = num[--n];
    path[plen] = 0;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
	return;
    (void) !write(fd, current_data, current_len);
    close(fd);
    (void) !write(STDERR_FILENO, "driver: crashing input saved in ", 32);
    (void) !write(STDERR_FILENO, path, plen);
    (void) !write(STDERR_FILENO, "\n", 1);
}

/* on_signal - a crash without a sanitizer: save the input, die as before */
static void on_signal(int sig)
{
    save_crash();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* gcc and clang's sanitizers call this back before they exit */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* run_one - the target on an exact-size heap copy of data */
static void run_one(const uint8_t *data, size_t len)
{
    uint8_t *copy = mem_alloc(len ? len : 1);

    if (len)
	memcpy(copy, data, len);
    current_data = copy;
    current_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    executions++;
    current_data = NULL;
    mem_free(&copy);
}

/* run_file - feed one file to the target, keep it for mutation; -1 if it
 * cannot be read */
static int run_file(const char *path)
{
    struct str *buf = str_new(DRIVER_FILE_MAX);
    char chunk[4096];
    size_t n;
    FILE *fp;

    if ((fp = fopen(path, "rb")) == NULL) {
	perror(path);
	str_free(&buf);
	return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
	if (!str_try_append(buf, chunk, n))
	    break;
    fclose(fp);
    run_one((const uint8_t *) str_cstr(buf), str_len(buf));
    if (corpus_count < DRIVER_CORPUS_MAX) {
	struct input *in = &corpus[corpus_count++];

	in->len = str_len(buf);
	in->data = mem_alloc(in->len ? in->len : 1);
	memcpy(in->data, str_cstr(buf), in->len);
    }
    str_free(&buf);
    return 0;
}

/* run_path - a file, or every regular file in a directory */
static int run_path(const char *path, int *count)
{
    struct stat st;
    struct dirent *de;
    DIR *dir;
    char sub[4096];
    int rc = 0;

    if (stat(path, &st) < 0) {
	perror(path);
	return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
	(*count)++;
	return run_file(path);
    }
    if ((dir = opendir(path)) == NULL) {
	perror(path);
	return -1;
    }
    while ((de = readdir(dir)) != NULL) {
	if (de->d_name[0] == '.')
	    continue;
	if (!fmt_try_buf(sub, sizeof(sub), "%s/%s", path, de->d_name))
	    continue;
	if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
	    (*count)++;
	    if (run_file(sub) < 0)
		rc = -1;
	}
    }
    closedir(dir);
    return rc;
}

/* ---------------------------------------------------------------- */
/* The blind mutation loop.                                         */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* rng - xorshift64* */
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* below - a random number in [0, n), n > 0 */
static size_t below(size_t n)
{
    return (size_t) (rng() % n);
}

/* Bytes that the parsers under test give a meaning to. */
static const char interesting[] = "\0\n\r.:,0129$({})?=\\\"<>@[] \t\xff\x80\xc3";

/* mutate - apply one random edit to buf (len bytes, room for max) */
static size_t mutate(uint8_t *buf, size_t len, size_t max)
{
    const struct input *other = &corpus[below(corpus_count)];
    size_t pos, n;

    switch (below(len ? 8 : 3)) {
    case 0:					/* insert a byte */
    case 1:					/* insert an interesting byte */
	if (len >= max)
	    return len;
	pos = below(len + 1);
	memmove(buf + pos + 1, buf + pos, len - pos);
	buf[pos] = below(2) ? (uint8_t) rng() : (uint8_t) interesting[below(sizeof(interesting) - 1)];
	return len + 1;
    case 2:					/* insert a piece of another input */
	if (other->len == 0 || len >= max)
	    return len;
	pos = below(other->len);
	n = 1 + below(other->len - pos);
	if (n > max - len)
	    n = max - len;
	{
	    size_t at = below(len + 1);

	    memmove(buf + at + n, buf + at, len - at);
	    memcpy(buf + at, other->data + pos, n);
	}
	return len + n;
    case 3:					/* flip a bit */
	buf[below(len)] ^= (uint8_t) (1u << below(8));
	return len;
    case 4:					/* set an interesting byte */
	buf[below(len)] = (uint8_t) interesting[below(sizeof(interesting) - 1)];
	return len;
    case 5:					/* delete a range */
	pos = below(len);
	n = 1 + below(len - pos < 16 ? len - pos : 16);
	memmove(buf + pos, buf + pos + n, len - pos - n);
	return len - n;
    case 6:					/* duplicate a range */
	pos = below(len);
	n = 1 + below(len - pos < 64 ? len - pos : 64);
	if (n > max - len)
	    return len;
	memmove(buf + pos + n, buf + pos, len - pos);
	return len + n;
    default:					/* a random byte */
	buf[below(len)] = (uint8_t) rng();
	return len;
    }
}

/* now_sec - monotonic seconds */
static double now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* fuzz_loop - mutate and run until the time or the run count is used */
static void fuzz_loop(long seconds, long long runs, size_t max_len)
{
    uint8_t *buf = mem_alloc(max_len);
    double start = now_sec(), deadline = start + (double) seconds;
    unsigned long long before = executions;

    if (corpus_count == 0) {
	corpus[0].data = mem_alloc(1);
	corpus[0].len = 0;
	corpus_count = 1;
    }
    for (long long i = 0; runs < 0 || i < runs; i++) {
	const struct input *in = &corpus[below(corpus_count)];
	size_t len = in->len < max_len ? in->len : max_len;
	int edits = 1 + (int) below(4);

	if (seconds > 0 && (i & 63) == 0 && now_sec() >= deadline)
	    break;
	memcpy(buf, in->data, len);
	while (edits-- > 0)
	    len = mutate(buf, len, max_len);
	run_one(buf, len);
    }
    printf("executions: %llu in %.0f s (%llu mutated)\n", executions, now_sec() - start,
	   executions - before);
    mem_free(&buf);
}

int main(int argc, char **argv)
{
    int i, ch, count = 0, rc = 0;
    long seconds = 0;
    long long runs = 0;
    size_t max_len = 4096;
    struct sigaction sa;

    while ((ch = getopt(argc, argv, "t:r:m:s:o:")) != -1) {
	switch (ch) {
	case 't':
	    seconds = atol(optarg);
	    break;
	case 'r':
	    runs = atoll(optarg);
	    break;
	case 'm':
	    max_len = (size_t) atol(optarg);
	    if (max_len < 1 || max_len > DRIVER_FILE_MAX)
		max_len = 4096;
	    break;
	case 's':
	    rng_state = (uint64_t) strtoull(optarg, NULL, 0) | 1;
	    break;
	case 'o':
	    if (!str_try_copy_out(crash_dir, sizeof(crash_dir), optarg)) {
		fprintf(stderr, "%s: crash directory name too long\n", argv[0]);
		return 2;
	    }
	    break;
	default:
	    goto usage;
	}
    }
    if (optind >= argc) {
usage:
	fprintf(stderr, "usage: %s [-t seconds] [-r runs] [-m max_len] [-s seed] "
		"[-o crashdir] file-or-directory...\n", argv[0]);
	return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);		/* a property check failed */
    if (__sanitizer_set_death_callback) {
	/* the sanitizer reports SEGV and friends with a stack, then calls us */
	__sanitizer_set_death_callback(save_crash);
    } else {
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
    }
    for (i = optind; i < argc; i++)
	if (run_path(argv[i], &count) < 0)
	    rc = 1;
    printf("%s: ran %d inputs\n", argv[0], count);
    if (seconds > 0 || runs > 0) {
	if (seconds > 0 && runs == 0)
	    runs = -1;
	if (rng_state == 0x9e3779b97f4a7c15ULL)
	    rng_state ^= (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32);
	fuzz_loop(seconds, runs, max_len);
    }
    return rc;
}
