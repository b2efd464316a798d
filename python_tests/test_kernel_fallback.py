"""A kernel that fails to compile or launch never takes a run down: under
backend="auto" it warns once, naming the op, the kernel, the error and
`kbald check`, and its op runs the reference from then on; an explicit backend
and KBALD_STRICT=1 raise. Failures are injected into the host-twin slot, which
"auto" runs on CPU tensors: a real Triton compilation (for sm_90, no GPU
needed) that the compiler rejects, Triton's out-of-resources launch error, and
a CUDA launch failure."""

import warnings

import pytest
import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.errors import OutOfResources
from triton.runtime.jit import JITFunction

import kbald_kernels as kb
from kbald_kernels import backends, reference

from conftest import random_log_probs


def _rejected_kernel(x_ptr, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    tl.store(x_ptr + offsets, tl.dot(offsets, offsets))  # tl.dot takes no 1-D operands


def _compile_rejected_kernel():
    # Built as a JITFunction directly: under TRITON_INTERPRET @triton.jit gives an interpreted one.
    triton.compile(ASTSource(JITFunction(_rejected_kernel), {"x_ptr": "*fp32", "BLOCK": "constexpr"},
                             {"BLOCK": 16}), target=GPUTarget("cuda", 90, 32))


def _out_of_resources():
    raise OutOfResources(233_472, 232_448, "shared memory")


def _cuda_launch_failure():
    raise RuntimeError("CUDA error: too many resources requested for launch")


FAILURES = {"compile": (_compile_rejected_kernel, "CompilationError", "_rejected_kernel"),
            "out of resources": (_out_of_resources, "OutOfResources", "shared memory"),
            "launch": (_cuda_launch_failure, "RuntimeError", "too many resources requested for launch")}


@pytest.fixture
def auto_mode(monkeypatch):
    """A process state with no failed kernel yet, no strict mode and no backend preference."""
    monkeypatch.setattr(backends, "_FAILED", {})
    monkeypatch.delenv(backends.STRICT_ENV, raising=False)
    monkeypatch.delenv(backends.BACKEND_ENV, raising=False)


def failing(fail, calls):
    def kernel(*args):
        calls.append(args)
        fail()
    return kernel


def _lp():
    return random_log_probs(61, 5, 4, dtype=torch.float32, device="cpu")


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failing_kernel_warns_once_and_its_op_runs_the_reference(failure, auto_mode, monkeypatch):
    fail, error_name, detail = FAILURES[failure]
    calls = []
    monkeypatch.setitem(backends._REGISTRY["entropies"], "cuda", failing(fail, calls))
    lp = _lp()
    expected = reference.bald(lp.double()).float()
    with pytest.warns(kb.KernelFallbackWarning) as record:
        got = kb.bald(lp)
    fallbacks = [w for w in record if w.category is kb.KernelFallbackWarning]
    assert len(fallbacks) == 1
    message = str(fallbacks[0].message)
    for part in ("host C++ kernel of entropies", error_name, detail, "kbald check --device cpu",
                 "runs the torch reference for the rest of this process", "KBALD_STRICT=1"):
        assert part in message, (part, message)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert backends.choose_backend("entropies", None, lp.device) == "torch"
    assert set(backends.fallbacks()) == {("entropies", "cpu")}
    with warnings.catch_warnings():
        warnings.simplefilter("error", kb.KernelFallbackWarning)
        again = kb.bald(lp)
        kb.select_bald(lp, 3)
    torch.testing.assert_close(again, expected, atol=1e-5, rtol=1e-5)
    assert len(calls) == 1, "the failed kernel must not run again"


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_strict_mode_and_an_explicit_backend_raise(failure, auto_mode, monkeypatch):
    fail, error_name, _ = FAILURES[failure]
    monkeypatch.setitem(backends._REGISTRY["entropies"], "cuda", failing(fail, []))
    lp = _lp()
    with warnings.catch_warnings():
        warnings.simplefilter("error", kb.KernelFallbackWarning)
        with pytest.raises(Exception) as explicit:
            kb.bald(lp, backend="cuda")
        monkeypatch.setenv(backends.STRICT_ENV, "1")
        with pytest.raises(Exception) as strict:
            kb.bald(lp)
    assert type(explicit.value).__name__ == type(strict.value).__name__ == error_name
    assert backends.fallbacks() == {}


def test_a_kernel_module_that_cannot_load_falls_back(auto_mode, monkeypatch):
    monkeypatch.setitem(backends._REGISTRY["entropies"], "cuda", "kbald_kernels.no_such_module:entropies")
    lp = _lp()
    with pytest.warns(kb.KernelFallbackWarning, match="ModuleNotFoundError"):
        got = kb.bald(lp)
    torch.testing.assert_close(got, reference.bald(lp.double()).float(), atol=1e-5, rtol=1e-5)


def test_bad_input_exhausted_memory_and_launcher_bugs_are_not_fallback_cases(auto_mode, monkeypatch):
    def raising(exc):
        def kernel(*args):
            raise exc
        return kernel

    lp = _lp()
    for exc in (ValueError("bad input"), torch.OutOfMemoryError("out of memory"), NotImplementedError("todo"),
                RuntimeError("shape '[3, 4]' is invalid for input of size 7"), IndexError("index 9")):
        monkeypatch.setitem(backends._REGISTRY["entropies"], "cuda", raising(exc))
        with warnings.catch_warnings():
            warnings.simplefilter("error", kb.KernelFallbackWarning)
            with pytest.raises(type(exc)):
                kb.bald(lp)
    assert backends.fallbacks() == {}


def test_a_kernel_that_fails_after_writing_its_state_leaves_the_reference_a_clean_copy(auto_mode, monkeypatch):
    """The 2-BALD step updates the running increments and picked flags in place; a
    kernel that scribbles on them and then fails must not change the selection."""
    lp = _lp()
    expected = kb.select_kbald(lp.double(), 6, order=2, backend="torch")

    def scribbling(log_probs, entropy, increment, selected, newest, n_steps):
        increment.fill_(123.0)
        selected[::2] = True
        _cuda_launch_failure()

    monkeypatch.setitem(backends._REGISTRY["kbald_pairwise_steps"], "cuda", scribbling)
    with pytest.warns(kb.KernelFallbackWarning, match="kbald_pairwise_steps"):
        got = kb.select_kbald(lp, 6, order=2)
    assert got.indices.tolist() == expected.indices.tolist()
    torch.testing.assert_close(got.scores.double(), expected.scores, atol=1e-5, rtol=1e-5)


def test_a_greedy_loop_whose_later_step_fails_after_earlier_calls_ran_is_restored(auto_mode, monkeypatch):
    """A step loop's later launches compile specialisations of their own (the step
    after a pick reads the newest pick's row): a call that ran before proves nothing
    about the next, so the state copy is taken on every call."""
    lp = _lp()
    expected = kb.select_kbald(lp.double(), 5, order=2, backend="torch")
    host_steps = backends._resolved("kbald_pairwise_steps", "cuda")

    def one_step_then_fail(log_probs, entropy, increment, selected, newest, n_steps):
        out = host_steps(log_probs, entropy, increment, selected, newest, 1)
        if n_steps > 1:
            _cuda_launch_failure()
        return out

    monkeypatch.setitem(backends._REGISTRY["kbald_pairwise_steps"], "cuda", one_step_then_fail)
    with warnings.catch_warnings():
        warnings.simplefilter("error", kb.KernelFallbackWarning)
        kb.select_kbald(lp[:50], 1, order=2)
    with pytest.warns(kb.KernelFallbackWarning, match="kbald_pairwise_steps"):
        got = kb.select_kbald(lp, 5, order=2)
    assert got.indices.tolist() == expected.indices.tolist()


def test_a_lazy_ordering_that_kept_the_kernel_falls_back_too(auto_mode, monkeypatch):
    x = torch.randn(80, 6)
    expected = kb.kmeanspp(x, 12, generator=5, backend="torch")
    calls = []
    monkeypatch.setitem(backends._REGISTRY["kmeanspp_steps"], "cuda", failing(_out_of_resources, calls))
    ordering = kb.KMeansPPOrdering(x, generator=5)
    with pytest.warns(kb.KernelFallbackWarning, match="kmeanspp_steps"):
        first = ordering.take(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", kb.KernelFallbackWarning)
        rest = ordering.take(8)
    assert torch.cat([first.indices, rest.indices]).tolist() == expected.indices.tolist()
    assert len(calls) == 1
