"""A built-in example pool: an ensemble's predictions on a synthetic classification task.

Ten Gaussian classes in a 32-dimensional feature space; the "posterior samples"
are an ensemble of linear classifiers fitted to a few labels and perturbed, so
points near class boundaries and far from the labels are the uncertain ones.
"""

from typing import NamedTuple

import torch


class ExamplePool(NamedTuple):
    log_probs: torch.Tensor  # [N, K, C]
    features: torch.Tensor  # [N, H], the penultimate layer BADGE uses
    logits: torch.Tensor  # [N, C], the mean member's logits


def example_pool(pool_size=2000, samples=20, classes=10, width=32, seed=0, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, width, generator=gen) * 1.5
    labels = torch.randint(0, classes, (pool_size,), generator=gen)
    features = means[labels] + torch.randn(pool_size, width, generator=gen)
    # A nearest-mean classifier from a handful of noisy labels per class, then an
    # ensemble of perturbed copies: the members disagree where data is scarce.
    estimated = means + torch.randn(classes, width, generator=gen) * 0.7
    members = estimated[None] + torch.randn(samples, classes, width, generator=gen) * 0.35
    logits_k = torch.einsum("nh,kch->nkc", features, members) - 0.5 * members.square().sum(-1)[None]
    logits_k = logits_k / 4.0
    log_probs = torch.log_softmax(logits_k, -1)
    return ExamplePool(log_probs.to(device), features.to(device), logits_k.mean(1).to(device))
