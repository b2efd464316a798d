"""Every public entry point rejects bad input with a message naming the problem."""

import numpy as np
import pytest
import torch

import kbald_kernels as kb

from conftest import random_log_probs


def good():
    return random_log_probs(6, 4, 3, device="cpu")


@pytest.mark.parametrize("bad,error,match", [
    ([[0.0]], TypeError, r"log_probs must be a torch.Tensor or numpy.ndarray, got list"),
    (torch.zeros(4, 3), ValueError, r"log_probs must have shape \[N, K, C\].*2 dimensions"),
    (torch.zeros(0, 2, 3), ValueError, r"N \(pool points\) = 0"),
    (torch.zeros(2, 0, 3), ValueError, r"K \(posterior samples\) = 0"),
    (torch.zeros(2, 3, 0), ValueError, r"C \(classes\) = 0"),
    (torch.zeros(2, 3, 4, dtype=torch.int64), TypeError, r"float16, bfloat16, float32 or float64"),
    (np.array(["a"]), TypeError, r"must hold numbers"),
])
def test_shape_and_type_errors(bad, error, match):
    for op in (kb.entropy, kb.bald, lambda x: kb.select_kbald(x, 1), lambda x: kb.select_batchbald(x, 1)):
        with pytest.raises(error, match=match):
            op(bad)


@pytest.mark.parametrize("value,what", [(float("nan"), "NaN"), (float("inf"), r"\+inf")])
def test_nan_and_positive_infinity_are_reported_with_their_first_index(value, what):
    lp = good()
    lp[4, 2, 1] = value
    lp[5, 0, 0] = value
    with pytest.raises(ValueError, match=rf"log_probs contains {what} at index \(4, 2, 1\)"):
        kb.bald(lp)


def test_unnormalised_rows_are_reported(monkeypatch):
    lp = good()
    lp[3, 1] += 0.01
    with pytest.raises(ValueError, match=r"log_probs\[3, 1\] is not normalised: its probabilities sum to 1.01"):
        kb.entropy(lp)
    # The scan is chunked: the row is found whichever chunk holds it.
    monkeypatch.setenv("KBALD_WORKSPACE_BYTES", "100")
    with pytest.raises(ValueError, match=r"log_probs\[3, 1\]"):
        kb.entropy(lp)
    with pytest.raises(ValueError, match="not normalised"):
        kb.entropy(torch.log(torch.rand(3, 2, 4)))


def test_zero_probabilities_are_accepted():
    lp = random_log_probs(5, 3, 4, zeros=True, device="cpu")
    assert torch.isinf(lp).any()
    assert torch.isfinite(kb.bald(lp)).all()


def test_low_precision_tolerance_accepts_rounded_log_probs():
    lp = random_log_probs(50, 10, 10, device="cpu")
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        kb.bald(lp.to(dtype))


@pytest.mark.parametrize("size,error,match", [
    (0, ValueError, r"batch_size must be between 1 and the number of selectable pool points \(6\), got 0"),
    (7, ValueError, r"\(6\), got 7"),
    (2.0, TypeError, "batch_size must be an integer"),
    (True, TypeError, "batch_size must be an integer"),
])
def test_batch_size_out_of_range(size, error, match):
    for select in (kb.select_bald, kb.select_kbald, kb.select_batchbald):
        with pytest.raises(error, match=match):
            select(good(), size)
    for select in (kb.select_coreset, kb.select_badge):
        with pytest.raises(error, match=match):
            select(torch.randn(6, 2), size)
    with pytest.raises(ValueError, match=r"batch_size must be .* pool points \(5\), got 6"):
        kb.select_coreset(torch.randn(6, 2), 6, labeled=[0])
    with pytest.raises(ValueError, match=r"k must be .* pool points \(6\), got 7"):
        kb.kmeanspp(torch.randn(6, 2), 7)


def test_other_argument_errors():
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        kb.select_kbald(good(), 2, order=4)
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        kb.select_batchbald(good(), 2, num_samples=0)
    with pytest.raises(ValueError, match=r"selected\[1\] = 9 is outside the pool \[0, 6\)"):
        kb.joint_entropy(good(), [1, 9])
    with pytest.raises(ValueError, match="selected contains repeated indices"):
        kb.joint_entropy(good(), [1, 1])
    with pytest.raises(ValueError, match=r"triples must have shape \[T, 3\]"):
        kb.triple_interaction(good(), [[0, 1]])
    with pytest.raises(ValueError, match="a and b must share K and C"):
        kb.pairwise_mutual_information(good(), random_log_probs(3, 5, 3, device="cpu"))
    with pytest.raises(TypeError, match="generator must be None, an int seed or a torch.Generator"):
        kb.kmeanspp(torch.randn(4, 2), 2, generator="seed")
    with pytest.raises(ValueError, match="first must be one of"):
        kb.kmeanspp(torch.randn(4, 2), 2, first="largest")


