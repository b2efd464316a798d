"""k-means++ / k-center orderings (k-means++, BADGE, CORESET) over sharded embeddings."""

import math

import torch
import torch.distributed as dist

from ..acquisition import kmeanspp as single
from ..acquisition.kmeanspp import FIRST_CHOICES, MODES, _parts, _shape_signature, _wrap, picks_wanted
from .. import native
from ..backends import choose_backend, implementation
from ..reference import gumbel_noise
from ..reference.workspace import chunk_size
from ..validation import check_embeddings
from .shards import Shard, ShardError, global_indices


def _embedding_check(embeddings, held, name, pool=None):
    """A :class:`Shard` check of this rank's embeddings; with the ``pool`` they join
    (an ordering, for ``extend``), None stands for no rows, and kind, widths, dtype
    and device must be the pool's."""

    def check():
        if embeddings is None and pool is not None:
            return 0, None, None
        tensors, held["numpy"] = check_embeddings(embeddings, name)
        if pool is not None:
            pool._check_kind(tensors, name)
            dtypes = [str(t.dtype) for t in _parts(pool._embeddings)]
            if [str(t.dtype) for t in tensors] != dtypes:
                raise TypeError(f"{name} must have the pool's dtype ({', '.join(dtypes)}), got "
                                f"{', '.join(str(t.dtype) for t in tensors)}")
        held["tensors"] = tensors
        widths = tuple((t.shape[1], str(t.dtype)) for t in tensors)
        return tensors[0].shape[0], widths, tensors[0].device

    return check


