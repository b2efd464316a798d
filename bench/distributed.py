"""Sharded acquisition (kbald_kernels.distributed) on gloo: the same problem on 1
process and on 2, with the time in collectives, the bytes each rank sends and the
collectives (round trips) it takes per pick.

    python -m bench.distributed [--quick]

Two reports. Shared cores (N=20 000): 1 process runs on every core, 2 processes on
half each, so the ratio shows what sharding costs on one machine. Strong scaling
(N=200 000): 1 process on one thread against 2 processes on one thread each
(OMP_NUM_THREADS=1, torch.set_num_threads(1)), so the ratio is what a second
device's worth of compute buys, and efficiency is the speed-up over 2. Writes
bench/results/distributed-<device>.{md,json} and distributed-scaling-<device>.{md,json}.
"""

import os

import argparse
import datetime
import json
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .common import write_report
from .information import pool

COLLECTIVES = ("all_gather", "broadcast", "all_gather_object", "broadcast_object_list")


def _problems(n):
    labeled = list(range(0, n, n // 100))
    return [
        ("BALD top-k, batch 100", 100, lambda kbd, lp, emb: kbd.select_bald(lp, 100)),
        ("EPIG, 100 targets, batch 10", 10, lambda kbd, lp, emb: kbd.select_epig(lp, _targets(), 10)),
        ("2-BALD, batch 10", 10, lambda kbd, lp, emb: kbd.select_kbald(lp, 10)),
        ("3-BALD, batch 10", 10, lambda kbd, lp, emb: kbd.select_kbald(lp, 10, order=3)),
        ("dynamic 2-BALD, at most 20", 20, lambda kbd, lp, emb: kbd.select_kbald_dynamic(lp, 20, tolerance=1.0)),
        ("BatchBALD, batch 5, M=1 000", 5, lambda kbd, lp, emb: kbd.select_batchbald(lp, 5, num_samples=1000,
                                                                                     generator=0)),
        ("BADGE factored, batch 50", 50, lambda kbd, lp, emb: kbd.select_badge(emb, 50, generator=0)),
        ("CORESET dense D=128, 100 labeled, batch 50", 50,
         lambda kbd, lp, emb: kbd.select_coreset(emb[0], 50, labeled=labeled)),
    ]


def _targets():
    """100 target points shared by every rank (the same draw everywhere)."""
    return pool(100, 50, 10, "cpu", seed=3)


def _counting_collectives(totals):
    """Wrap torch.distributed's collectives to add their seconds and the bytes this rank sends."""
    for name in COLLECTIVES:
        original = getattr(dist, name)

        def timed(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            result = _original(*args, **kwargs)
            totals["seconds"] += time.perf_counter() - start
            totals["calls"] += 1
            if _name in ("all_gather", "broadcast"):
                tensor = args[1] if _name == "all_gather" else args[0]
                totals["bytes"] += tensor.numel() * tensor.element_size()
            return result

        setattr(dist, name, timed)


def _worker(rank, world, port, n, threads, out):
    torch.set_num_threads(threads or max(1, torch.get_num_threads() // world))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=1800))
    totals = {"seconds": 0.0, "bytes": 0, "calls": 0}
    _counting_collectives(totals)
    from kbald_kernels import distributed as kbd
    from kbald_kernels.prediction_files import shard_rows

    problems = _problems(n)
    rows = shard_rows(n, rank, world)
    lp = pool(n, 50, 10, "cpu", seed=1)[rows].contiguous()
    gen = torch.Generator().manual_seed(2)
    emb = (torch.randn(n, 128, generator=gen)[rows].contiguous(), torch.randn(n, 10, generator=gen)[rows].contiguous())
    results = []
    for name, picks, run in problems:
        run(kbd, lp, emb)  # warm-up
        dist.barrier()
        totals.update(seconds=0.0, bytes=0, calls=0)
        start = time.perf_counter()
        selection = run(kbd, lp, emb)
        seconds = time.perf_counter() - start
        results.append({"name": name, "picks": picks, "seconds": seconds, "communication": totals["seconds"],
                        "bytes_per_pick": totals["bytes"] / picks, "calls_per_pick": totals["calls"] / picks,
                        "indices": selection.indices.tolist()})
    if rank == 0:
        Path(out).write_text(json.dumps({"n": n, "results": results}))
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world, n, threads=None):
    """Rank 0's results of every problem on ``world`` gloo processes; ``threads``: each
    process's threads (OpenMP's too), default the machine's cores split between them."""
    saved = os.environ.get("OMP_NUM_THREADS")
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read by the spawned processes' OpenMP at start
    try:
        with tempfile.TemporaryDirectory() as folder:
            out = str(Path(folder) / "rank0.json")
            mp.spawn(_worker, args=(world, _free_port(), n, threads, out), nprocs=world, join=True)
            return json.loads(Path(out).read_text())
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved


NOTES = ["1 process and 2 gloo processes on 127.0.0.1. 'communication': rank 0's seconds inside collectives, "
         "waiting for the other rank included; 'bytes a pick': what rank 0 sends into all-gathers and broadcasts, "
         "divided by the picks (setup messages included); 'round trips a pick': rank 0's collectives over the picks.",
         "'same picks': the 2-process selection equals the 1-process one."]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=4 000 and 20 000, for a smoke run")
    args = parser.parse_args(argv)
    shared_n, strong_n = (4000, 20_000) if args.quick else (20_000, 200_000)
    one, two = run(1, shared_n), run(2, shared_n)
    rows = []
    for alone, sharded in zip(one["results"], two["results"]):
        same = "yes" if alone["indices"] == sharded["indices"] else "NO"
        rows.append([sharded["name"], f"{alone['seconds'] * 1e3:.0f} ms", f"{sharded['seconds'] * 1e3:.0f} ms",
                     f"{alone['seconds'] / sharded['seconds']:.2f}x", f"{sharded['communication'] * 1e3:.0f} ms",
                     f"{sharded['bytes_per_pick']:.0f} B", same])
        print(rows[-1], flush=True)
    notes = [f"Pool: N={shared_n}, K=50, C=10 (log-probabilities, float32); BADGE: features H=128, residuals C=10.",
             "1 process runs on every core, 2 processes on half each.", *NOTES]
    print(write_report("distributed", "cpu", "Sharded acquisition on gloo: 2 processes against 1",
                       ["acquisition", "1 process", "2 processes", "speed-up", "communication", "bytes a pick",
                        "same picks"], rows, notes))
    one, two = run(1, strong_n, threads=1), run(2, strong_n, threads=1)
    rows = []
    for alone, sharded in zip(one["results"], two["results"]):
        speedup = alone["seconds"] / sharded["seconds"]
        rows.append([sharded["name"], f"{alone['seconds'] * 1e3:.0f} ms", f"{sharded['seconds'] * 1e3:.0f} ms",
                     f"{speedup:.2f}x", f"{100 * speedup / 2:.0f} %", f"{sharded['communication'] * 1e3:.0f} ms",
                     f"{sharded['bytes_per_pick']:.0f} B", f"{sharded['calls_per_pick']:.1f}",
                     "yes" if alone["indices"] == sharded["indices"] else "NO"])
        print(rows[-1], flush=True)
    notes = [f"Pool: N={strong_n}, K=50, C=10 (log-probabilities, float32); BADGE: features H=128, residuals C=10.",
             "Every process on one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)): 2 processes have twice the "
             "compute of 1. 'efficiency': the speed-up over 2.", *NOTES]
    print(write_report("distributed-scaling", "cpu", "Strong scaling on gloo: 2 single-thread processes against 1",
                       ["acquisition", "1 process", "2 processes", "speed-up", "efficiency", "communication",
                        "bytes a pick", "round trips a pick", "same picks"], rows, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
