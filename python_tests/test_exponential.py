"""The host passes' exponential (kbald/log_probs.h: exp_of_log_probability) against
float64 over its input range: every float in [-86.5, 0] in the slow tier, every 61st
here, with its stated relative error bound; below the range it gives 0 exactly, and
e^0 is exactly 1. Read through the host module's probabilities pass (the float text,
which GCC vectorises), and through the one pass, whose form on vector lanes (min and
max instructions for its clamps) is compiled per instruction set."""

import math

import numpy as np
import pytest
import torch

from kbald_kernels.native.modules import module_for, pool_arguments
from kbald_kernels.reference.normalisation import normalisation_bounds

# kExpRelativeError in csrc/include/kbald/log_probs.h.
RELATIVE_ERROR_BOUND = 2.5e-7
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


def one_pass_plogp(x):
    """p·x of each float32 value through the host one pass: on a [N, 1, 1] pool the
    conditional entropy of a point is -p·x of its one value, p the exponential in lanes."""
    module = module_for(torch.device("cpu"))
    pool = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(-1, 1, 1)
    out = torch.empty(2, pool.shape[0])
    module.entropies(*pool_arguments(pool), out[0].data_ptr(), out[1].data_ptr(), 0, 0, *pool.shape,
                     *normalisation_bounds(pool.dtype))
    return -out[1].numpy()


def sampled_range(step):
    """Every step-th float of [-86.5, 0], in chunks."""
    for start in range(FIRST_BITS, LAST_BITS + 1, CHUNK * step):
        bits = np.arange(start, min(start + CHUNK * step, LAST_BITS + 1), step, dtype=np.uint64).astype(np.uint32)
        yield bits.view(np.float32)


def worst_relative_error(step):
    worst, at = 0.0, 0.0
    for x in sampled_range(step):
        exact = np.exp(x.astype(np.float64))
        error = np.abs(host_exp(x).astype(np.float64) - exact) / exact
        i = int(np.argmax(error))
        if error[i] > worst:
            worst, at = float(error[i]), float(x[i])
    return worst, at


def test_exponential_meets_its_bound_on_a_sample_of_its_range():
    worst, at = worst_relative_error(61)
    assert worst < RELATIVE_ERROR_BOUND, f"relative error {worst:.3g} at x = {at!r}"


@pytest.mark.slow
def test_exponential_meets_its_bound_on_every_float_of_its_range():
    worst, at = worst_relative_error(1)
    assert worst < RELATIVE_ERROR_BOUND, f"relative error {worst:.3g} at x = {at!r}"


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


def test_the_one_pass_exponential_in_lanes_meets_the_bound_at_every_instruction_set(host_isa):
    # p·x, rounded once more: the bound plus half a float ulp. Clamps: NaN, +inf and
    # values past 88 work as 88 (e^88, so their rows fail the normalisation check, and
    # e^88·88 is +inf in float); below the range p = 0, and so p·x = 0, not 0·(-inf).
    worst, at = 0.0, 0.0
    for x in sampled_range(61):
        exact = np.exp(x.astype(np.float64)) * x
        error = np.abs(one_pass_plogp(x) - exact)
        error[exact != 0] /= -exact[exact != 0]  # at x = 0, the absolute error
        i = int(np.argmax(error))
        if error[i] > worst:
            worst, at = float(error[i]), float(x[i])
    assert worst < RELATIVE_ERROR_BOUND + 2.0**-24, f"relative error {worst:.3g} at x = {at!r}"
    below = np.nextafter(np.float32(LOWEST), np.float32(-np.inf))
    edges = np.array([below, -100.0, -np.inf, math.nan, -math.nan, math.inf, 88.0, 100.0], dtype=np.float32)
    assert one_pass_plogp(edges).tolist() == [0.0, 0.0, 0.0] + [math.inf] * 5
