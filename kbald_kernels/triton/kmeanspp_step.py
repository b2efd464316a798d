"""Fused k-means++ / k-center step: distance to the newest center, running-min update
and the next pick (Gumbel-max sample or argmax) in one pass over the pool.

Offsets are 64-bit (row index × row stride), so pools with N·D past 2³¹ elements
index correctly. Each program reduces its rows to one candidate (tier, key, index); a one-program
kernel reduces those, records the pick and marks it selected on the device, so a
sequence of steps runs without a host round trip. Tiers order the cases of the
reference step: 3 = no center yet (uniform), 2 = d > 0 (key log d + G, or d for
argmax), 1 = d = 0 but unselected (uniform, or smallest index for argmax),
0 = selected or padding.
"""

import math

import torch
import triton
import triton.language as tl

from ..reference.kmeanspp import DenseEmbeddings
from .launch import on_device
from .philox import gumbel_noise
from .select_candidate import step_buffers

BLOCK_N = 64
# Features a row per load, at 8 warps. Factored: 16, since at 64 × 64 and 4 warps
# each thread held 32 rows' 64-bit pointers and ptxas spilled up to 5 KB a thread
# (fp64). Dense: 64, so a program has 16 KB (fp32) of loads in flight, not 4: a
# 15 000-point pool makes only 235 programs for 132 SMs, and at 64 × 16 each
# waited on load latency; 64 × 64 takes 119-196 registers and spills nothing
# (python_tests/compile_triton_kernels.py).
FACTORED_BLOCK_FEATURES = 16
DENSE_BLOCK_FEATURES = 64
NUM_WARPS = 8


