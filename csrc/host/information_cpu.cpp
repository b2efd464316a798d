#include "information_cpu.h"

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "cpu_clones.h"
#include "kbald/joint_entropy_math.h"

namespace kbald::host {
namespace {


// One point's K·C log-probabilities: p into `probs`, Σ p·log p as the result, and
// the count of NaN values into `nans` (exp_log_probability maps NaN to 0, and input
// validation must see it). The log-probability is clamped to -87 in the product so
// that p = 0 contributes an exact 0, not 0·(-inf). The simd reduction lets the sums
// run in vector lanes (a fixed order for each instruction set); without OpenMP the
// loop is scalar and gives the same values to rounding.
KBALD_CPU_CLONES
float exp_and_plogp(const float* x, float* probs, int64_t count, int* nans) {
  float total = 0.0f;
  int nan_count = 0;
#pragma omp simd reduction(+ : total, nan_count)
  for (int64_t j = 0; j < count; ++j) {
    const float v = x[j];
    const float p = exp_log_probability(v);
    probs[j] = p;
    total += p * (v > -87.0f ? v : -87.0f);
    nan_count += v != v;
  }
  *nans = nan_count;
  return total;
}

// p = exp(x) for `count` values, with NaN kept as NaN (exp_log_probability maps it
// to 0, and the normalisation check must see it; validated input has none).
KBALD_CPU_CLONES
void exp_keeping_nan(const float* x, float* p, int64_t count) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t j = 0; j < count; ++j) {
    const float v = x[j];
    const float e = exp_log_probability(v);
    p[j] = v == v ? e : nan;
  }
}

// One point's K·C log-probabilities as contiguous floats: the pool's own row when it
// is already contiguous float32, otherwise widened into `buffer` (one point, in L1),
// so no copy of the pool is ever made.
template <typename T>
const float* point_log_probs(const LogProbs<T>& x, int64_t n, int64_t samples, int64_t classes, float* buffer) {
  if constexpr (std::is_same_v<T, float>) {
    if (x.stride_c == 1 && x.stride_k == classes) return x.data + n * x.stride_n;
  }
  for (int64_t k = 0; k < samples; ++k)
    for (int64_t c = 0; c < classes; ++c) buffer[k * classes + c] = x(n, k, c);
  return buffer;
}

// 16 floats as one value: GCC lowers it to one AVX-512 register, two AVX2 or four SSE
// registers per clone, so the tile below stays in registers on every instruction set.
// aligned(4): loads from any float address.
typedef float Lanes __attribute__((vector_size(64), aligned(4)));
constexpr int64_t kLanesPerVector = 16;

