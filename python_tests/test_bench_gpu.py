"""The command that turns a lent GPU into reports (bench/gpu.py): its plan, and its
steps held to their time limit. On this machine it runs only what needs no GPU."""

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import gpu  # noqa: E402


def test_plan_lists_every_stage_and_what_this_machine_can_run():
    result = subprocess.run([sys.executable, "-m", "bench.gpu", "--plan"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "results: bench/results/" in lines[0]
    planned = {line.split()[0]: line for line in lines[1:]}
    assert set(planned) == {"build", "tests", "compile", "traffic", *gpu.BENCH_REPORTS}
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
