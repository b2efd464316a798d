"""kbald_kernels.distributed on gloo with 2 and 3 processes on this machine: every
rank's selection over uneven shards (one of a single point) equals the
single-process call on the whole pool with the same seed, and a bad shard raises
on every rank instead of leaving the others waiting."""

import datetime
import math
import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import kbald_kernels as kb
from kbald_kernels import distributed as kbd

SHARDS = {1: [23], 2: [1, 22], 3: [7, 1, 15]}
EXTENSIONS = {1: [7], 2: [0, 7], 3: [2, 0, 5]}  # the rows each rank adds to a k-means++ ordering
# Global pool indices, the same on every rank; with 3 ranks, rank 1 (index 7) holds none.
CANDIDATES = [22, 0, 2, 3, 5, 8, 9, 11, 14, 16, 17, 19, 20]  # not 13, the best point by every score


def _pool(dtype):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(23, 5, 4, generator=gen, dtype=torch.float64) * 2
    logits += torch.randn(23, 1, 4, generator=gen, dtype=torch.float64) * 2
    return torch.log_softmax(logits, -1).to(dtype)


def _embeddings():
    gen = torch.Generator().manual_seed(4)
    return torch.randn(23, 6, generator=gen, dtype=torch.float64), torch.randn(23, 3, generator=gen,
                                                                                dtype=torch.float64)


