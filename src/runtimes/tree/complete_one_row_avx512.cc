// One row through complete trees of depth at most 6 with AVX-512: every comparison of a tree at
// once, then a walk of the bits (complete_rows_simd.h says when it runs).
//
// A tree of depth 6 has 63 comparisons. Four 16-lane compares against the row held in registers
// (the row's value of each node's feature by a permute) make them, and their 64-bit mask then
// holds every step: with the nodes numbered from 1 (the root 1, node a's children 2a and 2a + 1),
// node a's way is bit a, and a step is a = 2a + bit. Sixteen trees' walks go side by side. This
// evaluates 63 nodes where the AVX2 kernel evaluates 6, but with no gather and no blend: on eta
// (400 trees of depth 6), one row without missing values took 2.07 µs against the AVX2 kernel's
// 2.75 µs, one with missing values 2.62 against 2.96 µs (bench/tree_benchmark.cc, one run).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>

#include "runtimes/tree/complete_rows_simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace forklift::tree {
namespace {

bool cpu_has_avx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    // FORKLIFT_NO_AVX512 (set, not empty) keeps it off: on some Intel CPUs 512-bit instructions
    // lower the clock of the core for a while, for every thread on it.
    const char* off = std::getenv("FORKLIFT_NO_AVX512");
    if (off != nullptr && *off != '\0') return false;
    return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0;
  }();
  return has;
}

std::atomic<bool> avx512_on{true};

#define FORKLIFT_AVX512 __attribute__((target("avx512f,avx512bw")))
// Helpers that take vectors are inlined, or every call passes them through memory.
#define FORKLIFT_AVX512_INLINE __attribute__((target("avx512f,avx512bw"), always_inline)) inline

// The row's value of each lane's feature (its low bits), from the row held in kRowVectors
// registers of sixteen features.
template <int kRowVectors>
FORKLIFT_AVX512_INLINE __m512 feature_values(const __m512* row, __m512i feature) {
  if constexpr (kRowVectors == 1) {
    // Reads the low 4 bits. (The unmasked form trips GCC 12's -Wmaybe-uninitialized.)
    return _mm512_maskz_permutexvar_ps(0xffff, feature, row[0]);
  } else if constexpr (kRowVectors == 2) {
    return _mm512_permutex2var_ps(row[0], feature, row[1]);  // the low 5 bits
  } else {
    static_assert(kRowVectors == 4);
    const __m512 low = _mm512_permutex2var_ps(row[0], feature, row[1]);
    const __m512 high = _mm512_permutex2var_ps(row[2], feature, row[3]);
    return _mm512_mask_blend_ps(_mm512_test_epi32_mask(feature, _mm512_set1_epi32(32)), low, high);
  }
}

// Bit i of the result: node i (from 0) of the tree at `thresholds`/`features` sends the row
// right. kMissing: the row has a NaN, so nodes whose missing values go left need their own rule.
// Node by node of sixteen: not (x < threshold), that is right, NaN included (x < t is the only
// way left when x is not missing); and, when kMissing, which of the row's values are missing.
template <int kRowVectors, bool kMissing>
FORKLIFT_AVX512_INLINE void compare16(const __m512* row, const float* thresholds,
                                      const std::int32_t* features, __mmask16& right,
                                      __mmask16& missing) {
  const __m512 x = feature_values<kRowVectors>(row, _mm512_loadu_si512(features));
  right = _mm512_cmp_ps_mask(x, _mm512_loadu_ps(thresholds), _CMP_NLT_UQ);
  if constexpr (kMissing) missing = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
}

FORKLIFT_AVX512_INLINE std::uint64_t joined(__mmask16 a, __mmask16 b, __mmask16 c, __mmask16 d) {
  return _cvtmask64_u64(_mm512_kunpackd(_mm512_kunpackw(d, c), _mm512_kunpackw(b, a)));
}

// Bit i + 1 of the result: node i (from 0) of tree `t` sends the row right. kMissing: the row
// has a NaN, which goes left where the tree's missing_left_bits say.
template <int kRowVectors, bool kMissing, std::size_t kVectors>
FORKLIFT_AVX512_INLINE std::uint64_t goes_right(const CompleteRowsJob& job, const __m512* row,
                                                std::size_t t) {
  const float* thresholds = job.thresholds + t * job.stride;
  const std::int32_t* features = job.features + t * job.stride;
  // Named masks, not arrays: GCC keeps an array of masks in memory.
  __mmask16 r0 = 0, r1 = 0, r2 = 0, r3 = 0, m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  compare16<kRowVectors, kMissing>(row, thresholds, features, r0, m0);
  if constexpr (kVectors >= 2) {
    compare16<kRowVectors, kMissing>(row, thresholds + 16, features + 16, r1, m1);
  }
  if constexpr (kVectors == 4) {
    compare16<kRowVectors, kMissing>(row, thresholds + 32, features + 32, r2, m2);
    compare16<kRowVectors, kMissing>(row, thresholds + 48, features + 48, r3, m3);
  }
  // The masks joined in mask registers: one move out instead of four, shifts and ors.
  std::uint64_t bits = 0, missing_bits = 0;
  if constexpr (kVectors == 1) {
    bits = _cvtmask16_u32(r0);
    missing_bits = _cvtmask16_u32(m0);
  } else if constexpr (kVectors == 2) {
    bits = _cvtmask32_u32(_mm512_kunpackw(r1, r0));
    missing_bits = _cvtmask32_u32(_mm512_kunpackw(m1, m0));
  } else {
    static_assert(kVectors == 4);
    bits = joined(r0, r1, r2, r3);
    if constexpr (kMissing) missing_bits = joined(m0, m1, m2, m3);
  }
  bits <<= 1;  // numbered from 1: node a's way is bit a, its children 2a and 2a + 1
  if constexpr (kMissing) bits &= ~((missing_bits << 1) & job.missing_left_bits[t]);
  return bits;
}

