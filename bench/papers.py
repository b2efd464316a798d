"""The papers' claims redone on scikit-learn's digits, with error bars: the k-BALD paper's Figures 1-3
and Table 1, and BADGE's variable batches and acceleration.

    python -m bench.papers [--device cuda] [--quick] [--seeds 5] [--out DIR]

Figures 1-3 run on *repeated digits*, built as BatchBALD's Repeated-MNIST: each pool
image three times, each copy with its own Gaussian noise of std 0.1 of the pixel range;
the test set and EPIG's targets stay clean. The BADGE experiments run on plain digits.
The demo's MC-dropout network (K=20 posterior samples; 100 for Figure 3) is retrained
from scratch every round. Each seed draws its own split, noise and initial labels (two
per class), the same for every method. Prediction (the forward passes, BADGE's
embeddings) is timed apart from the selection everywhere. On a CPU that other jobs
share, OMP_NUM_THREADS=1 keeps the selections' timings steady (two threads wait on the
busier core). Writes papers-<device>.md and .json (the numbers, the commit and the
seeds) and one PNG per figure to DIR (default bench/results/).
"""

import argparse
import json
import math
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

import kbald_kernels as kb
from kbald_kernels.demo import _accuracy, _digits, _mc_log_probs, _predict, _train

from .common import RESULTS, device_name, duration, measure, slug, synchronize

INITIAL_PER_CLASS = 2
NOISE_STD = 0.1
COPIES = 3
BATCHBALD_CONFIGURATIONS = 10_000  # the library's default: exact through a batch of 5 at C=10
# Fixed before the runs: how close counts as "keeps the accuracy" / "comparable", and what "falls behind" means.
MARGIN_POINTS = 1.0
# The k-BALD paper's Table 1 (RTX 2080 Super), seconds.
AT_SCALE_BATCHES = (10, 100)
PAPER_TABLE1 = {("BatchBALD", 5): 60, ("BatchBALD", 10): 1800, ("2-BALD", 5): 60, ("2-BALD", 10): 120}


@dataclass(frozen=True)
class Scale:
    test: int = 400
    targets: int = 200  # EPIG's target inputs, held out of the pool
    pool: int = 1197  # pool images before repetition: the rest of digits' 1 797
    budget: int = 150  # labels acquired after the initial 20
    epochs: int = 300
    samples: int = 20
    dynamic_max: int = 20
    figure2_batches: tuple = (5, 10, 20, 40)
    figure3_batch: int = 40
    figure3_samples: int = 100  # BatchBALD's joint MI cannot pass log K: K=20 caps it at 3.0 nats
    table_pool: tuple = (60_000, 100, 10)
    table_batches: tuple = (5, 10)
    badge_schedule: tuple = (5, 10, 20, 40)
    badge_pool: tuple = (60_000, 128, 10)  # N, H, C of the synthetic embeddings timed at MNIST size
    candidate_fraction: float = 0.1
    grid_step: int = 10


FULL = Scale()
QUICK = Scale(test=200, targets=40, pool=120, budget=20, epochs=30, dynamic_max=10, figure2_batches=(5, 10, 20),
              figure3_batch=8, figure3_samples=20, table_pool=(2_000, 20, 10), badge_schedule=(5, 10),
              badge_pool=(2_000, 32, 10), grid_step=5)


@dataclass
class Split:
    x_pool: torch.Tensor
    y_pool: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_targets: torch.Tensor
    start: torch.Tensor


def make_split(seed, scale, repeated, device):
    x, y = _digits(seed)
    x_test, y_test = x[: scale.test], y[: scale.test]
    x_targets = x[scale.test : scale.test + scale.targets]
    x_pool = x[scale.test + scale.targets :][: scale.pool]
    y_pool = y[scale.test + scale.targets :][: scale.pool]
    # The initial labels come from the first copy, so they are the same images with or without repetition.
    start = torch.cat([torch.nonzero(y_pool == c)[:INITIAL_PER_CLASS, 0] for c in range(10)])
    if repeated:
        gen = torch.Generator().manual_seed(seed)
        x_pool = torch.cat([x_pool + NOISE_STD * torch.randn(x_pool.shape, generator=gen) for _ in range(COPIES)])
        y_pool = y_pool.repeat(COPIES)
    return Split(*(t.to(device) for t in (x_pool, y_pool, x_test, y_test, x_targets, start)))