// The sum of a vector's lanes by halving shuffles (4 shuffle-adds, not 15 extracts).
[[gnu::always_inline]] inline float horizontal_sum(Lanes v) {
  typedef int32_t Order __attribute__((vector_size(64)));
  v += __builtin_shuffle(v, Order{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
  v += __builtin_shuffle(v, Order{4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11});
  v += __builtin_shuffle(v, Order{2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13});
  v += __builtin_shuffle(v, Order{1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14});
  return v[0];
}

// Σ_k p[k, c] into `column` and the number of rows k whose Σ_c p lies outside
// [low, high] (NaN was counted before), for one point's probabilities [K, C],
// C <= 16·kVectors, read 16 classes a vector with the column sums held in registers.
// A row's vectors run past C into the next row (or into the zeros `probs` keeps
// after K·C); `masks[v]` zeroes those lanes.
template <int64_t kVectors>
[[gnu::always_inline]] inline int64_t class_sums_and_rows_outside(const float* probs, const Lanes* masks,
                                                                  float* column, int64_t samples, int64_t classes,
                                                                  float low, float high) {
  Lanes sums[kVectors] = {};
  int64_t outside = 0;
  for (int64_t k = 0; k < samples; ++k) {
    Lanes row = {};
    for (int64_t v = 0; v < kVectors; ++v) {
      const Lanes x = *reinterpret_cast<const Lanes*>(probs + k * classes + v * kLanesPerVector) * masks[v];
      sums[v] += x;
      row += x;
    }
    const float total = horizontal_sum(row);
    outside += !(total >= low && total <= high);
  }
  for (int64_t v = 0; v < kVectors; ++v)
    for (int64_t l = 0; l < kLanesPerVector; ++l) column[v * kLanesPerVector + l] = sums[v][l];
  return outside;
}

// The register-row widths, each cloned per instruction set, and a scalar loop for C > 128.
#define KBALD_CLASS_SUMS(name, vectors)                                                                   \
  KBALD_CPU_CLONES int64_t name(const float* probs, const Lanes* masks, float* column, int64_t samples, \
                                int64_t classes, float low, float high) {                               \
    return class_sums_and_rows_outside<vectors>(probs, masks, column, samples, classes, low, high);      \
  }
KBALD_CLASS_SUMS(class_sums_16, 1)
KBALD_CLASS_SUMS(class_sums_32, 2)
KBALD_CLASS_SUMS(class_sums_64, 4)
KBALD_CLASS_SUMS(class_sums_128, 8)
#undef KBALD_CLASS_SUMS

int64_t class_sums_any(const float* probs, const Lanes*, float* column, int64_t samples, int64_t classes, float low,
                       float high) {
  std::fill(column, column + classes, 0.0f);
  int64_t outside = 0;
  for (int64_t k = 0; k < samples; ++k) {
    float row = 0.0f;
    for (int64_t c = 0; c < classes; ++c) {
      column[c] += probs[k * classes + c];
      row += probs[k * classes + c];
    }
    outside += !(row >= low && row <= high);
  }
  return outside;
}

using ClassSums = int64_t (*)(const float*, const Lanes*, float*, int64_t, int64_t, float, float);

// terms += -q·log q lane by lane: neg_xlogx's arithmetic (log_unit_interval of
// max(q, smallest normal)) on a whole vector, so the epilogue runs in vector lanes.
// (Vector casts of equal size reinterpret the bits.)
typedef int32_t IntLanes __attribute__((vector_size(64), aligned(4)));

[[gnu::always_inline]] inline void add_neg_xlogx(Lanes q, Lanes& terms) {
  const Lanes smallest_normal = Lanes{} + 1.17549435e-38f;
  const Lanes clamped = q > smallest_normal ? q : smallest_normal;
  const IntLanes offset = (IntLanes)clamped - 0x3f3504f3;  // bits of √½
  const Lanes m = (Lanes)((offset & 0x007fffff) + 0x3f3504f3);
  const Lanes s = (m - 1.0f) / (m + 1.0f);
  const Lanes z = s * s;
  const Lanes series = 1.0f + z * (1.0f / 3 + z * (1.0f / 5 + z * (1.0f / 7 + z * (1.0f / 9))));
  terms -= q * (__builtin_convertvector(offset >> 23, Lanes) * 0.693147180559945309f + 2.0f * s * series);
}

// Σ over rows c0 .. c0+kRows-1 (all < C) of the joint J[c, d] = mean_k p[k, c]·s[k, d]
// of one pool point p [K, C] and the pick s, given padded to [K, 16·kVectors] with
// zero columns (which add -0·log 0 = 0), of -J log J. The kRows × kVectors tile lives
// in registers over all of K: per k, kVectors loads of s and kRows·kVectors
// independent vector FMAs. The terms add up lane-wise (at most 8 to a lane), then
// across the lanes, in float; the caller adds tiles in double.
template <int64_t kVectors, int64_t kRows>
[[gnu::always_inline]] inline float joint_rows_entropy(const float* p, const float* pick, int64_t samples,
                                                       int64_t classes, int64_t c0, float inverse) {
  constexpr int64_t kPadded = kVectors * kLanesPerVector;
  Lanes tile[kRows][kVectors] = {};
  for (int64_t k = 0; k < samples; ++k) {
    const Lanes* s = reinterpret_cast<const Lanes*>(pick + k * kPadded);
    for (int64_t r = 0; r < kRows; ++r) {
      const float a = p[k * classes + c0 + r];
      for (int64_t v = 0; v < kVectors; ++v) tile[r][v] += a * s[v];
    }
  }
  Lanes terms = {};
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t v = 0; v < kVectors; ++v) add_neg_xlogx(tile[r][v] * inverse, terms);
  return horizontal_sum(terms);
}

// H of that joint over all C rows: tiles of kRows rows (8 lanes-vectors of
// accumulators), then the rest in tiles of 4, 2 and 1, so no row past C is computed.
// always_inline: GCC does not otherwise inline it into the per-instruction-set clones.
template <int64_t kVectors>
[[gnu::always_inline]] inline float pair_joint_entropy(const float* p, const float* pick, int64_t samples,
                                                       int64_t classes) {
  constexpr int64_t kRows = kVectors >= 8 ? 1 : 8 / kVectors;
  const float inverse = 1.0f / static_cast<float>(samples);
  double h = 0.0;
  int64_t c0 = 0;
  for (; c0 + kRows <= classes; c0 += kRows)
    h += joint_rows_entropy<kVectors, kRows>(p, pick, samples, classes, c0, inverse);
  if constexpr (kRows > 4) {
    if (c0 + 4 <= classes) {
      h += joint_rows_entropy<kVectors, 4>(p, pick, samples, classes, c0, inverse);
      c0 += 4;
    }
  }
  if constexpr (kRows > 2) {
    if (c0 + 2 <= classes) {
      h += joint_rows_entropy<kVectors, 2>(p, pick, samples, classes, c0, inverse);
      c0 += 2;
    }
  }
  if constexpr (kRows > 1) {
    if (c0 < classes) h += joint_rows_entropy<kVectors, 1>(p, pick, samples, classes, c0, inverse);
  }
  return static_cast<float>(h);
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

using PairJointEntropy = float (*)(const float*, const float*, int64_t, int64_t);

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

constexpr int64_t kEpigBlockColumns = 2 * kLanesPerVector;
constexpr int64_t kEpigPoints = 4;

// Class paddings of 16, 32, 64 and 128 lanes cover C <= 128 (the bindings refuse more).
int64_t padded_classes(int64_t classes) { return classes <= 16 ? 16 : classes <= 32 ? 32 : classes <= 64 ? 64 : 128; }

PairJointEntropy pair_joint_entropy_for(int64_t padded) {
  return padded == 16 ? pair_joint_entropy_16
         : padded == 32 ? pair_joint_entropy_32
         : padded == 64 ? pair_joint_entropy_64
                        : pair_joint_entropy_128;
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

// Σ_j w_j Σ_c -J[c, j] log J[c, j] for one pool point p [K, C] against packed target
// columns s [K, padded] with weights w [padded], J[c, j] = mean_k p[k, c]·s[k, j].
// Column blocks of kEpigBlockColumns (two vectors) in the outer loop keep a block's
// K rows in L1 while tiles of 4, 2 and 1 rows of J, held in registers over all of
// K, take every row once: per k, two vector loads and up to 4 broadcasts feed 8 FMAs.
template <int64_t kRows>
[[gnu::always_inline]] inline double weighted_joint_rows(const float* p, const float* block, const Lanes* w,
                                                         int64_t padded, int64_t samples, int64_t classes,
                                                         int64_t c0, float inverse) {
  Lanes tile[kRows][2] = {};
  for (int64_t k = 0; k < samples; ++k) {
    const Lanes* s = reinterpret_cast<const Lanes*>(block + k * padded);
    const Lanes s0 = s[0], s1 = s[1];
    for (int64_t r = 0; r < kRows; ++r) {
      const float a = p[k * classes + c0 + r];
      tile[r][0] += a * s0;
      tile[r][1] += a * s1;
    }
  }
  Lanes terms0 = {}, terms1 = {};
  for (int64_t r = 0; r < kRows; ++r) {
    add_neg_xlogx(tile[r][0] * inverse, terms0);
    add_neg_xlogx(tile[r][1] * inverse, terms1);
  }
  return static_cast<double>(horizontal_sum(terms0 * w[0] + terms1 * w[1]));
}

// The same sum for `group` <= kEpigPoints pool points, probabilities [group, K, C],
// into h: a column block, once in L1, serves every point of the group before the
// next block is read, so a target matrix larger than the caches streams once per
// group rather than once per point.
KBALD_CPU_CLONES void weighted_joint_entropies(const float* probs, int64_t group, const float* packed,
                                               const float* weights, int64_t padded, int64_t samples,
                                               int64_t classes, double* h) {
  const float inverse = 1.0f / static_cast<float>(samples);
  for (int64_t j = 0; j < padded; j += kEpigBlockColumns) {
    const float* block = packed + j;
    const Lanes* w = reinterpret_cast<const Lanes*>(weights + j);
    for (int64_t q = 0; q < group; ++q) {
      const float* p = probs + q * samples * classes;
      int64_t c0 = 0;
      for (; c0 + 4 <= classes; c0 += 4)
        h[q] += weighted_joint_rows<4>(p, block, w, padded, samples, classes, c0, inverse);
      if (c0 + 2 <= classes) {
        h[q] += weighted_joint_rows<2>(p, block, w, padded, samples, classes, c0, inverse);
        c0 += 2;
      }
      if (c0 < classes) h[q] += weighted_joint_rows<1>(p, block, w, padded, samples, classes, c0, inverse);
    }
  }
}

}  // namespace

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
    out[n] = entropy[n] + pick_entropy - joint_entropy(p, pick_probs.data(), samples, classes);
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
  for (int64_t n = 0; n < points; ++n)
    out[n] = entropy[n] + pick_entropy - joint_entropy(probs + n * count, pick_probs.data(), samples, classes);
}

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
        const float joint = joint_entropy(p, probs.data() + r * samples * padded, samples, classes);
        out[n * points_b + m0 + r] = entropy_a[n] + entropy_b[m0 + r] - joint;
      }
    });
  }
}

