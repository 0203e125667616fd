/* store_keyword.c - IMAP keyword names for the Maildir keyword letters
 * 'a'..'z' of one mailbox: the "posthorn-keywords" file (a magic line,
 * then "LETTER NAME" per line), read when needed, extended under the
 * mailbox lock and replaced atomically. A letter keeps its name for
 * good, so a name read once stays right. */

/* System library. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Base library. */
#include "errtext.h"
#include "mem.h"
#include "str.h"

/* This library. */
#include "store.h"
#include "store_int.h"

#define SK_FILE		"posthorn-keywords"
#define SK_TMP		"posthorn-keywords.tmp"
#define SK_MAGIC	"posthorn-keywords 1"
#define SK_NAME_MAX	100
#define SK_FILE_MAX	8192

/* sk_valid - a keyword name: IMAP atom characters, no '\' first */
static bool sk_valid(const char *name)
{
    size_t i, len = strlen(name);

    if (len == 0 || len > SK_NAME_MAX || name[0] == '\\')
	return false;
    for (i = 0; i < len; i++) {
	unsigned char c = (unsigned char) name[i];

	if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
	    return false;
    }
    return true;
}

/* store_keywords_free - forget the names */
void store_keywords_free(struct store_mailbox *mb)
{
    int i;

    for (i = 0; i < STORE_KEYWORDS_MAX; i++)
	mem_free(&mb->keywords[i]);
    mb->keywords_loaded = false;
}

/* sk_load - (re)read the file if it changed since it was read */
static void sk_load(struct store_mailbox *mb)
{
    struct store_dirstamp stamp;
    char buf[SK_FILE_MAX + 1], *cp, *nl;
    ssize_t n;
    int fd;

    fd = openat(mb->dir_fd, SK_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
	mb->keywords_loaded = true;
	return;
    }
    if (mb->keywords_loaded && store_dirstamp_get(fd, &stamp, false)
	&& memcmp(&stamp, &mb->keywords_stamp, sizeof(stamp)) == 0) {
	(void) close(fd);
	return;				/* (the same file as last time) */
    }
    (void) store_dirstamp_get(fd, &mb->keywords_stamp, false);
    n = read(fd, buf, SK_FILE_MAX);
    (void) close(fd);
    mb->keywords_loaded = true;
    if (n <= 0)
	return;
    buf[n] = 0;
    if (strncmp(buf, SK_MAGIC "\n", strlen(SK_MAGIC) + 1) != 0)
	return;
    for (cp = buf + strlen(SK_MAGIC) + 1; (nl = strchr(cp, '\n')) != NULL; cp = nl + 1) {
	*nl = 0;
	if (cp[0] >= 'a' && cp[0] <= 'z' && cp[1] == ' ' && sk_valid(cp + 2)
	    && mb->keywords[cp[0] - 'a'] == NULL)
	    mb->keywords[cp[0] - 'a'] = mem_strdup(cp + 2);
    }
}

/* sk_find - the index of name among the loaded ones, or -1 */
static int sk_find(const struct store_mailbox *mb, const char *name)
{
    int i;

    for (i = 0; i < STORE_KEYWORDS_MAX; i++)
	if (mb->keywords[i] && strcasecmp(mb->keywords[i], name) == 0)
	    return i;
    return -1;
}

/* sk_write - the file with every known name */
static int sk_write(struct store_mailbox *mb, const char **error_r)
{
    struct str *buf = str_new(SK_FILE_MAX);
    int i, ret;

    str_appends_or_panic(buf, SK_MAGIC "\n");
    for (i = 0; i < STORE_KEYWORDS_MAX; i++)
	if (mb->keywords[i])
	    str_appendf_or_panic(buf, "%c %s\n", 'a' + i, mb->keywords[i]);
    ret = store_write_atomic(mb->dir_fd, SK_TMP, SK_FILE, str_cstr(buf), str_len(buf), error_r);
    if (ret == 0)
	store_watch_own(mb, SK_FILE);
    str_free(&buf);
    return ret;
}

/* store_keyword_index - the letter of name, made if asked */
int store_keyword_index(struct store_mailbox *mb, const char *name, bool create,
			const char **error_r)
{
    int i, e;

    if (!sk_valid(name)) {
	errno = EINVAL;
	return errtext_fail(&store_error, error_r, "invalid keyword \"%.100s\"", name);
    }
    sk_load(mb);
    if ((i = sk_find(mb, name)) >= 0)
	return i;
    if (!create) {
	errno = ENOENT;
	return errtext_fail(&store_error, error_r, "no keyword %s", name);
    }
    if (!mb->can_write) {
	errno = EROFS;
	return errtext_fail(&store_error, error_r, "%s: cannot write the mailbox", mb->path);
    }
    store_lock(mb);
    sk_load(mb);			/* (another session may have added it) */
    if ((i = sk_find(mb, name)) >= 0) {
	store_unlock(mb);
	return i;
    }
    for (i = 0; i < STORE_KEYWORDS_MAX && mb->keywords[i]; i++)
	continue;
    if (i == STORE_KEYWORDS_MAX) {
	store_unlock(mb);
	errno = ENOSPC;
	return errtext_fail(&store_error, error_r, "%s: no room for another keyword",
			    mb->path);
    }
    mb->keywords[i] = mem_strdup(name);
    if (sk_write(mb, error_r) < 0) {
	e = errno;
	mem_free(&mb->keywords[i]);
	store_unlock(mb);
	errno = e ? e : EIO;
	return -1;
    }
    mb->keywords_loaded = false;	/* (the stamp is the new file's) */
    sk_load(mb);
    store_unlock(mb);
    return i;
}

/* store_keyword_name - the name of letter n */
const char *store_keyword_name(struct store_mailbox *mb, unsigned n)
{
    if (n >= STORE_KEYWORDS_MAX)
	return NULL;
    /* a missing name is looked for again only after a sync: a session
     * that names a keyword sets it on a message, which the next sync
     * shows (not one open per letter and call) */
    if (!mb->keywords_loaded || (mb->keywords[n] == NULL && mb->keywords_recheck)) {
	sk_load(mb);
	mb->keywords_recheck = false;
    }
    return mb->keywords[n];
}
