"""kbald_kernels.compat.skactiveml against the float64 reference (its functions, which
need no scikit-activeml) and against the installed scikit-activeml (CI installs it;
without it those comparisons skip, and say so)."""

import importlib.util
import inspect
import sys
import warnings

import numpy as np
import pytest
import torch

import kbald_kernels as kb
from kbald_kernels.compat import skactiveml as front
from kbald_kernels.reference import conditional_entropy, joint_entropy

FLOAT32 = dict(rtol=1e-5, atol=1e-6)  # the kernels' float32 against scikit-activeml's float64
FLOAT64 = dict(rtol=1e-10, atol=1e-12)


def _ensemble_probas(k=6, n=40, c=3, seed=0):
    """Probabilities [K, N, C] of a committee that disagrees, float64."""
    logits = np.random.default_rng(seed).normal(size=(k, n, c)) * 1.5
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def _reference_utilities(probas, picks):
    """BatchBALD utilities rows in float64 from the exact reference: row i is
    H[Y_S, Y_n] - Σ_{s∈S∪{n}} conditional entropy, S the first i picks, NaN at S."""
    log_probs = torch.from_numpy(np.log(probas)).permute(1, 0, 2).contiguous()
    conditional = conditional_entropy(log_probs).numpy()
    rows = []
    for i in range(len(picks)):
        row = joint_entropy(log_probs, list(picks[:i])).numpy() - conditional - conditional[list(picks[:i])].sum()
        row[list(picks[:i])] = np.nan
        rows.append(row)
    return np.array(rows)


def _nan_close(got, expected, tolerance):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, **tolerance)


# The functions: no scikit-activeml needed.

@pytest.mark.parametrize("dtype, tolerance", [("float32", FLOAT32), ("float64", FLOAT64)])
def test_batch_bald_is_exact_batchbald_while_configurations_fit(dtype, tolerance):
    probas = _ensemble_probas()
    utilities = front.batch_bald(probas, 4, n_MC_samples=100, dtype=dtype)  # 3^3 = 27 <= 100: exact throughout
    assert utilities.shape == (4, 40)
    picks = [int(np.nanargmax(row)) for row in utilities]
    assert len(set(picks)) == 4
    _nan_close(utilities, _reference_utilities(probas, picks), tolerance)


def test_batch_bald_past_the_exact_regime_samples_the_package_stream():
    """Sampled configurations come from the package's stream keyed by one draw of
    random_state: the picks are kb.select_batchbald's with that seed, and the
    utilities estimate the exact ones."""
    probas = _ensemble_probas(k=8, n=50, c=4, seed=1)
    utilities = front.batch_bald(probas, 5, n_MC_samples=20, random_state=7)  # sampled from the 3rd pick on
    picks = [int(np.nanargmax(row)) for row in utilities]
    seed = int(np.random.RandomState(7).randint(0, 2**62, dtype=np.int64))
    log_probs = torch.from_numpy(np.log(probas)).permute(1, 0, 2).float()
    expected = kb.select_batchbald(log_probs, 5, num_samples=20, generator=seed)
    np.testing.assert_array_equal(picks, expected.indices.numpy())
    np.testing.assert_allclose([utilities[i, p] for i, p in enumerate(picks)], expected.scores.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(front.batch_bald(probas, 5, n_MC_samples=20, random_state=7), utilities)
    probas = _ensemble_probas(k=8, n=50, c=10, seed=2)
    utilities = front.batch_bald(probas, 6, n_MC_samples=2000, random_state=0)  # 10^4 > 2000: the last two sampled
    exact = _reference_utilities(probas, [int(np.nanargmax(row)) for row in utilities])
    np.testing.assert_allclose(utilities[:4], exact[:4], **FLOAT32)
    assert np.nanmax(np.abs(utilities[4:] - exact[4:])) < 0.1


def test_batch_bald_leaves_the_callers_array_and_takes_exact_zeros():
    probas = _ensemble_probas(k=5, n=30)
    probas[:, :10] = np.eye(3)[np.arange(10) % 3]  # certain points: exact zeros
    before = probas.copy()
    utilities = front.batch_bald(probas, 3, n_MC_samples=50, dtype="float64")
    np.testing.assert_array_equal(probas, before)
    picks = [int(np.nanargmax(row)) for row in utilities]
    _nan_close(utilities, _reference_utilities(np.where(probas == 0, 1e-300, probas), picks), dict(atol=1e-9))
    tensor = torch.from_numpy(before.astype(np.float32))
    front.batch_bald(tensor, 2)
    np.testing.assert_array_equal(tensor.numpy(), before.astype(np.float32))


def test_batch_bald_draws_no_duplicate_among_identical_points():
    probas = np.repeat(_ensemble_probas(k=4, n=5), 4, axis=1)  # every point four times
    utilities = front.batch_bald(probas, 8, n_MC_samples=10_000)
    # Row i is NaN at the first i picks: one new NaN a row means a new sample each pick.
    assert np.isnan(utilities).sum(1).tolist() == list(range(8))
    assert np.all(np.isnan(utilities[:-1]) <= np.isnan(utilities[1:]))


def _uncertainty_reference(p, method):
    top = np.sort(p, 1)[:, ::-1]
    return {"least_confident": 1 - top[:, 0], "margin_sampling": 1 - (top[:, 0] - top[:, 1]),
            "entropy": -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), 1)}[method]


