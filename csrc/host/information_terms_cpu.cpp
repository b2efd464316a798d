#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "host_math.h"
#include "information_cpu.h"

namespace kbald::host {
namespace {

// Half precision widened by the instruction AVX-512 (16 values) or F16C (8 values,
// part of x86-64-v3) has for it: exact, and NaN stays NaN, which the exponential
// takes to e^88 (AVX2) or keeps (AVX-512) as a float NaN.
#if KBALD_X86_GCC
[[gnu::target("avx512f")]] inline VectorTypes<16>::F widen_half_16(const Half* x) {
  return (VectorTypes<16>::F)_mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}

[[gnu::target("avx,f16c")]] inline VectorTypes<8>::F widen_half_8(const Half* x) {
  return (VectorTypes<8>::F)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}
#endif

struct EntropyOutputs {
  float *entropy, *conditional, *confidence, *margin;
};

// The pass over vectors of W floats: each instruction set's kVectorWidth.
template <int W>
struct OnePass {
  using Types = VectorTypes<W>;
  using Lanes = typename Types::F;
  using IntLanes = typename Types::I;
  using Order = typename Types::IntValues;  // a shuffle's lane order

  // W stored values at x as float lanes. Where the instruction set has no widening
  // instruction of this width (GCC widens half precision one value at a time), it is
  // done in integer lanes: the sign-extended bits shifted so that magnitude and sign
  // fill a float's fields (the copies of the sign between them masked off) give
  // 2^-112 of the value, subnormals included. Infinities come out as ±65536, which
  // the exponential treats as they are (-inf: probability 0, +inf: e^88); NaN comes
  // out past ±65536, and a negative one is made +88, so its row fails the bounds too
  // (the exponential already takes a positive one to e^88).
  template <HostIsa kIsa, typename T>
  [[gnu::always_inline]] static Lanes load_lanes(const T* x) {
    if constexpr (std::is_same_v<T, float>) {
      return *reinterpret_cast<const Lanes*>(x);
    } else if constexpr (std::is_same_v<T, BFloat16>) {
      return (Lanes)(__builtin_convertvector(*reinterpret_cast<const typename Types::UnsignedShort*>(x), IntLanes)
                     << 16);
#if KBALD_X86_GCC
    } else if constexpr (W == 16 && kIsa == HostIsa::kX86_64_V4) {
      return widen_half_16(x);
    } else if constexpr (W == 8 && kIsa != HostIsa::kBaseline) {
      return widen_half_8(x);
#endif
    } else {
      const IntLanes bits = __builtin_convertvector(*reinterpret_cast<const typename Types::Short*>(x), IntLanes)
                            << 13;
      const Lanes value = (Lanes)(bits & (int32_t)0x8fffffff) * 0x1p112f;
      return value < -65536.0f ? Lanes{} + kHighestLogProbability : value;
    }
  }

  // The pass streams the pool once, and the hardware's own prefetch left it waiting on
  // memory about as long as it computed (a 240 MB exponential loop on one core: 35 ms;
  // 20 ms with each read also asking for the data 2 KB on into L2; 17 ms for the read
  // alone). So every read of the pool asks for the data `ahead` elements on, where the
  // same pass reads some thousand bytes later. Prefetches never fault: no guard at the
  // pool's end.
  template <HostIsa kIsa, typename T>
  [[gnu::always_inline]] static Lanes stream_lanes(const T* x, int64_t ahead) {
    __builtin_prefetch(x + ahead, 0, 2);
    return load_lanes<kIsa>(x);
  }

  // How far on: 4 KB in rows of 16 classes or more, 2 KB in flat points. On an AMD
  // EPYC, whole pass on 2 threads against 2 KB everywhere (interleaved, 15-21 pairs):
  // rows, C = 100 and 1 000 float32 0.79x and 0.75-0.81x the time, float16 0.96-0.99x;
  // flat points at 4 KB, C = 10 float32 (read flat then) 1.05x.
  template <typename T>
  static constexpr int64_t kAheadInRow = 4096 / sizeof(T);
  template <typename T>
  static constexpr int64_t kAheadInFlat = 2048 / sizeof(T);

