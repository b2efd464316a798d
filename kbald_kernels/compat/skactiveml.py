"""scikit-activeml's query strategies on kbald_kernels: change one import.

    from kbald_kernels.compat.skactiveml import BatchBALD, GreedyBALD, Badge, CoreSet, UncertaintySampling
    from kbald_kernels.compat.skactiveml import batch_bald, k_greedy_center, uncertainty_scores

The classes take scikit-activeml's (1.0) constructor parameters with its defaults and
keep them as attributes of the same names, plus keyword-only ``dtype`` and
``backend``. ``query`` takes its arguments (``ensemble``/``fit_ensemble`` or
``clf``/``fit_clf``, ``sample_weight``, ``utility_weight``, ``candidates`` as indices
into ``X`` or as feature rows, ``batch_size``, ``return_utilities``) and returns its
values: ``query_indices`` and utilities ``(batch_size, n)`` with NaN for labelled,
excluded and already picked samples. The classes subclass scikit-activeml's
``SingleAnnotatorPoolQueryStrategy`` and validate, fit and check estimators with its
own helpers, so the errors and warnings at the edges are its own (a batch larger
than the candidates warns and is clamped; an unfitted ensemble raises
``NotFittedError``, an estimator of the wrong type ``TypeError``), and its
``SubSamplingWrapper`` and ``ParallelUtilityEstimationWrapper`` take them. Badge
reads embeddings through ``clf_embedding_flag_name`` (e.g. a ``SkorchClassifier``
giving ``(proba, emb)``). The classes need scikit-activeml; the functions work
without it.

On the kernels: BatchBALD's joint entropies over label configurations; GreedyBALD's
BALD; the uncertainties' entropy, least confidence and margin; Badge's k-means++
over the factored gradient embedding (features, p - onehot(argmax p)), never the
N × C·d matrix; CoreSet's k-center greedy with Euclidean distances. An ensemble's
predictions are written once into log-probabilities [N, K, C] of ``dtype``: float32
by default, which the host C++ twins read (the front works on CPU arrays, as
scikit-activeml does); "float64" runs the pure-torch
reference and reproduces scikit-activeml's float64 values to rounding. Nothing the
caller passes is modified.

Where scikit-activeml's result is deterministic the front's is the same: GreedyBALD,
UncertaintySampling and CoreSet (indices and utilities), Badge's first pick and
first utilities row, BatchBALD while it enumerates configurations exactly
(C^|S| <= ``n_MC_samples``). Ties between equal utilities fall as there: each
greedy pick of GreedyBALD and UncertaintySampling draws ``random_state_`` as its
``simple_batch`` does, BatchBALD breaks ties by the fixed draw its ``batch_bald``
uses, and CoreSet's first pick without labelled samples draws as its
``k_greedy_center`` does. Where it samples, the front draws from the same law with
the package's counter-based streams, keyed by one draw of ``random_state_``.

Deliberate differences from scikit-activeml:

* Float32 by default: utilities agree with scikit-activeml's float64 to about 1e-6
  relative, so picks whose utilities differ by less than that may be ordered
  differently (``dtype="float64"``: to rounding).
* Ties fall as there only where the utilities are equal in both computations (the
  same predictions, e.g. duplicated samples). Utilities equal only mathematically,
  such as those of predictions that are permutations of each other (frequent with a
  forest's votes), can differ in their last bits in either library, so such a tie
  can fall to another of the equally good samples.
* Probabilities are used as they are, 0·log 0 = 0: ``eps`` is checked as there but
  not applied (scikit-activeml raises entries below ``eps`` to ``eps`` without
  renormalising, which moves a utility by about eps·log(1/eps) per such entry), and
  the caller's array is not clipped in place as its ``batch_bald`` clips it.
* BatchBALD past the exact regime samples ``n_MC_samples`` configurations ancestrally
  from p(y_S) and extends them by one label per pick (scikit-activeml draws
  ⌊n_MC_samples/K⌋ per ensemble member afresh at every pick, none when
  n_MC_samples < K); both estimate the same joint entropy. Zero-probability
  configurations are dropped, so predictions with exact zeros stay exact longer.
  The returned indices are the greedy picks themselves, never a repeat (scikit-activeml
  re-draws each row's arg-max with ``random_state_``, which can repeat a pick on ties).
* Badge draws its picks after the first by Gumbel-max keyed by (seed, step, index),
  the D² law of its ``random_state_.choice``; a picked sample's distance is exactly 0,
  so it is never drawn again (there, a rounding remainder can draw it twice). Where
  every remaining distance is 0 both draw uniformly, but scikit-activeml then forgets
  the earlier centers' distances for the next pick and the front does not. Badge
  returns an ndarray (scikit-activeml a list; its docstring says ndarray).
* CoreSet and ``k_greedy_center`` break ties between equal distances after the first
  pick by the smaller index (scikit-activeml draws ``random_state_``); where every
  remaining distance is 0 scikit-activeml forgets the earlier centers and the front
  does not. Metrics other than Euclidean (and ``metric_dict``) run scikit-activeml's
  own ``k_greedy_center``, so they need it.
* Samples of more than two axes (images) are flattened to rows for CoreSet and
  Badge's default embedding, where scikit-activeml's distances refuse them.
* ``uncertainty_scores`` takes rows whose probabilities sum to 1 within 1e-3, as there;
  rows off by more than the kernels' tolerance are renormalised before scoring
  (scikit-activeml scores them as they are). ``expected_average_precision`` runs
  scikit-activeml's own.
* Predictions holding NaN, +inf or negative values raise a ValueError naming the
  first offending element (scikit-activeml: "Input contains NaN" or a numpy error).
"""

