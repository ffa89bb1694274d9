#include "runtimes/tree/complete_rows_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <atomic>

namespace forklift::tree {

namespace {

bool cpu_has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}

std::atomic<bool> vector_kernels_on{true};

}  // namespace

bool use_vector_kernels() {
  return cpu_has_avx2() && vector_kernels_on.load(std::memory_order_relaxed);
}

void enable_vector_kernels(bool on) {
  vector_kernels_on.store(on, std::memory_order_relaxed);
}

namespace {

#define FORKLIFT_AVX2 __attribute__((target("avx2")))

FORKLIFT_AVX2 inline __m256i permuted(const std::int32_t* at, __m256i local) {
  return _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)),
                                     local);
}

// `one` where the lane's `bit` of `local` is set, else `zero`.
FORKLIFT_AVX2 inline __m256i by_bit(__m256i zero, __m256i one, __m256i local, int bit) {
  const __m256 mask = _mm256_castsi256_ps(_mm256_sll_epi32(local, _mm_cvtsi32_si128(31 - bit)));
  return _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(zero), _mm256_castsi256_ps(one), mask));
}

// The values of a level's `nodes` nodes at each lane's position in the level: permutes of the
// level held in registers up to 32 nodes (a gather costs about nine cycles on the machine
// measured; a permute one), a gather beyond.
FORKLIFT_AVX2 inline __m256i pick(const std::int32_t* level, std::size_t nodes, __m256i local) {
  if (nodes <= 8) return permuted(level, local);
  if (nodes == 16) return by_bit(permuted(level, local), permuted(level + 8, local), local, 3);
  if (nodes == 32) {
    return by_bit(by_bit(permuted(level, local), permuted(level + 8, local), local, 3),
                  by_bit(permuted(level + 16, local), permuted(level + 24, local), local, 3), local,
                  4);
  }
  return _mm256_i32gather_epi32(level, local, 4);
}

// Rows in vectors of eight, kVectors vectors: each is its own chain of dependent loads down the
// tree, and the more chains, the more of the loads' latency overlaps (measured on eta: 16 rows a
// block, 3.3 µs a row; 64 rows and levels in registers, 1.3 µs: docs/explanation/native-engine.md).
template <int kVectors>
FORKLIFT_AVX2 void rows_avx2(const CompleteRowsJob& job) {
  constexpr int kRows = 8 * kVectors;
  const std::size_t leaves = std::size_t{1} << job.depth;
  // Lanes past the last row repeat it; their results are dropped.
  alignas(32) std::int32_t base_of[kRows];
  for (std::size_t r = 0; r < kRows; ++r) {
    base_of[r] = static_cast<std::int32_t>(std::min(r, job.n - 1) * job.cols);
  }
  __m256i base[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    base[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(base_of + 8 * v));
  }
  const __m256i one = _mm256_set1_epi32(1), column_bits = _mm256_set1_epi32(0x7fffffff);
  // One output: the sums stay in vectors of doubles, four rows each.
  __m256d acc[2 * kVectors];
  for (auto& a : acc) a = _mm256_setzero_pd();
  alignas(32) float leaf_of_row[kRows];
  for (std::size_t t = 0; t < job.trees; ++t) {
    const auto* thresholds = reinterpret_cast<const std::int32_t*>(job.thresholds + t * job.stride);
    const std::int32_t* features = job.features + t * job.stride;
    // Each lane's position within the level it is at.
    __m256i at[kVectors];
    for (auto& a : at) a = _mm256_setzero_si256();
    std::size_t first = 0, nodes = 1;  // the level's first node and its width
    for (int level = 0; level < job.depth; ++level, first += nodes, nodes *= 2) {
      for (int v = 0; v < kVectors; ++v) {
        const __m256 threshold = _mm256_castsi256_ps(pick(thresholds + first, nodes, at[v]));
        const __m256i feature = pick(features + first, nodes, at[v]);
        const __m256 x = _mm256_i32gather_ps(
            job.rows, _mm256_add_epi32(base[v], _mm256_and_si256(feature, column_bits)), 4);
        const __m256 below = _mm256_cmp_ps(x, threshold, _CMP_LT_OQ);       // NaN: false
        const __m256 not_above = _mm256_cmp_ps(x, threshold, _CMP_NGE_UQ);  // NaN: true
        const __m256 left = _mm256_blendv_ps(below, not_above, _mm256_castsi256_ps(feature));
        // 2i + 1, less one when left (the mask is -1).
        at[v] = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(at[v], at[v]), one),
                                 _mm256_castps_si256(left));
      }
    }
    const float* leaf = job.leaves + t * leaves;
    for (int v = 0; v < kVectors; ++v) {
      const __m256 value = _mm256_i32gather_ps(leaf, at[v], 4);
      if (job.num_groups == 1) {
        acc[2 * v] = _mm256_add_pd(acc[2 * v], _mm256_cvtps_pd(_mm256_castps256_ps128(value)));
        acc[2 * v + 1] =
            _mm256_add_pd(acc[2 * v + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(value, 1)));
      } else {
        _mm256_store_ps(leaf_of_row + 8 * v, value);
      }
    }
    if (job.num_groups > 1) {
      const auto g = static_cast<std::size_t>(job.groups[t]);
      for (std::size_t r = 0; r < job.n; ++r) {
        job.sums[r * job.num_groups + g] += static_cast<double>(leaf_of_row[r]);
      }
    }
  }
  if (job.num_groups == 1) {
    alignas(32) double total[kRows];
    for (int k = 0; k < 2 * kVectors; ++k) _mm256_store_pd(total + 4 * k, acc[k]);
    for (std::size_t r = 0; r < job.n; ++r) job.sums[r] += total[r];
  }
}