  // One stage of summing W vectors' lanes, one row to a lane: x and y each hold rows
  // of 2g partial sums; the result holds both's rows, g partial sums each. The pairs
  // are chosen so every shuffle is a half-register (g = W/2), 128-bit chunk (g = 4 of
  // 16) or in-chunk (g = 2, 1) selection with an immediate operand: index vectors
  // would take registers the exponential's constants need. The rows come out in an
  // order that a count of rows outside the bounds need not know.
  template <int g>
  static constexpr int fold_source(int i) {
    const int chunk = i / 4, within = i % 4;
    if constexpr (g == W / 2) return i < g ? i : W + i - g;
    if constexpr (g == 4) return (chunk < 2 ? 2 * chunk : 4 + 2 * (chunk - 2)) * 4 + within;
    if constexpr (g == 2) return 4 * chunk + (within & 1) + (within >= 2 ? W : 0);
    return 4 * chunk + 2 * (within & 1) + (within >= 2 ? W : 0);
  }

  template <int g>
  [[gnu::always_inline]] static Lanes fold_halves(Lanes x, Lanes y) {
    constexpr Order kLow = lane_order<Order>([](int i) { return fold_source<g>(i); }, std::make_index_sequence<W>{});
    return __builtin_shuffle(x, y, kLow) + __builtin_shuffle(x, y, kLow + g);
  }

  // Fold stages from g down to 1 over `count` vectors of rows at r (in place).
  template <int g>
  [[gnu::always_inline]] static Lanes fold_rows(Lanes* r, int count) {
    for (int i = 0; i < count / 2; ++i) r[i] = fold_halves<g>(r[2 * i], r[2 * i + 1]);
    if constexpr (g > 1) {
      return fold_rows<g / 2>(r, count / 2);
    } else {
      return r[0];
    }
  }

  // The W rows' sums, one a lane: for W = 16, 30 shuffles and 15 adds, where 16
  // halving sums take 64 and 64.
  [[gnu::always_inline]] static Lanes row_sums(const Lanes* rows) {
    Lanes r[W];
    for (int i = 0; i < W; ++i) r[i] = rows[i];
    return fold_rows<W / 2>(r, W);
  }

  // 1 in each lane whose sum lies outside [low, high] or is NaN, 0 in the others. One
  // comparison a select, the second on the first's result: in a function compiled for
  // another target than the file's, GCC 12 turns two comparisons combined by & into a
  // scalar comparison a lane.
  [[gnu::always_inline]] static IntLanes outside_bounds(Lanes sums, Lanes lows, Lanes highs) {
    const Lanes from_low = sums < lows ? Lanes{} + __builtin_nanf("") : sums;  // NaN fails the next comparison
    return from_low <= highs ? IntLanes{} : IntLanes{} + 1;
  }

  // The normalisation check: how many rows' probability sums lie outside [low, high]
  // (NaN included). Rows are checked W at a time, their sums folded into one vector:
  // a point's whole groups of W at once (add_group), other rows as they come, waiting
  // in `pending` (add); the few left at the end of a block take a halving sum each.
  // Measured against a halving sum a row (N=30 000, K=20: C=40 5.5 -> 4.9 ms, C=100
  // 14.7 -> 14.1 ms in float16; C=10 flat 17.2 -> 15.9 ms in float32; W = 16).
  struct RowSumCheck {
    float low, high;
    int64_t outside = 0;
    IntLanes outside_lanes = {};
    Lanes pending[W];
    int64_t waiting = 0;

    [[gnu::always_inline]] void add_group(const Lanes* rows) {
      outside_lanes += outside_bounds(row_sums(rows), Lanes{} + low, Lanes{} + high);
    }

    [[gnu::always_inline]] void add(Lanes row) {
      pending[waiting++] = row;
      if (waiting == W) {
        add_group(pending);
        waiting = 0;
      }
    }

    [[gnu::always_inline]] int64_t total() const {
      int64_t all = outside;
      for (int64_t i = 0; i < waiting; ++i) {
        const float sum = horizontal_sum(pending[i]);
        all += !(sum >= low && sum <= high);
      }
      for (int64_t l = 0; l < W; ++l) all += outside_lanes[l];
      return all;
    }
  };

