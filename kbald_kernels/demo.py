"""``kbald``: what batch active learning buys on a pool where batches matter, and what
this package buys over writing the selections in plain torch.

Learning curves: repeated digits (scikit-learn's 8×8 digits, every pool image three
times, each copy with its own Gaussian noise), the pool where top-k BALD's batches fill
with copies of one informative image. From two labels per class every method acquires a
batch each round and an MC-dropout network is retrained from scratch on the grown
labelled set; over several seeds (each its own split, noise and initial labels, the same
for every method) the curves are reported as mean ± std.

Selection time: the same selections on an MNIST-sized pool of predictions, the
package against the naive torch way of :mod:`kbald_kernels.naive`.

Needs scikit-learn and matplotlib (``pip install kbald_kernels[demo]``).
"""

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import badge_factors, candidate_subset, select_badge, select_batchbald, select_bald, select_epig, select_kbald
from . import select_stochastic_bald
from .backends import choose_backend, path_name
from .example import random_badge_factors, random_log_probs
from .naive import dense_of, naive_bald, naive_batchbald, naive_kbald2, naive_kmeanspp

DEFAULT_METHODS = ("random", "bald", "kbald2", "batchbald", "badge")
METHODS = DEFAULT_METHODS + ("kbald3", "power", "epig", "badge_random", "badge_lc")
NAMES = {"random": "random", "bald": "BALD", "kbald2": "2-BALD", "batchbald": "BatchBALD", "badge": "BADGE",
         "kbald3": "3-BALD", "power": "PowerBALD", "epig": "EPIG", "badge_random": "BADGE random subset",
         "badge_lc": "BADGE least-conf. subset"}
# The op whose backend runs each method's selection (its path is what the report names).
OPS = {"bald": "entropies", "kbald2": "kbald_pairwise_steps", "kbald3": "add_triple_interactions",
       "batchbald": "accumulate_joint_entropy", "badge": "kmeanspp_steps", "power": "entropies", "epig": "epig",
       "badge_random": "kmeanspp_steps", "badge_lc": "kmeanspp_steps"}
COPIES, NOISE_STD = 3, 0.1
CLASSES = 10


@dataclass
class Split:
    x_pool: torch.Tensor
    y_pool: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_targets: torch.Tensor  # EPIG's targets: unlabelled inputs held out of the pool
    start: torch.Tensor  # the initial labels: pool indices


def _digits(seed):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RuntimeError("the demo needs scikit-learn: pip install 'kbald_kernels[demo]'") from None
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return x[order], y[order]


def repeated_digits(seed, test_size=400, target_size=200, initial_per_class=2, device="cpu"):
    """The seed's split: clean test images and EPIG targets, and the rest of the digits as a
    pool of ``COPIES`` noisy copies each; the initial labels are in the first copy."""
    x, y = _digits(seed)
    x_test, y_test = x[:test_size], y[:test_size]
    x_targets = x[test_size : test_size + target_size]
    x_pool, y_pool = x[test_size + target_size :], y[test_size + target_size :]
    start = torch.cat([torch.nonzero(y_pool == c)[:initial_per_class, 0] for c in range(CLASSES)])
    gen = torch.Generator().manual_seed(seed)
    x_pool = torch.cat([x_pool + NOISE_STD * torch.randn(x_pool.shape, generator=gen) for _ in range(COPIES)])
    return Split(*(t.to(device) for t in (x_pool, y_pool.repeat(COPIES), x_test, y_test, x_targets, start)))


