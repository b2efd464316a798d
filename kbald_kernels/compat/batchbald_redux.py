"""batchbald_redux's batch functions on kbald_kernels: change one import.

    from kbald_kernels.compat.batchbald_redux import get_batchbald_batch, get_bald_batch

Results match batchbald_redux's ``CandidateBatch`` (plain lists of scores and
indices). As there, ``batch_size`` is clamped to the pool size: this is the one
place the package clamps, because callers of batchbald_redux rely on it.
"""

from dataclasses import dataclass
from typing import List

import torch

from ..acquisition.batchbald import select_batchbald
from ..information import bald
from ..validation import as_tensor


@dataclass
class CandidateBatch:
    scores: List[float]
    indices: List[int]


def _prepare(log_probs_N_K_C, dtype, device):
    t, _ = as_tensor(log_probs_N_K_C, "log_probs_N_K_C")
    if device is not None:
        t = t.to(device)
    if dtype is not None:
        t = t.to(dtype)
    return t


def get_batchbald_batch(log_probs_N_K_C, batch_size, num_samples, dtype=None, device=None, generator=None):
    """BatchBALD batch: ``scores`` are the joint mutual information after each pick.

    ``generator`` (an addition) seeds the sampled configurations; without it
    torch's global RNG is used, as batchbald_redux does.
    """
    t = _prepare(log_probs_N_K_C, dtype, device)
    size = min(int(batch_size), t.shape[0]) if t.dim() == 3 else batch_size
    if size == 0:
        return CandidateBatch([], [])
    selection = select_batchbald(t, size, num_samples=num_samples, generator=generator)
    return CandidateBatch([float(s) for s in selection.scores], [int(i) for i in selection.indices])


def get_bald_batch(log_probs_N_K_C, batch_size, dtype=None, device=None):
    """Top-k BALD batch: ``scores`` are each pick's own BALD score (not cumulative), as in batchbald_redux."""
    t = _prepare(log_probs_N_K_C, dtype, device)
    scores = bald(t)
    size = min(int(batch_size), scores.shape[0])
    values, indices = torch.sort(scores, descending=True, stable=True)
    return CandidateBatch(values[:size].tolist(), indices[:size].tolist())
