"""pytest-benchmark timings of the ops per device, on the backend "auto" picks and on
the torch reference, grouped by op so each group compares the two.

Run with ``pytest bench --benchmark-only``; CI never asserts a speed.
"""

import pytest
import torch

import kbald_kernels as kb

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
BACKENDS = ["auto", "torch"]


def log_probs(n, k, c, device):
    gen = torch.Generator().manual_seed(0)
    return torch.log_softmax(torch.randn(n, k, c, generator=gen) * 2, -1).to(device)


def run(fn, device):
    def call():
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return call


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.benchmark(group="bald N=20000 K=20 C=10")
def test_bald(benchmark, device, backend):
    lp = log_probs(20_000, 20, 10, device)
    benchmark(run(lambda: kb.bald(lp, backend=backend), device))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.benchmark(group="pairwise MI 256 x 4096, K=20 C=10")
def test_pairwise_mutual_information(benchmark, device, backend):
    lp = log_probs(4096, 20, 10, device)
    benchmark(run(lambda: kb.pairwise_mutual_information(lp[:256], lp, backend=backend), device))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.benchmark(group="k-means++ 100 of N=5000 D=256")
def test_kmeanspp(benchmark, device, backend):
    x = torch.randn(5000, 256, device=device)
    benchmark(run(lambda: kb.kmeanspp(x, 100, generator=0, backend=backend), device))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.benchmark(group="BatchBALD batch 5 of N=1000 K=20 C=10, M=1000")
def test_batchbald(benchmark, device, backend):
    lp = log_probs(1000, 20, 10, device)
    benchmark(run(lambda: kb.select_batchbald(lp, 5, num_samples=1000, generator=0, backend=backend), device))
