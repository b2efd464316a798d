"""The one-pass Triton entropy / conditional entropy / BALD kernel against the float64
reference (interpreter on CPU), on small and odd shapes with zero probabilities."""

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import reference
from kbald_kernels.triton import information_terms as kernel
from kbald_kernels.reference.normalisation import NORMALISATION_TOLERANCE

from conftest import DEVICE, random_log_probs

DTYPES = [(torch.float32, 2e-5), (torch.float16, 2e-3), (torch.bfloat16, 2e-3)]


@pytest.mark.parametrize("n", [1, 7, 129])
@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("c", [1, 2, 3, 10, 17])
@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_information_terms_match_the_reference(n, k, c, dtype, tol):
    lp = random_log_probs(n, k, c, dtype=dtype, zeros=True)
    # The oracle sees the rounded input in float64, so only the kernel's arithmetic differs.
    oracle = lp.double()
    h, ch, invalid = kernel.entropies(lp)
    assert int(invalid) == 0
    for got, expected in ((h, reference.entropy(oracle)), (ch, reference.conditional_entropy(oracle)),
                          (h - ch, reference.bald(oracle))):
        assert got.dtype == torch.float32 and got.device == lp.device
        torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol * max(1.0, float(expected.abs().max())))


def test_strided_input_is_read_through_its_strides():
    base = random_log_probs(9, 5, 4, dtype=torch.float32)
    baal_layout = base.permute(0, 2, 1).contiguous()  # [N, C, K]
    view = baal_layout.permute(0, 2, 1)  # the same values as [N, K, C], not contiguous
    assert not view.is_contiguous()
    for got, expected in zip(kernel.entropies(view), kernel.entropies(base)):
        torch.testing.assert_close(got, expected)


def test_public_ops_run_the_kernel_when_asked():
    lp = random_log_probs(33, 6, 5, dtype=torch.float32)
    torch.testing.assert_close(kb.bald(lp, backend="triton"), kb.bald(lp, backend="torch"), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kb.entropy(lp, backend="triton"), kb.entropy(lp, backend="torch"), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(kb.select_bald(lp, 5, backend="triton").indices, kb.select_bald(lp, 5).indices)
    # float64 stays exact: it goes to the reference.
    lp64 = lp.double()
    assert torch.equal(kb.bald(lp64, backend="triton"), kb.bald(lp64, backend="torch"))


@pytest.mark.parametrize("n_a,n_b", [(1, 1), (7, 20), (33, 9)])
@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("c", [1, 2, 3, 10, 17])
@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_pairwise_mutual_information_matches_the_reference(n_a, n_b, k, c, dtype, tol):
    from kbald_kernels.triton.pairwise_mutual_information import pairwise_mutual_information

    a = random_log_probs(n_a, k, c, dtype=dtype, zeros=True)
    b = random_log_probs(n_b, k, c, dtype=dtype, zeros=True)
    got = pairwise_mutual_information(a, b)
    assert got.dtype == torch.float32 and got.shape == (n_a, n_b)
    expected = reference.pairwise_mutual_information(a.double(), b.double())
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=2 * tol)


@pytest.mark.parametrize("n,c", [(1, 3), (19, 10), (40, 2)])
def test_symmetric_pairwise_mutual_information_fills_every_pair(n, c):
    from kbald_kernels.triton.pairwise_mutual_information import pairwise_mutual_information

    a = random_log_probs(n, 5, c, dtype=torch.float32, zeros=True)
    got = pairwise_mutual_information(a)
    expected = reference.pairwise_mutual_information(a.double())
    torch.testing.assert_close(got.double(), expected, rtol=2e-5, atol=4e-5)


