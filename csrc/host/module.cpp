// Host (CPU) pybind11 module. Written the same way as csrc/cuda: the Python wrapper
// validates tensors and passes raw data pointers, so this file needs no torch headers.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu_clones.h"
#include "information_cpu.h"
#include "joint_entropy_cpu.h"
#include "kmeanspp_cpu.h"
#include "kbald/entropy_math.h"
#include "kbald/log_probs.h"

namespace py = pybind11;

namespace {

template <typename T>
void row_entropy_impl(const T* probs, T* out, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) out[r] = kbald::entropy(probs + r * cols, cols, 1);
}

void row_entropy(std::uintptr_t probs, std::uintptr_t out, int64_t rows, int64_t cols,
                 const std::string& dtype) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("row_entropy: rows and cols must be >= 0");
  if (dtype == "float32") {
    row_entropy_impl(reinterpret_cast<const float*>(probs), reinterpret_cast<float*>(out), rows, cols);
  } else if (dtype == "float64") {
    row_entropy_impl(reinterpret_cast<const double*>(probs), reinterpret_cast<double*>(out), rows, cols);
  } else {
    throw std::invalid_argument("row_entropy: dtype must be 'float32' or 'float64', got '" + dtype + "'");
  }
}

// Runs fn on the typed view of a pool passed as (pointer, type code, strides).
template <typename Fn>
void with_log_probs(const char* name, std::uintptr_t data, int type, int64_t stride_n, int64_t stride_k,
                    int64_t stride_c, Fn&& fn) {
  if (!kbald::visit_log_probs(data, type, stride_n, stride_k, stride_c, fn))
    throw std::invalid_argument(std::string(name) + ": unknown log-probability type code " + std::to_string(type) +
                                " (0 float32, 1 float16, 2 bfloat16)");
}

void check_joint_entropy_sizes(const char* name, int64_t configs, int64_t points, int64_t samples,
                               int64_t classes) {
  if (configs < 0 || points < 0 || samples < 1 || classes < 1)
    throw std::invalid_argument(std::string(name) + ": need configs, points >= 0 and samples, classes >= 1");
}

void accumulate_joint_entropy(std::uintptr_t weights, std::uintptr_t alpha, std::uintptr_t log_probs, int type,
                              int64_t stride_n, int64_t stride_k, int64_t stride_c, std::uintptr_t out,
                              int64_t configs, int64_t points, int64_t samples, int64_t classes) {
  check_joint_entropy_sizes("accumulate_joint_entropy", configs, points, samples, classes);
  with_log_probs("accumulate_joint_entropy", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    kbald::host::accumulate_joint_entropy(reinterpret_cast<const float*>(weights),
                                          reinterpret_cast<const float*>(alpha), x, reinterpret_cast<float*>(out),
                                          configs, points, samples, classes);
  });
}

void emulate_joint_entropy_kernel(std::uintptr_t weights, std::uintptr_t alpha, std::uintptr_t log_probs, int type,
                                  int64_t stride_n, int64_t stride_k, int64_t stride_c, std::uintptr_t out,
                                  int64_t configs, int64_t points, int64_t samples, int64_t classes,
                                  int64_t splits) {
  check_joint_entropy_sizes("emulate_joint_entropy_kernel", configs, points, samples, classes);
  if (splits < 1) throw std::invalid_argument("emulate_joint_entropy_kernel: splits must be >= 1");
  with_log_probs("emulate_joint_entropy_kernel", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    kbald::host::emulate_joint_entropy_kernel(reinterpret_cast<const float*>(weights),
                                              reinterpret_cast<const float*>(alpha), x, reinterpret_cast<float*>(out),
                                              configs, points, samples, classes, splits);
  });
}

