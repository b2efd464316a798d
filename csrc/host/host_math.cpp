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

KBALD_CPU_CLONES void widen(const Half* x, float* out, int64_t count) {
  for (int64_t j = 0; j < count; ++j) out[j] = to_float(x[j]);
}

KBALD_CPU_CLONES void widen(const BFloat16* x, float* out, int64_t count) {
  for (int64_t j = 0; j < count; ++j) out[j] = to_float(x[j]);
}

// The register-row widths, each cloned per instruction set (the column count is the width's).
#define KBALD_PAIR_JOINT_ENTROPY(width, vectors)                                                            \
  KBALD_CPU_CLONES float pair_joint_entropy_##width(const float* p, const float* pick, int64_t samples,     \
                                                    int64_t classes, int64_t) {                             \
    return static_cast<float>(pair_joint_entropy_columns<vectors>(p, pick, width, samples, classes));       \
  }
KBALD_PAIR_JOINT_ENTROPY(16, 1)
KBALD_PAIR_JOINT_ENTROPY(32, 2)
KBALD_PAIR_JOINT_ENTROPY(64, 4)
KBALD_PAIR_JOINT_ENTROPY(128, 8)
#undef KBALD_PAIR_JOINT_ENTROPY

KBALD_CPU_CLONES float pair_joint_entropy_wide(const float* p, const float* pick, int64_t samples, int64_t classes,
                                          int64_t columns) {
  const int64_t stride = padded_classes(columns);
  double h = 0.0;
  for (int64_t d0 = 0; d0 < stride; d0 += 128)
    h += pair_joint_entropy_columns<8>(p, pick + d0, stride, samples, classes);
  return static_cast<float>(h);
}

}  // namespace kbald::host
