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


def test_every_public_function_of_batchbald_redux_batchbald_is_fronted_with_its_signature():
    peer = pytest.importorskip("batchbald_redux.batchbald", reason="batchbald_redux is not installed "
                               "(pip install --no-deps batchbald_redux toma psutil)")
    import dataclasses
    import inspect

    for name in peer.__all__:
        ours, theirs = getattr(compat, name), getattr(peer, name)
        if dataclasses.is_dataclass(theirs):
            assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(theirs)]
            continue
        theirs_args = [(p.name, p.default) for p in inspect.signature(theirs).parameters.values()]
        ours_args = [(p.name, p.default) for p in inspect.signature(ours).parameters.values()][:len(theirs_args)]
        assert ours_args == theirs_args, name
    lp = random_log_probs(30, 6, 4, device="cpu", dtype=torch.float32)
    for name in ("compute_entropy", "compute_conditional_entropy"):
        got, want = getattr(compat, name)(lp), getattr(peer, name)(lp)
        assert got.dtype == want.dtype == torch.float64 and got.device == want.device
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for call in (lambda m: m.get_bald_batch(lp, 4), lambda m: m.get_batchbald_batch(lp, 3, 64)):
        got, want = call(compat), call(peer)
        assert type(got).__name__ == type(want).__name__ == "CandidateBatch"
        assert type(got.scores) is type(want.scores) is list and type(got.indices) is type(want.indices) is list
        assert got.indices == want.indices


class _Model:
    """A small MC-dropout network built on one module namespace (ours or batchbald_redux's)."""

    @staticmethod
    def build(namespace):
        class Net(namespace.BayesianModule):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(1, 4, 3)
                self.drop2d = namespace.ConsistentMCDropout2d(0.3)
                self.fc = torch.nn.Linear(4 * 4 * 4, 5)
                self.drop = namespace.ConsistentMCDropout(0.4)

            def mc_forward_impl(self, x):
                x = self.drop2d(torch.relu(self.conv(x)))
                return torch.log_softmax(self.fc(self.drop(x.flatten(1))), -1)

        torch.manual_seed(0)
        return Net()


def test_consistent_mc_dropout_modules_predict_as_batchbald_redux():
    peer = pytest.importorskip("batchbald_redux.consistent_mc_dropout", reason="batchbald_redux is not installed "
                               "(pip install --no-deps batchbald_redux toma psutil)")
    x = torch.randn(7, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    ours, theirs = _Model.build(compat), _Model.build(peer)
    for mode in ("eval", "train"):
        getattr(ours, mode)(), getattr(theirs, mode)()
        torch.manual_seed(3)
        got = ours(x, 6)
        torch.manual_seed(3)
        want = theirs(x, 6)
        assert got.shape == want.shape == (7, 6, 5)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    ours.eval()
    first, again = ours(x, 6), ours(x[:3], 6)  # the eval masks are kept: the same k predictions per input
    torch.testing.assert_close(again, first[:3], rtol=0, atol=0)
    ours.drop.reset_mask(), ours.drop2d.reset_mask()
    assert not torch.equal(ours(x, 6), first)  # new masks after reset_mask()
    kernel_input = ours(x, 6)  # [N, K, C] log-probabilities, as the batch functions take
    assert compat.get_bald_batch(kernel_input, 3).indices == peer_bald_indices(kernel_input)
    for name in peer.__all__:
        assert hasattr(compat, name), name


def peer_bald_indices(log_probs):
    from batchbald_redux.batchbald import get_bald_batch

    return get_bald_batch(log_probs.double(), 3).indices
