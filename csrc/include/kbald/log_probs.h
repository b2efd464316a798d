// Log-probabilities [N, K, C] read as the caller stored them: float32, float16 or
// bfloat16, any element strides. Each value is widened to float where it is used,
// so no kernel needs a converted or contiguous copy of the pool. Shared by the host
// C++ twins and the CUDA kernels.
#pragma once

#include <cstdint>

#include "kbald/entropy_math.h"

namespace kbald {

// 16-bit storage types; only their bits are read, so neither host nor device needs
// a half-precision type of its compiler.
struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

KBALD_HOST_DEVICE float to_float(float x) { return x; }

KBALD_HOST_DEVICE float to_float(BFloat16 x) { return float_from_bits(static_cast<int32_t>(x.bits) << 16); }

// Exponent and mantissa shifted into a float's fields read as 2^-112 of the half's
// value (a subnormal half becomes a subnormal float and scales the same way);
// infinities and NaN keep an all-ones exponent instead. Integer ops and one select,
// so loops over it vectorise.
KBALD_HOST_DEVICE float to_float(Half x) {
  const int32_t magnitude = x.bits & 0x7fff;
  const int32_t sign = static_cast<int32_t>(x.bits & 0x8000) << 16;
  const int32_t finite = float_bits(float_from_bits(magnitude << 13) * 0x1p112f);
  const int32_t special = (magnitude << 13) | 0x7f800000;
  return float_from_bits((magnitude >= 0x7c00 ? special : finite) | sign);
}

// e^x for a log-probability x <= 0 (a little above 0 from rounding is fine; -inf
// gives 0), with no call or table so host loops vectorise (std::exp does not without
// -ffast-math). x = n·ln2 + r, |r| <= ln2/2; the degree-7 Taylor series of e^r
// leaves a relative error below 1e-8 before float rounding. Below -87 the result is
// under the smallest normal float and is returned as 0; above 88 it is e^88, far
// from any normalised row. NaN gives 0: callers that validate look at x itself.
KBALD_HOST_DEVICE float exp_log_probability(float x) {
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

// Element type of a pool as the bindings name it.
enum class LogProbsType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// A read-only [N, K, C] view with element strides (64-bit: N·K·C may pass 2^31).
template <typename T>
struct LogProbs {
  const T* data;
  int64_t stride_n, stride_k, stride_c;

  KBALD_HOST_DEVICE float operator()(int64_t n, int64_t k, int64_t c) const {
    return to_float(data[n * stride_n + k * stride_k + c * stride_c]);
  }
};

// Calls fn(LogProbs<T>{...}) with T chosen by `type`: the one place a binding turns
// a dtype into a template argument. Returns false for an unknown type.
template <typename Fn>
bool visit_log_probs(std::uintptr_t data, int type, int64_t stride_n, int64_t stride_k, int64_t stride_c,
                     Fn&& fn) {
  switch (static_cast<LogProbsType>(type)) {
    case LogProbsType::kFloat32:
      fn(LogProbs<float>{reinterpret_cast<const float*>(data), stride_n, stride_k, stride_c});
      return true;
    case LogProbsType::kFloat16:
      fn(LogProbs<Half>{reinterpret_cast<const Half*>(data), stride_n, stride_k, stride_c});
      return true;
    case LogProbsType::kBFloat16:
      fn(LogProbs<BFloat16>{reinterpret_cast<const BFloat16*>(data), stride_n, stride_k, stride_c});
      return true;
  }
  return false;
}

}  // namespace kbald
