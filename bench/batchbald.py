"""BatchBALD: this package (the CUDA kernel on a GPU, the host C++ twin on a CPU)
against batchbald_redux on the same device and against the torch reference.

    python -m bench.batchbald [--device cuda] [--quick]

CPU: N=10 000, K=20, C=10 (the problem batchbald_redux's 162 s was measured on);
GPU: DESIGN.md's P1, N=60 000, K=100, C=10. Batch 10, 10 000 configurations.
``--quick`` runs N=2 000, K=20, C=10 with 2 000 configurations.
Writes bench/results/batchbald-<device>.{md,json}.
"""

import argparse
import contextlib
import io

import torch

import kbald_kernels as kb

from .common import device_name, measure, ran_on, write_report
from .information import log_rate, pool


def matmul_rate(device, n=2048):
    """Measured float32 FLOP/s of a large square matmul."""
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    return 2 * n**3 / measure(lambda: a @ b, device)


def configurations_per_step(batch, classes, num_samples):
    """M for each greedy step: C^|S| exact configurations until that passes num_samples."""
    counts, exact = [], 1
    for _ in range(batch):
        counts.append(exact if exact <= num_samples else num_samples)
        exact *= classes
    return counts


def batchbald_redux_runner(lp, batch, num_samples, device):
    try:
        from batchbald_redux.batchbald import get_batchbald_batch
    except ImportError as exc:
        return None, f"batchbald_redux not installed ({exc})"

    def run():
        with contextlib.redirect_stderr(io.StringIO()):  # its nested progress bars would bury the report
            return get_batchbald_batch(lp, batch, num_samples, dtype=torch.double, device=device)

    return run, None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="N=2 000 and 2 000 configurations")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    batch = 10
    if args.quick:
        n, k, c, num_samples = 2000, 20, 10, 2000
    elif device.type == "cuda":
        n, k, c, num_samples = 60_000, 100, 10, 10_000
    else:
        n, k, c, num_samples = 10_000, 20, 10, 10_000
    lp = pool(n, k, c, device)
    flops_per_s = matmul_rate(device)
    logs_per_s = log_rate(device)
    print(f"{device_name(device)}: float32 matmul {flops_per_s / 1e12:.2f} TFLOP/s, "
          f"torch.log {logs_per_s / 1e9:.2f} G/s", flush=True)
    counts = configurations_per_step(batch, c, num_samples)
    flops = sum(2 * m * k * n * c for m in counts)
    logs = sum(m * n * c for m in counts)
    problem = f"N={n} K={k} C={c}, batch {batch}, M={num_samples}"
    ours_name = ran_on("accumulate_joint_entropy", device)

    picks = {}

    def ours_call():
        picks["ours"] = kb.select_batchbald(lp, batch, num_samples=num_samples, generator=0).indices.tolist()

    def reference_call():
        picks["reference"] = kb.select_batchbald(lp, batch, num_samples=num_samples, generator=0,
                                                 backend="torch").indices.tolist()

    ours = measure(ours_call, device, repeats=3)
    reference = measure(reference_call, device, repeats=1, warmup=0)
    peer_call, peer_missing = batchbald_redux_runner(lp, batch, num_samples, device)
    peer = measure(lambda: picks.__setitem__("batchbald_redux", peer_call().indices), device, repeats=1,
                   warmup=0) if peer_call else None

    header = ["implementation", "problem", "time", "vs batchbald_redux", "TFLOP/s", "G logs/s", "picks"]

    def row(name, seconds, key):
        return [name, problem, f"{seconds:.2f} s", f"{peer / seconds:.1f}x" if peer else "-",
                f"{flops / seconds / 1e12:.3f} = {100 * flops / seconds / flops_per_s:.0f} % of matmul",
                f"{logs / seconds / 1e9:.2f} = {100 * logs / seconds / logs_per_s:.0f} % of torch.log",
                " ".join(map(str, picks.get(key, [])))]

    rows = [row(f"kbald_kernels ({ours_name})", ours, "ours"), row("kbald_kernels torch reference (float32)",
                                                                  reference, "reference")]
    if peer:
        rows.append(row("batchbald_redux (dtype=float64, as its README calls it)", peer, "batchbald_redux"))
    for r in rows:
        print(r, flush=True)
    notes = [
        f"Configurations per step: {', '.join(map(str, counts))} (exact while C^|S| <= M, then M sampled).",
        f"TFLOP/s counts the joint-entropy GEMMs only ({flops / 1e12:.2f} TFLOP in all) and G logs/s one log "
        f"per q element ({logs / 1e9:.1f} G); ceilings measured here: float32 matmul "
        f"{flops_per_s / 1e12:.2f} TFLOP/s, torch.log {logs_per_s / 1e9:.2f} G/s.",
        "kbald_kernels and the reference share the seeded configuration sampling; batchbald_redux samples "
        "its own configurations, so sampled-mode picks may differ.",
    ]
    if peer_missing:
        notes.append(peer_missing)
    print(write_report("batchbald", device, "BatchBALD: kbald_kernels vs batchbald_redux", header, rows, notes,
                       {"matmul_flops_per_s": flops_per_s, "log_per_s": logs_per_s, "configurations": counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
