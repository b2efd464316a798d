"""EPIG (Bickford Smith et al. 2023): the pool × target pairwise mutual information
with a weighted row-sum epilogue, so the [N, T] block is never stored.

A program owns POINTS pool points (TILE (point, class) rows) and walks every target
tile: a GEMM over K into a [TILE, TILE] joint in registers (per pair of class
blocks past 64 classes), the entropy epilogue of the pairwise kernel, and
Σ_t v[t]·I[Y_n; Y_t] accumulated per pool point. Targets
are few (hundreds to thousands) and re-read from cache by every program.
"""

import math

import torch
import triton
import triton.language as tl

from .. import reference
from .launch import on_device, prune_wide_float32, warp_configs
from .pairwise_mutual_information import BLOCK_K, class_block, pair_joint_entropy_tile

# (point, class) rows of the pool and of the targets per tile. The pairwise kernel's
# 128 × 128 joint spilled 20-44 B a thread here at 8 and 16 warps (the target loop
# keeps more state live); 64 × 64 does not (python_tests/compile_triton_kernels.py),
# so C above 64 is walked in class blocks of 64.
TILE = 64


# Wide float32 tiles spilled 68 B a thread at 2 stages on sm_90 (ptxas held them to
# 128 registers) and none at 3.
@triton.autotune(configs=warp_configs((8,)), key=["n_samples", "n_classes"],
                 prune_configs_by={"early_config_prune": prune_wide_float32((3,), "a_ptr")})
@triton.jit
def _epig_kernel(a_ptr, sa_n, sa_k, sa_c, t_ptr, st_n, st_k, st_c, n_pool, n_targets, n_samples, n_classes,
                 entropy_pool, entropy_targets, weights_ptr, out_ptr,
                 WIDE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr, TILE: tl.constexpr):
    POINTS: tl.constexpr = TILE // BLOCK_C
    pid = tl.program_id(0)
    lane_points = (tl.arange(0, TILE) // BLOCK_C).to(tl.int64)
    rows_a = pid.to(tl.int64) * POINTS + lane_points
    points_a = pid.to(tl.int64) * POINTS + tl.arange(0, POINTS)
    mask_a = points_a < n_pool
    h_a = tl.load(entropy_pool + points_a, mask=mask_a, other=0.0)
    total = tl.zeros([POINTS], dtype=tl.float32)
    for t0 in range(0, n_targets, POINTS):
        rows_t = t0 + lane_points
        joint_entropy = pair_joint_entropy_tile(a_ptr, sa_n, sa_k, sa_c, rows_a, rows_a < n_pool, t_ptr, st_n, st_k,
                                                st_c, rows_t, rows_t < n_targets, n_classes, n_samples,
                                                WIDE, BLOCK_C, BLOCK_K, TILE)
        points_t = t0 + tl.arange(0, POINTS).to(tl.int64)
        mask_t = points_t < n_targets
        h_t = tl.load(entropy_targets + points_t, mask=mask_t, other=0.0)
        weight = tl.load(weights_ptr + points_t, mask=mask_t, other=0.0)
        mi = h_a[:, None] + h_t[None, :] - joint_entropy
        total += tl.sum(tl.where(mask_t[None, :], mi * weight[None, :], 0.0), axis=1)
    tl.store(out_ptr + points_a, total, mask=mask_a)


def epig(log_probs, target_log_probs, entropies_pt, target_weights):
    """Triton twin of :func:`kbald_kernels.reference.epig`; float32 [N]. float64
    input goes to the reference."""
    if log_probs.dtype == torch.float64:
        return reference.epig(log_probs, target_log_probs, entropies_pt, target_weights)
    n_pool, n_samples, n_classes = log_probs.shape
    n_targets = target_log_probs.shape[0]
    entropy_pool, entropy_targets = (h.float().contiguous() for h in entropies_pt)
    weights = target_weights.float().contiguous()
    block_c = class_block(n_classes, TILE)
    # Poisoned, so a point the kernel fails to write cannot pass for a score.
    out = torch.full((n_pool,), math.nan, dtype=torch.float32, device=log_probs.device)
    with on_device(log_probs.device):
        _epig_kernel[(triton.cdiv(n_pool, TILE // block_c),)](
            log_probs, *log_probs.stride(), target_log_probs, *target_log_probs.stride(), n_pool, n_targets,
            n_samples, n_classes, entropy_pool, entropy_targets, weights, out,
            WIDE=n_classes > block_c, BLOCK_C=block_c, BLOCK_K=BLOCK_K, TILE=TILE)
    return out
