"""BALD, pairwise mutual information and 2-BALD: this package against naive torch
and the reference, on DESIGN.md's P1 pool (N=60 000, K=100, C=10), and BALD on
P3 (N=1 000 000, K=20, C=10).

    python -m bench.information [--device cuda] [--quick]

Writes bench/results/information-<device>.{md,json}.
"""

import argparse

import torch

import kbald_kernels as kb
from kbald_kernels import reference
from kbald_kernels.example import random_log_probs as pool
from kbald_kernels.naive import naive_bald, naive_kbald2, naive_pairwise_mi

from .common import compiled, device_name, measure, memory_bandwidth, write_report

compiled_bald = compiled(naive_bald)
compiled_pairwise_mi = compiled(naive_pairwise_mi)
compiled_kbald2 = compiled(naive_kbald2)


def bald_row(lp, device, bandwidth):
    n, k, c = lp.shape
    ours = measure(lambda: kb.bald(lp), device)
    naive = measure(lambda: naive_bald(lp), device)
    fast_naive = measure(lambda: compiled_bald(lp), device)
    ref = measure(lambda: reference.bald(lp.double()), device, repeats=3)
    one_read = measure(lambda: lp.sum(), device)
    bytes_read = lp.numel() * lp.element_size()
    return ["BALD scores (whole call, validation included)", f"N={n} K={k} C={c} fp32", f"{ours * 1e3:.2f} ms",
            f"{naive * 1e3:.2f} ms", f"{fast_naive * 1e3:.2f} ms", f"{ref * 1e3:.1f} ms", f"{naive / ours:.1f}x",
            f"{fast_naive / ours:.1f}x",
            f"{bytes_read / ours / 1e9:.1f} GB/s = {100 * bytes_read / ours / bandwidth:.0f} % of copy; "
            f"{ours / one_read:.1f}x one read of the pool (x.sum(): {one_read * 1e3:.2f} ms)"]


def log_rate(device):
    x = torch.rand(2**26, device=device) + 0.5
    return x.numel() / measure(lambda: torch.log(x), device)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="a tenth of P1, for a CPU smoke run")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    n = 6000 if args.quick else 60_000
    k, c = 100, 10
    block = 128 if args.quick else 1024
    naive_block = min(block, 64)
    bandwidth = memory_bandwidth(device)
    logs_per_s = log_rate(device)
    print(f"{device_name(device)}: copy {bandwidth / 1e9:.1f} GB/s, torch.log {logs_per_s / 1e9:.2f} G/s", flush=True)
    lp = pool(n, k, c, device)
    header = ["op", "problem", "kbald_kernels", "naive torch", "naive, torch.compile", "reference (float64)",
              "vs naive", "vs compiled", "roofline"]
    rows = []

    rows.append(bald_row(lp, device, bandwidth))
    print(rows[-1], flush=True)
    # P3 (N=1 000 000, K=20, C=10): BALD at scale, where only bandwidth matters (cheap enough for --quick).
    rows.append(bald_row(pool(1_000_000, 20, c, device, seed=3), device, bandwidth))
    print(rows[-1], flush=True)

    a = lp[:block]
    ours = measure(lambda: kb.pairwise_mutual_information(a, lp), device, repeats=3)
    naive_n = min(n, 4096)
    naive = measure(lambda: naive_pairwise_mi(lp[:naive_block], lp[:naive_n]), device, repeats=3)
    naive_scaled = naive * (block / naive_block) * (n / naive_n)
    fast_naive = measure(lambda: compiled_pairwise_mi(lp[:naive_block], lp[:naive_n]), device, repeats=3)
    fast_naive_scaled = fast_naive * (block / naive_block) * (n / naive_n)
    ref = measure(lambda: reference.pairwise_mutual_information(a.double(), lp.double()), device, repeats=1)
    logs = block * n * c * c
    rows.append(["pairwise MI", f"{block} x {n}, K={k} C={c}", f"{ours * 1e3:.1f} ms",
                 f"~{naive_scaled * 1e3:.0f} ms", f"~{fast_naive_scaled * 1e3:.0f} ms", f"{ref * 1e3:.0f} ms",
                 f"{naive_scaled / ours:.1f}x", f"{fast_naive_scaled / ours:.1f}x",
                 f"{logs / ours / 1e9:.2f} G logs/s = {100 * logs / ours / logs_per_s:.0f} % of torch.log rate"])
    print(rows[-1], flush=True)

    for batch in (10, 100):
        ours = measure(lambda b=batch: kb.select_kbald(lp, b), device, repeats=3)
        naive = measure(lambda b=batch: naive_kbald2(lp, b), device, repeats=1)
        fast_naive = measure(lambda b=batch: compiled_kbald2(lp, b), device, repeats=1)
        ref = measure(lambda b=batch: kb.select_kbald(lp.double(), b, backend="torch"), device, repeats=1)
        per_step = lp.numel() * lp.element_size()
        rows.append([f"2-BALD batch {batch}", f"N={n} K={k} C={c}", f"{ours * 1e3:.1f} ms", f"{naive * 1e3:.0f} ms",
                     f"{fast_naive * 1e3:.0f} ms", f"{ref * 1e3:.0f} ms", f"{naive / ours:.1f}x",
                     f"{fast_naive / ours:.1f}x",
                     f"{per_step * batch / ours / 1e9:.1f} GB/s = "
                     f"{100 * per_step * batch / ours / bandwidth:.0f} % of copy"])
        print(rows[-1], flush=True)

    cpu_paths = "BALD, pairwise MI and the 2-BALD step: the host C++ twins"
    notes = [
        f"kbald_kernels runs the backend 'auto' picks on {device.type} tensors "
        f"({'the Triton kernels' if device.type == 'cuda' else cpu_paths}).",
        f"Naive pairwise MI materialises the joint, so it runs on {naive_block} x {min(n, 4096)} and is scaled "
        "linearly to the full block ('~').",
        f"Ceilings measured here: copy {bandwidth / 1e9:.1f} GB/s, torch.log {logs_per_s / 1e9:.2f} G/s.",
        "The 2-BALD roofline counts one read of the pool per pick.",
        "'naive, torch.compile': the same naive functions under torch.compile (inductor, static shapes), "
        "timed after a warm-up call that compiles them; the 2-BALD loop compiles per step between its "
        "graph breaks (the argmax read on the host).",
    ]
    slower = [row[0] for row in rows if float(row[7].rstrip("x")) < 1]
    if slower:
        notes.append(f"The compiled naive code is faster than kbald_kernels on: {', '.join(slower)}.")
    print(write_report("information", device, "BALD, pairwise MI and 2-BALD: kbald_kernels vs naive torch, eager and compiled",
                       header, rows, notes, {"bandwidth_bytes_per_s": bandwidth, "log_per_s": logs_per_s}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
