"""Picks and scores are bit-identical whatever the OpenMP thread count, and when
several Python threads run acquisitions at once; a batch's top-k orders ties as a
stable sort does."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from kbald_kernels.library import top_order, top_set

# Big enough that every host twin splits its pool across threads.
_WORKLOAD = """
import torch, kbald_kernels as kb

def workload():
    g = torch.Generator().manual_seed(11)
    lp = (torch.randn(3000, 20, 10, generator=g) * 2).log_softmax(-1)
    targets = (torch.randn(60, 20, 10, generator=g) * 2).log_softmax(-1)
    dense = torch.randn(3000, 48, generator=g)
    features, residuals = torch.randn(3000, 32, generator=g), torch.randn(3000, 10, generator=g)
    return {
        "bald": kb.bald(lp),
        "margin": kb.margin(lp),
        "pairwise": kb.pairwise_mutual_information(lp[:40], lp[1000:1300]),
        "epig": kb.epig(lp, targets),
        "kbald2": kb.select_kbald(lp, 12),
        "kbald3": kb.select_kbald(lp[:800], 5, order=3),
        "batchbald": kb.select_batchbald(lp, 4, num_samples=200, generator=3),
        "joint": kb.joint_entropy(lp, [5, 9, 13], num_samples=300, generator=1),
        "kmeanspp": kb.kmeanspp(dense, 20, generator=5),
        "badge": kb.select_badge((features, residuals), 20, generator=5),
        "coreset": kb.select_coreset(dense, 10, labeled=[0, 1, 2]),
        "softmax": kb.select_stochastic_bald(lp, 10, method="softmax", generator=2),
    }
"""


def _workload():
    namespace = {}
    exec(_WORKLOAD, namespace)
    return namespace["workload"]()


def _flat(results):
    return {f"{name}.{i}": t for name, r in results.items()
            for i, t in enumerate(r if isinstance(r, tuple) else (r,))}


def _assert_bit_identical(got, want):
    got, want = _flat(got), _flat(want)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert torch.equal(got[name].view(torch.uint8) if got[name].dtype != torch.int64 else got[name],
                           want[name].view(torch.uint8) if want[name].dtype != torch.int64 else want[name]), name


def test_results_do_not_depend_on_the_openmp_thread_count(tmp_path):
    script = _WORKLOAD + "\nimport sys\ntorch.save(workload(), sys.argv[1])\n"
    results = {}
    for threads in (1, 2, 3):
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        env["OMP_NUM_THREADS"] = str(threads)
        out = tmp_path / f"threads{threads}.pt"
        subprocess.run([sys.executable, "-c", script, str(out)], env=env, check=True, timeout=600)
        results[threads] = torch.load(out, weights_only=False)  # Selections
    for threads in (2, 3):
        _assert_bit_identical(results[threads], results[1])


def test_four_python_threads_get_the_serial_results():
    serial = _workload()
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda _: _workload(), range(4)))
    for result in concurrent:
        _assert_bit_identical(result, serial)


def test_the_workload_runs_the_host_twins():
    """The determinism above is the compiled path's, not only the reference's."""
    from kbald_kernels.backends import choose_backend

    for op in ("entropies", "uncertainties", "pairwise_mutual_information", "epig", "kbald_pairwise_steps",
               "mutual_information_with_pick", "accumulate_joint_entropy", "kmeanspp_steps", "min_squared_distances"):
        assert choose_backend(op, None, torch.device("cpu"), strict=False) == "cuda", op


@pytest.mark.parametrize("descending", [True, False])
def test_top_order_is_the_prefix_of_a_stable_sort(descending):
    # The batch and prefilter choice: a top-k, yet ties keep the smaller position first
    # (values from 6 levels: ties at the boundary; or distinct: the top-k's own set).
    generator = torch.Generator().manual_seed(3)
    for trial in range(400):
        n = int(torch.randint(1, 80, (1,), generator=generator))
        values = torch.randint(0, 6, (n,), generator=generator).float() if trial % 2 else torch.rand(
            n, generator=generator)
        size = int(torch.randint(1, n + 1, (1,), generator=generator))
        expected = torch.sort(values, descending=descending, stable=True).indices[:size]
        assert torch.equal(top_order(values, size, descending), expected)
        assert torch.equal(top_set(values, size, descending), expected.sort().values)
