"""Fused 2-BALD greedy step: mutual information of every pool point with the newest
pick, the running-increment update, and the next pick, in one pass over the pool.

Per program: BLOCK points' (point, class) rows against the newest pick's C
classes, a GEMM over K (C padded to a power of two ≥ 16 for ``tl.dot``; past 128
classes one point a program, walked one block pair of classes at a time), the
entropy epilogue in registers, ``increment -= I[Y_i; Y_newest]``, and the block's
best unselected candidate; :mod:`.select_candidate` reduces the blocks on the device.
"""

import math

import torch
import triton
import triton.language as tl

from .. import reference
from .launch import on_device
from .pairwise_mutual_information import class_block
from .select_candidate import step_buffers

TILE = 128
BLOCK_K = 16


@triton.jit
def _block_pair_joint_entropy(lp_ptr, s_n, s_k, s_c, rows, rows_valid, n_samples, n_classes, newest, c0, d0,
                              BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr, TILE: tl.constexpr):
    """-Σ J log J over the pool rows' classes [c0, c0 + BLOCK_C) by the newest pick's
    [d0, d0 + BLOCK_C): a GEMM over K and the entropy epilogue in registers."""
    POINTS: tl.constexpr = TILE // BLOCK_C
    classes = c0 + (tl.arange(0, TILE) % BLOCK_C).to(tl.int64)
    row_mask = rows_valid & (classes < n_classes)
    newest_classes = d0 + tl.arange(0, BLOCK_C).to(tl.int64)
    joint = tl.zeros([TILE, BLOCK_C], dtype=tl.float32)
    for k0 in range(0, n_samples, BLOCK_K):
        ks = (k0 + tl.arange(0, BLOCK_K)).to(tl.int64)
        k_mask = ks < n_samples
        pa = tl.load(lp_ptr + rows[:, None] * s_n + ks[None, :] * s_k + classes[:, None] * s_c,
                     mask=row_mask[:, None] & k_mask[None, :], other=-float("inf")).to(tl.float32)
        ps = tl.load(lp_ptr + newest * s_n + ks[:, None] * s_k + newest_classes[None, :] * s_c,
                     mask=k_mask[:, None] & (newest_classes < n_classes)[None, :],
                     other=-float("inf")).to(tl.float32)
        joint += tl.dot(tl.exp(pa), tl.exp(ps), input_precision="ieee")
    joint = joint / n_samples
    terms = tl.where(joint > 0, joint * tl.log(tl.where(joint > 0, joint, 1.0)), 0.0)
    return -tl.sum(tl.sum(tl.reshape(terms, [POINTS, BLOCK_C, BLOCK_C]), axis=2), axis=1)


@triton.jit
def _mutual_information_with_newest(lp_ptr, s_n, s_k, s_c, n_points, n_samples, n_classes, entropy_ptr, newest,
                                    points, point_mask, pid,
                                    WIDE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
                                    TILE: tl.constexpr):
    """I[Y_n; Y_newest] for the block's points: the (point, class) rows against the
    newest pick's classes, one class block pair at a time where C is WIDE (the loops
    are left out otherwise: their live state spilled the one-block tile at 4 warps)."""
    POINTS: tl.constexpr = TILE // BLOCK_C
    rows = pid.to(tl.int64) * POINTS + tl.arange(0, TILE) // BLOCK_C
    rows_valid = rows < n_points
    if WIDE:
        joint_entropy = tl.zeros([POINTS], dtype=tl.float32)
        for c0 in range(0, n_classes, BLOCK_C):
            for d0 in range(0, n_classes, BLOCK_C):
                joint_entropy += _block_pair_joint_entropy(lp_ptr, s_n, s_k, s_c, rows, rows_valid, n_samples,
                                                           n_classes, newest, c0, d0, BLOCK_C, BLOCK_K, TILE)
    else:
        joint_entropy = _block_pair_joint_entropy(lp_ptr, s_n, s_k, s_c, rows, rows_valid, n_samples, n_classes,
                                                  newest, 0, 0, BLOCK_C, BLOCK_K, TILE)
    entropy = tl.load(entropy_ptr + points, mask=point_mask, other=0.0)
    return entropy + tl.load(entropy_ptr + newest) - joint_entropy


