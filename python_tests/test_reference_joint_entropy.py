"""Joint entropy configurations, BatchBALD and k-BALD against brute-force enumeration."""

import itertools
import math

import pytest
import torch

import kbald_kernels as kb
from kbald_kernels import reference

import brute_force
from conftest import random_log_probs


@pytest.mark.parametrize("n,k,c,selected", [(6, 4, 3, [2]), (7, 5, 2, [0, 6, 3]), (5, 3, 4, [1, 4]),
                                            (4, 6, 3, [3, 0, 1])])
def test_exact_joint_entropy_matches_enumeration(n, k, c, selected):
    lp = random_log_probs(n, k, c, zeros=True)
    got = kb.joint_entropy(lp, selected)
    expected = torch.tensor([brute_force.joint_entropy(lp, selected + [i]) for i in range(n)], dtype=torch.float64)
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-10, atol=1e-11)


def test_empty_selection_gives_entropy():
    lp = random_log_probs(8, 5, 3)
    torch.testing.assert_close(kb.joint_entropy(lp, []), kb.entropy(lp))


def test_accumulate_joint_entropy_matches_explicit_q():
    lp = random_log_probs(9, 6, 5, zeros=True)
    weights = torch.rand(4, 6, dtype=torch.float64)
    weights /= weights.sum(1, keepdim=True)
    alpha = torch.rand(4, dtype=torch.float64)
    q = torch.einsum("mk,nkc->mnc", weights, lp.exp())
    expected = (alpha[:, None] * -torch.where(q > 0, q * q.log(), 0).sum(-1)).sum(0)
    torch.testing.assert_close(reference.accumulate_joint_entropy(weights, alpha, lp), expected)


def test_posterior_weights_stay_finite_for_long_selections():
    # Products of 60 probabilities underflow float64's normal range if not renormalised.
    lp = random_log_probs(80, 10, 10, spread=6.0)
    configs = reference.empty_configurations(10)
    gen = torch.Generator().manual_seed(0)
    for s in range(60):
        configs = reference.extend_configurations(configs, lp[s], 500, gen)
    assert torch.isfinite(configs.weights).all()
    torch.testing.assert_close(configs.weights.sum(1), torch.ones(500, dtype=torch.float64))
    assert math.isfinite(float(reference.configurations_entropy(configs)))


def test_sampled_joint_entropy_is_within_its_standard_error_of_the_exact_value():
    lp = random_log_probs(6, 8, 10)
    selected = [0, 1, 2, 3, 4]  # 10^5 configurations; the fifth pick switches to 20 000 sampled ones
    exact = kb.joint_entropy(lp, selected)  # enumerated, checked against brute force above
    gen = torch.Generator().manual_seed(1)
    configs = reference.empty_configurations(8)
    for s in selected:
        configs = reference.extend_configurations(configs, lp[s], 20_000, gen)
    assert not configs.exact and configs.weights.shape[0] == 20_000
    estimate = reference.configurations_entropy(configs) + reference.accumulate_joint_entropy(
        configs.weights, configs.alpha, lp)
    # Per-draw terms of the estimator: -log p(y_S^m) + H(q[m, i, :]); i.i.d., so the
    # standard error is their standard deviation over sqrt(M).
    q = torch.einsum("mk,nkc->mnc", configs.weights, lp.exp())
    terms = -configs.log_prob[:, None] - torch.where(q > 0, q * q.log(), 0).sum(-1)
    torch.testing.assert_close(terms.mean(0), estimate)
    standard_error = terms.std(0) / math.sqrt(terms.shape[0])
    assert bool(((estimate - exact).abs() < 5 * standard_error).all()), (estimate - exact) / standard_error


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_select_kbald_matches_brute_force_greedy(order, seed):
    lp = random_log_probs(7, 6, 3, generator=torch.Generator().manual_seed(seed))
    got = kb.select_kbald(lp, 4, order=order)
    indices, values = brute_force.greedy(lambda batch: brute_force.kbald_value(lp, batch, order), 7, 4)
    assert got.indices.tolist() == indices
    torch.testing.assert_close(got.scores.cpu(), torch.tensor(values, dtype=torch.float64), rtol=1e-9, atol=1e-10)