@pytest.mark.parametrize("method", front.METHODS)
@pytest.mark.parametrize("dtype, tolerance", [("float32", FLOAT32), ("float64", FLOAT64)])
def test_uncertainty_scores_match_the_float64_formulas(method, dtype, tolerance):
    p = _ensemble_probas(k=1, n=200, c=5)[0]
    p[:3] = np.eye(5)[:3]  # certain rows: zeros count 0·log 0 = 0
    np.testing.assert_allclose(front.uncertainty_scores(p, method=method, dtype=dtype),
                               _uncertainty_reference(p, method), **tolerance)
    loose = p * (1 + 5e-4)  # within scikit-activeml's 1e-3 of 1: taken, renormalised
    np.testing.assert_allclose(front.uncertainty_scores(loose, method=method), _uncertainty_reference(p, method),
                               **FLOAT32)


def test_uncertainty_scores_with_a_cost_matrix_and_errors():
    p = _ensemble_probas(k=1, n=50, c=3)[0]
    cost = np.array([[0, 1, 4], [2, 0, 1], [1, 3, 0]], dtype=float)
    costs = np.sort(p @ cost, 1)
    np.testing.assert_allclose(front.uncertainty_scores(p, cost), costs[:, 0], rtol=1e-12)
    np.testing.assert_allclose(front.uncertainty_scores(p, cost, "margin_sampling"), -(costs[:, 1] - costs[:, 0]),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="entropy"):
        front.uncertainty_scores(p, cost, "entropy")
    with pytest.raises(ValueError, match="cost_matrix"):
        front.uncertainty_scores(p, np.ones((2, 2)))
    with pytest.raises(ValueError, match="sum over axis 1"):
        front.uncertainty_scores(p * 1.01)
    with pytest.raises(ValueError, match="methods"):
        front.uncertainty_scores(p, method="variance")
    bad = p.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"nan at index \(4, 1\)"):
        front.uncertainty_scores(bad)


def _k_center_reference(X, centers, candidates, batch_size, first=None):
    """Farthest-first picks and Euclidean-distance rows in float64, brute force."""
    distance = lambda a: np.sqrt(((X[:, None, :] - X[None, a, :]) ** 2).sum(-1)).min(1)  # noqa: E731
    nearest = distance(centers) if len(centers) else np.zeros(len(X))
    picks, rows = [], []
    for i in range(batch_size):
        row = np.full(len(X), np.nan)
        row[candidates] = nearest[candidates]
        row[list(centers) + picks] = np.nan
        rows.append(row)
        picks.append(first if i == 0 and first is not None else int(np.nanargmax(row)))
        nearest = distance([picks[-1]]) if i == 0 and not len(centers) else np.minimum(nearest, distance([picks[-1]]))
    return np.array(picks), np.array(rows)


