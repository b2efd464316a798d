#include "joint_entropy_cpu.h"

#include <algorithm>
#include <vector>

#include "kbald/joint_entropy_math.h"

namespace kbald::host {
namespace {

// About 256 GEMM columns per candidate block keeps the packed P block of a usual
// K (≤ 100) within L1/L2 while one thread walks every configuration.
constexpr int64_t kTargetColumns = 256;
constexpr int64_t kRowBlock = 8;
constexpr int64_t kLanes = 16;  // columns per register tile; blocks are padded to a multiple

// Σ_m alpha[m]·(-q log q) for each column of one packed block [K, columns]. Compiled
// for several instruction sets and chosen at load time, because the install must run
// on any x86-64 but the loop is worth AVX2/AVX-512 where present.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void accumulate_block(const float* weights, const float* alpha, const float* packed, float* row_weights,
                      float* q, double* column_sum, int64_t configs, int64_t samples, int64_t columns) {
  for (int64_t m0 = 0; m0 < configs; m0 += kRowBlock) {
    // A short last block runs as a full one with zero weights and alpha: its q rows
    // are 0, whose terms are 0, and every loop keeps a fixed trip count.
    float a[kRowBlock];
    for (int64_t r = 0; r < kRowBlock; ++r) a[r] = m0 + r < configs ? alpha[m0 + r] : 0.0f;
    for (int64_t k = 0; k < samples; ++k)
      for (int64_t r = 0; r < kRowBlock; ++r)
        row_weights[k * kRowBlock + r] = m0 + r < configs ? weights[(m0 + r) * samples + k] : 0.0f;
    // q for kRowBlock configurations × kLanes columns stays in vector registers over
    // all of K, then goes to `q` ([kRowBlock, columns], in L1) for the entropy terms.
    for (int64_t j0 = 0; j0 < columns; j0 += kLanes) {
      float tile[kRowBlock][kLanes] = {};
      for (int64_t k = 0; k < samples; ++k) {
        const float* x = packed + k * columns + j0;
        const float* w = row_weights + k * kRowBlock;
        for (int64_t r = 0; r < kRowBlock; ++r) {
#pragma omp simd
          for (int64_t l = 0; l < kLanes; ++l) tile[r][l] += w[r] * x[l];
        }
      }
      for (int64_t r = 0; r < kRowBlock; ++r)
        for (int64_t l = 0; l < kLanes; ++l) q[r * columns + j0 + l] = tile[r][l];
    }
#pragma omp simd
    for (int64_t j = 0; j < columns; ++j) {
      float terms = 0.0f;
      for (int64_t r = 0; r < kRowBlock; ++r) terms += a[r] * neg_xlogx(q[r * columns + j]);
      column_sum[j] += static_cast<double>(terms);
    }
  }
}

}  // namespace

template <typename T>
void accumulate_joint_entropy(const float* weights, const float* alpha, const LogProbs<T>& log_probs, float* out,
                              int64_t configs, int64_t points, int64_t samples, int64_t classes) {
  const int64_t block_points = std::max<int64_t>(1, kTargetColumns / classes);
  const int64_t blocks = (points + block_points - 1) / block_points;
#pragma omp parallel
  {
    const int64_t max_columns = (block_points * classes + kLanes - 1) / kLanes * kLanes;
    std::vector<float> packed(static_cast<size_t>(samples * max_columns));
    std::vector<float> row_weights(static_cast<size_t>(samples * kRowBlock));
    std::vector<float> q(static_cast<size_t>(kRowBlock * max_columns));
    std::vector<double> column_sum(static_cast<size_t>(max_columns));
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t first = b * block_points;
      const int64_t count = std::min(block_points, points - first);
      const int64_t columns = (count * classes + kLanes - 1) / kLanes * kLanes;
      // P[first:first+count] as [K, columns], exponentiated from the pool as stored:
      // one k is a contiguous run of columns, and the padding columns are zero
      // probabilities, whose terms are zero.
      std::fill(packed.begin(), packed.begin() + samples * columns, 0.0f);
      for (int64_t i = 0; i < count; ++i)
        for (int64_t k = 0; k < samples; ++k)
          for (int64_t c = 0; c < classes; ++c)
            packed[k * columns + i * classes + c] = exp_log_probability(log_probs(first + i, k, c));
      std::fill(column_sum.begin(), column_sum.begin() + columns, 0.0);
      accumulate_block(weights, alpha, packed.data(), row_weights.data(), q.data(), column_sum.data(), configs,
                       samples, columns);
      for (int64_t i = 0; i < count; ++i) {
        double h = 0.0;
        for (int64_t c = 0; c < classes; ++c) h += column_sum[i * classes + c];
        out[first + i] = static_cast<float>(h);
      }
    }
  }
}

template <typename T>
void emulate_joint_entropy_kernel(const float* weights, const float* alpha, const LogProbs<T>& log_probs, float* out,
                                  int64_t configs, int64_t points, int64_t samples, int64_t classes,
                                  int64_t splits) {
  namespace jb = kbald::joint_entropy_block;
  const jb::Problem<T> problem{weights, alpha, log_probs, configs, points, samples, classes};
  const int64_t total_columns = points * classes;
  const int64_t column_blocks = (total_columns + jb::kColumns - 1) / jb::kColumns;
  const int64_t split_rows = jb::rows_per_split(configs, splits);
  std::vector<double> partial(static_cast<size_t>(splits * total_columns), 0.0);
  std::vector<jb::Thread<T>> threads(jb::kThreads);
  jb::Shared shared;
  for (int64_t split = 0; split < splits; ++split) {
    const int64_t row_end = std::min(configs, (split + 1) * split_rows);
    for (int64_t block = 0; block < column_blocks; ++block) {
      const int64_t column_begin = block * jb::kColumns;
      for (int tid = 0; tid < jb::kThreads; ++tid) jb::begin(problem, column_begin, tid, threads[tid]);
      for (int64_t row_begin = split * split_rows; row_begin < row_end; row_begin += jb::kRows) {
        for (int tid = 0; tid < jb::kThreads; ++tid) jb::prologue(problem, row_begin, tid, threads[tid], shared);
        int64_t chunk = 0;
        for (int64_t k_begin = 0; k_begin < samples; k_begin += jb::kDepth, ++chunk)
          for (int tid = 0; tid < jb::kThreads; ++tid)
            jb::chunk_step(problem, row_begin, k_begin, chunk, tid, threads[tid], shared);
        for (int tid = 0; tid < jb::kThreads; ++tid) jb::accumulate(problem, row_begin, tid, threads[tid]);
      }
      for (int tid = 0; tid < jb::kThreads; ++tid) jb::publish(tid, threads[tid], shared);
      for (int tid = 0; tid < jb::kThreads; ++tid)
        jb::reduce(column_begin, total_columns, tid, shared, partial.data() + split * total_columns);
    }
  }
  for (int64_t i = 0; i < points; ++i)
    out[i] = static_cast<float>(jb::class_sum(partial.data(), splits, total_columns, i, classes));
}

#define KBALD_INSTANTIATE(T)                                                                                     \
  template void accumulate_joint_entropy<T>(const float*, const float*, const LogProbs<T>&, float*, int64_t,     \
                                            int64_t, int64_t, int64_t);                                          \
  template void emulate_joint_entropy_kernel<T>(const float*, const float*, const LogProbs<T>&, float*, int64_t, \
                                                int64_t, int64_t, int64_t, int64_t);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
