"""The compiled joint-entropy accumulation (BatchBALD's inner op): the host C++ twin,
the CUDA kernel's block program replayed on the host, and the CUDA kernel itself
where there is a GPU, each against the float64 reference."""

import itertools
import math

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import backends, native, reference

import brute_force
from conftest import random_log_probs

SIZES = [  # (M configurations, N points, K samples, C classes)
    (1, 1, 1, 1),
    (1, 7, 3, 2),
    (5, 7, 20, 17),
    (65, 13, 3, 10),
    (130, 129, 17, 3),
    (64, 30, 33, 2),
]


def random_configurations(m, k, generator):
    weights = torch.rand(m, k, dtype=torch.float64, generator=generator) ** 3  # some near-zero weights
    weights /= weights.sum(1, keepdim=True)
    alpha = torch.rand(m, dtype=torch.float64, generator=generator)
    return weights, alpha / alpha.sum()


def reference_value(weights, alpha, log_probs):
    return reference.accumulate_joint_entropy(weights.double(), alpha.double(), log_probs.double())


def assert_relative(got, expected, rtol):
    # Relative to max(|value|, 1): a point certain of its label has joint entropy ~0,
    # where float32 rounding of q ≈ 1 leaves an absolute ~1e-7.
    error = ((got.double() - expected).abs() / expected.abs().clamp_min(1.0)).max()
    assert float(error) < rtol, float(error)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("m,n,k,c", SIZES)
def test_host_twin_matches_the_reference(m, n, k, c, dtype):
    gen = torch.Generator().manual_seed(m * 1000 + n)
    log_probs = random_log_probs(n, k, c, zeros=True, generator=gen, device="cpu").to(dtype)
    weights, alpha = random_configurations(m, k, gen)
    got = native.accumulate_joint_entropy(weights.float(), alpha.float(), log_probs)
    assert got.dtype == torch.float32 and got.shape == (n,)
    assert_relative(got, reference_value(weights.float(), alpha.float(), log_probs), 1e-5)


def test_host_twin_writes_every_output():
    module = native.host_module()
    log_probs = random_log_probs(37, 5, 7, zeros=True, device="cpu")
    weights, alpha = random_configurations(9, 5, torch.Generator().manual_seed(3))
    log_probs, weights, alpha = log_probs.float(), weights.float(), alpha.float()
    out = torch.full((37,), math.nan)
    module.accumulate_joint_entropy(weights.data_ptr(), alpha.data_ptr(), *native.pool_arguments(log_probs),
                                    out.data_ptr(), 9, 37, 5, 7)
    assert_relative(out, reference_value(weights, alpha, log_probs), 1e-5)


def test_host_twin_is_deterministic():
    log_probs = random_log_probs(300, 20, 10, device="cpu", dtype=torch.float32)
    weights, alpha = random_configurations(1000, 20, torch.Generator().manual_seed(4))
    first = native.accumulate_joint_entropy(weights.float(), alpha.float(), log_probs)
    second = native.accumulate_joint_entropy(weights.float(), alpha.float(), log_probs)
    assert torch.equal(first, second)


@pytest.mark.parametrize("splits", [1, 2, 5])
@pytest.mark.parametrize("m,n,k,c", SIZES)
def test_cuda_block_program_replayed_on_the_host_matches_the_reference(m, n, k, c, splits):
    gen = torch.Generator().manual_seed(m * 7 + n)
    log_probs = random_log_probs(n, k, c, zeros=True, generator=gen, device="cpu")
    weights, alpha = random_configurations(m, k, gen)
    got = native.emulate_joint_entropy_kernel(weights, alpha, log_probs, splits)
    assert_relative(got, reference_value(weights.float(), alpha.float(), log_probs.float()), 1e-5)


def test_float64_stays_on_the_reference():
    log_probs = random_log_probs(9, 4, 3, device="cpu")
    weights, alpha = random_configurations(6, 4, torch.Generator().manual_seed(5))
    got = native.accumulate_joint_entropy(weights, alpha, log_probs)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, reference_value(weights, alpha, log_probs), rtol=0, atol=0)


def test_bad_shapes_are_named():
    log_probs = random_log_probs(4, 3, 2, device="cpu", dtype=torch.float32)
    with pytest.raises(ValueError, match=r"weights must be \[M, 3\]"):
        native.accumulate_joint_entropy(torch.ones(2, 4), torch.ones(2), log_probs)
    with pytest.raises(ValueError, match="log_probs"):
        native.accumulate_joint_entropy(torch.ones(2, 3), torch.ones(2), log_probs[0])


def test_auto_runs_the_host_twin_on_cpu_tensors():
    for op in ("joint_entropy", "accumulate_joint_entropy"):
        assert backends.choose_backend(op, "auto", torch.device("cpu")) == "cuda"
        assert backends.choose_backend(op, "torch", torch.device("cpu")) == "torch"