import numbers
import warnings

import numpy as np
import torch

from .. import kernel_ops
from ..acquisition.kmeanspp import select_badge, select_coreset
from ..information import bald, entropy, least_confidence, margin, validated_entropies
from ..reference import configurations_entropy, empty_configurations, extend_configurations
from ..reference.normalisation import NORMALISATION_TOLERANCE
from ..reference.workspace import compute_dtype
from ..validation import check_log_probs_form

MISSING_LABEL = np.nan
DTYPES = {"float32": torch.float32, "float64": torch.float64}
METHODS = ("least_confident", "margin_sampling", "entropy")

try:
    from skactiveml.base import SingleAnnotatorPoolQueryStrategy, SkactivemlClassifier
    from skactiveml.pool._query_by_committee import _check_ensemble
    from skactiveml.utils import check_equal_missing_label, check_scalar, check_type
    from sklearn.base import clone
    from sklearn.utils import check_array
except ImportError as error:
    _PEER_MISSING = str(error)

    class SingleAnnotatorPoolQueryStrategy:
        """Stands in for scikit-activeml's base class where it is not installed."""

        def __init__(self, *args, **kwargs):
            raise ImportError(f"the scikit-activeml strategies need scikit-activeml (pip install scikit-activeml; "
                              f"{_PEER_MISSING}); batch_bald, k_greedy_center and uncertainty_scores work without it")


def _torch_dtype(dtype):
    if isinstance(dtype, torch.dtype):
        key = str(dtype).removeprefix("torch.")
    elif dtype is None:  # np.dtype(None) would be float64
        key = None
    else:
        try:
            key = np.dtype(dtype).name
        except TypeError:
            key = None
    if key not in DTYPES:
        raise ValueError(f"dtype must be float32 or float64 (numpy, torch or a name), got {dtype!r}")
    return DTYPES[key]


def _random_state(random_state):
    """A numpy RandomState as scikit-learn's check_random_state gives it (None: numpy's global one)."""
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.RandomState(random_state)
    if isinstance(random_state, np.random.RandomState):
        return random_state
    raise ValueError(f"random_state must be None, an int or a numpy RandomState, got {random_state!r}")


def _seed(random_state):
    """One draw of ``random_state``: the key of the package's counter-based streams."""
    return int(random_state.randint(0, 2**62, dtype=np.int64))


def _rand_argmax(values, draw):
    """Index of the largest non-NaN value, a tie going to the largest ``draw``: the
    rule of scikit-activeml's rand_argmax, so a ``draw`` from the same stream breaks
    ties the same way."""
    return int(np.argmax(np.where(values == np.nanmax(values), draw, -1.0)))


def _top_batch(utilities, batch_size, random_state, return_utilities):
    """The ``batch_size`` largest ``utilities`` (float64 [n]; NaN never taken), taken
    one at a time as scikit-activeml's simple_batch takes them: each pick draws
    ``random_state.random(n)`` and a tie goes to the largest draw. The order is sorted
    once, so a pick costs the draw, not a pass over the values. Rows: the utilities
    each pick saw, earlier picks NaN. A batch larger than the non-NaN count warns and
    is clamped."""
    n = utilities.shape[0]
    available = int(np.count_nonzero(~np.isnan(utilities)))
    if available < batch_size:
        warnings.warn(f"'batch_size={batch_size}' is larger than number of candidate samples in 'utilities'. "
                      f"Instead, 'batch_size={available}' was set.")
        batch_size = available
    missing = np.isnan(utilities)
    order = np.lexsort((np.where(missing, 0.0, -utilities), missing))  # stable: equal values in index order
    ranked = utilities[order]
    run_ends = np.append(np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, n)
    taken = np.zeros(n, dtype=bool)
    picks = np.empty(batch_size, dtype=int)
    start = 0
    for i in range(batch_size):
        draw = random_state.random(n)
        while taken[order[start]]:
            start += 1
        tied = order[start : run_ends[np.searchsorted(run_ends, start, side="right")]]
        tied = tied[~taken[tied]]
        picks[i] = tied[np.argmax(draw[tied])] if len(tied) > 1 else tied[0]
        taken[picks[i]] = True
    if not return_utilities:
        return picks
    rows = np.repeat(utilities[None, :], batch_size, axis=0)
    for i in range(1, batch_size):
        rows[i, picks[:i]] = np.nan
    return picks, rows


