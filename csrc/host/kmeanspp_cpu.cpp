#include "kmeanspp_cpu.h"

#include "cpu_clones.h"
#include "prefetch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace kbald::host {
namespace {

// Philox4x32-10 (Salmon et al. 2011), the first output word of counter
// (index low, index high, step, 0) under key (seed low, seed high).
uint32_t philox_first_word(uint64_t index, uint64_t step, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(index), c1 = static_cast<uint32_t>(index >> 32);
  uint32_t c2 = static_cast<uint32_t>(step), c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{0xD2511F53} * c0, p1 = uint64_t{0xCD9E8D57} * c2;
    const uint32_t next0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t next2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = next0;
    c2 = next2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// The best candidate so far: the larger tier, then the larger key, then the smaller
// pool index `rank_index` (the point's index in the whole pool; `index` is its row here).
struct Best {
  int tier = -1;
  double key = -std::numeric_limits<double>::infinity();
  int64_t index = -1, rank_index = -1;

  void offer(int t, double k, int64_t i, int64_t pool_index) {
    if (t > tier || (t == tier && (k > key || (k == key && pool_index < rank_index)))) {
      tier = t;
      key = k;
      index = i;
      rank_index = pool_index;
    }
  }

  void offer(const Best& other) {
    if (other.index >= 0) offer(other.tier, other.key, other.index, other.rank_index);
  }

  // A point at running distance d: tier 3 (no center yet: uniform), 2 (d > 0: log d +
  // Gumbel, or d itself with argmax), 1 (d = 0: uniform); the noise keyed by its pool index.
  void offer_point(float distance, int64_t n, int64_t pool_index, uint64_t seed, int64_t step, bool argmax) {
    const double d = distance;
    const int t = d == std::numeric_limits<double>::infinity() ? 3 : d > 0 ? 2 : 1;
    if (t < tier) return;  // a higher tier always wins: no noise needed
    double k;
    if (argmax && t != 3) {
      k = d;
    } else {
      const double noise = gumbel_noise(seed, step, pool_index);
      k = t == 2 ? std::log(d) + noise : noise;
    }
    offer(t, k, n, pool_index);
  }
};

// Row-by-center sums, each a cloned function per element type (see cpu_clones.h):
// the loops vectorise for the CPU at hand.
template <typename T>
[[gnu::always_inline]] inline float dot_row(const T* a, const float* b, int64_t width) {
  float total = 0.0f;
#pragma omp simd reduction(+ : total)
  for (int64_t f = 0; f < width; ++f) total += to_float(a[f]) * b[f];
  return total;
}

template <typename T>
[[gnu::always_inline]] inline float squared_distance_row(const T* a, const float* b, int64_t width) {
  float total = 0.0f;
#pragma omp simd reduction(+ : total)
  for (int64_t f = 0; f < width; ++f) {
    const float diff = to_float(a[f]) - b[f];
    total += diff * diff;
  }
  return total;
}

// A value is NaN or ±inf when its exponent bits are all set. Or-ing one flag per
// value keeps the loop at one cheap operation per vector (a float sum's chain of
// additions waits on each one's latency).
template <typename T>
[[gnu::always_inline]] inline bool finite_row(const T* a, int64_t width) {
  uint32_t non_finite = 0;
#pragma omp simd reduction(| : non_finite)
  for (int64_t f = 0; f < width; ++f) {
    const float v = to_float(a[f]);
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    non_finite |= (bits & 0x7f800000u) == 0x7f800000u;
  }
  return non_finite == 0;
}

#define KBALD_ROW_SUMS(T)                                                                                       \
  KBALD_CPU_CLONES float dot_of(const T* a, const float* b, int64_t width) { return dot_row(a, b, width); }  \
  KBALD_CPU_CLONES float squared_distance_of(const T* a, const float* b, int64_t width) {                    \
    return squared_distance_row(a, b, width);                                                                  \
  }                                                                                                            \
  KBALD_CPU_CLONES bool finite_row_of(const T* a, int64_t width) { return finite_row(a, width); }
KBALD_ROW_SUMS(float)
KBALD_ROW_SUMS(Half)
KBALD_ROW_SUMS(BFloat16)
#undef KBALD_ROW_SUMS

template <typename T>
float dot(const Rows<T>& a, int64_t n, const float* b) {
  return dot_of(a.data + n * a.stride, b, a.width);
}

template <typename T>
float squared_distance(const Rows<T>& a, int64_t n, const float* b) {
  return squared_distance_of(a.data + n * a.stride, b, a.width);
}

// A step reads every selectable row once, with a few dozen operations per value: the
// hardware's own prefetch left it waiting on memory (k-means++ 50 picks, N=100 000,
// D=256: 349 -> 190-240 ms with each row asked for into L2 four rows ahead).
constexpr int64_t kRowsAhead = 4;

template <typename T>
void prefetch_row(const Rows<T>& a, int64_t n) {
  prefetch_into_l2(a.data + n * a.stride, a.width * static_cast<int64_t>(sizeof(T)));
}

template <typename T>
std::vector<float> row(const Rows<T>& a, int64_t n) {
  std::vector<float> out(a.width);
  for (int64_t f = 0; f < a.width; ++f) out[f] = a(n, f);
  return out;
}

// |h_n|²·|r_n|² by the cross terms' own dot products (a row against its float copy,
// in a per-thread buffer: no allocation per row).
template <typename T>
float norm_product(const Rows<T>& x, const Rows<T>& residuals, int64_t n) {
  thread_local std::vector<float> copy;
  copy.resize(std::max(x.width, residuals.width));
  for (int64_t f = 0; f < x.width; ++f) copy[f] = x(n, f);
  const float features = dot(x, n, copy.data());
  for (int64_t f = 0; f < residuals.width; ++f) copy[f] = residuals(n, f);
  return features * dot(residuals, n, copy.data());
}

}  // namespace

double gumbel_noise(uint64_t seed, int64_t step, int64_t index) {
  const uint32_t word = philox_first_word(static_cast<uint64_t>(index), static_cast<uint64_t>(step), seed);
  const double uniform = (static_cast<double>(word >> 8) + 0.5) * 0x1p-24;
  return -std::log(-std::log(uniform));
}

template <typename T>
void kmeanspp_steps(const Rows<T>& x, const Rows<T>* residuals, int64_t points, float* min_distances,
                    uint8_t* selected, int64_t newest, uint64_t seed, int64_t first_step, int64_t steps, bool argmax,
                    const int64_t* pool_indices, int64_t* indices, float* scores) {
  // Factored: |h|²·|r|² by the same dot products as the cross terms, so an exact
  // duplicate of a center is at distance exactly 0. Over several steps they are
  // computed once, for the points still selectable and the newest center (no other
  // row is read); a single step (a lazy ordering's next) computes each point's as
  // it reads the row: one pass over the pool, not two.
  const bool cached_norms = residuals != nullptr && steps > 1;
  std::vector<float> norm_products;
  if (cached_norms) {
    norm_products.resize(points);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < points; ++n) {
      if (selected[n] && n != newest) continue;
      norm_products[n] = norm_product(x, *residuals, n);
    }
  }
  for (int64_t slot = 0; slot < steps; ++slot) {
    const int64_t step = first_step + slot;
    std::vector<float> center, center_residual;
    float center_norms = 0.0f;
    if (newest >= 0) {
      center = row(x, newest);
      if (residuals != nullptr) {
        center_residual = row(*residuals, newest);
        center_norms = cached_norms ? norm_products[newest] : norm_product(x, *residuals, newest);
      }
    }
    Best best;
#pragma omp parallel
    {
      Best mine;
#pragma omp for schedule(static)
      for (int64_t n = 0; n < points; ++n) {
        if (selected[n]) continue;  // never drawn again: not read, and its distance kept
        if (n + kRowsAhead < points) {
          prefetch_row(x, n + kRowsAhead);
          if (residuals != nullptr) prefetch_row(*residuals, n + kRowsAhead);
        }
        float d = min_distances[n];
        if (newest >= 0) {
          float distance;
          if (residuals == nullptr) {
            distance = squared_distance(x, n, center.data());
          } else {
            const float cross = dot(x, n, center.data()) * dot(*residuals, n, center_residual.data());
            const float norms = cached_norms ? norm_products[n] : norm_product(x, *residuals, n);
            distance = std::max(0.0f, norms + center_norms - 2.0f * cross);
          }
          d = std::min(d, distance);
          min_distances[n] = d;
        }
        mine.offer_point(d, n, pool_indices != nullptr ? pool_indices[n] : n, seed, step, argmax);
      }
#pragma omp critical
      best.offer(mine);
    }
    if (best.index < 0) return;  // nothing left to pick (the caller bounds the steps)
    indices[slot] = best.index;
    scores[slot] = min_distances[best.index];
    selected[best.index] = 1;
    newest = best.index;
  }
}