  // p = exp(x) for one vector of log-probabilities, and p·x added to `plogp` (x clamped
  // as the exponential clamps it, so p = 0 gives 0, not 0·(-inf); the compiler shares the
  // clamp with the exponential's); past 88 the row's probabilities fail the
  // normalisation check whatever p·x is.
  [[gnu::always_inline]] static Lanes exp_adding_plogp(Lanes value, Lanes& plogp) {
    const Lanes p = exp_lanes(value);
    plogp += p * (Lanes)clamped_log_probability((typename Types::Values)value);
    return p;
  }

  // Lane by lane over the class means sums[v]·inverse (count vectors): the largest
  // below `top` and how many equal it, for the margin's runner-up (the top itself when
  // two classes share it). In lanes, not a scalar scan: its unpredictable branches cost
  // more than the whole pass at K = 1. The per-point epilogue folds the lanes (classes)
  // after; the points-in-lanes one keeps them (points).
  struct RunnerUp {
    Lanes below, ties;
  };

  [[gnu::always_inline]] static RunnerUp runner_up(const Lanes* sums, int64_t count, float inverse, Lanes top) {
    const Lanes ones = Lanes{} + 1.0f, zeros = {};
    RunnerUp found{zeros, zeros};
    for (int64_t v = 0; v < count; ++v) {
      const Lanes mean = sums[v] * inverse;
      const Lanes lower = mean < top ? mean : zeros;
      found.below = lower > found.below ? lower : found.below;
      found.ties += mean == top ? ones : zeros;
    }
    return found;
  }

  // One point's results from its class sums (count vectors at `sums`; lanes past C
  // hold 0) and Σ p·x lanes: the class means' entropy in lanes, the conditional
  // entropy, and where asked least confidence and margin.
  [[gnu::always_inline]] static void finish_point(const Lanes* sums, int64_t count, Lanes plogp, int64_t n,
                                                  float inverse, const EntropyOutputs& out) {
    Lanes terms = {}, largest = {};
    for (int64_t v = 0; v < count; ++v) {
      const Lanes mean = sums[v] * inverse;
      add_neg_xlogx(mean, terms);
      largest = mean > largest ? mean : largest;
    }
    out.entropy[n] = horizontal_sum(terms);
    out.conditional[n] = -horizontal_sum(plogp) * inverse;
    if (out.confidence != nullptr) {
      const float top = horizontal_max(largest);
      const RunnerUp second = runner_up(sums, count, inverse, Lanes{} + top);
      out.confidence[n] = 1.0f - top;
      out.margin[n] = top - (horizontal_sum(second.ties) > 1.0f ? top : horizontal_max(second.below));
    }
  }

  // Where a row's last vector holds at most half a vector of its classes (C > W, C mod
  // W in 1 .. W/2), kGroup = 2 or 4 rows' last vectors are packed into one before
  // their exponential: row j's C mod W values in lanes [j·W/kGroup, …), the lanes
  // between them -inf (probability 0). One exponential a group where there were
  // kGroup (C = 100 at 16 lanes: 25 vectors for 4 rows instead of 28).
  struct TailPacking {
    int64_t group = 1;
    Order to_slot[4], from_slot[4];  // lane orders: a tail's lanes into slot j, and back
    IntLanes slot[4];                // the lanes of slot j that hold classes
  };

  [[gnu::always_inline]] static TailPacking tail_packing(int64_t classes, int64_t vectors) {
    const int64_t tail_count = classes - (vectors - 1) * W;
    TailPacking packing;
    if (vectors >= 2) packing.group = tail_count <= W / 4 ? 4 : tail_count <= W / 2 ? 2 : 1;
    const int64_t width = W / packing.group;
    for (int64_t j = 0; j < packing.group; ++j)
      for (int64_t l = 0; l < W; ++l) {
        packing.to_slot[j][l] = static_cast<int32_t>((l - j * width) & (W - 1));
        packing.from_slot[j][l] = static_cast<int32_t>((l + j * width) & (W - 1));
        packing.slot[j][l] = l >= j * width && l < j * width + tail_count ? -1 : 0;
      }
    return packing;
  }