def _cases(dtype, backend, device):
    """(name, single-process call on the whole pool, distributed call on a shard)."""
    targets = _pool(dtype)[::4].flip(0).to(device)
    features, residuals = _embeddings()
    cases = [
        ("bald", lambda lp: kb.select_bald(lp, 6, backend=backend),
         lambda lp: kbd.select_bald(lp, 6, backend=backend)),
        ("power", lambda lp: kb.select_stochastic_bald(lp, 6, generator=5, backend=backend),
         lambda lp: kbd.select_stochastic_bald(lp, 6, generator=5, backend=backend)),
        ("softrank", lambda lp: kb.select_stochastic_bald(lp, 6, method="softrank", generator=5, backend=backend),
         lambda lp: kbd.select_stochastic_bald(lp, 6, method="softrank", generator=5, backend=backend)),
        ("epig", lambda lp: kb.select_epig(lp, targets, 5, backend=backend),
         lambda lp: kbd.select_epig(lp, targets, 5, backend=backend)),
        ("epig softmax", lambda lp: kb.select_epig(lp, targets, 5, method="softmax", generator=2, backend=backend),
         lambda lp: kbd.select_epig(lp, targets, 5, method="softmax", generator=2, backend=backend)),
        ("2-bald", lambda lp: kb.select_kbald(lp, 7, backend=backend),
         lambda lp: kbd.select_kbald(lp, 7, backend=backend)),
        ("3-bald", lambda lp: kb.select_kbald(lp, 7, order=3, backend=backend),
         lambda lp: kbd.select_kbald(lp, 7, order=3, backend=backend)),
        ("dynamic, stops early", lambda lp: kb.select_kbald_dynamic(lp, 12, backend=backend),
         lambda lp: kbd.select_kbald_dynamic(lp, 12, backend=backend)),
        ("dynamic order 3, whole batch", lambda lp: kb.select_kbald_dynamic(
            lp, 6, tolerance=10.0, order=3, backend=backend),
         lambda lp: kbd.select_kbald_dynamic(lp, 6, tolerance=10.0, order=3, backend=backend)),
        ("conservative", lambda lp: kb.select_conservative_bald(lp, threshold=0.05, backend=backend),
         lambda lp: kbd.select_conservative_bald(lp, threshold=0.05, backend=backend)),
        ("conservative budget", lambda lp: kb.select_conservative_bald(
            lp, 8, threshold=0.3, total_correlation_budget=1.2, backend=backend),
         lambda lp: kbd.select_conservative_bald(lp, 8, threshold=0.3, total_correlation_budget=1.2,
                                                 backend=backend)),
        ("batchbald exact", lambda lp: kb.select_batchbald(lp, 4, backend=backend),
         lambda lp: kbd.select_batchbald(lp, 4, generator=1, backend=backend)),
        ("batchbald sampled", lambda lp: kb.select_batchbald(lp, 6, num_samples=30, generator=8, backend=backend),
         lambda lp: kbd.select_batchbald(lp, 6, num_samples=30, generator=8, backend=backend)),
    ]
    mask = torch.zeros(23, dtype=torch.bool)
    mask[CANDIDATES] = True
    for score in ("entropy", "least_confidence", "margin", "bald"):
        cases.append((f"uncertainty {score}",
                      lambda lp, s=score: kb.select_uncertainty(lp, 6, score=s, backend=backend),
                      lambda lp, s=score: kbd.select_uncertainty(lp, 6, score=s, backend=backend)))
    for name, call, options in [
        ("margin", "select_uncertainty", dict(batch_size=5, score="margin")),
        ("bald", "select_bald", dict(batch_size=5)),
        ("softrank", "select_stochastic_bald", dict(batch_size=5, method="softrank", generator=4)),
        ("3-bald", "select_kbald", dict(batch_size=5, order=3)),
        ("dynamic", "select_kbald_dynamic", dict(max_batch_size=8, order=3)),
        ("conservative", "select_conservative_bald", dict(threshold=0.1)),
        ("batchbald", "select_batchbald", dict(batch_size=4, generator=1)),
    ]:
        for given in (CANDIDATES, mask):
            cases.append((f"{name} on candidates", lambda lp, c=call, o=options, g=given: getattr(kb, c)(
                lp, **o, candidates=g, backend=backend),
                lambda lp, c=call, o=options, g=given: getattr(kbd, c)(lp, **o, candidates=g, backend=backend)))
    cases.append(("epig power on candidates",
                  lambda lp: kb.select_epig(lp, targets, 4, method="power", generator=3, candidates=CANDIDATES,
                                            backend=backend),
                  lambda lp: kbd.select_epig(lp, targets, 4, method="power", generator=3, candidates=CANDIDATES,
                                             backend=backend)))
    embedding_cases = [
        ("coreset labeled, on candidates", lambda e: kb.select_coreset(e[0], 5, labeled=[0, 9], candidates=mask),
         lambda e: kbd.select_coreset(e[0], 5, labeled=[0, 9], candidates=mask)),
        ("badge, on candidates", lambda e: kb.select_badge(e, 6, generator=2, candidates=CANDIDATES),
         lambda e: kbd.select_badge(e, 6, generator=2, candidates=CANDIDATES)),
        ("kmeanspp, whole ordering of the candidates", lambda e: kb.kmeanspp(e[0], None, generator=5,
                                                                            candidates=CANDIDATES),
         lambda e: kbd.kmeanspp(e[0], None, generator=5, candidates=CANDIDATES)),
        ("badge factored", lambda e: kb.select_badge(e, 8, generator=3), lambda e: kbd.select_badge(e, 8, generator=3)),
        ("kmeanspp dense, whole ordering", lambda e: kb.kmeanspp(e[0], None, generator=6),
         lambda e: kbd.kmeanspp(e[0], None, generator=6)),
        ("coreset labeled", lambda e: kb.select_coreset(e[0], 5, labeled=[0, 9, 22]),
         lambda e: kbd.select_coreset(e[0], 5, labeled=[0, 9, 22])),
    ]
    return cases, embedding_cases, (features.to(device, dtype), residuals.to(device, dtype))


def _shard(x, rank, sizes):
    start = sum(sizes[:rank])
    return x[start : start + sizes[rank]]


def _tolerance(dtype):
    # float64: a GEMM over a one-row shard may round differently from one over the pool (last bit).
    return dict(rtol=1e-13, atol=1e-15) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)


