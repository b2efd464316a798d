// Host C++ twin of the one-pass Triton entropy kernel (kbald_kernels/triton/information_terms.py).
#pragma once

#include <cstdint>

namespace kbald::host {

// entropy[n] = H(mean_k p[n, k, :]) and conditional[n] = -mean_k Σ_c p log p for
// contiguous float32 log-probabilities [N, K, C] (-inf allowed: probability 0), in
// one pass; OpenMP over points.
void entropies(const float* log_probs, float* entropy, float* conditional, int64_t points, int64_t samples,
               int64_t classes);

// out[n] = I[Y_n; Y_pick] = entropy[n] + entropy[pick] - H(mean_k p[n, k, :] ⊗ p[pick, k, :])
// for contiguous float32 log-probabilities [N, K, C]: the 2-BALD step's pass over
// the pool. Probabilities are taken per point in a small buffer, so nothing of the
// pool's size is allocated; the joint is never stored beyond one point's C × C.
void mutual_information_with_pick(const float* log_probs, const float* entropy, int64_t pick, float* out,
                                  int64_t points, int64_t samples, int64_t classes);

// sums[r] = Σ_c exp(log_probs[r, c]) for contiguous float32 [rows, classes]: the
// normalisation check of every input. NaN anywhere in a row makes its sum NaN, and
// +inf makes it huge, so one bound check on the sums finds every bad row.
void probability_sums(const float* log_probs, float* sums, int64_t rows, int64_t classes);

}  // namespace kbald::host
