/* bounce_original.c - read the original message of a notice from its
 * queue file: the envelope attributes bounce cares about (SMTPUTF8, the
 * notice marker), the primary header block (bounded), and the body as
 * long as the whole content stays within bounce_size_limit. The file is
 * read with qf_scan, so a damaged file is refused, never quoted. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* base */
#include "mem.h"
#include "str.h"
#include "stream.h"

/* mail */
#include "mail_proto.h"
#include "queue_file.h"

#include "bounce.h"

static char bounce_orig_error[512];

/* bounce_orig_init - an empty original */
void bounce_orig_init(struct bounce_orig *orig)
{
    memset(orig, 0, sizeof(*orig));
    orig->body_complete = true;
    orig->headers_complete = true;
}

/* lines_free - release an array of lines */
static void lines_free(struct bounce_line **lines, size_t *count, size_t *cap)
{
    for (size_t i = 0; i < *count; i++)
	mem_free(&(*lines)[i].data);
    mem_free(lines);
    *count = 0;
    *cap = 0;
}

/* lines_add - append a copy of one line */
static void lines_add(struct bounce_line **lines, size_t *count, size_t *cap,
		      const char *data, size_t len)
{
    if (*count == *cap) {
	*cap = *cap ? mem_size_mul(*cap, 2) : 64;
	*lines = mem_realloc(*lines, mem_size_mul(*cap, sizeof(**lines)));
    }
    (*lines)[*count].data = mem_memdup(data, len + 1);
    (*lines)[*count].data[len] = 0;
    (*lines)[*count].len = len;
    (*count)++;
}

/* is_notice_header - "X-Posthorn-Notice: postmaster" (any case, any
 * white space around the value) */