template <typename T>
void epig(const LogProbs<T>& log_probs, const float* entropy, const float* target_log_probs,
          const float* target_entropy, const float* weights, int64_t targets, float* out, int64_t points,
          int64_t samples, int64_t classes) {
  // Every target at once: their probabilities packed as one matrix [K, T·C] (column
  // t·C + d, zero columns up to whole blocks), so vector lanes hold real columns
  // whatever C is, and each column carries its target's weight, so
  // Σ_t v_t·H[Y_n, Y_t] = Σ_j w_j Σ_c -J[c, j] log J[c, j] needs no per-target sums.
  const int64_t columns = targets * classes;
  const int64_t padded = (columns + kEpigBlockColumns - 1) / kEpigBlockColumns * kEpigBlockColumns;
  std::vector<float> packed(samples * padded, 0.0f);
  std::vector<float> column_weights(padded, 0.0f);
  double target_term = 0.0;  // Σ_t v_t·H[Y_t]
  for (int64_t t = 0; t < targets; ++t) {
    target_term += static_cast<double>(weights[t]) * target_entropy[t];
    for (int64_t d = 0; d < classes; ++d) column_weights[t * classes + d] = weights[t];
    for (int64_t k = 0; k < samples; ++k)
      for (int64_t d = 0; d < classes; ++d)
        packed[k * padded + t * classes + d] = exp_log_probability(target_log_probs[(t * samples + k) * classes + d]);
  }
  const int64_t count = samples * classes;
#pragma omp parallel
  {
    std::vector<float> values(count), probs(kEpigPoints * count);
#pragma omp for schedule(static)
    for (int64_t n0 = 0; n0 < points; n0 += kEpigPoints) {
      const int64_t group = std::min(kEpigPoints, points - n0);
      for (int64_t q = 0; q < group; ++q)
        exp_keeping_nan(point_log_probs(log_probs, n0 + q, samples, classes, values.data()), probs.data() + q * count,
                        count);
      double joint[kEpigPoints] = {};
      weighted_joint_entropies(probs.data(), group, packed.data(), column_weights.data(), padded, samples, classes,
                               joint);
      for (int64_t q = 0; q < group; ++q) out[n0 + q] = static_cast<float>(entropy[n0 + q] + target_term - joint[q]);
    }
  }
}

