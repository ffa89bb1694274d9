// What this process and its child processes (the python runtime's workers) hold, for a memory
// budget: the allocator's bytes in use plus the children's proportional set sizes.
#pragma once

#include <cstdint>

namespace forklift {

// Bytes this process's allocator has handed out and not had back (glibc's mallinfo2: arenas and
// mmapped chunks), plus its child processes' proportional set sizes (shared pages divided among
// their sharers). Unlike RSS, it falls when memory is freed, and it does not count freed memory
// the allocator keeps.
std::uint64_t allocated_bytes_with_children();

// Hands memory that freed allocations left in the allocator's arenas back to the system
// (glibc's malloc_trim): after a model is unloaded, so RSS really falls.
void release_free_memory();

}  // namespace forklift
