"""Peer libraries' own strategies against the kbald_kernels fronts on the same input:
what a baal or scikit-activeml user gains by changing one import.

    python -m bench.fronts [--quick] [--peers baal,skactiveml]

baal rows: BALD and Entropy on probabilities [N, C, K] (N=100 000, C=10, K=20), on
segmentation maps [N, C, 32, 32, K] (N=1 000, reduction "mean") and on a stream of
10 chunks of the first pool; float32 numpy, as baal's ModelWrapper hands them over;
``get_ranks`` timed whole (scores, reduction and ranking).

scikit-activeml rows: ``batch_bald`` on ensemble probabilities [K, N, C] (K=20, C=10,
float64 as scikit-learn's predict_proba gives them, batch 10, 10 000 configurations;
N=2 000, and N=10 000 where scikit-activeml's N × M × C float64 arrays, 8 GB each with
their temporaries, exceed the 23 GB of the machine the report comes from, so only the
front runs); ``Badge.query`` on a network's float32 probabilities and
embeddings (C=100, d=768, batch 10; N=2 000, and N=20 000 where scikit-activeml's
N × C·d float64 gradient embeddings need 12 GB, so only the front runs); and
``CoreSet.query`` on float32 embeddings (N=20 000, d=768, 100 labelled, batch 100).
scikit-activeml's BatchBALD runs once (minutes), the rest three times.

Writes bench/results/fronts-<device>.{md,json}; a peer left out of ``--peers`` keeps
its rows from the report already there. Both peers run on the CPU only.
"""

import argparse
import json

import numpy as np

from kbald_kernels.compat import baal as baal_front
from kbald_kernels.compat import skactiveml as skactiveml_front

from .common import RESULTS, device_name, duration, measure, slug, write_report

HEADER = ["library", "strategy", "input", "problem", "theirs", "front", "speed-up", "agreement"]
PEERS = {"baal": "baal", "skactiveml": "scikit-activeml"}  # --peers name: the report's library column