  // One point's rows [K, C] at row0 + k·stride_k, classes contiguous, read as whole
  // vectors of W (vectors·W values from each row start; lanes from C on are
  // replaced by -inf, so they add probability 0; with kGroup > 1, rows' last vectors
  // are packed as TailPacking says): p = exp(x) once per value, its class sums (in
  // registers for kVectors = 1 .. 8 vectors a row; in `column` for kVectors = 0, any
  // C), its row sums into `rows`, Σ p·x in lanes.
  template <int64_t kVectors, int64_t kGroup, HostIsa kIsa, typename T>
  [[gnu::always_inline]] static void point_terms(const T* row0, int64_t stride_k, int64_t n, int64_t samples,
                                                 int64_t vectors, IntLanes tail, const TailPacking& packing,
                                                 float inverse, float* column, RowSumCheck& rows,
                                                 const EntropyOutputs& out) {
    constexpr bool kInRegisters = kVectors > 0;
    Lanes sums[kInRegisters ? kVectors : 1] = {};
    Lanes* column_sums = reinterpret_cast<Lanes*>(column);
    if constexpr (!kInRegisters)
      for (int64_t v = 0; v < vectors; ++v) column_sums[v] = Lanes{};
    // In registers: up to kVectors (the loops unroll to it), `vectors` of them used.
    const int64_t limit = kInRegisters ? kVectors : vectors;
    const auto add_to_class_sums = [&](int64_t v, Lanes p) [[gnu::always_inline]] {
      if constexpr (kInRegisters) {
        sums[v] += p;
      } else {
        column_sums[v] += p;
      }
    };
    const Lanes empty = Lanes{} - __builtin_inff();
    Lanes plogp = {};
    // Vector v of a row: its exponentials into p·x, the row's total and the class sums.
    const auto add_vector = [&](Lanes value, int64_t v, Lanes& row) [[gnu::always_inline]] {
      const Lanes p = exp_adding_plogp(value, plogp);
      row += p;
      add_to_class_sums(v, p);
    };
    int64_t k = 0;
    if constexpr (kGroup > 1) {
      Lanes packed_sums = {};
      for (; k + kGroup <= samples; k += kGroup) {
        Lanes group_rows[kGroup];
        Lanes packed = empty;
        for (int64_t j = 0; j < kGroup; ++j) {
          const T* x = row0 + (k + j) * stride_k;
          Lanes row = {};
          for (int64_t v = 0; v < limit && v < vectors - 1; ++v)
            add_vector(stream_lanes<kIsa>(x + v * W, kAheadInRow<T>), v, row);
          const Lanes last = stream_lanes<kIsa>(x + (vectors - 1) * W, kAheadInRow<T>);
          packed = packing.slot[j] ? __builtin_shuffle(last, packing.to_slot[j]) : packed;
          group_rows[j] = row;
        }
        const Lanes p = exp_adding_plogp(packed, plogp);
        packed_sums += p;
        for (int64_t j = 0; j < kGroup; ++j) rows.add(group_rows[j] + (packing.slot[j] ? p : Lanes{}));
      }
      Lanes last_sums = {};
      for (int64_t j = 0; j < kGroup; ++j) last_sums += __builtin_shuffle(packed_sums, packing.from_slot[j]);
      // The last vector's index is known only at run time; registers take constant ones.
      for (int64_t v = 0; v < limit; ++v)
        if (v == vectors - 1) add_to_class_sums(v, tail ? last_sums : Lanes{});
    }
    for (; k < samples; ++k) {
      const T* x = row0 + k * stride_k;
      Lanes row = {};
      for (int64_t v = 0; v < limit && v < vectors; ++v) {
        Lanes value = stream_lanes<kIsa>(x + v * W, kAheadInRow<T>);
        if (v == vectors - 1) value = tail ? value : empty;
        add_vector(value, v, row);
      }
      rows.add(row);
    }
    finish_point(kInRegisters ? sums : column_sums, std::min(limit, vectors), plogp, n, inverse, out);
  }

