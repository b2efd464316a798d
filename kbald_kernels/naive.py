"""The naive torch way: each selection as a user writes it straight from the papers'
equations, with no package. ``kbald`` and the benchmarks time the package against these;
the tests check that they compute what the package computes.

All take log-probabilities ``[N, K, C]`` (or dense embeddings ``[N, D]`` for k-means++)
on any device and return Python lists of pool indices (or the scores).
"""

import torch


def _entropy(p):
    pbar = p.mean(1)
    return -(pbar * pbar.clamp_min(1e-30).log()).sum(-1)


def naive_bald(lp):
    """BALD scores [N]: entropy of the mean prediction minus the mean entropy."""
    p = lp.exp()
    pbar = p.mean(1)
    return -(pbar * pbar.log()).sum(-1) + (p * lp).sum(-1).mean(1)


def naive_pairwise_mi(a, b):
    """The textbook einsum: materialises the joint [Na, Nb, C, C]."""
    pa, pb = a.exp(), b.exp()
    joint = torch.einsum("akc,bkd->abcd", pa, pb) / a.shape[1]
    h_joint = -(joint * joint.clamp_min(1e-30).log()).sum((2, 3))
    return _entropy(pa)[:, None] + _entropy(pb)[None, :] - h_joint


def naive_kbald2(lp, batch):
    """2-BALD greedy with naive per-step joints [N, C, C]."""
    p = lp.exp()
    h = _entropy(p)
    increment = naive_bald(lp).clone()
    picks = []
    for _ in range(batch):
        masked = increment.clone()
        if picks:
            masked[torch.tensor(picks, device=lp.device)] = -torch.inf
        i = int(masked.argmax())
        picks.append(i)
        joint = torch.einsum("nkc,kd->ncd", p, p[i]) / p.shape[1]
        increment -= h + h[i] + (joint * joint.clamp_min(1e-30).log()).sum((1, 2))
    return picks


def naive_batchbald(lp, batch, num_samples, generator=None):
    """Greedy BatchBALD from its equations: for every candidate the joint P(y_S, y_i) over
    the label configurations of S is materialised, ``[N, M, C]``; configurations are
    enumerated while there are at most ``num_samples`` of them, then ``num_samples`` are
    drawn from P(y_S) and each extended by one label drawn given it."""
    p = lp.exp()
    k = p.shape[1]
    conditional = -(p * lp).sum(-1).mean(1)
    configs = torch.ones(1, k, dtype=p.dtype, device=p.device)  # P(y_S | w_k), a row per configuration
    sampled = False
    picks = []
    for _ in range(batch):
        joint = torch.einsum("mk,nkc->nmc", configs, p) / k
        if sampled:  # the mean over configurations drawn from P(y_S) of -sum_c P(c | y_S) log P(y_S, c)
            h = -(torch.xlogy(joint, joint) / configs.mean(1)[None, :, None]).sum(2).mean(1)
        else:
            h = -torch.xlogy(joint, joint).sum((1, 2))
        score = h - conditional - conditional[picks].sum()
        score[picks] = -torch.inf
        i = int(score.argmax())
        picks.append(i)
        extended = (configs[:, None, :] * p[i].T[None]).reshape(-1, k)  # configuration m, then label c
        if sampled:
            given = extended.mean(1).reshape(-1, p.shape[2])
            labels = torch.multinomial(given, 1, generator=generator)[:, 0]
            configs = extended[torch.arange(len(labels), device=p.device) * p.shape[2] + labels]
        elif extended.shape[0] <= num_samples:
            configs = extended
        else:
            drawn = torch.multinomial(extended.mean(1), num_samples, replacement=True, generator=generator)
            configs, sampled = extended[drawn], True
    return picks


def dense_of(features, residuals):
    """BADGE's gradient embeddings materialised: the outer product per point, ``[N, H·C]``."""
    return (features[:, :, None] * residuals[:, None, :]).reshape(features.shape[0], -1)


def naive_kmeanspp(x, k, gen):
    """The plain torch k-means++ loop: cdist, running min, cumsum + searchsorted."""
    first = int(torch.randint(x.shape[0], (1,), generator=gen))
    picks = [first]
    d = torch.cdist(x, x[first : first + 1]).square().squeeze(1)
    for _ in range(k - 1):
        cdf = torch.cumsum(d / d.sum(), 0)
        u = torch.rand(1, generator=gen).to(x.device)
        i = min(int(torch.searchsorted(cdf, u)), x.shape[0] - 1)
        picks.append(i)
        d = torch.minimum(d, torch.cdist(x, x[i : i + 1]).square().squeeze(1))
    return picks
