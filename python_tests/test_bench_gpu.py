"""The command that turns a lent GPU into reports (bench/gpu.py): its plan, its
steps held to their time limit and the whole run to its budget. On this machine it
runs only what needs no GPU."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import gpu, headline  # noqa: E402


def test_plan_lists_every_stage_and_what_this_machine_can_run():
    result = subprocess.run([sys.executable, "-m", "bench.gpu", "--plan"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "results: bench/results/" in lines[0]
    planned = {line.split()[0]: line for line in lines[1:]}
    assert list(planned) == list(gpu.ORDER)
    for stage, line in planned.items():
        needs_gpu = stage in gpu.NEEDS_GPU and not torch.cuda.is_available()
        assert ("needs a GPU" in line) == needs_gpu, line
    assert "KBALD" not in planned["compile"]  # the environment is the step's, not the command line's


def test_a_step_past_its_limit_is_stopped_and_logged(tmp_path):
    with open(tmp_path / "step.log", "w+") as log:
        rc, seconds = gpu.run_step("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], {}, log, 1.0)
    assert rc == "timed out" and seconds < 20
    assert "# sleeper: exit timed out" in (tmp_path / "step.log").read_text()


def test_a_step_gets_its_environment(tmp_path):
    argv = [sys.executable, "-c", "import os, sys; sys.exit(0 if os.environ.get('KBALD_PROBE') == '7' "
                                  "and 'TRITON_INTERPRET' not in os.environ else 3)"]
    with open(tmp_path / "step.log", "w+") as log:
        rc, _ = gpu.run_step("probe", argv, {"KBALD_PROBE": "7", "TRITON_INTERPRET": None}, log, 60)
    assert rc == 0


def test_the_budget_cuts_a_slow_stage_skips_what_no_longer_fits_and_the_summary_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu, "SHARES", {"slow": 2.0})
    monkeypatch.setattr(gpu, "FLOOR_S", 4.0)
    monkeypatch.setattr(gpu, "MARGIN_S", 1.0)
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    # The second stage passes only if the summary was written after the first.
    summary = tmp_path / "summary.md"
    check = [sys.executable, "-c", f"import sys; sys.exit(0 if 'timed out' in open({str(summary)!r}).read() else 3)"]
    plan = {"slow": [("sleeper", sleep, {})], "after": [("summary written", check, {})],
            "long": [("unshared sleeper", sleep, {})], "late": [("never", [sys.executable, "-c", "pass"], {})]}
    started = time.time()
    passed = gpu.run_plan(plan, list(plan), 12.0, tmp_path, "test device", skipped=["build"])
    assert time.time() - started < 14  # the budget, not the sleeps, decided
    assert not passed
    text = summary.read_text()
    assert "| slow | sleeper | timed out | 2 s | 2 s |" in text
    assert "| after | summary written | 0 |" in text
    assert "| long | unshared sleeper | timed out |" in text
    assert "Not run (under 4 s of the budget left): late." in text
    assert "Not run here (no GPU): build." in text


def test_the_summary_carries_the_headline_ratios(tmp_path):
    report = {"rows": [["BALD P1", "60000x100x10", "≥ 80 % of copy bandwidth", "1.10 ms, 85 %", "1.06", "yes"]]}
    (tmp_path / "headline-gpu.json").write_text(json.dumps(report))
    gpu.write_summary(tmp_path, "test device", 600, [], [], [])
    assert "| BALD P1 | 1.10 ms, 85 % | ≥ 80 % of copy bandwidth | 1.06 |" in (tmp_path / "summary.md").read_text()


def test_the_summary_opens_with_the_check_table(tmp_path):
    (tmp_path / "check.md").write_text("# kbald check --device cuda\n\n| op | ran |\n|---|---|\n| epig | Triton |\n")
    report = {"rows": [["BALD P1", "60000x100x10", "target", "1.10 ms", "1.06", "yes"]]}
    (tmp_path / "headline-gpu.json").write_text(json.dumps(report))
    gpu.write_summary(tmp_path, "test device", 600, [("build", "setup.py", 0, 30.0, 150.0)], [], [])
    text = (tmp_path / "summary.md").read_text()
    assert "## kbald check --device cuda" in text
    assert text.index("| epig | Triton |") < text.index("| stage | step |") < text.index("| BALD P1 |")


def test_the_headline_report_runs_at_toy_size(tmp_path):
    env = {**os.environ, "KBALD_BENCH_RESULTS": str(tmp_path)}
    env.pop("TRITON_INTERPRET", None)
    result = subprocess.run([sys.executable, "-m", "bench.headline", "--quick", "--device", "cpu"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(next(tmp_path.glob("headline-*.json")).read_text())["rows"]
    assert [row[0] for row in rows] == [row[0] for row in headline.ROWS]
    assert all(float(row[4]) > 0 for row in rows)
