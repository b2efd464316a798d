// Host C++ twin of the fused k-means++ / k-center step
// (kbald_kernels/triton/kmeanspp_step.py, kbald_kernels/reference/kmeanspp.py):
// dense or factored BADGE embeddings read as stored (float32, float16, bfloat16;
// unit feature stride, any row stride), the running-min update, and the next pick
// by Gumbel-max over the same Philox4x32-10 stream keyed by (seed, step, index).
#pragma once

#include <cstdint>

#include "kbald/log_probs.h"

namespace kbald::host {

// Rows of an [N, width] matrix with `stride` elements between rows.
template <typename T>
struct Rows {
  const T* data;
  int64_t stride, width;

  float operator()(int64_t n, int64_t f) const { return to_float(data[n * stride + f]); }
};

// `steps` consecutive steps first_step, first_step + 1, …: each applies the newest
// center (a pool index; -1 for none) to min_distances [N] of the points not
// `selected`, then picks: tier 3 (no center yet: uniform), else 2 (d > 0: sample
// ∝ d by log d + Gumbel, or the largest d with `argmax`), else 1 (every d is 0:
// uniform); ties to the smaller index. Writes each pick and its d at the time into
// indices/scores, marks it selected, and makes it the newest. `residuals` null:
// dense embeddings x; else factored (features, residuals), distance
// |h_i|²|r_i|² + |h_c|²|r_c|² - 2(h_i·h_c)(r_i·r_c) clamped at 0. `pool_indices`
// (ascending; null: the rows' own) key each row's draw by its index in the whole
// pool, so a gathered subset of a pool draws as the pool does.
template <typename T>
void kmeanspp_steps(const Rows<T>& x, const Rows<T>* residuals, int64_t points, float* min_distances,
                    uint8_t* selected, int64_t newest, uint64_t seed, int64_t first_step, int64_t steps, bool argmax,
                    const int64_t* pool_indices, int64_t* indices, float* scores);

// out[n] = min over `centers` of the squared distance of point n to each, +inf for
// none: dense (residuals null), or factored as above. The centers come as
// contiguous float32 rows [centers, width] (and [centers, width_r]).
template <typename T>
void min_squared_distances(const Rows<T>& x, const Rows<T>* residuals, int64_t points, const float* center_x,
                           const float* center_r, int64_t centers, float* out);

// Copies rows rows[0], …, rows[count - 1] of x into out [count, x.width] (contiguous)
// and returns the first of the copies holding a NaN or an infinity (-1: none): a
// subset of a pool gathered and validated in one read.
template <typename T>
int64_t gather_rows(const Rows<T>& x, const int64_t* rows, int64_t count, T* out);

// The standard Gumbel noise of (seed, step, index), as kbald_kernels.reference.gumbel_noise.
double gumbel_noise(uint64_t seed, int64_t step, int64_t index);

// A step's pick among this part of a pool (a shard): tier and key as kmeanspp_steps
// ranks them, and the row; index -1 when every row is selected.
struct Candidate {
  int tier;
  double key;
  int64_t index;
};

// The candidate of step `step` over running distances already updated by the newest
// center: rows not `selected`, each keyed by its index in the whole pool,
// pool_indices[n], so that shards of one pool draw as the whole pool does; ties to
// the smaller pool index.
Candidate kmeanspp_candidate(const float* min_distances, const uint8_t* selected, const int64_t* pool_indices,
                             int64_t points, uint64_t seed, int64_t step, bool argmax);

}  // namespace kbald::host
