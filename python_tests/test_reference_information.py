"""The reference information ops against brute force and known values."""

import itertools

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import reference

import brute_force
from conftest import random_log_probs

SHAPES = [(1, 1, 1), (7, 3, 2), (13, 5, 3), (9, 20, 10), (5, 4, 17)]


@pytest.mark.parametrize("n,k,c", SHAPES)
@pytest.mark.parametrize("zeros", [False, True])
def test_entropies_match_brute_force(n, k, c, zeros):
    lp = random_log_probs(n, k, c, zeros=zeros)
    h = kb.entropy(lp)
    ch = kb.conditional_entropy(lp)
    b = kb.bald(lp)
    expected_h = torch.tensor([brute_force.joint_entropy(lp, [i]) for i in range(n)], dtype=torch.float64)
    expected_ch = torch.tensor([brute_force.conditional_entropy(lp, i) for i in range(n)], dtype=torch.float64)
    torch.testing.assert_close(h.cpu(), expected_h, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ch.cpu(), expected_ch, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b.cpu(), expected_h - expected_ch, rtol=1e-9, atol=1e-12)


def test_identical_members_have_zero_bald():
    lp = random_log_probs(6, 1, 5).expand(6, 8, 5).contiguous()
    torch.testing.assert_close(kb.bald(lp), torch.zeros(6, dtype=torch.float64), atol=1e-12, rtol=0)


def test_deterministic_one_hot_members_have_bald_equal_to_entropy():
    labels = torch.randint(0, 4, (10, 7))
    lp = torch.full((10, 7, 4), -torch.inf, dtype=torch.float64)
    lp.scatter_(2, labels[..., None], 0.0)
    torch.testing.assert_close(kb.conditional_entropy(lp), torch.zeros(10, dtype=torch.float64))
    torch.testing.assert_close(kb.bald(lp), kb.entropy(lp))
    assert bool((kb.entropy(lp) > 0).any())


@pytest.mark.parametrize("n,k,c", SHAPES)
def test_pairwise_mutual_information_matches_brute_force(n, k, c):
    lp = random_log_probs(n, k, c, zeros=True)
    mi = kb.pairwise_mutual_information(lp)
    expected = torch.tensor([[brute_force.interaction(lp, [i, j]) for j in range(n)] for i in range(n)],
                            dtype=torch.float64)
    torch.testing.assert_close(mi.cpu(), expected, rtol=1e-9, atol=1e-11)
    # The diagonal pairs two conditionally independent draws of one point, which
    # share at most what each shares with the posterior.
    assert bool((mi.diagonal() <= kb.bald(lp) + 1e-12).all())


def test_pairwise_block_equals_symmetric_slices():
    lp = random_log_probs(11, 6, 4)
    full = kb.pairwise_mutual_information(lp)
    block = kb.pairwise_mutual_information(lp[2:9], lp[5:11])
    torch.testing.assert_close(block, full[2:9, 5:11], rtol=1e-12, atol=1e-12)


def test_points_that_ignore_the_posterior_have_zero_mutual_information():
    # A point whose members all agree is independent of every other point.
    constant = random_log_probs(3, 1, 4).expand(3, 9, 4)
    varied = random_log_probs(5, 9, 4)
    mi = kb.pairwise_mutual_information(constant.contiguous(), varied)
    torch.testing.assert_close(mi, torch.zeros(3, 5, dtype=torch.float64), atol=1e-12, rtol=0)


def test_triple_interaction_matches_brute_force():
    lp = random_log_probs(6, 5, 3, zeros=True)
    triples = torch.tensor(list(itertools.combinations(range(6), 3)) + [(0, 0, 1), (2, 2, 2)])
    got = kb.triple_interaction(lp, triples)
    expected = torch.tensor([brute_force.interaction(lp, list(t)) for t in triples.tolist()], dtype=torch.float64)
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("budget", [64, 1000, 4096])
def test_chunking_boundaries_do_not_change_results(monkeypatch, budget):
    lp = random_log_probs(37, 7, 5, zeros=True)
    whole = (kb.entropy(lp), kb.bald(lp), kb.pairwise_mutual_information(lp),
             kb.pairwise_mutual_information(lp[:13], lp[3:]),
             kb.triple_interaction(lp, [[0, 1, 2], [5, 9, 36], [7, 7, 3]]),
             kb.joint_entropy(lp, [3, 8]))
    monkeypatch.setenv("KBALD_WORKSPACE_BYTES", str(budget))
    chunked = (kb.entropy(lp), kb.bald(lp), kb.pairwise_mutual_information(lp),
               kb.pairwise_mutual_information(lp[:13], lp[3:]),
               kb.triple_interaction(lp, [[0, 1, 2], [5, 9, 36], [7, 7, 3]]),
               kb.joint_entropy(lp, [3, 8]))
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.float16, 2e-2), (torch.bfloat16, 5e-2)])
def test_low_precision_inputs_compute_in_float32(dtype, atol):
    lp64 = random_log_probs(9, 6, 5)
    lp = lp64.to(dtype)
    # The oracle sees exactly the rounded input, so only accumulation error remains.
    oracle = lp.to(torch.float64)
    for op in (kb.entropy, kb.conditional_entropy, kb.bald):
        got = op(lp)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), op(oracle - torch.logsumexp(oracle, -1, keepdim=True)),
                                   atol=atol, rtol=0)
    got = kb.pairwise_mutual_information(lp)
    assert got.dtype == torch.float32
    expected = kb.pairwise_mutual_information(oracle - torch.logsumexp(oracle, -1, keepdim=True))
    torch.testing.assert_close(got.double(), expected, atol=atol, rtol=0)


def test_reference_module_is_the_registered_torch_backend():
    lp = random_log_probs(5, 3, 2)
    torch.testing.assert_close(kb.bald(lp, backend="torch"), reference.bald(lp))
