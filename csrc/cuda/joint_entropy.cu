#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <type_traits>

#include "kbald/joint_entropy_math.h"
#include "launchers.h"

namespace kbald::cuda {
namespace {

namespace jb = kbald::joint_entropy_block;

std::string describe(const char* call, cudaError_t err) {
  return std::string(call) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

// One block: kColumns GEMM columns × the configurations of split blockIdx.y; the
// phases are those the host emulation replays, separated by the same barriers.
template <typename T>
__global__ void __launch_bounds__(jb::kThreads) joint_entropy_kernel(jb::Problem<T> problem, int64_t split_rows,
                                                                    double* __restrict__ partial) {
  __shared__ jb::Shared shared;
  jb::Thread<T> t;
  const int tid = threadIdx.x;
  const int64_t total_columns = problem.points * problem.classes;
  const int64_t column_begin = static_cast<int64_t>(blockIdx.x) * jb::kColumns;
  const int64_t split = blockIdx.y;
  const int64_t row_end = min(problem.configs, (split + 1) * split_rows);
  jb::begin(problem, column_begin, tid, t);
  for (int64_t row_begin = split * split_rows; row_begin < row_end; row_begin += jb::kRows) {
    jb::prologue(problem, row_begin, tid, t, shared);
    __syncthreads();
    int64_t chunk = 0;
    for (int64_t k_begin = 0; k_begin < problem.samples; k_begin += jb::kDepth, ++chunk) {
      jb::chunk_step(problem, row_begin, k_begin, chunk, tid, t, shared);
      __syncthreads();
    }
    jb::accumulate(problem, row_begin, tid, t);
  }
  jb::publish(tid, t, shared);
  __syncthreads();
  jb::reduce(column_begin, total_columns, tid, shared, partial + split * total_columns);
}

__global__ void class_sum_kernel(const double* __restrict__ partial, float* __restrict__ out, int64_t splits,
                                 int64_t points, int64_t classes) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < points) out[i] = static_cast<float>(jb::class_sum(partial, splits, points * classes, i, classes));
}

}  // namespace

int64_t joint_entropy_splits(int64_t configs, int64_t points, int64_t classes, int64_t target_blocks) {
  const int64_t column_blocks = (points * classes + jb::kColumns - 1) / jb::kColumns;
  const int64_t row_tiles = std::max<int64_t>(1, (configs + jb::kRows - 1) / jb::kRows);
  // Enough blocks to fill the device, never more splits than row tiles, and at most
  // 64 so the partial sums stay within 64 × N·C doubles.
  const int64_t wanted = (target_blocks + column_blocks - 1) / column_blocks;
  return std::max<int64_t>(1, std::min<int64_t>({wanted, row_tiles, 64}));
}

template <typename T>
std::string launch_accumulate(const jb::Problem<T>& problem, float* out, double* partial, int64_t splits,
                              cudaStream_t stream) {
  const int64_t column_blocks = (problem.points * problem.classes + jb::kColumns - 1) / jb::kColumns;
  if (column_blocks > 0x7fffffffLL || splits > 65535) return "accumulate_joint_entropy: grid too large";
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(splits));
  joint_entropy_kernel<T><<<grid, jb::kThreads, 0, stream>>>(
      problem, jb::rows_per_split(problem.configs, splits), partial);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return describe("joint_entropy_kernel launch", err);
  constexpr int threads = 256;
  const int64_t blocks = (problem.points + threads - 1) / threads;
  class_sum_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(partial, out, splits, problem.points,
                                                                          problem.classes);
  err = cudaGetLastError();
  return err == cudaSuccess ? std::string() : describe("class_sum_kernel launch", err);
}

std::string launch_accumulate_joint_entropy(std::uintptr_t weights, std::uintptr_t alpha, std::uintptr_t log_probs,
                                            int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
                                            std::uintptr_t out, std::uintptr_t partial, int64_t configs,
                                            int64_t points, int64_t samples, int64_t classes, int64_t splits,
                                            std::uintptr_t stream) {
  if (points == 0) return {};
  std::string error;
  const bool known = visit_log_probs(log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    using T = std::remove_cv_t<std::remove_reference_t<decltype(*x.data)>>;
    const jb::Problem<T> problem{reinterpret_cast<const float*>(weights), reinterpret_cast<const float*>(alpha), x,
                                 configs, points, samples, classes};
    error = launch_accumulate(problem, reinterpret_cast<float*>(out), reinterpret_cast<double*>(partial), splits,
                              reinterpret_cast<cudaStream_t>(stream));
  });
  return known ? error : "accumulate_joint_entropy: unknown log-probability type code " + std::to_string(type);
}

std::string multiprocessor_count(int device, int* count) {
  const cudaError_t err = cudaDeviceGetAttribute(count, cudaDevAttrMultiProcessorCount, device);
  return err == cudaSuccess ? std::string() : describe("cudaDeviceGetAttribute(MultiProcessorCount)", err);
}

}  // namespace kbald::cuda