@contextmanager
def _threads(device, n):
    """Full-batch training of the demo's small network is a chain of tiny ops: on two threads of a
    shared 2-core CPU each op waits for the busier core (measured tens of times slower than one)."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _timed(fn, device):
    begin = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - begin


@dataclass
class Method:
    """An acquisition: what it predicts (a method name of the demo's ``_predict``), how it selects
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


def _subset_size(pool, b, scale):
    return min(pool, max(b, int(scale.candidate_fraction * pool)))


def _badge(candidates, scale):
    def select(prediction, b, key):
        factors, logits = prediction
        subset = None
        if candidates == "random":
            subset = kb.candidate_subset(len(logits), _subset_size(len(logits), b, scale), generator=key)
        elif candidates == "least_confidence":
            subset = kb.candidate_subset(torch.log_softmax(logits, -1).unsqueeze(1),
                                         _subset_size(len(logits), b, scale), score="least_confidence")
        return kb.select_badge(factors, b, generator=key, candidates=subset).indices
    return select


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
    mc = "bald"  # the demo's _predict name for plain MC-dropout log-probabilities
    return {
        "random": Method("random, batch 10", "random", _random, _fixed(10)),
        "bald": Method("BALD top-k, batch 10", mc, lambda lp, b, key: kb.select_bald(lp, b).indices, _fixed(10)),
        "batchbald": Method("BatchBALD, batch 5", mc, lambda lp, b, key: kb.select_batchbald(
            lp, b, num_samples=BATCHBALD_CONFIGURATIONS, generator=key).indices, _fixed(5)),
        "kbald2": Method("2-BALD, batch 10", mc, lambda lp, b, key: kb.select_kbald(lp, b, order=2).indices,
                         _fixed(10)),
        "kbald3": Method("3-BALD, batch 10", mc, lambda lp, b, key: kb.select_kbald(lp, b, order=3).indices,
                         _fixed(10)),
        "dynamic": Method(f"dynamic 2-BALD, at most {scale.dynamic_max}", mc,
                          lambda lp, b, key: kb.select_kbald_dynamic(lp, b, tolerance=0.1).indices,
                          _fixed(scale.dynamic_max)),
        "conservative": Method("conservative, at most 10", mc, lambda lp, b, key: kb.select_conservative_bald(
            lp, b, threshold=0.05).indices, _fixed(10)),
        "power": Method("PowerBALD, batch 10", mc, lambda lp, b, key: kb.select_stochastic_bald(
            lp, b, method="power", generator=key).indices, _fixed(10)),
        "epig": Method("EPIG, batch 10", "epig", lambda p, b, key: kb.select_epig(*p, b).indices, _fixed(10)),
    }


def run_curve(method, split, seed, scale, device):
    """One active-learning run from the split's initial labels until ``scale.budget`` labels are acquired."""
    labelled = torch.zeros(len(split.y_pool), dtype=torch.bool, device=split.y_pool.device)
    labelled[split.start] = True
    goal = len(split.start) + scale.budget
    out = {"labels": [], "accuracy": [], "predict_s": [], "select_s": [], "batches": []}
    round_index = 0
    while True:
        with _threads(device, 1):
            model = _train(split.x_pool[labelled], split.y_pool[labelled], scale.epochs, seed, device)
        out["labels"].append(int(labelled.sum()))
        out["accuracy"].append(_accuracy(model, split.x_test, split.y_test))
        left = goal - out["labels"][-1]
        if left <= 0:
            return out
        pool = torch.nonzero(~labelled)[:, 0]
        b = min(method.batch(round_index), left, len(pool))
        key = seed * 1000 + round_index
        # The forward passes run on one thread too: they are the model's cost, not the library's.
        with _threads(device, 1):
            prediction, predict_s = _timed(lambda: _predict(method.predicts, model, split.x_pool[pool],
                                                            split.x_targets, scale.samples), device)
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
    results = run_methods(kbald_methods(scale), splits, scale, device, "figure 1")
    bb, k2, bald = (results[m]["area"] for m in ("batchbald", "kbald2", "bald"))
    claim = {"held": bool(k2 >= bb - MARGIN_POINTS and bald <= bb - MARGIN_POINTS),
             "batchbald_area": bb, "kbald2_area": k2, "bald_area": bald,
             "finals": {m: [results[m]["final"], results[m]["final_std"]] for m in ("batchbald", "kbald2", "bald")}}
    return {"methods": results, "claim": claim}


def figure2(splits, scale, device, kbald2_batch10):
    methods = kbald_methods(scale)
    results = {}
    for b in scale.figure2_batches:
        if b == 10:
            results[b] = kbald2_batch10  # the same runs as Figure 1's 2-BALD
            continue
        method = Method(f"2-BALD, batch {b}", "bald", methods["kbald2"].select, _fixed(b))
        results[b] = run_methods({f"kbald2_b{b}": method}, splits, scale, device, "figure 2")[f"kbald2_b{b}"]
    return {"batches": {str(b): r for b, r in results.items()}}


def figure3(splits, scale, device):
    """Within one acquisition of ``figure3_batch`` points after the initial labels: each 2-BALD pick's
    increment against BatchBALD's marginal gain H[Y_S ∪ {pick}] - H[Y_S] - H[pick | W] of the same pick."""
    size = scale.figure3_batch
    per_seed = []
    for seed, split in splits.items():
        with _threads(device, 1):
            model = _train(split.x_pool[split.start], split.y_pool[split.start], scale.epochs, seed, device)
        unlabelled = torch.ones(len(split.y_pool), dtype=torch.bool, device=split.y_pool.device)
        unlabelled[split.start] = False
        lp = _mc_log_probs(model, split.x_pool[unlabelled], scale.figure3_samples)
        picks = kb.select_kbald(lp, size, order=2)
        kbald2 = torch.diff(picks.scores.double(), prepend=torch.zeros(1, dtype=torch.float64, device=lp.device))
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
        stop = len(kb.select_kbald_dynamic(lp, size, tolerance=0.1).indices)
        per_seed.append({"kbald2": kbald2.tolist(), "batchbald": gains, "dynamic_stop": stop})
    k2 = np.array([s["kbald2"] for s in per_seed])
    bb = np.array([s["batchbald"] for s in per_seed])
    mean_k2, mean_bb = k2.mean(0), bb.mean(0)
    negative = np.nonzero(mean_k2 < 0)[0]
    exact_picks = int(math.floor(math.log(BATCHBALD_CONFIGURATIONS) / math.log(lp.shape[-1]) + 1e-9)) + 1
    stops = [s["dynamic_stop"] for s in per_seed]
    claim = {"first_negative_pick": int(negative[0]) + 1 if len(negative) else None,
             "seeds_with_negative_2bald": int((k2 < 0).any(1).sum()),
             "smallest_2bald": float(k2.min()),
             "picks_where_2bald_below_batchbald": float((k2 < bb).mean()),
             "last_pick": {"kbald2": float(mean_k2[-1]), "batchbald": float(mean_bb[-1])},
             "batch_total": {"kbald2": float(k2.sum(1).mean()), "batchbald": float(bb.sum(1).mean())},
             "min_mean_batchbald_gain": float(mean_bb.min()),
             "log_k": math.log(scale.figure3_samples),
             "dynamic_stop_mean": float(np.mean(stops)), "dynamic_stops": stops}
    claim["held"] = bool(len(negative) > 0 and claim["picks_where_2bald_below_batchbald"] > 0.5)
    return {"batch": size, "samples": scale.figure3_samples, "exact_through_pick": exact_picks, "seeds": per_seed,
            "kbald2_mean": mean_k2.tolist(), "kbald2_std": k2.std(0).tolist(),
            "batchbald_mean": mean_bb.tolist(), "batchbald_std": bb.std(0).tolist(), "claim": claim}


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


def badge_experiments(splits, scale, device):
    variable = _variable_badge(scale)
    methods = {"random": Method("random, batch 10", "random", _random, _fixed(10)),
               "badge": Method("BADGE, whole pool, batch 10", "badge", _badge(None, scale), _fixed(10)),
               "badge_random": Method(f"BADGE, random {scale.candidate_fraction:.0%} of the pool", "badge",
                                      _badge("random", scale), _fixed(10)),
               "badge_lc": Method(f"BADGE, least-confidence {scale.candidate_fraction:.0%}", "badge",
                                  _badge("least_confidence", scale), _fixed(10)),
               "badge_variable": variable}
    results = run_methods(methods, splits, scale, device, "BADGE")
    if not variable.notes["checks"]:
        raise AssertionError("no BADGE ordering prefix was checked")
    whole = results["badge"]
    accel = {"pool": {name: results[name] for name in ("badge", "badge_random", "badge_lc")}}
    accel["at_scale"] = _badge_at_scale(scale, device)
    claim = {}
    for name in ("badge_random", "badge_lc"):
        saved = 1 - results[name]["select_ms"] / whole["select_ms"]
        saved_with_prediction = 1 - ((results[name]["select_ms"] + results[name]["predict_ms"])
                                     / (whole["select_ms"] + whole["predict_ms"]))
        scale_saved = {b: 1 - t[name] / t["badge"] for b, t in accel["at_scale"].items()}
        gap = results[name]["area"] - whole["area"]
        claim[name] = {"selection_time_saved": saved, "with_prediction_saved": saved_with_prediction,
                       "selection_time_saved_at_scale": scale_saved, "area_gap_points": gap,
                       "held": bool(saved > 0.9 and gap >= -MARGIN_POINTS)}
    accel["claim"] = claim
    variable_result = {"schedule": list(scale.badge_schedule), "prefix_checks": variable.notes["checks"],
                       "sizes_checked": sorted(variable.notes["sizes"]),
                       "methods": {name: results[name] for name in ("badge_variable", "badge", "random")}}
    return variable_result, accel


def _badge_at_scale(scale, device):
    """Selection seconds of BADGE batches of 10 and 100 on synthetic factors of an MNIST-sized pool:
    the digits pool is small enough that fixed costs hide what the candidate subset saves."""
    n, h, c = scale.badge_pool
    gen = torch.Generator().manual_seed(0)
    features = torch.relu(torch.randn(n, h, generator=gen)).to(device)
    logits = (2 * torch.randn(n, c, generator=gen)).to(device)
    prediction = (kb.badge_factors(logits, features), logits)
    return {b: {name: measure(lambda: _badge(candidates, scale)(prediction, b, 0), device, repeats=5)
                for name, candidates in (("badge", None), ("badge_random", "random"),
                                         ("badge_lc", "least_confidence"))}
            for b in AT_SCALE_BATCHES}


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


def write_figures(report, stem, seeds):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    paths = {}
    n = f"mean ± std over {len(seeds)} seeds"

    def save(fig, key):
        paths[key] = Path(f"{stem}-{key}.png")
        fig.tight_layout()
        fig.savefig(paths[key], dpi=120)
        plt.close(fig)

    # Nine bands on one axis hide each other: the claim's four methods, then the variants against BatchBALD.
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    methods = report["figure1"]["methods"]
    _plot_bands(left, methods, ("random", "bald", "batchbald", "kbald2"))
    _plot_bands(right, methods, ("batchbald", "kbald3", "dynamic", "conservative", "power", "epig"))
    left.set_title(f"Figure 1: repeated digits (x{COPIES}, noise std {NOISE_STD}), {n}", fontsize=9)
    right.set_title("the other batch acquisitions, BatchBALD for reference", fontsize=9)
    save(fig, "figure1")

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _plot_bands(ax, {b: {**r, "label": f"2-BALD, batch {b}"} for b, r in report["figure2"]["batches"].items()})
    ax.set_title(f"Figure 2: 2-BALD acquisition sizes, repeated digits, {n}", fontsize=9)
    save(fig, "figure2")

    f3 = report["figure3"]
    picks = np.arange(1, f3["batch"] + 1)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for key, label in (("kbald2", "2-BALD increment"), ("batchbald", "BatchBALD marginal gain")):
        mean, std = np.array(f3[f"{key}_mean"]), np.array(f3[f"{key}_std"])
        ax.plot(picks, mean, marker=".", label=label)
        ax.fill_between(picks, mean - std, mean + std, alpha=0.2)
    ax.axhline(0, color="black", linewidth=0.8)
    stops = f3["claim"]["dynamic_stops"]
    ax.axvspan(min(stops) - 0.5, max(stops) + 0.5, color="tab:green", alpha=0.12,
               label=f"dynamic batch stops (picks {min(stops)}-{max(stops)})")
    ax.axvline(f3["exact_through_pick"] + 0.5, color="grey", linestyle=":",
               label=f"BatchBALD sampled ({BATCHBALD_CONFIGURATIONS} configurations) from here")
    ax.set_xlabel("pick within the batch (2-BALD order)")
    ax.set_ylabel("score of the pick (nats)")
    ax.set_title(f"Figure 3: one acquisition of {f3['batch']} on repeated digits, {n}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, "figure3")

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _plot_bands(ax, report["badge_variable"]["methods"])
    ax.set_title(f"BADGE with changing batch sizes, digits, {n}", fontsize=9)
    save(fig, "badge-variable")

    pool = report["badge_acceleration"]["pool"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    _plot_bands(left, pool)
    left.set_title(f"BADGE acceleration: accuracy, digits, {n}", fontsize=9)
    for name, r in pool.items():
        seconds = np.array([r2["select_s"] for r2 in r["runs"]]) * 1e3
        right.plot(np.arange(1, seconds.shape[1] + 1), seconds.mean(0), marker=".", label=r["label"])
    right.set_xlabel("round")
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    right.set_ylabel("selection time (ms)")
    right.set_yscale("log")
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    right.set_title("selection time per round (prediction excluded)", fontsize=9)
    save(fig, "badge-acceleration")
    return paths


def _git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _method_table(results, extra=None):
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
    f1, f3, t1 = report["figure1"], report["figure3"], report["table1"]
    bv, ba = report["badge_variable"], report["badge_acceleration"]
    scale = report["scale"]
    c1, c3, ct = f1["claim"], f3["claim"], t1["claim"]
    img = {k: p.name for k, p in paths.items()}
    first = c3["first_negative_pick"]
    negative_text = f"first goes below 0 at pick {first}" if first else "never goes below 0"
    lines = [f"# {report['title']}", "",
             f"Device: {report['device']}. Date: {report['date']}. torch {report['torch']}. "
             f"Commit {report['commit'] or 'unknown'}{' (with uncommitted changes)' if report['dirty'] else ''}. "
             f"Seeds {report['seeds']}. {'Quick (toy) run. ' if report['quick'] else ''}"
             f"Wall time {report['wall_s'] / 60:.1f} min.", "",
             f"Setup: scikit-learn digits, {scale['test']} clean test images, {scale['targets']} clean EPIG "
             f"targets, a pool of {scale['pool']} images (repeated digits: each {COPIES} times with Gaussian noise "
             f"std {NOISE_STD}, {COPIES * scale['pool']} points). The demo's MC-dropout network "
             f"(64-128-128-10, dropout 0.25, {scale['epochs']} full-batch Adam epochs, K={scale['samples']} "
             f"samples) is retrained from scratch every round from {10 * INITIAL_PER_CLASS} initial labels (two "
             f"per class, the same for every method of a seed) until {scale['budget']} more are acquired. "
             "Bands: mean ± std over seeds; curves whose labels differ between seeds (dynamic and conservative "
             f"batches) are interpolated on a {scale['grid_step']}-label grid. Training and the forward passes run "
             "on one thread, the selections on the threads the device line gives; prediction (the MC-dropout "
             "passes, BADGE's one pass for its embeddings) and selection are timed apart.", "",
             "## Figure 1: acquisition functions on repeated digits", "", f"![Figure 1]({img['figure1']})", "",
             *_method_table(f1["methods"]), "",
             f"Claim: 2-BALD keeps BatchBALD's accuracy where top-k BALD falls behind: {_held(c1['held'])}. Mean "
             f"accuracy over the curve: BatchBALD {c1['batchbald_area']:.1f} %, 2-BALD {c1['kbald2_area']:.1f} %, "
             f"BALD {c1['bald_area']:.1f} % (held means 2-BALD at most {MARGIN_POINTS:g} point below BatchBALD and "
             f"BALD at least {MARGIN_POINTS:g} point below it).", "",
             "## Figure 2: 2-BALD acquisition sizes", "", f"![Figure 2]({img['figure2']})", "",
             *_method_table({b: {**r, "label": f"2-BALD, batch {b}"} for b, r in report["figure2"]["batches"].items()}),
             "", "## Figure 3: 2-BALD scores against BatchBALD's marginal gains within one batch", "",
             f"![Figure 3]({img['figure3']})", "",
             f"After the initial labels, 2-BALD picks {f3['batch']} points from K={f3['samples']} MC-dropout "
             f"samples (BatchBALD's joint MI is at most log K = {math.log(f3['samples']):.1f} nats); for each pick, "
             "its 2-BALD increment "
             "(the cumulative score's step) and BatchBALD's marginal gain H[Y_S ∪ {pick}] - H[Y_S] - H[pick | W] "
             "over the picks before it, from `kb.joint_entropy` (exact through pick "
             f"{f3['exact_through_pick']}, {BATCHBALD_CONFIGURATIONS} sampled configurations after).", "",
             f"Claim: 2-BALD over-subtracts and goes negative as the batch grows: {_held(c3['held'])}. The mean "
             f"2-BALD increment {negative_text}; "
             f"{c3['seeds_with_negative_2bald']} of {len(report['seeds'])} seeds have a negative increment (the "
             f"smallest increment {c3['smallest_2bald']:.2g} nats); 2-BALD's increment is below BatchBALD's "
             "gain for "
             f"{100 * c3['picks_where_2bald_below_batchbald']:.0f} % of the picks; at the last pick 2-BALD "
             f"{c3['last_pick']['kbald2']:.3g} vs BatchBALD {c3['last_pick']['batchbald']:.3g} nats; batch totals "
             f"{c3['batch_total']['kbald2']:.3f} (2-BALD) vs {c3['batch_total']['batchbald']:.3f} (BatchBALD; "
             f"log K = {c3['log_k']:.3f}). The "
             f"dynamic batch (tolerance 0.1) stops after {c3['dynamic_stop_mean']:.1f} picks on average "
             f"({c3['dynamic_stops']}).", "",
             "## Table 1: selection time on an MNIST-sized pool", "",
             f"Random log-softmax predictions, N={t1['pool']['N']}, K={t1['pool']['K']}, C={t1['pool']['C']}; "
             f"BatchBALD with the library's default num_samples={t1['num_samples']} (exact through a batch of 5).",
             "", "| method | batch | this machine | the paper (RTX 2080 Super) |", "|---|---|---|---|"]
    for row in t1["rows"]:
        paper = f"{row['paper_seconds'] / 60:.0f} min" if row["paper_seconds"] else "–"
        lines.append(f"| {row['method']} | {row['batch']} | {duration(row['seconds'])} | {paper} |")
    lines += ["", f"Claim: 2-BALD is much faster than BatchBALD and grows more slowly with the batch: "
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
              "## BADGE acceleration: candidate subsets", "", f"![BADGE acceleration]({img['badge-acceleration']})",
              "", *_method_table(ba["pool"]), "",
              f"Selection on synthetic factors (N={scale['badge_pool'][0]}, H={scale['badge_pool'][1]}, "
              f"C={scale['badge_pool'][2]}, subsets of {scale['candidate_fraction']:.0%}, the subset's draw or "
              "ranking included):", "", "| batch | whole pool | random subset | least-confidence subset |",
              "|---|---|---|---|"]
    for b, t in ba["at_scale"].items():
        lines.append(f"| {b} | {duration(t['badge'])} | {duration(t['badge_random'])} "
                     f"({_less(1 - t['badge_random'] / t['badge'])}) | {duration(t['badge_lc'])} "
                     f"({_less(1 - t['badge_lc'] / t['badge'])}) |")
    lines.append("")
    for name, text in (("badge_random", "random subset"), ("badge_lc", "least-confidence subset")):
        c = ba["claim"][name]
        lines.append(f"Claim, {text}: over 90 % less acquisition time with comparable label efficiency: "
                     f"{_held(c['held'])}. Selection time {_less(c['selection_time_saved'])} on digits "
                     f"({_less(c['with_prediction_saved'])} with the prediction), "
                     + ", ".join(f"{_less(v)} at batch {b}" for b, v in c['selection_time_saved_at_scale'].items())
                     + " on the synthetic pool; mean accuracy over the "
                     f"curve {c['area_gap_points']:+.1f} points against the whole pool (comparable: at most "
                     f"{MARGIN_POINTS:g} point below).")
        lines.append("")
    path.write_text("\n".join(lines))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="every experiment at toy size, for a smoke run")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 5; 2 with --quick)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder (default bench/results/)")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    began = time.perf_counter()
    scale = QUICK if args.quick else FULL
    seeds = list(range(args.seeds if args.seeds is not None else (2 if args.quick else 5)))
    device = args.device
    dev = device_name(device)
    repeated = {seed: make_split(seed, scale, True, device) for seed in seeds}
    plain = {seed: make_split(seed, scale, False, device) for seed in seeds}
    report = {"title": "The papers' claims on scikit-learn digits: k-BALD Figures 1-3 and Table 1, BADGE",
              "device": dev, "date": date.today().isoformat(), "torch": torch.__version__,
              "commit": _git("rev-parse", "HEAD"), "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
              "seeds": seeds, "quick": args.quick, "scale": asdict(scale), "seconds": {}}

    def stage(name, fn):
        start = time.perf_counter()
        report[name] = fn()
        report["seconds"][name] = time.perf_counter() - start

    stage("figure1", lambda: figure1(repeated, scale, device))
    stage("figure2", lambda: figure2(repeated, scale, device, report["figure1"]["methods"]["kbald2"]))
    stage("figure3", lambda: figure3(repeated, scale, device))
    stage("table1", lambda: table1(scale, device))
    start = time.perf_counter()
    report["badge_variable"], report["badge_acceleration"] = badge_experiments(plain, scale, device)
    report["seconds"]["badge"] = time.perf_counter() - start
    report["wall_s"] = time.perf_counter() - began
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"papers-{slug(dev)}"
    paths = write_figures(report, stem, seeds)
    report["figures"] = {k: p.name for k, p in paths.items()}
    text = write_markdown(report, paths, stem.with_suffix(".md"))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
