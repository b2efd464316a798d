// The vector-lane machinery the host twins share: exponentiating one point, the
// vector types of each instruction set's width, -q·log q on whole vectors, the pair
// joint entropy of one pool point against one padded row, and the OpenMP loop over
// points. Templates and inline helpers live here; the functions compiled per
// instruction set are defined once, in host_math.cpp.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_clones.h"
#if KBALD_X86_GCC
#include <immintrin.h>
#endif
#include "kbald/joint_entropy_math.h"
#include "kbald/log_probs.h"

namespace kbald::host {

// W floats as one value, W = 16, 8 or 4: one AVX-512, AVX2 or SSE register. F and I
// are aligned(4), so they load from any float address; the Values types drop that
// attribute, which template arguments do not keep (GCC warns); Short and
// UnsignedShort hold W stored 16-bit values.
template <int W>
struct VectorTypes;

#define KBALD_VECTOR_TYPES(W)                                                           \
  template <>                                                                           \
  struct VectorTypes<W> {                                                               \
    typedef float F __attribute__((vector_size(4 * W), aligned(4)));                    \
    typedef int32_t I __attribute__((vector_size(4 * W), aligned(4)));                  \
    typedef float Values __attribute__((vector_size(4 * W)));                           \
    typedef int32_t IntValues __attribute__((vector_size(4 * W)));                      \
    typedef uint32_t UnsignedValues __attribute__((vector_size(4 * W)));                \
    typedef int16_t Short __attribute__((vector_size(2 * W), aligned(2)));              \
    typedef uint16_t UnsignedShort __attribute__((vector_size(2 * W), aligned(2)));     \
  };
KBALD_VECTOR_TYPES(16)
KBALD_VECTOR_TYPES(8)
KBALD_VECTOR_TYPES(4)
#undef KBALD_VECTOR_TYPES

// The lane count of a float vector type.
template <typename F>
constexpr int kWidthOf = static_cast<int>(sizeof(F) / sizeof(float));

// The vector width the loops compiled per instruction set run at: the registers'
// (SSE's, or NEON's, for the baseline). GCC 12 lowers a comparison or select of a
// vector wider than the target's registers to one scalar operation a lane and moves
// such vectors through memory (the 16-float one pass held to AVX2 code ran 10-15x
// slower than on AVX-512), so no loop there uses a wider one.
template <HostIsa kIsa>
constexpr int kVectorWidth = kIsa == HostIsa::kX86_64_V4 ? 16 : kIsa == HostIsa::kX86_64_V3 ? 8 : 4;

// DEFINE(isa, attributes) once per instruction set: the entry points of a loop
// compiled per set (cpu_clones.h).
#define KBALD_FOR_EACH_HOST_ISA(DEFINE)      \
  DEFINE(kX86_64_V4, KBALD_FOR_X86_64_V4)   \
  DEFINE(kX86_64_V3, KBALD_FOR_X86_64_V3)   \
  DEFINE(kBaseline, KBALD_FOR_BASELINE)

// The one of three values (entry points) for the set the loops run at now.
template <typename Entry>
Entry for_host_isa(Entry x86_64_v4, Entry x86_64_v3, Entry baseline) {
  const HostIsa isa = host_isa();
  return isa == HostIsa::kX86_64_V4 ? x86_64_v4 : isa == HostIsa::kX86_64_V3 ? x86_64_v3 : baseline;
}

// A constant lane order {map(0), …, map(W - 1)} of vector type I, for shuffles.
template <typename I, typename Map, std::size_t... i>
constexpr I lane_order(Map map, std::index_sequence<i...>) {
  return I{map(static_cast<int>(i))...};
}

// min and max of W lanes against a limit for the exponential (FloatOps, kbald/
// log_probs.h): x86's return the second operand where the first is NaN, so min(x,
// limit) is exactly x < limit ? x : limit, and max likewise, in one instruction where a
// comparison and a select take two (the one pass on an AMD EPYC, whole call: 5-12 %
// less time at C = 10 to 1 000, float32 and float16). Not always_inline: an intrinsic
// of a target inlines only into code of that target, which the entry points compiled
// per instruction set are (they flatten every call).
template <typename F>
[[gnu::always_inline]] inline F lesser_lanes(F x, float limit) {
  return x < limit ? x : F{} + limit;
}
template <typename F>
[[gnu::always_inline]] inline F greater_lanes(F x, float limit) {
  return x > limit ? x : F{} + limit;
}

#if KBALD_X86_GCC
using Floats16 = VectorTypes<16>::Values;
using Floats8 = VectorTypes<8>::Values;
using Floats4 = VectorTypes<4>::Values;

[[gnu::target("avx512f")]] inline Floats16 lesser_lanes(Floats16 x, float limit) {
  return (Floats16)_mm512_min_ps((__m512)x, _mm512_set1_ps(limit));
}
[[gnu::target("avx512f")]] inline Floats16 greater_lanes(Floats16 x, float limit) {
  return (Floats16)_mm512_max_ps((__m512)x, _mm512_set1_ps(limit));
}
[[gnu::target("avx")]] inline Floats8 lesser_lanes(Floats8 x, float limit) {
  return (Floats8)_mm256_min_ps((__m256)x, _mm256_set1_ps(limit));
}
[[gnu::target("avx")]] inline Floats8 greater_lanes(Floats8 x, float limit) {
  return (Floats8)_mm256_max_ps((__m256)x, _mm256_set1_ps(limit));
}
[[gnu::always_inline]] inline Floats4 lesser_lanes(Floats4 x, float limit) {
  return (Floats4)_mm_min_ps((__m128)x, _mm_set1_ps(limit));
}
[[gnu::always_inline]] inline Floats4 greater_lanes(Floats4 x, float limit) {
  return (Floats4)_mm_max_ps((__m128)x, _mm_set1_ps(limit));
}
// max returns its second operand where either is NaN: x's NaN is kept.
[[gnu::target("avx512f")]] inline Floats16 at_least_lanes(Floats16 x, float limit) {
  return (Floats16)_mm512_max_ps(_mm512_set1_ps(limit), (__m512)x);
}
[[gnu::target("avx512f")]] inline Floats16 scale_lanes(Floats16 p, Floats16 n) {
  return (Floats16)_mm512_scalef_ps((__m512)p, (__m512)n);
}
#endif

}  // namespace kbald::host

