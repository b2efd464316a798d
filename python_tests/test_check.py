"""`kbald check`: every op on every backend this machine runs, against the float64
reference; a wrong value, a differing pick, an error or a silent fallback to the
reference fails it."""

import argparse
import math

import pytest
import torch

from kbald_kernels import backends, check, reference
from kbald_kernels.cli import main


def test_kbald_check_passes_on_the_host_twins(capsys, tmp_path):
    assert main(["check", "--quick", "--report", str(tmp_path / "check.md")]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "host C++" in line]
    ops_with_twins = {op for op, backend, _ in check.runnable(torch.device("cpu"), False)}
    assert {line.split(" | ")[0][2:] for line in rows} == ops_with_twins == set(check.CASES)
    assert all(line.rstrip().endswith("| ok |") for line in rows)
    assert len(rows) == 2 * len(check.CASES)  # the odd and the medium pool
    for name in ("torch:", "triton:", "host C++ module: loaded", "CUDA module:", "device: CPU"):
        assert name in out
    assert f"{len(rows)} of {len(rows)} rows ok" in out
    report = (tmp_path / "check.md").read_text()
    assert all(line in report for line in rows) and "- host C++ module: loaded" in report


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton and CUDA kernels natively need a CUDA device")
def test_kbald_check_passes_on_cuda_tensors():
    """Every kernel natively, at an odd pool and at P1 (N=60 000, K=100, C=10)."""
    rows, failures = check.run("cuda", quick=True)
    assert {(row.op, row.ran) for row in rows} >= {(op, "Triton") for op in check.CASES
                                                     if "triton" in backends._REGISTRY[op]}
    assert all(row.ok for row in rows), "\n".join([*map(str, (r for r in rows if not r.ok)), *failures])


def test_the_interpreter_runs_the_triton_kernels_too():
    found = check.runnable(torch.device("cpu"), interpret=True)
    assert all(why is None for *_, why in found)
    assert {op for op, backend, _ in found if backend == "triton"} == {
        op for op in check.CASES if "triton" in backends._REGISTRY[op]}
    lp = check.pool(check.Shape("odd", 37, 5, 3), "cpu")
    for op in ("uncertainties", "kbald_pairwise_steps", "kmeanspp_steps"):
        row, trace = check.check_one(op, "triton", lp, "odd", interpret=True)
        assert row.ok and row.ran == "Triton (interpreter)", (row, trace)
        assert row.error <= 1


def _pool():
    return check.pool(check.Shape("odd", 41, 6, 5), "cpu")


def test_a_validation_flag_that_misfires_or_never_fires_is_a_mismatch(monkeypatch):
    real = backends._resolved("entropies", "cuda")
    for flag in (lambda lp: torch.ones(()), lambda lp: torch.zeros(())):
        monkeypatch.setitem(backends._REGISTRY["entropies"], "cuda",
                            lambda lp, flag=flag: (*real(lp)[:2], flag(lp)))
        row, _ = check.check_one("entropies", "cuda", _pool(), "odd", interpret=False)
        assert row.verdict == "MISMATCH", row


def test_a_kernel_that_cannot_run_on_cuda_tensors_is_a_failing_row(monkeypatch):
    monkeypatch.setattr(backends, "_cuda_status", lambda device=None, op=None: backends.BackendStatus(
        False, "CUDA module not built"))
    monkeypatch.setattr(backends, "_triton_status", lambda device=None: backends.BackendStatus(True, "triton"))
    found = check.runnable(torch.device("cuda"), interpret=False)
    unavailable = {op for op, backend, why in found if backend == "cuda" and why}
    assert unavailable == {op for op in check.CASES if "cuda" in backends._REGISTRY[op]}
    assert all("CUDA module not built" in why for op, backend, why in found if backend == "cuda")


def test_a_wrong_value_is_a_mismatch(monkeypatch):
    real = backends._resolved("entropies", "cuda")
    monkeypatch.setitem(backends._REGISTRY["entropies"], "cuda",
                        lambda lp: (real(lp)[0] + 1e-3, *real(lp)[1:]))
    row, _ = check.check_one("entropies", "cuda", _pool(), "odd", interpret=False)
    assert row.verdict == "MISMATCH" and row.error > 1 and not row.ok


def test_a_differing_pick_is_a_mismatch(monkeypatch):
    real = backends._resolved("kbald_pairwise_steps", "cuda")

    def swapped(*args):
        indices, scores = real(*args)
        return indices.flip(0), scores

    monkeypatch.setitem(backends._REGISTRY["kbald_pairwise_steps"], "cuda", swapped)
    row, _ = check.check_one("kbald_pairwise_steps", "cuda", _pool(), "odd", interpret=False)
    assert row.picks == "DIFFER" and row.verdict == "MISMATCH"


def test_a_kernel_that_hands_the_op_to_the_reference_is_a_fallback(monkeypatch):
    monkeypatch.setitem(backends._REGISTRY["epig"], "cuda", lambda *args: reference.epig(*args))
    row, _ = check.check_one("epig", "cuda", _pool(), "odd", interpret=False)
    assert row.verdict == "FALLBACK"


def test_a_failing_kernel_is_an_error_row_and_the_check_goes_on(monkeypatch, capsys):
    def failing(*args):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setitem(backends._REGISTRY["min_squared_distances"], "cuda", failing)
    monkeypatch.setattr(check, "shapes", lambda *args: [check.Shape("odd", 41, 6, 5)])
    args = argparse.Namespace(device="cpu", quick=True, interpret=False, report=None)
    assert check.main(args) == 1
    out = capsys.readouterr().out
    assert "ERROR: RuntimeError: CUDA error: an illegal memory access" in out
    assert "min_squared_distances on host C++ (ERROR" in out
    assert f"{len(check.CASES) - 1} of {len(check.CASES)} rows ok" in out


@pytest.mark.parametrize("got, want, ratio", [
    ([1.0, 2.0], [1.0, 2.0], 0.0),
    ([1.0, math.inf], [1.0, math.inf], 0.0),
    ([1.0, 2.0], [1.0, math.inf], math.inf),
    ([math.nan, 2.0], [1.0, 2.0], math.inf),
])
def test_error_ratio_counts_disagreeing_non_finite_entries(got, want, ratio):
    assert check.error_ratio(torch.tensor(got), torch.tensor(want), (1e-4, 0.0))[0] == ratio
