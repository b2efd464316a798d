"""The ``kbald`` command (also ``python -m kbald_kernels``).

``kbald`` / ``kbald example``: select a batch with every method from the built-in
example pool and print a table. ``kbald backends``: what this machine can run.
"""

import argparse
import sys
import time

import torch

from . import (
    available_backends,
    badge_factors,
    kmeanspp,
    select_badge,
    select_batchbald,
    select_bald,
    select_coreset,
    select_kbald,
)
from .backends import choose_backend
from .example import example_pool


def _methods(pool, batch_size, num_samples, seed):
    lp = pool.log_probs
    factors = badge_factors(pool.logits, pool.features)
    return [
        ("BALD (top-k)", "bald", lambda: select_bald(lp, batch_size)),
        ("2-BALD", "pairwise_mutual_information", lambda: select_kbald(lp, batch_size, order=2)),
        ("3-BALD", "joint_entropy", lambda: select_kbald(lp, batch_size, order=3)),
        (f"BatchBALD (M={num_samples})", "accumulate_joint_entropy",
         lambda: select_batchbald(lp, batch_size, num_samples=num_samples, generator=seed)),
        ("BADGE (factored)", "kmeanspp_steps", lambda: select_badge(factors, batch_size, generator=seed)),
        ("k-means++ (features)", "kmeanspp_steps", lambda: kmeanspp(pool.features, batch_size, generator=seed)),
        ("CORESET (features)", "kmeanspp_steps", lambda: select_coreset(pool.features, batch_size, generator=seed)),
    ]


def run_example(args):
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    pool = example_pool(args.pool_size, args.samples, args.classes, seed=args.seed, device=args.device)
    n, k, c = pool.log_probs.shape
    print(f"Example pool: N={n} points, K={k} posterior samples, C={c} classes, "
          f"features {tuple(pool.features.shape)} on {args.device}; batch of {args.batch_size}")
    rows = []
    for name, op, select in _methods(pool, args.batch_size, args.num_samples, args.seed):
        start = time.perf_counter()
        selection = select()
        if args.device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        indices = selection.indices.tolist()
        shown = " ".join(map(str, indices[:8])) + (" …" if len(indices) > 8 else "")
        rows.append((name, choose_backend(op, None, pool.log_probs.device), f"{elapsed * 1e3:.1f}",
                     f"{float(selection.scores[-1]):.4f}", shown))
    header = ("method", "backend", "ms", "last score", "indices")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    return 0


def run_backends(_args):
    for name, status in available_backends().items():
        print(f"{name:<7} {'yes' if status.available else 'no ':<4} {status.reason}")
    return 0


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="kbald", description="Fast Bayesian batch active learning.")
    sub = parser.add_subparsers(dest="command")
    example = sub.add_parser("example", help="select a batch with every method from a built-in pool (default)")
    example.add_argument("--pool-size", type=_positive, default=2000)
    example.add_argument("--samples", type=_positive, default=20, help="posterior samples K")
    example.add_argument("--classes", type=_positive, default=10)
    example.add_argument("--batch-size", type=_positive, default=10)
    example.add_argument("--num-samples", type=_positive, default=1000, help="BatchBALD configurations M")
    example.add_argument("--seed", type=int, default=0)
    example.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    example.set_defaults(run=run_example)
    backends = sub.add_parser("backends", help="say which backends this machine can run, and why not")
    backends.set_defaults(run=run_backends)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["example", *argv]
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"kbald: error: {exc}", file=sys.stderr)
        return 2
