"""A pool sharded over the ranks of a ``torch.distributed`` group: the global
numbering of each rank's rows, errors raised on every rank alike, and the two
messages a greedy pick needs (the global arg-max, the newest pick's row).

Every collective runs on the data's device: CPU tensors need a gloo group, CUDA
tensors an NCCL one.
"""

import bisect
import math

import torch
import torch.distributed as dist

from ..backends import implementation
from ..candidates import check_candidates
from ..reference.workspace import workspace_bytes
from ..validation import check_log_probs_form, scan_log_probs, seed_from


class ShardError(ValueError):
    """Raised on every rank when one rank's input or call is wrong."""


class Shard:
    """This rank's rows of a pool of ``total`` points.

    The pool is a sequence of blocks (the first one, then one per ``extend``); each
    block is cut into contiguous slices in rank order, and this rank holds its
    slice of every block, in block order, as one local tensor.

    ``check`` runs this rank's own input checks and returns (rows, signature,
    device); ``signature`` (e.g. (K, C) or the embedding widths) must agree across
    ranks. Either failing raises on every rank, so no rank is left waiting in a
    collective.
    """

    def __init__(self, check, group, name="log_probs"):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("kbald_kernels.distributed needs torch.distributed initialised "
                               "(torch.distributed.init_process_group, or torchrun)")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        self.name = name
        self.blocks = []  # per block: the size of every rank's slice
        self._kept = None  # after restrict(): the sorted global rows the shard stands for
        self.signature = None
        self.total = 0
        self.size = 0
        self.device = None
        self._add_block(check)

    def extend(self, check):
        """Add a block: every rank's new rows (a rank may add none), after every row so far."""
        self._add_block(check)

    def _add_block(self, check):
        error, size, signature, device = None, 0, None, None
        try:
            size, signature, device = check()
        except (ValueError, TypeError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        reports = [None] * self.world
        dist.all_gather_object(reports, (error, size, signature), group=self.group)
        for rank, (other_error, _, _) in enumerate(reports):
            if other_error is not None:
                raise ShardError(f"rank {rank}: {other_error}")
        signatures = {r[2] for r in reports if r[2] is not None} | ({self.signature} if self.blocks else set())
        if len(signatures) > 1:
            described = ", ".join(f"rank {rank}: {r[2]}" for rank, r in enumerate(reports))
            before = f" (the pool so far: {self.signature})" if self.blocks else ""
            raise ShardError(f"{self.name} must have the same trailing shape on every rank, got {described}{before}")
        sizes = [r[1] for r in reports]
        self.blocks.append(sizes)
        self.signature = signatures.pop()
        self.total += sum(sizes)
        self.size += sizes[self.rank]
        self.device = self.device if device is None else device
        self._slices = []  # (global start, rank, local start, rows) of every slice, in global order
        local = [0] * self.world
        start = 0
        for block in self.blocks:
            for rank, n in enumerate(block):
                if n:
                    self._slices.append((start, rank, local[rank], n))
                start += n
                local[rank] += n
        self._rows = self.rows_of(self.rank)

    def rows_of(self, rank):
        """The global pool index of each local row of ``rank``: int64, in local order."""
        if self._kept is not None:
            return self.held_by(rank, self._kept)
        return torch.cat([torch.arange(start, start + n, device=self.device)
                          for start, owner, _, n in self._slices if owner == rank]
                         + [torch.zeros(0, dtype=torch.int64, device=self.device)])

    def held_by(self, rank, rows):
        """Those of the sorted global ``rows`` that ``rank`` holds, in its local order."""
        bounds = torch.tensor([[start, start + n] for start, owner, _, n in self._slices if owner == rank],
                              dtype=torch.int64, device=rows.device).view(-1, 2)
        ends = torch.searchsorted(rows, bounds).tolist()
        return torch.cat([rows[lo:hi] for lo, hi in ends] + [rows[:0]])

    def global_rows(self):
        """The global pool index of each local row: int64 [size]."""
        return self._rows

    def _slice(self, index):
        if not 0 <= index < self.total:
            raise IndexError(index)
        return self._slices[bisect.bisect_right(self._slices, (index, math.inf)) - 1]

    def owner(self, index):
        """The rank holding global pool index ``index``."""
        return self._slice(index)[1]

    def local(self, index):
        """This rank's local row of global pool index ``index`` (which it holds)."""
        start, rank, local_start, _ = self._slice(index)
        assert rank == self.rank, (index, rank, self.rank)
        if self._kept is not None:
            return int(torch.searchsorted(self._rows, index))
        return local_start + index - start

    def agree(self, error):
        """Raise on every rank when any rank has an ``error`` (an exception or None):
        that rank raises its own, the others a ShardError naming it."""
        flags = torch.tensor([0.0 if error is None else 1.0], dtype=torch.float64, device=self.device)
        gathered = [torch.empty_like(flags) for _ in range(self.world)]
        dist.all_gather(gathered, flags, group=self.group)
        bad = [rank for rank, f in enumerate(gathered) if float(f) > 0]
        if error is not None:
            raise error
        if bad:
            raise ShardError(f"rank {bad[0]} reported invalid input (its error names the element)")

    def best(self, keys, payload=None):
        """The global index of the point with the largest ``keys`` (a list of [size]
        tensors compared in order; NaN counts as -inf) over every rank, ties to the
        smaller global index, as a Python int, with its ``payload`` value (a [size]
        tensor; default: the last key) as a float. One all-gather of 8·(len(keys) + 2)
        bytes a rank."""
        keys = [torch.nan_to_num(k.to(torch.float64), nan=-math.inf) for k in keys]
        payload = keys[-1] if payload is None else payload.to(torch.float64)
        if not self.size:
            return self.best_of([-math.inf] * len(keys), -1, None)
        # Local rows are in global order, so the first local maximum has the smallest global index.
        candidates = torch.ones(self.size, dtype=torch.bool, device=self.device)
        for key in keys:
            candidates &= key == torch.where(candidates, key, -math.inf).max()
        local = int(torch.argmax(candidates.to(torch.uint8)))
        index = self._rows[local].to(torch.float64)
        return self._gathered_best(torch.stack([*(k[local] for k in keys), index, payload[local]]))

    def best_of(self, keys, local, payload):
        """:meth:`best` from this rank's own choice, made elsewhere (a host step): local
        row ``local`` (-1: none here) with ``keys`` (floats) and its ``payload`` value
        (a [size] tensor). The same all-gather."""
        if local < 0:
            entry = [-math.inf] * len(keys) + [math.inf, math.nan]
        else:
            entry = [*keys, float(self._rows[local]), float(payload[local])]
        return self._gathered_best(torch.tensor(entry, dtype=torch.float64, device=self.device))

    def _gathered_best(self, entry):
        gathered = [torch.empty_like(entry) for _ in range(self.world)]
        dist.all_gather(gathered, entry, group=self.group)
        rows = [g.tolist() for g in gathered]
        winner = max(rows, key=lambda r: (*r[:-2], -r[-2]))
        return int(winner[-2]), winner[-1]

    def broadcast_row(self, index, row_of_local, like):
        """Every rank gets the row of global ``index`` from its owner: ``row_of_local(i)``
        gives a float64 vector for local row i there; ``like`` its length. One
        broadcast of 8·length bytes."""
        owner = self.owner(index)
        if self.rank == owner:
            row = row_of_local(self.local(index)).to(torch.float64).contiguous()
        else:
            row = torch.empty(like, dtype=torch.float64, device=self.device)
        dist.broadcast(row, src=self.global_rank(owner), group=self.group)
        return row

    def global_rank(self, rank):
        """The world rank of this group's ``rank`` (what a collective's ``src`` takes)."""
        return dist.get_global_rank(self.group, rank) if self.group is not None else rank

    def top(self, keys, size, payload, eligible=None):
        """The ``size`` largest ``keys`` over every rank (ties: the smaller global index)
        among the ``eligible`` rows (a mask; None: all), as (global indices int64,
        payload values float64) tensors on this device, best first. One all-gather of
        24·size bytes a rank."""
        keys = torch.where(torch.isnan(keys.to(torch.float64)), -math.inf, keys.to(torch.float64))
        rows = torch.arange(self.size, device=self.device) if eligible is None else eligible.nonzero().view(-1)
        count = min(size, rows.numel())
        order = rows[_sorted_by_key_then_index(keys[rows], self._rows[rows])[:count]]
        block = torch.full((size, 3), math.nan, dtype=torch.float64, device=self.device)
        block[:count, 0] = keys[order]
        block[:count, 1] = self._rows[order].to(torch.float64)
        block[:count, 2] = payload.to(torch.float64)[order]
        gathered = [torch.empty_like(block) for _ in range(self.world)]
        dist.all_gather(gathered, block, group=self.group)
        merged = torch.cat(gathered)
        merged = merged[~torch.isnan(merged[:, 1])]
        best = _sorted_by_key_then_index(merged[:, 0], merged[:, 1])[:size]
        return merged[best, 1].to(torch.int64), merged[best, 2]

    def same_seed(self, generator):
        """One seed for every rank: rank 0's, so generator=None still draws alike (a
        bad ``generator`` raises on every rank)."""
        seed, error = [None], None
        try:
            if self.rank == 0:
                seed[0] = seed_from(generator)
            elif not (generator is None or isinstance(generator, torch.Generator)):
                seed_from(generator)  # checks an int seed without drawing from this rank's streams
        except (ValueError, TypeError) as exc:
            error = exc
        self.agree(error)
        dist.broadcast_object_list(seed, src=self.global_rank(0), group=self.group)
        return seed[0]

    def take_best(self, values, excluded):
        """The global pick of the largest ``values`` outside ``excluded`` (global index,
        value), marked excluded on its owner."""
        index, value = self.best([torch.where(excluded, -math.inf, values)])
        if self.owner(index) == self.rank:
            excluded[self.local(index)] = True
        return index, value

    def global_ranks(self, scores, eligible=None):
        """Each local score's rank (1 = highest, ties to the smaller index) among the
        ``eligible`` points (a mask; None: all) of the whole pool; NaN outside them.
        One all-gather of 8·(largest shard) bytes a rank."""
        rows = [self.rows_of(rank) for rank in range(self.world)]
        padded = torch.full((max(r.numel() for r in rows),), math.nan, dtype=torch.float64, device=self.device)
        padded[: self.size] = scores.to(torch.float64)
        if eligible is not None:
            padded[: self.size].masked_fill_(~eligible, math.nan)
        gathered = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(gathered, padded, group=self.group)
        every = torch.full((self.total,), math.nan, dtype=torch.float64, device=self.device)
        for rank_rows, g in zip(rows, gathered):
            every[rank_rows] = g[: rank_rows.numel()]
        ranked = (~torch.isnan(every)).nonzero().view(-1)
        ranks = torch.full_like(every, math.nan)
        ranks[ranked[torch.sort(every[ranked], descending=True, stable=True).indices]] = torch.arange(
            1, ranked.numel() + 1, dtype=every.dtype, device=every.device)
        return ranks[self._rows]

    def eligible(self, candidates):
        """``candidates`` (global pool indices or a mask over the whole pool, the same on
        every rank; None: every point) as a mask over the local rows (None for all)."""
        if candidates is None:
            return None
        return torch.isin(self._rows, check_candidates(candidates, self.total, self.device))

    def restrict(self, rows):
        """Stand for the points ``rows`` alone (sorted global pool indices, the same on
        every rank): local rows are then this rank's among them, in the same order.
        Returns their positions among this rank's rows before."""
        kept = self.held_by(self.rank, rows)
        positions = torch.searchsorted(self._rows, kept)
        self._kept, self._rows, self.size = rows, kept, kept.numel()
        return positions

    def unpicked(self, eligible):
        """A fresh mask over the local rows that no pick may take yet: those outside ``eligible``."""
        return torch.zeros(self.size, dtype=torch.bool, device=self.device) if eligible is None else ~eligible


def log_probs_shard(log_probs, group, candidates=None):
    """(Shard, this rank's log-probabilities as a tensor, whether they came as numpy,
    a mask of the local rows that may be picked or None, how many points may be).

    ``candidates`` (global pool indices or a mask over the whole pool, the same on
    every rank): when every rank's candidate rows fit the workspace, each rank
    gathers its own once and the shard stands for the candidates alone (no other row
    is read); otherwise the rows stay whole and the mask marks the candidates. Both
    give the same picks."""
    held = {}

    def check():
        held["t"], held["numpy"] = check_log_probs_form(log_probs)
        return held["t"].shape[0], (*held["t"].shape[1:], str(held["t"].dtype)), held["t"].device

    shard = Shard(check, group)
    t = held["t"]
    if candidates is None:
        return shard, t, held["numpy"], None, shard.total
    rows = check_candidates(candidates, shard.total, shard.device)
    largest = max(shard.held_by(rank, rows).numel() for rank in range(shard.world))
    if largest * t.shape[1] * t.shape[2] * t.element_size() <= workspace_bytes():
        return shard, t.index_select(0, shard.restrict(rows)), held["numpy"], None, rows.numel()
    return shard, t, held["numpy"], torch.isin(shard.global_rows(), rows), rows.numel()


def validated_entropies(shard, t, backend, op="entropies"):
    """(entropy, conditional entropy) of the local rows, validated on every rank at once
    (``op="uncertainties"``: and least confidence, margin)."""
    *terms, invalid = implementation(op, backend, t.device, strict=False)(t)
    error = None
    if bool(invalid):  # the pass's flag: the scan decides, and names the element
        try:
            scan_log_probs(t, "log_probs", shard.global_rows())
        except ValueError as exc:
            error = exc
    shard.agree(error)
    return terms


def row_message(t, extra):
    """The message that carries a pick: its log-probabilities and per-point values, float64."""
    return lambda i: torch.cat([t[i].reshape(-1).to(torch.float64), *(e[i : i + 1].to(torch.float64) for e in extra)])


def global_indices(indices, device):
    return torch.tensor(indices, dtype=torch.int64, device=device)


def _sorted_by_key_then_index(keys, index):
    """Positions sorted by key, largest first, and the smaller index among equal keys."""
    by_index = torch.argsort(index, stable=True)
    return by_index[torch.argsort(keys[by_index], descending=True, stable=True)]
