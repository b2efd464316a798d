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


def random_log_probs(n, k, c, device="cpu", dtype=torch.float32, seed=0):
    """The benchmarks' pool of predictions [N, K, C]: random logits with a per-point shared
    part, so that samples of a point agree more than those of different points."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, c, generator=gen) * 2 + torch.randn(n, 1, c, generator=gen) * 2
    return torch.log_softmax(logits, -1).to(device=device, dtype=dtype)


def random_badge_factors(n, h, c, device="cpu", seed=0):
    """The benchmarks' BADGE pool: :func:`kbald_kernels.badge_factors` of random ReLU
    features [N, H] and logits [N, C]."""
    from . import badge_factors

    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n, h, generator=gen).relu()
    logits = torch.randn(n, c, generator=gen) * 2
    features, residuals = badge_factors(logits, features)
    return features.to(device), residuals.to(device)
