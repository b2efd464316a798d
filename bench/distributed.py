"""Sharded acquisition (kbald_kernels.distributed) on gloo: the same problem on 1
process and on 2, with the time in collectives and the bytes each rank sends per pick.

    python -m bench.distributed [--quick]

On a CPU the processes share its cores: 1 process runs all of them, 2 processes
half each, so the ratio shows what sharding costs or gains on one machine.
Writes bench/results/distributed-<device>.{md,json}.
"""

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


def _problems(quick):
    n = 4000 if quick else 20_000
    labeled = list(range(0, n, n // 100))
    return n, [
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
            if _name in ("all_gather", "broadcast"):
                tensor = args[1] if _name == "all_gather" else args[0]
                totals["bytes"] += tensor.numel() * tensor.element_size()
            return result

        setattr(dist, name, timed)


def _worker(rank, world, port, quick, out):
    torch.set_num_threads(max(1, torch.get_num_threads() // world))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=600))
    totals = {"seconds": 0.0, "bytes": 0}
    _counting_collectives(totals)
    from kbald_kernels import distributed as kbd
    from kbald_kernels.prediction_files import shard_rows

    n, problems = _problems(quick)
    rows = shard_rows(n, rank, world)
    lp = pool(n, 50, 10, "cpu", seed=1)[rows].contiguous()
    gen = torch.Generator().manual_seed(2)
    emb = (torch.randn(n, 128, generator=gen)[rows].contiguous(), torch.randn(n, 10, generator=gen)[rows].contiguous())
    results = []
    for name, picks, run in problems:
        run(kbd, lp, emb)  # warm-up
        dist.barrier()
        totals.update(seconds=0.0, bytes=0)
        start = time.perf_counter()
        selection = run(kbd, lp, emb)
        seconds = time.perf_counter() - start
        results.append({"name": name, "picks": picks, "seconds": seconds, "communication": totals["seconds"],
                        "bytes_per_pick": totals["bytes"] / picks, "indices": selection.indices.tolist()})
    if rank == 0:
        Path(out).write_text(json.dumps({"n": n, "results": results}))
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world, quick):
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "rank0.json")
        mp.spawn(_worker, args=(world, _free_port(), quick, out), nprocs=world, join=True)
        return json.loads(Path(out).read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=4 000, for a smoke run")
    args = parser.parse_args(argv)
    one, two = run(1, args.quick), run(2, args.quick)
    rows = []
    for alone, sharded in zip(one["results"], two["results"]):
        same = "yes" if alone["indices"] == sharded["indices"] else "NO"
        rows.append([sharded["name"], f"{alone['seconds'] * 1e3:.0f} ms", f"{sharded['seconds'] * 1e3:.0f} ms",
                     f"{alone['seconds'] / sharded['seconds']:.2f}x", f"{sharded['communication'] * 1e3:.0f} ms",
                     f"{sharded['bytes_per_pick']:.0f} B", same])
        print(rows[-1], flush=True)
    notes = [f"Pool: N={one['n']}, K=50, C=10 (log-probabilities, float32); BADGE: features H=128, residuals C=10.",
             "1 process runs on every core; 2 processes (gloo on 127.0.0.1) on half each. 'communication': rank 0's "
             "seconds inside collectives, waiting for the other rank included; 'bytes a pick': what rank 0 sends "
             "into all-gathers and broadcasts, divided by the picks (setup messages included).",
             "'same picks': the 2-process selection equals the 1-process one."]
    print(write_report("distributed", "cpu", "Sharded acquisition on gloo: 2 processes against 1",
                       ["acquisition", "1 process", "2 processes", "speed-up", "communication", "bytes a pick",
                        "same picks"], rows, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
