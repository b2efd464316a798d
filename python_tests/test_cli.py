"""The ``kbald`` command as a user runs it: through a subprocess."""

import os
import subprocess
import sys

import pytest


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-m", "kbald_kernels", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_default_runs_every_method_on_the_example_pool():
    result = run("--pool-size", "300", "--batch-size", "4", "--num-samples", "200")
    assert result.returncode == 0, result.stderr
    for method in ("BALD (top-k)", "2-BALD", "3-BALD", "BatchBALD", "BADGE", "k-means++", "CORESET"):
        assert method in result.stdout
    table = [line for line in result.stdout.splitlines() if line.startswith(("BALD", "2-", "3-", "Batch"))]
    assert len(table) == 4 and all(len(line.split()) >= 6 for line in table)


def test_backends_lists_all_three():
    result = run("backends")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["torch", "triton", "cuda"]


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "500", "--pool-size", "100"], "batch_size must be between 1 and"),
    (["--pool-size", "0"], "must be a positive integer"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