// Rows are gathered and checked a block at a time, the block's copies (16 KiB of
// float32 rows of 128) still in L1 when one vector loop checks them all: a call and
// a horizontal sum per row cost about as much as a second read.
constexpr int64_t kGatherBlockBytes = 16 * 1024;

template <typename T>
int64_t gather_rows(const Rows<T>& x, const int64_t* rows, int64_t count, T* out) {
  const int64_t row_bytes = x.width * static_cast<int64_t>(sizeof(T));
  const int64_t block = std::max<int64_t>(1, kGatherBlockBytes / row_bytes);
  const int64_t blocks = (count + block - 1) / block;
  int64_t first_invalid_block = blocks;
#pragma omp parallel for schedule(static) reduction(min : first_invalid_block)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * block, last = std::min(count, first + block);
    for (int64_t n = first; n < last; ++n) {
      if (n + kRowsAhead < count) prefetch_row(x, rows[n + kRowsAhead]);
      std::memcpy(out + n * x.width, x.data + rows[n] * x.stride, row_bytes);
    }
    if (b < first_invalid_block && !finite_row_of(out + first * x.width, (last - first) * x.width))
      first_invalid_block = b;
  }
  if (first_invalid_block == blocks) return -1;
  for (int64_t n = first_invalid_block * block;; ++n)
    if (!finite_row_of(out + n * x.width, x.width)) return n;
}