namespace kbald::host {

// FloatOps (kbald/log_probs.h) of W lanes. The loops at 16 and 8 lanes compile only
// for AVX-512 and AVX2, which fuse multiply-adds (kVectorWidth; the compiler contracts
// a - b·c into one, and test_exponential.py's bound at each set fails where it does
// not); those at 4 for the baseline too, which has none.
template <int W>
struct LaneOps {
  using Values = typename VectorTypes<W>::Values;
  using Int = typename VectorTypes<W>::IntValues;
  static constexpr bool kFusesMultiplyAdd = W > 4;
  static constexpr bool kScalesExactly = false;
  [[gnu::always_inline]] static Int bits(Values x) { return (Int)x; }
  [[gnu::always_inline]] static Values from_bits(Int bits) { return (Values)bits; }
  [[gnu::always_inline]] static Int to_exponent(Int bits) {
    return (Int)((typename VectorTypes<W>::UnsignedValues)bits << 23);
  }
  [[gnu::always_inline]] static Values lesser(Values x, float limit) { return lesser_lanes(x, limit); }
  [[gnu::always_inline]] static Values greater(Values x, float limit) { return greater_lanes(x, limit); }
};

}  // namespace kbald::host

template <>
struct kbald::FloatOps<kbald::host::VectorTypes<8>::Values> : kbald::host::LaneOps<8> {};
template <>
struct kbald::FloatOps<kbald::host::VectorTypes<4>::Values> : kbald::host::LaneOps<4> {};
#if KBALD_X86_GCC
// AVX-512 scales by 2^n in one instruction that also underflows and overflows, where
// the exponent's bits need a clamp from above, one from below and a select for 0. With
// the one-step reduction, the one pass on an AMD EPYC (Zen 4), host pass alone against
// the bits' form, interleaved (two runs, 21 and 31 pairs): 0.82-0.98x the time at
// float32, 0.79-0.88x at float16 (C = 10, 100, 1 000).
template <>
struct kbald::FloatOps<kbald::host::VectorTypes<16>::Values> : kbald::host::LaneOps<16> {
  static constexpr bool kScalesExactly = true;
  [[gnu::always_inline]] static Values at_least(Values x, float limit) {
    return kbald::host::at_least_lanes(x, limit);
  }
  [[gnu::always_inline]] static Values scale(Values p, Values n) { return kbald::host::scale_lanes(p, n); }
};
#else
template <>
struct kbald::FloatOps<kbald::host::VectorTypes<16>::Values> : kbald::host::LaneOps<16> {};
#endif

