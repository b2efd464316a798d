"""baal's heuristics on kbald_kernels: change one import.

    from kbald_kernels.compat.baal import BALD, BatchBALD, PowerBALD, EPIG, Entropy, Margin, Certainty

As in baal, predictions are ``[N, C, K]`` (pool points, classes, posterior samples)
or ``[N, C]`` (one sample), numpy or torch, probabilities or logits (softmaxed
when they are not probabilities, as baal's ``to_prob`` decides); ``heuristic(x)``
gives the ranks, most informative first; ``get_ranks(x)`` gives ``(ranks,
scores)``; ``compute_score(x)`` the scores as a numpy array. When baal is
installed these are subclasses of its ``AbstractHeuristic``, so baal's loops take
them; without baal they keep the same interface. Only classification outputs are
taken: ``[N, C, ..., K]`` segmentation maps raise a ValueError.

Two differences from baal, both deliberate: Entropy, Margin and Certainty of
logits average the probabilities over samples (the predictive distribution),
where baal averages the logits before its softmax; BatchBALD's batch holds
``num_samples`` points (baal's holds one more) and ranks them in pick order.
"""

import numpy as np
import torch

from ..acquisition.bald import check_stochastic, stochastic_order
from ..acquisition.batchbald import select_batchbald
from ..conversion import as_log_probs
from ..information import bald, entropy, epig, least_confidence, margin
from ..reference.normalisation import NORMALISATION_TOLERANCE
from ..validation import as_tensor, check_batch_size, seed_from

try:
    from baal.active.heuristics import AbstractHeuristic as _Base
except ImportError:
    class _Base:
        """baal's ``AbstractHeuristic`` interface, for when baal is not installed."""

        def __init__(self, reverse=False):
            self.reversed = reverse

        def reorder_indices(self, scores):
            ranks = np.argsort(scores, kind="stable")
            return ranks[::-1] if self.reversed else ranks

        def get_ranks(self, predictions, target_predictions=None):
            scores = self.get_uncertainties(predictions, target_predictions=target_predictions)
            return self.reorder_indices(scores), scores

        def __call__(self, predictions, target_predictions=None):
            return self.get_ranks(predictions, target_predictions)[0]


class _Front(_Base):
    """Scores straight from compute_score: baal's get_uncertainties would first call
    ``.numpy()`` on a tensor, which fails on CUDA tensors."""

    def get_uncertainties(self, predictions, target_predictions=None):
        return self.compute_score(predictions, target_predictions=target_predictions)


def to_log_probs(predictions, name="predictions"):
    """baal's predictions ``[N, C, K]`` or ``[N, C]`` (probabilities, or logits when
    they are not probabilities) as log-probabilities ``[N, K, C]``."""
    t, _ = as_tensor(predictions, name)
    t = t.detach()
    if t.dim() == 2:
        t = t.unsqueeze(-1)
    if t.dim() != 3:
        raise ValueError(f"{name} must be [N, C, K] or [N, C] classification outputs, got shape {tuple(t.shape)}")
    if not t.dtype.is_floating_point:
        t = t.to(torch.float32)
    # baal's rule (to_prob): softmax unless every value is in [0, 1] and, with more
    # than one class, each row sums to 1 (fp16/bf16 rows: to their rounding).
    bounded = bool((t.min() >= 0) & (t.max() <= 1))
    atol = NORMALISATION_TOLERANCE[t.dtype] if t.dtype in (torch.float16, torch.bfloat16) else 1e-8
    normalised = t.shape[1] == 1 or np.allclose(t.sum(1).double().cpu().numpy(), 1, atol=atol)
    return as_log_probs(t, layout="NCK", kind="probs" if bounded and normalised else "logits")


def _numpy(x):
    return x.detach().cpu().numpy()


class BALD(_Front):
    """BALD, I[y; θ | x]; the highest first."""

    def __init__(self, *, backend=None):
        super().__init__(reverse=True)
        self.backend = backend

    def compute_score(self, predictions, target_predictions=None):
        return _numpy(bald(to_log_probs(predictions), backend=self.backend))


