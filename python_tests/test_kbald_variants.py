"""Dynamic batch size, conservative batches and stochastic BALD against brute force."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import kbald_kernels as kb

import brute_force
from conftest import random_log_probs


def relative_gap(lp, batch):
    v2, v3 = brute_force.kbald_value(lp, batch, 2), brute_force.kbald_value(lp, batch, 3)
    return abs(v3 - v2) / abs(v3), v2, v3


@pytest.mark.parametrize("seed", range(3))
def test_dynamic_batch_stops_where_brute_force_says(seed):
    lp = random_log_probs(8, 6, 3, generator=torch.Generator().manual_seed(seed), spread=1.0)
    order, _ = brute_force.greedy(lambda batch: brute_force.kbald_value(lp, batch, 2), 8, 6)
    gaps = [relative_gap(lp, order[: j + 1]) for j in range(6)]
    tolerance = 0.5 * max(g[0] for g in gaps[1:])  # certain to stop before the end
    stop = next(j for j in range(1, 6) if gaps[j][0] > tolerance)
    got = kb.select_kbald_dynamic(lp, 6, tolerance=tolerance)
    assert got.indices.tolist() == order[:stop]
    torch.testing.assert_close(got.pairwise_scores.cpu(), torch.tensor([g[1] for g in gaps[: stop + 1]],
                                                                       dtype=torch.float64), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(got.triple_scores.cpu(), torch.tensor([g[2] for g in gaps[: stop + 1]],
                                                                     dtype=torch.float64), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(got.scores, got.pairwise_scores[:stop])


def test_dynamic_batch_with_a_loose_tolerance_fills_the_batch():
    lp = random_log_probs(10, 5, 3)
    got = kb.select_kbald_dynamic(lp, 4, tolerance=math.inf)
    assert got.indices.tolist() == kb.select_kbald(lp, 4).indices.tolist()
    assert len(got.pairwise_scores) == 4
    got3 = kb.select_kbald_dynamic(lp, 4, tolerance=math.inf, order=3)
    assert got3.indices.tolist() == kb.select_kbald(lp, 4, order=3).indices.tolist()


def test_conservative_batch_matches_brute_force():
    lp = random_log_probs(12, 6, 3)
    bald = [brute_force.joint_mutual_information(lp, [i]) for i in range(12)]
    mi = [[brute_force.interaction(lp, [i, j]) for j in range(12)] for i in range(12)]
    threshold = float(np.median([mi[i][j] for i in range(12) for j in range(i)]))
    picks, excluded = [], set()
    while len(excluded) < 12:
        i = max((b, -i) for i, b in enumerate(bald) if i not in excluded)[1] * -1
        picks.append(i)
        excluded |= {i} | {j for j in range(12) if mi[j][i] > threshold}
    got = kb.select_conservative_bald(lp, threshold=threshold)
    assert got.indices.tolist() == picks
    expected = [brute_force.kbald_value(lp, picks[: j + 1], 2) for j in range(len(picks))]
    torch.testing.assert_close(got.scores.cpu(), torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-10)
    assert kb.select_conservative_bald(lp, 2, threshold=threshold).indices.tolist() == picks[:2]
    budget = sum(mi[picks[0]][p] for p in picks[1:2]) + 1e-12
    assert kb.select_conservative_bald(lp, threshold=threshold, total_correlation_budget=budget).indices.tolist() \
        == picks[:2]


def test_stochastic_bald_is_seeded_and_samples_the_stated_distribution():
    lp = random_log_probs(6, 8, 4)
    scores = kb.bald(lp).numpy()
    a = kb.select_stochastic_bald(lp, 3, method="softmax", temperature=0.2, generator=4)
    b = kb.select_stochastic_bald(lp, 3, method="softmax", temperature=0.2, generator=4)
    assert a.indices.tolist() == b.indices.tolist()
    torch.testing.assert_close(a.scores, torch.as_tensor(scores)[a.indices].cumsum(0))
    draws = 2000
    for method, weights in (("softmax", np.exp(scores / 0.2)), ("power", scores ** (1 / 0.5)),
                            ("softrank", (stats.rankdata(-scores)) ** (-1 / 0.5))):
        temperature = 0.2 if method == "softmax" else 0.5
        counts = np.bincount([int(kb.select_stochastic_bald(lp, 1, method=method, temperature=temperature,
                                                            generator=s).indices[0]) for s in range(draws)],
                             minlength=6)
        assert stats.chisquare(counts, weights / weights.sum() * draws).pvalue > 1e-3, method
    # A vanishing temperature concentrates on the top-k.
    cold = kb.select_stochastic_bald(lp, 3, method="power", temperature=1e-3, generator=0)
    assert cold.indices.tolist() == kb.select_bald(lp, 3).indices.tolist()


def test_variant_argument_errors():
    lp = random_log_probs(5, 3, 2)
    with pytest.raises(ValueError, match="method must be one of"):
        kb.select_stochastic_bald(lp, 2, method="boltzmann")
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        kb.select_stochastic_bald(lp, 2, temperature=0)
    with pytest.raises(ValueError, match="tolerance must be a number >= 0"):
        kb.select_kbald_dynamic(lp, 2, tolerance=-1)
    with pytest.raises(ValueError, match=r"max_batch_size must be between 1 and .* \(5\), got 6"):
        kb.select_kbald_dynamic(lp, 6)
    with pytest.raises(ValueError, match="threshold must be a number >= 0"):
        kb.select_conservative_bald(lp, threshold=-0.1)
