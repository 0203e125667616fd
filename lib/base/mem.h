/* mem.h - allocation that never returns NULL.
 *
 * Every allocator here either succeeds or stops the process with
 * msg_fatal("out of memory"), so callers never test for NULL. Size
 * arithmetic is overflow-checked (mem_alloc_array). mem_free takes a
 * pointer to the pointer and clears it. */
#ifndef POSTHORN_MEM_H
#define POSTHORN_MEM_H

#include <stddef.h>

void *mem_alloc(size_t size);
void *mem_zalloc(size_t size);
void *mem_alloc_array(size_t count, size_t size);
void *mem_realloc(void *ptr, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void *mem_memdup(const void *p, size_t n);
/* mem_free - free *pp and set it to NULL (NULL is fine) */
void mem_free_ptr(void **pp);
#define mem_free(pp) mem_free_ptr((void **)(pp))

/* mem_size_add - a + b, or msg_panic on overflow */
size_t mem_size_add(size_t a, size_t b);
/* mem_size_mul - a * b, or msg_panic on overflow */
size_t mem_size_mul(size_t a, size_t b);

#endif
