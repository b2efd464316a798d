"""k-means++ (BADGE) and CORESET: this package against the plain torch loop and
scikit-learn's kmeans_plusplus, on DESIGN.md's P2 pool (N=15 000, H=256, C=10,
factored, and its 2 560-dim dense equivalent) and a BADGE batch on N=60 000.

    python -m bench.kmeanspp [--device cuda] [--quick]

Peers that would run for minutes are timed over their first steps and
extrapolated linearly (each step costs the same: one pass over the pool); such
figures are marked "~". Writes bench/results/kmeanspp-<device>.{md,json}.
"""

import argparse
import time

import torch

import kbald_kernels as kb
from kbald_kernels.example import random_badge_factors as badge_pool
from kbald_kernels.naive import dense_of, naive_kmeanspp as torch_loop

from .common import device_name, duration, measure, memory_bandwidth, ran_on, synchronize, write_report


def timed_steps(run, k, device, max_seconds):
    """(seconds for k steps, extrapolated?) timing run(steps) once; extrapolates from a prefix."""
    probe = min(k, 10)
    start = time.perf_counter()
    run(probe)
    synchronize(device)
    probe_s = time.perf_counter() - start
    if probe == k:
        return probe_s, False
    if probe_s / probe * k > max_seconds:
        steps = max(probe, min(k, int(max_seconds / 4 / (probe_s / probe))))
        start = time.perf_counter()
        run(steps)
        synchronize(device)
        return (time.perf_counter() - start) / steps * k, steps < k
    start = time.perf_counter()
    run(k)
    synchronize(device)
    return time.perf_counter() - start, False


def fmt_time(seconds, extrapolated=False):
    return f"{'~' if extrapolated else ''}{duration(seconds)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small pools, for a CPU smoke run")
    parser.add_argument("--max-peer-seconds", type=float, default=30.0,
                        help="time budget per peer measurement before extrapolating")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    bandwidth = memory_bandwidth(device)
    print(f"{device_name(device)}: measured copy bandwidth {bandwidth / 1e9:.1f} GB/s", flush=True)

    if args.quick:
        problems = [("P2/8 factored", 1875, 256, 10, [100]), ("pool 1 500, H=64", 1500, 64, 10, [100, -1])]
        badge_n = 7500
    elif gpu:
        problems = [("P2", 15_000, 256, 10, [100, 1000, -1])]
        badge_n = 60_000
    else:
        problems = [("P2", 15_000, 256, 10, [100, 1000]), ("pool 2 000, H=64", 2000, 64, 10, [-1])]
        badge_n = 60_000

    header = ["problem", "k", "embedding", "kbald_kernels", "GB/s (% of copy)", "torch loop", "sklearn 1 trial",
              "sklearn default", "speed-up vs best peer"]
    rows = []
    for label, n, h, c, ks in problems:
        features, residuals = badge_pool(n, h, c, device)
        dense = dense_of(features, residuals)
        dense_np = dense.cpu().numpy()
        for k in ks:
            steps = n if k == -1 else k
            for kind, emb, bytes_per_step in (
                    ("factored", (features, residuals), n * (h + c) * 4 + 8 * n),
                    ("dense", dense, n * h * c * 4 + 8 * n)):
                ours = measure(lambda: kb.kmeanspp(emb, None if k == -1 else k, generator=0, progress=False),
                               device, repeats=3, warmup=1, budget_s=args.max_peer_seconds)
                achieved = bytes_per_step * steps / ours
                peers = []
                gen = torch.Generator().manual_seed(0)
                peers.append(timed_steps(lambda s: torch_loop(dense, s, gen), steps, device, args.max_peer_seconds))
                from sklearn.cluster import kmeans_plusplus

                for trials in (1, None):
                    peers.append(timed_steps(
                        lambda s, t=trials: kmeans_plusplus(dense_np, s, random_state=0, n_local_trials=t),
                        steps, "cpu", args.max_peer_seconds))
                best_peer = min(p[0] for p in peers)
                rows.append([f"{label} (N={n}, {h}x{c})", "all" if k == -1 else k, kind, fmt_time(ours),
                             f"{achieved / 1e9:.1f} ({100 * achieved / bandwidth:.0f} %)",
                             *(fmt_time(*p) for p in peers), f"{best_peer / ours:.1f}x"])
                print(rows[-1], flush=True)

    features, residuals = badge_pool(badge_n, 256, 10, device, seed=1)
    ours = measure(lambda: kb.select_badge((features, residuals), 100, generator=0), device, repeats=3)
    dense = dense_of(features, residuals)
    gen = torch.Generator().manual_seed(0)
    loop = timed_steps(lambda s: torch_loop(dense, s, gen), 100, device, args.max_peer_seconds)
    bytes_per_step = badge_n * 266 * 4 + 8 * badge_n
    achieved = bytes_per_step * 100 / ours
    rows.append([f"BADGE batch (N={badge_n}, 256x10)", 100, "factored", fmt_time(ours),
                 f"{achieved / 1e9:.1f} ({100 * achieved / bandwidth:.0f} %)", fmt_time(*loop), "-", "-",
                 f"{loop[0] / ours:.1f}x"])
    print(rows[-1], flush=True)

    notes = [
        f"kbald_kernels runs the backend 'auto' picks on {device.type} tensors "
        f"({ran_on('kmeanspp_steps', device)}); the peers run on the same "
        "dense embeddings (scikit-learn always on the CPU, from numpy).",
        "Bytes per step: one read of the pool's embeddings plus the running distances read and written; "
        f"copy bandwidth measured here: {bandwidth / 1e9:.1f} GB/s.",
        "'~': the peer was timed over its first steps and extrapolated linearly to k.",
        "Median of up to 3 runs after a warm-up for kbald_kernels; peers are timed once.",
    ]
    text = write_report("kmeanspp", device, "k-means++ / BADGE: kbald_kernels vs peers", header, rows, notes,
                        {"bandwidth_bytes_per_s": bandwidth})
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
