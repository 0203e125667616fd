/* smtpd_text.c - the texts smtpd builds without a session: client text
 * made printable for replies and logs, joined strings without printf
 * (they run for every message; numbers: fmt_long in str.h), and the RFC
 * 3848 / RFC 6531 protocol name of a session ("ESMTPS", "UTF8SMTPA").
 * Nothing here writes to the client or the log. */

#include <stdarg.h>
#include <string.h>

/* base */
#include "msg.h"
#include "str.h"

/* mail */
#include "xtext.h"

/* smtpd */
#include "smtpd.h"

/* smtpd_printable - client text made safe for a reply or a log line:
 * control bytes and DEL become '?'; bytes of 0x80 and above too, except
 * (utf8: for log lines) a complete, valid UTF-8 sequence, which is kept.
 * Replies pass utf8 = false and so never echo a non-ASCII byte. */
void smtpd_printable(struct str *out, const char *text, size_t len, size_t max, bool utf8)
{
    size_t n = len < max ? len : max;
    size_t i = 0;

    /* copy runs of printable bytes in one append each */
    while (i < n) {
	size_t j = i, seq = 0;

	while (j < n && (unsigned char) text[j] >= 0x20 && (unsigned char) text[j] < 0x7f)
	    j++;
	if (j > i && !str_try_append(out, text + i, j - i)) {
	    /* out is nearly full: as many bytes as still fit */
	    while (i < j && str_try_appendc(out, text[i]))
		i++;
	    break;
	}
	if (j >= n)
	    break;
	if (utf8 && (unsigned char) text[j] >= 0x80)
	    seq = utf8_seqlen((const unsigned char *) text + j, n - j);
	if (seq > 1) {
	    if (!str_try_append(out, text + j, seq))
		break;
	    i = j + seq;
	    continue;
	}
	if (!str_try_appendc(out, '?'))
	    break;
	i = j + 1;
    }
    if (len > max && !str_try_appends(out, "...")) {
	/* out is full: the text is shown cut, which is the point */
    }
}

/* smtpd_join - the strings of the NULL-ended list, one after the other,
 * into buf; truncated as fmt_try_buf would (then false) */
bool smtpd_join(char *buf, size_t size, ...)
{
    va_list ap;
    const char *text;
    size_t len = 0;
    bool ok = true;

    if (size == 0)
	msg_panic("smtpd_join: zero-size buffer");
    va_start(ap, size);
    while ((text = va_arg(ap, const char *)) != NULL) {
	size_t n = strlen(text);

	if (n > size - 1 - len) {
	    n = size - 1 - len;
	    ok = false;
	}
	memcpy(buf + len, text, n);
	len += n;
    }
    va_end(ap);
    buf[len] = 0;
    return ok;
}

/* smtpd_protocol_name - RFC 3848 / RFC 6531 "with" keyword */
const char *smtpd_protocol_name(const struct smtpd_state *st)
{
    static const char *const names[2][4] = {
	{"ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA"},
	{"UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"},
    };
    int v = (st->tls ? 1 : 0) + (st->authenticated ? 2 : 0);

    if (!st->esmtp)
	return "SMTP";
    return names[st->in_mail && st->mail.smtputf8 ? 1 : 0][v];
}
