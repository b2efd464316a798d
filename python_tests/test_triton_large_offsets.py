"""Element offsets past 2³¹: every kernel indexes rows in 64-bit arithmetic.

The pool is a strided view whose rows lie 2³⁰+ elements apart in an uninitialised
4 GiB buffer; only the rows' pages are ever touched, so the test is cheap, yet row
2's offset passes 2³¹ with a row stride that alone fits in 32 bits.
"""

import math

import pytest
import torch

from kbald_kernels import reference
from kbald_kernels.triton import information_terms, kbald_step, kmeanspp_step, pairwise_mutual_information

from conftest import DEVICE, random_log_probs

ROW_STRIDE = 2**30 + 8
ROWS = 3


def far_apart(values):
    """A view of ``values`` [ROWS, ...] whose row r starts r·ROW_STRIDE elements in."""
    inner = values[0].numel()
    storage = torch.empty(ROW_STRIDE * (ROWS - 1) + inner, dtype=values.dtype, device=values.device)
    view = storage.as_strided(values.shape, (ROW_STRIDE, *values[0].stride()))
    view.copy_(values)
    assert view.stride(0) * (ROWS - 1) > 2**31 > view.stride(0)
    return view


def test_information_kernels_index_past_2_31():
    values = random_log_probs(ROWS, 4, 3, dtype=torch.float16)
    view = far_apart(values)
    expected = reference.bald(values.double())
    torch.testing.assert_close(information_terms.bald(view).double(), expected, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(pairwise_mutual_information.pairwise_mutual_information(view).double(),
                               reference.pairwise_mutual_information(values.double()), rtol=2e-3, atol=2e-3)
    entropy, _, bald = information_terms.information_terms(values)
    increments = []
    for pool in (values, view):
        increment = bald.clone()
        selected = torch.zeros(ROWS, dtype=torch.bool, device=DEVICE)
        kbald_step.kbald_pairwise_steps(pool, entropy, increment, selected, None, ROWS)
        increments.append(increment)
    torch.testing.assert_close(increments[1], increments[0])


@pytest.mark.parametrize("factored", [False, True])
def test_kmeanspp_kernels_index_past_2_31(factored):
    if factored:
        features, residuals = torch.randn(ROWS, 5, device=DEVICE), torch.randn(ROWS, 3, device=DEVICE)
        near = reference.FactoredEmbeddings(features, residuals)
        far = reference.FactoredEmbeddings(far_apart(features), far_apart(residuals))
    else:
        x = torch.randn(ROWS, 6, device=DEVICE)
        near, far = reference.DenseEmbeddings(x), reference.DenseEmbeddings(far_apart(x))
    results = []
    for emb in (near, far):
        distances = torch.full((ROWS,), math.inf, device=DEVICE)
        selected = torch.zeros(ROWS, dtype=torch.bool, device=DEVICE)
        results.append(kmeanspp_step.kmeanspp_steps(emb, distances, selected, None, 3, 0, ROWS, "sample"))
        results[-1] += (kmeanspp_step.min_squared_distances(emb, emb.take(torch.tensor([2], device=DEVICE))),)
    assert results[1][0].tolist() == results[0][0].tolist()
    torch.testing.assert_close(results[1][1], results[0][1])
    torch.testing.assert_close(results[1][2], results[0][2])
