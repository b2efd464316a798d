"""Backend choice: names, the environment default, and clear refusals."""

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import backends

from conftest import random_log_probs


def test_available_backends_explains_each():
    status = kb.available_backends()
    assert set(status) == {"torch", "triton", "cuda"}
    assert status["torch"].available
    for name in ("triton", "cuda"):
        assert status[name].reason
        if not status[name].available:
            assert any(why in status[name].reason for why in ("no op has a kernel", "not", "failed"))
    assert "host C++ twin" in status["cuda"].reason and "accumulate_joint_entropy" in status["cuda"].reason


def test_auto_runs_the_host_twin_or_else_the_reference_on_cpu_tensors():
    cpu = torch.device("cpu")
    for backend in ("auto", None):
        assert backends.choose_backend("entropies", backend, cpu) == "cuda"
        assert backends.choose_backend("accumulate_joint_entropy", backend, cpu) == "cuda"
        assert backends.choose_backend("pairwise_mutual_information", backend, cpu) == "cuda"
        assert backends.choose_backend("triple_interaction", backend, cpu) == "torch"


def test_unknown_backend_names_are_rejected(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of 'auto', 'triton', 'cuda', 'torch', got 'gpu'"):
        kb.bald(random_log_probs(3, 2, 2, device="cpu"), backend="gpu")
    monkeypatch.setenv("KBALD_BACKEND", "fast")
    with pytest.raises(ValueError, match="KBALD_BACKEND must be one of"):
        kb.bald(random_log_probs(3, 2, 2, device="cpu"))


def test_explicit_backend_without_a_kernel_is_refused():
    lp = random_log_probs(3, 2, 2, device="cpu")
    with pytest.raises(kb.BackendUnavailableError, match="backend='cuda' has no kernel for triple_interaction"):
        kb.triple_interaction(lp, [[0, 1, 2]], backend="cuda")


def test_environment_default_falls_back_for_ops_without_its_kernel(monkeypatch):
    lp = random_log_probs(5, 3, 2, device="cpu")
    expected = kb.bald(lp)
    monkeypatch.setenv("KBALD_BACKEND", "cuda")
    torch.testing.assert_close(kb.bald(lp), expected)
    monkeypatch.setenv("KBALD_BACKEND", "torch")
    torch.testing.assert_close(kb.bald(lp), expected)


def test_cuda_kernels_refuse_cpu_tensors(monkeypatch):
    lp = random_log_probs(3, 2, 2, device="cpu")
    monkeypatch.setitem(backends._REGISTRY["triple_interaction"], "cuda",
                        lambda *args: pytest.fail("must not run"))
    with pytest.raises(kb.BackendUnavailableError, match="backend='cuda' cannot run triple_interaction"):
        kb.triple_interaction(lp, [[0, 1, 2]], backend="cuda")


def test_host_only_twins_refuse_cuda_tensors():
    status = backends._cuda_status(torch.device("cuda"), "entropies")
    assert not status.available and "no CUDA C++ kernel" in status.reason


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    lp = random_log_probs(3, 2, 2, device="cpu")
    fake = (torch.full((3,), 7.0), torch.zeros(3), torch.zeros((), dtype=torch.int32))
    monkeypatch.setitem(backends._REGISTRY["entropies"], "triton", lambda t: fake)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(kb.BackendUnavailableError, match="TRITON_INTERPRET=1"):
        kb.bald(lp, backend="triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert float(kb.bald(lp, backend="triton")[0]) == 7.0
    # "auto" keeps CPU tensors off the interpreter even when it is on.
    assert float(kb.bald(lp)[0]) != 7.0


def test_acquisitions_fall_back_per_op_under_an_explicit_backend():
    # BatchBALD's accumulation has no Triton kernel; its entropy terms do.
    lp = random_log_probs(12, 4, 3, device="cpu", dtype=torch.float32)
    expected = kb.select_batchbald(lp, 3, backend="torch")
    got = kb.select_batchbald(lp, 3, backend="triton")
    assert got.indices.tolist() == expected.indices.tolist()
    torch.testing.assert_close(got.scores, expected.scores, rtol=1e-4, atol=1e-5)
