"""Speed-up over the method a user would otherwise run, as the pool grows.

    python -m bench.scaling [--device cuda] [--quick]

For each pool size N (K=20, C=10): BALD scores against naive torch, eager and under
torch.compile, 2-BALD batch 10 and 100 against the naive greedy loop, a pairwise MI
block N × 100 against the einsum, eager and compiled, BatchBALD batch 5 (M=1 000) against batchbald_redux, EPIG about 100 targets
against baal, and k-means++ (50 centers, D=256; BADGE factored against the loop on
the materialised N × H·C embedding; the whole ordering, D=64) against the plain
torch loop. Writes
bench/results/scaling-<device>.{md,json,png}.
"""

import argparse
import importlib.util

import torch

import kbald_kernels as kb

from .batchbald import batchbald_redux_runner
from .common import RESULTS, device_name, measure, slug, write_report
from .epig import _baal_layout, baal_epig
from .information import compiled_bald, compiled_pairwise_mi, naive_bald, naive_kbald2, naive_pairwise_mi, pool
from .kmeanspp import torch_loop


def comparisons(device):
    """(name, ours(pool), theirs(pool), what theirs is, largest N or None) for each
    method; theirs is None when that peer is not installed."""
    batchbald_samples = 1000

    def peer_batchbald(lp):
        return batchbald_redux_runner(lp, 5, batchbald_samples, device)[0]()

    def points(lp, width=256):
        return lp[:, 0, :].repeat(1, 26)[:, :width].contiguous()  # a dense [N, width] embedding

    def factors(lp):
        return points(lp, 64), lp[:, 1, :].exp() - 0.1  # features [N, 64], residuals [N, 10]

    def gradient_embedding(lp):  # what the plain loop needs: the N × H·C outer products
        features, residuals = factors(lp)
        return (features[:, :, None] * residuals[:, None, :]).reshape(lp.shape[0], -1)

    others = lambda lp: lp[:100]  # noqa: E731  (the block's other side: 100 pool points)
    baal = baal_epig(device)
    return [
        ("BALD, K=20 C=10", lambda lp: kb.bald(lp), naive_bald, "naive torch", None),
        ("BALD, K=20 C=10", lambda lp: kb.bald(lp), compiled_bald, "naive torch, torch.compile", None),
        ("2-BALD batch 10", lambda lp: kb.select_kbald(lp, 10), lambda lp: naive_kbald2(lp, 10), "naive torch loop",
         None),
        ("2-BALD batch 100", lambda lp: kb.select_kbald(lp, 100), lambda lp: naive_kbald2(lp, 100),
         "naive torch loop", None),
        ("pairwise MI, N x 100", lambda lp: kb.pairwise_mutual_information(lp, others(lp)),
         lambda lp: naive_pairwise_mi(lp, others(lp)), "naive einsum", None),
        ("pairwise MI, N x 100", lambda lp: kb.pairwise_mutual_information(lp, others(lp)),
         lambda lp: compiled_pairwise_mi(lp, others(lp)), "naive einsum, torch.compile", None),
        ("BatchBALD batch 5, M=1000",
         lambda lp: kb.select_batchbald(lp, 5, num_samples=batchbald_samples, generator=0),
         peer_batchbald if importlib.util.find_spec("batchbald_redux") else None, "batchbald_redux", None),
        ("EPIG, 100 targets", lambda lp: kb.epig(lp, others(lp)),
         None if baal is None else lambda lp: baal(_baal_layout(lp), _baal_layout(others(lp))), "baal EPIG", None),
        ("k-means++ 50, D=256", lambda lp: kb.kmeanspp(points(lp), 50, generator=0, progress=False),
         lambda lp: torch_loop(points(lp), 50, torch.Generator().manual_seed(0)), "torch loop", None),
        ("BADGE 50, factored H=64 C=10", lambda lp: kb.select_badge(factors(lp), 50, generator=0),
         lambda lp: torch_loop(gradient_embedding(lp), 50, torch.Generator().manual_seed(0)),
         "torch loop on H·C", None),
        ("k-means++ whole ordering, D=64", lambda lp: kb.kmeanspp(points(lp, 64), None, generator=0, progress=False),
         lambda lp: torch_loop(points(lp, 64), lp.shape[0], torch.Generator().manual_seed(0)), "torch loop",
         10_000),
    ]


def plot(sizes, speedups, device, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in speedups.items():
        ax.plot(sizes, values, marker="o", label=name)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pool size N")
    ax.set_ylabel("speed-up over the usual method (x)")
    ax.set_title(f"kbald_kernels speed-up, {device_name(device)}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="pools up to N=4 000")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.quick:
        sizes = [500, 1000, 2000, 4000]
    elif device.type == "cuda":
        sizes = [1000, 4000, 15_000, 60_000]
    else:
        sizes = [1000, 10_000, 100_000]
    header = ["method", "vs", *[f"N={n}" for n in sizes]]
    speedups = {}
    rows = []
    for name, ours_fn, theirs_fn, peer, largest in comparisons(device):
        if theirs_fn is None:
            rows.append([name, peer, *(["not installed"] * len(sizes))])
            continue
        cells, values = [], []
        for n in sizes:
            if largest is not None and n > largest:
                cells.append("not run (the loop takes N steps)")
                values.append(float("nan"))
                continue
            lp = pool(n, 20, 10, device)
            ours = measure(lambda: ours_fn(lp), device, repeats=3)
            theirs = measure(lambda: theirs_fn(lp), device, repeats=1)
            values.append(theirs / ours)
            cells.append(f"{theirs / ours:.1f}x ({ours * 1e3:.1f} / {theirs * 1e3:.1f} ms)")
            print(name, n, cells[-1], flush=True)
        rows.append([name, peer, *cells])
        speedups[f"{name} vs {peer}"] = values
    png = RESULTS / f"scaling-{slug(device_name(device))}.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(sizes, speedups, device, png)
    notes = [
        "Cells: speed-up = the other method's time / kbald_kernels' time, then (kbald_kernels ms / other ms); "
        "kbald_kernels: median of 3 after a warm-up, the other method: one run after a warm-up.",
        f"kbald_kernels runs what backend 'auto' picks on {device.type} tensors.",
        f"Plot: {png.name}.",
    ]
    print(write_report("scaling", device, "Speed-up vs pool size", header, rows, notes,
                       {"sizes": sizes, "speedups": speedups}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
