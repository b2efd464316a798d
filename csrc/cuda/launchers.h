// Boundary between the nvcc-compiled kernels and the g++-compiled pybind11 module.
// Only plain types cross it, so the binding never includes CUDA or torch headers.
// Every function returns an empty string on success, otherwise the failing CUDA
// call and CUDA's own message.
#pragma once

#include <cstdint>
#include <string>

namespace kbald::cuda {

std::string device_count(int* count);
std::string runtime_version(int* version);
// The installed driver's CUDA version (0 without a driver).
std::string driver_version(int* version);
std::string launch_row_entropy(std::uintptr_t probs, std::uintptr_t out, int64_t rows, int64_t cols,
                               bool is_double, std::uintptr_t stream);

std::string multiprocessor_count(int device, int* count);

// Configuration splits (grid.y) that give about `target_blocks` blocks in all.
int64_t joint_entropy_splits(int64_t configs, int64_t points, int64_t classes, int64_t target_blocks);

// out[i] = Σ_m alpha[m]·H(q[m, i, :]) for contiguous float32 weights and alpha and the
// pool's log-probabilities as stored (type code and element strides as in
// kbald/log_probs.h), all on the device; `partial` is a device workspace of
// splits × points × classes doubles.
std::string launch_accumulate_joint_entropy(std::uintptr_t weights, std::uintptr_t alpha, std::uintptr_t log_probs,
                                            int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
                                            std::uintptr_t out, std::uintptr_t partial, int64_t configs,
                                            int64_t points, int64_t samples, int64_t classes, int64_t splits,
                                            std::uintptr_t stream);

}  // namespace kbald::cuda
