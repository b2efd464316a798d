"""The batchbald_redux front: same call, same result type, same picks as batchbald_redux."""

import pytest
import torch

from kbald_kernels.compat import batchbald_redux as compat

import brute_force
from conftest import random_log_probs


def test_batchbald_front_matches_brute_force_in_exact_mode():
    lp = random_log_probs(9, 5, 3, device="cpu")
    got = compat.get_batchbald_batch(lp, 3, num_samples=1000)
    assert isinstance(got.indices, list) and isinstance(got.scores, list)
    indices, values = brute_force.greedy(lambda batch: brute_force.joint_mutual_information(lp, batch), 9, 3)
    assert got.indices == indices
    assert got.scores == pytest.approx(values, rel=1e-9)


def test_bald_front_reports_individual_scores_and_clamps_like_batchbald_redux():
    lp = random_log_probs(6, 4, 3, device="cpu")
    got = compat.get_bald_batch(lp, 10)
    bald = (brute_force.joint_mutual_information(lp, [i]) for i in range(6))
    expected = sorted(enumerate(bald), key=lambda pair: -pair[1])
    assert got.indices == [i for i, _ in expected]
    assert got.scores == pytest.approx([v for _, v in expected], rel=1e-9)
    assert compat.get_batchbald_batch(lp, 0, num_samples=10).indices == []


def test_same_picks_as_batchbald_redux_in_exact_mode():
    peer = pytest.importorskip("batchbald_redux.batchbald", reason="batchbald_redux is not installed "
                               "(pip install --no-deps batchbald_redux toma psutil)")
    lp = random_log_probs(40, 8, 4, device="cpu", spread=1.5)
    ours = compat.get_batchbald_batch(lp, 4, num_samples=4**3)
    theirs = peer.get_batchbald_batch(lp, 4, num_samples=4**3, dtype=torch.double)
    assert ours.indices == theirs.indices
    assert ours.scores == pytest.approx(theirs.scores, rel=1e-6, abs=1e-9)
    ours_bald = compat.get_bald_batch(lp, 5)
    theirs_bald = peer.get_bald_batch(lp, 5)
    assert ours_bald.indices == theirs_bald.indices
    assert ours_bald.scores == pytest.approx(theirs_bald.scores, rel=1e-5)
