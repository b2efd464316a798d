"""A pool sharded over the ranks of a ``torch.distributed`` group: the global
numbering of each rank's rows, errors raised on every rank alike, and the two
messages a greedy pick needs (the global arg-max, the newest pick's row).

Every collective runs on the data's device: CPU tensors need a gloo group, CUDA
tensors an NCCL one.
"""

import math

import torch
import torch.distributed as dist


class ShardError(ValueError):
    """Raised on every rank when one rank's input or call is wrong."""


class Shard:
    """This rank's contiguous slice ``[offset, offset + size)`` of a pool of ``total``
    points, the slices in rank order.

    ``check`` runs this rank's own input checks; ``signature`` (e.g. (K, C) or the
    embedding widths) must agree across ranks. Either failing raises on every rank,
    so no rank is left waiting in a collective.
    """

    def __init__(self, check, group, name="log_probs"):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("kbald_kernels.distributed needs torch.distributed initialised "
                               "(torch.distributed.init_process_group, or torchrun)")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        error, size, signature, device = None, 0, None, None
        try:
            size, signature, device = check()
        except (ValueError, TypeError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        reports = [None] * self.world
        dist.all_gather_object(reports, (error, size, signature), group=group)
        for rank, (other_error, _, _) in enumerate(reports):
            if other_error is not None:
                raise ShardError(f"rank {rank}: {other_error}")
        signatures = {r[2] for r in reports}
        if len(signatures) > 1:
            described = ", ".join(f"rank {rank}: {r[2]}" for rank, r in enumerate(reports))
            raise ShardError(f"{name} must have the same trailing shape on every rank, got {described}")
        sizes = [r[1] for r in reports]
        self.sizes = sizes
        self.offset = sum(sizes[: self.rank])
        self.size = sizes[self.rank]
        self.total = sum(sizes)
        self.device = device

    def global_rows(self):
        """The global pool index of each local row: int64 [size]."""
        return torch.arange(self.offset, self.offset + self.size, device=self.device)

    def owner(self, index):
        """The rank holding global pool index ``index``."""
        start = 0
        for rank, size in enumerate(self.sizes):
            if index < start + size:
                return rank
            start += size
        raise IndexError(index)

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
        if self.size:
            candidates = torch.ones(self.size, dtype=torch.bool, device=self.device)
            for key in keys:
                candidates &= key == torch.where(candidates, key, -math.inf).max()
            local = int(torch.argmax(candidates.to(torch.uint8)))
            index = torch.tensor(float(self.offset + local), dtype=torch.float64, device=self.device)
            entry = torch.stack([*(k[local] for k in keys), index, payload[local]])
        else:
            entry = torch.tensor([-math.inf] * len(keys) + [math.inf, math.nan], dtype=torch.float64,
                                 device=self.device)
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
            row = row_of_local(index - self.offset).to(torch.float64).contiguous()
        else:
            row = torch.empty(like, dtype=torch.float64, device=self.device)
        dist.broadcast(row, src=dist.get_global_rank(self.group, owner) if self.group is not None else owner,
                       group=self.group)
        return row

    def top(self, keys, size, payload):
        """The ``size`` largest ``keys`` over every rank (ties: the smaller global index),
        as (global indices int64, payload values float64) tensors on this device, best
        first. One all-gather of 24·size bytes a rank."""
        keys = torch.where(torch.isnan(keys.to(torch.float64)), -math.inf, keys.to(torch.float64))
        count = min(size, keys.numel())
        order = _sorted_by_key_then_index(keys, torch.arange(keys.numel(), device=keys.device))[:count]
        block = torch.full((size, 3), math.nan, dtype=torch.float64, device=self.device)
        block[:count, 0] = keys[order]
        block[:count, 1] = (order + self.offset).to(torch.float64)
        block[:count, 2] = payload.to(torch.float64)[order]
        gathered = [torch.empty_like(block) for _ in range(self.world)]
        dist.all_gather(gathered, block, group=self.group)
        merged = torch.cat(gathered)
        merged = merged[~torch.isnan(merged[:, 1])]
        best = _sorted_by_key_then_index(merged[:, 0], merged[:, 1])[:size]
        return merged[best, 1].to(torch.int64), merged[best, 2]


def _sorted_by_key_then_index(keys, index):
    """Positions sorted by key, largest first, and the smaller index among equal keys."""
    by_index = torch.argsort(index, stable=True)
    return by_index[torch.argsort(keys[by_index], descending=True, stable=True)]
