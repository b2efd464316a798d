#include "information_cpu.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "kbald/joint_entropy_math.h"

namespace kbald::host {
namespace {

// The hot loops are compiled for AVX-512 and AVX2 as well and chosen at load time:
// the install must run on any x86-64. OpenMP's outlined loop bodies do not inherit
// the attribute, so each parallel loop calls a cloned function for its work.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KBALD_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KBALD_CPU_CLONES
#endif

// e^x for a log-probability x <= 0 (a little above 0 from rounding is fine; -inf
// gives 0), with no call or table so the loop vectorises (std::exp does not without
// -ffast-math). x = n·ln2 + r, |r| <= ln2/2; the degree-7 Taylor series of e^r
// leaves a relative error below 1e-8 before float rounding. Below -87 the result
// is under the smallest normal float and is returned as 0; above 88 it is e^88, far
// from any normalised row.
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
KBALD_CPU_CLONES
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
KBALD_CPU_CLONES
void exp_keeping_nan(const float* x, float* p, int64_t count) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t j = 0; j < count; ++j) {
    const float v = x[j];
    const float e = exp_log_probability(v);
    p[j] = v == v ? e : nan;
  }
}

// p = exp(x) for one point's K·C log-probabilities (vectorised).
KBALD_CPU_CLONES
void exp_probs(const float* x, float* p, int64_t count) {
  for (int64_t j = 0; j < count; ++j) p[j] = exp_log_probability(x[j]);
}

// 16 floats as one value: GCC lowers it to one AVX-512 register, two AVX2 or four SSE
// registers per clone, so the tile below stays in registers on every instruction set.
// aligned(4): loads from any float address.
typedef float Lanes __attribute__((vector_size(64), aligned(4)));
constexpr int64_t kLanesPerVector = 16;

// H of the joint J[c, d] = mean_k p[k, c]·s[k, d] of one pool point p [K, C] and the
// pick s, given padded to [K, 16·kVectors] with zero columns (which add -0·log 0 = 0).
// A tile of kRows rows of J lives in registers over all of K: per k, kVectors loads
// of s and kRows·kVectors independent vector FMAs (rows past C multiply by 0).
// always_inline: GCC does not otherwise inline it into the per-instruction-set clones.
template <int64_t kVectors>
[[gnu::always_inline]] inline float pair_joint_entropy(const float* p, const float* pick, int64_t samples,
                                                       int64_t classes) {
  constexpr int64_t kRows = kVectors >= 8 ? 1 : 8 / kVectors;
  constexpr int64_t kPadded = kVectors * kLanesPerVector;
  const float inverse = 1.0f / static_cast<float>(samples);
  // Each row's terms sum in float, the rows in double: up to 128² terms would
  // otherwise lose digits that the MI, a small difference of entropies, needs.
  double h = 0.0;
  for (int64_t c0 = 0; c0 < classes; c0 += kRows) {
    Lanes tile[kRows][kVectors] = {};
    for (int64_t k = 0; k < samples; ++k) {
      const Lanes* s = reinterpret_cast<const Lanes*>(pick + k * kPadded);
      for (int64_t r = 0; r < kRows; ++r) {
        const float a = c0 + r < classes ? p[k * classes + c0 + r] : 0.0f;
        for (int64_t v = 0; v < kVectors; ++v) tile[r][v] += a * s[v];
      }
    }
    for (int64_t r = 0; r < kRows; ++r) {
      float row = 0.0f;
      for (int64_t v = 0; v < kVectors; ++v)
        for (int64_t l = 0; l < kLanesPerVector; ++l) row += neg_xlogx(tile[r][v][l] * inverse);
      h += row;
    }
  }
  return static_cast<float>(h);
}

// The register-row widths, each cloned per instruction set.
KBALD_CPU_CLONES float pair_joint_entropy_16(const float* p, const float* pick, int64_t samples, int64_t classes) {
  return pair_joint_entropy<1>(p, pick, samples, classes);
}
KBALD_CPU_CLONES float pair_joint_entropy_32(const float* p, const float* pick, int64_t samples, int64_t classes) {
  return pair_joint_entropy<2>(p, pick, samples, classes);
}
KBALD_CPU_CLONES float pair_joint_entropy_64(const float* p, const float* pick, int64_t samples, int64_t classes) {
  return pair_joint_entropy<4>(p, pick, samples, classes);
}
KBALD_CPU_CLONES float pair_joint_entropy_128(const float* p, const float* pick, int64_t samples, int64_t classes) {
  return pair_joint_entropy<8>(p, pick, samples, classes);
}

using PairJointEntropy = float (*)(const float*, const float*, int64_t, int64_t);

void mutual_information_pass(PairJointEntropy joint_entropy, const float* log_probs, const float* entropy,
                             const float* pick_probs, float pick_entropy, float* out, int64_t points,
                             int64_t samples, int64_t classes) {
  const int64_t count = samples * classes;
#pragma omp parallel
  {
    std::vector<float> probs(count);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n) {
      exp_probs(log_probs + n * count, probs.data(), count);
      out[n] = entropy[n] + pick_entropy - joint_entropy(probs.data(), pick_probs, samples, classes);
    }
  }
}

}  // namespace

void mutual_information_with_pick(const float* log_probs, const float* entropy, int64_t pick, float* out,
                                  int64_t points, int64_t samples, int64_t classes) {
  // Class paddings of 16, 32, 64 and 128 lanes cover C <= 128 (the binding refuses more).
  const int64_t padded = classes <= 16 ? 16 : classes <= 32 ? 32 : classes <= 64 ? 64 : 128;
  const int64_t count = samples * classes;
  std::vector<float> pick_probs(samples * padded, 0.0f);
  for (int64_t k = 0; k < samples; ++k)
    for (int64_t c = 0; c < classes; ++c)
      pick_probs[k * padded + c] = exp_log_probability(log_probs[pick * count + k * classes + c]);
  const float pick_entropy = entropy[pick];
  const PairJointEntropy joint_entropy = padded == 16   ? pair_joint_entropy_16
                                         : padded == 32 ? pair_joint_entropy_32
                                         : padded == 64 ? pair_joint_entropy_64
                                                        : pair_joint_entropy_128;
  mutual_information_pass(joint_entropy, log_probs, entropy, pick_probs.data(), pick_entropy, out, points, samples,
                          classes);
}

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
