/* dsn_text.c - the text pieces of a delivery status notification:
 * folded header-style fields, RFC 3464 field values (address
 * types, status codes, diagnostic codes, remote MTAs) and plain-text
 * wrapping. Pure functions: everything comes in as arguments. (The
 * dates are lib/mail/mail_date.h's.) */

#include <ctype.h>
#include <string.h>

/* base */
#include "str.h"

/* mail */
#include "deliver_proto.h"
#include "xtext.h"

#include "bounce.h"

/* dsn_is_ascii - no byte >= 0x80 */
bool dsn_is_ascii(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
	if ((unsigned char) text[i] >= 0x80)
	    return false;
    return true;
}

/* dsn_clean - controls to spaces, non-ASCII kept (valid UTF-8) or "?" */
bool dsn_clean(struct str *out, const char *text, size_t len, bool allow_utf8)
{
    const unsigned char *s = (const unsigned char *) text;

    for (size_t i = 0; i < len;) {
	if (s[i] < 0x20 || s[i] == 0x7f) {
	    if (!str_try_appendc(out, ' '))
		return false;
	    i++;
	} else if (s[i] < 0x80) {
	    if (!str_try_appendc(out, (char) s[i]))
		return false;
	    i++;
	} else {
	    size_t n = allow_utf8 ? utf8_seqlen(s + i, len - i) : 0;

	    if (n > 1) {
		if (!str_try_append(out, s + i, n))
		    return false;
		i += n;
	    } else {
		if (!str_try_appendc(out, '?'))
		    return false;
		i++;
	    }
	}
    }
    return true;
}

/* dsn_fold - "name: value" folded at white space */
bool dsn_fold(struct str *out, const char *name, const char *value)
{
    struct str *line = str_new(STR_MAX_DEFAULT);
    const char *rest;
    size_t left;
    bool ok = true;

    /* The line with runs of white space collapsed: folding then never
     * makes a line of white space only. */
    ok = str_try_appends(line, name) && str_try_appendc(line, ':');
    for (const char *cp = value; ok && *cp;) {
	if (*cp == ' ' || *cp == '\t') {
	    while (*cp == ' ' || *cp == '\t')
		cp++;
	    if (*cp)
		ok = str_try_appendc(line, ' ');
	} else {
	    if (line->len == strlen(name) + 1)
		ok = str_try_appendc(line, ' ');
	    ok = ok && str_try_appendc(line, *cp++);
	}
    }
    rest = str_cstr(line);
    left = str_len(line);
    while (ok && left > DSN_LINE_WIDTH) {
	size_t cut = 0;

	/* the last space that keeps this line within the width; never the
	 * space right after "name:" or at the start of a continuation */
	for (size_t i = DSN_LINE_WIDTH; i > 1; i--) {
	    if (rest[i] == ' ' && (rest != str_cstr(line) || i > strlen(name) + 1)) {
		cut = i;
		break;
	    }
	}
	if (cut == 0) {
	    /* a long word: fold after it, if that is within the hard limit */
	    for (size_t i = DSN_LINE_WIDTH + 1; i < left && i <= DSN_LINE_HARD; i++) {
		if (rest[i] == ' ') {
		    cut = i;
		    break;
		}
	    }
	}
	if (cut == 0 && left <= DSN_LINE_HARD)
	    break;
	if (cut == 0) {
	    /* no white space within the hard limit: break the word */
	    ok = str_try_append(out, rest, DSN_LINE_HARD - 1) && str_try_appends(out, "\n ");
	    rest += DSN_LINE_HARD - 1;
	    left -= DSN_LINE_HARD - 1;
	    continue;
	}
	ok = str_try_append(out, rest, cut) && str_try_appendc(out, '\n');
	rest += cut;
	left -= cut;
    }
    ok = ok && str_try_append(out, rest, left) && str_try_appendc(out, '\n');
    str_free(&line);
    return ok;
}

/* dsn_wrap - word-wrap text; continuation lines indented */
bool dsn_wrap(struct str *out, const char *text, size_t width, size_t indent)
{
    size_t col = 0;
    bool line_empty = true;
    bool ok = true;
    const char *cp = text;

    while (ok && *cp) {
	const char *word;
	size_t len;

	while (*cp == ' ')
	    cp++;
	if (*cp == 0)
	    break;
	word = cp;
	while (*cp && *cp != ' ')
	    cp++;
	len = (size_t) (cp - word);
	if (!line_empty && col + 1 + len > width) {
	    ok = str_try_appendc(out, '\n');
	    for (size_t i = 0; ok && i < indent; i++)
		ok = str_try_appendc(out, ' ');
	    col = indent;
	    line_empty = true;
	}
	if (!line_empty) {
	    ok = ok && str_try_appendc(out, ' ');
	    col++;
	}
	ok = ok && str_try_append(out, word, len);
	col += len;
	line_empty = false;
    }
    return ok && str_try_appendc(out, '\n');
}