def _tensor(x, name):
    """The caller's array as a CPU tensor, read only (lists and other array-likes through numpy)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold numbers, got numpy dtype {a.dtype}")
        t = torch.from_numpy(a)
    return t if t.dtype.is_floating_point else t.to(torch.float64)


def _log_in_place(out, name, layout):
    """``out`` (probabilities, the front's own array) to log-probabilities, refusing
    negative values with the first one's index in the caller's ``layout``."""
    negative = out < 0
    if bool(negative.any()):
        n, k, c = (int(i) for i in negative.nonzero()[0])
        index = {"KNC": (k, n, c), "NC": (n, c)}[layout]
        raise ValueError(f"{name} must hold probabilities, got {float(out[n, k, c])} at index {index}")
    return out.log_()


def _ensemble_log_probs(probas, dtype, name="probas"):
    """Probabilities [K, N, C] (members, samples, classes) as log-probabilities
    [N, K, C] of ``dtype``: one array, written by one converting copy."""
    t = _tensor(probas, name)
    if t.dim() != 3:
        raise ValueError(f"{name} must have shape (n_estimators, n_samples, n_classes), got shape {tuple(t.shape)}")
    out = torch.empty((t.shape[1], t.shape[0], t.shape[2]), dtype=dtype)
    out.copy_(t.permute(1, 0, 2))
    return _log_in_place(out, name, "KNC")


def _member_log_probs(ensemble, members, X_cand, dtype):
    """Each member's predict_proba on ``X_cand`` written into log-probabilities
    [N, K, C] of ``dtype``, columns in the ensemble's classes (those a member lacks
    stay probability 0), as scikit-activeml's committees line them up."""
    classes = getattr(ensemble, "classes_", None)
    if classes is None:
        classes = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
    out = torch.zeros((len(X_cand), len(members), len(classes)), dtype=dtype)
    for k, member in enumerate(members):
        proba = _tensor(member.predict_proba(X_cand), "predict_proba")
        own = np.asarray(member.classes_)
        if len(own) == len(classes):
            out[:, k] = proba
        else:
            kept = np.isin(own, classes)
            columns = torch.from_numpy(np.searchsorted(classes, own[kept]))
            out[:, k, columns] = proba[:, torch.from_numpy(kept)].to(dtype)
    return _log_in_place(out, "the ensemble's predictions", "KNC")


def _check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, (numbers.Real,)) or not 0 < eps <= 0.1:
        raise ValueError(f"eps must be a number in (0, 0.1], got {eps!r}")


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _batchbald(log_probs, batch_size, num_samples, seed, backend, keep_rows):
    """Greedy BatchBALD over log-probabilities [N, K, C]: (picks, utilities rows
    [batch, N] or None). Row i holds I[Y_S, Y_n; W] for every n given the first i
    picks S, NaN at those picks; the next pick is its arg-max, a tie going to the
    largest of one fixed draw (scikit-activeml's batch_bald breaks ties with a
    RandomState(0) draw). Configurations are exact while at most ``num_samples``,
    then ``num_samples`` are sampled from the stream keyed by ``seed``."""
    name = "probas (as log-probabilities [N, K, C])"
    check_log_probs_form(log_probs, name)
    n, k, _ = log_probs.shape
    conditional = validated_entropies(log_probs, backend, strict=False, name=name)[1]
    ties = np.random.RandomState(0).random(n)
    generator = torch.Generator().manual_seed(seed)
    configs = empty_configurations(k, compute_dtype(log_probs.dtype))
    rows = np.empty((batch_size, n)) if keep_rows else None
    picks = []
    picked_conditional = 0.0
    for step in range(batch_size):
        joint = configurations_entropy(configs) + kernel_ops.accumulate_joint_entropy(
            configs.weights, configs.alpha, log_probs, backend=backend, strict=False)
        scores = (joint - conditional).double().numpy() - picked_conditional
        scores[picks] = np.nan
        pick = _rand_argmax(scores, ties)
        picks.append(pick)
        picked_conditional += float(conditional[pick])
        if keep_rows:
            rows[step] = scores
        if step < batch_size - 1:
            configs = extend_configurations(configs, log_probs[pick], num_samples, generator)
    return np.array(picks, dtype=int), rows


