"""baal's heuristics on kbald_kernels: change one import.

    from kbald_kernels.compat.baal import BALD, BatchBALD, PowerBALD, EPIG, Entropy, Margin, Certainty
    from kbald_kernels.compat.baal import get_heuristic

Each class takes baal's constructor arguments with baal's defaults and meanings
(``shuffle_prop``, deprecated, warns as baal does; ``reduction``: "none", "mean",
"sum", "max", "min" or a callable, applied to each point's scores over the spatial
axes), plus ``backend=`` (and ``generator=`` where there is a draw), and baal's
contract: ``heuristic(x)`` gives the ranks, most informative first; ``get_ranks(x)``
gives ``(ranks, scores)``; ``get_uncertainties(x)`` the reduced scores;
``compute_score(x)`` the scores before the reduction. When baal is installed these
are subclasses of its ``AbstractHeuristic``, so its ``CombineHeuristics`` and
``ActiveLearningLoop`` take them; without baal they keep the same interface.

Predictions are as baal takes them: ``[N, C, ..., K]`` (pool points, classes, any
spatial axes such as ``[H, W]``, posterior samples), ``[N, C]`` (one sample), numpy
or torch, probabilities or logits (softmaxed when they are not probabilities, as
baal's ``to_prob`` decides), a one-item list of those, or a generator of such
chunks (as baal's ``ModelWrapper.predict_on_dataset_generator`` yields), scored
chunk by chunk and ranked over the whole stream. Segmentation maps are scored per
position on the kernels, in chunks of points under the workspace.

Deliberate differences from baal: predictions holding NaN or +inf raise a
ValueError naming the first (baal scores them and sets the score to 0 or 10 000);
one class (a sigmoid output, C=1) is refused (pass [p, 1 - p]); float16/bfloat16
probabilities are taken as probabilities (baal's tolerance takes them for
logits); PowerBALD's draw is Gumbel-top-k keyed by its seed (the same law as
baal's numpy draw, other points). Entropy, Margin and Certainty of logits average
the probabilities over samples (the predictive distribution), where baal averages
the logits before its softmax (Certainty: the largest averaged value, not
softmaxed); BatchBALD's batch holds ``num_samples`` points (baal's holds one more,
ranked by score) ranked in pick order, and it takes a stream by gathering the
chunks (baal refuses one). Where baal fails an ``assert`` on the input's shape
(BALD and EPIG on fewer than 3 axes, EPIG on more) the front raises a
:class:`PredictionShapeError`, both a ValueError and an AssertionError.
"""

import types
import warnings

import numpy as np
import torch

from ..acquisition.bald import check_stochastic, stochastic_order
from ..acquisition.batchbald import select_batchbald
from ..conversion import as_log_probs
from ..information import bald, entropy, epig, least_confidence, margin
from ..reference.normalisation import NORMALISATION_TOLERANCE
from ..reference.workspace import chunk_size
from ..validation import as_tensor, check_batch_size, seed_from

DEPRECATED = "DEPRECATED"
REDUCTIONS = {
    "max": lambda x: np.max(x, axis=tuple(range(1, x.ndim))),
    "min": lambda x: np.min(x, axis=tuple(range(1, x.ndim))),
    "mean": lambda x: np.mean(x, axis=tuple(range(1, x.ndim))),
    "sum": lambda x: np.sum(x, axis=tuple(range(1, x.ndim))),
    "none": lambda x: x,
}


class PredictionShapeError(ValueError, AssertionError):
    """Predictions of a shape the heuristic does not take (where baal fails an assert)."""


def _shuffled(ranks, shuffle_prop):
    """baal's deprecated shuffle: each rank swapped, with probability ``shuffle_prop``,
    among the others drawn (numpy's global RNG, as baal)."""
    drawn = np.nonzero(np.random.rand(ranks.shape[0]) < shuffle_prop)[0]
    ranks[drawn] = ranks[np.random.permutation(drawn)]
    return ranks


