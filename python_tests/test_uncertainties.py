"""Least confidence and margin (DESIGN.md, The math) from the one validating pass of
the information kernels: the reference against numpy, the Triton kernel (under the
interpreter) and the host twin against the reference, and top-k uncertainty sampling."""

import math

import numpy as np
import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import native, reference
from kbald_kernels.reference.normalisation import NORMALISATION_TOLERANCE

from conftest import DEVICE, random_log_probs


def numpy_uncertainties(log_probs):
    mean = np.exp(log_probs.astype(np.float64)).mean(1)
    top = np.sort(np.concatenate([mean, np.zeros((len(mean), 1))], 1), 1)[:, ::-1]
    return 1 - top[:, 0], top[:, 0] - top[:, 1]


@pytest.mark.parametrize("n,k,c", [(1, 1, 1), (5, 3, 1), (9, 4, 2), (33, 7, 10), (17, 20, 129)])
def test_reference_matches_numpy(n, k, c):
    lp = random_log_probs(n, k, c, zeros=True)
    entropy, conditional, confidence, margin, invalid = reference.uncertainties(lp)
    expected_confidence, expected_margin = numpy_uncertainties(lp.cpu().numpy())
    np.testing.assert_allclose(confidence.cpu().numpy(), expected_confidence, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(margin.cpu().numpy(), expected_margin, rtol=1e-12, atol=1e-12)
    h, ch, _ = reference.entropies(lp)
    assert torch.equal(entropy, h) and torch.equal(conditional, ch) and not bool(invalid)


def test_tied_classes_have_margin_zero():
    lp = torch.log(torch.tensor([[[0.4, 0.4, 0.2]], [[0.5, 0.25, 0.25]]], dtype=torch.float64))
    for terms in (reference.uncertainties(lp), native.uncertainties(lp.float())):
        torch.testing.assert_close(terms[3].double().cpu(), torch.tensor([0.0, 0.25], dtype=torch.float64))
        torch.testing.assert_close(terms[2].double().cpu(), torch.tensor([0.6, 0.5], dtype=torch.float64))


def _kernel_cases():
    return [(n, k, c) for n in (1, 17, 40) for k in (1, 5, 20) for c in (1, 2, 10, 33)]


@pytest.mark.parametrize("n,k,c", _kernel_cases())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kernel", ["triton", "host"])
def test_kernels_match_the_reference(n, k, c, dtype, kernel):
    from kbald_kernels.triton import information_terms

    device = DEVICE if kernel == "triton" else "cpu"
    lp = random_log_probs(n, k, c, zeros=True, device=device).to(dtype)
    impl = information_terms.uncertainties if kernel == "triton" else native.uncertainties
    got = impl(lp)
    expected = reference.uncertainties(lp.double())
    tol = 2 * NORMALISATION_TOLERANCE[dtype] + 1e-5
    for g, e in zip(got[:4], expected[:4]):
        torch.testing.assert_close(g.double(), e, rtol=tol, atol=tol)
    assert not bool(got[4])


@pytest.mark.parametrize("score", ["entropy", "least_confidence", "margin", "bald"])
@pytest.mark.parametrize("backend", ["torch", "triton", "cuda"])
def test_select_uncertainty_takes_the_most_uncertain_first(score, backend):
    lp = random_log_probs(60, 6, 4, dtype=torch.float32)
    if backend == "cuda" and lp.device.type != "cpu":
        pytest.skip("the host twin takes CPU tensors; on a GPU 'cuda' has no uncertainty kernel")
    got = kb.select_uncertainty(lp, 7, score=score, backend=backend)
    h, ch, confidence, margin, _ = reference.uncertainties(lp.double())
    values = {"entropy": h, "least_confidence": confidence, "margin": -margin, "bald": h - ch}[score]
    expected = torch.sort(values, descending=True, stable=True).indices[:7]
    assert got.indices.tolist() == expected.tolist()
    own = {"entropy": h, "least_confidence": confidence, "margin": margin, "bald": h - ch}[score]
    torch.testing.assert_close(got.scores.double(), own[expected], rtol=1e-4, atol=1e-5)


def test_public_scores_keep_numpy_and_validate():
    lp = random_log_probs(8, 3, 5, device="cpu").numpy()
    confidence, margin = kb.least_confidence(lp), kb.margin(lp)
    assert isinstance(confidence, np.ndarray) and isinstance(margin, np.ndarray)
    expected = numpy_uncertainties(lp)
    np.testing.assert_allclose(confidence, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(margin, expected[1], rtol=1e-5, atol=1e-6)
    bad = lp.copy()
    bad[3, 1, 2] = math.nan
    with pytest.raises(ValueError, match=r"log_probs contains NaN at index \(3, 1, 2\)"):
        kb.margin(bad)
    with pytest.raises(ValueError, match="score must be one of"):
        kb.select_uncertainty(lp, 2, score="variance")
    with pytest.raises(ValueError, match="batch_size"):
        kb.select_uncertainty(lp, 9)
