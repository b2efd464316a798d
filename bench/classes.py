"""Every class count: the acquisitions on CIFAR-100- and ImageNet-sized predictions
against the usual method, and each as a fraction of its roofline.

    python -m bench.classes [--device cuda] [--quick] [--row-seconds S]

P5: N=50 000, K=20, C=100 (float32, a CIFAR-100 pool); P6: N=100 000, K=10, C=1 000
(float16, an ImageNet subset). Rows: BALD, 2-BALD batch 10 and 100, 3-BALD batch 10,
EPIG with 1 000 targets, BatchBALD batch 10 (M=10 000), BADGE batch 100 (factored
embeddings, H=512). Peers: a naive torch loop (the textbook einsums, float32; BALD's
also under torch.compile),
batchbald_redux, baal's EPIG, the torch k-means++ loop on the dense N × H·C embedding.

Every op here costs a fixed amount per pool point, so a call too slow for
``--row-seconds`` (or, for a peer, too large for 2 GiB of temporaries) is timed on
the first n points and scaled by N / n; those cells are marked ~ and name n. The
roofline is the least time of the row's bytes at the measured copy bandwidth, its
FMAs at the measured float32 matmul rate and its exponentials and logarithms at
the faster of the measured torch.log rate and 20 flops each at the matmul rate
(the vector polynomial forms the kernels use): the largest of the three. Writes
bench/results/classes-<device>.{md,json,png}.
"""

import argparse
import contextlib
import io
from dataclasses import dataclass

import torch

import kbald_kernels as kb

from .batchbald import configurations_per_step, matmul_rate
from .common import RESULTS, device_name, duration, memory_bandwidth, once, slug, write_report
from .epig import baal_epig
from .information import compiled_bald, log_rate, naive_bald, naive_kbald2, pool
from .kmeanspp import badge_pool, dense_of, torch_loop

PEER_BYTES = 2 * 2**30  # temporaries a peer may build before it runs on a prefix
PEER_SECONDS = 600.0  # a peer run that would pass this is scaled from a prefix instead


@dataclass(frozen=True)
class Problem:
    name: str
    n: int
    k: int
    c: int
    dtype: torch.dtype
    targets: int = 1000
    features: int = 512

    def describe(self):
        return f"{self.name}: N={self.n} K={self.k} C={self.c} {str(self.dtype).replace('torch.', '')}"


def problems(quick):
    if quick:
        return [Problem("P5", 2000, 20, 100, torch.float32, targets=50),
                Problem("P6", 500, 10, 1000, torch.float16, targets=20)]
    return [Problem("P5", 50_000, 20, 100, torch.float32), Problem("P6", 100_000, 10, 1000, torch.float16)]