int64_t entropies(std::uintptr_t log_probs, int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
                  std::uintptr_t entropy, std::uintptr_t conditional, std::uintptr_t confidence,
                  std::uintptr_t margin, int64_t points, int64_t samples, int64_t classes, float low, float high) {
  if (points < 0 || samples < 1 || classes < 1)
    throw std::invalid_argument("entropies: need points >= 0 and samples, classes >= 1");
  int64_t invalid = 0;
  with_log_probs("entropies", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    invalid = kbald::host::entropies(x, reinterpret_cast<float*>(entropy), reinterpret_cast<float*>(conditional),
                                     reinterpret_cast<float*>(confidence), reinterpret_cast<float*>(margin), points,
                                     samples, classes, low, high);
  });
  return invalid;
}

void epig(std::uintptr_t log_probs, int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
          std::uintptr_t entropy, std::uintptr_t target_log_probs, std::uintptr_t target_entropy,
          std::uintptr_t weights, int64_t targets, std::uintptr_t out, int64_t points, int64_t samples,
          int64_t classes) {
  if (points < 0 || targets < 1 || samples < 1 || classes < 1)
    throw std::invalid_argument("epig: need points >= 0 and targets, samples, classes >= 1");
  with_log_probs("epig", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    kbald::host::epig(x, reinterpret_cast<const float*>(entropy), reinterpret_cast<const float*>(target_log_probs),
                      reinterpret_cast<const float*>(target_entropy), reinterpret_cast<const float*>(weights),
                      targets, reinterpret_cast<float*>(out), points, samples, classes);
  });
}

// Runs fn(T{}) with the element type T of embeddings passed as a type code.
template <typename Fn>
void with_embedding_type(const char* name, int type, Fn&& fn) {
  switch (static_cast<kbald::LogProbsType>(type)) {
    case kbald::LogProbsType::kFloat32: return fn(float{});
    case kbald::LogProbsType::kFloat16: return fn(kbald::Half{});
    case kbald::LogProbsType::kBFloat16: return fn(kbald::BFloat16{});
  }
  throw std::invalid_argument(std::string(name) + ": unknown embedding type code " + std::to_string(type) +
                              " (0 float32, 1 float16, 2 bfloat16)");
}

template <typename T>
void kmeanspp_steps_typed(std::uintptr_t x, int64_t stride_x, int64_t width, std::uintptr_t residuals,
                          int64_t stride_r, int64_t width_r, int64_t points, std::uintptr_t min_distances,
                          std::uintptr_t selected, int64_t newest, uint64_t seed, int64_t first_step, int64_t steps,
                          bool argmax, std::uintptr_t pool_indices, std::uintptr_t indices, std::uintptr_t scores) {
  const kbald::host::Rows<T> features{reinterpret_cast<const T*>(x), stride_x, width};
  const kbald::host::Rows<T> factors{reinterpret_cast<const T*>(residuals), stride_r, width_r};
  kbald::host::kmeanspp_steps(features, residuals != 0 ? &factors : nullptr, points,
                              reinterpret_cast<float*>(min_distances), reinterpret_cast<uint8_t*>(selected), newest,
                              seed, first_step, steps, argmax, reinterpret_cast<const int64_t*>(pool_indices),
                              reinterpret_cast<int64_t*>(indices),
                              reinterpret_cast<float*>(scores));
}

void kmeanspp_steps(std::uintptr_t x, int type, int64_t stride_x, int64_t width, std::uintptr_t residuals,
                    int64_t stride_r, int64_t width_r, int64_t points, std::uintptr_t min_distances,
                    std::uintptr_t selected, int64_t newest, uint64_t seed, int64_t first_step, int64_t steps,
                    bool argmax, std::uintptr_t pool_indices, std::uintptr_t indices, std::uintptr_t scores) {
  if (points < 1 || width < 1 || steps < 0 || newest < -1 || newest >= points || (residuals != 0 && width_r < 1))
    throw std::invalid_argument("kmeanspp_steps: need points, width >= 1 (width_r >= 1 when factored), "
                                "steps >= 0 and -1 <= newest < points");
  with_embedding_type("kmeanspp_steps", type, [&](auto tag) {
    kmeanspp_steps_typed<decltype(tag)>(x, stride_x, width, residuals, stride_r, width_r, points, min_distances,
                                        selected, newest, seed, first_step, steps, argmax, pool_indices, indices,
                                        scores);
  });
}