namespace kbald::host {

// The shared exponential (kbald/log_probs.h) on all lanes at once.
template <typename F>
[[gnu::always_inline]] inline F exp_lanes(F x) {
  return exp_of_log_probability<typename VectorTypes<kWidthOf<F>>::Values>(x);
}

// p = exp(x) for `count` values, with NaN kept as NaN (exp_log_probability maps it
// to e^88, and a caller that keeps these probabilities must see NaN as NaN).
void exp_keeping_nan(const float* x, float* p, int64_t count);

// `count` contiguous 16-bit values widened to float, cloned per instruction set: the
// bit conversion vectorises there, not in the baseline build of the callers' loops.
void widen(const Half* x, float* out, int64_t count);
void widen(const BFloat16* x, float* out, int64_t count);

// One point's K·C log-probabilities as contiguous floats: the pool's own row when it
// is already contiguous float32, otherwise widened into `buffer` (one point, in L1),
// so no copy of the pool is ever made.
template <typename T>
const float* point_log_probs(const LogProbs<T>& x, int64_t n, int64_t samples, int64_t classes, float* buffer) {
  if (x.stride_c == 1 && x.stride_k == classes) {
    if constexpr (std::is_same_v<T, float>) {
      return x.data + n * x.stride_n;
    } else {
      widen(x.data + n * x.stride_n, buffer, samples * classes);
      return buffer;
    }
  }
  for (int64_t k = 0; k < samples; ++k)
    for (int64_t c = 0; c < classes; ++c) buffer[k * classes + c] = x(n, k, c);
  return buffer;
}


// A vector's lanes folded by `combine` in halving shuffles (log2 W steps, not W - 1
// extracts). Functors, not lambdas: every call taking vectors must inline into its
// per-instruction-set clone (an out-of-line copy crosses their vector ABIs).
template <int s, typename F, typename Combine>
[[gnu::always_inline]] inline float horizontal_from(F v, Combine combine) {
  using I = typename VectorTypes<kWidthOf<F>>::IntValues;
  constexpr I kSwapped = lane_order<I>([](int i) { return i ^ s; }, std::make_index_sequence<kWidthOf<F>>{});
  v = combine(v, __builtin_shuffle(v, kSwapped));
  if constexpr (s > 1) {
    return horizontal_from<s / 2>(v, combine);
  } else {
    return v[0];
  }
}

template <typename F, typename Combine>
[[gnu::always_inline]] inline float horizontal(F v, Combine combine) {
  return horizontal_from<kWidthOf<F> / 2>(v, combine);
}

struct AddLanes {
  template <typename F>
  [[gnu::always_inline]] F operator()(F a, F b) const { return a + b; }
};
struct MaxLanes {
  template <typename F>
  [[gnu::always_inline]] F operator()(F a, F b) const { return a > b ? a : b; }
};

template <typename F>
[[gnu::always_inline]] inline float horizontal_sum(F v) { return horizontal(v, AddLanes{}); }
template <typename F>
[[gnu::always_inline]] inline float horizontal_max(F v) { return horizontal(v, MaxLanes{}); }

// terms += -q·log q lane by lane: neg_xlogx's arithmetic (log_unit_interval of
// max(q, smallest normal)) on a whole vector, so the epilogue runs in vector lanes.
// (Vector casts of equal size reinterpret the bits.)
template <typename F>
[[gnu::always_inline]] inline void add_neg_xlogx(F q, F& terms) {
  using I = typename VectorTypes<kWidthOf<F>>::I;
  const F smallest_normal = F{} + 1.17549435e-38f;
  const F clamped = q > smallest_normal ? q : smallest_normal;
  const I offset = (I)clamped - 0x3f3504f3;  // bits of √½
  const F m = (F)((offset & 0x007fffff) + 0x3f3504f3);
  const F s = (m - 1.0f) / (m + 1.0f);
  const F z = s * s;
  const F series = 1.0f + z * (1.0f / 3 + z * (1.0f / 5 + z * (1.0f / 7 + z * (1.0f / 9))));
  terms -= q * (__builtin_convertvector(offset >> 23, F) * 0.693147180559945309f + 2.0f * s * series);
}

// Σ over rows c0 .. c0+kRows-1 (all < C) of the joint J[c, d] = mean_k p[k, c]·s[k, d]
// of one pool point p [K, C] and W·kVectors columns of the pick s (rows `stride`
// floats apart, zero columns past C adding -0·log 0 = 0), of -J log J, on vectors of
// W floats (a width, not a vector type, is the template argument: a type argument
// loses its aligned(4), and loads through it would assume whole-vector alignment).
// The kRows × kVectors tile lives in registers over all of K: per k, kVectors loads
// of s and kRows·kVectors independent vector FMAs. The terms add up lane-wise (at
// most 8 to a lane), then across the lanes, in float; the caller adds tiles in double.
template <int W, int64_t kVectors, int64_t kRows>
[[gnu::always_inline]] inline float joint_rows_entropy(const float* p, const float* pick, int64_t stride,
                                                       int64_t samples, int64_t classes, int64_t c0, float inverse) {
  using F = typename VectorTypes<W>::F;
  F tile[kRows][kVectors] = {};
  for (int64_t k = 0; k < samples; ++k) {
    const F* s = reinterpret_cast<const F*>(pick + k * stride);
    for (int64_t r = 0; r < kRows; ++r) {
      const float a = p[k * classes + c0 + r];
      for (int64_t v = 0; v < kVectors; ++v) tile[r][v] += a * s[v];
    }
  }
  F terms = {};
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t v = 0; v < kVectors; ++v) add_neg_xlogx(tile[r][v] * inverse, terms);
  return horizontal_sum(terms);
}

