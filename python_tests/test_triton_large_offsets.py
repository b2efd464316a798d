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
    entropy, conditional, invalid = information_terms.entropies(view)
    assert int(invalid) == 0
    torch.testing.assert_close((entropy - conditional).double(), expected, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(pairwise_mutual_information.pairwise_mutual_information(view).double(),
                               reference.pairwise_mutual_information(values.double()), rtol=2e-3, atol=2e-3)
    entropy, conditional, _ = information_terms.entropies(values)
    bald = entropy - conditional
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


@pytest.mark.parametrize("picks,newest", [([0, 2], 1), ([0, 1], 2)])
def test_triple_kernel_indexes_picks_and_pair_rows_past_2_31(picks, newest):
    values = random_log_probs(ROWS, 4, 3, dtype=torch.float16)
    entropy = reference.entropies(values.double())[0].float()
    pair_entropies = torch.stack([entropy + entropy[p] - reference.pairwise_mutual_information(
        values.double(), values[p : p + 1].double())[:, 0].float() for p in picks + [newest]])
    start = torch.randn(ROWS, device=DEVICE)
    picks_then_newest = torch.tensor(picks + [newest], device=DEVICE)
    expected = reference.add_triple_interactions(values.double(), entropy.double(), pair_entropies.double(),
                                                 picks_then_newest, start.double())
    # The pool's rows and the pair-entropy rows both lie 2³⁰+ elements apart.
    got = kbald_step.add_triple_interactions(far_apart(values), entropy, far_apart(pair_entropies),
                                             picks_then_newest, start.clone())
    torch.testing.assert_close(got.double(), expected, rtol=2e-3, atol=2e-3)


def test_pairwise_one_against_all_indexes_past_2_31():
    values = random_log_probs(ROWS, 4, 3, dtype=torch.float16)
    view = far_apart(values)
    entropy = reference.entropies(values.double())[0].float()
    got = pairwise_mutual_information.pairwise_mutual_information(view, view[2:3], (entropy, entropy[2:3]))
    expected = reference.pairwise_mutual_information(values.double(), values[2:3].double())
    torch.testing.assert_close(got.double(), expected, rtol=2e-3, atol=2e-3)


def test_select_kernel_records_a_pick_past_2_31():
    from kbald_kernels.triton.select_candidate import BLOCK_CANDIDATES, select_candidate_kernel

    far = 2**31 + 5
    # Only the pages around the pick are touched.
    values = torch.empty(far + 8, dtype=torch.float32, device=DEVICE)
    selected = torch.empty(far + 8, dtype=torch.uint8, device=DEVICE)
    values[far], selected[far] = 0.25, 0
    tiers = torch.tensor([1, 1], dtype=torch.int32, device=DEVICE)
    keys = torch.tensor([math.nan, 0.5], device=DEVICE)  # NaN ranks last
    candidates = torch.tensor([3, far], dtype=torch.int64, device=DEVICE)
    indices = torch.full((2,), -1, dtype=torch.int64, device=DEVICE)
    scores = torch.full((2,), math.nan, device=DEVICE)
    newest = torch.full((1,), -1, dtype=torch.int64, device=DEVICE)
    select_candidate_kernel[(1,)](tiers, keys, candidates, 2, values, selected, newest, indices, scores, 1,
                                  BLOCK=BLOCK_CANDIDATES)
    assert int(indices[1]) == far == int(newest[0])
    assert float(scores[1]) == 0.25 and int(selected[far]) == 1


def test_nan_increments_never_pick_out_of_bounds():
    values = random_log_probs(7, 4, 3, dtype=torch.float32)
    entropy = torch.zeros(7, device=DEVICE)
    increment = torch.full((7,), math.nan, device=DEVICE)
    increment[5] = -1.0
    selected = torch.zeros(7, dtype=torch.bool, device=DEVICE)
    indices, _ = kbald_step.kbald_pairwise_steps(values, entropy, increment, selected, None, 2)
    assert indices.tolist()[0] == 5 and 0 <= indices.tolist()[1] < 7


def test_kmeanspp_extend_indexes_new_points_past_2_31():
    from kbald_kernels import KMeansPPOrdering

    pool, new = torch.randn(4, 6, device=DEVICE), torch.randn(ROWS, 6, device=DEVICE)
    orderings = []
    for backend, points in (("torch", new), ("triton", far_apart(new))):
        ordering = KMeansPPOrdering(pool, generator=5, backend=backend)
        first = ordering.take(2)
        ordering.extend(points)
        orderings.append((first, ordering.take(5)))
    for (first_ref, rest_ref), (first, rest) in zip(orderings[:1], orderings[1:]):
        assert first.indices.tolist() == first_ref.indices.tolist()
        assert rest.indices.tolist() == rest_ref.indices.tolist()
        torch.testing.assert_close(rest.scores, rest_ref.scores, rtol=1e-5, atol=1e-5)


def test_joint_entropy_twin_and_kernel_replay_index_past_2_31():
    from kbald_kernels import native

    values = random_log_probs(ROWS, 4, 3, dtype=torch.float16, device="cpu")
    view = far_apart(values)
    weights = torch.softmax(torch.randn(5, 4), -1)
    alpha = torch.softmax(torch.randn(5), -1)
    expected = reference.accumulate_joint_entropy(weights.double(), alpha.double(), values.double())
    for got in (native.accumulate_joint_entropy(weights, alpha, view),
                native.emulate_joint_entropy_kernel(weights, alpha, view, 2)):
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
