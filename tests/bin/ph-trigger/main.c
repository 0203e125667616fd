/* ph-trigger - a TRIGGER test daemon on the server skeleton.
 *
 * Logs "trigger: N bytes" (and the printable bytes) for every wake-up
 * request it reads from its fifo or unix socket. */

#include <ctype.h>
#include <stddef.h>

/* base */
#include "msg.h"
#include "str.h"

/* mail */
#include "server.h"

/* trigger - log one request */
static void trigger(const char *buf, size_t len)
{
    char text[65];
    size_t i;

    for (i = 0; i < len && i < sizeof(text) - 1; i++)
	text[i] = isprint((unsigned char) buf[i]) ? buf[i] : '?';
    text[i] = 0;
    msg_info("trigger: %zu bytes \"%s\"", len, text);
}

int main(int argc, char **argv)
{
    static const struct server_spec spec = {
	.kind = SERVER_TRIGGER,
	.name = "ph-trigger",
	.trigger = trigger,
    };

    return server_main(argc, argv, &spec);
}