@pytest.mark.parametrize("dtype, tolerance", [("float32", dict(rtol=1e-5, atol=1e-5)), ("float64", FLOAT64)])
def test_k_greedy_center_matches_brute_force(dtype, tolerance):
    X = np.random.default_rng(3).normal(size=(60, 4))
    y = np.full(60, np.nan)
    y[[2, 30, 41]] = [0, 1, 0]
    picks, rows = front.k_greedy_center(X, y, batch_size=6, dtype=dtype)
    expected_picks, expected_rows = _k_center_reference(X, [2, 30, 41], np.flatnonzero(np.isnan(y)), 6)
    np.testing.assert_array_equal(picks, expected_picks)
    _nan_close(rows, expected_rows, tolerance)
    mapping = np.arange(0, 60, 3)  # some candidates only, one of them labelled
    picks, rows = front.k_greedy_center(X, y, batch_size=4, mapping=mapping, dtype=dtype)
    expected_picks, expected_rows = _k_center_reference(X, [2, 30, 41], mapping, 4)
    np.testing.assert_array_equal(picks, expected_picks)
    _nan_close(rows, expected_rows, tolerance)


def test_k_greedy_center_without_labels_draws_the_first_pick_as_scikit_activeml():
    X = np.random.default_rng(4).normal(size=(30, 3))
    y = np.full(30, np.nan)
    picks, rows = front.k_greedy_center(X, y, batch_size=5, random_state=11, dtype="float64")
    first = int(np.argmax(np.random.RandomState(11).random(30)))  # every utility 0: the largest draw
    expected_picks, expected_rows = _k_center_reference(X, [], np.arange(30), 5, first=first)
    np.testing.assert_array_equal(picks, expected_picks)
    _nan_close(rows, expected_rows, FLOAT64)
    new = np.concatenate([X[:10], X[20:22]])  # ten new candidates first, two labelled samples after them
    picks, rows = front.k_greedy_center(new, np.r_[np.full(10, np.nan), 0, 1], batch_size=3, mapping=np.arange(10),
                                        n_new_cand=10)
    assert rows.shape == (3, 10) and set(picks) <= set(range(10))
    with pytest.raises(ValueError, match="n_new_cand"):
        front.k_greedy_center(new, np.full(12, np.nan), mapping=np.arange(10), n_new_cand=9)
    with pytest.raises(TypeError, match="batch_size"):
        front.k_greedy_center(X, y, batch_size=2.0)


