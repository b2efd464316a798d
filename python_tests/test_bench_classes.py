"""bench.classes runs end to end at toy size and writes its report and plot: every
row, each time a number or a stated reason (the report's figures are not tested)."""

import json

import pytest
import torch

from bench import classes, common


@pytest.mark.slow  # every P5/P6 row, shrunk, with its peers
def test_quick_report_writes_every_row_and_the_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(classes, "RESULTS", tmp_path)
    monkeypatch.setattr(classes, "problems", lambda quick: [
        classes.Problem("P5", 300, 4, 33, torch.float32, targets=6, features=16),
        classes.Problem("P6", 200, 3, 257, torch.float16, targets=4, features=16)])
    assert classes.main(["--quick", "--row-seconds", "0.5", "--device", "cpu"]) == 0
    (report,) = tmp_path.glob("classes-*.json")
    rows = json.loads(report.read_text())["rows"]
    labels = [row[1] for row in rows]
    expected = ["BALD", "BALD vs compiled", "2-BALD batch 10", "2-BALD batch 100", "3-BALD batch 10",
                "EPIG, 6 targets", "BatchBALD batch 10, M=10000", "BADGE batch 100, factored H=16"]
    assert labels[:8] == expected and len(rows) == 16
    assert rows[1][3] == "naive torch, torch.compile" and rows[1][2] == rows[0][2]
    for row in rows:
        assert row[2] and row[4], row  # ours and the peer: a time or the reason it did not run
    assert list(tmp_path.glob("classes-*.png")) and list(tmp_path.glob("classes-*.md"))


def test_scaled_time_scales_a_prefix_and_refuses_what_cannot_fit():
    calls = []

    def run_on(n):
        return lambda: calls.append(n)

    seconds, points = classes.scaled_time(run_on, 1000, 10.0, torch.device("cpu"), smallest=10)
    assert points == 1000 and calls[0] == 10 and set(calls[1:]) == {1000}
    assert "roofline" in classes.scaled_time(run_on, 1000, 1.0, torch.device("cpu"), smallest=10, floor_s=1e6)
    assert "memory" in classes.scaled_time(run_on, 1000, 1.0, torch.device("cpu"), largest=0)
