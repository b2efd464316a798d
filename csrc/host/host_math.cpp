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
