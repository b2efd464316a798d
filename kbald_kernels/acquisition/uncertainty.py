"""Top-k uncertainty sampling, the usual baselines, from the one validating pass;
and the candidate subsets that cheap proxies (or a seeded draw) make for any
acquisition's ``candidates=``."""

import torch

from ..candidates import CandidatePool
from ..information import validated_uncertainties
from ..reference import gumbel_noise
from ..selection import Selection
from ..validation import check_batch_size, check_log_probs_form, seed_from, to_output

UNCERTAINTY_SCORES = ("entropy", "least_confidence", "margin", "bald")
PROXY_SCORES = ("random",) + UNCERTAINTY_SCORES


def select_uncertainty(log_probs, batch_size, *, score="entropy", candidates=None, backend=None):
    """The ``batch_size`` most uncertain points by ``score``: predictive ``"entropy"``,
    ``"least_confidence"`` (1 - max_c pbar), ``"margin"`` (pbar_(1) - pbar_(2); the
    smallest are taken) or ``"bald"``; most uncertain first, ties to the smaller index.
    ``candidates``: pool indices or a boolean mask to choose among (default: all).

    Returns ``Selection(indices, scores)`` with each picked point's own score (not a
    running sum: a batch's margins do not add up to anything).
    """
    if score not in UNCERTAINTY_SCORES:
        raise ValueError(f"score must be one of {UNCERTAINTY_SCORES}, got {score!r}")
    t, np_in = check_log_probs_form(log_probs)
    pool = CandidatePool(t, candidates)
    size = check_batch_size(batch_size, pool.size)
    terms = validated_uncertainties(pool.t, backend, strict=False, rows=pool.t_rows)
    values = pool.per_candidate(uncertainty_values(score, *terms))
    order = torch.sort(values, descending=score != "margin", stable=True).indices[:size]
    return Selection(to_output(pool.from_candidates(order), np_in), to_output(values[order], np_in))


def uncertainty_values(score, entropy, conditional, confidence, margin):
    """The per-point values of ``score`` from the uncertainties' pass."""
    return {"entropy": entropy, "least_confidence": confidence, "margin": margin, "bald": entropy - conditional}[score]


def candidate_subset(log_probs, size, *, score="random", generator=None, backend=None):
    """Pool indices of ``size`` candidates, sorted, for any acquisition's ``candidates=``
    (the BADGE acceleration report's random subset and proxy prefilter).

    ``score="random"``: a uniform subset keyed by (seed, pool index), so the same
    ``generator`` (int seed or torch.Generator) gives the same subset; ``log_probs``
    may then be the pool size N instead of predictions. ``"least_confidence"``,
    ``"margin"``, ``"entropy"`` or ``"bald"``: the ``size`` points that proxy ranks
    most uncertain (:func:`select_uncertainty`). Returns int64 indices on the
    predictions' device (numpy for numpy input).
    """
    if score not in PROXY_SCORES:
        raise ValueError(f"score must be one of {PROXY_SCORES}, got {score!r}")
    if score == "random" and isinstance(log_probs, int) and not isinstance(log_probs, bool):
        if log_probs < 1:
            raise ValueError(f"the pool size must be >= 1, got {log_probs}")
        n, device, np_in = log_probs, torch.device("cpu"), False
    else:
        t, np_in = check_log_probs_form(log_probs)
        n, device = t.shape[0], t.device
    size = check_batch_size(size, n, "size")
    if score == "random":
        keys = gumbel_noise(seed_from(generator), 0, torch.arange(n, device=device))
        rows = torch.topk(keys, size).indices
    else:
        rows = select_uncertainty(t, size, score=score, backend=backend).indices
    return to_output(rows.sort().values, np_in)
