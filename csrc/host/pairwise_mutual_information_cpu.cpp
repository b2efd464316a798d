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

#define KBALD_INSTANTIATE(T) \
  template void pairwise_mutual_information<T>(const LogProbs<T>&, const float*, const LogProbs<T>&, const float*, \
                                               float*, int64_t, int64_t, int64_t, int64_t);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
