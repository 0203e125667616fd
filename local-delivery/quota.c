/* quota.c - the "quota=BYTES" option of a virtual_mailbox_maps value;
 * the Maildir++ quota itself (maildirsize, scans) is lib/store's
 * store_quota.c, shared with imapd. */

/* System library. */
#include <string.h>

/* Base library. */
#include "str.h"

/* Mail library. */
#include "users.h"

/* This program. */
#include "local.h"

/*
 * quota_parse_mailbox - a virtual_mailbox_maps value: the mailbox path,
 * then optional words; "quota=N" (bytes, or with a K, M or G suffix) is
 * the only one known. *quota is -1 without it.
 */
int quota_parse_mailbox(const char *value, struct str *path, long *quota, const char **error_r)
{
    const char *cp = value, *word;
    size_t len;

    *quota = -1;
    str_reset(path);
    while (*cp == ' ' || *cp == '\t')
	cp++;
    word = cp;
    while (*cp && *cp != ' ' && *cp != '\t')
	cp++;
    if (cp == word) {
	*error_r = "empty mailbox path";
	return -1;
    }
    if (!str_try_setn(path, word, (size_t) (cp - word))) {
	*error_r = "mailbox path too long";
	return -1;
    }
    for (;;) {
	while (*cp == ' ' || *cp == '\t')
	    cp++;
	if (*cp == 0)
	    break;
	word = cp;
	while (*cp && *cp != ' ' && *cp != '\t')
	    cp++;
	len = (size_t) (cp - word);
	if (len > 6 && strncmp(word, "quota=", 6) == 0) {
	    char text[32];		/* longer is no number of bytes */

	    if (len - 6 >= sizeof(text)) {
		*error_r = "bad quota= value";
		return -1;
	    }
	    memcpy(text, word + 6, len - 6);
	    text[len - 6] = 0;
	    if (!users_parse_quota(text, quota)) {	/* the users file's rule */
		*error_r = "bad quota= value";
		return -1;
	    }
	} else {
	    *error_r = "unknown option in mailbox entry (expected quota=BYTES)";
	    return -1;
	}
    }
    return 0;
}
