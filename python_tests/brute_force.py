"""Brute-force oracles: enumerate every label configuration explicitly, in float64.

Deliberately written without the chunking, GEMMs or posterior weights of the
reference, so the two share nothing but the definitions.
"""

import itertools
import math

import torch


def joint_distribution(log_probs, points):
    """{labels tuple: P(Y_points = labels)} = mean_k Π_j p[points_j, k, labels_j]."""
    p = torch.exp(log_probs.double().cpu())
    k = p.shape[1]
    c = p.shape[2]
    out = {}
    for labels in itertools.product(range(c), repeat=len(points)):
        prob = torch.ones(k, dtype=torch.float64)
        for point, label in zip(points, labels):
            prob = prob * p[point, :, label]
        out[labels] = float(prob.mean())
    return out


def joint_entropy(log_probs, points):
    return -sum(q * math.log(q) for q in joint_distribution(log_probs, points).values() if q > 0)


def conditional_entropy(log_probs, point):
    p = torch.exp(log_probs.double().cpu()[point])
    return float(-torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(-1).mean())


def joint_mutual_information(log_probs, points):
    """I[Y_points; W]: the BatchBALD value of a batch (members are conditionally independent)."""
    return joint_entropy(log_probs, points) - sum(conditional_entropy(log_probs, i) for i in points)


def interaction(log_probs, points):
    """Interaction information by inclusion–exclusion over all subsets: I[Y_a;Y_b] or I[Y_a;Y_b;Y_c]."""
    total = 0.0
    for r in range(1, len(points) + 1):
        for subset in itertools.combinations(points, r):
            total += (-1) ** (r + 1) * joint_entropy(log_probs, list(subset))
    return total


def kbald_value(log_probs, batch, order):
    """k-BALD estimate of I[Y_batch; W]: inclusion–exclusion truncated at ``order``-wise terms."""
    value = sum(joint_mutual_information(log_probs, [i]) for i in batch)
    value -= sum(interaction(log_probs, list(pair)) for pair in itertools.combinations(batch, 2))
    if order == 3:
        value += sum(interaction(log_probs, list(t)) for t in itertools.combinations(batch, 3))
    return value


def greedy(value_of_batch, pool_size, batch_size):
    """Greedy maximisation of ``value_of_batch``; ties to the smaller index. (indices, values)."""
    batch, values = [], []
    for _ in range(batch_size):
        best, best_value = None, -math.inf
        for i in range(pool_size):
            if i in batch:
                continue
            v = value_of_batch(batch + [i])
            if v > best_value + 1e-12:
                best, best_value = i, v
        batch.append(best)
        values.append(best_value)
    return batch, values
