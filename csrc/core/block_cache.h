/* A bounded cache of freed large memory blocks, handed back to the next request of (nearly)
 * the same size. A training loop allocates the same few tensor sizes every step; returning
 * those blocks to malloc lets it trim the heap, and the next step pays a page fault (and a
 * kernel page clear) for every 4 kB again. The cache keeps such blocks for reuse instead.
 *
 * The cache does not allocate or free: the caller hands blocks in (put), takes them out
 * (take, evict) and frees what the cache declines. It is a plain struct living in memory the
 * caller owns. Not thread-safe (one per Lua state, used by that state's allocator only). */
#ifndef VELUA_BLOCK_CACHE_H
#define VELUA_BLOCK_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VL_BLOCK_CACHE_SLOTS 64

typedef struct {
  void *p;
  size_t size;
  uint64_t epoch;  /* value of the cache's epoch counter when the block came in */
} vl_block;

typedef struct {
  vl_block slot[VL_BLOCK_CACHE_SLOTS];
  int n;             /* slots in use: slot[0 .. n) */
  size_t bytes;      /* sum of their sizes */
  size_t cap;        /* bytes never exceeds cap */
  size_t min_size;   /* smaller blocks are not cached */
  uint64_t epoch;    /* advanced by vl_block_cache_age */
  uint64_t hits, misses;
} vl_block_cache;

void vl_block_cache_init(vl_block_cache *c, size_t min_size, size_t cap);

/* A cached block of at least `size` bytes and at most size + size/8 (the smallest such, the
 * most recently cached among equals: likeliest to be in the CPU caches still), removed
 * from the cache; NULL when none fits or size < min_size. The block's real size is written to
 * *got (callers that track sizes must treat it as `size` bytes: the slack is simply unused). */
void *vl_block_cache_take(vl_block_cache *c, size_t size, size_t *got);

/* Offers a free block of `size` bytes. Returns true when the cache keeps it, false when the
 * caller must free it (too small, or no room within cap even after dropping nothing). */
bool vl_block_cache_put(vl_block_cache *c, void *p, size_t size);

/* Removes one block that entered before epoch `before` (any block when before is UINT64_MAX)
 * and returns it (size in *size), or NULL when there is none. The caller frees it. */
void *vl_block_cache_evict(vl_block_cache *c, uint64_t before, size_t *size);

/* Advances the epoch counter (the caller does so once per garbage-collection cycle); returns
 * the epoch before the increment. */
uint64_t vl_block_cache_age(vl_block_cache *c);

#endif