  // The same for rows shorter than 16 floats with the point's K·C values contiguous:
  // a row fills only C of its vectors' lanes, so the exponentials run over the flat
  // K·C values instead (every lane used), into `probs` (K·C + W floats); the rows are
  // then read back from there, kVectors (1 or 2) vectors each, for their class and row
  // sums. `flat_tail` masks the values of the last, partial vector of K·C (all lanes
  // when W divides K·C).
  template <int64_t kVectors, HostIsa kIsa, typename T>
  [[gnu::always_inline]] static void point_terms_flat(const T* x, int64_t n, int64_t samples, IntLanes tail,
                                                      IntLanes flat_tail, float inverse, float* probs,
                                                      RowSumCheck& rows, const EntropyOutputs& out, int64_t classes) {
    const int64_t count = samples * classes;
    Lanes plogp = {};
    int64_t j = 0;
    for (; j + W < count; j += W)
      *reinterpret_cast<Lanes*>(probs + j) = exp_adding_plogp(stream_lanes<kIsa>(x + j, kAheadInFlat<T>), plogp);
    *reinterpret_cast<Lanes*>(probs + j) =
        exp_adding_plogp(flat_tail ? load_lanes<kIsa>(x + j) : Lanes{} - __builtin_inff(), plogp);
    Lanes sums[kVectors] = {};
    // Row k's vectors added to the class sums; returns their lane-wise total (flat
    // points, whole pass on an AMD EPYC: 0.96-0.98x the time of a total started at 0,
    // C = 7, 10, 13).
    const auto read_row = [&](int64_t k) [[gnu::always_inline]] {
      Lanes row;
      for (int64_t v = 0; v < kVectors; ++v) {
        Lanes part = *reinterpret_cast<const Lanes*>(probs + k * classes + v * W);
        if (v == kVectors - 1) part = tail ? part : Lanes{};
        sums[v] += part;
        row = v == 0 ? part : row + part;  // not 0 + part: an add GCC keeps (it makes -0 +0)
      }
      return row;
    };
    int64_t k = 0;
    for (; k + W <= samples; k += W) {
      Lanes group[W];
      for (int64_t i = 0; i < W; ++i) group[i] = read_row(k + i);
      rows.add_group(group);
    }
    for (; k < samples; ++k) rows.add(read_row(k));
    finish_point(sums, kVectors, plogp, n, inverse, out);
  }

  // rows[i][l] → rows[l][i] for a W × W tile: log2 W stages that swap the off-diagonal
  // blocks of W/2, …, 2, 1 lanes between rows s apart, each row pair two two-source
  // shuffles.
  template <int s>
  [[gnu::always_inline]] static void transpose_from(Lanes* rows) {
    // Lanes with bit s set take the second row's own; the others the first's, s on.
    constexpr Order kLow =
        lane_order<Order>([](int i) { return (i & s) ? W + i - s : i; }, std::make_index_sequence<W>{});
    constexpr Order kHigh = kLow + s;
    for (int i = 0; i < W; ++i) {
      if (i & s) continue;
      const Lanes first = rows[i], second = rows[i + s];
      rows[i] = __builtin_shuffle(first, second, kLow);
      rows[i + s] = __builtin_shuffle(first, second, kHigh);
    }
    if constexpr (s > 1) transpose_from<s / 2>(rows);
  }