def test_public_pairwise_mutual_information_runs_the_kernel_when_asked():
    a = random_log_probs(12, 4, 3, dtype=torch.float32)
    torch.testing.assert_close(kb.pairwise_mutual_information(a, a[:5], backend="triton"),
                               kb.pairwise_mutual_information(a, a[:5], backend="torch"), rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(kb.select_kbald(a, 4, backend="triton").indices, kb.select_kbald(a, 4).indices)


@pytest.mark.parametrize("n", [1, 7, 129])
@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("c", [1, 2, 3, 10, 17])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_fused_kbald_steps_match_the_reference(n, k, c, dtype):
    from kbald_kernels.triton.kbald_step import kbald_pairwise_steps

    lp = random_log_probs(n, k, c, dtype=dtype, zeros=True)
    entropy, conditional, _ = kernel.entropies(lp)
    bald = entropy - conditional
    steps = min(n, 5)
    results = []
    for impl in (reference.kbald_pairwise_steps, kbald_pairwise_steps):
        increment = bald.clone()
        selected = torch.zeros(n, dtype=torch.bool, device=DEVICE)
        indices, scores = impl(lp, entropy, increment, selected, None, steps)
        results.append((indices, scores, increment, selected))
    (ri, rs, rinc, rsel), (ti, ts, tinc, tsel) = results
    torch.testing.assert_close(ts, rs.float(), rtol=1e-4, atol=1e-5)
    if k == 1 or c == 1:
        # Every increment is 0 up to rounding: the picks are ties, broken by noise.
        assert len(set(ti.tolist())) == steps and int(tsel.sum()) == steps
        return
    assert ti.tolist() == ri.tolist()
    torch.testing.assert_close(tinc, rinc.float(), rtol=1e-4, atol=1e-5)
    assert torch.equal(tsel, rsel)


def test_select_kbald_order_2_on_the_kernel_matches_brute_force():
    import brute_force

    lp64 = random_log_probs(9, 6, 3, spread=1.5)
    lp = lp64.float()
    got = kb.select_kbald(lp, 4, backend="triton")
    indices, values = brute_force.greedy(lambda batch: brute_force.kbald_value(lp.double(), batch, 2), 9, 4)
    assert got.indices.tolist() == indices
    torch.testing.assert_close(got.scores.double().cpu(), torch.tensor(values, dtype=torch.float64),
                               rtol=1e-4, atol=1e-5)


# C above 16 pads to 32: 16 pair chunks a triple, slow under the interpreter, so fewer shapes.
@pytest.mark.parametrize("n,k,c", [(n, k, c) for n in (1, 7, 129) for k in (1, 3, 20) for c in (1, 2, 3, 10)]
                         + [(7, 3, 17), (5, 20, 32), (40, 3, 29)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_triple_interaction_kernel_matches_the_reference(n, k, c, dtype):
    from kbald_kernels.triton.kbald_step import add_triple_interactions

    lp = random_log_probs(n + 3, k, c, dtype=dtype, zeros=True)
    entropy = kernel.entropies(lp)[0]
    picks, newest = [n, n + 2], n + 1
    pair_entropies = torch.stack([entropy + entropy[p] - reference.pairwise_mutual_information(lp, lp[p : p + 1])[:, 0]
                                  for p in picks + [newest]]).float()
    picks_then_newest = torch.tensor(picks + [newest], device=DEVICE)
    start = torch.randn(n + 3, device=DEVICE)
    expected = reference.add_triple_interactions(lp, entropy, pair_entropies, picks_then_newest, start.clone())
    got = add_triple_interactions(lp, entropy, pair_entropies, picks_then_newest, start.clone())
    # The reference's posterior-weight form renormalises; low-precision rows sum to
    # 1 only to within their rounding, which bounds how far the two forms can differ.
    tol = 2 * NORMALISATION_TOLERANCE[dtype]
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    # Against the definition (raw probabilities, as the kernel uses them): I[a;b;c] of each triple.
    oracle = reference.triple_interaction(lp.double(), torch.tensor([[i, newest, p] for i in range(n + 3)
                                                                     for p in picks]).to(DEVICE))
    torch.testing.assert_close((got - start).double(), oracle.view(n + 3, 2).sum(1), rtol=1e-3, atol=2e-4)


def test_select_kbald_order_3_on_the_kernels_matches_brute_force():
    import brute_force

    lp = random_log_probs(8, 6, 3, spread=1.5).float()
    got = kb.select_kbald(lp, 4, order=3, backend="triton")
    indices, values = brute_force.greedy(lambda batch: brute_force.kbald_value(lp.double(), batch, 3), 8, 4)
    assert got.indices.tolist() == indices
    torch.testing.assert_close(got.scores.double().cpu(), torch.tensor(values, dtype=torch.float64),
                               rtol=1e-4, atol=1e-5)