def test_functions_work_without_scikit_activeml(monkeypatch):
    """The module loaded where scikit-activeml cannot be imported: the functions give
    the same values; the strategies say what they need."""
    for name in [m for m in sys.modules if m == "skactiveml" or m.startswith("skactiveml.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "skactiveml", None)
    spec = importlib.util.spec_from_file_location("kbald_kernels.compat._skactiveml_alone", front.__file__)
    alone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(alone)
    probas = _ensemble_probas()
    np.testing.assert_array_equal(alone.batch_bald(probas, 3, random_state=1),
                                  front.batch_bald(probas, 3, random_state=1))
    np.testing.assert_array_equal(alone.uncertainty_scores(probas[0], method="entropy"),
                                  front.uncertainty_scores(probas[0], method="entropy"))
    X, y = probas[0], np.r_[0, 1, np.full(38, np.nan)]
    for got, expected in zip(alone.k_greedy_center(X, y, 3), front.k_greedy_center(X, y, 3)):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ImportError, match="need scikit-activeml"):
        alone.BatchBALD()
    with pytest.raises(ValueError, match="Euclidean"):
        alone.k_greedy_center(X, y, 3, metric="manhattan")


def test_function_errors():
    probas = _ensemble_probas()
    with pytest.raises(ValueError, match="n_estimators, n_samples, n_classes"):
        front.batch_bald(probas[0], 2)
    with pytest.raises(ValueError, match="eps"):
        front.batch_bald(probas, 2, eps=0.5)
    with pytest.raises(TypeError, match="batch_size"):
        front.batch_bald(probas, 2.0)
    with pytest.raises(ValueError, match="n_MC_samples"):
        front.batch_bald(probas, 2, n_MC_samples=0)
    negative = probas.copy()
    negative[2, 5, 1] = -0.1
    with pytest.raises(ValueError, match=r"probabilities, got -0.1.* at index \(2, 5, 1\)"):
        front.batch_bald(negative, 2)
    nan = probas.copy()
    nan[1, 7, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        front.batch_bald(nan, 2)
    with pytest.raises(ValueError, match="dtype"):
        front.batch_bald(probas, 2, dtype="float16")
    with pytest.raises(ValueError, match="random_state"):
        front.batch_bald(probas, 2, random_state="seed")


# Against the installed scikit-activeml.

def _peer():
    pytest.importorskip("skactiveml", reason="scikit-activeml is not installed (CI installs it): no comparison "
                                             "with its strategies")
    from skactiveml import pool

    return pool


def _data(missing_label=np.nan, seed=0):
    """Blobs in 2-D: 90 samples, 12 labelled; labels as floats with NaN missing, or ints with -1."""
    from sklearn.datasets import make_blobs

    X, y_true = make_blobs(90, n_features=2, centers=3, cluster_std=2.5, random_state=seed)
    y = np.full(90, missing_label, dtype=float if missing_label != missing_label else int)
    y[:12] = y_true[:12]
    return X, y, y_true


def _members(missing_label=np.nan):
    from skactiveml.classifier import SklearnClassifier
    from sklearn.linear_model import LogisticRegression

    return [SklearnClassifier(LogisticRegression(C=c), classes=[0, 1, 2], missing_label=missing_label)
            for c in (0.01, 0.1, 1.0, 10.0)]


def _clf(missing_label=np.nan):
    from skactiveml.classifier import SklearnClassifier
    from sklearn.linear_model import LogisticRegression

    return SklearnClassifier(LogisticRegression(C=0.5), classes=[0, 1, 2], missing_label=missing_label)


STRATEGIES = {  # name: (class name, constructor arguments, estimator argument, deterministic)
    "BatchBALD": ("BatchBALD", dict(n_MC_samples=1000), "ensemble", True),
    "GreedyBALD": ("GreedyBALD", {}, "ensemble", True),
    "least_confident": ("UncertaintySampling", dict(method="least_confident"), "clf", True),
    "margin_sampling": ("UncertaintySampling", dict(method="margin_sampling"), "clf", True),
    "entropy": ("UncertaintySampling", dict(method="entropy"), "clf", True),
    "CoreSet": ("CoreSet", {}, None, True),
    "Badge": ("Badge", {}, "clf", False),
}


def _form(name):
    """(X, y, missing_label, query arguments) of an input form."""
    if name == "missing label -1":
        X, y, _ = _data(missing_label=-1)
        return X, y, -1, dict(batch_size=4)
    X, y, _ = _data()
    if name == "pool":
        return X, y, np.nan, dict(batch_size=4)
    if name == "candidate indices":
        return X, y, np.nan, dict(candidates=np.r_[3, 7, 20:60:2], batch_size=4)  # two labelled among them
    if name == "candidate rows":
        rows = np.random.default_rng(5).normal(size=(25, 2)) * 4
        return X, y, np.nan, dict(candidates=rows, batch_size=4)
    if name == "batch larger than the candidates":
        return X, y, np.nan, dict(candidates=np.array([40, 50, 60]), batch_size=5)
    raise KeyError(name)


FORMS = ["pool", "candidate indices", "candidate rows", "missing label -1", "batch larger than the candidates"]


def _query(module, strategy, form):
    """(output, warnings' messages) of one strategy's query on one form, from ``module``."""
    class_name, arguments, estimator, _ = STRATEGIES[strategy]
    X, y, missing_label, kwargs = _form(form)
    qs = getattr(module, class_name)(missing_label=missing_label, random_state=0, **arguments)
    if estimator == "ensemble":
        kwargs["ensemble"] = _members(missing_label)
    elif estimator == "clf":
        kwargs["clf"] = _clf(missing_label)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = qs.query(X, y, return_utilities=True, **kwargs)
    return out, sorted(str(w.message) for w in caught if "batch_size" in str(w.message))


def _badge_reference_rows(X, y, clf, candidates, picks):
    """Badge's utilities rows in float64 with the gradient embeddings materialised
    (small pools only): the D² weights before each of ``picks``."""
    probas = clf.fit(X, y).predict_proba(candidates)
    residuals = probas - np.eye(probas.shape[1])[probas.argmax(1)]
    g = (residuals[:, :, None] * candidates[:, None, :]).reshape(len(candidates), -1)
    nearest = (g**2).sum(1)
    rows = []
    for i, pick in enumerate(picks):
        weights = nearest.copy()
        weights[picks[:i]] = 0
        row = weights / weights.sum()
        row[picks[:i]] = np.nan
        rows.append(row)
        nearest = np.minimum(nearest, ((g - g[pick]) ** 2).sum(1))
    return np.array(rows)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_and_input_form_matches_scikit_activeml(strategy, form):
    peer = _peer()
    (ours, our_utilities), our_warnings = _query(front, strategy, form)
    (theirs, their_utilities), their_warnings = _query(peer, strategy, form)
    assert our_warnings == their_warnings
    assert bool(our_warnings) == (form == "batch larger than the candidates")
    assert our_utilities.shape == their_utilities.shape
    from skactiveml.base import SingleAnnotatorPoolQueryStrategy

    assert isinstance(getattr(front, STRATEGIES[strategy][0])(), SingleAnnotatorPoolQueryStrategy)
    if STRATEGIES[strategy][3]:
        np.testing.assert_array_equal(ours, theirs)
        _nan_close(our_utilities, their_utilities, FLOAT32)
        return
    # Badge: the first pick and its utilities are deterministic, the rest drawn from the same law.
    assert ours[0] == theirs[0] and len(set(ours)) == len(ours)
    _nan_close(our_utilities[0], their_utilities[0], FLOAT32)
    X, y, missing_label, kwargs = _form(form)
    columns = np.flatnonzero(~np.isnan(our_utilities[0]))
    candidates = kwargs["candidates"] if form == "candidate rows" else X
    position = {int(c): i for i, c in enumerate(columns)}
    expected = _badge_reference_rows(X, y, _clf(missing_label), candidates[columns], [position[int(i)] for i in ours])
    np.testing.assert_allclose(our_utilities[:, columns], expected, **FLOAT32)
    assert np.isnan(our_utilities[:, np.setdiff1d(np.arange(our_utilities.shape[1]), columns)]).all()


ENSEMBLES = {  # name: (ensemble, query arguments, constructor arguments)
    "list of members": (lambda: _members(), {}, {}),
    "fitted random forest": (lambda: _fitted_forest(), dict(fit_ensemble=False), {}),
    "sample_proba of a Parzen window": (lambda: _parzen(), {},
                                        dict(sample_predictions_method_name="sample_proba",
                                             sample_predictions_dict=dict(n_samples=12, random_state=3))),
}


def _fitted_forest():
    from skactiveml.classifier import SklearnClassifier
    from sklearn.ensemble import RandomForestClassifier

    X, y, _ = _data()
    return SklearnClassifier(RandomForestClassifier(n_estimators=8, max_depth=3, random_state=0),
                             classes=[0, 1, 2]).fit(X, y)


def _parzen():
    from skactiveml.classifier import ParzenWindowClassifier

    return ParzenWindowClassifier(classes=[0, 1, 2], metric_dict={"gamma": 0.3})


@pytest.mark.parametrize("ensemble", list(ENSEMBLES))
@pytest.mark.parametrize("name", ["BatchBALD", "GreedyBALD"])
@pytest.mark.parametrize("dtype, tolerance", [("float32", FLOAT32), ("float64", FLOAT64)])
def test_bald_strategies_take_every_ensemble_form(name, ensemble, dtype, tolerance):
    peer = _peer()
    make, query_kwargs, arguments = ENSEMBLES[ensemble]
    X, y, _ = _data()
    arguments = dict(arguments, **(dict(n_MC_samples=1000) if name == "BatchBALD" else {}))
    ours = getattr(front, name)(random_state=1, dtype=dtype, **arguments).query(
        X, y, make(), batch_size=5, return_utilities=True, **query_kwargs)
    theirs = getattr(peer, name)(random_state=1, **arguments).query(
        X, y, make(), batch_size=5, return_utilities=True, **query_kwargs)
    if ensemble != "fitted random forest":
        np.testing.assert_array_equal(ours[0], theirs[0])
        # Parzen window predictions hold exact zeros, which scikit-activeml raises to eps = 1e-7.
        _nan_close(ours[1], theirs[1], tolerance if ensemble == "list of members" else dict(rtol=1e-5, atol=2e-5))
        return
    # A forest's votes make many samples' predictions permutations of each other: their
    # utilities tie mathematically, but not in the last bits of either computation, so
    # the tie falls either way. The first row agrees, and each pick is a best sample.
    _nan_close(ours[1][0], theirs[1][0], dict(rtol=1e-5, atol=2e-5))
    assert abs(theirs[1][0][ours[0][0]] - np.nanmax(theirs[1][0])) < 2e-5
    if name == "GreedyBALD":
        np.testing.assert_allclose(theirs[1][0][ours[0]], theirs[1][0][theirs[0]], atol=2e-5)


def test_constructor_and_query_signatures_are_scikit_activemls():
    peer = _peer()

    def arguments(callable_):
        return [(p.name, p.default) for p in inspect.signature(callable_).parameters.values()
                if p.kind != p.KEYWORD_ONLY]

    for name in ("BatchBALD", "GreedyBALD", "Badge", "CoreSet", "UncertaintySampling"):
        ours, theirs = getattr(front, name), getattr(peer, name)
        assert [a for a, _ in arguments(ours)] == [a for a, _ in arguments(theirs)], name
        assert all(a == b or (a != a and b != b) for (_, a), (_, b) in zip(arguments(ours), arguments(theirs))), name
        assert arguments(ours.query) == arguments(theirs.query), name
        assert set(theirs().get_params()) <= set(ours().get_params()), name
    for name in ("batch_bald", "k_greedy_center", "uncertainty_scores"):
        ours, theirs = arguments(getattr(front, name)), arguments(getattr(peer, name))
        assert [a for a, _ in ours] == [a for a, _ in theirs], name
    assert front.BatchBALD().greedy_selection is False and front.GreedyBALD().greedy_selection is True


def test_wrappers_take_the_front_strategies():
    peer = _peer()
    X, y, _ = _data()
    for strategy in ("GreedyBALD", "entropy", "CoreSet", "BatchBALD"):
        class_name, arguments, estimator, _ = STRATEGIES[strategy]
        kwargs = {"ensemble": _members()} if estimator == "ensemble" else {"clf": _clf()} if estimator else {}
        outputs = []
        for module in (front, peer):
            wrapper = peer.SubSamplingWrapper(getattr(module, class_name)(random_state=0, **arguments),
                                              max_candidates=30, random_state=2)
            outputs.append(wrapper.query(X, y, batch_size=3, return_utilities=True, **kwargs))
        np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
        _nan_close(outputs[0][1], outputs[1][1], FLOAT32)
    outputs = []
    for module in (front, peer):
        wrapper = peer.ParallelUtilityEstimationWrapper(module.GreedyBALD(random_state=0), n_jobs=2,
                                                        parallel_dict={"backend": "threading"}, random_state=0)
        outputs.append(wrapper.query(X, y, ensemble=_members(), return_utilities=True))
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    _nan_close(outputs[0][1], outputs[1][1], FLOAT32)


def _embedding_classifier():
    """A Parzen window classifier whose predict_proba also gives learned embeddings [N, 6]
    when asked (``return_embeddings=True``), as a network's penultimate layer would."""
    from skactiveml.classifier import ParzenWindowClassifier

    class Embedding(ParzenWindowClassifier):
        def predict_proba(self, X, return_embeddings=False):
            proba = super().predict_proba(X)
            if not return_embeddings:
                return proba
            weights = np.random.default_rng(0).normal(size=(X.shape[1], 6))
            return proba, np.tanh(X @ weights)

    return Embedding(classes=[0, 1, 2], metric_dict={"gamma": 0.3})


@pytest.mark.parametrize("flag", ["return_embeddings", {"return_embeddings": True}])
def test_badge_reads_the_classifiers_embeddings(flag):
    peer = _peer()
    X, y, _ = _data()
    ours = front.Badge(clf_embedding_flag_name=flag, random_state=0).query(
        X, y, _embedding_classifier(), batch_size=4, return_utilities=True)
    theirs = peer.Badge(clf_embedding_flag_name=flag, random_state=0).query(
        X, y, _embedding_classifier(), batch_size=4, return_utilities=True)
    assert ours[0][0] == theirs[0][0] and len(set(ours[0])) == 4
    _nan_close(ours[1][0], theirs[1][0], FLOAT32)
    plain = front.Badge(random_state=0).query(X, y, _embedding_classifier(), batch_size=4, return_utilities=True)
    assert not np.allclose(plain[1][0], ours[1][0], equal_nan=True)  # the flag changed what was embedded


def test_badge_reads_a_skorch_classifiers_embeddings():
    peer = _peer()
    pytest.importorskip("skorch", reason="skorch is not installed: no SkorchClassifier embeddings")
    from skactiveml.classifier import SkorchClassifier

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(2, 8)
            self.out = torch.nn.Linear(8, 3)

        def forward(self, x):
            emb = torch.relu(self.hidden(x))
            return self.out(emb), emb

    X, y, _ = _data()
    torch.manual_seed(0)
    clf = SkorchClassifier(Net, forward_outputs={"logits": (0, None), "proba": (0, torch.nn.Softmax(-1)),
                                                 "emb": (1, None)},
                           criterion_output_keys="logits", classes=[0, 1, 2], random_state=0,
                           neural_net_param_dict=dict(max_epochs=5, lr=0.1, train_split=None, verbose=0))
    clf.fit(X.astype(np.float32), y)
    flag = {"extra_outputs": "emb"}
    ours = front.Badge(clf_embedding_flag_name=flag, random_state=0).query(
        X.astype(np.float32), y, clf, fit_clf=False, batch_size=4, return_utilities=True)
    theirs = peer.Badge(clf_embedding_flag_name=flag, random_state=0).query(
        X.astype(np.float32), y, clf, fit_clf=False, batch_size=4, return_utilities=True)
    assert ours[0][0] == theirs[0][0] and len(set(ours[0])) == 4
    _nan_close(ours[1][0], theirs[1][0], dict(rtol=1e-4, atol=1e-6))  # the network's float32 embeddings


def test_badge_draws_its_later_picks_from_the_d2_law():
    """The second pick over many random states: frequencies match the D² weights of
    the utilities' second row (which scikit-activeml's draw follows too)."""
    _peer()
    X, y, _ = _data()
    clf = _clf().fit(X, y)
    weights = front.Badge(random_state=0).query(X, y, clf, fit_clf=False, batch_size=2, return_utilities=True)[1][1]
    draws = 200
    counts = np.bincount([front.Badge(random_state=seed).query(X, y, clf, fit_clf=False, batch_size=2)[1]
                          for seed in range(draws)], minlength=len(X))
    assert counts[np.isnan(weights)].sum() == 0  # never the first pick or a labelled sample
    for index in np.argsort(-np.nan_to_num(weights))[:3]:
        assert abs(counts[index] / draws - weights[index]) < 4 * np.sqrt(weights[index] / draws) + 0.01


def test_coreset_takes_other_metrics_through_scikit_activeml():
    peer = _peer()
    X, y, _ = _data()
    for arguments in (dict(metric="manhattan"), dict(metric="minkowski", metric_dict={"p": 3})):
        ours = front.CoreSet(random_state=0, **arguments).query(X, y, batch_size=3, return_utilities=True)
        theirs = peer.CoreSet(random_state=0, **arguments).query(X, y, batch_size=3, return_utilities=True)
        np.testing.assert_array_equal(ours[0], theirs[0])
        _nan_close(ours[1], theirs[1], FLOAT64)
    y_none = np.full(len(X), np.nan)
    for seed in range(3):  # no labels: the first pick is drawn, as there
        ours = front.CoreSet(random_state=seed).query(X, y_none, batch_size=3, return_utilities=True)
        theirs = peer.CoreSet(random_state=seed).query(X, y_none, batch_size=3, return_utilities=True)
        np.testing.assert_array_equal(ours[0], theirs[0])
        _nan_close(ours[1], theirs[1], FLOAT32)


def test_ties_fall_as_scikit_activeml_draws_them():
    """Duplicated samples give equal utilities; the greedy strategies break the ties
    with the same draws of random_state_ as scikit-activeml, so the picks agree.
    BatchBALD's greedy picks are scikit-activeml's (the samples its utilities rows
    mark NaN, tied as its fixed draw ties them); the indices scikit-activeml returns
    re-draw each row's arg-max and repeat a pick here, the front's never do."""
    peer = _peer()
    X, y, _ = _data()
    X = np.concatenate([X, X[12:40]])
    y = np.concatenate([y, np.full(28, np.nan)])
    repeats = 0
    for seed in range(2):
        for strategy in ("GreedyBALD", "least_confident", "BatchBALD"):
            class_name, arguments, estimator, _ = STRATEGIES[strategy]
            kwargs = {"ensemble": _members()} if estimator == "ensemble" else {"clf": _clf()}
            ours = getattr(front, class_name)(random_state=seed, **arguments).query(X, y, batch_size=6, **kwargs)
            theirs, rows = getattr(peer, class_name)(random_state=seed, **arguments).query(
                X, y, batch_size=6, return_utilities=True, **kwargs)
            assert len(set(ours)) == 6
            if strategy != "BatchBALD":
                np.testing.assert_array_equal(ours, theirs)
                continue
            greedy = [int(np.flatnonzero(np.isnan(rows[i + 1]) & ~np.isnan(rows[i]))[0]) for i in range(5)]
            np.testing.assert_array_equal(ours[:5], greedy)
            repeats += len(set(theirs)) < 6
    assert repeats  # scikit-activeml's own repeats a pick on these ties


def test_errors_at_the_edges_are_scikit_activemls():
    peer = _peer()
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    X, y, _ = _data()
    cases = [  # (class name, constructor arguments, query arguments, expected exception)
        ("BatchBALD", {}, dict(ensemble=_members(), fit_ensemble=False), NotFittedError),
        ("GreedyBALD", {}, dict(ensemble=LogisticRegression()), TypeError),
        ("GreedyBALD", {}, dict(ensemble=_members(), batch_size=0), ValueError),
        ("BatchBALD", dict(n_MC_samples=0), dict(ensemble=_members()), ValueError),
        ("BatchBALD", dict(eps=1.0), dict(ensemble=_members()), ValueError),
        ("UncertaintySampling", {}, dict(clf=LogisticRegression()), TypeError),
        ("UncertaintySampling", dict(method="variance"), dict(clf=_clf()), ValueError),
        ("UncertaintySampling", {}, dict(clf=_clf(), utility_weight=np.ones(3)), ValueError),
        ("UncertaintySampling", {}, dict(clf=_clf(), fit_clf=False), NotFittedError),
        ("Badge", {}, dict(clf=_clf(missing_label=-1)), ValueError),
        ("Badge", dict(clf_embedding_flag_name=3), dict(clf=_clf()), TypeError),
        ("CoreSet", {}, dict(batch_size=1.5), TypeError),
        ("CoreSet", {}, dict(candidates=np.array([200])), ValueError),
    ]
    for class_name, arguments, kwargs, exception in cases:
        for module in (peer, front):
            with pytest.raises(exception):
                getattr(module, class_name)(**arguments).query(X, y, **kwargs)


def test_queries_leave_the_callers_arrays_as_they_are():
    _peer()
    X, y, _ = _data()
    X_before, y_before = X.copy(), y.copy()
    for strategy in STRATEGIES:
        _query(front, strategy, "pool")
    for class_name, kwargs in (("BatchBALD", dict(ensemble=_members())), ("Badge", dict(clf=_clf())),
                               ("CoreSet", {}), ("UncertaintySampling", dict(clf=_clf()))):
        getattr(front, class_name)(random_state=0).query(X, y, batch_size=3, **kwargs)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    probas = _ensemble_probas()
    probas[0, 0] = [1, 0, 0]
    kept = probas.copy()
    front.batch_bald(probas, 2)
    np.testing.assert_array_equal(probas, kept)
    _peer().batch_bald(probas, 2)
    assert probas[0, 0, 1] == 1e-7  # scikit-activeml's own clips the caller's array in place


def test_an_active_learning_loop_with_a_bagged_ensemble_labels_what_scikit_activeml_labels():
    """Four rounds of pool-based active learning with scikit-learn's bagging of
    logistic regressions as the committee: each strategy labels the same samples
    through the front as through scikit-activeml."""
    peer = _peer()
    from skactiveml.classifier import SklearnClassifier
    from sklearn.ensemble import BaggingClassifier
    from sklearn.linear_model import LogisticRegression

    X, y, y_true = _data(seed=1)
    ensemble = SklearnClassifier(BaggingClassifier(LogisticRegression(), n_estimators=5, random_state=0),
                                 classes=[0, 1, 2])
    for class_name, arguments, kwargs in (("GreedyBALD", {}, dict(ensemble=ensemble)),
                                          ("BatchBALD", dict(n_MC_samples=500), dict(ensemble=ensemble)),
                                          ("UncertaintySampling", dict(method="entropy"), dict(clf=ensemble))):
        labelled = []
        for module in (front, peer):
            qs, y_loop = getattr(module, class_name)(random_state=0, **arguments), y.copy()
            for _ in range(4):
                picks = qs.query(X, y_loop, batch_size=3, **kwargs)
                y_loop[picks] = y_true[picks]
            labelled.append(np.flatnonzero(~np.isnan(y_loop)))
        np.testing.assert_array_equal(labelled[0], labelled[1])
        assert len(labelled[0]) == 12 + 12, class_name
