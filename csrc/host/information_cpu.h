// Host C++ twins of the Triton information kernels, each defined in the source named
// as its op: information_terms_cpu.cpp (the one-pass entropies and the normalisation
// sums), kbald_step_cpu.cpp (the 2-BALD step's pass over the pool),
// pairwise_mutual_information_cpu.cpp and epig_cpu.cpp. Each reads the pool as stored
// (float32, float16 or bfloat16, any strides) one point at a time: nothing of the
// pool's size is allocated.
#pragma once

#include <cstdint>

#include "kbald/log_probs.h"

namespace kbald::host {

// entropy[n] = H(mean_k p[n, k, :]) and conditional[n] = -mean_k Σ_c p log p for
// log-probabilities [N, K, C] (-inf allowed: probability 0), in one pass; OpenMP over
// points. The same pass validates: it returns how many (n, k) rows have Σ_c p outside
// [low, high] (NaN and +inf count: the exponential makes them e^88, or at AVX-512 NaN
// or inf), 0 for valid input.
// Where `confidence` and `margin` are not null the pass also stores 1 - max_c pbar and
// the gap between the two largest class means (the second is 0 for a single class).
template <typename T>
int64_t entropies(const LogProbs<T>& log_probs, float* entropy, float* conditional, float* confidence,
                  float* margin, int64_t points, int64_t samples, int64_t classes, float low, float high);

// out[n] = I[Y_n; Y_pick] = entropy[n] + entropy[pick] - H(mean_k p[n, k, :] ⊗ p[pick, k, :])
// for log-probabilities [N, K, C] and their float32 entropies: the 2-BALD step's pass
// over the pool. The joint is never stored beyond one point's C × C.
template <typename T>
void mutual_information_with_pick(const LogProbs<T>& log_probs, const float* entropy, int64_t pick, float* out,
                                  int64_t points, int64_t samples, int64_t classes);

// out[n] = H(mean_k p[n, k, :] ⊗ columns[k, :]) for contiguous float32 columns
// [K, width] (3-BALD: the outer products p[s, k, a]·p[t, k, b] of two picks, a chunk
// of the C² pairs at a time): the three-way joint of (n, s, t), never stored beyond
// one point's C × 128 block.
template <typename T>
void joint_entropy_with_columns(const LogProbs<T>& log_probs, const float* columns, int64_t width, float* out,
                                int64_t points, int64_t samples, int64_t classes);

// The same for a pool given as contiguous float32 probabilities [N, K, C] (a greedy
// loop that exponentiated it once, where that copy fits its workspace).
void mutual_information_with_pick_of_probs(const float* probs, const float* entropy, int64_t pick, float* out,
                                           int64_t points, int64_t samples, int64_t classes);

// out[n, m] = I[Y_n; Y_m] = entropy_a[n] + entropy_b[m] - H(mean_k p_a[n, k, :] ⊗ p_b[m, k, :])
// for two pools of log-probabilities [Na, K, C] and [Nb, K, C] of one element type,
// into contiguous float32 [Na, Nb]: b is padded a block of rows at a time
// (its whole padded copy is never held), each block read from cache by every point of a.
template <typename T>
void pairwise_mutual_information(const LogProbs<T>& a, const float* entropy_a, const LogProbs<T>& b,
                                 const float* entropy_b, float* out, int64_t points_a, int64_t points_b,
                                 int64_t samples, int64_t classes);

// out[n, m] = H(J) = Σ_{c,d} -J log J for joints given as one matrix product's
// result [rows·C, C·columns] (row n·C + c, column d·columns + m), columns a multiple
// of 16: the joint entropies of pairwise mutual information where the joints come
// from a matrix multiplication (large K), into contiguous float32 [rows, columns].
void joint_entropies(const float* joints, float* out, int64_t rows, int64_t columns, int64_t classes);

// out[n] = Σ_t weights[t]·(entropy[n] + target_entropy[t] - H(mean_k p[n, k, :] ⊗ q[t, k, :])):
// EPIG of every pool point about targets q = exp(target_log_probs), contiguous float32
// [T, K, C] (few: padded once, then re-read from cache for every pool point).
template <typename T>
void epig(const LogProbs<T>& log_probs, const float* entropy, const float* target_log_probs,
          const float* target_entropy, const float* weights, int64_t targets, float* out, int64_t points,
          int64_t samples, int64_t classes);

// probs = exp(log_probs) into contiguous float32 [N, K, C], with the exponential every
// pass here uses (so a loop that caches it computes what it would have).
template <typename T>
void probabilities(const LogProbs<T>& log_probs, float* probs, int64_t points, int64_t samples, int64_t classes);

// sums[n, k] = Σ_c exp(log_probs[n, k, c]) into contiguous float32 [N, K]: the
// normalisation scan of input whose op does not validate in its own pass. NaN
// anywhere in a row makes its sum NaN, and +inf makes it huge, so one bound check
// on the sums finds every bad row.
template <typename T>
void probability_sums(const LogProbs<T>& log_probs, float* sums, int64_t points, int64_t samples, int64_t classes);

}  // namespace kbald::host
