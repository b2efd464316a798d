"""BALD's one pass against one read of the same pool, at C = 10, 100 and 1 000 in
float32 and float16, beside the naive formula eager and under torch.compile; and the
fixed cost of a call (validation, dispatch, the op layer) on small pools.

    python -m bench.one_pass [--device cuda] [--quick]

"One read" is ``x.sum()`` of the pool as stored: the least a pass over it can cost.
On a CPU, "pool in cache" is the host pass alone over a slice of the pool that stays
in cache, scaled to the whole pool: what the pass's arithmetic costs with no byte
waiting on memory, and so the least its whole call can come to on this processor.
Writes bench/results/one-pass-<device>.{md,json} and, on a CPU,
bench/results/fixed-cost-<device>.{md,json}.
"""

import argparse

import torch

import kbald_kernels as kb
from kbald_kernels.example import random_log_probs as pool
from kbald_kernels.native.modules import module_for, pool_arguments
from kbald_kernels.reference.normalisation import normalisation_bounds

from .common import device_name, measure, measure_pair, write_report
from .information import compiled_bald, naive_bald

POOLS = [(300_000, 20, 10), (30_000, 20, 100), (10_000, 10, 1000)]
SMALL_POOLS = [(100, 1, 10), (1000, 1, 10), (60_000, 1, 10)]
# The in-cache slice: half a MiB of pool, within any recent core's L2.
CACHE_BYTES = 1 << 19


def host_pass(lp):
    """The host module's pass alone over pool ``lp`` (preallocated outputs), as a call."""
    n, k, c = lp.shape
    out = torch.empty(2, n)
    module, arguments = module_for(lp.device), pool_arguments(lp)
    bounds = normalisation_bounds(lp.dtype)
    return lambda: module.entropies(*arguments, out[0].data_ptr(), out[1].data_ptr(), 0, 0, n, k, c, *bounds)


def in_cache_seconds(lp):
    """The host pass's time over the whole pool at one thread's rate on a slice of it
    that stays in that core's cache (the slice run over and over), shared out over all
    threads as if they added up perfectly: the least the pass can cost here."""
    n, k, c = lp.shape
    points = min(n, max(1, CACHE_BYTES // (k * c * lp.element_size())))
    run = host_pass(lp[:points])
    repeats = max(1, n // points)

    def again():
        for _ in range(repeats):
            run()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = measure(again, lp.device, repeats=7)
    finally:
        torch.set_num_threads(threads)
    return seconds * n / (points * repeats) / threads


def fixed_costs(device):
    """The report of kb.bald's whole call against the host pass alone (the module's
    entropies on preallocated outputs) on small CPU pools: the difference is the call's
    fixed cost."""
    header = ["pool", "whole call", "host pass alone", "fixed cost", "one read"]
    rows, costs = [], {}
    for n, k, c in SMALL_POOLS:
        lp = pool(n, k, c, device, seed=12)
        whole = measure(lambda: kb.bald(lp), device, repeats=201)
        alone = measure(host_pass(lp), device, repeats=201)
        one_read = measure(lambda: lp.sum(), device, repeats=201)
        name = f"N={n} K={k} C={c} float32"
        costs[name] = whole - alone
        rows.append([name, f"{whole * 1e6:.1f} us", f"{alone * 1e6:.1f} us", f"{(whole - alone) * 1e6:.1f} us",
                     f"{one_read * 1e6:.1f} us"])
        print(rows[-1], flush=True)
    notes = ["Median of 201 calls after a warm-up. The whole call is kb.bald: argument checks, the custom op, "
             "backend dispatch, output allocation, the pass (which validates) and the flag's read."]
    print(write_report("fixed-cost", device, "The fixed cost of a BALD call on small pools", header, rows, notes,
                       {"fixed_cost_s": costs}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="a tenth of each pool")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    header = ["pool", "kbald_kernels (whole call)", "one read", "vs one read", "pass, pool in cache",
              "in cache vs one read", "naive torch", "naive, torch.compile", "vs compiled"]
    rows, ratios = [], {}
    for n, k, c in POOLS:
        n = n // 10 if args.quick else n
        base = pool(n, k, c, device, seed=11)
        for dtype in (torch.float32, torch.float16):
            lp = base.to(dtype)
            ours, one_read, vs_read = measure_pair(lambda: kb.bald(lp), lambda: lp.sum(), device, pairs=15)
            cached = in_cache_seconds(lp) if device.type == "cpu" else None
            naive = measure(lambda: naive_bald(lp.float()), device, repeats=3)
            fast_naive = measure(lambda: compiled_bald(lp.float()), device, repeats=3)
            name = f"N={n} K={k} C={c} {str(dtype).removeprefix('torch.')}"
            ratios[name] = {"one_read": vs_read, "compiled": fast_naive / ours,
                            "in_cache": None if cached is None else cached / one_read}
            rows.append([name, f"{ours * 1e3:.1f} ms", f"{one_read * 1e3:.1f} ms", f"{vs_read:.1f}x",
                         "-" if cached is None else f"{cached * 1e3:.1f} ms",
                         "-" if cached is None else f"{cached / one_read:.1f}x",
                         f"{naive * 1e3:.0f} ms", f"{fast_naive * 1e3:.0f} ms", f"{fast_naive / ours:.1f}x"])
            print(rows[-1], flush=True)
    notes = [
        f"kbald_kernels runs what backend 'auto' picks on {device.type} tensors; the whole call includes the "
        "input's validation, which the same pass carries.",
        "Ours and one read run in turn, 15 pairs: their medians, and the median of the pair ratios as 'vs one "
        "read' (a load or clock that drifts weighs on both sides of a ratio alike). Naive: median of 3 after "
        "a warm-up call (which compiles the torch.compile column: inductor, static shapes); it reads the pool "
        "in float32 (fp16 pools converted inside the timed call).",
        f"Pass, pool in cache: the host pass alone on one thread over the pool's first points (512 KiB of "
        f"them), run over and over so they stay in that core's cache, at that rate for the whole pool and "
        f"shared out over the {torch.get_num_threads()} threads as if they added up perfectly: the pass's "
        f"arithmetic with no byte waiting on memory (each call's start, a few us, included). Where it is over "
        f"2x one read, no prefetch can bring the whole call within 2x on this processor.",
        f"Within 2x one read: {', '.join(p for p, r in ratios.items() if r['one_read'] <= 2) or 'none'}; "
        f"not: {', '.join(p for p, r in ratios.items() if r['one_read'] > 2) or 'none'}.",
        f"Arithmetic alone (pool in cache) over 2x one read: "
        f"{', '.join(p for p, r in ratios.items() if (r['in_cache'] or 0) > 2) or 'none'}.",
        f"At least 3x the compiled naive formula: "
        f"{', '.join(p for p, r in ratios.items() if r['compiled'] >= 3) or 'none'}; "
        f"not: {', '.join(p for p, r in ratios.items() if r['compiled'] < 3) or 'none'}.",
    ]
    print(write_report("one-pass", device, "BALD's one pass against one read of the pool", header, rows, notes,
                       {"ratios": ratios, "quick": args.quick}))
    if device.type == "cpu":
        fixed_costs(device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
