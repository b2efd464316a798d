"""BALD's one pass against one read of the same pool, at C = 10, 100 and 1 000 in
float32 and float16, beside the naive formula eager and under torch.compile; and the
fixed cost of a call (validation, dispatch, the op layer) on small pools.

    python -m bench.one_pass [--device cuda] [--quick]

"One read" is ``x.sum()`` of the pool as stored: the least a pass over it can cost.
Writes bench/results/one-pass-<device>.{md,json} and, on a CPU,
bench/results/fixed-cost-<device>.{md,json}.
"""

import argparse

import torch

import kbald_kernels as kb
from kbald_kernels.example import random_log_probs as pool
from kbald_kernels.native.modules import module_for, pool_arguments
from kbald_kernels.reference.normalisation import normalisation_bounds

from .common import device_name, measure, write_report
from .information import compiled_bald, naive_bald

POOLS = [(300_000, 20, 10), (30_000, 20, 100), (10_000, 10, 1000)]
SMALL_POOLS = [(100, 1, 10), (1000, 1, 10), (60_000, 1, 10)]


def fixed_costs(device):
    """The report of kb.bald's whole call against the host pass alone (the module's
    entropies on preallocated outputs) on small CPU pools: the difference is the call's
    fixed cost."""
    header = ["pool", "whole call", "host pass alone", "fixed cost", "one read"]
    rows, costs = [], {}
    for n, k, c in SMALL_POOLS:
        lp = pool(n, k, c, device, seed=12)
        out = torch.empty(2, n)
        module, arguments = module_for(device), pool_arguments(lp)
        bounds = normalisation_bounds(lp.dtype)
        whole = measure(lambda: kb.bald(lp), device, repeats=201)
        alone = measure(lambda: module.entropies(*arguments, out[0].data_ptr(), out[1].data_ptr(), 0, 0, n, k, c,
                                                 *bounds), device, repeats=201)
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
    header = ["pool", "kbald_kernels (whole call)", "one read", "vs one read", "naive torch", "naive, torch.compile",
              "vs compiled"]
    rows, ratios = [], {}
    for n, k, c in POOLS:
        n = n // 10 if args.quick else n
        base = pool(n, k, c, device, seed=11)
        for dtype in (torch.float32, torch.float16):
            lp = base.to(dtype)
            ours = measure(lambda: kb.bald(lp), device, repeats=7)
            one_read = measure(lambda: lp.sum(), device, repeats=7)
            naive = measure(lambda: naive_bald(lp.float()), device, repeats=3)
            fast_naive = measure(lambda: compiled_bald(lp.float()), device, repeats=3)
            name = f"N={n} K={k} C={c} {str(dtype).removeprefix('torch.')}"
            ratios[name] = {"one_read": ours / one_read, "compiled": fast_naive / ours}
            rows.append([name, f"{ours * 1e3:.1f} ms", f"{one_read * 1e3:.1f} ms", f"{ours / one_read:.1f}x",
                         f"{naive * 1e3:.0f} ms", f"{fast_naive * 1e3:.0f} ms", f"{fast_naive / ours:.1f}x"])
            print(rows[-1], flush=True)
    notes = [
        f"kbald_kernels runs what backend 'auto' picks on {device.type} tensors; the whole call includes the "
        "input's validation, which the same pass carries.",
        "Median of 7 (ours, one read) or 3 (naive) after a warm-up call (which compiles the torch.compile "
        "column: inductor, static shapes). The naive formula reads the pool in float32 (fp16 pools converted "
        "inside the timed call).",
        f"Within 2x one read: {', '.join(p for p, r in ratios.items() if r['one_read'] <= 2) or 'none'}; "
        f"not: {', '.join(p for p, r in ratios.items() if r['one_read'] > 2) or 'none'}.",
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
