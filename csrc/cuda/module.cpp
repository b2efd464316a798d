// CUDA pybind11 module, compiled by the host compiler: kernels live in *.cu files
// behind launchers.h. The CUDA runtime is linked statically, so importing this
// module works without a GPU or driver; calls then raise RuntimeError.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "launchers.h"

namespace py = pybind11;

namespace {

void check(const std::string& error) {
  if (!error.empty()) throw std::runtime_error("kbald_kernels CUDA: " + error);
}

int device_count() {
  int count = 0;
  check(kbald::cuda::device_count(&count));
  return count;
}

void require_device() {
  if (device_count() == 0) throw std::runtime_error("kbald_kernels CUDA: no CUDA device is visible");
}

int runtime_version() {
  int version = 0;
  check(kbald::cuda::runtime_version(&version));
  return version;
}

int driver_version() {
  int version = 0;
  check(kbald::cuda::driver_version(&version));
  return version;
}

void row_entropy(std::uintptr_t probs, std::uintptr_t out, int64_t rows, int64_t cols,
                 const std::string& dtype, std::uintptr_t stream) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("row_entropy: rows and cols must be >= 0");
  if (dtype != "float32" && dtype != "float64")
    throw std::invalid_argument("row_entropy: dtype must be 'float32' or 'float64', got '" + dtype + "'");
  require_device();
  check(kbald::cuda::launch_row_entropy(probs, out, rows, cols, dtype == "float64", stream));
}

int joint_entropy_splits(int64_t configs, int64_t points, int64_t classes, int device) {
  int multiprocessors = 0;
  check(kbald::cuda::multiprocessor_count(device, &multiprocessors));
  // Four resident blocks per multiprocessor hide the shared-memory loads.
  return static_cast<int>(kbald::cuda::joint_entropy_splits(configs, points, classes, 4LL * multiprocessors));
}

void accumulate_joint_entropy(std::uintptr_t weights, std::uintptr_t alpha, std::uintptr_t log_probs, int type,
                              int64_t stride_n, int64_t stride_k, int64_t stride_c, std::uintptr_t out,
                              std::uintptr_t partial, int64_t configs, int64_t points, int64_t samples,
                              int64_t classes, int64_t splits, std::uintptr_t stream) {
  if (configs < 0 || points < 0 || samples < 1 || classes < 1 || splits < 1)
    throw std::invalid_argument(
        "accumulate_joint_entropy: need configs, points >= 0 and samples, classes, splits >= 1");
  require_device();
  check(kbald::cuda::launch_accumulate_joint_entropy(weights, alpha, log_probs, type, stride_n, stride_k, stride_c,
                                                     out, partial, configs, points, samples, classes, splits,
                                                     stream));
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "kbald_kernels CUDA kernels (CUDA runtime linked statically)";
  m.def("device_count", &device_count, "Visible CUDA devices; raises RuntimeError naming the failing call.");
  m.def("runtime_version", &runtime_version, "CUDA runtime version this module was linked with.");
  m.def("driver_version", &driver_version, "CUDA version of the installed driver (0 without a driver).");
  m.def("row_entropy", &row_entropy, py::arg("probs"), py::arg("out"), py::arg("rows"), py::arg("cols"),
        py::arg("dtype"), py::arg("stream"),
        "Entropy of each row of a contiguous [rows, cols] device array (raw pointers, stream as int).");
  m.def("joint_entropy_splits", &joint_entropy_splits, py::arg("configs"), py::arg("points"), py::arg("classes"),
        py::arg("device"), "Configuration splits the joint-entropy launch uses on this device (workspace rows).");
  m.def("accumulate_joint_entropy", &accumulate_joint_entropy, py::arg("weights"), py::arg("alpha"),
        py::arg("log_probs"), py::arg("log_probs_type"), py::arg("stride_n"), py::arg("stride_k"),
        py::arg("stride_c"), py::arg("out"), py::arg("partial"), py::arg("configs"), py::arg("points"),
        py::arg("samples"), py::arg("classes"), py::arg("splits"), py::arg("stream"),
        "out[i] = sum_m alpha[m] H(weights[m] @ exp(log_probs[i])) on the device: contiguous float32 weights "
        "and alpha, the pool as stored (type code 0 float32 / 1 float16 / 2 bfloat16, element strides).");
  m.attr("architectures") = KBALD_CUDA_ARCHS;
}
