"""BALD's one pass against one read of the same pool, at C = 10, 100 and 1 000 in
float32 and float16, beside the naive formula eager and under torch.compile.

    python -m bench.one_pass [--device cuda] [--quick]

"One read" is ``x.sum()`` of the pool as stored: the least a pass over it can cost.
Writes bench/results/one-pass-<device>.{md,json}.
"""

import argparse

import torch

import kbald_kernels as kb
from kbald_kernels.example import random_log_probs as pool

from .common import device_name, measure, write_report
from .information import compiled_bald, naive_bald

POOLS = [(300_000, 20, 10), (30_000, 20, 100), (10_000, 10, 1000)]


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
