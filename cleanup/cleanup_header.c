/* cleanup_header.c - message header fields: recognising a field name,
 * knowing the fields cleanup cares about, unfolding a value. */

/* System. */
#include <string.h>
#include <strings.h>

/* Base. */
#include "str.h"

/* Cleanup. */
#include "cleanup.h"

/* cleanup_header_name_len - length of the field name, or 0 */
size_t cleanup_header_name_len(const char *line, size_t len)
{
    size_t i, name_len;

    for (i = 0; i < len; i++) {
	unsigned char c = (unsigned char) line[i];

	if (c == ':' || c == ' ' || c == '\t')
	    break;
	if (c < 33 || c > 126)
	    return 0;
    }
    name_len = i;
    if (name_len == 0)
	return 0;
    /* obsolete syntax (RFC 5322 4.5.8): white space before the colon */
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
	i++;
    return i < len && line[i] == ':' ? name_len : 0;
}

static const struct {
    const char *name;
    enum cleanup_hdr type;
} cleanup_header_names[] = {
    {"received", CLEANUP_HDR_RECEIVED},
    {"message-id", CLEANUP_HDR_MESSAGE_ID},
    {"date", CLEANUP_HDR_DATE},
    {"from", CLEANUP_HDR_FROM},
    {"sender", CLEANUP_HDR_SENDER},
    {"to", CLEANUP_HDR_TO},
    {"cc", CLEANUP_HDR_CC},
    {"bcc", CLEANUP_HDR_BCC},
    {"resent-from", CLEANUP_HDR_RESENT_FROM},
    {"resent-to", CLEANUP_HDR_RESENT_TO},
    {"resent-cc", CLEANUP_HDR_RESENT_CC},
    {"resent-bcc", CLEANUP_HDR_RESENT_BCC},
    {"resent-message-id", CLEANUP_HDR_RESENT_MESSAGE_ID},
    {"resent-date", CLEANUP_HDR_RESENT_DATE},
};

/* cleanup_header_type - the type of a field name, any case */
enum cleanup_hdr cleanup_header_type(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(cleanup_header_names) / sizeof(cleanup_header_names[0]); i++)
	if (strlen(cleanup_header_names[i].name) == len
	    && strncasecmp(cleanup_header_names[i].name, name, len) == 0)
	    return cleanup_header_names[i].type;
    return CLEANUP_HDR_OTHER;
}

/* cleanup_header_value - unfolded, trimmed value after the colon */
bool cleanup_header_value(const char *header, size_t len, struct str *out)
{
    const char *colon = memchr(header, ':', len);
    const char *cp, *end = header + len;

    str_reset(out);
    if (colon == NULL)
	return true;
    for (cp = colon + 1; cp < end; cp++) {
	if (*cp == '\n')
	    continue;			/* unfold: the break goes, the WSP stays */
	if (str_len(out) == 0 && (*cp == ' ' || *cp == '\t'))
	    continue;
	if (!str_try_appendc(out, *cp))
	    return false;
    }
    while (str_len(out) > 0 && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
	(void) str_truncate(out, out->len - 1);
    return true;
}
