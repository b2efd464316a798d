"""Candidates at the cost of their rows: k-means++, BADGE and CORESET on
``candidates=`` against the same points given as their own pool, and the
uncertainty prefilter against its scores' pass plus a top-k.

    python -m bench.candidates [--device cuda] [--quick]

A pool of 60 000 points (dense D=128 for k-means++ and CORESET; BADGE factors
H=128, C=10) with 6 000 random candidates, batch 10; the prefilter keeps 6 000 of
[60 000, 1, 10] predictions. Writes bench/results/candidates-<device>.{md,json}.
"""

import argparse

import torch

import kbald_kernels as kb
from kbald_kernels.example import random_log_probs as pool

from .common import measure_pair, write_report

PAIRS = 101
TARGET = 1.3  # the candidates' cost as DESIGN.md states it: at most 1.3x the same points as their own pool


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="a tenth of the pool and candidates")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    n, size, batch = (6000, 600, 10) if args.quick else (60_000, 6000, 10)
    generator = torch.Generator().manual_seed(13)
    dense = torch.randn(n, 128, generator=generator).to(device)
    factors = (torch.randn(n, 128, generator=generator).to(device),
               (0.1 * torch.randn(n, 10, generator=generator)).to(device))
    candidates = torch.randperm(n, generator=generator)[:size].sort().values.to(device)

    def own(embeddings):
        if isinstance(embeddings, tuple):
            return tuple(t[candidates].contiguous() for t in embeddings)
        return embeddings[candidates].contiguous()

    selections = [
        ("k-means++, dense D=128", dense, lambda e, **kw: kb.kmeanspp(e, batch, generator=0, progress=False, **kw)),
        ("BADGE, factored H=128 C=10", factors, lambda e, **kw: kb.select_badge(e, batch, generator=0, **kw)),
        ("CORESET, dense D=128", dense, lambda e, **kw: kb.select_coreset(e, batch, generator=0, **kw)),
    ]
    header = ["selection", "on candidates=", "the same points as a pool", "ratio"]
    rows, ratios = [], {}
    for name, embeddings, select in selections:
        sub = own(embeddings)
        on_candidates, as_pool, ratios[name] = measure_pair(lambda: select(embeddings, candidates=candidates),
                                                            lambda: select(sub), device, pairs=PAIRS)
        rows.append([f"{name}, {size} of {n} points, batch {batch}", f"{on_candidates * 1e3:.2f} ms",
                     f"{as_pool * 1e3:.2f} ms", f"{ratios[name]:.2f}x"])
        print(rows[-1], flush=True)

    lp = pool(n, 1, 10, device, seed=14)
    prefilter, scores_and_top, ratios["prefilter"] = measure_pair(
        lambda: kb.candidate_subset(lp, size, score="least_confidence"),
        lambda: torch.topk(kb.least_confidence(lp), size), device, pairs=PAIRS)
    rows.append([f"candidate_subset least_confidence, {size} of [{n}, 1, 10]", f"{prefilter * 1e3:.2f} ms",
                 f"{scores_and_top * 1e3:.2f} ms (least_confidence + torch.topk)", f"{ratios['prefilter']:.2f}x"])
    print(rows[-1], flush=True)
    notes = [
        f"kbald_kernels runs what backend 'auto' picks on {device.type} tensors. Each row runs its two calls in "
        f"turn, {PAIRS} pairs after 3 warm-up pairs: the times are each column's median, the ratio the median "
        "of the pairs' ratios.",
        "The same points as a pool: the candidates' rows gathered beforehand (not timed); the picks differ, as "
        "random draws are keyed by pool index. The prefilter's reference is its scores' pass and a top-k.",
        f"Within {TARGET}x: {' / '.join(k for k, r in ratios.items() if r <= TARGET) or 'none'}. "
        f"Not within: {' / '.join(k for k, r in ratios.items() if r > TARGET) or 'none'}.",
    ]
    print(write_report("candidates", device, "Candidates at the cost of their rows", header, rows, notes,
                       {"ratios": ratios, "quick": args.quick}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