class MCDropoutMLPs(nn.Module):
    """Independent 64-64-64-10 MLPs with dropout after each hidden layer, one per seed in
    ``seeds`` (its initial weights), held as one batched network: input ``[B, n, 64]``.

    A round's networks (every method and seed) train together: Adam is elementwise and
    their losses add, so each takes exactly the steps it would take alone, while the
    per-op cost that dominates networks this small is paid once a round, not once a network.
    """

    def __init__(self, seeds, inputs=64, width=64, dropout=0.25):
        super().__init__()
        self.dropout = dropout
        shapes = ((inputs, width), (width, width), (width, CLASSES))
        layers = []
        for seed in seeds:
            torch.manual_seed(seed)
            layers.append([nn.Linear(*shape) for shape in shapes])
        self.weights = nn.ParameterList(nn.Parameter(torch.stack([net[j].weight.detach().T for net in layers]))
                                        for j in range(len(shapes)))
        self.biases = nn.ParameterList(nn.Parameter(torch.stack([net[j].bias.detach()[None] for net in layers]))
                                       for j in range(len(shapes)))

    def forward(self, x):
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = nn.functional.dropout(torch.relu(torch.baddbmm(b, h, w)), self.dropout, self.training)
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

    @torch.no_grad()
    def member(self, index, x, masks=None):
        """Network ``index`` on ``x`` [n, 64]: (logits, last hidden layer). ``masks`` [2, K, 1, width]
        (scaled) are K consistent dropout masks, the same for every input: [K, n, …] out."""
        w, b = [t[index] for t in self.weights], [t[index] for t in self.biases]
        h = torch.relu(x @ w[0] + b[0])
        if masks is not None:
            h = h * masks[0]
        h = torch.relu(h @ w[1] + b[1])
        if masks is not None:
            h = h * masks[1]
        return h @ w[2] + b[2], h


def _train(x, y, epochs, seeds, device, dropout=0.25):
    """One network per row of ``x`` [B, n, 64] and ``y`` [B, n], full-batch Adam from ``seeds``' weights."""
    nets = MCDropoutMLPs(seeds, dropout=dropout).to(device)
    optimiser = torch.optim.Adam(nets.parameters(), lr=3e-3, weight_decay=1e-4)
    nets.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        # The sum of every network's mean loss: each network's gradient is its own.
        loss = nn.functional.cross_entropy(nets(x).flatten(0, 1), y.flatten()) * len(x)
        loss.backward()
        optimiser.step()
    return nets.eval()


@torch.no_grad()
def _accuracy(nets, x, y):
    """Each network's accuracy on its row of ``x`` [B, n, 64], ``y`` [B, n]."""
    nets.eval()
    return (nets(x).argmax(-1) == y).float().mean(1).tolist()


def _mc_log_probs(nets, index, x, samples, seed):
    """[N, K, C] log-probabilities of network ``index`` under K consistent dropout masks: sample k
    applies one mask to every input, as joint entropies (2-BALD, BatchBALD) need."""
    width = nets.weights[0].shape[-1]
    keep = 1 - nets.dropout
    gen = torch.Generator(device=x.device).manual_seed(seed)
    masks = (torch.rand(2, samples, 1, width, generator=gen, device=x.device) < keep).float() / keep
    return torch.log_softmax(nets.member(index, x, masks)[0], -1).transpose(0, 1).contiguous()


def _predict(method, nets, index, x_pool, x_targets, samples, seed):
    """What ``method`` selects from; its cost is the prediction time, kept apart from the selection's."""
    if method == "random":
        return x_pool
    if method.startswith("badge"):
        logits, features = nets.member(index, x_pool)
        return badge_factors(logits, features), logits
    if method == "epig":
        lp = _mc_log_probs(nets, index, torch.cat([x_pool, x_targets]), samples, seed)
        return lp[: len(x_pool)], lp[len(x_pool) :]
    return _mc_log_probs(nets, index, x_pool, samples, seed)


