// CPU memory: 64-byte aligned blocks. Large blocks (64 KiB and up) are kept on free lists
// by exact rounded size when released and handed out again, so a loop that allocates the
// same sizes every step (every frozen function call, every eager training step) stops
// paying for mmap, page faults and zeroing after its first step. The cache holds at most
// THETA_CPU_CACHE_MB (default 1024) MiB; beyond that blocks go back to the system.
#pragma once
#include <cstddef>

namespace th::detail::cpu {

/// A 64-byte aligned block of at least `bytes`; th::Error when memory is exhausted.
void* cached_alloc(std::size_t bytes);
/// Releases a block from cached_alloc (of the same `bytes`).
void cached_free(void* p, std::size_t bytes);

}  // namespace th::detail::cpu