  // W points [n0, n0 + W) with C = kClasses <= W, one point to a lane: each sample's W
  // rows are loaded as vectors and transposed, so every exponential, row sum, class sum
  // and the whole epilogue run lane-wise, with no horizontal sum per row or per point
  // (at K = 1 those were most of the pass). Returns how many of the W·K rows fail the
  // normalisation bounds.
  template <HostIsa kIsa, int64_t kClasses, typename T>
  [[gnu::always_inline]] static int64_t points_in_lanes(const LogProbs<T>& x, int64_t n0, int64_t samples,
                                                        float inverse, float low, float high,
                                                        const EntropyOutputs& out) {
    Lanes class_sums[W];  // the first C used (and zeroed: 1 KB a group is not free at K = 1)
    for (int64_t c = 0; c < kClasses; ++c) class_sums[c] = Lanes{};
    Lanes plogp = {};
    const int64_t ahead = W * x.stride_n;  // the same row of the next group's points
    const Lanes lows = Lanes{} + low, highs = Lanes{} + high;
    IntLanes outside = {};
    for (int64_t k = 0; k < samples; ++k) {
      Lanes rows[W];
      const T* row0 = x.data + n0 * x.stride_n + k * x.stride_k;
      for (int64_t i = 0; i < W; ++i) rows[i] = stream_lanes<kIsa>(row0 + i * x.stride_n, ahead);
      transpose_from<W / 2>(rows);
      Lanes total = {};
      for (int64_t c = 0; c < kClasses; ++c) {
        const Lanes p = exp_adding_plogp(rows[c], plogp);
        total += p;
        class_sums[c] += p;
      }
      outside += outside_bounds(total, lows, highs);
    }
    Lanes entropy = {}, top = {};
    for (int64_t c = 0; c < kClasses; ++c) {
      const Lanes mean = class_sums[c] * inverse;
      add_neg_xlogx(mean, entropy);
      top = mean > top ? mean : top;
    }
    *reinterpret_cast<Lanes*>(out.entropy + n0) = entropy;
    *reinterpret_cast<Lanes*>(out.conditional + n0) = -plogp * inverse;
    if (out.confidence != nullptr) {
      const RunnerUp second = runner_up(class_sums, kClasses, inverse, top);
      *reinterpret_cast<Lanes*>(out.confidence + n0) = 1.0f - top;
      *reinterpret_cast<Lanes*>(out.margin + n0) = top - (second.ties > Lanes{} + 1.0f ? top : second.below);
    }
    int64_t count = 0;
    for (int64_t l = 0; l < W; ++l) count += outside[l];
    return count;
  }

  // Groups of W points in lanes from n on while a whole group lies before `end`, each
  // at its C as a constant: the class loops unroll and the class sums stay in registers
  // (with C known only at run time they went through memory: C = 10, K = 20, pool in
  // cache, 5.9 against 5.0 ns a vector of 16 values at float32). Returns how many rows
  // failed the bounds.
  template <HostIsa kIsa, typename T, std::size_t... i>
  [[gnu::always_inline]] static int64_t groups_in_lanes(const LogProbs<T>& x, int64_t& n, int64_t end,
                                                        int64_t samples, int64_t classes, float inverse, float low,
                                                        float high, const EntropyOutputs& out,
                                                        std::index_sequence<i...>) {
    int64_t outside = 0;
    const auto groups = [&](auto count) [[gnu::always_inline]] {
      for (; n + W <= end; n += W)
        outside += points_in_lanes<kIsa, decltype(count)::value>(x, n, samples, inverse, low, high, out);
      return true;
    };
    ((classes == static_cast<int64_t>(i) + 1 && groups(std::integral_constant<int64_t, i + 1>{})) || ...);
    return outside;
  }