class Entropy(_Front):
    """Predictive entropy of the mean prediction; the highest first."""

    def __init__(self, *, backend=None):
        super().__init__(reverse=True)
        self.backend = backend

    def compute_score(self, predictions, target_predictions=None):
        return _numpy(entropy(to_log_probs(predictions), backend=self.backend))


class Margin(_Front):
    """Margin between the two most probable classes of the mean prediction; the smallest first."""

    def __init__(self, *, backend=None):
        super().__init__(reverse=False)
        self.backend = backend

    def compute_score(self, predictions, target_predictions=None):
        return _numpy(margin(to_log_probs(predictions), backend=self.backend))


class Certainty(_Front):
    """The mean prediction's largest probability; the smallest first."""

    def __init__(self, *, backend=None):
        super().__init__(reverse=False)
        self.backend = backend

    def compute_score(self, predictions, target_predictions=None):
        return 1 - _numpy(least_confidence(to_log_probs(predictions), backend=self.backend))


class EPIG(_Front):
    """EPIG (Bickford Smith et al. 2023) about ``target_predictions`` (``[T, C, K]``,
    the same K samples); the highest first. The [N, T] terms are never stored."""

    def __init__(self, *, backend=None):
        super().__init__(reverse=True)
        self.backend = backend

    def compute_score(self, predictions, target_predictions=None):
        if target_predictions is None:
            raise ValueError("EPIG needs target_predictions [T, C, K]")
        targets = to_log_probs(target_predictions, "target_predictions")
        log_probs = to_log_probs(predictions)
        return _numpy(epig(log_probs, targets.to(log_probs.dtype), backend=self.backend))


class BatchBALD(_Front):
    """BatchBALD (Kirsch et al. 2019) batch of ``num_samples`` points, as baal's
    ``BatchBALD(num_samples, num_draw)``: label configurations are exact while there
    are at most ``num_draw`` of them, ``num_draw`` sampled ones after that
    (``generator``: int seed or torch.Generator). Ranks: the batch in pick order,
    then the other points by BALD; scores: each pick's gain in joint mutual
    information, 0 for the others (as baal's)."""

    def __init__(self, num_samples, num_draw=500, *, generator=None, backend=None):
        super().__init__(reverse=True)
        self.num_samples = num_samples
        self.num_draw = num_draw
        self.generator = generator
        self.backend = backend

    def compute_score(self, predictions, target_predictions=None):
        return self.get_ranks(predictions)[1]

    def get_ranks(self, predictions, target_predictions=None):
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
        return torch.cat([picks, others[by_bald.indices]]).numpy(), scores.numpy()


class PowerBALD(_Front):
    """PowerBALD (Kirsch et al. 2023), as baal's ``PowerBALD(query_size, temperature)``:
    ``query_size`` points drawn without replacement with probability ∝ BALD^(1/T).
    ``get_ranks`` gives (the draw, the normalised weights) as baal's does; the draw
    is Gumbel-top-k keyed by ``generator`` (int seed or torch.Generator), so the
    same seed gives the same draw."""

    def __init__(self, query_size, temperature=1.0, *, generator=None, backend=None):
        check_stochastic("power", temperature)
        super().__init__(reverse=True)
        self.query_size = query_size
        self.temperature = temperature
        self.generator = generator
        self.backend = backend

    def compute_score(self, predictions, target_predictions=None):
        return _numpy(bald(to_log_probs(predictions), backend=self.backend))

    def get_ranks(self, predictions, target_predictions=None):
        scores = bald(to_log_probs(predictions), backend=self.backend)
        size = check_batch_size(min(self.query_size, scores.shape[0]), scores.shape[0], "query_size")
        draw = stochastic_order(scores, size, "power", self.temperature, seed_from(self.generator))
        weights = _numpy(scores).astype(np.float64).clip(0) ** (1 / self.temperature)
        if not weights.sum() > 0:  # every BALD is 0 (one sample a point): uniform, as baal falls back to
            weights = np.ones_like(weights)
        return _numpy(draw), weights / weights.sum()
