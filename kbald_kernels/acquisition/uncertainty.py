"""Top-k uncertainty sampling: the usual baselines, from the one validating pass."""

import torch

from ..information import validated_uncertainties
from ..selection import Selection
from ..validation import check_batch_size, check_log_probs_form, to_output

UNCERTAINTY_SCORES = ("entropy", "least_confidence", "margin", "bald")


def select_uncertainty(log_probs, batch_size, *, score="entropy", backend=None):
    """The ``batch_size`` most uncertain points by ``score``: predictive ``"entropy"``,
    ``"least_confidence"`` (1 - max_c pbar), ``"margin"`` (pbar_(1) - pbar_(2); the
    smallest are taken) or ``"bald"``; most uncertain first, ties to the smaller index.

    Returns ``Selection(indices, scores)`` with each picked point's own score (not a
    running sum: a batch's margins do not add up to anything).
    """
    if score not in UNCERTAINTY_SCORES:
        raise ValueError(f"score must be one of {UNCERTAINTY_SCORES}, got {score!r}")
    t, np_in = check_log_probs_form(log_probs)
    size = check_batch_size(batch_size, t.shape[0])
    entropy, conditional, confidence, margin = validated_uncertainties(t, backend, strict=False)
    values = {"entropy": entropy, "least_confidence": confidence, "margin": margin,
              "bald": entropy - conditional}[score]
    order = torch.sort(values, descending=score != "margin", stable=True).indices[:size]
    return Selection(to_output(order, np_in), to_output(values[order], np_in))