  // The pass over points [begin, end): those before `in_place_end` are read where they
  // are stored; the rest (the last points, whose whole-vector reads would pass the end
  // of the pool, or every point of a pool whose classes are not contiguous) are first
  // copied, widened, into `gathered` [K, vectors·W]. Returns how many rows failed
  // the normalisation bounds (NaN and +inf give e^88, or at AVX-512 NaN or inf, so
  // their rows fail too).
  template <int64_t kVectors, HostIsa kIsa, typename T>
  [[gnu::always_inline]] static int64_t entropies_of_points(const LogProbs<T>& x, int64_t begin, int64_t end,
                                                            int64_t in_place_end, const EntropyOutputs& out,
                                                            int64_t samples, int64_t classes, float low, float high,
                                                            float* gathered, float* column) {
    const int64_t vectors = (classes + W - 1) / W;
    const int64_t width = vectors * W;
    IntLanes tail;
    for (int64_t l = 0; l < W; ++l) tail[l] = (vectors - 1) * W + l < classes ? -1 : 0;
    const float inverse = 1.0f / static_cast<float>(samples);
    RowSumCheck rows{low, high};
    // Flat: rows of fewer than 16 floats in one or two vectors (C < 16 on AVX-512 and AVX2).
    const bool flat = (kVectors == 1 || kVectors == 2) && x.stride_k == classes && classes < 16;
    IntLanes flat_tail;
    const int64_t flat_last = (samples * classes - 1) / W * W;
    for (int64_t l = 0; l < W; ++l) flat_tail[l] = flat_last + l < samples * classes ? -1 : 0;
    int64_t n = begin;
    // C <= W: whole groups of W points read in place, a point a lane, any K. Against
    // the flat pass (pool in cache, one thread, ns a vector of 16 values, K = 20 unless
    // given): at 16 lanes float32 C = 3 12.0 -> 6.9, 7 7.6 -> 5.3, 10 5.9 -> 5.0,
    // (30, 10) 6.0 -> 4.9, (100, 3) 9.4 -> 6.3, 12 5.7 -> 5.4, 13 and 15 within 3 %;
    // float16 C = 10 5.8 -> 5.2; at 8 lanes C = 5 12.5 -> 6.7, 8 10.0 -> 6.3.
    if (kVectors == 1) {
      rows.outside += groups_in_lanes<kIsa>(x, n, std::min(end, in_place_end), samples, classes, inverse, low, high,
                                            out, std::make_index_sequence<W>{});
    }
    // One point's rows at row0, `stride` apart, with their last vectors packed or not.
    const TailPacking packing = tail_packing(classes, vectors);
    const auto rows_of_point = [&](const auto* row0, int64_t stride) [[gnu::always_inline]] {
      // Not at 8 lanes past 4 vectors a row: there the 8 class sums take half of AVX2's
      // 16 registers, and packed rows ran slower (C = 50, float16: 4 % more time).
      if constexpr (kVectors >= 2 && (W == 16 ? kVectors <= 8 : W == 8 && kVectors <= 4)) {
        if (packing.group == 4) {
          point_terms<kVectors, 4, kIsa>(row0, stride, n, samples, vectors, tail, packing, inverse, column, rows, out);
          return;
        }
        if (packing.group == 2) {
          point_terms<kVectors, 2, kIsa>(row0, stride, n, samples, vectors, tail, packing, inverse, column, rows, out);
          return;
        }
      }
      point_terms<kVectors, 1, kIsa>(row0, stride, n, samples, vectors, tail, packing, inverse, column, rows, out);
    };
    for (; n < end; ++n) {
      if (n < in_place_end && flat) {
        point_terms_flat<kVectors == 2 ? 2 : 1, kIsa>(x.data + n * x.stride_n, n, samples, tail, flat_tail, inverse,
                                                      gathered, rows, out, classes);
      } else if (n < in_place_end) {
        rows_of_point(x.data + n * x.stride_n, x.stride_k);
      } else {
        for (int64_t k = 0; k < samples; ++k)
          for (int64_t c = 0; c < classes; ++c) gathered[k * width + c] = x(n, k, c);
        rows_of_point(static_cast<const float*>(gathered), width);
      }
    }
    return rows.total();
  }
};

template <typename T>
using EntropiesOfPoints = int64_t (*)(const LogProbs<T>&, int64_t, int64_t, int64_t, const EntropyOutputs&, int64_t,
                                      int64_t, float, float, float*, float*);

// The pass per element type, row width (1, 2, 4, 8 vectors in registers; 0: any C)
// and instruction set.
#define KBALD_ENTROPIES_OF_POINTS(isa, attributes)                                                                  \
  template <int64_t kVectors, typename T>                                                                          \
  attributes int64_t entropies_of_points_##isa(const LogProbs<T>& x, int64_t begin, int64_t end,                  \
                                              int64_t in_place_end, const EntropyOutputs& out, int64_t samples,   \
                                              int64_t classes, float low, float high, float* gathered,            \
                                              float* column) {                                                    \
    return OnePass<kVectorWidth<HostIsa::isa>>::template entropies_of_points<kVectors, HostIsa::isa>(               \
        x, begin, end, in_place_end, out, samples, classes, low, high, gathered, column);                         \
  }
KBALD_FOR_EACH_HOST_ISA(KBALD_ENTROPIES_OF_POINTS)
#undef KBALD_ENTROPIES_OF_POINTS

template <HostIsa kIsa, int64_t kVectors, typename T>
constexpr EntropiesOfPoints<T> kEntropiesOfPoints =
    kIsa == HostIsa::kX86_64_V4   ? entropies_of_points_kX86_64_V4<kVectors, T>
    : kIsa == HostIsa::kX86_64_V3 ? entropies_of_points_kX86_64_V3<kVectors, T>
                                  : entropies_of_points_kBaseline<kVectors, T>;

// The pass over the whole pool at one instruction set: OpenMP over blocks of points,
// each block one call of that set's entry point.
template <HostIsa kIsa, typename T>
int64_t entropies_at(const LogProbs<T>& log_probs, const EntropyOutputs& out, int64_t points, int64_t samples,
                     int64_t classes, float low, float high) {
  constexpr int64_t W = kVectorWidth<kIsa>;
  const int64_t vectors = (classes + W - 1) / W;
  const int64_t width = vectors * W;
  const EntropiesOfPoints<T> pass = vectors == 1   ? kEntropiesOfPoints<kIsa, 1, T>
                                    : vectors == 2 ? kEntropiesOfPoints<kIsa, 2, T>
                                    : vectors <= 4 ? kEntropiesOfPoints<kIsa, 4, T>
                                    : vectors <= 8 ? kEntropiesOfPoints<kIsa, 8, T>
                                                   : kEntropiesOfPoints<kIsa, 0, T>;
  // Points read in place: classes contiguous, and a point's last row start plus a whole
  // vector row inside the pool's extent (its last element + 1; torch strides are >= 0).
  const int64_t extent = (points - 1) * log_probs.stride_n + (samples - 1) * log_probs.stride_k +
                         (classes - 1) * log_probs.stride_c + 1;
  // A point's furthest read: its last row's whole vectors, or (C < W, rows
  // contiguous) its K·C values rounded up to whole vectors.
  const int64_t last_row = std::max((samples - 1) * log_probs.stride_k + width, (samples * classes + W - 1) / W * W);
  int64_t in_place_end = 0;
  if (log_probs.stride_c == 1) {
    if (log_probs.stride_n == 0) {
      in_place_end = last_row <= extent ? points : 0;
    } else {
      in_place_end = extent >= last_row ? std::min(points, (extent - last_row) / log_probs.stride_n + 1) : 0;
    }
  }
  // Blocks of points, so the entry point is called per block, not per point.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (points + kBlock - 1) / kBlock;
  int64_t invalid = 0;
  // A small pool stays on the calling thread: waking the team costs more than its pass.
  constexpr int64_t kValuesPerThread = 1 << 16;
#pragma omp parallel reduction(+ : invalid) if (points * samples * classes > kValuesPerThread)
  {
    // `gathered` also holds a flat point's probabilities (K·C + W floats).
    std::vector<float> gathered(samples * width + W, 0.0f), column(width);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      invalid += pass(log_probs, b * kBlock, std::min(points, (b + 1) * kBlock), in_place_end, out, samples, classes,
                      low, high, gathered.data(), column.data());
  }
  return invalid;
}

}  // namespace

