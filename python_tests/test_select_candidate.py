"""The on-device candidate reduction of every greedy step (triton/select_candidate.py):
one program up to BLOCK_CANDIDATES blocks, a parallel first stage past that; the
pick is the best (tier desc, key desc, index asc), NaN keys last, on both paths."""

import math

import pytest
import torch

from conftest import DEVICE


def _expected(tiers, keys, indices):
    keys = torch.where(torch.isnan(keys), -math.inf, keys.double())
    order = sorted(range(len(tiers)), key=lambda b: (-int(tiers[b]), -float(keys[b]), int(indices[b])))
    return int(indices[order[0]])


@pytest.mark.parametrize("n_blocks", [1, 5, 1024, 1025, 3000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_two_stage_reduction_picks_what_one_program_would(n_blocks, dtype):
    from kbald_kernels.triton.select_candidate import BLOCK_CANDIDATES, step_buffers

    g = torch.Generator().manual_seed(n_blocks)
    n_points = 4 * n_blocks + 3
    buffers = step_buffers(n_blocks, 3, dtype, DEVICE, None)
    assert bool(buffers.partials) == (n_blocks > BLOCK_CANDIDATES)
    values = torch.randn(n_points, dtype=dtype, generator=g).to(DEVICE)
    flags = torch.zeros(n_points, dtype=torch.uint8, device=DEVICE)
    for slot, case in enumerate(("random", "ties", "nan")):
        tiers = torch.randint(0, 3, (n_blocks,), generator=g, dtype=torch.int32)
        keys = torch.randn(n_blocks, generator=g, dtype=torch.float64).to(dtype)
        if case == "ties":  # every block equal: the smallest index wins, wherever it sits
            tiers.fill_(2)
            keys.fill_(0.5)
        if case == "nan":
            keys[torch.rand(n_blocks, generator=g) < 0.5] = math.nan
        indices = torch.randperm(n_points, generator=g)[:n_blocks]
        buffers.tiers.copy_(tiers)
        buffers.keys.copy_(keys)
        buffers.candidates.copy_(indices)
        buffers.select(values, flags, slot)
        pick = _expected(tiers, keys, indices)
        assert int(buffers.indices[slot]) == pick == int(buffers.newest[0])
        assert float(buffers.scores[slot]) == float(values[pick]) and int(flags[pick]) == 1


def test_kbald_steps_over_more_blocks_than_one_program_reduces_match_the_reference():
    from conftest import random_log_probs
    from kbald_kernels import reference
    from kbald_kernels.triton import kbald_step
    from kbald_kernels.triton.select_candidate import BLOCK_CANDIDATES

    n = 8 * BLOCK_CANDIDATES + 9  # C = 10 pads to 16: 8 points a block, so 1 026 blocks
    lp = random_log_probs(n, 3, 10, dtype=torch.float32)
    entropy, conditional, _ = reference.entropies(lp)
    picks = []
    for steps in (reference.kbald_pairwise_steps, kbald_step.kbald_pairwise_steps):
        increment = (entropy - conditional).float()
        picks.append(steps(lp, entropy.float(), increment, torch.zeros(n, dtype=torch.bool, device=DEVICE),
                           None, 2)[0].tolist())
    assert picks[0] == picks[1]