def _select(method, prediction, batch, candidates, num_configurations, seed):
    if method == "random":
        gen = torch.Generator().manual_seed(seed)
        return torch.randperm(len(prediction), generator=gen)[:batch].to(prediction.device)
    if method.startswith("badge"):
        factors, logits = prediction
        size = min(candidates, len(logits))
        subset = {"badge": lambda: None,
                  "badge_random": lambda: candidate_subset(len(logits), size, generator=seed),
                  "badge_lc": lambda: candidate_subset(torch.log_softmax(logits, -1).unsqueeze(1), size,
                                                       score="least_confidence")}[method]()
        return select_badge(factors, batch, generator=seed, candidates=subset).indices
    if method == "epig":
        return select_epig(*prediction, batch).indices
    if method == "bald":
        return select_bald(prediction, batch).indices
    if method in ("kbald2", "kbald3"):
        return select_kbald(prediction, batch, order=int(method[-1])).indices
    if method == "power":
        return select_stochastic_bald(prediction, batch, method="power", generator=seed).indices
    return select_batchbald(prediction, batch, num_samples=num_configurations, generator=seed).indices


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def cpu_threads(device, n):
    """torch on ``n`` threads inside the block, on a CPU. Full-batch training of a small
    network is a chain of tiny ops: on two threads of a shared 2-core CPU each op waits
    for the busier core (measured tens of times slower than one)."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seconds(fn, device):
    begin = time.perf_counter()
    out = fn()
    _synchronize(device)
    return out, time.perf_counter() - begin


def run_curves(seeds=3, rounds=15, acquire=10, samples=20, epochs=300, methods=DEFAULT_METHODS,
               num_configurations=200, candidates=250, device="cpu", progress=None):
    """Every method's active-learning run for seeds 0..``seeds``-1.

    Returns {method: {"labels": [...], "accuracy": [seeds × (rounds + 1)] in [0, 1],
    "predict_s": [rounds × seeds], "select_s": [rounds × seeds]}}: the labelled-set sizes,
    the test accuracy after each round, and the seconds of each round's prediction
    (MC-dropout passes, BADGE's one pass for its embeddings) and selection, timed apart.
    ``candidates`` is the candidate-subset size of ``badge_random`` and ``badge_lc``.

    On a CPU it all runs on one thread: the networks' ops and the selections on this small
    pool are short, and on cores that other jobs share, two threads made each op wait for
    the busier core (measured up to ten times slower)."""
    with cpu_threads(device, 1):
        return _run_curves(seeds, rounds, acquire, samples, epochs, methods, num_configurations, candidates,
                           device, progress)


def _run_curves(seeds, rounds, acquire, samples, epochs, methods, num_configurations, candidates, device, progress):
    splits = [repeated_digits(seed, device=device) for seed in range(seeds)]
    runs = [(method, seed) for method in methods for seed in range(seeds)]
    labelled = {}
    for run in runs:
        labelled[run] = torch.zeros(len(splits[run[1]].y_pool), dtype=torch.bool, device=device)
        labelled[run][splits[run[1]].start] = True
    out = {m: {"labels": [], "accuracy": [[] for _ in range(seeds)], "predict_s": [], "select_s": []}
           for m in methods}
    for round_index in range(rounds + 1):
        # Every method of a seed starts from the same labels: round 0 trains one network a seed.
        trained = [(methods[0], seed) for seed in range(seeds)] if round_index == 0 else runs
        network = {run: (run[1] if round_index == 0 else i) for i, run in enumerate(runs)}
        if progress is not None:
            progress.set_postfix_str(f"training {len(trained)} networks on {int(labelled[runs[0]].sum())} labels")
        nets = _train(torch.stack([splits[s].x_pool[labelled[(m, s)]] for m, s in trained]),
                      torch.stack([splits[s].y_pool[labelled[(m, s)]] for m, s in trained]),
                      epochs, [s for _, s in trained], device)
        accuracy = _accuracy(nets, torch.stack([splits[s].x_test for _, s in trained]),
                             torch.stack([splits[s].y_test for _, s in trained]))
        for method, seed in runs:
            out[method]["accuracy"][seed].append(accuracy[network[(method, seed)]])
        for method in methods:
            out[method]["labels"].append(int(labelled[(method, 0)].sum()))
        if round_index == rounds:
            break
        for method in methods:
            out[method]["predict_s"].append([])
            out[method]["select_s"].append([])
        for method, seed in runs:
            split, key = splits[seed], seed * 1000 + round_index
            pool = torch.nonzero(~labelled[(method, seed)])[:, 0]
            prediction, predict_s = _seconds(lambda: _predict(method, nets, network[(method, seed)],
                                                              split.x_pool[pool], split.x_targets, samples, key),
                                             device)
            picked, select_s = _seconds(lambda: _select(method, prediction, acquire, candidates,
                                                        num_configurations, key), device)
            labelled[(method, seed)][pool[picked]] = True
            out[method]["predict_s"][-1].append(predict_s)
            out[method]["select_s"][-1].append(select_s)
        if progress is not None:
            progress.update(1)
    return out


def summary(curves):
    """{method: (mean over the curve, its std over seeds, final accuracy, its std)} in percent.
    The mean over the curve is the plain mean of the accuracies at every labelled-set size shown."""
    out = {}
    for method, curve in curves.items():
        acc = 100 * np.array(curve["accuracy"])
        per_seed = acc.mean(1)
        out[method] = (float(per_seed.mean()), float(per_seed.std()), float(acc[:, -1].mean()),
                       float(acc[:, -1].std()))
    return out


def format_curves(curves, device):
    methods = list(curves)
    stats = summary(curves)
    seeds = len(curves[methods[0]]["accuracy"])
    names = [NAMES[m] for m in methods]
    width = max(13, *(len(n) for n in names))
    header = "labels  " + "  ".join(f"{n:>{width}}" for n in names)
    lines = [f"Test accuracy (%), mean ± std over {seeds} seeds", header, "-" * len(header)]
    acc = {m: 100 * np.array(curves[m]["accuracy"]) for m in methods}
    for r, n in enumerate(curves[methods[0]]["labels"]):
        lines.append(f"{n:>6}  " + "  ".join(f"{acc[m][:, r].mean():>{width - 7}.1f} ± {acc[m][:, r].std():4.1f}"
                                             for m in methods))
    final = curves[methods[0]]["labels"][-1]
    head = ("method", "mean over the curve", f"final ({final} labels)", "selection / round", "prediction / round",
            "ran on")
    rows = []
    for m in methods:
        mean, mean_std, last, last_std = stats[m]
        ran = path_name(choose_backend(OPS[m], None, torch.device(device)), torch.device(device)) if m in OPS else "-"
        rows.append((NAMES[m], f"{mean:.1f} ± {mean_std:.1f} %", f"{last:.1f} ± {last_std:.1f} %",
                     *(_duration(_after_first(curves[m][key])) for key in ("select_s", "predict_s")), ran))
    lines += ["", *_table(head, rows, text=(0, 5))]
    if len(curves[methods[0]]["select_s"]) > 1:
        lines.append("Times: mean per round after the first, whose calls warm up.")
    if "random" in methods and len(methods) > 1:
        ahead = {NAMES[m]: stats[m][0] - stats["random"][0] for m in methods if m != "random"}
        verdict = ("every active method ahead of random" if min(ahead.values()) > 0 else
                   "behind or level with random: " + ", ".join(n for n, d in ahead.items() if d <= 0))
        lines += ["", "Mean over the curve against random: " + ", ".join(f"{n} {d:+.1f}" for n, d in ahead.items())
                  + f" points (on average {statistics.mean(ahead.values()):+.1f}); {verdict}."]
    return "\n".join(lines)


def _count(n):
    return f"{n:,}".replace(",", " ")


def _after_first(per_round):
    """The mean of a [rounds × seeds] list of times, the first round left out if there are others."""
    return statistics.mean(t for r in (per_round[1:] or per_round) for t in r)


def _duration(seconds):
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _table(header, rows, text=(0,)):
    """Aligned lines: the ``text`` columns to the left, the others (numbers) to the right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(("{:<%d}" if i in text else "{:>%d}") % w for i, w in enumerate(widths))
    return [line.format(*r).rstrip() for r in [header, ["-" * w for w in widths], *rows]]


def _timed(fn, data, warm_up, device, budget_s=0.5, repeats=3):
    """Median seconds of ``fn(data)`` after one call of ``fn(warm_up)``; repeats while under ``budget_s``."""
    fn(warm_up)
    _synchronize(device)
    times = []
    while len(times) < repeats and sum(times) < budget_s:
        times.append(_seconds(lambda: fn(data), device)[1])
    return statistics.median(times)


def run_timing(n=60_000, samples=20, batch=10, num_configurations=200, width=128, device="cpu", progress=None):
    """Each selection on ``n`` random predictions [n, samples, 10] (BADGE: factors of ``width``
    features) by the package and by the naive torch way. Returns rows (name, op, package
    seconds, naive seconds, naive scaled from a tenth of the pool?, the naive way in words)."""
    device = torch.device(device)
    lp = random_log_probs(n, samples, CLASSES, device)
    features, residuals = random_badge_factors(n, width, CLASSES, device)
    dense = dense_of(features, residuals)
    tenth = n // 10
    gen = torch.Generator().manual_seed(0)  # the k-means++ loop's draws are on the host, as the benchmarks'
    # (name, op, package call, naive call, naive on a tenth of the pool and scaled?, the naive way)
    cases = [
        (f"BALD top-{batch}", "entropies", lambda t: select_bald(t, batch), lambda t: naive_bald(t).topk(batch),
         False, "entropy formulas over [N, K, C]"),
        (f"2-BALD, batch {batch}", "kbald_pairwise_steps", lambda t: select_kbald(t, batch),
         lambda t: naive_kbald2(t, batch), False, "a greedy loop, each pick's joints [N, C, C] materialised"),
        (f"BatchBALD, batch {batch}, M={num_configurations}", "accumulate_joint_entropy",
         lambda t: select_batchbald(t, batch, num_samples=num_configurations, generator=0),
         lambda t: naive_batchbald(t, batch, num_configurations, torch.Generator(device).manual_seed(0)), True,
         "a greedy loop, each pick's joints [N, M, C] materialised"),
    ]
    rows = []
    for name, op, ours, naive, scaled, how in cases:
        if progress is not None:
            progress.set_postfix_str(name)
        ours_s = _timed(ours, lp, lp[:tenth], device)
        naive_data = lp[:tenth] if scaled else lp
        naive_s = _timed(naive, naive_data, lp[: tenth // 10 if scaled else tenth], device, repeats=1)
        rows.append((name, op, ours_s, naive_s * (n / len(naive_data)), scaled, how))
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.set_postfix_str("BADGE")
    ours_s = _timed(lambda f: select_badge(f, batch, generator=0), (features, residuals),
                    (features[:tenth], residuals[:tenth]), device)
    naive_s = _timed(lambda d: naive_kmeanspp(d, batch, gen), dense, dense[:tenth], device, repeats=1)
    rows.append((f"BADGE, batch {batch}", "kmeanspp_steps", ours_s, naive_s, False,
                 f"embeddings [N, {width}·{CLASSES}] materialised, a cdist k-means++ loop"))
    if progress is not None:
        progress.update(1)
    return rows


def format_timing(rows, n, samples, width, device):
    device = torch.device(device)
    head = ("selection", "ran on", "kbald_kernels", "naive torch", "speed-up", "the naive torch way")
    table = [(name, path_name(choose_backend(op, None, device), device), _duration(ours),
              ("~" if scaled else "") + _duration(naive), f"{naive / ours:.1f}x", how)
             for name, op, ours, naive, scaled, how in rows]
    where = f"{device}, {torch.get_num_threads()} threads" if device.type == "cpu" else str(device)
    lines = [f"Selection time on an MNIST-sized pool: N={_count(n)} random predictions, K={samples}, C={CLASSES} "
             f"(BADGE: {width} features), as the benchmarks make them; {where}",
             *_table(head, table, text=(0, 1, 5)),
             "Median of up to 3 calls after a warm-up call on a tenth of the pool; the naive way timed once."]
    if any(r[4] for r in rows):
        lines.append("~: the naive way timed on a tenth of the pool and scaled by 10 (each of its picks costs "
                     "time linear in N).")
    return "\n".join(lines)


def plot_curves(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, curve in curves.items():
        acc = 100 * np.array(curve["accuracy"])
        mean, std = acc.mean(0), acc.std(0)
        ax.plot(curve["labels"], mean, marker="o", markersize=3, label=NAMES[method])
        ax.fill_between(curve["labels"], mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Repeated digits (x{COPIES}, noise std {NOISE_STD}), mean ± std over "
                 f"{len(next(iter(curves.values()))['accuracy'])} seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# The default run (about a minute on two CPU cores) and --quick's (a smoke test).
DEFAULTS = {"seeds": 3, "rounds": 15, "acquire": 10, "samples": 20, "epochs": 300, "num_configurations": 200,
            "timing_pool": 60_000}
QUICK = {"seeds": 2, "rounds": 2, "acquire": 10, "samples": 8, "epochs": 40, "num_configurations": 50,
         "timing_pool": 2_000}


def describe(settings, device):
    split = repeated_digits(0)
    return (f"Active learning on repeated digits: scikit-learn's 8×8 digits, {_count(len(split.y_pool) // COPIES)} "
            f"pool images {COPIES} times each, every copy with its own Gaussian noise (std {NOISE_STD}): "
            f"{_count(len(split.y_pool))} points; {len(split.y_test)} clean test images. "
            f"{len(split.start)} initial labels (two a class), {settings['rounds']} rounds of {settings['acquire']}; "
            f"an MC-dropout MLP retrained from scratch each round ({settings['epochs']} epochs), "
            f"K={settings['samples']} samples; BatchBALD with M={settings['num_configurations']} configurations; "
            f"{settings['seeds']} seeds; {'one CPU thread' if device == 'cpu' else device}.")
