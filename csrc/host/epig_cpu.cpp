#include <algorithm>
#include <vector>

#include "host_math.h"
#include "information_cpu.h"

namespace kbald::host {
namespace {

// Target columns are padded to whole blocks of kEpigBlockColumns, a multiple of every
// instruction set's two vectors.
constexpr int64_t kEpigBlockColumns = 32;
constexpr int64_t kEpigPoints = 4;

// Σ_j w_j Σ_c -J[c, j] log J[c, j] for one pool point p [K, C] against packed target
// columns s [K, padded] with weights w [padded], J[c, j] = mean_k p[k, c]·s[k, j], over
// one block of columns: two vectors of W floats. Column blocks in the outer loop keep a
// block's K rows in L1 while tiles of 4, 2 and 1 rows of J, held in registers over all
// of K, take every row once: per k, two vector loads and up to 4 broadcasts feed 8 FMAs.
template <int W, int64_t kRows>
[[gnu::always_inline]] inline double weighted_joint_rows(const float* p, const float* block, const float* weights,
                                                         int64_t padded, int64_t samples, int64_t classes,
                                                         int64_t c0, float inverse) {
  using F = typename VectorTypes<W>::F;
  const F* w = reinterpret_cast<const F*>(weights);
  F tile[kRows][2] = {};
  for (int64_t k = 0; k < samples; ++k) {
    const F* s = reinterpret_cast<const F*>(block + k * padded);
    const F s0 = s[0], s1 = s[1];
    for (int64_t r = 0; r < kRows; ++r) {
      const float a = p[k * classes + c0 + r];
      tile[r][0] += a * s0;
      tile[r][1] += a * s1;
    }
  }
  F terms0 = {}, terms1 = {};
  for (int64_t r = 0; r < kRows; ++r) {
    add_neg_xlogx(tile[r][0] * inverse, terms0);
    add_neg_xlogx(tile[r][1] * inverse, terms1);
  }
  return static_cast<double>(horizontal_sum(terms0 * w[0] + terms1 * w[1]));
}

// The same sum for `group` <= kEpigPoints pool points, probabilities [group, K, C],
// into h: a column block, once in L1, serves every point of the group before the
// next block is read, so a target matrix larger than the caches streams once per
// group rather than once per point.
template <int W>
[[gnu::always_inline]] inline void weighted_joint_entropies(const float* probs, int64_t group, const float* packed,
                                                            const float* weights, int64_t padded, int64_t samples,
                                                            int64_t classes, double* h) {
  const float inverse = 1.0f / static_cast<float>(samples);
  for (int64_t j = 0; j < padded; j += 2 * W) {
    const float* block = packed + j;
    const float* w = weights + j;
    for (int64_t q = 0; q < group; ++q) {
      const float* p = probs + q * samples * classes;
      int64_t c0 = 0;
      for (; c0 + 4 <= classes; c0 += 4)
        h[q] += weighted_joint_rows<W, 4>(p, block, w, padded, samples, classes, c0, inverse);
      if (c0 + 2 <= classes) {
        h[q] += weighted_joint_rows<W, 2>(p, block, w, padded, samples, classes, c0, inverse);
        c0 += 2;
      }
      if (c0 < classes) h[q] += weighted_joint_rows<W, 1>(p, block, w, padded, samples, classes, c0, inverse);
    }
  }
}

#define KBALD_WEIGHTED_JOINT_ENTROPIES(isa, attributes)                                                       \
  attributes void weighted_joint_entropies_##isa(const float* probs, int64_t group, const float* packed,     \
                                                 const float* weights, int64_t padded, int64_t samples,      \
                                                 int64_t classes, double* h) {                               \
    weighted_joint_entropies<kVectorWidth<HostIsa::isa>>(probs, group, packed, weights, padded, samples,      \
                                                         classes, h);                                        \
  }
KBALD_FOR_EACH_HOST_ISA(KBALD_WEIGHTED_JOINT_ENTROPIES)
#undef KBALD_WEIGHTED_JOINT_ENTROPIES

}  // namespace

template <typename T>
void epig(const LogProbs<T>& log_probs, const float* entropy, const float* target_log_probs,
          const float* target_entropy, const float* weights, int64_t targets, float* out, int64_t points,
          int64_t samples, int64_t classes) {
  // Every target at once: their probabilities packed as one matrix [K, T·C] (column
  // t·C + d, zero columns up to whole blocks), so vector lanes hold real columns
  // whatever C is, and each column carries its target's weight, so
  // Σ_t v_t·H[Y_n, Y_t] = Σ_j w_j Σ_c -J[c, j] log J[c, j] needs no per-target sums.
  const int64_t columns = targets * classes;
  const int64_t padded = (columns + kEpigBlockColumns - 1) / kEpigBlockColumns * kEpigBlockColumns;
  std::vector<float> packed(samples * padded, 0.0f);
  std::vector<float> column_weights(padded, 0.0f);
  double target_term = 0.0;  // Σ_t v_t·H[Y_t]
  for (int64_t t = 0; t < targets; ++t) {
    target_term += static_cast<double>(weights[t]) * target_entropy[t];
    for (int64_t d = 0; d < classes; ++d) column_weights[t * classes + d] = weights[t];
    for (int64_t k = 0; k < samples; ++k)
      for (int64_t d = 0; d < classes; ++d)
        packed[k * padded + t * classes + d] = exp_log_probability(target_log_probs[(t * samples + k) * classes + d]);
  }
  const int64_t count = samples * classes;
  const auto weighted_joint_entropies_at =
      for_host_isa(weighted_joint_entropies_kX86_64_V4, weighted_joint_entropies_kX86_64_V3,
                   weighted_joint_entropies_kBaseline);
#pragma omp parallel
  {
    std::vector<float> values(count), probs(kEpigPoints * count);
#pragma omp for schedule(static)
    for (int64_t n0 = 0; n0 < points; n0 += kEpigPoints) {
      const int64_t group = std::min(kEpigPoints, points - n0);
      for (int64_t q = 0; q < group; ++q)
        exp_keeping_nan(point_log_probs(log_probs, n0 + q, samples, classes, values.data()), probs.data() + q * count,
                        count);
      double joint[kEpigPoints] = {};
      weighted_joint_entropies_at(probs.data(), group, packed.data(), column_weights.data(), padded, samples,
                                  classes, joint);
      for (int64_t q = 0; q < group; ++q) out[n0 + q] = static_cast<float>(entropy[n0 + q] + target_term - joint[q]);
    }
  }
}

#define KBALD_INSTANTIATE(T) \
  template void epig<T>(const LogProbs<T>&, const float*, const float*, const float*, const float*, int64_t, \
                        float*, int64_t, int64_t, int64_t);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
