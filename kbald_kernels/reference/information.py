"""Entropy, BALD, pairwise mutual information and the triple interaction (reference)."""

import torch

from .normalisation import rows_outside
from .workspace import cache_chunk_size, chunk_size, compute_dtype, workspace_bytes, xlogx


def _probs(log_probs_chunk):
    return torch.exp(log_probs_chunk.to(compute_dtype(log_probs_chunk.dtype)))


def entropies(log_probs):
    """(entropy, conditional_entropy, invalid) in one pass over ``log_probs`` [N, K, C].

    The pass is also the input's validation: ``invalid`` is a 0-dim bool tensor on
    the input's device, true when some (n, k) row holds NaN or +inf or is not
    normalised (:mod:`.normalisation`). It is never read here, so the pass makes no
    host sync; the caller reads it once.
    """
    entropy, conditional, _, _, invalid = _information_terms(log_probs, confidence=False)
    return entropy, conditional, invalid


def uncertainties(log_probs):
    """(entropy, conditional_entropy, least_confidence, margin, invalid) in the one
    pass of :func:`entropies`: ``least_confidence = 1 - max_c pbar`` and ``margin =
    pbar_(1) - pbar_(2)``, the two largest class means (a single class: pbar_(2) = 0)."""
    return _information_terms(log_probs, confidence=True)


