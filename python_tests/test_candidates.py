"""``candidates=`` on every acquisition and :func:`kb.candidate_subset`: a
deterministic acquisition on ``candidates=idx`` picks exactly ``idx[...]`` of the
same acquisition on the sub-pool, on both ways the pool is restricted (candidate
rows gathered under the workspace, or the whole pool with the rest excluded), on
every backend; stochastic draws stay keyed by pool index; k-means++ and CORESET
never read the other rows' embeddings."""

import math

import numpy as np
import pytest
import torch

import kbald_kernels as kb
from kbald_kernels.reference.workspace import WORKSPACE_ENV

from conftest import DEVICE, random_log_probs

N, K, C = 57, 6, 4
CANDIDATES = torch.tensor([2, 3, 7, 11, 12, 20, 21, 30, 31, 33, 40, 44, 45, 50, 56])
BACKENDS = ["torch", "cuda", "triton"]
TARGETS = random_log_probs(9, K, C, device="cpu", generator=torch.Generator().manual_seed(9))

ACQUISITIONS = {
    "bald": lambda lp, **kw: kb.select_bald(lp, 5, **kw),
    "entropy": lambda lp, **kw: kb.select_uncertainty(lp, 5, score="entropy", **kw),
    "least_confidence": lambda lp, **kw: kb.select_uncertainty(lp, 5, score="least_confidence", **kw),
    "margin": lambda lp, **kw: kb.select_uncertainty(lp, 5, score="margin", **kw),
    "2-bald": lambda lp, **kw: kb.select_kbald(lp, 6, order=2, **kw),
    "3-bald": lambda lp, **kw: kb.select_kbald(lp, 6, order=3, **kw),
    "dynamic": lambda lp, **kw: kb.select_kbald_dynamic(lp, 8, tolerance=0.05, order=3, **kw),
    "conservative": lambda lp, **kw: kb.select_conservative_bald(lp, 6, threshold=0.02, **kw),
    "batchbald exact": lambda lp, **kw: kb.select_batchbald(lp, 3, **kw),
    "batchbald sampled": lambda lp, **kw: kb.select_batchbald(lp, 5, num_samples=50, generator=3, **kw),
    "epig": lambda lp, **kw: kb.select_epig(lp, TARGETS.to(lp), 5, **kw),
}


def _pool(backend):
    lp = random_log_probs(N, K, C, zeros=True, device="cpu" if backend == "cuda" else DEVICE)
    return lp if backend == "torch" else lp.float()


@pytest.fixture(params=["gathered", "excluded"])
def restriction(request, monkeypatch):
    """Candidate rows copied under the workspace, or too big for it: the whole pool is read."""
    if request.param == "excluded":
        monkeypatch.setenv(WORKSPACE_ENV, "64")
    return request.param