def _check_equal(name, whole, sharded, dtype):
    assert type(sharded) is type(whole), name
    assert torch.equal(sharded.indices, whole.indices), (name, sharded.indices, whole.indices)
    for field in whole._fields[1:]:  # the scores, and a dynamic batch's traces
        torch.testing.assert_close(getattr(sharded, field), getattr(whole, field), **_tolerance(dtype),
                                   msg=f"{name} {field}")


def _worker(rank, world, port, device="cpu"):
    if device == "cuda":
        assert "triton" not in sys.modules
        os.environ.pop("TRITON_INTERPRET", None)  # the kernels compile for the GPU, as a user's would
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if device == "cuda" else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world, timeout=datetime.timedelta(seconds=120))
    try:
        sizes = SHARDS[world]
        for dtype, backend in ((torch.float64, "torch"), (torch.float32, None)):
            cases, embedding_cases, embeddings = _cases(dtype, backend, device)
            pool = _pool(dtype).to(device)
            for name, whole, sharded in cases:
                _check_equal(name, whole(pool), sharded(_shard(pool, rank, sizes)), dtype)
            # Candidate rows that no longer fit the workspace: every row read, the rest masked.
            os.environ["KBALD_WORKSPACE_BYTES"] = str(5 * pool[0].numel() * pool.element_size())
            for name, whole, sharded in cases:
                if "candidates" in name:
                    _check_equal(f"{name}, masked", whole(pool), sharded(_shard(pool, rank, sizes)), dtype)
            del os.environ["KBALD_WORKSPACE_BYTES"]
            local = tuple(_shard(e, rank, sizes) for e in embeddings)
            for name, whole, sharded in embedding_cases:
                _check_equal(name, whole(embeddings), sharded(local), dtype)
            _orderings_equal_one_process(rank, world, dtype, backend, device)
            _candidate_subsets_equal_one_process(rank, world, pool, backend)
        features, residuals = (e.to(device) for e in _embeddings())
        mixed = (features.bfloat16(), residuals.float())  # each part keeps its own dtype
        _check_equal("coreset, bfloat16 features and float32 residuals", kb.select_coreset(mixed, 12, generator=1),
                     kbd.select_coreset(tuple(_shard(e, rank, sizes) for e in mixed), 12, generator=1), torch.float32)
        _random_pools_agree(rank, world, device)
        if world > 1:
            _errors_reach_every_rank(rank, sizes)
    finally:
        dist.destroy_process_group()


def _candidate_subsets_equal_one_process(rank, world, pool, backend):
    sizes = SHARDS[world]
    local = _shard(pool, rank, sizes)
    for score in ("random", "least_confidence", "margin", "entropy", "bald"):
        whole = kb.candidate_subset(pool, 9, score=score, generator=4, backend=backend)
        assert torch.equal(kbd.candidate_subset(local, 9, score=score, generator=4, backend=backend), whole), score
    counted = kbd.candidate_subset(sizes[rank], 9, generator=4)
    assert torch.equal(counted, kb.candidate_subset(23, 9, generator=4)), counted


