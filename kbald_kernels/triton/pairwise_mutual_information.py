"""Pairwise mutual information I[Y_n; Y_m] for a block of pool points: a GEMM over
the K posterior samples with an entropy epilogue in registers.

A tile pairs POINTS points of ``a`` with POINTS points of ``b``; its rows are
(point, class) pairs of ``a`` and its columns (point, class) pairs of ``b``, with
the class block padded to a power of two by masked zeros. ``tl.dot`` accumulates
Σ_k p[n,k,c]·p[m,k,d]; the epilogue takes x log x and sums each block of the
pair's joint. Up to C = TILE one block holds every class (several points a tile);
wider C is walked block by block, one point a tile, each block pair's joint summed
into H(J) and dropped, so no [C, C] joint is kept. The joint is never written to
memory. For ``b=None`` only tiles on or above the diagonal run, each writing
itself and its transpose.
"""

import math

import torch
import triton
import triton.language as tl

from .. import reference
from .information_terms import entropies
from .launch import on_device, prune_wide_float32, warp_configs

TILE = 128  # rows (and columns) of (point, class) pairs per tile
BLOCK_K = 16


def class_block(n_classes, tile, narrowest=1):
    """The class block of a tile of ``tile`` (point, class) rows: C padded to a power
    of two (at least ``narrowest``), or the whole tile when C is wider."""
    return min(max(narrowest, triton.next_power_of_2(n_classes)), tile)


@triton.jit
def _load_probs(ptr, stride_n, stride_k, stride_c, points, classes, valid, k0, n_samples,
                BLOCK_K: tl.constexpr, TRANSPOSED: tl.constexpr):
    ks = k0 + tl.arange(0, BLOCK_K)
    if TRANSPOSED:  # [BLOCK_K, TILE]
        offsets = points[None, :] * stride_n + ks[:, None].to(tl.int64) * stride_k + classes[None, :] * stride_c
        mask = valid[None, :] & (ks < n_samples)[:, None]
    else:  # [TILE, BLOCK_K]
        offsets = points[:, None] * stride_n + ks[None, :].to(tl.int64) * stride_k + classes[:, None] * stride_c
        mask = valid[:, None] & (ks < n_samples)[None, :]
    return tl.exp(tl.load(ptr + offsets, mask=mask, other=-float("inf")).to(tl.float32))


@triton.jit
def _block_pair_joint_entropy(a_ptr, sa_n, sa_k, sa_c, rows_a, points_a_valid, b_ptr, sb_n, sb_k, sb_c, rows_b,
                              points_b_valid, c0, d0, n_classes, n_samples,
                              BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr, TILE: tl.constexpr):
    """-Σ J log J over classes [c0, c0 + BLOCK_C) of ``a`` by [d0, d0 + BLOCK_C) of ``b``."""
    POINTS: tl.constexpr = TILE // BLOCK_C
    lane_classes = (tl.arange(0, TILE) % BLOCK_C).to(tl.int64)
    classes_a = c0 + lane_classes
    classes_b = d0 + lane_classes
    valid_a = points_a_valid & (classes_a < n_classes)
    valid_b = points_b_valid & (classes_b < n_classes)
    joint = tl.zeros([TILE, TILE], dtype=tl.float32)
    for k0 in range(0, n_samples, BLOCK_K):
        pa = _load_probs(a_ptr, sa_n, sa_k, sa_c, rows_a, classes_a, valid_a, k0, n_samples, BLOCK_K, False)
        pb = _load_probs(b_ptr, sb_n, sb_k, sb_c, rows_b, classes_b, valid_b, k0, n_samples, BLOCK_K, True)
        joint += tl.dot(pa, pb, input_precision="ieee")
    joint = joint / n_samples
    terms = tl.where(joint > 0, joint * tl.log(tl.where(joint > 0, joint, 1.0)), 0.0)
    return -tl.sum(tl.sum(tl.reshape(terms, [POINTS, BLOCK_C, POINTS, BLOCK_C]), axis=3), axis=1)


@triton.jit
def pair_joint_entropy_tile(a_ptr, sa_n, sa_k, sa_c, rows_a, points_a_valid, b_ptr, sb_n, sb_k, sb_c, rows_b,
                            points_b_valid, n_classes, n_samples,
                            WIDE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr, TILE: tl.constexpr):
    """H(J[n, m]) for the tile's points of ``a`` against its points of ``b``, [POINTS, POINTS]:
    each class block pair's joint accumulates over K in registers and never leaves them.
    Only WIDE tiles (C above BLOCK_C) loop over block pairs: the loops' live state
    spilled the one-block tile at 8 warps."""
    if WIDE:
        POINTS: tl.constexpr = TILE // BLOCK_C
        joint_entropy = tl.zeros([POINTS, POINTS], dtype=tl.float32)
        for c0 in range(0, n_classes, BLOCK_C):
            for d0 in range(0, n_classes, BLOCK_C):
                joint_entropy += _block_pair_joint_entropy(a_ptr, sa_n, sa_k, sa_c, rows_a, points_a_valid, b_ptr,
                                                           sb_n, sb_k, sb_c, rows_b, points_b_valid, c0, d0,
                                                           n_classes, n_samples, BLOCK_C, BLOCK_K, TILE)
    else:
        joint_entropy = _block_pair_joint_entropy(a_ptr, sa_n, sa_k, sa_c, rows_a, points_a_valid, b_ptr, sb_n, sb_k,
                                                  sb_c, rows_b, points_b_valid, 0, 0, n_classes, n_samples,
                                                  BLOCK_C, BLOCK_K, TILE)
    return joint_entropy


