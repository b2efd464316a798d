"""The normalisation check every first pass over log-probabilities carries.

A row n, k of log-probabilities is valid when Σ_c exp(log p) lies within the
dtype's tolerance of 1: NaN makes the sum NaN and +inf makes it +inf, so one bound
check on the sums catches every bad value except -inf, which is probability 0.
"""

import functools
import math

import torch

# How far log Σ_c p may stray from 0 before a row counts as not normalised: a few
# units of the dtype's rounding, times the number of terms summed.
NORMALISATION_TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 3e-2}


@functools.cache
def normalisation_bounds(dtype):
    """(low, high): the range Σ_c p of a valid row of ``dtype`` log-probabilities must lie in."""
    tolerance = NORMALISATION_TOLERANCE[dtype]
    return math.exp(-tolerance), math.exp(tolerance)


def rows_outside(sums, dtype):
    """Boolean mask of the rows whose probability ``sums`` fail the bounds of ``dtype`` (NaN fails)."""
    low, high = normalisation_bounds(dtype)
    return ~((sums >= low) & (sums <= high))
