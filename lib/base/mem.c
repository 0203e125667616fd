/* mem.c - allocation wrappers that succeed or stop the process. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "msg.h"

static void *mem_check(void *p, size_t size)
{
    if (p == NULL && size != 0)
	msg_fatal("out of memory (%zu bytes)", size);
    return p;
}

size_t mem_size_add(size_t a, size_t b)
{
    if (a > SIZE_MAX - b)
	msg_panic("size overflow: %zu + %zu", a, b);
    return a + b;
}

size_t mem_size_mul(size_t a, size_t b)
{
    if (b != 0 && a > SIZE_MAX / b)
	msg_panic("size overflow: %zu * %zu", a, b);
    return a * b;
}

void *mem_alloc(size_t size)
{
    return mem_check(malloc(size ? size : 1), size ? size : 1);
}

void *mem_zalloc(size_t size)
{
    return mem_check(calloc(1, size ? size : 1), size ? size : 1);
}

void *mem_alloc_array(size_t count, size_t size)
{
    return mem_alloc(mem_size_mul(count, size));
}

void *mem_realloc(void *ptr, size_t size)
{
    return mem_check(realloc(ptr, size ? size : 1), size ? size : 1);
}

char *mem_strdup(const char *s)
{
    return mem_memdup(s, mem_size_add(strlen(s), 1));
}

char *mem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = mem_alloc(mem_size_add(len, 1));

    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

void *mem_memdup(const void *src, size_t n)
{
    void *p = mem_alloc(n);

    if (n)
	memcpy(p, src, n);
    return p;
}

void mem_free_ptr(void **pp)
{
    if (pp && *pp) {
	free(*pp);
	*pp = NULL;
    }
}
