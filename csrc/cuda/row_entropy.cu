#include <cuda_runtime.h>

#include "kbald/entropy_math.h"
#include "launchers.h"

namespace kbald::cuda {
namespace {

std::string describe(const char* call, cudaError_t err) {
  return std::string(call) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

template <typename T>
__global__ void row_entropy_kernel(const T* __restrict__ probs, T* __restrict__ out, int64_t rows,
                                   int64_t cols) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row < rows) out[row] = kbald::entropy(probs + row * cols, cols, 1);
}

}  // namespace

std::string device_count(int* count) {
  *count = 0;
  const cudaError_t err = cudaGetDeviceCount(count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls report their own
    return describe("cudaGetDeviceCount", err);
  }
  return {};
}

std::string runtime_version(int* version) {
  const cudaError_t err = cudaRuntimeGetVersion(version);
  return err == cudaSuccess ? std::string() : describe("cudaRuntimeGetVersion", err);
}

std::string driver_version(int* version) {
  *version = 0;  // no driver installed: cudaDriverGetVersion reports 0 and succeeds
  const cudaError_t err = cudaDriverGetVersion(version);
  return err == cudaSuccess ? std::string() : describe("cudaDriverGetVersion", err);
}

std::string launch_row_entropy(std::uintptr_t probs, std::uintptr_t out, int64_t rows, int64_t cols,
                               bool is_double, std::uintptr_t stream) {
  if (rows == 0) return {};
  constexpr int threads = 256;
  const int64_t blocks = (rows + threads - 1) / threads;
  if (blocks > 0x7fffffffLL) return "row_entropy: too many rows for one launch";
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (is_double) {
    row_entropy_kernel<double><<<static_cast<unsigned>(blocks), threads, 0, s>>>(
        reinterpret_cast<const double*>(probs), reinterpret_cast<double*>(out), rows, cols);
  } else {
    row_entropy_kernel<float><<<static_cast<unsigned>(blocks), threads, 0, s>>>(
        reinterpret_cast<const float*>(probs), reinterpret_cast<float*>(out), rows, cols);
  }
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? std::string() : describe("row_entropy_kernel launch", err);
}

}  // namespace kbald::cuda
