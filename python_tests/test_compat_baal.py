"""kbald_kernels.compat.baal against the package's own ops and against baal's heuristics
(CI installs baal; without it those comparisons skip, and say so)."""

import numpy as np
import pytest
import torch

import kbald_kernels as kb
from kbald_kernels.compat import baal as front


def _predictions(n=150, c=6, k=8, seed=0):
    """baal's layout: logits and probabilities [N, C, K], float64."""
    logits = np.random.default_rng(seed).normal(size=(n, c, k)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return logits, probs


def _baal():
    pytest.importorskip("baal", reason="baal is not installed (CI installs it): no comparison with its heuristics")
    from baal.active import heuristics

    return heuristics


SIMPLE = ["BALD", "Entropy", "Margin", "Certainty"]


@pytest.mark.parametrize("name", SIMPLE)
def test_scores_and_ranks_match_baal(name):
    heuristics = _baal()
    logits, probs = _predictions()
    ours, theirs = getattr(front, name)(), getattr(heuristics, name)()
    assert isinstance(ours, heuristics.AbstractHeuristic)
    inputs = [probs, torch.from_numpy(probs)]
    if name != "BALD":  # baal's BALD takes [N, C, K] only
        inputs.append(probs.mean(-1))
    if name == "BALD":  # baal's singlepass heuristics average logits before the softmax; BALD does not
        inputs.append(logits)
    for x in inputs:
        ranks, scores = ours.get_ranks(x)
        expected_ranks, expected_scores = theirs.get_ranks(x)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(ranks, expected_ranks)
        np.testing.assert_array_equal(ours(x), expected_ranks)


def test_epig_matches_baal():
    heuristics = _baal()
    _, probs = _predictions()
    targets = _predictions(n=40, seed=1)[1]
    ranks, scores = front.EPIG().get_ranks(probs, targets)
    expected_ranks, expected_scores = heuristics.EPIG().get_ranks(probs, targets)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)  # baal computes in float32
    np.testing.assert_array_equal(ranks[:20], expected_ranks[:20])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batchbald_batch_is_baals(seed):
    """baal's BatchBALD returns num_samples + 1 greedy picks, ranked by its own
    estimates; the batch here (its first num_samples picks, exact joint while the
    configurations fit num_draw) is among them and starts at the largest BALD."""
    heuristics = _baal()
    _, probs = _predictions(n=120, c=4, k=10, seed=seed)
    torch.manual_seed(seed)
    theirs = heuristics.BatchBALD(4).compute_score(probs)
    ranks, scores = front.BatchBALD(4, generator=seed).get_ranks(probs)
    assert set(ranks[:4]) <= set(np.flatnonzero(theirs)) and np.count_nonzero(theirs) == 5
    assert ranks[0] == np.argmax(heuristics.BALD().compute_score(probs))


def test_power_bald_weights_match_baal():
    _baal()
    from baal.active.heuristics.aliases import PowerBALD

    _, probs = _predictions()
    ranks, weights = front.PowerBALD(10, temperature=0.5, generator=3).get_ranks(probs)
    expected_weights = PowerBALD(10, temperature=0.5).get_ranks(probs)[1]
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-9, atol=1e-15)
    assert len(set(ranks)) == 10 and np.array_equal(ranks, front.PowerBALD(10, temperature=0.5, generator=3)(probs))


def test_front_agrees_with_the_package():
    logits, probs = _predictions()
    log_probs = torch.log(torch.from_numpy(probs)).permute(0, 2, 1)
    np.testing.assert_allclose(front.BALD().compute_score(probs), kb.bald(log_probs).numpy(), rtol=1e-12)
    np.testing.assert_allclose(front.BALD().compute_score(logits), kb.bald(log_probs).numpy(), rtol=1e-9)
    np.testing.assert_allclose(front.Margin().compute_score(probs), kb.margin(log_probs).numpy(), rtol=1e-12)
    ranks, scores = front.BatchBALD(5, num_draw=2000).get_ranks(probs)
    batch = kb.select_batchbald(log_probs, 5, num_samples=2000)
    np.testing.assert_array_equal(ranks[:5], batch.indices.numpy())
    np.testing.assert_allclose(np.cumsum(scores[ranks[:5]]), batch.scores.numpy(), rtol=1e-12)
    assert sorted(ranks.tolist()) == list(range(len(probs))) and np.all(scores[ranks[5:]] == 0)
    rest = kb.bald(log_probs).numpy()[ranks[5:]]
    assert np.all(np.diff(rest) <= 0)  # the others by BALD, highest first
    draw = front.PowerBALD(7, generator=4)(probs)
    np.testing.assert_array_equal(draw, kb.select_stochastic_bald(log_probs, 7, generator=4).indices.numpy())


def test_front_takes_bfloat16_and_single_sample_predictions():
    _, probs = _predictions()
    low = torch.from_numpy(probs).to(torch.bfloat16)
    np.testing.assert_allclose(front.Entropy().compute_score(low), front.Entropy().compute_score(probs), atol=0.05)
    ranks, weights = front.PowerBALD(4, generator=1).get_ranks(probs.mean(-1))  # [N, C]: every BALD is 0
    assert np.allclose(weights, 1 / len(probs)) and len(set(ranks)) == 4


def test_front_errors():
    with pytest.raises(ValueError, match=r"\[N, C, K\] or \[N, C\]"):
        front.BALD().compute_score(np.ones((2, 3, 4, 5)) / 3)
    with pytest.raises(ValueError, match="target_predictions"):
        front.EPIG().compute_score(_predictions()[1])
    with pytest.raises(ValueError, match="temperature"):
        front.PowerBALD(3, temperature=0)
