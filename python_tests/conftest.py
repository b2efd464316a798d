"""Shared test setup.

Without a GPU the Triton kernels run on CPU tensors through the interpreter, which
must be switched on before triton is first imported. A kernel that fails raises
(KBALD_STRICT) rather than falling back to the reference. Every test starts from
fixed seeds, and the run ends with a line saying what was skipped and why. Under
pytest-xdist (``-n``) each worker takes its share of the cores, so the host C++
twins' and torch's threads do not wait on each other's.
"""

import contextlib
import os
import sys

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # before torch and the host module read it
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

import torch  # noqa: E402

os.environ.setdefault("KBALD_STRICT", "1")

if not torch.cuda.is_available():
    assert "triton" not in sys.modules, "triton was imported before TRITON_INTERPRET could be set"
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    np.random.seed(0)


# The instruction sets the host loops are compiled for (cpu_clones.h), best first.
HOST_ISAS = ["x86-64-v4", "x86-64-v3", "baseline"]


@contextlib.contextmanager
def host_isa_held_at(isa):
    """The host loops run at ``isa`` inside the block (skipped where this processor
    lacks it), at the processor's own set again after."""
    from kbald_kernels.native.modules import host_module

    module = host_module()
    before = module.host_isa()
    if module.cap_host_isa(isa) != isa:
        module.cap_host_isa(before)
        pytest.skip(f"this processor lacks {isa}")
    try:
        yield isa
    finally:
        module.cap_host_isa(before)


@pytest.fixture(params=HOST_ISAS)
def host_isa(request):
    """Each instruction set's code of the host loops, run on this processor."""
    with host_isa_held_at(request.param):
        yield request.param


def random_log_probs(n, k, c, dtype=torch.float64, device=DEVICE, zeros=False, generator=None, spread=2.0):
    """Log-probabilities [n, k, c] with varied confidence; ``zeros`` puts -inf in some entries."""
    logits = torch.randn(n, k, c, dtype=torch.float64, generator=generator) * spread
    logits += torch.randn(n, 1, c, dtype=torch.float64, generator=generator) * spread
    if zeros and c > 1:
        mask = torch.rand(n, k, c, generator=generator) < 0.25
        mask[..., 0] = False  # keep every row normalisable
        logits[mask] = -torch.inf
    return torch.log_softmax(logits, -1).to(device=device, dtype=dtype)


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        terminalreporter.write_line("kbald_kernels: no test skipped")
        return
    terminalreporter.write_line(f"kbald_kernels: {len(skipped)} test(s) SKIPPED, and so not proven:")
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.write_line(f"  {report.nodeid}: {reason}")
