"""Joint entropy of a selected set with each pool point, in the posterior-weight form.

For label configurations m of the selected points S we keep posterior weights over
the posterior samples, ``w[m, k] ∝ Π_{s∈S} p[s, k, y_s^m]`` (rows normalised, so
nothing underflows however large S grows), a weight ``alpha[m]`` and
``log p(y_S^m)``. Then

    H[Y_S, Y_i] = H[Y_S] + Σ_m alpha[m] · H(q[m, i, :]),   q[m, i, c] = Σ_k w[m, k] p[i, k, c].

Configurations are enumerated exactly (alpha = p(y_S^m)) while there are at most
``num_samples`` of them, and sampled ancestrally from p(y_S) after that
(alpha = 1/M, H[Y_S] estimated by -mean log p(y_S^m)).
"""

from typing import NamedTuple

import torch

from .workspace import chunk_size, compute_dtype, xlogx


class Configurations(NamedTuple):
    weights: torch.Tensor  # [M, K], each row sums to 1
    alpha: torch.Tensor  # [M]
    log_prob: torch.Tensor  # [M], log p(y_S^m)
    exact: bool


def empty_configurations(n_samples, dtype=torch.float64, device="cpu"):
    """The single empty configuration of S = {}: uniform weights over the K samples."""
    return Configurations(
        weights=torch.full((1, n_samples), 1.0 / n_samples, dtype=dtype, device=device),
        alpha=torch.ones(1, dtype=dtype, device=device),
        log_prob=torch.zeros(1, dtype=dtype, device=device),
        exact=True,
    )


def configurations_entropy(configs):
    """H[Y_S]: exact sum over enumerated configurations, or the Monte-Carlo estimate."""
    if configs.exact:
        return -(configs.alpha * configs.log_prob).sum()
    return -configs.log_prob.mean()


def extend_configurations(configs, point_log_probs, num_samples=None, generator=None):
    """Add one selected point (its log-probabilities [K, C]) to the configurations.

    Exact configurations gain all C labels while the count stays within
    ``num_samples`` (``None``: always exact); past that, ``num_samples``
    configurations are drawn from the exact distribution, and sampled ones are
    extended by one label drawn from q. Zero-probability configurations are dropped;
    sampling reads nothing back to the host.
    """
    dtype = configs.weights.dtype
    p = torch.exp(point_log_probs.to(dtype))  # [K, C]
    q = configs.weights @ p  # [M, C]
    n_configs, n_classes = q.shape
    if configs.exact and (num_samples is None or n_configs * n_classes <= num_samples):
        # Zero-probability configurations are dropped, so hard labels stay exact (and
        # small) for longer. The count is data-dependent, so this reads back to the
        # host: once a pick while enumerating, at most log_C(num_samples) + 1 times.
        weights = configs.weights[:, None, :] * p.T[None, :, :] / q[:, :, None].clamp_min(torch.finfo(dtype).tiny)
        keep = torch.nonzero(q.reshape(-1) > 0).squeeze(1)
        return Configurations(
            weights=weights.reshape(-1, weights.shape[-1]).index_select(0, keep),
            alpha=(configs.alpha[:, None] * q).reshape(-1).index_select(0, keep),
            log_prob=(configs.log_prob[:, None] + torch.log(q)).reshape(-1).index_select(0, keep),
            exact=True,
        )
    if configs.exact:
        parents = torch.multinomial(configs.alpha, num_samples, replacement=True, generator=generator)
    else:
        parents = torch.arange(n_configs, device=q.device)
    q_parents = q[parents]
    labels = torch.multinomial(q_parents, 1, generator=generator)[:, 0]
    q_label = q_parents.gather(1, labels[:, None])[:, 0]
    weights = configs.weights[parents] * p[:, labels].T / q_label[:, None]
    return Configurations(
        weights=weights,
        alpha=torch.full((parents.shape[0],), 1.0 / parents.shape[0], dtype=dtype, device=q.device),
        log_prob=configs.log_prob[parents] + torch.log(q_label),
        exact=False,
    )


def accumulate_joint_entropy(weights, alpha, log_probs):
    """out[i] = Σ_m alpha[m] · H(q[m, i, :]) with q = weights @ p[i]; q is never stored whole. [N]."""
    n_points, n_samples, n_classes = log_probs.shape
    n_configs = weights.shape[0]
    dtype = weights.dtype
    itemsize = torch.finfo(dtype).bits // 8
    out = torch.zeros(n_points, dtype=dtype, device=log_probs.device)
    # The probabilities of a chunk of points (conversion, exp, transposed copy) and the
    # q of a chunk of configurations (GEMM, x log x, sum) each get half the workspace.
    point_step = chunk_size(6 * itemsize * n_samples * n_classes, n_points)
    for start in range(0, n_points, point_step):
        p = torch.exp(log_probs[start : start + point_step].to(dtype))
        rows = p.shape[0]
        p = p.permute(1, 0, 2).reshape(n_samples, rows * n_classes)
        config_step = chunk_size(6 * itemsize * rows * n_classes, n_configs)
        for m in range(0, n_configs, config_step):
            q = (weights[m : m + config_step] @ p).view(-1, rows, n_classes)
            out[start : start + rows] += alpha[m : m + config_step] @ (-xlogx(q).sum(-1))
    return out


def joint_entropy(log_probs, selected, num_samples=None, generator=None, accumulate=accumulate_joint_entropy):
    """H[Y_S, Y_i] for every pool point i, S = ``selected`` (a sequence of pool indices); [N].

    ``num_samples=None`` enumerates every configuration; otherwise at most
    ``num_samples`` configurations are kept (sampled once the exact count would pass it).
    ``accumulate``: the Σ_m alpha[m]·H(q[m, i, :]) implementation (a compiled one
    runs the same configurations).
    """
    dtype = compute_dtype(log_probs.dtype)
    configs = empty_configurations(log_probs.shape[1], dtype, log_probs.device)
    for s in selected:
        row = torch.as_tensor(s, dtype=torch.int64, device=log_probs.device).view(1)
        configs = extend_configurations(configs, log_probs.index_select(0, row)[0], num_samples, generator)
    return configurations_entropy(configs) + accumulate(configs.weights, configs.alpha, log_probs)
