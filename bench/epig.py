"""EPIG: this package against the matmul formula that materialises the pool × target
joint, as the EPIG paper's code and baal's EPIG do ([N, C, T·C]).

    python -m bench.epig [--device cuda] [--quick]

CPU: N=20 000, T=400, K=50, C=10 (the matmul formula on 1 000-point chunks, scaled
to the pool, since its joint alone would take 3.2 GB); a GPU adds P4 (N=60 000,
T=1 000, K=100, C=10). Writes bench/results/epig-<device>.{md,json}.
"""

import argparse

import torch

import kbald_kernels as kb

from .common import device_name, measure, write_report
from .information import pool


def matmul_epig(pool_log_probs, target_log_probs):
    """EPIG by the joint predictive [N, C, T·C]: p(y, y*) = mean_k p(y|k)·p(y*|k), then
    the mean over targets of KL(p(y, y*) ‖ p(y)·p(y*))."""
    p, pt = pool_log_probs.exp(), target_log_probs.exp()
    n, k, c = p.shape
    t = pt.shape[0]
    joint = torch.einsum("nkc,kd->ncd", p, pt.permute(1, 0, 2).reshape(k, t * c)) / k  # [N, C, T·C]
    joint = joint.view(n, c, t, c)
    marginal = p.mean(1)[:, :, None, None] * pt.mean(1).T[None, None, :, :].permute(0, 1, 3, 2)
    terms = joint * (joint.clamp_min(1e-30).log() - marginal.clamp_min(1e-30).log())
    return terms.sum((1, 3)).mean(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="N=2 000, T=100, for a smoke run")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    problems = [(2000, 100, 20, 10)] if args.quick else [(20_000, 400, 50, 10)]
    if device.type == "cuda" and not args.quick:
        problems.append((60_000, 1000, 100, 10))
    rows = []
    for n, t, k, c in problems:
        lp, targets = pool(n, k, c, device, seed=1), pool(t, k, c, device, seed=2)
        ours = measure(lambda: kb.epig(lp, targets), device, repeats=3)
        chunk = min(n, 1000)
        peer = measure(lambda: matmul_epig(lp[:chunk], targets), device, repeats=3) * n / chunk
        agree = (kb.epig(lp[:chunk], targets).double() - matmul_epig(lp[:chunk].double(), targets.double())).abs()
        flops = 2 * n * t * k * c * c
        rows.append([f"N={n} T={t} K={k} C={c}", f"{ours * 1e3:.0f} ms", f"~{peer * 1e3:.0f} ms",
                     f"{peer / ours:.1f}x", f"{flops / ours / 1e9:.1f} GFLOP/s", f"{float(agree.max()):.1e}"])
        print(rows[-1], flush=True)
    path = "the Triton kernel" if device.type == "cuda" else "the host C++ twin (OpenMP)"
    notes = [f"kbald_kernels runs the backend 'auto' picks on {device.type} tensors: {path}.",
             "The matmul formula runs on 1 000-point chunks of the pool and is scaled linearly to N ('~'); "
             "whole, its [N, C, T·C] joint takes N·T·C²·4 bytes (3.2 GB at N=20 000, T=400).",
             "GFLOP/s counts the pool × target GEMM's 2·N·T·K·C² flops; 'max diff' compares the two on the first "
             "chunk in float64 for the formula."]
    print(write_report("epig", device, "EPIG: kbald_kernels vs the matmul formula",
                       ["problem", "kbald_kernels", "matmul formula", "vs formula", "rate", "max diff"],
                       rows, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