static bool is_notice_header(const char *data, size_t len)
{
    size_t nlen = strlen(BOUNCE_HEADER_NOTICE);
    size_t vlen = strlen(BOUNCE_NOTICE_POSTMASTER);
    size_t i;

    if (len <= nlen || strncasecmp(data, BOUNCE_HEADER_NOTICE, nlen) != 0 || data[nlen] != ':')
	return false;
    for (i = nlen + 1; i < len && (data[i] == ' ' || data[i] == '\t'); i++)
	 /* void */ ;
    if (len - i < vlen || strncasecmp(data + i, BOUNCE_NOTICE_POSTMASTER, vlen) != 0)
	return false;
    for (i += vlen; i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r'); i++)
	 /* void */ ;
    return i == len;
}

/* orig_line - account for one line of full_len bytes, of which len are
 * in data (len < full_len: the line was too long to keep) */
static void orig_line(struct bounce_orig *orig, const char *data, size_t len, size_t full_len,
		      size_t header_max, size_t body_max)
{
    orig->size = mem_size_add(orig->size, mem_size_add(full_len, 1));
    if (!orig->in_body && full_len == 0)
	orig->in_body = true;
    if (!orig->in_body && is_notice_header(data, len))
	orig->notice_header = true;
    if (!orig->in_body) {
	if (len == full_len && orig->headers_complete
	    && orig->header_bytes + full_len + 1 <= header_max) {
	    lines_add(&orig->headers, &orig->header_count, &orig->headers_cap, data, len);
	    orig->header_bytes += full_len + 1;
	} else {
	    orig->headers_complete = false;
	}
    }
    if (!orig->body_complete)
	return;
    if (orig->size > body_max || len != full_len || !orig->headers_complete) {
	orig->body_complete = false;
	lines_free(&orig->body, &orig->body_count, &orig->body_cap);
	return;
    }
    if (orig->in_body)
	lines_add(&orig->body, &orig->body_count, &orig->body_cap, data, len);
}

/* bounce_orig_add_line - append one content line */
void bounce_orig_add_line(struct bounce_orig *orig, const char *data, size_t len,
			  size_t header_max, size_t body_max)
{
    orig_line(orig, data, len, len, header_max, body_max);
}

struct orig_ctx {
    struct bounce_orig *orig;
    struct str *pending;	/* C pieces of the line at hand */
    size_t pending_len;		/* its full length */
    bool content;		/* between M and X */
    size_t header_max, body_max;
};

/* orig_visit - qf_scan visitor */
static int orig_visit(int type, const struct str *data, off_t offset, void *context)
{
    struct orig_ctx *ctx = context;
    size_t name_len;
    const char *value;

    (void) offset;
    switch (type) {
    case QF_REC_ATTR:
	if (ctx->content || !qf_attr_split(str_cstr(data), str_len(data), &name_len, &value))
	    break;
	if (name_len == strlen(QATTR_SMTPUTF8)
	    && strncmp(str_cstr(data), QATTR_SMTPUTF8, name_len) == 0)
	    ctx->orig->smtputf8 = strcmp(value, "") != 0 && strcmp(value, "no") != 0
		&& strcmp(value, "0") != 0;
	else if (name_len == strlen(BOUNCE_ATTR_NOTICE)
		 && strncmp(str_cstr(data), BOUNCE_ATTR_NOTICE, name_len) == 0)
	    if (!str_try_copy_out(ctx->orig->notice, sizeof(ctx->orig->notice), value))
		ctx->orig->notice[0] = 0;	/* not a notice kind: none */
	break;
    case QF_REC_MESSAGE:
	ctx->content = true;
	break;
    case QF_REC_XEND:
	ctx->content = false;
	break;
    case QF_REC_CONT:
    case QF_REC_LINE:
	if (str_len(ctx->pending) + str_len(data) <= ctx->pending->max)
	    str_append_or_panic(ctx->pending, str_cstr(data), str_len(data));
	ctx->pending_len += str_len(data);
	if (type == QF_REC_LINE) {
	    orig_line(ctx->orig, str_cstr(ctx->pending), str_len(ctx->pending),
		      ctx->pending_len, ctx->header_max, ctx->body_max);
	    str_reset(ctx->pending);
	    ctx->pending_len = 0;
	}
	break;
    default:
	break;
    }
    return 0;
}

/* bounce_orig_read - read the original from its queue file */
int bounce_orig_read(const char *path, size_t header_max, size_t body_max,
		     struct bounce_orig *orig, const char **error_r)
{
    struct orig_ctx ctx;
    struct qf_reader reader;
    struct stream *s;
    const char *error;
    struct stat st;
    int fd, fl;
    int ret;

    bounce_orig_init(orig);
    *error_r = bounce_orig_error;
    /* never block on a FIFO; read only a regular file */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
	fmt_buf_cut(bounce_orig_error, sizeof(bounce_orig_error), "open %s: %s", path,
		       strerror(errno));
	return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
	fmt_buf_cut(bounce_orig_error, sizeof(bounce_orig_error), "%s: not a regular file",
		       path);
	close(fd);
	return -1;
    }
    if ((fl = fcntl(fd, F_GETFL)) >= 0)
	(void) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    s = stream_open(fd);
    ctx.orig = orig;
    ctx.pending = str_new((header_max > body_max ? header_max : body_max) + 1);
    ctx.pending_len = 0;
    ctx.content = false;
    ctx.header_max = header_max;
    ctx.body_max = body_max;
    qf_reader_init(&reader, s, 0);
    ret = qf_scan(&reader, QF_RECORD_MAX, orig_visit, &ctx, &error);
    str_free(&ctx.pending);
    (void) stream_close(&s);
    if (ret != 0) {
	fmt_buf_cut(bounce_orig_error, sizeof(bounce_orig_error), "%s: %s", path, error);
	bounce_orig_fini(orig);
	return -1;
    }
    return 0;
}

/* bounce_orig_fini - release the lines */
void bounce_orig_fini(struct bounce_orig *orig)
{
    lines_free(&orig->headers, &orig->header_count, &orig->headers_cap);
    lines_free(&orig->body, &orig->body_count, &orig->body_cap);
}
