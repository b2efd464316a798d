#include "host_math.h"

namespace kbald::host {

KBALD_CPU_CLONES
void exp_keeping_nan(const float* x, float* p, int64_t count) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t j = 0; j < count; ++j) {
    const float v = x[j];
    const float e = exp_log_probability(v);
    p[j] = v == v ? e : nan;
  }
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

}  // namespace kbald::host