def _information_terms(log_probs, confidence):
    n_points, n_samples, n_classes = log_probs.shape
    dtype = compute_dtype(log_probs.dtype)
    out = torch.empty(4 if confidence else 2, n_points, dtype=dtype, device=log_probs.device)
    invalid = torch.zeros((), dtype=torch.bool, device=log_probs.device)
    # Cache-sized chunks: the few pool-shaped temporaries then stay in cache instead
    # of costing fresh pages on every call (measured 3x on a 2-core CPU).
    step = cache_chunk_size(3 * n_samples * n_classes * torch.finfo(dtype).bits // 8, n_points)
    for start in range(0, n_points, step):
        lp = log_probs[start : start + step].to(dtype)
        p = torch.exp(lp)
        invalid |= rows_outside(p.sum(-1), log_probs.dtype).any()
        mean = p.mean(1)
        out[0, start : start + step] = -xlogx(mean).sum(-1)
        # p·log p from the log-probabilities already at hand. Clamping -inf to the most
        # negative float makes 0·(-inf) an exact 0 in one cheap op, and summing over
        # K·C at once (then / K) avoids torch's slow reduction over a short last axis.
        plogp = p * lp.clamp_min(torch.finfo(dtype).min)
        out[1, start : start + step] = -plogp.flatten(1).sum(-1) / n_samples
        if confidence:
            top = torch.nn.functional.pad(mean, (0, 1)).topk(2, dim=-1).values
            out[2, start : start + step] = 1 - top[:, 0]
            out[3, start : start + step] = top[:, 0] - top[:, 1]
    if confidence:
        return out[0], out[1], out[2], out[3], invalid
    return out[0], out[1], None, None, invalid


def entropy(log_probs):
    """H[Y_n] of the posterior predictive ``mean_k p[n, k, :]``; [N]."""
    return entropies(log_probs)[0]


def conditional_entropy(log_probs):
    """E_k H[Y_n | w_k]; [N]."""
    return entropies(log_probs)[1]


def bald(log_probs):
    """BALD score I[Y_n; W] = entropy - conditional_entropy; [N]."""
    h, ch, _ = entropies(log_probs)
    return h - ch


def _tiles(n_samples, n_classes, dtype, n_b, symmetric=False):
    """(rows of a, rows of b) per tile of a pairwise pass whose temporaries fit the
    workspace: a row's probabilities live three times (conversion, exp, the GEMM's
    transposed copy), in a quarter of it per side, and a pair's C×C joint three times
    (GEMM, scaled, x log x), in half of it. A short ``b`` (one-against-all) lets
    the tiles of ``a`` grow."""
    itemsize = torch.finfo(dtype).bits // 8
    budget = workspace_bytes()
    per_row = 3 * itemsize * n_samples * n_classes
    per_pair = 3 * itemsize * n_classes**2
    rows = budget / 4 / per_row
    tile_b = max(1, int(min(rows, (budget / 2 / per_pair) ** 0.5, n_b)))
    if symmetric:
        return tile_b, tile_b
    return max(1, int(min(rows, budget / 2 / (per_pair * tile_b)))), tile_b


def _pair_joint_entropy(pa, pb):
    """H of J[n, m] = mean_k pa[n, k, :] ⊗ pb[m, k, :] for probability chunks; [na, nb].

    The joint is a GEMM over K of (n, c) rows against (m, d) columns.
    """
    na, k, c = pa.shape
    nb = pb.shape[0]
    joint = pa.permute(0, 2, 1).reshape(na * c, k) @ pb.permute(0, 2, 1).reshape(nb * c, k).T
    joint = (joint / k).view(na, c, nb, c)
    return -xlogx(joint).sum(dim=(1, 3))


def pairwise_mutual_information(a, b=None, entropies_ab=None):
    """I[Y_n; Y_m] for every n in ``a`` [Na, K, C] and m in ``b`` [Nb, K, C]; [Na, Nb].

    ``b=None`` scores ``a`` against itself and computes each symmetric tile once.
    ``entropies_ab``: (H[Y_n] for a, H[Y_m] for b) when the caller has them, which
    spares a pass over each. Rounding can leave values a few ulps below 0; they
    are not clamped.
    """
    symmetric = b is None
    if symmetric:
        b = a
    n_a, n_samples, n_classes = a.shape
    n_b = b.shape[0]
    dtype = compute_dtype(a.dtype)
    if entropies_ab is None:
        h_a = entropy(a)
        h_b = h_a if symmetric else entropy(b)
    else:
        h_a, h_b = (h.to(dtype) for h in entropies_ab)
    out = torch.empty(n_a, n_b, dtype=dtype, device=a.device)
    tile_a, tile_b = _tiles(n_samples, n_classes, dtype, n_b, symmetric)
    for i in range(0, n_a, tile_a):
        pa = _probs(a[i : i + tile_a])
        for j in range(i if symmetric else 0, n_b, tile_b):
            pb = pa if symmetric and i == j else _probs(b[j : j + tile_b])
            mi = h_a[i : i + tile_a, None] + h_b[None, j : j + tile_b] - _pair_joint_entropy(pa, pb)
            out[i : i + tile_a, j : j + tile_b] = mi
            if symmetric and j != i:
                out[j : j + tile_b, i : i + tile_a] = mi.T
    return out


def epig(log_probs, target_log_probs, entropies_pt, target_weights):
    """EPIG[n] = Σ_t v[t]·I[Y_n; Y_t] of pool points [N, K, C] and targets [T, K, C]
    that share the K posterior samples; ``entropies_pt``: (H[Y_n], H[Y_t]),
    ``target_weights``: v [T], summing to 1. [N]; the [N, T] block is never held
    beyond a workspace-sized tile."""
    n_points, n_samples, n_classes = log_probs.shape
    n_targets = target_log_probs.shape[0]
    dtype = compute_dtype(log_probs.dtype)
    h_pool, h_targets = (h.to(dtype) for h in entropies_pt)
    weights = target_weights.to(dtype)
    out = torch.zeros(n_points, dtype=dtype, device=log_probs.device)
    tile_pool, tile_targets = _tiles(n_samples, n_classes, dtype, n_targets)
    for i in range(0, n_points, tile_pool):
        pa = _probs(log_probs[i : i + tile_pool])
        for j in range(0, n_targets, tile_targets):
            pt = _probs(target_log_probs[j : j + tile_targets])
            mi = h_pool[i : i + tile_pool, None] + h_targets[None, j : j + tile_targets] - _pair_joint_entropy(pa, pt)
            out[i : i + tile_pool] += mi @ weights[j : j + tile_targets]
    return out


def triple_interaction(log_probs, triples):
    """I[Y_a; Y_b; Y_c] = H_a+H_b+H_c - H_ab - H_ac - H_bc + H_abc for rows of ``triples`` [T, 3]; [T]."""
    n_samples, n_classes = log_probs.shape[1:]
    dtype = compute_dtype(log_probs.dtype)
    itemsize = torch.finfo(dtype).bits // 8
    out = torch.empty(triples.shape[0], dtype=dtype, device=log_probs.device)
    step = chunk_size(3 * itemsize * n_samples * n_classes**3, triples.shape[0])
    for start in range(0, triples.shape[0], step):
        idx = triples[start : start + step]
        pa, pb, pc = (_probs(log_probs[idx[:, j]]) for j in range(3))

        def h1(p):
            return -xlogx(p.mean(1)).sum(-1)

        def h2(p, q):
            return -xlogx(torch.einsum("tkc,tkd->tcd", p, q) / n_samples).sum(dim=(1, 2))

        joint3 = torch.einsum("tkcd,tke->tcde", pa[..., :, None] * pb[..., None, :], pc) / n_samples
        h3 = -xlogx(joint3).sum(dim=(1, 2, 3))
        out[start : start + step] = h1(pa) + h1(pb) + h1(pc) - h2(pa, pb) - h2(pa, pc) - h2(pb, pc) + h3
    return out


def mutual_information_with_pick(log_probs, entropy, pick):
    """I[Y_n; Y_pick] for every pool point n; [N]. ``pick``: an int64 [1] tensor on
    the pool's device (it is never read back), ``entropy``: H[Y_n]."""
    n_points, n_samples, n_classes = log_probs.shape
    dtype = compute_dtype(log_probs.dtype)
    pick_probs = _probs(log_probs.index_select(0, pick))
    entropy_pick = entropy.index_select(0, pick).to(dtype)
    out = torch.empty(n_points, dtype=dtype, device=log_probs.device)
    step = _tiles(n_samples, n_classes, dtype, 1)[0]
    for start in range(0, n_points, step):
        joint = _pair_joint_entropy(_probs(log_probs[start : start + step]), pick_probs)[:, 0]
        out[start : start + step] = entropy[start : start + step] + entropy_pick - joint
    return out


def argmax_unselected(values, selected):
    """The unselected point with the largest value (ties: the smaller index) as an
    int64 [1] tensor on the device: nothing is read back."""
    return torch.argmax(torch.where(selected, -torch.inf, values)).view(1)


def kbald_pairwise_steps(log_probs, entropy, increment, selected, newest, n_steps):
    """``n_steps`` greedy 2-BALD steps. Each applies the newest pick (pool index or
    None) to the running increments, ``increment -= I[Y_n; Y_newest]``, then picks
    the unselected point with the largest increment (ties: smaller index).

    ``increment`` and ``selected`` are updated in place; the last pick is left as
    the next call's ``newest``. Returns (indices int64 [n_steps], the increment of
    each pick when picked [n_steps]). The steps chain on the device.
    """
    indices = torch.full((n_steps,), -1, dtype=torch.int64, device=increment.device)
    scores = torch.full((n_steps,), torch.nan, dtype=increment.dtype, device=increment.device)
    if newest is not None:
        newest = torch.tensor([int(newest)], dtype=torch.int64, device=increment.device)
    for slot in range(n_steps):
        if newest is not None:
            increment -= mutual_information_with_pick(log_probs, entropy, newest).to(increment.dtype)
        newest = argmax_unselected(increment, selected)
        selected.index_fill_(0, newest, True)
        indices[slot : slot + 1] = newest
        scores[slot : slot + 1] = increment.index_select(0, newest)
    return indices, scores


def add_triple_interactions(log_probs, entropy, pair_entropies, picks, triple):
    """``triple[n] += Σ_j I[Y_n; Y_newest; Y_{picks[j]}]`` over the earlier picks.

    ``picks``: int64 tensor on the device, the earlier picks and then the newest.
    ``pair_entropies`` [len(picks), N]: row j holds H[Y_n, Y_{picks[j]}]. Updates
    ``triple`` in place and returns it.
    """
    from .joint_entropy import joint_entropy

    h = entropy
    n_earlier = picks.shape[0] - 1
    newest = picks[n_earlier:]
    pair_with_newest = pair_entropies[n_earlier]
    h_newest = h.index_select(0, newest)
    for j in range(n_earlier):
        earlier = picks[j : j + 1]
        triple_joint = joint_entropy(log_probs, [newest, earlier]).to(triple.dtype)
        triple += (h + h_newest + h.index_select(0, earlier) - pair_with_newest - pair_entropies[j]
                   - pair_entropies[j].index_select(0, newest) + triple_joint)
    return triple
