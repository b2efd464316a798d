"""Counter-based random numbers for Triton kernels: Philox4x32-10, bit-identical to
:func:`kbald_kernels.reference.philox4x32`, keyed by (seed, step, index)."""

import triton
import triton.language as tl


@triton.jit
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    round_a = tl.full([], 0xD2511F53, tl.uint32)
    round_b = tl.full([], 0xCD9E8D57, tl.uint32)
    key_a = tl.full([], 0x9E3779B9, tl.uint32)
    key_b = tl.full([], 0xBB67AE85, tl.uint32)
    for _ in tl.static_range(10):
        hi0 = tl.umulhi(c0, round_a)
        lo0 = c0 * round_a
        hi1 = tl.umulhi(c2, round_b)
        lo1 = c2 * round_b
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = k0 + key_a
        k1 = k1 + key_b
    return c0, c1, c2, c3


@triton.jit
def gumbel_noise(seed_lo, seed_hi, step, index, DTYPE: tl.constexpr):
    """Standard Gumbel noise for int64 ``index`` at ``step``, as the reference's gumbel_noise."""
    c0 = (index & 0xFFFFFFFF).to(tl.uint32)
    c1 = (index >> 32).to(tl.uint32)
    # tl.cast, not .to(): Triton may specialise a scalar argument equal to 1 into a constant.
    c2 = tl.zeros_like(c0) + tl.cast(step, tl.uint32)
    c3 = tl.zeros_like(c0)
    word, _, _, _ = philox4x32_10(c0, c1, c2, c3, tl.cast(seed_lo, tl.uint32), tl.cast(seed_hi, tl.uint32))
    uniform = ((word >> 8).to(DTYPE) + 0.5) * (1.0 / 16777216.0)
    return -tl.log(-tl.log(uniform))
