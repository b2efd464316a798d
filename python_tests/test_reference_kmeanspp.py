"""k-means++ / CORESET reference: counter-based noise, distances, exact D² sampling, orderings."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import kbald_kernels as kb
from kbald_kernels import reference

from conftest import DEVICE


def test_philox_matches_the_published_known_answers():
    # Known-answer vectors of Philox4x32-10 from the Random123 distribution.
    cases = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]
    for counter, key, expected in cases:
        got = reference.philox4x32([torch.tensor(c) for c in counter], key)
        assert tuple(int(w) for w in got) == expected


def test_gumbel_noise_is_keyed_and_distributed_as_gumbel():
    index = torch.arange(20_000)
    g = reference.gumbel_noise(123, 4, index)
    torch.testing.assert_close(g[5:9], reference.gumbel_noise(123, 4, index[5:9]), rtol=0, atol=0)
    assert not torch.equal(g, reference.gumbel_noise(123, 5, index))
    assert not torch.equal(g, reference.gumbel_noise(124, 4, index))
    assert stats.kstest(g.numpy(), stats.gumbel_r.cdf).pvalue > 1e-3


def dense_distances(x, centers):
    return torch.cdist(x.double(), centers.double()).square().amin(1)


def test_dense_distances_match_brute_force():
    x = torch.randn(23, 7, dtype=torch.float64)
    got = reference.DenseEmbeddings(x).squared_distances(reference.DenseEmbeddings(x[[3, 11, 20]]))
    expected = torch.stack([((x - x[c]) ** 2).sum(1) for c in (3, 11, 20)]).amin(0)
    torch.testing.assert_close(got, expected)
    assert float(got[11]) == 0.0


@pytest.mark.parametrize("n,h,c", [(1, 1, 1), (9, 5, 3), (31, 16, 10)])
def test_factored_distance_equals_dense_distance_of_outer_products(n, h, c):
    features = torch.randn(n, h, dtype=torch.float64)
    residuals = torch.randn(n, c, dtype=torch.float64)
    dense = (features[:, :, None] * residuals[:, None, :]).reshape(n, h * c)
    centers = [0, n - 1] if n > 1 else [0]
    factored = reference.FactoredEmbeddings(features, residuals)
    got = factored.squared_distances(factored.take(torch.tensor(centers)))
    torch.testing.assert_close(got, dense_distances(dense, dense[centers]), rtol=1e-9, atol=1e-9)
    assert bool((got[centers] == 0).all())
    torch.testing.assert_close(factored.squared_norms(), dense.square().sum(1))


def d2_probabilities(x, centers):
    d = dense_distances(x, x[centers]).numpy()
    return d / d.sum()


def test_second_center_frequencies_match_d_squared():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 0.0], [-1.0, 0.5]])
    first = 3
    expected = d2_probabilities(x, [first])
    assert expected[first] == 0
    draws = 3000
    counts = np.zeros(len(x))
    for seed in range(draws):
        picks = kb.kmeanspp(x, 1, generator=seed, labeled=[first]).indices
        counts[int(picks[0])] += 1
    assert counts[first] == 0
    support = expected > 0
    assert stats.chisquare(counts[support], expected[support] * draws).pvalue > 1e-3


def test_first_center_is_uniform_or_largest_norm():
    x = torch.randn(5, 3)
    counts = np.bincount([int(kb.kmeanspp(x, 1, generator=s).indices[0]) for s in range(1500)], minlength=5)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert int(kb.kmeanspp(x, 1, generator=0, first="max_norm").indices[0]) == int(x.norm(dim=1).argmax())
    counts = np.bincount([int(kb.select_coreset(x, 1, generator=s).indices[0]) for s in range(1500)], minlength=5)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_full_ordering_is_a_permutation_with_duplicates_and_zero_distances():
    base = torch.randn(4, 3)
    x = torch.cat([base, base, base[:1].expand(5, 3)])  # exact duplicates
    order = kb.kmeanspp(x, None, generator=7)
    assert sorted(order.indices.tolist()) == list(range(len(x)))
    # Distinct points come first: a duplicate of a center has d = 0 and waits.
    def which_base(i):
        return i % 4 if i < 8 else 0

    assert {which_base(i) for i in order.indices[:4].tolist()} == {0, 1, 2, 3}
    assert bool((order.scores[4:] == 0).all()) and bool((order.scores[1:4] > 0).all())
    same = torch.ones(6, 2)
    assert sorted(kb.kmeanspp(same, -1, generator=1).indices.tolist()) == list(range(6))


def brute_force_k_center(x, k, labeled):
    centers = list(labeled)
    picks = []
    for _ in range(k):
        d = dense_distances(x, x[centers])
        d[centers] = -1
        best = int(torch.argmax(d))  # first maximum: ties to the smaller index
        picks.append(best)
        centers.append(best)
    return picks


def test_coreset_matches_brute_force_k_center_greedy():
    x = torch.randn(40, 5, dtype=torch.float64)
    got = kb.select_coreset(x, 8, labeled=[2, 17])
    assert got.indices.tolist() == brute_force_k_center(x, 8, [2, 17])
    external = torch.randn(3, 5, dtype=torch.float64)
    got = kb.select_coreset(x, 5, labeled=external)
    pool_and_labeled = torch.cat([x, external])
    assert got.indices.tolist() == brute_force_k_center(pool_and_labeled, 5, [40, 41, 42])


def test_extend_gives_the_larger_pools_d_squared_distribution():
    x = torch.randn(6, 2)
    new = torch.randn(3, 2)
    full = torch.cat([x, new])
    draws = 2000
    counts = np.zeros(len(full))
    first = int(x.norm(dim=1).argmax())
    for seed in range(draws):
        ordering = kb.KMeansPPOrdering(x, generator=seed, first="max_norm")
        assert next(ordering)[0] == first
        ordering.extend(new)
        counts[next(ordering)[0]] += 1
    expected = d2_probabilities(full, [first])
    support = expected > 0
    assert counts[~support].sum() == 0
    assert stats.chisquare(counts[support], expected[support] * draws).pvalue > 1e-3


def test_extend_before_any_pick_equals_starting_with_the_larger_pool():
    x, new = torch.randn(10, 4), torch.randn(5, 4)
    ordering = kb.KMeansPPOrdering(x, generator=3)
    ordering.extend(new)
    assert ordering.take(8).indices.tolist() == kb.kmeanspp(torch.cat([x, new]), 8, generator=3).indices.tolist()


@pytest.mark.parametrize("factored", [False, True])
def test_saved_state_resumes_identically(factored):
    n = 30
    pool = (torch.randn(n, 6), torch.randn(n, 3)) if factored else torch.randn(n, 5)
    more = (torch.randn(4, 6), torch.randn(4, 3)) if factored else torch.randn(4, 5)
    a = kb.KMeansPPOrdering(pool, generator=11, labeled=[0, 1])
    a.take(5)
    a.extend(more)
    a.take(2)
    state = a.state_dict()
    expected = a.take(10)
    grown = (torch.cat([pool[0], more[0]]), torch.cat([pool[1], more[1]])) if factored else torch.cat([pool, more])
    b = kb.KMeansPPOrdering(grown, generator=0)
    b.load_state_dict(state)
    got = b.take(10)
    assert got.indices.tolist() == expected.indices.tolist()
    torch.testing.assert_close(got.scores, expected.scores)
    with pytest.raises(ValueError, match="pool of 34 points"):
        kb.KMeansPPOrdering(pool, generator=0).load_state_dict(state)


def test_scores_are_the_distance_at_pick_time():
    x = torch.randn(12, 3, dtype=torch.float64)
    got = kb.kmeanspp(x, 5, generator=2)
    assert math.isinf(float(got.scores[0]))
    for step in range(1, 5):
        d = dense_distances(x, x[got.indices[:step]])
        assert float(got.scores[step]) == pytest.approx(float(d[got.indices[step]]))


def test_badge_factors_are_softmax_minus_one_hot():
    logits = torch.randn(8, 4)
    features = torch.randn(8, 6)
    f, r = kb.badge_factors(logits, features)
    expected = torch.softmax(logits, -1)
    expected[torch.arange(8), logits.argmax(-1)] -= 1
    torch.testing.assert_close(r, expected)
    assert f is features or torch.equal(f, features)
    picks = kb.select_badge((f, r), 3, generator=0)
    dense = (f[:, :, None] * r[:, None, :]).reshape(8, -1)
    assert int(picks.indices[0]) == int(dense.norm(dim=1).argmax())
    assert picks.indices.tolist() == kb.select_badge(dense, 3, generator=0).indices.tolist()


def test_outputs_follow_the_input_device():
    x = torch.randn(10, 3, device=DEVICE)
    sel = kb.kmeanspp(x, 3, generator=0)
    assert sel.indices.device == x.device and sel.indices.dtype == torch.int64
