"""EPIG (DESIGN.md, The math): the reference against the definition (the weighted
mean of exact pairwise mutual informations, by enumeration), the Triton kernel under
the interpreter against the reference, the public function's checks, and select_epig."""

import contextlib
import math

import numpy as np
import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import reference
from kbald_kernels.reference.normalisation import NORMALISATION_TOLERANCE

import brute_force
from conftest import DEVICE, HOST_ISAS, host_isa_held_at, random_log_probs


def brute_force_epig(pool, targets, weights):
    both = torch.cat([pool, targets])
    n = pool.shape[0]
    return torch.tensor([sum(float(w) * brute_force.interaction(both, [i, n + t]) for t, w in enumerate(weights))
                         for i in range(n)], dtype=torch.float64)


@pytest.mark.parametrize("n,t,k,c", [(1, 1, 1, 2), (6, 4, 5, 3), (9, 2, 3, 1)])
def test_reference_is_the_weighted_mean_of_pairwise_mutual_informations(n, t, k, c):
    pool, targets = random_log_probs(n, k, c, zeros=True), random_log_probs(t, k, c, zeros=True)
    weights = torch.rand(t, dtype=torch.float64) + 0.1
    weights /= weights.sum()
    got = reference.epig(pool, targets, (reference.entropy(pool), reference.entropy(targets)), weights.to(DEVICE))
    torch.testing.assert_close(got.cpu(), brute_force_epig(pool, targets, weights), rtol=1e-9, atol=1e-12)


def test_a_target_independent_of_the_pool_carries_nothing():
    pool = random_log_probs(5, 6, 3)
    # Every posterior sample predicts the same for the target: nothing to learn about it.
    target = torch.log_softmax(torch.randn(1, 1, 3, dtype=torch.float64), -1).expand(1, 6, 3).to(DEVICE)
    torch.testing.assert_close(kb.epig(pool, target).cpu(), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-12)


# T·C crosses the host twin's 32-column blocks at 33 (3 × 11); C = 200 is past every register row.
@pytest.mark.parametrize("n,t,k,c", [(1, 1, 1, 1), (7, 3, 20, 10), (19, 17, 3, 2), (33, 9, 17, 17), (6, 5, 3, 64),
                                     (5, 4, 2, 65), (4, 3, 5, 11), (3, 2, 4, 200)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kernel", ["triton"] + [f"host {isa}" for isa in HOST_ISAS])
def test_kernel_matches_the_reference(n, t, k, c, dtype, kernel):
    from kbald_kernels import native
    from kbald_kernels.triton.epig import epig as triton_epig

    device = DEVICE if kernel == "triton" else "cpu"
    held = contextlib.nullcontext() if kernel == "triton" else host_isa_held_at(kernel.split()[1])
    pool = random_log_probs(n, k, c, zeros=True, device=device).to(dtype)
    targets = random_log_probs(t, k, c, zeros=True, device=device).to(dtype)
    weights = torch.softmax(torch.randn(t, dtype=torch.float64), 0).to(device)
    h = (reference.entropy(pool.double()), reference.entropy(targets.double()))
    expected = reference.epig(pool.double(), targets.double(), h, weights)
    with held:
        got = (triton_epig if kernel == "triton" else native.epig)(pool, targets, (h[0].float(), h[1].float()),
                                                                   weights)
    tol = 2 * NORMALISATION_TOLERANCE[dtype] + 2e-5
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", ["torch", "triton", "cuda", "auto"])
def test_public_epig_weights_and_backends(backend):
    pool, targets = random_log_probs(12, 5, 4, dtype=torch.float32), random_log_probs(6, 5, 4, dtype=torch.float32)
    if backend == "cuda" and pool.device.type != "cpu":
        pytest.skip("'cuda' runs EPIG's host twin on CPU tensors; on a GPU EPIG is a Triton kernel")
    weights = torch.tensor([3.0, 0.0, 1.0, 1.0, 0.0, 5.0])
    got = kb.epig(pool, targets, target_weights=weights, backend=backend)
    expected = brute_force_epig(pool.double().cpu(), targets.double().cpu(), weights / weights.sum())
    torch.testing.assert_close(got.double().cpu(), expected, rtol=1e-4, atol=1e-5)
    uniform = kb.epig(pool, targets, backend=backend)
    torch.testing.assert_close(uniform.double().cpu(), brute_force_epig(pool.double().cpu(), targets.double().cpu(),
                                                                       torch.full((6,), 1 / 6)), rtol=1e-4, atol=1e-5)


def test_bad_targets_and_weights_are_named():
    pool, targets = random_log_probs(4, 3, 2), random_log_probs(3, 3, 2)
    with pytest.raises(ValueError, match="target_log_probs must share K and C"):
        kb.epig(pool, random_log_probs(3, 4, 2))
    bad = targets.clone()
    bad[2, 1, 0] = math.nan
    with pytest.raises(ValueError, match=r"target_log_probs contains NaN at index \(2, 1, 0\)"):
        kb.epig(pool, bad)
    for weights, message in (([1.0, 2.0], r"target_weights must have shape \[3\]"),
                             ([1.0, -1.0, 1.0], "non-negative"), ([0.0, 0.0, 0.0], "not all 0"),
                             ([1.0, math.inf, 1.0], "finite")):
        with pytest.raises(ValueError, match=message):
            kb.epig(pool, targets, target_weights=torch.tensor(weights))


def test_select_epig_top_and_stochastic():
    pool, targets = random_log_probs(40, 6, 3).cpu().numpy(), random_log_probs(5, 6, 3).cpu().numpy()
    scores = kb.epig(pool, targets)
    top = kb.select_epig(pool, targets, 6)
    assert isinstance(top.indices, np.ndarray)
    assert top.indices.tolist() == np.argsort(-scores, kind="stable")[:6].tolist()
    np.testing.assert_allclose(top.scores, np.cumsum(scores[top.indices]))
    first = kb.select_epig(pool, targets, 6, method="softmax", temperature=0.01, generator=3)
    again = kb.select_epig(pool, targets, 6, method="softmax", temperature=0.01, generator=3)
    assert first.indices.tolist() == again.indices.tolist() and len(set(first.indices.tolist())) == 6
    with pytest.raises(ValueError, match="method must be one of"):
        kb.select_epig(pool, targets, 2, method="best")