def test_embedding_errors():
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N, D\]"):
        kb.kmeanspp(torch.randn(4), 2)
    with pytest.raises(ValueError, match=r"embeddings contains NaN at index \(2, 1\)"):
        x = torch.randn(4, 3)
        x[2, 1] = float("nan")
        kb.kmeanspp(x, 2)
    with pytest.raises(ValueError, match="features have 4 rows but residuals have 5"):
        kb.select_badge((torch.randn(4, 3), torch.randn(5, 2)), 2)
    with pytest.raises(ValueError, match="labeled must be embeddings of the same kind and widths"):
        kb.select_coreset(torch.randn(6, 3), 2, labeled=torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"n must be between 1 and the number of selectable pool points \(0\)"):
        kb.KMeansPPOrdering(torch.randn(2, 2), labeled=[0, 1]).take(1)
    with pytest.raises(ValueError, match="logits have 3 rows but features have 4"):
        kb.badge_factors(torch.randn(3, 2), torch.randn(4, 5))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("value,what", [(float("nan"), "NaN"), (float("inf"), r"\+inf"), (-float("inf"), "-inf")])
def test_embedding_checks_name_every_non_finite_value_whatever_the_sum(dtype, value, what):
    """The check clears a chunk by its sum: values whose sum overflows are still
    finite and accepted, and a non-finite value beside them is still named."""
    big = torch.finfo(dtype).max
    x = torch.full((5, 4), big, dtype=dtype)  # every sum of these overflows
    assert kb.kmeanspp(x, 2, generator=0).indices.shape == (2,)
    for poisoned in (torch.zeros(5, 4, dtype=dtype), x.clone()):
        poisoned[3, 2] = value
        with pytest.raises(ValueError, match=rf"embeddings contains {what} at index \(3, 2\)"):
            kb.kmeanspp(poisoned, 2, generator=0)


def test_mismatched_devices():
    # The meta device stands in for a second device: the check runs before any compute.
    with pytest.raises(ValueError, match="embeddings residuals is on meta but embeddings features is on cpu"):
        kb.select_badge((torch.randn(4, 3), torch.randn(4, 2, device="meta")), 2)
    with pytest.raises(ValueError, match="b is on meta but a is on cpu"):
        kb.pairwise_mutual_information(good(), torch.empty(6, 4, 3, device="meta"))


def test_numpy_in_gives_numpy_out():
    lp = good()
    got = kb.bald(lp.numpy())
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, kb.bald(lp).numpy())
    sel = kb.select_batchbald(lp.numpy(), 2)
    assert isinstance(sel.indices, np.ndarray) and sel.indices.dtype == np.int64
    assert isinstance(kb.kmeanspp(np.random.randn(5, 2), 2, generator=0).scores, np.ndarray)


BAD_ROWS = [("NaN", lambda lp: lp.__setitem__((4, 2, 1), float("nan")), r" contains NaN at index \(4, 2, 1\)"),
            ("+inf", lambda lp: lp.__setitem__((4, 2, 1), float("inf")), r" contains \+inf at index \(4, 2, 1\)"),
            ("huge", lambda lp: lp.__setitem__((4, 2, 1), 30.0), r"\[4, 2\] is not normalised"),
            ("low", lambda lp: lp[4, 2].sub_(0.5), r"\[4, 2\] is not normalised")]


@pytest.mark.parametrize("what,poison,match", BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
@pytest.mark.parametrize("backend", ["torch", "cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_every_backend_flags_bad_rows_in_its_first_pass(what, poison, match, backend, dtype):
    from kbald_kernels.backends import implementation

    lp = random_log_probs(6, 4, 3, device="cpu", zeros=True).to(dtype)
    assert not bool(implementation("entropies", backend, lp.device)(lp)[2])
    poison(lp)
    assert bool(implementation("entropies", backend, lp.device)(lp)[2])
    for name, op in (("log_probs", lambda x: kb.bald(x, backend=backend)),
                     ("log_probs", lambda x: kb.select_kbald(x, 2, backend=backend)),
                     ("log_probs", lambda x: kb.select_batchbald(x, 2, backend=backend)),
                     ("a", lambda x: kb.pairwise_mutual_information(x))):
        with pytest.raises(ValueError, match=name + match):
            op(lp)


def test_valid_input_is_read_once(monkeypatch):
    """The validation of a one-pass op is its own pass: the scan that names a bad
    element never runs for valid input."""
    from kbald_kernels import validation

    def scan(*args):
        raise AssertionError("scanned valid input a second time")

    monkeypatch.setattr(validation, "scan_log_probs", scan)
    lp = random_log_probs(50, 7, 4, device="cpu", zeros=True)
    for dtype in (torch.float64, torch.float32, torch.float16):
        x = lp.to(dtype)
        kb.bald(x)
        kb.select_stochastic_bald(x, 3, generator=0)
        kb.select_kbald(x, 3, order=2)
        kb.select_kbald(x, 3, order=3)
        kb.select_batchbald(x, 3)
        kb.pairwise_mutual_information(x[:5], x)