// One row, eight trees per vector and four vectors at once (32 chains of loads in flight): each
// lane's node comes from its own tree, so every step gathers.
// Each lane's node at `level` (its position in the level in `local`) from eight trees' nodes of
// that level laid side by side (slot j of lane l at level[8j + l]).
FORKLIFT_AVX2 inline __m256i slot(const std::int32_t* level_nodes, int j) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(level_nodes + 8 * j));
}

FORKLIFT_AVX2 inline __m256i top_pick(const std::int32_t* level_nodes, int level, __m256i local) {
  const std::int32_t* n = level_nodes;
  if (level == 0) return slot(n, 0);
  if (level == 1) return by_bit(slot(n, 0), slot(n, 1), local, 0);
  const __m256i first4 = by_bit(by_bit(slot(n, 0), slot(n, 1), local, 0),
                                by_bit(slot(n, 2), slot(n, 3), local, 0), local, 1);
  if (level == 2) return first4;
  const __m256i next4 = by_bit(by_bit(slot(n, 4), slot(n, 5), local, 0),
                               by_bit(slot(n, 6), slot(n, 7), local, 0), local, 1);
  return by_bit(first4, next4, local, 2);
}

// Each lane's value among 32 held in four registers (features 0-31 of `row`).
FORKLIFT_AVX2 inline __m256i of_32(const __m256i* row, __m256i column) {
  const __m256i low = by_bit(_mm256_permutevar8x32_epi32(row[0], column),
                             _mm256_permutevar8x32_epi32(row[1], column), column, 3);
  const __m256i high = by_bit(_mm256_permutevar8x32_epi32(row[2], column),
                              _mm256_permutevar8x32_epi32(row[3], column), column, 3);
  return by_bit(low, high, column, 4);
}

// The row's value of each lane's feature: from the row held in kRowVectors registers (permutes
// and blends, a cycle or two) when it has at most 8 * kRowVectors features, else a gather.
template <int kRowVectors>
FORKLIFT_AVX2 inline __m256 value_of(const __m256i* row, const float* row_in_memory,
                                     __m256i column) {
  if constexpr (kRowVectors == 0) {
    return _mm256_i32gather_ps(row_in_memory, column, 4);
  } else if constexpr (kRowVectors == 1) {
    return _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(row[0], column));
  } else if constexpr (kRowVectors == 2) {
    return _mm256_castsi256_ps(by_bit(_mm256_permutevar8x32_epi32(row[0], column),
                                      _mm256_permutevar8x32_epi32(row[1], column), column, 3));
  } else {
    static_assert(kRowVectors == 4 || kRowVectors == 8);
    if constexpr (kRowVectors == 4) return _mm256_castsi256_ps(of_32(row, column));
    return _mm256_castsi256_ps(by_bit(of_32(row, column), of_32(row + 4, column), column, 5));
  }
}