@pytest.mark.parametrize("name", ACQUISITIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_candidates_pick_as_the_sub_pool(name, backend, restriction):
    acquire = ACQUISITIONS[name]
    lp = _pool(backend)
    idx = CANDIDATES.to(lp.device)
    got = acquire(lp, candidates=idx, backend=backend)
    sub = acquire(lp.index_select(0, idx), backend=backend)
    assert torch.equal(got.indices, idx[sub.indices]), name
    torch.testing.assert_close(got.scores, sub.scores, rtol=1e-6, atol=1e-7)
    assert bool(torch.isin(got.indices, idx).all())


def test_candidates_take_any_form():
    lp = _pool("torch")
    expected = kb.select_kbald(lp, 4, candidates=CANDIDATES).indices
    mask = torch.zeros(N, dtype=torch.bool)
    mask[CANDIDATES] = True
    for form in (CANDIDATES.flip(0), CANDIDATES.tolist(), CANDIDATES.numpy(), mask, mask.numpy(), mask.tolist()):
        assert torch.equal(kb.select_kbald(lp, 4, candidates=form).indices, expected), type(form)
    assert sorted(kb.select_kbald(lp, 2, candidates=range(2, 4)).indices.tolist()) == [2, 3]
    got = kb.select_bald(lp.cpu().numpy(), 4, candidates=CANDIDATES.numpy())
    assert isinstance(got.indices, np.ndarray) and set(got.indices) <= set(CANDIDATES.tolist())


@pytest.mark.parametrize("candidates,message", [
    ([3, 3, 4], "repeated"),
    (torch.tensor([5, 1, 5]), "repeated"),
    ([0, N], "outside the pool"),
    ([], "no pool point"),
    (torch.zeros(N, dtype=torch.bool), "no pool point"),
    (torch.ones(N + 1, dtype=torch.bool), r"shape \[57\]"),
    (torch.tensor([1.0, 2.0]), "integer pool indices"),
])
def test_bad_candidates_are_named(candidates, message):
    with pytest.raises((ValueError, TypeError), match=message):
        kb.select_bald(_pool("torch"), 1, candidates=candidates)


def test_batch_size_is_bounded_by_the_candidates():
    with pytest.raises(ValueError, match=r"selectable pool points \(15\)"):
        kb.select_kbald(_pool("torch"), 16, candidates=CANDIDATES)
    assert len(kb.select_conservative_bald(_pool("torch"), threshold=math.inf, candidates=CANDIDATES).indices) == 15


def test_only_candidate_rows_are_read_and_errors_name_pool_indices():
    lp = _pool("torch")
    lp[5, 1, 0] = math.nan  # outside the candidates: not read when they are gathered
    assert set(kb.select_kbald(lp, 3, candidates=CANDIDATES).indices.tolist()) <= set(CANDIDATES.tolist())
    lp[30, 2, 1] = math.nan
    with pytest.raises(ValueError, match=r"NaN at index \(30, 2, 1\)"):
        kb.select_bald(lp, 3, candidates=CANDIDATES)
    lp[30, 2, 1] = 0.0
    with pytest.raises(ValueError, match=r"log_probs\[30, 2\] is not normalised"):
        kb.select_bald(lp, 3, candidates=CANDIDATES)


@pytest.mark.parametrize("method", ["power", "softmax"])
def test_stochastic_draws_stay_keyed_by_pool_index(method, restriction):
    """Gumbel-top-k keyed by pool index: the candidates' batch is the whole pool's
    draw order with the other points left out."""
    lp = _pool("torch")
    whole = kb.select_stochastic_bald(lp, N, method=method, generator=11).indices.tolist()
    expected = [i for i in whole if i in set(CANDIDATES.tolist())][:5]
    got = kb.select_stochastic_bald(lp, 5, method=method, generator=11, candidates=CANDIDATES)
    assert got.indices.tolist() == expected
    whole = kb.select_epig(lp, lp[:9], N, method=method, generator=11).indices.tolist()
    expected = [i for i in whole if i in set(CANDIDATES.tolist())][:5]
    assert kb.select_epig(lp, lp[:9], 5, method=method, generator=11, candidates=CANDIDATES).indices.tolist() \
        == expected


def _embeddings(factored):
    g = torch.Generator().manual_seed(5)
    if factored:
        return (torch.randn(N, 7, generator=g, dtype=torch.float64).to(DEVICE),
                torch.randn(N, 3, generator=g, dtype=torch.float64).to(DEVICE))
    return torch.randn(N, 9, generator=g, dtype=torch.float64).to(DEVICE)


def _take(embeddings, idx):
    return tuple(e[idx] for e in embeddings) if isinstance(embeddings, tuple) else embeddings[idx]


def _as(embeddings, dtype):
    return tuple(e.to(dtype) for e in embeddings) if isinstance(embeddings, tuple) else embeddings.to(dtype)


@pytest.mark.parametrize("factored", [False, True])
@pytest.mark.parametrize("backend,dtype", [("torch", torch.float64), ("triton", torch.float32),
                                           ("cuda", torch.float32)])
def test_coreset_and_badge_on_candidates_pick_as_the_sub_pool(factored, backend, dtype, restriction):
    emb = _as(_embeddings(factored), dtype)
    idx = CANDIDATES.to(DEVICE)
    got = kb.select_coreset(emb, 8, first="max_norm", candidates=idx, backend=backend)
    sub = kb.select_coreset(_take(emb, idx), 8, first="max_norm", backend=backend)
    assert torch.equal(got.indices, idx[sub.indices])
    torch.testing.assert_close(got.scores, sub.scores)
    largest_norm = got.indices[0]
    labeled = [0, 1, 30]
    got = kb.select_coreset(emb, 4, labeled=labeled, candidates=idx, backend=backend)
    assert bool(torch.isin(got.indices, idx).all()) and 30 not in got.indices.tolist()
    badge = kb.select_badge(emb, 6, generator=2, candidates=idx, backend=backend)
    assert bool(torch.isin(badge.indices, idx).all()) and len(set(badge.indices.tolist())) == 6
    assert badge.indices[0] == largest_norm  # BADGE starts, as CORESET here, at the largest norm


@pytest.mark.parametrize("backend,dtype", [("torch", torch.float64), ("triton", torch.float32),
                                           ("cuda", torch.float32)])
def test_kmeanspp_on_candidates_reads_and_orders_only_them(backend, dtype, restriction):
    emb = _as(_embeddings(True), dtype)
    ordering = kb.KMeansPPOrdering(emb, generator=4, labeled=[2, 5], candidates=CANDIDATES, backend=backend)
    assert ordering.remaining == 14  # 15 candidates, one of them labeled
    first = ordering.take(6)
    state = ordering.state_dict()
    rest = ordering.take(ordering.remaining)
    order = torch.cat([first.indices, rest.indices])
    assert sorted(order.tolist()) == sorted(set(CANDIDATES.tolist()) - {2})
    # The other rows' distances were never updated by a pick: they were not read (and
    # gathered candidates leave them at +inf, never lowered by the labeled centers either).
    outside = torch.ones(N, dtype=torch.bool)
    outside[CANDIDATES] = False
    outside[[2, 5]] = False
    before = kb.KMeansPPOrdering(emb, labeled=[2, 5], backend=backend).state_dict()["min_distances"]
    if restriction == "gathered":
        before = torch.full_like(before, math.inf)
    assert torch.equal(ordering.state_dict()["min_distances"][outside], before[outside])
    resumed = kb.KMeansPPOrdering(emb, backend=backend)
    resumed.load_state_dict(state)
    assert resumed.remaining == 8 and torch.equal(resumed.take(8).indices, rest.indices)
    whole = kb.kmeanspp(emb, None, generator=4, labeled=[2, 5], candidates=CANDIDATES, backend=backend)
    assert torch.equal(whole.indices, order)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("factored", [False, True])
@pytest.mark.parametrize("mode", ["sample", "argmax"])
def test_gathered_candidates_pick_and_resume_as_candidates_read_in_place(backend, factored, mode, monkeypatch):
    """The same picks and scores whether the candidates' rows fit the workspace (gathered,
    draws keyed by their pool indices) or not (read in place), through first picks,
    labeled points inside and outside the candidates, extend, and states resumed across
    the two."""
    dtype = torch.float64 if backend == "torch" else torch.float32
    emb = _as(_embeddings(factored), dtype)
    extra = _as(_take(_embeddings(factored), slice(10, 14)), dtype)  # near-twins of pool points 10-13

    def run(workspace, resume_from=None):
        if workspace is None:
            monkeypatch.delenv(WORKSPACE_ENV, raising=False)
        else:
            monkeypatch.setenv(WORKSPACE_ENV, workspace)
        ordering = kb.KMeansPPOrdering(emb, generator=11, labeled=[2, 4, 30], candidates=CANDIDATES, mode=mode,
                                       first="max_norm" if mode == "argmax" else "random", backend=backend)
        if resume_from is not None:
            ordering.extend(extra)
            ordering.load_state_dict(resume_from)
            return ordering, ordering.take(ordering.remaining)
        first = ordering.take(5)
        ordering.extend(extra)
        return ordering, first, ordering.state_dict(), ordering.take(3)

    gathered, first, state, then = run(None)
    assert gathered._pool_indices is not None
    in_place, first_in_place, state_in_place, then_in_place = run("64")
    assert in_place._pool_indices is None
    for got, expected in ((first, first_in_place), (then, then_in_place)):
        assert torch.equal(got.indices, expected.indices)
        torch.testing.assert_close(got.scores, expected.scores, rtol=1e-6, atol=1e-6)
    assert state["selected"].tolist() == state_in_place["selected"].tolist() and state["newest"] == state_in_place[
        "newest"]
    _, rest = run(None, resume_from=state_in_place)
    _, rest_in_place = run("64", resume_from=state)
    assert torch.equal(rest.indices, rest_in_place.indices) and torch.equal(rest.indices[:3], then.indices)
    torch.testing.assert_close(rest.scores, rest_in_place.scores, rtol=1e-6, atol=1e-6)
    assert sorted(torch.cat([first.indices, rest.indices]).tolist()) == sorted(
        set(CANDIDATES.tolist()) - {2, 30} | {N, N + 1, N + 2, N + 3})
    monkeypatch.delenv(WORKSPACE_ENV)
    everything = kb.KMeansPPOrdering(emb, generator=11, backend=backend).state_dict()
    with pytest.raises(ValueError, match="may still pick pool point 0, which is not among this ordering's candidates"):
        kb.KMeansPPOrdering(emb, candidates=CANDIDATES, backend=backend).load_state_dict(everything)


@pytest.mark.parametrize("factored", [False, True])
def test_embeddings_outside_the_candidates_are_not_checked_and_the_read_rows_are(factored, restriction):
    clean = _embeddings(factored)
    poisoned = tuple(e.clone() for e in clean) if factored else clean.clone()
    first = poisoned[0] if factored else poisoned
    first[4, 1] = math.nan  # neither a candidate nor labeled: never read
    for select in (kb.select_badge, kb.select_coreset):
        got = select(poisoned, 5, generator=3, candidates=CANDIDATES)
        assert torch.equal(got.indices, select(clean, 5, generator=3, candidates=CANDIDATES).indices)
    first[33, 0] = math.inf  # a candidate
    with pytest.raises(ValueError, match=r"contains \+inf at index \(33, 0\)"):
        kb.select_badge(poisoned, 5, generator=3, candidates=CANDIDATES)
    first[33, 0] = 0.0
    with pytest.raises(ValueError, match=r"contains NaN at index \(4, 1\)"):  # labeled: taken as a center
        kb.select_coreset(poisoned, 5, labeled=[4], candidates=CANDIDATES)


def test_points_extended_after_candidates_may_be_picked(restriction):
    emb = _embeddings(False)
    ordering = kb.KMeansPPOrdering(emb, generator=1, candidates=[0, 1], mode="argmax")
    ordering.extend(emb[:3] + 10)
    assert ordering.remaining == 5
    assert sorted(ordering.take(5).indices.tolist()) == [0, 1, N, N + 1, N + 2]


def test_candidate_subset():
    lp = _pool("torch")
    subset = kb.candidate_subset(lp, 20, generator=7)
    assert torch.equal(subset, kb.candidate_subset(N, 20, generator=7))
    assert subset.tolist() == sorted(set(subset.tolist())) and len(subset) == 20
    assert not torch.equal(subset, kb.candidate_subset(N, 20, generator=8))
    # keyed by pool index: a smaller subset of the same seed is its top by the same keys
    assert set(kb.candidate_subset(N, 10, generator=7).tolist()) <= set(subset.tolist())
    for score in ("least_confidence", "margin", "entropy", "bald"):
        expected = kb.select_uncertainty(lp, 12, score=score).indices.sort().values
        assert torch.equal(kb.candidate_subset(lp, 12, score=score), expected), score
    assert isinstance(kb.candidate_subset(lp.cpu().numpy(), 3, score="margin"), np.ndarray)
    with pytest.raises(ValueError, match="score must be one of"):
        kb.candidate_subset(lp, 3, score="badge")
    with pytest.raises(ValueError, match="size must be between 1 and"):
        kb.candidate_subset(N, N + 1)