// Σ -J log J over all C rows and those W·kVectors columns: tiles of kRows rows (8
// vectors of accumulators), then the rest in tiles of 4, 2 and 1, so no row past C
// is computed.
template <int W, int64_t kVectors>
[[gnu::always_inline]] inline double pair_joint_entropy_columns(const float* p, const float* pick, int64_t stride,
                                                                int64_t samples, int64_t classes) {
  constexpr int64_t kRows = kVectors >= 8 ? 1 : 8 / kVectors;
  const float inverse = 1.0f / static_cast<float>(samples);
  double h = 0.0;
  int64_t c0 = 0;
  for (; c0 + kRows <= classes; c0 += kRows)
    h += joint_rows_entropy<W, kVectors, kRows>(p, pick, stride, samples, classes, c0, inverse);
  if constexpr (kRows > 4) {
    if (c0 + 4 <= classes) {
      h += joint_rows_entropy<W, kVectors, 4>(p, pick, stride, samples, classes, c0, inverse);
      c0 += 4;
    }
  }
  if constexpr (kRows > 2) {
    if (c0 + 2 <= classes) {
      h += joint_rows_entropy<W, kVectors, 2>(p, pick, stride, samples, classes, c0, inverse);
      c0 += 2;
    }
  }
  if constexpr (kRows > 1) {
    if (c0 < classes) h += joint_rows_entropy<W, kVectors, 1>(p, pick, stride, samples, classes, c0, inverse);
  }
  return h;
}

// H(J) of one pool point p [K, C] against `columns` columns [K, padded_classes(columns)].
using PairJointEntropy = float (*)(const float*, const float*, int64_t, int64_t, int64_t);

// The pair joint entropy for a pick padded to `padded` = padded_classes(columns)
// columns, at the instruction set the loops run at (host_math.cpp): 16, 32, 64, 128
// columns in one register row of up to 8 vectors; wider ones (and 128 below 16-float
// vectors) in column blocks of 8 vectors (the pool point's K·C floats, re-read per
// block, stay in L1/L2).
PairJointEntropy pair_joint_entropy_for(int64_t padded);

// body(n, p) for every pool point n with its probabilities p = exp(x) [K, C] (NaN
// kept), OpenMP over points, each thread widening and exponentiating into its own
// one-point buffers.
template <typename T, typename Body>
void for_each_point_probs(const LogProbs<T>& log_probs, int64_t points, int64_t samples, int64_t classes,
                          Body body) {
  const int64_t count = samples * classes;
#pragma omp parallel
  {
    std::vector<float> values(count), probs(count);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n) {
      exp_keeping_nan(point_log_probs(log_probs, n, samples, classes, values.data()), probs.data(), count);
      body(n, probs.data());
    }
  }
}

// Class paddings of 16, 32, 64 and 128 lanes, and past 128 a multiple of 128.
inline int64_t padded_classes(int64_t classes) {
  return classes <= 16 ? 16 : classes <= 32 ? 32 : classes <= 64 ? 64 : (classes + 127) / 128 * 128;
}

// The probabilities read(r, k, c) of `rows` rows [K, C] into [rows, K, padded] with
// zero columns past C.
template <typename Read>
std::vector<float> padded_probs(Read read, int64_t rows, int64_t samples, int64_t classes, int64_t padded) {
  std::vector<float> probs(rows * samples * padded, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < samples; ++k)
      for (int64_t c = 0; c < classes; ++c) probs[(r * samples + k) * padded + c] = read(r, k, c);
  return probs;
}

}  // namespace kbald::host