int64_t gather_rows(std::uintptr_t x, int type, int64_t stride_x, int64_t width, std::uintptr_t rows, int64_t count,
                    std::uintptr_t out) {
  if (width < 1 || count < 0) throw std::invalid_argument("gather_rows: need width >= 1 and count >= 0");
  int64_t first_invalid = -1;
  with_embedding_type("gather_rows", type, [&](auto tag) {
    using T = decltype(tag);
    first_invalid = kbald::host::gather_rows(kbald::host::Rows<T>{reinterpret_cast<const T*>(x), stride_x, width},
                                             reinterpret_cast<const int64_t*>(rows), count, reinterpret_cast<T*>(out));
  });
  return first_invalid;
}

py::tuple kmeanspp_candidate(std::uintptr_t min_distances, std::uintptr_t selected, std::uintptr_t pool_indices,
                             int64_t points, uint64_t seed, int64_t step, bool argmax) {
  if (points < 0) throw std::invalid_argument("kmeanspp_candidate: need points >= 0");
  kbald::host::Candidate best;
  {
    py::gil_scoped_release release;
    best = kbald::host::kmeanspp_candidate(reinterpret_cast<const float*>(min_distances),
                                           reinterpret_cast<const uint8_t*>(selected),
                                           reinterpret_cast<const int64_t*>(pool_indices), points, seed, step, argmax);
  }
  return py::make_tuple(best.tier, best.key, best.index);
}

void min_squared_distances(std::uintptr_t x, int type, int64_t stride_x, int64_t width, std::uintptr_t residuals,
                           int64_t stride_r, int64_t width_r, int64_t points, std::uintptr_t center_x,
                           std::uintptr_t center_r, int64_t centers, std::uintptr_t out) {
  if (points < 0 || width < 1 || centers < 0 || (residuals != 0 && width_r < 1))
    throw std::invalid_argument("min_squared_distances: need points, centers >= 0 and width >= 1 (width_r >= 1 "
                                "when factored)");
  with_embedding_type("min_squared_distances", type, [&](auto tag) {
    using T = decltype(tag);
    const kbald::host::Rows<T> features{reinterpret_cast<const T*>(x), stride_x, width};
    const kbald::host::Rows<T> factors{reinterpret_cast<const T*>(residuals), stride_r, width_r};
    kbald::host::min_squared_distances(features, residuals != 0 ? &factors : nullptr, points,
                                       reinterpret_cast<const float*>(center_x),
                                       reinterpret_cast<const float*>(center_r), centers,
                                       reinterpret_cast<float*>(out));
  });
}

double gumbel_noise(uint64_t seed, int64_t step, int64_t index) { return kbald::host::gumbel_noise(seed, step, index); }

void pairwise_mutual_information(std::uintptr_t a, int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
                                 std::uintptr_t entropy_a, std::uintptr_t b, int64_t b_stride_n, int64_t b_stride_k,
                                 int64_t b_stride_c, std::uintptr_t entropy_b, std::uintptr_t out, int64_t points_a,
                                 int64_t points_b, int64_t samples, int64_t classes) {
  if (points_a < 0 || points_b < 0 || samples < 1 || classes < 1)
    throw std::invalid_argument("pairwise_mutual_information: need points >= 0 and samples, classes >= 1");
  with_log_probs("pairwise_mutual_information", a, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    using View = std::decay_t<decltype(x)>;
    const View y{reinterpret_cast<decltype(x.data)>(b), b_stride_n, b_stride_k, b_stride_c};
    kbald::host::pairwise_mutual_information(x, reinterpret_cast<const float*>(entropy_a), y,
                                             reinterpret_cast<const float*>(entropy_b), reinterpret_cast<float*>(out),
                                             points_a, points_b, samples, classes);
  });
}

void joint_entropies(std::uintptr_t joints, std::uintptr_t out, int64_t rows, int64_t columns, int64_t classes) {
  if (rows < 0 || columns < 0 || columns % 16 != 0 || classes < 1)  // whole vectors of 16 lanes
    throw std::invalid_argument("joint_entropies: need rows >= 0, columns a multiple of 16 and classes >= 1");
  kbald::host::joint_entropies(reinterpret_cast<const float*>(joints), reinterpret_cast<float*>(out), rows, columns,
                               classes);
}

