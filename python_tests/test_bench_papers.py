"""python -m bench.papers --quick: it runs every experiment, writes every figure and report, each
verdict's inputs are there and agree with the verdict, and its checks bite."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kbald_kernels as kb  # noqa: E402
from bench import paper_setup, papers  # noqa: E402

FIGURES = ("figure1", "figure2", "figure3", "badge-variable", "badge-acceleration")
EXPERIMENTS = ("figure1", "figure2", "figure3", "table1", "badge_variable", "badge_acceleration")
Q = papers.QUICK


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("papers")
    assert papers.main(["--quick", "--seeds", "2", "--out", str(out)]) == 0
    reports = sorted(out.glob("papers-*.json"))
    assert len(reports) == 1
    return reports[0], json.loads(reports[0].read_text())


def test_quick_run_writes_every_figure_and_report(quick_report):
    path, report = quick_report
    stem = path.with_suffix("")
    for figure in FIGURES:
        png = Path(f"{stem}-{figure}.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
    markdown = stem.with_suffix(".md").read_text()
    for figure in FIGURES:
        assert f"]({stem.name}-{figure}.png)" in markdown
    for key in EXPERIMENTS:
        assert key in report, key
        assert "claim" in report[key] or key == "badge_variable", key
    # Every verdict quotes its claim.
    for quote in papers.QUOTES.values():
        assert quote in markdown
    assert markdown.count("**held**") + markdown.count("**did not hold**") == 7
    assert report["seeds"] == [0, 1] and report["data"] == "digits"
    assert report["commit"] is not None and report["wall_s"] > 0


def test_figure1_and_2_curves_share_the_labels_they_are_compared_on(quick_report):
    _, report = quick_report
    methods = report["figure1"]["methods"]
    assert set(methods) == set(Q.figure1_methods)
    for method in methods.values():
        runs = method["runs"]
        assert len(runs) == 2
        assert all(len(r["predict_s"]) == len(r["select_s"]) == len(r["batches"]) > 0 for r in runs)
        assert all(r["labels"][0] == 10 * Q.initial_per_class and r["labels"][-1] == 10 * Q.initial_per_class
                   + Q.budget for r in runs)
    f2 = report["figure2"]
    assert set(f2["batches"]) == {str(b) for b in Q.figure2_batches} | {"random"}
    claim = f2["claim"]
    assert set(claim["gap_points"]) == {str(b) for b in Q.figure2_batches}
    assert all(len(g) == 2 for g in claim["gap_per_seed"].values())
    # Random against itself at its own labels: no gap.
    random_runs = f2["batches"]["random"]["runs"]
    assert papers.gap_to_random(random_runs, random_runs, 10 * Q.initial_per_class) == [0, 0]
    for b in Q.figure2_batches:
        assert [len(r["batches"]) for r in f2["batches"][str(b)]["runs"]] == [-(-Q.budget // b)] * 2
    largest = str(max(Q.figure2_batches))
    assert claim["held"] == (claim["gap_points"][largest] <= papers.MARGIN_POINTS)


def test_figure3_has_every_series_and_its_verdict_follows_from_them(quick_report):
    _, report = quick_report
    f3 = report["figure3"]
    assert f3["seeds"] == list(range(Q.figure3_seeds)) and len(f3["per_seed"]) == Q.figure3_seeds
    n = f3["claim"]["pool"]
    assert n == 3 * Q.pool - 10 * Q.initial_per_class
    for seed in f3["per_seed"]:
        for key in ("top_mean", "top_negative", "pool_negative", "pool_mean", "pick_rank", "kbald2", "batchbald"):
            assert len(seed[key]) == Q.figure3_batch, key
        assert all(0 <= v <= 1 for v in seed["top_negative"] + seed["pool_negative"])
        assert len(set(seed["pick_rank"])) == Q.figure3_batch and all(1 <= r <= n for r in seed["pick_rank"])
        # The first pick is the top-BALD point, and its increment is its BALD, BatchBALD's first gain too.
        assert seed["pick_rank"][0] == 1
        assert seed["kbald2"][0] == pytest.approx(seed["batchbald"][0], rel=1e-3, abs=1e-4)
    claim = f3["claim"]
    last = claim["last"]
    assert last["top_mean"] == pytest.approx(np.mean([s["top_mean"][-1] for s in f3["per_seed"]]))
    assert claim["pool_part_held"] == (last["top_mean"] < 0 and last["top_negative"] > 0.5
                                       and last["top_mean"] < last["pool_mean"])
    late = np.median([s["pick_rank"][-claim["late_picks"]:] for s in f3["per_seed"]])
    assert claim["late_median_rank"] == pytest.approx(late)
    assert claim["picks_part_held"] == (late > n / 10)
    assert claim["held"] == (claim["pool_part_held"] and claim["picks_part_held"])


def test_table1_and_badge_variable(quick_report):
    _, report = quick_report
    assert {(r["method"], r["batch"]) for r in report["table1"]["rows"]} == {
        (m, b) for m in ("BatchBALD", "2-BALD") for b in Q.table_batches}
    variable = report["badge_variable"]
    assert variable["prefix_checks"] > 0
    assert set(variable["sizes_checked"]) >= set(Q.badge_schedule)


def test_badge_acceleration_times_the_reports_way_and_ours_on_the_same_rounds(quick_report):
    _, report = quick_report
    ba = report["badge_acceleration"]
    assert set(ba["report"]) == set(papers.SUBSETS) == set(ba["ours"]) == set(ba["ours_rounds"])
    for curve in ba["report"].values():
        assert len(curve["runs"]) == Q.badge_trials
        for run in curve["runs"]:
            assert run["labels"] == [10 * Q.badge_initial_per_class + r * Q.badge_batch
                                     for r in range(Q.badge_rounds + 1)]
            assert len(run["rounds"]) == Q.badge_rounds
            for seconds in run["rounds"]:
                parts = seconds["proxy_s"] + seconds["embed_s"] + seconds["kmeans_s"]
                assert seconds["total_s"] == pytest.approx(parts) and seconds["embed_s"] > 0
    assert all(len(t) == Q.badge_trials * Q.badge_rounds for t in ba["ours_rounds"].values())
    at = ba["at_scale"]
    assert at["pool"] == Q.pool * Q.badge_scale_copies and at["candidates"] == Q.badge_scale_candidates
    for subset in ("random", "least_confidence"):
        claim = ba["claim"][subset]
        saved = 1 - ba["report"][subset]["total_s_mean"] / ba["report"]["full"]["total_s_mean"]
        assert claim["saved_rounds"] == pytest.approx(saved)
        assert claim["saved_at_scale"] == pytest.approx(
            1 - at["report"][subset]["total_s"] / at["report"]["full"]["total_s"])
        gap = ba["report"][subset]["area"] - ba["report"]["full"]["area"]
        assert claim["held"] == (min(claim["saved_rounds"], claim["saved_at_scale"]) > claim["threshold"]
                                 and gap >= -papers.MARGIN_POINTS)
    assert ba["claim"]["random"]["threshold"] == 0.9
    assert ba["claim"]["least_confidence"]["threshold"] == pytest.approx(1 - 7.78 / 70.56)


def test_the_reports_per_sample_embeddings_are_badges_gradient_embeddings():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(12, 64, generator=gen)
    model = paper_setup.train(x, torch.arange(12) % 10, 5, 0, "cpu")
    embeddings = torch.from_numpy(paper_setup.per_sample_gradient_embeddings(model, x))
    logits, features = paper_setup.logits_and_features(model, x)
    residual = torch.softmax(logits, -1) - torch.nn.functional.one_hot(logits.argmax(-1), 10)
    expected = (residual[:, :, None] * features[:, None, :]).reshape(12, -1)
    torch.testing.assert_close(embeddings, expected, rtol=1e-4, atol=1e-6)


def test_mc_dropout_masks_are_consistent_across_the_pool():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(30, 64, generator=gen)
    model = paper_setup.train(x, torch.arange(30) % 10, 5, 0, "cpu")
    whole = paper_setup.mc_log_probs(model, x, 7, seed=3, chunk=3)
    alone = paper_setup.mc_log_probs(model, x[:4], 7, seed=3)
    assert whole.shape == (30, 7, 10)
    torch.testing.assert_close(whole[:4], alone)
    assert not torch.allclose(whole[:, 0], whole[:, 1])


def test_figure3_raises_when_the_increments_disagree_with_select_kbald(monkeypatch):
    split = papers.make_split("digits", 0, Q, True, "cpu")
    real = kb.select_kbald

    def doubled(*args, **kwargs):
        selection = real(*args, **kwargs)
        return kb.Selection(selection.indices, 2 * selection.scores)

    monkeypatch.setattr(kb, "select_kbald", doubled)
    with pytest.raises(AssertionError, match="disagree with select_kbald"):
        papers.figure3_seed(split, 0, Q, "cpu")


def test_gap_to_random_reads_random_at_the_curves_labels():
    random_runs = [{"labels": [20, 30, 40], "accuracy": [0.5, 0.6, 0.7]}]
    runs = [{"labels": [20, 25, 40], "accuracy": [0.5, 0.6, 0.6]}]
    assert papers.gap_to_random(runs, random_runs, 20) == [pytest.approx(100 * ((0.6 - 0.55) + (0.6 - 0.7)) / 2)]
    with pytest.raises(AssertionError, match="initial labels"):
        papers.gap_to_random([{"labels": [10, 40], "accuracy": [0.1, 0.2]}], random_runs, 20)


def test_the_ordering_prefix_check_passes_on_the_library_and_raises_on_a_mismatch(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    factors = kb.badge_factors(torch.randn(60, 10, generator=gen), torch.randn(60, 16, generator=gen).relu())
    ordering = kb.KMeansPPOrdering(factors, generator=3, first="max_norm")
    picked = ordering.take(5).indices
    assert papers.check_ordering_prefix(ordering, factors, picked, (5, 10, 20), 3) == [5, 10, 20]

    real = kb.select_badge

    def shuffled(*args, **kwargs):
        selection = real(*args, **kwargs)
        return kb.Selection(selection.indices.flip(0), selection.scores)

    monkeypatch.setattr(kb, "select_badge", shuffled)
    ordering = kb.KMeansPPOrdering(factors, generator=3, first="max_norm")
    with pytest.raises(AssertionError, match="first 5 picks"):
        papers.check_ordering_prefix(ordering, factors, ordering.take(5).indices, (5, 10), 3)
