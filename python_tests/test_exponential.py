"""The host passes' exponential (kbald/log_probs.h: exp_of_log_probability) against
float64 over its input range: every float in [-86.5, 0] in the slow tier, every 61st
here, with its stated relative error bound; below the range the float text gives 0
exactly, and e^0 is exactly 1. Read through the host module's probabilities pass (the float text,
which GCC vectorises), and through the one pass, whose form on vector lanes is
compiled per instruction set: min and max instructions for its clamps, one fused
multiply-add for its reduction at AVX2 and AVX-512, and at AVX-512 scalef for 2^n,
which underflows and overflows by itself."""

import math

import numpy as np
import pytest
import torch

from kbald_kernels.native.modules import module_for, pool_arguments
from kbald_kernels.reference.normalisation import normalisation_bounds

# kExpRelativeError and kExpRelativeErrorPerUnit in csrc/include/kbald/log_probs.h:
# the bound at x is their sum with the second times |x|.
RELATIVE_ERROR_BOUND = 2.5e-7
RELATIVE_ERROR_PER_UNIT = 2.8e-9
LOWEST = -86.5
# Negative floats in bit order: -0.0 is 0x80000000, and magnitudes grow with the bits.
FIRST_BITS = 0x80000000
LAST_BITS = int(np.array([LOWEST], dtype=np.float32).view(np.uint32)[0])
CHUNK = 1 << 24


def host_exp(x):
    """exp(x) of float32 values through the host module's probabilities pass."""
    module = module_for(torch.device("cpu"))
    pool = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(-1, 1, 1)
    out = torch.empty_like(pool)
    module.probabilities(*pool_arguments(pool), out.data_ptr(), *pool.shape)
    return out.reshape(-1).numpy()


def one_pass(x):
    """Through the host one pass on a [N, 1, 1] pool of float32 values x, whose
    conditional entropy of a point is -p·x of its one value, p the exponential in lanes:
    each p·x, and how many of the one-value rows fail the normalisation check."""
    module = module_for(torch.device("cpu"))
    pool = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(-1, 1, 1)
    out = torch.empty(2, pool.shape[0])
    failing = module.entropies(*pool_arguments(pool), out[0].data_ptr(), out[1].data_ptr(), 0, 0, *pool.shape,
                               *normalisation_bounds(pool.dtype))
    return -out[1].numpy(), failing


def sampled_range(step):
    """Every step-th float of [-86.5, 0], in chunks."""
    for start in range(FIRST_BITS, LAST_BITS + 1, CHUNK * step):
        bits = np.arange(start, min(start + CHUNK * step, LAST_BITS + 1), step, dtype=np.uint64).astype(np.uint32)
        yield bits.view(np.float32)


def bound(x, extra=0.0):
    """The stated relative error bound at each x (float64), plus ``extra``."""
    return RELATIVE_ERROR_BOUND + RELATIVE_ERROR_PER_UNIT * np.abs(x.astype(np.float64)) + extra


def worst_over_bound(step, relative_error, extra=0.0):
    """The largest relative error over the bound at x (error / bound) over every step-th
    float of the range, the error there and its x."""
    worst, error_at, at = 0.0, 0.0, 0.0
    for x in sampled_range(step):
        error = relative_error(x)
        over = error / bound(x, extra)
        i = int(np.argmax(over))
        if over[i] > worst:
            worst, error_at, at = float(over[i]), float(error[i]), float(x[i])
    return worst, f"relative error {error_at:.3g} at x = {at!r}"


def exp_relative_error(x):
    exact = np.exp(x.astype(np.float64))
    return np.abs(host_exp(x).astype(np.float64) - exact) / exact


def test_exponential_meets_its_bound_on_a_sample_of_its_range():
    worst, where = worst_over_bound(61, exp_relative_error)
    assert worst < 1.0, where


@pytest.mark.slow
def test_exponential_meets_its_bound_on_every_float_of_its_range():
    worst, where = worst_over_bound(1, exp_relative_error)
    assert worst < 1.0, where


def test_exponential_is_exact_at_zero_and_zero_below_its_range():
    below = np.nextafter(np.float32(LOWEST), np.float32(-np.inf))
    x = np.array([0.0, -0.0, below, -100.0, -np.inf], dtype=np.float32)
    assert host_exp(x).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_exponential_keeps_nan_and_is_large_for_invalid_positive_input():
    # The probabilities pass keeps NaN as NaN; +inf and large values give e^88, so a
    # row holding one fails any normalisation bound.
    got = host_exp(np.array([math.nan, math.inf, 100.0], dtype=np.float32))
    assert math.isnan(got[0])
    assert got[1] == got[2] == pytest.approx(math.exp(88.0), rel=1e-6)


def plogp_relative_error(x):
    exact = np.exp(x.astype(np.float64)) * x
    error = np.abs(one_pass(x)[0] - exact)
    error[exact != 0] /= -exact[exact != 0]  # at x = 0, the absolute error
    return error


def test_the_one_pass_exponential_in_lanes_meets_the_bound_at_every_instruction_set(host_isa):
    # p·x, rounded once more: the bound plus half a float ulp.
    worst, where = worst_over_bound(61, plogp_relative_error, extra=2.0**-24)
    assert worst < 1.0, where


@pytest.mark.slow
def test_the_one_pass_exponential_in_lanes_meets_the_bound_on_every_float_at_every_instruction_set(host_isa):
    worst, where = worst_over_bound(1, plogp_relative_error, extra=2.0**-24)
    assert worst < 1.0, where


def test_the_one_pass_exponential_in_lanes_past_its_range_at_every_instruction_set(host_isa):
    # Every invalid value leaves its row failing the normalisation check, and p = 0
    # gives p·x = 0, not 0·(-inf). By the exponent's bits: NaN, +inf and values past 88
    # work as 88 (e^88·88 is +inf in float), and below -86.5 p = 0. Scaled exactly
    # (AVX-512): NaN gives NaN, past 88.72 p is ±inf or NaN, and e^x goes on below -86.5
    # through the subnormals (their spacing, 1.4e-45, is 4 % of e^-100) to 0 from -103.98.
    invalid = [math.nan, -math.nan, math.inf, 88.0, 100.0, 1e10, 3e38]
    plogp, failing = one_pass(np.array(invalid, dtype=np.float32))
    assert failing == len(invalid), plogp
    assert not np.isfinite(plogp).any(), plogp
    below = float(np.nextafter(np.float32(LOWEST), np.float32(-np.inf)))
    plogp, failing = one_pass(np.array([below, -100.0, -104.0, -np.inf], dtype=np.float32))
    assert failing == 4  # rows of one value whose probability is about 0
    if host_isa == "x86-64-v4":
        assert plogp[0] == pytest.approx(math.exp(below) * below, rel=1e-6)
        assert plogp[1] == pytest.approx(math.exp(-100.0) * -100.0, rel=0.05)
        assert plogp[2:].tolist() == [0.0, 0.0]
    else:
        assert plogp.tolist() == [0.0] * 4
