// BatchBALD joint-entropy accumulation, shared by the host C++ twin, the CUDA kernel
// and the host emulation of that kernel:
//
//   out[i] = Σ_m alpha[m] · H(q[m, i, :]),   q[m, i, c] = Σ_k W[m, k] · P[i, k, c].
//
// Because H is a sum over classes, the accumulation is a GEMM [M, K] × [K, N·C] whose
// columns j = i·C + c each reduce Σ_m alpha[m]·(-q log q) on their own; the classes
// of a candidate are summed at the end. q is never stored.
#pragma once

#include <cstdint>

#include "kbald/log_probs.h"

namespace kbald {

// Natural log for q in (0, 1] with a relative error of a few float ulps, written
// without calls or tables so the host loop vectorises (std::log does not) and the
// device runs the same arithmetic. q = m·2^e with m in [√½, √2); then
// log m = 2·atanh(s), s = (m-1)/(m+1), |s| ≤ 0.1716, whose odd series to s^9
// leaves a truncation error below 3e-9 relative.
KBALD_HOST_DEVICE float log_unit_interval(float q) {
  const int32_t bits = float_bits(q);
  // Shift the mantissa range to [√½, √2) by borrowing from the exponent.
  const int32_t offset = bits - 0x3f3504f3;  // bits of √½
  const int32_t exponent = offset >> 23;
  const float m = float_from_bits((offset & 0x007fffff) + 0x3f3504f3);
  const float s = (m - 1.0f) / (m + 1.0f);
  const float z = s * s;
  const float series = 1.0f + z * (1.0f / 3 + z * (1.0f / 5 + z * (1.0f / 7 + z * (1.0f / 9))));
  return static_cast<float>(exponent) * 0.693147180559945309f + 2.0f * s * series;
}

// -q·log q with 0·log 0 = 0. The log is taken of max(q, smallest normal float) (the
// bit trick above needs a normal number); multiplied by q it gives exactly 0 at q = 0
// and an error under 1e-36 below the normal range. No branch, so the host loop vectorises.
KBALD_HOST_DEVICE float neg_xlogx(float q) {
  const float smallest_normal = 1.17549435e-38f;
  return -q * log_unit_interval(q > smallest_normal ? q : smallest_normal);
}

// The CUDA kernel's block program, written as phases that each thread runs with its
// own thread index between barriers, so a host loop over threads can replay it exactly.
// A block owns kColumns GEMM columns and configurations [m_begin, m_end); it walks the
// configurations kRows at a time and K in chunks of kDepth, double-buffered: while a
// chunk in shared memory is multiplied, each thread holds its share of the next one
// in registers (fetched before the multiply, so the loads' latency overlaps it) and
// stores it to the other buffer after, with one barrier per chunk.
namespace joint_entropy_block {

constexpr int kRows = 64;      // configurations per tile
constexpr int kColumns = 64;   // (candidate, class) columns per block
constexpr int kDepth = 16;     // posterior samples per shared-memory chunk
constexpr int kThreads = 256;  // 16 × 16 threads, each a 4 × 4 micro-tile
constexpr int kThreadGrid = 16;
constexpr int kMicro = 4;
// The W tile is stored transposed (k-major); 16 consecutive threads store one row's
// 16 samples, which a pitch of 64 floats puts in one bank (16-way conflict). A pitch
// of 68 spreads them over 16 banks two rows at a time (2-way) and keeps every
// micro-tile row 16-byte aligned for vector loads.
constexpr int kWeightsPitch = kRows + 4;
constexpr int kWeightLoads = kRows * kDepth / kThreads;    // W values a thread fetches per chunk
constexpr int kProbLoads = kDepth * kColumns / kThreads;   // pool values a thread fetches per chunk

struct Shared {
  alignas(16) float weights[2][kDepth][kWeightsPitch];  // W chunks, k-major, double-buffered
  alignas(16) float probs[2][kDepth][kColumns];         // P chunks
  double column_sums[kThreadGrid][kColumns];
};

template <typename T>
struct Thread {
  float q[kMicro][kMicro];        // rows 4·ty + r, columns 4·tx + c of the current tile
  double column_sum[kMicro];      // double: one term per configuration, often 10^4 and more
  float next_weights[kWeightLoads];  // the next chunk, held while the current one is multiplied
  T next_log_probs[kProbLoads];      // as stored: exponentiated when staged, after the multiply
  int64_t column_offset;          // element offset of x[i, 0, c] for the column this thread loads
  bool column_valid;
};

template <typename T>
struct Problem {
  const float* weights;   // [M, K] contiguous
  const float* alpha;     // [M]
  LogProbs<T> log_probs;  // [N, K, C] as stored: the kernel takes p = e^x as it loads
  int64_t configs, points, samples, classes;
};

// The device's fast exponential (two instructions, a few ulps) and the host's
// portable one: the pool is exponentiated once per configuration tile, so a
// polynomial on the device would cost a noticeable share of the FMAs.
KBALD_HOST_DEVICE float probability(float log_probability) {
#if defined(__CUDA_ARCH__)
  return __expf(log_probability);
#else
  return exp_log_probability(log_probability);
#endif
}

template <typename T>
KBALD_HOST_DEVICE void begin(const Problem<T>& p, int64_t column_begin, int tid, Thread<T>& t) {
  // A thread always loads the same tile column (its tid mod kColumns), so the
  // division by C happens once per block, not once per load.
  const int64_t column = column_begin + tid % kColumns;
  t.column_valid = column < p.points * p.classes;
  const int64_t point = column / p.classes;
  t.column_offset = point * p.log_probs.stride_n + column % p.classes * p.log_probs.stride_c;
  for (int c = 0; c < kMicro; ++c) t.column_sum[c] = 0.0;
}

template <typename T>
KBALD_HOST_DEVICE void zero_tile(Thread<T>& t) {
  for (int r = 0; r < kMicro; ++r)
    for (int c = 0; c < kMicro; ++c) t.q[r][c] = 0.0f;
}

// Element e = tid + kThreads·i of a chunk: W (row e / kDepth, sample e % kDepth), so
// a warp reads rows of W along K (coalesced); P (sample e / kColumns, the thread's column).
template <typename T>
KBALD_HOST_DEVICE void fetch(const Problem<T>& p, int64_t row_begin, int64_t k_begin, int tid, Thread<T>& t) {
  for (int i = 0; i < kWeightLoads; ++i) {
    const int e = tid + kThreads * i;
    const int64_t m = row_begin + e / kDepth, k = k_begin + e % kDepth;
    t.next_weights[i] = (m < p.configs && k < p.samples) ? p.weights[m * p.samples + k] : 0.0f;
  }
  for (int i = 0; i < kProbLoads; ++i) {
    const int64_t k = k_begin + (tid + kThreads * i) / kColumns;
    if (t.column_valid && k < p.samples)
      t.next_log_probs[i] = p.log_probs.data[t.column_offset + k * p.log_probs.stride_k];
  }
}

// Rows past M and samples past K store zeros: they add nothing to q and, with
// alpha 0, nothing to the sums.
template <typename T>
KBALD_HOST_DEVICE void stage(const Problem<T>& p, int64_t k_begin, int tid, const Thread<T>& t, Shared& s,
                             int buffer) {
  for (int i = 0; i < kWeightLoads; ++i) {
    const int e = tid + kThreads * i;
    s.weights[buffer][e % kDepth][e / kDepth] = t.next_weights[i];
  }
  for (int i = 0; i < kProbLoads; ++i) {
    const int kk = (tid + kThreads * i) / kColumns;
    s.probs[buffer][kk][tid % kColumns] =
        (t.column_valid && k_begin + kk < p.samples) ? probability(to_float(t.next_log_probs[i])) : 0.0f;
  }
}

// Each k: one 16-byte load of 4 W values and one of 4 P values feed 16 FMAs. The 16
// threads of a half-warp read 16 consecutive P vectors and 2 W vectors, broadcast.
template <typename T>
KBALD_HOST_DEVICE void multiply(int tid, const Shared& s, int buffer, Thread<T>& t) {
  const int ty = tid / kThreadGrid, tx = tid % kThreadGrid;
  for (int kk = 0; kk < kDepth; ++kk) {
    float w[kMicro], x[kMicro];
    for (int r = 0; r < kMicro; ++r) w[r] = s.weights[buffer][kk][kMicro * ty + r];
    for (int c = 0; c < kMicro; ++c) x[c] = s.probs[buffer][kk][kMicro * tx + c];
    for (int r = 0; r < kMicro; ++r)
      for (int c = 0; c < kMicro; ++c) t.q[r][c] += w[r] * x[c];
  }
}

// The first chunk of a row tile, before its barrier.
template <typename T>
KBALD_HOST_DEVICE void prologue(const Problem<T>& p, int64_t row_begin, int tid, Thread<T>& t, Shared& s) {
  zero_tile(t);
  fetch(p, row_begin, 0, tid, t);
  stage(p, 0, tid, t, s, 0);
}

// Chunk `chunk` (samples from k_begin): fetch the next, multiply this one, stage the
// next into the other buffer; a barrier follows. The buffer staged here was last
// read in the previous chunk, before the previous barrier.
template <typename T>
KBALD_HOST_DEVICE void chunk_step(const Problem<T>& p, int64_t row_begin, int64_t k_begin, int64_t chunk, int tid,
                                  Thread<T>& t, Shared& s) {
  const bool more = k_begin + kDepth < p.samples;
  if (more) fetch(p, row_begin, k_begin + kDepth, tid, t);
  multiply(tid, s, static_cast<int>(chunk & 1), t);
  if (more) stage(p, k_begin + kDepth, tid, t, s, static_cast<int>((chunk + 1) & 1));
}

template <typename T>
KBALD_HOST_DEVICE void accumulate(const Problem<T>& p, int64_t row_begin, int tid, Thread<T>& t) {
  const int ty = tid / kThreadGrid;
  for (int r = 0; r < kMicro; ++r) {
    const int64_t m = row_begin + kMicro * ty + r;
    const float a = m < p.configs ? p.alpha[m] : 0.0f;
    for (int c = 0; c < kMicro; ++c) t.column_sum[c] += static_cast<double>(a * neg_xlogx(t.q[r][c]));
  }
}

template <typename T>
KBALD_HOST_DEVICE void publish(int tid, const Thread<T>& t, Shared& s) {
  const int ty = tid / kThreadGrid, tx = tid % kThreadGrid;
  for (int c = 0; c < kMicro; ++c) s.column_sums[ty][kMicro * tx + c] = t.column_sum[c];
}

// Threads 0..kColumns-1 each sum one column over the 16 thread rows in a fixed
// order, so the result does not depend on scheduling.
KBALD_HOST_DEVICE void reduce(int64_t column_begin, int64_t total_columns, int tid, const Shared& s,
                              double* partial) {
  if (tid >= kColumns || column_begin + tid >= total_columns) return;
  double sum = 0.0;
  for (int ty = 0; ty < kThreadGrid; ++ty) sum += s.column_sums[ty][tid];
  partial[column_begin + tid] = sum;
}

// Launch geometry: grid.x walks column blocks, grid.y splits the configurations into
// `splits` contiguous runs of whole row tiles; each split writes its own partial
// sums, added in split order afterwards, so no atomics and no run-to-run drift.
KBALD_HOST_DEVICE int64_t rows_per_split(int64_t configs, int64_t splits) {
  const int64_t tiles = (configs + kRows - 1) / kRows;
  return (tiles + splits - 1) / splits * kRows;
}

// out[i] = Σ_split Σ_c partial[split, i·C + c], in a fixed order.
KBALD_HOST_DEVICE double class_sum(const double* partial, int64_t splits, int64_t total_columns, int64_t point,
                                   int64_t classes) {
  double sum = 0.0;
  for (int64_t split = 0; split < splits; ++split)
    for (int64_t c = 0; c < classes; ++c) sum += partial[split * total_columns + point * classes + c];
  return sum;
}

}  // namespace joint_entropy_block
}  // namespace kbald
