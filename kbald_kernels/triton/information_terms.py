"""Entropy and conditional entropy (and, on request, least confidence and margin) in
one pass over log-probabilities [N, K, C], with the input's validation riding on
the same pass.

Each program owns BLOCK_N pool points and streams their K×C values once,
accumulating the mean probability per class and Σ p log p, and checks every (n, k)
row's Σ_c p against the dtype's normalisation bounds (NaN and +inf fail them); one
write per output and one atomic max into the ``invalid`` flag per program.
fp32/fp16/bf16 in, fp32 accumulation and out (float64 input stays on the reference).
"""

import math

import torch
import triton
import triton.language as tl

from .. import reference
from ..reference.normalisation import normalisation_bounds
from .launch import on_device, warp_configs

BLOCK_K = 16
# Class means [BLOCK_N, BLOCK_C] a program holds: 16 points of 128 classes, fewer
# points as C widens (2 at C = 1 000), so wide C stays in registers.
CLASS_MEANS = 2048


@triton.autotune(configs=warp_configs(), key=["n_samples", "n_classes"])
@triton.jit
def _information_terms_kernel(lp_ptr, stride_n, stride_k, stride_c, n_points, n_samples, n_classes, low, high,
                              entropy_out, conditional_out, confidence_out, margin_out, invalid_out,
                              CONFIDENCE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                              BLOCK_C: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    cs = tl.arange(0, BLOCK_C)
    row_mask = rows < n_points
    class_mask = cs < n_classes
    mean_p = tl.zeros([BLOCK_N, BLOCK_C], dtype=tl.float32)
    p_log_p = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
    outside = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.int32)
    for k0 in range(0, n_samples, BLOCK_K):
        k_mask = (k0 + ks) < n_samples
        mask = row_mask[:, None, None] & k_mask[None, :, None] & class_mask[None, None, :]
        offsets = (rows[:, None, None] * stride_n + (k0 + ks)[None, :, None].to(tl.int64) * stride_k
                   + cs[None, None, :].to(tl.int64) * stride_c)
        lp = tl.load(lp_ptr + offsets, mask=mask, other=-float("inf")).to(tl.float32)
        p = tl.exp(lp)
        mean_p += tl.sum(p, axis=1)
        # 0·log 0 = 0: a -inf log-probability contributes nothing.
        p_log_p += tl.sum(p * tl.where(p > 0, lp, 0.0), axis=2)
        sums = tl.sum(p, axis=2)
        in_bounds = (sums >= low) & (sums <= high)  # false for NaN
        outside += tl.where(row_mask[:, None] & k_mask[None, :] & ~in_bounds, 1, 0)
    mean_p = mean_p / n_samples
    entropy = -tl.sum(tl.where(mean_p > 0, mean_p * tl.log(tl.where(mean_p > 0, mean_p, 1.0)), 0.0), axis=1)
    conditional = -tl.sum(p_log_p, axis=1) / n_samples
    tl.store(entropy_out + rows, entropy, mask=row_mask)
    tl.store(conditional_out + rows, conditional, mask=row_mask)
    if CONFIDENCE:
        # Padded classes hold 0, as does the top class once taken out, so the second
        # largest is exact (and 0 for a single class); a tie leaves a margin of 0.
        top = tl.max(mean_p, axis=1)
        top_class = tl.argmax(mean_p, axis=1, tie_break_left=True)
        second = tl.max(tl.where(cs[None, :] == top_class[:, None], 0.0, mean_p), axis=1)
        tl.store(confidence_out + rows, 1.0 - top, mask=row_mask)
        tl.store(margin_out + rows, top - second, mask=row_mask)
    tl.atomic_max(invalid_out, tl.max(tl.max(outside, axis=1), axis=0))


def _k_block(n_samples, widest):
    """The power of two from ``widest`` / 4 to ``widest`` that pads K least (the
    widest of those): K = 20 takes 4 (20 of 20 lanes used) rather than 16 (20 of 32),
    and no tile shrinks below a quarter of the widest, which would starve the loads."""
    blocks = [1 << i for i in range(widest.bit_length()) if widest // 4 <= 1 << i <= widest]
    return min(blocks, key=lambda b: (triton.cdiv(n_samples, b) * b, -b))


def entropies(log_probs):
    """Triton twin of :func:`kbald_kernels.reference.entropies`: (entropy,
    conditional_entropy, invalid) from one pass, float32 [N] each and a 0-dim int32
    device tensor, nonzero when some (n, k) row holds NaN or +inf or is not
    normalised. Nothing here reads it back: the caller does, once. float64 input goes
    to the reference."""
    if log_probs.dtype == torch.float64:
        return reference.entropies(log_probs)
    entropy, conditional, _, _, invalid = _information_terms(log_probs, confidence=False)
    return entropy, conditional, invalid


def uncertainties(log_probs):
    """Triton twin of :func:`kbald_kernels.reference.uncertainties`: the same pass as
    :func:`entropies`, which also stores least confidence and margin from the class
    means it holds in registers."""
    if log_probs.dtype == torch.float64:
        return reference.uncertainties(log_probs)
    return _information_terms(log_probs, confidence=True)


def _information_terms(log_probs, confidence):
    n_points, n_samples, n_classes = log_probs.shape
    device = log_probs.device
    # Poisoned, so a point the kernel fails to write cannot pass for a score.
    out = torch.full((4 if confidence else 2, n_points), math.nan, dtype=torch.float32, device=device)
    invalid = torch.zeros((), dtype=torch.int32, device=device)
    block_c = triton.next_power_of_2(n_classes)
    block_n = max(1, min(16, CLASS_MEANS // block_c))
    widest = min(BLOCK_K, triton.next_power_of_2(n_samples), 2 * CLASS_MEANS // (block_n * block_c))
    block_k = _k_block(n_samples, max(1, widest))
    with on_device(device):
        _information_terms_kernel[(triton.cdiv(n_points, block_n),)](
            log_probs, *log_probs.stride(), n_points, n_samples, n_classes, *normalisation_bounds(log_probs.dtype),
            *(out if confidence else (out[0], out[1], out[0], out[1])), invalid,
            CONFIDENCE=confidence, BLOCK_N=block_n, BLOCK_K=block_k, BLOCK_C=block_c)
    if confidence:
        return out[0], out[1], out[2], out[3], invalid
    return out[0], out[1], None, None, invalid
