#include <algorithm>

#include "host_math.h"
#include "information_cpu.h"

namespace kbald::host {

template <typename T>
void pairwise_mutual_information(const LogProbs<T>& a, const float* entropy_a, const LogProbs<T>& b,
                                 const float* entropy_b, float* out, int64_t points_a, int64_t points_b,
                                 int64_t samples, int64_t classes) {
  const int64_t padded = padded_classes(classes);
  const PairJointEntropy joint_entropy = pair_joint_entropy_for(padded);
  // Rows of b a block: its padded probabilities (block·K·padded floats) stay in L2.
  const int64_t block = std::max<int64_t>(1, (256 * 1024) / (samples * padded * 4));
  for (int64_t m0 = 0; m0 < points_b; m0 += block) {
    const int64_t rows = std::min(block, points_b - m0);
    const std::vector<float> probs = padded_probs(
        [&](int64_t r, int64_t k, int64_t c) { return exp_log_probability(b(m0 + r, k, c)); }, rows, samples, classes,
        padded);
    for_each_point_probs(a, points_a, samples, classes, [&](int64_t n, const float* p) {
      for (int64_t r = 0; r < rows; ++r) {
        const float joint = joint_entropy(p, probs.data() + r * samples * padded, samples, classes, classes);
        out[n * points_b + m0 + r] = entropy_a[n] + entropy_b[m0 + r] - joint;
      }
    });
  }
}

namespace {

// Σ_{c,d} -J log J of one point of a against `columns` points of b (a multiple of
// 16), one to a lane of vectors of W floats: `joints` holds its C rows of C·columns
// means, column d·columns + m for point m, so each pair's C² terms add up in its own
// lane: C at a time in float, those sums in double (as the pair pass adds its tiles).
template <int W>
[[gnu::always_inline]] inline void joint_entropies_of_row(const float* joints, int64_t columns, int64_t classes,
                                                          float* out) {
  using F = typename VectorTypes<W>::F;
  typedef double DoubleLanes __attribute__((vector_size(8 * W)));
  for (int64_t m = 0; m < columns; m += W) {
    DoubleLanes total = {};
    for (int64_t c = 0; c < classes; ++c) {
      F terms = {};
      for (int64_t d = 0; d < classes; ++d)
        add_neg_xlogx(*reinterpret_cast<const F*>(joints + (c * classes + d) * columns + m), terms);
      total += __builtin_convertvector(terms, DoubleLanes);
    }
    *reinterpret_cast<F*>(out + m) = __builtin_convertvector(total, F);
  }
}

#define KBALD_JOINT_ENTROPIES_OF_ROW(isa, attributes)                                                   \
  attributes void joint_entropies_of_row_##isa(const float* joints, int64_t columns, int64_t classes, \
                                               float* out) {                                          \
    joint_entropies_of_row<kVectorWidth<HostIsa::isa>>(joints, columns, classes, out);                \
  }
KBALD_FOR_EACH_HOST_ISA(KBALD_JOINT_ENTROPIES_OF_ROW)
#undef KBALD_JOINT_ENTROPIES_OF_ROW

}  // namespace

void joint_entropies(const float* joints, float* out, int64_t rows, int64_t columns, int64_t classes) {
  const auto joint_entropies_of_row_at = for_host_isa(
      joint_entropies_of_row_kX86_64_V4, joint_entropies_of_row_kX86_64_V3, joint_entropies_of_row_kBaseline);
#pragma omp parallel for schedule(static) if (rows * columns * classes * classes > (1 << 16))
  for (int64_t n = 0; n < rows; ++n)
    joint_entropies_of_row_at(joints + n * classes * classes * columns, columns, classes, out + n * columns);
}

#define KBALD_INSTANTIATE(T) \
  template void pairwise_mutual_information<T>(const LogProbs<T>&, const float*, const LogProbs<T>&, const float*, \
                                               float*, int64_t, int64_t, int64_t, int64_t);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
