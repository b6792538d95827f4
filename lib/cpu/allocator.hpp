// CPU memory: 64-byte aligned blocks, kept on free lists by rounded size (64-byte classes
// below 64 KiB, at most 256 blocks each; 4 KiB classes above) when released and handed out
// again, so a loop that allocates the same sizes every step (every frozen function call,
// every eager training step) stops paying for aligned malloc, mmap, page faults and zeroing
// after its first step. The cache holds at most THETA_CPU_CACHE_MB (default 1024) MiB;
// beyond that blocks go back to the system.
#pragma once
#include <cstddef>

namespace th::detail::cpu {

/// A 64-byte aligned block of at least `bytes`; th::Error when memory is exhausted.
void* cached_alloc(std::size_t bytes);
/// Releases a block from cached_alloc (of the same `bytes`).
void cached_free(void* p, std::size_t bytes);

}  // namespace th::detail::cpu
