"""The host C++ twins for CPU tensors: the one-pass information kernel (entropy,
conditional entropy, BALD), the 2-BALD step's pass over the pool, and the
normalisation sums behind input validation, each against the float64 reference on
small and odd shapes with zero probabilities."""

import importlib
import math

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import backends, native, reference
from kbald_kernels.reference.workspace import WORKSPACE_ENV

from conftest import random_log_probs

DTYPES = [(torch.float32, 2e-6), (torch.float16, 2e-6), (torch.bfloat16, 2e-6)]


# Every path of the pass: C <= W in lanes for whole groups of W points (n = 129), the
# other points of C < 16 flat (n = 1, 7: at K = 20 a whole group of 16 rows and 4
# waiting), one to eight vectors a row in registers (some
# partly used, their last vectors packed 4 or 2 rows to one where C mod W <= W/4 or
# W/2: C = 17, 20, 33, 40, 100 at 16 lanes, 17 and 20 at 8; K = 6 leaves rows outside
# whole groups), and the class sums in memory past 128; the last points gathered.
@pytest.mark.parametrize("n", [1, 7, 129])
@pytest.mark.parametrize("k", [1, 3, 6, 20])
@pytest.mark.parametrize("c", [1, 2, 3, 10, 16, 17, 20, 33, 40, 100, 128, 129, 257])
@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_host_entropies_match_the_reference(n, k, c, dtype, tol, host_isa):
    lp = random_log_probs(n, k, c, dtype=dtype, zeros=True, device="cpu")
    # The oracle sees the rounded input in float64, so only the twin's arithmetic differs.
    h, ch, invalid = native.entropies(lp)
    assert invalid == 0
    expected_h, expected_ch, _ = reference.entropies(lp.double())
    for got, expected in ((h, expected_h), (ch, expected_ch)):
        assert got.dtype == torch.float32 and got.shape == (n,) and not got.isnan().any()
        torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol * max(1.0, float(expected.max())))


