// Happens-before edges that ThreadSanitizer cannot see for itself: a hand-off through a library
// that is not instrumented (gRPC's completion queues). No-ops in every other build.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define FORKLIFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FORKLIFT_TSAN 1
#endif
#endif

#ifdef FORKLIFT_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace forklift {

// Everything this thread did so far happens before what follows a later happens_after(tag) on
// any thread.
inline void happens_before([[maybe_unused]] void* tag) {
#ifdef FORKLIFT_TSAN
  __tsan_release(tag);
#endif
}

inline void happens_after([[maybe_unused]] void* tag) {
#ifdef FORKLIFT_TSAN
  __tsan_acquire(tag);
#endif
}

}  // namespace forklift
