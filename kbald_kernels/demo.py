"""A real active-learning loop on scikit-learn's bundled handwritten digits.

A small MC-dropout network starts from two labels per class; each round every
method acquires a batch from the pool, the network is retrained from scratch on the
grown labelled set, and its test accuracy is recorded. EPIG's targets are
unlabelled inputs held out of the pool (for every method alike). ``badge_random``
and ``badge_lc`` are the BADGE acceleration report's two speed-ups: BADGE on a
random candidate subset, and on the candidates least confidence ranks most
uncertain. Needs scikit-learn and matplotlib (``pip install kbald_kernels[demo]``).
"""

import time

import torch
from torch import nn

from . import (badge_factors, candidate_subset, select_badge, select_batchbald, select_bald, select_epig,
               select_kbald)

METHODS = ("random", "bald", "kbald2", "batchbald", "epig", "badge", "badge_random", "badge_lc")


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


class MCDropoutNet(nn.Module):
    def __init__(self, width=128, dropout=0.25):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.body(x))


def _train(x, y, epochs, seed, device):
    torch.manual_seed(seed)
    model = MCDropoutNet().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model


@torch.no_grad()
def _mc_log_probs(model, x, samples):
    model.train()  # dropout on: each pass is one posterior sample
    return torch.stack([torch.log_softmax(model(x), -1) for _ in range(samples)], 1)


@torch.no_grad()
def _accuracy(model, x, y):
    model.eval()
    return float((model(x).argmax(-1) == y).float().mean())


def _predict(method, model, x_pool, x_targets, samples):
    """What ``method`` selects from; its cost is the prediction time, kept apart from the selection's."""
    if method == "random":
        return x_pool
    if method.startswith("badge"):
        model.eval()
        with torch.no_grad():
            features = model.body(x_pool)
            logits = model.head(features)
        return badge_factors(logits, features), logits
    if method == "epig":
        # One set of dropout masks for pool and targets: the same posterior samples.
        lp = _mc_log_probs(model, torch.cat([x_pool, x_targets]), samples)
        return lp[: len(x_pool)], lp[len(x_pool) :]
    return _mc_log_probs(model, x_pool, samples)


def _select(method, prediction, batch, candidates, seed, round_index):
    if method == "random":
        gen = torch.Generator().manual_seed(seed * 1000 + round_index)
        return torch.randperm(len(prediction), generator=gen)[:batch].to(prediction.device)
    if method.startswith("badge"):
        factors, logits = prediction
        size = min(candidates, len(logits))
        subset = {"badge": lambda: None,
                  "badge_random": lambda: candidate_subset(len(logits), size, generator=seed + round_index),
                  "badge_lc": lambda: candidate_subset(torch.log_softmax(logits, -1).unsqueeze(1), size,
                                                       score="least_confidence")}[method]()
        return select_badge(factors, batch, generator=seed + round_index, candidates=subset).indices
    if method == "epig":
        return select_epig(*prediction, batch).indices
    if method == "bald":
        return select_bald(prediction, batch).indices
    if method == "kbald2":
        return select_kbald(prediction, batch, order=2).indices
    return select_batchbald(prediction, batch, num_samples=1000, generator=seed + round_index).indices


def _seconds_since(begin, device):
    if device != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter() - begin


def run_demo(rounds=6, acquire=10, initial_per_class=2, samples=20, epochs=300, methods=METHODS, test_size=400,
             target_size=200, candidates=250, seed=0, device="cpu", plot=None, progress=True):
    """Run the loop; returns {method: [(labels, accuracy, prediction seconds, selection seconds), ...]}.

    The prediction seconds are the MC-dropout forward passes (BADGE: the one pass for
    its embeddings), the selection seconds the acquisition on them, timed apart so that
    the forward passes do not read as the acquisition's cost. ``target_size`` unlabelled
    inputs are held out of the pool as EPIG's targets; ``candidates`` is the
    candidate-subset size of ``badge_random`` and ``badge_lc``."""
    if plot:
        try:
            import matplotlib  # noqa: F401  (fail before the run, not after it)
        except ImportError:
            raise RuntimeError("the demo's plot needs matplotlib: pip install 'kbald_kernels[demo]', "
                               "or pass --plot ''") from None
    x, y = _digits(seed)
    x, y = x.to(device), y.to(device)
    x_test, y_test = x[:test_size], y[:test_size]
    x_targets = x[test_size : test_size + target_size]
    x_all, y_all = x[test_size + target_size :], y[test_size + target_size :]
    start = torch.cat([torch.nonzero(y_all == c)[:initial_per_class, 0] for c in range(10)])
    results = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(methods) * (rounds + 1), desc="demo", unit="round")
    for method in methods:
        labelled = torch.zeros(len(y_all), dtype=torch.bool, device=device)
        labelled[start] = True
        curve = []
        for round_index in range(rounds + 1):
            if bar is not None:
                bar.set_postfix_str(f"{method}: training on {int(labelled.sum())} labels")
            model = _train(x_all[labelled], y_all[labelled], epochs, seed, device)
            accuracy = _accuracy(model, x_test, y_test)
            predict_seconds = select_seconds = float("nan")
            if round_index < rounds:
                pool = torch.nonzero(~labelled)[:, 0]
                if bar is not None:
                    bar.set_postfix_str(f"{method}: acquiring {acquire} of {len(pool)}")
                begin = time.perf_counter()
                prediction = _predict(method, model, x_all[pool], x_targets, samples)
                predict_seconds = _seconds_since(begin, device)
                begin = time.perf_counter()
                picked = _select(method, prediction, acquire, candidates, seed, round_index)
                select_seconds = _seconds_since(begin, device)
                labelled[pool[picked]] = True
            curve.append((int(labelled.sum()) - (acquire if round_index < rounds else 0), accuracy,
                          predict_seconds, select_seconds))
            if bar is not None:
                bar.update(1)
        results[method] = curve
    if bar is not None:
        bar.close()
    if plot:
        _plot(results, plot)
    return results


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, curve in results.items():
        ax.plot([c[0] for c in curve], [100 * c[1] for c in curve], marker="o", label=method)
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Active learning on scikit-learn digits (MC dropout)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_results(results):
    methods = list(results)
    labels = [c[0] for c in results[methods[0]]]
    widths = [max(9, len(m)) for m in methods]
    header = "labels  " + "  ".join(f"{m:>{w}}" for m, w in zip(methods, widths))
    lines = [header, "-" * len(header)]
    for r, n in enumerate(labels):
        lines.append(f"{n:>6}  " + "  ".join(f"{100 * results[m][r][1]:>{w - 1}.1f}%"
                                               for m, w in zip(methods, widths)))
    for name, column, what in (("pred.", 2, "prediction: the MC-dropout passes or BADGE's embedding pass"),
                               ("sel.", 3, "selection on those predictions")):
        times = "  ".join(f"{1e3 * _mean([c[column] for c in results[m][:-1]]):>{w - 2}.1f}ms"
                          for m, w in zip(methods, widths))
        lines.append(f"{name:>6}  {times}   ({what}, mean per round)")
    return "\n".join(lines)


def _mean(values):
    return sum(values) / len(values) if values else float("nan")
