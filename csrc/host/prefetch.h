// Streaming loops that read each value once ask for their next data ahead: the
// hardware's own prefetch left them waiting on memory about as long as they computed.
#pragma once

#include <cstdint>

namespace kbald::host {

// `bytes` bytes from `start` asked for into L2, a 64-byte line at a time. Prefetches
// never fault, so a range past the end of an array needs no guard.
[[gnu::always_inline]] inline void prefetch_into_l2(const void* start, int64_t bytes) {
  const char* first = static_cast<const char*>(start);
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(first + b, 0, 2);
}

}  // namespace kbald::host