# A 128 × 128 fp32 accumulator is 128 registers a thread at 4 warps, and ptxas
# spills it (python_tests/compile_triton_kernels.py reports it); 8 warps do not;
# 16 spilled 12 B a thread at C > 64, so only the pipeline depth is tuned. Wide
# float32 tiles spilled 40 B a thread at 3 stages on sm_90.
@triton.autotune(configs=warp_configs((8,)), key=["n_samples", "n_classes"],
                 prune_configs_by={"early_config_prune": prune_wide_float32((2,), "a_ptr")})
@triton.jit
def _pairwise_mi_kernel(a_ptr, sa_n, sa_k, sa_c, b_ptr, sb_n, sb_k, sb_c, n_a, n_b, n_samples, n_classes,
                        entropy_a, entropy_b, out_ptr, stride_out,
                        SYMMETRIC: tl.constexpr, WIDE: tl.constexpr, BLOCK_C: tl.constexpr,
                        BLOCK_K: tl.constexpr, TILE: tl.constexpr):
    POINTS: tl.constexpr = TILE // BLOCK_C
    pid_j = tl.program_id(0)  # the long axis: grid axis 0 takes 2³¹ programs, axis 1 only 65 535
    pid_i = tl.program_id(1)
    if SYMMETRIC and pid_j < pid_i:
        return
    lane_points = tl.arange(0, TILE) // BLOCK_C
    rows_a = pid_i.to(tl.int64) * POINTS + lane_points
    rows_b = pid_j.to(tl.int64) * POINTS + lane_points
    joint_entropy = pair_joint_entropy_tile(a_ptr, sa_n, sa_k, sa_c, rows_a, rows_a < n_a, b_ptr, sb_n, sb_k, sb_c,
                                            rows_b, rows_b < n_b, n_classes, n_samples, WIDE, BLOCK_C, BLOCK_K, TILE)
    points_a = pid_i.to(tl.int64) * POINTS + tl.arange(0, POINTS)
    points_b = pid_j.to(tl.int64) * POINTS + tl.arange(0, POINTS)
    mask_a = points_a < n_a
    mask_b = points_b < n_b
    h_a = tl.load(entropy_a + points_a, mask=mask_a, other=0.0)
    h_b = tl.load(entropy_b + points_b, mask=mask_b, other=0.0)
    mi = h_a[:, None] + h_b[None, :] - joint_entropy
    mask = mask_a[:, None] & mask_b[None, :]
    tl.store(out_ptr + points_a[:, None] * stride_out + points_b[None, :], mi, mask=mask)
    if SYMMETRIC:
        if pid_j != pid_i:  # a diagonal tile is its own transpose: stored once
            tl.store(out_ptr + points_b[None, :] * stride_out + points_a[:, None], mi, mask=mask)


def pairwise_mutual_information(a, b=None, entropies_ab=None):
    """Triton twin of :func:`kbald_kernels.reference.pairwise_mutual_information`; float32 [Na, Nb].

    float64 input goes to the reference.
    """
    if a.dtype == torch.float64:
        return reference.pairwise_mutual_information(a, b, entropies_ab)
    symmetric = b is None
    if symmetric:
        b = a
    elif a.shape[0] > b.shape[0]:
        # The longer side goes on the grid's first axis, which takes 2³¹ programs.
        swapped = None if entropies_ab is None else entropies_ab[::-1]
        return pairwise_mutual_information(b, a, swapped).T.contiguous()
    n_a, n_samples, n_classes = a.shape
    n_b = b.shape[0]
    if entropies_ab is None:
        entropy_a = entropies(a)[0]
        entropy_b = entropy_a if symmetric else entropies(b)[0]
    else:
        entropy_a, entropy_b = (h.float().contiguous() for h in entropies_ab)
    # Poisoned, so a pair the kernel fails to write cannot pass for a value.
    out = torch.full((n_a, n_b), math.nan, dtype=torch.float32, device=a.device)
    block_c = class_block(n_classes, TILE)
    points = TILE // block_c
    grid = (triton.cdiv(n_b, points), triton.cdiv(n_a, points))
    if grid[1] > 65_535:
        raise ValueError(f"pairwise_mutual_information: both blocks have over {65_535 * points} points; "
                         "split the smaller one (the grid's second axis takes at most 65 535 programs)")
    with on_device(a.device):
        _pairwise_mi_kernel[grid](a, *a.stride(), b, *b.stride(), n_a, n_b, n_samples, n_classes,
                                  entropy_a, entropy_b, out, out.stride(0),
                                  SYMMETRIC=symmetric, WIDE=n_classes > block_c, BLOCK_C=block_c,
                                  BLOCK_K=BLOCK_K, TILE=TILE)
    return out
