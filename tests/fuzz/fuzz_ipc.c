/* fuzz_ipc.c - libFuzzer target for the IPC codec (lib/base/ipc.c):
 * ipc_decode_list on memory, and the stream readers ipc_recv_list,
 * ipc_recv (strict) and ipc_handshake_client over a stream that hands the
 * bytes out in short reads, as a socket does.
 *
 * Input: byte 0 picks the read size of the stream (1..64, or 4096 when
 * its top bit is set); the rest is the wire data. Properties (a failure
 * aborts):
 *  - the memory decoder and the stream reader agree: a message that
 *    decodes from memory is read from the stream with the same
 *    attributes, a syntax error is an error in both, and an incomplete
 *    message is an error for the stream reader (its input ends there);
 *  - a decoded message never uses more bytes than it was given, and
 *    re-encoding it gives bytes that decode to the same list, using all
 *    of them. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base */
#include "ipc.h"
#include "mem.h"
#include "str.h"
#include "stream.h"

/* fuzz */
#include "mem_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - abort when a property does not hold */
static void check(int cond)
{
    if (!cond)
	abort();
}

/* same_list - both lists hold the same attributes in the same order */
static int same_list(const struct ipc_list *a, const struct ipc_list *b)
{
    if (a->count != b->count)
	return 0;
    for (size_t i = 0; i < a->count; i++) {
	if (strcmp(a->attrs[i].name, b->attrs[i].name) != 0 || a->attrs[i].len != b->attrs[i].len
	    || memcmp(a->attrs[i].value, b->attrs[i].value, a->attrs[i].len) != 0)
	    return 0;
    }
    return 1;
}

/* reencode - a decoded list encodes to bytes that decode to it again */
static void reencode(const struct ipc_list *list)
{
    struct str *out = str_new(IPC_MSG_MAX);
    struct ipc_list again;
    const char *err;
    long n;

    for (size_t i = 0; i < list->count; i++)
	ipc_encode_attr(out, list->attrs[i].name, list->attrs[i].value, list->attrs[i].len);
    ipc_encode_end(out);
    ipc_list_init(&again);
    n = ipc_decode_list(str_cstr(out), str_len(out), &again, &err);
    check(n == (long) str_len(out));
    check(same_list(list, &again));
    ipc_list_fini(&again);
    str_free(&out);
}

/* strict_reads - ipc_recv with a fixed expectation, then a handshake,
 * each on a fresh stream over the same bytes: no crash, no leak */
static void strict_reads(const uint8_t *wire, size_t len, size_t chunk)
{
    struct mem_stream m;
    struct stream *s;
    struct str *name = str_new(256), *blob = str_new(4096);
    long number = 0;
    const char *err;

    s = mem_stream_open(&m, wire, len, chunk);
    (void) ipc_recv(s, &err, IPC_RECV_STR("name", name), IPC_RECV_INT("size", &number),
		    IPC_OPT, IPC_RECV_DATA("data", blob), IPC_END);
    stream_free(&s);
    s = mem_stream_open(&m, wire, len, chunk);
    (void) ipc_handshake_client(s, "fuzz", 1, &err);
    stream_free(&s);
    str_free(&name);
    str_free(&blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ipc_list mem_list, stream_list;
    struct mem_stream m;
    struct stream *s;
    const uint8_t *wire;
    size_t len, chunk;
    const char *err;
    long used;
    int rc;

    if (size < 1)
	return 0;
    chunk = data[0] & 0x80 ? 4096 : 1 + (size_t) (data[0] & 0x3f);
    wire = data + 1;
    len = size - 1;

    ipc_list_init(&mem_list);
    ipc_list_init(&stream_list);
    used = ipc_decode_list((const char *) wire, len, &mem_list, &err);
    check(used >= -1 && used <= (long) len);
    if (used > 0)
	reencode(&mem_list);

    s = mem_stream_open(&m, wire, len, chunk);
    rc = ipc_recv_list(s, &stream_list, &err);
    if (used > 0) {
	check(rc == 0);
	check(same_list(&mem_list, &stream_list));
    } else {
	check(rc < 0);
    }
    stream_free(&s);
    ipc_list_fini(&mem_list);
    ipc_list_fini(&stream_list);

    strict_reads(wire, len, chunk);
    return 0;
}
