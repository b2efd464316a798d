"""The host C++ twin of the k-means++ / k-center step against the reference: the
same Philox stream, and the same picks for the same seed on odd shapes,
dense and factored embeddings stored as float32, float16 or bfloat16."""

import math
import re

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import native, reference
from kbald_kernels.validation import gather_embedding_rows

from test_triton_large_offsets import ROWS, far_apart


def test_gumbel_noise_is_the_reference_stream():
    """The same Philox words (another word moves the value by 2^-24 or more); the two
    logarithms, glibc's and torch's, may differ in the last bit."""
    module = native.host_module()
    index = torch.tensor([0, 1, 7, 2**31 - 1, 2**31, 2**32 + 5, 2**40 + 3])
    for seed, step in ((0, 0), (2**63 + 77, 5), (123456789, 2**31 + 9)):
        expected = reference.gumbel_noise(seed, step, index)
        got = torch.tensor([module.gumbel_noise(seed, step, int(i)) for i in index], dtype=torch.float64)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-15, msg=str((seed, step)))


def _embeddings(n, widths, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    parts = [torch.randn(n, w, generator=gen, dtype=torch.float64).to(dtype) for w in widths]
    for part in parts:
        part[3] = part[n - 1]  # an exact duplicate: distance 0 to its twin
    return parts[0] if len(parts) == 1 else tuple(parts)


@pytest.mark.parametrize("widths", [(1,), (37,), (130,), (13, 4), (1, 1), (70, 10)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["sample", "argmax"])
def test_picks_are_the_reference_picks(widths, dtype, mode):
    emb = _embeddings(101, widths, dtype, seed=len(widths) * 100 + widths[0])
    kwargs = dict(generator=9, labeled=[4, 50])
    select = kb.kmeanspp if mode == "sample" else kb.select_coreset
    expected = select(emb, 40, backend="torch", **kwargs)
    got = select(emb, 40, backend="cuda", **kwargs)
    assert torch.equal(got.indices, expected.indices)
    torch.testing.assert_close(got.scores, expected.scores, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("widths", [(37,), (13, 4), (70, 10)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", ["sample", "argmax"])
def test_picks_one_at_a_time_are_the_reference_picks(widths, dtype, mode):
    """A lazy ordering's next() runs single steps (their own norm products, row by row),
    through the whole pool: the duplicate's zero distance orders the end."""
    emb = _embeddings(101, widths, dtype, seed=widths[0])
    expected = kb.KMeansPPOrdering(emb, generator=9, labeled=[4, 50], mode=mode, backend="torch").take(99)
    picks = list(kb.KMeansPPOrdering(emb, generator=9, labeled=[4, 50], mode=mode, backend="cuda"))
    assert [i for i, _ in picks] == expected.indices.tolist()
    torch.testing.assert_close(torch.stack([s for _, s in picks]), expected.scores, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("factored", [False, True])
def test_a_whole_ordering_resumed_and_extended_matches_the_reference(factored):
    emb = _embeddings(60, (9, 3) if factored else (9,), torch.float32, seed=1)
    extra = _embeddings(7, (9, 3) if factored else (9,), torch.float32, seed=2)
    orders = []
    for backend in ("torch", "cuda"):
        ordering = kb.KMeansPPOrdering(emb, generator=3, first="max_norm", backend=backend)
        first = ordering.take(20).indices
        ordering.extend(extra)
        orders.append(torch.cat([first, ordering.take(ordering.remaining).indices]))
    assert torch.equal(orders[0], orders[1])
    assert sorted(orders[1].tolist()) == list(range(67))


def test_strided_rows_are_read_as_stored():
    wide = torch.randn(80, 20)
    emb = wide[:, 3:15]  # rows 20 apart, unit feature stride: no copy
    expected = kb.kmeanspp(emb.contiguous(), 30, generator=4, backend="torch")
    assert torch.equal(kb.kmeanspp(emb, 30, generator=4, backend="cuda").indices, expected.indices)


@pytest.mark.parametrize("widths", [(1,), (37,), (13, 4), (70, 10)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_min_squared_distances_match_the_reference(widths, dtype):
    pool = reference.DenseEmbeddings if len(widths) == 1 else reference.FactoredEmbeddings
    emb = _embeddings(57, widths, dtype, seed=widths[0])
    points = pool(emb) if len(widths) == 1 else pool(*emb)
    for centers in (points.take(torch.tensor([3, 20, 56])), points.take(torch.tensor([], dtype=torch.int64))):
        got = native.min_squared_distances(points, centers)
        expected = reference.min_squared_distances(points, centers)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        if len(centers):
            assert bool((got[[3, 20, 56]] == 0).all())  # the centers themselves: exactly 0
        else:
            assert bool(torch.isinf(got).all())


def test_factors_stored_in_two_dtypes_take_the_reference():
    features, residuals = _embeddings(40, (6, 3), torch.float32, seed=7)
    mixed = (features, residuals.half())
    expected = kb.kmeanspp(mixed, 12, generator=2, backend="torch")
    assert torch.equal(kb.kmeanspp(mixed, 12, generator=2, backend="cuda").indices, expected.indices)
    assert torch.equal(kb.select_coreset(mixed, 5, labeled=[1, 2], backend="cuda").indices,
                       kb.select_coreset(mixed, 5, labeled=[1, 2], backend="torch").indices)


def test_a_state_saved_without_the_selected_mask_resumes():
    emb = _embeddings(30, (5,), torch.float32, seed=3)
    ordering = kb.KMeansPPOrdering(emb, generator=1, labeled=[0, 4])
    ordering.take(6)
    state = ordering.state_dict()
    expected = ordering.take(10).indices
    del state["selected"]
    resumed = kb.KMeansPPOrdering(emb)
    resumed.load_state_dict(state)
    assert resumed.remaining == 22 and torch.equal(resumed.take(10).indices, expected)


def _reference_candidate(distances, selected, pool_indices, seed, step, mode):
    """A step's (tier, key, row) over a shard by the reference's arithmetic: tier 3 (no
    center), 2 (d > 0), 1 (d = 0); keys as the step's draw; ties to the smaller pool index."""
    d = distances.to(torch.float64)
    tier = torch.where(torch.isinf(d), 3, torch.where(d > 0, 2, 1)).masked_fill(selected, 0)
    noise = reference.gumbel_noise(seed, step, pool_indices)
    if mode == "argmax":
        key = torch.where(tier == 3, noise, d)
    else:
        key = torch.where(tier == 2, torch.log(torch.where(tier == 2, d, 1.0)) + noise, noise)
    if not bool((tier > 0).any()):
        return None
    best = max((int(tier[n]), float(key[n]), -int(pool_indices[n]), n) for n in range(d.shape[0]) if tier[n] > 0)
    return best[0], best[1], best[3]


@pytest.mark.parametrize("mode", ["sample", "argmax"])
@pytest.mark.parametrize("case", ["mixed tiers", "no center yet", "all zero", "ties", "all selected"])
def test_shard_candidate_is_the_step_pick_keyed_by_pool_index(mode, case):
    """The sharded ordering's scan: the step's pick among a shard's rows, drawn by each
    row's index in the whole pool (not its row), as the reference ranks them."""
    gen = torch.Generator().manual_seed(len(case))
    n = 257
    distances = torch.rand(n, generator=gen) * 5
    distances[torch.rand(n, generator=gen) < 0.2] = 0.0
    if case == "no center yet":
        distances[::7] = float("inf")
    elif case == "all zero":
        distances.zero_()
    elif case == "ties":
        distances = torch.full((n,), 2.5)
    selected = torch.rand(n, generator=gen) < (1.0 if case == "all selected" else 0.3)
    pool_indices = torch.sort(torch.randperm(10 * n, generator=gen)[:n] + 2**33).values
    for seed, step in ((0, 0), (2**63 + 5, 17)):
        tier, key, row = native.kmeanspp_candidate(distances, selected, pool_indices, seed, step, mode)
        expected = _reference_candidate(distances, selected, pool_indices, seed, step, mode)
        if expected is None:
            assert row == -1
            continue
        assert (tier, row) == (expected[0], expected[2]), (case, seed)
        assert key == pytest.approx(expected[1], rel=1e-14, abs=1e-14)


def _rows_to_gather(n, count, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count].sort().values


@pytest.mark.parametrize("width", [1, 3, 128, 129])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("count", [1, 31, 33, 200])
def test_gathered_rows_are_the_rows_bit_for_bit(width, dtype, count):
    """Rows of a strided pool copied as stored, across the blocks the copy is checked in
    (32 float32 rows of 128; 64 at half precision)."""
    wide = torch.randn(300, width + 5, dtype=torch.float64).to(dtype)
    pool = wide[:, 2 : 2 + width]  # rows width + 5 apart
    rows = _rows_to_gather(300, count, seed=width + count)
    copy, first_invalid = native.gather_rows(pool, rows)
    assert first_invalid == -1 and copy.is_contiguous() and copy.dtype == dtype
    bits = torch.int32 if dtype == torch.float32 else torch.int16
    assert torch.equal(copy.view(bits), pool.index_select(0, rows).view(bits))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("position", [(0, 0), (40, 127), (199, 5), (33, 64)])
def test_the_first_non_finite_copy_is_found_and_named_by_pool_index(dtype, value, position):
    pool = torch.randn(300, 128).to(dtype)
    rows = _rows_to_gather(300, 200, seed=5)
    pool[rows[position[0]], position[1]] = value
    pool[rows[199], 100] = math.nan  # a later one: the first is named
    pool[rows[0] - 1 if rows[0] else 299, 3] = math.nan  # outside the rows: never read
    _, first_invalid = native.gather_rows(pool, rows)
    assert first_invalid == position[0]
    what = "NaN" if value != value else ("+inf" if value > 0 else "-inf")
    with pytest.raises(ValueError, match=rf"embeddings contains {re.escape(what)} at index "
                                         rf"\({int(rows[position[0]])}, {position[1]}\)"):
        gather_embedding_rows([pool], rows)
    with pytest.raises(ValueError, match=rf"embeddings residuals contains {re.escape(what)} at index "
                                         rf"\({int(rows[position[0]])}, {position[1]}\)"):
        gather_embedding_rows([torch.zeros(300, 2, dtype=dtype), pool], rows)


def test_rows_past_2_31_elements_are_gathered():
    values = torch.randn(ROWS, 6)
    rows = torch.tensor([2, 0])
    copy, first_invalid = native.gather_rows(far_apart(values), rows)
    assert first_invalid == -1 and torch.equal(copy, values[[2, 0]])


def test_gathered_float64_and_strided_features_are_checked_by_torch():
    """What the host module does not take (float64, a feature stride) is gathered and
    checked by torch, naming the same index."""
    for pool in (torch.randn(50, 4, dtype=torch.float64), torch.randn(4, 50).t()):
        pool[17, 2] = math.inf
        rows = torch.tensor([3, 17, 40])
        assert torch.equal(gather_embedding_rows([pool], torch.tensor([3, 40]))[0], pool[[3, 40]])
        with pytest.raises(ValueError, match=r"embeddings contains \+inf at index \(17, 2\)"):
            gather_embedding_rows([pool], rows)
