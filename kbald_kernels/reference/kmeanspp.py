"""k-means++ (D²) and k-center greedy steps over dense or factored BADGE embeddings.

Randomness is a counter-based Philox4x32-10 stream keyed by (seed, step, point
index), so a pick depends only on those three numbers: the same seed gives the
same ordering whatever the chunking, launch order or backend.
"""

import math

import torch

from .workspace import cache_chunk_size, chunk_size, compute_dtype

_MASK32 = 0xFFFFFFFF
_PHILOX_ROUND = (0xD2511F53, 0xCD9E8D57)
_PHILOX_KEY_STEP = (0x9E3779B9, 0xBB67AE85)


def _mulhilo(a, b):
    """(high, low) 32-bit halves of a·b for a constant ``a`` and an int64 tensor ``b`` < 2³².

    The 64-bit product may pass the signed range; int64 multiplication wraps
    modulo 2⁶⁴ on every torch device, and masking recovers both halves exactly.
    """
    product = b * a
    return (product >> 32) & _MASK32, product & _MASK32


def philox4x32(counter, key, rounds=10):
    """Philox4x32 (Salmon et al. 2011) on int64 tensors holding 32-bit words.

    ``counter`` is four broadcastable tensors, ``key`` two Python ints. Returns four tensors.
    """
    c0, c1, c2, c3 = (torch.as_tensor(c, dtype=torch.int64) & _MASK32 for c in counter)
    k0, k1 = key[0] & _MASK32, key[1] & _MASK32
    for _ in range(rounds):
        hi0, lo0 = _mulhilo(_PHILOX_ROUND[0], c0)
        hi1, lo1 = _mulhilo(_PHILOX_ROUND[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _PHILOX_KEY_STEP[0]) & _MASK32, (k1 + _PHILOX_KEY_STEP[1]) & _MASK32
    return c0, c1, c2, c3


def gumbel_noise(seed, step, index):
    """Standard Gumbel noise for each point index at this step; float64, same shape as ``index``.

    The uniform takes the top 24 bits of the first Philox word, centred in its bin,
    so it lies strictly inside (0, 1) and is exact in float32 as well.
    """
    flat = index.reshape(-1)
    out = torch.empty(flat.shape, dtype=torch.float64, device=flat.device)
    # In chunks under the workspace: Philox's rounds hold about a dozen int64 words per index.
    rows = chunk_size(128, flat.numel())
    for start in range(0, flat.numel(), rows):
        chunk = flat[start : start + rows].to(torch.int64)
        word = philox4x32((chunk, chunk >> 32, torch.full_like(chunk, step), torch.zeros_like(chunk)),
                          (seed, seed >> 32))[0]
        uniform = ((word >> 8).to(torch.float64) + 0.5) * 2.0**-24
        out[start : start + rows] = -torch.log(-torch.log(uniform))
    return out.view(index.shape)


def _row_chunks(n, step, active):
    """Pool rows in chunks of at most ``step``: slices over the whole pool, or, when
    an ``active`` mask [n] holds under half of it, index tensors over its rows alone
    (each chunk then gathered: a bounded copy, and no other row is read)."""
    if active is not None:
        rows = active.nonzero().view(-1)
        if 2 * rows.numel() < n:
            for start in range(0, rows.numel(), step):
                yield rows[start : start + step]
            return
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


class DenseEmbeddings:
    """Embeddings as rows of ``x`` [N, D]. Distances are direct sums of squared
    differences, so near-duplicates do not cancel catastrophically."""

    def __init__(self, x):
        self.x = x
        self.dtype = compute_dtype(x.dtype)

    def __len__(self):
        return self.x.shape[0]

    @property
    def device(self):
        return self.x.device

    def squared_norms(self, active=None):
        """|x_i|² [N]; with an ``active`` mask, rows outside it are -inf and mostly not read."""
        out = torch.full((len(self),), -math.inf, dtype=self.dtype, device=self.device)
        itemsize = torch.finfo(self.dtype).bits // 8
        for rows in _row_chunks(len(self), cache_chunk_size(2 * itemsize * self.x.shape[1], len(self)), active):
            out[rows] = self.x[rows].to(self.dtype).square().sum(-1)
        return out if active is None else out.masked_fill_(~active, -math.inf)

    def squared_distances(self, centers, active=None):
        """min over ``centers`` (another DenseEmbeddings) of ||x_i - x_c||²; [N]. With
        an ``active`` mask [N], rows outside it are +inf, and mostly not read."""
        c = centers.x.to(self.dtype)
        out = torch.full((len(self),), math.inf, dtype=self.dtype, device=self.device)
        itemsize = torch.finfo(self.dtype).bits // 8
        step = cache_chunk_size(2 * itemsize * self.x.shape[1], len(self))
        for rows in _row_chunks(len(self), step, active):
            x = self.x[rows].to(self.dtype)
            d = out[rows]
            for j in range(c.shape[0]):
                torch.minimum(d, (x - c[j]).square_().sum(-1), out=d)
            out[rows] = d
        if active is not None:
            out.masked_fill_(~active, math.inf)
        return out

    def take(self, index):
        return DenseEmbeddings(self.x[index])

    def cat(self, other):
        return DenseEmbeddings(torch.cat([self.x, other.x]))


class FactoredEmbeddings:
    """BADGE embeddings ``features_i ⊗ residuals_i`` ([N, H], [N, C]), never materialised:

    ||h_i⊗r_i - h_c⊗r_c||² = |h_i|²|r_i|² + |h_c|²|r_c|² - 2 (h_i·h_c)(r_i·r_c), clamped at 0.
    """

    def __init__(self, features, residuals):
        self.features = features
        self.residuals = residuals
        self.dtype = compute_dtype(features.dtype)
        self._norm_products = None

    @property
    def norm_products(self):
        """|h_i|²·|r_i|² [N], computed on first use (the host and Triton steps compute
        their own, for the rows they read)."""
        if self._norm_products is None:
            self._norm_products = self.squared_norms()
        return self._norm_products

    def __len__(self):
        return self.features.shape[0]

    @property
    def device(self):
        return self.features.device

    def squared_norms(self, active=None):
        """|h_i|²·|r_i|² [N] by the same row-wise reduction as the cross terms, so an
        exact duplicate of a center gets distance exactly 0; with an ``active`` mask,
        rows outside it are -inf and mostly not read. In chunks: no pool-sized copy."""
        if self._norm_products is not None:
            return self._norm_products if active is None else self._norm_products.masked_fill(~active, -math.inf)
        out = torch.full((len(self),), -math.inf, dtype=self.dtype, device=self.device)
        for rows, h, r in self._chunks(active):
            out[rows] = (h * h).sum(-1) * (r * r).sum(-1)
        return out if active is None else out.masked_fill_(~active, -math.inf)

    def _chunks(self, active=None):
        """(pool rows: a slice or indices, features, residuals) of cache-sized row
        chunks in the compute dtype; with ``active``, mostly its rows alone."""
        itemsize = torch.finfo(self.dtype).bits // 8
        step = cache_chunk_size(2 * itemsize * (self.features.shape[1] + self.residuals.shape[1]), len(self))
        for rows in _row_chunks(len(self), step, active):
            yield rows, self.features[rows].to(self.dtype), self.residuals[rows].to(self.dtype)

    def squared_distances(self, centers, active=None):
        """As :meth:`DenseEmbeddings.squared_distances`, by the factored identity."""
        out = torch.full((len(self),), math.inf, dtype=self.dtype, device=self.device)
        for rows, h, r in self._chunks(active):
            d = out[rows]
            for j in range(len(centers)):
                hc = centers.features[j].to(self.dtype)
                rc = centers.residuals[j].to(self.dtype)
                cross = (h * hc).sum(-1) * (r * rc).sum(-1)
                torch.minimum(d, (self.norm_products[rows] + centers.norm_products[j] - 2 * cross).clamp_min(0),
                              out=d)
            out[rows] = d
        if active is not None:
            out.masked_fill_(~active, math.inf)
        return out

    def take(self, index):
        return FactoredEmbeddings(self.features[index], self.residuals[index])

    def cat(self, other):
        return FactoredEmbeddings(torch.cat([self.features, other.features]),
                                  torch.cat([self.residuals, other.residuals]))


def kmeanspp_step(embeddings, min_distances, selected, newest, seed, step, mode="sample", pool_indices=None):
    """One fused step: distance to the newest center, running-min update, next pick.

    ``min_distances`` [N] (+inf before any center) is updated in place with the
    distances to pool point ``newest`` (skipped when None) of the points not
    ``selected`` [N] (chosen and excluded points, whose rows are not read and whose
    distances are left as they were). ``mode="sample"`` draws with probability
    d/Σd by Gumbel-max over log d, uniformly among the unselected when every
    unselected d is 0. ``mode="argmax"`` takes the largest d, ties to the smallest
    index. In both modes, points still at +inf (no center yet) are drawn uniformly.
    ``pool_indices`` (int64 [N], ascending; None: the rows' own) key each row's draw
    by its index in the whole pool, so that a gathered subset draws as the pool does.
    Returns the picked row (a Python int).
    """
    if newest is not None:
        newest_distances = embeddings.squared_distances(embeddings.take(slice(newest, newest + 1)), ~selected)
        torch.minimum(min_distances, newest_distances, out=min_distances)
    n = min_distances.shape[0]
    d = torch.where(selected, torch.zeros_like(min_distances), min_distances).to(torch.float64)
    no_center = torch.isinf(d)
    if mode == "argmax" and not bool(no_center.any()):
        return int(torch.argmax(torch.where(selected, -math.inf, d)))
    noise = gumbel_noise(seed, step, torch.arange(n, device=min_distances.device) if pool_indices is None
                         else pool_indices)
    if bool(no_center.any()):
        key = torch.where(no_center, noise, -math.inf)
    elif bool((d > 0).any()):
        key = torch.where(d > 0, torch.log(d.clamp_min(torch.finfo(torch.float64).tiny)) + noise, -math.inf)
    else:
        key = torch.where(selected, -math.inf, noise)
    return int(torch.argmax(key))


def kmeanspp_steps(embeddings, min_distances, selected, newest, seed, first_step, n_steps, mode="sample",
                   pool_indices=None):
    """``n_steps`` consecutive :func:`kmeanspp_step` calls, steps ``first_step, first_step+1, …``.

    ``selected`` and ``min_distances`` are updated in place (the pending update by
    the last pick is left for the next call, as ``newest``). Returns
    (indices int64 [n_steps], scores [n_steps]) on the embeddings' device: each pick
    and its running distance at the time of the pick.
    """
    indices, scores = [], []
    for step in range(first_step, first_step + n_steps):
        index = kmeanspp_step(embeddings, min_distances, selected, newest, seed, step, mode, pool_indices)
        indices.append(index)
        scores.append(min_distances[index].clone())
        selected[index] = True
        newest = index
    device = min_distances.device
    return torch.tensor(indices, dtype=torch.int64, device=device), torch.stack(scores)


def min_squared_distances(embeddings, centers):
    """min over ``centers`` of the squared distance of every pool point; [N] (+inf for no centers)."""
    return embeddings.squared_distances(centers)
