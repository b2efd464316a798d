"""The op layer's cost per call: each public function through its registered
``torch.ops.kbald_kernels`` op, against the op's own Python kernel called directly
(the same work without the dispatcher, as before the ops existed), and compiled.

    python -m bench.ops [--device cuda] [--quick]

Rows: ``kb.bald`` on a 1 000-point pool and ``select_kbald(order=2)`` batch 10 on
1 000 points (K=20, C=10, float32), and the same on 100 points where the overhead
weighs most. Writes bench/results/ops-<device>.{md,json}.
"""

import argparse
import statistics
import time

import torch

import kbald_kernels as kb
from kbald_kernels.library import IMPLEMENTATIONS

from .common import synchronize, write_report
from .information import pool


ROUNDS = 5


def per_call(fn, device, calls, repeats):
    """Median seconds a call over ``repeats`` runs of ``calls`` calls each."""
    for _ in range(max(1, calls // 10)):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    calls, repeats = (20, 3) if args.quick else (300, 9)
    rows = []
    for n in (100, 1000):
        lp = pool(n, 20, 10, device, seed=1)
        cases = [
            (f"kb.bald, N={n}", lambda: kb.bald(lp), lambda: IMPLEMENTATIONS["bald"](lp, None),
             lambda x: kb.bald(x)),
            (f"select_kbald order 2, batch 10, N={n}", lambda: kb.select_kbald(lp, 10),
             lambda: IMPLEMENTATIONS["select_kbald"](lp, 10, 2, None, None), lambda x: kb.select_kbald(x, 10)),
        ]
        for name, public, direct, traced in cases:
            compiled = torch.compile(traced, fullgraph=True)
            times = {}
            # Interleaved rounds, so a load on the machine hits every column alike.
            for _ in range(ROUNDS):
                for column, fn in (("direct", direct), ("op", public), ("compiled", lambda: compiled(lp))):
                    times.setdefault(column, []).append(per_call(fn, device, calls, repeats))
            direct_s, op_s, compiled_s = (min(times[c]) for c in ("direct", "op", "compiled"))
            rows.append([name, f"{direct_s * 1e6:.0f} µs", f"{op_s * 1e6:.0f} µs",
                         f"{(op_s - direct_s) * 1e6:+.1f} µs ({(op_s / direct_s - 1) * 100:+.1f} %)",
                         f"{compiled_s * 1e6:.0f} µs"])
            print(rows[-1], flush=True)
    notes = ["'kernel alone': the op's registered Python kernel called directly (validation and dispatch to "
             "the backend included: the work of the public function before the ops existed); 'through the op': "
             "the public function, which calls torch.ops.kbald_kernels.<op>; 'compiled': "
             "torch.compile(fullgraph=True) of a function calling it.",
             f"Each cell: the best of {ROUNDS} interleaved rounds, each the median of {repeats} runs of {calls} calls.",
             "Goal: the op layer within 5 % or 20 µs of the kernel alone."]
    print(write_report("ops", device, "Op-layer overhead per call",
                       ["call", "kernel alone", "through the op", "op layer", "compiled"], rows, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