// Trees of kDepth levels, kBlock at a time: their comparisons, then their walks side by side
// (kBlock independent chains of steps, which overlap), then their leaves added in tree order.
// `sum` is the one group's sum, or null to add to the job's groups.
template <int kRowVectors, bool kMissing, int kDepth>
FORKLIFT_AVX512 void one_row_bits(const CompleteRowsJob& job, const __m512* row, double* sum) {
  constexpr std::size_t kLeaves = std::size_t{1} << kDepth;
  constexpr std::size_t kVectors = (kLeaves + 15) / 16;  // sixteen nodes a compare
  constexpr std::size_t kBlock = 16;
  // One group's sum in a register: through memory, each addition would wait for the last store.
  double total = sum != nullptr ? *sum : 0.0;
  // Lanes past a short last block walk whatever masks they hold; their leaves are never read.
  std::uint64_t right[kBlock] = {}, at[kBlock];
  for (std::size_t first = 0; first < job.trees; first += kBlock) {
    const std::size_t block = std::min(kBlock, job.trees - first);
    for (std::size_t i = 0; i < block; ++i) {
      right[i] = goes_right<kRowVectors, kMissing, kVectors>(job, row, first + i);
    }
    for (std::size_t i = 0; i < kBlock; ++i) at[i] = 1;
    for (int level = 0; level < kDepth; ++level) {
      for (std::size_t i = 0; i < kBlock; ++i) at[i] = 2 * at[i] + ((right[i] >> at[i]) & 1u);
    }
    // Tree after tree, as on every other path: the same sums to the bit.
    const float* leaves = job.leaves + first * kLeaves;
    if (sum != nullptr) {
      for (std::size_t i = 0; i < block; ++i) {
        total += static_cast<double>(leaves[i * kLeaves + (at[i] - kLeaves)]);
      }
    } else {
      for (std::size_t i = 0; i < block; ++i) {
        job.sums[static_cast<std::size_t>(job.groups[first + i])] +=
            static_cast<double>(leaves[i * kLeaves + (at[i] - kLeaves)]);
      }
    }
  }
  if (sum != nullptr) *sum = total;
}

template <int kRowVectors, bool kMissing>
FORKLIFT_AVX512 void one_row_bits(const CompleteRowsJob& job) {
  alignas(64) float padded[64] = {};  // zeros past job.cols, never read: features < job.cols
  std::copy(job.rows, job.rows + job.cols, padded);
  __m512 row[kRowVectors];
  for (int v = 0; v < kRowVectors; ++v) row[v] = _mm512_load_ps(padded + 16 * v);
  double* sum = job.num_groups > 1 ? nullptr : job.sums;
  switch (job.depth) {
    case 1:
      return one_row_bits<kRowVectors, kMissing, 1>(job, row, sum);
    case 2:
      return one_row_bits<kRowVectors, kMissing, 2>(job, row, sum);
    case 3:
      return one_row_bits<kRowVectors, kMissing, 3>(job, row, sum);
    case 4:
      return one_row_bits<kRowVectors, kMissing, 4>(job, row, sum);
    case 5:
      return one_row_bits<kRowVectors, kMissing, 5>(job, row, sum);
    default:
      static_assert(kMaxAvx512OneRowDepth == 6);
      return one_row_bits<kRowVectors, kMissing, 6>(job, row, sum);
  }
}

template <int kRowVectors>
void one_row_bits(const CompleteRowsJob& job, bool missing) {
  if (missing) return one_row_bits<kRowVectors, true>(job);
  one_row_bits<kRowVectors, false>(job);
}

}  // namespace

bool use_avx512_one_row(const CompleteRowsJob& job) {
  return cpu_has_avx512() && avx512_on.load(std::memory_order_relaxed) && use_vector_kernels() &&
         job.n == 1 && job.depth >= 1 && job.depth <= kMaxAvx512OneRowDepth && job.cols <= 64 &&
         job.missing_left_bits != nullptr &&
         job.stride >= ((std::size_t{1} << job.depth) + 15) / 16 * 16;
}

void enable_avx512_kernels(bool on) {
  avx512_on.store(on, std::memory_order_relaxed);
}

void complete_one_row_avx512(const CompleteRowsJob& job) {
  const bool missing = std::any_of(job.rows, job.rows + job.cols, [](float x) { return x != x; });
  if (job.cols <= 16) return one_row_bits<1>(job, missing);
  if (job.cols <= 32) return one_row_bits<2>(job, missing);
  one_row_bits<4>(job, missing);
}

}  // namespace forklift::tree

#else  // not x86-64: never chosen

namespace forklift::tree {

bool use_avx512_one_row(const CompleteRowsJob&) {
  return false;
}
void enable_avx512_kernels(bool) {}
void complete_one_row_avx512(const CompleteRowsJob&) {}

}  // namespace forklift::tree

#endif
