"""python -m bench.papers --quick: it runs, writes every figure and report, and its BADGE ordering check bites."""

import json
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kbald_kernels as kb  # noqa: E402
from bench import papers  # noqa: E402

FIGURES = ("figure1", "figure2", "figure3", "badge-variable", "badge-acceleration")
EXPERIMENTS = ("figure1", "figure2", "figure3", "table1", "badge_variable", "badge_acceleration")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("papers")
    assert papers.main(["--quick", "--seeds", "2", "--out", str(out)]) == 0
    return out


def test_quick_run_writes_every_figure_and_report(quick_report):
    reports = sorted(quick_report.glob("papers-*.json"))
    assert len(reports) == 1
    stem = reports[0].with_suffix("")
    for figure in FIGURES:
        png = Path(f"{stem}-{figure}.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
    markdown = stem.with_suffix(".md").read_text()
    for figure in FIGURES:
        assert f"]({stem.name}-{figure}.png)" in markdown
    report = json.loads(reports[0].read_text())
    for key in EXPERIMENTS:
        assert key in report, key
        assert "claim" in report[key] or key in ("figure2", "badge_variable"), key
    assert report["seeds"] == [0, 1]
    assert report["commit"] is not None and report["wall_s"] > 0
    assert set(report["figure1"]["methods"]) == {"random", "bald", "batchbald", "kbald2", "kbald3", "dynamic",
                                                 "conservative", "power", "epig"}
    assert set(report["figure2"]["batches"]) == {str(b) for b in papers.QUICK.figure2_batches}
    assert len(report["figure3"]["kbald2_mean"]) == papers.QUICK.figure3_batch
    assert {(r["method"], r["batch"]) for r in report["table1"]["rows"]} == {
        (m, b) for m in ("BatchBALD", "2-BALD") for b in papers.QUICK.table_batches}
    assert set(report["badge_acceleration"]["pool"]) == {"badge", "badge_random", "badge_lc"}
    for method in (*report["figure1"]["methods"].values(), *report["badge_acceleration"]["pool"].values()):
        runs = method["runs"]
        assert len(runs) == 2
        assert all(len(r["predict_s"]) == len(r["select_s"]) == len(r["batches"]) > 0 for r in runs)
        assert all(r["labels"][-1] == 20 + papers.QUICK.budget for r in runs)
    variable = report["badge_variable"]
    assert variable["prefix_checks"] > 0
    assert set(variable["sizes_checked"]) >= set(papers.QUICK.badge_schedule)


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