/* dsn_action_class - the status class an action needs */
static char dsn_action_class(const char *action)
{
    if (action && strcmp(action, "failed") == 0)
	return '5';
    if (action && strcmp(action, "delayed") == 0)
	return '4';
    return '2';
}

/* dsn_status_for - a valid status of the action's class */
const char *dsn_status_for(const char *status, const char *action)
{
    char class = dsn_action_class(action);

    if (deliver_dsn_valid(status) && status[0] == class)
	return status;
    return class == '5' ? "5.0.0" : class == '4' ? "4.0.0" : "2.0.0";
}

/* dsn_smtp_reply_at - true if text[i..] starts an SMTP reply "ddd " */
static bool dsn_smtp_reply_at(const char *text, size_t i)
{
    const char *p = text + i;

    return (p[0] >= '2' && p[0] <= '5') && isdigit((unsigned char) p[1])
	&& isdigit((unsigned char) p[2]) && (p[3] == ' ' || p[3] == '-' || p[3] == 0);
}

/* dsn_diagnostic - "smtp; ..." for a quoted remote reply, else x-posthorn */
bool dsn_diagnostic(struct str *out, const char *reason, bool allow_utf8)
{
    static const char said[] = " said: ";
    static const char in_reply[] = " (in reply to ";
    const char *start = NULL;
    const char *end;

    if (reason == NULL || *reason == 0)
	return str_try_appends(out, "x-posthorn; no reason given");
    if (dsn_smtp_reply_at(reason, 0)) {
	start = reason;
    } else {
	const char *cp = strstr(reason, said);

	if (cp && dsn_smtp_reply_at(cp + strlen(said), 0))
	    start = cp + strlen(said);
    }
    if (start == NULL)
	return str_try_appends(out, "x-posthorn; ") && dsn_clean(out, reason, strlen(reason), allow_utf8);
    end = strstr(start, in_reply);
    if (end == NULL)
	end = start + strlen(start);
    return str_try_appends(out, "smtp; ") && dsn_clean(out, start, (size_t) (end - start), allow_utf8);
}

/* dsn_remote_mta - "dns; host" for a network relay */
bool dsn_remote_mta(struct str *out, const char *relay)
{
    size_t len;

    if (relay == NULL || *relay == 0)
	return false;
    if (relay[0] == '[') {
	const char *close = strchr(relay, ']');

	if (close == NULL)
	    return false;
	len = (size_t) (close - relay) + 1;
    } else {
	len = strcspn(relay, "[:");
	if (len == 0 || (memchr(relay, '.', len) == NULL && relay[len] != '['))
	    return false;
    }
    return str_try_appends(out, "dns; ") && dsn_clean(out, relay, len, false);
}

/* dsn_address - "rfc822; addr" or "utf-8; addr" (RFC 6533) */
bool dsn_address(struct str *out, const char *addr, bool allow_utf8)
{
    size_t len = strlen(addr);

    if (dsn_is_ascii(addr, len))
	return str_try_appends(out, "rfc822; ") && dsn_clean(out, addr, len, false);
    if (allow_utf8 && utf8_valid(addr, len))
	return str_try_appends(out, "utf-8; ") && dsn_clean(out, addr, len, true);
    /* message/delivery-status is 7-bit: utf-8-addr-xtext */
    if (utf8_valid(addr, len)) {
	size_t mark = out->len;

	if (str_try_appends(out, "utf-8; ") && xtext_utf8_encode(out, addr, len))
	    return true;
	(void) str_truncate(out, mark);
    }
    return str_try_appends(out, "rfc822; ") && dsn_clean(out, addr, len, false);
}

/* dsn_orcpt - Original-Recipient from "type;address" */
bool dsn_orcpt(struct str *out, const char *orcpt, bool allow_utf8)
{
    const char *semi;
    size_t tlen;
    char type[65];

    if (orcpt == NULL || (semi = strchr(orcpt, ';')) == NULL)
	return false;
    while (*orcpt == ' ')
	orcpt++;
    tlen = (size_t) (semi - orcpt);
    while (tlen > 0 && orcpt[tlen - 1] == ' ')
	tlen--;
    if (tlen == 0 || tlen >= sizeof(type))
	return false;
    for (size_t i = 0; i < tlen; i++) {
	if (!isalnum((unsigned char) orcpt[i]) && orcpt[i] != '-')
	    return false;
	type[i] = (char) tolower((unsigned char) orcpt[i]);
    }
    type[tlen] = 0;
    semi++;
    while (*semi == ' ')
	semi++;
    if (*semi == 0)
	return false;
    if (strcmp(type, "rfc822") == 0 || strcmp(type, "utf-8") == 0)
	return dsn_address(out, semi, allow_utf8);
    return str_try_appends(out, type) && str_try_appends(out, "; ")
	&& dsn_clean(out, semi, strlen(semi), allow_utf8);
}
