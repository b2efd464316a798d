// Host C++ twin of the CUDA joint-entropy kernel, and a replay of that kernel's block
// program on the host (both on raw pointers; see csrc/include/kbald/joint_entropy_math.h).
#pragma once

#include <cstdint>

#include "kbald/log_probs.h"

namespace kbald::host {

// out[i] = Σ_m alpha[m]·H(q[m, i, :]) for contiguous float32 weights [M, K] and
// alpha [M] and the pool's log-probabilities [N, K, C] as stored (float32, float16 or
// bfloat16, any strides; exponentiated block by block, never copied whole); OpenMP
// over candidate blocks, deterministic for any thread count.
template <typename T>
void accumulate_joint_entropy(const float* weights, const float* alpha, const LogProbs<T>& log_probs, float* out,
                              int64_t configs, int64_t points, int64_t samples, int64_t classes);

// The CUDA kernel's grid replayed thread by thread on the host, with the same
// launch geometry the CUDA launcher would choose for `splits` configuration splits.
template <typename T>
void emulate_joint_entropy_kernel(const float* weights, const float* alpha, const LogProbs<T>& log_probs, float* out,
                                  int64_t configs, int64_t points, int64_t samples, int64_t classes,
                                  int64_t splits);

}  // namespace kbald::host