@triton.jit
def _kbald_step_kernel(lp_ptr, s_n, s_k, s_c, n_points, n_samples, n_classes, entropy_ptr, increment_ptr,
                       selected_ptr, newest_ptr, tier_out, key_out, index_out,
                       HAS_NEWEST: tl.constexpr, WIDE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
                       TILE: tl.constexpr):
    POINTS: tl.constexpr = TILE // BLOCK_C
    pid = tl.program_id(0)
    points = pid.to(tl.int64) * POINTS + tl.arange(0, POINTS)
    point_mask = points < n_points
    increment = tl.load(increment_ptr + points, mask=point_mask, other=0.0)
    if HAS_NEWEST:
        increment -= _mutual_information_with_newest(lp_ptr, s_n, s_k, s_c, n_points, n_samples, n_classes,
                                                     entropy_ptr, tl.load(newest_ptr), points, point_mask, pid,
                                                     WIDE, BLOCK_C, BLOCK_K, TILE)
        tl.store(increment_ptr + points, increment, mask=point_mask)
    candidate = point_mask & (tl.load(selected_ptr + points, mask=point_mask, other=1) == 0)
    # A NaN increment ranks last, so the block's best always names a real candidate.
    key = tl.where(candidate & (increment == increment), increment, -float("inf"))
    best = tl.max(key, axis=0)
    tl.store(tier_out + pid, tl.max(candidate.to(tl.int32), axis=0))
    tl.store(key_out + pid, best)
    tl.store(index_out + pid, tl.min(tl.where(candidate & (key == best), points, n_points), axis=0))


@triton.jit
def _mutual_information_with_pick_kernel(lp_ptr, s_n, s_k, s_c, n_points, n_samples, n_classes, entropy_ptr,
                                         pick_ptr, out_ptr,
                                         WIDE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
                                         TILE: tl.constexpr):
    POINTS: tl.constexpr = TILE // BLOCK_C
    pid = tl.program_id(0)
    points = pid.to(tl.int64) * POINTS + tl.arange(0, POINTS)
    point_mask = points < n_points
    mi = _mutual_information_with_newest(lp_ptr, s_n, s_k, s_c, n_points, n_samples, n_classes, entropy_ptr,
                                         tl.load(pick_ptr), points, point_mask, pid, WIDE, BLOCK_C, BLOCK_K, TILE)
    tl.store(out_ptr + points, mi, mask=point_mask)


def _step_layout(n_classes):
    """(BLOCK_C, WIDE, launch options) of the step's tile: the class block padded to a
    power of two >= 16 for ``tl.dot``, at most the tile. At 4 warps the [128, BLOCK_C]
    accumulator spills at BLOCK_C = 128 (288 B a thread) and takes 208 registers at
    64; 8 warps keep both unspilled. Wide tiles (classes in blocks) spilled 40 B a
    thread at 3 pipeline stages on sm_90, none at 2."""
    block_c = class_block(n_classes, TILE, narrowest=16)
    wide = n_classes > block_c
    return block_c, wide, {"num_warps": 8 if block_c >= 64 else 4, "num_stages": 2 if wide else 3}


def _takes_kernel(log_probs, entropy_dtype):
    return log_probs.dtype != torch.float64 and entropy_dtype == torch.float32


