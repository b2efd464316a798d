"""baal's own heuristics against the baal front (kbald_kernels.compat.baal) on the
same input: what a baal user gains by changing one import.

    python -m bench.fronts [--quick]

Rows: BALD and Entropy on probabilities [N, C, K] (N=100 000, C=10, K=20), on
segmentation maps [N, C, 32, 32, K] (N=1 000, reduction "mean") and on a stream of
10 chunks of the first pool; float32 numpy, as baal's ModelWrapper hands them
over; ``get_ranks`` timed whole (scores, reduction and ranking). Writes
bench/results/fronts-<device>.{md,json}. baal runs on the CPU only.
"""

import argparse

import numpy as np

from kbald_kernels.compat import baal as front

from .common import measure, write_report


def probabilities(shape, seed):
    logits = np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return probs / probs.sum(1, keepdims=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pools 20x smaller, for a smoke run")
    args = parser.parse_args(argv)
    from baal.active import heuristics

    scale = 20 if args.quick else 1
    pool = probabilities((100_000 // scale, 10, 20), seed=0)
    maps = probabilities((1000 // scale, 10, 32, 32, 20), seed=1)
    chunks = np.array_split(pool, 10)
    cases = [("[N, C, K]", f"N={pool.shape[0]} C=10 K=20", "none", lambda: pool),
             ("[N, C, 32, 32, K], mean", f"N={maps.shape[0]} C=10 K=20", "mean", lambda: maps),
             ("stream of 10 chunks", f"N={pool.shape[0]} C=10 K=20", "none", lambda: iter_chunks(chunks))]
    rows = []
    for name in ("BALD", "Entropy"):
        for form, problem, reduction, data in cases:
            theirs, ours = getattr(heuristics, name)(reduction=reduction), getattr(front, name)(reduction=reduction)
            baal_s = measure(lambda: theirs.get_ranks(data()), "cpu", repeats=3)
            front_s = measure(lambda: ours.get_ranks(data()), "cpu", repeats=3)
            same = np.array_equal(theirs.get_ranks(data())[0][:100], ours.get_ranks(data())[0][:100])
            rows.append([name, form, problem, f"{baal_s * 1e3:.0f} ms", f"{front_s * 1e3:.0f} ms",
                         f"{baal_s / front_s:.1f}x", "yes" if same else "no"])
            print(rows[-1], flush=True)
    notes = ["baal: `baal.active.heuristics.<name>(reduction=...)` (baal 2.1, numpy); the front: "
             "`kbald_kernels.compat.baal.<name>` with the same arguments, on the host C++ twin.",
             "'same top 100': the first 100 ranks agree (Entropy of probabilities: baal averages the samples "
             "first, as the front does, so the scores agree too).",
             "Each time the median of 3 calls after a warm-up, conversion from numpy included."]
    print(write_report("fronts", "cpu", "baal's heuristics against the kbald_kernels front",
                       ["heuristic", "input", "problem", "baal", "front", "speed-up", "same top 100"], rows, notes))
    return 0


def iter_chunks(chunks):
    """A generator, as baal's predict_on_dataset_generator yields (baal detects a stream by its type)."""
    yield from chunks


if __name__ == "__main__":
    raise SystemExit(main())
