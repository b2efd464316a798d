"""EPIG: this package against baal's ``EPIG`` heuristic and the matmul formula of
the EPIG paper's code, both of which materialise the pool × target joint [N, C, T·C].

    python -m bench.epig [--device cuda] [--quick]

N=20 000, T=400, K=50, C=10 and P4 (N=60 000, T=1 000, K=100, C=10). The matmul
formula runs on 1 000-point chunks, scaled to the pool; baal runs whole where its
joint fits in memory. Writes bench/results/epig-<device>.{md,json}.
"""

import argparse

import psutil
import torch

import kbald_kernels as kb

from .common import measure, write_report
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


def baal_epig(device):
    """baal's EPIG.compute_score on its own layout (probabilities [N, C, K], numpy,
    on the CPU: baal has no device path), or None when baal is not installed."""
    try:
        from baal.active.heuristics import EPIG
    except ImportError:
        return None
    if torch.device(device).type != "cpu":
        return None
    heuristic = EPIG()
    return lambda probs, targets: heuristic.compute_score(probs, targets)


def _baal_layout(log_probs):
    return log_probs.exp().permute(0, 2, 1).contiguous().cpu().numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="N=2 000, T=100, for a smoke run")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    problems = [(2000, 100, 20, 10)] if args.quick else [(20_000, 400, 50, 10), (60_000, 1000, 100, 10)]
    baal = baal_epig(device)
    rows = []
    for n, t, k, c in problems:
        lp, targets = pool(n, k, c, device, seed=1), pool(t, k, c, device, seed=2)
        repeats = 3 if n * t * k <= 4e8 else 1
        ours = measure(lambda: kb.epig(lp, targets), device, repeats=repeats, warmup=1 if repeats > 1 else 0)
        chunk = min(n, 1000)
        formula = measure(lambda: matmul_epig(lp[:chunk], targets), device, repeats=3) * n / chunk
        agree = (kb.epig(lp[:chunk], targets).double() - matmul_epig(lp[:chunk].double(), targets.double())).abs()
        # baal's peak: its [N, C, T·C] joint, the xlogy of it and the float32 copies of the inputs.
        baal_bytes = 2 * n * t * c * c * 4 + 2 * (n + t) * k * c * 4
        if baal is None:
            baal_cell, baal_ratio = "not installed", ""
        elif baal_bytes > 0.8 * psutil.virtual_memory().available:
            baal_cell, baal_ratio = f"out of memory (needs ~{baal_bytes / 2**30:.0f} GiB)", ""
        else:
            probs, target_probs = _baal_layout(lp), _baal_layout(targets)
            seconds = measure(lambda: baal(probs, target_probs), device, repeats=repeats, warmup=0)
            del probs, target_probs
            baal_cell, baal_ratio = f"{seconds * 1e3:.0f} ms", f"{seconds / ours:.1f}x"
        flops = 2 * n * t * k * c * c
        rows.append([f"N={n} T={t} K={k} C={c}", f"{ours * 1e3:.0f} ms", baal_cell, baal_ratio,
                     f"~{formula * 1e3:.0f} ms", f"{formula / ours:.1f}x", f"{flops / ours / 1e9:.1f} GFLOP/s",
                     f"{float(agree.max()):.1e}"])
        print(rows[-1], flush=True)
    path = "the Triton kernel" if device.type == "cuda" else "the host C++ twin (OpenMP)"
    notes = [f"kbald_kernels runs the backend 'auto' picks on {device.type} tensors: {path}.",
             "baal: `baal.active.heuristics.EPIG().compute_score` (baal 2.1, float32, CPU) on its layout of "
             "probabilities [N, C, K], converted outside the timing; it materialises the [N, C, T·C] joint and "
             "its xlogy whole (2·N·T·C²·4 bytes: 6.4 GB at N=20 000, T=400; 48 GB at P4).",
             "The matmul formula (the EPIG paper's code) runs on 1 000-point chunks of the pool and is scaled "
             "linearly to N ('~').",
             "GFLOP/s counts the pool × target GEMM's 2·N·T·K·C² flops; 'max diff' compares the two on the first "
             "chunk in float64 for the formula."]
    print(write_report("epig", device, "EPIG: kbald_kernels vs baal and the matmul formula",
                       ["problem", "kbald_kernels", "baal EPIG", "vs baal", "matmul formula", "vs formula", "rate",
                        "max diff"],
                       rows, notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