def batch_bald(probas, batch_size, n_MC_samples=None, random_state=None, eps=1e-7, *, dtype="float32",
               backend=None):
    """scikit-activeml's ``batch_bald``: BatchBALD utilities ``(batch_size, n_samples)``
    of ensemble probabilities ``probas`` ``(n_estimators, n_samples, n_classes)``.

    Row i holds every sample's joint mutual information with the model given the
    first i greedy picks (NaN at those picks); ``batch_size`` is clamped to the
    samples. Configurations are enumerated exactly while there are at most
    ``n_MC_samples`` (default: n_estimators) of them and sampled after that, keyed by
    one draw of ``random_state``. ``eps`` is checked, not applied (module docstring).
    ``dtype``: of the log-probabilities the kernels read ("float32" or "float64").
    """
    dtype = _torch_dtype(dtype)
    _check_count(batch_size, "batch_size")
    _check_eps(eps)
    log_probs = _ensemble_log_probs(probas, dtype)
    n_MC_samples = _check_count(log_probs.shape[1] if n_MC_samples is None else n_MC_samples, "n_MC_samples")
    seed = _seed(_random_state(random_state))
    size = min(batch_size, log_probs.shape[0])
    return _batchbald(log_probs, size, n_MC_samples, seed, backend, True)[1]


