#include <vector>

#include "host_math.h"
#include "information_cpu.h"

namespace kbald::host {
namespace {

// One point's K·C log-probabilities: p into `probs`, Σ p·log p as the result, and
// the count of NaN values into `nans` (exp_log_probability maps NaN to 0, and input
// validation must see it). The log-probability is clamped to -87 in the product so
// that p = 0 contributes an exact 0, not 0·(-inf). The simd reduction lets the sums
// run in vector lanes (a fixed order for each instruction set); without OpenMP the
// loop is scalar and gives the same values to rounding.
KBALD_CPU_CLONES
float exp_and_plogp(const float* x, float* probs, int64_t count, int* nans) {
  float total = 0.0f;
  int nan_count = 0;
#pragma omp simd reduction(+ : total, nan_count)
  for (int64_t j = 0; j < count; ++j) {
    const float v = x[j];
    const float p = exp_log_probability(v);
    probs[j] = p;
    total += p * (v > -87.0f ? v : -87.0f);
    nan_count += v != v;
  }
  *nans = nan_count;
  return total;
}

// Σ_k p[k, c] into `column` and the number of rows k whose Σ_c p lies outside
// [low, high] (NaN was counted before), for one point's probabilities [K, C],
// C <= 16·kVectors, read 16 classes a vector with the column sums held in registers.
// A row's vectors run past C into the next row (or into the zeros `probs` keeps
// after K·C); `masks[v]` zeroes those lanes.
template <int64_t kVectors>
[[gnu::always_inline]] inline int64_t class_sums_and_rows_outside(const float* probs, const Lanes* masks,
                                                                  float* column, int64_t samples, int64_t classes,
                                                                  float low, float high) {
  Lanes sums[kVectors] = {};
  int64_t outside = 0;
  for (int64_t k = 0; k < samples; ++k) {
    Lanes row = {};
    for (int64_t v = 0; v < kVectors; ++v) {
      const Lanes x = *reinterpret_cast<const Lanes*>(probs + k * classes + v * kLanesPerVector) * masks[v];
      sums[v] += x;
      row += x;
    }
    const float total = horizontal_sum(row);
    outside += !(total >= low && total <= high);
  }
  for (int64_t v = 0; v < kVectors; ++v)
    for (int64_t l = 0; l < kLanesPerVector; ++l) column[v * kLanesPerVector + l] = sums[v][l];
  return outside;
}

// The register-row widths, each cloned per instruction set, and a vector loop for C > 128.
#define KBALD_CLASS_SUMS(name, vectors)                                                                   \
  KBALD_CPU_CLONES int64_t name(const float* probs, const Lanes* masks, float* column, int64_t samples, \
                                int64_t classes, float low, float high) {                               \
    return class_sums_and_rows_outside<vectors>(probs, masks, column, samples, classes, low, high);      \
  }
KBALD_CLASS_SUMS(class_sums_16, 1)
KBALD_CLASS_SUMS(class_sums_32, 2)
KBALD_CLASS_SUMS(class_sums_64, 4)
KBALD_CLASS_SUMS(class_sums_128, 8)
#undef KBALD_CLASS_SUMS

KBALD_CPU_CLONES int64_t class_sums_any(const float* probs, const Lanes*, float* column, int64_t samples,
                                        int64_t classes, float low, float high) {
  std::fill(column, column + classes, 0.0f);
  int64_t outside = 0;
  for (int64_t k = 0; k < samples; ++k) {
    float row = 0.0f;
#pragma omp simd reduction(+ : row)
    for (int64_t c = 0; c < classes; ++c) {
      column[c] += probs[k * classes + c];
      row += probs[k * classes + c];
    }
    outside += !(row >= low && row <= high);
  }
  return outside;
}

using ClassSums = int64_t (*)(const float*, const Lanes*, float*, int64_t, int64_t, float, float);

}  // namespace

template <typename T>
void probabilities(const LogProbs<T>& log_probs, float* probs, int64_t points, int64_t samples, int64_t classes) {
  const int64_t count = samples * classes;
#pragma omp parallel
  {
    std::vector<float> values(count);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n)
      exp_keeping_nan(point_log_probs(log_probs, n, samples, classes, values.data()), probs + n * count, count);
  }
}

template <typename T>
void probability_sums(const LogProbs<T>& log_probs, float* sums, int64_t points, int64_t samples, int64_t classes) {
  for_each_point_probs(log_probs, points, samples, classes, [&](int64_t n, const float* p) {
    for (int64_t k = 0; k < samples; ++k) {
      float total = 0.0f;
      for (int64_t c = 0; c < classes; ++c) total += p[k * classes + c];
      sums[n * samples + k] = total;
    }
  });
}

template <typename T>
int64_t entropies(const LogProbs<T>& log_probs, float* entropy, float* conditional, float* confidence,
                  float* margin, int64_t points, int64_t samples, int64_t classes, float low, float high) {
  const int64_t count = samples * classes;
  const int64_t vectors = classes <= 16 ? 1 : classes <= 32 ? 2 : classes <= 64 ? 4 : classes <= 128 ? 8 : 0;
  const ClassSums class_sums = vectors == 1   ? class_sums_16
                               : vectors == 2 ? class_sums_32
                               : vectors == 4 ? class_sums_64
                               : vectors == 8 ? class_sums_128
                                              : class_sums_any;
  // A plain array: std::vector would drop Lanes' alignment attribute (GCC warns).
  Lanes masks[8];
  for (int64_t v = 0; v < vectors; ++v)
    for (int64_t l = 0; l < kLanesPerVector; ++l) masks[v][l] = v * kLanesPerVector + l < classes ? 1.0f : 0.0f;
  int64_t invalid = 0;
#pragma omp parallel reduction(+ : invalid)
  {
    // The last row's vectors read up to vectors·16 - C floats past K·C: zeros, since a
    // masked lane multiplies what it reads by 0 and garbage may be NaN.
    std::vector<float> values(count), probs(count + vectors * kLanesPerVector, 0.0f);
    std::vector<float> column(std::max(classes, vectors * kLanesPerVector));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n) {
      int nans = 0;
      const float* x = point_log_probs(log_probs, n, samples, classes, values.data());
      const double plogp = exp_and_plogp(x, probs.data(), count, &nans);
      // The validation this pass carries: NaN values, and rows whose probabilities do
      // not sum into [low, high] (+inf or a huge value makes the sum huge).
      invalid += nans + class_sums(probs.data(), masks, column.data(), samples, classes, low, high);
      double h = 0.0;
      for (int64_t c = 0; c < classes; ++c) h += neg_xlogx(column[c] / static_cast<float>(samples));
      entropy[n] = static_cast<float>(h);
      conditional[n] = static_cast<float>(-plogp / samples);
      if (confidence != nullptr) {
        float top = 0.0f, second = 0.0f;  // first of equal maxima is the top; the other stays second
        for (int64_t c = 0; c < classes; ++c) {
          const float mean = column[c] / static_cast<float>(samples);
          if (mean > top) {
            second = top;
            top = mean;
          } else if (mean > second) {
            second = mean;
          }
        }
        confidence[n] = 1.0f - top;
        margin[n] = top - second;
      }
    }
  }
  return invalid;
}

#define KBALD_INSTANTIATE(T) \
  template void probabilities<T>(const LogProbs<T>&, float*, int64_t, int64_t, int64_t); \
  template void probability_sums<T>(const LogProbs<T>&, float*, int64_t, int64_t, int64_t); \
  template int64_t entropies<T>(const LogProbs<T>&, float*, float*, float*, float*, int64_t, int64_t, int64_t, \
                                float, float);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