void probabilities(std::uintptr_t log_probs, int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
                   std::uintptr_t probs, int64_t points, int64_t samples, int64_t classes) {
  if (points < 0 || samples < 1 || classes < 1)
    throw std::invalid_argument("probabilities: need points >= 0 and samples, classes >= 1");
  with_log_probs("probabilities", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    kbald::host::probabilities(x, reinterpret_cast<float*>(probs), points, samples, classes);
  });
}

void mutual_information_with_pick_of_probs(std::uintptr_t probs, std::uintptr_t entropy, int64_t pick,
                                           std::uintptr_t out, int64_t points, int64_t samples, int64_t classes) {
  if (points < 1 || samples < 1 || classes < 1 || pick < 0 || pick >= points)
    throw std::invalid_argument("mutual_information_with_pick_of_probs: need points, samples, classes >= 1 "
                                "and 0 <= pick < points");
  kbald::host::mutual_information_with_pick_of_probs(reinterpret_cast<const float*>(probs),
                                                     reinterpret_cast<const float*>(entropy), pick,
                                                     reinterpret_cast<float*>(out), points, samples, classes);
}

void mutual_information_with_pick(std::uintptr_t log_probs, int type, int64_t stride_n, int64_t stride_k,
                                  int64_t stride_c, std::uintptr_t entropy, int64_t pick, std::uintptr_t out,
                                  int64_t points, int64_t samples, int64_t classes) {
  if (points < 1 || samples < 1 || classes < 1 || pick < 0 || pick >= points)
    throw std::invalid_argument("mutual_information_with_pick: need points, samples, classes >= 1 "
                                "and 0 <= pick < points");
  with_log_probs("mutual_information_with_pick", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    kbald::host::mutual_information_with_pick(x, reinterpret_cast<const float*>(entropy), pick,
                                              reinterpret_cast<float*>(out), points, samples, classes);
  });
}

void joint_entropy_with_columns(std::uintptr_t log_probs, int type, int64_t stride_n, int64_t stride_k,
                                int64_t stride_c, std::uintptr_t columns, int64_t width, std::uintptr_t out,
                                int64_t points, int64_t samples, int64_t classes) {
  if (points < 0 || samples < 1 || classes < 1 || width < 1)
    throw std::invalid_argument("joint_entropy_with_columns: need points >= 0 and samples, classes, width >= 1");
  with_log_probs("joint_entropy_with_columns", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    kbald::host::joint_entropy_with_columns(x, reinterpret_cast<const float*>(columns), width,
                                            reinterpret_cast<float*>(out), points, samples, classes);
  });
}

void probability_sums(std::uintptr_t log_probs, int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
                      std::uintptr_t sums, int64_t points, int64_t samples, int64_t classes) {
  if (points < 0 || samples < 1 || classes < 1)
    throw std::invalid_argument("probability_sums: need points >= 0 and samples, classes >= 1");
  with_log_probs("probability_sums", log_probs, type, stride_n, stride_k, stride_c, [&](const auto& x) {
    kbald::host::probability_sums(x, reinterpret_cast<float*>(sums), points, samples, classes);
  });
}

int openmp_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

