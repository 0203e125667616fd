/* mem_stream.h - a struct stream that reads from a memory buffer, for fuzz
 * targets of stream readers (ipc_recv_list, qf_get, qf_scan).
 *
 * Each read hands out at most `chunk` bytes (>= 1), so a target can drive
 * the reader through short reads as a socket would; at the end of the
 * buffer reads return 0 (EOF). The stream has no descriptor: free it with
 * stream_free, never stream_close. */
#ifndef POSTHORN_MEM_STREAM_H
#define POSTHORN_MEM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

struct mem_stream {
    const uint8_t *data;
    size_t len;
    size_t pos;
    size_t chunk;
};

/* mem_stream_open - a stream over data[0..len) read chunk bytes at a time */
struct stream *mem_stream_open(struct mem_stream *m, const uint8_t *data, size_t len,
			       size_t chunk);

#endif
