/* Bounded cache of freed large blocks (see block_cache.h). */
#include "block_cache.h"

#include <string.h>

void vl_block_cache_init(vl_block_cache *c, size_t min_size, size_t cap) {
  c->n = 0;
  c->bytes = 0;
  c->cap = cap;
  c->min_size = min_size;
  c->epoch = 0;
  c->hits = c->misses = 0;
}

/* Slots stay in the order the blocks came in (oldest first). */
static void remove_slot(vl_block_cache *c, int i) {
  c->bytes -= c->slot[i].size;
  memmove(&c->slot[i], &c->slot[i + 1], sizeof c->slot[0] * (size_t)(c->n - i - 1));
  c->n--;
}

void *vl_block_cache_take(vl_block_cache *c, size_t size, size_t *got) {
  if (size < c->min_size) return NULL;
  size_t limit = size + size / 8;
  /* newest first: the block freed last is the likeliest to still be in the CPU caches */
  int best = -1;
  for (int i = c->n - 1; i >= 0; i--) {
    size_t s = c->slot[i].size;
    if (s >= size && s <= limit && (best < 0 || s < c->slot[best].size)) {
      best = i;
      if (s == size) break;
    }
  }
  if (best < 0) {
    c->misses++;
    return NULL;
  }
  void *p = c->slot[best].p;
  *got = c->slot[best].size;
  remove_slot(c, best);
  c->hits++;
  return p;
}

bool vl_block_cache_put(vl_block_cache *c, void *p, size_t size) {
  if (!p || size < c->min_size || size > c->cap - c->bytes || c->bytes > c->cap) return false;
  if (c->n == VL_BLOCK_CACHE_SLOTS) return false;
  c->slot[c->n].p = p;
  c->slot[c->n].size = size;
  c->slot[c->n].epoch = c->epoch;
  c->n++;
  c->bytes += size;
  return true;
}

void *vl_block_cache_evict(vl_block_cache *c, uint64_t before, size_t *size) {
  for (int i = 0; i < c->n; i++) {
    if (c->slot[i].epoch < before || before == UINT64_MAX) {
      void *p = c->slot[i].p;
      *size = c->slot[i].size;
      remove_slot(c, i);
      return p;
    }
  }
  return NULL;
}

uint64_t vl_block_cache_age(vl_block_cache *c) { return c->epoch++; }