def test_kbald_is_exact_up_to_its_order():
    # Inclusion–exclusion is exact for a batch no larger than its order.
    lp = random_log_probs(9, 7, 4)
    for batch in ([1, 4], [0, 8], [2, 3, 5]):
        exact = brute_force.joint_mutual_information(lp, batch)
        assert brute_force.kbald_value(lp, batch, 3) == pytest.approx(exact, rel=1e-9)
    got = kb.select_kbald(lp, 2, order=2).scores[-1]
    batchbald = kb.select_batchbald(lp, 2).scores[-1]
    assert float(got) == pytest.approx(float(batchbald), rel=1e-9)
    got3 = kb.select_kbald(lp, 3, order=3)
    assert float(got3.scores[-1]) == pytest.approx(brute_force.joint_mutual_information(lp, got3.indices.tolist()),
                                                   rel=1e-9)


def test_select_bald_is_top_k_with_cumulative_scores():
    lp = random_log_probs(20, 5, 3)
    scores = kb.bald(lp)
    got = kb.select_bald(lp, 6)
    assert got.indices.tolist() == torch.argsort(scores, descending=True)[:6].tolist()
    torch.testing.assert_close(got.scores, scores[got.indices].cumsum(0))
    assert kb.select_kbald(lp, 6, order=1).indices.tolist() == got.indices.tolist()


@pytest.mark.parametrize("seed", range(3))
def test_exact_batchbald_matches_brute_force_greedy(seed):
    lp = random_log_probs(7, 5, 3, zeros=True, generator=torch.Generator().manual_seed(seed))
    got = kb.select_batchbald(lp, 4, num_samples=3**4)
    indices, values = brute_force.greedy(lambda batch: brute_force.joint_mutual_information(lp, batch), 7, 4)
    assert got.indices.tolist() == indices
    torch.testing.assert_close(got.scores.cpu(), torch.tensor(values, dtype=torch.float64), rtol=1e-9, atol=1e-10)


def test_sampled_batchbald_is_seeded_and_close_to_exact():
    lp = random_log_probs(30, 10, 4)
    a = kb.select_batchbald(lp, 6, num_samples=64, generator=5)
    b = kb.select_batchbald(lp, 6, num_samples=64, generator=5)
    assert a.indices.tolist() == b.indices.tolist()
    torch.testing.assert_close(a.scores, b.scores, rtol=0, atol=0)
    exact = brute_force.joint_mutual_information(lp, a.indices.tolist())
    # 64 sampled configurations for 4^6 = 4096 exact ones: the value is an estimate.
    assert float(a.scores[-1]) == pytest.approx(exact, rel=0.1)
    assert bool((a.scores[1:] >= a.scores[:-1] - 1e-9).all())


def test_joint_entropy_of_triples_gives_the_triple_interaction():
    lp = random_log_probs(5, 4, 3)
    h = kb.entropy(lp)
    mi = kb.pairwise_mutual_information(lp)
    for a, b, c in itertools.combinations(range(5), 3):
        pair = {(x, y): h[x] + h[y] - mi[x, y] for x in (a, b, c) for y in (a, b, c)}
        triple = kb.joint_entropy(lp, [a, b])[c]
        value = h[a] + h[b] + h[c] - pair[a, b] - pair[a, c] - pair[b, c] + triple
        assert float(value) == pytest.approx(float(kb.triple_interaction(lp, [[a, b, c]])[0]), abs=1e-10)


def test_hard_labels_stay_exact_while_their_nonzero_configurations_fit():
    # One-hot members over two of ten classes: 4 picks have at most 2⁴ nonzero label
    # configurations, so a budget of 1 000 enumerates them exactly (10⁴ would not fit).
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (6, 8), generator=gen)
    lp = torch.log(torch.nn.functional.one_hot(labels, 10).double())
    exact = reference.joint_entropy(lp, [0, 1, 2, 3])
    torch.testing.assert_close(reference.joint_entropy(lp, [0, 1, 2, 3], num_samples=1000), exact, rtol=0, atol=0)
