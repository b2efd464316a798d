#include "host_math.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace kbald::host {

namespace {

HostIsa best_host_isa() {
#if KBALD_X86_GCC
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return HostIsa::kX86_64_V4;
  if (__builtin_cpu_supports("x86-64-v3")) return HostIsa::kX86_64_V3;
#endif
  return HostIsa::kBaseline;
}

constexpr const char* kIsaNames[] = {"x86-64-v4", "x86-64-v3", "baseline"};

HostIsa capped(HostIsa asked) {
  static const HostIsa best = best_host_isa();
  return static_cast<int>(asked) > static_cast<int>(best) ? asked : best;  // lower levels have larger values
}

std::atomic<HostIsa>& current_isa() {
  static std::atomic<HostIsa> isa{[] {
    const char* asked = std::getenv("KBALD_HOST_ISA");
    if (asked == nullptr) return capped(HostIsa::kX86_64_V4);
    try {
      return capped(host_isa_named(asked));
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(std::string("KBALD_HOST_ISA: ") + error.what());
    }
  }()};
  return isa;
}

}  // namespace

HostIsa host_isa_named(const std::string& name) {
  for (int i = 0; i < 3; ++i)
    if (name == kIsaNames[i]) return static_cast<HostIsa>(i);
  throw std::invalid_argument("instruction set '" + name + "' is not one of x86-64-v4, x86-64-v3, baseline");
}

const char* host_isa_name(HostIsa isa) { return kIsaNames[static_cast<int>(isa)]; }

HostIsa host_isa() { return current_isa().load(std::memory_order_relaxed); }

HostIsa cap_host_isa(HostIsa asked) {
  const HostIsa isa = capped(asked);
  current_isa().store(isa, std::memory_order_relaxed);
  return isa;
}

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

namespace {

// The pair joint entropy against a pick padded to kPadded columns (0: any multiple of
// 128, from `columns`) on vectors of W floats: the whole row in registers up to 8
// vectors, else blocks of 8.
template <int W, int64_t kPadded>
[[gnu::always_inline]] inline float pair_joint_entropy_padded(const float* p, const float* pick, int64_t samples,
                                                              int64_t classes, int64_t columns) {
  constexpr int64_t kBlock = 8 * W;
  if constexpr (kPadded != 0 && kPadded <= kBlock) {
    return static_cast<float>(pair_joint_entropy_columns<W, kPadded / W>(p, pick, kPadded, samples, classes));
  } else {
    const int64_t stride = kPadded != 0 ? kPadded : padded_classes(columns);
    double h = 0.0;
    for (int64_t d0 = 0; d0 < stride; d0 += kBlock)
      h += pair_joint_entropy_columns<W, 8>(p, pick + d0, stride, samples, classes);
    return static_cast<float>(h);
  }
}

#define KBALD_PAIR_JOINT_ENTROPY(isa, attributes)                                                                 \
  template <int64_t kPadded>                                                                                     \
  attributes float pair_joint_entropy_##isa(const float* p, const float* pick, int64_t samples, int64_t classes, \
                                            int64_t columns) {                                                   \
    return pair_joint_entropy_padded<kVectorWidth<HostIsa::isa>, kPadded>(p, pick, samples, classes, columns);  \
  }
KBALD_FOR_EACH_HOST_ISA(KBALD_PAIR_JOINT_ENTROPY)
#undef KBALD_PAIR_JOINT_ENTROPY

template <int64_t kPadded>
PairJointEntropy pair_joint_entropy_at() {
  return for_host_isa<PairJointEntropy>(pair_joint_entropy_kX86_64_V4<kPadded>,
                                        pair_joint_entropy_kX86_64_V3<kPadded>,
                                        pair_joint_entropy_kBaseline<kPadded>);
}

}  // namespace

PairJointEntropy pair_joint_entropy_for(int64_t padded) {
  return padded == 16    ? pair_joint_entropy_at<16>()
         : padded == 32  ? pair_joint_entropy_at<32>()
         : padded == 64  ? pair_joint_entropy_at<64>()
         : padded == 128 ? pair_joint_entropy_at<128>()
                         : pair_joint_entropy_at<0>();
}

}  // namespace kbald::host
