/* Early release of tensor memory (see memory.h). */
#include "memory.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

void vl_advise_huge_pages(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
  uintptr_t hi = ((uintptr_t)p + n) & ~(huge - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
  (void)p;
  (void)n;
#endif
}

size_t vl_release_pages(void *p, size_t n) {
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || n == 0) return 0;
  uintptr_t lo = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
  uintptr_t hi = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
  if (hi <= lo) return 0;
  if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) return 0;
  return hi - lo;
}