@triton.jit
def _dense_squared_distance(x_ptr, stride_x, rows, row_mask, center_ptr, width,
                            ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    acc = tl.zeros([BLOCK_N], dtype=ACC)
    cols = tl.arange(0, BLOCK_F)
    for f0 in range(0, width, BLOCK_F):
        col_mask = (f0 + cols) < width
        x = tl.load(x_ptr + rows[:, None] * stride_x + (f0 + cols)[None, :],
                    mask=row_mask[:, None] & col_mask[None, :], other=0.0).to(ACC)
        c = tl.load(center_ptr + f0 + cols, mask=col_mask, other=0.0).to(ACC)
        diff = x - c[None, :]
        acc += tl.sum(diff * diff, axis=1)
    return acc


@triton.jit
def _dots(a_ptr, stride_a, rows, row_mask, center_ptr, width,
          ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    """(a_i·a_i, a_i·c, c·c) per row. The center is loaded as a full tile so all three
    sums reduce identically: a row equal to the center gets bit-identical values."""
    own = tl.zeros([BLOCK_N], dtype=ACC)
    cross = tl.zeros([BLOCK_N], dtype=ACC)
    centre = tl.zeros([BLOCK_N], dtype=ACC)
    cols = tl.arange(0, BLOCK_F)
    broadcast = tl.zeros([BLOCK_N], dtype=tl.int64)
    for f0 in range(0, width, BLOCK_F):
        col_mask = (f0 + cols) < width
        mask = row_mask[:, None] & col_mask[None, :]
        a = tl.load(a_ptr + rows[:, None] * stride_a + (f0 + cols)[None, :], mask=mask, other=0.0).to(ACC)
        c = tl.load(center_ptr + broadcast[:, None] + (f0 + cols)[None, :], mask=mask, other=0.0).to(ACC)
        own += tl.sum(a * a, axis=1)
        cross += tl.sum(a * c, axis=1)
        centre += tl.sum(c * c, axis=1)
    return own, cross, centre


@triton.jit
def _factored_squared_distance(h_ptr, stride_h, r_ptr, stride_r, rows, row_mask, hc_ptr, rc_ptr, width_h, width_r,
                               ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    hh, hc, cc_h = _dots(h_ptr, stride_h, rows, row_mask, hc_ptr, width_h, ACC, BLOCK_N, BLOCK_F)
    rr, rc, cc_r = _dots(r_ptr, stride_r, rows, row_mask, rc_ptr, width_r, ACC, BLOCK_N, BLOCK_F)
    return tl.maximum(hh * rr + cc_h * cc_r - 2.0 * (hc * rc), 0.0)


@triton.jit
def _squared_distance(x_ptr, stride_x, r_ptr, stride_r, rows, row_mask, center_x, center_r, width, width_r,
                      FACTORED: tl.constexpr, ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    """Squared distance of each row to the center whose rows start at ``center_x`` (and ``center_r``)."""
    if FACTORED:
        return _factored_squared_distance(x_ptr, stride_x, r_ptr, stride_r, rows, row_mask, center_x, center_r,
                                          width, width_r, ACC, BLOCK_N, BLOCK_F)
    return _dense_squared_distance(x_ptr, stride_x, rows, row_mask, center_x, width, ACC, BLOCK_N, BLOCK_F)


# The step and the seed change between launches: not specialised, so no value
# (a 1, a multiple of 16) compiles a new variant mid-loop.
@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "step"])
def _step_kernel(x_ptr, stride_x, r_ptr, stride_r, width, width_r, n_points,
                 min_ptr, selected_ptr, newest_ptr, pool_index_ptr, seed_lo, seed_hi, step,
                 tier_out, key_out, index_out,
                 FACTORED: tl.constexpr, HAS_NEWEST: tl.constexpr, ARGMAX: tl.constexpr, POOL_INDICES: tl.constexpr,
                 ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < n_points
    d = tl.load(min_ptr + rows, mask=row_mask, other=0.0).to(ACC)
    unselected = row_mask & (tl.load(selected_ptr + rows, mask=row_mask, other=1) == 0)
    # The draw before the distance: across the distance's loop it holds one float a
    # row, where the pool indices' 64-bit addresses made ptxas spill (factored, triton 3.6).
    if POOL_INDICES:  # a gathered subset of a pool draws as the pool does (the indices ascend with the rows)
        noise = gumbel_noise(seed_lo, seed_hi, step, tl.load(pool_index_ptr + rows, mask=row_mask, other=0), ACC)
    else:
        noise = gumbel_noise(seed_lo, seed_hi, step, rows, ACC)
    if HAS_NEWEST:
        # Chosen and excluded rows are never drawn again: they read the newest
        # center's row instead of their own (a cache hit, not memory traffic), so a
        # candidate subset costs its own rows, and their distances stay as they were.
        center = tl.load(newest_ptr)
        read_rows = tl.where(unselected, rows, center)
        dist = _squared_distance(x_ptr, stride_x, r_ptr, stride_r, read_rows, row_mask, x_ptr + center * stride_x,
                                 r_ptr + center * stride_r, width, width_r, FACTORED, ACC, BLOCK_N, BLOCK_F)
        d = tl.where(unselected, tl.minimum(d, dist), d)
        tl.store(min_ptr + rows, d, mask=unselected)
    no_center = d == float("inf")
    tier = tl.where(unselected, tl.where(no_center, 3, tl.where(d > 0, 2, 1)), 0)
    if ARGMAX:
        key = tl.where(no_center, noise, d)
    else:
        key = tl.where(tier == 2, tl.log(tl.where(tier == 2, d, 1.0)) + noise, noise)
    # A NaN key ranks last, so the block's best always names a real row.
    key = tl.where(key == key, key, -float("inf"))
    best_tier = tl.max(tier, axis=0)
    key = tl.where(tier == best_tier, key, -float("inf"))
    best_key = tl.max(key, axis=0)
    best_index = tl.min(tl.where((tier == best_tier) & (key == best_key), rows, n_points), axis=0)
    tl.store(tier_out + pid, best_tier)
    tl.store(key_out + pid, best_key)
    tl.store(index_out + pid, best_index)


def _acc_dtype(dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _unit_feature_stride(t):
    return t if t.stride(1) == 1 else t.contiguous()


def _block_features(factored):
    return FACTORED_BLOCK_FEATURES if factored else DENSE_BLOCK_FEATURES


def _operands(embeddings):
    """(x, stride, r, stride_r, width, width_r, factored); rows keep their stride."""
    if isinstance(embeddings, DenseEmbeddings):
        x = _unit_feature_stride(embeddings.x)
        return x, x.stride(0), x, x.stride(0), x.shape[1], 0, False
    h = _unit_feature_stride(embeddings.features)
    r = _unit_feature_stride(embeddings.residuals)
    return h, h.stride(0), r, r.stride(0), h.shape[1], r.shape[1], True


def kmeanspp_steps(embeddings, min_distances, selected, newest, seed, first_step, n_steps, mode="sample",
                   pool_indices=None):
    """Triton twin of :func:`kbald_kernels.reference.kmeanspp_steps` (same arguments and results)."""
    x, stride_x, r, stride_r, width, width_r, factored = _operands(embeddings)
    n_points = min_distances.shape[0]
    device = min_distances.device
    n_blocks = triton.cdiv(n_points, BLOCK_N)
    buffers = step_buffers(n_blocks, n_steps, min_distances.dtype, device, newest)
    flags = selected.view(torch.uint8)
    seed_lo, seed_hi = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    acc = _acc_dtype(min_distances.dtype)
    with on_device(device):
        for slot in range(n_steps):
            _step_kernel[(n_blocks,)](
                x, stride_x, r, stride_r, width, width_r, n_points,
                min_distances, flags, buffers.newest, flags if pool_indices is None else pool_indices,
                seed_lo, seed_hi, first_step + slot, buffers.tiers, buffers.keys, buffers.candidates,
                FACTORED=factored, HAS_NEWEST=newest is not None or slot > 0, ARGMAX=mode == "argmax",
                POOL_INDICES=pool_indices is not None, ACC=acc, BLOCK_N=BLOCK_N, BLOCK_F=_block_features(factored),
                num_warps=NUM_WARPS)
            buffers.select(min_distances, flags, slot)
    return buffers.indices, buffers.scores


@triton.jit
def _min_distance_kernel(x_ptr, stride_x, r_ptr, stride_r, width, width_r, n_points,
                         cx_ptr, stride_cx, cr_ptr, stride_cr, n_centers, out_ptr,
                         FACTORED: tl.constexpr, ACC: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_F: tl.constexpr):
    """out[i] = min(out[i], min_c ||x_i - center_c||²): a row tile stays in cache across centers."""
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < n_points
    best = tl.load(out_ptr + rows, mask=row_mask, other=0.0).to(ACC)
    for c in range(0, n_centers):
        c64 = tl.cast(c, tl.int64)
        dist = _squared_distance(x_ptr, stride_x, r_ptr, stride_r, rows, row_mask, cx_ptr + c64 * stride_cx,
                                 cr_ptr + c64 * stride_cr, width, width_r, FACTORED, ACC, BLOCK_N, BLOCK_F)
        best = tl.minimum(best, dist)
    tl.store(out_ptr + rows, best, mask=row_mask)


def min_squared_distances(embeddings, centers):
    """Triton twin of :func:`kbald_kernels.reference.min_squared_distances`."""
    x, stride_x, r, stride_r, width, width_r, factored = _operands(embeddings)
    cx, stride_cx, cr, stride_cr, _, _, _ = _operands(centers)
    n_points = len(embeddings)
    device = x.device
    out = torch.full((n_points,), math.inf, dtype=embeddings.dtype, device=device)
    if len(centers) == 0 or n_points == 0:
        return out
    with on_device(device):
        _min_distance_kernel[(triton.cdiv(n_points, BLOCK_N),)](
            x, stride_x, r, stride_r, width, width_r, n_points, cx, stride_cx, cr, stride_cr, len(centers), out,
            FACTORED=factored, ACC=_acc_dtype(embeddings.dtype), BLOCK_N=BLOCK_N, BLOCK_F=_block_features(factored),
            num_warps=NUM_WARPS)
    return out