template <typename T>
void probability_sums(const LogProbs<T>& log_probs, float* sums, int64_t points, int64_t samples, int64_t classes) {
  for_each_point_probs(log_probs, points, samples, classes, [&](int64_t n, const float* p) {
    for (int64_t k = 0; k < samples; ++k) {
      float total = 0.0f;
      for (int64_t c = 0; c < classes; ++c) total += p[k * classes + c];
      sums[n * samples + k] = total;
    }
  });
}

template <typename T>
int64_t entropies(const LogProbs<T>& log_probs, float* entropy, float* conditional, float* confidence,
                  float* margin, int64_t points, int64_t samples, int64_t classes, float low, float high) {
  const int64_t count = samples * classes;
  const int64_t vectors = classes <= 16 ? 1 : classes <= 32 ? 2 : classes <= 64 ? 4 : classes <= 128 ? 8 : 0;
  const ClassSums class_sums = vectors == 1   ? class_sums_16
                               : vectors == 2 ? class_sums_32
                               : vectors == 4 ? class_sums_64
                               : vectors == 8 ? class_sums_128
                                              : class_sums_any;
  // A plain array: std::vector would drop Lanes' alignment attribute (GCC warns).
  Lanes masks[8];
  for (int64_t v = 0; v < vectors; ++v)
    for (int64_t l = 0; l < kLanesPerVector; ++l) masks[v][l] = v * kLanesPerVector + l < classes ? 1.0f : 0.0f;
  int64_t invalid = 0;
#pragma omp parallel reduction(+ : invalid)
  {
    // The last row's vectors read up to vectors·16 - C floats past K·C: zeros, since a
    // masked lane multiplies what it reads by 0 and garbage may be NaN.
    std::vector<float> values(count), probs(count + vectors * kLanesPerVector, 0.0f);
    std::vector<float> column(std::max(classes, vectors * kLanesPerVector));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n) {
      int nans = 0;
      const float* x = point_log_probs(log_probs, n, samples, classes, values.data());
      const double plogp = exp_and_plogp(x, probs.data(), count, &nans);
      // The validation this pass carries: NaN values, and rows whose probabilities do
      // not sum into [low, high] (+inf or a huge value makes the sum huge).
      invalid += nans + class_sums(probs.data(), masks, column.data(), samples, classes, low, high);
      double h = 0.0;
      for (int64_t c = 0; c < classes; ++c) h += neg_xlogx(column[c] / static_cast<float>(samples));
      entropy[n] = static_cast<float>(h);
      conditional[n] = static_cast<float>(-plogp / samples);
      if (confidence != nullptr) {
        float top = 0.0f, second = 0.0f;  // first of equal maxima is the top; the other stays second
        for (int64_t c = 0; c < classes; ++c) {
          const float mean = column[c] / static_cast<float>(samples);
          if (mean > top) {
            second = top;
            top = mean;
          } else if (mean > second) {
            second = mean;
          }
        }
        confidence[n] = 1.0f - top;
        margin[n] = top - second;
      }
    }
  }
  return invalid;
}

#define KBALD_INSTANTIATE(T)                                                                                       \
  template void mutual_information_with_pick<T>(const LogProbs<T>&, const float*, int64_t, float*, int64_t,       \
                                                int64_t, int64_t);                                                 \
  template void pairwise_mutual_information<T>(const LogProbs<T>&, const float*, const LogProbs<T>&, const float*, \
                                               float*, int64_t, int64_t, int64_t, int64_t);                        \
  template void epig<T>(const LogProbs<T>&, const float*, const float*, const float*, const float*, int64_t,        \
                        float*, int64_t, int64_t, int64_t);                                                        \
  template void probability_sums<T>(const LogProbs<T>&, float*, int64_t, int64_t, int64_t);                        \
  template int64_t entropies<T>(const LogProbs<T>&, float*, float*, float*, float*, int64_t, int64_t, int64_t, \
                                float, float);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