def scaled_time(run_on, full, budget_s, device, smallest=64, largest=None, floor_s=0.0, repeats=3):
    """(seconds for the whole pool, points timed): ``run_on(n)`` is a callable for the
    first n points. Probes a small prefix (which also warms up), then times the whole
    pool if its estimate fits ``budget_s`` and ``largest``, else the prefix expected
    to take about half the budget, scaled by full / n. Where even the probe would
    take longer than the budget at ``floor_s`` (the roofline of the whole pool), or
    ``largest`` is below one point, nothing runs and a reason comes back instead."""
    if largest is not None and largest < 1:
        return "not run: one point's temporaries pass the memory cap"
    cap = full if largest is None else min(full, largest)
    n = min(cap, smallest)
    if floor_s * n / full > budget_s:
        return f"not run: its roofline alone is {duration(floor_s)}"
    probe = once(run_on(n), device)
    if n < cap:
        per_point = max(probe, 1e-6) / n
        n = cap if per_point * cap <= budget_s else max(n, min(cap, int(budget_s / 2 / per_point)))
    fn = run_on(n)
    times = [once(fn, device)]
    while len(times) < repeats and sum(times) < budget_s / 4:
        times.append(once(fn, device))
    return sorted(times)[len(times) // 2] * full / n, n


def naive_kbald3(lp, batch):
    """3-BALD greedy with the naive joints: [N, C, C] per pick and [N, C, C, C] per
    earlier pick, ``increment = bald - Σ I[Y; Y_s] + Σ I[Y; Y_s; Y_t]``."""
    p = lp.exp()
    k = p.shape[1]

    def entropy(joint, dims):
        return -(joint * joint.clamp_min(1e-30).log()).sum(dims)

    h = entropy(p.mean(1), 1)
    increment = naive_bald(lp).clone()
    picks, pair = [], {}
    for _ in range(batch):
        masked = increment.clone()
        if picks:
            masked[torch.tensor(picks, device=lp.device)] = -torch.inf
        s = int(masked.argmax())
        pair[s] = entropy(torch.einsum("nkc,kd->ncd", p, p[s]) / k, (1, 2))
        increment -= h + h[s] - pair[s]
        for t in picks:
            h_st = entropy(torch.einsum("kc,kd->cd", p[s], p[t]) / k, (0, 1))
            h_nst = entropy(torch.einsum("nkc,kd,ke->ncde", p, p[s], p[t]) / k, (1, 2, 3))
            increment += h + h[s] + h[t] - pair[s] - pair[t] - h_st + h_nst
        picks.append(s)
    return picks


def baal_epig_scores(lp, targets):
    """baal's EPIG on its own layout (probabilities [N, C, K], numpy float32), or None
    without baal."""
    heuristic = baal_epig(torch.device("cpu"))
    if heuristic is None:
        return None
    probs = lp.float().exp().permute(0, 2, 1).contiguous().numpy()
    target_probs = targets.float().exp().permute(0, 2, 1).contiguous().numpy()
    return lambda: heuristic(probs, target_probs)


def batchbald_redux_run(lp, batch, num_samples, device):
    from batchbald_redux.batchbald import get_batchbald_batch

    def run():
        with contextlib.redirect_stderr(io.StringIO()):
            return get_batchbald_batch(lp.float(), batch, num_samples, dtype=torch.double, device=device)

    return run


def rows_for(problem, device, budget_s, rates):
    """The report's rows for one problem: (label, ours (s, n), peer name, peer (s, n) or a reason, roofline s)."""
    n, k, c = problem.n, problem.k, problem.c
    lp = pool(n, k, c, device, dtype=problem.dtype, seed=5)
    elt = lp.element_size()
    bandwidth, fma_rate, transcendental_rate = rates

    def roofline(bytes_moved, fmas, transcendentals):
        return max(bytes_moved / bandwidth, 2 * fmas / fma_rate, transcendentals / transcendental_rate)

    def peer_cap(bytes_per_point):
        return int(PEER_BYTES // bytes_per_point)

    out = []
    pool_bytes = n * k * c * elt

    # BALD: one read of the pool, an exponential per element, a logarithm per class mean.
    roof = roofline(pool_bytes, n * k * c, n * k * c + n * c)
    bald = scaled_time(lambda m: lambda: kb.bald(lp[:m]), n, budget_s, device, smallest=n)
    out.append(("BALD", bald, "naive torch", scaled_time(lambda m: lambda: naive_bald(lp[:m].float()), n, budget_s,
                                                         device, smallest=n, largest=peer_cap(3 * k * c * 4)), roof))
    out.append(("BALD vs compiled", bald, "naive torch, torch.compile",
                scaled_time(lambda m: lambda: compiled_bald(lp[:m].float()), n, budget_s, device, smallest=n,
                            largest=peer_cap(3 * k * c * 4)), roof))

    for batch in (10, 100):
        # Per pick: the pool read, a K-deep GEMM per C × C joint, a logarithm per joint entry.
        roof = roofline(batch * pool_bytes, batch * n * k * c * c, batch * n * c * c)
        out.append((f"2-BALD batch {batch}",
                    scaled_time(lambda m: lambda: kb.select_kbald(lp[:m], batch, order=2), n, budget_s, device,
                                smallest=max(batch, 64), floor_s=roof),
                    "naive torch loop",
                    scaled_time(lambda m: lambda: naive_kbald2(lp[:m].float(), batch), n, budget_s, device,
                                smallest=max(batch, 64), largest=peer_cap(2 * c * c * 4 + 2 * k * c * 4),
                                floor_s=roof), roof))

    # 3-BALD: per earlier pick of each pick a K-deep sum per C³ three-way joint entry.
    pairs = 10 * 9 // 2
    roof = roofline(10 * pool_bytes, 10 * n * k * c * c + pairs * n * k * c**3, 10 * n * c * c + pairs * n * c**3)
    out.append(("3-BALD batch 10",
                scaled_time(lambda m: lambda: kb.select_kbald(lp[:m], 10, order=3), n, budget_s, device,
                            smallest=16, floor_s=roof),
                "naive torch loop",
                scaled_time(lambda m: lambda: naive_kbald3(lp[:m].float(), 10), n, budget_s, device, smallest=16,
                            largest=peer_cap(2 * c**3 * 4), floor_s=roof), roof))

    targets = pool(problem.targets, k, c, device, dtype=problem.dtype, seed=6)
    t = problem.targets
    roof = roofline(pool_bytes, n * t * k * c * c, n * t * c * c)
    # baal's joint [N, C, T·C] (and its logarithm) is linear in T too: where one point's
    # would pass the cap, baal scores the first T' targets and the time is scaled by T / T'.
    baal_targets = max(1, min(t, PEER_BYTES // (2 * c * c * 4)))
    if device.type != "cpu" or baal_epig(device) is None:
        baal_cell = "baal not installed" if device.type == "cpu" else "baal has no device path"
    else:
        baal_cell = scaled_time(lambda m: baal_epig_scores(lp[:m], targets[:baal_targets]), n, budget_s, device,
                                smallest=1, largest=peer_cap(2 * c * baal_targets * c * 4),
                                floor_s=roof * baal_targets / t)
        if not isinstance(baal_cell, str) and baal_targets < t:
            baal_cell = (baal_cell[0] * t / baal_targets, baal_cell[1], f"T={baal_targets}")
    out.append((f"EPIG, {t} targets", scaled_time(lambda m: lambda: kb.epig(lp[:m], targets), n, budget_s, device,
                                                  smallest=4, floor_s=roof),
                "baal EPIG", baal_cell, roof))

    num_samples = 10_000
    counts = configurations_per_step(10, c, num_samples)
    roof = roofline(10 * pool_bytes, sum(counts) * n * k * c, sum(counts) * n * c + 10 * n * k * c)
    try:
        import batchbald_redux  # noqa: F401
        redux = scaled_time(lambda m: batchbald_redux_run(lp[:m], 10, num_samples, device), n, budget_s, device,
                            smallest=64, largest=peer_cap(max(counts) * c * 8 * 2), floor_s=roof)
    except ImportError as exc:
        redux = f"batchbald_redux not installed ({exc})"
    out.append((f"BatchBALD batch 10, M={num_samples}",
                scaled_time(lambda m: lambda: kb.select_batchbald(lp[:m], 10, num_samples=num_samples, generator=0),
                            n, budget_s, device, smallest=64, floor_s=roof),
                "batchbald_redux", redux, roof))

    features, residuals = badge_pool(n, problem.features, c, device, seed=7)
    h = problem.features
    gen = torch.Generator().manual_seed(0)

    def dense_loop(m):
        dense = dense_of(features[:m], residuals[:m])  # the peer holds the embedding; building it is not timed
        return lambda: torch_loop(dense, 100, gen)

    out.append((f"BADGE batch 100, factored H={h}",
                scaled_time(lambda m: lambda: kb.select_badge((features[:m], residuals[:m]), 100, generator=0), n,
                            budget_s, device, smallest=128),
                "torch k-means++ on the dense embedding",
                scaled_time(dense_loop, n, budget_s, device, smallest=128, largest=peer_cap(2 * h * c * 4)),
                roofline(100 * n * (h + c) * 4, 100 * n * (h + c), 0)))
    return out


def _speedup(ours, peer):
    return None if isinstance(ours, str) or isinstance(peer, str) else peer[0] / ours[0]


def _cell(result, full):
    if isinstance(result, str):
        return result
    seconds, points, *scaled_from = result
    if points >= full and not scaled_from:
        return duration(seconds)
    return f"~{duration(seconds)} (from {', '.join([f'N={points}', *scaled_from])})"


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [label for label, *_ in results[0][1]]
    width = 0.8 / len(results)
    for index, (problem, rows) in enumerate(results):
        ratios = [_speedup(ours, peer) or float("nan") for _, ours, _, peer, _ in rows]
        ax.bar([i + index * width for i in range(len(labels))], ratios, width, label=problem.describe())
    ax.axhline(3.0, color="black", linestyle="--", linewidth=1, label="3x goal")
    ax.set_yscale("log")
    ax.set_xticks([i + width * (len(results) - 1) / 2 for i in range(len(labels))])
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("speed-up over the usual method")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="toy pools, for a smoke run")
    parser.add_argument("--row-seconds", type=float, default=None,
                        help="time per measurement before scaling from a prefix (default 20, 2 with --quick)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    budget_s = args.row_seconds or (2.0 if args.quick else 20.0)
    bandwidth, flops, logs = memory_bandwidth(device), matmul_rate(device), log_rate(device)
    rates = (bandwidth, flops, max(logs, flops / 20))
    print(f"{device_name(device)}: copy {bandwidth / 1e9:.1f} GB/s, float32 matmul {flops / 1e9:.0f} GFLOP/s, "
          f"torch.log {logs / 1e9:.2f} G/s", flush=True)
    header = ["pool", "row", "kbald_kernels", "usual method", "time", "speed-up", "roofline", "of roofline"]
    rows, results = [], []
    for problem in problems(args.quick):
        problem_rows = rows_for(problem, device, min(budget_s, PEER_SECONDS), rates)
        results.append((problem, problem_rows))
        for label, ours, peer_name, peer, roof in problem_rows:
            speedup = _speedup(ours, peer)
            rows.append([problem.describe(), label, _cell(ours, problem.n), peer_name, _cell(peer, problem.n),
                         "" if speedup is None else f"{speedup:.1f}x", duration(roof),
                         "" if isinstance(ours, str) else f"{100 * roof / ours[0]:.0f} %"])
            print(rows[-1], flush=True)
    notes = [
        f"Measured rates: copy {bandwidth / 1e9:.1f} GB/s, float32 matmul {flops / 1e9:.0f} GFLOP/s, "
        f"torch.log {logs / 1e9:.2f} G/s; exponentials and logarithms taken at {rates[2] / 1e9:.2f} G/s.",
        "~: timed on the first N points shown and scaled to the pool (every op here is linear in N); a peer runs on "
        f"a prefix when its temporaries would pass {PEER_BYTES / 2**30:.0f} GiB or its run {PEER_SECONDS / 60:.0f} "
        "min.",
        "Peers take float32 (the naive loops convert the fp16 pool first); BatchBALD's peer is batchbald_redux's "
        "get_batchbald_batch (float64), EPIG's baal's EPIG.compute_score on [N, C, K] probabilities.",
        "Roofline: the largest of bytes / copy bandwidth, 2·FMAs / matmul rate and (exp + log) / that rate: "
        "2-BALD C² joint entries a point and pick, 3-BALD C³ per earlier pick, EPIG T·C², BatchBALD M·C, BADGE "
        "H + C a point and pick.",
    ]
    text = write_report("classes", device, "Every class count: P5 (CIFAR-100) and P6 (ImageNet subset)", header,
                        rows, notes, extra={"quick": args.quick, "row_seconds": budget_s})
    plot(results, RESULTS / f"classes-{slug(device_name(device))}.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