class _Standalone:
    """baal's ``AbstractHeuristic`` contract, for when baal is not installed: the
    deprecated shuffle, the reductions, the non-finite fix, streams and ranks."""

    def __init__(self, shuffle_prop=DEPRECATED, reverse=False, reduction="none"):
        if shuffle_prop != DEPRECATED and shuffle_prop < 1.0:
            warnings.warn("shuffle_prop is deprecated in baal; for diverse batches use a stochastic heuristic "
                          "such as PowerBALD", DeprecationWarning)
        else:
            shuffle_prop = 0.0
        if not (callable(reduction) or reduction in REDUCTIONS):
            raise AssertionError(f"reduction must be one of {sorted(REDUCTIONS)} or a callable, got {reduction!r}")
        self.shuffle_prop = shuffle_prop
        self.reversed = reverse
        self._reduction_name = reduction
        self.reduction = reduction if callable(reduction) else REDUCTIONS[reduction]

    def get_uncertainties_generator(self, predictions, target_predictions=None):
        scores = [self.get_uncertainties(chunk, target_predictions=target_predictions) for chunk in predictions]
        if not scores:
            raise ValueError("No prediction! Cannot order the values!")
        return np.concatenate(scores)

    def reorder_indices(self, scores):
        if isinstance(scores, (list, tuple)):
            scores = np.concatenate(scores)
        if scores.ndim != 1:
            raise ValueError(f"cannot rank scores of {scores.ndim} dimensions; is the heuristic's reduction "
                             f"({self._reduction_name}) set?")
        ranks = np.argsort(scores)
        return _shuffled(ranks[::-1] if self.reversed else ranks, self.shuffle_prop)

    def get_ranks(self, predictions, target_predictions=None):
        if isinstance(predictions, types.GeneratorType):
            scores = self.get_uncertainties_generator(predictions, target_predictions=target_predictions)
        else:
            scores = self.get_uncertainties(predictions, target_predictions=target_predictions)
        return self.reorder_indices(scores), scores

    def __call__(self, predictions, target_predictions=None):
        return self.get_ranks(predictions, target_predictions)[0]


try:
    from baal.active.heuristics import AbstractHeuristic as _Base
except ImportError:
    _Base = _Standalone


class _Front(_Base):
    """A heuristic whose scores come from the kernels. ``get_uncertainties`` is baal's
    (the reduction, then non-finite scores set to 0 or 10 000 with a warning) but
    takes CUDA tensors as they are, where baal's would call ``.numpy()`` on them."""

    def __init__(self, shuffle_prop=DEPRECATED, reverse=False, reduction="none", backend=None):
        super().__init__(shuffle_prop=shuffle_prop, reverse=reverse, reduction=reduction)
        self.backend = backend

    def get_uncertainties(self, predictions, target_predictions=None):
        scores = self.reduction(self.compute_score(predictions, target_predictions=target_predictions))
        if not np.all(np.isfinite(scores)):
            fixed = 0.0 if self.reversed else 10000
            warnings.warn(f"Invalid value in the score, will be put to {fixed}", UserWarning)
            scores[~np.isfinite(scores)] = fixed
        return scores

    def _per_position(self, op, predictions, least_axes=2, mean_first=False):
        """``op`` (log-probabilities [M, K, C] → [M]) at every position of ``predictions``
        [N, C, ..., K] (or [N, C]): scores [N, ...] as numpy, float64 for float64 input.
        ``mean_first``: ``op`` needs only the mean prediction, which it gets as one sample."""
        t, spatial = _positions(_single(predictions), least_axes)
        scores = []
        for log_probs in _position_chunks(t, spatial, mean_first):
            scores.append(op(log_probs, backend=self.backend).detach().cpu())
        return torch.cat(scores).view(t.shape[0], *spatial).numpy()


def _single(predictions):
    """baal's single-output rule: a one-item list or tuple is its item; more is refused."""
    if isinstance(predictions, (list, tuple)):
        if len(predictions) != 1:
            raise ValueError("this heuristic takes one array [N, C, ..., K]; for the outputs of a multi-output "
                             "model combine heuristics with baal's CombineHeuristics")
        return predictions[0]
    return predictions