def probabilities(shape, seed, axis=1, dtype=np.float32):
    logits = np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 2
    probs = np.exp(logits - logits.max(axis, keepdims=True))
    return (probs / probs.sum(axis, keepdims=True)).astype(dtype)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pools 20x smaller, for a smoke run")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="comma-separated peers to time (the others' rows are kept from the existing report)")
    args = parser.parse_args(argv)
    peers = args.peers.split(",")
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {sorted(PEERS)}")
    scale = 20 if args.quick else 1
    timed = {"baal": baal_rows, "skactiveml": skactiveml_rows}
    rows = []
    for peer in PEERS:
        rows += timed[peer](scale) if peer in peers else [r for r in _reported_rows() if r[0] == PEERS[peer]]
    notes = ["baal: `baal.active.heuristics.<name>(reduction=...)` (baal 2.1, numpy); the front: "
             "`kbald_kernels.compat.baal.<name>` with the same arguments, on the host C++ twin. 'same top 100': "
             "the first 100 ranks agree (Entropy of probabilities: baal averages the samples first, as the front "
             "does, so the scores agree too).",
             "scikit-activeml: `skactiveml.pool` (1.0.1, numpy, float64); the front: "
             "`kbald_kernels.compat.skactiveml` with the same arguments, float32 on the host C++ twin. "
             "'first n picks agree': the leading picks that are the same; BatchBALD enumerates configurations "
             "exactly for its first 5 picks (10^4 <= 10 000) and samples after that, each library its own; "
             "Badge draws every pick after the first, each library from its own stream.",
             "Each time the median of 3 calls after a warm-up, conversion from numpy included; scikit-activeml's "
             "own strategies without the warm-up, and its BatchBALD once."]
    print(write_report("fronts", "cpu", "Peer libraries' strategies against the kbald_kernels fronts",
                       HEADER, rows, notes))
    return 0


def _reported_rows():
    """The rows of the report already written for this device (none if it has another layout)."""
    path = RESULTS / f"fronts-{slug(device_name('cpu'))}.json"
    if not path.exists():
        return []
    report = json.loads(path.read_text())
    return report["rows"] if report.get("header") == HEADER else []


def _timed(fn, repeats=3, warmup=1, budget_s=None):
    """(median seconds of ``fn()``, the last call's result), so agreement needs no extra call."""
    out = {}
    seconds = measure(lambda: out.update(result=fn()), "cpu", repeats=repeats, warmup=warmup, budget_s=budget_s)
    return seconds, out["result"]


def _row(library, strategy, form, problem, theirs_s, front_s, agreement):
    row = [library, strategy, form, problem, duration(theirs_s) if theirs_s else "not run", duration(front_s),
           f"{theirs_s / front_s:.1f}x" if theirs_s else "–", agreement]
    print(row, flush=True)
    return row


def baal_rows(scale):
    from baal.active import heuristics

    pool = probabilities((100_000 // scale, 10, 20), seed=0)
    maps = probabilities((1000 // scale, 10, 32, 32, 20), seed=1)
    chunks = np.array_split(pool, 10)
    cases = [("[N, C, K]", f"N={pool.shape[0]} C=10 K=20", "none", lambda: pool),
             ("[N, C, 32, 32, K], mean", f"N={maps.shape[0]} C=10 K=20", "mean", lambda: maps),
             ("stream of 10 chunks", f"N={pool.shape[0]} C=10 K=20", "none", lambda: iter_chunks(chunks))]
    rows = []
    for name in ("BALD", "Entropy"):
        for form, problem, reduction, data in cases:
            theirs = getattr(heuristics, name)(reduction=reduction)
            ours = getattr(baal_front, name)(reduction=reduction)
            baal_s = measure(lambda: theirs.get_ranks(data()), "cpu", repeats=3)
            front_s = measure(lambda: ours.get_ranks(data()), "cpu", repeats=3)
            same = np.array_equal(theirs.get_ranks(data())[0][:100], ours.get_ranks(data())[0][:100])
            rows.append(_row("baal", name, form, problem, baal_s, front_s, "same top 100" if same else
                             "top 100 differ"))
    return rows


def iter_chunks(chunks):
    """A generator, as baal's predict_on_dataset_generator yields (baal detects a stream by its type)."""
    yield from chunks


def _picks(utilities):
    """The greedy picks a batch_bald utilities array records: row i + 1 is NaN where row i
    was not at the i-th pick (the last pick: the last row's arg-max)."""
    nan = np.isnan(utilities)
    picks = [int(np.flatnonzero(nan[i + 1] & ~nan[i])[0]) for i in range(len(utilities) - 1)]
    return picks + [int(np.nanargmax(utilities[-1]))]


def _agreement(ours, theirs):
    same = 0
    while same < min(len(ours), len(theirs)) and ours[same] == theirs[same]:
        same += 1
    return f"first {same} of {len(ours)} picks agree"


def _precomputed_classifier(probas, embeddings):
    """A fitted scikit-activeml classifier that looks up precomputed (proba, embedding)
    rows, as a trained network's forward pass would give them: X holds sample indices,
    so the query times the strategy alone."""
    from skactiveml.base import SkactivemlClassifier

    class Precomputed(SkactivemlClassifier):
        def __init__(self, classes=None, missing_label=np.nan):
            super().__init__(classes=classes, missing_label=missing_label)

        def fit(self, X, y, sample_weight=None):
            return self

        def predict_proba(self, X, return_embeddings=False):
            rows = np.asarray(X)[:, 0].astype(int)
            return (probas[rows], embeddings[rows]) if return_embeddings else probas[rows]

    return Precomputed(classes=np.arange(probas.shape[1]))


def skactiveml_rows(scale):
    from skactiveml import pool

    rows = []
    for n, theirs_runs in ((2000 // scale, True), (10_000 // scale, False)):
        probas = probabilities((20, n, 10), seed=2, axis=2, dtype=np.float64)
        front_s, ours = _timed(lambda: skactiveml_front.batch_bald(probas, 10, n_MC_samples=10_000, random_state=0))
        if theirs_runs:
            # Their batch_bald clips its input in place: it gets a copy (made inside the timing, a small share).
            theirs_s, theirs = _timed(lambda: pool.batch_bald(probas.copy(), 10, n_MC_samples=10_000, random_state=0),
                                      repeats=1, warmup=0)
            agreement = _agreement(_picks(ours), _picks(theirs))
        else:
            theirs_s, agreement = None, f"theirs needs {n * 10_000 * 10 * 8 / 1e9:.0f} GB per N × M × C array"
        rows.append(_row("scikit-activeml", "batch_bald (BatchBALD)", "[K, N, C] float64",
                         f"N={n} K=20 C=10 b=10 M=10 000", theirs_s, front_s, agreement))

    for n, theirs_runs in ((2000 // scale, True), (20_000 // scale, False)):
        rng = np.random.default_rng(3)
        embeddings = rng.normal(size=(n, 768)).astype(np.float32)
        badge_probas = probabilities((n, 100), seed=4, axis=1)
        clf = _precomputed_classifier(badge_probas, embeddings)
        X, y = np.arange(n, dtype=float)[:, None], np.full(n, np.nan)
        y[: n // 100] = 0

        def query(module):
            qs = module.Badge(clf_embedding_flag_name="return_embeddings", random_state=0)
            return qs.query(X, y, clf, fit_clf=False, batch_size=10)

        front_s, ours = _timed(lambda: query(skactiveml_front))
        if theirs_runs:
            theirs_s, theirs = _timed(lambda: query(pool), warmup=0)
            agreement = f"same first pick: {'yes' if ours[0] == theirs[0] else 'no'}"
        else:
            theirs_s, agreement = None, f"theirs needs {n * 100 * 768 * 8 / 1e9:.1f} GB (N × C·d float64)"
        rows.append(_row("scikit-activeml", "Badge", "float32 (proba, emb)", f"N={n} C=100 d=768 b=10", theirs_s,
                         front_s, agreement))

    n = 20_000 // scale
    X = np.random.default_rng(5).normal(size=(n, 768)).astype(np.float32)
    y = np.full(n, np.nan)
    y[:100] = 0
    front_s, ours = _timed(lambda: skactiveml_front.CoreSet(random_state=0).query(X, y, batch_size=100))
    theirs_s, theirs = _timed(lambda: pool.CoreSet(random_state=0).query(X, y, batch_size=100), warmup=0)
    rows.append(_row("scikit-activeml", "CoreSet", "float32 X", f"N={n} d=768 100 labelled b=100", theirs_s,
                     front_s, _agreement(list(ours), list(theirs))))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