template <int kRowVectors>
FORKLIFT_AVX2 void one_row_avx2(const CompleteRowsJob& job) {
  // The row in registers, padded with zeros (never read: features are below job.cols).
  alignas(32) float padded[64] = {};
  __m256i row[kRowVectors > 0 ? kRowVectors : 1];
  if constexpr (kRowVectors > 0) {
    std::copy(job.rows, job.rows + job.cols, padded);
    for (int v = 0; v < kRowVectors; ++v) {
      row[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(padded + 8 * v));
    }
  }
  constexpr std::size_t kVectors = 4, kTrees = 8 * kVectors;
  const std::size_t leaves = std::size_t{1} << job.depth;
  const __m256i one = _mm256_set1_epi32(1), column_bits = _mm256_set1_epi32(0x7fffffff);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const auto* thresholds = reinterpret_cast<const std::int32_t*>(job.thresholds);
  alignas(32) float leaf_of_tree[kTrees];
  std::size_t t = 0;
  for (; t + kTrees <= job.trees; t += kTrees) {
    __m256i tree_at[kVectors], leaf_at[kVectors], at[kVectors];
    for (std::size_t v = 0; v < kVectors; ++v) {
      const __m256i tree = _mm256_add_epi32(lane, _mm256_set1_epi32(static_cast<int>(t + 8 * v)));
      tree_at[v] = _mm256_mullo_epi32(tree, _mm256_set1_epi32(static_cast<int>(job.stride)));
      leaf_at[v] = _mm256_mullo_epi32(tree, _mm256_set1_epi32(static_cast<int>(leaves)));
      at[v] = _mm256_setzero_si256();
    }
    const std::size_t top_slots = (std::size_t{1} << job.top_levels) - 1;
    std::size_t first = 0, nodes = 1;
    for (int level = 0; level < job.depth; ++level, first += nodes, nodes *= 2) {
      const __m256i level_at = _mm256_set1_epi32(static_cast<int>(first));
      for (std::size_t v = 0; v < kVectors; ++v) {
        __m256 threshold;
        __m256i feature;
        if (level < job.top_levels) {
          // The eight trees' nodes of this level sit side by side: loads and blends.
          const std::size_t base = ((t / 8 + v) * top_slots + first) * 8;
          threshold = _mm256_castsi256_ps(top_pick(
              reinterpret_cast<const std::int32_t*>(job.top_thresholds) + base, level, at[v]));
          feature = top_pick(job.top_features + base, level, at[v]);
        } else {
          const __m256i node = _mm256_add_epi32(_mm256_add_epi32(tree_at[v], level_at), at[v]);
          threshold = _mm256_castsi256_ps(_mm256_i32gather_epi32(thresholds, node, 4));
          feature = _mm256_i32gather_epi32(job.features, node, 4);
        }
        const __m256 x =
            value_of<kRowVectors>(row, job.rows, _mm256_and_si256(feature, column_bits));
        const __m256 below = _mm256_cmp_ps(x, threshold, _CMP_LT_OQ);
        const __m256 not_above = _mm256_cmp_ps(x, threshold, _CMP_NGE_UQ);
        const __m256 left = _mm256_blendv_ps(below, not_above, _mm256_castsi256_ps(feature));
        at[v] = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(at[v], at[v]), one),
                                 _mm256_castps_si256(left));
      }
    }
    for (std::size_t v = 0; v < kVectors; ++v) {
      _mm256_store_ps(leaf_of_tree + 8 * v,
                      _mm256_i32gather_ps(job.leaves, _mm256_add_epi32(leaf_at[v], at[v]), 4));
    }
    // Tree after tree, as on every other path: the same sums to the bit.
    for (std::size_t k = 0; k < kTrees; ++k) {
      job.sums[job.num_groups > 1 ? static_cast<std::size_t>(job.groups[t + k]) : 0] +=
          static_cast<double>(leaf_of_tree[k]);
    }
  }
  for (; t < job.trees; ++t) {  // the last few trees, one at a time
    std::size_t at = 0, first = 0, nodes = 1;
    for (int level = 0; level < job.depth; ++level, first += nodes, nodes *= 2) {
      const std::size_t node = t * job.stride + first + at;
      const float x = job.rows[static_cast<std::uint32_t>(job.features[node]) & 0x7fffffffu];
      const float threshold = job.thresholds[node];
      const bool left = x < threshold || (x != x && job.features[node] < 0);
      at = 2 * at + (left ? 0 : 1);
    }
    job.sums[job.num_groups > 1 ? static_cast<std::size_t>(job.groups[t]) : 0] +=
        static_cast<double>(job.leaves[t * leaves + at]);
  }
}

}  // namespace

void complete_one_row_avx2(const CompleteRowsJob& job) {
  if (job.cols <= 8) return one_row_avx2<1>(job);
  if (job.cols <= 16) return one_row_avx2<2>(job);
  if (job.cols <= 32) return one_row_avx2<4>(job);
  if (job.cols <= 64) return one_row_avx2<8>(job);
  one_row_avx2<0>(job);
}

void complete_rows_avx2(const CompleteRowsJob& job) {
  switch ((job.n + 7) / 8) {
    case 1:
      return rows_avx2<1>(job);
    case 2:
      return rows_avx2<2>(job);
    case 3:
      return rows_avx2<3>(job);
    case 4:
      return rows_avx2<4>(job);
    case 5:
      return rows_avx2<5>(job);
    case 6:
      return rows_avx2<6>(job);
    case 7:
      return rows_avx2<7>(job);
    default:
      return rows_avx2<8>(job);
  }
}

}  // namespace forklift::tree

#else  // not x86: the scalar paths only

namespace forklift::tree {

bool use_vector_kernels() {
  return false;
}
void enable_vector_kernels(bool) {}
void complete_rows_avx2(const CompleteRowsJob&) {}
void complete_one_row_avx2(const CompleteRowsJob&) {}

}  // namespace forklift::tree

#endif