def _random_pools_agree(rank, world, device):
    """Fresh pools, shapes, shard sizes and candidates (the same draw on every rank)."""
    for trial in range(3):
        gen = torch.Generator().manual_seed(100 * world + trial)
        n = int(torch.randint(world + 8, 40, (1,), generator=gen))
        k, c = (int(torch.randint(2, 9, (1,), generator=gen)) for _ in range(2))
        cuts = torch.randperm(n - 1, generator=gen)[: world - 1].add(1).sort().values.tolist()
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, n])]
        logits = torch.randn(n, k, c, generator=gen) * 3 + torch.randn(n, 1, c, generator=gen) * 2
        pool = torch.log_softmax(logits, -1).to(device)
        embeddings = torch.randn(n, 5, generator=gen).to(device)
        candidates = torch.randperm(n, generator=gen)[: n // 2 + 1].tolist() if trial else None
        mine, local = _shard(pool, rank, sizes), _shard(embeddings, rank, sizes)
        for name, whole, sharded in [
            ("2-bald", kb.select_kbald(pool, 5, candidates=candidates),
             kbd.select_kbald(mine, 5, candidates=candidates)),
            ("3-bald", kb.select_kbald(pool, 5, order=3, candidates=candidates),
             kbd.select_kbald(mine, 5, order=3, candidates=candidates)),
            ("softmax", kb.select_stochastic_bald(pool, 5, method="softmax", generator=trial, candidates=candidates),
             kbd.select_stochastic_bald(mine, 5, method="softmax", generator=trial, candidates=candidates)),
            ("batchbald sampled", kb.select_batchbald(pool, 4, num_samples=20, generator=trial, candidates=candidates),
             kbd.select_batchbald(mine, 4, num_samples=20, generator=trial, candidates=candidates)),
            ("kmeanspp", kb.kmeanspp(embeddings, 6, generator=trial, candidates=candidates),
             kbd.kmeanspp(local, 6, generator=trial, candidates=candidates)),
        ]:
            _check_equal(f"{name}, pool {n}x{k}x{c} sharded {sizes}", whole, sharded, torch.float32)


def _orderings_equal_one_process(rank, world, dtype, backend, device):
    """A lazy ordering used as a researcher would: take, next, extend (a rank adding
    nothing), save and resume on a fresh ordering; each result equal to one process's."""
    sizes, added = SHARDS[world], EXTENSIONS[world]
    features, residuals = (e.to(device, dtype) for e in _embeddings())
    gen = torch.Generator().manual_seed(9)
    new = (torch.randn(7, 6, generator=gen, dtype=torch.float64).to(device, dtype),
           torch.randn(7, 3, generator=gen, dtype=torch.float64).to(device, dtype))
    outside = torch.randn(2, 6, generator=gen, dtype=torch.float64).to(device, dtype)
    settings = [
        ("dense, labeled outside the pool", lambda e: e[0], dict(generator=7, labeled=outside)),
        ("factored, max_norm", lambda e: e, dict(generator=3, first="max_norm")),
        ("k-center, labeled indices", lambda e: e[0], dict(generator=1, mode="argmax", labeled=[3, 8, 22])),
    ]
    for name, kind, options in settings:
        whole = kb.KMeansPPOrdering(kind((features, residuals)), backend=backend, **options)
        local = tuple(_shard(e, rank, sizes) for e in (features, residuals))
        sharded = kbd.KMeansPPOrdering(kind(local), backend=backend, **options)
        _check_equal(f"{name} take", whole.take(3), sharded.take(3), dtype)
        index, score = next(sharded)
        expected = next(whole)
        assert index == expected[0] and sharded.remaining == whole.remaining, (name, index, expected)
        torch.testing.assert_close(score, expected[1], **_tolerance(dtype))
        whole.extend(kind(new))
        mine = tuple(_shard(e, rank, added) for e in new)
        sharded.extend(kind(mine) if added[rank] else None)
        assert len(sharded) == len(whole) == 30
        _check_equal(f"{name} after extend", whole.take(4), sharded.take(4), dtype)
        resumed = kbd.KMeansPPOrdering(kind(local), backend=backend, **options)
        resumed.extend(kind(mine) if added[rank] else None)
        resumed.load_state_dict(sharded.state_dict())
        _check_equal(f"{name} resumed", whole.take(whole.remaining), resumed.take(resumed.remaining), dtype)


def _errors_reach_every_rank(rank, sizes):
    pool = _shard(_pool(torch.float32), rank, sizes)
    if rank == 1:
        pool = pool.clone()
        pool[0, 2, 1] = math.nan
    named = rf"NaN at index \({sizes[0]}, 2, 1\)"  # rank 1's first row, in global numbering
    with pytest.raises(ValueError, match=named if rank == 1 else "rank 1 reported invalid"):
        kbd.select_kbald(pool, 3)
    wrong = _pool(torch.float32)[:, :, :3] if rank == 0 else _shard(_pool(torch.float32), rank, sizes)
    with pytest.raises(ValueError, match="same trailing shape on every rank"):
        kbd.select_bald(wrong, 2)
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        kbd.select_kbald(_shard(_pool(torch.float32), rank, sizes), 2, order=4)
    features = _shard(_embeddings()[0], rank, sizes)
    with pytest.raises(ValueError, match="same trailing shape on every rank"):
        kbd.select_badge(features[:, :5] if rank == 1 else features, 2)
    with pytest.raises(ValueError, match="candidates"):
        kbd.select_kbald(_shard(_pool(torch.float32), rank, sizes), 2, candidates=[3, 23])
    with pytest.raises(ValueError, match="generator as a seed must be >= 0" if rank == 1 else "rank 1 reported"):
        kbd.select_stochastic_bald(_shard(_pool(torch.float32), rank, sizes), 2, generator=-1 if rank == 1 else 0)
    with pytest.raises(ValueError, match="generator as a seed must be >= 0|rank 0 reported"):
        kbd.select_badge(features, 2, generator=-1)
    with pytest.raises(ValueError, match="rank 1: TypeError: embeddings must be a torch.Tensor"):
        kbd.KMeansPPOrdering(None if rank == 1 else features)
    ordering = kbd.KMeansPPOrdering(features, generator=0)
    with pytest.raises(ValueError, match=r"points must have the pool's dtype \(torch.float64\)"):
        ordering.extend(features.float())
    saved = ordering.state_dict()
    ordering.take(2)
    states = [None] * len(sizes)
    dist.all_gather_object(states, ordering.state_dict())
    with pytest.raises(ValueError, match="the state is for rank"):
        ordering.load_state_dict(states[(rank + 1) % len(sizes)])
    with pytest.raises(ValueError, match="saved at different points of the ordering"):
        ordering.load_state_dict(saved if rank == 0 else states[rank])
    wider = torch.randn(2, 7 if rank == 0 else 6, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"rank 0: ValueError: points must be embeddings of the same kind and "
                                         r"widths as the pool \(\(6,\)\), got \(7,\)"):
        ordering.extend(wider)
    other = kbd.KMeansPPOrdering(features, generator=0)
    other.extend(torch.zeros(1, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"the state is for rank \d of a pool sharded as"):
        other.load_state_dict(ordering.state_dict())
    with pytest.raises(ValueError, match=r"between 1 and the number of selectable pool points \(23\)"):
        kbd.select_bald(_shard(_pool(torch.float32), rank, sizes), 24)
    empty = _pool(torch.float32)[:0] if rank == 2 or len(sizes) == 2 and rank == 1 else _pool(torch.float32)[:2]
    with pytest.raises(ValueError, match="N \\(pool points\\) = 0"):
        kbd.select_bald(empty, 1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_sharded_acquisitions_equal_the_single_process_call(world):
    mp.spawn(_worker, args=(world, _free_port()), nprocs=world, join=True)


@pytest.mark.gpu_smoke
@pytest.mark.skipif(not torch.cuda.is_available(), reason="NCCL needs a CUDA device")
def test_sharded_acquisitions_on_cuda_tensors_over_nccl():
    """One process a GPU (one GPU: a world of one): the collectives on CUDA tensors."""
    world = min(torch.cuda.device_count(), 3)
    mp.spawn(_worker, args=(world, _free_port(), "cuda"), nprocs=world, join=True)


def test_without_a_process_group_the_error_says_so():
    with pytest.raises(RuntimeError, match="torch.distributed initialised"):
        kbd.select_bald(_pool(torch.float32), 2)