def _positions(predictions, least_axes, name="predictions"):
    """(probabilities or logits as a tensor [N, C, ..., K] with K last, its spatial shape)."""
    t, _ = as_tensor(predictions, name)
    t = t.detach()
    if t.dim() < least_axes:
        raise PredictionShapeError(f"{name} must be [N, C, ..., K] with at least {least_axes} axes, got shape "
                                   f"{tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[-1] == 0:
        raise ValueError(f"{name} has no point or no sample: shape {tuple(t.shape)}")
    if t.shape[1] < 2:
        raise ValueError(f"{name} must have C >= 2 classes, got shape {tuple(t.shape)}; for one sigmoid output "
                         "pass the two classes [p, 1 - p]")
    if t.dim() == 2:
        t = t.unsqueeze(-1)
    if not t.dtype.is_floating_point:
        t = t.to(torch.float32)
    return t, tuple(t.shape[2:-1])


def _is_probabilities(t):
    """baal's rule (to_prob): probabilities when every value is in [0, 1] and each
    position's classes sum to 1 (fp16/bf16: to their rounding, where baal's float64
    tolerance would take them for logits). Read in chunks under the workspace."""
    if not bool((t.min() >= 0) & (t.max() <= 1)):
        return False
    low_precision = t.dtype in (torch.float16, torch.bfloat16)
    atol = NORMALISATION_TOLERANCE[t.dtype] if low_precision else 1e-8
    dtype = torch.float32 if low_precision else t.dtype  # as baal's numpy sums: in the input's precision
    step = chunk_size(2 * (t[0].numel() // t.shape[1]) * 8, t.shape[0])
    one = torch.ones((), dtype=dtype)
    return all(bool(torch.isclose(t[start : start + step].sum(1, dtype=dtype), one, rtol=1e-5, atol=atol).all())
               for start in range(0, t.shape[0], step))


def _position_chunks(t, spatial, mean_first=False):
    """Log-probabilities [M, K, C] of every position of ``t`` [N, C, ..., K], in chunks of
    points whose copy fits the workspace. ``mean_first``: the mean prediction over the
    samples (of the probabilities; of the softmaxed logits), renormalised as scipy's
    entropy (baal's) does, as one sample [M, 1, C]: one pass and C logarithms a
    position instead of K·C."""
    probabilities = _is_probabilities(t)
    n, c, k = t.shape[0], t.shape[1], t.shape[-1]
    positions = int(np.prod(spatial)) if spatial else 1
    dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    step = chunk_size(2 * positions * k * c * max(t.element_size(), 4), n)
    for start in range(0, n, step):
        chunk = t[start : start + step].reshape(-1, c, positions, k)
        if mean_first:
            p = chunk.to(dtype) if probabilities else torch.softmax(chunk.to(dtype), 1)
            mean = p.mean(-1)
            yield torch.log(mean / mean.sum(1, keepdim=True)).transpose(1, 2).reshape(-1, 1, c)
        else:
            chunk = chunk.permute(0, 2, 1, 3).reshape(-1, c, k)
            yield as_log_probs(chunk, layout="NCK", kind="probs" if probabilities else "logits")


def to_log_probs(predictions, name="predictions"):
    """baal's classification predictions ``[N, C, K]`` or ``[N, C]`` (probabilities, or
    logits when they are not probabilities) as log-probabilities ``[N, K, C]``."""
    t, spatial = _positions(_single(predictions), 2, name)
    if spatial:
        raise PredictionShapeError(f"{name} must be [N, C, K] or [N, C] classification outputs, got shape "
                                   f"{tuple(t.shape)}")
    # One conversion of the whole (chunks joined by a cat would hold the pool twice).
    return as_log_probs(t, layout="NCK", kind="probs" if _is_probabilities(t) else "logits")


def _numpy(x):
    return x.detach().cpu().numpy()


class BALD(_Front):
    """BALD, I[y; θ | x], per position; the highest first."""

    def __init__(self, shuffle_prop=DEPRECATED, reduction="none", *, backend=None):
        super().__init__(shuffle_prop=shuffle_prop, reverse=True, reduction=reduction, backend=backend)

    def compute_score(self, predictions, target_predictions=None):
        return self._per_position(bald, predictions, least_axes=3)


class Entropy(_Front):
    """Predictive entropy of the mean prediction, per position; the highest first."""

    def __init__(self, shuffle_prop=DEPRECATED, reduction="none", *, backend=None):
        super().__init__(shuffle_prop=shuffle_prop, reverse=True, reduction=reduction, backend=backend)

    def compute_score(self, predictions, target_predictions=None):
        return self._per_position(entropy, predictions, mean_first=True)


class Margin(_Front):
    """Margin between the two most probable classes of the mean prediction, per position;
    the smallest first."""

    def __init__(self, shuffle_prop=DEPRECATED, reduction="none", *, backend=None):
        super().__init__(shuffle_prop=shuffle_prop, reverse=False, reduction=reduction, backend=backend)

    def compute_score(self, predictions, target_predictions=None):
        return self._per_position(margin, predictions, mean_first=True)


class Certainty(_Front):
    """The mean prediction's largest probability, per position; the smallest first."""

    def __init__(self, shuffle_prop=DEPRECATED, reduction="none", *, backend=None):
        super().__init__(shuffle_prop=shuffle_prop, reverse=False, reduction=reduction, backend=backend)

    def compute_score(self, predictions, target_predictions=None):
        return 1 - self._per_position(least_confidence, predictions, mean_first=True)


class EPIG(_Front):
    """EPIG (Bickford Smith et al. 2023) about ``target_predictions`` (``[T, C, K]``,
    the same K samples); the highest first. The [N, T] terms are never stored; on a
    stream each chunk is scored against the same targets. ``reverse`` is taken and
    unused, as in baal."""

    def __init__(self, shuffle_prop=DEPRECATED, reverse=False, reduction="none", *, backend=None):
        super().__init__(shuffle_prop=shuffle_prop, reverse=True, reduction=reduction, backend=backend)

    def compute_score(self, predictions, target_predictions=None):
        if target_predictions is None:
            raise ValueError("EPIG needs target_predictions [T, C, K]")
        predictions, target_predictions = _single(predictions), _single(target_predictions)
        for x, name in ((predictions, "predictions"), (target_predictions, "target_predictions")):
            if isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim != 3:
                raise PredictionShapeError(f"EPIG takes classification outputs: {name} must be [N, C, K], "
                                           f"got shape {tuple(x.shape)}")
        log_probs = to_log_probs(predictions)
        targets = to_log_probs(target_predictions, "target_predictions")
        return _numpy(epig(log_probs, targets.to(log_probs.dtype), backend=self.backend))


def _gathered(predictions):
    """A stream of prediction chunks as one array (numpy or torch, as the chunks are)."""
    chunks = list(predictions)
    if not chunks:
        raise ValueError("No prediction! Cannot order the values!")
    return torch.cat(chunks) if isinstance(chunks[0], torch.Tensor) else np.concatenate(chunks)


class BatchBALD(_Front):
    """BatchBALD (Kirsch et al. 2019) batch of ``num_samples`` points, as baal's
    ``BatchBALD(num_samples, num_draw)``: label configurations are exact while there
    are at most ``num_draw`` of them, ``num_draw`` sampled ones after that
    (``generator``: int seed or torch.Generator). Ranks: the batch in pick order,
    then the other points by BALD; scores: each pick's gain in joint mutual
    information, 0 for the others (as baal's). Classification only ([N, C, K]: other
    shapes raise baal's ValueError). A stream of chunks is gathered into one array
    first (the joint entropies need every point at each pick). ``reduction`` is
    taken as baal takes it; on [N, C, K] every reduction leaves the scores as they are."""

    def __init__(self, num_samples, num_draw=500, shuffle_prop=DEPRECATED, reduction="none", *, generator=None,
                 backend=None):
        super().__init__(shuffle_prop=shuffle_prop, reverse=True, reduction=reduction, backend=backend)
        self.num_samples = num_samples
        self.num_draw = num_draw
        self.generator = generator

    def compute_score(self, predictions, target_predictions=None):
        return self.get_ranks(predictions)[1]

    def get_ranks(self, predictions, target_predictions=None):
        if isinstance(predictions, types.GeneratorType):
            predictions = _gathered(predictions)
        predictions = _single(predictions)
        if getattr(predictions, "ndim", None) != 3:
            raise ValueError(f"BatchBALD only works on classification: expected [N, C, K], got shape "
                             f"{tuple(getattr(predictions, 'shape', ()))}")
        log_probs = to_log_probs(predictions)
        n = log_probs.shape[0]
        batch = select_batchbald(log_probs, min(self.num_samples, n), num_samples=self.num_draw,
                                 generator=self.generator, backend=self.backend)
        picks = batch.indices.cpu()
        scores = torch.zeros(n, dtype=torch.float64)
        scores[picks] = torch.diff(batch.scores.double().cpu(), prepend=torch.zeros(1, dtype=torch.float64))
        others = torch.ones(n, dtype=torch.bool)
        others[picks] = False
        others = others.nonzero().view(-1)
        by_bald = torch.sort(bald(log_probs, backend=self.backend).cpu()[others], descending=True, stable=True)
        return _shuffled(torch.cat([picks, others[by_bald.indices]]).numpy(), self.shuffle_prop), scores.numpy()


class PowerBALD(BALD):
    """PowerBALD (Kirsch et al. 2023), as baal's ``PowerBALD(query_size, temperature,
    reduction)``: ``query_size`` points drawn without replacement with probability
    ∝ BALD^(1/T) (reduced per point by ``reduction``). ``get_ranks`` gives (the draw,
    the normalised weights) as baal's does, from an array or a stream; the draw is
    Gumbel-top-k keyed by ``generator`` (int seed or torch.Generator), so the same
    seed gives the same draw."""

    def __init__(self, query_size, temperature=1.0, reduction="none", *, generator=None, backend=None):
        check_stochastic("power", temperature)
        super().__init__(reduction=reduction, backend=backend)
        self.query_size = query_size
        self.temperature = temperature
        self.generator = generator

    def get_ranks(self, predictions, target_predictions=None):
        if isinstance(predictions, types.GeneratorType):
            scores = self.get_uncertainties_generator(predictions)
        else:
            scores = self.get_uncertainties(predictions)
        scores = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float64))
        size = check_batch_size(self.query_size, scores.shape[0], "query_size")
        weights = scores.numpy().clip(0) ** (1 / self.temperature)
        if np.count_nonzero(weights) < size:  # too few informative points: uniform, as baal falls back to
            weights = np.ones_like(weights)
            scores = torch.ones_like(scores)
        draw = stochastic_order(scores, size, "power", self.temperature, seed_from(self.generator))
        return _numpy(draw), weights / weights.sum()


HEURISTICS = {"bald": BALD, "batch_bald": BatchBALD, "certainty": Certainty, "entropy": Entropy, "epig": EPIG,
              "margin": Margin}


def get_heuristic(name, shuffle_prop=0.0, reduction="none", **kwargs):
    """baal's ``get_heuristic``: the heuristic called ``name`` ("bald", "batch_bald",
    "certainty", "entropy", "epig", "margin" from this front; with baal installed, its
    own "random", "variance" and "precomputed"), built with baal's arguments (its
    default ``shuffle_prop=0.0`` warns, as baal's does). An unknown name raises KeyError."""
    if name not in HEURISTICS:
        try:
            from baal.active import get_heuristic as baal_get_heuristic
        except ImportError:
            raise KeyError(name) from None
        return baal_get_heuristic(name, shuffle_prop=shuffle_prop, reduction=reduction, **kwargs)
    return HEURISTICS[name](shuffle_prop=shuffle_prop, reduction=reduction, **kwargs)