def mutual_information_with_pick(log_probs, entropy, pick):
    """Triton twin of :func:`kbald_kernels.reference.mutual_information_with_pick`:
    the 2-BALD step's pass without its update and selection (float32 ``entropy``;
    float64 input goes to the reference)."""
    if not _takes_kernel(log_probs, entropy.dtype):
        return reference.mutual_information_with_pick(log_probs, entropy, pick)
    n_points, n_samples, n_classes = log_probs.shape
    block_c, wide, options = _step_layout(n_classes)
    # Without the step's selection this kernel spilled 4 B a thread on sm_80 at
    # BLOCK_C = 16 and 4 warps under triton 3.6; at 8 warps no class block spills
    # under 3.6 or 3.9.
    options["num_warps"] = 8
    out = torch.full((n_points,), math.nan, dtype=torch.float32, device=log_probs.device)
    with on_device(log_probs.device):
        _mutual_information_with_pick_kernel[(triton.cdiv(n_points, TILE // block_c),)](
            log_probs, *log_probs.stride(), n_points, n_samples, n_classes, entropy.contiguous(), pick, out,
            WIDE=wide, BLOCK_C=block_c, BLOCK_K=BLOCK_K, TILE=TILE, **options)
    return out


def kbald_pairwise_steps(log_probs, entropy, increment, selected, newest, n_steps):
    """Triton twin of :func:`kbald_kernels.reference.kbald_pairwise_steps` (float32
    ``entropy`` and ``increment``; float64 input goes to the reference)."""
    entropy = entropy.contiguous()
    if not _takes_kernel(log_probs, increment.dtype):
        return reference.kbald_pairwise_steps(log_probs, entropy, increment, selected, newest, n_steps)
    n_points, n_samples, n_classes = log_probs.shape
    device = log_probs.device
    block_c, wide, options = _step_layout(n_classes)
    n_blocks = triton.cdiv(n_points, TILE // block_c)
    buffers = step_buffers(n_blocks, n_steps, torch.float32, device, newest)
    flags = selected.view(torch.uint8)
    with on_device(device):
        for slot in range(n_steps):
            _kbald_step_kernel[(n_blocks,)](
                log_probs, *log_probs.stride(), n_points, n_samples, n_classes, entropy, increment,
                flags, buffers.newest, buffers.tiers, buffers.keys, buffers.candidates,
                HAS_NEWEST=newest is not None or slot > 0, WIDE=wide, BLOCK_C=block_c, BLOCK_K=BLOCK_K, TILE=TILE,
                **options)
            buffers.select(increment, flags, slot)
    return buffers.indices, buffers.scores


TRIPLE_TILE = 64
# Columns of the three-way joint per GEMM: the (s, t) class pairs go through in
# chunks, so the [TILE, PAIR_BLOCK] accumulator stays in registers for any C. A
# whole [64, 256] joint with C² gathered loads spilled 176 B a thread at C = 16.
# Chunks of 64 built as outer products of two class-block loads, unpipelined (the
# kernel is FMA-bound), take 103-155 registers and spill nothing on sm_90 or sm_80;
# 128-wide chunks or 2 pipeline stages spilled 24-44 B at C = 16 and 32.
PAIR_BLOCK = 64


def _triple_warps(block_c):
    """Warps for a class block: the one choice that spills nothing on sm_90 or sm_80
    under both tested tritons (3.6 spilled 4 B a thread at BLOCK_C = 8 with 4 warps
    and 8-36 B at 32 with 8; 3.9 spilled 8 B on sm_80 at 16 with 4)."""
    return 4 if block_c in (4, 32) else 8


@triton.jit
def _triple_chunk_entropy(lp_ptr, s_n, s_k, s_c, rows, rows_valid, n_samples, n_classes, newest, t, c0, s0, t0,
                          BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr, TILE: tl.constexpr, PAIR_BLOCK: tl.constexpr):
    """-Σ J log J of the three-way joint over pool classes [c0, c0 + BLOCK_C) and the
    chunk of (s, t) pair columns (s0 + column // BLOCK_C, t0 + column % BLOCK_C): the
    outer product of S_BLOCK classes of the newest pick with BLOCK_C classes of t."""
    POINTS: tl.constexpr = TILE // BLOCK_C
    S_BLOCK: tl.constexpr = PAIR_BLOCK // BLOCK_C
    classes = c0 + (tl.arange(0, TILE) % BLOCK_C).to(tl.int64)
    row_mask = rows_valid & (classes < n_classes)
    class_s = (s0 + tl.arange(0, S_BLOCK)).to(tl.int64)
    class_t = (t0 + tl.arange(0, BLOCK_C)).to(tl.int64)
    joint = tl.zeros([TILE, PAIR_BLOCK], dtype=tl.float32)
    for k0 in range(0, n_samples, BLOCK_K):
        ks = (k0 + tl.arange(0, BLOCK_K)).to(tl.int64)
        k_mask = ks < n_samples
        pa = tl.load(lp_ptr + rows[:, None] * s_n + ks[None, :] * s_k + classes[:, None] * s_c,
                     mask=row_mask[:, None] & k_mask[None, :], other=-float("inf")).to(tl.float32)
        p_s = tl.exp(tl.load(lp_ptr + newest * s_n + ks[:, None] * s_k + class_s[None, :] * s_c,
                             mask=k_mask[:, None] & (class_s < n_classes)[None, :], other=-float("inf")).to(tl.float32))
        p_t = tl.exp(tl.load(lp_ptr + t * s_n + ks[:, None] * s_k + class_t[None, :] * s_c,
                             mask=k_mask[:, None] & (class_t < n_classes)[None, :], other=-float("inf")).to(tl.float32))
        pairs = tl.reshape(p_s[:, :, None] * p_t[:, None, :], [BLOCK_K, PAIR_BLOCK])
        joint += tl.dot(tl.exp(pa), pairs, input_precision="ieee")
    joint = joint / n_samples
    terms = tl.where(joint > 0, joint * tl.log(tl.where(joint > 0, joint, 1.0)), 0.0)
    return -tl.sum(tl.sum(tl.reshape(terms, [POINTS, BLOCK_C, PAIR_BLOCK]), axis=2), axis=1)


@triton.jit(do_not_specialize=["n_earlier"])
def _triple_kernel(lp_ptr, s_n, s_k, s_c, n_points, n_samples, n_classes, entropy_ptr, pair_ptr, pair_stride,
                   picks_ptr, n_earlier, triple_ptr,
                   WIDE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr, TILE: tl.constexpr,
                   PAIR_BLOCK: tl.constexpr):
    """triple[n] += Σ_j I[Y_n; Y_newest; Y_{t_j}] over the earlier picks t_j.

    ``picks_ptr`` holds the earlier picks and then the newest, as int64 on the device,
    so every pool row offset is 64-bit; so is every row offset into the pair entropies.
    The three-way joint of each (n, newest, t_j) is a GEMM of the pool rows
    (point, class) against the K × C² outer products of the two picks' probabilities,
    formed in registers from two class-block loads: 1/TILE of the GEMM's FMAs. Where C
    is WIDE (above BLOCK_C), the pool's classes and t_j's go in blocks too, each
    chunk's joint summed into H and dropped, so any C runs in the same registers.
    """
    POINTS: tl.constexpr = TILE // BLOCK_C
    S_BLOCK: tl.constexpr = PAIR_BLOCK // BLOCK_C
    pid = tl.program_id(0)
    points = pid.to(tl.int64) * POINTS + tl.arange(0, POINTS)
    point_mask = points < n_points
    rows = pid.to(tl.int64) * POINTS + tl.arange(0, TILE) // BLOCK_C
    rows_valid = rows < n_points
    newest = tl.load(picks_ptr + n_earlier)
    h_n = tl.load(entropy_ptr + points, mask=point_mask, other=0.0)
    h_s = tl.load(entropy_ptr + newest)
    pair_stride = tl.cast(pair_stride, tl.int64)
    h_ns = tl.load(pair_ptr + n_earlier * pair_stride + points, mask=point_mask, other=0.0)
    total = tl.zeros([POINTS], dtype=tl.float32)
    for j in range(0, n_earlier):
        t = tl.load(picks_ptr + j)
        pair_row = pair_ptr + j * pair_stride
        h_nst = tl.zeros([POINTS], dtype=tl.float32)
        if WIDE:
            for c0 in range(0, n_classes, BLOCK_C):
                for s0 in range(0, n_classes, S_BLOCK):
                    for t0 in range(0, n_classes, BLOCK_C):
                        h_nst += _triple_chunk_entropy(lp_ptr, s_n, s_k, s_c, rows, rows_valid, n_samples, n_classes,
                                                       newest, t, c0, s0, t0, BLOCK_C, BLOCK_K, TILE, PAIR_BLOCK)
        else:
            for s0 in range(0, n_classes, S_BLOCK):  # chunks wholly past C are skipped
                h_nst += _triple_chunk_entropy(lp_ptr, s_n, s_k, s_c, rows, rows_valid, n_samples, n_classes,
                                               newest, t, 0, s0, 0, BLOCK_C, BLOCK_K, TILE, PAIR_BLOCK)
        h_t = tl.load(entropy_ptr + t)
        h_nt = tl.load(pair_row + points, mask=point_mask, other=0.0)
        h_st = tl.load(pair_row + newest)
        total += h_n + h_s + h_t - h_ns - h_nt - h_st + h_nst
    triple = tl.load(triple_ptr + points, mask=point_mask, other=0.0)
    tl.store(triple_ptr + points, triple + total, mask=point_mask)


def add_triple_interactions(log_probs, entropy, pair_entropies, picks, triple):
    """Triton twin of :func:`kbald_kernels.reference.add_triple_interactions` (float32
    entropies; float64 input goes to the reference). One launch however many picks
    came before; nothing is read back."""
    if log_probs.dtype == torch.float64 or triple.dtype != torch.float32:
        return reference.add_triple_interactions(log_probs, entropy, pair_entropies, picks, triple)
    n_earlier = picks.shape[0] - 1
    if n_earlier == 0:
        return triple
    n_points, n_samples, n_classes = log_probs.shape
    block_c = class_block(n_classes, TRIPLE_TILE, narrowest=4)
    if pair_entropies.stride(1) != 1:
        pair_entropies = pair_entropies.contiguous()
    with on_device(log_probs.device):
        _triple_kernel[(triton.cdiv(n_points, TRIPLE_TILE // block_c),)](
            log_probs, *log_probs.stride(), n_points, n_samples, n_classes, entropy.contiguous(), pair_entropies,
            pair_entropies.stride(0), picks.contiguous(), n_earlier, triple,
            WIDE=n_classes > block_c, BLOCK_C=block_c, BLOCK_K=BLOCK_K, TILE=TRIPLE_TILE,
            PAIR_BLOCK=min(PAIR_BLOCK, block_c * block_c),
            num_warps=_triple_warps(block_c), num_stages=1)
    return triple
