#include "information_cpu.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "kbald/joint_entropy_math.h"

namespace kbald::host {
namespace {

// e^x for a log-probability x <= 0 (a little above 0 from rounding is fine; -inf
// gives 0), with no call or table so the loop vectorises (std::exp does not without
// -ffast-math). x = n·ln2 + r, |r| <= ln2/2; the degree-7 Taylor series of e^r
// leaves a relative error below 1e-8 before float rounding. Below -87 the result
// is under the smallest normal float and is returned as 0; above 88 it is e^88, far from any normalised row.
inline float exp_log_probability(float x) {
  // Two plain selects, not nested ones, so GCC if-converts them and the caller vectorises.
  const float below = x < 88.0f ? x : 88.0f;
  const float clamped = below > -87.0f ? below : -87.0f;
  // Round to nearest by the 1.5·2^23 trick: vectorises on any x86-64, unlike floor.
  const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (clamped - n * 0.693145751953125f) - n * 1.42860682030941723e-06f;
  const float poly =
      1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
                                                                                              r * (1.0f / 5040)))))));
  const float scale = float_from_bits((static_cast<int32_t>(n) + 127) << 23);
  return x > -87.0f ? poly * scale : 0.0f;
}

// One point's K·C log-probabilities: p into `probs`, and Σ p·log p. The log-probability
// is clamped to -87 in the product so that p = 0 contributes an exact 0, not 0·(-inf).
// The simd reduction lets the sum run in vector lanes (a fixed order for each
// instruction set); without OpenMP the loop is scalar and gives the same values to rounding.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
float exp_and_plogp(const float* x, float* probs, int64_t count) {
  float total = 0.0f;
#pragma omp simd reduction(+ : total)
  for (int64_t j = 0; j < count; ++j) {
    const float v = x[j];
    const float p = exp_log_probability(v);
    probs[j] = p;
    total += p * (v > -87.0f ? v : -87.0f);
  }
  return total;
}

// p = exp(x) for `count` values, with NaN kept as NaN (exp_log_probability maps it
// to 0, and the normalisation check must see it).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void exp_keeping_nan(const float* x, float* p, int64_t count) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t j = 0; j < count; ++j) {
    const float v = x[j];
    const float e = exp_log_probability(v);
    p[j] = v == v ? e : nan;
  }
}

}  // namespace

void probability_sums(const float* log_probs, float* sums, int64_t rows, int64_t classes) {
  // Blocks of rows small enough for their probabilities to stay in L1 between the
  // vectorised exp and the short per-row sums.
  const int64_t block = std::max<int64_t>(1, 4096 / classes);
#pragma omp parallel
  {
    std::vector<float> probs(block * classes);
#pragma omp for schedule(static)
    for (int64_t r0 = 0; r0 < rows; r0 += block) {
      const int64_t count = std::min(block, rows - r0);
      exp_keeping_nan(log_probs + r0 * classes, probs.data(), count * classes);
      for (int64_t r = 0; r < count; ++r) {
        float total = 0.0f;
        for (int64_t c = 0; c < classes; ++c) total += probs[r * classes + c];
        sums[r0 + r] = total;
      }
    }
  }
}

void entropies(const float* log_probs, float* entropy, float* conditional, int64_t points, int64_t samples,
               int64_t classes) {
  const int64_t count = samples * classes;
#pragma omp parallel
  {
    std::vector<float> probs(count);
    std::vector<double> mean(classes);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n) {
      const double plogp = exp_and_plogp(log_probs + n * count, probs.data(), count);
      for (int64_t c = 0; c < classes; ++c) mean[c] = 0.0;
      for (int64_t k = 0; k < samples; ++k)
        for (int64_t c = 0; c < classes; ++c) mean[c] += probs[k * classes + c];
      double h = 0.0;
      for (int64_t c = 0; c < classes; ++c) h += neg_xlogx(static_cast<float>(mean[c] / samples));
      entropy[n] = static_cast<float>(h);
      conditional[n] = static_cast<float>(-plogp / samples);
    }
  }
}

}  // namespace kbald::host
