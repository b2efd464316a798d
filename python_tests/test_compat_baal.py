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
    ranks, weights = front.PowerBALD(4, generator=1).get_ranks(probs[..., :1])  # one sample: every BALD is 0
    assert np.allclose(weights, 1 / len(probs)) and len(set(ranks)) == 4


def test_front_errors():
    for heuristic in (front.BALD(), front.PowerBALD(2), front.EPIG()):
        with pytest.raises(front.PredictionShapeError):  # where baal fails an assert
            heuristic.compute_score(_predictions()[1].mean(-1), _predictions()[1])
    with pytest.raises(AssertionError):
        front.EPIG().compute_score(np.ones((2, 3, 4, 5)) / 3, _predictions()[1])
    with pytest.raises(ValueError, match="BatchBALD only works on classification"):
        front.BatchBALD(2).get_ranks(np.ones((2, 3, 4, 5)) / 3)
    with pytest.raises(ValueError, match="one array"):
        front.Entropy().compute_score([_predictions()[1]] * 2)
    with pytest.raises(KeyError):
        front.get_heuristic("no such heuristic")
    with pytest.raises(ValueError, match="target_predictions"):
        front.EPIG().compute_score(_predictions()[1])
    with pytest.raises(ValueError, match="temperature"):
        front.PowerBALD(3, temperature=0)


# Generated: every front class × input form × reduction, against the installed baal.
REDUCTIONS = ["none", "mean", "sum", "max", "min", lambda x: np.median(x, axis=tuple(range(1, x.ndim)))]
FORMS = {  # name: (predictions, whether baal's own scores of logits differ by design)
    "probs [N, C, K]": lambda: _predictions()[1],
    "tensor [N, C, K]": lambda: torch.from_numpy(_predictions()[1]),
    "probs [N, C]": lambda: _predictions()[1].mean(-1),
    "list of one": lambda: [_predictions()[1]],
    "segmentation [N, C, H, W, K]": lambda: _segmentation(),
    "logits [N, C, K]": lambda: _predictions()[0],
}


def _segmentation(n=12, c=4, h=3, w=5, k=6, seed=2):
    logits = np.random.default_rng(seed).normal(size=(n, c, h, w, k)) * 2
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def _form_cases():
    for name in SIMPLE:
        for form in FORMS:
            if name == "BALD" and form == "probs [N, C]":
                continue  # baal's BALD asserts 3 axes: test_front_errors
            if name != "BALD" and form == "logits [N, C, K]":
                continue  # baal's singlepass heuristics average logits: the documented difference
            for reduction in REDUCTIONS:
                yield name, form, reduction


@pytest.mark.parametrize("name, form, reduction", list(_form_cases()),
                         ids=lambda v: v if isinstance(v, str) else "callable")
