// Entropy math shared verbatim by the host C++ module and the CUDA module, so the
// CPU twin and the GPU kernel cannot drift apart.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define KBALD_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KBALD_HOST_DEVICE inline
#endif

// Shared math the host also runs on 16-lane vectors: always inlined there, since an
// out-of-line copy would be called from per-instruction-set clones that pass such
// vectors in different registers (GCC's -Wpsabi note).
#if defined(__CUDACC__)
#define KBALD_HOST_DEVICE_INLINED __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define KBALD_HOST_DEVICE_INLINED inline __attribute__((always_inline))
#else
#define KBALD_HOST_DEVICE_INLINED inline
#endif

namespace kbald {

// A float's bits and back, on host and device.
KBALD_HOST_DEVICE int32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(x);
#elif defined(__GNUC__)
  return __builtin_bit_cast(int32_t, x);  // memcpy would keep GCC from vectorising the caller
#else
  int32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

KBALD_HOST_DEVICE float float_from_bits(int32_t bits) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(bits);
#elif defined(__GNUC__)
  return __builtin_bit_cast(float, bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// x·log x with 0·log 0 = 0: a zero probability (log-probability -inf) carries no
// information, and the naive product would be 0·(-inf) = NaN.
template <typename T>
KBALD_HOST_DEVICE T xlogx(T x) {
  return x > T(0) ? x * log(x) : T(0);
}

// Shannon entropy (nats) of `n` probabilities spaced `stride` elements apart.
template <typename T>
KBALD_HOST_DEVICE T entropy(const T* p, int64_t n, int64_t stride) {
  T h = T(0);
  for (int64_t i = 0; i < n; ++i) h -= xlogx(p[i * stride]);
  return h;
}

}  // namespace kbald
