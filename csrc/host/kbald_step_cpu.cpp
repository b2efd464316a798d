#include "host_math.h"
#include "information_cpu.h"
#include "prefetch.h"

namespace kbald::host {

template <typename T>
void mutual_information_with_pick(const LogProbs<T>& log_probs, const float* entropy, int64_t pick, float* out,
                                  int64_t points, int64_t samples, int64_t classes) {
  const int64_t padded = padded_classes(classes);
  const std::vector<float> pick_probs = padded_probs(
      [&](int64_t, int64_t k, int64_t c) { return exp_log_probability(log_probs(pick, k, c)); }, 1, samples,
      classes, padded);
  const PairJointEntropy joint_entropy = pair_joint_entropy_for(padded);
  const float pick_entropy = entropy[pick];
  for_each_point_probs(log_probs, points, samples, classes, [&](int64_t n, const float* p) {
    out[n] = entropy[n] + pick_entropy - joint_entropy(p, pick_probs.data(), samples, classes, classes);
  });
}

void mutual_information_with_pick_of_probs(const float* probs, const float* entropy, int64_t pick, float* out,
                                           int64_t points, int64_t samples, int64_t classes) {
  const int64_t padded = padded_classes(classes), count = samples * classes;
  const std::vector<float> pick_probs = padded_probs(
      [&](int64_t, int64_t k, int64_t c) { return probs[pick * count + k * classes + c]; }, 1, samples, classes,
      padded);
  const PairJointEntropy joint_entropy = pair_joint_entropy_for(padded);
  const float pick_entropy = entropy[pick];
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < points; ++n) {
    // The point after next asked for into L2, a line at a time, while this one's joint
    // runs: each point's probabilities are read once a step, and the hardware's own
    // prefetch left the step waiting on them (2-BALD batch 10, N=60 000, K=100, C=10:
    // 310 -> 250 ms).
    if (n + 2 < points) prefetch_into_l2(probs + (n + 2) * count, count * static_cast<int64_t>(sizeof(float)));
    out[n] = entropy[n] + pick_entropy - joint_entropy(probs + n * count, pick_probs.data(), samples, classes, classes);
  }
}

template <typename T>
void joint_entropy_with_columns(const LogProbs<T>& log_probs, const float* columns, int64_t width, float* out,
                                int64_t points, int64_t samples, int64_t classes) {
  const int64_t padded = padded_classes(width);
  const std::vector<float> padded_columns = padded_probs(
      [&](int64_t, int64_t k, int64_t d) { return columns[k * width + d]; }, 1, samples, width, padded);
  const PairJointEntropy joint_entropy = pair_joint_entropy_for(padded);
  for_each_point_probs(log_probs, points, samples, classes, [&](int64_t n, const float* p) {
    out[n] = joint_entropy(p, padded_columns.data(), samples, classes, width);
  });
}

#define KBALD_INSTANTIATE(T) \
  template void mutual_information_with_pick<T>(const LogProbs<T>&, const float*, int64_t, float*, int64_t, \
                                                int64_t, int64_t); \
  template void joint_entropy_with_columns<T>(const LogProbs<T>&, const float*, int64_t, float*, int64_t, int64_t, \
                                              int64_t);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