def _checked_probas(probas):
    """Probabilities [N, C] as a tensor (the caller's, read only) and their row sums,
    checked as scikit-activeml checks them: finite, rows summing to 1 within 1e-3."""
    t = _tensor(probas, "probas")
    if t.dim() != 2:
        raise ValueError(f"probas must have shape (n_samples, n_classes), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        n, c = (int(i) for i in (~torch.isfinite(t)).nonzero()[0])
        raise ValueError(f"probas contains {float(t[n, c])} at index {(n, c)}")
    sums = t.sum(1, dtype=torch.float64)
    if not bool(((sums - 1).abs() <= 1e-3).all()):
        raise ValueError("'probas' are invalid. The sum over axis 1 must be one.")
    return t, sums


def _scores_log_probs(t, sums, dtype):
    """Checked probabilities [N, C] as log-probabilities [N, 1, C] of ``dtype``, a new
    array; rows outside the kernels' tolerance are renormalised."""
    out = t.to(dtype, copy=True).unsqueeze(1)
    if bool((sums.log().abs() > NORMALISATION_TOLERANCE[dtype] / 2).any()):
        out /= sums.to(dtype)[:, None, None]
    return _log_in_place(out, "probas", "NC")


def _cost_scores(t, cost_matrix, method):
    """The cost-sensitive uncertainties from the expected costs ``probas @ cost_matrix``."""
    if method == "entropy":
        raise ValueError("Method `entropy` does not support cost matrices but `cost_matrix` was not None.")
    p = t.double().numpy()
    cost = np.asarray(cost_matrix, dtype=np.float64)
    if cost.shape != (p.shape[1], p.shape[1]) or not np.isfinite(cost).all():
        raise ValueError(f"cost_matrix must be a finite (n_classes, n_classes) = {(p.shape[1],) * 2} array, "
                         f"got shape {cost.shape}")
    two_lowest = np.partition(p @ cost, 1, axis=1)[:, :2]
    return two_lowest[:, 0] if method == "least_confident" else -np.abs(two_lowest[:, 0] - two_lowest[:, 1])


def uncertainty_scores(probas, cost_matrix=None, method="least_confident", *, dtype="float32", backend=None):
    """scikit-activeml's ``uncertainty_scores`` of probabilities ``(n_samples, n_classes)``:
    "least_confident" 1 - max p, "margin_sampling" 1 - (p_(1) - p_(2)), "entropy"
    -Σ p log p; higher is more uncertain. With a ``cost_matrix``: the smallest expected
    cost, or minus the gap between the two smallest (computed in numpy)."""
    if method not in METHODS:
        raise ValueError(f"Supported methods are {list(METHODS)}, the given one is: {method}.")
    dtype = _torch_dtype(dtype)
    t, sums = _checked_probas(probas)
    if cost_matrix is not None:
        return _cost_scores(t, cost_matrix, method)
    log_probs = _scores_log_probs(t, sums, dtype)
    if method == "least_confident":
        scores = least_confidence(log_probs, backend=backend)
    elif method == "margin_sampling":
        scores = 1 - margin(log_probs, backend=backend)
    else:
        scores = entropy(log_probs, backend=backend)
    return scores.double().numpy()


def _unlabeled(y, missing_label):
    y = np.asarray(y)
    if isinstance(missing_label, float) and np.isnan(missing_label):
        return np.isnan(y.astype(np.float64))
    return y == missing_label


def _rows(X, dtype):
    """Samples as rows [n, features] of ``dtype`` (None: as stored) for the distance
    kernels, samples of more axes flattened."""
    t = _tensor(X, "X")
    t = t.reshape(t.shape[0], -1)
    return t if dtype is None else t.to(dtype)


def _squared_distances(embeddings, centers, backend):
    """min over ``centers`` (pool indices) of every sample's squared distance, float64 numpy [N]."""
    index = torch.as_tensor(np.asarray(centers, dtype=np.int64))
    parts = [e.index_select(0, index) for e in embeddings]
    return kernel_ops.min_squared_distances(embeddings, parts, backend=backend, strict=False).double().numpy()


def _k_center(X, centers, mapping, batch_size, random_state, width, dtype, backend, keep_rows):
    """k-center greedy from ``centers`` over the samples ``mapping`` of ``X``: (picks
    into X, rows [batch, len(X)] of Euclidean distances to the nearest center or None).
    Without centers the first pick draws ``random_state.random(width)`` as
    scikit-activeml's k_greedy_center does (all utilities 0 then)."""
    emb = _rows(X, dtype)
    picks = []
    if len(centers) == 0:
        first_row = np.full(width, np.nan)
        first_row[mapping if width == len(X) else np.arange(width)] = 0.0
        column = _rand_argmax(first_row, random_state.random(width))
        picks.append(column if width == len(X) else int(mapping[column]))
    if batch_size > len(picks):
        pool = mapping[~np.isin(mapping, centers)]
        rest = select_coreset(emb, batch_size - len(picks), labeled=np.concatenate([centers, picks]).astype(np.int64),
                              candidates=torch.from_numpy(pool.astype(np.int64)), backend=backend)
        picks += rest.indices.tolist()
    if not keep_rows:
        return np.array(picks, dtype=int), None
    rows = np.full((batch_size, len(X)), np.nan)
    nearest = _squared_distances([emb], centers, backend) if len(centers) else np.full(len(X), np.inf)
    for i in range(len(picks)):
        if i:
            nearest = np.minimum(nearest, _squared_distances([emb], [picks[i - 1]], backend))
        distance = np.sqrt(np.maximum(nearest, 0)) if np.isfinite(nearest[mapping]).all() else np.zeros(len(X))
        rows[i, mapping] = distance[mapping]
        rows[i, np.concatenate([centers, picks[:i]]).astype(np.int64)] = np.nan
    return np.array(picks, dtype=int), rows


def k_greedy_center(X, y, batch_size=1, random_state=None, missing_label=MISSING_LABEL, mapping=None,
                    n_new_cand=None, metric="euclidean", metric_dict=None, *, dtype="float32", backend=None):
    """scikit-activeml's ``k_greedy_center``: CoreSet's k-center greedy batch from the
    labelled samples of ``(X, y)`` as centers, over the unlabelled ones (or ``mapping``,
    indices into ``X``). Returns ``(query_indices, utilities)``; utilities
    ``(batch_size, n_samples)`` (or ``(batch_size, n_new_cand)`` where the first
    ``n_new_cand`` rows of ``X`` are new candidates) hold each sample's Euclidean
    distance to its nearest center before each pick, NaN for centers, picks and
    samples outside ``mapping``. Other metrics run scikit-activeml's own function."""
    if metric not in ("euclidean", "l2") or metric_dict:
        try:
            from skactiveml.pool import k_greedy_center as peer
        except ImportError:
            raise ValueError(f"the kernels compute Euclidean distances; metric={metric!r} with metric_dict="
                             f"{metric_dict!r} needs scikit-activeml's own k_greedy_center (pip install "
                             "scikit-activeml)") from None
        return peer(X, y, batch_size=batch_size, random_state=random_state, missing_label=missing_label,
                    mapping=mapping, n_new_cand=n_new_cand, metric=metric, metric_dict=metric_dict)
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
        raise TypeError("batch_size must be a integer")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must have shape (n_samples,) = ({len(X)},), got shape {y.shape}")
    unlabeled = _unlabeled(y, missing_label)
    centers = np.flatnonzero(~unlabeled)
    mapping = np.flatnonzero(unlabeled) if mapping is None else np.asarray(mapping, dtype=int).ravel()
    if n_new_cand is None:
        width = len(X)
    elif isinstance(n_new_cand, numbers.Integral) and not isinstance(n_new_cand, bool):
        if n_new_cand != len(mapping):
            raise ValueError("n_new_cand must equal to the length of mapping array")
        width = int(n_new_cand)
    else:
        raise TypeError("Only n_new_cand with type int is supported.")
    picks, rows = _k_center(X, centers, mapping, int(batch_size), _random_state(random_state), width,
                            _torch_dtype(dtype), backend, True)
    return picks, rows if n_new_cand is None else rows[:, mapping]


def _spread(rows, mapping, width):
    """Utilities rows over candidates placed at their ``mapping`` columns of ``width`` (NaN elsewhere)."""
    if mapping is None:
        return rows
    out = np.full((rows.shape[0], width), np.nan)
    out[:, mapping] = rows
    return out


def _query_inputs(strategy, X, y, candidates, batch_size, return_utilities):
    """A query's data and candidates through scikit-activeml's own validation, in its
    order: (X, y, candidates, batch_size, return_utilities, X_cand, mapping)."""
    X, y, candidates, batch_size, return_utilities = strategy._validate_data(
        X, y, candidates, batch_size, return_utilities, reset=True)
    return (X, y, candidates, batch_size, return_utilities, *strategy._transform_candidates(candidates, X, y))


def _check_classifier(clf, missing_label):
    check_type(clf, "clf", SkactivemlClassifier)
    check_equal_missing_label(clf.missing_label, missing_label)


class _BALD(SingleAnnotatorPoolQueryStrategy):
    """scikit-activeml's BALD strategies on a committee: its members' predict_proba
    (or ``sample_predictions_method_name``'s samples [K, N, C]) scored on the kernels."""

    greedy_selection = False

    def __init__(self, n_MC_samples=None, eps=1e-7, sample_predictions_method_name=None,
                 sample_predictions_dict=None, missing_label=MISSING_LABEL, random_state=None, *,
                 dtype="float32", backend=None):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.n_MC_samples = n_MC_samples
        self.eps = eps
        self.sample_predictions_method_name = sample_predictions_method_name
        self.sample_predictions_dict = sample_predictions_dict
        self.dtype = dtype
        self.backend = backend

    def query(self, X, y, ensemble, fit_ensemble=True, sample_weight=None, candidates=None, batch_size=1,
              return_utilities=False):
        """Query indices (and utilities) as scikit-activeml's, for ``ensemble``: a fitted
        or unfitted SkactivemlClassifier with ``estimators_``/``n_estimators`` or a
        sampling method, or a list of them."""
        X, y, candidates, batch_size, return_utilities, X_cand, mapping = _query_inputs(
            self, X, y, candidates, batch_size, return_utilities)
        check_type(fit_ensemble, "fit_ensemble", bool)
        ensemble, members, _, sample, sample_kwargs = _check_ensemble(
            ensemble=ensemble, X=X, y=y, sample_weight=sample_weight, fit_ensemble=fit_ensemble,
            missing_label=self.missing_label_, estimator_types=[SkactivemlClassifier],
            sample_predictions_method_name=self.sample_predictions_method_name,
            sample_predictions_dict=self.sample_predictions_dict)
        dtype = _torch_dtype(self.dtype)
        if sample is None:
            log_probs = _member_log_probs(ensemble, members, X_cand, dtype)
        else:
            log_probs = _ensemble_log_probs(sample(X_cand, **sample_kwargs), dtype, "the sampled predictions")
        n_MC_samples = log_probs.shape[1] if self.n_MC_samples is None else self.n_MC_samples
        check_scalar(n_MC_samples, "n_MC_samples", int, min_val=1)
        check_scalar(self.eps, "eps", min_val=0, max_val=0.1, target_type=(float, int), min_inclusive=False)
        width = len(X) if mapping is not None else len(X_cand)
        if self.greedy_selection:
            scores = bald(log_probs, backend=self.backend).double().numpy()
            return _top_batch(_spread(scores[None], mapping, width)[0], batch_size, self.random_state_,
                              return_utilities)
        picks, rows = _batchbald(log_probs, min(batch_size, log_probs.shape[0]), n_MC_samples,
                                 _seed(self.random_state_), self.backend, return_utilities)
        indices = picks if mapping is None else mapping[picks]
        return (indices, _spread(rows, mapping, width)) if return_utilities else indices


class BatchBALD(_BALD):
    """BatchBALD (Kirsch et al. 2019) as scikit-activeml's ``BatchBALD``: each pick
    maximises the batch's joint mutual information with the model, estimated from the
    ensemble's members; label configurations exact while at most ``n_MC_samples``."""


class GreedyBALD(_BALD):
    """Top-k BALD as scikit-activeml's ``GreedyBALD``: utilities are every candidate's
    BALD, the batch the largest (ties drawn as its simple_batch draws them)."""

    greedy_selection = True


class UncertaintySampling(SingleAnnotatorPoolQueryStrategy):
    """scikit-activeml's ``UncertaintySampling``: ``method`` "least_confident",
    "margin_sampling" or "entropy" of ``clf``'s predict_proba on the kernels (with a
    ``cost_matrix``, in numpy; "expected_average_precision": scikit-activeml's own),
    times ``utility_weight``; the batch is the largest utilities."""

    def __init__(self, method="least_confident", cost_matrix=None, missing_label=MISSING_LABEL, random_state=None,
                 *, dtype="float32", backend=None):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.method = method
        self.cost_matrix = cost_matrix
        self.dtype = dtype
        self.backend = backend

    def query(self, X, y, clf, fit_clf=True, sample_weight=None, utility_weight=None, candidates=None, batch_size=1,
              return_utilities=False):
        X, y, candidates, batch_size, return_utilities, X_cand, mapping = _query_inputs(
            self, X, y, candidates, batch_size, return_utilities)
        _check_classifier(clf, self.missing_label_)
        check_type(fit_clf, "fit_clf", bool)
        width = len(X) if mapping is not None else len(X_cand)
        utility_weight = np.ones(width) if utility_weight is None else check_array(utility_weight, ensure_2d=False)
        if len(utility_weight) != width:
            length = "n_samples" if mapping is not None else "n_candidates"
            raise ValueError(f"'utility_weight' must have length '{length}' but {len(utility_weight)} != {width}.")
        if not isinstance(self.method, str):
            raise TypeError(f"{type(self.method)} is an invalid type for method. Type {str} is expected")
        if self.method not in METHODS + ("expected_average_precision",):
            raise ValueError(f"The given method {self.method} is not valid. Supported methods are 'entropy', "
                             "'least_confident', 'margin_sampling' and 'expected_average_precision'")
        if fit_clf:
            clf = clone(clf).fit(X, y) if sample_weight is None else clone(clf).fit(X, y, sample_weight)
        probas = clf.predict_proba(X_cand)
        if self.method == "expected_average_precision":
            from skactiveml.pool import expected_average_precision

            scores = expected_average_precision(clf.classes_, probas)
        else:
            scores = uncertainty_scores(probas, self.cost_matrix, self.method, dtype=self.dtype, backend=self.backend)
        utilities = _spread(scores[None], mapping, width)[0] * utility_weight
        return _top_batch(utilities, batch_size, self.random_state_, return_utilities)


def _embedding_kwargs(flag):
    if flag is None:
        return {}
    check_type(flag, "clf_embedding_flag_name", dict, str)
    return {flag: True} if isinstance(flag, str) else flag


def _badge_first(norms, random_state):
    """Badge's first pick as scikit-activeml makes it: the largest gradient norm, or a
    uniform draw of ``random_state`` when every norm is 0."""
    if norms.sum() != 0:
        return int(np.argmax(norms))
    return int(random_state.choice(len(norms), 1, replace=False, p=np.full(len(norms), 1 / len(norms)))[0])


def _badge_rows(factors, norms, picks, backend):
    """Badge's utilities rows over the unlabelled samples: each sample's D² weight
    d/Σd before each pick (uniform over the unpicked where Σd = 0), picks NaN."""
    nearest = norms.copy()
    rows = np.empty((len(picks), len(norms)))
    for i in range(len(picks)):
        if i:
            nearest = np.minimum(nearest, _squared_distances(factors, [picks[i - 1]], backend))
        weights = nearest.copy()
        weights[picks[:i]] = 0.0
        if weights.sum() == 0:
            weights = np.ones(len(norms))
            weights[picks[:i]] = 0.0
        rows[i] = weights / weights.sum()
        rows[i, picks[:i]] = np.nan
    return rows


class Badge(SingleAnnotatorPoolQueryStrategy):
    """BADGE (Ash et al. 2020) as scikit-activeml's ``Badge``: k-means++ over the
    gradient embeddings (p - onehot(argmax p)) ⊗ x of the unlabelled candidates, x
    the samples or ``clf``'s embeddings (``clf_embedding_flag_name``); the first pick
    is the largest gradient norm. The embeddings stay factored: memory O(N·(C + d))."""

    def __init__(self, clf_embedding_flag_name=None, missing_label=MISSING_LABEL, random_state=None, *,
                 dtype="float32", backend=None):
        self.clf_embedding_flag_name = clf_embedding_flag_name
        self.dtype = dtype
        self.backend = backend
        super().__init__(missing_label=missing_label, random_state=random_state)

    def query(self, X, y, clf, fit_clf=True, sample_weight=None, candidates=None, batch_size=1,
              return_utilities=False):
        X, y, candidates, batch_size, return_utilities, X_cand, mapping = _query_inputs(
            self, X, y, candidates, batch_size, return_utilities)
        _check_classifier(clf, self.missing_label_)
        check_scalar(fit_clf, "fit_clf", bool)
        predict_kwargs = _embedding_kwargs(self.clf_embedding_flag_name)
        if fit_clf:
            clf = clone(clf).fit(X, y) if sample_weight is None else clone(clf).fit(X, y, sample_weight)
        if candidates is None:
            X_unlabeled, unlabeled = X_cand, mapping
        elif mapping is not None:
            unlabeled = mapping[_unlabeled(y[mapping], self.missing_label)]
            X_unlabeled = X[unlabeled]
        else:
            X_unlabeled, unlabeled = X_cand, np.arange(len(X_cand))
        probas = clf.predict_proba(X_unlabeled, **predict_kwargs)
        features = X_unlabeled
        if isinstance(probas, tuple):
            probas, features = probas
        dtype = _torch_dtype(self.dtype)
        probas = np.asarray(probas, dtype=np.float64)
        residuals = probas.copy()
        residuals[np.arange(len(probas)), probas.argmax(-1)] -= 1
        features = _rows(features, None)
        # Norms in float64 as scikit-activeml's, without a float64 copy of the embeddings.
        rows = (features.float() if features.dtype == torch.bfloat16 else features).numpy()  # numpy has no bf16
        norms = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
        norms *= np.einsum("ij,ij->i", residuals, residuals)
        factors = [features.to(dtype), torch.from_numpy(residuals).to(dtype)]
        picks = [_badge_first(norms, self.random_state_)]
        if batch_size > 1:
            rest = select_badge(tuple(factors), batch_size - 1, generator=_seed(self.random_state_),
                                labeled=np.array(picks, dtype=np.int64), backend=self.backend)
            picks += rest.indices.tolist()
        indices = unlabeled[np.array(picks, dtype=int)]
        if not return_utilities:
            return indices
        width = len(X) if mapping is not None else len(X_cand)
        utilities = np.full((batch_size, width), np.nan)
        utilities[:, unlabeled] = _badge_rows(factors, norms, picks, self.backend)
        return indices, utilities


class CoreSet(SingleAnnotatorPoolQueryStrategy):
    """CoreSet (Sener and Savarese 2018) as scikit-activeml's ``CoreSet``: k-center
    greedy from the labelled samples as centers; utilities are Euclidean distances
    to the nearest center (other metrics: scikit-activeml's own computation)."""

    def __init__(self, metric="euclidean", metric_dict=None, missing_label=MISSING_LABEL, random_state=None, *,
                 dtype="float32", backend=None):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.metric = metric
        self.metric_dict = metric_dict
        self.dtype = dtype
        self.backend = backend

    def query(self, X, y, candidates=None, batch_size=1, return_utilities=False):
        X, y, candidates, batch_size, return_utilities, X_cand, mapping = _query_inputs(
            self, X, y, candidates, batch_size, return_utilities)
        labeled = np.flatnonzero(~_unlabeled(y, self.missing_label_))
        new = None
        if mapping is None:  # outside candidates: they come first, the labelled samples after them
            new = len(X_cand)
            X = np.concatenate([X_cand, X[labeled]])
            y = np.concatenate((np.full(new, self.missing_label_), y[labeled]), axis=None)
            mapping, labeled = np.arange(new), np.arange(new, len(X))
        if self.metric not in ("euclidean", "l2") or self.metric_dict:
            picks, rows = k_greedy_center(X, y, batch_size, self.random_state_, self.missing_label_, mapping, new,
                                          self.metric, self.metric_dict)
            return (picks, rows) if return_utilities else picks
        picks, rows = _k_center(X, labeled, mapping, batch_size, self.random_state_, len(X) if new is None else new,
                                _torch_dtype(self.dtype), self.backend, return_utilities)
        if not return_utilities:
            return picks
        return picks, rows if new is None else rows[:, mapping]
