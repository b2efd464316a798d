"""kbald_kernels.distributed on gloo with 2 and 3 processes on this machine: every
rank's selection over uneven shards (one of a single point) equals the
single-process call on the whole pool with the same seed, and a bad shard raises
on every rank instead of leaving the others waiting."""

import datetime
import math
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import kbald_kernels as kb
from kbald_kernels import distributed as kbd

SHARDS = {2: [1, 22], 3: [7, 1, 15]}


def _pool(dtype):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(23, 5, 4, generator=gen, dtype=torch.float64) * 2
    logits += torch.randn(23, 1, 4, generator=gen, dtype=torch.float64) * 2
    return torch.log_softmax(logits, -1).to(dtype)


def _embeddings():
    gen = torch.Generator().manual_seed(4)
    return torch.randn(23, 6, generator=gen, dtype=torch.float64), torch.randn(23, 3, generator=gen,
                                                                                dtype=torch.float64)


def _cases(dtype, backend):
    """(name, single-process call on the whole pool, distributed call on a shard)."""
    targets = _pool(dtype)[::4].flip(0)
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
    embedding_cases = [
        ("badge factored", lambda e: kb.select_badge(e, 8, generator=3), lambda e: kbd.select_badge(e, 8, generator=3)),
        ("kmeanspp dense, whole ordering", lambda e: kb.kmeanspp(e[0], None, generator=6),
         lambda e: kbd.kmeanspp(e[0], None, generator=6)),
        ("coreset labeled", lambda e: kb.select_coreset(e[0], 5, labeled=[0, 9, 22]),
         lambda e: kbd.select_coreset(e[0], 5, labeled=[0, 9, 22])),
    ]
    return cases, embedding_cases, (features.to(dtype), residuals.to(dtype))


def _shard(x, rank, sizes):
    start = sum(sizes[:rank])
    return x[start : start + sizes[rank]]


def _check_equal(name, whole, sharded, exact):
    assert torch.equal(sharded.indices, whole.indices), (name, sharded.indices, whole.indices)
    tolerance = dict(rtol=0, atol=0) if exact else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sharded.scores, whole.scores, **tolerance, msg=name)


def _worker(rank, world, port):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    try:
        sizes = SHARDS[world]
        for dtype, backend in ((torch.float64, "torch"), (torch.float32, None)):
            cases, embedding_cases, embeddings = _cases(dtype, backend)
            pool = _pool(dtype)
            for name, whole, sharded in cases:
                _check_equal(name, whole(pool), sharded(_shard(pool, rank, sizes)), exact=dtype == torch.float64)
            local = tuple(_shard(e, rank, sizes) for e in embeddings)
            for name, whole, sharded in embedding_cases:
                _check_equal(name, whole(embeddings), sharded(local), exact=dtype == torch.float64)
        _errors_reach_every_rank(rank, sizes)
    finally:
        dist.destroy_process_group()


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
    with pytest.raises(ValueError, match=r"between 1 and the number of selectable pool points \(23\)"):
        kbd.select_bald(_shard(_pool(torch.float32), rank, sizes), 24)
    empty = _pool(torch.float32)[:0] if rank == 2 or len(sizes) == 2 and rank == 1 else _pool(torch.float32)[:2]
    with pytest.raises(ValueError, match="N \\(pool points\\) = 0"):
        kbd.select_bald(empty, 1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_acquisitions_equal_the_single_process_call(world):
    mp.spawn(_worker, args=(world, _free_port()), nprocs=world, join=True)


def test_without_a_process_group_the_error_says_so():
    with pytest.raises(RuntimeError, match="torch.distributed initialised"):
        kbd.select_bald(_pool(torch.float32), 2)
