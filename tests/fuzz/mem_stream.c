/* mem_stream.c - a struct stream over a memory buffer for the fuzz targets
 * (see mem_stream.h). */

#include <string.h>

/* base */
#include "stream.h"

/* fuzz */
#include "mem_stream.h"

/* mem_read - the next chunk of the buffer; 0 at its end */
static ssize_t mem_read(void *ctx, void *buf, size_t len)
{
    struct mem_stream *m = ctx;
    size_t n = m->len - m->pos;

    if (n > len)
	n = len;
    if (n > m->chunk)
	n = m->chunk;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t) n;
}

/* mem_write - the readers under test never write */
static ssize_t mem_write(void *ctx, const void *buf, size_t len)
{
    (void) ctx;
    (void) buf;
    return (ssize_t) len;
}

/* mem_pending - always "more to read", so the stream never polls its
 * (absent) descriptor: the next read gives data or EOF */
static size_t mem_pending(void *ctx)
{
    (void) ctx;
    return 1;
}

static const struct stream_io mem_io = {mem_read, mem_write, mem_pending, NULL};

/* mem_stream_open - a stream over data[0..len) */
struct stream *mem_stream_open(struct mem_stream *m, const uint8_t *data, size_t len,
			       size_t chunk)
{
    struct stream *s = stream_open(-1);

    m->data = data;
    m->len = len;
    m->pos = 0;
    m->chunk = chunk ? chunk : 1;
    stream_set_io(s, &mem_io, m);
    return s;
}
