/* test-server_frame.c - unit tests for server_frame.c: where a MULTI
 * client's request ends under each framing of the skeleton. */

#include <string.h>

/* base */
#include "unit.h"

/* mail */
#include "server.h"
#include "server_internal.h"

struct frame_case {
    int framing;
    const char *buf;
    size_t len;				/* 0: strlen(buf) */
    size_t want;
};

static const struct frame_case cases[] = {
    /* lines */
    {SERVER_FRAME_LINE, "", 0, 0},
    {SERVER_FRAME_LINE, "echo hal", 0, 0},
    {SERVER_FRAME_LINE, "echo half\n", 0, 10},
    {SERVER_FRAME_LINE, "a\nb\n", 0, 2},
    {SERVER_FRAME_LINE, "\n", 0, 1},
    {SERVER_FRAME_LINE, "a\0b\nc", 5, 4},
    {SERVER_FRAME_LINE, "a\r", 0, 0},
    /* IPC messages */
    {SERVER_FRAME_IPC, "", 0, 0},
    {SERVER_FRAME_IPC, "0:,", 0, 3},
    {SERVER_FRAME_IPC, "4:user,5:alice,0:,", 0, 18},
    {SERVER_FRAME_IPC, "4:user,5:alice,0:,0:,", 0, 18},
    {SERVER_FRAME_IPC, "4:user,5:alice,0:", 0, 0},
    {SERVER_FRAME_IPC, "4:user,5:ali", 0, 0},
    {SERVER_FRAME_IPC, "4", 0, 0},
    {SERVER_FRAME_IPC, "4:USER,1:x,0:,", 0, 14},	/* broken: all of it */
    {SERVER_FRAME_IPC, "x", 0, 1},			/* broken: all of it */
    /* none: whatever is there */
    {SERVER_FRAME_NONE, "abc", 0, 3},
    {SERVER_FRAME_NONE, "", 0, 0},
};

int main(void)
{
    unit_begin("srv_frame_length per framing");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
	const struct frame_case *c = &cases[i];
	size_t len = c->len ? c->len : strlen(c->buf);

	unit_assert_idx(srv_frame_length(c->framing, c->buf, len) == c->want, i);
    }
    unit_end();

    unit_begin("a line request split at every byte is whole only at its end");
    {
	const char *req = "echo one two\n";

	for (size_t n = 0; n < strlen(req); n++)
	    unit_assert_idx(srv_frame_length(SERVER_FRAME_LINE, req, n) == 0, n);
	unit_assert_inteq(srv_frame_length(SERVER_FRAME_LINE, req, strlen(req)), strlen(req));
    }
    unit_end();

    unit_begin("an IPC request split at every byte is whole only at its end");
    {
	const char *req = "4:user,5:alice,4:data,3:a\nb,0:,";

	for (size_t n = 0; n < strlen(req); n++)
	    unit_assert_idx(srv_frame_length(SERVER_FRAME_IPC, req, n) == 0, n);
	unit_assert_inteq(srv_frame_length(SERVER_FRAME_IPC, req, strlen(req)), strlen(req));
    }
    unit_end();
    return unit_done();
}
