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
std::string launch_row_entropy(std::uintptr_t probs, std::uintptr_t out, int64_t rows, int64_t cols,
                               bool is_double, std::uintptr_t stream);

}  // namespace kbald::cuda