# C <= W runs W points at a time, one to a lane (rows transposed), each C compiled as a
# constant; the last points go one at a time.
@pytest.mark.parametrize(
    "k,c", [(1, 1), (1, 10), (1, 16), (2, 5), (4, 10), (4, 16), (12, 10), (32, 4), (20, 16), (20, 10), (50, 7), (9, 13)]
)
@pytest.mark.parametrize("rows", ["flat", "padded"])
@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_host_points_in_lanes_match_the_reference_and_count_bad_rows(k, c, rows, dtype, tol, host_isa):
    n = 16 * 5 + 3
    lp = random_log_probs(n, k, c, dtype=torch.float64, zeros=True, device="cpu")
    if c >= 3:  # two classes share the top: margin 0
        lp[17] = torch.tensor([0.4, 0.4] + [0.2 / (c - 2)] * (c - 2), dtype=torch.float64).log()
    lp = lp.to(dtype)
    if rows == "padded":  # rows 3 values apart beyond their classes: not flat
        wide = torch.zeros(n, k, c + 3, dtype=dtype)
        wide[..., :c] = lp
        lp = wide[..., :c]
    got = native.uncertainties(lp)
    assert got[4] == 0
    for value, expected in zip(got[:4], reference.uncertainties(lp.double())[:4]):
        assert not value.isnan().any()
        torch.testing.assert_close(value.double(), expected, rtol=tol, atol=tol * max(1.0, float(expected.max())))
    if c >= 3:
        assert got[3][17] == 0
    lp[3, 0, 0] = math.nan
    lp[18, k - 1, c - 1] = math.inf
    lp[40, k // 2] -= 1.0  # probabilities summing to 1/e
    lp[n - 1, 0, 0] = math.nan  # a point past the last whole group
    assert native.uncertainties(lp)[4] == 4


# Every float16 bit pattern, read (16-float vectors) by points in lanes (C <= 16), two
# vectors a row, and rows whose last vectors are packed (C = 17 and 20: 4 rows to a
# vector at 16 and 8 lanes; C = 40: 2 rows at 16 lanes); with 8-float vectors also by
# the flat pass of two vectors a row (C = 10; a group of 8 rows and 4 waiting at K =
# 12), which at any width also reads the last points of a pool not in a whole group
# (its group of 16 rows and 4 waiting are tested in test_host_entropies_match_the_reference): each
# value is the one unknown of its row, whose other classes share 1 - `share`, so a row is
# valid exactly when the value's probability is near `share`: NaN of either sign, +inf
# and values far above 0 must fail, and with share 0 -inf and every value far below 0
# must pass.
@pytest.mark.parametrize(
    "k,c", [(1, 16), (16, 8), (20, 8), (4, 16), (2, 32), (16, 10), (12, 10), (6, 17), (4, 20), (5, 40)]
)
@pytest.mark.parametrize("share", ["1/C", "0"])
def test_host_pass_reads_every_float16_value(k, c, share, host_isa):
    from kbald_kernels.reference.normalisation import normalisation_bounds

    values = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.float16)
    rows = values.numel() // k * k  # K = 20 leaves out 16 values, which the other shapes read
    others = math.log((1 - (1 / c if share == "1/C" else 0)) / (c - 1))
    lp = torch.full((rows, c), others, dtype=torch.float16)
    lp[torch.arange(rows), torch.arange(rows) % c] = values[:rows]
    low, high = normalisation_bounds(torch.float16)
    sums = lp.double().exp().sum(-1)  # NaN stays NaN, +inf inf, -inf adds 0
    on_a_bound = ((sums - low).abs() < 1e-4) | ((sums - high).abs() < 1e-4)  # where rounding decides
    assert int(on_a_bound.sum()) < 10
    lp[on_a_bound] = others
    lp = lp.reshape(rows // k, k, c)
    sums = lp.double().exp().sum(-1)
    expected_invalid = int((~((sums >= low) & (sums <= high))).sum())
    h, ch, invalid = native.entropies(lp)
    assert invalid == expected_invalid > 1000
    valid = ((sums >= low) & (sums <= high)).all(-1)
    expected_h, expected_ch, _ = reference.entropies(lp[valid].double())
    torch.testing.assert_close(h[valid].double(), expected_h, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(ch[valid].double(), expected_ch, rtol=2e-6, atol=2e-6)


def test_host_entropies_read_strided_input_and_large_pools(host_isa):
    base = random_log_probs(3001, 20, 10, dtype=torch.float32, zeros=True, device="cpu")
    view = base.permute(0, 2, 1).contiguous().permute(0, 2, 1)
    assert not view.is_contiguous()
    h, ch, invalid = native.entropies(view)
    assert invalid == 0
    expected_h, expected_ch, _ = reference.entropies(base.double())
    torch.testing.assert_close(h.double(), expected_h, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(ch.double(), expected_ch, rtol=2e-6, atol=2e-6)


def test_host_entropies_of_certain_and_uniform_points_are_exact():
    certain = torch.full((1, 4, 5), -math.inf)
    certain[..., 2] = 0.0
    uniform = torch.full((1, 4, 5), -math.log(5.0))
    h, ch, _ = native.entropies(torch.cat([certain, uniform]))
    assert h[0] == 0 and ch[0] == 0
    torch.testing.assert_close(h[1], torch.tensor(math.log(5.0)), rtol=1e-6, atol=0)
    torch.testing.assert_close(ch[1], torch.tensor(math.log(5.0)), rtol=1e-6, atol=0)


def test_auto_runs_the_host_twin_for_cpu_information_ops():
    assert backends.choose_backend("entropies", "auto", torch.device("cpu")) == "cuda"
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
    view = lp.transpose(1, 2).contiguous().transpose(1, 2)  # read as stored: any dtype, any strides
    for x in (lp, view):
        sums = torch.full(lp.shape[:2], math.nan)
        native.host_module().probability_sums(*native.pool_arguments(x), sums.data_ptr(), *lp.shape)
        torch.testing.assert_close(sums.double(), lp.double().exp().sum(-1), rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("value", [math.nan, math.inf, 100.0])
def test_host_probability_sums_flag_bad_values(value):
    x = torch.log_softmax(torch.randn(5, 1, 7), -1)
    x[3, 0, 4] = value
    sums = torch.full((5,), 1.0)
    native.host_module().probability_sums(*native.pool_arguments(x), sums.data_ptr(), 5, 1, 7)
    assert not (sums[3] <= 2.0)  # NaN or far above 1
    torch.testing.assert_close(sums[[0, 1, 2, 4]], torch.ones(4), rtol=1e-6, atol=0)


@pytest.mark.parametrize("n", [1, 7, 129])
@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("c", [1, 2, 10, 17, 40, 100, 129])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cached", [True, False])
def test_host_kbald_steps_match_the_reference(n, k, c, dtype, cached, monkeypatch, host_isa):
    # C = 10, 17, 40, 100 take the 16, 32, 64 and 128-column register rows (on 16-float
    # vectors; on narrower ones 128 columns, and on 4-float ones 64, take blocks of 8
    # vectors), C = 129 blocks of 128. With the
    # pool's probabilities computed once (they fit the workspace) and without.
    if not cached:
        monkeypatch.setenv(WORKSPACE_ENV, "64")
    lp = random_log_probs(n, k, c, dtype=dtype, zeros=True, device="cpu")
    oracle = lp.double()
    entropy, conditional, _ = reference.entropies(oracle)
    steps = min(n, 5)
    increment = (entropy - conditional).float()
    selected = torch.zeros(n, dtype=torch.bool)
    indices, scores = native.kbald_pairwise_steps(lp, entropy.float(), increment, selected, None, steps)
    expected_increment = entropy - conditional
    expected_selected = torch.zeros(n, dtype=torch.bool)
    expected_indices, expected_scores = reference.kbald_pairwise_steps(oracle, entropy, expected_increment,
                                                                       expected_selected, None, steps)
    torch.testing.assert_close(scores.double(), expected_scores, rtol=2e-5, atol=2e-5)
    if k == 1 or c == 1:
        # Every increment is 0 up to rounding: the picks are ties, broken by noise.
        assert len(set(indices.tolist())) == steps and int(selected.sum()) == steps
        return
    assert indices.tolist() == expected_indices.tolist()
    torch.testing.assert_close(increment.double(), expected_increment, rtol=2e-5, atol=2e-5)
    assert torch.equal(selected, expected_selected)


def test_host_mutual_information_with_a_pick_matches_the_reference_pairwise_block(host_isa):
    lp = random_log_probs(300, 30, 7, dtype=torch.float32, zeros=True, device="cpu")
    entropy = reference.entropies(lp.double())[0].float()
    out = torch.full((300,), math.nan)
    native.host_module().mutual_information_with_pick(*native.pool_arguments(lp), entropy.data_ptr(), 123,
                                                      out.data_ptr(), 300, 30, 7)
    expected = reference.pairwise_mutual_information(lp.double(), lp[123:124].double())[:, 0]
    torch.testing.assert_close(out.double(), expected, rtol=2e-5, atol=2e-5)
    with pytest.raises(ValueError, match="0 <= pick < points"):
        native.host_module().mutual_information_with_pick(*native.pool_arguments(lp), entropy.data_ptr(), 300,
                                                          out.data_ptr(), 300, 30, 7)


def test_select_kbald_on_the_host_twin_matches_brute_force():
    import brute_force

    lp = random_log_probs(9, 6, 3, spread=1.5, device="cpu").float()
    assert backends.choose_backend("kbald_pairwise_steps", "auto", lp.device) == "cuda"
    got = kb.select_kbald(lp, 4)
    indices, values = brute_force.greedy(lambda batch: brute_force.kbald_value(lp.double(), batch, 2), 9, 4)
    assert got.indices.tolist() == indices
    torch.testing.assert_close(got.scores.double(), torch.tensor(values, dtype=torch.float64), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("na,nb,k,c", [(1, 1, 1, 1), (9, 5, 3, 2), (33, 17, 20, 10), (6, 40, 4, 17), (5, 3, 2, 128),
                                       (4, 3, 2, 129), (700, 3, 2, 3), (70, 131, 5, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("products", [False, True], ids=["pair pass", "matrix products"])
def test_host_pairwise_mutual_information_matches_the_reference(na, nb, k, c, dtype, products, monkeypatch,
                                                                host_isa):
    """Both ways to the joints on every shape: the pair pass (blocks of b cross its
    block of rows at 700 × K=2 × 16 classes) and matrix products (blocks of 64 points
    of a and 128 of b, crossed at 70 × 131)."""
    pairwise = importlib.import_module("kbald_kernels.native.pairwise_mutual_information")
    monkeypatch.setattr(pairwise, "by_matrix_products", lambda samples, classes: products)
    a = random_log_probs(na, k, c, dtype=dtype, zeros=True, device="cpu")
    b = random_log_probs(nb, k, c, dtype=dtype, zeros=True, device="cpu")
    wide = torch.cat([b, b], 1)  # b read through a stride of 2·K·C
    for other, got in ((b, native.pairwise_mutual_information(a, wide[:, :k])),
                       (None, native.pairwise_mutual_information(a))):
        expected = reference.pairwise_mutual_information(a.double(), None if other is None else other.double())
        assert got.dtype == torch.float32 and got.shape == expected.shape
        torch.testing.assert_close(got.double(), expected, rtol=2e-5, atol=2e-6)
    assert backends.choose_backend("pairwise_mutual_information", None, torch.device("cpu")) == "cuda"
