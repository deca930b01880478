/* Returning memory to the operating system early (used by free() on a tensor whose storage
 * the garbage collector will only reclaim later). */
#ifndef VELUA_MEMORY_H
#define VELUA_MEMORY_H

#include <stddef.h>

/* Gives the whole pages inside [p, p + n) back to the OS; their contents become undefined.
 * Returns the number of bytes released (0 where the platform cannot). */
size_t vl_release_pages(void *p, size_t n);

/* Asks the OS to back the whole 2 MB pages inside [p, p + n) with huge pages when first
 * touched (fewer page faults for big fresh tensors); a hint, silently ignored where
 * unsupported. */
void vl_advise_huge_pages(void *p, size_t n);

#endif
