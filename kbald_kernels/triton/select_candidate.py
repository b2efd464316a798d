"""The second stage of every greedy step: the per-block candidates reduced on the
device and the pick recorded there, so steps chain without a host sync.

Candidates are (tier, key, index) triples ranked by tier desc, key desc, index asc;
a NaN key ranks as -inf. Up to ``BLOCK_CANDIDATES`` blocks one program reduces
them; past that a first launch of one program per ``BLOCK_CANDIDATES`` blocks
reduces in parallel (a 1 000 000-point pool has 125 000 2-BALD blocks, which one
program would walk serially), and the one-program launch reduces the partials.
"""

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

BLOCK_CANDIDATES = 1024


@triton.jit
def _load_candidates(tier_ptr, key_ptr, index_ptr, offs, mask):
    tier = tl.load(tier_ptr + offs, mask=mask, other=-1)
    key = tl.load(key_ptr + offs, mask=mask, other=-float("inf"))
    index = tl.load(index_ptr + offs, mask=mask, other=0)
    return tier, tl.where(key == key, key, -float("inf")), index


@triton.jit
def _best(tier, key, index):
    best_tier = tl.max(tier, axis=0)
    key = tl.where(tier == best_tier, key, -float("inf"))
    best_key = tl.max(key, axis=0)
    return best_tier, best_key, tl.min(tl.where((tier == best_tier) & (key == best_key), index, 2**62), axis=0)


@triton.jit
def reduce_candidates_kernel(tier_ptr, key_ptr, index_ptr, n_blocks, tier_out, key_out, index_out,
                             BLOCK: tl.constexpr):
    """Each program reduces BLOCK consecutive candidates to one."""
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    best_tier, best_key, best_index = _best(*_load_candidates(tier_ptr, key_ptr, index_ptr, offs, offs < n_blocks))
    tl.store(tier_out + pid, best_tier)
    tl.store(key_out + pid, best_key)
    tl.store(index_out + pid, best_index)


# The step's slot changes every launch: specialising it (Triton marks a 1 and
# multiples of 16) would compile new variants mid-loop.
@triton.jit(do_not_specialize=["slot"])
def select_candidate_kernel(tier_ptr, key_ptr, index_ptr, n_blocks, value_ptr, selected_ptr, newest_ptr,
                            indices_out, scores_out, slot, BLOCK: tl.constexpr):
    """Reduce the candidates and record the pick: its index, ``value_ptr[pick]`` as
    its score, its selected flag, and it as the newest pick for the next step's
    kernel. A NaN key ranks as -inf, so some block always matches the best and the
    pick stays in bounds."""
    offs = tl.arange(0, BLOCK)
    tier, key, index = _load_candidates(tier_ptr, key_ptr, index_ptr, offs, offs < n_blocks)
    for b0 in range(BLOCK, n_blocks, BLOCK):
        t2, k2, i2 = _load_candidates(tier_ptr, key_ptr, index_ptr, b0 + offs, (b0 + offs) < n_blocks)
        take = (t2 > tier) | ((t2 == tier) & ((k2 > key) | ((k2 == key) & (i2 < index))))
        tier = tl.where(take, t2, tier)
        key = tl.where(take, k2, key)
        index = tl.where(take, i2, index)
    pick = _best(tier, key, index)[2]
    tl.store(indices_out + slot, pick)
    tl.store(scores_out + slot, tl.load(value_ptr + pick))
    tl.store(selected_ptr + pick, 1)
    tl.store(newest_ptr, pick)


@dataclass
class StepBuffers:
    """Per-block candidates (``tiers``, ``keys``, ``candidates``) that a step kernel
    writes, the partials of the parallel reduction when there are many blocks, the
    picks and their scores per step, and the newest pick, all on the device.

    The outputs are poisoned (-1, NaN), so a slot the kernels fail to write cannot
    pass for a pick.
    """

    tiers: torch.Tensor
    keys: torch.Tensor
    candidates: torch.Tensor
    partials: tuple
    indices: torch.Tensor
    scores: torch.Tensor
    newest: torch.Tensor

    def select(self, values, selected_flags, slot):
        """Reduce the step's candidates and record pick ``slot``: one launch, two past
        ``BLOCK_CANDIDATES`` blocks."""
        candidates = (self.tiers, self.keys, self.candidates, self.tiers.shape[0])
        if self.partials:
            n_partials = self.partials[0].shape[0]
            reduce_candidates_kernel[(n_partials,)](*candidates, *self.partials, BLOCK=BLOCK_CANDIDATES)
            candidates = (*self.partials, n_partials)
        select_candidate_kernel[(1,)](*candidates, values, selected_flags, self.newest, self.indices, self.scores,
                                      slot, BLOCK=BLOCK_CANDIDATES)


def step_buffers(n_blocks, n_steps, score_dtype, device, newest):
    """:class:`StepBuffers` for a run of ``n_steps`` greedy steps over ``n_blocks`` blocks."""
    def candidate_arrays(n):
        return (torch.empty(n, dtype=torch.int32, device=device), torch.empty(n, dtype=score_dtype, device=device),
                torch.empty(n, dtype=torch.int64, device=device))

    n_partials = triton.cdiv(n_blocks, BLOCK_CANDIDATES)
    return StepBuffers(
        *candidate_arrays(n_blocks),
        partials=candidate_arrays(n_partials) if n_partials > 1 else (),
        indices=torch.full((n_steps,), -1, dtype=torch.int64, device=device),
        scores=torch.full((n_steps,), math.nan, dtype=score_dtype, device=device),
        newest=torch.tensor([-1 if newest is None else int(newest)], dtype=torch.int64, device=device),
    )
