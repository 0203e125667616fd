/* main.c - placeholder for imapd's main (H-imapcore owns the real one,
 * on session_host): it exists only so that the Makefile treats imapd/
 * as a program directory and builds the message layer's unit tests.
 * A merge takes the real file over this one. */

#include <stdio.h>

int main(void)
{
    fputs("imapd: not built yet\n", stderr);
    return 1;
}