PYBIND11_MODULE(_host, m) {
  m.doc() = "kbald_kernels host C++ kernels (OpenMP)";
  m.def("row_entropy", &row_entropy, py::arg("probs"), py::arg("out"), py::arg("rows"), py::arg("cols"),
        py::arg("dtype"), py::call_guard<py::gil_scoped_release>(),
        "Entropy of each row of a contiguous [rows, cols] probability array (raw pointers).");
  // A pool crosses as (pointer, type code 0 float32 / 1 float16 / 2 bfloat16, element strides n, k, c).
#define KBALD_POOL_ARGS(name) py::arg(name), py::arg(name "_type"), py::arg("stride_n"), py::arg("stride_k"), \
                              py::arg("stride_c")
  m.def("accumulate_joint_entropy", &accumulate_joint_entropy, py::arg("weights"), py::arg("alpha"),
        KBALD_POOL_ARGS("log_probs"), py::arg("out"), py::arg("configs"), py::arg("points"), py::arg("samples"),
        py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "out[i] = sum_m alpha[m] H(weights[m] @ exp(log_probs[i])) for contiguous float32 weights and alpha "
        "and the pool as stored (raw pointers).");
  m.def("emulate_joint_entropy_kernel", &emulate_joint_entropy_kernel, py::arg("weights"), py::arg("alpha"),
        KBALD_POOL_ARGS("log_probs"), py::arg("out"), py::arg("configs"), py::arg("points"), py::arg("samples"),
        py::arg("classes"), py::arg("splits"), py::call_guard<py::gil_scoped_release>(),
        "The CUDA joint-entropy kernel's block program replayed thread by thread on the host "
        "(a test of its indexing where there is no GPU).");
  m.def("entropies", &entropies, KBALD_POOL_ARGS("log_probs"), py::arg("entropy"), py::arg("conditional"),
        py::arg("confidence"), py::arg("margin"), py::arg("points"), py::arg("samples"), py::arg("classes"),
        py::arg("low"), py::arg("high"), py::call_guard<py::gil_scoped_release>(),
        "Entropy and conditional entropy (and, for nonzero confidence and margin pointers, least confidence "
        "and margin) of each point of log-probabilities [points, samples, classes] into float32 arrays, in one "
        "pass that also counts the rows that hold NaN or whose probabilities do not sum into [low, high]; "
        "returns that count.");
  m.def("epig", &epig, KBALD_POOL_ARGS("log_probs"), py::arg("entropy"), py::arg("target_log_probs"),
        py::arg("target_entropy"), py::arg("weights"), py::arg("targets"), py::arg("out"), py::arg("points"),
        py::arg("samples"), py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "EPIG of every point of log-probabilities [points, samples, classes] about contiguous float32 target "
        "log-probabilities [targets, samples, classes] with their entropies and weights (raw pointers).");
  m.def("pairwise_mutual_information", &pairwise_mutual_information, KBALD_POOL_ARGS("a"), py::arg("entropy_a"),
        py::arg("b"), py::arg("b_stride_n"), py::arg("b_stride_k"), py::arg("b_stride_c"), py::arg("entropy_b"),
        py::arg("out"), py::arg("points_a"), py::arg("points_b"), py::arg("samples"), py::arg("classes"),
        py::call_guard<py::gil_scoped_release>(),
        "I[Y_n; Y_m] for every point n of a [points_a, samples, classes] and m of b (the same element type) with "
        "their float32 entropies, into contiguous float32 [points_a, points_b] (raw pointers).");
  m.def("joint_entropies", &joint_entropies, py::arg("joints"), py::arg("out"), py::arg("rows"), py::arg("columns"),
        py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "Σ_{c,d} -J log J of every pair from contiguous float32 joints [rows·classes, classes·columns] (row "
        "n·classes + c, column d·columns + m; columns a multiple of 16) into float32 [rows, columns] (raw pointers).");
  m.def("mutual_information_with_pick", &mutual_information_with_pick, KBALD_POOL_ARGS("log_probs"),
        py::arg("entropy"), py::arg("pick"), py::arg("out"), py::arg("points"), py::arg("samples"),
        py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "I[Y_n; Y_pick] for every point of log-probabilities [points, samples, classes] and their float32 "
        "entropies (raw pointers).");
  m.def("joint_entropy_with_columns", &joint_entropy_with_columns, KBALD_POOL_ARGS("log_probs"),
        py::arg("columns"), py::arg("width"), py::arg("out"), py::arg("points"), py::arg("samples"),
        py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "H(mean_k p[n, k, :] (x) columns[k, :]) for every point of log-probabilities [points, samples, classes] "
        "and contiguous float32 columns [samples, width] (raw pointers).");
  m.def("probabilities", &probabilities, KBALD_POOL_ARGS("log_probs"), py::arg("probs"), py::arg("points"),
        py::arg("samples"), py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "exp of log-probabilities [points, samples, classes] into contiguous float32 (raw pointers).");
  m.def("mutual_information_with_pick_of_probs", &mutual_information_with_pick_of_probs, py::arg("probs"),
        py::arg("entropy"), py::arg("pick"), py::arg("out"), py::arg("points"), py::arg("samples"),
        py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "mutual_information_with_pick of a pool given as contiguous float32 probabilities (raw pointers).");
  m.def("probability_sums", &probability_sums, KBALD_POOL_ARGS("log_probs"), py::arg("sums"), py::arg("points"),
        py::arg("samples"), py::arg("classes"), py::call_guard<py::gil_scoped_release>(),
        "Row sums of exp of log-probabilities [points, samples, classes] into float32 [points, samples]; "
        "NaN in a row gives NaN.");
#undef KBALD_POOL_ARGS
  m.def("kmeanspp_steps", &kmeanspp_steps, py::arg("x"), py::arg("x_type"), py::arg("stride_x"), py::arg("width"),
        py::arg("residuals"), py::arg("stride_r"), py::arg("width_r"), py::arg("points"), py::arg("min_distances"),
        py::arg("selected"), py::arg("newest"), py::arg("seed"), py::arg("first_step"), py::arg("steps"),
        py::arg("argmax"), py::arg("pool_indices"), py::arg("indices"), py::arg("scores"),
        py::call_guard<py::gil_scoped_release>(),
        "k-means++ / k-center steps over dense embeddings x [points, width] or factors (x, residuals 0 for "
        "none), updating float32 min_distances and uint8 selected in place; draws keyed by ascending int64 "
        "pool_indices (0: the rows' own); picks (rows) into int64 indices and float32 scores (raw pointers).");
  m.def("min_squared_distances", &min_squared_distances, py::arg("x"), py::arg("x_type"), py::arg("stride_x"),
        py::arg("width"), py::arg("residuals"), py::arg("stride_r"), py::arg("width_r"), py::arg("points"),
        py::arg("center_x"), py::arg("center_r"), py::arg("centers"), py::arg("out"),
        py::call_guard<py::gil_scoped_release>(),
        "out[n] = min over float32 center rows of each point's squared distance, dense or factored (raw "
        "pointers; +inf without centers).");
  m.def("kmeanspp_candidate", &kmeanspp_candidate, py::arg("min_distances"), py::arg("selected"),
        py::arg("pool_indices"), py::arg("points"), py::arg("seed"), py::arg("step"), py::arg("argmax"),
        "A k-means++ / k-center step's (tier, key, row) among a shard's float32 running distances, uint8 "
        "selected flags and int64 pool indices (raw pointers); row -1 when every row is selected.");
  m.def("gather_rows", &gather_rows, py::arg("x"), py::arg("x_type"), py::arg("stride_x"), py::arg("width"),
        py::arg("rows"), py::arg("count"), py::arg("out"), py::call_guard<py::gil_scoped_release>(),
        "Copies rows (int64 row indices) of x [*, width] into contiguous out [count, width] of the same type "
        "(raw pointers); returns the first copied row holding NaN or inf, -1 when every value is finite.");
  m.def("gumbel_noise", &gumbel_noise, py::arg("seed"), py::arg("step"), py::arg("index"),
        "Standard Gumbel noise of (seed, step, index) from the Philox stream of the k-means++ step.");
  m.def("openmp_threads", &openmp_threads, "Threads OpenMP will use (1 when built without OpenMP).");
  m.def(
      "host_isa", [] { return std::string(kbald::host::host_isa_name(kbald::host::host_isa())); },
      "The instruction set the host vector loops (the one pass, the pair joint entropies, EPIG) run at: "
      "x86-64-v4, x86-64-v3 or baseline.");
  m.def(
      "cap_host_isa",
      [](const std::string& name) {
        return std::string(kbald::host::host_isa_name(kbald::host::cap_host_isa(kbald::host::host_isa_named(name))));
      },
      py::arg("name"),
      "Runs the host vector loops at most at this instruction set (never above the processor's); returns the "
      "one set.");
}
