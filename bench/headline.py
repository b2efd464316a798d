"""The headline rows of every report, each against its DESIGN.md target, with short
warm-ups: the first benchmark a lent GPU runs.

    python -m bench.headline [--device cuda] [--quick]

BALD whole call on P1 and P3, 2-BALD batch 10 / 100 on P1, BatchBALD batch 10
(M=10 000) on P1, EPIG on P4, the whole k-means++ ordering of P2 (factored and
dense) and a BADGE batch of 100 from 60 000 points. "vs target" is the target's
figure over the measured one for a time (at least 1.0 meets it) and the measured
fraction over the target fraction for a rate. ``--quick`` shrinks every problem
(a smoke run: its ratios mean nothing). Writes bench/results/headline-<device>.{md,json}.
"""

import argparse

import torch

import kbald_kernels as kb

from .batchbald import matmul_rate
from .common import measure, memory_bandwidth, write_report
from .information import pool
from .kmeanspp import badge_pool, dense_of

P1, P3, P2 = (60_000, 100, 10), (1_000_000, 20, 10), (15_000, 256, 10)
BADGE_POOL = (60_000, 256, 10)
QUICK_SCALE = 50  # --quick divides every N by this

# (row, problem, kind, target, make). "time": seconds at most; "bandwidth": fraction of the
# measured copy bandwidth; "fma": fraction of the fp32 matmul rate. make(data) gives
# (call, work): work is bytes read ("bandwidth") or flops ("fma"); data builds the pools.
ROWS = [
    ("BALD P1", P1, "bandwidth", 0.8, lambda d: d.scores(P1, kb.bald)),
    ("BALD P3", P3, "bandwidth", 0.8, lambda d: d.scores(P3, kb.bald)),
    ("2-BALD batch 10, P1", P1, "time", 5e-3, lambda d: (lambda: kb.select_kbald(d.log_probs(P1), 10), None)),
    ("2-BALD batch 100, P1", P1, "time", 30e-3, lambda d: (lambda: kb.select_kbald(d.log_probs(P1), 100), None)),
    ("BatchBALD batch 10, M=10 000, P1", P1, "time", 0.5,
     lambda d: (lambda: kb.select_batchbald(d.log_probs(P1), 10, num_samples=10_000, generator=0), None)),
    ("EPIG P4 (1 000 targets)", P1, "fma", 0.5, lambda d: d.epig(P1, 1000)),
    ("k-means++ whole ordering, P2 factored", P2, "time", 0.2,
     lambda d: (lambda: kb.kmeanspp(d.factors(P2), None, generator=0), None)),
    ("k-means++ whole ordering, P2 dense", P2, "time", 1.0,
     lambda d: (lambda: kb.kmeanspp(d.dense(P2), None, generator=0), None)),
    ("BADGE batch 100, N=60 000", BADGE_POOL, "time", 10e-3,
     lambda d: (lambda: kb.select_badge(d.factors(BADGE_POOL), 100, generator=0), None)),
]


class Pools:
    """The rows' inputs on ``device``, built once each (every N divided by QUICK_SCALE with ``quick``)."""

    def __init__(self, device, quick):
        self.device, self.quick, self._made = device, quick, {}

    def _n(self, n):
        return max(200, n // QUICK_SCALE) if self.quick else n

    def _once(self, key, build):
        if key not in self._made:
            self._made[key] = build()
        return self._made[key]

    def log_probs(self, shape, seed=1):
        n, k, c = shape
        return self._once(("lp", shape, seed), lambda: pool(self._n(n), k, c, self.device, seed=seed))

    def factors(self, shape):
        n, h, c = shape
        return self._once(("factors", shape), lambda: badge_pool(self._n(n), h, c, self.device))

    def dense(self, shape):
        return self._once(("dense", shape), lambda: dense_of(*self.factors(shape)))

    def scores(self, shape, op):
        lp = self.log_probs(shape)
        return (lambda: op(lp)), lp.numel() * lp.element_size()

    def epig(self, shape, n_targets):
        lp = self.log_probs(shape)
        targets = self.log_probs((n_targets, *shape[1:]), seed=2)
        return (lambda: kb.epig(lp, targets)), 2 * lp.shape[0] * targets.shape[0] * shape[1] * shape[2] ** 2


def rows(device, quick):
    """(row, problem, kind, target, measured text, ratio to target) of every headline row."""
    bandwidth = memory_bandwidth(device, megabytes=64 if quick else 256)
    fma_rate = matmul_rate(device, n=512 if quick else 4096)
    data = Pools(device, quick)
    out = []
    for name, problem, kind, target, make in ROWS:
        call, work = make(data)
        seconds = measure(call, device, repeats=1 if name.startswith("BatchBALD") else (2 if quick else 5))
        if kind == "time":
            measured, ratio = f"{seconds * 1e3:.1f} ms", target / seconds
        else:
            fraction = work / seconds / (bandwidth if kind == "bandwidth" else fma_rate)
            measured, ratio = f"{seconds * 1e3:.2f} ms, {100 * fraction:.0f} %", fraction / target
        out.append((name, "x".join(map(str, problem)), kind, target, measured, ratio))
        print(out[-1], flush=True)
    return out


def target_text(kind, target):
    if kind == "time":
        return f"≤ {target * 1e3:g} ms"
    return f"≥ {100 * target:g} % of {'copy bandwidth' if kind == 'bandwidth' else 'the fp32 matmul rate'}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help=f"every pool {QUICK_SCALE}x smaller, for a smoke run")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    measured = rows(device, args.quick)
    table = [[name, problem, target_text(kind, target), text, f"{ratio:.2f}", "yes" if ratio >= 1 else "no"]
             for name, problem, kind, target, text, ratio in measured]
    notes = ["'vs target': the target over the measured time, or the measured fraction over the target "
             "fraction; at least 1.0 meets the DESIGN.md target (set for an H100/H200, whole call).",
             "Copy bandwidth: a 256 MiB device-to-device copy, read + write bytes; the fp32 matmul rate: a "
             "4096² float32 matmul (no TF32).",
             "Each row after one warm-up call (Triton compiles there); BatchBALD is timed once."]
    if args.quick:
        notes.append(f"--quick: every pool {QUICK_SCALE}x smaller; the ratios do not measure the targets.")
    print(write_report("headline", device, "Headline rows against the DESIGN.md targets",
                       ["row", "problem", "target", "measured", "vs target", "meets"], table, notes,
                       extra={"quick": args.quick,
                              "ratios": {name: ratio for name, _, _, _, _, ratio in measured}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