@pytest.mark.parametrize("selected", [[], [2], [0, 6, 3]])
def test_joint_entropy_on_the_host_twin_matches_enumeration(selected):
    log_probs = random_log_probs(7, 5, 3, zeros=True, device="cpu")
    got = kb.joint_entropy(log_probs.float(), selected)
    assert got.dtype == torch.float32
    expected = torch.tensor([brute_force.joint_entropy(log_probs, selected + [i]) for i in range(7)])
    assert_relative(got, expected.double(), 1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_exact_batchbald_on_the_host_twin_matches_brute_force_greedy(seed):
    gen = torch.Generator().manual_seed(10 + seed)
    log_probs = random_log_probs(8, 6, 3, zeros=True, generator=gen, device="cpu")
    got = kb.select_batchbald(log_probs.float(), 4, num_samples=3**4, backend="cuda")
    indices, values = brute_force.greedy(lambda batch: brute_force.joint_mutual_information(log_probs, batch), 8, 4)
    assert got.indices.tolist() == indices
    torch.testing.assert_close(got.scores.double(), torch.tensor(values, dtype=torch.float64), rtol=1e-5, atol=1e-5)


def test_batchbald_picks_the_same_on_the_host_twin_and_the_reference():
    log_probs = random_log_probs(200, 10, 5, device="cpu", dtype=torch.float32)
    twin = kb.select_batchbald(log_probs, 8, num_samples=500, generator=3, backend="cuda")
    ref = kb.select_batchbald(log_probs, 8, num_samples=500, generator=3, backend="torch")
    assert twin.indices.tolist() == ref.indices.tolist()
    torch.testing.assert_close(twin.scores, ref.scores, rtol=1e-5, atol=1e-5)


def test_sampled_estimate_converges_to_the_exact_value():
    # The sampled estimator is a mean of i.i.d. per-configuration terms, so its error
    # must stay within a few standard errors, and the standard error (std / sqrt(M))
    # falls by half each time M grows by four.
    log_probs = random_log_probs(6, 8, 10, device="cpu")
    selected = [0, 1, 2, 3, 4]
    exact = kb.joint_entropy(log_probs, selected)
    errors, standard_errors = [], []
    for m in (500, 2000, 8000):
        gen = torch.Generator().manual_seed(m)
        configs = reference.empty_configurations(8)
        for s in selected:
            configs = reference.extend_configurations(configs, log_probs[s], m, gen)
        assert not configs.exact and configs.weights.shape[0] == m
        estimate = reference.configurations_entropy(configs) + native.accumulate_joint_entropy(
            configs.weights.float(), configs.alpha.float(), log_probs.float()).double()
        q = torch.einsum("mk,nkc->mnc", configs.weights, log_probs.exp())
        terms = -configs.log_prob[:, None] - torch.where(q > 0, q * q.log(), 0).sum(-1)
        standard_errors.append(terms.std(0) / math.sqrt(m))
        errors.append((estimate - exact).abs())
        assert bool((errors[-1] < 5 * standard_errors[-1]).all()), errors[-1] / standard_errors[-1]
    torch.testing.assert_close(standard_errors[2] * 4, standard_errors[0], rtol=0.2, atol=0)


@pytest.mark.gpu_smoke
@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA kernel needs a CUDA device")
def test_cuda_kernel_matches_the_host_twin_and_the_reference():
    for (m, n, k, c), dtype in itertools.product(SIZES + [(10_000, 3000, 20, 10)],
                                                 [torch.float32, torch.float16, torch.bfloat16]):
        gen = torch.Generator().manual_seed(m + n)
        log_probs = random_log_probs(n, k, c, zeros=True, generator=gen, device="cpu").to(dtype)
        weights, alpha = random_configurations(m, k, gen)
        weights, alpha = weights.float(), alpha.float()
        got = native.accumulate_joint_entropy(weights.cuda(), alpha.cuda(), log_probs.cuda())
        twin = native.accumulate_joint_entropy(weights, alpha, log_probs)
        assert_relative(got.cpu(), reference_value(weights, alpha, log_probs), 1e-5)
        assert_relative(got.cpu(), twin.double(), 1e-5)
        again = native.accumulate_joint_entropy(weights.cuda(), alpha.cuda(), log_probs.cuda())
        assert torch.equal(got, again), (m, n, k, c, dtype)


@pytest.mark.gpu_smoke
@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA kernel needs a CUDA device")
def test_batchbald_on_the_cuda_kernel_picks_as_the_host_twin():
    log_probs = random_log_probs(500, 20, 10, device="cpu", dtype=torch.float32)
    gpu = kb.select_batchbald(log_probs.cuda(), 6, num_samples=1000, generator=2)
    cpu = kb.select_batchbald(log_probs, 6, num_samples=1000, generator=2)
    assert gpu.indices.tolist()[:4] == cpu.indices.tolist()[:4]  # exact-mode picks; sampling streams differ by device
