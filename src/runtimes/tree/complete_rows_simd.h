// The complete-tree layout's vector kernels, chosen at run time by what the CPU has (forest.cc):
// with AVX2, a batch in blocks of up to 64 rows, eight rows per vector, and one row with eight
// trees per vector; with AVX-512, one row through shallow trees, a tree's comparisons at once.
// Each row gets the same leaves added in the same order as on the scalar paths, so every path
// gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace forklift::tree {

// Each tree's nodes in breadth-first order (level k at 2^k - 1 .. 2^(k+1) - 2), `stride` apart:
// thresholds, and features with bit 31 set where a missing value goes left. The stride leaves
// room to read eight past any level's first node.
struct CompleteRowsJob {
  const float* thresholds;
  const std::int32_t* features;
  std::size_t stride;
  const float* leaves;         // per tree 2^depth
  const std::int32_t* groups;  // per tree (read when num_groups > 1)
  std::size_t trees;
  int depth;
  std::size_t num_groups;
  const float* rows;  // `n` rows of `cols` floats
  std::size_t n;      // 1 to 64
  std::size_t cols;
  double* sums;  // n * num_groups, added to
  // For one row: the top levels (kTopLevels, fewer in shallower trees) of each run of eight trees
  // interleaved, node slot by node slot, the eight trees side by side: a level is read with
  // loads and blends instead of gathers. (trees / 8) * (2^top_levels - 1) * 8 values each.
  const float* top_thresholds = nullptr;
  const std::int32_t* top_features = nullptr;
  int top_levels = 0;
  // For one row through trees of depth <= kMaxAvx512OneRowDepth: per tree, bit i + 1 set where node
  // i sends missing values left (the AVX-512 kernel); null where not built.
  const std::uint64_t* missing_left_bits = nullptr;
};

// How many levels of each tree the one-row kernel reads from the interleaved copy.
constexpr int kTopLevels = 4;

// Whether the vector kernels run (AVX2's, and AVX-512's below): the CPU has AVX2 (checked once)
// and they are not switched off.
bool use_vector_kernels();

// Switches every vector kernel off (or back on where the CPU has them): the tests compare every
// path's bits on one machine.
void enable_vector_kernels(bool on);

void complete_rows_avx2(const CompleteRowsJob& job);

// One row (job.n is 1) through every tree, eight trees per vector: the trees are the lanes.
void complete_one_row_avx2(const CompleteRowsJob& job);

// The deepest trees the AVX-512 one-row kernel takes: a tree's comparisons fit in 64 bits.
// (XGBoost's default max_depth is 6.)
constexpr int kMaxAvx512OneRowDepth = 6;

// Whether the AVX-512 one-row kernel runs for `job`: the CPU has AVX-512 F and BW (checked
// once), the vector kernels are on and it is not switched off, one row of at most 64 features,
// trees of depth at most kMaxAvx512OneRowDepth, missing_left_bits built, and a stride that
// leaves room to read a tree's nodes sixteen at a time.
bool use_avx512_one_row(const CompleteRowsJob& job);

// Switches the AVX-512 kernel off (or back on where the CPU has it): the tests compare paths.
void enable_avx512_kernels(bool on);

// One row with AVX-512 (complete_one_row_avx512.cc): each tree's comparisons all at once, in
// 16-lane compares, then a walk of their bits.
void complete_one_row_avx512(const CompleteRowsJob& job);

}  // namespace forklift::tree