class KMeansPPOrdering(single.KMeansPPOrdering):
    """A lazy k-means++ (``mode="sample"``) or k-center greedy (``mode="argmax"``)
    ordering over sharded embeddings, as :class:`kbald_kernels.KMeansPPOrdering`
    (``next``, ``take``, ``extend``, ``state_dict``): every rank gets the same picks,
    in global pool indices, as the single-process ordering of the whole pool with
    the same seed.

    ``embeddings``: this rank's shard (dense [N_rank, D] or BADGE factors), shards
    in rank order. ``labeled``: global pool indices, or embeddings of points outside
    the pool (the same on every rank). ``candidates``: global pool indices or a mask
    over the whole pool (the same on every rank) that may be picked; points added
    by ``extend`` may be picked too. ``extend(points)``: every rank calls it with
    its new points (or None); the pool grows by every rank's points in rank order,
    after all earlier points, as one process's ``extend`` of their concatenation.
    ``state_dict()`` is this rank's state; each rank loads its own. ``len()`` is
    the whole pool's size.

    Communication per pick: one all-gather of 32 bytes a rank and one broadcast of
    the pick's row (8·D bytes; 8·(H + C) factored). ``labeled`` indices and
    ``extend`` broadcast the rows of the pool's centers once, from their owners.
    """

    def __init__(self, embeddings, *, generator=None, first="random", labeled=None, mode="sample", candidates=None,
                 group=None, backend=None):
        if first not in FIRST_CHOICES:
            raise ValueError(f"first must be one of {FIRST_CHOICES}, got {first!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        held = {}
        self._shard = Shard(_embedding_check(embeddings, held, "embeddings"), group, "embeddings")
        self._numpy = held["numpy"]
        self._embeddings = _wrap(held["tensors"])
        self._signature = _shape_signature(held["tensors"])
        self._first, self._mode = first, mode
        self._seed = self._shard.same_seed(generator)
        device = self._embeddings.device
        self._min_distances_to = implementation("min_squared_distances", backend, device, strict=False)
        # The host twin scans for each step's candidate where it would run the single-process step
        # (factors stored in two dtypes take the reference there, and its torch.log here).
        parts = _parts(self._embeddings)
        self._host_step = (device.type == "cpu" and self._embeddings.dtype == torch.float32
                           and len({t.dtype for t in parts}) == 1
                           and choose_backend("kmeanspp_steps", backend, device, strict=False) == "cuda")
        self._selected = torch.zeros(len(self._embeddings), dtype=torch.bool, device=device)
        self._min_distances = torch.full((len(self._embeddings),), math.inf, dtype=self._embeddings.dtype,
                                         device=device)
        self._picked = []  # global indices, in pick order
        self._labeled_indices = []
        self._external = None
        self._newest = None  # the newest pick: the others' distances to it are not applied yet
        self._step = 0
        if labeled is not None:
            self._add_labeled(labeled)
        eligible = self._shard.eligible(candidates)
        if eligible is not None:
            self._selected |= ~eligible
        self._count_remaining()

    def __len__(self):
        return self._shard.total

    def _count_remaining(self):
        """Pool points that may still be picked, over every rank (one all-reduce)."""
        count = (~self._selected).sum().to(torch.float64).view(1)
        dist.all_reduce(count, group=self._shard.group)
        self._remaining = int(count)

    def _take_labeled(self, idx):
        shard = self._shard
        indices = idx.tolist()
        for i in indices:
            if shard.owner(i) == shard.rank:
                self._selected[shard.local(i)] = True
        self._apply(self._pool_centers_distances(self._embeddings, indices))

    def _rows(self, local):
        """Local rows ``local`` (an index tensor) as float64 [len(local), Σ widths]:
        features then residuals, when factored."""
        return torch.cat([t.index_select(0, local).to(torch.float64) for t in _parts(self._embeddings)], dim=1)

    def _row(self, i):
        return self._rows(torch.tensor([i], device=self._shard.device))[0]

    def _as_centers(self, rows):
        """Float64 rows [M, Σ widths] as embeddings of the pool's kind and dtypes."""
        parts = torch.split(rows, list(self._signature), dim=1)
        return _wrap([part.to(t.dtype) for part, t in zip(parts, _parts(self._embeddings))])

    def _pool_centers_distances(self, points, indices):
        """min over pool points ``indices`` (global) of the squared distance of each of
        ``points`` (None: this rank has none, but takes part): each owner broadcasts its
        centers' rows, in workspace-sized chunks."""
        shard = self._shard
        out = None if points is None else torch.full((len(points),), math.inf, dtype=self._embeddings.dtype,
                                                     device=shard.device)
        width = sum(self._signature)
        step = chunk_size(8 * width, max(1, len(indices)))
        for owner in range(shard.world):
            owned = [i for i in indices if shard.owner(i) == owner]
            for start in range(0, len(owned), step):
                chunk = owned[start : start + step]
                if shard.rank == owner:
                    rows = self._rows(torch.tensor([shard.local(i) for i in chunk], device=shard.device))
                else:
                    rows = torch.empty((len(chunk), width), dtype=torch.float64, device=shard.device)
                dist.broadcast(rows, src=shard.global_rank(owner), group=shard.group)
                if out is not None:
                    torch.minimum(out, self._min_distances_to(points, self._as_centers(rows)).to(out.dtype), out=out)
        return out

    def _apply_center(self, center):
        """The running distances lowered by one more ``center``: every local row while
        at least half may still be picked, then only those (gathered in workspace-sized
        chunks, so a candidate subset or a late pick costs its own rows)."""
        if 2 * int((~self._selected).sum()) >= len(self._embeddings):
            self._apply(self._min_distances_to(self._embeddings, center))
            return
        active = (~self._selected).nonzero().view(-1)
        row_bytes = sum(t.element_size() * t.shape[1] for t in _parts(self._embeddings))
        step = chunk_size(2 * row_bytes, active.numel())
        for start in range(0, active.numel(), step):
            rows = active[start : start + step]
            distances = self._min_distances_to(self._embeddings.take(rows), center).to(self._min_distances.dtype)
            self._min_distances[rows] = torch.minimum(self._min_distances[rows], distances)

    def _advance(self, n):
        shard = self._shard
        picks, scores = [], []
        for _ in range(n):
            if self._newest is not None:
                row = shard.broadcast_row(self._newest, self._row, sum(self._signature))
                self._apply_center(self._as_centers(row.unsqueeze(0)))
            index, score = self._pick()
            if shard.owner(index) == shard.rank:
                self._selected[shard.local(index)] = True
            picks.append(index)
            scores.append(score)
            self._record(torch.tensor([index]))
        dtype, device = self._min_distances.dtype, shard.device
        return global_indices(picks, device), torch.tensor(scores, dtype=torch.float64, device=device).to(dtype)

    def _pick(self):
        """The step's pick over every rank, (global index, its running distance): each
        rank's best by the host twin's scan where the step runs on the host twin, else
        by :meth:`_keys`; one all-gather."""
        shard = self._shard
        no_centers = self._newest is None and not self._labeled_indices and self._external is None
        if no_centers and self._first == "max_norm":
            keys = [torch.where(self._selected, -math.inf, self._embeddings.squared_norms().to(torch.float64))]
            return shard.best(keys, payload=self._min_distances)
        if self._host_step:
            tier, key, local = native.kmeanspp_candidate(self._min_distances, self._selected, shard.global_rows(),
                                                         self._seed, self._step, self._mode)
            return shard.best_of([tier, key], local, payload=self._min_distances)
        return shard.best(self._keys(), payload=self._min_distances)

    def _keys(self):
        """(tier, key) of every local point, compared in that order across ranks: the
        kernel step's draw (Gumbel-max keyed by seed, step and global index) with its
        tiers (no center yet, d > 0, d = 0; chosen points last)."""
        selected = self._selected
        d = torch.where(selected, 0.0, self._min_distances).to(torch.float64)
        no_center = torch.isinf(d)
        tier = torch.where(selected, 0, torch.where(no_center, 3, torch.where(d > 0, 2, 1)))
        noise = gumbel_noise(self._seed, self._step, self._shard.global_rows())
        if self._mode == "argmax":
            key = torch.where(no_center, noise, d)
        else:
            key = torch.where(tier == 2, torch.log(torch.where(tier == 2, d, 1.0)) + noise, noise)
        return [tier.to(torch.float64), key]

    def extend(self, points):
        """Add this rank's ``points`` (same kind and widths; None: none) to the pool;
        every rank calls it. Their distances are to every center so far."""
        held = {}
        shard = self._shard
        shard.extend(_embedding_check(points, held, "points", pool=self))
        new = _wrap(held["tensors"]) if "tensors" in held else None
        distances = self._pool_centers_distances(new, self._picked + self._labeled_indices)
        self._remaining += sum(shard.blocks[-1])
        if new is None:
            return
        if self._external is not None:
            torch.minimum(distances, self._min_distances_to(new, self._external).to(distances.dtype), out=distances)
        # As in one process: the old points still await the newest center, which
        # leaves the new ones (already at their distance to it) as they are.
        self._embeddings = self._embeddings.cat(new)
        self._min_distances = torch.cat([self._min_distances, distances])
        self._selected = torch.cat([self._selected, torch.zeros(len(new), dtype=torch.bool, device=shard.device)])

    def state_dict(self):
        """This rank's state, on the CPU (the pool itself is not included)."""
        return {**super().state_dict(), "blocks": [list(b) for b in self._shard.blocks], "rank": self._shard.rank}

    def load_state_dict(self, state):
        """Resume from this rank's :meth:`state_dict` on an ordering over the same
        sharded pool (after the same extends); every rank calls it, and a state from
        another rank, another sharding or another point of the ordering raises on all."""
        shard = self._shard
        error, progress = None, None
        try:
            progress = (state["seed"], state["step"], state["newest"], len(state["picked"]))
            if state["blocks"] != shard.blocks or state["rank"] != shard.rank:
                error = ValueError(f"the state is for rank {state['rank']} of a pool sharded as {state['blocks']}, "
                                   f"this is rank {shard.rank} of {shard.blocks}")
        except KeyError as exc:
            error = ValueError(f"not the state of a sharded KMeansPPOrdering: no {exc}")
        shard.agree(error)
        reports = [None] * shard.world
        dist.all_gather_object(reports, progress, group=shard.group)
        if len(set(reports)) > 1:
            raise ShardError(f"the ranks' states were saved at different points of the ordering "
                             f"(seed, step, newest pick, picks): {reports}")
        super().load_state_dict(state)
        self._count_remaining()


def _ordered(embeddings, k, mode, *, generator, first, labeled, candidates, group, backend, name):
    ordering = KMeansPPOrdering(embeddings, generator=generator, first=first, labeled=labeled, mode=mode,
                                candidates=candidates, group=group, backend=backend)
    return ordering.take(picks_wanted(k, ordering.remaining, name))


def kmeanspp(embeddings, k, *, generator=None, first="random", labeled=None, candidates=None, group=None,
             backend=None):
    """k-means++ seeding over the sharded embeddings (dense [N, D] or BADGE factors),
    as :func:`kbald_kernels.kmeanspp`; ``k=None`` orders the whole pool; ``labeled``:
    global pool indices or outside embeddings. Communication per pick: one
    all-gather of 32 bytes a rank and one broadcast of the pick's embedding row
    (8·D bytes; 8·(H + C) factored)."""
    return _ordered(embeddings, k, "sample", generator=generator, first=first, labeled=labeled,
                    candidates=candidates, group=group, backend=backend, name="k")


def select_badge(embeddings, batch_size, *, generator=None, first="max_norm", labeled=None, candidates=None,
                 group=None, backend=None):
    """BADGE over the sharded embeddings, as :func:`kbald_kernels.select_badge`."""
    return _ordered(embeddings, batch_size, "sample", generator=generator, first=first, labeled=labeled,
                    candidates=candidates, group=group, backend=backend, name="batch_size")


def select_coreset(embeddings, batch_size, *, labeled=None, generator=None, first="random", candidates=None,
                   group=None, backend=None):
    """CORESET k-center greedy over the sharded embeddings, as :func:`kbald_kernels.select_coreset`."""
    return _ordered(embeddings, batch_size, "argmax", generator=generator, first=first, labeled=labeled,
                    candidates=candidates, group=group, backend=backend, name="batch_size")