template <typename T>
void probabilities(const LogProbs<T>& log_probs, float* probs, int64_t points, int64_t samples, int64_t classes) {
  const int64_t count = samples * classes;
#pragma omp parallel
  {
    std::vector<float> values(count);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n)
      exp_keeping_nan(point_log_probs(log_probs, n, samples, classes, values.data()), probs + n * count, count);
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
  if (points == 0) return 0;
  const EntropyOutputs out{entropy, conditional, confidence, margin};
  switch (host_isa()) {
    case HostIsa::kX86_64_V4:
      return entropies_at<HostIsa::kX86_64_V4>(log_probs, out, points, samples, classes, low, high);
    case HostIsa::kX86_64_V3:
      return entropies_at<HostIsa::kX86_64_V3>(log_probs, out, points, samples, classes, low, high);
    default:
      return entropies_at<HostIsa::kBaseline>(log_probs, out, points, samples, classes, low, high);
  }
}

#define KBALD_INSTANTIATE(T) \
  template void probabilities<T>(const LogProbs<T>&, float*, int64_t, int64_t, int64_t); \
  template void probability_sums<T>(const LogProbs<T>&, float*, int64_t, int64_t, int64_t); \
  template int64_t entropies<T>(const LogProbs<T>&, float*, float*, float*, float*, int64_t, int64_t, int64_t, \
                                float, float);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
