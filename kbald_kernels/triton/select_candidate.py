"""The second stage of every greedy step: one program reduces the per-block
candidates and records the pick on the device, so steps chain without a host sync."""

import math

import torch
import triton
import triton.language as tl

BLOCK_CANDIDATES = 1024


# The step's slot changes every launch: specialising it (Triton marks a 1 and
# multiples of 16) would compile new variants mid-loop.
@triton.jit(do_not_specialize=["slot"])
def select_candidate_kernel(tier_ptr, key_ptr, index_ptr, n_blocks, value_ptr, selected_ptr, newest_ptr,
                            indices_out, scores_out, slot, BLOCK: tl.constexpr):
    """Reduce the per-program candidates by (tier desc, key desc, index asc) and record
    the pick: its index, ``value_ptr[pick]`` as its score, its selected flag, and it as
    the newest pick for the next step's kernel. A NaN key ranks as -inf, so some
    block always matches the best and the pick stays in bounds."""
    offs = tl.arange(0, BLOCK)
    mask = offs < n_blocks
    tier = tl.load(tier_ptr + offs, mask=mask, other=-1)
    key = tl.load(key_ptr + offs, mask=mask, other=-float("inf"))
    key = tl.where(key == key, key, -float("inf"))
    index = tl.load(index_ptr + offs, mask=mask, other=0)
    for b0 in range(BLOCK, n_blocks, BLOCK):
        more = (b0 + offs) < n_blocks
        t2 = tl.load(tier_ptr + b0 + offs, mask=more, other=-1)
        k2 = tl.load(key_ptr + b0 + offs, mask=more, other=-float("inf"))
        k2 = tl.where(k2 == k2, k2, -float("inf"))
        i2 = tl.load(index_ptr + b0 + offs, mask=more, other=0)
        take = (t2 > tier) | ((t2 == tier) & ((k2 > key) | ((k2 == key) & (i2 < index))))
        tier = tl.where(take, t2, tier)
        key = tl.where(take, k2, key)
        index = tl.where(take, i2, index)
    best_tier = tl.max(tier, axis=0)
    key = tl.where(tier == best_tier, key, -float("inf"))
    best_key = tl.max(key, axis=0)
    pick = tl.min(tl.where((tier == best_tier) & (key == best_key), index, 2**62), axis=0)
    tl.store(indices_out + slot, pick)
    tl.store(scores_out + slot, tl.load(value_ptr + pick))
    tl.store(selected_ptr + pick, 1)
    tl.store(newest_ptr, pick)


def step_buffers(n_blocks, n_steps, score_dtype, device, newest):
    """(tiers, keys, candidates) per block, (indices, scores) per step, and the newest
    pick on the device, for a run of ``n_steps`` greedy steps over ``n_blocks`` blocks.

    The outputs are poisoned (-1, NaN), so a slot the kernels fail to write cannot
    pass for a pick.
    """
    return (
        torch.empty(n_blocks, dtype=torch.int32, device=device),
        torch.empty(n_blocks, dtype=score_dtype, device=device),
        torch.empty(n_blocks, dtype=torch.int64, device=device),
        torch.full((n_steps,), -1, dtype=torch.int64, device=device),
        torch.full((n_steps,), math.nan, dtype=score_dtype, device=device),
        torch.tensor([-1 if newest is None else int(newest)], dtype=torch.int64, device=device),
    )