Candidate kmeanspp_candidate(const float* min_distances, const uint8_t* selected, const int64_t* pool_indices,
                             int64_t points, uint64_t seed, int64_t step, bool argmax) {
  Best best;
#pragma omp parallel
  {
    Best mine;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < points; ++n)
      if (!selected[n]) mine.offer_point(min_distances[n], n, pool_indices[n], seed, step, argmax);
#pragma omp critical
    best.offer(mine);
  }
  return {best.tier, best.key, best.index};
}

template <typename T>
void min_squared_distances(const Rows<T>& x, const Rows<T>* residuals, int64_t points, const float* center_x,
                           const float* center_r, int64_t centers, float* out) {
  const int64_t width = x.width, width_r = residuals != nullptr ? residuals->width : 0;
  // Factored: the centers' |h|²·|r|² by the same dot products as the points' own.
  std::vector<float> center_norms(residuals != nullptr ? centers : 0);
  for (int64_t j = 0; j < static_cast<int64_t>(center_norms.size()); ++j)
    center_norms[j] = dot_of(center_x + j * width, center_x + j * width, width) *
                      dot_of(center_r + j * width_r, center_r + j * width_r, width_r);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < points; ++n) {
    float d = std::numeric_limits<float>::infinity();
    if (residuals == nullptr) {
      for (int64_t j = 0; j < centers; ++j) d = std::min(d, squared_distance(x, n, center_x + j * width));
    } else {
      const float norms = norm_product(x, *residuals, n);
      for (int64_t j = 0; j < centers; ++j) {
        const float cross = dot(x, n, center_x + j * width) * dot(*residuals, n, center_r + j * width_r);
        d = std::min(d, std::max(0.0f, norms + center_norms[j] - 2.0f * cross));
      }
    }
    out[n] = d;
  }
}

#define KBALD_INSTANTIATE(T)                                                                                    \
  template void min_squared_distances<T>(const Rows<T>&, const Rows<T>*, int64_t, const float*, const float*,  \
                                         int64_t, float*);                                                     \
  template void kmeanspp_steps<T>(const Rows<T>&, const Rows<T>*, int64_t, float*, uint8_t*, int64_t, uint64_t, \
                                  int64_t, int64_t, bool, const int64_t*, int64_t*, float*);                    \
  template int64_t gather_rows<T>(const Rows<T>&, const int64_t*, int64_t, T*);
KBALD_INSTANTIATE(float)
KBALD_INSTANTIATE(Half)
KBALD_INSTANTIATE(BFloat16)
#undef KBALD_INSTANTIATE

}  // namespace kbald::host