def test_every_form_and_reduction_matches_baal(name, form, reduction):
    heuristics = _baal()
    ours, theirs = getattr(front, name)(reduction=reduction), getattr(heuristics, name)(reduction=reduction)
    x = FORMS[form]()
    expected = theirs.get_uncertainties(x)
    got = ours.get_uncertainties(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    if expected.ndim == 1:
        np.testing.assert_array_equal(ours.get_ranks(x)[0], theirs.get_ranks(x)[0])
    else:
        with pytest.raises(ValueError):  # baal cannot rank unreduced maps either
            ours.get_ranks(x)


@pytest.mark.parametrize("name", SIMPLE + ["EPIG"])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_a_stream_of_chunks_ranks_as_baal(name, reduction):
    heuristics = _baal()
    probs = _predictions(n=90)[1] if name == "BALD" or reduction == "none" else _segmentation(n=90)
    if name == "EPIG":
        probs = _predictions(n=90)[1]
    targets = _predictions(n=20, seed=5)[1] if name == "EPIG" else None
    ours, theirs = getattr(front, name)(reduction=reduction), getattr(heuristics, name)(reduction=reduction)
    chunks = lambda: (probs[i : i + 25] for i in range(0, len(probs), 25))  # noqa: E731
    got_ranks, got = ours.get_ranks(chunks(), target_predictions=targets)
    expected_ranks, expected = theirs.get_ranks(chunks(), target_predictions=targets)
    tolerance = dict(rtol=1e-5, atol=1e-6) if name == "EPIG" else dict(rtol=1e-9, atol=1e-12)  # baal's EPIG: float32
    np.testing.assert_allclose(got, expected, **tolerance)
    np.testing.assert_array_equal(got_ranks[:30], expected_ranks[:30])


def _baal_arguments(callable_):
    """(name, default) of each argument a baal user passes (the front's keyword-only extras left out)."""
    import inspect

    return [(p.name, p.default) for p in inspect.signature(callable_).parameters.values() if p.kind != p.KEYWORD_ONLY]


def test_constructor_arguments_and_deprecation_warnings_are_baals():
    heuristics = _baal()
    for name in SIMPLE + ["EPIG", "BatchBALD"]:
        assert _baal_arguments(getattr(front, name)) == _baal_arguments(getattr(heuristics, name)), name
        with pytest.warns(DeprecationWarning):
            getattr(front, name)(*([3] if name == "BatchBALD" else []), shuffle_prop=0.5)
    with pytest.warns(DeprecationWarning):
        front.get_heuristic("bald")  # baal's default shuffle_prop=0.0 warns, in baal too
    from baal.active.heuristics.aliases import PowerBALD

    assert _baal_arguments(front.PowerBALD) == _baal_arguments(PowerBALD)


def test_get_heuristic_finds_the_front_and_falls_back_to_baal():
    heuristics = _baal()
    for name, cls in front.HEURISTICS.items():
        kwargs = {"num_samples": 3} if name == "batch_bald" else {}
        with pytest.warns(DeprecationWarning):
            heuristic = front.get_heuristic(name, reduction="mean", **kwargs)
        assert type(heuristic) is cls and heuristic._reduction_name == "mean"
    assert type(front.get_heuristic("random")) is heuristics.Random  # baal's Random takes no shuffle: no warning


def test_batchbald_takes_a_stream_by_gathering_it():
    probs = _predictions(n=60)[1]
    whole = front.BatchBALD(3, generator=1).get_ranks(probs)
    streamed = front.BatchBALD(3, generator=1).get_ranks(probs[i : i + 20] for i in range(0, 60, 20))
    for got, want in zip(streamed, whole):
        np.testing.assert_array_equal(got, want)


def test_front_heuristics_compose_in_baals_combine_heuristics():
    heuristics = _baal()
    probs, other = _predictions(n=70)[1], _predictions(n=70, seed=3)[1]
    ours = heuristics.CombineHeuristics([front.BALD(), front.Entropy()], weights=[0.3, 0.7])
    theirs = heuristics.CombineHeuristics([heuristics.BALD(), heuristics.Entropy()], weights=[0.3, 0.7])
    np.testing.assert_array_equal(ours([probs, other]), theirs([probs, other]))


def test_front_heuristic_drives_baals_active_learning_loop():
    """baal's ActiveLearningLoop over a tiny dataset, with the front's BALD: each step
    labels the query_size points baal's own BALD would pick."""
    _baal()
    from baal.active import ActiveLearningDataset, ActiveLearningLoop

    gen = torch.Generator().manual_seed(0)
    features = torch.randn(60, 3, generator=gen)
    weights = torch.randn(8, 3, 4, generator=gen)  # 8 "posterior samples" of a linear classifier

    def get_probabilities(pool, **kwargs):
        x = torch.stack([pool[i][0] for i in range(len(pool))])
        return torch.softmax(torch.einsum("nd,kdc->nck", x, weights), 1).numpy()

    from baal.active.heuristics import BALD as BaalBALD

    for heuristic in (front.BALD(), BaalBALD()):
        data = ActiveLearningDataset(torch.utils.data.TensorDataset(features, torch.zeros(60)))
        data.label(list(range(5)))
        loop = ActiveLearningLoop(data, get_probabilities, heuristic=heuristic, query_size=4)
        assert loop.step() and loop.step()
        labelled = np.flatnonzero(data.labelled)
        if isinstance(heuristic, front.BALD):
            ours = labelled
        else:
            np.testing.assert_array_equal(ours, labelled)
    assert len(ours) == 13


def test_power_bald_falls_back_to_uniform_as_baal_does():
    """Fewer informative points than the query: baal draws uniformly, and so does the front."""
    _baal()
    from baal.active.heuristics.aliases import PowerBALD

    probs = _predictions(n=12)[1]
    probs[3:] = 0.0
    probs[3:, 0] = 1.0  # 9 certain points: BALD exactly 0
    ranks, weights = front.PowerBALD(5, generator=2).get_ranks(probs)
    np.testing.assert_allclose(weights, PowerBALD(5).get_ranks(probs)[1], rtol=1e-12)
    assert len(set(ranks)) == 5
    with pytest.raises(ValueError):
        front.PowerBALD(13).get_ranks(probs)  # a query larger than the pool, as baal's choice refuses


def test_one_item_lists_and_clear_errors():
    probs, targets = _predictions(n=30)[1], _predictions(n=8, seed=4)[1]
    np.testing.assert_array_equal(front.EPIG()([probs], [targets]), front.EPIG()(probs, targets))
    with pytest.raises(ValueError, match="C >= 2 classes"):
        front.BALD().compute_score(probs[:, :1])
    with pytest.raises(ValueError, match="no point"):
        front.Entropy().compute_score(probs[:0])


def test_batchbald_applies_the_deprecated_shuffle():
    probs = _predictions(n=40)[1]
    with pytest.warns(DeprecationWarning):
        shuffled = front.BatchBALD(3, shuffle_prop=0.9, generator=1)
    np.random.seed(0)
    assert not np.array_equal(shuffled(probs), front.BatchBALD(3, generator=1)(probs))
