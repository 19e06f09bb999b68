// Assigns arena offsets to activation buffers so that buffers whose lifetimes do not overlap share
// memory. Lifetimes are [first, last] in step indices (inclusive): a buffer is written at `first`
// and read for the last time at `last`.
#pragma once

#include <cstddef>
#include <vector>

namespace engine {

struct BufferRequest {
  size_t bytes = 0;
  int first = 0;
  int last = 0;
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per request
  size_t arena_bytes = 0;       // planned peak
  size_t sum_bytes = 0;         // what it would take without reuse
};

constexpr size_t kBufferAlignment = 64;

// Greedy by size (largest first), each buffer at the lowest aligned offset that does not collide
// with an already placed buffer whose lifetime overlaps. Peak is within a small factor of the
// largest live set and exactly it for chains.
MemoryPlan plan_memory(const std::vector<BufferRequest>& requests);

}  // namespace engine
