"""The host C++ twin of the one-pass information kernel (entropy, conditional entropy,
BALD on CPU tensors) and the host normalisation sums behind input validation, each
against the float64 reference on small and odd shapes with zero probabilities."""

import math

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import backends, native, reference

from conftest import random_log_probs

DTYPES = [(torch.float32, 2e-6), (torch.float16, 2e-6), (torch.bfloat16, 2e-6)]


@pytest.mark.parametrize("n", [1, 7, 129])
@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("c", [1, 2, 3, 10, 17])
@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_host_entropies_match_the_reference(n, k, c, dtype, tol):
    lp = random_log_probs(n, k, c, dtype=dtype, zeros=True, device="cpu")
    # The oracle sees the rounded input in float64, so only the twin's arithmetic differs.
    h, ch = native.entropies(lp)
    expected_h, expected_ch = reference.entropies(lp.double())
    for got, expected in ((h, expected_h), (ch, expected_ch)):
        assert got.dtype == torch.float32 and got.shape == (n,) and not got.isnan().any()
        torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol * max(1.0, float(expected.max())))


def test_host_entropies_read_strided_input_and_large_pools():
    base = random_log_probs(3001, 20, 10, dtype=torch.float32, zeros=True, device="cpu")
    view = base.permute(0, 2, 1).contiguous().permute(0, 2, 1)
    assert not view.is_contiguous()
    h, ch = native.entropies(view)
    expected_h, expected_ch = reference.entropies(base.double())
    torch.testing.assert_close(h.double(), expected_h, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(ch.double(), expected_ch, rtol=2e-6, atol=2e-6)


def test_host_entropies_of_certain_and_uniform_points_are_exact():
    certain = torch.full((1, 4, 5), -math.inf)
    certain[..., 2] = 0.0
    uniform = torch.full((1, 4, 5), -math.log(5.0))
    h, ch = native.entropies(torch.cat([certain, uniform]))
    assert h[0] == 0 and ch[0] == 0
    torch.testing.assert_close(h[1], torch.tensor(math.log(5.0)), rtol=1e-6, atol=0)
    torch.testing.assert_close(ch[1], torch.tensor(math.log(5.0)), rtol=1e-6, atol=0)


def test_auto_runs_the_host_twin_for_cpu_information_ops():
    for op in ("entropies", "entropy", "conditional_entropy", "bald"):
        assert backends.choose_backend(op, "auto", torch.device("cpu")) == "cuda"
    lp = random_log_probs(50, 7, 4, dtype=torch.float32, zeros=True, device="cpu")
    torch.testing.assert_close(kb.bald(lp), reference.bald(lp.double()).float(), rtol=2e-6, atol=2e-6)
    # float64 stays on the reference, bit for bit.
    assert torch.equal(kb.bald(lp.double()), reference.bald(lp.double()))


@pytest.mark.parametrize("c", [1, 2, 10, 17, 33])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_host_probability_sums_match_torch(c, dtype):
    lp = random_log_probs(41, 3, c, dtype=dtype, zeros=True, device="cpu")
    lp[0, 0, 0] = 0.7  # an unnormalised row, above 1
    lp[1, 2, :] = -90.0  # below the float exponent range: sums to ~0
    x = lp.float().contiguous()
    sums = torch.full(lp.shape[:2], math.nan)
    native.host_module().probability_sums(x.data_ptr(), sums.data_ptr(), 41 * 3, c)
    torch.testing.assert_close(sums.double(), x.double().exp().sum(-1), rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("value", [math.nan, math.inf, 100.0])
def test_host_probability_sums_flag_bad_values(value):
    x = torch.log_softmax(torch.randn(5, 7), -1)
    x[3, 4] = value
    sums = torch.full((5,), 1.0)
    native.host_module().probability_sums(x.data_ptr(), sums.data_ptr(), 5, 7)
    assert not (sums[3] <= 2.0)  # NaN or far above 1
    torch.testing.assert_close(sums[[0, 1, 2, 4]], torch.ones(4), rtol=1e-6, atol=0)
