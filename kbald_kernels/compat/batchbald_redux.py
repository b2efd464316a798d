"""batchbald_redux on kbald_kernels: change one import.

    from kbald_kernels.compat.batchbald_redux import (get_batchbald_batch, get_bald_batch, CandidateBatch,
                                                      compute_entropy, compute_conditional_entropy,
                                                      BayesianModule, ConsistentMCDropout, ConsistentMCDropout2d)

The public functions of ``batchbald_redux.batchbald`` with the same signatures and
result types: ``CandidateBatch`` (plain lists of scores and indices), and the
entropies as float64 CPU tensors [N]. As there, ``batch_size`` is clamped to the
pool size: this is the one place the package clamps, because callers of
batchbald_redux rely on it. And the modules of ``batchbald_redux.consistent_mc_dropout``
that make the K predictions: a ``BayesianModule`` runs its ``mc_forward_impl`` on
each input repeated k times ([B, k, ...] out), and its consistent dropout layers
draw, in eval mode, one mask per sample index that every input shares until
``reset_mask()`` (fresh masks per row in training), from the same draws as
batchbald_redux's, so the same seed gives the same predictions.
"""

from dataclasses import dataclass
from typing import List

import torch
from torch.nn import Module

from ..acquisition.batchbald import select_batchbald
from ..information import bald, conditional_entropy, entropy
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


def compute_conditional_entropy(log_probs_N_K_C):
    """E_k H[Y_n | w_k] of every pool point, as batchbald_redux's: float64 on the CPU, [N]."""
    return conditional_entropy(log_probs_N_K_C).to("cpu", torch.float64)


def compute_entropy(log_probs_N_K_C):
    """H[Y_n] of every pool point's mean prediction, as batchbald_redux's: float64 on the CPU, [N]."""
    return entropy(log_probs_N_K_C).to("cpu", torch.float64)


class BayesianModule(Module):
    """A model whose ``forward(input_B, k)`` gives k stochastic predictions of each input,
    [B, k, ...]: the input repeated k times (sample-major within each input) through
    ``mc_forward_impl``, which subclasses override. The k of the call in flight is
    ``BayesianModule.k``, read by the consistent dropout layers."""

    k = None

    def forward(self, input_B: torch.Tensor, k: int):
        BayesianModule.k = k
        return BayesianModule.unflatten_tensor(self.mc_forward_impl(BayesianModule.mc_tensor(input_B, k)), k)

    def mc_forward_impl(self, mc_input_BK: torch.Tensor):
        return mc_input_BK

    @staticmethod
    def unflatten_tensor(input: torch.Tensor, k: int):
        """[B·k, ...] → [B, k, ...]."""
        return input.view(-1, k, *input.shape[1:])

    @staticmethod
    def flatten_tensor(mc_input: torch.Tensor):
        """[B, k, ...] → [B·k, ...]."""
        return mc_input.flatten(0, 1)

    @staticmethod
    def mc_tensor(input: torch.tensor, k: int):
        """[B, ...] → [B·k, ...], each input k times in a row (a broadcast view, then flattened)."""
        return input.unsqueeze(1).expand(input.shape[0], k, *input.shape[1:]).flatten(0, 1)


class _ConsistentMCDropout(Module):
    """Dropout whose eval-mode mask is drawn once per sample index and kept (until
    ``reset_mask()`` or a switch to eval), so the k predictions of every input see the
    same k masks; in training a fresh mask per row of each call."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.mask = None

    def extra_repr(self):
        return f"p={self.p}"

    def reset_mask(self):
        self.mask = None

    def train(self, mode=True):
        super().train(mode)
        if not mode:
            self.reset_mask()
        return self

    def _get_sample_mask_shape(self, sample_shape):
        return sample_shape

    def _create_mask(self, input, k):
        shape = [1, k, *self._get_sample_mask_shape(input.shape[1:])]
        return torch.empty(shape, dtype=torch.bool, device=input.device).bernoulli_(self.p)

    def forward(self, input: torch.Tensor):
        if self.p == 0.0:
            return input
        if self.training:
            k = input.shape[0]  # every row its own mask
            mask = self._create_mask(input, k)
        else:
            k = BayesianModule.k
            if self.mask is None:
                self.mask = self._create_mask(input, k)
            mask = self.mask
        dropped = BayesianModule.unflatten_tensor(input, k).masked_fill(mask, 0) / (1 - self.p)
        return BayesianModule.flatten_tensor(dropped)


class ConsistentMCDropout(_ConsistentMCDropout):
    """Consistent MC dropout of single elements (any input shape), scaled by 1/(1 - p)."""


class ConsistentMCDropout2d(_ConsistentMCDropout):
    """Consistent MC dropout of whole channels of [N, C, H, W] inputs."""

    def _get_sample_mask_shape(self, sample_shape):
        return [sample_shape[0]] + [1] * (len(sample_shape) - 1)
