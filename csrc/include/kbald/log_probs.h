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

// What exp_of_log_probability below needs of a float type beyond its arithmetic: its
// bits as an integer of its shape and back, and the lesser (greater) of a value and a
// limit, the limit where the value is NaN. Specialised for float here (host and device:
// the bits, and selects) and for the host's 16-, 8- and 4-lane vectors in host_math.h,
// where min and max are one instruction each and a comparison with a select two, so
// the exponential is one text for both. kFusesMultiplyAdd: the type's a·b + c is one
// fused multiply-add, rounded once (not the baseline x86-64 build's, nor float's text,
// which compiles there too). kScalesExactly: it has an instruction for p·2^n that
// underflows to 0 and overflows to inf by itself (AVX-512's scalef), scale(p, n), and
// at_least(x, limit): the greater of the two, NaN kept as NaN.
template <typename F>
struct FloatOps;

template <>
struct FloatOps<float> {
  using Int = int32_t;
  static constexpr bool kFusesMultiplyAdd = false;
  static constexpr bool kScalesExactly = false;
  KBALD_HOST_DEVICE static Int bits(float x) { return float_bits(x); }
  KBALD_HOST_DEVICE static float from_bits(Int bits) { return float_from_bits(bits); }
  // bits << 23 without the undefined shift of a negative int.
  KBALD_HOST_DEVICE static Int to_exponent(Int bits) { return static_cast<Int>(static_cast<uint32_t>(bits) << 23); }
  KBALD_HOST_DEVICE static float lesser(float x, float limit) { return x < limit ? x : limit; }
  KBALD_HOST_DEVICE static float greater(float x, float limit) { return x > limit ? x : limit; }
};

// The lowest log-probability given a nonzero probability: e^-86.5 = 2.8e-38 is the
// smallest power-of-two scaling the exponent add below keeps normal; under it the
// probability is 0 (its share of any sum or of -p·log p is below 1e-35).
constexpr float kLowestLogProbability = -86.5f;

// Where the exponential clamps its input from above: e^88 is still a finite float, and
// far past any normalisation bound.
constexpr float kHighestLogProbability = 88.0f;

// Where an exponential that scales exactly holds x from below: e^-150 is 0 in float
// (e^x underflows to 0 below -103.98), and -inf never reaches the reduction, where
// -inf - (-inf)·ln2 would be NaN.
constexpr float kUnderflowLogProbability = -150.0f;

// x held to [kLowestLogProbability, kHighestLogProbability], NaN taken to the top, or,
// where the type scales exactly, held from below at kUnderflowLogProbability only, NaN
// kept: the value the exponential below works on, and the x of a p·x that must be 0,
// not 0·(-inf), where p is 0.
template <typename F>
KBALD_HOST_DEVICE_INLINED F clamped_log_probability(F x) {
  using Ops = FloatOps<F>;
  if constexpr (Ops::kScalesExactly) {
    return Ops::at_least(x, kUnderflowLogProbability);
  } else {
    return Ops::greater(Ops::lesser(x, kHighestLogProbability), kLowestLogProbability);
  }
}

// e^x for a log-probability x (-inf gives 0; a little above 0 from rounding is fine),
// with no call or table, so host loops vectorise (std::exp does not without
// -ffast-math) and the device runs the same arithmetic. x = n·ln2 + r, |r| <= ln2/2:
// with ln2 in two parts, so r is exact to float rounding with or without a fused
// multiply-add; with one, in one part (x - n·ln2 exact before its one rounding; ln2 as
// a float is 1.9e-9 off, |n|·1.9e-9 ≈ |x|·2.8e-9 of relative error, where x as a float
// is already |x|·6e-8 from the number it stands for). e^r = 1 + r + r²·(a2 + a3·r +
// a4·r² + a5·r³), the minimax relative fit with the first two terms exact (e^0 = 1
// exactly), whose truncation error is 1.05e-7. 2^n is added to the exponent's bits,
// which the round-to-nearest trick leaves in the low bits of the rounded value, or,
// where the type scales exactly, multiplied in by that instruction. Measured over every
// float in [-86.5, 0] against float64 (python_tests/test_exponential.py): relative
// error below kExpRelativeError + |x|·kExpRelativeErrorPerUnit. By the bits, below
// -86.5 the result is 0, and above 88 (invalid input), and for NaN, it is e^88: huge,
// so a row holding one fails any normalisation bound. Scaled exactly, it is e^x down
// through the subnormals to 0 at -103.98, inf above 88.72, and NaN for NaN and +inf:
// a row holding one fails too.
constexpr double kExpRelativeError = 2.5e-7;
constexpr double kExpRelativeErrorPerUnit = 2.8e-9;

template <typename F>
KBALD_HOST_DEVICE_INLINED F exp_of_log_probability(F x) {
  using Ops = FloatOps<F>;
  const F clamped = clamped_log_probability(x);
  // Round to nearest by the 1.5·2^23 trick: n sits in the low bits of `shifted`.
  const F shifted = clamped * 1.44269504088896341f + 12582912.0f;
  const F n = shifted - 12582912.0f;
  const F r = Ops::kFusesMultiplyAdd ? clamped - n * 0.693147180559945309f
                                     : (clamped - n * 0.693145751953125f) - n * 1.42860682030941723e-06f;
  const F poly =
      1.0f + r * (1.0f + r * (0.49999232f + r * (0.16667115f + r * (0.04189011f + r * 0.00831251f))));
  if constexpr (Ops::kScalesExactly) {
    return Ops::scale(poly, n);
  } else {
    const F scaled = Ops::from_bits(Ops::bits(poly) + Ops::to_exponent(Ops::bits(shifted)));
    return x < kLowestLogProbability ? F{} : scaled;
  }
}

KBALD_HOST_DEVICE float exp_log_probability(float x) { return exp_of_log_probability(x); }

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
