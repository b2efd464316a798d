"""The ``kbald`` command (also ``python -m kbald_kernels``).

``kbald`` / ``kbald demo``: active learning on repeated digits over several seeds, then
the selections timed on an MNIST-sized pool against the naive torch way.
``kbald example``: select a batch with every method from a built-in synthetic pool
and print a table. ``kbald select``: select a batch from a file of
predictions or embeddings. ``kbald backends``: what this machine can run.
"""

import argparse
import json
import sys
import time
from pathlib import Path

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
    select_stochastic_bald,
)
from .acquisition.epig import select_epig
from .acquisition.uncertainty import PROXY_SCORES, UNCERTAINTY_SCORES, candidate_subset, select_uncertainty
from .backends import choose_backend, path_name
from .conversion import as_log_probs
from .example import example_pool
from .prediction_files import embeddings_from, load_arrays, load_shard, pick

METHODS = ("bald", "kbald2", "kbald3", "batchbald", "badge", "coreset", "power", "uncertainty", "epig")


def _methods(pool, batch_size, num_samples, seed):
    lp = pool.log_probs
    factors = badge_factors(pool.logits, pool.features)
    return [
        ("BALD (top-k)", "entropies", lambda: select_bald(lp, batch_size)),
        ("2-BALD", "kbald_pairwise_steps", lambda: select_kbald(lp, batch_size, order=2)),
        ("3-BALD", "add_triple_interactions", lambda: select_kbald(lp, batch_size, order=3)),
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
        select()  # the first call loads modules and compiles kernels: time the second
        if args.device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        selection = select()
        if args.device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        indices = selection.indices.tolist()
        shown = " ".join(map(str, indices[:8])) + (" …" if len(indices) > 8 else "")
        ran = path_name(choose_backend(op, None, pool.log_probs.device), pool.log_probs.device)
        rows.append((name, ran, f"{elapsed * 1e3:.1f}",
                     f"{float(selection.scores[-1]):.4f}", shown))
    header = ("method", "ran on", "ms", "last score", "indices")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    return 0


def _select(method, data, candidates, args):
    seed, size = args.seed, args.batch_size
    if method in ("badge", "coreset"):
        select = select_badge if method == "badge" else select_coreset
        return select(data, size, generator=seed, candidates=candidates)
    lp = data
    if method == "bald":
        return select_bald(lp, size, candidates=candidates)
    if method in ("kbald2", "kbald3"):
        return select_kbald(lp, size, order=int(method[-1]), candidates=candidates)
    if method == "batchbald":
        return select_batchbald(lp, size, num_samples=args.num_samples, generator=seed, candidates=candidates)
    if method == "uncertainty":
        return select_uncertainty(lp, size, score=args.score, candidates=candidates)
    if method == "epig":
        return select_epig(lp, args.target_log_probs, size, candidates=candidates)
    return select_stochastic_bald(lp, size, method="power", temperature=args.temperature, generator=seed,
                                  candidates=candidates)


def _prefilter(text):
    score, _, size = text.partition(":")
    if score not in PROXY_SCORES or not size.isdigit() or int(size) < 1:
        raise argparse.ArgumentTypeError(f"takes SCORE:SIZE with SCORE one of {', '.join(PROXY_SCORES)} and a "
                                         f"positive SIZE, e.g. least_confidence:5000; got {text!r}")
    return score, int(size)


def _candidates(args, data, arrays, subset=candidate_subset):
    """The candidate pool indices of --candidates or --prefilter (None: the whole pool);
    ``subset``: the candidate_subset of one process or of the sharded pool, whose
    ``data`` and ``arrays`` are then this rank's rows."""
    if args.candidates:
        return pick(load_arrays(args.candidates), args.candidates).to(args.device)
    if not args.prefilter:
        return None
    score, size = args.prefilter
    if score == "random":
        return subset(len(data[0] if isinstance(data, tuple) else data), size, generator=args.seed)
    if args.method not in ("badge", "coreset"):
        return subset(data, size, score=score)
    if score == "bald":
        raise ValueError(f"--prefilter bald needs posterior samples; {args.method} has one prediction a point "
                         "(its logits): use least_confidence, margin, entropy or random")
    if "logits" not in arrays:
        raise ValueError(f"--prefilter {score} for {args.method} needs an array named 'logits' [N, C] in "
                         f"{args.file} (or --prefilter random:{size})")
    logits = arrays["logits"].to(args.device, torch.promote_types(arrays["logits"].dtype, torch.float32))
    return subset(torch.log_softmax(logits, -1).unsqueeze(1), size, score=score)


def _log_probs_from(arrays, file, args):
    data = pick(arrays, file, args.key)
    if data.dim() != 3:
        raise ValueError(f"{file}: predictions must have shape [N, K, C], got {tuple(data.shape)}")
    if not data.dtype.is_floating_point:
        raise ValueError(f"{file}: predictions must be floating point, got {data.dtype}")
    return as_log_probs(data.to(args.device), layout=args.layout, kind="probs" if args.probs else "log_probs")


def _inputs(args, arrays):
    """The pool from ``arrays`` (FILE's, or this rank's slice of them) on the device:
    log-probabilities, or embeddings for badge and coreset; for epig, the targets
    are read into ``args.target_log_probs`` first."""
    if args.method == "epig":
        if not args.targets:
            raise ValueError("--method epig needs --targets FILE: predictions [T, K, C] for the target inputs")
        args.target_log_probs = _log_probs_from(load_arrays(args.targets), args.targets, args)
    if args.method not in ("badge", "coreset"):
        return _log_probs_from(arrays, args.file, args)
    data = embeddings_from(arrays, args.file, args.key)
    return tuple(d.to(args.device) for d in data) if isinstance(data, tuple) else data.to(args.device)


def run_select_distributed(args):
    """``kbald select --distributed`` under torchrun: each rank reads its slice of
    FILE, the ranks select together (kbald_kernels.distributed), rank 0 reports."""
    import os

    import torch.distributed as dist

    from . import distributed as kbd

    methods = {
        "bald": lambda d, a, c: kbd.select_bald(d, a.batch_size, candidates=c),
        "kbald2": lambda d, a, c: kbd.select_kbald(d, a.batch_size, order=2, candidates=c),
        "kbald3": lambda d, a, c: kbd.select_kbald(d, a.batch_size, order=3, candidates=c),
        "batchbald": lambda d, a, c: kbd.select_batchbald(d, a.batch_size, num_samples=a.num_samples,
                                                          generator=a.seed, candidates=c),
        "power": lambda d, a, c: kbd.select_stochastic_bald(d, a.batch_size, temperature=a.temperature,
                                                            generator=a.seed, candidates=c),
        "epig": lambda d, a, c: kbd.select_epig(d, a.target_log_probs, a.batch_size, candidates=c),
        "uncertainty": lambda d, a, c: kbd.select_uncertainty(d, a.batch_size, score=a.score, candidates=c),
        "badge": lambda d, a, c: kbd.select_badge(d, a.batch_size, generator=a.seed, candidates=c),
        "coreset": lambda d, a, c: kbd.select_coreset(d, a.batch_size, generator=a.seed, candidates=c),
    }
    if args.method not in methods:
        raise ValueError(f"--distributed takes --method {', '.join(methods)}, got {args.method}")
    if args.layout == "KNC":
        raise ValueError("--distributed shards FILE's first axis, the pool points: it takes --layout NKC or NCK")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ValueError("--distributed runs under torchrun (it sets RANK and WORLD_SIZE), e.g. "
                         "torchrun --nproc-per-node 2 -m kbald_kernels select --distributed ...")
    if args.device.startswith("cuda"):
        args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(args.device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        arrays = load_shard(args.file, rank, world)
        data = _inputs(args, arrays)
        candidates = _candidates(args, data, arrays, kbd.candidate_subset)
        start = time.perf_counter()
        selection = methods[args.method](data, args, candidates)
        elapsed = time.perf_counter() - start
        if rank == 0:
            among = "" if candidates is None else f", among {len(candidates)} candidates"
            _report(args, selection, elapsed, f" over {world} processes{among}")
    finally:
        dist.destroy_process_group()
    return 0


def run_select(args):
    if args.distributed:
        return run_select_distributed(args)
    arrays = load_arrays(args.file)
    data = _inputs(args, arrays)
    start = time.perf_counter()
    candidates = _candidates(args, data, arrays)
    selection = _select(args.method, data, candidates, args)
    elapsed = time.perf_counter() - start
    _report(args, selection, elapsed, "" if candidates is None else f" (among {len(candidates)} candidates)")
    return 0


def _report(args, selection, elapsed, where):
    indices = selection.indices.tolist()
    scores = [float(s) for s in selection.scores]
    if args.output:
        out = Path(args.output)
        if out.suffix.lower() == ".json":
            # JSON has no infinity: a first k-means++ pick (no center yet) scores null.
            finite = [s if s == s and abs(s) != float("inf") else None for s in scores]
            out.write_text(json.dumps({"method": args.method, "indices": indices, "scores": finite}, indent=1))
        else:
            out.write_text("rank,index,score\n" + "".join(f"{r},{i},{s!r}\n"
                                                           for r, (i, s) in enumerate(zip(indices, scores))))
    print(f"{args.method}: {len(indices)} of {args.file}{where} in {elapsed * 1e3:.1f} ms"
          + (f", written to {args.output}" if args.output else ""))
    print(f"{'rank':>4}  {'index':>8}  score")
    for r, (i, s) in enumerate(zip(indices, scores)):
        if r == 10:
            print(f"  … {len(indices) - 10} more")
            break
        print(f"{r:>4}  {i:>8}  {s:.6g}")


def run_demo_command(args):
    from . import demo

    begin = time.perf_counter()
    settings = {key: getattr(args, key) if getattr(args, key) is not None else
                (demo.QUICK if args.quick else demo.DEFAULTS)[key] for key in demo.DEFAULTS}
    methods = demo.METHODS if args.methods == "all" else tuple(m.strip() for m in args.methods.split(",")
                                                                if m.strip())
    unknown = [m for m in methods if m not in demo.METHODS]
    if unknown or not methods:
        raise ValueError(f"--methods takes a comma-separated subset of {', '.join(demo.METHODS)}, or all; "
                         f"got {args.methods!r}")
    if settings["timing_pool"] and settings["timing_pool"] < 1000:
        raise ValueError(f"--timing-pool must be 0 (no timing table) or at least 1000, got {settings['timing_pool']}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (fail before the run, not after it)
        except ImportError:
            raise RuntimeError("the demo's plot needs matplotlib: pip install 'kbald_kernels[demo]', "
                               "or pass --plot ''") from None
    print(demo.describe(settings, args.device), flush=True)
    bar = None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=settings["rounds"] + (4 if settings["timing_pool"] else 0), desc="kbald", unit="step")
    try:
        curves = demo.run_curves(seeds=settings["seeds"], rounds=settings["rounds"], acquire=settings["acquire"],
                                 samples=settings["samples"], epochs=settings["epochs"], methods=methods,
                                 num_configurations=settings["num_configurations"], candidates=args.candidates,
                                 device=args.device, progress=bar)
        print()
        print(demo.format_curves(curves, args.device))
        if args.plot:
            demo.plot_curves(curves, args.plot)
            print(f"plot: {args.plot}")
        if settings["timing_pool"]:
            rows = demo.run_timing(settings["timing_pool"], settings["samples"],
                                   num_configurations=settings["num_configurations"], device=args.device,
                                   progress=bar)
            print()
            print(demo.format_timing(rows, settings["timing_pool"], settings["samples"], 128, args.device))
    finally:
        if bar is not None:
            bar.close()
    print(f"\nkbald: {time.perf_counter() - begin:.0f} s in all")
    return 0


def run_check(args):
    from .check import main as check_main

    return check_main(args)


def run_backends(_args):
    statuses = available_backends()
    # backend="cuda" is two paths: the CUDA kernels on CUDA tensors, the host C++ twins on CPU tensors.
    cuda, _, host = statuses["cuda"].reason.partition("; CPU tensors: ")
    rows = [("torch reference", "torch", statuses["torch"].available, statuses["torch"].reason),
            ("Triton", "triton", statuses["triton"].available, statuses["triton"].reason),
            ("CUDA", "cuda, CUDA tensors", statuses["cuda"].available, cuda),
            ("host C++", "cuda, CPU tensors", host.startswith("host C++ twin"), host or statuses["cuda"].reason)]
    for path, backend, available, reason in rows:
        print(f"{path:<16} {'(backend=' + backend + ')':<28} {'yes' if available else 'no ':<4} {reason}")
    return 0


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="kbald", description="Fast Bayesian batch active learning.")
    sub = parser.add_subparsers(dest="command")
    example = sub.add_parser("example", help="select a batch with every method from a built-in synthetic pool")
    example.add_argument("--pool-size", type=_positive, default=2000)
    example.add_argument("--samples", type=_positive, default=20, help="posterior samples K")
    example.add_argument("--classes", type=_positive, default=10)
    example.add_argument("--batch-size", type=_positive, default=10)
    example.add_argument("--num-samples", type=_positive, default=1000, help="BatchBALD configurations M")
    example.add_argument("--seed", type=int, default=0)
    example.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    example.set_defaults(run=run_example)
    demo = sub.add_parser("demo", help="active learning on repeated digits over seeds, then selection time on an "
                                       "MNIST-sized pool against naive torch (the default command)")
    demo.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds, 2 rounds, tiny networks and pool")
    demo.add_argument("--seeds", type=_positive, help="seeds 0..N-1, mean ± std over them (default 3)")
    demo.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    demo.add_argument("--methods", default="random,bald,kbald2,batchbald,badge",
                      help="comma-separated, or all: random, bald, kbald2, batchbald, badge, kbald3, power, epig, "
                           "badge_random, badge_lc")
    demo.add_argument("--rounds", type=_positive, help="acquisition rounds (default 15)")
    demo.add_argument("--acquire", type=_positive, help="labels acquired per round (default 10)")
    demo.add_argument("--samples", type=_positive, help="MC-dropout samples K (default 20)")
    demo.add_argument("--epochs", type=_positive, help="training epochs each round (default 300)")
    demo.add_argument("--num-configurations", type=_positive, help="BatchBALD's label configurations M (default 200)")
    demo.add_argument("--candidates", type=_positive, default=250,
                      help="candidate-subset size of badge_random and badge_lc")
    demo.add_argument("--timing-pool", type=int, help="N of the timing table's pool (default 60 000; 0: no table)")
    demo.add_argument("--plot", default="kbald_demo.png", help="where to save the accuracy plot ('' for none)")
    demo.set_defaults(run=run_demo_command)
    select = sub.add_parser("select", help="select a batch from a file of predictions or embeddings")
    select.add_argument("file", help=".npy, .npz, .pt or .safetensors: log-probabilities [N, K, C] (or "
                                     "probabilities with --probs); embeddings [N, D] or features + residuals "
                                     "(or features + logits) for badge and coreset")
    select.add_argument("--method", choices=METHODS, required=True)
    select.add_argument("--batch-size", type=_positive, required=True)
    select.add_argument("--probs", action="store_true", help="the file holds probabilities, not log-probabilities")
    select.add_argument("--layout", choices=("NKC", "NCK", "KNC"), default="NKC")
    select.add_argument("--key", help="which array of a file that holds several")
    select.add_argument("--num-samples", type=_positive, default=10_000, help="BatchBALD configurations M")
    select.add_argument("--temperature", type=float, default=1.0, help="for power (stochastic) BALD")
    select.add_argument("--targets", help="for epig: predictions [T, K, C] for the target inputs, from the same "
                                          "posterior samples, in the format of FILE")
    select.add_argument("--score", choices=UNCERTAINTY_SCORES, default="entropy",
                        help="for uncertainty: what ranks the points (margin: smallest first)")
    select.add_argument("--distributed", action="store_true",
                        help="under torchrun: each process reads its slice of FILE (an .npy is memory-mapped) and "
                             "the processes select together (gloo on CPU, NCCL with --device cuda)")
    restrict = select.add_mutually_exclusive_group()
    restrict.add_argument("--candidates", help="pick only among these pool points: a file of pool indices or a "
                                               "boolean mask [N], in the formats of FILE")
    restrict.add_argument("--prefilter", type=_prefilter, metavar="SCORE:SIZE",
                          help="pick only among SIZE candidates: a seeded random subset (random:SIZE) or the "
                               f"most uncertain by a proxy ({', '.join(PROXY_SCORES[1:])}; for badge and "
                               "coreset from the file's logits, bald excepted)")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--device", default="cpu")
    select.add_argument("--output", "-o", help="write indices and scores to a .csv or .json file")
    select.set_defaults(run=run_select)
    backends = sub.add_parser("backends", help="say which backends this machine can run, and why not")
    backends.set_defaults(run=run_backends)
    check = sub.add_parser("check", help="run every op on every backend this machine can run against the float64 "
                                         "reference: values, picks, time (exit 1 on any failure)")
    check.add_argument("--device", default="cpu", help="cpu (the host C++ twins) or cuda (the Triton and CUDA "
                                                       "kernels); default cpu")
    check.add_argument("--quick", action="store_true", help="two shapes instead of three (under a minute on a GPU)")
    check.add_argument("--interpret", action="store_true",
                       help="with --device cpu: also run the Triton kernels under the interpreter (slow)")
    check.add_argument("--report", help="also write the table and the machine to this Markdown file")
    check.set_defaults(run=run_check)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["demo", *argv]
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"kbald: error: {exc}", file=sys.stderr)
        return 2
